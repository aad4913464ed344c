//! Queries on `sessions`.

use chrono::{DateTime, Utc};
use diesel::dsl;
use diesel::prelude::*;
use uuid::Uuid;

use crate::db::models::{NewSession, Session};
use crate::db::revocations;
use crate::db::schema::{refresh_tokens, sessions};

/// Inserts a new session.
pub fn insert(conn: &mut PgConnection, new_session: &NewSession<'_>) -> QueryResult<Session> {
    diesel::insert_into(sessions::table)
        .values(new_session)
        .returning(Session::as_returning())
        .get_result(conn)
}

/// The id of the session a refresh token belongs to, as a sub-select for
/// the statements that find the session by the token's hash.
fn session_of_token(
    token_hash: &[u8],
) -> dsl::Select<
    dsl::Filter<refresh_tokens::table, dsl::Eq<refresh_tokens::token_hash, &[u8]>>,
    refresh_tokens::session_id,
> {
    refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select(refresh_tokens::session_id)
}

/// Records a use of the live session a refresh token belongs to, found by
/// the token's hash, in ONE statement: `last_used_at` = now, `expires_at` =
/// `expires_at`, and the row stays locked until the transaction ends, so
/// two refreshes of one session run one after the other. `None` when the
/// token is unknown or its session revoked or expired (nothing changes).
/// Only the session row is locked: rows read by a sub-select in `WHERE`
/// take no lock, so every writer still locks the session first.
pub fn touch_live_by_token(
    conn: &mut PgConnection,
    token_hash: &[u8],
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> QueryResult<Option<Session>> {
    diesel::update(
        sessions::table
            .filter(sessions::id.eq_any(session_of_token(token_hash)))
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::expires_at.gt(now)),
    )
    .set((
        sessions::last_used_at.eq(now),
        sessions::expires_at.eq(expires_at),
    ))
    .returning(Session::as_returning())
    .get_result(conn)
    .optional()
}

/// Reads the session a refresh token belongs to, found by the token's hash,
/// and locks its row until the transaction ends (one round trip: no lookup
/// before the lock). Only the session row is locked, as in
/// [`touch_live_by_token`].
pub fn lock_by_token(conn: &mut PgConnection, token_hash: &[u8]) -> QueryResult<Option<Session>> {
    sessions::table
        .filter(sessions::id.eq_any(session_of_token(token_hash)))
        .select(Session::as_select())
        .for_update()
        .first(conn)
        .optional()
}

/// Revokes one session if it is not revoked yet; returns the ids revoked
/// (none or it), already recorded and notified (see [`revocations::record`]).
pub fn revoke(conn: &mut PgConnection, id: Uuid, now: DateTime<Utc>) -> QueryResult<Vec<Uuid>> {
    conn.transaction(|conn| {
        let ids = diesel::update(
            sessions::table
                .find(id)
                .filter(sessions::revoked_at.is_null()),
        )
        .set(sessions::revoked_at.eq(now))
        .returning(sessions::id)
        .get_results(conn)?;
        revocations::record(conn, &ids)?;
        Ok(ids)
    })
}

/// Revokes one of a user's sessions; no ids when it is not theirs or not
/// live. Recorded and notified like [`revoke`].
pub fn revoke_owned(
    conn: &mut PgConnection,
    user_id: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
) -> QueryResult<Vec<Uuid>> {
    conn.transaction(|conn| {
        let ids = diesel::update(
            sessions::table
                .filter(sessions::id.eq(id))
                .filter(sessions::user_id.eq(user_id))
                .filter(sessions::revoked_at.is_null())
                .filter(sessions::expires_at.gt(now)),
        )
        .set(sessions::revoked_at.eq(now))
        .returning(sessions::id)
        .get_results(conn)?;
        revocations::record(conn, &ids)?;
        Ok(ids)
    })
}

/// Revokes every session of a user not revoked yet, except `keep` when
/// given. Recorded and notified like [`revoke`].
pub fn revoke_all_for_user(
    conn: &mut PgConnection,
    user_id: Uuid,
    keep: Option<Uuid>,
    now: DateTime<Utc>,
) -> QueryResult<Vec<Uuid>> {
    conn.transaction(|conn| {
        let mut query = diesel::update(sessions::table)
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::revoked_at.is_null())
            .into_boxed();
        if let Some(keep) = keep {
            query = query.filter(sessions::id.ne(keep));
        }
        let ids = query
            .set(sessions::revoked_at.eq(now))
            .returning(sessions::id)
            .get_results(conn)?;
        revocations::record(conn, &ids)?;
        Ok(ids)
    })
}

/// The user's live sessions, newest first.
pub fn live_for_user(
    conn: &mut PgConnection,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> QueryResult<Vec<Session>> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .order((sessions::created_at.desc(), sessions::id.desc()))
        .select(Session::as_select())
        .load(conn)
}
