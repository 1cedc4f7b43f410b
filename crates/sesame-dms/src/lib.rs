//! Data Management (DMS): database instances registered with an access mode, a SQL console on
//! them, and a record of every statement.
//!
//! DMS is a client of the KMS API like any other: it holds an access key and calls ListSecrets
//! and GetSecretValue (ACSCurrent) through the signed API at every logon, so it can run in the
//! server's process (the default, where the client hands its requests to the server's gateway)
//! or in its own (over HTTP). The credential lives for one connection
//! and is never stored: a KMS-secret instance keeps only the secret's name, and a password
//! instance keeps its password sealed by a KMS key, opened with Decrypt at every logon. On an
//! authentication failure (PostgreSQL 28P01, MySQL/MariaDB 1045, SQL Server 18456) DMS fetches
//! the secret again and retries, a bounded number of times, which absorbs a single-account
//! rotation's window.

pub mod sql;
pub mod store;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use secrecy::SecretString;
use serde_json::{Map, Value, json};
use sesame_api::Error;
use sesame_api::dms::*;
use sesame_client::{Client, ClientError};
use sesame_core::Ctx;
use sesame_core::authz::{Authorize, Grant};
use sesame_engines::session::{self, Outcome};
use sesame_engines::{DbTarget, EngineError, EngineKind, TlsMode};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::{DmsStore, Instance, Login};

type Result<T, E = Error> = std::result::Result<T, E>;

/// The alias of the KMS key that seals the passwords of password-mode instances.
pub const DMS_KEY_ALIAS: &str = "alias/sesame-dms";
/// Logons per statement batch: the first, and refetches after authentication failures.
pub const LOGON_ATTEMPTS: u32 = 4;

#[derive(Debug, Clone)]
pub struct DmsSettings {
    /// Keep each statement's text in the audit (its kind, outcome and row count are always kept).
    pub audit_statements: bool,
    pub logon_attempts: u32,
    /// Wait before the n-th refetch: `n × retry_delay`.
    pub retry_delay: Duration,
}

impl Default for DmsSettings {
    fn default() -> Self {
        DmsSettings { audit_statements: true, logon_attempts: LOGON_ATTEMPTS, retry_delay: Duration::from_millis(150) }
    }
}

pub struct DmsService {
    kms: Arc<Client>,
    authz: Arc<dyn Authorize>,
    store: DmsStore,
    settings: DmsSettings,
}

/// What one logon uses, for one connection only.
struct Credential {
    account: String,
    password: SecretString,
    secret_name: String,
    version_id: String,
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default()
}

fn not_found(i: &InstanceRef) -> Error {
    match i {
        InstanceRef::Id(id) => Error::ResourceNotFound(format!("DMS instance {id}")),
        InstanceRef::Alias(a) => Error::ResourceNotFound(format!("DMS instance {a}")),
    }
}

/// KMS's answer about a secret, in the words of the DMS request that needed it.
fn kms_error(what: &str, e: ClientError) -> Error {
    match &e {
        ClientError::Api { status: 404, .. } => Error::ResourceNotFound(format!("{what} in KMS")),
        ClientError::Api { status: 403, code, .. } => {
            Error::NoPermission { action: "kms:GetSecretValue".into(), resource: format!("{what} (KMS answered {code})") }
        }
        ClientError::Api { code, .. } if code == "Rejected.ResourceInDeleteWindow" => Error::ResourceInDeleteWindow(what.to_string()),
        ClientError::Api { code, .. } if code == "Rejected.SecretNotReady" => Error::SecretNotReady(what.to_string()),
        ClientError::Api { status: 429, .. } => Error::Throttling(format!("KMS is busy answering for {what}")),
        ClientError::Transport { .. } => Error::Unavailable,
        _ => Error::internal(format!("KMS call for {what}: {e}")),
    }
}

fn engine_error(i: &Instance, user: &str, e: EngineError) -> Error {
    let at = format!("{} instance {} ({}:{})", i.engine, i.alias, i.host, i.port);
    match e {
        EngineError::Unreachable(why) => Error::DbUnreachable(format!("{at} ({why})")),
        EngineError::LogonFailed { .. } => Error::DbLogonFailed(format!("{at} refused the logon of {user}")),
        EngineError::DatabaseNotFound(db) => Error::invalid("DatabaseName", format!("database {db} does not exist on {at}")),
        EngineError::Unsupported(what) => Error::invalid("InstanceType", format!("{what} is not supported yet")),
        other => Error::DbRefused(format!("{at}: {other}")),
    }
}

