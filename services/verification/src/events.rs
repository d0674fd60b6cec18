//! Profile's events open verification cases: an enrollment checks
//! everything; a legal-profile change checks only what changed; a new
//! location checks that location.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use partnerhub_platform::bus::{Handler, HandlerError, IncomingMessage};
use partnerhub_proto::profile::v1::{
    Address, DataSource, EnrollmentSubmitted, LegalProfileChanged, LocationAdded,
};
use prost::Name;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::address::{self, PostalAddress};
use crate::cases::{Engine, EngineError, Subject};
use crate::domain;

/// The event types verification's events queue is bound to.
pub fn subscribed() -> Vec<String> {
    vec![
        EnrollmentSubmitted::full_name(),
        LegalProfileChanged::full_name(),
        LocationAdded::full_name(),
    ]
}

/// Opens cases from profile's events.
#[derive(Debug, Clone)]
pub struct CaseOpener {
    engine: Arc<Engine>,
}

impl CaseOpener {
    /// A handler opening cases through `engine`.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }
}

fn account_id(name: &str) -> Result<Uuid, HandlerError> {
    partnerhub_platform::bus::id_in(name, "accounts")
}

fn time(t: Option<prost_types::Timestamp>) -> DateTime<Utc> {
    t.as_ref()
        .and_then(partnerhub_platform::time::from_timestamp)
        .unwrap_or_else(Utc::now)
}

/// A profile address as verification's.
pub fn postal(address: Option<&Address>) -> PostalAddress {
    let a = address.cloned().unwrap_or_default();
    PostalAddress {
        line1: a.line1,
        line2: a.line2,
        city: a.city,
        state: a.state,
        postal_code: a.postal_code,
        country: a.country,
    }
}

fn address_json(a: &PostalAddress) -> serde_json::Value {
    json!({
        "line1": a.line1, "line2": a.line2, "city": a.city, "state": a.state,
        "postal_code": a.postal_code, "country": a.country,
    })
}

fn engine_error(e: EngineError) -> HandlerError {
    match e {
        EngineError::Database(e) => HandlerError::Transient(e.into()),
        // The directory may come back: try again later.
        EngineError::Directory(e) => HandlerError::Transient(e.into()),
    }
}

fn covered(a: &PostalAddress) -> bool {
    address::COVERED.contains(&a.country.to_ascii_uppercase().as_str())
}

/// Records the account's facts unless newer ones are known.
#[allow(clippy::too_many_arguments)]
async fn remember(
    tx: &mut PgConnection,
    account: Uuid,
    legal_name: &str,
    address: &PostalAddress,
    email: &str,
    contact_name: &str,
    domains: &[String],
    duns: Option<(&str, &str)>,
    at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let applied = sqlx::query(
        "INSERT INTO accounts (account_id, legal_name, address, primary_email, primary_name,
             company_domains, duns_number, data_source, fact_time)
         VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, ''), coalesce($8, ''), $9)
         ON CONFLICT (account_id) DO UPDATE SET
             legal_name = EXCLUDED.legal_name, address = EXCLUDED.address,
             primary_email = EXCLUDED.primary_email, primary_name = EXCLUDED.primary_name,
             company_domains = EXCLUDED.company_domains,
             duns_number = coalesce($7, accounts.duns_number),
             data_source = coalesce($8, accounts.data_source),
             fact_time = EXCLUDED.fact_time
         WHERE accounts.fact_time <= EXCLUDED.fact_time",
    )
    .bind(account)
    .bind(legal_name)
    .bind(address_json(address))
    .bind(email)
    .bind(contact_name)
    .bind(domains)
    .bind(duns.map(|d| d.0))
    .bind(duns.map(|d| d.1))
    .bind(at)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        > 0;
    Ok(applied)
}

/// The facts verification holds for `account` (the newest it was told).
async fn stored_subject(tx: &mut PgConnection, account: Uuid) -> Result<Subject, sqlx::Error> {
    let row: Option<(
        String,
        serde_json::Value,
        String,
        Vec<String>,
        String,
        String,
    )> = sqlx::query_as(
        "SELECT legal_name, address, primary_email, company_domains, duns_number, directory_domain
             FROM accounts WHERE account_id = $1",
    )
    .bind(account)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((legal_name, address, email, mut domains, duns, vouched)) = row else {
        return Ok(Subject::default());
    };
    let text = |k: &str| {
        address
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned()
    };
    if !vouched.is_empty() {
        domains.push(vouched);
    }
    Ok(Subject {
        name: legal_name.clone(),
        address: PostalAddress {
            line1: text("line1"),
            line2: text("line2"),
            city: text("city"),
            state: text("state"),
            postal_code: text("postal_code"),
            country: text("country"),
        },
        email,
        company_domains: domains,
        duns,
        legal_name,
    })
}

