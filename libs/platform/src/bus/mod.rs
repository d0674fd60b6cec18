//! RabbitMQ: configuration and names, the CloudEvents envelope, a supervised
//! connection that reconnects and re-declares everything, and consumers that
//! apply each message once (inbox), retry with a delay and dead-letter after
//! a number of attempts, and accept a message type only from the broker user
//! of its producer (`user_id`, checked by the broker at publish).

mod consumer;
pub mod dead;
pub mod definitions;
mod envelope;
mod producers;
mod supervisor;
mod topology;

use std::time::Duration;

pub use consumer::{Consumer, DeclaredQueue, Handler, HandlerError, QueueKind, id_in};
pub use envelope::{
    ATTEMPT_HEADER, ERROR_HEADER, IncomingMessage, OutgoingMessage, PRODUCER_HEADER,
    dead_letter_properties, redelivery_properties,
};
pub use producers::{BrokerUsers, Producer, Producers};
pub use supervisor::Bus;
pub use topology::{Destination, declare_exchanges, declare_queue};

/// How to reach RabbitMQ and how to name and pace things there.
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// `amqp://user:pass@host:5672/vhost`.
    pub url: String,
    /// Prefix of every exchange and queue name (`partnerhub`); tests use a
    /// fresh one each so they never see each other's messages.
    pub namespace: String,
    /// Unacknowledged deliveries per consumer.
    pub prefetch: u16,
    /// Deliveries in hand a consumer applies in one transaction (at most
    /// the prefetch; 32 by default, `PARTNERHUB_AMQP_BATCH`). 1 applies
    /// each delivery in its own transaction.
    pub batch: u16,
    /// Consumers of each queue in one process (`PARTNERHUB_AMQP_CONSUMERS`,
    /// 4): each has its own channel and prefetch and applies its batches
    /// in its own transactions, as replicas do. A handler's database round
    /// trips are mostly waiting: one consumer per queue applied about 100
    /// events/s on the soak's busy machine with its process 90 % idle.
    pub consumers: u16,
    /// Deliveries of one message before it goes to the dead-letter queue.
    pub max_attempts: u32,
    /// Delay before a failed message is delivered again.
    pub retry_delay: Duration,
    /// Queues unused this long are deleted by the broker (tests only).
    pub queue_expires: Option<Duration>,
    /// Quorum queues (replicated, the default); `false` declares classic
    /// queues, which tests use because a broker creating and expiring
    /// hundreds of quorum queues a minute stalls for seconds at a time.
    pub quorum_queues: bool,
    /// Which broker users the services connect as
    /// (`PARTNERHUB_AMQP_USERS`: `shared`, the default, or `per-service`).
    pub users: BrokerUsers,
    /// Who produces each message type: filled from the services' topology
    /// by whoever knows all of it (the binary, the testkit). Empty, a
    /// consumer with per-service users accepts nothing.
    pub producers: Producers,
}

impl BusConfig {
    /// Settings for `url` with the defaults of a deployment.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            namespace: "partnerhub".into(),
            prefetch: 32,
            batch: 32,
            consumers: 4,
            max_attempts: 5,
            retry_delay: Duration::from_secs(5),
            queue_expires: None,
            quorum_queues: true,
            users: BrokerUsers::Shared,
            producers: Producers::default(),
        }
    }

    /// The topic exchange of events.
    pub fn events_exchange(&self) -> String {
        format!("{}.events", self.namespace)
    }

    /// The direct exchange of commands (routing key: the target service).
    pub fn commands_exchange(&self) -> String {
        format!("{}.commands", self.namespace)
    }

    /// The queue of one service: `<ns>.<service>.events` or `.commands`.
    pub fn queue(&self, service: &str, kind: QueueKind) -> String {
        format!("{}.{service}.{}", self.namespace, kind.as_str())
    }

    /// The dead-letter exchange of `queue` (`<queue>.dlx`, direct, under the
    /// service's own name prefix): routing key [`RETRY_KEY`] reaches
    /// `<queue>.retry`, [`DEAD_KEY`] `<queue>.dead`, and [`REQUEUE_KEY`]
    /// the queue itself. No service writes to the default exchange.
    pub fn dead_letter_exchange(&self, queue: &str) -> String {
        format!("{queue}.dlx")
    }
}

/// Routing key of a queue's dead-letter exchange to its retry queue.
pub const RETRY_KEY: &str = "retry";
/// Routing key of a queue's dead-letter exchange to its dead-letter queue.
pub const DEAD_KEY: &str = "dead";
/// Routing key of a queue's dead-letter exchange back to the queue (from
/// the retry queue, and for a replay).
pub const REQUEUE_KEY: &str = "requeue";

impl BusConfig {
    /// The users setting from its text form (`shared`, `per-service`).
    pub fn parse_users(&self, text: &str) -> Option<BrokerUsers> {
        match text {
            "shared" => Some(BrokerUsers::Shared),
            "per-service" => Some(BrokerUsers::PerService {
                prefix: format!("{}-", self.namespace),
            }),
            _ => None,
        }
    }
}
