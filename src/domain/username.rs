//! A username as stored: 3–32 ASCII letters, digits, `_ . -`, lower-cased.

use std::fmt;

/// A validated, lower-cased username. "Alice" and "alice" are one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Shortest accepted username, in characters.
    pub const MIN_LEN: usize = 3;
    /// Longest accepted username, in characters.
    pub const MAX_LEN: usize = 32;

    /// Parses a raw username, returning a client-facing reason on failure.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.contains('\0') {
            return Err("must not contain NUL bytes".into());
        }
        let len = raw.chars().count();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&len) {
            return Err(format!(
                "must be {} to {} characters long",
                Self::MIN_LEN,
                Self::MAX_LEN
            ));
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err("may contain only ASCII letters, digits, '_', '.' and '-'".into());
        }
        Ok(Self(raw.to_ascii_lowercase()))
    }

    /// The stored (lower-cased) form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lower_cased() {
        assert_eq!(
            Username::parse("Alice_1.x-y").unwrap().as_str(),
            "alice_1.x-y"
        );
    }

    #[test]
    fn bad_usernames_are_rejected() {
        for raw in [
            "ab",
            &"a".repeat(33),
            "al ice",
            "alïce",
            "al\0ce",
            "al/ce",
            "",
        ] {
            assert!(Username::parse(raw).is_err(), "{raw:?} accepted");
        }
        assert!(Username::parse(&"a".repeat(32)).is_ok());
        assert!(Username::parse("abc").is_ok());
    }
}
