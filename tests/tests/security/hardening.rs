//! Attacks: hardening (see docs/security.md, "Brute force, cost and rate
//! keys"): guessing passwords through ChangePassword, junk reset tokens and
//! bulk creation spending argon2 work, sign-ins missing from the audit log,
//! walking the partner-id space through LookupPartner.

use std::time::Duration;

use partnerhub_identity::password;
use partnerhub_platform::rate_limit::RateLimitSettings;
use partnerhub_proto::identity::v1::{
    BulkCreateUsersRequest, ChangePasswordRequest, CompletePasswordResetRequest, CreateUserRequest,
    ListActivityRequest, RequestPasswordResetRequest, RoleAssignment, SignInRequest,
    activity_service_client::ActivityServiceClient, auth_service_client::AuthServiceClient,
    member_service_client::MemberServiceClient,
};
use partnerhub_proto::profile::v1::{
    LookupPartnerRequest, ProgramKind, identifier_service_client::IdentifierServiceClient,
};
use partnerhub_testkit::clients::{FOUNDER_PASSWORD, enrolled, sign_up};
use partnerhub_testkit::errors::{error_reason, refusal, retry_delay, violated_fields};
use partnerhub_testkit::{Company, Suite, SuiteOptions, bearer, unique};
use tonic::Code;

/// A running suite with the default options.
async fn suite() -> anyhow::Result<Suite> {
    let suite = Suite::start().await?;
    suite.wait_serving().await?;
    Ok(suite)
}

/// A suite with `options`, serving.
async fn suite_with(options: SuiteOptions) -> anyhow::Result<Suite> {
    let suite = Suite::start_with(options).await?;
    suite.wait_serving().await?;
    Ok(suite)
}

/// ChangePassword with `current` as the current password.
async fn change_password(
    suite: &Suite,
    token: &str,
    current: &str,
    new: &str,
) -> Result<tonic::Response<partnerhub_proto::identity::v1::Session>, tonic::Status> {
    let request = bearer(
        token,
        ChangePasswordRequest {
            current_password: current.into(),
            new_password: new.into(),
        },
    )
    .map_err(|e| tonic::Status::internal(e.to_string()))?;
    AuthServiceClient::new(
        Suite::channel(suite.identity).map_err(|e| tonic::Status::internal(e.to_string()))?,
    )
    .change_password(request)
    .await
}

/// SignIn by email and password.
async fn sign_in(
    suite: &Suite,
    email: &str,
    password: &str,
) -> Result<tonic::Response<partnerhub_proto::identity::v1::Session>, tonic::Status> {
    AuthServiceClient::new(
        Suite::channel(suite.identity).map_err(|e| tonic::Status::internal(e.to_string()))?,
    )
    .sign_in(SignInRequest {
        email: email.into(),
        password: password.into(),
        account: String::new(),
    })
    .await
}

/// A member of `company` with `role`, signed in with a password of their
/// own (the temporary one changed): their access token.
async fn member_token(suite: &Suite, company: &Company, role: &str) -> anyhow::Result<String> {
    let email = format!(
        "member.{}@{}",
        unique(),
        company.email.rsplit('@').next().unwrap_or("example.com")
    );
    let created = MemberServiceClient::new(Suite::channel(suite.identity)?)
        .create_user(bearer(
            &company.token,
            CreateUserRequest {
                parent: company.account.clone(),
                email: email.clone(),
                given_name: "Alan".into(),
                family_name: "Turing".into(),
                roles: vec![RoleAssignment {
                    role: role.into(),
                    locations: Vec::new(),
                }],
                request_id: String::new(),
            },
        )?)
        .await?
        .into_inner();
    let first = sign_in(suite, &email, &created.temporary_password)
        .await?
        .into_inner();
    let temporary = first.access_token.unwrap_or_default().token;
    let own = "a password of my own 2024";
    let session = change_password(suite, &temporary, &created.temporary_password, own)
        .await?
        .into_inner();
    Ok(session.access_token.unwrap_or_default().token)
}

