//! AccountService: open, read and list accounts; merge and suspension.

use chrono::Utc;
use partnerhub_platform::auth::{Caller, caller, roles};
use partnerhub_platform::outbox;
use partnerhub_platform::page;
use partnerhub_platform::time::timestamp;
use partnerhub_platform::validate::{self, Violations};
use partnerhub_proto::identity::v1::{
    Account, AccountCreated, AccountMembership, AccountMerged, AccountState, AccountStateChanged,
    ApplyMergeRequest, ApplyMergeResponse, CreateAccountRequest, GetAccountRequest,
    ListMyAccountsRequest, ListMyAccountsResponse, SetAccountStateRequest,
    account_service_server::AccountService,
};
use sqlx::PgConnection;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::members::roles_changed;
use super::sessions::{self, Ending};
use super::{
    Identity, SOURCE, account_id, account_message, account_state, actor, caller_user, remember,
    replay,
};
use crate::domain::authority;
use crate::error::{IdentityError, Result};
use crate::store::{accounts, activity, members};

/// Platform permission of ApplyMerge.
const MERGE_APPLY: &str = "platform.identity.merge.apply";
/// Platform permission of SetAccountState.
const SET_STATE: &str = "platform.identity.accounts.set_state";

impl Identity {
    async fn create_account(&self, caller: &Caller, req: CreateAccountRequest) -> Result<Account> {
        let user = caller_user(caller)?;
        validate::text(&req.display_name, 1, 100)
            .map_err(|e| IdentityError::field("display_name", e))?;
        let scope = format!("users/{user}:CreateAccount");
        let mut tx = self.pool.begin().await?;
        if let Some(stored) = replay::<Account>(&mut tx, &scope, &req.request_id, &req).await? {
            return Ok(stored);
        }
        let account = accounts::insert(&mut tx, Uuid::now_v7(), &req.display_name, user).await?;
        let roles: Vec<String> = roles::FOUNDER_ROLES
            .iter()
            .map(|r| (*r).to_owned())
            .collect();
        members::upsert_membership(
            &mut tx,
            account.id,
            user,
            &roles,
            &Default::default(),
            "ACTIVE",
        )
        .await?;
        // A user who joined other accounts by invitation has no home yet:
        // the first company of their own becomes it (ADR 0008).
        members::claim_home(&mut tx, user, account.id).await?;
        let account_name = format!("accounts/{}", account.id);
        let user_name = format!("users/{user}");
        outbox::publish_event(
            &mut tx,
            SOURCE,
            &account_name,
            &AccountCreated {
                account: account_name.clone(),
                display_name: account.display_name.clone(),
                created_by: user_name.clone(),
                create_time: Some(timestamp(account.created_at)),
            },
        )
        .await?;
        roles_changed(
            &mut tx,
            account.id,
            &user_name,
            &[],
            &authority::assignments(&roles, &Default::default()),
            &user_name,
        )
        .await?;
        activity::record(
            &mut tx,
            activity::Entry {
                account: account.id,
                actor: &user_name,
                action: "account.created",
                target: &account_name,
                old: None,
                new: Some(serde_json::json!({ "display_name": account.display_name })),
            },
        )
        .await?;
        let response = account_message(&account);
        remember(&mut tx, &scope, &req.request_id, &response).await?;
        tx.commit().await?;
        Ok(response)
    }

    async fn list_my_accounts(
        &self,
        caller: &Caller,
        req: ListMyAccountsRequest,
    ) -> Result<ListMyAccountsResponse> {
        let user = caller_user(caller)?;
        let mut v = Violations::new();
        let size = page::page_size(req.page_size)
            .map_err(|e| v.add("page_size", e))
            .unwrap_or(page::DEFAULT_PAGE_SIZE);
        let fingerprint = page::fingerprint(&[&user.to_string()]);
        let after = page::decode::<Uuid>(&req.page_token, &fingerprint)
            .map_err(|e| v.add("page_token", e))
            .ok()
            .flatten();
        v.finish()?;
        let mut conn = self.pool.acquire().await?;
        let mut rows = accounts::of_user(&mut conn, user, after, size + 1).await?;
        let more = rows.len() as i64 > size;
        rows.truncate(size as usize);
        let next_page_token = match (more, rows.last()) {
            (true, Some(last)) => page::encode(&last.account.id, &fingerprint),
            _ => String::new(),
        };
        Ok(ListMyAccountsResponse {
            accounts: rows
                .iter()
                .map(|m| AccountMembership {
                    account: Some(account_message(&m.account)),
                    roles: authority::assignments(&m.roles, &m.scopes.0),
                })
                .collect(),
            next_page_token,
        })
    }

