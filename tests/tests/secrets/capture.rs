//! What the test watches while the story runs: every log line of the process
//! (TRACE for partnerhub's crates, DEBUG for the libraries) and every message
//! on the events and commands exchanges, headers included.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use lapin::options::BasicAckOptions;
use lapin::{Connection, Consumer};
use partnerhub_platform::bus::BusConfig;
use tracing_subscriber::fmt::MakeWriter;

/// Every byte the process logged, shared with the subscriber.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

/// One write into a [`LogBuffer`].
pub struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut log = self
            .0
            .lock()
            .map_err(|_| std::io::Error::other("log buffer poisoned"))?;
        log.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogBuffer {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LogWriter(self.0.clone())
    }
}

impl LogBuffer {
    /// Installs the process-wide subscriber writing into a new buffer (this
    /// test binary owns the global subscriber: the testkit's own
    /// `init_logging` then finds one and leaves it).
    pub fn install() -> anyhow::Result<Self> {
        let buffer = Self::default();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug,partnerhub=trace"))
            .with_ansi(false)
            .with_writer(buffer.clone())
            .try_init()
            .map_err(|e| anyhow::anyhow!("cannot install the log capture: {e}"))?;
        Ok(buffer)
    }

    /// The lines logged so far.
    pub fn lines(&self) -> anyhow::Result<Vec<String>> {
        let bytes = self
            .0
            .lock()
            .map_err(|_| anyhow::anyhow!("log buffer poisoned"))?
            .clone();
        Ok(String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect())
    }
}

/// A message as it travelled on the bus.
#[derive(Debug, Clone)]
pub struct Tapped {
    /// The exchange it was published to.
    pub exchange: String,
    /// Its routing key (the event type, or the command's service).
    pub routing_key: String,
    /// Its AMQP properties and headers, as text.
    pub properties: String,
    /// Its payload.
    pub payload: Vec<u8>,
}

/// An exclusive queue bound to every event and to the commands of every
/// service.
pub struct BusTap {
    connection: Connection,
    consumer: Consumer,
}

/// Services that may receive commands.
const SERVICES: &[&str] = &[
    "identity",
    "profile",
    "verification",
    "notification",
    "merge",
];

impl BusTap {
    /// Binds the tap on `bus`'s exchanges.
    pub async fn start(bus: &BusConfig) -> anyhow::Result<Self> {
        let mut bindings = vec![(bus.events_exchange(), "#".to_owned())];
        bindings.extend(
            SERVICES
                .iter()
                .map(|s| (bus.commands_exchange(), (*s).to_owned())),
        );
        let (connection, consumer) = partnerhub_testkit::tap(bus, &bindings).await?;
        Ok(Self {
            connection,
            consumer,
        })
    }

    /// Every message that arrives until none came for `quiet`.
    pub async fn drain(&mut self, quiet: Duration) -> anyhow::Result<Vec<Tapped>> {
        let mut out = Vec::new();
        while let Ok(Some(delivery)) = tokio::time::timeout(quiet, self.consumer.next()).await {
            let delivery = delivery?;
            delivery.acker.ack(BasicAckOptions::default()).await?;
            out.push(Tapped {
                exchange: delivery.exchange.as_str().to_owned(),
                routing_key: delivery.routing_key.as_str().to_owned(),
                properties: format!("{:?}", delivery.properties),
                payload: delivery.data,
            });
        }
        Ok(out)
    }

    /// Closes the connection (its queue goes with it).
    pub async fn close(self) {
        let _ = self.connection.close(200, "done".into()).await;
    }
}
