//! Rate limits on the public RPCs: per client address (the peer, or the last
//! untrusted hop of `x-forwarded-for` behind a trusted proxy) and per email
//! address a request names; refusals are RESOURCE_EXHAUSTED with `RetryInfo`
//! and reason `RATE_LIMITED`, and the allowance comes back after the delay.

use std::num::NonZeroU32;
use std::time::Duration;

use partnerhub_platform::rate_limit::{Allowance, RateLimitSettings};
use partnerhub_proto::identity::v1::{
    AcceptInvitationRequest, CompletePasswordResetRequest, GetJwksRequest,
    IssueServiceTokenRequest, RefreshTokenRequest, RequestPasswordResetRequest, SignInRequest,
    SignUpRequest, auth_service_client::AuthServiceClient,
    member_service_client::MemberServiceClient,
};
use partnerhub_proto::verification::v1::{
    ConfirmEmailOwnershipRequest, verification_service_client::VerificationServiceClient,
};
use partnerhub_testkit::errors::{error_reason, retry_delay};
use partnerhub_testkit::{Suite, SuiteOptions, unique};
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// `burst` calls, then one more every `every`.
fn allowance(burst: u32, every: Duration) -> Allowance {
    Allowance {
        burst: NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN),
        every,
    }
}

/// A suite whose public methods allow `per_address` and `per_email`, with
/// 127.0.0.1 trusted as a proxy when `trust_local` is set.
async fn suite_with(
    per_address: Allowance,
    per_email: Allowance,
    trust_local: bool,
) -> anyhow::Result<Suite> {
    let trusted_proxies = if trust_local {
        vec!["127.0.0.1/32".parse()?]
    } else {
        Vec::new()
    };
    let suite = Suite::start_with(SuiteOptions {
        rate_limits: Some(RateLimitSettings {
            per_address,
            per_email,
            trusted_proxies,
            ..RateLimitSettings::default()
        }),
        ..SuiteOptions::default()
    })
    .await?;
    suite.wait_serving().await?;
    Ok(suite)
}

/// `message` as sent through a proxy on behalf of `client`.
fn forwarded<T>(client: &str, message: T) -> anyhow::Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("x-forwarded-for", MetadataValue::try_from(client)?);
    Ok(request)
}

/// Which limit refused a call (`address` or `email`), or `None` when it was
/// not refused by a rate limit.
fn limit_of<T>(result: &Result<T, Status>) -> Option<String> {
    let status = result.as_ref().err()?;
    (status.code() == Code::ResourceExhausted && error_reason(status) == "RATE_LIMITED").then(
        || {
            status
                .get_details_error_info()
                .and_then(|i| i.metadata.get("limit").cloned())
                .unwrap_or_default()
        },
    )
}

fn sign_up_request(email: &str) -> SignUpRequest {
    SignUpRequest {
        email: email.to_owned(),
        given_name: "Ada".into(),
        family_name: "Lovelace".into(),
        password: "analytical engine 1843".into(),
        account_display_name: "Contoso".into(),
        locale: String::new(),
    }
}

fn email() -> String {
    format!("founder.{}@contoso.com", unique())
}

/// One call of each public method (invalid input where a valid one needs a
/// mailed token: the limit comes before validation), by name.
async fn call_public(suite: &Suite, method: &str) -> anyhow::Result<Result<(), Status>> {
    let mut auth = AuthServiceClient::new(Suite::channel(suite.identity)?);
    let mut members = MemberServiceClient::new(Suite::channel(suite.identity)?);
    let mut verification = VerificationServiceClient::new(Suite::channel(suite.verification)?);
    let token = "not-a-real-token".to_owned();
    Ok(match method {
        "SignUp" => auth.sign_up(sign_up_request(&email())).await.map(drop),
        "SignIn" => auth
            .sign_in(SignInRequest {
                email: email(),
                password: "wrong password here".into(),
                account: String::new(),
            })
            .await
            .map(drop),
        "RefreshToken" => auth
            .refresh_token(RefreshTokenRequest {
                refresh_token: token,
            })
            .await
            .map(drop),
        "RequestPasswordReset" => auth
            .request_password_reset(RequestPasswordResetRequest { email: email() })
            .await
            .map(drop),
        "CompletePasswordReset" => auth
            .complete_password_reset(CompletePasswordResetRequest {
                token,
                new_password: "a brand new passphrase".into(),
            })
            .await
            .map(drop),
        "IssueServiceToken" => auth
            .issue_service_token(IssueServiceTokenRequest {
                client_id: format!("svc-{}", unique()),
                client_secret: "not the secret".into(),
            })
            .await
            .map(drop),
        "AcceptInvitation" => members
            .accept_invitation(AcceptInvitationRequest {
                token,
                given_name: "Ada".into(),
                family_name: "Lovelace".into(),
                password: "analytical engine 1843".into(),
            })
            .await
            .map(drop),
        "ConfirmEmailOwnership" => verification
            .confirm_email_ownership(ConfirmEmailOwnershipRequest {
                token,
                account: String::new(),
            })
            .await
            .map(drop),
        other => anyhow::bail!("no public method {other}"),
    })
}

/// Every public method of every service, except GetJwks (see below).
const PUBLIC: &[&str] = &[
    "SignUp",
    "SignIn",
    "RefreshToken",
    "RequestPasswordReset",
    "CompletePasswordReset",
    "IssueServiceToken",
    "AcceptInvitation",
    "ConfirmEmailOwnership",
];

