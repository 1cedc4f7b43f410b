//! Secrets through the real server: every limit one past its bound gets its error and leaves
//! the store as it was; a canary value never reaches the log, an error body or the store; a read
//! after each write sees that write.
#![allow(clippy::unwrap_used)]

mod common;

use serde_json::{Value, json};
use sesame_client::{Client, ClientError};

fn api_error(r: Result<Value, ClientError>) -> (u16, String, String) {
    match r {
        Err(ClientError::Api { status, code, message, .. }) => (status, code, message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Everything a client can see of the store's secrets, to compare before and after.
async fn snapshot(c: &Client) -> Value {
    let list = c.call("ListSecrets", &[("PageSize", "100"), ("FetchTags", "true")]).await.unwrap();
    let mut out = vec![list["SecretList"].clone()];
    for s in list["SecretList"]["Secret"].as_array().unwrap() {
        let name = s["SecretName"].as_str().unwrap();
        let mut d = c.call("DescribeSecret", &[("SecretName", name), ("FetchTags", "true")]).await.unwrap();
        d.as_object_mut().unwrap().remove("RequestId");
        let mut v =
            c.call("ListSecretVersionIds", &[("SecretName", name), ("IncludeDeprecated", "true"), ("PageSize", "100")]).await.unwrap();
        v.as_object_mut().unwrap().remove("RequestId");
        let mut p = c.call("GetSecretPolicy", &[("SecretName", name)]).await.unwrap();
        p.as_object_mut().unwrap().remove("RequestId");
        out.extend([d, v, p]);
        if s.get("PlannedDeleteTime").is_none() {
            out.push(c.call("GetSecretValue", &[("SecretName", name)]).await.unwrap()["SecretData"].clone());
        }
    }
    Value::Array(out)
}

fn tags(n: usize) -> String {
    Value::Array((0..n).map(|i| json!({"TagKey": format!("k{i}"), "TagValue": "v"})).collect()).to_string()
}

fn custom_data(n: usize) -> String {
    json!({"CustomData": (0..n).map(|i| (format!("k{i}"), json!("v"))).collect::<serde_json::Map<_, _>>()}).to_string()
}

#[tokio::test]
async fn every_limit_one_past_its_bound_is_refused_and_changes_nothing() {
    let server = common::TestServer::start(&["--plain-http"]);
    let c = server.client();
    let key = c.call("CreateKey", &[]).await.unwrap()["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    let other_instance_key = "key-from-elsewhere";

    // Each limit at its bound is accepted...
    let at_bound_name = "n".repeat(192);
    let value_at_bound = "x".repeat(30_720);
    let tag_at_bound = json!([{"TagKey": "k".repeat(128), "TagValue": "v".repeat(128)}]).to_string();
    let (twenty, ten) = (tags(20), custom_data(10));
    let at_bound: Vec<Vec<(&str, &str)>> = vec![
        vec![("SecretName", &at_bound_name), ("SecretData", "x")],
        vec![("SecretName", "at/value"), ("SecretData", &value_at_bound)],
        vec![("SecretName", "at/tags"), ("SecretData", "x"), ("Tags", &twenty)],
        vec![("SecretName", "at/tag-len"), ("SecretData", "x"), ("Tags", &tag_at_bound)],
        vec![("SecretName", "at/ext"), ("SecretData", "x"), ("ExtendedConfig", &ten)],
    ];
    for params in &at_bound {
        let mut p = params.clone();
        p.extend([("VersionId", "v1"), ("EncryptionKeyId", key.as_str())]);
        c.call("CreateSecret", &p).await.unwrap_or_else(|e| panic!("{params:?} at its bound: {e}"));
    }
    c.call("PutSecretValue", &[("SecretName", "at/value"), ("VersionId", "v2"), ("SecretData", "y")]).await.unwrap();
    let before = snapshot(&c).await;

    // ...and one past it is refused with the code and status the reference names.
    let over_name = "n".repeat(193);
    let value_over = "x".repeat(30_721);
    let (twenty_one, eleven) = (tags(21), custom_data(11));
    let long_key = json!([{"TagKey": "k".repeat(129), "TagValue": "v"}]).to_string();
    let long_value = json!([{"TagKey": "k", "TagValue": "v".repeat(129)}]).to_string();
    let ext_over = json!({"CustomData": {"k": "v".repeat(1_010)}}).to_string();
    let policy_over = json!({"Version": "1", "Pad": "p".repeat(32_768)}).to_string();
    let version_over = "v".repeat(65);
    let batch_over = Value::Array((0..21).map(|i| json!({"SecretName": format!("s{i}")})).collect()).to_string();
    let filters_over = Value::Array((0..11).map(|_| json!({"Key": "SecretName", "Values": ["a"]})).collect()).to_string();
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        ("CreateSecret", vec![("SecretName", &over_name), ("SecretData", "x")], 400, "InvalidParameter", "SecretName"),
        ("CreateSecret", vec![("SecretName", "bad name!"), ("SecretData", "x")], 400, "InvalidParameter", "SecretName"),
        ("CreateSecret", vec![("SecretName", "acs/x"), ("SecretData", "x")], 400, "InvalidParameter", "acs/"),
        ("CreateSecret", vec![("SecretName", "over/value"), ("SecretData", &value_over)], 400, "InvalidParameter", "30720"),
        ("CreateSecret", vec![("SecretName", "over/tags"), ("SecretData", "x"), ("Tags", &twenty_one)], 400, "InvalidParameter", "20 tags"),
        ("CreateSecret", vec![("SecretName", "over/tagkey"), ("SecretData", "x"), ("Tags", &long_key)], 400, "InvalidParameter", "128"),
        ("CreateSecret", vec![("SecretName", "over/tagval"), ("SecretData", "x"), ("Tags", &long_value)], 400, "InvalidParameter", "128"),
        (
            "CreateSecret",
            vec![("SecretName", "over/aliyun"), ("SecretData", "x"), ("Tags", r#"[{"TagKey":"aliyun:x","TagValue":"v"}]"#)],
            400,
            "InvalidParameter",
            "aliyun",
        ),
        (
            "CreateSecret",
            vec![("SecretName", "over/acs"), ("SecretData", "x"), ("Tags", r#"[{"TagKey":"acs:x","TagValue":"v"}]"#)],
            400,
            "InvalidParameter",
            "acs:",
        ),
        (
            "CreateSecret",
            vec![("SecretName", "over/custom"), ("SecretData", "x"), ("ExtendedConfig", &eleven)],
            400,
            "InvalidParameter",
            "CustomData",
        ),
        (
            "CreateSecret",
            vec![("SecretName", "over/ext"), ("SecretData", "x"), ("ExtendedConfig", &ext_over)],
            400,
            "InvalidParameter",
            "1024",
        ),
        (
            "CreateSecret",
            vec![("SecretName", "over/policy"), ("SecretData", "x"), ("Policy", &policy_over)],
            400,
            "InvalidParameter",
            "32768",
        ),
        (
            "CreateSecret",
            vec![("SecretName", "over/ver"), ("SecretData", "x"), ("VersionId", &version_over)],
            400,
            "InvalidParameter",
            "VersionId",
        ),
        (
            "CreateSecret",
            vec![("SecretName", "over/type"), ("SecretData", "x"), ("SecretType", "Redis")],
            400,
            "InvalidParameter",
            "SecretType",
        ),
        (
            "CreateSecret",
            vec![("SecretName", "over/key"), ("SecretData", "x"), ("EncryptionKeyId", other_instance_key)],
            404,
            "Forbidden.KeyNotFound",
            other_instance_key,
        ),
        (
            "CreateSecret",
            vec![("SecretName", "over/inst"), ("SecretData", "x"), ("DKMSInstanceId", "kst-none")],
            404,
            "Forbidden.ResourceNotFound",
            "kst-none",
        ),
        ("CreateSecret", vec![("SecretName", "at/value"), ("SecretData", "x")], 409, "Rejected.ResourceExist", "at/value"),
        (
            "PutSecretValue",
            vec![("SecretName", "at/value"), ("VersionId", "v3"), ("SecretData", &value_over)],
            400,
            "InvalidParameter",
            "SecretData",
        ),
        (
            "PutSecretValue",
            vec![("SecretName", "at/value"), ("VersionId", "v2"), ("SecretData", "different")],
            409,
            "Rejected.ResourceExist",
            "v2",
        ),
        (
            "PutSecretValue",
            vec![
                ("SecretName", "at/value"),
                ("VersionId", "v3"),
                ("SecretData", "y"),
                ("VersionStages", r#"["a","b","c","d","e","f","g","h","i"]"#),
            ],
            400,
            "InvalidParameter",
            "VersionStages",
        ),
        (
            "PutSecretValue",
            vec![("SecretName", "none"), ("VersionId", "v3"), ("SecretData", "y")],
            404,
            "Forbidden.ResourceNotFound",
            "none",
        ),
        (
            "TagResource",
            vec![("SecretName", "at/tags"), ("Tags", r#"[{"TagKey":"one-more","TagValue":"v"}]"#)],
            400,
            "InvalidParameter",
            "20 tags",
        ),
        ("UpdateSecret", vec![("SecretName", "at/ext"), ("ExtendedConfig", &eleven)], 400, "InvalidParameter", "CustomData"),
        (
            "UpdateSecretVersionStage",
            vec![("SecretName", "at/value"), ("VersionStage", "ACSPrevious"), ("RemoveFromVersion", "v1")],
            400,
            "InvalidParameter",
            "ACSPrevious",
        ),
        (
            "UpdateSecretVersionStage",
            vec![("SecretName", "at/value"), ("VersionStage", "ACSCurrent"), ("MoveToVersion", "v9")],
            404,
            "Forbidden.ResourceNotFound",
            "v9",
        ),
        ("DeleteSecret", vec![("SecretName", "at/value"), ("RecoveryWindowInDays", "6")], 400, "InvalidParameter", "RecoveryWindowInDays"),
        ("DeleteSecret", vec![("SecretName", "at/value"), ("RecoveryWindowInDays", "31")], 400, "InvalidParameter", "RecoveryWindowInDays"),
        ("RestoreSecret", vec![("SecretName", "at/value")], 400, "InvalidParameter", "not pending deletion"),
        ("GetRandomPassword", vec![("PasswordLength", "129")], 400, "InvalidParameter", "PasswordLength"),
        ("BatchGetSecretValue", vec![("SecretsList", &batch_over)], 400, "InvalidParameter", "SecretsList"),
        ("ListSecrets", vec![("PageSize", "101")], 400, "InvalidParameter", "PageSize"),
        ("ListSecrets", vec![("Filters", &filters_over)], 400, "InvalidParameter", "Filters"),
        ("SetSecretPolicy", vec![("SecretName", "at/value"), ("Policy", &policy_over)], 400, "InvalidParameter", "Policy"),
        ("SetSecretPolicy", vec![("SecretName", "at/value"), ("Policy", "not json")], 400, "InvalidParameter", "Policy"),
        ("GetSecretValue", vec![("SecretName", "at/value"), ("VersionStage", "nowhere")], 404, "Forbidden.ResourceNotFound", "nowhere"),
    ];
    for (action, params, status, code, mention) in cases {
        let mut p = params.clone();
        if action == "CreateSecret" {
            if !p.iter().any(|(k, _)| *k == "VersionId") {
                p.push(("VersionId", "v1"));
            }
            if !p.iter().any(|(k, _)| *k == "EncryptionKeyId") {
                p.push(("EncryptionKeyId", key.as_str()));
            }
        }
        let (s, got, msg) = api_error(c.call(action, &p).await);
        assert_eq!((s, got.as_str()), (status, code), "{action} {:?}: {msg}", params.iter().map(|(k, v)| (k, v.len())).collect::<Vec<_>>());
        assert!(msg.contains(mention), "{action}: message {msg:?} should mention {mention:?}");
    }
    assert_eq!(snapshot(&c).await, before, "refused requests left the store exactly as it was");
}

#[tokio::test]
async fn a_secret_value_never_reaches_logs_error_bodies_or_the_store_files() {
    let server = common::TestServer::start(&[]);
    let c = server.client();
    let canary = "CANARY-secret-5e1f-never-stored-in-clear";
    c.call("CreateSecret", &[("SecretName", "canary/s"), ("VersionId", "v1"), ("SecretData", canary)]).await.unwrap();
    c.call("PutSecretValue", &[("SecretName", "canary/s"), ("VersionId", "v2"), ("SecretData", &format!("{canary}-2"))]).await.unwrap();
    assert_eq!(
        c.call("GetSecretValue", &[("SecretName", "canary/s"), ("VersionStage", "ACSPrevious")]).await.unwrap()["SecretData"],
        canary
    );
    let password = c.call("GetRandomPassword", &[]).await.unwrap()["RandomPassword"].as_str().unwrap().to_string();

    let mut bodies = String::new();
    for (action, params) in [
        ("PutSecretValue", vec![("SecretName", "canary/s"), ("VersionId", "v2"), ("SecretData", "changed")]),
        ("CreateSecret", vec![("SecretName", "canary/s"), ("VersionId", "v1"), ("SecretData", canary)]),
        ("CreateSecret", vec![("SecretName", "canary bad"), ("VersionId", "v1"), ("SecretData", canary)]),
        ("CreateSecret", vec![("SecretName", "canary/bin"), ("VersionId", "v1"), ("SecretData", canary), ("SecretDataType", "binary")]),
        ("PutSecretValue", vec![("SecretName", "canary/none"), ("VersionId", "v1"), ("SecretData", canary)]),
    ] {
        bodies.push_str(&format!("{:?}", c.call(action, &params).await));
    }
    let mut server = server;
    server.stop();
    let mut haystacks = vec![("error bodies".to_string(), bodies), ("server log".to_string(), server.log())];
    haystacks.extend(server.data_files());
    assert!(haystacks.iter().any(|(n, _)| n.ends_with("sesame.db")), "the SQLite file was searched");
    for (name, text) in &haystacks {
        assert!(!text.contains("CANARY-secret-5e1f"), "{name} contains the secret value");
        assert!(!text.contains(&password), "{name} contains the generated password");
    }
}

/// A read keeps the version's data key open for the reads after it; the CMK is still checked at
/// every read, so disabling it or scheduling its deletion stops the next read at once.
#[tokio::test]
async fn a_secret_whose_key_is_disabled_after_a_read_cannot_be_read_again() {
    let server = common::TestServer::start(&["--plain-http"]);
    let c = server.client();
    let key = c.call("CreateKey", &[]).await.unwrap()["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    let secret = [("SecretName", "held/open"), ("VersionId", "v1"), ("SecretData", "first"), ("EncryptionKeyId", key.as_str())];
    c.call("CreateSecret", &secret).await.unwrap();
    let read = || c.call("GetSecretValue", &[("SecretName", "held/open")]);
    assert_eq!(read().await.unwrap()["SecretData"], "first");
    assert_eq!(read().await.unwrap()["SecretData"], "first", "read again with the data key held");

    c.call("DisableKey", &[("KeyId", &key)]).await.unwrap();
    let (status, code, _) = api_error(read().await);
    assert_eq!((status, code.as_str()), (409, "Rejected.Disabled"));

    c.call("EnableKey", &[("KeyId", &key)]).await.unwrap();
    assert_eq!(read().await.unwrap()["SecretData"], "first");

    c.call("ScheduleKeyDeletion", &[("KeyId", &key), ("PendingWindowInDays", "7")]).await.unwrap();
    let (status, code, _) = api_error(read().await);
    assert_eq!((status, code.as_str()), (409, "Rejected.PendingDeletion"));
}

/// Each write leaves the written secret in the server's cache (finding 46): a read after it,
/// with the secret read (and cached) just before, sees exactly what was written.
#[tokio::test]
async fn a_read_after_each_write_sees_that_write() {
    let server = common::TestServer::start(&["--plain-http"]);
    let c = server.client();
    c.call("CreateSecret", &[("SecretName", "rw/s"), ("VersionId", "v1"), ("SecretData", "one")]).await.unwrap();
    let client = &c;
    let read = |stage: &'static str| async move {
        client.call("GetSecretValue", &[("SecretName", "rw/s"), ("VersionStage", stage)]).await.unwrap()["SecretData"].clone()
    };
    assert_eq!(read("ACSCurrent").await, "one");

    c.call("PutSecretValue", &[("SecretName", "rw/s"), ("VersionId", "v2"), ("SecretData", "two")]).await.unwrap();
    assert_eq!((read("ACSCurrent").await, read("ACSPrevious").await), (json!("two"), json!("one")));

    let back = [("SecretName", "rw/s"), ("VersionStage", "ACSCurrent"), ("MoveToVersion", "v1"), ("RemoveFromVersion", "v2")];
    c.call("UpdateSecretVersionStage", &back).await.unwrap();
    assert_eq!(read("ACSCurrent").await, "one", "the stage moved back");

    let labeled = [("SecretName", "rw/s"), ("VersionId", "v3"), ("SecretData", "three"), ("VersionStages", r#"["Blue"]"#)];
    c.call("PutSecretValue", &labeled).await.unwrap();
    assert_eq!((read("ACSCurrent").await, read("Blue").await), (json!("one"), json!("three")));

    c.call("DeleteSecret", &[("SecretName", "rw/s")]).await.unwrap();
    let (status, code, _) = api_error(c.call("GetSecretValue", &[("SecretName", "rw/s")]).await);
    assert_eq!((status, code.as_str()), (409, "Rejected.ResourceInDeleteWindow"), "the deletion is seen at once");
}