/// LookupPartner of `partner_id` as the holder of `token`.
async fn lookup(
    suite: &Suite,
    token: &str,
    partner_id: &str,
) -> Result<tonic::Response<partnerhub_proto::profile::v1::LookupPartnerResponse>, tonic::Status> {
    let request = bearer(
        token,
        LookupPartnerRequest {
            partner_id: partner_id.into(),
        },
    )
    .map_err(|e| tonic::Status::internal(e.to_string()))?;
    IdentifierServiceClient::new(
        Suite::channel(suite.profile).map_err(|e| tonic::Status::internal(e.to_string()))?,
    )
    .lookup_partner(request)
    .await
}

/// The actions of `account`'s activity about `target`, oldest first.
async fn actions_about(
    suite: &Suite,
    token: &str,
    account: &str,
    target: &str,
) -> anyhow::Result<Vec<(String, String, String)>> {
    let mut entries = ActivityServiceClient::new(Suite::channel(suite.identity)?)
        .list_activity(bearer(
            token,
            ListActivityRequest {
                parent: account.into(),
                page_size: 100,
                ..ListActivityRequest::default()
            },
        )?)
        .await?
        .into_inner()
        .activities
        .into_iter()
        .filter(|a| a.target == target)
        .map(|a| (a.action, a.actor, a.new_value))
        .collect::<Vec<_>>();
    entries.reverse();
    Ok(entries)
}

/// Someone holding a user's access token (a stolen or shared session)
/// guesses the current password through ChangePassword: every wrong guess
/// counts toward the user's sign-in lock-out, and once locked, ChangePassword
/// is refused like a sign-in, even with the right password.
#[tokio::test]
async fn change_password_guesses_count_toward_the_sign_in_lockout() -> anyhow::Result<()> {
    let suite = suite().await?;
    let victim = sign_up(&suite, "Guessed").await?;
    for guess in 0..5 {
        let wrong = refusal(
            change_password(
                &suite,
                &victim.token,
                &format!("guess number {guess} 2024"),
                "the attacker's password 1",
            )
            .await,
        )?;
        assert_eq!(wrong.code(), Code::InvalidArgument, "{wrong:?}");
        assert_eq!(violated_fields(&wrong), vec!["current_password"]);
    }
    // The sixth try is refused before any verification, the right password
    // included.
    let locked = refusal(
        change_password(
            &suite,
            &victim.token,
            FOUNDER_PASSWORD,
            "the attacker's password 1",
        )
        .await,
    )?;
    assert_eq!(locked.code(), Code::ResourceExhausted, "{locked:?}");
    assert_eq!(error_reason(&locked), "SIGN_IN_LOCKED");
    assert!(retry_delay(&locked).is_some_and(|d| d > Duration::ZERO));
    // The guesses locked the sign-in too: they share one counter.
    let sign_in = refusal(sign_in(&suite, &victim.email, FOUNDER_PASSWORD).await)?;
    assert_eq!(sign_in.code(), Code::ResourceExhausted, "{sign_in:?}");
    assert_eq!(error_reason(&sign_in), "SIGN_IN_LOCKED");
    suite.stop().await
}

/// Sign-in successes, failures and the lock-out they lead to are in the
/// user's account activity, readable through ListActivity: an admin sees a
/// guessing attack on one of their users.
#[tokio::test]
async fn sign_ins_failures_and_lockouts_are_recorded_as_activity() -> anyhow::Result<()> {
    let suite = suite().await?;
    let company = sign_up(&suite, "Audited").await?;
    sign_in(&suite, &company.email, FOUNDER_PASSWORD).await?;
    for guess in 0..5 {
        let wrong = refusal(sign_in(&suite, &company.email, &format!("guess {guess} 2024")).await)?;
        assert_eq!(wrong.code(), Code::Unauthenticated, "{wrong:?}");
    }
    let entries = actions_about(&suite, &company.token, &company.account, &company.user).await?;
    let actions: Vec<&str> = entries.iter().map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        vec![
            "sign_in.succeeded",
            "sign_in.failed",
            "sign_in.failed",
            "sign_in.failed",
            "sign_in.failed",
            "sign_in.failed",
            "sign_in.locked_out",
        ],
        "{entries:?}"
    );
    // The success names the account it landed in; failures the client.
    assert!(entries[0].2.contains(&company.account), "{entries:?}");
    assert!(entries[1].2.contains("127.0.0.1"), "{entries:?}");
    suite.stop().await
}

