//! Access keys: created with a random secret that is shown once and stored sealed by the root
//! key; looked up by the gateway to check request signatures.

use crate::audit::AuditTrail;
use crate::authz::{Authorizer, Grant, Resource, SYSTEM_POLICIES, system_policy};
use crate::model::{AccessKey, CustomPolicy, User};
use crate::policy::{DocKind, PolicyDocument};
use crate::store::StoreError;
use crate::{Ctx, Deps, to_value};
use serde_json::Value;
use sesame_api::Error;
use sesame_api::error::Result;
use sesame_api::kms::Sensitive;
use sesame_api::ram::*;
use sesame_crypto::random;
use sesame_crypto::sign::HmacKeys;
use std::fmt;
use std::sync::Arc;
use zeroize::Zeroize;

pub const ADMIN_USER: &str = "admin";
/// RAM's limit of access keys per user.
pub const MAX_ACCESS_KEYS: usize = 2;

/// An access key secret in memory. Never printed; zeroed on drop.
pub struct SecretKey(String);

impl SecretKey {
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// A newly created access key, the only time its secret is available.
#[derive(Debug)]
pub struct NewAccessKey {
    pub id: String,
    pub user: String,
    pub secret: SecretKey,
}

/// What the gateway needs to check a signature.
#[derive(Debug)]
pub struct Credential {
    pub id: Arc<str>,
    pub user: Arc<str>,
    pub enabled: bool,
    pub secret: SecretKey,
    /// The secret's HMAC keys, prepared once for every request it signs.
    pub keys: HmacKeys,
}

impl Credential {
    fn new(id: String, user: String, enabled: bool, secret: SecretKey) -> Credential {
        let keys = HmacKeys::new(secret.expose_secret().as_bytes());
        Credential { id: id.into(), user: user.into(), enabled, secret, keys }
    }
}

pub struct IdentityService {
    deps: Deps,
    authz: Authorizer,
    audit: Arc<AuditTrail>,
}

fn no_user(name: &str) -> Error {
    Error::EntityNotExist { code: "EntityNotExist.User", what: format!("user {name}") }
}

fn no_policy(name: &str) -> Error {
    Error::EntityNotExist { code: "EntityNotExist.Policy", what: format!("policy {name}") }
}

fn user_info(u: &User) -> UserInfo {
    UserInfo {
        user_id: sesame_crypto::sha256_hex(u.name.as_bytes())[..16].to_string(),
        user_name: u.name.clone(),
        display_name: u.display_name.clone(),
        comments: u.comments.clone(),
        create_date: u.created.to_string(),
    }
}

fn key_info(k: &AccessKey) -> AccessKeyInfo {
    AccessKeyInfo {
        access_key_id: k.id.clone(),
        status: if k.enabled { "Active" } else { "Inactive" }.into(),
        create_date: k.created.to_string(),
    }
}

fn seal_context(id: &str) -> Vec<u8> {
    format!("sesame/access-key/{id}").into_bytes()
}

impl IdentityService {
    pub fn new(deps: Deps, audit: Arc<AuditTrail>) -> Self {
        IdentityService { authz: Authorizer::new(deps.clone()), deps, audit }
    }

    /// Creates the first admin access key when there is none; the admin holds
    /// AdministratorAccess.
    pub(crate) async fn bootstrap_admin(&self) -> Result<Option<NewAccessKey>> {
        self.ensure_user(ADMIN_USER, "AdministratorAccess").await?;
        if self.deps.store.count_access_keys().await? > 0 {
            return Ok(None);
        }
        self.create_access_key(ADMIN_USER).await.map(Some)
    }

    /// A built-in user with its system policy, made on first use.
    async fn ensure_user(&self, name: &str, policy: &str) -> Result<()> {
        if self.deps.store.get_user(name).await?.is_none() {
            let u = User { name: name.into(), display_name: name.into(), comments: "built in".into(), created: self.deps.clock.now() };
            match self.deps.store.insert_user(&u).await {
                Ok(()) | Err(StoreError::Duplicate) => {}
                Err(e) => return Err(e.into()),
            }
            self.deps.store.attach_policy(name, "System", policy).await?;
        }
        Ok(())
    }

