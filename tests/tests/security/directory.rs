//! Attacks: directory (see docs/security.md and docs/adr/0008).
//!
//! One home directory per user, invitations as consent records, grant only
//! what you hold, and an audit trail in the target's home account. Each test
//! drives the public gRPC API as the attacker would.

use std::time::Duration;

use partnerhub_proto::identity::v1::{
    AcceptInvitationRequest, ChangePasswordRequest, CreateUserRequest, Invitation,
    InviteUsersRequest, ListActivityRequest, Member, RemovalScope, RemoveMemberRequest,
    ResendInvitationRequest, ResetPasswordRequest, RevokeInvitationRequest, RoleAssignment,
    Session, SignInRequest, SignUpRequest, UpdateMemberRequest,
    activity_service_client::ActivityServiceClient, auth_service_client::AuthServiceClient,
    invitation_service_client::InvitationServiceClient, member_service_client::MemberServiceClient,
};
use partnerhub_testkit::clients::{FOUNDER_PASSWORD, sign_up};
use partnerhub_testkit::errors::{error_reason, refusal};
use partnerhub_testkit::{Company, PORTAL_URL, Suite, bearer, unique};
use tonic::Code;

fn role(id: &str) -> RoleAssignment {
    RoleAssignment {
        role: id.into(),
        locations: Vec::new(),
    }
}

fn members(suite: &Suite) -> anyhow::Result<MemberServiceClient<tonic::transport::Channel>> {
    Ok(MemberServiceClient::new(Suite::channel(suite.identity)?))
}

fn auth(suite: &Suite) -> anyhow::Result<AuthServiceClient<tonic::transport::Channel>> {
    Ok(AuthServiceClient::new(Suite::channel(suite.identity)?))
}

fn token_of(session: &Session) -> String {
    session.access_token.clone().unwrap_or_default().token
}

fn user_id(session: &Session) -> String {
    session
        .user
        .as_ref()
        .map(|u| u.name.trim_start_matches("users/").to_owned())
        .unwrap_or_default()
}

/// The token of the newest invitation mail to `to`.
async fn invitation_token(suite: &Suite, to: &str) -> anyhow::Result<String> {
    let link = format!("{PORTAL_URL}/invitations/accept?token=");
    let mail = suite
        .smtp
        .next_matching(to, |m| m.text.contains(&link), Duration::from_secs(30))
        .await?;
    let at = mail.text.find(&link).unwrap_or_default();
    let token: String = mail.text[at + link.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    anyhow::ensure!(token.len() >= 40, "short token in {}", mail.text);
    Ok(token)
}

/// `by` invites `email` to its account with `roles`; the invitation's name.
async fn invite(
    suite: &Suite,
    by: &Company,
    email: &str,
    roles: &[&str],
) -> Result<String, tonic::Status> {
    let mut client = members(suite).map_err(|e| tonic::Status::internal(e.to_string()))?;
    let request = bearer(
        &by.token,
        InviteUsersRequest {
            parent: by.account.clone(),
            invitations: vec![Invitation {
                email: email.into(),
                roles: roles.iter().map(|r| role(r)).collect(),
                ..Invitation::default()
            }],
            request_id: String::new(),
        },
    )
    .map_err(|e| tonic::Status::internal(e.to_string()))?;
    client.invite_users(request).await.map(|r| {
        r.into_inner()
            .invitations
            .first()
            .map(|i| i.name.clone())
            .unwrap_or_default()
    })
}

/// Signs in to `account` (or the default one).
async fn sign_in(
    suite: &Suite,
    email: &str,
    password: &str,
    account: &str,
) -> anyhow::Result<Result<Session, tonic::Status>> {
    Ok(auth(suite)?
        .sign_in(SignInRequest {
            email: email.into(),
            password: password.into(),
            account: account.into(),
        })
        .await
        .map(tonic::Response::into_inner))
}

/// A user the founder of `company` creates with `roles`, signed in to it
/// after changing the temporary password: (email, session).
async fn colleague(
    suite: &Suite,
    company: &Company,
    roles: &[&str],
) -> anyhow::Result<(String, Session)> {
    let email = format!(
        "colleague.{}@{}",
        unique(),
        company.email.rsplit('@').next().unwrap_or("x.com")
    );
    let created = members(suite)?
        .create_user(bearer(
            &company.token,
            CreateUserRequest {
                parent: company.account.clone(),
                email: email.clone(),
                given_name: "Col".into(),
                family_name: "League".into(),
                roles: roles.iter().map(|r| role(r)).collect(),
                request_id: String::new(),
            },
        )?)
        .await?
        .into_inner();
    let first = sign_in(suite, &email, &created.temporary_password, &company.account).await??;
    let session = auth(suite)?
        .change_password(bearer(
            &token_of(&first),
            ChangePasswordRequest {
                current_password: created.temporary_password.clone(),
                new_password: FOUNDER_PASSWORD.into(),
            },
        )?)
        .await?
        .into_inner();
    Ok((email, session))
}

/// The member `accounts/{a}/members/{u}`, read by `token`.
async fn get_member(suite: &Suite, token: &str, name: &str) -> anyhow::Result<Member> {
    Ok(members(suite)?
        .get_member(bearer(
            token,
            partnerhub_proto::identity::v1::GetMemberRequest { name: name.into() },
        )?)
        .await?
        .into_inner())
}

/// `token` sets the roles of member `name` (read first for its etag).
async fn set_roles(
    suite: &Suite,
    token: &str,
    name: &str,
    roles: &[&str],
) -> anyhow::Result<Result<Member, tonic::Status>> {
    let mut member = get_member(suite, token, name).await?;
    member.roles = roles.iter().map(|r| role(r)).collect();
    Ok(members(suite)?
        .update_member(bearer(
            token,
            UpdateMemberRequest {
                member: Some(member),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["roles".into()],
                }),
            },
        )?)
        .await
        .map(tonic::Response::into_inner))
}

