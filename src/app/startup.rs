//! Builds the application in a fixed order: configuration → keys →
//! database → migrations → bind → serve, plus the background tasks that
//! start and stop with the server. Everything that can fail does so before
//! the port is opened.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_cors::Cors;
use actix_web::dev::Server;
use actix_web::http::header::{self, HeaderName};
use actix_web::middleware::{from_fn, Condition};
use actix_web::{web, App, HttpServer};

use crate::auth::keys::KeySet;
use crate::auth::passkeys::PasskeyVerifier;
use crate::auth::password::PasswordHasher;
use crate::auth::revocation::RevokedSessions;
use crate::auth::tokens::TokenService;
use crate::auth::totp::SecretBox;
use crate::blocking::CpuPool;
use crate::config::Settings;
use crate::db;
use crate::http::access_log::access_log;
use crate::http::envelope::ensure_json_errors;
use crate::http::error::{json_error_handler, path_error_handler, query_error_handler};
use crate::http::request_id::request_id_middleware;
use crate::jobs::{mail, outbox, rehash, revocations, webhook, BackgroundTasks, RunningTasks};
use crate::limiter;
use crate::metrics::{HttpMetrics, Metrics};
use crate::routes;
use crate::state::AppState;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Pending connections the kernel queues before tessera accepts them
/// (actix's own default; Linux caps it at `net.core.somaxconn`). A std
/// `TcpListener` would get 128, and a burst of a few hundred connects would
/// then lose SYNs and wait a second for the retransmit.
pub const LISTEN_BACKLOG: i32 = 1024;

/// Open connections per worker thread before actix pauses accepting
/// (actix's default, set here so the limit is written down).
pub const MAX_CONNECTIONS_PER_WORKER: usize = 25_000;

/// How long a connection may take to send a complete request head, and how
/// long an idle keep-alive connection is kept: idle and slowloris clients
/// are cut off after this (actix's defaults, written down).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Seconds SIGTERM waits for in-flight requests. A full bcrypt queue
/// (32 logins per core, about 8 s of work at cost 12) drains well within it.
pub const SHUTDOWN_TIMEOUT_SECONDS: u64 = 30;

/// Binds the listening socket like `TcpListener::bind` (with
/// `SO_REUSEADDR`), but with a [`LISTEN_BACKLOG`]-long accept queue.
fn bind_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// A startup failure: one line naming what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartupError(pub String);

/// CORS for browser clients: only the configured origins; methods GET,
/// POST, PUT (`PUT /api/me/email`), DELETE; `authorization`, `content-type` and `x-request-id` named
/// explicitly (a wildcard does not cover `authorization`). A request from
/// another origin is served without CORS headers, so the browser blocks it.
fn cors(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "DELETE"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            HeaderName::from_static("x-request-id"),
            header::RETRY_AFTER,
            header::WWW_AUTHENTICATE,
        ])
        .block_on_origin_mismatch(false)
        .max_age(600);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// The box for TOTP secrets: under `MFA_ENCRYPTION_KEY`, or (with a WARN)
/// under a key derived from the signing key with HKDF.
fn mfa_secret_box(settings: &Settings, keys: &KeySet) -> Result<SecretBox, StartupError> {
    let key = match settings.mfa_encryption_key {
        Some(key) => key,
        None => {
            log::warn!(
                "MFA_ENCRYPTION_KEY is unset: TOTP secrets are encrypted under a key derived from \
                 the signing key, so replacing that key makes enrolled secrets unreadable; set \
                 MFA_ENCRYPTION_KEY (openssl rand -base64 32) in production"
            );
            keys.derive_key(b"tessera/mfa/totp-secrets/v1")
                .ok_or_else(|| StartupError("MFA_ENCRYPTION_KEY: cannot derive a key".into()))?
        }
    };
    SecretBox::new(&key)
        .ok_or_else(|| StartupError("MFA_ENCRYPTION_KEY: not a usable AES-256 key".into()))
}

/// A bound, not yet running server, the port it got, and the background
/// tasks that run beside it.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    tasks: BackgroundTasks,
}