    pub async fn execute(&self, ctx: &Ctx, req: RamRequest) -> Result<Value> {
        let grant = self.authorize(ctx, &req).await?;
        let changes = !matches!(
            req,
            RamRequest::GetUser { .. }
                | RamRequest::ListUsers
                | RamRequest::ListAccessKeys { .. }
                | RamRequest::GetPolicy { .. }
                | RamRequest::ListPolicies { .. }
                | RamRequest::ListPoliciesForUser { .. }
                | RamRequest::LookupEvents(_)
                | RamRequest::VerifyEvents
        );
        let result = self.run(ctx, req, grant).await;
        if changes {
            self.deps.caches.identities_changed();
        }
        result
    }

    async fn authorize(&self, ctx: &Ctx, req: &RamRequest) -> Result<Grant> {
        let ram = |rest: String| Resource::arn(self.authz.realm_arn("ram", &rest));
        let resource = match req {
            RamRequest::CreateUser { name, .. } | RamRequest::GetUser { name } | RamRequest::DeleteUser { name } => {
                ram(format!("user/{name}"))
            }
            RamRequest::ListUsers => ram("user/*".into()),
            RamRequest::CreateAccessKey { user }
            | RamRequest::ListAccessKeys { user }
            | RamRequest::UpdateAccessKey { user, .. }
            | RamRequest::DeleteAccessKey { user, .. } => ram(format!("user/{}", user.as_deref().unwrap_or(&ctx.caller.user))),
            RamRequest::CreatePolicy { name, .. } | RamRequest::GetPolicy { name, .. } | RamRequest::DeletePolicy { name } => {
                ram(format!("policy/{name}"))
            }
            RamRequest::ListPolicies { .. } => ram("policy/*".into()),
            RamRequest::AttachPolicyToUser { user, .. }
            | RamRequest::DetachPolicyFromUser { user, .. }
            | RamRequest::ListPoliciesForUser { user } => ram(format!("user/{user}")),
            RamRequest::LookupEvents(_) | RamRequest::VerifyEvents => Resource::arn(self.authz.realm_arn("actiontrail", "*")),
        };
        self.authz.check(ctx, req.action(), resource).await
    }

