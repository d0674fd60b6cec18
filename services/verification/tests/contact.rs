//! Verification's contact, address and directory checks end to end, through
//! the gRPC API of the whole suite (real PostgreSQL, RabbitMQ and the suite's
//! SMTP server): only what changed in a legal profile is checked again; the
//! email-domain rules; resending and expiring the mailed token, which is
//! stored hashed and never travels on the event bus; address validation;
//! DUNS lookup; and the suspension of accounts rejected for too long.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{
    by_duns, cases_of, check_of, enroll, enroll_company, error_reason, ops_token, refusal,
    verification, violated_fields, wait_checks_where, wait_status, with_token,
};
use partnerhub_proto::identity::v1::{
    AccountState, ChangePasswordRequest, CreateUserRequest, GetAccountRequest, RoleAssignment,
    SignInRequest, account_service_client::AccountServiceClient,
    auth_service_client::AuthServiceClient, member_service_client::MemberServiceClient,
};
use partnerhub_proto::profile::v1::{
    Address, Contact, EnrollRequest, GetLegalProfileRequest, LegalProfile, ListProgramsRequest,
    ProgramKind, ProgramStatus, UpdateLegalProfileRequest,
    enrollment_service_client::EnrollmentServiceClient,
    legal_profile_service_client::LegalProfileServiceClient,
    program_service_client::ProgramServiceClient,
};
use partnerhub_proto::verification::v1::{
    AccountSuspensionRequested, Check, CheckKind, CheckStatus, ConfirmEmailOwnershipRequest,
    DecideCheckRequest, Decision, GetVerificationStatusRequest, LookupDunsRequest,
    LookupDunsResponse, PostalAddress, ResendVerificationEmailRequest,
    ResendVerificationEmailResponse, Status as State, SubStatus, ValidateAddressRequest,
    ValidateAddressResponse,
};
use partnerhub_testkit::clients::{self, Company, FOUNDER_PASSWORD};
use partnerhub_testkit::{
    EventTap, PORTAL_URL, Suite, SuiteOptions, TappedEvent, eventually, unique,
};
use prost::{Message, Name};
use sqlx::PgPool;
use tonic::Code;
use uuid::Uuid;

/// The subject of the email-ownership mail starts so.
const CONFIRM_SUBJECT: &str = "Confirm the primary contact email of";
/// How long a mail or a cross-service effect may take.
const WAIT: Duration = Duration::from_secs(20);
/// The suite's suspension job looks every 200 ms: this is several periods.
const SEVERAL_PERIODS: Duration = Duration::from_millis(1500);

// ---- Helpers of this file. ----

async fn start() -> Suite {
    let suite = Suite::start().await.unwrap();
    suite.wait_serving().await.unwrap();
    suite
}

/// The verification database of the suite.
async fn verification_db(suite: &Suite) -> PgPool {
    suite.pool("verification").await.unwrap()
}

fn account_uuid(company: &Company) -> Uuid {
    company.account_id().parse().unwrap()
}

/// The domain of the founder's sign-in email (`contoso.com`).
fn founder_domain(company: &Company) -> String {
    company.email.rsplit('@').next().unwrap().to_owned()
}

