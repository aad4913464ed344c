//! Retention: deletes security events older than `EVENT_RETENTION_DAYS`
//! (and outbox rows given up on as long ago), once at start and then every
//! hour. Several instances may prune at once; the deletes do not conflict.

use std::sync::Arc;
use std::time::Duration;

use crate::jobs::Shutdown;
use crate::services::events;
use crate::state::AppState;

/// How often old events are pruned.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// The task: prune, wait an hour (or until shutdown), repeat.
pub async fn run(state: Arc<AppState>, mut shutdown: Shutdown) {
    loop {
        match events::prune(&state).await {
            Ok(0) => {}
            Ok(pruned) => log::info!("retention: deleted {pruned} old security event(s)"),
            Err(err) => log::warn!("retention: pruning old events failed: {err}"),
        }
        tokio::select! {
            () = tokio::time::sleep(PRUNE_INTERVAL) => {}
            () = shutdown.requested() => return,
        }
    }
}
