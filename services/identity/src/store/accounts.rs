//! Accounts and applied merges.

use std::collections::BTreeMap;

use sqlx::PgConnection;
use uuid::Uuid;

use super::AccountRow;

const COLUMNS: &str = "id, display_name, state, created_at, merged_into";

/// Inserts an account.
pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    display_name: &str,
    created_by: Uuid,
) -> sqlx::Result<AccountRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO accounts (id, display_name, created_by) VALUES ($1, $2, $3) RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(display_name)
    .bind(created_by)
    .fetch_one(conn)
    .await
}

/// An account by id.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<AccountRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM accounts WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// An account by id, locked until the transaction ends: membership changes
/// of one account are serialized on it.
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<AccountRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM accounts WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Sets an account's state (and for MERGED its target).
pub async fn set_state(
    conn: &mut PgConnection,
    id: Uuid,
    state: &str,
    merged_into: Option<Uuid>,
) -> sqlx::Result<AccountRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE accounts SET state = $2, merged_into = COALESCE($3, merged_into), version = version + 1
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(state)
    .bind(merged_into)
    .fetch_one(conn)
    .await
}

/// An account the user is an active member of, with their roles there.
#[derive(Debug, sqlx::FromRow)]
pub struct Membership {
    /// The account.
    #[sqlx(flatten)]
    pub account: AccountRow,
    /// Role ids.
    pub roles: Vec<String>,
    /// Location scopes.
    pub scopes: sqlx::types::Json<BTreeMap<String, Vec<String>>>,
}

/// Active memberships of a user, by account id, after `after`.
pub async fn of_user(
    conn: &mut PgConnection,
    user: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Membership>> {
    sqlx::query_as(
        "SELECT a.id, a.display_name, a.state, a.created_at, a.merged_into, m.roles, m.scopes
         FROM memberships m JOIN accounts a ON a.id = m.account_id
         WHERE m.user_id = $1 AND m.state = 'ACTIVE' AND ($2::uuid IS NULL OR a.id > $2)
         ORDER BY a.id LIMIT $3",
    )
    .bind(user)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The user's active membership of `account` (or, when `None`, of their
/// oldest active account).
pub async fn membership(
    conn: &mut PgConnection,
    user: Uuid,
    account: Option<Uuid>,
) -> sqlx::Result<Option<Membership>> {
    sqlx::query_as(
        "SELECT a.id, a.display_name, a.state, a.created_at, a.merged_into, m.roles, m.scopes
         FROM memberships m JOIN accounts a ON a.id = m.account_id
         WHERE m.user_id = $1 AND m.state = 'ACTIVE' AND ($2::uuid IS NULL OR m.account_id = $2)
         ORDER BY (a.state = 'ACTIVE') DESC, m.created_at, a.id LIMIT 1",
    )
    .bind(user)
    .bind(account)
    .fetch_optional(conn)
    .await
}

/// A merge already applied: (members moved).
pub async fn applied_merge(
    conn: &mut PgConnection,
    merge_id: &str,
) -> sqlx::Result<Option<(Uuid, Uuid, i32)>> {
    sqlx::query_as("SELECT source_account, target_account, members_moved FROM applied_merges WHERE merge_id = $1")
        .bind(merge_id)
        .fetch_optional(conn)
        .await
}

/// Records an applied merge.
pub async fn record_merge(
    conn: &mut PgConnection,
    merge_id: &str,
    source: Uuid,
    target: Uuid,
    moved: i32,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO applied_merges (merge_id, source_account, target_account, members_moved) VALUES ($1, $2, $3, $4)")
        .bind(merge_id)
        .bind(source)
        .bind(target)
        .bind(moved)
        .execute(conn)
        .await?;
    Ok(())
}
