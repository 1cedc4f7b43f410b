//! One engine conformance suite, run against the real PostgreSQL and the real MariaDB on this
//! machine (`scripts/ensure-services` prepares them). A server that cannot be reached fails the
//! suite; nothing here skips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use secrecy::{ExposeSecret, SecretString};
use sesame_engines::{AccountSpec, DbTarget, Engine, EngineError, EngineKind, Permission, TlsMode, connect, generate_password};
use sqlx::{ConnectOptions, Connection, Executor};

const DB: &str = "sesame_test";

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn postgres() -> DbTarget {
    DbTarget {
        kind: EngineKind::PostgreSql,
        host: env("SESAME_TEST_PG_HOST", "127.0.0.1"),
        port: env("SESAME_TEST_PG_PORT", "5432").parse().unwrap(),
        admin_user: env("SESAME_TEST_PG_ADMIN", "sesame_admin"),
        admin_password: SecretString::from(env("SESAME_TEST_PG_ADMIN_PASSWORD", "sesame-admin-test-pw")),
        admin_database: Some("postgres".into()),
        tls: TlsMode::Prefer,
        account_host: None,
    }
}

fn mariadb() -> DbTarget {
    DbTarget {
        kind: EngineKind::MariaDb,
        host: env("SESAME_TEST_MARIADB_HOST", "127.0.0.1"),
        port: env("SESAME_TEST_MARIADB_PORT", "3306").parse().unwrap(),
        admin_user: env("SESAME_TEST_MARIADB_ADMIN", "root"),
        admin_password: SecretString::from(env("SESAME_TEST_MARIADB_ADMIN_PASSWORD", "")),
        admin_database: None,
        tls: TlsMode::Prefer,
        account_host: None,
    }
}

/// Runs SQL in `sesame_test` as a given account; `Err` holds the failure for the message.
async fn as_user(t: &DbTarget, user: &str, password: &SecretString, sql: &str) -> Result<(), String> {
    match t.kind {
        EngineKind::PostgreSql => {
            let opts = sqlx::postgres::PgConnectOptions::new()
                .host(&t.host)
                .port(t.port)
                .username(user)
                .password(password.expose_secret())
                .database(DB)
                .disable_statement_logging();
            let mut c = opts.connect().await.map_err(|e| format!("logon: {e}"))?;
            let r = c.execute(sql).await.map(drop).map_err(|e| e.to_string());
            let _ = c.close().await;
            r
        }
        _ => {
            let mut opts =
                sqlx::mysql::MySqlConnectOptions::new().host(&t.host).port(t.port).username(user).database(DB).disable_statement_logging();
            if !password.expose_secret().is_empty() {
                opts = opts.password(password.expose_secret());
            }
            let mut c = opts.connect().await.map_err(|e| format!("logon: {e}"))?;
            let r = c.execute(sql).await.map(drop).map_err(|e| e.to_string());
            let _ = c.close().await;
            r
        }
    }
}

async fn as_admin(t: &DbTarget, sql: &str) {
    as_user(t, &t.admin_user, &t.admin_password, sql).await.unwrap_or_else(|e| panic!("admin SQL {sql:?} failed: {e}"));
}

struct Account {
    name: String,
    password: SecretString,
}

async fn create(e: &dyn Engine, name: String, spec: AccountSpec) -> Account {
    let password = generate_password().unwrap();
    e.create_account(&name, &password, &spec).await.unwrap_or_else(|err| panic!("creating {name} ({spec:?}): {err}"));
    Account { name, password }
}

fn ident(kind: EngineKind, s: &str) -> String {
    match kind {
        EngineKind::PostgreSql => sesame_engines::quote::pg_ident(s).unwrap(),
        _ => sesame_engines::quote::my_ident(s).unwrap(),
    }
}

fn grant_insert(kind: EngineKind, table: &str, user: &str) -> String {
    match kind {
        EngineKind::PostgreSql => format!("GRANT INSERT ON {table} TO {}", ident(kind, user)),
        _ => format!("GRANT INSERT ON {DB}.{table} TO {}", sesame_engines::quote::my_account(user, "%", true).unwrap()),
    }
}

fn revoke_insert(kind: EngineKind, table: &str, user: &str) -> String {
    match kind {
        EngineKind::PostgreSql => format!("REVOKE INSERT ON {table} FROM {}", ident(kind, user)),
        _ => format!("REVOKE INSERT ON {DB}.{table} FROM {}", sesame_engines::quote::my_account(user, "%", true).unwrap()),
    }
}

