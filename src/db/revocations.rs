//! Queries on `session_revocations` and the `tessera_revoked` channel: how
//! one instance tells every other that sessions were revoked (README
//! "Immediate revocation").

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Double, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

use crate::db::schema::session_revocations;

/// The `LISTEN`/`NOTIFY` channel; a payload is session ids separated by
/// commas.
pub const CHANNEL: &str = "tessera_revoked";

/// Ids per notification: 200 × 37 bytes stays under PostgreSQL's 8000-byte
/// payload limit.
const IDS_PER_NOTIFICATION: usize = 200;

/// Records revoked sessions and notifies every listening instance, in the
/// caller's transaction: the row and the notification become visible at
/// commit, together with the revocation itself. Every revocation path goes
/// through here.
pub fn record(conn: &mut PgConnection, ids: &[Uuid]) -> QueryResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = ids
        .iter()
        .map(|id| session_revocations::session_id.eq(id))
        .collect();
    diesel::insert_into(session_revocations::table)
        .values(rows)
        .on_conflict_do_nothing()
        .execute(conn)?;
    for chunk in ids.chunks(IDS_PER_NOTIFICATION) {
        let payload = chunk
            .iter()
            .map(Uuid::to_string)
            .collect::<Vec<_>>()
            .join(",");
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<Text, _>(CHANNEL)
            .bind::<Text, _>(payload)
            .execute(conn)?;
    }
    Ok(())
}

/// Parses a notification payload; ids that do not parse are skipped.
pub fn parse_payload(payload: &str) -> impl Iterator<Item = Uuid> + '_ {
    payload
        .split(',')
        .filter_map(|id| Uuid::parse_str(id.trim()).ok())
}

/// One recorded revocation and how long ago it happened (database clock).
#[derive(Debug, QueryableByName)]
pub struct Recent {
    /// The revoked session.
    #[diesel(sql_type = SqlUuid)]
    pub session_id: Uuid,
    /// When (database clock), for the caller's cursor.
    #[diesel(sql_type = Timestamptz)]
    pub revoked_at: DateTime<Utc>,
    /// Seconds between then and the database's now.
    #[diesel(sql_type = Double)]
    pub age_seconds: f64,
}

impl Recent {
    /// The age as a `Duration` (zero if the clock went backwards).
    pub fn age(&self) -> Duration {
        Duration::try_from_secs_f64(self.age_seconds).unwrap_or(Duration::ZERO)
    }
}

/// The revocations recorded after `after` (when given) and within `window`
/// of the database's now.
pub fn recent(
    conn: &mut PgConnection,
    after: Option<DateTime<Utc>>,
    window: Duration,
) -> QueryResult<Vec<Recent>> {
    diesel::sql_query(
        "SELECT session_id, revoked_at, \
                EXTRACT(EPOCH FROM (now() - revoked_at))::float8 AS age_seconds \
         FROM session_revocations \
         WHERE revoked_at > now() - make_interval(secs => $1) \
           AND ($2::timestamptz IS NULL OR revoked_at > $2)",
    )
    .bind::<Double, _>(window.as_secs_f64())
    .bind::<Nullable<Timestamptz>, _>(after)
    .load(conn)
}

/// The database's clock: a cursor for [`recent`] that never depends on the
/// instance's own clock.
pub fn database_now(conn: &mut PgConnection) -> QueryResult<DateTime<Utc>> {
    diesel::select(diesel::dsl::sql::<Timestamptz>("now()")).get_result(conn)
}

/// Deletes the rows older than `keep` (they can no longer matter to any
/// instance with that window); returns how many went.
pub fn prune(conn: &mut PgConnection, keep: Duration) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM session_revocations WHERE revoked_at < now() - make_interval(secs => $1)",
    )
    .bind::<Double, _>(keep.as_secs_f64())
    .execute(conn)
}