/// Accepts an invitation with `token`; `password` is the invitee's current
/// password when the email already has a user.
async fn accept(
    suite: &Suite,
    token: &str,
    password: &str,
) -> anyhow::Result<Result<Session, tonic::Status>> {
    Ok(members(suite)?
        .accept_invitation(AcceptInvitationRequest {
            token: token.into(),
            given_name: "Grace".into(),
            family_name: "Hopper".into(),
            password: password.into(),
        })
        .await
        .map(tonic::Response::into_inner))
}

/// Finding 1: A's Global admin invites B's Global admin, then resets their
/// password from A and signs in to B with it. No membership exists before
/// consent, and even after the victim joins A, A cannot reset them: only
/// their home account's Global admins can.
#[tokio::test]
async fn invite_and_reset_does_not_take_over_another_companys_global_admin() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    let attacker = sign_up(&suite, "Attacker").await?;
    let victim = sign_up(&suite, "Victim").await?;
    invite(&suite, &attacker, &victim.email, &["report_viewer"]).await?;
    let member = format!("{}/members/{}", attacker.account, victim.user_id());

    // Before consent there is nothing to reset.
    let reset = members(&suite)?
        .reset_password(bearer(
            &attacker.token,
            ResetPasswordRequest {
                name: member.clone(),
            },
        )?)
        .await;
    if let Ok(r) = &reset {
        let stolen = &r.get_ref().temporary_password;
        let into_b = sign_in(&suite, &victim.email, stolen, &victim.account).await?;
        anyhow::bail!(
            "A reset B's Global admin before any consent; signing in to B: {:?}",
            into_b.map(|s| s.account)
        );
    }
    let status = refusal(reset)?;
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    // The victim accepts (consent): now a member of A, still not A's to reset.
    let token = invitation_token(&suite, &victim.email).await?;
    accept(&suite, &token, FOUNDER_PASSWORD).await??;
    let status = refusal(
        members(&suite)?
            .reset_password(bearer(
                &attacker.token,
                ResetPasswordRequest { name: member },
            )?)
            .await,
    )?;
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(error_reason(&status), "OTHER_DIRECTORY");
    // The victim keeps their password and their account.
    let session = sign_in(&suite, &victim.email, FOUNDER_PASSWORD, &victim.account).await??;
    assert_eq!(session.account.unwrap_or_default().name, victim.account);
    suite.stop().await
}

