//! The caller's device sessions: list them, revoke one, log out everywhere.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::auth::guard::AuthenticatedUser;
use crate::error::{AppError, AppResult};
use crate::http::client_ip::client_info;
use crate::http::error::ErrorBody;
use crate::routes::openapi::{BearerRejected, Unavailable};
use crate::services::sessions;
use crate::state::AppState;

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
    let rows = sessions::list(&state, user_id).await?;
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
    req: HttpRequest,
    user: AuthenticatedUser,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    let session_id = Uuid::parse_str(&path.into_inner()).map_err(|_| AppError::NotFound)?;
    let user_id = user.claims().sub;
    let client = client_info(&req, state.settings.trust_forwarded_for);
    sessions::revoke(&state, user_id, session_id, client).await?;
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
    req: HttpRequest,
    user: AuthenticatedUser,
) -> AppResult<HttpResponse> {
    let user_id = user.claims().sub;
    let client = client_info(&req, state.settings.trust_forwarded_for);
    sessions::revoke_all(&state, user_id, client).await?;
    Ok(HttpResponse::NoContent().finish())
}
