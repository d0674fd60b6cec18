//! IdentifierService: resolve partner ids.

use partnerhub_platform::auth::{caller, roles::perm};
use partnerhub_platform::error;
use partnerhub_platform::rate_limit::limit_caller;
use partnerhub_proto::profile::v1::{
    LookupPartnerRequest, LookupPartnerResponse, identifier_service_server::IdentifierService,
};
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::Profile;
use crate::error::{ProfileError, Result};
use crate::store;

impl Profile {
    async fn lookup(&self, req: LookupPartnerRequest) -> Result<LookupPartnerResponse> {
        let text = req.partner_id.trim();
        let id: i32 = text
            .parse()
            .ok()
            .filter(|_| text.len() == 7 && text.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| ProfileError::field("partner_id", "must be a 7-digit partner id"))?;
        let mut conn = self.pool.acquire().await?;
        let not_found = || ProfileError::not_found("partner", text.to_owned());
        let (kind, account) = store::partner_id(&mut conn, id)
            .await?
            .ok_or_else(not_found)?;
        if kind == "LOCATION" {
            let mut details = ErrorDetails::new();
            details
                .set_error_info(
                    "LOCATION_PARTNER_ID",
                    error::ERROR_DOMAIN,
                    std::collections::HashMap::new(),
                )
                .add_bad_request_violation(
                    "partner_id",
                    "is a location partner id; enter the company's global partner id",
                );
            return Err(ProfileError::Status(Status::with_error_details(
                Code::InvalidArgument,
                "partner_id is a location partner id; enter the company's global partner id",
                details,
            )));
        }
        let profile = store::profile(&mut conn, account, false)
            .await?
            .filter(|p| p.merged_into.is_none())
            .ok_or_else(not_found)?;
        let locations = store::count_locations(&mut conn, account).await?;
        let programs = store::program_kinds(&mut conn, account)
            .await?
            .iter()
            .filter_map(|k| partnerhub_proto::profile::v1::ProgramKind::from_str_name(k))
            .map(Into::into)
            .collect();
        Ok(LookupPartnerResponse {
            account: format!("accounts/{account}"),
            legal_name: profile.legal_name.clone(),
            country: profile.address.0.country.clone(),
            location_count: i32::try_from(locations).unwrap_or(i32::MAX),
            programs,
        })
    }
}

#[tonic::async_trait]
impl IdentifierService for Profile {
    async fn lookup_partner(
        &self,
        request: Request<LookupPartnerRequest>,
    ) -> Result<Response<LookupPartnerResponse>, Status> {
        let caller = caller(&request)?;
        // Only someone who may invite a company to merge looks one up, in
        // their own account, and not faster than the per-caller allowance.
        caller.require(
            perm::MERGE_WRITE,
            caller.account.as_deref().unwrap_or_default(),
        )?;
        limit_caller(&request, caller)?;
        Ok(Response::new(self.lookup(request.into_inner()).await?))
    }
}
