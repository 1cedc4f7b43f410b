//! Request authentication: ACS3-HMAC-SHA256 (V3) from the `Authorization` header, or
//! HMAC-SHA1 (V1) from the `Signature` parameter; then clock skew and nonce replay.

use crate::names::{V3_REQUIRED_SIGNED, X_ACS_CONTENT_SHA256, X_ACS_DATE, X_ACS_SIGNATURE_NONCE};
use crate::nonces::{Nonce, NonceCache};
use hyper::header::{AUTHORIZATION, HeaderMap, HeaderName};
use sesame_api::{Error, Timestamp};
use sesame_core::identity::Credential;
use sesame_core::{Caller, IdentityService};
use sesame_crypto::sign::{self, KeyEncoding};
use std::borrow::Cow;

/// How far a request's timestamp may be from the server's clock, either way.
pub const MAX_SKEW_SECS: i64 = 15 * 60;
/// Everything authentication looks at.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    pub query: &'a [(Cow<'a, str>, Cow<'a, str>)],
    /// Query plus form body, in arrival order (V1 signs both).
    pub all_params: &'a [(Cow<'a, str>, Cow<'a, str>)],
    pub body: &'a [u8],
    pub source_ip: &'a std::sync::Arc<str>,
}

fn header<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A signed header's first value by the lower-case name the `Authorization` header lists. The
/// names come from the request, so they are matched against the few headers it has rather than
/// parsed into header names for a lookup each.
fn signed_header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.as_str() == name).and_then(|(_, v)| v.to_str().ok())
}

fn param<'a>(params: &'a [(Cow<'_, str>, Cow<'_, str>)], name: &str) -> Option<&'a str> {
    params.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_ref())
}

fn check_timestamp(value: Option<&str>, now: Timestamp) -> Result<Timestamp, Error> {
    let v = value.ok_or_else(|| Error::IllegalTimestamp("no timestamp was sent".into()))?;
    let t = Timestamp::parse_iso8601(v).ok_or_else(|| Error::IllegalTimestamp(format!("{v:?} is not YYYY-MM-DDThh:mm:ssZ")))?;
    if (t.0 - now.0).abs() > MAX_SKEW_SECS {
        return Err(Error::IllegalTimestamp(format!("{v} is more than 15 minutes from the server time {now}")));
    }
    Ok(t)
}

async fn credential(identity: &IdentityService, id: &str) -> Result<std::sync::Arc<Credential>, Error> {
    let cred = identity.credential(id).await?.ok_or(Error::InvalidAccessKeyId)?;
    if !cred.enabled {
        return Err(Error::AccessKeyDisabled);
    }
    Ok(cred)
}

/// Authenticates a request and returns its caller.
pub async fn authenticate(
    req: &SignedRequest<'_>,
    identity: &IdentityService,
    nonces: &NonceCache,
    now: Timestamp,
) -> Result<Caller, Error> {
    let (cred, ts, nonce) = if let Some(auth) = header(req.headers, &AUTHORIZATION) {
        verify_v3(req, auth, identity, now).await?
    } else if param(req.all_params, "Signature").is_some() {
        verify_v1(req, identity, now).await?
    } else {
        return Err(Error::IncompleteSignature(
            "the request is not signed: send an ACS3-HMAC-SHA256 Authorization header or a V1 Signature parameter".into(),
        ));
    };
    // Only after the signature is good, so unsigned traffic cannot fill the cache.
    match nonces.check_and_insert(&cred.id, &nonce, ts.0 + MAX_SKEW_SECS, now.0) {
        Nonce::Fresh => {}
        Nonce::Replayed => return Err(Error::SignatureNonceUsed),
        Nonce::TooOld => {
            return Err(Error::IllegalTimestamp(format!(
                "{ts} is older than the server can check for replays under its current load; sign the request again with the current time"
            )));
        }
    }
    Ok(Caller { access_key_id: cred.id.clone(), user: cred.user.clone(), source_ip: req.source_ip.clone() })
}

