//! Attacks: bus (see docs/security.md). The holder of one service's broker
//! credentials tries to make another service act: straight into its queue
//! through the default exchange, or with a message type that another
//! service produces. Each test imports the shipped definitions
//! (`deploy/rabbitmq/definitions.json`) into a fresh virtual host, so every
//! service runs as its own broker user, as deployed.

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use partnerhub_platform::bus::{BusConfig, OutgoingMessage, QueueKind, dead};
use partnerhub_proto::identity::v1::{PasswordChanged, UserCreated};
use partnerhub_proto::notification::v1::SendMail;
use partnerhub_proto::profile::v1::ProgramKind;
use partnerhub_proto::verification::v1::AccountSuspensionRequested;
use partnerhub_testkit::{DeploymentBus, Suite, SuiteOptions, clients, eventually, unique};
use prost::Name;

const SERVICES: [&str; 5] = [
    "identity",
    "profile",
    "verification",
    "notification",
    "merge",
];

/// A routing key the profile user may publish on the events exchange.
const PROFILE_KEY: &str = "partnerhub.profile.v1.LegalProfileChanged";

fn rabbitmqctl(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("rabbitmqctl").args(args).output()?;
    anyhow::ensure!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A fresh virtual host holding the shipped definitions, one user per
/// service (and the billing system) named `<tag>-<service>` instead of
/// `partnerhub-<service>` (broker users are global: tests side by side must
/// not share them), all with one password; deleted on drop.
struct Broker {
    vhost: String,
    tag: String,
    password: String,
    users: Vec<String>,
}

impl Broker {
    /// Imports the definitions, plus `extra` bindings (exchange, queue,
    /// routing key): a binding that lets one service's messages reach
    /// another's queue, as a misconfiguration or a later subscription would.
    fn import(extra: &[(&str, &str, &str)]) -> anyhow::Result<Self> {
        let tag = format!("ph{}", unique());
        let mut broker = Self {
            vhost: format!("{tag}-vhost"),
            tag,
            password: unique(),
            users: Vec::new(),
        };
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/rabbitmq/definitions.json"
        );
        let mut definitions: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path)?)?;
        for (source, queue, key) in extra {
            if let Some(bindings) = definitions["bindings"].as_array_mut() {
                bindings.push(serde_json::json!({
                    "source": source, "vhost": "partnerhub", "destination": queue,
                    "destination_type": "queue", "routing_key": key, "arguments": {}
                }));
            }
        }
        for (_, list) in definitions.as_object_mut().into_iter().flatten() {
            for item in list.as_array_mut().into_iter().flatten() {
                if item.get("vhost").is_some() {
                    item["vhost"] = broker.vhost.as_str().into();
                }
            }
        }
        definitions["vhosts"] = serde_json::json!([{ "name": broker.vhost }]);
        let own = format!("{}-", broker.tag);
        for (list, field) in [
            ("users", "name"),
            ("permissions", "user"),
            ("topic_permissions", "user"),
        ] {
            for item in definitions[list].as_array_mut().into_iter().flatten() {
                if let Some(name) = item[field].as_str() {
                    item[field] = name.replacen("partnerhub-", &own, 1).into();
                }
            }
        }
        let users: Vec<String> = definitions["users"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| u["name"].as_str().map(str::to_owned))
            .collect();
        broker.users = users.clone();
        let file = std::env::temp_dir().join(format!("{}.json", broker.vhost));
        std::fs::write(&file, serde_json::to_vec(&definitions)?)?;
        rabbitmqctl(&["import_definitions", &file.to_string_lossy()])?;
        std::fs::remove_file(&file).ok();
        for user in &users {
            rabbitmqctl(&["change_password", user, &broker.password])?;
        }
        // The import is asynchronous: wait for the last permission.
        for _ in 0..50 {
            if rabbitmqctl(&["list_permissions", "-p", &broker.vhost])?
                .contains(&broker.user("merge"))
            {
                return Ok(broker);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        anyhow::bail!("the definitions never appeared in {}", broker.vhost)
    }

    /// The broker user of `service`.
    fn user(&self, service: &str) -> String {
        format!("{}-{service}", self.tag)
    }

    /// The AMQP URL of `service`'s user.
    fn url(&self, service: &str) -> String {
        format!(
            "amqp://{}:{}@127.0.0.1:5672/{}",
            self.user(service),
            self.password,
            self.vhost
        )
    }

    /// The five services on this virtual host, each as its own user.
    async fn suite(&self) -> anyhow::Result<Suite> {
        let urls: HashMap<&'static str, String> =
            SERVICES.iter().map(|s| (*s, self.url(s))).collect();
        let suite = Suite::start_with(SuiteOptions {
            deployment_bus: Some(DeploymentBus {
                namespace: "partnerhub".into(),
                urls,
                user_prefix: format!("{}-", self.tag),
            }),
            ..SuiteOptions::default()
        })
        .await?;
        suite.wait_serving().await?;
        Ok(suite)
    }

    /// What `service`'s user sees of its bus (to read its dead letters).
    fn bus_of(&self, service: &str) -> BusConfig {
        let mut bus = BusConfig::new(self.url(service));
        bus.namespace = "partnerhub".into();
        bus
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = rabbitmqctl(&["delete_vhost", &self.vhost]);
        for user in &self.users {
            let _ = rabbitmqctl(&["delete_user", user]);
        }
    }
}

