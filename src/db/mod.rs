//! PostgreSQL access: the pool, embedded migrations, and plain synchronous
//! query functions over `&mut PgConnection`. Knows nothing of HTTP.

pub mod email;
pub mod events;
pub mod mfa;
pub mod models;
pub mod outbox;
pub mod passkeys;
pub mod refresh_tokens;
pub mod revocations;
pub mod schema;
pub mod sessions;
pub mod throttle;
pub mod users;

use std::time::Duration;

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, Pool, PooledConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// The migrations compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Initializes OpenSSL, which libpq uses for SCRAM-SHA-256 authentication
/// and TLS, WITHOUT its exit-time cleanup. The pool's background threads may
/// still be opening connections while the process exits; OpenSSL's own
/// `atexit` handler would free its locks under them and the process would
/// die of SIGSEGV after a clean run. Call it before the first connection
/// (the first initialization decides); later calls do nothing.
pub fn init_crypto() {
    openssl::init();
}

/// The shared connection pool.
pub type DbPool = Pool<ConnectionManager<PgConnection>>;

/// One connection checked out of the pool.
pub type DbConn = PooledConnection<ConnectionManager<PgConnection>>;

/// A startup-time database problem (one line, no secrets).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DbSetupError(String);

/// The session setting that tells [`crate::services::events::record`] to
/// queue a webhook for each event (set on every connection of an instance
/// with `WEBHOOK_URL`, so callers of `record` need not know).
pub const WEBHOOKS_SETTING: &str = "tessera.webhooks";

/// Marks a connection as one whose recorded events also queue webhooks.
pub fn enable_webhooks(conn: &mut PgConnection) -> QueryResult<()> {
    diesel::sql_query(format!("SET {WEBHOOKS_SETTING} = 'on'"))
        .execute(conn)
        .map(|_| ())
}

/// Per-connection setup run when the pool opens a connection.
#[derive(Debug, Clone, Copy)]
struct ConnectionSetup {
    webhooks: bool,
}

impl diesel::r2d2::CustomizeConnection<PgConnection, diesel::r2d2::Error> for ConnectionSetup {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        if self.webhooks {
            enable_webhooks(conn).map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// Builds the pool; fails when the database cannot be reached in `timeout`.
/// With `webhooks`, every connection queues a webhook per recorded event.
///
/// `timeout` bounds the wait for a connection (and, in `run_db`, a whole
/// database step). Every checkout is tested with a query, so a connection
/// that died during an outage is replaced, and the pool recovers by itself
/// once the database is back. The connections themselves get libpq network
/// timeouts (see [`with_network_timeouts`]).
pub fn build_pool(
    url: &str,
    size: u32,
    timeout: Duration,
    webhooks: bool,
) -> Result<DbPool, DbSetupError> {
    Pool::builder()
        .connection_customizer(Box::new(ConnectionSetup { webhooks }))
        .max_size(size)
        .min_idle(Some(1.min(size)))
        .connection_timeout(timeout)
        .test_on_check_out(true)
        .build(ConnectionManager::<PgConnection>::new(
            with_network_timeouts(url, timeout),
        ))
        .map_err(|err| {
            DbSetupError(format!(
                "DATABASE_URL: cannot connect to {}: {err}",
                redact(url)
            ))
        })
}

/// libpq settings that keep a dead network from blocking a pool thread:
/// added to a `postgres://` URL unless it sets them itself.
///
/// Without them a connection attempt to a host that accepts but never
/// answers waits forever, and it waits on one of r2d2's three connector
/// threads, so after enough of them the pool can never reconnect, even once
/// the database is back. `connect_timeout` (libpq's minimum is 2 s) bounds
/// such attempts; `tcp_user_timeout` closes a connection whose sent data
/// goes unacknowledged that long; keepalives find idle connections whose
/// peer vanished. A URL that is not a `postgres://` URL (a `key=value`
/// string) is returned unchanged.
pub fn with_network_timeouts(url: &str, timeout: Duration) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_owned();
    };
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return url.to_owned();
    }
    let seconds = timeout.as_secs().max(2);
    let defaults = [
        ("connect_timeout", seconds.to_string()),
        ("tcp_user_timeout", (seconds * 1000).to_string()),
        ("keepalives", "1".to_owned()),
        ("keepalives_idle", "30".to_owned()),
        ("keepalives_interval", "10".to_owned()),
        ("keepalives_count", "3".to_owned()),
    ];
    let present: Vec<String> = parsed
        .query_pairs()
        .map(|(key, _)| key.into_owned())
        .collect();
    let missing: Vec<_> = defaults
        .iter()
        .filter(|(key, _)| !present.iter().any(|p| p == key))
        .collect();
    if !missing.is_empty() {
        let mut pairs = parsed.query_pairs_mut();
        for (key, value) in missing {
            pairs.append_pair(key, value);
        }
    }
    parsed.to_string()
}

/// `url` with an `application_name` (shown in `pg_stat_activity`) unless it
/// sets one itself; a `key=value` connection string gets it appended.
pub fn with_application_name(url: &str, name: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if matches!(parsed.scheme(), "postgres" | "postgresql") => {
            if !parsed
                .query_pairs()
                .any(|(key, _)| key == "application_name")
            {
                parsed
                    .query_pairs_mut()
                    .append_pair("application_name", name);
            }
            parsed.to_string()
        }
        _ if url.contains("application_name=") => url.to_owned(),
        _ => format!("{url} application_name={name}"),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_timeouts_are_added_to_a_url_without_them() {
        let url = with_network_timeouts("postgres://u:p@db:5432/app", Duration::from_secs(3));
        let parsed = url::Url::parse(&url).unwrap();
        let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        let get = |key: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("connect_timeout"), Some("3"));
        assert_eq!(get("tcp_user_timeout"), Some("3000"));
        assert_eq!(get("keepalives"), Some("1"));
        assert_eq!(parsed.host_str(), Some("db"));
        assert_eq!(parsed.path(), "/app");
        assert_eq!(parsed.password(), Some("p"));
    }

    #[test]
    fn network_timeouts_respect_the_url_and_libpq_minimum() {
        let url = with_network_timeouts(
            "postgresql://db/app?sslmode=require&connect_timeout=10",
            Duration::from_secs(1),
        );
        let parsed = url::Url::parse(&url).unwrap();
        let connect: Vec<_> = parsed
            .query_pairs()
            .filter(|(k, _)| k == "connect_timeout")
            .map(|(_, v)| v.into_owned())
            .collect();
        assert_eq!(connect, ["10"], "the URL's own value wins, once");
        assert!(parsed
            .query_pairs()
            .any(|(k, v)| k == "sslmode" && v == "require"));
        assert!(parsed
            .query_pairs()
            .any(|(k, v)| k == "tcp_user_timeout" && v == "2000"));
    }

    #[test]
    fn an_application_name_is_added_unless_the_url_has_one() {
        let url = with_application_name("postgres://db/app?sslmode=disable", "listener");
        let parsed = url::Url::parse(&url).unwrap();
        assert!(parsed
            .query_pairs()
            .any(|(k, v)| k == "application_name" && v == "listener"));
        let own = "postgres://db/app?application_name=mine";
        assert_eq!(with_application_name(own, "listener"), own);
        assert_eq!(
            with_application_name("host=db dbname=app", "listener"),
            "host=db dbname=app application_name=listener"
        );
    }

    #[test]
    fn a_key_value_connection_string_is_left_alone() {
        let conninfo = "host=db dbname=app";
        assert_eq!(
            with_network_timeouts(conninfo, Duration::from_secs(3)),
            conninfo
        );
    }
}
