//! Secrets actions of KMS 2016-01-20 (reference §2.1): typed requests with every limit of
//! §3.7 checked at parse time, and the response shapes.

use crate::error::{Error, Result};
use crate::kms::{KeyRef, Page};
use crate::params::Params;
use base64::Engine;
use serde::Serialize;
use serde_json::Value;

pub const MAX_SECRET_NAME: usize = 192;
pub const MAX_VERSION_ID: usize = 64;
pub const MAX_SECRET_DATA: usize = 30_720;
pub const MAX_EXTENDED_CONFIG: usize = 1_024;
pub const MAX_CUSTOM_DATA: usize = 10;
pub const MAX_TAGS: usize = 20;
pub const MAX_TAG_LEN: usize = 128;
pub const MAX_POLICY: usize = 32_768;
pub const MAX_STAGES: usize = 8;
pub const MAX_STAGE_LEN: usize = 64;
pub const MAX_DESCRIPTION: usize = 8_192;
pub const MAX_BATCH: usize = 20;
pub const MAX_FILTERS: usize = 10;
pub const MAX_TAG_RESOURCES: usize = 50;
pub const CURRENT: &str = "ACSCurrent";
pub const PREVIOUS: &str = "ACSPrevious";

/// A secret value as sent by the client. Never printed; zeroed on drop.
pub type SecretData = crate::kms::Sensitive<String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    Text,
    Binary,
}

impl DataType {
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Text => "text",
            DataType::Binary => "binary",
        }
    }
    pub fn parse(s: &str) -> Option<DataType> {
        match s {
            "text" => Some(DataType::Text),
            "binary" => Some(DataType::Binary),
            _ => None,
        }
    }
}

/// A secret reference: the name, or its ARN `acs:kms:{region}:{account}:secret/{name}`.
pub fn secret_name(p: &Params, name: &str) -> Result<String> {
    let v = p.required(name)?;
    let bare = match v.strip_prefix("acs:kms:") {
        Some(rest) => rest
            .splitn(3, ':')
            .nth(2)
            .and_then(|r| r.strip_prefix("secret/"))
            .ok_or_else(|| Error::invalid(name, "is not a valid secret ARN (acs:kms:REGION:ACCOUNT:secret/NAME)"))?,
        None => v,
    };
    validate_secret_name(name, bare)?;
    Ok(bare.to_string())
}

pub fn validate_secret_name(name: &str, v: &str) -> Result<()> {
    if v.is_empty() || v.chars().count() > MAX_SECRET_NAME {
        return Err(Error::invalid(name, format!("must be 1 to {MAX_SECRET_NAME} characters")));
    }
    if !v.bytes().all(|c| c.is_ascii_alphanumeric() || b"_/+=.@-".contains(&c)) {
        return Err(Error::invalid(name, "may contain only letters, digits and _ / + = . @ -"));
    }
    Ok(())
}

fn version_id(p: &Params, name: &str) -> Result<String> {
    let v = p.required(name)?;
    if v.chars().count() > MAX_VERSION_ID || v.chars().any(char::is_control) {
        return Err(Error::invalid(name, format!("must be at most {MAX_VERSION_ID} printable characters")));
    }
    Ok(v.to_string())
}

fn stage_name(name: &str, v: &str) -> Result<String> {
    if v.is_empty() || v.chars().count() > MAX_STAGE_LEN || !v.bytes().all(|c| c.is_ascii_alphanumeric() || b"_-.".contains(&c)) {
        return Err(Error::invalid(name, format!("stages are 1 to {MAX_STAGE_LEN} letters, digits, _ - or .")));
    }
    Ok(v.to_string())
}

fn secret_data(p: &Params, data_type: DataType) -> Result<SecretData> {
    let v = p.required("SecretData")?;
    if v.len() > MAX_SECRET_DATA {
        return Err(Error::invalid("SecretData", format!("must be at most {MAX_SECRET_DATA} bytes")));
    }
    if data_type == DataType::Binary && base64::engine::general_purpose::STANDARD.decode(v).is_err() {
        return Err(Error::invalid("SecretData", "must be Base64-encoded when SecretDataType is binary"));
    }
    Ok(SecretData::new(v.to_string()))
}

fn data_type(p: &Params) -> Result<DataType> {
    match p.optional("SecretDataType") {
        None => Ok(DataType::Text),
        Some(v) => DataType::parse(v).ok_or_else(|| Error::invalid("SecretDataType", "must be text or binary")),
    }
}

/// A tag as stored and returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub tag_key: String,
    pub tag_value: String,
}

fn tag_text(name: &str, what: &str, v: &str, allow_empty: bool) -> Result<()> {
    if (!allow_empty && v.is_empty()) || v.chars().count() > MAX_TAG_LEN {
        return Err(Error::invalid(name, format!("a tag {what} must be {} to {MAX_TAG_LEN} characters", if allow_empty { 0 } else { 1 })));
    }
    if !v.chars().all(|c| c.is_alphanumeric() || " /\\_-.+=:@".contains(c)) {
        return Err(Error::invalid(name, format!("a tag {what} may contain only letters, digits, spaces and / \\ _ - . + = : @")));
    }
    Ok(())
}

pub fn validate_tag(name: &str, t: &Tag) -> Result<()> {
    tag_text(name, "key", &t.tag_key, false)?;
    tag_text(name, "value", &t.tag_value, true)?;
    let lower = t.tag_key.to_ascii_lowercase();
    if lower.starts_with("aliyun") || lower.starts_with("acs:") {
        return Err(Error::invalid(name, "tag keys must not start with aliyun or acs:"));
    }
    Ok(())
}

/// `Tags=[{"TagKey":"k","TagValue":"v"}]`, at most 20, keys unique.
pub fn tags_param(p: &Params, name: &str) -> Result<Vec<Tag>> {
    let Some(v) = p.json(name)? else { return Ok(Vec::new()) };
    let items = v.as_array().ok_or_else(|| Error::invalid(name, "must be a JSON array of {\"TagKey\",\"TagValue\"}"))?;
    let mut tags = Vec::with_capacity(items.len());
    for item in items {
        let field = |f: &str| item.get(f).and_then(Value::as_str).map(str::to_string);
        let tag = Tag {
            tag_key: field("TagKey").ok_or_else(|| Error::invalid(name, "every tag needs a string TagKey"))?,
            tag_value: field("TagValue").unwrap_or_default(),
        };
        validate_tag(name, &tag)?;
        tags.push(tag);
    }
    check_tag_count(name, &tags)?;
    Ok(tags)
}

pub fn check_tag_count(name: &str, tags: &[Tag]) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(Error::invalid(name, format!("at most {MAX_TAGS} tags")));
    }
    let mut keys: Vec<&str> = tags.iter().map(|t| t.tag_key.as_str()).collect();
    keys.sort_unstable();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::invalid(name, "tag keys must be unique"));
    }
    Ok(())
}

