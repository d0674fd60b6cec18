//! Merge's gRPC services.

use chrono::{DateTime, Utc};
use partnerhub_platform::auth::{caller, roles::perm};
use partnerhub_platform::error::{self, FieldViolation, invalid_argument};
use partnerhub_platform::page;
use partnerhub_platform::time::timestamp;
use partnerhub_platform::validate::{self, Violations};
use partnerhub_proto::merge::v1::{
    ListMergeInvitationsRequest, ListMergeInvitationsResponse, MergeInvitation, MergeState,
    merge_service_server::MergeService,
};
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

/// Merge's handlers.
#[derive(Debug, Clone)]
pub struct Merges {
    pool: PgPool,
}

impl Merges {
    /// Handlers over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

type Row = (Uuid, Uuid, Uuid, String, DateTime<Utc>);

#[tonic::async_trait]
impl MergeService for Merges {
    async fn list_merge_invitations(
        &self,
        request: Request<ListMergeInvitationsRequest>,
    ) -> Result<Response<ListMergeInvitationsResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.get_ref();
        let account = validate::resource_id(&req.parent, "accounts")
            .map_err(|e| invalid_argument(vec![FieldViolation::new("parent", e)]))?;
        caller.require(perm::MERGE_READ, account)?;
        let mut v = Violations::new();
        let size = page::page_size(req.page_size)
            .map_err(|e| v.add("page_size", e))
            .ok();
        let fingerprint = page::fingerprint(&[&req.parent]);
        let after = page::decode::<(DateTime<Utc>, Uuid)>(&req.page_token, &fingerprint)
            .map_err(|e| v.add("page_token", e))
            .ok()
            .flatten();
        v.finish()?;
        let size = size.unwrap_or(page::DEFAULT_PAGE_SIZE);
        let account: Uuid = account
            .parse()
            .map_err(|_| error::not_found("account", &req.parent))?;
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, initiator_account, invitee_account, state, created_at FROM merge_invitations
             WHERE (initiator_account = $1 OR invitee_account = $1)
               AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
             ORDER BY created_at DESC, id DESC LIMIT $4",
        )
        .bind(account)
        .bind(after.map(|k| k.0))
        .bind(after.map(|k| k.1))
        .bind(size + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| error::from_sqlx(&e))?;
        let more = rows.len() as i64 > size;
        let rows = &rows[..rows.len().min(size as usize)];
        let next_page_token = match (more, rows.last()) {
            (true, Some(last)) => page::encode(&(last.4, last.0), &fingerprint),
            _ => String::new(),
        };
        Ok(Response::new(ListMergeInvitationsResponse {
            merge_invitations: rows.iter().map(invitation).collect(),
            next_page_token,
        }))
    }
}

/// The invitation lives under the initiator's account; the invitee sees the
/// same resource.
fn invitation((id, initiator, invitee, state, created_at): &Row) -> MergeInvitation {
    MergeInvitation {
        name: format!("accounts/{initiator}/mergeInvitations/{id}"),
        initiator: format!("accounts/{initiator}"),
        invitee: format!("accounts/{invitee}"),
        state: MergeState::from_str_name(&format!("MERGE_STATE_{state}"))
            .unwrap_or(MergeState::Unspecified)
            .into(),
        create_time: Some(timestamp(*created_at)),
    }
}
