//! Exchanges and queues, declared idempotently at every (re)connection and
//! also shipped as RabbitMQ definitions under deploy/.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, ExchangeKind};

use super::{BusConfig, DEAD_KEY, REQUEUE_KEY, RETRY_KEY};

/// Where an outgoing message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// The events topic exchange (routing key: the message type).
    Events,
    /// The commands direct exchange (routing key: the target service).
    Commands,
}

impl Destination {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Events => "events",
            Self::Commands => "commands",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "events" => Some(Self::Events),
            "commands" => Some(Self::Commands),
            _ => None,
        }
    }

    /// The exchange name under `config`'s namespace.
    pub fn exchange(self, config: &BusConfig) -> String {
        match self {
            Self::Events => config.events_exchange(),
            Self::Commands => config.commands_exchange(),
        }
    }
}

/// Declares the events (topic) and commands (direct) exchanges.
pub async fn declare_exchanges(channel: &Channel, config: &BusConfig) -> lapin::Result<()> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(
            config.events_exchange().into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await?;
    channel
        .exchange_declare(
            config.commands_exchange().into(),
            ExchangeKind::Direct,
            durable,
            FieldTable::default(),
        )
        .await
}

/// Declares a durable (quorum by default) queue with its dead-letter
/// exchange (`<queue>.dlx`), its retry queue (`<queue>.retry`, which hands
/// messages back after `retry_delay`) and its dead-letter queue
/// (`<queue>.dead`), and binds the queue to `exchange` with each routing key.
///
/// A failed delivery is rejected (`nack`, no requeue): RabbitMQ moves it,
/// properties untouched (the producer's `user_id` included), through the
/// dead-letter exchange to the retry queue, whose expiry moves it back
/// through the same exchange to the queue, counting in `x-death`. Nothing
/// goes through the default exchange, which no service user may write to.
pub async fn declare_queue(
    channel: &Channel,
    config: &BusConfig,
    queue: &str,
    exchange: &str,
    routing_keys: &[String],
) -> lapin::Result<()> {
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    let dlx = config.dead_letter_exchange(queue);
    channel
        .exchange_declare(
            dlx.as_str().into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                // Test namespaces: gone once their queues expired.
                auto_delete: config.queue_expires.is_some(),
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    let (main, retry, dead) = queue_set_arguments(config, queue);
    channel.queue_declare(queue.into(), durable, main).await?;
    channel
        .queue_declare(format!("{queue}.retry").into(), durable, retry)
        .await?;
    channel
        .queue_declare(format!("{queue}.dead").into(), durable, dead)
        .await?;
    for (key, target) in [
        (RETRY_KEY, format!("{queue}.retry")),
        (DEAD_KEY, format!("{queue}.dead")),
        (REQUEUE_KEY, queue.to_owned()),
    ] {
        channel
            .queue_bind(
                target.as_str().into(),
                dlx.as_str().into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    for key in routing_keys {
        channel
            .queue_bind(
                queue.into(),
                exchange.into(),
                ShortString::from(key.as_str()),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}

/// The arguments of a queue, its retry queue and its dead-letter queue
/// (the definitions under deploy/ carry the same).
fn queue_set_arguments(config: &BusConfig, queue: &str) -> (FieldTable, FieldTable, FieldTable) {
    let dlx = config.dead_letter_exchange(queue);
    let dead_letter_to = |args: &mut FieldTable, key: &str| {
        args.insert("x-dead-letter-exchange".into(), long(&dlx));
        args.insert("x-dead-letter-routing-key".into(), long(key));
        if config.quorum_queues {
            // At-least-once dead-lettering: a message is never dropped on
            // its way to or from the retry queue.
            args.insert("x-dead-letter-strategy".into(), long("at-least-once"));
            args.insert("x-overflow".into(), long("reject-publish"));
        }
    };
    let mut main = queue_arguments(config);
    dead_letter_to(&mut main, RETRY_KEY);
    let mut retry = queue_arguments(config);
    let delay_ms = i64::try_from(config.retry_delay.as_millis()).unwrap_or(i64::MAX);
    retry.insert("x-message-ttl".into(), AMQPValue::LongLongInt(delay_ms));
    dead_letter_to(&mut retry, REQUEUE_KEY);
    (main, retry, queue_arguments(config))
}

fn queue_arguments(config: &BusConfig) -> FieldTable {
    let mut args = FieldTable::default();
    let kind = if config.quorum_queues {
        "quorum"
    } else {
        "classic"
    };
    args.insert("x-queue-type".into(), long(kind));
    if let Some(expires) = config.queue_expires {
        let ms = i64::try_from(expires.as_millis()).unwrap_or(i64::MAX);
        args.insert("x-expires".into(), AMQPValue::LongLongInt(ms));
    }
    args
}

fn long(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}
