//! Moves blocking work (diesel, bcrypt) off the async workers.

use actix_web::web;
use diesel::pg::PgConnection;

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

/// Runs CPU-heavy work (bcrypt) on the blocking pool, holding no connection.
pub async fn run_cpu<T, F>(f: F) -> AppResult<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    web::block(f).await.map_err(AppError::internal)
}
