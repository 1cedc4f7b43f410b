//! SQL Server accounts through tiberius: a server login, and in each database a user mapped to
//! it whose permissions come from fixed database roles (`db_datareader`, `db_datawriter`,
//! `db_ddladmin`). Grants are copied by making the clone's role memberships, server and database,
//! equal to the source's.
//!
//! No SQL Server runs on the test machines: the T-SQL is unit-tested here, and the engine runs
//! end to end against the TDS test server in `tests/tds/`, which performs PRELOGIN and LOGIN7
//! and checks passwords; set `SESAME_TEST_MSSQL_URL` to run the same suite against a real server.
//! TLS to SQL Server is not built in yet (tiberius negotiates "encryption not supported").

use crate::quote::{mssql_ident, mssql_literal};
use crate::{AccountSpec, CONNECT_TIMEOUT, DbTarget, Engine, EngineError, EngineKind, Fut, Permission, check_account_name};
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

type Conn = Client<Compat<TcpStream>>;

/// SQL Server's "Login failed for user" error.
pub const LOGIN_FAILED: u32 = 18456;
/// "Password validation failed" (15114–15119 per cause).
const PASSWORD_POLICY: [u32; 6] = [15114, 15115, 15116, 15117, 15118, 15119];

pub struct SqlServer {
    target: DbTarget,
}

/// The T-SQL the engine sends, as pure functions so that it is tested without a server.
pub mod tsql {
    use super::*;

    pub fn create_login(name: &str, password: &str) -> Result<String, EngineError> {
        Ok(format!("CREATE LOGIN {} WITH PASSWORD = {}", mssql_ident(name)?, mssql_literal(password)?))
    }

    pub fn alter_password(name: &str, password: &str) -> Result<String, EngineError> {
        Ok(format!("ALTER LOGIN {} WITH PASSWORD = {}", mssql_ident(name)?, mssql_literal(password)?))
    }

    pub fn drop_login(name: &str) -> Result<String, EngineError> {
        Ok(format!("DROP LOGIN {}", mssql_ident(name)?))
    }

    pub fn use_db(db: &str) -> Result<String, EngineError> {
        Ok(format!("USE {}", mssql_ident(db)?))
    }

    pub fn create_user(name: &str) -> Result<String, EngineError> {
        let n = mssql_ident(name)?;
        Ok(format!("CREATE USER {n} FOR LOGIN {n}"))
    }

    pub fn drop_user(name: &str) -> Result<String, EngineError> {
        Ok(format!("DROP USER {}", mssql_ident(name)?))
    }

    pub fn role_member(role: &str, name: &str, add: bool) -> Result<String, EngineError> {
        Ok(format!("ALTER ROLE {} {} MEMBER {}", mssql_ident(role)?, if add { "ADD" } else { "DROP" }, mssql_ident(name)?))
    }

    pub fn server_role_member(role: &str, name: &str, add: bool) -> Result<String, EngineError> {
        Ok(format!("ALTER SERVER ROLE {} {} MEMBER {}", mssql_ident(role)?, if add { "ADD" } else { "DROP" }, mssql_ident(name)?))
    }

    /// The fixed database roles that give a permission.
    pub fn roles(permission: Permission) -> &'static [&'static str] {
        match permission {
            Permission::ReadWrite => &["db_datareader", "db_datawriter", "db_ddladmin"],
            Permission::ReadOnly => &["db_datareader"],
            Permission::DdlOnly => &["db_ddladmin"],
            Permission::DmlOnly => &["db_datareader", "db_datawriter"],
        }
    }

    /// Server roles of a privileged account (RDS's privileged account is not sysadmin).
    pub const PRIVILEGED_SERVER_ROLES: [&str; 2] = ["dbcreator", "securityadmin"];

    pub fn login_exists(name: &str) -> Result<String, EngineError> {
        Ok(format!("SELECT name FROM sys.sql_logins WHERE name = {}", mssql_literal(name)?))
    }

    pub const LIST_LOGINS: &str = "SELECT name FROM sys.sql_logins ORDER BY name";
    pub const LIST_DATABASES: &str = "SELECT name FROM sys.databases";

    pub fn database_exists(db: &str) -> Result<String, EngineError> {
        Ok(format!("SELECT name FROM sys.databases WHERE name = {}", mssql_literal(db)?))
    }

    pub fn user_exists(name: &str) -> Result<String, EngineError> {
        Ok(format!("SELECT name FROM sys.database_principals WHERE name = {}", mssql_literal(name)?))
    }

    pub fn database_roles_of(name: &str) -> Result<String, EngineError> {
        Ok(format!(
            "SELECT r.name FROM sys.database_role_members AS m JOIN sys.database_principals AS r ON r.principal_id = m.role_principal_id JOIN sys.database_principals AS u ON u.principal_id = m.member_principal_id WHERE u.name = {}",
            mssql_literal(name)?
        ))
    }

    pub fn server_roles_of(name: &str) -> Result<String, EngineError> {
        Ok(format!(
            "SELECT r.name FROM sys.server_role_members AS m JOIN sys.server_principals AS r ON r.principal_id = m.role_principal_id JOIN sys.server_principals AS u ON u.principal_id = m.member_principal_id WHERE u.name = {}",
            mssql_literal(name)?
        ))
    }
}

