//! The one shape of every random bearer secret tessera hands out (refresh
//! tokens, `mfa_token`s, mailed one-time tokens): 256 random bits as
//! base64url, shown to the client once, stored only as a lookup hash, and
//! never printed by `Debug`. What differs between them, the name and how the
//! lookup hash is made, is a [`SecretKind`].

use std::marker::PhantomData;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Bytes of secret in every bearer secret (256 bits).
const SECRET_BYTES: usize = 32;

/// What sets one kind of bearer secret apart from the others.
pub trait SecretKind {
    /// The type's name, the only thing `Debug` shows.
    const NAME: &'static str;

    /// The hash stored in the database and looked up by.
    fn lookup_hash(secret: &str) -> [u8; 32];
}

/// A bearer secret in the clear: generated for a client, or presented by
/// one (any string: it is only hashed).
pub struct BearerSecret<K> {
    secret: String,
    kind: PhantomData<K>,
}

impl<K: SecretKind> BearerSecret<K> {
    /// A new random secret (rand's thread-local CSPRNG, seeded by the OS).
    pub fn generate() -> Self {
        let bytes: [u8; SECRET_BYTES] = rand::random();
        Self::from_string(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Wraps a secret a client presented.
    pub fn presented(raw: &str) -> Self {
        Self::from_string(raw.to_owned())
    }

    /// Wraps a secret already held as a `String`.
    pub(crate) fn from_string(secret: String) -> Self {
        Self {
            secret,
            kind: PhantomData,
        }
    }

    /// The text for the response body or the mail that carries it.
    pub fn expose(&self) -> &str {
        &self.secret
    }

    /// The hash stored in the database.
    pub fn lookup_hash(&self) -> [u8; 32] {
        K::lookup_hash(&self.secret)
    }
}

impl<K: SecretKind> std::fmt::Debug for BearerSecret<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}(***)", K::NAME)
    }
}

impl<K> Clone for BearerSecret<K> {
    fn clone(&self) -> Self {
        Self {
            secret: self.secret.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> PartialEq for BearerSecret<K> {
    fn eq(&self, other: &Self) -> bool {
        self.secret == other.secret
    }
}

impl<K> Eq for BearerSecret<K> {}

/// SHA-256 over a domain label, a zero byte and the data, so hashes made
/// for different purposes never coincide.
pub fn labelled_sha256(label: &[u8], data: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(label);
    hasher.update([0u8]);
    hasher.update(data);
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Plain;

    impl SecretKind for Plain {
        const NAME: &'static str = "Plain";

        fn lookup_hash(secret: &str) -> [u8; 32] {
            Sha256::digest(secret.as_bytes()).into()
        }
    }

    #[test]
    fn secrets_carry_256_bits_of_base64url_and_hide_in_debug() {
        let secret = BearerSecret::<Plain>::generate();
        assert_eq!(secret.expose().len(), 43);
        assert!(secret
            .expose()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(secret, BearerSecret::generate());
        assert_eq!(format!("{secret:?}"), "Plain(***)");
        assert_eq!(
            BearerSecret::<Plain>::presented(secret.expose()).lookup_hash(),
            secret.lookup_hash()
        );
    }

    #[test]
    fn labels_separate_the_hashes() {
        assert_ne!(labelled_sha256(b"a", b"x"), labelled_sha256(b"b", b"x"));
        assert_ne!(labelled_sha256(b"a", b"bc"), labelled_sha256(b"ab", b"c"));
    }
}
