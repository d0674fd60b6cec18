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
    UserCreated, member_service_server::MemberService,
};
use sqlx::PgConnection;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::auth::password_changed;
use super::invitations::granting_roles;
use super::sessions::{self, Ending};
use super::{Identity, SOURCE, account_id, actor, member_message, member_name, remember, replay};
use crate::domain::{self, authority, csv_import, secrets};
use crate::error::{IdentityError, Result};
use crate::password;
use crate::store::{MemberRow, accounts, activity, members};

/// A user to create with a temporary password.
struct NewMember {
    email: String,
    given_name: String,
    family_name: String,
    roles: Vec<RoleAssignment>,
}

impl Identity {
    /// Locks an active account for a membership change.
    pub(super) async fn lock_active(&self, conn: &mut PgConnection, account: Uuid) -> Result<()> {
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
                    home_account: Some(account),
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
        if let Some(refusal) = authority::forbidden_change(&granting_roles(caller), &[], &req.roles)
        {
            return Err(refusal.into());
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
        let granting = granting_roles(caller);
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
            if let Some(refusal) = authority::forbidden_change(&granting, &[], &roles) {
                v.add(format!("rows[{n}].roles"), refusal.describe());
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
        // own home directory. (Members who joined by invitation keep their own
        // home: this account may change or end their membership, and
        // `require_home` keeps their credentials out of its reach.)
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

    /// Refuses (OTHER_DIRECTORY) unless `account` manages the credentials
    /// and identity of `member`: it is the user's home account, or an
    /// account their home was merged into while the caller comes from that
    /// same home (the rule of merges).
    async fn require_home(
        &self,
        conn: &mut PgConnection,
        caller: &Caller,
        account: Uuid,
        member: &MemberRow,
    ) -> Result<()> {
        let theirs = member.user.home_account_id;
        if theirs == Some(account) {
            return Ok(());
        }
        let mine = match caller.user_id().and_then(|u| u.parse::<Uuid>().ok()) {
            Some(me) => members::user(conn, me)
                .await?
                .and_then(|u| u.home_account_id),
            None => None,
        };
        if mine.is_some() && mine == theirs && self.merged_into(conn, theirs, account).await? {
            return Ok(());
        }
        Err(IdentityError::OtherDirectory)
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
        if caller.user_id() == Some(user.to_string().as_str()) {
            return Err(IdentityError::SelfRoleChange);
        }
        let mut tx = self.pool.begin().await?;
        let current = self
            .member_for_change(&mut tx, caller, account, user, perm::MEMBERS_WRITE)
            .await?;
        etag::check(&member.etag, current.version, &member.name)?;
        let old = authority::assignments(&current.roles, &current.scopes.0);
        if let Some(refusal) =
            authority::forbidden_change(&granting_roles(caller), &old, &member.roles)
        {
            return Err(refusal.into());
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
        audit(
            &mut tx,
            current.user.home_account_id,
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
        // Removing someone takes their roles: grant only what you hold.
        // Leaving (removing oneself) only gives up rights.
        let oneself = caller.user_id() == Some(user.to_string().as_str());
        if !oneself
            && let Some(refusal) = authority::forbidden_change(&granting_roles(caller), &old, &[])
        {
            return Err(refusal.into());
        }
        let is_admin =
            current.roles.iter().any(|r| r == "global_admin") && current.state == "ACTIVE";
        if is_admin && members::count_global_admins(&mut tx, account).await? <= 1 {
            return Err(IdentityError::LastGlobalAdmin);
        }
        let from_directory = matches!(scope, RemovalScope::Directory | RemovalScope::Both);
        if from_directory {
            self.require_home(&mut tx, caller, account, &current)
                .await?;
        }
        if from_directory {
            // Leaving the directory ends every membership: no account may be
            // left without a Global admin by it.
            let accounts = members::global_admin_accounts(&mut tx, user).await?;
            if accounts.iter().any(|(_, admins)| *admins <= 1) {
                return Err(IdentityError::LastGlobalAdmin);
            }
            members::delete_from_directory(&mut tx, user).await?;
            sessions::end(&mut tx, Ending::User(user), "removed_from_directory").await?;
        }
        if matches!(scope, RemovalScope::Account | RemovalScope::Both) {
            members::delete(&mut tx, account, user).await?;
            let ending = Ending::UserInAccount { user, account };
            sessions::end(&mut tx, ending, "member_removed").await?;
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
        audit(
            &mut tx,
            current.user.home_account_id,
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
        // Credentials belong to the home directory: a member who joined by
        // invitation is not this account's to reset.
        self.require_home(&mut tx, caller, account, &current)
            .await?;
        // A Global admin anywhere is a Global admin here: resetting their
        // password would hand over that other account too. The caller acts
        // in the member's home account, so this is a Global admin of it.
        let admin_anywhere = current.roles.iter().any(|r| r == "global_admin")
            || !members::global_admin_accounts(&mut tx, user)
                .await?
                .is_empty();
        if admin_anywhere && !caller.roles.iter().any(|r| r == "global_admin") {
            return Err(IdentityError::GlobalAdminPassword);
        }
        // A password opens every account its user belongs to. An admin
        // reset hands one to the admin: it may open only accounts the admin
        // already holds as a Global admin. A user who also belongs to
        // another active account (their own company, one that invited them)
        // resets their own password through the mailed link, which proves
        // the mailbox.
        let admin = caller.user_id().and_then(|u| u.parse::<Uuid>().ok());
        if !members::accounts_opened_beyond(&mut tx, user, account, admin)
            .await?
            .is_empty()
        {
            return Err(IdentityError::Precondition {
                reason: "MEMBER_OF_OTHER_ACCOUNTS",
                message: "this user also belongs to accounts you do not administer; a reset by you would open those too, so the user resets their own password from the sign-in page".into(),
            });
        }
        members::set_password(&mut tx, user, &hash, true).await?;
        sessions::end(&mut tx, Ending::User(user), "admin_reset").await?;
        password_changed(&mut tx, user, "admin_reset", &actor(caller), Some(account)).await?;
        tx.commit().await?;
        Ok(ResetPasswordResponse { temporary_password })
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

/// Records an action on a user or membership in the activity of the
/// account where it happened and, when the user's home account is another
/// one, in that home account too (naming where it happened), so a
/// cross-account action is visible to the user's own admins.
pub(super) async fn audit(
    conn: &mut PgConnection,
    home: Option<Uuid>,
    entry: activity::Entry<'_>,
) -> Result<()> {
    let here = entry.account;
    let copy = home.filter(|h| *h != here).map(|home| {
        let mut new = match entry.new.clone() {
            Some(serde_json::Value::Object(map)) => map,
            Some(other) => serde_json::Map::from_iter([("value".to_owned(), other)]),
            None => serde_json::Map::new(),
        };
        new.insert(
            "account".to_owned(),
            serde_json::Value::String(format!("accounts/{here}")),
        );
        (home, serde_json::Value::Object(new))
    });
    let (actor, action, target, old) = (entry.actor, entry.action, entry.target, entry.old.clone());
    activity::record(conn, entry).await?;
    if let Some((home, new)) = copy {
        activity::record(
            conn,
            activity::Entry {
                account: home,
                actor,
                action,
                target,
                old,
                new: Some(new),
            },
        )
        .await?;
    }
    Ok(())
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
            self.resend_as_member(&caller, request.into_inner()).await?,
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
