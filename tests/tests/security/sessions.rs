//! Attacks: sessions (see docs/security.md).
//!
//! An access token is bound to its session (the `sid` claim: the refresh
//! token family) and to its account's state. Each test below ends a session
//! or an account the way a user, an admin or the platform does, then keeps
//! using the access token it still holds: SwitchAccount must not mint a new
//! session from it, and every one of the five services must refuse it within
//! 5 s. Each of these attacks succeeded on main before the sessions work (the
//! token kept working until it expired, 15 min later).

use std::time::{Duration, Instant};

use partnerhub_proto::identity::v1::{
    AccountState, ChangePasswordRequest, CreateAccountRequest, CreateUserRequest,
    GetMyPermissionsRequest, RefreshTokenRequest, ResetPasswordRequest, RoleAssignment, Session,
    SetAccountStateRequest, SignInRequest, SignOutRequest, SignUpRequest, SwitchAccountRequest,
    account_service_client::AccountServiceClient, auth_service_client::AuthServiceClient,
    member_service_client::MemberServiceClient, self_service_client::SelfServiceClient,
};
use partnerhub_proto::merge::v1::{
    ListMergeInvitationsRequest, merge_service_client::MergeServiceClient,
};
use partnerhub_proto::notification::v1::{
    GetUnreadCountRequest, notification_service_client::NotificationServiceClient,
};
use partnerhub_proto::profile::v1::{
    AddLocationRequest, Address, Contact, GetLegalProfileRequest, LegalProfile, Location,
    ProgramKind, UpdateLegalProfileRequest,
    legal_profile_service_client::LegalProfileServiceClient,
    location_service_client::LocationServiceClient,
};
use partnerhub_proto::verification::v1::{
    GetVerificationStatusRequest, verification_service_client::VerificationServiceClient,
};
use partnerhub_testkit::clients::{FOUNDER_PASSWORD, bearer};
use partnerhub_testkit::errors::error_reason;
use partnerhub_testkit::{OPS_CLIENT_ID, OPS_CLIENT_SECRET, Suite, SuiteOptions, unique};
use tonic::Code;

/// How long a revocation may take to reach every service.
const BOUND: Duration = Duration::from_secs(5);
/// How long a poll goes on before it calls the attack a success.
const GIVE_UP: Duration = Duration::from_secs(12);

/// A founder's session (the whole answer of SignUp).
async fn founder(suite: &Suite, name: &str) -> anyhow::Result<Session> {
    Ok(AuthServiceClient::new(Suite::channel(suite.identity)?)
        .sign_up(SignUpRequest {
            email: format!("founder.{}@{}.com", unique(), name.to_lowercase()),
            given_name: "Ada".into(),
            family_name: "Lovelace".into(),
            password: FOUNDER_PASSWORD.into(),
            account_display_name: name.into(),
            locale: "en-US".into(),
        })
        .await?
        .into_inner())
}

fn access(session: &Session) -> String {
    session
        .access_token
        .as_ref()
        .map(|t| t.token.clone())
        .unwrap_or_default()
}

fn account_of(session: &Session) -> String {
    session
        .account
        .as_ref()
        .map(|a| a.name.clone())
        .unwrap_or_default()
}

/// Refresh tokens identity has stored (every session minted adds one).
async fn refresh_tokens(suite: &Suite) -> anyhow::Result<i64> {
    let pool = suite.pool("identity").await?;
    let count = sqlx::query_scalar("SELECT count(*) FROM refresh_tokens")
        .fetch_one(&pool)
        .await?;
    pool.close().await;
    Ok(count)
}

/// A second account of the session's user, to switch to.
async fn second_account(suite: &Suite, session: &Session) -> anyhow::Result<String> {
    Ok(AccountServiceClient::new(Suite::channel(suite.identity)?)
        .create_account(bearer(
            &access(session),
            CreateAccountRequest {
                display_name: "Second account".into(),
                request_id: String::new(),
            },
        )?)
        .await?
        .into_inner()
        .name)
}

