//! Profile's programs and agreements, the verification and account-state
//! consumers, tenants, the support, company and billing profiles,
//! identifiers and publishers, the merge step and the activity log, through
//! the gRPC API against the real suite (PostgreSQL and RabbitMQ).

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{
    Actor, Harness, code, contact, decoded, location, location_id, paris, reason, status,
    violated_fields,
};
use partnerhub_platform::bus::{Bus, OutgoingMessage};
use partnerhub_proto::identity::v1::{
    AccountState, IssueServiceTokenRequest, SetAccountStateRequest,
    account_service_client::AccountServiceClient,
};
use partnerhub_proto::profile::v1::{
    AcceptAgreementRequest, AddLocationRequest, AddPublisherRequest, Address, Agreement,
    AnnualRevenue, ApplyMergeRequest, ApplyMergeResponse, AssociateTenantRequest, BillingProfile,
    CompanyProfile, CompanySize, CustomerCount, EnrollProgramRequest, GetBillingProfileRequest,
    GetCompanyProfileRequest, GetIdentifiersRequest, GetLegalProfileRequest, GetLocationRequest,
    GetSupportProfileRequest, Identifiers, LegalProfile, ListAgreementsRequest,
    ListLocationsRequest, ListProfileActivityRequest, ListProgramsRequest, ListTenantsRequest,
    Location, LookupPartnerRequest, LookupPartnerResponse, PartnershipType, ProfileActivity,
    ProfileMerged, Program, ProgramKind, ProgramStatus, ProgramStatusChanged, ProgramTab,
    Publisher, RemoveTenantRequest, SupportProfile, Tenant, TenantKind,
    UpdateBillingProfileRequest, UpdateCompanyProfileRequest, UpdateLegalProfileRequest,
    UpdateSupportProfileRequest, WorkKind,
    company_profile_service_client::CompanyProfileServiceClient,
    profile_activity_service_client::ProfileActivityServiceClient,
    profile_merge_service_client::ProfileMergeServiceClient,
    program_service_client::ProgramServiceClient,
    support_profile_service_client::SupportProfileServiceClient,
    tenant_service_client::TenantServiceClient,
};
use partnerhub_proto::verification::v1::{
    Status as VerificationStatus, SubStatus, VerificationStatusChanged,
};
use partnerhub_testkit::{Suite, SuiteOptions, eventually, unique};
use prost::{Message, Name};
use prost_types::FieldMask;
use tokio_util::sync::CancellationToken;
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};
use uuid::Uuid;

/// How long an event may take to reach profile and be applied.
const EVENTUAL: Duration = Duration::from_secs(20);

/// Client id of the test service account.
const SERVICE_CLIENT: &str = "ops";
/// Its secret.
const SERVICE_SECRET: &str = "profile service secret 42";
/// argon2id PHC string of [`SERVICE_SECRET`] (argon2 crate defaults, as
/// identity hashes): profile's tests cannot call identity's `password::hash`.
const SERVICE_SECRET_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$F9Mo6z31uxVngtBmmoFr7w$6NJ9XAZ3cBUdtUg2HXu2xGMbckkQ3yji6+OgCdf3sjg";

const MERGE_APPLY: &str = "platform.profile.merge.apply";
const SET_STATE: &str = "platform.identity.accounts.set_state";
/// Lets an operator's service account read any account's programs and
/// legal profile (a suspended account's own tokens are refused).
const READ_PROGRAMS: &str = "platform.profile.programs.read";
/// See [`READ_PROGRAMS`].
const READ_LEGAL: &str = "platform.profile.legal.read";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

/// Starts the suite with a service account [`SERVICE_CLIENT`] holding
/// `permissions`.
async fn start_with_service_account(permissions: &[&str]) -> anyhow::Result<Harness> {
    // `ServiceAccount` is identity's type, which profile's tests cannot name:
    // it is deserialized, as identity reads it from its configuration.
    let service_accounts = serde_json::from_value(serde_json::json!([{
        "client_id": SERVICE_CLIENT,
        "secret_hash": SERVICE_SECRET_HASH,
        "permissions": permissions,
    }]))?;
    Ok(Harness {
        suite: Suite::start_with(SuiteOptions {
            service_accounts,
            ..SuiteOptions::default()
        })
        .await?,
    })
}

/// An access token of the test service account.
async fn service_token(h: &Harness) -> anyhow::Result<String> {
    let response = h
        .auth()
        .issue_service_token(IssueServiceTokenRequest {
            client_id: SERVICE_CLIENT.into(),
            client_secret: SERVICE_SECRET.into(),
        })
        .await?
        .into_inner();
    Ok(response.access_token.unwrap_or_default().token)
}

/// `message` with `token` as bearer.
fn with_token<T>(token: &str, message: T) -> anyhow::Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    let value = MetadataValue::try_from(format!("Bearer {token}"))?;
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}

/// The account id (UUID) of `accounts/{id}`.
fn account_uuid(account: &str) -> anyhow::Result<Uuid> {
    Ok(account.trim_start_matches("accounts/").parse()?)
}

/// Publishes `message` on the suite's events exchange, routed by its type,
/// with the CloudEvents headers of the platform, and waits for the broker's
/// confirm.
async fn publish(suite: &Suite, message: &OutgoingMessage) -> anyhow::Result<()> {
    let bus = Bus::new(suite.bus.clone());
    let stop = CancellationToken::new();
    let pool = suite.pool("profile").await?;
    let supervisor = bus.spawn(Vec::new(), pool.clone(), stop.clone());
    let channel = tokio::time::timeout(Duration::from_secs(10), bus.publisher(&stop))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no publisher channel"))?;
    let confirm = channel
        .basic_publish(
            suite.bus.events_exchange().into(),
            message.message_type.as_str().into(),
            Default::default(),
            &message.payload,
            message
                .properties()
                .with_user_id(suite.bus.user().as_str().into()),
        )
        .await?
        .await?;
    anyhow::ensure!(confirm.is_ack(), "the broker did not confirm the event");
    stop.cancel();
    let _ = supervisor.await;
    pool.close().await;
    Ok(())
}

/// A `VerificationStatusChanged` for `account`, as verification would emit it.
fn verification_event(
    account: &str,
    old: VerificationStatus,
    now: VerificationStatus,
) -> OutgoingMessage {
    let event = VerificationStatusChanged {
        account: account.to_owned(),
        old_status: old.into(),
        status: now.into(),
        sub_status: SubStatus::Decision.into(),
        verification: format!("{account}/verifications/{}", Uuid::now_v7()),
        change_time: Some(partnerhub_platform::time::timestamp(Utc::now())),
    };
    OutgoingMessage {
        id: Uuid::now_v7(),
        message_type: VerificationStatusChanged::full_name(),
        source: "//partnerhub/verification".into(),
        subject: account.to_owned(),
        time: Utc::now(),
        payload: event.encode_to_vec(),
        traceparent: None,
        tracestate: None,
    }
}

/// Adds a program row without accepting its agreement (the API always
/// accepts the agreement with the program, so a program that waits for its
/// agreement can only be set up in the database).
async fn insert_program_without_agreement(
    h: &Harness,
    account: &str,
    kind: ProgramKind,
) -> anyhow::Result<()> {
    let pool = h.suite.pool("profile").await?;
    sqlx::query("INSERT INTO programs (account_id, kind, status) VALUES ($1, $2, 'PENDING')")
        .bind(account_uuid(account)?)
        .bind(kind.as_str_name())
        .execute(&pool)
        .await?;
    pool.close().await;
    Ok(())
}

fn programs_client(actor: &Actor) -> ProgramServiceClient<tonic::transport::Channel> {
    ProgramServiceClient::new(actor.profile.clone())
}

