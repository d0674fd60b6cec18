//! MemberService (with the role rules, invitations, bulk import, removal,
//! etags, account isolation and the activity log it writes), through the
//! gRPC API against the real suite.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use anyhow::anyhow;
use common::{Actor, Harness, MAIL_WAIT, PASSWORD, reason, role, violated_fields};
use partnerhub_platform::auth::roles::{self as role_table, Family};
use partnerhub_proto::identity::v1::{
    AcceptInvitationRequest, Activity, BulkCreateUsersRequest, BulkCreateUsersResponse,
    ChangePasswordRequest, CreateAccountRequest, CreateUserRequest, CreateUserResponse,
    GetAccountRequest, GetMemberRequest, GetMyPermissionsRequest, GetRoleRequest, Invitation,
    InvitationState, InviteUsersRequest, InviteUsersResponse, ListActivityRequest,
    ListInvitationsRequest, ListMembersRequest, ListRolesRequest, Member, MemberState,
    RefreshTokenRequest, RemovalScope, RemoveMemberRequest, ResendInvitationRequest,
    ResetPasswordRequest, ResetPasswordResponse, RevokeInvitationRequest, RoleAssignment,
    RoleFamily, Session, SignInRequest, SwitchAccountRequest, UpdateMemberRequest,
};
use partnerhub_testkit::unique;
use prost_types::FieldMask;
use tonic::{Code, Status};

// ---------------------------------------------------------------- helpers

/// The status of a call expected to fail.
fn refused<T: std::fmt::Debug>(result: Result<T, Status>) -> anyhow::Result<Status> {
    match result {
        Ok(v) => Err(anyhow!("expected an error, got {v:?}")),
        Err(s) => Ok(s),
    }
}

/// Asserts a call failed with `code` (and, when given, `reason`).
fn expect_refused<T: std::fmt::Debug>(
    what: &str,
    result: Result<T, Status>,
    code: Code,
    why: Option<&str>,
) -> anyhow::Result<Status> {
    let status = refused(result).map_err(|e| anyhow!("{what}: {e}"))?;
    assert_eq!(status.code(), code, "{what}: {status:?}");
    if let Some(why) = why {
        assert_eq!(reason(&status), why, "{what}: {status:?}");
    }
    Ok(status)
}

/// Asserts INVALID_ARGUMENT naming `field` among its violations.
fn expect_invalid<T: std::fmt::Debug>(
    what: &str,
    result: Result<T, Status>,
    field: &str,
) -> anyhow::Result<Status> {
    let status = expect_refused(what, result, Code::InvalidArgument, None)?;
    let fields = violated_fields(&status);
    assert!(
        fields.iter().any(|f| f == field),
        "{what}: expected a violation of {field}, got {fields:?} ({status:?})"
    );
    Ok(status)
}

fn fresh_email(label: &str) -> String {
    format!("{label}.{}@contoso.com", unique())
}

fn roles(ids: &[&str]) -> Vec<RoleAssignment> {
    ids.iter().map(|r| role(r)).collect()
}

fn scoped(id: &str, locations: &[&str]) -> RoleAssignment {
    RoleAssignment {
        role: id.into(),
        locations: locations.iter().map(|l| (*l).to_owned()).collect(),
    }
}

fn role_ids(member: &Member) -> Vec<String> {
    member.roles.iter().map(|r| r.role.clone()).collect()
}

fn email_of(member: &Member) -> String {
    member
        .user
        .as_ref()
        .map(|u| u.email.clone())
        .unwrap_or_default()
}

fn user_of(member: &Member) -> String {
    member
        .user
        .as_ref()
        .map(|u| u.name.clone())
        .unwrap_or_default()
}

/// `accounts/{a}/members/{u}` of `user` (`users/{u}`) in `account`.
fn member_in(account: &str, user: &str) -> String {
    format!("{account}/members/{}", user.trim_start_matches("users/"))
}

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

async fn create_user_with_email(
    by: &Actor,
    email: &str,
    assignments: Vec<RoleAssignment>,
) -> Result<CreateUserResponse, Status> {
    by.members()
        .create_user(by.req(CreateUserRequest {
            parent: by.account.clone(),
            email: email.into(),
            given_name: "Alan".into(),
            family_name: "Turing".into(),
            roles: assignments,
            request_id: String::new(),
        }))
        .await
        .map(tonic::Response::into_inner)
}

async fn create_user(
    by: &Actor,
    assignments: Vec<RoleAssignment>,
) -> Result<CreateUserResponse, Status> {
    create_user_with_email(by, &fresh_email("user"), assignments).await
}

/// The member a successful CreateUser made.
fn created(response: &CreateUserResponse) -> anyhow::Result<Member> {
    response
        .member
        .clone()
        .ok_or_else(|| anyhow!("CreateUser returned no member"))
}

async fn get_member(by: &Actor, name: &str) -> Result<Member, Status> {
    by.members()
        .get_member(by.req(GetMemberRequest { name: name.into() }))
        .await
        .map(tonic::Response::into_inner)
}

async fn update_roles_masked(
    by: &Actor,
    name: &str,
    assignments: Vec<RoleAssignment>,
    etag: &str,
    update_mask: Option<FieldMask>,
) -> Result<Member, Status> {
    by.members()
        .update_member(by.req(UpdateMemberRequest {
            member: Some(Member {
                name: name.into(),
                roles: assignments,
                etag: etag.into(),
                ..Default::default()
            }),
            update_mask,
        }))
        .await
        .map(tonic::Response::into_inner)
}

async fn update_roles(
    by: &Actor,
    name: &str,
    assignments: Vec<RoleAssignment>,
    etag: &str,
) -> Result<Member, Status> {
    update_roles_masked(by, name, assignments, etag, mask(&["roles"])).await
}

async fn remove_member(
    by: &Actor,
    name: &str,
    scope: RemovalScope,
    etag: &str,
) -> Result<(), Status> {
    by.members()
        .remove_member(by.req(RemoveMemberRequest {
            name: name.into(),
            scope: scope.into(),
            etag: etag.into(),
        }))
        .await
        .map(|_| ())
}

async fn reset_password(by: &Actor, name: &str) -> Result<ResetPasswordResponse, Status> {
    by.members()
        .reset_password(by.req(ResetPasswordRequest { name: name.into() }))
        .await
        .map(tonic::Response::into_inner)
}

async fn invite(by: &Actor, invitations: Vec<Invitation>) -> Result<InviteUsersResponse, Status> {
    by.members()
        .invite_users(by.req(InviteUsersRequest {
            parent: by.account.clone(),
            invitations,
            request_id: String::new(),
        }))
        .await
        .map(tonic::Response::into_inner)
}

fn invitation(email: &str, ids: &[&str]) -> Invitation {
    Invitation {
        email: email.into(),
        roles: roles(ids),
        ..Invitation::default()
    }
}

