//! DMS through the real server: instances that log on with a KMS secret fetched at every logon,
//! on the real PostgreSQL and MariaDB, while the secret rotates.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::db::*;
use serde_json::{Value, json};
use sesame_api::dms::DMS_API_VERSION;
use sesame_client::{Client, ClientError};
use sesame_engines::{AccountSpec, DbTarget, Engine, Permission};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

async fn dms(c: &Client, action: &str, params: &[(&str, &str)]) -> Result<Value, ClientError> {
    c.call_version(DMS_API_VERSION, action, params).await
}

fn engine_name(t: &DbTarget) -> &'static str {
    t.kind.as_str()
}

async fn register_dms(c: &Client, alias: &str, t: &DbTarget, login: &[(&str, &str)]) -> Result<Value, ClientError> {
    let port = t.port.to_string();
    let mut p = vec![
        ("InstanceAlias", alias),
        ("InstanceType", engine_name(t)),
        ("Host", "127.0.0.1"),
        ("Port", port.as_str()),
        ("DatabaseName", DB),
        ("TlsMode", "disable"),
    ];
    p.extend_from_slice(login);
    dms(c, "RegisterInstance", &p).await
}

/// An account of our own with a known password, ReadWrite on the test database.
async fn app_account(root: &dyn Engine, tag: &str) -> (String, String) {
    let name = format!("dm_{}_{tag}", sesame_crypto::random::id_suffix(5).unwrap());
    let pw = sesame_engines::generate_password().unwrap();
    root.create_account(&name, &pw, &AccountSpec::Standard { database: DB.into(), permission: Permission::ReadWrite }).await.unwrap();
    (name, secrecy::ExposeSecret::expose_secret(&pw).to_string())
}

/// Stores an account's credential as the generic secret `name`, in the shape DMS reads.
async fn store_credential(c: &Client, name: &str, account: &str, password: &str) {
    let value = json!({"AccountName": account, "AccountPassword": password}).to_string();
    c.call("CreateSecret", &[("SecretName", name), ("VersionId", "v1"), ("SecretData", &value)]).await.unwrap();
}

