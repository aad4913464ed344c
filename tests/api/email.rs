//! Email on the account, verification, password reset, and the mail
//! outbox, against a local SMTP sink and real PostgreSQL.

use std::time::{Duration, Instant};

use crate::helpers::{spawn_app, spawn_app_with, LoggedIn, TestApp};
use crate::process::{serve, terminate};
use crate::smtp_sink::{Received, SmtpSink};
use crate::test_db::TestDatabase;

/// Long enough for the outbox worker (it polls every second).
const MAIL_WAIT: Duration = Duration::from_secs(10);

/// An app that sends its mail to `sink`.
async fn app_mailing_to(sink: &SmtpSink, extra: &[(&str, &str)]) -> TestApp {
    let url = sink.url();
    let mut vars = vec![("SMTP_URL", url.as_str())];
    vars.extend_from_slice(extra);
    spawn_app_with(&vars).await
}

/// Signs `username` up, sets `email` on the account, verifies it with the
/// mailed token, and returns the login and the verification mail.
async fn verified_account(
    app: &TestApp,
    sink: &SmtpSink,
    username: &str,
    email: &str,
) -> (LoggedIn, Received) {
    let user = app.signed_up(username, "correct horse").await;
    let before = sink.mails().len();
    let reply = app
        .set_email(&user.access_token, email, "correct horse")
        .await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let mail = sink.wait_for(before + 1, MAIL_WAIT).await[before].clone();
    let verified = app.verify_email(&mail.token()).await;
    assert_eq!(verified.status, 204, "{}", verified.text);
    (user, mail)
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Mail rows still in the outbox.
fn pending_mails(app: &TestApp) -> i64 {
    app.sql_text("SELECT count(*) FROM outbox WHERE kind = 'mail' AND sent_at IS NULL")
        .parse()
        .unwrap()
}

/// Waits until no mail is left in the outbox (a sent row goes a moment
/// after the sink has the mail).
async fn wait_for_empty_outbox(app: &TestApp) {
    let deadline = Instant::now() + MAIL_WAIT;
    while pending_mails(app) > 0 {
        assert!(Instant::now() < deadline, "the mail never left the outbox");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn setting_an_address_mails_a_token_that_verifies_it_once() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink, &[]).await;
    let alice = app.signed_up("alice", "correct horse").await;

    let reply = app
        .set_email(&alice.access_token, "Alice@Example.com", "correct horse")
        .await;

    assert_eq!(reply.status, 202, "{}", reply.text);
    assert_eq!(reply.body["email"], "Alice@Example.com");
    assert_eq!(reply.body["email_verified"], false);
    let account = app.account(&alice.access_token).await;
    assert_eq!(account.body["email"], "Alice@Example.com");
    assert_eq!(account.body["email_verified"], false);

    let mail = sink.wait_for(1, MAIL_WAIT).await[0].clone();
    assert_eq!(mail.to, ["Alice@Example.com"]);
    assert_eq!(mail.from, "no-reply@localhost");
    assert_eq!(mail.header("From"), "tessera <no-reply@localhost>");
    assert_eq!(
        mail.header("Subject"),
        "Confirm your email address for tessera"
    );
    assert!(mail.data.contains("multipart/alternative"), "{}", mail.data);
    assert!(mail.data.contains("text/plain") && mail.data.contains("text/html"));
    assert!(!mail.data.contains("correct horse"));

    let verified = app.verify_email(&mail.token()).await;
    assert_eq!(verified.status, 204, "{}", verified.text);
    let account = app.account(&alice.access_token).await;
    assert_eq!(account.body["email_verified"], true);

    let again = app.verify_email(&mail.token()).await;
    assert_eq!(again.status, 401);
    assert_eq!(again.error(), "invalid_otp");
    let events =
        app.sql_text("SELECT string_agg(type, ',') FROM auth_events WHERE type = 'email_verified'");
    assert_eq!(events, "email_verified");
}

#[actix_web::test]
async fn an_invalid_address_is_422_on_email_and_changes_nothing() {
    let app = spawn_app().await;
    let alice = app.signed_up("alice", "correct horse").await;
    let too_long = format!("{}@example.com", "a".repeat(250));

    for bad in [
        "alice",
        "alice@@example.com",
        "a@b@example.com",
        "",
        &too_long,
    ] {
        let reply = app
            .set_email(&alice.access_token, bad, "correct horse")
            .await;
        assert_eq!(reply.status, 422, "{bad:?}: {}", reply.text);
        assert_eq!(reply.error(), "validation_failed");
        assert!(reply.body["fields"]["email"].is_string(), "{}", reply.text);
    }
    assert_eq!(
        app.account(&alice.access_token).await.body["email"],
        serde_json::Value::Null
    );
}

#[actix_web::test]
async fn an_address_another_account_has_in_any_case_is_409_conflict() {
    let app = spawn_app().await;
    let alice = app.signed_up("alice", "correct horse").await;
    let bob = app.signed_up("bob", "correct horse").await;
    let set = app
        .set_email(&alice.access_token, "shared@example.com", "correct horse")
        .await;
    assert_eq!(set.status, 202);

    let reply = app
        .set_email(&bob.access_token, "SHARED@example.COM", "correct horse")
        .await;

    assert_eq!(reply.status, 409, "{}", reply.text);
    assert_eq!(reply.error(), "conflict");
    assert_eq!(
        app.account(&bob.access_token).await.body["email"],
        serde_json::Value::Null
    );
    // Setting one's own address again is no conflict.
    let own = app
        .set_email(&alice.access_token, "Shared@Example.com", "correct horse")
        .await;
    assert_eq!(own.status, 202, "{}", own.text);
}

#[actix_web::test]
async fn setting_an_address_needs_the_password_and_a_token() {
    let app = spawn_app().await;
    let alice = app.signed_up("alice", "correct horse").await;

    let wrong = app
        .set_email(&alice.access_token, "alice@example.com", "wrong horse")
        .await;
    let anonymous = app
        .send(
            app.client
                .put(app.url("/api/me/email"))
                .json(&serde_json::json!({"email": "a@example.com", "password": "x"})),
        )
        .await;

    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.error(), "invalid_credentials");
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.error(), "missing_token");
    assert_eq!(pending_mails(&app), 0);
    assert_eq!(
        app.account(&alice.access_token).await.body["email"],
        serde_json::Value::Null
    );
}