/// A signed-in user without the merge-invitation permission (here a
/// Helpdesk agent) looks another company up by its partner id: refused.
/// The founder, who may invite to merge, still can.
#[tokio::test]
async fn lookup_partner_needs_the_merge_invitation_permission() -> anyhow::Result<()> {
    let suite = suite().await?;
    let target = enrolled(&suite, "Looked", ProgramKind::Partner).await?;
    let company = sign_up(&suite, "Curious").await?;
    let helpdesk = member_token(&suite, &company, "helpdesk_agent").await?;
    let refused = refusal(lookup(&suite, &helpdesk, &target.global_id).await)?;
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let found = lookup(&suite, &company.token, &target.global_id)
        .await?
        .into_inner();
    assert_eq!(found.account, target.account);
    suite.stop().await
}

/// A self-registered admin walks the 7-digit partner-id space through
/// LookupPartner: with the default limits, a burst is refused with
/// RESOURCE_EXHAUSTED and RetryInfo, and a second user of the same account
/// shares the account's allowance (creating users does not multiply it).
#[tokio::test]
async fn walking_partner_ids_is_rate_limited_per_caller_and_account() -> anyhow::Result<()> {
    let suite = suite_with(SuiteOptions {
        rate_limits: Some(RateLimitSettings::default()),
        ..SuiteOptions::default()
    })
    .await?;
    let walker = sign_up(&suite, "Walker").await?;
    let mut answered = 0;
    let mut refused = None;
    for n in 0..40 {
        match lookup(&suite, &walker.token, &format!("{:07}", 1_000_000 + n)).await {
            Ok(_) => answered += 1,
            Err(status) if status.code() == Code::NotFound => answered += 1,
            Err(status) => {
                refused = Some(status);
                break;
            }
        }
    }
    let refused = refused.ok_or_else(|| anyhow::anyhow!("{answered} lookups, none refused"))?;
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(error_reason(&refused), "RATE_LIMITED");
    assert!(retry_delay(&refused).is_some_and(|d| d > Duration::ZERO));
    assert!(answered <= 10, "{answered} lookups before the refusal");
    // Another user of the same account has no allowance of their own.
    let accomplice = member_token(&suite, &walker, "account_admin").await?;
    let shared = refusal(lookup(&suite, &accomplice, "1000099").await)?;
    assert_eq!(shared.code(), Code::ResourceExhausted, "{shared:?}");
    suite.stop().await
}

/// The token of the password-reset mail to `email`.
async fn reset_token(suite: &Suite, email: &str) -> anyhow::Result<String> {
    AuthServiceClient::new(Suite::channel(suite.identity)?)
        .request_password_reset(RequestPasswordResetRequest {
            email: email.into(),
        })
        .await?;
    let mail = suite
        .smtp
        .next_matching(
            email,
            |mail| mail.text.contains("/password/reset?token="),
            Duration::from_secs(30),
        )
        .await?;
    let token = mail
        .text
        .split("/password/reset?token=")
        .nth(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect::<String>()
        })
        .ok_or_else(|| anyhow::anyhow!("no token in the reset mail: {}", mail.text))?;
    Ok(token)
}

/// CompletePasswordReset as anyone.
async fn complete_reset(
    suite: &Suite,
    token: &str,
    new_password: &str,
) -> Result<
    tonic::Response<partnerhub_proto::identity::v1::CompletePasswordResetResponse>,
    tonic::Status,
> {
    AuthServiceClient::new(
        Suite::channel(suite.identity).map_err(|e| tonic::Status::internal(e.to_string()))?,
    )
    .complete_password_reset(CompletePasswordResetRequest {
        token: token.into(),
        new_password: new_password.into(),
    })
    .await
}

