//! What every handler shares: settings, pool, token service, metrics.

use crate::auth::password::Passwords;
use crate::auth::refresh::SessionPolicy;
use crate::auth::tokens::TokenService;
use crate::blocking::CpuPool;
use crate::config::Settings;
use crate::db::DbPool;
use crate::metrics::Metrics;

/// Application state, shared across workers behind `web::Data`.
pub struct AppState {
    /// Validated configuration.
    pub settings: Settings,
    /// PostgreSQL pool.
    pub pool: DbPool,
    /// Issues and verifies access tokens.
    pub tokens: TokenService,
    /// Domain counters.
    pub metrics: Metrics,
    /// bcrypt hashing and verification on its own low-priority threads.
    pub passwords: Passwords,
    /// Low-priority threads for RSA signing, apart from bcrypt so token
    /// refreshes never queue behind a login storm.
    pub signing: CpuPool,
}

impl AppState {
    /// Session lifetimes from the settings.
    pub fn session_policy(&self) -> SessionPolicy {
        SessionPolicy {
            ttl: chrono::Duration::seconds(self.settings.refresh_token_ttl_seconds),
            reuse_grace: chrono::Duration::seconds(self.settings.refresh_reuse_grace_seconds),
        }
    }
}