#[actix_web::test]
async fn a_wrong_expired_or_superseded_verification_token_is_401_invalid_otp() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink, &[]).await;
    let alice = app.signed_up("alice", "correct horse").await;
    app.set_email(&alice.access_token, "old@example.com", "correct horse")
        .await;
    let old = sink.wait_for(1, MAIL_WAIT).await[0].token();
    app.set_email(&alice.access_token, "new@example.com", "correct horse")
        .await;
    let new = sink.wait_for(2, MAIL_WAIT).await[1].token();

    let superseded = app.verify_email(&old).await;
    let wrong = app.verify_email("not-a-token").await;
    app.sql("UPDATE one_time_tokens SET expires_at = now() - interval '1 second'");
    let expired = app.verify_email(&new).await;

    for reply in [&superseded, &wrong, &expired] {
        assert_eq!(reply.status, 401, "{}", reply.text);
        assert_eq!(reply.error(), "invalid_otp");
    }
    assert_eq!(
        app.account(&alice.access_token).await.body["email_verified"],
        false
    );
}

#[actix_web::test]
async fn forgot_answers_the_same_for_every_login_and_mails_only_a_verified_address() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink, &[]).await;
    verified_account(&app, &sink, "alice", "alice@example.com").await;
    let bob = app.signed_up("bob", "correct horse").await;
    app.set_email(&bob.access_token, "bob@example.com", "correct horse")
        .await; // never verified
    sink.wait_for(2, MAIL_WAIT).await;

    let replies = [
        app.forgot_password("alice").await,
        app.forgot_password("bob").await,
        app.forgot_password("bob@example.com").await,
        app.forgot_password("nobody").await,
        app.forgot_password("nobody@example.com").await,
        app.forgot_password("nul\u{0}byte").await,
        app.forgot_password(&"x".repeat(5000)).await,
    ];

    for reply in &replies {
        assert_eq!(reply.status, 202, "{}", reply.text);
        assert_eq!(reply.text, replies[0].text);
    }
    let mails = sink.wait_for(3, MAIL_WAIT).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mails_after = sink.mails();
    assert_eq!(mails_after.len(), 3, "only alice gets a reset mail");
    assert_eq!(mails[2].to, ["alice@example.com"]);
    assert_eq!(mails[2].header("Subject"), "Reset your tessera password");
}