fn info(i: &Instance) -> InstanceInfo {
    let (login_mode, secret_name, db_instance_id, database_user) = match &i.login {
        Login::KmsSecret { secret_name, db_instance_id } => ("KmsSecret", secret_name.clone(), db_instance_id.clone(), None),
        Login::Password { user, .. } => ("Password", None, None, Some(user.clone())),
    };
    InstanceInfo {
        instance_id: i.id,
        instance_alias: i.alias.clone(),
        instance_type: i.engine.clone(),
        host: i.host.clone(),
        port: i.port,
        database_name: i.database.clone(),
        env_type: i.env_type.clone(),
        query_timeout: i.query_timeout,
        tls_mode: i.tls.clone(),
        login_mode: login_mode.into(),
        secret_name,
        db_instance_id,
        database_user,
        create_time: sesame_api::Timestamp(i.created).to_string(),
    }
}

fn to_value<T: serde::Serialize>(v: T) -> Result<Value> {
    serde_json::to_value(v).map_err(Error::internal)
}

fn seal_context(alias: &str) -> String {
    json!({"sesame:dms-instance": alias}).to_string()
}

impl DmsService {
    /// `kms` carries DMS's own access key; `store` is DMS's file.
    pub fn new(kms: Client, store: DmsStore, authz: Arc<dyn Authorize>, settings: DmsSettings) -> Self {
        DmsService { kms: Arc::new(kms), authz, store, settings }
    }

    pub async fn execute(&self, ctx: &Ctx, req: DmsRequest) -> Result<Value> {
        let named = match &req {
            DmsRequest::GetInstance { instance } | DmsRequest::DeleteInstance { instance } => Some(instance),
            DmsRequest::ExecuteScript(x) => Some(&x.instance),
            _ => None,
        };
        // The instance is read once, for its ARN and then for the action.
        let found = match named {
            Some(InstanceRef::Id(id)) => self.store.get_by_id(*id).await?,
            Some(InstanceRef::Alias(a)) => self.store.get_by_alias(a).await?,
            None => None,
        };
        // An instance that does not exist is named as the caller named it, so that an
        // unauthorized caller learns nothing.
        let target = match (&req, named, &found) {
            (_, _, Some(i)) => i.alias.clone(),
            (_, Some(InstanceRef::Alias(a)), None) => a.clone(),
            (_, Some(InstanceRef::Id(id)), None) => id.to_string(),
            (DmsRequest::RegisterInstance(r), None, None) => r.alias.clone(),
            _ => "*".into(),
        };
        let action = match &req {
            DmsRequest::RegisterInstance(_) => "dms:RegisterInstance",
            DmsRequest::ListInstances { .. } => "dms:ListInstances",
            DmsRequest::GetInstance { .. } => "dms:GetInstance",
            DmsRequest::DeleteInstance { .. } => "dms:DeleteInstance",
            DmsRequest::ExecuteScript(_) => "dms:ExecuteScript",
            DmsRequest::ListSqlExecAuditLog(_) => "dms:ListSQLExecAuditLog",
        };
        let grant = self.authz.authorize(ctx, action, &self.authz.arn("dms", &format!("instance/{target}"))).await?;
        let instance = match (found, named) {
            (Some(i), _) => Ok(i),
            (None, Some(r)) => Err(not_found(r)),
            (None, None) => Err(Error::internal("the action names no DMS instance")),
        };
        self.run(ctx, req, instance, grant).await
    }

    /// `instance` is the instance the request names, read once by `execute`.
    async fn run(&self, ctx: &Ctx, req: DmsRequest, instance: Result<Instance>, _grant: Grant) -> Result<Value> {
        match req {
            DmsRequest::RegisterInstance(r) => to_value(RegisterInstanceResponse { success: true, instance_id: self.register(*r).await? }),
            DmsRequest::ListInstances { page } => {
                let (items, total) = self.store.list(page.offset(), page.size).await?;
                to_value(ListInstancesResponse {
                    success: true,
                    instance_list: InstanceList { instance: items.iter().map(info).collect() },
                    total_count: total,
                })
            }
            DmsRequest::GetInstance { .. } => to_value(GetInstanceResponse { success: true, instance: info(&instance?) }),
            DmsRequest::DeleteInstance { .. } => {
                self.store.delete(instance?.id).await?;
                to_value(DmsOk { success: true })
            }
            DmsRequest::ExecuteScript(x) => to_value(self.execute_script(ctx, x, instance?).await?),
            DmsRequest::ListSqlExecAuditLog(q) => {
                let (rows, total) = self.store.audit_log(q).await?;
                let entries = rows
                    .into_iter()
                    .map(|(t, mut e)| {
                        e.op_time = sesame_api::Timestamp(t).to_string();
                        e
                    })
                    .collect();
                to_value(AuditLogResponse { success: true, list: AuditList { entries }, total_count: total })
            }
        }
    }

