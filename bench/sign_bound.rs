//! The signing bound of `bench/run.sh`: how long ONE RS256 access token
//! takes to sign on one thread, with tessera's own key loading and its own
//! [`TokenService::issue`] (claims, JSON, base64url, the RSA signature).
//! `cores ÷ that` is the most refreshes per second the machine can sign.
//!
//! For comparison it also times `jsonwebtoken::encode` with the same key and
//! claims (what `issue` did before it kept the parsed key: a DER parse and
//! key check per token) and one parse of the key.
//!
//! ```text
//! cargo build --release --example sign_bound
//! target/release/examples/sign_bound KEY.pem [SECONDS]
//! ```
//!
//! Prints one JSON object: medians of per-token times over batches, seconds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, Header};
use tessera::auth::keys::KeySet;
use tessera::auth::tokens::{AccessClaims, Subject, TokenService, ACCESS_TOKEN_TYP};
use tessera::config::Settings;
use uuid::Uuid;

/// Tokens signed per timed batch.
const BATCH: u32 = 20;

/// Per-item seconds of `f`, median over batches run for at least `budget`
/// (and at least 5 batches), after one untimed batch.
fn time_per_item(budget: Duration, mut f: impl FnMut()) -> (f64, usize) {
    let once = |f: &mut dyn FnMut()| {
        let started = Instant::now();
        for _ in 0..BATCH {
            f();
        }
        started.elapsed().as_secs_f64() / f64::from(BATCH)
    };
    once(&mut f);
    let mut samples = Vec::new();
    let started = Instant::now();
    while samples.len() < 5 || started.elapsed() < budget {
        samples.push(once(&mut f));
    }
    samples.sort_by(f64::total_cmp);
    (samples[samples.len() / 2], samples.len())
}

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: sign_bound KEY.pem [SECONDS]")?;
    let seconds: f64 = args.next().map_or(Ok(2.0), |s| {
        s.parse().map_err(|_| format!("bad SECONDS {s:?}"))
    })?;
    let budget = Duration::from_secs_f64(seconds);
    let pem = std::fs::read(&path).map_err(|err| format!("{path}: {err}"))?;

    let parse_started = Instant::now();
    let keys = KeySet::from_private_pem(&pem).map_err(|err| format!("{path}: {err}"))?;
    let parse_s = parse_started.elapsed().as_secs_f64();
    let settings = Settings::from_lookup(|_| None).map_err(|err| err.to_string())?;
    let tokens = TokenService::new(Arc::new(keys), &settings);

    let roles = vec!["user".to_owned()];
    let amr = vec!["pwd".to_owned()];
    let subject = Subject {
        user_id: Uuid::new_v4(),
        username: "bench_user",
        roles: &roles,
        session_id: Uuid::new_v4(),
        amr: &amr,
        auth_time: chrono::Utc::now().timestamp(),
    };
    let mut failed = false;
    let (issue_s, batches) = time_per_item(budget, || {
        failed |= tokens.issue(&subject).is_err();
    });

    // The same claims through jsonwebtoken::encode (re-parses the key).
    let sample = tokens.issue(&subject).map_err(|err| err.to_string())?.token;
    let claims = jsonwebtoken::dangerous::insecure_decode::<AccessClaims>(&sample)
        .map_err(|err| err.to_string())?
        .claims;
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some(ACCESS_TOKEN_TYP.to_owned());
    header.kid = Some(tokens.keys().current_kid().to_owned());
    let key = tokens.keys().encoding_key();
    let (encode_s, _) = time_per_item(budget / 2, || {
        failed |= jsonwebtoken::encode(&header, &claims, key).is_err();
    });
    if failed {
        return Err("signing failed".into());
    }
    let bits = tokens.keys().signing_key().public_modulus_len() * 8;
    println!(
        r#"{{"bits": {bits}, "batch": {BATCH}, "batches": {batches}, "issue_s": {issue_s:.9}, "jsonwebtoken_encode_s": {encode_s:.9}, "key_load_s": {parse_s:.9}, "impl": "tessera TokenService::issue (aws-lc-rs RsaKeyPair, RSA_PKCS1_SHA256)"}}"#
    );
    Ok(())
}
