//! Prometheus counters of the auth domain (HTTP request metrics come from
//! actix-web-prom on the same registry).

use prometheus::{Encoder, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

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
