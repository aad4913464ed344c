//! The per-username login throttle (README "Brute-force defence"): after
//! `LOGIN_FAILURES_BEFORE_DELAY` consecutive failed password checks for a
//! name (existing or not), password logins for it are refused with 429
//! BEFORE bcrypt runs, for 1 s doubling per further failure up to 15
//! minutes; a correct password resets it. The counters live in PostgreSQL,
//! so every instance sees the same ones. Only the password login uses this.

use std::time::Duration;

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::blocking::run_db;
use crate::db::throttle::{self as store, NameState};
use crate::db::users;
use crate::domain::Username;
use crate::error::{AppError, AppResult};
use crate::limiter::Decision;
use crate::services::events::{self, Event, EventType};
use crate::services::sessions::ClientInfo;
use crate::state::AppState;

/// The throttle's key for a login name: SHA-256 of the lower-cased name as
/// typed, so any string (10 KiB, NUL bytes) is a fixed 32-byte key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameKey([u8; 32]);

impl NameKey {
    /// The key for `username` exactly as the client sent it.
    pub fn of(username: &str) -> Self {
        Self(Sha256::digest(username.to_lowercase().as_bytes()).into())
    }
}

/// What the check before bcrypt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    /// Whether the name has failures on record (a success must reset them).
    pub has_failures: bool,
}

/// Refuses a throttled name with 429 `rate_limited` (and records a
/// `login_throttled` event); otherwise says whether failures are on record.
/// One primary-key lookup when the name is not throttled.
pub async fn check(
    state: &AppState,
    key: NameKey,
    username: &str,
    client: &ClientInfo,
) -> AppResult<Gate> {
    let username = Username::parse(username).ok();
    let client = client.clone();
    run_db(&state.pool, move |conn| -> AppResult<Gate> {
        let Some(found) = store::name_state(conn, &key.0)? else {
            return Ok(Gate {
                has_failures: false,
            });
        };
        let Some(wait) = found.blocked_for() else {
            return Ok(Gate {
                has_failures: found.failures > 0,
            });
        };
        let retry_after = Decision::retry_after_seconds(
            Duration::try_from_secs_f64(wait).unwrap_or(Duration::ZERO),
        );
        let user_id = match &username {
            Some(name) => users::find_by_username(conn, name.as_str())?.map(|user| user.id),
            None => None,
        };
        events::record(
            conn,
            &Event::new(EventType::LoginThrottled, user_id)
                .from_client(&client)
                .detail(json!({
                    "failures": found.failures,
                    "retry_after": retry_after,
                })),
        )?;
        Err(AppError::RateLimited { retry_after })
    })
    .await
}

/// Counts a failed password check for the name (atomically: parallel
/// failures each count) and returns the name's new state.
pub async fn record_failure(state: &AppState, key: NameKey) -> AppResult<NameState> {
    let threshold = i32::try_from(state.settings.login_failures_before_delay).unwrap_or(i32::MAX);
    run_db(&state.pool, move |conn| {
        store::record_failure(conn, &key.0, threshold)
    })
    .await
}

/// Forgets the name's failures after a correct password.
pub async fn reset(state: &AppState, key: NameKey) -> AppResult<()> {
    run_db(&state.pool, move |conn| store::reset(conn, &key.0)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_ignores_case_and_has_a_fixed_size_for_any_name() {
        assert_eq!(NameKey::of("Alice"), NameKey::of("alice"));
        assert_ne!(NameKey::of("alice"), NameKey::of("alice2"));
        let huge = "x\0".repeat(5 * 1024);
        assert_eq!(NameKey::of(&huge).0.len(), 32);
    }
}
