//! Second factor (README "Second factor"): TOTP enrollment, confirmation,
//! disabling, recovery codes, the second step of a login, and step-up
//! checks on sensitive routes.
//!
//! Every code check of an account runs in one transaction that locks the
//! account's `mfa_totp` row, then applies the rules in order: the account's
//! failure window (5 wrong codes per 5 minutes on every route together,
//! then 429), the code's shape, its value, and the replay rule (a step once
//! used, or any earlier one, is refused, by a conditional UPDATE). A wrong
//! code is counted and recorded as an `mfa_failed` event in that same
//! transaction, which then commits: the caller turns the outcome into
//! `invalid_otp` after the commit.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::auth::recovery_codes::{self, MfaToken, RecoveryCode};
use crate::auth::totp::{self, SecretBox, TotpSecret};
use crate::blocking::run_db;
use crate::db::mfa::{self as db, TotpRow};
use crate::db::users;
use crate::error::{AppError, AppResult};
use crate::services::accounts;
use crate::services::events::{self, Event, EventType};
use crate::services::sessions::{self, ClientInfo, IssuedTokens, SignInMethod};
use crate::state::AppState;

/// Wrong codes an account may send per window, on all routes together.
pub const MAX_FAILURES: i32 = 5;

/// The failure window, in seconds.
pub const FAILURE_WINDOW_SECONDS: i32 = 300;

/// Lifetime of an `mfa_token`, in seconds.
pub const CHALLENGE_TTL_SECONDS: i64 = 300;

/// Wrong codes that kill an `mfa_token`.
pub const CHALLENGE_MAX_FAILURES: i32 = 5;

/// What `POST /auth/mfa` accepts as `code`.
pub const METHODS: [&str; 2] = ["totp", "recovery_code"];

/// What a code is checked for: the event detail, and whether a recovery
/// code may stand in for a TOTP code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The second step of a login.
    Login,
    /// Confirming a new enrollment (TOTP only: it proves the app works).
    ConfirmEnrollment,
    /// Turning TOTP off.
    DisableTotp,
    /// A new set of recovery codes.
    RegenerateRecoveryCodes,
    /// Step-up for a password change.
    PasswordChange,
    /// Step-up for deleting the account.
    AccountDeletion,
}

impl Purpose {
    /// The name recorded in `mfa_failed` events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::ConfirmEnrollment => "confirm_enrollment",
            Self::DisableTotp => "disable_totp",
            Self::RegenerateRecoveryCodes => "regenerate_recovery_codes",
            Self::PasswordChange => "password_change",
            Self::AccountDeletion => "account_deletion",
        }
    }

    fn accepts_recovery_code(self) -> bool {
        self != Self::ConfirmEnrollment
    }
}

/// A started enrollment: what the user puts in the authenticator app.
pub struct Enrollment {
    /// Upper-case base32 secret, no padding.
    pub secret: String,
    /// The `otpauth://totp/...` URI (for a QR code).
    pub otpauth_uri: String,
}

impl std::fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Enrollment(***)")
    }
}

/// A login waiting for its second step.
#[derive(Debug)]
pub struct MfaChallenge {
    /// The token to send to `POST /auth/mfa` with a code.
    pub mfa_token: MfaToken,
    /// The kinds of code accepted.
    pub methods: [&'static str; 2],
}

/// Why a code was refused (metric label and event detail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Wrong,
    Reused,
    Malformed,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Self::Wrong => "wrong_code",
            Self::Reused => "reused_code",
            Self::Malformed => "malformed_code",
        }
    }
}

/// The outcome of one code check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Accepted,
    Refused(Refusal),
    /// Over the account's failure budget: retry after this many seconds.
    Throttled(u64),
}

/// One code to check, and where it came from.
struct CodeCheck<'a> {
    code: &'a str,
    purpose: Purpose,
    client: &'a ClientInfo,
    now: DateTime<Utc>,
    secrets: &'a SecretBox,
}

/// Starts (or restarts) an enrollment after a password check: a new secret
/// is stored sealed, pending until confirmed. 409 when TOTP is enabled.
pub async fn begin_enrollment(
    state: &AppState,
    user_id: Uuid,
    password: String,
) -> AppResult<Enrollment> {
    let account = accounts::confirm_password(state, user_id, password).await?;
    let secret = TotpSecret::generate();
    let sealed = state
        .mfa_secrets
        .seal(user_id, &secret)
        .ok_or_else(|| AppError::internal("sealing a TOTP secret failed"))?;
    let written = run_db(&state.pool, move |conn| {
        db::upsert_pending(conn, user_id, &sealed)
    })
    .await?;
    if !written {
        return Err(AppError::Conflict(
            "TOTP is already enabled on this account",
        ));
    }
    Ok(Enrollment {
        secret: secret.base32(),
        otpauth_uri: secret.otpauth_uri(&state.settings.mfa_issuer, &account.username),
    })
}

