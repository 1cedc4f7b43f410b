//! Database helpers shared by the tests that use the real PostgreSQL and MariaDB (prepared by
//! scripts/ensure-services): admin targets, registration, and reading a secret's accounts.

use secrecy::SecretString;
use serde_json::{Value, json};
use sesame_api::rds::RDS_API_VERSION;
use sesame_client::Client;
use sesame_engines::{DbTarget, Engine, EngineKind, TlsMode};

pub const DB: &str = "sesame_test";

pub fn pg_admin() -> DbTarget {
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

pub fn maria_admin() -> DbTarget {
    DbTarget {
        kind: EngineKind::MariaDb,
        port: 3306,
        admin_user: "root".into(),
        admin_password: SecretString::from(String::new()),
        admin_database: None,
        ..pg_admin()
    }
}

pub async fn register(c: &Client, id: &str, t: &DbTarget) {
    let engine = t.kind.as_str().to_string();
    let port = t.port.to_string();
    let pw = secrecy::ExposeSecret::expose_secret(&t.admin_password).to_string();
    let mut p = vec![
        ("DBInstanceId", id),
        ("Engine", engine.as_str()),
        ("ConnectionString", "127.0.0.1"),
        ("Port", port.as_str()),
        ("AccountName", t.admin_user.as_str()),
        ("AccountPassword", pw.as_str()),
    ];
    if let Some(db) = &t.admin_database {
        p.push(("AdminDatabase", db.as_str()));
    }
    c.call_version(RDS_API_VERSION, "RegisterDBInstance", &p).await.unwrap();
}

/// The account and password a stage of the secret holds.
pub async fn stage(c: &Client, name: &str, stage: &str) -> (String, String) {
    let v = c.call("GetSecretValue", &[("SecretName", name), ("VersionStage", stage)]).await.unwrap();
    let data: Value = serde_json::from_str(v["SecretData"].as_str().unwrap()).unwrap();
    (data["AccountName"].as_str().unwrap().to_string(), data["AccountPassword"].as_str().unwrap().to_string())
}

pub async fn logs_on(e: &dyn Engine, account: &(String, String)) -> bool {
    e.check_login(&account.0, &SecretString::from(account.1.clone()), Some(DB)).await.is_ok()
}

pub async fn create_rds(c: &Client, name: &str, mode: &str, db_id: &str, accounts: Value) {
    let cfg = json!({"SecretSubType": mode, "DBInstanceId": db_id, "CustomData": {"DBName": DB}}).to_string();
    let data = json!({ "Accounts": accounts }).to_string();
    c.call(
        "CreateSecret",
        &[("SecretName", name), ("SecretType", "Rds"), ("VersionId", "v1"), ("SecretData", &data), ("ExtendedConfig", &cfg)],
    )
    .await
    .unwrap();
}
