//! Queries on `users`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::db::models::{NewUser, User};
use crate::db::schema::users;

/// Inserts a user; a taken username surfaces as a unique violation on
/// `users_username_key`, which also settles registration races.
pub fn insert(conn: &mut PgConnection, new_user: &NewUser<'_>) -> QueryResult<User> {
    diesel::insert_into(users::table)
        .values(new_user)
        .returning(User::as_returning())
        .get_result(conn)
}

/// Finds a user by lower-cased username.
pub fn find_by_username(conn: &mut PgConnection, username: &str) -> QueryResult<Option<User>> {
    users::table
        .filter(users::username.eq(username))
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// Finds a user by lower-cased username and locks the row until the
/// transaction ends (read-modify-write of its roles).
pub fn find_by_username_for_update(
    conn: &mut PgConnection,
    username: &str,
) -> QueryResult<Option<User>> {
    users::table
        .filter(users::username.eq(username))
        .select(User::as_select())
        .for_update()
        .first(conn)
        .optional()
}

/// Finds a user by id.
pub fn find(conn: &mut PgConnection, id: Uuid) -> QueryResult<Option<User>> {
    users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// Finds a user by id and locks the row until the transaction ends: no
/// session can be started for the account meanwhile (its insert waits on
/// the foreign key), so deleting it can first revoke every session.
pub fn find_for_update(conn: &mut PgConnection, id: Uuid) -> QueryResult<Option<User>> {
    users::table
        .find(id)
        .select(User::as_select())
        .for_update()
        .first(conn)
        .optional()
}

/// Replaces a user's password hash if it is still `expected` (0 rows
/// otherwise): a change decided on an older read of the password, such as a
/// concurrent password change or a re-hash, must not overwrite a newer one.
pub fn replace_password_hash(
    conn: &mut PgConnection,
    id: Uuid,
    expected: &str,
    hash: &str,
) -> QueryResult<usize> {
    diesel::update(
        users::table
            .find(id)
            .filter(users::password_hash.eq(expected)),
    )
    .set((
        users::password_hash.eq(hash),
        users::updated_at.eq(Utc::now()),
    ))
    .execute(conn)
}

/// Deletes a user; sessions and refresh tokens go with it (cascade).
pub fn delete(conn: &mut PgConnection, id: Uuid) -> QueryResult<usize> {
    diesel::delete(users::table.find(id)).execute(conn)
}

/// Replaces a user's roles.
pub fn set_roles(conn: &mut PgConnection, id: Uuid, roles: &[String]) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set((users::roles.eq(roles), users::updated_at.eq(Utc::now())))
        .execute(conn)
}

/// One page of users ordered by `(created_at, id)`, after the cursor.
pub fn page(
    conn: &mut PgConnection,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> QueryResult<Vec<User>> {
    let mut query = users::table
        .select(User::as_select())
        .order((users::created_at.asc(), users::id.asc()))
        .limit(limit)
        .into_boxed();
    if let Some((created_at, id)) = after {
        query = query.filter(
            users::created_at
                .gt(created_at)
                .or(users::created_at.eq(created_at).and(users::id.gt(id))),
        );
    }
    query.load(conn)
}
