//! The OpenAPI document agrees with the server's behaviour, and the server
//! survives what the document lets a client send: what the work on
//! scripts/api-fuzz.sh (schemathesis) found, pinned down as tests.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

/// The served document.
async fn document(app: &TestApp) -> Value {
    let reply = app.get("/openapi.json", None).await;
    assert_eq!(reply.status, 200);
    reply.body
}

/// The statuses an operation documents, e.g. `["200", "401"]`.
fn documented_statuses(doc: &Value, method: &str, path: &str) -> Vec<String> {
    doc["paths"][path][method]["responses"]
        .as_object()
        .unwrap_or_else(|| panic!("{method} {path} is not documented"))
        .keys()
        .cloned()
        .collect()
}

/// A schema keyword as a number, e.g. `minLength`.
fn keyword(schema: &Value, name: &str) -> usize {
    schema[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no {name} in {schema}")) as usize
}

#[actix_web::test]
async fn every_status_a_json_body_route_answers_to_a_bad_body_is_documented() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", "correct horse").await;
    let doc = document(&app).await;
    let bodied: Vec<(String, String)> = tessera::routes::endpoints()
        .iter()
        .map(|e| (e.method.as_str().to_ascii_lowercase(), e.path.to_owned()))
        .filter(|(method, path)| doc["paths"][path][method]["requestBody"].is_object())
        .collect();
    assert!(
        bodied.len() >= 6,
        "expected every JSON-body route: {bodied:?}"
    );
    let oversized = json!({ "padding": "x".repeat(17 * 1024) }).to_string();
    let bad_bodies: [(Option<&str>, String, u16); 4] = [
        (None, String::new(), 400),
        (Some("application/json"), "{not json".into(), 400),
        (Some("text/plain"), "hello".into(), 415),
        (Some("application/json"), oversized, 413),
    ];

    for (method, path) in &bodied {
        let documented = documented_statuses(&doc, method, path);
        // A stalled body (10 s, tested in resource_limits.rs) is 408.
        assert!(
            documented.contains(&"408".to_owned()),
            "{method} {path}: {documented:?}"
        );
        for (content_type, body, expected) in &bad_bodies {
            let mut request = app
                .client
                .request(method.to_uppercase().parse().unwrap(), app.url(path))
                .bearer_auth(&user.access_token)
                .body(body.clone());
            if let Some(content_type) = content_type {
                request = request.header("Content-Type", *content_type);
            }

            let reply = app.send(request).await;

            assert_eq!(reply.status, *expected, "{method} {path}: {}", reply.text);
            assert!(
                documented.contains(&reply.status.to_string()),
                "{method} {path} answered {} but documents only {documented:?}",
                reply.status
            );
        }
    }
}

#[actix_web::test]
async fn every_route_that_needs_the_database_documents_503() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    // Answered from memory or from the token alone.
    let without_database = [
        ("GET", "/healthz"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("GET", "/.well-known/jwks.json"),
        ("GET", "/api/me"),
    ];
    for endpoint in tessera::routes::endpoints() {
        let method = endpoint.method.as_str();
        if without_database.contains(&(method, endpoint.path)) {
            continue;
        }
        let documented = documented_statuses(&doc, &method.to_ascii_lowercase(), endpoint.path);
        assert!(
            documented.contains(&"503".to_owned()),
            "{method} {}: {documented:?}",
            endpoint.path
        );
    }
}

#[actix_web::test]
async fn the_registration_schema_limits_are_the_servers_limits() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let schema = &doc["components"]["schemas"]["Registration"]["properties"];
    let (name_min, name_max) = (
        keyword(&schema["username"], "minLength"),
        keyword(&schema["username"], "maxLength"),
    );
    let (pass_min, pass_max) = (
        keyword(&schema["password"], "minLength"),
        keyword(&schema["password"], "maxLength"),
    );
    let password = "p".repeat(8);
    let name = |len: usize, tag: char| format!("{tag}{}", "a".repeat(len - 1));

    for (username, status) in [
        (name(name_min, 'b'), 201),
        (name(name_max, 'c'), 201),
        (name(name_min - 1, 'd'), 422),
        (name(name_max + 1, 'e'), 422),
        ("f a".to_owned(), 422), // outside the documented pattern
    ] {
        let reply = app.register(&username, &password).await;
        assert_eq!(reply.status, status, "username of {}", username.len());
    }
    // The password rule counts UTF-8 bytes (8–72) and JSON Schema counts
    // characters: the documented bounds must be exactly the widest ones,
    // reached with 4-byte characters at the bottom and ASCII at the top.
    for (i, (password, status)) in [
        ("𝄞".repeat(pass_min), 201),
        ("r".repeat(pass_max), 201),
        ("𝄞".repeat(pass_min - 1), 422),
        ("t".repeat(pass_max + 1), 422),
    ]
    .into_iter()
    .enumerate()
    {
        let reply = app.register(&format!("user{i}"), &password).await;
        assert_eq!(reply.status, status, "password of {} bytes", password.len());
    }
}