/// SwitchAccount with `token` must be refused (UNAUTHENTICATED) and mint
/// no refresh token.
async fn switch_is_refused(suite: &Suite, token: &str, to: &str) -> anyhow::Result<()> {
    let before = refresh_tokens(suite).await?;
    let outcome = AuthServiceClient::new(Suite::channel(suite.identity)?)
        .switch_account(bearer(
            token,
            SwitchAccountRequest {
                account: to.to_owned(),
            },
        )?)
        .await;
    let after = refresh_tokens(suite).await?;
    match outcome {
        Ok(session) => anyhow::bail!(
            "SwitchAccount revived a dead session: a new session for {} ({} refresh tokens before, {after} after)",
            account_of(session.get_ref()),
            before
        ),
        Err(status) => {
            assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
            assert_eq!(error_reason(&status), "SESSION_ENDED", "{status:?}");
        }
    }
    assert_eq!(before, after, "a refresh token was minted");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_account_after_sign_out_is_refused() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    let session = founder(&suite, "Contoso").await?;
    let second = second_account(&suite, &session).await?;
    AuthServiceClient::new(Suite::channel(suite.identity)?)
        .sign_out(bearer(
            &access(&session),
            SignOutRequest {
                refresh_token: session.refresh_token.clone(),
            },
        )?)
        .await?;
    switch_is_refused(&suite, &access(&session), &second).await?;
    suite.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_account_after_change_password_is_refused() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    let session = founder(&suite, "Contoso").await?;
    let second = second_account(&suite, &session).await?;
    let fresh = AuthServiceClient::new(Suite::channel(suite.identity)?)
        .change_password(bearer(
            &access(&session),
            ChangePasswordRequest {
                current_password: FOUNDER_PASSWORD.into(),
                new_password: "a brand new passphrase 1843".into(),
            },
        )?)
        .await?
        .into_inner();
    switch_is_refused(&suite, &access(&session), &second).await?;
    // Control: the session ChangePassword returned is live and may switch.
    AuthServiceClient::new(Suite::channel(suite.identity)?)
        .switch_account(bearer(
            &access(&fresh),
            SwitchAccountRequest {
                account: second.clone(),
            },
        )?)
        .await?;
    suite.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_account_after_an_admin_reset_is_refused() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    let admin = founder(&suite, "Contoso").await?;
    let created = MemberServiceClient::new(Suite::channel(suite.identity)?)
        .create_user(bearer(
            &access(&admin),
            CreateUserRequest {
                parent: account_of(&admin),
                email: format!("member.{}@contoso.com", unique()),
                given_name: "Alan".into(),
                family_name: "Turing".into(),
                roles: vec![RoleAssignment {
                    role: "account_admin".into(),
                    locations: Vec::new(),
                }],
                request_id: String::new(),
            },
        )?)
        .await?
        .into_inner();
    let member = created.member.unwrap_or_default();
    let email = member.user.clone().unwrap_or_default().email;
    let mut auth = AuthServiceClient::new(Suite::channel(suite.identity)?);
    let temporary = auth
        .sign_in(SignInRequest {
            email: email.clone(),
            password: created.temporary_password.clone(),
            account: String::new(),
        })
        .await?
        .into_inner();
    let user = auth
        .change_password(bearer(
            &access(&temporary),
            ChangePasswordRequest {
                current_password: created.temporary_password,
                new_password: "my own passphrase 1912".into(),
            },
        )?)
        .await?
        .into_inner();
    // The member's own account: a second account of theirs would be one the
    // admin does not hold, and an admin reset is refused for such a user.
    let second = account_of(&user);
    MemberServiceClient::new(Suite::channel(suite.identity)?)
        .reset_password(bearer(
            &access(&admin),
            ResetPasswordRequest {
                name: member.name.clone(),
            },
        )?)
        .await?;
    switch_is_refused(&suite, &access(&user), &second).await?;
    suite.stop().await
}

