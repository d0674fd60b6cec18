//! A service's dead-letter queue for operators: list what is in it, and
//! replay it into the service's queue once the cause is fixed. Listing takes
//! nothing away (the messages return to the queue when the channel closes);
//! a replayed message is removed from the dead-letter queue only after the
//! broker confirmed its copy, with its attempt counter reset.
//!
//! A replay is published by the broker user the tool runs as (the service's
//! own, from its configuration) through the queue's dead-letter exchange,
//! never the default exchange. It keeps the producer recorded when the
//! message was dead-lettered; the consumer accepts a replay only from its
//! own user and only for that recorded producer, so replaying a forged
//! message sets it apart again.

use lapin::options::{BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Connection, ConnectionProperties};

use super::envelope::{ATTEMPT_HEADER, ERROR_HEADER, PRODUCER_HEADER};
use super::{BusConfig, QueueKind, REQUEUE_KEY};

/// One dead-lettered message, as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Message id (the inbox key).
    pub message_id: String,
    /// Message type (a protobuf full name).
    pub message_type: String,
    /// Resource it is about.
    pub subject: String,
    /// Deliveries it had.
    pub attempts: i64,
    /// Why it was dead-lettered.
    pub last_error: String,
    /// The broker user that produced it (empty: none was named).
    pub producer: String,
}

fn header(headers: &FieldTable, name: &str) -> Option<AMQPValue> {
    headers.inner().get(name).cloned()
}

fn text(value: Option<AMQPValue>) -> String {
    match value {
        Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        Some(AMQPValue::ShortString(s)) => s.to_string(),
        _ => String::new(),
    }
}

async fn connect(config: &BusConfig) -> lapin::Result<(Connection, lapin::Channel)> {
    let connection = Connection::connect(&config.url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    Ok((connection, channel))
}

/// Up to `limit` messages of `service`'s dead-letter queue of `kind`,
/// oldest first, left in place.
pub async fn list(
    config: &BusConfig,
    service: &str,
    kind: QueueKind,
    limit: usize,
) -> lapin::Result<Vec<DeadLetter>> {
    let queue = format!("{}.dead", config.queue(service, kind));
    let (connection, channel) = connect(config).await?;
    let mut found = Vec::new();
    while found.len() < limit {
        let Some(message) = channel
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false })
            .await?
        else {
            break;
        };
        let props = &message.delivery.properties;
        let headers = props.headers().clone().unwrap_or_default();
        found.push(DeadLetter {
            message_id: props
                .message_id()
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            message_type: text(header(&headers, "cloudEvents_type")),
            subject: text(header(&headers, "cloudEvents_subject")),
            attempts: match header(&headers, ATTEMPT_HEADER) {
                Some(AMQPValue::LongLongInt(n)) => n,
                Some(AMQPValue::LongInt(n)) => i64::from(n),
                _ => 0,
            },
            last_error: text(header(&headers, ERROR_HEADER)),
            producer: text(header(&headers, PRODUCER_HEADER)),
        });
    }
    // Unacknowledged, the messages go back to the queue.
    connection.close(200, "listed".into()).await?;
    Ok(found)
}

/// Moves up to `limit` messages from `service`'s dead-letter queue of
/// `kind` back to its queue, attempts reset; returns how many.
pub async fn replay(
    config: &BusConfig,
    service: &str,
    kind: QueueKind,
    limit: usize,
) -> lapin::Result<usize> {
    let target = config.queue(service, kind);
    let queue = format!("{target}.dead");
    let dlx = config.dead_letter_exchange(&target);
    let user = config.user();
    let (connection, channel) = connect(config).await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let mut moved = 0;
    while moved < limit {
        let Some(message) = channel
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false })
            .await?
        else {
            break;
        };
        let delivery = message.delivery;
        let mut headers = delivery.properties.headers().clone().unwrap_or_default();
        let mut fresh = FieldTable::default();
        for (name, value) in headers.inner() {
            if ![ATTEMPT_HEADER, ERROR_HEADER, "x-death"].contains(&name.as_str()) {
                fresh.insert(name.clone(), value.clone());
            }
        }
        fresh.insert(ShortString::from(ATTEMPT_HEADER), AMQPValue::LongLongInt(0));
        headers = fresh;
        let properties = super::envelope::without_user_id(&delivery.properties)
            .with_headers(headers)
            .with_user_id(ShortString::from(user.as_str()));
        let confirm = channel
            .basic_publish(
                dlx.as_str().into(),
                REQUEUE_KEY.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &delivery.data,
                properties,
            )
            .await?
            .await?;
        if !confirm.is_ack() || confirm.take_message().is_some() {
            // Not taken: leave it dead-lettered (unacknowledged, it returns).
            break;
        }
        delivery.acker.ack(BasicAckOptions::default()).await?;
        moved += 1;
    }
    connection.close(200, "replayed".into()).await?;
    Ok(moved)
}

/// How many messages wait in `service`'s dead-letter queue of `kind`.
pub async fn depth(config: &BusConfig, service: &str, kind: QueueKind) -> lapin::Result<u32> {
    let queue = format!("{}.dead", config.queue(service, kind));
    let (connection, channel) = connect(config).await?;
    let declared = channel
        .queue_declare(
            queue.as_str().into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..lapin::options::QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await;
    let _ = connection.close(200, "measured".into()).await;
    Ok(declared?.message_count())
}

/// Records the depth of the dead-letter queues of `queues` every `every`
/// until `stop` (a queue not declared yet is skipped).
pub async fn watch_depths(
    config: BusConfig,
    queues: Vec<(&'static str, QueueKind)>,
    every: std::time::Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    if queues.is_empty() {
        return;
    }
    // A first look soon after start, again every two seconds while a queue
    // is not declared yet, then every `every`.
    let soon = std::time::Duration::from_secs(2).min(every);
    let mut wait = soon;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        wait = every;
        for (service, kind) in &queues {
            match depth(&config, service, *kind).await {
                Ok(n) => crate::metrics::dead_letters(
                    &format!("{}.dead", config.queue(service, *kind)),
                    u64::from(n),
                ),
                Err(_) => wait = soon,
            }
        }
    }
}
