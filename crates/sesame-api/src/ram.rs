//! Identities and policies, spoken as Alibaba RAM's OpenAPI version 2015-05-01 (CreateUser,
//! CreateAccessKey, CreatePolicy, AttachPolicyToUser, …), and the audit trail, spoken as
//! ActionTrail's 2020-07-06 (`LookupEvents`) with Sesame's `VerifyEvents`.

use crate::error::{Error, Result};
use crate::params::Params;
use serde::Serialize;

pub const RAM_API_VERSION: &str = "2015-05-01";
pub const ACTIONTRAIL_API_VERSION: &str = "2020-07-06";
/// RAM's limit on a policy document.
pub const MAX_POLICY_DOCUMENT: usize = 6_144;
pub const MAX_LOOKUP_RESULTS: i64 = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyType {
    System,
    Custom,
}

impl PolicyType {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyType::System => "System",
            PolicyType::Custom => "Custom",
        }
    }
    fn parse(p: &Params, required: bool) -> Result<Option<PolicyType>> {
        match p.optional("PolicyType") {
            None if required => Err(Error::missing("PolicyType")),
            None => Ok(None),
            Some(t) if t.eq_ignore_ascii_case("System") => Ok(Some(PolicyType::System)),
            Some(t) if t.eq_ignore_ascii_case("Custom") => Ok(Some(PolicyType::Custom)),
            Some(_) => Err(Error::invalid("PolicyType", "must be System or Custom")),
        }
    }
}

/// One `LookupAttribute.N`: events match every attribute given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupAttribute {
    EventName(String),
    UserName(String),
    ResourceName(String),
    AccessKeyId(String),
    /// Sesame's: `Success` or `Failure`.
    Result(String),
}

#[derive(Debug, Clone)]
pub struct EventQuery {
    /// Seconds since the epoch, inclusive.
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub attributes: Vec<LookupAttribute>,
    pub max_results: i64,
    /// Events older than this position (from a previous page's NextToken).
    pub before: Option<i64>,
}

#[derive(Debug)]
pub enum RamRequest {
    CreateUser {
        name: String,
        display_name: String,
        comments: String,
    },
    GetUser {
        name: String,
    },
    ListUsers,
    DeleteUser {
        name: String,
    },
    /// `user` defaults to the caller.
    CreateAccessKey {
        user: Option<String>,
    },
    ListAccessKeys {
        user: Option<String>,
    },
    UpdateAccessKey {
        user: Option<String>,
        id: String,
        active: bool,
    },
    DeleteAccessKey {
        user: Option<String>,
        id: String,
    },
    CreatePolicy {
        name: String,
        document: String,
        description: String,
    },
    GetPolicy {
        name: String,
        policy_type: Option<PolicyType>,
    },
    ListPolicies {
        policy_type: Option<PolicyType>,
    },
    DeletePolicy {
        name: String,
    },
    AttachPolicyToUser {
        policy_type: PolicyType,
        policy: String,
        user: String,
    },
    DetachPolicyFromUser {
        policy_type: PolicyType,
        policy: String,
        user: String,
    },
    ListPoliciesForUser {
        user: String,
    },
    LookupEvents(EventQuery),
    VerifyEvents,
}

fn name(p: &Params, param: &str, max: usize) -> Result<String> {
    let v = p.required(param)?;
    if v.is_empty() || v.len() > max || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b)) {
        return Err(Error::invalid(param, format!("must be 1 to {max} letters, digits, '-', '_', '.' or '@'")));
    }
    Ok(v.to_string())
}

fn opt_user(p: &Params) -> Result<Option<String>> {
    p.optional("UserName").map(|_| name(p, "UserName", 64)).transpose()
}

/// `2026-01-02T03:04:05Z` or seconds since the epoch.
fn time(p: &Params, param: &str) -> Result<Option<i64>> {
    let Some(v) = p.optional(param) else { return Ok(None) };
    if let Ok(secs) = v.parse::<i64>() {
        return Ok(Some(secs));
    }
    crate::Timestamp::parse_iso8601(v)
        .map(|t| Some(t.seconds()))
        .ok_or_else(|| Error::invalid(param, "must be an ISO 8601 UTC time such as 2026-01-02T03:04:05Z"))
}

