//! Test helpers. Every test gets its own databases (fresh, dropped at the
//! end) and its own RabbitMQ names, runs the real services on port 0 and
//! talks to them through the generated clients. No mocks of PostgreSQL or
//! RabbitMQ.

pub mod clients;
pub mod errors;
mod mail_tap;
mod proxy;
mod publisher;
pub mod smtp;
mod suite;

use std::time::Duration;

pub use clients::{Company, bearer};
pub use mail_tap::{EventTap, MailTap, TappedEvent, tap};
pub use proxy::Proxy;
pub use publisher::Publisher;
pub use smtp::{ReceivedMail, SmtpSink};
pub use suite::{
    DeploymentBus, IDENTITY_TEST_KEK, MERGE_CLIENT_ID, MERGE_CLIENT_SECRET, OPS_CLIENT_ID,
    OPS_CLIENT_SECRET, PORTAL_URL, PROFILE_TEST_KEYS, Replica, Suite, SuiteOptions,
};

/// PostgreSQL of the test machine.
pub const PG_URL: &str = "postgres://postgres@127.0.0.1:5432";
/// RabbitMQ of the test machine.
pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Logs to the test output once per process (`RUST_LOG` to tune).
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,partnerhub=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A short unique suffix for names.
pub fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// Who produces each message type: the services' topology and the billing
/// system, as the binary knows them (a test of the binary checks that they
/// agree).
pub fn producers() -> partnerhub_platform::bus::Producers {
    use partnerhub_platform::bus::definitions::ExternalPublisher;
    partnerhub_platform::bus::Producers::from_topology(
        &[
            partnerhub_identity::topology(),
            partnerhub_profile::topology(),
            partnerhub_verification::topology(),
            partnerhub_notification::topology(),
            partnerhub_merge::topology(),
        ],
        &[ExternalPublisher {
            user: "partnerhub-billing",
            events_prefix: "partnerhub.billing.v1.",
        }],
    )
}

/// A bus configuration with its own namespace, short retry delays, and
/// queues that the broker deletes once unused.
pub fn bus_config(amqp_url: &str) -> partnerhub_platform::bus::BusConfig {
    let mut bus = partnerhub_platform::bus::BusConfig::new(amqp_url);
    bus.namespace = format!("t{}", unique());
    bus.retry_delay = Duration::from_millis(200);
    bus.max_attempts = 3;
    bus.queue_expires = Some(Duration::from_secs(600));
    bus.quorum_queues = false;
    bus.producers = producers();
    bus
}

/// A database URL with a fresh name (the database is created by whoever
/// connects first, as services do). The name carries its creation time, so
/// databases of earlier runs can be swept.
///
/// Test databases are not dropped when a test ends: `DROP DATABASE` forces a
/// checkpoint, and tests running side by side then wait on each other's
/// checkpoints for minutes. Instead, the first test of a process drops the
/// ones older than an hour, and CI drops them all before it starts.
pub fn database_url(label: &str) -> String {
    static SWEEP: std::sync::Once = std::sync::Once::new();
    SWEEP.call_once(|| sweep_databases(Duration::from_secs(3600)));
    let epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    format!("{PG_URL}/ph_test_{label}_{epoch}_{}", &unique()[..8])
}

/// Drops test databases created more than `age` ago (best effort).
pub fn sweep_databases(age: Duration) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let _ = std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async move {
            let Ok(mut admin) =
                <sqlx::PgConnection as sqlx::Connection>::connect(&format!("{PG_URL}/postgres"))
                    .await
            else {
                return;
            };
            let names: Vec<String> = sqlx::query_scalar(
                "SELECT datname FROM pg_database WHERE datname LIKE 'ph\\_test\\_%'",
            )
            .fetch_all(&mut admin)
            .await
            .unwrap_or_default();
            for name in names {
                let created = name
                    .split('_')
                    .rev()
                    .nth(1)
                    .and_then(|e| e.parse::<u64>().ok());
                // Names without a time are from before this scheme: old.
                if created.is_none_or(|t| t + age.as_secs() < now) {
                    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&mut admin)
                        .await;
                }
            }
        });
    })
    .join();
}

/// Deletes the exchanges of a test namespace (its queues expire by
/// themselves). Runs on its own thread and runtime so it works from `Drop`.
pub fn delete_exchanges(config: partnerhub_platform::bus::BusConfig) {
    let _ = std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async move {
            let properties = lapin::ConnectionProperties::default();
            let Ok(connection) = lapin::Connection::connect(AMQP_URL, properties).await else {
                return;
            };
            if let Ok(channel) = connection.create_channel().await {
                for exchange in [config.events_exchange(), config.commands_exchange()] {
                    let _ = channel
                        .exchange_delete(
                            exchange.into(),
                            lapin::options::ExchangeDeleteOptions::default(),
                        )
                        .await;
                }
            }
            let _ = connection.close(200, "cleanup".into()).await;
        });
    })
    .join();
}

/// Polls `check` every 50 ms until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("condition not met within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
