//! Passkeys: registration, sign-in, listing and removal, driven with a
//! software authenticator; every way an answer can be wrong is its own test.

use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::{spawn_app, spawn_second_instance, LoggedIn, Reply, TestApp};
use crate::mfa::{claims_of, enrolled};
use crate::soft_passkey::SoftPasskey;

const PASSWORD: &str = "correct horse";

/// Registers `passkey` for `user` under `name`, asserting a 201.
async fn register(
    app: &TestApp,
    user: &LoggedIn,
    passkey: &mut SoftPasskey,
    name: Option<&str>,
) -> Reply {
    let started = app
        .passkey_register_start(&user.access_token, PASSWORD)
        .await;
    assert_eq!(started.status, 200, "{}", started.text);
    let credential = passkey.create(&started.body["options"]);
    let mut body = json!({"challenge_id": started.body["challenge_id"], "credential": credential});
    if let Some(name) = name {
        body["name"] = json!(name);
    }
    let finished = app.passkey_register_finish(&user.access_token, &body).await;
    assert_eq!(finished.status, 201, "{}", finished.text);
    finished
}

/// A signed-up user with one registered passkey.
async fn user_with_passkey(app: &TestApp) -> (LoggedIn, SoftPasskey) {
    let user = app.signed_up("alice", PASSWORD).await;
    let mut passkey = SoftPasskey::new();
    register(app, &user, &mut passkey, None).await;
    (user, passkey)
}

/// Starts a sign-in and answers it with `passkey`.
async fn sign_in(app: &TestApp, passkey: &mut SoftPasskey) -> Reply {
    let started = app.passkey_start().await;
    assert_eq!(started.status, 200, "{}", started.text);
    let credential = passkey.get(&started.body["options"]);
    app.passkey_finish(&started.str("challenge_id"), &credential)
        .await
}

fn assert_invalid_otp(reply: &Reply) {
    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(reply.error(), "invalid_otp", "{}", reply.text);
    assert!(reply.body["message"].is_string());
}

/// Event types recorded for a user, oldest first.
fn event_types(app: &TestApp, user_id: &str) -> Vec<String> {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        kind: String,
    }
    let mut conn = app.db.connect();
    diesel::sql_query(format!(
        "SELECT type AS kind FROM auth_events WHERE user_id = '{user_id}' ORDER BY id"
    ))
    .load::<Row>(&mut conn)
    .expect("events")
    .into_iter()
    .map(|row| row.kind)
    .collect()
}

#[actix_web::test]
async fn registration_options_require_a_discoverable_credential_and_user_verification() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", PASSWORD).await;

    let reply = app
        .passkey_register_start(&user.access_token, PASSWORD)
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(uuid::Uuid::parse_str(&reply.str("challenge_id")).is_ok());
    let options = &reply.body["options"]["publicKey"];
    assert_eq!(options["rp"]["id"], "localhost");
    assert_eq!(options["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(
        options["authenticatorSelection"]["requireResidentKey"],
        true
    );
    assert_eq!(
        options["authenticatorSelection"]["userVerification"],
        "required"
    );
    assert_eq!(options["user"]["name"], "alice");
    assert!(options["challenge"].as_str().is_some_and(|c| c.len() >= 43));
    assert_eq!(reply.header("cache-control"), "no-store");
}

#[actix_web::test]
async fn a_registered_passkey_signs_in_with_a_token_response() {
    let app = spawn_app().await;
    let (user, mut passkey) = user_with_passkey(&app).await;

    let started = app.passkey_start().await;
    assert_eq!(started.status, 200, "{}", started.text);
    let options = &started.body["options"];
    assert!(options["publicKey"]["allowCredentials"]
        .as_array()
        .is_none_or(Vec::is_empty));
    assert_eq!(options["publicKey"]["userVerification"], "required");
    assert_eq!(options["publicKey"]["rpId"], "localhost");
    let credential = passkey.get(options);
    let reply = app
        .passkey_finish(&started.str("challenge_id"), &credential)
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.header("cache-control"), "no-store");
    assert_eq!(reply.str("user_id"), user.user_id);
    assert_eq!(reply.str("token_type"), "Bearer");
    assert_eq!(reply.str("token"), reply.str("access_token"));
    assert!(!reply.str("refresh_token").is_empty());
    let me = app.me(&reply.str("access_token")).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.str("username"), "alice");
    assert_eq!(app.refresh(&reply.str("refresh_token")).await.status, 200);
    assert_eq!(claims_of(&reply.str("access_token"))["sub"], user.user_id);
}

