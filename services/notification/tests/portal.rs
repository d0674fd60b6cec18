//! In-portal notifications and actions, end to end: events published as
//! verification, profile, merge and the billing system would publish them
//! become mail at the suite's SMTP server and notifications in the portal;
//! mandatory actions cannot be archived until the fact that ends them
//! arrives, in whatever order; lists filter and page; a user sees only
//! their own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{
    MAIL_WAIT, error_reason, link_token, make_primary_contact, my_notifications, notifications,
    publisher, refusal, time_of, ts, violated_fields, wait_notification_where, wait_projected,
};
use partnerhub_proto::billing::v1::InvoiceOverdue;
use partnerhub_proto::merge::v1::MergeInvitationRejected;
use partnerhub_proto::notification::v1::{
    ArchiveNotificationRequest, GetUnreadCountRequest, GetUnreadCountResponse, Kind,
    ListNotificationsRequest, ListNotificationsResponse, MarkNotificationReadRequest, Notification,
    SendMail, Workspace,
};
use partnerhub_proto::profile::v1::{ProgramKind, ProgramStatusChanged};
use partnerhub_proto::verification::v1::{
    DocumentsRequested, Status, SubStatus, VerificationStatusChanged,
};
use partnerhub_testkit::clients::sign_up;
use partnerhub_testkit::{Company, PORTAL_URL, Publisher, Suite, bearer, unique};
use tonic::Code;
use uuid::Uuid;

const VERIFICATION_LINK: &str = "/account/verification";

/// Publishes that `company`'s verification went from `old` to `new` at
/// `time`.
async fn verification(
    bus: &Publisher,
    company: &Company,
    old: Status,
    new: Status,
    sub_status: SubStatus,
    time: DateTime<Utc>,
) {
    let event = VerificationStatusChanged {
        account: company.account.clone(),
        old_status: old.into(),
        status: new.into(),
        sub_status: sub_status.into(),
        verification: format!("{}/verifications/{}", company.account, Uuid::now_v7()),
        change_time: Some(ts(time)),
    };
    bus.event("verification", &company.account, &event)
        .await
        .unwrap();
}

/// Publishes that `company`'s `program` went from `old` to `new` (names
/// without their `PROGRAM_STATUS_` prefix) at `time`.
async fn program(
    bus: &Publisher,
    company: &Company,
    program: ProgramKind,
    old: &str,
    new: &str,
    time: DateTime<Utc>,
) {
    let event = ProgramStatusChanged {
        account: company.account.clone(),
        program: program.into(),
        old_status: format!("PROGRAM_STATUS_{old}"),
        new_status: format!("PROGRAM_STATUS_{new}"),
        change_time: Some(ts(time)),
    };
    bus.event("profile", &company.account, &event)
        .await
        .unwrap();
}

/// A signed-up founder (a Global admin, no enrollment: verification never
/// starts on its own) whose welcome mail was taken and whom notification
/// knows.
async fn known_founder(suite: &Suite, name: &str) -> Company {
    let founder = sign_up(suite, name).await.unwrap();
    suite.smtp.next_to(&founder.email, MAIL_WAIT).await.unwrap(); // welcome
    wait_projected(suite, &founder, "").await;
    founder
}

/// A signed-up founder (a Global admin) who is also the primary contact of
/// their account, whose welcome mail was taken and whom notification knows.
/// The account is not enrolled, so verification opens no case of its own:
/// the verification events of the test are the only ones.
async fn known_company(suite: &Suite, name: &str) -> Company {
    let company = sign_up(suite, name).await.unwrap();
    suite.smtp.next_to(&company.email, MAIL_WAIT).await.unwrap(); // welcome
    wait_projected(suite, &company, "").await;
    make_primary_contact(suite, &company).await;
    company
}

async fn unread(suite: &Suite, token: &str) -> GetUnreadCountResponse {
    notifications(suite)
        .get_unread_count(
            bearer(
                token,
                GetUnreadCountRequest {
                    parent: "users/me".into(),
                },
            )
            .unwrap(),
        )
        .await
        .unwrap()
        .into_inner()
}

async fn list(
    suite: &Suite,
    token: &str,
    request: ListNotificationsRequest,
) -> Result<ListNotificationsResponse, tonic::Status> {
    notifications(suite)
        .list_notifications(bearer(token, request).unwrap())
        .await
        .map(tonic::Response::into_inner)
}

