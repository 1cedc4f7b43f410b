//! A database whose password policy refuses a generated password: the rotation retries with a
//! fresh password, not the refused one. The engine is the real PostgreSQL one; a wrapper plays
//! the policy (PostgreSQL has none without a server restart, and MariaDB's is global to the
//! server that every other test shares).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use secrecy::SecretString;
use sesame_api::Params;
use sesame_api::Timestamp;
use sesame_core::engine::{AccountSpec, DbTarget, Engine, EngineError, EngineFactory, EngineKind, Permission, TlsMode};
use sesame_core::{Caller, Ctx, ManualClock, Services};
use sesame_crypto::{KeyMaterial, RootKey};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Refuses the next `refusals` new passwords as MySQL's validate_password would (error 1819).
struct Policy {
    refusals: Arc<AtomicUsize>,
}

struct Picky {
    inner: Box<dyn Engine>,
    refusals: Arc<AtomicUsize>,
}

impl EngineFactory for Policy {
    fn engine(&self, target: DbTarget) -> Result<Box<dyn Engine>, EngineError> {
        Ok(Box::new(Picky { inner: sesame_engines::connect(target)?, refusals: self.refusals.clone() }))
    }
}

#[async_trait]
impl Engine for Picky {
    fn kind(&self) -> EngineKind {
        self.inner.kind()
    }
    async fn ping(&self) -> Result<(), EngineError> {
        self.inner.ping().await
    }
    async fn create_account(&self, name: &str, password: &SecretString, spec: &AccountSpec) -> Result<(), EngineError> {
        self.inner.create_account(name, password, spec).await
    }
    async fn check_login(&self, name: &str, password: &SecretString, database: Option<&str>) -> Result<(), EngineError> {
        self.inner.check_login(name, password, database).await
    }
    async fn set_password(&self, name: &str, password: &SecretString) -> Result<(), EngineError> {
        if self.refusals.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(EngineError::PasswordRejected { code: "1819".into() });
        }
        self.inner.set_password(name, password).await
    }
    async fn copy_grants(&self, from: &str, to: &str) -> Result<(), EngineError> {
        self.inner.copy_grants(from, to).await
    }
    async fn drop_account(&self, name: &str) -> Result<(), EngineError> {
        self.inner.drop_account(name).await
    }
    async fn list_accounts(&self) -> Result<Vec<String>, EngineError> {
        self.inner.list_accounts().await
    }
    async fn account_exists(&self, name: &str) -> Result<bool, EngineError> {
        self.inner.account_exists(name).await
    }
}

const DB: &str = "sesame_test";

fn pg() -> DbTarget {
    DbTarget {
        kind: EngineKind::PostgreSql,
        host: "127.0.0.1".into(),
        port: 5432,
        admin_user: "sesame_admin".into(),
        admin_password: SecretString::from("sesame-admin-test-pw".to_string()),
        admin_database: Some(DB.into()),
        tls: TlsMode::Disable,
        account_host: None,
    }
}

fn ctx() -> Ctx {
    Ctx { request_id: "r".into(), caller: Caller { access_key_id: "ak".into(), user: "admin".into(), source_ip: "127.0.0.1".into() } }
}

async fn call(s: &Services, action: &str, params: &[(&str, &str)]) -> Result<serde_json::Value, sesame_api::Error> {
    let p = Params::from_pairs(params.iter().copied());
    if let Some(req) = sesame_api::rds::DbRequest::parse(action, &p)? {
        return s.dbs.execute(&ctx(), req).await;
    }
    s.secrets.execute(&ctx(), sesame_api::secrets::SecretRequest::parse(action, &p)?.unwrap()).await?.into_value()
}

