//! Races: many requests at once against one account, one token or one
//! session. Each scenario fires its requests together (one `join_all` over
//! a shared client, one connection per request) and then checks what the
//! database and the API say is left.

use std::cell::Cell;
use std::future::Future;

use futures_util::future::join_all;

use crate::helpers::{spawn_app_with, Reply, TestApp};

/// Enough pooled connections that every racer can be inside PostgreSQL at
/// once (the race is then decided by row locks, not by pool queueing), and
/// a pool wait long enough that a busy CI machine does not turn a race
/// into a 503.
const RACE_SETTINGS: &[(&str, &str)] = &[("DB_POOL_SIZE", "12"), ("DB_TIMEOUT_SECONDS", "10")];

/// Upper bound on the refreshes one racer makes, so a bug cannot hang.
const MAX_CHAIN: usize = 500;

async fn spawn_race_app() -> TestApp {
    spawn_app_with(RACE_SETTINGS).await
}

/// Number of live (not revoked, not expired) sessions in the database.
fn live_sessions(app: &TestApp) -> i64 {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = app.db.connect();
    diesel::sql_query(
        "SELECT count(*) AS n FROM sessions WHERE revoked_at IS NULL AND expires_at > now()",
    )
    .get_result::<Count>(&mut conn)
    .unwrap()
    .n
}

/// Refreshes `token` again and again (each answer's token is the next
/// one) until the server refuses, or until a refresh that started after
/// `stop` was set has been answered. Returns every token it was given,
/// and whether its last refresh was refused.
async fn refresh_chain(app: &TestApp, mut token: String, stop: &Cell<bool>) -> Chain {
    let mut seen = Vec::new();
    for _ in 0..MAX_CHAIN {
        let started_after_stop = stop.get();
        let reply = app.refresh(&token).await;
        match reply.status {
            200 => {
                token = reply.str("refresh_token");
                seen.push(token.clone());
            }
            401 => {
                assert_eq!(reply.error(), "invalid_grant", "{}", reply.text);
                return (seen, true);
            }
            other => panic!("refresh answered {other}: {}", reply.text),
        }
        if started_after_stop {
            return (seen, false);
        }
    }
    panic!("a refresh chain ran {MAX_CHAIN} rounds without stopping");
}

/// What one refresh chain saw: the tokens it was given, and whether its
/// last refresh was refused.
type Chain = (Vec<String>, bool);

/// Runs `operation` while each of `tokens` is refreshed in a chain as fast
/// as it can ([`refresh_chain`]); a chain stops once a refresh that started
/// after `operation` was answered has been answered.
async fn while_refreshing(
    app: &TestApp,
    tokens: &[String],
    operation: impl Future<Output = Reply>,
) -> (Reply, Vec<Chain>) {
    let stop = Cell::new(false);
    let operation = async {
        let reply = operation.await;
        stop.set(true);
        reply
    };
    let chains = join_all(
        tokens
            .iter()
            .map(|token| refresh_chain(app, token.clone(), &stop)),
    );
    futures_util::join!(operation, chains)
}

#[actix_web::test]
async fn twenty_registrations_of_one_name_give_one_201_and_nineteen_409s() {
    let app = spawn_race_app().await;
    // Mixed case: "Racer" and "racer" are one account, so they race too.
    let names = ["racer", "Racer", "RACER", "rAcEr"];
    let app = &app;
    let attempts = (0..20).map(|i| {
        let password = format!("correct horse {i:02}");
        let name = names[i % names.len()];
        async move { (i, app.register(name, &password).await) }
    });

    let replies = join_all(attempts).await;

    let created: Vec<_> = replies.iter().filter(|(_, r)| r.status == 201).collect();
    let conflicts: Vec<_> = replies.iter().filter(|(_, r)| r.status == 409).collect();
    assert_eq!(
        (created.len(), conflicts.len()),
        (1, 19),
        "statuses: {:?}",
        replies.iter().map(|(_, r)| r.status).collect::<Vec<_>>()
    );
    assert!(conflicts.iter().all(|(_, r)| r.error() == "username_taken"));
    let (winner, reply) = created[0];
    assert_eq!(reply.str("username"), "racer");
    // The stored account is the winner's: its password works, a loser's not.
    let winner_password = format!("correct horse {winner:02}");
    let loser_password = format!("correct horse {:02}", (winner + 1) % 20);
    assert_eq!(app.login("racer", &winner_password).await.status, 200);
    assert_eq!(app.login("racer", &loser_password).await.status, 401);
}

