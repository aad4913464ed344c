//! The one error type of tessera, without HTTP knowledge.
//!
//! Every failure a client can see is an [`AppError`]: a stable code and one
//! human sentence. `http::error` maps each code to its status and writes the
//! JSON envelope; causes of internal errors are kept for the log and never
//! sent.

use std::collections::BTreeMap;
use std::fmt;

/// Result alias for handlers and services.
pub type AppResult<T> = Result<T, AppError>;

/// Per-field validation messages, keyed by field name.
pub type FieldErrors = BTreeMap<String, String>;

/// Every error a request can end in (README "Errors").
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Malformed JSON, missing or mistyped field.
    #[error("{0}")]
    InvalidRequest(String),
    /// No bearer token on a private route.
    #[error("missing bearer token")]
    MissingToken,
    /// The bearer token failed validation; the reason is safe to show.
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
    /// Wrong username or password.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Refresh token unknown, expired, revoked or spent.
    #[error("invalid grant")]
    InvalidGrant,
    /// The password was right and a second factor is needed (on a step-up
    /// route: its `code` is missing).
    #[error("second factor required")]
    MfaRequired,
    /// Wrong, reused or expired one-time code, MFA token or passkey
    /// assertion (README "Passkeys").
    #[error("invalid one-time code")]
    InvalidOtp,
    /// The state does not allow it (TOTP already enabled, no pending
    /// enrollment, TOTP not enabled, the email address is in use); the
    /// text says why.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The token lacks the role this route needs.
    #[error("insufficient scope: needs role {0}")]
    InsufficientScope(&'static str),
    /// Unknown route or resource.
    #[error("not found")]
    NotFound,
    /// Known route, wrong method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Registration with a username that exists.
    #[error("username taken")]
    UsernameTaken,
    /// Body over the size limit.
    #[error("payload too large")]
    PayloadTooLarge,
    /// The body did not arrive within the body timeout.
    #[error("request body timed out")]
    RequestTimeout,
    /// Body that is not `application/json`.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// Well-formed input with invalid values.
    #[error("validation failed: {0:?}")]
    Validation(FieldErrors),
    /// Over the rate limit; wait this many seconds.
    #[error("rate limited")]
    RateLimited {
        /// Seconds until the next request is allowed.
        retry_after: u64,
    },
    /// The database does not answer.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else; the cause is logged with the request id, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// Wraps an unexpected failure, keeping its description for the log.
    pub fn internal(cause: impl fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    /// A 422 with a single field message.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let mut fields = FieldErrors::new();
        fields.insert(field.to_owned(), message.into());
        Self::Validation(fields)
    }

    /// The stable machine-readable code of the envelope.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::MissingToken => "missing_token",
            Self::InvalidToken(_) => "invalid_token",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidGrant => "invalid_grant",
            Self::MfaRequired => "mfa_required",
            Self::InvalidOtp => "invalid_otp",
            Self::Conflict(_) => "conflict",
            Self::InsufficientScope(_) => "insufficient_scope",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::UsernameTaken => "username_taken",
            Self::PayloadTooLarge => "payload_too_large",
            Self::RequestTimeout => "request_timeout",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Validation(_) => "validation_failed",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// The one human sentence a client sees.
    pub fn public_message(&self) -> String {
        match self {
            Self::InvalidRequest(detail) => detail.clone(),
            Self::MissingToken => "This route needs an Authorization: Bearer access token.".into(),
            Self::InvalidToken(reason) => format!("The access token is not valid: {reason}."),
            Self::InvalidCredentials => "The username or password is wrong.".into(),
            Self::InvalidGrant => {
                "The refresh token is unknown, expired, revoked or already used.".into()
            }
            Self::MfaRequired => {
                "This account has a second factor: a one-time code is required.".into()
            }
            Self::InvalidOtp => {
                "The one-time code, MFA token or passkey answer is wrong, already used or expired."
                    .into()
            }
            Self::Conflict(why) => sentence(why),
            Self::InsufficientScope(role) => {
                format!("This route needs the {role} role.")
            }
            Self::NotFound => "No such route or resource.".into(),
            Self::MethodNotAllowed => "This route does not accept that method.".into(),
            Self::UsernameTaken => "That username is already taken.".into(),
            Self::PayloadTooLarge => "The request body is larger than 16 KiB.".into(),
            Self::RequestTimeout => "The request body did not arrive in time.".into(),
            Self::UnsupportedMediaType => "The request body must be application/json.".into(),
            Self::Validation(_) => "Some fields have invalid values.".into(),
            Self::RateLimited { .. } => "Too many attempts; retry later.".into(),
            Self::Unavailable(_) => "The service is temporarily unavailable; retry shortly.".into(),
            Self::Internal(_) => "An unexpected error occurred.".into(),
        }
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(err: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match err {
            Error::NotFound => Self::NotFound,
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                Self::Unavailable(info.message().to_owned())
            }
            Error::DatabaseError(DatabaseErrorKind::UnableToSendCommand, info) => {
                Self::Unavailable(info.message().to_owned())
            }
            // A commit that failed, then a rollback that failed too: the
            // commit's error says what happened (a lost connection, mostly).
            Error::RollbackErrorOnCommit { commit_error, .. } => Self::from(*commit_error),
            // A transaction left in an unknown state, which in practice
            // means its connection broke; the pool discards it.
            Error::BrokenTransactionManager => {
                Self::Unavailable("transaction state lost with the connection".into())
            }
            other => Self::internal(other),
        }
    }
}

/// Maps a unique violation of `constraint` to `instead`; anything else
/// converts as usual. This is what makes a registration race a clean 409.
pub fn on_unique_violation(
    err: diesel::result::Error,
    constraint: &str,
    instead: AppError,
) -> AppError {
    use diesel::result::{DatabaseErrorKind, Error};
    match err {
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, ref info)
            if info.constraint_name() == Some(constraint) =>
        {
            instead
        }
        other => other.into(),
    }
}

/// `why` as one sentence: a capital first letter and a final full stop.
fn sentence(why: &str) -> String {
    let mut chars = why.chars();
    let mut text: String = chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    if !text.ends_with('.') {
        text.push('.');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_connections_are_unavailable_and_other_database_errors_internal() {
        use diesel::result::{DatabaseErrorKind, Error};
        let closed = || {
            Error::DatabaseError(
                DatabaseErrorKind::ClosedConnection,
                Box::new("server closed the connection unexpectedly".to_owned()),
            )
        };
        let unavailable = [
            closed(),
            Error::DatabaseError(
                DatabaseErrorKind::UnableToSendCommand,
                Box::new("no connection to the server".to_owned()),
            ),
            Error::RollbackErrorOnCommit {
                rollback_error: Box::new(closed()),
                commit_error: Box::new(closed()),
            },
            Error::BrokenTransactionManager,
        ];
        for err in unavailable {
            let described = format!("{err:?}");
            assert!(
                matches!(AppError::from(err), AppError::Unavailable(_)),
                "{described}"
            );
        }
        let other = Error::DatabaseError(
            DatabaseErrorKind::CheckViolation,
            Box::new("check violated".to_owned()),
        );
        assert!(matches!(AppError::from(other), AppError::Internal(_)));
    }
}
