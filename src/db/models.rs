//! Rows as diesel reads and writes them.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::db::schema::{refresh_tokens, sessions, users};

/// An account. `Debug` leaves out the password hash.
#[derive(Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct User {
    /// Primary key; the `sub` of its tokens.
    pub id: Uuid,
    /// Lower-cased username.
    pub username: String,
    /// bcrypt hash.
    pub password_hash: String,
    /// Roles copied into each new access token.
    pub roles: Vec<String>,
    /// Registration time.
    pub created_at: DateTime<Utc>,
    /// Last change (password, roles).
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

/// A new account to insert.
#[derive(Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    /// Primary key.
    pub id: Uuid,
    /// Lower-cased username.
    pub username: &'a str,
    /// bcrypt hash.
    pub password_hash: &'a str,
}

/// A login on one device.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = sessions, check_for_backend(diesel::pg::Pg))]
pub struct Session {
    /// Primary key; the `sid` of its tokens.
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// User-Agent at login.
    pub user_agent: Option<String>,
    /// Client IP at login.
    pub ip: Option<String>,
    /// Login time.
    pub created_at: DateTime<Utc>,
    /// Last login or refresh.
    pub last_used_at: DateTime<Utc>,
    /// Inactivity deadline; each refresh moves it.
    pub expires_at: DateTime<Utc>,
    /// Set when logged out or revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// RFC 8176 methods of the sign-in that started it (the `amr` claim).
    pub amr: Vec<String>,
    /// When that sign-in happened (the `auth_time` claim).
    pub auth_time: DateTime<Utc>,
}

impl Session {
    /// Whether refresh tokens of this session may still be used.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

/// A new session to insert.
#[derive(Debug, Insertable)]
#[diesel(table_name = sessions)]
pub struct NewSession<'a> {
    /// Primary key.
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// User-Agent at login.
    pub user_agent: Option<&'a str>,
    /// Client IP at login.
    pub ip: Option<&'a str>,
    /// Login time.
    pub created_at: DateTime<Utc>,
    /// Same as `created_at` at first.
    pub last_used_at: DateTime<Utc>,
    /// Inactivity deadline.
    pub expires_at: DateTime<Utc>,
    /// RFC 8176 methods of the sign-in.
    pub amr: &'a [String],
    /// When the sign-in happened.
    pub auth_time: DateTime<Utc>,
}

/// A refresh token, known only by its hash.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = refresh_tokens, check_for_backend(diesel::pg::Pg))]
pub struct RefreshTokenRow {
    /// SHA-256 of the token.
    pub token_hash: Vec<u8>,
    /// Session it belongs to.
    pub session_id: Uuid,
    /// Issue time.
    pub created_at: DateTime<Utc>,
    /// First use; `None` while live.
    pub spent_at: Option<DateTime<Utc>>,
    /// Successor sealed under a key derived from this token.
    pub sealed_successor: Option<Vec<u8>>,
}

/// A new refresh token to insert.
#[derive(Debug, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct NewRefreshToken<'a> {
    /// SHA-256 of the token.
    pub token_hash: &'a [u8],
    /// Session it belongs to.
    pub session_id: Uuid,
    /// Issue time.
    pub created_at: DateTime<Utc>,
}
