//! Public auth endpoints: register, token (login), refresh, logout.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::refresh_token::RefreshToken;
use crate::domain::{Password, Username};
use crate::error::{AppError, AppResult, FieldErrors};
use crate::http::client_ip::client_info;
use crate::http::error::ErrorBody;
use crate::http::json_body::JsonBody;
use crate::routes::no_store_json;
use crate::routes::openapi::{JsonBodyErrors, Unavailable};
use crate::services::accounts::{self, LoginOutcome};
use crate::services::sessions::{self, IssuedTokens};
use crate::state::AppState;

/// `{username, password}`: the body of register.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Registration {
    /// 3–32 of ASCII letters, digits, `_ . -`; case-insensitive.
    #[schema(min_length = 3, max_length = 32, pattern = "^[A-Za-z0-9_.-]+$")]
    pub username: String,
    /// 8–72 bytes of UTF-8, no NUL. JSON Schema counts characters, not
    /// bytes, so the lengths here are the widest true bounds: 2 characters
    /// (of 4 bytes each) to 72 (of 1 byte); within them the byte count decides.
    #[schema(min_length = 2, max_length = 72, pattern = "^[^\\u0000]*$")]
    pub password: String,
}

/// `{username, password}`: the body of token (login). Login checks no
/// formats: any pair that matches no account is 401.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Credentials {
    /// Username, any string (compared case-insensitively).
    pub username: String,
    /// Password, any string.
    pub password: String,
}

/// `201` body of register.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RegisteredUser {
    /// New user's id.
    pub user_id: Uuid,
    /// Lower-cased username.
    pub username: String,
    /// Registration time (RFC 3339, UTC).
    pub created_at: DateTime<Utc>,
}

/// Token response: Flask-JWT-Extended's `{token, user_id}` plus RFC 6749 §5.1.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// Same as `access_token` (Flask-JWT-Extended's shape).
    pub token: String,
    /// The user's id.
    pub user_id: Uuid,
    /// RS256 access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Access-token lifetime in seconds.
    pub expires_in: i64,
    /// New refresh token.
    pub refresh_token: String,
    /// Seconds until the session expires if not refreshed.
    pub refresh_expires_in: i64,
}

/// `{refresh_token}`: the body of refresh and logout.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RefreshRequest {
    /// A refresh token from a previous token response.
    pub refresh_token: String,
}

/// `POST /auth/register`.
#[utoipa::path(
    post, path = "/auth/register", tag = "auth",
    request_body = Registration,
    responses(
        (status = 201, description = "Account created", body = RegisteredUser,
            links(("login" = (
                operation_id = "issue_token",
                request_body = json!({
                    "username": "$request.body#/username",
                    "password": "$request.body#/password"
                }),
                description = "Log in with the new account"
            )))
        ),
        JsonBodyErrors,
        (status = 409, description = "Username taken", body = ErrorBody),
        (status = 422, description = "Invalid username or password", body = ErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = ErrorBody),
        Unavailable,
    )
)]
pub async fn register(
    state: web::Data<AppState>,
    body: JsonBody<Registration>,
) -> AppResult<HttpResponse> {
    let Registration { username, password } = body.into_inner();
    let mut fields = FieldErrors::new();
    let username = Username::parse(&username)
        .map_err(|reason| fields.insert("username".into(), reason))
        .ok();
    let password = Password::parse(&password)
        .map_err(|reason| fields.insert("password".into(), reason))
        .ok();
    let (Some(username), Some(password)) = (username, password) else {
        return Err(AppError::Validation(fields));
    };
    let user = accounts::register(&state, username, password).await?;
    Ok(HttpResponse::Created().json(RegisteredUser {
        user_id: user.id,
        username: user.username,
        created_at: user.created_at,
    }))
}

/// `POST /auth/token`: log in, start a session on this device.
#[utoipa::path(
    post, path = "/auth/token", tag = "auth",
    request_body = Credentials,
    responses(
        (status = 200, description = "Logged in; a new session", body = TokenResponse,
            links(
                ("refresh" = (
                    operation_id = "refresh",
                    request_body = json!({"refresh_token": "$response.body#/refresh_token"}),
                    description = "Rotate the new session's refresh token"
                )),
                ("logout" = (
                    operation_id = "logout",
                    request_body = json!({"refresh_token": "$response.body#/refresh_token"}),
                    description = "Log the new session out"
                ))
            )
        ),
        JsonBodyErrors,
        (status = 401, description = "invalid_credentials", body = ErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = ErrorBody),
        Unavailable,
    )
)]
pub async fn issue_token(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody<Credentials>,
) -> AppResult<HttpResponse> {
    let Credentials { username, password } = body.into_inner();
    let client = client_info(&req, state.settings.trust_forwarded_for);
    match accounts::log_in(&state.into_inner(), &username, password, client).await? {
        LoginOutcome::SignedIn(tokens) => Ok(token_response(tokens)),
    }
}

/// `POST /auth/refresh`: rotate the refresh token.
#[utoipa::path(
    post, path = "/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "Rotated (or a grace retry: the same refresh token)", body = TokenResponse,
            links(("refresh" = (
                operation_id = "refresh",
                request_body = json!({"refresh_token": "$response.body#/refresh_token"}),
                description = "Rotate again with the new refresh token"
            )))
        ),
        JsonBodyErrors,
        (status = 401, description = "invalid_grant", body = ErrorBody),
        Unavailable,
    )
)]
pub async fn refresh(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody<RefreshRequest>,
) -> AppResult<HttpResponse> {
    let presented = RefreshToken::presented(&body.refresh_token);
    let client = client_info(&req, state.settings.trust_forwarded_for);
    let tokens = sessions::refresh(&state.into_inner(), presented, client).await?;
    Ok(token_response(tokens))
}

/// `POST /auth/logout`: revoke the token's session; always 204.
#[utoipa::path(
    post, path = "/auth/logout", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 204, description = "Session revoked (also for unknown tokens)"),
        JsonBodyErrors,
        Unavailable,
    )
)]
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody<RefreshRequest>,
) -> AppResult<HttpResponse> {
    let presented = RefreshToken::presented(&body.refresh_token);
    let client = client_info(&req, state.settings.trust_forwarded_for);
    sessions::logout(&state, presented, client).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The token response (`Cache-Control: no-store`).
fn token_response(tokens: IssuedTokens) -> HttpResponse {
    no_store_json(
        StatusCode::OK,
        &TokenResponse {
            token: tokens.access_token.clone(),
            user_id: tokens.user_id,
            access_token: tokens.access_token,
            token_type: "Bearer",
            expires_in: tokens.expires_in,
            refresh_token: tokens.refresh_token.expose().to_owned(),
            refresh_expires_in: tokens.refresh_expires_in,
        },
    )
}
