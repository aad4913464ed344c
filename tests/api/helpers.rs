//! `spawn_app`: the real server on port 0 over a fresh database, and one
//! helper per endpoint.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::{json, Value};
use tessera::config::Settings;
use tessera::startup::Application;

use crate::test_db::TestDatabase;

/// A test signing key, generated once per test process.
pub fn test_key_path() -> &'static PathBuf {
    static KEY: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &KEY.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("test-private.pem");
        tessera::auth::keys::write_new_private_key(&path, 2048).expect("test key");
        (dir, path)
    })
    .1
}

/// A running tessera and what a test needs to talk to it.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// HTTP client (no proxy, no redirects).
    pub client: reqwest::Client,
    /// The settings the server runs with.
    pub settings: Settings,
    /// The server's state, to call the services in process.
    pub state: std::sync::Arc<tessera::state::AppState>,
    server: actix_web::dev::ServerHandle,
    /// Last field: dropped after the server stops.
    pub db: TestDatabase,
}

/// The settings every test app runs with (test key, port 0, bcrypt cost 4,
/// no rate limit, a small pool), with `overrides` on top.
pub fn test_settings(overrides: &[(&str, &str)]) -> Settings {
    let key_path = test_key_path().display().to_string();
    let mut vars: HashMap<String, String> = [
        ("BIND_ADDR", "127.0.0.1:0"),
        ("BCRYPT_COST", "4"),
        ("JWT_PRIVATE_KEY_PATH", key_path.as_str()),
        ("DB_POOL_SIZE", "4"),
        ("DB_TIMEOUT_SECONDS", "1"),
        ("AUTH_RATE_LIMIT_PER_MINUTE", "0"),
        // Tests that are not about the per-username throttle log in wrong
        // many times; brute_force.rs sets its own threshold.
        ("LOGIN_FAILURES_BEFORE_DELAY", "100"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in overrides {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    Settings::from_lookup(|name| vars.get(name).cloned()).expect("test settings")
}

/// Spawns the app with test defaults.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Spawns the app with extra environment variables over the test defaults.
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    let db = TestDatabase::create();
    let url = db.url().to_owned();
    spawn_app_on(db, &url, overrides).await
}

/// Spawns a second instance of the app over `app`'s database (as a second
/// server behind a load balancer would run). Declare it after `app`, so it
/// stops before `app` drops the database.
pub async fn spawn_second_instance(app: &TestApp) -> TestApp {
    let url = app.db.url().to_owned();
    spawn_app_on(app.db.shared(), &url, &[]).await
}

/// Spawns the app over `db`, reaching it at `database_url` (which may lead
/// through a proxy; `db` itself is created and migrated directly).
pub async fn spawn_app_on(
    db: TestDatabase,
    database_url: &str,
    overrides: &[(&str, &str)],
) -> TestApp {
    let mut with_database = vec![("DATABASE_URL", database_url)];
    with_database.extend_from_slice(overrides);
    let settings = test_settings(&with_database);
    let app = Application::build(settings.clone()).expect("build app");
    let port = app.port();
    let server = app.handle();
    let state = app.state();
    actix_web::rt::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client,
        settings,
        state,
        server,
        db,
    }
}

/// A second tessera on the same database as a [`TestApp`], as behind a
/// load balancer: it shares nothing with the first but PostgreSQL.
pub struct OtherInstance {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    client: reqwest::Client,
    server: actix_web::dev::ServerHandle,
}

impl OtherInstance {
    /// POST a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        Reply::from(
            self.client
                .post(format!("{}{path}", self.address))
                .json(body)
                .send()
                .await
                .expect("request"),
        )
        .await
    }
}

impl Drop for OtherInstance {
    fn drop(&mut self) {
        let handle = self.server.clone();
        actix_web::rt::spawn(async move { handle.stop(false).await });
    }
}

/// Another instance of tessera on a [`TestApp`]'s database (several
/// instances sharing one database); stopped when dropped.
pub struct Instance {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    server: actix_web::dev::ServerHandle,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let handle = self.server.clone();
        actix_web::rt::spawn(async move { handle.stop(false).await });
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stop without waiting: the database is dropped WITH (FORCE) next.
        let handle = self.server.clone();
        actix_web::rt::spawn(async move { handle.stop(false).await });
    }
}

/// A decoded response: status, headers and JSON body (Null when empty).
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
    /// Parsed JSON, or `Value::Null`.
    pub body: Value,
    /// Raw body text.
    pub text: String,
}

