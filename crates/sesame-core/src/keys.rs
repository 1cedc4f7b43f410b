//! The key actions: lifecycle of KMS instances, CMKs, versions and aliases, and the
//! cryptographic operations (Encrypt, Decrypt, GenerateDataKey, ReEncrypt).

use crate::authz::{Authorizer, Grant, Resource};
use crate::cache::{KeyEntry, Pair};
use crate::model::{Alias, Key, KeyState, KeyVersion, KmsInstance};
use crate::store::StoreError;
use crate::{Ctx, Deps, to_value};
use base64::Engine;
use serde_json::Value;
use sesame_api::Error;
use sesame_api::error::Result;
use sesame_api::kms::*;
use sesame_crypto::aead::Cipher;
use sesame_crypto::{KeyMaterial, blob, random};
use zeroize::Zeroize;

/// At most this many versions per key (Alibaba's CreateKeyVersion limit).
pub const MAX_KEY_VERSIONS: usize = 50;
const UPDATE_ATTEMPTS: usize = 5;

pub struct KeyService {
    deps: Deps,
    authz: Authorizer,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The root-key binding of a CMK version's material.
fn wrap_context(key_id: &str, version_id: &str) -> Vec<u8> {
    format!("sesame/cmk/{key_id}/{version_id}").into_bytes()
}

impl KeyService {
    pub fn new(deps: Deps) -> Self {
        KeyService { authz: Authorizer::new(deps.clone()), deps }
    }

    fn arn(&self, rest: &str) -> String {
        self.deps.realm.arn(rest)
    }

    /// A key as authorization sees it: its ARN and tags. A key that does not resolve is named
    /// as the caller named it, so that an unauthorized caller learns nothing of its existence.
    pub(crate) async fn key_resource(&self, key: &KeyRef) -> Result<Resource> {
        match self.resolve_cached(key).await {
            Ok(e) => Ok(Resource { arn: self.arn(&format!("key/{}", e.key.id)), tags: e.tags.clone(), policy: None }),
            Err(Error::KeyNotFound(_) | Error::AliasNotFound(_)) => Ok(Resource::arn(match key {
                KeyRef::Id(id) => self.arn(&format!("key/{id}")),
                KeyRef::Alias(a) => self.arn(a),
            })),
            Err(e) => Err(e),
        }
    }

    /// The key a ciphertext names (`key/*` when it names none).
    async fn blob_resource(&self, blob: &[u8]) -> Result<Resource> {
        match sesame_crypto::blob::parse(blob) {
            Ok(h) => self.key_resource(&KeyRef::Id(h.key_id.to_string())).await,
            Err(_) => Ok(Resource::arn(self.arn("key/*"))),
        }
    }

    pub async fn execute(&self, ctx: &Ctx, req: KeyRequest) -> Result<Value> {
        let grant = self.authorize(ctx, &req).await?;
        self.run(ctx, req, grant).await
    }

