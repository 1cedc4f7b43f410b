//! The registry of database servers ("RDS instances") Sesame manages accounts on. Sesame logs
//! on before it registers a server, keeps the admin password sealed by a CMK, and never
//! returns it.

use crate::authz::{Authorizer, Grant, Resource};
use crate::engine::{DbTarget, Engine, EngineError, EngineFactory, EngineKind, TlsMode};
use crate::keys::KeyService;
use crate::model::DbInstance;
use crate::store::StoreError;
use crate::{Ctx, Deps, to_value};
use secrecy::SecretString;
use serde_json::Value;
use sesame_api::Error;
use sesame_api::error::Result;
use sesame_api::kms::{EncryptionContext, KeyRef};
use sesame_api::rds::*;
use sesame_crypto::random;
use std::sync::Arc;
use zeroize::Zeroize;

pub struct DbService {
    authz: Authorizer,
    deps: Deps,
    keys: KeyService,
    engines: Arc<dyn EngineFactory>,
}

fn seal_context(id: &str) -> EncryptionContext {
    EncryptionContext::of(&[("sesame:db-instance", id)])
}

/// Turns an engine's refusal into the wire vocabulary, naming the server but never a password.
pub fn engine_error(db: &DbInstance, e: EngineError) -> Error {
    let at = format!("{} at {}:{}", db.engine, db.host, db.port);
    match e {
        EngineError::Unreachable(why) => Error::DbUnreachable(format!("{at} ({why})")),
        EngineError::LogonFailed { user } => {
            Error::DbLogonFailed(format!("{at} refused the logon of {user}; check the account name and password"))
        }
        EngineError::InvalidInput(why) => Error::invalid("AccountName", why),
        EngineError::AccountExists(name) => Error::ResourceExist(format!("account {name} on {at}")),
        EngineError::AccountNotFound(name) => Error::ResourceNotFound(format!("account {name} on {at}")),
        EngineError::DatabaseNotFound(name) => Error::invalid("DBName", format!("database {name} does not exist on {at}")),
        EngineError::Refused { code, during } => Error::DbRefused(format!("{at} answered error {code} while {during}")),
        EngineError::Unsupported(what) => Error::invalid("Engine", format!("{what} is not supported yet")),
        EngineError::PasswordRejected { code } => {
            Error::DbRefused(format!("{at} refused a generated password by its password policy (error {code}); a fresh one is tried next"))
        }
    }
}

impl DbService {
    pub fn new(deps: Deps, engines: Arc<dyn EngineFactory>) -> Self {
        DbService { keys: KeyService::new(deps.clone()), authz: Authorizer::new(deps.clone()), deps, engines }
    }

    pub async fn execute(&self, ctx: &Ctx, req: DbRequest) -> Result<Value> {
        let (action, id) = match &req {
            DbRequest::RegisterDBInstance { id, .. } => ("rds:RegisterDBInstance", id.as_deref().unwrap_or("*")),
            DbRequest::ModifyDBInstance { id, .. } => ("rds:ModifyDBInstance", id.as_str()),
            DbRequest::DescribeDBInstances { .. } => ("rds:DescribeDBInstances", "*"),
            DbRequest::DescribeDBInstanceAttribute { id } => ("rds:DescribeDBInstanceAttribute", id.as_str()),
            DbRequest::DeregisterDBInstance { id } => ("rds:DeregisterDBInstance", id.as_str()),
            DbRequest::DescribeAccounts { id } => ("rds:DescribeAccounts", id.as_str()),
        };
        let resource = Resource::arn(self.authz.realm_arn("rds", &format!("dbinstance/{id}")));
        let grant = self.authz.check(ctx, action, resource).await?;
        self.run(ctx, req, grant).await
    }

