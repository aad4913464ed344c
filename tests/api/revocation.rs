//! Immediate revocation (README "Immediate revocation"): after every kind
//! of revocation the session's access tokens are refused with 401
//! `invalid_token` at once by the instance that revoked it and within 1 s
//! by another instance on the same database (the latency is measured and
//! printed), also when the listening connection was just killed, after a
//! restart, and from memory while the database is down. Tokens of sessions
//! that were not revoked keep working.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use tessera::jobs::revocations::{APPLICATION_NAME, POLL_INTERVAL};

use crate::chaos_proxy::ChaosProxy;
use crate::helpers::{spawn_app_on, spawn_app_with, LoggedIn, Reply, TestApp};
use crate::test_db::TestDatabase;

/// The bound on cross-instance revocation.
const BOUND: Duration = Duration::from_secs(1);

/// Another instance on the same database as `app`.
async fn another_instance(app: &TestApp, overrides: &[(&str, &str)]) -> TestApp {
    spawn_app_on(app.db.share(), app.db.url(), overrides).await
}

/// Two instances on one database.
async fn two_instances(overrides: &[(&str, &str)]) -> (TestApp, TestApp) {
    let first = spawn_app_with(overrides).await;
    let second = another_instance(&first, overrides).await;
    (first, second)
}

/// Asserts the refusal of a revoked session's token: 401 `invalid_token`
/// and the bearer challenge naming the reason.
fn assert_revoked(what: &str, reply: &Reply) {
    assert_eq!(reply.status, 401, "{what}: {}", reply.text);
    assert_eq!(reply.error(), "invalid_token", "{what}: {}", reply.text);
    let challenge = reply.header("www-authenticate");
    assert!(
        challenge.starts_with("Bearer ")
            && challenge.contains("error=\"invalid_token\"")
            && challenge.contains("error_description=\"the session has been revoked\""),
        "{what}: {challenge}"
    );
}

/// Asserts that `token` works on every instance (which also puts it in
/// each one's verified-token cache, so the refusal later cannot come from
/// a cache miss).
async fn assert_accepted(apps: &[&TestApp], token: &str) {
    for (i, app) in apps.iter().enumerate() {
        let me = app.me(token).await;
        assert_eq!(me.status, 200, "instance {i}: {}", me.text);
    }
}

