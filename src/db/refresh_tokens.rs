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

/// Marks one token spent and wipes every other sealed successor of its
/// session, in ONE statement: the spent token gets `spent_at` and its
/// sealed successor (if any); older tokens lose theirs, since once a newer
/// token is spent they can no longer be retried and their blobs only add
/// risk. Run it while holding the session's lock.
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
