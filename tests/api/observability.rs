//! OpenAPI document, Prometheus metrics, and what the logs may not contain.

use std::collections::HashSet;

use crate::helpers::{spawn_app, spawn_app_with};

#[actix_web::test]
async fn every_registered_route_appears_in_the_openapi_document() {
    let app = spawn_app().await;

    let reply = app.get("/openapi.json", None).await;

    assert_eq!(reply.status, 200);
    assert!(reply.str("openapi").starts_with("3."));
    let paths = reply.body["paths"].as_object().expect("paths");
    let mut documented = HashSet::new();
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    let registered: HashSet<(String, String)> = tessera::routes::endpoints()
        .iter()
        .map(|e| (e.method.to_string(), e.path.to_owned()))
        .collect();
    assert_eq!(registered, documented);
    for endpoint in tessera::routes::endpoints() {
        let op = &paths[endpoint.path][endpoint.method.as_str().to_ascii_lowercase()];
        let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
        assert_eq!(
            secured,
            endpoint.access == tessera::routes::Access::Private,
            "{} {}",
            endpoint.method,
            endpoint.path
        );
    }
    assert_eq!(
        reply.body["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(reply.body["components"]["schemas"]["ErrorBody"].is_object());
}

#[actix_web::test]
async fn registered_routes_answer_something_other_than_404() {
    let app = spawn_app().await;
    for endpoint in tessera::routes::endpoints() {
        let path = endpoint
            .path
            .replace("{session_id}", &uuid::Uuid::new_v4().to_string());
        let reply = app
            .send(app.client.request(
                reqwest::Method::from_bytes(endpoint.method.as_str().as_bytes()).unwrap(),
                app.url(&path),
            ))
            .await;
        assert_ne!(reply.status, 405, "{} {}", endpoint.method, endpoint.path);
        if endpoint.path != "/api/sessions/{session_id}" {
            assert_ne!(reply.status, 404, "{} {}", endpoint.method, endpoint.path);
        }
    }
}

#[actix_web::test]
async fn metrics_count_requests_by_route_pattern_and_auth_events() {
    let app = spawn_app_with(&[("AUTH_RATE_LIMIT_PER_MINUTE", "3")]).await;
    let user = app.signed_up("alice", "correct horse").await;
    app.login("alice", "wrong horse").await;
    app.refresh(&user.refresh_token).await;
    app.refresh(&user.refresh_token).await; // grace retry
    let sid = uuid::Uuid::new_v4();
    app.send(
        app.client
            .delete(app.url(&format!("/api/sessions/{sid}")))
            .bearer_auth(&user.access_token),
    )
    .await;
    app.login("alice", "wrong horse").await; // 4th limited request

    let reply = app.get("/metrics", None).await;

    assert_eq!(reply.status, 200);
    assert!(reply.header("content-type").starts_with("text/plain"));
    let text = &reply.text;
    for needle in [
        "tessera_http_requests_total{endpoint=\"/api/sessions/{session_id}\",method=\"DELETE\",status=\"404\"} 1",
        "tessera_http_requests_duration_seconds_bucket{endpoint=\"/auth/token\"",
        "tessera_logins_total{result=\"success\"} 1",
        "tessera_logins_total{result=\"failure\"} 1",
        "tessera_tokens_issued_total{kind=\"access\"} 3",
        "tessera_tokens_issued_total{kind=\"refresh\"} 2", // a grace retry issues none
        "tessera_refresh_reuse_total{outcome=\"grace\"} 1",
        "tessera_rate_limited_total 1",
        "tessera_db_pool_connections{state=\"idle\"}",
        "tessera_db_pool_connections{state=\"in_use\"}",
    ] {
        assert!(text.contains(needle), "missing {needle}\n{text}");
    }
    assert!(
        !text.contains(&sid.to_string()),
        "raw ids must not become series"
    );
}
