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
    /// Saga step done.
    pub step: String,
    /// Saga attempts.
    pub attempts: i32,
    /// Saga's last error.
    pub last_error: String,
}

/// Columns of [`InvitationRow`].
pub const COLUMNS: &str = "id, initiator_account, invitee_account, state, invitee_partner_id, invitee_legal_name, \
     invitee_country, reject_reason, created_by, created_at, expires_at, updated_at, version, step, attempts, last_error";

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

/// Invitations of an account (either side), current or history, newest
/// first, after the keyset.
pub async fn list(
    conn: &mut PgConnection,
    account: Uuid,
    history: bool,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<InvitationRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM merge_invitations
         WHERE (initiator_account = $1 OR invitee_account = $1)
           AND (state IN ('PENDING', 'ACCEPTED', 'CONFIRMED', 'IN_PROGRESS', 'FAILED')) <> $5
           AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
         ORDER BY created_at DESC, id DESC LIMIT $4"
    )))
    .bind(account)
    .bind(after.map(|k| k.0))
    .bind(after.map(|k| k.1))
    .bind(limit)
    .bind(history)
    .fetch_all(conn)
    .await
}

/// Claims the next merge the saga should run (CONFIRMED or IN_PROGRESS, due,
/// not leased by another runner) and leases it for `lease_secs`.
pub async fn claim(
    conn: &mut PgConnection,
    lease_secs: i64,
) -> sqlx::Result<Option<InvitationRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE merge_invitations SET leased_until = now() + make_interval(secs => $1),
                state = 'IN_PROGRESS', updated_at = now()
         WHERE id = (SELECT id FROM merge_invitations
                     WHERE state IN ('CONFIRMED', 'IN_PROGRESS') AND next_attempt_at <= now()
                       AND (leased_until IS NULL OR leased_until < now())
                     ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING {COLUMNS}"
    )))
    .bind(lease_secs as f64)
    .fetch_optional(conn)
    .await
}

/// Records a finished step.
pub async fn set_step(
    conn: &mut PgConnection,
    id: Uuid,
    step: &str,
    locations: Option<i32>,
    members: Option<i32>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE merge_invitations SET step = $2, locations_moved = COALESCE($3, locations_moved),
                members_moved = COALESCE($4, members_moved), updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(step)
    .bind(locations)
    .bind(members)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a failed attempt; the saga tries again after `retry_secs`.
pub async fn attempt_failed(
    conn: &mut PgConnection,
    id: Uuid,
    error: &str,
    retry_secs: f64,
) -> sqlx::Result<i32> {
    sqlx::query_scalar(
        "UPDATE merge_invitations SET attempts = attempts + 1, last_error = $2, leased_until = NULL,
                next_attempt_at = now() + make_interval(secs => $3), updated_at = now()
         WHERE id = $1 RETURNING attempts",
    )
    .bind(id)
    .bind(error)
    .bind(retry_secs)
    .fetch_one(conn)
    .await
}

/// Ends the saga in `state` (COMPLETED or FAILED).
pub async fn finish(conn: &mut PgConnection, id: Uuid, state: &str) -> sqlx::Result<(i32, i32)> {
    sqlx::query_as(
        "UPDATE merge_invitations SET state = $2, leased_until = NULL, updated_at = now(), version = version + 1
         WHERE id = $1 RETURNING locations_moved, members_moved",
    )
    .bind(id)
    .bind(state)
    .fetch_one(conn)
    .await
}

/// Puts a FAILED merge back to CONFIRMED with fresh attempts.
pub async fn retry(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<InvitationRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE merge_invitations SET state = 'CONFIRMED', attempts = 0, next_attempt_at = now(),
                updated_at = now(), version = version + 1
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .fetch_one(conn)
    .await
}

/// Expires unanswered invitations past their date; returns them.
pub async fn expire_due(conn: &mut PgConnection) -> sqlx::Result<Vec<InvitationRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE merge_invitations SET state = 'EXPIRED', updated_at = now(), version = version + 1
         WHERE state IN ('PENDING', 'ACCEPTED') AND expires_at <= now() RETURNING {COLUMNS}"
    )))
    .fetch_all(conn)
    .await
}
