//! The HTTP header names of Alibaba Cloud's gateway protocol that the server reads or writes, as
//! constants: a lookup by `&str` parses and checks the name on every call. The names themselves
//! are spelled once, in `sesame_crypto::sign::headers`, which the client writes from.

use hyper::header::{HOST, HeaderName};
use sesame_crypto::sign::headers;

pub const X_ACS_ACTION: HeaderName = HeaderName::from_static(headers::X_ACS_ACTION);
pub const X_ACS_VERSION: HeaderName = HeaderName::from_static(headers::X_ACS_VERSION);
pub const X_ACS_DATE: HeaderName = HeaderName::from_static(headers::X_ACS_DATE);
pub const X_ACS_SIGNATURE_NONCE: HeaderName = HeaderName::from_static(headers::X_ACS_SIGNATURE_NONCE);
pub const X_ACS_CONTENT_SHA256: HeaderName = HeaderName::from_static(headers::X_ACS_CONTENT_SHA256);
/// Written on every answer.
pub const X_ACS_REQUEST_ID: HeaderName = HeaderName::from_static(headers::X_ACS_REQUEST_ID);

/// The headers a V3 signature must cover.
pub const V3_REQUIRED_SIGNED: [HeaderName; 4] = [HOST, X_ACS_DATE, X_ACS_SIGNATURE_NONCE, X_ACS_CONTENT_SHA256];
