//! The conformance suite every `Store` backend must pass. Each check panics with a message
//! naming the contract it found broken; backends' tests call [`run`].

// A test suite: a failed call is a failed check, so unwrap is the point here.
#![allow(clippy::unwrap_used)]

use sesame_api::Timestamp;
use sesame_core::model::{AccessKey, Alias, Key, KeyState, KeyVersion, KmsInstance};
use sesame_core::{Store, StoreError};

fn key(id: &str, instance: &str, t: i64) -> Key {
    Key {
        id: id.into(),
        instance_id: instance.into(),
        description: "d".into(),
        state: KeyState::Enabled,
        creator: "admin".into(),
        created: Timestamp(t),
        delete_date: None,
        primary_version: "v1".into(),
        rotation_interval: None,
        last_rotation: Timestamp(t),
        next_rotation: None,
        versions: vec![KeyVersion { id: "v1".into(), created: Timestamp(t), wrapped: vec![1, 2, 3] }],
        revision: 0,
    }
}

/// Runs every check against an empty store.
pub async fn run(store: &dyn Store) {
    meta(store).await;
    keys(store).await;
    aliases(store).await;
    access_keys(store).await;
}

async fn meta(store: &dyn Store) {
    assert_eq!(store.meta_get("m").await.unwrap(), None, "absent meta reads as None");
    store.meta_set("m", "1").await.unwrap();
    store.meta_set("m", "2").await.unwrap();
    assert_eq!(store.meta_get("m").await.unwrap().as_deref(), Some("2"), "meta_set overwrites");
}

async fn keys(store: &dyn Store) {
    store.insert_instance(&KmsInstance { id: "kst-1".into(), created: Timestamp(1) }).await.unwrap();
    assert!(store.get_instance("kst-1").await.unwrap().is_some());
    assert_eq!(store.list_instances(0, 10).await.unwrap().1, 1);

    let k = key("key-a", "kst-1", 10);
    store.insert_key(&k).await.unwrap();
    assert!(matches!(store.insert_key(&k).await, Err(StoreError::Duplicate)), "duplicate key ids are refused");
    assert_eq!(store.get_key("key-a").await.unwrap().as_ref(), Some(&k), "a key reads back as written");
    assert_eq!(store.get_key("key-none").await.unwrap(), None);

    // Optimistic concurrency: the first writer wins, the second gets Conflict.
    let mut first = k.clone();
    first.state = KeyState::Disabled;
    first.versions.push(KeyVersion { id: "v2".into(), created: Timestamp(11), wrapped: vec![4] });
    first.primary_version = "v2".into();
    store.update_key(&first).await.unwrap();
    let mut stale = k.clone();
    stale.description = "lost".into();
    assert!(matches!(store.update_key(&stale).await, Err(StoreError::Conflict)), "a stale revision conflicts");
    let read = store.get_key("key-a").await.unwrap().unwrap();
    assert_eq!(read.revision, 1);
    assert_eq!(read.state, KeyState::Disabled);
    assert_eq!(read.description, "d", "a conflicting update changes nothing");
    assert_eq!(read.versions.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(), ["v1", "v2"], "versions are kept in order");

    for (i, id) in ["key-b", "key-c"].iter().enumerate() {
        store.insert_key(&key(id, "kst-1", 20 + i as i64)).await.unwrap();
    }
    let (page, total) = store.list_keys(1, 1).await.unwrap();
    assert_eq!((page, total), (vec!["key-b".to_string()], 3), "keys list oldest first, paged");

    let mut due = store.get_key("key-b").await.unwrap().unwrap();
    due.state = KeyState::PendingDeletion;
    due.delete_date = Some(Timestamp(100));
    store.update_key(&due).await.unwrap();
    let mut rot = store.get_key("key-c").await.unwrap().unwrap();
    rot.next_rotation = Some(Timestamp(200));
    store.update_key(&rot).await.unwrap();
    let mut d = store.keys_due(Timestamp(150)).await.unwrap();
    d.sort();
    assert_eq!(d, vec!["key-b".to_string()]);
    let mut d = store.keys_due(Timestamp(200)).await.unwrap();
    d.sort();
    assert_eq!(d, vec!["key-b".to_string(), "key-c".to_string()]);
}

async fn aliases(store: &dyn Store) {
    let a = Alias { name: "alias/x".into(), key_id: "key-a".into(), created: Timestamp(1) };
    store.insert_alias(&a).await.unwrap();
    assert!(matches!(store.insert_alias(&a).await, Err(StoreError::Duplicate)), "duplicate aliases are refused");
    store.insert_alias(&Alias { name: "alias/y".into(), key_id: "key-b".into(), created: Timestamp(2) }).await.unwrap();
    assert_eq!(store.list_aliases(None, 0, 10).await.unwrap().1, 2);
    assert_eq!(store.list_aliases(Some("key-a"), 0, 10).await.unwrap().0, vec![a.clone()]);
    assert!(store.update_alias("alias/x", "key-c").await.unwrap());
    assert!(!store.update_alias("alias/none", "key-c").await.unwrap());
    assert_eq!(store.get_alias("alias/x").await.unwrap().unwrap().key_id, "key-c");
    store.delete_key("key-c").await.unwrap();
    assert_eq!(store.get_key("key-c").await.unwrap(), None);
    assert_eq!(store.get_alias("alias/x").await.unwrap(), None, "deleting a key removes its aliases");
    assert!(store.delete_alias("alias/y").await.unwrap());
    assert!(!store.delete_alias("alias/y").await.unwrap());
}

async fn access_keys(store: &dyn Store) {
    assert_eq!(store.count_access_keys().await.unwrap(), 0);
    let k = AccessKey { id: "LTAI1".into(), user: "admin".into(), sealed_secret: vec![9; 40], enabled: true, created: Timestamp(5) };
    store.insert_access_key(&k).await.unwrap();
    assert!(matches!(store.insert_access_key(&k).await, Err(StoreError::Duplicate)));
    assert_eq!(store.get_access_key("LTAI1").await.unwrap(), Some(k));
    assert_eq!(store.count_access_keys().await.unwrap(), 1);
}
