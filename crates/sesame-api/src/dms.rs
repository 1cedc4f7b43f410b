//! Data Management (DMS), spoken as DMS Enterprise's OpenAPI version 2018-11-01 where it has an
//! action: `RegisterInstance`, `ListInstances`, `GetInstance`, `DeleteInstance`,
//! `ExecuteScript` (its `Results[{ColumnNames, Rows, RowCount, Success, Message}]` shape) and
//! `ListSQLExecAuditLog`. Instances are named by `InstanceAlias`; the access mode
//! (`LoginMode`: `KmsSecret` or `Password`) and the KMS-secret fields are Sesame's, since DMS's
//! API has none (reference §5.2).

use crate::error::{Error, Result};
use crate::kms::Page;
use crate::params::Params;
use crate::rds::{ENGINES, TLS_MODES, validate_instance_id};
use crate::secrets::SecretData;
use serde::Serialize;

pub const DMS_API_VERSION: &str = "2018-11-01";
pub const ENV_TYPES: [&str; 8] = ["product", "dev", "pre", "test", "sit", "uat", "pet", "stag"];
pub const MAX_SCRIPT_BYTES: usize = 64 * 1024;
pub const DEFAULT_MAX_ROWS: usize = 1_000;
pub const MAX_ROWS: usize = 10_000;
pub const DEFAULT_QUERY_TIMEOUT_SECS: u64 = 60;
pub const MAX_QUERY_TIMEOUT_SECS: u64 = 3_600;

/// How DMS logs on to an instance.
#[derive(Debug)]
pub enum LoginSpec {
    /// Fetch ACSCurrent from KMS at every logon: by secret name, or the Rds secret of a
    /// registered database instance (found through ListSecrets).
    KmsSecret { secret_name: Option<String>, db_instance_id: Option<String> },
    /// An account and password that DMS keeps sealed by a KMS key.
    Password { user: String, password: SecretData },
}

#[derive(Debug)]
pub struct RegisterInstance {
    pub alias: String,
    pub engine: String,
    pub host: String,
    pub port: u16,
    pub database: Option<String>,
    pub env_type: String,
    pub query_timeout: u64,
    pub tls: String,
    pub login: LoginSpec,
}

/// Which instance a request means: DMS's numeric id or the alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceRef {
    Id(i64),
    Alias(String),
}

#[derive(Debug)]
pub struct ExecuteScript {
    pub instance: InstanceRef,
    pub script: String,
    pub max_rows: usize,
    pub timeout: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct AuditQuery {
    pub page: Page,
    /// Seconds since the epoch, inclusive.
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub user: Option<String>,
    pub instance: Option<String>,
    /// `SUCCESS` or `FAIL`.
    pub state: Option<String>,
}

#[derive(Debug)]
pub enum DmsRequest {
    RegisterInstance(Box<RegisterInstance>),
    ListInstances { page: Page },
    GetInstance { instance: InstanceRef },
    DeleteInstance { instance: InstanceRef },
    ExecuteScript(ExecuteScript),
    ListSqlExecAuditLog(AuditQuery),
}

fn alias(p: &Params, name: &str) -> Result<String> {
    let v = p.required(name)?;
    if v.is_empty() || v.len() > 64 || !v.bytes().all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c)) {
        return Err(Error::invalid(name, "must be 1 to 64 letters, digits, '-', '_' or '.'"));
    }
    Ok(v.to_string())
}

fn instance_ref(p: &Params) -> Result<InstanceRef> {
    match (p.optional("DbId").or(p.optional("InstanceId")), p.optional("InstanceAlias")) {
        (Some(_), None) => {
            let name = if p.optional("DbId").is_some() { "DbId" } else { "InstanceId" };
            Ok(InstanceRef::Id(p.int_in(name, 1, i64::MAX)?.unwrap_or_default()))
        }
        (None, Some(_)) => Ok(InstanceRef::Alias(alias(p, "InstanceAlias")?)),
        (Some(_), Some(_)) => Err(Error::invalid("InstanceAlias", "give either DbId or InstanceAlias, not both")),
        (None, None) => Err(Error::missing("InstanceAlias")),
    }
}

fn one_of(p: &Params, name: &str, allowed: &[&str], default: &str) -> Result<String> {
    match p.optional(name) {
        None => Ok(default.to_string()),
        Some(v) => allowed
            .iter()
            .find(|a| a.eq_ignore_ascii_case(v))
            .map(|a| a.to_string())
            .ok_or_else(|| Error::invalid(name, format!("must be one of {}", allowed.join(", ")))),
    }
}