async fn mark_read(
    suite: &Suite,
    token: &str,
    name: &str,
) -> Result<tonic::Response<Notification>, tonic::Status> {
    notifications(suite)
        .mark_notification_read(
            bearer(
                token,
                MarkNotificationReadRequest {
                    name: name.to_owned(),
                },
            )
            .unwrap(),
        )
        .await
}

async fn archive(
    suite: &Suite,
    token: &str,
    name: &str,
) -> Result<tonic::Response<Notification>, tonic::Status> {
    notifications(suite)
        .archive_notification(
            bearer(
                token,
                ArchiveNotificationRequest {
                    name: name.to_owned(),
                },
            )
            .unwrap(),
        )
        .await
}

fn names(notifications: &[Notification]) -> Vec<String> {
    notifications.iter().map(|n| n.name.clone()).collect()
}

fn is_action(n: &Notification, link: &str) -> bool {
    n.kind == Kind::MandatoryAction as i32 && n.link == link
}

/// Asserts `actual` is `expected` within two seconds.
fn assert_near(actual: DateTime<Utc>, expected: DateTime<Utc>, what: &str) {
    let gap = (actual - expected).num_milliseconds().abs();
    assert!(gap < 2_000, "{what}: {actual} instead of about {expected}");
}

#[tokio::test]
async fn a_pending_verification_is_a_mandatory_action_until_it_is_authorized() {
    let suite = Suite::start().await.unwrap();
    let ada = known_company(&suite, "Contoso").await;
    let bus = publisher(&suite).await;

    let pending_time = Utc::now();
    verification(
        &bus,
        &ada,
        Status::None,
        Status::Pending,
        SubStatus::Entry,
        pending_time,
    )
    .await;

    // One mail, though the founder is both the primary contact and a
    // Global admin.
    let mail = suite.smtp.next_to(&ada.email, MAIL_WAIT).await.unwrap();
    assert_eq!(mail.content_language.as_deref(), Some("en-US"));
    assert!(
        mail.subject.contains("Verification") && mail.subject.contains("Contoso"),
        "{}",
        mail.subject
    );
    assert!(
        mail.text
            .contains(&format!("{PORTAL_URL}{VERIFICATION_LINK}")),
        "{}",
        mail.text
    );
    assert!(
        mail.html
            .contains(&format!("{PORTAL_URL}{VERIFICATION_LINK}")),
        "{}",
        mail.html
    );

    let action = wait_notification_where(&suite, &ada.token, "verification action", |n| {
        is_action(n, VERIFICATION_LINK)
    })
    .await;
    assert!(
        action
            .name
            .starts_with(&format!("{}/notifications/", ada.user)),
        "{}",
        action.name
    );
    assert_eq!(action.workspace, Workspace::AccountSettings as i32);
    assert_eq!(action.account, ada.account);
    assert!(action.title.contains("Contoso"), "{}", action.title);
    assert!(!action.body.is_empty());
    assert_near(
        time_of(action.due_time),
        pending_time + chrono::Duration::days(30),
        "due time",
    );
    assert!(action.read_time.is_none() && action.archive_time.is_none());
    assert!(action.resolve_time.is_none(), "{action:?}");
    suite
        .smtp
        .expect_none_to(&ada.email, Duration::from_millis(800))
        .await
        .unwrap();

    let before = unread(&suite, &ada.token).await;
    assert!(before.unread_count >= 1, "{before:?}");
    assert_eq!(before.pending_mandatory_actions, 1, "{before:?}");

    let refused = refusal(archive(&suite, &ada.token, &action.name).await);
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(error_reason(&refused), "MANDATORY_ACTION_UNRESOLVED");

    let read = mark_read(&suite, &ada.token, &action.name)
        .await
        .unwrap()
        .into_inner();
    let read_time = read.read_time.expect("read_time is set");
    assert!(read.archive_time.is_none());
    let after = unread(&suite, &ada.token).await;
    assert_eq!(after.unread_count, before.unread_count - 1, "{after:?}");
    assert_eq!(
        after.pending_mandatory_actions, 1,
        "a read action is still pending"
    );
    // Again: nothing changes.
    let again = mark_read(&suite, &ada.token, &action.name)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.read_time, Some(read_time));
    assert_eq!(unread(&suite, &ada.token).await, after);

    let authorized_time = Utc::now();
    verification(
        &bus,
        &ada,
        Status::Pending,
        Status::Authorized,
        SubStatus::Decision,
        authorized_time,
    )
    .await;
    let mail = suite.smtp.next_to(&ada.email, MAIL_WAIT).await.unwrap();
    assert!(
        mail.subject.contains("is verified") && mail.subject.contains("Contoso"),
        "{}",
        mail.subject
    );
    let resolved = wait_notification_where(&suite, &ada.token, "resolved action", |n| {
        n.name == action.name && n.resolve_time.is_some()
    })
    .await;
    assert_eq!(resolved.due_time, action.due_time);
    let verified = wait_notification_where(&suite, &ada.token, "telling it is verified", |n| {
        n.kind == Kind::Transactional as i32 && n.link == VERIFICATION_LINK
    })
    .await;
    assert!(verified.title.contains("verified"), "{}", verified.title);
    assert_eq!(verified.workspace, Workspace::AccountSettings as i32);
    assert!(verified.due_time.is_none() && verified.resolve_time.is_none());
    assert!(verified.read_time.is_none());

    let now = unread(&suite, &ada.token).await;
    assert_eq!(now.pending_mandatory_actions, 0, "{now:?}");
    assert_eq!(now.unread_count, after.unread_count + 1, "{now:?}");

    let archived = archive(&suite, &ada.token, &action.name)
        .await
        .unwrap()
        .into_inner();
    let archive_time = archived.archive_time.expect("archive_time is set");
    assert_eq!(
        archived.resolve_time, resolved.resolve_time,
        "archiving keeps the resolution"
    );
    // Again: nothing changes.
    let again = archive(&suite, &ada.token, &action.name)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.archive_time, Some(archive_time));

    let default = list(
        &suite,
        &ada.token,
        ListNotificationsRequest {
            parent: "users/me".into(),
            ..ListNotificationsRequest::default()
        },
    )
    .await
    .unwrap();
    assert!(
        !names(&default.notifications).contains(&action.name),
        "an archived notification leaves the default list"
    );
    assert!(names(&default.notifications).contains(&verified.name));
    let with_archived = list(
        &suite,
        &ada.token,
        ListNotificationsRequest {
            parent: "users/me".into(),
            show_archived: true,
            ..ListNotificationsRequest::default()
        },
    )
    .await
    .unwrap();
    let shown = with_archived
        .notifications
        .iter()
        .find(|n| n.name == action.name)
        .expect("show_archived lists it");
    assert_eq!(shown.archive_time, Some(archive_time));
    suite.stop().await.unwrap();
}

