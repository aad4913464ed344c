//! Queries on `refresh_tokens` (hashes only, never raw tokens).

use chrono::{DateTime, Utc};
use diesel::prelude::*;

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

/// Marks a token spent, keeping its sealed successor.
pub fn mark_spent(
    conn: &mut PgConnection,
    hash: &[u8],
    now: DateTime<Utc>,
    sealed_successor: &[u8],
) -> QueryResult<usize> {
    diesel::update(refresh_tokens::table.find(hash))
        .set((
            refresh_tokens::spent_at.eq(now),
            refresh_tokens::sealed_successor.eq(sealed_successor),
        ))
        .execute(conn)
}
