//! The per-client-IP budget of logins and registrations, applied before the
//! body is read: a middleware that asks the state's [`RateLimiter`] with the
//! client's IP (IPv6 by /64; from `X-Forwarded-For` only when trusted).
//!
//! [`RateLimiter`]: crate::limiter::RateLimiter

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, Error, ResponseError};

use crate::error::AppError;
use crate::http::client_ip::{rate_limit_key, service_request_ip};
use crate::limiter::{Action, Decision};
use crate::state::AppState;

/// Counts a POST against the client's budget; over it, 429 `rate_limited`
/// with `Retry-After`. Other methods pass uncounted (they are 405 anyway).
pub async fn auth_rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    if let (Some(state), true) = (state, req.method() == Method::POST) {
        let key = service_request_ip(&req, state.settings.trust_forwarded_for)
            .map(rate_limit_key)
            .map_or_else(String::new, |ip| ip.to_string());
        let decision = match state
            .auth_rate_limit
            .check(&key, Action::Authenticate)
            .await
        {
            Ok(decision) => decision,
            Err(err) => return Ok(req.error_response(err).map_into_right_body()),
        };
        if let Decision::RetryAfter(wait) = decision {
            state.metrics.record_rate_limited();
            let refused = AppError::RateLimited {
                retry_after: Decision::retry_after_seconds(wait),
            };
            let response = refused.error_response();
            return Ok(req.into_response(response).map_into_right_body());
        }
    }
    Ok(next.call(req).await?.map_into_left_body())
}
