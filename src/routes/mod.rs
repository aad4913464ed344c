//! Route table: every endpoint, its method, whether it is private or rate
//! limited. `configure` builds the app from [`endpoints`], and the OpenAPI
//! test checks the same list, so the document cannot drift from the server.

pub mod admin;
pub mod auth;
pub mod email;
pub mod events;
pub mod me;
pub mod meta;
pub mod mfa;
pub mod openapi;
pub mod passkeys;
pub mod sessions;

use actix_web::http::Method;
use actix_web::middleware::{from_fn, Condition};
use actix_web::{web, HttpResponse, ResponseError, Route};
use serde::Serialize;

use crate::auth::guard::bearer_guard;
use crate::error::AppError;
use crate::http::rate_limit::auth_rate_limit;

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone.
    Public,
    /// Anyone, within the per-IP login rate limit.
    RateLimited,
    /// Bearer access token required.
    Private,
}

/// One method on one path, and the handler that answers it.
pub struct Endpoint {
    /// HTTP method.
    pub method: Method,
    /// Full path, in actix / OpenAPI `{param}` syntax.
    pub path: &'static str,
    /// Access rule.
    pub access: Access,
    attach: fn(Route) -> Route,
}

impl Endpoint {
    fn new(method: Method, path: &'static str, access: Access, attach: fn(Route) -> Route) -> Self {
        Self {
            method,
            path,
            access,
            attach,
        }
    }
}

/// Every endpoint tessera serves (README "API in brief").
pub fn endpoints() -> Vec<Endpoint> {
    use Access::{Private, Public, RateLimited};
    vec![
        Endpoint::new(Method::POST, "/auth/register", RateLimited, |r| {
            r.to(auth::register)
        }),
        Endpoint::new(Method::POST, "/auth/token", RateLimited, |r| {
            r.to(auth::issue_token)
        }),
        Endpoint::new(Method::POST, "/auth/mfa", RateLimited, |r| {
            r.to(mfa::complete_mfa)
        }),
        Endpoint::new(Method::POST, "/auth/refresh", Public, |r| {
            r.to(auth::refresh)
        }),
        Endpoint::new(Method::POST, "/auth/logout", Public, |r| r.to(auth::logout)),
        Endpoint::new(Method::POST, "/auth/email/verify", Public, |r| {
            r.to(email::verify_email)
        }),
        Endpoint::new(Method::POST, "/auth/password/forgot", RateLimited, |r| {
            r.to(email::forgot_password)
        }),
        Endpoint::new(Method::POST, "/auth/password/reset", Public, |r| {
            r.to(email::reset_password)
        }),
        Endpoint::new(Method::GET, "/.well-known/jwks.json", Public, |r| {
            r.to(meta::jwks)
        }),
        Endpoint::new(Method::GET, "/healthz", Public, |r| r.to(meta::healthz)),
        Endpoint::new(Method::GET, "/readyz", Public, |r| r.to(meta::readyz)),
        Endpoint::new(Method::GET, "/metrics", Public, |r| r.to(meta::metrics)),
        Endpoint::new(Method::GET, "/openapi.json", Public, |r| {
            r.to(openapi::openapi_json)
        }),
        Endpoint::new(Method::GET, "/api/me", Private, |r| r.to(me::me)),
        Endpoint::new(Method::DELETE, "/api/me", Private, |r| {
            r.to(me::delete_account)
        }),
        Endpoint::new(Method::POST, "/api/me/password", Private, |r| {
            r.to(me::change_password)
        }),
        Endpoint::new(Method::GET, "/api/account", Private, |r| r.to(me::account)),
        Endpoint::new(Method::PUT, "/api/me/email", Private, |r| {
            r.to(email::set_email)
        }),
        Endpoint::new(Method::GET, "/api/me/events", Private, |r| {
            r.to(events::my_events)
        }),
        Endpoint::new(Method::POST, "/api/me/mfa/totp", Private, |r| {
            r.to(mfa::enroll)
        }),
        Endpoint::new(Method::DELETE, "/api/me/mfa/totp", Private, |r| {
            r.to(mfa::disable)
        }),
        Endpoint::new(Method::POST, "/api/me/mfa/totp/confirm", Private, |r| {
            r.to(mfa::confirm)
        }),
        Endpoint::new(Method::POST, "/api/me/mfa/recovery-codes", Private, |r| {
            r.to(mfa::regenerate_recovery_codes)
        }),
        Endpoint::new(Method::GET, "/api/sessions", Private, |r| {
            r.to(sessions::list_sessions)
        }),
        Endpoint::new(Method::DELETE, "/api/sessions", Private, |r| {
            r.to(sessions::revoke_all_sessions)
        }),
        Endpoint::new(Method::DELETE, "/api/sessions/{session_id}", Private, |r| {
            r.to(sessions::revoke_session)
        }),
        Endpoint::new(Method::GET, "/api/admin/users", Private, |r| {
            r.to(admin::list_users)
        }),
        Endpoint::new(Method::GET, "/api/admin/events", Private, |r| {
            r.to(events::admin_events)
        }),
        Endpoint::new(
            Method::POST,
            "/api/me/passkeys/register/start",
            Private,
            |r| r.to(passkeys::start_registration),
        ),
        Endpoint::new(
            Method::POST,
            "/api/me/passkeys/register/finish",
            Private,
            |r| r.to(passkeys::finish_registration),
        ),
        Endpoint::new(Method::GET, "/api/me/passkeys", Private, |r| {
            r.to(passkeys::list_passkeys)
        }),
        Endpoint::new(
            Method::DELETE,
            "/api/me/passkeys/{passkey_id}",
            Private,
            |r| r.to(passkeys::remove_passkey),
        ),
        Endpoint::new(Method::POST, "/auth/passkey/start", RateLimited, |r| {
            r.to(passkeys::start_sign_in)
        }),
        Endpoint::new(Method::POST, "/auth/passkey/finish", Public, |r| {
            r.to(passkeys::finish_sign_in)
        }),
    ]
}

