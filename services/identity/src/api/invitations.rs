//! Invitations as consent records (ADR 0008): InviteUsers and
//! AcceptInvitation of MemberService, and InvitationService (list, get,
//! resend, revoke). No user and no membership exists until the invitee
//! accepts, signed in as themselves (the mailed token plus their current
//! password) or, for an email without a user, by the mailed token setting a
//! password.

use std::collections::BTreeSet;

use chrono::Utc;
use partnerhub_platform::auth::{Caller, caller, roles::perm};
use partnerhub_platform::outbox;
use partnerhub_platform::page;
use partnerhub_platform::time::timestamp;
use partnerhub_platform::validate::{self, Violations};
use partnerhub_proto::identity::v1::{
    AcceptInvitationRequest, GetInvitationRequest, Invitation, InvitationState, InviteUsersRequest,
    InviteUsersResponse, ListInvitationsRequest, ListInvitationsResponse, Member, MemberState,
    ResendInvitationRequest, RevokeInvitationRequest, Session, User, UserInvited,
    invitation_service_server::InvitationService,
};
use partnerhub_proto::notification::v1::SendMail;
use sqlx::PgConnection;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::members::{audit, roles_changed};
use super::{Identity, SOURCE, account_id, actor, member_name, remember, replay, send_mail};
use crate::domain::{self, authority, lockout, secrets};
use crate::error::{IdentityError, Result};
use crate::password;
use crate::store::invitations::{self, InvitationRow, NewInvitation};
use crate::store::{UserRow, accounts, activity, members, tokens};

/// Parses `accounts/{a}/invitations/{i}`.
fn invitation_name(name: &str) -> Result<(Uuid, Uuid)> {
    let bad = || {
        IdentityError::field(
            "name",
            "must be `accounts/{account}/invitations/{invitation}`",
        )
    };
    let rest = name.strip_prefix("accounts/").ok_or_else(bad)?;
    let (account, id) = rest.split_once("/invitations/").ok_or_else(bad)?;
    Ok((
        account.parse().map_err(|_| bad())?,
        id.parse().map_err(|_| bad())?,
    ))
}

fn name_of(row: &InvitationRow) -> String {
    format!("accounts/{}/invitations/{}", row.account_id, row.id)
}

/// The state shown for a row (a pending invitation past its expiry is
/// EXPIRED).
fn state_of(row: &InvitationRow) -> InvitationState {
    match row.state.as_str() {
        "PENDING" if row.expires_at <= Utc::now() => InvitationState::Expired,
        "PENDING" => InvitationState::Pending,
        "ACCEPTED" => InvitationState::Accepted,
        "REVOKED" => InvitationState::Revoked,
        _ => InvitationState::Unspecified,
    }
}

fn invitation_message(row: &InvitationRow) -> Invitation {
    Invitation {
        email: row.email.clone(),
        roles: authority::assignments(&row.roles, &row.scopes.0),
        name: name_of(row),
        invited_by: row.invited_by.clone(),
        create_time: Some(timestamp(row.created_at)),
        expire_time: Some(timestamp(row.expires_at)),
        state: state_of(row).into(),
    }
}

/// The roles `caller` may use to grant: company-wide ones only.
pub(super) fn granting_roles(caller: &Caller) -> Vec<String> {
    authority::unscoped_roles(&caller.roles, &caller.scopes)
}

impl Identity {
    /// Mails an invitation token to the invited email.
    async fn mail_invitation(
        &self,
        conn: &mut PgConnection,
        row: &InvitationRow,
        token: String,
    ) -> Result<()> {
        let user = members::user_by_email(conn, &row.email).await?;
        let account_name = accounts::get(conn, row.account_id)
            .await?
            .map(|a| a.display_name)
            .unwrap_or_default();
        send_mail(
            conn,
            SendMail {
                template: "identity.invitation".into(),
                to: row.email.clone(),
                locale: user
                    .as_ref()
                    .map_or_else(|| "en-US".to_owned(), |u| u.locale.clone()),
                params: [
                    ("token".to_owned(), token),
                    ("account_name".to_owned(), account_name),
                    (
                        "expires_days".to_owned(),
                        (self.config.invitation_ttl.as_secs() / 86_400).to_string(),
                    ),
                ]
                .into(),
                user: user.map(|u| format!("users/{}", u.id)).unwrap_or_default(),
                account: format!("accounts/{}", row.account_id),
                dedup_key: format!("invitation:{}", Uuid::now_v7()),
            },
        )
        .await
    }

