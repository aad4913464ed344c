//! Route table: every path, its methods, and the guard on `/api`.
//! Used by both `startup` and the tests, so they cannot drift.

pub mod admin;
pub mod api;
pub mod auth;
pub mod meta;

use actix_web::{middleware::from_fn, web, HttpResponse};
use serde::Serialize;

use crate::auth::guard::bearer_guard;
use crate::error::AppError;
use crate::rate_limit::AuthRateLimit;

/// Registers every route. Login and registration share one rate limiter
/// (`rate_limit`); refresh and logout carry a 256-bit secret and are not
/// limited, nor is the private API.
pub fn configure(cfg: &mut web::ServiceConfig, rate_limit: &AuthRateLimit) {
    cfg.service(
        web::scope("/auth")
            .service(post("/register", auth::register).wrap(rate_limit.middleware()))
            .service(post("/token", auth::issue_token).wrap(rate_limit.middleware()))
            .service(post("/refresh", auth::refresh))
            .service(post("/logout", auth::logout)),
    )
    .service(get("/.well-known/jwks.json", meta::jwks))
    .service(get("/healthz", meta::healthz))
    .service(get("/readyz", meta::readyz))
    .service(
        web::scope("/api")
            .service(
                web::resource("/me")
                    .route(web::get().to(api::me))
                    .route(web::delete().to(api::delete_account))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(post("/me/password", api::change_password))
            .service(
                web::resource("/sessions")
                    .route(web::get().to(api::list_sessions))
                    .route(web::delete().to(api::revoke_all_sessions))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/sessions/{session_id}")
                    .route(web::delete().to(api::revoke_session))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(get("/admin/users", admin::list_users))
            .wrap(from_fn(bearer_guard)),
    );
}

/// A resource answering POST; any other method is 405 in the envelope.
fn post<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::post().to(handler))
        .default_service(web::to(method_not_allowed))
}

/// A resource answering GET; any other method is 405 in the envelope.
fn get<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler))
        .default_service(web::to(method_not_allowed))
}

/// 405 for a known route with the wrong method.
pub async fn method_not_allowed() -> Result<HttpResponse, AppError> {
    Err(AppError::MethodNotAllowed)
}

/// 404 for anything unrouted.
pub async fn not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound)
}

/// A JSON response that must not be cached (it carries tokens).
pub(crate) fn no_store_json<T: Serialize>(
    status: actix_web::http::StatusCode,
    body: &T,
) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .insert_header((actix_web::http::header::PRAGMA, "no-cache"))
        .json(body)
}
