//! TOTP (RFC 6238 through totp-rs: SHA-1, 6 digits, 30 s steps, what every
//! authenticator app reads), the `otpauth://` URI, and the AES-256-GCM box
//! that keeps secrets sealed at rest (README "Second factor").

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};
use uuid::Uuid;

/// Digits of a code.
pub const DIGITS: usize = 6;

/// Seconds per step.
pub const STEP_SECONDS: u64 = 30;

/// Bytes of secret: 160 bits, the size RFC 4226 recommends.
pub const SECRET_BYTES: usize = 20;

/// A TOTP secret in the clear. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(***)")
    }
}

impl TotpSecret {
    /// A new random secret (rand's thread-local CSPRNG, seeded by the OS).
    pub fn generate() -> Self {
        let bytes: [u8; SECRET_BYTES] = rand::random();
        Self(bytes.to_vec())
    }

    /// Upper-case base32 without padding, as apps take it typed in.
    pub fn base32(&self) -> String {
        base32_encode(&self.0)
    }

    /// `otpauth://totp/<issuer>:<username>?secret=…&issuer=<issuer>&algorithm=SHA1&digits=6&period=30`
    /// (the Key Uri Format read by Google Authenticator, Authy, 1Password
    /// and Aegis; every parameter spelled out, defaults included).
    pub fn otpauth_uri(&self, issuer: &str, username: &str) -> String {
        let issuer = percent_encode(issuer);
        format!(
            "otpauth://totp/{issuer}:{}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
            percent_encode(username),
            self.base32(),
        )
    }

    /// The code of one step.
    pub fn code_at_step(&self, step: u64) -> String {
        self.totp().generate(step * STEP_SECONDS)
    }

    fn totp(&self) -> TOTP {
        // Unchecked: the secret is always ours, SECRET_BYTES long.
        TOTP::new_unchecked(Algorithm::SHA1, DIGITS, 1, STEP_SECONDS, self.0.clone())
    }
}

/// The step a Unix time falls in.
pub fn step_at(unix_seconds: u64) -> u64 {
    unix_seconds / STEP_SECONDS
}

/// Whether `code` is shaped like a TOTP code: exactly 6 ASCII digits.
pub fn is_code_shaped(code: &str) -> bool {
    code.len() == DIGITS && code.bytes().all(|b| b.is_ascii_digit())
}

/// The newest of the steps `now - 1`, `now`, `now + 1` whose code is
/// `code`, or `None`. All three are compared, in constant time, whatever
/// matches; replay (a step already used) is the caller's check.
pub fn matching_step(secret: &TotpSecret, code: &str, now_step: u64) -> Option<u64> {
    if !is_code_shaped(code) {
        return None;
    }
    let mut found = None;
    for step in now_step.saturating_sub(1)..=now_step + 1 {
        let expected = secret.code_at_step(step);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            found = Some(step);
        }
    }
    found
}

/// Seals TOTP secrets with AES-256-GCM under one 256-bit key, binding each
/// to its account (the user id is the associated data, so a sealed secret
/// copied onto another account does not open). Layout: version byte,
/// 96-bit random nonce, ciphertext and tag.
pub struct SecretBox {
    key: LessSafeKey,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(***)")
    }
}

/// First byte of every sealed secret: the layout and key generation.
const SEALED_V1: u8 = 1;

impl SecretBox {
    /// A box under `key`.
    pub fn new(key: &[u8; 32]) -> Option<Self> {
        let key = UnboundKey::new(&AES_256_GCM, key).ok()?;
        Some(Self {
            key: LessSafeKey::new(key),
        })
    }