/// `ExtendedConfig`: a JSON object of at most 1,024 characters whose `CustomData` holds at
/// most 10 pairs. Returned in its canonical compact form.
pub fn extended_config(p: &Params) -> Result<Option<String>> {
    let Some(raw) = p.optional("ExtendedConfig") else { return Ok(None) };
    if raw.chars().count() > MAX_EXTENDED_CONFIG {
        return Err(Error::invalid("ExtendedConfig", format!("must be at most {MAX_EXTENDED_CONFIG} characters")));
    }
    let v = p.json("ExtendedConfig")?.unwrap_or(Value::Null);
    check_extended_config(&v)?;
    Ok(Some(v.to_string()))
}

pub fn check_extended_config(v: &Value) -> Result<()> {
    let obj = v.as_object().ok_or_else(|| Error::invalid("ExtendedConfig", "must be a JSON object"))?;
    if let Some(cd) = obj.get("CustomData") {
        let cd = cd.as_object().ok_or_else(|| Error::invalid("ExtendedConfig", "CustomData must be a JSON object"))?;
        if cd.len() > MAX_CUSTOM_DATA {
            return Err(Error::invalid("ExtendedConfig", format!("CustomData holds at most {MAX_CUSTOM_DATA} pairs")));
        }
    }
    if v.to_string().chars().count() > MAX_EXTENDED_CONFIG {
        return Err(Error::invalid("ExtendedConfig", format!("must be at most {MAX_EXTENDED_CONFIG} characters")));
    }
    Ok(())
}

fn policy(p: &Params, name: &str) -> Result<Option<String>> {
    let Some(raw) = p.optional(name) else { return Ok(None) };
    if raw.len() > MAX_POLICY {
        return Err(Error::invalid(name, format!("must be at most {MAX_POLICY} bytes")));
    }
    match p.json(name)? {
        Some(Value::Object(_)) => Ok(Some(raw.to_string())),
        _ => Err(Error::invalid(name, "must be a JSON object")),
    }
}

fn policy_name(p: &Params) -> Result<()> {
    match p.optional("PolicyName") {
        None | Some("default") => Ok(()),
        Some(_) => Err(Error::invalid("PolicyName", "only default is supported")),
    }
}

fn string_list(p: &Params, name: &str) -> Result<Option<Vec<String>>> {
    let Some(v) = p.json(name)? else { return Ok(None) };
    let items = v.as_array().ok_or_else(|| Error::invalid(name, "must be a JSON array of strings"))?;
    items
        .iter()
        .map(|i| i.as_str().map(str::to_string).ok_or_else(|| Error::invalid(name, "must be a JSON array of strings")))
        .collect::<Result<_>>()
        .map(Some)
}

/// An account of an Rds secret: `{"AccountName": …, "AccountPassword": …}`.
#[derive(Debug)]
pub struct RdsAccount {
    pub name: String,
    pub password: SecretData,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RdsMode {
    SingleUser,
    DoubleUsers,
}

impl RdsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RdsMode::SingleUser => "SingleUser",
            RdsMode::DoubleUsers => "DoubleUsers",
        }
    }

    pub fn parse(s: &str) -> Option<RdsMode> {
        match s {
            "SingleUser" => Some(RdsMode::SingleUser),
            "DoubleUsers" => Some(RdsMode::DoubleUsers),
            _ => None,
        }
    }
}

/// The kind of account Sesame creates for an Rds secret (RDS's `Normal` and `Super`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountType {
    Standard,
    Privileged,
}

impl AccountType {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountType::Standard => "Standard",
            AccountType::Privileged => "Privileged",
        }
    }

    pub fn parse(s: &str) -> Option<AccountType> {
        match s {
            "Standard" | "Normal" => Some(AccountType::Standard),
            "Privileged" | "Super" => Some(AccountType::Privileged),
            _ => None,
        }
    }
}

/// Permissions of a standard account on its database, as RDS names them.
pub const ACCOUNT_PRIVILEGES: [&str; 4] = ["ReadWrite", "ReadOnly", "DDLOnly", "DMLOnly"];
pub const MAX_ACCOUNT_PREFIX: usize = 16;

/// "Create accounts" mode: the accounts Sesame makes once the administrator confirms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountCreation {
    pub prefix: String,
    pub account_type: AccountType,
    /// The database and permission of a standard account; `None` for a privileged one.
    pub grant: Option<(String, String)>,
}

/// Where an Rds secret's accounts come from.
#[derive(Debug)]
pub enum RdsAccounts {
    /// Existing accounts and their passwords (one in single mode, one or two in dual mode).
    Import(Vec<RdsAccount>),
    Create(AccountCreation),
}

/// What an Rds secret adds to a generic one.
#[derive(Debug)]
pub struct RdsSpec {
    pub mode: RdsMode,
    pub db_instance_id: String,
    pub accounts: RdsAccounts,
}

/// Where a created-accounts secret stands (`AccountCreation` in its ExtendedConfig).
pub const AWAITING_CONFIRMATION: &str = "AwaitingConfirmation";
pub const CREATING_ACCOUNTS: &str = "Creating";
pub const ACCOUNTS_CREATED: &str = "Created";

pub const SECRET_ROTATION_MIN_SECS: i64 = 6 * 3_600;
pub const SECRET_ROTATION_MAX_SECS: i64 = 365 * 86_400;
pub const DEFAULT_SECRET_ROTATION_SECS: i64 = 7 * 86_400;
pub const PENDING: &str = "ACSPending";

/// `EnableAutomaticRotation` + `RotationInterval` (6 hours to 365 days) of a managed secret.
fn secret_rotation(p: &Params, required_flag: bool) -> Result<Option<i64>> {
    let enabled = match p.bool("EnableAutomaticRotation")? {
        Some(b) => b,
        None if required_flag => return Err(Error::missing("EnableAutomaticRotation")),
        None => false,
    };
    if !enabled {
        return Ok(None);
    }
    let secs = match p.optional("RotationInterval") {
        None => DEFAULT_SECRET_ROTATION_SECS,
        Some(v) => crate::time::parse_interval(v)
            .ok_or_else(|| Error::invalid("RotationInterval", "must be an integer followed by d, h, m or s, such as 7d"))?,
    };
    if !(SECRET_ROTATION_MIN_SECS..=SECRET_ROTATION_MAX_SECS).contains(&secs) {
        return Err(Error::invalid("RotationInterval", "must be from 6 hours to 365 days"));
    }
    Ok(Some(secs))
}

