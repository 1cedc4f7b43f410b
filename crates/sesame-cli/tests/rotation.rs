//! Rds secrets rotated on the real PostgreSQL and MariaDB through the real server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::db::*;
use serde_json::{Value, json};
use sesame_client::{Client, ClientError};
use sesame_engines::{AccountSpec, DbTarget, Engine, Permission};

async fn rotation_suite(t: DbTarget, db_id: &str) {
    let server = common::TestServer::start(&["--plain-http"]);
    let c = server.client();
    register(&c, db_id, &t).await;
    let admin = sesame_engines::connect(t.clone()).unwrap();
    let run = sesame_crypto::random::id_suffix(5).unwrap();
    let perm = AccountSpec::Standard { database: DB.into(), permission: Permission::ReadWrite };

    // Single mode, imported with a wrong password: the first rotation heals it.
    let single = format!("st_{run}_single");
    admin.create_account(&single, &sesame_engines::generate_password().unwrap(), &perm).await.unwrap();
    create_rds(&c, "rds/single", "SingleUser", db_id, json!([{"AccountName": single, "AccountPassword": "not-the-real-one"}])).await;
    let imported = stage(&c, "rds/single", "ACSCurrent").await;
    assert!(!logs_on(admin.as_ref(), &imported).await, "the imported password is wrong");
    let r = c.call("RotateSecret", &[("SecretName", "rds/single"), ("VersionId", "r1")]).await.unwrap();
    assert_eq!(r["VersionId"], "r1");
    let current = stage(&c, "rds/single", "ACSCurrent").await;
    assert_eq!(current.0, single);
    assert!(logs_on(admin.as_ref(), &current).await, "after the first rotation ACSCurrent logs on");
    assert_eq!(stage(&c, "rds/single", "ACSPrevious").await, imported);
    // Idempotent by VersionId.
    c.call("RotateSecret", &[("SecretName", "rds/single"), ("VersionId", "r1")]).await.unwrap();
    assert_eq!(stage(&c, "rds/single", "ACSCurrent").await, current, "the same VersionId rotates once");
    let versions = c.call("ListSecretVersionIds", &[("SecretName", "rds/single"), ("IncludeDeprecated", "true")]).await.unwrap();
    assert_eq!(versions["TotalCount"], 2);

    // Dual mode from one imported account: the clone appears, and both stages always log on.
    let dual = format!("st_{run}_dual");
    let dual_pw = sesame_engines::generate_password().unwrap();
    admin.create_account(&dual, &dual_pw, &perm).await.unwrap();
    create_rds(
        &c,
        "rds/dual",
        "DoubleUsers",
        db_id,
        json!([{"AccountName": dual, "AccountPassword": secrecy::ExposeSecret::expose_secret(&dual_pw)}]),
    )
    .await;
    let mut seen = Vec::new();
    for i in 0..6 {
        c.call("RotateSecret", &[("SecretName", "rds/dual"), ("VersionId", &format!("d{i}"))]).await.unwrap();
        let (cur, prev) = (stage(&c, "rds/dual", "ACSCurrent").await, stage(&c, "rds/dual", "ACSPrevious").await);
        assert_ne!(cur.0, prev.0, "the two stages name different accounts");
        assert!(logs_on(admin.as_ref(), &cur).await && logs_on(admin.as_ref(), &prev).await, "rotation {i}: both stages log on");
        seen.push(cur.0);
    }
    assert_eq!(seen[0], format!("{dual}_clone"), "the first rotation creates the clone");
    assert!(seen.windows(2).all(|w| w[0] != w[1]), "the accounts alternate: {seen:?}");
    let d = c.call("DescribeSecret", &[("SecretName", "rds/dual")]).await.unwrap();
    assert!(d["LastRotationDate"].is_string() && d["RotationHealth"]["InProgress"] == false, "{d}");

    // Refusals.
    c.call("CreateSecret", &[("SecretName", "generic"), ("VersionId", "v1"), ("SecretData", "x")]).await.unwrap();
    let e = c.call("RotateSecret", &[("SecretName", "generic"), ("VersionId", "x")]).await.unwrap_err();
    assert_eq!(e.code(), Some("InvalidParameter"));
    let e = c.call("PutSecretValue", &[("SecretName", "rds/dual"), ("VersionId", "x"), ("SecretData", "y")]).await.unwrap_err();
    assert_eq!(e.code(), Some("InvalidParameter"), "Rds versions change only by rotation");
    let e = c.call("GetSecretValue", &[("SecretName", "rds/dual"), ("VersionStage", "ACSPending")]).await.unwrap_err();
    assert_eq!(e.code(), Some("InvalidParameter"));
    let cfg = json!({"SecretSubType": "SingleUser", "DBInstanceId": "not-registered"}).to_string();
    let e = c
        .call(
            "CreateSecret",
            &[
                ("SecretName", "rds/none"),
                ("SecretType", "Rds"),
                ("VersionId", "v1"),
                ("SecretData", r#"{"Accounts":[{"AccountName":"a","AccountPassword":"b"}]}"#),
                ("ExtendedConfig", &cfg),
            ],
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Api { status: 404, .. }), "{e}");

    // Every password the rotations made is in no log line and no file of the data directory.
    let mut passwords = vec![stage(&c, "rds/single", "ACSCurrent").await.1];
    for st in ["ACSCurrent", "ACSPrevious"] {
        passwords.push(stage(&c, "rds/dual", st).await.1);
    }
    let mut server = server;
    server.stop();
    let log = server.log();
    let contents = server.data_files();
    assert!(contents.iter().any(|(n, _)| n.ends_with("sesame.db")), "the store file was searched");
    for pw in &passwords {
        assert!(!log.contains(pw.as_str()), "the server log contains a rotated password");
        for (name, text) in &contents {
            assert!(!text.contains(pw.as_str()), "{name} contains a rotated password");
        }
    }

    for name in [single, dual.clone(), format!("{dual}_clone")] {
        admin.drop_account(&name).await.unwrap();
    }
}

