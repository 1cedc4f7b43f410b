//! The engine interface: how services manage accounts on a registered database server. The
//! implementations (PostgreSQL, MySQL/MariaDB, SQL Server) live in `sesame-engines`; services
//! reach them through an [`EngineFactory`] so that tests can stand one in.

use async_trait::async_trait;
use secrecy::SecretString;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    PostgreSql,
    MySql,
    MariaDb,
    SqlServer,
}

impl EngineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::PostgreSql => "PostgreSQL",
            EngineKind::MySql => "MySQL",
            EngineKind::MariaDb => "MariaDB",
            EngineKind::SqlServer => "SQLServer",
        }
    }

    pub fn parse(s: &str) -> Option<EngineKind> {
        match s.to_ascii_lowercase().as_str() {
            "postgresql" | "postgres" => Some(EngineKind::PostgreSql),
            "mysql" => Some(EngineKind::MySql),
            "mariadb" => Some(EngineKind::MariaDb),
            "sqlserver" | "mssql" => Some(EngineKind::SqlServer),
            _ => None,
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            EngineKind::PostgreSql => 5432,
            EngineKind::MySql | EngineKind::MariaDb => 3306,
            EngineKind::SqlServer => 1433,
        }
    }

    /// Longest account name the engine stores.
    pub fn max_account_name(self) -> usize {
        match self {
            EngineKind::PostgreSql => 63,
            EngineKind::MySql => 32,
            EngineKind::MariaDb => 80,
            EngineKind::SqlServer => 128,
        }
    }
}