#[tokio::test]
async fn one_address_is_limited_on_every_public_method_and_recovers_after_the_delay()
-> anyhow::Result<()> {
    let per_address = allowance(3, Duration::from_secs(3));
    let suite = suite_with(
        per_address,
        allowance(1000, Duration::from_millis(60)),
        false,
    )
    .await?;

    // Several emails from one address: the fourth sign-up is refused with a
    // delay, and accepted once the delay has passed.
    let mut auth = AuthServiceClient::new(Suite::channel(suite.identity)?);
    for _ in 0..3 {
        auth.sign_up(sign_up_request(&email())).await?;
    }
    let refused = auth.sign_up(sign_up_request(&email())).await;
    assert_eq!(
        limit_of(&refused).as_deref(),
        Some("address"),
        "{refused:?}"
    );
    let status = refused.err().unwrap_or_else(|| Status::ok(""));
    let delay = retry_delay(&status);
    assert!(
        delay.is_some_and(|d| d > Duration::ZERO && d <= per_address.every),
        "{delay:?}"
    );
    tokio::time::sleep(delay.unwrap_or(per_address.every)).await;
    auth.sign_up(sign_up_request(&email())).await?;

    // Every other public method: three calls get their own answer, the
    // fourth is refused by the limit.
    let mut covered = 0;
    for method in PUBLIC.iter().filter(|m| **m != "SignUp") {
        for call in 0..3 {
            let result = call_public(&suite, method).await?;
            assert_eq!(limit_of(&result), None, "{method} call {call}: {result:?}");
        }
        let result = call_public(&suite, method).await?;
        assert_eq!(
            limit_of(&result).as_deref(),
            Some("address"),
            "{method}: {result:?}"
        );
        assert!(result.err().as_ref().and_then(retry_delay).is_some());
        covered += 1;
    }
    assert_eq!(covered, PUBLIC.len() - 1);

    // The key set is not limited: every service fetches it.
    for _ in 0..10 {
        auth.get_jwks(GetJwksRequest {}).await?;
    }
    suite.stop().await
}

#[tokio::test]
async fn one_email_is_limited_across_addresses_behind_a_trusted_proxy() -> anyhow::Result<()> {
    let minute = Duration::from_secs(60);
    let suite = suite_with(allowance(2, minute), allowance(2, minute), true).await?;
    let mut auth = AuthServiceClient::new(Suite::channel(suite.identity)?);

    // One email through several client addresses: each address is within
    // its allowance, the email is not after two calls.
    let target = email();
    let first = auth
        .sign_up(forwarded("198.51.100.1", sign_up_request(&target))?)
        .await;
    assert!(first.is_ok(), "{first:?}");
    let second = auth
        .sign_up(forwarded("198.51.100.2", sign_up_request(&target))?)
        .await;
    assert_eq!(
        second.as_ref().err().map(Status::code),
        Some(Code::AlreadyExists)
    );
    let third = auth
        .sign_up(forwarded("198.51.100.3", sign_up_request(&target))?)
        .await;
    assert_eq!(limit_of(&third).as_deref(), Some("email"), "{third:?}");
    assert!(third.err().as_ref().and_then(retry_delay).is_some());

    // The same for every method that names an email (or a client id).
    let sign_in = |email: &str| SignInRequest {
        email: email.to_owned(),
        password: "wrong password here".into(),
        account: String::new(),
    };
    let reset = |email: &str| RequestPasswordResetRequest {
        email: email.to_owned(),
    };
    let service = |client_id: &str| IssueServiceTokenRequest {
        client_id: client_id.to_owned(),
        client_secret: "not the secret".into(),
    };
    for method in ["SignIn", "RequestPasswordReset", "IssueServiceToken"] {
        let target = email();
        let mut limits = Vec::new();
        for (i, client) in ["198.51.100.11", "198.51.100.12", "198.51.100.13"]
            .iter()
            .enumerate()
        {
            // Upper case on the way: the same address for the limit.
            let target = if i == 1 {
                target.to_uppercase()
            } else {
                target.clone()
            };
            let result = match method {
                "SignIn" => auth
                    .sign_in(forwarded(client, sign_in(&target))?)
                    .await
                    .map(drop),
                "RequestPasswordReset" => auth
                    .request_password_reset(forwarded(client, reset(&target))?)
                    .await
                    .map(drop),
                _ => auth
                    .issue_service_token(forwarded(client, service(&target))?)
                    .await
                    .map(drop),
            };
            limits.push(limit_of(&result));
        }
        assert_eq!(limits, [None, None, Some("email".to_owned())], "{method}");
    }

    // The forwarded address is the one limited: a third email from one
    // client address is refused, the proxy itself is not blamed.
    let client = "203.0.113.77";
    for _ in 0..2 {
        let r = auth.sign_in(forwarded(client, sign_in(&email()))?).await;
        assert_eq!(limit_of(&r), None, "{r:?}");
    }
    let r = auth.sign_in(forwarded(client, sign_in(&email()))?).await;
    assert_eq!(limit_of(&r).as_deref(), Some("address"), "{r:?}");
    // A hop the client wrote before a trusted one counts for nothing: the
    // same client behind a forged left-most hop is still refused.
    let r = auth
        .sign_in(forwarded(
            &format!("10.9.9.9, {client}"),
            sign_in(&email()),
        )?)
        .await;
    assert_eq!(limit_of(&r).as_deref(), Some("address"), "{r:?}");
    // Another client address still gets in.
    let r = auth
        .sign_in(forwarded("203.0.113.78", sign_in(&email()))?)
        .await;
    assert_eq!(limit_of(&r), None, "{r:?}");
    suite.stop().await
}
