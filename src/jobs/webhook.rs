//! The webhook sender: POSTs each security event queued in the outbox to
//! `WEBHOOK_URL`, signed per the Standard Webhooks spec (README "Events and
//! webhooks" shows how a receiver verifies it).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::WebhookSettings;
use crate::jobs::outbox::{Deliver, DeliveryError, DeliveryFuture, OutboxRow, ATTEMPT_TIMEOUT};

/// The `outbox.kind` of webhook messages.
pub const KIND: &str = "webhook";

/// Delivers `webhook` outbox rows: the row's payload is the JSON body
/// (`{"type", "timestamp", "data"}`), sent as is.
pub struct WebhookSender {
    client: reqwest::Client,
    url: url::Url,
    secret: Vec<u8>,
}

impl WebhookSender {
    /// A sender with its own HTTP client: no redirects (a 3xx counts as a
    /// failure, as the Standard Webhooks spec asks), no proxy from the
    /// environment, [`ATTEMPT_TIMEOUT`] per request.
    pub fn new(settings: &WebhookSettings) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(ATTEMPT_TIMEOUT)
            .user_agent(concat!("tessera-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| format!("cannot build the HTTP client: {err}"))?;
        Ok(Self {
            client,
            url: settings.url.clone(),
            secret: settings.secret.clone(),
        })
    }

    async fn post(&self, message: &OutboxRow) -> Result<(), DeliveryError> {
        // The event id, stable across retries: receivers deduplicate on it.
        let id = message.payload["data"]["event_id"]
            .as_str()
            .map_or_else(|| format!("outbox_{}", message.id), str::to_owned);
        let body = serde_json::to_string(&message.payload)
            .map_err(|err| DeliveryError::permanent(format!("unserialisable payload: {err}")))?;
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let signature = sign(&self.secret, &id, &timestamp, &body);
        let response = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", &timestamp)
            .header("webhook-signature", format!("v1,{signature}"))
            .body(body)
            .send()
            .await
            // Without the URL: it may carry credentials.
            .map_err(|err| DeliveryError::transient(err.without_url().to_string()))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(DeliveryError::transient(format!(
                "the receiver answered {status}"
            )))
        }
    }
}

impl Deliver for WebhookSender {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn deliver<'a>(&'a self, message: &'a OutboxRow) -> DeliveryFuture<'a> {
        Box::pin(self.post(message))
    }
}

/// The Standard Webhooks signature: base64 of HMAC-SHA256 over
/// `"{id}.{timestamp}.{body}"`, keyed with the decoded secret.
pub fn sign(secret: &[u8], id: &str, timestamp: &str, body: &str) -> String {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_standard_webhooks_example() {
        // The example from the Standard Webhooks specification.
        let secret = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = sign(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
