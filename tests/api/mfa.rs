//! Second factor: the `amr` / `auth_time` claims, TOTP enrollment, the
//! two-step login, replay and brute-force rules, step-up, recovery codes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, LoggedIn, TestApp};

/// The claims of an access token, decoded without verification.
pub fn claims_of(access_token: &str) -> Value {
    let payload = access_token.split('.').nth(1).expect("a JWS payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON")
}

#[actix_web::test]
async fn a_password_login_carries_amr_pwd_and_auth_time_and_refresh_keeps_both() {
    let app = spawn_app().await;
    let before = chrono::Utc::now().timestamp();
    let user = app.signed_up("alice", "correct horse").await;
    let first = claims_of(&user.access_token);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let refreshed = app.refresh(&user.refresh_token).await;

    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let second = claims_of(&refreshed.str("access_token"));
    assert_eq!(first["amr"], serde_json::json!(["pwd"]));
    let auth_time = first["auth_time"].as_i64().expect("auth_time");
    assert!(auth_time >= before && auth_time <= first["iat"].as_i64().unwrap());
    assert_eq!(second["amr"], first["amr"]);
    assert_eq!(second["auth_time"], first["auth_time"]);
    assert!(second["iat"].as_i64().unwrap() > auth_time);
}

/// A TOTP code for `secret` (base32) at now + `offset` steps, computed
/// independently of the server with totp-rs (SHA-1, 6 digits, 30 s).
pub fn totp_code(secret: &str, offset: i64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_owned())
        .to_bytes()
        .expect("base32 secret");
    let totp = totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes);
    let now = chrono::Utc::now().timestamp();
    totp.generate(u64::try_from(now + offset * 30).unwrap())
}

/// A signed-up user with TOTP enabled: its tokens, secret and recovery codes.
pub struct Enrolled {
    /// The first login (a password session, from before TOTP).
    pub user: LoggedIn,
    /// Base32 TOTP secret.
    pub secret: String,
    /// The 10 recovery codes of the confirmation.
    pub recovery_codes: Vec<String>,
}

/// Signs `username` up (password "correct horse") and enables TOTP. The
/// confirmation used the current step: the steps used are then forgotten
/// so the test can use the current code again.
pub async fn enrolled(app: &TestApp, username: &str) -> Enrolled {
    let user = app.signed_up(username, "correct horse").await;
    let enrollment = app.enroll_totp(&user.access_token, "correct horse").await;
    assert_eq!(enrollment.status, 201, "{}", enrollment.text);
    let secret = enrollment.str("secret");
    let confirmed = app
        .confirm_totp(&user.access_token, &totp_code(&secret, 0))
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    let recovery_codes = confirmed.body["recovery_codes"]
        .as_array()
        .expect("recovery_codes")
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    forget_used_steps(app);
    Enrolled {
        user,
        secret,
        recovery_codes,
    }
}

/// Lets the current step be used again (tests that need several accepted
/// codes within one 30 s step).
pub fn forget_used_steps(app: &TestApp) {
    app.sql("UPDATE mfa_totp SET last_used_step = 0");
}

/// Logs in with the right password and returns the `mfa_token`.
async fn mfa_token(app: &TestApp, username: &str) -> String {
    let reply = app.login(username, "correct horse").await;
    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(reply.error(), "mfa_required");
    reply.str("mfa_token")
}

/// One text value from the test database.
fn query_text(app: &TestApp, sql: &str) -> String {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
    }
    let mut conn = app.db.connect();
    diesel::sql_query(sql)
        .get_result::<Row>(&mut conn)
        .expect("test query")
        .value
}

