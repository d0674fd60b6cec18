//! Users and memberships.

use std::collections::BTreeMap;

use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use super::{MEMBER_COLUMNS, MemberRow, USER_COLUMNS, UserRow};

/// A new user.
#[derive(Debug)]
pub struct NewUser<'a> {
    /// Id.
    pub id: Uuid,
    /// Email as entered.
    pub email: &'a str,
    /// First name.
    pub given_name: &'a str,
    /// Last name.
    pub family_name: &'a str,
    /// Locale.
    pub locale: &'a str,
    /// PHC string (`None` for an invited user).
    pub password_hash: Option<&'a str>,
    /// Home directory (`None` for a user who joined by invitation and has
    /// no company of their own yet).
    pub home_account: Option<Uuid>,
    /// Must change the password at first sign-in.
    pub must_change_password: bool,
}

/// Inserts a user; `Ok(None)` when the email is taken.
pub async fn insert_user(
    conn: &mut PgConnection,
    user: &NewUser<'_>,
) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO users AS u (id, email, email_normalized, given_name, family_name, locale, password_hash,
                           home_account_id, must_change_password)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (email_normalized) DO NOTHING
         RETURNING {USER_COLUMNS}"
    )))
    .bind(user.id)
    .bind(user.email)
    .bind(crate::domain::normalize_email(user.email))
    .bind(user.given_name)
    .bind(user.family_name)
    .bind(user.locale)
    .bind(user.password_hash)
    .bind(user.home_account)
    .bind(user.must_change_password)
    .fetch_optional(conn)
    .await
}

/// The user with this email (compared normalized).
pub async fn user_by_email(conn: &mut PgConnection, email: &str) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE u.email_normalized = $1"
    )))
    .bind(crate::domain::normalize_email(email))
    .fetch_optional(conn)
    .await
}

/// Which of `emails` (normalized) already belong to users.
pub async fn taken_emails(conn: &mut PgConnection, emails: &[String]) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT email_normalized FROM users WHERE email_normalized = ANY($1)")
        .bind(emails)
        .fetch_all(conn)
        .await
}

/// A user by id.
pub async fn user(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Adds a membership (or, for an existing INVITED/DELETED one, resets it).
pub async fn upsert_membership(
    conn: &mut PgConnection,
    account: Uuid,
    user: Uuid,
    roles: &[String],
    scopes: &BTreeMap<String, Vec<String>>,
    state: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO memberships (account_id, user_id, roles, scopes, state) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (account_id, user_id) DO UPDATE SET
             roles = EXCLUDED.roles, scopes = EXCLUDED.scopes, state = EXCLUDED.state,
             version = memberships.version + 1",
    )
    .bind(account)
    .bind(user)
    .bind(roles)
    .bind(Json(scopes))
    .bind(state)
    .execute(conn)
    .await?;
    Ok(())
}

/// One member.
pub async fn member(
    conn: &mut PgConnection,
    account: Uuid,
    user: Uuid,
) -> sqlx::Result<Option<MemberRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {MEMBER_COLUMNS} FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.account_id = $1 AND m.user_id = $2"
    )))
    .bind(account)
    .bind(user)
    .fetch_optional(conn)
    .await
}

/// Filters of a member listing.
#[derive(Debug, Default)]
pub struct Filter {
    /// Holding this role.
    pub role: Option<String>,
    /// In this state.
    pub state: Option<String>,
    /// Keyset: user ids after this.
    pub after: Option<Uuid>,
}

/// Members of an account by user id.
pub async fn list(
    conn: &mut PgConnection,
    account: Uuid,
    filter: &Filter,
    limit: i64,
) -> sqlx::Result<Vec<MemberRow>> {
    // The page is cut from the memberships first and only then joined to
    // users, and the keyset has no OR (it stays a range of the primary key
    // even in a generic plan): a page costs the same at any depth, where a
    // join first merged users from the start of their index.
    let keyset = match filter.after {
        Some(_) => "m.user_id > $4",
        None => "$4::uuid IS NULL",
    };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {MEMBER_COLUMNS} FROM (
             SELECT * FROM memberships m
             WHERE m.account_id = $1
               AND ($2::text IS NULL OR m.roles @> ARRAY[$2::text])
               AND ($3::text IS NULL OR m.state = $3)
               AND {keyset}
             ORDER BY m.user_id LIMIT $5) m
         JOIN users u ON u.id = m.user_id
         ORDER BY m.user_id"
    )))
    .bind(account)
    .bind(&filter.role)
    .bind(&filter.state)
    .bind(filter.after)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Replaces a member's roles and scopes; returns the new version.
pub async fn set_roles(
    conn: &mut PgConnection,
    account: Uuid,
    user: Uuid,
    roles: &[String],
    scopes: &BTreeMap<String, Vec<String>>,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "UPDATE memberships SET roles = $3, scopes = $4, version = version + 1
         WHERE account_id = $1 AND user_id = $2 RETURNING version",
    )
    .bind(account)
    .bind(user)
    .bind(roles)
    .bind(Json(scopes))
    .fetch_one(conn)
    .await
}

/// Sets a membership's state.
pub async fn set_state(
    conn: &mut PgConnection,
    account: Uuid,
    user: Uuid,
    state: &str,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE memberships SET state = $3, version = version + 1 WHERE account_id = $1 AND user_id = $2")
        .bind(account)
        .bind(user)
        .bind(state)
        .execute(conn)
        .await?;
    Ok(())
}