impl RamRequest {
    /// Parses a RAM or ActionTrail action; `Ok(None)` when `action` is neither.
    pub fn parse(action: &str, p: &Params) -> Result<Option<RamRequest>> {
        Ok(Some(match action {
            "CreateUser" => RamRequest::CreateUser {
                name: name(p, "UserName", 64)?,
                display_name: p.text("DisplayName", 128)?.unwrap_or_default().to_string(),
                comments: p.text("Comments", 128)?.unwrap_or_default().to_string(),
            },
            "GetUser" => RamRequest::GetUser { name: name(p, "UserName", 64)? },
            "ListUsers" => RamRequest::ListUsers,
            "DeleteUser" => RamRequest::DeleteUser { name: name(p, "UserName", 64)? },
            "CreateAccessKey" => RamRequest::CreateAccessKey { user: opt_user(p)? },
            "ListAccessKeys" => RamRequest::ListAccessKeys { user: opt_user(p)? },
            "UpdateAccessKey" => RamRequest::UpdateAccessKey {
                user: opt_user(p)?,
                id: name(p, "UserAccessKeyId", 64)?,
                active: match p.required("Status")? {
                    s if s.eq_ignore_ascii_case("Active") => true,
                    s if s.eq_ignore_ascii_case("Inactive") => false,
                    _ => return Err(Error::invalid("Status", "must be Active or Inactive")),
                },
            },
            "DeleteAccessKey" => RamRequest::DeleteAccessKey { user: opt_user(p)?, id: name(p, "UserAccessKeyId", 64)? },
            "CreatePolicy" => {
                let document = p.required("PolicyDocument")?;
                if document.len() > MAX_POLICY_DOCUMENT {
                    return Err(Error::invalid("PolicyDocument", format!("must be at most {MAX_POLICY_DOCUMENT} bytes")));
                }
                RamRequest::CreatePolicy {
                    name: name(p, "PolicyName", 128)?,
                    document: document.to_string(),
                    description: p.text("Description", 1024)?.unwrap_or_default().to_string(),
                }
            }
            "GetPolicy" => RamRequest::GetPolicy { name: name(p, "PolicyName", 128)?, policy_type: PolicyType::parse(p, false)? },
            "ListPolicies" => RamRequest::ListPolicies { policy_type: PolicyType::parse(p, false)? },
            "DeletePolicy" => RamRequest::DeletePolicy { name: name(p, "PolicyName", 128)? },
            "AttachPolicyToUser" | "DetachPolicyFromUser" => {
                let (policy_type, policy, user) =
                    (PolicyType::parse(p, true)?.unwrap_or(PolicyType::Custom), name(p, "PolicyName", 128)?, name(p, "UserName", 64)?);
                if action == "AttachPolicyToUser" {
                    RamRequest::AttachPolicyToUser { policy_type, policy, user }
                } else {
                    RamRequest::DetachPolicyFromUser { policy_type, policy, user }
                }
            }
            "ListPoliciesForUser" => RamRequest::ListPoliciesForUser { user: name(p, "UserName", 64)? },
            "LookupEvents" => {
                let mut attributes = Vec::new();
                for i in 1..=10 {
                    let (Some(k), v) = (p.optional(&format!("LookupAttribute.{i}.Key")), p.optional(&format!("LookupAttribute.{i}.Value")))
                    else {
                        continue;
                    };
                    let v = v.ok_or_else(|| Error::missing(format!("LookupAttribute.{i}.Value")))?.to_string();
                    attributes.push(match k {
                        "EventName" => LookupAttribute::EventName(v),
                        "UserName" => LookupAttribute::UserName(v),
                        "ResourceName" => LookupAttribute::ResourceName(v),
                        "EventAccessKeyId" => LookupAttribute::AccessKeyId(v),
                        "Result" if v == "Success" || v == "Failure" => LookupAttribute::Result(v),
                        "Result" => return Err(Error::invalid(format!("LookupAttribute.{i}.Value"), "Result is Success or Failure")),
                        _ => {
                            return Err(Error::invalid(
                                format!("LookupAttribute.{i}.Key"),
                                "must be EventName, UserName, ResourceName, EventAccessKeyId or Result",
                            ));
                        }
                    });
                }
                let before = match p.optional("NextToken") {
                    None => None,
                    Some(t) => Some(t.parse::<i64>().map_err(|_| Error::invalid("NextToken", "is not a token this server returned"))?),
                };
                RamRequest::LookupEvents(EventQuery {
                    from: time(p, "StartTime")?,
                    to: time(p, "EndTime")?,
                    attributes,
                    max_results: p.int_in("MaxResults", 1, MAX_LOOKUP_RESULTS)?.unwrap_or(50),
                    before,
                })
            }
            "VerifyEvents" => RamRequest::VerifyEvents,
            _ => return Ok(None),
        }))
    }

    /// The RAM (or ActionTrail) action name, for authorization.
    pub fn action(&self) -> &'static str {
        match self {
            RamRequest::CreateUser { .. } => "ram:CreateUser",
            RamRequest::GetUser { .. } => "ram:GetUser",
            RamRequest::ListUsers => "ram:ListUsers",
            RamRequest::DeleteUser { .. } => "ram:DeleteUser",
            RamRequest::CreateAccessKey { .. } => "ram:CreateAccessKey",
            RamRequest::ListAccessKeys { .. } => "ram:ListAccessKeys",
            RamRequest::UpdateAccessKey { .. } => "ram:UpdateAccessKey",
            RamRequest::DeleteAccessKey { .. } => "ram:DeleteAccessKey",
            RamRequest::CreatePolicy { .. } => "ram:CreatePolicy",
            RamRequest::GetPolicy { .. } => "ram:GetPolicy",
            RamRequest::ListPolicies { .. } => "ram:ListPolicies",
            RamRequest::DeletePolicy { .. } => "ram:DeletePolicy",
            RamRequest::AttachPolicyToUser { .. } => "ram:AttachPolicyToUser",
            RamRequest::DetachPolicyFromUser { .. } => "ram:DetachPolicyFromUser",
            RamRequest::ListPoliciesForUser { .. } => "ram:ListPoliciesForUser",
            RamRequest::LookupEvents(_) => "actiontrail:LookupEvents",
            RamRequest::VerifyEvents => "actiontrail:VerifyEvents",
        }
    }
}

