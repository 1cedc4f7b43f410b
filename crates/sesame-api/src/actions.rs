//! Every action by product, as policies name them (`kms:GetSecretValue`), and what an audit
//! event may record of a request: its parameters without secret values, and the resource it
//! names.

use crate::params::Params;
use serde_json::{Map, Value};

pub const KMS_ACTIONS: &[&str] = &[
    "CreateKey",
    "DescribeKey",
    "ListKeys",
    "EnableKey",
    "DisableKey",
    "ScheduleKeyDeletion",
    "CancelKeyDeletion",
    "UpdateRotationPolicy",
    "CreateKeyVersion",
    "ListKeyVersions",
    "DescribeKeyVersion",
    "CreateAlias",
    "UpdateAlias",
    "DeleteAlias",
    "ListAliases",
    "ListAliasesByKeyId",
    "Encrypt",
    "Decrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncrypt",
    "ListKmsInstances",
    "CreateSecret",
    "GetSecretValue",
    "BatchGetSecretValue",
    "ListSecrets",
    "DescribeSecret",
    "PutSecretValue",
    "UpdateSecret",
    "UpdateSecretVersionStage",
    "ListSecretVersionIds",
    "DeleteSecret",
    "RestoreSecret",
    "GetRandomPassword",
    "TagResource",
    "UntagResource",
    "TagResources",
    "UntagResources",
    "ListTagResources",
    "GetSecretPolicy",
    "SetSecretPolicy",
    "RotateSecret",
    "ConfirmSecretAccounts",
    "CancelSecretRotation",
    "UpdateSecretRotationPolicy",
];

pub const RDS_ACTIONS: &[&str] = &[
    "RegisterDBInstance",
    "ModifyDBInstance",
    "DescribeDBInstances",
    "DescribeDBInstanceAttribute",
    "DeregisterDBInstance",
    "DescribeAccounts",
];

pub const DMS_ACTIONS: &[&str] =
    &["RegisterInstance", "ListInstances", "GetInstance", "DeleteInstance", "ExecuteScript", "ListSQLExecAuditLog"];

pub const RAM_ACTIONS: &[&str] = &[
    "CreateUser",
    "GetUser",
    "ListUsers",
    "DeleteUser",
    "CreateAccessKey",
    "ListAccessKeys",
    "UpdateAccessKey",
    "DeleteAccessKey",
    "CreatePolicy",
    "GetPolicy",
    "ListPolicies",
    "DeletePolicy",
    "AttachPolicyToUser",
    "DetachPolicyFromUser",
    "ListPoliciesForUser",
];

pub const ACTIONTRAIL_ACTIONS: &[&str] = &["LookupEvents", "VerifyEvents"];

/// The actions of a policy service prefix (`kms`, `rds`, `dms`, `ram`, `actiontrail`).
pub fn of_service(service: &str) -> Option<&'static [&'static str]> {
    match service.to_ascii_lowercase().as_str() {
        "kms" => Some(KMS_ACTIONS),
        "rds" => Some(RDS_ACTIONS),
        "dms" => Some(DMS_ACTIONS),
        "ram" => Some(RAM_ACTIONS),
        "actiontrail" => Some(ACTIONTRAIL_ACTIONS),
        _ => None,
    }
}

/// The policy service prefix of an API version.
pub fn service_of_version(version: &str) -> Option<&'static str> {
    match version {
        crate::KMS_API_VERSION => Some("kms"),
        crate::rds::RDS_API_VERSION => Some("rds"),
        crate::dms::DMS_API_VERSION => Some("dms"),
        crate::ram::RAM_API_VERSION => Some("ram"),
        crate::ram::ACTIONTRAIL_API_VERSION => Some("actiontrail"),
        _ => None,
    }
}

/// ActionTrail's `serviceName` for a service prefix.
pub fn service_name(service: &str) -> &'static str {
    match service {
        "kms" => "Kms",
        "rds" => "Rds",
        "dms" => "Dms",
        "ram" => "Ram",
        "actiontrail" => "ActionTrail",
        _ => "Unknown",
    }
}

/// Parameters that carry secret values (or a signature), or may: an audit event records that
/// they were sent, never what they held. Encryption contexts are not secret by design, but
/// callers put what they like in them, so they are kept out too.
pub const SENSITIVE_PARAMS: &[&str] = &[
    "SecretData",
    "Plaintext",
    "AccountPassword",
    "DatabasePassword",
    "AccessKeySecret",
    "Script",
    "Signature",
    "EncryptionContext",
    "SourceEncryptionContext",
    "DestinationEncryptionContext",
];

/// Protocol parameters that say nothing about the action.
const PROTOCOL_PARAMS: &[&str] =
    &["Action", "Version", "AccessKeyId", "SignatureMethod", "SignatureVersion", "SignatureNonce", "Timestamp", "Format", "RegionId"];

/// A request's parameters for an audit event: secret values replaced by `"[redacted]"`.
pub fn audit_parameters(p: &Params) -> Map<String, Value> {
    p.iter()
        .filter(|(k, _)| !PROTOCOL_PARAMS.contains(k))
        .map(|(k, v)| {
            let value = if SENSITIVE_PARAMS.contains(&k) { "[redacted]".to_string() } else { v.to_string() };
            (k.to_string(), Value::String(value))
        })
        .collect()
}

