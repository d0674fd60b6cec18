//! The notification service: a projection of recipients built from events,
//! in-portal notifications and actions, preferences, and localized email.

pub mod api;
pub mod events;

use std::net::SocketAddr;
use std::sync::Arc;

use partnerhub_platform::bus::{Consumer, DeclaredQueue, QueueKind};
use partnerhub_platform::config::{ConfigError, Env};
use partnerhub_platform::{Prepared, Serve, ServiceSettings};
use partnerhub_proto::notification::v1::notification_service_server::NotificationServiceServer;
use tokio_util::sync::CancellationToken;

/// Notification's default port.
pub const DEFAULT_PORT: u16 = 50054;

/// Migrations of notification's database.
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Notification's settings (for now only the common ones).
pub fn config_from_env(env: &dyn Env) -> Result<ServiceSettings, ConfigError> {
    ServiceSettings::from_env("notification", DEFAULT_PORT, env)
}

/// Notification, bound and migrated, ready to run.
#[derive(Debug)]
pub struct Service(Prepared);

/// Binds and prepares the database.
pub async fn build(config: ServiceSettings) -> anyhow::Result<Service> {
    Ok(Service(
        partnerhub_platform::prepare(config, &MIGRATIONS).await?,
    ))
}

/// The queues notification consumes and their handlers.
pub fn consumers() -> Vec<Consumer> {
    vec![Consumer {
        service: "notification",
        kind: QueueKind::Events,
        routing_keys: events::SUBSCRIBED.iter().map(|k| (*k).to_owned()).collect(),
        handler: Arc::new(events::Recipients),
    }]
}

/// Queues notification owns but does not consume yet: mail commands wait in
/// `<ns>.notification.commands` until mail delivery consumes them.
pub fn declared_queues() -> Vec<DeclaredQueue> {
    vec![DeclaredQueue {
        service: "notification",
        kind: QueueKind::Commands,
        routing_keys: Vec::new(),
    }]
}

impl Service {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.0.local_addr()
    }

    /// Serves until `shutdown`, then drains.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let api = api::Notifications::new(self.0.pool().clone());
        let routes = tonic::service::Routes::new(NotificationServiceServer::new(api));
        let names = vec!["partnerhub.notification.v1.NotificationService"];
        let serve = Serve::new(routes, names)
            .consumers(consumers())
            .declared_queues(declared_queues());
        self.0.run(serve, shutdown).await
    }
}
