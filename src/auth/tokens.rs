//! Access tokens: the claims, issuing them, and the ONE `Validation` every
//! token is checked against.

use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::keys::KeySet;
use crate::auth::token_cache::VerifiedTokenCache;
use crate::config::Settings;

/// RFC 9068 explicit typing of access tokens.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The claims of an access token (README "Token rules").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Audience (a single string).
    pub aud: String,
    /// The user id.
    pub sub: Uuid,
    /// The lower-cased username.
    pub username: String,
    /// The user's roles at issue time.
    pub roles: Vec<String>,
    /// The session (device) this token belongs to.
    pub sid: Uuid,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Not before (Unix seconds); optional on input, always issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Expires at (Unix seconds).
    pub exp: i64,
    /// Unique token id.
    pub jti: Uuid,
    /// RFC 8176 methods of the sign-in that started the session (README
    /// "Token rules"). Tokens signed before this claim existed read as
    /// `["pwd"]`, the only sign-in there was.
    #[serde(default = "password_only")]
    pub amr: Vec<String>,
    /// When that sign-in happened (Unix seconds); kept by refresh. Always
    /// issued; absent only on tokens signed before the claim existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
}

/// The `amr` of a token that does not carry one.
fn password_only() -> Vec<String> {
    SignInMethod::Password.amr()
}

/// How a session was started; decides its `amr` claim (RFC 8176 values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInMethod {
    /// Username and password: `["pwd"]`.
    Password,
    /// Password, then a TOTP or recovery code: `["pwd","otp","mfa"]`.
    PasswordAndOtp,
    /// A passkey with user verification: `["hwk","user","mfa"]`.
    Passkey,
}

impl SignInMethod {
    /// The `amr` values stored on the session and copied into its tokens.
    pub fn amr(self) -> Vec<String> {
        let methods: &[&str] = match self {
            Self::Password => &["pwd"],
            Self::PasswordAndOtp => &["pwd", "otp", "mfa"],
            Self::Passkey => &["hwk", "user", "mfa"],
        };
        methods.iter().map(|m| (*m).to_owned()).collect()
    }
}

/// Who a new access token is for.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    /// User id.
    pub user_id: Uuid,
    /// Username.
    pub username: &'a str,
    /// Roles.
    pub roles: &'a [String],
    /// Session id.
    pub session_id: Uuid,
    /// The session's `amr` (see [`SignInMethod::amr`]).
    pub amr: &'a [String],
    /// When the session's sign-in happened (Unix seconds).
    pub auth_time: i64,
}

/// A freshly signed access token.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The compact JWS.
    pub token: String,
    /// Lifetime in seconds.
    pub expires_in: i64,
}

