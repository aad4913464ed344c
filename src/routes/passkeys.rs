//! Passkeys: register one from a signed-in session, list and remove them,
//! and sign in with one (README "Passkeys").

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::guard::AuthenticatedUser;
use crate::auth::passkeys::{parse_assertion, parse_registration};
use crate::domain::PasskeyName;
use crate::error::{AppError, AppResult};
use crate::http::client_ip::client_info;
use crate::http::error::ErrorBody;
use crate::http::json_body::JsonBody;
use crate::routes::auth::{token_response, TokenResponse};
use crate::routes::no_store_json;
use crate::routes::openapi::{BearerRejected, JsonBodyErrors, Unavailable};
use crate::services::passkeys::{self, Started};
use crate::state::AppState;

/// `{password}`: re-confirms the account before a passkey is added or removed.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PasskeyPassword {
    /// The account's password.
    pub password: String,
}

/// `200` body of both starts.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CeremonyStarted {
    /// Send it back with the authenticator's answer (valid 300 s, once).
    pub challenge_id: Uuid,
    /// `{"publicKey": {…}}`: what `navigator.credentials.create` (or `.get`)
    /// takes, binary fields base64url.
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
}

/// `POST /api/me/passkeys/register/finish` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RegistrationFinish {
    /// From the start.
    pub challenge_id: String,
    /// The `PublicKeyCredential` from `navigator.credentials.create`, as
    /// JSON (`id`, `rawId`, `type`, `response.attestationObject`,
    /// `response.clientDataJSON`, base64url).
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
    /// 1–64 characters; "Passkey" when absent.
    #[schema(min_length = 1, max_length = 64)]
    pub name: Option<String>,
}

/// `201` body of a registration.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PasskeyCreated {
    /// The new passkey's id.
    pub passkey_id: Uuid,
    /// Its name.
    pub name: String,
    /// Registration time.
    pub created_at: DateTime<Utc>,
}

/// One passkey as listed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PasskeyView {
    /// Id (for removal).
    pub passkey_id: Uuid,
    /// Its name.
    pub name: String,
    /// Registration time.
    pub created_at: DateTime<Utc>,
    /// Last sign-in with it, or null.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// `GET /api/me/passkeys` body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PasskeyList {
    /// Oldest first.
    pub passkeys: Vec<PasskeyView>,
}

/// `POST /auth/passkey/start` body: an empty object (any members are
/// ignored; anything but an object is 400).
#[derive(Debug, utoipa::ToSchema)]
pub struct SignInStart {}

impl<'de> Deserialize<'de> for SignInStart {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A derived empty struct would also take `[]`.
        serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)
            .map(|_| SignInStart {})
    }
}

/// `POST /auth/passkey/finish` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SignInFinish {
    /// From the start.
    pub challenge_id: String,
    /// The `PublicKeyCredential` from `navigator.credentials.get`, as JSON
    /// (`id`, `rawId`, `type`, `response.authenticatorData`,
    /// `response.clientDataJSON`, `response.signature`,
    /// `response.userHandle`, base64url).
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}

/// `POST /api/me/passkeys/register/start`.
#[utoipa::path(
    post, path = "/api/me/passkeys/register/start", tag = "passkeys", security(("bearer" = [])),
    request_body = PasskeyPassword,
    responses(
        (status = 200, description = "Creation options (discoverable credential and user verification required; existing passkeys excluded)", body = CeremonyStarted),
        JsonBodyErrors,
        (status = 401, description = "invalid_credentials (wrong password), or missing_token / invalid_token", body = ErrorBody),
        (status = 404, description = "Account deleted", body = ErrorBody),
        Unavailable,
    )
)]
pub async fn start_registration(
    state: web::Data<AppState>,
    user: AuthenticatedUser,
    body: JsonBody<PasskeyPassword>,
) -> AppResult<HttpResponse> {
    let started =
        passkeys::start_registration(&state, user.claims().sub, body.into_inner().password).await?;
    Ok(started_response(started))
}

/// `POST /api/me/passkeys/register/finish`.
#[utoipa::path(
    post, path = "/api/me/passkeys/register/finish", tag = "passkeys", security(("bearer" = [])),
    request_body = RegistrationFinish,
    responses(
        (status = 201, description = "Passkey stored", body = PasskeyCreated),
        JsonBodyErrors,
        (status = 401, description = "invalid_otp (verification failed; unknown, used, expired or wrong-kind challenge), or missing_token / invalid_token", body = ErrorBody),
        (status = 422, description = "fields.name: not 1–64 characters", body = ErrorBody),
        Unavailable,
    )
)]
pub async fn finish_registration(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: AuthenticatedUser,
    body: JsonBody<RegistrationFinish>,
) -> AppResult<HttpResponse> {
    let RegistrationFinish {
        challenge_id,
        credential,
        name,
    } = body.into_inner();
    let name =
        PasskeyName::parse(name.as_deref()).map_err(|reason| AppError::field("name", reason))?;
    let credential = parse_registration(credential).map_err(AppError::InvalidRequest)?;
    let challenge_id = challenge(&challenge_id)?;
    let client = client_info(&req, state.settings.trust_forwarded_for);
    let row = passkeys::finish_registration(
        &state,
        user.claims().sub,
        challenge_id,
        credential,
        name,
        client,
    )
    .await?;
    Ok(HttpResponse::Created().json(PasskeyCreated {
        passkey_id: row.id,
        name: row.name,
        created_at: row.created_at,
    }))
}

