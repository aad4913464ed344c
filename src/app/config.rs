//! Settings read from the environment (and `.env`), validated once at startup.
//!
//! Every error names the variable it is about, so a bad deployment fails with
//! one line that says what to fix.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use lettre::message::Mailbox;

use crate::jobs::mail::{self, SmtpEndpoint};

/// A configuration problem, always naming the offending variable.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: &'static str,
    /// What is wrong with its value.
    pub reason: String,
}

/// Everything the service reads from its environment (README "Configuration").
/// `Debug` prints the database URL without its password.
#[derive(Clone)]
pub struct Settings {
    /// PostgreSQL connection URL.
    pub database_url: String,
    /// Maximum connections in the r2d2 pool.
    pub db_pool_size: u32,
    /// Longest wait for a pooled connection before answering 503.
    pub db_timeout: Duration,
    /// Address the HTTP server listens on (port 0 picks a free port).
    pub bind_addr: SocketAddr,
    /// PEM private key used to sign; `None` means "use the dev key".
    pub jwt_private_key_path: Option<PathBuf>,
    /// Older public keys still accepted and published in the JWKS.
    pub jwt_previous_public_key_paths: Vec<PathBuf>,
    /// `iss` claim written and required.
    pub jwt_issuer: String,
    /// `aud` claim written and required.
    pub jwt_audience: String,
    /// Access-token lifetime in seconds.
    pub access_token_ttl_seconds: i64,
    /// Session inactivity lifetime in seconds.
    pub refresh_token_ttl_seconds: i64,
    /// How long a just-spent refresh token may be retried.
    pub refresh_reuse_grace_seconds: i64,
    /// Clock skew allowed on `exp` / `nbf`.
    pub jwt_leeway_seconds: u64,
    /// bcrypt work factor.
    pub bcrypt_cost: u32,
    /// How many verified access tokens to keep in memory (0 disables).
    pub token_cache_capacity: u64,
    /// Logins + registrations allowed per client IP per minute (0 disables).
    pub auth_rate_limit_per_minute: u32,
    /// Consecutive failed password checks for one username before its
    /// password logins are delayed.
    pub login_failures_before_delay: u32,
    /// Whether to take the client IP from `X-Forwarded-For`.
    pub trust_forwarded_for: bool,
    /// Browser origins allowed by CORS; empty sends no CORS headers.
    pub cors_allowed_origins: Vec<String>,
    /// env_logger filter, validated.
    pub rust_log: String,
    /// WebAuthn relying-party id: the domain passkeys are bound to.
    pub webauthn_rp_id: String,
    /// Origins whose WebAuthn responses are accepted (web and app origins).
    pub webauthn_origins: Vec<url::Url>,
    /// The issuer authenticator apps show for TOTP entries.
    pub mfa_issuer: String,
    /// Key that seals TOTP secrets at rest; `None`: derived from the
    /// signing key (with a WARN at startup). Never printed by `Debug`.
    pub mfa_encryption_key: Option<[u8; 32]>,
    /// Where mail is sent; `None` logs mails instead (README "Email").
    pub smtp_url: Option<SmtpEndpoint>,
    /// Sender of every mail.
    pub mail_from: Mailbox,
    /// Link base of reset mails (`?token=…` is appended); `None` mails the
    /// token alone.
    pub password_reset_url: Option<url::Url>,
    /// Where security events are POSTed, and the signing secret; `None`
    /// when `WEBHOOK_URL` is unset.
    pub webhook: Option<WebhookSettings>,
    /// Days an event is kept before the retention task deletes it.
    pub event_retention_days: u32,
}

/// The webhook receiver (README "Events and webhooks").
#[derive(Clone)]
pub struct WebhookSettings {
    /// `http://` or `https://` URL every event is POSTed to.
    pub url: url::Url,
    /// The decoded `whsec_` secret: the HMAC-SHA256 key of the signatures.
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry credentials; the secret never shows.
        f.debug_struct("WebhookSettings").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &crate::db::redact(&self.database_url))
            .field("bind_addr", &self.bind_addr)
            .field("jwt_private_key_path", &self.jwt_private_key_path)
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field("mfa_issuer", &self.mfa_issuer)
            .finish_non_exhaustive()
    }
}

