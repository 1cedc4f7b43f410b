//! The database-instance registry through the real server, against the real PostgreSQL and
//! MariaDB on this machine (prepared by scripts/ensure-services).
#![allow(clippy::unwrap_used)]

mod common;

use serde_json::Value;
use sesame_api::rds::RDS_API_VERSION;
use sesame_client::{Client, ClientError};

const PG_ADMIN_PASSWORD: &str = "sesame-admin-test-pw";

async fn rds(c: &Client, action: &str, params: &[(&str, &str)]) -> Result<Value, ClientError> {
    c.call_version(RDS_API_VERSION, action, params).await
}

fn api_error(r: Result<Value, ClientError>) -> (u16, String, String) {
    match r {
        Err(ClientError::Api { status, code, message, .. }) => (status, code, message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn pg(id: &str, password: &str) -> Vec<(String, String)> {
    [
        ("DBInstanceId", id),
        ("Engine", "PostgreSQL"),
        ("ConnectionString", "127.0.0.1"),
        ("Port", "5432"),
        ("AccountName", "sesame_admin"),
        ("AccountPassword", password),
        ("AdminDatabase", "sesame_test"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn refs(p: &[(String, String)]) -> Vec<(&str, &str)> {
    p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

async fn count(c: &Client) -> i64 {
    rds(c, "DescribeDBInstances", &[]).await.unwrap()["TotalRecordCount"].as_i64().unwrap()
}

#[tokio::test]
async fn registering_checks_the_logon_and_never_returns_the_password() {
    let server = common::TestServer::start(&["--plain-http"]);
    let c = server.client();

    rds(&c, "RegisterDBInstance", &refs(&pg("pg-main", PG_ADMIN_PASSWORD))).await.unwrap();
    rds(
        &c,
        "RegisterDBInstance",
        &[("DBInstanceId", "maria-main"), ("Engine", "mariadb"), ("ConnectionString", "127.0.0.1"), ("AccountName", "root")],
    )
    .await
    .unwrap();
    let auto =
        rds(&c, "RegisterDBInstance", &[("Engine", "MariaDB"), ("ConnectionString", "127.0.0.1"), ("AccountName", "root")]).await.unwrap();
    assert!(auto["DBInstanceId"].as_str().unwrap().starts_with("rm-"));
    assert_eq!(count(&c).await, 3);

    let attr = rds(&c, "DescribeDBInstanceAttribute", &[("DBInstanceId", "pg-main")]).await.unwrap();
    let a = &attr["Items"]["DBInstanceAttribute"][0];
    assert_eq!(
        (a["Engine"].as_str(), a["ConnectionString"].as_str(), a["Port"].as_u64(), a["AccountName"].as_str()),
        (Some("PostgreSQL"), Some("127.0.0.1"), Some(5432), Some("sesame_admin"))
    );
    assert!(!attr.to_string().contains(PG_ADMIN_PASSWORD), "the admin password is never returned: {attr}");
    assert_eq!(a["Port"], 5432);
    let maria = rds(&c, "DescribeDBInstanceAttribute", &[("DBInstanceId", "maria-main")]).await.unwrap();
    assert_eq!(maria["Items"]["DBInstanceAttribute"][0]["Port"], 3306, "the engine's default port");

    let listed = rds(&c, "DescribeDBInstances", &[("Engine", "MariaDB")]).await.unwrap();
    assert_eq!(listed["TotalRecordCount"], 2);
    let accounts = rds(&c, "DescribeAccounts", &[("DBInstanceId", "pg-main")]).await.unwrap();
    assert!(accounts["Accounts"]["DBInstanceAccount"].as_array().unwrap().iter().any(|a| a["AccountName"] == "sesame_admin"), "{accounts}");

    // Refusals leave the registry as it was.
    let before = rds(&c, "DescribeDBInstances", &[]).await.unwrap()["Items"].clone();
    let (s, code, msg) = api_error(rds(&c, "RegisterDBInstance", &refs(&pg("pg-wrong", "not-the-password"))).await);
    assert_eq!((s, code.as_str()), (400, "DBInstance.LogonFailed"), "{msg}");
    assert!(msg.contains("sesame_admin") && !msg.contains("not-the-password"), "{msg}");
    let mut unreachable = pg("pg-closed", PG_ADMIN_PASSWORD);
    unreachable[3].1 = "1".into();
    let (s, code, msg) = api_error(rds(&c, "RegisterDBInstance", &refs(&unreachable)).await);
    assert_eq!((s, code.as_str()), (400, "DBInstance.Unreachable"), "{msg}");
    let (s, code, _) = api_error(rds(&c, "RegisterDBInstance", &refs(&pg("pg-main", PG_ADMIN_PASSWORD))).await);
    assert_eq!((s, code.as_str()), (409, "Rejected.ResourceExist"));
    let (s, code, _) =
        api_error(rds(&c, "RegisterDBInstance", &[("Engine", "Oracle"), ("ConnectionString", "h"), ("AccountName", "a")]).await);
    assert_eq!((s, code.as_str()), (400, "InvalidParameter"));
    let (s, code, _) = api_error(rds(&c, "ModifyDBInstance", &[("DBInstanceId", "pg-main"), ("Port", "1")]).await);
    assert_eq!((s, code.as_str()), (400, "DBInstance.Unreachable"), "settings that cannot log on are not saved");
    let (s, code, _) = api_error(rds(&c, "DescribeDBInstanceAttribute", &[("DBInstanceId", "nope")]).await);
    assert_eq!((s, code.as_str()), (404, "InvalidDBInstanceId.NotFound"));
    let (s, code, _) = api_error(c.call("DescribeDBInstances", &[]).await);
    assert_eq!((s, code.as_str()), (404, "InvalidAction.NotFound"), "registry actions are not KMS actions");
    assert_eq!(rds(&c, "DescribeDBInstances", &[]).await.unwrap()["Items"], before, "refused requests changed nothing");

    // A change that still logs on is saved; a password change is checked and sealed.
    rds(&c, "ModifyDBInstance", &[("DBInstanceId", "pg-main"), ("DBInstanceDescription", "primary")]).await.unwrap();
    let (s, code, _) = api_error(rds(&c, "ModifyDBInstance", &[("DBInstanceId", "pg-main"), ("AccountPassword", "wrong-again")]).await);
    assert_eq!((s, code.as_str()), (400, "DBInstance.LogonFailed"));
    rds(&c, "ModifyDBInstance", &[("DBInstanceId", "pg-main"), ("AccountPassword", PG_ADMIN_PASSWORD)]).await.unwrap();
    let a = rds(&c, "DescribeDBInstanceAttribute", &[("DBInstanceId", "pg-main")]).await.unwrap();
    assert_eq!(a["Items"]["DBInstanceAttribute"][0]["DBInstanceDescription"], "primary");
    rds(&c, "DescribeAccounts", &[("DBInstanceId", "pg-main")]).await.expect("the sealed password still logs on after the changes");

    rds(&c, "DeregisterDBInstance", &[("DBInstanceId", "maria-main")]).await.unwrap();
    let (s, code, _) = api_error(rds(&c, "DeregisterDBInstance", &[("DBInstanceId", "maria-main")]).await);
    assert_eq!((s, code.as_str()), (404, "InvalidDBInstanceId.NotFound"));

    // The admin password is in no log line, no error body and no file of the data directory.
    let mut server = server;
    server.stop();
    let files = server.data_files();
    assert!(files.iter().any(|(n, _)| n.ends_with("sesame.db")), "the store file was searched");
    for (name, text) in &files {
        assert!(!text.contains(PG_ADMIN_PASSWORD), "{name} contains the admin password");
    }
    assert!(!server.log().contains(PG_ADMIN_PASSWORD), "the server log contains the admin password");
}

#[test]
fn the_cli_registers_a_server_with_the_password_from_the_environment() {
    let server = common::TestServer::start(&["--plain-http"]);
    let sesame = |args: &[&str], env: &[(&str, &str)]| server.cli_with(args, env, "");
    let register = |id: &str, password: &str| {
        let args = [
            "db",
            "register",
            "--id",
            id,
            "--engine",
            "postgresql",
            "--host",
            "127.0.0.1",
            "--admin-user",
            "sesame_admin",
            "--admin-database",
            "sesame_test",
        ];
        sesame(&args, &[("SESAME_DB_ADMIN_PASSWORD", password)])
    };
    let out = register("cli-pg", PG_ADMIN_PASSWORD);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = sesame(&["db", "list", "-o", "table"], &[]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("cli-pg") && table.contains("PostgreSQL") && !table.contains(PG_ADMIN_PASSWORD), "{table}");
    let out = register("cli-bad", "wrong");
    assert_eq!(out.status.code(), Some(4), "a refused logon is a rejected request: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DBInstance.LogonFailed"));
    let out = sesame(&["db", "describe", "nope"], &[]);
    assert_eq!(out.status.code(), Some(3), "not found exits 3");
}
