//! The account merge service: merge invitations and the saga that
//! merges one partner account into another across profile and identity.

pub mod api;
pub mod domain;
pub mod saga;
pub mod store;

use std::net::SocketAddr;
use std::time::Duration;

use partnerhub_platform::config::{ConfigError, Env};
use partnerhub_platform::{Prepared, Serve, ServiceSettings};
use partnerhub_proto::merge::v1::merge_service_server::MergeServiceServer;
use tokio_util::sync::CancellationToken;

/// Merge's default port.
pub const DEFAULT_PORT: u16 = 50055;

/// Migrations of merge's database.
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Merge's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address, database, bus, limits.
    pub service: ServiceSettings,
    /// Profile's gRPC endpoint (`PARTNERHUB_PROFILE_URL`).
    pub profile_url: String,
    /// How long an invitation waits for an answer
    /// (`PARTNERHUB_MERGE_INVITATION_TTL_DAYS`, default 30).
    pub invitation_ttl: Duration,
    /// The merge service's account at identity
    /// (`PARTNERHUB_MERGE_CLIENT_ID`, default `merge`, and
    /// `PARTNERHUB_MERGE_CLIENT_SECRET`); without it merges fail until set.
    pub credentials: Option<saga::Credentials>,
}

/// Reads merge's settings.
pub fn config_from_env(env: &dyn Env) -> Result<Config, ConfigError> {
    let days =
        partnerhub_platform::config::parse(env, "PARTNERHUB_MERGE_INVITATION_TTL_DAYS", 30u64)?;
    Ok(Config {
        service: ServiceSettings::from_env("merge", DEFAULT_PORT, env)?,
        profile_url: env
            .get("PARTNERHUB_PROFILE_URL")
            .unwrap_or_else(|| "http://127.0.0.1:50052".into()),
        invitation_ttl: Duration::from_secs(days.clamp(1, 365) * 86_400),
        credentials: env
            .get("PARTNERHUB_MERGE_CLIENT_SECRET")
            .map(|secret| saga::Credentials {
                client_id: env
                    .get("PARTNERHUB_MERGE_CLIENT_ID")
                    .unwrap_or_else(|| "merge".into()),
                client_secret: secret,
            }),
    })
}

/// Merge, bound and migrated, ready to run.
#[derive(Debug)]
pub struct Service(Prepared, Config);

/// Binds and prepares the database.
pub async fn build(config: Config) -> anyhow::Result<Service> {
    Ok(Service(
        partnerhub_platform::prepare(config.service.clone(), &MIGRATIONS).await?,
        config,
    ))
}

impl Service {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.0.local_addr()
    }

    /// Serves until `shutdown`, then drains.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let profile = tonic::transport::Endpoint::from_shared(self.1.profile_url.clone())?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .connect_lazy();
        let identity =
            tonic::transport::Endpoint::from_shared(self.0.settings().identity_url.clone())?
                .connect_timeout(Duration::from_secs(2))
                .timeout(Duration::from_secs(10))
                .connect_lazy();
        let saga = saga::Saga::new(
            self.0.pool().clone(),
            profile.clone(),
            identity,
            self.1.credentials.clone(),
        );
        let api = api::Merges::new(
            self.0.pool().clone(),
            profile,
            self.1.invitation_ttl,
            saga.clone(),
        );
        let saga_stop = shutdown.child_token();
        let saga_task = tokio::spawn(saga.run(saga_stop.clone()));
        let routes = tonic::service::Routes::new(MergeServiceServer::new(api));
        let names = vec!["partnerhub.merge.v1.MergeService"];
        let served = self.0.run(Serve::new(routes, names), shutdown).await;
        saga_stop.cancel();
        let _ = saga_task.await;
        served
    }
}

/// What this service does on the bus (for the RabbitMQ definitions).
pub fn topology() -> partnerhub_platform::bus::definitions::ServiceTopology {
    partnerhub_platform::bus::definitions::ServiceTopology {
        service: "merge",
        events_prefix: "partnerhub.merge.v1.",
        commands_to: &[],
        consumes: Vec::new(),
    }
}