#[actix_web::test]
async fn enrolling_returns_a_secret_and_uri_uncached_and_changes_nothing_until_confirmed() {
    let app = spawn_app_with(&[("MFA_ISSUER", "Acme")]).await;
    let user = app.signed_up("alice", "correct horse").await;

    let reply = app.enroll_totp(&user.access_token, "correct horse").await;

    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.header("cache-control"), "no-store");
    let secret = reply.str("secret");
    assert_eq!(secret.len(), 32, "160 bits of base32");
    assert!(secret
        .chars()
        .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c)));
    assert_eq!(
        reply.str("otpauth_uri"),
        format!("otpauth://totp/Acme:alice?secret={secret}&issuer=Acme&algorithm=SHA1&digits=6&period=30")
    );
    assert_eq!(app.login("alice", "correct horse").await.status, 200);
    let account = app.account(&user.access_token).await;
    assert_eq!(account.body["mfa"]["totp"], false);
    assert_eq!(account.body["mfa"]["recovery_codes_left"], 0);
}

#[actix_web::test]
async fn enrolling_with_a_wrong_password_is_401_invalid_credentials() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", "correct horse").await;

    let reply = app.enroll_totp(&user.access_token, "wrong horse").await;

    assert_eq!(reply.status, 401);
    assert_eq!(reply.error(), "invalid_credentials");
}

#[actix_web::test]
async fn confirming_enables_totp_and_shows_ten_recovery_codes_once() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", "correct horse").await;
    let secret = app
        .enroll_totp(&user.access_token, "correct horse")
        .await
        .str("secret");

    let reply = app
        .confirm_totp(&user.access_token, &totp_code(&secret, 0))
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.header("cache-control"), "no-store");
    let codes = reply.body["recovery_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    let distinct: std::collections::HashSet<_> = codes.iter().collect();
    assert_eq!(distinct.len(), 10);
    let account = app.account(&user.access_token).await;
    assert_eq!(account.status, 200);
    assert_eq!(account.body["mfa"]["totp"], true);
    assert_eq!(account.body["mfa"]["recovery_codes_left"], 10);
    assert_eq!(account.body["mfa"]["passkeys"], 0);
}

#[actix_web::test]
async fn a_new_enrollment_replaces_the_pending_one() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", "correct horse").await;
    let first = app
        .enroll_totp(&user.access_token, "correct horse")
        .await
        .str("secret");
    let second = app
        .enroll_totp(&user.access_token, "correct horse")
        .await
        .str("secret");
    assert_ne!(first, second);

    let with_first = app
        .confirm_totp(&user.access_token, &totp_code(&first, 0))
        .await;
    let with_second = app
        .confirm_totp(&user.access_token, &totp_code(&second, 0))
        .await;

    assert_eq!(with_first.status, 401);
    assert_eq!(with_first.error(), "invalid_otp");
    assert_eq!(with_second.status, 200, "{}", with_second.text);
}

#[actix_web::test]
async fn confirming_with_a_wrong_or_malformed_code_is_401_invalid_otp() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", "correct horse").await;
    let secret = app
        .enroll_totp(&user.access_token, "correct horse")
        .await
        .str("secret");
    let right = totp_code(&secret, 0);
    let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 1) % 1_000_000);

    // Five: a sixth wrong code would be over the account's budget (429).
    for code in [wrong.as_str(), "12345", "abcdef", "1234567", "١٢٣٤٥٦"] {
        let reply = app.confirm_totp(&user.access_token, code).await;
        assert_eq!(reply.status, 401, "{code:?}: {}", reply.text);
        assert_eq!(reply.error(), "invalid_otp");
    }
    let account = app.account(&user.access_token).await;
    assert_eq!(account.body["mfa"]["totp"], false);
}

#[actix_web::test]
async fn confirming_without_a_pending_enrollment_and_enrolling_twice_are_409_conflict() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", "correct horse").await;

    let nothing_pending = app.confirm_totp(&user.access_token, "123456").await;
    let alice = enrolled(&app, "bob").await;
    let again = app
        .enroll_totp(&alice.user.access_token, "correct horse")
        .await;
    let confirm_again = app
        .confirm_totp(&alice.user.access_token, &totp_code(&alice.secret, 0))
        .await;

    for reply in [nothing_pending, again, confirm_again] {
        assert_eq!(reply.status, 409, "{}", reply.text);
        assert_eq!(reply.error(), "conflict");
    }
}