#[actix_web::test]
async fn a_passkey_session_carries_amr_hwk_user_mfa_and_refresh_keeps_it() {
    let app = spawn_app().await;
    let (_, mut passkey) = user_with_passkey(&app).await;
    let before = chrono::Utc::now().timestamp();

    let reply = sign_in(&app, &mut passkey).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    let claims = claims_of(&reply.str("access_token"));
    assert_eq!(claims["amr"], json!(["hwk", "user", "mfa"]));
    assert!(claims["auth_time"].as_i64().is_some_and(|t| t >= before));
    let refreshed = app.refresh(&reply.str("refresh_token")).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let after = claims_of(&refreshed.str("access_token"));
    assert_eq!(after["amr"], claims["amr"]);
    assert_eq!(after["auth_time"], claims["auth_time"]);
}

#[actix_web::test]
async fn an_account_with_totp_signs_in_with_a_passkey_without_a_code() {
    let app = spawn_app().await;
    let totp_user = enrolled(&app, "alice").await;
    let mut passkey = SoftPasskey::new();
    register(&app, &totp_user.user, &mut passkey, None).await;
    assert_eq!(app.login("alice", PASSWORD).await.error(), "mfa_required");

    let reply = sign_in(&app, &mut passkey).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.str("user_id"), totp_user.user.user_id);
    assert_eq!(
        claims_of(&reply.str("access_token"))["amr"],
        json!(["hwk", "user", "mfa"])
    );
    let account = app
        .get("/api/account", Some(&reply.str("access_token")))
        .await;
    assert_eq!(account.body["mfa"]["totp"], true);
    assert_eq!(account.body["mfa"]["passkeys"], 1);
}

#[actix_web::test]
async fn a_passkey_is_listed_with_its_name_and_last_use_and_counted_on_the_account() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", PASSWORD).await;
    let mut phone = SoftPasskey::new();
    let created = register(&app, &user, &mut phone, None).await;
    let mut laptop = SoftPasskey::new();
    let named = register(&app, &user, &mut laptop, Some("  MacBook  ")).await;

    assert_eq!(created.str("name"), "Passkey");
    assert!(created.body["created_at"].is_string());
    assert_eq!(named.str("name"), "MacBook");
    let listed = app.passkeys(&user.access_token).await;
    assert_eq!(listed.status, 200);
    let passkeys = listed.body["passkeys"].as_array().unwrap();
    assert_eq!(passkeys.len(), 2);
    assert_eq!(passkeys[0]["passkey_id"], created.body["passkey_id"]);
    assert_eq!(passkeys[0]["name"], "Passkey");
    assert!(passkeys[0]["last_used_at"].is_null());

    assert_eq!(sign_in(&app, &mut phone).await.status, 200);

    let listed = app.passkeys(&user.access_token).await;
    assert!(listed.body["passkeys"][0]["last_used_at"].is_string());
    assert!(listed.body["passkeys"][1]["last_used_at"].is_null());
    let account = app.get("/api/account", Some(&user.access_token)).await;
    assert_eq!(account.status, 200, "{}", account.text);
    assert_eq!(account.body["mfa"]["passkeys"], 2);
}

#[actix_web::test]
async fn registration_and_sign_in_are_recorded_as_events() {
    let app = spawn_app().await;
    let (user, mut passkey) = user_with_passkey(&app).await;
    assert_eq!(sign_in(&app, &mut passkey).await.status, 200);
    let id = app.passkeys(&user.access_token).await.body["passkeys"][0]["passkey_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.delete_passkey(&user.access_token, &id, PASSWORD)
            .await
            .status,
        204
    );

    let types = event_types(&app, &user.user_id);

    assert!(types.contains(&"passkey_added".to_owned()), "{types:?}");
    assert!(types.contains(&"login_succeeded".to_owned()), "{types:?}");
    assert!(types.contains(&"passkey_removed".to_owned()), "{types:?}");
}