    pub(super) async fn invite(
        &self,
        caller: &Caller,
        req: InviteUsersRequest,
    ) -> Result<InviteUsersResponse> {
        let account = account_id("parent", &req.parent)?;
        caller.require(perm::MEMBERS_CREATE, &account.to_string())?;
        let granting = granting_roles(caller);
        let mut v = Violations::new();
        if req.invitations.is_empty() || req.invitations.len() > 10 {
            v.add("invitations", "must hold 1 to 10 invitations");
        }
        let mut seen = BTreeSet::new();
        for (i, inv) in req.invitations.iter().enumerate() {
            v.check(
                &format!("invitations[{i}].email"),
                validate::email(&inv.email),
            );
            if !seen.insert(domain::normalize_email(&inv.email)) {
                v.add(format!("invitations[{i}].email"), "is listed twice");
            }
            authority::check_assignments(&format!("invitations[{i}].roles"), &inv.roles, &mut v);
            if let Some(refusal) = authority::forbidden_change(&granting, &[], &inv.roles) {
                v.add(format!("invitations[{i}].roles"), refusal.describe());
            }
        }
        v.finish()?;
        let scope = format!("accounts/{account}:InviteUsers");
        let mut tx = self.pool.begin().await?;
        if let Some(stored) =
            replay::<InviteUsersResponse>(&mut tx, &scope, &req.request_id, &req).await?
        {
            return Ok(stored);
        }
        self.lock_active(&mut tx, account).await?;
        let by = actor(caller);
        let mut v = Violations::new();
        let mut invited = Vec::new();
        for (i, inv) in req.invitations.iter().enumerate() {
            let user = members::user_by_email(&mut tx, &inv.email).await?;
            if let Some(user) = &user {
                if user.deleted_at.is_some() {
                    v.add(
                        format!("invitations[{i}].email"),
                        "belongs to a user removed from the directory",
                    );
                    continue;
                }
                if members::member(&mut tx, account, user.id)
                    .await?
                    .is_some_and(|m| m.state == "ACTIVE")
                {
                    v.add(
                        format!("invitations[{i}].email"),
                        "is already a member of this account",
                    );
                    continue;
                }
            }
            let role_ids = authority::role_ids(&inv.roles);
            let token = secrets::token();
            let row = invitations::insert(
                &mut tx,
                &NewInvitation {
                    account,
                    email: &inv.email,
                    roles: &role_ids,
                    scopes: &authority::scopes(&inv.roles),
                    invited_by: &by,
                    token_hash: &secrets::hash(&token),
                    expires_at: Utc::now() + self.config.invitation_ttl,
                },
            )
            .await?;
            self.mail_invitation(&mut tx, &row, token).await?;
            let name = name_of(&row);
            outbox::publish_event(
                &mut tx,
                SOURCE,
                &name,
                &UserInvited {
                    user: user
                        .as_ref()
                        .map(|u| format!("users/{}", u.id))
                        .unwrap_or_default(),
                    account: format!("accounts/{account}"),
                    email: row.email.clone(),
                    roles: role_ids.clone(),
                    invited_by: by.clone(),
                    create_time: Some(timestamp(row.created_at)),
                    invitation: name.clone(),
                },
            )
            .await?;
            activity::record(
                &mut tx,
                activity::Entry {
                    account,
                    actor: &by,
                    action: "user.invited",
                    target: &name,
                    old: None,
                    new: Some(serde_json::json!({ "email": row.email, "roles": role_ids })),
                },
            )
            .await?;
            invited.push(invitation_message(&row));
        }
        v.finish()?;
        // `members` (deprecated) stays empty: nobody is a member yet.
        let response = InviteUsersResponse {
            invitations: invited,
            ..InviteUsersResponse::default()
        };
        remember(&mut tx, &scope, &req.request_id, &response).await?;
        tx.commit().await?;
        Ok(response)
    }

