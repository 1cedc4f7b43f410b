//! Rotation of Rds secrets: a persisted state machine, one record per secret in progress.
//!
//! ```text
//! planned → PendingStored (new password sealed under ACSPending, record written in the same
//!           transaction) → Applied (the database has it) → Verified (a logon with it worked)
//!         → promoted (ACSCurrent/ACSPrevious moved and the record removed in one transaction)
//! ```
//!
//! Each step is recorded before the next begins, and every step can be redone, so a crash at any
//! point resumes where it stopped; the database never holds a password that no stored version
//! knows, because the version is stored before the database is touched. A failed step keeps the
//! record with its error, attempt count and next retry (exponential backoff, at most an hour),
//! and the scheduler tries again.
//!
//! Single mode sets a new password on the one account (the current version is briefly stale, so
//! clients retry once on an authentication failure). Dual mode sets it on the account under
//! ACSPrevious and re-syncs that account's grants from the current one (one administrator
//! logon for both), then verifies a logon and swaps the stages, so
//! the account clients hold stays valid; an imported single account gets `<name>_clone` (with
//! the same grants) at the first rotation.

use crate::engine::{AccountSpec, EngineError, generate_password};
use crate::model::{Rotation, RotationChange, RotationStep, SealedValue, Secret, SecretVersion};
use crate::secrets::SecretService;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};
use sesame_api::Error;
use sesame_api::error::Result;
use sesame_api::kms::{KeyRef, Sensitive};
use sesame_api::secrets::{CURRENT, PENDING, PREVIOUS, RdsAccounts, RdsMode, RdsSpec, RotationFields, RotationHealth};

/// RotateSecret's limit per secret (Alibaba's); `Limits::max_rotations_per_hour` may set another.
pub const MAX_ROTATIONS_PER_HOUR: usize = 50;
/// Backoff of failed attempts: 30 s (by default), doubling, at most an hour.
pub const FIRST_RETRY_SECS: i64 = 30;
pub const MAX_RETRY_SECS: i64 = 3_600;

/// A version's value for an Rds secret: one account, flat, as GetSecretValue returns it.
pub(crate) fn account_value(name: &str, password: &str) -> Sensitive<String> {
    Sensitive::new(json!({"AccountName": name, "AccountPassword": password}).to_string())
}

pub(crate) struct Account {
    pub name: String,
    pub password: SecretString,
}

fn parse_account(value: &str) -> Result<Account> {
    let v: Value = serde_json::from_str(value).map_err(|_| Error::internal("an Rds version's value is not JSON"))?;
    let name = v.get("AccountName").and_then(Value::as_str).ok_or_else(|| Error::internal("an Rds version has no AccountName"))?;
    let password =
        v.get("AccountPassword").and_then(Value::as_str).ok_or_else(|| Error::internal("an Rds version has no AccountPassword"))?;
    Ok(Account { name: name.to_string(), password: SecretString::from(password.to_string()) })
}

pub(crate) struct RdsConfig {
    pub mode: RdsMode,
    pub db_instance_id: String,
    /// `CustomData.DBName` (the JDBC plugin's convention), else the database created accounts
    /// were granted: the database the accounts log on to.
    pub db_name: Option<String>,
}

pub(crate) fn rds_config_of(s: &Secret) -> Result<RdsConfig> {
    let v: Value = s
        .extended_config
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok())
        .ok_or_else(|| Error::internal("an Rds secret has no extended configuration"))?;
    let field = |name: &str| v.get(name).and_then(Value::as_str);
    Ok(RdsConfig {
        mode: field("SecretSubType").and_then(RdsMode::parse).ok_or_else(|| Error::internal("an Rds secret has no SecretSubType"))?,
        db_instance_id: field("DBInstanceId").ok_or_else(|| Error::internal("an Rds secret has no DBInstanceId"))?.to_string(),
        db_name: ["/CustomData/DBName", "/DBName"]
            .iter()
            .find_map(|path| v.pointer(path).and_then(Value::as_str).filter(|d| !d.is_empty()))
            .map(str::to_string),
    })
}

