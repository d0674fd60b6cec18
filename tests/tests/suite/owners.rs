//! A company that owns one resource of every kind, for the isolation test:
//! legal profile, a second location, a second user, a tenant, tax and
//! payout profiles, its program, a verification case, notifications and a
//! merge invitation it sent.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use partnerhub_proto::identity::v1::{
    CreateUserRequest, Invitation, InviteUsersRequest, RoleAssignment, SignInRequest,
    auth_service_client::AuthServiceClient, member_service_client::MemberServiceClient,
};
use partnerhub_proto::merge::v1::{
    CreateMergeInvitationRequest, merge_service_client::MergeServiceClient,
};
use partnerhub_proto::notification::v1::{
    ListNotificationsRequest, notification_service_client::NotificationServiceClient,
};
use partnerhub_proto::profile::v1::{
    AddLocationRequest, Address, AssociateTenantRequest, Contact, CreatePayoutProfileRequest,
    CreateTaxProfileRequest, Location, PayoutMethod, PayoutProfile, ProgramKind, TaxEntityType,
    TaxForm, TaxProfile, Tenant, TenantKind, location_service_client::LocationServiceClient,
    payout_service_client::PayoutServiceClient, tenant_service_client::TenantServiceClient,
};
use partnerhub_proto::verification::v1::{
    ListVerificationsRequest, verification_service_client::VerificationServiceClient,
};
use partnerhub_testkit::clients::{self, FOUNDER_PASSWORD};
use partnerhub_testkit::{Company, Suite, eventually, unique};

use crate::common::with_token;
use crate::requests::Owner;

/// Waits until `list` returns a value.
async fn first<T, F, Fut>(what: &str, list: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually(Duration::from_secs(30), list)
        .await
        .with_context(|| format!("no {what} appeared"))
}

/// The last segment of a resource name.
fn id_of(name: &str) -> String {
    name.rsplit('/').next().unwrap_or_default().to_owned()
}

