//! Resource limits: body size at the 16 KiB boundary (also chunked), huge
//! headers, deeply nested JSON, and many idle connections. Whatever the
//! abuse, the answer is a normal status and the server keeps answering.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{spawn_app, Reply, TestApp};

/// The body limit (`tessera::startup::MAX_BODY_BYTES`).
const LIMIT: usize = tessera::startup::MAX_BODY_BYTES;

/// How long any answer in these tests may take.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// A registration body of exactly `len` bytes (the username is padded).
fn register_body_of_length(len: usize) -> String {
    let frame = r#"{"username":"","password":"correct horse"}"#;
    let body = format!(
        r#"{{"username":"{}","password":"correct horse"}}"#,
        "a".repeat(len - frame.len())
    );
    assert_eq!(body.len(), len);
    body
}

/// POSTs `body` as `application/json`.
async fn post_raw_json(app: &TestApp, path: &str, body: String) -> Reply {
    app.send(
        app.client
            .post(app.url(path))
            .header("content-type", "application/json")
            .body(body),
    )
    .await
}

/// Writes `request` on a new connection and reads the whole answer (the
/// request should say `Connection: close`). Returns the status code, or
/// `None` if the server closed the connection without an answer.
async fn raw_exchange(app: &TestApp, request: &[u8]) -> (Option<u16>, String) {
    let address = app.address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.expect("connect");
    // The server may answer and close before it has read everything.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(ANSWER_WITHIN, stream.read_to_end(&mut answer))
        .await
        .expect("the server answers in time");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok());
    (status, answer)
}

/// Asserts the server still serves a cheap route and a private one.
async fn assert_still_serving(app: &TestApp, access_token: &str) {
    let health = tokio::time::timeout(ANSWER_WITHIN, app.get("/healthz", None))
        .await
        .expect("healthz in time");
    assert_eq!(health.status, 200);
    assert_eq!(app.me(access_token).await.status, 200);
}

// ------------------------------------------------------------------ bodies

#[actix_web::test]
async fn a_body_of_exactly_16_kib_is_read_and_one_byte_more_is_413() {
    let app = spawn_app().await;

    let at_limit = post_raw_json(&app, "/auth/register", register_body_of_length(LIMIT)).await;
    let over = post_raw_json(&app, "/auth/register", register_body_of_length(LIMIT + 1)).await;

    // At the limit the body is parsed: the padded username is then invalid.
    assert_eq!(at_limit.status, 422, "{}", at_limit.text);
    assert!(at_limit.body["fields"]["username"].is_string());
    assert_eq!(over.status, 413, "{}", over.text);
    assert_eq!(over.error(), "payload_too_large");
}

#[actix_web::test]
async fn a_chunked_body_over_16_kib_is_413() {
    let app = spawn_app().await;
    // No Content-Length: the limit must hold while streaming too.
    let body = register_body_of_length(LIMIT + 1024);
    let (head, tail) = body.split_at(LIMIT / 2);
    let request = format!(
        "POST /auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         {:x}\r\n{head}\r\n{:x}\r\n{tail}\r\n0\r\n\r\n",
        head.len(),
        tail.len(),
    );

    let (status, answer) = raw_exchange(&app, request.as_bytes()).await;

    assert_eq!(status, Some(413), "{answer}");
    assert!(
        answer.contains(r#""error":"payload_too_large""#),
        "{answer}"
    );
}

#[actix_web::test]
async fn a_body_that_stops_arriving_is_408_after_the_body_timeout() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", "correct horse").await;
    let address = app.address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.expect("connect");
    // Announces 100 bytes, sends one, then goes quiet (slow-body attack).
    stream
        .write_all(
            b"POST /auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{",
        )
        .await
        .expect("write");
    let started = Instant::now();

    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        tessera::http::json_body::BODY_TIMEOUT + ANSWER_WITHIN,
        stream.read_to_end(&mut answer),
    )
    .await;

    assert!(read.is_ok(), "the server still holds the stalled request");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""error":"request_timeout""#), "{answer}");
    assert!(started.elapsed() >= tessera::http::json_body::BODY_TIMEOUT);
    assert_still_serving(&app, &user.access_token).await;
}