#[tokio::test]
async fn an_action_whose_resolution_arrived_first_is_born_resolved() {
    let suite = Suite::start().await.unwrap();
    let ada = known_founder(&suite, "Fabrikam").await;
    let bus = publisher(&suite).await;
    let pending_time = Utc::now() - chrono::Duration::minutes(5);
    let authorized_time = Utc::now();

    // AUTHORIZED is consumed before the PENDING that preceded it.
    verification(
        &bus,
        &ada,
        Status::Pending,
        Status::Authorized,
        SubStatus::Decision,
        authorized_time,
    )
    .await;
    wait_notification_where(&suite, &ada.token, "telling it is verified", |n| {
        n.kind == Kind::Transactional as i32 && n.link == VERIFICATION_LINK
    })
    .await;
    verification(
        &bus,
        &ada,
        Status::None,
        Status::Pending,
        SubStatus::Entry,
        pending_time,
    )
    .await;
    let action = wait_notification_where(&suite, &ada.token, "verification action", |n| {
        is_action(n, VERIFICATION_LINK)
    })
    .await;
    assert!(action.resolve_time.is_some(), "born resolved: {action:?}");
    assert_near(
        time_of(action.due_time),
        pending_time + chrono::Duration::days(30),
        "due time",
    );
    assert_eq!(
        unread(&suite, &ada.token).await.pending_mandatory_actions,
        0
    );
    archive(&suite, &ada.token, &action.name).await.unwrap();

    // A verification that starts again after the decision is a new,
    // open action.
    verification(
        &bus,
        &ada,
        Status::Authorized,
        Status::Pending,
        SubStatus::Other,
        Utc::now(),
    )
    .await;
    let reopened = wait_notification_where(&suite, &ada.token, "second verification action", |n| {
        is_action(n, VERIFICATION_LINK) && n.name != action.name
    })
    .await;
    assert!(reopened.resolve_time.is_none(), "{reopened:?}");
    assert_eq!(
        unread(&suite, &ada.token).await.pending_mandatory_actions,
        1
    );
    suite.stop().await.unwrap();
}

