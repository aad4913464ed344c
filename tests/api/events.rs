//! Security events: one row per change, in its transaction, with no secret
//! in any column; the caller's and the admin listings; retention.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_on, spawn_app_with, TestApp};
use crate::test_db::TestDatabase;

const UA: &str = "events-test/1.0";

/// `POST /auth/token` with a User-Agent.
async fn login_from_browser(
    app: &TestApp,
    username: &str,
    password: &str,
) -> crate::helpers::Reply {
    app.send(
        app.client
            .post(app.url("/auth/token"))
            .header("user-agent", UA)
            .json(&json!({"username": username, "password": password})),
    )
    .await
}

fn rows_of_type<'a>(rows: &'a [Value], kind: &str) -> Vec<&'a Value> {
    rows.iter().filter(|row| row["type"] == kind).collect()
}

#[actix_web::test]
async fn every_event_type_that_exists_is_recorded_with_no_secret_in_any_column() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE_SECONDS", "0")]).await;
    let password = "correct horse";
    let new_password = "battery staple";
    let alice = app.signed_up("alice", password).await;
    let mut secrets = vec![
        password.to_owned(),
        new_password.to_owned(),
        "wrong horse".to_owned(),
        alice.access_token.clone(),
        alice.refresh_token.clone(),
    ];

    // login_succeeded, from a browser.
    let laptop = login_from_browser(&app, "alice", password).await;
    assert_eq!(laptop.status, 200, "{}", laptop.text);
    secrets.push(laptop.str("access_token"));
    secrets.push(laptop.str("refresh_token"));
    // login_failed, for an existing name and for an unknown one.
    assert_eq!(
        login_from_browser(&app, "alice", "wrong horse")
            .await
            .status,
        401
    );
    assert_eq!(
        login_from_browser(&app, "nobody", "wrong horse")
            .await
            .status,
        401
    );
    // refresh_reuse_detected: the spent token presented again.
    let rotated = app.refresh(&alice.refresh_token).await;
    assert_eq!(rotated.status, 200);
    secrets.push(rotated.str("refresh_token"));
    secrets.push(rotated.str("access_token"));
    assert_eq!(app.refresh(&alice.refresh_token).await.status, 401);
    // session_revoked: logout, revoke one, revoke all.
    let phone = app.login("alice", password).await;
    secrets.push(phone.str("refresh_token"));
    assert_eq!(app.logout(&phone.str("refresh_token")).await.status, 204);
    let tablet = app.login("alice", password).await;
    let tablet_session = app.sessions(&laptop.str("access_token")).await.body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .map(|s| s["session_id"].as_str().unwrap().to_owned())
        .expect("the tablet's session");
    secrets.push(tablet.str("refresh_token"));
    assert_eq!(
        app.revoke_session(&laptop.str("access_token"), &tablet_session)
            .await
            .status,
        204
    );
    // password_changed (revokes the other sessions).
    let desk = app.login("alice", password).await;
    assert_eq!(
        app.change_password(&desk.str("access_token"), password, new_password)
            .await
            .status,
        204
    );
    assert_eq!(
        app.revoke_all_sessions(&desk.str("access_token"))
            .await
            .status,
        204
    );
    // role_granted / role_revoked (the CLI: no request, no client).
    assert!(app
        .cli_role("grant-role", "alice", "auditor")
        .status
        .success());
    assert!(app
        .cli_role("revoke-role", "alice", "auditor")
        .status
        .success());
    // account_deleted.
    let last = app.login("alice", new_password).await;
    secrets.push(last.str("access_token"));
    assert_eq!(
        app.delete_account(&last.str("access_token"), new_password)
            .await
            .status,
        204
    );

    let rows = app.event_rows();
    let types: Vec<&str> = rows.iter().map(|r| r["type"].as_str().unwrap()).collect();
    for expected in [
        "login_succeeded",
        "login_failed",
        "refresh_reuse_detected",
        "session_revoked",
        "password_changed",
        "account_deleted",
        "role_granted",
        "role_revoked",
    ] {
        assert!(
            types.contains(&expected),
            "{expected} missing from {types:?}"
        );
    }
    let without_account = rows.iter().filter(|r| r["user_id"].is_null()).count();
    assert_eq!(
        without_account, 1,
        "only the unknown name's failure has no account"
    );

    let browser_login = rows_of_type(&rows, "login_succeeded")
        .into_iter()
        .find(|r| r["user_agent"] == UA)
        .expect("the browser login");
    assert_eq!(browser_login["user_id"], alice.user_id.as_str());
    assert_eq!(browser_login["ip"], "127.0.0.1");
    assert!(browser_login["session_id"].is_string());

    let failed = rows_of_type(&rows, "login_failed");
    assert_eq!(failed.len(), 2);
    assert_eq!(
        failed[0]["user_id"],
        alice.user_id.as_str(),
        "a known name names its account"
    );
    assert_eq!(
        failed[1]["user_id"],
        Value::Null,
        "an unknown name has no account"
    );
    assert_eq!(failed[0]["user_agent"], UA);

    let reuse = rows_of_type(&rows, "refresh_reuse_detected");
    assert_eq!(reuse.len(), 1);
    assert!(reuse[0]["session_id"].is_string());
    assert_eq!(reuse[0]["ip"], "127.0.0.1");

    let revoked = rows_of_type(&rows, "session_revoked");
    let reasons: Vec<&Value> = revoked.iter().map(|r| &r["detail"]["reason"]).collect();
    assert_eq!(
        reasons,
        [&json!("logout"), &json!("revoked"), &json!("revoke_all")]
    );
    assert_eq!(revoked[1]["session_id"], tablet_session.as_str());
    assert_eq!(revoked[2]["session_id"], Value::Null);
    assert!(revoked[2]["detail"]["count"].is_number());

    let changed = rows_of_type(&rows, "password_changed");
    assert_eq!(changed.len(), 1);
    assert!(changed[0]["detail"]["sessions_revoked"].as_u64().unwrap() >= 1);

    let granted = rows_of_type(&rows, "role_granted");
    assert_eq!(granted[0]["detail"], json!({"role": "auditor"}));
    assert_eq!(granted[0]["ip"], Value::Null, "the CLI has no client");
    assert_eq!(
        rows_of_type(&rows, "role_revoked")[0]["detail"],
        json!({"role": "auditor"})
    );

    let deleted = rows_of_type(&rows, "account_deleted");
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["user_id"], alice.user_id.as_str());

    let all_text: String = rows.iter().map(Value::to_string).collect();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        assert!(
            !all_text.contains(secret.as_str()),
            "a secret is stored in auth_events"
        );
    }
}

