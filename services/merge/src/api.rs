//! Merge's gRPC services: invitations, their answers, confirmation and
//! retry. The saga that applies a confirmed merge is in `saga.rs`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use chrono::{DateTime, Utc};
use partnerhub_platform::auth::{Caller, caller, roles::perm};
use partnerhub_platform::error::{self, FieldViolation, invalid_argument};
use partnerhub_platform::time::timestamp;
use partnerhub_platform::validate::{self, Violations};
use partnerhub_platform::{idempotency, outbox, page};
use partnerhub_proto::identity::v1::AccountState;
use partnerhub_proto::merge::v1::{
    AcceptMergeInvitationRequest, CancelMergeInvitationRequest, ConfirmMergeRequest,
    CreateMergeInvitationRequest, GetMergeInvitationRequest, ListMergeInvitationsRequest,
    ListMergeInvitationsResponse, MergeConfirmed, MergeInvitation, MergeInvitationAccepted,
    MergeInvitationCancelled, MergeInvitationCreated, MergeInvitationExpired,
    MergeInvitationRejected, MergePreview, MergeState, PreviewMergeRequest,
    RejectMergeInvitationRequest, RetryMergeRequest, merge_service_server::MergeService,
};
use partnerhub_proto::profile::v1::{
    LookupPartnerRequest, ProgramKind, identifier_service_client::IdentifierServiceClient,
};
use sqlx::{PgConnection, PgPool};
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};
use uuid::Uuid;

use crate::domain::{Action, Side, State, transition};
use crate::store::{self, InvitationRow};

/// `cloudEvents_source` of merge's events.
pub const SOURCE: &str = "//partnerhub/merge";

/// Merge's handlers.
#[derive(Debug, Clone)]
pub struct Merges {
    pool: PgPool,
    profile: Channel,
    invitation_ttl: Duration,
    wake_saga: Arc<Notify>,
    saga: crate::saga::Saga,
}

impl Merges {
    /// Handlers over `pool`, resolving partner ids with profile at `profile`.
    pub fn new(
        pool: PgPool,
        profile: Channel,
        invitation_ttl: Duration,
        saga: crate::saga::Saga,
    ) -> Self {
        Self {
            pool,
            profile,
            invitation_ttl,
            wake_saga: saga.wake.clone(),
            saga,
        }
    }

