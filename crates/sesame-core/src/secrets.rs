//! The secrets manager: generic secrets with versions, stages, tags, policies and deletion
//! windows. Every version's value is sealed with its own data key, which the secret's CMK
//! seals in turn; only metadata is stored in clear.

use crate::authz::{Grant, Resource};
use crate::cache::{Caches, Pair, SealedEntry, SecretEntry};
use crate::dbs::DbService;
use crate::engine::EngineFactory;
use crate::keys::KeyService;
use crate::model::RotationChange;
use crate::model::{Key, SealedValue, Secret, SecretVersion};
use crate::rotation::{account_value, rds_config, rotation_fields};
use crate::store::StoreError;
use crate::{Ctx, Deps, to_value};
use secrecy::SecretString;
use serde_json::{Map, Value};
use sesame_api::Error;
use sesame_api::error::Result;
use sesame_api::kms::{EncryptionContext, KeyRef, Sensitive};
use sesame_api::render::Reply;
use sesame_api::secrets::*;
use sesame_crypto::{KeyMaterial, aead, random};
use std::sync::Arc;
use zeroize::Zeroize;

/// Versions kept per secret; past it the oldest versions without a stage are dropped.
pub const MAX_SECRET_VERSIONS: usize = 100;
const UPDATE_ATTEMPTS: usize = 5;

pub struct SecretService {
    pub(crate) deps: Deps,
    pub(crate) keys: KeyService,
    pub(crate) dbs: DbService,
    /// Who this process is when it holds a rotation lease.
    pub(crate) worker_id: String,
}

/// What a version's data key and value are bound to.
fn seal_context(name: &str, version_id: &str) -> EncryptionContext {
    EncryptionContext::of(&[("sesame:secret", name), ("sesame:version", version_id)])
}

/// Caches a version's sealed value (it never changes once written) for the reads to come.
pub(crate) fn cache_sealed(caches: &Caches, name: &str, version_id: &str, sealed: SealedValue) -> Arc<SealedEntry> {
    caches.sealed.put((name.to_string(), version_id.to_string()), SealedEntry::new(sealed, seal_context(name, version_id)))
}

fn not_found(name: &str) -> Error {
    Error::ResourceNotFound(format!("secret {name}"))
}

/// A value GetSecretValue read: the secret as cached, the version chosen (its index in the
/// entry's versions, which never change), and its value opened. Its answer borrows from it.
struct ValueRead {
    entry: Arc<SecretEntry>,
    version: usize,
    data: Sensitive<String>,
    extended_config: bool,
}

impl ValueRead {
    fn response(&self) -> SecretValueResponse<'_> {
        let s = &self.entry.secret;
        let v = &s.versions[self.version];
        SecretValueResponse {
            secret_name: &s.name,
            secret_type: &s.secret_type,
            secret_data: &self.data,
            secret_data_type: &v.data_type,
            version_id: &v.id,
            version_stages: Stages { version_stage: &v.stages },
            create_time: v.created,
            extended_config: s.extended_config.as_deref().filter(|_| self.extended_config),
            rotation: rotation_fields(s),
        }
    }
}

fn stages(v: &SecretVersion) -> Stages {
    Stages { version_stage: v.stages.clone() }
}

impl SecretService {
    pub fn new(deps: Deps, engines: Arc<dyn EngineFactory>) -> Self {
        let worker_id = format!("worker-{}-{}", std::process::id(), random::id_suffix(8).unwrap_or_default());
        SecretService { keys: KeyService::new(deps.clone()), dbs: DbService::new(deps.clone(), engines), deps, worker_id }
    }

    /// A secret's metadata and tags through the cache (the GetSecretValue path).
    async fn cached(&self, name: &str) -> Result<Option<Arc<SecretEntry>>> {
        let find = async {
            let Some(read) = self.deps.store.get_secret_for_read(name).await? else { return Ok(None) };
            if let Some((version, sealed)) = read.current {
                cache_sealed(&self.deps.caches, name, &version, sealed);
            }
            Ok(Some(self.deps.caches.secret_entry(read.secret, read.tags)))
        };
        self.deps.caches.secrets.get_or_find(name, find).await
    }

    /// A secret as authorization sees it: its ARN, tags and policy (just the ARN when it does
    /// not exist, so that an unauthorized caller learns nothing of its existence).
    async fn secret_resource(&self, name: &str) -> Result<Resource> {
        Ok(self.resource_of(name, self.cached(name).await?.as_deref()))
    }

    fn resource_of(&self, name: &str, entry: Option<&SecretEntry>) -> Resource {
        let arn = self.arn(name);
        match entry {
            Some(e) => {
                Resource { arn, tags: e.tags.iter().map(|t| (t.tag_key.clone(), t.tag_value.clone())).collect(), policy: e.policy.clone() }
            }
            None => Resource::arn(arn),
        }
    }

    async fn target_resource(&self, target: &TagTarget) -> Result<Resource> {
        match target {
            TagTarget::Key(k) => self.keys.key_resource(k).await,
            TagTarget::Secret(name) => self.secret_resource(name).await,
        }
    }

    async fn typed_resource(&self, rtype: ResourceType, id: &str) -> Result<Resource> {
        match rtype {
            ResourceType::Key => self.keys.key_resource(&KeyRef::parse("ResourceId", id)?).await,
            ResourceType::Secret => self.secret_resource(id).await,
        }
    }

