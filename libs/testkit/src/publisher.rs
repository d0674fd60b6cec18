//! Publishing on the bus as a producer outside the suite would (the billing
//! system), or as a service would, to feed a consumer exactly the messages a
//! test needs, duplicates included.

use chrono::Utc;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{Connection, ConnectionProperties};
use partnerhub_platform::bus::{BusConfig, OutgoingMessage, declare_exchanges};
use uuid::Uuid;

use crate::AMQP_URL;

/// A confirmed publisher on the suite's exchanges.
pub struct Publisher {
    connection: Connection,
    channel: lapin::Channel,
    bus: BusConfig,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").finish_non_exhaustive()
    }
}

impl Publisher {
    /// Connects to the broker of `bus` as the tests' shared user.
    pub async fn connect(bus: &BusConfig) -> anyhow::Result<Self> {
        let mut bus = bus.clone();
        bus.url = AMQP_URL.to_owned();
        Self::connect_as(&bus).await
    }

    /// Connects as the user of `bus.url`, whose id every message carries.
    pub async fn connect_as(bus: &BusConfig) -> anyhow::Result<Self> {
        let connection = Connection::connect(&bus.url, ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        declare_exchanges(&channel, bus).await?;
        Ok(Self {
            connection,
            channel,
            bus: bus.clone(),
        })
    }

    /// Publishes `event` with a new message id; returns the id.
    pub async fn event<M: prost::Message + prost::Name>(
        &self,
        source: &str,
        subject: &str,
        event: &M,
    ) -> anyhow::Result<Uuid> {
        let id = Uuid::now_v7();
        self.event_with_id(id, source, subject, event).await?;
        Ok(id)
    }

    /// Publishes `event` with message id `id` (again: a duplicate).
    pub async fn event_with_id<M: prost::Message + prost::Name>(
        &self,
        id: Uuid,
        source: &str,
        subject: &str,
        event: &M,
    ) -> anyhow::Result<()> {
        let exchange = self.bus.events_exchange();
        self.publish(&exchange, &M::full_name(), id, source, subject, event)
            .await
    }

    /// Sends `command` to `service`'s commands queue with message id `id`.
    pub async fn command<M: prost::Message + prost::Name>(
        &self,
        id: Uuid,
        service: &str,
        source: &str,
        command: &M,
    ) -> anyhow::Result<()> {
        let exchange = self.bus.commands_exchange();
        self.publish(&exchange, service, id, source, "", command)
            .await
    }

    async fn publish<M: prost::Message + prost::Name>(
        &self,
        exchange: &str,
        routing_key: &str,
        id: Uuid,
        source: &str,
        subject: &str,
        message: &M,
    ) -> anyhow::Result<()> {
        let message = OutgoingMessage {
            id,
            message_type: M::full_name(),
            source: source.to_owned(),
            subject: subject.to_owned(),
            time: Utc::now(),
            payload: message.encode_to_vec(),
            traceparent: None,
            tracestate: None,
        };
        let confirm = self
            .channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &message.payload,
                message
                    .properties()
                    .with_user_id(self.bus.user().as_str().into()),
            )
            .await?
            .await?;
        anyhow::ensure!(confirm.is_ack(), "the broker refused the message");
        if let Some(returned) = confirm.take_message() {
            anyhow::bail!(
                "no queue is bound for {routing_key} (returned: {:?})",
                returned.reply_text
            );
        }
        Ok(())
    }

    /// Closes the connection.
    pub async fn close(self) {
        let _ = self.connection.close(200, "done".into()).await;
    }
}
