//! The outbox: messages written in the transaction of the change they
//! announce ([`enqueue`]) and delivered afterwards by a background worker
//! ([`run`]) — at least once, in order per kind and user, with exponential
//! backoff while the receiver fails, never on a request's time. Each kind of
//! message (`webhook`, mail) has a sender implementing [`Deliver`].
//! README "Events and webhooks" describes the schedule.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use diesel::PgConnection;
use diesel::QueryResult;
use uuid::Uuid;

use crate::blocking::run_db;
use crate::db::outbox as queries;
pub use crate::db::outbox::OutboxRow;
use crate::jobs::Shutdown;
use crate::state::AppState;

/// How often the worker looks for due rows when it found none.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The longest one delivery attempt may take; then it counts as failed.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The wait after the first failed attempt; it doubles with each failure.
pub const FIRST_RETRY: Duration = Duration::from_secs(2);
/// The longest wait between two attempts.
pub const MAX_RETRY: Duration = Duration::from_secs(600);
/// A row still failing this long after it was enqueued is given up on.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Rows claimed at once (one per kind and user at most; delivered
/// concurrently).
const BATCH: i64 = 32;
/// How long a claim holds a row: longer than an attempt plus recording its
/// result, so no other instance takes the row while it is being delivered;
/// if this instance dies, another one retries the row after the lease.
const LEASE_SECONDS: i32 = 60;

/// Adds a message for the sender of `kind`, inside the caller's transaction
/// (it commits with the change it announces, or not at all). `user_id`
/// orders it after that user's earlier messages of the same kind.
pub fn enqueue(
    conn: &mut PgConnection,
    kind: &str,
    user_id: Option<Uuid>,
    payload: &serde_json::Value,
) -> QueryResult<i64> {
    queries::insert(conn, kind, user_id, payload)
}

/// Why a delivery attempt failed. `reason` is stored in `last_error` and
/// logged: it must not carry a secret (no URL with credentials, no token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryError {
    /// One line: what went wrong.
    pub reason: String,
    /// True when retrying cannot help (the row is marked failed at once).
    pub permanent: bool,
}

impl DeliveryError {
    /// A failure worth retrying (timeout, 5xx, connection refused).
    pub fn transient(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            permanent: false,
        }
    }

    /// A failure no retry can fix.
    pub fn permanent(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            permanent: true,
        }
    }
}

/// What a sender's attempt returns.
pub type DeliveryFuture<'a> = Pin<Box<dyn Future<Output = Result<(), DeliveryError>> + 'a>>;

/// Delivers one kind of outbox message. The worker bounds each attempt by
/// [`ATTEMPT_TIMEOUT`] and handles retries; a sender only tries once.
pub trait Deliver {
    /// The `outbox.kind` this sender delivers.
    fn kind(&self) -> &'static str;

    /// One attempt to deliver `message`.
    fn deliver<'a>(&'a self, message: &'a OutboxRow) -> DeliveryFuture<'a>;
}

/// The senders an instance runs, by kind. Rows of a kind without a sender
/// here are left for an instance that has one.
#[derive(Clone, Default)]
pub struct Senders(HashMap<&'static str, Arc<dyn Deliver>>);

impl Senders {
    /// Adds (or replaces) the sender of its kind.
    pub fn add(&mut self, sender: Arc<dyn Deliver>) {
        self.0.insert(sender.kind(), sender);
    }

    /// Whether there is nothing to deliver.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn kinds(&self) -> Vec<String> {
        self.0.keys().map(|kind| (*kind).to_owned()).collect()
    }
}

/// The wait before the next attempt after `attempts` failed ones: 2 s,
/// 4 s, 8 s, … up to 10 minutes.
pub fn retry_delay(attempts: i32) -> Duration {
    let doublings = attempts.saturating_sub(1).clamp(0, 16) as u32;
    FIRST_RETRY
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(MAX_RETRY)
}

/// How one attempt went.
enum Outcome {
    Sent,
    Retry(Duration, String),
    Failed(String),
}

