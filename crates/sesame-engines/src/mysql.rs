//! MySQL and MariaDB accounts (`'user'@'host'`, host `%` unless configured).
//!
//! The dialects differ in places handled here: grants are rendered with backticks by MySQL 8 and
//! MariaDB and with quotes by MySQL 5.7; `ALTER USER … IDENTIFIED BY` exists in MySQL ≥ 5.7.6 and
//! MariaDB ≥ 10.2, older servers need `SET PASSWORD … = PASSWORD(…)`; `SHOW GRANTS` may carry
//! the password hash (`IDENTIFIED BY PASSWORD '*…'`), which a copy must not replay.

use crate::quote::{my_account, my_ident, my_literal};
use crate::{
    AccountSpec, CONNECT_TIMEOUT, DbTarget, Engine, EngineError, EngineKind, Fut, Permission, TlsMode, check_account_name, classify,
};
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlSslMode};
use sqlx::{ConnectOptions, Connection, Executor, Row};

pub struct MySql {
    target: DbTarget,
    /// The administrator's session `prepare_admin` opened, taken by the next call that needs one.
    prepared: std::sync::Mutex<Option<Admin>>,
}

/// A logged-on administrator session and how it reads backslashes in strings.
struct Admin {
    conn: MySqlConnection,
    /// Whether a backslash escapes in a string literal (not under `NO_BACKSLASH_ESCAPES`);
    /// `None` until a string that holds one needs to know.
    backslash_escapes: Option<bool>,
}

impl Admin {
    /// Whether backslashes escape in the string literals `texts` are written as. Without a
    /// backslash a string is written alike either way, so the session's mode costs a round trip
    /// only for a string that holds one, and once.
    async fn escapes(&mut self, texts: &[&str]) -> Result<bool, EngineError> {
        if !texts.iter().any(|t| t.contains('\\')) {
            return Ok(true);
        }
        if let Some(known) = self.backslash_escapes {
            return Ok(known);
        }
        let mode = MySql::scalar_string(&mut self.conn, "SELECT @@SESSION.sql_mode", "reading sql_mode").await?;
        let escapes = !mode.to_ascii_uppercase().contains("NO_BACKSLASH_ESCAPES");
        self.backslash_escapes = Some(escapes);
        Ok(escapes)
    }

    /// `s` as a string literal of this session.
    async fn literal(&mut self, s: &str) -> Result<String, EngineError> {
        let escapes = self.escapes(&[s]).await?;
        my_literal(s, escapes)
    }
}

impl MySql {
    pub fn new(target: DbTarget) -> Self {
        MySql { target, prepared: std::sync::Mutex::new(None) }
    }

    fn host(&self) -> &str {
        self.target.account_host.as_deref().filter(|h| !h.is_empty()).unwrap_or("%")
    }

    pub(crate) async fn connect_as(
        &self,
        user: &str,
        password: &SecretString,
        database: Option<&str>,
    ) -> Result<MySqlConnection, EngineError> {
        let ssl = match self.target.tls {
            TlsMode::Disable => MySqlSslMode::Disabled,
            TlsMode::Prefer => MySqlSslMode::Preferred,
            TlsMode::Require => MySqlSslMode::Required,
            TlsMode::VerifyFull => MySqlSslMode::VerifyIdentity,
        };
        let mut opts = MySqlConnectOptions::new()
            .host(&self.target.host)
            .port(self.target.port)
            .username(user)
            .ssl_mode(ssl)
            .disable_statement_logging();
        // An empty password must go as an empty auth response, not as the scramble of "".
        if !password.expose_secret().is_empty() {
            opts = opts.password(password.expose_secret());
        }
        if let Some(db) = database {
            opts = opts.database(db);
        }
        match tokio::time::timeout(CONNECT_TIMEOUT, opts.connect()).await {
            Err(_) => Err(EngineError::Unreachable("timed out".into())),
            Ok(Err(e)) => Err(match classify(e, user, "logging on") {
                EngineError::DatabaseNotFound(_) => EngineError::DatabaseNotFound(database.unwrap_or_default().to_string()),
                other => other,
            }),
            Ok(Ok(c)) => Ok(c),
        }
    }

