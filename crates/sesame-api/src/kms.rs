//! Key actions of KMS 2016-01-20: the typed requests they parse into and their responses.
//!
//! The gateway turns `(Action, Params)` into a [`KeyRequest`] (mini-redis's `Command`), so a
//! handler never touches raw parameters and every check on input lives here.

use crate::error::{Error, Result};
use crate::params::Params;
use base64::Engine;
use serde::Serialize;
use serde_json::{Map, Value};
use std::fmt;
use zeroize::Zeroize;

/// A value that goes to the client but must never reach a log or a `Debug` print (a decrypted
/// plaintext, a data key). Zeroed on drop.
#[derive(Serialize)]
#[serde(transparent)]
pub struct Sensitive<T: Zeroize>(T);

impl<T: Zeroize> Sensitive<T> {
    pub fn new(v: T) -> Self {
        Sensitive(v)
    }
    pub fn expose_secret(&self) -> &T {
        &self.0
    }
}

impl<T: Zeroize> Drop for Sensitive<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

pub const DEFAULT_PAGE_SIZE: i64 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub number: i64,
    pub size: i64,
}

impl Page {
    pub fn from_params(p: &Params) -> Result<Page> {
        Ok(Page {
            number: p.int_in("PageNumber", 1, i64::from(i32::MAX))?.unwrap_or(1),
            size: p.int_in("PageSize", 1, 100)?.unwrap_or(DEFAULT_PAGE_SIZE),
        })
    }
    pub fn offset(&self) -> i64 {
        (self.number - 1).saturating_mul(self.size)
    }
}

/// `EncryptionContext`: a JSON object bound to the ciphertext as associated data. Kept in its
/// canonical form (keys sorted, compact), so the same context always gives the same bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncryptionContext(Option<String>);

impl EncryptionContext {
    pub fn from_param(p: &Params, name: &str) -> Result<Self> {
        match p.json(name)? {
            None => Ok(EncryptionContext(None)),
            Some(Value::Object(m)) => Ok(Self::from_map(&m)),
            Some(_) => Err(Error::invalid(name, "must be a JSON object of key-value pairs")),
        }
    }

    pub fn from_map(m: &Map<String, Value>) -> Self {
        if m.is_empty() {
            return EncryptionContext(None);
        }
        // serde_json's Map is ordered by key, so this is canonical.
        EncryptionContext(Some(Value::Object(m.clone()).to_string()))
    }

    /// The context of string pairs, in the same canonical form as `from_map`, without building
    /// a map of values first (the secrets' read path makes one per request).
    pub fn of(pairs: &[(&str, &str)]) -> Self {
        if pairs.is_empty() {
            return EncryptionContext(None);
        }
        let sorted: std::collections::BTreeMap<&str, &str> = pairs.iter().copied().collect();
        EncryptionContext(serde_json::to_string(&sorted).ok())
    }

    /// The associated-data bytes (empty when there is no context).
    pub fn canonical_bytes(&self) -> &[u8] {
        self.0.as_deref().map(str::as_bytes).unwrap_or_default()
    }
}

/// A key reference as clients write it: a key id, `alias/name`, or an ARN of either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    Id(String),
    Alias(String),
}

impl KeyRef {
    pub fn parse(name: &str, v: &str) -> Result<KeyRef> {
        let tail = if let Some(rest) = v.strip_prefix("acs:kms:") {
            // acs:kms:{region}:{account}:key/{id} or …:alias/{name}
            rest.splitn(3, ':').nth(2).ok_or_else(|| Error::invalid(name, "is not a valid key ARN"))?
        } else {
            v
        };
        if let Some(alias) = tail.strip_prefix("alias/") {
            validate_alias_name(name, tail)?;
            let _ = alias;
            return Ok(KeyRef::Alias(tail.to_string()));
        }
        let id = tail.strip_prefix("key/").unwrap_or(tail);
        if id.is_empty() || id.len() > 128 || !id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_') {
            return Err(Error::invalid(name, "must be a key ID, an alias (alias/…) or a key ARN"));
        }
        Ok(KeyRef::Id(id.to_string()))
    }

    pub fn from_params(p: &Params, name: &str) -> Result<KeyRef> {
        KeyRef::parse(name, p.required(name)?)
    }

    pub fn as_str(&self) -> &str {
        match self {
            KeyRef::Id(s) | KeyRef::Alias(s) => s,
        }
    }
}

