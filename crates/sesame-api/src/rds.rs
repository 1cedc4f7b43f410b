//! The database-instance registry: Sesame's stand-in for the RDS control plane, spoken as RDS's
//! OpenAPI version 2014-08-15 with its response shapes (`Items.DBInstance[]`,
//! `TotalRecordCount`). Registering an existing server is Sesame's own action
//! (`RegisterDBInstance`); describing and listing follow RDS.

use crate::error::{Error, Result};
use crate::kms::{KeyRef, Page};
use crate::params::Params;
use crate::secrets::SecretData;
use serde::Serialize;

pub const RDS_API_VERSION: &str = "2014-08-15";
pub const ENGINES: [&str; 4] = ["PostgreSQL", "MySQL", "MariaDB", "SQLServer"];
pub const TLS_MODES: [&str; 4] = ["disable", "prefer", "require", "verify-full"];

/// What RegisterDBInstance and ModifyDBInstance carry; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct DbInstanceFields {
    pub engine: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub admin_user: Option<String>,
    pub admin_password: Option<SecretData>,
    pub admin_database: Option<String>,
    pub tls: Option<String>,
    pub account_host: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug)]
pub enum DbRequest {
    RegisterDBInstance { id: Option<String>, key: Option<KeyRef>, fields: DbInstanceFields },
    ModifyDBInstance { id: String, fields: DbInstanceFields },
    DescribeDBInstances { page: Page, engine: Option<String> },
    DescribeDBInstanceAttribute { id: String },
    DeregisterDBInstance { id: String },
    DescribeAccounts { id: String },
}

pub fn validate_instance_id(name: &str, v: &str) -> Result<()> {
    if v.is_empty() || v.len() > 64 || !v.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-') {
        return Err(Error::invalid(name, "must be 1 to 64 lower-case letters, digits and -"));
    }
    Ok(())
}

fn instance_id(p: &Params) -> Result<String> {
    let v = p.required("DBInstanceId")?;
    validate_instance_id("DBInstanceId", v)?;
    Ok(v.to_string())
}

fn fields(p: &Params) -> Result<DbInstanceFields> {
    let engine = match p.optional("Engine") {
        None => None,
        Some(e) => Some(
            ENGINES
                .iter()
                .find(|x| x.eq_ignore_ascii_case(e))
                .map(|x| x.to_string())
                .ok_or_else(|| Error::invalid("Engine", format!("must be one of {}", ENGINES.join(", "))))?,
        ),
    };
    let host = p.text("ConnectionString", 255)?.map(str::to_string);
    if host.as_ref().is_some_and(|h| h.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/' || c == '@')) {
        return Err(Error::invalid("ConnectionString", "must be a host name or an IP address"));
    }
    let port = p.int_in("Port", 1, 65_535)?.map(|n| n as u16);
    let admin_user = p.text("AccountName", 128)?.map(str::to_string);
    let admin_password = match p.optional("AccountPassword") {
        Some(v) if v.len() > 1024 => return Err(Error::invalid("AccountPassword", "must be at most 1024 bytes")),
        Some(v) => Some(SecretData::new(v.to_string())),
        None => None,
    };
    let tls = match p.optional("TlsMode") {
        None => None,
        Some(t) => Some(
            TLS_MODES
                .iter()
                .find(|x| x.eq_ignore_ascii_case(t))
                .map(|x| x.to_string())
                .ok_or_else(|| Error::invalid("TlsMode", format!("must be one of {}", TLS_MODES.join(", "))))?,
        ),
    };
    Ok(DbInstanceFields {
        engine,
        host,
        port,
        admin_user,
        admin_password,
        admin_database: p.text("AdminDatabase", 128)?.map(str::to_string),
        tls,
        account_host: p.text("AccountHost", 255)?.map(str::to_string),
        description: p.text("DBInstanceDescription", 256)?.map(str::to_string),
    })
}

impl DbRequest {
    /// Parses a registry action; `Ok(None)` when `action` is not one.
    pub fn parse(action: &str, p: &Params) -> Result<Option<DbRequest>> {
        Ok(Some(match action {
            "RegisterDBInstance" => {
                let fields = fields(p)?;
                for (name, present) in [
                    ("Engine", fields.engine.is_some()),
                    ("ConnectionString", fields.host.is_some()),
                    ("AccountName", fields.admin_user.is_some()),
                ] {
                    if !present {
                        return Err(Error::missing(name));
                    }
                }
                let id = p.optional("DBInstanceId").map(|_| instance_id(p)).transpose()?;
                let key = p.optional("EncryptionKeyId").map(|_| KeyRef::from_params(p, "EncryptionKeyId")).transpose()?;
                DbRequest::RegisterDBInstance { id, key, fields }
            }
            "ModifyDBInstance" => {
                let fields = fields(p)?;
                if fields.engine.is_some() {
                    return Err(Error::invalid("Engine", "cannot be changed; deregister and register the instance again"));
                }
                DbRequest::ModifyDBInstance { id: instance_id(p)?, fields }
            }
            "DescribeDBInstances" => DbRequest::DescribeDBInstances {
                page: Page {
                    number: p.int_in("PageNumber", 1, i64::from(i32::MAX))?.unwrap_or(1),
                    size: p.int_in("PageSize", 1, 100)?.unwrap_or(30),
                },
                engine: fields(p)?.engine,
            },
            "DescribeDBInstanceAttribute" => DbRequest::DescribeDBInstanceAttribute { id: instance_id(p)? },
            "DeregisterDBInstance" => DbRequest::DeregisterDBInstance { id: instance_id(p)? },
            "DescribeAccounts" => DbRequest::DescribeAccounts { id: instance_id(p)? },
            _ => return Ok(None),
        }))
    }
}