    /// The statement itself tells whether the account exists (1396 from ALTER USER, 1133 from
    /// SET PASSWORD), so no lookup goes before it.
    async fn set_password_on(&self, a: &mut Admin, name: &str, password: &SecretString) -> Result<(), EngineError> {
        let account = self.account(a, name).await?;
        let pw = a.literal(password.expose_secret()).await?;
        let result = match Self::run(a, &format!("ALTER USER {account} IDENTIFIED BY {pw}"), crate::PASSWORD_STATEMENT).await {
            // 1064: a server older than ALTER USER … IDENTIFIED BY.
            Err(EngineError::Refused { code, .. }) if code == "1064" => {
                Self::run(a, &format!("SET PASSWORD FOR {account} = PASSWORD({pw})"), crate::PASSWORD_STATEMENT).await
            }
            other => other,
        };
        match result {
            Err(EngineError::Refused { code, .. }) if code == "1396" || code == "1133" => {
                Err(EngineError::AccountNotFound(name.to_string()))
            }
            other => other,
        }
    }

    /// The grants of `from` and of `to` (the account `to_acc`), each retargeted to `to_acc`
    /// (without password hashes) and sorted, read in one round trip; 1141 (no such grant) means
    /// that account does not exist.
    async fn grants_of_both(&self, a: &mut Admin, from: &str, to: &str, to_acc: &str) -> Result<(Vec<String>, Vec<String>), EngineError> {
        let from_acc = self.account(a, from).await?;
        let (from_lines, to_lines) = Self::grant_lines(&mut a.conn, &from_acc, to_acc).await.map_err(|(second, e)| match e {
            EngineError::Refused { code, .. } if code == "1141" => EngineError::AccountNotFound(if second { to } else { from }.to_string()),
            other => other,
        })?;
        let retarget = |lines: Vec<String>, name: &str| {
            let mut grants = lines
                .iter()
                .map(|line| {
                    Self::retarget_grant(line, name, self.host(), to_acc)
                        .ok_or(EngineError::Refused { code: "unparsed grant".into(), during: "reading grants" })
                })
                .collect::<Result<Vec<_>, _>>()?;
            grants.sort_unstable();
            Ok::<_, EngineError>(grants)
        };
        Ok((retarget(from_lines, from)?, retarget(to_lines, to)?))
    }

    async fn copy_grants_on(&self, a: &mut Admin, from: &str, to: &str) -> Result<(), EngineError> {
        let to_acc = self.account(a, to).await?;
        let (grants, current) = self.grants_of_both(a, from, to, &to_acc).await?;
        // Already the same: nothing to write (the usual case at a rotation).
        if current == grants {
            return Ok(());
        }
        // Re-sync: start from nothing, then replay every grant of `from`.
        Self::run(a, &format!("REVOKE ALL PRIVILEGES, GRANT OPTION FROM {to_acc}"), "revoking grants").await?;
        for g in grants {
            Self::run(a, &g, "copying grants").await?;
        }
        Ok(())
    }

    /// The session `prepare_admin` opened, or a new logon.
    async fn admin(&self) -> Result<Admin, EngineError> {
        if let Some(prepared) = self.prepared.lock().ok().and_then(|mut p| p.take()) {
            return Ok(prepared);
        }
        self.log_on_admin().await
    }

    async fn log_on_admin(&self) -> Result<Admin, EngineError> {
        let db = self.target.admin_database.as_deref().filter(|d| !d.is_empty());
        let conn = self.connect_as(&self.target.admin_user, &self.target.admin_password, db).await?;
        Ok(Admin { conn, backslash_escapes: None })
    }

