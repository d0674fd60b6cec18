//! Tax and payout profiles (sealed numbers only).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// A tax profile row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TaxRow {
    /// Entity type (enum name).
    pub entity_type: String,
    /// Tax form (enum name).
    pub tax_form: String,
    /// Country.
    pub country: String,
    /// Sealed TIN.
    pub tin_sealed: Vec<u8>,
    /// Last four of the TIN.
    pub tin_last4: String,
    /// Key id.
    pub key_id: String,
    /// Review status.
    pub status: String,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Version.
    pub version: i64,
}

/// The tax profile, optionally locked.
pub async fn tax(
    conn: &mut PgConnection,
    account: Uuid,
    lock: bool,
) -> sqlx::Result<Option<TaxRow>> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT entity_type, tax_form, country, tin_sealed, tin_last4, key_id, status, updated_at, version
         FROM tax_profiles WHERE account_id = $1{lock}"
    )))
    .bind(account)
    .fetch_optional(conn)
    .await
}

/// Writes the tax profile (status back to SUBMITTED); `insert` refuses an
/// existing one (`Ok(false)`).
pub async fn put_tax(
    conn: &mut PgConnection,
    account: Uuid,
    t: &TaxRow,
    insert: bool,
) -> sqlx::Result<bool> {
    let sql = if insert {
        "INSERT INTO tax_profiles (account_id, entity_type, tax_form, country, tin_sealed, tin_last4, key_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (account_id) DO NOTHING"
    } else {
        "UPDATE tax_profiles SET entity_type = $2, tax_form = $3, country = $4, tin_sealed = $5,
                tin_last4 = $6, key_id = $7, status = 'SUBMITTED', updated_at = now(), version = version + 1
         WHERE account_id = $1"
    };
    Ok(sqlx::query(sql)
        .bind(account)
        .bind(&t.entity_type)
        .bind(&t.tax_form)
        .bind(&t.country)
        .bind(&t.tin_sealed)
        .bind(&t.tin_last4)
        .bind(&t.key_id)
        .execute(conn)
        .await?
        .rows_affected()
        == 1)
}

/// A payout profile row.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct PayoutRow {
    /// Id.
    pub id: Uuid,
    /// BANK_ACCOUNT or PAYPAL.
    pub method: String,
    /// Account holder.
    pub holder_name: String,
    /// IBAN, ACCOUNT or empty.
    pub number_kind: String,
    /// Sealed number.
    pub number_sealed: Option<Vec<u8>>,
    /// Last four.
    pub number_last4: String,
    /// Key id.
    pub key_id: String,
    /// SWIFT/BIC.
    pub swift_bic: String,
    /// Bank country.
    pub bank_country: String,
    /// PayPal email.
    pub paypal_email: String,
    /// Review status.
    pub status: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Version.
    pub version: i64,
}

const PAYOUT_COLUMNS: &str = "id, method, holder_name, number_kind, number_sealed, number_last4, key_id, \
     swift_bic, bank_country, paypal_email, status, created_at, version";

/// Payout profiles of an account, oldest first.
pub async fn payouts(conn: &mut PgConnection, account: Uuid) -> sqlx::Result<Vec<PayoutRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {PAYOUT_COLUMNS} FROM payout_profiles WHERE account_id = $1 ORDER BY created_at, id"
    )))
    .bind(account)
    .fetch_all(conn)
    .await
}

/// One payout profile, optionally locked.
pub async fn payout(
    conn: &mut PgConnection,
    account: Uuid,
    id: Uuid,
    lock: bool,
) -> sqlx::Result<Option<PayoutRow>> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {PAYOUT_COLUMNS} FROM payout_profiles WHERE account_id = $1 AND id = $2{lock}"
    )))
    .bind(account)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Inserts or rewrites a payout profile (status back to SUBMITTED).
pub async fn put_payout(conn: &mut PgConnection, account: Uuid, p: &PayoutRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO payout_profiles (id, account_id, method, holder_name, number_kind, number_sealed,
                                      number_last4, key_id, swift_bic, bank_country, paypal_email)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (id) DO UPDATE SET holder_name = $4, number_kind = $5, number_sealed = $6,
             number_last4 = $7, key_id = $8, swift_bic = $9, bank_country = $10, paypal_email = $11,
             status = 'SUBMITTED', version = payout_profiles.version + 1",
    )
    .bind(p.id)
    .bind(account)
    .bind(&p.method)
    .bind(&p.holder_name)
    .bind(&p.number_kind)
    .bind(&p.number_sealed)
    .bind(&p.number_last4)
    .bind(&p.key_id)
    .bind(&p.swift_bic)
    .bind(&p.bank_country)
    .bind(&p.paypal_email)
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets the hold-payouts switch.
pub async fn set_hold(conn: &mut PgConnection, account: Uuid, hold: bool) -> sqlx::Result<()> {
    sqlx::query("UPDATE profiles SET hold_payouts = $2 WHERE account_id = $1")
        .bind(account)
        .bind(hold)
        .execute(conn)
        .await?;
    Ok(())
}
