//! Mail delivery end to end: billing notices go to the alternate email only,
//! a duplicated event sends one mail, onmicrosoft.com recipients are
//! suppressed, transient SMTP failures are retried and permanent ones
//! recorded, the hourly limit holds mail back, a restarted consumer loses
//! nothing and sends nothing twice, and the delivery record is for the
//! account's admins only. Real PostgreSQL, RabbitMQ and SMTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{MAIL_WAIT, deliveries, notifications, wait_delivery};
use partnerhub_proto::billing::v1::{InvoiceOverdue, PaymentLate};
use partnerhub_proto::identity::v1::auth_service_client::AuthServiceClient;
use partnerhub_proto::identity::v1::member_service_client::MemberServiceClient;
use partnerhub_proto::identity::v1::self_service_client::SelfServiceClient;
use partnerhub_proto::identity::v1::{
    ChangePasswordRequest, CreateUserRequest, RoleAssignment, SignInRequest,
    UpdateMyProfileRequest, User,
};
use partnerhub_proto::notification::v1::{
    Delivery, DeliveryStatus, ListDeliveriesRequest, ListDeliveriesResponse, NotificationDelivered,
    NotificationFailed, NotificationSuppressed, SendMail,
};
use partnerhub_testkit::clients::{FOUNDER_PASSWORD, sign_up};
use partnerhub_testkit::{
    Company, EventTap, Publisher, Suite, SuiteOptions, TappedEvent, bearer, eventually, unique,
};
use uuid::Uuid;

/// How long to watch for a mail that must not come.
const QUIET: Duration = Duration::from_secs(2);

const OVERDUE: &str = "billing.invoice_overdue";
const LATE: &str = "billing.payment_late";
const RESET: &str = "identity.password_reset";
const WELCOME: &str = "identity.welcome";

fn uuid_of(name: &str) -> Uuid {
    name.rsplit('/').next().unwrap().parse().unwrap()
}

/// Sets the caller's alternate email through identity.
async fn set_alternate_email(suite: &Suite, company: &Company, email: &str) {
    SelfServiceClient::new(Suite::channel(suite.identity).unwrap())
        .update_my_profile(
            bearer(
                &company.token,
                UpdateMyProfileRequest {
                    user: Some(User {
                        name: company.user.clone(),
                        alternate_email: email.to_owned(),
                        ..User::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["alternate_email".into()],
                    }),
                },
            )
            .unwrap(),
        )
        .await
        .unwrap();
}

/// Waits until notification's projection knows `user`'s alternate email.
async fn wait_alternate_known(suite: &Suite, user: &str, email: &str) {
    let pool = suite.pool("notification").await.unwrap();
    let user = uuid_of(user);
    eventually(MAIL_WAIT, || {
        let pool = pool.clone();
        async move {
            let known: Option<String> =
                sqlx::query_scalar("SELECT alternate_email FROM recipients WHERE user_id = $1")
                    .bind(user)
                    .fetch_optional(&pool)
                    .await
                    .unwrap();
            (known.as_deref() == Some(email)).then_some(())
        }
    })
    .await
    .unwrap_or_else(|e| panic!("notification never learnt the alternate email {email}: {e:#}"));
    pool.close().await;
}

/// Waits until notification's projection knows that `user` holds `role` in
/// `account`.
async fn wait_role_known(suite: &Suite, account: &str, user: &str, role: &str) {
    let pool = suite.pool("notification").await.unwrap();
    let (account, user) = (uuid_of(account), uuid_of(user));
    eventually(MAIL_WAIT, || {
        let pool = pool.clone();
        async move {
            let roles: Option<Vec<String>> = sqlx::query_scalar(
                "SELECT roles FROM recipient_roles WHERE account_id = $1 AND user_id = $2",
            )
            .bind(account)
            .bind(user)
            .fetch_optional(&pool)
            .await
            .unwrap();
            roles
                .is_some_and(|r| r.iter().any(|x| x == role))
                .then_some(())
        }
    })
    .await
    .unwrap_or_else(|e| panic!("notification never learnt that {user} is {role}: {e:#}"));
    pool.close().await;
}