    /// Registers an instance after a test logon with the credential it will use.
    async fn register(&self, r: RegisterInstance) -> Result<i64> {
        if self.store.get_by_alias(&r.alias).await?.is_some() {
            return Err(Error::ResourceExist(format!("DMS instance {}", r.alias)));
        }
        let login = match r.login {
            LoginSpec::KmsSecret { secret_name, db_instance_id } => Login::KmsSecret { secret_name, db_instance_id },
            LoginSpec::Password { user, password } => {
                let key = self.dms_key().await?;
                let plaintext = B64.encode(password.expose_secret().as_bytes());
                let v = self
                    .kms
                    .call("Encrypt", &[("KeyId", &key), ("Plaintext", &plaintext), ("EncryptionContext", &seal_context(&r.alias))])
                    .await
                    .map_err(|e| kms_error("the DMS key", e))?;
                let sealed = v.get("CiphertextBlob").and_then(Value::as_str).ok_or_else(|| Error::internal("Encrypt returned no blob"))?;
                Login::Password { user, sealed: sealed.to_string() }
            }
        };
        let instance = Instance {
            id: 0,
            alias: r.alias.clone(),
            engine: r.engine,
            host: r.host,
            port: r.port,
            database: r.database.unwrap_or_default(),
            env_type: r.env_type,
            query_timeout: r.query_timeout,
            tls: r.tls,
            login,
            created: now(),
        };
        let cred = self.credential(&instance).await?;
        let target = target(&instance)?;
        tokio::time::timeout(
            Duration::from_secs(instance.query_timeout),
            session::run_script(&target, &cred.account, &cred.password, db(&instance), "SELECT 1", 1),
        )
        .await
        .map_err(|_| Error::DbUnreachable(format!("instance {} did not answer within {} s", instance.alias, instance.query_timeout)))?
        .map_err(|e| engine_error(&instance, &cred.account, e))?;
        self.store.insert(instance).await?.ok_or_else(|| Error::ResourceExist(format!("DMS instance {}", r.alias)))
    }

    /// The KMS key for sealing passwords, made on first use.
    async fn dms_key(&self) -> Result<String> {
        match self.kms.call("DescribeKey", &[("KeyId", DMS_KEY_ALIAS)]).await {
            Ok(_) => Ok(DMS_KEY_ALIAS.to_string()),
            Err(ClientError::Api { status: 404, .. }) => {
                let k = self
                    .kms
                    .call("CreateKey", &[("Description", "Seals the passwords of DMS instances")])
                    .await
                    .map_err(|e| kms_error("a DMS key", e))?;
                let id =
                    k.pointer("/KeyMetadata/KeyId").and_then(Value::as_str).ok_or_else(|| Error::internal("CreateKey returned no id"))?;
                match self.kms.call("CreateAlias", &[("KeyId", id), ("AliasName", DMS_KEY_ALIAS)]).await {
                    // Another request made the alias first: use it.
                    Ok(_) | Err(ClientError::Api { status: 400 | 409, .. }) => Ok(DMS_KEY_ALIAS.to_string()),
                    Err(e) => Err(kms_error(DMS_KEY_ALIAS, e)),
                }
            }
            Err(e) => Err(kms_error(DMS_KEY_ALIAS, e)),
        }
    }

