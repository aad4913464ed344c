//! Sessions: starting one at login, rotating its refresh token (with the
//! grace retry and reuse detection), logging out, listing and revoking, and
//! signing the access tokens a grant carries. Each state change is one
//! function owning its transaction; the metrics it records live here too.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use uuid::Uuid;

use crate::auth::refresh_token::RefreshToken;
pub use crate::auth::tokens::SignInMethod;
use crate::auth::tokens::Subject;
use crate::blocking::run_db;
use crate::db::models::{NewRefreshToken, NewSession, RefreshTokenRow, Session, User};
use crate::db::{refresh_tokens, sessions};
use crate::error::{AppError, AppResult};
use crate::services::events::{self, Event, EventType};
use crate::state::AppState;

/// A signed access token and the refresh token that goes with it: what a
/// token response shows.
#[derive(Debug)]
pub struct IssuedTokens {
    /// The account.
    pub user_id: Uuid,
    /// RS256 access token.
    pub access_token: String,
    /// Access-token lifetime in seconds.
    pub expires_in: i64,
    /// The session's live refresh token.
    pub refresh_token: RefreshToken,
    /// Seconds until the session expires if not refreshed.
    pub refresh_expires_in: i64,
}

/// Starts a session (one per device) for an authenticated user and signs
/// its first access token. `method` is how the user signed in: it becomes
/// the session's `amr`, and now its `auth_time`, which every refresh keeps.
pub async fn start(
    state: &Arc<AppState>,
    user: User,
    client: ClientInfo,
    method: SignInMethod,
) -> AppResult<IssuedTokens> {
    let policy = state.session_policy();
    let grant = run_db(&state.pool, move |conn| {
        start_session(conn, user, &client, method, policy).map_err(|err| match err {
            // The account was deleted between the password check and here.
            DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
                AppError::InvalidCredentials
            }
            other => other.into(),
        })
    })
    .await?;
    issue(state, grant, true).await
}

/// Rotates a refresh token: a live one is spent for a new one; a just-spent
/// one within the grace window gets the same successor again; any other
/// spent one revokes its session (recording `refresh_reuse_detected` with
/// `client`). Everything else is `invalid_grant`.
pub async fn refresh(
    state: &Arc<AppState>,
    presented: RefreshToken,
    client: ClientInfo,
) -> AppResult<IssuedTokens> {
    let policy = state.session_policy();
    let outcome = run_db(&state.pool, move |conn| {
        rotate(conn, &presented, policy, &client)
    })
    .await?;
    match outcome {
        RefreshOutcome::Rotated(grant) => issue(state, grant, true).await,
        RefreshOutcome::GraceRetry(grant) => {
            state.metrics.record_refresh_reuse("grace");
            issue(state, grant, false).await
        }
        RefreshOutcome::ReuseDetected {
            session_id,
            user_id,
        } => {
            state.metrics.record_refresh_reuse("revoked");
            state.revoked_sessions.insert_all(&[session_id]);
            log::warn!(
                "refresh token reuse detected: revoked session {session_id} of user {user_id}"
            );
            Err(AppError::InvalidGrant)
        }
        RefreshOutcome::Invalid => {
            log::debug!("refresh refused: unknown, expired or revoked token");
            Err(AppError::InvalidGrant)
        }
    }
}

/// Revokes the session a refresh token belongs to, live or spent, and
/// records `session_revoked` (detail `{"reason": "logout"}`) when it was
/// not revoked yet; unknown tokens change nothing. Its access tokens are
/// refused from now on.
pub async fn logout(
    state: &AppState,
    presented: RefreshToken,
    client: ClientInfo,
) -> AppResult<()> {
    let revoked = run_db(&state.pool, move |conn| {
        conn.transaction(|conn| {
            let Some(session) = sessions::lock_by_token(conn, &presented.lookup_hash())? else {
                return Ok(Vec::new());
            };
            let revoked = sessions::revoke(conn, session.id, Utc::now())?;
            if !revoked.is_empty() {
                events::record(
                    conn,
                    &Event::new(EventType::SessionRevoked, Some(session.user_id))
                        .session(session.id)
                        .from_client(&client)
                        .detail(serde_json::json!({"reason": "logout"})),
                )?;
            }
            Ok::<_, DieselError>(revoked)
        })
    })
    .await?;
    state.revoked_sessions.insert_all(&revoked);
    Ok(())
}

/// The user's live sessions, newest first.
pub async fn list(state: &AppState, user_id: Uuid) -> AppResult<Vec<Session>> {
    run_db(&state.pool, move |conn| {
        sessions::live_for_user(conn, user_id, Utc::now())
    })
    .await
}