    async fn run(&self, ctx: &Ctx, req: RamRequest, _grant: Grant) -> Result<Value> {
        let store = &self.deps.store;
        let caller_or = |u: Option<String>| u.unwrap_or_else(|| ctx.caller.user.to_string());
        match req {
            RamRequest::CreateUser { name, display_name, comments } => {
                let u = User { name: name.clone(), display_name, comments, created: self.deps.clock.now() };
                match store.insert_user(&u).await {
                    Err(StoreError::Duplicate) => {
                        Err(Error::EntityAlreadyExists { code: "EntityAlreadyExists.User", what: format!("user {name}") })
                    }
                    other => {
                        other?;
                        to_value(UserResponse { user: user_info(&u) })
                    }
                }
            }
            RamRequest::GetUser { name } => to_value(UserResponse { user: user_info(&self.user(&name).await?) }),
            RamRequest::ListUsers => {
                let users = store.list_users().await?;
                to_value(ListUsersResponse { users: UserList { user: users.iter().map(user_info).collect() }, is_truncated: false })
            }
            RamRequest::DeleteUser { name } => {
                self.user(&name).await?;
                if name == ADMIN_USER || name == crate::SERVICE_USER_DMS {
                    return Err(Error::DeleteConflict {
                        code: "DeleteConflict.User.BuiltIn",
                        what: format!("user {name}"),
                        reason: "it is built in".into(),
                    });
                }
                if !store.list_access_keys(&name).await?.is_empty() {
                    return Err(Error::DeleteConflict {
                        code: "DeleteConflict.User.AccessKey",
                        what: format!("user {name}"),
                        reason: "it still has access keys; delete them first".into(),
                    });
                }
                if !store.user_policies(&name).await?.is_empty() {
                    return Err(Error::DeleteConflict {
                        code: "DeleteConflict.User.Policy",
                        what: format!("user {name}"),
                        reason: "policies are still attached; detach them first".into(),
                    });
                }
                store.delete_user(&name).await?;
                to_value(crate::keys::empty())
            }
            RamRequest::CreateAccessKey { user } => {
                let user = caller_or(user);
                self.user(&user).await?;
                if store.list_access_keys(&user).await?.len() >= MAX_ACCESS_KEYS {
                    return Err(Error::LimitExceeded(format!("user {user} has {MAX_ACCESS_KEYS} access keys already")));
                }
                let k = self.create_access_key(&user).await?;
                to_value(CreateAccessKeyResponse {
                    access_key: NewAccessKeyInfo {
                        access_key_id: k.id,
                        access_key_secret: Sensitive::new(k.secret.expose_secret().to_string()),
                        status: "Active".into(),
                        create_date: self.deps.clock.now().to_string(),
                    },
                })
            }
            RamRequest::ListAccessKeys { user } => {
                let user = caller_or(user);
                self.user(&user).await?;
                let keys = store.list_access_keys(&user).await?;
                to_value(ListAccessKeysResponse { access_keys: AccessKeyList { access_key: keys.iter().map(key_info).collect() } })
            }
            RamRequest::UpdateAccessKey { user, id, active } => {
                self.key_of(&caller_or(user), &id).await?;
                store.set_access_key_enabled(&id, active).await?;
                to_value(crate::keys::empty())
            }
            RamRequest::DeleteAccessKey { user, id } => {
                self.key_of(&caller_or(user), &id).await?;
                store.delete_access_key(&id).await?;
                to_value(crate::keys::empty())
            }
            RamRequest::CreatePolicy { name, document, description } => {
                PolicyDocument::parse(&document, DocKind::Identity)?;
                if system_policy(&name).is_some() {
                    return Err(Error::EntityAlreadyExists { code: "EntityAlreadyExists.Policy", what: format!("system policy {name}") });
                }
                let p = CustomPolicy { name: name.clone(), document, description, created: self.deps.clock.now() };
                match store.insert_policy(&p).await {
                    Err(StoreError::Duplicate) => {
                        Err(Error::EntityAlreadyExists { code: "EntityAlreadyExists.Policy", what: format!("policy {name}") })
                    }
                    other => {
                        other?;
                        to_value(PolicyResponse {
                            policy: self.policy_info("Custom", &p.name, &p.description, p.created.to_string()).await?,
                        })
                    }
                }
            }
            RamRequest::GetPolicy { name, policy_type } => {
                let (info, document) = match (system_policy(&name), policy_type) {
                    (Some((n, d, doc)), None | Some(PolicyType::System)) => {
                        (self.policy_info("System", n, d, String::new()).await?, doc.to_string())
                    }
                    _ => {
                        let p = store.get_policy(&name).await?.ok_or_else(|| no_policy(&name))?;
                        (self.policy_info("Custom", &p.name, &p.description, p.created.to_string()).await?, p.document)
                    }
                };
                to_value(GetPolicyResponse {
                    policy: info,
                    default_policy_version: PolicyVersion { policy_document: document, version_id: "v1".into(), is_default_version: true },
                })
            }
            RamRequest::ListPolicies { policy_type } => {
                let mut policy = Vec::new();
                if policy_type != Some(PolicyType::Custom) {
                    for (n, d, _) in SYSTEM_POLICIES {
                        policy.push(self.policy_info("System", n, d, String::new()).await?);
                    }
                }
                if policy_type != Some(PolicyType::System) {
                    for p in store.list_policies().await? {
                        policy.push(self.policy_info("Custom", &p.name, &p.description, p.created.to_string()).await?);
                    }
                }
                to_value(ListPoliciesResponse { policies: PolicyList { policy }, is_truncated: false })
            }
            RamRequest::DeletePolicy { name } => {
                store.get_policy(&name).await?.ok_or_else(|| no_policy(&name))?;
                let users = store.policy_users("Custom", &name).await?;
                if !users.is_empty() {
                    return Err(Error::DeleteConflict {
                        code: "DeleteConflict.Policy.User",
                        what: format!("policy {name}"),
                        reason: format!("it is attached to {}; detach it first", users.join(", ")),
                    });
                }
                store.delete_policy(&name).await?;
                to_value(crate::keys::empty())
            }
            RamRequest::AttachPolicyToUser { policy_type, policy, user } => {
                self.user(&user).await?;
                self.policy_exists(policy_type, &policy).await?;
                if !store.attach_policy(&user, policy_type.as_str(), &policy).await? {
                    return Err(Error::EntityAlreadyExists {
                        code: "EntityAlreadyExists.User.Policy",
                        what: format!("attachment of {policy} to {user}"),
                    });
                }
                to_value(crate::keys::empty())
            }
            RamRequest::DetachPolicyFromUser { policy_type, policy, user } => {
                self.user(&user).await?;
                if !store.detach_policy(&user, policy_type.as_str(), &policy).await? {
                    return Err(Error::EntityNotExist {
                        code: "EntityNotExist.User.Policy",
                        what: format!("attachment of {policy} to {user}"),
                    });
                }
                to_value(crate::keys::empty())
            }
            RamRequest::ListPoliciesForUser { user } => {
                self.user(&user).await?;
                let mut policy = Vec::new();
                for (kind, name) in store.user_policies(&user).await? {
                    let (description, created) = match kind.as_str() {
                        "System" => (system_policy(&name).map(|p| p.1.to_string()).unwrap_or_default(), String::new()),
                        _ => match store.get_policy(&name).await? {
                            Some(p) => (p.description, p.created.to_string()),
                            None => continue,
                        },
                    };
                    policy.push(self.policy_info(&kind, &name, &description, created).await?);
                }
                to_value(ListPoliciesResponse { policies: PolicyList { policy }, is_truncated: false })
            }
            RamRequest::LookupEvents(q) => {
                let (events, next_token) = self.audit.lookup(&q).await?;
                to_value(LookupEventsResponse { events, next_token })
            }
            RamRequest::VerifyEvents => to_value(self.audit.verify().await?),
        }
    }

