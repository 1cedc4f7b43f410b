//! The SQL Server engine end to end over the real TDS protocol: against the TDS test server in
//! `tests/tds/`, and against a real SQL Server when `SESAME_TEST_MSSQL_URL`
//! (`mssql://USER:PASSWORD@HOST:PORT/DATABASE`) is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod tds;

use secrecy::SecretString;
use sesame_engines::{AccountSpec, DbTarget, Engine, EngineError, EngineKind, Permission, TlsMode, connect, generate_password};

fn target(port: u16, admin: &str, password: &str) -> DbTarget {
    DbTarget {
        kind: EngineKind::SqlServer,
        host: "127.0.0.1".into(),
        port,
        admin_user: admin.into(),
        admin_password: SecretString::from(password.to_string()),
        admin_database: None,
        tls: TlsMode::Disable,
        account_host: None,
    }
}

/// The part of the engine suite that needs only what SQL Server itself answers.
async fn suite(e: &dyn Engine, database: &str) {
    e.ping().await.expect("the administrator logs on");
    let run = sesame_crypto::random::id_suffix(6).unwrap();
    let name = format!("st_{run}_o'k]é");
    let pw = generate_password().unwrap();
    e.create_account(&name, &pw, &AccountSpec::Standard { database: database.into(), permission: Permission::DmlOnly }).await.unwrap();
    assert!(e.account_exists(&name).await.unwrap());
    e.check_login(&name, &pw, Some(database)).await.expect("the new account logs on");
    let wrong = SecretString::from("Wrong-password-1".to_string());
    assert_eq!(e.check_login(&name, &wrong, Some(database)).await, Err(EngineError::LogonFailed { user: name.clone() }));

    let new_pw = generate_password().unwrap();
    e.set_password(&name, &new_pw).await.unwrap();
    assert!(matches!(e.check_login(&name, &pw, Some(database)).await, Err(EngineError::LogonFailed { .. })), "the old password is refused");
    e.check_login(&name, &new_pw, Some(database)).await.expect("the new password is accepted");

    let clone = format!("st_{run}_clone");
    let clone_pw = generate_password().unwrap();
    e.create_account(&clone, &clone_pw, &AccountSpec::LoginOnly).await.unwrap();
    e.copy_grants(&name, &clone).await.unwrap();
    e.check_login(&clone, &clone_pw, Some(database)).await.expect("the clone has a user in the database after the copy");
    assert_eq!(e.create_account(&clone, &clone_pw, &AccountSpec::LoginOnly).await, Err(EngineError::AccountExists(clone.clone())));
    assert!(matches!(
        e.create_account(
            &format!("st_{run}_x"),
            &clone_pw,
            &AccountSpec::Standard { database: "no_such_db".into(), permission: Permission::ReadOnly }
        )
        .await,
        Err(EngineError::DatabaseNotFound(_))
    ));
    let listed = e.list_accounts().await.unwrap();
    assert!(listed.contains(&name) && listed.contains(&clone));
    for n in [&name, &clone] {
        e.drop_account(n).await.unwrap();
        assert!(!e.account_exists(n).await.unwrap());
    }
    assert_eq!(e.drop_account(&name).await, Err(EngineError::AccountNotFound(name.clone())));
}

#[tokio::test]
async fn sql_server_engine_passes_the_suite_over_tds() {
    let server = tds::TdsServer::start("sa", "Admin-pw-1", &["shop"]).await;
    let e = connect(target(server.port, "sa", "Admin-pw-1")).unwrap();
    suite(e.as_ref(), "shop").await;

    let st = server.state.lock().unwrap();
    // Passwords were checked by the server: the refused logons are in its record.
    assert!(st.logons.iter().any(|(u, ok)| u.contains("o'k]é") && !ok), "a refused logon reached the TDS server");
    assert!(st.logons.iter().filter(|(u, ok)| u.contains("o'k]é") && *ok).count() >= 2);
    // The statements that crossed the wire are the engine's T-SQL, quoted.
    let sent = st.statements.join("\n");
    assert!(sent.contains("CREATE LOGIN [st_") && sent.contains("o'k]]é] WITH PASSWORD = N'"), "{sent}");
    assert!(
        sent.contains("ALTER ROLE [db_datareader] ADD MEMBER [st_") && sent.contains("ALTER ROLE [db_datawriter] ADD MEMBER [st_"),
        "{sent}"
    );
    assert!(sent.contains("_clone] FOR LOGIN [st_"), "the copy created the clone's user: {sent}");
    assert!(st.logins.keys().all(|l| l == "sa"), "everything the suite made was dropped: {:?}", st.logins);
}