#[tokio::test]
async fn requested_documents_are_mailed_and_due_until_verification_passes() {
    let suite = Suite::start().await.unwrap();
    let ada = known_company(&suite, "Contoso").await;
    let bus = publisher(&suite).await;
    let request_time = Utc::now();
    let due = DateTime::from_timestamp((request_time + chrono::Duration::days(14)).timestamp(), 0)
        .unwrap();
    let reason = "The registration number does not match the legal name";
    bus.event(
        "verification",
        &ada.account,
        &DocumentsRequested {
            account: ada.account.clone(),
            verification: format!("{}/verifications/{}", ada.account, Uuid::now_v7()),
            check: "business".into(),
            document_types: vec!["business_registration".into(), "tax_certificate".into()],
            reason: reason.into(),
            request_time: Some(ts(request_time)),
            due_time: Some(ts(due)),
        },
    )
    .await
    .unwrap();

    let mail = suite.smtp.next_to(&ada.email, MAIL_WAIT).await.unwrap();
    assert!(
        mail.subject.contains("documents") && mail.subject.contains("Contoso"),
        "{}",
        mail.subject
    );
    let due_date = due.format("%Y-%m-%d").to_string();
    for part in [
        reason,
        "Business registration",
        "Tax registration certificate",
        due_date.as_str(),
    ] {
        assert!(mail.text.contains(part), "{part:?} in {}", mail.text);
        assert!(mail.html.contains(part), "{part:?} in {}", mail.html);
    }

    let action = wait_notification_where(&suite, &ada.token, "documents action", |n| {
        is_action(n, VERIFICATION_LINK)
    })
    .await;
    assert_eq!(action.workspace, Workspace::AccountSettings as i32);
    assert_eq!(time_of(action.due_time), due, "the event's due time");
    assert!(action.resolve_time.is_none());
    assert_eq!(
        unread(&suite, &ada.token).await.pending_mandatory_actions,
        1
    );
    let refused = refusal(archive(&suite, &ada.token, &action.name).await);
    assert_eq!(refused.code(), Code::FailedPrecondition);

    verification(
        &bus,
        &ada,
        Status::Pending,
        Status::Authorized,
        SubStatus::Decision,
        Utc::now(),
    )
    .await;
    wait_notification_where(&suite, &ada.token, "resolved documents action", |n| {
        n.name == action.name && n.resolve_time.is_some()
    })
    .await;
    assert_eq!(
        unread(&suite, &ada.token).await.pending_mandatory_actions,
        0
    );
    archive(&suite, &ada.token, &action.name).await.unwrap();
    suite.stop().await.unwrap();
}

#[tokio::test]
async fn the_email_ownership_command_mails_a_confirmation_link() {
    let suite = Suite::start().await.unwrap();
    let ada = known_founder(&suite, "Contoso").await;
    let bus = publisher(&suite).await;
    let token = format!("{}{}{}", unique(), unique(), unique());
    let params: BTreeMap<String, String> = [
        ("token".to_owned(), token.clone()),
        ("legal_name".to_owned(), "Contoso SAS".to_owned()),
        ("expires_hours".to_owned(), "72".to_owned()),
    ]
    .into();
    bus.command(
        Uuid::now_v7(),
        "notification",
        "verification",
        &SendMail {
            template: "verification.email_ownership".into(),
            to: ada.email.clone(),
            locale: "en-US".into(),
            params: params.into_iter().collect(),
            user: String::new(),
            account: ada.account.clone(),
            dedup_key: format!("email_ownership:{}", Uuid::now_v7()),
        },
    )
    .await
    .unwrap();

    let mail = suite.smtp.next_to(&ada.email, MAIL_WAIT).await.unwrap();
    assert!(mail.subject.contains("Contoso SAS"), "{}", mail.subject);
    assert_eq!(link_token(&mail.text, "/verification/email"), token);
    assert_eq!(link_token(&mail.html, "/verification/email"), token);
    assert!(mail.text.contains("72 hours"), "{}", mail.text);
    suite.stop().await.unwrap();
}

