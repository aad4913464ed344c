//! Builds the application in the order SPEC §2 fixes: configuration → keys
//! → database → migrations → bind → serve. Everything that can fail does so
//! before the port is opened.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_cors::Cors;
use actix_web::dev::Server;
use actix_web::http::header::{self, HeaderName};
use actix_web::middleware::{from_fn, Condition};
use actix_web::{web, App, HttpServer};

use crate::access_log::access_log;
use crate::auth::keys::KeySet;
use crate::auth::password::Passwords;
use crate::auth::tokens::TokenService;
use crate::blocking::CpuPool;
use crate::config::Settings;
use crate::db;
use crate::envelope::ensure_json_errors;
use crate::error::{json_error_handler, path_error_handler, query_error_handler};
use crate::metrics::{HttpMetrics, Metrics};
use crate::rate_limit::AuthRateLimit;
use crate::request_id::request_id_middleware;
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
/// POST, DELETE; `authorization`, `content-type` and `x-request-id` named
/// explicitly (a wildcard does not cover `authorization`). A request from
/// another origin is served without CORS headers, so the browser blocks it.
fn cors(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods(["GET", "POST", "DELETE"])
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

/// A bound, not yet running server and the port it got.
pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Loads keys, prepares the database, binds, and builds the server.
    pub fn build(settings: Settings) -> Result<Self, StartupError> {
        let keys = KeySet::load(
            settings.jwt_private_key_path.as_deref(),
            &settings.jwt_previous_public_key_paths,
        )
        .map_err(|err| StartupError(err.to_string()))?;
        log::info!("signing with key kid={}", keys.current_kid());

        db::ensure_database_exists(&settings.database_url)
            .map_err(|err| StartupError(err.to_string()))?;
        let pool = db::build_pool(
            &settings.database_url,
            settings.db_pool_size,
            settings.db_timeout,
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

        let start_pool = |name: &str, queue_per_core: usize| {
            CpuPool::per_core(name, queue_per_core)
                .map_err(|err| StartupError(format!("cannot start the {name} threads: {err}")))
        };
        // About 8 s of queued bcrypt work per core at cost 12; beyond that a
        // login is better answered 503 than left waiting.
        let passwords = Passwords::new(start_pool("bcrypt", 32)?, settings.bcrypt_cost);
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

        let rate_limit = AuthRateLimit::new(
            settings.auth_rate_limit_per_minute,
            settings.trust_forwarded_for,
            metrics.clone(),
        )
        .ok_or_else(|| {
            StartupError("AUTH_RATE_LIMIT_PER_MINUTE: invalid limiter configuration".into())
        })?;
        let cors_origins = settings.cors_allowed_origins.clone();
        // Request counts and latency histograms by route PATTERN (unmatched
        // paths fold into one series), on the same registry as ours.
        let http_metrics = HttpMetrics::new(metrics.registry())
            .map_err(|err| StartupError(format!("metrics: {err}")))?;
        let tokens = TokenService::new(Arc::new(keys), &settings);
        let state = web::Data::new(AppState {
            settings,
            pool,
            tokens,
            metrics,
            passwords,
            signing,
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
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
                .configure(|cfg| routes::configure(cfg, &rate_limit))
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
        Ok(Self { port, server })
    }

    /// The port actually bound (useful with `BIND_ADDR=…:0`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM / Ctrl-C, then drains in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
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
