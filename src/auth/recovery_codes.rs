//! Recovery codes (10 per set, each usable once) and the `mfa_token` of a
//! half-finished login: random secrets stored only as SHA-256 hashes
//! (README "Second factor").
//!
//! Why a fast hash is enough here, unlike for passwords: bcrypt's cost
//! exists to slow down guessing of low-entropy secrets that people choose.
//! A recovery code is 80 random bits (an `mfa_token` 256): with a stolen
//! database, finding a code from its SHA-256 takes on the order of 2^79
//! hashes per code, out of reach at any hash rate, so slowing each hash
//! down would add nothing. Online guessing is bounded separately (5 wrong
//! codes per account per 5 minutes).

use subtle::ConstantTimeEq;

use crate::auth::bearer_secret::{labelled_sha256, BearerSecret, SecretKind};

/// Codes in a set.
pub const COUNT: usize = 10;

/// Random bytes per recovery code: 80 bits (at least 64 are required).
const CODE_BYTES: usize = 10;

/// Base32 characters per code (80 bits / 5).
const CODE_CHARS: usize = 16;

/// Lower-case RFC 4648 base32: no 0/1/8/9 to confuse with o/l/b/g.
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// One recovery code in the clear, as shown once: `xxxx-xxxx-xxxx-xxxx`.
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryCode(String);

impl std::fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryCode(***)")
    }
}

impl RecoveryCode {
    /// A new random code.
    pub fn generate() -> Self {
        let bytes: [u8; CODE_BYTES] = rand::random();
        let mut bits: u128 = 0;
        for byte in bytes {
            bits = (bits << 8) | u128::from(byte);
        }
        let mut text = String::with_capacity(CODE_CHARS + 3);
        for index in 0..CODE_CHARS {
            if index > 0 && index % 4 == 0 {
                text.push('-');
            }
            let shift = 5 * (CODE_CHARS - 1 - index);
            text.push(char::from(ALPHABET[((bits >> shift) & 31) as usize]));
        }
        Self(text)
    }

    /// The code as shown to the user.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hash stored for this code.
    pub fn hash(&self) -> [u8; 32] {
        normalize(&self.0).map_or([0; 32], |normal| hash_normalized(&normal))
    }
}

/// A fresh set of [`COUNT`] codes.
pub fn generate_set() -> Vec<RecoveryCode> {
    (0..COUNT).map(|_| RecoveryCode::generate()).collect()
}

/// The canonical form of a typed code: dashes and spaces dropped, lower
/// case; `None` unless that leaves 16 base32 characters.
pub fn normalize(typed: &str) -> Option<String> {
    if typed.len() > 64 {
        return None;
    }
    let normal: String = typed
        .chars()
        .filter(|c| *c != '-' && *c != ' ')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (normal.len() == CODE_CHARS && normal.bytes().all(|b| ALPHABET.contains(&b))).then_some(normal)
}

/// The stored hash of a normalized code.
pub fn hash_normalized(normal: &str) -> [u8; 32] {
    labelled_sha256(b"tessera/recovery-code/v1", normal.as_bytes())
}

/// The index of the stored hash equal to `candidate`, comparing against
/// every one in constant time (no early exit, no timing hint of which
/// stored code came close).
pub fn find_in(candidate: &[u8; 32], stored: &[Vec<u8>]) -> Option<usize> {
    let mut found = None;
    for (index, hash) in stored.iter().enumerate() {
        if bool::from(hash.as_slice().ct_eq(candidate.as_slice())) {
            found = Some(index);
        }
    }
    found
}

/// The `mfa_token` of a login waiting for its second step: 256 random bits,
/// base64url. `Debug` never prints it.
pub type MfaToken = BearerSecret<MfaChallenge>;

/// The [`SecretKind`] of `mfa_token`s.
#[derive(Debug)]
pub struct MfaChallenge;

impl SecretKind for MfaChallenge {
    const NAME: &'static str = "MfaToken";

    fn lookup_hash(secret: &str) -> [u8; 32] {
        labelled_sha256(b"tessera/mfa-token/v1", secret.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_is_ten_distinct_codes_of_80_bits() {
        let set = generate_set();
        assert_eq!(set.len(), 10);
        let mut hashes: Vec<[u8; 32]> = set.iter().map(RecoveryCode::hash).collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), 10);
        for code in &set {
            assert_eq!(code.expose().len(), 19);
            assert_eq!(code.expose().matches('-').count(), 3);
            assert!(normalize(code.expose()).is_some());
        }
    }

    #[test]
    fn typed_codes_are_normalized_and_wrong_shapes_refused() {
        let code = RecoveryCode::generate();
        let upper = code.expose().to_ascii_uppercase();
        let bare = code.expose().replace('-', "");
        for typed in [code.expose(), &upper, &bare] {
            assert_eq!(
                normalize(typed).map(|n| hash_normalized(&n)),
                Some(code.hash())
            );
        }
        for bad in ["", "123456", "abcd-efgh-ijkl-mno1", "abcd-efgh-ijkl-mnop-q"] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_an_equal_hash_is_found() {
        let codes = generate_set();
        let stored: Vec<Vec<u8>> = codes.iter().map(|c| c.hash().to_vec()).collect();
        assert_eq!(find_in(&codes[3].hash(), &stored), Some(3));
        assert_eq!(find_in(&RecoveryCode::generate().hash(), &stored), None);
    }

    #[test]
    fn mfa_tokens_carry_256_bits_and_hide_in_debug() {
        let token = MfaToken::generate();
        assert_eq!(token.expose().len(), 43);
        assert_ne!(token, MfaToken::generate());
        assert!(!format!("{token:?}").contains(token.expose()));
        assert_eq!(
            MfaToken::presented(token.expose()).lookup_hash(),
            token.lookup_hash()
        );
    }
}
