//! Register, log in, refresh (rotation, grace, reuse), logout, `/api/me`.

use serde_json::json;

use crate::helpers::spawn_app;

#[actix_web::test]
async fn register_returns_201_with_the_lower_cased_user() {
    let app = spawn_app().await;

    let reply = app.register("Alice", "correct horse").await;

    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.str("username"), "alice");
    assert!(uuid::Uuid::parse_str(&reply.str("user_id")).is_ok());
    assert!(chrono::DateTime::parse_from_rfc3339(&reply.str("created_at")).is_ok());
}

#[actix_web::test]
async fn register_with_a_taken_username_in_any_case_is_409() {
    let app = spawn_app().await;
    app.register("alice", "correct horse").await;

    let reply = app.register("ALICE", "another pass").await;

    assert_eq!(reply.status, 409);
    assert_eq!(reply.error(), "username_taken");
}

#[actix_web::test]
async fn invalid_registrations_are_422_with_fields() {
    let app = spawn_app().await;
    for (username, password, field) in [
        ("ab", "correct horse", "username"),
        ("a".repeat(33).as_str(), "correct horse", "username"),
        ("bad name", "correct horse", "username"),
        ("nul\u{0}name", "correct horse", "username"),
        ("alice", "short", "password"),
        ("alice", &"x".repeat(73), "password"),
        ("alice", "pass\u{0}word", "password"),
    ] {
        let reply = app.register(username, password).await;
        assert_eq!(
            reply.status, 422,
            "{username:?}/{password:?}: {}",
            reply.text
        );
        assert_eq!(reply.error(), "validation_failed");
        assert!(reply.body["fields"][field].is_string(), "{}", reply.text);
    }
    // Exactly 72 bytes is accepted: bcrypt keeps all of it.
    assert_eq!(app.register("alice", &"x".repeat(72)).await.status, 201);
}

#[actix_web::test]
async fn login_returns_the_lesson_shape_and_rfc6749_fields() {
    let app = spawn_app().await;
    app.register("alice", "correct horse").await;

    let reply = app.login("Alice", "correct horse").await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.header("cache-control"), "no-store");
    assert_eq!(reply.str("token"), reply.str("access_token"));
    assert_eq!(reply.str("token_type"), "Bearer");
    assert_eq!(
        reply.body["expires_in"],
        app.settings.access_token_ttl_seconds
    );
    assert_eq!(
        reply.body["refresh_expires_in"],
        app.settings.refresh_token_ttl_seconds
    );
    assert_eq!(reply.str("refresh_token").len(), 43);
    assert!(!reply.str("user_id").is_empty());
}

#[actix_web::test]
async fn login_failures_look_the_same_for_unknown_users_and_wrong_passwords() {
    let app = spawn_app().await;
    app.register("alice", "correct horse").await;

    let wrong_password = app.login("alice", "wrong horse").await;
    let unknown_user = app.login("bob", "correct horse").await;
    let nul = app.login("ali\u{0}ce", "correct\u{0}horse").await;
    let huge = app
        .login(&"a".repeat(7 * 1024), &"b".repeat(7 * 1024))
        .await;
    let long_password = app
        .login("alice", &format!("correct horse{}", "!".repeat(70)))
        .await;

    for reply in [&wrong_password, &unknown_user, &nul, &huge, &long_password] {
        assert_eq!(reply.status, 401, "{}", reply.text);
        assert_eq!(reply.error(), "invalid_credentials");
    }
    assert_eq!(wrong_password.body["message"], unknown_user.body["message"]);
}

#[actix_web::test]
async fn me_answers_from_the_token() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", "correct horse").await;

    let reply = app.me(&user.access_token).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.str("user_id"), user.user_id);
    assert_eq!(reply.str("username"), "alice");
    assert_eq!(reply.body["roles"], json!([]));
    assert!(uuid::Uuid::parse_str(&reply.str("session_id")).is_ok());
    assert!(chrono::DateTime::parse_from_rfc3339(&reply.str("expires_at")).is_ok());
}