/// The stored extended configuration of a new Rds secret: its sub-type, instance and CustomData.
/// With accounts to create, it also keeps what to create, the planned names and the
/// confirmation status.
pub(crate) fn rds_config(spec: &RdsSpec, original: Option<&str>, planned: &[String]) -> String {
    let custom = original
        .and_then(|c| serde_json::from_str::<Value>(c).ok())
        .and_then(|v| v.get("CustomData").cloned())
        .unwrap_or_else(|| Value::Object(Map::new()));
    let mut cfg = json!({"SecretSubType": spec.mode.as_str(), "DBInstanceId": spec.db_instance_id, "CustomData": custom});
    if let (RdsAccounts::Create(c), Some(obj)) = (&spec.accounts, cfg.as_object_mut()) {
        obj.insert("AccountNamePrefix".into(), c.prefix.clone().into());
        obj.insert("AccountType".into(), c.account_type.as_str().into());
        if let Some((db, privilege)) = &c.grant {
            obj.insert("DBName".into(), db.clone().into());
            obj.insert("AccountPrivilege".into(), privilege.clone().into());
        }
        obj.insert("PlannedAccounts".into(), planned.into());
        obj.insert(crate::accounts::STATUS_FIELD.into(), sesame_api::secrets::AWAITING_CONFIRMATION.into());
    }
    cfg.to_string()
}

/// The second account of a dual pair made from one imported account.
pub fn clone_name(account: &str) -> String {
    format!("{account}_clone")
}

/// A rotation's database instance and its engine (with the administrator's session opened, when
/// it comes from [`SecretService::stage_while_preparing`]).
type Prepared = (crate::model::DbInstance, Box<dyn crate::engine::Engine>);

/// Fault injection for the crash-safety tests: when `SESAME_FAULT_CRASH_AT` names a point, the
/// process kills itself there with SIGKILL, as a power cut would. Points: `PendingStored`,
/// `ApplyUnrecorded` (the database changed, the step not yet recorded), `Applied`, `Verified`.
pub(crate) fn crash_point(point: &str) {
    if std::env::var("SESAME_FAULT_CRASH_AT").as_deref() == Ok(point) {
        tracing::error!(point, "fault injection: killing this process");
        let _ = std::process::Command::new("kill").args(["-KILL", &std::process::id().to_string()]).status();
        std::process::abort();
    }
}

fn backoff(first: i64, attempts: i64) -> i64 {
    let exp = u32::try_from(attempts.saturating_sub(1)).unwrap_or(u32::MAX).min(20);
    first.saturating_mul(1_i64 << exp).min(MAX_RETRY_SECS)
}

/// A failed step, and whether the database refused the password itself (so that a fresh one
/// may pass where a retry of the same would not).
pub(crate) struct Failure {
    pub error: Error,
    pub fresh_password: bool,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure { error, fresh_password: false }
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(e: crate::store::StoreError) -> Self {
        Error::from(e).into()
    }
}

pub(crate) fn new_version_id() -> Result<String> {
    Ok(sesame_crypto::random::uuid().map_err(Error::internal)?.to_lowercase())
}

/// Rotation fields of a managed secret's responses (none for generic secrets).
pub(crate) fn rotation_fields(s: &Secret) -> RotationFields {
    if s.secret_type == "Generic" {
        return RotationFields::default();
    }
    RotationFields {
        automatic_rotation: Some(if s.rotation_interval.is_some() { "Enabled" } else { "Disabled" }.into()),
        rotation_interval: s.rotation_interval.map(|i| format!("{i}s")),
        last_rotation_date: s.last_rotation.map(|t| t.to_string()),
        next_rotation_date: s.next_rotation.map(|t| t.to_string()),
    }
}