/// `GET /api/me/passkeys`.
#[utoipa::path(
    get, path = "/api/me/passkeys", tag = "passkeys", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's passkeys", body = PasskeyList),
        BearerRejected,
        Unavailable,
    )
)]
pub async fn list_passkeys(
    state: web::Data<AppState>,
    user: AuthenticatedUser,
) -> AppResult<HttpResponse> {
    let rows = passkeys::list(&state, user.claims().sub).await?;
    Ok(HttpResponse::Ok().json(PasskeyList {
        passkeys: rows
            .into_iter()
            .map(|row| PasskeyView {
                passkey_id: row.id,
                name: row.name,
                created_at: row.created_at,
                last_used_at: row.last_used_at,
            })
            .collect(),
    }))
}

/// `DELETE /api/me/passkeys/{passkey_id}`.
#[utoipa::path(
    delete, path = "/api/me/passkeys/{passkey_id}", tag = "passkeys", security(("bearer" = [])),
    params(("passkey_id" = Uuid, Path, description = "A passkey of the caller")),
    request_body = PasskeyPassword,
    responses(
        (status = 204, description = "Passkey removed"),
        JsonBodyErrors,
        (status = 401, description = "invalid_credentials (wrong password), or missing_token / invalid_token", body = ErrorBody),
        (status = 404, description = "Unknown id, or another user's", body = ErrorBody),
        Unavailable,
    )
)]
pub async fn remove_passkey(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: AuthenticatedUser,
    path: web::Path<String>,
    body: JsonBody<PasskeyPassword>,
) -> AppResult<HttpResponse> {
    // Parsed here, not by the extractor, so that a bad body is refused
    // (400/413/415) the same whatever the id; a malformed id is 404.
    let passkey_id = Uuid::parse_str(&path.into_inner()).map_err(|_| AppError::NotFound)?;
    let client = client_info(&req, state.settings.trust_forwarded_for);
    passkeys::remove(
        &state,
        user.claims().sub,
        passkey_id,
        body.into_inner().password,
        client,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /auth/passkey/start`.
#[utoipa::path(
    post, path = "/auth/passkey/start", tag = "passkeys",
    request_body = SignInStart,
    responses(
        (status = 200, description = "Request options with an empty allowCredentials", body = CeremonyStarted),
        JsonBodyErrors,
        (status = 429, description = "Rate limited (Retry-After)", body = ErrorBody),
        Unavailable,
    )
)]
pub async fn start_sign_in(
    state: web::Data<AppState>,
    _body: JsonBody<SignInStart>,
) -> AppResult<HttpResponse> {
    let started = passkeys::start_sign_in(&state).await?;
    Ok(started_response(started))
}

/// `POST /auth/passkey/finish`: a verified assertion starts a session.
#[utoipa::path(
    post, path = "/auth/passkey/finish", tag = "passkeys",
    request_body = SignInFinish,
    responses(
        (status = 200, description = "Signed in; a new session (amr hwk, user, mfa)", body = TokenResponse),
        JsonBodyErrors,
        (status = 401, description = "invalid_otp: verification failed, unknown credential, or an unknown, used, expired or wrong-kind challenge", body = ErrorBody),
        Unavailable,
    )
)]
pub async fn finish_sign_in(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody<SignInFinish>,
) -> AppResult<HttpResponse> {
    let SignInFinish {
        challenge_id,
        credential,
    } = body.into_inner();
    let credential = parse_assertion(credential).map_err(AppError::InvalidRequest)?;
    let challenge_id = challenge(&challenge_id)?;
    let client = client_info(&req, state.settings.trust_forwarded_for);
    let tokens =
        passkeys::finish_sign_in(&state.into_inner(), challenge_id, credential, client).await?;
    Ok(token_response(tokens))
}

/// A challenge id that is not a UUID names no challenge: `invalid_otp`.
fn challenge(raw: &str) -> AppResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| {
        log::debug!("passkey finish refused: challenge_id is not a UUID");
        AppError::InvalidOtp
    })
}

/// Both starts answer the same shape, not cached.
fn started_response(started: Started) -> HttpResponse {
    no_store_json(
        StatusCode::OK,
        &CeremonyStarted {
            challenge_id: started.challenge_id,
            options: started.options,
        },
    )
}