    /// Proves that the caller of an acceptance is `user`: their current
    /// password, under the sign-in lock-out.
    async fn prove_invitee(&self, user: &UserRow, password_given: &str) -> Result<()> {
        if password_given.is_empty() {
            return Err(IdentityError::field(
                "password",
                "is required: this email already has a user; give that user's current password",
            ));
        }
        let email = domain::normalize_email(&user.email);
        let mut conn = self.pool.acquire().await?;
        if let Some(until) = tokens::locked_until(&mut conn, &email).await? {
            let wait = (until - Utc::now()).to_std().unwrap_or_default();
            return Err(IdentityError::LockedOut(wait));
        }
        if password::verify(password_given.to_owned(), user.password_hash.clone()).await? {
            return Ok(());
        }
        let failures = tokens::record_failure(&mut conn, &email).await?;
        if let Some(delay) = lockout::delay(failures) {
            tokens::lock_email(&mut conn, &email, Utc::now() + delay).await?;
        }
        Err(IdentityError::field(
            "password",
            "is not the current password of the invited user",
        ))
    }

    pub(super) async fn accept(&self, req: AcceptInvitationRequest) -> Result<Session> {
        if req.token.is_empty() || req.token.len() > 200 {
            return Err(IdentityError::field("token", "is required"));
        }
        if req.password.chars().count() > 128 {
            return Err(IdentityError::field(
                "password",
                "must be at most 128 characters",
            ));
        }
        let hash = secrets::hash(&req.token);
        // A first look, without locks, to know whether the email has a user
        // who must prove it is them (argon2 runs outside the transaction).
        let mut conn = self.pool.acquire().await?;
        let peek = invitations::lock_by_token(&mut conn, &hash)
            .await?
            .ok_or(IdentityError::InvalidToken("token"))?;
        let existing = members::user_by_email(&mut conn, &peek.email).await?;
        drop(conn);
        let new_password = match &existing {
            Some(user) if user.deleted_at.is_some() => {
                return Err(IdentityError::Precondition {
                    reason: "USER_REMOVED",
                    message: "the invited email belongs to a user removed from the directory"
                        .into(),
                });
            }
            Some(user) if user.password_hash.is_some() => {
                self.prove_invitee(user, &req.password).await?;
                None
            }
            // No user yet (or one an old invitation made and nobody claimed):
            // the token holder owns the mailbox and sets the password.
            _ => {
                let mut v = Violations::new();
                v.check("given_name", validate::text(&req.given_name, 1, 50));
                v.check("family_name", validate::text(&req.family_name, 1, 50));
                v.check("password", domain::password(&req.password));
                v.finish()?;
                Some(password::hash(req.password.clone()).await?)
            }
        };
        let mut tx = self.pool.begin().await?;
        let inv = invitations::lock_by_token(&mut tx, &hash)
            .await?
            .filter(|i| i.id == peek.id)
            .ok_or(IdentityError::InvalidToken("token"))?;
        let account = inv.account_id;
        self.lock_active(&mut tx, account).await?;
        let user = match (
            members::user_by_email(&mut tx, &inv.email).await?,
            new_password,
        ) {
            (Some(user), None) if existing.as_ref().is_some_and(|e| e.id == user.id) => user,
            (Some(user), Some(hash)) if user.password_hash.is_none() => {
                // An unclaimed user an old invitation made: claimed now, with
                // no home directory (the inviter never owned them).
                members::set_names(&mut tx, user.id, &req.given_name, &req.family_name).await?;
                members::set_password(&mut tx, user.id, &hash, false).await?;
                members::set_home(&mut tx, user.id, None).await?;
                members::user(&mut tx, user.id)
                    .await?
                    .ok_or(IdentityError::InvalidToken("token"))?
            }
            (None, Some(hash)) => members::insert_user(
                &mut tx,
                &members::NewUser {
                    id: Uuid::now_v7(),
                    email: inv.email.trim(),
                    given_name: &req.given_name,
                    family_name: &req.family_name,
                    locale: "en-US",
                    password_hash: Some(&hash),
                    home_account: None,
                    must_change_password: false,
                },
            )
            .await?
            .ok_or(IdentityError::EmailTaken)?,
            // The email's user changed between the two looks: try again.
            _ => {
                return Err(IdentityError::Status(Status::aborted(
                    "the invited email changed hands during the acceptance; try again",
                )));
            }
        };
        if members::member(&mut tx, account, user.id)
            .await?
            .is_some_and(|m| m.state == "ACTIVE")
        {
            return Err(IdentityError::Precondition {
                reason: "ALREADY_MEMBER",
                message: "the invitee is already a member of this account".into(),
            });
        }
        members::upsert_membership(
            &mut tx,
            account,
            user.id,
            &inv.roles,
            &inv.scopes.0,
            "ACTIVE",
        )
        .await?;
        invitations::resolve(&mut tx, inv.id, "ACCEPTED", Some(user.id)).await?;
        let user_name = format!("users/{}", user.id);
        roles_changed(
            &mut tx,
            account,
            &user_name,
            &[],
            &authority::assignments(&inv.roles, &inv.scopes.0),
            &user_name,
        )
        .await?;
        audit(
            &mut tx,
            user.home_account_id,
            activity::Entry {
                account,
                actor: &user_name,
                action: "invitation.accepted",
                target: &user_name,
                old: None,
                new: Some(serde_json::json!({
                    "roles": inv.roles,
                    "invitation": name_of(&inv),
                    "invited_by": inv.invited_by,
                })),
            },
        )
        .await?;
        let membership = accounts::membership(&mut tx, user.id, Some(account))
            .await?
            .ok_or(IdentityError::InvalidToken("token"))?;
        let session = self.session(&mut tx, &user, &membership, None).await?;
        tx.commit().await?;
        Ok(session)
    }

