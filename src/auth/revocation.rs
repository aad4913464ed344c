//! The sessions revoked recently, held in memory by every instance so the
//! guard refuses their access tokens without a database query (README
//! "Immediate revocation").
//!
//! An entry lives for the revocation window: the access-token lifetime plus
//! the validation leeway plus [`SLACK`]. After that every access token the
//! session ever got has expired on its own, so the entry can go. The set is
//! filled at startup from `session_revocations`, by this instance's own
//! revocations as they commit, and by the revocation listener
//! (`jobs::revocations`) from the other instances' `NOTIFY`s.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::config::Settings;

/// Added to the access-token lifetime and leeway: covers a token signed a
/// moment after its session was revoked (a refresh that committed just
/// before the revocation, then queued for the signing threads) and clock
/// differences between instances and the database.
pub const SLACK: Duration = Duration::from_secs(60);

/// Independent locks, so concurrent guards rarely share a cache line and a
/// writer blocks only one sixteenth of the readers.
const SHARDS: usize = 16;

/// Memory per entry, for the README's bound: a 16-byte id and a 16-byte
/// `Instant`, one control byte, and up to half the table empty after a
/// growth (hashbrown keeps 7/8 at most, and doubles).
pub const BYTES_PER_ENTRY: usize = 80;

/// Session ids revoked within the window, each with the instant it can be
/// forgotten. Lookups take one read lock of one shard.
pub struct RevokedSessions {
    shards: [RwLock<HashMap<Uuid, Instant>>; SHARDS],
    window: Duration,
}

impl RevokedSessions {
    /// An empty set whose entries last `window`.
    pub fn new(window: Duration) -> Self {
        Self {
            shards: std::array::from_fn(|_| RwLock::new(HashMap::new())),
            window,
        }
    }

    /// An empty set with the window the settings imply: access-token
    /// lifetime + leeway + [`SLACK`].
    pub fn for_settings(settings: &Settings) -> Self {
        Self::new(window(settings))
    }

    /// How long an entry lasts.
    pub fn window(&self) -> Duration {
        self.window
    }

    fn shard(&self, id: &Uuid) -> &RwLock<HashMap<Uuid, Instant>> {
        // Session ids are random (v4): any byte spreads them evenly.
        &self.shards[usize::from(id.as_bytes()[15]) % SHARDS]
    }

    /// Whether the session was revoked within the window: the guard's one
    /// lookup per request.
    pub fn contains(&self, id: &Uuid) -> bool {
        let shard = self
            .shard(id)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        shard
            .get(id)
            .is_some_and(|forget_at| *forget_at > Instant::now())
    }

    /// Records sessions revoked just now.
    pub fn insert_all(&self, ids: &[Uuid]) {
        for id in ids {
            self.insert_aged(*id, Duration::ZERO);
        }
    }

    /// Records a session revoked `age` ago; one revoked longer ago than the
    /// window is ignored. A later expiry never shortens an earlier one.
    pub fn insert_aged(&self, id: Uuid, age: Duration) {
        let Some(remaining) = self.window.checked_sub(age).filter(|d| !d.is_zero()) else {
            return;
        };
        let forget_at = Instant::now() + remaining;
        let mut shard = self
            .shard(&id)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = shard.entry(id).or_insert(forget_at);
        *entry = (*entry).max(forget_at);
    }

    /// Drops the entries whose window has passed; returns how many are left.
    pub fn purge_expired(&self) -> usize {
        let now = Instant::now();
        self.shards
            .iter()
            .map(|shard| {
                let mut shard = shard.write().unwrap_or_else(PoisonError::into_inner);
                shard.retain(|_, forget_at| *forget_at > now);
                shard.len()
            })
            .sum()
    }

    /// Entries held (including any past their window not yet purged).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.read().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The revocation window the settings imply: access-token lifetime +
/// leeway + [`SLACK`].
pub fn window(settings: &Settings) -> Duration {
    let ttl = u64::try_from(settings.access_token_ttl_seconds).unwrap_or(0);
    Duration::from_secs(ttl + settings.jwt_leeway_seconds) + SLACK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revoked_session_is_held_and_another_is_not() {
        let set = RevokedSessions::new(Duration::from_secs(60));
        let revoked = Uuid::new_v4();
        set.insert_all(&[revoked]);
        assert!(set.contains(&revoked));
        assert!(!set.contains(&Uuid::new_v4()));
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn an_entry_older_than_the_window_is_ignored_and_one_past_it_is_forgotten() {
        let set = RevokedSessions::new(Duration::from_secs(2));
        let old = Uuid::new_v4();
        set.insert_aged(old, Duration::from_secs(2));
        assert!(!set.contains(&old));
        assert!(set.is_empty());

        let recent = Uuid::new_v4();
        set.insert_aged(recent, Duration::from_millis(1500));
        assert!(set.contains(&recent));
        std::thread::sleep(Duration::from_millis(700));
        assert!(!set.contains(&recent), "past its window");
        assert_eq!(set.purge_expired(), 0);
    }

    #[test]
    fn a_second_insert_never_shortens_an_entry() {
        let set = RevokedSessions::new(Duration::from_secs(5));
        let id = Uuid::new_v4();
        set.insert_all(&[id]);
        set.insert_aged(id, Duration::from_millis(4990));
        std::thread::sleep(Duration::from_millis(100));
        assert!(set.contains(&id));
    }

    #[test]
    fn the_window_is_the_token_lifetime_plus_leeway_plus_slack() {
        let settings = Settings::from_lookup(|name| match name {
            "ACCESS_TOKEN_TTL_SECONDS" => Some("900".into()),
            "JWT_LEEWAY_SECONDS" => Some("30".into()),
            _ => None,
        })
        .expect("settings");
        assert_eq!(window(&settings), Duration::from_secs(990));
    }
}
