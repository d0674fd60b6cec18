//! Identity's sign-in, sessions, passwords, service accounts, accounts and
//! merges, through the gRPC API against real PostgreSQL and RabbitMQ.

mod common;

use std::time::{Duration, Instant};

use common::{Actor, Harness, MAIL_WAIT, PASSWORD, code, reason, role, violated_fields};
use partnerhub_proto::identity::v1::{
    AccountState, ApplyMergeRequest, ChangePasswordRequest, CompletePasswordResetRequest,
    CreateAccountRequest, CreateUserRequest, GetAccountRequest, GetMemberRequest,
    IssueServiceTokenRequest, ListMyAccountsRequest, Member, RefreshTokenRequest,
    RequestPasswordResetRequest, SetAccountStateRequest, SignOutRequest, SignUpRequest,
    SwitchAccountRequest, UpdateMemberRequest, UpdateMyProfileRequest, User,
};
use partnerhub_testkit::{EventTap, unique};
use prost_types::FieldMask;
use tonic::Code;
use tonic_types::StatusExt;

#[tokio::test]
async fn unknown_email_and_wrong_password_get_the_same_answer_in_about_the_same_time()
-> anyhow::Result<()> {
    let h = Harness::start().await?;
    let founder = h.sign_up().await?;
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    let mut statuses = Vec::new();
    for i in 0..3 {
        let t = Instant::now();
        let a = h
            .sign_in(&founder.email, &format!("wrong password {i}"), "")
            .await
            .err();
        known.push(t.elapsed());
        let t = Instant::now();
        let b = h
            .sign_in(
                &format!("nobody.{}@contoso.com", unique()),
                "wrong password",
                "",
            )
            .await
            .err();
        unknown.push(t.elapsed());
        statuses.push((a, b));
    }
    for (a, b) in &statuses {
        let (a, b) = (
            a.as_ref()
                .map(|s| (s.code(), s.message().to_owned(), reason(s))),
            b.as_ref()
                .map(|s| (s.code(), s.message().to_owned(), reason(s))),
        );
        assert_eq!(a, b);
        assert_eq!(a.map(|x| x.0), Some(Code::Unauthenticated));
    }
    known.sort();
    unknown.sort();
    // Both spend an argon2 verification: the medians are of one order.
    assert!(
        unknown[1] * 3 >= known[1],
        "unknown {:?} vs known {:?}",
        unknown[1],
        known[1]
    );
    h.stop().await
}

#[tokio::test]
async fn repeated_failures_lock_the_email_out_with_retry_info() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let founder = h.sign_up().await?;
    for _ in 0..5 {
        assert_eq!(
            code(h.sign_in(&founder.email, "not the password", "").await),
            Code::Unauthenticated
        );
    }
    // Locked now, even with the right password.
    let locked = h
        .sign_in(&founder.email, PASSWORD, "")
        .await
        .expect_err("locked");
    assert_eq!(locked.code(), Code::ResourceExhausted);
    let retry = locked
        .get_error_details()
        .retry_info()
        .and_then(|r| r.retry_delay);
    assert!(
        retry.is_some_and(|d| d > Duration::from_secs(20) && d <= Duration::from_secs(30)),
        "{retry:?}"
    );
    // Unknown emails lock the same way, so lock-out reveals nothing.
    let ghost = format!("ghost.{}@contoso.com", unique());
    for _ in 0..5 {
        assert_eq!(
            code(h.sign_in(&ghost, "whatever it is", "").await),
            Code::Unauthenticated
        );
    }
    assert_eq!(
        code(h.sign_in(&ghost, "whatever it is", "").await),
        Code::ResourceExhausted
    );
    h.stop().await
}

