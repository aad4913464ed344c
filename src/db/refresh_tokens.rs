//! Queries on `refresh_tokens` (hashes only, never raw tokens).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Bytea, Nullable, Timestamptz};
use uuid::Uuid;

use crate::db::models::{NewRefreshToken, RefreshTokenRow, User};
use crate::db::schema::{refresh_tokens, sessions, users};

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

/// A token and the user of its session, in one round trip (a join, no
/// lock): what a refresh reads once it holds the session's lock.
pub fn find_with_user(
    conn: &mut PgConnection,
    hash: &[u8],
) -> QueryResult<Option<(RefreshTokenRow, User)>> {
    refresh_tokens::table
        .inner_join(sessions::table.inner_join(users::table))
        .filter(refresh_tokens::token_hash.eq(hash))
        .select((RefreshTokenRow::as_select(), User::as_select()))
        .first(conn)
        .optional()
}

/// [`forget_sealed_successors`] of the session and [`mark_spent`] of one
/// of its tokens in ONE statement: the spent token gets `spent_at` and its
/// sealed successor (if any), every other token of the session loses its
/// sealed successor. Run it while holding the session's lock.
pub fn spend(
    conn: &mut PgConnection,
    session_id: Uuid,
    hash: &[u8],
    now: DateTime<Utc>,
    sealed_successor: Option<&[u8]>,
) -> QueryResult<usize> {
    diesel::sql_query(
        "UPDATE refresh_tokens \
         SET spent_at = CASE WHEN token_hash = $2 THEN $3 ELSE spent_at END, \
             sealed_successor = CASE WHEN token_hash = $2 THEN $4 END \
         WHERE session_id = $1 AND (token_hash = $2 OR sealed_successor IS NOT NULL)",
    )
    .bind::<diesel::sql_types::Uuid, _>(session_id)
    .bind::<Bytea, _>(hash)
    .bind::<Timestamptz, _>(now)
    .bind::<Nullable<Bytea>, _>(sealed_successor)
    .execute(conn)
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
