//! The embedded SQLite backend: two files in WAL mode, each with one connection owned by a
//! thread of its own ([`Worker`]), which runs the store's calls on it one after another.
//!
//! The audit trail's index has a file of its own (`<name>-audit.db` beside `<name>.db`; the
//! events are in the segment files of `<name>-audit.trail/`). When the trail's events were rows
//! in the main file, each of its commits made every other read and write wait its turn at the
//! connection (a cache miss at 100,000 secrets queued behind them), and its WAL checkpoints
//! stalled secret writes.
//!
//! Reads share their file's one connection on purpose. Separate read-only connections were
//! measured (`sesame bench scale`) and were slower: SQLite drops a connection's page cache
//! whenever another connection has committed since its last read.

use crate::worker::Worker;
use async_trait::async_trait;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use sesame_api::Timestamp;
use sesame_api::ram::{EventQuery, LookupAttribute};
use sesame_api::secrets::{SecretFilter, Tag};
use sesame_core::model::{
    AccessKey, Alias, AuditBlock, AuditChain, AuditRecord, CustomPolicy, DbInstance, Key, KeyState, KeyVersion, KmsInstance, Rotation,
    RotationChange, RotationStep, SealedValue, Secret, SecretRead, SecretVersion, StoredAuditEvent, User,
};
use sesame_core::store::{Store, StoreError, StoreResult};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Each entry moves the schema one version up; `PRAGMA user_version` records how far a file is.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE kms_instances (id TEXT PRIMARY KEY, created INTEGER NOT NULL);
CREATE TABLE keys (
    id TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL REFERENCES kms_instances(id),
    description TEXT NOT NULL,
    state TEXT NOT NULL,
    creator TEXT NOT NULL,
    created INTEGER NOT NULL,
    delete_date INTEGER,
    primary_version TEXT NOT NULL,
    rotation_interval INTEGER,
    last_rotation INTEGER NOT NULL,
    next_rotation INTEGER,
    revision INTEGER NOT NULL
);
CREATE INDEX keys_delete_date ON keys(delete_date) WHERE delete_date IS NOT NULL;
CREATE INDEX keys_next_rotation ON keys(next_rotation) WHERE next_rotation IS NOT NULL;
CREATE TABLE key_versions (
    key_id TEXT NOT NULL REFERENCES keys(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    created INTEGER NOT NULL,
    wrapped BLOB NOT NULL,
    PRIMARY KEY (key_id, id)
);
CREATE TABLE aliases (
    name TEXT PRIMARY KEY,
    key_id TEXT NOT NULL REFERENCES keys(id) ON DELETE CASCADE,
    created INTEGER NOT NULL
);
CREATE INDEX aliases_key ON aliases(key_id);
CREATE TABLE access_keys (
    id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    sealed_secret BLOB NOT NULL,
    enabled INTEGER NOT NULL,
    created INTEGER NOT NULL
);
"#,
    r#"
CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    secret_type TEXT NOT NULL,
    instance_id TEXT NOT NULL REFERENCES kms_instances(id),
    key_id TEXT NOT NULL,
    description TEXT NOT NULL,
    extended_config TEXT,
    creator TEXT NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    planned_delete INTEGER,
    policy TEXT NOT NULL,
    revision INTEGER NOT NULL
);
CREATE INDEX secrets_planned_delete ON secrets(planned_delete) WHERE planned_delete IS NOT NULL;
CREATE INDEX secrets_created ON secrets(created);
CREATE TABLE secret_versions (
    secret TEXT NOT NULL REFERENCES secrets(name) ON DELETE CASCADE,
    version_id TEXT NOT NULL,
    created INTEGER NOT NULL,
    data_type TEXT NOT NULL,
    stages TEXT NOT NULL,
    sealed_key BLOB NOT NULL,
    sealed_value BLOB NOT NULL,
    PRIMARY KEY (secret, version_id)
);
CREATE TABLE tags (
    rtype TEXT NOT NULL,
    rid TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (rtype, rid, key)
);
"#,
    r#"
CREATE TABLE db_instances (
    id TEXT PRIMARY KEY,
    engine TEXT NOT NULL,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    admin_user TEXT NOT NULL,
    sealed_password BLOB NOT NULL,
    admin_database TEXT NOT NULL,
    tls TEXT NOT NULL,
    account_host TEXT NOT NULL,
    description TEXT NOT NULL,
    key_id TEXT NOT NULL,
    created INTEGER NOT NULL,
    revision INTEGER NOT NULL
);
"#,
    r#"
ALTER TABLE secrets ADD COLUMN rotation_interval INTEGER;
ALTER TABLE secrets ADD COLUMN last_rotation INTEGER;
ALTER TABLE secrets ADD COLUMN next_rotation INTEGER;
CREATE INDEX secrets_next_rotation ON secrets(next_rotation) WHERE next_rotation IS NOT NULL;
CREATE TABLE rotations (
    secret TEXT PRIMARY KEY REFERENCES secrets(name) ON DELETE CASCADE,
    version_id TEXT NOT NULL,
    step TEXT NOT NULL,
    started INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    last_error TEXT NOT NULL,
    next_retry INTEGER NOT NULL,
    lease_owner TEXT NOT NULL DEFAULT '',
    lease_until INTEGER NOT NULL DEFAULT 0
);
"#,
    r#"
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    display_name TEXT NOT NULL DEFAULT '',
    comments TEXT NOT NULL DEFAULT '',
    created INTEGER NOT NULL
);
INSERT INTO users (name, created) SELECT user_name, MIN(created) FROM access_keys GROUP BY user_name;
CREATE TABLE policies (name TEXT PRIMARY KEY, document TEXT NOT NULL, description TEXT NOT NULL, created INTEGER NOT NULL);
CREATE TABLE user_policies (
    user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    policy_type TEXT NOT NULL,
    policy_name TEXT NOT NULL,
    PRIMARY KEY (user_name, policy_type, policy_name)
);
INSERT INTO user_policies SELECT name, 'System', 'AdministratorAccess' FROM users WHERE name = 'admin';
INSERT INTO user_policies SELECT name, 'System', 'SesameDmsAccess' FROM users WHERE name = 'sesame-dms';
CREATE TABLE audit_events (
    seq INTEGER PRIMARY KEY,
    time INTEGER NOT NULL,
    user_name TEXT NOT NULL,
    event_name TEXT NOT NULL,
    resource TEXT NOT NULL,
    result TEXT NOT NULL,
    access_key TEXT NOT NULL,
    event TEXT NOT NULL,
    mac BLOB NOT NULL
);
CREATE INDEX audit_events_time ON audit_events(time);
"#,
    // 6: ListSecrets without filters answers its total and finds its page in constant time:
    // triggers keep the count, and bump `epoch` whenever a row lands anywhere but at the end of
    // the listing order (created, rowid) or leaves it, which is when remembered positions move.
    r#"
CREATE TABLE secret_counts (id INTEGER PRIMARY KEY CHECK (id = 1), total INTEGER NOT NULL, epoch INTEGER NOT NULL);
INSERT INTO secret_counts SELECT 1, COUNT(*), 0 FROM secrets;
CREATE TRIGGER secrets_counted_in AFTER INSERT ON secrets BEGIN
    UPDATE secret_counts SET total = total + 1,
        epoch = epoch + EXISTS (SELECT 1 FROM secrets WHERE created >= NEW.created AND rowid <> NEW.rowid
                                AND (created > NEW.created OR rowid > NEW.rowid));
END;
CREATE TRIGGER secrets_counted_out AFTER DELETE ON secrets BEGIN
    UPDATE secret_counts SET total = total - 1, epoch = epoch + 1;
END;
"#,
    // 7: a SecretName filter matches substrings, which no B-tree index serves; a trigram index
    // of the names finds the candidates (names never change once a secret exists).
    r#"
CREATE VIRTUAL TABLE secret_names USING fts5(name, tokenize = 'trigram', content = 'secrets', content_rowid = 'rowid');
INSERT INTO secret_names (secret_names) VALUES ('rebuild');
CREATE TRIGGER secret_names_in AFTER INSERT ON secrets BEGIN
    INSERT INTO secret_names (rowid, name) VALUES (NEW.rowid, NEW.name);
END;
CREATE TRIGGER secret_names_out AFTER DELETE ON secrets BEGIN
    INSERT INTO secret_names (secret_names, rowid, name) VALUES ('delete', OLD.rowid, OLD.name);
END;
"#,
    // 8: the other ListSecrets filters find their rows through indexes too. DBInstanceId (inside
    // ExtendedConfig; DMS lists by it for an instance registered by its RDS instance) through an
    // index on the very expression its filter compares; tags by key and by value; descriptions,
    // which UpdateSecret may change, through a trigram index that triggers keep.
    r#"
CREATE INDEX secrets_db_instance ON secrets ((CASE WHEN json_valid(extended_config) THEN json_extract(extended_config, '$.DBInstanceId') END));
CREATE INDEX tags_by_key ON tags (rtype, key, rid);
CREATE INDEX tags_by_value ON tags (rtype, value, rid);
CREATE VIRTUAL TABLE secret_descriptions USING fts5(description, tokenize = 'trigram', content = 'secrets', content_rowid = 'rowid', columnsize = 0);
INSERT INTO secret_descriptions (secret_descriptions) VALUES ('rebuild');
CREATE TRIGGER secret_descriptions_in AFTER INSERT ON secrets BEGIN
    INSERT INTO secret_descriptions (rowid, description) VALUES (NEW.rowid, NEW.description);
END;
CREATE TRIGGER secret_descriptions_out AFTER DELETE ON secrets BEGIN
    INSERT INTO secret_descriptions (secret_descriptions, rowid, description) VALUES ('delete', OLD.rowid, OLD.description);
END;
CREATE TRIGGER secret_descriptions_changed AFTER UPDATE OF description ON secrets WHEN OLD.description IS NOT NEW.description BEGIN
    INSERT INTO secret_descriptions (secret_descriptions, rowid, description) VALUES ('delete', OLD.rowid, OLD.description);
    INSERT INTO secret_descriptions (rowid, description) VALUES (NEW.rowid, NEW.description);
END;
"#,
    // 9: how many names hold each trigram, so that a SecretName filter asks the trigram index for
    // its two rarest trigrams instead of all of them. FTS5 answers a quoted value as a phrase and
    // reads the list of every trigram in it; a prefix most names share (`rds/`, `prod-`) makes
    // that grow with the store. `name_positions` numbers the characters of a name or of a filter
    // value (1 to 256, past the 192 a name may have), because SQLite allows no WITH clause in a
    // trigger.
    r#"
CREATE TABLE name_positions (i INTEGER PRIMARY KEY);
WITH RECURSIVE p(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM p WHERE i < 256) INSERT INTO name_positions SELECT i FROM p;
CREATE TABLE name_trigrams (trigram TEXT PRIMARY KEY, names INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO name_trigrams (trigram, names)
    SELECT trigram, COUNT(*) FROM (SELECT DISTINCT s.rowid, lower(substr(s.name, p.i, 3)) AS trigram
                                   FROM secrets s JOIN name_positions p ON p.i <= length(s.name) - 2)
    GROUP BY trigram;
CREATE TRIGGER name_trigrams_in AFTER INSERT ON secrets BEGIN
    INSERT INTO name_trigrams (trigram, names)
        SELECT DISTINCT lower(substr(NEW.name, i, 3)), 1 FROM name_positions WHERE i <= length(NEW.name) - 2
        ON CONFLICT (trigram) DO UPDATE SET names = names + 1;
END;
CREATE TRIGGER name_trigrams_out AFTER DELETE ON secrets BEGIN
    UPDATE name_trigrams SET names = names - 1
        WHERE trigram IN (SELECT lower(substr(OLD.name, i, 3)) FROM name_positions WHERE i <= length(OLD.name) - 2);
END;
"#,
    // 10: the filters by type, creator and KMS instance through indexes that also hold a page's
    // order (`created`, then the rowid every index ends with). At 100,000 secrets, a count and a
    // page of a filter that matches 1% took 10–17 ms reading every row, 0.3–0.4 ms through them.
    r#"
CREATE INDEX secrets_type ON secrets (secret_type, created);
CREATE INDEX secrets_creator ON secrets (creator, created);
CREATE INDEX secrets_instance ON secrets (instance_id, created);
"#,
    // 11: names too short for a trigram, which a SecretName value of one or two characters adds to
    // the names whose trigrams hold it.
    r#"
CREATE INDEX secrets_short_names ON secrets (name) WHERE length(name) < 3;
"#,
];

