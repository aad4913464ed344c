//! The caller's own account: who the token says you are, password change,
//! account deletion (both with a step-up code on TOTP accounts), and the
//! database view of the account.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::guard::AuthenticatedUser;
use crate::domain::Password;
use crate::error::{AppError, AppResult};
use crate::http::client_ip::client_info;
use crate::http::error::ErrorBody;
use crate::http::json_body::JsonBody;
use crate::routes::openapi::{BearerRejected, JsonBodyErrors, Unavailable};
use crate::services::accounts;
use crate::services::mfa::{self, Purpose};
use crate::state::AppState;

/// `GET /api/me` body, from the verified token alone.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me<'a> {
    /// `sub`.
    pub user_id: Uuid,
    /// `username`.
    pub username: &'a str,
    /// `roles`.
    pub roles: &'a [String],
    /// `sid`.
    pub session_id: Uuid,
    /// `exp` as RFC 3339.
    pub expires_at: DateTime<Utc>,
}

/// `GET /api/me`: who the token says you are; no database query.
#[utoipa::path(
    get, path = "/api/me", tag = "api", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller, from the token alone", body = Me),
        BearerRejected,
    )
)]
pub async fn me(user: AuthenticatedUser) -> AppResult<HttpResponse> {
    let claims = user.claims();
    let expires_at = DateTime::<Utc>::from_timestamp(claims.exp, 0)
        .ok_or_else(|| AppError::internal("exp out of range"))?;
    Ok(HttpResponse::Ok().json(Me {
        user_id: claims.sub,
        username: &claims.username,
        roles: &claims.roles,
        session_id: claims.sid,
        expires_at,
    }))
}

/// `POST /api/me/password` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PasswordChange {
    /// The password in use now.
    pub current_password: String,
    /// The new password (same rules as registration).
    pub new_password: String,
    /// A TOTP or recovery code: required when the account has TOTP.
    #[serde(default)]
    pub code: Option<String>,
}

/// `POST /api/me/password`: check the current password, store the new
/// one, and revoke every other session (the caller's stays).
#[utoipa::path(
    post, path = "/api/me/password", tag = "api", security(("bearer" = [])),
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Password changed; other sessions revoked"),
        JsonBodyErrors,
        (status = 401, description = "invalid_credentials (wrong current password), mfa_required \
            (TOTP account, no code), invalid_otp (wrong code), or missing_token / invalid_token", body = ErrorBody),
        (status = 404, description = "Account deleted", body = ErrorBody),
        (status = 422, description = "Invalid new password", body = ErrorBody),
        (status = 429, description = "rate_limited: 5 wrong codes for this account in 5 minutes (Retry-After)", body = ErrorBody),
        Unavailable,
    )
)]
pub async fn change_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: AuthenticatedUser,
    body: JsonBody<PasswordChange>,
) -> AppResult<HttpResponse> {
    let PasswordChange {
        current_password,
        new_password,
        code,
    } = body.into_inner();
    let claims = user.claims();
    let account = accounts::confirm_password(&state, claims.sub, current_password).await?;
    let new_password = Password::parse_for(&account.username, &new_password)
        .map_err(|reason| AppError::field("new_password", reason))?;
    let client = client_info(&req, state.settings.trust_forwarded_for);
    mfa::step_up(
        &state,
        claims.sub,
        code,
        Purpose::PasswordChange,
        client.clone(),
    )
    .await?;
    accounts::change_password(&state, account, claims.sid, new_password, client).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /api/me` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AccountDeletion {
    /// The account's password, as confirmation.
    pub password: String,
    /// A TOTP or recovery code: required when the account has TOTP.
    #[serde(default)]
    pub code: Option<String>,
}

/// `DELETE /api/me`: delete the account and, by cascade, its sessions.
#[utoipa::path(
    delete, path = "/api/me", tag = "api", security(("bearer" = [])),
    request_body = AccountDeletion,
    responses(
        (status = 204, description = "Account and sessions deleted"),
        JsonBodyErrors,
        (status = 401, description = "invalid_credentials (wrong password), mfa_required (TOTP \
            account, no code), invalid_otp (wrong code), or missing_token / invalid_token", body = ErrorBody),
        (status = 404, description = "Account already deleted", body = ErrorBody),
        (status = 429, description = "rate_limited: 5 wrong codes for this account in 5 minutes (Retry-After)", body = ErrorBody),
        Unavailable,
    )
)]
pub async fn delete_account(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: AuthenticatedUser,
    body: JsonBody<AccountDeletion>,
) -> AppResult<HttpResponse> {
    let user_id = user.claims().sub;
    let AccountDeletion { password, code } = body.into_inner();
    accounts::confirm_password(&state, user_id, password).await?;
    let client = client_info(&req, state.settings.trust_forwarded_for);
    mfa::step_up(
        &state,
        user_id,
        code,
        Purpose::AccountDeletion,
        client.clone(),
    )
    .await?;
    accounts::delete(&state, user_id, user.claims().sid, client).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Second factors on an account.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MfaOverview {
    /// Whether TOTP is enabled.
    pub totp: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: i64,
    /// Registered passkeys.
    pub passkeys: i64,
}

/// `GET /api/account` body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Account {
    /// The account's id.
    pub user_id: Uuid,
    /// Lower-cased username.
    pub username: String,
    /// Email address, or null.
    pub email: Option<String>,
    /// Whether the address was verified.
    pub email_verified: bool,
    /// Registration time.
    pub created_at: DateTime<Utc>,
    /// Second factors.
    pub mfa: MfaOverview,
}

/// `GET /api/account`: the account as the database holds it.
#[utoipa::path(
    get, path = "/api/account", tag = "api", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's account", body = Account),
        BearerRejected,
        (status = 404, description = "Account deleted", body = ErrorBody),
        Unavailable,
    )
)]
pub async fn account(
    state: web::Data<AppState>,
    user: AuthenticatedUser,
) -> AppResult<HttpResponse> {
    let overview = accounts::overview(&state, user.claims().sub).await?;
    Ok(HttpResponse::Ok().json(Account {
        user_id: overview.user.id,
        username: overview.user.username,
        email: overview.email,
        email_verified: overview.email_verified,
        created_at: overview.user.created_at,
        mfa: MfaOverview {
            totp: overview.totp,
            recovery_codes_left: overview.recovery_codes_left,
            passkeys: overview.passkeys,
        },
    }))
}
