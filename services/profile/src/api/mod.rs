//! Profile's gRPC services: decode, validate, apply, answer. One module per
//! service; what they share lives here.

mod activity;
mod company;
mod enrollment;
mod identifiers;
mod legal;
mod locations;
mod merge;
mod organization;
mod payout;
mod programs;

pub use programs::status_changed as program_status_changed;

use partnerhub_platform::etag;
use partnerhub_platform::time::timestamp;
use partnerhub_platform::validate;
use partnerhub_proto::profile::v1::{DataSource, LegalProfile, Location};
use partnerhub_proto::verification::v1::{Status as VerificationState, SubStatus};
use std::sync::Arc;

use partnerhub_platform::cache::NotifiedCache;
use partnerhub_platform::crypto::Sealer;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::error::{ProfileError, Result};
use crate::store::{LocationRow, ProfileRow};

/// `cloudEvents_source` of profile's events.
pub const SOURCE: &str = "//partnerhub/profile";

/// State shared by profile's handlers.
#[derive(Debug, Clone)]
pub struct Profile {
    pool: PgPool,
    /// Seals bank and tax numbers; `None` when no key is configured (payout
    /// calls then refuse).
    sealer: Option<Arc<Sealer>>,
    /// Profile rows by account for GetLegalProfile, forgotten on every write
    /// (`profiles_changed` trigger); serves only while its listener runs.
    profiles: NotifiedCache<Uuid, Arc<ProfileRow>>,
}

/// The channel of the `profiles_changed` trigger (migration 1008).
pub const PROFILES_CHANNEL: &str = "partnerhub_profiles";

/// Profile rows kept in memory per replica (a row is about 1 KiB).
const CACHED_PROFILES: usize = 10_000;

/// The longest a cached profile is served: a bound on staleness should a
/// notification ever be lost without the listener noticing.
const CACHED_PROFILE_AGE: std::time::Duration = std::time::Duration::from_secs(30);

impl Profile {
    /// Handlers over `pool`, sealing sensitive numbers with `sealer`. The
    /// read cache serves once [`Profile::listen`] runs.
    pub fn new(pool: PgPool, sealer: Option<Arc<Sealer>>) -> Self {
        Self {
            pool,
            sealer,
            profiles: NotifiedCache::new(PROFILES_CHANNEL, CACHED_PROFILES, CACHED_PROFILE_AGE),
        }
    }

    /// Keeps the read cache coherent with the database until `shutdown`.
    pub fn listen(&self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        self.profiles.spawn_listener(&self.pool, shutdown)
    }
}

/// Parses `accounts/{id}` in `field`.
fn account_id(field: &str, name: &str) -> Result<Uuid> {
    let id = validate::resource_id(name, "accounts").map_err(|e| ProfileError::field(field, e))?;
    id.parse()
        .map_err(|_| ProfileError::field(field, "must be an account name"))
}

/// Parses `accounts/{id}/<suffix>` in `field`.
fn singleton_account(field: &str, name: &str, suffix: &str) -> Result<Uuid> {
    let id = validate::account_of(name, suffix).map_err(|e| ProfileError::field(field, e))?;
    id.parse()
        .map_err(|_| ProfileError::field(field, "must be an account name"))
}

/// Parses `accounts/{a}/locations/{l}` in `field`.
fn location_name(field: &str, name: &str) -> Result<(Uuid, Uuid)> {
    let bad = || ProfileError::field(field, "must be `accounts/{account}/locations/{location}`");
    let rest = name.strip_prefix("accounts/").ok_or_else(bad)?;
    let (account, location) = rest.split_once("/locations/").ok_or_else(bad)?;
    Ok((
        account.parse().map_err(|_| bad())?,
        location.parse().map_err(|_| bad())?,
    ))
}

/// A partner id as shown: 7 digits.
fn partner_id_text(id: i32) -> String {
    format!("{id:07}")
}

fn data_source(s: &str) -> DataSource {
    match s {
        "DUNS" => DataSource::Duns,
        "MANUAL" => DataSource::Manual,
        _ => DataSource::Unspecified,
    }
}

fn legal_profile_message(row: &ProfileRow) -> LegalProfile {
    LegalProfile {
        name: format!("accounts/{}/legalProfile", row.account_id),
        legal_name: row.legal_name.clone(),
        address: Some((&row.address.0).into()),
        registration_id: row.registration_id.clone(),
        primary_contact: Some((&row.primary_contact.0).into()),
        legal_contact: row.legal_contact.as_ref().map(|c| (&c.0).into()),
        security_contact: row.security_contact.as_ref().map(|c| (&c.0).into()),
        company_approver: row.company_approver.as_ref().map(|c| (&c.0).into()),
        data_source: data_source(&row.data_source).into(),
        duns_number: row.duns_number.clone(),
        verification_status: VerificationState::from_str_name(&format!(
            "STATUS_{}",
            row.verification_status
        ))
        .unwrap_or(VerificationState::None)
        .into(),
        verification_sub_status: SubStatus::from_str_name(&format!(
            "SUB_STATUS_{}",
            row.verification_sub_status
        ))
        .unwrap_or(SubStatus::Unspecified)
        .into(),
        global_partner_id: partner_id_text(row.global_partner_id),
        update_time: Some(timestamp(row.updated_at)),
        etag: etag::of(row.version),
    }
}

fn location_message(row: &LocationRow) -> Location {
    Location {
        name: format!("accounts/{}/locations/{}", row.account_id, row.id),
        partner_id: partner_id_text(row.partner_id),
        business_name: row.business_name.clone(),
        address: Some((&row.address.0).into()),
        contact: Some((&row.contact.0).into()),
        headquarters: row.headquarters,
        create_time: Some(timestamp(row.created_at)),
        update_time: Some(timestamp(row.updated_at)),
        etag: etag::of(row.version),
    }
}
