//! The verified-token cache: a bounded LRU of tokens that already passed a
//! full RS256 validation, so a busy client's repeated calls skip the RSA
//! math.
//!
//! Rules (README "Token rules"): the key is the SHA-256 of the WHOLE token string, so a
//! token that differs by one byte (a tampered one) can never hit; an entry
//! holds the validated claims and is forgotten when the token's `exp`
//! arrives, never later; a hit therefore answers exactly what a full
//! validation would (the validation accepts until `exp` plus the leeway,
//! and after `exp` the cache has stepped aside). Capacity 0 disables it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::auth::tokens::AccessClaims;

/// The cache key: SHA-256 of the whole compact token.
pub type TokenDigest = [u8; 32];

/// Verified claims keyed by token digest; see the module documentation.
pub struct VerifiedTokenCache {
    entries: Option<moka::sync::Cache<TokenDigest, Arc<AccessClaims>>>,
}

/// Evicts each entry when its token's `exp` arrives.
struct UntilTokenExpiry;

impl moka::Expiry<TokenDigest, Arc<AccessClaims>> for UntilTokenExpiry {
    fn expire_after_create(
        &self,
        _key: &TokenDigest,
        claims: &Arc<AccessClaims>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(Duration::from_secs(seconds_until_exp(claims).unwrap_or(0)))
    }
}

/// Whole seconds from now until `exp`, or `None` once `exp` has arrived.
fn seconds_until_exp(claims: &AccessClaims) -> Option<u64> {
    let remaining = claims.exp - chrono::Utc::now().timestamp();
    u64::try_from(remaining).ok().filter(|&s| s > 0)
}

