//! Verification's gRPC services.

use chrono::{DateTime, Utc};
use partnerhub_platform::auth::{caller, roles::perm};
use partnerhub_platform::error::{self, FieldViolation, invalid_argument};
use partnerhub_platform::time::timestamp;
use partnerhub_platform::validate;
use partnerhub_proto::verification::v1::{
    GetVerificationStatusRequest, Status as VerificationState, SubStatus, VerificationStatus,
    verification_service_server::VerificationService,
};
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

/// Verification's handlers.
#[derive(Debug, Clone)]
pub struct Verification {
    pool: PgPool,
}

impl Verification {
    /// Handlers over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[tonic::async_trait]
impl VerificationService for Verification {
    async fn get_verification_status(
        &self,
        request: Request<GetVerificationStatusRequest>,
    ) -> Result<Response<VerificationStatus>, Status> {
        let caller = caller(&request)?;
        let name = &request.get_ref().name;
        let account = validate::account_of(name, "verificationStatus")
            .map_err(|e| invalid_argument(vec![FieldViolation::new("name", e)]))?;
        caller.require(perm::VERIFICATION_READ, account)?;
        let id: Uuid = account
            .parse()
            .map_err(|_| error::not_found("verificationStatus", name))?;
        let row: Option<(String, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT status, sub_status, updated_at FROM account_status WHERE account_id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| error::from_sqlx(&e))?;
        let status = match row {
            None => VerificationStatus {
                name: name.clone(),
                status: VerificationState::None.into(),
                sub_status: SubStatus::Unspecified.into(),
                update_time: None,
            },
            Some((status, sub_status, updated_at)) => VerificationStatus {
                name: name.clone(),
                status: VerificationState::from_str_name(&format!("STATUS_{status}"))
                    .unwrap_or(VerificationState::Unspecified)
                    .into(),
                sub_status: SubStatus::from_str_name(&format!("SUB_STATUS_{sub_status}"))
                    .unwrap_or(SubStatus::Unspecified)
                    .into(),
                update_time: Some(timestamp(updated_at)),
            },
        };
        Ok(Response::new(status))
    }
}
