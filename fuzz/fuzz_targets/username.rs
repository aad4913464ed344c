//! Arbitrary strings through `Username::parse` (registration's parser).
//!
//! Invariants: nothing panics; it accepts exactly 3–32 ASCII letters,
//! digits, `_ . -` (SPEC §4); an accepted name is the input lower-cased and
//! parses again to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera::domain::Username;

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let length_ok = (Username::MIN_LEN..=Username::MAX_LEN).contains(&raw.chars().count());
    let expected = length_ok && raw.chars().all(allowed);
    match Username::parse(&raw) {
        Ok(name) => {
            assert!(expected, "accepted {raw:?}");
            assert_eq!(name.as_str(), raw.to_ascii_lowercase());
            assert_eq!(name.to_string(), name.as_str());
            assert_eq!(Username::parse(name.as_str()), Ok(name.clone()));
        }
        Err(reason) => {
            assert!(!expected, "refused {raw:?}: {reason}");
            assert!(!reason.is_empty());
        }
    }
});
