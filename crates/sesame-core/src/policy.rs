//! Policies in the RAM JSON grammar, and their evaluation.
//!
//! ```text
//! {"Version": "1", "Statement": [{"Effect": "Allow" | "Deny",
//!   "Action": "kms:GetSecretValue" | ["kms:*", …],
//!   "Resource": "acs:kms:*:*:secret/app/*" | [...],
//!   "Principal": {"RAM": ["acs:ram::123:user/alice"]},          (secret policies only)
//!   "Condition": {"StringEquals": {"kms:tag/env": "dev"}, "IpAddress": {"acs:SourceIp": "10.0.0.0/8"}}}]}
//! ```
//!
//! Condition operators: StringEquals, StringNotEquals, StringEqualsIgnoreCase, StringLike,
//! StringNotLike, IpAddress, NotIpAddress, Bool; keys: `acs:SourceIp`, `kms:tag/<TagKey>`.
//!
//! Actions match case-insensitively, resources and principals case-sensitively; both take `*`
//! and `?`. A statement applies when its action, resource, principal and every condition match.
//! Across all the policies that apply to a request, an explicit Deny wins, then an Allow; with
//! neither the request is denied.

use serde_json::Value;
use sesame_api::Error;
use sesame_api::error::Result;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    /// Attached to a user: no Principal.
    Identity,
    /// Attached to a secret: names its Principals; Resource defaults to the secret.
    Secret,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    IpAddress,
    NotIpAddress,
    Bool,
}

#[derive(Debug, Clone)]
struct Condition {
    op: Op,
    key: String,
    values: Vec<String>,
}

#[derive(Debug, Clone)]
struct Statement {
    effect: Effect,
    actions: Vec<String>,
    resources: Vec<String>,
    principals: Option<Vec<String>>,
    conditions: Vec<Condition>,
}

#[derive(Debug, Clone)]
pub struct PolicyDocument {
    statements: Vec<Statement>,
}

/// What a request is, for evaluation.
pub struct RequestContext<'a> {
    /// `kms:GetSecretValue`.
    pub action: &'a str,
    /// `acs:kms:{region}:{account}:secret/{name}`.
    pub resource: &'a str,
    /// `acs:ram::{account}:root` or `acs:ram::{account}:user/{name}`.
    pub principal: &'a str,
    pub source_ip: &'a str,
    /// The resource's tags, for `kms:tag/{key}`.
    pub tags: &'a [(String, String)],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
    NotApplicable,
}

fn malformed(why: impl Into<String>) -> Error {
    Error::MalformedPolicyDocument(why.into())
}

/// A string or a list of strings.
fn strings(v: &Value, what: &str) -> Result<Vec<String>> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => {
            items.iter().map(|i| i.as_str().map(str::to_string).ok_or_else(|| malformed(format!("{what} must hold strings")))).collect()
        }
        _ => Err(malformed(format!("{what} must be a string or a non-empty list of strings"))),
    }
}

/// Does `pattern` (with `*` and `?`) match `text`? Runs on every authorization, so ASCII (all
/// of Alibaba's actions and ARNs in practice) is matched in place, without allocating.
pub fn glob(pattern: &str, text: &str, ignore_case: bool) -> bool {
    if pattern == "*" {
        return true;
    }
    if pattern.is_ascii() && text.is_ascii() {
        let eq = |a: u8, b: u8| if ignore_case { a.eq_ignore_ascii_case(&b) } else { a == b };
        return glob_units(pattern.as_bytes(), text.as_bytes(), b'*', b'?', eq);
    }
    let (p, t): (Vec<char>, Vec<char>) = if ignore_case {
        (pattern.to_lowercase().chars().collect(), text.to_lowercase().chars().collect())
    } else {
        (pattern.chars().collect(), text.chars().collect())
    };
    glob_units(&p, &t, '*', '?', |a, b| a == b)
}

