//! MemberService: the users of the caller's active account.

use std::collections::BTreeSet;

use chrono::Utc;
use partnerhub_platform::auth::{Caller, caller, roles::perm};
use partnerhub_platform::outbox;
use partnerhub_platform::time::timestamp;
use partnerhub_platform::validate::{self, Violations};
use partnerhub_platform::{etag, page};
use partnerhub_proto::identity::v1::{
    AcceptInvitationRequest, BulkCreateUsersRequest, BulkCreateUsersResponse, CreateUserRequest,
    CreateUserResponse, CreatedUser, GetMemberRequest, InviteUsersRequest, InviteUsersResponse,
    ListMembersRequest, ListMembersResponse, Member, MemberRemoved, MemberRolesChanged,
    MemberState, RemovalScope, RemoveMemberRequest, RemoveMemberResponse, ResendInvitationRequest,
    ResetPasswordRequest, ResetPasswordResponse, RoleAssignment, Session, UpdateMemberRequest,
    UserCreated, UserInvited, member_service_server::MemberService,
};
use partnerhub_proto::notification::v1::SendMail;
use sqlx::PgConnection;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::auth::password_changed;
use super::{
    Identity, SOURCE, account_id, actor, member_message, member_name, remember, replay, send_mail,
};
use crate::domain::{self, authority, csv_import, secrets};
use crate::error::{IdentityError, Result};
use crate::password;
use crate::store::{MemberRow, UserRow, accounts, activity, members, tokens};

/// A user to create with a temporary password.
struct NewMember {
    email: String,
    given_name: String,
    family_name: String,
    roles: Vec<RoleAssignment>,
}

impl Identity {
    /// Locks an active account for a membership change.
    async fn lock_active(&self, conn: &mut PgConnection, account: Uuid) -> Result<()> {
        let row = accounts::lock(conn, account)
            .await?
            .ok_or_else(|| IdentityError::not_found("account", format!("accounts/{account}")))?;
        if row.state != "ACTIVE" {
            return Err(IdentityError::AccountUnavailable(row.state.to_lowercase()));
        }
        Ok(())
    }

    /// Creates users with temporary passwords in one transaction.
    async fn create_members(
        &self,
        caller: &Caller,
        account: Uuid,
        new: Vec<NewMember>,
        conn: &mut PgConnection,
    ) -> Result<Vec<CreatedUser>> {
        let by = actor(caller);
        let mut created = Vec::with_capacity(new.len());
        // Each user costs an argon2 hash: an account has a budget of them
        // per hour, and they run in the bulk lane, one at a time, so the
        // other cores stay free for sign-ins (docs/security.md).
        self.spend_created_users(account, new.len())?;
        let passwords: Vec<String> = new.iter().map(|_| secrets::temporary_password()).collect();
        let hashes =
            futures::future::try_join_all(passwords.iter().map(|p| password::hash_bulk(p.clone())))
                .await?;
        for ((m, temporary_password), hash) in new.into_iter().zip(passwords).zip(hashes) {
            let user = members::insert_user(
                conn,
                &members::NewUser {
                    id: Uuid::now_v7(),
                    email: m.email.trim(),
                    given_name: &m.given_name,
                    family_name: &m.family_name,
                    locale: "en-US",
                    password_hash: Some(&hash),
                    home_account: account,
                    must_change_password: true,
                },
            )
            .await?
            .ok_or(IdentityError::EmailTaken)?;
            let role_ids = authority::role_ids(&m.roles);
            members::upsert_membership(
                conn,
                account,
                user.id,
                &role_ids,
                &authority::scopes(&m.roles),
                "ACTIVE",
            )
            .await?;
            let user_name = format!("users/{}", user.id);
            outbox::publish_event(
                conn,
                SOURCE,
                &user_name,
                &UserCreated {
                    user: user_name.clone(),
                    account: format!("accounts/{account}"),
                    email: user.email.clone(),
                    given_name: user.given_name.clone(),
                    family_name: user.family_name.clone(),
                    locale: user.locale.clone(),
                    roles: role_ids.clone(),
                    create_time: Some(timestamp(user.created_at)),
                    created_by: by.clone(),
                },
            )
            .await?;
            activity::record(
                conn,
                activity::Entry {
                    account,
                    actor: &by,
                    action: "user.created",
                    target: &user_name,
                    old: None,
                    new: Some(serde_json::json!({ "email": user.email, "roles": role_ids })),
                },
            )
            .await?;
            let row = members::member(conn, account, user.id)
                .await?
                .ok_or_else(|| IdentityError::Internal(anyhow::anyhow!("member vanished")))?;
            created.push(CreatedUser {
                member: Some(member_message(&row)),
                temporary_password,
            });
        }
        Ok(created)
    }