#[actix_web::test]
async fn my_events_lists_only_the_callers_events_newest_first_in_pages() {
    let app = spawn_app().await;
    let alice = app.signed_up("alice", "correct horse").await;
    app.signed_up("bob", "correct horse").await;
    for _ in 0..3 {
        assert_eq!(app.login("alice", "correct horse").await.status, 200);
    }
    assert_eq!(app.login("alice", "wrong horse").await.status, 401);

    let first = app.my_events(&alice.access_token, "limit=3").await;
    assert_eq!(first.status, 200, "{}", first.text);
    let events = first.body["events"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0]["type"], "login_failed", "newest first");
    let mut keys: Vec<&String> = events[1].as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "created_at",
            "event_id",
            "ip",
            "session_id",
            "type",
            "user_agent"
        ]
    );
    let next = first.str("next");
    assert!(!next.is_empty());

    let second = app
        .my_events(&alice.access_token, &format!("limit=3&after={next}"))
        .await;
    assert_eq!(second.status, 200);
    let older = second.body["events"].as_array().unwrap();
    assert_eq!(older.len(), 2, "five in all: four logins and a failure");
    assert_eq!(second.body["next"], Value::Null);

    let ids: HashSet<&str> = events
        .iter()
        .chain(older)
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 5);
    let times: Vec<&str> = events
        .iter()
        .chain(older)
        .map(|e| e["created_at"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first across pages");
    let bob_ids: HashSet<String> = app
        .event_rows()
        .iter()
        .filter(|r| r["user_id"] != alice.user_id.as_str())
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(ids.iter().all(|id| !bob_ids.contains(*id)));
}

#[actix_web::test]
async fn event_listings_refuse_bad_paging_and_filters_with_422_naming_each_field() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for query in ["limit=0", "limit=201", "limit=ten", "limit=5&limit=6"] {
        for reply in [
            app.my_events(&admin, query).await,
            app.admin_events(&admin, query).await,
        ] {
            assert_eq!(reply.status, 422, "{query}: {}", reply.text);
            assert_eq!(reply.error(), "validation_failed");
            assert!(reply.body["fields"]["limit"].is_string(), "{query}");
        }
    }
    for query in ["after=", "after=garbage!", "after=bm9wZQ"] {
        let reply = app.my_events(&admin, query).await;
        assert_eq!(reply.status, 422, "{query}");
        assert!(reply.body["fields"]["after"].is_string());
    }
    let reply = app
        .admin_events(&admin, "limit=0&after=zz&user_id=nope&type=coffee_spilled")
        .await;
    assert_eq!(reply.status, 422);
    let fields = reply.body["fields"].as_object().unwrap();
    for field in ["limit", "after", "user_id", "type"] {
        assert!(fields.contains_key(field), "{field}: {}", reply.text);
    }
}

