//! Password change and account deletion.

use crate::helpers::spawn_app;

#[actix_web::test]
async fn a_password_change_keeps_this_session_and_kills_the_others() {
    let app = spawn_app().await;
    let phone = app.signed_up("alice", "correct horse").await;
    let laptop = app.login("alice", "correct horse").await;

    let reply = app
        .change_password(&phone.access_token, "correct horse", "battery staple")
        .await;

    assert_eq!(reply.status, 204, "{}", reply.text);
    assert_eq!(app.refresh(&phone.refresh_token).await.status, 200);
    assert_eq!(app.refresh(&laptop.str("refresh_token")).await.status, 401);
    assert_eq!(app.login("alice", "correct horse").await.status, 401);
    assert_eq!(app.login("alice", "battery staple").await.status, 200);
}

#[actix_web::test]
async fn a_wrong_current_password_is_401_and_changes_nothing() {
    let app = spawn_app().await;
    let phone = app.signed_up("alice", "correct horse").await;

    let reply = app
        .change_password(&phone.access_token, "wrong horse", "battery staple")
        .await;

    assert_eq!(reply.status, 401);
    assert_eq!(reply.error(), "invalid_credentials");
    assert_eq!(app.login("alice", "correct horse").await.status, 200);
}

#[actix_web::test]
async fn an_invalid_new_password_is_422_on_new_password() {
    let app = spawn_app().await;
    let phone = app.signed_up("alice", "correct horse").await;

    for bad in ["short", &"x".repeat(73), "nul\u{0}password"] {
        let reply = app
            .change_password(&phone.access_token, "correct horse", bad)
            .await;
        assert_eq!(reply.status, 422, "{}", reply.text);
        assert_eq!(reply.error(), "validation_failed");
        assert!(reply.body["fields"]["new_password"].is_string());
    }
    assert_eq!(app.login("alice", "correct horse").await.status, 200);
}

#[actix_web::test]
async fn deleting_the_account_kills_its_refresh_tokens_and_its_name_is_free() {
    let app = spawn_app().await;
    let phone = app.signed_up("alice", "correct horse").await;
    let laptop = app.login("alice", "correct horse").await;

    let reply = app
        .delete_account(&phone.access_token, "correct horse")
        .await;

    assert_eq!(reply.status, 204, "{}", reply.text);
    assert_eq!(
        app.refresh(&phone.refresh_token).await.error(),
        "invalid_grant"
    );
    assert_eq!(
        app.refresh(&laptop.str("refresh_token")).await.error(),
        "invalid_grant"
    );
    assert_eq!(app.login("alice", "correct horse").await.status, 401);
    assert_eq!(app.register("alice", "new password").await.status, 201);
}

#[actix_web::test]
async fn a_deleted_account_s_tokens_are_refused_like_a_revoked_session_s_on_every_route() {
    let app = spawn_app().await;
    let phone = app.signed_up("alice", "correct horse").await;
    let laptop = app
        .login("alice", "correct horse")
        .await
        .str("access_token");
    let deleted = app
        .delete_account(&phone.access_token, "correct horse")
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);

    for token in [&phone.access_token, &laptop] {
        let again = app.delete_account(token, "correct horse").await;
        let password = app
            .change_password(token, "correct horse", "battery staple")
            .await;
        let me = app.me(token).await;

        for reply in [again, password, me] {
            assert_eq!(reply.status, 401, "{}", reply.text);
            assert_eq!(reply.error(), "invalid_token");
        }
    }
}

#[actix_web::test]
async fn deleting_with_a_wrong_password_is_401_and_keeps_the_account() {
    let app = spawn_app().await;
    let phone = app.signed_up("alice", "correct horse").await;

    let reply = app.delete_account(&phone.access_token, "wrong horse").await;

    assert_eq!(reply.status, 401);
    assert_eq!(reply.error(), "invalid_credentials");
    assert_eq!(app.refresh(&phone.refresh_token).await.status, 200);
}