#[actix_web::test]
async fn forgot_by_address_in_any_case_mails_at_most_once_a_minute() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink, &[]).await;
    verified_account(&app, &sink, "alice", "Alice@Example.com").await;

    for _ in 0..3 {
        let reply = app.forgot_password("ALICE@example.COM").await;
        assert_eq!(reply.status, 202);
    }
    sink.wait_for(2, MAIL_WAIT).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sink.mails().len(), 2, "one verification and one reset mail");

    // A minute later another one may go out.
    app.sql("UPDATE one_time_tokens SET created_at = created_at - interval '61 seconds'");
    app.forgot_password("alice").await;
    sink.wait_for(3, MAIL_WAIT).await;
    let requested =
        app.sql_text("SELECT count(*) FROM auth_events WHERE type = 'password_reset_requested'");
    assert_eq!(requested, "2");
}

#[actix_web::test]
async fn a_reset_sets_the_password_revokes_every_session_and_its_token_works_once() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(
        &sink,
        &[("PASSWORD_RESET_URL", "https://app.example.com/reset")],
    )
    .await;
    let (phone, _) = verified_account(&app, &sink, "alice", "alice@example.com").await;
    let laptop = app.login("alice", "correct horse").await;
    app.forgot_password("alice").await;
    let mail = sink.wait_for(2, MAIL_WAIT).await[1].clone();
    let unfolded = mail.data.replace("=\r\n", "").replace("=3D", "=");
    let token = mail.token();
    assert!(
        unfolded.contains(&format!("https://app.example.com/reset?token={token}")),
        "{}",
        mail.data
    );

    let reply = app.reset_password(&token, "battery staple").await;

    assert_eq!(reply.status, 204, "{}", reply.text);
    assert_eq!(app.login("alice", "correct horse").await.status, 401);
    assert_eq!(app.login("alice", "battery staple").await.status, 200);
    assert_eq!(app.refresh(&phone.refresh_token).await.status, 401);
    assert_eq!(app.refresh(&laptop.str("refresh_token")).await.status, 401);
    let again = app.reset_password(&token, "another password").await;
    assert_eq!(again.status, 401);
    assert_eq!(again.error(), "invalid_otp");
    assert_eq!(app.login("alice", "battery staple").await.status, 200);
    let reset = app.sql_text("SELECT count(*) FROM auth_events WHERE type = 'password_reset'");
    assert_eq!(reset, "1");
}

#[actix_web::test]
async fn a_reset_with_an_invalid_password_is_422_and_keeps_the_token() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink, &[]).await;
    verified_account(&app, &sink, "alice", "alice@example.com").await;
    app.forgot_password("alice@example.com").await;
    let token = sink.wait_for(2, MAIL_WAIT).await[1].token();

    for bad in ["short", &"x".repeat(73), "nul\u{0}password"] {
        let reply = app.reset_password(&token, bad).await;
        assert_eq!(reply.status, 422, "{}", reply.text);
        assert_eq!(reply.error(), "validation_failed");
        assert!(reply.body["fields"]["new_password"].is_string());
    }

    assert_eq!(
        app.reset_password(&token, "battery staple").await.status,
        204
    );
}

#[actix_web::test]
async fn a_wrong_or_expired_reset_token_is_401_invalid_otp() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink, &[]).await;
    let (_, verification) = verified_account(&app, &sink, "alice", "alice@example.com").await;
    app.forgot_password("alice").await;
    let token = sink.wait_for(2, MAIL_WAIT).await[1].token();

    let wrong = app.reset_password("not-a-token", "battery staple").await;
    // A verification token is no reset token.
    let other_kind = app
        .reset_password(&verification.token(), "battery staple")
        .await;
    app.sql("UPDATE one_time_tokens SET expires_at = now() - interval '1 second'");
    let expired = app.reset_password(&token, "battery staple").await;

    for reply in [&wrong, &other_kind, &expired] {
        assert_eq!(reply.status, 401, "{}", reply.text);
        assert_eq!(reply.error(), "invalid_otp");
    }
    assert_eq!(app.login("alice", "correct horse").await.status, 200);
}

#[actix_web::test]
async fn forgot_is_counted_by_the_per_ip_limit() {
    let app = spawn_app_with(&[("AUTH_RATE_LIMIT_PER_MINUTE", "2")]).await;

    let first = app.forgot_password("alice").await;
    let second = app.forgot_password("alice").await;
    let third = app.forgot_password("alice").await;

    assert_eq!((first.status, second.status), (202, 202));
    assert_eq!(third.status, 429);
    assert_eq!(third.error(), "rate_limited");
    assert!(!third.header("retry-after").is_empty());
}

