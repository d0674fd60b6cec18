//! Consumers: each delivery is applied in a database transaction together
//! with its inbox row (so a duplicate has no second effect), acknowledged only
//! after that transaction committed, retried after a delay when the handler
//! fails, and dead-lettered after `max_attempts` or when it can never succeed.
//! The deliveries already in hand (up to the prefetch) share one transaction,
//! in queue order; when one of them fails they are applied one by one.

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

use super::BusConfig;
use super::envelope::{IncomingMessage, redelivery_properties};

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
    let ctx = Context {
        channel: &channel,
        consumer: &consumer,
        config: &config,
        pool: &pool,
        queue: &queue,
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
                Ok(message) => messages.push((delivery, message)),
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
        for (delivery, message) in messages {
            self.process(delivery, message).await?;
        }
        Ok(())
    }

    async fn dead_envelope(&self, delivery: &Delivery, reason: &str) -> lapin::Result<()> {
        let queue = self.queue;
        tracing::warn!(%queue, %reason, "Dead-lettered a message without a valid envelope.");
        forward(self.channel, delivery, &format!("{queue}.dead"), 0, reason).await
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
    async fn process(&self, delivery: Delivery, message: IncomingMessage) -> lapin::Result<()> {
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
    ) -> lapin::Result<()> {
        let (channel, config, queue) = (self.channel, self.config, self.queue);
        // An unreachable database is not the message's fault: it keeps its
        // attempt count and goes round the retry queue until the database is back.
        let attempt = match &outcome {
            Err(e) if e.is_unavailable() => message.attempt,
            _ => message.attempt + 1,
        };
        let label = match &outcome {
            Ok(()) => "ack",
            Err(HandlerError::Transient(_)) if attempt < config.max_attempts => "retry",
            Err(_) => "dead",
        };
        self.count(&message, label, started.elapsed().as_secs_f64());
        match outcome {
            Ok(()) => delivery
                .acker
                .ack(BasicAckOptions::default())
                .await
                .map(drop),
            Err(HandlerError::Permanent(e)) => {
                tracing::warn!(error = %format!("{e:#}"), "Dead-lettered a message that cannot be handled.");
                forward(
                    channel,
                    &delivery,
                    &format!("{queue}.dead"),
                    message.attempt + 1,
                    &format!("{e:#}"),
                )
                .await
            }
            Err(HandlerError::Transient(e)) => {
                if attempt >= config.max_attempts {
                    tracing::warn!(error = %format!("{e:#}"), attempt, "Dead-lettered a message after its last attempt.");
                    forward(
                        channel,
                        &delivery,
                        &format!("{queue}.dead"),
                        attempt,
                        &format!("{e:#}"),
                    )
                    .await
                } else {
                    tracing::info!(error = %format!("{e:#}"), attempt, "Message failed; it will be retried.");
                    forward(
                        channel,
                        &delivery,
                        &format!("{queue}.retry"),
                        attempt,
                        &format!("{e:#}"),
                    )
                    .await
                }
            }
        }
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

/// Publishes a copy of `delivery` to `queue` (through the default exchange),
/// waits for the broker's confirm, then acknowledges the original. If the
/// copy cannot be confirmed the original is returned to its queue.
async fn forward(
    channel: &Channel,
    delivery: &Delivery,
    queue: &str,
    attempt: u32,
    error: &str,
) -> lapin::Result<()> {
    let properties = redelivery_properties(delivery, attempt, error);
    let confirmed = async {
        channel
            .basic_publish(
                "".into(),
                queue.into(),
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
            delivery
                .acker
                .nack(BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                })
                .await
                .map(drop)
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