#[tokio::test]
async fn a_qualified_program_asks_global_admins_for_its_agreement_until_it_is_active() {
    let suite = Suite::start().await.unwrap();
    let ada = known_founder(&suite, "Contoso").await;
    let bus = publisher(&suite).await;
    let qualified_time = Utc::now();
    program(
        &bus,
        &ada,
        ProgramKind::Partner,
        "PENDING",
        "QUALIFIED",
        qualified_time,
    )
    .await;

    let mail = suite.smtp.next_to(&ada.email, MAIL_WAIT).await.unwrap();
    assert!(
        mail.subject.contains("agreement") && mail.subject.contains("Partner Program"),
        "{}",
        mail.subject
    );
    assert!(
        mail.text
            .contains(&format!("{PORTAL_URL}/programs/agreements")),
        "{}",
        mail.text
    );
    let action = wait_notification_where(&suite, &ada.token, "agreement action", |n| {
        is_action(n, "/programs/agreements")
    })
    .await;
    assert_eq!(action.workspace, Workspace::Membership as i32);
    assert_near(
        time_of(action.due_time),
        qualified_time + chrono::Duration::days(30),
        "due time",
    );

    // Another program's agreement is another action.
    program(
        &bus,
        &ada,
        ProgramKind::Referrals,
        "PENDING",
        "QUALIFIED",
        Utc::now(),
    )
    .await;
    suite.smtp.next_to(&ada.email, MAIL_WAIT).await.unwrap();
    let referrals = wait_notification_where(&suite, &ada.token, "second agreement action", |n| {
        is_action(n, "/programs/agreements") && n.name != action.name
    })
    .await;
    assert_eq!(
        unread(&suite, &ada.token).await.pending_mandatory_actions,
        2
    );

    program(
        &bus,
        &ada,
        ProgramKind::Partner,
        "QUALIFIED",
        "ACTIVE",
        Utc::now(),
    )
    .await;
    wait_notification_where(&suite, &ada.token, "resolved agreement action", |n| {
        n.name == action.name && n.resolve_time.is_some()
    })
    .await;
    let all = my_notifications(&suite, &ada.token).await;
    let still_open = all.iter().find(|n| n.name == referrals.name).unwrap();
    assert!(
        still_open.resolve_time.is_none(),
        "only the Partner agreement was accepted"
    );
    assert_eq!(
        unread(&suite, &ada.token).await.pending_mandatory_actions,
        1
    );
    archive(&suite, &ada.token, &action.name).await.unwrap();
    suite.stop().await.unwrap();
}

