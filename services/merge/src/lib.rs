//! The account merge service: merge invitations and the saga that
//! merges one partner account into another across profile and identity.

pub mod api;
pub mod domain;

use std::net::SocketAddr;

use partnerhub_platform::config::{ConfigError, Env};
use partnerhub_platform::{Prepared, Serve, ServiceSettings};
use partnerhub_proto::merge::v1::merge_service_server::MergeServiceServer;
use tokio_util::sync::CancellationToken;

/// Merge's default port.
pub const DEFAULT_PORT: u16 = 50055;

/// Migrations of merge's database.
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Merge's settings (for now only the common ones).
pub fn config_from_env(env: &dyn Env) -> Result<ServiceSettings, ConfigError> {
    ServiceSettings::from_env("merge", DEFAULT_PORT, env)
}

/// Merge, bound and migrated, ready to run.
#[derive(Debug)]
pub struct Service(Prepared);

/// Binds and prepares the database.
pub async fn build(config: ServiceSettings) -> anyhow::Result<Service> {
    Ok(Service(
        partnerhub_platform::prepare(config, &MIGRATIONS).await?,
    ))
}

impl Service {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.0.local_addr()
    }

    /// Serves until `shutdown`, then drains.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let api = api::Merges::new(self.0.pool().clone());
        let routes = tonic::service::Routes::new(MergeServiceServer::new(api));
        let names = vec!["partnerhub.merge.v1.MergeService"];
        self.0.run(Serve::new(routes, names), shutdown).await
    }
}