/// Finding 2: inviting an address before its owner signs up creates no
/// user: the owner signs up, reset mails reach them, and the inviter never
/// manages their credentials.
#[tokio::test]
async fn an_invitation_does_not_squat_the_email() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    let squatter = sign_up(&suite, "Squatter").await?;
    let email = format!("owner.{}@owned.com", unique());
    invite(&suite, &squatter, &email, &["report_viewer"]).await?;
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE email_normalized = $1")
        .bind(&email)
        .fetch_one(&suite.pool("identity").await?)
        .await?;
    assert_eq!(users, 0, "an invitation created a user for {email}");

    let owner = auth(&suite)?
        .sign_up(SignUpRequest {
            email: email.clone(),
            given_name: "Own".into(),
            family_name: "Er".into(),
            password: FOUNDER_PASSWORD.into(),
            account_display_name: "Owned".into(),
            locale: String::new(),
        })
        .await?
        .into_inner();
    let home = owner.account.clone().unwrap_or_default().name;
    assert_eq!(owner.user.clone().unwrap_or_default().home_account, home);

    // The owner joins the squatter's account by consent: still not theirs.
    let token = invitation_token(&suite, &email).await?;
    accept(&suite, &token, FOUNDER_PASSWORD).await??;
    let status = refusal(
        members(&suite)?
            .reset_password(bearer(
                &squatter.token,
                ResetPasswordRequest {
                    name: format!("{}/members/{}", squatter.account, user_id(&owner)),
                },
            )?)
            .await,
    )?;
    assert_eq!(error_reason(&status), "OTHER_DIRECTORY", "{status:?}");
    let status = refusal(
        members(&suite)?
            .remove_member(bearer(
                &squatter.token,
                RemoveMemberRequest {
                    name: format!("{}/members/{}", squatter.account, user_id(&owner)),
                    scope: RemovalScope::Directory.into(),
                    etag: String::new(),
                },
            )?)
            .await,
    )?;
    assert_eq!(error_reason(&status), "OTHER_DIRECTORY", "{status:?}");
    sign_in(&suite, &email, FOUNDER_PASSWORD, &home).await??;
    suite.stop().await
}

/// Finding 4: a delegated admin adds to their own membership a role
/// carrying permissions they do not hold.
#[tokio::test]
async fn delegated_admins_cannot_elevate_themselves() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    let company = sign_up(&suite, "Elevate").await?;
    for (admin, wanted) in [
        ("account_admin", "incentives_admin"),
        ("manager", "financial_contributor"),
        ("user_management_admin", "billing_admin"),
    ] {
        let (_, session) = colleague(&suite, &company, &[admin]).await?;
        let me = format!("{}/members/{}", company.account, user_id(&session));
        let result = set_roles(&suite, &token_of(&session), &me, &[admin, wanted]).await?;
        let status = match result {
            Ok(m) => anyhow::bail!("{admin} gave itself {wanted}: {:?}", m.roles),
            Err(status) => status,
        };
        assert!(
            matches!(
                status.code(),
                Code::PermissionDenied | Code::FailedPrecondition
            ),
            "{admin}: {status:?}"
        );
        let member = get_member(&suite, &company.token, &me).await?;
        assert_eq!(
            member
                .roles
                .iter()
                .map(|r| r.role.as_str())
                .collect::<Vec<_>>(),
            [admin]
        );
    }
    suite.stop().await
}

