//! Queries on the second-factor tables: `mfa_totp`, `mfa_recovery_codes`,
//! `mfa_challenges` and `mfa_failures`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Bytea, Integer, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

use crate::db::schema::{mfa_challenges, mfa_failures, mfa_recovery_codes, mfa_totp};

/// An account's TOTP row (the secret still sealed).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = mfa_totp, check_for_backend(diesel::pg::Pg))]
pub struct TotpRow {
    /// Owner.
    pub user_id: Uuid,
    /// AES-256-GCM sealed secret.
    pub secret_sealed: Vec<u8>,
    /// `None` while the enrollment is pending.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// Newest step whose code was accepted.
    pub last_used_step: i64,
}

/// A half-finished login.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = mfa_challenges, check_for_backend(diesel::pg::Pg))]
pub struct ChallengeRow {
    /// SHA-256 of the `mfa_token`.
    pub token_hash: Vec<u8>,
    /// Whose password was right.
    pub user_id: Uuid,
    /// Wrong codes so far.
    pub failures: i32,
}

/// Stores a pending enrollment, replacing an earlier pending one; `false`
/// (nothing written) when TOTP is already enabled.
pub fn upsert_pending(conn: &mut PgConnection, user_id: Uuid, sealed: &[u8]) -> QueryResult<bool> {
    let written = diesel::sql_query(
        "INSERT INTO mfa_totp (user_id, secret_sealed, confirmed_at, last_used_step, created_at) \
         VALUES ($1, $2, NULL, 0, now()) \
         ON CONFLICT (user_id) DO UPDATE \
         SET secret_sealed = EXCLUDED.secret_sealed, last_used_step = 0, created_at = now() \
         WHERE mfa_totp.confirmed_at IS NULL",
    )
    .bind::<SqlUuid, _>(user_id)
    .bind::<Bytea, _>(sealed)
    .execute(conn)?;
    Ok(written == 1)
}

/// The account's TOTP row, locked until the transaction ends: every code
/// check of one account runs one after the other.
pub fn lock_totp(conn: &mut PgConnection, user_id: Uuid) -> QueryResult<Option<TotpRow>> {
    mfa_totp::table
        .find(user_id)
        .select(TotpRow::as_select())
        .for_update()
        .first(conn)
        .optional()
}

/// Whether TOTP is enabled (confirmed) for the account.
pub fn totp_enabled(conn: &mut PgConnection, user_id: Uuid) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        mfa_totp::table
            .filter(mfa_totp::user_id.eq(user_id))
            .filter(mfa_totp::confirmed_at.is_not_null()),
    ))
    .get_result(conn)
}

/// Turns a pending enrollment on, recording `step` as used.
pub fn confirm(
    conn: &mut PgConnection,
    user_id: Uuid,
    step: i64,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(
        mfa_totp::table
            .filter(mfa_totp::user_id.eq(user_id))
            .filter(mfa_totp::confirmed_at.is_null()),
    )
    .set((
        mfa_totp::confirmed_at.eq(now),
        mfa_totp::last_used_step.eq(step),
    ))
    .execute(conn)
}

/// Records `step` as used if it is newer than every step used before: the
/// replay rule as one conditional UPDATE, so of two requests with one code
/// only one can move the step (0 rows: already used, or an earlier step).
pub fn consume_step(conn: &mut PgConnection, user_id: Uuid, step: i64) -> QueryResult<bool> {
    let updated = diesel::update(
        mfa_totp::table
            .filter(mfa_totp::user_id.eq(user_id))
            .filter(mfa_totp::confirmed_at.is_not_null())
            .filter(mfa_totp::last_used_step.lt(step)),
    )
    .set(mfa_totp::last_used_step.eq(step))
    .returning(mfa_totp::user_id)
    .get_results::<Uuid>(conn)?;
    Ok(updated.len() == 1)
}

/// Removes TOTP and the recovery codes of the account.
pub fn delete_all(conn: &mut PgConnection, user_id: Uuid) -> QueryResult<usize> {
    diesel::delete(mfa_recovery_codes::table.filter(mfa_recovery_codes::user_id.eq(user_id)))
        .execute(conn)?;
    diesel::delete(mfa_challenges::table.filter(mfa_challenges::user_id.eq(user_id)))
        .execute(conn)?;
    diesel::delete(mfa_totp::table.filter(mfa_totp::user_id.eq(user_id))).execute(conn)
}

/// Replaces the account's recovery codes with these hashes.
pub fn replace_recovery_codes(
    conn: &mut PgConnection,
    user_id: Uuid,
    hashes: &[[u8; 32]],
    now: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::delete(mfa_recovery_codes::table.filter(mfa_recovery_codes::user_id.eq(user_id)))
        .execute(conn)?;
    let rows: Vec<_> = hashes
        .iter()
        .map(|hash| {
            (
                mfa_recovery_codes::user_id.eq(user_id),
                mfa_recovery_codes::code_hash.eq(hash.as_slice()),
                mfa_recovery_codes::created_at.eq(now),
            )
        })
        .collect();
    diesel::insert_into(mfa_recovery_codes::table)
        .values(rows)
        .execute(conn)?;
    Ok(())
}

