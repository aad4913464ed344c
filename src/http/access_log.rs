//! One access-log line per request: method, route pattern, status,
//! latency, request id and client IP. Never headers or bodies, so tokens
//! and passwords cannot leak into it. Successful health probes are logged at
//! `debug`, so that a HEALTHCHECK every 15 s does not fill the log at `info`.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, Error};

use crate::http::client_ip::service_request_ip;
use crate::http::request_id::REQUEST_ID_HEADER;
use crate::state::AppState;

/// Longest raw path logged for unmatched routes.
const MAX_LOGGED_PATH_CHARS: usize = 128;

/// Routes polled by the image's HEALTHCHECK and by orchestrators.
const PROBE_ROUTES: [&str; 2] = ["/healthz", "/readyz"];

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
    let status = response.status();
    log::log!(
        target: "tessera::access",
        level(&route, status),
        "{method} {route} {status} {latency:.2}ms request_id={request_id} ip={ip}",
        status = status.as_u16(),
        latency = started.elapsed().as_secs_f64() * 1000.0,
    );
    Ok(response)
}

/// `debug` for a health probe that succeeded, `info` for everything else
/// (a failing probe included: that is news).
fn level(route: &str, status: StatusCode) -> log::Level {
    if PROBE_ROUTES.contains(&route) && status.is_success() {
        log::Level::Debug
    } else {
        log::Level::Info
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successful_probes_are_logged_at_debug() {
        assert_eq!(level("/healthz", StatusCode::OK), log::Level::Debug);
        assert_eq!(level("/readyz", StatusCode::OK), log::Level::Debug);
    }

    #[test]
    fn failing_probes_and_other_routes_are_logged_at_info() {
        assert_eq!(
            level("/readyz", StatusCode::SERVICE_UNAVAILABLE),
            log::Level::Info
        );
        assert_eq!(level("/auth/token", StatusCode::OK), log::Level::Info);
        assert_eq!(
            level("unmatched:/healthz/x", StatusCode::NOT_FOUND),
            log::Level::Info
        );
    }
}
