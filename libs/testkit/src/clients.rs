//! Calling the suite as a person would: sign a company's founder up, enroll
//! the company, send requests with a bearer token. Shared by the service
//! and suite tests so each does not write its own.

use partnerhub_proto::identity::v1::{SignUpRequest, auth_service_client::AuthServiceClient};
use partnerhub_proto::profile::v1::{
    Address, Contact, EnrollRequest, LegalProfile, ProgramKind,
    enrollment_service_client::EnrollmentServiceClient,
};
use tonic::metadata::MetadataValue;

use crate::{Suite, unique};

/// The password every founder signs up with.
pub const FOUNDER_PASSWORD: &str = "analytical engine 1843";

/// `message` with `authorization: Bearer <token>`.
pub fn bearer<T>(token: &str, message: T) -> anyhow::Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {token}"))?,
    );
    Ok(request)
}

/// A signed-up founder: Global admin, Admin agent and Owner of a new
/// account; enrolled when `global_id` is set.
#[derive(Debug, Clone)]
pub struct Company {
    /// Sign-in email (`…@<name>.com`).
    pub email: String,
    /// Access token.
    pub token: String,
    /// `users/{user}`.
    pub user: String,
    /// `accounts/{account}`.
    pub account: String,
    /// Global partner id (empty until enrolled).
    pub global_id: String,
    /// Partner id of the headquarters location (empty until enrolled).
    pub headquarters_id: String,
}

impl Company {
    /// The account id (last segment of `account`).
    pub fn account_id(&self) -> &str {
        self.account.rsplit('/').next().unwrap_or_default()
    }

    /// The user id (last segment of `user`).
    pub fn user_id(&self) -> &str {
        self.user.rsplit('/').next().unwrap_or_default()
    }
}

/// Signs up the founder of a company called `name`.
pub async fn sign_up(suite: &Suite, name: &str) -> anyhow::Result<Company> {
    sign_up_in(suite, name, "en-US").await
}

/// Signs up the founder of a company called `name`, who prefers `locale`.
pub async fn sign_up_in(suite: &Suite, name: &str, locale: &str) -> anyhow::Result<Company> {
    let email = format!("founder.{}@{}.com", unique(), name.to_lowercase());
    let session = AuthServiceClient::new(Suite::channel(suite.identity)?)
        .sign_up(SignUpRequest {
            email: email.clone(),
            given_name: "Ada".into(),
            family_name: "Lovelace".into(),
            password: FOUNDER_PASSWORD.into(),
            account_display_name: name.into(),
            locale: locale.into(),
        })
        .await?
        .into_inner();
    Ok(Company {
        email,
        token: session.access_token.unwrap_or_default().token,
        user: session.user.unwrap_or_default().name,
        account: session.account.unwrap_or_default().name,
        global_id: String::new(),
        headquarters_id: String::new(),
    })
}

/// Signs up a company called `name` and enrolls it (legal name
/// `<name> SAS`, Paris) in `program`.
pub async fn enrolled(suite: &Suite, name: &str, program: ProgramKind) -> anyhow::Result<Company> {
    let mut company = sign_up(suite, name).await?;
    let response = EnrollmentServiceClient::new(Suite::channel(suite.profile)?)
        .enroll(bearer(
            &company.token,
            EnrollRequest {
                parent: company.account.clone(),
                legal_profile: Some(LegalProfile {
                    legal_name: format!("{name} SAS"),
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
                    ..LegalProfile::default()
                }),
                program: program.into(),
                accept_agreement: true,
                ..EnrollRequest::default()
            },
        )?)
        .await?
        .into_inner();
    company.global_id = response.legal_profile.unwrap_or_default().global_partner_id;
    company.headquarters_id = response.headquarters.unwrap_or_default().partner_id;
    Ok(company)
}