async fn suite(t: DbTarget) {
    let kind = t.kind;
    let e = connect(t.clone()).unwrap();
    e.ping().await.unwrap_or_else(|err| {
        panic!(
            "{} at {}:{} is required by this suite and did not answer: {err}. Run scripts/ensure-services.",
            kind.as_str(),
            t.host,
            t.port
        )
    });
    // Accounts a crashed earlier run of this suite left behind. Only this suite's prefix: other
    // tests make accounts on the same servers at the same time.
    for stale in e.list_accounts().await.unwrap().into_iter().filter(|n| n.starts_with("ec_")) {
        let _ = e.drop_account(&stale).await;
    }
    let run = sesame_crypto::random::id_suffix(6).unwrap();
    let prefix = format!("ec_{run}_");
    let table = format!("owned_{run}");
    as_admin(&t, &format!("CREATE TABLE {table} (id INT)")).await;
    as_admin(&t, &format!("INSERT INTO {table} VALUES (1)")).await;
    let select = format!("SELECT * FROM {table}");
    let insert = format!("INSERT INTO {table} VALUES (2)");
    let create_table = |who: &str| format!("CREATE TABLE made_by_{who}_{run} (id INT)");

    // Permission matrix.
    let mut made = Vec::new();
    for (tag, permission) in
        [("rw", Permission::ReadWrite), ("ro", Permission::ReadOnly), ("ddl", Permission::DdlOnly), ("dml", Permission::DmlOnly)]
    {
        let a = create(e.as_ref(), format!("{prefix}{tag}"), AccountSpec::Standard { database: DB.into(), permission }).await;
        e.check_login(&a.name, &a.password, Some(DB)).await.unwrap_or_else(|err| panic!("{tag} logs on: {err}"));
        let can = |r: &Result<(), String>| r.is_ok();
        let sel = as_user(&t, &a.name, &a.password, &select).await;
        let ins = as_user(&t, &a.name, &a.password, &insert).await;
        let ddl = as_user(&t, &a.name, &a.password, &create_table(tag)).await;
        let expected = match permission {
            Permission::ReadWrite => (true, true, true),
            Permission::ReadOnly => (true, false, false),
            Permission::DdlOnly => (false, false, true),
            Permission::DmlOnly => (true, true, false),
        };
        assert_eq!(
            (can(&sel), can(&ins), can(&ddl)),
            expected,
            "{} {tag}: select {sel:?}, insert {ins:?}, create table {ddl:?}",
            kind.as_str()
        );
        made.push(a);
    }
    let privileged = create(e.as_ref(), format!("{prefix}priv"), AccountSpec::Privileged).await;
    e.check_login(&privileged.name, &privileged.password, Some(DB)).await.unwrap();
    as_user(&t, &privileged.name, &privileged.password, &select).await.expect("a privileged account reads every table");

    // Wrong passwords and unknown accounts are logon failures, not other errors.
    let wrong = SecretString::from("not-the-password".to_string());
    assert_eq!(
        e.check_login(&made[0].name, &wrong, Some(DB)).await,
        Err(EngineError::LogonFailed { user: made[0].name.clone() }),
        "a wrong password must be refused"
    );
    assert!(matches!(e.check_login(&format!("{prefix}nobody"), &wrong, Some(DB)).await, Err(EngineError::LogonFailed { .. })));

    // Set password: the old one is refused, the new one accepted.
    let new_pw = generate_password().unwrap();
    e.set_password(&made[1].name, &new_pw).await.unwrap();
    assert!(
        matches!(e.check_login(&made[1].name, &made[1].password, Some(DB)).await, Err(EngineError::LogonFailed { .. })),
        "the old password is refused after set_password"
    );
    e.check_login(&made[1].name, &new_pw, Some(DB)).await.expect("the new password is accepted");
    made[1].password = new_pw;

    // Grant copy and re-sync: the clone gets exactly the source's privileges, now and later.
    let source = &made[1]; // ReadOnly
    let mut clone = create(e.as_ref(), format!("{prefix}ro_clone"), AccountSpec::LoginOnly).await;
    assert!(as_user(&t, &clone.name, &clone.password, &select).await.is_err(), "a login-only account reads nothing");
    e.copy_grants(&source.name, &clone.name).await.unwrap();
    as_user(&t, &clone.name, &clone.password, &select).await.expect("the clone reads what the source reads");
    assert!(as_user(&t, &clone.name, &clone.password, &insert).await.is_err(), "the clone cannot do what the source cannot");
    as_admin(&t, &grant_insert(kind, &table, &source.name)).await;
    e.copy_grants(&source.name, &clone.name).await.unwrap();
    as_user(&t, &clone.name, &clone.password, &insert).await.expect("a grant added to the source reaches the clone on re-sync");
    as_admin(&t, &revoke_insert(kind, &table, &source.name)).await;
    // A rotation's step does both over one logon: the new password, and the re-sync.
    let rotated = sesame_engines::generate_password().unwrap();
    e.set_password_and_grants(&clone.name, &rotated, Some(&source.name)).await.unwrap();
    clone.password = rotated;
    e.check_login(&clone.name, &clone.password, Some(DB)).await.expect("the clone logs on with its new password");
    assert!(
        as_user(&t, &clone.name, &clone.password, &insert).await.is_err(),
        "a grant revoked from the source leaves the clone on re-sync"
    );
    // Dual mode copies in both directions over time; the way back must work and change nothing
    // either account can do.
    e.copy_grants(&clone.name, &source.name).await.expect("copying back from the clone");
    e.copy_grants(&source.name, &clone.name).await.expect("and forth again");
    as_user(&t, &source.name, &source.password, &select).await.expect("the source still reads");
    as_user(&t, &clone.name, &clone.password, &select).await.expect("the clone still reads");
    assert!(as_user(&t, &clone.name, &clone.password, &insert).await.is_err(), "and still cannot insert");
    made.push(clone);

    // Hostile names: quotes, backslashes, spaces and non-ASCII work end to end.
    let odd =
        create(e.as_ref(), format!("{prefix}o'k\"\\ é"), AccountSpec::Standard { database: DB.into(), permission: Permission::ReadOnly })
            .await;
    e.check_login(&odd.name, &odd.password, Some(DB)).await.expect("an account with quotes, a backslash, a space and é logs on");
    assert!(e.account_exists(&odd.name).await.unwrap());
    let odd_pw = SecretString::from("p'a\"s\\s w%rd_é".to_string());
    e.set_password(&odd.name, &odd_pw).await.unwrap();
    e.check_login(&odd.name, &odd_pw, Some(DB)).await.expect("a password with quotes and a backslash works");
    made.push(odd);
    assert!(matches!(
        e.create_account(&format!("{prefix}nul\0"), &odd_pw, &AccountSpec::LoginOnly).await,
        Err(EngineError::InvalidInput(_))
    ));
    assert!(matches!(
        e.create_account(&"x".repeat(kind.max_account_name() + 1), &odd_pw, &AccountSpec::LoginOnly).await,
        Err(EngineError::InvalidInput(_))
    ));
    assert!(matches!(
        e.create_account(
            &format!("{prefix}nodb"),
            &odd_pw,
            &AccountSpec::Standard { database: "no_such_db_here".into(), permission: Permission::ReadOnly }
        )
        .await,
        Err(EngineError::DatabaseNotFound(_))
    ));
    assert!(!e.account_exists(&format!("{prefix}nodb")).await.unwrap(), "a failed create leaves no account behind");
    assert_eq!(
        e.create_account(&made[0].name, &odd_pw, &AccountSpec::LoginOnly).await,
        Err(EngineError::AccountExists(made[0].name.clone()))
    );

    // A missing account is named as such: a dual rotation creates its clone on this answer.
    let nobody = format!("{prefix}nobody2");
    let pw = sesame_engines::generate_password().unwrap();
    assert_eq!(e.set_password(&nobody, &pw).await, Err(EngineError::AccountNotFound(nobody.clone())));
    assert_eq!(e.set_password_and_grants(&nobody, &pw, Some(&made[1].name)).await, Err(EngineError::AccountNotFound(nobody.clone())));
    assert_eq!(e.copy_grants(&made[1].name, &nobody).await, Err(EngineError::AccountNotFound(nobody.clone())));
    assert_eq!(e.copy_grants(&nobody, &made[1].name).await, Err(EngineError::AccountNotFound(nobody.clone())));

    // A canary password in failing calls never comes back in an error, Debug or Display.
    let canary = SecretString::from(format!("CANARY-{run}-pw'\\\""));
    let failures = [
        e.set_password(&format!("{prefix}nobody"), &canary).await,
        e.create_account(&made[0].name, &canary, &AccountSpec::LoginOnly).await,
        e.create_account(
            &format!("{prefix}nodb2"),
            &canary,
            &AccountSpec::Standard { database: "no_such_db_here".into(), permission: Permission::ReadOnly },
        )
        .await,
        e.check_login(&made[0].name, &canary, Some(DB)).await,
    ];
    for f in failures {
        let err = f.expect_err("each of these calls fails");
        let shown = format!("{err:?} {err}");
        assert!(!shown.contains("CANARY"), "an engine error shows the password: {shown}");
    }

    // Listing and dropping.
    let listed = e.list_accounts().await.unwrap();
    for a in made.iter().chain([&privileged]) {
        assert!(listed.contains(&a.name), "{} is listed", a.name);
    }
    for a in made.iter().chain([&privileged]) {
        e.drop_account(&a.name).await.unwrap_or_else(|err| panic!("dropping {}: {err}", a.name));
        assert!(!e.account_exists(&a.name).await.unwrap());
        let after = e.check_login(&a.name, &a.password, Some(DB)).await;
        assert!(matches!(after, Err(EngineError::LogonFailed { .. })), "a dropped account cannot log on: {} {after:?}", a.name);
    }
    assert_eq!(e.drop_account(&made[0].name).await, Err(EngineError::AccountNotFound(made[0].name.clone())));
    as_admin(&t, &format!("DROP TABLE {table}")).await;
    for tag in ["rw", "ddl"] {
        as_admin(&t, &format!("DROP TABLE IF EXISTS made_by_{tag}_{run}")).await;
    }
}