/// Where the development key lives when `JWT_PRIVATE_KEY_PATH` is unset.
pub const DEV_KEY_PATH: &str = ".tessera/dev-private.pem";

/// The default database when `DATABASE_URL` is unset.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@localhost:5432/tessera";

impl Settings {
    /// Reads `.env` (the real environment wins), then every variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing .env is normal; a malformed one is not silently ignored.
        if let Err(err) = dotenvy::dotenv() {
            if !err.not_found() {
                return Err(ConfigError {
                    var: ".env",
                    reason: format!("cannot be read: {err}"),
                });
            }
        }
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds settings from any variable source; tests use this directly.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let webauthn_rp_id = rp_id(&var, "WEBAUTHN_RP_ID")?;
        let webauthn_origins = webauthn_origins(&var, "WEBAUTHN_ORIGINS", &webauthn_rp_id)?;
        Ok(Self {
            database_url: var("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()),
            db_pool_size: ranged(&var, "DB_POOL_SIZE", 10, 1, 1000)?,
            db_timeout: Duration::from_secs(ranged(&var, "DB_TIMEOUT_SECONDS", 3, 1, 60)?),
            bind_addr: parsed(&var, "BIND_ADDR", "127.0.0.1:8080")?,
            jwt_private_key_path: var("JWT_PRIVATE_KEY_PATH").map(PathBuf::from),
            jwt_previous_public_key_paths: list(&var, "JWT_PREVIOUS_PUBLIC_KEY_PATHS")
                .into_iter()
                .map(PathBuf::from)
                .collect(),
            jwt_issuer: var("JWT_ISSUER").unwrap_or_else(|| "tessera".to_owned()),
            jwt_audience: var("JWT_AUDIENCE").unwrap_or_else(|| "tessera-api".to_owned()),
            access_token_ttl_seconds: ranged(&var, "ACCESS_TOKEN_TTL_SECONDS", 900, 1, 86_400)?,
            refresh_token_ttl_seconds: ranged(
                &var,
                "REFRESH_TOKEN_TTL_SECONDS",
                2_592_000,
                60,
                31_536_000,
            )?,
            refresh_reuse_grace_seconds: ranged(&var, "REFRESH_REUSE_GRACE_SECONDS", 10, 0, 300)?,
            jwt_leeway_seconds: ranged(&var, "JWT_LEEWAY_SECONDS", 30, 0, 300)?,
            bcrypt_cost: ranged(&var, "BCRYPT_COST", 12, 4, 31)?,
            token_cache_capacity: ranged(&var, "TOKEN_CACHE_CAPACITY", 100_000, 0, 10_000_000)?,
            auth_rate_limit_per_minute: ranged(
                &var,
                "AUTH_RATE_LIMIT_PER_MINUTE",
                60,
                0,
                1_000_000,
            )?,
            login_failures_before_delay: ranged(&var, "LOGIN_FAILURES_BEFORE_DELAY", 5, 1, 100)?,
            trust_forwarded_for: boolean(&var, "TRUST_FORWARDED_FOR", false)?,
            cors_allowed_origins: origins(&var, "CORS_ALLOWED_ORIGINS")?,
            rust_log: log_filter(&var, "RUST_LOG")?,
            smtp_url: optional(&var, "SMTP_URL", SmtpEndpoint::parse)?,
            mail_from: optional(&var, "MAIL_FROM", mail::parse_from)?
                .map_or_else(|| mail::parse_from(mail::DEFAULT_FROM), Ok)
                .map_err(|reason| ConfigError {
                    var: "MAIL_FROM",
                    reason,
                })?,
            password_reset_url: optional(&var, "PASSWORD_RESET_URL", mail::parse_reset_url)?,
            webhook: webhook(&var)?,
            event_retention_days: ranged(&var, "EVENT_RETENTION_DAYS", 90, 1, 36_500)?,
            webauthn_rp_id,
            webauthn_origins,
            mfa_issuer: mfa_issuer(&var, "MFA_ISSUER")?,
            mfa_encryption_key: key_32(&var, "MFA_ENCRYPTION_KEY")?,
        })
    }
}