    async fn authorize(&self, ctx: &Ctx, req: &KeyRequest) -> Result<Grant> {
        use KeyRequest as K;
        let any = |rest: &str| Resource::arn(self.arn(rest));
        let needs: Vec<(&str, Resource)> = match req {
            K::CreateKey(_) => vec![("kms:CreateKey", any("key/*"))],
            K::ListKeys { .. } => vec![("kms:ListKeys", any("key/*"))],
            K::ListAliases { .. } => vec![("kms:ListAliases", any("alias/*"))],
            K::ListKmsInstances { .. } => vec![("kms:ListKmsInstances", any("instance/*"))],
            K::DescribeKey { key } => vec![("kms:DescribeKey", self.key_resource(key).await?)],
            K::EnableKey { key } => vec![("kms:EnableKey", self.key_resource(key).await?)],
            K::DisableKey { key } => vec![("kms:DisableKey", self.key_resource(key).await?)],
            K::ScheduleKeyDeletion { key, .. } => vec![("kms:ScheduleKeyDeletion", self.key_resource(key).await?)],
            K::CancelKeyDeletion { key } => vec![("kms:CancelKeyDeletion", self.key_resource(key).await?)],
            K::UpdateRotationPolicy { key, .. } => vec![("kms:UpdateRotationPolicy", self.key_resource(key).await?)],
            K::CreateKeyVersion { key } => vec![("kms:CreateKeyVersion", self.key_resource(key).await?)],
            K::ListKeyVersions { key, .. } => vec![("kms:ListKeyVersions", self.key_resource(key).await?)],
            K::DescribeKeyVersion { key, .. } => vec![("kms:DescribeKeyVersion", self.key_resource(key).await?)],
            K::ListAliasesByKeyId { key, .. } => vec![("kms:ListAliasesByKeyId", self.key_resource(key).await?)],
            K::CreateAlias { alias, key } => vec![("kms:CreateAlias", any(alias)), ("kms:CreateAlias", self.key_resource(key).await?)],
            K::UpdateAlias { alias, key } => vec![("kms:UpdateAlias", any(alias)), ("kms:UpdateAlias", self.key_resource(key).await?)],
            K::DeleteAlias { alias } => vec![("kms:DeleteAlias", any(alias))],
            K::Encrypt { key, .. } => vec![("kms:Encrypt", self.key_resource(key).await?)],
            K::GenerateDataKey(spec) => vec![("kms:GenerateDataKey", self.key_resource(&spec.key).await?)],
            K::GenerateDataKeyWithoutPlaintext(spec) => {
                vec![("kms:GenerateDataKeyWithoutPlaintext", self.key_resource(&spec.key).await?)]
            }
            K::Decrypt { blob, .. } => vec![("kms:Decrypt", self.blob_resource(blob).await?)],
            K::ReEncrypt { blob, key, .. } => {
                vec![("kms:ReEncrypt", self.blob_resource(blob).await?), ("kms:ReEncrypt", self.key_resource(key).await?)]
            }
        };
        self.authz.check_all(ctx, needs).await
    }

    pub async fn default_instance(&self) -> Result<String> {
        self.deps.store.meta_get(super::META_DEFAULT_INSTANCE).await?.ok_or_else(|| Error::internal("no default KMS instance"))
    }

    pub(crate) fn authz(&self) -> &Authorizer {
        &self.authz
    }

    /// The id of an instance's default secrets key, if it was made already.
    pub(crate) async fn default_secrets_key_id(&self, instance_id: &str) -> Result<Option<String>> {
        Ok(self.deps.store.meta_get(&format!("default_secrets_key:{instance_id}")).await?)
    }

    /// The key that seals secrets of an instance when CreateSecret names none, created on
    /// first use.
    pub async fn default_secrets_key(&self, ctx: &Ctx, instance_id: &str) -> Result<Key> {
        let meta = format!("default_secrets_key:{instance_id}");
        if let Some(id) = self.deps.store.meta_get(&meta).await?
            && let Some(k) = self.deps.store.get_key(&id).await?
        {
            return Ok(k);
        }
        let created = self
            .create_key(
                ctx,
                CreateKey {
                    instance_id: Some(instance_id.to_string()),
                    description: format!("Default key for secrets of {instance_id}"),
                    rotation: None,
                    tags: Vec::new(),
                },
            )
            .await?;
        let id = created.key_metadata.key_id;
        self.deps.store.meta_set(&meta, &id).await?;
        self.deps.store.get_key(&id).await?.ok_or(Error::KeyNotFound(id))
    }

    pub(crate) async fn create_instance(&self) -> Result<String> {
        let id = format!("kst-{}", random::id_suffix(20).map_err(Error::internal)?);
        self.deps.store.insert_instance(&KmsInstance { id: id.clone(), created: self.deps.clock.now() }).await?;
        Ok(id)
    }

