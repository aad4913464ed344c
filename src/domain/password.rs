//! A password acceptable to bcrypt without truncation.

use std::fmt;

/// A password of 8–72 bytes of UTF-8 without NUL. Never printed.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Shortest accepted password, in bytes.
    pub const MIN_BYTES: usize = 8;
    /// bcrypt ignores everything after 72 bytes, so longer is refused.
    pub const MAX_BYTES: usize = 72;

    /// Parses a raw password, returning a client-facing reason on failure.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.contains('\0') {
            return Err("must not contain NUL bytes".into());
        }
        if raw.len() < Self::MIN_BYTES {
            return Err(format!("must be at least {} bytes long", Self::MIN_BYTES));
        }
        if raw.len() > Self::MAX_BYTES {
            return Err(format!(
                "must be at most {} bytes long (bcrypt's limit)",
                Self::MAX_BYTES
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The secret itself, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_counted_in_bytes() {
        assert!(Password::parse(&"a".repeat(72)).is_ok());
        assert!(Password::parse(&"a".repeat(73)).is_err());
        // 24 three-byte characters = 72 bytes; 25 = 75 bytes.
        assert!(Password::parse(&"€".repeat(24)).is_ok());
        assert!(Password::parse(&"€".repeat(25)).is_err());
        assert!(Password::parse("short").is_err());
        assert!(Password::parse("12345678").is_ok());
    }

    #[test]
    fn nul_bytes_are_refused() {
        assert!(Password::parse("pass\0word").is_err());
    }

    #[test]
    fn debug_does_not_reveal_the_secret() {
        let p = Password::parse("hunter2hunter2").unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn passwords_of_8_to_72_printable_bytes_are_kept_verbatim(raw in "[ -~]{8,72}") {
                let parsed = Password::parse(&raw).unwrap();
                prop_assert_eq!(parsed.expose(), raw.as_str());
            }

            #[test]
            fn passwords_over_72_bytes_are_rejected_not_truncated(raw in "\\PC{19,80}") {
                prop_assume!(raw.len() > 72);
                prop_assert!(Password::parse(&raw).is_err());
            }

            #[test]
            fn passwords_under_8_bytes_are_rejected(raw in "[ -~]{0,7}") {
                prop_assert!(Password::parse(&raw).is_err());
            }

            #[test]
            fn a_nul_byte_anywhere_is_rejected(head in "[ -~]{0,40}", tail in "[ -~]{0,31}") {
                let raw = format!("{head}\0{tail}");
                prop_assert!(Password::parse(&raw).is_err());
            }

            #[test]
            fn any_string_is_judged_by_its_byte_length_and_nul(raw in any::<String>()) {
                let expected = !raw.contains('\0') && (8..=72).contains(&raw.len());
                prop_assert_eq!(Password::parse(&raw).is_ok(), expected);
            }
        }
    }
}