/// `AliasName`: 1–255 characters, prefix `alias/`, not `alias/acs`, letters, digits, `_ - /`.
pub fn validate_alias_name(name: &str, v: &str) -> Result<()> {
    let Some(rest) = v.strip_prefix("alias/") else {
        return Err(Error::invalid(name, "must start with alias/"));
    };
    if v.len() > 255 || rest.is_empty() {
        return Err(Error::invalid(name, "must be 1 to 255 characters including the alias/ prefix"));
    }
    if v.starts_with("alias/acs") {
        return Err(Error::invalid(name, "must not start with the reserved prefix alias/acs"));
    }
    if !rest.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'/')) {
        return Err(Error::invalid(name, "may contain only letters, digits, _, - and /"));
    }
    Ok(())
}

fn base64_param(p: &Params, name: &str) -> Result<Vec<u8>> {
    let v = p.required(name)?;
    base64::engine::general_purpose::STANDARD.decode(v.trim()).map_err(|_| Error::invalid(name, "must be Base64-encoded"))
}

/// Plaintext bytes from a request.
pub type Plaintext = Sensitive<Vec<u8>>;

/// Maximum plaintext accepted by Encrypt (Alibaba: 6 KiB).
pub const MAX_PLAINTEXT: usize = 6144;
pub const KEY_ROTATION_MIN_SECS: i64 = 7 * 86_400;
pub const KEY_ROTATION_MAX_SECS: i64 = 365 * 86_400;

#[derive(Debug)]
pub struct CreateKey {
    pub instance_id: Option<String>,
    pub description: String,
    pub rotation: Option<i64>,
    pub tags: Vec<crate::secrets::Tag>,
}

#[derive(Debug)]
pub struct DataKeySpec {
    pub key: KeyRef,
    pub bytes: usize,
    pub context: EncryptionContext,
}

/// Every key action this server answers, typed.
#[derive(Debug)]
pub enum KeyRequest {
    CreateKey(CreateKey),
    DescribeKey { key: KeyRef },
    ListKeys { page: Page },
    EnableKey { key: KeyRef },
    DisableKey { key: KeyRef },
    ScheduleKeyDeletion { key: KeyRef, days: i64 },
    CancelKeyDeletion { key: KeyRef },
    UpdateRotationPolicy { key: KeyRef, rotation: Option<i64> },
    CreateKeyVersion { key: KeyRef },
    ListKeyVersions { key: KeyRef, page: Page },
    DescribeKeyVersion { key: KeyRef, version: String },
    CreateAlias { alias: String, key: KeyRef },
    UpdateAlias { alias: String, key: KeyRef },
    DeleteAlias { alias: String },
    ListAliases { page: Page },
    ListAliasesByKeyId { key: KeyRef, page: Page },
    Encrypt { key: KeyRef, plaintext: Plaintext, context: EncryptionContext },
    Decrypt { blob: Vec<u8>, context: EncryptionContext },
    GenerateDataKey(DataKeySpec),
    GenerateDataKeyWithoutPlaintext(DataKeySpec),
    ReEncrypt { blob: Vec<u8>, source_context: EncryptionContext, key: KeyRef, context: EncryptionContext },
    ListKmsInstances { page: Page },
}