    pub async fn execute(&self, ctx: &Ctx, req: SecretRequest) -> Result<Reply> {
        let grant = self.authorize(ctx, &req).await?;
        match req {
            // The hot path runs in place and writes its answer as JSON text. The other actions'
            // state (several KiB for the largest) is boxed, so that a read does not carry it,
            // nor copy it when the request's future is moved.
            SecretRequest::GetSecretValue(g) => Reply::json(&self.get_value(&g).await?.response()),
            other => Box::pin(self.run(ctx, other, grant)).await.map(Reply::from),
        }
    }

    async fn authorize(&self, ctx: &Ctx, req: &SecretRequest) -> Result<Grant> {
        use SecretRequest as S;
        let on = |action: &'static str, name: &str| {
            let name = name.to_string();
            async move { Ok::<_, Error>(vec![(action, self.secret_resource(&name).await?)]) }
        };
        let needs: Vec<(&str, Resource)> = match req {
            S::CreateSecret(r) => {
                let secret = Resource {
                    arn: self.arn(&r.name),
                    tags: r.tags.iter().map(|t| (t.tag_key.clone(), t.tag_value.clone())).collect(),
                    policy: None,
                };
                let key = match &r.key {
                    Some(k) => self.keys.key_resource(k).await?,
                    None => {
                        let instance = match &r.instance_id {
                            Some(i) => i.clone(),
                            None => self.keys.default_instance().await?,
                        };
                        match self.keys.default_secrets_key_id(&instance).await? {
                            Some(id) => self.keys.key_resource(&KeyRef::Id(id)).await?,
                            None => Resource::arn(self.deps.realm.arn("key/*")),
                        }
                    }
                };
                vec![("kms:CreateSecret", secret), ("kms:GenerateDataKey", key)]
            }
            S::PutSecretValue { name, .. } => {
                let entry = self.cached(name).await?;
                let secret = self.resource_of(name, entry.as_deref());
                let key = match entry {
                    Some(e) => self.keys.key_resource(&KeyRef::Id(e.secret.key_id.clone())).await?,
                    None => Resource::arn(self.deps.realm.arn("key/*")),
                };
                vec![("kms:PutSecretValue", secret), ("kms:GenerateDataKey", key)]
            }
            // Each secret of a batch is authorized on its own; refusals are listed in Errors.
            S::BatchGetSecretValue(_) => Vec::new(),
            S::GetSecretValue(g) => on("kms:GetSecretValue", &g.name).await?,
            S::ListSecrets { .. } => vec![("kms:ListSecrets", Resource::arn(self.deps.realm.arn("secret/*")))],
            S::GetRandomPassword(_) => vec![("kms:GetRandomPassword", Resource::arn(self.deps.realm.arn("*")))],
            S::DescribeSecret { name, .. } => on("kms:DescribeSecret", name).await?,
            S::UpdateSecret { name, .. } => on("kms:UpdateSecret", name).await?,
            S::UpdateSecretVersionStage { name, .. } => on("kms:UpdateSecretVersionStage", name).await?,
            S::ListSecretVersionIds { name, .. } => on("kms:ListSecretVersionIds", name).await?,
            S::DeleteSecret { name, .. } => on("kms:DeleteSecret", name).await?,
            S::RestoreSecret { name } => on("kms:RestoreSecret", name).await?,
            S::GetSecretPolicy { name } => on("kms:GetSecretPolicy", name).await?,
            S::SetSecretPolicy { name, .. } => on("kms:SetSecretPolicy", name).await?,
            S::RotateSecret { name, .. } => on("kms:RotateSecret", name).await?,
            S::ConfirmSecretAccounts { name } => on("kms:ConfirmSecretAccounts", name).await?,
            S::CancelSecretRotation { name } => on("kms:CancelSecretRotation", name).await?,
            S::UpdateSecretRotationPolicy { name, .. } => on("kms:UpdateSecretRotationPolicy", name).await?,
            S::TagResource { target, .. } => vec![("kms:TagResource", self.target_resource(target).await?)],
            S::UntagResource { target, .. } => vec![("kms:UntagResource", self.target_resource(target).await?)],
            S::TagResources { rtype, ids, .. } | S::UntagResources { rtype, ids, .. } => {
                let action = if matches!(req, S::TagResources { .. }) { "kms:TagResources" } else { "kms:UntagResources" };
                let mut v = Vec::with_capacity(ids.len());
                for id in ids {
                    v.push((action, self.typed_resource(*rtype, id).await?));
                }
                v
            }
            S::ListTagResources { rtype, ids, .. } => {
                if ids.is_empty() {
                    vec![("kms:ListTagResources", Resource::arn(self.deps.realm.arn(&format!("{}/*", rtype.as_str()))))]
                } else {
                    let mut v = Vec::with_capacity(ids.len());
                    for id in ids {
                        v.push(("kms:ListTagResources", self.typed_resource(*rtype, id).await?));
                    }
                    v
                }
            }
        };
        self.keys.authz().check_all(ctx, needs).await
    }

    async fn run(&self, ctx: &Ctx, req: SecretRequest, _grant: Grant) -> Result<Value> {
        match req {
            SecretRequest::CreateSecret(r) => to_value(self.create(ctx, *r).await?),
            SecretRequest::GetSecretValue(g) => to_value(self.get_value(&g).await?.response()),
            SecretRequest::BatchGetSecretValue(list) => {
                let (mut reads, mut errors) = (Vec::new(), Vec::new());
                for g in &list {
                    let allowed = async {
                        let resource = self.secret_resource(&g.name).await?;
                        self.keys.authz().check(ctx, "kms:GetSecretValue", resource).await
                    };
                    let result = match allowed.await {
                        Ok(_grant) => self.get_value(g).await,
                        Err(e) => Err(e),
                    };
                    match result {
                        Ok(read) => reads.push(read),
                        Err(e @ Error::Internal(_)) => return Err(e),
                        Err(e) => errors.push(BatchError {
                            secret_name: g.name.clone(),
                            code: e.code().into(),
                            message: e.message(),
                            http_status: e.status(),
                        }),
                    }
                }
                to_value(BatchGetSecretValueResponse { secret_values: reads.iter().map(ValueRead::response).collect(), errors })
            }
            SecretRequest::ListSecrets { page, filters, fetch_tags } => {
                let (items, total) = self.deps.store.list_secrets(&filters, page.offset(), page.size).await?;
                let mut secret = Vec::with_capacity(items.len());
                for s in items {
                    let tags = if fetch_tags { Some(Tags { tag: self.deps.store.get_tags("secret", &s.name).await? }) } else { None };
                    secret.push(SecretListItem {
                        secret_type: s.secret_type,
                        create_time: s.created.to_string(),
                        update_time: s.updated.to_string(),
                        planned_delete_time: s.planned_delete.map(|t| t.to_string()),
                        tags,
                        secret_name: s.name,
                    });
                }
                to_value(ListSecretsResponse {
                    secret_list: SecretList { secret },
                    page_number: page.number,
                    page_size: page.size,
                    total_count: total,
                })
            }
            SecretRequest::DescribeSecret { name, fetch_tags } => {
                let s = self.load(&name).await?;
                let tags = if fetch_tags { Some(Tags { tag: self.deps.store.get_tags("secret", &s.name).await? }) } else { None };
                let rotation_health = self.health(&s).await?;
                let rotation = rotation_fields(&s);
                to_value(DescribeSecretResponse {
                    rotation,
                    rotation_health,
                    arn: self.arn(&s.name),
                    secret_type: s.secret_type,
                    description: s.description,
                    dkms_instance_id: s.instance_id,
                    encryption_key_id: s.key_id,
                    create_time: s.created.to_string(),
                    update_time: s.updated.to_string(),
                    planned_delete_time: s.planned_delete.map(|t| t.to_string()),
                    extended_config: s.extended_config,
                    tags,
                    secret_name: s.name,
                })
            }
            SecretRequest::PutSecretValue { name, version_id, data, data_type, stages } => {
                let s = self.generic_secret(&name).await?;
                to_value(self.put_value(&name, s, &version_id, &data, data_type, stages).await?)
            }
            SecretRequest::UpdateSecret { name, description, custom_data } => {
                let now = self.deps.clock.now();
                self.modify(&name, None, |s| {
                    if let Some(d) = &description {
                        s.description = d.clone();
                    }
                    if let Some(cd) = &custom_data {
                        let mut cfg: Value = s
                            .extended_config
                            .as_deref()
                            .and_then(|c| serde_json::from_str(c).ok())
                            .unwrap_or_else(|| Value::Object(Map::new()));
                        if let Some(obj) = cfg.as_object_mut() {
                            obj.insert("CustomData".into(), Value::Object(cd.clone()));
                        }
                        check_extended_config(&cfg)?;
                        s.extended_config = Some(cfg.to_string());
                    }
                    s.updated = now;
                    Ok(())
                })
                .await?;
                to_value(SecretNameResponse { secret_name: name })
            }
            SecretRequest::UpdateSecretVersionStage { name, stage, move_to, remove_from } => {
                let loaded = self.generic_secret(&name).await?;
                let now = self.deps.clock.now();
                self.modify_from(Some(loaded), &name, None, RotationChange::Keep, |s| {
                    if let Some(from) = &remove_from {
                        let v = s.version(from).ok_or_else(|| Error::ResourceNotFound(format!("version {from} of secret {}", s.name)))?;
                        if !v.stages.contains(&stage) {
                            return Err(Error::invalid("RemoveFromVersion", format!("version {from} does not carry the stage {stage}")));
                        }
                    }
                    match &move_to {
                        Some(to) => {
                            if s.version(to).is_none() {
                                return Err(Error::ResourceNotFound(format!("version {to} of secret {}", s.name)));
                            }
                            let old_current = s.with_stage(CURRENT).map(|v| v.id.clone());
                            s.move_stage(&stage, to);
                            // Moving ACSCurrent leaves ACSPrevious on the version it left.
                            if stage == CURRENT
                                && let Some(old) = old_current.filter(|o| o != to)
                            {
                                s.move_stage(PREVIOUS, &old);
                            }
                        }
                        None => {
                            for v in &mut s.versions {
                                if Some(&v.id) == remove_from.as_ref() {
                                    v.stages.retain(|x| x != &stage);
                                }
                            }
                        }
                    }
                    if s.stage_count() > MAX_STAGES {
                        return Err(Error::LimitExceeded(format!("a secret carries at most {MAX_STAGES} stages")));
                    }
                    s.updated = now;
                    Ok(())
                })
                .await?;
                to_value(SecretNameResponse { secret_name: name })
            }
            SecretRequest::ListSecretVersionIds { name, include_deprecated, page } => {
                let s = self.load(&name).await?;
                let listed: Vec<&SecretVersion> = s.versions.iter().rev().filter(|v| include_deprecated || !v.stages.is_empty()).collect();
                let version_id = listed
                    .iter()
                    .skip(page.offset() as usize)
                    .take(page.size as usize)
                    .map(|v| VersionIdItem { version_id: v.id.clone(), create_time: v.created.to_string(), version_stages: stages(v) })
                    .collect();
                to_value(ListSecretVersionIdsResponse {
                    secret_name: s.name.clone(),
                    version_ids: VersionIds { version_id },
                    page_number: page.number,
                    page_size: page.size,
                    total_count: listed.len() as i64,
                })
            }
            SecretRequest::DeleteSecret { name, force, recovery_days } => {
                let now = self.deps.clock.now();
                if force {
                    self.load(&name).await?;
                    self.deps.store.delete_secret(&name).await?;
                    self.deps.caches.secret_removed(&name);
                    return to_value(DeleteSecretResponse { secret_name: name, planned_delete_time: now.to_string() });
                }
                let s = self
                    .modify(&name, None, |s| {
                        if s.planned_delete.is_some() {
                            return Err(Error::ResourceInDeleteWindow(format!("secret {}", s.name)));
                        }
                        s.planned_delete = Some(now.plus_seconds(recovery_days * 86_400));
                        Ok(())
                    })
                    .await?;
                to_value(DeleteSecretResponse {
                    planned_delete_time: s.planned_delete.map(|t| t.to_string()).unwrap_or_default(),
                    secret_name: name,
                })
            }
            SecretRequest::RestoreSecret { name } => {
                self.modify(&name, None, |s| {
                    if s.planned_delete.is_none() {
                        return Err(Error::invalid("SecretName", format!("secret {} is not pending deletion", s.name)));
                    }
                    s.planned_delete = None;
                    Ok(())
                })
                .await?;
                to_value(SecretNameResponse { secret_name: name })
            }
            SecretRequest::GetRandomPassword(spec) => {
                let mut classes = Vec::new();
                for (excluded, class) in [
                    (spec.exclude_lowercase, random::LOWERCASE),
                    (spec.exclude_uppercase, random::UPPERCASE),
                    (spec.exclude_numbers, random::DIGITS),
                    (spec.exclude_punctuation, random::PUNCTUATION),
                ] {
                    if !excluded {
                        classes.push(class);
                    }
                }
                let password = random::password(spec.length, &classes, &spec.exclude_characters, spec.require_each_included_type)
                    .map_err(Error::internal)?
                    .ok_or_else(|| Error::invalid("ExcludeCharacters", "the exclusions leave no characters to build the password from"))?;
                to_value(RandomPasswordResponse { random_password: Sensitive::new(password) })
            }
            SecretRequest::TagResource { target, tags } => {
                let (rtype, id) = self.tag_target(&target).await?;
                self.add_tags(rtype, &[id], &tags).await?;
                to_value(crate::keys::empty())
            }
            SecretRequest::UntagResource { target, keys } => {
                let (rtype, id) = self.tag_target(&target).await?;
                self.remove_tags(rtype, &id, Some(&keys)).await?;
                to_value(crate::keys::empty())
            }
            SecretRequest::TagResources { rtype, ids, tags } => {
                let ids = self.resolve_all(rtype, &ids).await?;
                self.add_tags(rtype.as_str(), &ids, &tags).await?;
                to_value(crate::keys::empty())
            }
            SecretRequest::UntagResources { rtype, ids, keys, all } => {
                let ids = self.resolve_all(rtype, &ids).await?;
                for id in &ids {
                    self.remove_tags(rtype.as_str(), id, if all && keys.is_empty() { None } else { Some(&keys) }).await?;
                }
                to_value(crate::keys::empty())
            }
            SecretRequest::ListTagResources { rtype, ids, tags, next_token } => {
                const PAGE: usize = 200;
                let offset: usize = match next_token {
                    None => 0,
                    Some(t) => t.parse().map_err(|_| Error::invalid("NextToken", "is not a token this server returned"))?,
                };
                let rows = self.deps.store.list_tags(rtype.as_str(), (!ids.is_empty()).then_some(ids.as_slice())).await?;
                // A resource matches when it carries every tag asked for.
                let matches = |id: &str| tags.iter().all(|want| rows.iter().any(|(rid, t)| rid == id && t == want));
                let selected: Vec<TagResourceItem> = rows
                    .iter()
                    .filter(|(id, _)| matches(id))
                    .map(|(id, t)| TagResourceItem {
                        resource_id: id.clone(),
                        resource_type: rtype.as_str().into(),
                        tag_key: t.tag_key.clone(),
                        tag_value: t.tag_value.clone(),
                    })
                    .collect();
                let total = selected.len();
                let tag_resource: Vec<TagResourceItem> = selected.into_iter().skip(offset).take(PAGE).collect();
                let next = if offset + PAGE < total { (offset + PAGE).to_string() } else { String::new() };
                to_value(ListTagResourcesResponse { tag_resources: TagResourceList { tag_resource }, next_token: next })
            }
            SecretRequest::GetSecretPolicy { name } => to_value(PolicyResponse { policy: self.load(&name).await?.policy }),
            SecretRequest::RotateSecret { name, version_id } => {
                let version_id = self.rotate(&name, Some(&version_id)).await?;
                to_value(RotateSecretResponse { arn: self.arn(&name), secret_name: name, version_id })
            }
            SecretRequest::ConfirmSecretAccounts { name } => {
                self.confirm_accounts(&name).await?;
                to_value(SecretNameResponse { secret_name: name })
            }
            SecretRequest::CancelSecretRotation { name } => {
                self.cancel_rotation(&name).await?;
                to_value(SecretNameResponse { secret_name: name })
            }
            SecretRequest::UpdateSecretRotationPolicy { name, rotation } => {
                let now = self.deps.clock.now();
                self.modify(&name, None, |s| {
                    if s.secret_type == "Generic" {
                        return Err(Error::invalid(
                            "SecretName",
                            format!("{} is a Generic secret; automatic rotation is for Rds secrets", s.name),
                        ));
                    }
                    s.rotation_interval = rotation;
                    s.next_rotation = rotation.map(|i| now.plus_seconds(i));
                    s.updated = now;
                    Ok(())
                })
                .await?;
                to_value(SecretNameResponse { secret_name: name })
            }
            SecretRequest::SetSecretPolicy { name, policy } => {
                crate::policy::PolicyDocument::parse(&policy, crate::policy::DocKind::Secret)?;
                let now = self.deps.clock.now();
                self.modify(&name, None, |s| {
                    s.policy = policy.clone();
                    s.updated = now;
                    Ok(())
                })
                .await?;
                to_value(crate::keys::empty())
            }
        }
    }

    fn arn(&self, name: &str) -> String {
        self.deps.realm.arn_of(&["secret/", name])
    }

    fn default_policy(&self) -> String {
        serde_json::json!({
            "Version": "1",
            "Statement": [{
                "Sid": "kms default secret policy",
                "Effect": "Allow",
                "Principal": {"RAM": [format!("acs:ram::{}:root", self.deps.realm.account_id)]},
                "Action": ["kms:*"],
                "Resource": ["*"]
            }]
        })
        .to_string()
    }

    async fn create(&self, ctx: &Ctx, r: CreateSecret) -> Result<CreateSecretResponse> {
        if let Some(p) = &r.policy {
            crate::policy::PolicyDocument::parse(p, crate::policy::DocKind::Secret)?;
        }
        let instance_id = match &r.instance_id {
            Some(id) => self.deps.store.get_instance(id).await?.ok_or_else(|| Error::ResourceNotFound(format!("KMS instance {id}")))?.id,
            None => self.keys.default_instance().await?,
        };
        let key = match &r.key {
            Some(k) => self.keys.resolve(k).await?,
            None => self.keys.default_secrets_key(ctx, &instance_id).await?,
        };
        if key.instance_id != instance_id {
            return Err(Error::invalid(
                "EncryptionKeyId",
                format!("must be a key of KMS instance {instance_id}; {} belongs to {}", key.id, key.instance_id),
            ));
        }
        if let Some(existing) = self.deps.store.get_secret(&r.name).await? {
            return Err(if existing.planned_delete.is_some() {
                Error::ResourceInDeleteWindow(format!("secret {}", r.name))
            } else {
                Error::ResourceExist(format!("secret {}", r.name))
            });
        }
        let now = self.deps.clock.now();
        let awaiting = r.rds.as_ref().is_some_and(|rds| matches!(rds.accounts, RdsAccounts::Create(_)));
        // One version for a generic secret; one per imported account for an Rds secret, the
        // first under ACSCurrent and a second (dual mode) under ACSPrevious.
        let mut versions: Vec<(SecretVersion, SealedValue)> = Vec::new();
        let (secret_type, extended_config) = match &r.rds {
            None => {
                let sealed = self.seal(&key, &r.name, &r.version_id, r.data.expose_secret().as_bytes())?;
                versions.push((
                    SecretVersion {
                        id: r.version_id.clone(),
                        created: now,
                        data_type: r.data_type.as_str().into(),
                        stages: vec![CURRENT.into()],
                    },
                    sealed,
                ));
                ("Generic", r.extended_config.clone())
            }
            Some(rds) => {
                let db = self.dbs.get(&rds.db_instance_id).await?;
                // Imported accounts as given; accounts to create as planned, their passwords
                // sealed now, before anything exists on the server.
                let (accounts, planned): (Vec<(String, SecretString)>, Vec<String>) = match &rds.accounts {
                    RdsAccounts::Import(list) => (
                        list.iter().map(|a| (a.name.clone(), SecretString::from(a.password.expose_secret().to_string()))).collect(),
                        Vec::new(),
                    ),
                    RdsAccounts::Create(c) => {
                        let plan = self.plan_accounts(&db, rds.mode, c).await?;
                        let names = plan.iter().map(|(n, _)| n.clone()).collect();
                        (plan, names)
                    }
                };
                for (i, (account, password)) in accounts.iter().enumerate() {
                    let (id, stage) =
                        if i == 0 { (r.version_id.clone(), CURRENT) } else { (format!("{}-previous", r.version_id), PREVIOUS) };
                    let value = account_value(account, secrecy::ExposeSecret::expose_secret(password));
                    let sealed = self.seal(&key, &r.name, &id, value.expose_secret().as_bytes())?;
                    versions.push((SecretVersion { id, created: now, data_type: "text".into(), stages: vec![stage.into()] }, sealed));
                }
                ("Rds", Some(rds_config(rds, r.extended_config.as_deref(), &planned)))
            }
        };
        let secret = Secret {
            name: r.name.clone(),
            secret_type: secret_type.into(),
            instance_id: instance_id.clone(),
            key_id: key.id.clone(),
            description: r.description,
            extended_config: extended_config.clone(),
            creator: ctx.caller.user.to_string(),
            created: now,
            updated: now,
            planned_delete: None,
            policy: r.policy.unwrap_or_else(|| self.default_policy()),
            versions: versions.iter().map(|(v, _)| v.clone()).collect(),
            rotation_interval: r.rotation,
            last_rotation: None,
            // Accounts still to be confirmed start their rotation clock when they exist.
            next_rotation: r.rotation.filter(|_| !awaiting).map(|i| now.plus_seconds(i)),
            revision: 0,
        };
        let values: Vec<(&str, &SealedValue)> = versions.iter().map(|(v, sealed)| (v.id.as_str(), sealed)).collect();
        self.deps.caches.secret_removed(&r.name);
        match self.deps.store.insert_secret(&secret, &r.tags, &values).await {
            Err(StoreError::Duplicate) => return Err(Error::ResourceExist(format!("secret {}", r.name))),
            other => other?,
        }
        Ok(CreateSecretResponse {
            arn: self.arn(&r.name),
            rotation: rotation_fields(&secret),
            extended_config: if secret_type == "Generic" { None } else { extended_config },
            secret_name: r.name,
            version_id: r.version_id,
            secret_type: secret_type.into(),
            dkms_instance_id: instance_id,
        })
    }

    /// Seals a version's value under a fresh data key, itself sealed by `key`.
    pub(crate) fn seal(&self, key: &Key, name: &str, version_id: &str, value: &[u8]) -> Result<SealedValue> {
        let context = seal_context(name, version_id);
        let data_key = KeyMaterial::generate().map_err(Error::internal)?;
        let (sealed_key, _) = self.keys.seal_with_primary(key, &context, data_key.expose_secret())?;
        let sealed_value = aead::seal(&data_key, context.canonical_bytes(), value).map_err(Error::internal)?;
        Ok(SealedValue { sealed_key, sealed_value })
    }

    /// Opens a version's value; the secret's CMK must be enabled.
    pub(crate) async fn open(&self, name: &str, version_id: &str) -> Result<String> {
        let entry = match self.deps.caches.sealed.get(&(name, version_id) as &dyn Pair) {
            Some(v) => v,
            None => {
                let v = self
                    .deps
                    .store
                    .get_sealed_value(name, version_id)
                    .await?
                    .ok_or_else(|| Error::internal(format!("value of {name}/{version_id} is missing")))?;
                // A version's sealed value never changes once written.
                cache_sealed(&self.deps.caches, name, version_id, v)
            }
        };
        let unopened = |e| match e {
            Error::InvalidCiphertext => Error::internal(format!("sealed data key of {name}/{version_id} does not open")),
            other => other,
        };
        // Every read needs the CMK enabled, whether or not an earlier read opened the data key.
        self.keys.require_usable(&entry.sealed.sealed_key).await.map_err(unopened)?;
        let data_key = match entry.data_key.get() {
            Some(k) => k,
            None => {
                let (mut dk, _, _) = self.keys.open_blob(&entry.sealed.sealed_key, &entry.context).await.map_err(unopened)?;
                let data_key = KeyMaterial::from_slice(&dk).map_err(Error::internal);
                dk.zeroize();
                let data_key = data_key?;
                entry.data_key.get_or_init(|| data_key)
            }
        };
        let plain = aead::open(data_key, entry.context.canonical_bytes(), &entry.sealed.sealed_value)
            .map_err(|_| Error::internal(format!("sealed value of {name}/{version_id} does not open")))?;
        String::from_utf8(plain).map_err(|_| Error::internal("a stored value is not UTF-8"))
    }

    /// A secret that exists (pending deletion or not).
    pub(crate) async fn load(&self, name: &str) -> Result<Secret> {
        self.deps.store.get_secret(name).await?.ok_or_else(|| not_found(name))
    }

    /// A secret that exists and is not pending deletion.
    pub(crate) async fn load_live(&self, name: &str) -> Result<Secret> {
        let s = self.load(name).await?;
        if s.planned_delete.is_some() {
            return Err(Error::ResourceInDeleteWindow(format!("secret {name}")));
        }
        Ok(s)
    }

    /// PutSecretValue and stage moves are for generic secrets; managed ones change by rotation.
    /// Returns the secret as the cache holds it, for the write to start from (a stale copy only
    /// costs the write a retry: it checks the revision it was read at).
    async fn generic_secret(&self, name: &str) -> Result<Secret> {
        let entry = self.cached(name).await?.ok_or_else(|| not_found(name))?;
        let s = &entry.secret;
        if s.secret_type != "Generic" {
            return Err(Error::invalid(
                "SecretName",
                format!("{name} is a {} secret: its versions change only by rotation (RotateSecret)", s.secret_type),
            ));
        }
        Ok(s.clone())
    }

    async fn get_value(&self, g: &GetValue) -> Result<ValueRead> {
        let entry = self.cached(&g.name).await?.ok_or_else(|| not_found(&g.name))?;
        let s = &entry.secret;
        if s.planned_delete.is_some() {
            return Err(Error::ResourceInDeleteWindow(format!("secret {}", g.name)));
        }
        match crate::accounts::creation_status(s).as_deref() {
            None | Some(ACCOUNTS_CREATED) => {}
            Some(AWAITING_CONFIRMATION) => {
                return Err(Error::SecretNotReady(format!(
                    "the accounts of {} are not created yet: review them with DescribeSecret, then confirm with ConfirmSecretAccounts (sesame secret confirm)",
                    s.name
                )));
            }
            Some(_) => {
                return Err(Error::SecretNotReady(format!("the accounts of {} are being created; DescribeSecret shows progress", s.name)));
            }
        }
        // Managed secrets expose ACSCurrent and ACSPrevious only, and ignore VersionId.
        let (version_id, stage) = if s.secret_type == "Generic" {
            (g.select.version_id.as_deref(), g.select.stage.as_deref())
        } else {
            let stage = g.select.stage.as_deref().unwrap_or(CURRENT);
            if stage != CURRENT && stage != PREVIOUS {
                return Err(Error::invalid("VersionStage", format!("{} secrets expose only ACSCurrent and ACSPrevious", s.secret_type)));
            }
            (None, Some(stage))
        };
        let version = match version_id {
            Some(id) => {
                let v = s.version_index(id).ok_or_else(|| Error::ResourceNotFound(format!("version {id} of secret {}", s.name)))?;
                if let Some(stage) = stage.filter(|st| !s.versions[v].stages.iter().any(|x| x == st)) {
                    return Err(Error::invalid("VersionStage", format!("version {id} does not carry the stage {stage}")));
                }
                v
            }
            None => {
                let stage = stage.unwrap_or(CURRENT);
                s.stage_index(stage)
                    .ok_or_else(|| Error::ResourceNotFound(format!("no version of secret {} carries the stage {stage}", s.name)))?
            }
        };
        let data = Sensitive::new(self.open(&s.name, &s.versions[version].id).await?);
        Ok(ValueRead { entry, version, data, extended_config: g.fetch_extended_config })
    }

    /// PutSecretValue on `s`, the secret `name` as [`Self::generic_secret`] read it.
    async fn put_value(
        &self,
        name: &str,
        s: Secret,
        version_id: &str,
        data: &SecretData,
        data_type: DataType,
        wanted: Option<Vec<String>>,
    ) -> Result<PutSecretValueResponse> {
        if s.planned_delete.is_some() {
            return Err(Error::ResourceInDeleteWindow(format!("secret {name}")));
        }
        if let Some(existing) = s.version(version_id) {
            // Idempotent: the same version with the same value succeeds without a change. The
            // values are compared by digest, so the comparison's timing says nothing about the
            // stored value to a caller who may write but not read.
            let stored = Sensitive::new(self.open(name, version_id).await?);
            let same =
                sesame_crypto::sha256_hex(stored.expose_secret().as_bytes()) == sesame_crypto::sha256_hex(data.expose_secret().as_bytes());
            if !same || existing.data_type != data_type.as_str() {
                return Err(Error::ResourceExist(format!("version {version_id} of secret {name} already exists with a different value")));
            }
            return Ok(PutSecretValueResponse {
                secret_name: name.into(),
                version_id: version_id.into(),
                version_stages: stages(existing),
            });
        }
        let key = self.keys.resolve_cached(&KeyRef::Id(s.key_id.clone())).await?;
        let sealed = self.seal(&key.key, name, version_id, data.expose_secret().as_bytes())?;
        let labels = wanted.unwrap_or_else(|| vec![CURRENT.to_string()]);
        let now = self.deps.clock.now();
        let s = self
            .modify_from(Some(s), name, Some((version_id, &sealed)), RotationChange::Keep, |s| {
                if s.planned_delete.is_some() {
                    return Err(Error::ResourceInDeleteWindow(format!("secret {}", s.name)));
                }
                if s.version(version_id).is_some() {
                    return Err(Error::ResourceExist(format!("version {version_id} of secret {name} already exists")));
                }
                let old_current = s.with_stage(CURRENT).map(|v| v.id.clone());
                s.versions.push(SecretVersion {
                    id: version_id.into(),
                    created: now,
                    data_type: data_type.as_str().into(),
                    stages: Vec::new(),
                });
                for label in &labels {
                    s.move_stage(label, version_id);
                }
                if labels.iter().any(|l| l == CURRENT)
                    && !labels.iter().any(|l| l == PREVIOUS)
                    && let Some(old) = old_current
                {
                    s.move_stage(PREVIOUS, &old);
                }
                if s.stage_count() > MAX_STAGES {
                    return Err(Error::LimitExceeded(format!("a secret carries at most {MAX_STAGES} stages")));
                }
                prune_versions(s);
                s.updated = now;
                Ok(())
            })
            .await?;
        let v = s.version(version_id).ok_or_else(|| Error::internal("new version missing after write"))?;
        // Version values never change: a read of this one finds it in the cache.
        cache_sealed(&self.deps.caches, name, version_id, sealed);
        Ok(PutSecretValueResponse { secret_name: name.into(), version_id: version_id.into(), version_stages: stages(v) })
    }

    /// Loads, changes and writes a secret under optimistic concurrency, retrying lost races.
    async fn modify(
        &self,
        name: &str,
        new_version: Option<(&str, &SealedValue)>,
        change: impl FnMut(&mut Secret) -> Result<()>,
    ) -> Result<Secret> {
        self.modify_with(name, new_version, RotationChange::Keep, change).await
    }

    /// `modify`, with the secret's rotation record changed in the same write.
    pub(crate) async fn modify_with(
        &self,
        name: &str,
        new_version: Option<(&str, &SealedValue)>,
        rotation: RotationChange<'_>,
        change: impl FnMut(&mut Secret) -> Result<()>,
    ) -> Result<Secret> {
        self.modify_from(None, name, new_version, rotation, change).await
    }

    /// As [`Self::modify_with`], trying first on `loaded`, a copy the caller read a moment ago
    /// (a stale copy only costs a retry: the write checks the revision it was read at).
    pub(crate) async fn modify_from(
        &self,
        mut loaded: Option<Secret>,
        name: &str,
        new_version: Option<(&str, &SealedValue)>,
        rotation: RotationChange<'_>,
        mut change: impl FnMut(&mut Secret) -> Result<()>,
    ) -> Result<Secret> {
        for _ in 0..UPDATE_ATTEMPTS {
            let mut s = match loaded.take() {
                Some(s) => s,
                None => self.load(name).await?,
            };
            change(&mut s)?;
            match self.deps.store.update_secret_rotation(&s, new_version, rotation).await {
                Ok(()) => {
                    s.revision += 1;
                    self.deps.caches.secret_written(&s);
                    return Ok(s);
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Throttling(format!("secret {name} is being changed by other requests; retry")))
    }

    async fn tag_target(&self, target: &TagTarget) -> Result<(&'static str, String)> {
        match target {
            TagTarget::Key(k) => Ok(("key", self.keys.resolve(k).await?.id)),
            TagTarget::Secret(name) => Ok(("secret", self.load(name).await?.name)),
        }
    }

    /// Checks that every resource exists before anything is written.
    async fn resolve_all(&self, rtype: ResourceType, ids: &[String]) -> Result<Vec<String>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(match rtype {
                ResourceType::Key => self.keys.resolve(&KeyRef::parse("ResourceId", id)?).await?.id,
                ResourceType::Secret => {
                    validate_secret_name("ResourceId", id)?;
                    self.load(id).await?.name
                }
            });
        }
        Ok(out)
    }

    async fn remove_tags(&self, rtype: &str, id: &str, keys: Option<&[String]>) -> Result<()> {
        self.deps.store.remove_tags(rtype, id, keys).await?;
        self.deps.caches.tags_changed(rtype, id);
        Ok(())
    }

    /// Adds tags to every resource, or to none if any would pass the limit.
    async fn add_tags(&self, rtype: &str, ids: &[String], tags: &[Tag]) -> Result<()> {
        for id in ids {
            let mut keys: Vec<String> = self.deps.store.get_tags(rtype, id).await?.into_iter().map(|t| t.tag_key).collect();
            keys.extend(tags.iter().map(|t| t.tag_key.clone()));
            keys.sort_unstable();
            keys.dedup();
            if keys.len() > MAX_TAGS {
                return Err(Error::invalid("Tags", format!("{rtype} {id} would have more than {MAX_TAGS} tags")));
            }
        }
        for id in ids {
            let added = self.deps.store.add_tags(rtype, id, tags, MAX_TAGS).await?;
            self.deps.caches.tags_changed(rtype, id);
            if !added {
                return Err(Error::invalid("Tags", format!("{rtype} {id} would have more than {MAX_TAGS} tags")));
            }
        }
        Ok(())
    }

    /// Purges secrets whose deletion window has ended. Called by the scheduler.
    pub async fn run_due(&self) -> Result<usize> {
        let now = self.deps.clock.now();
        let due = self.deps.store.secrets_due(now).await?;
        for name in &due {
            self.deps.store.delete_secret(name).await?;
            self.deps.caches.secret_removed(name);
            tracing::info!(secret = %name, "purged secret at the end of its recovery window");
        }
        Ok(due.len())
    }
}

/// Drops the oldest versions without a stage beyond the version limit.
pub(crate) fn prune_versions(s: &mut Secret) {
    while s.versions.len() > MAX_SECRET_VERSIONS {
        match s.versions.iter().position(|v| v.stages.is_empty()) {
            Some(i) => {
                s.versions.remove(i);
            }
            None => break,
        }
    }
}