/// Confirms the pending enrollment with a TOTP code: TOTP is on from now,
/// and here are the recovery codes (shown this once).
pub async fn confirm_enrollment(
    state: &AppState,
    user_id: Uuid,
    code: String,
    client: ClientInfo,
) -> AppResult<Vec<RecoveryCode>> {
    let codes = recovery_codes::generate_set();
    let hashes: Vec<[u8; 32]> = codes.iter().map(RecoveryCode::hash).collect();
    guarded_change(
        state,
        CodeGuard {
            user_id,
            code,
            purpose: Purpose::ConfirmEnrollment,
            client,
            needs: TotpState::Pending,
            event: EventType::MfaEnabled,
        },
        move |conn, now| db::replace_recovery_codes(conn, user_id, &hashes, now),
    )
    .await?;
    Ok(codes)
}

/// Turns TOTP off after a password check and a code (TOTP or recovery);
/// the recovery codes and any half-finished login go with it.
pub async fn disable(
    state: &AppState,
    user_id: Uuid,
    password: String,
    code: String,
    client: ClientInfo,
) -> AppResult<()> {
    accounts::confirm_password(state, user_id, password).await?;
    guarded_change(
        state,
        CodeGuard {
            user_id,
            code,
            purpose: Purpose::DisableTotp,
            client,
            needs: TotpState::Enabled,
            event: EventType::MfaDisabled,
        },
        move |conn, _| db::delete_all(conn, user_id).map(drop),
    )
    .await
}

/// A new set of recovery codes after a password check and a code; the old
/// set dies in the same transaction.
pub async fn regenerate_recovery_codes(
    state: &AppState,
    user_id: Uuid,
    password: String,
    code: String,
    client: ClientInfo,
) -> AppResult<Vec<RecoveryCode>> {
    accounts::confirm_password(state, user_id, password).await?;
    let codes = recovery_codes::generate_set();
    let hashes: Vec<[u8; 32]> = codes.iter().map(RecoveryCode::hash).collect();
    guarded_change(
        state,
        CodeGuard {
            user_id,
            code,
            purpose: Purpose::RegenerateRecoveryCodes,
            client,
            needs: TotpState::Enabled,
            event: EventType::RecoveryCodesRegenerated,
        },
        move |conn, now| db::replace_recovery_codes(conn, user_id, &hashes, now),
    )
    .await?;
    Ok(codes)
}

/// Step-up for a sensitive route: nothing for an account without TOTP; for
/// one with TOTP, `code` must be present (else `mfa_required`) and right
/// (else `invalid_otp`).
pub async fn step_up(
    state: &AppState,
    user_id: Uuid,
    code: Option<String>,
    purpose: Purpose,
    client: ClientInfo,
) -> AppResult<()> {
    let secrets = Arc::clone(&state.mfa_secrets);
    let check = run_db(&state.pool, move |conn| {
        conn.transaction::<_, AppError, _>(|conn| {
            let totp = match db::lock_totp(conn, user_id)? {
                Some(row) if row.confirmed_at.is_some() => row,
                _ => return Ok(Check::Accepted),
            };
            let code = code.ok_or(AppError::MfaRequired)?;
            let request = CodeCheck {
                code: &code,
                purpose,
                client: &client,
                now: Utc::now(),
                secrets: &secrets,
            };
            check_code(conn, &totp, &request)
        })
    })
    .await?;
    answer(state, check)
}

/// Whether TOTP is enabled on an account.
pub async fn is_enabled(state: &AppState, user_id: Uuid) -> AppResult<bool> {
    run_db(&state.pool, move |conn| db::totp_enabled(conn, user_id)).await
}

/// Stores a new challenge for a login whose password was right.
pub async fn begin_challenge(state: &AppState, user_id: Uuid) -> AppResult<MfaChallenge> {
    let token = MfaToken::generate();
    let hash = token.lookup_hash();
    run_db(&state.pool, move |conn| {
        let now = Utc::now();
        db::insert_challenge(
            conn,
            &hash,
            user_id,
            now,
            now + Duration::seconds(CHALLENGE_TTL_SECONDS),
        )
    })
    .await?;
    state.metrics.record_mfa_challenge();
    Ok(MfaChallenge {
        mfa_token: token,
        methods: METHODS,
    })
}

