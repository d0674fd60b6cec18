//! Row 4's event path, on the platform's own pieces: a committed write (a
//! row and its outbox row in one transaction) → the outbox relay → RabbitMQ
//! (quorum queues, as deployed) → a platform consumer whose handler runs in
//! its inbox transaction. As between two services, the producer (writers and
//! relay) and the consumer each have their own database and a pool of the
//! services' size.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::future::BoxFuture;
use partnerhub_platform::bus::{
    Bus, BusConfig, Consumer, Handler, HandlerError, IncomingMessage, QueueKind,
};
use partnerhub_proto::profile::v1::LegalProfileChanged;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::bus::{Throughput, consumed_in_window, wait_until};
use crate::load::{FnWorker, LoadSettings, Stats, closed_loop, fixed_rate, histogram, record};

/// The consuming "service" of the pipeline.
const SINK: &str = "benchsink";

/// When each message was committed and when its consumer handled it.
#[derive(Default)]
struct Times {
    committed: Mutex<HashMap<String, Instant>>,
    handled: Mutex<HashMap<String, Instant>>,
    count: Arc<AtomicU64>,
    written: AtomicU64,
}

impl Times {
    fn mark(map: &Mutex<HashMap<String, Instant>>, id: String, at: Instant) {
        if let Ok(mut map) = map.lock() {
            map.insert(id, at);
        }
    }
}

/// Notes when each message reached the handler (inside the inbox
/// transaction, after its inbox row was inserted).
struct Sink(Arc<Times>);

impl Handler for Sink {
    fn handle<'a>(
        &'a self,
        _tx: &'a mut PgConnection,
        message: &'a IncomingMessage,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            Times::mark(&self.0.handled, message.id.clone(), Instant::now());
            self.0.count.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
    }
}

/// The running pipeline.
pub struct Pipeline {
    pool: PgPool,
    consumer_pool: PgPool,
    bus: BusConfig,
    times: Arc<Times>,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Pipeline {
    /// A fresh database (platform migrations: outbox, inbox), the relay and
    /// the consumer on a fresh namespace with quorum queues.
    pub async fn start(amqp_url: &str, pool_size: u32) -> anyhow::Result<Self> {
        let pool = platform_database("benchproducer", pool_size).await?;
        let consumer_pool = platform_database("benchconsumer", pool_size).await?;
        let mut config = BusConfig::new(amqp_url);
        config.namespace = format!("bench{}", partnerhub_testkit::unique());
        // Consumer batching as deployed (PARTNERHUB_AMQP_BATCH, the prefetch).
        config.batch = config.prefetch;
        let bus = Bus::new(config.clone());
        let times = Arc::new(Times::default());
        let stop = CancellationToken::new();
        let consumer = Consumer {
            service: SINK,
            kind: QueueKind::Events,
            routing_keys: vec![<LegalProfileChanged as prost::Name>::full_name()],
            handler: Arc::new(Sink(times.clone())),
        };
        let supervisor = bus.spawn(vec![consumer], consumer_pool.clone(), stop.clone());
        let relay = tokio::spawn(partnerhub_platform::outbox::relay(
            SINK,
            pool.clone(),
            bus.clone(),
            stop.clone(),
        ));
        let pipeline = Self {
            pool,
            consumer_pool,
            bus: config,
            times,
            stop,
            tasks: vec![supervisor, relay],
        };
        // One event through, so queues, consumer and relay are all up.
        pipeline.write().await?;
        let times = pipeline.times.clone();
        wait_until(Duration::from_secs(20), || {
            times.count.load(Ordering::Relaxed) >= 1
        })
        .await
        .context("the first event never reached the consumer")?;
        Ok(pipeline)
    }

    /// One committed write with its event.
    async fn write(&self) -> anyhow::Result<()> {
        write(&self.pool, &self.times).await
    }

    /// Closed-loop writers; events/s counted at the consumer.
    pub async fn throughput(&self, settings: &LoadSettings) -> anyhow::Result<Throughput> {
        let workers = (0..settings.in_flight)
            .map(|_| {
                let pool = self.pool.clone();
                let times = self.times.clone();
                FnWorker(move || {
                    let pool = pool.clone();
                    let times = times.clone();
                    async move { write(&pool, &times).await }
                })
            })
            .collect();
        let window = tokio::spawn(consumed_in_window(*settings, self.times.count.clone()));
        let publish = closed_loop(settings, workers).await?;
        let per_second = window.await.context("window task failed")??;
        Ok(Throughput {
            per_second,
            publish,
        })
    }

    /// Writes at `rate` per second for `duration`; latency from each commit
    /// to its handler.
    pub async fn latency_at(&self, rate: u32, duration: Duration) -> anyhow::Result<Stats> {
        self.drain().await?;
        let clear = |map: &Mutex<HashMap<String, Instant>>| {
            if let Ok(mut map) = map.lock() {
                map.clear();
            }
        };
        clear(&self.times.committed);
        clear(&self.times.handled);
        let before = self.times.count.load(Ordering::Relaxed);
        let started = fixed_rate(rate, duration, || {
            let pool = self.pool.clone();
            let times = self.times.clone();
            async move { write(&pool, &times).await }
        })
        .await?;
        let count = self.times.count.clone();
        wait_until(Duration::from_secs(60), || {
            count.load(Ordering::Relaxed) >= before + started
        })
        .await
        .context("not every event reached the consumer")?;
        let committed = self
            .times
            .committed
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        let handled = self
            .times
            .handled
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        let mut latencies = histogram()?;
        for (id, at) in committed.iter() {
            if let Some(seen) = handled.get(id) {
                record(&mut latencies, seen.saturating_duration_since(*at));
            }
        }
        Ok(Stats::from_histogram(&latencies, duration))
    }

    /// Waits until every event written so far was consumed.
    async fn drain(&self) -> anyhow::Result<()> {
        let times = self.times.clone();
        wait_until(Duration::from_secs(120), || {
            times.count.load(Ordering::Relaxed) >= times.written.load(Ordering::Relaxed)
        })
        .await
        .context("the pipeline never drained")
    }

    /// Stops relay and consumer and deletes the namespace's queues and
    /// exchanges.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        self.pool.close().await;
        self.consumer_pool.close().await;
        crate::cleanup::delete_namespace(&self.bus, &[SINK]).await
    }
}

async fn write(pool: &PgPool, times: &Times) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    let account = Uuid::now_v7();
    sqlx::query("INSERT INTO bench_rows (payload) VALUES ($1)")
        .bind(account.to_string())
        .execute(&mut *tx)
        .await?;
    let event = LegalProfileChanged {
        account: format!("accounts/{account}"),
        ..LegalProfileChanged::default()
    };
    let id = partnerhub_platform::outbox::publish_event(
        &mut tx,
        "bench",
        &format!("accounts/{account}"),
        &event,
    )
    .await?;
    tx.commit().await?;
    Times::mark(&times.committed, id.to_string(), Instant::now());
    times.written.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// A fresh database with the platform's migrations (outbox, inbox) and a
/// table to write to.
async fn platform_database(label: &str, pool_size: u32) -> anyhow::Result<PgPool> {
    let url = partnerhub_testkit::database_url(label);
    let pool = partnerhub_platform::db::prepare(
        &url,
        pool_size,
        &sqlx::migrate::Migrator::with_migrations(Vec::new()),
    )
    .await?;
    sqlx::query("CREATE TABLE bench_rows (id BIGSERIAL PRIMARY KEY, payload TEXT NOT NULL)")
        .execute(&pool)
        .await?;
    Ok(pool)
}
