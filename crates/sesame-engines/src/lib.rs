//! The database engines Sesame manages accounts on: PostgreSQL and MySQL/MariaDB through sqlx,
//! SQL Server through tiberius, implementing `sesame_core::engine::Engine`.
//!
//! Account names and passwords are quoted by each dialect's rules ([`quote`]); passwords live in
//! `SecretString`; driver statement logging is off, and errors carry a server code, never the
//! server's message (a MySQL syntax error quotes the statement, password included).

pub mod mssql;
pub mod mysql;
pub mod postgres;
pub mod quote;
pub mod session;

pub use sesame_core::engine::*;
use std::time::Duration;

/// Boxed futures for the helpers that touch a connection: naming their type as `Send` spares
/// rustc a higher-ranked `Send` proof it cannot make for sqlx's futures inside `async_trait`
/// methods.
pub(crate) type Fut<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, EngineError>> + Send + 'a>>;

/// The engine for a target.
pub fn connect(target: DbTarget) -> Result<Box<dyn Engine>, EngineError> {
    match target.kind {
        EngineKind::PostgreSql => Ok(Box::new(postgres::Postgres::new(target))),
        EngineKind::MySql | EngineKind::MariaDb => Ok(Box::new(mysql::MySql::new(target))),
        EngineKind::SqlServer => Ok(Box::new(mssql::SqlServer::new(target))),
    }
}

/// How long a logon may take before the server counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a statement that sets a password is doing, for error reports.
pub(crate) const PASSWORD_STATEMENT: &str = "setting the password";
pub(crate) const CREATE_STATEMENT: &str = "creating the account";

/// Maps a driver error to an engine error, keeping only what is safe to show.
pub(crate) fn classify(e: sqlx::Error, user: &str, during: &'static str) -> EngineError {
    match e {
        sqlx::Error::Io(io) => EngineError::Unreachable(io.kind().to_string()),
        sqlx::Error::Tls(_) => EngineError::Unreachable("TLS negotiation failed".into()),
        sqlx::Error::PoolTimedOut => EngineError::Unreachable("timed out".into()),
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.to_string()).unwrap_or_default();
            let mysql_number = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>().map(|m| m.number());
            match (code.as_str(), mysql_number) {
                // PostgreSQL: invalid_password / invalid_authorization_specification. MySQL 1045,
                // and 1698, which MariaDB answers for some logons of unknown accounts (its fake
                // exchange for them, which keeps account names from being probed).
                ("28P01" | "28000", None) | (_, Some(1045 | 1698)) => EngineError::LogonFailed { user: user.to_string() },
                ("3D000", None) | (_, Some(1049)) => EngineError::DatabaseNotFound(String::new()),
                // MySQL/MariaDB ER_NOT_VALID_PASSWORD (validate_password, simple_password_check,
                // cracklib); PostgreSQL's passwordcheck answers invalid_parameter_value, which a
                // password statement raises for nothing else.
                (_, Some(1819)) => EngineError::PasswordRejected { code: "1819".into() },
                ("22023", None) if during == PASSWORD_STATEMENT || during == CREATE_STATEMENT => EngineError::PasswordRejected { code },
                (_, Some(n)) => EngineError::Refused { code: n.to_string(), during },
                _ => EngineError::Refused { code, during },
            }
        }
        other => EngineError::Refused { code: error_kind(&other).into(), during },
    }
}

fn error_kind(e: &sqlx::Error) -> &'static str {
    match e {
        sqlx::Error::Configuration(_) => "configuration",
        sqlx::Error::Protocol(_) => "protocol",
        sqlx::Error::RowNotFound => "no row",
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => "decode",
        _ => "driver",
    }
}

/// The factory the server gives to the services.
pub struct Engines;

impl EngineFactory for Engines {
    fn engine(&self, target: DbTarget) -> Result<Box<dyn Engine>, EngineError> {
        connect(target)
    }
}