fn classify(e: tiberius::error::Error, user: &str, during: &'static str) -> EngineError {
    match e {
        tiberius::error::Error::Io { kind, .. } => EngineError::Unreachable(kind.to_string()),
        tiberius::error::Error::Server(t) if t.code() == LOGIN_FAILED => EngineError::LogonFailed { user: user.to_string() },
        // Password validation failed: too short, too long, not complex enough, or in history.
        tiberius::error::Error::Server(t) if PASSWORD_POLICY.contains(&t.code()) => {
            EngineError::PasswordRejected { code: t.code().to_string() }
        }
        tiberius::error::Error::Server(t) => EngineError::Refused { code: t.code().to_string(), during },
        tiberius::error::Error::Tls(_) => EngineError::Unreachable("TLS negotiation failed".into()),
        _ => EngineError::Refused { code: "protocol".into(), during },
    }
}

impl SqlServer {
    pub fn new(target: DbTarget) -> Self {
        SqlServer { target }
    }

    fn connect_as<'a>(&'a self, user: &'a str, password: &'a SecretString, database: Option<&'a str>) -> Fut<'a, Conn> {
        Box::pin(async move {
            let mut config = Config::new();
            config.host(&self.target.host);
            config.port(self.target.port);
            config.authentication(AuthMethod::sql_server(user, password.expose_secret()));
            config.encryption(EncryptionLevel::NotSupported);
            config.application_name("sesame");
            if let Some(db) = database.filter(|d| !d.is_empty()) {
                config.database(db);
            }
            let connect = async {
                let tcp = TcpStream::connect(config.get_addr()).await.map_err(|e| EngineError::Unreachable(e.kind().to_string()))?;
                let _ = tcp.set_nodelay(true);
                Client::connect(config, tcp.compat_write()).await.map_err(|e| classify(e, user, "logging on"))
            };
            tokio::time::timeout(CONNECT_TIMEOUT, connect).await.map_err(|_| EngineError::Unreachable("timed out".into()))?
        })
    }

    fn admin(&self) -> Fut<'_, Conn> {
        self.connect_as(&self.target.admin_user, &self.target.admin_password, self.target.admin_database.as_deref())
    }

    /// Runs a batch; returns the first column of every row of every result set.
    fn batch<'a>(conn: &'a mut Conn, sql: String, during: &'static str) -> Fut<'a, Vec<String>> {
        Box::pin(async move {
            let sets = conn
                .simple_query(sql)
                .await
                .map_err(|e| classify(e, "", during))?
                .into_results()
                .await
                .map_err(|e| classify(e, "", during))?;
            Ok(sets.iter().flatten().filter_map(|row| row.get::<&str, _>(0).map(str::to_string)).collect())
        })
    }

    async fn exists(conn: &mut Conn, name: &str) -> Result<bool, EngineError> {
        Ok(!Self::batch(conn, tsql::login_exists(name)?, "looking up the account").await?.is_empty())
    }

    async fn databases(conn: &mut Conn) -> Result<Vec<String>, EngineError> {
        Self::batch(conn, tsql::LIST_DATABASES.to_string(), "listing databases").await
    }

    /// Makes `to`'s roles (among those `from` has or `to` has) equal to `from`'s.
    fn sync(
        from: &[String],
        to: &[String],
        statement: impl Fn(&str, bool) -> Result<String, EngineError>,
    ) -> Result<Vec<String>, EngineError> {
        let mut out = Vec::new();
        for r in from.iter().filter(|r| !to.contains(r)) {
            out.push(statement(r, true)?);
        }
        for r in to.iter().filter(|r| !from.contains(r)) {
            out.push(statement(r, false)?);
        }
        Ok(out)
    }
}

