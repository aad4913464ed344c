//! Moves blocking work (diesel, bcrypt) off the async workers.

use actix_web::web;
use diesel::pg::PgConnection;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::db::DbPool;
use crate::error::{AppError, AppResult};

/// Checks a connection out of the pool and runs `f` on actix's blocking
/// thread pool. A pool timeout becomes 503 `unavailable`.
pub async fn run_db<T, E, F>(pool: &DbPool, f: F) -> AppResult<T>
where
    F: FnOnce(&mut PgConnection) -> Result<T, E> + Send + 'static,
    E: Into<AppError>,
    T: Send + 'static,
{
    let pool = pool.clone();
    web::block(move || -> AppResult<T> {
        let mut conn = pool
            .get()
            .map_err(|err| AppError::Unavailable(err.to_string()))?;
        f(&mut conn).map_err(Into::into)
    })
    .await
    .map_err(AppError::internal)?
}

/// CPU-heavy work (bcrypt, RSA signing) runs here: one thread per core, at
/// a lower scheduling priority (nice 10), holding no connection.
///
/// A login storm then saturates the cores (logins reach the bcrypt bound)
/// while the async workers, which answer the cheap token-checked routes,
/// still win the CPU whenever they have work. Without this, dozens of
/// `web::block` threads each burning bcrypt would share two cores evenly
/// with the workers. Queued jobs wait in the channel, not on a thread.
pub struct CpuPool {
    jobs: Sender<Job>,
}

/// A unit of work for the pool.
type Job = Box<dyn FnOnce() + Send>;

/// How much lower than normal the pool's threads run (Linux nice value).
const CPU_POOL_NICE: i32 = 10;

impl CpuPool {
    /// Starts one worker thread per available core.
    pub fn per_core() -> std::io::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(cores)
    }

    /// Starts `threads` worker threads.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let (jobs, queue) = channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..threads.max(1) {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("tessera-cpu-{index}"))
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
        self.jobs
            .send(Box::new(move || {
                let _ = reply.send(f());
            }))
            .map_err(|_| AppError::internal("CPU pool has stopped"))?;
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
        let pool = CpuPool::new(1).unwrap();
        assert_eq!(pool.run(|| 2 + 2).await.unwrap(), 4);
        let failed = pool.run(|| -> u32 { panic!("boom") }).await;
        assert!(failed.is_err());
        assert_eq!(pool.run(|| "still here").await.unwrap(), "still here");
    }
}
