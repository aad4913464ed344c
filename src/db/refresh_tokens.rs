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

/// Spends one token of a session for its successor, in ONE statement: the
/// spent token gets `spent_at` and its sealed successor (if any), every
/// older token of the session loses its sealed successor (once a newer
/// token is spent they can no longer be retried, so their blobs only add
/// risk), and the successor's hash is inserted. Run it while holding the
/// session's lock.
pub fn spend_for_successor(
    conn: &mut PgConnection,
    session_id: Uuid,
    spent: &[u8],
    successor: &[u8],
    now: DateTime<Utc>,
    sealed_successor: Option<&[u8]>,
) -> QueryResult<usize> {
    // The INSERT does not see the CTE's UPDATE nor the other way round (one
    // snapshot), so the successor's row is never touched by the UPDATE.
    diesel::sql_query(
        "WITH spent AS ( \
             UPDATE refresh_tokens \
             SET spent_at = CASE WHEN token_hash = $2 THEN $4 ELSE spent_at END, \
                 sealed_successor = CASE WHEN token_hash = $2 THEN $5 END \
             WHERE session_id = $1 AND (token_hash = $2 OR sealed_successor IS NOT NULL)) \
         INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES ($3, $1, $4)",
    )
    .bind::<diesel::sql_types::Uuid, _>(session_id)
    .bind::<Bytea, _>(spent)
    .bind::<Bytea, _>(successor)
    .bind::<Timestamptz, _>(now)
    .bind::<Nullable<Bytea>, _>(sealed_successor)
    .execute(conn)
}
