//! The one place where an error becomes an Alibaba error code and an HTTP status.
//!
//! `Error::status` and `Error::code` are exhaustive matches without a catch-all arm, so a new
//! variant does not compile until it is mapped. Messages are fixed per variant, parameterised
//! only by names the client sent (a parameter name, a resource id); internal causes are kept in
//! [`InternalError`] for the log and never rendered.

use std::fmt;

/// Any failure a request can end in, in the wire vocabulary.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // --- request shape -------------------------------------------------------------------
    #[error("The parameter \"{0}\" is needed but not provided.")]
    MissingParameter(String),
    #[error("The specified parameter \"{name}\" is not valid: {reason}")]
    InvalidParameter { name: String, reason: String },
    #[error("The request body is larger than {limit} bytes.")]
    RequestTooLarge { limit: usize },
    #[error("The action \"{0}\" is not supported by this server.")]
    InvalidAction(String),
    #[error("The API version \"{0}\" is not supported; use 2016-01-20.")]
    InvalidVersion(String),
    #[error("The HTTP method {0} is not supported; use POST or GET.")]
    UnsupportedHttpMethod(String),

    // --- authentication ------------------------------------------------------------------
    #[error("The request signature does not conform to Alibaba Cloud standards: {0}")]
    IncompleteSignature(String),
    #[error("The request signature does not match the signature computed with your AccessKey secret.")]
    SignatureDoesNotMatch,
    #[error("The signature nonce has already been used within the last 15 minutes.")]
    SignatureNonceUsed,
    #[error("The request timestamp is missing, malformed or more than 15 minutes from the server time: {0}")]
    IllegalTimestamp(String),
    #[error("The AccessKey ID provided does not exist in our records.")]
    InvalidAccessKeyId,
    #[error("This AccessKey is not enabled.")]
    AccessKeyDisabled,
    #[error("You are not authorized to perform {action} on {resource}.")]
    NoPermission { action: String, resource: String },

    // --- keys ------------------------------------------------------------------------------
    #[error("The specified key \"{0}\" is not found.")]
    KeyNotFound(String),
    #[error("The specified key version \"{0}\" is not found.")]
    KeyVersionNotFound(String),
    #[error("The specified alias \"{0}\" is not found.")]
    AliasNotFound(String),
    #[error("The alias \"{0}\" already exists.")]
    AliasAlreadyExists(String),
    #[error("The request was rejected because the key \"{0}\" is disabled.")]
    KeyDisabled(String),
    #[error("The request was rejected because the key \"{0}\" is pending deletion.")]
    KeyPendingDeletion(String),
    #[error("The key state of \"{key}\" cannot be changed: {reason}")]
    StateModifiedFailed { key: String, reason: String },
    #[error("The ciphertext is invalid, was not produced by this service, or the encryption context does not match.")]
    InvalidCiphertext,

    // --- generic resources -----------------------------------------------------------------
    #[error("The resource is not found: {0}")]
    ResourceNotFound(String),
    #[error("The resource already exists: {0}")]
    ResourceExist(String),
    #[error("The resource is planned to be deleted: {0}")]
    ResourceInDeleteWindow(String),
    #[error("The request was rejected because a limit was exceeded: {0}")]
    LimitExceeded(String),
    #[error("The request was denied due to request throttling: {0}")]
    Throttling(String),
    /// A created-accounts Rds secret before its accounts exist (Sesame's code).
    #[error("The secret is not ready: {0}")]
    SecretNotReady(String),

    // --- identity (RAM) and audit ------------------------------------------------------------
    /// `code` is RAM's, e.g. `EntityNotExist.User`.
    #[error("The {what} does not exist.")]
    EntityNotExist { code: &'static str, what: String },
    #[error("The {what} already exists.")]
    EntityAlreadyExists { code: &'static str, what: String },
    #[error("The {what} cannot be deleted: {reason}")]
    DeleteConflict { code: &'static str, what: String, reason: String },
    #[error("The policy document is malformed: {0}")]
    MalformedPolicyDocument(String),
    #[error("The audit trail cannot be read: {0}")]
    AuditUnavailable(String),

    // --- database instances ------------------------------------------------------------------
    #[error("The database instance \"{0}\" is not registered.")]
    DbInstanceNotFound(String),
    #[error("The database server refused the logon: {0}")]
    DbLogonFailed(String),
    #[error("The database server cannot be reached: {0}")]
    DbUnreachable(String),
    #[error("The database server refused the request: {0}")]
    DbRefused(String),

    // --- server ------------------------------------------------------------------------------
    #[error("An internal error occurred. Quote the RequestId when reporting it.")]
    Internal(#[source] InternalError),
    #[error("The service is temporarily unavailable; try again later.")]
    Unavailable,
}

impl Error {
    pub fn invalid(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidParameter { name: name.into(), reason: reason.into() }
    }

    pub fn missing(name: impl Into<String>) -> Self {
        Error::MissingParameter(name.into())
    }

    /// Wraps an unexpected failure (storage, I/O, a broken invariant). Its text goes to the
    /// log where the request ends, never to the client.
    pub fn internal(cause: impl fmt::Display) -> Self {
        Error::Internal(InternalError(cause.to_string()))
    }

    /// The HTTP status Alibaba's gateway answers with.
    pub fn status(&self) -> u16 {
        match self {
            Error::MissingParameter(_)
            | Error::InvalidParameter { .. }
            | Error::RequestTooLarge { .. }
            | Error::InvalidVersion(_)
            | Error::IncompleteSignature(_)
            | Error::SignatureDoesNotMatch
            | Error::SignatureNonceUsed
            | Error::IllegalTimestamp(_)
            | Error::AliasAlreadyExists(_)
            | Error::InvalidCiphertext
            | Error::LimitExceeded(_)
            | Error::DbLogonFailed(_)
            | Error::DbUnreachable(_)
            | Error::DbRefused(_)
            | Error::MalformedPolicyDocument(_) => 400,
            Error::UnsupportedHttpMethod(_) | Error::AccessKeyDisabled | Error::NoPermission { .. } => 403,
            Error::InvalidAction(_)
            | Error::InvalidAccessKeyId
            | Error::KeyNotFound(_)
            | Error::KeyVersionNotFound(_)
            | Error::AliasNotFound(_)
            | Error::ResourceNotFound(_)
            | Error::DbInstanceNotFound(_)
            | Error::EntityNotExist { .. } => 404,
            Error::KeyDisabled(_)
            | Error::KeyPendingDeletion(_)
            | Error::StateModifiedFailed { .. }
            | Error::ResourceExist(_)
            | Error::ResourceInDeleteWindow(_)
            | Error::SecretNotReady(_)
            | Error::EntityAlreadyExists { .. }
            | Error::DeleteConflict { .. } => 409,
            Error::Throttling(_) => 429,
            Error::Internal(_) | Error::AuditUnavailable(_) => 500,
            Error::Unavailable => 503,
        }
    }

    /// The Alibaba error code (`Code` in the body).
    pub fn code(&self) -> &'static str {
        match self {
            Error::MissingParameter(_) => "MissingParameter",
            Error::InvalidParameter { .. } | Error::RequestTooLarge { .. } => "InvalidParameter",
            Error::InvalidAction(_) => "InvalidAction.NotFound",
            Error::InvalidVersion(_) => "InvalidVersion",
            Error::UnsupportedHttpMethod(_) => "UnsupportedHTTPMethod",
            Error::IncompleteSignature(_) => "IncompleteSignature",
            Error::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            Error::SignatureNonceUsed => "SignatureNonceUsed",
            Error::IllegalTimestamp(_) => "IllegalTimestamp",
            Error::InvalidAccessKeyId => "InvalidAccessKeyId.NotFound",
            Error::AccessKeyDisabled => "Forbidden.AccessKey",
            Error::NoPermission { .. } => "Forbidden.NoPermission",
            Error::KeyNotFound(_) => "Forbidden.KeyNotFound",
            Error::KeyVersionNotFound(_) => "Forbidden.KeyVersionNotFound",
            Error::AliasNotFound(_) => "Forbidden.AliasNotFound",
            Error::AliasAlreadyExists(_) => "AliasAlreadyExists",
            Error::KeyDisabled(_) => "Rejected.Disabled",
            Error::KeyPendingDeletion(_) => "Rejected.PendingDeletion",
            Error::StateModifiedFailed { .. } => "Rejected.StateModifiedFailed",
            Error::InvalidCiphertext => "InvalidCiphertext",
            Error::ResourceNotFound(_) => "Forbidden.ResourceNotFound",
            Error::ResourceExist(_) => "Rejected.ResourceExist",
            Error::ResourceInDeleteWindow(_) => "Rejected.ResourceInDeleteWindow",
            Error::LimitExceeded(_) => "Rejected.LimitExceeded",
            Error::Throttling(_) => "Rejected.Throttling",
            Error::SecretNotReady(_) => "Rejected.SecretNotReady",
            Error::DbInstanceNotFound(_) => "InvalidDBInstanceId.NotFound",
            Error::DbLogonFailed(_) => "DBInstance.LogonFailed",
            Error::DbUnreachable(_) => "DBInstance.Unreachable",
            Error::DbRefused(_) => "DBInstance.Refused",
            Error::EntityNotExist { code, .. } | Error::EntityAlreadyExists { code, .. } | Error::DeleteConflict { code, .. } => code,
            Error::MalformedPolicyDocument(_) => "MalformedPolicyDocument",
            Error::AuditUnavailable(_) => "InternalFailure.Audit",
            Error::Internal(_) => "InternalFailure",
            Error::Unavailable => "ServiceUnavailableTemporary",
        }
    }

    /// The text for the client. Never contains an internal cause.
    pub fn message(&self) -> String {
        self.to_string()
    }
}

/// An unexpected failure's cause, for the server log only.
pub struct InternalError(String);

impl InternalError {
    pub fn cause(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for InternalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InternalError(..)")
    }
}

impl fmt::Display for InternalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("internal error")
    }
}

impl std::error::Error for InternalError {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_error_hides_its_cause_from_the_client() {
        let e = Error::internal("disk I/O error at /var/lib/sesame/db: password=hunter2");
        assert_eq!(e.status(), 500);
        assert_eq!(e.code(), "InternalFailure");
        assert!(!e.message().contains("hunter2"));
        assert!(!format!("{e:?}").contains("hunter2"));
        match e {
            Error::Internal(inner) => assert!(inner.cause().contains("hunter2")),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn not_found_codes_use_404_and_conflicts_409() {
        assert_eq!(Error::ResourceNotFound("s".into()).status(), 404);
        assert_eq!(Error::ResourceNotFound("s".into()).code(), "Forbidden.ResourceNotFound");
        assert_eq!(Error::ResourceExist("s".into()).status(), 409);
        assert_eq!(Error::KeyDisabled("k".into()).code(), "Rejected.Disabled");
        assert_eq!(Error::InvalidAccessKeyId.status(), 404);
        // The secrets clients back off on exactly this pair (reference §1.7).
        assert_eq!((Error::Throttling("x".into()).status(), Error::Throttling("x".into()).code()), (429, "Rejected.Throttling"));
    }
}
