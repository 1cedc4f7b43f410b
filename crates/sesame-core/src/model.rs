//! The persisted model. Wrapped key material and sealed secrets are opaque bytes here: only
//! the services, holding the root key, can open them.

use sesame_api::Timestamp;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsInstance {
    pub id: String,
    pub created: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Enabled,
    Disabled,
    PendingDeletion,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Enabled => "Enabled",
            KeyState::Disabled => "Disabled",
            KeyState::PendingDeletion => "PendingDeletion",
        }
    }

    pub fn parse(s: &str) -> Option<KeyState> {
        match s {
            "Enabled" => Some(KeyState::Enabled),
            "Disabled" => Some(KeyState::Disabled),
            "PendingDeletion" => Some(KeyState::PendingDeletion),
            _ => None,
        }
    }
}

/// One version of a CMK's material, wrapped by the root key.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyVersion {
    pub id: String,
    pub created: Timestamp,
    pub wrapped: Vec<u8>,
}

impl fmt::Debug for KeyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyVersion").field("id", &self.id).field("created", &self.created).finish_non_exhaustive()
    }
}

/// A customer master key: metadata, and its versions oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub id: String,
    pub instance_id: String,
    pub description: String,
    pub state: KeyState,
    pub creator: String,
    pub created: Timestamp,
    pub delete_date: Option<Timestamp>,
    pub primary_version: String,
    /// Automatic rotation period in seconds, when enabled.
    pub rotation_interval: Option<i64>,
    pub last_rotation: Timestamp,
    pub next_rotation: Option<Timestamp>,
    pub versions: Vec<KeyVersion>,
    /// Optimistic-concurrency counter: an update succeeds only against the revision it read.
    pub revision: i64,
}

impl Key {
    pub fn version(&self, id: &str) -> Option<&KeyVersion> {
        self.versions.iter().find(|v| v.id == id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub name: String,
    pub key_id: String,
    pub created: Timestamp,
}

/// An access key; its secret sealed by the root key.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub id: String,
    pub user: String,
    pub sealed_secret: Vec<u8>,
    pub enabled: bool,
    pub created: Timestamp,
}

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKey").field("id", &self.id).field("user", &self.user).field("enabled", &self.enabled).finish_non_exhaustive()
    }
}

/// One version of a secret: metadata only. Its sealed value is read separately, by version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretVersion {
    pub id: String,
    pub created: Timestamp,
    pub data_type: String,
    pub stages: Vec<String>,
}

/// What the read path loads on a cache miss.
pub struct SecretRead {
    pub secret: Secret,
    pub tags: Vec<sesame_api::secrets::Tag>,
    /// The ACSCurrent version's id and value, when it has one.
    pub current: Option<(String, SealedValue)>,
}

/// A version's value: a fresh data key sealed by the secret's CMK (a ciphertext blob), and the
/// value sealed by that data key.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedValue {
    pub sealed_key: Vec<u8>,
    pub sealed_value: Vec<u8>,
}

impl fmt::Debug for SealedValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedValue({} + {} bytes)", self.sealed_key.len(), self.sealed_value.len())
    }
}

/// A secret's metadata (stored in clear) and its versions, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    pub name: String,
    pub secret_type: String,
    pub instance_id: String,
    pub key_id: String,
    pub description: String,
    pub extended_config: Option<String>,
    pub creator: String,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub planned_delete: Option<Timestamp>,
    pub policy: String,
    pub versions: Vec<SecretVersion>,
    /// Automatic rotation period in seconds (managed secrets), when enabled.
    pub rotation_interval: Option<i64>,
    pub last_rotation: Option<Timestamp>,
    pub next_rotation: Option<Timestamp>,
    pub revision: i64,
}

impl Secret {
    pub fn version(&self, id: &str) -> Option<&SecretVersion> {
        self.versions.get(self.version_index(id)?)
    }

    pub fn with_stage(&self, stage: &str) -> Option<&SecretVersion> {
        self.versions.get(self.stage_index(stage)?)
    }

    /// Where version `id` is in `versions`.
    pub fn version_index(&self, id: &str) -> Option<usize> {
        self.versions.iter().position(|v| v.id == id)
    }

    /// Where the version that carries `stage` is in `versions`.
    pub fn stage_index(&self, stage: &str) -> Option<usize> {
        self.versions.iter().position(|v| v.stages.iter().any(|s| s == stage))
    }

    /// Attaches `stage` to version `to`, taking it from whichever version had it.
    pub fn move_stage(&mut self, stage: &str, to: &str) {
        for v in &mut self.versions {
            v.stages.retain(|s| s != stage);
            if v.id == to {
                v.stages.push(stage.to_string());
            }
        }
    }