const AUDIT_HEAD: &str = "audit_head";
const AUDIT_JOURNAL_MARK: &str = "audit_journal";

pub struct SqliteStore {
    conn: Worker,
    audit: Worker,
    marks: Arc<Mutex<PageMarks>>,
    /// Writes through `conn` so far: a cached listing is good while this is what it was.
    writes: AtomicU64,
    listings: Mutex<Listings>,
    /// The audit journal of earlier versions (file stores only).
    journal: Option<std::path::PathBuf>,
    /// The directory of the trail's segment files (file stores only).
    trail_dir: Option<std::path::PathBuf>,
}

/// The audit file's schema. Version 5 of the main file's schema held the same tables there.
const AUDIT_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_events (
    seq INTEGER PRIMARY KEY,
    time INTEGER NOT NULL,
    user_name TEXT NOT NULL,
    event_name TEXT NOT NULL,
    resource TEXT NOT NULL,
    result TEXT NOT NULL,
    access_key TEXT NOT NULL,
    event TEXT NOT NULL,
    mac BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_events_time ON audit_events(time);
CREATE TABLE IF NOT EXISTS audit_blocks (
    first_seq INTEGER PRIMARY KEY,
    last_seq INTEGER NOT NULL,
    min_time INTEGER NOT NULL,
    max_time INTEGER NOT NULL,
    segment INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    last_mac BLOB NOT NULL
);
"#;

/// How much of the main file SQLite reads through a memory map instead of `pread`s. At 100,000
/// secrets a GetSecretValue that misses the caches reads four rows from pages that are rarely in
/// SQLite's own page cache; mapped, those reads cost no system call and no copy. Beyond this size
/// the rest of the file is read as before. (A map turns an I/O error, or the file cut short by
/// another program, into a signal that stops the server; the file's lock keeps SQLite's own
/// users away.)
const MAIN_MMAP_BYTES: i64 = 1 << 30;

/// Makes this connection the only user of the main file, before anything reads it. One server owns
/// a SQLite store (several nodes share a PostgreSQL store instead), so the file's lock is taken
/// once and held: transactions no longer lock and unlock the WAL index (`fcntl` calls), which
/// then lives in this process's memory, and a second server started on the same data directory
/// fails at start instead of sharing the file.
fn own(conn: &Connection, path: &Path) -> StoreResult<()> {
    // A write takes the lock now rather than at the first request, and does not wait for it.
    conn.busy_timeout(std::time::Duration::ZERO).map_err(backend)?;
    // `main.`: a file attached later (the audit file, by `move_audit`) keeps normal locking.
    conn.execute_batch("PRAGMA main.locking_mode=EXCLUSIVE;").map_err(backend)?;
    conn.pragma_update(None, "mmap_size", MAIN_MMAP_BYTES).map_err(backend)?;
    conn.execute_batch("BEGIN IMMEDIATE; COMMIT;").map_err(|e| match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DatabaseBusy => StoreError::Backend(format!(
            "the store {} is in use by another process; is another `sesame serve` running on this data directory?",
            path.display()
        )),
        other => backend(other),
    })
}

const PRAGMAS: &str = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;";

/// Where the audit trail of the store at `path` lives.
pub fn audit_path(path: &Path) -> std::path::PathBuf {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "sesame".into());
    path.with_file_name(format!("{stem}-audit.db"))
}

/// Where the audit journal of earlier versions of the store at `path` lives.
pub fn audit_journal_path(path: &Path) -> std::path::PathBuf {
    audit_path(path).with_extension("journal")
}

/// The directory of the audit trail's segment files of the store at `path`.
pub fn audit_trail_dir(path: &Path) -> std::path::PathBuf {
    audit_path(path).with_extension("trail")
}

/// The filters, offset and limit of a ListSecrets page.
type ListingKey = (Vec<SecretFilter>, i64, i64);

/// ListSecrets answers, kept while no write has gone through the store since they were read
/// (`SqliteStore::writes`): DMS asks the same filtered listing at every logon, and a cached one
/// is answered without a trip to the store's thread. Bounded by the secrets they hold.
#[derive(Default)]
struct Listings {
    writes: u64,
    secrets: usize,
    pages: HashMap<ListingKey, Arc<(Vec<Secret>, i64)>>,
}

/// How many secrets the cached listings may hold together, and how many listings (empty ones
/// hold no secret, and their filters are the caller's).
const LISTED_SECRETS: usize = 10_000;
const LISTINGS: usize = 1_000;

impl Listings {
    fn get(&mut self, writes: u64, key: &ListingKey) -> Option<Arc<(Vec<Secret>, i64)>> {
        self.forget_before(writes);
        self.pages.get(key).cloned()
    }

    /// Keeps a page read when the store had seen `writes` writes, if it still has.
    fn put(&mut self, writes: u64, now: u64, key: ListingKey, page: Arc<(Vec<Secret>, i64)>) {
        if writes != now {
            return;
        }
        self.forget_before(writes);
        if self.secrets + page.0.len() > LISTED_SECRETS || self.pages.len() >= LISTINGS {
            self.pages.clear();
            self.secrets = 0;
        }
        self.secrets += page.0.len();
        self.pages.insert(key, page);
    }

    fn forget_before(&mut self, writes: u64) {
        if self.writes != writes {
            *self = Listings { writes, ..Default::default() };
        }
    }
}

/// Every [`PAGE_MARK`]-th secret's place in the listing order, remembered so that a page deep
/// in the list starts from the nearest mark instead of counting every row before it (SQL's
/// `OFFSET`). Valid while `secret_counts.epoch` is what it was when they were taken; rows added
/// at the end only add marks.
#[derive(Default)]
struct PageMarks {
    epoch: i64,
    marks: Vec<(i64, i64)>,
}

const PAGE_MARK: i64 = 500;

impl PageMarks {
    /// The mark at or before `offset` and how many rows lie between them, taking marks up to
    /// there if they are missing; `None` when `offset` is past the last row.
    fn start(&mut self, c: &Connection, epoch: i64, offset: i64) -> StoreResult<Option<((i64, i64), i64)>> {
        if epoch != self.epoch {
            *self = PageMarks { epoch, marks: Vec::new() };
        }
        let want = usize::try_from(offset / PAGE_MARK).map_err(backend)?;
        if self.marks.len() <= want {
            self.extend(c, want)?;
        }
        Ok(self.marks.get(want).map(|&m| (m, offset % PAGE_MARK)))
    }

    /// Walks the listing order from the last mark, keeping every PAGE_MARK-th position.
    fn extend(&mut self, c: &Connection, want: usize) -> StoreResult<()> {
        let from = self.marks.last().copied();
        let mut stmt = c
            .prepare_cached(
                "SELECT created, rowid FROM secrets WHERE created >= ?1 AND (created > ?1 OR rowid >= ?2) ORDER BY created, rowid",
            )
            .map_err(backend)?;
        let (created, rowid) = from.unwrap_or((i64::MIN, i64::MIN));
        let mut q = stmt.query(params![created, rowid]).map_err(backend)?;
        // The walk starts on the last mark itself, which is already kept.
        let mut n: i64 = if from.is_some() { 0 } else { PAGE_MARK };
        while let Some(row) = q.next().map_err(backend)? {
            if n == PAGE_MARK {
                self.marks.push((row.get(0).map_err(backend)?, row.get(1).map_err(backend)?));
                if self.marks.len() > want {
                    break;
                }
                n = 0;
            }
            n += 1;
        }
        Ok(())
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn map_err(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => StoreError::Duplicate,
        other => backend(other),
    }
}

impl SqliteStore {
    pub fn open(path: &Path) -> StoreResult<SqliteStore> {
        let audit_file = audit_path(path);
        let main = Connection::open(path).map_err(backend)?;
        own(&main, path)?;
        let store = Self::init(main, Connection::open(&audit_file).map_err(backend)?, Some(path))?;
        Ok(SqliteStore { journal: Some(audit_journal_path(path)), trail_dir: Some(audit_trail_dir(path)), ..store })
    }

    pub fn open_in_memory() -> StoreResult<SqliteStore> {
        Self::init(Connection::open_in_memory().map_err(backend)?, Connection::open_in_memory().map_err(backend)?, None)
    }

    fn init(mut conn: Connection, audit: Connection, path: Option<&Path>) -> StoreResult<SqliteStore> {
        // Room for every statement the store prepares, so none is prepared twice.
        conn.set_prepared_statement_cache_capacity(96);
        audit.set_prepared_statement_cache_capacity(16);
        conn.execute_batch(PRAGMAS).map_err(backend)?;
        migrate(&mut conn)?;
        audit.execute_batch(PRAGMAS).map_err(backend)?;
        audit.execute_batch(AUDIT_SCHEMA).map_err(backend)?;
        move_audit(&conn, path)?;
        Ok(SqliteStore {
            conn: Worker::start("sesame-store", conn).map_err(backend)?,
            audit: Worker::start("sesame-audit-store", audit).map_err(backend)?,
            marks: Default::default(),
            writes: AtomicU64::new(0),
            listings: Default::default(),
            journal: None,
            trail_dir: None,
        })
    }

    /// Deletes a resource (rows that reference it cascade) and its tags in one transaction.
    async fn delete_tagged(&self, rtype: &'static str, delete_sql: &'static str, id: &str) -> StoreResult<()> {
        let id = id.to_string();
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            tx.execute("DELETE FROM tags WHERE rtype = ?1 AND rid = ?2", [rtype, id.as_str()]).map_err(backend)?;
            tx.execute(delete_sql, [&id]).map_err(backend)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    /// Runs `f`, which only reads (see the module's note on connections).
    async fn read<T: Send + 'static>(&self, f: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static) -> StoreResult<T> {
        self.conn.run(move |c| f(c)).await.map_err(backend)?
    }

    /// Runs `f`, which may write, with the main file's connection, on its thread; cached
    /// listings are good no more once it has run.
    async fn with<T: Send + 'static>(&self, f: impl FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static) -> StoreResult<T> {
        let done = self.conn.run(f).await.map_err(backend);
        self.writes.fetch_add(1, Ordering::AcqRel);
        done?
    }