/// Permissions of a standard account on one database, as ApsaraDB RDS names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    ReadWrite,
    ReadOnly,
    DdlOnly,
    DmlOnly,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ReadWrite => "ReadWrite",
            Permission::ReadOnly => "ReadOnly",
            Permission::DdlOnly => "DDLOnly",
            Permission::DmlOnly => "DMLOnly",
        }
    }

    pub fn parse(s: &str) -> Option<Permission> {
        match s {
            "ReadWrite" => Some(Permission::ReadWrite),
            "ReadOnly" => Some(Permission::ReadOnly),
            "DDLOnly" => Some(Permission::DdlOnly),
            "DMLOnly" => Some(Permission::DmlOnly),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountSpec {
    Standard {
        database: String,
        permission: Permission,
    },
    Privileged,
    /// Can log on and nothing else: the clone of a dual-account pair before its grants are
    /// copied.
    LoginOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    Disable,
    #[default]
    Prefer,
    Require,
    VerifyFull,
}

impl TlsMode {
    pub fn parse(s: &str) -> Option<TlsMode> {
        match s.to_ascii_lowercase().as_str() {
            "disable" => Some(TlsMode::Disable),
            "prefer" => Some(TlsMode::Prefer),
            "require" => Some(TlsMode::Require),
            "verify-full" => Some(TlsMode::VerifyFull),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Disable => "disable",
            TlsMode::Prefer => "prefer",
            TlsMode::Require => "require",
            TlsMode::VerifyFull => "verify-full",
        }
    }
}

/// Where a database server is and how its administrator logs on.
#[derive(Clone)]
pub struct DbTarget {
    pub kind: EngineKind,
    pub host: String,
    pub port: u16,
    pub admin_user: String,
    pub admin_password: SecretString,
    /// The database the administrator connects to (PostgreSQL: `postgres` when empty).
    pub admin_database: Option<String>,
    pub tls: TlsMode,
    /// Host part of MySQL/MariaDB accounts (`%` when empty).
    pub account_host: Option<String>,
}

// The admin password must never be printed; sqlx's own option types derive Debug over it, so
// they are never formatted either.
impl fmt::Debug for DbTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbTarget")
            .field("kind", &self.kind)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("admin_user", &self.admin_user)
            .field("admin_database", &self.admin_database)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EngineError {
    #[error("cannot reach the database server: {0}")]
    Unreachable(String),
    #[error("the database server refused the logon of {user}")]
    LogonFailed { user: String },
    #[error("{0}")]
    InvalidInput(String),
    #[error("the account {0} already exists")]
    AccountExists(String),
    #[error("the account {0} does not exist")]
    AccountNotFound(String),
    #[error("the database {0} does not exist")]
    DatabaseNotFound(String),
    /// Another refusal; the server's code only (its message may quote the statement).
    #[error("the database server refused the statement ({code}) while {during}")]
    Refused { code: String, during: &'static str },
    #[error("{0} is not supported by this engine")]
    Unsupported(&'static str),
    /// The server's password policy refused a new password; another one may pass.
    #[error("the database server's password policy refused the new password ({code})")]
    PasswordRejected { code: String },
}

impl EngineError {
    /// The server refused a password for what it is; a freshly generated one may pass.
    pub fn is_password_policy(&self) -> bool {
        matches!(self, EngineError::PasswordRejected { .. })
    }
}

/// Account management on one database server. Every method logs on as the administrator
/// (except `check_login`), does its work and disconnects.
#[async_trait]
pub trait Engine: Send + Sync {
    fn kind(&self) -> EngineKind;
    /// Logs on as the administrator ahead of the next call that needs to, which then works over
    /// this session instead of logging on itself: a rotation opens it while it writes down its
    /// pending version. The logon changes nothing on the server. Engines that keep no such
    /// session (SQL Server's) do nothing.
    async fn prepare_admin(&self) -> Result<(), EngineError> {
        Ok(())
    }
    /// Logs on as the administrator.
    async fn ping(&self) -> Result<(), EngineError>;
    async fn create_account(&self, name: &str, password: &SecretString, spec: &AccountSpec) -> Result<(), EngineError>;
    /// Logs on as the account: `Ok(())`, `LogonFailed` for a wrong password or unknown account,
    /// another error when the server cannot be asked.
    async fn check_login(&self, name: &str, password: &SecretString, database: Option<&str>) -> Result<(), EngineError>;
    async fn set_password(&self, name: &str, password: &SecretString) -> Result<(), EngineError>;
    /// Gives `to` exactly the privileges of `from`; calling it again re-syncs grants that `from`
    /// gained since.
    async fn copy_grants(&self, from: &str, to: &str) -> Result<(), EngineError>;
    /// A rotation's database step: sets the password and, with `grants_from`, re-syncs the
    /// account's grants from that account. Engines that can do both over one administrator
    /// logon do.
    async fn set_password_and_grants(&self, name: &str, password: &SecretString, grants_from: Option<&str>) -> Result<(), EngineError> {
        self.set_password(name, password).await?;
        match grants_from {
            Some(from) => self.copy_grants(from, name).await,
            None => Ok(()),
        }
    }
    async fn drop_account(&self, name: &str) -> Result<(), EngineError>;
    async fn list_accounts(&self) -> Result<Vec<String>, EngineError>;
    async fn account_exists(&self, name: &str) -> Result<bool, EngineError>;
}

/// Punctuation every engine, URL and shell takes without quoting trouble.
pub const PASSWORD_PUNCTUATION: &str = "-_.~";
pub const GENERATED_PASSWORD_LEN: usize = 24;

/// A password for a managed account: 24 characters with upper- and lower-case letters, digits
/// and `- _ . ~`, at least one of each (which also meets SQL Server's complexity rule).
pub fn generate_password() -> Result<SecretString, EngineError> {
    use sesame_crypto::random;
    random::password(GENERATED_PASSWORD_LEN, &[random::LOWERCASE, random::UPPERCASE, random::DIGITS, PASSWORD_PUNCTUATION], "", true)
        .map_err(|_| EngineError::Unsupported("password generation without an OS random source"))?
        .map(SecretString::from)
        .ok_or(EngineError::Unsupported("password generation"))
}

/// Checks an account name against the engine's limits before any SQL is built.
pub fn check_account_name(kind: EngineKind, name: &str) -> Result<(), EngineError> {
    if name.is_empty() || name.chars().count() > kind.max_account_name() {
        return Err(EngineError::InvalidInput(format!("{} account names are 1 to {} characters", kind.as_str(), kind.max_account_name())));
    }
    if name.chars().any(char::is_control) {
        return Err(EngineError::InvalidInput("account names must not contain control characters".into()));
    }
    Ok(())
}

/// Builds the engine for a registered database server.
pub trait EngineFactory: Send + Sync + 'static {
    fn engine(&self, target: DbTarget) -> Result<Box<dyn Engine>, EngineError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn generated_passwords_have_every_class_and_only_safe_punctuation() {
        for _ in 0..100 {
            let p = generate_password().unwrap();
            let p = p.expose_secret();
            assert_eq!(p.len(), GENERATED_PASSWORD_LEN);
            assert!(
                p.bytes().any(|b| b.is_ascii_lowercase())
                    && p.bytes().any(|b| b.is_ascii_uppercase())
                    && p.bytes().any(|b| b.is_ascii_digit())
            );
            assert!(p.bytes().all(|b| b.is_ascii_alphanumeric() || PASSWORD_PUNCTUATION.as_bytes().contains(&b)), "{p}");
            assert!(p.bytes().any(|b| PASSWORD_PUNCTUATION.as_bytes().contains(&b)));
        }
    }

    #[test]
    fn account_names_respect_each_engine_limit() {
        assert!(check_account_name(EngineKind::MySql, &"a".repeat(32)).is_ok());
        assert!(check_account_name(EngineKind::MySql, &"a".repeat(33)).is_err());
        assert!(check_account_name(EngineKind::PostgreSql, &"é".repeat(63)).is_ok());
        assert!(check_account_name(EngineKind::PostgreSql, "").is_err());
        assert!(check_account_name(EngineKind::MariaDb, "tab\there").is_err());
    }

    #[test]
    fn debug_of_a_target_hides_the_admin_password() {
        let t = DbTarget {
            kind: EngineKind::PostgreSql,
            host: "h".into(),
            port: 1,
            admin_user: "root".into(),
            admin_password: SecretString::from("canary-admin-pw".to_string()),
            admin_database: None,
            tls: TlsMode::Disable,
            account_host: None,
        };
        assert!(!format!("{t:?}").contains("canary"));
    }
}