#[actix_web::test]
async fn refresh_rotates_the_token_and_issues_a_new_access_token() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", "correct horse").await;

    let reply = app.refresh(&user.refresh_token).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.header("cache-control"), "no-store");
    assert_ne!(reply.str("refresh_token"), user.refresh_token);
    assert_eq!(app.me(&reply.str("access_token")).await.status, 200);
    // The new token works in turn.
    assert_eq!(app.refresh(&reply.str("refresh_token")).await.status, 200);
}

#[actix_web::test]
async fn a_retry_within_the_grace_window_returns_the_same_refresh_token() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", "correct horse").await;

    let first = app.refresh(&user.refresh_token).await;
    let retry = app.refresh(&user.refresh_token).await;

    assert_eq!(retry.status, 200, "{}", retry.text);
    assert_eq!(retry.str("refresh_token"), first.str("refresh_token"));
    // The session is still alive: the shared successor rotates normally.
    assert_eq!(app.refresh(&first.str("refresh_token")).await.status, 200);
}

#[actix_web::test]
async fn reusing_an_older_spent_token_revokes_the_whole_session() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", "correct horse").await;
    let second = app.refresh(&user.refresh_token).await.str("refresh_token");
    let third = app.refresh(&second).await.str("refresh_token");

    // The first token is spent and not the most recent: reuse.
    let reuse = app.refresh(&user.refresh_token).await;

    assert_eq!(reuse.status, 401);
    assert_eq!(reuse.error(), "invalid_grant");
    let after = app.refresh(&third).await;
    assert_eq!(after.status, 401, "the live token died with the session");
    assert_eq!(after.error(), "invalid_grant");
}

#[actix_web::test]
async fn with_strict_rotation_any_retry_is_reuse() {
    let app = crate::helpers::spawn_app_with(&[("REFRESH_REUSE_GRACE_SECONDS", "0")]).await;
    let user = app.signed_up("alice", "correct horse").await;
    let next = app.refresh(&user.refresh_token).await.str("refresh_token");

    let retry = app.refresh(&user.refresh_token).await;

    assert_eq!(retry.status, 401);
    assert_eq!(app.refresh(&next).await.status, 401);
}

#[actix_web::test]
async fn a_retry_after_the_grace_window_is_reuse() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", "correct horse").await;
    let next = app.refresh(&user.refresh_token).await.str("refresh_token");
    // Age the spend past the 10 s grace instead of sleeping.
    app.sql("UPDATE refresh_tokens SET spent_at = spent_at - interval '11 seconds'");

    assert_eq!(app.refresh(&user.refresh_token).await.status, 401);
    assert_eq!(app.refresh(&next).await.status, 401);
}

#[actix_web::test]
async fn refresh_moves_the_session_expiry_forward() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", "correct horse").await;
    app.sql("UPDATE sessions SET expires_at = now() + interval '1 hour'");

    let reply = app.refresh(&user.refresh_token).await;

    assert_eq!(reply.status, 200);
    assert!(reply.body["refresh_expires_in"].as_i64().unwrap() > 2_591_000);
}

#[actix_web::test]
async fn an_expired_session_cannot_refresh() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", "correct horse").await;
    app.sql("UPDATE sessions SET expires_at = now() - interval '1 second'");

    let reply = app.refresh(&user.refresh_token).await;

    assert_eq!(reply.status, 401);
    assert_eq!(reply.error(), "invalid_grant");
}

#[actix_web::test]
async fn unknown_refresh_tokens_are_invalid_grant() {
    let app = spawn_app().await;

    for token in ["", "nope", &"A".repeat(43), "nul\u{0}token"] {
        let reply = app.refresh(token).await;
        assert_eq!(reply.status, 401, "{token:?}");
        assert_eq!(reply.error(), "invalid_grant");
    }
}

#[actix_web::test]
async fn logout_revokes_the_session_with_a_live_token() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", "correct horse").await;

    let reply = app.logout(&user.refresh_token).await;

    assert_eq!(reply.status, 204);
    assert_eq!(
        app.refresh(&user.refresh_token).await.error(),
        "invalid_grant"
    );
}

