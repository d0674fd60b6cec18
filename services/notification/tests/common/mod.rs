//! Helpers of notification's tests: the whole suite runs, mail arrives at
//! the suite's SMTP server.
#![allow(dead_code, clippy::expect_used, clippy::panic, clippy::unwrap_used)]

use std::time::Duration;

use partnerhub_proto::notification::v1::notification_service_client::NotificationServiceClient;
use partnerhub_proto::notification::v1::{
    Delivery, DeliveryStatus, ListDeliveriesRequest, ListNotificationsRequest, Notification,
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
