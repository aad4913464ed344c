//! Refresh tokens: 256 random bits, base64url, stored only as a SHA-256
//! lookup hash. When a token is spent, its successor is sealed with
//! AES-256-GCM under a key derived from the spent token, so a retry within
//! the grace window can get the very same successor back while the database
//! alone never reveals a usable token (README "Refresh tokens").

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

use crate::auth::bearer_secret::{labelled_sha256, BearerSecret, SecretKind};

/// A refresh token in the clear, as handed to the client exactly once.
pub type RefreshToken = BearerSecret<Refresh>;

/// The [`SecretKind`] of refresh tokens.
#[derive(Debug)]
pub struct Refresh;

impl SecretKind for Refresh {
    const NAME: &'static str = "RefreshToken";

    fn lookup_hash(secret: &str) -> [u8; 32] {
        labelled_sha256(b"tessera/refresh-token/lookup/v1", secret.as_bytes())
    }
}

impl RefreshToken {
    /// Seals `successor` so only the holder of `self` can open it.
    pub fn seal(&self, successor: &RefreshToken) -> Option<Vec<u8>> {
        let key = self.sealing_key()?;
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let mut in_out = successor.expose().as_bytes().to_vec();
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
    pub fn open(&self, sealed: &[u8]) -> Option<RefreshToken> {
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
        String::from_utf8(plain.to_vec())
            .ok()
            .map(RefreshToken::from_string)
    }

    fn sealing_key(&self) -> Option<LessSafeKey> {
        let key = labelled_sha256(b"tessera/refresh-token/seal/v1", self.expose().as_bytes());
        UnboundKey::new(&AES_256_GCM, &key)
            .ok()
            .map(LessSafeKey::new)
    }
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
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
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
                assert_eq!((token.expose().len(), bytes.len()), (43, 32));
            }
        }
    }
}