/// A registered instance as the API shows it: never its admin password.
#[derive(Debug, Serialize, Clone, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct DbInstanceInfo {
    #[serde(rename = "DBInstanceId")]
    pub db_instance_id: String,
    pub engine: String,
    pub connection_string: String,
    pub port: u16,
    pub account_name: String,
    pub admin_database: String,
    pub tls_mode: String,
    pub account_host: String,
    #[serde(rename = "DBInstanceDescription")]
    pub db_instance_description: String,
    pub encryption_key_id: String,
    pub creation_time: String,
    #[serde(rename = "DBInstanceStatus")]
    pub db_instance_status: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterResponse {
    #[serde(rename = "DBInstanceId")]
    pub db_instance_id: String,
}

#[derive(Debug, Serialize)]
pub struct InstanceItems {
    #[serde(rename = "DBInstance")]
    pub db_instance: Vec<DbInstanceInfo>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeInstancesResponse {
    pub items: InstanceItems,
    pub total_record_count: i64,
    pub page_number: i64,
    pub page_record_count: i64,
}

#[derive(Debug, Serialize)]
pub struct AttributeItems {
    #[serde(rename = "DBInstanceAttribute")]
    pub db_instance_attribute: Vec<DbInstanceInfo>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeAttributeResponse {
    pub items: AttributeItems,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccountItem {
    #[serde(rename = "DBInstanceId")]
    pub db_instance_id: String,
    pub account_name: String,
}

#[derive(Debug, Serialize)]
pub struct AccountItems {
    #[serde(rename = "DBInstanceAccount")]
    pub db_instance_account: Vec<AccountItem>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeAccountsResponse {
    pub accounts: AccountItems,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(action: &str, pairs: &[(&str, &str)]) -> Result<DbRequest> {
        DbRequest::parse(action, &Params::from_pairs(pairs.iter().copied())).map(|r| r.expect("a registry action"))
    }

    #[test]
    fn registration_needs_engine_host_and_admin() {
        let ok = [("Engine", "postgresql"), ("ConnectionString", "db.local"), ("AccountName", "admin"), ("AccountPassword", "pw")];
        match parse("RegisterDBInstance", &ok).unwrap() {
            DbRequest::RegisterDBInstance { fields, id: None, .. } => assert_eq!(fields.engine.as_deref(), Some("PostgreSQL")),
            other => panic!("{other:?}"),
        }
        for missing in ["Engine", "ConnectionString", "AccountName"] {
            let pairs: Vec<_> = ok.iter().copied().filter(|(k, _)| *k != missing).collect();
            assert_eq!(parse("RegisterDBInstance", &pairs).unwrap_err().code(), "MissingParameter", "{missing}");
        }
    }

    #[test]
    fn bad_fields_are_refused_with_their_name() {
        let base = [("Engine", "MySQL"), ("ConnectionString", "h"), ("AccountName", "a")];
        for (k, v) in [
            ("Engine", "Oracle"),
            ("Port", "0"),
            ("Port", "65536"),
            ("ConnectionString", "a b"),
            ("TlsMode", "maybe"),
            ("DBInstanceId", "UPPER"),
        ] {
            let mut pairs: Vec<_> = base.iter().copied().filter(|(x, _)| *x != k).collect();
            pairs.push((k, v));
            let e = parse("RegisterDBInstance", &pairs).unwrap_err();
            assert!(e.message().contains(k), "{k}={v}: {}", e.message());
        }
        assert!(parse("ModifyDBInstance", &[("DBInstanceId", "rm-1"), ("Engine", "MySQL")]).is_err());
    }

    #[test]
    fn debug_hides_the_admin_password() {
        let r = parse(
            "RegisterDBInstance",
            &[("Engine", "MySQL"), ("ConnectionString", "h"), ("AccountName", "a"), ("AccountPassword", "canary-pw")],
        )
        .unwrap();
        assert!(!format!("{r:?}").contains("canary"));
    }
}
