//! Queries on `outbox`: enqueue inside a caller's transaction, claim due
//! rows for delivery, and record how a delivery went.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Text};
use uuid::Uuid;

use crate::db::schema::outbox;

/// One message claimed for delivery.
#[derive(Debug, Clone, QueryableByName)]
#[diesel(table_name = outbox, check_for_backend(diesel::pg::Pg))]
pub struct OutboxRow {
    /// Row id; ascending ids are the delivery order.
    pub id: i64,
    /// Which sender delivers it (`webhook`, mail kinds).
    pub kind: String,
    /// The user it concerns; rows of one user and kind go out in order.
    pub user_id: Option<Uuid>,
    /// What the sender needs.
    pub payload: serde_json::Value,
    /// Attempts so far, counting the one this claim starts.
    pub attempts: i32,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
}

/// Adds a message; call it inside the transaction of the change it
/// announces, so both commit or neither does. Returns the row id.
pub fn insert(
    conn: &mut PgConnection,
    kind: &str,
    user_id: Option<Uuid>,
    payload: &serde_json::Value,
) -> QueryResult<i64> {
    diesel::insert_into(outbox::table)
        .values((
            outbox::kind.eq(kind),
            outbox::user_id.eq(user_id),
            outbox::payload.eq(payload),
        ))
        .returning(outbox::id)
        .get_result(conn)
}

/// Claims up to `limit` due rows of the given kinds and leases them for
/// `lease_seconds` (their `next_attempt_at` moves past the lease, and
/// `attempts` counts the new attempt), in one statement.
///
/// `FOR UPDATE SKIP LOCKED` lets several instances claim at once without
/// taking the same row; the lease keeps a claimed row from being claimed
/// again while its delivery runs, and hands it to another instance if this
/// one dies. A row is due only when no earlier row of the same kind and
/// user is still pending (sent or failed rows do not count), so one user's
/// messages of one kind are delivered in order, one at a time.
pub fn claim_due(
    conn: &mut PgConnection,
    kinds: &[String],
    limit: i64,
    lease_seconds: i32,
) -> QueryResult<Vec<OutboxRow>> {
    diesel::sql_query(
        "UPDATE outbox SET attempts = attempts + 1, \
                next_attempt_at = now() + make_interval(secs => $3) \
         WHERE id IN ( \
             SELECT o.id FROM outbox o \
             WHERE o.kind = ANY($1) AND o.sent_at IS NULL AND o.failed_at IS NULL \
               AND o.next_attempt_at <= now() \
               AND NOT EXISTS ( \
                   SELECT 1 FROM outbox e \
                   WHERE e.kind = o.kind AND e.user_id = o.user_id AND e.id < o.id \
                     AND e.sent_at IS NULL AND e.failed_at IS NULL) \
             ORDER BY o.id \
             LIMIT $2 \
             FOR UPDATE SKIP LOCKED) \
         RETURNING id, kind, user_id, payload, attempts, created_at",
    )
    .bind::<Array<Text>, _>(kinds)
    .bind::<BigInt, _>(limit)
    .bind::<Integer, _>(lease_seconds)
    .load(conn)
}

/// A delivered row is deleted: its payload is not kept, and receivers
/// deduplicate on the message id.
pub fn mark_sent(conn: &mut PgConnection, id: i64) -> QueryResult<usize> {
    diesel::delete(outbox::table.find(id)).execute(conn)
}

/// A failed attempt: try again at `next_attempt_at`.
pub fn schedule_retry(
    conn: &mut PgConnection,
    id: i64,
    next_attempt_at: DateTime<Utc>,
    error: &str,
) -> QueryResult<usize> {
    diesel::update(outbox::table.find(id))
        .set((
            outbox::next_attempt_at.eq(next_attempt_at),
            outbox::last_error.eq(error),
        ))
        .execute(conn)
}

/// A row given up on: it stops blocking the user's later rows and stays,
/// with its last error, until the retention task prunes it.
pub fn mark_failed(
    conn: &mut PgConnection,
    id: i64,
    now: DateTime<Utc>,
    error: &str,
) -> QueryResult<usize> {
    let marked = diesel::update(outbox::table.find(id))
        .set((outbox::failed_at.eq(now), outbox::last_error.eq(error)))
        .execute(conn)?;
    // A mail's body carries a token and an address: it leaves the outbox
    // when the mail is given up on, as when it is sent (README "Email").
    diesel::update(
        outbox::table
            .find(id)
            .filter(outbox::kind.eq(crate::jobs::mail::KIND)),
    )
    .set(outbox::payload.eq(serde_json::json!({})))
    .execute(conn)?;
    Ok(marked)
}

/// Deletes failed rows older than `before`.
pub fn prune_failed(conn: &mut PgConnection, before: DateTime<Utc>) -> QueryResult<usize> {
    diesel::delete(
        outbox::table
            .filter(outbox::failed_at.is_not_null())
            .filter(outbox::created_at.lt(before)),
    )
    .execute(conn)
}