impl KeyRequest {
    /// Parses a key action; `Ok(None)` when `action` is not a key action.
    pub fn parse(action: &str, p: &Params) -> Result<Option<KeyRequest>> {
        let key = || KeyRef::from_params(p, "KeyId");
        Ok(Some(match action {
            "CreateKey" => {
                // Only software symmetric keys exist here; say so rather than ignore the ask.
                for (name, only) in [("KeySpec", "Aliyun_AES_256"), ("KeyUsage", "ENCRYPT/DECRYPT"), ("Origin", "Aliyun_KMS")] {
                    if p.optional(name).is_some_and(|v| v != only) {
                        return Err(Error::invalid(name, format!("only {only} is supported")));
                    }
                }
                KeyRequest::CreateKey(CreateKey {
                    instance_id: p.optional("DKMSInstanceId").map(str::to_string),
                    description: p.text("Description", 8192)?.unwrap_or_default().to_string(),
                    rotation: rotation_policy(p)?,
                    tags: crate::secrets::tags_param(p, "Tags")?,
                })
            }
            "DescribeKey" => KeyRequest::DescribeKey { key: key()? },
            "ListKeys" => KeyRequest::ListKeys { page: Page::from_params(p)? },
            "EnableKey" => KeyRequest::EnableKey { key: key()? },
            "DisableKey" => KeyRequest::DisableKey { key: key()? },
            "ScheduleKeyDeletion" => KeyRequest::ScheduleKeyDeletion {
                key: key()?,
                days: p.int_in("PendingWindowInDays", 7, 366)?.ok_or_else(|| Error::missing("PendingWindowInDays"))?,
            },
            "CancelKeyDeletion" => KeyRequest::CancelKeyDeletion { key: key()? },
            "UpdateRotationPolicy" => {
                if p.bool("EnableAutomaticRotation")?.is_none() {
                    return Err(Error::missing("EnableAutomaticRotation"));
                }
                KeyRequest::UpdateRotationPolicy { key: key()?, rotation: rotation_policy(p)? }
            }
            "CreateKeyVersion" => KeyRequest::CreateKeyVersion { key: key()? },
            "ListKeyVersions" => KeyRequest::ListKeyVersions { key: key()?, page: Page::from_params(p)? },
            "DescribeKeyVersion" => KeyRequest::DescribeKeyVersion { key: key()?, version: p.required("KeyVersionId")?.to_string() },
            "CreateAlias" | "UpdateAlias" => {
                let alias = p.required("AliasName")?;
                validate_alias_name("AliasName", alias)?;
                let (alias, key) = (alias.to_string(), key()?);
                if action == "CreateAlias" { KeyRequest::CreateAlias { alias, key } } else { KeyRequest::UpdateAlias { alias, key } }
            }
            "DeleteAlias" => {
                let alias = p.required("AliasName")?;
                validate_alias_name("AliasName", alias)?;
                KeyRequest::DeleteAlias { alias: alias.to_string() }
            }
            "ListAliases" => KeyRequest::ListAliases { page: Page::from_params(p)? },
            "ListAliasesByKeyId" => KeyRequest::ListAliasesByKeyId { key: key()?, page: Page::from_params(p)? },
            "Encrypt" => {
                let plaintext = Plaintext::new(base64_param(p, "Plaintext")?);
                if plaintext.expose_secret().len() > MAX_PLAINTEXT {
                    return Err(Error::invalid("Plaintext", format!("must decode to at most {MAX_PLAINTEXT} bytes")));
                }
                KeyRequest::Encrypt { key: key()?, plaintext, context: EncryptionContext::from_param(p, "EncryptionContext")? }
            }
            "Decrypt" => KeyRequest::Decrypt {
                blob: base64_param(p, "CiphertextBlob")?,
                context: EncryptionContext::from_param(p, "EncryptionContext")?,
            },
            "GenerateDataKey" => KeyRequest::GenerateDataKey(data_key_spec(p)?),
            "GenerateDataKeyWithoutPlaintext" => KeyRequest::GenerateDataKeyWithoutPlaintext(data_key_spec(p)?),
            "ReEncrypt" => KeyRequest::ReEncrypt {
                blob: base64_param(p, "CiphertextBlob")?,
                source_context: EncryptionContext::from_param(p, "SourceEncryptionContext")?,
                key: KeyRef::from_params(p, "DestinationKeyId")?,
                context: EncryptionContext::from_param(p, "DestinationEncryptionContext")?,
            },
            "ListKmsInstances" => KeyRequest::ListKmsInstances { page: Page::from_params(p)? },
            _ => return Ok(None),
        }))
    }
}

/// `EnableAutomaticRotation` + `RotationInterval` (7 to 365 days for keys).
fn rotation_policy(p: &Params) -> Result<Option<i64>> {
    if p.bool("EnableAutomaticRotation")? != Some(true) {
        return Ok(None);
    }
    let secs = match p.optional("RotationInterval") {
        None => KEY_ROTATION_MAX_SECS,
        Some(v) => crate::time::parse_interval(v)
            .ok_or_else(|| Error::invalid("RotationInterval", "must be an integer followed by d, h, m or s, such as 30d"))?,
    };
    if !(KEY_ROTATION_MIN_SECS..=KEY_ROTATION_MAX_SECS).contains(&secs) {
        return Err(Error::invalid("RotationInterval", "must be from 7 days to 365 days"));
    }
    Ok(Some(secs))
}