    /// Loads an invitation of the caller's account for a change.
    async fn invitation_for_change(
        &self,
        conn: &mut PgConnection,
        caller: &Caller,
        name: &str,
    ) -> Result<InvitationRow> {
        let (account, id) = invitation_name(name)?;
        caller.require(perm::MEMBERS_CREATE, &account.to_string())?;
        self.lock_active(conn, account).await?;
        let row = invitations::lock(conn, account, id)
            .await?
            .ok_or_else(|| IdentityError::not_found("invitation", name.to_owned()))?;
        if row.state != "PENDING" {
            return Err(IdentityError::Precondition {
                reason: "NOT_PENDING",
                message: format!("the invitation is {}", row.state.to_lowercase()),
            });
        }
        Ok(row)
    }

    pub(super) async fn resend_invitation(
        &self,
        caller: &Caller,
        req: ResendInvitationRequest,
    ) -> Result<Invitation> {
        let mut tx = self.pool.begin().await?;
        let row = self
            .invitation_for_change(&mut tx, caller, &req.name)
            .await?;
        let roles = authority::assignments(&row.roles, &row.scopes.0);
        if let Some(refusal) = authority::forbidden_change(&granting_roles(caller), &[], &roles) {
            return Err(refusal.into());
        }
        let token = secrets::token();
        let row = invitations::renew(
            &mut tx,
            row.id,
            &secrets::hash(&token),
            Utc::now() + self.config.invitation_ttl,
        )
        .await?;
        self.mail_invitation(&mut tx, &row, token).await?;
        record(&mut tx, caller, &row, "invitation.resent").await?;
        tx.commit().await?;
        Ok(invitation_message(&row))
    }

    /// The deprecated MemberService.ResendInvitation: an invitation name
    /// resends it; a member name is never INVITED any more.
    #[allow(deprecated)]
    pub(super) async fn resend_as_member(
        &self,
        caller: &Caller,
        req: ResendInvitationRequest,
    ) -> Result<Member> {
        if let Ok((account, user)) = member_name(&req.name) {
            caller.require(perm::MEMBERS_CREATE, &account.to_string())?;
            let mut conn = self.pool.acquire().await?;
            let member = members::member(&mut conn, account, user)
                .await?
                .ok_or_else(|| IdentityError::not_found("member", req.name.clone()))?;
            return Err(IdentityError::Precondition {
                reason: "NOT_INVITED",
                message: format!(
                    "the member is {}; pending invitations are `accounts/{{account}}/invitations/{{id}}` (InvitationService)",
                    member.state.to_lowercase()
                ),
            });
        }
        let invitation = self.resend_invitation(caller, req).await?;
        Ok(Member {
            name: invitation.name.clone(),
            user: Some(User {
                email: invitation.email.clone(),
                ..User::default()
            }),
            roles: invitation.roles.clone(),
            state: MemberState::Invited.into(),
            create_time: invitation.create_time,
            ..Member::default()
        })
    }

