//! Property tests of the access-token path: issue then verify gives the
//! claims back, any changed byte makes verification fail (with the verified
//! token cache on and off), and the guard's bearer parsing.

use std::sync::{Arc, LazyLock};

use actix_web::http::header::HeaderValue;
use proptest::prelude::*;
use uuid::Uuid;

use crate::auth::guard::{bearer_token, check_authorization};
use crate::auth::keys::KeySet;
use crate::auth::tokens::{AccessClaims, SignInMethod, Subject, TokenService};
use crate::config::Settings;
use crate::domain::Username;
use crate::error::AppError;

const FIXTURE_KEY: &[u8] = include_bytes!("../../tests/fixtures/rsa2048-pkcs1.pem");

fn service(cache_capacity: u64) -> TokenService {
    let mut settings = Settings::from_lookup(|_| None).unwrap();
    settings.token_cache_capacity = cache_capacity;
    TokenService::new(
        Arc::new(KeySet::from_private_pem(FIXTURE_KEY).unwrap()),
        &settings,
    )
}

/// With the verified-token cache (the default capacity).
static CACHED: LazyLock<TokenService> = LazyLock::new(|| service(100_000));
/// Without it: every verification checks the signature.
static UNCACHED: LazyLock<TokenService> = LazyLock::new(|| service(0));

/// Who a token is for, within the domain's limits.
#[derive(Debug, Clone)]
struct Owner {
    user_id: Uuid,
    username: String,
    roles: Vec<String>,
    session_id: Uuid,
    amr: Vec<String>,
}

impl Owner {
    fn issue(&self) -> String {
        CACHED
            .issue(&Subject {
                user_id: self.user_id,
                username: &self.username,
                roles: &self.roles,
                session_id: self.session_id,
                amr: &self.amr,
                auth_time: 1_700_000_000,
            })
            .unwrap()
            .token
    }
}

fn owners() -> impl Strategy<Value = Owner> {
    (
        any::<u128>(),
        "[A-Za-z0-9_.-]{3,32}",
        prop::collection::vec(prop_oneof![Just("admin".to_owned()), any::<String>()], 0..4),
        any::<u128>(),
    )
        .prop_map(|(user_id, raw, roles, session_id)| Owner {
            user_id: Uuid::from_u128(user_id),
            username: Username::parse(&raw).unwrap().as_str().to_owned(),
            roles,
            session_id: Uuid::from_u128(session_id),
            amr: SignInMethod::PasswordAndOtp.amr(),
        })
}

fn assert_claims_of(claims: &AccessClaims, owner: &Owner, issued_after: i64) {
    assert_eq!(claims.sub, owner.user_id);
    assert_eq!(claims.username, owner.username);
    assert_eq!(claims.roles, owner.roles);
    assert_eq!(claims.sid, owner.session_id);
    assert_eq!(claims.amr, owner.amr);
    assert_eq!(claims.auth_time, Some(1_700_000_000));
    assert_eq!(
        (claims.iss.as_str(), claims.aud.as_str()),
        ("tessera", "tessera-api")
    );
    assert!(claims.iat >= issued_after);
    assert_eq!(claims.nbf, Some(claims.iat));
    assert_eq!(claims.exp - claims.iat, 900);
}

/// `token` with the byte at `position` replaced by a different ASCII byte.
fn with_byte_changed(token: &str, position: usize, replacement: u8) -> String {
    let mut bytes = token.as_bytes().to_vec();
    bytes[position] = if bytes[position] == replacement {
        replacement ^ 1
    } else {
        replacement
    };
    String::from_utf8(bytes).unwrap()
}

