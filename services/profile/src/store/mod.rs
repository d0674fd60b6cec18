//! Every SQL statement of profile.

pub mod company;
pub mod organization;
pub mod payout;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::Value;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::{AddressDoc, ContactDoc};

/// A legal profile row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProfileRow {
    /// Account.
    pub account_id: Uuid,
    /// Global partner id.
    pub global_partner_id: i32,
    /// Legal name.
    pub legal_name: String,
    /// Address.
    pub address: Json<AddressDoc>,
    /// Registration id.
    pub registration_id: String,
    /// Primary contact.
    pub primary_contact: Json<ContactDoc>,
    /// Legal contact.
    pub legal_contact: Option<Json<ContactDoc>>,
    /// Security contact.
    pub security_contact: Option<Json<ContactDoc>>,
    /// Company approver.
    pub company_approver: Option<Json<ContactDoc>>,
    /// MANUAL or DUNS.
    pub data_source: String,
    /// DUNS number.
    pub duns_number: String,
    /// Mirrored verification status.
    pub verification_status: String,
    /// Mirrored verification sub-status.
    pub verification_sub_status: String,
    /// For a merged profile: the target account.
    pub merged_into: Option<Uuid>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Etag version.
    pub version: i64,
}

const PROFILE_COLUMNS: &str = "account_id, global_partner_id, legal_name, address, registration_id, \
     primary_contact, legal_contact, security_contact, company_approver, data_source, duns_number, \
     verification_status, verification_sub_status, merged_into, updated_at, version";

/// A location row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LocationRow {
    /// Id.
    pub id: Uuid,
    /// Account.
    pub account_id: Uuid,
    /// Partner id.
    pub partner_id: i32,
    /// Business name.
    pub business_name: String,
    /// Address.
    pub address: Json<AddressDoc>,
    /// Contact.
    pub contact: Json<ContactDoc>,
    /// Headquarters.
    pub headquarters: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Etag version.
    pub version: i64,
}

const LOCATION_COLUMNS: &str = "id, account_id, partner_id, business_name, address, contact, headquarters, \
     created_at, updated_at, version";

/// Assigns a new 7-digit partner id, unique platform-wide and never reused.
pub async fn allocate_partner_id(
    conn: &mut PgConnection,
    kind: &str,
    account: Uuid,
    location: Option<Uuid>,
) -> sqlx::Result<i32> {
    loop {
        let candidate: i32 = rand::thread_rng().gen_range(1_000_000..=9_999_999);
        let taken = sqlx::query(
            "INSERT INTO partner_ids (partner_id, kind, account_id, location_id) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
        )
        .bind(candidate)
        .bind(kind)
        .bind(account)
        .bind(location)
        .execute(&mut *conn)
        .await?
        .rows_affected()
            == 0;
        if !taken {
            return Ok(candidate);
        }
    }
}

/// A new legal profile.
#[derive(Debug)]
pub struct NewProfile<'a> {
    /// Account.
    pub account: Uuid,
    /// Global partner id.
    pub global_partner_id: i32,
    /// Legal name.
    pub legal_name: &'a str,
    /// Address.
    pub address: &'a AddressDoc,
    /// Registration id.
    pub registration_id: &'a str,
    /// Primary contact.
    pub primary_contact: &'a ContactDoc,
    /// Legal contact.
    pub legal_contact: Option<&'a ContactDoc>,
    /// Security contact.
    pub security_contact: Option<&'a ContactDoc>,
    /// Company approver.
    pub company_approver: Option<&'a ContactDoc>,
    /// MANUAL or DUNS.
    pub data_source: &'a str,
    /// DUNS number.
    pub duns_number: &'a str,
}

/// Inserts a legal profile; `Ok(None)` when the account has one.
pub async fn insert_profile(
    conn: &mut PgConnection,
    p: &NewProfile<'_>,
) -> sqlx::Result<Option<ProfileRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO profiles (account_id, global_partner_id, legal_name, address, registration_id,
                               primary_contact, legal_contact, security_contact, company_approver,
                               data_source, duns_number)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (account_id) DO NOTHING
         RETURNING {PROFILE_COLUMNS}"
    )))
    .bind(p.account)
    .bind(p.global_partner_id)
    .bind(p.legal_name)
    .bind(Json(p.address))
    .bind(p.registration_id)
    .bind(Json(p.primary_contact))
    .bind(p.legal_contact.map(Json))
    .bind(p.security_contact.map(Json))
    .bind(p.company_approver.map(Json))
    .bind(p.data_source)
    .bind(p.duns_number)
    .fetch_optional(conn)
    .await
}