impl Reply {
    /// A reply built in process (no HTTP): status, header pairs and body.
    pub fn from_parts(status: u16, headers: Vec<(String, Vec<u8>)>, text: String) -> Self {
        let mut map = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            if let (Ok(name), Ok(value)) = (
                reqwest::header::HeaderName::from_bytes(name.as_bytes()),
                reqwest::header::HeaderValue::from_bytes(&value),
            ) {
                map.append(name, value);
            }
        }
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers: map,
            body,
            text,
        }
    }

    async fn from(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            body,
            text,
        }
    }

    /// A header as a string ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The `error` code of an error envelope; fails the test when the body
    /// has none (a success, or not the envelope).
    #[track_caller]
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or_else(|| {
            panic!(
                "no \"error\" string in the {} reply: {}",
                self.status, self.text
            )
        })
    }

    /// A string field of the body; fails the test when the field is absent
    /// or not a string, so a missing field never passes as "".
    #[track_caller]
    pub fn str(&self, field: &str) -> String {
        match self.body[field].as_str() {
            Some(value) => value.to_owned(),
            None => panic!(
                "no string field {field:?} in the {} reply: {}",
                self.status, self.text
            ),
        }
    }
}

/// Username and password of a registered user plus their first tokens.
pub struct LoggedIn {
    /// Access token.
    pub access_token: String,
    /// Refresh token.
    pub refresh_token: String,
    /// User id.
    pub user_id: String,
}

