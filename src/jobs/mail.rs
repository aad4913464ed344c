//! Mail: what tessera writes (verification and reset mails, plain text with
//! an HTML alternative, never a password) and how it leaves (lettre's
//! pooled async SMTP transport, or the log when `SMTP_URL` is unset). Mails
//! are queued in the outbox by the change that causes them and sent by its
//! worker (README "Email").

use std::str::FromStr;
use std::time::Duration;

use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use crate::jobs::outbox::{Deliver, DeliveryError, DeliveryFuture, OutboxRow};

/// The outbox kind of a mail row.
pub const KIND: &str = "mail";

/// Longest wait for one SMTP command (connect, greeting, each reply); the
/// outbox worker bounds a whole attempt by its `ATTEMPT_TIMEOUT`.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// Default `MAIL_FROM`.
pub const DEFAULT_FROM: &str = "tessera <no-reply@localhost>";

/// How a mail server is reached, parsed from `SMTP_URL`. `Debug` hides the
/// password.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpEndpoint {
    /// How the connection is secured.
    pub security: SmtpSecurity,
    /// Server host name or IP.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// User name and password for SMTP AUTH, when the URL has them.
    pub credentials: Option<(String, String)>,
}

/// The three ways of `SMTP_URL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtp://`: plain connection upgraded with STARTTLS when the server
    /// offers it (default port 587).
    StartTlsWhenOffered,
    /// `smtps://`: TLS from the first byte (default port 465).
    Tls,
    /// `smtp+plain://`: never TLS, for a local relay (default port 25).
    Plain,
}

impl std::fmt::Debug for SmtpEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpEndpoint")
            .field("security", &self.security)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .finish_non_exhaustive()
    }
}

impl SmtpEndpoint {
    /// Parses `smtp://[user:pass@]host[:port]`, `smtps://…` or
    /// `smtp+plain://…`; the reason never repeats a password.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = url::Url::parse(raw.trim())
            .map_err(|err| format!("not a URL ({err}); use smtp://host:port, smtps://user:pass@host or smtp+plain://host:port"))?;
        let (security, default_port) = match url.scheme() {
            "smtp" => (SmtpSecurity::StartTlsWhenOffered, 587),
            "smtps" => (SmtpSecurity::Tls, 465),
            "smtp+plain" => (SmtpSecurity::Plain, 25),
            other => return Err(format!("scheme {other:?} is not smtp, smtps or smtp+plain")),
        };
        let host = url
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or("names no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if !matches!(url.path(), "" | "/") || url.query().is_some() {
            return Err("must not have a path or query".into());
        }
        let decode = |part: &str| {
            percent_decode(part).ok_or_else(|| "user or password is not valid UTF-8".to_owned())
        };
        let credentials = if url.username().is_empty() {
            None
        } else {
            Some((
                decode(url.username())?,
                decode(url.password().unwrap_or_default())?,
            ))
        };
        Ok(Self {
            security,
            host,
            port: url.port().unwrap_or(default_port),
            credentials,
        })
    }
}

/// Decodes `%xx` escapes of a URL's user or password.
fn percent_decode(part: &str) -> Option<String> {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Parses `MAIL_FROM` (`Name <address>` or a bare address).
pub fn parse_from(raw: &str) -> Result<Mailbox, String> {
    Mailbox::from_str(raw.trim()).map_err(|err| {
        format!("{raw:?} is not a mailbox like `tessera <no-reply@example.com>`: {err}")
    })
}

/// Parses `PASSWORD_RESET_URL`: an absolute http(s) URL.
pub fn parse_reset_url(raw: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(raw.trim()).map_err(|err| format!("not a URL: {err}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{raw:?} is not an http(s) URL with a host"));
    }
    Ok(url)
}

/// A rendered mail, as the outbox keeps it until it is sent.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Mail {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML alternative.
    pub html: String,
}

impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The bodies carry tokens.
        f.debug_struct("Mail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// What mails need from the configuration.
#[derive(Debug, Clone)]
pub struct MailContent {
    /// Where the reset link points; `None` mails the token alone.
    pub reset_url: Option<url::Url>,
}

impl MailContent {
    /// The mail that asks the owner of `to` to confirm it.
    pub fn verification(&self, to: &str, username: &str, token: &str) -> Mail {
        let subject = "Confirm your email address for tessera".to_owned();
        let text = format!(
            "Hello {username},\n\n\
             this address ({to}) was just added to your tessera account.\n\
             To confirm that it is yours, enter this code in the app within 24 hours:\n\n\
             {token}\n\n\
             If you did not add it, ignore this mail: nothing changes until the code is used.\n"
        );
        let html = format!(
            "<p>Hello {user},</p>\
             <p>this address ({to_html}) was just added to your tessera account. \
             To confirm that it is yours, enter this code in the app within 24 hours:</p>\
             <p style=\"font-family:monospace;font-size:1.2em\">{token}</p>\
             <p>If you did not add it, ignore this mail: nothing changes until the code is used.</p>",
            user = escape_html(username),
            to_html = escape_html(to),
            token = escape_html(token),
        );
        Mail {
            to: to.to_owned(),
            subject,
            text,
            html,
        }
    }

    /// The mail that lets the owner of `to` choose a new password.
    pub fn password_reset(&self, to: &str, username: &str, token: &str) -> Mail {
        let subject = "Reset your tessera password".to_owned();
        let intro = "someone (hopefully you) asked to reset the password of your tessera account.";
        let outro = "If you did not ask for this, ignore this mail: your password stays as it is.";
        let (text_action, html_action) = match &self.reset_url {
            Some(base) => {
                let mut link = base.clone();
                link.query_pairs_mut().append_pair("token", token);
                (
                    format!("To choose a new password, open this link within 30 minutes:\n\n{link}\n"),
                    format!(
                        "<p>To choose a new password, open this link within 30 minutes:</p>\
                         <p><a href=\"{href}\">Choose a new password</a></p>\
                         <p>or paste it into your browser: {href}</p>",
                        href = escape_html(link.as_str()),
                    ),
                )
            }
            None => (
                format!("To choose a new password, enter this reset code in the app within 30 minutes:\n\n{token}\n"),
                format!(
                    "<p>To choose a new password, enter this reset code in the app within 30 minutes:</p>\
                     <p style=\"font-family:monospace;font-size:1.2em\">{}</p>",
                    escape_html(token)
                ),
            ),
        };
        let text = format!("Hello {username},\n\n{intro}\n{text_action}\n{outro}\n");
        let html = format!(
            "<p>Hello {user},</p><p>{intro}</p>{html_action}<p>{outro}</p>",
            user = escape_html(username),
        );
        Mail {
            to: to.to_owned(),
            subject,
            text,
            html,
        }
    }
}

/// Escapes text for HTML element content and attribute values.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Why a mail was not sent this time (the worker retries). Never carries
/// the body.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The stored mail or the sender is unusable; retrying cannot help.
    #[error("mail cannot be built: {0}")]
    Invalid(String),
    /// The server refused, is down or did not answer.
    #[error("SMTP delivery failed: {0}")]
    Smtp(String),
}

/// Sends mails: through one pooled SMTP transport per instance, or, with
/// `SMTP_URL` unset, into the log (without the body, which carries tokens).
pub struct Mailer {
    from: Mailbox,
    endpoint: Option<SmtpEndpoint>,
    /// Built on first use, on the runtime of the worker that sends (lettre's
    /// pool starts a clean-up task when it is built).
    transport: OnceCell<AsyncSmtpTransport<Tokio1Executor>>,
}

impl Mailer {
    /// A mailer for `endpoint` (none: log only) sending as `from`.
    pub fn new(from: Mailbox, endpoint: Option<SmtpEndpoint>) -> Self {
        Self {
            from,
            endpoint,
            transport: OnceCell::new(),
        }
    }