/// Finding 4: a delegated admin grants someone else a role carrying
/// payout and tax numbers; only a Global admin grants those.
#[tokio::test]
async fn only_a_global_admin_grants_sensitive_roles() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    let company = sign_up(&suite, "Sensitive").await?;
    let (_, account_admin) = colleague(&suite, &company, &["account_admin"]).await?;
    let (_, manager) = colleague(&suite, &company, &["manager"]).await?;
    let (_, plain) = colleague(&suite, &company, &["referrals_user"]).await?;
    let target = format!("{}/members/{}", company.account, user_id(&plain));

    for (who, token, wanted) in [
        (
            "account_admin",
            token_of(&account_admin),
            "incentives_admin",
        ),
        ("manager", token_of(&manager), "financial_contributor"),
    ] {
        let status = match set_roles(&suite, &token, &target, &["referrals_user", wanted]).await? {
            Ok(m) => anyhow::bail!("{who} granted {wanted}: {:?}", m.roles),
            Err(status) => status,
        };
        assert_eq!(status.code(), Code::PermissionDenied, "{who}: {status:?}");
    }
    // Nor through CreateUser or InviteUsers (the manager may create users).
    let status = refusal(
        members(&suite)?
            .create_user(bearer(
                &token_of(&manager),
                CreateUserRequest {
                    parent: company.account.clone(),
                    email: format!("payee.{}@sensitive.com", unique()),
                    given_name: "Pay".into(),
                    family_name: "Ee".into(),
                    roles: vec![role("financial_contributor")],
                    request_id: String::new(),
                },
            )?)
            .await,
    )?;
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let manager_company = Company {
        token: token_of(&manager),
        ..company.clone()
    };
    let status = invite(
        &suite,
        &manager_company,
        &format!("payee.{}@elsewhere.com", unique()),
        &["financial_contributor"],
    )
    .await
    .err()
    .ok_or_else(|| anyhow::anyhow!("the manager invited a financial contributor"))?;
    assert!(
        matches!(
            status.code(),
            Code::PermissionDenied | Code::InvalidArgument
        ),
        "{status:?}"
    );
    // The Global admin may.
    set_roles(
        &suite,
        &company.token,
        &target,
        &["referrals_user", "incentives_admin"],
    )
    .await??;
    suite.stop().await
}

/// Finding 10 (part): an action of account A on a member whose home is B
/// leaves an entry in B's activity, not only in A's.
#[tokio::test]
async fn a_cross_account_action_is_in_the_victims_activity() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    let a = sign_up(&suite, "Actor").await?;
    let b = sign_up(&suite, "Home").await?;
    invite(&suite, &a, &b.email, &["report_viewer"]).await?;
    let token = invitation_token(&suite, &b.email).await?;
    accept(&suite, &token, FOUNDER_PASSWORD).await??;
    let member = format!("{}/members/{}", a.account, b.user_id());
    set_roles(&suite, &a.token, &member, &["referrals_user"]).await??;
    members(&suite)?
        .remove_member(bearer(
            &a.token,
            RemoveMemberRequest {
                name: member,
                scope: RemovalScope::Account.into(),
                etag: String::new(),
            },
        )?)
        .await?;
    let activity = ActivityServiceClient::new(Suite::channel(suite.identity)?)
        .list_activity(bearer(
            &b.token,
            ListActivityRequest {
                parent: b.account.clone(),
                page_size: 100,
                ..ListActivityRequest::default()
            },
        )?)
        .await?
        .into_inner()
        .activities;
    for action in [
        "invitation.accepted",
        "member.roles_changed",
        "member.removed",
    ] {
        let entry = activity
            .iter()
            .find(|e| e.action == action && e.target == b.user)
            .ok_or_else(|| anyhow::anyhow!("no {action} in B's activity: {activity:?}"))?;
        assert!(
            entry.new_value.contains(&a.account) || entry.old_value.contains(&a.account),
            "{action} does not name the account where it happened: {entry:?}"
        );
    }
    let by_a = activity.iter().filter(|e| e.actor == a.user).count();
    assert!(by_a >= 2, "{activity:?}");
    suite.stop().await
}

/// Whoever holds an invitation token for an existing user's email cannot
/// accept it as that user without proving it is them.
#[tokio::test]
async fn only_the_invitee_accepts_an_invitation() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    let a = sign_up(&suite, "Inviter").await?;
    let b = sign_up(&suite, "Invitee").await?;
    invite(&suite, &a, &b.email, &["report_viewer"]).await?;
    // The token leaks (a forwarded mail): the holder does not know B's password.
    let token = invitation_token(&suite, &b.email).await?;
    for password in ["", "not the password 123"] {
        if let Ok(session) = accept(&suite, &token, password).await? {
            anyhow::bail!(
                "accepted as {:?} without their password",
                session.user.map(|u| u.email)
            );
        }
    }
    // The invitee still can.
    let session = accept(&suite, &token, FOUNDER_PASSWORD).await??;
    assert_eq!(session.account.unwrap_or_default().name, a.account);
    suite.stop().await
}