async fn list_programs(actor: &Actor, parent: &str) -> Result<Vec<Program>, Status> {
    Ok(programs_client(actor)
        .list_programs(actor.req(ListProgramsRequest {
            parent: parent.into(),
        }))
        .await?
        .into_inner()
        .programs)
}

/// The (kind, status) pairs of the account's programs, sorted by kind.
async fn program_statuses(actor: &Actor) -> Result<Vec<(ProgramKind, ProgramStatus)>, Status> {
    let mut pairs: Vec<_> = list_programs(actor, &actor.account)
        .await?
        .iter()
        .map(|p| (p.kind(), p.status()))
        .collect();
    pairs.sort_by_key(|(k, _)| *k as i32);
    Ok(pairs)
}

/// Waits until the account's programs are exactly `expected` (any order).
/// Waits until profile mirrors the PENDING status verification gives every
/// enrollment, so a status a test publishes afterwards is the newer one.
async fn verification_pending(actor: &Actor) -> anyhow::Result<()> {
    eventually(EVENTUAL, || async {
        let legal = get_legal(actor, &actor.legal_profile_name()).await.ok()?;
        (legal.verification_status() == VerificationStatus::Pending).then_some(())
    })
    .await
}

async fn programs_become(
    actor: &Actor,
    expected: &[(ProgramKind, ProgramStatus)],
) -> anyhow::Result<()> {
    let mut expected = expected.to_vec();
    expected.sort_by_key(|(k, _)| *k as i32);
    let result = eventually(EVENTUAL, || {
        let expected = expected.clone();
        async move {
            let now = program_statuses(actor).await.ok()?;
            (now == expected).then_some(())
        }
    })
    .await;
    if result.is_err() {
        anyhow::bail!(
            "programs of {} never became {expected:?}; now {:?}",
            actor.account,
            program_statuses(actor).await
        );
    }
    Ok(())
}

async fn enroll_program(
    actor: &Actor,
    program: ProgramKind,
    accept_agreement: bool,
) -> Result<Program, Status> {
    Ok(programs_client(actor)
        .enroll_program(actor.req(EnrollProgramRequest {
            parent: actor.account.clone(),
            program: program.into(),
            accept_agreement,
        }))
        .await?
        .into_inner())
}

async fn list_agreements(actor: &Actor) -> Result<Vec<Agreement>, Status> {
    Ok(programs_client(actor)
        .list_agreements(actor.req(ListAgreementsRequest {
            parent: actor.account.clone(),
        }))
        .await?
        .into_inner()
        .agreements)
}

async fn accept_agreement(
    actor: &Actor,
    agreement: &str,
    version: &str,
) -> Result<Agreement, Status> {
    Ok(programs_client(actor)
        .accept_agreement(actor.req(AcceptAgreementRequest {
            parent: actor.account.clone(),
            agreement: agreement.into(),
            version: version.into(),
        }))
        .await?
        .into_inner())
}

async fn get_legal(actor: &Actor, name: &str) -> Result<LegalProfile, Status> {
    Ok(actor
        .legal()
        .get_legal_profile(actor.req(GetLegalProfileRequest { name: name.into() }))
        .await?
        .into_inner())
}

async fn update_legal(
    actor: &Actor,
    profile: LegalProfile,
    paths: &[&str],
) -> Result<LegalProfile, Status> {
    Ok(actor
        .legal()
        .update_legal_profile(actor.req(UpdateLegalProfileRequest {
            legal_profile: Some(profile),
            update_mask: mask(paths),
        }))
        .await?
        .into_inner()
        .legal_profile
        .unwrap_or_default())
}

async fn list_locations(actor: &Actor, parent: &str) -> Result<Vec<Location>, Status> {
    Ok(actor
        .locations()
        .list_locations(actor.req(ListLocationsRequest {
            parent: parent.into(),
            page_size: 100,
            page_token: String::new(),
        }))
        .await?
        .into_inner()
        .locations)
}

async fn lookup(actor: &Actor, partner_id: &str) -> Result<LookupPartnerResponse, Status> {
    Ok(actor
        .identifiers()
        .lookup_partner(actor.req(LookupPartnerRequest {
            partner_id: partner_id.into(),
        }))
        .await?
        .into_inner())
}

/// A valid address in Berlin.
fn berlin() -> Address {
    Address {
        line1: "Unter den Linden 1".into(),
        line2: String::new(),
        city: "Berlin".into(),
        state: String::new(),
        postal_code: "10117".into(),
        country: "DE".into(),
    }
}

fn tenants_client(actor: &Actor) -> TenantServiceClient<tonic::transport::Channel> {
    TenantServiceClient::new(actor.profile.clone())
}

async fn associate(
    actor: &Actor,
    parent: &str,
    tenant_id: &str,
    domain: &str,
    kind: TenantKind,
) -> Result<Tenant, Status> {
    Ok(tenants_client(actor)
        .associate_tenant(actor.req(AssociateTenantRequest {
            parent: parent.into(),
            tenant: Some(Tenant {
                tenant_id: tenant_id.into(),
                domain: domain.into(),
                kind: kind.into(),
                ..Tenant::default()
            }),
        }))
        .await?
        .into_inner())
}

async fn remove_tenant(actor: &Actor, name: &str) -> Result<(), Status> {
    tenants_client(actor)
        .remove_tenant(actor.req(RemoveTenantRequest { name: name.into() }))
        .await?;
    Ok(())
}

async fn list_tenants(actor: &Actor) -> Result<Vec<Tenant>, Status> {
    Ok(tenants_client(actor)
        .list_tenants(actor.req(ListTenantsRequest {
            parent: actor.account.clone(),
        }))
        .await?
        .into_inner()
        .tenants)
}

fn support_client(actor: &Actor) -> SupportProfileServiceClient<tonic::transport::Channel> {
    SupportProfileServiceClient::new(actor.profile.clone())
}

async fn update_support(
    actor: &Actor,
    profile: SupportProfile,
    paths: &[&str],
) -> Result<SupportProfile, Status> {
    Ok(support_client(actor)
        .update_support_profile(actor.req(UpdateSupportProfileRequest {
            support_profile: Some(profile),
            update_mask: mask(paths),
        }))
        .await?
        .into_inner())
}

fn company_client(actor: &Actor) -> CompanyProfileServiceClient<tonic::transport::Channel> {
    CompanyProfileServiceClient::new(actor.profile.clone())
}

async fn update_company(
    actor: &Actor,
    profile: CompanyProfile,
    paths: &[&str],
) -> Result<CompanyProfile, Status> {
    Ok(company_client(actor)
        .update_company_profile(actor.req(UpdateCompanyProfileRequest {
            company_profile: Some(profile),
            update_mask: mask(paths),
        }))
        .await?
        .into_inner())
}

async fn get_billing(actor: &Actor, account: &str) -> Result<BillingProfile, Status> {
    Ok(company_client(actor)
        .get_billing_profile(actor.req(GetBillingProfileRequest {
            name: format!("{account}/billingProfile"),
        }))
        .await?
        .into_inner())
}

async fn update_billing(
    actor: &Actor,
    profile: BillingProfile,
    paths: &[&str],
) -> Result<BillingProfile, Status> {
    Ok(company_client(actor)
        .update_billing_profile(actor.req(UpdateBillingProfileRequest {
            billing_profile: Some(profile),
            update_mask: mask(paths),
        }))
        .await?
        .into_inner())
}

async fn get_identifiers(actor: &Actor) -> Result<Identifiers, Status> {
    Ok(company_client(actor)
        .get_identifiers(actor.req(GetIdentifiersRequest {
            name: format!("{}/identifiers", actor.account),
        }))
        .await?
        .into_inner())
}

