//! Webhooks: each event POSTed from the outbox, signed per Standard
//! Webhooks, retried while the receiver fails, in order per user, never
//! twice at once across instances; a URL without a secret stops startup.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::helpers::{spawn_app_with, test_key_path, TestApp};

/// The raw secret behind [`SECRET`].
const SECRET_BYTES: &[u8; 32] = b"tessera webhook test secret 32b!";

fn secret() -> String {
    format!("whsec_{}", STANDARD.encode(SECRET_BYTES))
}

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Delivery {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
    at: Instant,
    status: u16,
}

impl Delivery {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }
}

#[derive(Default)]
struct Shared {
    log: Mutex<Vec<Delivery>>,
    /// The first this-many requests are answered 500.
    failures_left: AtomicUsize,
}

/// A tiny webhook receiver on 127.0.0.1:0.
struct Receiver {
    url: String,
    shared: Arc<Shared>,
    server: actix_web::dev::ServerHandle,
}

impl Receiver {
    fn start(failures: usize) -> Self {
        let shared = Arc::new(Shared::default());
        shared.failures_left.store(failures, Ordering::SeqCst);
        let data = web::Data::from(Arc::clone(&shared));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(receive))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .expect("bind the receiver");
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}/hooks"),
            shared,
            server: handle,
        }
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Waits until `done` holds for the deliveries so far (at most 20 s).
    async fn wait_for(&self, what: &str, done: impl Fn(&[Delivery]) -> bool) -> Vec<Delivery> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let deliveries = self.deliveries();
            if done(&deliveries) {
                return deliveries;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {deliveries:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The successful deliveries.
    fn accepted(deliveries: &[Delivery]) -> Vec<&Delivery> {
        deliveries.iter().filter(|d| d.status == 200).collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let handle = self.server.clone();
        actix_web::rt::spawn(async move { handle.stop(false).await });
    }
}

async fn receive(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let fail = shared
        .failures_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let status = if fail { 500 } else { 200 };
    shared.log.lock().unwrap().push(Delivery {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
        status,
    });
    if fail {
        HttpResponse::InternalServerError().finish()
    } else {
        HttpResponse::Ok().finish()
    }
}

async fn app_posting_to(receiver: &Receiver) -> TestApp {
    let secret = secret();
    spawn_app_with(&[
        ("WEBHOOK_URL", receiver.url.as_str()),
        ("WEBHOOK_SECRET", secret.as_str()),
        // These tests wait on timing; a loaded test machine should not
        // turn a slow pool checkout into a 503.
        ("DB_TIMEOUT_SECONDS", "5"),
    ])
    .await
}

/// `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`, computed here.
fn expected_signature(id: &str, timestamp: &str, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET_BYTES).unwrap();
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[actix_web::test]
async fn each_event_is_posted_signed_per_standard_webhooks() {
    let receiver = Receiver::start(0);
    let app = app_posting_to(&receiver).await;
    let alice = app.signed_up("alice", "correct horse").await;

    let deliveries = receiver
        .wait_for("the login webhook", |d| !d.is_empty())
        .await;
    let delivery = &deliveries[0];
    assert_eq!(
        delivery.signature,
        expected_signature(&delivery.id, &delivery.timestamp, &delivery.body),
        "the signature verifies with the shared secret"
    );
    let sent_at: i64 = delivery.timestamp.parse().expect("unix seconds");
    assert!((chrono::Utc::now().timestamp() - sent_at).abs() < 60);

    let body = delivery.json();
    assert_eq!(body["type"], "login_succeeded");
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["data"]["user_id"], alice.user_id.as_str());
    assert_eq!(body["data"]["event_id"], delivery.id.as_str());
    assert_eq!(body["data"]["ip"], "127.0.0.1");
    assert!(body["data"]["session_id"].is_string());
    let events = app.my_events(&alice.access_token, "").await;
    assert_eq!(events.body["events"][0]["event_id"], delivery.id.as_str());
    assert!(!delivery.body.contains("correct horse"));
    assert!(!delivery.body.contains(&alice.refresh_token));

    // Delivered rows leave the outbox.
    for _ in 0..40 {
        if app.outbox_rows().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.outbox_rows(), Vec::<Value>::new());
}

