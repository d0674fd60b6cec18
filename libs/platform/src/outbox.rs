//! The transactional outbox. A service writes its events and commands in the
//! same transaction as the change they describe; a relay claims rows in order
//! (`FOR UPDATE SKIP LOCKED`, so replicas share the work), publishes them with
//! publisher confirms, and deletes them only once the broker confirmed. It
//! wakes on commit (`NOTIFY`), also polls, backs off while the broker is
//! down, and never gives up on a row.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lapin::options::BasicPublishOptions;
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::bus::{Bus, Destination, OutgoingMessage};

const CHANNEL: &str = "partnerhub_outbox";
const BATCH: i64 = 200;
const POLL: Duration = Duration::from_secs(1);

/// Writes an event in the caller's transaction. Its type and routing key is
/// the message's fully-qualified protobuf name.
pub async fn publish_event<M: prost::Message + prost::Name>(
    conn: &mut PgConnection,
    source: &str,
    subject: &str,
    event: &M,
) -> Result<Uuid, sqlx::Error> {
    let full_name = M::full_name();
    insert(
        conn,
        Destination::Events,
        &full_name,
        &full_name,
        source,
        subject,
        &event.encode_to_vec(),
    )
    .await
}

/// Writes a command for `target_service` in the caller's transaction.
/// Commands may carry secrets (a reset token in a mail command): they go only
/// to the target's own queue, never to the events exchange.
pub async fn send_command<M: prost::Message + prost::Name>(
    conn: &mut PgConnection,
    source: &str,
    target_service: &str,
    subject: &str,
    command: &M,
) -> Result<Uuid, sqlx::Error> {
    insert(
        conn,
        Destination::Commands,
        target_service,
        &M::full_name(),
        source,
        subject,
        &command.encode_to_vec(),
    )
    .await
}

async fn insert(
    conn: &mut PgConnection,
    destination: Destination,
    routing_key: &str,
    message_type: &str,
    source: &str,
    subject: &str,
    payload: &[u8],
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    let (traceparent, tracestate) = crate::telemetry::current_trace_context();
    // One round trip: the row and the relay's wake-up (delivered at commit).
    sqlx::query(
        "WITH written AS (
             INSERT INTO outbox (message_id, destination, routing_key, message_type, source, subject, payload, traceparent, tracestate)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             RETURNING 1
         )
         SELECT pg_notify($10, '') FROM written",
    )
    .bind(id)
    .bind(destination.as_str())
    .bind(routing_key)
    .bind(message_type)
    .bind(source)
    .bind(subject)
    .bind(payload)
    .bind(traceparent)
    .bind(tracestate)
    .bind(CHANNEL)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

/// Records the outbox's depth and the age of its oldest row.
async fn record_depth(service: &str, pool: &PgPool) {
    let row: Result<(i64, Option<f64>), sqlx::Error> = sqlx::query_as(
        "SELECT count(*), extract(epoch FROM now() - min(created_at))::float8 FROM outbox",
    )
    .fetch_one(pool)
    .await;
    if let Ok((depth, lag)) = row {
        crate::metrics::outbox(
            service,
            u64::try_from(depth).unwrap_or(0),
            lag.unwrap_or(0.0).max(0.0),
        );
    }
}

/// Rows not yet published.
pub async fn pending(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(pool)
        .await
}

/// Runs the relay until `shutdown` (after the current batch).
pub async fn relay(service: &'static str, pool: PgPool, bus: Bus, shutdown: CancellationToken) {
    let mut listener = listen(&pool, CHANNEL).await;
    let mut backoff = Duration::from_millis(100);
    let mut depth_recorded: Option<tokio::time::Instant> = None;
    loop {
        let Some(channel) = bus.publisher(&shutdown).await else {
            return;
        };
        // Every commit with an outbox row sends a notification: those
        // already received are for rows the next SELECT sees, so one batch
        // answers them all (instead of one batch, often empty, each).
        if let Some(l) = listener.as_mut() {
            while l.next_buffered().is_some() {}
        }
        match relay_batch(&pool, &bus, &channel).await {
            Ok(n) => {
                backoff = Duration::from_millis(100);
                // The depth is a count over the table: once a second is
                // enough for a gauge.
                if depth_recorded.is_none_or(|at| at.elapsed() >= POLL) {
                    record_depth(service, &pool).await;
                    depth_recorded = Some(tokio::time::Instant::now());
                }
                if n > 0 {
                    // More may have been committed meanwhile.
                    continue;
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = wait_for_notify(&mut listener) => {}
                    () = tokio::time::sleep(POLL) => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "Outbox relay failed; will retry.");
                if matches!(e, RelayError::Broker(_)) && !channel.status().connected() {
                    bus.report_broken();
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("broker refused message {0}")]
    Nacked(Uuid),
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    message_id: Uuid,
    destination: String,
    routing_key: String,
    message_type: String,
    source: String,
    subject: String,
    payload: Vec<u8>,
    traceparent: Option<String>,
    tracestate: Option<String>,
    created_at: DateTime<Utc>,
}

async fn relay_batch(
    pool: &PgPool,
    bus: &Bus,
    channel: &lapin::Channel,
) -> Result<i64, RelayError> {
    let mut tx = pool.begin().await?;
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, message_id, destination, routing_key, message_type, source, subject, payload,
                traceparent, tracestate, created_at
         FROM outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut confirms = Vec::with_capacity(rows.len());
    let mut ids = Vec::with_capacity(rows.len());
    // Every message names the broker user that publishes it; RabbitMQ
    // refuses it if that is not this connection's user, and consumers
    // accept a type only from its producer's user.
    let user = lapin::types::ShortString::from(bus.config().user());
    for row in rows {
        let destination = Destination::parse(&row.destination).unwrap_or(Destination::Events);
        let message = OutgoingMessage {
            id: row.message_id,
            message_type: row.message_type,
            source: row.source,
            subject: row.subject,
            time: row.created_at,
            payload: row.payload,
            traceparent: row.traceparent,
            tracestate: row.tracestate,
        };
        let confirm = channel
            .basic_publish(
                destination.exchange(bus.config()).into(),
                row.routing_key.as_str().into(),
                BasicPublishOptions::default(),
                &message.payload,
                message.properties().with_user_id(user.clone()),
            )
            .await?;
        confirms.push((row.message_id, confirm));
        ids.push(row.id);
    }
    for (message_id, confirm) in confirms {
        if !confirm.await?.is_ack() {
            return Err(RelayError::Nacked(message_id));
        }
    }
    let n = ids.len() as i64;
    sqlx::query("DELETE FROM outbox WHERE id = ANY($1)")
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::debug!(published = n, "Outbox relayed.");
    Ok(n)
}

/// A listener on `channel` (`NOTIFY` wakes whoever waits on it), or `None`
/// when it cannot listen now: callers then poll.
pub async fn listen(pool: &PgPool, channel: &str) -> Option<PgListener> {
    // A listener keeps its connection for good: it gets its own, outside
    // the service's pool, so it never takes a connection requests need.
    let own = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with((*pool.connect_options()).clone());
    let mut listener = PgListener::connect_with(&own).await.ok()?;
    listener.listen(channel).await.ok()?;
    Some(listener)
}

/// Waits for a notification on `listener` (forever without one: select it
/// against a poll timer).
pub async fn wait_for_notify(listener: &mut Option<PgListener>) {
    match listener {
        Some(l) => {
            if l.recv().await.is_err() {
                // Lost the listening connection: fall back to polling until
                // it comes back on the next recv.
                tokio::time::sleep(POLL).await;
            }
        }
        None => std::future::pending().await,
    }
}