    /// Resolves a global partner id through profile, with the caller's own
    /// token (profile decides what the caller may see).
    async fn lookup(
        &self,
        token: Option<&tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
        partner_id: &str,
    ) -> Result<(Uuid, MergePreview), Status> {
        let mut request = Request::new(LookupPartnerRequest {
            partner_id: partner_id.to_owned(),
        });
        if let Some(token) = token {
            request
                .metadata_mut()
                .insert("authorization", token.clone());
        }
        let found = IdentifierServiceClient::new(self.profile.clone())
            .lookup_partner(request)
            .await
            .map_err(|status| match status.code() {
                Code::InvalidArgument | Code::NotFound => status,
                _ => {
                    tracing::warn!(code = ?status.code(), "Partner lookup failed.");
                    error::refused(
                        Code::Unavailable,
                        "PROFILE_UNAVAILABLE",
                        "partner lookup is unavailable; retry",
                    )
                }
            })?
            .into_inner();
        let csp = found.programs().any(|p| {
            matches!(
                p,
                ProgramKind::CspIndirectReseller
                    | ProgramKind::CspDirectBill
                    | ProgramKind::CspIndirectProvider
            )
        });
        if csp {
            return Err(error::failed_precondition(
                "CSP_ACCOUNT",
                "partner_id",
                "Cloud Solution Provider accounts are not merged",
            ));
        }
        let account = validate::resource_id(&found.account, "accounts")
            .ok()
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| {
                error::refused(
                    Code::Unavailable,
                    "PROFILE_UNAVAILABLE",
                    "partner lookup gave no account",
                )
            })?;
        Ok((
            account,
            MergePreview {
                account: found.account,
                legal_name: found.legal_name,
                country: found.country,
                location_count: found.location_count,
            },
        ))
    }

    async fn preview(
        &self,
        caller: &Caller,
        token: Option<&tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
        parent: &str,
        partner_id: &str,
    ) -> Result<(Uuid, Uuid, MergePreview), Status> {
        let initiator = account_id("parent", parent)?;
        caller.require(perm::MERGE_WRITE, &initiator.to_string())?;
        let text = partner_id.trim();
        if text.len() != 7 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid_argument(vec![FieldViolation::new(
                "partner_id",
                "must be a 7-digit global partner id",
            )]));
        }
        let (invitee, preview) = self.lookup(token, text).await?;
        if invitee == initiator {
            return Err(error::failed_precondition(
                "SELF_MERGE",
                "partner_id",
                "an account cannot merge with itself",
            ));
        }
        for (account, whose) in [
            (initiator, "your account"),
            (invitee, "the invited account"),
        ] {
            let state = self
                .saga
                .account_state(&format!("accounts/{account}"))
                .await
                .map_err(|status| {
                    if status.code() == Code::NotFound {
                        error::not_found("partner", text)
                    } else {
                        status
                    }
                })?;
            if state != AccountState::Active {
                let what = state
                    .as_str_name()
                    .trim_start_matches("ACCOUNT_STATE_")
                    .to_lowercase();
                return Err(error::failed_precondition(
                    "ACCOUNT_NOT_ACTIVE",
                    "partner_id",
                    format!("{whose} is {what} and cannot take part in a merge"),
                ));
            }
        }
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| error::from_sqlx(&e))?;
        if store::merged_away(&mut conn, invitee)
            .await
            .map_err(|e| error::from_sqlx(&e))?
        {
            return Err(error::failed_precondition(
                "ALREADY_MERGED",
                "partner_id",
                "this account was merged into another one",
            ));
        }
        Ok((initiator, invitee, preview))
    }

    async fn create(
        &self,
        caller: &Caller,
        token: Option<&tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
        req: CreateMergeInvitationRequest,
    ) -> Result<MergeInvitation, Status> {
        let (initiator, invitee, preview) = self
            .preview(caller, token, &req.parent, &req.partner_id)
            .await?;
        let db = |e: sqlx::Error| error::from_sqlx(&e);
        let mut tx = self.pool.begin().await.map_err(db)?;
        let scope = format!("accounts/{initiator}:CreateMergeInvitation");
        if let Some(stored) =
            idempotency::replay::<MergeInvitation>(&mut tx, &scope, &req.request_id, &req).await?
        {
            return Ok(stored);
        }
        store::lock_accounts(&mut tx, initiator, invitee)
            .await
            .map_err(db)?;
        for (account, whose) in [
            (initiator, "your account"),
            (invitee, "the invited account"),
        ] {
            if store::open_for(&mut tx, account).await.map_err(db)? > 0 {
                return Err(error::failed_precondition(
                    "OPEN_MERGE_EXISTS",
                    "partner_id",
                    format!("{whose} already has an open merge; finish or cancel it first"),
                ));
            }
        }
        let expires_at = Utc::now() + self.invitation_ttl;
        let row = store::insert(
            &mut tx,
            &store::NewInvitation {
                id: Uuid::now_v7(),
                initiator,
                invitee,
                partner_id: req.partner_id.trim(),
                legal_name: &preview.legal_name,
                country: &preview.country,
                created_by: &caller.resource_name(),
                expires_at,
            },
        )
        .await
        .map_err(db)?;
        let message = invitation_message(&row);
        outbox::publish_event(
            &mut tx,
            SOURCE,
            &message.name,
            &MergeInvitationCreated {
                merge_invitation: message.name.clone(),
                initiator: message.initiator.clone(),
                invitee: message.invitee.clone(),
                created_by: caller.resource_name(),
                expire_time: Some(timestamp(expires_at)),
            },
        )
        .await
        .map_err(db)?;
        idempotency::remember(&mut tx, &scope, &req.request_id, &message).await?;
        tx.commit().await.map_err(db)?;
        Ok(message)
    }

    /// Loads an invitation the caller may see, and which side the caller is.
    async fn visible(
        &self,
        conn: &mut PgConnection,
        caller: &Caller,
        name: &str,
        permission: &str,
        lock: bool,
    ) -> Result<(InvitationRow, Side), Status> {
        let (initiator, id) = invitation_name(name)?;
        let not_found = || error::not_found("mergeInvitation", name);
        let row = store::get(conn, id, lock)
            .await
            .map_err(|e| error::from_sqlx(&e))?
            .ok_or_else(not_found)?;
        if row.initiator_account != initiator {
            return Err(not_found());
        }
        let mine = caller
            .account
            .as_deref()
            .and_then(|a| a.parse::<Uuid>().ok());
        let side = if mine == Some(row.initiator_account) {
            Side::Initiator
        } else if mine == Some(row.invitee_account) {
            Side::Invitee
        } else {
            return Err(not_found());
        };
        let account = if side == Side::Initiator {
            row.initiator_account
        } else {
            row.invitee_account
        };
        caller.require(permission, &account.to_string())?;
        Ok((row, side))
    }

    /// Applies an answer (accept, reject, cancel) by the right side.
    async fn answer(
        &self,
        caller: &Caller,
        name: &str,
        action: Action,
        reason: &str,
    ) -> Result<MergeInvitation, Status> {
        let db = |e: sqlx::Error| error::from_sqlx(&e);
        let mut tx = self.pool.begin().await.map_err(db)?;
        let (row, side) = self
            .visible(&mut tx, caller, name, perm::MERGE_WRITE, true)
            .await?;
        if side != action.side() {
            let who = if action.side() == Side::Invitee {
                "the invited account"
            } else {
                "the inviting account"
            };
            return Err(error::refused(
                Code::PermissionDenied,
                "WRONG_SIDE",
                format!("only {who} may do this"),
            ));
        }
        let current = State::parse(&row.state).unwrap_or(State::Failed);
        // An invitation nobody answered in time expires when next touched.
        if row.expires_at <= Utc::now() && transition(current, Action::Expire).is_ok() {
            let expired = store::set_state(&mut tx, row.id, State::Expired.as_str(), "")
                .await
                .map_err(db)?;
            let m = invitation_message(&expired);
            outbox::publish_event(
                &mut tx,
                SOURCE,
                &m.name,
                &MergeInvitationExpired {
                    merge_invitation: m.name.clone(),
                    initiator: m.initiator.clone(),
                    invitee: m.invitee.clone(),
                    actor: String::new(),
                    change_time: Some(timestamp(Utc::now())),
                },
            )
            .await
            .map_err(db)?;
            tx.commit().await.map_err(db)?;
            return Err(illegal(State::Expired, action));
        }
        let next = transition(current, action).map_err(|e| illegal(e.current, e.action))?;
        let updated = store::set_state(&mut tx, row.id, next.as_str(), reason)
            .await
            .map_err(db)?;
        let m = invitation_message(&updated);
        let (actor, now) = (caller.resource_name(), Some(timestamp(Utc::now())));
        let (n, i, e) = (m.name.clone(), m.initiator.clone(), m.invitee.clone());
        match action {
            Action::Confirm => {
                outbox::publish_event(
                    &mut tx,
                    SOURCE,
                    &n,
                    &MergeConfirmed {
                        merge_invitation: n.clone(),
                        initiator: i,
                        invitee: e,
                        actor,
                        change_time: now,
                    },
                )
                .await
            }
            Action::Retry => Ok(uuid::Uuid::nil()),
            Action::Accept => {
                outbox::publish_event(
                    &mut tx,
                    SOURCE,
                    &n,
                    &MergeInvitationAccepted {
                        merge_invitation: n.clone(),
                        initiator: i,
                        invitee: e,
                        actor,
                        change_time: now,
                    },
                )
                .await
            }
            Action::Reject => {
                outbox::publish_event(
                    &mut tx,
                    SOURCE,
                    &n,
                    &MergeInvitationRejected {
                        merge_invitation: n.clone(),
                        initiator: i,
                        invitee: e,
                        actor,
                        change_time: now,
                        reason: reason.to_owned(),
                    },
                )
                .await
            }
            _ => {
                outbox::publish_event(
                    &mut tx,
                    SOURCE,
                    &n,
                    &MergeInvitationCancelled {
                        merge_invitation: n.clone(),
                        initiator: i,
                        invitee: e,
                        actor,
                        change_time: now,
                    },
                )
                .await
            }
        }
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        if matches!(action, Action::Confirm | Action::Retry) {
            self.wake_saga.notify_one();
        }
        Ok(m)
    }
}

