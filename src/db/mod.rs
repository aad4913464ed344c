//! PostgreSQL access: the pool, embedded migrations, and plain synchronous
//! query functions over `&mut PgConnection`. Knows nothing of HTTP.

pub mod models;
pub mod refresh_tokens;
pub mod schema;
pub mod sessions;
pub mod users;

use std::time::Duration;

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, Pool, PooledConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// The migrations compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// The shared connection pool.
pub type DbPool = Pool<ConnectionManager<PgConnection>>;

/// One connection checked out of the pool.
pub type DbConn = PooledConnection<ConnectionManager<PgConnection>>;

/// A startup-time database problem (one line, no secrets).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DbSetupError(String);

/// Builds the pool; fails when the database cannot be reached in `timeout`.
pub fn build_pool(url: &str, size: u32, timeout: Duration) -> Result<DbPool, DbSetupError> {
    Pool::builder()
        .max_size(size)
        .min_idle(Some(1.min(size)))
        .connection_timeout(timeout)
        .build(ConnectionManager::<PgConnection>::new(url))
        .map_err(|err| {
            DbSetupError(format!(
                "DATABASE_URL: cannot connect to {}: {err}",
                redact(url)
            ))
        })
}

/// A trivial query, for readiness.
pub fn ping(conn: &mut PgConnection) -> QueryResult<()> {
    diesel::sql_query("SELECT 1").execute(conn).map(|_| ())
}

/// Applies every pending embedded migration.
pub fn run_migrations(conn: &mut PgConnection) -> Result<usize, DbSetupError> {
    conn.run_pending_migrations(MIGRATIONS)
        .map(|applied| applied.len())
        .map_err(|err| DbSetupError(format!("migrations failed: {err}")))
}

/// Creates the database named in `url` when it does not exist yet, by
/// connecting to the server's `postgres` maintenance database.
pub fn ensure_database_exists(url: &str) -> Result<(), DbSetupError> {
    if PgConnection::establish(url).is_ok() {
        return Ok(());
    }
    let parsed = url::Url::parse(url)
        .map_err(|err| DbSetupError(format!("DATABASE_URL: not a valid URL: {err}")))?;
    let name = parsed.path().trim_start_matches('/').to_owned();
    if name.is_empty() {
        return Err(DbSetupError("DATABASE_URL: names no database".into()));
    }
    let mut admin_url = parsed.clone();
    admin_url.set_path("/postgres");
    let mut admin =
        PgConnection::establish(admin_url.as_str()).map_err(|err| connection_error(url, &err))?;
    let exists: bool = diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(&format!(
        "EXISTS (SELECT 1 FROM pg_database WHERE datname = {})",
        quote_literal(&name)
    )))
    .get_result(&mut admin)
    .map_err(|err| DbSetupError(format!("cannot inspect databases: {err}")))?;
    if !exists {
        let statement = format!("CREATE DATABASE {}", quote_ident(&name));
        if let Err(err) = diesel::sql_query(statement).execute(&mut admin) {
            // Another instance may have created it at the same moment.
            if PgConnection::establish(url).is_err() {
                return Err(DbSetupError(format!(
                    "cannot create database {name:?}: {err}"
                )));
            }
        } else {
            log::info!("created database {name:?}");
        }
    }
    Ok(())
}

/// Quotes an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes an SQL string literal.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// The URL with any password removed, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "<unparsable URL>".to_owned(),
    }
}

/// The one-line startup error for a failed connection to `url` (password
/// redacted, only the first line of libpq's message).
pub fn connection_error(url: &str, err: &diesel::ConnectionError) -> DbSetupError {
    let text = err.to_string();
    let first_line = text.lines().next().unwrap_or_default().trim();
    DbSetupError(format!(
        "DATABASE_URL: cannot connect to {}: {first_line}",
        redact(url)
    ))
}
