//! Refresh tokens and the session lifecycle built on them: starting a
//! session at login, rotating on refresh (with the grace retry and reuse
//! detection), and logout.
//!
//! Design (SPEC §7 option a): a refresh token is 256 random bits, base64url.
//! Only its SHA-256 is stored. When a token is spent, its successor is
//! sealed with AES-256-GCM under a key derived from the spent token, so a
//! retry within the grace window can get the very same successor back while
//! the database alone never reveals a usable token.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::db::models::{NewRefreshToken, NewSession, Session, User};
use crate::db::{refresh_tokens, sessions};
use crate::error::AppError;

/// Bytes of secret in a refresh token (256 bits).
const TOKEN_BYTES: usize = 32;

/// A refresh token in the clear, as handed to the client exactly once.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken(String);

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshToken(***)")
    }
}

impl RefreshToken {
    /// A new random token (rand's thread-local CSPRNG, seeded by the OS).
    pub fn generate() -> Self {
        let bytes: [u8; TOKEN_BYTES] = rand::random();
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Wraps a token presented by a client (any string; it is only hashed).
    pub fn presented(raw: &str) -> Self {
        Self(raw.to_owned())
    }

    /// The token text for the response body.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The lookup hash stored in the database.
    pub fn lookup_hash(&self) -> [u8; 32] {
        derive(b"tessera/refresh-token/lookup/v1", &self.0)
    }

    /// Seals `successor` so only the holder of `self` can open it.
    fn seal(&self, successor: &RefreshToken) -> Option<Vec<u8>> {
        let key = self.sealing_key()?;
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let mut in_out = successor.0.as_bytes().to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce_bytes),
            Aad::from(self.lookup_hash()),
            &mut in_out,
        )
        .ok()?;
        let mut sealed = nonce_bytes.to_vec();
        sealed.extend_from_slice(&in_out);
        Some(sealed)
    }

    /// Opens a successor sealed by [`RefreshToken::seal`].
    fn open(&self, sealed: &[u8]) -> Option<RefreshToken> {
        let key = self.sealing_key()?;
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce_bytes, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce_bytes).ok()?;
        let mut in_out = ciphertext.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(self.lookup_hash()), &mut in_out)
            .ok()?;
        String::from_utf8(plain.to_vec()).ok().map(RefreshToken)
    }

    fn sealing_key(&self) -> Option<LessSafeKey> {
        let key = derive(b"tessera/refresh-token/seal/v1", &self.0);
        UnboundKey::new(&AES_256_GCM, &key)
            .ok()
            .map(LessSafeKey::new)
    }
}

/// SHA-256 over a domain label and the token, so lookup hash and sealing key
/// never coincide.
fn derive(label: &[u8], token: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(label);
    hasher.update([0u8]);
    hasher.update(token.as_bytes());
    hasher.finalize().into()
}

/// Lifetimes that govern sessions.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// Inactivity lifetime of a session.
    pub ttl: Duration,
    /// How long a just-spent token may be retried; zero is strict.
    pub reuse_grace: Duration,
}

/// A session that can get a new access token, with the refresh token to
/// hand back.
#[derive(Debug)]
pub struct Grant {
    /// The account.
    pub user: User,
    /// The session.
    pub session: Session,
    /// The live refresh token.
    pub refresh_token: RefreshToken,
}

/// What a refresh attempt came to.
#[derive(Debug)]
pub enum RefreshOutcome {
    /// The token was live and is now spent; here is its successor.
    Rotated(Grant),
    /// The token was spent within the grace window; here is the same
    /// successor its first use returned.
    GraceRetry(Grant),
    /// A spent token outside the grace: the session has been revoked.
    ReuseDetected {
        /// The revoked session.
        session_id: Uuid,
        /// Its owner.
        user_id: Uuid,
    },
    /// Unknown, expired or revoked: nothing changed.
    Invalid,
}

/// Where a login comes from.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// User-Agent header, truncated.
    pub user_agent: Option<String>,
    /// Client IP.
    pub ip: Option<String>,
}