/// One authenticated read per service, with `token`: `Err(code, reason)` when
/// refused.
async fn read_at(
    suite: &Suite,
    service: &str,
    token: &str,
    account: &str,
) -> anyhow::Result<Result<(), (Code, String)>> {
    let outcome = match service {
        "identity" => SelfServiceClient::new(Suite::channel(suite.identity)?)
            .get_my_permissions(bearer(token, GetMyPermissionsRequest {})?)
            .await
            .map(drop),
        "profile" => LegalProfileServiceClient::new(Suite::channel(suite.profile)?)
            .get_legal_profile(bearer(
                token,
                GetLegalProfileRequest {
                    name: format!("{account}/legalProfile"),
                },
            )?)
            .await
            .map(drop),
        "verification" => VerificationServiceClient::new(Suite::channel(suite.verification)?)
            .get_verification_status(bearer(
                token,
                GetVerificationStatusRequest {
                    name: format!("{account}/verificationStatus"),
                },
            )?)
            .await
            .map(drop),
        "notification" => NotificationServiceClient::new(Suite::channel(suite.notification)?)
            .get_unread_count(bearer(
                token,
                GetUnreadCountRequest {
                    parent: account.to_owned(),
                },
            )?)
            .await
            .map(drop),
        _ => MergeServiceClient::new(Suite::channel(suite.merge)?)
            .list_merge_invitations(bearer(
                token,
                ListMergeInvitationsRequest {
                    parent: account.to_owned(),
                    ..ListMergeInvitationsRequest::default()
                },
            )?)
            .await
            .map(drop),
    };
    Ok(match outcome {
        Ok(()) => Ok(()),
        // Only a refusal of the token counts; NOT_FOUND and the like mean
        // the token got past authentication.
        Err(s) if s.code() == Code::Unauthenticated => Err((s.code(), error_reason(&s))),
        Err(_) => Ok(()),
    })
}

const SERVICES: [&str; 5] = [
    "identity",
    "profile",
    "verification",
    "notification",
    "merge",
];

/// Every service accepts `token` now.
async fn accepted_everywhere(suite: &Suite, token: &str, account: &str) -> anyhow::Result<()> {
    for service in SERVICES {
        if let Err(refused) = read_at(suite, service, token, account).await? {
            anyhow::bail!("{service} refused a live token: {refused:?}");
        }
    }
    Ok(())
}

