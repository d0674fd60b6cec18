//! Invitations: consent records keyed by email (ADR 0008). No user and no
//! membership exists for an invitation until it is accepted.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

/// An invitation row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvitationRow {
    /// Id.
    pub id: Uuid,
    /// The inviting account.
    pub account_id: Uuid,
    /// The invited email as entered.
    pub email: String,
    /// Role ids given on acceptance.
    pub roles: Vec<String>,
    /// Location scopes of those roles.
    pub scopes: Json<BTreeMap<String, Vec<String>>>,
    /// Who invited (`users/{u}`, `serviceAccounts/{id}` or `migrated`).
    pub invited_by: String,
    /// PENDING, ACCEPTED or REVOKED.
    pub state: String,
    /// The user who accepted.
    pub accepted_by: Option<Uuid>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When the current token stops working.
    pub expires_at: DateTime<Utc>,
    /// Etag version.
    pub version: i64,
}

const COLUMNS: &str = "id, account_id, email, roles, scopes, invited_by, state, accepted_by, \
     created_at, expires_at, version";

/// A new invitation.
#[derive(Debug)]
pub struct NewInvitation<'a> {
    /// The inviting account.
    pub account: Uuid,
    /// The email as entered.
    pub email: &'a str,
    /// Role ids.
    pub roles: &'a [String],
    /// Their scopes.
    pub scopes: &'a BTreeMap<String, Vec<String>>,
    /// Who invites.
    pub invited_by: &'a str,
    /// Hash of the mailed token.
    pub token_hash: &'a [u8],
    /// Expiry of the token.
    pub expires_at: DateTime<Utc>,
}

/// Creates a pending invitation; a pending one for the same account and
/// email is revoked first (its token dies).
pub async fn insert(
    conn: &mut PgConnection,
    new: &NewInvitation<'_>,
) -> sqlx::Result<InvitationRow> {
    let normalized = crate::domain::normalize_email(new.email);
    sqlx::query(
        "UPDATE invitations SET state = 'REVOKED', token_hash = NULL, resolved_at = now(),
                version = version + 1
         WHERE account_id = $1 AND email_normalized = $2 AND state = 'PENDING'",
    )
    .bind(new.account)
    .bind(&normalized)
    .execute(&mut *conn)
    .await?;
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO invitations (id, account_id, email, email_normalized, roles, scopes,
                                  invited_by, token_hash, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(new.account)
    .bind(new.email.trim())
    .bind(&normalized)
    .bind(new.roles)
    .bind(Json(new.scopes))
    .bind(new.invited_by)
    .bind(new.token_hash)
    .bind(new.expires_at)
    .fetch_one(conn)
    .await
}

/// The pending, unexpired invitation whose current token hashes to `hash`,
/// locked for the transaction.
pub async fn lock_by_token(
    conn: &mut PgConnection,
    hash: &[u8],
) -> sqlx::Result<Option<InvitationRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM invitations
         WHERE token_hash = $1 AND state = 'PENDING' AND expires_at > now() FOR UPDATE"
    )))
    .bind(hash)
    .fetch_optional(conn)
    .await
}

/// One invitation of an account, locked for the transaction.
pub async fn lock(
    conn: &mut PgConnection,
    account: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<InvitationRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM invitations WHERE account_id = $1 AND id = $2 FOR UPDATE"
    )))
    .bind(account)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// One invitation of an account.
pub async fn get(
    conn: &mut PgConnection,
    account: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<InvitationRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM invitations WHERE account_id = $1 AND id = $2"
    )))
    .bind(account)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Pending invitations of an account (expired ones included) by id.
pub async fn list_pending(
    conn: &mut PgConnection,
    account: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<InvitationRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM invitations
         WHERE account_id = $1 AND state = 'PENDING' AND ($2::uuid IS NULL OR id > $2)
         ORDER BY id LIMIT $3"
    )))
    .bind(account)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Gives a pending invitation a new token and expiry (the old token dies).
pub async fn renew(
    conn: &mut PgConnection,
    id: Uuid,
    token_hash: &[u8],
    expires_at: DateTime<Utc>,
) -> sqlx::Result<InvitationRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE invitations SET token_hash = $2, expires_at = $3, version = version + 1
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(token_hash)
    .bind(expires_at)
    .fetch_one(conn)
    .await
}

/// Ends an invitation: `ACCEPTED` (by `user`) or `REVOKED`; its token dies.
pub async fn resolve(
    conn: &mut PgConnection,
    id: Uuid,
    state: &str,
    user: Option<Uuid>,
) -> sqlx::Result<InvitationRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE invitations SET state = $2, accepted_by = $3, token_hash = NULL,
                resolved_at = now(), version = version + 1
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(state)
    .bind(user)
    .fetch_one(conn)
    .await
}
