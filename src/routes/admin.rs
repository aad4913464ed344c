//! Admin endpoints (tokens whose `roles` include `admin`).

use actix_web::{web, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::auth::guard::{Admin, RequireRole};
use crate::error::{AppError, AppResult, FieldErrors};
use crate::http::error::ErrorBody;
use crate::routes::openapi::{BearerRejected, Unavailable};
use crate::services::accounts;
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

/// A keyset position: the last row's `created_at` and id.
type Cursor = (DateTime<Utc>, Uuid);

/// Validates `limit` and `after`, reporting every bad field at once.
fn parse_page_query(query: &[(String, String)]) -> AppResult<(i64, Option<Cursor>)> {
    let mut fields = FieldErrors::new();
    let values = |name: &str| -> Vec<&str> {
        query
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    };
    let limit = match values("limit").as_slice() {
        [] => Some(DEFAULT_LIMIT),
        [raw] => parse_limit(raw),
        _ => None,
    };
    if limit.is_none() {
        fields.insert(
            "limit".into(),
            format!("must be one integer from 1 to {MAX_LIMIT}"),
        );
    }
    let after = match values("after").as_slice() {
        [] => Some(None),
        [raw] => decode_cursor(raw).map(Some),
        _ => None,
    };
    if after.is_none() {
        fields.insert(
            "after".into(),
            "must be the `next` cursor of a previous page".into(),
        );
    }
    match (limit, after) {
        (Some(limit), Some(after)) => Ok((limit, after)),
        _ => Err(AppError::Validation(fields)),
    }
}

/// A limit of plain decimal digits within 1..=200.
fn parse_limit(raw: &str) -> Option<i64> {
    if raw.is_empty() || raw.len() > 3 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse::<i64>()
        .ok()
        .filter(|limit| (1..=MAX_LIMIT).contains(limit))
}

/// An opaque cursor: base64url of `<created_at µs>.<id>`.
fn encode_cursor(created_at: DateTime<Utc>, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}.{}", created_at.timestamp_micros(), id))
}

/// The earliest instant PostgreSQL's `timestamptz` holds (4714-11-24 BC),
/// in microseconds since the Unix epoch. chrono's own limit (year 262143)
/// is below PostgreSQL's latest, so only the lower end needs a check.
const POSTGRES_MIN_MICROS: i64 = -210_866_803_200_000_000;

/// Decodes a cursor; `None` for anything [`encode_cursor`] cannot have
/// written, including instants PostgreSQL cannot compare against (which
/// would otherwise fail the query with a 500).
fn decode_cursor(raw: &str) -> Option<Cursor> {
    let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (micros, id) = text.split_once('.')?;
    let micros: i64 = micros.parse().ok().filter(|m| *m >= POSTGRES_MIN_MICROS)?;
    let created_at = DateTime::<Utc>::from_timestamp_micros(micros)?;
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
    fn cursors_outside_postgres_time_range_are_refused() {
        let id = Uuid::nil();
        let cursor = |micros: i64| URL_SAFE_NO_PAD.encode(format!("{micros}.{id}"));
        assert!(decode_cursor(&cursor(POSTGRES_MIN_MICROS)).is_some());
        assert_eq!(decode_cursor(&cursor(POSTGRES_MIN_MICROS - 1)), None);
        assert_eq!(decode_cursor(&cursor(i64::MIN)), None);
        assert_eq!(decode_cursor(&cursor(i64::MAX)), None);
    }

    #[test]
    fn limits_outside_1_to_200_are_refused() {
        assert_eq!(parse_limit("200"), Some(200));
        assert_eq!(parse_limit("1"), Some(1));
        for bad in ["0", "201", "-1", "+5", "ten", "", "0050", " 5"] {
            assert_eq!(parse_limit(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_bad_field_is_reported_and_empty_after_is_bad() {
        let query = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(parse_page_query(&query(&[])).unwrap(), (50, None));
        match parse_page_query(&query(&[("limit", "0"), ("after", "zz")])) {
            Err(AppError::Validation(fields)) => {
                assert!(fields.contains_key("limit") && fields.contains_key("after"));
            }
            other => panic!("{other:?}"),
        }
        for bad in [vec![("after", "")], vec![("limit", "5"), ("limit", "6")]] {
            assert!(parse_page_query(&query(&bad)).is_err());
        }
    }
}
