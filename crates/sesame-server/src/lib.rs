//! Sesame's gateway: `POST /` (and `GET /`) → authenticate (signature, nonce, clock skew) →
//! parse the action into a typed request → one service call → one renderer.
//!
//! It also owns start-up (data directory, root key, store, TLS certificate), the accept loop
//! with graceful shutdown, and the scheduler that runs due work (key deletion, rotation).

pub mod auth;
pub mod gateway;
pub mod names;
pub mod nonces;
pub mod scheduler;
pub mod startup;
pub mod tls;

pub use startup::{DmsConfig, RemoteKms, Running, ServerConfig, StartupError, TlsMode, start};
