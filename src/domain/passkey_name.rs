//! A passkey's label: 1–64 characters, "Passkey" when the client sends none.

/// A validated passkey name, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyName(String);

impl PasskeyName {
    /// Longest accepted name, in characters.
    pub const MAX_LEN: usize = 64;
    /// The name of a passkey registered without one.
    pub const DEFAULT: &'static str = "Passkey";

    /// Parses the optional `name` of a registration; `None` is the default
    /// name, an empty or blank one is refused with a client-facing reason.
    pub fn parse(raw: Option<&str>) -> Result<Self, String> {
        let Some(raw) = raw else {
            return Ok(Self(Self::DEFAULT.to_owned()));
        };
        let name = raw.trim();
        let len = name.chars().count();
        if !(1..=Self::MAX_LEN).contains(&len) {
            return Err(format!("must be 1 to {} characters long", Self::MAX_LEN));
        }
        if name.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_to_sixty_four_characters_and_default_to_passkey() {
        assert_eq!(PasskeyName::parse(None).unwrap().as_str(), "Passkey");
        assert_eq!(
            PasskeyName::parse(Some(" iPhone ")).unwrap().as_str(),
            "iPhone"
        );
        assert!(PasskeyName::parse(Some(&"é".repeat(64))).is_ok());
        for bad in ["", "   ", &"x".repeat(65), "tab\there"] {
            assert!(PasskeyName::parse(Some(bad)).is_err(), "{bad:?}");
        }
    }
}