/// The profile of an account (archived ones too), optionally locked.
pub async fn profile(
    conn: &mut PgConnection,
    account: Uuid,
    lock: bool,
) -> sqlx::Result<Option<ProfileRow>> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {PROFILE_COLUMNS} FROM profiles WHERE account_id = $1{lock}"
    )))
    .bind(account)
    .fetch_optional(conn)
    .await
}

/// Writes every editable field of a profile and bumps its version.
pub async fn update_profile(
    conn: &mut PgConnection,
    p: &NewProfile<'_>,
) -> sqlx::Result<ProfileRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE profiles SET legal_name = $2, address = $3, registration_id = $4, primary_contact = $5,
                legal_contact = $6, security_contact = $7, company_approver = $8, data_source = $9,
                duns_number = $10, updated_at = now(), version = version + 1
         WHERE account_id = $1 RETURNING {PROFILE_COLUMNS}"
    )))
    .bind(p.account)
    .bind(p.legal_name)
    .bind(Json(p.address))
    .bind(p.registration_id)
    .bind(Json(p.primary_contact))
    .bind(p.legal_contact.map(Json))
    .bind(p.security_contact.map(Json))
    .bind(p.company_approver.map(Json))
    .bind(p.data_source)
    .bind(p.duns_number)
    .fetch_one(conn)
    .await
}

/// A new location.
#[derive(Debug)]
pub struct NewLocation<'a> {
    /// Id.
    pub id: Uuid,
    /// Account.
    pub account: Uuid,
    /// Partner id.
    pub partner_id: i32,
    /// Business name.
    pub business_name: &'a str,
    /// Address.
    pub address: &'a AddressDoc,
    /// Contact.
    pub contact: &'a ContactDoc,
    /// Headquarters.
    pub headquarters: bool,
}

/// Inserts a location.
pub async fn insert_location(
    conn: &mut PgConnection,
    l: &NewLocation<'_>,
) -> sqlx::Result<LocationRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO locations (id, account_id, partner_id, business_name, address, contact, headquarters)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {LOCATION_COLUMNS}"
    )))
    .bind(l.id)
    .bind(l.account)
    .bind(l.partner_id)
    .bind(l.business_name)
    .bind(Json(l.address))
    .bind(Json(l.contact))
    .bind(l.headquarters)
    .fetch_one(conn)
    .await
}

/// A live location of an account.
pub async fn location(
    conn: &mut PgConnection,
    account: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<LocationRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {LOCATION_COLUMNS} FROM locations WHERE account_id = $1 AND id = $2 AND deleted_at IS NULL"
    )))
    .bind(account)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Live locations of an account: headquarters first, then by creation; keyset
/// after `(headquarters, created_at, id)`.
pub async fn locations(
    conn: &mut PgConnection,
    account: Uuid,
    after: Option<(bool, DateTime<Utc>, Uuid)>,
    only: Option<&[Uuid]>,
    limit: i64,
) -> sqlx::Result<Vec<LocationRow>> {
    // Past the headquarters, the keyset is a range of the index (account_id,
    // headquarters DESC, created_at, id), so a page costs the same at any
    // depth; the general form is only a filter, fine near the start.
    let keyset = match after {
        Some((false, _, _)) => {
            "$2::boolean IS NOT NULL AND headquarters = false AND (created_at, id) > ($3, $4)"
        }
        _ => "($2::boolean IS NULL OR (NOT headquarters, created_at, id) > (NOT $2, $3, $4))",
    };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {LOCATION_COLUMNS} FROM locations
         WHERE account_id = $1 AND deleted_at IS NULL
           AND {keyset}
           AND ($5::uuid[] IS NULL OR id = ANY($5))
         ORDER BY headquarters DESC, created_at, id LIMIT $6"
    )))
    .bind(account)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(after.map(|a| a.2))
    .bind(only)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Live locations of an account.
pub async fn count_locations(conn: &mut PgConnection, account: Uuid) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM locations WHERE account_id = $1 AND deleted_at IS NULL",
    )
    .bind(account)
    .fetch_one(conn)
    .await
}

/// Writes a location's editable fields.
pub async fn update_location(
    conn: &mut PgConnection,
    id: Uuid,
    business_name: &str,
    address: &AddressDoc,
    contact: &ContactDoc,
) -> sqlx::Result<LocationRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE locations SET business_name = $2, address = $3, contact = $4, updated_at = now(),
                version = version + 1
         WHERE id = $1 RETURNING {LOCATION_COLUMNS}"
    )))
    .bind(id)
    .bind(business_name)
    .bind(Json(address))
    .bind(Json(contact))
    .fetch_one(conn)
    .await
}

