//! The bearer-token guard of `GET /api/me`: every way a token can be forged,
//! bent or misused is 401 `invalid_token`; a correct token, one just past
//! `exp` but within the leeway, and any casing of the scheme pass.
//!
//! Most cases run the guard's whole decision (`check_authorization`, what
//! the middleware runs) in process, with no server and no database: a
//! [`Guard`] answers like `GET /api/me` would. The few that need the wiring
//! (a login's token, the cache warmed through HTTP, no header at all) run
//! against the real server.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use actix_web::http::header::HeaderValue;
use actix_web::ResponseError;
use tessera::auth::keys::KeySet;
use tessera::auth::revocation::RevokedSessions;
use tessera::auth::tokens::TokenService;
use tessera::config::Settings;

use crate::helpers::{spawn_app, test_key_path, test_settings, Reply, TestApp};

/// The `WWW-Authenticate` prefix of every refused token.
const INVALID_TOKEN_CHALLENGE: &str = r#"Bearer realm="tessera", error="invalid_token""#;

/// The server's signing key, as a jsonwebtoken encoding key.
fn our_key() -> EncodingKey {
    let pem = std::fs::read(test_key_path()).expect("read test key");
    EncodingKey::from_rsa_pem(&pem).expect("test key is RSA PEM")
}

/// Now, in Unix seconds.
fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Base64url (no padding) of a JSON value, as in a compact JWS.
fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("json"))
}

/// Where `GET /api/me` is asked: the real server or the in-process guard.
trait MeEndpoint {
    /// The settings it runs with.
    fn settings(&self) -> &Settings;
    /// `GET /api/me` with a raw `Authorization` header value.
    async fn me_with_authorization(&self, authorization: &str) -> Reply;
    /// The `kid` it publishes for its signing key.
    async fn kid(&self) -> String;
}

impl MeEndpoint for TestApp {
    fn settings(&self) -> &Settings {
        &self.settings
    }

    async fn me_with_authorization(&self, authorization: &str) -> Reply {
        self.send(
            self.client
                .get(self.url("/api/me"))
                .header("authorization", authorization),
        )
        .await
    }

    async fn kid(&self) -> String {
        let jwks = self.get("/.well-known/jwks.json", None).await;
        assert_eq!(jwks.status, 200, "jwks: {}", jwks.text);
        jwks.body["keys"][0]["kid"]
            .as_str()
            .expect("kid in jwks")
            .to_owned()
    }
}

/// The guard alone: the test key and settings, no server, no database.
struct Guard {
    settings: Settings,
    tokens: TokenService,
    revoked: RevokedSessions,
}

impl Guard {
    fn new() -> Self {
        let settings = test_settings(&[]);
        let keys = KeySet::load(
            settings.jwt_private_key_path.as_deref(),
            &settings.jwt_previous_public_key_paths,
        )
        .expect("test key");
        let tokens = TokenService::new(std::sync::Arc::new(keys), &settings);
        let revoked = RevokedSessions::for_settings(&settings);
        Self {
            settings,
            tokens,
            revoked,
        }
    }

    /// `GET /api/me` with a bearer token.
    async fn me(&self, token: &str) -> Reply {
        self.me_with_authorization(&format!("Bearer {token}")).await
    }
}

impl MeEndpoint for Guard {
    fn settings(&self) -> &Settings {
        &self.settings
    }

    /// What `GET /api/me` answers: the error response of the refusal, or
    /// the caller's identity from the verified claims.
    async fn me_with_authorization(&self, authorization: &str) -> Reply {
        let value = HeaderValue::from_str(authorization).expect("header value");
        match tessera::auth::guard::check_authorization(&self.tokens, &self.revoked, Some(&value)) {
            Ok(claims) => Reply::from_parts(
                200,
                Vec::new(),
                json!({
                    "user_id": claims.sub,
                    "username": claims.username,
                    "roles": claims.roles,
                    "session_id": claims.sid,
                })
                .to_string(),
            ),
            Err(err) => {
                let response = err.error_response();
                let headers = response
                    .headers()
                    .iter()
                    .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
                    .collect();
                let body = actix_web::body::to_bytes(response.into_body())
                    .await
                    .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                    .unwrap_or_default();
                Reply::from_parts(err.error_response().status().as_u16(), headers, body)
            }
        }
    }

