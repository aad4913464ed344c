//! Keeps the brute-force tables small (README "Brute-force defence"): every
//! minute, deletes login names nobody failed on for a while and per-IP
//! budgets that are full again, in bounded batches. Every instance runs it;
//! the deletes are idempotent, so several at once only share the work.

use std::sync::Arc;
use std::time::Duration;

use crate::blocking::run_db;
use crate::db::throttle;
use crate::jobs::Shutdown;
use crate::state::AppState;

/// Time between pruning runs.
pub const EVERY: Duration = Duration::from_secs(60);

/// Batches of [`throttle::PRUNE_BATCH`] rows per table per run (at most
/// 100,000 rows each a minute, far above what bcrypt lets an attacker add).
pub const BATCHES_PER_RUN: usize = 20;

/// Runs until the instance stops.
pub async fn run(state: Arc<AppState>, mut shutdown: Shutdown) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            () = shutdown.requested() => return,
        }
        match run_db(&state.pool, |conn| throttle::prune(conn, BATCHES_PER_RUN)).await {
            Ok(pruned) if pruned != throttle::Pruned::default() => log::debug!(
                "pruned {} login name(s) and {} rate-limit budget(s)",
                pruned.names,
                pruned.budgets
            ),
            Ok(_) => {}
            Err(err) => log::warn!("pruning the brute-force tables failed: {err}"),
        }
    }
}