#[tokio::test]
async fn postgresql_passes_the_engine_conformance_suite() {
    suite(postgres()).await;
}

#[tokio::test]
async fn mariadb_passes_the_engine_conformance_suite() {
    suite(mariadb()).await;
}

#[tokio::test]
async fn an_unreachable_server_is_reported_as_such() {
    let mut t = postgres();
    t.port = 1; // nothing listens there
    let e = connect(t).unwrap();
    assert!(matches!(e.ping().await, Err(EngineError::Unreachable(_))));
}

#[tokio::test]
async fn a_wrong_admin_password_is_a_logon_failure() {
    let mut t = mariadb();
    t.admin_user = "sesame_no_such_admin".into();
    let e = connect(t).unwrap();
    let r = e.ping().await;
    assert!(matches!(r, Err(EngineError::LogonFailed { .. })), "{r:?}");
}

/// `prepare_admin` logs on ahead, and the next call works over that session: it still succeeds
/// after the administrator's password has changed under it, and the call after it, which logs
/// on again, does not.
async fn works_over_the_prepared_session(root: DbTarget) {
    let e = connect(root.clone()).unwrap();
    let suffix = sesame_crypto::random::id_suffix(6).unwrap();
    let admin = create(&*e, format!("prep_admin_{suffix}"), AccountSpec::LoginOnly).await;
    let account = create(&*e, format!("prep_acct_{suffix}"), AccountSpec::LoginOnly).await;
    let mut t = root.clone();
    match root.kind {
        EngineKind::PostgreSql => {
            as_admin(&root, &format!("ALTER ROLE {} CREATEROLE", ident(root.kind, &admin.name))).await;
            // Loopback logons elsewhere are trusted whatever the password; this one checks it.
            t.admin_database = Some(DB.into());
        }
        _ => {
            let admin_account = sesame_engines::quote::my_account(&admin.name, "%", true).unwrap();
            as_admin(&root, &format!("GRANT ALL PRIVILEGES ON *.* TO {admin_account} WITH GRANT OPTION")).await;
        }
    }
    t.admin_user = admin.name.clone();
    t.admin_password = admin.password;
    let prepared = connect(t).unwrap();
    prepared.prepare_admin().await.unwrap();
    // The administrator's password changes after the session was opened.
    e.set_password(&admin.name, &generate_password().unwrap()).await.unwrap();

    let first = generate_password().unwrap();
    prepared.set_password(&account.name, &first).await.expect("the prepared session sets the password");
    e.check_login(&account.name, &first, None).await.unwrap();
    let again = prepared.set_password(&account.name, &generate_password().unwrap()).await;
    assert!(matches!(again, Err(EngineError::LogonFailed { .. })), "a second call logs on anew: {again:?}");

    for name in [&admin.name, &account.name] {
        e.drop_account(name).await.unwrap();
    }
}

#[tokio::test]
async fn postgresql_works_over_the_session_prepare_admin_opened() {
    works_over_the_prepared_session(postgres()).await;
}

#[tokio::test]
async fn mariadb_works_over_the_session_prepare_admin_opened() {
    works_over_the_prepared_session(mariadb()).await;
}