#[actix_web::test]
async fn a_totp_accounts_login_is_401_mfa_required_with_an_mfa_token_and_no_session() {
    let app = spawn_app().await;
    let alice = enrolled(&app, "alice").await;

    let reply = app.login("alice", "correct horse").await;

    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(reply.error(), "mfa_required");
    assert!(!reply.str("message").is_empty());
    assert_eq!(reply.header("cache-control"), "no-store");
    assert_eq!(reply.str("mfa_token").len(), 43, "256 bits of base64url");
    assert_eq!(reply.body["methods"], json!(["totp", "recovery_code"]));
    assert!(reply.body.get("access_token").is_none());
    let sessions = app.sessions(&alice.user.access_token).await;
    assert_eq!(sessions.body["sessions"].as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn a_wrong_password_on_a_totp_account_stays_plain_invalid_credentials() {
    let app = spawn_app().await;
    enrolled(&app, "alice").await;

    let wrong = app.login("alice", "wrong horse").await;
    let nobody = app.login("nobody", "wrong horse").await;

    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.body, nobody.body);
    assert_eq!(wrong.error(), "invalid_credentials");
    assert!(wrong.body.get("mfa_token").is_none());
}

#[actix_web::test]
async fn the_second_step_with_a_totp_code_signs_in_with_amr_pwd_otp_mfa_kept_by_refresh() {
    let app = spawn_app().await;
    let alice = enrolled(&app, "alice").await;
    let token = mfa_token(&app, "alice").await;
    let before = chrono::Utc::now().timestamp();

    let reply = app.complete_mfa(&token, &totp_code(&alice.secret, 0)).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.header("cache-control"), "no-store");
    assert_eq!(reply.str("token_type"), "Bearer");
    assert_eq!(reply.str("token"), reply.str("access_token"));
    assert_eq!(reply.str("user_id"), alice.user.user_id);
    let claims = claims_of(&reply.str("access_token"));
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));
    assert!(claims["auth_time"].as_i64().unwrap() >= before);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let refreshed = app.refresh(&reply.str("refresh_token")).await;
    assert_eq!(refreshed.status, 200);
    let after = claims_of(&refreshed.str("access_token"));
    assert_eq!(after["amr"], claims["amr"]);
    assert_eq!(after["auth_time"], claims["auth_time"]);
    assert_eq!(app.me(&refreshed.str("access_token")).await.status, 200);
}

#[actix_web::test]
async fn a_recovery_code_finishes_a_login_once() {
    let app = spawn_app().await;
    let alice = enrolled(&app, "alice").await;
    let code = alice.recovery_codes[0].clone();

    let first = app
        .complete_mfa(&mfa_token(&app, "alice").await, &code.to_uppercase())
        .await;
    let again = app
        .complete_mfa(&mfa_token(&app, "alice").await, &code)
        .await;

    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(
        claims_of(&first.str("access_token"))["amr"],
        json!(["pwd", "otp", "mfa"])
    );
    assert_eq!(again.status, 401);
    assert_eq!(again.error(), "invalid_otp");
    let account = app.account(&first.str("access_token")).await;
    assert_eq!(account.body["mfa"]["recovery_codes_left"], 9);
}

