//! Notification's gRPC services.

use partnerhub_platform::auth::caller;
use partnerhub_platform::error::{self, FieldViolation, invalid_argument};
use partnerhub_platform::validate;
use partnerhub_proto::notification::v1::{
    GetUnreadCountRequest, GetUnreadCountResponse, notification_service_server::NotificationService,
};
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

/// Notification's handlers.
#[derive(Debug, Clone)]
pub struct Notifications {
    pool: PgPool,
}

impl Notifications {
    /// Handlers over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[tonic::async_trait]
impl NotificationService for Notifications {
    async fn get_unread_count(
        &self,
        request: Request<GetUnreadCountRequest>,
    ) -> Result<Response<GetUnreadCountResponse>, Status> {
        let caller = caller(&request)?;
        let parent = &request.get_ref().parent;
        let user = if parent == "users/me" {
            caller.user_id().unwrap_or_default().to_owned()
        } else {
            validate::resource_id(parent, "users")
                .map_err(|e| invalid_argument(vec![FieldViolation::new("parent", e)]))?
                .to_owned()
        };
        caller.require_self(&user)?;
        let user: Uuid = user.parse().map_err(|_| error::not_found("user", parent))?;
        let unread_count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM notifications
             WHERE user_id = $1 AND read_at IS NULL AND archived_at IS NULL",
        )
        .bind(user)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| error::from_sqlx(&e))?;
        Ok(Response::new(GetUnreadCountResponse { unread_count }))
    }
}