    async fn apply_merge(
        &self,
        caller: &Caller,
        req: ApplyMergeRequest,
    ) -> Result<ApplyMergeResponse> {
        caller.require_platform(MERGE_APPLY)?;
        let mut v = Violations::new();
        v.check("merge_id", validate::text(&req.merge_id, 1, 100));
        let source = account_id("source_account", &req.source_account)
            .map_err(|e| collect(&mut v, e))
            .ok();
        let target = account_id("target_account", &req.target_account)
            .map_err(|e| collect(&mut v, e))
            .ok();
        if source.is_some() && source == target {
            v.add("target_account", "must differ from source_account");
        }
        v.finish()?;
        let (Some(source), Some(target)) = (source, target) else {
            return Err(IdentityError::field("source_account", "is required"));
        };
        let mut tx = self.pool.begin().await?;
        // Lock both accounts in a fixed order so concurrent merges cannot deadlock.
        let (first, second) = if source < target {
            (source, target)
        } else {
            (target, source)
        };
        let a = accounts::lock(&mut tx, first).await?;
        let b = accounts::lock(&mut tx, second).await?;
        if let Some((s, t, moved)) = accounts::applied_merge(&mut tx, &req.merge_id).await? {
            if (s, t) != (source, target) {
                return Err(IdentityError::Precondition {
                    reason: "MERGE_ID_REUSED",
                    message: "this merge id was applied to other accounts".into(),
                });
            }
            return Ok(ApplyMergeResponse {
                members_moved: moved,
                already_applied: true,
            });
        }
        let (source_row, target_row) = if first == source { (a, b) } else { (b, a) };
        let source_row = source_row
            .ok_or_else(|| IdentityError::not_found("account", req.source_account.clone()))?;
        let target_row = target_row
            .ok_or_else(|| IdentityError::not_found("account", req.target_account.clone()))?;
        for row in [&source_row, &target_row] {
            if row.state != "ACTIVE" {
                return Err(IdentityError::Precondition {
                    reason: "ACCOUNT_NOT_ACTIVE",
                    message: format!(
                        "accounts/{} is {} and cannot take part in a merge",
                        row.id,
                        row.state.to_lowercase()
                    ),
                });
            }
        }
        let by = actor(caller);
        let mut moved = 0;
        for member in members::of_account(&mut tx, source).await? {
            let existing = members::member(&mut tx, target, member.user.id).await?;
            let (roles, scopes, state) = match &existing {
                // Already a member of the target: keep both sets of roles.
                Some(e) => {
                    let mut roles = e.roles.clone();
                    roles.extend(
                        member
                            .roles
                            .iter()
                            .filter(|r| !e.roles.contains(r))
                            .cloned(),
                    );
                    let mut scopes = member.scopes.0.clone();
                    scopes.extend(e.scopes.0.clone());
                    let state = if e.state == "ACTIVE" || member.state == "ACTIVE" {
                        "ACTIVE"
                    } else {
                        e.state.as_str()
                    };
                    (roles, scopes, state.to_owned())
                }
                None => (
                    member.roles.clone(),
                    member.scopes.0.clone(),
                    member.state.clone(),
                ),
            };
            members::upsert_membership(&mut tx, target, member.user.id, &roles, &scopes, &state)
                .await?;
            let old = existing
                .as_ref()
                .map(|e| authority::assignments(&e.roles, &e.scopes.0))
                .unwrap_or_default();
            roles_changed(
                &mut tx,
                target,
                &format!("users/{}", member.user.id),
                &old,
                &authority::assignments(&roles, &scopes),
                &by,
            )
            .await?;
            moved += 1;
        }
        accounts::set_state(&mut tx, source, "MERGED", Some(target)).await?;
        accounts::record_merge(&mut tx, &req.merge_id, source, target, moved).await?;
        let now = Some(timestamp(Utc::now()));
        outbox::publish_event(
            &mut tx,
            SOURCE,
            &req.source_account,
            &AccountStateChanged {
                account: req.source_account.clone(),
                old_state: AccountState::Active.into(),
                new_state: AccountState::Merged.into(),
                reason: format!("merged into {}", req.target_account),
                change_time: now,
            },
        )
        .await?;
        // After the state change, so a service learns the account's state
        // first (and refuses with that reason).
        sessions::end(&mut tx, Ending::Account(source), "account_merged").await?;
        outbox::publish_event(
            &mut tx,
            SOURCE,
            &req.target_account,
            &AccountMerged {
                merge_id: req.merge_id.clone(),
                source_account: req.source_account.clone(),
                target_account: req.target_account.clone(),
                members_moved: moved,
                merge_time: now,
            },
        )
        .await?;
        for (account, action) in [
            (source, "account.merged_away"),
            (target, "account.merged_in"),
        ] {
            activity::record(
                &mut tx,
                activity::Entry {
                    account,
                    actor: &by,
                    action,
                    target: &req.source_account,
                    old: None,
                    new: Some(serde_json::json!({ "merge_id": req.merge_id, "target": req.target_account, "members_moved": moved })),
                },
            )
            .await?;
        }
        tx.commit().await?;
        tracing::info!(%source, %target, moved, merge_id = %req.merge_id, "Merge applied.");
        Ok(ApplyMergeResponse {
            members_moved: moved,
            already_applied: false,
        })
    }

