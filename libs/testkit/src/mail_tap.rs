//! Taps on the bus: a private queue of the test's own, bound beside the
//! services' queues. `MailTap` reads the mail commands sent to notification
//! (the way tests get the tokens mails carry); `EventTap` reads every event.

use std::time::Duration;

use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, Consumer};
use partnerhub_platform::bus::{BusConfig, declare_exchanges};
use partnerhub_proto::notification::v1::SendMail;
use prost::Message;

use crate::AMQP_URL;

/// An exclusive, auto-deleted queue of the test's own on `bus`, bound with
/// each `(exchange, routing key)` of `bindings`, and its consumer (ack each
/// delivery). Keep the connection alive as long as the consumer.
pub async fn tap(
    bus: &BusConfig,
    bindings: &[(String, String)],
) -> anyhow::Result<(Connection, Consumer)> {
    let connection = Connection::connect(AMQP_URL, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    declare_exchanges(&channel, bus).await?;
    let options = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..QueueDeclareOptions::default()
    };
    let queue = channel
        .queue_declare("".into(), options, FieldTable::default())
        .await?;
    for (exchange, routing_key) in bindings {
        channel
            .queue_bind(
                queue.name().clone(),
                exchange.as_str().into(),
                routing_key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    let consumer = channel
        .basic_consume(
            queue.name().clone(),
            "tap".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((connection, consumer))
}

/// A private queue receiving every command for `notification`.
pub struct MailTap {
    connection: Connection,
    consumer: Consumer,
    /// Mails read while looking for another one.
    pending: Vec<SendMail>,
}

impl std::fmt::Debug for MailTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailTap").finish_non_exhaustive()
    }
}

impl MailTap {
    /// Binds an exclusive queue to the commands exchange of `bus`.
    pub async fn start(bus: &BusConfig) -> anyhow::Result<Self> {
        let (connection, consumer) =
            tap(bus, &[(bus.commands_exchange(), "notification".to_owned())]).await?;
        Ok(Self {
            connection,
            consumer,
            pending: Vec::new(),
        })
    }

    /// The next mail, waiting up to `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> anyhow::Result<SendMail> {
        let delivery = tokio::time::timeout(timeout, self.consumer.next())
            .await
            .map_err(|_| anyhow::anyhow!("no mail within {timeout:?}"))?
            .ok_or_else(|| anyhow::anyhow!("mail tap closed"))??;
        delivery.acker.ack(BasicAckOptions::default()).await?;
        Ok(SendMail::decode(delivery.data.as_slice())?)
    }

    /// The next mail with `template` sent to `to`; other mails read on the
    /// way are kept for later calls.
    pub async fn next_to(
        &mut self,
        template: &str,
        to: &str,
        timeout: Duration,
    ) -> anyhow::Result<SendMail> {
        let wanted = |m: &SendMail| m.template == template && m.to.eq_ignore_ascii_case(to);
        if let Some(i) = self.pending.iter().position(wanted) {
            return Ok(self.pending.remove(i));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let mail = self.next(left).await?;
            if wanted(&mail) {
                return Ok(mail);
            }
            self.pending.push(mail);
        }
    }

    /// Closes the connection (its queue goes with it).
    pub async fn close(self) {
        let _ = self.connection.close(200, "done".into()).await;
    }
}

/// A private queue receiving every event.
pub struct EventTap {
    connection: Connection,
    consumer: Consumer,
}

impl std::fmt::Debug for EventTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventTap").finish_non_exhaustive()
    }
}

/// An event as it travelled: its type (routing key) and payload.
#[derive(Debug, Clone)]
pub struct TappedEvent {
    /// Fully-qualified protobuf name.
    pub message_type: String,
    /// Encoded payload.
    pub payload: Vec<u8>,
}

impl EventTap {
    /// Binds an exclusive queue to the events exchange with `#`.
    pub async fn start(bus: &BusConfig) -> anyhow::Result<Self> {
        let (connection, consumer) = tap(bus, &[(bus.events_exchange(), "#".to_owned())]).await?;
        Ok(Self {
            connection,
            consumer,
        })
    }

    /// Every event that arrives until none came for `quiet`.
    pub async fn drain(&mut self, quiet: Duration) -> anyhow::Result<Vec<TappedEvent>> {
        let mut events = Vec::new();
        while let Ok(Some(delivery)) = tokio::time::timeout(quiet, self.consumer.next()).await {
            events.push(acked(delivery?).await?);
        }
        Ok(events)
    }

    /// Every event that arrives until `enough` holds for them (an error
    /// after `timeout`), then until none came for `quiet`, so that extra
    /// events are seen too.
    pub async fn drain_until(
        &mut self,
        enough: impl Fn(&[TappedEvent]) -> bool,
        timeout: Duration,
        quiet: Duration,
    ) -> anyhow::Result<Vec<TappedEvent>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut events = Vec::new();
        while !enough(&events) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.consumer.next()).await {
                Ok(Some(delivery)) => events.push(acked(delivery?).await?),
                _ => anyhow::bail!(
                    "{} event(s) within {timeout:?}, not yet enough",
                    events.len()
                ),
            }
        }
        events.extend(self.drain(quiet).await?);
        Ok(events)
    }

    /// Closes the connection (its queue goes with it).
    pub async fn close(self) {
        let _ = self.connection.close(200, "done".into()).await;
    }
}

/// Acknowledges a tapped delivery and keeps its type and payload.
async fn acked(delivery: lapin::message::Delivery) -> anyhow::Result<TappedEvent> {
    delivery.acker.ack(BasicAckOptions::default()).await?;
    Ok(TappedEvent {
        message_type: delivery.routing_key.as_str().to_owned(),
        payload: delivery.data,
    })
}
