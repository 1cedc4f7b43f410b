//! The audit trail through the real server: every request is one event, the chain survives
//! concurrent requests, each kind of tampering is found with its position, no secret reaches an
//! event, and events of answered requests survive a stalled index and a crash.
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

const PLAIN: &[&str] = &["--plain-http"];

/// The audit trail's index (and sealed head) in a server's data directory.
fn trail_of(dir: &Path) -> PathBuf {
    dir.join("config/data/sesame-audit.db")
}

/// The trail's first segment file, where a short test's events all are.
fn segment_of(dir: &Path) -> PathBuf {
    dir.join("config/data/sesame-audit.trail/00000001.seg")
}

/// Each entry of a segment file: its position, and where it and its payload start and end
/// (`len u32 | seq i64 | MAC (32 bytes) | payload`).
fn entries(bytes: &[u8]) -> Vec<(i64, std::ops::Range<usize>, std::ops::Range<usize>)> {
    let (mut out, mut at) = (Vec::new(), 0);
    while at + 44 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let seq = i64::from_be_bytes(bytes[at + 4..at + 12].try_into().unwrap());
        out.push((seq, at..at + 44 + len, at + 44..at + 44 + len));
        at += 44 + len;
    }
    out
}

/// The index's blocks: `(first position, last position)`, oldest first.
fn blocks(dir: &Path) -> Vec<(i64, i64)> {
    let db = rusqlite::Connection::open(trail_of(dir)).unwrap();
    let mut stmt = db.prepare("SELECT first_seq, last_seq FROM audit_blocks ORDER BY first_seq").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
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

/// Blocks every write to the trail's index in the server's audit file until `unblock`.
fn block_the_index(dir: &Path) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(trail_of(dir)).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    db.execute_batch("CREATE TRIGGER no_index BEFORE INSERT ON audit_blocks BEGIN SELECT RAISE(ABORT, 'index disabled'); END;").unwrap();
    db
}

fn unblock(db: &rusqlite::Connection) {
    db.execute_batch("DROP TRIGGER no_index;").unwrap();
}

/// Requests are recorded in the trail's files, not in its index: while the index cannot be
/// written they go on, and once it can every one of them is found.
#[tokio::test]
async fn requests_go_on_while_the_index_is_blocked_and_none_is_lost() {
    let server = common::TestServer::start(PLAIN);
    let c = server.client();
    c.call("ListKeys", &[]).await.unwrap();
    let db = block_the_index(&server.dir);
    for i in 0..300 {
        let e = c.call("DescribeKey", &[("KeyId", &format!("key-{i}"))]).await.unwrap_err();
        assert!(matches!(e, ClientError::Api { status: 404, .. }), "{e:?}");
    }
    // The indexer tries every 200 ms; its first failure is in the log soon after.
    let said = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        server.log().contains("could not be indexed")
    });
    assert!(said, "the indexer says why");
    unblock(&db);
    let v = verify(&c).await;
    assert_eq!(v["Valid"], true, "{v}");
    assert_eq!(v["EventCount"], 301, "each answered request has its event: {v}");
    let newest = lookup(&c, &[("MaxResults", "2")]).await;
    assert_eq!(newest[1]["resourceName"].as_str().map(|r| r.ends_with("key/key-299")), Some(true), "{newest:?}");
}

/// Events of answered requests that the index had not taken before a crash are read back from
/// the trail's files at the next start.
#[tokio::test]
async fn events_of_answered_requests_survive_a_crash() {
    let dir = common::unique_dir("crash");
    let mut server = common::TestServer::start_in(dir.clone(), PLAIN);
    let c = server.client();
    c.call("ListKeys", &[]).await.unwrap();
    let db = block_the_index(&dir);
    for i in 0..20 {
        let _ = c.call("DescribeKey", &[("KeyId", &format!("key-crash-{i}"))]).await;
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    unblock(&db);
    let indexed: i64 = db.query_row("SELECT COALESCE(MAX(last_seq), 0) FROM audit_blocks", [], |r| r.get(0)).unwrap();
    assert!(indexed < 21, "the crash came before the index took every event ({indexed})");
    drop(db);
    let mut server = common::TestServer::start_in(dir.clone(), PLAIN);
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
    // The next start finds nothing more: the 21, then this server's VerifyEvents and LookupEvents.
    server.stop();
    let server = common::TestServer::start_in(dir, PLAIN);
    let v = verify(&server.client()).await;
    assert_eq!((v["Valid"].as_bool(), v["EventCount"].as_i64()), (Some(true), Some(23)), "{v}");
}

/// What a tampering does to a stopped server's data directory.
enum Tamper {
    /// Rewrites the first segment file.
    Segment(fn(&mut Vec<u8>)),
    Sql(String),
}

/// A kind of tampering, what it does, and the problems expected: position and a word of each.
type Case = (&'static str, Tamper, Vec<(i64, &'static str)>);