/// A message as a producer writes it, claiming `user_id` (none: `None`).
fn message<M: prost::Message + Name>(
    subject: &str,
    body: &M,
    user_id: Option<&str>,
) -> (Vec<u8>, BasicProperties) {
    let out = OutgoingMessage {
        id: uuid::Uuid::now_v7(),
        message_type: M::full_name(),
        source: "//partnerhub/verification".into(),
        subject: subject.into(),
        time: chrono::Utc::now(),
        payload: body.encode_to_vec(),
        traceparent: None,
        tracestate: None,
    };
    let mut properties = out.properties();
    if let Some(user) = user_id {
        properties = properties.with_user_id(user.into());
    }
    (out.payload, properties)
}

/// Publishes as `url`'s user on a fresh channel with confirms; `Err` holds
/// the broker's refusal (the channel is closed with it).
async fn publish_as(
    url: &str,
    exchange: &str,
    routing_key: &str,
    (payload, properties): (Vec<u8>, BasicProperties),
) -> anyhow::Result<Result<(), String>> {
    let connection = Connection::connect(url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let outcome = async {
        channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                &payload,
                properties,
            )
            .await?
            .await
    }
    .await;
    let outcome = match outcome {
        Ok(confirm) if confirm.is_ack() => {
            // A refusal may close the channel just after the confirm: a
            // round trip on the channel shows it.
            match channel
                .exchange_declare(
                    "amq.topic".into(),
                    lapin::ExchangeKind::Topic,
                    lapin::options::ExchangeDeclareOptions {
                        passive: true,
                        ..lapin::options::ExchangeDeclareOptions::default()
                    },
                    lapin::types::FieldTable::default(),
                )
                .await
            {
                Ok(()) => Ok(()),
                Err(e) => Err(format!("{e:?}")),
            }
        }
        Ok(_) => Err("nacked".to_owned()),
        Err(e) => Err(format!("{e:?}")),
    };
    let _ = connection.close(200, "done".into()).await;
    Ok(outcome)
}

/// Waits until `service`'s dead-letter queue of `kind` holds `n` messages;
/// returns them.
async fn dead_letters(
    broker: &Broker,
    service: &str,
    kind: QueueKind,
    n: usize,
) -> anyhow::Result<Vec<dead::DeadLetter>> {
    let bus = broker.bus_of(service);
    eventually(Duration::from_secs(20), || {
        let bus = bus.clone();
        async move {
            let found = dead::list(&bus, service, kind, 10).await.ok()?;
            (found.len() >= n).then_some(found)
        }
    })
    .await
    .map_err(|e| {
        e.context(format!(
            "{service}'s {kind:?} dead letters never reached {n}"
        ))
    })
}

fn now() -> prost_types::Timestamp {
    let now = chrono::Utc::now();
    prost_types::Timestamp {
        seconds: now.timestamp(),
        nanos: 0,
    }
}

fn assert_refused(outcome: &Result<(), String>, code: &str, what: &str) {
    assert!(
        matches!(outcome, Err(e) if e.contains(code)),
        "{what}: expected {code}, got {outcome:?}"
    );
}

