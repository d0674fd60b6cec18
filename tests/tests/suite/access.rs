//! Access control across the suite: every RPC declares a rule, every
//! non-public RPC refuses a call without a token, bad input is
//! INVALID_ARGUMENT and never INTERNAL, and a token for one account never
//! reaches another account's data.

use std::net::SocketAddr;

use partnerhub_platform::auth::{AccessRules, Rule};
use partnerhub_proto::identity::v1::{
    GetAccountRequest, account_service_client::AccountServiceClient,
};
use partnerhub_proto::merge::v1::{
    ListMergeInvitationsRequest, merge_service_client::MergeServiceClient,
};
use partnerhub_proto::notification::v1::{
    GetUnreadCountRequest, notification_service_client::NotificationServiceClient,
};
use partnerhub_proto::profile::v1::{
    GetLegalProfileRequest, legal_profile_service_client::LegalProfileServiceClient,
};
use partnerhub_proto::verification::v1::{
    GetVerificationStatusRequest, Status as VerificationState,
    verification_service_client::VerificationServiceClient,
};
use std::time::Duration;

use partnerhub_testkit::{Suite, SuiteOptions};
use tonic::Code;
use tonic::codegen::http::uri::PathAndQuery;

use crate::common::{sign_up, with_token};

/// Calls `path` on `addr` with an empty request message.
async fn call_empty(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
) -> anyhow::Result<Result<(), tonic::Status>> {
    let mut grpc = tonic::client::Grpc::new(Suite::channel(addr)?);
    grpc.ready().await?;
    let request = match token {
        Some(t) => with_token(t, ())?,
        None => tonic::Request::new(()),
    };
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    Ok(grpc
        .unary(request, PathAndQuery::try_from(path)?, codec)
        .await
        .map(drop))
}

fn service_of(suite: &Suite, path: &str) -> Option<SocketAddr> {
    let package = path.strip_prefix("/partnerhub.")?.split('.').next()?;
    suite
        .addresses()
        .into_iter()
        .find(|(name, _)| *name == package)
        .map(|(_, addr)| addr)
}

#[tokio::test]
async fn every_rpc_refuses_anonymous_calls_or_validates_public_input() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    suite.wait_serving().await?;
    let founder = sign_up(&suite).await?;
    let rules = AccessRules::builtin();
    let mut checked = 0;
    for (path, rule) in rules
        .methods()
        .filter(|(p, _)| p.starts_with("/partnerhub."))
    {
        let rule = rule.ok_or_else(|| anyhow::anyhow!("{path} has no access rule"))?;
        let addr =
            service_of(&suite, path).ok_or_else(|| anyhow::anyhow!("no service for {path}"))?;
        let anonymous = call_empty(addr, path, None).await?;
        match rule {
            Rule::Public => {
                if let Err(status) = &anonymous {
                    assert_eq!(status.code(), Code::InvalidArgument, "{path}: {status:?}");
                }
            }
            Rule::Authenticated | Rule::Permission(_) => {
                let code = anonymous.err().map(|s| s.code());
                assert_eq!(code, Some(Code::Unauthenticated), "{path} without a token");
                let forged = call_empty(addr, path, Some("not.a.jwt")).await?;
                assert_eq!(
                    forged.err().map(|s| s.code()),
                    Some(Code::Unauthenticated),
                    "{path} with a forged token"
                );
                // With a user's token: platform RPCs are refused, others
                // answer an empty request or call it bad input, never more.
                let empty = call_empty(addr, path, Some(&founder.token)).await?;
                let code = empty.err().map(|s| s.code());
                let platform = matches!(rule, Rule::Permission(p) if p.starts_with("platform."));
                if platform {
                    assert_eq!(
                        code,
                        Some(Code::PermissionDenied),
                        "{path} with a user's token"
                    );
                } else {
                    assert!(
                        matches!(code, None | Some(Code::InvalidArgument)),
                        "{path} with an empty request: {code:?}"
                    );
                }
            }
        }
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} RPCs checked");
    suite.stop().await
}