    fn cached_listings(&self) -> std::sync::MutexGuard<'_, Listings> {
        self.listings.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A ListSecrets page from the store itself.
    async fn read_listing(&self, filters: &[SecretFilter], offset: i64, limit: i64) -> StoreResult<(Vec<Secret>, i64)> {
        if filters.is_empty() {
            let marks = self.marks.clone();
            return self
                .read(move |c| {
                    let (total, epoch): (i64, i64) = c
                        .prepare_cached("SELECT total, epoch FROM secret_counts")
                        .map_err(backend)?
                        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
                        .map_err(backend)?;
                    let start = marks.lock().map_err(|_| StoreError::Backend("store mutex poisoned".into()))?.start(c, epoch, offset)?;
                    let Some(((created, rowid), skip)) = start else { return Ok((Vec::new(), total)) };
                    let mut stmt = c
                        .prepare_cached(&format!(
                            "SELECT {SECRET_COLUMNS} FROM secrets WHERE created >= ?1 AND (created > ?1 OR rowid >= ?2) \
                             ORDER BY created, rowid LIMIT ?3 OFFSET ?4"
                        ))
                        .map_err(backend)?;
                    Ok((rows(&mut stmt, params![created, rowid, limit, skip], secret_from_row)?, total))
                })
                .await;
        }
        let filters = filters.to_vec();
        self.read(move |c| {
            let (clause, params) = secret_filter_sql(c, &filters)?;
            // The texts vary only with the filters' shape and plans, so the statement cache keeps them.
            let (count_sql, page_sql) = filtered_listing_sql(&clause, params.len());
            let total = c
                .prepare_cached(&count_sql)
                .map_err(backend)?
                .query_row(rusqlite::params_from_iter(params.iter()), |r| r.get(0))
                .map_err(backend)?;
            // A page past the last match would walk the listing's order through every row to find nothing.
            if offset >= total {
                return Ok((Vec::new(), total));
            }
            let mut page_params = params.clone();
            page_params.push(SqlValue::Integer(limit));
            page_params.push(SqlValue::Integer(offset));
            let mut stmt = c.prepare_cached(&page_sql).map_err(backend)?;
            let items = rows(&mut stmt, rusqlite::params_from_iter(page_params.iter()), secret_from_row)?;
            Ok((items, total))
        })
        .await
    }

    /// A value of the audit file's own `meta` table.
    async fn audit_meta(&self, key: &'static str) -> StoreResult<Option<String>> {
        self.with_audit(move |c| c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional().map_err(backend))
            .await
    }

    /// Runs `f` with the audit file's connection, on its thread.
    async fn with_audit<T: Send + 'static>(&self, f: impl FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static) -> StoreResult<T> {
        self.audit.run(f).await.map_err(backend)?
    }
}

/// Stores made before the audit trail had a file of its own kept it in the main file: copy it
/// over, then drop it there. The copy ignores events already copied, so a move cut short is
/// finished by the next open.
fn move_audit(main: &Connection, path: Option<&Path>) -> StoreResult<()> {
    let old: bool = main
        .query_row("SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_events')", [], |r| r.get(0))
        .map_err(backend)?;
    if !old {
        return Ok(());
    }
    let events = count(main, "SELECT COUNT(*) FROM audit_events", [])?;
    let head = count(main, "SELECT COUNT(*) FROM meta WHERE key = ?1", [AUDIT_HEAD])?;
    if events + head > 0 {
        // From the main file's connection: it holds that file's lock (see `own`).
        let path = path.ok_or_else(|| StoreError::Backend("an in-memory store holds old audit events".into()))?;
        main.execute("ATTACH DATABASE ?1 AS trail", [audit_path(path).to_string_lossy()]).map_err(backend)?;
        let tx = main.unchecked_transaction().map_err(backend)?;
        tx.execute_batch("INSERT OR IGNORE INTO trail.audit_events SELECT * FROM main.audit_events").map_err(backend)?;
        tx.execute("INSERT OR REPLACE INTO trail.meta SELECT key, value FROM main.meta WHERE key = ?1", [AUDIT_HEAD]).map_err(backend)?;
        tx.commit().map_err(backend)?;
        main.execute_batch("DETACH DATABASE trail").map_err(backend)?;
    }
    let tx = main.unchecked_transaction().map_err(backend)?;
    tx.execute_batch("DROP TABLE audit_events").map_err(backend)?;
    tx.execute("DELETE FROM meta WHERE key = ?1", [AUDIT_HEAD]).map_err(backend)?;
    tx.commit().map_err(backend)
}

fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(backend)?;
    let target = MIGRATIONS.len() as i64;
    if current > target {
        return Err(StoreError::Backend(format!("the store's schema version {current} is newer than this build supports ({target})")));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction().map_err(backend)?;
        tx.execute_batch(sql).map_err(backend)?;
        tx.pragma_update(None, "user_version", i as i64 + 1).map_err(backend)?;
        tx.commit().map_err(backend)?;
    }
    Ok(())
}

fn key_from_row(r: &Row<'_>) -> rusqlite::Result<(Key, String)> {
    let state: String = r.get("state")?;
    Ok((
        Key {
            id: r.get("id")?,
            instance_id: r.get("instance_id")?,
            description: r.get("description")?,
            state: KeyState::Enabled,
            creator: r.get("creator")?,
            created: Timestamp(r.get("created")?),
            delete_date: r.get::<_, Option<i64>>("delete_date")?.map(Timestamp),
            primary_version: r.get("primary_version")?,
            rotation_interval: r.get("rotation_interval")?,
            last_rotation: Timestamp(r.get("last_rotation")?),
            next_rotation: r.get::<_, Option<i64>>("next_rotation")?.map(Timestamp),
            versions: Vec::new(),
            revision: r.get("revision")?,
        },
        state,
    ))
}

fn load_key(conn: &Connection, id: &str) -> StoreResult<Option<Key>> {
    let Some((mut key, state)) = conn
        .prepare_cached("SELECT * FROM keys WHERE id = ?1")
        .map_err(backend)?
        .query_row([id], key_from_row)
        .optional()
        .map_err(backend)?
    else {
        return Ok(None);
    };
    key.state = KeyState::parse(&state).ok_or_else(|| StoreError::Backend(format!("key {id} has unknown state {state:?}")))?;
    let mut stmt =
        conn.prepare_cached("SELECT id, created, wrapped FROM key_versions WHERE key_id = ?1 ORDER BY created, rowid").map_err(backend)?;
    key.versions = rows(&mut stmt, [id], |r| Ok(KeyVersion { id: r.get(0)?, created: Timestamp(r.get(1)?), wrapped: r.get(2)? }))?;
    Ok(Some(key))
}

fn insert_missing_versions(tx: &Transaction<'_>, key: &Key) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached("INSERT OR IGNORE INTO key_versions (key_id, id, created, wrapped) VALUES (?1, ?2, ?3, ?4)")?;
    for v in &key.versions {
        stmt.execute(params![key.id, v.id, v.created.0, v.wrapped])?;
    }
    Ok(())
}

const SECRET_COLUMNS: &str = "name, secret_type, instance_id, key_id, description, extended_config, creator, created, updated, planned_delete, policy, revision, rotation_interval, last_rotation, next_rotation";

fn secret_from_row(r: &Row<'_>) -> rusqlite::Result<Secret> {
    Ok(Secret {
        name: r.get(0)?,
        secret_type: r.get(1)?,
        instance_id: r.get(2)?,
        key_id: r.get(3)?,
        description: r.get(4)?,
        extended_config: r.get(5)?,
        creator: r.get(6)?,
        created: Timestamp(r.get(7)?),
        updated: Timestamp(r.get(8)?),
        planned_delete: r.get::<_, Option<i64>>(9)?.map(Timestamp),
        policy: r.get(10)?,
        versions: Vec::new(),
        revision: r.get(11)?,
        rotation_interval: r.get(12)?,
        last_rotation: r.get::<_, Option<i64>>(13)?.map(Timestamp),
        next_rotation: r.get::<_, Option<i64>>(14)?.map(Timestamp),
    })
}

fn write_rotation(tx: &Transaction<'_>, change: RotationChange<'_>, secret: &str) -> StoreResult<()> {
    match change {
        RotationChange::Keep => Ok(()),
        RotationChange::Delete => {
            tx.prepare_cached("DELETE FROM rotations WHERE secret = ?1").and_then(|mut d| d.execute([secret])).map(drop).map_err(map_err)
        }
        RotationChange::Put(r) => tx
            .prepare_cached(
                "INSERT INTO rotations (secret, version_id, step, started, attempts, last_error, next_retry) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(secret) DO UPDATE SET version_id = excluded.version_id, step = excluded.step, started = excluded.started, attempts = excluded.attempts, last_error = excluded.last_error, next_retry = excluded.next_retry",
            )
            .and_then(|mut put| put.execute(params![r.secret, r.version_id, r.step.as_str(), r.started.0, r.attempts, r.last_error, r.next_retry.0]))
            .map(drop)
            .map_err(map_err),
        RotationChange::Start { rotation: r, owner, until, now } => {
            let written = tx
                .prepare_cached(
                    "INSERT INTO rotations (secret, version_id, step, started, attempts, last_error, next_retry, lease_owner, lease_until)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT(secret) DO UPDATE SET version_id = excluded.version_id, step = excluded.step, started = excluded.started, attempts = excluded.attempts, last_error = excluded.last_error, next_retry = excluded.next_retry, lease_owner = excluded.lease_owner, lease_until = excluded.lease_until
                     WHERE rotations.lease_until <= ?10 OR rotations.lease_owner = excluded.lease_owner",
                )
                .and_then(|mut start| {
                    start.execute(params![
                        r.secret,
                        r.version_id,
                        r.step.as_str(),
                        r.started.0,
                        r.attempts,
                        r.last_error,
                        r.next_retry.0,
                        owner,
                        until.0,
                        now.0
                    ])
                })
                .map_err(map_err)?;
            if written == 0 { Err(StoreError::Conflict) } else { Ok(()) }
        }
    }
}

fn sealed_value(c: &Connection, name: &str, version_id: &str) -> StoreResult<Option<SealedValue>> {
    c.prepare_cached("SELECT sealed_key, sealed_value FROM secret_versions WHERE secret = ?1 AND version_id = ?2")
        .map_err(backend)?
        .query_row([name, version_id], |r| Ok(SealedValue { sealed_key: r.get(0)?, sealed_value: r.get(1)? }))
        .optional()
        .map_err(backend)
}

fn load_secret(conn: &Connection, name: &str) -> StoreResult<Option<Secret>> {
    let sql = format!("SELECT {SECRET_COLUMNS} FROM secrets WHERE name = ?1");
    let Some(mut s) = conn.prepare_cached(&sql).map_err(backend)?.query_row([name], secret_from_row).optional().map_err(backend)? else {
        return Ok(None);
    };
    let mut stmt = conn
        .prepare_cached("SELECT version_id, created, data_type, stages FROM secret_versions WHERE secret = ?1 ORDER BY created, rowid")
        .map_err(backend)?;
    s.versions = rows(&mut stmt, [name], |r| {
        let stages = split_stages(text(r, 3)?).map(str::to_string).collect();
        Ok(SecretVersion { id: r.get(0)?, created: Timestamp(r.get(1)?), data_type: r.get(2)?, stages })
    })?;
    Ok(Some(s))
}

// Stage labels are letters, digits, `_ - .` (checked by the API), so a comma separates them.
fn join_stages(stages: &[String]) -> String {
    stages.join(",")
}

fn split_stages(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').filter(|x| !x.is_empty())
}

