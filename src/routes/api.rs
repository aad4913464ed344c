//! Private endpoints behind the bearer guard.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::accounts;
use crate::auth::guard::AuthenticatedUser;
use crate::blocking::run_db;
use crate::db::sessions;
use crate::domain::Password;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::json_body::JsonBody;
use crate::routes::openapi::{BearerRejected, JsonBodyErrors, Unavailable};
use crate::state::AppState;

/// `GET /api/me` body, from the verified token alone.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    /// `sub`.
    pub user_id: Uuid,
    /// `username`.
    pub username: String,
    /// `roles`.
    pub roles: Vec<String>,
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
        username: claims.username.clone(),
        roles: claims.roles.clone(),
        session_id: claims.sid,
        expires_at,
    }))
}

/// One device session as listed by `GET /api/sessions`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    /// Session id (`sid` of its tokens).
    pub session_id: Uuid,
    /// Login time.
    pub created_at: DateTime<Utc>,
    /// Last login or refresh.
    pub last_used_at: DateTime<Utc>,
    /// Inactivity deadline.
    pub expires_at: DateTime<Utc>,
    /// User-Agent at login.
    pub user_agent: Option<String>,
    /// Client IP at login.
    pub ip: Option<String>,
    /// Whether this is the caller's own session.
    pub current: bool,
}

/// `GET /api/sessions` body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionList {
    /// Live sessions, newest first.
    pub sessions: Vec<SessionView>,
}

/// `GET /api/sessions`: the caller's live sessions.
#[utoipa::path(
    get, path = "/api/sessions", tag = "api", security(("bearer" = [])),
    responses(
        (status = 200, description = "Live sessions", body = SessionList,
            links(("revoke" = (
                operation_id = "revoke_session",
                parameters(("session_id" = "$response.body#/sessions/0/session_id")),
                description = "Revoke the first listed session"
            )))
        ),
        BearerRejected,
        Unavailable,
    )
)]
pub async fn list_sessions(
    state: web::Data<AppState>,
    user: AuthenticatedUser,
) -> AppResult<HttpResponse> {
    let user_id = user.claims().sub;
    let current = user.claims().sid;
    let rows = run_db(&state.pool, move |conn| {
        sessions::live_for_user(conn, user_id, Utc::now())
    })
    .await?;
    let sessions = rows
        .into_iter()
        .map(|s| SessionView {
            current: s.id == current,
            session_id: s.id,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.expires_at,
            user_agent: s.user_agent,
            ip: s.ip,
        })
        .collect();
    Ok(HttpResponse::Ok().json(SessionList { sessions }))
}

/// `DELETE /api/sessions/{session_id}`: revoke one of the caller's
/// sessions. Someone else's, unknown and malformed ids are all 404.
#[utoipa::path(
    delete, path = "/api/sessions/{session_id}", tag = "api", security(("bearer" = [])),
    params(("session_id" = String, Path, description = "A session id of the caller")),
    responses(
        (status = 204, description = "Session revoked"),
        BearerRejected,
        (status = 404, description = "Not one of the caller's live sessions", body = ErrorBody),
        Unavailable,
    )
)]
pub async fn revoke_session(
    state: web::Data<AppState>,
    user: AuthenticatedUser,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    let session_id = Uuid::parse_str(&path.into_inner()).map_err(|_| AppError::NotFound)?;
    let user_id = user.claims().sub;
    let revoked = run_db(&state.pool, move |conn| {
        sessions::revoke_owned(conn, user_id, session_id, Utc::now())
    })
    .await?;
    if revoked == 0 {
        return Err(AppError::NotFound);
    }
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /api/sessions`: log out everywhere.
#[utoipa::path(
    delete, path = "/api/sessions", tag = "api", security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out everywhere"),
        BearerRejected,
        Unavailable,
    )
)]
pub async fn revoke_all_sessions(
    state: web::Data<AppState>,
    user: AuthenticatedUser,
) -> AppResult<HttpResponse> {
    let user_id = user.claims().sub;
    run_db(&state.pool, move |conn| {
        sessions::revoke_all_for_user(conn, user_id, None, Utc::now())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/me/password` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PasswordChange {
    /// The password in use now.
    pub current_password: String,
    /// The new password (same rules as registration).
    pub new_password: String,
}

/// `POST /api/me/password`: check the current password, store the new
/// one, and revoke every other session (the caller's stays).
#[utoipa::path(
    post, path = "/api/me/password", tag = "api", security(("bearer" = [])),
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Password changed; other sessions revoked"),
        JsonBodyErrors,
        (status = 401, description = "invalid_credentials (wrong current password), or missing_token / invalid_token", body = ErrorBody),
        (status = 404, description = "Account deleted", body = ErrorBody),
        (status = 422, description = "Invalid new password", body = ErrorBody),
        Unavailable,
    )
)]
pub async fn change_password(
    state: web::Data<AppState>,
    user: AuthenticatedUser,
    body: JsonBody<PasswordChange>,
) -> AppResult<HttpResponse> {
    let PasswordChange {
        current_password,
        new_password,
    } = body.into_inner();
    let claims = user.claims();
    let account = accounts::confirm_password(&state, claims.sub, current_password).await?;
    let new_password =
        Password::parse(&new_password).map_err(|reason| AppError::field("new_password", reason))?;
    accounts::change_password(&state, account, claims.sid, new_password).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /api/me` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AccountDeletion {
    /// The account's password, as confirmation.
    pub password: String,
}

/// `DELETE /api/me`: delete the account and, by cascade, its sessions.
#[utoipa::path(
    delete, path = "/api/me", tag = "api", security(("bearer" = [])),
    request_body = AccountDeletion,
    responses(
        (status = 204, description = "Account and sessions deleted"),
        JsonBodyErrors,
        (status = 401, description = "invalid_credentials (wrong password), or missing_token / invalid_token", body = ErrorBody),
        (status = 404, description = "Account already deleted", body = ErrorBody),
        Unavailable,
    )
)]
pub async fn delete_account(
    state: web::Data<AppState>,
    user: AuthenticatedUser,
    body: JsonBody<AccountDeletion>,
) -> AppResult<HttpResponse> {
    let user_id = user.claims().sub;
    accounts::confirm_password(&state, user_id, body.into_inner().password).await?;
    accounts::delete(&state, user_id).await?;
    Ok(HttpResponse::NoContent().finish())
}