#[tokio::test]
async fn emails_are_compared_case_insensitively() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let founder = h.sign_up().await?;
    let shouted = founder.email.to_uppercase();
    h.sign_in(&shouted, PASSWORD, "").await?;
    let again = h
        .auth()
        .sign_up(SignUpRequest {
            email: format!("  {shouted}  "),
            given_name: "Eve".into(),
            family_name: "Copy".into(),
            password: PASSWORD.into(),
            account_display_name: String::new(),
            locale: String::new(),
        })
        .await;
    let status = again.expect_err("taken");
    assert!(
        matches!(status.code(), Code::AlreadyExists | Code::InvalidArgument),
        "{status:?}"
    );
    h.stop().await
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_whole_family() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let founder = h.sign_up().await?;
    let refresh = |token: String| {
        let mut auth = h.auth();
        async move {
            auth.refresh_token(RefreshTokenRequest {
                refresh_token: token,
            })
            .await
        }
    };
    let first = refresh(founder.refresh_token.clone()).await?.into_inner();
    assert_ne!(first.refresh_token, founder.refresh_token);
    assert!(first.access_token.is_some());
    let second = refresh(first.refresh_token.clone()).await?.into_inner();
    // The spent original comes back: the whole family dies, even the newest.
    assert_eq!(
        code(refresh(founder.refresh_token.clone()).await),
        Code::Unauthenticated
    );
    assert_eq!(
        code(refresh(second.refresh_token.clone()).await),
        Code::Unauthenticated
    );
    // Tokens are stored only hashed.
    let db = h.suite.pool("identity").await?;
    let plain: i64 =
        sqlx::query_scalar("SELECT count(*) FROM refresh_tokens WHERE token_hash = $1")
            .bind(second.refresh_token.as_bytes())
            .fetch_one(&db)
            .await?;
    assert_eq!(plain, 0);
    h.stop().await
}

#[tokio::test]
async fn sign_out_ends_the_session() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let founder = h.sign_up().await?;
    founder
        .auth()
        .sign_out(founder.req(SignOutRequest {
            refresh_token: founder.refresh_token.clone(),
        }))
        .await?;
    let after = h
        .auth()
        .refresh_token(RefreshTokenRequest {
            refresh_token: founder.refresh_token.clone(),
        })
        .await;
    assert_eq!(code(after), Code::Unauthenticated);
    h.stop().await
}

#[tokio::test]
async fn the_account_picker_lists_accounts_and_switch_account_moves_the_token() -> anyhow::Result<()>
{
    let h = Harness::start().await?;
    let founder = h.sign_up().await?;
    let other = h.sign_up().await?;
    let second = founder
        .accounts()
        .create_account(founder.req(CreateAccountRequest {
            display_name: "Fabrikam".into(),
            request_id: "open-1".into(),
        }))
        .await?
        .into_inner();
    // The same request id replays the first answer.
    let replayed = founder
        .accounts()
        .create_account(founder.req(CreateAccountRequest {
            display_name: "Fabrikam".into(),
            request_id: "open-1".into(),
        }))
        .await?
        .into_inner();
    assert_eq!(replayed.name, second.name);
    let picker = founder
        .accounts()
        .list_my_accounts(founder.req(ListMyAccountsRequest {
            page_size: 1,
            page_token: String::new(),
        }))
        .await?
        .into_inner();
    assert_eq!(picker.accounts.len(), 1);
    let rest = founder
        .accounts()
        .list_my_accounts(founder.req(ListMyAccountsRequest {
            page_size: 1,
            page_token: picker.next_page_token.clone(),
        }))
        .await?
        .into_inner();
    let mut names: Vec<_> = picker
        .accounts
        .iter()
        .chain(&rest.accounts)
        .filter_map(|m| m.account.as_ref())
        .map(|a| a.name.clone())
        .collect();
    names.sort();
    let mut expected = vec![founder.account.clone(), second.name.clone()];
    expected.sort();
    assert_eq!(names, expected);
    assert!(rest.next_page_token.is_empty());

    let switched = founder
        .auth()
        .switch_account(founder.req(SwitchAccountRequest {
            account: second.name.clone(),
        }))
        .await?
        .into_inner();
    let switched = Actor::from_session(founder.channel.clone(), &founder.email, switched);
    assert_eq!(switched.account, second.name);
    switched
        .accounts()
        .get_account(switched.req(GetAccountRequest {
            name: second.name.clone(),
        }))
        .await?;
    // The old token still belongs to the first account only.
    assert_eq!(
        code(
            founder
                .accounts()
                .get_account(founder.req(GetAccountRequest {
                    name: second.name.clone()
                }))
                .await
        ),
        Code::NotFound
    );
    // Another user's account cannot be switched to.
    let foreign = founder
        .auth()
        .switch_account(founder.req(SwitchAccountRequest {
            account: other.account.clone(),
        }))
        .await;
    assert_eq!(code(foreign), Code::NotFound);
    h.stop().await
}