#[tokio::test]
async fn a_service_user_cannot_publish_into_another_services_queue_through_the_default_exchange()
-> anyhow::Result<()> {
    let broker = Broker::import(&[])?;
    let profile = broker.url("profile");
    let suspension = AccountSuspensionRequested {
        account: format!("accounts/{}", uuid::Uuid::now_v7()),
        reason: "forged".into(),
        ..AccountSuspensionRequested::default()
    };
    for queue in [
        "partnerhub.identity.events",
        "partnerhub.verification.events",
    ] {
        let sent = publish_as(
            &profile,
            "",
            queue,
            message(
                "accounts/x",
                &suspension,
                Some(broker.user("profile").as_str()),
            ),
        )
        .await?;
        assert_refused(&sent, "ACCESS_REFUSED", &format!("profile → {queue}"));
    }
    let mail = SendMail {
        template: "identity.password_reset".into(),
        to: "victim@contoso.com".into(),
        ..SendMail::default()
    };
    let sent = publish_as(
        &profile,
        "",
        "partnerhub.notification.commands",
        message("", &mail, Some(broker.user("profile").as_str())),
    )
    .await?;
    assert_refused(&sent, "ACCESS_REFUSED", "profile → notification's commands");
    // Nor may the service that consumes a queue write into it that way.
    let sent = publish_as(
        &broker.url("identity"),
        "",
        "partnerhub.identity.events",
        message(
            "accounts/x",
            &suspension,
            Some(broker.user("identity").as_str()),
        ),
    )
    .await?;
    assert_refused(&sent, "ACCESS_REFUSED", "identity → its own queue");
    Ok(())
}

