//! ActivityService: the account's audit log.

use chrono::{DateTime, Utc};
use partnerhub_platform::auth::{Caller, caller, roles::perm};
use partnerhub_platform::page;
use partnerhub_platform::time::timestamp;
use partnerhub_platform::validate::Violations;
use partnerhub_proto::identity::v1::{
    Activity, ListActivityRequest, ListActivityResponse, activity_service_server::ActivityService,
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{Identity, account_id};
use crate::error::Result;
use crate::store::activity;

fn time(t: &Option<prost_types::Timestamp>) -> Result<Option<DateTime<Utc>>, String> {
    match t {
        None => Ok(None),
        Some(t) => partnerhub_platform::time::from_timestamp(t)
            .map(Some)
            .ok_or_else(|| "is not a valid time".to_owned()),
    }
}

impl Identity {
    async fn list_activity(
        &self,
        caller: &Caller,
        req: ListActivityRequest,
    ) -> Result<ListActivityResponse> {
        let account = account_id("parent", &req.parent)?;
        caller.require(perm::ACTIVITY_READ, &account.to_string())?;
        let mut v = Violations::new();
        let size = page::page_size(req.page_size)
            .map_err(|e| v.add("page_size", e))
            .unwrap_or(page::DEFAULT_PAGE_SIZE);
        let actor_ok = req.actor.is_empty()
            || req
                .actor
                .strip_prefix("users/")
                .is_some_and(|id| Uuid::try_parse(id).is_ok())
            || req
                .actor
                .strip_prefix("serviceAccounts/")
                .is_some_and(|id| !id.is_empty() && id.len() <= 100);
        if !actor_ok {
            v.add("actor", "must be `users/{user}` or `serviceAccounts/{id}`");
        }
        let start = time(&req.start_time)
            .map_err(|e| v.add("start_time", e))
            .ok()
            .flatten();
        let end = time(&req.end_time)
            .map_err(|e| v.add("end_time", e))
            .ok()
            .flatten();
        if let (Some(s), Some(e)) = (start, end)
            && s >= e
        {
            v.add("end_time", "must be after start_time");
        }
        let fingerprint = page::fingerprint(&[
            &req.parent,
            &req.actor,
            &format!("{start:?}"),
            &format!("{end:?}"),
        ]);
        let after = page::decode::<(DateTime<Utc>, Uuid)>(&req.page_token, &fingerprint)
            .map_err(|e| v.add("page_token", e))
            .ok()
            .flatten();
        v.finish()?;
        let filter = activity::Filter {
            actor: (!req.actor.is_empty()).then(|| req.actor.clone()),
            start,
            end,
            after,
        };
        let mut conn = self.pool.acquire().await?;
        let mut rows = activity::list(&mut conn, account, &filter, size + 1).await?;
        let more = rows.len() as i64 > size;
        rows.truncate(size as usize);
        let next_page_token = match (more, rows.last()) {
            (true, Some(last)) => page::encode(&(last.created_at, last.id), &fingerprint),
            _ => String::new(),
        };
        let json =
            |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string()).unwrap_or_default();
        Ok(ListActivityResponse {
            activities: rows
                .iter()
                .map(|r| Activity {
                    name: format!("accounts/{account}/activities/{}", r.id),
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
impl ActivityService for Identity {
    async fn list_activity(
        &self,
        request: Request<ListActivityRequest>,
    ) -> Result<Response<ListActivityResponse>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            Identity::list_activity(self, &caller, request.into_inner()).await?,
        ))
    }
}