#[tokio::test]
async fn password_reset_is_mailed_once_and_the_token_works_once() -> anyhow::Result<()> {
    let mut h = Harness::start().await?;
    let founder = h.sign_up().await?;
    // Unknown email: same empty answer, and no mail.
    h.auth()
        .request_password_reset(RequestPasswordResetRequest {
            email: format!("nobody.{}@contoso.com", unique()),
        })
        .await?;
    h.auth()
        .request_password_reset(RequestPasswordResetRequest {
            email: founder.email.to_uppercase(),
        })
        .await?;
    let mail = h
        .mail
        .next_to("identity.password_reset", &founder.email, MAIL_WAIT)
        .await?;
    let token = mail.params.get("token").cloned().unwrap_or_default();
    assert_eq!(token.len(), 43);
    let complete = |token: &str, password: &str| {
        let mut auth = h.auth();
        let request = CompletePasswordResetRequest {
            token: token.into(),
            new_password: password.into(),
        };
        async move { auth.complete_password_reset(request).await }
    };
    let weak = complete(&token, "short").await.expect_err("weak");
    assert_eq!(violated_fields(&weak), ["new_password"]);
    complete(&token, "a brand new passphrase 7").await?;
    let reused = complete(&token, "yet another passphrase 8")
        .await
        .expect_err("single use");
    assert_eq!(violated_fields(&reused), ["token"]);
    assert_eq!(
        code(h.sign_in(&founder.email, PASSWORD, "").await),
        Code::Unauthenticated
    );
    h.sign_in(&founder.email, "a brand new passphrase 7", "")
        .await?;
    // The old session was revoked.
    let old = h
        .auth()
        .refresh_token(RefreshTokenRequest {
            refresh_token: founder.refresh_token.clone(),
        })
        .await;
    assert_eq!(code(old), Code::Unauthenticated);
    let db = h.suite.pool("identity").await?;
    let plain: i64 =
        sqlx::query_scalar("SELECT count(*) FROM one_time_tokens WHERE token_hash = $1")
            .bind(token.as_bytes())
            .fetch_one(&db)
            .await?;
    assert_eq!(plain, 0, "reset tokens are stored only hashed");
    h.stop().await
}

#[tokio::test]
async fn change_password_checks_the_current_one_and_ends_other_sessions() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let founder = h.sign_up().await?;
    let wrong = founder
        .auth()
        .change_password(founder.req(ChangePasswordRequest {
            current_password: "not it at all".into(),
            new_password: "fresh passphrase 99".into(),
        }))
        .await
        .expect_err("wrong current password");
    assert_eq!(violated_fields(&wrong), ["current_password"]);
    let session = founder
        .auth()
        .change_password(founder.req(ChangePasswordRequest {
            current_password: PASSWORD.into(),
            new_password: "fresh passphrase 99".into(),
        }))
        .await?
        .into_inner();
    assert!(!session.password_change_required);
    let old = h
        .auth()
        .refresh_token(RefreshTokenRequest {
            refresh_token: founder.refresh_token.clone(),
        })
        .await;
    assert_eq!(code(old), Code::Unauthenticated);
    h.auth()
        .refresh_token(RefreshTokenRequest {
            refresh_token: session.refresh_token,
        })
        .await?;
    h.stop().await
}