fn like_pattern(v: &str) -> String {
    let escaped = v.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

/// The WHERE clause and its parameters for ListSecrets filters (values ORed, filters ANDed). A
/// SecretName value's way to its rows is chosen from the store's counts of trigrams ([`NamePlan`]).
fn secret_filter_sql(c: &Connection, filters: &[SecretFilter]) -> StoreResult<(String, Vec<SqlValue>)> {
    let mut clauses = vec!["1 = 1".to_string()];
    let mut params: Vec<SqlValue> = Vec::new();
    let placeholders = |values: &[String], params: &mut Vec<SqlValue>| -> Vec<String> {
        values
            .iter()
            .map(|v| {
                params.push(SqlValue::Text(v.clone()));
                format!("?{}", params.len())
            })
            .collect()
    };
    for f in filters {
        let clause = match f {
            SecretFilter::Name(v) => {
                let clauses: StoreResult<Vec<String>> = v.iter().map(|v| Ok(NamePlan::choose(c, v)?.clause(v, &mut params))).collect();
                clauses?.join(" OR ")
            }
            SecretFilter::Description(v) => v.iter().map(|v| description_clause(v, &mut params)).collect::<Vec<_>>().join(" OR "),
            SecretFilter::TagKey(v) => {
                format!("name IN (SELECT rid FROM tags WHERE rtype = 'secret' AND key IN ({}))", placeholders(v, &mut params).join(", "))
            }
            SecretFilter::TagValue(v) => {
                format!("name IN (SELECT rid FROM tags WHERE rtype = 'secret' AND value IN ({}))", placeholders(v, &mut params).join(", "))
            }
            SecretFilter::Instance(v) => format!("instance_id IN ({})", placeholders(v, &mut params).join(", ")),
            SecretFilter::Type(v) => format!("secret_type IN ({})", placeholders(v, &mut params).join(", ")),
            SecretFilter::Creator(v) => format!("creator IN ({})", placeholders(v, &mut params).join(", ")),
            // The expression of the index `secrets_db_instance`, word for word, so that it serves.
            SecretFilter::DbInstance(v) => format!(
                "(CASE WHEN json_valid(extended_config) THEN json_extract(extended_config, '$.DBInstanceId') END) IN ({})",
                placeholders(v, &mut params).join(", ")
            ),
        };
        clauses.push(format!("({clause})"));
    }
    Ok((clauses.join(" AND "), params))
}

/// The count and the page (its limit and offset the two parameters after the filters' `n`) of a
/// filtered ListSecrets.
fn filtered_listing_sql(clause: &str, n: usize) -> (String, String) {
    let (l, o) = (n + 1, n + 2);
    (
        format!("SELECT COUNT(*) FROM secrets WHERE {clause}"),
        format!("SELECT {SECRET_COLUMNS} FROM secrets WHERE {clause} ORDER BY created, rowid LIMIT ?{l} OFFSET ?{o}"),
    )
}

/// A `LIKE` of `column` with the value `v` anywhere in it, its pattern the next parameter.
fn like_clause(column: &str, v: &str, params: &mut Vec<SqlValue>) -> String {
    params.push(SqlValue::Text(like_pattern(v)));
    format!("{column} LIKE ?{} ESCAPE '\\'", params.len())
}

/// Rows whose description contains `v` (case-insensitively, as `LIKE` matches). From three
/// characters on, the descriptions' trigram index finds the candidates, asked for the whole value
/// as a phrase, and `LIKE` keeps its exact meaning on those; a shorter value reads every row.
fn description_clause(v: &str, params: &mut Vec<SqlValue>) -> String {
    let like = like_clause("description", v, params);
    if v.chars().count() < 3 {
        return like;
    }
    params.push(SqlValue::Text(fts_phrase(v)));
    format!("(rowid IN (SELECT rowid FROM secret_descriptions WHERE secret_descriptions MATCH ?{}) AND {like})", params.len())
}

/// An FTS5 string: the text in double quotes, its own double quotes doubled.
fn fts_phrase(t: &str) -> String {
    format!("\"{}\"", t.replace('"', "\"\""))
}

/// Below this many candidates the trigram index is always worth asking.
const FEW_CANDIDATES: i64 = 1_000;
/// A candidate the index finds for two trigrams ANDed, its row then read, matched and sorted for
/// the page, costs about ten times a row in a scan: at 100,000 secrets, a value every name holds
/// took 46–52 ms through the index against 5–6 ms for a scan. A scan's page may also walk much
/// of the listing's order before its first match, so a value held by a tenth of the names
/// (`scale/05`, 10,000 names seeded one after the other) is still quicker through the index
/// (about 6 against 12 ms).
const CANDIDATE_COST: i64 = 10;
/// An entry of the lists of several trigrams ORed (a value of one or two characters) costs about
/// twice that: `12`, 20 trigrams with 6,997 entries in all, took about 4.5 ms through the index
/// against 3.2 ms for a scan.
const ORED_ENTRY_COST: i64 = 20;
/// A value of one or two characters held by more trigrams than this reads every row.
const MAX_TRIGRAMS_ORED: i64 = 64;

/// How a SecretName value finds its rows, chosen from the counts in `name_trigrams`: through the
/// trigram index when its lists cost less to read than every row, and always then matched with
/// `LIKE`, which keeps the filter's meaning (a substring, case-insensitive for ASCII letters).
#[derive(Debug, PartialEq)]
enum NamePlan {
    /// No name holds the value: it has a trigram that no name holds.
    Nothing,
    /// Every row: the value's trigrams are in so many names that their lists would cost more.
    Scan,
    /// The names the trigram index finds for this FTS5 query (for three characters or more the
    /// value's two rarest trigrams ANDed, for fewer every trigram holding it ORed, none if no
    /// trigram holds it) and, for a value of one or two characters, the names too short for a
    /// trigram.
    Index { query: Option<String>, short_names: bool },
}

impl NamePlan {
    /// The plan for `v` in the store as it is now.
    fn choose(c: &Connection, v: &str) -> StoreResult<NamePlan> {
        let total: i64 =
            c.prepare_cached("SELECT total FROM secret_counts").and_then(|mut s| s.query_row([], |r| r.get(0))).map_err(backend)?;
        // Whether this many candidates, each costing `cost` rows of a scan, cost less than every row.
        let worth = |candidates: i64, cost: i64| candidates <= FEW_CANDIDATES || candidates.saturating_mul(cost) <= total;
        if v.chars().count() >= 3 {
            // The value's distinct trigrams, rarest first (one that no name holds counts 0).
            let mut stmt = c
                .prepare_cached(
                    "SELECT g.t, coalesce(c.names, 0) FROM
                        (SELECT DISTINCT lower(substr(?1, i, 3)) AS t FROM name_positions WHERE i <= length(?1) - 2) g
                     LEFT JOIN name_trigrams c ON c.trigram = g.t ORDER BY 2, 1 LIMIT 2",
                )
                .map_err(backend)?;
            let rarest: Vec<(String, i64)> = rows(&mut stmt, [v], |r| Ok((r.get(0)?, r.get(1)?)))?;
            return Ok(match rarest.first() {
                Some((_, 0)) => NamePlan::Nothing,
                // The rarest trigram's names bound the candidates.
                Some((_, n)) if worth(*n, CANDIDATE_COST) => NamePlan::Index {
                    query: Some(rarest.iter().map(|(t, _)| fts_phrase(t)).collect::<Vec<_>>().join(" AND ")),
                    short_names: false,
                },
                _ => NamePlan::Scan,
            });
        }
        // Every name of three characters or more that holds a shorter value holds it inside one of
        // its trigrams; the lists of those trigrams are what the index would read. One more than
        // may be ORed is enough to know there are too many.
        let mut stmt = c
            .prepare_cached(
                "SELECT trigram, names FROM name_trigrams WHERE names > 0 AND instr(trigram, lower(?1)) > 0 ORDER BY trigram LIMIT ?2",
            )
            .map_err(backend)?;
        let held: Vec<(String, i64)> = rows(&mut stmt, params![v, MAX_TRIGRAMS_ORED + 1], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let entries = held.iter().map(|(_, n)| n).sum();
        if held.len() as i64 > MAX_TRIGRAMS_ORED || !worth(entries, ORED_ENTRY_COST) {
            return Ok(NamePlan::Scan);
        }
        let query = (!held.is_empty()).then(|| held.iter().map(|(t, _)| fts_phrase(t)).collect::<Vec<_>>().join(" OR "));
        Ok(NamePlan::Index { query, short_names: true })
    }

    /// The clause of this plan for `v`, its parameters pushed onto `params`.
    fn clause(self, v: &str, params: &mut Vec<SqlValue>) -> String {
        let candidates = match self {
            NamePlan::Nothing => return "0".into(),
            NamePlan::Scan => return like_clause("name", v, params),
            NamePlan::Index { query, short_names } => {
                let mut from = Vec::new();
                if let Some(q) = query {
                    params.push(SqlValue::Text(q));
                    from.push(format!("rowid IN (SELECT rowid FROM secret_names WHERE secret_names MATCH ?{})", params.len()));
                }
                if short_names {
                    // The expression of the partial index `secrets_short_names`, word for word.
                    from.push("rowid IN (SELECT rowid FROM secrets WHERE length(name) < 3)".into());
                }
                if from.is_empty() {
                    return "0".into();
                }
                from.join(" OR ")
            }
        };
        format!("(({candidates}) AND {})", like_clause("name", v, params))
    }
}

fn insert_version_value(tx: &Transaction<'_>, s: &Secret, id: &str, sealed: &SealedValue) -> rusqlite::Result<()> {
    let v = s.versions.iter().find(|v| v.id == id);
    let (created, data_type) = v.map(|v| (v.created.0, v.data_type.as_str())).unwrap_or((s.updated.0, "text"));
    tx.prepare_cached(
        "INSERT INTO secret_versions (secret, version_id, created, data_type, stages, sealed_key, sealed_value) VALUES (?1, ?2, ?3, ?4, '', ?5, ?6)",
    )?
    .execute(params![s.name, id, created, data_type, sealed.sealed_key, sealed.sealed_value])
    .map(drop)
}

/// Brings the stored versions of `s` in line with its list: the stages of the versions whose
/// stages changed, and the versions it no longer holds deleted. A secret keeps up to 100
/// versions and a write usually moves two stages, so only those rows are written (rewriting
/// every row made a PutSecretValue cost in proportion to the versions kept).
fn write_versions(tx: &Transaction<'_>, s: &Secret, new_version: Option<(&str, &SealedValue)>) -> rusqlite::Result<()> {
    if let Some((id, sealed)) = new_version {
        insert_version_value(tx, s, id, sealed)?;
    }
    // Which rows to change, read without copying a row: a secret may hold 100 versions.
    let wanted: HashMap<&str, &[String]> = s.versions.iter().map(|v| (v.id.as_str(), v.stages.as_slice())).collect();
    let (mut restaged, mut gone) = (Vec::new(), Vec::new());
    {
        let mut stmt = tx.prepare_cached("SELECT version_id, stages FROM secret_versions WHERE secret = ?1")?;
        let mut rows = stmt.query([&s.name])?;
        while let Some(r) = rows.next()? {
            let (id, stages) = (text(r, 0)?, text(r, 1)?);
            match wanted.get(id) {
                Some(want) if split_stages(stages).eq(want.iter().map(String::as_str)) => {}
                Some(want) => restaged.push((id.to_string(), join_stages(want))),
                None => gone.push(id.to_string()),
            }
        }
    }
    let mut update = tx.prepare_cached("UPDATE secret_versions SET stages = ?3 WHERE secret = ?1 AND version_id = ?2")?;
    for (id, stages) in &restaged {
        update.execute(params![s.name, id, stages])?;
    }
    let mut delete = tx.prepare_cached("DELETE FROM secret_versions WHERE secret = ?1 AND version_id = ?2")?;
    for id in &gone {
        delete.execute(params![s.name, id])?;
    }
    Ok(())
}

/// A text column, borrowed from its row.
fn text<'r>(r: &'r Row<'_>, i: usize) -> rusqlite::Result<&'r str> {
    r.get_ref(i)?.as_str().map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e)))
}

const DB_COLUMNS: &str =
    "id, engine, host, port, admin_user, sealed_password, admin_database, tls, account_host, description, key_id, created, revision";

