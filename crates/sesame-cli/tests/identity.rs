//! Users, access keys and policies through the real server: a policy matrix driven by the
//! official Python SDK, RAM's error codes, and the CLI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::{Value, json};
use sesame_api::ram::{ACTIONTRAIL_API_VERSION, RAM_API_VERSION};
use sesame_client::{Client, ClientError, SignatureVersion};

async fn ram(c: &Client, action: &str, params: &[(&str, &str)]) -> Result<Value, ClientError> {
    c.call_version(RAM_API_VERSION, action, params).await
}

/// A user with one access key and, when given, one custom policy: `(access key id, secret)`.
async fn user_with(c: &Client, name: &str, policy: Option<Value>) -> (String, String) {
    ram(c, "CreateUser", &[("UserName", name)]).await.unwrap();
    if let Some(doc) = policy {
        let pname = format!("{name}-policy");
        ram(c, "CreatePolicy", &[("PolicyName", &pname), ("PolicyDocument", &doc.to_string())]).await.unwrap();
        ram(c, "AttachPolicyToUser", &[("PolicyType", "Custom"), ("PolicyName", &pname), ("UserName", name)]).await.unwrap();
    }
    let k = ram(c, "CreateAccessKey", &[("UserName", name)]).await.unwrap();
    (k["AccessKey"]["AccessKeyId"].as_str().unwrap().to_string(), k["AccessKey"]["AccessKeySecret"].as_str().unwrap().to_string())
}

fn allow(actions: &[&str], resource: &str) -> Value {
    json!({"Effect": "Allow", "Action": actions, "Resource": resource})
}

fn doc(statements: Vec<Value>) -> Value {
    json!({"Version": "1", "Statement": statements})
}

#[tokio::test]
async fn a_policy_matrix_through_the_official_sdk() {
    let server = common::TestServer::start(&[]);
    let admin = server.client();
    for (name, env) in [("app/db", "dev"), ("app/prod", "prod"), ("app/private", "dev"), ("shared/report", "dev")] {
        let tags = json!([{"TagKey": "env", "TagValue": env}]).to_string();
        admin.call("CreateSecret", &[("SecretName", name), ("VersionId", "v1"), ("SecretData", "value"), ("Tags", &tags)]).await.unwrap();
    }
    let key = admin.call("DescribeSecret", &[("SecretName", "app/db")]).await.unwrap()["EncryptionKeyId"].as_str().unwrap().to_string();

    let alice = user_with(
        &admin,
        "alice",
        Some(doc(vec![
            json!({"Effect": "Allow", "Action": "kms:GetSecretValue", "Resource": "acs:kms:*:*:secret/app/*",
                   "Condition": {"StringEquals": {"kms:tag/env": "dev"}}}),
            json!({"Effect": "Deny", "Action": "kms:GetSecretValue", "Resource": "acs:kms:*:*:secret/app/private"}),
        ])),
    )
    .await;
    let bob = user_with(&admin, "bob", None).await;
    let carol = user_with(&admin, "carol", None).await;
    let account = server.account_id().await;
    let secret_policy = json!({"Version": "1", "Statement": [
        {"Effect": "Allow", "Principal": {"RAM": [format!("acs:ram::{account}:root")]}, "Action": ["kms:*"], "Resource": ["*"]},
        {"Effect": "Allow", "Principal": {"RAM": [format!("acs:ram::{account}:user/carol")]}, "Action": ["kms:GetSecretValue"], "Resource": ["*"]}]});
    admin.call("SetSecretPolicy", &[("SecretName", "shared/report"), ("Policy", &secret_policy.to_string())]).await.unwrap();
    let dave = user_with(&admin, "dave", Some(doc(vec![allow(&["kms:CreateSecret"], "acs:kms:*:*:secret/dave/*")]))).await;
    let erin = user_with(
        &admin,
        "erin",
        Some(doc(vec![
            allow(&["kms:CreateSecret"], "acs:kms:*:*:secret/erin/*"),
            allow(&["kms:GenerateDataKey"], &format!("acs:kms:*:*:key/{key}")),
        ])),
    )
    .await;
    let frank = user_with(
        &admin,
        "frank",
        Some(doc(vec![json!({"Effect": "Allow", "Action": "kms:GetSecretValue", "Resource": "*", "Condition": {"IpAddress": {"acs:SourceIp": "10.0.0.0/8"}}})])),
    )
    .await;
    let grace = user_with(
        &admin,
        "grace",
        Some(doc(vec![json!({"Effect": "Allow", "Action": "kms:GetSecretValue", "Resource": "*", "Condition": {"IpAddress": {"acs:SourceIp": "127.0.0.0/8"}}})])),
    )
    .await;

    let denied = "Forbidden.NoPermission";
    let case = |name: &str, who: &(String, String), call: &str, secret: &str, expect: &str| json!({"name": name, "ak": who.0, "sk": who.1, "call": call, "secret": secret, "expect": expect});
    let cases = json!([
        case("allowed by an identity policy", &alice, "get", "app/db", "ok"),
        case("a tag condition that does not hold denies", &alice, "get", "app/prod", denied),
        case("an explicit deny wins over an allow", &alice, "get", "app/private", denied),
        case("nothing is allowed by default", &bob, "get", "app/db", denied),
        case("allowed by the secret policy alone", &carol, "get", "shared/report", "ok"),
        case("a secret policy allows only its own secret", &carol, "get", "app/db", denied),
        case("CreateSecret without GenerateDataKey on the key is denied", &dave, "create", "dave/new", denied),
        case("CreateSecret with GenerateDataKey on the key is allowed", &erin, "create", "erin/new", "ok"),
        case("CreateSecret outside the allowed names is denied", &erin, "create", "dave/other", denied),
        case("a source-IP condition that does not match denies", &frank, "get", "app/db", denied),
        case("a source-IP condition that matches allows", &grace, "get", "app/db", "ok"),
    ]);
    let out = common::run_python(&server, "sdk_policies.py", &[("SESAME_CASES", &cases.to_string())]);
    assert!(out.contains("ALL PASSED"), "{out}");
    assert_eq!(out.matches("PASS ").count(), cases.as_array().unwrap().len(), "{out}");

    // Denied requests changed nothing; every refusal is in the audit trail with its user.
    for name in ["dave/new", "dave/other"] {
        let e = admin.call("DescribeSecret", &[("SecretName", name)]).await.unwrap_err();
        assert_eq!(e.code(), Some("Forbidden.ResourceNotFound"), "{name} was not created");
    }
    assert_eq!(
        admin.call("GetSecretValue", &[("SecretName", "erin/new")]).await.unwrap()["SecretData"],
        "made by CreateSecret with GenerateDataKey on the key is allowed"
    );
    let events = admin
        .call_version(
            ACTIONTRAIL_API_VERSION,
            "LookupEvents",
            &[
                ("LookupAttribute.1.Key", "UserName"),
                ("LookupAttribute.1.Value", "alice"),
                ("LookupAttribute.2.Key", "Result"),
                ("LookupAttribute.2.Value", "Failure"),
            ],
        )
        .await
        .unwrap();
    let failures = events["Events"].as_array().unwrap();
    assert_eq!(failures.len(), 2, "{events}");
    for e in failures {
        assert_eq!((e["errorCode"].as_str(), e["eventName"].as_str()), (Some(denied), Some("GetSecretValue")), "{e}");
        assert_eq!(e["userIdentity"]["type"], "ram-user");
    }
}

