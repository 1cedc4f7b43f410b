//! Due work runs from the Clock: tests move a ManualClock instead of sleeping.
#![allow(clippy::unwrap_used)]

use sesame_api::Params;
use sesame_api::Timestamp;
use sesame_api::kms::KeyRequest;
use sesame_core::{Caller, Ctx, ManualClock, Services};
use sesame_crypto::{KeyMaterial, RootKey};
use std::sync::Arc;

async fn services(clock: Arc<ManualClock>) -> Services {
    let store = sesame_store::open("sqlite::memory:").unwrap();
    let root = Arc::new(RootKey::from_material(KeyMaterial::generate().unwrap()));
    Services::start(store, root, clock, "test".into(), Arc::new(sesame_engines::Engines), Default::default()).await.unwrap().0
}

fn ctx() -> Ctx {
    Ctx { request_id: "r".into(), caller: Caller { access_key_id: "ak".into(), user: "admin".into(), source_ip: "127.0.0.1".into() } }
}

async fn call(s: &Services, action: &str, params: &[(&str, &str)]) -> Result<serde_json::Value, sesame_api::Error> {
    let req = KeyRequest::parse(action, &Params::from_pairs(params.iter().copied()))?.unwrap();
    s.keys.execute(&ctx(), req).await
}

#[tokio::test]
async fn automatic_rotation_adds_a_version_when_due_and_old_versions_still_decrypt() {
    let clock = Arc::new(ManualClock::new(Timestamp::parse_iso8601("2026-01-01T00:00:00Z").unwrap()));
    let s = services(clock.clone()).await;
    let meta = call(&s, "CreateKey", &[("EnableAutomaticRotation", "true"), ("RotationInterval", "7d")]).await.unwrap();
    let id = meta["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    assert_eq!(meta["KeyMetadata"]["NextRotationDate"], "2026-01-08T00:00:00Z");
    let blob = call(&s, "Encrypt", &[("KeyId", &id), ("Plaintext", "aGk=")]).await.unwrap()["CiphertextBlob"].as_str().unwrap().to_string();

    clock.advance(7 * 86_400 - 1);
    assert_eq!(s.keys.run_due().await.unwrap(), 0, "not due one second early");
    clock.advance(1);
    assert_eq!(s.keys.run_due().await.unwrap(), 1);
    let versions = call(&s, "ListKeyVersions", &[("KeyId", &id)]).await.unwrap();
    assert_eq!(versions["TotalCount"], 2);
    let d = call(&s, "DescribeKey", &[("KeyId", &id)]).await.unwrap();
    assert_eq!(d["KeyMetadata"]["LastRotationDate"], "2026-01-08T00:00:00Z");
    assert_eq!(d["KeyMetadata"]["NextRotationDate"], "2026-01-15T00:00:00Z");
    assert_eq!(call(&s, "Decrypt", &[("CiphertextBlob", &blob)]).await.unwrap()["Plaintext"], "aGk=");
}

#[tokio::test]
async fn a_key_is_deleted_when_its_window_ends_and_not_before() {
    let clock = Arc::new(ManualClock::new(Timestamp::parse_iso8601("2026-01-01T00:00:00Z").unwrap()));
    let s = services(clock.clone()).await;
    let id = call(&s, "CreateKey", &[]).await.unwrap()["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    call(&s, "CreateAlias", &[("KeyId", &id), ("AliasName", "alias/doomed")]).await.unwrap();
    call(&s, "ScheduleKeyDeletion", &[("KeyId", &id), ("PendingWindowInDays", "7")]).await.unwrap();
    clock.advance(6 * 86_400);
    s.keys.run_due().await.unwrap();
    assert_eq!(call(&s, "DescribeKey", &[("KeyId", &id)]).await.unwrap()["KeyMetadata"]["KeyState"], "PendingDeletion");
    clock.advance(86_400);
    assert_eq!(s.keys.run_due().await.unwrap(), 1);
    assert_eq!(call(&s, "DescribeKey", &[("KeyId", &id)]).await.unwrap_err().code(), "Forbidden.KeyNotFound");
    assert_eq!(call(&s, "DescribeKey", &[("KeyId", "alias/doomed")]).await.unwrap_err().code(), "Forbidden.AliasNotFound");
}

#[tokio::test]
async fn a_key_has_at_most_fifty_versions() {
    let clock = Arc::new(ManualClock::new(Timestamp(1_800_000_000)));
    let s = services(clock).await;
    let id = call(&s, "CreateKey", &[]).await.unwrap()["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    for _ in 1..50 {
        call(&s, "CreateKeyVersion", &[("KeyId", &id)]).await.unwrap();
    }
    let e = call(&s, "CreateKeyVersion", &[("KeyId", &id)]).await.unwrap_err();
    assert_eq!(e.code(), "Rejected.LimitExceeded");
    assert_eq!(call(&s, "ListKeyVersions", &[("KeyId", &id), ("PageSize", "100")]).await.unwrap()["TotalCount"], 50);
}

async fn secret_call(s: &Services, action: &str, params: &[(&str, &str)]) -> Result<serde_json::Value, sesame_api::Error> {
    let req = sesame_api::secrets::SecretRequest::parse(action, &Params::from_pairs(params.iter().copied()))?.unwrap();
    s.secrets.execute(&ctx(), req).await?.into_value()
}

#[tokio::test]
async fn a_secret_is_purged_when_its_recovery_window_ends_and_not_before() {
    let clock = Arc::new(ManualClock::new(Timestamp::parse_iso8601("2026-03-01T00:00:00Z").unwrap()));
    let s = services(clock.clone()).await;
    secret_call(
        &s,
        "CreateSecret",
        &[("SecretName", "doomed"), ("VersionId", "v1"), ("SecretData", "x"), ("Tags", r#"[{"TagKey":"a","TagValue":"b"}]"#)],
    )
    .await
    .unwrap();
    let d = secret_call(&s, "DeleteSecret", &[("SecretName", "doomed"), ("RecoveryWindowInDays", "7")]).await.unwrap();
    assert_eq!(d["PlannedDeleteTime"], "2026-03-08T00:00:00Z");
    clock.advance(7 * 86_400 - 1);
    assert_eq!(s.secrets.run_due().await.unwrap(), 0);
    assert_eq!(secret_call(&s, "GetSecretValue", &[("SecretName", "doomed")]).await.unwrap_err().code(), "Rejected.ResourceInDeleteWindow");
    clock.advance(1);
    assert_eq!(s.secrets.run_due().await.unwrap(), 1);
    assert_eq!(secret_call(&s, "DescribeSecret", &[("SecretName", "doomed")]).await.unwrap_err().code(), "Forbidden.ResourceNotFound");
    // The name is free again, and the purged secret's tags are gone with it.
    secret_call(&s, "CreateSecret", &[("SecretName", "doomed"), ("VersionId", "v1"), ("SecretData", "y")]).await.unwrap();
    let d = secret_call(&s, "DescribeSecret", &[("SecretName", "doomed"), ("FetchTags", "true")]).await.unwrap();
    assert_eq!(d["Tags"]["Tag"], serde_json::json!([]));
}