    /// Runs one key action.
    async fn run(&self, ctx: &Ctx, req: KeyRequest, _grant: Grant) -> Result<Value> {
        match req {
            KeyRequest::CreateKey(r) => to_value(self.create_key(ctx, r).await?),
            KeyRequest::DescribeKey { key } => {
                let key = self.resolve(&key).await?;
                to_value(KeyMetadataResponse { key_metadata: self.metadata(&key) })
            }
            KeyRequest::ListKeys { page } => {
                let (ids, total) = self.deps.store.list_keys(page.offset(), page.size).await?;
                let key =
                    ids.into_iter().map(|id| KeyListItem { key_arn: self.deps.realm.arn(&format!("key/{id}")), key_id: id }).collect();
                to_value(ListKeysResponse { keys: KeyList { key }, page_number: page.number, page_size: page.size, total_count: total })
            }
            KeyRequest::EnableKey { key } => self.set_enabled(&key, true).await,
            KeyRequest::DisableKey { key } => self.set_enabled(&key, false).await,
            KeyRequest::ScheduleKeyDeletion { key, days } => {
                let now = self.deps.clock.now();
                self.modify(&key, |k| {
                    if k.state == KeyState::PendingDeletion {
                        return Err(Error::StateModifiedFailed { key: k.id.clone(), reason: "the key is already pending deletion".into() });
                    }
                    k.state = KeyState::PendingDeletion;
                    k.delete_date = Some(now.plus_seconds(days * 86_400));
                    Ok(())
                })
                .await?;
                to_value(Empty {})
            }
            KeyRequest::CancelKeyDeletion { key } => {
                self.modify(&key, |k| {
                    if k.state != KeyState::PendingDeletion {
                        return Err(Error::StateModifiedFailed { key: k.id.clone(), reason: "the key is not pending deletion".into() });
                    }
                    k.state = KeyState::Enabled;
                    k.delete_date = None;
                    Ok(())
                })
                .await?;
                to_value(Empty {})
            }
            KeyRequest::UpdateRotationPolicy { key, rotation } => {
                let now = self.deps.clock.now();
                self.modify(&key, |k| {
                    refuse_pending_deletion(k)?;
                    k.rotation_interval = rotation;
                    k.next_rotation = rotation.map(|secs| k.last_rotation.max(now).plus_seconds(secs));
                    Ok(())
                })
                .await?;
                to_value(Empty {})
            }
            KeyRequest::CreateKeyVersion { key } => {
                let key = self.resolve(&key).await?;
                let key = self.rotate(&key.id).await?;
                let v = key.versions.last().ok_or_else(|| Error::internal("rotated key has no version"))?;
                to_value(KeyVersionResponse { key_version: version_info(&key, v) })
            }
            KeyRequest::ListKeyVersions { key, page } => {
                let key = self.resolve(&key).await?;
                let total = key.versions.len() as i64;
                let key_version =
                    key.versions.iter().skip(page.offset() as usize).take(page.size as usize).map(|v| version_info(&key, v)).collect();
                to_value(ListKeyVersionsResponse {
                    key_versions: KeyVersionList { key_version },
                    page_number: page.number,
                    page_size: page.size,
                    total_count: total,
                })
            }
            KeyRequest::DescribeKeyVersion { key, version } => {
                let key = self.resolve(&key).await?;
                let v = key.version(&version).ok_or_else(|| Error::KeyVersionNotFound(version.clone()))?;
                to_value(KeyVersionResponse { key_version: version_info(&key, v) })
            }
            KeyRequest::CreateAlias { alias, key } => {
                let key = self.resolve(&key).await?;
                refuse_pending_deletion(&key)?;
                let row = Alias { name: alias.clone(), key_id: key.id, created: self.deps.clock.now() };
                match self.deps.store.insert_alias(&row).await {
                    Err(StoreError::Duplicate) => Err(Error::AliasAlreadyExists(alias)),
                    other => Ok(other?),
                }?;
                to_value(Empty {})
            }
            KeyRequest::UpdateAlias { alias, key } => {
                let key = self.resolve(&key).await?;
                if key.state == KeyState::PendingDeletion {
                    return Err(Error::KeyPendingDeletion(key.id));
                }
                if !self.deps.store.update_alias(&alias, &key.id).await? {
                    return Err(Error::AliasNotFound(alias));
                }
                to_value(Empty {})
            }
            KeyRequest::DeleteAlias { alias } => {
                if !self.deps.store.delete_alias(&alias).await? {
                    return Err(Error::AliasNotFound(alias));
                }
                to_value(Empty {})
            }
            KeyRequest::ListAliases { page } => self.list_aliases(None, page).await,
            KeyRequest::ListAliasesByKeyId { key, page } => {
                let key = self.resolve(&key).await?;
                self.list_aliases(Some(&key.id), page).await
            }
            KeyRequest::Encrypt { key, plaintext, context } => {
                let entry = self.resolve_cached(&key).await?;
                let key = &entry.key;
                let (blob, version) = self.seal_with_primary(key, &context, plaintext.expose_secret())?;
                to_value(EncryptResponse { ciphertext_blob: b64(&blob), key_id: key.id.clone(), key_version_id: version })
            }
            KeyRequest::Decrypt { blob, context } => {
                let (plain, key_id, key_version_id) = self.open_blob(&blob, &context).await?;
                let resp = DecryptResponse { plaintext: Sensitive::new(b64(&plain)), key_id, key_version_id };
                drop(Zeroizing(plain));
                to_value(resp)
            }
            KeyRequest::GenerateDataKey(spec) => self.data_key(spec, true).await,
            KeyRequest::GenerateDataKeyWithoutPlaintext(spec) => self.data_key(spec, false).await,
            KeyRequest::ReEncrypt { blob, source_context, key, context } => {
                let (plain, _, _) = self.open_blob(&blob, &source_context).await?;
                let plain = Zeroizing(plain);
                let key = self.resolve(&key).await?;
                let (blob, version) = self.seal_with_primary(&key, &context, &plain.0)?;
                to_value(EncryptResponse { ciphertext_blob: b64(&blob), key_id: key.id.clone(), key_version_id: version })
            }
            KeyRequest::ListKmsInstances { page } => {
                let (items, total) = self.deps.store.list_instances(page.offset(), page.size).await?;
                let kms_instance = items
                    .into_iter()
                    .map(|i| KmsInstanceInfo {
                        kms_instance_arn: self.deps.realm.arn(&format!("instance/{}", i.id)),
                        kms_instance_id: i.id,
                    })
                    .collect();
                to_value(ListKmsInstancesResponse {
                    kms_instances: KmsInstanceList { kms_instance },
                    page_number: page.number,
                    page_size: page.size,
                    total_count: total,
                })
            }
        }
    }

