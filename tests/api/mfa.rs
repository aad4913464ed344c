//! Second factor: the `amr` / `auth_time` claims, TOTP enrollment, the
//! two-step login, replay and brute-force rules, step-up, recovery codes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

use crate::helpers::spawn_app;

/// The claims of an access token, decoded without verification.
pub fn claims_of(access_token: &str) -> Value {
    let payload = access_token.split('.').nth(1).expect("a JWS payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON")
}

#[actix_web::test]
async fn a_password_login_carries_amr_pwd_and_auth_time_and_refresh_keeps_both() {
    let app = spawn_app().await;
    let before = chrono::Utc::now().timestamp();
    let user = app.signed_up("alice", "correct horse").await;
    let first = claims_of(&user.access_token);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let refreshed = app.refresh(&user.refresh_token).await;

    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let second = claims_of(&refreshed.str("access_token"));
    assert_eq!(first["amr"], serde_json::json!(["pwd"]));
    let auth_time = first["auth_time"].as_i64().expect("auth_time");
    assert!(auth_time >= before && auth_time <= first["iat"].as_i64().unwrap());
    assert_eq!(second["amr"], first["amr"]);
    assert_eq!(second["auth_time"], first["auth_time"]);
    assert!(second["iat"].as_i64().unwrap() > auth_time);
}
