//! The merge story across services: two companies enroll, one invites the
//! other by its global partner id, the other accepts, the first confirms,
//! and the saga moves the invitee's locations (profile) and users
//! (identity) into the initiator's account.

use std::time::Duration;

use partnerhub_proto::identity::v1::{
    IssueServiceTokenRequest, SignInRequest, auth_service_client::AuthServiceClient,
};
use partnerhub_proto::merge::v1::{
    AcceptMergeInvitationRequest, ConfirmMergeRequest, CreateMergeInvitationRequest,
    GetMergeInvitationRequest, MergeState, merge_service_client::MergeServiceClient,
};
use partnerhub_proto::notification::v1::{
    ListNotificationsRequest, notification_service_client::NotificationServiceClient,
};
use partnerhub_proto::profile::v1::{
    ApplyMergeRequest, ListLocationsRequest, ProgramKind,
    location_service_client::LocationServiceClient,
    profile_merge_service_client::ProfileMergeServiceClient,
};
use partnerhub_testkit::clients::{self, FOUNDER_PASSWORD};
use partnerhub_testkit::{Company, MERGE_CLIENT_ID, MERGE_CLIENT_SECRET, Suite, eventually};
use tonic::Code;

use crate::common::{mail_about, with_token};

async fn enrolled(suite: &Suite, name: &str) -> anyhow::Result<Company> {
    clients::enrolled(suite, name, ProgramKind::Partner).await
}

/// Waits until the saga completed the merge `name` (read as `token`).
async fn completed(suite: &Suite, token: &str, name: &str) -> anyhow::Result<()> {
    let channel = Suite::channel(suite.merge)?;
    eventually(Duration::from_secs(30), || {
        let (token, name, channel) = (token.to_owned(), name.to_owned(), channel.clone());
        async move {
            let m = MergeServiceClient::new(channel)
                .get_merge_invitation(with_token(&token, GetMergeInvitationRequest { name }).ok()?)
                .await
                .ok()?
                .into_inner();
            (m.state() == MergeState::Completed).then_some(())
        }
    })
    .await
}

#[tokio::test]
async fn a_confirmed_merge_moves_locations_and_users_into_the_initiator() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    suite.wait_serving().await?;
    let contoso = enrolled(&suite, "Contoso").await?;
    let fabrikam = enrolled(&suite, "Fabrikam").await?;
    let mut merge = MergeServiceClient::new(Suite::channel(suite.merge)?);

    let invitation = merge
        .create_merge_invitation(with_token(
            &contoso.token,
            CreateMergeInvitationRequest {
                parent: contoso.account.clone(),
                partner_id: fabrikam.global_id.clone(),
                request_id: String::new(),
            },
        )?)
        .await?
        .into_inner();
    // The invitee's Account admins hear of it.
    let received = mail_about(&suite, &fabrikam.email, "invites").await?;
    assert!(received.subject.contains("Contoso"), "{}", received.subject);
    merge
        .accept_merge_invitation(with_token(
            &fabrikam.token,
            AcceptMergeInvitationRequest {
                name: invitation.name.clone(),
            },
        )?)
        .await?;
    // The initiator's are asked to confirm.
    let accepted = mail_about(&suite, &contoso.email, "Merge accepted").await?;
    assert!(accepted.text.contains("confirm"), "{}", accepted.text);
    let unacknowledged = merge
        .confirm_merge(with_token(
            &contoso.token,
            ConfirmMergeRequest {
                name: invitation.name.clone(),
                acknowledge_irreversible: false,
            },
        )?)
        .await;
    assert_eq!(
        unacknowledged.err().map(|s| s.code()),
        Some(Code::InvalidArgument)
    );
    merge
        .confirm_merge(with_token(
            &contoso.token,
            ConfirmMergeRequest {
                name: invitation.name.clone(),
                acknowledge_irreversible: true,
            },
        )?)
        .await?;

    completed(&suite, &contoso.token, &invitation.name).await?;

    // Both sides are told, and the notification shows the merged state.
    for company in [&contoso, &fabrikam] {
        let done = mail_about(&suite, &company.email, "was merged into").await?;
        assert!(
            done.subject.contains("Fabrikam") && done.subject.contains("Contoso"),
            "{}",
            done.subject
        );
        assert!(done.text.contains("1 location"), "{}", done.text);
    }
    // Fabrikam's sessions ended with the merge (its old token is refused
    // everywhere): its founder signs in again, and lands in Contoso.
    let fabrikam_token = AuthServiceClient::new(Suite::channel(suite.identity)?)
        .sign_in(SignInRequest {
            email: fabrikam.email.clone(),
            password: FOUNDER_PASSWORD.into(),
            account: String::new(),
        })
        .await?
        .into_inner()
        .access_token
        .unwrap_or_default()
        .token;
    let panel = eventually(Duration::from_secs(20), || async {
        let list = NotificationServiceClient::new(Suite::channel(suite.notification).ok()?)
            .list_notifications(
                with_token(
                    &fabrikam_token,
                    ListNotificationsRequest {
                        parent: "users/me".into(),
                        ..Default::default()
                    },
                )
                .ok()?,
            )
            .await
            .ok()?
            .into_inner()
            .notifications;
        list.into_iter()
            .find(|n| n.title.contains("was merged into"))
    })
    .await?;
    assert!(panel.body.contains("moved"), "{}", panel.body);
    assert_eq!(panel.link, "/account/merges");

    // Profile: Fabrikam's headquarters is now a location of Contoso, same partner id.
    let locations = LocationServiceClient::new(Suite::channel(suite.profile)?)
        .list_locations(with_token(
            &contoso.token,
            ListLocationsRequest {
                parent: contoso.account.clone(),
                ..Default::default()
            },
        )?)
        .await?
        .into_inner()
        .locations;
    let moved = locations
        .iter()
        .find(|l| l.partner_id == fabrikam.headquarters_id);
    assert!(moved.is_some_and(|l| !l.headquarters), "{locations:?}");
    // Identity: Fabrikam's founder is a member of Contoso, and Fabrikam says where it went.
    let mut auth = AuthServiceClient::new(Suite::channel(suite.identity)?);
    let landed = auth
        .sign_in(SignInRequest {
            email: fabrikam.email.clone(),
            password: FOUNDER_PASSWORD.into(),
            account: String::new(),
        })
        .await?
        .into_inner();
    assert_eq!(landed.account.unwrap_or_default().name, contoso.account);
    let refused = auth
        .sign_in(SignInRequest {
            email: fabrikam.email.clone(),
            password: FOUNDER_PASSWORD.into(),
            account: fabrikam.account.clone(),
        })
        .await
        .err();
    assert_eq!(
        refused.as_ref().map(|s| s.code()),
        Some(Code::FailedPrecondition)
    );
    assert!(refused.is_some_and(|s| s.message().contains("merged")));
    suite.stop().await
}

