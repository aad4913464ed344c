//! Arbitrary strings through `Password::parse` (registration and password
//! change) and through the login check `auth::password::verify`.
//!
//! Invariants: nothing panics; it accepts exactly 8–72 bytes without NUL
//! (SPEC §4); `Debug` never shows the secret; and against the hash of a
//! 72-byte password, login succeeds only for that exact password (bcrypt
//! ignores bytes after the 72nd, so a longer candidate with the same first
//! 72 bytes must still fail).

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use tessera::auth::password;
use tessera::domain::Password;

/// 72 bytes: bcrypt's whole input (make_seeds.py writes the same string).
const KNOWN: &str = "correct horse battery staple / correct horse battery staple / correct h";

static KNOWN_HASH: LazyLock<String> = LazyLock::new(|| {
    let known = Password::parse(KNOWN).expect("the known password is valid");
    password::hash(&known, 4).expect("bcrypt")
});

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let expected =
        !raw.contains('\0') && (Password::MIN_BYTES..=Password::MAX_BYTES).contains(&raw.len());
    match Password::parse(&raw) {
        Ok(parsed) => {
            assert!(expected, "accepted {} bytes", raw.len());
            assert_eq!(parsed.expose(), raw);
            assert_eq!(format!("{parsed:?}"), "Password(***)");
        }
        Err(reason) => {
            assert!(!expected, "refused {} bytes: {reason}", raw.len());
        }
    }
    // bcrypt costs a millisecond even at cost 4: only candidates that share
    // the known password's first 16 bytes can be interesting.
    if raw.as_bytes().starts_with(&KNOWN.as_bytes()[..16]) {
        let accepted = password::verify(&raw, &KNOWN_HASH);
        assert_eq!(
            accepted,
            raw == KNOWN,
            "login answered {accepted} for {raw:?}"
        );
    }
});
