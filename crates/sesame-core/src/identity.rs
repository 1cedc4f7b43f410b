//! Access keys: created with a random secret that is shown once and stored sealed by the root
//! key; looked up by the gateway to check request signatures.

use crate::Deps;
use crate::model::AccessKey;
use sesame_api::Error;
use sesame_api::error::Result;
use sesame_crypto::random;
use std::fmt;
use zeroize::Zeroize;

pub const ADMIN_USER: &str = "admin";

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
    pub id: String,
    pub user: String,
    pub enabled: bool,
    pub secret: SecretKey,
}

pub struct IdentityService {
    deps: Deps,
}

fn seal_context(id: &str) -> Vec<u8> {
    format!("sesame/access-key/{id}").into_bytes()
}

impl IdentityService {
    pub fn new(deps: Deps) -> Self {
        IdentityService { deps }
    }

    /// Creates the first admin access key when there is none.
    pub(crate) async fn bootstrap_admin(&self) -> Result<Option<NewAccessKey>> {
        if self.deps.store.count_access_keys().await? > 0 {
            return Ok(None);
        }
        self.create_access_key(ADMIN_USER).await.map(Some)
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
    pub async fn service_key(&self, user: &str) -> Result<Credential> {
        let meta = format!("service-key/{user}");
        if let Some(id) = self.deps.store.meta_get(&meta).await?
            && let Some(c) = self.credential(&id).await?
        {
            return Ok(c);
        }
        let new = self.create_access_key(user).await?;
        self.deps.store.meta_set(&meta, &new.id).await?;
        Ok(Credential { id: new.id, user: new.user, enabled: true, secret: new.secret })
    }

    /// The credential behind an access key id, or `None` when there is no such key.
    pub async fn credential(&self, id: &str) -> Result<Option<Credential>> {
        let Some(row) = self.deps.store.get_access_key(id).await? else { return Ok(None) };
        let bytes = self.deps.root.unwrap_bytes(&seal_context(&row.id), &row.sealed_secret).map_err(Error::internal)?;
        let secret = String::from_utf8(bytes).map_err(|_| Error::internal("access key secret is not UTF-8"))?;
        Ok(Some(Credential { id: row.id, user: row.user, enabled: row.enabled, secret: SecretKey(secret) }))
    }
}
