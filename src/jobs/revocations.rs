//! The revocation listener: keeps this instance's set of revoked sessions
//! current with every other instance's revocations (README "Immediate
//! revocation").
//!
//! It holds one dedicated connection (application name
//! [`APPLICATION_NAME`]) that `LISTEN`s on the revocation channel and is
//! read every [`NOTIFICATION_CHECK`] on its own thread (diesel's
//! connection is blocking). When that connection fails, it reconnects with
//! backoff and meanwhile reads `session_revocations` every
//! [`POLL_INTERVAL`] through the pool; after every (re)connect it first
//! catches up on what it may have missed, then listens again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::auth::revocation::RevokedSessions;
use crate::config::Settings;
use crate::db::{self, revocations, DbPool};
use crate::jobs::Shutdown;

/// The `application_name` of the listening connection, so operators (and
/// the tests) can find it in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "tessera-revocation-listener";

/// How often the listening connection is read for notifications: the
/// added latency of a revocation made on another instance.
pub const NOTIFICATION_CHECK: Duration = Duration::from_millis(20);

/// How often `session_revocations` is read while the listening connection
/// is down.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// How often the listening connection is checked with a query (which also
/// advances the catch-up cursor).
const HEALTH_CHECK: Duration = Duration::from_secs(2);

/// How often expired entries leave the set and old rows the table.
const MAINTENANCE: Duration = Duration::from_secs(60);

/// A catch-up reads back this far before its cursor: a revocation's row
/// carries its transaction's start time but becomes visible at commit.
const CURSOR_MARGIN: Duration = Duration::from_secs(60);

/// Rows are kept this long past the window before they are pruned.
const KEEP_PAST_WINDOW: Duration = Duration::from_secs(3600);

/// First and longest wait between reconnection attempts.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));

/// Reads the revocations recorded after `after` (minus [`CURSOR_MARGIN`])
/// and within the set's window into the set; returns the new cursor (the
/// database's clock before the read). Startup calls it with `None` before
/// the server answers.
pub fn catch_up(
    conn: &mut PgConnection,
    set: &RevokedSessions,
    after: Option<DateTime<Utc>>,
) -> QueryResult<DateTime<Utc>> {
    let now = revocations::database_now(conn)?;
    let after = after.and_then(|cursor| {
        chrono::Duration::from_std(CURSOR_MARGIN)
            .ok()
            .and_then(|margin| cursor.checked_sub_signed(margin))
    });
    for row in revocations::recent(conn, after, set.window())? {
        set.insert_aged(row.session_id, row.age());
    }
    Ok(now)
}

/// Everything the listener thread needs (no `AppState`: the thread must
/// not keep the application alive).
pub struct Listener {
    url: String,
    pool: DbPool,
    set: Arc<RevokedSessions>,
    cursor: DateTime<Utc>,
    stop: Arc<AtomicBool>,
}

