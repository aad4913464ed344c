//! The re-hash job: after a successful login with a hash made at another
//! bcrypt cost, store the password again at the configured cost — off the
//! request, on the bcrypt threads — unless the password changed meanwhile.

use std::sync::Arc;

use tokio::sync::mpsc;
use uuid::Uuid;

use crate::blocking::run_db;
use crate::db::users;
use crate::domain::Password;
use crate::error::AppResult;
use crate::jobs::Shutdown;
use crate::state::AppState;

/// Jobs waiting beyond this many are dropped (the next login queues the
/// re-hash again).
const QUEUE: usize = 1024;

/// One password to store again at the configured cost.
pub struct RehashJob {
    /// The account.
    pub user_id: Uuid,
    /// The hash the login verified; the job writes only while it is stored.
    pub old_hash: String,
    /// The password that verified against it.
    pub password: Password,
}

/// Where services queue re-hash jobs.
#[derive(Clone)]
pub struct Queue(mpsc::Sender<RehashJob>);

/// What the worker consumes.
pub type Receiver = mpsc::Receiver<RehashJob>;

/// A queue and its receiving end.
pub fn queue() -> (Queue, Receiver) {
    let (sender, receiver) = mpsc::channel(QUEUE);
    (Queue(sender), receiver)
}

impl Queue {
    /// Queues a job; a full queue drops it with a warning.
    pub fn submit(&self, job: RehashJob) {
        if self.0.try_send(job).is_err() {
            log::warn!("re-hash queue full or stopped; the next login retries");
        }
    }
}

/// The worker: runs jobs one at a time until shutdown, then finishes the
/// jobs already queued.
pub async fn run(state: Arc<AppState>, mut jobs: Receiver, mut shutdown: Shutdown) {
    loop {
        tokio::select! {
            job = jobs.recv() => match job {
                Some(job) => perform(&state, job).await,
                None => return,
            },
            () = shutdown.requested() => break,
        }
    }
    jobs.close();
    while let Some(job) = jobs.recv().await {
        perform(&state, job).await;
    }
}

async fn perform(state: &AppState, job: RehashJob) {
    let user_id = job.user_id;
    if let Err(err) = rehash(state, job).await {
        log::warn!("rehashing the password of user {user_id} failed: {err}");
    }
}

async fn rehash(state: &AppState, job: RehashJob) -> AppResult<()> {
    let RehashJob {
        user_id,
        old_hash,
        password,
    } = job;
    let hash = state.passwords.hash(password).await?;
    run_db(&state.pool, move |conn| {
        users::replace_password_hash(conn, user_id, &old_hash, &hash)
    })
    .await?;
    Ok(())
}