fn login(p: &Params) -> Result<LoginSpec> {
    let secret_name = p.text("SecretName", 192)?.map(str::to_string);
    let db_instance_id = match p.optional("DBInstanceId") {
        Some(v) => {
            validate_instance_id("DBInstanceId", v)?;
            Some(v.to_string())
        }
        None => None,
    };
    let user = p.text("DatabaseUser", 128)?.map(str::to_string);
    let mode = match p.optional("LoginMode") {
        Some(m) if m.eq_ignore_ascii_case("KmsSecret") => "KmsSecret",
        Some(m) if m.eq_ignore_ascii_case("Password") => "Password",
        Some(_) => return Err(Error::invalid("LoginMode", "must be KmsSecret or Password")),
        None if user.is_some() && secret_name.is_none() && db_instance_id.is_none() => "Password",
        None => "KmsSecret",
    };
    if mode == "Password" {
        if secret_name.is_some() || db_instance_id.is_some() {
            return Err(Error::invalid("LoginMode", "Password takes DatabaseUser and DatabasePassword, not a secret"));
        }
        let password = p.required("DatabasePassword")?;
        if password.len() > 1024 {
            return Err(Error::invalid("DatabasePassword", "must be at most 1024 bytes"));
        }
        return Ok(LoginSpec::Password {
            user: user.ok_or_else(|| Error::missing("DatabaseUser"))?,
            password: SecretData::new(password.to_string()),
        });
    }
    if p.optional("DatabasePassword").is_some() {
        return Err(Error::invalid(
            "DatabasePassword",
            "is not taken with LoginMode KmsSecret: DMS fetches the password from KMS at every logon",
        ));
    }
    match (&secret_name, &db_instance_id) {
        (None, None) => Err(Error::missing("SecretName")),
        (Some(_), Some(_)) => Err(Error::invalid("SecretName", "give either SecretName or DBInstanceId, not both")),
        _ => Ok(LoginSpec::KmsSecret { secret_name, db_instance_id }),
    }
}

/// `2026-01-02T03:04:05Z` or milliseconds since the epoch (DMS's form), as seconds.
fn time_param(p: &Params, name: &str) -> Result<Option<i64>> {
    let Some(v) = p.optional(name) else { return Ok(None) };
    if let Ok(ms) = v.parse::<i64>() {
        return Ok(Some(ms.div_euclid(1_000)));
    }
    crate::Timestamp::parse_iso8601(v)
        .map(|t| Some(t.seconds()))
        .ok_or_else(|| Error::invalid(name, "must be an ISO 8601 UTC time (2026-01-02T03:04:05Z) or milliseconds since 1970"))
}

impl DmsRequest {
    /// Parses a DMS action; `Ok(None)` when `action` is not one.
    pub fn parse(action: &str, p: &Params) -> Result<Option<DmsRequest>> {
        let page = || -> Result<Page> {
            Ok(Page {
                number: p.int_in("PageNumber", 1, i64::from(i32::MAX))?.unwrap_or(1),
                size: p.int_in("PageSize", 1, 100)?.unwrap_or(20),
            })
        };
        Ok(Some(match action {
            "RegisterInstance" => {
                let engine = match p.optional("InstanceType") {
                    None => return Err(Error::missing("InstanceType")),
                    Some(_) => one_of(p, "InstanceType", &ENGINES, "")?,
                };
                let host = p.text("Host", 255)?.ok_or_else(|| Error::missing("Host"))?.to_string();
                if host.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/' || c == '@') {
                    return Err(Error::invalid("Host", "must be a host name or an IP address"));
                }
                let port = p.int_in("Port", 1, 65_535)?.ok_or_else(|| Error::missing("Port"))? as u16;
                DmsRequest::RegisterInstance(Box::new(RegisterInstance {
                    alias: alias(p, "InstanceAlias")?,
                    engine,
                    host,
                    port,
                    database: p.text("DatabaseName", 128)?.map(str::to_string),
                    env_type: one_of(p, "EnvType", &ENV_TYPES, "dev")?,
                    query_timeout: p
                        .int_in("QueryTimeout", 1, MAX_QUERY_TIMEOUT_SECS as i64)?
                        .map_or(DEFAULT_QUERY_TIMEOUT_SECS, |t| t as u64),
                    tls: one_of(p, "TlsMode", &TLS_MODES, "prefer")?,
                    login: login(p)?,
                }))
            }
            "ListInstances" => DmsRequest::ListInstances { page: page()? },
            "GetInstance" => DmsRequest::GetInstance { instance: instance_ref(p)? },
            "DeleteInstance" => DmsRequest::DeleteInstance { instance: instance_ref(p)? },
            "ExecuteScript" => {
                if p.bool("Logic")? == Some(true) {
                    return Err(Error::invalid("Logic", "logical databases are not supported; give false or leave it out"));
                }
                let script = p.required("Script")?;
                if script.len() > MAX_SCRIPT_BYTES {
                    return Err(Error::invalid("Script", format!("must be at most {MAX_SCRIPT_BYTES} bytes")));
                }
                if script.trim().is_empty() {
                    return Err(Error::invalid("Script", "holds no statement"));
                }
                DmsRequest::ExecuteScript(ExecuteScript {
                    instance: instance_ref(p)?,
                    script: script.to_string(),
                    max_rows: p.int_in("MaxRows", 1, MAX_ROWS as i64)?.map_or(DEFAULT_MAX_ROWS, |n| n as usize),
                    timeout: p.int_in("QueryTimeout", 1, MAX_QUERY_TIMEOUT_SECS as i64)?.map(|t| t as u64),
                })
            }
            "ListSQLExecAuditLog" => DmsRequest::ListSqlExecAuditLog(AuditQuery {
                page: page()?,
                from: time_param(p, "StartTime")?,
                to: time_param(p, "EndTime")?,
                user: p.text("OpUserName", 128)?.map(str::to_string),
                instance: p.text("SearchName", 64)?.map(str::to_string),
                state: match p.optional("ExecState") {
                    None => None,
                    Some(_) => Some(one_of(p, "ExecState", &["SUCCESS", "FAIL"], "")?),
                },
            }),
            _ => return Ok(None),
        }))
    }
}