/// Registers every endpoint: one resource per path, private routes behind
/// the bearer guard, login and registration behind the shared rate limiter.
///
/// The guard wraps each private *route*, not the resource or the `/api`
/// scope: a wrong method is 405 and an unknown `/api/...` path 404 whether
/// or not a token was sent. GET routes also answer HEAD. Any other method is
/// 405 in the envelope with an `Allow` header.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let endpoints = endpoints();
    for path in distinct_paths(&endpoints) {
        let on_path: Vec<&Endpoint> = endpoints.iter().filter(|e| e.path == path).collect();
        let mut allowed: Vec<Method> = Vec::new();
        let mut resource = web::resource(path);
        for endpoint in &on_path {
            let mut methods = vec![endpoint.method.clone()];
            if endpoint.method == Method::GET {
                methods.push(Method::HEAD);
            }
            for method in methods {
                let route = (endpoint.attach)(web::method(method.clone()));
                let route = if endpoint.access == Access::Private {
                    route.wrap(from_fn(bearer_guard))
                } else {
                    route
                };
                resource = resource.route(route);
                allowed.push(method);
            }
        }
        let allow = allowed
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        let rate_limited = on_path.iter().any(|e| e.access == Access::RateLimited);
        cfg.service(
            resource
                .default_service(web::to(move || method_not_allowed(allow.clone())))
                .wrap(Condition::new(rate_limited, from_fn(auth_rate_limit))),
        );
    }
}

/// Paths in table order, each once.
fn distinct_paths(endpoints: &[Endpoint]) -> Vec<&'static str> {
    let mut paths: Vec<&'static str> = Vec::new();
    for endpoint in endpoints {
        if !paths.contains(&endpoint.path) {
            paths.push(endpoint.path);
        }
    }
    paths
}

/// 405 for a known route with the wrong method, naming the allowed ones.
pub async fn method_not_allowed(allow: String) -> HttpResponse {
    let mut response = AppError::MethodNotAllowed.error_response();
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&allow) {
        response
            .headers_mut()
            .insert(actix_web::http::header::ALLOW, value);
    }
    response
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