async fn add_publisher(
    actor: &Actor,
    publisher_id: &str,
    location: &str,
) -> Result<Publisher, Status> {
    Ok(company_client(actor)
        .add_publisher(actor.req(AddPublisherRequest {
            parent: actor.account.clone(),
            publisher: Some(Publisher {
                publisher_id: publisher_id.into(),
                display_name: "Contoso Apps".into(),
                location: location.into(),
                contact: Some(contact("Marie", "Curie")),
                create_time: None,
            }),
        }))
        .await?
        .into_inner())
}

fn activity_client(actor: &Actor) -> ProfileActivityServiceClient<tonic::transport::Channel> {
    ProfileActivityServiceClient::new(actor.profile.clone())
}

async fn list_activity(
    actor: &Actor,
    parent: &str,
    page_size: i32,
    page_token: &str,
) -> Result<(Vec<ProfileActivity>, String), Status> {
    let page = activity_client(actor)
        .list_profile_activity(actor.req(ListProfileActivityRequest {
            parent: parent.into(),
            page_size,
            page_token: page_token.into(),
        }))
        .await?
        .into_inner();
    Ok((page.activities, page.next_page_token))
}

/// (account, program, old, new) of the `ProgramStatusChanged` events among
/// `events`, sorted.
fn status_changes(
    events: &[partnerhub_testkit::TappedEvent],
) -> Vec<(String, i32, String, String)> {
    let mut changes: Vec<_> = decoded::<ProgramStatusChanged>(events)
        .into_iter()
        .map(|e| (e.account, e.program, e.old_status, e.new_status))
        .collect();
    changes.sort();
    changes
}

fn change(
    actor: &Actor,
    program: ProgramKind,
    old: &str,
    new: &str,
) -> (String, i32, String, String) {
    (
        actor.account.clone(),
        program.into(),
        format!("PROGRAM_STATUS_{old}"),
        format!("PROGRAM_STATUS_{new}"),
    )
}

// ---------------------------------------------------------------------------
// 1. Programs and agreements
// ---------------------------------------------------------------------------

#[tokio::test]
async fn programs_and_agreements_follow_enrollment_and_the_program_rules() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (founder, enrolled) = h.enrolled_founder().await?;
    let account_admin = h.member_with(&founder, &["account_admin"]).await?;

    // Enrolling made the account a pending partner with the partner program
    // agreement accepted by the founder.
    let programs = list_programs(&founder, &founder.account).await?;
    assert_eq!(programs.len(), 1, "{programs:?}");
    let partner = &programs[0];
    assert_eq!(partner.kind(), ProgramKind::Partner);
    assert_eq!(partner.status(), ProgramStatus::Pending);
    assert_eq!(partner.tab(), ProgramTab::Partner);
    assert_eq!(partner.agreement, "partner_program_agreement");
    assert_eq!(
        partner.name,
        format!("{}/programs/partner", founder.account)
    );
    let agreements = list_agreements(&founder).await?;
    assert_eq!(agreements.len(), 1, "{agreements:?}");
    assert_eq!(agreements[0].agreement, "partner_program_agreement");
    assert_eq!(agreements[0].version, "2024-01");
    assert_eq!(agreements[0].accepted_by, founder.user);
    assert!(
        agreements[0]
            .name
            .starts_with(&format!("{}/agreements/", founder.account)),
        "{}",
        agreements[0].name
    );

    // The agreement must be accepted in the call.
    let unaccepted =
        status(enroll_program(&founder, ProgramKind::CspIndirectReseller, false).await);
    assert_eq!(unaccepted.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&unaccepted), ["accept_agreement"]);
    // CSP takes the partner agreement, which only a Global admin accepts.
    let denied =
        status(enroll_program(&account_admin, ProgramKind::CspIndirectReseller, true).await);
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    assert_eq!(list_programs(&founder, &founder.account).await?.len(), 1);

    // The headquarters is in the legal country (FR): CSP goes through.
    let reseller = enroll_program(&founder, ProgramKind::CspIndirectReseller, true).await?;
    assert_eq!(reseller.kind(), ProgramKind::CspIndirectReseller);
    assert_eq!(reseller.status(), ProgramStatus::Pending);
    assert_eq!(reseller.tab(), ProgramTab::Reseller);
    assert_eq!(reseller.agreement, "microsoft_partner_agreement");
    assert_eq!(
        reseller.name,
        format!("{}/programs/csp_indirect_reseller", founder.account)
    );
    // Twice is refused.
    let twice = status(enroll_program(&founder, ProgramKind::CspIndirectReseller, true).await);
    assert_eq!(
        (twice.code(), reason(&twice)),
        (Code::FailedPrecondition, "ALREADY_IN_PROGRAM".to_owned())
    );

    // The legal address moves to Germany, where the account has no location:
    // another CSP program is refused until it has one there.
    let legal = enrolled.legal_profile.clone().unwrap_or_default();
    let moved = update_legal(
        &founder,
        LegalProfile {
            address: Some(berlin()),
            ..legal
        },
        &["address"],
    )
    .await?;
    assert_eq!(moved.address, Some(berlin()));
    let no_location = status(enroll_program(&founder, ProgramKind::CspDirectBill, true).await);
    assert_eq!(
        (no_location.code(), reason(&no_location)),
        (
            Code::FailedPrecondition,
            "NO_LOCATION_IN_LEGAL_COUNTRY".to_owned()
        )
    );
    founder
        .locations()
        .add_location(founder.req(AddLocationRequest {
            parent: founder.account.clone(),
            location: Some(Location {
                address: Some(berlin()),
                ..location("Contoso Berlin")
            }),
            request_id: String::new(),
        }))
        .await?;
    let direct = enroll_program(&founder, ProgramKind::CspDirectBill, true).await?;
    assert_eq!(direct.status(), ProgramStatus::Pending);
    assert_eq!(direct.tab(), ProgramTab::Reseller);
    assert_eq!(
        program_statuses(&founder).await?,
        [
            (ProgramKind::Partner, ProgramStatus::Pending),
            (ProgramKind::CspIndirectReseller, ProgramStatus::Pending),
            (ProgramKind::CspDirectBill, ProgramStatus::Pending),
        ]
    );

    // The partner agreement was recorded once, newest first.
    let agreements = list_agreements(&founder).await?;
    let ids: Vec<_> = agreements.iter().map(|a| a.agreement.as_str()).collect();
    assert_eq!(
        ids,
        ["microsoft_partner_agreement", "partner_program_agreement"]
    );

    // AcceptAgreement: the current version of a known agreement only.
    let wrong_version = status(accept_agreement(&founder, "publisher_agreement", "2019-01").await);
    assert_eq!(wrong_version.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&wrong_version), ["version"]);
    let unknown = status(accept_agreement(&founder, "no_such_agreement", "2024-01").await);
    assert_eq!(unknown.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&unknown), ["agreement"]);
    let partner_agreement =
        status(accept_agreement(&account_admin, "microsoft_partner_agreement", "2024-01").await);
    assert_eq!(partner_agreement.code(), Code::PermissionDenied);
    let accepted = accept_agreement(&account_admin, "publisher_agreement", "2024-01").await?;
    assert_eq!(accepted.agreement, "publisher_agreement");
    assert_eq!(accepted.version, "2024-01");
    assert_eq!(accepted.accepted_by, account_admin.user);
    let agreements = list_agreements(&founder).await?;
    assert_eq!(agreements.len(), 3);
    assert_eq!(agreements[0], accepted);

    // Another account's programs are not even confirmed to exist.
    let stranger = h.sign_up().await?;
    assert_eq!(
        code(list_programs(&stranger, &founder.account).await),
        Code::NotFound
    );
    h.stop().await
}

