//! The activity log.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

/// One entry.
#[derive(Debug, sqlx::FromRow)]
pub struct ActivityRow {
    /// Id.
    pub id: Uuid,
    /// Actor resource name.
    pub actor: String,
    /// Action.
    pub action: String,
    /// Target resource name.
    pub target: String,
    /// Before.
    pub old_value: Option<Value>,
    /// After.
    pub new_value: Option<Value>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// An entry to write.
#[derive(Debug)]
pub struct Entry<'a> {
    /// Account.
    pub account: Uuid,
    /// Who (`users/{u}` or `serviceAccounts/{id}`).
    pub actor: &'a str,
    /// What.
    pub action: &'a str,
    /// To what.
    pub target: &'a str,
    /// Before.
    pub old: Option<Value>,
    /// After.
    pub new: Option<Value>,
}

/// Records an entry in the caller's transaction.
pub async fn record(conn: &mut PgConnection, entry: Entry<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO activity (id, account_id, actor, action, target, old_value, new_value)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(Uuid::now_v7())
    .bind(entry.account)
    .bind(entry.actor)
    .bind(entry.action)
    .bind(entry.target)
    .bind(entry.old)
    .bind(entry.new)
    .execute(conn)
    .await?;
    Ok(())
}

/// Filters of a listing.
#[derive(Debug, Default)]
pub struct Filter {
    /// Only this actor.
    pub actor: Option<String>,
    /// At or after.
    pub start: Option<DateTime<Utc>>,
    /// Before.
    pub end: Option<DateTime<Utc>>,
    /// Keyset: after this (time, id), newest first.
    pub after: Option<(DateTime<Utc>, Uuid)>,
}

/// Entries of an account, newest first.
pub async fn list(
    conn: &mut PgConnection,
    account: Uuid,
    filter: &Filter,
    limit: i64,
) -> sqlx::Result<Vec<ActivityRow>> {
    sqlx::query_as(
        "SELECT id, actor, action, target, old_value, new_value, created_at FROM activity
         WHERE account_id = $1
           AND ($2::text IS NULL OR actor = $2)
           AND ($3::timestamptz IS NULL OR created_at >= $3)
           AND ($4::timestamptz IS NULL OR created_at < $4)
           AND ($5::timestamptz IS NULL OR (created_at, id) < ($5, $6))
         ORDER BY created_at DESC, id DESC LIMIT $7",
    )
    .bind(account)
    .bind(&filter.actor)
    .bind(filter.start)
    .bind(filter.end)
    .bind(filter.after.map(|a| a.0))
    .bind(filter.after.map(|a| a.1))
    .bind(limit)
    .fetch_all(conn)
    .await
}
