//! Mailed one-time tokens (email verification, password reset): 256 random
//! bits, base64url, stored only as a SHA-256 lookup hash and found by that
//! hash alone, so the database never holds a usable token.

use sha2::{Digest, Sha256};

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

/// A token in the clear: generated for a mail, or presented by a client.
/// `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct OneTimeToken(String);

impl std::fmt::Debug for OneTimeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OneTimeToken(***)")
    }
}

impl OneTimeToken {
    /// A new random token (rand's thread-local CSPRNG, seeded by the OS).
    pub fn generate() -> Self {
        Self(crate::auth::refresh_token::random_secret())
    }

    /// Wraps a token presented by a client (any string; it is only hashed).
    pub fn presented(raw: &str) -> Self {
        Self(raw.to_owned())
    }

    /// The token text, for the mail that carries it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The SHA-256 lookup hash stored in the database.
    pub fn lookup_hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
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
