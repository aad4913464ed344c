//! Accounts: register, log in, confirm a password, change it, delete the
//! account, grant and revoke roles. Handlers and the CLI parse input and
//! call these; each state change owns its transaction.

use std::sync::Arc;

use chrono::Utc;
use diesel::Connection;
use uuid::Uuid;

use crate::blocking::run_db;
use crate::db::mfa as mfa_db;
use crate::db::models::{NewUser, User};
use crate::db::{sessions, users};
use crate::domain::{Password, Username};
use crate::error::{on_unique_violation, AppError, AppResult};
use crate::jobs::rehash::RehashJob;
use crate::services::events::{self, Event, EventType};
use crate::services::mfa::{self, MfaChallenge};
use crate::services::sessions::{self as session_service, ClientInfo, IssuedTokens, SignInMethod};
use crate::services::throttle::{self, NameKey};
use crate::state::AppState;

/// Creates an account; a taken name (also in a race) is 409.
pub async fn register(state: &AppState, username: Username, password: Password) -> AppResult<User> {
    let hash = state.passwords.hash(password).await?;
    run_db(&state.pool, move |conn| {
        users::insert(
            conn,
            &NewUser {
                id: Uuid::new_v4(),
                username: username.as_str(),
                password_hash: &hash,
            },
        )
        .map_err(|err| on_unique_violation(err, "users_username_key", AppError::UsernameTaken))
    })
    .await
}

/// What a correct password leads to.
#[derive(Debug)]
pub enum Authentication {
    /// The password was right and nothing more is needed.
    Complete(User),
    /// The password was right; the account has TOTP, so a second step
    /// (`POST /auth/mfa`) must follow before any session starts.
    SecondFactorRequired(User),
}

/// What a login came to.
#[derive(Debug)]
pub enum LoginOutcome {
    /// A new session and its tokens.
    SignedIn(IssuedTokens),
    /// No session yet: the `mfa_token` to finish with a one-time code.
    SecondFactorRequired(MfaChallenge),
}

/// Logs in with a username and password: checks them, then starts a
/// session on this device. Every mismatch is `invalid_credentials` and
/// counts against the name's throttle; a throttled name is 429
/// `rate_limited` without a password check (README "Brute-force defence").
pub async fn log_in(
    state: &Arc<AppState>,
    username: &str,
    password: String,
    client: ClientInfo,
) -> AppResult<LoginOutcome> {
    // The per-username throttle: a throttled name is refused here, before
    // bcrypt runs.
    let name_key = NameKey::of(username);
    let gate = match throttle::check(state, name_key, username, &client).await {
        Ok(gate) => gate,
        Err(err) => {
            if matches!(err, AppError::RateLimited { .. }) {
                state.metrics.record_rate_limited();
                log::info!("login refused: the username is throttled");
            }
            return Err(err);
        }
    };
    let authentication = match authenticate(state, username, password).await {
        Ok(authentication) => authentication,
        Err(err) => {
            if matches!(err, AppError::InvalidCredentials) {
                state.metrics.record_login(false);
                log::debug!("login failed: wrong username or password");
                record_login_failure(state, username, client).await;
                throttle::record_failure(state, name_key).await?;
            }
            return Err(err);
        }
    };
    // The password was right: the name's failures are forgotten.
    if gate.has_failures {
        throttle::reset(state, name_key).await?;
    }
    match authentication {
        Authentication::Complete(user) => {
            state.metrics.record_login(true);
            let tokens =
                session_service::start(state, user, client, SignInMethod::Password).await?;
            Ok(LoginOutcome::SignedIn(tokens))
        }
        Authentication::SecondFactorRequired(user) => {
            let challenge = mfa::begin_challenge(state, user.id).await?;
            log::debug!("login needs a second factor: mfa_token issued");
            Ok(LoginOutcome::SecondFactorRequired(challenge))
        }
    }
}

/// Records `login_failed` in its own short transaction, with the account's
/// id when the name exists (the attempted name itself is not stored: people
/// type passwords into the username field). A failure to record is logged;
/// the login is refused either way.
async fn record_login_failure(state: &AppState, username: &str, client: ClientInfo) {
    let name = Username::parse(username).ok();
    let recorded = run_db(&state.pool, move |conn| {
        conn.transaction(|conn| {
            let user_id = match &name {
                Some(name) => users::find_by_username(conn, name.as_str())?.map(|user| user.id),
                None => None,
            };
            events::record(
                conn,
                &Event::new(EventType::LoginFailed, user_id).from_client(&client),
            )
        })
    })
    .await;
    if let Err(err) = recorded {
        log::warn!("recording a failed login failed: {err}");
    }
}