#[tokio::test]
async fn service_accounts_get_platform_tokens_with_client_credentials() -> anyhow::Result<()> {
    let h = Harness::with_service_account(&["platform.identity.accounts.set_state"]).await?;
    let wrong = h
        .auth()
        .issue_service_token(IssueServiceTokenRequest {
            client_id: "ops".into(),
            client_secret: "guess".into(),
        })
        .await;
    assert_eq!(code(wrong), Code::Unauthenticated);
    let response = h
        .auth()
        .issue_service_token(IssueServiceTokenRequest {
            client_id: "ops".into(),
            client_secret: common::SERVICE_SECRET.into(),
        })
        .await?
        .into_inner();
    assert_eq!(
        response.permissions,
        ["platform.identity.accounts.set_state"]
    );
    // This service account may not apply merges, and users may do neither.
    let founder = h.sign_up().await?;
    let merge = ApplyMergeRequest {
        merge_id: "m-1".into(),
        source_account: founder.account.clone(),
        target_account: founder.account.clone(),
    };
    let token = response.access_token.unwrap_or_default().token;
    assert_eq!(
        code(
            founder
                .accounts()
                .apply_merge(Actor::with_token(&token, merge.clone()))
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code(founder.accounts().apply_merge(founder.req(merge)).await),
        Code::PermissionDenied
    );
    let suspend = SetAccountStateRequest {
        name: founder.account.clone(),
        state: AccountState::Suspended.into(),
        reason: "test".into(),
    };
    assert_eq!(
        code(
            founder
                .accounts()
                .set_account_state(founder.req(suspend))
                .await
        ),
        Code::PermissionDenied
    );
    h.stop().await
}

#[tokio::test]
async fn suspended_and_merged_accounts_cannot_be_signed_in_to() -> anyhow::Result<()> {
    let h = Harness::with_service_account(&[
        "platform.identity.accounts.set_state",
        "platform.identity.merge.apply",
    ])
    .await?;
    let service = h.service_token().await?;
    let founder = h.sign_up().await?;
    let accounts = founder.accounts();
    let set = |state: AccountState| SetAccountStateRequest {
        name: founder.account.clone(),
        state: state.into(),
        reason: "verification rejected for 30 days".into(),
    };
    let suspended = accounts
        .clone()
        .set_account_state(Actor::with_token(&service, set(AccountState::Suspended)))
        .await?
        .into_inner();
    assert_eq!(suspended.state(), AccountState::Suspended);
    let refused = h
        .sign_in(&founder.email, PASSWORD, "")
        .await
        .expect_err("suspended");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("suspended"),
        "{}",
        refused.message()
    );
    let refresh = h
        .auth()
        .refresh_token(RefreshTokenRequest {
            refresh_token: founder.refresh_token.clone(),
        })
        .await;
    assert_eq!(code(refresh), Code::Unauthenticated);
    let bad = SetAccountStateRequest {
        name: founder.account.clone(),
        state: AccountState::Merged.into(),
        reason: "no".into(),
    };
    assert_eq!(
        code(
            accounts
                .clone()
                .set_account_state(Actor::with_token(&service, bad))
                .await
        ),
        Code::InvalidArgument
    );
    accounts
        .clone()
        .set_account_state(Actor::with_token(&service, set(AccountState::Active)))
        .await?;
    h.sign_in(&founder.email, PASSWORD, "").await?;

    // Merge another account into this one: it can no longer be signed in to.
    let other = h.sign_up().await?;
    let merge = ApplyMergeRequest {
        merge_id: format!("merge-{}", unique()),
        source_account: other.account.clone(),
        target_account: founder.account.clone(),
    };
    accounts
        .clone()
        .apply_merge(Actor::with_token(&service, merge))
        .await?;
    let refused = h
        .sign_in(&other.email, PASSWORD, &other.account)
        .await
        .expect_err("merged");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("merged"),
        "{}",
        refused.message()
    );
    // Without naming an account, the user lands in the account they were merged into.
    let landed = h.sign_in(&other.email, PASSWORD, "").await?;
    assert_eq!(landed.account, founder.account);
    h.stop().await
}

