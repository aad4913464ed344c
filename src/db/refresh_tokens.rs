//! Queries on `refresh_tokens` (hashes only, never raw tokens).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::db::models::{NewRefreshToken, RefreshTokenRow};
use crate::db::schema::refresh_tokens;

/// Inserts the hash of a newly issued token.
pub fn insert(conn: &mut PgConnection, new_token: &NewRefreshToken<'_>) -> QueryResult<usize> {
    diesel::insert_into(refresh_tokens::table)
        .values(new_token)
        .execute(conn)
}

/// Finds a token by its hash.
pub fn find(conn: &mut PgConnection, hash: &[u8]) -> QueryResult<Option<RefreshTokenRow>> {
    refresh_tokens::table
        .find(hash)
        .select(RefreshTokenRow::as_select())
        .first(conn)
        .optional()
}

/// Marks a token spent, keeping its sealed successor (if any).
pub fn mark_spent(
    conn: &mut PgConnection,
    hash: &[u8],
    now: DateTime<Utc>,
    sealed_successor: Option<&[u8]>,
) -> QueryResult<usize> {
    diesel::update(refresh_tokens::table.find(hash))
        .set((
            refresh_tokens::spent_at.eq(now),
            refresh_tokens::sealed_successor.eq(sealed_successor),
        ))
        .execute(conn)
}

/// Wipes every sealed successor of a session: once a newer token is spent,
/// older ones can no longer be retried, so their blobs only add risk.
pub fn forget_sealed_successors(conn: &mut PgConnection, session_id: Uuid) -> QueryResult<usize> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::session_id.eq(session_id))
            .filter(refresh_tokens::sealed_successor.is_not_null()),
    )
    .set(refresh_tokens::sealed_successor.eq(None::<Vec<u8>>))
    .execute(conn)
}
