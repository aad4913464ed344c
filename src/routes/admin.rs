//! Admin endpoints (tokens whose `roles` include `admin`).

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::auth::guard::{Admin, RequireRole};
use crate::blocking::run_db;
use crate::db::users;
use crate::error::ErrorBody;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// Page size when `limit` is absent.
const DEFAULT_LIMIT: i64 = 50;
/// Largest page size.
const MAX_LIMIT: i64 = 200;

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
        ("limit" = Option<u32>, Query, description = "1–200, default 50"),
        ("after" = Option<String>, Query, description = "Cursor from a previous page's `next`"),
    ),
    responses(
        (status = 200, description = "One page of users", body = UserPage),
        (status = 401, description = "missing_token / invalid_token", body = ErrorBody),
        (status = 403, description = "insufficient_scope: needs the admin role", body = ErrorBody),
        (status = 422, description = "Bad limit or cursor", body = ErrorBody),
    )
)]
pub async fn list_users(
    state: web::Data<AppState>,
    _admin: RequireRole<Admin>,
    query: web::Query<HashMap<String, String>>,
) -> AppResult<HttpResponse> {
    let limit = parse_limit(query.get("limit").map(String::as_str))?;
    let after = query
        .get("after")
        .filter(|raw| !raw.is_empty())
        .map(|raw| {
            decode_cursor(raw).ok_or_else(|| AppError::field("after", "is not a valid cursor"))
        })
        .transpose()?;
    // One extra row tells whether another page exists.
    let mut rows = run_db(&state.pool, move |conn| users::page(conn, after, limit + 1)).await?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = if has_more {
        rows.last().map(|u| encode_cursor(u.created_at, u.id))
    } else {
        None
    };
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

fn parse_limit(raw: Option<&str>) -> AppResult<i64> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_LIMIT);
    };
    match raw.parse::<i64>() {
        Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
        _ => Err(AppError::field(
            "limit",
            format!("must be an integer from 1 to {MAX_LIMIT}"),
        )),
    }
}

/// An opaque cursor: base64url of `<created_at µs>.<id>`.
fn encode_cursor(created_at: DateTime<Utc>, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}.{}", created_at.timestamp_micros(), id))
}

fn decode_cursor(raw: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (micros, id) = text.split_once('.')?;
    let created_at = DateTime::<Utc>::from_timestamp_micros(micros.parse().ok()?)?;
    Some((created_at, Uuid::parse_str(id).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let at = DateTime::<Utc>::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let id = Uuid::new_v4();
        assert_eq!(decode_cursor(&encode_cursor(at, id)), Some((at, id)));
        assert_eq!(decode_cursor("garbage!"), None);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("1.nope")), None);
    }

    #[test]
    fn limits_outside_1_to_200_are_refused() {
        assert_eq!(parse_limit(None).unwrap(), 50);
        assert_eq!(parse_limit(Some("200")).unwrap(), 200);
        for bad in ["0", "201", "-1", "ten", ""] {
            assert!(parse_limit(Some(bad)).is_err(), "{bad}");
        }
    }
}