#[tokio::test]
async fn apply_merge_moves_members_with_their_roles_once_and_keeps_directories_apart()
-> anyhow::Result<()> {
    let h = Harness::with_service_account(&["platform.identity.merge.apply"]).await?;
    let service = h.service_token().await?;
    let target = h.sign_up().await?;
    let target_user = h.member_with(&target, &["billing_admin"]).await?;
    let source = h.sign_up().await?;
    let source_user = h.member_with(&source, &["referrals_admin"]).await?;
    let merge_id = format!("merge-{}", unique());
    let request = ApplyMergeRequest {
        merge_id: merge_id.clone(),
        source_account: source.account.clone(),
        target_account: target.account.clone(),
    };
    let applied = target
        .accounts()
        .apply_merge(Actor::with_token(&service, request.clone()))
        .await?
        .into_inner();
    assert_eq!((applied.members_moved, applied.already_applied), (2, false));
    let again = target
        .accounts()
        .apply_merge(Actor::with_token(&service, request))
        .await?
        .into_inner();
    assert_eq!((again.members_moved, again.already_applied), (2, true));
    let reused = ApplyMergeRequest {
        merge_id,
        source_account: target.account.clone(),
        target_account: source.account.clone(),
    };
    assert_eq!(
        code(
            target
                .accounts()
                .apply_merge(Actor::with_token(&service, reused))
                .await
        ),
        Code::FailedPrecondition
    );

    // The source's users are members of the target with their roles.
    let moved_name = format!(
        "{}/members/{}",
        target.account,
        source_user.user.trim_start_matches("users/")
    );
    let moved: Member = target
        .members()
        .get_member(target.req(GetMemberRequest {
            name: moved_name.clone(),
        }))
        .await?
        .into_inner();
    assert_eq!(moved.roles, [role("referrals_admin")]);
    let source_admin = h.sign_in(&source.email, PASSWORD, &target.account).await?;
    // Admins of either side manage only users of their own directory.
    let native_name = format!(
        "{}/members/{}",
        target.account,
        target_user.user.trim_start_matches("users/")
    );
    let native = target
        .members()
        .get_member(target.req(GetMemberRequest { name: native_name }))
        .await?
        .into_inner();
    let update = |m: Member| UpdateMemberRequest {
        member: Some(Member {
            roles: vec![role("report_viewer")],
            ..m
        }),
        update_mask: Some(FieldMask {
            paths: vec!["roles".into()],
        }),
    };
    let denied = source_admin
        .members()
        .update_member(source_admin.req(update(native.clone())))
        .await
        .expect_err("other directory");
    assert_eq!(
        (denied.code(), reason(&denied)),
        (Code::PermissionDenied, "OTHER_DIRECTORY".to_owned())
    );
    source_admin
        .members()
        .update_member(source_admin.req(update(moved.clone())))
        .await?;
    let denied = target
        .members()
        .update_member(target.req(update(moved)))
        .await
        .expect_err("other directory");
    assert_eq!(reason(&denied), "OTHER_DIRECTORY");
    target
        .members()
        .update_member(target.req(update(native)))
        .await?;
    h.stop().await
}

#[tokio::test]
async fn update_my_profile_changes_only_the_masked_fields() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let founder = h.sign_up().await?;
    let update = |user: User, paths: &[&str]| UpdateMyProfileRequest {
        user: Some(user),
        update_mask: Some(FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        }),
    };
    let changed = founder
        .me()
        .update_my_profile(founder.req(update(
            User {
                alternate_email: "billing@contoso.com".into(),
                locale: "fr-FR".into(),
                given_name: "ignored".into(),
                ..Default::default()
            },
            &["alternate_email", "locale"],
        )))
        .await?
        .into_inner();
    assert_eq!(
        (
            changed.alternate_email.as_str(),
            changed.locale.as_str(),
            changed.given_name.as_str()
        ),
        ("billing@contoso.com", "fr-FR", "Ada")
    );
    let bad = founder
        .me()
        .update_my_profile(founder.req(update(
            User {
                alternate_email: "nope".into(),
                locale: "xx".into(),
                ..Default::default()
            },
            &["alternate_email", "locale", "email"],
        )))
        .await
        .expect_err("invalid");
    assert_eq!(
        violated_fields(&bad),
        ["user.alternate_email", "user.locale", "update_mask"]
    );
    let empty = founder
        .me()
        .update_my_profile(founder.req(update(User::default(), &[])))
        .await;
    assert_eq!(code(empty), Code::InvalidArgument);
    h.stop().await
}

