//! Prometheus counters of the auth domain, and [`HttpMetrics`], the
//! middleware that counts HTTP requests on the same registry.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::{Method, StatusCode};
use actix_web::Error;
use pin_project_lite::pin_project;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// The domain counters, registered on one registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    logins: IntCounterVec,
    tokens_issued: IntCounterVec,
    refresh_reuse: IntCounterVec,
    rate_limited: IntCounter,
    mfa_challenges: IntCounter,
    mfa_failures: IntCounterVec,
    tokens_rejected: IntCounter,
    pool_connections: IntGaugeVec,
}

impl Metrics {
    /// Creates the counters on a fresh registry.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let counter =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, prometheus::Error> {
                let vec = IntCounterVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(vec.clone()))?;
                Ok(vec)
            };
        let logins = counter(
            "tessera_logins_total",
            "Login attempts by result.",
            &["result"],
        )?;
        let tokens_issued = counter(
            "tessera_tokens_issued_total",
            "Tokens issued by kind (access, refresh).",
            &["kind"],
        )?;
        let refresh_reuse = counter(
            "tessera_refresh_reuse_total",
            "Spent refresh tokens presented again, by outcome (grace, revoked).",
            &["outcome"],
        )?;
        let rate_limited = IntCounter::new(
            "tessera_rate_limited_total",
            "Requests refused by the login rate limit.",
        )?;
        registry.register(Box::new(rate_limited.clone()))?;
        let mfa_challenges = IntCounter::new(
            "tessera_mfa_challenges_total",
            "Logins whose password was right and that were asked for a second factor (mfa_token issued).",
        )?;
        registry.register(Box::new(mfa_challenges.clone()))?;
        let mfa_failures = counter(
            "tessera_mfa_failures_total",
            "Refused second-factor attempts by reason (wrong_code, reused_code, malformed_code, bad_mfa_token, throttled).",
            &["reason"],
        )?;
        let tokens_rejected = IntCounter::new(
            "tessera_access_tokens_rejected_total",
            "Bearer tokens refused by the guard.",
        )?;
        registry.register(Box::new(tokens_rejected.clone()))?;
        let pool_connections = IntGaugeVec::new(
            Opts::new(
                "tessera_db_pool_connections",
                "Database pool connections by state (in_use, idle).",
            ),
            &["state"],
        )?;
        registry.register(Box::new(pool_connections.clone()))?;
        Ok(Self {
            registry,
            logins,
            tokens_issued,
            refresh_reuse,
            rate_limited,
            mfa_challenges,
            mfa_failures,
            tokens_rejected,
            pool_connections,
        })
    }

    /// The registry to expose at `/metrics`.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Counts a login by outcome.
    pub fn record_login(&self, success: bool) {
        let result = if success { "success" } else { "failure" };
        self.logins.with_label_values(&[result]).inc();
    }

    /// Counts an issued access + refresh token pair.
    pub fn record_tokens_issued(&self, refresh_token: bool) {
        self.tokens_issued.with_label_values(&["access"]).inc();
        if refresh_token {
            self.tokens_issued.with_label_values(&["refresh"]).inc();
        }
    }

    /// Counts a spent-token presentation (`grace` or `revoked`).
    pub fn record_refresh_reuse(&self, outcome: &str) {
        self.refresh_reuse.with_label_values(&[outcome]).inc();
    }

    /// Counts a rate-limited request.
    pub fn record_rate_limited(&self) {
        self.rate_limited.inc();
    }

    /// Counts an `mfa_token` handed out after a right password.
    pub fn record_mfa_challenge(&self) {
        self.mfa_challenges.inc();
    }

    /// Counts a refused second-factor attempt (`reason` is one of a few
    /// fixed words, never client input).
    pub fn record_mfa_failure(&self, reason: &'static str) {
        self.mfa_failures.with_label_values(&[reason]).inc();
    }

    /// Records the pool's state, sampled at scrape time.
    pub fn set_pool_connections(&self, in_use: u32, idle: u32) {
        self.pool_connections
            .with_label_values(&["in_use"])
            .set(i64::from(in_use));
        self.pool_connections
            .with_label_values(&["idle"])
            .set(i64::from(idle));
    }

    /// Everything in the registry, in the Prometheus text format.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        String::from_utf8(buffer).map_err(|err| prometheus::Error::Msg(err.to_string()))
    }

    /// Counts a bearer token refused by the guard.
    pub fn record_token_rejected(&self) {
        self.tokens_rejected.inc();
    }
}

/// HTTP request counts and latency histograms by route pattern, method and
/// status: the series actix-web-prom wrote before
/// (`tessera_http_requests_total`, `tessera_http_requests_duration_seconds`
/// with Prometheus' default buckets; labels `endpoint`, `method`, `status`;
/// paths that match no route counted as `UNMATCHED`; methods other than the
/// nine of RFC 9110 and RFC 5789 counted as `OTHER`), without its
/// per-request work (path copies, a label map, a pattern template and two
/// label lookups on shared maps).
///
/// Each worker keeps the handles it has resolved, so a request costs the
/// route pattern, one lookup in a small map of the worker's own, an
/// increment and an observation. Wrap it outermost, so it times everything.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    durations: HistogramVec,
}