async fn bulk_create(by: &Actor, csv: &str) -> Result<BulkCreateUsersResponse, Status> {
    by.members()
        .bulk_create_users(by.req(BulkCreateUsersRequest {
            parent: by.account.clone(),
            csv: csv.into(),
            request_id: String::new(),
        }))
        .await
        .map(tonic::Response::into_inner)
}

async fn accept(h: &Harness, token: &str) -> Result<Session, Status> {
    partnerhub_proto::identity::v1::member_service_client::MemberServiceClient::new(h.channel())
        .accept_invitation(AcceptInvitationRequest {
            token: token.into(),
            given_name: "Katherine".into(),
            family_name: "Johnson".into(),
            password: PASSWORD.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn sign_in_session(h: &Harness, email: &str, password: &str) -> Result<Session, Status> {
    h.auth()
        .sign_in(SignInRequest {
            email: email.into(),
            password: password.into(),
            account: String::new(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn refresh(h: &Harness, refresh_token: &str) -> Result<Session, Status> {
    h.auth()
        .refresh_token(RefreshTokenRequest {
            refresh_token: refresh_token.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// One page of ListMembers.
async fn list_page(
    by: &Actor,
    role_filter: &str,
    state: MemberState,
    page_size: i32,
    page_token: &str,
) -> Result<(Vec<Member>, String), Status> {
    let page = by
        .members()
        .list_members(by.req(ListMembersRequest {
            parent: by.account.clone(),
            role: role_filter.into(),
            state: state.into(),
            page_size,
            page_token: page_token.into(),
        }))
        .await?
        .into_inner();
    Ok((page.members, page.next_page_token))
}

/// Every member matching the filters (one page of 100).
async fn list_all(
    by: &Actor,
    role_filter: &str,
    state: MemberState,
) -> anyhow::Result<Vec<Member>> {
    let (members, next) = list_page(by, role_filter, state, 100, "").await?;
    assert!(next.is_empty(), "more than 100 members");
    Ok(members)
}

fn names(members: &[Member]) -> Vec<String> {
    members.iter().map(|m| m.name.clone()).collect()
}

/// One page of ListActivity of `by`'s account.
async fn activity_page(
    by: &Actor,
    actor: &str,
    page_size: i32,
    page_token: &str,
) -> Result<(Vec<Activity>, String), Status> {
    let page = by
        .activity()
        .list_activity(by.req(ListActivityRequest {
            parent: by.account.clone(),
            actor: actor.into(),
            page_size,
            page_token: page_token.into(),
            ..Default::default()
        }))
        .await?
        .into_inner();
    Ok((page.activities, page.next_page_token))
}

async fn all_activity(by: &Actor, actor: &str) -> anyhow::Result<Vec<Activity>> {
    let (entries, next) = activity_page(by, actor, 100, "").await?;
    assert!(next.is_empty(), "more than 100 activities");
    Ok(entries)
}

/// Reads invitation mails until one for each of `emails` was seen; returns
/// their tokens by (lower-cased) email.
async fn invitation_tokens(
    h: &mut Harness,
    emails: &[&str],
) -> anyhow::Result<BTreeMap<String, String>> {
    let wanted: BTreeSet<String> = emails.iter().map(|e| e.to_lowercase()).collect();
    let mut tokens = BTreeMap::new();
    while tokens.len() < wanted.len() {
        let mail = h.mail.next(MAIL_WAIT).await?;
        let to = mail.to.to_lowercase();
        if mail.template == "identity.invitation" && wanted.contains(&to) {
            let token = mail
                .params
                .get("token")
                .cloned()
                .ok_or_else(|| anyhow!("invitation mail without a token"))?;
            tokens.insert(to, token);
        }
    }
    Ok(tokens)
}

fn token_for(tokens: &BTreeMap<String, String>, email: &str) -> anyhow::Result<String> {
    tokens
        .get(&email.to_lowercase())
        .cloned()
        .ok_or_else(|| anyhow!("no invitation token for {email}"))
}

fn json(text: &str) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::from_str(text)?)
}

fn json_roles(value: &serde_json::Value) -> Vec<String> {
    value
        .get("roles")
        .and_then(|r| r.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

// ------------------------------------------------------------------ tests

#[tokio::test]
async fn last_global_admin_cannot_be_removed_or_demoted() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let founder = h.sign_up().await?;
    let me = founder.member_name();

    // Nobody changes their own roles (ADR 0008), stepping down included.
    let s = update_roles(&founder, &me, roles(&["admin_agent", "owner"]), "").await;
    expect_refused(
        "demote oneself",
        s,
        Code::PermissionDenied,
        Some("SELF_ROLE_CHANGE"),
    )?;
    let s = remove_member(&founder, &me, RemovalScope::Account, "").await;
    expect_refused(
        "remove the only GA",
        s,
        Code::FailedPrecondition,
        Some("LAST_GLOBAL_ADMIN"),
    )?;
    let s = remove_member(&founder, &me, RemovalScope::Both, "").await;
    expect_refused(
        "remove the only GA everywhere",
        s,
        Code::FailedPrecondition,
        Some("LAST_GLOBAL_ADMIN"),
    )?;
    let still = get_member(&founder, &me).await?;
    assert_eq!(role_ids(&still), ["global_admin", "admin_agent", "owner"]);
    assert_eq!(still.state, i32::from(MemberState::Active));

    // With a second Global admin, the first can be demoted by it.
    let second = h.member_with(&founder, &["global_admin"]).await?;
    let demoted = update_roles(&second, &me, roles(&["admin_agent", "owner"]), "").await?;
    assert_eq!(role_ids(&demoted), ["admin_agent", "owner"]);
    let admins = list_all(&founder, "global_admin", MemberState::Unspecified).await?;
    assert_eq!(names(&admins), [second.member_name()]);

    // Now the second one is the last: it cannot leave.
    let s = remove_member(&second, &second.member_name(), RemovalScope::Account, "").await;
    expect_refused(
        "remove the new last GA",
        s,
        Code::FailedPrecondition,
        Some("LAST_GLOBAL_ADMIN"),
    )?;
    h.stop().await
}

#[tokio::test]
async fn only_a_global_admin_assigns_global_admin_and_compliance_admin() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let founder = h.sign_up().await?;
    let uma = h.member_with(&founder, &["user_management_admin"]).await?;

    for privileged in ["global_admin", "compliance_admin"] {
        let s = create_user(&uma, roles(&[privileged])).await;
        expect_refused(
            &format!("UMA creates a {privileged}"),
            s,
            Code::PermissionDenied,
            Some("ROLE_NOT_ASSIGNABLE"),
        )?;
        let s = create_user(&uma, roles(&["helpdesk_agent", privileged])).await;
        expect_refused(
            &format!("UMA creates a helpdesk agent + {privileged}"),
            s,
            Code::PermissionDenied,
            Some("ROLE_NOT_ASSIGNABLE"),
        )?;
    }
    // Nobody was created by the refused calls.
    let everyone = list_all(&founder, "", MemberState::Unspecified).await?;
    assert_eq!(everyone.len(), 2, "{everyone:?}");

    let helpdesk = create_user(&uma, roles(&["helpdesk_agent"])).await?;
    assert!(!helpdesk.temporary_password.is_empty());
    let helpdesk = created(&helpdesk)?;
    assert_eq!(role_ids(&helpdesk), ["helpdesk_agent"]);

    // Nor may the UMA add or take compliance_admin through UpdateMember.
    let s = update_roles(
        &uma,
        &helpdesk.name,
        roles(&["helpdesk_agent", "compliance_admin"]),
        "",
    )
    .await;
    expect_refused(
        "UMA adds compliance_admin",
        s,
        Code::PermissionDenied,
        Some("ROLE_NOT_ASSIGNABLE"),
    )?;

    let compliance = create_user(&founder, roles(&["compliance_admin"])).await?;
    let compliance = created(&compliance)?;
    assert_eq!(role_ids(&compliance), ["compliance_admin"]);
    let s = update_roles(&uma, &compliance.name, roles(&["helpdesk_agent"]), "").await;
    expect_refused(
        "UMA removes compliance_admin",
        s,
        Code::PermissionDenied,
        Some("ROLE_NOT_ASSIGNABLE"),
    )?;
    let given = update_roles(
        &founder,
        &helpdesk.name,
        roles(&["helpdesk_agent", "compliance_admin"]),
        "",
    )
    .await?;
    assert_eq!(role_ids(&given), ["helpdesk_agent", "compliance_admin"]);
    let ga = created(&create_user(&founder, roles(&["global_admin"])).await?)?;
    assert_eq!(role_ids(&ga), ["global_admin"]);
    h.stop().await
}

#[tokio::test]
async fn account_admin_assigns_partner_roles_but_not_directory_roles() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let founder = h.sign_up().await?;
    let aa = h.member_with(&founder, &["account_admin"]).await?;
    let target = created(&create_user(&founder, roles(&["report_viewer"])).await?)?;

    let updated = update_roles(
        &aa,
        &target.name,
        roles(&["report_viewer", "referrals_admin"]),
        &target.etag,
    )
    .await?;
    assert_eq!(role_ids(&updated), ["report_viewer", "referrals_admin"]);

    for directory_role in ["billing_admin", "user_management_admin"] {
        let s = update_roles(
            &aa,
            &target.name,
            roles(&["report_viewer", "referrals_admin", directory_role]),
            "",
        )
        .await;
        expect_refused(
            &format!("AA adds {directory_role}"),
            s,
            Code::PermissionDenied,
            Some("ROLE_NOT_ASSIGNABLE"),
        )?;
    }
    let unchanged = get_member(&founder, &target.name).await?;
    assert_eq!(unchanged, updated);

    let s = create_user(&aa, roles(&["referrals_admin"])).await;
    expect_refused(
        "AA creates a user",
        s,
        Code::PermissionDenied,
        Some("PERMISSION_DENIED"),
    )?;
    let s = invite(
        &aa,
        vec![invitation(&fresh_email("aa"), &["referrals_admin"])],
    )
    .await;
    expect_refused(
        "AA invites a user",
        s,
        Code::PermissionDenied,
        Some("PERMISSION_DENIED"),
    )?;
    h.stop().await
}

#[tokio::test]
async fn user_management_admin_and_global_admin_create_users() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let founder = h.sign_up().await?;
    let uma = h.member_with(&founder, &["user_management_admin"]).await?;

    for creator in [&founder, &uma] {
        let email = fresh_email("new");
        let response = create_user_with_email(creator, &email, roles(&["helpdesk_agent"])).await?;
        let temporary = response.temporary_password.clone();
        assert!(!temporary.is_empty());
        let member = created(&response)?;
        assert_eq!(email_of(&member), email);
        assert_eq!(member.state, i32::from(MemberState::Active));
        assert!(member.password_change_required);

        let first = sign_in_session(&h, &email, &temporary).await?;
        assert!(first.password_change_required);
        let first = Actor::from_session(h.channel(), &email, first);
        let s = first
            .me()
            .get_my_permissions(first.req(GetMyPermissionsRequest {}))
            .await;
        expect_refused(
            "temporary session reads its permissions",
            s,
            Code::FailedPrecondition,
            Some("PASSWORD_CHANGE_REQUIRED"),
        )?;
        let s = first
            .roles()
            .list_roles(first.req(ListRolesRequest {}))
            .await;
        expect_refused(
            "temporary session lists roles",
            s,
            Code::FailedPrecondition,
            Some("PASSWORD_CHANGE_REQUIRED"),
        )?;

        let changed = first
            .auth()
            .change_password(first.req(ChangePasswordRequest {
                current_password: temporary.clone(),
                new_password: PASSWORD.into(),
            }))
            .await?
            .into_inner();
        assert!(!changed.password_change_required);
        let normal = Actor::from_session(h.channel(), &email, changed);
        assert_eq!(normal.account, founder.account);
        let mine = normal
            .me()
            .get_my_permissions(normal.req(GetMyPermissionsRequest {}))
            .await?
            .into_inner();
        let held: Vec<_> = mine
            .roles
            .iter()
            .filter_map(|r| r.assignment.as_ref())
            .map(|a| a.role.clone())
            .collect();
        assert_eq!(held, ["helpdesk_agent"]);
        assert!(
            !get_member(&founder, &member.name)
                .await?
                .password_change_required
        );
        let again = sign_in_session(&h, &email, PASSWORD).await?;
        assert!(!again.password_change_required);
        let s = sign_in_session(&h, &email, &temporary).await;
        expect_refused(
            "the temporary password after the change",
            s,
            Code::Unauthenticated,
            None,
        )?;
    }
    h.stop().await
}

#[tokio::test]
async fn view_only_role_reads_but_cannot_change() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let founder = h.sign_up().await?;
    let viewer = h.member_with(&founder, &["mpn_partner_admin"]).await?;
    let target = created(&create_user(&founder, roles(&["report_viewer"])).await?)?;

    let listed = list_all(&viewer, "", MemberState::Unspecified).await?;
    let listed = names(&listed);
    assert!(listed.contains(&founder.member_name()));
    assert!(listed.contains(&viewer.member_name()));
    assert!(listed.contains(&target.name));
    let read = get_member(&viewer, &target.name).await?;
    assert_eq!(read, target);

    let denied = Some("PERMISSION_DENIED");
    let s = update_roles(
        &viewer,
        &target.name,
        roles(&["report_viewer", "referrals_user"]),
        "",
    )
    .await;
    expect_refused("viewer updates", s, Code::PermissionDenied, denied)?;
    let s = remove_member(&viewer, &target.name, RemovalScope::Account, "").await;
    expect_refused("viewer removes", s, Code::PermissionDenied, denied)?;
    let s = create_user(&viewer, roles(&["report_viewer"])).await;
    expect_refused("viewer creates", s, Code::PermissionDenied, denied)?;
    let s = reset_password(&viewer, &target.name).await;
    expect_refused(
        "viewer resets a password",
        s,
        Code::PermissionDenied,
        denied,
    )?;
    assert_eq!(get_member(&founder, &target.name).await?, target);

    let reporter = h.member_with(&founder, &["report_viewer"]).await?;
    let s = list_page(&reporter, "", MemberState::Unspecified, 0, "").await;
    expect_refused("report viewer lists", s, Code::PermissionDenied, denied)?;
    let s = get_member(&reporter, &target.name).await;
    expect_refused("report viewer reads", s, Code::PermissionDenied, denied)?;
    h.stop().await
}

#[tokio::test]
async fn only_a_global_admin_resets_a_global_admins_password() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let founder = h.sign_up().await?;
    let uma = h.member_with(&founder, &["user_management_admin"]).await?;
    let ga = h.member_with(&founder, &["global_admin"]).await?;
    let billing = h.member_with(&founder, &["billing_admin"]).await?;

    for admin in [&ga, &founder] {
        let s = reset_password(&uma, &admin.member_name()).await;
        expect_refused(
            "UMA resets a GA",
            s,
            Code::PermissionDenied,
            Some("GLOBAL_ADMIN_PASSWORD"),
        )?;
    }
    // The refused resets changed nothing.
    assert!(
        !sign_in_session(&h, &ga.email, PASSWORD)
            .await?
            .password_change_required
    );
    refresh(&h, &founder.refresh_token).await?;

    let reset = reset_password(&uma, &billing.member_name()).await?;
    assert!(!reset.temporary_password.is_empty());
    let s = refresh(&h, &billing.refresh_token).await;
    expect_refused(
        "refresh after a reset",
        s,
        Code::Unauthenticated,
        Some("INVALID_REFRESH_TOKEN"),
    )?;
    let s = sign_in_session(&h, &billing.email, PASSWORD).await;
    expect_refused("old password after a reset", s, Code::Unauthenticated, None)?;
    let session = sign_in_session(&h, &billing.email, &reset.temporary_password).await?;
    assert!(session.password_change_required);
    assert!(
        get_member(&founder, &billing.member_name())
            .await?
            .password_change_required
    );

    let ga_refresh = ga.refresh_token.clone();
    let reset = reset_password(&founder, &ga.member_name()).await?;
    assert!(!reset.temporary_password.is_empty());
    let s = refresh(&h, &ga_refresh).await;
    expect_refused(
        "GA refresh after a reset",
        s,
        Code::Unauthenticated,
        Some("INVALID_REFRESH_TOKEN"),
    )?;
    let session = sign_in_session(&h, &ga.email, &reset.temporary_password).await?;
    assert!(session.password_change_required);
    h.stop().await
}

#[tokio::test]
async fn location_scopes_are_stored_and_carried() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let founder = h.sign_up().await?;
    let scoped_user = h.member_with(&founder, &["report_viewer"]).await?;
    let name = scoped_user.member_name();
    let location = uuid::Uuid::new_v4().to_string();

    let updated = update_roles(
        &founder,
        &name,
        vec![scoped("referrals_user", &[&location])],
        "",
    )
    .await?;
    let expected = vec![scoped("referrals_user", &[&location])];
    assert_eq!(updated.roles, expected);
    assert_eq!(get_member(&founder, &name).await?.roles, expected);

    let s = update_roles(
        &founder,
        &name,
        vec![scoped("billing_admin", &[&location])],
        "",
    )
    .await;
    expect_invalid(
        "a location on billing_admin",
        s,
        "member.roles[0].locations",
    )?;
    let s = update_roles(
        &founder,
        &name,
        vec![scoped("referrals_user", &["not-a-location"])],
        "",
    )
    .await;
    expect_invalid("a bad location id", s, "member.roles[0].locations[0]")?;
    assert_eq!(get_member(&founder, &name).await?.roles, expected);

    let again = h.sign_in(&scoped_user.email, PASSWORD, "").await?;
    let mine = again
        .me()
        .get_my_permissions(again.req(GetMyPermissionsRequest {}))
        .await?
        .into_inner();
    let assignments: Vec<RoleAssignment> = mine
        .roles
        .iter()
        .filter_map(|r| r.assignment.clone())
        .collect();
    assert_eq!(assignments, expected);

    // CreateUser stores scopes too.
    let other = uuid::Uuid::new_v4().to_string();
    let made = created(
        &create_user(
            &founder,
            vec![
                scoped("incentives_user", &[&location, &other]),
                role("report_viewer"),
            ],
        )
        .await?,
    )?;
    let made = get_member(&founder, &made.name).await?;
    assert_eq!(
        made.roles,
        vec![
            scoped("incentives_user", &[&location, &other]),
            role("report_viewer")
        ]
    );
    h.stop().await
}

#[tokio::test]
async fn list_members_filters_by_role_and_state_and_pages() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let founder = h.sign_up().await?;
    let billing = created(&create_user(&founder, roles(&["billing_admin"])).await?)?;
    created(&create_user(&founder, roles(&["report_viewer"])).await?)?;
    created(&create_user(&founder, roles(&["referrals_user"])).await?)?;
    // An invitation creates no member (ADR 0008): it is not listed.
    invite(
        &founder,
        vec![invitation(&fresh_email("invitee"), &["report_viewer"])],
    )
    .await?;
    created(&create_user(&founder, roles(&["report_viewer"])).await?)?;

    let admins = list_all(&founder, "global_admin", MemberState::Unspecified).await?;
    assert_eq!(names(&admins), [founder.member_name()]);
    let billers = list_all(&founder, "billing_admin", MemberState::Unspecified).await?;
    assert_eq!(names(&billers), std::slice::from_ref(&billing.name));
    #[allow(deprecated)]
    let pending = list_all(&founder, "", MemberState::Invited).await?;
    assert!(pending.is_empty(), "{pending:?}");
    let active = list_all(&founder, "", MemberState::Active).await?;
    assert_eq!(active.len(), 5);

    let everyone = list_all(&founder, "", MemberState::Unspecified).await?;
    assert_eq!(everyone.len(), 5);
    let mut paged = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let (members, next) = list_page(&founder, "", MemberState::Unspecified, 2, &token).await?;
        assert!(members.len() <= 2);
        pages += 1;
        paged.extend(members);
        if next.is_empty() {
            break;
        }
        assert!(pages < 10, "paging does not end");
        token = next;
    }
    assert_eq!(pages, 3);
    assert_eq!(names(&paged), names(&everyone));
    let distinct: BTreeSet<_> = names(&paged).into_iter().collect();
    assert_eq!(distinct.len(), 5);

    let (_, token) = list_page(&founder, "", MemberState::Unspecified, 2, "").await?;
    assert!(!token.is_empty());
    let s = list_page(
        &founder,
        "billing_admin",
        MemberState::Unspecified,
        2,
        &token,
    )
    .await;
    expect_invalid("page token with another role", s, "page_token")?;
    let s = list_page(&founder, "", MemberState::Active, 2, &token).await;
    expect_invalid("page token with another state", s, "page_token")?;
    let s = list_page(&founder, "", MemberState::Unspecified, 2, "garbage").await;
    expect_invalid("garbage page token", s, "page_token")?;
    let s = list_page(&founder, "wizard", MemberState::Unspecified, 0, "").await;
    expect_invalid("unknown role filter", s, "role")?;
    h.stop().await
}

#[tokio::test]
async fn invitations_are_single_use_and_resend_replaces_the_token() -> anyhow::Result<()> {
    let mut h = Harness::start().await?;
    let founder = h.sign_up().await?;
    let first_email = fresh_email("first");
    let second_email = fresh_email("second");

    let invited = invite(
        &founder,
        vec![
            invitation(&first_email, &["report_viewer"]),
            invitation(&second_email, &["referrals_user"]),
        ],
    )
    .await?;
    assert_eq!(invited.invitations.len(), 2);
    for (inv, email) in invited
        .invitations
        .iter()
        .zip([&first_email, &second_email])
    {
        assert_eq!(inv.state, i32::from(InvitationState::Pending));
        assert_eq!(&inv.email, email);
        assert!(
            inv.name
                .starts_with(&format!("{}/invitations/", founder.account))
        );
        assert_eq!(inv.invited_by, founder.user);
    }
    let second = invited.invitations[1].clone();
    // Invitations create no member.
    assert_eq!(
        names(&list_all(&founder, "", MemberState::Unspecified).await?),
        [founder.member_name()]
    );
    let listed = founder
        .invitations()
        .list_invitations(founder.req(ListInvitationsRequest {
            parent: founder.account.clone(),
            ..Default::default()
        }))
        .await?
        .into_inner()
        .invitations;
    assert_eq!(listed, invited.invitations);

    let eleven: Vec<_> = (0..11)
        .map(|_| invitation(&fresh_email("many"), &["report_viewer"]))
        .collect();
    expect_invalid(
        "11 invitations",
        invite(&founder, eleven).await,
        "invitations",
    )?;
    expect_invalid(
        "0 invitations",
        invite(&founder, vec![]).await,
        "invitations",
    )?;

    let tokens = invitation_tokens(&mut h, &[&first_email, &second_email]).await?;
    let first_token = token_for(&tokens, &first_email)?;
    let second_token = token_for(&tokens, &second_email)?;

    let session = accept(&h, &first_token).await?;
    assert_eq!(
        session.account.as_ref().map(|a| a.name.clone()),
        Some(founder.account.clone())
    );
    assert!(!session.password_change_required);
    // A user made by accepting has no home directory of its own.
    let first_user = session.user.clone().unwrap_or_default();
    assert_eq!(first_user.home_account, "");
    let joined = Actor::from_session(h.channel(), &first_email, session);
    let mine = joined
        .me()
        .get_my_permissions(joined.req(GetMyPermissionsRequest {}))
        .await?
        .into_inner();
    assert_eq!(mine.account, founder.account);
    let first_member = member_in(&founder.account, &first_user.name);
    let member = get_member(&founder, &first_member).await?;
    assert_eq!(member.state, i32::from(MemberState::Active));
    assert_eq!(role_ids(&member), ["report_viewer"]);
    assert_eq!(
        member.user.as_ref().map(|u| u.given_name.as_str()),
        Some("Katherine")
    );
    // Their credentials are not the inviting account's.
    let s = reset_password(&founder, &first_member).await;
    expect_refused(
        "reset an invited member",
        s,
        Code::PermissionDenied,
        Some("OTHER_DIRECTORY"),
    )?;
    expect_invalid(
        "an accepted token again",
        accept(&h, &first_token).await,
        "token",
    )?;
    h.sign_in(&first_email, PASSWORD, "").await?;

    let resent = founder
        .invitations()
        .resend_invitation(founder.req(ResendInvitationRequest {
            name: second.name.clone(),
        }))
        .await?
        .into_inner();
    assert_eq!(resent.state, i32::from(InvitationState::Pending));
    assert_eq!(resent.name, second.name);
    let new_token = token_for(
        &invitation_tokens(&mut h, &[&second_email]).await?,
        &second_email,
    )?;
    assert_ne!(new_token, second_token);
    expect_invalid("a replaced token", accept(&h, &second_token).await, "token")?;
    let session = accept(&h, &new_token).await?;
    assert_eq!(
        session.account.as_ref().map(|a| a.name.clone()),
        Some(founder.account.clone())
    );

    // An accepted invitation has nothing to resend.
    let s = founder
        .invitations()
        .resend_invitation(founder.req(ResendInvitationRequest {
            name: second.name.clone(),
        }))
        .await;
    expect_refused(
        "resend an accepted invitation",
        s,
        Code::FailedPrecondition,
        Some("NOT_PENDING"),
    )?;
    // The deprecated MemberService.ResendInvitation: no member is INVITED.
    #[allow(deprecated)]
    let s = founder
        .members()
        .resend_invitation(founder.req(ResendInvitationRequest {
            name: first_member.clone(),
        }))
        .await;
    expect_refused(
        "resend to an active member",
        s,
        Code::FailedPrecondition,
        Some("NOT_INVITED"),
    )?;

    let s = invite(&founder, vec![invitation(&first_email, &["report_viewer"])]).await;
    expect_invalid("invite an active member", s, "invitations[0].email")?;
    let s = invite(
        &founder,
        vec![
            invitation(&fresh_email("ok"), &["report_viewer"]),
            invitation(&founder.email, &["report_viewer"]),
        ],
    )
    .await;
    expect_invalid("invite the founder", s, "invitations[1].email")?;
    // All or nothing: the fresh email of the refused call was not invited.
    let pending = founder
        .invitations()
        .list_invitations(founder.req(ListInvitationsRequest {
            parent: founder.account.clone(),
            ..Default::default()
        }))
        .await?
        .into_inner()
        .invitations;
    assert!(pending.is_empty(), "{pending:?}");
    h.stop().await
}

#[tokio::test]
async fn bulk_create_is_all_or_nothing_with_errors_by_row_and_column() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let founder = h.sign_up().await?;

    let bad = format!(
        "email,given_name,family_name,roles\n\
         {},Ada,Lovelace,billing_admin\n\
         not-an-email,Bob,Smith,report_viewer\n\
         {},Carol,Jones,wizard\n",
        fresh_email("row1"),
        fresh_email("row3"),
    );
    let s = bulk_create(&founder, &bad).await;
    let status = expect_refused("a bad CSV", s, Code::InvalidArgument, None)?;
    assert_eq!(violated_fields(&status), ["rows[2].email", "rows[3].roles"]);
    let everyone = list_all(&founder, "", MemberState::Unspecified).await?;
    assert_eq!(names(&everyone), [founder.member_name()]);

    let emails = [fresh_email("a"), fresh_email("b"), fresh_email("c")];
    let good = format!(
        "email,given_name,family_name,roles\n\
         {},Ada,Lovelace,billing_admin\n\
         {},Bob,Smith,report_viewer;referrals_user\n\
         {},Carol,Jones,business_profile_admin\n",
        emails[0], emails[1], emails[2],
    );
    let response = bulk_create(&founder, &good).await?;
    assert_eq!(response.users.len(), 3);
    let expected_roles: [&[&str]; 3] = [
        &["billing_admin"],
        &["report_viewer", "referrals_user"],
        &["business_profile_admin"],
    ];
    let mut passwords = BTreeSet::new();
    for ((user, email), expected) in response.users.iter().zip(&emails).zip(expected_roles) {
        assert!(!user.temporary_password.is_empty());
        passwords.insert(user.temporary_password.clone());
        let member = user
            .member
            .clone()
            .ok_or_else(|| anyhow!("bulk row without a member"))?;
        assert_eq!(&email_of(&member), email);
        assert_eq!(role_ids(&member), expected);
        assert_eq!(member.state, i32::from(MemberState::Active));
        assert!(member.password_change_required);
    }
    assert_eq!(passwords.len(), 3, "temporary passwords repeat");
    let session = sign_in_session(&h, &emails[1], &response.users[1].temporary_password).await?;
    assert!(session.password_change_required);
    assert_eq!(
        list_all(&founder, "", MemberState::Unspecified)
            .await?
            .len(),
        4
    );

    let taken = format!(
        "email,given_name,family_name,roles\n\
         {},Dan,Brown,report_viewer\n\
         {},Eve,White,report_viewer\n",
        fresh_email("d"),
        emails[0].to_uppercase(),
    );
    let s = bulk_create(&founder, &taken).await;
    let status = expect_refused("an existing email", s, Code::InvalidArgument, None)?;
    assert_eq!(violated_fields(&status), ["rows[2].email"]);
    assert_eq!(
        list_all(&founder, "", MemberState::Unspecified)
            .await?
            .len(),
        4
    );
    h.stop().await
}

