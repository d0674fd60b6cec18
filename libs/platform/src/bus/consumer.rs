//! Consumers: each delivery is applied in a database transaction together
//! with its inbox row (so a duplicate has no second effect), acknowledged only
//! after that transaction committed, retried after a delay when the handler
//! fails, and dead-lettered after `max_attempts` or when it can never succeed.
//! The deliveries already in hand (up to the prefetch) share one transaction,
//! in queue order; when one of them fails they are applied one by one.
//!
//! A message is applied only if its producer is the one the topology names
//! for its type: the broker user in its `user_id` (which RabbitMQ checked
//! against the publishing connection) must be that producer's user. Any
//! other is dead-lettered at once with the reason, never applied, never
//! retried. A replay of a dead letter comes from this service's own user
//! through the queue's own dead-letter exchange; it vouches for the
//! producer recorded when the message was dead-lettered, which the same
//! check then applies to (so a replayed forgery is set apart again).

use std::sync::Arc;

use futures::StreamExt;
use futures::future::BoxFuture;
use lapin::Channel;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::envelope::{IncomingMessage, PRODUCER_HEADER, dead_letter_properties, header_text};
use super::{BusConfig, DEAD_KEY};

/// The two queues a service may consume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueKind {
    /// `<ns>.<service>.events`, bound to the events exchange.
    Events,
    /// `<ns>.<service>.commands`, bound to the commands exchange with the
    /// service's name; only that service reads it.
    Commands,
}

impl QueueKind {
    /// Name part.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Events => "events",
            Self::Commands => "commands",
        }
    }
}

/// Why a handler could not apply a message.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Will never succeed (undecodable payload, unknown type): dead-letter now.
    #[error("permanent failure: {0:#}")]
    Permanent(anyhow::Error),
    /// May succeed later (database down, a race): retry after a delay.
    #[error("transient failure: {0:#}")]
    Transient(anyhow::Error),
}

/// The id in a message's resource name (`accounts/{id}` with collection
/// `accounts`); a malformed name can never be handled: a permanent error.
pub fn id_in(name: &str, collection: &str) -> Result<uuid::Uuid, HandlerError> {
    crate::validate::resource_id(name, collection)
        .ok()
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| HandlerError::Permanent(anyhow::anyhow!("bad resource name {name:?}")))
}

impl HandlerError {
    /// Whether the failure says nothing about the message: the database
    /// could not be reached (a pool time-out, a broken connection, a server
    /// shutting down or refusing connections). Such a failure is retried
    /// without spending one of the message's attempts, so an outage longer
    /// than the retry budget never dead-letters healthy messages.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Permanent(_) => false,
            Self::Transient(e) => e
                .chain()
                .filter_map(|cause| cause.downcast_ref::<sqlx::Error>())
                .any(database_unavailable),
        }
    }
}

/// A database error that comes from reaching the server, not from the work:
/// SQLSTATE class 08 (connection exception) and 57P (operator intervention:
/// shutdown, cannot connect now).
fn database_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}

impl From<sqlx::Error> for HandlerError {
    fn from(e: sqlx::Error) -> Self {
        Self::Transient(e.into())
    }
}

impl From<prost::DecodeError> for HandlerError {
    fn from(e: prost::DecodeError) -> Self {
        Self::Permanent(e.into())
    }
}

/// Applies messages inside the caller's transaction.
pub trait Handler: Send + Sync + 'static {
    /// Applies `message`; every write goes through `tx`, which commits
    /// together with the inbox row.
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        message: &'a IncomingMessage,
    ) -> BoxFuture<'a, Result<(), HandlerError>>;
}

/// A queue declared without a consumer in this version: messages for it wait
/// durably until a consumer exists (the notification service's commands
/// queue, before mail delivery is built, for example).
#[derive(Debug, Clone)]
pub struct DeclaredQueue {
    /// Owning service.
    pub service: &'static str,
    /// Which of its queues.
    pub kind: QueueKind,
    /// For events: the message types (routing keys) to bind.
    pub routing_keys: Vec<String>,
}

/// One queue of a service and the handler of its messages.
#[derive(Clone)]
pub struct Consumer {
    /// Consuming service (`notification`).
    pub service: &'static str,
    /// Which of its queues.
    pub kind: QueueKind,
    /// For events: the message types (routing keys) to bind.
    pub routing_keys: Vec<String>,
    /// What to do with each message.
    pub handler: Arc<dyn Handler>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("service", &self.service)
            .field("kind", &self.kind)
            .field("routing_keys", &self.routing_keys)
            .finish_non_exhaustive()
    }
}

impl Consumer {
    /// The inbox key of this consumer (`notification.events`).
    pub fn inbox_name(&self) -> String {
        format!("{}.{}", self.service, self.kind.as_str())
    }