// ---------------------------------------------------------------------------
// 2. Verification events
// ---------------------------------------------------------------------------

#[tokio::test]
async fn verification_events_move_programs() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (a, _) = h.enrolled_founder().await?;
    let (b, _) = h.enrolled_founder().await?;
    // A program of A still waiting for its agreement.
    insert_program_without_agreement(&h, &a.account, ProgramKind::CommercialMarketplace).await?;
    enroll_program(&b, ProgramKind::CspIndirectReseller, true).await?;
    verification_pending(&a).await?;
    verification_pending(&b).await?;
    let mut tap = h.tap().await?;

    // A is authorized: the partner program (agreement accepted at enrollment)
    // becomes ACTIVE, the marketplace QUALIFIED.
    let authorized = verification_event(
        &a.account,
        VerificationStatus::Pending,
        VerificationStatus::Authorized,
    );
    publish(&h.suite, &authorized).await?;
    programs_become(
        &a,
        &[
            (ProgramKind::Partner, ProgramStatus::Active),
            (ProgramKind::CommercialMarketplace, ProgramStatus::Qualified),
        ],
    )
    .await?;
    let profile = get_legal(&a, &a.legal_profile_name()).await?;
    assert_eq!(
        profile.verification_status(),
        VerificationStatus::Authorized
    );
    assert_eq!(profile.verification_sub_status(), SubStatus::Decision);
    let programs_before = list_programs(&a, &a.account).await?;

    // The same event again has no second effect.
    publish(&h.suite, &authorized).await?;
    // B is rejected: its pending programs are declined (and, arriving after
    // the duplicate, it tells the duplicate had its chance to be applied).
    publish(
        &h.suite,
        &verification_event(
            &b.account,
            VerificationStatus::Pending,
            VerificationStatus::Rejected,
        ),
    )
    .await?;
    programs_become(
        &b,
        &[
            (ProgramKind::Partner, ProgramStatus::Declined),
            (ProgramKind::CspIndirectReseller, ProgramStatus::Declined),
        ],
    )
    .await?;
    assert_eq!(
        get_legal(&b, &b.legal_profile_name())
            .await?
            .verification_status(),
        VerificationStatus::Rejected
    );
    tokio::time::sleep(common::QUIET).await;
    assert_eq!(
        get_legal(&a, &a.legal_profile_name()).await?,
        profile,
        "a duplicated event changed the legal profile again"
    );
    assert_eq!(
        list_programs(&a, &a.account).await?,
        programs_before,
        "a duplicated event touched the programs again"
    );

    // Accepting the missing agreement activates the qualified program.
    accept_agreement(&a, "publisher_agreement", "2024-01").await?;
    assert_eq!(
        program_statuses(&a).await?,
        [
            (ProgramKind::Partner, ProgramStatus::Active),
            (ProgramKind::CommercialMarketplace, ProgramStatus::Active),
        ]
    );

    let events = tap.drain(common::QUIET).await?;
    // B's enrollment, made before the tap bound, may be relayed after it.
    let changes: Vec<_> = status_changes(&events)
        .into_iter()
        .filter(|(_, _, old, _)| old != "PROGRAM_STATUS_UNSPECIFIED")
        .collect();
    let mut expected = vec![
        change(&a, ProgramKind::Partner, "PENDING", "ACTIVE"),
        change(
            &a,
            ProgramKind::CommercialMarketplace,
            "PENDING",
            "QUALIFIED",
        ),
        change(
            &a,
            ProgramKind::CommercialMarketplace,
            "QUALIFIED",
            "ACTIVE",
        ),
        change(&b, ProgramKind::Partner, "PENDING", "DECLINED"),
        change(&b, ProgramKind::CspIndirectReseller, "PENDING", "DECLINED"),
    ];
    expected.sort();
    assert_eq!(changes, expected);
    tap.close().await;
    h.stop().await
}

// ---------------------------------------------------------------------------
// 3. Suspension
// ---------------------------------------------------------------------------

#[tokio::test]
async fn suspension_suspends_programs_and_reactivation_restores_them() -> anyhow::Result<()> {
    let h = start_with_service_account(&[SET_STATE, READ_PROGRAMS, READ_LEGAL]).await?;
    let service = service_token(&h).await?;
    let (founder, _) = h.enrolled_founder().await?;
    // A suspended account's own tokens are refused (its sessions end), so
    // an operator's service account watches its programs.
    let watcher = Actor {
        token: service.clone(),
        ..founder.clone()
    };
    verification_pending(&founder).await?;
    // Three programs in two statuses: ACTIVE partner and reseller, and a
    // marketplace program QUALIFIED (its agreement is missing).
    insert_program_without_agreement(&h, &founder.account, ProgramKind::CommercialMarketplace)
        .await?;
    publish(
        &h.suite,
        &verification_event(
            &founder.account,
            VerificationStatus::Pending,
            VerificationStatus::Authorized,
        ),
    )
    .await?;
    programs_become(
        &founder,
        &[
            (ProgramKind::Partner, ProgramStatus::Active),
            (ProgramKind::CommercialMarketplace, ProgramStatus::Qualified),
        ],
    )
    .await?;
    let reseller = enroll_program(&founder, ProgramKind::CspIndirectReseller, true).await?;
    assert_eq!(reseller.status(), ProgramStatus::Active);
    let before = [
        (ProgramKind::Partner, ProgramStatus::Active),
        (ProgramKind::CspIndirectReseller, ProgramStatus::Active),
        (ProgramKind::CommercialMarketplace, ProgramStatus::Qualified),
    ];
    let mut tap = h.tap().await?;

    let mut accounts = AccountServiceClient::new(h.identity());
    let set = |state: AccountState| SetAccountStateRequest {
        name: founder.account.clone(),
        state: state.into(),
        reason: "test".into(),
    };
    accounts
        .set_account_state(with_token(&service, set(AccountState::Suspended))?)
        .await?;
    programs_become(
        &watcher,
        &[
            (ProgramKind::Partner, ProgramStatus::Suspended),
            (ProgramKind::CspIndirectReseller, ProgramStatus::Suspended),
            (ProgramKind::CommercialMarketplace, ProgramStatus::Suspended),
        ],
    )
    .await?;

    accounts
        .set_account_state(with_token(&service, set(AccountState::Active))?)
        .await?;
    programs_become(&watcher, &before).await?;

    // Only the changes into or out of SUSPENDED: the enrollments above may
    // be relayed after the tap bound.
    let suspension = |events: &[partnerhub_testkit::TappedEvent]| {
        status_changes(events)
            .into_iter()
            .filter(|(_, _, old, new)| old.ends_with("SUSPENDED") || new.ends_with("SUSPENDED"))
            .collect::<Vec<_>>()
    };
    let events = tap
        .drain_until(
            |events| suspension(events).len() >= 6,
            Duration::from_secs(30),
            common::QUIET,
        )
        .await?;
    let mut expected = vec![
        change(&founder, ProgramKind::Partner, "ACTIVE", "SUSPENDED"),
        change(
            &founder,
            ProgramKind::CspIndirectReseller,
            "ACTIVE",
            "SUSPENDED",
        ),
        change(
            &founder,
            ProgramKind::CommercialMarketplace,
            "QUALIFIED",
            "SUSPENDED",
        ),
        change(&founder, ProgramKind::Partner, "SUSPENDED", "ACTIVE"),
        change(
            &founder,
            ProgramKind::CspIndirectReseller,
            "SUSPENDED",
            "ACTIVE",
        ),
        change(
            &founder,
            ProgramKind::CommercialMarketplace,
            "SUSPENDED",
            "QUALIFIED",
        ),
    ];
    expected.sort();
    assert_eq!(suspension(&events), expected);
    tap.close().await;
    h.stop().await
}

