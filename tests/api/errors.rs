//! The error envelope for framework-level failures, and `x-request-id`.

use serde_json::json;

use crate::helpers::spawn_app;

#[actix_web::test]
async fn malformed_json_is_400_invalid_request() {
    let app = spawn_app().await;

    let reply = app
        .send(
            app.client
                .post(app.url("/auth/token"))
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;

    assert_eq!(reply.status, 400);
    assert_eq!(reply.error(), "invalid_request");
    assert!(reply.body["message"].is_string());
}

#[actix_web::test]
async fn missing_and_mistyped_fields_are_400() {
    let app = spawn_app().await;
    for body in [
        json!({"username": "alice"}),
        json!({"username": 5, "password": "x"}),
        json!([]),
        json!({"refresh": true}),
    ] {
        let reply = app.post_json("/auth/token", &body).await;
        assert_eq!(reply.status, 400, "{body}");
        assert_eq!(reply.error(), "invalid_request");
    }
}

#[actix_web::test]
async fn a_body_that_is_not_json_is_415() {
    let app = spawn_app().await;

    let reply = app
        .send(
            app.client
                .post(app.url("/auth/register"))
                .header("content-type", "text/plain")
                .body("username=alice"),
        )
        .await;

    assert_eq!(reply.status, 415);
    assert_eq!(reply.error(), "unsupported_media_type");
}

#[actix_web::test]
async fn a_missing_body_is_400_invalid_request() {
    let app = spawn_app().await;

    let reply = app.send(app.client.post(app.url("/auth/token"))).await;

    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.error(), "invalid_request");
}

#[actix_web::test]
async fn unknown_api_paths_are_404_even_without_a_token() {
    let app = spawn_app().await;

    let reply = app.get("/api/nothing-here", None).await;

    assert_eq!(reply.status, 404);
    assert_eq!(reply.error(), "not_found");
}

#[actix_web::test]
async fn a_body_over_16_kib_is_413() {
    let app = spawn_app().await;
    let big = json!({"username": "a".repeat(17 * 1024), "password": "x"});

    let reply = app.post_json("/auth/register", &big).await;

    assert_eq!(reply.status, 413);
    assert_eq!(reply.error(), "payload_too_large");
}

#[actix_web::test]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let app = spawn_app().await;

    let missing = app.get("/no/such/route", None).await;
    let wrong_method = app.get("/auth/token", None).await;
    let delete_health = app.send(app.client.delete(app.url("/healthz"))).await;

    assert_eq!(missing.status, 404);
    assert_eq!(missing.error(), "not_found");
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.error(), "method_not_allowed");
    assert_eq!(delete_health.status, 405);
    assert_eq!(delete_health.header("allow"), "GET, HEAD");
    assert_eq!(wrong_method.header("allow"), "POST");
}

#[actix_web::test]
async fn a_wrong_method_on_a_private_route_is_405_with_or_without_a_token() {
    let app = spawn_app().await;

    let without = app.send(app.client.put(app.url("/api/me"))).await;
    let on_sessions = app.send(app.client.post(app.url("/api/sessions"))).await;

    assert_eq!(without.status, 405, "{}", without.text);
    assert_eq!(without.error(), "method_not_allowed");
    assert_eq!(without.header("allow"), "GET, HEAD, DELETE");
    assert_eq!(on_sessions.status, 405);
}

#[actix_web::test]
async fn get_routes_answer_head() {
    let app = spawn_app().await;

    for path in [
        "/healthz",
        "/readyz",
        "/.well-known/jwks.json",
        "/openapi.json",
        "/metrics",
    ] {
        let reply = app.send(app.client.head(app.url(path))).await;
        assert_eq!(reply.status, 200, "{path}");
    }
    assert_eq!(
        app.send(app.client.head(app.url("/api/me"))).await.status,
        401
    );
}

#[actix_web::test]
async fn json_look_alike_media_types_are_415() {
    let app = spawn_app().await;
    for content_type in [
        "text/json",
        "application/vnd.api+json",
        "application/x-www-form-urlencoded",
    ] {
        let reply = app
            .send(
                app.client
                    .post(app.url("/auth/token"))
                    .header("content-type", content_type)
                    .body(r#"{"username":"a","password":"b"}"#),
            )
            .await;
        assert_eq!(reply.status, 415, "{content_type}");
        assert_eq!(reply.error(), "unsupported_media_type");
    }
    let with_charset = app
        .send(
            app.client
                .post(app.url("/auth/token"))
                .header("content-type", "application/json; charset=utf-8")
                .body(r#"{"username":"a","password":"b"}"#),
        )
        .await;
    assert_eq!(with_charset.status, 401);
    let spaced = app
        .send(
            app.client
                .post(app.url("/auth/token"))
                .header("content-type", "application/json ; charset=UTF-8")
                .body(r#"{"username":"a","password":"b"}"#),
        )
        .await;
    assert_eq!(spaced.status, 401);
    let untyped = app
        .send(
            app.client
                .post(app.url("/auth/token"))
                .body(r#"{"username":"a","password":"b"}"#),
        )
        .await;
    assert_eq!(untyped.status, 415);
}

#[actix_web::test]
async fn every_response_has_a_request_id_and_echoes_the_clients() {
    let app = spawn_app().await;

    let generated = app.get("/healthz", None).await;
    let echoed = app
        .send(
            app.client
                .get(app.url("/nope"))
                .header("x-request-id", "abc-123"),
        )
        .await;
    let unauthorized = app.get("/api/me", None).await;

    assert!(!generated.header("x-request-id").is_empty());
    assert_eq!(echoed.header("x-request-id"), "abc-123");
    assert!(!unauthorized.header("x-request-id").is_empty());
}