impl Listener {
    /// A listener feeding `set`, starting from the startup load's `cursor`.
    pub fn new(
        settings: &Settings,
        pool: DbPool,
        set: Arc<RevokedSessions>,
        cursor: DateTime<Utc>,
    ) -> Self {
        let url = db::with_network_timeouts(&settings.database_url, settings.db_timeout);
        Self {
            url: db::with_application_name(&url, APPLICATION_NAME),
            pool,
            set,
            cursor,
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sleeps `duration` in short steps; false once the stop is requested.
    fn pause(&self, duration: Duration) -> bool {
        let until = Instant::now() + duration;
        while !self.stopped() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
        false
    }

    /// The thread's loop: listen; when the connection fails, poll while
    /// reconnecting with backoff.
    fn run(mut self) {
        let mut backoff = BACKOFF.0;
        let mut failures = 0u32;
        let mut last_maintenance = Instant::now();
        while !self.stopped() {
            match PgConnection::establish(&self.url) {
                Ok(mut conn) => {
                    if failures > 0 {
                        log::info!("revocation listener: reconnected");
                    }
                    failures = 0;
                    backoff = BACKOFF.0;
                    if let Err(err) = self.listen(&mut conn, &mut last_maintenance) {
                        log::warn!(
                            "revocation listener: connection lost ({err}); polling every {} ms while reconnecting",
                            POLL_INTERVAL.as_millis()
                        );
                    }
                }
                Err(err) => {
                    failures += 1;
                    let line = db::connection_error(&self.url, &err);
                    if failures == 1 {
                        log::warn!("revocation listener: {line}; polling meanwhile");
                    } else {
                        log::debug!("revocation listener: attempt {failures}: {line}");
                    }
                }
            }
            // Disconnected: poll until the next attempt.
            let next_attempt = Instant::now() + backoff;
            backoff = (backoff * 2).min(BACKOFF.1);
            loop {
                if self.stopped() {
                    return;
                }
                self.poll();
                if last_maintenance.elapsed() >= MAINTENANCE {
                    self.set.purge_expired();
                    last_maintenance = Instant::now();
                }
                let left = next_attempt.saturating_duration_since(Instant::now());
                if left.is_zero() || !self.pause(left.min(POLL_INTERVAL)) {
                    break;
                }
            }
        }
    }

    /// One catch-up through the pool; a failure (the database is down)
    /// leaves the cursor where it was.
    fn poll(&mut self) {
        let result = self
            .pool
            .get()
            .map_err(|err| err.to_string())
            .and_then(|mut conn| {
                catch_up(&mut conn, &self.set, Some(self.cursor)).map_err(|err| err.to_string())
            });
        match result {
            Ok(cursor) => self.cursor = cursor,
            Err(err) => log::debug!("revocation listener: poll failed: {err}"),
        }
    }

    /// `LISTEN`, catch up, then apply notifications until the connection
    /// fails (an error) or the stop is requested (`Ok`).
    fn listen(
        &mut self,
        conn: &mut PgConnection,
        last_maintenance: &mut Instant,
    ) -> QueryResult<()> {
        diesel::sql_query(format!("LISTEN {}", revocations::CHANNEL)).execute(conn)?;
        // After LISTEN: anything committed from here on is also notified.
        self.cursor = catch_up(conn, &self.set, Some(self.cursor))?;
        let mut last_check = Instant::now();
        while !self.stopped() {
            self.drain(conn)?;
            if last_check.elapsed() >= HEALTH_CHECK {
                // Every revocation committed before `now` has been
                // notified by the time the query returns; apply those,
                // then move the cursor.
                let now = revocations::database_now(conn)?;
                self.drain(conn)?;
                self.cursor = now;
                last_check = Instant::now();
            }
            if last_maintenance.elapsed() >= MAINTENANCE {
                self.set.purge_expired();
                match revocations::prune(conn, self.set.window() + KEEP_PAST_WINDOW) {
                    Ok(0) => {}
                    Ok(pruned) => log::debug!("pruned {pruned} old session revocation(s)"),
                    Err(err) => log::warn!("pruning session revocations failed: {err}"),
                }
                *last_maintenance = Instant::now();
            }
            std::thread::sleep(NOTIFICATION_CHECK);
        }
        Ok(())
    }

    /// Applies every notification already received.
    fn drain(&self, conn: &mut PgConnection) -> QueryResult<()> {
        for notification in conn.notifications_iter() {
            let notification = notification?;
            if notification.channel == revocations::CHANNEL {
                let ids: Vec<_> = revocations::parse_payload(&notification.payload).collect();
                self.set.insert_all(&ids);
            }
        }
        Ok(())
    }
}

/// Sets the stop flag when dropped, so the thread ends even when the task
/// is dropped without a shutdown (a runtime that goes away in tests).
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The background task: runs the listener on its own thread until the
/// stop, then waits for the thread to notice.
pub async fn run(listener: Listener, mut shutdown: Shutdown) {
    let stop = StopOnDrop(Arc::clone(&listener.stop));
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("revocation-listener".into())
        .spawn(move || {
            listener.run();
            let _ = done.send(());
        });
    if let Err(err) = spawned {
        log::error!("cannot start the revocation listener thread: {err}");
        return;
    }
    shutdown.requested().await;
    stop.0.store(true, Ordering::Relaxed);
    let _ = finished.await;
}