    /// Distinct stage labels in use.
    pub fn stage_count(&self) -> usize {
        let mut all: Vec<&str> = self.versions.iter().flat_map(|v| v.stages.iter().map(String::as_str)).collect();
        all.sort_unstable();
        all.dedup();
        all.len()
    }
}

/// A registered database server. Its admin password is a ciphertext blob of the instance's
/// CMK, bound to the instance id.
#[derive(Clone, PartialEq, Eq)]
pub struct DbInstance {
    pub id: String,
    pub engine: String,
    pub host: String,
    pub port: u16,
    pub admin_user: String,
    pub sealed_password: Vec<u8>,
    pub admin_database: String,
    pub tls: String,
    pub account_host: String,
    pub description: String,
    pub key_id: String,
    pub created: Timestamp,
    pub revision: i64,
}

impl fmt::Debug for DbInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbInstance")
            .field("id", &self.id)
            .field("engine", &self.engine)
            .field("host", &self.host)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// How far a rotation attempt has got. The new password is stored (sealed, under ACSPending)
/// before the database is touched, so every later step can be redone after a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationStep {
    /// The new version is stored under ACSPending; the database may or may not have it yet.
    PendingStored,
    /// The database has the new password.
    Applied,
    /// A logon with the new password worked.
    Verified,
}

impl RotationStep {
    pub fn as_str(self) -> &'static str {
        match self {
            RotationStep::PendingStored => "PendingStored",
            RotationStep::Applied => "Applied",
            RotationStep::Verified => "Verified",
        }
    }
    pub fn parse(s: &str) -> Option<RotationStep> {
        match s {
            "PendingStored" => Some(RotationStep::PendingStored),
            "Applied" => Some(RotationStep::Applied),
            "Verified" => Some(RotationStep::Verified),
            _ => None,
        }
    }
}

/// The rotation attempt in progress for a secret (at most one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub secret: String,
    pub version_id: String,
    pub step: RotationStep,
    pub started: Timestamp,
    pub attempts: i64,
    /// The last failure, in the wire vocabulary (never a password).
    pub last_error: String,
    pub next_retry: Timestamp,
}

/// What a secret write does to its rotation record, in the same transaction.
#[derive(Debug, Clone, Copy)]
pub enum RotationChange<'a> {
    Keep,
    Put(&'a Rotation),
    /// Put, with the record's lease taken for `owner` until `until`; the write fails with
    /// `Conflict` when another owner's lease is still running at `now`.
    Start {
        rotation: &'a Rotation,
        owner: &'a str,
        until: Timestamp,
        now: Timestamp,
    },
    Delete,
}

/// A person or service that holds access keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub display_name: String,
    pub comments: String,
    pub created: Timestamp,
}

/// A policy an administrator wrote (system policies live in code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomPolicy {
    pub name: String,
    pub document: String,
    pub description: String,
    pub created: Timestamp,
}

/// One audit event as stored: the ActionTrail-shaped JSON and the columns lookups filter on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub time: i64,
    pub user: String,
    pub event_name: String,
    pub resource: String,
    /// `Success` or `Failure`.
    pub result: String,
    pub access_key: String,
    pub event: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAuditEvent {
    /// Position in the trail, from 1, without gaps.
    pub seq: i64,
    pub record: AuditRecord,
    pub mac: Vec<u8>,
}

/// One index row of the trail's segment files: a run of consecutive events in one segment.
/// Lookups and verification find events through these; the events themselves, with their chain
/// links, are in the files (`audit::log`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditBlock {
    pub first_seq: i64,
    pub last_seq: i64,
    /// The earliest and latest event time in the block, for lookups by time.
    pub min_time: i64,
    pub max_time: i64,
    /// The segment file's number, and the block's byte range in it.
    pub segment: i64,
    pub start: i64,
    pub end: i64,
    /// The chain link of the block's last event: where the chain resumes after it.
    pub last_mac: Vec<u8>,
}

/// How the trail is chained: each event's MAC covers the previous MAC, its position and every
/// field; the head seals the last position and MAC, so a cut tail shows.
pub trait AuditChain: Send + Sync {
    fn link(&self, prev: &[u8], seq: i64, record: &AuditRecord) -> Vec<u8>;
    fn head(&self, seq: i64, mac: &[u8]) -> String;
    /// Where the next event goes: after the sealed head when there is one (so that events cut
    /// from the end leave a gap that verification finds), and never onto a position a row
    /// already holds.
    fn resume(&self, head: Option<&str>, last: Option<(i64, Vec<u8>)>) -> (i64, Vec<u8>);
}
