//! Brute-force defence: the per-username throttle, the shared per-IP
//! budget and the weak-password rules (README "Brute-force defence").

use std::time::{Duration, Instant};

use futures_util::future::join_all;

use crate::helpers::{spawn_app_on, spawn_app_with, Reply, TestApp};

const GOOD: &str = "correct horse battery";

/// An app whose names are throttled after `failures` failed checks (with a
/// generous database timeout: these tests assert 429s, not 503s, on a
/// machine that may be busy).
async fn throttled_after(failures: u32) -> TestApp {
    spawn_app_with(&[
        ("LOGIN_FAILURES_BEFORE_DELAY", &failures.to_string()),
        ("DB_TIMEOUT_SECONDS", "5"),
    ])
    .await
}

fn retry_after(reply: &Reply) -> u64 {
    reply
        .header("retry-after")
        .parse()
        .unwrap_or_else(|_| panic!("no Retry-After: {:?}", reply.headers))
}

#[actix_web::test]
async fn after_n_failures_the_name_is_throttled_even_for_the_right_password() {
    let app = throttled_after(3).await;
    app.register("alice", GOOD).await;

    for _ in 0..3 {
        assert_eq!(app.login("alice", "wrong password").await.status, 401);
    }
    let refused = app.login("alice", GOOD).await;

    assert_eq!(refused.status, 429, "{}", refused.text);
    assert_eq!(refused.error(), "rate_limited");
    assert!(refused.body["message"].is_string());
    assert_eq!(retry_after(&refused), 1);
}

#[actix_web::test]
async fn the_delay_ends_and_a_success_resets_the_count() {
    let app = throttled_after(2).await;
    app.register("alice", GOOD).await;
    for _ in 0..2 {
        app.login("alice", "wrong password").await;
    }
    assert_eq!(app.login("alice", GOOD).await.status, 429);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.login("alice", GOOD).await.status, 200);

    // Reset: one failure is below the threshold again.
    assert_eq!(app.login("alice", "wrong password").await.status, 401);
    assert_eq!(app.login("alice", GOOD).await.status, 200);
    assert_eq!(app.sql_count("SELECT count(*) AS n FROM login_throttle"), 0);
}

#[actix_web::test]
async fn the_delay_doubles_with_each_further_failure() {
    let app = throttled_after(1).await;

    assert_eq!(app.login("nobody", "wrong password").await.status, 401);
    assert_eq!(retry_after(&app.login("nobody", "x").await), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.login("nobody", "wrong password").await.status, 401);
    assert_eq!(retry_after(&app.login("nobody", "x").await), 2);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(app.login("nobody", "wrong password").await.status, 401);
    assert_eq!(retry_after(&app.login("nobody", "x").await), 4);
}

#[actix_web::test]
async fn the_delay_is_capped_at_fifteen_minutes() {
    let app = throttled_after(1).await;
    app.login("nobody", "wrong password").await;
    // Forty more failures, as if each had waited out its delay.
    app.sql("UPDATE login_throttle SET failures = 40, blocked_until = now() - interval '1 second'");
    assert_eq!(app.login("nobody", "wrong password").await.status, 401);

    let refused = app.login("nobody", "x").await;

    assert_eq!(refused.status, 429);
    assert_eq!(retry_after(&refused), 900);
}

#[actix_web::test]
async fn unknown_names_and_any_case_count_the_same() {
    let app = throttled_after(3).await;

    for name in ["Ghost", "GHOST", "ghost"] {
        assert_eq!(app.login(name, "wrong password").await.status, 401);
    }

    assert_eq!(app.login("gHoSt", "wrong password").await.status, 429);
    // Another name is not affected.
    assert_eq!(app.login("ghost2", "wrong password").await.status, 401);
}

