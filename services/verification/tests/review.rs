//! Checks, documents and reviews end to end through verification's gRPC API,
//! with the whole suite on the machine's PostgreSQL and RabbitMQ: companies
//! enroll through profile, verification opens their cases from the events,
//! reviewers (the `ops` service account) decide, partners upload documents.

mod common;

use common::*;
use partnerhub_proto::profile::v1::{Contact, LegalProfile};
use partnerhub_proto::verification::v1::{
    CheckKind, CheckStatus, Decision, DocumentType, DocumentsRequested, GetDocumentContentRequest,
    GetVerificationStatusRequest, ListDocumentsRequest, ListPendingReviewsRequest,
    ListVerificationsRequest, Status, SubStatus, UploadDocumentRequest,
};
use partnerhub_testkit::{EventTap, Suite};
use tonic::Code;

const DOCUMENTS_REQUESTED: &str = "partnerhub.verification.v1.DocumentsRequested";

/// The checks of the latest case once its BUSINESS check is `status`.
async fn wait_business(
    suite: &Suite,
    company: &partnerhub_testkit::Company,
    status: CheckStatus,
) -> Vec<partnerhub_proto::verification::v1::Check> {
    wait_checks_where(suite, company, "business check", |checks| {
        checks
            .iter()
            .any(|c| c.kind() == CheckKind::Business && c.status() == status)
    })
    .await
}

#[tokio::test]
async fn a_manual_entry_goes_to_review_and_only_reviewers_decide() {
    let suite = suite_with_ops().await;
    let ops = ops_token(&suite).await;
    let company = enroll(&suite, "Quokkanimbus", manual("Quokkanimbus Labs SAS")).await;

    let checks = wait_checks(&suite, &company).await;
    assert_eq!(
        checks.len(),
        4,
        "FR is not covered by the address check: {checks:?}"
    );
    let business = check_of(&checks, CheckKind::Business);
    assert_eq!(business.status(), CheckStatus::Pending, "{business:?}");
    assert!(business.in_review, "{business:?}");
    assert_eq!(business.reason, "MANUAL_ENTRY");
    assert!(business.requested_documents.is_empty());
    let email = check_of(&checks, CheckKind::EmailOwnership);
    assert_eq!(email.status(), CheckStatus::ActionRequired);
    // A business domain, but nothing proves it is the company's: a sign-up
    // address proves nothing, and a manual entry has no directory record.
    assert_eq!(
        check_of(&checks, CheckKind::EmailDomain).status(),
        CheckStatus::Passed
    );
    let employment = check_of(&checks, CheckKind::Employment);
    assert_eq!(employment.status(), CheckStatus::ActionRequired);
    assert_eq!(employment.reason, "DOMAIN_NOT_OWNED");
    wait_status(
        &suite,
        &company,
        (Status::Pending, SubStatus::EmailOwnership),
    )
    .await;

    // The reviewers see the business check, not the automatic ones.
    let pending = pending_reviews(&suite, &ops).await;
    let listed: Vec<&str> = pending.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(listed, [business.name.as_str()], "{pending:?}");
    assert!(pending[0].in_review);

    // Users, even the Global admin, are no reviewers.
    let mut client = verification(&suite);
    let refused = client
        .list_pending_reviews(with_token(
            &company.token,
            ListPendingReviewsRequest::default(),
        ))
        .await
        .expect_err("a user lists reviews");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    for refused in [
        decide(
            &suite,
            &company.token,
            &business.name,
            Decision::Pass,
            "I trust myself",
        )
        .await
        .expect_err("a user decides"),
        request_documents(
            &suite,
            &company.token,
            &business.name,
            &[DocumentType::BusinessRegistration],
            "please",
        )
        .await
        .expect_err("a user asks for documents"),
    ] {
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    }
    let unchanged = check_of(&wait_checks(&suite, &company).await, CheckKind::Business);
    assert_eq!(unchanged.status(), CheckStatus::Pending);
    assert!(unchanged.in_review);

    // The reviewer passes it: the account waits for the email (and the
    // employment proof) now.
    let passed = decide(&suite, &ops, &business.name, Decision::Pass, "")
        .await
        .unwrap();
    assert_eq!(passed.status(), CheckStatus::Passed, "{passed:?}");
    assert!(!passed.in_review);
    assert_eq!(passed.reason, "REVIEWER_PASSED");
    let checks = wait_checks(&suite, &company).await;
    let open: Vec<CheckKind> = checks
        .iter()
        .filter(|c| c.status() != CheckStatus::Passed)
        .map(|c| c.kind())
        .collect();
    assert_eq!(
        open,
        [CheckKind::EmailOwnership, CheckKind::Employment],
        "{checks:?}"
    );
    assert_eq!(
        status(&suite, &company).await,
        (Status::Pending, SubStatus::EmailOwnership)
    );
    assert!(
        pending_reviews(&suite, &ops)
            .await
            .iter()
            .all(|c| c.name != business.name),
        "a decided check leaves the review queue"
    );

    // Nothing is left to decide on, or upload to, a passed check.
    let asked = request_documents(
        &suite,
        &ops,
        &business.name,
        &[DocumentType::TaxCertificate],
        "One more thing.",
    )
    .await
    .expect_err("documents for a passed check");
    assert_eq!(asked.code(), Code::FailedPrecondition, "{asked:?}");
    assert_eq!(error_reason(&asked), "CHECK_PASSED");
    let uploaded = upload(
        &suite,
        &company.token,
        &business.name,
        DocumentType::TaxCertificate,
        pdf(),
    )
    .await
    .expect_err("an upload to a passed check");
    assert_eq!(uploaded.code(), Code::FailedPrecondition, "{uploaded:?}");
    assert_eq!(error_reason(&uploaded), "CHECK_PASSED");
    let again = decide(
        &suite,
        &ops,
        &business.name,
        Decision::Reject,
        "changed my mind",
    )
    .await
    .expect_err("a passed check is final");
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
    assert_eq!(error_reason(&again), "CHECK_PASSED");

    // A rejection needs a reason; a decision must be one.
    let no_reason = decide(&suite, &ops, &email.name, Decision::Reject, "")
        .await
        .expect_err("a rejection without a reason");
    assert_eq!(no_reason.code(), Code::InvalidArgument, "{no_reason:?}");
    assert_eq!(violated_fields(&no_reason), ["reason"]);
    let blank_reason = decide(&suite, &ops, &email.name, Decision::Reject, "   ")
        .await
        .expect_err("a rejection with a blank reason");
    assert_eq!(violated_fields(&blank_reason), ["reason"]);
    let unspecified = decide(&suite, &ops, &email.name, Decision::Unspecified, "why not")
        .await
        .expect_err("no decision");
    assert_eq!(unspecified.code(), Code::InvalidArgument, "{unspecified:?}");
    assert_eq!(violated_fields(&unspecified), ["decision"]);
    let email_now = check_of(
        &wait_checks(&suite, &company).await,
        CheckKind::EmailOwnership,
    );
    assert_eq!(email_now.status(), CheckStatus::ActionRequired);
    assert_eq!(email_now.update_time, email.update_time);

    suite.stop().await.unwrap();
}

