//! Profile's gRPC services.

use chrono::{DateTime, Utc};
use partnerhub_platform::auth::{caller, roles::perm};
use partnerhub_platform::error::{self, FieldViolation, invalid_argument};
use partnerhub_platform::time::timestamp;
use partnerhub_platform::{etag, validate};
use partnerhub_proto::profile::v1::{
    GetLegalProfileRequest, LegalProfile, legal_profile_service_server::LegalProfileService,
};
use sqlx::PgPool;
use tonic::{Code, Request, Response, Status};
use uuid::Uuid;

/// Profile's handlers.
#[derive(Debug, Clone)]
pub struct Profile {
    pool: PgPool,
}

impl Profile {
    /// Handlers over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[tonic::async_trait]
impl LegalProfileService for Profile {
    async fn get_legal_profile(
        &self,
        request: Request<GetLegalProfileRequest>,
    ) -> Result<Response<LegalProfile>, Status> {
        let caller = caller(&request)?;
        let name = &request.get_ref().name;
        let account = validate::account_of(name, "legalProfile")
            .map_err(|e| invalid_argument(vec![FieldViolation::new("name", e)]))?;
        caller.require(perm::LEGAL_READ, account)?;
        let id: Uuid = account
            .parse()
            .map_err(|_| error::not_found("legalProfile", name))?;
        let row: Option<(String, String, DateTime<Utc>, i64)> = sqlx::query_as(
            "SELECT legal_name, country, updated_at, version FROM legal_profiles WHERE account_id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| error::from_sqlx(&e))?;
        let Some((legal_name, country, updated_at, version)) = row else {
            return Err(error::refused(
                Code::NotFound,
                "NOT_ENROLLED",
                format!("{name} does not exist: the account has not enrolled yet"),
            ));
        };
        Ok(Response::new(LegalProfile {
            name: name.clone(),
            legal_name,
            country,
            update_time: Some(timestamp(updated_at)),
            etag: etag::of(version),
        }))
    }
}
