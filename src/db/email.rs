//! Queries for email on the account: the address columns of `users` and
//! the `one_time_tokens` mailed to verify it or reset the password.

use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use uuid::Uuid;

use crate::db::schema::{one_time_tokens, users};

/// The address columns of one account.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct AccountAddress {
    /// The account.
    pub id: Uuid,
    /// Lower-cased username (for the mail's greeting).
    pub username: String,
    /// The address, as entered.
    pub email: Option<String>,
    /// Whether it was verified.
    pub email_verified: bool,
}

/// A stored one-time token (only its hash).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = one_time_tokens, check_for_backend(diesel::pg::Pg))]
pub struct OneTimeTokenRow {
    /// SHA-256 of the token.
    pub token_hash: Vec<u8>,
    /// `verify_email` or `reset_password`.
    pub kind: String,
    /// Whose account.
    pub user_id: Uuid,
    /// The address it verifies, or the one the reset mail went to.
    pub email: String,
    /// When it was mailed.
    pub created_at: DateTime<Utc>,
    /// Not usable from then on.
    pub expires_at: DateTime<Utc>,
    /// Set once used.
    pub used_at: Option<DateTime<Utc>>,
}

impl OneTimeTokenRow {
    /// Whether the token may still be used.
    pub fn is_usable(&self, now: DateTime<Utc>) -> bool {
        self.used_at.is_none() && self.expires_at > now
    }
}

/// A new token to store.
#[derive(Debug, Insertable)]
#[diesel(table_name = one_time_tokens)]
pub struct NewOneTimeToken<'a> {
    /// SHA-256 of the token.
    pub token_hash: &'a [u8],
    /// `verify_email` or `reset_password`.
    pub kind: &'a str,
    /// Whose account.
    pub user_id: Uuid,
    /// The address concerned.
    pub email: &'a str,
    /// Now.
    pub created_at: DateTime<Utc>,
    /// Now plus the kind's lifetime.
    pub expires_at: DateTime<Utc>,
}

/// The address of an account (none once it was deleted).
pub fn address(conn: &mut PgConnection, user_id: Uuid) -> QueryResult<Option<AccountAddress>> {
    users::table
        .find(user_id)
        .select(AccountAddress::as_select())
        .first(conn)
        .optional()
}

/// Sets an account's address, unverified. Another account holding the
/// same address in any case is a unique violation on
/// `users_email_lower_key`. Returns the rows changed (0: no such account).
pub fn set_unverified(conn: &mut PgConnection, user_id: Uuid, email: &str) -> QueryResult<usize> {
    diesel::update(users::table.find(user_id))
        .set((
            users::email.eq(email),
            users::email_verified.eq(false),
            users::updated_at.eq(Utc::now()),
        ))
        .execute(conn)
}

/// Marks the account's address verified if it is still `email` (compared
/// case-insensitively). Returns the rows changed.
pub fn mark_verified(conn: &mut PgConnection, user_id: Uuid, email: &str) -> QueryResult<usize> {
    diesel::update(
        users::table.find(user_id).filter(
            sql::<Bool>("lower(email) = lower(")
                .bind::<Text, _>(email)
                .sql(")"),
        ),
    )
    .set((
        users::email_verified.eq(true),
        users::updated_at.eq(Utc::now()),
    ))
    .execute(conn)
}

/// The account whose username is `login` (lower-cased) or whose address is
/// `login` in any case, locked until the transaction ends.
pub fn find_by_login_for_update(
    conn: &mut PgConnection,
    login: &str,
) -> QueryResult<Option<AccountAddress>> {
    users::table
        .filter(
            users::username
                .eq(login.to_lowercase())
                .or(sql::<Bool>("lower(email) = lower(")
                    .bind::<Text, _>(login)
                    .sql(")")),
        )
        .select(AccountAddress::as_select())
        .for_update()
        .first(conn)
        .optional()
}

/// Stores a token.
pub fn insert_token(conn: &mut PgConnection, token: &NewOneTimeToken<'_>) -> QueryResult<usize> {
    diesel::insert_into(one_time_tokens::table)
        .values(token)
        .execute(conn)
}

/// The token with this hash and kind, locked until the transaction ends.
pub fn find_token_for_update(
    conn: &mut PgConnection,
    hash: &[u8],
    kind: &str,
) -> QueryResult<Option<OneTimeTokenRow>> {
    one_time_tokens::table
        .find(hash)
        .filter(one_time_tokens::kind.eq(kind))
        .select(OneTimeTokenRow::as_select())
        .for_update()
        .first(conn)
        .optional()
}

/// The token with this hash and kind, unlocked (a check before bcrypt).
pub fn find_token(
    conn: &mut PgConnection,
    hash: &[u8],
    kind: &str,
) -> QueryResult<Option<OneTimeTokenRow>> {
    one_time_tokens::table
        .find(hash)
        .filter(one_time_tokens::kind.eq(kind))
        .select(OneTimeTokenRow::as_select())
        .first(conn)
        .optional()
}

/// When the newest token of this kind was mailed to the account, if ever.
pub fn latest_token_at(
    conn: &mut PgConnection,
    user_id: Uuid,
    kind: &str,
) -> QueryResult<Option<DateTime<Utc>>> {
    one_time_tokens::table
        .filter(one_time_tokens::user_id.eq(user_id))
        .filter(one_time_tokens::kind.eq(kind))
        .select(diesel::dsl::max(one_time_tokens::created_at))
        .first(conn)
}

/// Marks every unused token of this kind of the account used (a token was
/// just used, or a new address replaces the one they were for).
pub fn use_all_tokens(
    conn: &mut PgConnection,
    user_id: Uuid,
    kind: &str,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(
        one_time_tokens::table
            .filter(one_time_tokens::user_id.eq(user_id))
            .filter(one_time_tokens::kind.eq(kind))
            .filter(one_time_tokens::used_at.is_null()),
    )
    .set(one_time_tokens::used_at.eq(now))
    .execute(conn)
}