#[tokio::test]
async fn lists_filter_by_kind_workspace_and_unread_and_page_with_bound_tokens() {
    let suite = Suite::start().await.unwrap();
    let ada = known_founder(&suite, "Contoso").await;
    let bus = publisher(&suite).await;
    // Four notifications, one after the other so their order is known:
    // mandatory in ACCOUNT_SETTINGS, mandatory in MEMBERSHIP, transactional
    // in BILLING, transactional in ACCOUNT_SETTINGS.
    verification(
        &bus,
        &ada,
        Status::None,
        Status::Pending,
        SubStatus::Entry,
        Utc::now(),
    )
    .await;
    wait_notification_where(&suite, &ada.token, "verification action", |n| {
        n.link == VERIFICATION_LINK
    })
    .await;
    program(
        &bus,
        &ada,
        ProgramKind::Partner,
        "PENDING",
        "QUALIFIED",
        Utc::now(),
    )
    .await;
    wait_notification_where(&suite, &ada.token, "agreement action", |n| {
        n.workspace == Workspace::Membership as i32
    })
    .await;
    bus.event(
        "billing",
        &ada.account,
        &InvoiceOverdue {
            account: ada.account.clone(),
            invoice_id: "INV-2041".into(),
            amount_due_minor: 123_450,
            currency: "EUR".into(),
            due_time: Some(ts(Utc::now() - chrono::Duration::days(3))),
        },
    )
    .await
    .unwrap();
    wait_notification_where(&suite, &ada.token, "overdue invoice", |n| {
        n.workspace == Workspace::Billing as i32
    })
    .await;
    let other = Uuid::now_v7();
    bus.event(
        "merge",
        &ada.account,
        &MergeInvitationRejected {
            merge_invitation: format!("{}/mergeInvitations/{}", ada.account, Uuid::now_v7()),
            initiator: ada.account.clone(),
            invitee: format!("accounts/{other}"),
            actor: String::new(),
            change_time: Some(ts(Utc::now())),
            reason: "We are not ready".into(),
        },
    )
    .await
    .unwrap();
    wait_notification_where(&suite, &ada.token, "rejected merge", |n| {
        n.link == "/account/merges"
    })
    .await;

    let me = |f: fn(&mut ListNotificationsRequest)| {
        let mut request = ListNotificationsRequest {
            parent: "users/me".into(),
            ..ListNotificationsRequest::default()
        };
        f(&mut request);
        request
    };
    let all = list(&suite, &ada.token, me(|_| {})).await.unwrap();
    assert_eq!(all.notifications.len(), 4, "{:?}", all.notifications);
    assert!(all.next_page_token.is_empty());
    let kinds: Vec<(i32, i32)> = all
        .notifications
        .iter()
        .map(|n| (n.kind, n.workspace))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (
                Kind::Transactional as i32,
                Workspace::AccountSettings as i32
            ),
            (Kind::Transactional as i32, Workspace::Billing as i32),
            (Kind::MandatoryAction as i32, Workspace::Membership as i32),
            (
                Kind::MandatoryAction as i32,
                Workspace::AccountSettings as i32
            ),
        ],
        "newest first"
    );

    let transactional = list(
        &suite,
        &ada.token,
        me(|r| r.kind = Kind::Transactional as i32),
    )
    .await
    .unwrap();
    assert_eq!(
        names(&transactional.notifications),
        names(&all.notifications[..2])
    );
    let mandatory = list(
        &suite,
        &ada.token,
        me(|r| r.kind = Kind::MandatoryAction as i32),
    )
    .await
    .unwrap();
    assert_eq!(
        names(&mandatory.notifications),
        names(&all.notifications[2..])
    );
    let recommended = list(
        &suite,
        &ada.token,
        me(|r| r.kind = Kind::RecommendedAction as i32),
    )
    .await
    .unwrap();
    assert!(recommended.notifications.is_empty());
    let billing = list(
        &suite,
        &ada.token,
        me(|r| r.workspace = Workspace::Billing as i32),
    )
    .await
    .unwrap();
    assert_eq!(
        names(&billing.notifications),
        names(&all.notifications[1..2])
    );
    let settings_actions = list(
        &suite,
        &ada.token,
        me(|r| {
            r.workspace = Workspace::AccountSettings as i32;
            r.kind = Kind::MandatoryAction as i32;
        }),
    )
    .await
    .unwrap();
    assert_eq!(
        names(&settings_actions.notifications),
        names(&all.notifications[3..])
    );

    mark_read(&suite, &ada.token, &all.notifications[1].name)
        .await
        .unwrap();
    let unread_only = list(&suite, &ada.token, me(|r| r.unread_only = true))
        .await
        .unwrap();
    let mut expected = names(&all.notifications);
    expected.remove(1);
    assert_eq!(names(&unread_only.notifications), expected);

    // One at a time, in the same order, to an empty token.
    let mut paged = Vec::new();
    let mut token = String::new();
    let mut first_token = String::new();
    loop {
        let page = list(
            &suite,
            &ada.token,
            ListNotificationsRequest {
                parent: "users/me".into(),
                page_size: 1,
                page_token: token.clone(),
                ..ListNotificationsRequest::default()
            },
        )
        .await
        .unwrap();
        assert!(page.notifications.len() <= 1);
        paged.extend(names(&page.notifications));
        if first_token.is_empty() {
            first_token = page.next_page_token.clone();
        }
        if page.next_page_token.is_empty() {
            break;
        }
        assert!(paged.len() < 10, "paging does not end");
        token = page.next_page_token;
    }
    assert_eq!(paged, names(&all.notifications));

    // A token is bound to the filters it was made for.
    let foreign = refusal(
        notifications(&suite)
            .list_notifications(
                bearer(
                    &ada.token,
                    ListNotificationsRequest {
                        parent: "users/me".into(),
                        page_size: 1,
                        page_token: first_token.clone(),
                        kind: Kind::Transactional as i32,
                        ..ListNotificationsRequest::default()
                    },
                )
                .unwrap(),
            )
            .await,
    );
    assert_eq!(foreign.code(), Code::InvalidArgument, "{foreign:?}");
    assert_eq!(violated_fields(&foreign), vec!["page_token"]);
    let garbage = list(
        &suite,
        &ada.token,
        me(|r| r.page_token = "not a token".into()),
    )
    .await
    .unwrap_err();
    assert_eq!(garbage.code(), Code::InvalidArgument);

    let bad_kind = list(&suite, &ada.token, me(|r| r.kind = 99))
        .await
        .unwrap_err();
    assert_eq!(bad_kind.code(), Code::InvalidArgument, "{bad_kind:?}");
    assert_eq!(violated_fields(&bad_kind), vec!["kind"]);
    let bad = list(
        &suite,
        &ada.token,
        me(|r| {
            r.workspace = 42;
            r.page_size = -1;
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&bad), vec!["page_size", "workspace"]);
    suite.stop().await.unwrap();
}

