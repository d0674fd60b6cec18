//! ProfileMergeService: the profile step of the merge saga.

use chrono::Utc;
use partnerhub_platform::auth::{Caller, caller};
use partnerhub_platform::outbox;
use partnerhub_platform::time::timestamp;
use partnerhub_platform::validate::{self, Violations};
use partnerhub_proto::profile::v1::{
    ApplyMergeRequest, ApplyMergeResponse, ProfileMerged,
    profile_merge_service_server::ProfileMergeService,
};
use serde_json::json;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{Profile, SOURCE};
use crate::error::{ProfileError, Result};
use crate::store;

const MERGE_APPLY: &str = "platform.profile.merge.apply";

fn account(field: &str, name: &str, v: &mut Violations) -> Option<Uuid> {
    validate::resource_id(name, "accounts")
        .map_err(|e| v.add(field, e))
        .ok()
        .and_then(|id| id.parse().ok())
}

impl Profile {
    async fn apply_merge(
        &self,
        caller: &Caller,
        req: ApplyMergeRequest,
    ) -> Result<ApplyMergeResponse> {
        caller.require_platform(MERGE_APPLY)?;
        let mut v = Violations::new();
        v.check("merge_id", validate::text(&req.merge_id, 1, 100));
        let source = account("source_account", &req.source_account, &mut v);
        let target = account("target_account", &req.target_account, &mut v);
        if source.is_some() && source == target {
            v.add("target_account", "must differ from source_account");
        }
        v.finish()?;
        let (Some(source), Some(target)) = (source, target) else {
            return Err(ProfileError::field("source_account", "is required"));
        };
        let mut tx = self.pool.begin().await?;
        // Lock both profiles in a fixed order: concurrent merges cannot deadlock.
        let (first, second) = if source < target {
            (source, target)
        } else {
            (target, source)
        };
        let a = store::profile(&mut tx, first, true).await?;
        let b = store::profile(&mut tx, second, true).await?;
        if let Some((s, t, moved)) = store::applied_merge(&mut tx, &req.merge_id).await? {
            if (s, t) != (source, target) {
                return Err(ProfileError::precondition(
                    "MERGE_ID_REUSED",
                    "this merge id was applied to other accounts",
                ));
            }
            return Ok(ApplyMergeResponse {
                locations_moved: moved,
                already_applied: true,
            });
        }
        let (source_row, target_row) = if first == source { (a, b) } else { (b, a) };
        let source_row = source_row.ok_or_else(|| {
            ProfileError::NotEnrolled(format!("{}/legalProfile", req.source_account))
        })?;
        let target_row = target_row.ok_or_else(|| {
            ProfileError::NotEnrolled(format!("{}/legalProfile", req.target_account))
        })?;
        for row in [&source_row, &target_row] {
            if row.merged_into.is_some() {
                return Err(ProfileError::precondition(
                    "ALREADY_MERGED",
                    format!(
                        "accounts/{} was merged into another account",
                        row.account_id
                    ),
                ));
            }
        }
        let moved = store::merge_profiles(&mut tx, &req.merge_id, source, target).await?;
        let locations: Vec<String> = moved
            .iter()
            .map(|l| format!("accounts/{target}/locations/{l}"))
            .collect();
        outbox::publish_event(
            &mut tx,
            SOURCE,
            &req.target_account,
            &ProfileMerged {
                merge_id: req.merge_id.clone(),
                source_account: req.source_account.clone(),
                target_account: req.target_account.clone(),
                locations: locations.clone(),
                merge_time: Some(timestamp(Utc::now())),
            },
        )
        .await?;
        let actor = caller.resource_name();
        for (account, action) in [
            (source, "profile.merged_away"),
            (target, "profile.merged_in"),
        ] {
            store::record_activity(
                &mut tx,
                account,
                &actor,
                action,
                &req.source_account,
                None,
                Some(json!({ "merge_id": req.merge_id, "target": req.target_account, "locations": locations })),
            )
            .await?;
        }
        tx.commit().await?;
        self.profiles.invalidate(&source);
        self.profiles.invalidate(&target);
        Ok(ApplyMergeResponse {
            locations_moved: i32::try_from(moved.len()).unwrap_or(i32::MAX),
            already_applied: false,
        })
    }
}

#[tonic::async_trait]
impl ProfileMergeService for Profile {
    async fn apply_merge(
        &self,
        request: Request<ApplyMergeRequest>,
    ) -> Result<Response<ApplyMergeResponse>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            Profile::apply_merge(self, &caller, request.into_inner()).await?,
        ))
    }
}
