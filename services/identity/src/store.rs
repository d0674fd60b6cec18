//! Every SQL statement of identity.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// An account row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccountRow {
    /// Id.
    pub id: Uuid,
    /// Display name.
    pub display_name: String,
    /// ACTIVE, SUSPENDED, MERGED or DISABLED.
    pub state: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A user row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    /// Id.
    pub id: Uuid,
    /// Sign-in email as entered.
    pub email: String,
    /// First name.
    pub given_name: String,
    /// Last name.
    pub family_name: String,
    /// Locale.
    pub locale: String,
    /// PHC string.
    pub password_hash: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A new user.
#[derive(Debug)]
pub struct NewUser<'a> {
    /// Id.
    pub id: Uuid,
    /// Email as entered.
    pub email: &'a str,
    /// Normalized email.
    pub email_normalized: &'a str,
    /// First name.
    pub given_name: &'a str,
    /// Last name.
    pub family_name: &'a str,
    /// Locale.
    pub locale: &'a str,
    /// PHC string.
    pub password_hash: &'a str,
}

/// Inserts a user; `Ok(None)` when the email is taken.
pub async fn insert_user(
    tx: &mut PgConnection,
    user: &NewUser<'_>,
) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(
        "INSERT INTO users (id, email, email_normalized, given_name, family_name, locale, password_hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (email_normalized) DO NOTHING
         RETURNING id, email, given_name, family_name, locale, password_hash, created_at",
    )
    .bind(user.id)
    .bind(user.email)
    .bind(user.email_normalized)
    .bind(user.given_name)
    .bind(user.family_name)
    .bind(user.locale)
    .bind(user.password_hash)
    .fetch_optional(&mut *tx)
    .await
}

/// Inserts an account.
pub async fn insert_account(
    tx: &mut PgConnection,
    id: Uuid,
    display_name: &str,
    created_by: Uuid,
) -> sqlx::Result<AccountRow> {
    sqlx::query_as(
        "INSERT INTO accounts (id, display_name, created_by) VALUES ($1, $2, $3)
         RETURNING id, display_name, state, created_at",
    )
    .bind(id)
    .bind(display_name)
    .bind(created_by)
    .fetch_one(&mut *tx)
    .await
}

/// Makes a user a member of an account with `roles`.
pub async fn insert_membership(
    tx: &mut PgConnection,
    account_id: Uuid,
    user_id: Uuid,
    roles: &[String],
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO memberships (account_id, user_id, roles) VALUES ($1, $2, $3)")
        .bind(account_id)
        .bind(user_id)
        .bind(roles)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// The user with this normalized email.
pub async fn user_by_email(pool: &PgPool, email_normalized: &str) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(
        "SELECT id, email, given_name, family_name, locale, password_hash, created_at
         FROM users WHERE email_normalized = $1",
    )
    .bind(email_normalized)
    .fetch_optional(pool)
    .await
}

/// A user's membership of `account_id` (or of their first account when
/// `None`): the account and the roles there.
pub async fn membership(
    pool: &PgPool,
    user_id: Uuid,
    account_id: Option<Uuid>,
) -> sqlx::Result<Option<(AccountRow, Vec<String>)>> {
    let row: Option<MembershipRow> = sqlx::query_as(
        "SELECT a.id, a.display_name, a.state, a.created_at, m.roles
         FROM memberships m JOIN accounts a ON a.id = m.account_id
         WHERE m.user_id = $1 AND ($2::uuid IS NULL OR m.account_id = $2)
         ORDER BY m.created_at, a.id LIMIT 1",
    )
    .bind(user_id)
    .bind(account_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| (r.account, r.roles)))
}

#[derive(sqlx::FromRow)]
struct MembershipRow {
    #[sqlx(flatten)]
    account: AccountRow,
    roles: Vec<String>,
}

/// An account by id.
pub async fn account(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<AccountRow>> {
    sqlx::query_as("SELECT id, display_name, state, created_at FROM accounts WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}