#[tokio::test]
async fn requested_documents_are_appealed_at_most_three_times() {
    let suite = suite_with_ops().await;
    let ops = ops_token(&suite).await;
    let company = enroll(&suite, "Quokkanimbus", manual("Quokkanimbus Labs SAS")).await;
    let checks = wait_business(&suite, &company, CheckStatus::Pending).await;
    let business = check_of(&checks, CheckKind::Business);
    let mut tap = EventTap::start(&suite.bus).await.unwrap();

    // A request names at least one type and a reason.
    let empty = request_documents(&suite, &ops, &business.name, &[], "")
        .await
        .expect_err("nothing requested");
    assert_eq!(empty.code(), Code::InvalidArgument, "{empty:?}");
    assert_eq!(violated_fields(&empty), ["reason", "types"]);
    let unspecified = request_documents(
        &suite,
        &ops,
        &business.name,
        &[DocumentType::Unspecified],
        "We need it.",
    )
    .await
    .expect_err("an unspecified type");
    assert_eq!(violated_fields(&unspecified), ["types[0]"]);

    let reason = "The registry has no company of that name: send its registration extract.";
    let asked = request_documents(
        &suite,
        &ops,
        &business.name,
        &[
            DocumentType::BusinessRegistration,
            DocumentType::TaxCertificate,
        ],
        reason,
    )
    .await
    .unwrap();
    assert_eq!(asked.status(), CheckStatus::ActionRequired, "{asked:?}");
    assert!(!asked.in_review);
    assert_eq!(asked.reason, "DOCUMENTS_REQUESTED");
    assert_eq!(asked.message, reason);
    assert_eq!(asked.appeals, 0);
    assert_eq!(
        asked.requested_documents().collect::<Vec<_>>(),
        [
            DocumentType::BusinessRegistration,
            DocumentType::TaxCertificate
        ]
    );
    let event: DocumentsRequested =
        wait_event(&mut tap, DOCUMENTS_REQUESTED, |e: &DocumentsRequested| {
            e.account == company.account
        })
        .await;
    assert_eq!(event.check, "business", "{event:?}");
    assert_eq!(
        event.document_types,
        ["business_registration", "tax_certificate"]
    );
    assert_eq!(event.reason, reason);
    assert!(
        business
            .name
            .starts_with(&format!("{}/", event.verification))
    );
    let due =
        event.due_time.unwrap_or_default().seconds - event.request_time.unwrap_or_default().seconds;
    assert_eq!(due, 30 * 86_400, "due in 30 days");
    tap.close().await;
    assert!(
        pending_reviews(&suite, &ops)
            .await
            .iter()
            .all(|c| c.name != business.name),
        "waiting for the partner, not a reviewer"
    );
    assert_eq!(
        status(&suite, &company).await,
        (Status::Pending, SubStatus::EmailOwnership),
        "the email still comes first"
    );

    // The Global admin uploads a PDF: the check goes back to review.
    let first = verification(&suite)
        .upload_document(with_token(
            &company.token,
            UploadDocumentRequest {
                check: business.name.clone(),
                r#type: DocumentType::BusinessRegistration.into(),
                content: pdf(),
                comment: "Extract of 2024.".into(),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.check, business.name);
    assert_eq!(first.content_type, "application/pdf");
    assert_eq!(first.size_bytes, i64::try_from(pdf().len()).unwrap());
    assert_eq!(first.r#type(), DocumentType::BusinessRegistration);
    assert_eq!(first.comment, "Extract of 2024.");
    assert_eq!(first.uploaded_by, company.user);
    assert!(
        first
            .name
            .starts_with(&format!("{}/documents/", company.account))
    );
    let back = check_of(&wait_checks(&suite, &company).await, CheckKind::Business);
    assert_eq!(back.status(), CheckStatus::Pending, "{back:?}");
    assert!(back.in_review);
    assert_eq!(back.appeals, 1);
    assert_eq!(back.reason, "DOCUMENTS_UPLOADED");
    let documents = documents_of(&suite, &company).await;
    assert_eq!(
        documents,
        std::slice::from_ref(&first),
        "listed as uploaded"
    );
    assert!(
        pending_reviews(&suite, &ops)
            .await
            .iter()
            .any(|c| c.name == business.name)
    );

    // Rejected; appealed twice more; a fourth upload is refused.
    for appeal in 1..=3 {
        let rejected = decide(
            &suite,
            &ops,
            &business.name,
            Decision::Reject,
            "The extract is for another company.",
        )
        .await
        .unwrap();
        assert_eq!(rejected.status(), CheckStatus::Rejected, "{rejected:?}");
        assert_eq!(rejected.reason, "REVIEWER_REJECTED");
        assert_eq!(rejected.appeals, appeal);
        assert!(!rejected.in_review);
        assert_eq!(
            status(&suite, &company).await,
            (Status::Rejected, SubStatus::BusinessVerification),
            "after rejection {appeal}"
        );
        let uploaded = upload(
            &suite,
            &company.token,
            &business.name,
            DocumentType::TaxCertificate,
            pdf(),
        )
        .await;
        if appeal < 3 {
            uploaded.unwrap();
            let back = check_of(&wait_checks(&suite, &company).await, CheckKind::Business);
            assert_eq!(back.status(), CheckStatus::Pending, "{back:?}");
            assert!(back.in_review);
            assert_eq!(back.appeals, appeal + 1);
            assert_eq!(
                status(&suite, &company).await,
                (Status::Pending, SubStatus::EmailOwnership),
                "an appeal lifts the rejection"
            );
        } else {
            let exhausted = uploaded.expect_err("a fourth appeal");
            assert_eq!(exhausted.code(), Code::FailedPrecondition, "{exhausted:?}");
            assert!(
                error_reason(&exhausted) == "APPEALS_EXHAUSTED"
                    || exhausted.message().contains("APPEALS_EXHAUSTED"),
                "{exhausted:?}"
            );
        }
    }
    let last = check_of(&wait_checks(&suite, &company).await, CheckKind::Business);
    assert_eq!(last.status(), CheckStatus::Rejected);
    assert_eq!(last.appeals, 3);
    assert_eq!(
        documents_of(&suite, &company).await.len(),
        3,
        "the refused upload is not kept"
    );
    assert_eq!(
        status(&suite, &company).await,
        (Status::Rejected, SubStatus::BusinessVerification)
    );

    suite.stop().await.unwrap();
}

#[tokio::test]
async fn malformed_uploads_are_refused_with_the_field_named() {
    let suite = suite_with_ops().await;
    let company = enroll(&suite, "Quokkanimbus", manual("Quokkanimbus Labs SAS")).await;
    let checks = wait_business(&suite, &company, CheckStatus::Pending).await;
    let business = check_of(&checks, CheckKind::Business);
    let email = check_of(&checks, CheckKind::EmailOwnership);
    let base = UploadDocumentRequest {
        check: business.name.clone(),
        r#type: DocumentType::BusinessRegistration.into(),
        content: pdf(),
        comment: String::new(),
        request_id: String::new(),
    };
    let send = |request: UploadDocumentRequest| {
        let suite = &suite;
        let token = company.token.clone();
        async move {
            verification(suite)
                .upload_document(with_token(&token, request))
                .await
                .map(tonic::Response::into_inner)
        }
    };

    let cases: Vec<(&str, UploadDocumentRequest, &[&str])> = vec![
        (
            "empty content",
            UploadDocumentRequest {
                content: Vec::new(),
                ..base.clone()
            },
            &["content"],
        ),
        (
            "plain text",
            UploadDocumentRequest {
                content: not_a_document(),
                ..base.clone()
            },
            &["content"],
        ),
        (
            "a GIF",
            UploadDocumentRequest {
                content: gif(),
                ..base.clone()
            },
            &["content"],
        ),
        (
            "a ZIP",
            UploadDocumentRequest {
                content: zip(),
                ..base.clone()
            },
            &["content"],
        ),
        (
            "a ZIP of files",
            UploadDocumentRequest {
                content: {
                    let mut z = vec![b'P', b'K', 3, 4];
                    z.extend_from_slice(&[20, 0, 0, 0, 0, 0]);
                    z.extend_from_slice(&[0; 20]);
                    z
                },
                ..base.clone()
            },
            &["content"],
        ),
        (
            "3 MiB + 1 byte",
            UploadDocumentRequest {
                content: pdf_of_len(3 * 1024 * 1024 + 1),
                ..base.clone()
            },
            &["content"],
        ),
        (
            "no type",
            UploadDocumentRequest {
                r#type: DocumentType::Unspecified.into(),
                ..base.clone()
            },
            &["type"],
        ),
        (
            "an unknown type",
            UploadDocumentRequest {
                r#type: 99,
                ..base.clone()
            },
            &["type"],
        ),
        (
            "a comment of 1001 characters",
            UploadDocumentRequest {
                comment: "x".repeat(1001),
                ..base.clone()
            },
            &["comment"],
        ),
        (
            "several problems",
            UploadDocumentRequest {
                r#type: DocumentType::Unspecified.into(),
                content: not_a_document(),
                comment: "é".repeat(1001),
                ..base.clone()
            },
            &["comment", "content", "type"],
        ),
    ];
    for (what, request, fields) in cases {
        let refused = send(request).await.expect_err(what);
        assert_eq!(refused.code(), Code::InvalidArgument, "{what}: {refused:?}");
        assert_eq!(violated_fields(&refused), fields, "{what}: {refused:?}");
    }
    assert!(
        documents_of(&suite, &company).await.is_empty(),
        "nothing refused is kept"
    );

    // PDF (exactly 3 MiB), PNG and JPEG are accepted, detected by content.
    for (content, content_type) in [
        (pdf_of_len(3 * 1024 * 1024), "application/pdf"),
        (png(), "image/png"),
        (jpeg(), "image/jpeg"),
    ] {
        let len = content.len();
        let stored = send(UploadDocumentRequest {
            content,
            comment: "é".repeat(1000),
            ..base.clone()
        })
        .await
        .unwrap_or_else(|e| panic!("{content_type} refused: {e:?}"));
        assert_eq!(stored.content_type, content_type);
        assert_eq!(stored.size_bytes, i64::try_from(len).unwrap());
    }
    // A check in review takes documents without counting an appeal.
    let business_now = check_of(&wait_checks(&suite, &company).await, CheckKind::Business);
    assert!(business_now.in_review);
    assert_eq!(business_now.appeals, 0);

    // Email ownership is proven by the mailed link, not a document.
    let refused = upload(
        &suite,
        &company.token,
        &email.name,
        DocumentType::BusinessRegistration,
        pdf(),
    )
    .await
    .expect_err("a document for the email check");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(error_reason(&refused), "CONFIRM_EMAIL_INSTEAD");

    // A retry with the same request_id returns the same document once.
    let before = documents_of(&suite, &company).await.len();
    let keyed = UploadDocumentRequest {
        content: png(),
        request_id: format!("upload-{}", partnerhub_testkit::unique()),
        ..base.clone()
    };
    let first = send(keyed.clone()).await.unwrap();
    let retried = send(keyed.clone()).await.unwrap();
    assert_eq!(first, retried);
    let documents = documents_of(&suite, &company).await;
    assert_eq!(documents.len(), before + 1, "{documents:?}");
    assert_eq!(documents.iter().filter(|d| d.name == first.name).count(), 1);
    // The same request_id for another file is refused.
    let reused = send(UploadDocumentRequest {
        content: jpeg(),
        ..keyed
    })
    .await
    .expect_err("a reused request_id");
    assert_eq!(reused.code(), Code::InvalidArgument, "{reused:?}");
    assert_eq!(documents_of(&suite, &company).await.len(), before + 1);

    suite.stop().await.unwrap();
}

#[tokio::test]
async fn accounts_only_see_their_own_checks_and_documents() {
    let suite = suite_with_ops().await;
    let a = enroll(&suite, "Quokkanimbus", manual("Quokkanimbus Labs SAS")).await;
    let b = enroll(&suite, "Wombatcloud", manual("Wombatcloud Works SAS")).await;
    let business = check_of(
        &wait_business(&suite, &a, CheckStatus::Pending).await,
        CheckKind::Business,
    );
    let b_business = check_of(
        &wait_business(&suite, &b, CheckStatus::Pending).await,
        CheckKind::Business,
    );
    let a_document = upload(
        &suite,
        &a.token,
        &business.name,
        DocumentType::BusinessRegistration,
        pdf(),
    )
    .await
    .unwrap();
    let mut client = verification(&suite);

    // B's token on A's check and A's account.
    let refused = [
        (
            "upload to A's check",
            upload(
                &suite,
                &b.token,
                &business.name,
                DocumentType::BusinessRegistration,
                pdf(),
            )
            .await
            .map(|_| ()),
        ),
        (
            "upload to A's check under B's account",
            upload(
                &suite,
                &b.token,
                &business
                    .name
                    .replace(a.account.as_str(), b.account.as_str()),
                DocumentType::BusinessRegistration,
                pdf(),
            )
            .await
            .map(|_| ()),
        ),
        (
            "list A's verifications",
            client
                .list_verifications(with_token(
                    &b.token,
                    ListVerificationsRequest {
                        parent: a.account.clone(),
                        ..ListVerificationsRequest::default()
                    },
                ))
                .await
                .map(|_| ()),
        ),
        (
            "list A's documents",
            client
                .list_documents(with_token(
                    &b.token,
                    ListDocumentsRequest {
                        parent: a.account.clone(),
                        ..ListDocumentsRequest::default()
                    },
                ))
                .await
                .map(|_| ()),
        ),
        (
            "read A's status",
            client
                .get_verification_status(with_token(
                    &b.token,
                    GetVerificationStatusRequest {
                        name: format!("{}/verificationStatus", a.account),
                    },
                ))
                .await
                .map(|_| ()),
        ),
    ];
    for (what, result) in refused {
        let status = result.expect_err(what);
        assert_eq!(status.code(), Code::NotFound, "{what}: {status:?}");
    }
    assert_eq!(
        documents_of(&suite, &a).await,
        std::slice::from_ref(&a_document)
    );
    assert!(documents_of(&suite, &b).await.is_empty());
    let untouched = check_of(&wait_checks(&suite, &a).await, CheckKind::Business);
    assert!(
        untouched.in_review && untouched.appeals == 0,
        "{untouched:?}"
    );

    // Malformed check names.
    for name in [
        "",
        "checks/1",
        "accounts/x/verifications/y/checks/z",
        &format!("{}/checks/{}", a.account, uuid_of(&business.name)),
    ] {
        let refused = upload(&suite, &a.token, name, DocumentType::TaxCertificate, pdf())
            .await
            .expect_err(name);
        assert_eq!(
            refused.code(),
            Code::InvalidArgument,
            "{name:?}: {refused:?}"
        );
        assert_eq!(violated_fields(&refused), ["check"], "{name:?}");
    }

    // No token.
    let unauthenticated = [
        client
            .upload_document(UploadDocumentRequest {
                check: business.name.clone(),
                r#type: DocumentType::TaxCertificate.into(),
                content: pdf(),
                ..UploadDocumentRequest::default()
            })
            .await
            .map(|_| ()),
        client
            .list_verifications(ListVerificationsRequest {
                parent: a.account.clone(),
                ..ListVerificationsRequest::default()
            })
            .await
            .map(|_| ()),
        client
            .list_documents(ListDocumentsRequest {
                parent: a.account.clone(),
                ..ListDocumentsRequest::default()
            })
            .await
            .map(|_| ()),
        client
            .get_verification_status(GetVerificationStatusRequest {
                name: format!("{}/verificationStatus", a.account),
            })
            .await
            .map(|_| ()),
        client
            .list_pending_reviews(ListPendingReviewsRequest::default())
            .await
            .map(|_| ()),
    ];
    for result in unauthenticated {
        let status = result.expect_err("no token");
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    }

    // A member without verification permissions.
    let referrals = member_token(&suite, &a, &["referrals_user"]).await;
    let denied = [
        upload(
            &suite,
            &referrals,
            &business.name,
            DocumentType::TaxCertificate,
            pdf(),
        )
        .await
        .map(|_| ()),
        client
            .list_verifications(with_token(
                &referrals,
                ListVerificationsRequest {
                    parent: a.account.clone(),
                    ..ListVerificationsRequest::default()
                },
            ))
            .await
            .map(|_| ()),
        client
            .list_documents(with_token(
                &referrals,
                ListDocumentsRequest {
                    parent: a.account.clone(),
                    ..ListDocumentsRequest::default()
                },
            ))
            .await
            .map(|_| ()),
        client
            .get_verification_status(with_token(
                &referrals,
                GetVerificationStatusRequest {
                    name: format!("{}/verificationStatus", a.account),
                },
            ))
            .await
            .map(|_| ()),
    ];
    for result in denied {
        let status = result.expect_err("a referrals user");
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    }

    // The reviewers' service account is not the account's member either.
    let ops = ops_token(&suite).await;
    let nowhere = format!(
        "accounts/{}/verifications/{}/checks/{}",
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4()
    );
    let missing = decide(&suite, &ops, &nowhere, Decision::Pass, "")
        .await
        .expect_err("no such check");
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    let missing = request_documents(
        &suite,
        &ops,
        &nowhere,
        &[DocumentType::TaxCertificate],
        "Anything?",
    )
    .await
    .expect_err("no such check");
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    let status = client
        .list_verifications(with_token(
            &ops,
            ListVerificationsRequest {
                parent: a.account.clone(),
                ..ListVerificationsRequest::default()
            },
        ))
        .await
        .expect_err("ops lists an account's cases");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    // But it sees both accounts' checks in review.
    let pending: Vec<String> = pending_reviews(&suite, &ops)
        .await
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert!(pending.contains(&business.name) && pending.contains(&b_business.name));
    // Oldest first, one page at a time.
    let all = pending_reviews(&suite, &ops).await;
    let since: Vec<_> = all
        .iter()
        .map(|c| {
            let t = c.update_time.unwrap_or_default();
            (t.seconds, t.nanos)
        })
        .collect();
    assert!(since.windows(2).all(|w| w[0] <= w[1]), "{all:?}");
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_pending_reviews(with_token(
                &ops,
                ListPendingReviewsRequest {
                    page_size: 1,
                    page_token: token,
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(page.checks.len() <= 1);
        paged.extend(page.checks.into_iter().map(|c| c.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
        assert!(paged.len() <= all.len(), "paging does not end: {paged:?}");
    }
    assert_eq!(paged, pending);
    assert_eq!(documents_of(&suite, &a).await.len(), 1);

    suite.stop().await.unwrap();
}

/// The last id of a resource name.
fn uuid_of(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or_default()
}

#[tokio::test]
async fn weak_matches_and_foreign_domains_ask_for_documents() {
    let suite = suite_with_ops().await;
    let ops = ops_token(&suite).await;
    let mut tap = EventTap::start(&suite.bus).await.unwrap();

    // A misspelled name for Contoso's DUNS number: a weak match.
    let weak = enroll(&suite, "Contoso", by_duns("Contosso SAS")).await;
    let checks = wait_checks(&suite, &weak).await;
    let business = check_of(&checks, CheckKind::Business);
    assert_eq!(
        business.status(),
        CheckStatus::ActionRequired,
        "{business:?}"
    );
    assert_eq!(business.reason, "WEAK_MATCH");
    assert!(!business.in_review);
    assert_eq!(
        business.requested_documents().collect::<Vec<_>>(),
        [
            DocumentType::BusinessRegistration,
            DocumentType::TaxCertificate,
            DocumentType::UtilityReceipt
        ]
    );
    // A weak match vouches for no domain.
    assert_eq!(
        check_of(&checks, CheckKind::Employment).status(),
        CheckStatus::ActionRequired
    );
    let event = wait_event(&mut tap, DOCUMENTS_REQUESTED, |e: &DocumentsRequested| {
        e.account == weak.account && e.check == "business"
    })
    .await;
    assert_eq!(event.document_types.len(), 3, "{event:?}");

    // The right name for the same number passes.
    let clear = enroll(&suite, "Contoso", by_duns("Contoso SAS")).await;
    let business = check_of(&wait_checks(&suite, &clear).await, CheckKind::Business);
    assert_eq!(business.status(), CheckStatus::Passed, "{business:?}");
    assert_eq!(business.reason, "DIRECTORY_MATCH");

    // A primary contact at another domain than the founder's.
    let foreign = enroll(
        &suite,
        "Contoso",
        LegalProfile {
            primary_contact: Some(Contact {
                given_name: "Ada".into(),
                family_name: "Byron".into(),
                email: format!(
                    "ada.{}@fabrikam-consulting.com",
                    partnerhub_testkit::unique()
                ),
                ..Contact::default()
            }),
            ..by_duns("Contoso SAS")
        },
    )
    .await;
    let checks = wait_checks(&suite, &foreign).await;
    let employment = check_of(&checks, CheckKind::Employment);
    assert_eq!(
        employment.status(),
        CheckStatus::ActionRequired,
        "{employment:?}"
    );
    assert_eq!(employment.reason, "DOMAIN_NOT_OWNED");
    assert_eq!(
        employment.requested_documents().collect::<Vec<_>>(),
        [
            DocumentType::DomainOwnershipProof,
            DocumentType::EmploymentLetter
        ]
    );
    assert_eq!(
        check_of(&checks, CheckKind::EmailDomain).status(),
        CheckStatus::Passed,
        "not free mail"
    );
    assert_eq!(
        check_of(&checks, CheckKind::Business).status(),
        CheckStatus::Passed
    );
    let event = wait_event(&mut tap, DOCUMENTS_REQUESTED, |e: &DocumentsRequested| {
        e.account == foreign.account
    })
    .await;
    assert_eq!(event.check, "employment");
    assert_eq!(
        event.document_types,
        ["domain_ownership_proof", "employment_letter"]
    );
    tap.close().await;

    // The employment letter sends it to review; the reviewer passes it.
    let letter = upload(
        &suite,
        &foreign.token,
        &employment.name,
        DocumentType::EmploymentLetter,
        pdf(),
    )
    .await
    .unwrap();
    assert_eq!(letter.r#type(), DocumentType::EmploymentLetter);
    let in_review = check_of(&wait_checks(&suite, &foreign).await, CheckKind::Employment);
    assert_eq!(in_review.status(), CheckStatus::Pending, "{in_review:?}");
    assert!(in_review.in_review);
    assert_eq!(in_review.appeals, 1);
    assert!(
        pending_reviews(&suite, &ops)
            .await
            .iter()
            .any(|c| c.name == employment.name)
    );
    let passed = decide(
        &suite,
        &ops,
        &employment.name,
        Decision::Pass,
        "Letter signed by the CEO.",
    )
    .await
    .unwrap();
    assert_eq!(passed.status(), CheckStatus::Passed, "{passed:?}");
    assert_eq!(passed.message, "Letter signed by the CEO.");
    let checks = wait_checks(&suite, &foreign).await;
    let open: Vec<CheckKind> = checks
        .iter()
        .filter(|c| c.status() != CheckStatus::Passed)
        .map(|c| c.kind())
        .collect();
    assert_eq!(open, [CheckKind::EmailOwnership], "{checks:?}");
    assert_eq!(
        status(&suite, &foreign).await,
        (Status::Pending, SubStatus::EmailOwnership)
    );

    // Free mail is refused outright.
    let free = enroll(
        &suite,
        "Contoso",
        LegalProfile {
            primary_contact: Some(Contact {
                given_name: "Ada".into(),
                family_name: "Byron".into(),
                email: format!("ada.{}@gmail.com", partnerhub_testkit::unique()),
                ..Contact::default()
            }),
            ..by_duns("Contoso SAS")
        },
    )
    .await;
    let checks = wait_checks(&suite, &free).await;
    let domain = check_of(&checks, CheckKind::EmailDomain);
    assert_eq!(domain.status(), CheckStatus::Rejected, "{domain:?}");
    assert_eq!(domain.reason, "FREE_MAIL_PROVIDER");
    wait_status(&suite, &free, (Status::Rejected, SubStatus::EmailDomain)).await;

    suite.stop().await.unwrap();
}

#[tokio::test]
async fn history_shows_every_transition_and_cases_page() {
    let suite = suite_with_ops().await;
    let ops = ops_token(&suite).await;
    let company = enroll(&suite, "Quokkanimbus", manual("Quokkanimbus Labs SAS")).await;
    let business = check_of(
        &wait_business(&suite, &company, CheckStatus::Pending).await,
        CheckKind::Business,
    );
    request_documents(
        &suite,
        &ops,
        &business.name,
        &[DocumentType::UtilityReceipt],
        "Show a receipt at the address.",
    )
    .await
    .unwrap();
    upload(
        &suite,
        &company.token,
        &business.name,
        DocumentType::UtilityReceipt,
        jpeg(),
    )
    .await
    .unwrap();
    decide(
        &suite,
        &ops,
        &business.name,
        Decision::Pass,
        "Receipt is fine.",
    )
    .await
    .unwrap();

    let cases = cases_of(&suite, &company, true).await;
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].trigger, "ENROLLMENT");
    assert_eq!(cases[0].state, "OPEN", "the email is not confirmed");
    let check = check_of(&cases[0].checks, CheckKind::Business);
    let steps: Vec<(CheckStatus, CheckStatus, &str, &str)> = check
        .history
        .iter()
        .map(|t| {
            (
                t.old_status(),
                t.new_status(),
                t.reason.as_str(),
                t.actor.as_str(),
            )
        })
        .collect();
    let ops_name = ops_actor();
    assert_eq!(
        steps,
        [
            (
                CheckStatus::Pending,
                CheckStatus::Pending,
                "MANUAL_ENTRY",
                "verification"
            ),
            (
                CheckStatus::Pending,
                CheckStatus::ActionRequired,
                "DOCUMENTS_REQUESTED",
                ops_name.as_str()
            ),
            (
                CheckStatus::ActionRequired,
                CheckStatus::Pending,
                "DOCUMENTS_UPLOADED",
                company.user.as_str()
            ),
            (
                CheckStatus::Pending,
                CheckStatus::Passed,
                "REVIEWER_PASSED",
                ops_name.as_str()
            ),
        ],
        "{:?}",
        check.history
    );
    let times: Vec<_> = check
        .history
        .iter()
        .map(|t| {
            let t = t.time.unwrap_or_default();
            (t.seconds, t.nanos)
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(times.iter().all(|t| t.0 > 0));
    // Without show_history, no history.
    assert!(
        cases_of(&suite, &company, false).await[0]
            .checks
            .iter()
            .all(|c| c.history.is_empty())
    );

    // A new legal name opens a second case, with a business check only.
    update_legal(
        &suite,
        &company,
        |p| p.legal_name = "Quokkanimbus Europe SAS".into(),
        &["legal_name"],
    )
    .await;
    let second = wait_cases(&suite, &company, 2).await;
    assert_eq!(second[0].trigger, "LEGAL_PROFILE");
    let kinds: Vec<CheckKind> = second[0].checks.iter().map(|c| c.kind()).collect();
    assert_eq!(kinds, [CheckKind::Business]);

    let mut client = verification(&suite);
    let page = |token: String| ListVerificationsRequest {
        parent: company.account.clone(),
        page_size: 1,
        page_token: token,
        show_history: true,
    };
    let first = client
        .list_verifications(with_token(&company.token, page(String::new())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.verifications.len(), 1);
    assert_eq!(first.verifications[0].name, second[0].name);
    assert!(!first.next_page_token.is_empty());
    let next = client
        .list_verifications(with_token(
            &company.token,
            page(first.next_page_token.clone()),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next.verifications.len(), 1);
    assert_eq!(next.verifications[0].name, second[1].name);
    assert_eq!(next.verifications[0].trigger, "ENROLLMENT");
    assert_eq!(
        check_of(&next.verifications[0].checks, CheckKind::Business)
            .history
            .len(),
        4
    );
    assert!(next.next_page_token.is_empty(), "{next:?}");
    // A token of another listing is refused.
    let other = client
        .list_verifications(with_token(
            &company.token,
            ListVerificationsRequest {
                parent: company.account.clone(),
                page_size: 1,
                page_token: "not-a-token".into(),
                show_history: false,
            },
        ))
        .await
        .expect_err("a bad page token");
    assert_eq!(other.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&other), ["page_token"]);

    suite.stop().await.unwrap();
}

#[tokio::test]
async fn a_newer_change_supersedes_the_check_under_review() {
    let suite = suite_with_ops().await;
    let ops = ops_token(&suite).await;
    let company = enroll(&suite, "Quokkanimbus", manual("Quokkanimbus Labs SAS")).await;
    let old = check_of(
        &wait_business(&suite, &company, CheckStatus::Pending).await,
        CheckKind::Business,
    );
    assert!(old.in_review);

    update_legal(
        &suite,
        &company,
        |p| p.legal_name = "Quokkanimbus Europe SAS".into(),
        &["legal_name"],
    )
    .await;
    let cases = wait_cases(&suite, &company, 2).await;
    let new = check_of(&cases[0].checks, CheckKind::Business);
    assert_eq!(new.status(), CheckStatus::Pending, "{new:?}");
    assert!(new.in_review);
    assert_eq!(new.reason, "MANUAL_ENTRY");
    let replaced = check_of(&cases[1].checks, CheckKind::Business);
    assert_eq!(replaced.name, old.name);
    assert_eq!(replaced.reason, "SUPERSEDED", "{replaced:?}");

    // Only the new check waits for a reviewer; the old one takes nothing.
    let pending: Vec<String> = pending_reviews(&suite, &ops)
        .await
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(pending, std::slice::from_ref(&new.name));
    let decided = decide(&suite, &ops, &old.name, Decision::Pass, "")
        .await
        .expect_err("a superseded check is not decided");
    assert_eq!(decided.code(), Code::FailedPrecondition, "{decided:?}");
    assert_eq!(error_reason(&decided), "CHECK_SUPERSEDED");
    let uploaded = upload(
        &suite,
        &company.token,
        &old.name,
        DocumentType::BusinessRegistration,
        pdf(),
    )
    .await
    .expect_err("an upload to a superseded check");
    assert_eq!(uploaded.code(), Code::FailedPrecondition, "{uploaded:?}");
    assert_eq!(error_reason(&uploaded), "CHECK_SUPERSEDED");
    assert!(documents_of(&suite, &company).await.is_empty());

    // Passing the new one leaves the account waiting for the email only.
    decide(&suite, &ops, &new.name, Decision::Pass, "")
        .await
        .unwrap();
    assert_eq!(
        status(&suite, &company).await,
        (Status::Pending, SubStatus::EmailOwnership)
    );
    let cases = cases_of(&suite, &company, false).await;
    assert_eq!(cases[0].state, "CLOSED", "its only check passed: {cases:?}");
    assert!(cases[0].close_time.is_some());
    assert_eq!(cases[1].state, "OPEN", "the email is not confirmed");

    suite.stop().await.unwrap();
}

#[tokio::test]
async fn each_requested_document_type_is_asked_once() {
    let suite = suite_with_ops().await;
    let ops = ops_token(&suite).await;
    let company = enroll(&suite, "Quokkanimbus", manual("Quokkanimbus Labs SAS")).await;
    let business = check_of(
        &wait_business(&suite, &company, CheckStatus::Pending).await,
        CheckKind::Business,
    );
    let mut tap = EventTap::start(&suite.bus).await.unwrap();
    let asked = request_documents(
        &suite,
        &ops,
        &business.name,
        &[
            DocumentType::UtilityReceipt,
            DocumentType::BusinessRegistration,
            DocumentType::UtilityReceipt,
        ],
        "A receipt or an extract.",
    )
    .await
    .unwrap();
    let event = wait_event(&mut tap, DOCUMENTS_REQUESTED, |e: &DocumentsRequested| {
        e.account == company.account
    })
    .await;
    tap.close().await;
    assert_eq!(
        asked.requested_documents().collect::<Vec<_>>(),
        [
            DocumentType::UtilityReceipt,
            DocumentType::BusinessRegistration
        ],
        "{asked:?}"
    );
    assert_eq!(
        event.document_types,
        ["utility_receipt", "business_registration"]
    );

    suite.stop().await.unwrap();
}

#[tokio::test]
async fn reviewers_read_a_documents_content_and_partners_cannot() {
    let suite = suite_with_ops().await;
    let ops = ops_token(&suite).await;
    let company = enroll(&suite, "Contoso", manual("Contoso Manual SAS")).await;
    let other = enroll(&suite, "Fabrikam", manual("Fabrikam Manual SAS")).await;
    let employment = check_of(&wait_checks(&suite, &company).await, CheckKind::Employment);
    let file = pdf();
    let document = upload(
        &suite,
        &company.token,
        &employment.name,
        DocumentType::EmploymentLetter,
        file.clone(),
    )
    .await
    .unwrap();
    let mut client = verification(&suite);
    let read = client
        .get_document_content(with_token(
            &ops,
            GetDocumentContentRequest {
                name: document.name.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.content, file);
    assert_eq!(read.document, Some(document.clone()));
    // Partners, even the uploader's Global admin, never read it back here.
    let refused = client
        .get_document_content(with_token(
            &company.token,
            GetDocumentContentRequest {
                name: document.name.clone(),
            },
        ))
        .await
        .expect_err("a partner reads a document");
    assert_eq!(refused.code(), Code::PermissionDenied);
    // The document under another account's name is not found.
    let id = document.name.rsplit('/').next().unwrap();
    let elsewhere = client
        .get_document_content(with_token(
            &ops,
            GetDocumentContentRequest {
                name: format!("{}/documents/{id}", other.account),
            },
        ))
        .await
        .expect_err("found under another account");
    assert_eq!(elsewhere.code(), Code::NotFound);
    suite.stop().await.unwrap();
}
