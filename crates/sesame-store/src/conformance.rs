//! The conformance suite every `Store` backend must pass. Each check panics with a message
//! naming the contract it found broken; backends' tests call [`run`].

// A test suite: a failed call is a failed check, so unwrap is the point here.
#![allow(clippy::unwrap_used)]

use sesame_api::Timestamp;
use sesame_api::ram::{EventQuery, LookupAttribute};
use sesame_api::secrets::{SecretFilter, Tag};
use sesame_core::model::{
    AccessKey, Alias, AuditBlock, AuditChain, AuditRecord, CustomPolicy, DbInstance, Key, KeyState, KeyVersion, KmsInstance, Rotation,
    RotationChange, RotationStep, SealedValue, Secret, SecretVersion, User,
};
use sesame_core::{Store, StoreError};
use std::sync::Arc;

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
    secrets(store).await;
    tags(store).await;
    db_instances(store).await;
    rotations(store).await;
    identities(store).await;
    audit(store).await;
    deep_pages(store).await;
    listings_follow_writes(store).await;
}

/// A listing asked again answers the same, and after each kind of write what the write made,
/// whatever a backend keeps between the two.
async fn listings_follow_writes(store: &dyn Store) {
    let by = |f: SecretFilter| vec![f];
    let names = |page: (Vec<Secret>, i64)| (page.0.into_iter().map(|s| s.name).collect::<Vec<_>>(), page.1);
    let listing = |filters: Vec<SecretFilter>| async move { names(store.list_secrets(&filters, 0, 10).await.unwrap()) };
    let name = || by(SecretFilter::Name(vec!["cached/".into()]));
    let tag = || by(SecretFilter::TagKey(vec!["cached-tag".into()]));
    let described = || by(SecretFilter::Description(vec!["renamed text".into()]));
    assert_eq!(listing(name()).await, (vec![], 0));
    store.insert_secret(&secret("cached/a", 900), &[], &[("v1", &sealed(1))]).await.unwrap();
    assert_eq!(listing(name()).await, (vec!["cached/a".to_string()], 1), "a new secret");
    assert_eq!(listing(name()).await, (vec!["cached/a".to_string()], 1), "asked again");
    let (all, total) = listing(vec![]).await;
    assert!(all.contains(&"cached/a".to_string()));
    store.insert_secret(&secret("cached/b", 901), &[], &[("v1", &sealed(1))]).await.unwrap();
    assert_eq!(listing(vec![]).await.1, total + 1, "the unfiltered listing counts it too");
    assert_eq!(listing(tag()).await, (vec![], 0));
    let t = Tag { tag_key: "cached-tag".into(), tag_value: "x".into() };
    assert!(store.add_tags("secret", "cached/b", &[t], 3).await.unwrap());
    assert_eq!(listing(tag()).await, (vec!["cached/b".to_string()], 1), "a new tag");
    store.remove_tags("secret", "cached/b", None).await.unwrap();
    assert_eq!(listing(tag()).await, (vec![], 0), "a removed tag");
    assert_eq!(listing(described()).await, (vec![], 0));
    let mut b = store.get_secret("cached/b").await.unwrap().unwrap();
    b.description = "renamed text".into();
    store.update_secret(&b, None).await.unwrap();
    assert_eq!(listing(described()).await, (vec!["cached/b".to_string()], 1), "a changed description");
    let page = store.list_secrets(&name(), 0, 10).await.unwrap().0;
    assert_eq!(page[1].revision, b.revision + 1, "a listing shows the secret as the write left it");
    store.delete_secret("cached/a").await.unwrap();
    store.delete_secret("cached/b").await.unwrap();
    assert_eq!(listing(name()).await, (vec![], 0), "deleted secrets");
}