    async fn run(&self, ctx: &Ctx, req: DbRequest, _grant: Grant) -> Result<Value> {
        match req {
            DbRequest::RegisterDBInstance { id, key, fields } => to_value(self.register(ctx, id, key, fields).await?),
            DbRequest::ModifyDBInstance { id, fields } => {
                self.modify(&id, fields).await?;
                to_value(RegisterResponse { db_instance_id: id })
            }
            DbRequest::DescribeDBInstances { page, engine } => {
                let (items, total) = self.deps.store.list_db_instances(engine.as_deref(), page.offset(), page.size).await?;
                let db_instance: Vec<DbInstanceInfo> = items.iter().map(info).collect();
                to_value(DescribeInstancesResponse {
                    page_record_count: db_instance.len() as i64,
                    items: InstanceItems { db_instance },
                    total_record_count: total,
                    page_number: page.number,
                })
            }
            DbRequest::DescribeDBInstanceAttribute { id } => {
                let db = self.get(&id).await?;
                to_value(DescribeAttributeResponse { items: AttributeItems { db_instance_attribute: vec![info(&db)] } })
            }
            DbRequest::DeregisterDBInstance { id } => {
                let deleted = self.deps.store.delete_db_instance(&id).await?;
                self.deps.caches.db_instances.remove(&id);
                if !deleted {
                    return Err(Error::DbInstanceNotFound(id));
                }
                to_value(RegisterResponse { db_instance_id: id })
            }
            DbRequest::DescribeAccounts { id } => {
                let db = self.get(&id).await?;
                let names = self.engine(&db).await?.list_accounts().await.map_err(|e| engine_error(&db, e))?;
                let db_instance_account =
                    names.into_iter().map(|account_name| AccountItem { db_instance_id: id.clone(), account_name }).collect();
                to_value(DescribeAccountsResponse { accounts: AccountItems { db_instance_account } })
            }
        }
    }

    /// A registered instance, through the cache (a rotation reads it every time).
    pub async fn get(&self, id: &str) -> Result<DbInstance> {
        Ok(DbInstance::clone(&*self.deps.caches.db_instances.get_or_load(id, self.load(id)).await?))
    }

    /// A registered instance as stored now, for changing it.
    async fn load(&self, id: &str) -> Result<DbInstance> {
        self.deps.store.get_db_instance(id).await?.ok_or_else(|| Error::DbInstanceNotFound(id.to_string()))
    }

    /// The engine of a registered instance, logged on with its unsealed admin password.
    pub async fn engine(&self, db: &DbInstance) -> Result<Box<dyn Engine>> {
        let password = self.unseal(db).await?;
        let target = target(db, password)?;
        self.engines.engine(target).map_err(|e| engine_error(db, e))
    }

    async fn unseal(&self, db: &DbInstance) -> Result<SecretString> {
        let (mut plain, _, _) = self.keys.open_blob(&db.sealed_password, &seal_context(&db.id)).await?;
        let text = String::from_utf8(plain.clone()).map_err(|_| Error::internal("sealed admin password is not UTF-8"));
        plain.zeroize();
        Ok(SecretString::from(text?))
    }