    fn scalar_string<'a>(conn: &'a mut MySqlConnection, sql: &'static str, during: &'static str) -> Fut<'a, String> {
        Box::pin(async move {
            sqlx::query(sql)
                .fetch_one(&mut *conn)
                .await
                .map_err(|e| classify(e, "", during))?
                .try_get(0)
                .map_err(|e| classify(e, "", during))
        })
    }

    /// `'name'@'host'` as this session writes it.
    async fn account(&self, admin: &mut Admin, name: &str) -> Result<String, EngineError> {
        let escapes = admin.escapes(&[name, self.host()]).await?;
        my_account(name, self.host(), escapes)
    }

    async fn run(admin: &mut Admin, sql: &str, during: &'static str) -> Result<(), EngineError> {
        Self::exec(&mut admin.conn, sql, during).await
    }

    fn exec<'a>(conn: &'a mut MySqlConnection, sql: &'a str, during: &'static str) -> Fut<'a, ()> {
        // A bare `&str` has no arguments, so sqlx sends it over the text protocol (COM_QUERY),
        // which takes DDL that the prepared-statement protocol refuses.
        Box::pin(async move { conn.execute(sql).await.map(drop).map_err(|e| classify(e, "", during)) })
    }

    async fn exists(&self, admin: &mut Admin, name: &str) -> Result<bool, EngineError> {
        Self::count_users(&mut admin.conn, name, self.host()).await.map(|n| n > 0)
    }

    fn count_users<'a>(conn: &'a mut MySqlConnection, name: &'a str, host: &'a str) -> Fut<'a, i64> {
        Box::pin(async move {
            sqlx::query("SELECT COUNT(*) FROM mysql.user WHERE User = ? AND Host = ?")
                .bind(name)
                .bind(host)
                .fetch_one(&mut *conn)
                .await
                .map_err(|e| classify(e, "", "looking up the account"))?
                .try_get(0)
                .map_err(|e| classify(e, "", "looking up the account"))
        })
    }

    fn schema_exists<'a>(conn: &'a mut MySqlConnection, database: &'a str) -> Fut<'a, bool> {
        Box::pin(async move {
            let n: i64 = sqlx::query("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?")
                .bind(database)
                .fetch_one(&mut *conn)
                .await
                .map_err(|e| classify(e, "", "looking up the database"))?
                .try_get(0)
                .map_err(|e| classify(e, "", "looking up the database"))?;
            Ok(n > 0)
        })
    }

    /// The `SHOW GRANTS` lines of two accounts, sent as one script. An error says whether it
    /// came from the second statement (the server stops a script at its first error).
    async fn grant_lines(conn: &mut MySqlConnection, first: &str, second: &str) -> Result<(Vec<String>, Vec<String>), (bool, EngineError)> {
        use futures_util::TryStreamExt;
        use sqlx::Either;
        let script = format!("SHOW GRANTS FOR {first}; SHOW GRANTS FOR {second}");
        let mut lines = (Vec::new(), Vec::new());
        let mut done = 0;
        let mut stream = sqlx::raw_sql(&script).fetch_many(&mut *conn);
        loop {
            let item = stream.try_next().await.map_err(|e| (done > 0, classify(e, "", "reading grants")))?;
            match item {
                None => break,
                Some(Either::Left(_)) => done += 1,
                Some(Either::Right(row)) => {
                    let line = row
                        .try_get::<String, _>(0)
                        .or_else(|_| row.try_get::<Vec<u8>, _>(0).map(|b| String::from_utf8_lossy(&b).into_owned()))
                        .map_err(|e| (done > 0, classify(e, "", "reading grants")))?;
                    if done == 0 { lines.0.push(line) } else { lines.1.push(line) }
                }
            }
        }
        Ok(lines)
    }

    fn users<'a>(conn: &'a mut MySqlConnection, host: &'a str) -> Fut<'a, Vec<String>> {
        Box::pin(async move {
            let rows = // MariaDB returns mysql.user.User as a binary string; convert it so it decodes as text.
            sqlx::query("SELECT CONVERT(User USING utf8mb4) FROM mysql.user WHERE Host = ? ORDER BY User")
                .bind(host)
                .fetch_all(&mut *conn)
                .await
                .map_err(|e| classify(e, "", "listing accounts"))?;
            rows.iter().map(|r| r.try_get::<String, _>(0).map_err(|e| classify(e, "", "listing accounts"))).collect()
        })
    }

    /// The `GRANT` for a permission on one database (ApsaraDB RDS's templates).
    pub fn permission_grant(permission: Permission, database: &str, account: &str) -> Result<String, EngineError> {
        let privs = match permission {
            Permission::ReadWrite => {
                "SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, REFERENCES, INDEX, ALTER, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, EVENT, TRIGGER"
            }
            Permission::ReadOnly => "SELECT, LOCK TABLES, SHOW VIEW, EXECUTE",
            Permission::DdlOnly => {
                "CREATE, DROP, INDEX, ALTER, CREATE TEMPORARY TABLES, LOCK TABLES, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, EVENT, TRIGGER, REFERENCES"
            }
            Permission::DmlOnly => {
                "SELECT, INSERT, UPDATE, DELETE, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, SHOW VIEW, EVENT, TRIGGER"
            }
        };
        Ok(format!("GRANT {privs} ON {}.* TO {account}", my_ident(database)?))
    }

    /// Rewrites one `SHOW GRANTS` line of `from` into the same grant for `to`: the grantee after
    /// the last ` TO ` is replaced and any `IDENTIFIED …` clause (a password hash or plugin) is
    /// dropped, keeping `WITH GRANT OPTION`.
    pub fn retarget_grant(line: &str, from: &str, host: &str, to_account: &str) -> Option<String> {
        let renderings = [
            format!("`{}`@`{}`", from.replace('`', "``"), host.replace('`', "``")),
            format!("'{}'@'{}'", from.replace('\'', "''"), host.replace('\'', "''")),
        ];
        let (pos, len) = renderings.iter().find_map(|r| line.rfind(&format!(" TO {r}")).map(|p| (p, r.len() + 4)))?;
        let head = &line[..pos];
        let tail = &line[pos + len..];
        let grant_option = tail.contains("WITH GRANT OPTION");
        let mut out = format!("{head} TO {to_account}");
        if grant_option {
            out.push_str(" WITH GRANT OPTION");
        }
        Some(out)
    }
}