/// Polls every service in parallel from `since` until each refuses `token`;
/// returns (service, time to the first refusal, reason), and fails if one
/// still accepts it after [`GIVE_UP`].
async fn refusal_times(
    suite: &Suite,
    token: &str,
    account: &str,
    since: Instant,
) -> anyhow::Result<Vec<(&'static str, Duration, String)>> {
    let polls = SERVICES.map(|service| async move {
        loop {
            if let Err((_, reason)) = read_at(suite, service, token, account).await? {
                return anyhow::Ok((service, since.elapsed(), reason));
            }
            if since.elapsed() > GIVE_UP {
                anyhow::bail!("{service} still accepts the token {GIVE_UP:?} later");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    futures::future::join_all(polls).await.into_iter().collect()
}

fn report(what: &str, times: &[(&'static str, Duration, String)]) {
    let figures: Vec<String> = times
        .iter()
        .map(|(s, t, reason)| format!("{s} {} ms ({reason})", t.as_millis()))
        .collect();
    println!("{what}: first refusal after {}", figures.join(", "));
    for (service, time, _) in times {
        assert!(*time <= BOUND, "{service} took {time:?} (bound {BOUND:?})");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_out_token_is_refused_by_every_service_within_5_seconds() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    suite.wait_serving().await?;
    let session = founder(&suite, "Contoso").await?;
    let (token, account) = (access(&session), account_of(&session));
    accepted_everywhere(&suite, &token, &account).await?;
    AuthServiceClient::new(Suite::channel(suite.identity)?)
        .sign_out(bearer(
            &token,
            SignOutRequest {
                refresh_token: session.refresh_token.clone(),
            },
        )?)
        .await?;
    let signed_out = Instant::now();
    let times = refusal_times(&suite, &token, &account, signed_out).await?;
    for (service, _, reason) in &times {
        assert_eq!(reason, "SESSION_ENDED", "{service}");
    }
    report("sign-out", &times);
    suite.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_refresh_token_ends_the_access_tokens_of_its_session() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    suite.wait_serving().await?;
    let first = founder(&suite, "Contoso").await?;
    let account = account_of(&first);
    let mut auth = AuthServiceClient::new(Suite::channel(suite.identity)?);
    let second = auth
        .refresh_token(RefreshTokenRequest {
            refresh_token: first.refresh_token.clone(),
        })
        .await?
        .into_inner();
    let token = access(&second);
    accepted_everywhere(&suite, &token, &account).await?;
    // A copy of the spent refresh token comes back: someone else holds it.
    let reuse = auth
        .refresh_token(RefreshTokenRequest {
            refresh_token: first.refresh_token.clone(),
        })
        .await;
    assert!(reuse.is_err(), "a spent refresh token was accepted");
    let reused = Instant::now();
    let times = refusal_times(&suite, &token, &account, reused).await?;
    report("refresh-token reuse", &times);
    // The first access token of the family is dead too.
    let old = read_at(&suite, "profile", &access(&first), &account).await?;
    assert!(old.is_err(), "the family's first access token still works");
    suite.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_account_is_refused_everywhere_and_cannot_change_its_profile()
-> anyhow::Result<()> {
    let suite = Suite::start_with(SuiteOptions {
        ops_permissions: vec!["platform.identity.accounts.set_state".into()],
        ..SuiteOptions::default()
    })
    .await?;
    suite.wait_serving().await?;
    let company =
        partnerhub_testkit::clients::enrolled(&suite, "Contoso", ProgramKind::Partner).await?;
    let (token, account) = (company.token.clone(), company.account.clone());
    accepted_everywhere(&suite, &token, &account).await?;
    let ops = AuthServiceClient::new(Suite::channel(suite.identity)?)
        .issue_service_token(partnerhub_proto::identity::v1::IssueServiceTokenRequest {
            client_id: OPS_CLIENT_ID.into(),
            client_secret: OPS_CLIENT_SECRET.into(),
        })
        .await?
        .into_inner()
        .access_token
        .unwrap_or_default()
        .token;
    AccountServiceClient::new(Suite::channel(suite.identity)?)
        .set_account_state(bearer(
            &ops,
            SetAccountStateRequest {
                name: account.clone(),
                state: AccountState::Suspended.into(),
                reason: "fraud review".into(),
            },
        )?)
        .await?;
    let suspended = Instant::now();
    let times = refusal_times(&suite, &token, &account, suspended).await?;
    for (service, _, reason) in &times {
        assert_eq!(reason, "ACCOUNT_NOT_ACTIVE", "{service}");
    }
    report("suspension", &times);

    let update = LegalProfileServiceClient::new(Suite::channel(suite.profile)?)
        .update_legal_profile(bearer(
            &token,
            UpdateLegalProfileRequest {
                legal_profile: Some(LegalProfile {
                    name: format!("{account}/legalProfile"),
                    legal_name: "Contoso Holdings SAS".into(),
                    ..LegalProfile::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["legal_name".into()],
                }),
            },
        )?)
        .await;
    let status = partnerhub_testkit::errors::refusal(update)?;
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(error_reason(&status), "ACCOUNT_NOT_ACTIVE");
    let add = LocationServiceClient::new(Suite::channel(suite.profile)?)
        .add_location(bearer(
            &token,
            AddLocationRequest {
                parent: account.clone(),
                location: Some(Location {
                    business_name: "Contoso Lyon".into(),
                    address: Some(Address {
                        line1: "2 Place Bellecour".into(),
                        city: "Lyon".into(),
                        postal_code: "69002".into(),
                        country: "FR".into(),
                        ..Address::default()
                    }),
                    contact: Some(Contact {
                        given_name: "Pierre".into(),
                        family_name: "Curie".into(),
                        email: company.email.clone(),
                        ..Contact::default()
                    }),
                    ..Location::default()
                }),
                request_id: String::new(),
            },
        )?)
        .await;
    let status = partnerhub_testkit::errors::refusal(add)?;
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(error_reason(&status), "ACCOUNT_NOT_ACTIVE");
    suite.stop().await
}
