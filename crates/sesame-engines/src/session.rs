//! A SQL session as an account (not the administrator): DMS's console. The script goes over the
//! text protocol (PostgreSQL's simple query, MySQL's COM_QUERY), so it may hold several
//! statements and every value arrives as text.

use crate::{DbTarget, EngineError, EngineKind};
use futures_util::TryStreamExt;
use secrecy::SecretString;
use sqlx::{Column, Connection, Database, Either, Executor, Row};

/// One statement's outcome, in order; the first failed statement ends the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done(ResultSet),
    /// The server's code and message for a statement the user wrote (never a statement of ours).
    Failed {
        code: String,
        message: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultSet {
    pub columns: Vec<String>,
    /// At most `max_rows` rows; `None` is SQL NULL.
    pub rows: Vec<Vec<Option<String>>>,
    /// Rows returned (all of them, also past `max_rows`) or rows affected.
    pub row_count: u64,
    pub truncated: bool,
}

/// Logs on as `user` and runs `script`. Errors before the script runs (unreachable, logon
/// refused, unknown database) are `Err`; a statement's error is an [`Outcome::Failed`].
pub async fn run_script(
    target: &DbTarget,
    user: &str,
    password: &SecretString,
    database: Option<&str>,
    script: &str,
    max_rows: usize,
) -> Result<Vec<Outcome>, EngineError> {
    match target.kind {
        EngineKind::PostgreSql => {
            let pg = crate::postgres::Postgres::new(target.clone());
            let db = database.filter(|d| !d.is_empty()).unwrap_or("postgres");
            let mut conn = pg.connect_as(user, password, db).await?;
            let out = collect(&mut conn, script, max_rows).await;
            let _ = conn.close().await;
            Ok(out)
        }
        EngineKind::MySql | EngineKind::MariaDb => {
            let my = crate::mysql::MySql::new(target.clone());
            let mut conn = my.connect_as(user, password, database.filter(|d| !d.is_empty())).await?;
            let out = collect(&mut conn, script, max_rows).await;
            let _ = conn.close().await;
            Ok(out)
        }
        EngineKind::SqlServer => Err(EngineError::Unsupported("the SQL console on SQL Server")),
    }
}

async fn collect<'c, DB, E>(conn: E, script: &'c str, max_rows: usize) -> Vec<Outcome>
where
    DB: Database,
    E: Executor<'c, Database = DB>,
    for<'r> Option<String>: sqlx::Decode<'r, DB>,
    for<'r> Option<Vec<u8>>: sqlx::Decode<'r, DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
    DB::QueryResult: RowsAffected,
{
    let mut out = Vec::new();
    let mut current = ResultSet::default();
    let mut seen = 0u64;
    let mut stream = sqlx::raw_sql(script).fetch_many(conn);
    loop {
        match stream.try_next().await {
            Ok(None) => break,
            Ok(Some(Either::Right(row))) => {
                if seen == 0 {
                    current.columns = row.columns().iter().map(|c| c.name().to_string()).collect();
                }
                seen += 1;
                if current.rows.len() < max_rows {
                    current.rows.push((0..row.len()).map(|i| text_of(&row, i)).collect());
                } else {
                    current.truncated = true;
                }
            }
            Ok(Some(Either::Left(done))) => {
                current.row_count = if seen > 0 { seen } else { done.affected() };
                out.push(Outcome::Done(std::mem::take(&mut current)));
                seen = 0;
            }
            Err(e) => {
                out.push(failure(e));
                return out;
            }
        }
    }
    if seen > 0 {
        current.row_count = seen;
        out.push(Outcome::Done(current));
    }
    out
}

/// A value as text; bytes that are not UTF-8 as `0x…` hex.
fn text_of<R: Row>(row: &R, i: usize) -> Option<String>
where
    for<'r> Option<String>: sqlx::Decode<'r, R::Database>,
    for<'r> Option<Vec<u8>>: sqlx::Decode<'r, R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    match row.try_get_unchecked::<Option<String>, _>(i) {
        Ok(v) => v,
        Err(_) => match row.try_get_unchecked::<Option<Vec<u8>>, _>(i) {
            Ok(Some(bytes)) => Some(format!("0x{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())),
            Ok(None) => None,
            Err(_) => Some("(undecodable)".into()),
        },
    }
}

fn failure(e: sqlx::Error) -> Outcome {
    match e {
        sqlx::Error::Database(db) => {
            let number = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>().map(|m| m.number().to_string());
            Outcome::Failed {
                code: number.or_else(|| db.code().map(|c| c.to_string())).unwrap_or_default(),
                message: db.message().to_string(),
            }
        }
        sqlx::Error::Io(io) => Outcome::Failed { code: "connection".into(), message: format!("the connection was lost ({})", io.kind()) },
        _ => Outcome::Failed { code: "protocol".into(), message: "the server's answer could not be read".into() },
    }
}

/// Rows a statement without a result set changed.
pub trait RowsAffected {
    fn affected(&self) -> u64;
}

impl RowsAffected for sqlx::postgres::PgQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

impl RowsAffected for sqlx::mysql::MySqlQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}
