//! Mail triggered by identity, received by a real SMTP server: welcome
//! (in the user's language), password reset with a working token link, the
//! security notice after a password change, and invitations.

mod common;

use common::{MAIL_WAIT, link_token};
use partnerhub_proto::identity::v1::auth_service_client::AuthServiceClient;
use partnerhub_proto::identity::v1::member_service_client::MemberServiceClient;
use partnerhub_proto::identity::v1::{
    AcceptInvitationRequest, CompletePasswordResetRequest, CreateUserRequest, Invitation,
    InviteUsersRequest, RequestPasswordResetRequest, RoleAssignment, SignInRequest,
};
use partnerhub_testkit::clients::{sign_up, sign_up_in};
use partnerhub_testkit::{Suite, bearer};

#[tokio::test]
async fn sign_up_sends_a_welcome_in_the_users_language() {
    let suite = Suite::start().await.unwrap();
    let ada = sign_up(&suite, "Contoso").await.unwrap();
    let marie = sign_up_in(&suite, "Fabrikam", "fr-FR").await.unwrap();

    let english = suite.smtp.next_to(&ada.email, MAIL_WAIT).await.unwrap();
    assert_eq!(english.content_language.as_deref(), Some("en-US"));
    assert!(english.subject.contains("Welcome"), "{}", english.subject);
    assert!(english.text.contains(&ada.email), "{}", english.text);
    assert!(
        english.from.contains("no-reply@partnerhub.test"),
        "{}",
        english.from
    );

    let french = suite.smtp.next_to(&marie.email, MAIL_WAIT).await.unwrap();
    assert_eq!(french.content_language.as_deref(), Some("fr-FR"));
    assert_ne!(french.subject, english.subject);
    assert!(!french.html.is_empty() && !french.text.is_empty());
    suite.stop().await.unwrap();
}

#[tokio::test]
async fn a_mailed_reset_token_resets_the_password_and_the_change_is_notified() {
    let suite = Suite::start().await.unwrap();
    let ada = sign_up(&suite, "Contoso").await.unwrap();
    suite.smtp.next_to(&ada.email, MAIL_WAIT).await.unwrap(); // welcome
    let mut auth = AuthServiceClient::new(Suite::channel(suite.identity).unwrap());
    auth.request_password_reset(RequestPasswordResetRequest {
        email: ada.email.clone(),
    })
    .await
    .unwrap();
    let reset = suite.smtp.next_to(&ada.email, MAIL_WAIT).await.unwrap();
    let token = link_token(&reset.text, "/password/reset");
    assert_eq!(token, link_token(&reset.html, "/password/reset"));
    assert!(token.len() >= 40, "a high-entropy token: {token}");

    auth.complete_password_reset(CompletePasswordResetRequest {
        token: token.clone(),
        new_password: "difference engine 1822".into(),
    })
    .await
    .unwrap();
    auth.sign_in(SignInRequest {
        email: ada.email.clone(),
        password: "difference engine 1822".into(),
        ..SignInRequest::default()
    })
    .await
    .unwrap();

    let notice = suite.smtp.next_to(&ada.email, MAIL_WAIT).await.unwrap();
    assert!(
        notice.subject.to_lowercase().contains("password"),
        "a security notice: {}",
        notice.subject
    );
    assert!(!notice.text.contains(&token), "the notice carries no token");
    suite.stop().await.unwrap();
}

#[tokio::test]
async fn an_invitation_mail_carries_a_token_that_joins_the_account() {
    let suite = Suite::start().await.unwrap();
    let ada = sign_up(&suite, "Contoso").await.unwrap();
    let guest = format!("guest.{}@fabrikam.com", partnerhub_testkit::unique());
    let mut members = MemberServiceClient::new(Suite::channel(suite.identity).unwrap());
    members
        .invite_users(
            bearer(
                &ada.token,
                InviteUsersRequest {
                    parent: ada.account.clone(),
                    invitations: vec![Invitation {
                        email: guest.clone(),
                        roles: vec![RoleAssignment {
                            role: "referrals_user".into(),
                            locations: Vec::new(),
                        }],
                        ..Invitation::default()
                    }],
                    request_id: String::new(),
                },
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let invitation = suite.smtp.next_to(&guest, MAIL_WAIT).await.unwrap();
    assert!(
        invitation.subject.contains("Contoso"),
        "{}",
        invitation.subject
    );
    let token = link_token(&invitation.text, "/invitations/accept");
    let session = members
        .accept_invitation(AcceptInvitationRequest {
            token,
            given_name: "Grace".into(),
            family_name: "Hopper".into(),
            password: "compiler pioneer 1952".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(session.account.unwrap_or_default().name, ada.account);

    // A user an admin creates is welcomed too (without the password, which
    // the admin hands over).
    let created_email = format!("bob.{}@contoso.com", partnerhub_testkit::unique());
    let created = members
        .create_user(
            bearer(
                &ada.token,
                CreateUserRequest {
                    parent: ada.account.clone(),
                    email: created_email.clone(),
                    given_name: "Bob".into(),
                    family_name: "Babbage".into(),
                    roles: vec![RoleAssignment {
                        role: "referrals_user".into(),
                        locations: Vec::new(),
                    }],
                    request_id: String::new(),
                },
            )
            .unwrap(),
        )
        .await
        .unwrap()
        .into_inner();
    let welcome = suite.smtp.next_to(&created_email, MAIL_WAIT).await.unwrap();
    assert!(welcome.text.contains("Bob"), "{}", welcome.text);
    assert!(!welcome.text.contains(&created.temporary_password));
    assert!(!welcome.html.contains(&created.temporary_password));
    suite.stop().await.unwrap();
}

#[tokio::test]
async fn a_mail_command_to_a_members_address_is_written_in_their_language() {
    let suite = Suite::start().await.unwrap();
    let marie = sign_up_in(&suite, "Fabrikam", "fr-FR").await.unwrap();
    suite.smtp.next_to(&marie.email, MAIL_WAIT).await.unwrap(); // welcome: projected
    let bus = partnerhub_testkit::Publisher::connect(&suite.bus)
        .await
        .unwrap();
    // Verification names the account and the address, not the user.
    bus.command(
        uuid::Uuid::now_v7(),
        "notification",
        "verification",
        &partnerhub_proto::notification::v1::SendMail {
            template: "verification.email_ownership".into(),
            to: marie.email.to_uppercase(),
            locale: String::new(),
            params: [
                ("token".to_owned(), "t0k3n".to_owned()),
                ("legal_name".to_owned(), "Fabrikam SAS".to_owned()),
                ("expires_hours".to_owned(), "72".to_owned()),
            ]
            .into(),
            user: String::new(),
            account: marie.account.clone(),
            dedup_key: "ownership-fr".into(),
        },
    )
    .await
    .unwrap();
    let mail = suite.smtp.next_to(&marie.email, MAIL_WAIT).await.unwrap();
    assert_eq!(mail.content_language.as_deref(), Some("fr-FR"));
    assert_eq!(link_token(&mail.text, "/verification/email"), "t0k3n");
    suite.stop().await.unwrap();
}