// ---------------------------------------------------------------------------
// 4. Tenants
// ---------------------------------------------------------------------------

#[tokio::test]
async fn tenants_keep_their_primary_and_the_callers_own() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (founder, _) = h.enrolled_founder().await?;
    let (other, _) = h.enrolled_founder().await?;
    let manager = h.member_with(&founder, &["manager"]).await?;
    // Founders and members sign in with @contoso.com addresses.
    assert!(founder.email.ends_with("@contoso.com"), "{}", founder.email);
    assert!(manager.email.ends_with("@contoso.com"), "{}", manager.email);

    let fabrikam = Uuid::new_v4().to_string();
    let contoso = Uuid::new_v4().to_string();
    let litware = Uuid::new_v4().to_string();
    let northwind = Uuid::new_v4().to_string();

    let first = associate(
        &founder,
        &founder.account,
        &fabrikam,
        "Fabrikam.com",
        TenantKind::Commercial,
    )
    .await?;
    assert!(first.primary);
    assert_eq!(
        first.name,
        format!("{}/tenants/{fabrikam}", founder.account)
    );
    assert_eq!(first.tenant_id, fabrikam);
    assert_eq!(first.domain, "fabrikam.com");
    assert_eq!(first.kind(), TenantKind::Commercial);
    let own = associate(
        &founder,
        &founder.account,
        &contoso,
        "contoso.com",
        TenantKind::Commercial,
    )
    .await?;
    assert!(!own.primary);
    let removable = associate(
        &founder,
        &founder.account,
        &litware,
        "litware.com",
        TenantKind::Commercial,
    )
    .await?;
    assert!(!removable.primary);

    // A manager associates developer tenants, not commercial ones.
    let developer = associate(
        &manager,
        &manager.account,
        &northwind,
        "northwind.com",
        TenantKind::Developer,
    )
    .await?;
    assert_eq!(developer.kind(), TenantKind::Developer);
    assert!(!developer.primary);
    let denied = status(
        associate(
            &manager,
            &manager.account,
            &Uuid::new_v4().to_string(),
            "adatum.com",
            TenantKind::Commercial,
        )
        .await,
    );
    assert_eq!(denied.code(), Code::PermissionDenied);

    // A tenant belongs to one account.
    let taken = status(
        associate(
            &other,
            &other.account,
            &fabrikam,
            "fabrikam.com",
            TenantKind::Commercial,
        )
        .await,
    );
    assert_eq!(taken.code(), Code::AlreadyExists, "{taken:?}");

    // Malformed tenants.
    let malformed = status(
        associate(
            &founder,
            &founder.account,
            "not-a-guid",
            "not a domain",
            TenantKind::Commercial,
        )
        .await,
    );
    assert_eq!(malformed.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&malformed),
        ["tenant.tenant_id", "tenant.domain"]
    );
    for domain in ["contoso", "-contoso.com", "contoso..com", ""] {
        let refused = status(
            associate(
                &founder,
                &founder.account,
                &Uuid::new_v4().to_string(),
                domain,
                TenantKind::Developer,
            )
            .await,
        );
        assert_eq!(refused.code(), Code::InvalidArgument, "{domain:?}");
        assert_eq!(violated_fields(&refused), ["tenant.domain"], "{domain:?}");
    }
    let unkinded = status(
        associate(
            &founder,
            &founder.account,
            &Uuid::new_v4().to_string(),
            "adatum.com",
            TenantKind::Unspecified,
        )
        .await,
    );
    assert_eq!(violated_fields(&unkinded), ["tenant.kind"]);

    let names: Vec<_> = list_tenants(&founder)
        .await?
        .into_iter()
        .map(|t| (t.tenant_id, t.primary))
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert_eq!(names[0], (fabrikam.clone(), true), "primary first");

    // The primary tenant stays; so does the caller's own (contoso.com).
    let primary = status(remove_tenant(&founder, &first.name).await);
    assert_eq!(
        (primary.code(), reason(&primary)),
        (Code::FailedPrecondition, "PRIMARY_TENANT".to_owned())
    );
    let own_tenant = status(remove_tenant(&founder, &own.name).await);
    assert_eq!(
        (own_tenant.code(), reason(&own_tenant)),
        (Code::FailedPrecondition, "OWN_TENANT".to_owned())
    );
    // Others go; another account's tenant is not found.
    assert_eq!(
        code(remove_tenant(&other, &removable.name).await),
        Code::NotFound
    );
    remove_tenant(&founder, &removable.name).await?;
    remove_tenant(&manager, &developer.name).await?;
    assert_eq!(
        code(remove_tenant(&founder, &removable.name).await),
        Code::NotFound
    );
    let left: Vec<_> = list_tenants(&founder)
        .await?
        .into_iter()
        .map(|t| t.tenant_id)
        .collect();
    assert_eq!(left, [fabrikam, contoso]);
    h.stop().await
}

// ---------------------------------------------------------------------------
// 5. Support, company and billing profiles, identifiers
// ---------------------------------------------------------------------------