    async fn create_key(&self, ctx: &Ctx, r: CreateKey) -> Result<KeyMetadataResponse> {
        let instance_id = match r.instance_id {
            Some(id) => self.deps.store.get_instance(&id).await?.ok_or_else(|| Error::ResourceNotFound(format!("KMS instance {id}")))?.id,
            None => {
                self.deps.store.meta_get(super::META_DEFAULT_INSTANCE).await?.ok_or_else(|| Error::internal("no default KMS instance"))?
            }
        };
        let now = self.deps.clock.now();
        let id = format!("key-{}", random::id_suffix(24).map_err(Error::internal)?);
        let version = self.new_version(&id, now)?;
        let key = Key {
            instance_id,
            description: r.description,
            state: KeyState::Enabled,
            creator: ctx.caller.user.to_string(),
            created: now,
            delete_date: None,
            primary_version: version.id.clone(),
            rotation_interval: r.rotation,
            last_rotation: now,
            next_rotation: r.rotation.map(|s| now.plus_seconds(s)),
            versions: vec![version],
            revision: 0,
            id,
        };
        self.deps.store.insert_key(&key).await?;
        if !r.tags.is_empty() && !self.deps.store.add_tags("key", &key.id, &r.tags, sesame_api::secrets::MAX_TAGS).await? {
            return Err(Error::internal("tags checked at parse time exceeded the limit"));
        }
        Ok(KeyMetadataResponse { key_metadata: self.metadata(&key) })
    }