    /// The credential for one logon, fetched now: ListSecrets (to find the secret and check it
    /// exists) then GetSecretValue of ACSCurrent; or Decrypt of a sealed password.
    async fn credential(&self, i: &Instance) -> Result<Credential> {
        match &i.login {
            Login::Password { user, sealed } => {
                let v = self
                    .kms
                    .call("Decrypt", &[("CiphertextBlob", sealed), ("EncryptionContext", &seal_context(&i.alias))])
                    .await
                    .map_err(|e| kms_error(&format!("the sealed password of {}", i.alias), e))?;
                let plain = sesame_api::kms::Sensitive::new(v.get("Plaintext").and_then(Value::as_str).unwrap_or_default().to_string());
                let bytes = sesame_api::kms::Sensitive::new(
                    B64.decode(plain.expose_secret()).map_err(|_| Error::internal("Decrypt returned no Base64"))?,
                );
                let password =
                    String::from_utf8(bytes.expose_secret().clone()).map_err(|_| Error::internal("a sealed password is not UTF-8"))?;
                Ok(Credential {
                    account: user.clone(),
                    password: SecretString::from(password),
                    secret_name: String::new(),
                    version_id: String::new(),
                })
            }
            Login::KmsSecret { secret_name, db_instance_id } => {
                let (key, value, what) = match (secret_name, db_instance_id) {
                    (Some(n), _) => ("SecretName", n.as_str(), format!("secret {n}")),
                    (None, Some(d)) => ("DBInstanceId", d.as_str(), format!("the Rds secret of database instance {d}")),
                    (None, None) => return Err(Error::internal("a KMS-secret instance names no secret")),
                };
                let filters = json!([{"Key": key, "Values": [value]}]).to_string();
                let list_params = [("Filters", filters.as_str()), ("PageSize", "100")];
                let list = self.kms.call("ListSecrets", &list_params);
                let get = |name: String| async move {
                    let v = self.kms.call("GetSecretValue", &[("SecretName", name.as_str()), ("VersionStage", "ACSCurrent")]).await;
                    (name, v)
                };
                // A named secret is fetched while ListSecrets confirms it, so the two calls cost
                // one round trip; found through its instance, the name comes from the list first.
                let (list, fetched) = match secret_name {
                    Some(n) => {
                        let (list, fetched) = tokio::join!(list, get(n.clone()));
                        (list, Some(fetched))
                    }
                    None => (list.await, None),
                };
                let list = list.map_err(|e| kms_error(&what, e))?;
                let names: Vec<&str> = list
                    .pointer("/SecretList/Secret")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(|s| s.get("SecretName").and_then(Value::as_str)).collect())
                    .unwrap_or_default();
                // SecretName filters match substrings; the instance names one secret exactly.
                let name = match secret_name {
                    Some(n) => names.iter().find(|x| **x == n.as_str()).copied(),
                    None => names.first().copied(),
                }
                .ok_or_else(|| Error::ResourceNotFound(format!("{what} in KMS")))?
                .to_string();
                let (name, v) = match fetched {
                    Some(f) => f,
                    None => get(name).await,
                };
                let v = v.map_err(|e| kms_error(&format!("secret {name}"), e))?;
                let data = sesame_api::kms::Sensitive::new(v.get("SecretData").and_then(Value::as_str).unwrap_or_default().to_string());
                let parsed: Value = serde_json::from_str(data.expose_secret()).map_err(|_| {
                    Error::invalid("SecretName", format!("secret {name} does not hold {{\"AccountName\",\"AccountPassword\"}}"))
                })?;
                let field = |k: &str| parsed.get(k).and_then(Value::as_str).map(str::to_string);
                let (Some(account), Some(password)) = (field("AccountName"), field("AccountPassword")) else {
                    return Err(Error::invalid(
                        "SecretName",
                        format!("secret {name} does not hold {{\"AccountName\",\"AccountPassword\"}}"),
                    ));
                };
                let version_id = v.get("VersionId").and_then(Value::as_str).unwrap_or_default().to_string();
                Ok(Credential { account, password: SecretString::from(password), secret_name: name, version_id })
            }
        }
    }

    /// ExecuteScript: fetch, log on, run; on an authentication failure fetch again and retry.
    async fn execute_script(&self, ctx: &Ctx, x: ExecuteScript, i: Instance) -> Result<ExecuteScriptResponse> {
        let target = target(&i)?;
        let timeout = Duration::from_secs(x.timeout.unwrap_or(i.query_timeout));
        let started = Instant::now();
        let mut attempt = 1;
        let (cred, outcomes) = loop {
            let cred = self.credential(&i).await?;
            let run = session::run_script(&target, &cred.account, &cred.password, db(&i), &x.script, x.max_rows);
            match tokio::time::timeout(timeout, run).await {
                Err(_) => {
                    let e = Error::DbRefused(format!(
                        "the script on {} did not finish within {} s and was cancelled",
                        i.alias,
                        timeout.as_secs()
                    ));
                    self.audit_failure(ctx, &i, &cred, &x.script, &e, started).await?;
                    return Err(e);
                }
                Ok(Ok(outcomes)) => break (cred, outcomes),
                Ok(Err(EngineError::LogonFailed { .. })) if attempt < self.settings.logon_attempts => {
                    tracing::info!(instance = %i.alias, secret = %cred.secret_name, version = %cred.version_id, attempt, "logon refused; fetching the secret again");
                    tokio::time::sleep(self.settings.retry_delay * attempt).await;
                    attempt += 1;
                }
                Ok(Err(e)) => {
                    let e = engine_error(&i, &cred.account, e);
                    self.audit_failure(ctx, &i, &cred, &x.script, &e, started).await?;
                    return Err(e);
                }
            }
        };
        let elapsed = started.elapsed().as_millis() as i64;
        let texts = sql::split(&x.script);
        let mut results = Vec::with_capacity(outcomes.len());
        let mut audit = Vec::with_capacity(outcomes.len());
        for (n, outcome) in outcomes.into_iter().enumerate() {
            // The server splits the script; our split labels the entries when it agrees.
            let text = if texts.len() > n { texts[n] } else { x.script.as_str() };
            let (result, state, rows, remark) = match outcome {
                Outcome::Done(set) => {
                    let rows = set
                        .rows
                        .into_iter()
                        .map(|r| {
                            set.columns
                                .iter()
                                .cloned()
                                .zip(r.into_iter().map(|v| v.map_or(Value::Null, Value::String)))
                                .collect::<Map<_, _>>()
                        })
                        .collect();
                    let count = set.row_count;
                    let result = ScriptResult {
                        column_names: set.columns,
                        rows,
                        row_count: count,
                        success: true,
                        message: String::new(),
                        truncated: set.truncated,
                    };
                    (result, "SUCCESS", count as i64, String::new())
                }
                Outcome::Failed { code, message } => {
                    let result = ScriptResult {
                        column_names: Vec::new(),
                        rows: Vec::new(),
                        row_count: 0,
                        success: false,
                        message: format!("{code}: {message}"),
                        truncated: false,
                    };
                    (result, "FAIL", 0, format!("error {code}"))
                }
            };
            audit.push((now(), self.entry(ctx, &i, &cred, text, state, rows, elapsed, remark)));
            results.push(result);
        }
        self.store.audit(audit).await?;
        Ok(ExecuteScriptResponse { success: results.iter().all(|r| r.success), results })
    }

    #[allow(clippy::too_many_arguments)]
    fn entry(
        &self,
        ctx: &Ctx,
        i: &Instance,
        c: &Credential,
        text: &str,
        state: &str,
        rows: i64,
        elapsed: i64,
        remark: String,
    ) -> AuditEntry {
        AuditEntry {
            op_time: String::new(),
            user_name: ctx.caller.user.to_string(),
            instance_id: i.id,
            instance_name: i.alias.clone(),
            schema_name: i.database.clone(),
            sql: if self.settings.audit_statements { text.to_string() } else { String::new() },
            sql_type: sql::kind(text),
            exec_state: state.into(),
            affect_rows: rows,
            elapsed_time: elapsed,
            remark,
            secret_name: c.secret_name.clone(),
            secret_version_id: c.version_id.clone(),
            account_name: c.account.clone(),
        }
    }

    /// A script that could not run at all is one failed entry, with the error's code.
    async fn audit_failure(&self, ctx: &Ctx, i: &Instance, c: &Credential, script: &str, e: &Error, started: Instant) -> Result<()> {
        let entry = self.entry(ctx, i, c, script, "FAIL", 0, started.elapsed().as_millis() as i64, e.code().to_string());
        self.store.audit(vec![(now(), entry)]).await
    }
}

fn db(i: &Instance) -> Option<&str> {
    Some(i.database.as_str()).filter(|d| !d.is_empty())
}

fn target(i: &Instance) -> Result<DbTarget> {
    Ok(DbTarget {
        kind: EngineKind::parse(&i.engine).ok_or_else(|| Error::internal("a DMS instance has an unknown engine"))?,
        host: i.host.clone(),
        port: i.port,
        // Sessions log on as the fetched account; the target's admin fields are not used.
        admin_user: String::new(),
        admin_password: SecretString::from(String::new()),
        admin_database: None,
        tls: TlsMode::parse(&i.tls).unwrap_or_default(),
        account_host: None,
    })
}
