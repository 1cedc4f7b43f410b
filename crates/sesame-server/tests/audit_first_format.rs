//! A store made before the trail's segment files keeps its older events as rows: they are the
//! trail's beginning, and lookups and verification read them with the events after them.
#![allow(clippy::unwrap_used)]

use sesame_api::ram::{EventQuery, LookupAttribute};
use sesame_core::audit::RequestFacts;
use sesame_core::model::AuditRecord;
use sesame_core::{ManualClock, Services};
use sesame_crypto::{KeyMaterial, RootKey};
use std::sync::Arc;

async fn start(store: Arc<dyn sesame_core::Store>, root: Arc<RootKey>) -> Services {
    let clock = Arc::new(ManualClock::new(sesame_api::Timestamp(1_800_000_000)));
    Services::start(store, root, clock, "test".into(), Arc::new(sesame_engines::Engines), Default::default()).await.unwrap().0
}

fn old_event(i: i64) -> AuditRecord {
    AuditRecord {
        time: 100 + i,
        user: "admin".into(),
        event_name: "DescribeKey".into(),
        resource: format!("key-old-{i}"),
        result: "Success".into(),
        access_key: "LTAIold".into(),
        event: format!("{{\"eventName\":\"DescribeKey\",\"resourceName\":\"key-old-{i}\"}}"),
    }
}

fn facts(i: i64) -> RequestFacts<'static> {
    RequestFacts {
        request_id: "r",
        time: 200 + i,
        service: "kms",
        action: "DescribeKey",
        access_key_id: "LTAInew",
        user: Some("admin"),
        source_ip: "127.0.0.1",
        user_agent: "test",
        parameters: Default::default(),
        resource: Some(format!("key-new-{i}")),
        error: None,
    }
}

fn query(before: Option<i64>, max_results: i64) -> EventQuery {
    EventQuery { from: None, to: None, attributes: Vec::new(), max_results, before }
}

fn resources(events: &[serde_json::Value]) -> Vec<&str> {
    events.iter().map(|e| e["resourceName"].as_str().unwrap_or_default()).collect()
}

#[tokio::test]
async fn rows_of_the_first_format_are_read_and_verified_with_the_segment_files() {
    let store = sesame_store::open("sqlite::memory:").unwrap();
    let root = Arc::new(RootKey::from_material(KeyMaterial::generate().unwrap()));
    // The first start makes the trail's key; the events of an older version are then written
    // as it wrote them.
    let first = start(store.clone(), root.clone()).await;
    let old: Vec<AuditRecord> = (1..=3).map(old_event).collect();
    store.append_audit(old.into(), first.audit.first_format_chain(), None).await.unwrap();
    let s = start(store.clone(), root).await;
    for i in 1..=2 {
        s.audit.record(facts(i)).await.unwrap();
    }
    let v = s.audit.verify().await.unwrap();
    assert!(v.valid, "{:?}", v.problems);
    assert_eq!(v.event_count, 5);

    let (events, next) = s.audit.lookup(&query(None, 4)).await.unwrap();
    assert_eq!(resources(&events), vec!["key-new-2", "key-new-1", "key-old-3", "key-old-2"], "newest first, across both");
    assert_eq!(next.as_deref(), Some("2"));
    let (events, next) = s.audit.lookup(&query(Some(2), 4)).await.unwrap();
    assert_eq!(resources(&events), vec!["key-old-1"]);
    assert_eq!(next, None);
    let mut by_key = query(None, 10);
    by_key.attributes = vec![LookupAttribute::AccessKeyId("LTAIold".into())];
    by_key.from = Some(102);
    assert_eq!(resources(&s.audit.lookup(&by_key).await.unwrap().0), vec!["key-old-3", "key-old-2"]);
    by_key.attributes = vec![LookupAttribute::AccessKeyId("LTAInew".into())];
    assert_eq!(resources(&s.audit.lookup(&by_key).await.unwrap().0), vec!["key-new-2", "key-new-1"]);
}
