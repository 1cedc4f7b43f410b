//! Authorization: whether the caller may do an action on a resource, decided from the policies
//! attached to the caller and, for a secret, the secret's own policy. An explicit Deny in any of
//! them wins; otherwise an Allow in any of them allows; otherwise the request is denied.
//!
//! Every service authorizes a request before it acts on it, and acts only with the [`Grant`]
//! that authorization returns, which nothing else can make.

use crate::policy::{Decision, DocKind, PolicyDocument, RequestContext};
use crate::{Ctx, Deps};
use async_trait::async_trait;
use sesame_api::Error;
use sesame_api::error::Result;
use std::sync::Arc;

/// Built-in policies, attachable as `PolicyType=System`.
pub const SYSTEM_POLICIES: &[(&str, &str, &str)] = &[
    ("AdministratorAccess", "Everything", r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#),
    ("AliyunKMSFullAccess", "All KMS actions", r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#),
    (
        "AliyunKMSReadOnlyAccess",
        "Describe and list keys and secrets, without values",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":["kms:Describe*","kms:List*","kms:GetSecretPolicy"],"Resource":"*"}]}"#,
    ),
    (
        "AliyunKMSSecretAdminAccess",
        "Manage secrets",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":["kms:*Secret*","kms:GetRandomPassword","kms:GenerateDataKey","kms:DescribeKey","kms:ListKeys","kms:ListAliases","kms:ListKmsInstances","kms:*Tag*","rds:Describe*"],"Resource":"*"}]}"#,
    ),
    (
        "SesameDmsAccess",
        "What DMS needs to log on with KMS secrets and seal passwords",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":["kms:ListSecrets","kms:GetSecretValue","kms:Encrypt","kms:Decrypt","kms:DescribeKey","kms:CreateKey","kms:CreateAlias"],"Resource":"*"}]}"#,
    ),
];

pub fn system_policy(name: &str) -> Option<&'static (&'static str, &'static str, &'static str)> {
    SYSTEM_POLICIES.iter().find(|(n, _, _)| *n == name)
}

/// A resource as authorization sees it.
#[derive(Debug, Clone, Default)]
pub struct Resource {
    pub arn: String,
    pub tags: Vec<(String, String)>,
    /// The secret's policy, parsed once when the secret is read (`cache::SecretEntry`).
    pub policy: Option<Arc<PolicyDocument>>,
}

impl Resource {
    pub fn arn(arn: String) -> Resource {
        Resource { arn, ..Default::default() }
    }
}

/// Proof that the caller may do what it asked: services act only with one, and only
/// [`Authorizer`] makes one.
#[derive(Debug)]
pub struct Grant {
    _private: (),
}

/// What another crate's service (DMS) needs: authorization of an action on an ARN.
#[async_trait]
pub trait Authorize: Send + Sync {
    async fn authorize(&self, ctx: &Ctx, action: &str, arn: &str) -> Result<Grant>;
    /// `acs:{product}:{region}:{account}:{rest}`.
    fn arn(&self, product: &str, rest: &str) -> String;
}

#[derive(Clone)]
pub struct Authorizer {
    deps: Deps,
}

impl Authorizer {
    pub fn new(deps: Deps) -> Self {
        Authorizer { deps }
    }

    fn principal(&self, user: &str) -> String {
        let rest: &[&str] = if user == crate::identity::ADMIN_USER { &["root"] } else { &["user/", user] };
        self.deps.realm.arn_in("ram", rest)
    }

    /// A user's policies, parsed, through the cache.
    async fn identity_policies(&self, user: &str) -> Result<std::sync::Arc<Vec<PolicyDocument>>> {
        self.deps.caches.policies.get_or_load(user, self.load_identity_policies(user)).await
    }

    async fn load_identity_policies(&self, user: &str) -> Result<Vec<PolicyDocument>> {
        let mut docs = Vec::new();
        for (kind, name) in self.deps.store.user_policies(user).await? {
            let text = if kind == "System" {
                system_policy(&name).map(|(_, _, d)| d.to_string())
            } else {
                self.deps.store.get_policy(&name).await?.map(|p| p.document)
            };
            // A policy deleted under an attachment grants nothing.
            if let Some(text) = text {
                docs.push(
                    PolicyDocument::parse(&text, DocKind::Identity).map_err(|e| Error::internal(format!("stored policy {name}: {e}")))?,
                );
            }
        }
        Ok(docs)
    }

    /// Allows all of `needs` or fails with the first that is not allowed.
    pub async fn check_all(&self, ctx: &Ctx, needs: Vec<(&str, Resource)>) -> Result<Grant> {
        let user = &ctx.caller.user;
        let principal = self.principal(user);
        let identity = self.identity_policies(user).await?;
        for (action, resource) in needs {
            let req = RequestContext {
                action,
                resource: &resource.arn,
                principal: &principal,
                source_ip: &ctx.caller.source_ip,
                tags: &resource.tags,
            };
            let mut decisions: Vec<Decision> = identity.iter().map(|d| d.evaluate(&req)).collect();
            if let Some(policy) = &resource.policy {
                decisions.push(policy.evaluate(&req));
            }
            let allowed = !decisions.contains(&Decision::Deny) && decisions.contains(&Decision::Allow);
            if !allowed {
                return Err(Error::NoPermission { action: action.to_string(), resource: resource.arn });
            }
        }
        Ok(Grant { _private: () })
    }

    pub async fn check(&self, ctx: &Ctx, action: &str, resource: Resource) -> Result<Grant> {
        self.check_all(ctx, vec![(action, resource)]).await
    }

    pub fn realm_arn(&self, product: &str, rest: &str) -> String {
        self.deps.realm.arn_in(product, &[rest])
    }
}

#[async_trait]
impl Authorize for Authorizer {
    async fn authorize(&self, ctx: &Ctx, action: &str, arn: &str) -> Result<Grant> {
        self.check(ctx, action, Resource::arn(arn.to_string())).await
    }

    fn arn(&self, product: &str, rest: &str) -> String {
        self.realm_arn(product, rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_policies_parse() {
        for (name, _, doc) in SYSTEM_POLICIES {
            assert!(PolicyDocument::parse(doc, DocKind::Identity).is_ok(), "{name}");
        }
    }
}
