//! Row 4's ceiling: raw lapin, publish with confirms and consume with ack on
//! one quorum queue (unique name, deleted at the end).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use tokio_util::sync::CancellationToken;

use crate::load::{FnWorker, LoadSettings, closed_loop};

/// Prefetch of the raw consumer: the services' default.
const PREFETCH: u16 = 32;

/// What a throughput measurement on the bus found.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    /// Messages consumed per second in the measured window.
    pub per_second: f64,
    /// Publish-to-confirm latency of the producers.
    pub publish: crate::load::Stats,
}

/// Counts consumed messages; `window` reads the count at the start and end
/// of the measured window of a closed loop run with `settings`.
pub async fn consumed_in_window(
    settings: LoadSettings,
    consumed: Arc<AtomicU64>,
) -> anyhow::Result<f64> {
    tokio::time::sleep(settings.warmup).await;
    let before = consumed.load(Ordering::Relaxed);
    tokio::time::sleep(settings.duration).await;
    let after = consumed.load(Ordering::Relaxed);
    Ok((after - before) as f64 / settings.duration.as_secs_f64())
}

/// Publishes persistent messages to a fresh quorum queue from
/// `settings.in_flight` producers (each waits for its confirm) while one
/// consumer acknowledges each delivery.
pub async fn ceiling(settings: &LoadSettings, amqp_url: &str) -> anyhow::Result<Throughput> {
    let connection = Connection::connect(amqp_url, ConnectionProperties::default())
        .await
        .context("cannot reach RabbitMQ")?;
    let queue = format!("bench.{}.ceiling", partnerhub_testkit::unique());
    let publisher = connection.create_channel().await?;
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString(LongString::from("quorum")),
    );
    publisher
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            arguments,
        )
        .await
        .context("cannot declare the quorum queue")?;

    let consumer_channel = connection.create_channel().await?;
    consumer_channel
        .basic_qos(PREFETCH, BasicQosOptions::default())
        .await?;
    let mut deliveries = consumer_channel
        .basic_consume(
            queue.as_str().into(),
            "bench-ceiling".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let consumed = Arc::new(AtomicU64::new(0));
    let stop = CancellationToken::new();
    let consumer = tokio::spawn({
        let consumed = consumed.clone();
        let stop = stop.clone();
        async move {
            loop {
                let next = tokio::select! {
                    () = stop.cancelled() => break,
                    next = deliveries.next() => next,
                };
                let Some(delivery) = next else { break };
                let delivery = delivery?;
                delivery.acker.ack(BasicAckOptions::default()).await?;
                consumed.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }
    });

    let payload = Arc::new(vec![b'x'; 256]);
    let workers = (0..settings.in_flight)
        .map(|_| {
            let channel = publisher.clone();
            let queue = queue.clone();
            let payload = payload.clone();
            FnWorker(move || {
                let channel = channel.clone();
                let queue = queue.clone();
                let payload = payload.clone();
                async move {
                    let confirm = channel
                        .basic_publish(
                            "".into(),
                            queue.as_str().into(),
                            BasicPublishOptions::default(),
                            &payload,
                            BasicProperties::default().with_delivery_mode(2),
                        )
                        .await?
                        .await?;
                    anyhow::ensure!(confirm.is_ack(), "the broker refused a message");
                    Ok(())
                }
            })
        })
        .collect();
    let window = tokio::spawn(consumed_in_window(*settings, consumed.clone()));
    let publish = closed_loop(settings, workers).await?;
    let per_second = window.await.context("window task failed")??;

    stop.cancel();
    let _ = consumer.await;
    // Close the consuming channel before deleting its queue: a deletion
    // under a live consumer makes the broker cancel it while lapin is
    // cancelling it too, and lapin then closes the connection.
    consumer_channel
        .close(200, "bench done".into())
        .await
        .context("cannot close the consuming channel")?;
    publisher
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .context("cannot delete the bench queue")?;
    let _ = connection.close(200, "bench done".into()).await;
    Ok(Throughput {
        per_second,
        publish,
    })
}

/// Waits until `check` holds or `timeout` passes.
pub async fn wait_until(timeout: Duration, check: impl Fn() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !check() {
        anyhow::ensure!(Instant::now() < deadline, "not done within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}