    async fn user(&self, name: &str) -> Result<User> {
        self.deps.store.get_user(name).await?.ok_or_else(|| no_user(name))
    }

    async fn key_of(&self, user: &str, id: &str) -> Result<AccessKey> {
        match self.deps.store.get_access_key(id).await? {
            Some(k) if k.user == user => Ok(k),
            _ => Err(Error::EntityNotExist { code: "EntityNotExist.User.AccessKey", what: format!("access key {id} of user {user}") }),
        }
    }

    async fn policy_exists(&self, t: PolicyType, name: &str) -> Result<()> {
        let exists = match t {
            PolicyType::System => system_policy(name).is_some(),
            PolicyType::Custom => self.deps.store.get_policy(name).await?.is_some(),
        };
        if exists { Ok(()) } else { Err(no_policy(name)) }
    }

    async fn policy_info(&self, kind: &str, name: &str, description: &str, created: String) -> Result<PolicyInfo> {
        Ok(PolicyInfo {
            policy_name: name.into(),
            policy_type: kind.into(),
            description: description.into(),
            default_version: "v1".into(),
            create_date: created,
            attachment_count: self.deps.store.policy_users(kind, name).await?.len() as i64,
        })
    }

    pub async fn create_access_key(&self, user: &str) -> Result<NewAccessKey> {
        let id = format!("LTAI{}", random::alnum(20).map_err(Error::internal)?);
        let secret = SecretKey(random::alnum(30).map_err(Error::internal)?);
        let sealed_secret = self.deps.root.wrap(&seal_context(&id), secret.expose_secret().as_bytes()).map_err(Error::internal)?;
        let row = AccessKey { id: id.clone(), user: user.to_string(), sealed_secret, enabled: true, created: self.deps.clock.now() };
        self.deps.store.insert_access_key(&row).await?;
        Ok(NewAccessKey { id, user: user.to_string(), secret })
    }

    /// The access key of a service user (DMS) that runs in this process and calls the API like
    /// any client: made once, its id kept in the store's metadata, its secret sealed like any.
    pub async fn service_key(&self, user: &str, policy: &str) -> Result<Arc<Credential>> {
        self.ensure_user(user, policy).await?;
        let meta = format!("service-key/{user}");
        if let Some(id) = self.deps.store.meta_get(&meta).await?
            && let Some(c) = self.credential(&id).await?
        {
            return Ok(c);
        }
        let new = self.create_access_key(user).await?;
        self.deps.store.meta_set(&meta, &new.id).await?;
        Ok(Arc::new(Credential::new(new.id, new.user, true, new.secret)))
    }

    /// The credential behind an access key id, or `None` when there is no such key. Served
    /// from the cache when it can be (`cache.rs`).
    pub async fn credential(&self, id: &str) -> Result<Option<Arc<Credential>>> {
        let find = async {
            let Some(row) = self.deps.store.get_access_key(id).await? else { return Ok(None) };
            let bytes = self.deps.root.unwrap_bytes(&seal_context(&row.id), &row.sealed_secret).map_err(Error::internal)?;
            let secret = String::from_utf8(bytes).map_err(|_| Error::internal("access key secret is not UTF-8"))?;
            Ok(Some(Credential::new(row.id, row.user, row.enabled, SecretKey(secret))))
        };
        self.deps.caches.credentials.get_or_find(id, find).await
    }
}