    async fn create_user(
        &self,
        caller: &Caller,
        req: CreateUserRequest,
    ) -> Result<CreateUserResponse> {
        let account = account_id("parent", &req.parent)?;
        caller.require(perm::MEMBERS_CREATE, &account.to_string())?;
        let mut v = Violations::new();
        v.check("email", validate::email(&req.email));
        v.check("given_name", validate::text(&req.given_name, 1, 50));
        v.check("family_name", validate::text(&req.family_name, 1, 50));
        authority::check_assignments("roles", &req.roles, &mut v);
        v.finish()?;
        if let Some(role) = authority::forbidden_change(&caller.roles, &[], &req.roles) {
            return Err(IdentityError::RoleNotAssignable(role));
        }
        let scope = format!("accounts/{account}:CreateUser");
        let mut tx = self.pool.begin().await?;
        if let Some(stored) =
            replay::<CreateUserResponse>(&mut tx, &scope, &req.request_id, &req).await?
        {
            return Ok(stored);
        }
        self.lock_active(&mut tx, account).await?;
        let mut created = self
            .create_members(
                caller,
                account,
                vec![NewMember {
                    email: req.email.clone(),
                    given_name: req.given_name.clone(),
                    family_name: req.family_name.clone(),
                    roles: req.roles.clone(),
                }],
                &mut tx,
            )
            .await?;
        let first = created
            .pop()
            .ok_or_else(|| IdentityError::Internal(anyhow::anyhow!("nothing created")))?;
        let response = CreateUserResponse {
            member: first.member,
            temporary_password: first.temporary_password,
        };
        // The password is shown once: a replay returns the member without it.
        let stored = CreateUserResponse {
            temporary_password: String::new(),
            ..response.clone()
        };
        remember(&mut tx, &scope, &req.request_id, &stored).await?;
        tx.commit().await?;
        Ok(response)
    }

    async fn bulk_create(
        &self,
        caller: &Caller,
        req: BulkCreateUsersRequest,
    ) -> Result<BulkCreateUsersResponse> {
        let account = account_id("parent", &req.parent)?;
        caller.require(perm::MEMBERS_CREATE, &account.to_string())?;
        let rows = csv_import::parse(&req.csv).map_err(|v| IdentityError::Invalid(v.into_vec()))?;
        let mut v = Violations::new();
        let mut tx = self.pool.begin().await?;
        let emails: Vec<String> = rows
            .iter()
            .map(|r| domain::normalize_email(&r.email))
            .collect();
        let taken: BTreeSet<String> = members::taken_emails(&mut tx, &emails)
            .await?
            .into_iter()
            .collect();
        let mut new = Vec::with_capacity(rows.len());
        for (i, row) in rows.into_iter().enumerate() {
            let n = i + 1;
            if taken.contains(&domain::normalize_email(&row.email)) {
                v.add(format!("rows[{n}].email"), "already belongs to a user");
            }
            let roles: Vec<RoleAssignment> = row
                .roles
                .iter()
                .map(|r| RoleAssignment {
                    role: r.clone(),
                    locations: vec![],
                })
                .collect();
            if let Some(role) = authority::forbidden_change(&caller.roles, &[], &roles) {
                v.add(
                    format!("rows[{n}].roles"),
                    format!("your roles may not assign {role}"),
                );
            }
            new.push(NewMember {
                email: row.email,
                given_name: row.given_name,
                family_name: row.family_name,
                roles,
            });
        }
        v.finish()?;
        let scope = format!("accounts/{account}:BulkCreateUsers");
        if let Some(stored) =
            replay::<BulkCreateUsersResponse>(&mut tx, &scope, &req.request_id, &req).await?
        {
            return Ok(stored);
        }
        self.lock_active(&mut tx, account).await?;
        let users = self.create_members(caller, account, new, &mut tx).await?;
        let response = BulkCreateUsersResponse { users };
        let stored = BulkCreateUsersResponse {
            users: response
                .users
                .iter()
                .map(|u| CreatedUser {
                    member: u.member.clone(),
                    temporary_password: String::new(),
                })
                .collect(),
        };
        remember(&mut tx, &scope, &req.request_id, &stored).await?;
        tx.commit().await?;
        Ok(response)
    }