async fn verify_v3(
    req: &SignedRequest<'_>,
    auth: &str,
    identity: &IdentityService,
    now: Timestamp,
) -> Result<(std::sync::Arc<Credential>, Timestamp, String), Error> {
    let parsed = sign::parse_v3_authorization(auth).ok_or_else(|| {
        Error::IncompleteSignature("the Authorization header must be 'ACS3-HMAC-SHA256 Credential=…,SignedHeaders=…,Signature=…'".into())
    })?;
    for required in &V3_REQUIRED_SIGNED {
        let required = required.as_str();
        if !parsed.signed_headers.contains(&required) {
            return Err(Error::IncompleteSignature(format!("SignedHeaders must include {required}")));
        }
    }
    let payload_hash = header(req.headers, &X_ACS_CONTENT_SHA256).unwrap_or_default();
    if !sesame_crypto::is_sha256_hex_of(payload_hash, req.body) {
        return Err(Error::IncompleteSignature("x-acs-content-sha256 is not the SHA-256 of the request body".into()));
    }
    let ts = check_timestamp(header(req.headers, &X_ACS_DATE), now)?;
    let nonce = header(req.headers, &X_ACS_SIGNATURE_NONCE)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Error::IncompleteSignature("x-acs-signature-nonce is empty".into()))?;
    let cred = credential(identity, parsed.access_key_id).await?;
    let string_to_sign = |enc| {
        sign::v3_string_to_sign(
            req.method,
            req.path,
            req.query,
            &parsed.signed_headers,
            |h| signed_header(req.headers, h),
            payload_hash,
            enc,
        )
    };
    let ok = sign::v3_verify(&cred.keys, &string_to_sign(KeyEncoding::Raw), parsed.signature)
        // The tea SDK leaves query keys raw; a strict RFC 3986 signer encodes them.
        || (req.query.iter().any(|(k, _)| !sign::is_unreserved(k))
            && sign::v3_verify(&cred.keys, &string_to_sign(KeyEncoding::Encoded), parsed.signature));
    if !ok {
        return Err(Error::SignatureDoesNotMatch);
    }
    Ok((cred, ts, nonce.to_string()))
}

async fn verify_v1(
    req: &SignedRequest<'_>,
    identity: &IdentityService,
    now: Timestamp,
) -> Result<(std::sync::Arc<Credential>, Timestamp, String), Error> {
    let p = req.all_params;
    let method = param(p, "SignatureMethod").unwrap_or_default();
    if method != "HMAC-SHA1" {
        return Err(Error::IncompleteSignature(format!("SignatureMethod must be HMAC-SHA1, not {method:?}")));
    }
    if let Some(v) = param(p, "SignatureVersion").filter(|v| *v != "1.0") {
        return Err(Error::IncompleteSignature(format!("SignatureVersion must be 1.0, not {v:?}")));
    }
    let ak =
        param(p, "AccessKeyId").filter(|v| !v.is_empty()).ok_or_else(|| Error::IncompleteSignature("AccessKeyId is missing".into()))?;
    let nonce = param(p, "SignatureNonce")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::IncompleteSignature("SignatureNonce is missing".into()))?;
    let ts = check_timestamp(param(p, "Timestamp"), now)?;
    let cred = credential(identity, ak).await?;
    let signature = param(p, "Signature").unwrap_or_default();
    if !sign::v1_verify(&cred.keys, &sign::v1_string_to_sign(req.method, p), signature) {
        return Err(Error::SignatureDoesNotMatch);
    }
    Ok((cred, ts, nonce.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_outside_fifteen_minutes_are_illegal() {
        let now = Timestamp::parse_iso8601("2026-11-28T12:00:00Z").unwrap();
        assert!(check_timestamp(Some("2026-11-28T12:14:59Z"), now).is_ok());
        assert!(check_timestamp(Some("2026-11-28T11:45:00Z"), now).is_ok());
        for bad in [Some("2026-11-28T12:15:01Z"), Some("2026-11-28T11:44:59Z"), Some("yesterday"), None] {
            assert_eq!(check_timestamp(bad, now).unwrap_err().code(), "IllegalTimestamp");
        }
    }
}