    fn new_version(&self, key_id: &str, now: sesame_api::Timestamp) -> Result<KeyVersion> {
        let id = random::uuid().map_err(Error::internal)?.to_lowercase();
        let material = KeyMaterial::generate().map_err(Error::internal)?;
        let wrapped = self.deps.root.wrap(&wrap_context(key_id, &id), material.expose_secret()).map_err(Error::internal)?;
        Ok(KeyVersion { id, created: now, wrapped })
    }

    /// Adds a version and makes it primary (CreateKeyVersion, automatic rotation).
    pub async fn rotate(&self, key_id: &str) -> Result<Key> {
        let now = self.deps.clock.now();
        self.modify(&KeyRef::Id(key_id.to_string()), |k| {
            refuse_pending_deletion(k)?;
            if k.versions.len() >= MAX_KEY_VERSIONS {
                return Err(Error::LimitExceeded(format!("a key has at most {MAX_KEY_VERSIONS} versions")));
            }
            let v = self.new_version(&k.id, now)?;
            k.primary_version = v.id.clone();
            k.versions.push(v);
            k.last_rotation = now;
            k.next_rotation = k.rotation_interval.map(|s| now.plus_seconds(s));
            Ok(())
        })
        .await
    }

    /// Deletes keys whose window has ended and rotates keys that are due. Returns how many
    /// keys it acted on. Called by the scheduler.
    pub async fn run_due(&self) -> Result<usize> {
        let now = self.deps.clock.now();
        let mut done = 0;
        for id in self.deps.store.keys_due(now).await? {
            let Some(key) = self.deps.store.get_key(&id).await? else { continue };
            match key.state {
                KeyState::PendingDeletion if key.delete_date.is_some_and(|d| d <= now) => {
                    self.deps.store.delete_key(&id).await?;
                    self.deps.caches.keys.remove(&id);
                    tracing::info!(key = %id, "deleted key at the end of its deletion window");
                    done += 1;
                }
                KeyState::Enabled | KeyState::Disabled if key.next_rotation.is_some_and(|n| n <= now) => {
                    self.rotate(&id).await?;
                    tracing::info!(key = %id, "rotated key automatically");
                    done += 1;
                }
                _ => {}
            }
        }
        Ok(done)
    }

    async fn set_enabled(&self, key: &KeyRef, enabled: bool) -> Result<Value> {
        self.modify(key, |k| {
            if k.state == KeyState::PendingDeletion {
                return Err(Error::StateModifiedFailed {
                    key: k.id.clone(),
                    reason: "the key is pending deletion; cancel the deletion first".into(),
                });
            }
            k.state = if enabled { KeyState::Enabled } else { KeyState::Disabled };
            Ok(())
        })
        .await?;
        to_value(Empty {})
    }