/// Pages deep in a long listing are the same rows as the same stretch of the whole listing,
/// also after rows leave the middle and arrive out of order.
async fn deep_pages(store: &dyn Store) {
    let names = |v: Vec<Secret>| v.into_iter().map(|s| s.name).collect::<Vec<_>>();
    let check = |label: &'static str| async move {
        let (all, total) = store.list_secrets(&[], 0, 100_000).await.unwrap();
        let all = names(all);
        assert_eq!(all.len() as i64, total, "{label}: the total counts every secret");
        for offset in [0, 1, 499, 500, 501, 999, 1000, 1001, total - 7, total - 1, total, total + 3] {
            let (page, page_total) = store.list_secrets(&[], offset, 10).await.unwrap();
            let from = (offset.max(0) as usize).min(all.len());
            let expected = &all[from..(from + 10).min(all.len())];
            assert_eq!(names(page), expected, "{label}: the page at offset {offset}");
            assert_eq!(page_total, total, "{label}: the total beside the page at offset {offset}");
        }
    };
    let value = sealed(9);
    for n in 0..1_234 {
        store.insert_secret(&secret(&format!("page/{n:04}"), 10_000 + n / 3), &[], &[("v1", &value)]).await.unwrap();
    }
    check("appended").await;
    store.delete_secret("page/0600").await.unwrap();
    store.delete_secret("page/0002").await.unwrap();
    check("after deletes").await;
    store.insert_secret(&secret("page/early", 5), &[], &[("v1", &value)]).await.unwrap();
    check("after an insert ahead of the others").await;
    store.insert_secret(&secret("page/late", 99_999), &[], &[("v1", &value)]).await.unwrap();
    check("after another append").await;
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

fn secret(name: &str, t: i64) -> Secret {
    Secret {
        name: name.into(),
        secret_type: "Generic".into(),
        instance_id: "kst-1".into(),
        key_id: "key-a".into(),
        description: format!("about {name}"),
        extended_config: None,
        creator: "admin".into(),
        created: Timestamp(t),
        updated: Timestamp(t),
        planned_delete: None,
        policy: "{}".into(),
        versions: vec![SecretVersion {
            id: "v1".into(),
            created: Timestamp(t),
            data_type: "text".into(),
            stages: vec!["ACSCurrent".into()],
        }],
        rotation_interval: None,
        last_rotation: None,
        next_rotation: None,
        revision: 0,
    }
}

fn sealed(b: u8) -> SealedValue {
    SealedValue { sealed_key: vec![b; 8], sealed_value: vec![b; 16] }
}