#[actix_web::test]
async fn twenty_concurrent_wrong_logins_each_count() {
    let app = throttled_after(20).await;
    app.register("alice", GOOD).await;

    let replies = join_all((0..20).map(|_| app.login("alice", "wrong password"))).await;

    assert!(
        replies.iter().all(|r| r.status == 401),
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(
        app.sql_count("SELECT failures::bigint AS n FROM login_throttle"),
        20
    );
    // The twentieth failure reached the threshold: the name is throttled
    // (for 1 s, which a busy machine may already have spent).
    assert_eq!(
        app.sql_count("SELECT count(*) AS n FROM login_throttle WHERE blocked_until IS NOT NULL"),
        1
    );
}

#[actix_web::test]
async fn a_throttled_login_answers_without_running_bcrypt_and_is_recorded() {
    // At cost 12 one bcrypt check takes a few hundred milliseconds here.
    let app = spawn_app_with(&[
        ("LOGIN_FAILURES_BEFORE_DELAY", "1"),
        ("BCRYPT_COST", "12"),
        ("DB_TIMEOUT_SECONDS", "5"),
    ])
    .await;
    let started = Instant::now();
    assert_eq!(app.login("alice", "wrong password").await.status, 401);
    let checked = started.elapsed();
    // Keep the name throttled for the whole measurement on a busy machine.
    app.sql("UPDATE login_throttle SET blocked_until = now() + interval '1 minute'");

    let mut refused = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        assert_eq!(app.login("alice", "wrong password").await.status, 429);
        refused.push(started.elapsed());
    }
    refused.sort();

    let median = refused[refused.len() / 2];
    println!(
        "bcrypt-checked failure: {checked:?}; throttled answers: median {median:?}, max {:?}",
        refused[refused.len() - 1]
    );
    assert!(
        median * 4 < checked,
        "throttled {median:?} vs checked {checked:?}"
    );
    assert_eq!(
        app.sql_count("SELECT count(*) AS n FROM auth_events WHERE type = 'login_throttled'"),
        20
    );
}

#[actix_web::test]
async fn the_event_of_a_throttled_login_names_the_account_and_no_secret() {
    let app = throttled_after(1).await;
    let user = app.signed_up("alice", GOOD).await;
    app.login("alice", "wrong password").await;

    assert_eq!(app.login("alice", "hunter2hunter2").await.status, 429);

    assert_eq!(
        app.sql_count(&format!(
            "SELECT count(*) AS n FROM auth_events WHERE type = 'login_throttled' \
             AND user_id = '{}' AND detail->>'retry_after' = '1' \
             AND detail::text NOT LIKE '%hunter2%'",
            user.user_id
        )),
        1
    );
}

#[actix_web::test]
async fn huge_and_odd_names_are_keyed_by_a_hash_and_throttled_too() {
    let app = throttled_after(2).await;
    let huge = format!("{}\0tail", "é".repeat(5 * 1024));

    assert_eq!(app.login(&huge, "wrong password").await.status, 401);
    assert_eq!(app.login(&huge, "wrong password").await.status, 401);
    let refused = app.login(&huge, "wrong password").await;

    assert_eq!(refused.status, 429, "{}", refused.text);
    assert_eq!(
        app.sql_count("SELECT max(octet_length(name_hash))::bigint AS n FROM login_throttle"),
        32
    );
}