    async fn kid(&self) -> String {
        self.tokens.keys().current_kid().to_owned()
    }
}

/// The `kid` the server publishes for its signing key.
async fn our_kid(app: &impl MeEndpoint) -> String {
    app.kid().await
}

/// Claims the server would issue itself: valid for five minutes.
fn valid_claims(app: &impl MeEndpoint) -> Value {
    let now = now();
    json!({
        "iss": app.settings().jwt_issuer,
        "aud": app.settings().jwt_audience,
        "sub": uuid::Uuid::new_v4(),
        "username": "alice",
        "roles": ["user"],
        "sid": uuid::Uuid::new_v4(),
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": uuid::Uuid::new_v4(),
    })
}

/// A header like the server's: `alg`, `typ: at+jwt` and our `kid`.
fn header_with(alg: Algorithm, kid: &str) -> Header {
    let mut header = Header::new(alg);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(kid.to_owned());
    header
}

/// Signs `claims` under `header` with `key`.
fn sign(header: &Header, claims: &Value, key: &EncodingKey) -> String {
    jsonwebtoken::encode(header, claims, key).expect("sign token")
}

/// Signs `claims` exactly as the server does (RS256, at+jwt, our kid).
fn sign_as_server(kid: &str, claims: &Value) -> String {
    sign(&header_with(Algorithm::RS256, kid), claims, &our_key())
}

/// `GET /api/me` with a raw `Authorization` header value.
async fn me_with_authorization(app: &impl MeEndpoint, authorization: &str) -> Reply {
    app.me_with_authorization(authorization).await
}

/// Asserts the reply is a 401 `invalid_token` with the RFC 6750 challenge.
#[track_caller]
fn assert_invalid_token(reply: &Reply) {
    assert_eq!(reply.status, 401, "status: {}", reply.text);
    assert_eq!(reply.error(), "invalid_token", "body: {}", reply.text);
    let challenge = reply.header("www-authenticate");
    assert!(
        challenge.starts_with(INVALID_TOKEN_CHALLENGE),
        "www-authenticate: {challenge:?}"
    );
}

/// Asserts the reply is a 401 `missing_token` with the bare challenge.
#[track_caller]
fn assert_missing_token(reply: &Reply) {
    assert_eq!(reply.status, 401, "status: {}", reply.text);
    assert_eq!(reply.error(), "missing_token", "body: {}", reply.text);
    assert_eq!(
        reply.header("www-authenticate"),
        r#"Bearer realm="tessera""#
    );
}

/// Sends a token whose claims lack `claim`, otherwise perfect.
async fn me_without_claim(app: &Guard, claim: &str) -> Reply {
    let kid = our_kid(app).await;
    let mut claims = valid_claims(app);
    claims
        .as_object_mut()
        .expect("claims object")
        .remove(claim)
        .expect("claim was present");
    app.me(&sign_as_server(&kid, &claims)).await
}

/// A token signed exactly as the server signs, and a refresh-shaped
/// string, for the cases that tamper with a real token.
async fn server_signed_user(app: &Guard) -> ServerSigned {
    let kid = our_kid(app).await;
    let claims = valid_claims(app);
    ServerSigned {
        access_token: sign_as_server(&kid, &claims),
        refresh_token: URL_SAFE_NO_PAD.encode(rand_bytes()),
        user_id: claims["sub"].as_str().expect("sub").to_owned(),
    }
}

/// 32 bytes that differ per call (a refresh token's size).
fn rand_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes
}

/// What [`server_signed_user`] returns.
struct ServerSigned {
    access_token: String,
    refresh_token: String,
    user_id: String,
}

