//! Many instances, for real: three `tessera serve` processes on one
//! database behind HAProxy (round robin on loopback), driven over HTTP.
//! Proves that the per-IP budget and the per-username throttle hold in
//! total, that refresh races spread across instances end on one live token,
//! and that SIGKILL of one instance mid-storm loses no session and no
//! committed registration (README "Running several instances").
//!
//! Needs `haproxy` on PATH and PostgreSQL (TEST_DATABASE_URL, DATABASE_URL or
//! the default URL). The tests are `#[ignore]`d so a plain `cargo test` does
//! not need HAProxy; `.ci/run` runs them with
//! `cargo test --test cluster -- --ignored --test-threads=1 --nocapture`.

#[path = "../support/local_postgres.rs"]
mod local_postgres;

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use serde_json::{json, Value};

const GOOD: &str = "correct horse battery";

/// One cluster at a time: each test starts its own.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The PostgreSQL server's `postgres` database URL.
fn admin_url() -> url::Url {
    if let Some(url) = crate::local_postgres::reachable_server() {
        return url;
    }
    panic!("no PostgreSQL at TEST_DATABASE_URL, DATABASE_URL or the default URL");
}

/// A free loopback port (bound, then released for the child to take).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Whether HAProxy is installed; without it the tests are skipped, except
/// under CI where its absence is a failure.
fn haproxy_available() -> bool {
    let found = Command::new("haproxy")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found && std::env::var("CI").is_ok() {
        panic!("haproxy is not installed (.ci/run installs it)");
    }
    if !found {
        eprintln!("SKIPPED: haproxy is not installed (apt-get install haproxy)");
    }
    found
}