#[async_trait]
impl Engine for SqlServer {
    fn kind(&self) -> EngineKind {
        EngineKind::SqlServer
    }

    async fn ping(&self) -> Result<(), EngineError> {
        let mut c = self.admin().await?;
        Self::batch(&mut c, "SELECT 1".into(), "checking the connection").await.map(drop)
    }

    async fn create_account(&self, name: &str, password: &SecretString, spec: &AccountSpec) -> Result<(), EngineError> {
        check_account_name(EngineKind::SqlServer, name)?;
        let mut c = self.admin().await?;
        if Self::exists(&mut c, name).await? {
            return Err(EngineError::AccountExists(name.to_string()));
        }
        let mut then = Vec::new();
        match spec {
            AccountSpec::LoginOnly => {}
            AccountSpec::Privileged => {
                for role in tsql::PRIVILEGED_SERVER_ROLES {
                    then.push(tsql::server_role_member(role, name, true)?);
                }
            }
            AccountSpec::Standard { database, permission } => {
                if Self::batch(&mut c, tsql::database_exists(database)?, "looking up the database").await?.is_empty() {
                    return Err(EngineError::DatabaseNotFound(database.clone()));
                }
                then.push(tsql::use_db(database)?);
                then.push(tsql::create_user(name)?);
                for role in tsql::roles(*permission) {
                    then.push(tsql::role_member(role, name, true)?);
                }
            }
        }
        Self::batch(&mut c, tsql::create_login(name, password.expose_secret())?, crate::CREATE_STATEMENT).await?;
        if !then.is_empty()
            && let Err(e) = Self::batch(&mut c, then.join("; "), "granting privileges").await
        {
            let _ = Self::batch(&mut c, tsql::drop_login(name)?, "cleaning up").await;
            return Err(e);
        }
        Ok(())
    }

    async fn check_login(&self, name: &str, password: &SecretString, database: Option<&str>) -> Result<(), EngineError> {
        let mut c = self.connect_as(name, password, database).await?;
        Self::batch(&mut c, "SELECT 1".into(), "checking the logon").await.map(drop)
    }

    async fn set_password(&self, name: &str, password: &SecretString) -> Result<(), EngineError> {
        let mut c = self.admin().await?;
        if !Self::exists(&mut c, name).await? {
            return Err(EngineError::AccountNotFound(name.to_string()));
        }
        Self::batch(&mut c, tsql::alter_password(name, password.expose_secret())?, crate::PASSWORD_STATEMENT).await.map(drop)
    }

    async fn copy_grants(&self, from: &str, to: &str) -> Result<(), EngineError> {
        let mut c = self.admin().await?;
        for n in [from, to] {
            if !Self::exists(&mut c, n).await? {
                return Err(EngineError::AccountNotFound(n.to_string()));
            }
        }
        let from_server = Self::batch(&mut c, tsql::server_roles_of(from)?, "reading server roles").await?;
        let to_server = Self::batch(&mut c, tsql::server_roles_of(to)?, "reading server roles").await?;
        let changes = Self::sync(&from_server, &to_server, |r, add| tsql::server_role_member(r, to, add))?;
        if !changes.is_empty() {
            Self::batch(&mut c, changes.join("; "), "copying server roles").await?;
        }
        for db in Self::databases(&mut c).await? {
            let use_db = tsql::use_db(&db)?;
            let from_user = !Self::batch(&mut c, format!("{use_db}; {}", tsql::user_exists(from)?), "reading users").await?.is_empty();
            let to_user = !Self::batch(&mut c, format!("{use_db}; {}", tsql::user_exists(to)?), "reading users").await?.is_empty();
            if !from_user && !to_user {
                continue;
            }
            let from_roles = if from_user {
                Self::batch(&mut c, format!("{use_db}; {}", tsql::database_roles_of(from)?), "reading roles").await?
            } else {
                Vec::new()
            };
            let to_roles = if to_user {
                Self::batch(&mut c, format!("{use_db}; {}", tsql::database_roles_of(to)?), "reading roles").await?
            } else {
                Vec::new()
            };
            let mut statements = vec![use_db];
            if from_user && !to_user {
                statements.push(tsql::create_user(to)?);
            }
            statements.extend(Self::sync(&from_roles, &to_roles, |r, add| tsql::role_member(r, to, add))?);
            if !from_user && to_user {
                statements.push(tsql::drop_user(to)?);
            }
            if statements.len() > 1 {
                Self::batch(&mut c, statements.join("; "), "copying database roles").await?;
            }
        }
        Ok(())
    }

