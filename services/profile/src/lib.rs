//! The organization profile service: legal profile, locations, tenants,
//! identifiers, company, support, billing, payout and tax, programs and
//! agreements of an account.

pub mod api;

use std::net::SocketAddr;

use partnerhub_platform::config::{ConfigError, Env};
use partnerhub_platform::{Prepared, Serve, ServiceSettings};
use partnerhub_proto::profile::v1::legal_profile_service_server::LegalProfileServiceServer;
use tokio_util::sync::CancellationToken;

/// Profile's default port.
pub const DEFAULT_PORT: u16 = 50052;

/// Migrations of profile's database.
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Profile's settings (for now only the common ones).
pub fn config_from_env(env: &dyn Env) -> Result<ServiceSettings, ConfigError> {
    ServiceSettings::from_env("profile", DEFAULT_PORT, env)
}

/// Profile, bound and migrated, ready to run.
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
        let api = api::Profile::new(self.0.pool().clone());
        let routes = tonic::service::Routes::new(LegalProfileServiceServer::new(api));
        let names = vec!["partnerhub.profile.v1.LegalProfileService"];
        self.0.run(Serve::new(routes, names), shutdown).await
    }
}