impl Application {
    /// Loads keys, prepares the database, binds, and builds the server.
    pub fn build(settings: Settings) -> Result<Self, StartupError> {
        let passkeys = PasskeyVerifier::new(&settings.webauthn_rp_id, &settings.webauthn_origins)
            .map_err(StartupError)?;
        let keys = KeySet::load(
            settings.jwt_private_key_path.as_deref(),
            &settings.jwt_previous_public_key_paths,
        )
        .map_err(|err| StartupError(err.to_string()))?;
        log::info!("signing with key kid={}", keys.current_kid());
        let mfa_secrets = Arc::new(mfa_secret_box(&settings, &keys)?);

        db::ensure_database_exists(&settings.database_url)
            .map_err(|err| StartupError(err.to_string()))?;
        let pool = db::build_pool(
            &settings.database_url,
            settings.db_pool_size,
            settings.db_timeout,
            settings.webhook.is_some(),
        )
        .map_err(|err| StartupError(err.to_string()))?;
        let applied = pool
            .get()
            .map_err(|err| StartupError(format!("DATABASE_URL: no connection: {err}")))
            .and_then(|mut conn| {
                db::run_migrations(&mut conn).map_err(|err| StartupError(err.to_string()))
            })?;
        if applied > 0 {
            log::info!("applied {applied} migration(s)");
        }
        // Sessions revoked within the window are refused from the first
        // request on.
        let revoked_sessions = Arc::new(RevokedSessions::for_settings(&settings));
        let revocation_cursor = pool
            .get()
            .map_err(|err| StartupError(format!("DATABASE_URL: no connection: {err}")))
            .and_then(|mut conn| {
                revocations::catch_up(&mut conn, &revoked_sessions, None)
                    .map_err(|err| StartupError(format!("cannot load the revoked sessions: {err}")))
            })?;
        if !revoked_sessions.is_empty() {
            log::info!(
                "{} session(s) revoked within the last {} s",
                revoked_sessions.len(),
                revoked_sessions.window().as_secs()
            );
        }
        let revocation_listener = revocations::Listener::new(
            &settings,
            pool.clone(),
            Arc::clone(&revoked_sessions),
            revocation_cursor,
        );

        let start_pool = |name: &str, queue_per_core: usize| {
            CpuPool::per_core(name, queue_per_core)
                .map_err(|err| StartupError(format!("cannot start the {name} threads: {err}")))
        };
        // About 8 s of queued bcrypt work per core at cost 12; beyond that a
        // login is better answered 503 than left waiting.
        let passwords = PasswordHasher::new(start_pool("bcrypt", 32)?, settings.bcrypt_cost);
        let signing = start_pool("signing", 256)?;
        let metrics =
            Metrics::new().map_err(|err| StartupError(format!("metrics registry: {err}")))?;
        let listener = bind_listener(settings.bind_addr).map_err(|err| {
            StartupError(format!(
                "BIND_ADDR: cannot bind {}: {err}",
                settings.bind_addr
            ))
        })?;
        let port = listener
            .local_addr()
            .map_err(|err| StartupError(format!("BIND_ADDR: {err}")))?
            .port();

        let cors_origins = settings.cors_allowed_origins.clone();
        // Request counts and latency histograms by route PATTERN (unmatched
        // paths fold into one series), on the same registry as ours.
        let http_metrics = HttpMetrics::new(metrics.registry())
            .map_err(|err| StartupError(format!("metrics: {err}")))?;
        let tokens = TokenService::new(Arc::new(keys), &settings);
        let (rehash_jobs, rehash_receiver) = rehash::queue();
        let mut senders = outbox::Senders::default();
        // Mail always has a sender: without SMTP_URL it logs and drops.
        senders.add(Arc::new(mail::MailSender::new(&settings)));
        if let Some(webhook) = &settings.webhook {
            let sender = webhook::WebhookSender::new(webhook)
                .map_err(|err| StartupError(format!("WEBHOOK_URL: {err}")))?;
            senders.add(Arc::new(sender));
        }
        let state = web::Data::new(AppState {
            auth_rate_limit: limiter::for_auth(settings.auth_rate_limit_per_minute, pool.clone()),
            settings,
            pool,
            tokens,
            metrics,
            passwords,
            signing,
            rehash_jobs,
            revoked_sessions,
            passkeys,
            mfa_secrets,
        });
        let tasks = BackgroundTasks::standard(rehash_receiver, senders, revocation_listener);
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .app_data(
                    // JsonBody checks the media type itself (strictly).
                    web::JsonConfig::default()
                        .limit(MAX_BODY_BYTES)
                        .content_type_required(false)
                        .error_handler(json_error_handler),
                )
                .app_data(web::PayloadConfig::default().limit(MAX_BODY_BYTES))
                .app_data(web::PathConfig::default().error_handler(path_error_handler))
                .app_data(web::QueryConfig::default().error_handler(query_error_handler))
                .configure(routes::configure)
                .default_service(web::to(routes::not_found))
                .wrap(Condition::new(
                    !cors_origins.is_empty(),
                    cors(&cors_origins),
                ))
                .wrap(from_fn(ensure_json_errors))
                .wrap(from_fn(request_id_middleware))
                .wrap(from_fn(access_log))
                .wrap(http_metrics.clone())
        })
        .max_connections(MAX_CONNECTIONS_PER_WORKER)
        .client_request_timeout(CLIENT_TIMEOUT)
        .keep_alive(CLIENT_TIMEOUT)
        .shutdown_timeout(SHUTDOWN_TIMEOUT_SECONDS)
        .listen(listener)
        .map_err(|err| StartupError(format!("BIND_ADDR: {err}")))?
        .run();
        Ok(Self {
            port,
            server,
            state,
            tasks,
        })
    }

    /// The shared state, for driving the services in process (tests).
    pub fn state(&self) -> Arc<AppState> {
        self.state.clone().into_inner()
    }

    /// The port actually bound (useful with `BIND_ADDR=…:0`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts the background tasks and serves until SIGTERM / Ctrl-C (or
    /// the handle stops it); then drains in-flight requests, and after them
    /// the background tasks.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let running: RunningTasks = self.tasks.start(self.state.into_inner());
        let served = self.server.await;
        running.stop().await;
        served
    }

    /// A handle to stop the server (tests).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpStream;

    use super::*;

    #[test]
    fn the_listener_queues_more_connections_than_std_s_128() {
        // Linux caps the backlog at net.core.somaxconn (4096 on kernels
        // since 5.4); below 300 there is nothing to show.
        let somaxconn: i32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(LISTEN_BACKLOG);
        if somaxconn < 300 {
            return;
        }
        let listener = bind_listener("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();

        // Nobody accepts: every connect must fit in the kernel's queue. With
        // a 128-long queue the 130th would hang until the timeout.
        let held: Vec<TcpStream> = (0..300)
            .map(|i| {
                TcpStream::connect_timeout(&addr, Duration::from_secs(2))
                    .unwrap_or_else(|err| panic!("connection {i} not queued: {err}"))
            })
            .collect();

        assert_eq!(held.len(), 300);
    }
}
