//! EnrollmentService: one call makes an account a partner.

use chrono::Utc;
use partnerhub_platform::auth::{Caller, caller, roles::perm};
use partnerhub_platform::time::timestamp;
use partnerhub_platform::validate::Violations;
use partnerhub_platform::{idempotency, outbox};
use partnerhub_proto::profile::v1::{
    ContactsChanged, EnrollRequest, EnrollResponse, EnrollmentSubmitted, ProgramKind,
    enrollment_service_server::EnrollmentService,
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{Profile, SOURCE, account_id, legal_profile_message, location_message};
use crate::domain::{AddressDoc, ContactDoc, programs};
use crate::error::{ProfileError, Result};
use crate::store;

impl Profile {
    async fn enroll(&self, caller: &Caller, req: EnrollRequest) -> Result<EnrollResponse> {
        let account = account_id("parent", &req.parent)?;
        caller.require(perm::LEGAL_WRITE, &account.to_string())?;
        let mut v = Violations::new();
        let program = match ProgramKind::try_from(req.program) {
            Ok(ProgramKind::Unspecified) => ProgramKind::Partner,
            Ok(p) => p,
            Err(_) => {
                v.add("program", "is not a program");
                ProgramKind::Partner
            }
        };
        let profile = req.legal_profile.clone().unwrap_or_default();
        let warnings = crate::domain::check_legal_profile("legal_profile", &profile, &mut v);
        if !req.accept_agreement {
            v.add(
                "accept_agreement",
                format!(
                    "the {} must be accepted to enroll",
                    programs::agreement(program).0
                ),
            );
        }
        v.finish()?;
        let (agreement, version) = programs::agreement(program);
        if programs::needs_global_admin(program)
            && !caller.roles.iter().any(|r| r == "global_admin")
        {
            return Err(ProfileError::Status(partnerhub_platform::auth::denied(
                &format!("accept the {agreement} (Global admin only)"),
            )));
        }

        let scope = format!("accounts/{account}:Enroll");
        let mut tx = self.pool.begin().await?;
        if let Some(stored) =
            idempotency::replay::<EnrollResponse>(&mut tx, &scope, &req.request_id, &req).await?
        {
            return Ok(stored);
        }
        if store::profile(&mut tx, account, false).await?.is_some() {
            return Err(ProfileError::AlreadyEnrolled);
        }
        let address = AddressDoc::from(&profile.address.clone().unwrap_or_default());
        let primary = ContactDoc::from(&profile.primary_contact.clone().unwrap_or_default());
        let legal = profile.legal_contact.as_ref().map(ContactDoc::from);
        let security = profile.security_contact.as_ref().map(ContactDoc::from);
        let approver = profile.company_approver.as_ref().map(ContactDoc::from);
        let source = crate::domain::data_source_text(profile.data_source);
        let global = store::allocate_partner_id(&mut tx, "GLOBAL", account, None).await?;
        let row = store::insert_profile(
            &mut tx,
            &store::NewProfile {
                account,
                global_partner_id: global,
                legal_name: profile.legal_name.trim(),
                address: &address,
                registration_id: profile.registration_id.trim(),
                primary_contact: &primary,
                legal_contact: legal.as_ref(),
                security_contact: security.as_ref(),
                company_approver: approver.as_ref(),
                data_source: source,
                duns_number: profile.duns_number.trim(),
            },
        )
        .await?
        .ok_or(ProfileError::AlreadyEnrolled)?;
        let location_id = Uuid::now_v7();
        let location_pid =
            store::allocate_partner_id(&mut tx, "LOCATION", account, Some(location_id)).await?;
        let headquarters = store::insert_location(
            &mut tx,
            &store::NewLocation {
                id: location_id,
                account,
                partner_id: location_pid,
                business_name: &row.legal_name,
                address: &address,
                contact: &primary,
                headquarters: true,
            },
        )
        .await?;
        store::insert_program(&mut tx, account, program.as_str_name(), "PENDING").await?;
        super::program_status_changed(
            &mut tx,
            account,
            program.as_str_name(),
            "UNSPECIFIED",
            "PENDING",
        )
        .await?;
        let actor = caller.resource_name();
        store::accept_agreement(&mut tx, account, agreement, version, &actor).await?;
        let account_name = format!("accounts/{account}");
        let message = legal_profile_message(&row);
        let location = location_message(&headquarters);
        let now = Some(timestamp(Utc::now()));
        let company_domains = crate::store::organization::company_domains(&mut tx, account).await?;
        outbox::publish_event(
            &mut tx,
            SOURCE,
            &account_name,
            &EnrollmentSubmitted {
                account: account_name.clone(),
                global_partner_id: message.global_partner_id.clone(),
                legal_name: row.legal_name.clone(),
                address: message.address.clone(),
                primary_contact: message.primary_contact.clone(),
                registration_id: row.registration_id.clone(),
                data_source: message.data_source,
                duns_number: row.duns_number.clone(),
                headquarters: location.name.clone(),
                program: program.into(),
                submit_time: now,
                company_domains,
            },
        )
        .await?;
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
        store::record_activity(
            &mut tx,
            account,
            &actor,
            "profile.enrolled",
            &message.name,
            None,
            Some(serde_json::json!({
                "legal_name": row.legal_name,
                "country": address.country,
                "program": program.as_str_name(),
                "agreement": agreement,
                "global_partner_id": message.global_partner_id,
            })),
        )
        .await?;
        let response = EnrollResponse {
            legal_profile: Some(message),
            headquarters: Some(location),
            warnings,
        };
        idempotency::remember(&mut tx, &scope, &req.request_id, &response).await?;
        tx.commit().await?;
        tracing::info!(%account, partner_id = global, "Enrolled.");
        Ok(response)
    }
}

#[tonic::async_trait]
impl EnrollmentService for Profile {
    async fn enroll(
        &self,
        request: Request<EnrollRequest>,
    ) -> Result<Response<EnrollResponse>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            Profile::enroll(self, &caller, request.into_inner()).await?,
        ))
    }
}