#[actix_web::test]
async fn without_smtp_url_mails_are_logged_and_leave_the_outbox() {
    let app = spawn_app().await;
    let alice = app.signed_up("alice", "correct horse").await;

    let reply = app
        .set_email(&alice.access_token, "alice@example.com", "correct horse")
        .await;

    assert_eq!(reply.status, 202);
    wait_for_empty_outbox(&app).await;
    assert_eq!(app.sql_text("SELECT count(*) FROM outbox"), "0");
}

#[actix_web::test]
async fn a_down_mail_server_neither_slows_nor_fails_the_request_and_the_mail_waits() {
    let smtp_url = format!("smtp+plain://127.0.0.1:{}", closed_port());
    let app = spawn_app_with(&[("SMTP_URL", smtp_url.as_str())]).await;
    let alice = app.signed_up("alice", "correct horse").await;

    let started = Instant::now();
    let reply = app
        .set_email(&alice.access_token, "alice@example.com", "correct horse")
        .await;

    assert_eq!(reply.status, 202, "{}", reply.text);
    assert!(started.elapsed() < Duration::from_secs(2));
    let deadline = Instant::now() + MAIL_WAIT;
    loop {
        let attempts = app.sql_text("SELECT max(attempts) FROM outbox WHERE kind = 'mail'");
        if attempts.parse::<i32>().unwrap_or(0) >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "no retry: {attempts}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pending_mails(&app), 1);
    let error = app.sql_text("SELECT last_error FROM outbox WHERE kind = 'mail'");
    assert!(error.contains("SMTP"), "{error}");
}

#[actix_web::test]
async fn a_refused_mail_is_delivered_once_the_server_recovers_without_another_request() {
    let sink = SmtpSink::start().await;
    sink.refuse("451 4.3.0 mailbox busy, try later");
    let app = app_mailing_to(&sink, &[]).await;
    let alice = app.signed_up("alice", "correct horse").await;

    let started = Instant::now();
    let reply = app
        .set_email(&alice.access_token, "alice@example.com", "correct horse")
        .await;
    assert_eq!(reply.status, 202);
    assert!(started.elapsed() < Duration::from_secs(2));
    sink.wait_until(MAIL_WAIT, |sink| sink.refused() >= 2).await;
    assert!(sink.mails().is_empty());

    sink.accept();

    let mails = sink.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, ["alice@example.com"]);
    wait_for_empty_outbox(&app).await;
}

#[actix_web::test]
async fn a_permanent_refusal_is_retried_too() {
    let sink = SmtpSink::start().await;
    sink.refuse("554 5.7.1 rejected");
    let app = app_mailing_to(&sink, &[]).await;
    let alice = app.signed_up("alice", "correct horse").await;
    app.set_email(&alice.access_token, "alice@example.com", "correct horse")
        .await;
    sink.wait_until(MAIL_WAIT, |sink| sink.refused() >= 2).await;

    sink.accept();

    sink.wait_for(1, Duration::from_secs(20)).await;
}

#[actix_web::test]
async fn a_mail_queued_before_a_restart_is_sent_after_it() {
    let smtp_down = format!("smtp+plain://127.0.0.1:{}", closed_port());
    let first = spawn_app_with(&[("SMTP_URL", smtp_down.as_str())]).await;
    let alice = first.signed_up("alice", "correct horse").await;
    let reply = first
        .set_email(&alice.access_token, "alice@example.com", "correct horse")
        .await;
    assert_eq!(reply.status, 202);
    // Let the first instance try (and fail) once, then stop it.
    let deadline = Instant::now() + MAIL_WAIT;
    while first.sql_text("SELECT count(*) FROM outbox WHERE last_error IS NOT NULL") != "1" {
        assert!(Instant::now() < deadline, "no first attempt");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.stop().await;
    assert_eq!(pending_mails(&first), 1);

    let sink = SmtpSink::start().await;
    let _second = first.another_instance_with(|settings| {
        settings.smtp_url = tessera::jobs::mail::SmtpEndpoint::parse(&sink.url()).ok();
    });

    let mails = sink.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, ["alice@example.com"]);
    wait_for_empty_outbox(&first).await;
}