/// Replaces every `from` in `bytes[range]` with `to` (of the same length).
fn replace(bytes: &mut [u8], range: std::ops::Range<usize>, from: &[u8], to: &[u8]) {
    let mut i = range.start;
    while i + from.len() <= range.end {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to);
        }
        i += 1;
    }
}

fn payload_of(bytes: &[u8], seq: i64) -> std::ops::Range<usize> {
    entries(bytes).into_iter().find(|(s, ..)| *s == seq).unwrap().2
}

/// Each kind of tampering, made directly in the trail's files while the server is stopped, is
/// found by `VerifyEvents` (and `sesame audit verify`) with its position.
#[tokio::test]
async fn every_kind_of_tampering_is_found_with_its_position() {
    let dir = common::unique_dir("tamper");
    let mut server = common::TestServer::start_in(dir.clone(), PLAIN);
    let c = server.client();
    for i in 0..10 {
        let _ = c.call("DescribeKey", &[("KeyId", &format!("key-{i}"))]).await;
    }
    let v = verify(&c).await;
    assert_eq!((v["Valid"].as_bool(), v["EventCount"].as_i64()), (Some(true), Some(10)));
    server.stop();
    // Events 1–10 are the DescribeKey calls, 11 the VerifyEvents call. The block that holds
    // event 4 is deleted from the index below: its events go missing from where it starts.
    let index = blocks(&dir);
    assert_eq!(index.last().map(|b| b.1), Some(11), "{index:?}");
    let (first, last) = *index.iter().find(|(f, l)| (*f..=*l).contains(&4)).unwrap();
    assert!(last < 11, "VerifyEvents came after the index took the events before it: {index:?}");
    let delete_block = format!("DELETE FROM audit_blocks WHERE first_seq = {first}");
    let cases: Vec<Case> = vec![
        (
            "edit",
            Tamper::Segment(|b| {
                let r = payload_of(b, 3);
                replace(b, r, b"key-2", b"key-X")
            }),
            vec![(3, "changed")],
        ),
        (
            "swap two events",
            Tamper::Segment(|b| {
                let (seven, eight) = (payload_of(b, 7), payload_of(b, 8));
                assert_eq!(seven.len(), eight.len());
                let copy = b[seven.clone()].to_vec();
                b.copy_within(eight.clone(), seven.start);
                b[eight].copy_from_slice(&copy);
            }),
            vec![(7, "changed"), (8, "changed")],
        ),
        ("delete from the index", Tamper::Sql(delete_block), vec![(first, "missing")]),
        (
            "cut the tail",
            Tamper::Segment(|b| {
                let start = entries(b).into_iter().find(|(s, ..)| *s == 10).unwrap().1.start;
                b.truncate(start);
            }),
            vec![(10, "cut"), (11, "cut")],
        ),
        (
            "forge the head",
            Tamper::Sql("UPDATE meta SET value = '9' || substr(value, instr(value, ':')) WHERE key = 'audit_head'".into()),
            vec![(11, "altered")],
        ),
    ];
    for (kind, tamper, expected) in cases {
        let copy = common::unique_dir("tampered");
        copy_dir(&dir, &copy);
        match tamper {
            Tamper::Segment(f) => {
                let mut bytes = std::fs::read(segment_of(&copy)).unwrap();
                f(&mut bytes);
                std::fs::write(segment_of(&copy), bytes).unwrap();
            }
            Tamper::Sql(sql) => rusqlite::Connection::open(trail_of(&copy)).unwrap().execute_batch(&sql).unwrap(),
        }
        let server = common::TestServer::start_in(copy.clone(), PLAIN);
        let v = verify(&server.client()).await;
        assert_eq!(v["Valid"], false, "{kind}: {v}");
        let problems: Vec<(i64, String)> = v["Problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["Position"].as_i64().unwrap(), p["Problem"].as_str().unwrap().to_string()))
            .collect();
        assert_eq!(problems.len(), expected.len(), "{kind}: {problems:?}");
        for ((pos, text), (want_pos, want)) in problems.iter().zip(&expected) {
            assert_eq!(pos, want_pos, "{kind}: {problems:?}");
            assert!(text.contains(want), "{kind}: {text}");
        }
        if kind == "delete from the index" {
            let out = server.cli(&["audit", "verify"]);
            assert_eq!(out.status.code(), Some(7), "the CLI exits 7 on a broken trail");
            let said = String::from_utf8_lossy(&out.stderr);
            assert!(said.contains(&format!("position {first}: events {first} to {last} are missing")), "{said}");
        }
    }
    let pristine = common::TestServer::start_in(dir.clone(), PLAIN);
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
