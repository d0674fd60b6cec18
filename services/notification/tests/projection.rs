//! The recipients projection: order-tolerant, idempotent, and enough for
//! notification to keep sending while identity and profile are down.

mod common;

use std::time::Duration;

use common::MAIL_WAIT;
use partnerhub_proto::billing::v1::InvoiceOverdue;
use partnerhub_proto::identity::v1::UserUpdated;
use partnerhub_testkit::clients::sign_up;
use partnerhub_testkit::{Publisher, Suite, eventually, unique};

fn at(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

#[tokio::test]
async fn an_older_fact_never_overwrites_a_newer_one() {
    let suite = Suite::start().await.unwrap();
    let ada = sign_up(&suite, "Contoso").await.unwrap();
    suite.smtp.next_to(&ada.email, MAIL_WAIT).await.unwrap(); // projected by now
    let bus = Publisher::connect(&suite.bus).await.unwrap();
    let update = |alternate: &str, seconds: i64| UserUpdated {
        user: ada.user.clone(),
        email: ada.email.clone(),
        given_name: "Ada".into(),
        family_name: "Lovelace".into(),
        locale: "en-US".into(),
        alternate_email: alternate.into(),
        changed_fields: vec!["alternate_email".into()],
        update_time: at(seconds),
    };
    let now = chrono::Utc::now().timestamp();
    // The newer fact arrives first, then an older one, then the newer again.
    let newer = bus
        .event("identity", &ada.user, &update("new@contoso.com", now + 60))
        .await
        .unwrap();
    bus.event("identity", &ada.user, &update("old@contoso.com", now + 30))
        .await
        .unwrap();
    bus.event_with_id(
        newer,
        "identity",
        &ada.user,
        &update("new@contoso.com", now + 60),
    )
    .await
    .unwrap();

    let db = suite.pool("notification").await.unwrap();
    let user: uuid::Uuid = ada.user_id().parse().unwrap();
    // Wait for both to be applied (the inbox keeps each message id once).
    eventually(MAIL_WAIT, || async {
        let seen: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM inbox WHERE message_type = 'partnerhub.identity.v1.UserUpdated'",
        )
        .fetch_one(&db)
        .await
        .ok()?;
        (seen >= 2).then_some(())
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let alternate: String =
        sqlx::query_scalar("SELECT alternate_email FROM recipients WHERE user_id = $1")
            .bind(user)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(alternate, "new@contoso.com");
    suite.stop().await.unwrap();
}

#[tokio::test]
async fn mail_keeps_going_out_while_identity_and_profile_are_down() {
    let mut suite = Suite::start().await.unwrap();
    let ada = sign_up(&suite, "Contoso").await.unwrap();
    suite.smtp.next_to(&ada.email, MAIL_WAIT).await.unwrap();
    let alternate = format!("billing.{}@contoso.com", unique());
    let bus = Publisher::connect(&suite.bus).await.unwrap();
    bus.event(
        "identity",
        &ada.user,
        &UserUpdated {
            user: ada.user.clone(),
            email: ada.email.clone(),
            given_name: "Ada".into(),
            family_name: "Lovelace".into(),
            locale: "en-US".into(),
            alternate_email: alternate.clone(),
            changed_fields: vec!["alternate_email".into()],
            update_time: at(chrono::Utc::now().timestamp() + 1),
        },
    )
    .await
    .unwrap();
    let db = suite.pool("notification").await.unwrap();
    eventually(MAIL_WAIT, || async {
        let known: Option<String> =
            sqlx::query_scalar("SELECT alternate_email FROM recipients WHERE alternate_email = $1")
                .bind(&alternate)
                .fetch_optional(&db)
                .await
                .ok()?;
        known
    })
    .await
    .unwrap();
    // Billing notices reach an alternate email once its owner proved it.
    common::verify_alternate(&suite, &ada.token, &alternate).await;

    suite.stop_service("identity").await.unwrap();
    suite.stop_service("profile").await.unwrap();
    bus.event(
        "billing",
        &ada.account,
        &InvoiceOverdue {
            account: ada.account.clone(),
            invoice_id: "INV-2026-0042".into(),
            amount_due_minor: 99_00,
            currency: "USD".into(),
            due_time: at(chrono::Utc::now().timestamp() - 86_400),
        },
    )
    .await
    .unwrap();
    let mail = suite.smtp.next_to(&alternate, MAIL_WAIT).await.unwrap();
    assert!(mail.text.contains("INV-2026-0042"), "{}", mail.text);
    assert!(mail.text.contains("99.00 USD"), "{}", mail.text);
    suite.stop().await.unwrap();
}
