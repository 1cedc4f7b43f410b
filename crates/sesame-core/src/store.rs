//! The one storage interface. Backends (SQLite now, PostgreSQL later) live in `sesame-store`
//! and pass the same conformance suite.

use crate::model::{
    AccessKey, Alias, AuditBlock, AuditChain, AuditRecord, CustomPolicy, DbInstance, Key, KmsInstance, Rotation, RotationChange,
    SealedValue, Secret, SecretRead, StoredAuditEvent, User,
};
use async_trait::async_trait;
use sesame_api::Timestamp;
use sesame_api::ram::EventQuery;
use sesame_api::secrets::{SecretFilter, Tag};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An optimistic update lost to a concurrent one; the caller reloads and retries.
    #[error("concurrent modification")]
    Conflict,
    /// A uniqueness constraint refused the write.
    #[error("already exists")]
    Duplicate,
    #[error("storage backend: {0}")]
    Backend(String),
}

impl From<StoreError> for sesame_api::Error {
    fn from(e: StoreError) -> Self {
        sesame_api::Error::internal(e)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn meta_get(&self, key: &str) -> StoreResult<Option<String>>;
    async fn meta_set(&self, key: &str, value: &str) -> StoreResult<()>;

    async fn insert_instance(&self, instance: &KmsInstance) -> StoreResult<()>;
    async fn get_instance(&self, id: &str) -> StoreResult<Option<KmsInstance>>;
    /// A page of instances, oldest first, and the total count.
    async fn list_instances(&self, offset: i64, limit: i64) -> StoreResult<(Vec<KmsInstance>, i64)>;

    /// Inserts a key with its versions. `Duplicate` if the id exists.
    async fn insert_key(&self, key: &Key) -> StoreResult<()>;
    async fn get_key(&self, id: &str) -> StoreResult<Option<Key>>;
    /// Writes `key` if the stored revision is still `key.revision`, storing `revision + 1` and
    /// any versions not stored yet, in one transaction. `Conflict` otherwise.
    async fn update_key(&self, key: &Key) -> StoreResult<()>;
    /// Removes a key, its versions and its aliases.
    async fn delete_key(&self, id: &str) -> StoreResult<()>;
    /// A page of key ids, oldest first, and the total count.
    async fn list_keys(&self, offset: i64, limit: i64) -> StoreResult<(Vec<String>, i64)>;
    /// Keys whose deletion date or next rotation date is at or before `now`.
    async fn keys_due(&self, now: Timestamp) -> StoreResult<Vec<String>>;

    /// `Duplicate` if the alias exists.
    async fn insert_alias(&self, alias: &Alias) -> StoreResult<()>;
    /// Points an existing alias at another key; false if it does not exist.
    async fn update_alias(&self, name: &str, key_id: &str) -> StoreResult<bool>;
    /// False if it did not exist.
    async fn delete_alias(&self, name: &str) -> StoreResult<bool>;
    async fn get_alias(&self, name: &str) -> StoreResult<Option<Alias>>;
    /// A page of aliases by name, of one key or of all, and the total count.
    async fn list_aliases(&self, key_id: Option<&str>, offset: i64, limit: i64) -> StoreResult<(Vec<Alias>, i64)>;

    async fn insert_access_key(&self, key: &AccessKey) -> StoreResult<()>;
    async fn get_access_key(&self, id: &str) -> StoreResult<Option<AccessKey>>;
    async fn count_access_keys(&self) -> StoreResult<i64>;
    async fn list_access_keys(&self, user: &str) -> StoreResult<Vec<AccessKey>>;
    /// False if there is no such key.
    async fn set_access_key_enabled(&self, id: &str, enabled: bool) -> StoreResult<bool>;
    async fn delete_access_key(&self, id: &str) -> StoreResult<bool>;

    /// `Duplicate` if the name exists.
    async fn insert_user(&self, user: &User) -> StoreResult<()>;
    async fn get_user(&self, name: &str) -> StoreResult<Option<User>>;
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    /// Removes a user with its access keys and policy attachments; false if it did not exist.
    async fn delete_user(&self, name: &str) -> StoreResult<bool>;
    /// `Duplicate` if the name exists.
    async fn insert_policy(&self, policy: &CustomPolicy) -> StoreResult<()>;
    async fn get_policy(&self, name: &str) -> StoreResult<Option<CustomPolicy>>;
    async fn list_policies(&self) -> StoreResult<Vec<CustomPolicy>>;
    async fn delete_policy(&self, name: &str) -> StoreResult<bool>;
    /// False if it was attached already.
    async fn attach_policy(&self, user: &str, policy_type: &str, policy: &str) -> StoreResult<bool>;
    /// False if it was not attached.
    async fn detach_policy(&self, user: &str, policy_type: &str, policy: &str) -> StoreResult<bool>;
    /// `(type, name)` of the policies attached to a user.
    async fn user_policies(&self, user: &str) -> StoreResult<Vec<(String, String)>>;
    /// Users a policy is attached to.
    async fn policy_users(&self, policy_type: &str, policy: &str) -> StoreResult<Vec<String>>;

    /// Appends events to the trail's first format (one row an event, chained after the last
    /// one) in one transaction, and moves the sealed head. Stores made before the segment files
    /// hold their older events this way, and they are read as the trail's beginning; new events
    /// go to the segment files (`append_audit_blocks`). `journal_mark`, when given, is kept in
    /// the same transaction (`audit_journal_mark`).
    async fn append_audit(&self, records: Arc<[AuditRecord]>, chain: Arc<dyn AuditChain>, journal_mark: Option<String>) -> StoreResult<()>;
    /// The mark the last append with one left: how far the audit journal of earlier versions
    /// (a ring file, `audit_journal_path`) had been copied into the trail.
    async fn audit_journal_mark(&self) -> StoreResult<Option<String>>;
    /// Where the audit journal of earlier versions lives, when the store has a directory.
    fn audit_journal_path(&self) -> Option<std::path::PathBuf>;
    /// The directory of the trail's segment files; `None` for a store in memory, whose trail
    /// stays in memory too.
    fn audit_trail_dir(&self) -> Option<std::path::PathBuf>;
    /// Indexes blocks of the segment files and moves the sealed head, in one transaction.
    async fn append_audit_blocks(&self, blocks: Vec<AuditBlock>, head: String) -> StoreResult<()>;
    /// Blocks whose first position is after `after_seq`, oldest first.
    async fn audit_blocks(&self, after_seq: i64, limit: i64) -> StoreResult<Vec<AuditBlock>>;
    /// Blocks whose first position is before `before_seq` and whose times meet `[from, to]`,
    /// newest first.
    async fn audit_blocks_before(&self, before_seq: i64, from: Option<i64>, to: Option<i64>, limit: i64) -> StoreResult<Vec<AuditBlock>>;
    /// The last event in the trail's first format: its position and chain link.
    async fn last_audit_event(&self) -> StoreResult<Option<(i64, Vec<u8>)>>;
    /// Whether every write to this store goes through this process (no other process or node
    /// can write it while it is open), so that cached reads need no time limit.
    fn sole_writer(&self) -> bool {
        false
    }
    /// Stored events after a position, oldest first.
    async fn audit_events(&self, after_seq: i64, limit: i64) -> StoreResult<Vec<StoredAuditEvent>>;
    /// The sealed head the last append left (`None` before the first).
    async fn audit_head(&self) -> StoreResult<Option<String>>;
    /// Events matching a lookup, newest first: `(seq, event JSON)`.
    async fn lookup_audit(&self, query: &EventQuery) -> StoreResult<Vec<(i64, String)>>;

    /// Inserts a secret, its tags and its versions' values. `Duplicate` if the name exists.
    async fn insert_secret(&self, secret: &Secret, tags: &[Tag], values: &[(&str, &SealedValue)]) -> StoreResult<()>;
    /// A secret with its versions' metadata.
    async fn get_secret(&self, name: &str) -> StoreResult<Option<Secret>>;
    /// A secret, its tags and its ACSCurrent version's value, in one trip to the backend where
    /// it can: everything GetSecretValue needs when the cache misses.
    async fn get_secret_for_read(&self, name: &str) -> StoreResult<Option<SecretRead>> {
        let Some(secret) = self.get_secret(name).await? else { return Ok(None) };
        let tags = self.get_tags("secret", name).await?;
        let current = match secret.with_stage(sesame_api::secrets::CURRENT) {
            Some(v) => self.get_sealed_value(name, &v.id).await?.map(|sealed| (v.id.clone(), sealed)),
            None => None,
        };
        Ok(Some(SecretRead { secret, tags, current }))
    }
    /// Writes `secret` if the stored revision is still `secret.revision`, in one transaction:
    /// metadata, stages of every version, versions no longer listed removed, and `new_version`
    /// (its id and value) added. `Conflict` otherwise.
    async fn update_secret(&self, secret: &Secret, new_version: Option<(&str, &SealedValue)>) -> StoreResult<()> {
        self.update_secret_rotation(secret, new_version, RotationChange::Keep).await
    }
    /// `update_secret`, and the secret's rotation record changed in the same transaction.
    async fn update_secret_rotation(
        &self,
        secret: &Secret,
        new_version: Option<(&str, &SealedValue)>,
        rotation: RotationChange<'_>,
    ) -> StoreResult<()>;
    async fn get_rotation(&self, secret: &str) -> StoreResult<Option<Rotation>>;
    /// Takes or renews the lease on a secret's rotation record until `until`: true when it was
    /// free (or expired at `now`) or already this owner's. Two workers never hold it together.
    async fn lease_rotation(&self, secret: &str, owner: &str, until: Timestamp, now: Timestamp) -> StoreResult<bool>;
    /// Gives the lease back, if this owner holds it.
    async fn release_rotation(&self, secret: &str, owner: &str) -> StoreResult<()>;
    /// Records a rotation attempt's progress or failure (outside any secret write).
    async fn put_rotation(&self, rotation: &Rotation) -> StoreResult<()>;
    /// Secrets with a rotation to resume or retry by `now`, and secrets whose next automatic
    /// rotation is due (not pending deletion).
    async fn rotations_due(&self, now: Timestamp) -> StoreResult<Vec<String>>;
    async fn get_sealed_value(&self, name: &str, version_id: &str) -> StoreResult<Option<SealedValue>>;
    /// Removes a secret, its versions and its tags.
    async fn delete_secret(&self, name: &str) -> StoreResult<()>;
    /// A page of secrets (metadata only, `versions` left empty) matching every filter, oldest
    /// first, and the total count.
    async fn list_secrets(&self, filters: &[SecretFilter], offset: i64, limit: i64) -> StoreResult<(Vec<Secret>, i64)>;
    /// Secrets whose deletion window ended at or before `now`.
    async fn secrets_due(&self, now: Timestamp) -> StoreResult<Vec<String>>;

    /// Tags of one resource (`rtype` is `key` or `secret`), by key.
    async fn get_tags(&self, rtype: &str, id: &str) -> StoreResult<Vec<Tag>>;
    /// Adds or replaces tags atomically; false (and nothing written) if the resource would end
    /// up with more than `max` tags.
    async fn add_tags(&self, rtype: &str, id: &str, tags: &[Tag], max: usize) -> StoreResult<bool>;
    async fn remove_tags(&self, rtype: &str, id: &str, keys: Option<&[String]>) -> StoreResult<()>;
    /// Every tag of the given resources (or of all resources of the type), by id then key.
    async fn list_tags(&self, rtype: &str, ids: Option<&[String]>) -> StoreResult<Vec<(String, Tag)>>;

    /// `Duplicate` if the id exists.
    async fn insert_db_instance(&self, db: &DbInstance) -> StoreResult<()>;
    async fn get_db_instance(&self, id: &str) -> StoreResult<Option<DbInstance>>;
    /// Optimistic like `update_key`: `Conflict` unless the stored revision is `db.revision`.
    async fn update_db_instance(&self, db: &DbInstance) -> StoreResult<()>;
    /// False if it did not exist.
    async fn delete_db_instance(&self, id: &str) -> StoreResult<bool>;
    /// A page of instances, oldest first, optionally of one engine, and the total count.
    async fn list_db_instances(&self, engine: Option<&str>, offset: i64, limit: i64) -> StoreResult<(Vec<DbInstance>, i64)>;
}
