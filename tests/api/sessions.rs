//! Per-device sessions: listing, revoking one, revoking all.

use crate::helpers::spawn_app;

#[actix_web::test]
async fn two_logins_show_two_sessions_and_exactly_one_is_current() {
    let app = spawn_app().await;
    let phone = app.signed_up("alice", "correct horse").await;
    let laptop = app
        .send(
            app.client
                .post(app.url("/auth/token"))
                .header("user-agent", "Laptop/1.0")
                .json(&serde_json::json!({"username": "alice", "password": "correct horse"})),
        )
        .await;

    let reply = app.sessions(&phone.access_token).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    let sessions = reply.body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    let current: Vec<_> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    let me = app.me(&phone.access_token).await;
    assert_eq!(current[0]["session_id"], me.body["session_id"]);
    let other = sessions.iter().find(|s| s["current"] == false).unwrap();
    assert_eq!(other["user_agent"], "Laptop/1.0");
    assert_eq!(other["ip"], "127.0.0.1");
    for field in ["created_at", "last_used_at", "expires_at"] {
        assert!(chrono::DateTime::parse_from_rfc3339(other[field].as_str().unwrap()).is_ok());
    }
    assert_eq!(laptop.status, 200);
}

#[actix_web::test]
async fn revoking_one_session_leaves_the_other_working() {
    let app = spawn_app().await;
    let phone = app.signed_up("alice", "correct horse").await;
    let laptop = app.login("alice", "correct horse").await;
    let laptop_sid = app.me(&laptop.str("access_token")).await.str("session_id");

    let reply = app.revoke_session(&phone.access_token, &laptop_sid).await;

    assert_eq!(reply.status, 204, "{}", reply.text);
    assert_eq!(
        app.refresh(&laptop.str("refresh_token")).await.error(),
        "invalid_grant"
    );
    assert_eq!(app.refresh(&phone.refresh_token).await.status, 200);
    let listed = app.sessions(&phone.access_token).await;
    assert_eq!(listed.body["sessions"].as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn foreign_unknown_and_malformed_session_ids_are_all_404() {
    let app = spawn_app().await;
    let alice = app.signed_up("alice", "correct horse").await;
    let bob = app.signed_up("bobby", "correct horse").await;
    let bob_sid = app.me(&bob.access_token).await.str("session_id");

    for id in [
        bob_sid.as_str(),
        &uuid::Uuid::new_v4().to_string(),
        "not-a-uuid",
        "%00",
    ] {
        let reply = app.revoke_session(&alice.access_token, id).await;
        assert_eq!(reply.status, 404, "{id}: {}", reply.text);
        assert_eq!(reply.error(), "not_found");
    }
    assert_eq!(app.refresh(&bob.refresh_token).await.status, 200);
}

#[actix_web::test]
async fn deleting_all_sessions_logs_out_everywhere() {
    let app = spawn_app().await;
    let phone = app.signed_up("alice", "correct horse").await;
    let laptop = app.login("alice", "correct horse").await;

    let reply = app.revoke_all_sessions(&phone.access_token).await;

    assert_eq!(reply.status, 204);
    assert_eq!(app.refresh(&phone.refresh_token).await.status, 401);
    assert_eq!(app.refresh(&laptop.str("refresh_token")).await.status, 401);
    for token in [phone.access_token.clone(), laptop.str("access_token")] {
        let listed = app.sessions(&token).await;
        assert_eq!(listed.status, 401, "{}", listed.text);
        assert_eq!(listed.error(), "invalid_token");
    }
    let again = app
        .login("alice", "correct horse")
        .await
        .str("access_token");
    let listed = app.sessions(&again).await;
    assert_eq!(listed.body["sessions"].as_array().map(Vec::len), Some(1));
}

#[actix_web::test]
async fn refresh_updates_last_used_at() {
    let app = spawn_app().await;
    let phone = app.signed_up("alice", "correct horse").await;
    app.sql("UPDATE sessions SET last_used_at = now() - interval '1 day'");
    let before = app.sessions(&phone.access_token).await;

    app.refresh(&phone.refresh_token).await;

    let after = app.sessions(&phone.access_token).await;
    let t = |r: &crate::helpers::Reply| {
        chrono::DateTime::parse_from_rfc3339(
            r.body["sessions"][0]["last_used_at"].as_str().unwrap(),
        )
        .unwrap()
    };
    assert!(t(&after) > t(&before));
}
