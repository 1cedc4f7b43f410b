//! PostgreSQL accounts. Roles are cluster-wide, privileges per database, so grants on a
//! database's schema are made over a connection to that database.
//!
//! Grants are copied by role membership: `GRANT "from" TO "to"` makes `to` inherit whatever
//! `from` holds now and later, which is the re-sync the dual-account mode needs. Copying back
//! the other way (dual mode alternates the direction) finds the membership already there and
//! adds nothing, since the original holds every privilege its clone inherits.

use crate::quote::{pg_ident, pg_literal};
use crate::{
    AccountSpec, CONNECT_TIMEOUT, DbTarget, Engine, EngineError, EngineKind, Fut, Permission, TlsMode, check_account_name, classify,
};
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::{ConnectOptions, Connection, Executor, Row};

/// SQLSTATEs worth a retry: internal "tuple concurrently updated", serialization failure,
/// deadlock.
const TRANSIENT: [&str; 3] = ["XX000", "40001", "40P01"];

pub struct Postgres {
    target: DbTarget,
    /// The administrator's session in the administration database that `prepare_admin` opened,
    /// taken by the next call that needs one there.
    prepared: std::sync::Mutex<Option<PgConnection>>,
}

impl Postgres {
    pub fn new(target: DbTarget) -> Self {
        Postgres { target, prepared: std::sync::Mutex::new(None) }
    }

    fn admin_database(&self) -> &str {
        self.target.admin_database.as_deref().filter(|d| !d.is_empty()).unwrap_or("postgres")
    }

    pub(crate) async fn connect_as(&self, user: &str, password: &SecretString, database: &str) -> Result<PgConnection, EngineError> {
        let ssl = match self.target.tls {
            TlsMode::Disable => PgSslMode::Disable,
            TlsMode::Prefer => PgSslMode::Prefer,
            TlsMode::Require => PgSslMode::Require,
            TlsMode::VerifyFull => PgSslMode::VerifyFull,
        };
        let opts = PgConnectOptions::new()
            .host(&self.target.host)
            .port(self.target.port)
            .username(user)
            .password(password.expose_secret())
            .database(database)
            .ssl_mode(ssl)
            .application_name("sesame")
            .disable_statement_logging();
        match tokio::time::timeout(CONNECT_TIMEOUT, opts.connect()).await {
            Err(_) => Err(EngineError::Unreachable("timed out".into())),
            Ok(Err(e)) => Err(match classify(e, user, "logging on") {
                EngineError::DatabaseNotFound(_) => EngineError::DatabaseNotFound(database.to_string()),
                other => other,
            }),
            Ok(Ok(c)) => Ok(c),
        }
    }

    async fn set_password_on(admin: &mut PgConnection, name: &str, password: &SecretString) -> Result<(), EngineError> {
        if !Self::exists(admin, name).await? {
            return Err(EngineError::AccountNotFound(name.to_string()));
        }
        Self::run(
            admin,
            &format!("ALTER ROLE {} PASSWORD {}", pg_ident(name)?, pg_literal(password.expose_secret())?),
            crate::PASSWORD_STATEMENT,
        )
        .await
    }

    async fn copy_grants_on(admin: &mut PgConnection, from: &str, to: &str) -> Result<(), EngineError> {
        for n in [from, to] {
            if !Self::exists(admin, n).await? {
                return Err(EngineError::AccountNotFound(n.to_string()));
            }
        }
        let attrs = Self::numbers(
            admin,
            "SELECT rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = $1",
            vec![from.to_string()],
            "reading the account's attributes",
        )
        .await?;
        let flag = |i: usize, yes: &str, no: &str| -> String {
            if attrs.get(i).copied().unwrap_or_default() != 0 { yes.into() } else { no.into() }
        };
        let (from_q, to_q) = (pg_ident(from)?, pg_ident(to)?);
        let alter = format!("ALTER ROLE {to_q} {} {}", flag(0, "CREATEDB", "NOCREATEDB"), flag(1, "CREATEROLE", "NOCREATEROLE"));
        Self::run(admin, &alter, "copying the account's attributes").await?;
        // Already inheriting from `from`: nothing to add. `from` inheriting from `to` (the pair
        // after the first copy, read the other way in dual mode): `to` already holds the
        // privileges `from` has, and the reverse grant would be a membership cycle.
        if !Self::is_member(admin, to, from).await? && !Self::is_member(admin, from, to).await? {
            Self::run(admin, &format!("GRANT {from_q} TO {to_q}"), "copying grants").await?;
        }
        Ok(())
    }

    /// A session in `database` (the administration database by default): the one
    /// `prepare_admin` opened there, or a new logon.
    async fn admin(&self, database: Option<&str>) -> Result<PgConnection, EngineError> {
        if database.is_none()
            && let Some(prepared) = self.prepared.lock().ok().and_then(|mut p| p.take())
        {
            return Ok(prepared);
        }
        let db = database.unwrap_or(self.admin_database()).to_string();
        self.connect_as(&self.target.admin_user, &self.target.admin_password, &db).await
    }

