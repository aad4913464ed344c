//! Moves blocking work (diesel, bcrypt) off the async workers.

use actix_web::web;
use diesel::pg::PgConnection;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::oneshot;

use crate::db::DbPool;
use crate::error::{AppError, AppResult};

/// Checks a connection out of the pool and runs `f` on actix's blocking
/// thread pool. No connection within the pool's timeout
/// (`DB_TIMEOUT_SECONDS`) is 503 `unavailable`, and so is a step that has
/// not finished within twice that: the wait for a connection plus as long
/// again for the queries.
///
/// The second bound is needed because r2d2 tests an idle connection with a
/// query that has no timeout of its own, and a query on a connection whose
/// packets vanish can wait in libpq for minutes. Such a job is left to end
/// on its thread (its connection fails or resumes later), but the request
/// is answered in time, and a job that only gets its connection after its
/// caller was answered does not run.
pub async fn run_db<T, E, F>(pool: &DbPool, f: F) -> AppResult<T>
where
    F: FnOnce(&mut PgConnection) -> Result<T, E> + Send + 'static,
    E: Into<AppError>,
    T: Send + 'static,
{
    let pool = pool.clone();
    let budget = pool.connection_timeout() * 2;
    let deadline = Instant::now() + budget;
    let job = web::block(move || -> AppResult<T> {
        let mut conn = pool
            .get()
            .map_err(|err| AppError::Unavailable(err.to_string()))?;
        if Instant::now() >= deadline {
            // Already answered 503: never write behind the caller's back.
            return Err(AppError::Unavailable(
                "connection checked out after the deadline".into(),
            ));
        }
        f(&mut conn).map_err(Into::into)
    });
    match actix_web::rt::time::timeout(budget, job).await {
        Ok(joined) => joined.map_err(AppError::internal)?,
        Err(_) => Err(AppError::Unavailable(format!(
            "no answer from the database within {budget:?}"
        ))),
    }
}

/// CPU-heavy work (bcrypt, RSA signing) runs here: one thread per core, at
/// a lower scheduling priority (nice 10), holding no connection.
///
/// A login storm then saturates the cores (logins reach the bcrypt bound)
/// while the async workers, which answer the cheap token-checked routes,
/// still win the CPU whenever they have work. Without this, dozens of
/// `web::block` threads each burning bcrypt would share two cores evenly
/// with the workers. Queued jobs wait in a bounded channel, not on a
/// thread; when it is full the answer is 503 with `Retry-After`, and a job
/// whose client has gone away is skipped.
pub struct CpuPool {
    jobs: SyncSender<Job>,
}

/// A unit of work for the pool.
type Job = Box<dyn FnOnce() + Send>;

/// How much lower than normal the pool's threads run (Linux nice value).
const CPU_POOL_NICE: i32 = 10;

impl CpuPool {
    /// Starts one worker thread per available core, named `tessera-{name}-N`,
    /// queueing at most `queue_per_core` jobs per core.
    pub fn per_core(name: &str, queue_per_core: usize) -> std::io::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(name, cores, cores * queue_per_core)
    }

    /// Starts `threads` worker threads with room for `queue` waiting jobs.
    pub fn new(name: &str, threads: usize, queue: usize) -> std::io::Result<Self> {
        let (jobs, queue) = sync_channel::<Job>(queue);
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..threads.max(1) {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("tessera-{name}-{index}"))
                .spawn(move || {
                    lower_current_thread_priority(CPU_POOL_NICE);
                    loop {
                        let next = match queue.lock() {
                            Ok(receiver) => receiver.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = next else { return };
                        // A panicking job must not shrink the pool; its
                        // caller sees the dropped result channel as an error.
                        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                    }
                })?;
        }
        Ok(Self { jobs })
    }

    /// Runs `f` on the pool and waits for its result without blocking the
    /// async worker.
    pub async fn run<T, F>(&self, f: F) -> AppResult<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (reply, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            // The request was dropped (client gone): skip the work.
            if !reply.is_closed() {
                let _ = reply.send(f());
            }
        });
        self.jobs.try_send(job).map_err(|err| match err {
            TrySendError::Full(_) => AppError::Unavailable("CPU queue full".into()),
            TrySendError::Disconnected(_) => AppError::internal("CPU pool has stopped"),
        })?;
        result
            .await
            .map_err(|_| AppError::internal("CPU job failed"))
    }
}

/// Lowers the calling thread's scheduling priority; best effort.
fn lower_current_thread_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid and setpriority take no pointers; on Linux,
        // PRIO_PROCESS with a thread id changes that one thread. Raising the
        // nice value needs no privilege; failure only leaves it at 0.
        unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn jobs_run_and_a_panicking_job_does_not_kill_the_pool() {
        let pool = CpuPool::new("test", 1, 4).unwrap();
        assert_eq!(pool.run(|| 2 + 2).await.unwrap(), 4);
        let failed = pool.run(|| -> u32 { panic!("boom") }).await;
        assert!(failed.is_err());
        assert_eq!(pool.run(|| "still here").await.unwrap(), "still here");
    }

    #[actix_web::test]
    async fn a_full_queue_answers_unavailable() {
        let pool = CpuPool::new("test", 1, 1).unwrap();
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let mut busy = Box::pin(pool.run(move || {
            let _ = started_tx.send(());
            gate.recv().ok()
        }));
        assert!(futures_util::poll!(busy.as_mut()).is_pending());
        started.recv().unwrap(); // the only thread is now busy
        let mut queued = Box::pin(pool.run(|| ()));
        assert!(futures_util::poll!(queued.as_mut()).is_pending()); // fills the queue

        let rejected = pool.run(|| ()).await;

        assert!(matches!(rejected, Err(AppError::Unavailable(_))));
        release.send(()).unwrap();
        assert!(busy.await.is_ok());
        assert!(queued.await.is_ok());
    }
}