impl SecretService {
    /// Rotates an Rds secret now, or resumes the rotation in progress. With a `version_id`
    /// the call is idempotent: a version that exists already is the answer.
    pub async fn rotate(&self, name: &str, version_id: Option<&str>) -> Result<String> {
        let s = self.load_live(name).await?;
        if s.secret_type != "Rds" {
            return Err(Error::invalid(
                "SecretName",
                format!("{name} is a {} secret; RotateSecret is for Rds secrets (use PutSecretValue)", s.secret_type),
            ));
        }
        match crate::accounts::creation_status(&s).as_deref() {
            Some(sesame_api::secrets::AWAITING_CONFIRMATION) => {
                return Err(Error::SecretNotReady(format!("{name} awaits confirmation of its accounts (ConfirmSecretAccounts)")));
            }
            // An interrupted or failed confirmation: the scheduler resumes it here.
            Some(sesame_api::secrets::CREATING_ACCOUNTS) => {
                self.create_accounts(name).await?;
                return Ok(s.with_stage(CURRENT).map(|v| v.id.clone()).unwrap_or_default());
            }
            _ => {}
        }
        let cfg = rds_config_of(&s)?;
        let pending = s.with_stage(PENDING).map(|v| v.id.clone());
        if let Some(v) = version_id {
            // A version that exists answers for itself, unless another rotation is under way
            // (as when the database refused this version's password and a fresh one replaced it).
            if s.version(v).is_some() && pending.is_none() {
                return Ok(v.to_string());
            }
            if let Some(p) = pending.as_ref().filter(|p| p.as_str() != v) {
                return Err(Error::Throttling(format!("secret {name} is being rotated to version {p}; try again later")));
            }
        }
        let (version, started) = match pending {
            Some(p) => (p, None),
            None => {
                let hour_ago = self.deps.clock.now().seconds() - 3_600;
                let limit = self.deps.limits.max_rotations_per_hour;
                if s.versions.iter().filter(|v| v.created.seconds() > hour_ago).count() >= limit {
                    return Err(Error::Throttling(format!("secret {name} was rotated {limit} times in the last hour")));
                }
                let (version, attempt, staged, prepared) = self.stage_while_preparing(&s, &cfg, version_id).await?;
                (version, Some((attempt, staged, prepared)))
            }
        };
        self.finish(name, &cfg, &version, started).await?;
        Ok(version)
    }

    /// Step 1 ([`Self::stage_pending`]) while the administrator logs on: the logon changes
    /// nothing, and the password changes only after the record has landed. A failed logon is
    /// the attempt's failure, as it is when the step logs on itself; a failed write drops the
    /// logon at once.
    async fn stage_while_preparing(
        &self,
        s: &Secret,
        cfg: &RdsConfig,
        version_id: Option<&str>,
    ) -> Result<(String, Rotation, Secret, Result<Prepared, Failure>)> {
        let prepare = async {
            let (db, engine) = self.instance_engine(cfg).await?;
            match engine.prepare_admin().await {
                Ok(()) => Ok((db, engine)),
                Err(e) => Err(Failure { fresh_password: false, error: crate::dbs::engine_error(&db, e) }),
            }
        };
        let stage = self.stage_pending(s, cfg, version_id);
        tokio::pin!(stage, prepare);
        let mut prepared = None;
        let staged = loop {
            tokio::select! {
                staged = &mut stage => break staged,
                p = &mut prepare, if prepared.is_none() => prepared = Some(p),
            }
        };
        let (version, attempt, staged) = staged?;
        let prepared = match prepared {
            Some(p) => p,
            None => prepare.await,
        };
        Ok((version, attempt, staged, prepared))
    }

    /// A rotation's database instance and its engine.
    async fn instance_engine(&self, cfg: &RdsConfig) -> Result<Prepared> {
        let db = self.dbs.get(&cfg.db_instance_id).await?;
        let engine = self.dbs.engine(&db).await?;
        Ok((db, engine))
    }

    pub(crate) async fn account_at(&self, s: &Secret, version_id: &str) -> Result<Account> {
        parse_account(Sensitive::new(self.open(&s.name, version_id).await?).expose_secret())
    }

    pub(crate) async fn account_with(&self, s: &Secret, stage: &str) -> Result<Option<Account>> {
        match s.with_stage(stage) {
            Some(v) => Ok(Some(self.account_at(s, &v.id).await?)),
            None => Ok(None),
        }
    }