fn data_key_spec(p: &Params) -> Result<DataKeySpec> {
    let from_spec = match p.optional("KeySpec") {
        None | Some("AES_256") => 32,
        Some("AES_128") => 16,
        Some(_) => return Err(Error::invalid("KeySpec", "must be AES_256 or AES_128")),
    };
    let bytes = p.int_in("NumberOfBytes", 1, 1024)?.map(|n| n as usize).unwrap_or(from_spec);
    Ok(DataKeySpec { key: KeyRef::from_params(p, "KeyId")?, bytes, context: EncryptionContext::from_param(p, "EncryptionContext")? })
}

// ------------------------------------------------------------------------------------------
// Responses

#[derive(Debug, Serialize, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct KeyMetadata {
    pub key_id: String,
    pub arn: String,
    #[serde(rename = "DKMSInstanceId")]
    pub dkms_instance_id: String,
    pub key_state: String,
    pub key_spec: String,
    pub key_usage: String,
    pub origin: String,
    pub protection_level: String,
    pub description: String,
    pub creator: String,
    pub creation_date: String,
    pub primary_key_version: String,
    pub automatic_rotation: String,
    pub last_rotation_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_rotation_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation_interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_date: Option<String>,
    pub material_expire_time: String,
    pub deletion_protection: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyMetadataResponse {
    pub key_metadata: KeyMetadata,
}

