//! Security events: `record` is called INSIDE the transaction of the change
//! it describes, so the change and its event commit together or not at all
//! (a failed login, which changes nothing else, records in its own short
//! transaction). Nothing recorded here may carry a password, code, token or
//! secret: `detail` holds only non-secret facts such as a role name.
//!
//! On an instance with `WEBHOOK_URL`, every pooled connection carries the
//! session setting [`crate::db::WEBHOOKS_SETTING`], and `record` then also
//! queues the event's webhook in the outbox, in the same transaction; the
//! callers of `record` do not need to know (README "Events and webhooks").

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::blocking::run_db;
use crate::db::events::{self as db_events, EventFilter, EventRow};
use crate::db::schema::auth_events;
use crate::error::AppResult;
use crate::jobs::webhook;
use crate::services::sessions::ClientInfo;
use crate::state::AppState;

/// Every kind of security event, with its stored name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// A sign-in that started a session.
    LoginSucceeded,
    /// A wrong username, password or second step at sign-in.
    LoginFailed,
    /// A password login refused by the per-username throttle.
    LoginThrottled,
    /// A wrong one-time code.
    MfaFailed,
    /// A spent refresh token presented again: its session was revoked.
    RefreshReuseDetected,
    /// A session was revoked (logout, revoke one or all).
    SessionRevoked,
    /// The password was changed by its owner.
    PasswordChanged,
    /// A reset mail was asked for.
    PasswordResetRequested,
    /// The password was reset with a mailed token.
    PasswordReset,
    /// An email address was verified.
    EmailVerified,
    /// TOTP was enabled.
    MfaEnabled,
    /// TOTP was disabled.
    MfaDisabled,
    /// A new set of recovery codes replaced the old one.
    RecoveryCodesRegenerated,
    /// A passkey was registered.
    PasskeyAdded,
    /// A passkey was deleted.
    PasskeyRemoved,
    /// The account was deleted.
    AccountDeleted,
    /// A role was granted.
    RoleGranted,
    /// A role was revoked.
    RoleRevoked,
}

impl EventType {
    /// Every type, in the documented order.
    pub const ALL: [EventType; 18] = [
        Self::LoginSucceeded,
        Self::LoginFailed,
        Self::LoginThrottled,
        Self::MfaFailed,
        Self::RefreshReuseDetected,
        Self::SessionRevoked,
        Self::PasswordChanged,
        Self::PasswordResetRequested,
        Self::PasswordReset,
        Self::EmailVerified,
        Self::MfaEnabled,
        Self::MfaDisabled,
        Self::RecoveryCodesRegenerated,
        Self::PasskeyAdded,
        Self::PasskeyRemoved,
        Self::AccountDeleted,
        Self::RoleGranted,
        Self::RoleRevoked,
    ];

    /// The name stored in `auth_events.type` and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginSucceeded => "login_succeeded",
            Self::LoginFailed => "login_failed",
            Self::LoginThrottled => "login_throttled",
            Self::MfaFailed => "mfa_failed",
            Self::RefreshReuseDetected => "refresh_reuse_detected",
            Self::SessionRevoked => "session_revoked",
            Self::PasswordChanged => "password_changed",
            Self::PasswordResetRequested => "password_reset_requested",
            Self::PasswordReset => "password_reset",
            Self::EmailVerified => "email_verified",
            Self::MfaEnabled => "mfa_enabled",
            Self::MfaDisabled => "mfa_disabled",
            Self::RecoveryCodesRegenerated => "recovery_codes_regenerated",
            Self::PasskeyAdded => "passkey_added",
            Self::PasskeyRemoved => "passkey_removed",
            Self::AccountDeleted => "account_deleted",
            Self::RoleGranted => "role_granted",
            Self::RoleRevoked => "role_revoked",
        }
    }

    /// The type with this stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// One event to record.
#[derive(Debug, Clone)]
pub struct Event {
    /// What happened.
    pub kind: EventType,
    /// Whose account (none for a failed login under an unknown name).
    pub user_id: Option<Uuid>,
    /// The session concerned, if any.
    pub session_id: Option<Uuid>,
    /// Where the request came from (none for the CLI).
    pub client: ClientInfo,
    /// Non-secret facts (e.g. `{"role": "admin"}`).
    pub detail: serde_json::Value,
}