    /// Routing keys to bind: the event types, or the service name for
    /// commands.
    pub(crate) fn bindings(&self) -> Vec<String> {
        match self.kind {
            QueueKind::Events => self.routing_keys.clone(),
            QueueKind::Commands => vec![self.service.to_owned()],
        }
    }
}

/// Consumes until `stop` fires (after the current batch) or the channel
/// fails.
pub(crate) async fn run(
    channel: Channel,
    consumer: Consumer,
    config: BusConfig,
    pool: PgPool,
    stop: CancellationToken,
) -> lapin::Result<()> {
    let queue = config.queue(consumer.service, consumer.kind);
    channel
        .basic_qos(config.prefetch, BasicQosOptions::default())
        .await?;
    // Copies to the retry and dead-letter queues must be confirmed before the
    // original is acknowledged.
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let deliveries = channel
        .basic_consume(
            queue.as_str().into(),
            format!("{}-{}", consumer.inbox_name(), uuid::Uuid::new_v4()).into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    // Whatever has arrived, up to the prefetch, is applied together.
    let mut batches =
        deliveries.ready_chunks(usize::from(config.batch.min(config.prefetch).max(1)));
    let user = config.user();
    let dlx = config.dead_letter_exchange(&queue);
    let ctx = Context {
        channel: &channel,
        consumer: &consumer,
        config: &config,
        pool: &pool,
        queue: &queue,
        user: &user,
        dlx: &dlx,
        stop: &stop,
    };
    loop {
        let next = tokio::select! {
            () = stop.cancelled() => break,
            next = batches.next() => next,
        };
        let Some(batch) = next else { break };
        let batch = batch.into_iter().collect::<lapin::Result<Vec<_>>>()?;
        ctx.process_batch(batch).await?;
    }
    Ok(())
}

/// What processing a delivery needs.
#[derive(Clone, Copy)]
struct Context<'a> {
    channel: &'a Channel,
    consumer: &'a Consumer,
    config: &'a BusConfig,
    pool: &'a PgPool,
    queue: &'a str,
    /// The broker user this consumer connects as.
    user: &'a str,
    /// The queue's dead-letter exchange.
    dlx: &'a str,
    stop: &'a CancellationToken,
}

/// What became of a delivery handled on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    /// Acknowledged, retried or dead-lettered.
    Done,
    /// The database could not be reached: the delivery went back to the
    /// queue after a pause, and so must the rest of the batch.
    Unavailable,
}