#[tokio::test]
async fn identities_follow_rams_rules() {
    let server = common::TestServer::start(&["--plain-http"]);
    let admin = server.client();
    let code = |r: Result<Value, ClientError>| match r {
        Err(ClientError::Api { status, code, .. }) => (status, code),
        other => panic!("expected a refusal, got {other:?}"),
    };
    let (id, secret) = user_with(&admin, "hank", None).await;
    assert_eq!(code(ram(&admin, "CreateUser", &[("UserName", "hank")]).await), (409, "EntityAlreadyExists.User".into()));
    assert_eq!(code(ram(&admin, "GetUser", &[("UserName", "nobody")]).await), (404, "EntityNotExist.User".into()));
    let bad = json!({"Version": "1", "Statement": [{"Effect": "Allow", "Action": "kms:Teleport", "Resource": "*"}]}).to_string();
    let (status, c) = code(ram(&admin, "CreatePolicy", &[("PolicyName", "bad"), ("PolicyDocument", &bad)]).await);
    assert_eq!((status, c.as_str()), (400, "MalformedPolicyDocument"));
    assert_eq!(code(ram(&admin, "GetPolicy", &[("PolicyName", "bad")]).await).0, 404, "a refused policy is not kept");
    assert_eq!(
        code(ram(&admin, "AttachPolicyToUser", &[("PolicyType", "Custom"), ("PolicyName", "missing"), ("UserName", "hank")]).await),
        (404, "EntityNotExist.Policy".into())
    );
    // The secret is shown once: listing shows only ids and statuses.
    let listed = ram(&admin, "ListAccessKeys", &[("UserName", "hank")]).await.unwrap();
    assert_eq!(listed["AccessKeys"]["AccessKey"][0]["AccessKeyId"], id.as_str());
    assert!(!listed.to_string().contains(&secret));

    // A user with no policy is refused, even reading its own keys; a system policy lets it.
    let hank = server.client_with(&id, &secret, SignatureVersion::V3);
    assert_eq!(code(hank.call("ListKeys", &[]).await), (403, "Forbidden.NoPermission".into()));
    ram(&admin, "AttachPolicyToUser", &[("PolicyType", "System"), ("PolicyName", "AliyunKMSReadOnlyAccess"), ("UserName", "hank")])
        .await
        .unwrap();
    hank.call("ListKeys", &[]).await.unwrap();
    assert_eq!(code(hank.call("CreateKey", &[]).await), (403, "Forbidden.NoPermission".into()), "read-only means read-only");
    assert_eq!(code(ram(&hank, "CreateUser", &[("UserName", "mallory")]).await), (403, "Forbidden.NoPermission".into()));

    // A disabled key is refused; enabled again it works; deleted it is unknown.
    ram(&admin, "UpdateAccessKey", &[("UserName", "hank"), ("UserAccessKeyId", &id), ("Status", "Inactive")]).await.unwrap();
    assert_eq!(code(hank.call("ListKeys", &[]).await).1, "Forbidden.AccessKey");
    ram(&admin, "UpdateAccessKey", &[("UserName", "hank"), ("UserAccessKeyId", &id), ("Status", "Active")]).await.unwrap();
    hank.call("ListKeys", &[]).await.unwrap();
    assert_eq!(code(ram(&admin, "DeleteUser", &[("UserName", "hank")]).await).1, "DeleteConflict.User.AccessKey");
    ram(&admin, "DeleteAccessKey", &[("UserName", "hank"), ("UserAccessKeyId", &id)]).await.unwrap();
    assert_eq!(code(hank.call("ListKeys", &[]).await).1, "InvalidAccessKeyId.NotFound");
    assert_eq!(code(ram(&admin, "DeleteUser", &[("UserName", "hank")]).await).1, "DeleteConflict.User.Policy");
    ram(&admin, "DetachPolicyFromUser", &[("PolicyType", "System"), ("PolicyName", "AliyunKMSReadOnlyAccess"), ("UserName", "hank")])
        .await
        .unwrap();
    ram(&admin, "DeleteUser", &[("UserName", "hank")]).await.unwrap();
    assert_eq!(code(ram(&admin, "DeleteUser", &[("UserName", "admin")]).await).1, "DeleteConflict.User.BuiltIn");

    // A secret policy that does not parse is refused, and the old one stays.
    admin.call("CreateSecret", &[("SecretName", "s"), ("VersionId", "v1"), ("SecretData", "x")]).await.unwrap();
    let before = admin.call("GetSecretPolicy", &[("SecretName", "s")]).await.unwrap()["Policy"].clone();
    let e = admin
        .call("SetSecretPolicy", &[("SecretName", "s"), ("Policy", r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"kms:*"}]}"#)])
        .await;
    assert_eq!(code(e).1, "MalformedPolicyDocument", "a secret policy names its principals");
    assert_eq!(admin.call("GetSecretPolicy", &[("SecretName", "s")]).await.unwrap()["Policy"], before);
}

