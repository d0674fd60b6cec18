//! The merge saga: after confirmation, profile's `ApplyMerge` then
//! identity's `ApplyMerge`, each idempotent by the merge id, called with the
//! merge service's own service-account token. Progress is stored after each
//! step, so a restart resumes at the step where it stopped; failures are
//! retried with backoff, and after `max_attempts` the merge is FAILED until
//! the initiator retries it. One runner leases a merge at a time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use partnerhub_platform::outbox;
use partnerhub_platform::time::timestamp;
use partnerhub_proto::identity::v1::{
    AccountState, ApplyMergeRequest as IdentityApplyMerge, GetAccountRequest,
    IssueServiceTokenRequest, account_service_client::AccountServiceClient,
    auth_service_client::AuthServiceClient,
};
use partnerhub_proto::merge::v1::{MergeCompleted, MergeFailed};
use partnerhub_proto::profile::v1::{
    ApplyMergeRequest as ProfileApplyMerge, profile_merge_service_client::ProfileMergeServiceClient,
};
use sqlx::PgPool;
use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use crate::api::SOURCE;
use crate::store::{self, InvitationRow};

/// Client credentials of the merge service's account at identity.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: String,
}

/// Runs confirmed merges.
#[derive(Debug, Clone)]
pub struct Saga {
    pool: PgPool,
    profile: Channel,
    identity: Channel,
    credentials: Option<Credentials>,
    token: Arc<Mutex<Option<(String, Instant)>>>,
    /// Attempts before a merge is FAILED.
    pub max_attempts: i32,
    /// Wakes the runner (after a confirmation).
    pub wake: Arc<Notify>,
}