#[tokio::test]
async fn remove_member_scopes() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let founder = h.sign_up().await?;

    let leaving = h.member_with(&founder, &["report_viewer"]).await?;
    remove_member(&founder, &leaving.member_name(), RemovalScope::Account, "").await?;
    let s = get_member(&founder, &leaving.member_name()).await;
    expect_refused("removed member", s, Code::NotFound, None)?;
    let s = sign_in_session(&h, &leaving.email, PASSWORD).await;
    expect_refused(
        "sign-in without an account",
        s,
        Code::FailedPrecondition,
        Some("NO_ACCOUNT"),
    )?;
    let s = refresh(&h, &leaving.refresh_token).await;
    expect_refused(
        "refresh of a removed member",
        s,
        Code::Unauthenticated,
        None,
    )?;

    let deleted = h.member_with(&founder, &["report_viewer"]).await?;
    remove_member(
        &founder,
        &deleted.member_name(),
        RemovalScope::Directory,
        "",
    )
    .await?;
    let s = sign_in_session(&h, &deleted.email, PASSWORD).await;
    expect_refused(
        "sign-in of a deleted user",
        s,
        Code::Unauthenticated,
        Some("INVALID_CREDENTIALS"),
    )?;
    let s = refresh(&h, &deleted.refresh_token).await;
    expect_refused("refresh of a deleted user", s, Code::Unauthenticated, None)?;
    let shown = get_member(&founder, &deleted.member_name()).await?;
    assert_eq!(shown.state, i32::from(MemberState::Deleted));
    let listed = list_all(&founder, "", MemberState::Deleted).await?;
    assert_eq!(names(&listed), [deleted.member_name()]);

    let target = created(&create_user(&founder, roles(&["report_viewer"])).await?)?;
    let s = remove_member(&founder, &target.name, RemovalScope::Unspecified, "").await;
    expect_invalid("unspecified scope", s, "scope")?;
    let changed = update_roles(
        &founder,
        &target.name,
        roles(&["report_viewer", "referrals_user"]),
        &target.etag,
    )
    .await?;
    let s = remove_member(&founder, &target.name, RemovalScope::Account, &target.etag).await;
    expect_refused(
        "remove with a stale etag",
        s,
        Code::Aborted,
        Some("ETAG_MISMATCH"),
    )?;
    assert_eq!(get_member(&founder, &target.name).await?, changed);
    remove_member(&founder, &target.name, RemovalScope::Account, &changed.etag).await?;
    let s = get_member(&founder, &target.name).await;
    expect_refused("removed with the right etag", s, Code::NotFound, None)?;
    h.stop().await
}