    /// The account a new version of `s` names, with a fresh password, sealed as version `id`.
    async fn seal_next(&self, s: &Secret, cfg: &RdsConfig, id: &str) -> Result<SealedValue> {
        let current =
            self.account_with(s, CURRENT).await?.ok_or_else(|| Error::internal(format!("secret {} has no ACSCurrent", s.name)))?;
        let target = match cfg.mode {
            RdsMode::SingleUser => current.name.clone(),
            RdsMode::DoubleUsers => match self.account_with(s, PREVIOUS).await? {
                Some(previous) if previous.name != current.name => previous.name,
                _ => clone_name(&current.name),
            },
        };
        let password = generate_password().map_err(Error::internal)?;
        let key = self.keys.resolve_cached(&KeyRef::Id(s.key_id.clone())).await?;
        self.seal(&key.key, &s.name, id, account_value(&target, password.expose_secret()).expose_secret().as_bytes())
    }

    /// Step 1: the new password, sealed under ACSPending, and the attempt record with this
    /// worker's lease on it, in one write. Returns the version, the record and the secret as
    /// written.
    async fn stage_pending(&self, s: &Secret, cfg: &RdsConfig, version_id: Option<&str>) -> Result<(String, Rotation, Secret)> {
        let id = match version_id {
            Some(v) => v.to_string(),
            None => new_version_id()?,
        };
        let sealed = self.seal_next(s, cfg, &id).await?;
        let now = self.deps.clock.now();
        let attempt = Rotation {
            secret: s.name.clone(),
            version_id: id.clone(),
            step: RotationStep::PendingStored,
            started: now,
            attempts: 0,
            last_error: String::new(),
            next_retry: now,
        };
        let until = now.plus_seconds(self.deps.limits.rotation_lease_secs);
        let start = RotationChange::Start { rotation: &attempt, owner: &self.worker_id, until, now };
        let staged = self
            .modify_from(Some(s.clone()), &s.name, Some((&id, &sealed)), start, |s| {
                if let Some(p) = s.with_stage(PENDING) {
                    return Err(Error::Throttling(format!("secret {} is being rotated to version {}; try again later", s.name, p.id)));
                }
                if s.version(&id).is_some() {
                    return Err(Error::ResourceExist(format!("version {id} of secret {}", s.name)));
                }
                s.versions.push(SecretVersion { id: id.clone(), created: now, data_type: "text".into(), stages: vec![PENDING.into()] });
                Ok(())
            })
            .await?;
        // Version values never change: the next step reads this one from the cache.
        crate::secrets::cache_sealed(&self.deps.caches, &s.name, &id, sealed);
        crash_point("PendingStored");
        Ok((id, attempt, staged))
    }

    /// Steps 2–4, from wherever the record says the attempt stopped. A failure is recorded for
    /// the scheduler's retry and returned.
    /// `started` is the record and secret `stage_pending` has just written, lease included, with
    /// the instance and its engine whose administrator's session was opened meanwhile (or why it
    /// could not be); without it the record is read and leased here.
    async fn finish(
        &self,
        name: &str,
        cfg: &RdsConfig,
        version: &str,
        started: Option<(Rotation, Secret, Result<Prepared, Failure>)>,
    ) -> Result<()> {
        let (mut attempt, s, now, prepared) = match started {
            Some((attempt, s, prepared)) => {
                let at = attempt.started;
                (attempt, s, at, Some(prepared))
            }
            None => {
                let (attempt, s, now) = self.lease_attempt(name, version).await?;
                (attempt, s, now, None)
            }
        };
        let result = async {
            let account = self.account_at(&s, version).await?;
            let current =
                self.account_with(&s, CURRENT).await?.ok_or_else(|| Error::internal(format!("secret {name} has no ACSCurrent")))?;
            self.apply_and_verify(cfg, &mut attempt, &account, &current, now, prepared).await
        }
        .await;
        self.conclude(name, cfg, version, attempt, s, result).await
    }

