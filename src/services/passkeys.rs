//! Passkeys: registering one from a signed-in session, listing and
//! removing them, and signing in with one (README "Passkeys").
//!
//! A ceremony is two requests, possibly served by two instances: `start`
//! stores webauthn-rs' state in `webauthn_challenges`; `finish` deletes that
//! row (DELETE … RETURNING) in the transaction that verifies the answer, so
//! a challenge is used at most once and, of two concurrent finishes, only
//! the one that deleted the row can succeed. A refused answer still spends
//! its challenge: the transaction commits the deletion and reports the
//! refusal, which clients see as `invalid_otp` and the debug log explains.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use diesel::Connection;
use serde_json::Value;
use uuid::Uuid;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use crate::auth::passkeys::{Refusal, CHALLENGE_TTL};
use crate::blocking::run_db;
use crate::db::models::User;
use crate::db::passkeys::{self as db, NewChallenge, NewPasskey, PasskeyRow};
use crate::db::users;
use crate::domain::PasskeyName;
use crate::error::{on_unique_violation, AppError, AppResult};
use crate::services::accounts;
use crate::services::events::{self, Event, EventType};
use crate::services::sessions::{self as session_service, ClientInfo, IssuedTokens, SignInMethod};
use crate::state::AppState;

/// `webauthn_challenges.kind` of a registration.
const REGISTRATION: &str = "registration";
/// `webauthn_challenges.kind` of a sign-in.
const AUTHENTICATION: &str = "authentication";

/// A started ceremony: the id to finish it with and the options for
/// `navigator.credentials.create/get`.
#[derive(Debug)]
pub struct Started {
    /// `challenge_id`.
    pub challenge_id: Uuid,
    /// `{"publicKey": {…}}`.
    pub options: Value,
}

/// Starts registering a passkey for the caller after re-checking their
/// password (401 `invalid_credentials` when wrong, 404 once deleted).
pub async fn start_registration(
    state: &AppState,
    user_id: Uuid,
    password: String,
) -> AppResult<Started> {
    let user = accounts::confirm_password(state, user_id, password).await?;
    let verifier = state.passkeys.clone();
    run_db(&state.pool, move |conn| {
        conn.transaction(|conn| -> AppResult<Started> {
            let existing = db::for_user(conn, user.id)?
                .into_iter()
                .map(|row| row.credential_id)
                .collect();
            let (options, ceremony) = verifier
                .start_registration(user.id, &user.username, existing)
                .map_err(AppError::internal)?;
            let challenge_id = Uuid::new_v4();
            db::insert_challenge(
                conn,
                &NewChallenge {
                    id: challenge_id,
                    kind: REGISTRATION,
                    user_id: Some(user.id),
                    state: &ceremony,
                    expires_at: expiry(),
                },
            )?;
            Ok(Started {
                challenge_id,
                options,
            })
        })
    })
    .await
}

/// Finishes a registration: spends the challenge, verifies the
/// authenticator's answer, stores the passkey and records `passkey_added`,
/// in one transaction.
pub async fn finish_registration(
    state: &AppState,
    user_id: Uuid,
    challenge_id: Uuid,
    credential: RegisterPublicKeyCredential,
    name: PasskeyName,
    client: ClientInfo,
) -> AppResult<PasskeyRow> {
    let verifier = state.passkeys.clone();
    let outcome = run_db(&state.pool, move |conn| {
        conn.transaction(|conn| -> AppResult<Result<PasskeyRow, Refusal>> {
            let ceremony = match spend(conn, challenge_id, REGISTRATION, Some(user_id))? {
                Ok(ceremony) => ceremony,
                Err(refusal) => return Ok(Err(refusal)),
            };
            let registered = match verifier.finish_registration(&credential, &ceremony) {
                Ok(registered) => registered,
                Err(refusal) => return Ok(Err(refusal)),
            };
            if db::credential_exists(conn, &registered.credential_id)? {
                return Ok(Err(Refusal::new("credential already registered")));
            }
            let row = db::insert(
                conn,
                &NewPasskey {
                    id: Uuid::new_v4(),
                    user_id,
                    credential_id: &registered.credential_id,
                    passkey: &registered.passkey,
                    sign_count: registered.sign_count,
                    backup_eligible: registered.backup_eligible,
                    backup_state: registered.backup_state,
                    name: name.as_str(),
                    created_at: Utc::now(),
                },
            )
            // Two finishes registering one credential at once.
            .map_err(|err| {
                on_unique_violation(err, "passkeys_credential_id_key", AppError::InvalidOtp)
            })?;
            events::record(
                conn,
                &Event::new(EventType::PasskeyAdded, Some(user_id))
                    .from_client(&client)
                    .detail(serde_json::json!({"passkey_id": row.id})),
            )?;
            Ok(Ok(row))
        })
    })
    .await?;
    outcome.map_err(|refusal| {
        log::debug!("passkey registration refused: {}", refusal.0);
        AppError::InvalidOtp
    })
}

/// The caller's passkeys, oldest first.
pub async fn list(state: &AppState, user_id: Uuid) -> AppResult<Vec<PasskeyRow>> {
    run_db(&state.pool, move |conn| db::for_user(conn, user_id)).await
}

