//! What every handler and service shares: settings, pool, token service,
//! metrics, the CPU pools and the job queues.

use std::sync::Arc;

use crate::auth::passkeys::PasskeyVerifier;
use crate::auth::password::PasswordHasher;
use crate::auth::revocation::RevokedSessions;
use crate::auth::tokens::TokenService;
use crate::auth::totp::SecretBox;
use crate::blocking::CpuPool;
use crate::config::Settings;
use crate::db::DbPool;
use crate::jobs::rehash;
use crate::limiter::RateLimiter;
use crate::metrics::Metrics;
use crate::services::sessions::SessionPolicy;

/// Application state, shared across workers (behind `web::Data`, an `Arc`).
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
    pub passwords: PasswordHasher,
    /// Low-priority threads for RSA signing, apart from bcrypt so token
    /// refreshes never queue behind a login storm.
    pub signing: CpuPool,
    /// The per-client-IP budget of logins and registrations.
    pub auth_rate_limit: Box<dyn RateLimiter>,
    /// Passwords to store again at the configured bcrypt cost.
    pub rehash_jobs: rehash::Queue,
    /// Sessions revoked within the revocation window, which the guard
    /// refuses; shared with the revocation listener.
    pub revoked_sessions: Arc<RevokedSessions>,
    /// The WebAuthn relying party (passkeys).
    pub passkeys: PasskeyVerifier,
    /// Seals and opens TOTP secrets (`MFA_ENCRYPTION_KEY` or a key derived
    /// from the signing key).
    pub mfa_secrets: Arc<SecretBox>,
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
