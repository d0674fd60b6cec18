//! Every SQL statement of merge.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// An invitation row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvitationRow {
    /// Id.
    pub id: Uuid,
    /// Inviting account.
    pub initiator_account: Uuid,
    /// Invited account.
    pub invitee_account: Uuid,
    /// State name.
    pub state: String,
    /// Invitee's global partner id.
    pub invitee_partner_id: String,
    /// Invitee's legal name.
    pub invitee_legal_name: String,
    /// Invitee's country.
    pub invitee_country: String,
    /// Why refused.
    pub reject_reason: String,
    /// Who sent it.
    pub created_by: String,
    /// Sent.
    pub created_at: DateTime<Utc>,
    /// Expires.
    pub expires_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Version.
    pub version: i64,
}

/// Columns of [`InvitationRow`].
pub const COLUMNS: &str = "id, initiator_account, invitee_account, state, invitee_partner_id, invitee_legal_name, \
     invitee_country, reject_reason, created_by, created_at, expires_at, updated_at, version";

/// Serializes merge changes touching these accounts (transaction-scoped
/// advisory locks, taken in a fixed order).
pub async fn lock_accounts(conn: &mut PgConnection, a: Uuid, b: Uuid) -> sqlx::Result<()> {
    let (first, second) = if a < b { (a, b) } else { (b, a) };
    for account in [first, second] {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7))")
            .bind(account.to_string())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Open invitations involving an account (either side).
pub async fn open_for(conn: &mut PgConnection, account: Uuid) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM merge_invitations
         WHERE (initiator_account = $1 OR invitee_account = $1)
           AND state IN ('PENDING', 'ACCEPTED', 'CONFIRMED', 'IN_PROGRESS', 'FAILED')",
    )
    .bind(account)
    .fetch_one(conn)
    .await
}

/// Whether the account was merged away by a completed merge.
pub async fn merged_away(conn: &mut PgConnection, account: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM merge_invitations WHERE invitee_account = $1 AND state = 'COMPLETED')",
    )
    .bind(account)
    .fetch_one(conn)
    .await
}

/// A new invitation.
#[derive(Debug)]
pub struct NewInvitation<'a> {
    /// Id.
    pub id: Uuid,
    /// Inviting account.
    pub initiator: Uuid,
    /// Invited account.
    pub invitee: Uuid,
    /// Invitee's global partner id.
    pub partner_id: &'a str,
    /// Invitee's legal name.
    pub legal_name: &'a str,
    /// Invitee's country.
    pub country: &'a str,
    /// Who sends it.
    pub created_by: &'a str,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
}

/// Inserts an invitation.
pub async fn insert(conn: &mut PgConnection, n: &NewInvitation<'_>) -> sqlx::Result<InvitationRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO merge_invitations (id, initiator_account, invitee_account, state, invitee_partner_id,
                                        invitee_legal_name, invitee_country, created_by, expires_at)
         VALUES ($1, $2, $3, 'PENDING', $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
    )))
    .bind(n.id)
    .bind(n.initiator)
    .bind(n.invitee)
    .bind(n.partner_id)
    .bind(n.legal_name)
    .bind(n.country)
    .bind(n.created_by)
    .bind(n.expires_at)
    .fetch_one(conn)
    .await
}

/// One invitation, optionally locked.
pub async fn get(
    conn: &mut PgConnection,
    id: Uuid,
    lock: bool,
) -> sqlx::Result<Option<InvitationRow>> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM merge_invitations WHERE id = $1{lock}"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Moves an invitation to `state` (with the refusal reason, if any).
pub async fn set_state(
    conn: &mut PgConnection,
    id: Uuid,
    state: &str,
    reason: &str,
) -> sqlx::Result<InvitationRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE merge_invitations SET state = $2, reject_reason = $3, updated_at = now(), version = version + 1
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(state)
    .bind(reason)
    .fetch_one(conn)
    .await
}

/// Invitations of an account (either side), newest first, after the keyset.
pub async fn list(
    conn: &mut PgConnection,
    account: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<InvitationRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM merge_invitations
         WHERE (initiator_account = $1 OR invitee_account = $1)
           AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
         ORDER BY created_at DESC, id DESC LIMIT $4"
    )))
    .bind(account)
    .bind(after.map(|k| k.0))
    .bind(after.map(|k| k.1))
    .bind(limit)
    .fetch_all(conn)
    .await
}
