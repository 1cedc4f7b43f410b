#![allow(clippy::unwrap_used)]

use sesame_store::SqliteStore;

#[tokio::test]
async fn sqlite_in_memory_passes_the_conformance_suite() {
    sesame_store::conformance::run(&SqliteStore::open_in_memory().unwrap()).await;
}

#[tokio::test]
async fn sqlite_file_passes_the_conformance_suite_and_reopens() {
    let dir = std::env::temp_dir().join(format!("sesame-store-{}", sesame_crypto::random::id_suffix(10).unwrap()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sesame.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        sesame_store::conformance::run(&store).await;
    }
    // Reopening runs no migration twice and keeps the data.
    let store = sesame_store::open(&format!("sqlite://{}", path.display())).unwrap();
    assert!(store.get_key("key-a").await.unwrap().is_some());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unknown_store_schemes_are_refused() {
    assert!(sesame_store::open("mysql://x").is_err());
}
