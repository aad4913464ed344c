//! Mailed one-time tokens (email verification, password reset): 256 random
//! bits, base64url, stored only as a SHA-256 lookup hash and found by that
//! hash alone, so the database never holds a usable token.

use sha2::{Digest, Sha256};

use crate::auth::bearer_secret::{BearerSecret, SecretKind};

/// What a token is good for; stored in `one_time_tokens.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Proves the owner reads the mail of an address.
    VerifyEmail,
    /// Sets a new password without the old one.
    ResetPassword,
}

impl TokenKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
        }
    }

    /// How long a mailed token of this kind stays usable.
    pub fn lifetime(self) -> chrono::Duration {
        match self {
            Self::VerifyEmail => chrono::Duration::hours(24),
            Self::ResetPassword => chrono::Duration::minutes(30),
        }
    }
}

/// A mailed token in the clear: generated for a mail, or presented by a
/// client. Its lookup hash is the plain SHA-256 of the token.
pub type OneTimeToken = BearerSecret<Mailed>;

/// The [`SecretKind`] of mailed one-time tokens.
#[derive(Debug)]
pub struct Mailed;

impl SecretKind for Mailed {
    const NAME: &'static str = "OneTimeToken";

    fn lookup_hash(secret: &str) -> [u8; 32] {
        Sha256::digest(secret.as_bytes()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_256_bits_of_base64url_and_are_stored_hashed() {
        let token = OneTimeToken::generate();
        assert_eq!(token.expose().len(), 43);
        assert!(token
            .expose()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(token, OneTimeToken::generate());
        assert_eq!(
            OneTimeToken::presented(token.expose()).lookup_hash(),
            token.lookup_hash()
        );
        assert_eq!(format!("{token:?}"), "OneTimeToken(***)");
    }
}
