//! ProgramService: programs and agreements.

use chrono::Utc;
use partnerhub_platform::auth::{Caller, caller, denied, roles::perm};
use partnerhub_platform::outbox;
use partnerhub_platform::time::timestamp;
use partnerhub_proto::profile::v1::{
    AcceptAgreementRequest, Agreement, EnrollProgramRequest, ListAgreementsRequest,
    ListAgreementsResponse, ListProgramsRequest, ListProgramsResponse, Program, ProgramKind,
    ProgramStatus, ProgramStatusChanged, program_service_server::ProgramService,
};
use serde_json::json;
use sqlx::PgConnection;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{Profile, SOURCE, account_id};
use crate::domain::programs;
use crate::error::{ProfileError, Result};
use crate::store::{self, AgreementRow, ProgramRow};

fn program_message(account: Uuid, row: &ProgramRow) -> Program {
    let kind = ProgramKind::from_str_name(&row.kind).unwrap_or(ProgramKind::Unspecified);
    Program {
        name: format!(
            "accounts/{account}/programs/{}",
            row.kind.trim_start_matches("PROGRAM_KIND_").to_lowercase()
        ),
        kind: kind.into(),
        status: ProgramStatus::from_str_name(&format!("PROGRAM_STATUS_{}", row.status))
            .unwrap_or(ProgramStatus::Unspecified)
            .into(),
        tab: programs::tab(kind).into(),
        agreement: programs::agreement(kind).0.to_owned(),
        create_time: Some(timestamp(row.created_at)),
        update_time: Some(timestamp(row.updated_at)),
    }
}

fn agreement_message(account: Uuid, row: &AgreementRow) -> Agreement {
    Agreement {
        name: format!("accounts/{account}/agreements/{}", row.id),
        agreement: row.agreement.clone(),
        version: row.version.clone(),
        accepted_by: row.accepted_by.clone(),
        accept_time: Some(timestamp(row.accepted_at)),
    }
}

/// Emits `ProgramStatusChanged`.
pub async fn status_changed(
    conn: &mut PgConnection,
    account: Uuid,
    kind: &str,
    old: &str,
    new: &str,
) -> Result<()> {
    let account_name = format!("accounts/{account}");
    outbox::publish_event(
        conn,
        SOURCE,
        &account_name,
        &ProgramStatusChanged {
            account: account_name.clone(),
            program: ProgramKind::from_str_name(kind)
                .unwrap_or(ProgramKind::Unspecified)
                .into(),
            old_status: format!("PROGRAM_STATUS_{old}"),
            new_status: format!("PROGRAM_STATUS_{new}"),
            change_time: Some(timestamp(Utc::now())),
        },
    )
    .await?;
    Ok(())
}

impl Profile {
    async fn list_programs(
        &self,
        caller: &Caller,
        req: ListProgramsRequest,
    ) -> Result<ListProgramsResponse> {
        let account = account_id("parent", &req.parent)?;
        caller.require(perm::PROGRAMS_READ, &account.to_string())?;
        let mut conn = self.pool.acquire().await?;
        let rows = store::programs(&mut conn, account).await?;
        Ok(ListProgramsResponse {
            programs: rows.iter().map(|r| program_message(account, r)).collect(),
        })
    }

    async fn enroll_program(&self, caller: &Caller, req: EnrollProgramRequest) -> Result<Program> {
        let account = account_id("parent", &req.parent)?;
        caller.require(perm::PROGRAMS_WRITE, &account.to_string())?;
        let kind = match ProgramKind::try_from(req.program) {
            Ok(ProgramKind::Unspecified) | Err(_) => {
                return Err(ProfileError::field("program", "is required"));
            }
            Ok(k) => k,
        };
        let (agreement, version) = programs::agreement(kind);
        if !req.accept_agreement {
            return Err(ProfileError::field(
                "accept_agreement",
                format!("the {agreement} must be accepted"),
            ));
        }
        if programs::needs_global_admin(kind) && !caller.roles.iter().any(|r| r == "global_admin") {
            return Err(denied(&format!("accept the {agreement} (Global admin only)")).into());
        }
        let mut tx = self.pool.begin().await?;
        let profile = store::profile(&mut tx, account, true)
            .await?
            .filter(|p| p.merged_into.is_none())
            .ok_or_else(|| ProfileError::NotEnrolled(format!("accounts/{account}/legalProfile")))?;
        if store::program_kinds(&mut tx, account)
            .await?
            .iter()
            .any(|k| k == kind.as_str_name())
        {
            return Err(ProfileError::precondition(
                "ALREADY_IN_PROGRAM",
                format!("the account is already in {}", kind.as_str_name()),
            ));
        }
        let country = profile.address.0.country.clone();
        if programs::needs_location_in_legal_country(kind)
            && !store::has_location_in(&mut tx, account, &country).await?
        {
            return Err(ProfileError::precondition(
                "NO_LOCATION_IN_LEGAL_COUNTRY",
                format!(
                    "{} needs a location in the legal country {country}; add one first",
                    kind.as_str_name()
                ),
            ));
        }
        let status = if profile.verification_status == "AUTHORIZED" {
            "ACTIVE"
        } else {
            "PENDING"
        };
        store::insert_program(&mut tx, account, kind.as_str_name(), status).await?;
        let actor = caller.resource_name();
        store::accept_agreement(&mut tx, account, agreement, version, &actor).await?;
        status_changed(&mut tx, account, kind.as_str_name(), "UNSPECIFIED", status).await?;
        store::record_activity(
            &mut tx,
            account,
            &actor,
            "program.enrolled",
            &req.parent,
            None,
            Some(
                json!({ "program": kind.as_str_name(), "status": status, "agreement": agreement }),
            ),
        )
        .await?;
        let row = store::programs(&mut tx, account)
            .await?
            .into_iter()
            .find(|p| p.kind == kind.as_str_name())
            .ok_or_else(|| ProfileError::Internal(anyhow::anyhow!("program vanished")))?;
        tx.commit().await?;
        Ok(program_message(account, &row))
    }