/// DMS's envelope for actions without a body of their own.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DmsOk {
    pub success: bool,
}

#[derive(Debug, Serialize, Clone, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceInfo {
    pub instance_id: i64,
    pub instance_alias: String,
    pub instance_type: String,
    pub host: String,
    pub port: u16,
    pub database_name: String,
    pub env_type: String,
    pub query_timeout: u64,
    pub tls_mode: String,
    /// `KmsSecret` or `Password`.
    pub login_mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    #[serde(rename = "DBInstanceId", skip_serializing_if = "Option::is_none")]
    pub db_instance_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_user: Option<String>,
    pub create_time: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterInstanceResponse {
    pub success: bool,
    pub instance_id: i64,
}

#[derive(Debug, Serialize)]
pub struct InstanceList {
    #[serde(rename = "Instance")]
    pub instance: Vec<InstanceInfo>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListInstancesResponse {
    pub success: bool,
    pub instance_list: InstanceList,
    pub total_count: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetInstanceResponse {
    pub success: bool,
    pub instance: InstanceInfo,
}

/// One statement's result, as ExecuteScript returns it.
#[derive(Debug, Serialize, Clone, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ScriptResult {
    pub column_names: Vec<String>,
    /// Column → value (text, or null).
    pub rows: Vec<serde_json::Map<String, serde_json::Value>>,
    pub row_count: u64,
    pub success: bool,
    pub message: String,
    /// Sesame's: more rows than `MaxRows` were returned and left out.
    pub truncated: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecuteScriptResponse {
    /// Every statement ran.
    pub success: bool,
    pub results: Vec<ScriptResult>,
}

/// One audited statement (DMS's `SQLExecAuditLog`, with the secret and account Sesame adds).
#[derive(Debug, Serialize, Clone, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct AuditEntry {
    pub op_time: String,
    pub user_name: String,
    pub instance_id: i64,
    pub instance_name: String,
    pub schema_name: String,
    /// The statement text, when the operator records it.
    #[serde(rename = "SQL")]
    pub sql: String,
    pub sql_type: String,
    /// `SUCCESS` or `FAIL`.
    pub exec_state: String,
    pub affect_rows: i64,
    pub elapsed_time: i64,
    /// Why it failed: an error code, never a password.
    pub remark: String,
    pub secret_name: String,
    pub secret_version_id: String,
    pub account_name: String,
}

#[derive(Debug, Serialize)]
pub struct AuditList {
    #[serde(rename = "SQLExecAuditLog")]
    pub entries: Vec<AuditEntry>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AuditLogResponse {
    pub success: bool,
    #[serde(rename = "SQLExecAuditLogList")]
    pub list: AuditList,
    pub total_count: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(action: &str, pairs: &[(&str, &str)]) -> Result<DmsRequest> {
        DmsRequest::parse(action, &Params::from_pairs(pairs.iter().copied())).map(|r| r.expect("a DMS action"))
    }

    const BASE: [(&str, &str); 4] = [("InstanceAlias", "shop-pg"), ("InstanceType", "postgresql"), ("Host", "127.0.0.1"), ("Port", "5432")];

    #[test]
    fn an_instance_logs_on_with_a_kms_secret_or_a_sealed_password() {
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = BASE.to_vec();
            pairs.extend_from_slice(extra);
            parse("RegisterInstance", &pairs)
        };
        match with(&[("SecretName", "rds/shop")]).unwrap() {
            DmsRequest::RegisterInstance(r) => {
                assert_eq!((r.engine.as_str(), r.env_type.as_str(), r.query_timeout), ("PostgreSQL", "dev", 60));
                assert!(matches!(r.login, LoginSpec::KmsSecret { secret_name: Some(_), db_instance_id: None }));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(with(&[("DBInstanceId", "pg-1")]).unwrap(), DmsRequest::RegisterInstance(r) if matches!(r.login, LoginSpec::KmsSecret { db_instance_id: Some(_), .. }))
        );
        assert!(
            matches!(with(&[("DatabaseUser", "u"), ("DatabasePassword", "p")]).unwrap(), DmsRequest::RegisterInstance(r) if matches!(r.login, LoginSpec::Password { .. }))
        );
        for (extra, field) in [
            (vec![], "SecretName"),
            (vec![("SecretName", "a"), ("DatabasePassword", "p")], "DatabasePassword"),
            (vec![("SecretName", "a"), ("DBInstanceId", "pg-1")], "SecretName"),
            (vec![("LoginMode", "Password"), ("DatabaseUser", "u")], "DatabasePassword"),
            (vec![("SecretName", "a"), ("EnvType", "moon")], "EnvType"),
            (vec![("SecretName", "a"), ("QueryTimeout", "0")], "QueryTimeout"),
        ] {
            let e = with(&extra).unwrap_err();
            assert!(e.message().contains(field), "{extra:?}: {}", e.message());
        }
        let bad_alias = [("InstanceAlias", "no spaces"), ("InstanceType", "MySQL"), ("Host", "h"), ("Port", "1"), ("SecretName", "s")];
        assert!(parse("RegisterInstance", &bad_alias).unwrap_err().message().contains("InstanceAlias"));
    }

    #[test]
    fn scripts_are_bounded() {
        let ok = parse("ExecuteScript", &[("DbId", "3"), ("Script", "select 1"), ("MaxRows", "5")]).unwrap();
        assert!(matches!(ok, DmsRequest::ExecuteScript(ExecuteScript { instance: InstanceRef::Id(3), max_rows: 5, .. })));
        let big = "x".repeat(MAX_SCRIPT_BYTES + 1);
        for (pairs, field) in [
            (vec![("InstanceAlias", "a"), ("Script", big.as_str())], "Script"),
            (vec![("InstanceAlias", "a"), ("Script", "  ")], "Script"),
            (vec![("InstanceAlias", "a"), ("Script", "select 1"), ("MaxRows", "10001")], "MaxRows"),
            (vec![("InstanceAlias", "a"), ("Script", "select 1"), ("Logic", "true")], "Logic"),
            (vec![("Script", "select 1")], "InstanceAlias"),
        ] {
            let e = parse("ExecuteScript", &pairs).unwrap_err();
            assert!(e.message().contains(field), "{field}: {}", e.message());
        }
    }

    #[test]
    fn audit_queries_take_iso_or_millisecond_times() {
        match parse("ListSQLExecAuditLog", &[("StartTime", "1767225600000"), ("EndTime", "2026-01-02T00:00:00Z"), ("ExecState", "fail")])
            .unwrap()
        {
            DmsRequest::ListSqlExecAuditLog(q) => {
                assert_eq!((q.from, q.to, q.state.as_deref()), (Some(1_767_225_600), Some(1_767_312_000), Some("FAIL")))
            }
            other => panic!("{other:?}"),
        }
        assert!(parse("ListSQLExecAuditLog", &[("StartTime", "yesterday")]).is_err());
    }

    #[test]
    fn debug_hides_a_registered_password() {
        let mut pairs = BASE.to_vec();
        pairs.extend([("DatabaseUser", "u"), ("DatabasePassword", "canary-dms-pw")]);
        assert!(!format!("{:?}", parse("RegisterInstance", &pairs).unwrap()).contains("canary"));
    }
}
