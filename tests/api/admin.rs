//! Roles, the admin CLI, and the admin user listing.

use std::collections::HashSet;

use crate::helpers::spawn_app;

#[actix_web::test]
async fn a_granted_role_shows_in_the_next_token_from_login_and_refresh() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", "correct horse").await;

    let out = app.cli_role("grant-role", "ALICE", "admin");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = app.cli_role("grant-role", "alice", "admin");
    assert!(again.status.success(), "granting twice is a no-op");

    let refreshed = app.refresh(&user.refresh_token).await;
    let me = app.me(&refreshed.str("access_token")).await;
    assert_eq!(me.body["roles"], serde_json::json!(["admin"]));
    let login = app.login("alice", "correct horse").await;
    assert_eq!(
        app.me(&login.str("access_token")).await.body["roles"],
        serde_json::json!(["admin"])
    );

    let out = app.cli_role("revoke-role", "alice", "admin");
    assert!(out.status.success());
    let login = app.login("alice", "correct horse").await;
    assert_eq!(
        app.me(&login.str("access_token")).await.body["roles"],
        serde_json::json!([])
    );
}

#[actix_web::test]
async fn granting_a_role_to_an_unknown_user_exits_1_with_a_clear_line() {
    let app = spawn_app().await;

    let out = app.cli_role("grant-role", "nobody", "admin");

    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such user: nobody"));
}

#[actix_web::test]
async fn non_admins_get_403_insufficient_scope() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", "correct horse").await;

    let reply = app.get("/api/admin/users", Some(&user.access_token)).await;

    assert_eq!(reply.status, 403);
    assert_eq!(reply.error(), "insufficient_scope");
    assert!(reply
        .header("www-authenticate")
        .contains("error=\"insufficient_scope\""));
}

#[actix_web::test]
async fn pagination_visits_every_user_exactly_once() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    for i in 0..7 {
        app.register(&format!("user{i}"), "correct horse").await;
    }

    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &next {
            Some(cursor) => format!("/api/admin/users?limit=3&after={cursor}"),
            None => "/api/admin/users?limit=3".to_owned(),
        };
        let reply = app.get(&path, Some(&token)).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        pages += 1;
        for user in reply.body["users"].as_array().unwrap() {
            assert!(user["user_id"].is_string() && user["created_at"].is_string());
            assert!(user["roles"].is_array());
            seen.push(user["username"].as_str().unwrap().to_owned());
        }
        match reply.body["next"].as_str() {
            Some(cursor) => next = Some(cursor.to_owned()),
            None => break,
        }
    }

    assert_eq!(seen.len(), 8);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 8);
    assert_eq!(pages, 3);
}

#[actix_web::test]
async fn a_bad_limit_or_cursor_is_422_naming_the_field() {
    let app = spawn_app().await;
    let token = app.admin_token().await;

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=abc", "limit"),
        ("after=not-a-cursor", "after"),
        ("after=bm9wZQ", "after"),
        ("after=", "after"),
        ("limit=%2B5", "limit"),
    ] {
        let reply = app
            .get(&format!("/api/admin/users?{query}"), Some(&token))
            .await;
        assert_eq!(reply.status, 422, "{query}: {}", reply.text);
        assert_eq!(reply.error(), "validation_failed");
        assert!(
            reply.body["fields"][field].is_string(),
            "{query}: {}",
            reply.text
        );
    }
}