proptest! {
    // RSA signing costs milliseconds: modest case counts keep `cargo test` fast.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn issued_claims_come_back_from_verification(owner in owners()) {
        let issued_after = chrono::Utc::now().timestamp();
        let token = owner.issue();
        let uncached = UNCACHED.verify(&token).unwrap();
        let first = CACHED.verify(&token).unwrap();
        let from_cache = CACHED.verify(&token).unwrap();
        assert_claims_of(&uncached, &owner, issued_after);
        prop_assert_eq!(&first, &uncached);
        prop_assert_eq!(&from_cache, &uncached);

        let header = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
        let via_guard = check_authorization(&CACHED, Some(&header)).unwrap();
        prop_assert_eq!(&via_guard, &uncached);
    }

    #[test]
    fn changing_any_byte_of_a_token_makes_verification_fail(
        owner in owners(),
        position in any::<prop::sample::Index>(),
        replacement in 0u8..0x80,
    ) {
        let token = owner.issue();
        // The genuine token is now in the cache: a hit on the tampered one
        // would be a cache bug, not a signature that verified.
        prop_assert!(CACHED.verify(&token).is_ok());
        let tampered = with_byte_changed(&token, position.index(token.len()), replacement);

        prop_assert!(CACHED.verify(&tampered).is_err());
        prop_assert!(UNCACHED.verify(&tampered).is_err());
        if let Ok(header) = HeaderValue::from_str(&format!("Bearer {tampered}")) {
            let refused = check_authorization(&CACHED, Some(&header));
            prop_assert!(matches!(refused, Err(AppError::InvalidToken(_))), "{:?}", refused);
        }
    }

    #[test]
    fn the_bearer_scheme_is_read_case_insensitively(
        scheme in "[bB][eE][aA][rR][eE][rR]",
        token in "[!-~]{1,64}",
    ) {
        let header = HeaderValue::from_str(&format!("{scheme} {token}")).unwrap();
        prop_assert_eq!(bearer_token(&header), Some(token));
    }

    #[test]
    fn a_bearer_token_is_exactly_what_follows_the_scheme(
        value in prop::collection::vec(any::<u8>(), 0..48),
        prefix in prop_oneof![Just(&b""[..]), Just(&b"Bearer "[..]), Just(&b"bEARER "[..])],
    ) {
        let bytes = [prefix, &value[..]].concat();
        let Ok(header) = HeaderValue::from_bytes(&bytes) else {
            return Ok(());
        };
        match bearer_token(&header) {
            Some(token) => {
                prop_assert!(bytes.len() > 7 && bytes[..7].eq_ignore_ascii_case(b"bearer "));
                prop_assert_eq!(token.as_bytes(), &bytes[7..]);
            }
            None => prop_assert!(
                !(bytes.len() > 7
                    && bytes[..7].eq_ignore_ascii_case(b"bearer ")
                    && header.to_str().is_ok()),
                "{:?} refused",
                header
            ),
        }
    }
}

/// Every position of one token, each changed to a character that decodes
/// to a neighbouring value: the last character of each base64url segment
/// included, where only padding bits would change.
#[test]
fn every_single_character_change_of_a_token_is_refused() {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let token = Owner {
        user_id: Uuid::from_u128(1),
        username: "alice".into(),
        roles: vec!["admin".into()],
        session_id: Uuid::from_u128(2),
        amr: SignInMethod::Password.amr(),
    }
    .issue();
    assert!(CACHED.verify(&token).is_ok());
    for (position, &byte) in token.as_bytes().iter().enumerate() {
        let neighbours = match ALPHABET.iter().position(|&c| c == byte) {
            Some(value) => vec![
                ALPHABET[value ^ 1],
                ALPHABET[value ^ 2],
                ALPHABET[value ^ 3],
            ],
            None => vec![b'A'],
        };
        for replacement in neighbours {
            let tampered = with_byte_changed(&token, position, replacement);
            assert!(
                CACHED.verify(&tampered).is_err(),
                "changed at {position}: {tampered}"
            );
        }
    }
}

#[test]
fn a_missing_or_non_bearer_authorization_is_a_missing_token() {
    for value in [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer ",
        "Bearerx.y.z",
        "Token x",
    ] {
        let header = HeaderValue::from_str(value).unwrap();
        assert!(matches!(
            check_authorization(&CACHED, Some(&header)),
            Err(AppError::MissingToken)
        ));
    }
    assert!(matches!(
        check_authorization(&CACHED, None),
        Err(AppError::MissingToken)
    ));
}
