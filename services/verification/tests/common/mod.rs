//! Helpers of verification's tests: the whole suite runs; companies sign up
//! and enroll through profile, verification opens their cases from the
//! events, and the tests talk to verification through its gRPC API.
#![allow(dead_code, clippy::expect_used, clippy::panic, clippy::unwrap_used)]

use std::time::Duration;

use partnerhub_proto::identity::v1::{
    ChangePasswordRequest, CreateUserRequest, IssueServiceTokenRequest, RoleAssignment,
    SignInRequest, auth_service_client::AuthServiceClient,
    member_service_client::MemberServiceClient,
};
use partnerhub_proto::profile::v1::{
    Address, Contact, DataSource, EnrollRequest, GetLegalProfileRequest, LegalProfile, ProgramKind,
    UpdateLegalProfileRequest, enrollment_service_client::EnrollmentServiceClient,
    legal_profile_service_client::LegalProfileServiceClient,
};
use partnerhub_proto::verification::v1::{
    Check, CheckKind, DecideCheckRequest, Decision, Document, DocumentType,
    GetVerificationStatusRequest, ListDocumentsRequest, ListPendingReviewsRequest,
    ListVerificationsRequest, RequestDocumentsRequest, Status, SubStatus, UploadDocumentRequest,
    Verification, verification_service_client::VerificationServiceClient,
};
use partnerhub_testkit::clients::{self, Company};
use partnerhub_testkit::{
    EventTap, OPS_CLIENT_ID, OPS_CLIENT_SECRET, Suite, SuiteOptions, bearer, eventually, unique,
};
use tonic::transport::Channel;

/// How long verification may take to open a case or move a check.
pub const WAIT: Duration = Duration::from_secs(20);

/// The reviewers' platform permission.
pub const DECIDE: &str = "platform.verification.reviews.decide";

/// The DUNS number of "Contoso SAS, 1 Rue de Rivoli, 75001 Paris FR" in
/// the directory sample.
pub const CONTOSO_DUNS: &str = "150483782";