/// The Rds part of CreateSecret: ExtendedConfig's SecretSubType and DBInstanceId, and either the
/// imported accounts in SecretData (one in single mode, one or two in dual mode) or, with
/// `AccountNamePrefix` in ExtendedConfig, the accounts to create.
fn rds_spec(p: &Params, extended: Option<&str>, data: Option<&SecretData>) -> Result<RdsSpec> {
    let cfg: Value = serde_json::from_str(extended.ok_or_else(|| Error::missing("ExtendedConfig"))?)
        .map_err(|_| Error::invalid("ExtendedConfig", "must be a JSON object"))?;
    let mode = cfg
        .get("SecretSubType")
        .and_then(Value::as_str)
        .and_then(RdsMode::parse)
        .ok_or_else(|| Error::invalid("ExtendedConfig", "SecretSubType must be SingleUser or DoubleUsers"))?;
    let db_instance_id = cfg
        .get("DBInstanceId")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::invalid("ExtendedConfig", "DBInstanceId is required for Rds secrets"))?
        .to_string();
    crate::rds::validate_instance_id("ExtendedConfig", &db_instance_id)?;
    if p.optional("SecretDataType").is_some_and(|t| t != "text") {
        return Err(Error::invalid("SecretDataType", "must be text for Rds secrets"));
    }
    if cfg.get("AccountNamePrefix").is_some() {
        let creation = account_creation(&cfg, mode)?;
        let empty = data.is_none_or(|d| {
            serde_json::from_str::<Value>(d.expose_secret())
                .ok()
                .and_then(|v| v.get("Accounts").and_then(Value::as_array).map(Vec::is_empty))
                .unwrap_or(false)
        });
        if !empty {
            return Err(Error::invalid(
                "SecretData",
                "must be absent or {\"Accounts\":[]} when ExtendedConfig asks Sesame to create the accounts (AccountNamePrefix)",
            ));
        }
        return Ok(RdsSpec { mode, db_instance_id, accounts: RdsAccounts::Create(creation) });
    }
    let data = data.ok_or_else(|| Error::missing("SecretData"))?;
    let parsed: Value = serde_json::from_str(data.expose_secret())
        .map_err(|_| Error::invalid("SecretData", "must be {\"Accounts\":[{\"AccountName\":…,\"AccountPassword\":…}]} for Rds secrets"))?;
    let list =
        parsed.get("Accounts").and_then(Value::as_array).ok_or_else(|| Error::invalid("SecretData", "must hold an Accounts array"))?;
    let max = if mode == RdsMode::SingleUser { 1 } else { 2 };
    if list.is_empty() || list.len() > max {
        return Err(Error::invalid("SecretData", format!("{} takes 1 to {max} accounts", mode.as_str())));
    }
    let mut accounts = Vec::with_capacity(list.len());
    for a in list {
        let name = a
            .get("AccountName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty() && n.chars().count() <= 128)
            .ok_or_else(|| Error::invalid("SecretData", "every account needs an AccountName of 1 to 128 characters"))?;
        let password = a
            .get("AccountPassword")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid("SecretData", "every account needs an AccountPassword"))?;
        accounts.push(RdsAccount { name: name.to_string(), password: SecretData::new(password.to_string()) });
    }
    if accounts.len() == 2 && accounts[0].name == accounts[1].name {
        return Err(Error::invalid("SecretData", "the two accounts of DoubleUsers must differ"));
    }
    Ok(RdsSpec { mode, db_instance_id, accounts: RdsAccounts::Import(accounts) })
}

/// ExtendedConfig's `AccountNamePrefix`, `AccountType`, `DBName` and `AccountPrivilege`.
fn account_creation(cfg: &Value, mode: RdsMode) -> Result<AccountCreation> {
    let field = |name: &str| cfg.get(name).and_then(Value::as_str);
    let prefix = field("AccountNamePrefix").unwrap_or_default();
    let valid_prefix = prefix.len() <= MAX_ACCOUNT_PREFIX
        && prefix.starts_with(|c: char| c.is_ascii_lowercase())
        && prefix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid_prefix {
        return Err(Error::invalid(
            "ExtendedConfig",
            format!(
                "AccountNamePrefix must be 1 to {MAX_ACCOUNT_PREFIX} characters: a lower-case letter, then lower-case letters, digits or _"
            ),
        ));
    }
    let account_type = match field("AccountType") {
        None => AccountType::Standard,
        Some(t) => AccountType::parse(t)
            .ok_or_else(|| Error::invalid("ExtendedConfig", "AccountType must be Standard (Normal) or Privileged (Super)"))?,
    };
    if mode == RdsMode::DoubleUsers && account_type == AccountType::Privileged {
        return Err(Error::invalid("ExtendedConfig", "DoubleUsers creates standard accounts; AccountType Privileged is for SingleUser"));
    }
    let grant = match account_type {
        AccountType::Privileged => {
            if cfg.get("DBName").is_some() || cfg.get("AccountPrivilege").is_some() {
                return Err(Error::invalid("ExtendedConfig", "a privileged account takes neither DBName nor AccountPrivilege"));
            }
            None
        }
        AccountType::Standard => {
            let db = field("DBName").filter(|d| !d.is_empty() && d.chars().count() <= 64).ok_or_else(|| {
                Error::invalid("ExtendedConfig", "a standard account needs DBName, the database it may use (1 to 64 characters)")
            })?;
            let privilege = field("AccountPrivilege")
                .filter(|p| ACCOUNT_PRIVILEGES.contains(p))
                .ok_or_else(|| Error::invalid("ExtendedConfig", "AccountPrivilege must be ReadWrite, ReadOnly, DDLOnly or DMLOnly"))?;
            Some((db.to_string(), privilege.to_string()))
        }
    };
    Ok(AccountCreation { prefix: prefix.to_string(), account_type, grant })
}

#[derive(Debug)]
pub struct CreateSecret {
    pub name: String,
    /// Present for Rds secrets.
    pub rds: Option<RdsSpec>,
    pub rotation: Option<i64>,
    pub version_id: String,
    pub data: SecretData,
    pub data_type: DataType,
    pub instance_id: Option<String>,
    pub key: Option<KeyRef>,
    pub description: String,
    pub extended_config: Option<String>,
    pub tags: Vec<Tag>,
    pub policy: Option<String>,
}

/// Which version GetSecretValue reads.
#[derive(Debug, Clone)]
pub struct VersionSelector {
    pub version_id: Option<String>,
    pub stage: Option<String>,
}

#[derive(Debug, Clone)]
pub struct GetValue {
    pub name: String,
    pub select: VersionSelector,
    pub fetch_extended_config: bool,
}

