//! Tenants and the support profile.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// A tenant row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TenantRow {
    /// Tenant id.
    pub tenant_id: Uuid,
    /// Account.
    pub account_id: Uuid,
    /// Domain.
    pub domain: String,
    /// COMMERCIAL or DEVELOPER.
    pub kind: String,
    /// Primary.
    pub is_primary: bool,
    /// Associated.
    pub created_at: DateTime<Utc>,
}

const TENANT_COLUMNS: &str = "tenant_id, account_id, domain, kind, is_primary, created_at";

/// Tenants of an account, primary first.
pub async fn tenants(conn: &mut PgConnection, account: Uuid) -> sqlx::Result<Vec<TenantRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TENANT_COLUMNS} FROM tenants WHERE account_id = $1 ORDER BY is_primary DESC, created_at, tenant_id"
    )))
    .bind(account)
    .fetch_all(conn)
    .await
}

/// A tenant by id, on any account.
pub async fn tenant(conn: &mut PgConnection, tenant: Uuid) -> sqlx::Result<Option<TenantRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TENANT_COLUMNS} FROM tenants WHERE tenant_id = $1"
    )))
    .bind(tenant)
    .fetch_optional(conn)
    .await
}

/// Associates a tenant; `Ok(None)` when it is associated already (with any
/// account).
pub async fn insert_tenant(
    conn: &mut PgConnection,
    tenant: Uuid,
    account: Uuid,
    domain: &str,
    kind: &str,
    primary: bool,
) -> sqlx::Result<Option<TenantRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO tenants (tenant_id, account_id, domain, kind, is_primary) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_id) DO NOTHING RETURNING {TENANT_COLUMNS}"
    )))
    .bind(tenant)
    .bind(account)
    .bind(domain)
    .bind(kind)
    .bind(primary)
    .fetch_optional(conn)
    .await
}

/// Removes a tenant.
pub async fn delete_tenant(conn: &mut PgConnection, tenant: Uuid) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM tenants WHERE tenant_id = $1")
        .bind(tenant)
        .execute(conn)
        .await?;
    Ok(())
}

/// The support profile: (email, phone, website, version); version 0 when
/// never set.
pub async fn support(
    conn: &mut PgConnection,
    account: Uuid,
    lock: bool,
) -> sqlx::Result<(String, String, String, i64)> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let row: Option<(String, String, String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT email, phone, website, version FROM support_profiles WHERE account_id = $1{lock}"
    )))
    .bind(account)
    .fetch_optional(conn)
    .await?;
    Ok(row.unwrap_or_default())
}

/// Writes the support profile; returns the new version.
pub async fn set_support(
    conn: &mut PgConnection,
    account: Uuid,
    email: &str,
    phone: &str,
    website: &str,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO support_profiles (account_id, email, phone, website, version) VALUES ($1, $2, $3, $4, 1)
         ON CONFLICT (account_id) DO UPDATE SET email = $2, phone = $3, website = $4,
             version = support_profiles.version + 1
         RETURNING version",
    )
    .bind(account)
    .bind(email)
    .bind(phone)
    .bind(website)
    .fetch_one(conn)
    .await
}

/// Domains known to be the account's: its tenants' domains and its support
/// website's host (lower case, without `www.`), deduplicated. A user's
/// sign-in domain is not one of them: sign-up does not prove it is the
/// company's.
pub async fn company_domains(conn: &mut PgConnection, account: Uuid) -> sqlx::Result<Vec<String>> {
    let mut domains: Vec<String> =
        sqlx::query_scalar("SELECT lower(domain) FROM tenants WHERE account_id = $1")
            .bind(account)
            .fetch_all(&mut *conn)
            .await?;
    let website: Option<String> =
        sqlx::query_scalar("SELECT website FROM support_profiles WHERE account_id = $1")
            .bind(account)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(host) = website
        .as_deref()
        .and_then(|w| url::Url::parse(w).ok())
        .and_then(|u| u.host_str().map(str::to_lowercase))
    {
        domains.push(host.trim_start_matches("www.").to_owned());
    }
    domains.retain(|d| !d.is_empty());
    domains.sort();
    domains.dedup();
    Ok(domains)
}