/// Parses a variable with `FromStr`, falling back to `default` when unset.
fn parsed<T: FromStr>(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: &str,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    let raw = var(name).unwrap_or_else(|| default.to_owned());
    raw.trim().parse().map_err(|err| ConfigError {
        var: name,
        reason: format!("cannot parse {raw:?}: {err}"),
    })
}

/// Parses an integer variable and checks it lies in `min..=max`.
fn ranged<T>(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
    min: T,
    max: T,
) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + std::fmt::Display + Copy,
    T::Err: std::fmt::Display,
{
    let value = match var(name) {
        None => default,
        Some(raw) => raw.trim().parse().map_err(|err| ConfigError {
            var: name,
            reason: format!("cannot parse {raw:?} as a number: {err}"),
        })?,
    };
    if value < min || value > max {
        return Err(ConfigError {
            var: name,
            reason: format!("{value} is out of range {min}..={max}"),
        });
    }
    Ok(value)
}

/// Parses `true/false/1/0/yes/no`.
fn boolean(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(raw) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(ConfigError {
                var: name,
                reason: format!("{raw:?} is not a boolean (use true or false)"),
            }),
        },
    }
}

/// Parses a list of browser origins (`scheme://host[:port]`, no path).
fn origins(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Vec<String>, ConfigError> {
    let items = list(var, name);
    for origin in &items {
        let valid = url::Url::parse(origin).is_ok_and(|url| {
            matches!(url.scheme(), "http" | "https")
                && url.host_str().is_some()
                && url.path() == "/"
                && url.query().is_none()
                && !origin.ends_with('/')
        });
        if !valid {
            return Err(ConfigError {
                var: name,
                reason: format!(
                    "{origin:?} is not an origin like https://app.example.com (no wildcard, no path)"
                ),
            });
        }
    }
    Ok(items)
}

/// Parses a WebAuthn relying-party id: a lower-case DNS name (no scheme,
/// port or path), as browsers and platform authenticators require.
fn rp_id(var: &impl Fn(&str) -> Option<String>, name: &'static str) -> Result<String, ConfigError> {
    let raw = var(name).unwrap_or_else(|| "localhost".to_owned());
    let id = raw.trim().to_ascii_lowercase();
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let is_ip = id.parse::<std::net::IpAddr>().is_ok();
    if id.len() > 253 || is_ip || !id.split('.').all(label_ok) {
        return Err(ConfigError {
            var: name,
            reason: format!(
                "{raw:?} is not a domain name like example.com (no scheme, port or path)"
            ),
        });
    }
    Ok(id)
}

/// Parses the WebAuthn origins: `https://host[:port]`, `http://localhost[:port]`
/// (development) or `android:apk-key-hash:<base64url SHA-256>` (an Android
/// app). Web origins must lie within the RP id, and at least one must be a
/// web origin (webauthn-rs anchors its configuration on one).
fn webauthn_origins(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    rp_id: &str,
) -> Result<Vec<url::Url>, ConfigError> {
    let mut items = list(var, name);
    if items.is_empty() {
        items.push("http://localhost:8080".to_owned());
    }
    let bad = |origin: &str, why: &str| ConfigError {
        var: name,
        reason: format!("{origin:?} {why}"),
    };
    let mut origins = Vec::with_capacity(items.len());
    for origin in &items {
        if let Some(hash) = origin.strip_prefix("android:apk-key-hash:") {
            use base64::Engine as _;
            let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(hash);
            if !decoded.is_ok_and(|bytes| bytes.len() == 32) {
                return Err(bad(
                    origin,
                    "is not android:apk-key-hash: followed by the base64url (unpadded) SHA-256 of the signing certificate",
                ));
            }
        } else {
            let url = url::Url::parse(origin).map_err(|_| {
                bad(origin, "is not an origin like https://example.com, http://localhost:8080 or android:apk-key-hash:…")
            })?;
            let host = url.host_str().unwrap_or_default();
            let shape_ok = url.path() == "/"
                && url.query().is_none()
                && url.fragment().is_none()
                && url.username().is_empty()
                && url.password().is_none()
                && !origin.ends_with('/');
            let scheme_ok = match url.scheme() {
                "https" => true,
                "http" => host == "localhost",
                _ => false,
            };
            if !shape_ok || !scheme_ok {
                return Err(bad(
                    origin,
                    "is not an origin like https://example.com or http://localhost:8080 (https, or http only on localhost; no path)",
                ));
            }
            if host != rp_id && !host.ends_with(&format!(".{rp_id}")) {
                return Err(bad(
                    origin,
                    &format!("is not within WEBAUTHN_RP_ID {rp_id:?} (its host must be that domain or a subdomain)"),
                ));
            }
        }
        let parsed = url::Url::parse(origin).map_err(|_| bad(origin, "is not a URL"))?;
        origins.push(parsed);
    }
    if !origins
        .iter()
        .any(|o| o.scheme() == "https" || o.scheme() == "http")
    {
        return Err(ConfigError {
            var: name,
            reason: "needs at least one https:// (or http://localhost) origin besides app origins"
                .into(),
        });
    }
    Ok(origins)
}

/// Checks an env_logger filter (`info`, `tessera=debug,actix_web=warn`,
/// optionally `/regex`), which env_logger itself would only warn about.
fn log_filter(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<String, ConfigError> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let raw = var(name).unwrap_or_else(|| "info".to_owned());
    let directives = raw.split_once('/').map_or(raw.as_str(), |(spec, _)| spec);
    for directive in directives
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        let valid = match directive.split_once('=') {
            None => true,
            Some((target, level)) => {
                !target.trim().is_empty()
                    && LEVELS.contains(&level.trim().to_ascii_lowercase().as_str())
            }
        };
        if !valid {
            return Err(ConfigError {
                var: name,
                reason: format!(
                    "{directive:?} is not a log directive (use e.g. info or tessera=debug)"
                ),
            });
        }
    }
    Ok(raw)
}

