//! The organization profile service: enrollment, the legal profile,
//! locations with their partner ids, partner lookup, programs and
//! agreements, the activity log and the merge step; it mirrors verification
//! and account state from events. Tenants, publishers, company, support,
//! billing, payout and tax come next.

pub mod api;
pub mod domain;
pub mod error;
pub mod events;
pub mod store;

use std::net::SocketAddr;

use partnerhub_platform::config::{ConfigError, Env};
use partnerhub_platform::crypto::Sealer;
use partnerhub_platform::{Prepared, Serve, ServiceSettings};
use std::sync::Arc;

use partnerhub_platform::bus::{Consumer, QueueKind};
use partnerhub_proto::profile::v1::{
    company_profile_service_server::CompanyProfileServiceServer,
    enrollment_service_server::EnrollmentServiceServer,
    identifier_service_server::IdentifierServiceServer,
    legal_profile_service_server::LegalProfileServiceServer,
    location_service_server::LocationServiceServer, payout_service_server::PayoutServiceServer,
    profile_activity_service_server::ProfileActivityServiceServer,
    profile_merge_service_server::ProfileMergeServiceServer,
    program_service_server::ProgramServiceServer,
    support_profile_service_server::SupportProfileServiceServer,
    tenant_service_server::TenantServiceServer,
};
use tokio_util::sync::CancellationToken;

/// Profile's default port.
pub const DEFAULT_PORT: u16 = 50052;

/// Migrations of profile's database.
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Profile's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address, database, bus, limits.
    pub service: ServiceSettings,
    /// Keys sealing bank and tax numbers (`PARTNERHUB_PROFILE_ENCRYPTION_KEYS`,
    /// `id:base64-32-bytes[,id:…]`, the first one active). Without it the
    /// payout and tax calls refuse with FAILED_PRECONDITION.
    pub sealer: Option<Sealer>,
}

/// Reads profile's settings.
pub fn config_from_env(env: &dyn Env) -> Result<Config, ConfigError> {
    let sealer = match env.get("PARTNERHUB_PROFILE_ENCRYPTION_KEYS") {
        None => None,
        Some(spec) => Some(Sealer::parse(&spec).map_err(|problem| ConfigError {
            variable: "PARTNERHUB_PROFILE_ENCRYPTION_KEYS".into(),
            problem,
        })?),
    };
    Ok(Config {
        service: ServiceSettings::from_env("profile", DEFAULT_PORT, env)?,
        sealer,
    })
}

/// Profile, bound and migrated, ready to run.
#[derive(Debug)]
pub struct Service(Prepared, Option<Arc<Sealer>>);

/// Binds and prepares the database.
pub async fn build(config: Config) -> anyhow::Result<Service> {
    if config.sealer.is_none() {
        tracing::warn!(
            "PARTNERHUB_PROFILE_ENCRYPTION_KEYS is not set: payout and tax profiles are refused."
        );
    }
    Ok(Service(
        partnerhub_platform::prepare(config.service, &MIGRATIONS).await?,
        config.sealer.map(Arc::new),
    ))
}

impl Service {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.0.local_addr()
    }

    /// Serves until `shutdown`, then drains.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let api = api::Profile::new(self.0.pool().clone(), self.1);
        let cache_listener = api.listen(shutdown.clone());
        let routes = tonic::service::Routes::new(EnrollmentServiceServer::new(api.clone()))
            .add_service(LegalProfileServiceServer::new(api.clone()))
            .add_service(LocationServiceServer::new(api.clone()))
            .add_service(IdentifierServiceServer::new(api.clone()))
            .add_service(ProgramServiceServer::new(api.clone()))
            .add_service(ProfileActivityServiceServer::new(api.clone()))
            .add_service(TenantServiceServer::new(api.clone()))
            .add_service(SupportProfileServiceServer::new(api.clone()))
            .add_service(CompanyProfileServiceServer::new(api.clone()))
            .add_service(PayoutServiceServer::new(api.clone()))
            .add_service(ProfileMergeServiceServer::new(api));
        let names = vec![
            "partnerhub.profile.v1.EnrollmentService",
            "partnerhub.profile.v1.LegalProfileService",
            "partnerhub.profile.v1.LocationService",
            "partnerhub.profile.v1.IdentifierService",
            "partnerhub.profile.v1.ProgramService",
            "partnerhub.profile.v1.ProfileActivityService",
            "partnerhub.profile.v1.TenantService",
            "partnerhub.profile.v1.SupportProfileService",
            "partnerhub.profile.v1.CompanyProfileService",
            "partnerhub.profile.v1.PayoutService",
            "partnerhub.profile.v1.ProfileMergeService",
        ];
        let consumers = vec![Consumer {
            service: "profile",
            kind: QueueKind::Events,
            routing_keys: events::subscribed(),
            handler: Arc::new(events::Mirror),
        }];
        let served = self
            .0
            .run(Serve::new(routes, names).consumers(consumers), shutdown)
            .await;
        cache_listener.abort();
        served
    }
}

/// What this service does on the bus (for the RabbitMQ definitions).
pub fn topology() -> partnerhub_platform::bus::definitions::ServiceTopology {
    partnerhub_platform::bus::definitions::ServiceTopology {
        service: "profile",
        events_prefix: "partnerhub.profile.v1.",
        commands_to: &[],
        consumes: vec![(
            partnerhub_platform::bus::QueueKind::Events,
            events::subscribed(),
        )],
    }
}
