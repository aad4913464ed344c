//! Database outages (SPEC §4: 503 `unavailable`), simulated with a chaos
//! proxy between the app and PostgreSQL: every database route answers 503
//! with `Retry-After` within 5 s and never hangs or answers 500; the
//! routes that need no database keep working (the guard answers from
//! memory); the app recovers by itself; and a registration cut mid-flight
//! is all or nothing.

use std::future::Future;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use tessera::db::schema::users;

use crate::chaos_proxy::ChaosProxy;
use crate::helpers::{spawn_app_on, LoggedIn, Reply, TestApp};
use crate::test_db::TestDatabase;

/// The bound every answer must meet while the database is gone.
const BOUND: Duration = Duration::from_secs(5);

/// The app reaching its database through a chaos proxy.
struct BehindProxy {
    app: TestApp,
    proxy: ChaosProxy,
}

/// Spawns the app with its `DATABASE_URL` leading through a fresh proxy;
/// the database itself is created and migrated directly.
async fn spawn_app_behind_proxy(overrides: &[(&str, &str)]) -> BehindProxy {
    let db = TestDatabase::create();
    let (proxy, url) = ChaosProxy::for_database_url(db.url());
    let app = spawn_app_on(db, &url, overrides).await;
    BehindProxy { app, proxy }
}

/// One way for the database to go away.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Connections closed, new ones refused.
    Cut,
    /// Connections closed, new ones accepted and never answered.
    Blackhole,
    /// Connections kept open with nothing flowing.
    Freeze,
}

impl Fault {
    fn apply(self, proxy: &ChaosProxy) {
        match self {
            Self::Cut => proxy.cut(),
            Self::Blackhole => proxy.blackhole(),
            Self::Freeze => proxy.freeze(),
        }
    }
}

/// Awaits `request`, failing the test if it takes longer than [`BOUND`].
async fn within_bound<F: Future<Output = Reply>>(what: &str, request: F) -> Reply {
    let started = Instant::now();
    match tokio::time::timeout(BOUND, request).await {
        Ok(reply) => {
            // Shown with --nocapture: how long each answer took.
            eprintln!("{what}: {} in {:?}", reply.status, started.elapsed());
            reply
        }
        Err(_) => panic!("{what}: no answer within {BOUND:?}"),
    }
}

/// Asserts the SPEC §4 outage answer: 503, `unavailable`, `Retry-After`,
/// the JSON envelope.
fn assert_unavailable(what: &str, reply: &Reply) {
    assert_eq!(reply.status, 503, "{what}: {}", reply.text);
    assert_eq!(reply.error(), "unavailable", "{what}: {}", reply.text);
    let retry_after = reply.header("retry-after");
    assert!(
        retry_after.parse::<u64>().is_ok_and(|s| s >= 1),
        "{what}: Retry-After {retry_after:?}"
    );
    assert!(
        reply.header("content-type").starts_with("application/json"),
        "{what}: {:?}",
        reply.header("content-type")
    );
    assert!(!reply.str("message").is_empty(), "{what}: {}", reply.text);
}

/// A user with two sessions, so there is another session to revoke.
struct Arranged {
    alice: LoggedIn,
    other_session_id: String,
}

async fn arrange(app: &TestApp) -> Arranged {
    let alice = app.signed_up("alice", "correct horse").await;
    let other = app.login("alice", "correct horse").await;
    assert_eq!(other.status, 200, "{}", other.text);
    let other_session_id = app.me(&other.str("access_token")).await.str("session_id");
    Arranged {
        alice,
        other_session_id,
    }
}

/// Every database route answers 503 `unavailable` within the bound; the
/// routes that need no database keep answering 200.
async fn assert_routes_fail_well(app: &TestApp, user: &Arranged) {
    let access = user.alice.access_token.as_str();
    let refresh = user.alice.refresh_token.as_str();

    let readyz = within_bound("GET /readyz", app.get("/readyz", None)).await;
    assert_unavailable("GET /readyz", &readyz);
    let login = within_bound("POST /auth/token", app.login("alice", "correct horse")).await;
    assert_unavailable("POST /auth/token", &login);
    let register = within_bound(
        "POST /auth/register",
        app.register("bobby", "correct horse"),
    )
    .await;
    assert_unavailable("POST /auth/register", &register);
    let refreshed = within_bound("POST /auth/refresh", app.refresh(refresh)).await;
    assert_unavailable("POST /auth/refresh", &refreshed);
    let logout = within_bound("POST /auth/logout", app.logout(refresh)).await;
    assert_unavailable("POST /auth/logout", &logout);
    let sessions = within_bound("GET /api/sessions", app.sessions(access)).await;
    assert_unavailable("GET /api/sessions", &sessions);
    let revoke_one = within_bound(
        "DELETE /api/sessions/{id}",
        app.revoke_session(access, &user.other_session_id),
    )
    .await;
    assert_unavailable("DELETE /api/sessions/{id}", &revoke_one);
    let revoke_all = within_bound("DELETE /api/sessions", app.revoke_all_sessions(access)).await;
    assert_unavailable("DELETE /api/sessions", &revoke_all);
    let password = within_bound(
        "POST /api/me/password",
        app.change_password(access, "correct horse", "battery staple"),
    )
    .await;
    assert_unavailable("POST /api/me/password", &password);
    let delete = within_bound(
        "DELETE /api/me",
        app.delete_account(access, "correct horse"),
    )
    .await;
    assert_unavailable("DELETE /api/me", &delete);

    let me = within_bound("GET /api/me", app.me(access)).await;
    assert_eq!(me.status, 200, "the guard answers from memory: {}", me.text);
    assert_eq!(me.str("username"), "alice");
    let healthz = within_bound("GET /healthz", app.get("/healthz", None)).await;
    assert_eq!(healthz.status, 200, "{}", healthz.text);
}

