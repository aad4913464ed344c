//! Operational endpoints: JWKS, liveness, readiness.

use actix_web::{web, HttpResponse};
use diesel::prelude::*;
use serde::Serialize;

use crate::blocking::run_db;
use crate::error::AppResult;
use crate::state::AppState;

/// `{"status": ...}` of the health routes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Status {
    /// `ok` or `ready`.
    pub status: &'static str,
}

/// `GET /.well-known/jwks.json`: public keys for offline verification.
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(state.tokens.keys().jwks())
}

/// `GET /healthz`: the process is alive (no database).
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

/// `GET /readyz`: 200 when the database answers, else 503.
pub async fn readyz(state: web::Data<AppState>) -> AppResult<HttpResponse> {
    run_db(&state.pool, |conn| {
        diesel::sql_query("SELECT 1")
            .execute(conn)
            .map_err(|err| crate::error::AppError::Unavailable(err.to_string()))
    })
    .await?;
    Ok(HttpResponse::Ok().json(Status { status: "ready" }))
}
