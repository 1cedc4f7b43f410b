//! The real server over real HTTPS: signature rejections, input errors that leave the store
//! unchanged, and secrets that never reach a log, an error body or the store's files.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use http_body_util::Full;
use serde_json::Value;
use sesame_api::Timestamp;
use sesame_client::{ClientError, SignatureVersion};

fn now() -> Timestamp {
    Timestamp(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64)
}

fn api_error(r: Result<Value, ClientError>) -> (u16, String, String) {
    match r {
        Err(ClientError::Api { status, code, message, .. }) => (status, code, message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn key_count(c: &sesame_client::Client) -> i64 {
    c.call("ListKeys", &[]).await.unwrap()["TotalCount"].as_i64().unwrap()
}

#[tokio::test]
async fn signed_requests_are_rejected_when_tampered_replayed_stale_or_unknown() {
    let server = common::TestServer::start(&[]);
    for version in [SignatureVersion::V3, SignatureVersion::V1] {
        let c = server.client_with(&server.access_key_id, &server.access_key_secret, version);
        c.call("ListKeys", &[]).await.unwrap();

        // Tampered: a parameter changed after signing.
        let mut p = c.prepare("DescribeKey", &[("KeyId", "key-a")], now(), &sesame_crypto::random::nonce().unwrap()).unwrap();
        *p.request.body_mut() = Full::new(Bytes::from(match version {
            SignatureVersion::V3 => "KeyId=key-b".to_string(),
            SignatureVersion::V1 => {
                String::from_utf8(http_body_util::BodyExt::collect(p.request.body().clone()).await.unwrap().to_bytes().to_vec())
                    .unwrap()
                    .replace("key-a", "key-b")
            }
        }));
        if version == SignatureVersion::V3 {
            // Keep the payload hash honest so that the signature itself is what fails.
            let hash = sesame_crypto::sha256_hex(b"KeyId=key-b");
            p.request.headers_mut().insert("x-acs-content-sha256", hash.parse().unwrap());
        }
        let (status, code, _) = api_error(c.send(p).await);
        assert_eq!((status, code.as_str()), (400, "SignatureDoesNotMatch"), "{version:?} tampered");

        // V3 payload hash that does not match the body.
        if version == SignatureVersion::V3 {
            let mut p = c.prepare("ListKeys", &[], now(), &sesame_crypto::random::nonce().unwrap()).unwrap();
            *p.request.body_mut() = Full::new(Bytes::from("PageSize=5"));
            let (status, code, msg) = api_error(c.send(p).await);
            assert_eq!((status, code.as_str()), (400, "IncompleteSignature"));
            assert!(msg.contains("x-acs-content-sha256"), "{msg}");
        }

        // Replayed: the very same signed request twice.
        let nonce = sesame_crypto::random::nonce().unwrap();
        c.send(c.prepare("ListKeys", &[], now(), &nonce).unwrap()).await.unwrap();
        let (status, code, _) = api_error(c.send(c.prepare("ListKeys", &[], now(), &nonce).unwrap()).await);
        assert_eq!((status, code.as_str()), (400, "SignatureNonceUsed"), "{version:?} replay");

        // Stale and future timestamps.
        for skew in [-16 * 60, 16 * 60] {
            let p = c.prepare("ListKeys", &[], Timestamp(now().0 + skew), &sesame_crypto::random::nonce().unwrap()).unwrap();
            let (status, code, _) = api_error(c.send(p).await);
            assert_eq!((status, code.as_str()), (400, "IllegalTimestamp"), "{version:?} skew {skew}");
        }

        // Unknown access key, and a known key with the wrong secret.
        let stranger = server.client_with("LTAIunknownunknown00", "whatever", version);
        let (status, code, _) = api_error(stranger.call("ListKeys", &[]).await);
        assert_eq!((status, code.as_str()), (404, "InvalidAccessKeyId.NotFound"));
        let wrong = server.client_with(&server.access_key_id, "not-the-secret", version);
        let (status, code, _) = api_error(wrong.call("ListKeys", &[]).await);
        assert_eq!((status, code.as_str()), (400, "SignatureDoesNotMatch"));
    }

    // Unsigned, and a malformed Authorization header.
    let c = server.client();
    let raw = |auth: Option<&str>| {
        let mut b = hyper::Request::post(format!("{}/?Action=ListKeys&Version=2016-01-20", server.endpoint));
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        b.body(Full::new(Bytes::new())).unwrap()
    };
    for auth in [None, Some("ACS3-HMAC-SHA256 garbage"), Some("Bearer abc")] {
        let (status, body) = c.send_raw(raw(auth)).await.unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!((status, v["Code"].as_str().unwrap()), (400, "IncompleteSignature"), "{auth:?}");
        assert!(v["RequestId"].as_str().is_some_and(|r| !r.is_empty()));
    }
    let (status, body) =
        c.send_raw(hyper::Request::put(format!("{}/", server.endpoint)).body(Full::new(Bytes::new())).unwrap()).await.unwrap();
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
}

#[tokio::test]
async fn bad_input_gets_its_alibaba_error_and_leaves_the_store_unchanged() {
    let server = common::TestServer::start(&[]);
    let c = server.client();
    let key = c.call("CreateKey", &[("Description", "k")]).await.unwrap()["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    let before = key_count(&c).await;
    let describe = || async { c.call("DescribeKey", &[("KeyId", key.as_str())]).await.unwrap()["KeyMetadata"].clone() };
    let original = describe().await;

    // (action, parameters, HTTP status, code, what the message must name)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        ("CreateKey", vec![("KeySpec", "RSA_2048")], 400, "InvalidParameter", "KeySpec"),
        ("CreateKey", vec![("EnableAutomaticRotation", "maybe")], 400, "InvalidParameter", "EnableAutomaticRotation"),
        ("CreateKey", vec![("EnableAutomaticRotation", "true"), ("RotationInterval", "366d")], 400, "InvalidParameter", "RotationInterval"),
        ("CreateKey", vec![("DKMSInstanceId", "kst-nope")], 404, "Forbidden.ResourceNotFound", "kst-nope"),
        ("ScheduleKeyDeletion", vec![("KeyId", &key), ("PendingWindowInDays", "367")], 400, "InvalidParameter", "PendingWindowInDays"),
        ("ScheduleKeyDeletion", vec![("KeyId", &key)], 400, "MissingParameter", "PendingWindowInDays"),
        ("CancelKeyDeletion", vec![("KeyId", &key)], 409, "Rejected.StateModifiedFailed", "not pending deletion"),
        ("CreateAlias", vec![("KeyId", &key), ("AliasName", "alias/acs-reserved")], 400, "InvalidParameter", "AliasName"),
        ("CreateAlias", vec![("KeyId", &key), ("AliasName", "noprefix")], 400, "InvalidParameter", "alias/"),
        ("Encrypt", vec![("KeyId", &key), ("Plaintext", "%%%")], 400, "InvalidParameter", "Plaintext"),
        (
            "Encrypt",
            vec![("KeyId", &key), ("Plaintext", "aGk="), ("EncryptionContext", "[1,2]")],
            400,
            "InvalidParameter",
            "EncryptionContext",
        ),
        ("Encrypt", vec![("KeyId", &key)], 400, "MissingParameter", "Plaintext"),
        ("Decrypt", vec![("CiphertextBlob", "aGVsbG8gd29ybGQgdGhpcyBpcyBub3QgYSBibG9i")], 400, "InvalidCiphertext", "ciphertext"),
        ("GenerateDataKey", vec![("KeyId", &key), ("NumberOfBytes", "0")], 400, "InvalidParameter", "NumberOfBytes"),
        ("DescribeKey", vec![("KeyId", "key-missing")], 404, "Forbidden.KeyNotFound", "key-missing"),
        ("NoSuchAction", vec![], 404, "InvalidAction.NotFound", "NoSuchAction"),
    ];
    for (action, params, status, code, mention) in cases {
        let (s, c2, msg) = api_error(c.call(action, &params).await);
        assert_eq!((s, c2.as_str()), (status, code), "{action} {params:?}: {msg}");
        assert!(msg.contains(mention), "{action}: message {msg:?} should mention {mention:?}");
    }
    assert_eq!(key_count(&c).await, before, "failed requests created no key");
    assert_eq!(describe().await, original, "failed requests changed no key");

    // A wrong API version, in a request signed by hand (V1, no x-acs-* headers).
    let ts = now().to_string();
    let nonce = sesame_crypto::random::nonce().unwrap();
    let mut params: Vec<(String, String)> = [
        ("Action", "ListKeys"),
        ("Version", "2099-01-01"),
        ("AccessKeyId", server.access_key_id.as_str()),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", nonce.as_str()),
        ("Timestamp", ts.as_str()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let sig = sesame_crypto::sign::HmacKeys::new(server.access_key_secret.as_bytes())
        .v1_signature(&sesame_crypto::sign::v1_string_to_sign("POST", &params));
    params.push(("Signature".into(), sig));
    let query = sesame_crypto::sign::form_encode(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let (status, body) =
        c.send_raw(hyper::Request::post(format!("{}/?{query}", server.endpoint)).body(Full::new(Bytes::new())).unwrap()).await.unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, v["Code"].as_str().unwrap()), (400, "InvalidVersion"), "{v}");

    // A body over the limit.
    let big = "a".repeat(300 * 1024);
    let (s, code, msg) = api_error(c.call("Encrypt", &[("KeyId", key.as_str()), ("Plaintext", big.as_str())]).await);
    assert_eq!((s, code.as_str()), (400, "InvalidParameter"), "{msg}");
    assert!(msg.contains("larger than"), "{msg}");
}

#[tokio::test]
async fn secrets_never_reach_logs_error_bodies_or_the_store_files() {
    let server = common::TestServer::start(&[]);
    let c = server.client();
    let canary = "CANARY-7f3a9-plaintext-never-logged";
    let canary_b64 = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(canary)
    };
    let key = c.call("CreateKey", &[]).await.unwrap()["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    let blob = c
        .call("Encrypt", &[("KeyId", key.as_str()), ("Plaintext", canary_b64.as_str()), ("EncryptionContext", r#"{"c":"1"}"#)])
        .await
        .unwrap()["CiphertextBlob"]
        .as_str()
        .unwrap()
        .to_string();
    let plain = c.call("Decrypt", &[("CiphertextBlob", blob.as_str()), ("EncryptionContext", r#"{"c":"1"}"#)]).await.unwrap();
    assert_eq!(plain["Plaintext"], canary_b64.as_str());
    let data_key = c.call("GenerateDataKey", &[("KeyId", key.as_str())]).await.unwrap()["Plaintext"].as_str().unwrap().to_string();

    // Failing requests that carry the canary: their error bodies must not echo it.
    let mut bodies = String::new();
    for params in [
        vec![("KeyId", "key-missing"), ("Plaintext", canary_b64.as_str())],
        vec![("KeyId", key.as_str()), ("Plaintext", canary)],
        vec![("KeyId", key.as_str()), ("Plaintext", canary_b64.as_str()), ("EncryptionContext", canary)],
    ] {
        bodies.push_str(&format!("{:?}", c.call("Encrypt", &params).await));
    }
    bodies.push_str(&format!("{:?}", c.call("Decrypt", &[("CiphertextBlob", blob.as_str()), ("EncryptionContext", r#"{"c":"2"}"#)]).await));

    let mut server = server;
    server.stop();
    let mut haystacks = vec![("error bodies".to_string(), bodies), ("server log".to_string(), server.log())];
    haystacks.extend(server.data_files());
    for (name, text) in &haystacks {
        for needle in [canary, canary_b64.as_str(), data_key.as_str(), server.access_key_secret.as_str()] {
            assert!(!text.contains(needle), "{name} contains a secret ({needle})");
        }
    }
    assert!(haystacks.iter().any(|(n, _)| n.ends_with("sesame.db")), "the store file was searched");
}

#[tokio::test]
async fn requests_are_logged_with_their_source_address_and_no_parameters() {
    let server = common::TestServer::start(&["--plain-http"]);
    server.client().call("ListKeys", &[("PageSize", "7")]).await.unwrap();
    let log = server.log();
    let line = log.lines().find(|l| l.contains("action=ListKeys")).expect("a request line");
    assert!(line.contains("source_ip=127.0.0.1"), "{line}");
    assert!(line.contains("status=200") && !line.contains("PageSize"), "{line}");
}

#[tokio::test]
async fn a_given_certificate_is_served_instead_of_the_generated_one() {
    // The first server generates a certificate; the second serves it from files.
    let first = common::TestServer::start(&[]);
    let tls = first.dir.join("config/data/tls");
    let (cert, key) = (tls.join("cert.pem"), tls.join("key.pem"));
    let second = common::TestServer::start(&["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
    assert!(second.https);
    assert!(!second.dir.join("config/data/tls").exists(), "no certificate is generated when one is given");
    let client = sesame_client::Client::new(sesame_client::ClientConfig {
        endpoint: second.endpoint.clone(),
        access_key_id: second.access_key_id.clone(),
        access_key_secret: second.access_key_secret.clone().into(),
        ca_file: Some(cert),
        insecure: false,
        signature: SignatureVersion::V3,
        timeout: std::time::Duration::from_secs(10),
    })
    .unwrap();
    assert_eq!(key_count(&client).await, 0);
    // A client that trusts nothing refuses the self-signed certificate.
    let untrusting = sesame_client::Client::new(sesame_client::ClientConfig {
        endpoint: second.endpoint.clone(),
        access_key_id: second.access_key_id.clone(),
        access_key_secret: second.access_key_secret.clone().into(),
        ca_file: None,
        insecure: false,
        signature: SignatureVersion::V3,
        timeout: std::time::Duration::from_secs(10),
    })
    .unwrap();
    assert!(matches!(untrusting.call("ListKeys", &[]).await, Err(ClientError::Transport { .. })));
}

#[tokio::test]
async fn plain_http_mode_and_graceful_shutdown_work() {
    let mut server = common::TestServer::start(&["--plain-http"]);
    assert!(!server.https);
    let c = server.client();
    assert_eq!(key_count(&c).await, 0);
    server.stop();
    let status = server.child.try_wait().unwrap().expect("server exited after SIGTERM");
    assert!(status.success(), "graceful shutdown exits 0, got {status:?}");
}

#[tokio::test]
async fn restart_keeps_keys_and_the_admin_key_and_does_not_print_it_again() {
    let dir = common::unique_dir("restart");
    let mut first = common::TestServer::start_in(dir.clone(), &[]);
    let c = first.client();
    let key = c.call("CreateKey", &[]).await.unwrap()["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    let blob =
        c.call("Encrypt", &[("KeyId", key.as_str()), ("Plaintext", "aGk=")]).await.unwrap()["CiphertextBlob"].as_str().unwrap().to_string();
    first.stop();
    let stdout1 = std::fs::read_to_string(dir.join("server.stdout")).unwrap();
    assert!(stdout1.contains("AccessKeySecret"));
    let second = common::TestServer::start_in(dir.clone(), &[]);
    let stdout2 = std::fs::read_to_string(dir.join("server.stdout")).unwrap();
    assert!(!stdout2.contains("AccessKeySecret"), "the admin secret is printed only on the first start");
    let plain = second.client().call("Decrypt", &[("CiphertextBlob", blob.as_str())]).await.unwrap();
    assert_eq!(plain["Plaintext"], "aGk=");
}