#[tokio::test]
async fn support_company_and_billing_checks_and_unique_identifiers() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (founder, enrolled) = h.enrolled_founder().await?;
    let legal = enrolled.legal_profile.clone().unwrap_or_default();
    let hq = enrolled.headquarters.clone().unwrap_or_default();

    // Support profile.
    let support_name = format!("{}/supportProfile", founder.account);
    let empty = support_client(&founder)
        .get_support_profile(founder.req(GetSupportProfileRequest {
            name: support_name.clone(),
        }))
        .await?
        .into_inner();
    assert_eq!(empty.email, "");
    let all = ["email", "phone", "website"];
    let bad = status(
        update_support(
            &founder,
            SupportProfile {
                name: support_name.clone(),
                email: "not an email".into(),
                phone: "0123".into(),
                website: "http://contoso.fr".into(),
                etag: empty.etag.clone(),
            },
            &all,
        )
        .await,
    );
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&bad),
        [
            "support_profile.email",
            "support_profile.phone",
            "support_profile.website"
        ]
    );
    let valid = SupportProfile {
        name: support_name.clone(),
        email: "support@contoso.fr".into(),
        phone: "+33123456789".into(),
        website: "https://support.contoso.fr".into(),
        etag: empty.etag.clone(),
    };
    let set = update_support(&founder, valid.clone(), &all).await?;
    assert_eq!(set.email, "support@contoso.fr");
    assert_eq!(set.phone, "+33123456789");
    assert_eq!(set.website, "https://support.contoso.fr");
    assert_ne!(set.etag, empty.etag);
    let stale = status(
        update_support(
            &founder,
            SupportProfile {
                email: "help@contoso.fr".into(),
                ..valid.clone()
            },
            &["email"],
        )
        .await,
    );
    assert_eq!(
        (stale.code(), reason(&stale)),
        (Code::Aborted, "ETAG_MISMATCH".to_owned())
    );

    // Company profile.
    let company_name = format!("{}/companyProfile", founder.account);
    let company = company_client(&founder)
        .get_company_profile(founder.req(GetCompanyProfileRequest {
            name: company_name.clone(),
        }))
        .await?
        .into_inner();
    let fields = [
        "partnership_types",
        "customer_count",
        "annual_revenue",
        "company_size",
        "work_kinds",
        "operating_regions",
        "expansion_regions",
    ];
    let updated = update_company(
        &founder,
        CompanyProfile {
            name: company_name.clone(),
            partnership_types: vec![PartnershipType::Isv.into(), PartnershipType::Csp.into()],
            customer_count: CustomerCount::CustomerCount1150.into(),
            annual_revenue: AnnualRevenue::AnnualRevenue1m10m.into(),
            company_size: CompanySize::CompanySize51250.into(),
            work_kinds: vec![WorkKind::BuildApps.into(), WorkKind::Resell.into()],
            operating_regions: vec!["fr".into(), "DE".into(), "FR".into()],
            expansion_regions: vec!["US".into()],
            etag: company.etag.clone(),
        },
        &fields,
    )
    .await?;
    assert_eq!(
        updated.partnership_types().collect::<Vec<_>>(),
        [PartnershipType::Isv, PartnershipType::Csp]
    );
    assert_eq!(updated.customer_count(), CustomerCount::CustomerCount1150);
    assert_eq!(updated.annual_revenue(), AnnualRevenue::AnnualRevenue1m10m);
    assert_eq!(updated.company_size(), CompanySize::CompanySize51250);
    assert_eq!(
        updated.work_kinds().collect::<Vec<_>>(),
        [WorkKind::BuildApps, WorkKind::Resell]
    );
    assert_eq!(updated.operating_regions, ["FR", "DE"]);
    assert_eq!(updated.expansion_regions, ["US"]);
    assert_ne!(updated.etag, company.etag);
    let bad_region = status(
        update_company(
            &founder,
            CompanyProfile {
                operating_regions: vec!["FR".into(), "XX".into()],
                ..updated.clone()
            },
            &["operating_regions"],
        )
        .await,
    );
    assert_eq!(bad_region.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&bad_region),
        ["company_profile.operating_regions[1]"]
    );
    let bad_enum = status(
        update_company(
            &founder,
            CompanyProfile {
                partnership_types: vec![99],
                ..updated.clone()
            },
            &["partnership_types"],
        )
        .await,
    );
    assert_eq!(
        violated_fields(&bad_enum),
        ["company_profile.partnership_types[0]"]
    );
    let now = company_client(&founder)
        .get_company_profile(founder.req(GetCompanyProfileRequest {
            name: company_name.clone(),
        }))
        .await?
        .into_inner();
    assert_eq!(now, updated);

    // Billing profile: the legal name and address by default.
    let billing = get_billing(&founder, &founder.account).await?;
    assert_eq!(billing.bill_to_name, legal.legal_name);
    assert_eq!(billing.address, Some(paris()));
    assert_eq!(billing.currency, "");
    let euros = update_billing(
        &founder,
        BillingProfile {
            currency: "EUR".into(),
            ..billing.clone()
        },
        &["currency"],
    )
    .await?;
    assert_eq!(euros.currency, "EUR");
    let dollars = status(
        update_billing(
            &founder,
            BillingProfile {
                currency: "USD".into(),
                ..euros.clone()
            },
            &["currency"],
        )
        .await,
    );
    assert_eq!(
        (dollars.code(), reason(&dollars)),
        (Code::FailedPrecondition, "CURRENCY_FIXED".to_owned())
    );
    let stale = status(
        update_billing(
            &founder,
            BillingProfile {
                po_number: "PO-1".into(),
                ..billing.clone()
            },
            &["po_number"],
        )
        .await,
    );
    assert_eq!(stale.code(), Code::Aborted);

    let billing_admin = h.member_with(&founder, &["billing_admin"]).await?;
    let taxed = update_billing(
        &billing_admin,
        BillingProfile {
            tax_id: "FR-TAX-1".into(),
            vat_id: "FR40303265045".into(),
            ..euros.clone()
        },
        &["tax_id", "vat_id"],
    )
    .await?;
    assert_eq!(taxed.tax_id, "FR-TAX-1");
    assert_eq!(taxed.vat_id, "FR40303265045");
    assert_eq!(taxed.currency, "EUR");

    let admin_agent = h.member_with(&founder, &["admin_agent"]).await?;
    let vat = update_billing(
        &admin_agent,
        BillingProfile {
            vat_id: "FR83404833048".into(),
            etag: String::new(),
            ..taxed.clone()
        },
        &["vat_id"],
    )
    .await?;
    assert_eq!(vat.vat_id, "FR83404833048");
    assert_eq!(vat.tax_id, "FR-TAX-1");
    let po = status(
        update_billing(
            &admin_agent,
            BillingProfile {
                po_number: "PO-2".into(),
                etag: String::new(),
                ..vat.clone()
            },
            &["po_number"],
        )
        .await,
    );
    assert_eq!(po.code(), Code::PermissionDenied);
    let viewer = h.member_with(&founder, &["mpn_partner_admin"]).await?;
    assert_eq!(
        code(get_billing(&viewer, &viewer.account).await),
        Code::PermissionDenied
    );
    // The viewer reads the company profile but cannot change it.
    assert_eq!(
        code(
            update_company(
                &viewer,
                CompanyProfile {
                    etag: String::new(),
                    ..updated.clone()
                },
                &["company_size"],
            )
            .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(get_billing(&founder, &founder.account).await?, vat);

    // Identifiers: the global id and every location id.
    let lyon = founder.add_location("Contoso Lyon").await?;
    let ids = get_identifiers(&founder).await?;
    assert_eq!(ids.name, format!("{}/identifiers", founder.account));
    assert_eq!(ids.global_partner_id, legal.global_partner_id);
    let locations: Vec<_> = ids
        .location_partner_ids
        .iter()
        .map(|l| (l.location.clone(), l.partner_id.clone()))
        .collect();
    assert_eq!(
        locations,
        [
            (hq.name.clone(), hq.partner_id.clone()),
            (lyon.name.clone(), lyon.partner_id.clone())
        ]
    );
    assert!(ids.publishers.is_empty());
    assert_eq!(ids.seller_id, "");

    // Publishers: chosen ids, unique platform-wide.
    let publisher_id = format!("contoso-{}", unique());
    let publisher = add_publisher(&founder, &publisher_id, &lyon.name).await?;
    assert_eq!(publisher.publisher_id, publisher_id);
    assert_eq!(publisher.location, lyon.name);
    let ids = get_identifiers(&founder).await?;
    assert_eq!(ids.publishers, vec![publisher.clone()]);
    assert!(
        ids.seller_id.len() == 8 && ids.seller_id.bytes().all(|b| b.is_ascii_digit()),
        "{:?}",
        ids.seller_id
    );
    let again = status(add_publisher(&founder, &publisher_id, &hq.name).await);
    assert_eq!(again.code(), Code::AlreadyExists);
    let (other, other_enrolled) = h.enrolled_founder().await?;
    let other_hq = other_enrolled.headquarters.unwrap_or_default();
    let elsewhere = status(add_publisher(&other, &publisher_id, &other_hq.name).await);
    assert_eq!(elsewhere.code(), Code::AlreadyExists);
    let foreign_location =
        status(add_publisher(&other, &format!("fabrikam-{}", unique()), &hq.name).await);
    assert_eq!(foreign_location.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&foreign_location), ["publisher.location"]);
    // A location id of another account under one's own account name.
    let disguised = format!("{}/locations/{}", other.account, location_id(&lyon.name));
    let disguised =
        status(add_publisher(&other, &format!("fabrikam-{}", unique()), &disguised).await);
    assert_eq!(disguised.code(), Code::InvalidArgument);
    let malformed = status(add_publisher(&founder, "Bad_Id", &lyon.name).await);
    assert_eq!(violated_fields(&malformed), ["publisher.publisher_id"]);
    let second_seller = get_identifiers(&founder).await?.seller_id;
    assert_eq!(
        second_seller, ids.seller_id,
        "the seller id is assigned once"
    );
    h.stop().await
}

// ---------------------------------------------------------------------------
// 6. Merge step
// ---------------------------------------------------------------------------