/// The resource a request names, as an ARN, when its parameters say.
pub fn resource_name(service: &str, region: &str, account: &str, p: &Params) -> Option<String> {
    match service {
        "kms" => {
            if let Some(s) = p.optional("SecretName") {
                return Some(arn("kms", region, account, &["secret/", s]));
            }
            let k = p.optional("KeyId")?;
            Some(if k.starts_with("acs:") {
                k.to_string()
            } else if k.starts_with("alias/") {
                arn("kms", region, account, &[k])
            } else {
                arn("kms", region, account, &["key/", k])
            })
        }
        "rds" => p.optional("DBInstanceId").map(|d| arn("rds", region, account, &["dbinstance/", d])),
        "dms" => p.optional("InstanceAlias").or(p.optional("DbId")).map(|i| arn("dms", region, account, &["instance/", i])),
        "ram" => p
            .optional("UserName")
            .map(|u| arn("ram", region, account, &["user/", u]))
            .or_else(|| p.optional("PolicyName").map(|n| arn("ram", region, account, &["policy/", n]))),
        _ => None,
    }
}

/// `acs:{product}:{region}:{account}:` and then the pieces of `rest`: a resource's ARN. RAM's
/// resources belong to no region, so its ARNs leave the region out. Joined by hand into one
/// allocation; `format!` cost a request about 3,000 instructions an ARN, and a GetSecretValue
/// makes three (docs/benchmarks-log.md, finding 36).
pub fn arn(product: &str, region: &str, account: &str, rest: &[&str]) -> String {
    let region = if product == "ram" { "" } else { region };
    let head = ["acs:", product, ":", region, ":", account, ":"];
    let mut out = String::with_capacity(head.iter().chain(rest).map(|p| p.len()).sum());
    for piece in head.iter().chain(rest) {
        out.push_str(piece);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_action_is_one_a_parser_knows() {
        let p = Params::new();
        let known = |parsed: crate::error::Result<bool>| parsed.unwrap_or(true);
        for a in KMS_ACTIONS {
            let key = known(crate::kms::KeyRequest::parse(a, &p).map(|r| r.is_some()));
            let secret = known(crate::secrets::SecretRequest::parse(a, &p).map(|r| r.is_some()));
            assert!(key || secret, "kms:{a}");
        }
        for a in RDS_ACTIONS {
            assert!(known(crate::rds::DbRequest::parse(a, &p).map(|r| r.is_some())), "rds:{a}");
        }
        for a in DMS_ACTIONS {
            assert!(known(crate::dms::DmsRequest::parse(a, &p).map(|r| r.is_some())), "dms:{a}");
        }
        for a in RAM_ACTIONS.iter().chain(ACTIONTRAIL_ACTIONS) {
            assert!(known(crate::ram::RamRequest::parse(a, &p).map(|r| r.is_some())), "{a}");
        }
        assert!(!known(crate::kms::KeyRequest::parse("Nope", &p).map(|r| r.is_some())));
    }

    #[test]
    fn audit_parameters_never_hold_secret_values() {
        let p = Params::from_pairs([
            ("SecretName", "app/db"),
            ("SecretData", "canary-value"),
            ("Plaintext", "Y2FuYXJ5"),
            ("Signature", "sig"),
            ("Action", "PutSecretValue"),
        ]);
        let m = audit_parameters(&p);
        let text = Value::Object(m.clone()).to_string();
        assert!(!text.contains("canary") && !text.contains("Y2FuYXJ5") && !text.contains("sig\""), "{text}");
        assert_eq!(m["SecretName"], "app/db");
        assert_eq!(m["SecretData"], "[redacted]");
        assert!(!m.contains_key("Action"));
    }

    #[test]
    fn resources_are_named_by_arn() {
        let cases: [(&str, (&str, &str), Option<&str>); 9] = [
            ("kms", ("SecretName", "app/db"), Some("acs:kms:r:1:secret/app/db")),
            ("kms", ("KeyId", "alias/x"), Some("acs:kms:r:1:alias/x")),
            ("kms", ("KeyId", "k-1"), Some("acs:kms:r:1:key/k-1")),
            ("kms", ("KeyId", "acs:kms:r:1:key/k-2"), Some("acs:kms:r:1:key/k-2")),
            ("rds", ("DBInstanceId", "rm-1"), Some("acs:rds:r:1:dbinstance/rm-1")),
            ("dms", ("DbId", "7"), Some("acs:dms:r:1:instance/7")),
            ("ram", ("UserName", "alice"), Some("acs:ram::1:user/alice")),
            ("ram", ("PolicyName", "ops"), Some("acs:ram::1:policy/ops")),
            ("kms", ("Other", "x"), None),
        ];
        for (service, pair, expected) in cases {
            let p = Params::from_pairs([pair]);
            assert_eq!(resource_name(service, "r", "1", &p).as_deref(), expected, "{service} {pair:?}");
        }
    }

    #[test]
    fn an_arn_joins_its_pieces_with_nothing_between_those_of_its_name() {
        assert_eq!(arn("kms", "cn-hangzhou", "123", &["secret/", "db/app"]), "acs:kms:cn-hangzhou:123:secret/db/app");
        assert_eq!(arn("ram", "cn-hangzhou", "123", &["root"]), "acs:ram::123:root", "RAM's ARNs have no region");
        assert_eq!(arn("kms", "r", "1", &[]), "acs:kms:r:1:");
    }
}
