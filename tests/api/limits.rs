//! The login rate limit and CORS.

use crate::helpers::{spawn_app_with, Reply, TestApp};

#[actix_web::test]
async fn the_rate_limit_gives_429_after_n_attempts_and_recovers() {
    // 20 per minute: a burst of 20, then one more attempt every 3 s.
    let app = spawn_app_with(&[("AUTH_RATE_LIMIT_PER_MINUTE", "20")]).await;
    let mut statuses = Vec::new();
    for i in 0..21 {
        // Registration and login share the quota.
        let reply = if i % 2 == 0 {
            app.login("nobody", "wrong password").await
        } else {
            app.register(&format!("user{i}"), "correct horse").await
        };
        statuses.push(reply.status);
    }
    assert!(statuses[..20].iter().all(|s| *s != 429), "{statuses:?}");
    assert_eq!(statuses[20], 429, "{statuses:?}");
    let limited = app.login("nobody", "wrong password").await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.error(), "rate_limited");
    assert!(!limited.header("x-request-id").is_empty());
    let retry_after: u64 = limited.header("retry-after").parse().unwrap();
    assert!((1..=3).contains(&retry_after), "{retry_after}");

    // Refresh, logout and the private API are not limited.
    assert_eq!(app.refresh("whatever").await.status, 401);
    assert_eq!(app.logout("whatever").await.status, 204);

    tokio::time::sleep(std::time::Duration::from_millis(1000 * retry_after + 100)).await;
    assert_eq!(app.login("nobody", "wrong password").await.status, 401);
}

#[actix_web::test]
async fn forwarded_for_keys_the_limit_only_when_trusted() {
    let app = spawn_app_with(&[
        ("AUTH_RATE_LIMIT_PER_MINUTE", "2"),
        ("TRUST_FORWARDED_FOR", "true"),
    ])
    .await;
    let from = |ip: &'static str| {
        app.client
            .post(app.url("/auth/token"))
            .header("x-forwarded-for", ip)
            .json(&serde_json::json!({"username": "nobody", "password": "wrong password"}))
    };
    for _ in 0..2 {
        assert_eq!(app.send(from("203.0.113.1")).await.status, 401);
    }
    assert_eq!(app.send(from("203.0.113.1")).await.status, 429);
    assert_eq!(app.send(from("203.0.113.2")).await.status, 401);
}

/// A CORS preflight for `/api/me` from the allowed test origin.
async fn preflight(app: &TestApp, method: &str, headers: Option<&str>) -> Reply {
    let mut request = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/me"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", method);
    if let Some(headers) = headers {
        request = request.header("access-control-request-headers", headers);
    }
    app.send(request).await
}

#[actix_web::test]
async fn a_cors_preflight_to_a_private_route_is_answered_without_a_token() {
    let app = spawn_app_with(&[("CORS_ALLOWED_ORIGINS", "https://app.example.com")]).await;

    let reply = preflight(&app, "GET", Some("authorization")).await;

    assert!(
        reply.status == 200 || reply.status == 204,
        "{}",
        reply.status
    );
    assert_eq!(
        reply.header("access-control-allow-origin"),
        "https://app.example.com"
    );
    let allowed = reply
        .header("access-control-allow-headers")
        .to_ascii_lowercase();
    assert!(allowed.contains("authorization"), "{allowed}");
    let methods = reply.header("access-control-allow-methods");
    assert!(methods.contains("DELETE"), "{methods}");
    // An actual request from the origin carries the CORS header too.
    let simple = app
        .send(
            app.client
                .get(app.url("/healthz"))
                .header("origin", "https://app.example.com"),
        )
        .await;
    assert_eq!(
        simple.header("access-control-allow-origin"),
        "https://app.example.com"
    );
}

#[actix_web::test]
async fn a_refused_cors_preflight_is_still_a_json_envelope() {
    let app = spawn_app_with(&[("CORS_ALLOWED_ORIGINS", "https://app.example.com")]).await;

    // PATCH is no method of the API (PUT is: PUT /api/me/email).
    let reply = preflight(&app, "PATCH", None).await;

    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.error(), "invalid_request");
    assert!(reply.body["message"].is_string());
    assert!(!reply.header("x-request-id").is_empty());
}

#[actix_web::test]
async fn without_configured_origins_no_cors_headers_are_sent() {
    let app = spawn_app_with(&[]).await;

    let reply = app
        .send(
            app.client
                .get(app.url("/healthz"))
                .header("origin", "https://evil.example"),
        )
        .await;

    assert_eq!(reply.status, 200);
    assert!(reply.headers.get("access-control-allow-origin").is_none());
}

#[actix_web::test]
async fn other_origins_get_no_cors_headers() {
    let app = spawn_app_with(&[("CORS_ALLOWED_ORIGINS", "https://app.example.com")]).await;

    let reply = app
        .send(
            app.client
                .get(app.url("/healthz"))
                .header("origin", "https://evil.example"),
        )
        .await;

    assert!(reply.headers.get("access-control-allow-origin").is_none());
}
