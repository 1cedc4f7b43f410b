//! DMS's own SQLite file (`dms.db`): registered instances and the statement audit. It holds no
//! plaintext credential: a KMS-secret instance stores only the secret's name, a password
//! instance the password sealed by KMS (a ciphertext blob only KMS can open).

use rusqlite::{Connection, OptionalExtension, params};
use sesame_api::Error;
use sesame_api::dms::{AuditEntry, AuditQuery};
use sesame_core::cache::{SHARED_TTL, TtlCache};
use sesame_store::worker::Worker;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS instances (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alias TEXT NOT NULL UNIQUE,
    engine TEXT NOT NULL,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    database TEXT NOT NULL,
    env_type TEXT NOT NULL,
    query_timeout INTEGER NOT NULL,
    tls TEXT NOT NULL,
    secret_name TEXT,
    db_instance_id TEXT,
    db_user TEXT,
    sealed_password TEXT,
    created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sql_audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time INTEGER NOT NULL,
    user_name TEXT NOT NULL,
    instance_id INTEGER NOT NULL,
    instance_name TEXT NOT NULL,
    schema_name TEXT NOT NULL,
    sql TEXT NOT NULL,
    sql_type TEXT NOT NULL,
    exec_state TEXT NOT NULL,
    affect_rows INTEGER NOT NULL,
    elapsed_ms INTEGER NOT NULL,
    remark TEXT NOT NULL,
    secret_name TEXT NOT NULL,
    secret_version_id TEXT NOT NULL,
    account_name TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sql_audit_time ON sql_audit (time);
";

/// A registered instance as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: i64,
    pub alias: String,
    pub engine: String,
    pub host: String,
    pub port: u16,
    pub database: String,
    pub env_type: String,
    pub query_timeout: u64,
    pub tls: String,
    pub login: Login,
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    KmsSecret {
        secret_name: Option<String>,
        db_instance_id: Option<String>,
    },
    /// `sealed` is a KMS ciphertext blob.
    Password {
        user: String,
        sealed: String,
    },
}

/// Scripts recorded between two checkpoints of `dms.db`'s write-ahead log (a few WAL pages each).
const CHECKPOINT_EVERY: u64 = 256;

#[derive(Clone)]
pub struct DmsStore {
    conn: Arc<Worker>,
    /// Scripts recorded since the store opened, for [`CHECKPOINT_EVERY`].
    recorded: Arc<AtomicU64>,
    /// Instances by `alias:<alias>` and `id:<id>`: every ExecuteScript reads its instance, and a
    /// round trip to the store's thread cost ~230 µs of an idle logon. Registering or deleting
    /// clears it; another process sharing `dms.db` is seen within `SHARED_TTL`.
    instances: Arc<TtlCache<String, Instance>>,
}

fn backend(e: impl std::fmt::Display) -> Error {
    Error::internal(format!("DMS store: {e}"))
}

fn instance_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Instance> {
    let login = match (r.get::<_, Option<String>>(11)?, r.get::<_, Option<String>>(12)?) {
        (Some(user), Some(sealed)) => Login::Password { user, sealed },
        _ => Login::KmsSecret { secret_name: r.get(9)?, db_instance_id: r.get(10)? },
    };
    Ok(Instance {
        id: r.get(0)?,
        alias: r.get(1)?,
        engine: r.get(2)?,
        host: r.get(3)?,
        port: r.get(4)?,
        database: r.get(5)?,
        env_type: r.get(6)?,
        query_timeout: r.get(7)?,
        tls: r.get(8)?,
        login,
        created: r.get(13)?,
    })
}

const INSTANCE_COLUMNS: &str =
    "id, alias, engine, host, port, database, env_type, query_timeout, tls, secret_name, db_instance_id, db_user, sealed_password, created";

impl DmsStore {
    pub fn open(path: &Path) -> Result<DmsStore, Error> {
        Self::init(Connection::open(path).map_err(backend)?)
    }

