//! Admin endpoints (tokens whose `roles` include `admin`).

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::auth::guard::{Admin, RequireRole};
use crate::error::AppResult;
use crate::http::error::ErrorBody;
use crate::http::paging::{finish_page, parse_page_query};
use crate::routes::openapi::{BearerRejected, Unavailable};
use crate::services::accounts;
use crate::state::AppState;

/// One user in the admin listing.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    /// User id.
    pub user_id: Uuid,
    /// Lower-cased username.
    pub username: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Registration time.
    pub created_at: DateTime<Utc>,
}

/// `GET /api/admin/users` body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserPage {
    /// Users ordered by `created_at`, then id.
    pub users: Vec<UserView>,
    /// Cursor for the next page; null on the last page.
    pub next: Option<String>,
}

/// `GET /api/admin/users?limit=&after=`: keyset-paginated user listing.
#[utoipa::path(
    get, path = "/api/admin/users", tag = "admin", security(("bearer" = [])),
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "1–200, default 50"),
        ("after" = Option<String>, Query, min_length = 1, pattern = "^[A-Za-z0-9_-]+$",
            description = "Cursor from a previous page's `next` (opaque base64url; any other value is 422)"),
    ),
    responses(
        (status = 200, description = "One page of users", body = UserPage,
            links(("next_page" = (
                operation_id = "list_users",
                parameters(("after" = "$response.body#/next")),
                description = "The following page"
            )))
        ),
        BearerRejected,
        (status = 403, description = "insufficient_scope: needs the admin role", body = ErrorBody),
        (status = 422, description = "Bad limit or cursor", body = ErrorBody),
        Unavailable,
    )
)]
pub async fn list_users(
    state: web::Data<AppState>,
    _admin: RequireRole<Admin>,
    query: web::Query<Vec<(String, String)>>,
) -> AppResult<HttpResponse> {
    let (limit, after) = parse_page_query(&query)?;
    // One extra row tells whether another page exists.
    let mut rows = accounts::page(&state, after, limit + 1).await?;
    let next = finish_page(&mut rows, limit, |u| (u.created_at, u.id));
    let users = rows
        .into_iter()
        .map(|u| UserView {
            user_id: u.id,
            username: u.username,
            roles: u.roles,
            created_at: u.created_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(UserPage { users, next }))
}