#[tokio::test]
async fn a_token_for_one_account_never_reaches_another() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    suite.wait_serving().await?;
    let a = sign_up(&suite).await?;
    let b = sign_up(&suite).await?;
    let token = a.token.as_str();

    let mut identity = AccountServiceClient::new(Suite::channel(suite.identity)?);
    let own = identity
        .get_account(with_token(
            token,
            GetAccountRequest {
                name: format!("accounts/{}", a.account_id()),
            },
        )?)
        .await?;
    assert_eq!(own.into_inner().display_name, "Contoso");
    let other = identity
        .get_account(with_token(
            token,
            GetAccountRequest {
                name: format!("accounts/{}", b.account_id()),
            },
        )?)
        .await;
    assert_eq!(other.err().map(|s| s.code()), Some(Code::NotFound));

    let mut profile = LegalProfileServiceClient::new(Suite::channel(suite.profile)?);
    let own = profile
        .get_legal_profile(with_token(
            token,
            GetLegalProfileRequest {
                name: format!("accounts/{}/legalProfile", a.account_id()),
            },
        )?)
        .await;
    // Not enrolled yet: its own profile is missing, with a reason that says so.
    let own = own.err();
    assert_eq!(own.as_ref().map(|s| s.code()), Some(Code::NotFound));
    assert!(own.is_some_and(|s| s.message().contains("not enrolled")));
    let other = profile
        .get_legal_profile(with_token(
            token,
            GetLegalProfileRequest {
                name: format!("accounts/{}/legalProfile", b.account_id()),
            },
        )?)
        .await;
    let other = other.err();
    assert_eq!(other.as_ref().map(|s| s.code()), Some(Code::NotFound));
    assert!(
        other.is_some_and(|s| !s.message().contains("enrolled")),
        "must not reveal B's state"
    );

    let mut verification = VerificationServiceClient::new(Suite::channel(suite.verification)?);
    let own = verification
        .get_verification_status(with_token(
            token,
            GetVerificationStatusRequest {
                name: format!("accounts/{}/verificationStatus", a.account_id()),
            },
        )?)
        .await?;
    assert_eq!(own.into_inner().status(), VerificationState::None);
    let other = verification
        .get_verification_status(with_token(
            token,
            GetVerificationStatusRequest {
                name: format!("accounts/{}/verificationStatus", b.account_id()),
            },
        )?)
        .await;
    assert_eq!(other.err().map(|s| s.code()), Some(Code::NotFound));

    let mut merge = MergeServiceClient::new(Suite::channel(suite.merge)?);
    let own = merge
        .list_merge_invitations(with_token(
            token,
            ListMergeInvitationsRequest {
                parent: format!("accounts/{}", a.account_id()),
                ..Default::default()
            },
        )?)
        .await?;
    assert!(own.into_inner().merge_invitations.is_empty());
    let other = merge
        .list_merge_invitations(with_token(
            token,
            ListMergeInvitationsRequest {
                parent: format!("accounts/{}", b.account_id()),
                ..Default::default()
            },
        )?)
        .await;
    assert_eq!(other.err().map(|s| s.code()), Some(Code::NotFound));

    let mut notification = NotificationServiceClient::new(Suite::channel(suite.notification)?);
    let own = notification
        .get_unread_count(with_token(
            token,
            GetUnreadCountRequest {
                parent: "users/me".into(),
            },
        )?)
        .await?;
    assert_eq!(own.into_inner().unread_count, 0);
    let other = notification
        .get_unread_count(with_token(
            token,
            GetUnreadCountRequest {
                parent: format!("users/{}", b.user_id()),
            },
        )?)
        .await;
    assert_eq!(other.err().map(|s| s.code()), Some(Code::NotFound));

    suite.stop().await
}

#[tokio::test]
async fn tokens_signed_by_a_rotated_key_are_accepted_after_a_jwks_refresh() -> anyhow::Result<()> {
    let suite = Suite::start_with(SuiteOptions {
        identity_key_rotation: Some(Duration::from_secs(2)),
        ..SuiteOptions::default()
    })
    .await?;
    suite.wait_serving().await?;
    let first = sign_up(&suite).await?;
    let mut verification = VerificationServiceClient::new(Suite::channel(suite.verification)?);
    let name = |id: &str| format!("accounts/{id}/verificationStatus");
    verification
        .get_verification_status(with_token(
            &first.token,
            GetVerificationStatusRequest {
                name: name(first.account_id()),
            },
        )?)
        .await?;
    // Once the key retires, identity signs with a new `kid` that
    // verification has never seen.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let second = sign_up(&suite).await?;
    let kid = |t: &str| t.split('.').next().map(str::to_owned);
    assert_ne!(
        kid(&first.token),
        kid(&second.token),
        "a new key signed the second token"
    );
    verification
        .get_verification_status(with_token(
            &second.token,
            GetVerificationStatusRequest {
                name: name(second.account_id()),
            },
        )?)
        .await?;
    // The retired key still verifies the tokens it signed.
    verification
        .get_verification_status(with_token(
            &first.token,
            GetVerificationStatusRequest {
                name: name(first.account_id()),
            },
        )?)
        .await?;
    suite.stop().await
}
