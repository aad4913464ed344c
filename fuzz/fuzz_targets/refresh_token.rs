//! Arbitrary bytes as the body of `POST /auth/refresh` and `/auth/logout`
//! (decoded as the route decodes it) and as a presented refresh token.
//!
//! Invariants: nothing panics; the token is kept verbatim; its lookup hash
//! depends only on its text and never is the text; `Debug` hides it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera::auth::refresh_token::RefreshToken;
use tessera::routes::auth::RefreshRequest;

fn check(raw: &str) {
    let presented = RefreshToken::presented(raw);
    assert_eq!(presented.expose(), raw);
    let hash = presented.lookup_hash();
    assert_eq!(hash, RefreshToken::presented(raw).lookup_hash());
    assert_ne!(&hash[..], raw.as_bytes());
    let mut longer = raw.to_owned();
    longer.push('\0');
    assert_ne!(hash, RefreshToken::presented(&longer).lookup_hash());
    assert_eq!(format!("{presented:?}"), "RefreshToken(***)");
}

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = serde_json::from_slice::<RefreshRequest>(data) {
        check(&body.refresh_token);
    }
    if let Ok(raw) = std::str::from_utf8(data) {
        check(raw);
    }
});
