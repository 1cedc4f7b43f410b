//! Sesame's domain and services, with no HTTP types.
//!
//! It owns the model (KMS instances, customer master keys and their versions, aliases, access
//! keys), the [`Store`] and [`Clock`] traits that the outside implements, and the services the
//! gateway calls: [`KeyService`] for the key actions and [`IdentityService`] for access keys.
//! A service takes a typed request from `sesame-api` and returns a response ready to render;
//! every failure is already an [`sesame_api::Error`].

pub mod accounts;
pub mod audit;
pub mod authz;
pub mod cache;
pub mod clock;
pub mod dbs;
pub mod engine;
pub mod identity;
pub mod keys;
pub mod model;
pub mod policy;
pub mod rotation;
pub mod secrets;
pub mod store;

pub use clock::{Clock, ManualClock, SystemClock};
pub use dbs::DbService;
pub use identity::IdentityService;
pub use keys::KeyService;
pub use secrets::SecretService;
pub use store::{Store, StoreError};

use sesame_crypto::RootKey;
use std::sync::Arc;

/// A typed response as the JSON value the gateway renders.
pub(crate) fn to_value<T: serde::Serialize>(v: T) -> Result<serde_json::Value, sesame_api::Error> {
    serde_json::to_value(v).map_err(sesame_api::Error::internal)
}

/// Where resources live, for ARNs: `acs:kms:{region}:{account}:…`.
#[derive(Debug, Clone)]
pub struct Realm {
    pub region: String,
    pub account_id: String,
}

impl Realm {
    pub fn arn(&self, resource: &str) -> String {
        self.arn_of(&[resource])
    }

    /// The ARN of the KMS resource whose name is the pieces of `rest`, joined.
    pub fn arn_of(&self, rest: &[&str]) -> String {
        self.arn_in("kms", rest)
    }

    /// The ARN of a resource of `product` in this realm.
    pub fn arn_in(&self, product: &str, rest: &[&str]) -> String {
        sesame_api::actions::arn(product, &self.region, &self.account_id, rest)
    }
}

/// Who is calling and from where, established by the gateway's authentication. Shared text:
/// a request copies these into its context and its audit event, and each copy was an allocation.
#[derive(Debug, Clone)]
pub struct Caller {
    pub access_key_id: std::sync::Arc<str>,
    pub user: std::sync::Arc<str>,
    pub source_ip: std::sync::Arc<str>,
}

/// What every service call needs besides its request.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub request_id: String,
    pub caller: Caller,
}

/// Operational limits an operator may change.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Rotations of one secret per hour (RotateSecret's limit; Alibaba's is 50).
    pub max_rotations_per_hour: usize,
    /// How long a worker holds a rotation before another may take it over (its holder renews
    /// it at every step; a crashed holder's lease runs out).
    pub rotation_lease_secs: i64,
    /// The wait before the first retry of a failed rotation; it doubles per failure, up to an hour.
    pub first_retry_secs: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_rotations_per_hour: rotation::MAX_ROTATIONS_PER_HOUR,
            rotation_lease_secs: 60,
            first_retry_secs: rotation::FIRST_RETRY_SECS,
        }
    }
}

/// The shared parts every service is built from.
#[derive(Clone)]
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub root: Arc<RootKey>,
    pub clock: Arc<dyn Clock>,
    pub realm: Realm,
    pub limits: Limits,
    /// Shared by every service of this process (`cache.rs`).
    pub caches: Arc<cache::Caches>,
}

/// All services, built once at start-up.
pub struct Services {
    pub keys: KeyService,
    pub secrets: SecretService,
    pub dbs: DbService,
    pub identity: IdentityService,
    pub audit: Arc<audit::AuditTrail>,
    pub authz: authz::Authorizer,
    pub deps: Deps,
}

/// The built-in user DMS signs its KMS calls as.
pub const SERVICE_USER_DMS: &str = "sesame-dms";

/// What start-up created, for the operator to see once.
pub struct Bootstrap {
    pub default_instance: String,
    pub admin_key: Option<identity::NewAccessKey>,
}

const META_ACCOUNT: &str = "account_id";
pub(crate) const META_DEFAULT_INSTANCE: &str = "default_instance";

impl Services {
    /// Opens the services over a store, creating on the first start the account id, the
    /// default KMS instance and the first admin access key.
    pub async fn start(
        store: Arc<dyn Store>,
        root: Arc<RootKey>,
        clock: Arc<dyn Clock>,
        region: String,
        engines: Arc<dyn engine::EngineFactory>,
        limits: Limits,
    ) -> Result<(Services, Bootstrap), sesame_api::Error> {
        let account_id = match store.meta_get(META_ACCOUNT).await? {
            Some(a) => a,
            None => {
                let digits = sesame_crypto::random::string_from(b"0123456789", 16).map_err(sesame_api::Error::internal)?;
                store.meta_set(META_ACCOUNT, &digits).await?;
                digits
            }
        };
        let caches = Arc::new(cache::Caches::for_store(store.sole_writer()));
        let deps = Deps { store, root, clock, realm: Realm { region, account_id }, limits, caches };
        let keys = KeyService::new(deps.clone());
        let audit = Arc::new(audit::AuditTrail::start(deps.clone()).await?);
        let identity = IdentityService::new(deps.clone(), audit.clone());
        let secrets = SecretService::new(deps.clone(), engines.clone());
        let dbs = DbService::new(deps.clone(), engines);
        let default_instance = match deps.store.meta_get(META_DEFAULT_INSTANCE).await? {
            Some(id) => id,
            None => {
                let id = keys.create_instance().await?;
                deps.store.meta_set(META_DEFAULT_INSTANCE, &id).await?;
                id
            }
        };
        let admin_key = identity.bootstrap_admin().await?;
        let authz = authz::Authorizer::new(deps.clone());
        Ok((Services { keys, secrets, dbs, identity, audit, authz, deps }, Bootstrap { default_instance, admin_key }))
    }
}