/// Parses an optional variable with `parse`; unset is `None`.
fn optional<T>(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, ConfigError> {
    var(name)
        .map(|raw| parse(&raw).map_err(|reason| ConfigError { var: name, reason }))
        .transpose()
}

/// Reads `WEBHOOK_URL` and `WEBHOOK_SECRET`: a URL needs a secret,
/// `whsec_` followed by 24 to 64 bytes in standard base64 (the Standard
/// Webhooks format).
fn webhook(var: &impl Fn(&str) -> Option<String>) -> Result<Option<WebhookSettings>, ConfigError> {
    use base64::Engine;
    let secret = match var("WEBHOOK_SECRET") {
        None => None,
        Some(raw) => {
            let invalid = || ConfigError {
                var: "WEBHOOK_SECRET",
                reason: "must be whsec_ followed by 24 to 64 bytes in base64".into(),
            };
            let encoded = raw.trim().strip_prefix("whsec_").ok_or_else(invalid)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| invalid())?;
            if !(24..=64).contains(&bytes.len()) {
                return Err(invalid());
            }
            Some(bytes)
        }
    };
    let Some(raw) = var("WEBHOOK_URL") else {
        return Ok(None);
    };
    let url = url::Url::parse(raw.trim())
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.host_str().is_some())
        .ok_or_else(|| ConfigError {
            var: "WEBHOOK_URL",
            reason: "is not an http:// or https:// URL".into(),
        })?;
    let secret = secret.ok_or_else(|| ConfigError {
        var: "WEBHOOK_SECRET",
        reason: "is required when WEBHOOK_URL is set (whsec_ followed by base64)".into(),
    })?;
    Ok(Some(WebhookSettings { url, secret }))
}