#[actix_web::test]
async fn ten_concurrent_refreshes_of_one_token_all_get_200_and_the_same_new_token() {
    let app = spawn_race_app().await;
    let user = app.signed_up("alice", "correct horse").await;
    let mut token = user.refresh_token;

    // Several rounds: each round races ten refreshes of the previous
    // round's shared successor.
    for round in 0..5 {
        let replies = join_all((0..10).map(|_| app.refresh(&token))).await;

        let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
        assert!(
            statuses.iter().all(|s| *s == 200),
            "round {round}: {statuses:?}"
        );
        let successor = replies[0].str("refresh_token");
        assert!(!successor.is_empty());
        assert_ne!(successor, token, "round {round}: not rotated");
        assert!(
            replies.iter().all(|r| r.str("refresh_token") == successor),
            "round {round}: the session forked"
        );
        // Each answer still carries its own fresh access token.
        for reply in &replies {
            assert_eq!(app.me(&reply.str("access_token")).await.status, 200);
        }
        token = successor;
    }

    // One session, still alive, and its shared token is the live one.
    assert_eq!(live_sessions(&app), 1);
    assert_eq!(app.refresh(&token).await.status, 200);
}

#[actix_web::test]
async fn a_refresh_racing_a_logout_never_leaves_a_live_session() {
    let app = spawn_race_app().await;
    app.register("alice", "correct horse").await;

    for round in 0..10 {
        let login = app.login("alice", "correct horse").await;
        assert_eq!(login.status, 200, "{}", login.text);
        let original = login.str("refresh_token");
        // A client rotates the session as fast as it can while a logout
        // with the original (soon spent) token runs; the client keeps going
        // until the logout has been answered and it is refused.
        let (logout, chains) =
            while_refreshing(&app, std::slice::from_ref(&original), app.logout(&original)).await;
        let (seen, refused) = &chains[0];

        assert_eq!(logout.status, 204, "round {round}: {}", logout.text);
        assert!(
            refused,
            "round {round}: a refresh after the logout succeeded"
        );
        assert_eq!(live_sessions(&app), 0, "round {round}: a session survived");
        for token in seen.iter().chain([&original]) {
            let reply = app.refresh(token).await;
            assert_eq!(reply.status, 401, "round {round}: a token still refreshes");
            assert_eq!(reply.error(), "invalid_grant");
        }
    }
}

#[actix_web::test]
async fn a_refresh_racing_a_logout_with_the_same_token_leaves_nothing_usable() {
    let app = spawn_race_app().await;
    app.register("alice", "correct horse").await;

    for round in 0..10 {
        let original = app
            .login("alice", "correct horse")
            .await
            .str("refresh_token");
        // Exactly one refresh and one logout of the same token, together.
        let (refreshed, logout) =
            futures_util::join!(app.refresh(&original), app.logout(&original));

        assert_eq!(logout.status, 204);
        assert!(
            refreshed.status == 200 || refreshed.status == 401,
            "round {round}: {}",
            refreshed.text
        );
        assert_eq!(live_sessions(&app), 0, "round {round}: a session survived");
        if refreshed.status == 200 {
            let successor = refreshed.str("refresh_token");
            assert_eq!(app.refresh(&successor).await.status, 401, "round {round}");
        }
        assert_eq!(app.refresh(&original).await.status, 401, "round {round}");
    }
}

#[actix_web::test]
async fn a_password_change_racing_refreshes_leaves_only_the_callers_session() {
    let app = spawn_race_app().await;
    let mut password = "correct horse 0".to_owned();
    let caller = app.signed_up("alice", &password).await;
    let caller_sid = app.me(&caller.access_token).await.str("session_id");

    for round in 1..=3 {
        let mut others = Vec::new();
        for _ in 0..4 {
            let login = app.login("alice", &password).await;
            assert_eq!(login.status, 200, "{}", login.text);
            others.push(login.str("refresh_token"));
        }
        let new_password = format!("correct horse {round}");
        // The caller changes the password while its four other sessions
        // refresh as fast as they can.
        let change = app.change_password(&caller.access_token, &password, &new_password);
        let (changed, chains) = while_refreshing(&app, &others, change).await;

        assert_eq!(changed.status, 204, "round {round}: {}", changed.text);
        for (seen, refused) in &chains {
            assert!(
                refused,
                "round {round}: a refresh after the change succeeded"
            );
            for token in seen {
                let reply = app.refresh(token).await;
                assert_eq!(
                    reply.status, 401,
                    "round {round}: a token issued in the race lives"
                );
            }
        }
        for token in &others {
            assert_eq!(app.refresh(token).await.status, 401, "round {round}");
        }
        let sessions = app.sessions(&caller.access_token).await;
        assert_eq!(sessions.status, 200, "{}", sessions.text);
        let listed = sessions.body["sessions"].as_array().unwrap();
        assert_eq!(listed.len(), 1, "round {round}: {}", sessions.text);
        assert_eq!(listed[0]["session_id"], caller_sid.as_str());
        assert_eq!(listed[0]["current"], true);
        assert_eq!(live_sessions(&app), 1, "round {round}");
        password = new_password;
    }

    // The caller's own session still rotates normally.
    assert_eq!(app.refresh(&caller.refresh_token).await.status, 200);
}