/// What the second step of a login came to, inside its transaction.
enum SecondStep {
    Passed(crate::db::models::User),
    Checked(Check),
    UnknownToken,
}

/// The second step of a login: a live `mfa_token` and a right code start
/// the session (`amr` `["pwd","otp","mfa"]`). The token is single use; a
/// wrong code counts against it (5 kill it) and against the account.
pub async fn complete_login(
    state: &Arc<AppState>,
    mfa_token: &str,
    code: String,
    client: ClientInfo,
) -> AppResult<IssuedTokens> {
    let hash = MfaToken::presented(mfa_token).lookup_hash();
    let secrets = Arc::clone(&state.mfa_secrets);
    let event_client = client.clone();
    let step = run_db(&state.pool, move |conn| {
        conn.transaction::<_, AppError, _>(|conn| {
            let now = Utc::now();
            let Some(challenge) = db::lock_live_challenge(conn, &hash, now)? else {
                return Ok(SecondStep::UnknownToken);
            };
            let totp = match db::lock_totp(conn, challenge.user_id)? {
                Some(row) if row.confirmed_at.is_some() => row,
                // TOTP was turned off since the password step.
                _ => {
                    db::delete_challenge(conn, &hash)?;
                    return Ok(SecondStep::UnknownToken);
                }
            };
            let request = CodeCheck {
                code: &code,
                purpose: Purpose::Login,
                client: &event_client,
                now,
                secrets: &secrets,
            };
            match check_code(conn, &totp, &request)? {
                Check::Accepted => {
                    db::delete_challenge(conn, &hash)?;
                    match users::find(conn, challenge.user_id)? {
                        Some(user) => Ok(SecondStep::Passed(user)),
                        None => Ok(SecondStep::UnknownToken),
                    }
                }
                Check::Refused(refusal) => {
                    if db::fail_challenge(conn, &hash)? >= CHALLENGE_MAX_FAILURES {
                        db::delete_challenge(conn, &hash)?;
                    }
                    Ok(SecondStep::Checked(Check::Refused(refusal)))
                }
                throttled @ Check::Throttled(_) => Ok(SecondStep::Checked(throttled)),
            }
        })
    })
    .await?;
    match step {
        SecondStep::Passed(user) => {
            state.metrics.record_login(true);
            sessions::start(state, user, client, SignInMethod::PasswordAndOtp).await
        }
        SecondStep::Checked(check) => {
            answer(state, check)?;
            Err(AppError::internal(
                "a refused check was answered as accepted",
            ))
        }
        SecondStep::UnknownToken => {
            state.metrics.record_mfa_failure("bad_mfa_token");
            log::debug!("second login step refused: unknown, expired or used mfa_token");
            Err(AppError::InvalidOtp)
        }
    }
}

/// TOTP state for `GET /api/account`: enabled, and unused recovery codes.
pub fn status(conn: &mut PgConnection, user_id: Uuid) -> QueryResult<(bool, i64)> {
    let enabled = db::totp_enabled(conn, user_id)?;
    let left = if enabled {
        db::recovery_codes_left(conn, user_id)?
    } else {
        0
    };
    Ok((enabled, left))
}

/// Which state of the account's TOTP row a code-guarded change needs.
#[derive(Debug, Clone, Copy)]
enum TotpState {
    /// Enrolled but not confirmed yet.
    Pending,
    /// Confirmed: TOTP is on.
    Enabled,
}

/// What guards a change: whose account, the code sent, what it is for,
/// the state the TOTP row must be in, and the event the change records.
struct CodeGuard {
    user_id: Uuid,
    code: String,
    purpose: Purpose,
    client: ClientInfo,
    needs: TotpState,
    event: EventType,
}

/// A change made only with a right code, in ONE transaction: locks the
/// account's TOTP row (409 unless it is in the state `guard.needs`),
/// checks the code, and when it is accepted applies `change` and records
/// the event. A refused code is counted in that transaction and answered
/// `invalid_otp` after the commit.
async fn guarded_change<F>(state: &AppState, guard: CodeGuard, change: F) -> AppResult<()>
where
    F: FnOnce(&mut PgConnection, DateTime<Utc>) -> QueryResult<()> + Send + 'static,
{
    let secrets = Arc::clone(&state.mfa_secrets);
    let check = run_db(&state.pool, move |conn| {
        conn.transaction::<_, AppError, _>(|conn| {
            let totp = match guard.needs {
                TotpState::Enabled => lock_enabled(conn, guard.user_id)?,
                TotpState::Pending => match db::lock_totp(conn, guard.user_id)? {
                    Some(row) if row.confirmed_at.is_none() => row,
                    _ => return Err(AppError::Conflict("there is no pending TOTP enrollment")),
                },
            };
            let now = Utc::now();
            let request = CodeCheck {
                code: &guard.code,
                purpose: guard.purpose,
                client: &guard.client,
                now,
                secrets: &secrets,
            };
            let check = check_code(conn, &totp, &request)?;
            if check == Check::Accepted {
                change(conn, now)?;
                events::record(
                    conn,
                    &Event::new(guard.event, Some(guard.user_id)).from_client(&guard.client),
                )?;
            }
            Ok(check)
        })
    })
    .await?;
    answer(state, check)
}

