//! Security-event listings: the caller's own (`GET /api/me/events`, for
//! "was this you?" screens) and everyone's for admins
//! (`GET /api/admin/events`). README "Events and webhooks".

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::auth::guard::{Admin, AuthenticatedUser, RequireRole};
use crate::db::events::{EventFilter, EventRow};
use crate::error::{AppError, AppResult, FieldErrors};
use crate::http::error::ErrorBody;
use crate::http::paging::{finish_page, parse_page, parse_page_query, values, Cursor};
use crate::routes::openapi::{BearerRejected, Unavailable};
use crate::services::events::{self, EventType};
use crate::state::AppState;

/// One event in the caller's listing.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventView {
    /// Event id.
    pub event_id: Uuid,
    /// `login_succeeded`, `login_failed`, `session_revoked`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// When it happened.
    pub created_at: DateTime<Utc>,
    /// Client IP of the request (null for the command line).
    pub ip: Option<String>,
    /// User-Agent of the request.
    pub user_agent: Option<String>,
    /// The session concerned, if any.
    pub session_id: Option<Uuid>,
}

impl From<&EventRow> for EventView {
    fn from(row: &EventRow) -> Self {
        Self {
            event_id: row.id,
            kind: row.kind.clone(),
            created_at: row.created_at,
            ip: row.ip.clone(),
            user_agent: row.user_agent.clone(),
            session_id: row.session_id,
        }
    }
}

/// `GET /api/me/events` body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventPage {
    /// The caller's events, newest first.
    pub events: Vec<EventView>,
    /// Cursor for the next (older) page; null on the last page.
    pub next: Option<String>,
}

/// One event in the admin listing: the caller's view plus whose it is and
/// its non-secret detail.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdminEventView {
    /// The fields every listing shows.
    #[serde(flatten)]
    pub event: EventView,
    /// The account concerned (null for a failed login under an unknown name).
    pub user_id: Option<Uuid>,
    /// Non-secret facts, e.g. `{"role": "admin"}` or `{"reason": "logout"}`.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// `GET /api/admin/events` body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdminEventPage {
    /// Events, newest first.
    pub events: Vec<AdminEventView>,
    /// Cursor for the next (older) page; null on the last page.
    pub next: Option<String>,
}

/// `GET /api/me/events?limit=&after=`: the caller's own events.
#[utoipa::path(
    get, path = "/api/me/events", tag = "api", security(("bearer" = [])),
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "1–200, default 50"),
        ("after" = Option<String>, Query, min_length = 1, pattern = "^[A-Za-z0-9_-]+$",
            description = "Cursor from a previous page's `next` (opaque base64url; any other value is 422)"),
    ),
    responses(
        (status = 200, description = "One page of the caller's events, newest first", body = EventPage,
            links(("next_page" = (
                operation_id = "my_events",
                parameters(("after" = "$response.body#/next")),
                description = "The following page"
            )))
        ),
        BearerRejected,
        (status = 422, description = "Bad limit or cursor", body = ErrorBody),
        Unavailable,
    )
)]
pub async fn my_events(
    state: web::Data<AppState>,
    user: AuthenticatedUser,
    query: web::Query<Vec<(String, String)>>,
) -> AppResult<HttpResponse> {
    let (limit, after) = parse_page_query(&query)?;
    let filter = EventFilter {
        user_id: Some(user.claims().sub),
        kind: None,
    };
    let (rows, next) = read_page(&state, filter, after, limit).await?;
    let events = rows.iter().map(EventView::from).collect();
    Ok(HttpResponse::Ok().json(EventPage { events, next }))
}

/// `GET /api/admin/events?limit=&after=&user_id=&type=`: everyone's events.
#[utoipa::path(
    get, path = "/api/admin/events", tag = "admin", security(("bearer" = [])),
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "1–200, default 50"),
        ("after" = Option<String>, Query, min_length = 1, pattern = "^[A-Za-z0-9_-]+$",
            description = "Cursor from a previous page's `next` (opaque base64url; any other value is 422)"),
        ("user_id" = Option<Uuid>, Query, description = "Only this account's events"),
        ("type" = Option<String>, Query, description = "Only events of this type (one of the documented types)"),
    ),
    responses(
        (status = 200, description = "One page of events, newest first", body = AdminEventPage,
            links(("next_page" = (
                operation_id = "admin_events",
                parameters(("after" = "$response.body#/next")),
                description = "The following page"
            )))
        ),
        BearerRejected,
        (status = 403, description = "insufficient_scope: needs the admin role", body = ErrorBody),
        (status = 422, description = "Bad limit, cursor, user_id or type", body = ErrorBody),
        Unavailable,
    )
)]
pub async fn admin_events(
    state: web::Data<AppState>,
    _admin: RequireRole<Admin>,
    query: web::Query<Vec<(String, String)>>,
) -> AppResult<HttpResponse> {
    let mut fields = FieldErrors::new();
    let page = parse_page(&query, &mut fields);
    let user_id = match values(&query, "user_id").as_slice() {
        [] => Some(None),
        [raw] => Uuid::parse_str(raw).ok().map(Some),
        _ => None,
    };
    if user_id.is_none() {
        fields.insert("user_id".into(), "must be one user id (a UUID)".into());
    }
    let kind = match values(&query, "type").as_slice() {
        [] => Some(None),
        [raw] => EventType::parse(raw).map(|kind| Some(kind.as_str().to_owned())),
        _ => None,
    };
    if kind.is_none() {
        fields.insert("type".into(), "must be one of the event types".into());
    }
    let (Some((limit, after)), Some(user_id), Some(kind)) = (page, user_id, kind) else {
        return Err(AppError::Validation(fields));
    };
    let (rows, next) = read_page(&state, EventFilter { user_id, kind }, after, limit).await?;
    let events = rows
        .iter()
        .map(|row| AdminEventView {
            event: EventView::from(row),
            user_id: row.user_id,
            detail: row.detail.clone(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(AdminEventPage { events, next }))
}

/// Reads one page (one extra row tells whether another page exists).
async fn read_page(
    state: &AppState,
    filter: EventFilter,
    after: Option<Cursor>,
    limit: i64,
) -> AppResult<(Vec<EventRow>, Option<String>)> {
    let mut rows = events::page(state, filter, after, limit + 1).await?;
    let next = finish_page(&mut rows, limit, |row| (row.created_at, row.id));
    Ok((rows, next))
}