// ---------------------------------------------------------------- positive

#[actix_web::test]
async fn a_token_signed_correctly_with_our_key_is_accepted() {
    let app = Guard::new();
    let kid = our_kid(&app).await;
    let claims = valid_claims(&app);
    let token = sign_as_server(&kid, &claims);

    let reply = app.me(&token).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["user_id"], claims["sub"]);
    assert_eq!(reply.body["session_id"], claims["sid"]);
    assert_eq!(reply.str("username"), "alice");
    assert_eq!(reply.body["roles"], json!(["user"]));
}

#[actix_web::test]
async fn a_token_issued_by_the_server_is_accepted() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", "correct horse").await;

    let reply = app.me(&user.access_token).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.str("user_id"), user.user_id);
}

#[actix_web::test]
async fn a_token_just_past_exp_but_within_the_leeway_is_accepted() {
    let app = Guard::new();
    let kid = our_kid(&app).await;
    let mut claims = valid_claims(&app);
    claims["iat"] = json!(now() - 900);
    claims["nbf"] = json!(now() - 900);
    claims["exp"] = json!(now() - 10);

    let reply = app.me(&sign_as_server(&kid, &claims)).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[actix_web::test]
async fn a_token_with_nbf_slightly_ahead_but_within_the_leeway_is_accepted() {
    let app = Guard::new();
    let kid = our_kid(&app).await;
    let mut claims = valid_claims(&app);
    claims["iat"] = json!(now() + 10);
    claims["nbf"] = json!(now() + 10);

    let reply = app.me(&sign_as_server(&kid, &claims)).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[actix_web::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = Guard::new();
    let user = server_signed_user(&app).await;

    let lower = me_with_authorization(&app, &format!("bearer {}", user.access_token)).await;
    let upper = me_with_authorization(&app, &format!("BEARER {}", user.access_token)).await;
    let mixed = me_with_authorization(&app, &format!("bEaReR {}", user.access_token)).await;

    assert_eq!(lower.status, 200, "bearer: {}", lower.text);
    assert_eq!(upper.status, 200, "BEARER: {}", upper.text);
    assert_eq!(mixed.status, 200, "bEaReR: {}", mixed.text);
    assert_eq!(lower.str("user_id"), user.user_id);
}

#[actix_web::test]
async fn no_authorization_header_is_401_missing_token() {
    let app = spawn_app().await;

    let reply = app.get("/api/me", None).await;

    assert_missing_token(&reply);
}

#[actix_web::test]
async fn a_basic_authorization_header_is_401_missing_token() {
    let app = Guard::new();

    let reply = me_with_authorization(&app, "Basic YWxpY2U6Y29ycmVjdCBob3JzZQ==").await;

    assert_missing_token(&reply);
}

// ------------------------------------------------------ algorithm and keys

#[actix_web::test]
async fn an_unsigned_alg_none_token_is_rejected() {
    let app = Guard::new();
    let kid = our_kid(&app).await;
    let header = json!({"alg": "none", "typ": "at+jwt", "kid": kid});
    let token = format!("{}.{}.", b64_json(&header), b64_json(&valid_claims(&app)));

    let reply = app.me(&token).await;

    assert_invalid_token(&reply);
}

#[actix_web::test]
async fn an_hs256_token_keyed_with_our_public_key_pem_is_rejected() {
    let app = Guard::new();
    let kid = our_kid(&app).await;
    let private_pem = std::fs::read(test_key_path()).expect("read test key");
    let public_pem = tessera::auth::keys::public_pem_of(&private_pem).expect("public pem");
    let hmac_key = EncodingKey::from_secret(public_pem.as_bytes()).expect("hmac key");

    let token = sign(
        &header_with(Algorithm::HS256, &kid),
        &valid_claims(&app),
        &hmac_key,
    );
    let reply = app.me(&token).await;

    assert_invalid_token(&reply);
}

#[actix_web::test]
async fn a_token_signed_by_another_rsa_key_under_our_kid_is_rejected() {
    let app = Guard::new();
    let kid = our_kid(&app).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let other_path = dir.path().join("attacker.pem");
    tessera::auth::keys::write_new_private_key(&other_path, 2048).expect("attacker key");
    let other_key =
        EncodingKey::from_rsa_pem(&std::fs::read(&other_path).expect("read attacker key"))
            .expect("attacker key is RSA PEM");

    let token = sign(
        &header_with(Algorithm::RS256, &kid),
        &valid_claims(&app),
        &other_key,
    );
    let reply = app.me(&token).await;

    assert_invalid_token(&reply);
}

#[actix_web::test]
async fn a_token_with_an_unknown_kid_is_rejected() {
    let app = Guard::new();
    let header = header_with(
        Algorithm::RS256,
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
    );

    let token = sign(&header, &valid_claims(&app), &our_key());
    let reply = app.me(&token).await;

    assert_invalid_token(&reply);
}

#[actix_web::test]
async fn a_token_without_a_kid_is_rejected() {
    let app = Guard::new();
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("at+jwt".to_owned());

    let token = sign(&header, &valid_claims(&app), &our_key());
    let reply = app.me(&token).await;

    assert_invalid_token(&reply);
}

#[actix_web::test]
async fn an_rs512_token_signed_with_our_key_is_rejected() {
    let app = Guard::new();
    let kid = our_kid(&app).await;

    let token = sign(
        &header_with(Algorithm::RS512, &kid),
        &valid_claims(&app),
        &our_key(),
    );
    let reply = app.me(&token).await;

    assert_invalid_token(&reply);
}

#[actix_web::test]
async fn a_ps256_token_signed_with_our_key_is_rejected() {
    let app = Guard::new();
    let kid = our_kid(&app).await;

    let token = sign(
        &header_with(Algorithm::PS256, &kid),
        &valid_claims(&app),
        &our_key(),
    );
    let reply = app.me(&token).await;

    assert_invalid_token(&reply);
}

// ------------------------------------------------------- integrity of a JWS

#[actix_web::test]
async fn a_real_token_with_a_tampered_payload_is_rejected() {
    let app = Guard::new();
    let user = server_signed_user(&app).await;
    let parts: Vec<&str> = user.access_token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64 payload"))
            .expect("json payload");
    payload["roles"] = json!(["admin"]);
    let forged = format!("{}.{}.{}", parts[0], b64_json(&payload), parts[2]);

    let reply = app.me(&forged).await;

    assert_invalid_token(&reply);
}

#[actix_web::test]
async fn a_real_token_with_its_signature_stripped_is_rejected() {
    let app = Guard::new();
    let user = server_signed_user(&app).await;
    let (signed_part, _signature) = user
        .access_token
        .rsplit_once('.')
        .expect("compact JWS has a signature");
    let stripped = format!("{signed_part}.");

    let reply = app.me(&stripped).await;

    assert_invalid_token(&reply);
}

#[actix_web::test]
async fn a_refresh_token_used_as_a_bearer_token_is_rejected() {
    let app = Guard::new();
    let user = server_signed_user(&app).await;

    let reply = app.me(&user.refresh_token).await;

    assert_invalid_token(&reply);
}

// ---------------------------------------------------------------- lifetime

#[actix_web::test]
async fn a_token_expired_beyond_the_leeway_is_rejected() {
    let app = Guard::new();
    let kid = our_kid(&app).await;
    let mut claims = valid_claims(&app);
    claims["iat"] = json!(now() - 1000);
    claims["nbf"] = json!(now() - 1000);
    claims["exp"] = json!(now() - 120);

    let reply = app.me(&sign_as_server(&kid, &claims)).await;

    assert_invalid_token(&reply);
}

#[actix_web::test]
async fn a_token_whose_nbf_is_beyond_the_leeway_is_rejected() {
    let app = Guard::new();
    let kid = our_kid(&app).await;
    let mut claims = valid_claims(&app);
    claims["nbf"] = json!(now() + 120);
    claims["exp"] = json!(now() + 600);

    let reply = app.me(&sign_as_server(&kid, &claims)).await;

    assert_invalid_token(&reply);
}

// ---------------------------------------------------------- issuer/audience

#[actix_web::test]
async fn a_token_from_another_issuer_is_rejected() {
    let app = Guard::new();
    let kid = our_kid(&app).await;
    let mut claims = valid_claims(&app);
    claims["iss"] = json!("https://evil.example");

    let reply = app.me(&sign_as_server(&kid, &claims)).await;

    assert_invalid_token(&reply);
}

#[actix_web::test]
async fn a_token_for_another_audience_is_rejected() {
    let app = Guard::new();
    let kid = our_kid(&app).await;
    let mut claims = valid_claims(&app);
    claims["aud"] = json!("another-api");

    let reply = app.me(&sign_as_server(&kid, &claims)).await;

    assert_invalid_token(&reply);
}

// --------------------------------------------------------------------- typ

#[actix_web::test]
async fn a_token_typed_jwt_instead_of_at_jwt_is_rejected() {
    let app = Guard::new();
    let kid = our_kid(&app).await;
    let mut header = header_with(Algorithm::RS256, &kid);
    header.typ = Some("JWT".to_owned());

    let token = sign(&header, &valid_claims(&app), &our_key());
    let reply = app.me(&token).await;

    assert_invalid_token(&reply);
}

#[actix_web::test]
async fn a_token_without_a_typ_is_rejected() {
    let app = Guard::new();
    let kid = our_kid(&app).await;
    let mut header = header_with(Algorithm::RS256, &kid);
    header.typ = None;

    let token = sign(&header, &valid_claims(&app), &our_key());
    let reply = app.me(&token).await;

    assert_invalid_token(&reply);
}

// ---------------------------------------------------------- required claims

#[actix_web::test]
async fn a_token_without_sid_is_rejected() {
    let app = Guard::new();

    let reply = me_without_claim(&app, "sid").await;

    assert_invalid_token(&reply);
}

#[actix_web::test]
async fn a_token_without_jti_is_rejected() {
    let app = Guard::new();

    let reply = me_without_claim(&app, "jti").await;

    assert_invalid_token(&reply);
}

#[actix_web::test]
async fn a_token_without_sub_is_rejected() {
    let app = Guard::new();

    let reply = me_without_claim(&app, "sub").await;

    assert_invalid_token(&reply);
}

#[actix_web::test]
async fn a_token_without_exp_is_rejected() {
    let app = Guard::new();

    let reply = me_without_claim(&app, "exp").await;

    assert_invalid_token(&reply);
}

#[actix_web::test]
async fn a_token_without_iat_is_rejected() {
    let app = Guard::new();

    let reply = me_without_claim(&app, "iat").await;

    assert_invalid_token(&reply);
}

/// A syntactically plausible token (three base64url segments) of `len` bytes.
fn plausible_token_of_len(kid: &str, len: usize) -> String {
    let header = b64_json(&json!({"alg": "RS256", "typ": "at+jwt", "kid": kid}));
    let prefix = format!("{header}.");
    let signature = "A".repeat(342);
    let payload_len = len - prefix.len() - 1 - signature.len();
    format!("{prefix}{}.{signature}", "e".repeat(payload_len))
}

#[actix_web::test]
async fn a_token_over_8_kib_is_refused_before_it_is_parsed() {
    let app = Guard::new();
    let kid = our_kid(&app).await;

    let at_limit = app.me(&plausible_token_of_len(&kid, 8 * 1024)).await;
    let over = app.me(&plausible_token_of_len(&kid, 8 * 1024 + 1)).await;
    let over_any_case = me_with_authorization(
        &app,
        &format!("bEaReR {}", plausible_token_of_len(&kid, 8 * 1024 + 1)),
    )
    .await;

    for reply in [&at_limit, &over, &over_any_case] {
        assert_invalid_token(reply);
    }
    // At the limit the token is parsed (and fails on its content); one byte
    // more and it is refused for its length alone.
    assert!(!at_limit.text.contains("8 KiB"), "{}", at_limit.text);
    assert!(over.text.contains("longer than 8 KiB"), "{}", over.text);
    assert!(
        over_any_case.text.contains("longer than 8 KiB"),
        "{}",
        over_any_case.text
    );
}

#[actix_web::test]
async fn a_cached_token_passes_only_in_the_form_the_extractor_accepts() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", "correct horse").await;
    let token = &user.access_token;
    // Warm the verified-token cache.
    assert_eq!(app.me(token).await.status, 200);

    for (authorization, expected_error) in [
        (format!("Bearer  {token}"), "invalid_token"),
        (format!("Bearer {token}x"), "invalid_token"),
        (format!("Bearer\t{token}"), "missing_token"),
        (format!("Basic {token}"), "missing_token"),
        (format!("Bearer{token}"), "missing_token"),
        (format!("Token {token}"), "missing_token"),
    ] {
        let reply = me_with_authorization(&app, &authorization).await;
        assert_eq!(reply.status, 401, "{authorization:?}: {}", reply.text);
        assert_eq!(
            reply.error(),
            expected_error,
            "{authorization:?}: {}",
            reply.text
        );
    }
    let lower = me_with_authorization(&app, &format!("bearer {token}")).await;
    assert_eq!(lower.status, 200, "{}", lower.text);
}

// ------------------------------------------------------------------ size

/// A token signed exactly as the server does, whose claims carry a `pad`
/// string sized so that the whole compact token is exactly `len` bytes.
/// (A `cty` header of 0–3 bytes shifts the length when base64 cannot.)
fn server_token_of_length(app: &impl MeEndpoint, kid: &str, len: usize) -> String {
    let encoded_len = |bytes: usize| (bytes * 4).div_ceil(3);
    for cty in ["", "x", "xx", "xxx"] {
        let mut header = header_with(Algorithm::RS256, kid);
        header.cty = (!cty.is_empty()).then(|| cty.to_owned());
        let mut claims = valid_claims(app);
        claims["pad"] = json!("");
        let probe = sign(&header, &claims, &our_key());
        let mut parts = probe.split('.');
        let (head, _, signature) = (parts.next(), parts.next(), parts.next());
        let fixed = head.unwrap().len() + signature.unwrap().len() + 2;
        let base = serde_json::to_vec(&claims).unwrap().len();
        let Some(pad) = (0..len).find(|pad| fixed + encoded_len(base + pad) == len) else {
            continue;
        };
        claims["pad"] = json!("p".repeat(pad));
        let token = sign(&header, &claims, &our_key());
        assert_eq!(token.len(), len);
        return token;
    }
    panic!("no token of {len} bytes");
}

#[actix_web::test]
async fn a_valid_token_of_exactly_8_kib_is_accepted() {
    let app = Guard::new();
    let kid = our_kid(&app).await;
    let token = server_token_of_length(&app, &kid, tessera::auth::guard::MAX_TOKEN_BYTES);

    let reply = app.me(&token).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[actix_web::test]
async fn a_valid_token_one_byte_over_8_kib_is_refused_as_too_large() {
    let app = Guard::new();
    let kid = our_kid(&app).await;
    // Correctly signed, valid claims: only its size is wrong.
    let token = server_token_of_length(&app, &kid, tessera::auth::guard::MAX_TOKEN_BYTES + 1);

    let reply = app.me(&token).await;

    assert_invalid_token(&reply);
    assert!(
        reply
            .header("www-authenticate")
            .contains(r#"error_description="token longer than 8 KiB""#),
        "{}",
        reply.header("www-authenticate")
    );
}
