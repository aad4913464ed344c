//! `x-request-id` on every response, and 5xx causes logged with it.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::Error;

/// The header name.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Echoes a sane client `x-request-id` (≤ 128 visible ASCII chars) or makes
/// one, sets it on the response, and logs the cause of any 5xx with it.
pub async fn request_id_middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    // The client's value is shared, not copied; a new one is formatted
    // straight into its header value.
    let id = req
        .headers()
        .get(&REQUEST_ID_HEADER)
        .filter(|value| {
            let bytes = value.as_bytes();
            !bytes.is_empty() && bytes.len() <= 128 && bytes.iter().all(u8::is_ascii_graphic)
        })
        .cloned()
        .or_else(new_request_id);
    // Inner middleware answer refusals as responses, not `Err`, so that
    // every answer passes back through here.
    let mut response = next.call(req).await?;
    if response.status().is_server_error() {
        if let Some(err) = response.response().error() {
            let id = id.as_ref().and_then(|id| id.to_str().ok()).unwrap_or("-");
            log::error!("request {id} failed: {err}");
        }
    }
    if let Some(value) = id {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    Ok(response)
}

/// A random (v4) UUID, hyphenated, as a header value.
fn new_request_id() -> Option<HeaderValue> {
    let mut buffer = uuid::Uuid::encode_buffer();
    HeaderValue::from_str(uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer)).ok()
}