/// Iterative matching with backtracking to the last star: linear in practice, no recursion.
fn glob_units<T: Copy + PartialEq>(p: &[T], t: &[T], star_unit: T, any: T, eq: impl Fn(T, T) -> bool) -> bool {
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] != star_unit && (p[pi] == any || eq(p[pi], t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == star_unit {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == star_unit)
}

fn check_action(a: &str) -> Result<()> {
    if a == "*" {
        return Ok(());
    }
    let (service, name) =
        a.split_once(':').ok_or_else(|| malformed(format!("action {a} must be service:Action, such as kms:GetSecretValue")))?;
    let known: Vec<&str> = if service == "*" {
        ["kms", "rds", "dms", "ram", "actiontrail"].iter().filter_map(|s| sesame_api::actions::of_service(s)).flatten().copied().collect()
    } else {
        sesame_api::actions::of_service(service)
            .ok_or_else(|| malformed(format!("action {a}: unknown service {service} (kms, rds, dms, ram or actiontrail)")))?
            .to_vec()
    };
    if !known.iter().any(|k| glob(name, k, true)) {
        return Err(malformed(format!("action {a} matches no {service} action")));
    }
    Ok(())
}

fn parse_ip_range(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a.parse::<IpAddr>().ok()?, l.parse::<u8>().ok()?),
        None => {
            let a = s.parse::<IpAddr>().ok()?;
            (a, if a.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((addr, len))
}

fn in_range(ip: &str, range: &str) -> bool {
    let (Ok(ip), Some((net, len))) = (ip.parse::<IpAddr>(), parse_ip_range(range)) else { return false };
    let (ip, net, bits) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32u32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128u32),
        // An IPv4 client seen through an IPv6 socket.
        (IpAddr::V6(a), IpAddr::V4(b)) => match a.to_ipv4_mapped() {
            Some(a) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32u32),
            None => return false,
        },
        _ => return false,
    };
    let shift = bits - u32::from(len);
    shift >= bits || (ip >> shift) == (net >> shift)
}

const CONDITION_KEYS: &str = "acs:SourceIp or kms:tag/<TagKey>";

fn parse_conditions(v: &Value) -> Result<Vec<Condition>> {
    let obj = v.as_object().ok_or_else(|| malformed("Condition must be an object of operators"))?;
    let mut out = Vec::new();
    for (op_name, keys) in obj {
        let op = match op_name.as_str() {
            "StringEquals" => Op::StringEquals,
            "StringNotEquals" => Op::StringNotEquals,
            "StringEqualsIgnoreCase" => Op::StringEqualsIgnoreCase,
            "StringLike" => Op::StringLike,
            "StringNotLike" => Op::StringNotLike,
            "IpAddress" => Op::IpAddress,
            "NotIpAddress" => Op::NotIpAddress,
            "Bool" => Op::Bool,
            other => return Err(malformed(format!("unknown condition operator {other}"))),
        };
        let keys = keys.as_object().ok_or_else(|| malformed(format!("{op_name} must map condition keys to values")))?;
        for (key, values) in keys {
            let known = key.eq_ignore_ascii_case("acs:SourceIp")
                || key.to_ascii_lowercase().strip_prefix("kms:tag/").is_some_and(|k| !k.is_empty());
            if !known {
                return Err(malformed(format!("unknown condition key {key}; use {CONDITION_KEYS}")));
            }
            let values = strings(values, &format!("{op_name}.{key}"))?;
            if matches!(op, Op::IpAddress | Op::NotIpAddress) {
                if !key.eq_ignore_ascii_case("acs:SourceIp") {
                    return Err(malformed(format!("{op_name} applies to acs:SourceIp, not {key}")));
                }
                if let Some(bad) = values.iter().find(|v| parse_ip_range(v).is_none()) {
                    return Err(malformed(format!("{bad} is not an IP address or CIDR range")));
                }
            }
            out.push(Condition { op, key: key.clone(), values });
        }
    }
    Ok(out)
}