#[actix_web::test]
async fn an_mfa_token_is_single_use_and_unknown_or_expired_ones_are_invalid_otp() {
    let app = spawn_app().await;
    let alice = enrolled(&app, "alice").await;
    let token = mfa_token(&app, "alice").await;
    assert_eq!(
        app.complete_mfa(&token, &alice.recovery_codes[0])
            .await
            .status,
        200
    );
    let expired = mfa_token(&app, "alice").await;
    app.sql("UPDATE mfa_challenges SET expires_at = now() - interval '1 second'");

    for (token, code) in [
        (token.as_str(), alice.recovery_codes[1].as_str()),
        ("not-a-token", alice.recovery_codes[1].as_str()),
        ("", alice.recovery_codes[1].as_str()),
        (expired.as_str(), alice.recovery_codes[1].as_str()),
    ] {
        let reply = app.complete_mfa(token, code).await;
        assert_eq!(reply.status, 401, "{token:?}: {}", reply.text);
        assert_eq!(reply.error(), "invalid_otp");
    }
    let account = app.account(&alice.user.access_token).await;
    assert_eq!(account.body["mfa"]["recovery_codes_left"], 9);
}

#[actix_web::test]
async fn an_mfa_token_dies_after_five_wrong_codes() {
    let app = spawn_app().await;
    let alice = enrolled(&app, "alice").await;
    let token = mfa_token(&app, "alice").await;

    for wrong in ["000000", "abc", "111111", "zzzz-zzzz-zzzz-zzzz", "222222"] {
        let reply = app.complete_mfa(&token, wrong).await;
        assert_eq!(reply.status, 401, "{}", reply.text);
        assert_eq!(reply.error(), "invalid_otp");
    }
    // The account's own budget is spent too; lift it to see the token dead.
    app.sql("DELETE FROM mfa_failures");
    let right = app.complete_mfa(&token, &totp_code(&alice.secret, 0)).await;

    assert_eq!(right.status, 401, "{}", right.text);
    assert_eq!(right.error(), "invalid_otp");
    let fresh = app
        .complete_mfa(
            &mfa_token(&app, "alice").await,
            &totp_code(&alice.secret, 0),
        )
        .await;
    assert_eq!(fresh.status, 200, "{}", fresh.text);
}

#[actix_web::test]
async fn a_code_is_refused_the_second_time_and_an_earlier_step_after_a_later_one() {
    let app = spawn_app().await;
    let alice = enrolled(&app, "alice").await;
    let now = totp_code(&alice.secret, 0);
    let next = totp_code(&alice.secret, 1);

    let first = app
        .complete_mfa(&mfa_token(&app, "alice").await, &now)
        .await;
    let replayed = app
        .complete_mfa(&mfa_token(&app, "alice").await, &now)
        .await;
    let later = app
        .complete_mfa(&mfa_token(&app, "alice").await, &next)
        .await;
    let earlier = app
        .complete_mfa(&mfa_token(&app, "alice").await, &now)
        .await;

    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(replayed.status, 401);
    assert_eq!(replayed.error(), "invalid_otp");
    assert_eq!(later.status, 200, "{}", later.text);
    assert_eq!(earlier.status, 401);
    assert_eq!(earlier.error(), "invalid_otp");
}

#[actix_web::test]
async fn two_concurrent_logins_with_one_code_let_exactly_one_in() {
    let app = spawn_app().await;
    let alice = enrolled(&app, "alice").await;
    let code = totp_code(&alice.secret, 0);
    let tokens = [
        mfa_token(&app, "alice").await,
        mfa_token(&app, "alice").await,
        mfa_token(&app, "alice").await,
    ];

    let replies =
        futures_util::future::join_all(tokens.iter().map(|token| app.complete_mfa(token, &code)))
            .await;

    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    for reply in replies.iter().filter(|r| r.status != 200) {
        assert_eq!(reply.status, 401);
        assert_eq!(reply.error(), "invalid_otp");
    }
}