#[actix_web::test]
async fn a_receiver_answering_500_is_retried_after_about_two_seconds_until_it_answers_200() {
    let receiver = Receiver::start(1);
    let app = app_posting_to(&receiver).await;
    app.signed_up("alice", "correct horse").await;

    let deliveries = receiver
        .wait_for("a retry that succeeds", |d| {
            !Receiver::accepted(d).is_empty()
        })
        .await;
    assert_eq!(deliveries.len(), 2, "{deliveries:#?}");
    assert_eq!(deliveries[0].status, 500);
    assert_eq!(deliveries[1].status, 200);
    assert_eq!(deliveries[0].id, deliveries[1].id, "the same message");
    assert_eq!(deliveries[0].body, deliveries[1].body);
    let gap = deliveries[1].at - deliveries[0].at;
    assert!(
        gap >= Duration::from_millis(1900) && gap < Duration::from_secs(5),
        "first retry after about 2 s, got {gap:?}"
    );
    assert_eq!(
        deliveries[1].signature,
        expected_signature(
            &deliveries[1].id,
            &deliveries[1].timestamp,
            &deliveries[1].body
        )
    );
}

#[actix_web::test]
async fn one_users_webhooks_arrive_in_order_even_when_the_first_is_retried() {
    let receiver = Receiver::start(1);
    let app = app_posting_to(&receiver).await;
    let alice = app.signed_up("alice", "correct horse").await;
    assert_eq!(app.login("alice", "wrong horse").await.status, 401);
    assert_eq!(app.logout(&alice.refresh_token).await.status, 204);

    let deliveries = receiver
        .wait_for("three accepted webhooks", |d| {
            Receiver::accepted(d).len() == 3
        })
        .await;
    let types: Vec<(String, u16)> = deliveries
        .iter()
        .map(|d| (d.json()["type"].as_str().unwrap().to_owned(), d.status))
        .collect();
    assert_eq!(
        types,
        [
            ("login_succeeded".to_owned(), 500),
            ("login_succeeded".to_owned(), 200),
            ("login_failed".to_owned(), 200),
            ("session_revoked".to_owned(), 200),
        ],
        "nothing of alice's overtakes the retried first event"
    );
}

#[actix_web::test]
async fn two_instances_on_one_database_deliver_each_event_once() {
    let receiver = Receiver::start(0);
    let app = app_posting_to(&receiver).await;
    let second =
        tessera::startup::Application::build(app.settings.clone()).expect("second instance");
    let second_handle = second.handle();
    actix_web::rt::spawn(second.run_until_stopped());

    for i in 0..8 {
        let name = format!("user{i}");
        app.signed_up(&name, "correct horse").await;
        assert_eq!(app.login(&name, "wrong horse").await.status, 401);
    }
    let deliveries = receiver.wait_for("16 webhooks", |d| d.len() >= 16).await;
    // Give a duplicate, if any, time to arrive.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let deliveries = receiver.deliveries().len().max(deliveries.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for delivery in receiver.deliveries() {
        *seen.entry(delivery.id).or_default() += 1;
    }
    assert_eq!(deliveries, 16);
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
    second_handle.stop(false).await;
}

#[test]
fn a_webhook_url_without_a_secret_stops_startup_with_one_line_naming_webhook_secret() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("JWT_PRIVATE_KEY_PATH", test_key_path())
        .env("WEBHOOK_URL", "https://hooks.example/tessera")
        .env_remove("WEBHOOK_SECRET")
        .env("RUST_LOG", "off")
        .output()
        .expect("run tessera");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("WEBHOOK_SECRET"), "{stderr}");
}