#[tokio::test]
async fn events_carry_facts_and_never_a_secret() -> anyhow::Result<()> {
    let mut h = Harness::with_service_account(&[
        "platform.identity.merge.apply",
        "platform.identity.accounts.set_state",
    ])
    .await?;
    let mut tap = EventTap::start(&h.suite.bus).await?;
    let service = h.service_token().await?;
    let founder = h.sign_up().await?;
    let created = founder
        .members()
        .create_user(founder.req(CreateUserRequest {
            parent: founder.account.clone(),
            email: format!("temp.{}@contoso.com", unique()),
            given_name: "Tim".into(),
            family_name: "Berners".into(),
            roles: vec![role("billing_admin")],
            request_id: String::new(),
        }))
        .await?
        .into_inner();
    let invited_email = format!("guest.{}@fabrikam.com", unique());
    founder
        .members()
        .invite_users(
            founder.req(partnerhub_proto::identity::v1::InviteUsersRequest {
                parent: founder.account.clone(),
                invitations: vec![partnerhub_proto::identity::v1::Invitation {
                    email: invited_email.clone(),
                    roles: vec![role("report_viewer")],
                    ..Default::default()
                }],
                request_id: String::new(),
            }),
        )
        .await?;
    let invitation = h
        .mail
        .next_to("identity.invitation", &invited_email, MAIL_WAIT)
        .await?;
    h.auth()
        .request_password_reset(RequestPasswordResetRequest {
            email: founder.email.clone(),
        })
        .await?;
    let reset = h
        .mail
        .next_to("identity.password_reset", &founder.email, MAIL_WAIT)
        .await?;
    let member = created.member.clone().unwrap_or_default();
    founder
        .members()
        .update_member(founder.req(UpdateMemberRequest {
            member: Some(Member {
                roles: vec![role("report_viewer")],
                ..member.clone()
            }),
            update_mask: None,
        }))
        .await?;
    founder
        .me()
        .update_my_profile(founder.req(UpdateMyProfileRequest {
            user: Some(User {
                given_name: "Augusta".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["given_name".into()],
            }),
        }))
        .await?;
    founder
        .members()
        .remove_member(
            founder.req(partnerhub_proto::identity::v1::RemoveMemberRequest {
                name: member.name.clone(),
                scope: partnerhub_proto::identity::v1::RemovalScope::Account.into(),
                etag: String::new(),
            }),
        )
        .await?;
    founder
        .auth()
        .change_password(founder.req(ChangePasswordRequest {
            current_password: PASSWORD.into(),
            new_password: "rotated passphrase 31".into(),
        }))
        .await?;
    let other = h.sign_up().await?;
    founder
        .accounts()
        .apply_merge(Actor::with_token(
            &service,
            ApplyMergeRequest {
                merge_id: format!("m-{}", unique()),
                source_account: other.account.clone(),
                target_account: founder.account.clone(),
            },
        ))
        .await?;
    founder
        .accounts()
        .set_account_state(Actor::with_token(
            &service,
            SetAccountStateRequest {
                name: founder.account.clone(),
                state: AccountState::Suspended.into(),
                reason: "test".into(),
            },
        ))
        .await?;

    let events = tap.drain(Duration::from_secs(3)).await?;
    let types: std::collections::BTreeSet<_> = events
        .iter()
        .map(|e| {
            e.message_type
                .trim_start_matches("partnerhub.identity.v1.")
                .to_owned()
        })
        .collect();
    for expected in [
        "AccountCreated",
        "UserCreated",
        "UserInvited",
        "UserUpdated",
        "MemberRolesChanged",
        "MemberRemoved",
        "PasswordChanged",
        "AccountStateChanged",
        "AccountMerged",
    ] {
        assert!(types.contains(expected), "missing {expected} in {types:?}");
    }
    let secrets = [
        created.temporary_password.as_str(),
        invitation
            .params
            .get("token")
            .map(String::as_str)
            .unwrap_or("-"),
        reset.params.get("token").map(String::as_str).unwrap_or("-"),
        PASSWORD,
        "rotated passphrase 31",
    ];
    for event in &events {
        for secret in secrets {
            assert!(
                !event
                    .payload
                    .windows(secret.len())
                    .any(|w| w == secret.as_bytes()),
                "{} carries a secret",
                event.message_type
            );
        }
    }
    tap.close().await;
    h.stop().await
}