/// One ListSecrets filter: values of one key are ORed, keys are ANDed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SecretFilter {
    Name(Vec<String>),
    Description(Vec<String>),
    TagKey(Vec<String>),
    TagValue(Vec<String>),
    Instance(Vec<String>),
    Type(Vec<String>),
    Creator(Vec<String>),
    /// Sesame's: Rds secrets whose ExtendedConfig names one of these database instances.
    DbInstance(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceType {
    Key,
    Secret,
}

impl ResourceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Key => "key",
            ResourceType::Secret => "secret",
        }
    }
    fn parse(p: &Params) -> Result<ResourceType> {
        match p.required("ResourceType")?.to_ascii_lowercase().as_str() {
            "key" => Ok(ResourceType::Key),
            "secret" => Ok(ResourceType::Secret),
            _ => Err(Error::invalid("ResourceType", "must be key or secret")),
        }
    }
}

/// The one resource TagResource/UntagResource address.
#[derive(Debug, Clone)]
pub enum TagTarget {
    Key(KeyRef),
    Secret(String),
}

fn tag_target(p: &Params) -> Result<TagTarget> {
    if p.optional("CertificateId").is_some() {
        return Err(Error::invalid("CertificateId", "certificates are not supported"));
    }
    match (p.optional("KeyId"), p.optional("SecretName")) {
        (Some(_), None) => Ok(TagTarget::Key(KeyRef::from_params(p, "KeyId")?)),
        (None, Some(_)) => Ok(TagTarget::Secret(secret_name(p, "SecretName")?)),
        _ => Err(Error::invalid("KeyId", "give exactly one of KeyId and SecretName")),
    }
}

fn repeat_tags(p: &Params) -> Result<Vec<Tag>> {
    let mut tags = Vec::new();
    for i in 1..=(MAX_TAGS + 1) {
        let key = p.optional(&format!("Tag.{i}.Key"));
        let value = p.optional(&format!("Tag.{i}.Value"));
        match (key, value) {
            (None, None) => continue,
            (None, Some(_)) => return Err(Error::invalid(format!("Tag.{i}.Key"), "a tag needs a key")),
            (Some(k), v) => {
                let t = Tag { tag_key: k.to_string(), tag_value: v.unwrap_or_default().to_string() };
                validate_tag(&format!("Tag.{i}"), &t)?;
                tags.push(t);
            }
        }
    }
    check_tag_count("Tag", &tags)?;
    Ok(tags)
}

fn resource_ids(p: &Params) -> Result<Vec<String>> {
    let ids: Vec<String> = p.repeat_list("ResourceId")?.into_iter().map(str::to_string).collect();
    if ids.len() > MAX_TAG_RESOURCES {
        return Err(Error::invalid("ResourceId", format!("at most {MAX_TAG_RESOURCES} resources")));
    }
    Ok(ids)
}

/// GetRandomPassword's options.
#[derive(Debug, Clone)]
pub struct PasswordSpec {
    pub length: usize,
    pub exclude_characters: String,
    pub exclude_lowercase: bool,
    pub exclude_uppercase: bool,
    pub exclude_numbers: bool,
    pub exclude_punctuation: bool,
    pub require_each_included_type: bool,
}

#[derive(Debug)]
pub enum SecretRequest {
    CreateSecret(Box<CreateSecret>),
    GetSecretValue(GetValue),
    BatchGetSecretValue(Vec<GetValue>),
    ListSecrets {
        page: Page,
        filters: Vec<SecretFilter>,
        fetch_tags: bool,
    },
    DescribeSecret {
        name: String,
        fetch_tags: bool,
    },
    PutSecretValue {
        name: String,
        version_id: String,
        data: SecretData,
        data_type: DataType,
        stages: Option<Vec<String>>,
    },
    UpdateSecret {
        name: String,
        description: Option<String>,
        custom_data: Option<serde_json::Map<String, Value>>,
    },
    UpdateSecretVersionStage {
        name: String,
        stage: String,
        move_to: Option<String>,
        remove_from: Option<String>,
    },
    ListSecretVersionIds {
        name: String,
        include_deprecated: bool,
        page: Page,
    },
    DeleteSecret {
        name: String,
        force: bool,
        recovery_days: i64,
    },
    RestoreSecret {
        name: String,
    },
    GetRandomPassword(PasswordSpec),
    TagResource {
        target: TagTarget,
        tags: Vec<Tag>,
    },
    UntagResource {
        target: TagTarget,
        keys: Vec<String>,
    },
    TagResources {
        rtype: ResourceType,
        ids: Vec<String>,
        tags: Vec<Tag>,
    },
    UntagResources {
        rtype: ResourceType,
        ids: Vec<String>,
        keys: Vec<String>,
        all: bool,
    },
    ListTagResources {
        rtype: ResourceType,
        ids: Vec<String>,
        tags: Vec<Tag>,
        next_token: Option<String>,
    },
    GetSecretPolicy {
        name: String,
    },
    SetSecretPolicy {
        name: String,
        policy: String,
    },
    RotateSecret {
        name: String,
        version_id: String,
    },
    /// Sesame's: creates the accounts of a created-accounts Rds secret (after review).
    ConfirmSecretAccounts {
        name: String,
    },
    /// Sesame's: abandons a rotation attempt that has not reached the database yet.
    CancelSecretRotation {
        name: String,
    },
    UpdateSecretRotationPolicy {
        name: String,
        rotation: Option<i64>,
    },
}