#[tokio::test]
async fn copying_grants_makes_the_clone_memberships_equal_and_resyncs() {
    let server = tds::TdsServer::start("sa", "Admin-pw-1", &["shop", "crm"]).await;
    let e = connect(target(server.port, "sa", "Admin-pw-1")).unwrap();
    let pw = generate_password().unwrap();
    e.create_account("app", &pw, &AccountSpec::Standard { database: "shop".into(), permission: Permission::ReadOnly }).await.unwrap();
    e.create_account("app_clone", &pw, &AccountSpec::LoginOnly).await.unwrap();
    e.copy_grants("app", "app_clone").await.unwrap();
    let roles = |st: &tds::State, user: &str| {
        st.db_roles.iter().filter(|(_, _, u)| u == user).map(|(d, r, _)| (d.clone(), r.clone())).collect::<Vec<_>>()
    };
    {
        let st = server.state.lock().unwrap();
        assert_eq!(roles(&st, "app_clone"), roles(&st, "app"));
    }
    // The source gains a role in another database and loses one: a re-sync follows both.
    let admin = |sql: &str| {
        let mut st = server.state.lock().unwrap();
        match sql {
            "grant" => {
                st.users.insert(("crm".into(), "app".into()));
                st.db_roles.insert(("crm".into(), "db_datawriter".into(), "app".into()));
                st.db_roles.remove(&("shop".into(), "db_datareader".into(), "app".into()));
                st.server_roles.insert(("dbcreator".into(), "app".into()));
            }
            _ => unreachable!(),
        }
    };
    admin("grant");
    e.copy_grants("app", "app_clone").await.unwrap();
    let st = server.state.lock().unwrap();
    assert_eq!(roles(&st, "app_clone"), roles(&st, "app"));
    assert!(st.users.contains(&("crm".into(), "app_clone".into())));
    assert!(st.server_roles.contains(&("dbcreator".into(), "app_clone".into())));
}

#[tokio::test]
async fn a_wrong_admin_password_and_a_closed_port_are_told_apart() {
    let server = tds::TdsServer::start("sa", "Admin-pw-1", &[]).await;
    assert!(matches!(connect(target(server.port, "sa", "nope")).unwrap().ping().await, Err(EngineError::LogonFailed { .. })));
    assert!(matches!(connect(target(1, "sa", "x")).unwrap().ping().await, Err(EngineError::Unreachable(_))));
}

/// No SQL Server can be installed on these machines, so this runs only when asked:
/// `SESAME_TEST_MSSQL_URL=mssql://sa:PW@host:1433/db cargo test -p sesame-engines --test mssql -- --ignored`.
#[tokio::test]
#[ignore = "needs a real SQL Server named by SESAME_TEST_MSSQL_URL"]
async fn the_suite_runs_against_a_real_sql_server() {
    let url = std::env::var("SESAME_TEST_MSSQL_URL").expect("SESAME_TEST_MSSQL_URL names the SQL Server to test against");
    let rest = url.strip_prefix("mssql://").expect("SESAME_TEST_MSSQL_URL is mssql://USER:PASSWORD@HOST:PORT/DATABASE");
    let (auth, rest) = rest.rsplit_once('@').unwrap();
    let (user, password) = auth.split_once(':').unwrap();
    let (hostport, database) = rest.split_once('/').unwrap();
    let (host, port) = hostport.rsplit_once(':').unwrap();
    let mut t = target(port.parse().unwrap(), user, password);
    t.host = host.into();
    suite(connect(t).unwrap().as_ref(), database).await;
}