/// The account's confirmed TOTP row, locked; 409 when TOTP is not enabled.
fn lock_enabled(conn: &mut PgConnection, user_id: Uuid) -> AppResult<TotpRow> {
    match db::lock_totp(conn, user_id)? {
        Some(row) if row.confirmed_at.is_some() => Ok(row),
        _ => Err(AppError::Conflict("TOTP is not enabled on this account")),
    }
}

/// Turns a check into the answer: accepted is `Ok`; refused is
/// `invalid_otp`; throttled is 429 with `Retry-After`.
fn answer(state: &AppState, check: Check) -> AppResult<()> {
    match check {
        Check::Accepted => Ok(()),
        Check::Refused(refusal) => {
            state.metrics.record_mfa_failure(refusal.as_str());
            log::debug!("one-time code refused: {}", refusal.as_str());
            Err(AppError::InvalidOtp)
        }
        Check::Throttled(retry_after) => {
            state.metrics.record_mfa_failure("throttled");
            Err(AppError::RateLimited { retry_after })
        }
    }
}

/// Checks one code against a locked TOTP row (see the module comment for
/// the order of the rules). A pending row is confirmed by its first right
/// code; a confirmed one moves its last used step. A refusal is counted in
/// the account's failure window and recorded as `mfa_failed`.
fn check_code(
    conn: &mut PgConnection,
    totp: &TotpRow,
    request: &CodeCheck<'_>,
) -> AppResult<Check> {
    let user_id = totp.user_id;
    if let Some((start, failures)) = db::failure_window(conn, user_id)? {
        let ends = start + Duration::seconds(i64::from(FAILURE_WINDOW_SECONDS));
        if failures >= MAX_FAILURES && ends > request.now {
            let wait = (ends - request.now).to_std().unwrap_or_default();
            return Ok(Check::Throttled(
                crate::limiter::Decision::retry_after_seconds(wait),
            ));
        }
    }
    let verdict = if totp::is_code_shaped(request.code) {
        let secret = request
            .secrets
            .open(user_id, &totp.secret_sealed)
            .ok_or_else(|| {
                AppError::internal("a TOTP secret does not open: was MFA_ENCRYPTION_KEY changed?")
            })?;
        let now_step = totp::step_at(u64::try_from(request.now.timestamp()).unwrap_or(0));
        match totp::matching_step(&secret, request.code, now_step)
            .and_then(|step| i64::try_from(step).ok())
        {
            None => Err(Refusal::Wrong),
            Some(step) => {
                let stepped = if totp.confirmed_at.is_some() {
                    db::consume_step(conn, user_id, step)?
                } else {
                    db::confirm(conn, user_id, step, request.now)? == 1
                };
                if stepped {
                    Ok(())
                } else {
                    Err(Refusal::Reused)
                }
            }
        }
    } else if let Some(normal) = request
        .purpose
        .accepts_recovery_code()
        .then(|| recovery_codes::normalize(request.code))
        .flatten()
    {
        let candidate = recovery_codes::hash_normalized(&normal);
        let stored = db::unused_recovery_hashes(conn, user_id)?;
        match recovery_codes::find_in(&candidate, &stored) {
            Some(_) if db::use_recovery_code(conn, user_id, &candidate, request.now)? => Ok(()),
            _ => Err(Refusal::Wrong),
        }
    } else {
        Err(Refusal::Malformed)
    };
    match verdict {
        Ok(()) => Ok(Check::Accepted),
        Err(refusal) => {
            db::count_failure(conn, user_id, request.now, FAILURE_WINDOW_SECONDS)?;
            events::record(
                conn,
                &Event::new(EventType::MfaFailed, Some(user_id))
                    .from_client(request.client)
                    .detail(serde_json::json!({
                        "purpose": request.purpose.as_str(),
                        "reason": refusal.as_str(),
                    })),
            )?;
            Ok(Check::Refused(refusal))
        }
    }
}
