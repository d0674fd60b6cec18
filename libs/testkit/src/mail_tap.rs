//! Reads the mail commands sent to the notification service, from a queue of
//! the test's own bound beside notification's: the way tests get the tokens
//! that mails carry.

use std::time::Duration;

use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, Consumer};
use partnerhub_platform::bus::{BusConfig, declare_exchanges};
use partnerhub_proto::notification::v1::SendMail;
use prost::Message;

use crate::AMQP_URL;

/// A private queue receiving every command for `notification`.
pub struct MailTap {
    connection: Connection,
    consumer: Consumer,
}

impl std::fmt::Debug for MailTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailTap").finish_non_exhaustive()
    }
}

impl MailTap {
    /// Binds an exclusive queue to the commands exchange of `bus`.
    pub async fn start(bus: &BusConfig) -> anyhow::Result<Self> {
        let connection = Connection::connect(AMQP_URL, ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        declare_exchanges(&channel, bus).await?;
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_bind(
                queue.name().clone(),
                bus.commands_exchange().into(),
                "notification".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let consumer = channel
            .basic_consume(
                queue.name().clone(),
                "mail-tap".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(Self {
            connection,
            consumer,
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

    /// The next mail with `template` sent to `to`, skipping others.
    pub async fn next_to(
        &mut self,
        template: &str,
        to: &str,
        timeout: Duration,
    ) -> anyhow::Result<SendMail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let mail = self.next(left).await?;
            if mail.template == template && mail.to.eq_ignore_ascii_case(to) {
                return Ok(mail);
            }
        }
    }

    /// Closes the connection (its queue goes with it).
    pub async fn close(self) {
        let _ = self.connection.close(200, "done".into()).await;
    }
}
