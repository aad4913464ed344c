//! Queries on `passkeys` and `webauthn_challenges` (README "Passkeys").

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::db::schema::{passkeys, webauthn_challenges};

/// A registered passkey.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = passkeys, check_for_backend(diesel::pg::Pg))]
pub struct PasskeyRow {
    /// Primary key (`passkey_id` in the API).
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// The authenticator's credential id.
    pub credential_id: Vec<u8>,
    /// webauthn-rs' serialised `Passkey`.
    pub passkey: serde_json::Value,
    /// Last signature counter seen.
    pub sign_count: i64,
    /// The credential may be synced to other devices.
    pub backup_eligible: bool,
    /// The credential is synced now.
    pub backup_state: bool,
    /// The owner's label.
    pub name: String,
    /// Registration time.
    pub created_at: DateTime<Utc>,
    /// Last sign-in with it.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A passkey to insert.
#[derive(Debug, Insertable)]
#[diesel(table_name = passkeys)]
pub struct NewPasskey<'a> {
    /// Primary key.
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// The authenticator's credential id.
    pub credential_id: &'a [u8],
    /// webauthn-rs' serialised `Passkey`.
    pub passkey: &'a serde_json::Value,
    /// Signature counter at registration.
    pub sign_count: i64,
    /// Backup eligibility flag.
    pub backup_eligible: bool,
    /// Backup state flag.
    pub backup_state: bool,
    /// The owner's label.
    pub name: &'a str,
    /// Registration time.
    pub created_at: DateTime<Utc>,
}

/// A ceremony in flight.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webauthn_challenges, check_for_backend(diesel::pg::Pg))]
pub struct ChallengeRow {
    /// Primary key (`challenge_id` in the API).
    pub id: Uuid,
    /// `registration` or `authentication`.
    pub kind: String,
    /// The registering user; none for a sign-in.
    pub user_id: Option<Uuid>,
    /// webauthn-rs' serialised ceremony state.
    pub state: serde_json::Value,
    /// After this the challenge is refused.
    pub expires_at: DateTime<Utc>,
}

/// A new ceremony to store.
#[derive(Debug, Insertable)]
#[diesel(table_name = webauthn_challenges)]
pub struct NewChallenge<'a> {
    /// Primary key.
    pub id: Uuid,
    /// `registration` or `authentication`.
    pub kind: &'a str,
    /// The registering user; none for a sign-in.
    pub user_id: Option<Uuid>,
    /// webauthn-rs' serialised ceremony state.
    pub state: &'a serde_json::Value,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

/// Stores a challenge, first dropping every expired one (the table stays
/// as small as the ceremonies in flight; the index on `expires_at` keeps
/// this cheap).
pub fn insert_challenge(conn: &mut PgConnection, new: &NewChallenge<'_>) -> QueryResult<()> {
    diesel::delete(
        webauthn_challenges::table.filter(webauthn_challenges::expires_at.lt(Utc::now())),
    )
    .execute(conn)?;
    diesel::insert_into(webauthn_challenges::table)
        .values(new)
        .execute(conn)?;
    Ok(())
}

/// Deletes a challenge and returns it: whoever deletes it owns it, so of
/// two concurrent finishes exactly one gets the row.
pub fn take_challenge(conn: &mut PgConnection, id: Uuid) -> QueryResult<Option<ChallengeRow>> {
    diesel::delete(webauthn_challenges::table.find(id))
        .returning(ChallengeRow::as_returning())
        .get_result(conn)
        .optional()
}

/// Inserts a passkey; a credential id that exists already surfaces as a
/// unique violation on `passkeys_credential_id_key`.
pub fn insert(conn: &mut PgConnection, new: &NewPasskey<'_>) -> QueryResult<PasskeyRow> {
    diesel::insert_into(passkeys::table)
        .values(new)
        .returning(PasskeyRow::as_returning())
        .get_result(conn)
}

/// A user's passkeys, oldest first.
pub fn for_user(conn: &mut PgConnection, user_id: Uuid) -> QueryResult<Vec<PasskeyRow>> {
    passkeys::table
        .filter(passkeys::user_id.eq(user_id))
        .order((passkeys::created_at.asc(), passkeys::id.asc()))
        .select(PasskeyRow::as_select())
        .load(conn)
}

/// How many passkeys a user has.
pub fn count_for_user(conn: &mut PgConnection, user_id: Uuid) -> QueryResult<i64> {
    passkeys::table
        .filter(passkeys::user_id.eq(user_id))
        .count()
        .get_result(conn)
}

/// Whether a credential id is registered (to anyone).
pub fn credential_exists(conn: &mut PgConnection, credential_id: &[u8]) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        passkeys::table.filter(passkeys::credential_id.eq(credential_id)),
    ))
    .get_result(conn)
}

/// Finds a passkey by credential id and locks it until the transaction
/// ends, so concurrent sign-ins check and move its counter one at a time.
pub fn lock_by_credential(
    conn: &mut PgConnection,
    credential_id: &[u8],
) -> QueryResult<Option<PasskeyRow>> {
    passkeys::table
        .filter(passkeys::credential_id.eq(credential_id))
        .select(PasskeyRow::as_select())
        .for_update()
        .first(conn)
        .optional()
}

/// Stores what a sign-in changed: the credential, its counter and backup
/// flags, and when it was used.
pub fn record_use(
    conn: &mut PgConnection,
    id: Uuid,
    passkey: &serde_json::Value,
    sign_count: i64,
    backup_eligible: bool,
    backup_state: bool,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(passkeys::table.find(id))
        .set((
            passkeys::passkey.eq(passkey),
            passkeys::sign_count.eq(sign_count),
            passkeys::backup_eligible.eq(backup_eligible),
            passkeys::backup_state.eq(backup_state),
            passkeys::last_used_at.eq(now),
        ))
        .execute(conn)
}

/// Deletes one of the user's passkeys (0 rows when it is not theirs).
pub fn delete_owned(conn: &mut PgConnection, user_id: Uuid, id: Uuid) -> QueryResult<usize> {
    diesel::delete(
        passkeys::table
            .find(id)
            .filter(passkeys::user_id.eq(user_id)),
    )
    .execute(conn)
}