    async fn invite(
        &self,
        caller: &Caller,
        req: InviteUsersRequest,
    ) -> Result<InviteUsersResponse> {
        let account = account_id("parent", &req.parent)?;
        caller.require(perm::MEMBERS_CREATE, &account.to_string())?;
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
            if let Some(role) = authority::forbidden_change(&caller.roles, &[], &inv.roles) {
                v.add(
                    format!("invitations[{i}].roles"),
                    format!("your roles may not assign {role}"),
                );
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
        let account_row = accounts::get(&mut tx, account).await?;
        let by = actor(caller);
        let mut v = Violations::new();
        let mut invited = Vec::new();
        for (i, inv) in req.invitations.iter().enumerate() {
            let user = match members::user_by_email(&mut tx, &inv.email).await? {
                Some(user) => user,
                None => members::insert_user(
                    &mut tx,
                    &members::NewUser {
                        id: Uuid::now_v7(),
                        email: inv.email.trim(),
                        given_name: "",
                        family_name: "",
                        locale: "en-US",
                        password_hash: None,
                        home_account: account,
                        must_change_password: false,
                    },
                )
                .await?
                .ok_or(IdentityError::EmailTaken)?,
            };
            let existing = members::member(&mut tx, account, user.id).await?;
            if existing.is_some_and(|m| m.state == "ACTIVE") {
                v.add(
                    format!("invitations[{i}].email"),
                    "is already a member of this account",
                );
                continue;
            }
            if user.deleted_at.is_some() {
                v.add(
                    format!("invitations[{i}].email"),
                    "belongs to a user removed from the directory",
                );
                continue;
            }
            let role_ids = authority::role_ids(&inv.roles);
            members::upsert_membership(
                &mut tx,
                account,
                user.id,
                &role_ids,
                &authority::scopes(&inv.roles),
                "INVITED",
            )
            .await?;
            self.send_invitation(
                &mut tx,
                &user,
                account,
                account_row
                    .as_ref()
                    .map(|a| a.display_name.as_str())
                    .unwrap_or_default(),
            )
            .await?;
            let user_name = format!("users/{}", user.id);
            outbox::publish_event(
                &mut tx,
                SOURCE,
                &user_name,
                &UserInvited {
                    user: user_name.clone(),
                    account: format!("accounts/{account}"),
                    email: user.email.clone(),
                    roles: role_ids.clone(),
                    invited_by: by.clone(),
                    create_time: Some(timestamp(Utc::now())),
                },
            )
            .await?;
            activity::record(
                &mut tx,
                activity::Entry {
                    account,
                    actor: &by,
                    action: "user.invited",
                    target: &user_name,
                    old: None,
                    new: Some(serde_json::json!({ "email": user.email, "roles": role_ids })),
                },
            )
            .await?;
            if let Some(row) = members::member(&mut tx, account, user.id).await? {
                invited.push(member_message(&row));
            }
        }
        v.finish()?;
        let response = InviteUsersResponse { members: invited };
        remember(&mut tx, &scope, &req.request_id, &response).await?;
        tx.commit().await?;
        Ok(response)
    }

    /// Makes a fresh invitation token (the previous one stops working) and
    /// queues the mail that carries it.
    async fn send_invitation(
        &self,
        conn: &mut PgConnection,
        user: &UserRow,
        account: Uuid,
        account_name: &str,
    ) -> Result<()> {
        let token = secrets::token();
        let expires = Utc::now() + self.config.invitation_ttl;
        tokens::insert_one_time(
            conn,
            &secrets::hash(&token),
            tokens::Purpose::Invitation,
            user.id,
            Some(account),
            expires,
        )
        .await?;
        send_mail(
            conn,
            SendMail {
                template: "identity.invitation".into(),
                to: user.email.clone(),
                locale: user.locale.clone(),
                params: [
                    ("token".to_owned(), token),
                    ("account_name".to_owned(), account_name.to_owned()),
                    (
                        "expires_days".to_owned(),
                        (self.config.invitation_ttl.as_secs() / 86_400).to_string(),
                    ),
                ]
                .into(),
                user: format!("users/{}", user.id),
                account: format!("accounts/{account}"),
                dedup_key: format!("invitation:{}", Uuid::now_v7()),
            },
        )
        .await
    }

    async fn accept(&self, req: AcceptInvitationRequest) -> Result<Session> {
        if req.token.is_empty() || req.token.len() > 200 {
            return Err(IdentityError::field("token", "is required"));
        }
        let mut tx = self.pool.begin().await?;
        let row = tokens::spend_one_time(
            &mut tx,
            &secrets::hash(&req.token),
            tokens::Purpose::Invitation,
        )
        .await?
        .ok_or(IdentityError::InvalidToken("token"))?;
        let account = row.account_id.ok_or(IdentityError::InvalidToken("token"))?;
        let mut user = members::user(&mut tx, row.user_id)
            .await?
            .ok_or(IdentityError::InvalidToken("token"))?;
        let member = members::member(&mut tx, account, user.id)
            .await?
            .filter(|m| m.state == "INVITED")
            .ok_or(IdentityError::InvalidToken("token"))?;
        if user.password_hash.is_none() {
            // A new user completes their profile.
            let mut v = Violations::new();
            v.check("given_name", validate::text(&req.given_name, 1, 50));
            v.check("family_name", validate::text(&req.family_name, 1, 50));
            v.check("password", domain::password(&req.password));
            v.finish()?;
            let hash = password::hash(req.password.clone()).await?;
            members::set_names(&mut tx, user.id, &req.given_name, &req.family_name).await?;
            members::set_password(&mut tx, user.id, &hash, false).await?;
            user = members::user(&mut tx, user.id)
                .await?
                .ok_or(IdentityError::InvalidToken("token"))?;
        }
        members::set_state(&mut tx, account, user.id, "ACTIVE").await?;
        let user_name = format!("users/{}", user.id);
        roles_changed(
            &mut tx,
            account,
            &user_name,
            &[],
            &authority::assignments(&member.roles, &member.scopes.0),
            &user_name,
        )
        .await?;
        activity::record(
            &mut tx,
            activity::Entry {
                account,
                actor: &user_name,
                action: "invitation.accepted",
                target: &user_name,
                old: None,
                new: Some(serde_json::json!({ "roles": member.roles })),
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

    /// Loads a member for a change by `caller`, with the account locked, and
    /// checks that the caller manages the member's directory.
    async fn member_for_change(
        &self,
        conn: &mut PgConnection,
        caller: &Caller,
        account: Uuid,
        user: Uuid,
        permission: &str,
    ) -> Result<MemberRow> {
        caller.require(permission, &account.to_string())?;
        self.lock_active(conn, account).await?;
        let name = format!("accounts/{account}/members/{user}");
        let member = members::member(conn, account, user)
            .await?
            .ok_or_else(|| IdentityError::not_found("member", name))?;
        // After a merge, the admins of either side manage only users of their
        // own home directory. (Invited outsiders keep their own home but are
        // managed by the inviting account: the rule is about merged sides.)
        if let Some(me) = caller.user_id().and_then(|u| u.parse::<Uuid>().ok()) {
            let mine = members::user(conn, me)
                .await?
                .and_then(|u| u.home_account_id);
            let theirs = member.user.home_account_id;
            if me != user
                && mine != theirs
                && (self.merged_into(conn, mine, account).await?
                    || self.merged_into(conn, theirs, account).await?)
            {
                return Err(IdentityError::OtherDirectory);
            }
        }
        Ok(member)
    }

    /// Whether `home` is an account that was merged into `account`.
    async fn merged_into(
        &self,
        conn: &mut PgConnection,
        home: Option<Uuid>,
        account: Uuid,
    ) -> Result<bool> {
        let Some(home) = home else { return Ok(false) };
        Ok(accounts::get(conn, home)
            .await?
            .is_some_and(|a| a.merged_into == Some(account)))
    }

    async fn update_member(&self, caller: &Caller, req: UpdateMemberRequest) -> Result<Member> {
        let member = req
            .member
            .ok_or_else(|| IdentityError::field("member", "is required"))?;
        let (account, user) = member_name(&member.name).map_err(|_| {
            IdentityError::field("member.name", "must be `accounts/{account}/members/{user}`")
        })?;
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        let mut v = Violations::new();
        if paths.iter().any(|p| p != "roles") {
            v.add("update_mask", "only `roles` can be updated");
        }
        authority::check_assignments("member.roles", &member.roles, &mut v);
        v.finish()?;
        let mut tx = self.pool.begin().await?;
        let current = self
            .member_for_change(&mut tx, caller, account, user, perm::MEMBERS_WRITE)
            .await?;
        etag::check(&member.etag, current.version, &member.name)?;
        let old = authority::assignments(&current.roles, &current.scopes.0);
        if let Some(role) = authority::forbidden_change(&caller.roles, &old, &member.roles) {
            return Err(IdentityError::RoleNotAssignable(role));
        }
        let was_admin =
            current.roles.iter().any(|r| r == "global_admin") && current.state == "ACTIVE";
        let stays_admin = member.roles.iter().any(|r| r.role == "global_admin");
        if was_admin && !stays_admin && members::count_global_admins(&mut tx, account).await? <= 1 {
            return Err(IdentityError::LastGlobalAdmin);
        }
        let role_ids = authority::role_ids(&member.roles);
        members::set_roles(
            &mut tx,
            account,
            user,
            &role_ids,
            &authority::scopes(&member.roles),
        )
        .await?;
        let by = actor(caller);
        let user_name = format!("users/{user}");
        roles_changed(&mut tx, account, &user_name, &old, &member.roles, &by).await?;
        activity::record(
            &mut tx,
            activity::Entry {
                account,
                actor: &by,
                action: "member.roles_changed",
                target: &user_name,
                old: Some(serde_json::json!({ "roles": current.roles, "scopes": current.scopes.0 })),
                new: Some(serde_json::json!({ "roles": role_ids, "scopes": authority::scopes(&member.roles) })),
            },
        )
        .await?;
        let updated = members::member(&mut tx, account, user)
            .await?
            .ok_or_else(|| IdentityError::Internal(anyhow::anyhow!("member vanished")))?;
        tx.commit().await?;
        Ok(member_message(&updated))
    }

    async fn remove_member(&self, caller: &Caller, req: RemoveMemberRequest) -> Result<()> {
        let (account, user) = member_name(&req.name)?;
        let scope = RemovalScope::try_from(req.scope).unwrap_or(RemovalScope::Unspecified);
        if scope == RemovalScope::Unspecified {
            return Err(IdentityError::field(
                "scope",
                "must be ACCOUNT, DIRECTORY or BOTH",
            ));
        }
        let mut tx = self.pool.begin().await?;
        let current = self
            .member_for_change(&mut tx, caller, account, user, perm::MEMBERS_WRITE)
            .await?;
        etag::check(&req.etag, current.version, &req.name)?;
        let old = authority::assignments(&current.roles, &current.scopes.0);
        if let Some(role) = authority::forbidden_change(&caller.roles, &old, &[]) {
            return Err(IdentityError::RoleNotAssignable(role));
        }
        let is_admin =
            current.roles.iter().any(|r| r == "global_admin") && current.state == "ACTIVE";
        if is_admin && members::count_global_admins(&mut tx, account).await? <= 1 {
            return Err(IdentityError::LastGlobalAdmin);
        }
        let from_directory = matches!(scope, RemovalScope::Directory | RemovalScope::Both);
        if from_directory && current.user.home_account_id != Some(account) {
            return Err(IdentityError::OtherDirectory);
        }
        if from_directory {
            // Leaving the directory ends every membership: no account may be
            // left without a Global admin by it.
            let accounts = members::global_admin_accounts(&mut tx, user).await?;
            if accounts.iter().any(|(_, admins)| *admins <= 1) {
                return Err(IdentityError::LastGlobalAdmin);
            }
            members::delete_from_directory(&mut tx, user).await?;
            tokens::revoke_user(&mut tx, user, None).await?;
        }
        if matches!(scope, RemovalScope::Account | RemovalScope::Both) {
            members::delete(&mut tx, account, user).await?;
            tokens::revoke_user_in_account(&mut tx, user, account).await?;
        }
        let by = actor(caller);
        let user_name = format!("users/{user}");
        outbox::publish_event(
            &mut tx,
            SOURCE,
            &user_name,
            &MemberRemoved {
                account: format!("accounts/{account}"),
                user: user_name.clone(),
                scope: scope.into(),
                removed_by: by.clone(),
                remove_time: Some(timestamp(Utc::now())),
            },
        )
        .await?;
        activity::record(
            &mut tx,
            activity::Entry {
                account,
                actor: &by,
                action: "member.removed",
                target: &user_name,
                old: Some(
                    serde_json::json!({ "roles": current.roles, "email": current.user.email }),
                ),
                new: Some(serde_json::json!({ "scope": scope.as_str_name() })),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn reset_password(
        &self,
        caller: &Caller,
        req: ResetPasswordRequest,
    ) -> Result<ResetPasswordResponse> {
        let (account, user) = member_name(&req.name)?;
        let temporary_password = secrets::temporary_password();
        let hash = password::hash(temporary_password.clone()).await?;
        let mut tx = self.pool.begin().await?;
        let current = self
            .member_for_change(&mut tx, caller, account, user, perm::MEMBERS_RESET_PASSWORD)
            .await?;
        // A Global admin anywhere is a Global admin here: resetting their
        // password would hand over that other account too.
        let admin_anywhere = current.roles.iter().any(|r| r == "global_admin")
            || !members::global_admin_accounts(&mut tx, user)
                .await?
                .is_empty();
        if admin_anywhere && !caller.roles.iter().any(|r| r == "global_admin") {
            return Err(IdentityError::GlobalAdminPassword);
        }
        members::set_password(&mut tx, user, &hash, true).await?;
        tokens::revoke_user(&mut tx, user, None).await?;
        password_changed(&mut tx, user, "admin_reset", &actor(caller), Some(account)).await?;
        tx.commit().await?;
        Ok(ResetPasswordResponse { temporary_password })
    }

    async fn resend(&self, caller: &Caller, req: ResendInvitationRequest) -> Result<Member> {
        let (account, user) = member_name(&req.name)?;
        let mut tx = self.pool.begin().await?;
        let current = self
            .member_for_change(&mut tx, caller, account, user, perm::MEMBERS_CREATE)
            .await?;
        if current.state != "INVITED" {
            return Err(IdentityError::Precondition {
                reason: "NOT_INVITED",
                message: format!(
                    "the member is {} and has no pending invitation",
                    current.state.to_lowercase()
                ),
            });
        }
        let account_name = accounts::get(&mut tx, account)
            .await?
            .map(|a| a.display_name)
            .unwrap_or_default();
        self.send_invitation(&mut tx, &current.user, account, &account_name)
            .await?;
        activity::record(
            &mut tx,
            activity::Entry {
                account,
                actor: &actor(caller),
                action: "invitation.resent",
                target: &format!("users/{user}"),
                old: None,
                new: None,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(member_message(&current))
    }

    async fn list_members(
        &self,
        caller: &Caller,
        req: ListMembersRequest,
    ) -> Result<ListMembersResponse> {
        let account = account_id("parent", &req.parent)?;
        caller.require(perm::MEMBERS_READ, &account.to_string())?;
        let mut v = Violations::new();
        let size = page::page_size(req.page_size)
            .map_err(|e| v.add("page_size", e))
            .unwrap_or(page::DEFAULT_PAGE_SIZE);
        if !req.role.is_empty() && partnerhub_platform::auth::roles::find(&req.role).is_none() {
            v.add("role", format!("unknown role {:?}", req.role));
        }
        let state = match MemberState::try_from(req.state) {
            Ok(MemberState::Unspecified) => None,
            Ok(s) => Some(
                s.as_str_name()
                    .trim_start_matches("MEMBER_STATE_")
                    .to_owned(),
            ),
            Err(_) => {
                v.add("state", "is not a member state");
                None
            }
        };
        let fingerprint = page::fingerprint(&[&req.parent, &req.role, &req.state.to_string()]);
        let after = page::decode::<Uuid>(&req.page_token, &fingerprint)
            .map_err(|e| v.add("page_token", e))
            .ok()
            .flatten();
        v.finish()?;
        let filter = members::Filter {
            role: (!req.role.is_empty()).then(|| req.role.clone()),
            state,
            after,
        };
        let mut conn = self.pool.acquire().await?;
        let mut rows = members::list(&mut conn, account, &filter, size + 1).await?;
        let more = rows.len() as i64 > size;
        rows.truncate(size as usize);
        let next_page_token = match (more, rows.last()) {
            (true, Some(last)) => page::encode(&last.user.id, &fingerprint),
            _ => String::new(),
        };
        Ok(ListMembersResponse {
            members: rows.iter().map(member_message).collect(),
            next_page_token,
        })
    }

    async fn get_member(&self, caller: &Caller, req: GetMemberRequest) -> Result<Member> {
        let (account, user) = member_name(&req.name)?;
        caller.require(perm::MEMBERS_READ, &account.to_string())?;
        let mut conn = self.pool.acquire().await?;
        let row = members::member(&mut conn, account, user)
            .await?
            .ok_or_else(|| IdentityError::not_found("member", req.name.clone()))?;
        Ok(member_message(&row))
    }
}

/// Emits `MemberRolesChanged`.
pub(super) async fn roles_changed(
    conn: &mut PgConnection,
    account: Uuid,
    user_name: &str,
    old: &[RoleAssignment],
    new: &[RoleAssignment],
    by: &str,
) -> Result<()> {
    outbox::publish_event(
        conn,
        SOURCE,
        user_name,
        &MemberRolesChanged {
            account: format!("accounts/{account}"),
            user: user_name.to_owned(),
            old_roles: old.to_vec(),
            new_roles: new.to_vec(),
            changed_by: by.to_owned(),
            update_time: Some(timestamp(Utc::now())),
        },
    )
    .await?;
    Ok(())
}

#[tonic::async_trait]
impl MemberService for Identity {
    async fn create_user(
        &self,
        request: Request<CreateUserRequest>,
    ) -> Result<Response<CreateUserResponse>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            Identity::create_user(self, &caller, request.into_inner()).await?,
        ))
    }

    async fn invite_users(
        &self,
        request: Request<InviteUsersRequest>,
    ) -> Result<Response<InviteUsersResponse>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            self.invite(&caller, request.into_inner()).await?,
        ))
    }

    async fn accept_invitation(
        &self,
        request: Request<AcceptInvitationRequest>,
    ) -> Result<Response<Session>, Status> {
        Ok(Response::new(self.accept(request.into_inner()).await?))
    }

    async fn resend_invitation(
        &self,
        request: Request<ResendInvitationRequest>,
    ) -> Result<Response<Member>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            self.resend(&caller, request.into_inner()).await?,
        ))
    }