    /// Resuming: the attempt's record (a fresh one if it names another version), leased to this
    /// worker, and the secret as it is now; with the time the lease was taken.
    async fn lease_attempt(&self, name: &str, version: &str) -> Result<(Rotation, Secret, sesame_api::Timestamp)> {
        let now = self.deps.clock.now();
        let attempt = match self.deps.store.get_rotation(name).await? {
            Some(a) if a.version_id == version => a,
            // A pending version without its record cannot happen (they are written together);
            // redo everything rather than trust a stale record.
            _ => Rotation {
                secret: name.into(),
                version_id: version.into(),
                step: RotationStep::PendingStored,
                started: now,
                attempts: 0,
                last_error: String::new(),
                next_retry: now,
            },
        };
        // One worker at a time on a secret's rotation, across processes sharing the store.
        let lease = |now: sesame_api::Timestamp| now.plus_seconds(self.deps.limits.rotation_lease_secs);
        if !self.deps.store.lease_rotation(name, &self.worker_id, lease(now), now).await? {
            return Err(Error::Throttling(format!("secret {name} is being rotated by another worker; try again later")));
        }
        let s = self.load(name).await?;
        Ok((attempt, s, now))
    }

    /// Step 4 after a successful attempt; after a failed one, the record of the failure.
    async fn conclude(
        &self,
        name: &str,
        cfg: &RdsConfig,
        version: &str,
        mut attempt: Rotation,
        s: Secret,
        result: Result<(), Failure>,
    ) -> Result<()> {
        let now = self.deps.clock.now();
        match result {
            Ok(()) => self.promote(s, version).await,
            Err(f) if f.fresh_password => {
                // The database refused the password itself (its password policy) and holds
                // nothing new: the next attempt gets a fresh password, as a new version.
                let retry = self.fail_attempt(&mut attempt, &f.error);
                let old = attempt.version_id.clone();
                attempt.version_id = new_version_id()?;
                // The stages have not moved: this worker holds the rotation's lease.
                let sealed = self.seal_next(&s, cfg, &attempt.version_id).await?;
                let new_id = attempt.version_id.clone();
                self.modify_with(name, Some((&new_id, &sealed)), RotationChange::Put(&attempt), |s| {
                    for v in &mut s.versions {
                        if v.id == old {
                            v.stages.retain(|st| st != PENDING);
                        }
                    }
                    s.versions.push(SecretVersion {
                        id: new_id.clone(),
                        created: now,
                        data_type: "text".into(),
                        stages: vec![PENDING.into()],
                    });
                    crate::secrets::prune_versions(s);
                    Ok(())
                })
                .await?;
                self.deps.store.release_rotation(name, &self.worker_id).await?;
                tracing::warn!(secret = %name, attempts = attempt.attempts, error = %attempt.last_error, retry_in = retry, "the database refused the new password; a fresh one will be tried");
                Err(f.error)
            }
            Err(f) => {
                self.fail_attempt(&mut attempt, &f.error);
                self.deps.store.put_rotation(&attempt).await?;
                self.deps.store.release_rotation(name, &self.worker_id).await?;
                tracing::warn!(secret = %name, attempts = attempt.attempts, error = %attempt.last_error, "rotation attempt failed; it will be retried");
                Err(f.error)
            }
        }
    }

    /// Counts a failed attempt on its record and schedules the retry; returns the delay.
    pub(crate) fn fail_attempt(&self, attempt: &mut Rotation, e: &Error) -> i64 {
        attempt.attempts += 1;
        attempt.last_error = format!("{}: {}", e.code(), e.message());
        let delay = backoff(self.deps.limits.first_retry_secs, attempt.attempts);
        attempt.next_retry = self.deps.clock.now().plus_seconds(delay);
        delay
    }