fn db_from_row(r: &Row<'_>) -> rusqlite::Result<DbInstance> {
    Ok(DbInstance {
        id: r.get(0)?,
        engine: r.get(1)?,
        host: r.get(2)?,
        port: r.get(3)?,
        admin_user: r.get(4)?,
        sealed_password: r.get(5)?,
        admin_database: r.get(6)?,
        tls: r.get(7)?,
        account_host: r.get(8)?,
        description: r.get(9)?,
        key_id: r.get(10)?,
        created: Timestamp(r.get(11)?),
        revision: r.get(12)?,
    })
}

/// Every row of a query, mapped.
fn rows<T, P: rusqlite::Params>(
    stmt: &mut rusqlite::Statement<'_>,
    params: P,
    f: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<Vec<T>> {
    stmt.query_map(params, f).map_err(backend)?.collect::<Result<_, _>>().map_err(backend)
}

/// Sets a value of a file's `meta` table.
const SET_META: &str = "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value";

/// The last event in the trail's first format: its position and chain link.
fn last_audit_event(c: &Connection) -> StoreResult<Option<(i64, Vec<u8>)>> {
    c.prepare_cached("SELECT seq, mac FROM audit_events ORDER BY seq DESC LIMIT 1")
        .map_err(backend)?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(backend)
}

const BLOCK_COLUMNS: &str = "first_seq, last_seq, min_time, max_time, segment, start, end, last_mac";

fn block_from_row(r: &Row<'_>) -> rusqlite::Result<AuditBlock> {
    Ok(AuditBlock {
        first_seq: r.get(0)?,
        last_seq: r.get(1)?,
        min_time: r.get(2)?,
        max_time: r.get(3)?,
        segment: r.get(4)?,
        start: r.get(5)?,
        end: r.get(6)?,
        last_mac: r.get(7)?,
    })
}

fn user_from_row(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User { name: r.get(0)?, display_name: r.get(1)?, comments: r.get(2)?, created: Timestamp(r.get(3)?) })
}

fn policy_from_row(r: &Row<'_>) -> rusqlite::Result<CustomPolicy> {
    Ok(CustomPolicy { name: r.get(0)?, document: r.get(1)?, description: r.get(2)?, created: Timestamp(r.get(3)?) })
}

fn count(conn: &Connection, sql: &str, p: impl rusqlite::Params) -> StoreResult<i64> {
    conn.query_row(sql, p, |r| r.get(0)).map_err(backend)
}

#[async_trait]
impl Store for SqliteStore {
    async fn meta_get(&self, key: &str) -> StoreResult<Option<String>> {
        let key = key.to_string();
        self.read(move |c| {
            c.prepare_cached("SELECT value FROM meta WHERE key = ?1")
                .map_err(backend)?
                .query_row([key], |r| r.get(0))
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn meta_set(&self, key: &str, value: &str) -> StoreResult<()> {
        let (key, value) = (key.to_string(), value.to_string());
        self.with(move |c| c.execute(SET_META, [key, value]).map(drop).map_err(map_err)).await
    }

    async fn insert_instance(&self, instance: &KmsInstance) -> StoreResult<()> {
        let i = instance.clone();
        self.with(move |c| {
            c.execute("INSERT INTO kms_instances (id, created) VALUES (?1, ?2)", params![i.id, i.created.0]).map(drop).map_err(map_err)
        })
        .await
    }

    async fn get_instance(&self, id: &str) -> StoreResult<Option<KmsInstance>> {
        let id = id.to_string();
        self.read(move |c| {
            c.query_row("SELECT id, created FROM kms_instances WHERE id = ?1", [id], |r| {
                Ok(KmsInstance { id: r.get(0)?, created: Timestamp(r.get(1)?) })
            })
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn list_instances(&self, offset: i64, limit: i64) -> StoreResult<(Vec<KmsInstance>, i64)> {
        self.read(move |c| {
            let total = count(c, "SELECT COUNT(*) FROM kms_instances", [])?;
            let mut stmt =
                c.prepare_cached("SELECT id, created FROM kms_instances ORDER BY created, rowid LIMIT ?1 OFFSET ?2").map_err(backend)?;
            let items = rows(&mut stmt, [limit, offset], |r| Ok(KmsInstance { id: r.get(0)?, created: Timestamp(r.get(1)?) }))?;
            Ok((items, total))
        })
        .await
    }

    async fn insert_key(&self, key: &Key) -> StoreResult<()> {
        let k = key.clone();
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            tx.execute(
                "INSERT INTO keys (id, instance_id, description, state, creator, created, delete_date, primary_version, rotation_interval, last_rotation, next_rotation, revision) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![k.id, k.instance_id, k.description, k.state.as_str(), k.creator, k.created.0, k.delete_date.map(|t| t.0), k.primary_version, k.rotation_interval, k.last_rotation.0, k.next_rotation.map(|t| t.0), k.revision],
            )
            .map_err(map_err)?;
            insert_missing_versions(&tx, &k).map_err(map_err)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn get_key(&self, id: &str) -> StoreResult<Option<Key>> {
        let id = id.to_string();
        self.read(move |c| load_key(c, &id)).await
    }

    async fn update_key(&self, key: &Key) -> StoreResult<()> {
        let k = key.clone();
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            let changed = tx
                .execute(
                    "UPDATE keys SET description = ?2, state = ?3, delete_date = ?4, primary_version = ?5, rotation_interval = ?6, last_rotation = ?7, next_rotation = ?8, revision = revision + 1 WHERE id = ?1 AND revision = ?9",
                    params![k.id, k.description, k.state.as_str(), k.delete_date.map(|t| t.0), k.primary_version, k.rotation_interval, k.last_rotation.0, k.next_rotation.map(|t| t.0), k.revision],
                )
                .map_err(map_err)?;
            if changed == 0 {
                return Err(StoreError::Conflict);
            }
            insert_missing_versions(&tx, &k).map_err(map_err)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn delete_key(&self, id: &str) -> StoreResult<()> {
        self.delete_tagged("key", "DELETE FROM keys WHERE id = ?1", id).await
    }

    async fn list_keys(&self, offset: i64, limit: i64) -> StoreResult<(Vec<String>, i64)> {
        self.read(move |c| {
            let total = count(c, "SELECT COUNT(*) FROM keys", [])?;
            let mut stmt = c.prepare_cached("SELECT id FROM keys ORDER BY created, rowid LIMIT ?1 OFFSET ?2").map_err(backend)?;
            let ids = rows(&mut stmt, [limit, offset], |r| r.get(0))?;
            Ok((ids, total))
        })
        .await
    }

    async fn keys_due(&self, now: Timestamp) -> StoreResult<Vec<String>> {
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached("SELECT id FROM keys WHERE delete_date <= ?1 UNION SELECT id FROM keys WHERE next_rotation <= ?1")
                .map_err(backend)?;
            rows(&mut stmt, [now.0], |r| r.get(0))
        })
        .await
    }

    async fn insert_alias(&self, alias: &Alias) -> StoreResult<()> {
        let a = alias.clone();
        self.with(move |c| {
            c.execute("INSERT INTO aliases (name, key_id, created) VALUES (?1, ?2, ?3)", params![a.name, a.key_id, a.created.0])
                .map(drop)
                .map_err(map_err)
        })
        .await
    }

    async fn update_alias(&self, name: &str, key_id: &str) -> StoreResult<bool> {
        let (name, key_id) = (name.to_string(), key_id.to_string());
        self.with(move |c| c.execute("UPDATE aliases SET key_id = ?2 WHERE name = ?1", [name, key_id]).map(|n| n > 0).map_err(map_err))
            .await
    }

    async fn delete_alias(&self, name: &str) -> StoreResult<bool> {
        let name = name.to_string();
        self.with(move |c| c.execute("DELETE FROM aliases WHERE name = ?1", [name]).map(|n| n > 0).map_err(backend)).await
    }

    async fn get_alias(&self, name: &str) -> StoreResult<Option<Alias>> {
        let name = name.to_string();
        self.read(move |c| {
            c.query_row("SELECT name, key_id, created FROM aliases WHERE name = ?1", [name], |r| {
                Ok(Alias { name: r.get(0)?, key_id: r.get(1)?, created: Timestamp(r.get(2)?) })
            })
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn list_aliases(&self, key_id: Option<&str>, offset: i64, limit: i64) -> StoreResult<(Vec<Alias>, i64)> {
        let key_id = key_id.map(str::to_string);
        self.read(move |c| {
            let total = count(c, "SELECT COUNT(*) FROM aliases WHERE ?1 IS NULL OR key_id = ?1", [&key_id])?;
            let mut stmt = c
                .prepare_cached(
                    "SELECT name, key_id, created FROM aliases WHERE ?1 IS NULL OR key_id = ?1 ORDER BY name LIMIT ?2 OFFSET ?3",
                )
                .map_err(backend)?;
            let items = rows(&mut stmt, params![key_id, limit, offset], |r| {
                Ok(Alias { name: r.get(0)?, key_id: r.get(1)?, created: Timestamp(r.get(2)?) })
            })?;
            Ok((items, total))
        })
        .await
    }

    async fn insert_access_key(&self, key: &AccessKey) -> StoreResult<()> {
        let k = key.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO access_keys (id, user_name, sealed_secret, enabled, created) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![k.id, k.user, k.sealed_secret, k.enabled, k.created.0],
            )
            .map(drop)
            .map_err(map_err)
        })
        .await
    }

    async fn get_access_key(&self, id: &str) -> StoreResult<Option<AccessKey>> {
        let id = id.to_string();
        self.read(move |c| {
            c.prepare_cached("SELECT id, user_name, sealed_secret, enabled, created FROM access_keys WHERE id = ?1")
                .map_err(backend)?
                .query_row([id], |r| {
                    Ok(AccessKey {
                        id: r.get(0)?,
                        user: r.get(1)?,
                        sealed_secret: r.get(2)?,
                        enabled: r.get(3)?,
                        created: Timestamp(r.get(4)?),
                    })
                })
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn count_access_keys(&self) -> StoreResult<i64> {
        self.read(|c| count(c, "SELECT COUNT(*) FROM access_keys", [])).await
    }

    async fn list_access_keys(&self, user: &str) -> StoreResult<Vec<AccessKey>> {
        let user = user.to_string();
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT id, user_name, sealed_secret, enabled, created FROM access_keys WHERE user_name = ?1 ORDER BY created, id",
                )
                .map_err(backend)?;
            rows(&mut stmt, [user], |r| {
                Ok(AccessKey {
                    id: r.get(0)?,
                    user: r.get(1)?,
                    sealed_secret: r.get(2)?,
                    enabled: r.get(3)?,
                    created: Timestamp(r.get(4)?),
                })
            })
        })
        .await
    }

    async fn set_access_key_enabled(&self, id: &str, enabled: bool) -> StoreResult<bool> {
        let id = id.to_string();
        self.with(move |c| {
            c.execute("UPDATE access_keys SET enabled = ?2 WHERE id = ?1", params![id, enabled]).map(|n| n > 0).map_err(backend)
        })
        .await
    }

    async fn delete_access_key(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_string();
        self.with(move |c| c.execute("DELETE FROM access_keys WHERE id = ?1", [id]).map(|n| n > 0).map_err(backend)).await
    }

    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        let u = user.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO users (name, display_name, comments, created) VALUES (?1, ?2, ?3, ?4)",
                params![u.name, u.display_name, u.comments, u.created.0],
            )
            .map(drop)
            .map_err(map_err)
        })
        .await
    }

    async fn get_user(&self, name: &str) -> StoreResult<Option<User>> {
        let name = name.to_string();
        self.read(move |c| {
            c.query_row("SELECT name, display_name, comments, created FROM users WHERE name = ?1", [name], user_from_row)
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT name, display_name, comments, created FROM users ORDER BY name").map_err(backend)?;
            rows(&mut stmt, [], user_from_row)
        })
        .await
    }

    async fn delete_user(&self, name: &str) -> StoreResult<bool> {
        let name = name.to_string();
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            tx.execute("DELETE FROM access_keys WHERE user_name = ?1", [&name]).map_err(backend)?;
            tx.execute("DELETE FROM user_policies WHERE user_name = ?1", [&name]).map_err(backend)?;
            let n = tx.execute("DELETE FROM users WHERE name = ?1", [&name]).map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(n > 0)
        })
        .await
    }