#[actix_web::test]
async fn five_wrong_codes_on_two_instances_throttle_the_account_with_429_and_retry_after() {
    let app = spawn_app().await;
    let alice = enrolled(&app, "alice").await;
    let other = app.another_instance().await;
    let token = mfa_token(&app, "alice").await;
    let second_token = other
        .post_json(
            "/auth/token",
            &json!({"username": "alice", "password": "correct horse"}),
        )
        .await
        .str("mfa_token");

    // 2 wrong codes on this instance (login), 1 on the other (login), 2 on
    // this one through step-up: 5 for the account.
    for wrong in ["000000", "111111"] {
        assert_eq!(app.complete_mfa(&token, wrong).await.status, 401);
    }
    let on_other = other
        .post_json(
            "/auth/mfa",
            &json!({"mfa_token": second_token, "code": "333333"}),
        )
        .await;
    assert_eq!(on_other.error(), "invalid_otp");
    for wrong in ["444444", "555555"] {
        let reply = app
            .change_password(&alice.user.access_token, "correct horse", "battery staple")
            .await;
        assert_eq!(reply.error(), "mfa_required");
        let reply = app
            .send(
                app.client
                    .post(app.url("/api/me/password"))
                    .bearer_auth(&alice.user.access_token)
                    .json(&json!({"current_password": "correct horse",
                                  "new_password": "battery staple", "code": wrong})),
            )
            .await;
        assert_eq!(reply.error(), "invalid_otp", "{}", reply.text);
    }

    let right_code = totp_code(&alice.secret, 0);
    let here = app.complete_mfa(&token, &right_code).await;
    let there = other
        .post_json(
            "/auth/mfa",
            &json!({"mfa_token": second_token, "code": right_code}),
        )
        .await;

    for reply in [here, there] {
        assert_eq!(reply.status, 429, "{}", reply.text);
        assert_eq!(reply.error(), "rate_limited");
        let retry: u64 = reply.header("retry-after").parse().expect("Retry-After");
        assert!((1..=300).contains(&retry), "{retry}");
    }
    // The window passes: the right code works again (on a live token).
    app.sql("UPDATE mfa_failures SET window_start = now() - interval '301 seconds'");
    let after = app.complete_mfa(&token, &right_code).await;
    assert_eq!(after.status, 200, "{}", after.text);
}

#[actix_web::test]
async fn step_up_routes_need_a_code_on_totp_accounts() {
    let app = spawn_app().await;
    let alice = enrolled(&app, "alice").await;
    let token = &alice.user.access_token;
    let with = |path: &str, method: reqwest::Method, body: Value| {
        app.client
            .request(method, app.url(path))
            .bearer_auth(token)
            .json(&body)
    };
    let password_body = |code: Option<&str>| {
        let mut body =
            json!({"current_password": "correct horse", "new_password": "battery staple"});
        if let Some(code) = code {
            body["code"] = json!(code);
        }
        body
    };

    let missing = app
        .send(with(
            "/api/me/password",
            reqwest::Method::POST,
            password_body(None),
        ))
        .await;
    let wrong = app
        .send(with(
            "/api/me/password",
            reqwest::Method::POST,
            password_body(Some("000000")),
        ))
        .await;
    let right = app
        .send(with(
            "/api/me/password",
            reqwest::Method::POST,
            password_body(Some(&totp_code(&alice.secret, 0))),
        ))
        .await;

    assert_eq!((missing.status, missing.error()), (401, "mfa_required"));
    assert!(missing.body.get("mfa_token").is_none());
    assert_eq!((wrong.status, wrong.error()), (401, "invalid_otp"));
    assert_eq!(right.status, 204, "{}", right.text);
    assert_eq!(
        app.login("alice", "battery staple").await.error(),
        "mfa_required"
    );

    let delete = |code: Option<&str>| {
        let mut body = json!({"password": "battery staple"});
        if let Some(code) = code {
            body["code"] = json!(code);
        }
        with("/api/me", reqwest::Method::DELETE, body)
    };
    let missing = app.send(delete(None)).await;
    let wrong = app.send(delete(Some("zzzz-zzzz-zzzz-zzzz"))).await;
    let right = app.send(delete(Some(&alice.recovery_codes[0]))).await;
    assert_eq!((missing.status, missing.error()), (401, "mfa_required"));
    assert_eq!((wrong.status, wrong.error()), (401, "invalid_otp"));
    assert_eq!(right.status, 204, "{}", right.text);
    assert_eq!(
        app.login("alice", "battery staple").await.error(),
        "invalid_credentials"
    );
}