impl SecretRequest {
    /// Parses a secrets action; `Ok(None)` when `action` is not one.
    pub fn parse(action: &str, p: &Params) -> Result<Option<SecretRequest>> {
        let name = || secret_name(p, "SecretName");
        let flag = |n: &str| p.bool(n).map(|b| b.unwrap_or(false));
        Ok(Some(match action {
            "CreateSecret" => {
                let secret_type = p.optional("SecretType").unwrap_or("Generic");
                if secret_type != "Generic" && secret_type != "Rds" {
                    return Err(Error::invalid("SecretType", "only Generic and Rds secrets can be created"));
                }
                let name = name()?;
                if name.starts_with("acs/") {
                    return Err(Error::invalid("SecretName", "must not start with acs/"));
                }
                if secret_type == "Generic" && p.bool("EnableAutomaticRotation")? == Some(true) {
                    return Err(Error::invalid(
                        "EnableAutomaticRotation",
                        "automatic rotation applies to managed (Rds) secrets, not Generic ones",
                    ));
                }
                let data_type = data_type(p)?;
                // An Rds secret whose accounts Sesame creates has no SecretData.
                let data = if secret_type == "Rds" && p.optional("SecretData").is_none() { None } else { Some(secret_data(p, data_type)?) };
                let extended_config = extended_config(p)?;
                let rds = if secret_type == "Rds" { Some(rds_spec(p, extended_config.as_deref(), data.as_ref())?) } else { None };
                let data = data.unwrap_or_else(|| SecretData::new(String::new()));
                CreateSecret(Box::new(CreateSecret {
                    rotation: if rds.is_some() { secret_rotation(p, false)? } else { None },
                    rds,
                    version_id: version_id(p, "VersionId")?,
                    data,
                    data_type,
                    instance_id: p.optional("DKMSInstanceId").map(str::to_string),
                    key: p.optional("EncryptionKeyId").map(|_| KeyRef::from_params(p, "EncryptionKeyId")).transpose()?,
                    description: p.text("Description", MAX_DESCRIPTION)?.unwrap_or_default().to_string(),
                    extended_config,
                    tags: tags_param(p, "Tags")?,
                    policy: policy(p, "Policy")?,
                    name,
                }))
            }
            "GetSecretValue" => GetSecretValue(get_value(p)?),
            "BatchGetSecretValue" => {
                let list = p.json("SecretsList")?.ok_or_else(|| Error::missing("SecretsList"))?;
                let items = list.as_array().ok_or_else(|| Error::invalid("SecretsList", "must be a JSON array"))?;
                if items.is_empty() || items.len() > MAX_BATCH {
                    return Err(Error::invalid("SecretsList", format!("must hold 1 to {MAX_BATCH} secrets")));
                }
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    let obj = item.as_object().ok_or_else(|| Error::invalid("SecretsList", "every item must be an object"))?;
                    let mut q = Params::new();
                    for (k, v) in obj {
                        let s = match v {
                            Value::String(s) => s.clone(),
                            Value::Bool(b) => b.to_string(),
                            other => other.to_string(),
                        };
                        q.insert(k.clone(), s);
                    }
                    out.push(get_value(&q).map_err(|e| match e {
                        Error::MissingParameter(n) | Error::InvalidParameter { name: n, .. } => {
                            Error::invalid("SecretsList", format!("an item's {n} is missing or invalid"))
                        }
                        other => other,
                    })?);
                }
                BatchGetSecretValue(out)
            }
            "ListSecrets" => ListSecrets { page: Page::from_params(p)?, filters: filters(p)?, fetch_tags: flag("FetchTags")? },
            "DescribeSecret" => DescribeSecret { name: name()?, fetch_tags: flag("FetchTags")? },
            "PutSecretValue" => {
                let data_type = data_type(p)?;
                let stages = match string_list(p, "VersionStages")? {
                    None => None,
                    Some(list) => {
                        if list.is_empty() || list.len() > MAX_STAGES {
                            return Err(Error::invalid("VersionStages", format!("must list 1 to {MAX_STAGES} stages")));
                        }
                        Some(list.iter().map(|s| stage_name("VersionStages", s)).collect::<Result<Vec<_>>>()?)
                    }
                };
                PutSecretValue {
                    name: name()?,
                    version_id: version_id(p, "VersionId")?,
                    data: secret_data(p, data_type)?,
                    data_type,
                    stages,
                }
            }
            "UpdateSecret" => {
                let mut custom = p
                    .prefixed("ExtendedConfig.CustomData.")
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                    .collect::<serde_json::Map<_, _>>();
                if let Some(v) = p.json("ExtendedConfig")? {
                    check_extended_config(&v)?;
                    if let Some(cd) = v.get("CustomData").and_then(Value::as_object) {
                        custom.extend(cd.clone());
                    }
                }
                if custom.len() > MAX_CUSTOM_DATA {
                    return Err(Error::invalid("ExtendedConfig", format!("CustomData holds at most {MAX_CUSTOM_DATA} pairs")));
                }
                let has_custom = !custom.is_empty();
                UpdateSecret {
                    name: name()?,
                    description: p.text("Description", MAX_DESCRIPTION)?.map(str::to_string),
                    custom_data: has_custom.then_some(custom),
                }
            }
            "UpdateSecretVersionStage" => {
                let stage = stage_name("VersionStage", p.required("VersionStage")?)?;
                let move_to = p.optional("MoveToVersion").map(str::to_string);
                let remove_from = p.optional("RemoveFromVersion").map(str::to_string);
                if move_to.is_none() && remove_from.is_none() {
                    return Err(Error::missing("MoveToVersion"));
                }
                if (stage == CURRENT || stage == PREVIOUS) && move_to.is_none() {
                    return Err(Error::invalid(
                        "VersionStage",
                        "ACSCurrent and ACSPrevious can only be moved (give MoveToVersion), not removed",
                    ));
                }
                UpdateSecretVersionStage { name: name()?, stage, move_to, remove_from }
            }
            "ListSecretVersionIds" => ListSecretVersionIds {
                name: name()?,
                include_deprecated: flag("IncludeDeprecated")?,
                page: Page {
                    number: p.int_in("PageNumber", 1, i64::from(i32::MAX))?.unwrap_or(1),
                    size: p.int_in("PageSize", 1, 100)?.unwrap_or(20),
                },
            },
            "DeleteSecret" => DeleteSecret {
                name: name()?,
                force: flag("ForceDeleteWithoutRecovery")?,
                recovery_days: p.int_in("RecoveryWindowInDays", 7, 30)?.unwrap_or(30),
            },
            "RestoreSecret" => RestoreSecret { name: name()? },
            "GetRandomPassword" => GetRandomPassword(PasswordSpec {
                length: p.int_in("PasswordLength", 8, 128)?.unwrap_or(32) as usize,
                exclude_characters: p.optional("ExcludeCharacters").unwrap_or_default().to_string(),
                exclude_lowercase: flag("ExcludeLowercase")?,
                exclude_uppercase: flag("ExcludeUppercase")?,
                exclude_numbers: flag("ExcludeNumbers")?,
                exclude_punctuation: flag("ExcludePunctuation")?,
                require_each_included_type: flag("RequireEachIncludedType")?,
            }),
            "TagResource" => {
                let tags = tags_param(p, "Tags")?;
                if tags.is_empty() {
                    return Err(Error::missing("Tags"));
                }
                TagResource { target: tag_target(p)?, tags }
            }
            "UntagResource" => {
                let keys = string_list(p, "TagKeys")?.ok_or_else(|| Error::missing("TagKeys"))?;
                if keys.is_empty() || keys.len() > MAX_TAGS {
                    return Err(Error::invalid("TagKeys", format!("must list 1 to {MAX_TAGS} tag keys")));
                }
                UntagResource { target: tag_target(p)?, keys }
            }
            "TagResources" => {
                let tags = repeat_tags(p)?;
                if tags.is_empty() {
                    return Err(Error::missing("Tag.1.Key"));
                }
                let ids = resource_ids(p)?;
                if ids.is_empty() {
                    return Err(Error::missing("ResourceId.1"));
                }
                TagResources { rtype: ResourceType::parse(p)?, ids, tags }
            }
            "UntagResources" => {
                let keys: Vec<String> = p.repeat_list("TagKey")?.into_iter().map(str::to_string).collect();
                let all = flag("All")?;
                if keys.is_empty() && !all {
                    return Err(Error::missing("TagKey.1"));
                }
                let ids = resource_ids(p)?;
                if ids.is_empty() {
                    return Err(Error::missing("ResourceId.1"));
                }
                UntagResources { rtype: ResourceType::parse(p)?, ids, keys, all }
            }
            "ListTagResources" => ListTagResources {
                rtype: ResourceType::parse(p)?,
                ids: resource_ids(p)?,
                tags: repeat_tags(p)?,
                next_token: p.optional("NextToken").map(str::to_string),
            },
            "GetSecretPolicy" => {
                policy_name(p)?;
                GetSecretPolicy { name: name()? }
            }
            "SetSecretPolicy" => {
                policy_name(p)?;
                SetSecretPolicy { name: name()?, policy: policy(p, "Policy")?.ok_or_else(|| Error::missing("Policy"))? }
            }
            "RotateSecret" => RotateSecret { name: name()?, version_id: version_id(p, "VersionId")? },
            "ConfirmSecretAccounts" => ConfirmSecretAccounts { name: name()? },
            "CancelSecretRotation" => CancelSecretRotation { name: name()? },
            "UpdateSecretRotationPolicy" => UpdateSecretRotationPolicy { name: name()?, rotation: secret_rotation(p, true)? },
            _ => return Ok(None),
        }))
    }
}