#[tokio::test]
async fn postgresql_rds_secrets_rotate_in_single_and_dual_mode() {
    rotation_suite(pg_admin(), "pg-rot").await;
}

#[tokio::test]
async fn mariadb_rds_secrets_rotate_in_single_and_dual_mode() {
    rotation_suite(maria_admin(), "maria-rot").await;
}

#[tokio::test]
async fn a_failed_rotation_is_recorded_retried_and_never_breaks_the_current_version() {
    let server = common::TestServer::start(&["--plain-http"]);
    let c = server.client();
    let root = sesame_engines::connect(pg_admin()).unwrap();
    let run = sesame_crypto::random::id_suffix(5).unwrap();
    // An administrator of our own, whose password we can break and mend.
    let admin_name = format!("st_{run}_admin");
    let admin_pw = sesame_engines::generate_password().unwrap();
    root.create_account(&admin_name, &admin_pw, &AccountSpec::Privileged).await.unwrap();
    let t = DbTarget { admin_user: admin_name.clone(), admin_password: admin_pw.clone(), ..pg_admin() };
    register(&c, "pg-flaky", &t).await;
    let app = format!("st_{run}_app");
    let app_pw = sesame_engines::generate_password().unwrap();
    root.create_account(&app, &app_pw, &AccountSpec::Standard { database: DB.into(), permission: Permission::ReadOnly }).await.unwrap();
    create_rds(
        &c,
        "rds/flaky",
        "SingleUser",
        "pg-flaky",
        json!([{"AccountName": app, "AccountPassword": secrecy::ExposeSecret::expose_secret(&app_pw)}]),
    )
    .await;
    let before = stage(&c, "rds/flaky", "ACSCurrent").await;

    // The administrator Sesame logs on with stops working: the attempt fails and is recorded.
    root.set_password(&admin_name, &sesame_engines::generate_password().unwrap()).await.unwrap();
    let e = c.call("RotateSecret", &[("SecretName", "rds/flaky"), ("VersionId", "f1")]).await.unwrap_err();
    assert_eq!(e.code(), Some("DBInstance.LogonFailed"), "{e}");
    assert!(logs_on(root.as_ref(), &stage(&c, "rds/flaky", "ACSCurrent").await).await, "ACSCurrent still logs on");
    assert_eq!(stage(&c, "rds/flaky", "ACSCurrent").await, before);
    let d = c.call("DescribeSecret", &[("SecretName", "rds/flaky")]).await.unwrap();
    let h = &d["RotationHealth"];
    assert_eq!(
        (h["InProgress"].as_bool(), h["Attempts"].as_i64(), h["Step"].as_str()),
        (Some(true), Some(1), Some("PendingStored")),
        "{d}"
    );
    assert!(h["LastError"].as_str().unwrap().contains("DBInstance.LogonFailed") && h["NextRetry"].is_string(), "{d}");
    let e = c.call("RotateSecret", &[("SecretName", "rds/flaky"), ("VersionId", "other")]).await.unwrap_err();
    assert!(matches!(e, ClientError::Api { status: 429, .. }), "a second rotation waits for the first: {e}");

    // The administrator works again: retrying the same rotation completes it.
    root.set_password(&admin_name, &admin_pw).await.unwrap();
    c.call("RotateSecret", &[("SecretName", "rds/flaky"), ("VersionId", "f1")]).await.unwrap();
    let after = stage(&c, "rds/flaky", "ACSCurrent").await;
    assert_ne!(after.1, before.1);
    assert!(logs_on(root.as_ref(), &after).await);
    assert!(!logs_on(root.as_ref(), &before).await, "single mode: the old password no longer works");
    let d = c.call("DescribeSecret", &[("SecretName", "rds/flaky")]).await.unwrap();
    assert_eq!(d["RotationHealth"]["InProgress"], false);
    for name in [app, admin_name] {
        root.drop_account(&name).await.unwrap();
    }
}