/// Checks a login. Any mismatch, including names that cannot exist, is
/// `invalid_credentials` after exactly one bcrypt run.
pub async fn authenticate(
    state: &AppState,
    username: &str,
    password: String,
) -> AppResult<Authentication> {
    // Login checks no formats, but a name that cannot exist (NUL bytes,
    // 10 KiB) never reaches the database.
    let (user, has_totp) = match Username::parse(username) {
        Ok(name) => {
            run_db(&state.pool, move |conn| {
                let user = users::find_by_username(conn, name.as_str())?;
                let has_totp = match &user {
                    Some(user) => mfa_db::totp_enabled(conn, user.id)?,
                    None => false,
                };
                Ok::<_, diesel::result::Error>((user, has_totp))
            })
            .await?
        }
        Err(_) => (None, false),
    };
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let candidate = password.clone();
    let matches = state.passwords.verify(candidate, stored).await?;
    match user {
        Some(user) if matches => {
            if state.passwords.needs_rehash(&user.password_hash) {
                if let Ok(password) = Password::parse(&password) {
                    state.rehash_jobs.submit(RehashJob {
                        user_id: user.id,
                        old_hash: user.password_hash.clone(),
                        password,
                    });
                }
            }
            if has_totp {
                Ok(Authentication::SecondFactorRequired(user))
            } else {
                Ok(Authentication::Complete(user))
            }
        }
        _ => Err(AppError::InvalidCredentials),
    }
}

/// Loads the caller's account (404 when it was deleted) and checks a
/// password against it (401 `invalid_credentials` when wrong).
pub async fn confirm_password(
    state: &AppState,
    user_id: Uuid,
    candidate: String,
) -> AppResult<User> {
    let account = run_db(&state.pool, move |conn| users::find(conn, user_id))
        .await?
        .ok_or(AppError::NotFound)?;
    if state
        .passwords
        .verify(candidate, Some(account.password_hash.clone()))
        .await?
    {
        Ok(account)
    } else {
        Err(AppError::InvalidCredentials)
    }
}

/// Stores a new password, revokes every session but `keep` and records
/// `password_changed` (detail `{"sessions_revoked": n}`), in one
/// transaction. `confirmed` is the account as [`confirm_password`] read it:
/// if its password changed since (a concurrent change won), this one is
/// refused as a wrong current password, exactly as it would be had it come
/// second, instead of overwriting the winner and revoking its session.
pub async fn change_password(
    state: &AppState,
    confirmed: User,
    keep: Uuid,
    new_password: Password,
    client: ClientInfo,
) -> AppResult<()> {
    let hash = state.passwords.hash(new_password).await?;
    let user_id = confirmed.id;
    let revoked = run_db(&state.pool, move |conn| {
        conn.transaction(|conn| {
            if users::replace_password_hash(conn, user_id, &confirmed.password_hash, &hash)? == 0 {
                return Err(match users::find(conn, user_id)? {
                    Some(_) => AppError::InvalidCredentials,
                    None => AppError::NotFound,
                });
            }
            let revoked = sessions::revoke_all_for_user(conn, user_id, Some(keep), Utc::now())?;
            events::record(
                conn,
                &Event::new(EventType::PasswordChanged, Some(user_id))
                    .session(keep)
                    .from_client(&client)
                    .detail(serde_json::json!({"sessions_revoked": revoked.len()})),
            )?;
            Ok(revoked)
        })
    })
    .await?;
    state.revoked_sessions.insert_all(&revoked);
    Ok(())
}

/// Deletes an account and records `account_deleted` with the deleted
/// account's id and the session that asked, in one transaction. First, with
/// the account row locked (no session can start meanwhile), every session
/// not yet revoked is revoked and announced, so their access tokens stay
/// refused after the rows are gone by cascade.
pub async fn delete(
    state: &AppState,
    user_id: Uuid,
    session_id: Uuid,
    client: ClientInfo,
) -> AppResult<()> {
    let revoked = run_db(&state.pool, move |conn| {
        conn.transaction(|conn| {
            if users::find_for_update(conn, user_id)?.is_none() {
                return Err(AppError::NotFound);
            }
            let revoked = sessions::revoke_all_for_user(conn, user_id, None, Utc::now())?;
            users::delete(conn, user_id)?;
            events::record(
                conn,
                &Event::new(EventType::AccountDeleted, Some(user_id))
                    .session(session_id)
                    .from_client(&client),
            )?;
            Ok(revoked)
        })
    })
    .await?;
    state.revoked_sessions.insert_all(&revoked);
    Ok(())
}