#[actix_web::test]
async fn logout_with_a_spent_token_revokes_the_session() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", "correct horse").await;
    let live = app.refresh(&user.refresh_token).await.str("refresh_token");

    assert_eq!(app.logout(&user.refresh_token).await.status, 204);

    assert_eq!(app.refresh(&live).await.status, 401);
}

#[actix_web::test]
async fn logout_with_unknown_or_revoked_tokens_is_still_204() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", "correct horse").await;
    app.logout(&user.refresh_token).await;

    assert_eq!(app.logout(&user.refresh_token).await.status, 204);
    assert_eq!(app.logout("unknown").await.status, 204);
}

#[actix_web::test]
async fn each_login_is_its_own_session() {
    let app = spawn_app().await;
    let phone = app.signed_up("alice", "correct horse").await;
    let tablet = app.login("alice", "correct horse").await;

    app.logout(&phone.refresh_token).await;

    assert_eq!(app.refresh(&tablet.str("refresh_token")).await.status, 200);
}

#[actix_web::test]
async fn refresh_tokens_are_never_stored_raw() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", "correct horse").await;
    let next = app.refresh(&user.refresh_token).await.str("refresh_token");

    use diesel::prelude::*;
    let mut conn = app.db.connect();
    #[derive(QueryableByName)]
    struct Dump {
        #[diesel(sql_type = diesel::sql_types::Text)]
        dump: String,
    }
    let dump: Dump = diesel::sql_query(
        "SELECT coalesce(string_agg(encode(token_hash, 'escape') || coalesce(encode(sealed_successor, 'escape'), ''), ''), '') AS dump FROM refresh_tokens",
    )
    .get_result(&mut conn)
    .unwrap();
    assert!(!dump.dump.contains(&user.refresh_token));
    assert!(!dump.dump.contains(&next));
}

/// How many refresh-token rows of the test database keep a sealed successor.
fn sealed_successors(app: &crate::helpers::TestApp) -> i64 {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = app.db.connect();
    diesel::sql_query("SELECT count(*) AS n FROM refresh_tokens WHERE sealed_successor IS NOT NULL")
        .get_result::<Count>(&mut conn)
        .unwrap()
        .n
}

#[actix_web::test]
async fn only_the_newest_spent_token_keeps_its_sealed_successor() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", "correct horse").await;
    let mut token = user.refresh_token;

    for _ in 0..3 {
        token = app.refresh(&token).await.str("refresh_token");
    }

    assert_eq!(sealed_successors(&app), 1);
}

#[actix_web::test]
async fn strict_rotation_keeps_no_sealed_successors() {
    let app = crate::helpers::spawn_app_with(&[("REFRESH_REUSE_GRACE_SECONDS", "0")]).await;
    let user = app.signed_up("alice", "correct horse").await;

    let next = app.refresh(&user.refresh_token).await.str("refresh_token");
    app.refresh(&next).await;

    assert_eq!(sealed_successors(&app), 0);
}

#[actix_web::test]
async fn a_login_after_a_cost_change_rehashes_the_password() {
    let app = crate::helpers::spawn_app_with(&[("BCRYPT_COST", "5")]).await;
    app.register("alice", "correct horse").await;
    let cost4 = bcrypt::hash("correct horse", 4).unwrap();
    app.sql(&format!("UPDATE users SET password_hash = '{cost4}'"));

    assert_eq!(app.login("alice", "correct horse").await.status, 200);

    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Hash {
        #[diesel(sql_type = diesel::sql_types::Text)]
        password_hash: String,
    }
    let mut rehashed = false;
    for _ in 0..50 {
        let mut conn = app.db.connect();
        let row: Hash = diesel::sql_query("SELECT password_hash FROM users")
            .get_result(&mut conn)
            .unwrap();
        if row.password_hash.starts_with("$2b$05$") {
            rehashed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(rehashed);
    assert_eq!(app.login("alice", "correct horse").await.status, 200);
}