#[actix_web::test]
async fn two_instances_on_one_database_never_send_one_mail_twice() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink, &[]).await;
    let other = app.another_instance_with(|_| {});
    let healthz = app
        .send(app.client.get(format!("{}/healthz", other.address)))
        .await;
    assert_eq!(healthz.status, 200, "the second instance runs");
    let mut users = Vec::new();
    for n in 0..12 {
        users.push(app.signed_up(&format!("user{n}"), "correct horse").await);
    }

    let app = &app;
    let requests = users.iter().enumerate().map(|(n, user)| {
        let email = format!("user{n}@example.com");
        async move {
            app.set_email(&user.access_token, &email, "correct horse")
                .await
        }
    });
    for reply in futures_util::future::join_all(requests).await {
        assert_eq!(reply.status, 202, "{}", reply.text);
    }

    sink.wait_for(12, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut recipients: Vec<String> = sink.mails().iter().map(|m| m.to[0].clone()).collect();
    recipients.sort();
    let count = recipients.len();
    recipients.dedup();
    assert_eq!(count, 12, "{recipients:?}");
    assert_eq!(recipients.len(), 12);
}

#[actix_web::test]
async fn no_token_is_logged_or_stored_in_plain_text() {
    let sink = SmtpSink::start().await;
    let db = TestDatabase::create();
    let mut served = serve(&db, &[("SMTP_URL", sink.url().as_str())]);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let post = |path: &str, body: serde_json::Value| {
        client
            .post(format!("{}{path}", served.address))
            .json(&body)
            .send()
    };
    post(
        "/auth/register",
        serde_json::json!({"username": "alice", "password": "correct horse"}),
    )
    .await
    .unwrap();
    let login: serde_json::Value = post(
        "/auth/token",
        serde_json::json!({"username": "alice", "password": "correct horse"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let access = login["access_token"].as_str().unwrap().to_owned();
    let set = client
        .put(format!("{}/api/me/email", served.address))
        .bearer_auth(&access)
        .json(&serde_json::json!({"email": "alice@example.com", "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 202);
    let verification = sink.wait_for(1, MAIL_WAIT).await[0].token();
    let verified = post(
        "/auth/email/verify",
        serde_json::json!({"token": verification}),
    )
    .await
    .unwrap();
    assert_eq!(verified.status(), 204);
    post(
        "/auth/password/forgot",
        serde_json::json!({"login": "alice"}),
    )
    .await
    .unwrap();
    let reset = sink.wait_for(2, MAIL_WAIT).await[1].token();

    // Stored: only hashes, and sent mails have left the outbox.
    let mut conn = db.connect();
    let deadline = Instant::now() + MAIL_WAIT;
    while !database_text(&mut conn, "SELECT count(*)::text FROM outbox").starts_with('0') {
        assert!(Instant::now() < deadline, "the mails never left the outbox");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dump = database_text(&mut conn, DUMP);
    assert!(
        dump.contains("alice@example.com"),
        "the dump reads the tables"
    );
    for token in [&verification, &reset] {
        assert!(!dump.contains(token.as_str()), "the database holds a token");
    }

    let done = post(
        "/auth/password/reset",
        serde_json::json!({"token": reset, "new_password": "battery staple"}),
    )
    .await
    .unwrap();
    assert_eq!(done.status(), 204);
    let status = terminate(&mut served);
    std::thread::sleep(Duration::from_millis(200));
    let log = served.log.lock().unwrap().clone();
    assert!(status.success());
    assert!(log.contains("sent to alice@example.com"), "{log}");
    for secret in [&verification, &reset] {
        assert!(!log.contains(secret.as_str()), "the log leaks a token");
    }
}

/// Every row of the tables that email touches, as text.
const DUMP: &str = "SELECT coalesce((SELECT string_agg(u::text, ' ') FROM users u), '') || ' ' || \
        coalesce((SELECT string_agg(t::text || encode(t.token_hash, 'escape'), ' ') FROM one_time_tokens t), '') || ' ' || \
        coalesce((SELECT string_agg(o::text, ' ') FROM outbox o), '') || ' ' || \
        coalesce((SELECT string_agg(e::text, ' ') FROM auth_events e), '')";

/// The one text value `query` selects.
fn database_text(conn: &mut diesel::PgConnection, query: &str) -> String {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Text {
        #[diesel(sql_type = diesel::sql_types::Text)]
        text: String,
    }
    diesel::sql_query(format!("SELECT ({query}) AS text"))
        .get_result::<Text>(conn)
        .expect("query")
        .text
}
