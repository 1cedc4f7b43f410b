//! "Create accounts" mode of Rds secrets: Sesame makes the database accounts itself, but only
//! after the administrator has reviewed what it will make.
//!
//! ```text
//! CreateSecret  → names planned (checked free on the server), passwords generated and sealed
//!                 as the secret's versions; status AwaitingConfirmation; nothing on the server
//! ConfirmSecretAccounts → status Creating and an attempt record, in one write
//!               → accounts created (a leftover of an interrupted attempt is dropped first),
//!                 each logon verified → status Created and the record removed, in one write
//! ```
//!
//! Until the status is `Created`, GetSecretValue and RotateSecret answer `Rejected.SecretNotReady`.
//! A failed confirmation keeps its record and is retried by the scheduler with the rotation
//! backoff; an unconfirmed secret is discarded with DeleteSecret.

use crate::engine::{AccountSpec, EngineKind, Permission, check_account_name, generate_password};
use crate::model::{DbInstance, Rotation, RotationChange, RotationStep, Secret};
use crate::rotation::{clone_name, crash_point, rds_config_of};
use crate::secrets::SecretService;
use secrecy::SecretString;
use serde_json::Value;
use sesame_api::Error;
use sesame_api::error::Result;
use sesame_api::secrets::{ACCOUNTS_CREATED, AWAITING_CONFIRMATION, AccountCreation, CREATING_ACCOUNTS, CURRENT, PREVIOUS, RdsMode};

/// The ExtendedConfig field that holds the status.
pub(crate) const STATUS_FIELD: &str = "AccountCreation";
const NAME_ATTEMPTS: usize = 3;

fn config(s: &Secret) -> Option<Value> {
    s.extended_config.as_deref().and_then(|c| serde_json::from_str(c).ok())
}

/// Where a created-accounts secret stands; `None` for imported accounts and generic secrets.
pub(crate) fn creation_status(s: &Secret) -> Option<String> {
    config(s)?.get(STATUS_FIELD).and_then(Value::as_str).map(str::to_string)
}

fn set_status(s: &mut Secret, status: &str) -> Result<()> {
    let mut cfg = config(s).ok_or_else(|| Error::internal("a created-accounts secret has no extended configuration"))?;
    let obj = cfg.as_object_mut().ok_or_else(|| Error::internal("an extended configuration is not an object"))?;
    obj.insert(STATUS_FIELD.into(), status.into());
    s.extended_config = Some(cfg.to_string());
    Ok(())
}

/// The accounts' permission, from the stored ExtendedConfig.
fn account_spec(s: &Secret) -> Result<AccountSpec> {
    let cfg = config(s).ok_or_else(|| Error::internal("a created-accounts secret has no extended configuration"))?;
    let field = |name: &str| cfg.get(name).and_then(Value::as_str);
    match (field("AccountType"), field("DBName"), field("AccountPrivilege").and_then(Permission::parse)) {
        (Some("Privileged"), _, _) => Ok(AccountSpec::Privileged),
        (_, Some(db), Some(permission)) => Ok(AccountSpec::Standard { database: db.to_string(), permission }),
        _ => Err(Error::internal("a created-accounts secret lacks its account type or grant")),
    }
}

impl SecretService {
    /// Names and passwords of the accounts a new secret will create: `<prefix>_<6 random>` (and
    /// its `_clone` in dual mode), checked to be free on the server so that a confirmation
    /// never takes over an account Sesame did not make.
    pub(crate) async fn plan_accounts(&self, db: &DbInstance, mode: RdsMode, c: &AccountCreation) -> Result<Vec<(String, SecretString)>> {
        let engine = self.dbs.engine(db).await?;
        let fail = |e| crate::dbs::engine_error(db, e);
        let kind = EngineKind::parse(&db.engine).ok_or_else(|| Error::internal("a registered instance has an unknown engine"))?;
        for _ in 0..NAME_ATTEMPTS {
            let base = format!("{}_{}", c.prefix, sesame_crypto::random::id_suffix(6).map_err(Error::internal)?);
            let names = match mode {
                RdsMode::SingleUser => vec![base],
                RdsMode::DoubleUsers => {
                    let clone = clone_name(&base);
                    vec![base, clone]
                }
            };
            let mut free = true;
            for n in &names {
                check_account_name(kind, n).map_err(fail)?;
                free &= !engine.account_exists(n).await.map_err(fail)?;
            }
            if free {
                return names.into_iter().map(|n| Ok((n, generate_password().map_err(Error::internal)?))).collect();
            }
        }
        Err(Error::ResourceExist(format!("accounts named {}_… on {}; choose another AccountNamePrefix", c.prefix, db.id)))
    }