#[tokio::test]
async fn update_member_uses_etags() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let founder = h.sign_up().await?;
    let target = created(&create_user(&founder, roles(&["report_viewer"])).await?)?;
    let read = get_member(&founder, &target.name).await?;
    assert_eq!(read.etag, target.etag);

    let first = update_roles(
        &founder,
        &target.name,
        roles(&["report_viewer", "referrals_user"]),
        &read.etag,
    )
    .await?;
    assert_ne!(first.etag, read.etag);
    let s = update_roles(&founder, &target.name, roles(&["marketer"]), &read.etag).await;
    expect_refused(
        "update with a stale etag",
        s,
        Code::Aborted,
        Some("ETAG_MISMATCH"),
    )?;
    assert_eq!(get_member(&founder, &target.name).await?, first);
    let second = update_roles(&founder, &target.name, roles(&["marketer"]), &first.etag).await?;
    assert_eq!(role_ids(&second), ["marketer"]);
    assert_ne!(second.etag, first.etag);

    for paths in [&["roles", "state"][..], &["user"][..], &["etag"][..]] {
        let s = update_roles_masked(
            &founder,
            &target.name,
            roles(&["report_viewer"]),
            &second.etag,
            mask(paths),
        )
        .await;
        expect_invalid(&format!("update_mask {paths:?}"), s, "update_mask")?;
    }
    assert_eq!(get_member(&founder, &target.name).await?, second);
    h.stop().await
}

