//! The command line: `serve` (default), `migrate`, `keygen`, `user`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use diesel::prelude::*;

use crate::app::open_files;
use crate::auth::keys;
use crate::config::Settings;
use crate::db;
use crate::services::accounts;
use crate::startup::Application;

/// tessera: JWT authentication service (RS256 access tokens, rotating
/// refresh tokens, JWKS).
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Create the database if missing and apply pending migrations.
    Migrate,
    /// Write a new RSA private key (PKCS#8 PEM, mode 0600); never overwrites.
    Keygen {
        /// Where to write the key.
        path: PathBuf,
        /// Modulus size: 2048, 3072 or 4096.
        #[arg(long, default_value_t = 2048)]
        bits: u32,
        /// Also print the public key (SPKI PEM) to stdout.
        #[arg(long)]
        print_public: bool,
    },
    /// Manage users.
    User {
        /// What to change.
        #[command(subcommand)]
        action: UserAction,
    },
}

/// `tessera user …`.
#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Add a role to a user (no-op if present).
    GrantRole {
        /// Username (case-insensitive).
        username: String,
        /// Role name, e.g. `admin`.
        role: String,
    },
    /// Remove a role from a user (no-op if absent).
    RevokeRole {
        /// Username (case-insensitive).
        username: String,
        /// Role name.
        role: String,
    },
}

/// A CLI failure, printed as one line.
pub type CliResult = Result<(), String>;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> CliResult {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(),
        Command::Migrate => migrate(),
        Command::Keygen {
            path,
            bits,
            print_public,
        } => keygen(&path, bits, print_public),
        Command::User { action } => user(action),
    }
}

fn load_settings() -> Result<Settings, String> {
    let settings = Settings::from_env().map_err(|err| err.to_string())?;
    init_logging(&settings.rust_log);
    Ok(settings)
}

/// env_logger with the validated `RUST_LOG` filter.
pub fn init_logging(filter: &str) {
    let _ = env_logger::Builder::new().parse_filters(filter).try_init();
}

fn serve() -> CliResult {
    let settings = load_settings()?;
    let bind_addr = settings.bind_addr;
    match open_files::raise_to_hard_limit() {
        Ok(Some(raised)) => log::info!(
            "open files limit raised from {} to {}",
            raised.from,
            raised.to
        ),
        Ok(None) => {}
        Err(err) => log::warn!("cannot raise the open files limit: {err}"),
    }
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings).map_err(|err| err.to_string())?;
        log::info!("tessera listening on {}:{}", bind_addr.ip(), app.port());
        app.run_until_stopped()
            .await
            .map_err(|err| format!("server error: {err}"))?;
        log::info!("tessera stopped");
        Ok(())
    })
}

fn migrate() -> CliResult {
    let settings = load_settings()?;
    db::ensure_database_exists(&settings.database_url).map_err(|err| err.to_string())?;
    let mut conn = connect(&settings)?;
    let applied = db::run_migrations(&mut conn).map_err(|err| err.to_string())?;
    println!("applied {applied} migration(s)");
    Ok(())
}

fn keygen(path: &std::path::Path, bits: u32, print_public: bool) -> CliResult {
    keys::write_new_private_key(path, bits)
        .map_err(|reason| format!("{}: {reason}", path.display()))?;
    eprintln!(
        "wrote {bits}-bit RSA private key to {} (mode 0600)",
        path.display()
    );
    if print_public {
        let pem = std::fs::read(path).map_err(|err| format!("{}: {err}", path.display()))?;
        print!(
            "{}",
            keys::public_pem_of(&pem).map_err(|reason| format!("{}: {reason}", path.display()))?
        );
    }
    Ok(())
}

fn user(action: UserAction) -> CliResult {
    let settings = load_settings()?;
    let mut conn = connect(&settings)?;
    let (username, role, grant) = match action {
        UserAction::GrantRole { username, role } => (username, role, true),
        UserAction::RevokeRole { username, role } => (username, role, false),
    };
    let change =
        accounts::set_role(&mut conn, &username, &role, grant).map_err(|err| err.to_string())?;
    println!(
        "{}: roles = [{}]{}",
        change.username,
        change.roles.join(", "),
        if change.changed { "" } else { " (unchanged)" }
    );
    Ok(())
}

/// A connection for the CLI; with `WEBHOOK_URL` set, the events it records
/// (role changes) queue webhooks like the server's.
fn connect(settings: &Settings) -> Result<PgConnection, String> {
    let mut conn = PgConnection::establish(&settings.database_url)
        .map_err(|err| db::connection_error(&settings.database_url, &err).to_string())?;
    if settings.webhook.is_some() {
        db::enable_webhooks(&mut conn).map_err(|err| format!("database: {err}"))?;
    }
    Ok(conn)
}
