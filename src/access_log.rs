//! One access-log line per request: method, route pattern, status,
//! latency, request id and client IP. Never headers or bodies, so tokens
//! and passwords cannot leak into it.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, Error};

use crate::client::service_request_ip;
use crate::request_id::REQUEST_ID_HEADER;
use crate::state::AppState;

/// Longest raw path logged for unmatched routes.
const MAX_LOGGED_PATH_CHARS: usize = 128;

/// Logs each request after its response is ready. When the access log's
/// level is off (`RUST_LOG=warn`, say), nothing is gathered or formatted.
pub async fn access_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if !log::log_enabled!(target: "tessera::access", log::Level::Info) {
        return next.call(req).await;
    }
    let started = Instant::now();
    let method = req.method().clone();
    let trust_forwarded_for = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|state| state.settings.trust_forwarded_for);
    let ip = service_request_ip(&req, trust_forwarded_for)
        .map_or_else(|| "-".to_owned(), |ip| ip.to_string());
    let response = next.call(req).await?;
    let route = response.request().match_pattern().unwrap_or_else(|| {
        let path: String = response
            .request()
            .path()
            .chars()
            .take(MAX_LOGGED_PATH_CHARS)
            .collect();
        format!("unmatched:{path}")
    });
    let request_id = response
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-");
    log::info!(
        target: "tessera::access",
        "{method} {route} {status} {latency:.2}ms request_id={request_id} ip={ip}",
        status = response.status().as_u16(),
        latency = started.elapsed().as_secs_f64() * 1000.0,
    );
    Ok(response)
}