/// Deletes a location (its partner id stays taken for ever).
pub async fn delete_location(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<()> {
    sqlx::query("UPDATE locations SET deleted_at = now(), version = version + 1 WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// What a partner id names: kind and account.
pub async fn partner_id(conn: &mut PgConnection, id: i32) -> sqlx::Result<Option<(String, Uuid)>> {
    sqlx::query_as("SELECT kind, account_id FROM partner_ids WHERE partner_id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Adds a program enrollment.
pub async fn insert_program(
    conn: &mut PgConnection,
    account: Uuid,
    kind: &str,
    status: &str,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO programs (account_id, kind, status) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
        .bind(account)
        .bind(kind)
        .bind(status)
        .execute(conn)
        .await?;
    Ok(())
}

/// Program kinds of an account.
pub async fn program_kinds(conn: &mut PgConnection, account: Uuid) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT kind FROM programs WHERE account_id = $1")
        .bind(account)
        .fetch_all(conn)
        .await
}

/// Records an accepted agreement.
pub async fn accept_agreement(
    conn: &mut PgConnection,
    account: Uuid,
    agreement: &str,
    version: &str,
    by: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO agreements (id, account_id, agreement, version, accepted_by) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(account)
    .bind(agreement)
    .bind(version)
    .bind(by)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a change in the activity log.
pub async fn record_activity(
    conn: &mut PgConnection,
    account: Uuid,
    actor: &str,
    action: &str,
    target: &str,
    old: Option<Value>,
    new: Option<Value>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO activity (id, account_id, actor, action, target, old_value, new_value)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(Uuid::now_v7())
    .bind(account)
    .bind(actor)
    .bind(action)
    .bind(target)
    .bind(old)
    .bind(new)
    .execute(conn)
    .await?;
    Ok(())
}

/// A program row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProgramRow {
    /// Kind (`PROGRAM_KIND_PARTNER`).
    pub kind: String,
    /// Status (`PENDING`).
    pub status: String,
    /// Enrolled.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Programs of an account.
pub async fn programs(conn: &mut PgConnection, account: Uuid) -> sqlx::Result<Vec<ProgramRow>> {
    sqlx::query_as("SELECT kind, status, created_at, updated_at FROM programs WHERE account_id = $1 ORDER BY created_at, kind")
        .bind(account)
        .fetch_all(conn)
        .await
}

/// Sets a program's status; returns the previous one when it changed.
pub async fn set_program_status(
    conn: &mut PgConnection,
    account: Uuid,
    kind: &str,
    status: &str,
) -> sqlx::Result<Option<String>> {
    let old: Option<String> = sqlx::query_scalar(
        "SELECT status FROM programs WHERE account_id = $1 AND kind = $2 FOR UPDATE",
    )
    .bind(account)
    .bind(kind)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(old) = old.filter(|old| old != status) else {
        return Ok(None);
    };
    sqlx::query(
        "UPDATE programs SET status = $3, updated_at = now() WHERE account_id = $1 AND kind = $2",
    )
    .bind(account)
    .bind(kind)
    .bind(status)
    .execute(conn)
    .await?;
    Ok(Some(old))
}

/// The status a suspended program returns to, per program kind.
pub async fn suspended_programs(
    conn: &mut PgConnection,
    account: Uuid,
) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as(
        "SELECT kind, COALESCE(status_before_suspension, 'PENDING') FROM programs
         WHERE account_id = $1 AND status = 'SUSPENDED' FOR UPDATE",
    )
    .bind(account)
    .fetch_all(conn)
    .await
}

/// Changes the status a suspended program will return to.
pub async fn set_status_after_suspension(
    conn: &mut PgConnection,
    account: Uuid,
    kind: &str,
    status: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE programs SET status_before_suspension = $3 WHERE account_id = $1 AND kind = $2",
    )
    .bind(account)
    .bind(kind)
    .bind(status)
    .execute(conn)
    .await?;
    Ok(())
}

/// Suspends every program, remembering each one's status.
pub async fn suspend_programs(
    conn: &mut PgConnection,
    account: Uuid,
) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as(
        "UPDATE programs SET status_before_suspension = status, status = 'SUSPENDED', updated_at = now()
         WHERE account_id = $1 AND status <> 'SUSPENDED'
         RETURNING kind, status_before_suspension",
    )
    .bind(account)
    .fetch_all(conn)
    .await
}

/// Returns suspended programs to the status they had.
pub async fn resume_programs(
    conn: &mut PgConnection,
    account: Uuid,
) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as(
        "UPDATE programs SET status = COALESCE(status_before_suspension, 'PENDING'),
                status_before_suspension = NULL, updated_at = now()
         WHERE account_id = $1 AND status = 'SUSPENDED'
         RETURNING kind, status",
    )
    .bind(account)
    .fetch_all(conn)
    .await
}

/// Mirrors the verification status into the profile; `false` when the
/// account has no profile or already shows that status (then nothing, not
/// even the etag, changes).
pub async fn set_verification(
    conn: &mut PgConnection,
    account: Uuid,
    status: &str,
    sub_status: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        // A mirror of verification's state: it moves neither the etag nor the
        // update time, which protect and date the partner's own edits (a
        // client's read-modify-write must not fail because verification
        // moved on in the background). An older status never wins.
        "UPDATE profiles SET verification_status = $2, verification_sub_status = $3,
                verification_time = $4
         WHERE account_id = $1 AND verification_time <= $4
           AND (verification_status, verification_sub_status) IS DISTINCT FROM ($2, $3)",
    )
    .bind(account)
    .bind(status)
    .bind(sub_status)
    .bind(at)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// An accepted agreement row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AgreementRow {
    /// Id.
    pub id: Uuid,
    /// Agreement id.
    pub agreement: String,
    /// Version.
    pub version: String,
    /// Who.
    pub accepted_by: String,
    /// When.
    pub accepted_at: DateTime<Utc>,
}