/// FAILED_PRECONDITION naming the current state.
fn illegal(current: State, action: Action) -> Status {
    error::failed_precondition(
        "ILLEGAL_TRANSITION",
        "merge invitation",
        format!(
            "cannot {} a merge invitation that is {}",
            format!("{action:?}").to_lowercase(),
            current.as_str()
        ),
    )
}

fn account_id(field: &str, name: &str) -> Result<Uuid, Status> {
    validate::resource_id(name, "accounts")
        .ok()
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| {
            invalid_argument(vec![FieldViolation::new(
                field,
                "must be `accounts/{account}`",
            )])
        })
}

/// Parses `accounts/{a}/mergeInvitations/{m}`.
fn invitation_name(name: &str) -> Result<(Uuid, Uuid), Status> {
    let bad = || {
        invalid_argument(vec![FieldViolation::new(
            "name",
            "must be `accounts/{account}/mergeInvitations/{merge_invitation}`",
        )])
    };
    let rest = name.strip_prefix("accounts/").ok_or_else(bad)?;
    let (account, id) = rest.split_once("/mergeInvitations/").ok_or_else(bad)?;
    Ok((
        account.parse().map_err(|_| bad())?,
        id.parse().map_err(|_| bad())?,
    ))
}

/// The invitation lives under the initiator's account; the invitee sees the
/// same resource.
fn invitation_message(row: &InvitationRow) -> MergeInvitation {
    MergeInvitation {
        name: format!(
            "accounts/{}/mergeInvitations/{}",
            row.initiator_account, row.id
        ),
        initiator: format!("accounts/{}", row.initiator_account),
        invitee: format!("accounts/{}", row.invitee_account),
        state: MergeState::from_str_name(&format!("MERGE_STATE_{}", row.state))
            .unwrap_or(MergeState::Unspecified)
            .into(),
        create_time: Some(timestamp(row.created_at)),
        invitee_partner_id: row.invitee_partner_id.clone(),
        invitee_legal_name: row.invitee_legal_name.clone(),
        invitee_country: row.invitee_country.clone(),
        reject_reason: row.reject_reason.clone(),
        expire_time: Some(timestamp(row.expires_at)),
        update_time: Some(timestamp(row.updated_at)),
        last_error: if row.state == "FAILED" {
            row.last_error.clone()
        } else {
            String::new()
        },
    }
}