/// Removes one of the caller's passkeys after re-checking the password;
/// another user's or an unknown id is 404. Records `passkey_removed`.
pub async fn remove(
    state: &AppState,
    user_id: Uuid,
    passkey_id: Uuid,
    password: String,
    client: ClientInfo,
) -> AppResult<()> {
    accounts::confirm_password(state, user_id, password).await?;
    run_db(&state.pool, move |conn| {
        conn.transaction(|conn| {
            if db::delete_owned(conn, user_id, passkey_id)? == 0 {
                return Err(AppError::NotFound);
            }
            events::record(
                conn,
                &Event::new(EventType::PasskeyRemoved, Some(user_id))
                    .from_client(&client)
                    .detail(serde_json::json!({"passkey_id": passkey_id})),
            )?;
            Ok(())
        })
    })
    .await
}

/// Starts a passkey sign-in: options with an empty `allowCredentials`, so
/// the authenticator offers whichever passkeys it holds for this RP.
pub async fn start_sign_in(state: &AppState) -> AppResult<Started> {
    let verifier = state.passkeys.clone();
    run_db(&state.pool, move |conn| {
        let (options, ceremony) = verifier
            .start_authentication()
            .map_err(AppError::internal)?;
        let challenge_id = Uuid::new_v4();
        db::insert_challenge(
            conn,
            &NewChallenge {
                id: challenge_id,
                kind: AUTHENTICATION,
                user_id: None,
                state: &ceremony,
                expires_at: expiry(),
            },
        )?;
        Ok::<_, AppError>(Started {
            challenge_id,
            options,
        })
    })
    .await
}

/// Finishes a passkey sign-in: spends the challenge, finds the passkey the
/// assertion names (it must belong to the account of its user handle),
/// verifies it, moves the stored counter and `last_used_at`, records
/// `login_succeeded`, then starts a session. A passkey is two factors
/// (possession and user verification), so an account with TOTP signs in
/// without a code.
pub async fn finish_sign_in(
    state: &Arc<AppState>,
    challenge_id: Uuid,
    credential: PublicKeyCredential,
    client: ClientInfo,
) -> AppResult<IssuedTokens> {
    let verifier = state.passkeys.clone();
    let outcome = run_db(&state.pool, move |conn| {
        conn.transaction(|conn| -> AppResult<Result<User, Refusal>> {
            let ceremony = match spend(conn, challenge_id, AUTHENTICATION, None)? {
                Ok(ceremony) => ceremony,
                Err(refusal) => return Ok(Err(refusal)),
            };
            let (user_handle, credential_id) = match verifier.identify(&credential) {
                Ok(found) => found,
                Err(refusal) => return Ok(Err(refusal)),
            };
            let Some(stored) = db::lock_by_credential(conn, &credential_id)? else {
                return Ok(Err(Refusal::new("unknown credential")));
            };
            if stored.user_id != user_handle {
                return Ok(Err(Refusal::new(
                    "user handle does not match the credential's account",
                )));
            }
            let verified =
                match verifier.finish_authentication(&credential, &ceremony, &stored.passkey) {
                    Ok(verified) => verified,
                    Err(refusal) => return Ok(Err(refusal)),
                };
            let now = Utc::now();
            db::record_use(
                conn,
                stored.id,
                &verified.passkey,
                verified.sign_count,
                verified.backup_eligible,
                verified.backup_state,
                now,
            )?;
            let Some(user) = users::find(conn, stored.user_id)? else {
                return Ok(Err(Refusal::new("account deleted")));
            };
            // `login_succeeded` is recorded by `sessions::start`, with the
            // session it starts, like every other sign-in.
            Ok(Ok(user))
        })
    })
    .await?;
    let user = match outcome {
        Ok(user) => user,
        Err(refusal) => {
            state.metrics.record_login(false);
            log::debug!("passkey sign-in refused: {}", refusal.0);
            return Err(AppError::InvalidOtp);
        }
    };
    state.metrics.record_login(true);
    session_service::start(state, user, client, SignInMethod::Passkey)
        .await
        .map_err(|err| match err {
            // The account was deleted since the assertion was verified.
            AppError::InvalidCredentials => AppError::InvalidOtp,
            other => other,
        })
}

/// Deletes the challenge and returns its ceremony state if it is of
/// `kind`, unexpired and (for a registration) the caller's. Any other
/// challenge is refused, and spent all the same.
fn spend(
    conn: &mut diesel::PgConnection,
    challenge_id: Uuid,
    kind: &str,
    user_id: Option<Uuid>,
) -> diesel::QueryResult<Result<Value, Refusal>> {
    let Some(challenge) = db::take_challenge(conn, challenge_id)? else {
        return Ok(Err(Refusal::new("unknown or already used challenge")));
    };
    if challenge.kind != kind {
        return Ok(Err(Refusal::new(format!(
            "a {} challenge cannot finish a {kind}",
            challenge.kind
        ))));
    }
    if challenge.expires_at <= Utc::now() {
        return Ok(Err(Refusal::new("challenge expired")));
    }
    if challenge.user_id != user_id {
        return Ok(Err(Refusal::new("challenge of another account")));
    }
    Ok(Ok(challenge.state))
}

/// When a challenge started now stops being accepted.
fn expiry() -> DateTime<Utc> {
    Utc::now()
        + chrono::Duration::from_std(CHALLENGE_TTL).unwrap_or_else(|_| chrono::Duration::zero())
}