#[actix_web::test]
async fn admin_events_need_the_admin_role() {
    let app = spawn_app().await;
    let alice = app.signed_up("alice", "correct horse").await;
    let reply = app.admin_events(&alice.access_token, "").await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.error(), "insufficient_scope");
    assert_eq!(app.get("/api/admin/events", None).await.status, 401);
    assert_eq!(
        app.get("/api/me/events", None).await.error(),
        "missing_token"
    );
}

#[actix_web::test]
async fn admin_events_filter_by_user_and_type_and_show_whose_and_detail() {
    let app = spawn_app().await;
    let alice = app.signed_up("alice", "correct horse").await;
    app.signed_up("bob", "correct horse").await;
    assert_eq!(app.login("bob", "wrong horse").await.status, 401);
    let admin = app.admin_token().await;

    let all = app.admin_events(&admin, "limit=200").await;
    assert_eq!(all.status, 200, "{}", all.text);
    let events = all.body["events"].as_array().unwrap();
    assert!(events.len() >= 5, "{}", all.text);
    let granted = events.iter().find(|e| e["type"] == "role_granted").unwrap();
    assert_eq!(granted["detail"], json!({"role": "admin"}));

    let mine = app
        .admin_events(&admin, &format!("user_id={}", alice.user_id))
        .await;
    let mine = mine.body["events"].as_array().unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["type"], "login_succeeded");
    assert_eq!(mine[0]["user_id"], alice.user_id.as_str());

    let failures = app.admin_events(&admin, "type=login_failed").await;
    let failures = failures.body["events"].as_array().unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["type"], "login_failed");

    let page = app.admin_events(&admin, "limit=2").await;
    assert_eq!(page.body["events"].as_array().unwrap().len(), 2);
    let rest = app
        .admin_events(&admin, &format!("limit=200&after={}", page.str("next")))
        .await;
    assert_eq!(
        rest.body["events"].as_array().unwrap().len() + 2,
        events.len()
    );
}

#[actix_web::test]
async fn events_older_than_the_retention_are_pruned_at_start() {
    let db = TestDatabase::create();
    {
        use diesel::RunQueryDsl;
        let mut conn = db.connect();
        diesel::sql_query(
            "INSERT INTO auth_events (id, type, created_at) VALUES \
             (gen_random_uuid(), 'login_failed', now() - interval '31 days'), \
             (gen_random_uuid(), 'login_failed', now() - interval '29 days')",
        )
        .execute(&mut conn)
        .expect("old events");
    }
    let url = db.url().to_owned();
    let app = spawn_app_on(db, &url, &[("EVENT_RETENTION_DAYS", "30")]).await;
    let mut left = usize::MAX;
    for _ in 0..50 {
        left = app.event_rows().len();
        if left == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 1, "only the 29-day-old event stays");
}
