//! The bearer-token guard of the private API and the extractors handlers
//! use to read the verified caller.

use std::future::{ready, Ready};
use std::marker::PhantomData;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderValue, AUTHORIZATION};
use actix_web::middleware::Next;
use actix_web::{web, Error, FromRequest, HttpMessage, HttpRequest};
use actix_web_httpauth::extractors::bearer::BearerAuth;

use crate::auth::tokens::AccessClaims;
use crate::error::AppError;
use crate::state::AppState;

/// The guard of the private API, as middleware: actix-web-httpauth extracts
/// the bearer credentials, [`TokenService::verify`] validates them. No token
/// is 401 `missing_token`, a bad one 401 `invalid_token`; a good one leaves
/// an [`AuthenticatedUser`] in the request. No database query is made.
///
/// It wraps each private route (one method each), so CORS preflights
/// (`OPTIONS`, answered by actix-cors further out) never reach it.
///
/// The refusal is answered here as a response (not an `Err`), so outer
/// middleware still stamps `x-request-id` on it.
///
/// [`TokenService::verify`]: crate::auth::tokens::TokenService::verify
pub async fn bearer_guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    if authorization_too_long(&req) {
        let err = AppError::InvalidToken("token longer than 8 KiB");
        return Ok(req.error_response(err).map_into_right_body());
    }
    let verified = match cached_caller(&req) {
        Some(user) => Ok(user),
        None => {
            normalize_bearer_scheme(&mut req);
            let credentials = req.extract::<BearerAuth>().await.ok();
            authenticate(&req, credentials)
        }
    };
    match verified {
        Ok(user) => {
            req.extensions_mut().insert(user);
            next.call(req)
                .await
                .map(ServiceResponse::map_into_left_body)
        }
        Err(err) => Ok(req.error_response(err).map_into_right_body()),
    }
}

/// The longest bearer token the guard will parse. Ours are about 800
/// bytes; anything past this is refused before any parsing or hashing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Whether the `Authorization` value is too long to hold a token we accept
/// (`Bearer ` plus at most [`MAX_TOKEN_BYTES`]).
fn authorization_too_long(req: &ServiceRequest) -> bool {
    req.headers()
        .get(AUTHORIZATION)
        .is_some_and(|value| value.len() > "Bearer ".len() + MAX_TOKEN_BYTES)
}

/// The fast path: a token verified earlier is recognised by its digest,
/// straight from the header bytes, without a second scan or copy of the
/// token. It answers only where the extraction below would have produced
/// exactly these bytes as the token (the scheme `Bearer`, any case, one
/// space, then the token); anything else takes the full path.
fn cached_caller(req: &ServiceRequest) -> Option<AuthenticatedUser> {
    const SCHEME: &[u8] = b"Bearer ";
    let value = req.headers().get(AUTHORIZATION)?.as_bytes();
    let (scheme, token) = value.split_at_checked(SCHEME.len())?;
    if !scheme.eq_ignore_ascii_case(SCHEME) {
        return None;
    }
    let state = req.app_data::<web::Data<AppState>>()?;
    state.tokens.verify_cached(token).map(AuthenticatedUser)
}

/// Checks the credentials of one request.
fn authenticate(
    req: &ServiceRequest,
    credentials: Option<BearerAuth>,
) -> Result<AuthenticatedUser, AppError> {
    let credentials = credentials.ok_or(AppError::MissingToken)?;
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| AppError::internal("application state missing"))?;
    state
        .tokens
        .verify(credentials.token())
        .map(AuthenticatedUser)
        .map_err(|reason| {
            log::debug!("bearer token rejected: {reason}");
            state.metrics.record_token_rejected();
            AppError::InvalidToken(reason)
        })
}

/// Rewrites `authorization: bEaReR x` to `Bearer x` before extraction: the
/// scheme is case-insensitive (RFC 9110 §11.1) but actix-web-httpauth
/// matches it exactly. Only the first seven bytes are looked at, so the
/// usual spelling costs no scan of the token.
fn normalize_bearer_scheme(req: &mut ServiceRequest) {
    const CANONICAL: &[u8] = b"Bearer ";
    let Some(value) = req.headers().get(AUTHORIZATION) else {
        return;
    };
    let bytes = value.as_bytes();
    let Some((scheme, rest)) = bytes.split_at_checked(CANONICAL.len()) else {
        return;
    };
    if scheme == CANONICAL || !scheme.eq_ignore_ascii_case(CANONICAL) {
        return;
    }
    if let Ok(value) = HeaderValue::from_bytes(&[CANONICAL, rest].concat()) {
        req.headers_mut().insert(AUTHORIZATION, value);
    }
}

/// The verified caller of a private route (`get_jwt_identity()`).
#[derive(Debug, Clone)]
pub struct AuthenticatedUser(pub Arc<AccessClaims>);

impl AuthenticatedUser {
    /// The verified claims.
    pub fn claims(&self) -> &AccessClaims {
        &self.0
    }
}

impl FromRequest for AuthenticatedUser {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<AuthenticatedUser>()
                .cloned()
                .ok_or(AppError::MissingToken),
        )
    }
}

/// A role a route can demand, as a type, so checks are declared in handler
/// signatures rather than written as `if`s.
pub trait Role {
    /// The role name that must appear in the token's `roles`.
    const NAME: &'static str;
}

/// The `admin` role.
#[derive(Debug)]
pub struct Admin;

impl Role for Admin {
    const NAME: &'static str = "admin";
}

/// A caller whose token carries role `R`; otherwise 403 `insufficient_scope`.
#[derive(Debug)]
pub struct RequireRole<R: Role> {
    /// The verified caller.
    pub user: AuthenticatedUser,
    _role: PhantomData<R>,
}

impl<R: Role> FromRequest for RequireRole<R> {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = match AuthenticatedUser::from_request(req, payload).into_inner() {
            Ok(user) => user,
            Err(err) => return ready(Err(err)),
        };
        if user.claims().roles.iter().any(|role| role == R::NAME) {
            ready(Ok(Self {
                user,
                _role: PhantomData,
            }))
        } else {
            ready(Err(AppError::InsufficientScope(R::NAME)))
        }
    }
}
