//! LegalProfileService: read and change the legal business profile.

use chrono::Utc;
use partnerhub_platform::auth::{Caller, caller, roles::perm};
use partnerhub_platform::time::timestamp;
use partnerhub_platform::validate::Violations;
use partnerhub_platform::{etag, outbox};
use partnerhub_proto::profile::v1::{
    ContactsChanged, GetLegalProfileRequest, LegalProfile, LegalProfileChanged,
    UpdateLegalProfileRequest, UpdateLegalProfileResponse,
    legal_profile_service_server::LegalProfileService,
};
use serde_json::json;
use tonic::{Request, Response, Status};

use super::{Profile, SOURCE, legal_profile_message, singleton_account};
use crate::domain::{self, AddressDoc, ContactDoc, programs};
use crate::error::{ProfileError, Result};
use crate::store;

/// Fields `update_mask` may name.
const FIELDS: &[&str] = &[
    "legal_name",
    "address",
    "registration_id",
    "primary_contact",
    "legal_contact",
    "security_contact",
    "company_approver",
    "data_source",
    "duns_number",
];

impl Profile {
    async fn get_legal(
        &self,
        caller: &Caller,
        req: GetLegalProfileRequest,
    ) -> Result<LegalProfile> {
        let account = singleton_account("name", &req.name, "legalProfile")?;
        caller.require(perm::LEGAL_READ, &account.to_string())?;
        let row = match self.profiles.get(&account) {
            Some(row) => row,
            None => {
                let generation = self.profiles.generation();
                let mut conn = self.pool.acquire().await?;
                let row = std::sync::Arc::new(
                    store::profile(&mut conn, account, false)
                        .await?
                        .ok_or_else(|| ProfileError::NotEnrolled(req.name.clone()))?,
                );
                self.profiles.fill(account, row.clone(), generation);
                row
            }
        };
        if row.merged_into.is_some() {
            return Err(ProfileError::NotEnrolled(req.name));
        }
        Ok(legal_profile_message(&row))
    }