/// Accepted agreements, newest first.
pub async fn agreements(conn: &mut PgConnection, account: Uuid) -> sqlx::Result<Vec<AgreementRow>> {
    sqlx::query_as(
        "SELECT id, agreement, version, accepted_by, accepted_at FROM agreements
         WHERE account_id = $1 ORDER BY accepted_at DESC, id DESC",
    )
    .bind(account)
    .fetch_all(conn)
    .await
}

/// Whether the account accepted `agreement` (any version).
pub async fn has_agreement(
    conn: &mut PgConnection,
    account: Uuid,
    agreement: &str,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM agreements WHERE account_id = $1 AND agreement = $2)",
    )
    .bind(account)
    .bind(agreement)
    .fetch_one(conn)
    .await
}

/// Whether the account has a live location in `country`.
pub async fn has_location_in(
    conn: &mut PgConnection,
    account: Uuid,
    country: &str,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM locations WHERE account_id = $1 AND deleted_at IS NULL
                        AND address->>'country' = $2)",
    )
    .bind(account)
    .bind(country)
    .fetch_one(conn)
    .await
}

/// An activity row.
#[derive(Debug, sqlx::FromRow)]
pub struct ActivityRow {
    /// Id.
    pub id: Uuid,
    /// Actor.
    pub actor: String,
    /// Action.
    pub action: String,
    /// Target.
    pub target: String,
    /// Before.
    pub old_value: Option<Value>,
    /// After.
    pub new_value: Option<Value>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Activity of an account, newest first, after the keyset `(time, id)`.
pub async fn activity(
    conn: &mut PgConnection,
    account: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<ActivityRow>> {
    sqlx::query_as(
        "SELECT id, actor, action, target, old_value, new_value, created_at FROM activity
         WHERE account_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
         ORDER BY created_at DESC, id DESC LIMIT $4",
    )
    .bind(account)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// A merge applied before: (source, target, locations moved).
pub async fn applied_merge(
    conn: &mut PgConnection,
    merge_id: &str,
) -> sqlx::Result<Option<(Uuid, Uuid, i32)>> {
    sqlx::query_as("SELECT source_account, target_account, locations_moved FROM applied_merges WHERE merge_id = $1")
        .bind(merge_id)
        .fetch_optional(conn)
        .await
}

/// Moves the source's live locations to the target (none stays
/// headquarters) and archives the source profile; returns the moved ids.
pub async fn merge_profiles(
    conn: &mut PgConnection,
    merge_id: &str,
    source: Uuid,
    target: Uuid,
) -> sqlx::Result<Vec<Uuid>> {
    let moved: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE locations SET account_id = $2, headquarters = false, updated_at = now(), version = version + 1
         WHERE account_id = $1 AND deleted_at IS NULL RETURNING id",
    )
    .bind(source)
    .bind(target)
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query("UPDATE partner_ids SET account_id = $2 WHERE location_id = ANY($1)")
        .bind(&moved)
        .bind(target)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE profiles SET merged_into = $2, archived_at = now(), updated_at = now(), version = version + 1
         WHERE account_id = $1",
    )
    .bind(source)
    .bind(target)
    .execute(&mut *conn)
    .await?;
    sqlx::query("INSERT INTO applied_merges (merge_id, source_account, target_account, locations_moved) VALUES ($1, $2, $3, $4)")
        .bind(merge_id)
        .bind(source)
        .bind(target)
        .bind(i32::try_from(moved.len()).unwrap_or(i32::MAX))
        .execute(conn)
        .await?;
    Ok(moved)
}