#[tokio::test]
async fn a_user_sees_and_changes_only_their_own_notifications() {
    let suite = Suite::start().await.unwrap();
    let ada = known_founder(&suite, "Contoso").await;
    let bob = sign_up(&suite, "Fabrikam").await.unwrap();
    suite.smtp.next_to(&bob.email, MAIL_WAIT).await.unwrap(); // welcome
    let bus = publisher(&suite).await;
    verification(
        &bus,
        &ada,
        Status::None,
        Status::Pending,
        SubStatus::Entry,
        Utc::now(),
    )
    .await;
    let action = wait_notification_where(&suite, &ada.token, "verification action", |n| {
        is_action(n, VERIFICATION_LINK)
    })
    .await;
    let action_id = action.name.rsplit('/').next().unwrap().to_owned();

    // Ada's collection, by her name: as if it did not exist.
    let listed = list(
        &suite,
        &bob.token,
        ListNotificationsRequest {
            parent: ada.user.clone(),
            ..ListNotificationsRequest::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(listed.code(), Code::NotFound, "{listed:?}");
    let counted = refusal(
        notifications(&suite)
            .get_unread_count(
                bearer(
                    &bob.token,
                    GetUnreadCountRequest {
                        parent: ada.user.clone(),
                    },
                )
                .unwrap(),
            )
            .await,
    );
    assert_eq!(counted.code(), Code::NotFound, "{counted:?}");
    let marked = refusal(mark_read(&suite, &bob.token, &action.name).await);
    assert_eq!(marked.code(), Code::NotFound, "{marked:?}");
    let archived = refusal(archive(&suite, &bob.token, &action.name).await);
    assert_eq!(archived.code(), Code::NotFound, "{archived:?}");

    // Ada's notification under Bob's name: not his.
    let under_bob = format!("{}/notifications/{action_id}", bob.user);
    let marked = refusal(mark_read(&suite, &bob.token, &under_bob).await);
    assert_eq!(marked.code(), Code::NotFound, "{marked:?}");
    let archived = refusal(archive(&suite, &bob.token, &under_bob).await);
    assert_eq!(archived.code(), Code::NotFound, "{archived:?}");
    let bobs = my_notifications(&suite, &bob.token).await;
    assert!(bobs.is_empty(), "{bobs:?}");
    let bob_count = unread(&suite, &bob.token).await;
    assert_eq!(
        (bob_count.unread_count, bob_count.pending_mandatory_actions),
        (0, 0)
    );

    let malformed = refusal(mark_read(&suite, &bob.token, "users/me/notifications/42").await);
    assert_eq!(malformed.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&malformed), vec!["name"]);

    // Nothing happened to Ada's action.
    let mine = my_notifications(&suite, &ada.token).await;
    let untouched = mine.iter().find(|n| n.name == action.name).unwrap();
    assert!(untouched.read_time.is_none() && untouched.archive_time.is_none());

    let anonymous = notifications(&suite)
        .list_notifications(ListNotificationsRequest {
            parent: "users/me".into(),
            ..ListNotificationsRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    let anonymous = notifications(&suite)
        .mark_notification_read(MarkNotificationReadRequest {
            name: action.name.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    suite.stop().await.unwrap();
}