#[actix_web::test]
async fn step_up_routes_of_accounts_without_totp_need_no_code() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", "correct horse").await;
    // A pending enrollment is not in force yet.
    app.enroll_totp(&user.access_token, "correct horse").await;

    let reply = app
        .change_password(&user.access_token, "correct horse", "battery staple")
        .await;

    assert_eq!(reply.status, 204, "{}", reply.text);
}

#[actix_web::test]
async fn disabling_needs_password_and_code_and_logins_are_one_step_again() {
    let app = spawn_app().await;
    let alice = enrolled(&app, "alice").await;
    let token = &alice.user.access_token;

    let wrong_password = app
        .disable_totp(token, "wrong horse", &totp_code(&alice.secret, 0))
        .await;
    let wrong_code = app.disable_totp(token, "correct horse", "000000").await;
    let right = app
        .disable_totp(token, "correct horse", &totp_code(&alice.secret, 0))
        .await;
    let again = app
        .disable_totp(token, "correct horse", &totp_code(&alice.secret, 1))
        .await;

    assert_eq!(
        (wrong_password.status, wrong_password.error()),
        (401, "invalid_credentials")
    );
    assert_eq!(
        (wrong_code.status, wrong_code.error()),
        (401, "invalid_otp")
    );
    assert_eq!(right.status, 204, "{}", right.text);
    assert_eq!((again.status, again.error()), (409, "conflict"));
    let login = app.login("alice", "correct horse").await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(claims_of(&login.str("access_token"))["amr"], json!(["pwd"]));
    let account = app.account(token).await;
    assert_eq!(account.body["mfa"]["totp"], false);
    assert_eq!(account.body["mfa"]["recovery_codes_left"], 0);
}

#[actix_web::test]
async fn a_recovery_code_can_disable_totp() {
    let app = spawn_app().await;
    let alice = enrolled(&app, "alice").await;

    let reply = app
        .disable_totp(
            &alice.user.access_token,
            "correct horse",
            &alice.recovery_codes[9],
        )
        .await;

    assert_eq!(reply.status, 204, "{}", reply.text);
}

#[actix_web::test]
async fn new_recovery_codes_replace_the_old_set() {
    let app = spawn_app().await;
    let alice = enrolled(&app, "alice").await;
    let token = &alice.user.access_token;

    let wrong_code = app
        .regenerate_recovery_codes(token, "correct horse", "000000")
        .await;
    let reply = app
        .regenerate_recovery_codes(token, "correct horse", &totp_code(&alice.secret, 0))
        .await;

    assert_eq!(
        (wrong_code.status, wrong_code.error()),
        (401, "invalid_otp")
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.header("cache-control"), "no-store");
    let fresh: Vec<String> = reply.body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fresh.len(), 10);
    assert!(fresh.iter().all(|c| !alice.recovery_codes.contains(c)));
    let old = app
        .complete_mfa(&mfa_token(&app, "alice").await, &alice.recovery_codes[1])
        .await;
    assert_eq!((old.status, old.error()), (401, "invalid_otp"));
    let new = app
        .complete_mfa(&mfa_token(&app, "alice").await, &fresh[0])
        .await;
    assert_eq!(new.status, 200, "{}", new.text);
    let no_totp = app.signed_up("bob", "correct horse").await;
    let conflict = app
        .regenerate_recovery_codes(&no_totp.access_token, "correct horse", "123456")
        .await;
    assert_eq!((conflict.status, conflict.error()), (409, "conflict"));
}