use SecretRequest::*;

fn get_value(p: &Params) -> Result<GetValue> {
    let version_id = p.optional("VersionId").map(|_| version_id(p, "VersionId")).transpose()?;
    let stage = p.optional("VersionStage").map(|s| stage_name("VersionStage", s)).transpose()?;
    Ok(GetValue {
        name: secret_name(p, "SecretName")?,
        select: VersionSelector { version_id, stage },
        fetch_extended_config: p.bool("FetchExtendedConfig")?.unwrap_or(false),
    })
}

fn filters(p: &Params) -> Result<Vec<SecretFilter>> {
    let Some(v) = p.json("Filters")? else { return Ok(Vec::new()) };
    let items = v.as_array().ok_or_else(|| Error::invalid("Filters", "must be a JSON array of {\"Key\",\"Values\"}"))?;
    if items.len() > MAX_FILTERS {
        return Err(Error::invalid("Filters", format!("at most {MAX_FILTERS} filters")));
    }
    items
        .iter()
        .map(|item| {
            let key = item.get("Key").and_then(Value::as_str).ok_or_else(|| Error::invalid("Filters", "every filter needs a Key"))?;
            let values: Vec<String> = item
                .get("Values")
                .and_then(Value::as_array)
                .ok_or_else(|| Error::invalid("Filters", "every filter needs a Values array"))?
                .iter()
                .map(|v| v.as_str().map(str::to_string).ok_or_else(|| Error::invalid("Filters", "filter values must be strings")))
                .collect::<Result<_>>()?;
            if values.is_empty() || values.len() > MAX_FILTERS {
                return Err(Error::invalid("Filters", format!("a filter has 1 to {MAX_FILTERS} values")));
            }
            Ok(match key {
                "SecretName" => SecretFilter::Name(values),
                "Description" => SecretFilter::Description(values),
                "TagKey" => SecretFilter::TagKey(values),
                "TagValue" => SecretFilter::TagValue(values),
                "DKMSInstanceId" => SecretFilter::Instance(values),
                // The docs spell the Rds type "RDS" in filters; responses say "Rds".
                "SecretType" => {
                    SecretFilter::Type(values.into_iter().map(|v| if v.eq_ignore_ascii_case("rds") { "Rds".into() } else { v }).collect())
                }
                "Creator" => SecretFilter::Creator(values),
                "DBInstanceId" => SecretFilter::DbInstance(values),
                other => return Err(Error::invalid("Filters", format!("unknown filter key {other:?}"))),
            })
        })
        .collect()
}

// ------------------------------------------------------------------------------------------
// Responses

/// A version's stage labels: owned, or borrowed from a cached secret (`&[String]`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Stages<S = Vec<String>> {
    pub version_stage: S,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tags {
    pub tag: Vec<Tag>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateSecretResponse {
    pub arn: String,
    pub secret_name: String,
    pub version_id: String,
    pub secret_type: String,
    #[serde(rename = "DKMSInstanceId")]
    pub dkms_instance_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extended_config: Option<String>,
    #[serde(flatten)]
    pub rotation: RotationFields,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RotateSecretResponse {
    pub arn: String,
    pub secret_name: String,
    pub version_id: String,
}

/// Rotation fields of a managed secret, flattened into its responses.
#[derive(Debug, Serialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct RotationFields {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub automatic_rotation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation_interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_rotation_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_rotation_date: Option<String>,
}

/// Sesame's view of a managed secret's rotation, in DescribeSecret.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RotationHealth {
    pub in_progress: bool,
    pub step: String,
    pub attempts: i64,
    pub last_error: String,
    pub next_retry: String,
}

