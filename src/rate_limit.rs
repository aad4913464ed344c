//! Per-client-IP limit on logins and registrations (actix-governor), one
//! limiter shared by every worker and by both routes.

use std::net::IpAddr;
use std::time::Duration;

use actix_governor::governor::clock::{Clock, DefaultClock, QuantaInstant};
use actix_governor::governor::middleware::NoOpMiddleware;
use actix_governor::governor::NotUntil;
use actix_governor::{Governor, GovernorConfig, GovernorConfigBuilder, KeyExtractor};
use actix_web::dev::ServiceRequest;
use actix_web::http::Method;
use actix_web::middleware::Condition;
use actix_web::{HttpResponse, HttpResponseBuilder, ResponseError};

use crate::client::{rate_limit_key, service_request_ip};
use crate::error::AppError;
use crate::metrics::Metrics;

/// Keys requests by client IP (from `X-Forwarded-For` only when trusted;
/// IPv6 by /64).
#[derive(Clone)]
pub struct ClientIpKey {
    trust_forwarded_for: bool,
    metrics: Metrics,
}

impl KeyExtractor for ClientIpKey {
    type Key = Option<IpAddr>;
    type KeyExtractionError = AppError;

    fn extract(&self, req: &ServiceRequest) -> Result<Self::Key, Self::KeyExtractionError> {
        Ok(service_request_ip(req, self.trust_forwarded_for).map(rate_limit_key))
    }

    fn exceed_rate_limit_response(
        &self,
        negative: &NotUntil<QuantaInstant>,
        _response: HttpResponseBuilder,
    ) -> HttpResponse {
        self.metrics.record_rate_limited();
        let wait = negative.wait_time_from(DefaultClock::default().now());
        // Round up: "Retry-After: 0" would invite an immediate retry.
        let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        AppError::RateLimited {
            retry_after: retry_after.max(1),
        }
        .error_response()
    }
}

/// The shared limiter; cloning shares its state.
#[derive(Clone)]
pub struct AuthRateLimit {
    config: GovernorConfig<ClientIpKey, NoOpMiddleware<QuantaInstant>>,
    enabled: bool,
}

impl AuthRateLimit {
    /// A burst of `per_minute` per client IP, refilled evenly over a minute;
    /// 0 disables the limit.
    pub fn new(per_minute: u32, trust_forwarded_for: bool, metrics: Metrics) -> Option<Self> {
        let enabled = per_minute > 0;
        let per_minute = per_minute.max(1);
        let period_nanos = (60_000_000_000u64 / u64::from(per_minute)).max(1);
        let config = GovernorConfigBuilder::default()
            .period(Duration::from_nanos(period_nanos))
            .burst_size(per_minute)
            .methods(vec![Method::POST])
            .key_extractor(ClientIpKey {
                trust_forwarded_for,
                metrics,
            })
            .finish()?;
        Some(Self { config, enabled })
    }

    /// The middleware for one route, active when `applies` and the limit is
    /// on; every route wrapped shares the quota.
    pub fn middleware_if(
        &self,
        applies: bool,
    ) -> Condition<Governor<ClientIpKey, NoOpMiddleware<QuantaInstant>>> {
        Condition::new(applies && self.enabled, Governor::new(&self.config))
    }
}
