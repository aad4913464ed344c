//! Email on the account: set an address (verified by a mailed token),
//! verify it, ask for a password reset, reset the password. Each change
//! and the mail it causes commit together: the mail is an outbox row
//! written in the change's transaction and sent later by the outbox worker
//! (README "Email"), so no request waits on, or fails because of, SMTP.

use chrono::{Duration, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::auth::one_time_token::{OneTimeToken, TokenKind};
use crate::blocking::run_db;
use crate::db::email::{self as email_db, NewOneTimeToken};
use crate::db::{sessions, users};
use crate::domain::{EmailAddress, Password};
use crate::error::{on_unique_violation, AppError, AppResult};
use crate::jobs::mail::{self, Mail, MailContent};
use crate::jobs::outbox;
use crate::services::accounts;
use crate::services::events::{self, Event, EventType};
use crate::services::sessions::ClientInfo;
use crate::state::AppState;

/// At most one reset mail per account in this long.
pub const RESET_MAIL_INTERVAL_SECONDS: i64 = 60;

/// The unique index that keeps one address on one account.
const EMAIL_INDEX: &str = "users_email_lower_key";

/// Sets the caller's address (unverified) after checking the password,
/// and queues a verification mail in the same transaction. Another account
/// holding the address in any case is 409 `conflict`.
pub async fn set_address(
    state: &AppState,
    user_id: Uuid,
    password: String,
    email: EmailAddress,
) -> AppResult<()> {
    accounts::confirm_password(state, user_id, password).await?;
    let content = mail_content(state);
    run_db(&state.pool, move |conn| {
        conn.transaction(|conn| {
            let changed =
                email_db::set_unverified(conn, user_id, email.as_str()).map_err(|err| {
                    on_unique_violation(
                        err,
                        EMAIL_INDEX,
                        AppError::Conflict("That email address is used by another account."),
                    )
                })?;
            if changed == 0 {
                return Err(AppError::NotFound);
            }
            let account = email_db::address(conn, user_id)?.ok_or(AppError::NotFound)?;
            let now = Utc::now();
            // Codes mailed for an earlier address die with it.
            email_db::use_all_tokens(conn, user_id, TokenKind::VerifyEmail.as_str(), now)?;
            let token = issue_token(conn, TokenKind::VerifyEmail, user_id, email.as_str())?;
            let mail = content.verification(email.as_str(), &account.username, token.expose());
            queue(conn, user_id, &mail)?;
            Ok(())
        })
    })
    .await
}

/// Marks the address a verification token was mailed to as verified. A
/// wrong, used or expired token, or one for an address the account no
/// longer has, is 401 `invalid_otp`.
pub async fn verify(state: &AppState, token: OneTimeToken, client: ClientInfo) -> AppResult<()> {
    run_db(&state.pool, move |conn| {
        conn.transaction(|conn| {
            let kind = TokenKind::VerifyEmail.as_str();
            let now = Utc::now();
            let row = email_db::find_token_for_update(conn, &token.lookup_hash(), kind)?
                .filter(|row| row.is_usable(now))
                .ok_or(AppError::InvalidOtp)?;
            if email_db::mark_verified(conn, row.user_id, &row.email)? == 0 {
                return Err(AppError::InvalidOtp);
            }
            email_db::use_all_tokens(conn, row.user_id, kind, now)?;
            events::record(
                conn,
                &Event::new(EventType::EmailVerified, Some(row.user_id)).from_client(&client),
            )?;
            Ok(())
        })
    })
    .await
}

/// Queues a reset mail when `login` (a username or an address) names an
/// account with a verified address that got no reset mail in the last
/// minute. Whatever the outcome, the caller answers the same: the same
/// queries run whether or not an account matched.
pub async fn request_reset(state: &AppState, login: String, client: ClientInfo) -> AppResult<()> {
    // A NUL byte cannot reach PostgreSQL, and nothing longer can match.
    let login = if login.contains('\0') || login.len() > EmailAddress::MAX_BYTES {
        String::new()
    } else {
        login
    };
    let content = mail_content(state);
    run_db(&state.pool, move |conn| {
        conn.transaction(|conn| {
            let kind = TokenKind::ResetPassword;
            // The row lock serialises concurrent requests for one account,
            // so the one-per-minute check below cannot be raced.
            let account = email_db::find_by_login_for_update(conn, &login)?;
            let user_id = account.as_ref().map_or(Uuid::nil(), |a| a.id);
            let latest = email_db::latest_token_at(conn, user_id, kind.as_str())?;
            let now = Utc::now();
            let recently =
                latest.is_some_and(|at| now - at < Duration::seconds(RESET_MAIL_INTERVAL_SECONDS));
            let Some(account) = account.filter(|a| a.email_verified && !recently) else {
                return Ok(());
            };
            let Some(address) = account.email.clone() else {
                return Ok(());
            };
            let token = issue_token(conn, kind, account.id, &address)?;
            let mail = content.password_reset(&address, &account.username, token.expose());
            queue(conn, account.id, &mail)?;
            events::record(
                conn,
                &Event::new(EventType::PasswordResetRequested, Some(account.id))
                    .from_client(&client),
            )?;
            Ok::<_, AppError>(())
        })
    })
    .await
}

/// Sets a new password with a mailed reset token and revokes every session
/// of the account. The token is checked before the password (whose rule
/// may depend on the account), and used only when the reset succeeds.
pub async fn reset_password(
    state: &AppState,
    token: OneTimeToken,
    new_password: &str,
    client: ClientInfo,
) -> AppResult<()> {
    let kind = TokenKind::ResetPassword.as_str();
    let hash = token.lookup_hash();
    let now = Utc::now();
    let username = run_db(&state.pool, move |conn| {
        let Some(row) = email_db::find_token(conn, &hash, kind)?.filter(|row| row.is_usable(now))
        else {
            return Ok(None);
        };
        Ok::<_, diesel::result::Error>(users::find(conn, row.user_id)?.map(|user| user.username))
    })
    .await?
    .ok_or(AppError::InvalidOtp)?;
    // Register's rule, common passwords and the username included.
    let password = Password::parse_for(&username, new_password)
        .map_err(|reason| AppError::field("new_password", reason))?;
    let password_hash = state.passwords.hash(password).await?;
    let revoked = run_db(&state.pool, move |conn| {
        conn.transaction(|conn| {
            let now = Utc::now();
            // Locked and checked again: two resets with one token race here.
            let row = email_db::find_token_for_update(conn, &hash, kind)?
                .filter(|row| row.is_usable(now))
                .ok_or(AppError::InvalidOtp)?;
            let user = users::find(conn, row.user_id)?.ok_or(AppError::InvalidOtp)?;
            if users::replace_password_hash(conn, user.id, &user.password_hash, &password_hash)?
                == 0
            {
                // Changed between the read and the write: let the client retry.
                return Err(AppError::Unavailable(
                    "password changed concurrently".into(),
                ));
            }
            email_db::use_all_tokens(conn, user.id, kind, now)?;
            let revoked = sessions::revoke_all_for_user(conn, user.id, None, now)?;
            events::record(
                conn,
                &Event::new(EventType::PasswordReset, Some(user.id)).from_client(&client),
            )?;
            Ok(revoked)
        })
    })
    .await?;
    // Refused here at once; other instances hear of it through NOTIFY.
    state.revoked_sessions.insert_all(&revoked);
    Ok(())
}

/// What mails need from the settings.
fn mail_content(state: &AppState) -> MailContent {
    MailContent {
        reset_url: state.settings.password_reset_url.clone(),
    }
}

/// Generates a token of `kind` for the account and stores its hash.
fn issue_token(
    conn: &mut PgConnection,
    kind: TokenKind,
    user_id: Uuid,
    email: &str,
) -> QueryResult<OneTimeToken> {
    let token = OneTimeToken::generate();
    let now = Utc::now();
    email_db::insert_token(
        conn,
        &NewOneTimeToken {
            token_hash: &token.lookup_hash(),
            kind: kind.as_str(),
            user_id,
            email,
            created_at: now,
            expires_at: now + kind.lifetime(),
        },
    )?;
    Ok(token)
}

/// Writes a mail into the outbox, inside the caller's transaction.
fn queue(conn: &mut PgConnection, user_id: Uuid, mail: &Mail) -> AppResult<()> {
    let payload = serde_json::to_value(mail).map_err(AppError::internal)?;
    outbox::enqueue(conn, mail::KIND, Some(user_id), &payload)?;
    Ok(())
}