// ----------------------------------------------------------------- headers

#[actix_web::test]
async fn a_64_kib_authorization_header_is_refused_and_the_server_keeps_answering() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", "correct horse").await;
    let huge = format!("Bearer {}", "a".repeat(64 * 1024));

    let reply = app
        .send(
            app.client
                .get(app.url("/api/me"))
                .header("authorization", huge),
        )
        .await;

    assert!(
        reply.status == 401 || reply.status == 431,
        "{} {}",
        reply.status,
        reply.text
    );
    if reply.status == 401 {
        assert_eq!(reply.error(), "invalid_token");
        assert!(reply
            .header("www-authenticate")
            .contains(r#"error="invalid_token""#));
    }
    assert_still_serving(&app, &user.access_token).await;
}

#[actix_web::test]
async fn a_request_head_over_128_kib_or_with_too_many_headers_is_431() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", "correct horse").await;
    let oversized = format!(
        "GET /api/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        "a".repeat(200 * 1024)
    );
    let many: String = (0..200).map(|i| format!("X-Filler-{i}: {i}\r\n")).collect();
    let crowded = format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}Connection: close\r\n\r\n");

    for request in [oversized, crowded] {
        let (status, answer) = raw_exchange(&app, request.as_bytes()).await;

        // actix-http refuses these before routing (head > 128 KiB, more
        // than 96 headers), so the answer is its own bare 431.
        assert_eq!(status, Some(431), "{}", &answer[..answer.len().min(300)]);
    }
    assert_still_serving(&app, &user.access_token).await;
}

// ------------------------------------------------------------ nested JSON

#[actix_web::test]
async fn deeply_nested_json_is_400_on_every_json_route() {
    let app = spawn_app().await;
    let user = app.signed_up("alice", "correct horse").await;
    let bodies = [
        "[".repeat(10_000),
        format!("{}{}", "[".repeat(8_000), "]".repeat(8_000)),
        format!(r#"{{"username":{}"#, r#"{"a":"#.repeat(3_000)),
        format!(
            r#"{{"username":"alice","password":{}1{}}}"#,
            "[".repeat(5_000),
            "]".repeat(5_000)
        ),
    ];
    let routes = [
        (reqwest::Method::POST, "/auth/register"),
        (reqwest::Method::POST, "/auth/token"),
        (reqwest::Method::POST, "/auth/refresh"),
        (reqwest::Method::POST, "/auth/logout"),
        (reqwest::Method::POST, "/api/me/password"),
        (reqwest::Method::DELETE, "/api/me"),
    ];

    for body in &bodies {
        assert!(body.len() <= LIMIT, "{} bytes", body.len());
        for (method, path) in &routes {
            let reply = app
                .send(
                    app.client
                        .request(method.clone(), app.url(path))
                        .bearer_auth(&user.access_token)
                        .header("content-type", "application/json")
                        .body(body.clone()),
                )
                .await;

            assert_eq!(reply.status, 400, "{method} {path}: {}", reply.text);
            assert_eq!(reply.error(), "invalid_request", "{method} {path}");
            assert!(reply.body["message"].is_string());
        }
    }
    assert_still_serving(&app, &user.access_token).await;
    // The account was not touched by any of it.
    assert_eq!(app.login("alice", "correct horse").await.status, 200);
}

#[actix_web::test]
async fn a_json_value_nested_within_serdes_limit_is_still_a_normal_answer() {
    let app = spawn_app().await;
    // 100 levels: under serde_json's recursion limit (128), so the body
    // parses and is refused only for its shape.
    let body = json!({
        "username": serde_json::from_str::<serde_json::Value>(
            &format!("{}{}", "[".repeat(100), "]".repeat(100))
        ).unwrap(),
        "password": "correct horse",
    });

    let reply = app.post_json("/auth/register", &body).await;

    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.error(), "invalid_request");
}