impl CaseOpener {
    async fn apply(
        &self,
        tx: &mut PgConnection,
        message: &IncomingMessage,
    ) -> Result<(), HandlerError> {
        let source_key = format!("event:{}", message.id);
        let t = message.message_type.as_str();
        if t == EnrollmentSubmitted::full_name() {
            let e: EnrollmentSubmitted = message.decode()?;
            let account = account_id(&e.account)?;
            let address = postal(e.address.as_ref());
            let contact = e.primary_contact.clone().unwrap_or_default();
            let manual = e.data_source != DataSource::Duns as i32 || e.duns_number.is_empty();
            let duns = if manual { "" } else { e.duns_number.as_str() };
            let current = remember(
                tx,
                account,
                &e.legal_name,
                &address,
                &contact.email,
                &contact.given_name,
                &e.company_domains,
                Some((duns, if manual { "MANUAL" } else { "DUNS" })),
                time(e.submit_time),
            )
            .await?;
            let kinds = domain::checks_for("ENROLLMENT", &[], covered(&address));
            let subject = if current {
                Subject {
                    name: e.legal_name.clone(),
                    address,
                    email: contact.email,
                    company_domains: e.company_domains.clone(),
                    duns: duns.to_owned(),
                    legal_name: e.legal_name.clone(),
                }
            } else {
                // A later change arrived first (a retried event): check the
                // newest facts, not the enrollment's.
                Subject {
                    duns: duns.to_owned(),
                    ..stored_subject(tx, account).await?
                }
            };
            self.engine
                .open_case(tx, account, &source_key, "ENROLLMENT", "", &kinds, &subject)
                .await
                .map_err(engine_error)?;
        } else if t == LegalProfileChanged::full_name() {
            let e: LegalProfileChanged = message.decode()?;
            let account = account_id(&e.account)?;
            let address = postal(e.address.as_ref());
            let contact = e.primary_contact.clone().unwrap_or_default();
            let current = remember(
                tx,
                account,
                &e.legal_name,
                &address,
                &contact.email,
                &contact.given_name,
                &e.company_domains,
                None,
                time(e.change_time),
            )
            .await?;
            if !current {
                // A newer change was already checked: this one is history.
                tracing::info!(%account, "Ignored a legal-profile change older than the facts known.");
                return Ok(());
            }
            let (duns, vouched): (String, String) = sqlx::query_as(
                "SELECT duns_number, directory_domain FROM accounts WHERE account_id = $1",
            )
            .bind(account)
            .fetch_optional(&mut *tx)
            .await?
            .unwrap_or_default();
            let mut company_domains = e.company_domains.clone();
            if !vouched.is_empty() {
                company_domains.push(vouched);
            }
            let kinds = domain::checks_for("LEGAL_PROFILE", &e.changed_fields, covered(&address));
            let subject = Subject {
                name: e.legal_name.clone(),
                address,
                email: contact.email,
                company_domains,
                duns,
                legal_name: e.legal_name.clone(),
            };
            self.engine
                .open_case(
                    tx,
                    account,
                    &source_key,
                    "LEGAL_PROFILE",
                    "",
                    &kinds,
                    &subject,
                )
                .await
                .map_err(engine_error)?;
        } else if t == LocationAdded::full_name() {
            let e: LocationAdded = message.decode()?;
            let account = account_id(&e.account)?;
            let address = postal(e.address.as_ref());
            let legal_name: String =
                sqlx::query_scalar("SELECT legal_name FROM accounts WHERE account_id = $1")
                    .bind(account)
                    .fetch_optional(&mut *tx)
                    .await?
                    .unwrap_or_default();
            let kinds = domain::checks_for("LOCATION", &[], covered(&address));
            let subject = Subject {
                name: e.business_name.clone(),
                address,
                legal_name,
                ..Subject::default()
            };
            self.engine
                .open_case(
                    tx,
                    account,
                    &source_key,
                    "LOCATION",
                    &e.location,
                    &kinds,
                    &subject,
                )
                .await
                .map_err(engine_error)?;
        } else {
            tracing::debug!(message_type = t, "Ignored an event of no interest.");
        }
        Ok(())
    }
}

impl Handler for CaseOpener {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        message: &'a IncomingMessage,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(self.apply(tx, message))
    }
}
