//! Operational endpoints: JWKS, liveness, readiness.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::auth::keys::Jwks;
use crate::blocking::run_db;
use crate::db;
use crate::error::{AppError, AppResult};
use crate::http::error::ErrorBody;
use crate::state::AppState;

/// `{"status": ...}` of the health routes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Status {
    /// `ok` or `ready`.
    pub status: &'static str,
}

/// `GET /.well-known/jwks.json`: public keys for offline verification.
#[utoipa::path(
    get, path = "/.well-known/jwks.json", tag = "meta",
    responses((status = 200, description = "Public signing keys", body = Jwks))
)]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(state.tokens.keys().jwks())
}

/// `GET /healthz`: the process is alive (no database).
#[utoipa::path(
    get, path = "/healthz", tag = "meta",
    responses((status = 200, description = "Process alive", body = Status))
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

/// `GET /readyz`: 200 when the database answers, else 503.
#[utoipa::path(
    get, path = "/readyz", tag = "meta",
    responses(
        (status = 200, description = "Database answers", body = Status),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn readyz(state: web::Data<AppState>) -> AppResult<HttpResponse> {
    run_db(&state.pool, |conn| {
        db::ping(conn).map_err(|err| AppError::Unavailable(err.to_string()))
    })
    .await?;
    Ok(HttpResponse::Ok().json(Status { status: "ready" }))
}

/// `GET /metrics`: Prometheus text (HTTP, auth counters, pool gauges).
#[utoipa::path(
    get, path = "/metrics", tag = "meta",
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"))
)]
pub async fn metrics(state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let pool = state.pool.state();
    state.metrics.set_pool_connections(
        pool.connections.saturating_sub(pool.idle_connections),
        pool.idle_connections,
    );
    let text = state.metrics.render().map_err(AppError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}