    /// Loads, changes and writes a key under optimistic concurrency, retrying lost races.
    async fn modify(&self, key: &KeyRef, mut change: impl FnMut(&mut Key) -> Result<()>) -> Result<Key> {
        for _ in 0..UPDATE_ATTEMPTS {
            let mut k = self.resolve(key).await?;
            change(&mut k)?;
            match self.deps.store.update_key(&k).await {
                Ok(()) => {
                    self.deps.caches.keys.remove(&k.id);
                    k.revision += 1;
                    return Ok(k);
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Throttling(format!("key {} is being changed by other requests; retry", key.as_str())))
    }

    pub async fn resolve(&self, key: &KeyRef) -> Result<Key> {
        let id = match key {
            KeyRef::Id(id) => id.clone(),
            KeyRef::Alias(name) => self.deps.store.get_alias(name).await?.ok_or_else(|| Error::AliasNotFound(name.clone()))?.key_id,
        };
        self.deps.store.get_key(&id).await?.ok_or(Error::KeyNotFound(id))
    }

    /// A CMK version's material, unwrapped once and kept (it never changes), prepared for use.
    fn material(&self, key: &Key, version: &KeyVersion) -> Result<std::sync::Arc<Cipher>> {
        if let Some(m) = self.deps.caches.material.get(&(key.id.as_str(), version.id.as_str()) as &dyn Pair) {
            return Ok(m);
        }
        let m = self.deps.root.unwrap_key(&wrap_context(&key.id, &version.id), &version.wrapped).map_err(Error::internal)?;
        Ok(self.deps.caches.material.put((key.id.clone(), version.id.clone()), Cipher::new(&m).map_err(Error::internal)?))
    }

    /// A key and its tags by id through the cache: the read path of authorization and of the
    /// cryptographic operations. Changes that must see the stored key (`modify`) use `resolve`.
    async fn cached_key(&self, id: &str) -> Result<std::sync::Arc<KeyEntry>> {
        let load = async {
            let key = self.deps.store.get_key(id).await?.ok_or_else(|| Error::KeyNotFound(id.to_string()))?;
            let tags = self.deps.store.get_tags("key", id).await?.into_iter().map(|t| (t.tag_key, t.tag_value)).collect();
            Ok(KeyEntry { key, tags })
        };
        self.deps.caches.keys.get_or_load(id, load).await
    }

    /// The key through the cache, as Encrypt and GenerateDataKey use it (sealing a secret's new
    /// version too: at most `SHARED_TTL` old when another process changed the key).
    pub(crate) async fn resolve_cached(&self, key: &KeyRef) -> Result<std::sync::Arc<KeyEntry>> {
        let id = match key {
            KeyRef::Id(id) => id.clone(),
            KeyRef::Alias(name) => self.deps.store.get_alias(name).await?.ok_or_else(|| Error::AliasNotFound(name.clone()))?.key_id,
        };
        self.cached_key(&id).await
    }

    /// Seals with the key's primary version; the key must be enabled.
    pub fn seal_with_primary(&self, key: &Key, context: &EncryptionContext, plaintext: &[u8]) -> Result<(Vec<u8>, String)> {
        require_enabled(key)?;
        let version = key.version(&key.primary_version).ok_or_else(|| Error::internal("primary key version missing"))?;
        let material = self.material(key, version)?;
        let blob = blob::seal(&material, &key.id, &version.id, context.canonical_bytes(), plaintext).map_err(Error::internal)?;
        Ok((blob, version.id.clone()))
    }

    /// Opens a blob with the key version it names; that key must be enabled.
    pub async fn open_blob(&self, data: &[u8], context: &EncryptionContext) -> Result<(Vec<u8>, String, String)> {
        let header = blob::parse(data).map_err(|_| Error::InvalidCiphertext)?;
        let entry = self.cached_key(header.key_id).await?;
        let key = &entry.key;
        let version = usable_version(key, header.key_version_id)?;
        let material = self.material(key, version)?;
        let plain = blob::open(&material, data, &header, context.canonical_bytes()).map_err(|_| Error::InvalidCiphertext)?;
        Ok((plain, key.id.clone(), version.id.clone()))
    }

    /// Checks that the CMK version a blob names could open it now (the key enabled, the version
    /// there), without opening it: for a reader that holds what the blob seals already.
    pub async fn require_usable(&self, data: &[u8]) -> Result<()> {
        let header = blob::parse(data).map_err(|_| Error::InvalidCiphertext)?;
        let entry = self.cached_key(header.key_id).await?;
        usable_version(&entry.key, header.key_version_id).map(|_| ())
    }

    async fn data_key(&self, spec: DataKeySpec, with_plaintext: bool) -> Result<Value> {
        let entry = self.resolve_cached(&spec.key).await?;
        let key = &entry.key;
        let mut dk = vec![0u8; spec.bytes];
        random::fill(&mut dk).map_err(Error::internal)?;
        let dk = Zeroizing(dk);
        let (blob, version) = self.seal_with_primary(key, &spec.context, &dk.0)?;
        to_value(DataKeyResponse {
            ciphertext_blob: b64(&blob),
            key_id: key.id.clone(),
            key_version_id: version,
            plaintext: with_plaintext.then(|| Sensitive::new(b64(&dk.0))),
        })
    }

    async fn list_aliases(&self, key_id: Option<&str>, page: Page) -> Result<Value> {
        let (items, total) = self.deps.store.list_aliases(key_id, page.offset(), page.size).await?;
        let alias = items
            .into_iter()
            .map(|a| AliasInfo { alias_arn: self.deps.realm.arn(&a.name), alias_name: a.name, key_id: a.key_id })
            .collect();
        to_value(ListAliasesResponse { aliases: AliasList { alias }, page_number: page.number, page_size: page.size, total_count: total })
    }

    pub fn metadata(&self, k: &Key) -> KeyMetadata {
        KeyMetadata {
            key_id: k.id.clone(),
            arn: self.deps.realm.arn(&format!("key/{}", k.id)),
            dkms_instance_id: k.instance_id.clone(),
            key_state: k.state.as_str().into(),
            key_spec: "Aliyun_AES_256".into(),
            key_usage: "ENCRYPT/DECRYPT".into(),
            origin: "Aliyun_KMS".into(),
            protection_level: "SOFTWARE".into(),
            description: k.description.clone(),
            creator: k.creator.clone(),
            creation_date: k.created.to_string(),
            primary_key_version: k.primary_version.clone(),
            automatic_rotation: if k.rotation_interval.is_some() { "Enabled" } else { "Disabled" }.into(),
            last_rotation_date: k.last_rotation.to_string(),
            next_rotation_date: k.next_rotation.map(|t| t.to_string()),
            rotation_interval: k.rotation_interval.map(|s| format!("{s}s")),
            delete_date: k.delete_date.map(|t| t.to_string()),
            material_expire_time: String::new(),
            deletion_protection: "Disabled".into(),
        }
    }
}

fn version_info(key: &Key, v: &KeyVersion) -> KeyVersionInfo {
    KeyVersionInfo { key_id: key.id.clone(), key_version_id: v.id.clone(), creation_date: v.created.to_string() }
}

/// The version of an enabled key that a blob names.
fn usable_version<'k>(key: &'k Key, version_id: &str) -> Result<&'k KeyVersion> {
    require_enabled(key)?;
    key.version(version_id).ok_or_else(|| Error::KeyVersionNotFound(version_id.to_string()))
}

fn require_enabled(key: &Key) -> Result<()> {
    match key.state {
        KeyState::Enabled => Ok(()),
        KeyState::Disabled => Err(Error::KeyDisabled(key.id.clone())),
        KeyState::PendingDeletion => Err(Error::KeyPendingDeletion(key.id.clone())),
    }
}

fn refuse_pending_deletion(key: &Key) -> Result<()> {
    if key.state == KeyState::PendingDeletion {
        return Err(Error::StateModifiedFailed { key: key.id.clone(), reason: "the key is pending deletion".into() });
    }
    Ok(())
}

/// The empty response body (`{"RequestId": …}` once rendered).
pub(crate) fn empty() -> Empty {
    Empty {}
}

/// Zeroes a byte buffer when it goes out of scope.
struct Zeroizing(Vec<u8>);

impl Drop for Zeroizing {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}