// ------------------------------------------------------------ connections

/// Raises this process's soft open-files limit to at least `wanted` (up to
/// the hard limit): the test holds both ends of every connection.
pub fn ensure_open_files(wanted: u64) {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < wanted {
            limit.rlim_cur = wanted.min(limit.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
        assert!(
            limit.rlim_cur >= wanted,
            "open-files limit {} is below {wanted}",
            limit.rlim_cur
        );
    }
}

/// Opens `count` connections to the app, all at once; every other one
/// sends the start of a request head and stops there (slowloris), the rest
/// send nothing.
pub async fn hold_idle_connections(address: &str, count: usize) -> Vec<TcpStream> {
    futures_util::future::join_all((0..count).map(|i| async move {
        let mut stream = TcpStream::connect(address).await.expect("connect");
        if i % 2 == 1 {
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .await
                .expect("write");
        }
        stream
    }))
    .await
}

/// How many of `held` the server has closed (or answered) so far. Asks
/// the kernel directly (a non-blocking peek): tokio's cached readiness of a
/// stream nobody polls would always say "nothing yet".
pub fn closed_by_server(held: &[TcpStream]) -> usize {
    use std::os::fd::AsRawFd;
    held.iter()
        .filter(|stream| {
            let mut byte = 0u8;
            // SAFETY: recv writes at most 1 byte into `byte`, which lives
            // across the call; the fd is open for as long as `stream`.
            let got = unsafe {
                libc::recv(
                    stream.as_raw_fd(),
                    (&mut byte as *mut u8).cast(),
                    1,
                    libc::MSG_PEEK | libc::MSG_DONTWAIT,
                )
            };
            // -1 with EAGAIN: open and silent. 0: closed. 1: answered.
            got >= 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::WouldBlock
        })
        .count()
}

#[actix_web::test]
async fn a_thousand_idle_connections_do_not_stop_healthz() {
    ensure_open_files(4096);
    let app = spawn_app().await;
    let user = app.signed_up("alice", "correct horse").await;

    let opening = Instant::now();
    let held = hold_idle_connections(app.address.trim_start_matches("http://"), 1_000).await;
    let opened_in = opening.elapsed();
    // A new client: a new connection, not one pooled before the flood.
    let fresh = reqwest::Client::builder().no_proxy().build().unwrap();
    let asked = Instant::now();
    let health = tokio::time::timeout(ANSWER_WITHIN, fresh.get(app.url("/healthz")).send())
        .await
        .expect("healthz answers within 5 s")
        .expect("healthz request");
    let answered_in = asked.elapsed();
    let me = fresh
        .get(app.url("/api/me"))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .expect("me request");

    let closed = closed_by_server(&held);

    eprintln!("opened 1000 connections in {opened_in:?}; healthz answered in {answered_in:?}");
    assert_eq!(health.status(), 200);
    assert_eq!(me.status(), 200);
    // All thousand were still held open while healthz answered (so none
    // was shed to make room, and none had timed out yet).
    assert_eq!((held.len(), closed), (1_000, 0));
}

#[actix_web::test]
async fn idle_and_unfinished_connections_are_closed_by_the_server() {
    let app = spawn_app().await;
    let held = hold_idle_connections(app.address.trim_start_matches("http://"), 10).await;
    assert_eq!(closed_by_server(&held), 0, "closed at once");

    // CLIENT_TIMEOUT bounds how long a connection may take to send its
    // request head: idle and slowloris clients are cut off after it.
    let deadline = Instant::now() + tessera::startup::CLIENT_TIMEOUT * 3;
    while closed_by_server(&held) < held.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    assert_eq!(
        closed_by_server(&held),
        held.len(),
        "idle connections kept open"
    );
}
