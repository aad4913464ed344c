//! Private endpoints behind the bearer guard.

use actix_web::HttpResponse;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::auth::guard::AuthenticatedUser;
use crate::error::{AppError, AppResult};

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