/// Revokes one of the user's live sessions, recording `session_revoked`
/// (detail `{"reason": "revoked"}`); anything else is `not_found`.
pub async fn revoke(
    state: &AppState,
    user_id: Uuid,
    session_id: Uuid,
    client: ClientInfo,
) -> AppResult<()> {
    let revoked = run_db(&state.pool, move |conn| {
        conn.transaction(|conn| {
            let revoked = sessions::revoke_owned(conn, user_id, session_id, Utc::now())?;
            if !revoked.is_empty() {
                events::record(
                    conn,
                    &Event::new(EventType::SessionRevoked, Some(user_id))
                        .session(session_id)
                        .from_client(&client)
                        .detail(serde_json::json!({"reason": "revoked"})),
                )?;
            }
            Ok::<_, DieselError>(revoked)
        })
    })
    .await?;
    if revoked.is_empty() {
        return Err(AppError::NotFound);
    }
    state.revoked_sessions.insert_all(&revoked);
    Ok(())
}

/// Revokes every live session of the user (log out everywhere), recording
/// ONE `session_revoked` for the call, without a session id, with detail
/// `{"reason": "revoke_all", "count": <sessions revoked>}`.
pub async fn revoke_all(state: &AppState, user_id: Uuid, client: ClientInfo) -> AppResult<()> {
    let revoked = run_db(&state.pool, move |conn| {
        conn.transaction(|conn| {
            let revoked = sessions::revoke_all_for_user(conn, user_id, None, Utc::now())?;
            events::record(
                conn,
                &Event::new(EventType::SessionRevoked, Some(user_id))
                    .from_client(&client)
                    .detail(serde_json::json!({"reason": "revoke_all", "count": revoked.len()})),
            )?;
            Ok::<_, DieselError>(revoked)
        })
    })
    .await?;
    state.revoked_sessions.insert_all(&revoked);
    Ok(())
}

/// Signs an access token for a grant on the signing threads (RSA signing
/// costs milliseconds) and counts what was issued. `new_refresh_token` is
/// false for a grace retry, which hands back an existing one.
async fn issue(
    state: &Arc<AppState>,
    grant: Grant,
    new_refresh_token: bool,
) -> AppResult<IssuedTokens> {
    let signer = Arc::clone(state);
    let Grant {
        user,
        session,
        refresh_token,
    } = grant;
    let user_id = user.id;
    let issued = state
        .signing
        .run(move || {
            signer.tokens.issue(&Subject {
                user_id: user.id,
                username: &user.username,
                roles: &user.roles,
                session_id: session.id,
                amr: &session.amr,
                auth_time: session.auth_time.timestamp(),
            })
        })
        .await?
        .map_err(AppError::internal)?;
    state.metrics.record_tokens_issued(new_refresh_token);
    Ok(IssuedTokens {
        user_id,
        access_token: issued.token,
        expires_in: issued.expires_in,
        refresh_token,
        // Every grant has just (re)set the session's expiry to now + TTL.
        refresh_expires_in: state.settings.refresh_token_ttl_seconds,
    })
}

/// Lifetimes that govern sessions.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// Inactivity lifetime of a session.
    pub ttl: Duration,
    /// How long a just-spent token may be retried; zero is strict.
    pub reuse_grace: Duration,
}

/// A session that can get a new access token, with the refresh token to
/// hand back.
#[derive(Debug)]
struct Grant {
    /// The account.
    pub user: User,
    /// The session.
    pub session: Session,
    /// The live refresh token.
    pub refresh_token: RefreshToken,
}

/// What a refresh attempt came to.
#[derive(Debug)]
enum RefreshOutcome {
    /// The token was live and is now spent; here is its successor.
    Rotated(Grant),
    /// The token was spent within the grace window; here is the same
    /// successor its first use returned.
    GraceRetry(Grant),
    /// A spent token outside the grace: the session has been revoked.
    ReuseDetected {
        /// The revoked session.
        session_id: Uuid,
        /// Its owner.
        user_id: Uuid,
    },
    /// Unknown, expired or revoked: nothing changed.
    Invalid,
}

/// Where a login comes from.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// User-Agent header, truncated.
    pub user_agent: Option<String>,
    /// Client IP.
    pub ip: Option<String>,
}