fn invitations(
    suite: &Suite,
) -> anyhow::Result<InvitationServiceClient<tonic::transport::Channel>> {
    Ok(InvitationServiceClient::new(Suite::channel(
        suite.identity,
    )?))
}

/// A resent invitation's old token no longer works (a leaked old mail is
/// worthless); the new one does.
#[tokio::test]
async fn resending_an_invitation_kills_the_old_token() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    let a = sign_up(&suite, "Resender").await?;
    let email = format!("new.hire.{}@resender.com", unique());
    let name = invite(&suite, &a, &email, &["report_viewer"]).await?;
    let old = invitation_token(&suite, &email).await?;
    invitations(&suite)?
        .resend_invitation(bearer(&a.token, ResendInvitationRequest { name })?)
        .await?;
    let new = invitation_token(&suite, &email).await?;
    assert_ne!(old, new);
    let status = accept(&suite, &old, FOUNDER_PASSWORD)
        .await?
        .err()
        .ok_or_else(|| anyhow::anyhow!("the old token still works"))?;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let session = accept(&suite, &new, FOUNDER_PASSWORD).await??;
    assert_eq!(session.account.unwrap_or_default().name, a.account);
    suite.stop().await
}

/// A revoked invitation's token no longer works, and nobody was created.
#[tokio::test]
async fn revoking_an_invitation_kills_its_token() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    let a = sign_up(&suite, "Revoker").await?;
    let email = format!("changed.mind.{}@revoker.com", unique());
    let name = invite(&suite, &a, &email, &["report_viewer"]).await?;
    let token = invitation_token(&suite, &email).await?;
    invitations(&suite)?
        .revoke_invitation(bearer(
            &a.token,
            RevokeInvitationRequest { name: name.clone() },
        )?)
        .await?;
    let status = accept(&suite, &token, FOUNDER_PASSWORD)
        .await?
        .err()
        .ok_or_else(|| anyhow::anyhow!("a revoked invitation was accepted"))?;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    // Revoked is final: it cannot be resent.
    let status = refusal(
        invitations(&suite)?
            .resend_invitation(bearer(&a.token, ResendInvitationRequest { name })?)
            .await,
    )?;
    assert_eq!(error_reason(&status), "NOT_PENDING", "{status:?}");
    // The address is free: its owner signs up.
    auth(&suite)?
        .sign_up(SignUpRequest {
            email,
            given_name: "Changed".into(),
            family_name: "Mind".into(),
            password: FOUNDER_PASSWORD.into(),
            account_display_name: String::new(),
            locale: String::new(),
        })
        .await?;
    suite.stop().await
}

/// Squatting by creation: an admin creates a user for an address it does not
/// own (CreateUser makes its own directory's users, no consent). The owner
/// takes the user over by the mailed reset and opens their own company with
/// it; the creating account, still the home directory, then tries an admin
/// reset to open that company. A reset by an admin may open only accounts
/// that admin's account owns.
#[tokio::test]
async fn a_created_user_who_opens_their_own_company_cannot_be_reset_into_it() -> anyhow::Result<()>
{
    use partnerhub_proto::identity::v1::{
        CreateAccountRequest, account_service_client::AccountServiceClient,
    };
    let suite = Suite::start().await?;
    let attacker = sign_up(&suite, "Squatter").await?;
    let (_, victim) = colleague(&suite, &attacker, &["report_viewer"]).await?;
    let own = AccountServiceClient::new(Suite::channel(suite.identity)?)
        .create_account(bearer(
            &token_of(&victim),
            CreateAccountRequest {
                display_name: "Victim's own company".into(),
                request_id: String::new(),
            },
        )?)
        .await?
        .into_inner();
    let member = format!("{}/members/{}", attacker.account, user_id(&victim));
    let reset = members(&suite)?
        .reset_password(bearer(
            &attacker.token,
            ResetPasswordRequest { name: member },
        )?)
        .await;
    if let Ok(r) = &reset {
        anyhow::bail!(
            "the creating account reset a user who owns {}: temporary password {:?}",
            own.name,
            r.get_ref().temporary_password
        );
    }
    let status = refusal(reset)?;
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(error_reason(&status), "MEMBER_OF_OTHER_ACCOUNTS");
    suite.stop().await
}
