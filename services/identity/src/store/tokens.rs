//! Refresh tokens, one-time tokens and sign-in failures. Tokens are looked
//! up by their hash only.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// A stored refresh token.
#[derive(Debug, sqlx::FromRow)]
pub struct RefreshRow {
    /// Family (one sign-in).
    pub family_id: Uuid,
    /// User.
    pub user_id: Uuid,
    /// Account of the session.
    pub account_id: Uuid,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// When it was exchanged (spent).
    pub used_at: Option<DateTime<Utc>>,
    /// When its family was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Stores a refresh token.
pub async fn insert_refresh(
    conn: &mut PgConnection,
    hash: &[u8],
    family: Uuid,
    user: Uuid,
    account: Uuid,
    expires_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, family_id, user_id, account_id, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(hash)
    .bind(family)
    .bind(user)
    .bind(account)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A refresh token by hash, locked for the transaction.
pub async fn lock_refresh(
    conn: &mut PgConnection,
    hash: &[u8],
) -> sqlx::Result<Option<RefreshRow>> {
    sqlx::query_as(
        "SELECT family_id, user_id, account_id, expires_at, used_at, revoked_at
         FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
    )
    .bind(hash)
    .fetch_optional(conn)
    .await
}

/// Marks a refresh token spent.
pub async fn spend_refresh(conn: &mut PgConnection, hash: &[u8]) -> sqlx::Result<()> {
    sqlx::query("UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1")
        .bind(hash)
        .execute(conn)
        .await?;
    Ok(())
}

/// Seconds after its last token was issued that a session may still hold
/// an unexpired access token (the longest access-token lifetime, 3600 s,
/// plus the verifiers' leeway and a margin).
const ACCESS_TOKENS_LIVE_SECS: i64 = 3600 + 30 + 60;

/// Revokes the refresh tokens matching `condition` (on `$1`, `$2`) and
/// returns the sessions (families) that may still hold a live access token.
async fn revoke_where(
    conn: &mut PgConnection,
    condition: &'static str,
    first: Uuid,
    second: Option<Uuid>,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "WITH ended AS (
             UPDATE refresh_tokens SET revoked_at = now()
             WHERE revoked_at IS NULL AND {condition}
             RETURNING family_id, created_at
         )
         SELECT DISTINCT family_id FROM ended
         WHERE created_at > now() - make_interval(secs => $3)"
    )))
    .bind(first)
    .bind(second)
    .bind(ACCESS_TOKENS_LIVE_SECS as f64)
    .fetch_all(conn)
    .await
}

/// Revokes every token of a family (one session).
pub async fn revoke_family(conn: &mut PgConnection, family: Uuid) -> sqlx::Result<Vec<Uuid>> {
    revoke_where(conn, "family_id = $1 AND $2::uuid IS NULL", family, None).await
}

/// Revokes every session of a user, except `keep` (a family).
pub async fn revoke_user(
    conn: &mut PgConnection,
    user: Uuid,
    keep: Option<Uuid>,
) -> sqlx::Result<Vec<Uuid>> {
    revoke_where(
        conn,
        "user_id = $1 AND ($2::uuid IS NULL OR family_id <> $2)",
        user,
        keep,
    )
    .await
}

/// Revokes a user's sessions in one account.
pub async fn revoke_user_in_account(
    conn: &mut PgConnection,
    user: Uuid,
    account: Uuid,
) -> sqlx::Result<Vec<Uuid>> {
    revoke_where(
        conn,
        "user_id = $1 AND account_id = $2",
        user,
        Some(account),
    )
    .await
}

/// Revokes every session in an account.
pub async fn revoke_account(conn: &mut PgConnection, account: Uuid) -> sqlx::Result<Vec<Uuid>> {
    revoke_where(conn, "account_id = $1 AND $2::uuid IS NULL", account, None).await
}

/// Whether a session (family) is live: none of its refresh tokens was
/// revoked and one has not expired.
pub async fn session_live(conn: &mut PgConnection, family: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT bool_and(revoked_at IS NULL) AND bool_or(expires_at > now())
         FROM refresh_tokens WHERE family_id = $1",
    )
    .bind(family)
    .fetch_one(conn)
    .await
    .map(|live: Option<bool>| live.unwrap_or(false))
}

/// What a one-time token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Self-service password reset.
    PasswordReset,
    /// Invitation to an account.
    Invitation,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::PasswordReset => "PASSWORD_RESET",
            Self::Invitation => "INVITATION",
        }
    }
}

/// A stored one-time token.
#[derive(Debug, sqlx::FromRow)]
pub struct OneTimeRow {
    /// User.
    pub user_id: Uuid,
    /// Account (invitations).
    pub account_id: Option<Uuid>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// When it was used.
    pub used_at: Option<DateTime<Utc>>,
}

/// Stores a one-time token, retiring earlier unused ones of the same user,
/// account and purpose (a resent invitation replaces the previous one).
pub async fn insert_one_time(
    conn: &mut PgConnection,
    hash: &[u8],
    purpose: Purpose,
    user: Uuid,
    account: Option<Uuid>,
    expires_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE one_time_tokens SET used_at = now()
         WHERE user_id = $1 AND purpose = $2 AND account_id IS NOT DISTINCT FROM $3 AND used_at IS NULL",
    )
    .bind(user)
    .bind(purpose.as_str())
    .bind(account)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO one_time_tokens (token_hash, purpose, user_id, account_id, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(hash)
    .bind(purpose.as_str())
    .bind(user)
    .bind(account)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Spends a one-time token: returns it if it exists, has this purpose, is
/// unused and unexpired, and marks it used in the same statement.
pub async fn spend_one_time(
    conn: &mut PgConnection,
    hash: &[u8],
    purpose: Purpose,
) -> sqlx::Result<Option<OneTimeRow>> {
    sqlx::query_as(
        "UPDATE one_time_tokens SET used_at = now()
         WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now()
         RETURNING user_id, account_id, expires_at, used_at",
    )
    .bind(hash)
    .bind(purpose.as_str())
    .fetch_optional(conn)
    .await
}

/// When an email is locked until, if it is.
pub async fn locked_until(
    conn: &mut PgConnection,
    email: &str,
) -> sqlx::Result<Option<DateTime<Utc>>> {
    let until: Option<Option<DateTime<Utc>>> = sqlx::query_scalar(
        "SELECT locked_until FROM sign_in_failures WHERE email_normalized = $1 AND locked_until > now()",
    )
    .bind(email)
    .fetch_optional(conn)
    .await?;
    Ok(until.flatten())
}

/// Counts one more failure; returns the consecutive failures so far.
pub async fn record_failure(conn: &mut PgConnection, email: &str) -> sqlx::Result<i32> {
    sqlx::query_scalar(
        "INSERT INTO sign_in_failures (email_normalized, failures, last_failure_at) VALUES ($1, 1, now())
         ON CONFLICT (email_normalized) DO UPDATE SET
             failures = sign_in_failures.failures + 1, last_failure_at = now()
         RETURNING failures",
    )
    .bind(email)
    .fetch_one(conn)
    .await
}

/// Locks an email until `until`.
pub async fn lock_email(
    conn: &mut PgConnection,
    email: &str,
    until: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE sign_in_failures SET locked_until = $2 WHERE email_normalized = $1")
        .bind(email)
        .bind(until)
        .execute(conn)
        .await?;
    Ok(())
}

/// Forgets failures after a successful sign-in or reset.
pub async fn clear_failures(conn: &mut PgConnection, email: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM sign_in_failures WHERE email_normalized = $1")
        .bind(email)
        .execute(conn)
        .await?;
    Ok(())
}