    async fn update_legal(
        &self,
        caller: &Caller,
        req: UpdateLegalProfileRequest,
    ) -> Result<UpdateLegalProfileResponse> {
        let new = req.legal_profile.unwrap_or_default();
        let account = singleton_account("legal_profile.name", &new.name, "legalProfile")?;
        caller.require(perm::LEGAL_WRITE, &account.to_string())?;
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        let mut v = Violations::new();
        if paths.is_empty() {
            v.add(
                "update_mask",
                format!("name the fields to change: {}", FIELDS.join(", ")),
            );
        }
        for p in &paths {
            if !FIELDS.contains(&p.as_str()) {
                v.add("update_mask", format!("{p} cannot be changed"));
            }
        }
        v.finish()?;
        let has = |f: &str| paths.iter().any(|p| p == f);
        if has("security_contact") {
            caller.require(perm::SECURITY_CONTACT_WRITE, &account.to_string())?;
        }

        let mut tx = self.pool.begin().await?;
        let current = store::profile(&mut tx, account, true)
            .await?
            .filter(|p| p.merged_into.is_none())
            .ok_or_else(|| ProfileError::NotEnrolled(new.name.clone()))?;
        etag::check(&new.etag, current.version, &new.name)?;

        // The new values: masked fields from the request, the rest as stored.
        let legal_name = if has("legal_name") {
            new.legal_name.trim().to_owned()
        } else {
            current.legal_name.clone()
        };
        let address = if has("address") {
            AddressDoc::from(&new.address.clone().unwrap_or_default())
        } else {
            current.address.0.clone()
        };
        let registration_id = if has("registration_id") {
            new.registration_id.trim().to_owned()
        } else {
            current.registration_id.clone()
        };
        let primary = if has("primary_contact") {
            ContactDoc::from(&new.primary_contact.clone().unwrap_or_default())
        } else {
            current.primary_contact.0.clone()
        };
        let optional = |field: &str,
                        value: &Option<partnerhub_proto::profile::v1::Contact>,
                        old: &Option<sqlx::types::Json<ContactDoc>>| {
            if has(field) {
                value.as_ref().map(ContactDoc::from)
            } else {
                old.as_ref().map(|c| c.0.clone())
            }
        };
        let legal = optional("legal_contact", &new.legal_contact, &current.legal_contact);
        let security = optional(
            "security_contact",
            &new.security_contact,
            &current.security_contact,
        );
        let approver = optional(
            "company_approver",
            &new.company_approver,
            &current.company_approver,
        );
        let source = if has("data_source") {
            domain::data_source_text(new.data_source)
        } else if current.data_source == "DUNS" {
            "DUNS"
        } else {
            "MANUAL"
        };
        let duns = if has("duns_number") {
            new.duns_number.trim().to_owned()
        } else {
            current.duns_number.clone()
        };

        let mut v = Violations::new();
        let mut warnings = Vec::new();
        if has("legal_name") {
            warnings =
                domain::check_legal_name("legal_profile.legal_name", &new.legal_name, &mut v);
        }
        if has("address") {
            domain::check_address("legal_profile.address", new.address.as_ref(), &mut v);
        }
        if has("address") || has("registration_id") {
            domain::check_registration(
                "legal_profile.registration_id",
                &address.country,
                &registration_id,
                &mut v,
            );
        }
        if has("primary_contact") {
            domain::check_contact(
                "legal_profile.primary_contact",
                new.primary_contact.as_ref(),
                &mut v,
            );
        }
        for (field, value) in [
            ("legal_contact", &new.legal_contact),
            ("security_contact", &new.security_contact),
            ("company_approver", &new.company_approver),
        ] {
            if has(field) && value.is_some() {
                domain::check_contact(&format!("legal_profile.{field}"), value.as_ref(), &mut v);
            }
        }
        if has("data_source") || has("duns_number") {
            let source_value = if source == "DUNS" {
                partnerhub_proto::profile::v1::DataSource::Duns
            } else {
                partnerhub_proto::profile::v1::DataSource::Manual
            };
            domain::check_source("legal_profile", source_value.into(), &duns, &mut v);
        }
        v.finish()?;

        let name_changed = legal_name != current.legal_name;
        let unchanged = !name_changed
            && address == current.address.0
            && registration_id == current.registration_id
            && primary == current.primary_contact.0
            && legal == current.legal_contact.as_ref().map(|c| c.0.clone())
            && security == current.security_contact.as_ref().map(|c| c.0.clone())
            && approver == current.company_approver.as_ref().map(|c| c.0.clone())
            && source == current.data_source
            && duns == current.duns_number;
        if unchanged {
            // Nothing to write: the etag stays valid for the caller.
            tx.commit().await?;
            return Ok(UpdateLegalProfileResponse {
                legal_profile: Some(legal_profile_message(&current)),
                warnings,
            });
        }
        if name_changed && current.verification_status == "AUTHORIZED" {
            let kinds = store::program_kinds(&mut tx, account).await?;
            if kinds.iter().any(|k| programs::freezes_legal_name(k)) {
                return Err(ProfileError::precondition(
                    "LEGAL_NAME_FROZEN",
                    "the legal name of an authorized direct-bill or indirect-provider account cannot change; contact support with the registration documents",
                ));
            }
        }
        let updated = store::update_profile(
            &mut tx,
            &store::NewProfile {
                account,
                global_partner_id: current.global_partner_id,
                legal_name: &legal_name,
                address: &address,
                registration_id: &registration_id,
                primary_contact: &primary,
                legal_contact: legal.as_ref(),
                security_contact: security.as_ref(),
                company_approver: approver.as_ref(),
                data_source: source,
                duns_number: &duns,
            },
        )
        .await?;

        let message = legal_profile_message(&updated);
        let account_name = format!("accounts/{account}");
        let now = Some(timestamp(Utc::now()));
        let mut verified = Vec::new();
        if name_changed {
            verified.push("legal_name".to_owned());
        }
        if address != current.address.0 {
            verified.push("address".to_owned());
        }
        if primary != current.primary_contact.0 {
            verified.push("primary_contact".to_owned());
        }
        if !verified.is_empty() {
            let company_domains =
                crate::store::organization::company_domains(&mut tx, account).await?;
            outbox::publish_event(
                &mut tx,
                SOURCE,
                &account_name,
                &LegalProfileChanged {
                    account: account_name.clone(),
                    changed_fields: verified,
                    legal_name: updated.legal_name.clone(),
                    address: message.address.clone(),
                    primary_contact: message.primary_contact.clone(),
                    change_time: now,
                    company_domains,
                },
            )
            .await?;
        }
        let contacts_changed = primary != current.primary_contact.0
            || legal != current.legal_contact.as_ref().map(|c| c.0.clone())
            || security != current.security_contact.as_ref().map(|c| c.0.clone());
        if contacts_changed {
            outbox::publish_event(
                &mut tx,
                SOURCE,
                &account_name,
                &ContactsChanged {
                    account: account_name.clone(),
                    primary_contact: message.primary_contact.clone(),
                    legal_contact: message.legal_contact.clone(),
                    security_contact: message.security_contact.clone(),
                    change_time: now,
                },
            )
            .await?;
        }
        let before = legal_profile_message(&current);
        store::record_activity(
            &mut tx,
            account,
            &caller.resource_name(),
            "legal_profile.updated",
            &message.name,
            Some(json!(fields_json(&before, &paths))),
            Some(json!(fields_json(&message, &paths))),
        )
        .await?;
        tx.commit().await?;
        // This replica's next read sees the write at once (others when the
        // trigger's notification reaches them).
        self.profiles.invalidate(&account);
        Ok(UpdateLegalProfileResponse {
            legal_profile: Some(message),
            warnings,
        })
    }
}

/// The masked fields of a profile, as JSON for the activity log.
fn fields_json(p: &LegalProfile, paths: &[String]) -> serde_json::Map<String, serde_json::Value> {
    let contact = |c: &Option<partnerhub_proto::profile::v1::Contact>| {
        c.as_ref().map(
            |c| json!({ "name": format!("{} {}", c.given_name, c.family_name), "email": c.email }),
        )
    };
    paths
        .iter()
        .map(|path| {
            let value = match path.as_str() {
                "legal_name" => json!(p.legal_name),
                "address" => json!(p.address.as_ref().map(|a| json!({ "line1": a.line1, "line2": a.line2, "city": a.city, "state": a.state, "postal_code": a.postal_code, "country": a.country }))),
                "registration_id" => json!(p.registration_id),
                "primary_contact" => json!(contact(&p.primary_contact)),
                "legal_contact" => json!(contact(&p.legal_contact)),
                "security_contact" => json!(contact(&p.security_contact)),
                "company_approver" => json!(contact(&p.company_approver)),
                "data_source" => json!(p.data_source().as_str_name()),
                "duns_number" => json!(p.duns_number),
                _ => json!(null),
            };
            (path.clone(), value)
        })
        .collect()
}

#[tonic::async_trait]
impl LegalProfileService for Profile {
    async fn get_legal_profile(
        &self,
        request: Request<GetLegalProfileRequest>,
    ) -> Result<Response<LegalProfile>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            self.get_legal(&caller, request.into_inner()).await?,
        ))
    }

    async fn update_legal_profile(
        &self,
        request: Request<UpdateLegalProfileRequest>,
    ) -> Result<Response<UpdateLegalProfileResponse>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            self.update_legal(&caller, request.into_inner()).await?,
        ))
    }
}