/// DMS clients run statements without pause while the secret rotates `rotations` times.
async fn statements_during_rotations(t: DbTarget, mode: &str, by_instance: bool) {
    let server = common::TestServer::start(&["--plain-http"]);
    let c = server.client();
    let db_id = format!("{}-{}", if t.port == 5432 { "pg" } else { "maria" }, mode.to_lowercase());
    register(&c, &db_id, &t).await;
    let root = sesame_engines::connect(t.clone()).unwrap();
    let (account, password) = app_account(root.as_ref(), "load").await;
    create_rds(&c, "rds/app", mode, &db_id, json!([{"AccountName": account, "AccountPassword": password}])).await;
    if mode == "DoubleUsers" {
        c.call("RotateSecret", &[("SecretName", "rds/app"), ("VersionId", "first")]).await.unwrap();
    }
    let login: Vec<(&str, &str)> = if by_instance { vec![("DBInstanceId", db_id.as_str())] } else { vec![("SecretName", "rds/app")] };
    register_dms(&c, "app", &t, &login).await.unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut clients = Vec::new();
    for _ in 0..2 {
        let (c, stop, ok, failed) = (server.client(), stop.clone(), ok.clone(), failed.clone());
        clients.push(tokio::spawn(async move {
            let mut errors = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                match dms(&c, "ExecuteScript", &[("InstanceAlias", "app"), ("Script", "SELECT 1 AS one")]).await {
                    Ok(v) if v["Success"] == true && v["Results"][0]["Rows"][0]["one"] == "1" => ok.fetch_add(1, Ordering::SeqCst),
                    other => {
                        errors.push(format!("{other:?}"));
                        failed.fetch_add(1, Ordering::SeqCst)
                    }
                };
            }
            errors
        }));
    }
    let rotations = 25;
    for n in 0..rotations {
        c.call("RotateSecret", &[("SecretName", "rds/app"), ("VersionId", &format!("r{n}"))]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let mut errors = Vec::new();
    for cl in clients {
        errors.extend(cl.await.unwrap());
    }
    let (ok, failed) = (ok.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
    let refetches = server.log().matches("logon refused; fetching the secret again").count();
    eprintln!("{mode}: {ok} statements, {failed} failed, {rotations} rotations, {refetches} logons retried after a refetch");
    assert_eq!(failed, 0, "{mode}: {failed} of {} statements failed: {errors:?}", ok + failed);
    assert!(ok >= rotations, "{mode}: the clients ran {ok} statements, fewer than the {rotations} rotations");

    // Every statement is in the audit, with who ran it and which secret version logged on.
    let mut entries = Vec::new();
    for page in 1.. {
        let page = page.to_string();
        let log = dms(&c, "ListSQLExecAuditLog", &[("SearchName", "app"), ("PageSize", "100"), ("PageNumber", &page)]).await.unwrap();
        let items = log["SQLExecAuditLogList"]["SQLExecAuditLog"].as_array().cloned().unwrap();
        if items.is_empty() {
            break;
        }
        entries.extend(items);
    }
    assert_eq!(entries.len(), ok, "{mode}: each statement is audited (the registration's test logon is not)");
    for e in &entries {
        assert_eq!(
            (e["UserName"].as_str(), e["ExecState"].as_str(), e["SecretName"].as_str()),
            (Some("admin"), Some("SUCCESS"), Some("rds/app")),
            "{e}"
        );
        assert_eq!(
            (e["SQL"].as_str(), e["SqlType"].as_str(), e["AffectRows"].as_i64()),
            (Some("SELECT 1 AS one"), Some("SELECT"), Some(1))
        );
    }
    let versions: std::collections::HashSet<&str> = entries.iter().filter_map(|e| e["SecretVersionId"].as_str()).collect();
    let accounts: std::collections::HashSet<&str> = entries.iter().filter_map(|e| e["AccountName"].as_str()).collect();
    assert!(versions.len() > 1, "{mode}: statements ran under several secret versions: {versions:?}");
    assert_eq!(accounts.len(), if mode == "DoubleUsers" { 2 } else { 1 }, "{mode}: {accounts:?}");
    for name in accounts {
        root.drop_account(name).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgresql_dual_mode_statements_never_fail_while_the_secret_rotates() {
    statements_during_rotations(pg_admin(), "DoubleUsers", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_dual_mode_statements_never_fail_while_the_secret_rotates() {
    statements_during_rotations(maria_admin(), "DoubleUsers", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgresql_single_mode_statements_never_fail_while_the_secret_rotates() {
    statements_during_rotations(pg_admin(), "SingleUser", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_single_mode_statements_never_fail_while_the_secret_rotates() {
    statements_during_rotations(maria_admin(), "SingleUser", false).await;
}

fn api_error(r: Result<Value, ClientError>) -> (u16, String, String) {
    match r {
        Err(ClientError::Api { status, code, message, .. }) => (status, code, message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Each broken instance gives its own clear error, and the good one keeps working after each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_instances_fail_clearly_and_others_keep_working() {
    let server = common::TestServer::start(&["--plain-http"]);
    let c = server.client();
    let root = sesame_engines::connect(pg_admin()).unwrap();
    let (account, password) = app_account(root.as_ref(), "err").await;
    for name in ["good", "deleted", "doomed", "stale", "guarded"] {
        store_credential(&c, name, &account, &password).await;
    }
    let mut proxy = common::TcpProxy::start("127.0.0.1:5432").await;
    let pg = pg_admin();
    for (alias, secret, target) in [
        ("good", "good", pg.clone()),
        ("deleted", "deleted", pg.clone()),
        ("doomed", "doomed", pg.clone()),
        ("stale", "stale", pg.clone()),
        ("guarded", "guarded", pg.clone()),
        ("far", "good", DbTarget { port: proxy.port, ..pg.clone() }),
    ] {
        register_dms(&c, alias, &target, &[("SecretName", secret)]).await.unwrap();
    }
    let run = |alias: &'static str| {
        let c = server.client();
        async move { dms(&c, "ExecuteScript", &[("InstanceAlias", alias), ("Script", "SELECT current_user AS who")]).await }
    };
    let good_works = || async {
        let v = run("good").await.unwrap();
        assert_eq!(v["Results"][0]["Rows"][0]["who"], account.as_str(), "the good instance logs on as the secret's account");
    };
    good_works().await;

    c.call("DeleteSecret", &[("SecretName", "deleted"), ("ForceDeleteWithoutRecovery", "true")]).await.unwrap();
    let (status, code, message) = api_error(run("deleted").await);
    assert_eq!((status, code.as_str()), (404, "Forbidden.ResourceNotFound"), "{message}");
    assert!(message.contains("deleted"), "the message names the secret: {message}");
    good_works().await;

    c.call("DeleteSecret", &[("SecretName", "doomed"), ("RecoveryWindowInDays", "7")]).await.unwrap();
    let (status, code, message) = api_error(run("doomed").await);
    assert_eq!((status, code.as_str()), (409, "Rejected.ResourceInDeleteWindow"), "{message}");
    good_works().await;

    let wrong = json!({"AccountName": account, "AccountPassword": "not-the-password"}).to_string();
    c.call("PutSecretValue", &[("SecretName", "stale"), ("VersionId", "v2"), ("SecretData", &wrong)]).await.unwrap();
    let (status, code, message) = api_error(run("stale").await);
    assert_eq!((status, code.as_str()), (400, "DBInstance.LogonFailed"), "after its retries: {message}");
    assert!(!message.contains("not-the-password"));
    good_works().await;

    // A secret whose policy denies DMS: KMS refuses DMS, and DMS says so.
    let account_id = server.account_id().await;
    let policy = json!({"Version": "1", "Statement": [
        {"Effect": "Allow", "Principal": {"RAM": [format!("acs:ram::{account_id}:root")]}, "Action": ["kms:*"], "Resource": ["*"]},
        {"Effect": "Deny", "Principal": {"RAM": [format!("acs:ram::{account_id}:user/sesame-dms")]}, "Action": ["kms:GetSecretValue"], "Resource": ["*"]}]});
    c.call("SetSecretPolicy", &[("SecretName", "guarded"), ("Policy", &policy.to_string())]).await.unwrap();
    let (status, code, message) = api_error(run("guarded").await);
    assert_eq!((status, code.as_str()), (403, "Forbidden.NoPermission"), "{message}");
    assert!(message.contains("guarded"), "{message}");
    good_works().await;

    proxy.cut().await;
    let (status, code, message) = api_error(run("far").await);
    assert_eq!((status, code.as_str()), (400, "DBInstance.Unreachable"), "{message}");
    good_works().await;

    let v = dms(&c, "ExecuteScript", &[("InstanceAlias", "good"), ("Script", "SELECT 1 AS a; SELECT 1/0; SELECT 2")]).await.unwrap();
    assert_eq!(v["Success"], false);
    let results = v["Results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "the script stops at the failed statement: {v}");
    assert_eq!((results[0]["Success"].as_bool(), results[1]["Success"].as_bool()), (Some(true), Some(false)));
    assert!(results[1]["Message"].as_str().unwrap().starts_with("22012"), "PostgreSQL's division_by_zero: {v}");
    // PostgreSQL parses a whole script first, so a syntax error fails it before anything runs.
    let v = dms(&c, "ExecuteScript", &[("InstanceAlias", "good"), ("Script", "SELECT 1; SELEC oops")]).await.unwrap();
    assert_eq!(v["Results"].as_array().map(Vec::len), Some(1), "{v}");
    assert!(v["Results"][0]["Message"].as_str().unwrap().starts_with("42601"), "{v}");
    let (status, code, _) = api_error(dms(&c, "ExecuteScript", &[("InstanceAlias", "nowhere"), ("Script", "SELECT 1")]).await);
    assert_eq!((status, code.as_str()), (404, "Forbidden.ResourceNotFound"));
    let (_, code, message) = api_error(register_dms(&c, "ghost", &pg, &[("SecretName", "no-such-secret")]).await);
    assert_eq!(code, "Forbidden.ResourceNotFound", "registration checks the secret: {message}");
    assert_eq!(dms(&c, "GetInstance", &[("InstanceAlias", "ghost")]).await.unwrap_err().status(), Some(404), "and keeps nothing");

    let failed = dms(&c, "ListSQLExecAuditLog", &[("ExecState", "FAIL"), ("PageSize", "100")]).await.unwrap();
    let remarks: Vec<&str> =
        failed["SQLExecAuditLogList"]["SQLExecAuditLog"].as_array().unwrap().iter().filter_map(|e| e["Remark"].as_str()).collect();
    assert!(
        remarks.contains(&"DBInstance.LogonFailed") && remarks.contains(&"DBInstance.Unreachable") && remarks.contains(&"error 22012"),
        "{remarks:?}"
    );
    root.drop_account(&account).await.unwrap();
}

/// No password DMS used (a KMS secret's, or a registered one it keeps sealed) appears in DMS's
/// store, the server log, or any DMS response but the result of a query that selects it.
#[tokio::test]
async fn dms_never_stores_or_prints_the_passwords_it_uses() {
    let server = common::TestServer::start(&["--plain-http"]);
    let c = server.client();
    let root = sesame_engines::connect(pg_admin()).unwrap();
    let (kms_account, kms_password) = app_account(root.as_ref(), "kms").await;
    let sealed_account = format!("dm_{}_sealed", sesame_crypto::random::id_suffix(5).unwrap());
    let sealed_password = format!("Canary-DMS-{}-9x", sesame_crypto::random::id_suffix(12).unwrap());
    root.create_account(
        &sealed_account,
        &secrecy::SecretString::from(sealed_password.clone()),
        &AccountSpec::Standard { database: DB.into(), permission: Permission::ReadOnly },
    )
    .await
    .unwrap();
    store_credential(&c, "canary", &kms_account, &kms_password).await;
    let mut outputs = Vec::new();
    outputs.push(register_dms(&c, "kms", &pg_admin(), &[("SecretName", "canary")]).await.unwrap());
    outputs.push(
        register_dms(&c, "sealed", &pg_admin(), &[("DatabaseUser", &sealed_account), ("DatabasePassword", &sealed_password)])
            .await
            .unwrap(),
    );
    for alias in ["kms", "sealed"] {
        let v = dms(&c, "ExecuteScript", &[("InstanceAlias", alias), ("Script", "SELECT current_user AS who")]).await.unwrap();
        assert_eq!(v["Success"], true, "{v}");
        outputs.push(v);
        outputs.push(dms(&c, "GetInstance", &[("InstanceAlias", alias)]).await.unwrap());
        let e = api_error(dms(&c, "ExecuteScript", &[("InstanceAlias", alias), ("Script", "SELECT 1"), ("MaxRows", "0")]).await);
        outputs.push(json!(e.2));
    }
    assert_eq!(outputs[2]["Results"][0]["Rows"][0]["who"], kms_account.as_str());
    assert_eq!(outputs[5]["Results"][0]["Rows"][0]["who"], sealed_account.as_str());
    outputs.push(dms(&c, "ListInstances", &[]).await.unwrap());
    outputs.push(dms(&c, "ListSQLExecAuditLog", &[]).await.unwrap());

    let files = server.data_files();
    assert!(
        files.iter().any(|(n, _)| n.ends_with("dms.db")),
        "DMS's store was searched: {:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for canary in [kms_password.as_str(), sealed_password.as_str()] {
        for (name, text) in &files {
            assert!(!text.contains(canary), "{name} holds a password");
        }
        assert!(!server.log().contains(canary), "the server log holds a password");
        for o in &outputs {
            assert!(!o.to_string().contains(canary), "a DMS response holds a password: {o}");
        }
    }
    root.drop_account(&kms_account).await.unwrap();
    root.drop_account(&sealed_account).await.unwrap();
}

#[tokio::test]
async fn the_cli_registers_runs_sql_and_reads_the_audit() {
    let server = common::TestServer::start(&["--plain-http"]);
    let c = server.client();
    let root = sesame_engines::connect(maria_admin()).unwrap();
    let (account, password) = app_account(root.as_ref(), "cli").await;
    store_credential(&c, "cli/app", &account, &password).await;
    let sesame = |args: &[&str], stdin: Option<&str>| server.cli_with(args, &[], stdin.unwrap_or_default());
    let out = sesame(
        &[
            "dms",
            "register",
            "shop",
            "--engine",
            "mariadb",
            "--host",
            "127.0.0.1",
            "--database",
            DB,
            "--tls",
            "disable",
            "--secret",
            "cli/app",
        ],
        None,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = sesame(&["dms", "sql", "shop", "SELECT 'a' AS x, NULL AS y UNION ALL SELECT 'bb', 'c'"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "x  | y\n---+-----\na  | NULL\nbb | c\n(2 rows)\n");
    let table = format!("dm_cli_{}", sesame_crypto::random::id_suffix(5).unwrap());
    let script = format!(
        "CREATE TABLE {table} (id INT);\nINSERT INTO {table} VALUES (1), (2);\nSELECT COUNT(*) AS n FROM {table};\nDROP TABLE {table};\n"
    );
    let out = sesame(&["dms", "sql", "shop", "--output", "json"], Some(&script));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Results"].as_array().unwrap().len(), 4, "{v}");
    assert_eq!((v["Results"][1]["RowCount"].as_u64(), v["Results"][2]["Rows"][0]["n"].as_str()), (Some(2), Some("2")), "{v}");
    let out = sesame(&["dms", "sql", "shop", "SELEC 1"], None);
    assert_eq!(out.status.code(), Some(4), "a failed statement exits 4");
    assert!(String::from_utf8_lossy(&out.stderr).contains("ERROR 1064"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = sesame(&["dms", "audit", "--instance", "shop", "--failed"], None);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["TotalCount"], 1, "{v}");
    assert_eq!(v["SQLExecAuditLogList"]["SQLExecAuditLog"][0]["AccountName"], account.as_str());
    let out = sesame(&["dms", "list", "--output", "table"], None);
    assert!(String::from_utf8_lossy(&out.stdout).contains("shop"));

    // The interactive console, on a terminal (`script` gives it one): a statement over two
    // lines, an error that does not end the session, then \q.
    let console = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &format!("{} dms sql shop", env!("CARGO_BIN_EXE_sesame")), "/dev/null"])
        .env("SESAME_CONFIG_DIR", server.dir.join("config"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = console.stdin.as_ref().unwrap();
    std::io::Write::write_all(&mut input, b"SELECT 'one' AS x\n  UNION ALL SELECT 'two';\nSELEC 3;\nSELECT 'after' AS y;\n\\q\n").unwrap();
    let out = console.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(out.status.success(), "{text}");
    assert!(text.contains("shop=> ") && text.contains("shop-> "), "prompts, and a continuation prompt: {text}");
    assert!(text.contains("one") && text.contains("two") && text.contains("(2 rows)"), "{text}");
    assert!(text.contains("ERROR 1064") && text.contains("after"), "an error does not end the session: {text}");
    root.drop_account(&account).await.unwrap();
}

/// DMS in one process, KMS in another: DMS signs its calls with a key made on the KMS server,
/// and the KMS server's audit shows them.
#[tokio::test]
async fn dms_runs_in_its_own_process_against_a_remote_kms() {
    let kms = common::TestServer::start(&["--plain-http"]);
    let admin = kms.client();
    let ram = |action: &'static str, params: Vec<(&'static str, String)>| {
        let c = kms.client();
        async move {
            let refs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            c.call_version(sesame_api::ram::RAM_API_VERSION, action, &refs).await.unwrap()
        }
    };
    ram("CreateUser", vec![("UserName", "dms-remote".into())]).await;
    ram(
        "AttachPolicyToUser",
        vec![("PolicyType", "System".into()), ("PolicyName", "SesameDmsAccess".into()), ("UserName", "dms-remote".into())],
    )
    .await;
    let key = ram("CreateAccessKey", vec![("UserName", "dms-remote".into())]).await;
    let (id, secret) =
        (key["AccessKey"]["AccessKeyId"].as_str().unwrap().to_string(), key["AccessKey"]["AccessKeySecret"].as_str().unwrap().to_string());
    let root = sesame_engines::connect(pg_admin()).unwrap();
    let (account, password) = app_account(root.as_ref(), "remote").await;
    store_credential(&admin, "remote/app", &account, &password).await;

    let front = common::TestServer::start_in_env(
        common::unique_dir("dms-front"),
        &["--plain-http", "--dms-kms-endpoint", &kms.endpoint],
        &[("SESAME_DMS_ACCESS_KEY_ID", &id), ("SESAME_DMS_ACCESS_KEY_SECRET", &secret)],
    );
    let c = front.client();
    register_dms(&c, "remote", &pg_admin(), &[("SecretName", "remote/app")]).await.unwrap();
    let v = dms(&c, "ExecuteScript", &[("InstanceAlias", "remote"), ("Script", "SELECT current_user AS who")]).await.unwrap();
    assert_eq!(v["Results"][0]["Rows"][0]["who"], account.as_str());
    assert_eq!(
        c.call("DescribeSecret", &[("SecretName", "remote/app")]).await.unwrap_err().code(),
        Some("Forbidden.ResourceNotFound"),
        "the secret lives only on the KMS server"
    );
    let events = admin
        .call_version(
            sesame_api::ram::ACTIONTRAIL_API_VERSION,
            "LookupEvents",
            &[
                ("LookupAttribute.1.Key", "UserName"),
                ("LookupAttribute.1.Value", "dms-remote"),
                ("LookupAttribute.2.Key", "EventName"),
                ("LookupAttribute.2.Value", "GetSecretValue"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(events["Events"].as_array().unwrap().len(), 2, "the test logon and the statement each fetched the secret: {events}");
    assert!(!front.log().contains(&password) && !kms.log().contains(&password));
    root.drop_account(&account).await.unwrap();
}

/// DMS in the server's own process (whose calls skip the socket) still calls the KMS API as a
/// client: its calls carry its own signed key and land in the server's audit like any other.
#[tokio::test]
async fn dms_in_the_server_calls_kms_as_an_audited_client() {
    let server = common::TestServer::start(&["--plain-http"]);
    let c = server.client();
    let root = sesame_engines::connect(pg_admin()).unwrap();
    let (account, password) = app_account(root.as_ref(), "inproc").await;
    store_credential(&c, "inproc/app", &account, &password).await;
    register_dms(&c, "inproc", &pg_admin(), &[("SecretName", "inproc/app")]).await.unwrap();
    let v = dms(&c, "ExecuteScript", &[("InstanceAlias", "inproc"), ("Script", "SELECT current_user AS who")]).await.unwrap();
    assert_eq!(v["Results"][0]["Rows"][0]["who"], account.as_str());
    let lookup = |event: &'static str| {
        let c = server.client();
        async move {
            let attributes = [
                ("LookupAttribute.1.Key", "UserName"),
                ("LookupAttribute.1.Value", "sesame-dms"),
                ("LookupAttribute.2.Key", "EventName"),
                ("LookupAttribute.2.Value", event),
            ];
            let v = c.call_version(sesame_api::ram::ACTIONTRAIL_API_VERSION, "LookupEvents", &attributes).await.unwrap();
            v["Events"].as_array().unwrap().clone()
        }
    };
    for event in ["ListSecrets", "GetSecretValue"] {
        let events = lookup(event).await;
        assert_eq!(events.len(), 2, "the test logon and the statement each called {event}: {events:?}");
        for e in &events {
            assert_eq!(e["userIdentity"]["accessKeyId"].as_str().map(|k| k.starts_with("LTAI")), Some(true), "{e}");
            assert_eq!(e["sourceIpAddress"], "127.0.0.1", "{e}");
            assert_eq!(e["result"], "Success", "{e}");
        }
    }
    assert!(!server.log().contains(&password));
    root.drop_account(&account).await.unwrap();
}