/// Polls `/api/me` on `app` until the token is refused; fails after
/// [`BOUND`] from `since`. Returns the time from `since` to the refusal.
async fn refused_within_bound(app: &TestApp, token: &str, since: Instant) -> Duration {
    loop {
        let reply = app.me(token).await;
        let elapsed = since.elapsed();
        if reply.status != 200 {
            assert_revoked("other instance", &reply);
            return elapsed;
        }
        assert!(
            elapsed < BOUND,
            "the other instance still accepts the token after {elapsed:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The instance that revoked refuses the token on the very next request;
/// the other within [`BOUND`] of the revocation's answer. Prints and
/// returns the cross-instance latency.
async fn assert_refused_on_both(what: &str, here: &TestApp, there: &TestApp, token: &str) {
    let since = Instant::now();
    assert_revoked(what, &here.me(token).await);
    let latency = refused_within_bound(there, token, since).await;
    eprintln!("{what}: refused by the other instance {latency:?} after the revocation answered");
}

/// A second session for a signed-up user: (access token, session id).
async fn second_session(app: &TestApp, username: &str) -> (String, String) {
    let login = app.login(username, "correct horse").await;
    assert_eq!(login.status, 200, "{}", login.text);
    let token = login.str("access_token");
    let sid = app.me(&token).await.str("session_id");
    (token, sid)
}

#[actix_web::test]
async fn logging_out_refuses_the_access_token_at_once_here_and_within_1_s_on_another_instance() {
    let (first, second) = two_instances(&[]).await;
    let alice = first.signed_up("alice", "correct horse").await;
    let (other_token, _) = second_session(&first, "alice").await;
    assert_accepted(&[&first, &second], &alice.access_token).await;

    let logout = first.logout(&alice.refresh_token).await;
    assert_eq!(logout.status, 204, "{}", logout.text);

    assert_refused_on_both("logout", &first, &second, &alice.access_token).await;
    assert_accepted(&[&first, &second], &other_token).await;
}

#[actix_web::test]
async fn revoking_one_session_refuses_its_token_everywhere_and_the_other_session_keeps_working() {
    let (first, second) = two_instances(&[]).await;
    let alice = first.signed_up("alice", "correct horse").await;
    let (laptop_token, laptop_sid) = second_session(&first, "alice").await;
    assert_accepted(&[&first, &second], &laptop_token).await;

    let revoked = first.revoke_session(&alice.access_token, &laptop_sid).await;
    assert_eq!(revoked.status, 204, "{}", revoked.text);

    assert_refused_on_both("revoke one", &first, &second, &laptop_token).await;
    assert_accepted(&[&first, &second], &alice.access_token).await;
}

#[actix_web::test]
async fn revoking_all_sessions_refuses_every_token_on_both_instances() {
    let (first, second) = two_instances(&[]).await;
    let alice = first.signed_up("alice", "correct horse").await;
    let (laptop_token, _) = second_session(&first, "alice").await;
    let bob = first.signed_up("bobby", "correct horse").await;
    assert_accepted(&[&first, &second], &alice.access_token).await;
    assert_accepted(&[&first, &second], &laptop_token).await;

    let revoked = second.revoke_all_sessions(&laptop_token).await;
    assert_eq!(revoked.status, 204, "{}", revoked.text);

    assert_refused_on_both("revoke all", &second, &first, &laptop_token).await;
    assert_refused_on_both("revoke all", &second, &first, &alice.access_token).await;
    assert_accepted(&[&first, &second], &bob.access_token).await;
}

#[actix_web::test]
async fn refresh_token_reuse_refuses_the_session_s_access_tokens_on_both_instances() {
    let strict = [("REFRESH_REUSE_GRACE_SECONDS", "0")];
    let (first, second) = two_instances(&strict).await;
    let alice = first.signed_up("alice", "correct horse").await;
    let rotated = first.refresh(&alice.refresh_token).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let newest = rotated.str("access_token");
    assert_accepted(&[&first, &second], &newest).await;

    let reuse = first.refresh(&alice.refresh_token).await;
    assert_eq!(reuse.error(), "invalid_grant", "{}", reuse.text);

    assert_refused_on_both("reuse detection", &first, &second, &newest).await;
    assert_revoked("the older token", &second.me(&alice.access_token).await);
}

#[actix_web::test]
async fn changing_the_password_refuses_the_other_sessions_tokens_and_keeps_the_caller_s() {
    let (first, second) = two_instances(&[]).await;
    let alice = first.signed_up("alice", "correct horse").await;
    let (laptop_token, _) = second_session(&first, "alice").await;
    assert_accepted(&[&first, &second], &laptop_token).await;

    let changed = first
        .change_password(&alice.access_token, "correct horse", "battery staple")
        .await;
    assert_eq!(changed.status, 204, "{}", changed.text);

    assert_refused_on_both("password change", &first, &second, &laptop_token).await;
    assert_accepted(&[&first, &second], &alice.access_token).await;
}

#[actix_web::test]
async fn deleting_the_account_refuses_its_tokens_on_both_instances_and_after_a_restart() {
    let db = TestDatabase::create();
    let first = spawn_app_on(db.share(), db.url(), &[]).await;
    let second = another_instance(&first, &[]).await;
    let alice = first.signed_up("alice", "correct horse").await;
    let (laptop_token, _) = second_session(&first, "alice").await;
    let bob = first.signed_up("bobby", "correct horse").await;
    assert_accepted(&[&first, &second], &laptop_token).await;

    let deleted = first
        .delete_account(&alice.access_token, "correct horse")
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);

    assert_refused_on_both("account deletion", &first, &second, &alice.access_token).await;
    assert_refused_on_both("account deletion", &first, &second, &laptop_token).await;
    // The sessions rows are gone with the account; the revocations stay.
    drop(first);
    drop(second);
    let restarted = spawn_app_on(db.share(), db.url(), &[]).await;
    assert_revoked("after a restart", &restarted.me(&alice.access_token).await);
    assert_revoked("after a restart", &restarted.me(&laptop_token).await);
    assert_accepted(&[&restarted], &bob.access_token).await;
}

#[actix_web::test]
async fn a_restarted_instance_refuses_tokens_of_sessions_revoked_before_it_started() {
    let db = TestDatabase::create();
    let before = spawn_app_on(db.share(), db.url(), &[]).await;
    let alice: LoggedIn = before.signed_up("alice", "correct horse").await;
    let (laptop_token, _) = second_session(&before, "alice").await;
    assert_eq!(before.logout(&alice.refresh_token).await.status, 204);
    drop(before);

    let after = spawn_app_on(db.share(), db.url(), &[]).await;

    assert_revoked("first request", &after.me(&alice.access_token).await);
    assert_accepted(&[&after], &laptop_token).await;
}

/// Listening connections of the revocation listeners on `app`'s database.
fn listeners(app: &TestApp) -> usize {
    let mut conn = app.db.connect();
    diesel::sql_query(format!(
        "SELECT pid FROM pg_stat_activity \
         WHERE application_name = '{APPLICATION_NAME}' AND datname = current_database()"
    ))
    .execute(&mut conn)
    .expect("read pg_stat_activity")
}

/// Waits until `count` listeners are connected, failing after `within`.
async fn wait_for_listeners(app: &TestApp, count: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while listeners(app) < count {
        assert!(
            Instant::now() < deadline,
            "{count} listener(s) not connected within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn with_the_listening_connection_killed_a_revocation_is_still_refused_within_the_poll_interval(
) {
    let (first, second) = two_instances(&[]).await;
    let alice = first.signed_up("alice", "correct horse").await;
    let (laptop_token, _) = second_session(&first, "alice").await;
    assert_accepted(&[&first, &second], &alice.access_token).await;
    wait_for_listeners(&first, 2, Duration::from_secs(5)).await;

    let mut conn = first.db.connect();
    let killed = diesel::sql_query(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = '{APPLICATION_NAME}' AND datname = current_database()"
    ))
    .execute(&mut conn)
    .expect("terminate the listeners");
    assert_eq!(killed, 2);
    let logout = first.logout(&alice.refresh_token).await;
    assert_eq!(logout.status, 204, "{}", logout.text);

    let since = Instant::now();
    assert_revoked("here", &first.me(&alice.access_token).await);
    let latency = refused_within_bound(&second, &alice.access_token, since).await;
    eprintln!("with the listener killed: refused by the other instance after {latency:?}");
    assert!(latency < POLL_INTERVAL * 2, "{latency:?}");
    // Both listeners are back, and a later revocation travels by NOTIFY.
    wait_for_listeners(&first, 2, Duration::from_secs(5)).await;
    let revoked = first.revoke_all_sessions(&laptop_token).await;
    assert_eq!(revoked.status, 204, "{}", revoked.text);
    assert_refused_on_both("after reconnecting", &first, &second, &laptop_token).await;
}

#[actix_web::test]
async fn during_a_database_outage_the_guard_keeps_answering_from_memory() {
    let db = TestDatabase::create();
    let (proxy, url) = ChaosProxy::for_database_url(db.url());
    let app = spawn_app_on(db, &url, &[]).await;
    let alice = app.signed_up("alice", "correct horse").await;
    let (laptop_token, laptop_sid) = second_session(&app, "alice").await;
    let revoked = app.revoke_session(&alice.access_token, &laptop_sid).await;
    assert_eq!(revoked.status, 204, "{}", revoked.text);

    proxy.cut();
    for _ in 0..3 {
        assert_revoked("during the outage", &app.me(&laptop_token).await);
        let me = app.me(&alice.access_token).await;
        assert_eq!(me.status, 200, "during the outage: {}", me.text);
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    proxy.restore();

    assert_revoked("after the outage", &app.me(&laptop_token).await);
    assert_accepted(&[&app], &alice.access_token).await;
}