    /// A bare `&str` goes over the simple-query protocol, which takes utility statements and
    /// several statements at once.
    ///
    /// Concurrent GRANTs on one schema make PostgreSQL answer "tuple concurrently updated"
    /// (XX000); with serialization failures and deadlocks these are transient, and every
    /// statement the engine runs may be repeated, so it retries them a few times.
    fn run<'a>(conn: &'a mut PgConnection, sql: &'a str, during: &'static str) -> Fut<'a, ()> {
        Box::pin(async move {
            let mut delay = std::time::Duration::from_millis(20);
            for _ in 0..4 {
                match conn.execute(sql).await.map(drop).map_err(|e| classify(e, "", during)) {
                    Err(EngineError::Refused { code, .. }) if TRANSIENT.contains(&code.as_str()) => {
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                    }
                    other => return other,
                }
            }
            conn.execute(sql).await.map(drop).map_err(|e| classify(e, "", during))
        })
    }

    /// The first column of every row of a parameterised query.
    fn strings<'a>(conn: &'a mut PgConnection, sql: &'static str, binds: Vec<String>, during: &'static str) -> Fut<'a, Vec<String>> {
        Box::pin(async move {
            let mut q = sqlx::query(sql);
            for b in binds {
                q = q.bind(b);
            }
            let rows = q.fetch_all(&mut *conn).await.map_err(|e| classify(e, "", during))?;
            rows.iter().map(|r| r.try_get::<String, _>(0).map_err(|e| classify(e, "", during))).collect()
        })
    }

    /// The first row of a parameterised query whose columns are integers or booleans, as i64.
    fn numbers<'a>(conn: &'a mut PgConnection, sql: &'static str, binds: Vec<String>, during: &'static str) -> Fut<'a, Vec<i64>> {
        Box::pin(async move {
            let mut q = sqlx::query(sql);
            for b in binds {
                q = q.bind(b);
            }
            let row = q.fetch_one(&mut *conn).await.map_err(|e| classify(e, "", during))?;
            (0..row.len())
                .map(|i| {
                    row.try_get::<i64, _>(i).or_else(|_| row.try_get::<bool, _>(i).map(i64::from)).map_err(|e| classify(e, "", during))
                })
                .collect()
        })
    }

    async fn server_version(conn: &mut PgConnection) -> Result<i64, EngineError> {
        let v = Self::numbers(conn, "SELECT current_setting('server_version_num')::int8", vec![], "reading the version").await?;
        Ok(v.first().copied().unwrap_or_default())
    }

    /// Whether `member` is a member of `role` (and so inherits its privileges).
    async fn is_member(conn: &mut PgConnection, member: &str, role: &str) -> Result<bool, EngineError> {
        let n = Self::numbers(
            conn,
            "SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE r.rolname = $1 AND u.rolname = $2",
            vec![role.to_string(), member.to_string()],
            "reading memberships",
        )
        .await?;
        Ok(n.first().copied().unwrap_or_default() > 0)
    }

    async fn exists(conn: &mut PgConnection, name: &str) -> Result<bool, EngineError> {
        let v = Self::numbers(conn, "SELECT count(*) FROM pg_roles WHERE rolname = $1", vec![name.to_string()], "looking up the account")
            .await?;
        Ok(v.first().copied().unwrap_or_default() > 0)
    }

    /// Statements granting `permission` in the current database's `public` schema.
    pub fn schema_grants(role: &str, permission: Permission) -> Result<Vec<String>, EngineError> {
        let r = pg_ident(role)?;
        let tables = |privs: &str| {
            [
                format!("GRANT {privs} ON ALL TABLES IN SCHEMA public TO {r}"),
                format!("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT {privs} ON TABLES TO {r}"),
            ]
        };
        let sequences = [
            format!("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {r}"),
            format!("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {r}"),
        ];
        let mut out = Vec::new();
        match permission {
            Permission::ReadWrite => {
                out.push(format!("GRANT USAGE, CREATE ON SCHEMA public TO {r}"));
                out.extend(tables("SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER"));
                out.extend(sequences);
            }
            Permission::ReadOnly => {
                out.push(format!("GRANT USAGE ON SCHEMA public TO {r}"));
                out.extend(tables("SELECT"));
                out.push(format!("GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO {r}"));
            }
            Permission::DdlOnly => out.push(format!("GRANT USAGE, CREATE ON SCHEMA public TO {r}")),
            Permission::DmlOnly => {
                out.push(format!("GRANT USAGE ON SCHEMA public TO {r}"));
                out.extend(tables("SELECT, INSERT, UPDATE, DELETE"));
                out.extend(sequences);
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Engine for Postgres {
    fn kind(&self) -> EngineKind {
        EngineKind::PostgreSql
    }

    async fn prepare_admin(&self) -> Result<(), EngineError> {
        let conn = self.connect_as(&self.target.admin_user, &self.target.admin_password, self.admin_database()).await?;
        if let Ok(mut prepared) = self.prepared.lock() {
            *prepared = Some(conn);
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), EngineError> {
        let mut c = self.admin(None).await?;
        Self::run(&mut c, "SELECT 1", "checking the connection").await
    }

    async fn create_account(&self, name: &str, password: &SecretString, spec: &AccountSpec) -> Result<(), EngineError> {
        check_account_name(EngineKind::PostgreSql, name)?;
        let mut admin = self.admin(None).await?;
        if Self::exists(&mut admin, name).await? {
            return Err(EngineError::AccountExists(name.to_string()));
        }
        let role = pg_ident(name)?;
        let pw = pg_literal(password.expose_secret())?;
        match spec {
            AccountSpec::LoginOnly => {
                Self::run(&mut admin, &format!("CREATE ROLE {role} LOGIN PASSWORD {pw}"), crate::CREATE_STATEMENT).await?
            }
            AccountSpec::Privileged => {
                Self::run(&mut admin, &format!("CREATE ROLE {role} LOGIN CREATEDB CREATEROLE PASSWORD {pw}"), crate::CREATE_STATEMENT)
                    .await?;
                if Self::server_version(&mut admin).await? >= 140_000 {
                    Self::run(&mut admin, &format!("GRANT pg_read_all_data, pg_write_all_data TO {role}"), "granting privileges").await?;
                }
            }
            AccountSpec::Standard { database, permission } => {
                // Connect first, so that a missing database fails before the role exists.
                let mut db = self.admin(Some(database)).await.map_err(|e| match e {
                    EngineError::DatabaseNotFound(_) => EngineError::DatabaseNotFound(database.clone()),
                    other => other,
                })?;
                Self::run(&mut admin, &format!("CREATE ROLE {role} LOGIN PASSWORD {pw}"), crate::CREATE_STATEMENT).await?;
                let mut grants = vec![format!("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {role}", pg_ident(database)?)];
                grants.extend(Self::schema_grants(name, *permission)?);
                for (i, g) in grants.iter().enumerate() {
                    let conn = if i == 0 { &mut admin } else { &mut db };
                    if let Err(e) = Self::run(conn, g, "granting privileges").await {
                        // Leave nothing half-made behind.
                        let _ = Self::run(&mut db, &format!("DROP OWNED BY {role}"), "cleaning up").await;
                        let _ = Self::run(&mut admin, &format!("DROP OWNED BY {role}; DROP ROLE {role}"), "cleaning up").await;
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }

    async fn check_login(&self, name: &str, password: &SecretString, database: Option<&str>) -> Result<(), EngineError> {
        let db = database.unwrap_or(self.admin_database()).to_string();
        let mut c = self.connect_as(name, password, &db).await?;
        Self::run(&mut c, "SELECT 1", "checking the logon").await?;
        let _ = c.close().await;
        Ok(())
    }

    async fn set_password(&self, name: &str, password: &SecretString) -> Result<(), EngineError> {
        let mut admin = self.admin(None).await?;
        Self::set_password_on(&mut admin, name, password).await
    }

    async fn copy_grants(&self, from: &str, to: &str) -> Result<(), EngineError> {
        let mut admin = self.admin(None).await?;
        Self::copy_grants_on(&mut admin, from, to).await
    }

    async fn set_password_and_grants(&self, name: &str, password: &SecretString, grants_from: Option<&str>) -> Result<(), EngineError> {
        let mut admin = self.admin(None).await?;
        Self::set_password_on(&mut admin, name, password).await?;
        match grants_from {
            Some(from) => Self::copy_grants_on(&mut admin, from, name).await,
            None => Ok(()),
        }
    }

    async fn drop_account(&self, name: &str) -> Result<(), EngineError> {
        let mut admin = self.admin(None).await?;
        if !Self::exists(&mut admin, name).await? {
            return Err(EngineError::AccountNotFound(name.to_string()));
        }
        let role = pg_ident(name)?;
        // Privileges and default privileges live in each database: drop them everywhere.
        let dbs = Self::strings(
            &mut admin,
            "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate",
            vec![],
            "listing databases",
        )
        .await?;
        for db in dbs {
            if let Ok(mut c) = self.admin(Some(&db)).await {
                Self::run(
                    &mut c,
                    &format!("REASSIGN OWNED BY {role} TO CURRENT_USER; DROP OWNED BY {role}"),
                    "dropping the account's privileges",
                )
                .await?;
            }
        }
        Self::run(&mut admin, &format!("DROP ROLE {role}"), "dropping the account").await
    }

    async fn list_accounts(&self) -> Result<Vec<String>, EngineError> {
        let mut admin = self.admin(None).await?;
        Self::strings(
            &mut admin,
            "SELECT rolname FROM pg_roles WHERE rolcanlogin AND rolname NOT LIKE 'pg\\_%' ORDER BY 1",
            vec![],
            "listing accounts",
        )
        .await
    }

    async fn account_exists(&self, name: &str) -> Result<bool, EngineError> {
        let mut admin = self.admin(None).await?;
        Self::exists(&mut admin, name).await
    }
}
