//! The one storage interface. Backends (SQLite now, PostgreSQL later) live in `sesame-store`
//! and pass the same conformance suite.

use crate::model::{AccessKey, Alias, Key, KmsInstance};
use async_trait::async_trait;
use sesame_api::Timestamp;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An optimistic update lost to a concurrent one; the caller reloads and retries.
    #[error("concurrent modification")]
    Conflict,
    /// A uniqueness constraint refused the write.
    #[error("already exists")]
    Duplicate,
    #[error("storage backend: {0}")]
    Backend(String),
}

impl From<StoreError> for sesame_api::Error {
    fn from(e: StoreError) -> Self {
        sesame_api::Error::internal(e)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn meta_get(&self, key: &str) -> StoreResult<Option<String>>;
    async fn meta_set(&self, key: &str, value: &str) -> StoreResult<()>;

    async fn insert_instance(&self, instance: &KmsInstance) -> StoreResult<()>;
    async fn get_instance(&self, id: &str) -> StoreResult<Option<KmsInstance>>;
    /// A page of instances, oldest first, and the total count.
    async fn list_instances(&self, offset: i64, limit: i64) -> StoreResult<(Vec<KmsInstance>, i64)>;

    /// Inserts a key with its versions. `Duplicate` if the id exists.
    async fn insert_key(&self, key: &Key) -> StoreResult<()>;
    async fn get_key(&self, id: &str) -> StoreResult<Option<Key>>;
    /// Writes `key` if the stored revision is still `key.revision`, storing `revision + 1` and
    /// any versions not stored yet, in one transaction. `Conflict` otherwise.
    async fn update_key(&self, key: &Key) -> StoreResult<()>;
    /// Removes a key, its versions and its aliases.
    async fn delete_key(&self, id: &str) -> StoreResult<()>;
    /// A page of key ids, oldest first, and the total count.
    async fn list_keys(&self, offset: i64, limit: i64) -> StoreResult<(Vec<String>, i64)>;
    /// Keys whose deletion date or next rotation date is at or before `now`.
    async fn keys_due(&self, now: Timestamp) -> StoreResult<Vec<String>>;

    /// `Duplicate` if the alias exists.
    async fn insert_alias(&self, alias: &Alias) -> StoreResult<()>;
    /// Points an existing alias at another key; false if it does not exist.
    async fn update_alias(&self, name: &str, key_id: &str) -> StoreResult<bool>;
    /// False if it did not exist.
    async fn delete_alias(&self, name: &str) -> StoreResult<bool>;
    async fn get_alias(&self, name: &str) -> StoreResult<Option<Alias>>;
    /// A page of aliases by name, of one key or of all, and the total count.
    async fn list_aliases(&self, key_id: Option<&str>, offset: i64, limit: i64) -> StoreResult<(Vec<Alias>, i64)>;

    async fn insert_access_key(&self, key: &AccessKey) -> StoreResult<()>;
    async fn get_access_key(&self, id: &str) -> StoreResult<Option<AccessKey>>;
    async fn count_access_keys(&self) -> StoreResult<i64>;
}
