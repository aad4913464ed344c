//! The real binary as a process: startup failures, the log of a full flow,
//! and graceful shutdown.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::test_key_path;
use crate::resource_limits::{closed_by_server, ensure_open_files, hold_idle_connections};
use crate::test_db::TestDatabase;

/// A `tessera serve` child process whose stderr is collected.
pub(crate) struct Served {
    child: Child,
    /// Everything the process wrote to stderr so far.
    pub(crate) log: Arc<Mutex<String>>,
    /// `http://127.0.0.1:<port>`.
    pub(crate) address: String,
}

/// Runs `tessera serve` over `db` with test defaults, `RUST_LOG=trace`
/// and `extra`, and waits until it listens.
pub(crate) fn serve(db: &TestDatabase, extra: &[(&str, &str)]) -> Served {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    command.arg("serve");
    serve_with(command, db, extra)
}

/// Like [`serve`], with a command that ends up running `tessera serve`
/// (through a shell that sets limits first, say).
fn serve_with(mut command: Command, db: &TestDatabase, extra: &[(&str, &str)]) -> Served {
    command
        .env("DATABASE_URL", db.url())
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("BCRYPT_COST", "4")
        .env("JWT_PRIVATE_KEY_PATH", test_key_path())
        .env("AUTH_RATE_LIMIT_PER_MINUTE", "0")
        .env("RUST_LOG", "trace")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in extra {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("spawn tessera");
    let stderr = child.stderr.take().expect("stderr");
    let log = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    let started = Instant::now();
    let address = loop {
        let text = log.lock().unwrap().clone();
        if let Some(rest) = text.split("tessera listening on ").nth(1) {
            break format!("http://{}", rest.lines().next().unwrap().trim());
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "server did not start:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    Served {
        child,
        log,
        address,
    }
}

/// Sends SIGTERM to the server, without waiting.
fn send_sigterm(served: &Served) {
    let status = Command::new("kill")
        .args(["-TERM", &served.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -TERM failed");
}

/// Waits (blocking) for the server to exit, at most `within`.
fn wait_for_exit(served: &mut Served, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = served.child.try_wait().expect("wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM, then waits for the exit.
pub(crate) fn terminate(served: &mut Served) -> std::process::ExitStatus {
    send_sigterm(served);
    wait_for_exit(served, Duration::from_secs(20))
}

#[actix_web::test]
async fn the_log_of_a_full_flow_never_contains_tokens_or_passwords() {
    let db = TestDatabase::create();
    let mut served = serve(&db, &[]);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let post = |path: &str, body: serde_json::Value| {
        client
            .post(format!("{}{path}", served.address))
            .json(&body)
            .send()
    };
    let password = "S3cret-horse-battery";
    post(
        "/auth/register",
        serde_json::json!({"username": "alice", "password": password}),
    )
    .await
    .unwrap();
    let login: serde_json::Value = post(
        "/auth/token",
        serde_json::json!({"username": "alice", "password": password}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    post(
        "/auth/token",
        serde_json::json!({"username": "alice", "password": "Wrong-horse-99"}),
    )
    .await
    .unwrap();
    let access = login["access_token"].as_str().unwrap().to_owned();
    let first = login["refresh_token"].as_str().unwrap().to_owned();
    let second: serde_json::Value =
        post("/auth/refresh", serde_json::json!({"refresh_token": first}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let second = second["refresh_token"].as_str().unwrap().to_owned();
    post("/auth/refresh", serde_json::json!({"refresh_token": first}))
        .await
        .unwrap();
    client
        .get(format!("{}/api/me", served.address))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    client
        .get(format!("{}/api/me", served.address))
        .bearer_auth(format!("{access}x"))
        .send()
        .await
        .unwrap();
    let third: serde_json::Value = post(
        "/auth/refresh",
        serde_json::json!({"refresh_token": second}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    post("/auth/refresh", serde_json::json!({"refresh_token": first}))
        .await
        .unwrap(); // reuse
    post("/auth/logout", serde_json::json!({"refresh_token": second}))
        .await
        .unwrap();

    let status = terminate(&mut served);
    std::thread::sleep(Duration::from_millis(200));
    let log = served.log.lock().unwrap().clone();

    assert!(status.success(), "SIGTERM must exit 0: {status:?}");
    assert!(
        log.contains("tessera::access"),
        "access log captured:\n{log}"
    );
    assert!(log.contains("POST /auth/refresh 200"), "{log}");
    assert!(log.contains("request_id="));
    let signature = access.rsplit('.').next().unwrap();
    for secret in [
        password,
        "Wrong-horse-99",
        access.as_str(),
        signature,
        first.as_str(),
        second.as_str(),
        third["refresh_token"].as_str().unwrap(),
        "PRIVATE KEY",
    ] {
        assert!(!log.contains(secret), "log leaks {secret:?}");
    }
}

#[actix_web::test]
async fn the_log_of_a_second_factor_flow_never_contains_secrets_codes_or_mfa_tokens() {
    use crate::mfa::totp_code;
    use serde_json::json;
    let db = TestDatabase::create();
    let mut served = serve(&db, &[]);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let call =
        |method: reqwest::Method, path: &str, token: Option<&str>, body: serde_json::Value| {
            let mut request = client
                .request(method, format!("{}{path}", served.address))
                .json(&body);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            async move {
                let response = request.send().await.unwrap();
                response
                    .json::<serde_json::Value>()
                    .await
                    .unwrap_or_default()
            }
        };
    let post = reqwest::Method::POST;
    let password = "S3cret-horse-battery";
    let credentials = json!({"username": "alice", "password": password});
    call(post.clone(), "/auth/register", None, credentials.clone()).await;
    let login = call(post.clone(), "/auth/token", None, credentials.clone()).await;
    let access = login["access_token"].as_str().unwrap().to_owned();
    let enrollment = call(
        post.clone(),
        "/api/me/mfa/totp",
        Some(&access),
        json!({"password": password}),
    )
    .await;
    let secret = enrollment["secret"].as_str().unwrap().to_owned();
    let confirm_code = totp_code(&secret, 0);
    let confirmed = call(
        post.clone(),
        "/api/me/mfa/totp/confirm",
        Some(&access),
        json!({"code": confirm_code}),
    )
    .await;
    let recovery: Vec<String> = confirmed["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let challenge = call(post.clone(), "/auth/token", None, credentials.clone()).await;
    let mfa_token = challenge["mfa_token"].as_str().unwrap().to_owned();
    let wrong_code = "000000";
    call(
        post.clone(),
        "/auth/mfa",
        None,
        json!({"mfa_token": mfa_token, "code": wrong_code}),
    )
    .await;
    let next_code = totp_code(&secret, 1);
    let second = call(
        post.clone(),
        "/auth/mfa",
        None,
        json!({"mfa_token": mfa_token, "code": next_code}),
    )
    .await;
    assert!(second["access_token"].is_string(), "{second}");
    let regenerated = call(
        post.clone(),
        "/api/me/mfa/recovery-codes",
        Some(&access),
        json!({"password": password, "code": recovery[0]}),
    )
    .await;
    assert!(regenerated["recovery_codes"].is_array(), "{regenerated}");

    let status = terminate(&mut served);
    std::thread::sleep(Duration::from_millis(200));
    let log = served.log.lock().unwrap().clone();

    assert!(status.success(), "SIGTERM must exit 0: {status:?}");
    assert!(log.contains("POST /auth/mfa 200"), "{log}");
    assert!(log.contains("MFA_ENCRYPTION_KEY is unset"), "{log}");
    let mut secrets = vec![
        password.to_owned(),
        secret.clone(),
        secret.to_ascii_lowercase(),
        mfa_token,
        second["access_token"].as_str().unwrap().to_owned(),
        second["refresh_token"].as_str().unwrap().to_owned(),
    ];
    secrets.extend(recovery.iter().cloned());
    secrets.extend(recovery.iter().map(|c| c.replace('-', "")));
    for code in regenerated["recovery_codes"].as_array().unwrap() {
        secrets.push(code.as_str().unwrap().to_owned());
    }
    for secret in secrets {
        assert!(!log.contains(&secret), "log leaks {secret:?}");
    }
    assert!(
        !log.contains(&format!("\"{wrong_code}\"")),
        "log leaks the wrong code"
    );
}

#[test]
fn bad_configuration_exits_1_with_one_line_naming_the_variable() {
    for (var, value, expect) in [
        ("BCRYPT_COST", "99", "BCRYPT_COST"),
        ("DB_TIMEOUT_SECONDS", "0", "DB_TIMEOUT_SECONDS"),
        (
            "JWT_PRIVATE_KEY_PATH",
            "/nonexistent/key.pem",
            "/nonexistent/key.pem",
        ),
        (
            "DATABASE_URL",
            "postgres://nobody@127.0.0.1:1/none",
            "DATABASE_URL",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("JWT_PRIVATE_KEY_PATH", test_key_path())
            .env("DB_TIMEOUT_SECONDS", "1")
            .env(var, value)
            .env("RUST_LOG", "off")
            .output()
            .expect("run tessera");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{var}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{var}: {stderr}");
        assert!(stderr.contains(expect), "{var}: {stderr}");
    }
}

#[test]
fn keygen_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.pem");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["keygen", path.to_str().unwrap()])
            .output()
            .unwrap()
    };
    assert!(run().status.success());
    let second = run();
    assert_eq!(second.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&second.stderr).contains("refusing to overwrite"));
}

/// bcrypt cost for the shutdown test: slow enough in a debug build that a
/// few dozen logins keep both cores busy for seconds.
const SLOW_BCRYPT_COST: &str = "9";

#[actix_web::test]
async fn sigterm_under_load_answers_every_accepted_request_then_exits_0() {
    let db = TestDatabase::create();
    let mut served = serve(
        &db,
        &[("BCRYPT_COST", SLOW_BCRYPT_COST), ("RUST_LOG", "info")],
    );
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = |path: &str| format!("{}{path}", served.address);
    let credentials = serde_json::json!({"username": "alice", "password": "correct horse"});
    let register = client
        .post(url("/auth/register"))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(register.status(), 201);
    let timing = Instant::now();
    let login = client
        .post(url("/auth/token"))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let one_login = timing.elapsed();
    // Enough logins for about 4 s of bcrypt on every core, but no more than
    // the bcrypt queue takes (32 per core), so none is refused with 503.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let count = ((4.0 * cores as f64 / one_login.as_secs_f64()) as usize).clamp(8, 30 * cores);

    let logins: Vec<_> = (0..count)
        .map(|_| {
            let request = client.post(url("/auth/token")).json(&credentials).send();
            actix_web::rt::spawn(async move {
                let outcome = match request.await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let body: serde_json::Value = response.json().await.unwrap_or_default();
                        Ok((status, body["access_token"].is_string()))
                    }
                    Err(err) => Err(err.to_string()),
                };
                (outcome, Instant::now())
            })
        })
        .collect();
    // Let every connection be accepted and its request read.
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let signalled = Instant::now();
    send_sigterm(&served);
    // While the logins drain, new connections are refused.
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let fresh = reqwest::Client::builder().no_proxy().build().unwrap();
    let late = fresh.get(url("/healthz")).send().await;
    let mut answers = Vec::new();
    for login in logins {
        answers.push(login.await.expect("login task"));
    }
    drop(client);
    let drained = Instant::now();
    let status = wait_for_exit(&mut served, Duration::from_secs(40));
    let exited = Instant::now();

    let log = served.log.lock().unwrap().clone();
    eprintln!(
        "{count} logins of {one_login:?} each; the last answered {:?} after SIGTERM; \
         exit {:?} after that",
        drained - signalled,
        exited - drained
    );
    for (outcome, _) in &answers {
        assert_eq!(outcome, &Ok((200, true)), "log:\n{log}");
    }
    let answered_after_signal = answers.iter().filter(|(_, at)| *at > signalled).count();
    assert!(
        answered_after_signal > 0,
        "no login was still in flight at SIGTERM; raise the load"
    );
    assert!(
        late.as_ref().is_err_and(|err| err.is_connect()),
        "a new connection after SIGTERM was served: {late:?}"
    );
    assert!(status.success(), "SIGTERM must exit 0: {status:?}\n{log}");
    assert!(log.contains("tessera stopped"), "{log}");
}

#[actix_web::test]
async fn a_low_open_files_limit_is_raised_so_a_thousand_idle_connections_fit() {
    // The test process holds the client ends.
    ensure_open_files(4096);
    let db = TestDatabase::create();
    // A soft limit of 256 (systemd's and containerd's defaults are 1024),
    // under a hard limit high enough for the server to raise it.
    let mut command = Command::new("sh");
    command.args([
        "-c",
        "ulimit -Sn 256 && exec \"$0\" serve",
        env!("CARGO_BIN_EXE_tessera"),
    ]);
    let mut served = serve_with(command, &db, &[("RUST_LOG", "info")]);
    let address = served.address.trim_start_matches("http://").to_owned();

    let held = hold_idle_connections(&address, 1_000).await;
    let fresh = reqwest::Client::builder().no_proxy().build().unwrap();
    let health = tokio::time::timeout(
        Duration::from_secs(5),
        fresh.get(format!("{}/healthz", served.address)).send(),
    )
    .await;
    let closed = closed_by_server(&held);
    drop(held);
    let status = terminate(&mut served);

    let log = served.log.lock().unwrap().clone();
    let health = health
        .expect("healthz answers within 5 s")
        .expect("healthz");
    assert_eq!(health.status(), 200);
    assert_eq!(closed, 0, "{log}");
    assert!(status.success());
    assert!(log.contains("open files limit raised from 256"), "{log}");
}