#[tokio::test]
async fn merge_step_moves_locations_and_archives_the_source() -> anyhow::Result<()> {
    let h = start_with_service_account(&[MERGE_APPLY]).await?;
    let service = service_token(&h).await?;
    let (target, target_enrolled) = h.enrolled_founder().await?;
    let (source, source_enrolled) = h.enrolled_founder().await?;
    let target_hq = target_enrolled.headquarters.unwrap_or_default();
    let source_global = source_enrolled
        .legal_profile
        .unwrap_or_default()
        .global_partner_id;
    source.add_location("Contoso Lyon").await?;
    let source_locations = list_locations(&source, &source.account).await?;
    assert_eq!(source_locations.len(), 2);
    let mut tap = h.tap().await?;

    let merge_id = format!("merge-{}", unique());
    let request = ApplyMergeRequest {
        merge_id: merge_id.clone(),
        source_account: source.account.clone(),
        target_account: target.account.clone(),
    };
    let mut merges = ProfileMergeServiceClient::new(h.profile());

    // Users cannot apply a merge, not even a Global admin of both sides.
    for user in [&target, &source] {
        assert_eq!(
            code(merges.apply_merge(user.req(request.clone())).await),
            Code::PermissionDenied
        );
    }

    let applied = merges
        .apply_merge(with_token(&service, request.clone())?)
        .await?
        .into_inner();
    assert_eq!(
        applied,
        ApplyMergeResponse {
            locations_moved: 2,
            already_applied: false,
        }
    );

    // The target now has the source's locations with their partner ids,
    // none of them its headquarters.
    let now = list_locations(&target, &target.account).await?;
    assert_eq!(now.len(), 3, "{now:?}");
    assert_eq!(now[0].name, target_hq.name);
    assert!(now[0].headquarters);
    let headquarters: Vec<_> = now.iter().filter(|l| l.headquarters).collect();
    assert_eq!(headquarters.len(), 1, "{now:?}");
    let mut moved: Vec<_> = now[1..]
        .iter()
        .map(|l| {
            (
                location_id(&l.name).to_owned(),
                l.partner_id.clone(),
                l.business_name.clone(),
                l.headquarters,
            )
        })
        .collect();
    moved.sort();
    let mut expected: Vec<_> = source_locations
        .iter()
        .map(|l| {
            (
                location_id(&l.name).to_owned(),
                l.partner_id.clone(),
                l.business_name.clone(),
                false,
            )
        })
        .collect();
    expected.sort();
    assert_eq!(moved, expected);
    for l in &now[1..] {
        assert!(
            l.name
                .starts_with(&format!("{}/locations/", target.account)),
            "{}",
            l.name
        );
        let read = target
            .locations()
            .get_location(target.req(GetLocationRequest {
                name: l.name.clone(),
            }))
            .await?
            .into_inner();
        assert_eq!(&read, l);
    }

    // The source is archived.
    let archived = status(get_legal(&source, &source.legal_profile_name()).await);
    assert_eq!(
        (archived.code(), reason(&archived)),
        (Code::NotFound, "NOT_ENROLLED".to_owned())
    );
    assert_eq!(
        code(list_locations(&source, &source.account).await),
        Code::NotFound
    );
    assert_eq!(code(lookup(&target, &source_global).await), Code::NotFound);
    for l in &source_locations {
        let refused = status(lookup(&target, &l.partner_id).await);
        assert_eq!(
            (refused.code(), reason(&refused)),
            (Code::InvalidArgument, "LOCATION_PARTNER_ID".to_owned())
        );
    }
    let target_global = lookup(
        &source,
        &get_legal(&target, &target.legal_profile_name())
            .await?
            .global_partner_id,
    )
    .await?;
    assert_eq!(target_global.account, target.account);
    assert_eq!(target_global.location_count, 3);

    // Applying the same merge again changes nothing.
    let again = merges
        .apply_merge(with_token(&service, request.clone())?)
        .await?
        .into_inner();
    assert_eq!(
        again,
        ApplyMergeResponse {
            locations_moved: 2,
            already_applied: true,
        }
    );
    assert_eq!(list_locations(&target, &target.account).await?, now);
    // Its id with other accounts is refused.
    let (third, _) = h.enrolled_founder().await?;
    let reused = status(
        merges
            .apply_merge(with_token(
                &service,
                ApplyMergeRequest {
                    source_account: third.account.clone(),
                    ..request.clone()
                },
            )?)
            .await,
    );
    assert_eq!(
        (reused.code(), reason(&reused)),
        (Code::FailedPrecondition, "MERGE_ID_REUSED".to_owned())
    );

    // One ProfileMerged event.
    let events = tap.drain(common::QUIET).await?;
    let merged = decoded::<ProfileMerged>(&events);
    assert_eq!(merged.len(), 1, "{merged:?}");
    assert_eq!(merged[0].merge_id, merge_id);
    assert_eq!(merged[0].source_account, source.account);
    assert_eq!(merged[0].target_account, target.account);
    let mut event_locations = merged[0].locations.clone();
    event_locations.sort();
    let mut moved_names: Vec<_> = now[1..].iter().map(|l| l.name.clone()).collect();
    moved_names.sort();
    assert_eq!(event_locations, moved_names);
    tap.close().await;
    h.stop().await
}

// ---------------------------------------------------------------------------
// 7. Activity log
// ---------------------------------------------------------------------------

#[tokio::test]
async fn profile_activity_lists_changes_newest_first() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (founder, enrolled) = h.enrolled_founder().await?;
    let legal = enrolled.legal_profile.unwrap_or_default();
    update_legal(
        &founder,
        LegalProfile {
            legal_name: "Contoso Europe SAS".into(),
            ..legal
        },
        &["legal_name"],
    )
    .await?;
    let lyon = founder.add_location("Contoso Lyon").await?;

    let (all, next) = list_activity(&founder, &founder.account, 0, "").await?;
    assert!(next.is_empty());
    let actions: Vec<_> = all.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "location.added",
            "legal_profile.updated",
            "profile.enrolled"
        ]
    );
    for activity in &all {
        assert_eq!(activity.actor, founder.user, "{activity:?}");
        assert!(
            activity
                .name
                .starts_with(&format!("{}/profileActivities/", founder.account)),
            "{}",
            activity.name
        );
    }
    assert_eq!(all[0].target, lyon.name);
    assert!(
        all[1].old_value.contains("Contoso France SAS"),
        "{:?}",
        all[1]
    );
    assert!(
        all[1].new_value.contains("Contoso Europe SAS"),
        "{:?}",
        all[1]
    );
    let times: Vec<_> = all
        .iter()
        .map(|a| a.create_time.unwrap_or_default())
        .map(|t| (t.seconds, t.nanos))
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");

    // One at a time, the pages give the same list.
    let mut paged = Vec::new();
    let mut token = String::new();
    let mut first_token = String::new();
    for _ in 0..10 {
        let (page, next) = list_activity(&founder, &founder.account, 1, &token).await?;
        assert!(page.len() <= 1);
        paged.extend(page);
        if next.is_empty() {
            break;
        }
        if first_token.is_empty() {
            first_token = next.clone();
        }
        token = next;
    }
    assert_eq!(paged, all);

    // Another account: not found with its token, and a page token of this
    // account's list is no page token of its own list.
    let (stranger, _) = h.enrolled_founder().await?;
    assert_eq!(
        code(list_activity(&stranger, &founder.account, 0, "").await),
        Code::NotFound
    );
    let foreign = status(list_activity(&stranger, &stranger.account, 1, &first_token).await);
    assert_eq!(foreign.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&foreign), ["page_token"]);
    let negative = status(list_activity(&founder, &founder.account, -1, "").await);
    assert_eq!(violated_fields(&negative), ["page_size"]);
    // Without the legal read permission, no activity.
    let reporter = h.member_with(&founder, &["report_viewer"]).await?;
    assert_eq!(
        code(list_activity(&reporter, &founder.account, 0, "").await),
        Code::PermissionDenied
    );
    h.stop().await
}

