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
