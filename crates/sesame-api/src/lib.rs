//! Sesame's wire vocabulary, and nothing else.
//!
//! This crate owns everything a client of the Alibaba Cloud KMS OpenAPI (2016-01-20) can see:
//! the action names, the typed request each action parses into, the response shapes, the error
//! codes with their HTTP statuses, the time format, and the JSON/XML renderers. It does no I/O
//! and knows nothing about storage or cryptography, so that the wire contract lives in one place.

pub mod actions;
pub mod dms;
pub mod error;
pub mod kms;
pub mod params;
pub mod ram;
pub mod rds;
pub mod render;
pub mod secrets;
pub mod time;

pub use error::{Error, InternalError};
pub use params::Params;
pub use time::Timestamp;

/// The only API version this server speaks.
pub const KMS_API_VERSION: &str = "2016-01-20";
