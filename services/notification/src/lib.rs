//! The notification service: a projection of recipients built from events,
//! in-portal notifications and actions, preferences, and localized email
//! over SMTP with a record of every delivery.

pub mod api;
pub mod catalog;
pub mod commands;
pub mod mailer;
pub mod outbound;
pub mod projection;
pub mod sender;
pub mod templates;
pub mod triggers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use partnerhub_platform::bus::{Consumer, QueueKind};
use partnerhub_platform::config::{self, ConfigError, Env};
use partnerhub_platform::crypto::Sealer;
use partnerhub_platform::{Prepared, Serve, ServiceSettings};
use partnerhub_proto::notification::v1::notification_service_server::NotificationServiceServer;
use tokio_util::sync::CancellationToken;

use crate::mailer::Mailer;
use crate::outbound::Outbound;
use crate::sender::{Sender, SenderSettings};
use crate::templates::Templates;

/// Notification's default port.
pub const DEFAULT_PORT: u16 = 50054;

/// Migrations of notification's database.
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Where mail goes.
#[derive(Debug, Clone)]
pub enum MailTarget {
    /// An SMTP relay URL (`smtp://host:port?tls=required`,
    /// `smtps://user:password@host`).
    Smtp(String),
    /// A folder of `.eml` files.
    Folder(PathBuf),
}

/// Notification's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The common ones.
    pub service: ServiceSettings,
    /// Seals queued mail, which may carry a token
    /// (`PARTNERHUB_NOTIFICATION_ENCRYPTION_KEYS`, `id:base64-32-bytes[,…]`).
    pub sealer: Sealer,
    /// Where mail goes (`PARTNERHUB_NOTIFICATION_SMTP_URL`, else the folder
    /// `PARTNERHUB_NOTIFICATION_MAIL_DIR`, default `mail-out`).
    pub mail: MailTarget,
    /// Base of links in mails (`PARTNERHUB_NOTIFICATION_PORTAL_URL`).
    pub portal_url: String,
    /// How mail is sent (`PARTNERHUB_NOTIFICATION_MAIL_FROM`,
    /// `_MAX_ATTEMPTS`, `_RETRY_BASE_MS`, `_RATE_LIMIT_PER_HOUR`).
    pub sender: SenderSettings,
    /// How long a notification-email token works.
    pub email_token_ttl: Duration,
}

/// Reads notification's settings.
pub fn config_from_env(env: &dyn Env) -> Result<Config, ConfigError> {
    let problem = |variable: &str, problem: String| ConfigError {
        variable: variable.into(),
        problem,
    };
    let sealer = match env.get("PARTNERHUB_NOTIFICATION_ENCRYPTION_KEYS") {
        Some(spec) => Sealer::parse(&spec)
            .map_err(|p| problem("PARTNERHUB_NOTIFICATION_ENCRYPTION_KEYS", p))?,
        None => {
            tracing::warn!(
                "PARTNERHUB_NOTIFICATION_ENCRYPTION_KEYS is not set: queued mail is sealed with a key that dies with the process."
            );
            Sealer::single("ephemeral", Sealer::random_key())
        }
    };
    let mail = match env.get("PARTNERHUB_NOTIFICATION_SMTP_URL") {
        Some(url) => {
            mailer::check_url(&url).map_err(|p| problem("PARTNERHUB_NOTIFICATION_SMTP_URL", p))?;
            MailTarget::Smtp(url)
        }
        None => MailTarget::Folder(PathBuf::from(
            env.get("PARTNERHUB_NOTIFICATION_MAIL_DIR")
                .unwrap_or_else(|| "mail-out".into()),
        )),
    };
    let from = env
        .get("PARTNERHUB_NOTIFICATION_MAIL_FROM")
        .unwrap_or_else(|| "partnerhub <no-reply@partnerhub.localhost>".into());
    let from = from
        .parse()
        .map_err(|e| problem("PARTNERHUB_NOTIFICATION_MAIL_FROM", format!("{e}")))?;
    let mut sender = SenderSettings::new(from);
    sender.max_attempts = config::parse(env, "PARTNERHUB_NOTIFICATION_MAX_ATTEMPTS", 8)?;
    sender.retry_base = Duration::from_millis(config::parse(
        env,
        "PARTNERHUB_NOTIFICATION_RETRY_BASE_MS",
        30_000,
    )?);
    sender.rate_limit_per_hour =
        config::parse(env, "PARTNERHUB_NOTIFICATION_RATE_LIMIT_PER_HOUR", 30)?;
    if sender.max_attempts < 1 || sender.rate_limit_per_hour < 1 {
        return Err(problem(
            "PARTNERHUB_NOTIFICATION_MAX_ATTEMPTS",
            "attempts and the hourly rate limit must be at least 1".into(),
        ));
    }
    Ok(Config {
        service: ServiceSettings::from_env("notification", DEFAULT_PORT, env)?,
        sealer,
        mail,
        portal_url: env
            .get("PARTNERHUB_NOTIFICATION_PORTAL_URL")
            .unwrap_or_else(|| "http://localhost:8080".into()),
        sender,
        email_token_ttl: Duration::from_secs(24 * 3600),
    })
}