#[actix_web::test]
async fn existing_passkeys_are_excluded_from_a_new_registration() {
    let app = spawn_app().await;
    let (user, passkey) = user_with_passkey(&app).await;

    let reply = app
        .passkey_register_start(&user.access_token, PASSWORD)
        .await;

    let excluded = reply.body["options"]["publicKey"]["excludeCredentials"]
        .as_array()
        .expect("excludeCredentials")
        .iter()
        .map(|c| c["id"].as_str().unwrap_or_default().to_owned())
        .collect::<Vec<_>>();
    assert_eq!(excluded, [passkey.id()]);
}

#[actix_web::test]
async fn registering_the_same_credential_twice_is_refused() {
    let app = spawn_app().await;
    let (user, mut passkey) = user_with_passkey(&app).await;
    let started = app
        .passkey_register_start(&user.access_token, PASSWORD)
        .await;
    let credential = passkey.create(&started.body["options"]);

    let reply = app
        .passkey_register_finish(
            &user.access_token,
            &json!({"challenge_id": started.body["challenge_id"], "credential": credential}),
        )
        .await;

    assert_invalid_otp(&reply);
    assert_eq!(
        app.passkeys(&user.access_token).await.body["passkeys"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[actix_web::test]
async fn starting_a_registration_with_a_wrong_password_is_401_invalid_credentials() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", PASSWORD).await;

    let reply = app
        .passkey_register_start(&user.access_token, "wrong horse")
        .await;

    assert_eq!(reply.status, 401);
    assert_eq!(reply.error(), "invalid_credentials");
}

#[actix_web::test]
async fn passkey_routes_under_api_me_need_a_bearer_token() {
    let app = spawn_app().await;

    let reply = app.passkeys("not-a-token").await;
    let missing = app.get("/api/me/passkeys", None).await;

    assert_eq!(reply.status, 401);
    assert_eq!(reply.error(), "invalid_token");
    assert_eq!(missing.status, 401);
    assert_eq!(missing.error(), "missing_token");
}

#[actix_web::test]
async fn a_name_outside_one_to_sixty_four_characters_is_422_on_name_and_spends_nothing() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", PASSWORD).await;
    let mut passkey = SoftPasskey::new();
    let started = app
        .passkey_register_start(&user.access_token, PASSWORD)
        .await;
    let credential = passkey.create(&started.body["options"]);

    for bad in [json!(""), json!("   "), json!("x".repeat(65))] {
        let reply = app
            .passkey_register_finish(
                &user.access_token,
                &json!({"challenge_id": started.body["challenge_id"], "credential": credential, "name": bad}),
            )
            .await;
        assert_eq!(reply.status, 422, "{}", reply.text);
        assert_eq!(reply.error(), "validation_failed");
        assert!(reply.body["fields"]["name"].is_string());
    }
    let reply = app
        .passkey_register_finish(
            &user.access_token,
            &json!({"challenge_id": started.body["challenge_id"], "credential": credential, "name": "x".repeat(64)}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
}

#[actix_web::test]
async fn malformed_credential_json_is_400_invalid_request() {
    let app = spawn_app().await;
    let (user, _) = user_with_passkey(&app).await;
    let registration = app
        .passkey_register_start(&user.access_token, PASSWORD)
        .await;
    let sign_in = app.passkey_start().await;

    for credential in [
        json!("nonsense"),
        json!({"id": 5}),
        json!({"id": "x", "rawId": "!!", "type": "public-key", "response": {}}),
    ] {
        let reply = app
            .passkey_register_finish(
                &user.access_token,
                &json!({"challenge_id": registration.body["challenge_id"], "credential": credential}),
            )
            .await;
        assert_eq!(reply.status, 400, "{}", reply.text);
        assert_eq!(reply.error(), "invalid_request");
        let reply = app
            .passkey_finish(&sign_in.str("challenge_id"), &credential)
            .await;
        assert_eq!(reply.status, 400, "{}", reply.text);
        assert_eq!(reply.error(), "invalid_request");
    }
    let missing = app
        .post_json(
            "/auth/passkey/finish",
            &json!({"challenge_id": sign_in.str("challenge_id")}),
        )
        .await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.error(), "invalid_request");
}

#[actix_web::test]
async fn a_bad_signature_is_401_invalid_otp() {
    let app = spawn_app().await;
    let (_, mut passkey) = user_with_passkey(&app).await;
    passkey.corrupt_signature = true;

    assert_invalid_otp(&sign_in(&app, &mut passkey).await);
}

#[actix_web::test]
async fn a_wrong_origin_is_401_invalid_otp() {
    let app = spawn_app().await;
    let (user, mut passkey) = user_with_passkey(&app).await;
    passkey.origin = "https://evil.example".into();

    assert_invalid_otp(&sign_in(&app, &mut passkey).await);

    let mut other = SoftPasskey::new();
    other.origin = "http://localhost:9999".into();
    let started = app
        .passkey_register_start(&user.access_token, PASSWORD)
        .await;
    let credential = other.create(&started.body["options"]);
    let reply = app
        .passkey_register_finish(
            &user.access_token,
            &json!({"challenge_id": started.body["challenge_id"], "credential": credential}),
        )
        .await;
    assert_invalid_otp(&reply);
}

#[actix_web::test]
async fn a_wrong_rp_id_hash_is_401_invalid_otp() {
    let app = spawn_app().await;
    let (user, mut passkey) = user_with_passkey(&app).await;
    passkey.rp_id = Some("evil.example".into());

    assert_invalid_otp(&sign_in(&app, &mut passkey).await);

    let mut other = SoftPasskey::new();
    other.rp_id = Some("evil.example".into());
    let started = app
        .passkey_register_start(&user.access_token, PASSWORD)
        .await;
    let credential = other.create(&started.body["options"]);
    let reply = app
        .passkey_register_finish(
            &user.access_token,
            &json!({"challenge_id": started.body["challenge_id"], "credential": credential}),
        )
        .await;
    assert_invalid_otp(&reply);
}

#[actix_web::test]
async fn a_missing_user_verification_flag_is_401_invalid_otp() {
    let app = spawn_app().await;
    let (user, mut passkey) = user_with_passkey(&app).await;
    passkey.user_verified = false;

    assert_invalid_otp(&sign_in(&app, &mut passkey).await);

    let mut other = SoftPasskey::new();
    other.user_verified = false;
    let started = app
        .passkey_register_start(&user.access_token, PASSWORD)
        .await;
    let credential = other.create(&started.body["options"]);
    let reply = app
        .passkey_register_finish(
            &user.access_token,
            &json!({"challenge_id": started.body["challenge_id"], "credential": credential}),
        )
        .await;
    assert_invalid_otp(&reply);
    assert_eq!(
        app.passkeys(&user.access_token).await.body["passkeys"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[actix_web::test]
async fn an_unknown_credential_is_401_invalid_otp() {
    let app = spawn_app().await;
    let (_, registered) = user_with_passkey(&app).await;
    let mut stranger = SoftPasskey::new();
    // Claims alice's account, but its key was never registered.
    stranger.user_handle = registered.user_handle.clone();

    assert_invalid_otp(&sign_in(&app, &mut stranger).await);
}

#[actix_web::test]
async fn a_user_handle_of_another_account_is_401_invalid_otp() {
    let app = spawn_app().await;
    let (_, mut passkey) = user_with_passkey(&app).await;
    let bob = app.signed_up("bob", PASSWORD).await;
    passkey.user_handle = uuid::Uuid::parse_str(&bob.user_id)
        .unwrap()
        .as_bytes()
        .to_vec();

    assert_invalid_otp(&sign_in(&app, &mut passkey).await);
}

#[actix_web::test]
async fn a_sign_counter_that_goes_backwards_is_refused_as_a_cloned_key() {
    let app = spawn_app().await;
    let (_, mut passkey) = user_with_passkey(&app).await;
    passkey.counter_step = 5;
    assert_eq!(sign_in(&app, &mut passkey).await.status, 200); // counter 5
    assert_eq!(sign_in(&app, &mut passkey).await.status, 200); // counter 10

    passkey.counter = 2; // a clone that lags behind: signs with 7
    assert_invalid_otp(&sign_in(&app, &mut passkey).await);

    passkey.counter = 5; // signs with 10 again: not forward either
    assert_invalid_otp(&sign_in(&app, &mut passkey).await);
    assert_eq!(sign_in(&app, &mut passkey).await.status, 200); // 15
}

#[actix_web::test]
async fn a_passkey_that_does_not_count_signs_in_again_and_again() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", PASSWORD).await;
    let mut synced = SoftPasskey::new();
    synced.counter_step = 0;
    register(&app, &user, &mut synced, None).await;

    for _ in 0..3 {
        let reply = sign_in(&app, &mut synced).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
}

#[actix_web::test]
async fn an_expired_challenge_is_401_invalid_otp() {
    let app = spawn_app().await;
    let (user, mut passkey) = user_with_passkey(&app).await;
    let started = app.passkey_start().await;
    let registration = app
        .passkey_register_start(&user.access_token, PASSWORD)
        .await;
    app.sql("UPDATE webauthn_challenges SET expires_at = now() - interval '1 second'");

    let credential = passkey.get(&started.body["options"]);
    assert_invalid_otp(
        &app.passkey_finish(&started.str("challenge_id"), &credential)
            .await,
    );
    let mut other = SoftPasskey::new();
    let credential = other.create(&registration.body["options"]);
    let reply = app
        .passkey_register_finish(
            &user.access_token,
            &json!({"challenge_id": registration.body["challenge_id"], "credential": credential}),
        )
        .await;
    assert_invalid_otp(&reply);
}

#[actix_web::test]
async fn a_used_challenge_is_401_invalid_otp() {
    let app = spawn_app().await;
    let (_, mut passkey) = user_with_passkey(&app).await;
    passkey.counter_step = 0; // so that only the challenge can refuse the replay
    let started = app.passkey_start().await;
    let credential = passkey.get(&started.body["options"]);
    let first = app
        .passkey_finish(&started.str("challenge_id"), &credential)
        .await;
    assert_eq!(first.status, 200, "{}", first.text);

    let replay = app
        .passkey_finish(&started.str("challenge_id"), &credential)
        .await;

    assert_invalid_otp(&replay);
}

#[actix_web::test]
async fn a_refused_answer_spends_its_challenge() {
    let app = spawn_app().await;
    let (_, mut passkey) = user_with_passkey(&app).await;
    let started = app.passkey_start().await;
    passkey.corrupt_signature = true;
    let bad = passkey.get(&started.body["options"]);
    assert_invalid_otp(&app.passkey_finish(&started.str("challenge_id"), &bad).await);

    passkey.corrupt_signature = false;
    let good = passkey.get(&started.body["options"]);

    assert_invalid_otp(
        &app.passkey_finish(&started.str("challenge_id"), &good)
            .await,
    );
}

#[actix_web::test]
async fn an_unknown_or_malformed_challenge_id_is_401_invalid_otp() {
    let app = spawn_app().await;
    let (_, mut passkey) = user_with_passkey(&app).await;
    let started = app.passkey_start().await;
    let credential = passkey.get(&started.body["options"]);

    for id in [uuid::Uuid::new_v4().to_string(), "not-a-uuid".to_owned()] {
        assert_invalid_otp(&app.passkey_finish(&id, &credential).await);
    }
}

#[actix_web::test]
async fn a_registration_challenge_never_finishes_a_sign_in_nor_the_reverse() {
    let app = spawn_app().await;
    let (user, mut passkey) = user_with_passkey(&app).await;
    let registration = app
        .passkey_register_start(&user.access_token, PASSWORD)
        .await;
    let sign_in_started = app.passkey_start().await;

    // An assertion over the registration challenge's bytes, sent to sign-in.
    let mut options = registration.body["options"].clone();
    options["publicKey"]["rpId"] = options["publicKey"]["rp"]["id"].clone();
    let credential = passkey.get(&options);
    let reply = app
        .passkey_finish(&registration.str("challenge_id"), &credential)
        .await;
    assert_invalid_otp(&reply);

    // A registration answered over the sign-in challenge.
    let mut options = sign_in_started.body["options"].clone();
    options["publicKey"]["rp"] = json!({"id": "localhost"});
    options["publicKey"]["user"] = json!({"id": crate::soft_passkey::b64(&passkey.user_handle)});
    let mut other = SoftPasskey::new();
    let credential = other.create(&options);
    let reply = app
        .passkey_register_finish(
            &user.access_token,
            &json!({"challenge_id": sign_in_started.body["challenge_id"], "credential": credential}),
        )
        .await;
    assert_invalid_otp(&reply);
}

#[actix_web::test]
async fn a_registration_challenge_of_another_account_is_refused() {
    let app = spawn_app().await;
    let alice = app.signed_up("alice", PASSWORD).await;
    let bob = app.signed_up("bob", PASSWORD).await;
    let started = app
        .passkey_register_start(&alice.access_token, PASSWORD)
        .await;
    let mut passkey = SoftPasskey::new();
    let credential = passkey.create(&started.body["options"]);

    let reply = app
        .passkey_register_finish(
            &bob.access_token,
            &json!({"challenge_id": started.body["challenge_id"], "credential": credential}),
        )
        .await;

    assert_invalid_otp(&reply);
    assert_eq!(
        app.passkeys(&bob.access_token).await.body["passkeys"],
        json!([])
    );
}

#[actix_web::test]
async fn a_ceremony_started_on_one_instance_finishes_on_another() {
    let app = spawn_app().await;
    let other = spawn_second_instance(&app).await;
    let user = app.signed_up("alice", PASSWORD).await;
    let mut passkey = SoftPasskey::new();

    let started = app
        .passkey_register_start(&user.access_token, PASSWORD)
        .await;
    let credential = passkey.create(&started.body["options"]);
    let registered = other
        .passkey_register_finish(
            &user.access_token,
            &json!({"challenge_id": started.body["challenge_id"], "credential": credential}),
        )
        .await;
    assert_eq!(registered.status, 201, "{}", registered.text);

    let started = other.passkey_start().await;
    let credential = passkey.get(&started.body["options"]);
    let reply = app
        .passkey_finish(&started.str("challenge_id"), &credential)
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.str("user_id"), user.user_id);
}

#[actix_web::test]
async fn two_concurrent_finishes_of_one_challenge_give_exactly_one_session() {
    let app = spawn_app().await;
    let other = spawn_second_instance(&app).await;
    let (_, mut passkey) = user_with_passkey(&app).await;
    passkey.counter_step = 0; // only the challenge decides
    let started = app.passkey_start().await;
    let challenge_id = started.str("challenge_id");
    let credential = passkey.get(&started.body["options"]);

    let replies = join_all((0..6).map(|i| {
        let target = if i % 2 == 0 { &app } else { &other };
        target.passkey_finish(&challenge_id, &credential)
    }))
    .await;

    let won = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(
        won,
        1,
        "{:?}",
        replies.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    for reply in replies.iter().filter(|r| r.status != 200) {
        assert_invalid_otp(reply);
    }
}

#[actix_web::test]
async fn a_deleted_passkey_no_longer_signs_in() {
    let app = spawn_app().await;
    let (user, mut passkey) = user_with_passkey(&app).await;
    let id = app.passkeys(&user.access_token).await.body["passkeys"][0]["passkey_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let wrong = app
        .delete_passkey(&user.access_token, &id, "wrong horse")
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.error(), "invalid_credentials");
    let reply = app.delete_passkey(&user.access_token, &id, PASSWORD).await;

    assert_eq!(reply.status, 204, "{}", reply.text);
    assert_eq!(
        app.passkeys(&user.access_token).await.body["passkeys"],
        json!([])
    );
    assert_invalid_otp(&sign_in(&app, &mut passkey).await);
    let again = app.delete_passkey(&user.access_token, &id, PASSWORD).await;
    assert_eq!(again.status, 404);
    assert_eq!(again.error(), "not_found");
}

#[actix_web::test]
async fn another_users_passkey_or_an_unknown_id_is_404() {
    let app = spawn_app().await;
    let (alice, _) = user_with_passkey(&app).await;
    let bob = app.signed_up("bob", PASSWORD).await;
    let id = app.passkeys(&alice.access_token).await.body["passkeys"][0]["passkey_id"]
        .as_str()
        .unwrap()
        .to_owned();

    for target in [
        id.clone(),
        uuid::Uuid::new_v4().to_string(),
        "not-a-uuid".to_owned(),
    ] {
        let reply = app
            .delete_passkey(&bob.access_token, &target, PASSWORD)
            .await;
        assert_eq!(reply.status, 404, "{}", reply.text);
        assert_eq!(reply.error(), "not_found");
    }
    assert_eq!(
        app.passkeys(&alice.access_token).await.body["passkeys"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[actix_web::test]
async fn a_deleted_account_no_longer_signs_in_with_its_passkey() {
    let app = spawn_app().await;
    let (user, mut passkey) = user_with_passkey(&app).await;

    assert_eq!(
        app.delete_account(&user.access_token, PASSWORD)
            .await
            .status,
        204
    );

    assert_invalid_otp(&sign_in(&app, &mut passkey).await);
}