#[tokio::test]
async fn a_token_for_one_account_never_reaches_another_accounts_members() -> anyhow::Result<()> {
    let mut h = Harness::start().await?;
    let a = h.sign_up().await?;
    let b = h.sign_up().await?;
    let b_member = created(&create_user(&b, roles(&["report_viewer"])).await?)?;
    let b_invitee_email = fresh_email("b.invitee");
    let b_invited = invite(&b, vec![invitation(&b_invitee_email, &["report_viewer"])]).await?;
    let b_invitation = b_invited
        .invitations
        .first()
        .cloned()
        .ok_or_else(|| anyhow!("no invitation"))?;
    let b_token = token_for(
        &invitation_tokens(&mut h, &[&b_invitee_email]).await?,
        &b_invitee_email,
    )?;

    let b_members_before = list_all(&b, "", MemberState::Unspecified).await?;
    let b_activity_before = all_activity(&b, "").await?;
    let b_account = b.account.clone();
    let b_founder = b.member_name();
    let not_found = Code::NotFound;

    let s = a
        .members()
        .create_user(a.req(CreateUserRequest {
            parent: b_account.clone(),
            email: fresh_email("intruder"),
            given_name: "Mallory".into(),
            family_name: "Evil".into(),
            roles: roles(&["report_viewer"]),
            request_id: String::new(),
        }))
        .await;
    expect_refused("CreateUser in B", s, not_found, None)?;
    let s = a
        .members()
        .invite_users(a.req(InviteUsersRequest {
            parent: b_account.clone(),
            invitations: vec![invitation(&fresh_email("intruder"), &["report_viewer"])],
            request_id: String::new(),
        }))
        .await;
    expect_refused("InviteUsers in B", s, not_found, None)?;
    let s = a
        .members()
        .bulk_create_users(a.req(BulkCreateUsersRequest {
            parent: b_account.clone(),
            csv: format!(
                "email,given_name,family_name,roles\n{},Mallory,Evil,report_viewer\n",
                fresh_email("intruder")
            ),
            request_id: String::new(),
        }))
        .await;
    expect_refused("BulkCreateUsers in B", s, not_found, None)?;
    let s = a
        .members()
        .list_members(a.req(ListMembersRequest {
            parent: b_account.clone(),
            ..Default::default()
        }))
        .await;
    expect_refused("ListMembers of B", s, not_found, None)?;

    // B's members named in B's account, and B's users named in A's account.
    let b_member_in_a = member_in(&a.account, &user_of(&b_member));
    let b_founder_in_a = member_in(&a.account, &b.user);
    let b_invitation_in_a = b_invitation.name.replace(&b.account, &a.account);
    for name in [&b_founder, &b_member.name, &b_member_in_a, &b_founder_in_a] {
        let s = get_member(&a, name).await;
        expect_refused(&format!("GetMember {name}"), s, not_found, None)?;
        let s = update_roles(&a, name, roles(&["report_viewer", "billing_admin"]), "").await;
        expect_refused(&format!("UpdateMember {name}"), s, not_found, None)?;
        let s = remove_member(&a, name, RemovalScope::Both, "").await;
        expect_refused(&format!("RemoveMember {name}"), s, not_found, None)?;
        let s = reset_password(&a, name).await;
        expect_refused(&format!("ResetPassword {name}"), s, not_found, None)?;
    }
    for name in [&b_invitation.name, &b_invitation_in_a] {
        let s = a
            .invitations()
            .resend_invitation(a.req(ResendInvitationRequest { name: name.clone() }))
            .await;
        expect_refused(&format!("ResendInvitation {name}"), s, not_found, None)?;
        let s = a
            .invitations()
            .revoke_invitation(a.req(RevokeInvitationRequest { name: name.clone() }))
            .await;
        expect_refused(&format!("RevokeInvitation {name}"), s, not_found, None)?;
    }
    let s = a
        .activity()
        .list_activity(a.req(ListActivityRequest {
            parent: b_account.clone(),
            ..Default::default()
        }))
        .await;
    expect_refused("ListActivity of B", s, not_found, None)?;
    let s = a
        .accounts()
        .get_account(a.req(GetAccountRequest {
            name: b_account.clone(),
        }))
        .await;
    expect_refused("GetAccount B", s, not_found, None)?;

    // B is untouched: same members (same etags), same log, same passwords,
    // and the invitation token was not replaced.
    assert_eq!(
        list_all(&b, "", MemberState::Unspecified).await?,
        b_members_before
    );
    assert_eq!(all_activity(&b, "").await?, b_activity_before);
    h.sign_in(&b.email, PASSWORD, "").await?;
    let s = accept(&h, &b_token).await?;
    assert_eq!(s.account.map(|acc| acc.name), Some(b_account));
    // A's own view is unaffected by B.
    assert_eq!(
        names(&list_all(&a, "", MemberState::Unspecified).await?),
        [a.member_name()]
    );
    h.stop().await
}