async fn secrets(store: &dyn Store) {
    let s = secret("app/db", 100);
    store.insert_secret(&s, &[Tag { tag_key: "env".into(), tag_value: "prod".into() }], &[("v1", &sealed(1))]).await.unwrap();
    assert!(
        matches!(store.insert_secret(&s, &[], &[("v1", &sealed(1))]).await, Err(StoreError::Duplicate)),
        "duplicate secret names are refused"
    );
    assert_eq!(store.get_secret("app/db").await.unwrap().as_ref(), Some(&s), "a secret reads back as written");
    assert_eq!(store.get_sealed_value("app/db", "v1").await.unwrap(), Some(sealed(1)));
    let read = store.get_secret_for_read("app/db").await.unwrap().unwrap();
    assert_eq!(read.secret, s, "read with its tags and value, the same secret");
    assert_eq!(read.current, Some(("v1".to_string(), sealed(1))), "and its ACSCurrent value");
    assert!(store.get_secret_for_read("nope").await.unwrap().is_none());

    // A new version and a stage move in one optimistic write; a stale writer loses.
    let mut next = s.clone();
    next.versions.push(SecretVersion { id: "v2".into(), created: Timestamp(101), data_type: "text".into(), stages: vec![] });
    next.move_stage("ACSCurrent", "v2");
    next.move_stage("ACSPrevious", "v1");
    store.update_secret(&next, Some(("v2", &sealed(2)))).await.unwrap();
    assert!(matches!(store.update_secret(&s, None).await, Err(StoreError::Conflict)), "a stale revision conflicts");
    let read = store.get_secret("app/db").await.unwrap().unwrap();
    assert_eq!(read.with_stage("ACSCurrent").map(|v| v.id.as_str()), Some("v2"));
    assert_eq!(read.with_stage("ACSPrevious").map(|v| v.id.as_str()), Some("v1"));
    assert_eq!(store.get_sealed_value("app/db", "v2").await.unwrap(), Some(sealed(2)));

    // Dropping a version from the aggregate removes its value.
    let mut pruned = read.clone();
    pruned.versions.retain(|v| v.id != "v1");
    store.update_secret(&pruned, None).await.unwrap();
    assert_eq!(store.get_sealed_value("app/db", "v1").await.unwrap(), None);

    // A version's labels as written, whichever way they change: one added beside another, one
    // taken away, all taken away.
    for change in [|v: &mut Vec<String>| v.push("Blue".into()), |v: &mut Vec<String>| v.retain(|l| l == "Blue"), Vec::clear] {
        let mut relabeled = store.get_secret("app/db").await.unwrap().unwrap();
        change(&mut relabeled.versions[0].stages);
        store.update_secret(&relabeled, None).await.unwrap();
        let read = store.get_secret("app/db").await.unwrap().unwrap();
        assert_eq!(read.versions, relabeled.versions, "labels as written");
    }
    assert!(store.get_secret("app/db").await.unwrap().unwrap().versions[0].stages.is_empty());

    let mut cache = secret("app/cache", 200);
    cache.extended_config = Some(r#"{"SecretSubType":"SingleUser","DBInstanceId":"pg-1","CustomData":{}}"#.into());
    store.insert_secret(&cache, &[], &[("v1", &sealed(3))]).await.unwrap();
    let mut other = secret("web_50%", 300);
    other.description = "front".into();
    store.insert_secret(&other, &[Tag { tag_key: "env".into(), tag_value: "dev".into() }], &[("v1", &sealed(4))]).await.unwrap();
    let names = |v: (Vec<Secret>, i64)| (v.0.into_iter().map(|s| s.name).collect::<Vec<_>>(), v.1);
    assert_eq!(names(store.list_secrets(&[], 0, 10).await.unwrap()), (vec!["app/db".into(), "app/cache".into(), "web_50%".into()], 3));
    assert_eq!(names(store.list_secrets(&[], 1, 1).await.unwrap()), (vec!["app/cache".into()], 3), "pages are stable");
    assert_eq!(
        names(store.list_secrets(&[SecretFilter::Name(vec!["app/".into()])], 0, 10).await.unwrap()).1,
        2,
        "names match as substrings"
    );
    assert_eq!(
        names(store.list_secrets(&[SecretFilter::Name(vec!["50%".into()])], 0, 10).await.unwrap()).0,
        vec!["web_50%".to_string()],
        "LIKE wildcards are literal"
    );
    assert_eq!(names(store.list_secrets(&[SecretFilter::Name(vec!["b_5".into()])], 0, 10).await.unwrap()).1, 1);
    assert_eq!(
        names(store.list_secrets(&[SecretFilter::Name(vec!["app/".into()])], 5, 10).await.unwrap()),
        (vec![], 2),
        "a page past the last match is empty and still counts them"
    );
    assert_eq!(
        names(store.list_secrets(&[SecretFilter::DbInstance(vec!["pg-1".into()])], 0, 10).await.unwrap()).0,
        vec!["app/cache".to_string()],
        "secrets of one database instance, by their ExtendedConfig"
    );
    assert_eq!(names(store.list_secrets(&[SecretFilter::DbInstance(vec!["pg".into()])], 0, 10).await.unwrap()).1, 0);
    assert_eq!(names(store.list_secrets(&[SecretFilter::Name(vec!["x_y".into()])], 0, 10).await.unwrap()).1, 0, "_ is not a wildcard");
    assert_eq!(
        names(store.list_secrets(&[SecretFilter::Name(vec!["APP/C".into()])], 0, 10).await.unwrap()).0,
        vec!["app/cache".to_string()],
        "case does not matter, as in LIKE"
    );
    assert_eq!(names(store.list_secrets(&[SecretFilter::Name(vec!["0%".into()])], 0, 10).await.unwrap()).1, 1, "two characters match too");
    assert_eq!(
        names(store.list_secrets(&[SecretFilter::Name(vec!["p/\"d".into()])], 0, 10).await.unwrap()).1,
        0,
        "a quote is matched, not parsed"
    );
    assert_eq!(
        names(store.list_secrets(&[SecretFilter::TagValue(vec!["prod".into(), "dev".into()])], 0, 10).await.unwrap()).1,
        2,
        "values of one filter are ORed"
    );
    assert_eq!(
        names(
            store
                .list_secrets(&[SecretFilter::TagKey(vec!["env".into()]), SecretFilter::Description(vec!["front".into()])], 0, 10)
                .await
                .unwrap()
        )
        .0,
        vec!["web_50%".to_string()],
        "filters are ANDed"
    );

    let by = |f: SecretFilter| async move { names(store.list_secrets(&[f], 0, 10).await.unwrap()).0 };
    assert_eq!(by(SecretFilter::Description(vec!["FRO".into()])).await, vec!["web_50%".to_string()], "descriptions match as LIKE does");
    assert_eq!(by(SecretFilter::Description(vec!["ro".into()])).await, vec!["web_50%".to_string()], "two characters match too");
    let mut described = store.get_secret("app/cache").await.unwrap().unwrap();
    described.description = "cache of the Frontend".into();
    described.extended_config = Some(r#"{"SecretSubType":"SingleUser","DBInstanceId":"pg-2","CustomData":{}}"#.into());
    store.update_secret(&described, None).await.unwrap();
    assert_eq!(
        by(SecretFilter::Description(vec!["frontend".into()])).await,
        vec!["app/cache".to_string()],
        "a changed description is found by its new text"
    );
    assert!(by(SecretFilter::Description(vec!["about app/cache".into()])).await.is_empty(), "and no longer by its old one");
    assert_eq!(by(SecretFilter::Description(vec!["front".into()])).await.len(), 2);
    assert_eq!(by(SecretFilter::DbInstance(vec!["pg-2".into()])).await, vec!["app/cache".to_string()], "a changed ExtendedConfig too");
    assert!(by(SecretFilter::DbInstance(vec!["pg-1".into()])).await.is_empty());

    let mut doomed = store.get_secret("app/cache").await.unwrap().unwrap();
    doomed.planned_delete = Some(Timestamp(500));
    store.update_secret(&doomed, None).await.unwrap();
    assert!(store.secrets_due(Timestamp(499)).await.unwrap().is_empty());
    assert_eq!(store.secrets_due(Timestamp(500)).await.unwrap(), vec!["app/cache".to_string()]);
    store.delete_secret("web_50%").await.unwrap();
    assert_eq!(store.get_secret("web_50%").await.unwrap(), None);
    assert_eq!(
        names(store.list_secrets(&[SecretFilter::Name(vec!["web_".into()])], 0, 10).await.unwrap()).1,
        0,
        "a deleted name is not found"
    );
    assert!(by(SecretFilter::Description(vec!["front".into()])).await.iter().all(|n| n != "web_50%"), "nor its description");
    assert!(by(SecretFilter::TagKey(vec!["env".into()])).await.iter().all(|n| n != "web_50%"), "nor its tags");
    assert_eq!(store.get_sealed_value("web_50%", "v1").await.unwrap(), None, "deleting a secret removes its values");
    assert!(store.get_tags("secret", "web_50%").await.unwrap().is_empty(), "deleting a secret removes its tags");
}

async fn tags(store: &dyn Store) {
    let t = |k: &str, v: &str| Tag { tag_key: k.into(), tag_value: v.into() };
    assert!(store.add_tags("key", "key-a", &[t("a", "1"), t("b", "2")], 3).await.unwrap());
    assert!(store.add_tags("key", "key-a", &[t("a", "9")], 3).await.unwrap(), "adding an existing key replaces its value");
    assert!(!store.add_tags("key", "key-a", &[t("c", "3"), t("d", "4")], 3).await.unwrap(), "past the limit nothing is written");
    assert_eq!(store.get_tags("key", "key-a").await.unwrap(), vec![t("a", "9"), t("b", "2")]);
    store.remove_tags("key", "key-a", Some(&["a".to_string()])).await.unwrap();
    assert_eq!(store.list_tags("key", None).await.unwrap(), vec![("key-a".to_string(), t("b", "2"))]);
    store.remove_tags("key", "key-a", None).await.unwrap();
    assert!(store.get_tags("key", "key-a").await.unwrap().is_empty());
    // A secret's tags come with it on the read path, and only the secret's.
    assert!(store.add_tags("secret", "app/cache", &[t("env", "prod")], 3).await.unwrap());
    assert!(store.add_tags("key", "app/cache", &[t("other", "x")], 3).await.unwrap());
    let tags = store.get_secret_for_read("app/cache").await.unwrap().unwrap().tags;
    assert_eq!(tags, vec![t("env", "prod")]);
    store.remove_tags("secret", "app/cache", None).await.unwrap();
    store.remove_tags("key", "app/cache", None).await.unwrap();
}

async fn db_instances(store: &dyn Store) {
    let db = |id: &str, engine: &str, t: i64| DbInstance {
        id: id.into(),
        engine: engine.into(),
        host: "127.0.0.1".into(),
        port: 5432,
        admin_user: "admin".into(),
        sealed_password: vec![7; 40],
        admin_database: String::new(),
        tls: "prefer".into(),
        account_host: String::new(),
        description: "d".into(),
        key_id: "key-a".into(),
        created: Timestamp(t),
        revision: 0,
    };
    let a = db("rm-a", "PostgreSQL", 1);
    store.insert_db_instance(&a).await.unwrap();
    assert!(matches!(store.insert_db_instance(&a).await, Err(StoreError::Duplicate)), "duplicate instance ids are refused");
    assert_eq!(store.get_db_instance("rm-a").await.unwrap().as_ref(), Some(&a));
    store.insert_db_instance(&db("rm-b", "MariaDB", 2)).await.unwrap();
    let mut changed = a.clone();
    changed.port = 6543;
    store.update_db_instance(&changed).await.unwrap();
    assert!(matches!(store.update_db_instance(&a).await, Err(StoreError::Conflict)), "a stale revision conflicts");
    assert_eq!(store.get_db_instance("rm-a").await.unwrap().unwrap().port, 6543);
    let ids = |v: (Vec<DbInstance>, i64)| (v.0.into_iter().map(|d| d.id).collect::<Vec<_>>(), v.1);
    assert_eq!(ids(store.list_db_instances(None, 0, 10).await.unwrap()), (vec!["rm-a".into(), "rm-b".into()], 2));
    assert_eq!(ids(store.list_db_instances(Some("MariaDB"), 0, 10).await.unwrap()), (vec!["rm-b".into()], 1));
    assert!(store.delete_db_instance("rm-b").await.unwrap());
    assert!(!store.delete_db_instance("rm-b").await.unwrap());
}

async fn rotations(store: &dyn Store) {
    let mut s = secret("rds/app", 1000);
    s.secret_type = "Rds".into();
    s.rotation_interval = Some(3600);
    s.next_rotation = Some(Timestamp(5000));
    s.versions.push(SecretVersion {
        id: "v0".into(),
        created: Timestamp(999),
        data_type: "text".into(),
        stages: vec!["ACSPrevious".into()],
    });
    store.insert_secret(&s, &[], &[("v1", &sealed(1)), ("v0", &sealed(0))]).await.unwrap();
    let read = store.get_secret("rds/app").await.unwrap().unwrap();
    assert_eq!((read.rotation_interval, read.next_rotation), (Some(3600), Some(Timestamp(5000))), "rotation fields read back");
    assert_eq!(store.get_sealed_value("rds/app", "v0").await.unwrap(), Some(sealed(0)), "every inserted version has its value");

    // The pending version and the attempt record are written together.
    let mut pending = read.clone();
    pending.versions.push(SecretVersion {
        id: "v2".into(),
        created: Timestamp(1001),
        data_type: "text".into(),
        stages: vec!["ACSPending".into()],
    });
    let attempt = Rotation {
        secret: "rds/app".into(),
        version_id: "v2".into(),
        step: RotationStep::PendingStored,
        started: Timestamp(1001),
        attempts: 0,
        last_error: String::new(),
        next_retry: Timestamp(1001),
    };
    store.update_secret_rotation(&pending, Some(("v2", &sealed(2))), RotationChange::Put(&attempt)).await.unwrap();
    assert_eq!(store.get_rotation("rds/app").await.unwrap().as_ref(), Some(&attempt));
    // A write that loses its race leaves the attempt record alone too.
    assert!(matches!(store.update_secret_rotation(&read, None, RotationChange::Delete).await, Err(StoreError::Conflict)));
    assert!(store.get_rotation("rds/app").await.unwrap().is_some(), "a conflicting write changed no rotation record");
    assert_eq!(store.rotations_due(Timestamp(1000)).await.unwrap(), Vec::<String>::new());
    assert_eq!(store.rotations_due(Timestamp(1001)).await.unwrap(), vec!["rds/app".to_string()], "an attempt to resume is due");
    let mut deleting = store.get_secret("rds/app").await.unwrap().unwrap();
    deleting.planned_delete = Some(Timestamp(99_999));
    store.update_secret(&deleting, None).await.unwrap();
    assert!(store.rotations_due(Timestamp(1001)).await.unwrap().is_empty(), "a secret pending deletion is not rotated");
    deleting.revision += 1;
    deleting.planned_delete = None;
    store.update_secret(&deleting, None).await.unwrap();

    // The lease: one owner at a time, renewable by its owner, free again once expired.
    assert!(store.lease_rotation("rds/app", "node-a", Timestamp(1100), Timestamp(1001)).await.unwrap());
    assert!(!store.lease_rotation("rds/app", "node-b", Timestamp(1200), Timestamp(1050)).await.unwrap(), "a held lease is refused");
    assert!(store.lease_rotation("rds/app", "node-a", Timestamp(1300), Timestamp(1060)).await.unwrap(), "its owner renews it");
    assert!(store.lease_rotation("rds/app", "node-b", Timestamp(1400), Timestamp(1300)).await.unwrap(), "an expired lease can be taken");
    store.release_rotation("rds/app", "node-a").await.unwrap();
    assert!(!store.lease_rotation("rds/app", "node-a", Timestamp(1500), Timestamp(1301)).await.unwrap(), "only the owner releases");
    store.release_rotation("rds/app", "node-b").await.unwrap();
    assert!(store.lease_rotation("rds/app", "node-a", Timestamp(1500), Timestamp(1301)).await.unwrap(), "a released lease is free");
    assert!(!store.lease_rotation("rds/none", "node-a", Timestamp(1500), Timestamp(1301)).await.unwrap(), "no record, no lease");

    // Starting an attempt takes its lease in the same write, and never over another's lease.
    let current = store.get_secret("rds/app").await.unwrap().unwrap();
    let start = |owner: &'static str, now: i64| RotationChange::Start {
        rotation: &attempt,
        owner,
        until: Timestamp(now + 60),
        now: Timestamp(now),
    };
    assert!(
        matches!(store.update_secret_rotation(&current, None, start("node-b", 1302)).await, Err(StoreError::Conflict)),
        "node-a's lease runs until 1500"
    );
    assert_eq!(store.get_secret("rds/app").await.unwrap().unwrap().revision, current.revision, "the refused start wrote nothing");
    store.update_secret_rotation(&current, None, start("node-a", 1302)).await.unwrap();
    assert!(!store.lease_rotation("rds/app", "node-b", Timestamp(1400), Timestamp(1310)).await.unwrap(), "the start took the lease");
    let current = store.get_secret("rds/app").await.unwrap().unwrap();
    store.update_secret_rotation(&current, None, start("node-b", 1363)).await.unwrap();
    assert!(!store.lease_rotation("rds/app", "node-a", Timestamp(1500), Timestamp(1364)).await.unwrap(), "past its end, node-b took it");
    store.release_rotation("rds/app", "node-b").await.unwrap();

    let failed = Rotation {
        attempts: 1,
        last_error: "DBInstance.Unreachable".into(),
        next_retry: Timestamp(2000),
        step: RotationStep::Applied,
        ..attempt
    };
    store.put_rotation(&failed).await.unwrap();
    assert_eq!(store.get_rotation("rds/app").await.unwrap(), Some(failed));
    assert!(store.rotations_due(Timestamp(1999)).await.unwrap().is_empty(), "a failed attempt waits for its retry time");
    let mut done = store.get_secret("rds/app").await.unwrap().unwrap();
    done.move_stage("ACSCurrent", "v2");
    done.move_stage("ACSPrevious", "v1");
    for v in &mut done.versions {
        v.stages.retain(|s| s != "ACSPending");
    }
    done.next_rotation = Some(Timestamp(9000));
    store.update_secret_rotation(&done, None, RotationChange::Delete).await.unwrap();
    assert_eq!(store.get_rotation("rds/app").await.unwrap(), None, "promotion removes the attempt in the same write");
    assert!(store.rotations_due(Timestamp(8999)).await.unwrap().is_empty());
    assert_eq!(store.rotations_due(Timestamp(9000)).await.unwrap(), vec!["rds/app".to_string()], "the next automatic rotation is due");
    store.delete_secret("rds/app").await.unwrap();
}

async fn identities(store: &dyn Store) {
    let u = User { name: "alice".into(), display_name: "Alice".into(), comments: String::new(), created: Timestamp(7) };
    store.insert_user(&u).await.unwrap();
    assert!(matches!(store.insert_user(&u).await, Err(StoreError::Duplicate)), "user names are unique");
    assert_eq!(store.get_user("alice").await.unwrap(), Some(u.clone()));
    let k = AccessKey { id: "LTAIalice".into(), user: "alice".into(), sealed_secret: vec![1; 40], enabled: true, created: Timestamp(8) };
    store.insert_access_key(&k).await.unwrap();
    assert!(store.set_access_key_enabled("LTAIalice", false).await.unwrap());
    assert!(!store.set_access_key_enabled("LTAInone", false).await.unwrap());
    assert_eq!(store.list_access_keys("alice").await.unwrap().iter().map(|k| k.enabled).collect::<Vec<_>>(), vec![false]);

    let p = CustomPolicy { name: "read".into(), document: "{}".into(), description: "d".into(), created: Timestamp(9) };
    store.insert_policy(&p).await.unwrap();
    assert!(matches!(store.insert_policy(&p).await, Err(StoreError::Duplicate)));
    assert!(store.attach_policy("alice", "Custom", "read").await.unwrap());
    assert!(!store.attach_policy("alice", "Custom", "read").await.unwrap(), "attaching twice reports it");
    assert!(store.attach_policy("alice", "System", "AdministratorAccess").await.unwrap());
    assert_eq!(
        store.user_policies("alice").await.unwrap(),
        vec![("Custom".to_string(), "read".to_string()), ("System".to_string(), "AdministratorAccess".to_string())]
    );
    assert_eq!(store.policy_users("Custom", "read").await.unwrap(), vec!["alice".to_string()]);
    assert!(store.detach_policy("alice", "Custom", "read").await.unwrap());
    assert!(!store.detach_policy("alice", "Custom", "read").await.unwrap());
    assert!(store.delete_policy("read").await.unwrap());
    assert_eq!(store.list_policies().await.unwrap(), vec![]);

    assert!(store.delete_user("alice").await.unwrap());
    assert_eq!(store.get_user("alice").await.unwrap(), None);
    assert_eq!(store.get_access_key("LTAIalice").await.unwrap(), None, "a user's keys go with it");
    assert!(store.user_policies("alice").await.unwrap().is_empty(), "and its attachments");
    assert!(!store.delete_user("alice").await.unwrap());
}

/// A transparent chain: the link is the previous link, the position and the event.
struct PlainChain;

impl AuditChain for PlainChain {
    fn link(&self, prev: &[u8], seq: i64, r: &AuditRecord) -> Vec<u8> {
        let mut v = prev.to_vec();
        v.extend_from_slice(format!("|{seq}:{}", r.event).as_bytes());
        v
    }
    fn head(&self, seq: i64, mac: &[u8]) -> String {
        format!("{seq}:{}", String::from_utf8_lossy(mac))
    }
    fn resume(&self, _head: Option<&str>, last: Option<(i64, Vec<u8>)>) -> (i64, Vec<u8>) {
        last.unwrap_or_default()
    }
}

fn record(t: i64, user: &str, result: &str) -> AuditRecord {
    AuditRecord {
        time: t,
        user: user.into(),
        event_name: "GetSecretValue".into(),
        resource: "acs:kms:r:1:secret/a".into(),
        result: result.into(),
        access_key: format!("LTAI{user}"),
        event: format!("{{\"t\":{t}}}"),
    }
}

async fn audit(store: &dyn Store) {
    assert_eq!(store.audit_head().await.unwrap(), None, "no head before the first append");
    let chain: Arc<dyn AuditChain> = Arc::new(PlainChain);
    assert_eq!(store.audit_journal_mark().await.unwrap(), None, "no journal mark before the first append with one");
    store
        .append_audit(vec![record(1, "a", "Success"), record(2, "b", "Failure")].into(), chain.clone(), Some("1:2:200".into()))
        .await
        .unwrap();
    assert_eq!(store.audit_journal_mark().await.unwrap().as_deref(), Some("1:2:200"), "the mark is kept with the events");
    store.append_audit(vec![record(3, "a", "Failure")].into(), chain.clone(), None).await.unwrap();
    assert_eq!(store.audit_journal_mark().await.unwrap().as_deref(), Some("1:2:200"), "an append without a mark leaves it");
    let all = store.audit_events(0, 10).await.unwrap();
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3], "positions run from 1 without gaps, across batches");
    assert_eq!(String::from_utf8_lossy(&all[2].mac), "|1:{\"t\":1}|2:{\"t\":2}|3:{\"t\":3}", "each link follows the last one written");
    assert_eq!(all[1].record, record(2, "b", "Failure"));
    assert_eq!(store.audit_events(2, 10).await.unwrap().len(), 1);
    assert_eq!(store.audit_head().await.unwrap().as_deref(), Some("3:|1:{\"t\":1}|2:{\"t\":2}|3:{\"t\":3}"));
    store.append_audit(Vec::new().into(), chain.clone(), Some("2:0:0".into())).await.unwrap();
    assert_eq!(store.audit_journal_mark().await.unwrap().as_deref(), Some("2:0:0"), "a mark alone moves");
    assert_eq!(store.audit_events(0, 10).await.unwrap().len(), 3, "a mark alone adds no event");
    assert_eq!(store.audit_head().await.unwrap().as_deref(), Some("3:|1:{\"t\":1}|2:{\"t\":2}|3:{\"t\":3}"), "nor moves the head");
    let q =
        |attributes: Vec<LookupAttribute>, before: Option<i64>| EventQuery { from: None, to: None, attributes, max_results: 10, before };
    let seqs = |v: Vec<(i64, String)>| v.into_iter().map(|(s, _)| s).collect::<Vec<_>>();
    assert_eq!(seqs(store.lookup_audit(&q(vec![], None)).await.unwrap()), vec![3, 2, 1], "newest first");
    assert_eq!(seqs(store.lookup_audit(&q(vec![LookupAttribute::UserName("a".into())], None)).await.unwrap()), vec![3, 1]);
    assert_eq!(
        seqs(
            store
                .lookup_audit(&q(vec![LookupAttribute::Result("Failure".into()), LookupAttribute::UserName("a".into())], None))
                .await
                .unwrap()
        ),
        vec![3]
    );
    assert_eq!(seqs(store.lookup_audit(&q(vec![], Some(3))).await.unwrap()), vec![2, 1], "pages continue before a position");
    let mut timed = q(vec![], None);
    timed.from = Some(2);
    timed.to = Some(2);
    assert_eq!(seqs(store.lookup_audit(&timed).await.unwrap()), vec![2]);
    assert_eq!(store.last_audit_event().await.unwrap(), Some((3, all[2].mac.clone())));
    audit_blocks(store).await;
}