/// The worker: claims due rows, delivers them concurrently, records the
/// outcomes, and looks again at once after a busy round (a user's next row
/// may now be due) or after [`POLL_INTERVAL`] otherwise. Stops on shutdown
/// after the attempts in flight.
pub async fn run(state: Arc<AppState>, senders: Senders, mut shutdown: Shutdown) {
    if senders.is_empty() {
        return;
    }
    let kinds = senders.kinds();
    loop {
        if shutdown.is_requested() {
            return;
        }
        let claim_kinds = kinds.clone();
        let claimed = run_db(&state.pool, move |conn| {
            queries::claim_due(conn, &claim_kinds, BATCH, LEASE_SECONDS)
        })
        .await;
        match claimed {
            Ok(rows) if !rows.is_empty() => {
                let outcomes =
                    futures_util::future::join_all(rows.iter().map(|row| attempt(&senders, row)))
                        .await;
                let results: Vec<(OutboxRow, Outcome)> = rows.into_iter().zip(outcomes).collect();
                if let Err(err) = record(&state, results).await {
                    log::warn!("outbox: recording delivery results failed: {err}");
                }
                continue;
            }
            Ok(_) => {}
            Err(err) => log::warn!("outbox: claiming due messages failed: {err}"),
        }
        tokio::select! {
            () = tokio::time::sleep(POLL_INTERVAL) => {}
            () = shutdown.requested() => return,
        }
    }
}

/// One bounded attempt, and what to do next.
async fn attempt(senders: &Senders, row: &OutboxRow) -> Outcome {
    let Some(sender) = senders.0.get(row.kind.as_str()) else {
        // Claimed only for known kinds; kept for completeness.
        return Outcome::Retry(MAX_RETRY, format!("no sender for kind {}", row.kind));
    };
    let result = match tokio::time::timeout(ATTEMPT_TIMEOUT, sender.deliver(row)).await {
        Ok(result) => result,
        Err(_) => Err(DeliveryError::transient(format!(
            "no answer within {} s",
            ATTEMPT_TIMEOUT.as_secs()
        ))),
    };
    match result {
        Ok(()) => Outcome::Sent,
        Err(err) if err.permanent => Outcome::Failed(err.reason),
        Err(err) => {
            let age = (Utc::now() - row.created_at).to_std().unwrap_or_default();
            let delay = retry_delay(row.attempts);
            if age + delay > GIVE_UP_AFTER {
                Outcome::Failed(err.reason)
            } else {
                Outcome::Retry(delay, err.reason)
            }
        }
    }
}

/// Writes each outcome: delete sent rows, reschedule or fail the others.
async fn record(
    state: &AppState,
    results: Vec<(OutboxRow, Outcome)>,
) -> crate::error::AppResult<()> {
    for (row, outcome) in &results {
        match outcome {
            Outcome::Sent => log::debug!("outbox: {} message {} delivered", row.kind, row.id),
            Outcome::Retry(delay, reason) => log::info!(
                "outbox: {} message {} attempt {} failed ({reason}); retrying in {} s",
                row.kind,
                row.id,
                row.attempts,
                delay.as_secs()
            ),
            Outcome::Failed(reason) => log::warn!(
                "outbox: {} message {} given up after {} attempt(s): {reason}",
                row.kind,
                row.id,
                row.attempts
            ),
        }
    }
    run_db(&state.pool, move |conn| {
        let now = Utc::now();
        for (row, outcome) in &results {
            match outcome {
                Outcome::Sent => queries::mark_sent(conn, row.id)?,
                Outcome::Retry(delay, reason) => {
                    let delay = chrono::Duration::from_std(*delay).unwrap_or_default();
                    queries::schedule_retry(conn, row.id, now + delay, reason)?
                }
                Outcome::Failed(reason) => queries::mark_failed(conn, row.id, now, reason)?,
            };
        }
        Ok::<_, diesel::result::Error>(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_start_at_two_seconds_and_double_up_to_ten_minutes() {
        let delays: Vec<u64> = (1..=12).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600, 600]);
        assert_eq!(retry_delay(0).as_secs(), 2);
        assert_eq!(retry_delay(i32::MAX).as_secs(), 600);
    }
}