#[derive(Debug, Serialize, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct UserInfo {
    pub user_name: String,
    pub user_id: String,
    pub display_name: String,
    pub comments: String,
    pub create_date: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserResponse {
    pub user: UserInfo,
}

#[derive(Debug, Serialize)]
pub struct UserList {
    #[serde(rename = "User")]
    pub user: Vec<UserInfo>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListUsersResponse {
    pub users: UserList,
    pub is_truncated: bool,
}

/// A new access key: the only answer that carries its secret.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NewAccessKeyInfo {
    pub access_key_id: String,
    pub access_key_secret: crate::kms::Sensitive<String>,
    pub status: String,
    pub create_date: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateAccessKeyResponse {
    pub access_key: NewAccessKeyInfo,
}

#[derive(Debug, Serialize, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct AccessKeyInfo {
    pub access_key_id: String,
    pub status: String,
    pub create_date: String,
}

#[derive(Debug, Serialize)]
pub struct AccessKeyList {
    #[serde(rename = "AccessKey")]
    pub access_key: Vec<AccessKeyInfo>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListAccessKeysResponse {
    pub access_keys: AccessKeyList,
}

#[derive(Debug, Serialize, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyInfo {
    pub policy_name: String,
    pub policy_type: String,
    pub description: String,
    pub default_version: String,
    pub create_date: String,
    pub attachment_count: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyResponse {
    pub policy: PolicyInfo,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyVersion {
    pub policy_document: String,
    pub version_id: String,
    pub is_default_version: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetPolicyResponse {
    pub policy: PolicyInfo,
    pub default_policy_version: PolicyVersion,
}

#[derive(Debug, Serialize)]
pub struct PolicyList {
    #[serde(rename = "Policy")]
    pub policy: Vec<PolicyInfo>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListPoliciesResponse {
    pub policies: PolicyList,
    pub is_truncated: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LookupEventsResponse {
    pub events: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Serialize, Clone, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct AuditProblem {
    /// The event's position in the trail (1 is the first event ever recorded).
    pub position: i64,
    pub problem: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VerifyEventsResponse {
    pub valid: bool,
    pub event_count: i64,
    pub problems: Vec<AuditProblem>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(action: &str, pairs: &[(&str, &str)]) -> Result<RamRequest> {
        RamRequest::parse(action, &Params::from_pairs(pairs.iter().copied())).map(|r| r.expect("a RAM action"))
    }

    #[test]
    fn names_and_statuses_are_checked() {
        assert!(matches!(parse("CreateUser", &[("UserName", "alice@corp")]).unwrap(), RamRequest::CreateUser { .. }));
        assert!(parse("CreateUser", &[("UserName", "a b")]).unwrap_err().message().contains("UserName"));
        assert_eq!(parse("UpdateAccessKey", &[("UserAccessKeyId", "LTAIx"), ("Status", "Off")]).unwrap_err().code(), "InvalidParameter");
        assert!(matches!(
            parse("UpdateAccessKey", &[("UserAccessKeyId", "LTAIx"), ("Status", "inactive")]).unwrap(),
            RamRequest::UpdateAccessKey { active: false, .. }
        ));
        assert_eq!(parse("AttachPolicyToUser", &[("PolicyName", "p"), ("UserName", "u")]).unwrap_err().code(), "MissingParameter");
        let big = "x".repeat(MAX_POLICY_DOCUMENT + 1);
        assert!(parse("CreatePolicy", &[("PolicyName", "p"), ("PolicyDocument", &big)]).unwrap_err().message().contains("PolicyDocument"));
    }

    #[test]
    fn lookups_take_attributes_times_and_tokens() {
        match parse(
            "LookupEvents",
            &[
                ("LookupAttribute.1.Key", "EventName"),
                ("LookupAttribute.1.Value", "GetSecretValue"),
                ("LookupAttribute.2.Key", "Result"),
                ("LookupAttribute.2.Value", "Failure"),
                ("StartTime", "2026-01-01T00:00:00Z"),
                ("NextToken", "42"),
            ],
        )
        .unwrap()
        {
            RamRequest::LookupEvents(q) => {
                assert_eq!(
                    q.attributes,
                    vec![LookupAttribute::EventName("GetSecretValue".into()), LookupAttribute::Result("Failure".into())]
                );
                assert_eq!((q.from, q.before, q.max_results), (Some(1_767_225_600), Some(42), 50));
            }
            other => panic!("{other:?}"),
        }
        assert!(parse("LookupEvents", &[("LookupAttribute.1.Key", "Colour"), ("LookupAttribute.1.Value", "x")]).is_err());
        assert!(parse("LookupEvents", &[("NextToken", "abc")]).is_err());
    }
}
