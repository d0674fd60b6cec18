//! The company verification service: verification cases and their checks
//! (email ownership, domain and employment, business, address), documents,
//! reviews, the account's verification status, and the suspension of
//! accounts rejected for too long.

pub mod address;
pub mod api;
pub mod cases;
pub mod directory;
pub mod domain;
pub mod email_rules;
pub mod events;
pub mod suspension;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use partnerhub_platform::bus::{Consumer, QueueKind};
use partnerhub_platform::config::{self, ConfigError, Env};
use partnerhub_platform::crypto::Sealer;
use partnerhub_platform::{Prepared, Serve, ServiceSettings};
use partnerhub_proto::verification::v1::verification_service_server::VerificationServiceServer;
use tokio_util::sync::CancellationToken;

use crate::directory::{BusinessDirectory, FileDirectory};

/// Verification's default port.
pub const DEFAULT_PORT: u16 = 50053;

/// Migrations of verification's database.
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Verification's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The common ones.
    pub service: ServiceSettings,
    /// The business directory file (`PARTNERHUB_VERIFICATION_DIRECTORY_FILE`,
    /// CSV or JSON); the shipped sample when unset.
    pub directory_file: Option<PathBuf>,
    /// How long an email-ownership token works
    /// (`PARTNERHUB_VERIFICATION_EMAIL_TOKEN_TTL_HOURS`, default 72).
    pub email_token_ttl: Duration,
    /// The suspension job (`PARTNERHUB_VERIFICATION_SUSPEND_AFTER_DAYS`,
    /// default 30; checked every `PARTNERHUB_VERIFICATION_SUSPENSION_CHECK_SECS`,
    /// default 3600).
    pub suspension: suspension::SuspensionSettings,
    /// Keys sealing uploaded documents at rest
    /// (`PARTNERHUB_VERIFICATION_ENCRYPTION_KEYS`, `id:base64-32-bytes[,id:…]`,
    /// the first one active). Without it uploads refuse with
    /// FAILED_PRECONDITION, like profile's payout numbers.
    pub sealer: Option<Sealer>,
}

/// Reads verification's settings.
pub fn config_from_env(env: &dyn Env) -> Result<Config, ConfigError> {
    let days: u64 = config::parse(env, "PARTNERHUB_VERIFICATION_SUSPEND_AFTER_DAYS", 30)?;
    let every: u64 = config::parse(env, "PARTNERHUB_VERIFICATION_SUSPENSION_CHECK_SECS", 3600)?;
    let ttl: u64 = config::parse(env, "PARTNERHUB_VERIFICATION_EMAIL_TOKEN_TTL_HOURS", 72)?;
    let sealer = match env.get("PARTNERHUB_VERIFICATION_ENCRYPTION_KEYS") {
        None => None,
        Some(spec) => Some(Sealer::parse(&spec).map_err(|problem| ConfigError {
            variable: "PARTNERHUB_VERIFICATION_ENCRYPTION_KEYS".into(),
            problem,
        })?),
    };
    Ok(Config {
        service: ServiceSettings::from_env("verification", DEFAULT_PORT, env)?,
        directory_file: env
            .get("PARTNERHUB_VERIFICATION_DIRECTORY_FILE")
            .map(PathBuf::from),
        email_token_ttl: Duration::from_secs(ttl.clamp(1, 24 * 365).saturating_mul(3600)),
        suspension: suspension::SuspensionSettings {
            after: Duration::from_secs(days.min(3650).saturating_mul(86_400)),
            every: Duration::from_secs(every.max(1)),
        },
        sealer,
    })
}

/// Verification, bound and migrated, ready to run.
#[derive(Debug)]
pub struct Service(Prepared, Config, Arc<dyn BusinessDirectory>);

/// Binds, prepares the database and loads the directory.
pub async fn build(config: Config) -> anyhow::Result<Service> {
    if config.sealer.is_none() {
        tracing::warn!(
            "PARTNERHUB_VERIFICATION_ENCRYPTION_KEYS is not set: document uploads are refused."
        );
    }
    let directory: Arc<dyn BusinessDirectory> = match &config.directory_file {
        Some(path) => Arc::new(FileDirectory::load(path)?),
        None => {
            tracing::info!("No business directory file configured: using the shipped sample.");
            Arc::new(FileDirectory::sample())
        }
    };
    Ok(Service(
        partnerhub_platform::prepare(config.service.clone(), &MIGRATIONS).await?,
        config,
        directory,
    ))
}

impl Service {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.0.local_addr()
    }

    /// Serves until `shutdown`, then drains.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Service(prepared, config, directory) = self;
        let engine = Arc::new(cases::Engine::new(directory, config.email_token_ttl));
        let sealer = config.sealer.clone().map(Arc::new);
        let api = api::Verification::new(prepared.pool().clone(), engine.clone(), sealer.clone());
        let routes = tonic::service::Routes::new(VerificationServiceServer::new(api));
        let names = vec!["partnerhub.verification.v1.VerificationService"];
        let consumers = vec![Consumer {
            service: "verification",
            kind: QueueKind::Events,
            routing_keys: events::subscribed(),
            handler: Arc::new(events::CaseOpener::new(engine)),
        }];
        let job_stop = shutdown.child_token();
        let job = tokio::spawn(suspension::run(
            prepared.pool().clone(),
            config.suspension,
            job_stop.clone(),
        ));
        // Documents stored in clear before sealing existed are sealed now.
        let sealing = sealer.map(|sealer| {
            tokio::spawn(api::seal_stored_documents(
                prepared.pool().clone(),
                sealer,
                job_stop.clone(),
            ))
        });
        let served = prepared
            .run(Serve::new(routes, names).consumers(consumers), shutdown)
            .await;
        job_stop.cancel();
        let _ = job.await;
        if let Some(sealing) = sealing {
            let _ = sealing.await;
        }
        served
    }
}

/// What this service does on the bus (for the RabbitMQ definitions).
pub fn topology() -> partnerhub_platform::bus::definitions::ServiceTopology {
    partnerhub_platform::bus::definitions::ServiceTopology {
        service: "verification",
        events_prefix: "partnerhub.verification.v1.",
        commands_to: &["notification"],
        consumes: vec![(
            partnerhub_platform::bus::QueueKind::Events,
            events::subscribed(),
        )],
    }
}