impl Context<'_> {
    /// Applies the deliveries in hand in one transaction, in their order,
    /// and acknowledges them once it committed: one commit for many
    /// messages. If any of them fails, nothing of the batch is kept and each
    /// is applied on its own, so that only the failing one is retried or
    /// dead-lettered, exactly as when it arrives alone.
    async fn process_batch(&self, batch: Vec<Delivery>) -> lapin::Result<()> {
        let mut messages = Vec::with_capacity(batch.len());
        for delivery in batch {
            match IncomingMessage::from_delivery(&delivery) {
                Ok(message) => match self.check_producer(&delivery, &message) {
                    Ok(()) => messages.push((delivery, message)),
                    Err(reason) => self.dead_forged(&delivery, &message, &reason).await?,
                },
                Err(reason) => self.dead_envelope(&delivery, &reason).await?,
            }
        }
        if messages.len() > 1 {
            // By subject (the account), keeping each subject's order: the
            // batches of concurrent consumers then lock rows in the same
            // order and do not deadlock each other.
            messages.sort_by(|a, b| a.1.subject.cmp(&b.1.subject));
            let started = std::time::Instant::now();
            match self.apply_all(&messages).await {
                Ok(()) => {
                    let seconds = started.elapsed().as_secs_f64();
                    for (delivery, message) in &messages {
                        self.count(message, "ack", seconds);
                        delivery.acker.ack(BasicAckOptions::default()).await?;
                    }
                    return Ok(());
                }
                Err(e) => tracing::debug!(
                    queue = self.queue,
                    messages = messages.len(),
                    error = %format!("{e:#}"),
                    "A batch failed; applying its messages one by one."
                ),
            }
        }
        let mut unavailable = false;
        for (delivery, message) in messages {
            if unavailable {
                // The database is down: the rest goes back to the queue too.
                requeue(&delivery).await?;
                continue;
            }
            unavailable = self.process(delivery, message).await? == Settled::Unavailable;
        }
        Ok(())
    }

    /// The producer of a delivery: the broker user in its `user_id`; for a
    /// replay (published by this service's own user through the queue's own
    /// dead-letter exchange), the producer recorded when it was
    /// dead-lettered.
    fn producer_of(&self, delivery: &Delivery) -> Option<String> {
        let user_id = delivery
            .properties
            .user_id()
            .as_ref()
            .map(|u| u.as_str().to_owned())?;
        if user_id == self.user
            && delivery.exchange.as_str() == self.dlx
            && let Some(recorded) = header_text(&delivery.properties, PRODUCER_HEADER)
        {
            return Some(recorded);
        }
        Some(user_id)
    }

    /// `Err` with the reason when the delivery does not come from the
    /// producer of its type.
    fn check_producer(&self, delivery: &Delivery, message: &IncomingMessage) -> Result<(), String> {
        let expected = self.config.expected_producers(
            self.consumer.service,
            self.consumer.kind,
            &message.message_type,
        )?;
        match self.producer_of(delivery) {
            Some(producer) if expected.contains(&producer) => Ok(()),
            Some(producer) => Err(format!(
                "forged producer: {} from broker user {producer:?}, but only {expected:?} produce it",
                message.message_type
            )),
            None => Err(format!(
                "unauthenticated producer: {} carries no user_id ({expected:?} produce it)",
                message.message_type
            )),
        }
    }

    async fn dead_forged(
        &self,
        delivery: &Delivery,
        message: &IncomingMessage,
        reason: &str,
    ) -> lapin::Result<()> {
        let queue = self.queue;
        tracing::warn!(%queue, message_type = %message.message_type, message_id = %message.id, %reason, "Dead-lettered a message from the wrong producer.");
        self.count(message, "forged", 0.0);
        let producer = self.producer_of(delivery);
        forward(
            self.channel,
            delivery,
            self.dlx,
            message.attempt,
            reason,
            producer.as_deref(),
        )
        .await
    }

    async fn dead_envelope(&self, delivery: &Delivery, reason: &str) -> lapin::Result<()> {
        let queue = self.queue;
        tracing::warn!(%queue, %reason, "Dead-lettered a message without a valid envelope.");
        let producer = self.producer_of(delivery);
        forward(
            self.channel,
            delivery,
            self.dlx,
            0,
            reason,
            producer.as_deref(),
        )
        .await
    }

    fn span(&self, message: &IncomingMessage) -> tracing::Span {
        let span = tracing::info_span!(
            "consume",
            consumer = %self.consumer.inbox_name(),
            message_type = %message.message_type,
            message_id = %message.id,
            attempt = message.attempt,
        );
        crate::telemetry::set_parent_from(
            &span,
            message.traceparent.as_deref(),
            message.tracestate.as_deref(),
        );
        span
    }

    fn count(&self, message: &IncomingMessage, label: &'static str, seconds: f64) {
        crate::metrics::consumed(
            &self.consumer.inbox_name(),
            &message.message_type,
            label,
            seconds,
        );
    }

    /// Applies one message in its own transaction, then acknowledges it,
    /// retries it or dead-letters it.
    async fn process(
        &self,
        delivery: Delivery,
        message: IncomingMessage,
    ) -> lapin::Result<Settled> {
        let span = self.span(&message);
        let started = std::time::Instant::now();
        let outcome = async {
            let mut tx = self.pool.begin().await?;
            apply(&mut tx, self.consumer, &message).await?;
            tx.commit().await?;
            Ok::<_, HandlerError>(())
        }
        .instrument(span.clone())
        .await;
        // The span is entered only while this future is polled: an
        // `Entered` guard held across an await stays on the stack of a
        // thread the task may leave (clippy refuses it, see clippy.toml).
        self.settle(delivery, message, outcome, started)
            .instrument(span)
            .await
    }

    /// Acknowledges, retries or dead-letters a message `process` applied
    /// with `outcome`.
    async fn settle(
        &self,
        delivery: Delivery,
        message: IncomingMessage,
        outcome: Result<(), HandlerError>,
        started: std::time::Instant,
    ) -> lapin::Result<Settled> {
        let (channel, config) = (self.channel, self.config);
        // An unreachable database is not the message's fault: it keeps its
        // attempt count and returns to the queue after a pause, until the
        // database is back.
        if let Err(e) = &outcome
            && e.is_unavailable()
        {
            self.count(&message, "unavailable", started.elapsed().as_secs_f64());
            tracing::info!(error = %format!("{e:#}"), "The database is unreachable; the message returns to its queue.");
            tokio::select! {
                () = self.stop.cancelled() => {}
                () = tokio::time::sleep(config.retry_delay) => {}
            }
            requeue(&delivery).await?;
            return Ok(Settled::Unavailable);
        }
        let attempt = message.attempt + 1;
        let label = match &outcome {
            Ok(()) => "ack",
            Err(HandlerError::Transient(_)) if attempt < config.max_attempts => "retry",
            Err(_) => "dead",
        };
        self.count(&message, label, started.elapsed().as_secs_f64());
        let producer = self.producer_of(&delivery);
        match outcome {
            Ok(()) => delivery
                .acker
                .ack(BasicAckOptions::default())
                .await
                .map(drop)?,
            Err(HandlerError::Permanent(e)) => {
                tracing::warn!(error = %format!("{e:#}"), "Dead-lettered a message that cannot be handled.");
                forward(
                    channel,
                    &delivery,
                    self.dlx,
                    attempt,
                    &format!("{e:#}"),
                    producer.as_deref(),
                )
                .await?;
            }
            Err(HandlerError::Transient(e)) => {
                if attempt >= config.max_attempts {
                    tracing::warn!(error = %format!("{e:#}"), attempt, "Dead-lettered a message after its last attempt.");
                    forward(
                        channel,
                        &delivery,
                        self.dlx,
                        attempt,
                        &format!("{e:#}"),
                        producer.as_deref(),
                    )
                    .await?;
                } else {
                    tracing::info!(error = %format!("{e:#}"), attempt, "Message failed; it will be retried.");
                    // Rejected, RabbitMQ moves it to the retry queue as it
                    // is (the producer's user_id kept) and counts the
                    // attempt in x-death.
                    delivery
                        .acker
                        .nack(BasicNackOptions {
                            requeue: false,
                            ..BasicNackOptions::default()
                        })
                        .await?;
                }
            }
        }
        Ok(Settled::Done)
    }

    /// Applies every message in one transaction, in order.
    async fn apply_all(
        &self,
        messages: &[(Delivery, IncomingMessage)],
    ) -> Result<(), HandlerError> {
        let mut tx = self.pool.begin().await?;
        for (_, message) in messages {
            apply(&mut tx, self.consumer, message)
                .instrument(self.span(message))
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Applies a message once in the caller's transaction: the inbox row and
/// the handler's writes commit together; a message already in the inbox is
/// skipped.
async fn apply(
    tx: &mut PgConnection,
    consumer: &Consumer,
    message: &IncomingMessage,
) -> Result<(), HandlerError> {
    let fresh = sqlx::query(
        "INSERT INTO inbox (consumer, message_id, message_type) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(consumer.inbox_name())
    .bind(&message.id)
    .bind(&message.message_type)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !fresh {
        tracing::debug!("Skipped a message already applied.");
        return Ok(());
    }
    consumer.handler.handle(tx, message).await
}

/// Returns `delivery` to its queue as it is.
async fn requeue(delivery: &Delivery) -> lapin::Result<()> {
    delivery
        .acker
        .nack(BasicNackOptions {
            requeue: true,
            ..BasicNackOptions::default()
        })
        .await
        .map(drop)
}

/// Publishes a copy of `delivery` to the dead-letter queue (through the
/// queue's dead-letter exchange `dlx`) with its attempts, the reason and its
/// producer, waits for the broker's confirm, then acknowledges the original.
/// If the copy cannot be confirmed the original is returned to its queue.
async fn forward(
    channel: &Channel,
    delivery: &Delivery,
    dlx: &str,
    attempt: u32,
    error: &str,
    producer: Option<&str>,
) -> lapin::Result<()> {
    let properties = dead_letter_properties(delivery, attempt, error, producer);
    let queue = format!("{dlx} → {DEAD_KEY}");
    let confirmed = async {
        channel
            .basic_publish(
                dlx.into(),
                DEAD_KEY.into(),
                BasicPublishOptions::default(),
                &delivery.data,
                properties,
            )
            .await?
            .await
    }
    .await;
    match confirmed {
        Ok(c) if c.is_ack() => delivery
            .acker
            .ack(BasicAckOptions::default())
            .await
            .map(drop),
        other => {
            tracing::warn!(%queue, outcome = ?other.as_ref().map(|c| c.is_ack()), "Could not forward a message; returning it to its queue.");
            requeue(delivery).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::HandlerError;
    use anyhow::Context as _;

    fn transient(e: sqlx::Error) -> HandlerError {
        HandlerError::from(e)
    }

    #[test]
    fn an_unreachable_database_does_not_spend_an_attempt() {
        assert!(transient(sqlx::Error::PoolTimedOut).is_unavailable());
        assert!(transient(sqlx::Error::PoolClosed).is_unavailable());
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(transient(sqlx::Error::Io(io)).is_unavailable());
    }

    #[test]
    fn a_wrapped_pool_time_out_is_still_seen() {
        let wrapped = Err::<(), _>(sqlx::Error::PoolTimedOut)
            .context("cannot begin the inbox transaction")
            .unwrap_err();
        assert!(HandlerError::Transient(wrapped).is_unavailable());
    }

    #[test]
    fn failures_of_the_work_itself_spend_an_attempt() {
        assert!(!transient(sqlx::Error::RowNotFound).is_unavailable());
        assert!(!HandlerError::Transient(anyhow::anyhow!("a race")).is_unavailable());
        assert!(
            !HandlerError::Permanent(anyhow::Error::new(sqlx::Error::PoolTimedOut))
                .is_unavailable()
        );
    }
}