/// One page of accounts ordered by `(created_at, id)`, after the cursor
/// (the admin listing).
pub async fn page(
    state: &AppState,
    after: Option<(chrono::DateTime<Utc>, Uuid)>,
    limit: i64,
) -> AppResult<Vec<User>> {
    run_db(&state.pool, move |conn| users::page(conn, after, limit)).await
}

/// The database view of an account (`GET /api/account`). Each credential
/// feature fills in its own part.
#[derive(Debug, Clone)]
pub struct AccountOverview {
    /// The account.
    pub user: User,
    /// The address on file, if any.
    pub email: Option<String>,
    /// Whether that address was verified.
    pub email_verified: bool,
    /// Whether TOTP is enabled.
    pub totp: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: i64,
    /// Registered passkeys.
    pub passkeys: i64,
}

/// Reads the caller's account; `not_found` once it was deleted.
pub async fn overview(state: &AppState, user_id: Uuid) -> AppResult<AccountOverview> {
    let (user, address, (totp, recovery_codes_left), passkeys) = run_db(&state.pool, move |conn| {
        let user = users::find(conn, user_id)?;
        let address = crate::db::email::address(conn, user_id)?;
        let mfa = mfa::status(conn, user_id)?;
        let passkeys = crate::db::passkeys::count_for_user(conn, user_id)?;
        Ok::<_, diesel::result::Error>((user, address, mfa, passkeys))
    })
    .await?;
    let user = user.ok_or(AppError::NotFound)?;
    let (email, email_verified) = address.map_or((None, false), |address| {
        (address.email, address.email_verified)
    });
    Ok(AccountOverview {
        user,
        email,
        email_verified,
        totp,
        recovery_codes_left,
        passkeys,
    })
}

/// Whether a role change did anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleChange {
    /// The lower-cased username.
    pub username: String,
    /// Roles after the change.
    pub roles: Vec<String>,
    /// False when the user already had (or lacked) the role.
    pub changed: bool,
}

/// Why a role change was refused (the CLI prints it as one line).
#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    /// Empty, longer than 64 bytes, or with a NUL.
    #[error("ROLE: {0:?} is not a valid role name")]
    InvalidRole(String),
    /// No account with that name.
    #[error("no such user: {0}")]
    NoSuchUser(String),
    /// The database failed.
    #[error("cannot update roles: {0}")]
    Database(#[from] diesel::result::Error),
}

/// Grants (`grant` true) or revokes a role, in one transaction that locks
/// the user row, recording `role_granted` / `role_revoked` (detail
/// `{"role": …}`) when it changed anything. Synchronous: the CLI calls it on its own connection.
pub fn set_role(
    conn: &mut diesel::PgConnection,
    username: &str,
    role: &str,
    grant: bool,
) -> Result<RoleChange, RoleError> {
    let role = role.trim().to_owned();
    if role.is_empty() || role.len() > 64 || role.contains('\0') {
        return Err(RoleError::InvalidRole(role));
    }
    let username = username.to_ascii_lowercase();
    conn.transaction(|conn| {
        let found = users::find_by_username_for_update(conn, &username)?
            .ok_or_else(|| RoleError::NoSuchUser(username.clone()))?;
        let mut roles = found.roles.clone();
        let changed = if grant {
            !roles.contains(&role) && {
                roles.push(role.clone());
                true
            }
        } else {
            let before = roles.len();
            roles.retain(|r| r != &role);
            roles.len() != before
        };
        if changed {
            users::set_roles(conn, found.id, &roles)?;
            let kind = if grant {
                EventType::RoleGranted
            } else {
                EventType::RoleRevoked
            };
            events::record(
                conn,
                &Event::new(kind, Some(found.id)).detail(serde_json::json!({"role": role})),
            )?;
        }
        Ok(RoleChange {
            username,
            roles,
            changed,
        })
    })
}