    async fn apply_and_verify(
        &self,
        cfg: &RdsConfig,
        attempt: &mut Rotation,
        account: &Account,
        current: &Account,
        leased_at: sesame_api::Timestamp,
        prepared: Option<Result<Prepared, Failure>>,
    ) -> Result<(), Failure> {
        let (db, engine) = match prepared {
            Some(p) => p?,
            None => self.instance_engine(cfg).await?,
        };
        let fail = |e: EngineError| Failure { fresh_password: e.is_password_policy(), error: crate::dbs::engine_error(&db, e) };
        let second_account = cfg.mode == RdsMode::DoubleUsers && account.name != current.name;
        // Applied here (not resumed from a record that says so): the step is written down below.
        let applying = attempt.step == RotationStep::PendingStored;
        if applying {
            // The new password and (dual mode) the grants re-synced from the current account,
            // over one administrator logon; both can be redone. The clone of an imported single
            // account does not exist before the first rotation.
            let grants_from = second_account.then_some(current.name.as_str());
            match engine.set_password_and_grants(&account.name, &account.password, grants_from).await {
                Err(EngineError::AccountNotFound(_)) if second_account => {
                    engine.create_account(&account.name, &account.password, &AccountSpec::LoginOnly).await.map_err(fail)?;
                    engine.copy_grants(&current.name, &account.name).await.map_err(fail)?;
                }
                other => other.map_err(fail)?,
            }
            crash_point("ApplyUnrecorded");
            attempt.step = RotationStep::Applied;
        }
        // The lease taken before the database work holds for `rotation_lease_secs`: renew it
        // (and learn whether another worker took over) once half of that is gone, not always.
        if self.deps.clock.now().seconds() - leased_at.seconds() >= self.deps.limits.rotation_lease_secs / 2 {
            self.renew(&attempt.secret).await?;
        }
        if attempt.step == RotationStep::Applied {
            // The applied step is written down while the new password's logon is checked: a
            // crash before the record lands resumes from PendingStored and sets the same
            // password again, as a crash just after applying it always could.
            let applied: &Rotation = attempt;
            let record = async {
                if applying {
                    self.deps.store.put_rotation(applied).await?;
                    crash_point("Applied");
                }
                Ok::<_, Error>(())
            };
            let logon = engine.check_login(&account.name, &account.password, cfg.db_name.as_deref());
            let (recorded, logged_on) = tokio::join!(record, logon);
            recorded?;
            logged_on.map_err(fail)?;
            // Not written down: promotion follows at once, and an attempt interrupted here
            // resumes from Applied and checks the logon again, which is harmless.
            attempt.step = RotationStep::Verified;
            crash_point("Verified");
        }
        Ok(())
    }

    pub(crate) async fn renew(&self, name: &str) -> Result<()> {
        let now = self.deps.clock.now();
        if !self.deps.store.lease_rotation(name, &self.worker_id, now.plus_seconds(self.deps.limits.rotation_lease_secs), now).await? {
            return Err(Error::Throttling(format!("the rotation of secret {name} was taken over by another worker")));
        }
        Ok(())
    }

    /// Step 4: ACSPending becomes ACSCurrent, the old current becomes ACSPrevious, and the record
    /// goes, in one write.
    async fn promote(&self, loaded: Secret, version: &str) -> Result<()> {
        let now = self.deps.clock.now();
        let name = loaded.name.clone();
        self.modify_from(Some(loaded), &name, None, RotationChange::Delete, |s| {
            let old = s.with_stage(CURRENT).map(|v| v.id.clone());
            s.move_stage(CURRENT, version);
            if let Some(old) = old.filter(|o| o != version) {
                s.move_stage(PREVIOUS, &old);
            }
            for v in &mut s.versions {
                v.stages.retain(|st| st != PENDING);
            }
            s.last_rotation = Some(now);
            s.next_rotation = s.rotation_interval.map(|i| now.plus_seconds(i));
            s.updated = now;
            crate::secrets::prune_versions(s);
            Ok(())
        })
        .await?;
        tracing::info!(secret = %name, version = %version, "rotated");
        Ok(())
    }

