//! Storage backends behind `sesame_core::Store`, chosen by URL scheme (`sqlite://…`), with
//! versioned migrations and one conformance suite that every backend must pass.

pub mod conformance;
pub mod sqlite;
pub mod worker;

pub use sqlite::SqliteStore;

use sesame_core::{Store, StoreError};
use std::sync::Arc;

/// Opens the store a URL names: `sqlite:///path/to/file.db` or `sqlite::memory:`.
pub fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        return Ok(Arc::new(SqliteStore::open(std::path::Path::new(path))?));
    }
    if url == "sqlite::memory:" {
        return Ok(Arc::new(SqliteStore::open_in_memory()?));
    }
    Err(StoreError::Backend(format!("unsupported store URL scheme in {url:?}; use sqlite://PATH")))
}
