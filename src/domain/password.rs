//! A password acceptable to bcrypt without truncation, and the rules a NEW
//! password must also meet (README "Brute-force defence"): not among the
//! most common leaked passwords, and not containing the username.

use std::collections::HashSet;
use std::fmt;
use std::sync::OnceLock;

/// The 30,000 most common passwords of the xato.net 10-million-password
/// leak corpus, lower-cased, one a line, as the zxcvbn project ships them
/// (README "Brute-force defence" names the source and licence).
const COMMON_PASSWORDS: &str = include_str!("common-passwords.txt");

/// The list as a set, built once on first use.
fn common_passwords() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| COMMON_PASSWORDS.lines().filter(|l| !l.is_empty()).collect())
}

/// Whether `raw`, compared case-insensitively, is on the common list.
pub fn is_common(raw: &str) -> bool {
    common_passwords().contains(raw.to_lowercase().as_str())
}

/// Message for a password on the common list.
pub const TOO_COMMON: &str = "too common";
/// Message for a password that contains the username.
pub const CONTAINS_USERNAME: &str = "contains the username";

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

    /// Parses a password being SET for `username` (registration, change,
    /// reset): the length rules of [`Password::parse`], then refuses one on
    /// the common list or containing the username, both case-insensitively.
    /// A `username` shorter than a valid one (3) is not compared, so an
    /// invalid name in the same request does not produce a second error.
    pub fn parse_for(username: &str, raw: &str) -> Result<Self, String> {
        let password = Self::parse(raw)?;
        let lowered = raw.to_lowercase();
        if common_passwords().contains(lowered.as_str()) {
            return Err(TOO_COMMON.into());
        }
        let name = username.to_lowercase();
        if name.chars().count() >= 3 && lowered.contains(&name) {
            return Err(CONTAINS_USERNAME.into());
        }
        Ok(password)
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
    fn the_shipped_list_holds_at_least_ten_thousand_passwords() {
        assert!(
            common_passwords().len() >= 10_000,
            "{}",
            common_passwords().len()
        );
    }

    #[test]
    fn common_passwords_are_refused_case_insensitively() {
        for raw in ["password", "PassWord123", "QWERTYUIOP", "iloveyou"] {
            assert_eq!(
                Password::parse_for("alice", raw).unwrap_err(),
                TOO_COMMON,
                "{raw}"
            );
        }
        assert!(Password::parse_for("alice", "correct horse battery").is_ok());
    }

    #[test]
    fn passwords_containing_the_username_are_refused() {
        assert_eq!(
            Password::parse_for("Alice", "xx-ALICE-rules").unwrap_err(),
            CONTAINS_USERNAME
        );
        assert!(Password::parse_for("bob", "alice rules ok").is_ok());
        // An invalid (too short) name is not compared.
        assert!(Password::parse_for("a", "a perfectly fine one").is_ok());
    }

    #[test]
    fn length_rules_come_first() {
        assert!(Password::parse_for("alice", "short")
            .unwrap_err()
            .contains("at least"));
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