impl Saga {
    /// A saga calling profile and identity over `profile` and `identity`.
    pub fn new(
        pool: PgPool,
        profile: Channel,
        identity: Channel,
        credentials: Option<Credentials>,
    ) -> Self {
        Self {
            pool,
            profile,
            identity,
            credentials,
            token: Arc::new(Mutex::new(None)),
            max_attempts: 5,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Runs until `stop`: claims due merges, expires unanswered invitations.
    pub async fn run(self, stop: CancellationToken) {
        loop {
            if let Err(e) = self.expire().await {
                tracing::warn!(error = %e, "Could not expire merge invitations.");
            }
            loop {
                if stop.is_cancelled() {
                    return;
                }
                match self.step_once().await {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "Merge saga could not claim work.");
                        break;
                    }
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
    }

    async fn expire(&self) -> sqlx::Result<()> {
        let mut tx = self.pool.begin().await?;
        for row in store::expire_due(&mut tx).await? {
            let name = format!(
                "accounts/{}/mergeInvitations/{}",
                row.initiator_account, row.id
            );
            outbox::publish_event(
                &mut tx,
                SOURCE,
                &name,
                &partnerhub_proto::merge::v1::MergeInvitationExpired {
                    merge_invitation: name.clone(),
                    initiator: format!("accounts/{}", row.initiator_account),
                    invitee: format!("accounts/{}", row.invitee_account),
                    actor: String::new(),
                    change_time: Some(timestamp(Utc::now())),
                },
            )
            .await?;
        }
        tx.commit().await
    }

    /// Runs one claimed merge as far as it goes; `false` when nothing was due.
    pub async fn step_once(&self) -> sqlx::Result<bool> {
        let mut conn = self.pool.acquire().await?;
        let Some(row) = store::claim(&mut conn, 60).await? else {
            return Ok(false);
        };
        drop(conn);
        if let Err((step, error)) = self.advance(&row).await {
            let mut tx = self.pool.begin().await?;
            let backoff = 2f64.powi(row.attempts.min(8)) * 0.5;
            let attempts = store::attempt_failed(&mut tx, row.id, &error, backoff).await?;
            tracing::warn!(merge = %row.id, %step, %error, attempts, "Merge step failed.");
            if attempts >= self.max_attempts {
                store::finish(&mut tx, row.id, "FAILED").await?;
                let name = format!(
                    "accounts/{}/mergeInvitations/{}",
                    row.initiator_account, row.id
                );
                outbox::publish_event(
                    &mut tx,
                    SOURCE,
                    &name,
                    &MergeFailed {
                        merge_invitation: name.clone(),
                        initiator: format!("accounts/{}", row.initiator_account),
                        invitee: format!("accounts/{}", row.invitee_account),
                        step: step.to_owned(),
                        error,
                        change_time: Some(timestamp(Utc::now())),
                    },
                )
                .await?;
            }
            tx.commit().await?;
        }
        Ok(true)
    }

    /// Does the steps not done yet, recording each; `Err((step, error))`.
    async fn advance(&self, row: &InvitationRow) -> Result<(), (&'static str, String)> {
        let merge_id = row.id.to_string();
        let source = format!("accounts/{}", row.invitee_account);
        let target = format!("accounts/{}", row.initiator_account);
        let db = |step: &'static str| move |e: sqlx::Error| (step, format!("database: {e}"));
        let mut step = row.step.clone();
        if step == "NONE" {
            let token = self.token().await.map_err(|e| ("profile", e))?;
            let request = authorized(
                &token,
                ProfileApplyMerge {
                    merge_id: merge_id.clone(),
                    source_account: source.clone(),
                    target_account: target.clone(),
                },
            )
            .map_err(|e| ("profile", e))?;
            let moved = ProfileMergeServiceClient::new(self.profile.clone())
                .apply_merge(request)
                .await
                .map_err(|s| ("profile", format!("{:?}: {}", s.code(), s.message())))?
                .into_inner()
                .locations_moved;
            let mut conn = self.pool.acquire().await.map_err(db("profile"))?;
            let moved = (moved > 0).then_some(moved);
            store::set_step(&mut conn, row.id, "PROFILE_DONE", moved, None)
                .await
                .map_err(db("profile"))?;
            step = "PROFILE_DONE".into();
        }
        if step == "PROFILE_DONE" {
            let token = self.token().await.map_err(|e| ("identity", e))?;
            let request = authorized(
                &token,
                IdentityApplyMerge {
                    merge_id: merge_id.clone(),
                    source_account: source.clone(),
                    target_account: target.clone(),
                },
            )
            .map_err(|e| ("identity", e))?;
            let moved = AccountServiceClient::new(self.identity.clone())
                .apply_merge(request)
                .await
                .map_err(|s| ("identity", format!("{:?}: {}", s.code(), s.message())))?
                .into_inner()
                .members_moved;
            let mut conn = self.pool.acquire().await.map_err(db("identity"))?;
            let moved = (moved > 0).then_some(moved);
            store::set_step(&mut conn, row.id, "IDENTITY_DONE", None, moved)
                .await
                .map_err(db("identity"))?;
        }
        let mut tx = self.pool.begin().await.map_err(db("complete"))?;
        let (locations, members) = store::finish(&mut tx, row.id, "COMPLETED")
            .await
            .map_err(db("complete"))?;
        let name = format!(
            "accounts/{}/mergeInvitations/{}",
            row.initiator_account, row.id
        );
        outbox::publish_event(
            &mut tx,
            SOURCE,
            &name,
            &MergeCompleted {
                merge_invitation: name.clone(),
                initiator: target,
                invitee: source,
                locations_moved: locations,
                members_moved: members,
                change_time: Some(timestamp(Utc::now())),
            },
        )
        .await
        .map_err(db("complete"))?;
        tx.commit().await.map_err(db("complete"))?;
        tracing::info!(merge = %row.id, locations, members, "Merge completed.");
        Ok(())
    }

    /// An account's state at identity, read with the service token (the
    /// merge service account holds `platform.identity.accounts.read`).
    pub async fn account_state(&self, account: &str) -> Result<AccountState, tonic::Status> {
        let token = self.token().await.map_err(|e| {
            partnerhub_platform::error::refused(tonic::Code::Unavailable, "IDENTITY_UNAVAILABLE", e)
        })?;
        let request = authorized(
            &token,
            GetAccountRequest {
                name: account.to_owned(),
            },
        )
        .map_err(|e| {
            partnerhub_platform::error::refused(tonic::Code::Unavailable, "IDENTITY_UNAVAILABLE", e)
        })?;
        let found = AccountServiceClient::new(self.identity.clone())
            .get_account(request)
            .await?;
        Ok(found.into_inner().state())
    }

    /// The service-account token, renewed a minute before it expires.
    async fn token(&self) -> Result<String, String> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && *until > Instant::now()
        {
            return Ok(token.clone());
        }
        let credentials = self.credentials.as_ref().ok_or(
            "PARTNERHUB_MERGE_CLIENT_SECRET is not set: the merge service has no service account",
        )?;
        let response = AuthServiceClient::new(self.identity.clone())
            .issue_service_token(IssueServiceTokenRequest {
                client_id: credentials.client_id.clone(),
                client_secret: credentials.client_secret.clone(),
            })
            .await
            .map_err(|s| format!("service token: {:?}: {}", s.code(), s.message()))?
            .into_inner();
        let token = response.access_token.unwrap_or_default();
        let lifetime = token
            .expire_time
            .map(|t| (t.seconds - Utc::now().timestamp()).max(0) as u64)
            .unwrap_or(60);
        let until = Instant::now() + Duration::from_secs(lifetime.saturating_sub(60));
        *cached = Some((token.token.clone(), until));
        Ok(token.token)
    }
}

fn authorized<T>(token: &str, message: T) -> Result<tonic::Request<T>, String> {
    let mut request = tonic::Request::new(message);
    let value = MetadataValue::try_from(format!("Bearer {token}")).map_err(|e| e.to_string())?;
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}