/// The state of `account` (`accounts/{id}`) in identity's database.
async fn account_state(suite: &Suite, account: &str) -> anyhow::Result<String> {
    let pool = suite.pool("identity").await?;
    let id: uuid::Uuid = account.rsplit('/').next().unwrap_or_default().parse()?;
    let state = sqlx::query_scalar("SELECT state FROM accounts WHERE id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await?;
    pool.close().await;
    Ok(state)
}

#[tokio::test]
async fn a_forged_suspension_request_from_another_services_user_is_dead_lettered_and_the_account_stays_active()
-> anyhow::Result<()> {
    // Identity's queue also receives a profile event (a binding added by
    // mistake, or a subscription of a later version): the profile user can
    // now reach it, and claims the type of verification's request.
    let broker = Broker::import(&[(
        "partnerhub.events",
        "partnerhub.identity.events",
        PROFILE_KEY,
    )])?;
    let suite = broker.suite().await?;
    let victim = clients::sign_up(&suite, "Victim").await?;
    let forged = AccountSuspensionRequested {
        account: victim.account.clone(),
        reason: "forged by profile".into(),
        ..AccountSuspensionRequested::default()
    };
    let profile = broker.url("profile");

    // Claiming verification's user is refused by the broker itself.
    let sent = publish_as(
        &profile,
        "partnerhub.events",
        PROFILE_KEY,
        message(
            &victim.account,
            &forged,
            Some(broker.user("verification").as_str()),
        ),
    )
    .await?;
    assert_refused(&sent, "PRECONDITION_FAILED", "a forged user_id");
    // Verification's routing key is not the profile user's to publish.
    let sent = publish_as(
        &profile,
        "partnerhub.events",
        &AccountSuspensionRequested::full_name(),
        message(
            &victim.account,
            &forged,
            Some(broker.user("profile").as_str()),
        ),
    )
    .await?;
    assert_refused(&sent, "ACCESS_REFUSED", "verification's routing key");

    // With its own user id, or none, the message reaches identity's queue,
    // and identity sets it apart.
    let profile_user = broker.user("profile");
    for user_id in [Some(profile_user.as_str()), None] {
        let sent = publish_as(
            &profile,
            "partnerhub.events",
            PROFILE_KEY,
            message(&victim.account, &forged, user_id),
        )
        .await?;
        assert_eq!(sent, Ok(()), "the broker routes the profile user's key");
    }
    let dead = dead_letters(&broker, "identity", QueueKind::Events, 2).await?;
    for letter in &dead {
        assert_eq!(letter.message_type, AccountSuspensionRequested::full_name());
        assert!(
            letter.last_error.contains("producer"),
            "no reason given: {letter:?}"
        );
        assert!(
            letter.producer.is_empty() || letter.producer == profile_user,
            "{letter:?}"
        );
        assert_eq!(letter.attempts, 0, "a forged message is never retried");
    }
    assert_eq!(account_state(&suite, &victim.account).await?, "ACTIVE");
    suite.stop().await
}

#[tokio::test]
async fn a_forged_mail_command_from_a_user_that_does_not_send_it_sends_no_mail_and_is_dead_lettered()
-> anyhow::Result<()> {
    let broker = Broker::import(&[(
        "partnerhub.events",
        "partnerhub.notification.commands",
        PROFILE_KEY,
    )])?;
    let suite = broker.suite().await?;
    let victim = clients::sign_up(&suite, "Victim").await?;
    suite
        .smtp
        .next_matching(
            &victim.email,
            |m| m.subject.contains("Welcome"),
            Duration::from_secs(30),
        )
        .await?;
    let forged = SendMail {
        template: "identity.password_reset".into(),
        to: victim.email.clone(),
        locale: "en-US".into(),
        params: [
            ("token".to_owned(), "attacker-chosen".to_owned()),
            ("given_name".to_owned(), "Ada".to_owned()),
            ("expires_minutes".to_owned(), "60".to_owned()),
        ]
        .into(),
        user: victim.user.clone(),
        account: String::new(),
        dedup_key: format!("password_reset:{}", uuid::Uuid::now_v7()),
    };
    let profile = broker.url("profile");
    // Straight into the queue: refused by the broker.
    let sent = publish_as(
        &profile,
        "",
        "partnerhub.notification.commands",
        message("", &forged, Some(broker.user("profile").as_str())),
    )
    .await?;
    assert_refused(&sent, "ACCESS_REFUSED", "the default exchange");
    // Through a binding that reaches the queue: set apart by notification.
    let sent = publish_as(
        &profile,
        "partnerhub.events",
        PROFILE_KEY,
        message("", &forged, Some(broker.user("profile").as_str())),
    )
    .await?;
    assert_eq!(sent, Ok(()));
    let dead = dead_letters(&broker, "notification", QueueKind::Commands, 1).await?;
    assert_eq!(dead[0].message_type, SendMail::full_name());
    assert!(dead[0].last_error.contains("producer"), "{:?}", dead[0]);
    assert_eq!(dead[0].producer, broker.user("profile"));
    suite
        .smtp
        .expect_none_to(&victim.email, Duration::from_secs(3))
        .await?;

    // An operator replaying the dead letters (as notification's own user)
    // does not launder it: it is set apart again, still without a mail.
    let bus = broker.bus_of("notification");
    // At least the one forged message. (Once in a full run two copies were
    // there: the same forgery set apart twice. What matters here holds either
    // way — none is applied, every replayed copy is set apart again — and the
    // duplicate is recorded in docs/security.md to be looked into.)
    let replayed = dead::replay(&bus, "notification", QueueKind::Commands, 10).await?;
    assert!(replayed >= 1, "nothing was replayed");
    let again = dead_letters(&broker, "notification", QueueKind::Commands, 1).await?;
    assert!(again[0].last_error.contains("producer"), "{:?}", again[0]);
    assert_eq!(again[0].producer, broker.user("profile"), "still profile's");
    suite
        .smtp
        .expect_none_to(&victim.email, Duration::from_secs(2))
        .await?;
    suite.stop().await
}

#[tokio::test]
async fn genuine_messages_flow_and_a_retried_genuine_message_is_still_accepted()
-> anyhow::Result<()> {
    let broker = Broker::import(&[])?;
    let suite = broker.suite().await?;
    // The enrollment story: identity's events reach notification, profile's
    // reach verification, whose mail command reaches notification.
    let contoso = clients::enrolled(&suite, "Contoso", ProgramKind::Partner).await?;
    for subject in ["Welcome", "Confirm the primary contact email"] {
        suite
            .smtp
            .next_matching(
                &contoso.email,
                |m| m.subject.contains(subject),
                Duration::from_secs(30),
            )
            .await?;
    }

    // Identity's user publishes a password change for a user notification
    // does not know yet: its handler fails (transiently) and the message
    // goes round the retry queue; once the user is known, the retried
    // message, still identity's, is accepted and mailed.
    let identity = broker.url("identity");
    let user = format!("users/{}", uuid::Uuid::now_v7());
    let email = format!("late.{}@contoso.com", unique());
    let changed = PasswordChanged {
        user: user.clone(),
        method: "self".into(),
        changed_by: user.clone(),
        change_time: Some(now()),
    };
    let sent = publish_as(
        &identity,
        "partnerhub.events",
        &PasswordChanged::full_name(),
        message(&user, &changed, Some(broker.user("identity").as_str())),
    )
    .await?;
    assert_eq!(sent, Ok(()));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let created = UserCreated {
        user: user.clone(),
        account: contoso.account.clone(),
        email: email.clone(),
        given_name: "Late".into(),
        family_name: "Comer".into(),
        locale: "en-US".into(),
        create_time: Some(now()),
        ..UserCreated::default()
    };
    let sent = publish_as(
        &identity,
        "partnerhub.events",
        &UserCreated::full_name(),
        message(&user, &created, Some(broker.user("identity").as_str())),
    )
    .await?;
    assert_eq!(sent, Ok(()));
    suite
        .smtp
        .next_matching(
            &email,
            |m| m.subject.contains("password was changed"),
            Duration::from_secs(40),
        )
        .await?;
    let dead = dead::list(
        &broker.bus_of("notification"),
        "notification",
        QueueKind::Events,
        10,
    )
    .await?;
    assert!(dead.is_empty(), "{dead:?}");
    suite.stop().await
}