impl PolicyDocument {
    /// Parses and checks a document: its grammar, its actions (each must name at least one
    /// action that exists) and its condition keys.
    pub fn parse(text: &str, kind: DocKind) -> Result<PolicyDocument> {
        let v: Value = serde_json::from_str(text).map_err(|e| malformed(format!("not JSON ({e})")))?;
        let obj = v.as_object().ok_or_else(|| malformed("must be a JSON object"))?;
        match obj.get("Version").and_then(Value::as_str) {
            Some("1") => {}
            _ => return Err(malformed("Version must be \"1\"")),
        }
        let list = match obj.get("Statement") {
            Some(Value::Array(a)) if !a.is_empty() => a.clone(),
            Some(o @ Value::Object(_)) => vec![o.clone()],
            _ => return Err(malformed("Statement must be a non-empty list of statements")),
        };
        let mut statements = Vec::with_capacity(list.len());
        for (i, st) in list.iter().enumerate() {
            let at = |why: String| malformed(format!("Statement {}: {why}", i + 1));
            let st = st.as_object().ok_or_else(|| at("must be an object".into()))?;
            if let Some(k) = st.keys().find(|k| !["Sid", "Effect", "Action", "Resource", "Principal", "Condition"].contains(&k.as_str())) {
                return Err(at(format!("unknown element {k}")));
            }
            let effect = match st.get("Effect").and_then(Value::as_str) {
                Some("Allow") => Effect::Allow,
                Some("Deny") => Effect::Deny,
                _ => return Err(at("Effect must be Allow or Deny".into())),
            };
            let actions = strings(st.get("Action").ok_or_else(|| at("Action is required".into()))?, "Action")?;
            for a in &actions {
                check_action(a).map_err(|e| at(e.message()))?;
            }
            let resources = match st.get("Resource") {
                Some(r) => strings(r, "Resource")?,
                None if kind == DocKind::Secret => vec!["*".into()],
                None => return Err(at("Resource is required".into())),
            };
            let principals = match (st.get("Principal"), kind) {
                (None, DocKind::Identity) => None,
                (Some(_), DocKind::Identity) => return Err(at("Principal belongs in secret policies, not in a user's policy".into())),
                (None, DocKind::Secret) => return Err(at("Principal is required in a secret policy".into())),
                (Some(Value::String(s)), DocKind::Secret) if s == "*" => Some(vec!["*".into()]),
                (Some(p), DocKind::Secret) => {
                    let ram = p.get("RAM").ok_or_else(|| at("Principal must be {\"RAM\": [ARNs]}".into()))?;
                    Some(strings(ram, "Principal.RAM")?)
                }
            };
            let conditions = match st.get("Condition") {
                None => Vec::new(),
                Some(c) => parse_conditions(c).map_err(|e| at(e.message()))?,
            };
            statements.push(Statement { effect, actions, resources, principals, conditions });
        }
        Ok(PolicyDocument { statements })
    }

    pub fn evaluate(&self, req: &RequestContext<'_>) -> Decision {
        let mut decision = Decision::NotApplicable;
        for st in &self.statements {
            if !st.applies(req) {
                continue;
            }
            match st.effect {
                Effect::Deny => return Decision::Deny,
                Effect::Allow => decision = Decision::Allow,
            }
        }
        decision
    }
}

impl Statement {
    fn applies(&self, req: &RequestContext<'_>) -> bool {
        self.actions.iter().any(|a| glob(a, req.action, true))
            && self.resources.iter().any(|r| glob(r, req.resource, false))
            && self.principals.as_ref().is_none_or(|ps| ps.iter().any(|p| glob(p, req.principal, false)))
            && self.conditions.iter().all(|c| c.holds(req))
    }
}

