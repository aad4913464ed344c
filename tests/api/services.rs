//! The services called in process (no HTTP) against a test database: what
//! handlers and the CLI rely on, each state change checked in the rows.

use diesel::prelude::*;
use tessera::auth::refresh_token::RefreshToken;
use tessera::domain::{Password, Username};
use tessera::error::AppError;
use tessera::services::accounts::{self, Authentication, LoginOutcome};
use tessera::services::sessions::{self, ClientInfo};

use crate::helpers::spawn_app;

/// The tokens of a login that needed no second factor.
#[track_caller]
fn signed_in(outcome: LoginOutcome) -> sessions::IssuedTokens {
    match outcome {
        LoginOutcome::SignedIn(tokens) => tokens,
        other => panic!("expected a completed login, got {other:?}"),
    }
}

fn name(raw: &str) -> Username {
    Username::parse(raw).expect("valid username")
}

fn password(raw: &str) -> Password {
    Password::parse(raw).expect("valid password")
}

#[actix_web::test]
async fn a_registered_account_authenticates_and_a_wrong_password_does_not() {
    let app = spawn_app().await;
    let user = accounts::register(&app.state, name("Alice"), password("correct horse"))
        .await
        .expect("register");
    assert_eq!(user.username, "alice");

    let right = accounts::authenticate(&app.state, "ALICE", "correct horse".into()).await;
    let wrong = accounts::authenticate(&app.state, "alice", "wrong horse".into()).await;
    let unknown = accounts::authenticate(&app.state, "bob", "correct horse".into()).await;

    assert!(matches!(right, Ok(Authentication::Complete(ref u)) if u.id == user.id));
    assert!(matches!(wrong, Err(AppError::InvalidCredentials)));
    assert!(matches!(unknown, Err(AppError::InvalidCredentials)));
}

#[actix_web::test]
async fn registering_a_taken_name_is_username_taken() {
    let app = spawn_app().await;
    accounts::register(&app.state, name("alice"), password("correct horse"))
        .await
        .expect("first");

    let second = accounts::register(&app.state, name("ALICE"), password("other horse")).await;

    assert!(matches!(second, Err(AppError::UsernameTaken)));
}

#[actix_web::test]
async fn a_login_starts_a_session_whose_refresh_rotates_and_logout_revokes() {
    let app = spawn_app().await;
    let user = accounts::register(&app.state, name("alice"), password("correct horse"))
        .await
        .expect("register");
    let client = ClientInfo {
        user_agent: Some("tests".into()),
        ip: Some("192.0.2.1".into()),
    };

    let first = signed_in(
        accounts::log_in(&app.state, "alice", "correct horse".into(), client)
            .await
            .expect("log in"),
    );
    let live = sessions::list(&app.state, user.id).await.expect("list");
    let second = sessions::refresh(
        &app.state,
        first.refresh_token.clone(),
        ClientInfo::default(),
    )
    .await
    .expect("refresh");
    sessions::logout(
        &app.state,
        second.refresh_token.clone(),
        ClientInfo::default(),
    )
    .await
    .expect("logout");
    let rotated = first.refresh_token != second.refresh_token;
    let after_logout =
        sessions::refresh(&app.state, second.refresh_token, ClientInfo::default()).await;

    assert_eq!(first.user_id, user.id);
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].ip.as_deref(), Some("192.0.2.1"));
    assert!(rotated);
    assert!(matches!(after_logout, Err(AppError::InvalidGrant)));
    assert!(sessions::list(&app.state, user.id)
        .await
        .expect("list")
        .is_empty());
}

#[actix_web::test]
async fn revoking_a_session_of_another_user_is_not_found_and_changes_nothing() {
    let app = spawn_app().await;
    let alice = accounts::register(&app.state, name("alice"), password("correct horse"))
        .await
        .expect("alice");
    let bob = accounts::register(&app.state, name("bob"), password("correct horse"))
        .await
        .expect("bob");
    let _ = signed_in(
        accounts::log_in(
            &app.state,
            "bob",
            "correct horse".into(),
            ClientInfo::default(),
        )
        .await
        .expect("bob logs in"),
    );
    let bobs = sessions::list(&app.state, bob.id).await.expect("list");

    let refused = sessions::revoke(&app.state, alice.id, bobs[0].id, ClientInfo::default()).await;

    assert!(matches!(refused, Err(AppError::NotFound)));
    assert_eq!(
        sessions::list(&app.state, bob.id)
            .await
            .expect("list")
            .len(),
        1
    );
}

#[actix_web::test]
async fn a_spent_refresh_token_outside_the_grace_revokes_its_session() {
    let app = crate::helpers::spawn_app_with(&[("REFRESH_REUSE_GRACE_SECONDS", "0")]).await;
    let user = accounts::register(&app.state, name("alice"), password("correct horse"))
        .await
        .expect("register");
    let first = signed_in(
        accounts::log_in(
            &app.state,
            "alice",
            "correct horse".into(),
            ClientInfo::default(),
        )
        .await
        .expect("log in"),
    );
    let spent: RefreshToken = first.refresh_token.clone();
    let second = sessions::refresh(&app.state, first.refresh_token, ClientInfo::default())
        .await
        .expect("refresh");

    let reuse = sessions::refresh(&app.state, spent, ClientInfo::default()).await;
    let live_after =
        sessions::refresh(&app.state, second.refresh_token, ClientInfo::default()).await;

    assert!(matches!(reuse, Err(AppError::InvalidGrant)));
    assert!(matches!(live_after, Err(AppError::InvalidGrant)));
    assert!(sessions::list(&app.state, user.id)
        .await
        .expect("list")
        .is_empty());
}

#[actix_web::test]
async fn granting_a_role_twice_changes_it_once_and_revoking_removes_it() {
    let app = spawn_app().await;
    accounts::register(&app.state, name("alice"), password("correct horse"))
        .await
        .expect("register");
    let mut conn = PgConnection::establish(app.db.url()).expect("connect");

    let granted = accounts::set_role(&mut conn, "Alice", "admin", true).expect("grant");
    let again = accounts::set_role(&mut conn, "alice", "admin", true).expect("grant again");
    let revoked = accounts::set_role(&mut conn, "alice", "admin", false).expect("revoke");
    let bad = accounts::set_role(&mut conn, "alice", " ", true);
    let nobody = accounts::set_role(&mut conn, "nobody", "admin", true);

    assert!(granted.changed && granted.roles == ["admin"]);
    assert!(!again.changed && again.roles == ["admin"]);
    assert!(revoked.changed && revoked.roles.is_empty());
    assert!(matches!(bad, Err(accounts::RoleError::InvalidRole(_))));
    assert!(matches!(nobody, Err(accounts::RoleError::NoSuchUser(_))));
}
