//! The official Alibaba Cloud Python SDKs, installed from PyPI, drive a real server.
#![allow(clippy::unwrap_used)]

mod common;

#[test]
fn official_python_sdks_drive_a_key_lifecycle_over_https() {
    let server = common::TestServer::start(&[]);
    assert!(server.https, "the default server speaks HTTPS");
    let out = common::run_python(&server, "sdk_keys.py", &[]);
    assert!(out.contains("ALL PASSED"), "{out}");
    for check in ["tea v3 Encrypt/Decrypt round trip", "tea v1 (HMAC-SHA1)", "legacy SDK (V1) Encrypt/Decrypt", "legacy SDK XML response"] {
        assert!(out.contains(&format!("PASS {check}")), "missing check {check}: {out}");
    }
}

#[test]
fn official_clients_manage_and_read_generic_secrets() {
    let server = common::TestServer::start(&[]);
    let out = common::run_python(&server, "sdk_secrets.py", &[]);
    assert!(out.contains("ALL PASSED"), "{out}");
    for check in [
        "PutSecretValue moves ACSCurrent/ACSPrevious",
        "legacy SDK (V1) GetSecretValue, XML",
        "aliyun-secret-manager-client fetches and caches a secret",
    ] {
        assert!(out.contains(&format!("PASS {check}")), "missing check {check}: {out}");
    }
}
