//! bcrypt hashing and verification, including the dummy hash that keeps
//! unknown-user logins as slow as real ones.

use std::sync::{Arc, OnceLock};

use crate::blocking::CpuPool;
use crate::domain::Password;
use crate::error::{AppError, AppResult};

/// bcrypt on its own low-priority threads, at the configured cost, with the
/// dummy hash for unknown users. The one way handlers touch passwords.
pub struct PasswordHasher {
    pool: CpuPool,
    cost: u32,
    dummy: DummyHash,
}

impl PasswordHasher {
    /// Uses `pool` for every hash and verify at `cost`.
    pub fn new(pool: CpuPool, cost: u32) -> Self {
        Self {
            pool,
            cost,
            dummy: DummyHash::warm_up(cost),
        }
    }

    /// Hashes a validated password.
    pub async fn hash(&self, password: Password) -> AppResult<String> {
        let cost = self.cost;
        self.pool
            .run(move || hash(&password, cost))
            .await?
            .map_err(AppError::internal)
    }

    /// Checks a candidate against a stored hash, or against the dummy hash
    /// when there is no account, so both take one bcrypt run.
    pub async fn verify(&self, candidate: String, stored: Option<String>) -> AppResult<bool> {
        let dummy = self.dummy.clone();
        self.pool
            .run(move || match stored {
                Some(hash) => verify(&candidate, &hash),
                None => {
                    verify(&candidate, dummy.get());
                    false
                }
            })
            .await
    }

    /// Whether a stored hash was made at another cost than the configured
    /// one (so a successful login should rehash it: otherwise timing would
    /// tell old accounts from unknown users after a cost change).
    pub fn needs_rehash(&self, stored: &str) -> bool {
        stored
            .split('$')
            .nth(2)
            .and_then(|cost| cost.parse::<u32>().ok())
            .is_some_and(|cost| cost != self.cost)
    }
}

/// Hashes a validated password at the given cost (CPU-heavy).
pub fn hash(password: &Password, cost: u32) -> Result<String, bcrypt::BcryptError> {
    bcrypt::hash(password.expose(), cost)
}

/// Checks a login attempt against a stored hash.
///
/// Candidates bcrypt could not have produced at registration (over 72 bytes
/// or with NUL) are still run through bcrypt, against the hash given, so the
/// timing stays the same, and then refused.
pub fn verify(candidate: &str, stored_hash: &str) -> bool {
    let acceptable = candidate.len() <= Password::MAX_BYTES && !candidate.contains('\0');
    let candidate = if acceptable { candidate } else { "" };
    let matches = bcrypt::verify(candidate, stored_hash).unwrap_or(false);
    matches && acceptable
}

/// A hash of a random secret at the configured cost, verified against when
/// the username is unknown so the answer takes as long as for a real user.
///
/// It is computed on a background thread at startup, so a high
/// `BCRYPT_COST` does not delay binding; a login that needs it first waits.
#[derive(Clone)]
pub struct DummyHash {
    cost: u32,
    hash: Arc<OnceLock<String>>,
}

impl DummyHash {
    /// Starts computing the dummy hash in the background.
    pub fn warm_up(cost: u32) -> Self {
        let dummy = Self {
            cost,
            hash: Arc::new(OnceLock::new()),
        };
        let background = dummy.clone();
        std::thread::spawn(move || {
            background.get();
        });
        dummy
    }

    /// The hash (blocking until it exists; call from the CPU pool).
    pub fn get(&self) -> &str {
        self.hash.get_or_init(|| {
            let secret: [u8; 16] = rand::random();
            // Only an out-of-range cost can fail, and config forbids that;
            // an empty hash simply never verifies.
            bcrypt::hash(secret, self.cost).unwrap_or_default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_accepts_the_right_password_only() {
        let password = Password::parse("correct horse").unwrap();
        let stored = hash(&password, 4).unwrap();
        assert!(verify("correct horse", &stored));
        assert!(!verify("wrong horse", &stored));
        assert!(!verify("correct horse\0", &stored));
    }

    #[test]
    fn a_hash_at_another_cost_needs_rehashing() {
        let passwords = PasswordHasher::new(CpuPool::new("test", 1, 1).unwrap(), 5);
        let at_4 = hash(&Password::parse("password1").unwrap(), 4).unwrap();
        let at_5 = hash(&Password::parse("password1").unwrap(), 5).unwrap();
        assert!(passwords.needs_rehash(&at_4));
        assert!(!passwords.needs_rehash(&at_5));
        assert!(!passwords.needs_rehash("garbage"));
    }

    #[test]
    fn the_dummy_hash_never_verifies_a_guess() {
        let dummy = DummyHash::warm_up(4);
        assert!(dummy.get().starts_with("$2b$04$"));
        assert!(!verify("password", dummy.get()));
        assert!(!verify("", dummy.get()));
    }

    #[test]
    fn a_73_byte_candidate_never_matches_its_72_byte_prefix() {
        let password = Password::parse(&"a".repeat(72)).unwrap();
        let stored = hash(&password, 4).unwrap();
        assert!(verify(&"a".repeat(72), &stored));
        assert!(!verify(&"a".repeat(73), &stored));
    }
}