/// A suite with the `ops` service account holding the reviewers' permission.
///
/// Starting is retried a few times when PostgreSQL has no connection left
/// ("too many clients"): other test runs on the machine share its 100
/// connections.
pub async fn suite_with_ops() -> Suite {
    let mut attempt = 0;
    let suite = loop {
        attempt += 1;
        match Suite::start_with(SuiteOptions {
            ops_permissions: vec![DECIDE.into()],
            ..SuiteOptions::default()
        })
        .await
        {
            Ok(suite) => break suite,
            Err(e) if attempt < 5 && format!("{e:#}").contains("too many clients") => {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => panic!("the suite did not start: {e:#}"),
        }
    };
    suite.wait_serving().await.unwrap();
    suite
}

/// A client of verification.
pub fn verification(suite: &Suite) -> VerificationServiceClient<Channel> {
    VerificationServiceClient::new(Suite::channel(suite.verification).unwrap())
}

/// `message` with `authorization: Bearer <token>`.
pub fn with_token<T>(token: &str, message: T) -> tonic::Request<T> {
    bearer(token, message).unwrap()
}

/// A token of the `ops` service account (the suite must have been started
/// with `ops_permissions`, see [`suite_with_ops`]).
pub async fn ops_token(suite: &Suite) -> String {
    AuthServiceClient::new(Suite::channel(suite.identity).unwrap())
        .issue_service_token(IssueServiceTokenRequest {
            client_id: OPS_CLIENT_ID.into(),
            client_secret: OPS_CLIENT_SECRET.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .access_token
        .unwrap_or_default()
        .token
}

/// The ops service account's resource name (the actor of its decisions).
pub fn ops_actor() -> String {
    format!("serviceAccounts/{OPS_CLIENT_ID}")
}

/// The founder's primary contact (Ada Lovelace, the founder's sign-in email).
pub fn founder_contact(company: &Company) -> Contact {
    Contact {
        given_name: "Ada".into(),
        family_name: "Lovelace".into(),
        email: company.email.clone(),
        ..Contact::default()
    }
}

/// 1 Rue de Rivoli, 75001 Paris, FR.
pub fn paris() -> Address {
    Address {
        line1: "1 Rue de Rivoli".into(),
        city: "Paris".into(),
        postal_code: "75001".into(),
        country: "FR".into(),
        ..Address::default()
    }
}

/// A legal profile entered by hand, with a name the directory does not
/// know: its BUSINESS check goes to review (MANUAL_ENTRY).
pub fn manual(legal_name: &str) -> LegalProfile {
    LegalProfile {
        legal_name: legal_name.into(),
        data_source: DataSource::Manual.into(),
        ..LegalProfile::default()
    }
}

/// A legal profile taken from the directory by Contoso's DUNS number, with
/// `legal_name` (the directory's "Contoso SAS" passes; a misspelling is a
/// weak match).
pub fn by_duns(legal_name: &str) -> LegalProfile {
    LegalProfile {
        legal_name: legal_name.into(),
        data_source: DataSource::Duns.into(),
        duns_number: CONTOSO_DUNS.into(),
        ..LegalProfile::default()
    }
}

/// Signs up the founder of a company called `name` (sign-in email
/// `founder.…@<name>.com`) and enrolls it in the partner program with
/// `legal`, whose empty parts are filled in: legal name `<name> SAS`, the
/// Paris address, the founder as primary contact (see [`founder_contact`]).
/// The primary contact's email may contain `{founder}`, replaced by the
/// founder's sign-in email.
pub async fn enroll(suite: &Suite, name: &str, legal: LegalProfile) -> Company {
    let company = clients::sign_up(suite, name).await.unwrap();
    enroll_company(suite, company, legal).await
}

/// Enrolls a signed-up `company` (see [`enroll`] for the defaults).
pub async fn enroll_company(suite: &Suite, mut company: Company, legal: LegalProfile) -> Company {
    let mut legal = legal;
    if legal.legal_name.is_empty() {
        legal.legal_name = format!("{} SAS", company_name(&company));
    }
    if legal.address.is_none() {
        legal.address = Some(paris());
    }
    match legal.primary_contact.as_mut() {
        None => legal.primary_contact = Some(founder_contact(&company)),
        Some(contact) => contact.email = contact.email.replace("{founder}", &company.email),
    }
    let response = EnrollmentServiceClient::new(Suite::channel(suite.profile).unwrap())
        .enroll(with_token(
            &company.token,
            EnrollRequest {
                parent: company.account.clone(),
                legal_profile: Some(legal),
                program: ProgramKind::Partner.into(),
                accept_agreement: true,
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    company.global_id = response.legal_profile.unwrap_or_default().global_partner_id;
    company.headquarters_id = response.headquarters.unwrap_or_default().partner_id;
    company
}

/// The company name in a founder's email domain (`Contoso` for
/// `…@contoso.com`), used when no legal name is given.
fn company_name(company: &Company) -> String {
    let domain = company
        .email
        .rsplit('@')
        .next()
        .unwrap_or_default()
        .trim_end_matches(".com");
    let mut chars = domain.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The account's cases, newest first (first page of 100), with the
/// transitions when `history`.
pub async fn cases_of(suite: &Suite, company: &Company, history: bool) -> Vec<Verification> {
    verification(suite)
        .list_verifications(with_token(
            &company.token,
            ListVerificationsRequest {
                parent: company.account.clone(),
                page_size: 100,
                show_history: history,
                ..ListVerificationsRequest::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .verifications
}

/// Waits until the account's latest case has its checks, and returns them.
pub async fn wait_checks(suite: &Suite, company: &Company) -> Vec<Check> {
    wait_checks_where(suite, company, "the latest case has checks", |_| true).await
}

/// Waits until the latest case's checks satisfy `wanted` (they are never
/// empty), described by `what`.
pub async fn wait_checks_where(
    suite: &Suite,
    company: &Company,
    what: &str,
    wanted: impl Fn(&[Check]) -> bool,
) -> Vec<Check> {
    let wanted = &wanted;
    eventually(WAIT, || async move {
        let cases = cases_of(suite, company, false).await;
        let checks = cases.into_iter().next()?.checks;
        (!checks.is_empty() && wanted(&checks)).then_some(checks)
    })
    .await
    .unwrap_or_else(|e| panic!("{} never got there ({what}): {e:#}", company.account))
}

/// The check of `kind` (which must be there).
pub fn check_of(checks: &[Check], kind: CheckKind) -> Check {
    checks
        .iter()
        .find(|c| c.kind() == kind)
        .cloned()
        .unwrap_or_else(|| panic!("no {kind:?} check in {checks:?}"))
}

/// The account's verification status.
pub async fn status(suite: &Suite, company: &Company) -> (Status, SubStatus) {
    let s = verification(suite)
        .get_verification_status(with_token(
            &company.token,
            GetVerificationStatusRequest {
                name: format!("{}/verificationStatus", company.account),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    (s.status(), s.sub_status())
}

/// Waits until the account's verification status is `wanted`.
pub async fn wait_status(suite: &Suite, company: &Company, wanted: (Status, SubStatus)) {
    let last = std::sync::Mutex::new(None);
    let last = &last;
    let reached = eventually(WAIT, || async move {
        let now = status(suite, company).await;
        *last.lock().unwrap() = Some(now);
        (now == wanted).then_some(())
    })
    .await;
    if let Err(e) = reached {
        panic!(
            "{} never reached {wanted:?} (last {:?}): {e:#}",
            company.account,
            last.lock().unwrap()
        );
    }
}

// ---- Files. ----

/// A small, valid PDF.
pub fn pdf() -> Vec<u8> {
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n\
2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n\
trailer << /Root 1 0 R >>\n%%EOF\n"
        .to_vec()
}

/// A PNG signature with a 1×1 IHDR chunk.
pub fn png() -> Vec<u8> {
    let mut bytes = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    bytes.extend_from_slice(&[0, 0, 0, 13]);
    bytes.extend_from_slice(b"IHDR");
    bytes.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0]);
    bytes.extend_from_slice(&[0x1F, 0x15, 0xC4, 0x89]);
    bytes
}

/// The start of a JFIF JPEG.
pub fn jpeg() -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
    bytes.extend_from_slice(b"JFIF\0");
    bytes.extend_from_slice(&[0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00]);
    bytes.extend_from_slice(&[0xFF, 0xD9]);
    bytes
}

/// A GIF header (not an accepted type).
pub fn gif() -> Vec<u8> {
    let mut bytes = b"GIF89a".to_vec();
    bytes.extend_from_slice(&[1, 0, 1, 0, 0, 0, 0, b';']);
    bytes
}

/// An (empty) ZIP archive (not an accepted type).
pub fn zip() -> Vec<u8> {
    let mut bytes = vec![b'P', b'K', 0x05, 0x06];
    bytes.extend_from_slice(&[0; 18]);
    bytes
}

/// Plain text (not a document).
pub fn not_a_document() -> Vec<u8> {
    b"Dear reviewer, please trust us: we are a real company.\n".to_vec()
}

/// A PDF header padded to `len` bytes.
pub fn pdf_of_len(len: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.4\n".to_vec();
    bytes.resize(len, b' ');
    bytes
}

// ---- Errors: `google.rpc.Status` details, decoded by hand (verification's
// tests do not depend on tonic-types). ----

#[allow(unused_imports)]
pub use partnerhub_testkit::errors::{error_reason, violated_fields};

/// The error of a call that must fail.
pub fn refusal<T: std::fmt::Debug>(
    result: Result<tonic::Response<T>, tonic::Status>,
) -> tonic::Status {
    match result {
        Ok(r) => panic!("expected a refusal, got {:?}", r.get_ref()),
        Err(status) => status,
    }
}

// ---- Calls. ----

/// Uploads `content` as a document of `kind` for `check`, as `token`.
pub async fn upload(
    suite: &Suite,
    token: &str,
    check: &str,
    kind: DocumentType,
    content: Vec<u8>,
) -> Result<Document, tonic::Status> {
    verification(suite)
        .upload_document(with_token(
            token,
            UploadDocumentRequest {
                check: check.into(),
                r#type: kind.into(),
                content,
                ..UploadDocumentRequest::default()
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// The account's documents (first page of 100), newest first.
pub async fn documents_of(suite: &Suite, company: &Company) -> Vec<Document> {
    verification(suite)
        .list_documents(with_token(
            &company.token,
            ListDocumentsRequest {
                parent: company.account.clone(),
                page_size: 100,
                page_token: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .documents
}

/// The checks waiting for a reviewer (first page of 100), as `ops_token`.
pub async fn pending_reviews(suite: &Suite, ops_token: &str) -> Vec<Check> {
    verification(suite)
        .list_pending_reviews(with_token(
            ops_token,
            ListPendingReviewsRequest {
                page_size: 100,
                page_token: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .checks
}

/// A reviewer's decision on `check`, as `token`.
pub async fn decide(
    suite: &Suite,
    token: &str,
    check: &str,
    decision: Decision,
    reason: &str,
) -> Result<Check, tonic::Status> {
    verification(suite)
        .decide_check(with_token(
            token,
            DecideCheckRequest {
                check: check.into(),
                decision: decision.into(),
                reason: reason.into(),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// A reviewer asks for `types` of documents for `check`, as `token`.
pub async fn request_documents(
    suite: &Suite,
    token: &str,
    check: &str,
    types: &[DocumentType],
    reason: &str,
) -> Result<Check, tonic::Status> {
    verification(suite)
        .request_documents(with_token(
            token,
            RequestDocumentsRequest {
                check: check.into(),
                types: types.iter().map(|t| *t as i32).collect(),
                reason: reason.into(),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// Changes `company`'s legal profile through profile: `change` edits the
/// current profile, `paths` name the changed fields.
pub async fn update_legal(
    suite: &Suite,
    company: &Company,
    change: impl FnOnce(&mut LegalProfile),
    paths: &[&str],
) -> LegalProfile {
    let mut legal = LegalProfileServiceClient::new(Suite::channel(suite.profile).unwrap());
    let mut profile = legal
        .get_legal_profile(with_token(
            &company.token,
            GetLegalProfileRequest {
                name: format!("{}/legalProfile", company.account),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    change(&mut profile);
    legal
        .update_legal_profile(with_token(
            &company.token,
            UpdateLegalProfileRequest {
                legal_profile: Some(profile),
                update_mask: Some(prost_types::FieldMask {
                    paths: paths.iter().map(|p| (*p).to_owned()).collect(),
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .legal_profile
        .unwrap_or_default()
}

/// A new member of `company` with `roles` (company-wide), signed in after
/// changing the temporary password: their access token.
pub async fn member_token(suite: &Suite, company: &Company, roles: &[&str]) -> String {
    let email = format!(
        "member.{}@{}",
        unique(),
        company.email.rsplit('@').next().unwrap()
    );
    let created = MemberServiceClient::new(Suite::channel(suite.identity).unwrap())
        .create_user(with_token(
            &company.token,
            CreateUserRequest {
                parent: company.account.clone(),
                email: email.clone(),
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
            email,
            password: created.temporary_password.clone(),
            account: company.account.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let changed = auth
        .change_password(with_token(
            &first.access_token.unwrap_or_default().token,
            ChangePasswordRequest {
                current_password: created.temporary_password,
                new_password: "difference engine 1822".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!changed.password_change_required);
    changed.access_token.unwrap_or_default().token
}

/// Waits for an event of `message_type` on `tap` that `wanted` accepts.
pub async fn wait_event<E: prost::Message + Default + std::fmt::Debug>(
    tap: &mut EventTap,
    message_type: &str,
    wanted: impl Fn(&E) -> bool,
) -> E {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        for event in tap.drain(Duration::from_millis(300)).await.unwrap() {
            if event.message_type == message_type {
                let decoded = E::decode(event.payload.as_slice()).unwrap();
                if wanted(&decoded) {
                    return decoded;
                }
                seen.push(decoded);
            }
        }
        if tokio::time::Instant::now() > deadline {
            panic!("no wanted {message_type} within {WAIT:?}; saw {seen:?}");
        }
    }
}

/// Waits until the account has `count` cases, the newest with its checks;
/// returns them newest first.
pub async fn wait_cases(suite: &Suite, company: &Company, count: usize) -> Vec<Verification> {
    eventually(WAIT, || async {
        let cases = cases_of(suite, company, false).await;
        (cases.len() == count && !cases[0].checks.is_empty()).then_some(cases)
    })
    .await
    .unwrap_or_else(|e| panic!("{} never had {count} cases: {e:#}", company.account))
}