    async fn insert_policy(&self, policy: &CustomPolicy) -> StoreResult<()> {
        let p = policy.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO policies (name, document, description, created) VALUES (?1, ?2, ?3, ?4)",
                params![p.name, p.document, p.description, p.created.0],
            )
            .map(drop)
            .map_err(map_err)
        })
        .await
    }

    async fn get_policy(&self, name: &str) -> StoreResult<Option<CustomPolicy>> {
        let name = name.to_string();
        self.read(move |c| {
            c.query_row("SELECT name, document, description, created FROM policies WHERE name = ?1", [name], policy_from_row)
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn list_policies(&self) -> StoreResult<Vec<CustomPolicy>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT name, document, description, created FROM policies ORDER BY name").map_err(backend)?;
            rows(&mut stmt, [], policy_from_row)
        })
        .await
    }

    async fn delete_policy(&self, name: &str) -> StoreResult<bool> {
        let name = name.to_string();
        self.with(move |c| c.execute("DELETE FROM policies WHERE name = ?1", [name]).map(|n| n > 0).map_err(backend)).await
    }

    async fn attach_policy(&self, user: &str, policy_type: &str, policy: &str) -> StoreResult<bool> {
        let (u, t, p) = (user.to_string(), policy_type.to_string(), policy.to_string());
        self.with(move |c| {
            c.execute("INSERT OR IGNORE INTO user_policies (user_name, policy_type, policy_name) VALUES (?1, ?2, ?3)", [u, t, p])
                .map(|n| n > 0)
                .map_err(backend)
        })
        .await
    }

    async fn detach_policy(&self, user: &str, policy_type: &str, policy: &str) -> StoreResult<bool> {
        let (u, t, p) = (user.to_string(), policy_type.to_string(), policy.to_string());
        self.with(move |c| {
            c.execute("DELETE FROM user_policies WHERE user_name = ?1 AND policy_type = ?2 AND policy_name = ?3", [u, t, p])
                .map(|n| n > 0)
                .map_err(backend)
        })
        .await
    }

    async fn user_policies(&self, user: &str) -> StoreResult<Vec<(String, String)>> {
        let user = user.to_string();
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached("SELECT policy_type, policy_name FROM user_policies WHERE user_name = ?1 ORDER BY policy_type, policy_name")
                .map_err(backend)?;
            rows(&mut stmt, [user], |r| Ok((r.get(0)?, r.get(1)?)))
        })
        .await
    }

    async fn policy_users(&self, policy_type: &str, policy: &str) -> StoreResult<Vec<String>> {
        let (t, p) = (policy_type.to_string(), policy.to_string());
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached("SELECT user_name FROM user_policies WHERE policy_type = ?1 AND policy_name = ?2 ORDER BY user_name")
                .map_err(backend)?;
            rows(&mut stmt, [t, p], |r| r.get(0))
        })
        .await
    }

    async fn append_audit(&self, records: Arc<[AuditRecord]>, chain: Arc<dyn AuditChain>, journal_mark: Option<String>) -> StoreResult<()> {
        self.with_audit(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
            let last = last_audit_event(&tx)?;
            let head: Option<String> = tx
                .prepare_cached("SELECT value FROM meta WHERE key = ?1")
                .map_err(backend)?
                .query_row([AUDIT_HEAD], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            let (mut seq, mut mac) = chain.resume(head.as_deref(), last);
            {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO audit_events (seq, time, user_name, event_name, resource, result, access_key, event, mac)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    )
                    .map_err(backend)?;
                for r in records.iter() {
                    seq += 1;
                    mac = chain.link(&mac, seq, r);
                    insert
                        .execute(params![seq, r.time, r.user, r.event_name, r.resource, r.result, r.access_key, r.event, mac])
                        .map_err(backend)?;
                }
            }
            let mut set = tx.prepare_cached(SET_META).map_err(backend)?;
            // An append of no events (only a mark) leaves the head as it is, even one that fails
            // verification.
            if !records.is_empty() {
                set.execute(params![AUDIT_HEAD, chain.head(seq, &mac)]).map_err(backend)?;
            }
            if let Some(mark) = journal_mark {
                set.execute(params![AUDIT_JOURNAL_MARK, mark]).map_err(backend)?;
            }
            drop(set);
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn audit_journal_mark(&self) -> StoreResult<Option<String>> {
        self.audit_meta(AUDIT_JOURNAL_MARK).await
    }

    fn audit_journal_path(&self) -> Option<std::path::PathBuf> {
        self.journal.clone()
    }

    fn audit_trail_dir(&self) -> Option<std::path::PathBuf> {
        self.trail_dir.clone()
    }

    async fn append_audit_blocks(&self, blocks: Vec<AuditBlock>, head: String) -> StoreResult<()> {
        self.with_audit(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
            {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO audit_blocks (first_seq, last_seq, min_time, max_time, segment, start, end, last_mac)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )
                    .map_err(backend)?;
                for b in &blocks {
                    insert
                        .execute(params![b.first_seq, b.last_seq, b.min_time, b.max_time, b.segment, b.start, b.end, b.last_mac])
                        .map_err(map_err)?;
                }
            }
            tx.prepare_cached(SET_META).map_err(backend)?.execute(params![AUDIT_HEAD, head]).map_err(backend)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn audit_blocks(&self, after_seq: i64, limit: i64) -> StoreResult<Vec<AuditBlock>> {
        self.with_audit(move |c| {
            let mut stmt = c
                .prepare_cached(&format!("SELECT {BLOCK_COLUMNS} FROM audit_blocks WHERE first_seq > ?1 ORDER BY first_seq LIMIT ?2"))
                .map_err(backend)?;
            rows(&mut stmt, [after_seq, limit], block_from_row)
        })
        .await
    }

    async fn audit_blocks_before(&self, before_seq: i64, from: Option<i64>, to: Option<i64>, limit: i64) -> StoreResult<Vec<AuditBlock>> {
        self.with_audit(move |c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {BLOCK_COLUMNS} FROM audit_blocks WHERE first_seq < ?1 AND max_time >= ?2 AND min_time <= ?3
                     ORDER BY first_seq DESC LIMIT ?4"
                ))
                .map_err(backend)?;
            rows(&mut stmt, [before_seq, from.unwrap_or(i64::MIN), to.unwrap_or(i64::MAX), limit], block_from_row)
        })
        .await
    }

    async fn last_audit_event(&self) -> StoreResult<Option<(i64, Vec<u8>)>> {
        self.with_audit(|c| last_audit_event(c)).await
    }

    /// The main file is locked by this process for as long as it is open (`own`).
    fn sole_writer(&self) -> bool {
        true
    }

    async fn audit_events(&self, after_seq: i64, limit: i64) -> StoreResult<Vec<StoredAuditEvent>> {
        self.with_audit(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT seq, time, user_name, event_name, resource, result, access_key, event, mac FROM audit_events
                     WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )
                .map_err(backend)?;
            rows(&mut stmt, [after_seq, limit], |r| {
                Ok(StoredAuditEvent {
                    seq: r.get(0)?,
                    record: AuditRecord {
                        time: r.get(1)?,
                        user: r.get(2)?,
                        event_name: r.get(3)?,
                        resource: r.get(4)?,
                        result: r.get(5)?,
                        access_key: r.get(6)?,
                        event: r.get(7)?,
                    },
                    mac: r.get(8)?,
                })
            })
        })
        .await
    }

    async fn audit_head(&self) -> StoreResult<Option<String>> {
        self.audit_meta(AUDIT_HEAD).await
    }

    async fn lookup_audit(&self, query: &EventQuery) -> StoreResult<Vec<(i64, String)>> {
        let q = query.clone();
        self.with_audit(move |c| {
            let mut clauses = vec!["1 = 1".to_string()];
            let mut args: Vec<SqlValue> = Vec::new();
            let mut add = |clause: &str, v: SqlValue| {
                args.push(v);
                clauses.push(clause.replace('?', &format!("?{}", args.len())));
            };
            if let Some(t) = q.from {
                add("time >= ?", SqlValue::Integer(t));
            }
            if let Some(t) = q.to {
                add("time <= ?", SqlValue::Integer(t));
            }
            if let Some(b) = q.before {
                add("seq < ?", SqlValue::Integer(b));
            }
            for a in &q.attributes {
                let (column, v) = match a {
                    LookupAttribute::EventName(v) => ("event_name", v),
                    LookupAttribute::UserName(v) => ("user_name", v),
                    LookupAttribute::ResourceName(v) => ("resource", v),
                    LookupAttribute::AccessKeyId(v) => ("access_key", v),
                    LookupAttribute::Result(v) => ("result", v),
                };
                add(&format!("{column} = ?"), SqlValue::Text(v.clone()));
            }
            args.push(SqlValue::Integer(q.max_results));
            let sql =
                format!("SELECT seq, event FROM audit_events WHERE {} ORDER BY seq DESC LIMIT ?{}", clauses.join(" AND "), args.len());
            let mut stmt = c.prepare(&sql).map_err(backend)?;
            rows(&mut stmt, rusqlite::params_from_iter(args.iter()), |r| Ok((r.get(0)?, r.get(1)?)))
        })
        .await
    }

    async fn insert_secret(&self, secret: &Secret, tags: &[Tag], values: &[(&str, &SealedValue)]) -> StoreResult<()> {
        let (s, tags) = (secret.clone(), tags.to_vec());
        let values: Vec<(String, SealedValue)> = values.iter().map(|(id, v)| (id.to_string(), (*v).clone())).collect();
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            tx.execute(
                &format!(
                    "INSERT INTO secrets ({SECRET_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
                ),
                params![
                    s.name,
                    s.secret_type,
                    s.instance_id,
                    s.key_id,
                    s.description,
                    s.extended_config,
                    s.creator,
                    s.created.0,
                    s.updated.0,
                    s.planned_delete.map(|t| t.0),
                    s.policy,
                    s.revision,
                    s.rotation_interval,
                    s.last_rotation.map(|t| t.0),
                    s.next_rotation.map(|t| t.0)
                ],
            )
            .map_err(map_err)?;
            if values.is_empty() {
                return Err(StoreError::Backend("a new secret needs a version".into()));
            }
            for (id, v) in &values {
                insert_version_value(&tx, &s, id, v).map_err(map_err)?;
            }
            write_versions(&tx, &s, None).map_err(map_err)?;
            for t in &tags {
                tx.execute(
                    "INSERT INTO tags (rtype, rid, key, value) VALUES ('secret', ?1, ?2, ?3)",
                    params![s.name, t.tag_key, t.tag_value],
                )
                .map_err(map_err)?;
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn get_secret(&self, name: &str) -> StoreResult<Option<Secret>> {
        let name = name.to_string();
        self.read(move |c| load_secret(c, &name)).await
    }

    async fn get_secret_for_read(&self, name: &str) -> StoreResult<Option<SecretRead>> {
        let name = name.to_string();
        self.read(move |c| {
            let Some(secret) = load_secret(c, &name)? else { return Ok(None) };
            let mut stmt =
                c.prepare_cached("SELECT key, value FROM tags WHERE rtype = 'secret' AND rid = ?1 ORDER BY key").map_err(backend)?;
            let tags = rows(&mut stmt, [&name], |r| Ok(Tag { tag_key: r.get(0)?, tag_value: r.get(1)? }))?;
            let current = match secret.with_stage(sesame_api::secrets::CURRENT) {
                Some(v) => sealed_value(c, &name, &v.id)?.map(|sealed| (v.id.clone(), sealed)),
                None => None,
            };
            Ok(Some(SecretRead { secret, tags, current }))
        })
        .await
    }

    async fn update_secret_rotation(
        &self,
        secret: &Secret,
        new_version: Option<(&str, &SealedValue)>,
        rotation: RotationChange<'_>,
    ) -> StoreResult<()> {
        let s = secret.clone();
        let new_version = new_version.map(|(id, v)| (id.to_string(), v.clone()));
        let rotation: Option<Option<(Rotation, Option<(String, Timestamp, Timestamp)>)>> = match rotation {
            RotationChange::Keep => None,
            RotationChange::Delete => Some(None),
            RotationChange::Put(r) => Some(Some((r.clone(), None))),
            RotationChange::Start { rotation, owner, until, now } => Some(Some((rotation.clone(), Some((owner.to_string(), until, now))))),
        };
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            let changed = tx
                .prepare_cached(
                    "UPDATE secrets SET description = ?2, extended_config = ?3, updated = ?4, planned_delete = ?5, policy = ?6, key_id = ?7, rotation_interval = ?9, last_rotation = ?10, next_rotation = ?11, revision = revision + 1 WHERE name = ?1 AND revision = ?8",
                )
                .and_then(|mut update| {
                    update.execute(params![
                        s.name,
                        s.description,
                        s.extended_config,
                        s.updated.0,
                        s.planned_delete.map(|t| t.0),
                        s.policy,
                        s.key_id,
                        s.revision,
                        s.rotation_interval,
                        s.last_rotation.map(|t| t.0),
                        s.next_rotation.map(|t| t.0)
                    ])
                })
                .map_err(map_err)?;
            if changed == 0 {
                return Err(StoreError::Conflict);
            }
            write_versions(&tx, &s, new_version.as_ref().map(|(id, v)| (id.as_str(), v))).map_err(map_err)?;
            let change = match &rotation {
                None => RotationChange::Keep,
                Some(None) => RotationChange::Delete,
                Some(Some((r, None))) => RotationChange::Put(r),
                Some(Some((r, Some((owner, until, now))))) => RotationChange::Start { rotation: r, owner, until: *until, now: *now },
            };
            write_rotation(&tx, change, &s.name)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn get_rotation(&self, secret: &str) -> StoreResult<Option<Rotation>> {
        let secret = secret.to_string();
        self.read(move |c| {
            let row = c
                .query_row(
                    "SELECT secret, version_id, step, started, attempts, last_error, next_retry FROM rotations WHERE secret = ?1",
                    [&secret],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, i64>(4)?,
                            r.get::<_, String>(5)?,
                            r.get::<_, i64>(6)?,
                        ))
                    },
                )
                .optional()
                .map_err(backend)?;
            row.map(|(secret, version_id, step, started, attempts, last_error, next_retry)| {
                Ok(Rotation {
                    step: RotationStep::parse(&step)
                        .ok_or_else(|| StoreError::Backend(format!("rotation of {secret} has unknown step {step:?}")))?,
                    secret,
                    version_id,
                    started: Timestamp(started),
                    attempts,
                    last_error,
                    next_retry: Timestamp(next_retry),
                })
            })
            .transpose()
        })
        .await
    }

    async fn put_rotation(&self, rotation: &Rotation) -> StoreResult<()> {
        let r = rotation.clone();
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            write_rotation(&tx, RotationChange::Put(&r), &r.secret)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn lease_rotation(&self, secret: &str, owner: &str, until: Timestamp, now: Timestamp) -> StoreResult<bool> {
        let (secret, owner) = (secret.to_string(), owner.to_string());
        self.with(move |c| {
            c.execute(
                "UPDATE rotations SET lease_owner = ?2, lease_until = ?3 WHERE secret = ?1 AND (lease_until <= ?4 OR lease_owner = ?2)",
                params![secret, owner, until.0, now.0],
            )
            .map(|n| n > 0)
            .map_err(backend)
        })
        .await
    }

    async fn release_rotation(&self, secret: &str, owner: &str) -> StoreResult<()> {
        let (secret, owner) = (secret.to_string(), owner.to_string());
        self.with(move |c| {
            c.execute("UPDATE rotations SET lease_until = 0 WHERE secret = ?1 AND lease_owner = ?2", [secret, owner])
                .map(drop)
                .map_err(backend)
        })
        .await
    }

    async fn rotations_due(&self, now: Timestamp) -> StoreResult<Vec<String>> {
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT r.secret FROM rotations r JOIN secrets s ON s.name = r.secret WHERE r.next_retry <= ?1 AND s.planned_delete IS NULL
                     UNION SELECT name FROM secrets WHERE next_rotation <= ?1 AND rotation_interval IS NOT NULL AND planned_delete IS NULL",
                )
                .map_err(backend)?;
            rows(&mut stmt, [now.0], |r| r.get(0))
        })
        .await
    }

    async fn get_sealed_value(&self, name: &str, version_id: &str) -> StoreResult<Option<SealedValue>> {
        let (name, version_id) = (name.to_string(), version_id.to_string());
        self.read(move |c| sealed_value(c, &name, &version_id)).await
    }

    async fn delete_secret(&self, name: &str) -> StoreResult<()> {
        self.delete_tagged("secret", "DELETE FROM secrets WHERE name = ?1", name).await
    }

    async fn list_secrets(&self, filters: &[SecretFilter], offset: i64, limit: i64) -> StoreResult<(Vec<Secret>, i64)> {
        let key = (filters.to_vec(), offset, limit);
        let writes = self.writes.load(Ordering::Acquire);
        if let Some(page) = self.cached_listings().get(writes, &key) {
            return Ok((page.0.clone(), page.1));
        }
        let page = Arc::new(self.read_listing(filters, offset, limit).await?);
        self.cached_listings().put(writes, self.writes.load(Ordering::Acquire), key, page.clone());
        Ok((page.0.clone(), page.1))
    }

    async fn secrets_due(&self, now: Timestamp) -> StoreResult<Vec<String>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached("SELECT name FROM secrets WHERE planned_delete <= ?1").map_err(backend)?;
            rows(&mut stmt, [now.0], |r| r.get(0))
        })
        .await
    }

    async fn get_tags(&self, rtype: &str, id: &str) -> StoreResult<Vec<Tag>> {
        let (rtype, id) = (rtype.to_string(), id.to_string());
        self.read(move |c| {
            let mut stmt = c.prepare_cached("SELECT key, value FROM tags WHERE rtype = ?1 AND rid = ?2 ORDER BY key").map_err(backend)?;
            rows(&mut stmt, [rtype, id], |r| Ok(Tag { tag_key: r.get(0)?, tag_value: r.get(1)? }))
        })
        .await
    }

    async fn add_tags(&self, rtype: &str, id: &str, tags: &[Tag], max: usize) -> StoreResult<bool> {
        let (rtype, id, tags) = (rtype.to_string(), id.to_string(), tags.to_vec());
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            for t in &tags {
                tx.execute(
                    "INSERT INTO tags (rtype, rid, key, value) VALUES (?1, ?2, ?3, ?4) ON CONFLICT(rtype, rid, key) DO UPDATE SET value = excluded.value",
                    params![rtype, id, t.tag_key, t.tag_value],
                )
                .map_err(map_err)?;
            }
            let n: i64 = tx.query_row("SELECT COUNT(*) FROM tags WHERE rtype = ?1 AND rid = ?2", [&rtype, &id], |r| r.get(0)).map_err(backend)?;
            if n as usize > max {
                return Ok(false); // dropping the transaction rolls it back
            }
            tx.commit().map_err(backend)?;
            Ok(true)
        })
        .await
    }

    async fn remove_tags(&self, rtype: &str, id: &str, keys: Option<&[String]>) -> StoreResult<()> {
        let (rtype, id, keys) = (rtype.to_string(), id.to_string(), keys.map(<[String]>::to_vec));
        self.with(move |c| {
            match keys {
                None => c.execute("DELETE FROM tags WHERE rtype = ?1 AND rid = ?2", [&rtype, &id]).map_err(backend)?,
                Some(keys) => {
                    let tx = c.transaction().map_err(backend)?;
                    for k in &keys {
                        tx.execute("DELETE FROM tags WHERE rtype = ?1 AND rid = ?2 AND key = ?3", [&rtype, &id, k]).map_err(backend)?;
                    }
                    tx.commit().map_err(backend)?;
                    0
                }
            };
            Ok(())
        })
        .await
    }

    async fn list_tags(&self, rtype: &str, ids: Option<&[String]>) -> StoreResult<Vec<(String, Tag)>> {
        let (rtype, ids) = (rtype.to_string(), ids.map(<[String]>::to_vec));
        self.read(move |c| {
            let mut stmt = c.prepare_cached("SELECT rid, key, value FROM tags WHERE rtype = ?1 ORDER BY rid, key").map_err(backend)?;
            let rows: Vec<(String, Tag)> =
                rows(&mut stmt, [&rtype], |r| Ok((r.get(0)?, Tag { tag_key: r.get(1)?, tag_value: r.get(2)? })))?;
            Ok(match ids {
                None => rows,
                Some(ids) => rows.into_iter().filter(|(rid, _)| ids.contains(rid)).collect(),
            })
        })
        .await
    }

    async fn insert_db_instance(&self, db: &DbInstance) -> StoreResult<()> {
        let d = db.clone();
        self.with(move |c| {
            c.execute(
                &format!("INSERT INTO db_instances ({DB_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"),
                params![
                    d.id,
                    d.engine,
                    d.host,
                    d.port,
                    d.admin_user,
                    d.sealed_password,
                    d.admin_database,
                    d.tls,
                    d.account_host,
                    d.description,
                    d.key_id,
                    d.created.0,
                    d.revision
                ],
            )
            .map(drop)
            .map_err(map_err)
        })
        .await
    }

    async fn get_db_instance(&self, id: &str) -> StoreResult<Option<DbInstance>> {
        let id = id.to_string();
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {DB_COLUMNS} FROM db_instances WHERE id = ?1"))
                .map_err(backend)?
                .query_row([id], db_from_row)
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn update_db_instance(&self, db: &DbInstance) -> StoreResult<()> {
        let d = db.clone();
        self.with(move |c| {
            let n = c
                .execute(
                    "UPDATE db_instances SET host = ?2, port = ?3, admin_user = ?4, sealed_password = ?5, admin_database = ?6, tls = ?7, account_host = ?8, description = ?9, revision = revision + 1 WHERE id = ?1 AND revision = ?10",
                    params![d.id, d.host, d.port, d.admin_user, d.sealed_password, d.admin_database, d.tls, d.account_host, d.description, d.revision],
                )
                .map_err(map_err)?;
            if n == 0 { Err(StoreError::Conflict) } else { Ok(()) }
        })
        .await
    }

    async fn delete_db_instance(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_string();
        self.with(move |c| c.execute("DELETE FROM db_instances WHERE id = ?1", [id]).map(|n| n > 0).map_err(backend)).await
    }

    async fn list_db_instances(&self, engine: Option<&str>, offset: i64, limit: i64) -> StoreResult<(Vec<DbInstance>, i64)> {
        let engine = engine.map(str::to_string);
        self.read(move |c| {
            let total = count(c, "SELECT COUNT(*) FROM db_instances WHERE ?1 IS NULL OR engine = ?1", [&engine])?;
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {DB_COLUMNS} FROM db_instances WHERE ?1 IS NULL OR engine = ?1 ORDER BY created, rowid LIMIT ?2 OFFSET ?3"
                ))
                .map_err(backend)?;
            let items = rows(&mut stmt, params![engine, limit, offset], db_from_row)?;
            Ok((items, total))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_listings_are_kept_only_while_nothing_was_written_and_stay_bounded() {
        let mut l = Listings::default();
        let key = |n: usize| (vec![SecretFilter::Name(vec![format!("n{n}")])], 0, 10);
        let page = || Arc::new((Vec::new(), 0));
        l.put(3, 4, key(0), page());
        assert!(l.get(4, &key(0)).is_none(), "read before a write that landed during the read");
        l.put(4, 4, key(0), page());
        assert!(l.get(4, &key(0)).is_some());
        assert!(l.get(5, &key(0)).is_none(), "a write since");
        for n in 0..LISTINGS + 10 {
            l.put(5, 5, key(n), page());
        }
        assert!(l.pages.len() <= LISTINGS, "{} listings kept", l.pages.len());
    }

    /// What SQLite plans for a ListSecrets with `filter`: its count and its page.
    fn plans(c: &Connection, filter: SecretFilter) -> Vec<String> {
        let (clause, mut params) = secret_filter_sql(c, &[filter]).unwrap();
        let (count_sql, page_sql) = filtered_listing_sql(&clause, params.len());
        let mut details = Vec::new();
        let mut explain = |sql: &str, params: &[SqlValue]| {
            let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let rows = stmt.query_map(rusqlite::params_from_iter(params.iter()), |r| r.get::<_, String>(3)).unwrap();
            details.extend(rows.map(Result::unwrap));
        };
        explain(&count_sql, &params);
        params.extend([SqlValue::Integer(100), SqlValue::Integer(0)]);
        explain(&page_sql, &params);
        details
    }

    /// A step of a query plan that reads every secret or tag (the partial index of the names too
    /// short for a trigram holds only those).
    fn reads_every_row(step: &str) -> bool {
        (step.starts_with("SCAN secrets") && !step.contains("secrets_short_names")) || step.starts_with("SCAN tags")
    }

    #[test]
    fn the_filters_dms_and_consoles_use_are_served_by_indexes() {
        let c = super::name_filter_tests::store();
        // More names holding `app` than the index is worth reading for.
        for n in 0..=FEW_CANDIDATES {
            super::name_filter_tests::add(&c, &format!("app/{n:04}"));
        }
        for name in ["app/db", "db", "x"] {
            super::name_filter_tests::add(&c, name);
        }
        let v = |s: &str| vec![s.to_string()];
        for filter in [
            SecretFilter::Name(v("app/db")),
            SecretFilter::Name(v("db")),
            SecretFilter::Name(v("x")),
            SecretFilter::Name(v("zz")),
            SecretFilter::Description(v("frontend")),
            SecretFilter::TagKey(v("env")),
            SecretFilter::TagValue(v("prod")),
            SecretFilter::DbInstance(v("rm-1")),
            SecretFilter::Type(v("Rds")),
            SecretFilter::Creator(v("ops")),
            SecretFilter::Instance(v("kst-1")),
        ] {
            let what = format!("{filter:?}");
            let plans = plans(&c, filter);
            assert!(plans.iter().all(|p| !reads_every_row(p)), "{what} reads every row: {plans:?}");
        }
        // The check can fail: a value most names hold reads every row, as does one of one or two
        // characters that too many trigrams hold.
        assert!(plans(&c, SecretFilter::Name(v("app"))).iter().any(|p| reads_every_row(p)));
        assert!(plans(&c, SecretFilter::Name(v("0"))).iter().any(|p| reads_every_row(p)));
    }
}

#[cfg(test)]
mod name_filter_tests {
    use super::*;
    use std::collections::BTreeSet;

    pub(super) fn store() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        migrate(&mut c).unwrap();
        // The rows here name no KMS instance or key: only what a listing by name reads.
        c.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        c
    }

    /// A bare `secrets` row with this name: what a listing by name reads.
    pub(super) fn add(c: &Connection, name: &str) {
        c.execute(
            "INSERT INTO secrets (name, secret_type, instance_id, key_id, description, creator, created, updated, policy, revision)
             VALUES (?1, 'Generic', 'kst-1', 'key-1', '', 'admin', 0, 0, '', 0)",
            [name],
        )
        .unwrap();
    }

    /// The trigrams the index is asked for, if it is.
    fn asked(c: &Connection, value: &str) -> BTreeSet<String> {
        match NamePlan::choose(c, value).unwrap() {
            NamePlan::Index { query: Some(q), .. } => q.split(" AND ").map(str::to_string).collect(),
            _ => BTreeSet::new(),
        }
    }

    fn listed(c: &Connection, value: &str) -> BTreeSet<String> {
        let (clause, params) = secret_filter_sql(c, &[SecretFilter::Name(vec![value.to_string()])]).unwrap();
        page(c, &clause, params)
    }

    /// The names a plan finds for `value`, whichever the store's counts would choose.
    fn listed_by(c: &Connection, plan: NamePlan, value: &str) -> BTreeSet<String> {
        let mut params = Vec::new();
        let clause = plan.clause(value, &mut params);
        page(c, &clause, params)
    }

    fn page(c: &Connection, clause: &str, mut params: Vec<SqlValue>) -> BTreeSet<String> {
        let (_, page) = filtered_listing_sql(clause, params.len());
        params.extend([SqlValue::Integer(1000), SqlValue::Integer(0)]);
        let mut stmt = c.prepare(&page).unwrap();
        let rows = stmt.query_map(rusqlite::params_from_iter(params.iter()), |r| r.get::<_, String>("name")).unwrap();
        rows.map(Result::unwrap).collect()
    }

    #[test]
    fn a_name_filter_asks_the_trigram_index_for_the_values_two_rarest_trigrams() {
        let c = store();
        for n in 0..20 {
            add(&c, &format!("rds/prod-{n:02}"));
        }
        add(&c, "rds/prod-zq");
        // Every name holds `rds`, `ds/`, ... `od-`; only one holds `d-z` and `-zq`.
        assert_eq!(asked(&c, "rds/prod-zq"), BTreeSet::from(["\"-zq\"".to_string(), "\"d-z\"".to_string()]));
        assert_eq!(asked(&c, "RDS/PROD-ZQ"), asked(&c, "rds/prod-zq"), "counted as LIKE compares, without case");
        // A trigram no name holds: no name can hold the value, and nothing is read.
        assert_eq!(NamePlan::choose(&c, "rds/x").unwrap(), NamePlan::Nothing);
        assert!(listed(&c, "rds/x").is_empty());
        let count = |t: &str| c.query_row("SELECT names FROM name_trigrams WHERE trigram = ?1", [t], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!((count("rds"), count("-zq")), (21, 1));
        c.execute("DELETE FROM secrets WHERE name = 'rds/prod-zq'", []).unwrap();
        assert_eq!((count("rds"), count("-zq")), (20, 0), "a deleted name is no longer counted");
    }

    #[test]
    fn a_name_filter_finds_exactly_the_names_that_contain_the_value_as_like_compares() {
        let c = store();
        let names =
            ["rds/prod-01", "rds/prod-02", "rds/Prod-zq", "app/\"quoted\"", "web_50%", "ünï/名前-db", "aaaa", "aaab", "db", "x", "名"];
        for n in names {
            add(&c, n);
        }
        let mut values: BTreeSet<String> = BTreeSet::new();
        for n in names {
            let chars: Vec<char> = n.chars().collect();
            for len in 1..=chars.len().min(7) {
                for start in 0..=chars.len() - len {
                    let v: String = chars[start..start + len].iter().collect();
                    values.insert(v.to_ascii_uppercase());
                    values.insert(v);
                }
            }
        }
        values.extend(["zzz", "rds/prod-03", "aaaaa", "d-z\"", "%50", "\"\"\"", "ÜNÏ"].map(str::to_string));
        for v in &values {
            // LIKE folds ASCII letters only.
            let expected: BTreeSet<String> =
                names.iter().filter(|n| n.to_ascii_lowercase().contains(&v.to_ascii_lowercase())).map(|n| n.to_string()).collect();
            assert_eq!(listed(&c, v), expected, "names containing {v:?}");
            // A larger store may read every row instead: the same names.
            assert_eq!(listed_by(&c, NamePlan::Scan, v), expected, "names containing {v:?}, every row read");
        }
    }

    #[test]
    fn a_name_filter_reads_every_row_only_when_the_index_would_find_most_of_them() {
        let c = store();
        for n in 0..=FEW_CANDIDATES {
            add(&c, &format!("app/{n:04}"));
        }
        for name in ["app/db", "db", "x"] {
            add(&c, name);
        }
        let plan = |v: &str| NamePlan::choose(&c, v).unwrap();
        assert_eq!(plan("app"), NamePlan::Scan, "every name holds it");
        assert_eq!(plan("0"), NamePlan::Scan, "too many trigrams hold it");
        assert!(matches!(plan("app/0001"), NamePlan::Index { query: Some(_), short_names: false }), "{:?}", plan("app/0001"));
        assert_eq!(plan("app/zz"), NamePlan::Nothing, "no name holds `p/z`");
        assert_eq!(
            plan("DB"),
            NamePlan::Index { query: Some("\"/db\"".into()), short_names: true },
            "a short value: the trigrams holding it, and the names too short for a trigram"
        );
        assert_eq!(plan("qq"), NamePlan::Index { query: None, short_names: true }, "no trigram holds it");
        assert!(listed_by(&c, NamePlan::Index { query: None, short_names: false }, "db").is_empty(), "an index plan with nowhere to look");
        assert_eq!(listed(&c, "DB"), BTreeSet::from(["app/db".to_string(), "db".to_string()]));
        assert_eq!(listed(&c, "x"), BTreeSet::from(["x".to_string()]));
        let (clause, params) = secret_filter_sql(&c, &[SecretFilter::Name(vec!["app".into()])]).unwrap();
        let counted: i64 =
            c.query_row(&filtered_listing_sql(&clause, params.len()).0, rusqlite::params_from_iter(params.iter()), |r| r.get(0)).unwrap();
        assert_eq!(counted, FEW_CANDIDATES + 2, "every row read, every match counted");
        // The counts follow the store: with few names holding `app`, the index serves it again.
        c.execute("DELETE FROM secrets WHERE name LIKE 'app/0%'", []).unwrap();
        assert!(matches!(plan("app"), NamePlan::Index { .. }), "{:?}", plan("app"));
    }

    #[test]
    fn a_store_made_before_the_counts_has_its_names_counted_when_it_opens() {
        let mut c = Connection::open_in_memory().unwrap();
        let before = MIGRATIONS.iter().position(|m| m.contains("CREATE TABLE name_trigrams")).unwrap();
        for sql in &MIGRATIONS[..before] {
            c.execute_batch(sql).unwrap();
        }
        c.pragma_update(None, "user_version", before as i64).unwrap();
        c.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        for name in ["rds/a-1", "rds/a-2", "app/b"] {
            add(&c, name);
        }
        migrate(&mut c).unwrap();
        let count = |t: &str| c.query_row("SELECT names FROM name_trigrams WHERE trigram = ?1", [t], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!((count("rds"), count("a-1"), count("app")), (2, 1, 1));
        assert_eq!(listed(&c, "RDS/A"), BTreeSet::from(["rds/a-1".to_string(), "rds/a-2".to_string()]));
    }
}