#[actix_web::test]
async fn no_secret_code_or_mfa_token_is_stored_in_plain_text() {
    let app = spawn_app().await;
    let alice = enrolled(&app, "alice").await;
    let token = mfa_token(&app, "alice").await;
    let raw_secret = totp_rs::Secret::Encoded(alice.secret.clone())
        .to_bytes()
        .unwrap();
    let raw_hex: String = raw_secret.iter().map(|b| format!("{b:02x}")).collect();

    // Every column of every second-factor row, as text (bytea as hex).
    let dump = query_text(
        &app,
        "SELECT coalesce(string_agg(t::text, ' '), '') AS value FROM ( \
           SELECT row_to_json(a)::text AS t FROM mfa_totp a \
           UNION ALL SELECT row_to_json(b)::text FROM mfa_recovery_codes b \
           UNION ALL SELECT row_to_json(c)::text FROM mfa_challenges c \
           UNION ALL SELECT row_to_json(d)::text FROM mfa_failures d \
           UNION ALL SELECT row_to_json(e)::text FROM auth_events e) rows",
    );

    assert!(dump.contains("\\\\x"), "bytea columns were dumped: {dump}");
    let lower = dump.to_ascii_lowercase();
    assert!(!lower.contains(&alice.secret.to_ascii_lowercase()));
    assert!(!lower.contains(&raw_hex));
    assert!(!dump.contains(&token));
    for code in &alice.recovery_codes {
        assert!(!lower.contains(code) && !lower.contains(&code.replace('-', "")));
    }
}

#[actix_web::test]
async fn changes_and_failures_are_recorded_as_events_without_codes() {
    let app = spawn_app().await;
    let alice = enrolled(&app, "alice").await;
    let token = &alice.user.access_token;
    app.complete_mfa(&mfa_token(&app, "alice").await, "999999")
        .await;
    app.regenerate_recovery_codes(token, "correct horse", &alice.recovery_codes[0])
        .await;
    app.disable_totp(token, "correct horse", &totp_code(&alice.secret, 0))
        .await;

    let kinds = query_text(
        &app,
        "SELECT string_agg(type, ',' ORDER BY id) AS value FROM auth_events",
    );
    let failure = query_text(
        &app,
        "SELECT detail::text AS value FROM auth_events WHERE type = 'mfa_failed'",
    );

    assert_eq!(
        kinds,
        "login_succeeded,mfa_enabled,mfa_failed,recovery_codes_regenerated,mfa_disabled"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&failure).unwrap(),
        json!({"purpose": "login", "reason": "wrong_code"})
    );
}

#[actix_web::test]
async fn metrics_count_mfa_challenges_and_failures() {
    let app = spawn_app().await;
    let alice = enrolled(&app, "alice").await;
    let token = mfa_token(&app, "alice").await;
    app.complete_mfa(&token, "abc").await;
    app.complete_mfa("unknown", "123456").await;
    app.complete_mfa(&token, &totp_code(&alice.secret, 0)).await;

    let text = app.get("/metrics", None).await.text;

    for needle in [
        "tessera_mfa_challenges_total 1",
        "tessera_mfa_failures_total{reason=\"malformed_code\"} 1",
        "tessera_mfa_failures_total{reason=\"bad_mfa_token\"} 1",
        "tessera_logins_total{result=\"success\"} 2",
    ] {
        assert!(text.contains(needle), "missing {needle}\n{text}");
    }
}

#[actix_web::test]
async fn the_second_step_shares_the_per_ip_login_rate_limit() {
    let app = spawn_app_with(&[("AUTH_RATE_LIMIT_PER_MINUTE", "2")]).await;

    let first = app.complete_mfa("unknown", "123456").await;
    let second = app.complete_mfa("unknown", "123456").await;
    let third = app.complete_mfa("unknown", "123456").await;

    assert_eq!(first.error(), "invalid_otp");
    assert_eq!(second.error(), "invalid_otp");
    assert_eq!((third.status, third.error()), (429, "rate_limited"));
    assert!(!third.header("retry-after").is_empty());
}