/// Removes a membership.
pub async fn delete(conn: &mut PgConnection, account: Uuid, user: Uuid) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM memberships WHERE account_id = $1 AND user_id = $2")
        .bind(account)
        .bind(user)
        .execute(conn)
        .await?;
    Ok(())
}

/// Active Global admins of an account (call with the account locked).
pub async fn count_global_admins(conn: &mut PgConnection, account: Uuid) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.account_id = $1 AND m.state = 'ACTIVE' AND u.deleted_at IS NULL
           AND m.roles @> ARRAY['global_admin']",
    )
    .bind(account)
    .fetch_one(conn)
    .await
}

/// Accounts where `user` is an active Global admin, locked for the
/// transaction (in id order), each with how many active Global admins it has.
pub async fn global_admin_accounts(
    conn: &mut PgConnection,
    user: Uuid,
) -> sqlx::Result<Vec<(Uuid, i64)>> {
    let accounts: Vec<Uuid> = sqlx::query_scalar(
        "SELECT a.id FROM accounts a JOIN memberships m ON m.account_id = a.id
         WHERE m.user_id = $1 AND m.state = 'ACTIVE' AND m.roles @> ARRAY['global_admin']
         ORDER BY a.id FOR UPDATE OF a",
    )
    .bind(user)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(accounts.len());
    for account in accounts {
        out.push((account, count_global_admins(conn, account).await?));
    }
    Ok(out)
}

/// The active accounts other than `except` where `user` holds an active
/// membership and `admin` is not an active Global admin: the accounts a
/// password of `user` opens that `admin` does not already hold.
pub async fn accounts_opened_beyond(
    conn: &mut PgConnection,
    user: Uuid,
    except: Uuid,
    admin: Option<Uuid>,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "SELECT a.id FROM accounts a JOIN memberships m ON m.account_id = a.id
         WHERE m.user_id = $1 AND m.state = 'ACTIVE' AND a.state = 'ACTIVE' AND a.id <> $2
           AND NOT EXISTS (
               SELECT 1 FROM memberships g
               WHERE g.account_id = a.id AND g.user_id = $3 AND g.state = 'ACTIVE'
                 AND g.roles @> ARRAY['global_admin'])
         ORDER BY a.id",
    )
    .bind(user)
    .bind(except)
    .bind(admin)
    .fetch_all(conn)
    .await
}

/// Sets a password hash and whether it must be changed.
pub async fn set_password(
    conn: &mut PgConnection,
    user: Uuid,
    hash: &str,
    must_change: bool,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE users SET password_hash = $2, must_change_password = $3, version = version + 1 WHERE id = $1",
    )
    .bind(user)
    .bind(hash)
    .bind(must_change)
    .execute(conn)
    .await?;
    Ok(())
}

/// Completes an invited user's profile.
pub async fn set_names(
    conn: &mut PgConnection,
    user: Uuid,
    given: &str,
    family: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE users SET given_name = $2, family_name = $3, version = version + 1 WHERE id = $1",
    )
    .bind(user)
    .bind(given)
    .bind(family)
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets a user's home directory (`None`: none).
pub async fn set_home(conn: &mut PgConnection, user: Uuid, home: Option<Uuid>) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET home_account_id = $2, version = version + 1 WHERE id = $1")
        .bind(user)
        .bind(home)
        .execute(conn)
        .await?;
    Ok(())
}

/// Makes `account` the home directory of a user who has none (a user who
/// joined by invitation and now creates their own company).
pub async fn claim_home(conn: &mut PgConnection, user: Uuid, account: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE users SET home_account_id = $2, version = version + 1
         WHERE id = $1 AND home_account_id IS NULL",
    )
    .bind(user)
    .bind(account)
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes a user from the directory: they can no longer sign in; their
/// memberships stay, as DELETED.
pub async fn delete_from_directory(conn: &mut PgConnection, user: Uuid) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET deleted_at = now(), version = version + 1 WHERE id = $1")
        .bind(user)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE memberships SET state = 'DELETED', version = version + 1 WHERE user_id = $1",
    )
    .bind(user)
    .execute(conn)
    .await?;
    Ok(())
}

/// Profile fields a user may change.
#[derive(Debug)]
pub struct ProfileChange<'a> {
    /// First name.
    pub given_name: &'a str,
    /// Last name.
    pub family_name: &'a str,
    /// Locale.
    pub locale: &'a str,
    /// Alternate email (`None` clears it).
    pub alternate_email: Option<&'a str>,
}

/// Updates a user's own profile.
pub async fn update_profile(
    conn: &mut PgConnection,
    user: Uuid,
    change: &ProfileChange<'_>,
) -> sqlx::Result<UserRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE users u SET given_name = $2, family_name = $3, locale = $4, alternate_email = $5,
                version = version + 1
         WHERE u.id = $1 RETURNING {USER_COLUMNS}"
    )))
    .bind(user)
    .bind(change.given_name)
    .bind(change.family_name)
    .bind(change.locale)
    .bind(change.alternate_email)
    .fetch_one(conn)
    .await
}

/// Memberships of `source` (every state), for a merge.
pub async fn of_account(conn: &mut PgConnection, account: Uuid) -> sqlx::Result<Vec<MemberRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {MEMBER_COLUMNS} FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.account_id = $1 ORDER BY m.user_id"
    )))
    .bind(account)
    .fetch_all(conn)
    .await
}