fn block(first_seq: i64, last_seq: i64, times: (i64, i64), segment: i64) -> AuditBlock {
    AuditBlock {
        first_seq,
        last_seq,
        min_time: times.0,
        max_time: times.1,
        segment,
        start: first_seq * 100,
        end: (last_seq + 1) * 100,
        last_mac: vec![last_seq as u8; 32],
    }
}

async fn audit_blocks(store: &dyn Store) {
    assert!(store.audit_blocks(0, 10).await.unwrap().is_empty());
    let (a, b, c) = (block(4, 6, (10, 20), 1), block(7, 9, (20, 30), 1), block(10, 10, (40, 40), 2));
    store.append_audit_blocks(vec![a.clone(), b.clone()], "9:head".into()).await.unwrap();
    store.append_audit_blocks(vec![c.clone()], "10:head".into()).await.unwrap();
    assert_eq!(store.audit_head().await.unwrap().as_deref(), Some("10:head"), "the head moves with the blocks");
    assert_eq!(store.audit_blocks(0, 10).await.unwrap(), vec![a.clone(), b.clone(), c.clone()], "oldest first");
    assert_eq!(store.audit_blocks(4, 1).await.unwrap(), vec![b.clone()], "after a position, in pages");
    let before = |seq, from, to| async move { store.audit_blocks_before(seq, from, to, 10).await.unwrap() };
    assert_eq!(before(i64::MAX, None, None).await, vec![c.clone(), b.clone(), a.clone()], "newest first");
    assert_eq!(before(10, None, None).await, vec![b.clone(), a.clone()], "before a position");
    assert_eq!(before(i64::MAX, Some(21), Some(35)).await, vec![b.clone()], "blocks whose times meet the range");
    assert_eq!(before(i64::MAX, Some(20), None).await, vec![c, b.clone(), a.clone()], "a block that ends at `from` meets it");
    assert!(store.append_audit_blocks(vec![block(7, 7, (1, 1), 1)], "x".into()).await.is_err(), "a position is indexed once");
    assert_eq!(store.audit_head().await.unwrap().as_deref(), Some("10:head"), "a failed append leaves the head");
}
