//! Test-only walkthrough of passkeys against a running tessera (README
//! "Passkeys"): signs a user up (or in), registers a software passkey, then
//! signs in with it alone. The software authenticator is the one the
//! integration tests use; its key lives only in this process.
//!
//! ```sh
//! cargo run --example passkey_walkthrough -- http://127.0.0.1:8080 alice 'correct horse'
//! ```

#[path = "../tests/api/soft_passkey.rs"]
mod soft_passkey;

use serde_json::{json, Value};
use soft_passkey::SoftPasskey;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let username = args.next().unwrap_or_else(|| "alice".into());
    let password = args.next().unwrap_or_else(|| "correct horse".into());
    let client = reqwest::Client::builder().no_proxy().build()?;
    let post = |path: &'static str, token: Option<&str>, body: Value| {
        let mut request = client.post(format!("{base}{path}")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            println!("POST {path} -> {status}");
            Ok::<_, reqwest::Error>((status, body))
        }
    };

    let credentials = json!({"username": username, "password": password});
    post("/auth/register", None, credentials.clone()).await?;
    let (status, login) = post("/auth/token", None, credentials).await?;
    if status != 200 {
        return Err(format!("password login failed: {login}").into());
    }
    let access = login["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let mut passkey = SoftPasskey::new();
    if let Ok(origin) = std::env::var("ORIGIN") {
        passkey.origin = origin;
    }
    let (_, started) = post(
        "/api/me/passkeys/register/start",
        Some(&access),
        json!({"password": password}),
    )
    .await?;
    let credential = passkey.create(&started["options"]);
    let (status, created) = post(
        "/api/me/passkeys/register/finish",
        Some(&access),
        json!({"challenge_id": started["challenge_id"], "credential": credential, "name": "walkthrough"}),
    )
    .await?;
    println!("  {created}");
    if status != 201 {
        return Err("registration refused".into());
    }

    let (_, started) = post("/auth/passkey/start", None, json!({})).await?;
    let credential = passkey.get(&started["options"]);
    let (status, tokens) = post(
        "/auth/passkey/finish",
        None,
        json!({"challenge_id": started["challenge_id"], "credential": credential}),
    )
    .await?;
    if status != 200 {
        return Err(format!("passkey sign-in refused: {tokens}").into());
    }
    let access = tokens["access_token"].as_str().unwrap_or_default();
    let payload = access.split('.').nth(1).unwrap_or_default();
    let claims: Value = serde_json::from_slice(&soft_passkey::unb64(payload))?;
    println!(
        "  signed in as {} (amr {})",
        claims["username"], claims["amr"]
    );
    let me = client
        .get(format!("{base}/api/me"))
        .bearer_auth(access)
        .send()
        .await?;
    println!("GET /api/me -> {}", me.status().as_u16());
    Ok(())
}