#[actix_web::test]
async fn two_concurrent_password_changes_end_like_one_after_the_other() {
    let app = spawn_race_app().await;

    for round in 0..5 {
        let name = format!("user{round}");
        let phone = app.signed_up(&name, "correct horse").await;
        let laptop = app.login(&name, "correct horse").await;
        assert_eq!(laptop.status, 200);
        let laptop_access = laptop.str("access_token");

        // Both devices know the current password and change it at once.
        let (from_phone, from_laptop) = futures_util::join!(
            app.change_password(&phone.access_token, "correct horse", "phone horse"),
            app.change_password(&laptop_access, "correct horse", "laptop horse"),
        );

        // In either serial order the second change no longer knows the
        // current password: one 204, one 401, and the winner's session and
        // password are the ones left.
        let mut statuses = [from_phone.status, from_laptop.status];
        statuses.sort_unstable();
        assert_eq!(statuses, [204, 401], "round {round}");
        let (winner, winner_password, loser_password) = if from_phone.status == 204 {
            (&phone.access_token, "phone horse", "laptop horse")
        } else {
            (&laptop_access, "laptop horse", "phone horse")
        };
        let sessions = app.sessions(winner).await;
        let listed = sessions.body["sessions"].as_array().unwrap();
        assert_eq!(listed.len(), 1, "round {round}: {}", sessions.text);
        assert_eq!(listed[0]["current"], true, "round {round}");
        assert_eq!(app.login(&name, loser_password).await.status, 401);
        assert_eq!(app.login(&name, winner_password).await.status, 200);
    }
}

#[actix_web::test]
async fn deleting_the_account_while_it_refreshes_and_logs_in_leaves_nothing() {
    let app = spawn_race_app().await;
    let caller = app.signed_up("alice", "correct horse").await;
    let mut others = Vec::new();
    for _ in 0..3 {
        others.push(
            app.login("alice", "correct horse")
                .await
                .str("refresh_token"),
        );
    }
    let delete = app.delete_account(&caller.access_token, "correct horse");
    let logins = join_all((0..5).map(|_| app.login("alice", "correct horse")));

    let ((deleted, chains), logins) =
        futures_util::join!(while_refreshing(&app, &others, delete), logins);

    assert_eq!(deleted.status, 204, "{}", deleted.text);
    for (seen, refused) in &chains {
        assert!(refused, "a refresh after the deletion succeeded");
        for token in seen {
            assert_eq!(app.refresh(token).await.status, 401);
        }
    }
    for login in &logins {
        // Before the deletion 200 (and its session went with the account),
        // after it 401; never anything else.
        assert!(login.status == 200 || login.status == 401, "{}", login.text);
        if login.status == 200 {
            assert_eq!(app.refresh(&login.str("refresh_token")).await.status, 401);
        }
    }
    assert_eq!(live_sessions(&app), 0);
    assert_eq!(app.login("alice", "correct horse").await.status, 401);
}

#[actix_web::test]
async fn a_rehash_after_login_does_not_undo_a_password_change_made_meanwhile() {
    // The server re-hashes at cost 10 a password stored at cost 4, after
    // the login that proved it, in the background.
    let app = spawn_app_with(&[("BCRYPT_COST", "10")]).await;
    app.register("alice", "correct horse").await;
    let cost4 = bcrypt::hash("correct horse", 4).unwrap();
    app.sql(&format!("UPDATE users SET password_hash = '{cost4}'"));
    let timing = std::time::Instant::now();
    let _ = bcrypt::hash("correct horse", 10).unwrap();
    let one_hash = timing.elapsed();

    assert_eq!(app.login("alice", "correct horse").await.status, 200);
    // The password changes while that re-hash of the old one is running.
    let changed = bcrypt::hash("battery staple", 4).unwrap();
    app.sql(&format!("UPDATE users SET password_hash = '{changed}'"));
    // Give the re-hash ample time to finish (and try to write).
    tokio::time::sleep(one_hash * 5 + std::time::Duration::from_millis(500)).await;

    assert_eq!(app.login("alice", "battery staple").await.status, 200);
    assert_eq!(app.login("alice", "correct horse").await.status, 401);
}