    async fn register(&self, ctx: &Ctx, id: Option<String>, key: Option<KeyRef>, f: DbInstanceFields) -> Result<RegisterResponse> {
        let id = match id {
            Some(id) => id,
            None => format!("rm-{}", random::id_suffix(16).map_err(Error::internal)?),
        };
        if self.deps.store.get_db_instance(&id).await?.is_some() {
            return Err(Error::ResourceExist(format!("database instance {id}")));
        }
        let key = match key {
            Some(k) => self.keys.resolve(&k).await?,
            None => {
                let instance = self.keys.default_instance().await?;
                self.keys.default_secrets_key(ctx, &instance).await?
            }
        };
        let engine = f.engine.ok_or_else(|| Error::missing("Engine"))?;
        let kind = EngineKind::parse(&engine).ok_or_else(|| Error::invalid("Engine", "is not a supported engine"))?;
        let password = f.admin_password.map(|p| p.expose_secret().to_string()).unwrap_or_default();
        let (sealed_password, _) = self.keys.seal_with_primary(&key, &seal_context(&id), password.as_bytes())?;
        let db = DbInstance {
            id: id.clone(),
            engine,
            host: f.host.ok_or_else(|| Error::missing("ConnectionString"))?,
            port: f.port.unwrap_or_else(|| kind.default_port()),
            admin_user: f.admin_user.ok_or_else(|| Error::missing("AccountName"))?,
            sealed_password,
            admin_database: f.admin_database.unwrap_or_default(),
            tls: f.tls.unwrap_or_else(|| TlsMode::default().as_str().to_string()),
            account_host: f.account_host.unwrap_or_default(),
            description: f.description.unwrap_or_default(),
            key_id: key.id.clone(),
            created: self.deps.clock.now(),
            revision: 0,
        };
        // Log on before anything is stored: a server Sesame cannot manage is not registered.
        self.engines
            .engine(target(&db, SecretString::from(password))?)
            .map_err(|e| engine_error(&db, e))?
            .ping()
            .await
            .map_err(|e| engine_error(&db, e))?;
        match self.deps.store.insert_db_instance(&db).await {
            Err(StoreError::Duplicate) => Err(Error::ResourceExist(format!("database instance {id}"))),
            other => Ok(other?),
        }?;
        Ok(RegisterResponse { db_instance_id: id })
    }

    async fn modify(&self, id: &str, f: DbInstanceFields) -> Result<()> {
        let mut db = self.load(id).await?;
        let key = self.keys.resolve(&KeyRef::Id(db.key_id.clone())).await?;
        let password = match &f.admin_password {
            Some(p) => {
                db.sealed_password = self.keys.seal_with_primary(&key, &seal_context(id), p.expose_secret().as_bytes())?.0;
                SecretString::from(p.expose_secret().to_string())
            }
            None => self.unseal(&db).await?,
        };
        let set = |slot: &mut String, v: Option<String>| {
            if let Some(v) = v {
                *slot = v;
            }
        };
        set(&mut db.host, f.host);
        set(&mut db.admin_user, f.admin_user);
        set(&mut db.admin_database, f.admin_database);
        set(&mut db.tls, f.tls);
        set(&mut db.account_host, f.account_host);
        set(&mut db.description, f.description);
        if let Some(p) = f.port {
            db.port = p;
        }
        // The changed settings must still log on.
        self.engines.engine(target(&db, password)?).map_err(|e| engine_error(&db, e))?.ping().await.map_err(|e| engine_error(&db, e))?;
        let updated = self.deps.store.update_db_instance(&db).await;
        self.deps.caches.db_instances.remove(id);
        match updated {
            Err(StoreError::Conflict) => {
                Err(Error::Throttling(format!("database instance {id} is being changed by another request; retry")))
            }
            other => Ok(other?),
        }
    }
}

fn target(db: &DbInstance, admin_password: SecretString) -> Result<DbTarget> {
    Ok(DbTarget {
        kind: EngineKind::parse(&db.engine).ok_or_else(|| Error::internal(format!("stored engine {:?} is unknown", db.engine)))?,
        host: db.host.clone(),
        port: db.port,
        admin_user: db.admin_user.clone(),
        admin_password,
        admin_database: Some(db.admin_database.clone()).filter(|d| !d.is_empty()),
        tls: TlsMode::parse(&db.tls).unwrap_or_default(),
        account_host: Some(db.account_host.clone()).filter(|h| !h.is_empty()),
    })
}

fn info(db: &DbInstance) -> DbInstanceInfo {
    DbInstanceInfo {
        db_instance_id: db.id.clone(),
        engine: db.engine.clone(),
        connection_string: db.host.clone(),
        port: db.port,
        account_name: db.admin_user.clone(),
        admin_database: db.admin_database.clone(),
        tls_mode: db.tls.clone(),
        account_host: db.account_host.clone(),
        db_instance_description: db.description.clone(),
        encryption_key_id: db.key_id.clone(),
        creation_time: db.created.to_string(),
        db_instance_status: "Running".into(),
    }
}