    async fn set_account_state(
        &self,
        caller: &Caller,
        req: SetAccountStateRequest,
    ) -> Result<Account> {
        caller.require_platform(SET_STATE)?;
        let account = account_id("name", &req.name)?;
        let state = AccountState::try_from(req.state).unwrap_or(AccountState::Unspecified);
        let mut v = Violations::new();
        let new_state = match state {
            AccountState::Active => "ACTIVE",
            AccountState::Suspended => "SUSPENDED",
            _ => {
                v.add("state", "must be ACTIVE or SUSPENDED");
                ""
            }
        };
        v.check("reason", validate::text(&req.reason, 1, 500));
        v.finish()?;
        let mut tx = self.pool.begin().await?;
        let updated =
            change_state(&mut tx, account, new_state, &req.reason, &actor(caller)).await?;
        tx.commit().await?;
        Ok(account_message(&updated))
    }
}

/// Moves `account` to `new_state` (ACTIVE or SUSPENDED) in the caller's
/// transaction: tokens of a suspended account are revoked, the change is an
/// event and an activity entry. A MERGED or DISABLED account is final
/// (FAILED_PRECONDITION); the same state changes nothing.
pub(crate) async fn change_state(
    tx: &mut PgConnection,
    account: Uuid,
    new_state: &str,
    reason: &str,
    actor: &str,
) -> Result<crate::store::AccountRow> {
    let name = format!("accounts/{account}");
    let current = accounts::lock(tx, account)
        .await?
        .ok_or_else(|| IdentityError::not_found("account", name.clone()))?;
    if current.state == "MERGED" || current.state == "DISABLED" {
        return Err(IdentityError::Precondition {
            reason: "ACCOUNT_FINAL",
            message: format!(
                "the account is {} and its state cannot change",
                current.state.to_lowercase()
            ),
        });
    }
    if current.state == new_state {
        return Ok(current);
    }
    let updated = accounts::set_state(tx, account, new_state, None).await?;
    state_changed(tx, &name, &current.state, new_state, reason).await?;
    if new_state == "SUSPENDED" {
        sessions::end(tx, Ending::Account(account), "account_suspended").await?;
    }
    activity::record(
        tx,
        activity::Entry {
            account,
            actor,
            action: "account.state_changed",
            target: &name,
            old: Some(serde_json::json!({ "state": current.state })),
            new: Some(serde_json::json!({ "state": new_state, "reason": reason })),
        },
    )
    .await?;
    Ok(updated)
}

fn collect(v: &mut Violations, e: IdentityError) {
    if let IdentityError::Invalid(list) = e {
        for f in list {
            v.add(f.field, f.description);
        }
    }
}

async fn state_changed(
    conn: &mut PgConnection,
    account: &str,
    old: &str,
    new: &str,
    reason: &str,
) -> Result<()> {
    outbox::publish_event(
        conn,
        SOURCE,
        account,
        &AccountStateChanged {
            account: account.to_owned(),
            old_state: account_state(old).into(),
            new_state: account_state(new).into(),
            reason: reason.to_owned(),
            change_time: Some(timestamp(Utc::now())),
        },
    )
    .await?;
    Ok(())
}

#[tonic::async_trait]
impl AccountService for Identity {
    async fn create_account(
        &self,
        request: Request<CreateAccountRequest>,
    ) -> Result<Response<Account>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            Identity::create_account(self, &caller, request.into_inner()).await?,
        ))
    }

    async fn get_account(
        &self,
        request: Request<GetAccountRequest>,
    ) -> Result<Response<Account>, Status> {
        let caller = caller(&request)?;
        let name = &request.get_ref().name;
        let id = account_id("name", name)?;
        caller.require(roles::perm::ACCOUNTS_READ, &id.to_string())?;
        let mut conn = self.pool.acquire().await.map_err(IdentityError::from)?;
        let account = accounts::get(&mut conn, id)
            .await
            .map_err(IdentityError::from)?
            .ok_or_else(|| IdentityError::not_found("account", name.clone()))?;
        Ok(Response::new(account_message(&account)))
    }

    async fn list_my_accounts(
        &self,
        request: Request<ListMyAccountsRequest>,
    ) -> Result<Response<ListMyAccountsResponse>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            Identity::list_my_accounts(self, &caller, request.into_inner()).await?,
        ))
    }

    async fn apply_merge(
        &self,
        request: Request<ApplyMergeRequest>,
    ) -> Result<Response<ApplyMergeResponse>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            Identity::apply_merge(self, &caller, request.into_inner()).await?,
        ))
    }

    async fn set_account_state(
        &self,
        request: Request<SetAccountStateRequest>,
    ) -> Result<Response<Account>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            Identity::set_account_state(self, &caller, request.into_inner()).await?,
        ))
    }
}