    /// ConfirmSecretAccounts: creates the reviewed accounts. Confirming again is harmless.
    pub async fn confirm_accounts(&self, name: &str) -> Result<()> {
        let s = self.load_live(name).await?;
        match creation_status(&s).as_deref() {
            Some(AWAITING_CONFIRMATION) => {
                let now = self.deps.clock.now();
                let current = s.with_stage(CURRENT).ok_or_else(|| Error::internal(format!("secret {name} has no ACSCurrent")))?;
                let attempt = Rotation {
                    secret: name.into(),
                    version_id: current.id.clone(),
                    step: RotationStep::PendingStored,
                    started: now,
                    attempts: 0,
                    last_error: String::new(),
                    next_retry: now,
                };
                self.modify_with(name, None, RotationChange::Put(&attempt), |s| {
                    if creation_status(s).as_deref() != Some(AWAITING_CONFIRMATION) {
                        return Err(Error::Throttling(format!("secret {name} is being confirmed by another request")));
                    }
                    set_status(s, CREATING_ACCOUNTS)?;
                    s.updated = now;
                    Ok(())
                })
                .await?;
                self.create_accounts(name).await
            }
            Some(CREATING_ACCOUNTS) => self.create_accounts(name).await,
            Some(ACCOUNTS_CREATED) => Ok(()),
            _ => Err(Error::invalid(
                "SecretName",
                format!("{name} was not created with AccountNamePrefix; there are no accounts to confirm"),
            )),
        }
    }

    /// Creates the accounts of a confirmed secret, or resumes an interrupted attempt.
    pub(crate) async fn create_accounts(&self, name: &str) -> Result<()> {
        let now = self.deps.clock.now();
        let Some(mut attempt) = self.deps.store.get_rotation(name).await? else {
            return Err(Error::internal(format!("secret {name} is being confirmed without an attempt record")));
        };
        if !self.deps.store.lease_rotation(name, &self.worker_id, now.plus_seconds(self.deps.limits.rotation_lease_secs), now).await? {
            return Err(Error::Throttling(format!("the accounts of secret {name} are being created by another worker")));
        }
        let s = self.load(name).await?;
        match self.make_accounts(&s).await {
            Ok(()) => {
                self.modify_with(name, None, RotationChange::Delete, |s| {
                    set_status(s, ACCOUNTS_CREATED)?;
                    s.next_rotation = s.rotation_interval.map(|i| now.plus_seconds(i));
                    s.updated = now;
                    Ok(())
                })
                .await?;
                tracing::info!(secret = %name, "accounts created");
                Ok(())
            }
            Err(e) => {
                self.fail_attempt(&mut attempt, &e);
                self.deps.store.put_rotation(&attempt).await?;
                self.deps.store.release_rotation(name, &self.worker_id).await?;
                tracing::warn!(secret = %name, attempts = attempt.attempts, error = %attempt.last_error, "creating the accounts failed; it will be retried");
                Err(e)
            }
        }
    }

    async fn make_accounts(&self, s: &Secret) -> Result<()> {
        let cfg = rds_config_of(s)?;
        let spec = account_spec(s)?;
        let db = self.dbs.get(&cfg.db_instance_id).await?;
        let engine = self.dbs.engine(&db).await?;
        let fail = |e| crate::dbs::engine_error(&db, e);
        let mut accounts = Vec::new();
        for stage in [CURRENT, PREVIOUS] {
            if let Some(a) = self.account_with(s, stage).await? {
                accounts.push(a);
            }
        }
        for a in &accounts {
            // The names were free when planned, so an account that exists now is one an
            // interrupted attempt made, maybe without its grants: make it again.
            if engine.account_exists(&a.name).await.map_err(fail)? {
                engine.drop_account(&a.name).await.map_err(fail)?;
            }
            engine.create_account(&a.name, &a.password, &spec).await.map_err(fail)?;
            crash_point("ApplyUnrecorded");
        }
        self.renew(&s.name).await?;
        for a in &accounts {
            engine.check_login(&a.name, &a.password, cfg.db_name.as_deref()).await.map_err(fail)?;
        }
        Ok(())
    }
}