/// Enrolls a company that owns one resource of every kind, inviting
/// `invitee` to a merge, and returns it with its ids by collection.
pub async fn furnished(
    suite: &Suite,
    name: &str,
    invitee: &Company,
) -> anyhow::Result<(Company, Owner)> {
    let company = clients::enrolled(suite, name, ProgramKind::Partner).await?;
    let token = company.token.clone();
    let mut ids: HashMap<&'static str, String> = HashMap::new();
    ids.insert("accounts", company.account_id().to_owned());
    ids.insert("users", company.user_id().to_owned());
    ids.insert("programs", "partner".to_owned());

    let session = AuthServiceClient::new(Suite::channel(suite.identity)?)
        .sign_in(SignInRequest {
            email: company.email.clone(),
            password: FOUNDER_PASSWORD.into(),
            account: String::new(),
        })
        .await?
        .into_inner();
    let lyon = Address {
        line1: "2 Place Bellecour".into(),
        city: "Lyon".into(),
        postal_code: "69002".into(),
        country: "FR".into(),
        ..Address::default()
    };
    let location = LocationServiceClient::new(Suite::channel(suite.profile)?)
        .add_location(with_token(
            &token,
            AddLocationRequest {
                parent: company.account.clone(),
                location: Some(Location {
                    business_name: format!("{name} Lyon"),
                    address: Some(lyon),
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
        .await?
        .into_inner();
    ids.insert("locations", id_of(&location.name));

    let member = MemberServiceClient::new(Suite::channel(suite.identity)?)
        .create_user(with_token(
            &token,
            CreateUserRequest {
                parent: company.account.clone(),
                email: format!("member.{}@{}.com", unique(), name.to_lowercase()),
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
        .into_inner()
        .member
        .unwrap_or_default();
    ids.insert("members", id_of(&member.name));

    let invitation = MemberServiceClient::new(Suite::channel(suite.identity)?)
        .invite_users(with_token(
            &token,
            InviteUsersRequest {
                parent: company.account.clone(),
                invitations: vec![Invitation {
                    email: format!("invitee.{}@{}.com", unique(), name.to_lowercase()),
                    roles: vec![RoleAssignment {
                        role: "report_viewer".into(),
                        locations: Vec::new(),
                    }],
                    ..Invitation::default()
                }],
                request_id: String::new(),
            },
        )?)
        .await?
        .into_inner()
        .invitations
        .pop()
        .unwrap_or_default();
    ids.insert("invitations", id_of(&invitation.name));

    let tenant = TenantServiceClient::new(Suite::channel(suite.profile)?)
        .associate_tenant(with_token(
            &token,
            AssociateTenantRequest {
                parent: company.account.clone(),
                tenant: Some(Tenant {
                    tenant_id: uuid::Uuid::new_v4().to_string(),
                    domain: format!("{}-{}.com", name.to_lowercase(), unique()),
                    kind: TenantKind::Commercial.into(),
                    ..Tenant::default()
                }),
            },
        )?)
        .await?
        .into_inner();
    ids.insert("tenants", id_of(&tenant.name));

    let mut payouts = PayoutServiceClient::new(Suite::channel(suite.profile)?);
    payouts
        .create_tax_profile(with_token(
            &token,
            CreateTaxProfileRequest {
                parent: company.account.clone(),
                tax_profile: Some(TaxProfile {
                    entity_type: TaxEntityType::Corporation.into(),
                    tax_form: TaxForm::W8benE.into(),
                    country: "FR".into(),
                    tax_identifier: "FR40303265045".into(),
                    ..TaxProfile::default()
                }),
            },
        )?)
        .await?;
    let payout = payouts
        .create_payout_profile(with_token(
            &token,
            CreatePayoutProfileRequest {
                parent: company.account.clone(),
                payout_profile: Some(PayoutProfile {
                    method: PayoutMethod::BankAccount.into(),
                    account_holder_name: format!("{name} SAS"),
                    iban: "FR7630006000011234567890189".into(),
                    swift_bic: "BNPAFRPP".into(),
                    bank_country: "FR".into(),
                    ..PayoutProfile::default()
                }),
                request_id: String::new(),
            },
        )?)
        .await?
        .into_inner();
    ids.insert("payoutProfiles", id_of(&payout.name));

    let invitation = MergeServiceClient::new(Suite::channel(suite.merge)?)
        .create_merge_invitation(with_token(
            &token,
            CreateMergeInvitationRequest {
                parent: company.account.clone(),
                partner_id: invitee.global_id.clone(),
                request_id: String::new(),
            },
        )?)
        .await?
        .into_inner();
    ids.insert("mergeInvitations", id_of(&invitation.name));

    let verification = Suite::channel(suite.verification)?;
    let check = first("verification case", || {
        let (channel, token, parent) =
            (verification.clone(), token.clone(), company.account.clone());
        async move {
            let cases = VerificationServiceClient::new(channel)
                .list_verifications(
                    with_token(
                        &token,
                        ListVerificationsRequest {
                            parent,
                            ..ListVerificationsRequest::default()
                        },
                    )
                    .ok()?,
                )
                .await
                .ok()?
                .into_inner()
                .verifications;
            cases.into_iter().find_map(|c| c.checks.into_iter().next())
        }
    })
    .await?;
    // `accounts/{a}/verifications/{v}/checks/{c}`
    let segments: Vec<&str> = check.name.split('/').collect();
    ids.insert(
        "verifications",
        segments.get(3).copied().unwrap_or_default().to_owned(),
    );
    ids.insert("checks", id_of(&check.name));

    let notification = Suite::channel(suite.notification)?;
    let note = first("notification", || {
        let (channel, token) = (notification.clone(), token.clone());
        async move {
            NotificationServiceClient::new(channel)
                .list_notifications(
                    with_token(
                        &token,
                        ListNotificationsRequest {
                            parent: "users/me".into(),
                            ..ListNotificationsRequest::default()
                        },
                    )
                    .ok()?,
                )
                .await
                .ok()?
                .into_inner()
                .notifications
                .into_iter()
                .next()
        }
    })
    .await?;
    ids.insert("notifications", id_of(&note.name));

    let mut values = HashMap::new();
    values.insert("refresh_token", session.refresh_token);
    values.insert("partner_id", invitee.global_id.clone());
    Ok((company, Owner { ids, values }))
}