/// The TOTP issuer: 1–64 printable characters without `:`, which would
/// break the `issuer:username` label of the `otpauth://` URI.
fn mfa_issuer(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<String, ConfigError> {
    let raw = var(name).unwrap_or_else(|| "tessera".to_owned());
    let issuer = raw.trim();
    if issuer.chars().count() > 64 || issuer.contains(':') || issuer.chars().any(char::is_control) {
        return Err(ConfigError {
            var: name,
            reason: format!("{issuer:?} must be 1-64 printable characters without ':'"),
        });
    }
    Ok(issuer.to_owned())
}

/// A 32-byte key given as standard base64 (padding optional); unset is `None`.
/// The error never echoes the value: it is a secret.
fn key_32(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Option<[u8; 32]>, ConfigError> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    use base64::Engine;
    let Some(raw) = var(name) else {
        return Ok(None);
    };
    let raw = raw.trim();
    let decoded = STANDARD
        .decode(raw)
        .or_else(|_| STANDARD_NO_PAD.decode(raw))
        .map_err(|_| ConfigError {
            var: name,
            reason: "is not base64 (make one with: openssl rand -base64 32)".into(),
        })?;
    let key: [u8; 32] = decoded.as_slice().try_into().map_err(|_| ConfigError {
        var: name,
        reason: format!(
            "must decode to exactly 32 bytes, not {} (make one with: openssl rand -base64 32)",
            decoded.len()
        ),
    })?;
    Ok(Some(key))
}

/// Splits a comma-separated variable, dropping empty items.
fn list(var: &impl Fn(&str) -> Option<String>, name: &str) -> Vec<String> {
    var(name)
        .map(|raw| {
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_match_the_spec() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(s.db_pool_size, 10);
        assert_eq!(s.db_timeout, Duration::from_secs(3));
        assert_eq!(s.bind_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(s.access_token_ttl_seconds, 900);
        assert_eq!(s.refresh_token_ttl_seconds, 2_592_000);
        assert_eq!(s.refresh_reuse_grace_seconds, 10);
        assert_eq!(s.jwt_leeway_seconds, 30);
        assert_eq!(s.bcrypt_cost, 12);
        assert_eq!(s.token_cache_capacity, 100_000);
        assert_eq!(s.auth_rate_limit_per_minute, 60);
        assert_eq!(s.login_failures_before_delay, 5);
        assert!(!s.trust_forwarded_for);
        assert!(s.cors_allowed_origins.is_empty());
        assert!(s.jwt_private_key_path.is_none());
        assert_eq!(s.mfa_issuer, "tessera");
        assert!(s.mfa_encryption_key.is_none());
        assert!(s.smtp_url.is_none());
        assert_eq!(s.mail_from.to_string(), "tessera <no-reply@localhost>");
        assert!(s.password_reset_url.is_none());
        assert!(s.webhook.is_none());
        assert_eq!(s.event_retention_days, 90);
    }

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn a_webhook_url_without_a_secret_names_webhook_secret() {
        let err = settings(&[("WEBHOOK_URL", "https://hooks.example/tessera")]).unwrap_err();
        assert_eq!(err.var, "WEBHOOK_SECRET");
        assert!(!err.to_string().contains('\n'));
    }

    #[test]
    fn webhook_settings_are_validated() {
        let s = settings(&[
            ("WEBHOOK_URL", "https://hooks.example/tessera"),
            ("WEBHOOK_SECRET", SECRET),
        ])
        .unwrap();
        let webhook = s.webhook.unwrap();
        assert_eq!(webhook.url.as_str(), "https://hooks.example/tessera");
        assert_eq!(webhook.secret.len(), 24);
        for (var, url, secret) in [
            ("WEBHOOK_URL", "ftp://x.example", SECRET),
            ("WEBHOOK_URL", "not a url", SECRET),
            (
                "WEBHOOK_SECRET",
                "https://x.example",
                "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            ),
            ("WEBHOOK_SECRET", "https://x.example", "whsec_!!!"),
            ("WEBHOOK_SECRET", "https://x.example", "whsec_c2hvcnQ="),
        ] {
            let err = settings(&[("WEBHOOK_URL", url), ("WEBHOOK_SECRET", secret)]).unwrap_err();
            assert_eq!(err.var, var, "{url} {secret}");
        }
        assert_eq!(
            settings(&[("EVENT_RETENTION_DAYS", "0")]).unwrap_err().var,
            "EVENT_RETENTION_DAYS"
        );
    }

    #[test]
    fn the_mfa_key_is_32_bytes_of_base64_and_never_echoed() {
        let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let s = settings(&[("MFA_ENCRYPTION_KEY", key)]).unwrap();
        let expected: Vec<u8> = (0u8..32).collect();
        assert_eq!(s.mfa_encryption_key.unwrap().to_vec(), expected);
        for bad in [
            "c2hvcnQ=",
            "not base64 at all!",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gIQ==",
        ] {
            let err = settings(&[("MFA_ENCRYPTION_KEY", bad)]).unwrap_err();
            assert_eq!(err.var, "MFA_ENCRYPTION_KEY");
            assert!(!err.to_string().contains(bad), "{err}");
        }
        assert!(!format!("{s:?}").contains("mfa_encryption_key"));
    }

    #[test]
    fn out_of_range_values_name_the_variable() {
        for (var, value) in [
            ("BCRYPT_COST", "3"),
            ("BCRYPT_COST", "32"),
            ("DB_TIMEOUT_SECONDS", "0"),
            ("DB_TIMEOUT_SECONDS", "61"),
            ("REFRESH_REUSE_GRACE_SECONDS", "301"),
            ("TOKEN_CACHE_CAPACITY", "10000001"),
            ("LOGIN_FAILURES_BEFORE_DELAY", "0"),
            ("LOGIN_FAILURES_BEFORE_DELAY", "101"),
            ("DB_POOL_SIZE", "abc"),
            ("BIND_ADDR", "nowhere"),
            ("TRUST_FORWARDED_FOR", "maybe"),
            ("CORS_ALLOWED_ORIGINS", "*"),
            ("RUST_LOG", "garbage=====!!"),
            ("RUST_LOG", "tessera=loud"),
            ("CORS_ALLOWED_ORIGINS", "https://a.example/path"),
            ("WEBAUTHN_RP_ID", "https://example.com"),
            ("WEBAUTHN_RP_ID", "example.com:443"),
            ("WEBAUTHN_RP_ID", "127.0.0.1"),
            ("WEBAUTHN_ORIGINS", "http://example.com"),
            ("WEBAUTHN_ORIGINS", "https://other.example"),
            ("WEBAUTHN_ORIGINS", "http://localhost:8080/path"),
            ("WEBAUTHN_ORIGINS", "android:apk-key-hash:not-a-hash"),
            ("WEBAUTHN_ORIGINS", "ftp://localhost"),
            ("MFA_ISSUER", "Acme:Corp"),
            ("MFA_ISSUER", &"x".repeat(65)),
            ("SMTP_URL", "http://mail.example.com"),
            ("SMTP_URL", "smtp://"),
            ("MAIL_FROM", "nobody"),
            ("PASSWORD_RESET_URL", "not a url"),
            ("PASSWORD_RESET_URL", "ftp://files.example.com/reset"),
        ] {
            let err = settings(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, var);
            assert!(err.to_string().starts_with(var));
        }
    }

    #[test]
    fn webauthn_defaults_and_app_origins() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.webauthn_rp_id, "localhost");
        assert_eq!(s.webauthn_origins[0].as_str(), "http://localhost:8080/");
        let hash = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
        let s = settings(&[
            ("WEBAUTHN_RP_ID", "Example.com"),
            (
                "WEBAUTHN_ORIGINS",
                &format!("https://example.com, https://login.example.com:8443, android:apk-key-hash:{hash}"),
            ),
        ])
        .unwrap();
        assert_eq!(s.webauthn_rp_id, "example.com");
        assert_eq!(s.webauthn_origins.len(), 3);
        let only_app = settings(&[
            ("WEBAUTHN_RP_ID", "example.com"),
            ("WEBAUTHN_ORIGINS", &format!("android:apk-key-hash:{hash}")),
        ]);
        assert_eq!(only_app.unwrap_err().var, "WEBAUTHN_ORIGINS");
    }

    #[test]
    fn usual_log_filters_are_accepted() {
        for filter in [
            "info",
            "tessera=debug,actix_web=warn",
            "warn,tessera::access=off",
            "debug/foo",
        ] {
            assert_eq!(settings(&[("RUST_LOG", filter)]).unwrap().rust_log, filter);
        }
    }

    #[test]
    fn lists_are_split_on_commas() {
        let s = settings(&[(
            "CORS_ALLOWED_ORIGINS",
            "https://a.example, https://b.example,",
        )])
        .unwrap();
        assert_eq!(
            s.cors_allowed_origins,
            ["https://a.example", "https://b.example"]
        );
    }
}