/// The label of requests that match no route.
const UNMATCHED: &str = "UNMATCHED";

impl HttpMetrics {
    /// Registers the two HTTP series on `registry` (that of [`Metrics`]).
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let labels = ["endpoint", "method", "status"];
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "Total number of HTTP requests").namespace("tessera"),
            &labels,
        )?;
        let durations = HistogramVec::new(
            HistogramOpts::new(
                "http_requests_duration_seconds",
                "HTTP request duration in seconds for all requests",
            )
            .namespace("tessera"),
            &labels,
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(durations.clone()))?;
        Ok(Self {
            requests,
            durations,
        })
    }
}

/// One series' handles, resolved once per worker.
struct SeriesHandles {
    requests: IntCounter,
    duration: Histogram,
}

/// A worker's resolved handles by (route pattern, method, status).
type HandleCache = HashMap<(String, &'static str, StatusCode), SeriesHandles>;

/// The `method` label: the standard methods by name, any other (a client
/// can send any token) as `OTHER`, so clients cannot mint new series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

impl<S, B> Transform<S, ServiceRequest> for HttpMetrics
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type InitError = ();
    type Transform = HttpMetricsMiddleware<S>;
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(HttpMetricsMiddleware {
            service,
            metrics: self.clone(),
            handles: Rc::new(RefCell::new(HashMap::new())),
        }))
    }
}

/// [`HttpMetrics`] on one worker.
#[doc(hidden)]
pub struct HttpMetricsMiddleware<S> {
    service: S,
    metrics: HttpMetrics,
    handles: Rc<RefCell<HandleCache>>,
}

impl<S, B> Service<ServiceRequest> for HttpMetricsMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = HttpMetricsFuture<S::Future>;

    actix_web::dev::forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        HttpMetricsFuture {
            inner: self.service.call(req),
            started: Instant::now(),
            metrics: self.metrics.clone(),
            handles: Rc::clone(&self.handles),
        }
    }
}

pin_project! {
    /// Records the request once the inner service has answered.
    #[doc(hidden)]
    pub struct HttpMetricsFuture<F> {
        #[pin]
        inner: F,
        started: Instant,
        metrics: HttpMetrics,
        handles: Rc<RefCell<HandleCache>>,
    }
}

impl<F, B> Future for HttpMetricsFuture<F>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = std::task::ready!(this.inner.poll(cx))?;
        let elapsed = this.started.elapsed().as_secs_f64();
        let request = response.request();
        let key = (
            request
                .match_pattern()
                .unwrap_or_else(|| UNMATCHED.to_owned()),
            method_label(request.method()),
            response.status(),
        );
        let mut handles = this.handles.borrow_mut();
        let series = handles
            .entry(key)
            .or_insert_with_key(|(endpoint, method, status)| {
                let labels = [endpoint.as_str(), method, status.as_str()];
                SeriesHandles {
                    requests: this.metrics.requests.with_label_values(&labels),
                    duration: this.metrics.durations.with_label_values(&labels),
                }
            });
        series.requests.inc();
        series.duration.observe(elapsed);
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::Method;
    use actix_web::{test, web, App, HttpResponse};

    use super::*;

    #[actix_web::test]
    async fn requests_are_counted_by_pattern_method_and_status() {
        let registry = Registry::new();
        let app = test::init_service(
            App::new()
                .route(
                    "/items/{id}",
                    web::get().to(|| async { HttpResponse::Ok().finish() }),
                )
                .wrap(HttpMetrics::new(&registry).unwrap()),
        )
        .await;

        for (method, path) in [
            (Method::GET, "/items/1"),
            (Method::GET, "/items/2"),
            (Method::from_bytes(b"BREW").unwrap(), "/items/3"),
            (Method::GET, "/nowhere"),
        ] {
            let req = test::TestRequest::default()
                .method(method)
                .uri(path)
                .to_request();
            test::call_service(&app, req).await;
        }
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut text)
            .unwrap();
        let text = String::from_utf8(text).unwrap();

        for needle in [
            r#"tessera_http_requests_total{endpoint="/items/{id}",method="GET",status="200"} 2"#,
            r#"tessera_http_requests_total{endpoint="/items/{id}",method="OTHER",status="404"} 1"#,
            r#"tessera_http_requests_total{endpoint="UNMATCHED",method="GET",status="404"} 1"#,
            r#"tessera_http_requests_duration_seconds_count{endpoint="/items/{id}",method="GET",status="200"} 2"#,
        ] {
            assert!(text.contains(needle), "missing {needle}\n{text}");
        }
    }
}