#[derive(Debug, Serialize)]
pub struct Empty {}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyListItem {
    pub key_id: String,
    pub key_arn: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyList {
    pub key: Vec<KeyListItem>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListKeysResponse {
    pub keys: KeyList,
    pub page_number: i64,
    pub page_size: i64,
    pub total_count: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyVersionInfo {
    pub key_id: String,
    pub key_version_id: String,
    pub creation_date: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyVersionResponse {
    pub key_version: KeyVersionInfo,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyVersionList {
    pub key_version: Vec<KeyVersionInfo>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListKeyVersionsResponse {
    pub key_versions: KeyVersionList,
    pub page_number: i64,
    pub page_size: i64,
    pub total_count: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AliasInfo {
    pub alias_name: String,
    pub alias_arn: String,
    pub key_id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AliasList {
    pub alias: Vec<AliasInfo>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListAliasesResponse {
    pub aliases: AliasList,
    pub page_number: i64,
    pub page_size: i64,
    pub total_count: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EncryptResponse {
    pub ciphertext_blob: String,
    pub key_id: String,
    pub key_version_id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DecryptResponse {
    pub plaintext: Sensitive<String>,
    pub key_id: String,
    pub key_version_id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DataKeyResponse {
    pub ciphertext_blob: String,
    pub key_id: String,
    pub key_version_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plaintext: Option<Sensitive<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KmsInstanceInfo {
    pub kms_instance_id: String,
    pub kms_instance_arn: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KmsInstanceList {
    pub kms_instance: Vec<KmsInstanceInfo>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListKmsInstancesResponse {
    pub kms_instances: KmsInstanceList,
    pub page_number: i64,
    pub page_size: i64,
    pub total_count: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_of_pairs_is_the_canonical_form_of_the_same_map() {
        let pairs = [("sesame:version", "v\"1\u{e9}\n"), ("a", "</x>"), ("sesame:secret", "db/prod")];
        let map: Map<String, Value> = pairs.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect();
        assert_eq!(EncryptionContext::of(&pairs).canonical_bytes(), EncryptionContext::from_map(&map).canonical_bytes());
        assert!(EncryptionContext::of(&[]).canonical_bytes().is_empty());
    }

    fn parse(action: &str, pairs: &[(&str, &str)]) -> Result<KeyRequest> {
        KeyRequest::parse(action, &Params::from_pairs(pairs.iter().copied())).map(|r| r.expect("a key action"))
    }

    #[test]
    fn key_refs_accept_ids_aliases_and_arns() {
        assert_eq!(KeyRef::parse("KeyId", "key-abc").unwrap(), KeyRef::Id("key-abc".into()));
        assert_eq!(KeyRef::parse("KeyId", "alias/app").unwrap(), KeyRef::Alias("alias/app".into()));
        assert_eq!(KeyRef::parse("KeyId", "acs:kms:cn-hangzhou:123:key/key-abc").unwrap(), KeyRef::Id("key-abc".into()));
        assert_eq!(KeyRef::parse("KeyId", "acs:kms:cn-hangzhou:123:alias/app").unwrap(), KeyRef::Alias("alias/app".into()));
        assert!(KeyRef::parse("KeyId", "key with space").is_err());
        assert!(KeyRef::parse("KeyId", "acs:kms:bad").is_err());
    }

    #[test]
    fn deletion_window_is_seven_to_366_days() {
        assert!(parse("ScheduleKeyDeletion", &[("KeyId", "k"), ("PendingWindowInDays", "6")]).is_err());
        assert!(parse("ScheduleKeyDeletion", &[("KeyId", "k"), ("PendingWindowInDays", "367")]).is_err());
        assert!(parse("ScheduleKeyDeletion", &[("KeyId", "k"), ("PendingWindowInDays", "7")]).is_ok());
        let e = parse("ScheduleKeyDeletion", &[("KeyId", "k")]).unwrap_err();
        assert_eq!(e.code(), "MissingParameter");
    }

    #[test]
    fn aliases_must_have_the_prefix_and_avoid_acs() {
        assert!(validate_alias_name("AliasName", "alias/ok-1").is_ok());
        assert!(validate_alias_name("AliasName", "ok").is_err());
        assert!(validate_alias_name("AliasName", "alias/acs-x").is_err());
        assert!(validate_alias_name("AliasName", "alias/").is_err());
        assert!(validate_alias_name("AliasName", &format!("alias/{}", "a".repeat(250))).is_err());
    }

    #[test]
    fn rotation_interval_is_checked_for_keys() {
        let ok = parse("CreateKey", &[("EnableAutomaticRotation", "True"), ("RotationInterval", "30d")]).unwrap();
        assert!(matches!(ok, KeyRequest::CreateKey(CreateKey { rotation: Some(2_592_000), .. })));
        assert!(parse("CreateKey", &[("EnableAutomaticRotation", "true"), ("RotationInterval", "6d")]).is_err());
        assert!(parse("CreateKey", &[("KeySpec", "RSA_2048")]).is_err());
    }

    #[test]
    fn encryption_context_is_canonical() {
        let a = EncryptionContext::from_param(&Params::from_pairs([("C", r#"{"b":"2","a":"1"}"#)]), "C").unwrap();
        let b = EncryptionContext::from_param(&Params::from_pairs([("C", r#"{"a": "1", "b": "2"}"#)]), "C").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.canonical_bytes(), br#"{"a":"1","b":"2"}"#);
        assert!(EncryptionContext::from_param(&Params::from_pairs([("C", "[1]")]), "C").is_err());
    }

    #[test]
    fn data_key_length_comes_from_number_of_bytes_or_spec() {
        match parse("GenerateDataKey", &[("KeyId", "k"), ("KeySpec", "AES_128")]).unwrap() {
            KeyRequest::GenerateDataKey(s) => assert_eq!(s.bytes, 16),
            other => panic!("{other:?}"),
        }
        match parse("GenerateDataKey", &[("KeyId", "k"), ("NumberOfBytes", "64")]).unwrap() {
            KeyRequest::GenerateDataKey(s) => assert_eq!(s.bytes, 64),
            other => panic!("{other:?}"),
        }
        assert!(parse("GenerateDataKey", &[("KeyId", "k"), ("NumberOfBytes", "1025")]).is_err());
    }

    #[test]
    fn plaintext_must_be_base64_and_bounded() {
        assert!(parse("Encrypt", &[("KeyId", "k"), ("Plaintext", "not base64!")]).is_err());
        let big = base64::engine::general_purpose::STANDARD.encode(vec![0u8; MAX_PLAINTEXT + 1]);
        assert!(parse("Encrypt", &[("KeyId", "k"), ("Plaintext", &big)]).is_err());
    }

    #[test]
    fn unknown_actions_are_not_key_actions() {
        assert!(KeyRequest::parse("GetSecretValue", &Params::new()).unwrap().is_none());
    }
}
