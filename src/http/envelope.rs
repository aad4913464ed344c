//! Last line of defence for the error envelope: any error response that
//! something other than [`AppError`] produced (actix-cors refusing a
//! preflight, a framework default) is rewritten to
//! `{"error", "message"}` JSON with the same status.
//!
//! [`AppError`]: crate::error::AppError
//!
//! The code comes from the same status table that [`AppError`] responses use.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse};

use crate::http::error::{code_for_status, ErrorBody};

/// Rewrites non-JSON error responses into the envelope.
pub async fn ensure_json_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let response = next.call(req).await?;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return Ok(response.map_into_left_body());
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return Ok(response.map_into_left_body());
    }
    let message = match response.response().error() {
        Some(err) if status.is_client_error() => {
            let text = err.to_string();
            let text: String = text.chars().take(200).collect();
            format!("{}.", text.trim_end_matches('.'))
        }
        _ => status
            .canonical_reason()
            .map_or_else(|| "The request failed.".to_owned(), |r| format!("{r}.")),
    };
    let (req, old) = response.into_parts();
    let mut replacement = HttpResponse::build(status);
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            replacement.append_header((name.clone(), value.clone()));
        }
    }
    replacement.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    let replacement = replacement.json(ErrorBody {
        error: code_for_status(status).to_owned(),
        message,
        fields: None,
    });
    Ok(ServiceResponse::new(req, replacement).map_into_right_body())
}
