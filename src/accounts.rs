//! Account use cases: register, log in, confirm a password, change it,
//! delete the account. Handlers parse and answer; this is what they call.

use actix_web::web;
use chrono::Utc;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::Connection;
use uuid::Uuid;

use crate::auth::refresh::{self, ClientInfo, Grant};
use crate::blocking::run_db;
use crate::db::models::{NewUser, User};
use crate::db::{sessions, users};
use crate::domain::{Password, Username};
use crate::error::{on_unique_violation, AppError, AppResult};
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

/// Checks a login. Any mismatch, including names that cannot exist, is
/// `invalid_credentials` after exactly one bcrypt run.
pub async fn authenticate(
    state: &web::Data<AppState>,
    username: &str,
    password: String,
) -> AppResult<User> {
    // Login checks no formats, but a name that cannot exist (NUL bytes,
    // 10 KiB) never reaches the database.
    let user = match Username::parse(username) {
        Ok(name) => {
            run_db(&state.pool, move |conn| {
                users::find_by_username(conn, name.as_str())
            })
            .await?
        }
        Err(_) => None,
    };
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let candidate = password.clone();
    let matches = state.passwords.verify(candidate, stored).await?;
    match user {
        Some(user) if matches => {
            if state.passwords.needs_rehash(&user.password_hash) {
                rehash_in_background(state, user.id, user.password_hash.clone(), password);
            }
            Ok(user)
        }
        _ => Err(AppError::InvalidCredentials),
    }
}

/// Starts a session (one per device) for an authenticated user.
pub async fn start_session(state: &AppState, user: User, client: ClientInfo) -> AppResult<Grant> {
    let policy = state.session_policy();
    run_db(&state.pool, move |conn| {
        refresh::start_session(conn, user, &client, policy).map_err(|err| match err {
            // The account was deleted between the password check and here.
            DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
                AppError::InvalidCredentials
            }
            other => other.into(),
        })
    })
    .await
}

/// Re-hashes a password at the configured cost after a successful login,
/// unless the password changed meanwhile (`old_hash` is no longer stored).
fn rehash_in_background(
    state: &web::Data<AppState>,
    user_id: Uuid,
    old_hash: String,
    password: String,
) {
    let Ok(password) = Password::parse(&password) else {
        return;
    };
    let state = web::Data::clone(state);
    actix_web::rt::spawn(async move {
        let result = async {
            let hash = state.passwords.hash(password).await?;
            run_db(&state.pool, move |conn| {
                users::replace_password_hash(conn, user_id, &old_hash, &hash)
            })
            .await
        }
        .await;
        if let Err(err) = result {
            log::warn!("rehashing the password of user {user_id} failed: {err}");
        }
    });
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

/// Stores a new password and revokes every session but `keep`, in one
/// transaction. `confirmed` is the account as [`confirm_password`] read it:
/// if its password changed since (a concurrent change won), this one is
/// refused as a wrong current password, exactly as it would be had it come
/// second, instead of overwriting the winner and revoking its session.
pub async fn change_password(
    state: &AppState,
    confirmed: User,
    keep: Uuid,
    new_password: Password,
) -> AppResult<()> {
    let hash = state.passwords.hash(new_password).await?;
    let user_id = confirmed.id;
    run_db(&state.pool, move |conn| {
        conn.transaction(|conn| {
            if users::replace_password_hash(conn, user_id, &confirmed.password_hash, &hash)? == 0 {
                return Err(match users::find(conn, user_id)? {
                    Some(_) => AppError::InvalidCredentials,
                    None => AppError::NotFound,
                });
            }
            sessions::revoke_all_for_user(conn, user_id, Some(keep), Utc::now())?;
            Ok(())
        })
    })
    .await
}

/// Deletes an account; its sessions and refresh tokens go by cascade.
pub async fn delete(state: &AppState, user_id: Uuid) -> AppResult<()> {
    let deleted = run_db(&state.pool, move |conn| users::delete(conn, user_id)).await?;
    if deleted == 0 {
        return Err(AppError::NotFound);
    }
    Ok(())
}