    async fn list_agreements(
        &self,
        caller: &Caller,
        req: ListAgreementsRequest,
    ) -> Result<ListAgreementsResponse> {
        let account = account_id("parent", &req.parent)?;
        caller.require(perm::PROGRAMS_READ, &account.to_string())?;
        let mut conn = self.pool.acquire().await?;
        let rows = store::agreements(&mut conn, account).await?;
        Ok(ListAgreementsResponse {
            agreements: rows.iter().map(|r| agreement_message(account, r)).collect(),
        })
    }

    async fn accept(&self, caller: &Caller, req: AcceptAgreementRequest) -> Result<Agreement> {
        let account = account_id("parent", &req.parent)?;
        caller.require(perm::PROGRAMS_WRITE, &account.to_string())?;
        let known = [
            ProgramKind::Partner,
            ProgramKind::CspDirectBill,
            ProgramKind::CommercialMarketplace,
            ProgramKind::OfficeStore,
            ProgramKind::WindowsXbox,
        ]
        .into_iter()
        .map(programs::agreement)
        .find(|(id, _)| *id == req.agreement);
        let Some((agreement, version)) = known else {
            return Err(ProfileError::field(
                "agreement",
                "is not an agreement of partnerhub",
            ));
        };
        if req.version != version {
            return Err(ProfileError::field(
                "version",
                format!("must be the current version {version}"),
            ));
        }
        if agreement == "microsoft_partner_agreement"
            && !caller.roles.iter().any(|r| r == "global_admin")
        {
            return Err(denied(&format!("accept the {agreement} (Global admin only)")).into());
        }
        let mut tx = self.pool.begin().await?;
        store::profile(&mut tx, account, true)
            .await?
            .filter(|p| p.merged_into.is_none())
            .ok_or_else(|| ProfileError::NotEnrolled(format!("accounts/{account}/legalProfile")))?;
        let actor = caller.resource_name();
        store::accept_agreement(&mut tx, account, agreement, version, &actor).await?;
        // QUALIFIED programs waiting for this agreement become ACTIVE.
        for program in store::programs(&mut tx, account).await? {
            let kind =
                ProgramKind::from_str_name(&program.kind).unwrap_or(ProgramKind::Unspecified);
            if program.status != "QUALIFIED" || programs::agreement(kind).0 != agreement {
                continue;
            }
            if let Some(old) =
                store::set_program_status(&mut tx, account, &program.kind, "ACTIVE").await?
            {
                status_changed(&mut tx, account, &program.kind, &old, "ACTIVE").await?;
            }
        }
        store::record_activity(
            &mut tx,
            account,
            &actor,
            "agreement.accepted",
            &req.parent,
            None,
            Some(json!({ "agreement": agreement, "version": version })),
        )
        .await?;
        let row = store::agreements(&mut tx, account)
            .await?
            .into_iter()
            .find(|a| a.agreement == agreement && a.version == version)
            .ok_or_else(|| ProfileError::Internal(anyhow::anyhow!("agreement vanished")))?;
        tx.commit().await?;
        Ok(agreement_message(account, &row))
    }
}

#[tonic::async_trait]
impl ProgramService for Profile {
    async fn list_programs(
        &self,
        request: Request<ListProgramsRequest>,
    ) -> Result<Response<ListProgramsResponse>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            Profile::list_programs(self, &caller, request.into_inner()).await?,
        ))
    }

    async fn enroll_program(
        &self,
        request: Request<EnrollProgramRequest>,
    ) -> Result<Response<Program>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            Profile::enroll_program(self, &caller, request.into_inner()).await?,
        ))
    }

    async fn list_agreements(
        &self,
        request: Request<ListAgreementsRequest>,
    ) -> Result<Response<ListAgreementsResponse>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            Profile::list_agreements(self, &caller, request.into_inner()).await?,
        ))
    }

    async fn accept_agreement(
        &self,
        request: Request<AcceptAgreementRequest>,
    ) -> Result<Response<Agreement>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            self.accept(&caller, request.into_inner()).await?,
        ))
    }
}
