//! Helpers of notification's tests: the whole suite runs, mail arrives at
//! the suite's SMTP server.
#![allow(dead_code, clippy::expect_used, clippy::panic, clippy::unwrap_used)]

use std::time::Duration;

use partnerhub_proto::notification::v1::notification_service_client::NotificationServiceClient;
use partnerhub_proto::notification::v1::{
    Delivery, DeliveryStatus, ListDeliveriesRequest, ListNotificationsRequest, Notification,
    SendAlternateEmailVerificationRequest, VerifyAlternateEmailRequest,
};
use partnerhub_testkit::{PORTAL_URL, Suite, bearer, eventually};
use tonic::transport::Channel;

/// How long a mail may take to arrive.
pub const MAIL_WAIT: Duration = Duration::from_secs(20);

/// A client of notification.
pub fn notifications(suite: &Suite) -> NotificationServiceClient<Channel> {
    NotificationServiceClient::new(Suite::channel(suite.notification).unwrap())
}

/// The caller's notifications (all, archived included).
pub async fn my_notifications(suite: &Suite, token: &str) -> Vec<Notification> {
    notifications(suite)
        .list_notifications(
            bearer(
                token,
                ListNotificationsRequest {
                    parent: "users/me".into(),
                    page_size: 100,
                    show_archived: true,
                    ..ListNotificationsRequest::default()
                },
            )
            .unwrap(),
        )
        .await
        .unwrap()
        .into_inner()
        .notifications
}

/// Waits until the caller has a notification made from `template`'s
/// subject containing `title_part`.
pub async fn wait_notification(suite: &Suite, token: &str, title_part: &str) -> Notification {
    eventually(MAIL_WAIT, || async {
        my_notifications(suite, token)
            .await
            .into_iter()
            .find(|n| n.title.contains(title_part))
    })
    .await
    .unwrap_or_else(|e| panic!("no notification titled like {title_part:?}: {e:#}"))
}

/// The deliveries of `account` (as its admin).
pub async fn deliveries(suite: &Suite, token: &str, account: &str) -> Vec<Delivery> {
    notifications(suite)
        .list_deliveries(
            bearer(
                token,
                ListDeliveriesRequest {
                    parent: account.into(),
                    page_size: 100,
                    ..ListDeliveriesRequest::default()
                },
            )
            .unwrap(),
        )
        .await
        .unwrap()
        .into_inner()
        .deliveries
}

/// Waits for a delivery of `template` to `recipient` in `status`.
pub async fn wait_delivery(
    suite: &Suite,
    token: &str,
    account: &str,
    template: &str,
    recipient: &str,
    status: DeliveryStatus,
) -> Delivery {
    eventually(MAIL_WAIT, || async {
        deliveries(suite, token, account)
            .await
            .into_iter()
            .find(|d| {
                d.template == template
                    && d.recipient.eq_ignore_ascii_case(recipient)
                    && d.status == status as i32
            })
    })
    .await
    .unwrap_or_else(|e| panic!("no {status:?} delivery of {template} to {recipient}: {e:#}"))
}