    /// Abandons the rotation in progress, if the database cannot have its password: the pending
    /// version stays stored without a stage, so whatever the database holds is still known.
    pub async fn cancel_rotation(&self, name: &str) -> Result<()> {
        let s = self.load(name).await?;
        if crate::accounts::creation_status(&s).is_some_and(|st| st != sesame_api::secrets::ACCOUNTS_CREATED) {
            return Err(Error::invalid(
                "SecretName",
                format!("{name} has no accounts yet; there is no rotation to cancel (delete the secret to abandon it)"),
            ));
        }
        let attempt = self
            .deps
            .store
            .get_rotation(name)
            .await?
            .ok_or_else(|| Error::invalid("SecretName", format!("no rotation of {name} is in progress")))?;
        if attempt.step != RotationStep::PendingStored {
            return Err(Error::invalid(
                "SecretName",
                format!(
                    "the rotation of {name} has reached the database (step {}); it can only be completed: RotateSecret retries it",
                    attempt.step.as_str()
                ),
            ));
        }
        let cfg = rds_config_of(&s)?;
        // A crash between changing a password and recording it leaves the step at
        // PendingStored; in single mode that would leave ACSCurrent stale, so ask the database.
        if cfg.mode == RdsMode::SingleUser
            && let Ok(pending) = self.account_at(&s, &attempt.version_id).await
            && let Ok(db) = self.dbs.get(&cfg.db_instance_id).await
            && let Ok(engine) = self.dbs.engine(&db).await
            && engine.check_login(&pending.name, &pending.password, cfg.db_name.as_deref()).await.is_ok()
        {
            return Err(Error::invalid(
                "SecretName",
                format!("the database already holds the new password of {name}; RotateSecret completes the rotation"),
            ));
        }
        let now = self.deps.clock.now();
        if !self.deps.store.lease_rotation(name, &self.worker_id, now.plus_seconds(self.deps.limits.rotation_lease_secs), now).await? {
            return Err(Error::Throttling(format!("secret {name} is being rotated right now; try again later")));
        }
        self.modify_with(name, None, RotationChange::Delete, |s| {
            for v in &mut s.versions {
                v.stages.retain(|st| st != PENDING);
            }
            s.next_rotation = s.rotation_interval.map(|i| now.plus_seconds(i));
            s.updated = now;
            Ok(())
        })
        .await?;
        tracing::info!(secret = %name, version = %attempt.version_id, "rotation cancelled");
        Ok(())
    }

    pub(crate) async fn health(&self, s: &Secret) -> Result<Option<RotationHealth>> {
        if s.secret_type == "Generic" {
            return Ok(None);
        }
        Ok(Some(match self.deps.store.get_rotation(&s.name).await? {
            Some(r) => RotationHealth {
                in_progress: true,
                step: r.step.as_str().into(),
                attempts: r.attempts,
                last_error: r.last_error,
                next_retry: r.next_retry.to_string(),
            },
            None => RotationHealth {
                in_progress: false,
                step: String::new(),
                attempts: 0,
                last_error: String::new(),
                next_retry: String::new(),
            },
        }))
    }

    /// Rotations to resume or retry, and automatic rotations that are due. Called by the
    /// scheduler; each failure is recorded on its secret and logged.
    pub async fn run_due_rotations(&self) -> Result<usize> {
        let due = self.deps.store.rotations_due(self.deps.clock.now()).await?;
        let mut done = 0;
        for name in due {
            match self.rotate(&name, None).await {
                Ok(_) => done += 1,
                Err(e) => tracing::warn!(secret = %name, error = %e.code(), "scheduled rotation did not complete"),
            }
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_thirty_seconds_to_an_hour() {
        assert_eq!((backoff(30, 1), backoff(30, 2), backoff(30, 3)), (30, 60, 120));
        assert_eq!(backoff(30, 8), 3_600);
        assert_eq!(backoff(30, i64::MAX), 3_600);
        assert_eq!(backoff(1, 2), 2);
    }

    #[test]
    fn account_values_round_trip_even_with_quotes() {
        let v = account_value("a\"b", "p'\\w");
        let a = parse_account(v.expose_secret()).unwrap();
        assert_eq!((a.name.as_str(), a.password.expose_secret()), ("a\"b", "p'\\w"));
        assert!(!format!("{v:?}").contains("p'"));
    }
}