#[async_trait]
impl Engine for MySql {
    fn kind(&self) -> EngineKind {
        self.target.kind
    }

    async fn prepare_admin(&self) -> Result<(), EngineError> {
        let admin = self.log_on_admin().await?;
        if let Ok(mut prepared) = self.prepared.lock() {
            *prepared = Some(admin);
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), EngineError> {
        let mut a = self.admin().await?;
        Self::run(&mut a, "SELECT 1", "checking the connection").await
    }

    async fn create_account(&self, name: &str, password: &SecretString, spec: &AccountSpec) -> Result<(), EngineError> {
        check_account_name(self.target.kind, name)?;
        let mut a = self.admin().await?;
        if self.exists(&mut a, name).await? {
            return Err(EngineError::AccountExists(name.to_string()));
        }
        let account = self.account(&mut a, name).await?;
        let grant = match spec {
            AccountSpec::LoginOnly => format!("GRANT USAGE ON *.* TO {account}"),
            AccountSpec::Privileged => format!("GRANT ALL PRIVILEGES ON *.* TO {account} WITH GRANT OPTION"),
            AccountSpec::Standard { database, permission } => {
                if !Self::schema_exists(&mut a.conn, database).await? {
                    return Err(EngineError::DatabaseNotFound(database.clone()));
                }
                Self::permission_grant(*permission, database, &account)?
            }
        };
        let pw = a.literal(password.expose_secret()).await?;
        Self::run(&mut a, &format!("CREATE USER {account} IDENTIFIED BY {pw}"), crate::CREATE_STATEMENT).await?;
        if let Err(e) = Self::run(&mut a, &grant, "granting privileges").await {
            let _ = Self::run(&mut a, &format!("DROP USER {account}"), "cleaning up").await;
            return Err(e);
        }
        Ok(())
    }

    async fn check_login(&self, name: &str, password: &SecretString, database: Option<&str>) -> Result<(), EngineError> {
        let mut c = self.connect_as(name, password, database).await?;
        Self::exec(&mut c, "SELECT 1", "checking the logon").await?;
        let _ = c.close().await;
        Ok(())
    }

    async fn set_password(&self, name: &str, password: &SecretString) -> Result<(), EngineError> {
        let mut a = self.admin().await?;
        self.set_password_on(&mut a, name, password).await
    }

    async fn copy_grants(&self, from: &str, to: &str) -> Result<(), EngineError> {
        let mut a = self.admin().await?;
        self.copy_grants_on(&mut a, from, to).await
    }

    async fn set_password_and_grants(&self, name: &str, password: &SecretString, grants_from: Option<&str>) -> Result<(), EngineError> {
        let mut a = self.admin().await?;
        self.set_password_on(&mut a, name, password).await?;
        match grants_from {
            Some(from) => self.copy_grants_on(&mut a, from, name).await,
            None => Ok(()),
        }
    }

    async fn drop_account(&self, name: &str) -> Result<(), EngineError> {
        let mut a = self.admin().await?;
        if !self.exists(&mut a, name).await? {
            return Err(EngineError::AccountNotFound(name.to_string()));
        }
        let account = self.account(&mut a, name).await?;
        Self::run(&mut a, &format!("DROP USER {account}"), "dropping the account").await
    }

    async fn list_accounts(&self) -> Result<Vec<String>, EngineError> {
        let mut a = self.admin().await?;
        Self::users(&mut a.conn, self.host()).await
    }

    async fn account_exists(&self, name: &str) -> Result<bool, EngineError> {
        let mut a = self.admin().await?;
        self.exists(&mut a, name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_are_retargeted_without_password_hashes() {
        let to = "'b'@'%'";
        assert_eq!(
            MySql::retarget_grant("GRANT USAGE ON *.* TO `a`@`%` IDENTIFIED BY PASSWORD '*ABCDEF'", "a", "%", to).unwrap(),
            "GRANT USAGE ON *.* TO 'b'@'%'"
        );
        assert_eq!(
            MySql::retarget_grant("GRANT SELECT, INSERT ON `shop`.* TO `a`@`%` WITH GRANT OPTION", "a", "%", to).unwrap(),
            "GRANT SELECT, INSERT ON `shop`.* TO 'b'@'%' WITH GRANT OPTION"
        );
        assert_eq!(MySql::retarget_grant("GRANT SELECT ON `db`.* TO 'a'@'%'", "a", "%", to).unwrap(), "GRANT SELECT ON `db`.* TO 'b'@'%'");
        // A database named like the grantee does not confuse the rewrite: the last " TO " wins.
        assert_eq!(
            MySql::retarget_grant("GRANT SELECT ON ` TO a`.* TO `a`@`%`", "a", "%", to).unwrap(),
            "GRANT SELECT ON ` TO a`.* TO 'b'@'%'"
        );
        assert_eq!(MySql::retarget_grant("GRANT SELECT ON x.* TO `other`@`%`", "a", "%", to), None);
        assert_eq!(
            MySql::retarget_grant("GRANT SELECT ON x.* TO `we``ird`@`%`", "we`ird", "%", to).unwrap(),
            "GRANT SELECT ON x.* TO 'b'@'%'"
        );
    }

    #[test]
    fn permission_templates_name_the_database_quoted() {
        let g = MySql::permission_grant(Permission::ReadOnly, "sh`op", "'u'@'%'").unwrap();
        assert_eq!(g, "GRANT SELECT, LOCK TABLES, SHOW VIEW, EXECUTE ON `sh``op`.* TO 'u'@'%'");
        assert!(!MySql::permission_grant(Permission::DdlOnly, "d", "'u'@'%'").unwrap().contains("SELECT,"));
        assert!(!MySql::permission_grant(Permission::DmlOnly, "d", "'u'@'%'").unwrap().contains("CREATE,"));
    }
}
