//! The supervised connection. lapin does not recover connections reliably by
//! itself, so the supervisor owns the connection: it connects with backoff,
//! declares the topology, starts the consumers, publishes the current
//! publisher channel to whoever needs it, and on any loss tears everything
//! down and starts again.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::options::ConfirmSelectOptions;
use lapin::{Channel, Connection, ConnectionProperties};
use sqlx::PgPool;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::consumer::{self, Consumer, DeclaredQueue};
use super::topology::{declare_exchanges, declare_queue};
use super::{BusConfig, QueueKind};

/// The longest the supervisor waits on one step with the broker (connect and
/// declare, open a channel, let consumers stop): a broker that is starting
/// or a connection that died silently must not stall recovery.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Handle on the supervised connection; cheap to clone.
#[derive(Clone)]
pub struct Bus {
    config: BusConfig,
    publisher: watch::Sender<Option<Channel>>,
    broken: Arc<Notify>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("namespace", &self.config.namespace)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl Bus {
    /// A bus that is not connected yet; `spawn` starts the supervisor.
    pub fn new(config: BusConfig) -> Self {
        let (publisher, _) = watch::channel(None);
        Self {
            config,
            publisher,
            broken: Arc::new(Notify::new()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &BusConfig {
        &self.config
    }

    /// Whether the connection is up right now.
    pub fn is_connected(&self) -> bool {
        self.publisher.borrow().is_some()
    }

    /// Watches connectivity (true while connected).
    pub fn watch_connected(&self) -> watch::Receiver<Option<Channel>> {
        self.publisher.subscribe()
    }

    /// Waits for a publisher channel (confirms enabled); `None` once `stop`
    /// fires first.
    pub async fn publisher(&self, stop: &CancellationToken) -> Option<Channel> {
        let mut rx = self.publisher.subscribe();
        tokio::select! {
            () = stop.cancelled() => None,
            ready = rx.wait_for(Option::is_some) => ready.ok().and_then(|c| c.clone()),
        }
    }

    /// Tells the supervisor that a channel failed, so it rebuilds everything.
    pub fn report_broken(&self) {
        self.broken.notify_one();
    }

    /// Runs the supervisor until `shutdown`: connects, declares, consumes,
    /// and reconnects with backoff after any loss.
    pub fn spawn(
        &self,
        consumers: Vec<Consumer>,
        pool: PgPool,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        self.spawn_with(consumers, Vec::new(), pool, shutdown)
    }

    /// Like [`Bus::spawn`], also declaring `declared` queues that nobody
    /// consumes yet.
    pub fn spawn_with(
        &self,
        consumers: Vec<Consumer>,
        declared: Vec<DeclaredQueue>,
        pool: PgPool,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let bus = self.clone();
        let mut queues: Vec<DeclaredQueue> = consumers
            .iter()
            .map(|c| DeclaredQueue {
                service: c.service,
                kind: c.kind,
                routing_keys: c.bindings(),
            })
            .collect();
        queues.extend(declared.into_iter().map(|mut q| {
            if q.kind == QueueKind::Commands {
                q.routing_keys = vec![q.service.to_owned()];
            }
            q
        }));
        tokio::spawn(async move { bus.supervise(consumers, queues, pool, shutdown).await })
    }

    async fn supervise(
        self,
        consumers: Vec<Consumer>,
        queues: Vec<DeclaredQueue>,
        pool: PgPool,
        shutdown: CancellationToken,
    ) {
        let mut delay = Duration::from_millis(100);
        while !shutdown.is_cancelled() {
            // A broker that is starting may accept the TCP connection and
            // then not answer the handshake or a declaration: never wait on
            // it for ever.
            let established = tokio::time::timeout(STEP_TIMEOUT, self.establish(&queues))
                .await
                .unwrap_or_else(|_| {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no answer from RabbitMQ while connecting and declaring",
                    )
                    .into())
                });
            match established {
                Ok((connection, publisher)) => {
                    delay = Duration::from_millis(100);
                    self.run_connected(connection, publisher, &consumers, &pool, &shutdown)
                        .await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "Cannot connect to RabbitMQ; retrying.");
                    tokio::select! {
                        () = shutdown.cancelled() => {}
                        () = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn establish(&self, queues: &[DeclaredQueue]) -> lapin::Result<(Connection, Channel)> {
        let properties = ConnectionProperties::default()
            .with_connection_name(format!("partnerhub-{}", std::process::id()).into());
        let connection = Connection::connect(&self.config.url, properties).await?;
        let setup = connection.create_channel().await?;
        declare_exchanges(&setup, &self.config).await?;
        for q in queues {
            let exchange = match q.kind {
                QueueKind::Events => self.config.events_exchange(),
                QueueKind::Commands => self.config.commands_exchange(),
            };
            let queue = self.config.queue(q.service, q.kind);
            declare_queue(&setup, &self.config, &queue, &exchange, &q.routing_keys).await?;
        }
        setup.close(200, "topology declared".into()).await.ok();
        let publisher = connection.create_channel().await?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok((connection, publisher))
    }

    async fn run_connected(
        &self,
        connection: Connection,
        publisher: Channel,
        consumers: &[Consumer],
        pool: &PgPool,
        shutdown: &CancellationToken,
    ) {
        let stop_consumers = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let copies = consumers
            .iter()
            .flat_map(|c| std::iter::repeat_n(c, usize::from(self.config.consumers.max(1))));
        for c in copies {
            let channel = tokio::time::timeout(STEP_TIMEOUT, connection.create_channel()).await;
            match channel {
                Ok(Ok(channel)) => {
                    tasks.spawn(consumer::run(
                        channel,
                        c.clone(),
                        self.config.clone(),
                        pool.clone(),
                        stop_consumers.clone(),
                    ));
                }
                failed => {
                    let error = failed
                        .map_or_else(|_| "timed out".to_owned(), |r| format!("{:?}", r.err()));
                    tracing::warn!(%error, "Cannot open a consumer channel; reconnecting.");
                    stop_consumers.cancel();
                    tasks.abort_all();
                    let _ = tokio::time::timeout(
                        STEP_TIMEOUT,
                        connection.close(320, "reconnecting".into()),
                    )
                    .await;
                    return;
                }
            }
        }
        tracing::info!(namespace = %self.config.namespace, consumers = consumers.len(), "Connected to RabbitMQ.");
        self.publisher.send_replace(Some(publisher));
        let mut events = connection.events_listener();
        let mut check = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.broken.notified() => {
                    tracing::warn!("A RabbitMQ channel failed; reconnecting.");
                    break;
                }
                event = events.next() => {
                    if let Some(lapin::Event::Error(e)) = &event {
                        tracing::warn!(error = %e, "Lost the RabbitMQ connection.");
                        break;
                    }
                    if event.is_none() { break; }
                }
                ended = tasks.join_next(), if !tasks.is_empty() => {
                    tracing::warn!(outcome = ?ended.map(|r| r.map(|x| x.err().map(|e| e.to_string()))), "A consumer stopped; reconnecting.");
                    break;
                }
                _ = check.tick() => {
                    if !connection.status().connected() {
                        tracing::warn!("Lost the RabbitMQ connection.");
                        break;
                    }
                }
            }
        }
        self.publisher.send_replace(None);
        // Consumers finish their current batch, then stop. A batch waiting
        // on a connection that died may never hear back (an acknowledgement
        // or a confirm): such a consumer is aborted, and its unacknowledged
        // deliveries go back to the queue with the connection (their effects
        // are in the inbox if they committed, so a redelivery is a no-op).
        stop_consumers.cancel();
        let drained = tokio::time::timeout(STEP_TIMEOUT, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                consumers = tasks.len(),
                "Consumers did not stop in time after the connection was lost; aborting them."
            );
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            connection.close(200, "shutting down".into()),
        )
        .await;
    }
}