/// Hashes of the account's unused recovery codes.
pub fn unused_recovery_hashes(conn: &mut PgConnection, user_id: Uuid) -> QueryResult<Vec<Vec<u8>>> {
    mfa_recovery_codes::table
        .filter(mfa_recovery_codes::user_id.eq(user_id))
        .filter(mfa_recovery_codes::used_at.is_null())
        .select(mfa_recovery_codes::code_hash)
        .load(conn)
}

/// Spends one recovery code; `false` when it was spent already (by a
/// concurrent request, say).
pub fn use_recovery_code(
    conn: &mut PgConnection,
    user_id: Uuid,
    hash: &[u8],
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let updated = diesel::update(
        mfa_recovery_codes::table
            .filter(mfa_recovery_codes::user_id.eq(user_id))
            .filter(mfa_recovery_codes::code_hash.eq(hash))
            .filter(mfa_recovery_codes::used_at.is_null()),
    )
    .set(mfa_recovery_codes::used_at.eq(now))
    .execute(conn)?;
    Ok(updated == 1)
}

/// How many unused recovery codes the account has.
pub fn recovery_codes_left(conn: &mut PgConnection, user_id: Uuid) -> QueryResult<i64> {
    mfa_recovery_codes::table
        .filter(mfa_recovery_codes::user_id.eq(user_id))
        .filter(mfa_recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)
}

/// Stores a new challenge, and drops expired ones while at it.
pub fn insert_challenge(
    conn: &mut PgConnection,
    token_hash: &[u8],
    user_id: Uuid,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::delete(mfa_challenges::table.filter(mfa_challenges::expires_at.le(now)))
        .execute(conn)?;
    diesel::insert_into(mfa_challenges::table)
        .values((
            mfa_challenges::token_hash.eq(token_hash),
            mfa_challenges::user_id.eq(user_id),
            mfa_challenges::created_at.eq(now),
            mfa_challenges::expires_at.eq(expires_at),
            mfa_challenges::failures.eq(0),
        ))
        .execute(conn)?;
    Ok(())
}

/// A live challenge by token hash, locked until the transaction ends.
pub fn lock_live_challenge(
    conn: &mut PgConnection,
    token_hash: &[u8],
    now: DateTime<Utc>,
) -> QueryResult<Option<ChallengeRow>> {
    mfa_challenges::table
        .filter(mfa_challenges::token_hash.eq(token_hash))
        .filter(mfa_challenges::expires_at.gt(now))
        .select(ChallengeRow::as_select())
        .for_update()
        .first(conn)
        .optional()
}

/// Counts a wrong code against a challenge; returns the new count.
pub fn fail_challenge(conn: &mut PgConnection, token_hash: &[u8]) -> QueryResult<i32> {
    diesel::update(mfa_challenges::table.find(token_hash))
        .set(mfa_challenges::failures.eq(mfa_challenges::failures + 1))
        .returning(mfa_challenges::failures)
        .get_result(conn)
}

/// Removes a challenge (used, or dead after too many wrong codes).
pub fn delete_challenge(conn: &mut PgConnection, token_hash: &[u8]) -> QueryResult<usize> {
    diesel::delete(mfa_challenges::table.find(token_hash)).execute(conn)
}

/// The account's failure window: when it started and the wrong codes in it.
pub fn failure_window(
    conn: &mut PgConnection,
    user_id: Uuid,
) -> QueryResult<Option<(DateTime<Utc>, i32)>> {
    mfa_failures::table
        .find(user_id)
        .select((mfa_failures::window_start, mfa_failures::failures))
        .first(conn)
        .optional()
}

/// Counts one wrong code for the account in one atomic upsert: a window
/// older than `window_seconds` starts over at 1. Returns the window.
pub fn count_failure(
    conn: &mut PgConnection,
    user_id: Uuid,
    now: DateTime<Utc>,
    window_seconds: i32,
) -> QueryResult<(DateTime<Utc>, i32)> {
    #[derive(QueryableByName)]
    struct Window {
        #[diesel(sql_type = Timestamptz)]
        window_start: DateTime<Utc>,
        #[diesel(sql_type = Integer)]
        failures: i32,
    }
    let window: Window = diesel::sql_query(
        "INSERT INTO mfa_failures AS f (user_id, window_start, failures) VALUES ($1, $2, 1) \
         ON CONFLICT (user_id) DO UPDATE SET \
           failures = CASE WHEN f.window_start <= $2 - make_interval(secs => $3) \
                           THEN 1 ELSE f.failures + 1 END, \
           window_start = CASE WHEN f.window_start <= $2 - make_interval(secs => $3) \
                               THEN $2 ELSE f.window_start END \
         RETURNING window_start, failures",
    )
    .bind::<SqlUuid, _>(user_id)
    .bind::<Timestamptz, _>(now)
    .bind::<Integer, _>(window_seconds)
    .get_result(conn)?;
    Ok((window.window_start, window.failures))
}