#[tokio::test]
async fn a_merge_interrupted_between_its_steps_completes_exactly_once_after_a_restart()
-> anyhow::Result<()> {
    let mut suite = Suite::start().await?;
    suite.wait_serving().await?;
    let contoso = enrolled(&suite, "Contoso").await?;
    let fabrikam = enrolled(&suite, "Fabrikam").await?;
    let mut merge = MergeServiceClient::new(Suite::channel(suite.merge)?);
    let invitation = merge
        .create_merge_invitation(with_token(
            &contoso.token,
            CreateMergeInvitationRequest {
                parent: contoso.account.clone(),
                partner_id: fabrikam.global_id.clone(),
                request_id: String::new(),
            },
        )?)
        .await?
        .into_inner();
    merge
        .accept_merge_invitation(with_token(
            &fabrikam.token,
            AcceptMergeInvitationRequest {
                name: invitation.name.clone(),
            },
        )?)
        .await?;
    let id: uuid::Uuid = invitation
        .name
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .parse()?;

    // The merge service dies after its saga applied the profile step but
    // before it could record it.
    suite.stop_merge().await?;
    let merge_db = suite.pool("merge").await?;
    sqlx::query("UPDATE merge_invitations SET state = 'IN_PROGRESS', step = 'NONE', leased_until = now() - interval '1 second' WHERE id = $1")
        .bind(id)
        .execute(&merge_db)
        .await?;
    let service = AuthServiceClient::new(Suite::channel(suite.identity)?)
        .issue_service_token(IssueServiceTokenRequest {
            client_id: MERGE_CLIENT_ID.into(),
            client_secret: MERGE_CLIENT_SECRET.into(),
        })
        .await?
        .into_inner()
        .access_token
        .unwrap_or_default()
        .token;
    let first = ProfileMergeServiceClient::new(Suite::channel(suite.profile)?)
        .apply_merge(with_token(
            &service,
            ApplyMergeRequest {
                merge_id: id.to_string(),
                source_account: fabrikam.account.clone(),
                target_account: contoso.account.clone(),
            },
        )?)
        .await?
        .into_inner();
    assert!(!first.already_applied);

    // A new process resumes the saga and finishes it.
    suite.start_merge().await?;
    completed(&suite, &contoso.token, &invitation.name).await?;

    // Exactly once: one application in each service, the location once.
    for service in ["profile", "identity"] {
        let db = suite.pool(service).await?;
        let applied: i64 =
            sqlx::query_scalar("SELECT count(*) FROM applied_merges WHERE merge_id = $1")
                .bind(id.to_string())
                .fetch_one(&db)
                .await?;
        assert_eq!(applied, 1, "{service} applied the merge {applied} times");
    }
    let locations = LocationServiceClient::new(Suite::channel(suite.profile)?)
        .list_locations(with_token(
            &contoso.token,
            ListLocationsRequest {
                parent: contoso.account.clone(),
                ..Default::default()
            },
        )?)
        .await?
        .into_inner()
        .locations;
    assert_eq!(
        locations
            .iter()
            .filter(|l| l.partner_id == fabrikam.headquarters_id)
            .count(),
        1
    );
    let step: String = sqlx::query_scalar("SELECT step FROM merge_invitations WHERE id = $1")
        .bind(id)
        .fetch_one(&merge_db)
        .await?;
    assert_eq!(step, "IDENTITY_DONE");
    suite.stop().await
}