impl TestApp {
    /// Runs `tessera user <action> <username> <role>` (the admin CLI)
    /// against this app's database.
    pub fn cli_role(&self, action: &str, username: &str, role: &str) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["user", action, username, role])
            .env("DATABASE_URL", self.db.url())
            .env("RUST_LOG", "warn")
            .output()
            .expect("run tessera")
    }

    /// Signs up `root_admin`, grants it `admin` with the CLI, logs it in and
    /// returns its access token.
    pub async fn admin_token(&self) -> String {
        self.signed_up("root_admin", "correct horse").await;
        let out = self.cli_role("grant-role", "root_admin", "admin");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.login("root_admin", "correct horse")
            .await
            .str("access_token")
    }

    /// Starts another instance with the same settings on the same database.
    pub async fn another_instance(&self) -> OtherInstance {
        let app = Application::build(self.settings.clone()).expect("build second app");
        let port = app.port();
        let server = app.handle();
        actix_web::rt::spawn(app.run_until_stopped());
        OtherInstance {
            address: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
            server,
        }
    }

    /// URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// POST a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        Reply::from(
            self.client
                .post(self.url(path))
                .json(body)
                .send()
                .await
                .expect("request"),
        )
        .await
    }

    /// GET with an optional bearer token.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Reply::from(request.send().await.expect("request")).await
    }

    /// Any request, for odd methods and headers.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        Reply::from(request.send().await.expect("request")).await
    }

    /// `POST /auth/register`.
    pub async fn register(&self, username: &str, password: &str) -> Reply {
        self.post_json(
            "/auth/register",
            &json!({"username": username, "password": password}),
        )
        .await
    }

    /// `POST /auth/token`.
    pub async fn login(&self, username: &str, password: &str) -> Reply {
        self.post_json(
            "/auth/token",
            &json!({"username": username, "password": password}),
        )
        .await
    }

    /// `POST /auth/refresh`.
    pub async fn refresh(&self, refresh_token: &str) -> Reply {
        self.post_json("/auth/refresh", &json!({"refresh_token": refresh_token}))
            .await
    }

    /// `POST /auth/logout`.
    pub async fn logout(&self, refresh_token: &str) -> Reply {
        self.post_json("/auth/logout", &json!({"refresh_token": refresh_token}))
            .await
    }

    /// `GET /api/me`.
    pub async fn me(&self, access_token: &str) -> Reply {
        self.get("/api/me", Some(access_token)).await
    }

    /// `GET /api/sessions`.
    pub async fn sessions(&self, access_token: &str) -> Reply {
        self.get("/api/sessions", Some(access_token)).await
    }

    /// `DELETE /api/sessions/{id}`.
    pub async fn revoke_session(&self, access_token: &str, session_id: &str) -> Reply {
        self.send(
            self.client
                .delete(self.url(&format!("/api/sessions/{session_id}")))
                .bearer_auth(access_token),
        )
        .await
    }

    /// `DELETE /api/sessions`.
    pub async fn revoke_all_sessions(&self, access_token: &str) -> Reply {
        self.send(
            self.client
                .delete(self.url("/api/sessions"))
                .bearer_auth(access_token),
        )
        .await
    }

    /// `POST /api/me/password`.
    pub async fn change_password(&self, access_token: &str, current: &str, new: &str) -> Reply {
        self.send(
            self.client
                .post(self.url("/api/me/password"))
                .bearer_auth(access_token)
                .json(&json!({"current_password": current, "new_password": new})),
        )
        .await
    }

    /// `DELETE /api/me`.
    pub async fn delete_account(&self, access_token: &str, password: &str) -> Reply {
        self.send(
            self.client
                .delete(self.url("/api/me"))
                .bearer_auth(access_token)
                .json(&json!({"password": password})),
        )
        .await
    }

    /// Starts another instance on this app's database with this app's
    /// settings, changed by `adjust`.
    pub fn another_instance_with(&self, adjust: impl FnOnce(&mut Settings)) -> Instance {
        let mut settings = self.settings.clone();
        adjust(&mut settings);
        let app = Application::build(settings).expect("build another instance");
        let address = format!("http://127.0.0.1:{}", app.port());
        let server = app.handle();
        actix_web::rt::spawn(app.run_until_stopped());
        Instance { address, server }
    }

    /// Stops this instance as SIGTERM would (drain the server, then its
    /// background tasks); its database stays.
    pub async fn stop(&self) {
        self.server.stop(true).await;
        // The background tasks stop right after the server; give them a
        // moment to finish what they are doing.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }

    /// `PUT /api/me/email`.
    pub async fn set_email(&self, access_token: &str, email: &str, password: &str) -> Reply {
        self.send(
            self.client
                .put(self.url("/api/me/email"))
                .bearer_auth(access_token)
                .json(&json!({"email": email, "password": password})),
        )
        .await
    }

    /// `POST /auth/email/verify`.
    pub async fn verify_email(&self, token: &str) -> Reply {
        self.post_json("/auth/email/verify", &json!({"token": token}))
            .await
    }

    /// `POST /auth/password/forgot`.
    pub async fn forgot_password(&self, login: &str) -> Reply {
        self.post_json("/auth/password/forgot", &json!({"login": login}))
            .await
    }

    /// `POST /auth/password/reset`.
    pub async fn reset_password(&self, token: &str, new_password: &str) -> Reply {
        self.post_json(
            "/auth/password/reset",
            &json!({"token": token, "new_password": new_password}),
        )
        .await
    }

    /// `GET /api/account`.
    pub async fn account(&self, access_token: &str) -> Reply {
        self.get("/api/account", Some(access_token)).await
    }

    /// One SQL expression evaluated on the test database, as text ("" for
    /// NULL).
    pub fn sql_text(&self, expression: &str) -> String {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Text {
            #[diesel(sql_type = diesel::sql_types::Text)]
            text: String,
        }
        let mut conn = self.db.connect();
        diesel::sql_query(format!("SELECT coalesce(({expression})::text, '') AS text"))
            .get_result::<Text>(&mut conn)
            .expect("test SQL")
            .text
    }

    /// `GET /api/me/events?<query>`.
    pub async fn my_events(&self, access_token: &str, query: &str) -> Reply {
        self.get(&format!("/api/me/events?{query}"), Some(access_token))
            .await
    }

    /// `GET /api/admin/events?<query>`.
    pub async fn admin_events(&self, access_token: &str, query: &str) -> Reply {
        self.get(&format!("/api/admin/events?{query}"), Some(access_token))
            .await
    }

    /// Every `auth_events` row as JSON (`row_to_json`), oldest first.
    pub fn event_rows(&self) -> Vec<Value> {
        self.json_rows(
            "SELECT row_to_json(e)::text AS json FROM auth_events e ORDER BY created_at, id",
        )
    }

    /// Every `outbox` row as JSON, by id.
    pub fn outbox_rows(&self) -> Vec<Value> {
        self.json_rows("SELECT row_to_json(o)::text AS json FROM outbox o ORDER BY id")
    }

    /// Runs a query whose one column `json` is a JSON text per row.
    fn json_rows(&self, query: &str) -> Vec<Value> {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Text)]
            json: String,
        }
        let mut conn = self.db.connect();
        diesel::sql_query(query)
            .load::<Row>(&mut conn)
            .expect("test SQL")
            .into_iter()
            .map(|row| serde_json::from_str(&row.json).expect("row JSON"))
            .collect()
    }

    /// `POST /api/me/mfa/totp`.
    pub async fn enroll_totp(&self, access_token: &str, password: &str) -> Reply {
        self.send(
            self.client
                .post(self.url("/api/me/mfa/totp"))
                .bearer_auth(access_token)
                .json(&json!({"password": password})),
        )
        .await
    }

    /// `POST /api/me/mfa/totp/confirm`.
    pub async fn confirm_totp(&self, access_token: &str, code: &str) -> Reply {
        self.send(
            self.client
                .post(self.url("/api/me/mfa/totp/confirm"))
                .bearer_auth(access_token)
                .json(&json!({"code": code})),
        )
        .await
    }

    /// `DELETE /api/me/mfa/totp`.
    pub async fn disable_totp(&self, access_token: &str, password: &str, code: &str) -> Reply {
        self.send(
            self.client
                .delete(self.url("/api/me/mfa/totp"))
                .bearer_auth(access_token)
                .json(&json!({"password": password, "code": code})),
        )
        .await
    }

    /// `POST /api/me/mfa/recovery-codes`.
    pub async fn regenerate_recovery_codes(
        &self,
        access_token: &str,
        password: &str,
        code: &str,
    ) -> Reply {
        self.send(
            self.client
                .post(self.url("/api/me/mfa/recovery-codes"))
                .bearer_auth(access_token)
                .json(&json!({"password": password, "code": code})),
        )
        .await
    }

    /// `POST /auth/mfa`.
    pub async fn complete_mfa(&self, mfa_token: &str, code: &str) -> Reply {
        self.post_json("/auth/mfa", &json!({"mfa_token": mfa_token, "code": code}))
            .await
    }

    /// `POST /api/me/passkeys/register/start`.
    pub async fn passkey_register_start(&self, access_token: &str, password: &str) -> Reply {
        self.send(
            self.client
                .post(self.url("/api/me/passkeys/register/start"))
                .bearer_auth(access_token)
                .json(&json!({"password": password})),
        )
        .await
    }

    /// `POST /api/me/passkeys/register/finish` (`body` as the client sends it).
    pub async fn passkey_register_finish(&self, access_token: &str, body: &Value) -> Reply {
        self.send(
            self.client
                .post(self.url("/api/me/passkeys/register/finish"))
                .bearer_auth(access_token)
                .json(body),
        )
        .await
    }

    /// `GET /api/me/passkeys`.
    pub async fn passkeys(&self, access_token: &str) -> Reply {
        self.get("/api/me/passkeys", Some(access_token)).await
    }

    /// `DELETE /api/me/passkeys/{passkey_id}`.
    pub async fn delete_passkey(
        &self,
        access_token: &str,
        passkey_id: &str,
        password: &str,
    ) -> Reply {
        self.send(
            self.client
                .delete(self.url(&format!("/api/me/passkeys/{passkey_id}")))
                .bearer_auth(access_token)
                .json(&json!({"password": password})),
        )
        .await
    }

    /// `POST /auth/passkey/start`.
    pub async fn passkey_start(&self) -> Reply {
        self.post_json("/auth/passkey/start", &json!({})).await
    }

    /// `POST /auth/passkey/finish`.
    pub async fn passkey_finish(&self, challenge_id: &str, credential: &Value) -> Reply {
        self.post_json(
            "/auth/passkey/finish",
            &json!({"challenge_id": challenge_id, "credential": credential}),
        )
        .await
    }

    /// Runs one SQL statement on the test database (to age rows, say).
    pub fn sql(&self, statement: &str) {
        use diesel::RunQueryDsl;
        let mut conn = self.db.connect();
        diesel::sql_query(statement)
            .execute(&mut conn)
            .expect("test SQL");
    }

    /// Runs one SQL query returning a single `bigint` (cast in the query).
    pub fn sql_count(&self, query: &str) -> i64 {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.db.connect();
        diesel::sql_query(query)
            .get_result::<Count>(&mut conn)
            .expect("test SQL")
            .n
    }

    /// Registers and logs in a user, asserting both succeed.
    pub async fn signed_up(&self, username: &str, password: &str) -> LoggedIn {
        let registered = self.register(username, password).await;
        assert_eq!(registered.status, 201, "register: {}", registered.text);
        let login = self.login(username, password).await;
        assert_eq!(login.status, 200, "login: {}", login.text);
        LoggedIn {
            access_token: login.str("access_token"),
            refresh_token: login.str("refresh_token"),
            user_id: login.str("user_id"),
        }
    }
}