    /// Whether mails actually leave (false: they are only logged).
    pub fn sends(&self) -> bool {
        self.endpoint.is_some()
    }

    /// Sends one mail; with no SMTP server configured, logs that it would
    /// have been sent and succeeds.
    pub async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let Some(endpoint) = &self.endpoint else {
            log::info!(
                "mail to {} ({:?}) logged, not sent: SMTP_URL is unset",
                mail.to,
                mail.subject
            );
            return Ok(());
        };
        let message = self.message(mail)?;
        let transport = self
            .transport
            .get_or_try_init(|| async { build_transport(endpoint) })
            .await?;
        transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|err| MailError::Smtp(describe(&err)))
    }

    fn message(&self, mail: &Mail) -> Result<Message, MailError> {
        let to = Mailbox::from_str(&mail.to)
            .map_err(|err| MailError::Invalid(format!("recipient: {err}")))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(mail.text.clone()),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(mail.html.clone()),
                    ),
            )
            .map_err(|err| MailError::Invalid(err.to_string()))
    }
}

/// The outbox sender of kind [`KIND`]: a row's payload is a [`Mail`].
pub struct MailSender {
    mailer: Mailer,
}

impl MailSender {
    /// The sender for these settings (`SMTP_URL` unset: mails are logged).
    pub fn new(settings: &crate::config::Settings) -> Self {
        Self {
            mailer: Mailer::new(settings.mail_from.clone(), settings.smtp_url.clone()),
        }
    }

    async fn deliver_row(&self, row: &OutboxRow) -> Result<(), DeliveryError> {
        let mail: Mail = serde_json::from_value(row.payload.clone())
            .map_err(|err| DeliveryError::permanent(format!("not a mail: {err}")))?;
        match self.mailer.send(&mail).await {
            Ok(()) => {
                if self.mailer.sends() {
                    log::info!("mail {} ({:?}) sent to {}", row.id, mail.subject, mail.to);
                }
                Ok(())
            }
            Err(err @ MailError::Invalid(_)) => Err(DeliveryError::permanent(err.to_string())),
            Err(err @ MailError::Smtp(_)) => Err(DeliveryError::transient(err.to_string())),
        }
    }
}

impl Deliver for MailSender {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn deliver<'a>(&'a self, message: &'a OutboxRow) -> DeliveryFuture<'a> {
        Box::pin(self.deliver_row(message))
    }
}

impl Drop for Mailer {
    fn drop(&mut self) {
        // lettre's pool spawns its shutdown on drop, which panics outside a
        // tokio runtime (a runtime being torn down with the worker still
        // holding the mailer); the process or runtime is ending anyway.
        if tokio::runtime::Handle::try_current().is_err() {
            if let Some(transport) = self.transport.take() {
                std::mem::forget(transport);
            }
        }
    }
}

/// lettre's error in one line; its SMTP replies name no body content.
fn describe(err: &lettre::transport::smtp::Error) -> String {
    let text = err.to_string();
    text.lines().next().unwrap_or("unknown error").to_owned()
}