impl VerifiedTokenCache {
    /// A cache of at most `capacity` tokens; `0` gives a cache that holds
    /// nothing (every token is fully validated).
    pub fn new(capacity: u64) -> Self {
        let entries = (capacity > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(capacity)
                .expire_after(UntilTokenExpiry)
                .build()
        });
        Self { entries }
    }

    /// The cache key of a token (its bytes, as they came in the header).
    pub fn key(token: impl AsRef<[u8]>) -> TokenDigest {
        Sha256::digest(token.as_ref()).into()
    }

    /// Whether the cache is on (`TOKEN_CACHE_CAPACITY` > 0).
    pub fn is_enabled(&self) -> bool {
        self.entries.is_some()
    }

    /// The claims of a token verified earlier, while its `exp` is ahead.
    ///
    /// The wall clock is checked on every hit as well as by the eviction
    /// timer, so an entry is never served after `exp`, whatever the timer.
    pub fn get(&self, key: &TokenDigest) -> Option<Arc<AccessClaims>> {
        let claims = self.entries.as_ref()?.get(key)?;
        seconds_until_exp(&claims).map(|_| claims)
    }

    /// Remembers the claims of a token that just passed full validation;
    /// a token whose `exp` has already arrived is not stored.
    pub fn insert(&self, key: TokenDigest, claims: Arc<AccessClaims>) {
        if let Some(entries) = &self.entries {
            if seconds_until_exp(&claims).is_some() {
                entries.insert(key, claims);
            }
        }
    }

    /// Whether a token is held (for tests and diagnostics).
    pub fn contains(&self, key: &TokenDigest) -> bool {
        self.entries
            .as_ref()
            .is_some_and(|entries| entries.contains_key(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn claims(exp_from_now: i64) -> Arc<AccessClaims> {
        let now = chrono::Utc::now().timestamp();
        Arc::new(AccessClaims {
            iss: "tessera".into(),
            aud: "tessera-api".into(),
            sub: Uuid::new_v4(),
            username: "alice".into(),
            roles: vec!["admin".into()],
            sid: Uuid::new_v4(),
            iat: now,
            nbf: Some(now),
            exp: now + exp_from_now,
            jti: Uuid::new_v4(),
            amr: vec!["pwd".into()],
            auth_time: Some(now),
        })
    }

    #[test]
    fn a_stored_token_comes_back_with_its_claims() {
        let cache = VerifiedTokenCache::new(10);
        let key = VerifiedTokenCache::key("a.b.c");
        let stored = claims(600);
        cache.insert(key, Arc::clone(&stored));
        assert_eq!(cache.get(&key).as_deref(), Some(&*stored));
    }

    #[test]
    fn one_changed_byte_is_another_key() {
        let cache = VerifiedTokenCache::new(10);
        cache.insert(VerifiedTokenCache::key("a.b.c"), claims(600));
        assert!(cache.get(&VerifiedTokenCache::key("a.b.d")).is_none());
        assert!(cache.get(&VerifiedTokenCache::key("a.b.c ")).is_none());
    }

    #[test]
    fn a_token_whose_exp_has_arrived_is_not_stored() {
        let cache = VerifiedTokenCache::new(10);
        for exp_from_now in [0, -1, -3600] {
            let key = VerifiedTokenCache::key(format!("expired{exp_from_now}"));
            cache.insert(key, claims(exp_from_now));
            assert!(!cache.contains(&key));
            assert!(cache.get(&key).is_none());
        }
    }

    #[test]
    fn capacity_zero_holds_nothing() {
        let cache = VerifiedTokenCache::new(0);
        let key = VerifiedTokenCache::key("a.b.c");
        cache.insert(key, claims(600));
        assert!(!cache.is_enabled());
        assert!(!cache.contains(&key));
        assert!(cache.get(&key).is_none());
    }

    /// The cache as `TokenService` uses it, against full validation.
    mod through_the_token_service {
        use super::*;
        use crate::auth::keys::KeySet;
        use crate::auth::tokens::{Subject, TokenService};
        use crate::config::Settings;

        fn service(capacity: u64, ttl: u32, leeway: u32) -> TokenService {
            let settings = Settings::from_lookup(|name| match name {
                "TOKEN_CACHE_CAPACITY" => Some(capacity.to_string()),
                "ACCESS_TOKEN_TTL_SECONDS" => Some(ttl.to_string()),
                "JWT_LEEWAY_SECONDS" => Some(leeway.to_string()),
                _ => None,
            })
            .expect("settings");
            let pem = include_bytes!("../../tests/fixtures/rsa2048-pkcs1.pem");
            let keys = KeySet::from_private_pem(pem).expect("fixture key");
            TokenService::new(Arc::new(keys), &settings)
        }

        fn token(service: &TokenService) -> String {
            let roles = vec!["admin".to_owned()];
            let amr = vec!["pwd".to_owned()];
            let subject = Subject {
                user_id: Uuid::new_v4(),
                username: "alice",
                roles: &roles,
                session_id: Uuid::new_v4(),
                amr: &amr,
                auth_time: 1_700_000_000,
            };
            service.issue(&subject).expect("sign").token
        }

        #[test]
        fn a_hit_returns_the_claims_full_validation_returns() {
            let service = service(100, 900, 30);
            let token = token(&service);
            let first = service.verify(&token).expect("valid");
            assert!(service.is_cached(&token));
            let hit = service.verify(&token).expect("valid");
            assert!(Arc::ptr_eq(&first, &hit), "second call must be a hit");
            assert_eq!(*hit, service.verify_uncached(&token).expect("valid"));
        }

        #[test]
        fn an_expired_token_is_refused_even_when_cached() {
            let service = service(100, 1, 0);
            let token = token(&service);
            let claims = service.verify(&token).expect("valid while fresh");
            assert!(service.is_cached(&token));
            // jsonwebtoken accepts through the second `exp`; wait past it.
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while chrono::Utc::now().timestamp() <= claims.exp {
                assert!(std::time::Instant::now() < deadline, "clock stuck");
                std::thread::sleep(Duration::from_millis(50));
            }
            assert_eq!(service.verify(&token).err(), Some("token expired"));
            assert!(!service.is_cached(&token));
        }

        #[test]
        fn a_tampered_token_is_refused_while_the_original_is_cached() {
            let service = service(100, 900, 30);
            let token = token(&service);
            service.verify(&token).expect("valid");
            let dots: Vec<usize> = token.match_indices('.').map(|(i, _)| i).collect();
            // A character inside the header, the payload and the signature.
            for at in [
                dots[0] / 2,
                (dots[0] + dots[1]) / 2,
                (dots[1] + token.len()) / 2,
            ] {
                let mut bytes = token.clone().into_bytes();
                bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
                let tampered = String::from_utf8(bytes).expect("ascii");
                assert!(service.verify(&tampered).is_err(), "byte {at} changed");
                assert!(!service.is_cached(&tampered));
            }
            assert!(service.verify(&token).is_ok());
        }

        #[test]
        fn capacity_zero_disables_the_cache() {
            let service = service(0, 900, 30);
            let token = token(&service);
            let first = service.verify(&token).expect("valid");
            let second = service.verify(&token).expect("valid");
            assert!(!service.is_cached(&token));
            assert!(!Arc::ptr_eq(&first, &second), "each call validates anew");
            assert_eq!(first, second);
        }
    }
}