#[test]
fn the_cli_manages_users_keys_and_policies() {
    let server = common::TestServer::start(&["--plain-http"]);
    let sesame = |args: &[&str]| {
        let out = server.cli(args);
        (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    assert_eq!(sesame(&["user", "create", "ivy"]).0, Some(0));
    let doc = server.dir.join("p.json");
    std::fs::write(&doc, r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"kms:List*","Resource":"*"}]}"#).unwrap();
    assert_eq!(sesame(&["policy", "create", "lister", "--document", doc.to_str().unwrap()]).0, Some(0));
    assert_eq!(sesame(&["policy", "attach", "lister", "--user", "ivy"]).0, Some(0));
    let (code, out, _) = sesame(&["access-key", "create", "--user", "ivy"]);
    assert_eq!(code, Some(0));
    let key: Value = serde_json::from_str(&out).unwrap();
    let (id, secret) = (key["AccessKey"]["AccessKeyId"].as_str().unwrap(), key["AccessKey"]["AccessKeySecret"].as_str().unwrap());
    let as_ivy = |args: &[&str]| server.cli_with(args, &[("SESAME_ACCESS_KEY_ID", id), ("SESAME_ACCESS_KEY_SECRET", secret)], "");
    assert!(as_ivy(&["key", "list"]).status.success());
    assert_eq!(as_ivy(&["key", "create"]).status.code(), Some(4), "a refusal exits 4");
    let (code, out, _) = sesame(&["user", "policies", "ivy", "--output", "table"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("lister") && out.contains("Custom"), "{out}");
    assert_eq!(sesame(&["policy", "detach", "lister", "--user", "ivy"]).0, Some(0));
    assert_eq!(as_ivy(&["key", "list"]).status.code(), Some(4));
    let (code, _, err) = sesame(&["policy", "delete", "nope"]);
    assert_eq!(code, Some(3), "{err}");
}
