//! Moves blocking work (diesel, bcrypt) off the async workers.

use actix_web::web;
use diesel::pg::PgConnection;
use tokio::sync::Semaphore;

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

/// Runs CPU-heavy work (bcrypt, RSA signing) on the blocking pool, holding
/// no connection, at most one job per core at a time.
///
/// Without the limit a login storm puts dozens of bcrypt threads on two
/// cores and the async workers, which answer the cheap token-checked
/// routes, get a sliver of CPU. With it, bcrypt still saturates the cores
/// (logins reach the bcrypt bound) while waiting logins queue without
/// holding a thread.
pub struct CpuSlots(Semaphore);

impl CpuSlots {
    /// One slot per available core.
    pub fn per_core() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self(Semaphore::new(cores))
    }

    /// Runs `f` on the blocking pool once a slot is free.
    pub async fn run<T, F>(&self, f: F) -> AppResult<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let _slot = self.0.acquire().await.map_err(AppError::internal)?;
        web::block(f).await.map_err(AppError::internal)
    }
}
