//! The shared brute-force counters (README "Brute-force defence"): failed
//! password checks per login name, and the per-client-IP budget. Each
//! request-path function is ONE statement on a primary key, so the work per
//! request stays bounded however large the tables grow; [`prune`] keeps
//! them small.

use diesel::prelude::*;
use diesel::sql_types::{Bool, Bytea, Double, Integer, Nullable, Text};

/// How long a name that never reached the delay is remembered after its
/// last failure: a spray of random names leaves rows for this long only.
pub const FORGET_UNBLOCKED_AFTER_SECONDS: i64 = 3600;

/// How long a name that was throttled is remembered after its last failure
/// (longer than the longest delay, so a patient attacker keeps doubling).
pub const FORGET_BLOCKED_AFTER_SECONDS: i64 = 86_400;

/// Rows deleted per pruning statement, so one run never holds long locks.
pub const PRUNE_BATCH: i64 = 5_000;

/// The longest delay, in seconds (15 minutes).
pub const MAX_DELAY_SECONDS: i32 = 900;

/// A login name's throttle state as the database sees it now.
#[derive(Debug, Clone, Copy, QueryableByName)]
pub struct NameState {
    /// Consecutive failed checks so far.
    #[diesel(sql_type = Integer)]
    pub failures: i32,
    /// Seconds until password logins are allowed again; `None` or ≤ 0 when
    /// they are allowed now.
    #[diesel(sql_type = Nullable<Double>)]
    pub wait_seconds: Option<f64>,
}

impl NameState {
    /// The remaining wait, when the name is throttled now.
    pub fn blocked_for(&self) -> Option<f64> {
        self.wait_seconds.filter(|wait| *wait > 0.0)
    }
}

/// Reads a name's state (one primary-key lookup).
pub fn name_state(conn: &mut PgConnection, name_hash: &[u8]) -> QueryResult<Option<NameState>> {
    diesel::sql_query(
        "SELECT failures, \
                EXTRACT(EPOCH FROM (blocked_until - now()))::float8 AS wait_seconds \
         FROM login_throttle WHERE name_hash = $1",
    )
    .bind::<Bytea, _>(name_hash)
    .get_result(conn)
    .optional()
}

/// Counts one failed password check, atomically (parallel failures each
/// count), and returns the new state. From `threshold` failures on, the
/// name is blocked for 1 s, doubling with each further failure up to
/// [`MAX_DELAY_SECONDS`].
pub fn record_failure(
    conn: &mut PgConnection,
    name_hash: &[u8],
    threshold: i32,
) -> QueryResult<NameState> {
    diesel::sql_query(
        "INSERT INTO login_throttle AS t (name_hash, failures, blocked_until, updated_at) \
         VALUES ($1, 1, CASE WHEN 1 >= $2 THEN now() + interval '1 second' END, now()) \
         ON CONFLICT (name_hash) DO UPDATE SET \
             failures = t.failures + 1, \
             blocked_until = CASE WHEN t.failures + 1 >= $2 \
                 THEN now() + make_interval(secs => LEAST($3, 1 << LEAST(t.failures + 1 - $2, 20))) \
                 END, \
             updated_at = now() \
         RETURNING failures, \
                   EXTRACT(EPOCH FROM (blocked_until - now()))::float8 AS wait_seconds",
    )
    .bind::<Bytea, _>(name_hash)
    .bind::<Integer, _>(threshold)
    .bind::<Integer, _>(MAX_DELAY_SECONDS)
    .get_result(conn)
}

/// Forgets a name's failures (a correct password).
pub fn reset(conn: &mut PgConnection, name_hash: &[u8]) -> QueryResult<usize> {
    diesel::sql_query("DELETE FROM login_throttle WHERE name_hash = $1")
        .bind::<Bytea, _>(name_hash)
        .execute(conn)
}

/// The decision on one attempt against a GCRA budget.
#[derive(Debug, Clone, Copy, QueryableByName)]
pub struct BudgetDecision {
    /// Whether the attempt was within the budget (and was counted).
    #[diesel(sql_type = Bool)]
    pub allowed: bool,
    /// How far the key's theoretical arrival time lies ahead of now.
    #[diesel(sql_type = Double)]
    pub ahead_seconds: f64,
}

/// Counts one attempt by `key` against a GCRA budget of `period / interval`
/// attempts refilled one per `interval` (all in seconds), in one statement
/// that every instance shares. Over the budget nothing is consumed.
pub fn take_from_budget(
    conn: &mut PgConnection,
    key: &str,
    interval: f64,
    period: f64,
) -> QueryResult<BudgetDecision> {
    diesel::sql_query(
        "INSERT INTO rate_limits AS r (key, tat, allowed) \
         VALUES ($1, now() + make_interval(secs => $2), true) \
         ON CONFLICT (key) DO UPDATE SET \
             tat = CASE WHEN GREATEST(r.tat, now()) + make_interval(secs => $2) \
                             <= now() + make_interval(secs => $3) \
                   THEN GREATEST(r.tat, now()) + make_interval(secs => $2) ELSE r.tat END, \
             allowed = GREATEST(r.tat, now()) + make_interval(secs => $2) \
                             <= now() + make_interval(secs => $3) \
         RETURNING allowed, EXTRACT(EPOCH FROM (tat - now()))::float8 AS ahead_seconds",
    )
    .bind::<Text, _>(key)
    .bind::<Double, _>(interval)
    .bind::<Double, _>(period)
    .get_result(conn)
}

/// Rows left after a pruning run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Login-name rows deleted.
    pub names: usize,
    /// Budget rows deleted.
    pub budgets: usize,
}

/// Deletes forgotten names and budgets that are full again, at most
/// `batches` × [`PRUNE_BATCH`] rows of each.
pub fn prune(conn: &mut PgConnection, batches: usize) -> QueryResult<Pruned> {
    let mut pruned = Pruned::default();
    for _ in 0..batches {
        let names = diesel::sql_query(
            "DELETE FROM login_throttle WHERE name_hash IN ( \
                 SELECT name_hash FROM login_throttle \
                 WHERE (blocked_until IS NULL AND updated_at < now() - make_interval(secs => $1)) \
                    OR updated_at < now() - make_interval(secs => $2) \
                 LIMIT $3)",
        )
        .bind::<Double, _>(FORGET_UNBLOCKED_AFTER_SECONDS as f64)
        .bind::<Double, _>(FORGET_BLOCKED_AFTER_SECONDS as f64)
        .bind::<diesel::sql_types::BigInt, _>(PRUNE_BATCH)
        .execute(conn)?;
        let budgets = diesel::sql_query(
            "DELETE FROM rate_limits WHERE key IN ( \
                 SELECT key FROM rate_limits WHERE tat < now() LIMIT $1)",
        )
        .bind::<diesel::sql_types::BigInt, _>(PRUNE_BATCH)
        .execute(conn)?;
        pruned.names += names;
        pruned.budgets += budgets;
        if (names as i64) < PRUNE_BATCH && (budgets as i64) < PRUNE_BATCH {
            break;
        }
    }
    Ok(pruned)
}
