//! The verification story across services: a company enrolls with its DUNS
//! number; verification opens a case, the email-ownership token is mailed
//! (through notification, to a real SMTP server); the primary contact
//! confirms it; the business matches the directory; the account is
//! AUTHORIZED; profile mirrors it and the program moves on.

use std::time::Duration;

use partnerhub_proto::profile::v1::{
    Address, Contact, DataSource, EnrollRequest, GetLegalProfileRequest, LegalProfile,
    ListProgramsRequest, ProgramKind, ProgramStatus,
    enrollment_service_client::EnrollmentServiceClient,
    legal_profile_service_client::LegalProfileServiceClient,
    program_service_client::ProgramServiceClient,
};
use partnerhub_proto::verification::v1::{
    CheckKind, CheckStatus, ConfirmEmailOwnershipRequest, GetVerificationStatusRequest,
    ListVerificationsRequest, Status as VerificationState, SubStatus,
    verification_service_client::VerificationServiceClient,
};
use partnerhub_testkit::clients::{self, Company};
use partnerhub_testkit::{PORTAL_URL, Suite, eventually};
use tonic::Code;

use crate::common::{mail_about, with_token};

/// Signs a founder up and enrolls the company by its DUNS number, as the
/// directory sample knows it.
async fn enroll_by_duns(suite: &Suite) -> anyhow::Result<Company> {
    let company = clients::sign_up(suite, "Contoso").await?;
    EnrollmentServiceClient::new(Suite::channel(suite.profile)?)
        .enroll(with_token(
            &company.token,
            EnrollRequest {
                parent: company.account.clone(),
                legal_profile: Some(LegalProfile {
                    legal_name: "Contoso SAS".into(),
                    address: Some(Address {
                        line1: "1 Rue de Rivoli".into(),
                        city: "Paris".into(),
                        postal_code: "75001".into(),
                        country: "FR".into(),
                        ..Address::default()
                    }),
                    primary_contact: Some(Contact {
                        given_name: "Ada".into(),
                        family_name: "Lovelace".into(),
                        email: company.email.clone(),
                        ..Contact::default()
                    }),
                    data_source: DataSource::Duns.into(),
                    duns_number: "150483782".into(),
                    ..LegalProfile::default()
                }),
                program: ProgramKind::Partner.into(),
                accept_agreement: true,
                request_id: String::new(),
            },
        )?)
        .await?;
    Ok(company)
}

fn token_in(text: &str) -> String {
    let start = format!("{PORTAL_URL}/verification/email?token=");
    text.find(&start)
        .map(|at| {
            text[at + start.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect()
        })
        .unwrap_or_default()
}

async fn status(
    suite: &Suite,
    company: &Company,
) -> anyhow::Result<(VerificationState, SubStatus)> {
    let s = VerificationServiceClient::new(Suite::channel(suite.verification)?)
        .get_verification_status(with_token(
            &company.token,
            GetVerificationStatusRequest {
                name: format!("{}/verificationStatus", company.account),
            },
        )?)
        .await?
        .into_inner();
    Ok((s.status(), s.sub_status()))
}

#[tokio::test]
async fn enrollment_to_authorized_through_the_mailed_token_and_a_directory_match()
-> anyhow::Result<()> {
    let suite = Suite::start().await?;
    suite.wait_serving().await?;
    let contoso = enroll_by_duns(&suite).await?;
    let other = clients::sign_up(&suite, "Fabrikam").await?;

    // The token reaches the primary contact by mail; the account waits for it.
    let mail = mail_about(&suite, &contoso.email, "Confirm the primary contact email").await?;
    let token = token_in(&mail.text);
    assert!(token.len() >= 40, "{}", mail.text);
    assert_eq!(token, token_in(&mail.html));
    eventually(Duration::from_secs(20), || async {
        (status(&suite, &contoso).await.ok()?
            == (VerificationState::Pending, SubStatus::EmailOwnership))
            .then_some(())
    })
    .await?;

    let mut verification = VerificationServiceClient::new(Suite::channel(suite.verification)?);
    // Wrong tokens and another account's claim are refused clearly.
    for (token, account) in [
        ("not-a-token".to_owned(), String::new()),
        (token.clone(), other.account.clone()),
    ] {
        let refused = verification
            .confirm_email_ownership(ConfirmEmailOwnershipRequest { token, account })
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    }
    let confirmed = verification
        .confirm_email_ownership(ConfirmEmailOwnershipRequest {
            token: token.clone(),
            account: contoso.account.clone(),
        })
        .await?
        .into_inner()
        .check
        .unwrap_or_default();
    assert_eq!(confirmed.status(), CheckStatus::Passed);
    let replayed = verification
        .confirm_email_ownership(ConfirmEmailOwnershipRequest {
            token,
            account: String::new(),
        })
        .await
        .expect_err("a used token is refused");
    assert_eq!(replayed.code(), Code::InvalidArgument);
    assert!(
        replayed.message().contains("already used")
            || format!("{replayed:?}").contains("already used")
    );

    // Every check passed: the business matched the directory by DUNS.
    eventually(Duration::from_secs(20), || async {
        (status(&suite, &contoso).await.ok()?.0 == VerificationState::Authorized).then_some(())
    })
    .await?;
    let cases = verification
        .list_verifications(with_token(
            &contoso.token,
            ListVerificationsRequest {
                parent: contoso.account.clone(),
                show_history: true,
                ..ListVerificationsRequest::default()
            },
        )?)
        .await?
        .into_inner()
        .verifications;
    assert_eq!(cases.len(), 1, "{cases:?}");
    assert_eq!(cases[0].state, "CLOSED");
    let business = cases[0]
        .checks
        .iter()
        .find(|c| c.kind() == CheckKind::Business)
        .expect("a business check");
    assert_eq!(business.reason, "DIRECTORY_MATCH", "{business:?}");
    let email = cases[0]
        .checks
        .iter()
        .find(|c| c.kind() == CheckKind::EmailOwnership)
        .expect("an email check");
    assert!(
        email.history.len() >= 2,
        "opened, then confirmed: {:?}",
        email.history
    );

    // Profile mirrors the status and the program moves on.
    eventually(Duration::from_secs(20), || async {
        let legal = LegalProfileServiceClient::new(Suite::channel(suite.profile).ok()?)
            .get_legal_profile(
                with_token(
                    &contoso.token,
                    GetLegalProfileRequest {
                        name: format!("{}/legalProfile", contoso.account),
                    },
                )
                .ok()?,
            )
            .await
            .ok()?
            .into_inner();
        let programs = ProgramServiceClient::new(Suite::channel(suite.profile).ok()?)
            .list_programs(
                with_token(
                    &contoso.token,
                    ListProgramsRequest {
                        parent: contoso.account.clone(),
                    },
                )
                .ok()?,
            )
            .await
            .ok()?
            .into_inner()
            .programs;
        (legal.verification_status() == VerificationState::Authorized
            && programs.iter().any(|p| p.status() == ProgramStatus::Active))
        .then_some(())
    })
    .await?;
    // And the primary contact hears of it.
    mail_about(&suite, &contoso.email, "verified").await?;
    suite.stop().await
}
