//! The HTTP header names of Alibaba Cloud's gateway protocol that the server reads or writes, in
//! one place. Constants: a lookup by `&str` parses and checks the name on every call.

use hyper::header::{HOST, HeaderName};

pub const X_ACS_ACTION: HeaderName = HeaderName::from_static("x-acs-action");
pub const X_ACS_VERSION: HeaderName = HeaderName::from_static("x-acs-version");
pub const X_ACS_DATE: HeaderName = HeaderName::from_static("x-acs-date");
pub const X_ACS_SIGNATURE_NONCE: HeaderName = HeaderName::from_static("x-acs-signature-nonce");
pub const X_ACS_CONTENT_SHA256: HeaderName = HeaderName::from_static("x-acs-content-sha256");
/// Written on every answer.
pub const X_ACS_REQUEST_ID: HeaderName = HeaderName::from_static("x-acs-request-id");

/// The headers a V3 signature must cover.
pub const V3_REQUIRED_SIGNED: [HeaderName; 4] = [HOST, X_ACS_DATE, X_ACS_SIGNATURE_NONCE, X_ACS_CONTENT_SHA256];