impl Condition {
    fn holds(&self, req: &RequestContext<'_>) -> bool {
        let key = self.key.to_ascii_lowercase();
        let actual: Vec<String> = if key == "acs:sourceip" {
            vec![req.source_ip.to_string()]
        } else if let Some(tag) = self.key.get("kms:tag/".len()..) {
            req.tags.iter().filter(|(k, _)| k == tag).map(|(_, v)| v.clone()).collect()
        } else {
            Vec::new()
        };
        let any = |f: &dyn Fn(&str, &str) -> bool| actual.iter().any(|a| self.values.iter().any(|v| f(a, v)));
        match self.op {
            Op::StringEquals => any(&|a, v| a == v),
            Op::StringNotEquals => !any(&|a, v| a == v),
            Op::StringEqualsIgnoreCase => any(&|a, v| a.eq_ignore_ascii_case(v)),
            Op::StringLike => any(&|a, v| glob(v, a, false)),
            Op::StringNotLike => !any(&|a, v| glob(v, a, false)),
            Op::IpAddress => any(&|a, v| in_range(a, v)),
            Op::NotIpAddress => !any(&|a, v| in_range(a, v)),
            Op::Bool => any(&|a, v| a.eq_ignore_ascii_case(v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ctx<'a>(action: &'a str, resource: &'a str, ip: &'a str, tags: &'a [(String, String)]) -> RequestContext<'a> {
        RequestContext { action, resource, principal: "acs:ram::1:user/alice", source_ip: ip, tags }
    }

    fn doc(statements: &str) -> PolicyDocument {
        PolicyDocument::parse(&format!(r#"{{"Version":"1","Statement":{statements}}}"#), DocKind::Identity).unwrap()
    }

    #[test]
    fn globs_match_stars_and_question_marks() {
        assert!(glob("acs:kms:*:*:secret/app/*", "acs:kms:r:1:secret/app/db", false));
        assert!(!glob("acs:kms:*:*:secret/app/*", "acs:kms:r:1:secret/web/db", false));
        assert!(glob("kms:Get*", "kms:getsecretvalue", true));
        assert!(glob("key-????", "key-abcd", false) && !glob("key-????", "key-abc", false));
        assert!(glob("*", "", false) && glob("a*b*c", "aXXbYYc", false) && !glob("a*b*c", "aXXbYY", false));
    }

    #[test]
    fn deny_wins_and_nothing_is_allowed_by_default() {
        let d = doc(r#"[{"Effect":"Allow","Action":"kms:*","Resource":"acs:kms:*:*:secret/*"},
                {"Effect":"Deny","Action":"kms:GetSecretValue","Resource":"acs:kms:*:*:secret/private/*"}]"#);
        assert_eq!(d.evaluate(&ctx("kms:GetSecretValue", "acs:kms:r:1:secret/app", "1.2.3.4", &[])), Decision::Allow);
        assert_eq!(d.evaluate(&ctx("kms:GetSecretValue", "acs:kms:r:1:secret/private/x", "1.2.3.4", &[])), Decision::Deny);
        assert_eq!(d.evaluate(&ctx("kms:Encrypt", "acs:kms:r:1:key/k", "1.2.3.4", &[])), Decision::NotApplicable);
    }

    #[test]
    fn conditions_on_tags_and_source_ip() {
        let d = doc(r#"[{"Effect":"Allow","Action":"kms:GetSecretValue","Resource":"*",
                 "Condition":{"StringEquals":{"kms:tag/env":"dev"},"IpAddress":{"acs:SourceIp":["10.0.0.0/8","127.0.0.1"]}}}]"#);
        let dev = [("env".to_string(), "dev".to_string())];
        let prod = [("env".to_string(), "prod".to_string())];
        assert_eq!(d.evaluate(&ctx("kms:GetSecretValue", "x", "10.1.2.3", &dev)), Decision::Allow);
        assert_eq!(d.evaluate(&ctx("kms:GetSecretValue", "x", "127.0.0.1", &dev)), Decision::Allow);
        assert_eq!(d.evaluate(&ctx("kms:GetSecretValue", "x", "192.168.0.1", &dev)), Decision::NotApplicable);
        assert_eq!(d.evaluate(&ctx("kms:GetSecretValue", "x", "10.1.2.3", &prod)), Decision::NotApplicable);
        assert_eq!(d.evaluate(&ctx("kms:GetSecretValue", "x", "10.1.2.3", &[])), Decision::NotApplicable);
        assert!(in_range("::ffff:10.0.0.1", "10.0.0.0/8") && in_range("::1", "::1/128") && !in_range("1.2.3.4", "::/0"));
        assert!(in_range("1.2.3.4", "0.0.0.0/0"));
    }

    #[test]
    fn secret_policies_name_principals() {
        let p = PolicyDocument::parse(
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"RAM":["acs:ram::1:user/alice"]},"Action":["kms:GetSecretValue"]}]}"#,
            DocKind::Secret,
        )
        .unwrap();
        let mut c = ctx("kms:GetSecretValue", "acs:kms:r:1:secret/s", "1.1.1.1", &[]);
        assert_eq!(p.evaluate(&c), Decision::Allow);
        c.principal = "acs:ram::1:user/bob";
        assert_eq!(p.evaluate(&c), Decision::NotApplicable);
    }

    #[test]
    fn malformed_documents_are_refused_with_the_reason() {
        for (text, why) in [
            ("not json", "not JSON"),
            (r#"{"Version":"2","Statement":[]}"#, "Version"),
            (r#"{"Version":"1","Statement":[]}"#, "Statement"),
            (r#"{"Version":"1","Statement":[{"Effect":"Maybe","Action":"kms:*","Resource":"*"}]}"#, "Effect"),
            (r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"kms:Teleport","Resource":"*"}]}"#, "matches no kms action"),
            (r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#, "unknown service"),
            (r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"kms:*"}]}"#, "Resource is required"),
            (r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*","Condition":{"Near":{}}}]}"#, "operator"),
            (
                r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"acs:Moon":"x"}}}]}"#,
                "condition key",
            ),
            (
                r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*","Condition":{"IpAddress":{"acs:SourceIp":"300.1.1.1"}}}]}"#,
                "CIDR",
            ),
            (r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*","Principal":"*"}]}"#, "Principal"),
            (r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*","Colour":"red"}]}"#, "unknown element"),
        ] {
            let e = PolicyDocument::parse(text, DocKind::Identity).unwrap_err();
            assert_eq!(e.code(), "MalformedPolicyDocument");
            assert!(e.message().contains(why), "{text}: {}", e.message());
        }
    }

    /// The plain definition: `*` takes any run, `?` any one character.
    fn glob_reference(p: &[char], t: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, _) => t.is_empty(),
            (Some('*'), _) => glob_reference(&p[1..], t) || (!t.is_empty() && glob_reference(p, &t[1..])),
            (Some(c), Some(d)) if *c == '?' || c == d => glob_reference(&p[1..], &t[1..]),
            _ => false,
        }
    }

    proptest! {
        #[test]
        fn globs_agree_with_the_plain_definition_in_ascii_and_beyond(pattern in "[aBé*?]{0,8}", text in "[abBé*?]{0,10}") {
            let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
            prop_assert_eq!(glob(&pattern, &text, false), glob_reference(&p, &t), "case-sensitive {} {}", &pattern, &text);
            let (pl, tl): (Vec<char>, Vec<char>) = (pattern.to_lowercase().chars().collect(), text.to_lowercase().chars().collect());
            prop_assert_eq!(glob(&pattern, &text, true), glob_reference(&pl, &tl), "ignoring case {} {}", &pattern, &text);
        }

        #[test]
        fn parsing_and_matching_never_panic(text in ".{0,200}", pattern in "[a-z*?]{0,12}", s in "[a-z]{0,12}") {
            let _ = PolicyDocument::parse(&text, DocKind::Secret);
            let _ = glob(&pattern, &s, true);
            let _ = in_range(&s, &text);
        }
    }
}
