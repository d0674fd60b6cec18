//! Company and billing profiles, publishers.

use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::Value;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::{AddressDoc, ContactDoc};

/// The company profile document and version (`None` when never set).
pub async fn company(
    conn: &mut PgConnection,
    account: Uuid,
    lock: bool,
) -> sqlx::Result<Option<(Value, i64)>> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT doc, version FROM company_profiles WHERE account_id = $1{lock}"
    )))
    .bind(account)
    .fetch_optional(conn)
    .await
}

/// Writes the company profile; returns the new version.
pub async fn set_company(conn: &mut PgConnection, account: Uuid, doc: &Value) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO company_profiles (account_id, doc) VALUES ($1, $2)
         ON CONFLICT (account_id) DO UPDATE SET doc = $2, version = company_profiles.version + 1
         RETURNING version",
    )
    .bind(account)
    .bind(doc)
    .fetch_one(conn)
    .await
}

/// A billing profile row.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct BillingRow {
    /// Bill-to address.
    pub address: Option<Json<AddressDoc>>,
    /// Bill-to contact.
    pub contact: Option<Json<ContactDoc>>,
    /// PO number.
    pub po_number: String,
    /// Tax id.
    pub tax_id: String,
    /// VAT id.
    pub vat_id: String,
    /// Currency.
    pub currency: String,
    /// Version (0 when never set).
    pub version: i64,
}

/// The billing profile (defaults when never set).
pub async fn billing(
    conn: &mut PgConnection,
    account: Uuid,
    lock: bool,
) -> sqlx::Result<BillingRow> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let row: Option<BillingRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT address, contact, po_number, tax_id, vat_id, currency, version FROM billing_profiles
         WHERE account_id = $1{lock}"
    )))
    .bind(account)
    .fetch_optional(conn)
    .await?;
    Ok(row.unwrap_or_default())
}

/// Writes the billing profile; returns the new version.
pub async fn set_billing(
    conn: &mut PgConnection,
    account: Uuid,
    b: &BillingRow,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO billing_profiles (account_id, address, contact, po_number, tax_id, vat_id, currency)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (account_id) DO UPDATE SET address = $2, contact = $3, po_number = $4, tax_id = $5,
             vat_id = $6, currency = $7, version = billing_profiles.version + 1
         RETURNING version",
    )
    .bind(account)
    .bind(&b.address)
    .bind(&b.contact)
    .bind(&b.po_number)
    .bind(&b.tax_id)
    .bind(&b.vat_id)
    .bind(&b.currency)
    .fetch_one(conn)
    .await
}

/// A publisher row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PublisherRow {
    /// Publisher id.
    pub publisher_id: String,
    /// Display name.
    pub display_name: String,
    /// Location.
    pub location_id: Uuid,
    /// Contact.
    pub contact: Json<ContactDoc>,
    /// Added.
    pub created_at: DateTime<Utc>,
}

/// Live publishers of an account.
pub async fn publishers(conn: &mut PgConnection, account: Uuid) -> sqlx::Result<Vec<PublisherRow>> {
    sqlx::query_as(
        "SELECT publisher_id, display_name, location_id, contact, created_at FROM publishers
         WHERE account_id = $1 AND removed_at IS NULL ORDER BY created_at, publisher_id",
    )
    .bind(account)
    .fetch_all(conn)
    .await
}

/// Reserves a publisher id; `Ok(None)` when it was ever used.
pub async fn insert_publisher(
    conn: &mut PgConnection,
    account: Uuid,
    publisher_id: &str,
    display_name: &str,
    location: Uuid,
    contact: &ContactDoc,
) -> sqlx::Result<Option<PublisherRow>> {
    sqlx::query_as(
        "INSERT INTO publishers (publisher_id, account_id, display_name, location_id, contact)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (publisher_id) DO NOTHING
         RETURNING publisher_id, display_name, location_id, contact, created_at",
    )
    .bind(publisher_id)
    .bind(account)
    .bind(display_name)
    .bind(location)
    .bind(Json(contact))
    .fetch_optional(conn)
    .await
}

/// The account's seller id, assigned on first use (8 digits, unique).
pub async fn seller_id(
    conn: &mut PgConnection,
    account: Uuid,
    assign: bool,
) -> sqlx::Result<Option<i32>> {
    let current: Option<i32> =
        sqlx::query_scalar("SELECT seller_id FROM profiles WHERE account_id = $1")
            .bind(account)
            .fetch_optional(&mut *conn)
            .await?
            .flatten();
    if current.is_some() || !assign {
        return Ok(current);
    }
    loop {
        let candidate: i32 = rand::thread_rng().gen_range(10_000_000..=99_999_999);
        let taken: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM profiles WHERE seller_id = $1)")
                .bind(candidate)
                .fetch_one(&mut *conn)
                .await?;
        if !taken {
            sqlx::query("UPDATE profiles SET seller_id = $2 WHERE account_id = $1")
                .bind(account)
                .bind(candidate)
                .execute(&mut *conn)
                .await?;
            return Ok(Some(candidate));
        }
    }
}