    async fn drop_account(&self, name: &str) -> Result<(), EngineError> {
        let mut c = self.admin().await?;
        if !Self::exists(&mut c, name).await? {
            return Err(EngineError::AccountNotFound(name.to_string()));
        }
        for db in Self::databases(&mut c).await? {
            let use_db = tsql::use_db(&db)?;
            if !Self::batch(&mut c, format!("{use_db}; {}", tsql::user_exists(name)?), "reading users").await?.is_empty() {
                Self::batch(&mut c, format!("{use_db}; {}", tsql::drop_user(name)?), "dropping the database user").await?;
            }
        }
        Self::batch(&mut c, tsql::drop_login(name)?, "dropping the account").await.map(drop)
    }

    async fn list_accounts(&self) -> Result<Vec<String>, EngineError> {
        let mut c = self.admin().await?;
        Self::batch(&mut c, tsql::LIST_LOGINS.to_string(), "listing accounts").await
    }

    async fn account_exists(&self, name: &str) -> Result<bool, EngineError> {
        let mut c = self.admin().await?;
        Self::exists(&mut c, name).await
    }
}

#[cfg(test)]
mod tests {
    use super::tsql::*;
    use super::*;

    #[test]
    fn logins_and_passwords_are_quoted() {
        assert_eq!(create_login("o'b]r", "p'w").unwrap(), "CREATE LOGIN [o'b]]r] WITH PASSWORD = N'p''w'");
        assert_eq!(alter_password("u", "n'ew").unwrap(), "ALTER LOGIN [u] WITH PASSWORD = N'n''ew'");
        assert_eq!(drop_login("a]; DROP LOGIN sa; --").unwrap(), "DROP LOGIN [a]]; DROP LOGIN sa; --]");
        assert!(create_login("nul\0", "x").is_err());
    }

    #[test]
    fn permissions_map_to_fixed_database_roles() {
        assert_eq!(roles(Permission::ReadOnly), ["db_datareader"]);
        assert_eq!(roles(Permission::DmlOnly), ["db_datareader", "db_datawriter"]);
        assert_eq!(roles(Permission::DdlOnly), ["db_ddladmin"]);
        assert!(roles(Permission::ReadWrite).contains(&"db_ddladmin"));
        assert_eq!(role_member("db_datareader", "u", true).unwrap(), "ALTER ROLE [db_datareader] ADD MEMBER [u]");
        assert_eq!(server_role_member("dbcreator", "u", false).unwrap(), "ALTER SERVER ROLE [dbcreator] DROP MEMBER [u]");
    }

    #[test]
    fn role_sync_adds_what_is_missing_and_drops_what_is_extra() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let out = SqlServer::sync(&s(&["a", "b"]), &s(&["b", "c"]), |r, add| role_member(r, "clone", add)).unwrap();
        assert_eq!(out, vec!["ALTER ROLE [a] ADD MEMBER [clone]", "ALTER ROLE [c] DROP MEMBER [clone]"]);
    }

    #[test]
    fn lookups_bind_names_as_unicode_literals() {
        assert_eq!(login_exists("é'x").unwrap(), "SELECT name FROM sys.sql_logins WHERE name = N'é''x'");
        assert!(database_roles_of("u").unwrap().ends_with("WHERE u.name = N'u'"));
    }
}
