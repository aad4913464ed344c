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
use actix_web_httpauth::headers::authorization::{Bearer, Scheme};

use crate::auth::revocation::RevokedSessions;
use crate::auth::tokens::{AccessClaims, TokenService};
use crate::error::AppError;
use crate::state::AppState;

/// The guard of the private API, as middleware: [`check_authorization`]
/// decides (size limit, the verified-token cache, actix-web-httpauth's
/// bearer parsing, [`TokenService::verify`], then the in-memory set of
/// revoked sessions). No token is 401 `missing_token`, a bad one or one of
/// a revoked session 401 `invalid_token`; a good one leaves an
/// [`AuthenticatedUser`] in the request. No database query is made.
///
/// It wraps each private route (one method each), so CORS preflights
/// (`OPTIONS`, answered by actix-cors further out) never reach it.
///
/// The refusal is answered here as a response (not an `Err`), so outer
/// middleware still stamps `x-request-id` on it.
pub async fn bearer_guard(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    match authenticate(&req) {
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

/// Checks the credentials of one request.
fn authenticate(req: &ServiceRequest) -> Result<AuthenticatedUser, AppError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| AppError::internal("application state missing"))?;
    check_authorization(
        &state.tokens,
        &state.revoked_sessions,
        req.headers().get(AUTHORIZATION),
    )
    .map(AuthenticatedUser)
    .inspect_err(|err| {
        if let AppError::InvalidToken(reason) = err {
            log::debug!("bearer token rejected: {reason}");
            state.metrics.record_token_rejected();
        }
    })
}

/// The guard's whole decision on one `Authorization` header value: values
/// over `Bearer ` + [`MAX_TOKEN_BYTES`] are refused unparsed; a token
/// verified earlier is answered from the cache straight from the header
/// bytes; otherwise [`bearer_token`] extracts it and
/// [`TokenService::verify`] validates it. Either way, a valid token whose
/// session is in `revoked` is then refused: the cache cannot bypass
/// revocation. No value, or one that is not a bearer credential, is
/// `MissingToken`; a bad or revoked token is `InvalidToken`.
///
/// Public so that the fuzz targets (`fuzz/`) and the tests run exactly what
/// the guard runs, without a server.
pub fn check_authorization(
    tokens: &TokenService,
    revoked: &RevokedSessions,
    authorization: Option<&HeaderValue>,
) -> Result<Arc<AccessClaims>, AppError> {
    let claims = verified_claims(tokens, authorization)?;
    if revoked.contains(&claims.sid) {
        return Err(AppError::InvalidToken(REVOKED));
    }
    Ok(claims)
}

/// The `error_description` of a token whose session was revoked.
pub const REVOKED: &str = "the session has been revoked";

/// The signature and claims part of [`check_authorization`].
fn verified_claims(
    tokens: &TokenService,
    authorization: Option<&HeaderValue>,
) -> Result<Arc<AccessClaims>, AppError> {
    let value = authorization.ok_or(AppError::MissingToken)?;
    if value.len() > "Bearer ".len() + MAX_TOKEN_BYTES {
        return Err(AppError::InvalidToken("token longer than 8 KiB"));
    }
    if let Some(claims) = cached_claims(tokens, value) {
        return Ok(claims);
    }
    let token = bearer_token(value).ok_or(AppError::MissingToken)?;
    tokens.verify(&token).map_err(AppError::InvalidToken)
}

/// The fast path: a token verified earlier is recognised by its digest,
/// straight from the header bytes, without a second scan or copy of the
/// token. It answers only where [`bearer_token`] would have produced
/// exactly these bytes as the token (the scheme `Bearer`, any case, one
/// space, then the token); anything else takes the full path.
fn cached_claims(tokens: &TokenService, value: &HeaderValue) -> Option<Arc<AccessClaims>> {
    const SCHEME: &[u8] = b"Bearer ";
    let (scheme, token) = value.as_bytes().split_at_checked(SCHEME.len())?;
    if !scheme.eq_ignore_ascii_case(SCHEME) {
        return None;
    }
    tokens.verify_cached(token)
}

/// The token of a `Bearer` credential, read by actix-web-httpauth's parser
/// after the scheme is normalised: the scheme is case-insensitive (RFC 9110
/// §11.1), `bEaReR x` is `Bearer x`, but actix-web-httpauth matches it
/// exactly. `None` when the value is not a bearer credential.
///
/// Public for the same reason as [`check_authorization`].
pub fn bearer_token(authorization: &HeaderValue) -> Option<String> {
    let normalized = normalize_bearer_scheme(authorization);
    Bearer::parse(normalized.as_ref().unwrap_or(authorization))
        .ok()
        .map(|bearer| bearer.token().to_owned())
}

/// `bEaReR x` rewritten as `Bearer x`; `None` when nothing needs rewriting.
/// Only the first seven bytes are looked at, so the usual spelling costs no
/// scan of the token.
fn normalize_bearer_scheme(value: &HeaderValue) -> Option<HeaderValue> {
    const CANONICAL: &[u8] = b"Bearer ";
    let (scheme, rest) = value.as_bytes().split_at_checked(CANONICAL.len())?;
    if scheme == CANONICAL || !scheme.eq_ignore_ascii_case(CANONICAL) {
        return None;
    }
    HeaderValue::from_bytes(&[CANONICAL, rest].concat()).ok()
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