    pub fn open_in_memory() -> Result<DmsStore, Error> {
        Self::init(Connection::open_in_memory().map_err(backend)?)
    }

    fn init(conn: Connection) -> Result<DmsStore, Error> {
        // No automatic checkpoints: a statement's record is written on a runtime thread
        // (`audit`), and a checkpoint (a copy of the log into the file, and an fsync) at its commit
        // would hold that thread for milliseconds. The store's own thread checkpoints instead.
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000; PRAGMA wal_autocheckpoint=0;")
            .map_err(backend)?;
        conn.execute_batch(SCHEMA).map_err(backend)?;
        Ok(DmsStore {
            conn: Arc::new(Worker::start("sesame-dms-store", conn).map_err(backend)?),
            recorded: Arc::new(AtomicU64::new(0)),
            instances: Arc::new(TtlCache::new(SHARED_TTL)),
        })
    }

    /// An instance through the cache; a miss reads the store with `read` (a miss is not kept).
    async fn cached(
        &self,
        key: String,
        read: impl FnOnce(&mut Connection) -> rusqlite::Result<Option<Instance>> + Send + 'static,
    ) -> Result<Option<Instance>, Error> {
        Ok(self.instances.get_or_find(&key, self.with(read)).await?.map(|i| Instance::clone(&i)))
    }