/// Starts a new session for a user at login and issues its first token.
pub fn start_session(
    conn: &mut PgConnection,
    user: User,
    client: &ClientInfo,
    policy: SessionPolicy,
) -> QueryResult<Grant> {
    conn.transaction(|conn| {
        let now = Utc::now();
        let session = sessions::insert(
            conn,
            &NewSession {
                id: Uuid::new_v4(),
                user_id: user.id,
                user_agent: client.user_agent.as_deref(),
                ip: client.ip.as_deref(),
                created_at: now,
                last_used_at: now,
                expires_at: now + policy.ttl,
            },
        )?;
        let refresh_token = RefreshToken::generate();
        refresh_tokens::insert(
            conn,
            &NewRefreshToken {
                token_hash: &refresh_token.lookup_hash(),
                session_id: session.id,
                created_at: now,
            },
        )?;
        Ok(Grant {
            user,
            session,
            refresh_token,
        })
    })
}

/// Why a rotation could not complete (never a client's fault).
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The database failed.
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    /// AES-GCM refused to seal the successor.
    #[error("sealing the successor refresh token failed")]
    Sealing,
}

impl From<RefreshError> for AppError {
    fn from(err: RefreshError) -> Self {
        match err {
            RefreshError::Database(err) => err.into(),
            RefreshError::Sealing => AppError::internal(err),
        }
    }
}

/// Rotates a refresh token in one transaction that locks the session row,
/// so concurrent refreshes cannot fork a session.
///
/// Only the newest spent token keeps its sealed successor (and only when a
/// grace window is configured): older ones are wiped at each rotation, so an
/// old token plus a copy of the database cannot walk the chain forward.
pub fn rotate(
    conn: &mut PgConnection,
    presented: &RefreshToken,
    policy: SessionPolicy,
) -> Result<RefreshOutcome, RefreshError> {
    conn.transaction(|conn| {
        let hash = presented.lookup_hash();
        let Some(session) = sessions::lock_by_token(conn, &hash)? else {
            return Ok(RefreshOutcome::Invalid);
        };
        // Re-read under the lock: a concurrent refresh may have spent it.
        let Some((token, user)) = refresh_tokens::find_with_user(conn, &hash)? else {
            return Ok(RefreshOutcome::Invalid);
        };
        let now = Utc::now();
        if !session.is_live(now) {
            return Ok(RefreshOutcome::Invalid);
        }
        match token.spent_at {
            None => {
                let successor = RefreshToken::generate();
                let sealed = if policy.reuse_grace > Duration::zero() {
                    Some(presented.seal(&successor).ok_or(RefreshError::Sealing)?)
                } else {
                    None
                };
                refresh_tokens::insert(
                    conn,
                    &NewRefreshToken {
                        token_hash: &successor.lookup_hash(),
                        session_id: session.id,
                        created_at: now,
                    },
                )?;
                refresh_tokens::spend(conn, session.id, &hash, now, sealed.as_deref())?;
                let session = sessions::touch(conn, session.id, now, now + policy.ttl)?;
                Ok(RefreshOutcome::Rotated(Grant {
                    user,
                    session,
                    refresh_token: successor,
                }))
            }
            Some(spent_at) => {
                if let Some(successor) =
                    grace_successor(conn, presented, &token, spent_at, now, policy)?
                {
                    let session = sessions::touch(conn, session.id, now, now + policy.ttl)?;
                    return Ok(RefreshOutcome::GraceRetry(Grant {
                        user,
                        session,
                        refresh_token: successor,
                    }));
                }
                sessions::revoke(conn, session.id, now)?;
                Ok(RefreshOutcome::ReuseDetected {
                    session_id: session.id,
                    user_id: session.user_id,
                })
            }
        }
    })
}

