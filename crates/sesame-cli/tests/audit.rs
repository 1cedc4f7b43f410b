//! The audit trail through the real server: every request is one event, the chain survives
//! concurrent requests, each kind of tampering is found with its position, no secret reaches an
//! event, and a request that cannot be recorded fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::Value;
use sesame_api::ram::{ACTIONTRAIL_API_VERSION, RAM_API_VERSION};
use sesame_client::{Client, ClientError};
use std::path::{Path, PathBuf};

async fn verify(c: &Client) -> Value {
    c.call_version(ACTIONTRAIL_API_VERSION, "VerifyEvents", &[]).await.unwrap()
}

async fn lookup(c: &Client, params: &[(&str, &str)]) -> Vec<Value> {
    c.call_version(ACTIONTRAIL_API_VERSION, "LookupEvents", params).await.unwrap()["Events"].as_array().unwrap().clone()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// For servers whose data directory a test copies (a copy is not sparse, as the journal is).
const SMALL_JOURNAL: &[&str] = &["--plain-http", "--audit-journal-kib", "64"];

/// The audit trail's own file in a server's data directory.
fn trail_of(dir: &Path) -> PathBuf {
    dir.join("config/data/sesame-audit.db")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_keep_one_whole_chain() {
    let server = common::TestServer::start(&["--plain-http"]);
    let mut tasks = Vec::new();
    for t in 0..8 {
        let c = server.client();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                if i % 5 == 0 {
                    let _ = c.call("DescribeKey", &[("KeyId", &format!("key-missing-{t}-{i}"))]).await;
                } else {
                    c.call("ListKeys", &[]).await.unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let c = server.client();
    let v = verify(&c).await;
    assert_eq!(v["Valid"], true, "{v}");
    assert_eq!(v["EventCount"], 200, "one event per request: {v}");
    let failed = lookup(&c, &[("LookupAttribute.1.Key", "Result"), ("LookupAttribute.1.Value", "Failure"), ("MaxResults", "100")]).await;
    assert_eq!(failed.len(), 40, "the refused DescribeKey calls");
    let e = &failed[0];
    assert_eq!((e["eventName"].as_str(), e["errorCode"].as_str()), (Some("DescribeKey"), Some("Forbidden.KeyNotFound")));
    assert_eq!((e["userIdentity"]["type"].as_str(), e["serviceName"].as_str()), (Some("root-account"), Some("Kms")));
    assert!(e["resourceName"].as_str().unwrap().contains(":key/key-missing-"), "{e}");
    assert!(e["sourceIpAddress"] == "127.0.0.1" && e["requestId"].is_string() && e["eventTime"].is_string(), "{e}");

    // Pages continue with NextToken and do not overlap.
    let first = c.call_version(ACTIONTRAIL_API_VERSION, "LookupEvents", &[("MaxResults", "150")]).await.unwrap();
    let token = first["NextToken"].as_str().unwrap().to_string();
    let rest = lookup(&c, &[("MaxResults", "150"), ("NextToken", &token)]).await;
    assert_eq!(first["Events"].as_array().unwrap().len() + rest.len(), 202, "200 requests, VerifyEvents and the first LookupEvents");
}

#[tokio::test]
async fn unsigned_and_badly_signed_requests_are_recorded_too() {
    let server = common::TestServer::start(&["--plain-http"]);
    let c = server.client();
    let forged = server.client_with(&server.access_key_id, "not-the-secret", sesame_client::SignatureVersion::V3);
    assert_eq!(forged.call("ListKeys", &[]).await.unwrap_err().code(), Some("SignatureDoesNotMatch"));
    let stranger = server.client_with("LTAIstranger", "x", sesame_client::SignatureVersion::V1);
    assert_eq!(stranger.call("ListKeys", &[]).await.unwrap_err().code(), Some("InvalidAccessKeyId.NotFound"));
    let events = lookup(&c, &[("LookupAttribute.1.Key", "Result"), ("LookupAttribute.1.Value", "Failure")]).await;
    let codes: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["errorCode"].as_str().unwrap(),
                e["userIdentity"]["accessKeyId"].as_str().unwrap(),
                e["userIdentity"]["type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            ("InvalidAccessKeyId.NotFound", "LTAIstranger", "unknown"),
            ("SignatureDoesNotMatch", server.access_key_id.as_str(), "unknown")
        ]
    );
}

#[tokio::test]
async fn no_secret_value_password_or_access_key_secret_reaches_an_event() {
    let server = common::TestServer::start(&["--plain-http"]);
    let c = server.client();
    let canary = "CANARY-audit-4e1f-secret-value";
    c.call("CreateSecret", &[("SecretName", "a"), ("VersionId", "v1"), ("SecretData", canary)]).await.unwrap();
    c.call("PutSecretValue", &[("SecretName", "a"), ("VersionId", "v2"), ("SecretData", canary)]).await.unwrap();
    c.call("GetSecretValue", &[("SecretName", "a")]).await.unwrap();
    let key = c.call("CreateKey", &[]).await.unwrap()["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(canary);
    c.call("Encrypt", &[("KeyId", &key), ("Plaintext", &b64), ("EncryptionContext", &format!(r#"{{"x":"{canary}"}}"#))]).await.unwrap();
    let _ = c
        .call_version(
            sesame_api::rds::RDS_API_VERSION,
            "RegisterDBInstance",
            &[
                ("Engine", "PostgreSQL"),
                ("ConnectionString", "127.0.0.1"),
                ("Port", "1"),
                ("AccountName", "a"),
                ("AccountPassword", canary),
            ],
        )
        .await;
    c.call_version(RAM_API_VERSION, "CreateUser", &[("UserName", "kim")]).await.unwrap();
    let k = c.call_version(RAM_API_VERSION, "CreateAccessKey", &[("UserName", "kim")]).await.unwrap();
    let ak_secret = k["AccessKey"]["AccessKeySecret"].as_str().unwrap().to_string();

    let events = lookup(&c, &[("MaxResults", "1000")]).await;
    assert!(events.len() >= 8, "{}", events.len());
    let text = Value::Array(events.clone()).to_string();
    for needle in [canary, b64.as_str(), ak_secret.as_str(), server.access_key_secret.as_str()] {
        assert!(!text.contains(needle), "an audit event holds a secret ({needle})");
    }
    let put = events.iter().find(|e| e["eventName"] == "PutSecretValue").unwrap();
    assert_eq!(put["requestParameters"]["SecretData"], "[redacted]", "{put}");
    assert_eq!(put["requestParameters"]["SecretName"], "a");
    let mut server = server;
    server.stop();
    for (name, text) in server.data_files() {
        assert!(!text.contains(canary) && !text.contains(&ak_secret), "{name} holds a secret");
    }
}

/// Blocks every append to the trail in the server's audit file until `unblock`.
fn block_the_trail(dir: &Path) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(trail_of(dir)).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    db.execute_batch("CREATE TRIGGER no_audit BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'audit disabled'); END;").unwrap();
    db
}

fn unblock(db: &rusqlite::Connection) {
    db.execute_batch("DROP TRIGGER no_audit;").unwrap();
}

/// While the trail cannot take events, requests go on as long as the journal holds theirs; once
/// it is full they fail, and every request that succeeded has its event when the trail is back.
#[tokio::test]
async fn a_request_that_cannot_be_recorded_fails() {
    let server = common::TestServer::start(&["--plain-http", "--audit-journal-kib", "64"]);
    let c = server.client();
    c.call("ListKeys", &[]).await.unwrap();
    let db = block_the_trail(&server.dir);
    let mut answered = 1;
    let failure = loop {
        match c.call("DescribeKey", &[("KeyId", &format!("key-{answered}"))]).await {
            Err(ClientError::Api { status: 404, .. }) => answered += 1,
            Err(ClientError::Api { status, code, .. }) => break (status, code),
            other => panic!("unexpected {other:?}"),
        }
        assert!(answered < 1_000, "64 KiB of journal cannot hold {answered} events");
    };
    assert_eq!(failure, (500, "InternalFailure.Audit".to_string()), "a full journal fails the request");
    assert!(answered > 20, "the journal held the events of {answered} requests");
    assert!(server.log().contains("could not be copied from the journal into the trail"), "the writer says why");
    unblock(&db);
    c.call("ListKeys", &[]).await.unwrap();
    let v = verify(&c).await;
    assert_eq!(v["Valid"], true, "{v}");
    assert_eq!(v["EventCount"], answered + 1, "each answered request has its event, the refused one none: {v}");
}

/// Events of answered requests that a crash kept from the trail are copied at the next start.
#[tokio::test]
async fn events_in_the_journal_survive_a_crash() {
    let dir = common::unique_dir("crash");
    let mut server = common::TestServer::start_in(dir.clone(), &["--plain-http"]);
    let c = server.client();
    c.call("ListKeys", &[]).await.unwrap();
    let db = block_the_trail(&dir);
    for i in 0..20 {
        let _ = c.call("DescribeKey", &[("KeyId", &format!("key-crash-{i}"))]).await;
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    unblock(&db);
    let in_trail: i64 = db.query_row("SELECT COUNT(*) FROM audit_events", [], |r| r.get(0)).unwrap();
    assert!(in_trail < 21, "the crash came before the trail took every event ({in_trail})");
    drop(db);
    let mut server = common::TestServer::start_in(dir.clone(), &["--plain-http"]);
    let c = server.client();
    let v = verify(&c).await;
    assert_eq!((v["Valid"].as_bool(), v["EventCount"].as_i64()), (Some(true), Some(21)), "{v}");
    let names: Vec<String> = lookup(&c, &[("MaxResults", "100")])
        .await
        .iter()
        .filter_map(|e| e["resourceName"].as_str().and_then(|r| r.split("key/").nth(1)).map(str::to_string))
        .collect();
    assert_eq!(names.len(), 20, "{names:?}");
    assert_eq!(names.first().map(String::as_str), Some("key-crash-19"), "newest first, in the order they were answered");
    // The next start finds nothing more to copy: the 21, then this server's VerifyEvents and
    // LookupEvents.
    server.stop();
    let server = common::TestServer::start_in(dir, &["--plain-http"]);
    let v = verify(&server.client()).await;
    assert_eq!((v["Valid"].as_bool(), v["EventCount"].as_i64()), (Some(true), Some(23)), "{v}");
}

/// Each kind of tampering, made directly in the store file while the server is stopped, is
/// found by `VerifyEvents` (and `sesame audit verify`) with its position.
#[tokio::test]
async fn every_kind_of_tampering_is_found_with_its_position() {
    let dir = common::unique_dir("tamper");
    let mut server = common::TestServer::start_in(dir.clone(), SMALL_JOURNAL);
    let c = server.client();
    for i in 0..10 {
        let _ = c.call("DescribeKey", &[("KeyId", &format!("key-{i}"))]).await;
    }
    let v = verify(&c).await;
    assert_eq!((v["Valid"].as_bool(), v["EventCount"].as_i64()), (Some(true), Some(10)));
    server.stop();
    // Events 1–10 are the DescribeKey calls, 11 the VerifyEvents call.
    // (kind, the tampering, the problems expected: position and a word of the message)
    type Case<'a> = (&'a str, &'a str, &'a [(i64, &'a str)]);
    let cases: [Case; 7] = [
        ("edit", "UPDATE audit_events SET event = replace(event, 'key-2', 'key-X') WHERE seq = 3", &[(3, "changed")]),
        ("edit a column", "UPDATE audit_events SET user_name = 'mallory' WHERE seq = 6", &[(6, "changed")]),
        ("delete", "DELETE FROM audit_events WHERE seq = 4", &[(4, "missing")]),
        (
            "insert",
            "INSERT INTO audit_events SELECT 12, time, user_name, event_name, resource, result, access_key, event, mac FROM audit_events WHERE seq = 2",
            &[(12, "changed"), (12, "added outside")],
        ),
        (
            "reorder",
            "CREATE TEMP TABLE swap AS SELECT seq, event FROM audit_events WHERE seq IN (7, 8); UPDATE audit_events SET event = (SELECT event FROM swap WHERE swap.seq = 15 - audit_events.seq) WHERE seq IN (7, 8)",
            &[(7, "changed"), (8, "changed")],
        ),
        ("cut the tail", "DELETE FROM audit_events WHERE seq > 9", &[(10, "cut")]),
        ("forge the head", "UPDATE meta SET value = '9' || substr(value, instr(value, ':')) WHERE key = 'audit_head'", &[(11, "altered")]),
    ];
    for (kind, sql, expected) in cases {
        let copy = common::unique_dir("tampered");
        copy_dir(&dir, &copy);
        rusqlite::Connection::open(trail_of(&copy)).unwrap().execute_batch(sql).unwrap();
        let server = common::TestServer::start_in(copy.clone(), SMALL_JOURNAL);
        let v = verify(&server.client()).await;
        assert_eq!(v["Valid"], false, "{kind}: {v}");
        let problems: Vec<(i64, String)> = v["Problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["Position"].as_i64().unwrap(), p["Problem"].as_str().unwrap().to_string()))
            .collect();
        assert_eq!(problems.len(), expected.len(), "{kind}: {problems:?}");
        for ((pos, text), (want_pos, want)) in problems.iter().zip(expected) {
            assert_eq!(pos, want_pos, "{kind}: {problems:?}");
            assert!(text.contains(want), "{kind}: {text}");
        }
        if kind == "delete" {
            let out = server.cli(&["audit", "verify"]);
            assert_eq!(out.status.code(), Some(7), "the CLI exits 7 on a broken trail");
            assert!(String::from_utf8_lossy(&out.stderr).contains("position 4: events 4 to 4 are missing"));
        }
    }
    let pristine = common::TestServer::start_in(dir.clone(), SMALL_JOURNAL);
    let out = pristine.cli(&["audit", "verify"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    drop(pristine);
}

#[test]
fn the_cli_lists_and_exports_the_trail() {
    let server = common::TestServer::start(&["--plain-http"]);
    let sesame = |args: &[&str]| server.cli(args);
    assert!(sesame(&["key", "list"]).status.success());
    assert_eq!(sesame(&["key", "describe", "key-nope"]).status.code(), Some(3));
    let out = sesame(&["audit", "list", "--failed", "--output", "table"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("DescribeKey") && table.contains("Forbidden.KeyNotFound") && !table.contains("ListKeys"), "{table}");
    let file = server.dir.join("trail.jsonl");
    let out = sesame(&["audit", "export", "--file", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> = std::fs::read_to_string(&file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let names: Vec<&str> = lines.iter().map(|e| e["eventName"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["ListKeys", "DescribeKey", "LookupEvents"], "oldest first");
}