/// The pooled transport for an endpoint, with command timeouts.
fn build_transport(
    endpoint: &SmtpEndpoint,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    let tls = |host: &str| {
        TlsParameters::new(host.to_owned()).map_err(|err| MailError::Invalid(err.to_string()))
    };
    let security = match endpoint.security {
        SmtpSecurity::StartTlsWhenOffered => Tls::Opportunistic(tls(&endpoint.host)?),
        SmtpSecurity::Tls => Tls::Wrapper(tls(&endpoint.host)?),
        SmtpSecurity::Plain => Tls::None,
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&endpoint.host)
        .port(endpoint.port)
        .tls(security)
        .timeout(Some(COMMAND_TIMEOUT))
        .pool_config(
            PoolConfig::new()
                .max_size(4)
                .idle_timeout(Duration::from_secs(60)),
        );
    if let Some((user, password)) = &endpoint.credentials {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_smtp_url_forms_parse_with_their_default_ports() {
        let starttls = SmtpEndpoint::parse("smtp://mail.example.com").unwrap();
        assert_eq!(starttls.security, SmtpSecurity::StartTlsWhenOffered);
        assert_eq!(
            (starttls.host.as_str(), starttls.port),
            ("mail.example.com", 587)
        );
        assert_eq!(starttls.credentials, None);

        let tls = SmtpEndpoint::parse("smtps://me%40example.com:p%3Ass@mail.example.com").unwrap();
        assert_eq!(tls.security, SmtpSecurity::Tls);
        assert_eq!(tls.port, 465);
        assert_eq!(
            tls.credentials,
            Some(("me@example.com".to_owned(), "p:ss".to_owned()))
        );
        assert!(!format!("{tls:?}").contains("p:ss"));

        let plain = SmtpEndpoint::parse("smtp+plain://127.0.0.1:2525").unwrap();
        assert_eq!(plain.security, SmtpSecurity::Plain);
        assert_eq!((plain.host.as_str(), plain.port), ("127.0.0.1", 2525));
    }

    #[test]
    fn other_urls_are_refused_without_echoing_a_password() {
        for raw in [
            "http://mail.example.com",
            "mail.example.com:25",
            "smtp://",
            "smtp://host/path",
        ] {
            assert!(SmtpEndpoint::parse(raw).is_err(), "{raw}");
        }
        let err = SmtpEndpoint::parse("imap://u:hunter2@host").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn mail_from_and_reset_url_are_validated() {
        assert_eq!(
            parse_from(DEFAULT_FROM).unwrap().email.to_string(),
            "no-reply@localhost"
        );
        assert!(parse_from("not a mailbox").is_err());
        assert!(parse_reset_url("https://app.example.com/reset").is_ok());
        assert!(parse_reset_url("javascript:alert(1)").is_err());
        assert!(parse_reset_url("/reset").is_err());
    }

    #[test]
    fn a_reset_mail_links_the_token_and_never_contains_a_password() {
        let content = MailContent {
            reset_url: Some(parse_reset_url("https://app.example.com/reset?lang=en").unwrap()),
        };
        let mail = content.password_reset("alice@example.com", "alice", "TOKEN-abc_123");
        assert!(mail
            .text
            .contains("https://app.example.com/reset?lang=en&token=TOKEN-abc_123"));
        assert!(mail.html.contains("reset?lang=en&amp;token=TOKEN-abc_123"));
        assert_eq!(mail.subject, "Reset your tessera password");
        assert!(!mail.text.to_lowercase().contains("your password is"));

        let bare = MailContent { reset_url: None }.password_reset("a@b.example", "alice", "TKN");
        assert!(bare.text.contains("\n\nTKN\n"));
        assert!(!format!("{bare:?}").contains("TKN"));
    }

    #[test]
    fn html_is_escaped() {
        let mail = MailContent { reset_url: None }.verification("a&b@example.com", "alice", "T");
        assert!(mail.html.contains("a&amp;b@example.com"));
    }

    #[test]
    fn a_mail_builds_as_plain_text_with_an_html_alternative() {
        let mailer = Mailer::new(parse_from(DEFAULT_FROM).unwrap(), None);
        let mail = MailContent { reset_url: None }.verification("bob@example.com", "bob", "T0K");
        let formatted = String::from_utf8(mailer.message(&mail).unwrap().formatted()).unwrap();
        assert!(formatted.contains("multipart/alternative"), "{formatted}");
        assert!(formatted.contains("text/plain"));
        assert!(formatted.contains("text/html"));
        assert!(formatted.contains("From: tessera <no-reply@localhost>"));
        assert!(formatted.contains("Subject: Confirm your email address for tessera"));
    }
}