// ---------------------------------------------------------------------------
// Bugs found while writing the tests above
// ---------------------------------------------------------------------------

/// Rounds of a race: each round is a fresh account, and the race is lost in
/// roughly one round out of seven on a 2-core machine.
const RACE_ROUNDS: usize = 30;

#[tokio::test]
async fn concurrent_first_tenants_make_only_one_primary() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    for round in 0..RACE_ROUNDS {
        let (founder, _) = h.enrolled_founder().await?;
        let (x, y) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
        // Two connections, so that the calls really run side by side.
        let request = |tenant_id: &str, domain: &str| {
            founder.req(AssociateTenantRequest {
                parent: founder.account.clone(),
                tenant: Some(Tenant {
                    tenant_id: tenant_id.into(),
                    domain: domain.into(),
                    kind: TenantKind::Commercial.into(),
                    ..Tenant::default()
                }),
            })
        };
        let (mut one, mut two) = (
            TenantServiceClient::new(h.profile()),
            TenantServiceClient::new(h.profile()),
        );
        let (a, b) = tokio::join!(
            one.associate_tenant(request(&x, "fabrikam.com")),
            two.associate_tenant(request(&y, "litware.com")),
        );
        a?;
        b?;
        let primaries: Vec<_> = list_tenants(&founder)
            .await?
            .into_iter()
            .filter(|t| t.primary)
            .map(|t| t.domain)
            .collect();
        assert_eq!(
            primaries.len(),
            1,
            "round {round}: {} has primary tenants {primaries:?}",
            founder.account
        );
    }
    h.stop().await
}

#[tokio::test]
async fn concurrent_first_writes_with_the_same_etag_let_only_one_through() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    for round in 0..RACE_ROUNDS {
        let (founder, _) = h.enrolled_founder().await?;
        let support_name = format!("{}/supportProfile", founder.account);
        let support = |email: &str| {
            founder.req(UpdateSupportProfileRequest {
                support_profile: Some(SupportProfile {
                    name: support_name.clone(),
                    email: email.into(),
                    etag: etag_zero(),
                    ..SupportProfile::default()
                }),
                update_mask: mask(&["email"]),
            })
        };
        let (mut one, mut two) = (
            SupportProfileServiceClient::new(h.profile()),
            SupportProfileServiceClient::new(h.profile()),
        );
        let (a, b) = tokio::join!(
            one.update_support_profile(support("one@contoso.fr")),
            two.update_support_profile(support("two@contoso.fr")),
        );
        let codes = [
            a.as_ref().map_or_else(Status::code, |_| Code::Ok),
            b.as_ref().map_or_else(Status::code, |_| Code::Ok),
        ];
        let mut sorted = codes;
        sorted.sort_by_key(|c| *c as i32);
        assert_eq!(
            sorted,
            [Code::Ok, Code::Aborted],
            "round {round}: support profile, both writers held etag \"0\""
        );

        let company_name = format!("{}/companyProfile", founder.account);
        let company = |region: &str| {
            founder.req(UpdateCompanyProfileRequest {
                company_profile: Some(CompanyProfile {
                    name: company_name.clone(),
                    operating_regions: vec![region.into()],
                    etag: etag_zero(),
                    ..CompanyProfile::default()
                }),
                update_mask: mask(&["operating_regions"]),
            })
        };
        let (mut one, mut two) = (
            CompanyProfileServiceClient::new(h.profile()),
            CompanyProfileServiceClient::new(h.profile()),
        );
        let (a, b) = tokio::join!(
            one.update_company_profile(company("FR")),
            two.update_company_profile(company("DE")),
        );
        let mut sorted = [
            a.as_ref().map_or_else(Status::code, |_| Code::Ok),
            b.as_ref().map_or_else(Status::code, |_| Code::Ok),
        ];
        sorted.sort_by_key(|c| *c as i32);
        assert_eq!(
            sorted,
            [Code::Ok, Code::Aborted],
            "round {round}: company profile, both writers held etag \"0\""
        );
    }
    h.stop().await
}

/// The etag of a support or company profile never written.
fn etag_zero() -> String {
    "\"0\"".to_owned()
}

#[tokio::test]
async fn a_verification_decided_during_suspension_applies_on_reactivation() -> anyhow::Result<()> {
    let h = start_with_service_account(&[SET_STATE, READ_PROGRAMS, READ_LEGAL]).await?;
    let service = service_token(&h).await?;
    let (founder, _) = h.enrolled_founder().await?;
    // The suspended founder's tokens are refused: an operator watches.
    let watcher = Actor {
        token: service.clone(),
        ..founder.clone()
    };
    verification_pending(&founder).await?;
    let mut accounts = AccountServiceClient::new(h.identity());
    let set = |state: AccountState| SetAccountStateRequest {
        name: founder.account.clone(),
        state: state.into(),
        reason: "test".into(),
    };
    accounts
        .set_account_state(with_token(&service, set(AccountState::Suspended))?)
        .await?;
    programs_become(
        &watcher,
        &[(ProgramKind::Partner, ProgramStatus::Suspended)],
    )
    .await?;

    // Verification authorizes the account while it is suspended: mirrored
    // into the legal profile, the program stays suspended.
    publish(
        &h.suite,
        &verification_event(
            &founder.account,
            VerificationStatus::Pending,
            VerificationStatus::Authorized,
        ),
    )
    .await?;
    eventually(EVENTUAL, || async {
        let profile = get_legal(&watcher, &founder.legal_profile_name())
            .await
            .ok()?;
        (profile.verification_status() == VerificationStatus::Authorized).then_some(())
    })
    .await?;
    assert_eq!(
        program_statuses(&watcher).await?,
        [(ProgramKind::Partner, ProgramStatus::Suspended)]
    );

    // Reactivated, the authorized partner with its agreement accepted is
    // ACTIVE, not waiting for a verification that already happened.
    accounts
        .set_account_state(with_token(&service, set(AccountState::Active))?)
        .await?;
    programs_become(&watcher, &[(ProgramKind::Partner, ProgramStatus::Active)]).await?;
    h.stop().await
}

#[tokio::test]
async fn an_older_verification_status_never_overwrites_a_newer_one() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (a, _) = h.enrolled_founder().await?;
    verification_pending(&a).await?;
    publish(
        &h.suite,
        &verification_event(
            &a.account,
            VerificationStatus::Pending,
            VerificationStatus::Authorized,
        ),
    )
    .await?;
    programs_become(&a, &[(ProgramKind::Partner, ProgramStatus::Active)]).await?;
    // A rejection decided an hour earlier, delivered late (a retried event).
    let mut late = verification_event(
        &a.account,
        VerificationStatus::Pending,
        VerificationStatus::Rejected,
    );
    let mut event = VerificationStatusChanged::decode(late.payload.as_slice())?;
    event.change_time = Some(partnerhub_platform::time::timestamp(
        Utc::now() - chrono::Duration::hours(1),
    ));
    late.payload = event.encode_to_vec();
    publish(&h.suite, &late).await?;
    tokio::time::sleep(common::QUIET).await;
    assert_eq!(
        get_legal(&a, &a.legal_profile_name())
            .await?
            .verification_status(),
        VerificationStatus::Authorized
    );
    programs_become(&a, &[(ProgramKind::Partner, ProgramStatus::Active)]).await?;
    h.stop().await
}