#[tokio::test]
async fn activity_log_records_member_changes() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let founder = h.sign_up().await?;
    let email = fresh_email("logged");
    let target =
        created(&create_user_with_email(&founder, &email, roles(&["report_viewer"])).await?)?;
    let target_user = user_of(&target);
    update_roles(
        &founder,
        &target.name,
        roles(&["report_viewer", "billing_admin"]),
        "",
    )
    .await?;
    reset_password(&founder, &target.name).await?;
    remove_member(&founder, &target.name, RemovalScope::Account, "").await?;

    let entries = all_activity(&founder, "").await?;
    let actions: Vec<_> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "member.removed",
            "password.changed",
            "member.roles_changed",
            "user.created"
        ],
        "{entries:#?}"
    );
    for entry in &entries {
        assert_eq!(entry.actor, founder.user, "{entry:?}");
        assert_eq!(entry.target, target_user, "{entry:?}");
        assert!(
            entry
                .name
                .starts_with(&format!("{}/activities/", founder.account))
        );
        assert!(entry.create_time.is_some());
    }
    let times: Vec<_> = entries
        .iter()
        .filter_map(|e| e.create_time.map(|t| (t.seconds, t.nanos)))
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "not newest first");

    let removed = &entries[0];
    assert_eq!(
        json_roles(&json(&removed.old_value)?),
        ["report_viewer", "billing_admin"]
    );
    assert_eq!(
        json(&removed.new_value)?
            .get("scope")
            .and_then(|s| s.as_str()),
        Some("REMOVAL_SCOPE_ACCOUNT")
    );
    let reset = &entries[1];
    assert_eq!(
        json(&reset.new_value)?
            .get("method")
            .and_then(|s| s.as_str()),
        Some("admin_reset")
    );
    let changed = &entries[2];
    assert_eq!(json_roles(&json(&changed.old_value)?), ["report_viewer"]);
    assert_eq!(
        json_roles(&json(&changed.new_value)?),
        ["report_viewer", "billing_admin"]
    );
    let made = &entries[3];
    assert!(made.old_value.is_empty());
    let made_value = json(&made.new_value)?;
    assert_eq!(json_roles(&made_value), ["report_viewer"]);
    assert_eq!(
        made_value.get("email").and_then(|e| e.as_str()),
        Some(email.as_str())
    );

    // Another actor: a user management admin who creates a user.
    let uma = h.member_with(&founder, &["user_management_admin"]).await?;
    let by_uma = created(&create_user(&uma, roles(&["helpdesk_agent"])).await?)?;
    let uma_entries = all_activity(&founder, &uma.user).await?;
    assert!(!uma_entries.is_empty());
    assert!(uma_entries.iter().all(|e| e.actor == uma.user));
    assert!(
        uma_entries
            .iter()
            .any(|e| e.action == "user.created" && e.target == user_of(&by_uma))
    );
    // The UMA's own first password change is theirs.
    assert!(
        uma_entries
            .iter()
            .any(|e| e.action == "password.changed" && e.target == uma.user)
    );
    let founder_entries = all_activity(&founder, &founder.user).await?;
    assert!(founder_entries.iter().all(|e| e.actor == founder.user));
    let everything = all_activity(&founder, "").await?;
    assert_eq!(
        everything.len(),
        founder_entries.len() + uma_entries.len(),
        "{everything:#?}"
    );

    // Pages of 2 give the same list, without gaps or repeats.
    let mut paged = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let (page, next) = activity_page(&founder, "", 2, &token).await?;
        assert!(page.len() <= 2);
        paged.extend(page);
        pages += 1;
        if next.is_empty() {
            break;
        }
        assert!(pages < 50, "paging does not end");
        token = next;
    }
    assert_eq!(paged, everything);
    assert_eq!(pages, everything.len().div_ceil(2));

    let (_, token) = activity_page(&founder, "", 2, "").await?;
    let s = activity_page(&founder, &founder.user, 2, &token).await;
    expect_invalid("page token with another actor", s, "page_token")?;
    let s = activity_page(&founder, "bob", 0, "").await;
    expect_invalid("a bad actor filter", s, "actor")?;
    h.stop().await
}

