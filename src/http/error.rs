//! Turns an [`AppError`] into its HTTP response: ONE table from the error
//! code to its status (also read backwards by the envelope middleware for
//! bare framework errors), the `{"error","message","fields"?}` body, and the
//! headers RFC 6750 and RFC 9110 ask for. Also the extractor error handlers
//! that route actix's own failures into the same envelope.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;

use crate::error::{AppError, FieldErrors};

/// The realm named in every `WWW-Authenticate` challenge.
pub const REALM: &str = "tessera";

/// Seconds a client is told to wait after a 503.
const UNAVAILABLE_RETRY_AFTER_SECONDS: u64 = 1;

/// Every error code with its HTTP status. Where several codes share a
/// status, the first one listed is what a bare framework error with that
/// status becomes (see [`code_for_status`]).
const STATUS_OF_CODE: &[(&str, u16)] = &[
    ("invalid_request", 400),
    ("invalid_token", 401),
    ("missing_token", 401),
    ("invalid_credentials", 401),
    ("invalid_grant", 401),
    ("mfa_required", 401),
    ("invalid_otp", 401),
    ("insufficient_scope", 403),
    ("not_found", 404),
    ("method_not_allowed", 405),
    ("request_timeout", 408),
    ("username_taken", 409),
    ("conflict", 409),
    ("payload_too_large", 413),
    ("unsupported_media_type", 415),
    ("validation_failed", 422),
    ("rate_limited", 429),
    ("internal", 500),
    ("unavailable", 503),
];

/// The status an error code is answered with (500 for a code missing from
/// the table, which a unit test rules out).
pub fn status_of(code: &str) -> StatusCode {
    STATUS_OF_CODE
        .iter()
        .find(|(known, _)| *known == code)
        .and_then(|(_, status)| StatusCode::from_u16(*status).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The envelope code for a bare status that no [`AppError`] produced.
pub fn code_for_status(status: StatusCode) -> &'static str {
    if let Some((code, _)) = STATUS_OF_CODE
        .iter()
        .find(|(_, known)| *known == status.as_u16())
    {
        return code;
    }
    if status.is_server_error() {
        "internal"
    } else {
        "invalid_request"
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
        status_of(self.code())
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

    #[test]
    fn every_code_has_a_status_and_every_listed_status_its_first_code() {
        for (code, status) in STATUS_OF_CODE {
            assert_eq!(status_of(code).as_u16(), *status, "{code}");
        }
        assert_eq!(code_for_status(StatusCode::UNAUTHORIZED), "invalid_token");
        assert_eq!(code_for_status(StatusCode::CONFLICT), "username_taken");
        assert_eq!(code_for_status(StatusCode::BAD_GATEWAY), "internal");
        assert_eq!(code_for_status(StatusCode::IM_A_TEAPOT), "invalid_request");
    }

    #[test]
    fn every_error_maps_through_the_table() {
        let errors = [
            AppError::InvalidRequest("x".into()),
            AppError::MissingToken,
            AppError::InvalidToken("x"),
            AppError::InvalidCredentials,
            AppError::InvalidGrant,
            AppError::MfaRequired,
            AppError::InvalidOtp,
            AppError::Conflict("x"),
            AppError::InsufficientScope("admin"),
            AppError::NotFound,
            AppError::MethodNotAllowed,
            AppError::UsernameTaken,
            AppError::Conflict("x"),
            AppError::InvalidOtp,
            AppError::PayloadTooLarge,
            AppError::RequestTimeout,
            AppError::UnsupportedMediaType,
            AppError::field("x", "y"),
            AppError::RateLimited { retry_after: 1 },
            AppError::Unavailable("x".into()),
            AppError::internal("x"),
        ];
        for err in errors {
            assert!(
                STATUS_OF_CODE.iter().any(|(code, _)| *code == err.code()),
                "{} is not in the table",
                err.code()
            );
        }
    }

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