/// Three instances, HAProxy in front, and their database.
struct Cluster {
    front: String,
    instances: Vec<(u16, Option<Child>)>,
    haproxy: Child,
    client: reqwest::Client,
    admin: url::Url,
    database: String,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts a cluster whose instances get `env` over the defaults.
    async fn start(env: &[(&str, &str)]) -> Self {
        let admin = admin_url();
        let database = format!("tessera_cluster_{}", uuid::Uuid::new_v4().simple());
        let mut db_url = admin.clone();
        db_url.set_path(&format!("/{database}"));
        let dir = tempfile::tempdir().expect("temp dir");
        let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rsa2048-pkcs1.pem");
        let command = |args: &[&str], log: Option<PathBuf>| {
            let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
            command
                .args(args)
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("DATABASE_URL", db_url.as_str())
                .env("JWT_PRIVATE_KEY_PATH", &key)
                .env("BCRYPT_COST", "4")
                .env("DB_POOL_SIZE", "4")
                .env("DB_TIMEOUT_SECONDS", "5")
                .env("TRUST_FORWARDED_FOR", "true")
                .env("RUST_LOG", "info,tessera::access=off")
                .current_dir(dir.path());
            for (name, value) in env {
                command.env(name, value);
            }
            match log {
                Some(path) => {
                    let file = std::fs::File::create(path).expect("log file");
                    command
                        .stdout(file.try_clone().expect("log file"))
                        .stderr(file);
                }
                None => {
                    command.stdout(Stdio::null()).stderr(Stdio::piped());
                }
            }
            command
        };
        // Migrations once, then three servers.
        let migrated = command(&["migrate"], None)
            .output()
            .expect("tessera migrate");
        assert!(
            migrated.status.success(),
            "migrate: {}",
            String::from_utf8_lossy(&migrated.stderr)
        );
        let mut instances = Vec::new();
        for i in 0..3 {
            let port = free_port();
            let mut serve = command(
                &["serve"],
                Some(dir.path().join(format!("tessera-{i}.log"))),
            );
            serve.env("BIND_ADDR", format!("127.0.0.1:{port}"));
            instances.push((port, Some(serve.spawn().expect("spawn tessera"))));
        }
        let front_port = free_port();
        let servers: String = instances
            .iter()
            .enumerate()
            .map(|(i, (port, _))| {
                format!("    server s{i} 127.0.0.1:{port} check inter 200ms fall 1 rise 2\n")
            })
            .collect();
        let config = format!(
            "global\n    maxconn 4096\n\
             defaults\n    mode http\n    timeout connect 2s\n    timeout client 30s\n    \
             timeout server 30s\n    retries 3\n    option redispatch\n    option forwardfor\n\
             frontend front\n    bind 127.0.0.1:{front_port}\n    default_backend tessera\n\
             backend tessera\n    balance roundrobin\n    option httpchk GET /healthz\n{servers}"
        );
        let config_path = dir.path().join("haproxy.cfg");
        std::fs::write(&config_path, config).expect("haproxy.cfg");
        let haproxy = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("haproxy.log")).expect("log"))
            .spawn()
            .expect("spawn haproxy");
        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(64)
            .build()
            .expect("client");
        let mut cluster = Self {
            front: format!("http://127.0.0.1:{front_port}"),
            instances,
            haproxy,
            client,
            admin,
            database,
            dir,
        };
        cluster.wait_until_ready().await;
        cluster
    }

    /// Waits for every instance, then for HAProxy to see them all up.
    async fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        for i in 0..self.instances.len() {
            let port = self.instances[i].0;
            let url = format!("http://127.0.0.1:{port}/readyz");
            while !matches!(self.client.get(&url).send().await, Ok(r) if r.status() == 200) {
                let exited = match &mut self.instances[i].1 {
                    Some(child) => child.try_wait().ok().flatten(),
                    None => None,
                };
                assert!(
                    Instant::now() < deadline && exited.is_none(),
                    "instance {i} on port {port} not ready; its log:\n{}",
                    std::fs::read_to_string(self.dir.path().join(format!("tessera-{i}.log")))
                        .unwrap_or_default()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        // Six answers in a row through the front: every server is up.
        let mut in_a_row = 0;
        while in_a_row < 6 {
            let ok = matches!(self.client.get(self.url("/healthz")).send().await, Ok(r) if r.status() == 200);
            in_a_row = if ok { in_a_row + 1 } else { 0 };
            assert!(Instant::now() < deadline, "HAProxy not ready");
            tokio::time::sleep(Duration::from_millis(if ok { 10 } else { 200 })).await;
        }
        // rise 2 at 200 ms: give the health checks time to mark all up.
        tokio::time::sleep(Duration::from_millis(600)).await;
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.front)
    }

    /// POSTs JSON through HAProxy; `(status, body)`, status 0 when the
    /// connection failed.
    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        match self.client.post(self.url(path)).json(body).send().await {
            Ok(reply) => {
                let status = reply.status().as_u16();
                (status, reply.json().await.unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }

    async fn register(&self, username: &str) -> u16 {
        self.post(
            "/auth/register",
            &json!({"username": username, "password": GOOD}),
        )
        .await
        .0
    }

    async fn login(&self, username: &str, password: &str) -> (u16, Value) {
        self.post(
            "/auth/token",
            &json!({"username": username, "password": password}),
        )
        .await
    }

    async fn refresh(&self, token: &str) -> (u16, Value) {
        self.post("/auth/refresh", &json!({"refresh_token": token}))
            .await
    }

    /// One instance's value of a Prometheus counter (summing its series).
    async fn counter(&self, instance: usize, name: &str) -> f64 {
        let url = format!("http://127.0.0.1:{}/metrics", self.instances[instance].0);
        let Ok(reply) = self.client.get(url).send().await else {
            return 0.0;
        };
        let text = reply.text().await.unwrap_or_default();
        text.lines()
            .filter(|line| line.starts_with(name))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// SIGKILL for one instance.
    fn kill(&mut self, instance: usize) {
        if let Some(mut child) = self.instances[instance].1.take() {
            child.kill().expect("SIGKILL");
            let _ = child.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.instances {
            if let Some(child) = child {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = self.haproxy.kill();
        let _ = self.haproxy.wait();
        if let Ok(mut conn) = PgConnection::establish(self.admin.as_str()) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.database
            ))
            .execute(&mut conn);
        }
    }
}

fn random_name() -> String {
    format!("u{}", &uuid::Uuid::new_v4().simple().to_string()[..20])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs haproxy; run by .ci/run"]
async fn the_per_ip_budget_holds_in_total_across_three_instances() {
    if !haproxy_available() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::start(&[("AUTH_RATE_LIMIT_PER_MINUTE", "30")]).await;

    let started = Instant::now();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let batch = futures_util::future::join_all(
            (0..15).map(|_| async { cluster.login(&random_name(), "wrong password").await.0 }),
        )
        .await;
        statuses.extend(batch);
    }
    let elapsed = started.elapsed().as_secs_f64();

    let allowed = statuses.iter().filter(|s| **s == 401).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    let mut per_instance = Vec::new();
    for i in 0..3 {
        per_instance.push(
            cluster.counter(i, "tessera_logins_total").await
                + cluster.counter(i, "tessera_rate_limited_total").await,
        );
    }
    println!(
        "per-IP budget 30/min across 3 instances: 90 logins in {elapsed:.1} s -> {allowed} allowed, {limited} refused 429; requests per instance {per_instance:?}"
    );
    assert_eq!(allowed + limited, 90, "{statuses:?}");
    // The budget refills one attempt every 2 s while the test runs.
    let refill = (elapsed / 2.0).ceil() as usize + 1;
    assert!(
        (30..=30 + refill).contains(&allowed),
        "{allowed} allowed in {elapsed:.1} s (one process-local budget each would allow 90)"
    );
    assert!(per_instance.iter().all(|n| *n >= 20.0), "{per_instance:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs haproxy; run by .ci/run"]
async fn the_per_username_throttle_holds_when_failures_land_on_different_instances() {
    if !haproxy_available() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::start(&[
        ("AUTH_RATE_LIMIT_PER_MINUTE", "0"),
        ("LOGIN_FAILURES_BEFORE_DELAY", "3"),
    ])
    .await;
    assert_eq!(cluster.register("alice").await, 201);

    // Round robin: the three failures land on three instances.
    for _ in 0..3 {
        assert_eq!(cluster.login("alice", "wrong password").await.0, 401);
    }
    let mut refused = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let (status, body) = cluster.login("alice", GOOD).await;
        refused.push(started.elapsed());
        assert_eq!(status, 429, "{body}");
        assert_eq!(body["error"], "rate_limited");
    }
    let failures: f64 = futures_util::future::join_all(
        (0..3).map(|i| cluster.counter(i, "tessera_logins_total{result=\"failure\"}")),
    )
    .await
    .into_iter()
    .sum();
    println!("throttle across instances: 3 failures on 3 instances, then 3 x 429 in {refused:?}");
    assert_eq!(failures, 3.0);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(cluster.login("alice", GOOD).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs haproxy; run by .ci/run"]
async fn refresh_races_spread_across_instances_end_on_one_live_token() {
    if !haproxy_available() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::start(&[("AUTH_RATE_LIMIT_PER_MINUTE", "0")]).await;
    assert_eq!(cluster.register("alice").await, 201);
    let (status, login) = cluster.login("alice", GOOD).await;
    assert_eq!(status, 200);
    let token = login["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let replies = futures_util::future::join_all((0..12).map(|_| cluster.refresh(&token))).await;

    let statuses: Vec<u16> = replies.iter().map(|(s, _)| *s).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let live: HashSet<&str> = replies
        .iter()
        .filter_map(|(_, body)| body["refresh_token"].as_str())
        .collect();
    assert_eq!(live.len(), 1, "{live:?}");
    let live = live.into_iter().next().unwrap_or_default();
    assert_eq!(cluster.refresh(live).await.0, 200);
    println!("refresh race: 12 concurrent refreshes over 3 instances -> 12 x 200, one live token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs haproxy; run by .ci/run"]
async fn sigkill_of_one_instance_mid_storm_loses_no_session_and_no_registration() {
    if !haproxy_available() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = Arc::new(tokio::sync::Mutex::new(
        Cluster::start(&[("AUTH_RATE_LIMIT_PER_MINUTE", "0")]).await,
    ));
    let (front, client) = {
        let c = cluster.lock().await;
        (c.front.clone(), c.client.clone())
    };
    let post = move |path: &'static str, body: Value| {
        let (front, client) = (front.clone(), client.clone());
        async move {
            match client
                .post(format!("{front}{path}"))
                .json(&body)
                .send()
                .await
            {
                Ok(reply) => {
                    let status = reply.status().as_u16();
                    (status, reply.json::<Value>().await.unwrap_or(Value::Null))
                }
                Err(_) => (0, Value::Null),
            }
        }
    };

    let stop = Arc::new(AtomicBool::new(false));
    let registered = Arc::new(Mutex::new(Vec::<String>::new()));
    let sessions = Arc::new(Mutex::new(Vec::<String>::new()));
    let statuses = Arc::new(Mutex::new(Vec::<u16>::new()));
    let mut workers = Vec::new();
    for _ in 0..16 {
        let (stop, registered, sessions, statuses, post) = (
            stop.clone(),
            registered.clone(),
            sessions.clone(),
            statuses.clone(),
            post.clone(),
        );
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let name = random_name();
                let (status, _) = post(
                    "/auth/register",
                    json!({"username": name, "password": GOOD}),
                )
                .await;
                statuses.lock().unwrap().push(status);
                if status != 201 {
                    continue;
                }
                registered.lock().unwrap().push(name.clone());
                let (status, body) =
                    post("/auth/token", json!({"username": name, "password": GOOD})).await;
                statuses.lock().unwrap().push(status);
                if let (200, Some(token)) = (status, body["refresh_token"].as_str()) {
                    sessions.lock().unwrap().push(token.to_owned());
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before_kill = statuses.lock().unwrap().len();
    cluster.lock().await.kill(1);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.expect("storm worker");
    }

    let statuses = statuses.lock().unwrap().clone();
    let registered = registered.lock().unwrap().clone();
    let sessions = sessions.lock().unwrap().clone();
    let lost: Vec<u16> = statuses
        .iter()
        .copied()
        .filter(|s| ![200, 201].contains(s))
        .collect();
    // Every answered registration can log in; every session refreshes,
    // through the two survivors.
    let cluster = cluster.lock().await;
    let mut failed_logins = Vec::new();
    for name in &registered {
        let (status, _) = cluster.login(name, GOOD).await;
        if status != 200 {
            failed_logins.push((name.clone(), status));
        }
    }
    let mut failed_refreshes = Vec::new();
    for token in &sessions {
        let (status, _) = cluster.refresh(token).await;
        if status != 200 {
            failed_refreshes.push(status);
        }
    }
    println!(
        "SIGKILL storm: {} requests ({before_kill} before the kill), {} registrations and {} sessions answered; \
         non-2xx during the storm: {lost:?}; afterwards {} of {} logins and {} of {} refreshes failed",
        statuses.len(),
        registered.len(),
        sessions.len(),
        failed_logins.len(),
        registered.len(),
        failed_refreshes.len(),
        sessions.len()
    );
    assert!(!registered.is_empty() && !sessions.is_empty());
    assert!(failed_logins.is_empty(), "{failed_logins:?}");
    assert!(failed_refreshes.is_empty(), "{failed_refreshes:?}");
    // Only requests in flight on the killed instance may fail (HAProxy
    // answers 502 for them); never a 500 from tessera.
    assert!(!lost.contains(&500), "{lost:?}");
    assert!(lost.len() <= 16, "{lost:?}");
    // The survivors keep answering.
    for _ in 0..6 {
        assert_eq!(cluster.register(&random_name()).await, 201);
    }
}
