//! The company verification service: verification cases and their checks
//! (email ownership, domain and employment, business, address), documents,
//! reviews, and the account's verification status.

pub mod api;

use std::net::SocketAddr;

use partnerhub_platform::config::{ConfigError, Env};
use partnerhub_platform::{Prepared, Serve, ServiceSettings};
use partnerhub_proto::verification::v1::verification_service_server::VerificationServiceServer;
use tokio_util::sync::CancellationToken;

/// Verification's default port.
pub const DEFAULT_PORT: u16 = 50053;

/// Migrations of verification's database.
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Verification's settings (for now only the common ones).
pub fn config_from_env(env: &dyn Env) -> Result<ServiceSettings, ConfigError> {
    ServiceSettings::from_env("verification", DEFAULT_PORT, env)
}

/// Verification, bound and migrated, ready to run.
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
        let api = api::Verification::new(self.0.pool().clone());
        let routes = tonic::service::Routes::new(VerificationServiceServer::new(api));
        let names = vec!["partnerhub.verification.v1.VerificationService"];
        self.0.run(Serve::new(routes, names), shutdown).await
    }
}
