//! Queries on `auth_events`: the listings (newest first, keyset paging) and
//! retention. Rows are written by `services::events::record`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::db::schema::auth_events;

/// A recorded security event.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = auth_events, check_for_backend(diesel::pg::Pg))]
pub struct EventRow {
    /// Event id (UUIDv7).
    pub id: Uuid,
    /// Stored type name (`login_succeeded`, …).
    pub kind: String,
    /// The account concerned, if known.
    pub user_id: Option<Uuid>,
    /// The session concerned, if any.
    pub session_id: Option<Uuid>,
    /// Client IP of the request, if any.
    pub ip: Option<String>,
    /// User-Agent of the request, if any.
    pub user_agent: Option<String>,
    /// When it happened.
    pub created_at: DateTime<Utc>,
    /// Non-secret facts.
    pub detail: serde_json::Value,
}

/// Which events a listing shows.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only this account's.
    pub user_id: Option<Uuid>,
    /// Only this type.
    pub kind: Option<String>,
}

/// One page, newest first by `(created_at, id)`, strictly before `before`.
pub fn page(
    conn: &mut PgConnection,
    filter: &EventFilter,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> QueryResult<Vec<EventRow>> {
    let mut query = auth_events::table
        .select(EventRow::as_select())
        .order((auth_events::created_at.desc(), auth_events::id.desc()))
        .limit(limit)
        .into_boxed();
    if let Some(user_id) = filter.user_id {
        query = query.filter(auth_events::user_id.eq(user_id));
    }
    if let Some(kind) = &filter.kind {
        query = query.filter(auth_events::kind.eq(kind.clone()));
    }
    if let Some((created_at, id)) = before {
        query = query.filter(
            auth_events::created_at
                .lt(created_at)
                .or(auth_events::created_at
                    .eq(created_at)
                    .and(auth_events::id.lt(id))),
        );
    }
    query.load(conn)
}

/// Deletes events older than `before`; returns how many.
pub fn prune(conn: &mut PgConnection, before: DateTime<Utc>) -> QueryResult<usize> {
    diesel::delete(auth_events::table.filter(auth_events::created_at.lt(before))).execute(conn)
}