/// Borrowed from the cached secret it answers with: GetSecretValue is the hot path, and copying
/// its fields only to serialise them cost seven allocations a request.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretValueResponse<'a> {
    pub secret_name: &'a str,
    pub secret_type: &'a str,
    pub secret_data: &'a crate::kms::Sensitive<String>,
    pub secret_data_type: &'a str,
    pub version_id: &'a str,
    pub version_stages: Stages<&'a [String]>,
    pub create_time: crate::Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extended_config: Option<&'a str>,
    #[serde(flatten)]
    pub rotation: RotationFields,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchError {
    pub secret_name: String,
    pub code: String,
    pub message: String,
    pub http_status: u16,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchGetSecretValueResponse<'a> {
    pub secret_values: Vec<SecretValueResponse<'a>>,
    pub errors: Vec<BatchError>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretListItem {
    pub secret_name: String,
    pub secret_type: String,
    pub create_time: String,
    pub update_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planned_delete_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Tags>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretList {
    pub secret: Vec<SecretListItem>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListSecretsResponse {
    pub secret_list: SecretList,
    pub page_number: i64,
    pub page_size: i64,
    pub total_count: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeSecretResponse {
    pub arn: String,
    pub secret_name: String,
    pub secret_type: String,
    pub description: String,
    #[serde(rename = "DKMSInstanceId")]
    pub dkms_instance_id: String,
    pub encryption_key_id: String,
    pub create_time: String,
    pub update_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planned_delete_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extended_config: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Tags>,
    #[serde(flatten)]
    pub rotation: RotationFields,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation_health: Option<RotationHealth>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutSecretValueResponse {
    pub secret_name: String,
    pub version_id: String,
    pub version_stages: Stages,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretNameResponse {
    pub secret_name: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteSecretResponse {
    pub secret_name: String,
    pub planned_delete_time: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VersionIdItem {
    pub version_id: String,
    pub create_time: String,
    pub version_stages: Stages,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VersionIds {
    pub version_id: Vec<VersionIdItem>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListSecretVersionIdsResponse {
    pub secret_name: String,
    pub version_ids: VersionIds,
    pub page_number: i64,
    pub page_size: i64,
    pub total_count: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RandomPasswordResponse {
    pub random_password: crate::kms::Sensitive<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagResourceItem {
    pub resource_id: String,
    pub resource_type: String,
    pub tag_key: String,
    pub tag_value: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagResourceList {
    pub tag_resource: Vec<TagResourceItem>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagResourcesResponse {
    pub tag_resources: TagResourceList,
    pub next_token: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyResponse {
    pub policy: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(action: &str, pairs: &[(&str, &str)]) -> Result<SecretRequest> {
        SecretRequest::parse(action, &Params::from_pairs(pairs.iter().copied())).map(|r| r.expect("a secrets action"))
    }

    fn create(extra: &[(&str, &str)]) -> Result<SecretRequest> {
        let mut pairs = vec![("SecretName", "db/app"), ("VersionId", "v1"), ("SecretData", "x")];
        pairs.extend_from_slice(extra);
        let p = Params::from_pairs(pairs);
        SecretRequest::parse("CreateSecret", &p).map(|r| r.expect("parsed"))
    }

    #[test]
    fn secret_names_follow_the_rules_and_arns_resolve() {
        assert!(create(&[]).is_ok());
        assert!(create(&[("SecretName", &"a".repeat(192))]).is_ok());
        assert_eq!(create(&[("SecretName", &"a".repeat(193))]).unwrap_err().code(), "InvalidParameter");
        assert!(create(&[("SecretName", "bad name")]).is_err());
        assert!(create(&[("SecretName", "acs/x")]).is_err());
        let p = Params::from_pairs([("SecretName", "acs:kms:cn-hangzhou:123:secret/db/app")]);
        assert_eq!(secret_name(&p, "SecretName").unwrap(), "db/app");
    }

    #[test]
    fn secret_data_is_bounded_and_binary_must_be_base64() {
        assert!(create(&[("SecretData", &"x".repeat(MAX_SECRET_DATA))]).is_ok());
        assert!(create(&[("SecretData", &"x".repeat(MAX_SECRET_DATA + 1))]).is_err());
        assert!(create(&[("SecretDataType", "binary"), ("SecretData", "not base64!")]).is_err());
        assert!(create(&[("SecretDataType", "binary"), ("SecretData", "aGk=")]).is_ok());
        assert!(create(&[("SecretDataType", "blob")]).is_err());
    }

    #[test]
    fn tags_are_checked() {
        let tags = |n: usize| {
            serde_json::to_string(&(0..n).map(|i| serde_json::json!({"TagKey": format!("k{i}"), "TagValue": "v"})).collect::<Vec<_>>())
                .unwrap()
        };
        assert!(create(&[("Tags", &tags(20))]).is_ok());
        assert!(create(&[("Tags", &tags(21))]).is_err());
        for bad in [
            r#"[{"TagKey":"aliyun-x","TagValue":"v"}]"#,
            r#"[{"TagKey":"ACS:x","TagValue":"v"}]"#,
            r#"[{"TagKey":"k","TagValue":"v"},{"TagKey":"k","TagValue":"w"}]"#,
            r#"[{"TagKey":"k!","TagValue":"v"}]"#,
            r#"{"TagKey":"k"}"#,
        ] {
            assert!(create(&[("Tags", bad)]).is_err(), "{bad}");
        }
        let long = format!(r#"[{{"TagKey":"{}","TagValue":"v"}}]"#, "k".repeat(129));
        assert!(create(&[("Tags", &long)]).is_err());
    }

    #[test]
    fn extended_config_is_bounded() {
        let cd = |n: usize| {
            serde_json::json!({"CustomData": (0..n).map(|i| (format!("k{i}"), serde_json::json!("v"))).collect::<serde_json::Map<_, _>>()})
                .to_string()
        };
        assert!(create(&[("ExtendedConfig", &cd(10))]).is_ok());
        assert!(create(&[("ExtendedConfig", &cd(11))]).is_err());
        let big = serde_json::json!({"CustomData": {"k": "v".repeat(1100)}}).to_string();
        assert!(create(&[("ExtendedConfig", &big)]).is_err());
    }

    #[test]
    fn current_and_previous_cannot_be_removed() {
        assert!(
            parse("UpdateSecretVersionStage", &[("SecretName", "s"), ("VersionStage", "ACSCurrent"), ("RemoveFromVersion", "v1")]).is_err()
        );
        assert!(parse("UpdateSecretVersionStage", &[("SecretName", "s"), ("VersionStage", "custom"), ("RemoveFromVersion", "v1")]).is_ok());
        assert_eq!(
            parse("UpdateSecretVersionStage", &[("SecretName", "s"), ("VersionStage", "custom")]).unwrap_err().code(),
            "MissingParameter"
        );
    }

    #[test]
    fn recovery_window_is_seven_to_thirty_days() {
        assert!(parse("DeleteSecret", &[("SecretName", "s"), ("RecoveryWindowInDays", "6")]).is_err());
        assert!(parse("DeleteSecret", &[("SecretName", "s"), ("RecoveryWindowInDays", "31")]).is_err());
        match parse("DeleteSecret", &[("SecretName", "s")]).unwrap() {
            DeleteSecret { recovery_days, force, .. } => assert_eq!((recovery_days, force), (30, false)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn filters_parse_and_reject_unknown_keys() {
        match parse("ListSecrets", &[("Filters", r#"[{"Key":"SecretName","Values":["a","b"]},{"Key":"SecretType","Values":["RDS"]}]"#)])
            .unwrap()
        {
            ListSecrets { filters, .. } => {
                assert_eq!(filters, vec![SecretFilter::Name(vec!["a".into(), "b".into()]), SecretFilter::Type(vec!["Rds".into()])])
            }
            other => panic!("{other:?}"),
        }
        assert!(parse("ListSecrets", &[("Filters", r#"[{"Key":"Color","Values":["a"]}]"#)]).is_err());
    }

    #[test]
    fn update_secret_accepts_flattened_and_json_custom_data() {
        match parse("UpdateSecret", &[("SecretName", "s"), ("ExtendedConfig.CustomData.k", "v")]).unwrap() {
            UpdateSecret { custom_data: Some(cd), .. } => assert_eq!(cd["k"], "v"),
            other => panic!("{other:?}"),
        }
        match parse("UpdateSecret", &[("SecretName", "s"), ("ExtendedConfig", r#"{"CustomData":{"a":"b"}}"#)]).unwrap() {
            UpdateSecret { custom_data: Some(cd), .. } => assert_eq!(cd["a"], "b"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rds_secrets_need_their_config_and_accounts() {
        let cfg = r#"{"SecretSubType":"DoubleUsers","DBInstanceId":"rm-1"}"#;
        let one = r#"{"Accounts":[{"AccountName":"app","AccountPassword":"p"}]}"#;
        match create(&[
            ("SecretType", "Rds"),
            ("ExtendedConfig", cfg),
            ("SecretData", one),
            ("EnableAutomaticRotation", "True"),
            ("RotationInterval", "6h"),
        ])
        .unwrap()
        {
            CreateSecret(c) => {
                let rds = c.rds.unwrap();
                assert_eq!(
                    (rds.mode, rds.db_instance_id.as_str(), matches!(rds.accounts, RdsAccounts::Import(a) if a.len() == 1), c.rotation),
                    (RdsMode::DoubleUsers, "rm-1", true, Some(21_600))
                );
            }
            other => panic!("{other:?}"),
        }
        let three = r#"{"Accounts":[{"AccountName":"a","AccountPassword":"p"},{"AccountName":"b","AccountPassword":"p"},{"AccountName":"c","AccountPassword":"p"}]}"#;
        let two = r#"{"Accounts":[{"AccountName":"a","AccountPassword":"p"},{"AccountName":"b","AccountPassword":"p"}]}"#;
        let single = r#"{"SecretSubType":"SingleUser","DBInstanceId":"rm-1"}"#;
        let bad_sub = r#"{"SecretSubType":"Triple","DBInstanceId":"rm-1"}"#;
        for (extra, why) in [
            (vec![("ExtendedConfig", cfg), ("SecretData", three)], "three accounts"),
            (vec![("ExtendedConfig", single), ("SecretData", two)], "two in single"),
            (vec![("SecretData", one)], "no config"),
            (vec![("ExtendedConfig", bad_sub), ("SecretData", one)], "bad subtype"),
            (vec![("ExtendedConfig", cfg), ("SecretData", "plain text")], "not JSON"),
            (
                vec![("ExtendedConfig", cfg), ("SecretData", one), ("EnableAutomaticRotation", "true"), ("RotationInterval", "5h")],
                "interval too short",
            ),
            (
                vec![("ExtendedConfig", cfg), ("SecretData", one), ("EnableAutomaticRotation", "true"), ("RotationInterval", "366d")],
                "interval too long",
            ),
        ] {
            let mut pairs = vec![("SecretType", "Rds")];
            pairs.extend(extra);
            assert!(create(&pairs).is_err(), "{why}");
        }
        assert_eq!(parse("UpdateSecretRotationPolicy", &[("SecretName", "s")]).unwrap_err().code(), "MissingParameter");
        assert!(matches!(parse("RotateSecret", &[("SecretName", "s"), ("VersionId", "r1")]).unwrap(), RotateSecret { .. }));
    }

    fn create_accounts(cfg: &str) -> Result<SecretRequest> {
        let p = Params::from_pairs(vec![("SecretName", "db/app"), ("VersionId", "v1"), ("SecretType", "Rds"), ("ExtendedConfig", cfg)]);
        SecretRequest::parse("CreateSecret", &p).map(|r| r.expect("parsed"))
    }

    #[test]
    fn create_accounts_mode_needs_a_prefix_and_a_grant_or_privileged_type() {
        let dual = r#"{"SecretSubType":"DoubleUsers","DBInstanceId":"rm-1","AccountNamePrefix":"app","DBName":"shop","AccountPrivilege":"ReadOnly"}"#;
        match create_accounts(dual).unwrap() {
            CreateSecret(c) => match c.rds.unwrap().accounts {
                RdsAccounts::Create(a) => assert_eq!(
                    a,
                    AccountCreation {
                        prefix: "app".into(),
                        account_type: AccountType::Standard,
                        grant: Some(("shop".into(), "ReadOnly".into()))
                    }
                ),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
        let super_single = r#"{"SecretSubType":"SingleUser","DBInstanceId":"rm-1","AccountNamePrefix":"ops","AccountType":"Super"}"#;
        assert!(create_accounts(super_single).is_ok());
        for (cfg, why) in [
            (r#"{"SecretSubType":"DoubleUsers","DBInstanceId":"rm-1","AccountNamePrefix":"app"}"#, "no database"),
            (r#"{"SecretSubType":"DoubleUsers","DBInstanceId":"rm-1","AccountNamePrefix":"app","AccountType":"Super"}"#, "privileged pair"),
            (r#"{"SecretSubType":"SingleUser","DBInstanceId":"rm-1","AccountNamePrefix":"App","AccountType":"Super"}"#, "upper case"),
            (r#"{"SecretSubType":"SingleUser","DBInstanceId":"rm-1","AccountNamePrefix":"a'b","AccountType":"Super"}"#, "quote"),
            (
                r#"{"SecretSubType":"SingleUser","DBInstanceId":"rm-1","AccountNamePrefix":"abcdefghijklmnopq","AccountType":"Super"}"#,
                "17 chars",
            ),
            (
                r#"{"SecretSubType":"SingleUser","DBInstanceId":"rm-1","AccountNamePrefix":"a","DBName":"d","AccountPrivilege":"All"}"#,
                "bad privilege",
            ),
            (
                r#"{"SecretSubType":"SingleUser","DBInstanceId":"rm-1","AccountNamePrefix":"a","AccountType":"Super","DBName":"d"}"#,
                "super with db",
            ),
            (r#"{"SecretSubType":"SingleUser","DBInstanceId":"rm-1"}"#, "neither accounts nor prefix"),
        ] {
            assert_eq!(
                create_accounts(cfg).unwrap_err().code(),
                if why == "neither accounts nor prefix" { "MissingParameter" } else { "InvalidParameter" },
                "{why}"
            );
        }
        // Accounts to import and accounts to create do not mix.
        let p = Params::from_pairs(vec![
            ("SecretName", "db/app"),
            ("VersionId", "v1"),
            ("SecretType", "Rds"),
            ("ExtendedConfig", super_single),
            ("SecretData", r#"{"Accounts":[{"AccountName":"a","AccountPassword":"p"}]}"#),
        ]);
        assert_eq!(SecretRequest::parse("CreateSecret", &p).unwrap_err().code(), "InvalidParameter");
        assert!(matches!(parse("ConfirmSecretAccounts", &[("SecretName", "s")]).unwrap(), ConfirmSecretAccounts { .. }));
        assert!(matches!(parse("CancelSecretRotation", &[("SecretName", "s")]).unwrap(), CancelSecretRotation { .. }));
    }

    #[test]
    fn debug_of_secret_data_hides_the_value() {
        let d = SecretData::new("canary-123".into());
        assert!(!format!("{d:?}").contains("canary"));
    }
}
