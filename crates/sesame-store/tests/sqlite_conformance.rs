#![allow(clippy::unwrap_used)]

use sesame_store::SqliteStore;
use std::path::PathBuf;

/// A new directory and the path of a store file in it.
fn fresh_store_path() -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("sesame-store-{}", sesame_crypto::random::id_suffix(10).unwrap()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sesame.db");
    (dir, path)
}

#[tokio::test]
async fn sqlite_in_memory_passes_the_conformance_suite() {
    sesame_store::conformance::run(&SqliteStore::open_in_memory().unwrap()).await;
}

#[tokio::test]
async fn sqlite_file_passes_the_conformance_suite_and_reopens() {
    let (dir, path) = fresh_store_path();
    {
        let store = SqliteStore::open(&path).unwrap();
        sesame_store::conformance::run(&store).await;
    }
    // Reopening runs no migration twice and keeps the data.
    let store = sesame_store::open(&format!("sqlite://{}", path.display())).unwrap();
    assert!(store.get_key("key-a").await.unwrap().is_some());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// One server owns a file store: a second open of the same file fails at once, saying why, and
/// works again once the first owner is gone.
#[tokio::test]
async fn a_file_store_has_one_owner_at_a_time() {
    let (dir, path) = fresh_store_path();
    let first = SqliteStore::open(&path).unwrap();
    let err = SqliteStore::open(&path).err().expect("a second owner is refused").to_string();
    assert!(err.contains("in use by another process"), "{err}");
    let other = rusqlite::Connection::open(&path).unwrap();
    other.busy_timeout(std::time::Duration::ZERO).unwrap();
    assert!(other.query_row("SELECT COUNT(*) FROM secrets", [], |r| r.get::<_, i64>(0)).is_err(), "nor can anyone read it aside");
    drop(other);
    drop(first);
    // Reopened with nothing to migrate (no write at open), it still holds the file.
    let again = SqliteStore::open(&path).unwrap();
    assert!(SqliteStore::open(&path).is_err(), "the reopened store holds the file too");
    drop(again);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unknown_store_schemes_are_refused() {
    assert!(sesame_store::open("mysql://x").is_err());
}

/// A store from before the audit trail had its own file keeps its trail: the first open moves
/// the events and the head over, and the main file keeps no copy.
#[tokio::test]
async fn an_older_store_keeps_its_audit_trail_when_it_moves_to_its_own_file() {
    use sesame_core::model::{AuditChain, AuditRecord};
    use sesame_core::store::Store;
    use std::sync::Arc;
    struct Plain;
    impl AuditChain for Plain {
        fn link(&self, prev: &[u8], seq: i64, _: &AuditRecord) -> Vec<u8> {
            [prev, format!("|{seq}").as_bytes()].concat()
        }
        fn head(&self, seq: i64, mac: &[u8]) -> String {
            format!("{seq}:{}", String::from_utf8_lossy(mac))
        }
        fn resume(&self, _: Option<&str>, last: Option<(i64, Vec<u8>)>) -> (i64, Vec<u8>) {
            last.unwrap_or_default()
        }
    }
    let (dir, path) = fresh_store_path();
    let record = |n: i64| AuditRecord {
        time: n,
        user: "u".into(),
        event_name: "E".into(),
        resource: String::new(),
        result: "Success".into(),
        access_key: "ak".into(),
        event: format!("{{\"n\":{n}}}"),
    };
    {
        let store = SqliteStore::open(&path).unwrap();
        store.append_audit((1..=3).map(record).collect(), Arc::new(Plain), None).await.unwrap();
    }
    // Put the trail back where version 5 of the schema kept it, as an older server left it.
    let trail = sesame_store::sqlite::audit_path(&path);
    {
        let main = rusqlite::Connection::open(&path).unwrap();
        main.execute("ATTACH DATABASE ?1 AS t", [trail.to_string_lossy()]).unwrap();
        main.execute_batch(
            "CREATE TABLE audit_events AS SELECT * FROM t.audit_events;
             INSERT INTO meta SELECT key, value FROM t.meta WHERE key = 'audit_head';
             DETACH DATABASE t;",
        )
        .unwrap();
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", trail.display()));
    }
    let store = SqliteStore::open(&path).unwrap();
    let events = store.audit_events(0, 10).await.unwrap();
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3], "the events moved");
    assert_eq!(events[2].mac, b"|1|2|3".to_vec());
    assert_eq!(store.audit_head().await.unwrap().as_deref(), Some("3:|1|2|3"), "the head moved");
    assert_eq!(store.meta_get("audit_head").await.unwrap(), None, "no head is left in the main file");
    store.append_audit(vec![record(4)].into(), Arc::new(Plain), None).await.unwrap();
    assert_eq!(store.audit_events(3, 10).await.unwrap()[0].mac, b"|1|2|3|4".to_vec(), "the chain goes on");
    drop(store);
    let main = rusqlite::Connection::open(&path).unwrap();
    let left: i64 = main.query_row("SELECT COUNT(*) FROM sqlite_master WHERE name = 'audit_events'", [], |r| r.get(0)).unwrap();
    assert_eq!(left, 0, "the main file keeps no copy of the trail");
    std::fs::remove_dir_all(&dir).unwrap();
}