/// The successor a grace retry may return: only for the session's most
/// recently spent token (its successor is still live), within the window.
fn grace_successor(
    conn: &mut PgConnection,
    presented: &RefreshToken,
    token: &crate::db::models::RefreshTokenRow,
    spent_at: DateTime<Utc>,
    now: DateTime<Utc>,
    policy: SessionPolicy,
) -> QueryResult<Option<RefreshToken>> {
    if policy.reuse_grace <= Duration::zero() || now - spent_at > policy.reuse_grace {
        return Ok(None);
    }
    let Some(successor) = token
        .sealed_successor
        .as_deref()
        .and_then(|sealed| presented.open(sealed))
    else {
        return Ok(None);
    };
    let successor_live = refresh_tokens::find(conn, &successor.lookup_hash())?
        .is_some_and(|row| row.spent_at.is_none());
    Ok(successor_live.then_some(successor))
}

/// Revokes the session a token belongs to, live or spent; unknown tokens
/// change nothing.
pub fn logout(conn: &mut PgConnection, presented: &RefreshToken) -> QueryResult<()> {
    if let Some(token) = refresh_tokens::find(conn, &presented.lookup_hash())? {
        sessions::revoke(conn, token.session_id, Utc::now())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_256_bits_of_base64url() {
        let token = RefreshToken::generate();
        assert_eq!(token.expose().len(), 43);
        assert!(token
            .expose()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(token, RefreshToken::generate());
    }

    #[test]
    fn only_the_spent_token_opens_its_successor() {
        let spent = RefreshToken::generate();
        let successor = RefreshToken::generate();
        let sealed = spent.seal(&successor).unwrap();
        assert_eq!(spent.open(&sealed), Some(successor.clone()));
        assert_eq!(RefreshToken::generate().open(&sealed), None);
        assert!(!sealed
            .windows(successor.expose().len())
            .any(|w| w == successor.expose().as_bytes()));
    }

    #[test]
    fn lookup_hash_differs_from_the_token() {
        let token = RefreshToken::generate();
        assert_ne!(&token.lookup_hash()[..], token.expose().as_bytes());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(128))]

            #[test]
            fn a_presented_token_is_kept_verbatim_and_hashed_by_its_text_alone(
                raw in any::<String>(),
                other in any::<String>(),
            ) {
                let presented = RefreshToken::presented(&raw);
                prop_assert_eq!(presented.expose(), raw.as_str());
                prop_assert_eq!(presented.lookup_hash(), RefreshToken::presented(&raw).lookup_hash());
                prop_assert_eq!(format!("{presented:?}"), "RefreshToken(***)");
                if other != raw {
                    prop_assert_ne!(presented.lookup_hash(), RefreshToken::presented(&other).lookup_hash());
                }
            }

            #[test]
            fn only_the_spent_token_opens_its_sealed_successor(
                spent in any::<String>(),
                guess in any::<String>(),
            ) {
                let spent = RefreshToken::presented(&spent);
                let successor = RefreshToken::generate();
                let sealed = spent.seal(&successor).unwrap();
                prop_assert_eq!(spent.open(&sealed), Some(successor));
                if guess != spent.expose() {
                    prop_assert_eq!(RefreshToken::presented(&guess).open(&sealed), None);
                }
            }

            #[test]
            fn a_changed_byte_of_a_sealed_successor_never_opens(
                index in any::<prop::sample::Index>(),
                mask in 1u8..,
            ) {
                let spent = RefreshToken::generate();
                let mut sealed = spent.seal(&RefreshToken::generate()).unwrap();
                let position = index.index(sealed.len());
                sealed[position] ^= mask;
                prop_assert_eq!(spent.open(&sealed), None);
            }

            #[test]
            fn arbitrary_bytes_never_open_as_a_successor(
                sealed in prop::collection::vec(any::<u8>(), 0..128),
            ) {
                prop_assert_eq!(RefreshToken::generate().open(&sealed), None);
            }
        }

        #[test]
        fn generated_tokens_are_43_base64url_characters_of_256_bits() {
            for _ in 0..256 {
                let token = RefreshToken::generate();
                let bytes = URL_SAFE_NO_PAD.decode(token.expose()).unwrap();
                assert_eq!((token.expose().len(), bytes.len()), (43, TOKEN_BYTES));
            }
        }
    }
}
