//! An email address tessera can store and mail to.

use std::fmt;
use std::str::FromStr;

/// An address with exactly one `@`, at most 254 bytes, that lettre can
/// put in a `To:` header (so a stored address is always deliverable
/// as far as syntax goes). Kept as entered; compared case-insensitively.
#[derive(Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Longest accepted address, in bytes (RFC 5321's path limit less `<>`).
    pub const MAX_BYTES: usize = 254;

    /// Parses a raw address, returning a client-facing reason on failure.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.len() > Self::MAX_BYTES {
            return Err(format!("must be at most {} bytes long", Self::MAX_BYTES));
        }
        if raw.matches('@').count() != 1 {
            return Err("must contain exactly one @".into());
        }
        if lettre::Address::from_str(raw).is_err() {
            return Err("is not a valid email address".into());
        }
        Ok(Self(raw.to_owned()))
    }

    /// The address as entered.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usual_addresses_are_accepted_as_entered() {
        for raw in [
            "alice@example.com",
            "Alice.Smith+tag@Example.COM",
            "bob@localhost",
        ] {
            assert_eq!(EmailAddress::parse(raw).unwrap().as_str(), raw);
        }
    }

    #[test]
    fn anything_without_exactly_one_at_or_too_long_is_refused() {
        // 64-byte local part (lettre's limit) and labels of at most 63.
        let address = |last_label: usize| {
            format!(
                "{}@{}.{}.{}",
                "a".repeat(64),
                "b".repeat(63),
                "c".repeat(63),
                "d".repeat(last_label)
            )
        };
        let long = address(62);
        assert_eq!(long.len(), 255);
        for raw in [
            "",
            "alice",
            "alice@@example.com",
            "a@b@example.com",
            long.as_str(),
            "@example.com",
            "alice@",
            "ali ce@example.com",
            "alice@exa\0mple.com",
        ] {
            assert!(EmailAddress::parse(raw).is_err(), "{raw:?}");
        }
        let longest = address(61);
        assert_eq!(longest.len(), 254);
        assert!(EmailAddress::parse(&longest).is_ok());
    }
}