async fn version_of(c: &Client, name: &str, stage: &str) -> String {
    c.call("GetSecretValue", &[("SecretName", name), ("VersionStage", stage)]).await.unwrap()["VersionId"].as_str().unwrap().to_string()
}

/// The server kills itself (SIGKILL) right after each step of a rotation; restarted on the same
/// data, it finishes the rotation by itself, and ACSCurrent logs on.
#[tokio::test]
async fn a_rotation_killed_at_any_step_completes_after_a_restart() {
    let root = sesame_engines::connect(pg_admin()).unwrap();
    let fast = [("SESAME_ROTATION_LEASE_SECS", "1"), ("SESAME_SCHEDULER_SECS", "1")];
    for point in ["PendingStored", "ApplyUnrecorded", "Applied", "Verified"] {
        let dir = common::unique_dir("crash");
        let mut env = fast.to_vec();
        env.push(("SESAME_FAULT_CRASH_AT", point));
        let mut first = common::TestServer::start_in_env(dir.clone(), &["--plain-http"], &env);
        let c = first.client();
        register(&c, "pg", &pg_admin()).await;
        let app = format!("st_{}_crash", sesame_crypto::random::id_suffix(5).unwrap());
        let pw = sesame_engines::generate_password().unwrap();
        root.create_account(&app, &pw, &AccountSpec::Standard { database: DB.into(), permission: Permission::ReadOnly }).await.unwrap();
        create_rds(
            &c,
            "rds/crash",
            "SingleUser",
            "pg",
            json!([{"AccountName": app, "AccountPassword": secrecy::ExposeSecret::expose_secret(&pw)}]),
        )
        .await;
        let before = stage(&c, "rds/crash", "ACSCurrent").await;

        let r = c.call("RotateSecret", &[("SecretName", "rds/crash"), ("VersionId", "k1")]).await;
        assert!(matches!(r, Err(ClientError::Transport { .. })), "{point}: the server should have died, got {r:?}");
        let status = first.child.wait().unwrap();
        assert!(!status.success(), "{point}: killed, not exited ({status:?})");
        let old_works = logs_on(root.as_ref(), &before).await;
        assert_eq!(
            old_works,
            point == "PendingStored",
            "{point}: the database has the new password exactly when the crash came after applying it"
        );

        let second = common::TestServer::start_in_env(dir.clone(), &["--plain-http"], &fast);
        let c = second.client();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let d = c.call("DescribeSecret", &[("SecretName", "rds/crash")]).await.unwrap();
            if d["RotationHealth"]["InProgress"] == false {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{point}: the restarted server did not finish the rotation: {d}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(version_of(&c, "rds/crash", "ACSCurrent").await, "k1", "{point}: the interrupted rotation was completed, not redone");
        let after = stage(&c, "rds/crash", "ACSCurrent").await;
        assert!(logs_on(root.as_ref(), &after).await, "{point}: ACSCurrent logs on after the restart");
        assert_eq!(stage(&c, "rds/crash", "ACSPrevious").await, before);
        root.drop_account(&app).await.unwrap();
    }
}

/// Clients log on with ACSCurrent, fetched through the API at every logon, while the secret
/// rotates again and again. Rotations are `period` apart: dual mode promises that an account
/// stays valid for one rotation period, so a period must outlast a client's fetch and logon
/// (real periods are hours; back to back, a client could see two rotations between its fetch
/// and its logon).
async fn rotate_under_load(t: DbTarget, mode: &str, rotations: usize, period: std::time::Duration, retry_once: bool) -> (usize, usize) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let server =
        common::TestServer::start_in_env(common::unique_dir("load"), &["--plain-http"], &[("SESAME_MAX_ROTATIONS_PER_HOUR", "100000")]);
    let c = Arc::new(server.client());
    register(&c, "db", &t).await;
    let root: Arc<dyn Engine> = Arc::from(sesame_engines::connect(t.clone()).unwrap());
    let app = format!("st_{}_load", sesame_crypto::random::id_suffix(5).unwrap());
    let pw = sesame_engines::generate_password().unwrap();
    root.create_account(&app, &pw, &AccountSpec::Standard { database: DB.into(), permission: Permission::ReadOnly }).await.unwrap();
    create_rds(&c, "rds/load", mode, "db", json!([{"AccountName": app, "AccountPassword": secrecy::ExposeSecret::expose_secret(&pw)}]))
        .await;

    let stop = Arc::new(AtomicBool::new(false));
    let (failures, logons) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut clients = Vec::new();
    for _ in 0..3 {
        let (c, root, stop, failures, logons) = (c.clone(), root.clone(), stop.clone(), failures.clone(), logons.clone());
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let mut ok = logs_on(root.as_ref(), &stage(&c, "rds/load", "ACSCurrent").await).await;
                if !ok && retry_once {
                    // The client's one retry: a short back-off, a fresh fetch, a new logon.
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    ok = logs_on(root.as_ref(), &stage(&c, "rds/load", "ACSCurrent").await).await;
                }
                if ok {
                    logons.fetch_add(1, Ordering::Relaxed);
                } else {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for i in 0..rotations {
        c.call("RotateSecret", &[("SecretName", "rds/load"), ("VersionId", &format!("r{i}"))])
            .await
            .unwrap_or_else(|e| panic!("rotation {i}: {e}"));
        tokio::time::sleep(period).await;
    }
    stop.store(true, Ordering::Relaxed);
    for h in clients {
        h.await.unwrap();
    }
    for name in [app.clone(), format!("{app}_clone")] {
        let _ = root.drop_account(&name).await;
    }
    (failures.load(Ordering::Relaxed), logons.load(Ordering::Relaxed))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_dual_rotations_on_mariadb_refuse_no_logon() {
    let (failures, logons) = rotate_under_load(maria_admin(), "DoubleUsers", 200, std::time::Duration::from_millis(250), false).await;
    assert_eq!(failures, 0, "dual mode refuses no logon ({logons} succeeded)");
    assert!(logons >= 200, "the clients kept logging on throughout ({logons})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_dual_rotations_on_postgresql_refuse_no_logon() {
    let (failures, logons) = rotate_under_load(pg_admin(), "DoubleUsers", 200, std::time::Duration::from_millis(250), false).await;
    assert_eq!(failures, 0, "dual mode refuses no logon ({logons} succeeded)");
    assert!(logons >= 200, "the clients kept logging on throughout ({logons})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_mode_clients_that_retry_once_never_fail() {
    for t in [pg_admin(), maria_admin()] {
        let (failures, logons) = rotate_under_load(t, "SingleUser", 20, std::time::Duration::from_millis(1000), true).await;
        assert_eq!(failures, 0, "a refetch and one retry absorb the window ({logons} succeeded)");
        assert!(logons > 0);
    }
}

async fn config_of(c: &Client, name: &str) -> Value {
    let d = c.call("DescribeSecret", &[("SecretName", name)]).await.unwrap();
    serde_json::from_str(d["ExtendedConfig"].as_str().unwrap()).unwrap()
}

async fn health(c: &Client, name: &str) -> Value {
    c.call("DescribeSecret", &[("SecretName", name)]).await.unwrap()["RotationHealth"].clone()
}

/// Create-accounts mode: the plan is stored (with sealed passwords) and nothing exists on the
/// server until the administrator confirms; then both accounts exist, log on, and rotate.
async fn create_accounts_suite(t: DbTarget, db_id: &str) {
    let server = common::TestServer::start(&["--plain-http"]);
    let c = server.client();
    register(&c, db_id, &t).await;
    let admin = sesame_engines::connect(t.clone()).unwrap();
    let prefix = format!("ca{}", sesame_crypto::random::id_suffix(4).unwrap());
    let cfg = json!({"SecretSubType": "DoubleUsers", "DBInstanceId": db_id, "AccountNamePrefix": prefix, "DBName": DB, "AccountPrivilege": "ReadOnly"});
    c.call(
        "CreateSecret",
        &[
            ("SecretName", "rds/created"),
            ("SecretType", "Rds"),
            ("VersionId", "v1"),
            ("ExtendedConfig", &cfg.to_string()),
            ("EnableAutomaticRotation", "true"),
            ("RotationInterval", "7d"),
        ],
    )
    .await
    .unwrap();
    let plan = config_of(&c, "rds/created").await;
    assert_eq!(plan["AccountCreation"], "AwaitingConfirmation", "{plan}");
    let planned: Vec<String> = plan["PlannedAccounts"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert_eq!(planned.len(), 2, "{plan}");
    assert!(planned[0].starts_with(&format!("{prefix}_")) && planned[1] == format!("{}_clone", planned[0]), "{planned:?}");
    for name in &planned {
        assert!(!admin.account_exists(name).await.unwrap(), "{name} exists before the confirmation");
    }
    for action in ["GetSecretValue", "RotateSecret"] {
        let e = c.call(action, &[("SecretName", "rds/created"), ("VersionId", "r0")]).await.unwrap_err();
        assert!(matches!(e, ClientError::Api { status: 409, .. }) && e.code() == Some("Rejected.SecretNotReady"), "{action}: {e}");
    }
    let d = c.call("DescribeSecret", &[("SecretName", "rds/created")]).await.unwrap();
    assert!(d.get("NextRotationDate").is_none(), "the rotation clock starts at the confirmation: {d}");

    c.call("ConfirmSecretAccounts", &[("SecretName", "rds/created")]).await.unwrap();
    assert_eq!(config_of(&c, "rds/created").await["AccountCreation"], "Created");
    let current = stage(&c, "rds/created", "ACSCurrent").await;
    let previous = stage(&c, "rds/created", "ACSPrevious").await;
    assert_eq!((&current.0, &previous.0), (&planned[0], &planned[1]));
    assert!(logs_on(admin.as_ref(), &current).await && logs_on(admin.as_ref(), &previous).await, "both created accounts log on");
    let d = c.call("DescribeSecret", &[("SecretName", "rds/created")]).await.unwrap();
    assert!(d["NextRotationDate"].is_string() && d["RotationHealth"]["InProgress"] == false, "{d}");
    c.call("ConfirmSecretAccounts", &[("SecretName", "rds/created")]).await.unwrap();
    c.call("RotateSecret", &[("SecretName", "rds/created"), ("VersionId", "r1")]).await.unwrap();
    let rotated = stage(&c, "rds/created", "ACSCurrent").await;
    assert_eq!(rotated.0, planned[1], "dual mode: the other account is current now");
    assert!(logs_on(admin.as_ref(), &rotated).await && logs_on(admin.as_ref(), &current).await);

    // A plan that is discarded never touches the server.
    let single = json!({"SecretSubType": "SingleUser", "DBInstanceId": db_id, "AccountNamePrefix": prefix, "AccountType": "Super"});
    c.call(
        "CreateSecret",
        &[("SecretName", "rds/discarded"), ("SecretType", "Rds"), ("VersionId", "v1"), ("ExtendedConfig", &single.to_string())],
    )
    .await
    .unwrap();
    let planned_single = config_of(&c, "rds/discarded").await["PlannedAccounts"][0].as_str().unwrap().to_string();
    c.call("DeleteSecret", &[("SecretName", "rds/discarded"), ("ForceDeleteWithoutRecovery", "true")]).await.unwrap();
    assert!(!admin.account_exists(&planned_single).await.unwrap());
    assert_eq!(
        c.call("ConfirmSecretAccounts", &[("SecretName", "rds/discarded")]).await.unwrap_err().code(),
        Some("Forbidden.ResourceNotFound")
    );
    for name in planned {
        admin.drop_account(&name).await.unwrap();
    }
}

#[tokio::test]
async fn postgresql_accounts_are_created_only_after_confirmation() {
    create_accounts_suite(pg_admin(), "pg-create").await;
}

#[tokio::test]
async fn mariadb_accounts_are_created_only_after_confirmation() {
    create_accounts_suite(maria_admin(), "maria-create").await;
}

/// The database goes away (its port refuses connections) in the middle of a rotation, of a
/// confirmation and of a rotation that is then cancelled: the attempts fail and are retried by
/// the scheduler, ACSCurrent keeps logging on, the health shows the error, and once the
/// database is back everything completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_goes_down_delays_rotations_and_breaks_nothing() {
    let fast = [("SESAME_SCHEDULER_SECS", "1"), ("SESAME_ROTATION_RETRY_SECS", "1"), ("SESAME_ROTATION_LEASE_SECS", "5")];
    let server = common::TestServer::start_in_env(common::unique_dir("down"), &["--plain-http"], &fast);
    let c = server.client();
    let mut proxy = common::TcpProxy::start("127.0.0.1:5432").await;
    register(&c, "pg-down", &DbTarget { port: proxy.port, ..pg_admin() }).await;
    let root = sesame_engines::connect(pg_admin()).unwrap();
    let run = sesame_crypto::random::id_suffix(4).unwrap();
    let mut made = Vec::new();
    for which in ["down", "cancel"] {
        let app = format!("st_{run}_{which}");
        let pw = sesame_engines::generate_password().unwrap();
        root.create_account(&app, &pw, &AccountSpec::Standard { database: DB.into(), permission: Permission::ReadOnly }).await.unwrap();
        let accounts = json!([{"AccountName": app, "AccountPassword": secrecy::ExposeSecret::expose_secret(&pw)}]);
        create_rds(&c, &format!("rds/{which}"), "SingleUser", "pg-down", accounts).await;
        made.push(app);
    }
    let cfg = json!({"SecretSubType": "DoubleUsers", "DBInstanceId": "pg-down", "AccountNamePrefix": format!("dn{run}"), "DBName": DB, "AccountPrivilege": "ReadWrite"});
    c.call(
        "CreateSecret",
        &[("SecretName", "rds/planned"), ("SecretType", "Rds"), ("VersionId", "v1"), ("ExtendedConfig", &cfg.to_string())],
    )
    .await
    .unwrap();
    let before = stage(&c, "rds/down", "ACSCurrent").await;

    proxy.cut().await;
    for (action, name) in [("RotateSecret", "rds/down"), ("RotateSecret", "rds/cancel"), ("ConfirmSecretAccounts", "rds/planned")] {
        let e = c.call(action, &[("SecretName", name), ("VersionId", "d1")]).await.unwrap_err();
        assert_eq!(e.code(), Some("DBInstance.Unreachable"), "{action} {name}: {e}");
    }
    assert!(logs_on(root.as_ref(), &before).await, "ACSCurrent logs on while Sesame cannot reach the database");
    assert_eq!(version_of(&c, "rds/down", "ACSCurrent").await, "v1");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let h = health(&c, "rds/down").await;
        assert!(h["LastError"].as_str().unwrap().contains("DBInstance.Unreachable"), "{h}");
        if h["Attempts"].as_i64().unwrap() >= 3 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the scheduler does not retry: {h}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // A rotation that never reached the database can be cancelled; its version stays stored.
    loop {
        match c.call("CancelSecretRotation", &[("SecretName", "rds/cancel")]).await {
            Ok(_) => break,
            Err(e) if e.code() == Some("Rejected.Throttling") => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            Err(e) => panic!("cancel: {e}"),
        }
    }
    assert_eq!(health(&c, "rds/cancel").await["InProgress"], false);
    let versions = c.call("ListSecretVersionIds", &[("SecretName", "rds/cancel"), ("IncludeDeprecated", "true")]).await.unwrap();
    assert_eq!(versions["TotalCount"], 2, "{versions}");
    assert_eq!(version_of(&c, "rds/cancel", "ACSCurrent").await, "v1");
    let e = c.call("CancelSecretRotation", &[("SecretName", "rds/cancel")]).await.unwrap_err();
    assert_eq!(e.code(), Some("InvalidParameter"), "nothing left to cancel: {e}");

    proxy.restore().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while health(&c, "rds/down").await["InProgress"] == true || health(&c, "rds/planned").await["InProgress"] == true {
        assert!(std::time::Instant::now() < deadline, "the rotation did not complete after the database came back");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(version_of(&c, "rds/down", "ACSCurrent").await, "d1");
    let after = stage(&c, "rds/down", "ACSCurrent").await;
    assert!(logs_on(root.as_ref(), &after).await, "the completed rotation's password logs on");
    assert_eq!(stage(&c, "rds/down", "ACSPrevious").await, before);
    let created = (stage(&c, "rds/planned", "ACSCurrent").await, stage(&c, "rds/planned", "ACSPrevious").await);
    assert!(logs_on(root.as_ref(), &created.0).await && logs_on(root.as_ref(), &created.1).await, "the confirmation completed");
    made.extend([created.0.0, created.1.0]);
    for name in made {
        root.drop_account(&name).await.unwrap();
    }
}

#[tokio::test]
async fn the_cli_shows_the_plan_confirms_and_discards_only_plans() {
    let server = common::TestServer::start(&["--plain-http"]);
    let c = server.client();
    register(&c, "pg-cli", &pg_admin()).await;
    let sesame = |args: &[&str]| server.cli(args);
    let prefix = format!("cli{}", sesame_crypto::random::id_suffix(4).unwrap());
    let base = ["secret", "create-rds", "--db-instance", "pg-cli", "--prefix", prefix.as_str()];
    let out = sesame(&[&base[..], &["app/db", "--mode", "dual", "--database", DB, "--privilege", "ReadOnly"]].concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Nothing is created yet") && stderr.contains("sesame secret confirm app/db") && stderr.contains(&prefix),
        "{stderr}"
    );
    let json: Value = serde_json::from_slice(&out.stdout).expect("standard output stays JSON");
    assert_eq!(json["SecretName"], "app/db");

    let out = sesame(&["secret", "get", "app/db"]);
    assert_eq!(out.status.code(), Some(4), "a 409 is a client error: {}", String::from_utf8_lossy(&out.stderr));
    assert!(sesame(&["secret", "confirm", "app/db"]).status.success());
    let out = sesame(&["secret", "discard", "app/db"]);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("not awaiting confirmation"),
        "a confirmed secret is not discarded"
    );
    let value: Value = serde_json::from_slice(&sesame(&["secret", "get", "app/db"]).stdout).unwrap();
    let root = sesame_engines::connect(pg_admin()).unwrap();
    let account = (value["AccountName"].as_str().unwrap().to_string(), value["AccountPassword"].as_str().unwrap().to_string());
    assert!(logs_on(root.as_ref(), &account).await);

    let out = sesame(&[&base[..], &["ops/db", "--mode", "single", "--privileged"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(sesame(&["secret", "discard", "ops/db"]).status.success());
    assert_eq!(sesame(&["secret", "describe", "ops/db"]).status.code(), Some(3), "discarded at once");
    for which in ["ACSCurrent", "ACSPrevious"] {
        root.drop_account(&stage(&c, "app/db", which).await.0).await.unwrap();
    }
}
