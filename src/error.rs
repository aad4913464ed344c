//! The one error type of the HTTP layer and the JSON envelope it becomes.
//!
//! Every failure a client can see is an [`AppError`]; its `ResponseError`
//! impl writes `{"error", "message", "fields"?}` plus the headers RFC 6750
//! and RFC 9110 ask for. Causes of 5xx answers are kept for the log and never
//! sent.

use std::collections::BTreeMap;
use std::fmt;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;

/// The realm named in every `WWW-Authenticate` challenge.
pub const REALM: &str = "tessera";

/// Seconds a client is told to wait after a 503.
const UNAVAILABLE_RETRY_AFTER_SECONDS: u64 = 1;

/// Result alias for handlers and services.
pub type AppResult<T> = Result<T, AppError>;

/// Per-field validation messages, keyed by field name.
pub type FieldErrors = BTreeMap<String, String>;

/// Every error a request can end in (SPEC §4 table).
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
    fn public_message(&self) -> String {
        match self {
            Self::InvalidRequest(detail) => detail.clone(),
            Self::MissingToken => "This route needs an Authorization: Bearer access token.".into(),
            Self::InvalidToken(reason) => format!("The access token is not valid: {reason}."),
            Self::InvalidCredentials => "The username or password is wrong.".into(),
            Self::InvalidGrant => {
                "The refresh token is unknown, expired, revoked or already used.".into()
            }
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

/// The JSON body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `invalid_token`.
    pub error: String,
    /// One human sentence.
    pub message: String,
    /// Per-field problems, only on validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<FieldErrors>,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::MissingToken
            | Self::InvalidToken(_)
            | Self::InvalidCredentials
            | Self::InvalidGrant => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::UsernameTaken => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            Self::MissingToken => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    format!("Bearer realm=\"{REALM}\""),
                ));
            }
            Self::InvalidToken(reason) => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    format!(
                        "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{reason}\""
                    ),
                ));
            }
            Self::InsufficientScope(role) => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    format!(
                        "Bearer realm=\"{REALM}\", error=\"insufficient_scope\", error_description=\"requires role {role}\", scope=\"{role}\""
                    ),
                ));
            }
            Self::RateLimited { retry_after } => {
                response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            Self::Unavailable(_) => {
                response.insert_header((
                    header::RETRY_AFTER,
                    UNAVAILABLE_RETRY_AFTER_SECONDS.to_string(),
                ));
            }
            _ => {}
        }
        response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        let fields = match self {
            Self::Validation(fields) => Some(fields.clone()),
            _ => None,
        };
        response.json(ErrorBody {
            error: self.code().to_owned(),
            message: self.public_message(),
            fields,
        })
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

/// Rewrites actix's JSON extractor failures into the envelope.
pub fn json_error_handler(
    err: actix_web::error::JsonPayloadError,
    _req: &HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as E;
    let app_error = match &err {
        E::OverflowKnownLength { .. } | E::Overflow { .. } => AppError::PayloadTooLarge,
        E::ContentType => AppError::UnsupportedMediaType,
        E::Deserialize(json) => AppError::InvalidRequest(describe_json_error(json)),
        E::Payload(actix_web::error::PayloadError::Overflow) => AppError::PayloadTooLarge,
        _ => AppError::InvalidRequest("The request body could not be read.".into()),
    };
    app_error.into()
}

/// Turns a serde_json error into one sentence without echoing the input.
fn describe_json_error(err: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match err.classify() {
        Category::Syntax | Category::Eof => "The request body is not valid JSON.".into(),
        Category::Data => {
            let text = err.to_string();
            // serde's data errors read "missing field `x` at line 1 column 2";
            // keep the part before the position and never more than a line.
            let head = text.split(" at line ").next().unwrap_or("invalid field");
            let head: String = head.chars().take(120).collect();
            format!("The request body has a missing or mistyped field: {head}.")
        }
        Category::Io => "The request body could not be read.".into(),
    }
}

/// Rewrites query-string extractor failures into the envelope.
pub fn query_error_handler(
    err: actix_web::error::QueryPayloadError,
    _req: &HttpRequest,
) -> actix_web::Error {
    AppError::InvalidRequest(format!("The query string is invalid: {err}.")).into()
}

/// A malformed path segment (such as a bad UUID) is simply "not found".
pub fn path_error_handler(
    _err: actix_web::error::PathError,
    _req: &HttpRequest,
) -> actix_web::Error {
    AppError::NotFound.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    #[actix_web::test]
    async fn validation_errors_carry_fields() {
        let response = AppError::field("username", "is too short").error_response();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = to_bytes(response.into_body()).await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"], "validation_failed");
        assert_eq!(json["fields"]["username"], "is too short");
    }

    #[actix_web::test]
    async fn internal_errors_hide_their_cause() {
        let response = AppError::internal("relation \"users\" does not exist").error_response();
        let body = to_bytes(response.into_body()).await.unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(!text.contains("relation"));
        assert!(text.contains("\"internal\""));
    }

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

    #[test]
    fn unavailable_and_rate_limited_carry_retry_after() {
        for err in [
            AppError::Unavailable("down".into()),
            AppError::RateLimited { retry_after: 7 },
        ] {
            let response = err.error_response();
            assert!(response.headers().contains_key(header::RETRY_AFTER));
        }
    }
}