/// Inserts a session and its first refresh token and records
/// `login_succeeded`, in one transaction.
fn start_session(
    conn: &mut PgConnection,
    user: User,
    client: &ClientInfo,
    method: SignInMethod,
    policy: SessionPolicy,
) -> QueryResult<Grant> {
    let amr = method.amr();
    conn.transaction(|conn| {
        let now = Utc::now();
        let session = sessions::insert(
            conn,
            &NewSession {
                id: Uuid::new_v4(),
                user_id: user.id,
                user_agent: client.user_agent.as_deref(),
                ip: client.ip.as_deref(),
                created_at: now,
                last_used_at: now,
                expires_at: now + policy.ttl,
                amr: &amr,
                auth_time: now,
            },
        )?;
        let refresh_token = RefreshToken::generate();
        refresh_tokens::insert(
            conn,
            &NewRefreshToken {
                token_hash: &refresh_token.lookup_hash(),
                session_id: session.id,
                created_at: now,
            },
        )?;
        events::record(
            conn,
            &Event::new(EventType::LoginSucceeded, Some(user.id))
                .session(session.id)
                .from_client(client),
        )?;
        Ok(Grant {
            user,
            session,
            refresh_token,
        })
    })
}

/// Why a rotation could not complete (never a client's fault).
#[derive(Debug, thiserror::Error)]
enum RefreshError {
    /// The database failed.
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    /// AES-GCM refused to seal the successor.
    #[error("sealing the successor refresh token failed")]
    Sealing,
}

impl From<RefreshError> for AppError {
    fn from(err: RefreshError) -> Self {
        match err {
            RefreshError::Database(err) => err.into(),
            RefreshError::Sealing => AppError::internal(err),
        }
    }
}

/// Rotates a refresh token in one transaction that locks the session row,
/// so concurrent refreshes cannot fork a session: 3 statements between
/// BEGIN and COMMIT for a rotation (touch and lock the live session, read
/// the token with its user, spend it for its successor).
///
/// Only the newest spent token keeps its sealed successor (and only when a
/// grace window is configured): older ones are wiped at each rotation, so an
/// old token plus a copy of the database cannot walk the chain forward.
fn rotate(
    conn: &mut PgConnection,
    presented: &RefreshToken,
    policy: SessionPolicy,
    client: &ClientInfo,
) -> Result<RefreshOutcome, RefreshError> {
    conn.transaction(|conn| {
        let hash = presented.lookup_hash();
        let now = Utc::now();
        // Locks the session (and records this use) only while it is live.
        let Some(session) = sessions::touch_live_by_token(conn, &hash, now, now + policy.ttl)?
        else {
            return Ok(RefreshOutcome::Invalid);
        };
        // Re-read under the lock: a concurrent refresh may have spent it.
        let Some((token, user)) = refresh_tokens::find_with_user(conn, &hash)? else {
            return Ok(RefreshOutcome::Invalid);
        };
        match token.spent_at {
            None => {
                let successor = RefreshToken::generate();
                let sealed = if policy.reuse_grace > Duration::zero() {
                    Some(presented.seal(&successor).ok_or(RefreshError::Sealing)?)
                } else {
                    None
                };
                refresh_tokens::spend_for_successor(
                    conn,
                    session.id,
                    &hash,
                    &successor.lookup_hash(),
                    now,
                    sealed.as_deref(),
                )?;
                Ok(RefreshOutcome::Rotated(Grant {
                    user,
                    session,
                    refresh_token: successor,
                }))
            }
            Some(spent_at) => {
                if let Some(successor) =
                    grace_successor(conn, presented, &token, spent_at, now, policy)?
                {
                    return Ok(RefreshOutcome::GraceRetry(Grant {
                        user,
                        session,
                        refresh_token: successor,
                    }));
                }
                // The use recorded above goes with the session: it is revoked.
                sessions::revoke(conn, session.id, now)?;
                events::record(
                    conn,
                    &Event::new(EventType::RefreshReuseDetected, Some(session.user_id))
                        .session(session.id)
                        .from_client(client),
                )?;
                Ok(RefreshOutcome::ReuseDetected {
                    session_id: session.id,
                    user_id: session.user_id,
                })
            }
        }
    })
}

/// The successor a grace retry may return: only for the session's most
/// recently spent token (its successor is still live), within the window.
fn grace_successor(
    conn: &mut PgConnection,
    presented: &RefreshToken,
    token: &RefreshTokenRow,
    spent_at: DateTime<Utc>,
    now: DateTime<Utc>,
    policy: SessionPolicy,
) -> QueryResult<Option<RefreshToken>> {
    if policy.reuse_grace <= Duration::zero() || now - spent_at > policy.reuse_grace {
        return Ok(None);
    }
    let Some(successor) = token
        .sealed_successor
        .as_deref()
        .and_then(|sealed| presented.open(sealed))
    else {
        return Ok(None);
    };
    let successor_live = refresh_tokens::find(conn, &successor.lookup_hash())?
        .is_some_and(|row| row.spent_at.is_none());
    Ok(successor_live.then_some(successor))
}
