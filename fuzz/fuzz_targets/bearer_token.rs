//! Arbitrary bytes as an `Authorization` value, through exactly what the
//! guard runs (`check_authorization`: scheme, bearer extraction, then
//! `TokenService::verify` with a real key), and as a bare token.
//!
//! Invariants: nothing panics; a value over `Bearer ` + 8 KiB is refused
//! unparsed; a token is accepted only when it is one the fixture key really
//! signed (byte for byte); the cached and the uncached `TokenService` give
//! the same answer (the cached one also takes the guard's fast path); and
//! changing any byte of a valid token makes it fail.
//!
//! libFuzzer's default `-max_len` is 4096; pass `-max_len=9000` to reach
//! the size limit.

#![no_main]

use std::sync::{Arc, LazyLock};

use actix_web::http::header::HeaderValue;
use libfuzzer_sys::fuzz_target;
use tessera::auth::guard::{bearer_token, check_authorization, MAX_TOKEN_BYTES};
use tessera::auth::keys::KeySet;
use tessera::auth::tokens::{AccessClaims, Subject, TokenService};
use tessera::config::Settings;
use tessera::error::AppError;

const FIXTURE_KEY: &[u8] = include_bytes!("../../tests/fixtures/rsa2048-pkcs1.pem");
/// Signed by the fixture key, expires in 2100 (written by make_seeds.py).
const SEED_TOKEN: &str = include_str!("../seeds/bearer_token/valid-token");

struct Fixture {
    cached: TokenService,
    uncached: TokenService,
    /// Every token this process knows to be genuinely signed and live.
    valid: Vec<String>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let settings = Settings::from_lookup(|_| None).expect("default settings");
    let keys = Arc::new(KeySet::from_private_pem(FIXTURE_KEY).expect("fixture key"));
    let cached = TokenService::new(Arc::clone(&keys), &settings);
    let mut no_cache = settings.clone();
    no_cache.token_cache_capacity = 0;
    let uncached = TokenService::new(keys, &no_cache);
    let roles = vec!["admin".to_owned()];
    let amr = vec!["pwd".to_owned()];
    let issued = cached
        .issue(&Subject {
            user_id: uuid::Uuid::from_u128(0xf022_0001),
            username: "fuzz",
            roles: &roles,
            session_id: uuid::Uuid::from_u128(0xf5e5_0001),
            amr: &amr,
            auth_time: 1_700_000_000,
        })
        .expect("issue");
    let valid = vec![SEED_TOKEN.trim().to_owned(), issued.token];
    for token in &valid {
        assert!(uncached.verify(token).is_ok(), "fixture token must verify");
    }
    Fixture {
        cached,
        uncached,
        valid,
    }
});

/// Cached and uncached verification agree, and success means a real token.
fn check_token(fixture: &Fixture, token: &str) {
    let cached = fixture.cached.verify(token);
    let uncached = fixture.uncached.verify(token);
    assert_eq!(cached, uncached, "the cache changed the answer");
    if cached.is_ok() {
        assert!(
            fixture.valid.iter().any(|valid| valid == token),
            "a token the key never signed was accepted: {token:?}"
        );
    }
}

fn check_header(fixture: &Fixture, value: &HeaderValue) {
    let cached = check_authorization(&fixture.cached, Some(value));
    let uncached = check_authorization(&fixture.uncached, Some(value));
    if value.len() > "Bearer ".len() + MAX_TOKEN_BYTES {
        for answer in [cached, uncached] {
            assert!(
                matches!(
                    answer,
                    Err(AppError::InvalidToken("token longer than 8 KiB"))
                ),
                "an oversized value was parsed: {answer:?}"
            );
        }
        return;
    }
    let token = bearer_token(value);
    match (&cached, &uncached) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b);
            let token = token.as_ref().expect("accepted without a bearer token");
            assert!(
                fixture.valid.contains(token),
                "a token the key never signed was accepted: {token:?}"
            );
        }
        (Err(AppError::MissingToken), Err(AppError::MissingToken)) => {
            assert!(
                token.is_none(),
                "a bearer token was read but called missing"
            );
        }
        (Err(AppError::InvalidToken(a)), Err(AppError::InvalidToken(b))) => {
            assert_eq!(a, b, "the cache changed the reason");
            let token = token
                .as_ref()
                .expect("invalid token without a bearer token");
            assert!(!fixture.valid.contains(token), "a valid token was refused");
        }
        other => panic!("unexpected guard answers: {other:?}"),
    }
    if let Some(token) = token {
        check_token(fixture, &token);
    }
}

/// Applies `edits` (pairs of position and XOR mask) to a valid token: any
/// change must make it fail.
fn check_tampered(fixture: &Fixture, edits: &[u8]) {
    let original = &fixture.valid[0];
    let mut bytes = original.as_bytes().to_vec();
    for pair in edits.chunks_exact(3) {
        let position = usize::from(u16::from_le_bytes([pair[0], pair[1]])) % bytes.len();
        bytes[position] ^= pair[2];
    }
    let Ok(tampered) = String::from_utf8(bytes) else {
        return;
    };
    if &tampered != original {
        let result: Result<Arc<AccessClaims>, _> = fixture.cached.verify(&tampered);
        assert!(result.is_err(), "a changed token verified: {tampered:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let fixture = &*FIXTURE;
    // As a header value (actix has already refused bytes a value cannot hold).
    if let Ok(value) = HeaderValue::from_bytes(data) {
        check_header(fixture, &value);
    }
    // As the bare token (reaches verify with bytes the header would refuse).
    if let Ok(token) = std::str::from_utf8(data) {
        check_token(fixture, token);
    }
    check_tampered(fixture, data);
});