/// The token of the `{PORTAL_URL}/verification/email?token=` link in `text`.
fn token_in(text: &str) -> String {
    let start = format!("{PORTAL_URL}/verification/email?token=");
    let at = text
        .find(&start)
        .unwrap_or_else(|| panic!("no link {start} in {text}"));
    text[at + start.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// The token of the next email-ownership mail that reaches `to` (other mails
/// to `to` are left for later).
async fn token_mail(suite: &Suite, to: &str) -> String {
    let mail = suite
        .smtp
        .next_matching(to, |m| m.subject.starts_with(CONFIRM_SUBJECT), WAIT)
        .await
        .unwrap_or_else(|e| panic!("no email-ownership mail to {to}: {e:#}"));
    let token = token_in(&mail.text);
    assert!(token.len() >= 40, "a short token in {}", mail.text);
    assert_eq!(token, token_in(&mail.html), "text and HTML links differ");
    token
}

async fn confirm(suite: &Suite, token: &str, account: &str) -> Result<Check, tonic::Status> {
    verification(suite)
        .confirm_email_ownership(ConfirmEmailOwnershipRequest {
            token: token.to_owned(),
            account: account.to_owned(),
        })
        .await
        .map(|r| r.into_inner().check.unwrap_or_default())
}

async fn resend(
    suite: &Suite,
    token: &str,
    account: &str,
) -> Result<tonic::Response<ResendVerificationEmailResponse>, tonic::Status> {
    verification(suite)
        .resend_verification_email(with_token(
            token,
            ResendVerificationEmailRequest {
                account: account.to_owned(),
            },
        ))
        .await
}

/// Asserts `status` is INVALID_ARGUMENT with the single violation `field`,
/// its message containing `words`.
fn assert_invalid(status: &tonic::Status, field: &str, words: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(violated_fields(status), [field], "{status:?}");
    assert!(
        status.message().contains(words),
        "{words:?} not in {:?}",
        status.message()
    );
}

async fn legal_profile(suite: &Suite, company: &Company) -> LegalProfile {
    LegalProfileServiceClient::new(Suite::channel(suite.profile).unwrap())
        .get_legal_profile(with_token(
            &company.token,
            GetLegalProfileRequest {
                name: format!("{}/legalProfile", company.account),
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

/// Changes the `paths` of the company's legal profile to those of `change`,
/// reading it again when its etag moved in between (profile mirrors the
/// verification status into it as events arrive).
async fn update_legal(suite: &Suite, company: &Company, change: LegalProfile, paths: &[&str]) {
    update_legal_as(suite, company, &company.token, change, paths).await;
}

/// [`update_legal`] as the member whose access token is `token`.
async fn update_legal_as(
    suite: &Suite,
    company: &Company,
    token: &str,
    change: LegalProfile,
    paths: &[&str],
) {
    let mut attempts = 0;
    loop {
        let current = legal_profile(suite, company).await;
        let updated = LegalProfileServiceClient::new(Suite::channel(suite.profile).unwrap())
            .update_legal_profile(with_token(
                token,
                UpdateLegalProfileRequest {
                    legal_profile: Some(LegalProfile {
                        name: current.name,
                        etag: current.etag,
                        ..change.clone()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
                    }),
                },
            ))
            .await;
        match updated {
            Ok(_) => return,
            Err(e) if e.code() == Code::Aborted && attempts < 10 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("UpdateLegalProfile {paths:?} failed: {e:?}"),
        }
    }
}

/// Waits until the account has `count` cases, and returns them newest first
/// (with their checks' transitions).
async fn wait_cases(
    suite: &Suite,
    company: &Company,
    count: usize,
) -> Vec<partnerhub_proto::verification::v1::Verification> {
    eventually(WAIT, || async {
        let cases = cases_of(suite, company, true).await;
        (cases.len() == count && cases.iter().all(|c| !c.checks.is_empty())).then_some(cases)
    })
    .await
    .unwrap_or_else(|e| panic!("{} never had {count} cases: {e:#}", company.account))
}

fn kinds(checks: &[Check]) -> Vec<CheckKind> {
    let mut kinds: Vec<CheckKind> = checks.iter().map(Check::kind).collect();
    kinds.sort();
    kinds
}

use partnerhub_testkit::errors::retry_delay;

fn seconds_from_now(t: Option<prost_types::Timestamp>) -> i64 {
    t.expect("a time").seconds - chrono::Utc::now().timestamp()
}

// ---- 1. Only what changed is checked again. ----

#[tokio::test]
async fn a_legal_profile_change_checks_again_only_what_changed() {
    let suite = start().await;
    let contoso = enroll(&suite, "Contoso", by_duns("Contoso SAS")).await;

    // The enrollment: the four checks, only the email waits.
    let checks = wait_checks_where(&suite, &contoso, "the enrollment's checks", |c| {
        c.len() == 4
    })
    .await;
    assert_eq!(
        kinds(&checks),
        [
            CheckKind::EmailOwnership,
            CheckKind::EmailDomain,
            CheckKind::Employment,
            CheckKind::Business
        ]
    );
    assert_eq!(
        check_of(&checks, CheckKind::EmailOwnership).status(),
        CheckStatus::ActionRequired
    );
    assert_eq!(
        check_of(&checks, CheckKind::EmailDomain).status(),
        CheckStatus::Passed
    );
    let employment = check_of(&checks, CheckKind::Employment);
    assert_eq!(employment.status(), CheckStatus::Passed, "{employment:?}");
    assert_eq!(employment.reason, "DOMAIN_OWNED");
    assert_eq!(
        check_of(&checks, CheckKind::Business).reason,
        "DIRECTORY_MATCH"
    );
    wait_status(
        &suite,
        &contoso,
        (State::Pending, SubStatus::EmailOwnership),
    )
    .await;
    let founder_token = token_mail(&suite, &contoso.email).await;

    // Another employee at the founder's domain becomes the primary contact.
    let grace = format!("grace.{}@{}", unique(), founder_domain(&contoso));
    update_legal(
        &suite,
        &contoso,
        LegalProfile {
            primary_contact: Some(Contact {
                given_name: "Grace".into(),
                family_name: "Hopper".into(),
                email: grace.clone(),
                ..Contact::default()
            }),
            ..LegalProfile::default()
        },
        &["primary_contact"],
    )
    .await;
    let cases = wait_cases(&suite, &contoso, 2).await;
    let (contact_case, enrollment) = (&cases[0], &cases[1]);
    assert_eq!(contact_case.trigger, "LEGAL_PROFILE", "{cases:?}");
    assert_eq!(contact_case.state, "OPEN");
    assert_eq!(
        kinds(&contact_case.checks),
        [
            CheckKind::EmailOwnership,
            CheckKind::EmailDomain,
            CheckKind::Employment
        ],
        "only the contact's checks: {contact_case:?}"
    );
    let new_email = check_of(&contact_case.checks, CheckKind::EmailOwnership);
    assert_eq!(new_email.status(), CheckStatus::ActionRequired);
    assert!(new_email.message.contains(&grace), "{new_email:?}");
    assert_eq!(
        check_of(&contact_case.checks, CheckKind::EmailDomain).status(),
        CheckStatus::Passed
    );
    assert_eq!(
        check_of(&contact_case.checks, CheckKind::Employment).reason,
        "DOMAIN_OWNED"
    );
    // The enrollment's email check was replaced; its other checks stand,
    // so the enrollment case is done.
    assert_eq!(enrollment.trigger, "ENROLLMENT");
    assert_eq!(
        check_of(&enrollment.checks, CheckKind::EmailOwnership).reason,
        "SUPERSEDED"
    );
    assert_eq!(
        check_of(&enrollment.checks, CheckKind::Business).status(),
        CheckStatus::Passed
    );
    assert_eq!(enrollment.state, "CLOSED", "{enrollment:?}");
    wait_status(
        &suite,
        &contoso,
        (State::Pending, SubStatus::EmailOwnership),
    )
    .await;

    // The new contact gets a new token; the founder's is refused as replaced.
    let grace_token = token_mail(&suite, &grace).await;
    assert_ne!(grace_token, founder_token);
    assert!(
        !suite
            .smtp
            .received()
            .iter()
            .any(|m| m.is_for(&contoso.email) && m.subject.starts_with(CONFIRM_SUBJECT)),
        "the old contact got another token"
    );
    let replaced = confirm(&suite, &founder_token, &contoso.account)
        .await
        .expect_err("the replaced token is refused");
    assert_invalid(&replaced, "token", "replaced");
    let confirmed = confirm(&suite, &grace_token, &contoso.account)
        .await
        .unwrap();
    assert_eq!(confirmed.status(), CheckStatus::Passed);
    assert_eq!(confirmed.name, new_email.name);
    wait_status(&suite, &contoso, (State::Authorized, SubStatus::Decision)).await;

    // Only the legal name changes: only the business is checked again (and
    // the directory's entry for the DUNS number has another name).
    update_legal(
        &suite,
        &contoso,
        LegalProfile {
            legal_name: "Tailspin Toys SAS".into(),
            ..LegalProfile::default()
        },
        &["legal_name"],
    )
    .await;
    let cases = wait_cases(&suite, &contoso, 3).await;
    let name_case = &cases[0];
    assert_eq!(name_case.trigger, "LEGAL_PROFILE");
    assert_eq!(
        kinds(&name_case.checks),
        [CheckKind::Business],
        "{name_case:?}"
    );
    let business = &name_case.checks[0];
    assert_eq!(
        business.status(),
        CheckStatus::ActionRequired,
        "{business:?}"
    );
    assert!(
        ["NO_MATCH", "WEAK_MATCH"].contains(&business.reason.as_str()),
        "{business:?}"
    );
    assert!(!business.requested_documents.is_empty(), "{business:?}");
    wait_status(
        &suite,
        &contoso,
        (State::Pending, SubStatus::BusinessVerification),
    )
    .await;

    // The history moved: the contact case's email check went from waiting to
    // confirmed, and the cases closed as their checks passed.
    let cases = cases_of(&suite, &contoso, true).await;
    assert_eq!(
        cases.iter().map(|c| c.state.as_str()).collect::<Vec<_>>(),
        ["OPEN", "CLOSED", "CLOSED"],
        "{cases:?}"
    );
    let email = check_of(&cases[1].checks, CheckKind::EmailOwnership);
    let steps: Vec<(CheckStatus, CheckStatus, &str)> = email
        .history
        .iter()
        .map(|t| (t.old_status(), t.new_status(), t.reason.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            (
                CheckStatus::Pending,
                CheckStatus::ActionRequired,
                "CONFIRM_EMAIL"
            ),
            (
                CheckStatus::ActionRequired,
                CheckStatus::Passed,
                "EMAIL_CONFIRMED"
            ),
        ],
        "{email:?}"
    );
    assert!(cases[1].close_time.is_some() && cases[2].close_time.is_some());
    let db = verification_db(&suite).await;
    let statuses: Vec<(String, String)> = sqlx::query_as(
        "SELECT old_status, status FROM status_history WHERE account_id = $1 ORDER BY id",
    )
    .bind(account_uuid(&contoso))
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(
        statuses,
        [
            ("NONE".to_owned(), "PENDING".to_owned()),
            ("PENDING".to_owned(), "AUTHORIZED".to_owned()),
            ("AUTHORIZED".to_owned(), "PENDING".to_owned()),
        ]
    );
    db.close().await;
    suite.stop().await.unwrap();
}

/// A member of `company` signed in with `email` (any domain), with `roles`
/// company-wide: their access token.
async fn member_with_email(
    suite: &Suite,
    company: &Company,
    email: &str,
    roles: &[&str],
) -> String {
    let created = MemberServiceClient::new(Suite::channel(suite.identity).unwrap())
        .create_user(with_token(
            &company.token,
            CreateUserRequest {
                parent: company.account.clone(),
                email: email.to_owned(),
                given_name: "Alan".into(),
                family_name: "Turing".into(),
                roles: roles
                    .iter()
                    .map(|r| RoleAssignment {
                        role: (*r).into(),
                        locations: Vec::new(),
                    })
                    .collect(),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let mut auth = AuthServiceClient::new(Suite::channel(suite.identity).unwrap());
    let first = auth
        .sign_in(SignInRequest {
            email: email.to_owned(),
            password: created.temporary_password.clone(),
            account: company.account.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    auth.change_password(with_token(
        &first.access_token.unwrap_or_default().token,
        ChangePasswordRequest {
            current_password: created.temporary_password,
            new_password: "difference engine 1822".into(),
        },
    ))
    .await
    .unwrap()
    .into_inner()
    .access_token
    .unwrap_or_default()
    .token
}

fn contact(given_name: &str, email: &str) -> LegalProfile {
    LegalProfile {
        primary_contact: Some(Contact {
            given_name: given_name.into(),
            family_name: "Hopper".into(),
            email: email.to_owned(),
            ..Contact::default()
        }),
        ..LegalProfile::default()
    }
}

/// The company's domains are the enrolling founder's sign-in domain (with
/// its tenants and website), whoever changes the primary contact later: an
/// Account admin signed in at an outside firm's domain neither removes the
/// founder's domain nor makes the firm's domain the company's.
#[tokio::test]
async fn the_company_domain_does_not_depend_on_who_changes_the_contact() {
    let suite = start().await;
    let contoso = enroll(&suite, "Contoso", by_duns("Contoso SAS")).await;
    wait_checks_where(&suite, &contoso, "the enrollment's checks", |c| {
        c.len() == 4
    })
    .await;
    let adviser_domain = format!("advisers-{}.example", unique());
    let adviser = member_with_email(
        &suite,
        &contoso,
        &format!("alan.{}@{adviser_domain}", unique()),
        &["account_admin"],
    )
    .await;

    // Another employee at the founder's domain: the company's.
    let grace = format!("grace.{}@{}", unique(), founder_domain(&contoso));
    update_legal_as(
        &suite,
        &contoso,
        &adviser,
        contact("Grace", &grace),
        &["primary_contact"],
    )
    .await;
    let cases = wait_cases(&suite, &contoso, 2).await;
    let employment = check_of(&cases[0].checks, CheckKind::Employment);
    assert_eq!(
        (employment.status(), employment.reason.as_str()),
        (CheckStatus::Passed, "DOMAIN_OWNED"),
        "the founder's domain stopped counting when {adviser_domain} changed the contact: {employment:?}"
    );

    // Someone at the adviser's own domain: not the company's.
    let mallory = format!("mallory.{}@{adviser_domain}", unique());
    update_legal_as(
        &suite,
        &contoso,
        &adviser,
        contact("Mallory", &mallory),
        &["primary_contact"],
    )
    .await;
    let cases = wait_cases(&suite, &contoso, 3).await;
    let employment = check_of(&cases[0].checks, CheckKind::Employment);
    assert_eq!(
        (employment.status(), employment.reason.as_str()),
        (CheckStatus::ActionRequired, "DOMAIN_NOT_OWNED"),
        "{adviser_domain} became the company's because its member changed the contact: {employment:?}"
    );
    suite.stop().await.unwrap();
}

// ---- 2. Email-domain rules. ----

#[tokio::test]
async fn free_mail_role_and_government_addresses_are_rejected() {
    let suite = start().await;
    for (name, local_and_domain, reason) in [
        ("Contoso", "ada.{u}@gmail.com", "FREE_MAIL_PROVIDER"),
        ("Fabrikam", "info@{domain}", "ROLE_MAILBOX"),
        ("Litware", "ada.{u}@finances.gouv.fr", "GOVERNMENT_DOMAIN"),
        (
            "Relecloud",
            "ada.{u}@relecloud.onmicrosoft.com",
            "NO_MAILBOX_DOMAIN",
        ),
    ] {
        let company = clients::sign_up(&suite, name).await.unwrap();
        let email = local_and_domain
            .replace("{u}", &unique())
            .replace("{domain}", &founder_domain(&company));
        let company = enroll_company(
            &suite,
            company,
            LegalProfile {
                primary_contact: Some(Contact {
                    given_name: "Ada".into(),
                    family_name: "Lovelace".into(),
                    email: email.clone(),
                    ..Contact::default()
                }),
                ..LegalProfile::default()
            },
        )
        .await;
        let checks = wait_checks_where(&suite, &company, "the enrollment's checks", |c| {
            c.len() == 4
        })
        .await;
        let domain = check_of(&checks, CheckKind::EmailDomain);
        assert_eq!(
            domain.status(),
            CheckStatus::Rejected,
            "{email}: {domain:?}"
        );
        assert_eq!(domain.reason, reason, "{email}: {domain:?}");
        assert!(!domain.message.is_empty(), "{domain:?}");
        // Employment asks for proof (it never waits on nobody); the mailbox
        // must still be confirmed.
        let employment = check_of(&checks, CheckKind::Employment);
        assert_eq!(
            employment.status(),
            CheckStatus::ActionRequired,
            "{employment:?}"
        );
        assert_eq!(employment.reason, "DOMAIN_NOT_OWNED");
        assert_eq!(
            check_of(&checks, CheckKind::EmailOwnership).status(),
            CheckStatus::ActionRequired
        );
        wait_status(&suite, &company, (State::Rejected, SubStatus::EmailDomain)).await;
        // The token still goes to that mailbox (notification never mails
        // onmicrosoft.com addresses: they have no mailboxes).
        if reason != "NO_MAILBOX_DOMAIN" {
            token_mail(&suite, &email).await;
        }
    }
    suite.stop().await.unwrap();
}

// ---- 3. Resending the mail. ----

#[tokio::test]
async fn the_email_is_resent_once_a_day_and_only_the_latest_token_works() {
    let suite = start().await;
    let contoso = enroll(&suite, "Contoso", by_duns("Contoso SAS")).await;
    let fabrikam = clients::sign_up(&suite, "Fabrikam").await.unwrap();
    wait_checks_where(&suite, &contoso, "the email check waits", |c| {
        c.iter().any(|c| {
            c.kind() == CheckKind::EmailOwnership && c.status() == CheckStatus::ActionRequired
        })
    })
    .await;
    let first = token_mail(&suite, &contoso.email).await;

    // Right after the first mail: too soon, retry in about 24 hours.
    let too_soon = refusal(resend(&suite, &contoso.token, &contoso.account).await);
    assert_eq!(too_soon.code(), Code::ResourceExhausted, "{too_soon:?}");
    assert_eq!(error_reason(&too_soon), "RESEND_TOO_SOON");
    let delay = retry_delay(&too_soon).expect("RetryInfo");
    assert!(
        delay <= Duration::from_secs(24 * 3600) && delay >= Duration::from_secs(24 * 3600 - 120),
        "{delay:?}"
    );

    // Another account's member cannot even see the account.
    let foreign = refusal(resend(&suite, &fabrikam.token, &contoso.account).await);
    assert_eq!(foreign.code(), Code::NotFound, "{foreign:?}");
    // An account with no email check waiting has nothing to resend.
    let nothing = refusal(resend(&suite, &fabrikam.token, &fabrikam.account).await);
    assert_eq!(nothing.code(), Code::FailedPrecondition, "{nothing:?}");
    assert_eq!(error_reason(&nothing), "NO_EMAIL_CHECK_PENDING");

    // A day passes (the token was mailed 25 hours ago).
    let db = verification_db(&suite).await;
    let moved = sqlx::query(
        "UPDATE email_tokens SET created_at = created_at - interval '25 hours' WHERE account_id = $1",
    )
    .bind(account_uuid(&contoso))
    .execute(&db)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(moved, 1);
    let resent = resend(&suite, &contoso.token, &contoso.account)
        .await
        .unwrap()
        .into_inner();
    let next = seconds_from_now(resent.next_allowed_time);
    assert!((24 * 3600 - 120..=24 * 3600).contains(&next), "{next}");
    let second = token_mail(&suite, &contoso.email).await;
    assert_ne!(second, first);
    // The new mail restarts the clock.
    let again = refusal(resend(&suite, &contoso.token, &contoso.account).await);
    assert_eq!(again.code(), Code::ResourceExhausted, "{again:?}");

    // The first token was replaced; the second one works.
    let replaced = confirm(&suite, &first, "").await.expect_err("replaced");
    assert_invalid(&replaced, "token", "replaced");
    let confirmed = confirm(&suite, &second, &contoso.account).await.unwrap();
    assert_eq!(confirmed.status(), CheckStatus::Passed);
    assert_eq!(confirmed.kind(), CheckKind::EmailOwnership);
    wait_status(&suite, &contoso, (State::Authorized, SubStatus::Decision)).await;

    // Nothing waits for a confirmation any more.
    let done = refusal(resend(&suite, &contoso.token, &contoso.account).await);
    assert_eq!(done.code(), Code::FailedPrecondition, "{done:?}");
    assert_eq!(error_reason(&done), "NO_EMAIL_CHECK_PENDING");
    db.close().await;
    suite.stop().await.unwrap();
}

// ---- 4. Tokens: expiry, storage, the bus. ----

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every stored email token of `account`, each row as JSON text.
async fn stored_tokens(db: &PgPool, account: Uuid) -> Vec<String> {
    sqlx::query_scalar("SELECT row_to_json(t)::text FROM email_tokens t WHERE account_id = $1")
        .bind(account)
        .fetch_all(db)
        .await
        .unwrap()
}

#[tokio::test]
async fn tokens_expire_are_stored_hashed_and_never_travel_on_the_bus() {
    let suite = start().await;
    let mut tap = EventTap::start(&suite.bus).await.unwrap();
    let contoso = enroll(&suite, "Contoso", by_duns("Contoso SAS")).await;
    let account = account_uuid(&contoso);
    let first = token_mail(&suite, &contoso.email).await;
    let db = verification_db(&suite).await;

    // Stored as its SHA-256, never as the text mailed; valid 72 hours.
    let rows = stored_tokens(&db, account).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        !rows[0].contains(&first),
        "plaintext token stored: {rows:?}"
    );
    let (hash_len, ttl): (i32, f64) = sqlx::query_as(
        "SELECT length(token_hash), extract(epoch FROM expires_at - created_at)::float8
         FROM email_tokens WHERE token_hash = $1",
    )
    .bind(partnerhub_platform::crypto::token_hash(&first))
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(hash_len, 32);
    assert!((ttl - 72.0 * 3600.0).abs() < 60.0, "{ttl}");

    // An expired token is refused, and stays unused.
    sqlx::query(
        "UPDATE email_tokens SET expires_at = now() - interval '1 minute' WHERE account_id = $1",
    )
    .bind(account)
    .execute(&db)
    .await
    .unwrap();
    let expired = confirm(&suite, &first, &contoso.account)
        .await
        .expect_err("expired");
    assert_invalid(&expired, "token", "expired");
    wait_status(
        &suite,
        &contoso,
        (State::Pending, SubStatus::EmailOwnership),
    )
    .await;

    // A new mail (a day later) brings a token that works.
    sqlx::query(
        "UPDATE email_tokens SET created_at = created_at - interval '25 hours' WHERE account_id = $1",
    )
    .bind(account)
    .execute(&db)
    .await
    .unwrap();
    resend(&suite, &contoso.token, &contoso.account)
        .await
        .unwrap();
    let second = token_mail(&suite, &contoso.email).await;
    let rows = stored_tokens(&db, account).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        assert!(
            !row.contains(&first) && !row.contains(&second),
            "plaintext token stored: {row}"
        );
    }
    confirm(&suite, &second, &contoso.account).await.unwrap();
    wait_status(&suite, &contoso, (State::Authorized, SubStatus::Decision)).await;

    // The whole story's events: none carries a token.
    let events: Vec<TappedEvent> = tap.drain(Duration::from_secs(2)).await.unwrap();
    let types: Vec<&str> = events.iter().map(|e| e.message_type.as_str()).collect();
    assert!(
        types.contains(&"partnerhub.verification.v1.CheckStatusChanged")
            && types.contains(&"partnerhub.verification.v1.VerificationStatusChanged"),
        "{types:?}"
    );
    for event in &events {
        for token in [&first, &second] {
            assert!(
                !contains(&event.payload, token.as_bytes()),
                "{} carries a token",
                event.message_type
            );
        }
    }
    tap.close().await;
    db.close().await;
    suite.stop().await.unwrap();
}

// ---- 5. Addresses. ----

fn postal(line1: &str, city: &str, state: &str, code: &str, country: &str) -> PostalAddress {
    PostalAddress {
        line1: line1.into(),
        city: city.into(),
        state: state.into(),
        postal_code: code.into(),
        country: country.into(),
        ..PostalAddress::default()
    }
}

async fn validate(
    suite: &Suite,
    token: &str,
    address: Option<PostalAddress>,
) -> Result<ValidateAddressResponse, tonic::Status> {
    verification(suite)
        .validate_address(with_token(token, ValidateAddressRequest { address }))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn addresses_of_covered_countries_are_validated_and_standardised() {
    let suite = start().await;
    let founder = clients::sign_up(&suite, "Contoso").await.unwrap();
    let token = founder.token.as_str();

    // Each covered country, as typed → as the postal authority writes it.
    let mut hungary = postal("  Váci   utca 12. ", "BUDAPEST", "", "H-1051", "hu");
    hungary.line2 = "II. emelet 3.".into();
    let mut hungary_standard = postal("Váci utca 12.", "Budapest", "", "1051", "HU");
    hungary_standard.line2 = "II. emelet 3.".into();
    for (typed, standard) in [
        (
            postal("ул. Тверская, 7", "Москва", "", "125009", "RU"),
            postal("ul. Tverskaya, 7", "MOSKVA", "", "125009", "RU"),
        ),
        (
            postal(
                "bd. Ştefan cel Mare şi Sfânt 134",
                "Chişinău",
                "",
                "2012",
                "MD",
            ),
            postal(
                "bd. Ștefan cel Mare și Sfânt 134",
                "CHIȘINĂU",
                "",
                "MD-2012",
                "MD",
            ),
        ),
        (
            postal("Աբովյան փողոց 1", "Երևան", "", "0001", "am"),
            postal("Abovyan poghots 1", "YEREVAN", "", "0001", "AM"),
        ),
        (hungary, hungary_standard),
        (
            postal("Чүй проспекти, 227", "Бишкек", "", "720 001", "kg"),
            postal("Chüy prospekti, 227", "BISHKEK", "", "720001", "KG"),
        ),
        (
            postal("Амир Темур кўчаси, 4", "Тошкент", "", "100 000", "uz"),
            postal("Amir Temur ko'chasi, 4", "TOSHKENT", "", "100000", "UZ"),
        ),
    ] {
        let answer = validate(&suite, token, Some(typed.clone())).await.unwrap();
        assert!(answer.covered, "{typed:?}");
        assert_eq!(
            answer.suggested_address,
            Some(standard.clone()),
            "{typed:?}"
        );
        // The suggestion itself is valid as it stands.
        let again = validate(&suite, token, Some(standard.clone()))
            .await
            .unwrap();
        assert!(
            again.covered && again.suggested_address.is_none(),
            "{standard:?}"
        );
    }

    // Valid as typed: no suggestion.
    let valid = validate(
        &suite,
        token,
        Some(postal(
            "str. Mihai Eminescu 5",
            "CHIȘINĂU",
            "",
            "MD-2012",
            "MD",
        )),
    )
    .await
    .unwrap();
    assert_eq!(
        valid,
        ValidateAddressResponse {
            covered: true,
            suggested_address: None
        }
    );
    // A country without known rules is not checked.
    let france = validate(
        &suite,
        token,
        Some(postal("1 Rue de Rivoli", "Paris", "", "75001", "FR")),
    )
    .await
    .unwrap();
    assert_eq!(
        france,
        ValidateAddressResponse {
            covered: false,
            suggested_address: None
        }
    );

    // Every problem at once, named under `address.`.
    let invalid = validate(&suite, token, Some(postal("", " ", "", "12A009", "RU")))
        .await
        .expect_err("invalid");
    assert_eq!(invalid.code(), Code::InvalidArgument, "{invalid:?}");
    assert_eq!(
        violated_fields(&invalid),
        [
            "address.city",
            "address.line1",
            "address.postal_code",
            "address.state"
        ]
    );
    let wrong_code = validate(
        &suite,
        token,
        Some(postal(
            "str. Mihai Eminescu 5",
            "CHIȘINĂU",
            "",
            "MD-8001",
            "MD",
        )),
    )
    .await
    .expect_err("a code outside Moldova's");
    assert_eq!(violated_fields(&wrong_code), ["address.postal_code"]);
    let moscow_code = validate(
        &suite,
        token,
        Some(postal("ul. Tverskaya, 7", "MOSKVA", "", "620014", "RU")),
    )
    .await
    .expect_err("not a Moscow code");
    assert_eq!(violated_fields(&moscow_code), ["address.postal_code"]);
    let missing = validate(&suite, token, None).await.expect_err("no address");
    assert_invalid(&missing, "address", "required");
    // Signed-in callers only.
    let anonymous = verification(&suite)
        .validate_address(ValidateAddressRequest {
            address: Some(postal("ul. Tverskaya, 7", "MOSKVA", "", "125009", "RU")),
        })
        .await
        .expect_err("anonymous");
    assert_eq!(anonymous.code(), Code::Unauthenticated, "{anonymous:?}");

    // An enrollment in Russia: profile keeps legal addresses in Latin
    // letters, so a Cyrillic one is refused at enrollment...
    let moscow = clients::sign_up(&suite, "Litware").await.unwrap();
    let russian = |address: Address| LegalProfile {
        legal_name: "Litware Rus OOO".into(),
        address: Some(address),
        registration_id: "7707083893".into(),
        ..LegalProfile::default()
    };
    let cyrillic = EnrollmentServiceClient::new(Suite::channel(suite.profile).unwrap())
        .enroll(with_token(
            &moscow.token,
            EnrollRequest {
                parent: moscow.account.clone(),
                legal_profile: Some(LegalProfile {
                    primary_contact: Some(common::founder_contact(&moscow)),
                    ..russian(Address {
                        line1: "ул. Тверская, 7".into(),
                        city: "Москва".into(),
                        postal_code: "125009".into(),
                        country: "RU".into(),
                        ..Address::default()
                    })
                }),
                program: ProgramKind::Partner.into(),
                accept_agreement: true,
                request_id: String::new(),
            },
        ))
        .await
        .expect_err("profile refuses Cyrillic legal addresses");
    assert_eq!(cyrillic.code(), Code::InvalidArgument, "{cyrillic:?}");
    let refused = violated_fields(&cyrillic);
    assert!(
        refused.contains(&"legal_profile.address.city".to_owned())
            && refused.contains(&"legal_profile.address.line1".to_owned()),
        "{refused:?}"
    );
    // ... and a Latin address not in the postal authority's form gets an
    // ADDRESS check asking for the standard form.
    let moscow = enroll_company(
        &suite,
        moscow,
        russian(Address {
            line1: "ul.  Tverskaya , 7".into(),
            city: "moskva".into(),
            postal_code: "125 009".into(),
            country: "RU".into(),
            ..Address::default()
        }),
    )
    .await;
    let checks =
        wait_checks_where(&suite, &moscow, "the enrollment's checks", |c| c.len() == 5).await;
    let address = check_of(&checks, CheckKind::Address);
    assert_eq!(address.status(), CheckStatus::ActionRequired, "{address:?}");
    assert_eq!(address.reason, "ADDRESS_NOT_STANDARD");
    assert_eq!(
        address.suggested_address,
        Some(postal("ul. Tverskaya, 7", "MOSKVA", "", "125009", "RU"))
    );
    suite.stop().await.unwrap();
}

// ---- 6. DUNS lookup. ----

async fn lookup(
    suite: &Suite,
    token: &str,
    duns_number: &str,
    name: &str,
    country: &str,
) -> Result<LookupDunsResponse, tonic::Status> {
    verification(suite)
        .lookup_duns(with_token(
            token,
            LookupDunsRequest {
                duns_number: duns_number.into(),
                name: name.into(),
                country: country.into(),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn the_directory_is_searched_by_duns_number_or_by_name() {
    let suite = start().await;
    let founder = clients::sign_up(&suite, "Contoso").await.unwrap();
    let token = founder.token.as_str();

    for number in ["150483782", "150-483-782", " 150 483 782 "] {
        let found = lookup(&suite, token, number, "", "")
            .await
            .unwrap()
            .companies;
        assert_eq!(found.len(), 1, "{number:?}: {found:?}");
        let contoso = &found[0];
        assert_eq!(contoso.duns_number, "150483782");
        assert_eq!(contoso.name, "Contoso SAS");
        assert_eq!(contoso.score, 1.0);
        let address = contoso.address.clone().unwrap_or_default();
        assert_eq!(
            (
                address.line1.as_str(),
                address.city.as_str(),
                address.postal_code.as_str(),
                address.country.as_str()
            ),
            ("1 Rue de Rivoli", "Paris", "75001", "FR")
        );
    }
    // A well-formed number nobody has finds nothing.
    let unknown = lookup(&suite, token, "999999999", "", "").await.unwrap();
    assert!(unknown.companies.is_empty(), "{unknown:?}");

    // By name: best first; in France, Contoso SAS.
    let in_france = lookup(&suite, token, "", "contoso", "fr")
        .await
        .unwrap()
        .companies;
    assert_eq!(
        in_france.first().map(|c| c.name.as_str()),
        Some("Contoso SAS"),
        "{in_france:?}"
    );
    assert!(
        in_france
            .iter()
            .all(|c| c.address.as_ref().unwrap().country == "FR")
    );
    let anywhere = lookup(&suite, token, "", "contoso", "")
        .await
        .unwrap()
        .companies;
    assert!(anywhere.len() >= 3 && anywhere.len() <= 10, "{anywhere:?}");
    assert!(anywhere.windows(2).all(|w| w[0].score >= w[1].score));
    let sas = anywhere
        .iter()
        .position(|c| c.name == "Contoso SAS")
        .expect("Contoso SAS is found");
    assert!(sas < 2, "an exact name is among the best: {anywhere:?}");
    assert_eq!(anywhere[sas].score, 1.0);

    // Malformed requests name the field.
    let short = lookup(&suite, token, "12345", "", "").await.unwrap_err();
    assert_invalid(&short, "duns_number", "9 digits");
    let letters = lookup(&suite, token, "15048378A", "", "")
        .await
        .unwrap_err();
    assert_invalid(&letters, "duns_number", "9 digits");
    let nothing = lookup(&suite, token, "", "  ", "").await.unwrap_err();
    assert_invalid(&nothing, "name", "required");
    for country in ["FRA", "F1"] {
        let bad = lookup(&suite, token, "", "contoso", country)
            .await
            .unwrap_err();
        assert_invalid(&bad, "country", "ISO 3166-1");
    }
    // Signed-in callers only.
    let anonymous = verification(&suite)
        .lookup_duns(LookupDunsRequest {
            duns_number: "150483782".into(),
            ..LookupDunsRequest::default()
        })
        .await
        .expect_err("anonymous");
    assert_eq!(anonymous.code(), Code::Unauthenticated, "{anonymous:?}");
    suite.stop().await.unwrap();
}

// ---- 7. Suspension of accounts rejected too long. ----

async fn account_state(suite: &Suite, ops: &str, company: &Company) -> AccountState {
    AccountServiceClient::new(Suite::channel(suite.identity).unwrap())
        .get_account(with_token(
            ops,
            GetAccountRequest {
                name: company.account.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .state()
}

/// Enrolls a company whose primary contact has a free-mail address, and
/// waits until it is REJECTED; returns it with that address.
async fn rejected_company(suite: &Suite, name: &str) -> (Company, String) {
    let gmail = format!("ada.{}@gmail.com", unique());
    // The business matches the directory by DUNS: only the email domain
    // holds the account back.
    let company = enroll(
        suite,
        name,
        LegalProfile {
            primary_contact: Some(Contact {
                given_name: "Ada".into(),
                family_name: "Lovelace".into(),
                email: gmail.clone(),
                ..Contact::default()
            }),
            ..by_duns("Contoso SAS")
        },
    )
    .await;
    wait_status(suite, &company, (State::Rejected, SubStatus::EmailDomain)).await;
    (company, gmail)
}

/// Moves the account's `rejected_at` `days` back: the time passing.
async fn rejected_days_ago(db: &PgPool, company: &Company, days: i32) {
    let moved = sqlx::query(
        "UPDATE account_status SET rejected_at = now() - make_interval(days => $2)
         WHERE account_id = $1",
    )
    .bind(account_uuid(company))
    .bind(days)
    .execute(db)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(moved, 1);
}

async fn suspension_requested(db: &PgPool, company: &Company) -> bool {
    sqlx::query_scalar::<_, bool>(
        "SELECT suspension_requested_at IS NOT NULL FROM account_status WHERE account_id = $1",
    )
    .bind(account_uuid(company))
    .fetch_one(db)
    .await
    .unwrap()
}

#[tokio::test]
async fn accounts_rejected_for_more_than_30_days_are_suspended_once() {
    let suite = Suite::start_with(SuiteOptions {
        ops_permissions: vec![
            common::DECIDE.into(),
            "platform.identity.accounts.read".into(),
            // The suspended founder's own token is refused everywhere now:
            // the operator reads the programs.
            "platform.profile.programs.read".into(),
            "platform.verification.status.read".into(),
        ],
        ..SuiteOptions::default()
    })
    .await
    .unwrap();
    suite.wait_serving().await.unwrap();
    let mut tap = EventTap::start(&suite.bus).await.unwrap();
    let ops = ops_token(&suite).await;
    let db = verification_db(&suite).await;

    let (contoso, _) = rejected_company(&suite, "Contoso").await;
    let (fabrikam, fabrikam_mail) = rejected_company(&suite, "Fabrikam").await;
    let (northwind, _) = rejected_company(&suite, "Northwind").await;
    let rejected_at: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT rejected_at FROM account_status WHERE account_id = $1")
            .bind(account_uuid(&contoso))
            .fetch_one(&db)
            .await
            .unwrap();
    assert!(rejected_at.is_some());

    // 29 days: not yet.
    rejected_days_ago(&db, &fabrikam, 29).await;
    rejected_days_ago(&db, &northwind, 29).await;
    tokio::time::sleep(SEVERAL_PERIODS).await;
    assert!(!suspension_requested(&db, &fabrikam).await);
    assert_eq!(
        account_state(&suite, &ops, &fabrikam).await,
        AccountState::Active
    );

    // 31 days: identity suspends the account, profile its programs.
    rejected_days_ago(&db, &contoso, 31).await;
    eventually(WAIT, || async {
        (account_state(&suite, &ops, &contoso).await == AccountState::Suspended).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{} was never suspended: {e:#}", contoso.account));
    assert!(suspension_requested(&db, &contoso).await);
    let sign_in = AuthServiceClient::new(Suite::channel(suite.identity).unwrap())
        .sign_in(SignInRequest {
            email: contoso.email.clone(),
            password: FOUNDER_PASSWORD.into(),
            account: contoso.account.clone(),
        })
        .await
        .expect_err("a suspended account cannot be signed in to");
    assert_eq!(sign_in.code(), Code::FailedPrecondition, "{sign_in:?}");
    assert_eq!(error_reason(&sign_in), "ACCOUNT_UNAVAILABLE");
    eventually(WAIT, || async {
        let programs = ProgramServiceClient::new(Suite::channel(suite.profile).ok()?)
            .list_programs(with_token(
                &ops,
                ListProgramsRequest {
                    parent: contoso.account.clone(),
                },
            ))
            .await
            .ok()?
            .into_inner()
            .programs;
        (!programs.is_empty()
            && programs
                .iter()
                .all(|p| p.status() == ProgramStatus::Suspended))
        .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{}'s programs were never suspended: {e:#}", contoso.account));
    // The verification itself stays as it was.
    let status = verification(&suite)
        .get_verification_status(with_token(
            &ops,
            GetVerificationStatusRequest {
                name: format!("{}/verificationStatus", contoso.account),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (status.status(), status.sub_status()),
        (State::Rejected, SubStatus::EmailDomain)
    );

    // Fabrikam is authorized before its deadline: a reviewer accepts the
    // address, the mailbox is confirmed.
    let checks = cases_of(&suite, &fabrikam, false).await.remove(0).checks;
    for kind in [CheckKind::EmailDomain, CheckKind::Employment] {
        verification(&suite)
            .decide_check(with_token(
                &ops,
                DecideCheckRequest {
                    check: check_of(&checks, kind).name,
                    decision: Decision::Pass.into(),
                    reason: "Known to us.".into(),
                },
            ))
            .await
            .unwrap();
    }
    let token = token_mail(&suite, &fabrikam_mail).await;
    confirm(&suite, &token, &fabrikam.account).await.unwrap();
    wait_status(&suite, &fabrikam, (State::Authorized, SubStatus::Decision)).await;
    let fabrikam_rejected_at: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT rejected_at FROM account_status WHERE account_id = $1")
            .bind(account_uuid(&fabrikam))
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(fabrikam_rejected_at, None);
    // Northwind fixes it itself before its deadline: a primary contact at
    // its own domain replaces the rejected address, and it is no longer
    // REJECTED.
    let ada = format!("ada.{}@{}", unique(), founder_domain(&northwind));
    update_legal(
        &suite,
        &northwind,
        LegalProfile {
            primary_contact: Some(Contact {
                given_name: "Ada".into(),
                family_name: "Lovelace".into(),
                email: ada,
                ..Contact::default()
            }),
            ..LegalProfile::default()
        },
        &["primary_contact"],
    )
    .await;
    wait_status(
        &suite,
        &northwind,
        (State::Pending, SubStatus::EmailOwnership),
    )
    .await;
    let northwind_rejected_at: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT rejected_at FROM account_status WHERE account_id = $1")
            .bind(account_uuid(&northwind))
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(northwind_rejected_at, None);
    // Even a stale rejection time does not suspend an account no longer
    // REJECTED.
    rejected_days_ago(&db, &fabrikam, 31).await;

    // Several job periods later: exactly one request, for Contoso.
    tokio::time::sleep(SEVERAL_PERIODS).await;
    for company in [&fabrikam, &northwind] {
        assert!(!suspension_requested(&db, company).await);
        assert_eq!(
            account_state(&suite, &ops, company).await,
            AccountState::Active
        );
    }
    let requests: Vec<AccountSuspensionRequested> = tap
        .drain(Duration::from_secs(1))
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.message_type == AccountSuspensionRequested::full_name())
        .map(|e| AccountSuspensionRequested::decode(e.payload.as_slice()).unwrap())
        .collect();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = &requests[0];
    assert_eq!(request.account, contoso.account);
    assert!(request.reason.contains("30 days"), "{request:?}");
    let since = request.rejected_since.expect("rejected_since").seconds;
    let days_ago = (chrono::Utc::now().timestamp() - since) / 86_400;
    assert_eq!(days_ago, 31, "{request:?}");
    tap.close().await;
    db.close().await;
    suite.stop().await.unwrap();
}