/// The token of the link `PORTAL_URL{path}?token=…` in a mail's text.
pub fn link_token(text: &str, path: &str) -> String {
    let start = format!("{PORTAL_URL}{path}?token=");
    let at = text
        .find(&start)
        .unwrap_or_else(|| panic!("no link {start} in {text}"));
    text[at + start.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

// ---- Helpers of the portal and preferences tests. ----

/// Publishes events and commands on the suite's bus as their producers
/// would.
pub async fn publisher(suite: &Suite) -> partnerhub_testkit::Publisher {
    partnerhub_testkit::Publisher::connect(&suite.bus)
        .await
        .unwrap()
}

/// A protobuf timestamp of `time`.
pub fn ts(time: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    partnerhub_platform::time::timestamp(time)
}

/// The time of a protobuf timestamp, which must be set.
pub fn time_of(t: Option<prost_types::Timestamp>) -> chrono::DateTime<chrono::Utc> {
    let t = t.expect("a timestamp is set");
    chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap()).unwrap()
}

/// Waits until notification's projection knows `company`'s founder (their
/// address and roles in the account) and, when `legal_name` is not empty,
/// the account's legal name and primary contact: events of other producers
/// that depend on them can then be published.
pub async fn wait_projected(
    suite: &Suite,
    company: &partnerhub_testkit::Company,
    legal_name: &str,
) {
    let pool = suite.pool("notification").await.unwrap();
    let account: uuid::Uuid = company.account_id().parse().unwrap();
    let user: uuid::Uuid = company.user_id().parse().unwrap();
    eventually(MAIL_WAIT, || async {
        let roles: Option<Vec<String>> = sqlx::query_scalar(
            "SELECT r.roles FROM recipient_roles r JOIN recipients USING (user_id)
             WHERE r.account_id = $1 AND r.user_id = $2",
        )
        .bind(account)
        .bind(user)
        .fetch_optional(&pool)
        .await
        .unwrap();
        if !roles.is_some_and(|r| r.iter().any(|r| r == "global_admin")) {
            return None;
        }
        if legal_name.is_empty() {
            return Some(());
        }
        let legal: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT legal_name, contacts -> 'primary' ->> 'email' FROM accounts WHERE account_id = $1",
        )
        .bind(account)
        .fetch_optional(&pool)
        .await
        .unwrap();
        legal
            .is_some_and(|(name, contact)| name == legal_name && contact.is_some())
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("notification never knew {}: {e:#}", company.account));
    pool.close().await;
}

/// Waits until the caller has a notification (archived ones included)
/// that satisfies `wanted`, described by `what`.
pub async fn wait_notification_where(
    suite: &Suite,
    token: &str,
    what: &str,
    wanted: impl Fn(&Notification) -> bool,
) -> Notification {
    let wanted = &wanted;
    eventually(MAIL_WAIT, || async move {
        my_notifications(suite, token)
            .await
            .into_iter()
            .find(wanted)
    })
    .await
    .unwrap_or_else(|e| panic!("no notification {what}: {e:#}"))
}

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

/// Makes `company`'s founder the account's primary contact, as profile's
/// `ContactsChanged` says it, and waits until notification knows it along
/// with the account's display name. Unlike an enrollment, this opens no
/// verification case: the test's own verification events are the only
/// ones.
pub async fn make_primary_contact(suite: &Suite, company: &partnerhub_testkit::Company) {
    use partnerhub_proto::profile::v1::{Contact, ContactsChanged};
    let bus = publisher(suite).await;
    bus.event(
        "profile",
        &company.account,
        &ContactsChanged {
            account: company.account.clone(),
            primary_contact: Some(Contact {
                given_name: "Ada".into(),
                family_name: "Lovelace".into(),
                email: company.email.clone(),
                ..Contact::default()
            }),
            change_time: Some(ts(chrono::Utc::now())),
            ..ContactsChanged::default()
        },
    )
    .await
    .unwrap();
    bus.close().await;
    let pool = suite.pool("notification").await.unwrap();
    let account: uuid::Uuid = company.account_id().parse().unwrap();
    eventually(MAIL_WAIT, || async {
        let row: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT display_name, contacts -> 'primary' ->> 'email' FROM accounts
             WHERE account_id = $1",
        )
        .bind(account)
        .fetch_optional(&pool)
        .await
        .unwrap();
        row.is_some_and(|(name, email)| {
            !name.is_empty() && email.as_deref() == Some(company.email.as_str())
        })
        .then_some(())
    })
    .await
    .unwrap_or_else(|e| {
        panic!(
            "notification never knew the contact of {}: {e:#}",
            company.account
        )
    });
    pool.close().await;
}

/// Proves `alternate` as its user (`token`) would: asks for the mail, takes
/// the token from it and sends it back (the mail counts in
/// `SmtpSink::count_to`).
pub async fn verify_alternate(suite: &Suite, token: &str, alternate: &str) {
    let mut client = notifications(suite);
    let pending = client
        .send_alternate_email_verification(
            bearer(
                token,
                SendAlternateEmailVerificationRequest {
                    name: "users/me/preferences".into(),
                },
            )
            .unwrap(),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pending.alternate_email, alternate);
    assert!(!pending.alternate_email_verified);
    let mail = suite.smtp.next_to(alternate, MAIL_WAIT).await.unwrap();
    let mailed = link_token(&mail.text, "/preferences/verify-alternate-email");
    let verified = client
        .verify_alternate_email(
            bearer(
                token,
                VerifyAlternateEmailRequest {
                    name: "users/me/preferences".into(),
                    token: mailed,
                },
            )
            .unwrap(),
        )
        .await
        .unwrap()
        .into_inner();
    assert!(verified.alternate_email_verified);
}