/// An anonymous client sends junk reset tokens with valid new passwords:
/// each is refused after one indexed lookup and costs no argon2 hash (the
/// identity process counts its hashes). A live token still gets its hash.
#[tokio::test]
async fn junk_reset_tokens_cost_no_argon2_hash() -> anyhow::Result<()> {
    let suite = suite().await?;
    let company = sign_up(&suite, "Reset").await?;
    let before = password::stats();
    for n in 0..5 {
        let junk = format!("junk-token-{n}-{}", unique());
        let refused = refusal(complete_reset(&suite, &junk, "a brand new password 2024").await)?;
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert_eq!(violated_fields(&refused), vec!["token"]);
    }
    assert_eq!(
        password::stats().hashes,
        before.hashes,
        "a junk token was hashed for"
    );
    let token = reset_token(&suite, &company.email).await?;
    complete_reset(&suite, &token, "a brand new password 2024").await?;
    assert_eq!(password::stats().hashes, before.hashes + 1);
    sign_in(&suite, &company.email, "a brand new password 2024").await?;
    suite.stop().await
}

/// CSV of `rows` new users of `domain`.
fn csv(rows: usize, domain: &str) -> String {
    let mut text = String::from("email,given_name,family_name,roles\n");
    for n in 0..rows {
        text.push_str(&format!(
            "bulk.{n}.{}@{domain},Bulk,User{n},helpdesk_agent\n",
            unique()
        ));
    }
    text
}

/// BulkCreateUsers as `company`'s founder.
async fn bulk_create(
    suite: &Suite,
    company: &Company,
    rows: usize,
) -> Result<tonic::Response<partnerhub_proto::identity::v1::BulkCreateUsersResponse>, tonic::Status>
{
    let request = bearer(
        &company.token,
        BulkCreateUsersRequest {
            parent: company.account.clone(),
            csv: csv(
                rows,
                company.email.rsplit('@').next().unwrap_or("example.com"),
            ),
            request_id: String::new(),
        },
    )
    .map_err(|e| tonic::Status::internal(e.to_string()))?;
    MemberServiceClient::new(
        Suite::channel(suite.identity).map_err(|e| tonic::Status::internal(e.to_string()))?,
    )
    .bulk_create_users(request)
    .await
}

/// A self-registered admin calls BulkCreateUsers over and over to keep
/// identity's cores busy with argon2: the hashes of one import run one at a
/// time (the bulk lane leaves the other cores to sign-ins), and beyond the
/// account's hourly budget of created users the call is refused with
/// RESOURCE_EXHAUSTED and RetryInfo before any hash. Another account keeps
/// its own budget, and a bystander signs in meanwhile.
#[tokio::test]
async fn bulk_creation_is_bounded_per_account_and_hashes_one_at_a_time() -> anyhow::Result<()> {
    let suite = suite_with(SuiteOptions {
        identity_created_users_per_hour: Some(20),
        ..SuiteOptions::default()
    })
    .await?;
    let attacker = sign_up(&suite, "Bulky").await?;
    let bystander = sign_up(&suite, "Bystander").await?;
    let before = password::stats();
    let created = bulk_create(&suite, &attacker, 12).await?.into_inner();
    assert_eq!(created.users.len(), 12);
    let after = password::stats();
    assert_eq!(after.bulk_hashes - before.bulk_hashes, 12);
    assert_eq!(after.most_bulk_running, 1, "bulk hashes ran side by side");
    // Eight are left of twenty: twelve more are refused whole, unhashed.
    let refused = refusal(bulk_create(&suite, &attacker, 12).await)?;
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(error_reason(&refused), "USER_CREATION_BUDGET");
    assert!(retry_delay(&refused).is_some_and(|d| d > Duration::ZERO));
    assert_eq!(password::stats().bulk_hashes, after.bulk_hashes);
    // More rows than the whole budget can never pass: a field error.
    let too_many = refusal(bulk_create(&suite, &attacker, 21).await)?;
    assert_eq!(too_many.code(), Code::InvalidArgument, "{too_many:?}");
    assert_eq!(violated_fields(&too_many), vec!["csv"]);
    // The bystander's account has its own budget, and signs in.
    assert_eq!(
        bulk_create(&suite, &bystander, 12)
            .await?
            .into_inner()
            .users
            .len(),
        12
    );
    sign_in(&suite, &bystander.email, FOUNDER_PASSWORD).await?;
    suite.stop().await
}
