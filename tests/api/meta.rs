//! Health, readiness and the JWKS.

use crate::helpers::spawn_app;

#[actix_web::test]
async fn healthz_is_ok() {
    let app = spawn_app().await;

    let reply = app.get("/healthz", None).await;

    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, serde_json::json!({"status": "ok"}));
}

#[actix_web::test]
async fn readyz_is_ready_while_the_database_answers() {
    let app = spawn_app().await;

    let reply = app.get("/readyz", None).await;

    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, serde_json::json!({"status": "ready"}));
}

#[actix_web::test]
async fn readyz_is_503_with_retry_after_when_the_database_is_gone() {
    let app = spawn_app().await;
    app.db.cut_off();

    let reply = app.get("/readyz", None).await;
    let login = app.login("alice", "correct horse").await;

    assert_eq!(reply.status, 503, "{}", reply.text);
    assert_eq!(reply.error(), "unavailable");
    assert!(!reply.header("retry-after").is_empty());
    assert_eq!(login.status, 503, "{}", login.text);
    assert!(!login.header("retry-after").is_empty());
}

#[actix_web::test]
async fn jwks_publishes_the_signing_key_by_thumbprint() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", "correct horse").await;

    let reply = app.get("/.well-known/jwks.json", None).await;

    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("cache-control"), "public, max-age=300");
    let key = &reply.body["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["e"], "AQAB");
    assert!(key.get("d").is_none(), "no private material");
    let header = jsonwebtoken::decode_header(&user.access_token).unwrap();
    assert_eq!(header.kid.as_deref(), key["kid"].as_str());
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
}

#[actix_web::test]
async fn a_previous_key_is_published_and_its_tokens_still_verify() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let app = crate::helpers::spawn_app_with(&[(
        "JWT_PREVIOUS_PUBLIC_KEY_PATHS",
        &format!("{fixtures}/rsa2048-spki.pub.pem"),
    )])
    .await;
    let user = app.signed_up("alice", "correct horse").await;
    let old_private = std::fs::read(format!("{fixtures}/rsa2048-pkcs1.pem")).unwrap();
    let old_kid = tessera::auth::keys::KeySet::from_private_pem(&old_private)
        .unwrap()
        .current_kid()
        .to_owned();
    let jwks = app.get("/.well-known/jwks.json", None).await;
    let kids: Vec<&str> = jwks.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    // Re-sign the server's own claims with the previous key.
    let claims: serde_json::Value = jsonwebtoken::dangerous::insecure_decode(&user.access_token)
        .map(|data: jsonwebtoken::TokenData<serde_json::Value>| data.claims)
        .unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.typ = Some("at+jwt".into());
    header.kid = Some(old_kid.clone());
    let old_token = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(&old_private).unwrap(),
    )
    .unwrap();

    let reply = app.me(&old_token).await;

    assert_eq!(kids.len(), 2);
    assert!(kids.contains(&old_kid.as_str()));
    assert_eq!(reply.status, 200, "{}", reply.text);
}