    /// Seals `secret` for `user_id`.
    pub fn seal(&self, user_id: Uuid, secret: &TotpSecret) -> Option<Vec<u8>> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let mut in_out = secret.0.clone();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(user_id.as_bytes()),
                &mut in_out,
            )
            .ok()?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
        sealed.push(SEALED_V1);
        sealed.extend_from_slice(&nonce_bytes);
        sealed.extend_from_slice(&in_out);
        Some(sealed)
    }

    /// Opens a secret sealed for `user_id`; `None` when it was sealed
    /// under another key, for another account, or altered.
    pub fn open(&self, user_id: Uuid, sealed: &[u8]) -> Option<TotpSecret> {
        let (&version, rest) = sealed.split_first()?;
        if version != SEALED_V1 || rest.len() < NONCE_LEN {
            return None;
        }
        let (nonce_bytes, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce_bytes).ok()?;
        let mut in_out = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(user_id.as_bytes()), &mut in_out)
            .ok()?;
        Some(TotpSecret(plain.to_vec()))
    }
}

/// RFC 4648 base32, upper case, no padding.
fn base32_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 6238 appendix B's SHA-1 secret.
    fn rfc_secret() -> TotpSecret {
        TotpSecret(b"12345678901234567890".to_vec())
    }

    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        // Appendix B gives 8 digits; the 6-digit code is their last six.
        for (time, eight) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ] {
            assert_eq!(rfc_secret().code_at_step(step_at(time)), eight[2..]);
        }
    }

    #[test]
    fn the_secret_is_160_bits_of_upper_case_base32_and_the_uri_names_everything() {
        let secret = TotpSecret::generate();
        let base32 = secret.base32();
        assert_eq!(base32.len(), 32);
        assert!(base32
            .chars()
            .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c)));
        assert_eq!(rfc_secret().base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(
            rfc_secret().otpauth_uri("Acme Inc", "alice"),
            "otpauth://totp/Acme%20Inc:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme%20Inc&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn the_previous_current_and_next_step_match_and_no_other() {
        let secret = TotpSecret::generate();
        let now = 1_000_000;
        for step in [now - 1, now, now + 1] {
            assert_eq!(
                matching_step(&secret, &secret.code_at_step(step), now),
                Some(step)
            );
        }
        for step in [now - 2, now + 2] {
            let code = secret.code_at_step(step);
            let near = [now - 1, now, now + 1].map(|s| secret.code_at_step(s));
            if !near.contains(&code) {
                assert_eq!(matching_step(&secret, &code, now), None);
            }
        }
    }

    #[test]
    fn codes_of_the_wrong_shape_never_match() {
        let secret = rfc_secret();
        let code = secret.code_at_step(1000);
        for bad in [
            format!(" {code}"),
            format!("{code}0"),
            code[..5].to_owned(),
            "١٢٣٤٥٦".to_owned(),
            String::new(),
        ] {
            assert_eq!(matching_step(&secret, &bad, 1000), None, "{bad:?}");
        }
    }

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_account() {
        let secret = TotpSecret::generate();
        let user = Uuid::new_v4();
        let sealer = SecretBox::new(&[7u8; 32]).unwrap();
        let sealed = sealer.seal(user, &secret).unwrap();
        assert_eq!(sealer.open(user, &sealed), Some(secret.clone()));
        assert_eq!(sealer.open(Uuid::new_v4(), &sealed), None);
        assert_eq!(
            SecretBox::new(&[8u8; 32]).unwrap().open(user, &sealed),
            None
        );
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert_eq!(sealer.open(user, &altered), None);
        assert!(!sealed
            .windows(SECRET_BYTES)
            .any(|w| w == secret.0.as_slice()));
        assert!(!format!("{secret:?}{sealer:?}").contains(&secret.base32()));
    }

    proptest! {
        #[test]
        fn any_six_digit_string_but_the_three_valid_codes_is_refused(
            secret in prop::array::uniform20(any::<u8>()),
            now in 1u64..(u64::MAX / STEP_SECONDS - 2),
            random in 0u32..1_000_000,
            pick in 0usize..6,
        ) {
            let secret = TotpSecret(secret.to_vec());
            let valid = [now - 1, now, now + 1].map(|s| secret.code_at_step(s));
            // Half the cases try one of the valid codes, half any 6 digits.
            let candidate = valid.get(pick).cloned().unwrap_or(format!("{random:06}"));
            let accepted = matching_step(&secret, &candidate, now).is_some();
            prop_assert_eq!(accepted, valid.contains(&candidate));
        }
    }
}