/// Polls login until it answers 200, failing after the bound.
async fn assert_login_recovers_within_bound(app: &TestApp) {
    let restored = Instant::now();
    let deadline = restored + BOUND;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let reply = tokio::time::timeout(remaining, app.login("alice", "correct horse")).await;
        match reply {
            Ok(reply) if reply.status == 200 => {
                eprintln!("login recovered {:?} after the restore", restored.elapsed());
                return;
            }
            Ok(reply) => assert_ne!(reply.status, 500, "{}", reply.text),
            Err(_) => {}
        }
        assert!(
            Instant::now() < deadline,
            "login did not recover within {BOUND:?} of the restore"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The whole scenario for one fault: fail well, then recover, with the
/// data untouched by the failed writes.
async fn outage_scenario(fault: Fault) {
    let BehindProxy { app, proxy } = spawn_app_behind_proxy(&[]).await;
    let user = arrange(&app).await;

    fault.apply(&proxy);
    assert_routes_fail_well(&app, &user).await;
    proxy.restore();

    assert_login_recovers_within_bound(&app).await;
    let ready = within_bound("GET /readyz", app.get("/readyz", None)).await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    // None of the refused writes happened: both sessions are still live
    // and the old password still works (the login above used it).
    let sessions = app.sessions(&user.alice.access_token).await;
    assert_eq!(sessions.status, 200, "{}", sessions.text);
    assert!(
        sessions.body["sessions"].as_array().map_or(0, Vec::len) >= 2,
        "{}",
        sessions.text
    );
    let refreshed = app.refresh(&user.alice.refresh_token).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    drop(proxy);
}

#[actix_web::test]
async fn a_cut_database_gives_503_within_5_s_on_every_route_and_login_recovers_after_restore() {
    outage_scenario(Fault::Cut).await;
}

#[actix_web::test]
async fn a_blackholed_database_gives_503_within_5_s_on_every_route_and_login_recovers_after_restore(
) {
    outage_scenario(Fault::Blackhole).await;
}

#[actix_web::test]
async fn a_frozen_database_gives_503_within_5_s_on_every_route_and_login_recovers_after_restore() {
    outage_scenario(Fault::Freeze).await;
}

/// What became of one registration cut mid-flight.
#[derive(Debug, Default)]
struct Outcomes {
    created: usize,
    refused_and_absent: usize,
    refused_but_committed: usize,
}

/// The stored password hashes of `username` (none, or one).
fn stored_hashes(db: &TestDatabase, username: &str) -> Vec<String> {
    let mut conn = db.connect();
    users::table
        .filter(users::username.eq(username))
        .select(users::password_hash)
        .load::<String>(&mut conn)
        .expect("read users")
}

#[actix_web::test]
async fn a_registration_cut_mid_flight_is_all_or_nothing() {
    // A slow hash widens the window between the request and the insert.
    let BehindProxy { app, proxy } = spawn_app_behind_proxy(&[("BCRYPT_COST", "11")]).await;
    let password = "correct horse";
    let started = Instant::now();
    let warm_up = app.register("warmup", password).await;
    assert_eq!(warm_up.status, 201, "{}", warm_up.text);
    let one_registration = started.elapsed();

    let mut outcomes = Outcomes::default();
    // Cut at offsets spread over the hashing and the insert, and just past.
    for step in 0..8u32 {
        let username = format!("user{step}");
        let offset = one_registration * step / 6;
        let client = app.client.clone();
        let url = app.url("/auth/register");
        let body = serde_json::json!({"username": username, "password": password});
        let in_flight = actix_web::rt::spawn(async move {
            let response = client.post(url).json(&body).send().await.expect("request");
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            (status, text)
        });
        tokio::time::sleep(offset).await;
        proxy.cut();
        let (status, text) = tokio::time::timeout(BOUND + one_registration, in_flight)
            .await
            .unwrap_or_else(|_| panic!("{username}: no answer while cut"))
            .expect("request task");
        proxy.restore();

        assert!(
            status == 201 || status == 503,
            "{username} (cut after {offset:?}): {status} {text}"
        );
        let hashes = stored_hashes(&app.db, &username);
        assert!(hashes.len() <= 1);
        for hash in &hashes {
            assert!(bcrypt::verify(password, hash).unwrap_or(false), "{hash}");
        }
        if status == 201 {
            assert_eq!(hashes.len(), 1, "{username}: 201 but no row");
            outcomes.created += 1;
        } else if hashes.is_empty() {
            outcomes.refused_and_absent += 1;
        } else {
            // The insert committed but its answer was lost with the
            // connection: the account is whole, a retry says 409.
            outcomes.refused_but_committed += 1;
        }
        let retry = recovering(|| app.register(&username, password)).await;
        match hashes.len() {
            0 => assert_eq!(retry.status, 201, "{username}: {}", retry.text),
            _ => assert_eq!(retry.status, 409, "{username}: {}", retry.text),
        }
        let login = recovering(|| app.login(&username, password)).await;
        assert_eq!(login.status, 200, "{username}: {}", login.text);
    }
    eprintln!("registration cut mid-flight (one takes {one_registration:?}): {outcomes:?}");
    assert!(
        outcomes.refused_and_absent > 0,
        "no cut landed before the insert: {outcomes:?}"
    );
}

/// Repeats `request` while it answers 503 (the pool reconnecting after a
/// restore), for at most the bound.
async fn recovering<F, Fut>(request: F) -> Reply
where
    F: Fn() -> Fut,
    Fut: Future<Output = Reply>,
{
    let deadline = Instant::now() + BOUND;
    loop {
        let reply = request().await;
        if reply.status != 503 || Instant::now() >= deadline {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