/// The JOSE header of every access token, as JSON: what jsonwebtoken's
/// `Header` with `typ` and `kid` set serialises to, member for member and in
/// its order. The `kid` is base64url, so it needs no JSON escaping.
fn access_token_header(kid: &str) -> String {
    format!(r#"{{"typ":"{ACCESS_TOKEN_TYP}","alg":"RS256","kid":"{kid}"}}"#)
}

/// Why a token was refused: a short phrase safe for `error_description`.
pub type RejectReason = &'static str;

/// Issues and verifies access tokens; owns the key set and the cache.
pub struct TokenService {
    keys: Arc<KeySet>,
    /// `base64url(header) + "."`: the JOSE header never changes while the
    /// process runs, so it is encoded once.
    signing_input_prefix: String,
    rng: SystemRandom,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_seconds: i64,
    cache: VerifiedTokenCache,
}

impl TokenService {
    /// Builds the service and its single `Validation` from the settings.
    pub fn new(keys: Arc<KeySet>, settings: &Settings) -> Self {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.algorithms = vec![Algorithm::RS256];
        validation.leeway = settings.jwt_leeway_seconds;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_issuer(&[&settings.jwt_issuer]);
        validation.set_audience(&[&settings.jwt_audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let signing_input_prefix = format!(
            "{}.",
            URL_SAFE_NO_PAD.encode(access_token_header(keys.current_kid()))
        );
        Self {
            keys,
            signing_input_prefix,
            rng: SystemRandom::new(),
            validation,
            issuer: settings.jwt_issuer.clone(),
            audience: settings.jwt_audience.clone(),
            ttl_seconds: settings.access_token_ttl_seconds,
            cache: VerifiedTokenCache::new(settings.token_cache_capacity),
        }
    }

    /// The keys, for the JWKS route.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// Signs a new access token for a session.
    pub fn issue(&self, subject: &Subject<'_>) -> Result<IssuedToken, jsonwebtoken::errors::Error> {
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: subject.user_id,
            username: subject.username.to_owned(),
            roles: subject.roles.to_vec(),
            sid: subject.session_id,
            iat: now,
            nbf: Some(now),
            exp: now + self.ttl_seconds,
            jti: Uuid::new_v4(),
            amr: subject.amr.to_vec(),
            auth_time: Some(subject.auth_time),
        };
        Ok(IssuedToken {
            token: self.sign(&claims)?,
            expires_in: self.ttl_seconds,
        })
    }

    /// The compact JWS `header.claims.signature` of `claims`, RS256
    /// (RSASSA-PKCS1-v1_5 with SHA-256, RFC 7518 §3.3), signed with the key
    /// parsed at startup.
    ///
    /// `jsonwebtoken::encode` gives the very same bytes (PKCS#1 v1.5
    /// signatures are deterministic; the header and claims serialise alike),
    /// but its aws-lc backend parses and checks the private key's DER again
    /// for every token, which costs about as much as the signature itself.
    /// Verification stays with jsonwebtoken.
    fn sign<T: Serialize>(&self, claims: &T) -> Result<String, jsonwebtoken::errors::Error> {
        let claims_json = serde_json::to_vec(claims)?;
        let key = self.keys.signing_key();
        let mut signature = vec![0; key.public_modulus_len()];
        let mut token = String::with_capacity(
            self.signing_input_prefix.len()
                + base64::encoded_len(claims_json.len(), false).unwrap_or(0)
                + 1
                + base64::encoded_len(signature.len(), false).unwrap_or(0),
        );
        token.push_str(&self.signing_input_prefix);
        URL_SAFE_NO_PAD.encode_string(&claims_json, &mut token);
        key.sign(
            &RSA_PKCS1_SHA256,
            &self.rng,
            token.as_bytes(),
            &mut signature,
        )
        .map_err(|_| ErrorKind::RsaFailedSigning)?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        Ok(token)
    }

    /// Verifies a bearer token; no database involved. A token seen before
    /// is answered from the [`VerifiedTokenCache`] (same answer, no RSA).
    pub fn verify(&self, token: &str) -> Result<Arc<AccessClaims>, RejectReason> {
        if !self.cache.is_enabled() {
            return self.verify_uncached(token).map(Arc::new);
        }
        let key = VerifiedTokenCache::key(token);
        if let Some(claims) = self.cache.get(&key) {
            return Ok(claims);
        }
        let claims = Arc::new(self.verify_uncached(token)?);
        self.cache.insert(key, Arc::clone(&claims));
        Ok(claims)
    }

    /// The claims of a token already in the verified-token cache, straight
    /// from the raw bytes after `Bearer `; `None` means "validate in full".
    pub fn verify_cached(&self, token: &[u8]) -> Option<Arc<AccessClaims>> {
        if !self.cache.is_enabled() {
            return None;
        }
        self.cache.get(&VerifiedTokenCache::key(token))
    }

    /// Whether a token is in the verified-token cache (for tests).
    pub fn is_cached(&self, token: &str) -> bool {
        self.cache.contains(&VerifiedTokenCache::key(token))
    }

    /// The full validation, every check, no cache.
    pub fn verify_uncached(&self, token: &str) -> Result<AccessClaims, RejectReason> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| "malformed token")?;
        if header.alg != Algorithm::RS256 {
            return Err("algorithm must be RS256");
        }
        let typ_ok = header.typ.as_deref().is_some_and(|typ| {
            typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYP)
                || typ.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok {
            return Err("typ must be at+jwt");
        }
        let kid = header.kid.as_deref().ok_or("missing kid")?;
        let key = self.keys.decoding_key(kid).ok_or("unknown kid")?;
        let data =
            jsonwebtoken::decode::<AccessClaims>(token, key, &self.validation).map_err(|err| {
                use jsonwebtoken::errors::ErrorKind;
                match err.kind() {
                    ErrorKind::ExpiredSignature => "token expired",
                    ErrorKind::ImmatureSignature => "token not yet valid",
                    ErrorKind::InvalidSignature => "signature does not verify",
                    ErrorKind::InvalidIssuer => "wrong issuer",
                    ErrorKind::InvalidAudience => "wrong audience",
                    ErrorKind::InvalidAlgorithm => "algorithm must be RS256",
                    ErrorKind::MissingRequiredClaim(_) => "missing required claim",
                    ErrorKind::Json(_) => "malformed or missing claims",
                    _ => "malformed token",
                }
            })?;
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Header};

    const FIXTURE_KEY: &[u8] = include_bytes!("../../tests/fixtures/rsa2048-pkcs1.pem");

    fn service() -> TokenService {
        let settings = Settings::from_lookup(|_| None).expect("default settings");
        let keys = KeySet::from_private_pem(FIXTURE_KEY).expect("fixture key");
        TokenService::new(Arc::new(keys), &settings)
    }

    fn issue(service: &TokenService) -> String {
        let roles = vec!["admin".to_owned(), "ops".to_owned()];
        let amr = vec!["pwd".to_owned()];
        service
            .issue(&Subject {
                user_id: Uuid::new_v4(),
                username: "alice",
                roles: &roles,
                session_id: Uuid::new_v4(),
                amr: &amr,
                auth_time: 1_700_000_000,
            })
            .expect("sign")
            .token
    }

    #[test]
    fn a_token_signed_with_the_parsed_key_verifies_with_jsonwebtoken() {
        let service = service();
        let token = issue(&service);

        let header = jsonwebtoken::decode_header(&token).expect("header");
        let kid = service.keys().current_kid();
        let public = &service.keys().jwks().keys[0];
        let key = DecodingKey::from_rsa_components(&public.n, &public.e).expect("jwk");
        let data = jsonwebtoken::decode::<AccessClaims>(&token, &key, &service.validation)
            .expect("jsonwebtoken accepts the token");

        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.typ.as_deref(), Some(ACCESS_TOKEN_TYP));
        assert_eq!(header.kid.as_deref(), Some(kid));
        assert_eq!(service.verify_uncached(&token).expect("valid"), data.claims);
        assert_eq!(data.claims.username, "alice");
        assert_eq!(data.claims.roles, ["admin", "ops"]);
    }

    #[test]
    fn the_parsed_key_signs_the_same_bytes_as_jsonwebtoken_encode() {
        let service = service();
        let token = issue(&service);
        let claims = jsonwebtoken::dangerous::insecure_decode::<AccessClaims>(&token)
            .expect("well-formed")
            .claims;
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some(ACCESS_TOKEN_TYP.to_owned());
        header.kid = Some(service.keys().current_kid().to_owned());

        let by_jsonwebtoken =
            jsonwebtoken::encode(&header, &claims, service.keys().encoding_key()).expect("encode");

        // RSASSA-PKCS1-v1_5 is deterministic: same key, same input, same
        // signature, so the whole compact token must match byte for byte.
        assert_eq!(token, by_jsonwebtoken);
    }

    #[test]
    fn a_token_signed_with_the_parsed_key_fails_after_one_changed_byte() {
        let service = service();
        let token = issue(&service);
        let mut bytes = token.into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).expect("ascii");

        assert_eq!(
            service.verify_uncached(&tampered).err(),
            Some("signature does not verify")
        );
    }
}