#[tokio::test]
async fn roles_are_listed_with_their_rules() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let founder = h.sign_up().await?;
    let listed = founder
        .roles()
        .list_roles(founder.req(ListRolesRequest {}))
        .await?
        .into_inner()
        .roles;
    let family = |f: Family| -> i32 {
        match f {
            Family::Directory => RoleFamily::Directory,
            Family::Csp => RoleFamily::Csp,
            Family::Partner => RoleFamily::Partner,
            Family::Developer => RoleFamily::Developer,
        }
        .into()
    };
    assert_eq!(listed.len(), role_table::ROLES.len());
    for expected in role_table::ROLES {
        let got = listed
            .iter()
            .find(|r| r.id == expected.id)
            .ok_or_else(|| anyhow!("ListRoles lacks {}", expected.id))?;
        assert_eq!(got.name, format!("roles/{}", expected.id));
        assert_eq!(got.display_name, expected.display_name);
        assert_eq!(got.family, family(expected.family), "{}", expected.id);
        assert_eq!(got.permissions, expected.permissions, "{}", expected.id);
        assert_eq!(got.assignable_by, expected.assignable_by, "{}", expected.id);
        assert_eq!(
            got.location_scopable, expected.location_scopable,
            "{}",
            expected.id
        );
    }

    let ga = founder
        .roles()
        .get_role(founder.req(GetRoleRequest {
            name: "roles/global_admin".into(),
        }))
        .await?
        .into_inner();
    assert_eq!(ga.id, "global_admin");
    assert_eq!(ga.family, i32::from(RoleFamily::Directory));
    assert_eq!(ga.assignable_by, ["global_admin"]);
    assert!(
        ga.permissions
            .iter()
            .any(|p| p == "identity.members.create")
    );
    assert!(!ga.location_scopable);
    let listed_ga = listed.iter().find(|r| r.id == "global_admin");
    assert_eq!(listed_ga, Some(&ga));

    let s = founder
        .roles()
        .get_role(founder.req(GetRoleRequest {
            name: "roles/nope".into(),
        }))
        .await;
    expect_refused("GetRole roles/nope", s, Code::NotFound, None)?;
    let s = founder
        .roles()
        .get_role(founder.req(GetRoleRequest { name: "bad".into() }))
        .await;
    expect_invalid("GetRole bad", s, "name")?;
    let s =
        partnerhub_proto::identity::v1::role_service_client::RoleServiceClient::new(h.channel())
            .list_roles(ListRolesRequest {})
            .await;
    expect_refused("ListRoles without a token", s, Code::Unauthenticated, None)?;
    h.stop().await
}