async fn current(s: &Services) -> (String, SecretString, String) {
    let v = call(s, "GetSecretValue", &[("SecretName", "rds/picky")]).await.unwrap();
    let data: serde_json::Value = serde_json::from_str(v["SecretData"].as_str().unwrap()).unwrap();
    (
        data["AccountName"].as_str().unwrap().to_string(),
        SecretString::from(data["AccountPassword"].as_str().unwrap().to_string()),
        v["VersionId"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn a_password_the_policy_refuses_is_replaced_by_a_fresh_one() {
    let clock = Arc::new(ManualClock::new(Timestamp::parse_iso8601("2026-05-01T00:00:00Z").unwrap()));
    let refusals = Arc::new(AtomicUsize::new(0));
    let store = sesame_store::open("sqlite::memory:").unwrap();
    let root = Arc::new(RootKey::from_material(KeyMaterial::generate().unwrap()));
    let factory = Arc::new(Policy { refusals: refusals.clone() });
    let s = Services::start(store, root, clock.clone(), "test".into(), factory, Default::default()).await.unwrap().0;
    call(
        &s,
        "RegisterDBInstance",
        &[
            ("DBInstanceId", "pg-picky"),
            ("Engine", "PostgreSQL"),
            ("ConnectionString", "127.0.0.1"),
            ("Port", "5432"),
            ("AccountName", "sesame_admin"),
            ("AccountPassword", "sesame-admin-test-pw"),
            ("AdminDatabase", DB),
        ],
    )
    .await
    .unwrap();
    let root_engine = sesame_engines::connect(pg()).unwrap();
    let app = format!("st_{}_picky", sesame_crypto::random::id_suffix(5).unwrap());
    let pw = sesame_engines::generate_password().unwrap();
    root_engine.create_account(&app, &pw, &AccountSpec::Standard { database: DB.into(), permission: Permission::ReadOnly }).await.unwrap();
    let accounts = serde_json::json!({"Accounts": [{"AccountName": app, "AccountPassword": secrecy::ExposeSecret::expose_secret(&pw)}]});
    call(
        &s,
        "CreateSecret",
        &[
            ("SecretName", "rds/picky"),
            ("SecretType", "Rds"),
            ("VersionId", "v1"),
            ("SecretData", &accounts.to_string()),
            (
                "ExtendedConfig",
                &serde_json::json!({"SecretSubType": "SingleUser", "DBInstanceId": "pg-picky", "CustomData": {"DBName": DB}}).to_string(),
            ),
        ],
    )
    .await
    .unwrap();

    refusals.store(2, Ordering::SeqCst);
    let e = call(&s, "RotateSecret", &[("SecretName", "rds/picky"), ("VersionId", "p1")]).await.unwrap_err();
    assert_eq!(e.code(), "DBInstance.Refused");
    assert!(e.message().contains("password policy"), "{}", e.message());
    let (name, before, id) = current(&s).await;
    assert_eq!(id, "v1", "ACSCurrent stays where it was");
    assert!(root_engine.check_login(&name, &before, Some(DB)).await.is_ok(), "and still logs on");
    let versions = call(&s, "ListSecretVersionIds", &[("SecretName", "rds/picky"), ("IncludeDeprecated", "true")]).await.unwrap();
    let list = versions["VersionIds"]["VersionId"].as_array().unwrap();
    let stages_of = |id: &str| list.iter().find(|v| v["VersionId"] == id).map(|v| v["VersionStages"]["VersionStage"].clone());
    assert_eq!(stages_of("p1"), Some(serde_json::json!([])), "the refused version is kept, without a stage: {versions}");
    let pending: Vec<&serde_json::Value> =
        list.iter().filter(|v| v["VersionStages"]["VersionStage"] == serde_json::json!(["ACSPending"])).collect();
    assert_eq!(pending.len(), 1, "a fresh version waits for the next attempt: {versions}");
    let h = &call(&s, "DescribeSecret", &[("SecretName", "rds/picky")]).await.unwrap()["RotationHealth"];
    assert_eq!((h["InProgress"].as_bool(), h["Attempts"].as_i64()), (Some(true), Some(1)), "{h}");

    // The scheduler's retries: refused once more, then accepted.
    clock.advance(30);
    assert_eq!(s.secrets.run_due_rotations().await.unwrap(), 0);
    clock.advance(60);
    assert_eq!(s.secrets.run_due_rotations().await.unwrap(), 1);
    let (_, after, id) = current(&s).await;
    assert!(id != "v1" && id != "p1" && id != pending[0]["VersionId"], "ACSCurrent is a third, fresh version ({id})");
    assert!(root_engine.check_login(&name, &after, Some(DB)).await.is_ok(), "the accepted password logs on");
    assert_eq!(refusals.load(Ordering::SeqCst), 0);
    let versions = call(&s, "ListSecretVersionIds", &[("SecretName", "rds/picky"), ("IncludeDeprecated", "true")]).await.unwrap();
    assert_eq!(versions["TotalCount"], 4, "v1, two refused versions and the accepted one: {versions}");
    root_engine.drop_account(&name).await.unwrap();
}