/// A founder of `company` (welcome mail taken) whose alternate email
/// notification knows.
async fn founder_with_alternate(suite: &Suite, company: &str) -> (Company, String) {
    let founder = sign_up(suite, company).await.unwrap();
    let welcome = suite.smtp.next_to(&founder.email, MAIL_WAIT).await.unwrap();
    assert!(welcome.subject.contains("Welcome"), "{}", welcome.subject);
    let alternate = format!("billing.{}@{}.com", unique(), company.to_lowercase());
    set_alternate_email(suite, &founder, &alternate).await;
    wait_alternate_known(suite, &founder.user, &alternate).await;
    common::verify_alternate(suite, &founder.token, &alternate).await;
    (founder, alternate)
}

/// Mails to the alternate email before any billing notice: its verification.
const VERIFY_MAILS: usize = 1;

fn overdue(account: &str, invoice_id: &str) -> InvoiceOverdue {
    InvoiceOverdue {
        account: account.to_owned(),
        invoice_id: invoice_id.to_owned(),
        amount_due_minor: 123_450,
        currency: "EUR".into(),
        due_time: Some(prost_types::Timestamp {
            seconds: 1_767_225_600, // 2026-01-01
            nanos: 0,
        }),
    }
}

/// A password reset command to `to`, concerning `account`.
fn reset_mail(to: &str, account: &str) -> SendMail {
    SendMail {
        template: RESET.into(),
        to: to.to_owned(),
        locale: "en-US".into(),
        params: [
            ("token", "t0ken-of-the-test"),
            ("given_name", "Ada"),
            ("expires_minutes", "30"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
        account: account.to_owned(),
        ..SendMail::default()
    }
}

/// A user created by `admin` in its account with `role` (the temporary
/// password is left unchanged): (`users/{u}`, sign-in email, temporary
/// password).
async fn create_member(suite: &Suite, admin: &Company, role: &str) -> (String, String, String) {
    let email = format!(
        "{}.{}@{}",
        role.replace('_', "."),
        unique(),
        admin.email.rsplit('@').next().unwrap()
    );
    let created = MemberServiceClient::new(Suite::channel(suite.identity).unwrap())
        .create_user(
            bearer(
                &admin.token,
                CreateUserRequest {
                    parent: admin.account.clone(),
                    email: email.clone(),
                    given_name: "Grace".into(),
                    family_name: "Hopper".into(),
                    roles: vec![RoleAssignment {
                        role: role.into(),
                        locations: Vec::new(),
                    }],
                    request_id: Uuid::new_v4().to_string(),
                },
            )
            .unwrap(),
        )
        .await
        .unwrap()
        .into_inner();
    let user = created.member.unwrap().user.unwrap().name;
    (user, email, created.temporary_password)
}

/// The list of deliveries `request` asks for, as `token`.
async fn list(
    suite: &Suite,
    token: &str,
    request: ListDeliveriesRequest,
) -> Result<ListDeliveriesResponse, tonic::Status> {
    notifications(suite)
        .list_deliveries(bearer(token, request).unwrap())
        .await
        .map(tonic::Response::into_inner)
}

/// The events read from a tap, kept so each can be looked for later.
struct Events {
    tap: EventTap,
    seen: Vec<TappedEvent>,
}

impl Events {
    async fn start(suite: &Suite) -> Self {
        Self {
            tap: EventTap::start(&suite.bus).await.unwrap(),
            seen: Vec::new(),
        }
    }

    /// Waits for an event of type `M` that `wanted` accepts.
    async fn wait<M>(&mut self, wanted: impl Fn(&M) -> bool) -> M
    where
        M: prost::Message + prost::Name + Default,
    {
        let deadline = tokio::time::Instant::now() + MAIL_WAIT;
        let mut looked = 0;
        loop {
            for event in &self.seen[looked..] {
                if event.message_type == M::full_name()
                    && let Ok(m) = M::decode(event.payload.as_slice())
                    && wanted(&m)
                {
                    return m;
                }
            }
            looked = self.seen.len();
            if tokio::time::Instant::now() > deadline {
                let types: Vec<&str> = self.seen.iter().map(|e| e.message_type.as_str()).collect();
                panic!("no matching {} among {types:?}", M::full_name());
            }
            let more = self.tap.drain(Duration::from_millis(300)).await.unwrap();
            self.seen.extend(more);
        }
    }

    async fn close(self) {
        self.tap.close().await;
    }
}

#[tokio::test]
async fn an_overdue_invoice_goes_to_the_alternate_email_never_the_preferred_one() {
    let suite = Suite::start().await.unwrap();
    let (ada, alternate) = founder_with_alternate(&suite, "Contoso").await;
    // A billing admin without an alternate email.
    let (grace, grace_email, _) = create_member(&suite, &ada, "billing_admin").await;
    suite.smtp.next_to(&grace_email, MAIL_WAIT).await.unwrap(); // welcome
    wait_role_known(&suite, &ada.account, &grace, "billing_admin").await;

    let billing = Publisher::connect(&suite.bus).await.unwrap();
    billing
        .event(
            "billing",
            &ada.account,
            &overdue(&ada.account, "INV-2026-0042"),
        )
        .await
        .unwrap();
    let mail = suite.smtp.next_to(&alternate, MAIL_WAIT).await.unwrap();
    assert_eq!(mail.envelope_to, std::slice::from_ref(&alternate));
    assert!(mail.subject.contains("INV-2026-0042"), "{}", mail.subject);
    assert!(mail.text.contains("INV-2026-0042"), "{}", mail.text);
    assert!(mail.text.contains("1234.50 EUR"), "{}", mail.text);
    assert!(mail.text.contains("2026-01-01"), "{}", mail.text);
    assert!(mail.html.contains("1234.50 EUR"), "{}", mail.html);

    billing
        .event(
            "billing",
            &ada.account,
            &PaymentLate {
                account: ada.account.clone(),
                payment_id: "PAY-77".into(),
                days_late: 5,
            },
        )
        .await
        .unwrap();
    let late = suite.smtp.next_to(&alternate, MAIL_WAIT).await.unwrap();
    assert!(late.subject.contains("PAY-77"), "{}", late.subject);
    assert!(late.text.contains("5 days late"), "{}", late.text);

    // Neither the founder's sign-in address nor the billing admin's.
    suite.smtp.expect_none_to(&ada.email, QUIET).await.unwrap();
    suite
        .smtp
        .expect_none_to(&grace_email, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(suite.smtp.count_to(&alternate), 2 + VERIFY_MAILS);

    for template in [OVERDUE, LATE] {
        let sent = wait_delivery(
            &suite,
            &ada.token,
            &ada.account,
            template,
            &alternate,
            DeliveryStatus::Sent,
        )
        .await;
        assert_eq!(sent.user, ada.user);
        assert_eq!(sent.attempts, 1);
        let suppressed = eventually(MAIL_WAIT, || async {
            deliveries(&suite, &ada.token, &ada.account)
                .await
                .into_iter()
                .find(|d| d.template == template && d.user == grace)
        })
        .await
        .unwrap_or_else(|e| panic!("no {template} delivery for the billing admin: {e:#}"));
        assert_eq!(suppressed.status, DeliveryStatus::Suppressed as i32);
        assert_eq!(suppressed.recipient, "");
        assert_eq!(suppressed.attempts, 0);
        assert!(
            suppressed.last_error.starts_with("NO_ALTERNATE_EMAIL"),
            "{}",
            suppressed.last_error
        );
    }
    // One delivery per billing notice and holder, none to a sign-in address.
    let all = deliveries(&suite, &ada.token, &ada.account).await;
    let billing_mail: Vec<&Delivery> = all
        .iter()
        .filter(|d| d.template.starts_with("billing."))
        .collect();
    assert_eq!(billing_mail.len(), 4, "{billing_mail:#?}");
    assert!(
        billing_mail
            .iter()
            .all(|d| !d.recipient.eq_ignore_ascii_case(&ada.email)
                && !d.recipient.eq_ignore_ascii_case(&grace_email)),
        "{billing_mail:#?}"
    );
    billing.close().await;
    suite.stop().await.unwrap();
}

#[tokio::test]
async fn a_duplicated_event_sends_one_mail() {
    let suite = Suite::start().await.unwrap();
    let (ada, alternate) = founder_with_alternate(&suite, "Contoso").await;
    let billing = Publisher::connect(&suite.bus).await.unwrap();
    let event = overdue(&ada.account, "INV-DUP-1");
    let id = Uuid::now_v7();
    billing
        .event_with_id(id, "billing", &ada.account, &event)
        .await
        .unwrap();
    billing
        .event_with_id(id, "billing", &ada.account, &event)
        .await
        .unwrap();
    let mail = suite.smtp.next_to(&alternate, MAIL_WAIT).await.unwrap();
    assert!(mail.subject.contains("INV-DUP-1"), "{}", mail.subject);
    // Once more, well after the first was handled.
    billing
        .event_with_id(id, "billing", &ada.account, &event)
        .await
        .unwrap();
    suite.smtp.expect_none_to(&alternate, QUIET).await.unwrap();
    assert_eq!(suite.smtp.count_to(&alternate), 1 + VERIFY_MAILS);

    let overdue: Vec<Delivery> = deliveries(&suite, &ada.token, &ada.account)
        .await
        .into_iter()
        .filter(|d| d.template == OVERDUE)
        .collect();
    assert_eq!(overdue.len(), 1, "{overdue:#?}");
    assert_eq!(overdue[0].status, DeliveryStatus::Sent as i32);
    assert_eq!(overdue[0].attempts, 1);
    billing.close().await;
    suite.stop().await.unwrap();
}

#[tokio::test]
async fn onmicrosoft_recipients_are_suppressed() {
    let suite = Suite::start().await.unwrap();
    let mut events = Events::start(&suite).await;
    let ms = sign_up(&suite, "contoso.onmicrosoft").await.unwrap();
    assert!(
        ms.email.ends_with("@contoso.onmicrosoft.com"),
        "{}",
        ms.email
    );

    let welcome = wait_delivery(
        &suite,
        &ms.token,
        &ms.account,
        WELCOME,
        &ms.email,
        DeliveryStatus::Suppressed,
    )
    .await;
    assert!(
        welcome.last_error.starts_with("ONMICROSOFT_DOMAIN"),
        "{}",
        welcome.last_error
    );
    assert_eq!(welcome.attempts, 0);
    assert_eq!(welcome.user, ms.user);
    let event: NotificationSuppressed = events
        .wait(|e: &NotificationSuppressed| e.delivery == welcome.name)
        .await;
    assert_eq!(event.reason, "ONMICROSOFT_DOMAIN");
    assert_eq!(event.template, WELCOME);
    assert_eq!(event.user, ms.user);
    suite.smtp.expect_none_to(&ms.email, QUIET).await.unwrap();

    // A mail command to such an address, whatever its case.
    let to = "x@Fabrikam.OnMicrosoft.com";
    let identity = Publisher::connect(&suite.bus).await.unwrap();
    identity
        .command(
            Uuid::now_v7(),
            "notification",
            "identity",
            &reset_mail(to, &ms.account),
        )
        .await
        .unwrap();
    let reset = wait_delivery(
        &suite,
        &ms.token,
        &ms.account,
        RESET,
        to,
        DeliveryStatus::Suppressed,
    )
    .await;
    assert!(
        reset.last_error.starts_with("ONMICROSOFT_DOMAIN"),
        "{}",
        reset.last_error
    );
    let event: NotificationSuppressed = events
        .wait(|e: &NotificationSuppressed| e.delivery == reset.name)
        .await;
    assert_eq!(event.reason, "ONMICROSOFT_DOMAIN");
    assert_eq!(event.template, RESET);
    suite
        .smtp
        .expect_none_to("x@fabrikam.onmicrosoft.com", QUIET)
        .await
        .unwrap();
    assert_eq!(suite.smtp.attempts(), 0, "nothing was even tried");
    identity.close().await;
    events.close().await;
    suite.stop().await.unwrap();
}

#[tokio::test]
async fn transient_smtp_failures_are_retried_and_permanent_ones_recorded() {
    let suite = Suite::start().await.unwrap();
    let mut events = Events::start(&suite).await;
    suite.smtp.fail_next(2, 451, "try later");
    let ada = sign_up(&suite, "Contoso").await.unwrap();
    let welcome = suite.smtp.next_to(&ada.email, MAIL_WAIT).await.unwrap();
    assert!(welcome.subject.contains("Welcome"), "{}", welcome.subject);
    assert_eq!(suite.smtp.attempts(), 3);
    let sent = wait_delivery(
        &suite,
        &ada.token,
        &ada.account,
        WELCOME,
        &ada.email,
        DeliveryStatus::Sent,
    )
    .await;
    assert_eq!(sent.attempts, 3);
    assert_eq!(sent.last_error, "");
    let delivered: NotificationDelivered = events
        .wait(|e: &NotificationDelivered| e.delivery == sent.name)
        .await;
    assert_eq!(delivered.attempts, 3);
    assert_eq!(delivered.template, WELCOME);
    assert_eq!(delivered.user, ada.user);
    suite.smtp.expect_none_to(&ada.email, QUIET).await.unwrap();
    assert_eq!(suite.smtp.count_to(&ada.email), 1, "retries send it once");

    // A recipient the relay refuses for good: one attempt, recorded.
    suite.smtp.reject_recipient("@bounce.test", 550);
    let identity = Publisher::connect(&suite.bus).await.unwrap();
    identity
        .command(
            Uuid::now_v7(),
            "notification",
            "identity",
            &reset_mail("ada@bounce.test", &ada.account),
        )
        .await
        .unwrap();
    let failed = wait_delivery(
        &suite,
        &ada.token,
        &ada.account,
        RESET,
        "ada@bounce.test",
        DeliveryStatus::Failed,
    )
    .await;
    assert_eq!(failed.attempts, 1);
    assert!(failed.last_error.contains("550"), "{}", failed.last_error);
    let event: NotificationFailed = events
        .wait(|e: &NotificationFailed| e.delivery == failed.name)
        .await;
    assert_eq!(event.attempts, 1);
    assert_eq!(event.template, RESET);
    assert!(event.error.contains("550"), "{}", event.error);
    assert!(!event.error.contains("t0ken"), "no parameter in the event");

    // An unknown template: recorded as failed, nothing sent.
    let unknown = SendMail {
        template: "nope.nothing".into(),
        ..reset_mail("someone@contoso.com", &ada.account)
    };
    identity
        .command(Uuid::now_v7(), "notification", "identity", &unknown)
        .await
        .unwrap();
    let recorded = wait_delivery(
        &suite,
        &ada.token,
        &ada.account,
        "nope.nothing",
        "someone@contoso.com",
        DeliveryStatus::Failed,
    )
    .await;
    assert!(
        recorded.last_error.starts_with("UNKNOWN_TEMPLATE"),
        "{}",
        recorded.last_error
    );
    assert_eq!(recorded.attempts, 0);
    suite
        .smtp
        .expect_none_to("someone@contoso.com", QUIET)
        .await
        .unwrap();
    assert_eq!(
        suite.smtp.attempts(),
        3,
        "no DATA for the refused or unknown mail"
    );
    identity.close().await;
    events.close().await;
    suite.stop().await.unwrap();
}

#[tokio::test]
async fn the_hourly_limit_holds_mail_back() {
    let suite = Suite::start_with(SuiteOptions {
        // Two billing notices an hour, after the verification mail.
        notification_rate_limit: Some(2 + VERIFY_MAILS as i64),
        ..SuiteOptions::default()
    })
    .await
    .unwrap();
    let (ada, alternate) = founder_with_alternate(&suite, "Contoso").await;
    let billing = Publisher::connect(&suite.bus).await.unwrap();
    for invoice in ["INV-A1", "INV-A2", "INV-A3"] {
        billing
            .event("billing", &ada.account, &overdue(&ada.account, invoice))
            .await
            .unwrap();
    }
    suite.smtp.next_to(&alternate, MAIL_WAIT).await.unwrap();
    suite.smtp.next_to(&alternate, MAIL_WAIT).await.unwrap();
    suite
        .smtp
        .expect_none_to(&alternate, Duration::from_secs(3))
        .await
        .unwrap_or_else(|e| panic!("the hourly limit of 3 let a fourth mail through: {e:#}"));
    assert_eq!(suite.smtp.count_to(&alternate), 2 + VERIFY_MAILS);

    let queued = list(
        &suite,
        &ada.token,
        ListDeliveriesRequest {
            parent: ada.account.clone(),
            status: DeliveryStatus::Queued.into(),
            ..ListDeliveriesRequest::default()
        },
    )
    .await
    .unwrap()
    .deliveries;
    assert_eq!(queued.len(), 1, "{queued:#?}");
    assert_eq!(queued[0].template, OVERDUE);
    assert!(queued[0].recipient.eq_ignore_ascii_case(&alternate));
    assert_eq!(queued[0].attempts, 0, "held back, not tried");
    let sent = list(
        &suite,
        &ada.token,
        ListDeliveriesRequest {
            parent: ada.account.clone(),
            status: DeliveryStatus::Sent.into(),
            ..ListDeliveriesRequest::default()
        },
    )
    .await
    .unwrap()
    .deliveries;
    let sent_overdue = sent.iter().filter(|d| d.template == OVERDUE).count();
    assert_eq!(sent_overdue, 2, "{sent:#?}");
    billing.close().await;
    suite.stop().await.unwrap();
}

/// The invoice id in the subject `Invoice {id} is overdue`.
fn invoice_of(subject: &str) -> String {
    subject
        .strip_prefix("Invoice ")
        .and_then(|s| s.strip_suffix(" is overdue"))
        .unwrap_or_else(|| panic!("not an overdue notice: {subject}"))
        .to_owned()
}

#[tokio::test]
async fn a_consumer_restarted_mid_stream_loses_nothing_and_sends_nothing_twice() {
    let mut suite = Suite::start_with(SuiteOptions {
        notification_rate_limit: Some(1000),
        ..SuiteOptions::default()
    })
    .await
    .unwrap();
    let (ada, alternate) = founder_with_alternate(&suite, "Contoso").await;
    let billing = Publisher::connect(&suite.bus).await.unwrap();
    for i in 0..10 {
        billing
            .event(
                "billing",
                &ada.account,
                &overdue(&ada.account, &format!("INV-{i}")),
            )
            .await
            .unwrap();
    }
    // Stopped at once, while the first mails are being handled and sent.
    suite.stop_notification().await.unwrap();
    for i in 10..30 {
        billing
            .event(
                "billing",
                &ada.account,
                &overdue(&ada.account, &format!("INV-{i}")),
            )
            .await
            .unwrap();
    }
    suite.start_notification().await.unwrap();
    let all_arrived = eventually(MAIL_WAIT, || async {
        (suite.smtp.count_to(&alternate) >= 30 + VERIFY_MAILS).then_some(())
    })
    .await;
    if let Err(e) = all_arrived {
        let stuck: Vec<String> = deliveries(&suite, &ada.token, &ada.account)
            .await
            .into_iter()
            .filter(|d| d.template == OVERDUE && d.status != DeliveryStatus::Sent as i32)
            .map(|d| format!("{} status {} attempts {}", d.name, d.status, d.attempts))
            .collect();
        panic!(
            "{} of 30 mails arrived ({e:#}); deliveries not sent: {stuck:#?}",
            suite.smtp.count_to(&alternate)
        );
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..30 {
        let mail = suite
            .smtp
            .next_to(&alternate, Duration::from_secs(1))
            .await
            .unwrap();
        *seen.entry(invoice_of(&mail.subject)).or_default() += 1;
    }
    let expected: BTreeSet<String> = (0..30).map(|i| format!("INV-{i}")).collect();
    assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), expected);
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
    suite.smtp.expect_none_to(&alternate, QUIET).await.unwrap();
    assert_eq!(suite.smtp.count_to(&alternate), 30 + VERIFY_MAILS);

    let overdue: Vec<Delivery> = deliveries(&suite, &ada.token, &ada.account)
        .await
        .into_iter()
        .filter(|d| d.template == OVERDUE)
        .collect();
    assert_eq!(overdue.len(), 30);
    // Every mail that went out is recorded as sent: a delivery left QUEUED
    // here was sent already and would be sent again once its lease ends.
    let unrecorded: Vec<&Delivery> = overdue
        .iter()
        .filter(|d| d.status != DeliveryStatus::Sent as i32 || d.attempts != 1)
        .collect();
    assert!(
        unrecorded.is_empty(),
        "all 30 mails arrived, yet {} of the deliveries are not recorded as sent once: {unrecorded:#?}",
        unrecorded.len()
    );
    billing.close().await;
    suite.stop().await.unwrap();
}

#[tokio::test]
async fn list_deliveries_is_for_the_accounts_admins_only() {
    let suite = Suite::start().await.unwrap();
    let ada = sign_up(&suite, "Contoso").await.unwrap();
    suite.smtp.next_to(&ada.email, MAIL_WAIT).await.unwrap();
    let bob = sign_up(&suite, "Fabrikam").await.unwrap();
    suite.smtp.next_to(&bob.email, MAIL_WAIT).await.unwrap();
    let first = |parent: &str| ListDeliveriesRequest {
        parent: parent.to_owned(),
        ..ListDeliveriesRequest::default()
    };

    // Another account's admin: the account does not exist for them.
    let refused = list(&suite, &bob.token, first(&ada.account))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::NotFound, "{refused:?}");

    // A member of the account without the permission.
    let (_, email, temporary) = create_member(&suite, &ada, "referrals_user").await;
    suite.smtp.next_to(&email, MAIL_WAIT).await.unwrap(); // welcome
    let mut auth = AuthServiceClient::new(Suite::channel(suite.identity).unwrap());
    let session = auth
        .sign_in(SignInRequest {
            email: email.clone(),
            password: temporary.clone(),
            ..SignInRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    let session = auth
        .change_password(
            bearer(
                &session.access_token.unwrap_or_default().token,
                ChangePasswordRequest {
                    current_password: temporary,
                    new_password: FOUNDER_PASSWORD.into(),
                },
            )
            .unwrap(),
        )
        .await
        .unwrap()
        .into_inner();
    assert!(!session.password_change_required);
    let referrals = session.access_token.unwrap_or_default().token;
    let refused = list(&suite, &referrals, first(&ada.account))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    // The security notice of the password change, so the record is settled.
    suite.smtp.next_to(&email, MAIL_WAIT).await.unwrap();

    // A suppressed one beside the sent ones.
    let identity = Publisher::connect(&suite.bus).await.unwrap();
    identity
        .command(
            Uuid::now_v7(),
            "notification",
            "identity",
            &reset_mail("ada@contoso.onmicrosoft.com", &ada.account),
        )
        .await
        .unwrap();
    wait_delivery(
        &suite,
        &ada.token,
        &ada.account,
        RESET,
        "ada@contoso.onmicrosoft.com",
        DeliveryStatus::Suppressed,
    )
    .await;
    wait_delivery(
        &suite,
        &ada.token,
        &ada.account,
        WELCOME,
        &email,
        DeliveryStatus::Sent,
    )
    .await;
    wait_delivery(
        &suite,
        &ada.token,
        &ada.account,
        WELCOME,
        &ada.email,
        DeliveryStatus::Sent,
    )
    .await;

    let all = deliveries(&suite, &ada.token, &ada.account).await;
    assert!(all.len() >= 3, "{all:#?}");
    assert!(
        all.iter()
            .all(|d| d.name.starts_with(&format!("{}/deliveries/", ada.account))),
        "{all:#?}"
    );
    assert!(
        all.iter()
            .all(|d| !d.recipient.eq_ignore_ascii_case(&bob.email)),
        "another account's mail is not listed: {all:#?}"
    );
    // Newest first.
    let times: Vec<_> = all
        .iter()
        .map(|d| {
            let t = d.create_time.unwrap_or_default();
            (t.seconds, t.nanos)
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");

    // The status filter.
    for status in [
        DeliveryStatus::Queued,
        DeliveryStatus::Sent,
        DeliveryStatus::Failed,
        DeliveryStatus::Suppressed,
    ] {
        let filtered = list(
            &suite,
            &ada.token,
            ListDeliveriesRequest {
                status: status.into(),
                ..first(&ada.account)
            },
        )
        .await
        .unwrap()
        .deliveries;
        let expected: Vec<&str> = all
            .iter()
            .filter(|d| d.status == status as i32)
            .map(|d| d.name.as_str())
            .collect();
        let got: Vec<&str> = filtered.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(got, expected, "{status:?}");
    }
    let suppressed = list(
        &suite,
        &ada.token,
        ListDeliveriesRequest {
            status: DeliveryStatus::Suppressed.into(),
            ..first(&ada.account)
        },
    )
    .await
    .unwrap()
    .deliveries;
    assert_eq!(suppressed.len(), 1, "{suppressed:#?}");
    assert_eq!(suppressed[0].template, RESET);

    // Pages of one.
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let page = list(
            &suite,
            &ada.token,
            ListDeliveriesRequest {
                page_size: 1,
                page_token: token.clone(),
                ..first(&ada.account)
            },
        )
        .await
        .unwrap();
        assert!(page.deliveries.len() <= 1);
        paged.extend(page.deliveries.into_iter().map(|d| d.name));
        if page.next_page_token.is_empty() {
            break;
        }
        assert!(paged.len() <= all.len(), "paging does not end: {paged:?}");
        token = page.next_page_token;
    }
    let names: Vec<String> = all.iter().map(|d| d.name.clone()).collect();
    assert_eq!(paged, names);

    // Tokens that are not this request's.
    let refused = list(
        &suite,
        &ada.token,
        ListDeliveriesRequest {
            page_token: "not a page token".into(),
            ..first(&ada.account)
        },
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    let sent_page = list(
        &suite,
        &ada.token,
        ListDeliveriesRequest {
            page_size: 1,
            status: DeliveryStatus::Sent.into(),
            ..first(&ada.account)
        },
    )
    .await
    .unwrap();
    assert!(!sent_page.next_page_token.is_empty());
    let refused = list(
        &suite,
        &ada.token,
        ListDeliveriesRequest {
            page_size: 1,
            page_token: sent_page.next_page_token,
            status: DeliveryStatus::Suppressed.into(),
            ..first(&ada.account)
        },
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    let refused = list(
        &suite,
        &ada.token,
        ListDeliveriesRequest {
            page_size: -1,
            ..first(&ada.account)
        },
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    identity.close().await;
    suite.stop().await.unwrap();
}