#[actix_web::test]
async fn a_login_with_a_name_outside_the_registration_rules_is_just_wrong_credentials() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let login_schema = &doc["components"]["schemas"]["Credentials"]["properties"];
    assert!(login_schema["username"].get("pattern").is_none());
    assert!(login_schema["password"].get("minLength").is_none());

    let reply = app.login("x", "").await;

    assert_eq!(reply.status, 401);
    assert_eq!(reply.error(), "invalid_credentials");
}

#[actix_web::test]
async fn the_documented_page_size_bounds_are_the_servers_bounds() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let doc = document(&app).await;
    let limit = doc["paths"]["/api/admin/users"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .expect("limit parameter")["schema"]
        .clone();
    let (min, max) = (keyword(&limit, "minimum"), keyword(&limit, "maximum"));

    for (value, status) in [(min, 200), (max, 200), (min - 1, 422), (max + 1, 422)] {
        let reply = app
            .get(&format!("/api/admin/users?limit={value}"), Some(&token))
            .await;
        assert_eq!(reply.status, status, "limit={value}: {}", reply.text);
    }
}

#[actix_web::test]
async fn every_link_names_a_real_operation_and_its_parameters() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let operations: Vec<(&str, &Value)> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|op| op["operationId"].as_str().map(|id| (id, op)))
        .collect();
    let mut links = 0;
    for (_, op) in &operations {
        for response in op["responses"].as_object().unwrap().values() {
            let Some(map) = response.get("links").and_then(Value::as_object) else {
                continue;
            };
            for (name, link) in map {
                links += 1;
                let target = link["operationId"].as_str().unwrap_or_else(|| {
                    panic!("link {name} has no operationId (camelCase): {link}")
                });
                let (_, target_op) = operations
                    .iter()
                    .find(|(id, _)| *id == target)
                    .unwrap_or_else(|| panic!("link {name} targets unknown {target}"));
                for param in link["parameters"].as_object().into_iter().flatten() {
                    let declared = target_op["parameters"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|p| p["name"] == *param.0);
                    assert!(
                        declared,
                        "link {name}: {target} has no parameter {}",
                        param.0
                    );
                }
                if link.get("requestBody").is_some() {
                    assert!(
                        target_op["requestBody"].is_object(),
                        "link {name}: {target} takes no body"
                    );
                }
            }
        }
    }
    assert!(
        links >= 5,
        "expected the register/token/refresh/sessions links, found {links}"
    );
}

#[actix_web::test]
async fn a_cursor_before_postgres_earliest_timestamp_is_422_not_500() {
    use base64::Engine;
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let cursor = |micros: i64| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("{micros}.{}", uuid::Uuid::nil()))
    };

    // Year 95 000 BC: chrono holds it, PostgreSQL's timestamptz does not.
    let before = app
        .get(
            &format!(
                "/api/admin/users?after={}",
                cursor(-3_000_000_000_000_000_000)
            ),
            Some(&token),
        )
        .await;
    // Year 4 713 BC: the earliest instant PostgreSQL holds.
    let earliest = app
        .get(
            &format!(
                "/api/admin/users?after={}",
                cursor(-210_866_803_200_000_000)
            ),
            Some(&token),
        )
        .await;

    assert_eq!(before.status, 422, "{}", before.text);
    assert_eq!(
        before.body["fields"]["after"].as_str().map(str::is_empty),
        Some(false)
    );
    assert_eq!(earliest.status, 200, "{}", earliest.text);
    assert_eq!(earliest.body["users"].as_array().map(Vec::len), Some(1));
}