impl Event {
    /// An event of `kind` for `user_id`, with no session, client or detail.
    pub fn new(kind: EventType, user_id: Option<Uuid>) -> Self {
        Self {
            kind,
            user_id,
            session_id: None,
            client: ClientInfo::default(),
            detail: serde_json::Value::Object(serde_json::Map::new()),
        }
    }

    /// The same event, about `session_id`.
    pub fn session(mut self, session_id: Uuid) -> Self {
        self.session_id = Some(session_id);
        self
    }

    /// The same event, from `client`.
    pub fn from_client(mut self, client: &ClientInfo) -> Self {
        self.client = client.clone();
        self
    }

    /// The same event, with `detail`.
    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

/// Writes an event; call it inside the transaction of the change. Returns
/// the new event's id. When the connection has webhooks enabled, queues
/// the event's webhook too.
pub fn record(conn: &mut PgConnection, event: &Event) -> QueryResult<Uuid> {
    let id = Uuid::now_v7();
    let created_at = Utc::now();
    diesel::insert_into(auth_events::table)
        .values((
            auth_events::id.eq(id),
            auth_events::kind.eq(event.kind.as_str()),
            auth_events::user_id.eq(event.user_id),
            auth_events::session_id.eq(event.session_id),
            auth_events::ip.eq(event.client.ip.as_deref()),
            auth_events::user_agent.eq(event.client.user_agent.as_deref()),
            auth_events::created_at.eq(created_at),
            auth_events::detail.eq(&event.detail),
        ))
        .execute(conn)?;
    queue_webhook(conn, id, created_at, event)?;
    Ok(id)
}

/// The webhook body of an event: `{"type", "timestamp", "data"}`.
pub fn webhook_body(id: Uuid, created_at: DateTime<Utc>, event: &Event) -> serde_json::Value {
    serde_json::json!({
        "type": event.kind.as_str(),
        "timestamp": created_at,
        "data": {
            "event_id": id,
            "user_id": event.user_id,
            "session_id": event.session_id,
            "ip": event.client.ip,
            "user_agent": event.client.user_agent,
            "detail": event.detail,
        },
    })
}

/// Queues the event's webhook when this connection has webhooks enabled
/// (one statement that inserts nothing otherwise).
fn queue_webhook(
    conn: &mut PgConnection,
    id: Uuid,
    created_at: DateTime<Utc>,
    event: &Event,
) -> QueryResult<()> {
    use diesel::sql_types::{Jsonb, Nullable, Text, Uuid as SqlUuid};
    diesel::sql_query(format!(
        "INSERT INTO outbox (kind, user_id, payload) SELECT $1, $2, $3 \
         WHERE current_setting('{}', true) = 'on'",
        crate::db::WEBHOOKS_SETTING
    ))
    .bind::<Text, _>(webhook::KIND)
    .bind::<Nullable<SqlUuid>, _>(event.user_id)
    .bind::<Jsonb, _>(webhook_body(id, created_at, event))
    .execute(conn)?;
    Ok(())
}

/// One page of events matching `filter`, newest first, before the cursor
/// (the two listings).
pub async fn page(
    state: &AppState,
    filter: EventFilter,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> AppResult<Vec<EventRow>> {
    run_db(&state.pool, move |conn| {
        db_events::page(conn, &filter, before, limit)
    })
    .await
}

/// Deletes events older than `EVENT_RETENTION_DAYS`, and outbox rows given
/// up on that long ago; returns how many events went.
pub async fn prune(state: &AppState) -> AppResult<usize> {
    let before =
        Utc::now() - chrono::Duration::days(i64::from(state.settings.event_retention_days));
    run_db(&state.pool, move |conn| {
        crate::db::outbox::prune_failed(conn, before)?;
        db_events::prune(conn, before)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_through_its_name() {
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventType::parse("nope"), None);
    }
}