    /// Runs `f` on the connection's own thread.
    async fn with<T: Send + 'static>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static) -> Result<T, Error> {
        self.conn.run(f).await.map_err(backend)?.map_err(backend)
    }

    /// Runs a short `f` on the caller's thread when the connection is free, else as `with` does.
    async fn with_here_if_free<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, Error> {
        self.conn.run_here_if_free(f).await.map_err(backend)?.map_err(backend)
    }

    /// The new instance's id, or `None` when the alias is taken.
    pub async fn insert(&self, i: Instance) -> Result<Option<i64>, Error> {
        self.instances.clear();
        self.with(move |c| {
            let (secret, db_instance, user, sealed) = match &i.login {
                Login::KmsSecret { secret_name, db_instance_id } => (secret_name.clone(), db_instance_id.clone(), None, None),
                Login::Password { user, sealed } => (None, None, Some(user.clone()), Some(sealed.clone())),
            };
            let inserted = c.execute(
                "INSERT INTO instances (alias, engine, host, port, database, env_type, query_timeout, tls, secret_name, db_instance_id, db_user, sealed_password, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) ON CONFLICT (alias) DO NOTHING",
                params![i.alias, i.engine, i.host, i.port, i.database, i.env_type, i.query_timeout, i.tls, secret, db_instance, user, sealed, i.created],
            )?;
            Ok((inserted == 1).then(|| c.last_insert_rowid()))
        })
        .await
    }

    pub async fn get_by_alias(&self, alias: &str) -> Result<Option<Instance>, Error> {
        let owned = alias.to_string();
        self.cached(format!("alias:{alias}"), move |c| {
            c.prepare_cached(&format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE alias = ?1"))?
                .query_row([owned], instance_row)
                .optional()
        })
        .await
    }

    pub async fn get_by_id(&self, id: i64) -> Result<Option<Instance>, Error> {
        self.cached(format!("id:{id}"), move |c| {
            c.prepare_cached(&format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE id = ?1"))?.query_row([id], instance_row).optional()
        })
        .await
    }

    pub async fn delete(&self, id: i64) -> Result<bool, Error> {
        let deleted = self.with(move |c| Ok(c.execute("DELETE FROM instances WHERE id = ?1", [id])? > 0)).await;
        self.instances.clear();
        deleted
    }

    pub async fn list(&self, offset: i64, limit: i64) -> Result<(Vec<Instance>, i64), Error> {
        self.with(move |c| {
            let total = c.query_row("SELECT COUNT(*) FROM instances", [], |r| r.get(0))?;
            let mut stmt = c.prepare(&format!("SELECT {INSTANCE_COLUMNS} FROM instances ORDER BY id LIMIT ?1 OFFSET ?2"))?;
            let items = stmt.query_map([limit, offset], instance_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((items, total))
        })
        .await
    }

    /// Appends the entries of one script in one transaction, on the caller's thread when the
    /// connection is free: the statement waits for its record, and handing a one-row insert to the
    /// store's thread and back took longer than the insert (finding 42). It depends on nothing
    /// queued before it. Every [`CHECKPOINT_EVERY`]-th script queues a checkpoint on the store's
    /// thread.
    pub async fn audit(&self, entries: Vec<(i64, AuditEntry)>) -> Result<(), Error> {
        let recorded = self.with_here_if_free(move |c| {
            let tx = c.transaction()?;
            // Prepared once per connection: every statement run through DMS comes here.
            let mut insert = tx.prepare_cached(
                "INSERT INTO sql_audit (time, user_name, instance_id, instance_name, schema_name, sql, sql_type, exec_state, affect_rows, elapsed_ms, remark, secret_name, secret_version_id, account_name)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?;
            for (time, e) in &entries {
                insert.execute(params![
                    time,
                    e.user_name,
                    e.instance_id,
                    e.instance_name,
                    e.schema_name,
                    e.sql,
                    e.sql_type,
                    e.exec_state,
                    e.affect_rows,
                    e.elapsed_time,
                    e.remark,
                    e.secret_name,
                    e.secret_version_id,
                    e.account_name
                ])?;
            }
            drop(insert);
            tx.commit()
        })
        .await;
        // After the commit, so that this statement does not wait for it.
        if self.recorded.fetch_add(1, Ordering::Relaxed) % CHECKPOINT_EVERY == CHECKPOINT_EVERY - 1 {
            // A passive checkpoint waits for nobody; one that fails leaves the log to the next.
            let _ = self.conn.queue(|c| {
                let _ = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            });
        }
        recorded
    }

    /// Entries matching the query, newest first, and the total count.
    pub async fn audit_log(&self, q: AuditQuery) -> Result<(Vec<(i64, AuditEntry)>, i64), Error> {
        self.with(move |c| {
            let mut clauses = vec!["1 = 1".to_string()];
            let mut args: Vec<rusqlite::types::Value> = Vec::new();
            let mut add = |clause: &str, v: rusqlite::types::Value| {
                args.push(v);
                clauses.push(clause.replace('?', &format!("?{}", args.len())));
            };
            if let Some(t) = q.from {
                add("time >= ?", t.into());
            }
            if let Some(t) = q.to {
                add("time <= ?", t.into());
            }
            if let Some(u) = &q.user {
                add("user_name = ?", u.clone().into());
            }
            if let Some(i) = &q.instance {
                add("instance_name = ?", i.clone().into());
            }
            if let Some(s) = &q.state {
                add("exec_state = ?", s.clone().into());
            }
            let filter = clauses.join(" AND ");
            let total = c.query_row(&format!("SELECT COUNT(*) FROM sql_audit WHERE {filter}"), rusqlite::params_from_iter(args.iter()), |r| r.get(0))?;
            args.push(q.page.size.into());
            args.push(q.page.offset().into());
            let n = args.len();
            let mut stmt = c.prepare(&format!(
                "SELECT time, user_name, instance_id, instance_name, schema_name, sql, sql_type, exec_state, affect_rows, elapsed_ms, remark, secret_name, secret_version_id, account_name
                 FROM sql_audit WHERE {filter} ORDER BY seq DESC LIMIT ?{} OFFSET ?{n}",
                n - 1
            ))?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                    Ok((
                        r.get(0)?,
                        AuditEntry {
                            op_time: String::new(),
                            user_name: r.get(1)?,
                            instance_id: r.get(2)?,
                            instance_name: r.get(3)?,
                            schema_name: r.get(4)?,
                            sql: r.get(5)?,
                            sql_type: r.get(6)?,
                            exec_state: r.get(7)?,
                            affect_rows: r.get(8)?,
                            elapsed_time: r.get(9)?,
                            remark: r.get(10)?,
                            secret_name: r.get(11)?,
                            secret_version_id: r.get(12)?,
                            account_name: r.get(13)?,
                        },
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((rows, total))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(alias: &str, host: &str) -> Instance {
        Instance {
            id: 0,
            alias: alias.into(),
            engine: "PostgreSQL".into(),
            host: host.into(),
            port: 5432,
            database: "app".into(),
            env_type: "product".into(),
            query_timeout: 60,
            tls: "disable".into(),
            login: Login::KmsSecret { secret_name: Some("db/app".into()), db_instance_id: None },
            created: 1,
        }
    }

    fn entry() -> AuditEntry {
        AuditEntry {
            op_time: String::new(),
            user_name: "alice".into(),
            instance_id: 1,
            instance_name: "app".into(),
            schema_name: "app".into(),
            sql: "SELECT 1".into(),
            sql_type: "SELECT".into(),
            exec_state: "SUCCESS".into(),
            affect_rows: 1,
            elapsed_time: 1,
            remark: String::new(),
            secret_name: "db/app".into(),
            secret_version_id: "v1".into(),
            account_name: "app_user".into(),
        }
    }

    /// Records are committed on the caller's thread with SQLite's automatic checkpoints off; the
    /// store's thread checkpoints after every `CHECKPOINT_EVERY` scripts instead, and the next
    /// commit then starts the write-ahead log over (its header's checkpoint count goes up) rather
    /// than growing it.
    #[tokio::test]
    async fn statement_records_are_checkpointed_by_the_stores_thread() {
        let dir = std::env::temp_dir().join(format!("sesame-dms-wal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = DmsStore::open(&dir.join("dms.db")).unwrap();
        // The log header's checkpoint sequence number (bytes 12–15, big-endian).
        let checkpoints = || {
            let wal = std::fs::read(dir.join("dms.db-wal")).unwrap();
            u32::from_be_bytes(wal[12..16].try_into().unwrap())
        };
        // A job on the store's thread runs after any checkpoint queued before it.
        let on_the_stores_thread = || store.with(|c| c.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get::<_, i64>(0)));
        assert_eq!(on_the_stores_thread().await.unwrap(), 0, "no checkpoint runs at a commit");

        store.audit(vec![(0, entry())]).await.unwrap();
        let before = checkpoints();
        for n in 1..CHECKPOINT_EVERY as i64 {
            store.audit(vec![(n, entry())]).await.unwrap();
        }
        on_the_stores_thread().await.unwrap();
        assert_eq!(checkpoints(), before, "the log grew through the period, nothing checkpointed it");

        // The period's last script queued a checkpoint, which has run; the next commit starts the
        // log over.
        store.audit(vec![(0, entry())]).await.unwrap();
        let after = checkpoints();
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(after, before + 1, "the log was checkpointed and started over");
    }

    #[tokio::test]
    async fn a_deleted_or_replaced_instance_is_never_served_from_the_cache() {
        let store = DmsStore::open_in_memory().unwrap();
        let id = store.insert(instance("app", "old-host")).await.unwrap().unwrap();
        // Both lookups fill the cache.
        assert_eq!(store.get_by_alias("app").await.unwrap().unwrap().host, "old-host");
        assert_eq!(store.get_by_id(id).await.unwrap().unwrap().host, "old-host");
        assert!(store.delete(id).await.unwrap());
        assert_eq!(store.get_by_alias("app").await.unwrap(), None);
        assert_eq!(store.get_by_id(id).await.unwrap(), None);
        // Registered again under the same alias, elsewhere: the new row, at once.
        let id = store.insert(instance("app", "new-host")).await.unwrap().unwrap();
        assert_eq!(store.get_by_alias("app").await.unwrap().unwrap().host, "new-host");
        assert_eq!(store.get_by_id(id).await.unwrap().unwrap().host, "new-host");
    }
}