/// Notification, bound and migrated, ready to run.
#[derive(Debug)]
pub struct Service(Prepared, Config);

/// Binds and prepares the database.
pub async fn build(config: Config) -> anyhow::Result<Service> {
    Ok(Service(
        partnerhub_platform::prepare(config.service.clone(), &MIGRATIONS).await?,
        config,
    ))
}

/// The queues notification consumes and their handlers.
pub fn consumers(outbound: &Arc<Outbound>) -> Vec<Consumer> {
    vec![
        Consumer {
            service: "notification",
            kind: QueueKind::Events,
            routing_keys: triggers::subscribed(),
            handler: Arc::new(triggers::Notifier::new(outbound.clone())),
        },
        Consumer {
            service: "notification",
            kind: QueueKind::Commands,
            routing_keys: Vec::new(),
            handler: Arc::new(commands::MailCommands::new(outbound.clone())),
        },
    ]
}

impl Service {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.0.local_addr()
    }

    /// Serves until `shutdown`, then drains.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Service(prepared, config) = self;
        let sealer = Arc::new(config.sealer);
        let outbound = Arc::new(Outbound {
            templates: Templates::new(&config.portal_url)?,
            sealer: sealer.clone(),
        });
        let mailer: Arc<dyn Mailer> = match &config.mail {
            MailTarget::Smtp(url) => {
                Arc::new(mailer::Smtp::from_url(url).map_err(anyhow::Error::msg)?)
            }
            MailTarget::Folder(dir) => {
                tracing::info!(dir = %dir.display(), "No SMTP relay configured: mail is written as .eml files.");
                Arc::new(mailer::Folder::new(dir.clone()))
            }
        };
        let sender = Sender::new(prepared.pool().clone(), mailer, sealer, config.sender);
        let api = api::Notifications::new(
            prepared.pool().clone(),
            outbound.clone(),
            config.email_token_ttl,
        );
        let routes = tonic::service::Routes::new(NotificationServiceServer::new(api));
        let names = vec!["partnerhub.notification.v1.NotificationService"];
        let serve = Serve::new(routes, names).consumers(consumers(&outbound));
        // On shutdown the sender finishes the mails in hand and stops first:
        // it must record them before the pool closes.
        let sender_stop = CancellationToken::new();
        let sender_task = tokio::spawn(sender.run(sender_stop.clone()));
        let serve_stop = CancellationToken::new();
        let stopping = {
            let (sender_stop, serve_stop) = (sender_stop.clone(), serve_stop.clone());
            tokio::spawn(async move {
                shutdown.cancelled().await;
                sender_stop.cancel();
                let _ = sender_task.await;
                serve_stop.cancel();
            })
        };
        let served = prepared.run(serve, serve_stop).await;
        sender_stop.cancel();
        stopping.abort();
        served
    }
}

/// What this service does on the bus (for the RabbitMQ definitions).
pub fn topology() -> partnerhub_platform::bus::definitions::ServiceTopology {
    partnerhub_platform::bus::definitions::ServiceTopology {
        service: "notification",
        events_prefix: "partnerhub.notification.v1.",
        commands_to: &[],
        consumes: vec![
            (
                partnerhub_platform::bus::QueueKind::Events,
                triggers::subscribed(),
            ),
            (partnerhub_platform::bus::QueueKind::Commands, Vec::new()),
        ],
    }
}