#[tonic::async_trait]
impl MergeService for Merges {
    async fn preview_merge(
        &self,
        request: Request<PreviewMergeRequest>,
    ) -> Result<Response<MergePreview>, Status> {
        let caller = caller(&request)?.clone();
        let token = request.metadata().get("authorization").cloned();
        let req = request.into_inner();
        let (_, _, preview) = self
            .preview(&caller, token.as_ref(), &req.parent, &req.partner_id)
            .await?;
        Ok(Response::new(preview))
    }

    async fn create_merge_invitation(
        &self,
        request: Request<CreateMergeInvitationRequest>,
    ) -> Result<Response<MergeInvitation>, Status> {
        let caller = caller(&request)?.clone();
        let token = request.metadata().get("authorization").cloned();
        Ok(Response::new(
            self.create(&caller, token.as_ref(), request.into_inner())
                .await?,
        ))
    }

    async fn list_merge_invitations(
        &self,
        request: Request<ListMergeInvitationsRequest>,
    ) -> Result<Response<ListMergeInvitationsResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.get_ref();
        let account = account_id("parent", &req.parent)?;
        caller.require(perm::MERGE_READ, &account.to_string())?;
        let mut v = Violations::new();
        let size = page::page_size(req.page_size)
            .map_err(|e| v.add("page_size", e))
            .unwrap_or(page::DEFAULT_PAGE_SIZE);
        let fingerprint =
            page::fingerprint(&[&req.parent, if req.history { "history" } else { "current" }]);
        let after = page::decode::<(DateTime<Utc>, Uuid)>(&req.page_token, &fingerprint)
            .map_err(|e| v.add("page_token", e))
            .ok()
            .flatten();
        v.finish()?;
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| error::from_sqlx(&e))?;
        let mut rows = store::list(&mut conn, account, req.history, after, size + 1)
            .await
            .map_err(|e| error::from_sqlx(&e))?;
        let more = rows.len() as i64 > size;
        rows.truncate(size as usize);
        let next_page_token = match (more, rows.last()) {
            (true, Some(last)) => page::encode(&(last.created_at, last.id), &fingerprint),
            _ => String::new(),
        };
        Ok(Response::new(ListMergeInvitationsResponse {
            merge_invitations: rows.iter().map(invitation_message).collect(),
            next_page_token,
        }))
    }

    async fn get_merge_invitation(
        &self,
        request: Request<GetMergeInvitationRequest>,
    ) -> Result<Response<MergeInvitation>, Status> {
        let caller = caller(&request)?.clone();
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| error::from_sqlx(&e))?;
        let (row, _) = self
            .visible(
                &mut conn,
                &caller,
                &request.get_ref().name,
                perm::MERGE_READ,
                false,
            )
            .await?;
        Ok(Response::new(invitation_message(&row)))
    }

    async fn accept_merge_invitation(
        &self,
        request: Request<AcceptMergeInvitationRequest>,
    ) -> Result<Response<MergeInvitation>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            self.answer(&caller, &request.get_ref().name, Action::Accept, "")
                .await?,
        ))
    }

    async fn reject_merge_invitation(
        &self,
        request: Request<RejectMergeInvitationRequest>,
    ) -> Result<Response<MergeInvitation>, Status> {
        let caller = caller(&request)?.clone();
        let req = request.into_inner();
        validate::text(req.reason.trim(), 1, 500)
            .map_err(|e| invalid_argument(vec![FieldViolation::new("reason", e)]))?;
        Ok(Response::new(
            self.answer(&caller, &req.name, Action::Reject, req.reason.trim())
                .await?,
        ))
    }

    async fn confirm_merge(
        &self,
        request: Request<ConfirmMergeRequest>,
    ) -> Result<Response<MergeInvitation>, Status> {
        let caller = caller(&request)?.clone();
        let req = request.into_inner();
        if !req.acknowledge_irreversible {
            return Err(invalid_argument(vec![FieldViolation::new(
                "acknowledge_irreversible",
                "must be true: a merge cannot be undone",
            )]));
        }
        Ok(Response::new(
            self.answer(&caller, &req.name, Action::Confirm, "").await?,
        ))
    }

    async fn retry_merge(
        &self,
        request: Request<RetryMergeRequest>,
    ) -> Result<Response<MergeInvitation>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            self.answer(&caller, &request.get_ref().name, Action::Retry, "")
                .await?,
        ))
    }

    async fn cancel_merge_invitation(
        &self,
        request: Request<CancelMergeInvitationRequest>,
    ) -> Result<Response<MergeInvitation>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            self.answer(&caller, &request.get_ref().name, Action::Cancel, "")
                .await?,
        ))
    }
}