    async fn bulk_create_users(
        &self,
        request: Request<BulkCreateUsersRequest>,
    ) -> Result<Response<BulkCreateUsersResponse>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            self.bulk_create(&caller, request.into_inner()).await?,
        ))
    }

    async fn list_members(
        &self,
        request: Request<ListMembersRequest>,
    ) -> Result<Response<ListMembersResponse>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            Identity::list_members(self, &caller, request.into_inner()).await?,
        ))
    }

    async fn get_member(
        &self,
        request: Request<GetMemberRequest>,
    ) -> Result<Response<Member>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            Identity::get_member(self, &caller, request.into_inner()).await?,
        ))
    }

    async fn update_member(
        &self,
        request: Request<UpdateMemberRequest>,
    ) -> Result<Response<Member>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            Identity::update_member(self, &caller, request.into_inner()).await?,
        ))
    }

    async fn remove_member(
        &self,
        request: Request<RemoveMemberRequest>,
    ) -> Result<Response<RemoveMemberResponse>, Status> {
        let caller = caller(&request)?.clone();
        Identity::remove_member(self, &caller, request.into_inner()).await?;
        Ok(Response::new(RemoveMemberResponse {}))
    }

    async fn reset_password(
        &self,
        request: Request<ResetPasswordRequest>,
    ) -> Result<Response<ResetPasswordResponse>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            Identity::reset_password(self, &caller, request.into_inner()).await?,
        ))
    }
}
