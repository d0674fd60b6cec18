//! ProfileActivityService: who changed what in the profile.

use chrono::{DateTime, Utc};
use partnerhub_platform::auth::{Caller, caller, roles::perm};
use partnerhub_platform::page;
use partnerhub_platform::time::timestamp;
use partnerhub_platform::validate::Violations;
use partnerhub_proto::profile::v1::{
    ListProfileActivityRequest, ListProfileActivityResponse, ProfileActivity,
    profile_activity_service_server::ProfileActivityService,
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{Profile, account_id};
use crate::error::Result;
use crate::store;

impl Profile {
    async fn list_activity(
        &self,
        caller: &Caller,
        req: ListProfileActivityRequest,
    ) -> Result<ListProfileActivityResponse> {
        let account = account_id("parent", &req.parent)?;
        caller.require(perm::LEGAL_READ, &account.to_string())?;
        let mut v = Violations::new();
        let size = page::page_size(req.page_size)
            .map_err(|e| v.add("page_size", e))
            .unwrap_or(page::DEFAULT_PAGE_SIZE);
        let fingerprint = page::fingerprint(&[&req.parent]);
        let after = page::decode::<(DateTime<Utc>, Uuid)>(&req.page_token, &fingerprint)
            .map_err(|e| v.add("page_token", e))
            .ok()
            .flatten();
        v.finish()?;
        let mut conn = self.pool.acquire().await?;
        let mut rows = store::activity(&mut conn, account, after, size + 1).await?;
        let more = rows.len() as i64 > size;
        rows.truncate(size as usize);
        let next_page_token = match (more, rows.last()) {
            (true, Some(last)) => page::encode(&(last.created_at, last.id), &fingerprint),
            _ => String::new(),
        };
        let json =
            |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string()).unwrap_or_default();
        Ok(ListProfileActivityResponse {
            activities: rows
                .iter()
                .map(|r| ProfileActivity {
                    name: format!("accounts/{account}/profileActivities/{}", r.id),
                    actor: r.actor.clone(),
                    action: r.action.clone(),
                    target: r.target.clone(),
                    old_value: json(&r.old_value),
                    new_value: json(&r.new_value),
                    create_time: Some(timestamp(r.created_at)),
                })
                .collect(),
            next_page_token,
        })
    }
}

#[tonic::async_trait]
impl ProfileActivityService for Profile {
    async fn list_profile_activity(
        &self,
        request: Request<ListProfileActivityRequest>,
    ) -> Result<Response<ListProfileActivityResponse>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            self.list_activity(&caller, request.into_inner()).await?,
        ))
    }
}