/// A user of `founder`'s directory who opened account C of their own (so is
/// its only Global admin), signed in to C.
async fn directory_user_with_own_account(
    h: &Harness,
    founder: &Actor,
) -> anyhow::Result<(Actor, Actor)> {
    let user = h.member_with(founder, &["report_viewer"]).await?;
    let c = user
        .accounts()
        .create_account(user.req(CreateAccountRequest {
            display_name: "Fabrikam".into(),
            request_id: String::new(),
        }))
        .await?
        .into_inner();
    let in_c = user
        .auth()
        .switch_account(user.req(SwitchAccountRequest {
            account: c.name.clone(),
        }))
        .await?
        .into_inner();
    let in_c = Actor::from_session(h.channel(), &user.email, in_c);
    assert_eq!(in_c.account, c.name);
    let admins = list_all(&in_c, "global_admin", MemberState::Unspecified).await?;
    assert_eq!(names(&admins), [in_c.member_name()]);
    Ok((user, in_c))
}

#[tokio::test]
async fn bulk_create_refuses_a_role_listed_twice_in_a_row() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let founder = h.sign_up().await?;
    let csv = format!(
        "email,given_name,family_name,roles\n{},Ada,Lovelace,billing_admin;billing_admin\n",
        fresh_email("twice")
    );
    let result = bulk_create(&founder, &csv).await;
    let listed = list_all(&founder, "billing_admin", MemberState::Unspecified).await?;
    let stored: Vec<_> = listed.iter().map(role_ids).collect();
    expect_invalid("a role twice in a CSV row", result, "rows[1].roles")
        .map_err(|e| anyhow!("{e}; stored roles: {stored:?}"))?;
    assert!(listed.is_empty(), "{stored:?}");
    // CreateUser refuses the same thing.
    let s = create_user(&founder, roles(&["billing_admin", "billing_admin"])).await;
    expect_invalid("a role twice in CreateUser", s, "roles[1].role")?;
    h.stop().await
}

#[tokio::test]
async fn directory_removal_never_leaves_another_account_without_a_global_admin()
-> anyhow::Result<()> {
    let h = Harness::start().await?;
    let founder = h.sign_up().await?;
    let (user, _in_c) = directory_user_with_own_account(&h, &founder).await?;
    let s = remove_member(&founder, &user.member_name(), RemovalScope::Directory, "").await;
    expect_refused(
        "delete the last GA of another account from the directory",
        s,
        Code::FailedPrecondition,
        Some("LAST_GLOBAL_ADMIN"),
    )?;
    h.sign_in(&user.email, PASSWORD, "").await?;
    h.stop().await
}

#[tokio::test]
async fn a_user_management_admin_cannot_reset_a_global_admin_of_another_account()
-> anyhow::Result<()> {
    let h = Harness::start().await?;
    let founder = h.sign_up().await?;
    let uma = h.member_with(&founder, &["user_management_admin"]).await?;
    let (user, in_c) = directory_user_with_own_account(&h, &founder).await?;
    let result = reset_password(&uma, &user.member_name()).await;
    if let Ok(reset) = &result {
        // Show what the reset gives: the UMA signs in as the user, into C,
        // as its Global admin.
        let session = h
            .auth()
            .sign_in(SignInRequest {
                email: user.email.clone(),
                password: reset.temporary_password.clone(),
                account: in_c.account.clone(),
            })
            .await?
            .into_inner();
        assert_eq!(
            session.account.map(|a| a.name),
            Some(in_c.account.clone()),
            "the temporary password opens account C"
        );
    }
    expect_refused(
        "UMA resets the GA of another account",
        result,
        Code::PermissionDenied,
        Some("GLOBAL_ADMIN_PASSWORD"),
    )?;
    h.stop().await
}