    async fn revoke_invitation(
        &self,
        caller: &Caller,
        req: RevokeInvitationRequest,
    ) -> Result<Invitation> {
        let mut tx = self.pool.begin().await?;
        let row = self
            .invitation_for_change(&mut tx, caller, &req.name)
            .await?;
        let row = invitations::resolve(&mut tx, row.id, "REVOKED", None).await?;
        record(&mut tx, caller, &row, "invitation.revoked").await?;
        tx.commit().await?;
        Ok(invitation_message(&row))
    }

    async fn get_invitation(
        &self,
        caller: &Caller,
        req: GetInvitationRequest,
    ) -> Result<Invitation> {
        let (account, id) = invitation_name(&req.name)?;
        caller.require(perm::MEMBERS_READ, &account.to_string())?;
        let mut conn = self.pool.acquire().await?;
        let row = invitations::get(&mut conn, account, id)
            .await?
            .ok_or_else(|| IdentityError::not_found("invitation", req.name.clone()))?;
        Ok(invitation_message(&row))
    }

    async fn list_invitations(
        &self,
        caller: &Caller,
        req: ListInvitationsRequest,
    ) -> Result<ListInvitationsResponse> {
        let account = account_id("parent", &req.parent)?;
        caller.require(perm::MEMBERS_READ, &account.to_string())?;
        let mut v = Violations::new();
        let size = page::page_size(req.page_size)
            .map_err(|e| v.add("page_size", e))
            .unwrap_or(page::DEFAULT_PAGE_SIZE);
        let fingerprint = page::fingerprint(&[&req.parent]);
        let after = page::decode::<Uuid>(&req.page_token, &fingerprint)
            .map_err(|e| v.add("page_token", e))
            .ok()
            .flatten();
        v.finish()?;
        let mut conn = self.pool.acquire().await?;
        let mut rows = invitations::list_pending(&mut conn, account, after, size + 1).await?;
        let more = rows.len() as i64 > size;
        rows.truncate(size as usize);
        let next_page_token = match (more, rows.last()) {
            (true, Some(last)) => page::encode(&last.id, &fingerprint),
            _ => String::new(),
        };
        Ok(ListInvitationsResponse {
            invitations: rows.iter().map(invitation_message).collect(),
            next_page_token,
        })
    }
}

#[tonic::async_trait]
impl InvitationService for Identity {
    async fn list_invitations(
        &self,
        request: Request<ListInvitationsRequest>,
    ) -> Result<Response<ListInvitationsResponse>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            Identity::list_invitations(self, &caller, request.into_inner()).await?,
        ))
    }

    async fn get_invitation(
        &self,
        request: Request<GetInvitationRequest>,
    ) -> Result<Response<Invitation>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            Identity::get_invitation(self, &caller, request.into_inner()).await?,
        ))
    }

    async fn resend_invitation(
        &self,
        request: Request<ResendInvitationRequest>,
    ) -> Result<Response<Invitation>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            Identity::resend_invitation(self, &caller, request.into_inner()).await?,
        ))
    }

    async fn revoke_invitation(
        &self,
        request: Request<RevokeInvitationRequest>,
    ) -> Result<Response<Invitation>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            Identity::revoke_invitation(self, &caller, request.into_inner()).await?,
        ))
    }
}

/// Records `action` on the invitation `row` in its account's activity.
async fn record(
    conn: &mut PgConnection,
    caller: &Caller,
    row: &InvitationRow,
    action: &str,
) -> Result<()> {
    activity::record(
        conn,
        activity::Entry {
            account: row.account_id,
            actor: &actor(caller),
            action,
            target: &name_of(row),
            old: None,
            new: Some(serde_json::json!({ "email": row.email })),
        },
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invitation_names_parse() {
        let a = Uuid::now_v7();
        let i = Uuid::now_v7();
        assert_eq!(
            invitation_name(&format!("accounts/{a}/invitations/{i}")).ok(),
            Some((a, i))
        );
        assert!(invitation_name(&format!("accounts/{a}/members/{i}")).is_err());
        assert!(invitation_name("accounts/x/invitations/y").is_err());
    }
}