/// Logs in as `n` random names, `parallel` at a time; returns the statuses
/// that were not 401 (0: the connection failed, e.g. a keep-alive
/// connection the server closed just as the client reused it).
async fn spray(app: &TestApp, n: usize, parallel: usize) -> Vec<u16> {
    let mut odd = Vec::new();
    let names: Vec<String> = (0..n)
        .map(|_| uuid::Uuid::new_v4().simple().to_string())
        .collect();
    for chunk in names.chunks(parallel) {
        let statuses = join_all(chunk.iter().map(|name| async move {
            app.client
                .post(app.url("/auth/token"))
                .json(&serde_json::json!({"username": name, "password": "wrong password"}))
                .send()
                .await
                .map_or(0, |reply| reply.status().as_u16())
        }))
        .await;
        odd.extend(statuses.into_iter().filter(|s| *s != 401));
    }
    odd
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

#[actix_web::test]
async fn a_spray_of_random_names_is_answered_401_with_one_row_each() {
    let app = spawn_app_with(&[
        ("LOGIN_FAILURES_BEFORE_DELAY", "5"),
        ("DB_POOL_SIZE", "8"),
        ("DB_TIMEOUT_SECONDS", "5"),
    ])
    .await;

    let odd = spray(&app, 400, 16).await;

    assert!(odd.is_empty(), "{odd:?}");
    assert_eq!(
        app.sql_count("SELECT count(*) AS n FROM login_throttle"),
        400
    );
}

/// The figure for README "Brute-force defence": rows and memory after a
/// large spray. `SPRAY_NAMES` (default 100000) random names, 32 at a time.
/// Run by hand: `cargo test --release --test api brute_force::spray -- --ignored --nocapture`.
#[actix_web::test]
#[ignore = "a measurement (minutes); run by hand"]
async fn spray_measurement() {
    let n: usize = std::env::var("SPRAY_NAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let app = spawn_app_with(&[("DB_POOL_SIZE", "8"), ("DB_TIMEOUT_SECONDS", "5")]).await;
    let before = rss_kib();
    let started = Instant::now();

    let odd = spray(&app, n, 32).await;

    let elapsed = started.elapsed();
    let rows = app.sql_count("SELECT count(*) AS n FROM login_throttle");
    let size = app.sql_count("SELECT pg_total_relation_size('login_throttle') AS n");
    println!(
        "{n} random-name failures in {elapsed:?}: non-401 answers {}, rows {rows}, table+index {} KiB, RSS (server and client) {} KiB -> {} KiB",
        odd.len(),
        size / 1024,
        before,
        rss_kib()
    );
    assert!(odd.iter().all(|s| *s == 0), "{odd:?}");
    assert!(rows >= (n - odd.len()) as i64);
}

#[actix_web::test]
async fn pruning_forgets_old_names_and_full_budgets_only() {
    let app = throttled_after(2).await;
    spray(&app, 3, 3).await;
    app.login("blocked", "wrong password").await;
    app.login("blocked", "wrong password").await;
    app.login("recent", "wrong password").await;
    app.sql("UPDATE login_throttle SET updated_at = now() - interval '2 hours' WHERE failures = 1");
    app.sql("INSERT INTO rate_limits (key, tat, allowed) VALUES ('old', now() - interval '1 second', true), ('live', now() + interval '30 seconds', true)");
    // "recent" is young again.
    app.login("recent", "wrong password").await;

    let mut conn = app.db.connect();
    let pruned = tessera::db::throttle::prune(&mut conn, 2).unwrap();

    assert_eq!((pruned.names, pruned.budgets), (3, 1));
    assert_eq!(app.sql_count("SELECT count(*) AS n FROM login_throttle"), 2);
    assert_eq!(
        app.sql_count("SELECT count(*) AS n FROM rate_limits WHERE key = 'live'"),
        1
    );
}

#[actix_web::test]
async fn two_instances_on_one_database_share_one_per_ip_budget() {
    let limit = [
        ("AUTH_RATE_LIMIT_PER_MINUTE", "4"),
        ("DB_TIMEOUT_SECONDS", "5"),
    ];
    let first = spawn_app_with(&limit).await;
    let same_db = crate::test_db::TestDatabase::borrowed(first.db.url());
    let second = spawn_app_on(same_db, first.db.url(), &limit).await;

    let mut statuses = Vec::new();
    for i in 0..6 {
        let app = if i % 2 == 0 { &first } else { &second };
        statuses.push(
            app.login(&format!("user{i}"), "wrong password")
                .await
                .status,
        );
    }

    assert_eq!(statuses, [401, 401, 401, 401, 429, 429]);
}

#[actix_web::test]
async fn register_refuses_common_passwords_case_insensitively() {
    let app = spawn_app_with(&[]).await;

    for password in ["password123", "PassWord123", "QWERTYUIOP", "iloveyou1"] {
        let reply = app.register("alice", password).await;
        assert_eq!(reply.status, 422, "{password}: {}", reply.text);
        assert_eq!(reply.error(), "validation_failed");
        assert_eq!(reply.body["fields"]["password"], "too common", "{password}");
    }
}

#[actix_web::test]
async fn register_refuses_a_password_containing_the_username() {
    let app = spawn_app_with(&[]).await;

    let reply = app.register("Mallory", "xx-mallory-xx!").await;

    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(reply.error(), "validation_failed");
    assert_eq!(reply.body["fields"]["password"], "contains the username");
}

#[actix_web::test]
async fn a_password_change_refuses_common_passwords_and_the_username() {
    let app = spawn_app_with(&[]).await;
    let alice = app.signed_up("alice", GOOD).await;

    let common = app
        .change_password(&alice.access_token, GOOD, "Sunshine1")
        .await;
    let named = app
        .change_password(&alice.access_token, GOOD, "ALICE in wonderland")
        .await;

    assert_eq!(common.status, 422, "{}", common.text);
    assert_eq!(common.body["fields"]["new_password"], "too common");
    assert_eq!(named.status, 422, "{}", named.text);
    assert_eq!(named.error(), "validation_failed");
    assert_eq!(
        named.body["fields"]["new_password"],
        "contains the username"
    );
    assert_eq!(app.login("alice", GOOD).await.status, 200);
}
