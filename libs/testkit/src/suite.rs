//! The five services in the test process, each on port 0 with a fresh
//! database, sharing one fresh RabbitMQ namespace.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use partnerhub_platform::ServiceSettings;
use partnerhub_platform::bus::BusConfig;
use partnerhub_platform::rate_limit::{Allowance, RateLimitSettings};
use partnerhub_platform::server::ServerLimits;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::{AMQP_URL, SmtpSink, bus_config, database_url, eventually};

/// Variations of a suite.
#[derive(Debug, Clone, Default)]
pub struct SuiteOptions {
    /// AMQP URL of identity only (to put a proxy between it and the broker).
    pub identity_amqp_url: Option<String>,
    /// How long identity's signing keys sign before rotating (default 30 days).
    pub identity_key_rotation: Option<Duration>,
    /// Identity's service accounts.
    pub service_accounts: Vec<partnerhub_identity::config::ServiceAccount>,
    /// Permissions of an extra service account `ops` (secret
    /// [`OPS_CLIENT_SECRET`]), when not empty.
    pub ops_permissions: Vec<String>,
    /// Notification's mails per recipient per hour (default 30).
    pub notification_rate_limit: Option<i64>,
    /// Notification's sending attempts before a mail fails (default 4).
    pub notification_max_attempts: Option<i32>,
    /// Run on a deployment's bus instead of a test namespace: production
    /// names and queue settings, and one AMQP URL per service (its own
    /// user). The test owns the virtual host and cleans it up.
    pub deployment_bus: Option<DeploymentBus>,
    /// Rate limits of the public methods; by default so high that tests
    /// signing up many users from 127.0.0.1 never meet them.
    pub rate_limits: Option<RateLimitSettings>,
    /// Each service's pool size (default 3, so that several suites share
    /// PostgreSQL's connections; the bench uses the production default).
    pub database_max_connections: Option<u32>,
    /// Users an account may create per hour at identity (default 200).
    pub identity_created_users_per_hour: Option<u32>,
}

/// A deployment's bus for [`SuiteOptions::deployment_bus`].
#[derive(Debug, Clone, Default)]
pub struct DeploymentBus {
    /// Exchange and queue prefix (`partnerhub`).
    pub namespace: String,
    /// AMQP URL per service name.
    pub urls: HashMap<&'static str, String>,
    /// Prefix of the service users (`<namespace>-` when empty): a message
    /// is accepted only from the user of its producer, `<prefix><service>`.
    pub user_prefix: String,
}

/// A replica started beside the suite's own service.
#[derive(Debug)]
pub struct Replica {
    /// Its address.
    pub addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Replica {
    /// Stops it (graceful drain) and checks it stopped cleanly.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.task.await?
    }
}

/// The running services.
#[derive(Debug)]
pub struct Suite {
    /// Identity's address.
    pub identity: SocketAddr,
    /// Profile's address.
    pub profile: SocketAddr,
    /// Verification's address.
    pub verification: SocketAddr,
    /// Notification's address.
    pub notification: SocketAddr,
    /// Merge's address.
    pub merge: SocketAddr,
    /// The bus settings the services share.
    pub bus: BusConfig,
    databases: HashMap<&'static str, String>,
    shutdown: CancellationToken,
    tasks: Vec<(&'static str, JoinHandle<anyhow::Result<()>>)>,
    /// The SMTP server notification sends to.
    pub smtp: SmtpSink,
    /// Merge's and notification's configurations and stop tokens, so a
    /// test can kill and restart them.
    merge_config: partnerhub_merge::Config,
    notification_config: partnerhub_notification::Config,
    /// Profile's configuration, for replicas with other keys.
    profile_config: partnerhub_profile::Config,
    stops: HashMap<&'static str, CancellationToken>,
    /// Whether the exchanges are the test's own, to delete at the end.
    owns_exchanges: bool,
}

fn settings(name: &'static str, bus: &BusConfig, identity_url: &str) -> ServiceSettings {
    ServiceSettings {
        name,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: database_url(name),
        database_max_connections: 3,
        bus: bus.clone(),
        identity_url: identity_url.to_owned(),
        limits: ServerLimits::default(),
    }
}

/// Rate limits no test meets unless it asks for lower ones.
fn unlimited() -> RateLimitSettings {
    let generous = Allowance::per_minute(std::num::NonZeroU32::MAX);
    RateLimitSettings {
        per_address: generous,
        per_email: generous,
        per_caller: generous,
        trusted_proxies: Vec::new(),
    }
}

/// An operator's service account, when a test asks for one.
pub const OPS_CLIENT_ID: &str = "ops";
/// Its secret.
pub const OPS_CLIENT_SECRET: &str = "ops secret for tests";

/// The merge service's account at identity in tests.
pub const MERGE_CLIENT_ID: &str = "merge";
/// Its secret.
pub const MERGE_CLIENT_SECRET: &str = "merge service secret for tests";

/// Base of the links notification puts in mails in tests.
pub const PORTAL_URL: &str = "https://portal.partnerhub.test";

/// The key-encryption key that seals identity's token signing keys in
/// tests (so a test can sign tokens with identity's own key).
pub const IDENTITY_TEST_KEK: [u8; 32] = [7u8; 32];

/// The key that seals profile's bank and tax numbers in tests.
pub const PROFILE_TEST_KEYS: &str = "t1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn test_sealer() -> anyhow::Result<partnerhub_platform::crypto::Sealer> {
    partnerhub_platform::crypto::Sealer::parse(PROFILE_TEST_KEYS).map_err(|e| anyhow::anyhow!(e))
}

impl Suite {
    /// Starts all five services.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(SuiteOptions::default()).await
    }

    /// Starts all five services with `options`.
    pub async fn start_with(options: SuiteOptions) -> anyhow::Result<Self> {
        crate::init_logging();
        let bus = match &options.deployment_bus {
            Some(deployment) => {
                let mut bus = BusConfig::new(AMQP_URL);
                bus.namespace = deployment.namespace.clone();
                bus.users = partnerhub_platform::bus::BrokerUsers::PerService {
                    prefix: if deployment.user_prefix.is_empty() {
                        format!("{}-", deployment.namespace)
                    } else {
                        deployment.user_prefix.clone()
                    },
                };
                bus.producers = crate::producers();
                bus
            }
            None => bus_config(AMQP_URL),
        };
        let settings = |name: &'static str, bus: &BusConfig, identity_url: &str| {
            let mut s = settings(name, bus, identity_url);
            if let Some(url) = options
                .deployment_bus
                .as_ref()
                .and_then(|d| d.urls.get(name))
            {
                s.bus.url = url.clone();
            }
            s.limits.rate_limits = options.rate_limits.clone().unwrap_or_else(unlimited);
            if let Some(max) = options.database_max_connections {
                s.database_max_connections = max;
            }
            s
        };
        let shutdown = CancellationToken::new();
        let mut databases = HashMap::new();
        let mut tasks = Vec::new();

        let mut identity_settings = settings("identity", &bus, "");
        if let Some(url) = &options.identity_amqp_url {
            identity_settings.bus.url = url.clone();
        }
        databases.insert("identity", identity_settings.database_url.clone());
        let identity = partnerhub_identity::build(partnerhub_identity::Config {
            service: identity_settings,
            access_token_ttl: Duration::from_secs(900),
            key_rotation: options
                .identity_key_rotation
                .unwrap_or(Duration::from_secs(30 * 86_400)),
            key_encryption_key: Some(IDENTITY_TEST_KEK),
            refresh_token_ttl: Duration::from_secs(30 * 86_400),
            reset_token_ttl: Duration::from_secs(3600),
            invitation_ttl: Duration::from_secs(7 * 86_400),
            service_accounts: {
                let mut accounts = options.service_accounts.clone();
                if !options.ops_permissions.is_empty() {
                    accounts.push(partnerhub_identity::config::ServiceAccount {
                        client_id: OPS_CLIENT_ID.into(),
                        secret_hash: partnerhub_identity::password::hash(OPS_CLIENT_SECRET.into())
                            .await?,
                        permissions: options.ops_permissions.clone(),
                    });
                }
                accounts.push(partnerhub_identity::config::ServiceAccount {
                    client_id: MERGE_CLIENT_ID.into(),
                    secret_hash: partnerhub_identity::password::hash(MERGE_CLIENT_SECRET.into())
                        .await?,
                    permissions: vec![
                        "platform.profile.merge.apply".into(),
                        "platform.identity.merge.apply".into(),
                        "platform.identity.accounts.read".into(),
                    ],
                });
                accounts
            },
            created_users_per_hour: options
                .identity_created_users_per_hour
                .and_then(std::num::NonZeroU32::new)
                .unwrap_or(
                    std::num::NonZeroU32::new(
                        partnerhub_identity::config::DEFAULT_CREATED_USERS_PER_HOUR,
                    )
                    .unwrap_or(std::num::NonZeroU32::MIN),
                ),
        })
        .await?;
        let identity_addr = identity.local_addr();
        let mut stops = HashMap::new();
        let stop = shutdown.child_token();
        stops.insert("identity", stop.clone());
        tasks.push(("identity", tokio::spawn(identity.run(stop))));
        let identity_url = format!("http://{identity_addr}");

        let s = settings("profile", &bus, &identity_url);
        databases.insert("profile", s.database_url.clone());
        let profile_config = partnerhub_profile::Config {
            service: s,
            sealer: Some(test_sealer()?),
        };
        let profile = partnerhub_profile::build(profile_config.clone()).await?;
        let profile_addr = profile.local_addr();
        let stop = shutdown.child_token();
        stops.insert("profile", stop.clone());
        tasks.push(("profile", tokio::spawn(profile.run(stop))));

        let s = settings("verification", &bus, &identity_url);
        databases.insert("verification", s.database_url.clone());
        let verification = partnerhub_verification::build(partnerhub_verification::Config {
            service: s,
            directory_file: None,
            email_token_ttl: Duration::from_secs(72 * 3600),
            suspension: partnerhub_verification::suspension::SuspensionSettings {
                after: Duration::from_secs(30 * 86_400),
                every: Duration::from_millis(200),
            },
            sealer: Some(test_sealer()?),
        })
        .await?;
        let verification_addr = verification.local_addr();
        tasks.push((
            "verification",
            tokio::spawn(verification.run({
                let stop = shutdown.child_token();
                stops.insert("verification", stop.clone());
                stop
            })),
        ));

        let s = settings("notification", &bus, &identity_url);
        databases.insert("notification", s.database_url.clone());
        let smtp = SmtpSink::start()?;
        let mut sender = partnerhub_notification::sender::SenderSettings::new(
            "partnerhub <no-reply@partnerhub.test>".parse()?,
        );
        sender.retry_base = Duration::from_millis(100);
        sender.retry_max = Duration::from_secs(1);
        sender.poll = Duration::from_millis(200);
        sender.max_attempts = options.notification_max_attempts.unwrap_or(4);
        sender.rate_limit_per_hour = options.notification_rate_limit.unwrap_or(30);
        let notification_config = partnerhub_notification::Config {
            service: s,
            sealer: test_sealer()?,
            mail: partnerhub_notification::MailTarget::Smtp(format!(
                "smtp://{}:{}",
                smtp.host(),
                smtp.port()
            )),
            portal_url: PORTAL_URL.into(),
            sender,
            email_token_ttl: Duration::from_secs(86_400),
        };
        let notification = partnerhub_notification::build(notification_config.clone()).await?;
        let notification_addr = notification.local_addr();
        let notification_stop = shutdown.child_token();
        stops.insert("notification", notification_stop.clone());
        tasks.push((
            "notification",
            tokio::spawn(notification.run(notification_stop)),
        ));

        let s = settings("merge", &bus, &identity_url);
        databases.insert("merge", s.database_url.clone());
        let merge_config = partnerhub_merge::Config {
            service: s,
            profile_url: format!("http://{profile_addr}"),
            invitation_ttl: Duration::from_secs(30 * 86_400),
            credentials: Some(partnerhub_merge::saga::Credentials {
                client_id: MERGE_CLIENT_ID.into(),
                client_secret: MERGE_CLIENT_SECRET.into(),
            }),
        };
        let merge = partnerhub_merge::build(merge_config.clone()).await?;
        let merge_addr = merge.local_addr();
        let merge_stop = shutdown.child_token();
        stops.insert("merge", merge_stop.clone());
        tasks.push(("merge", tokio::spawn(merge.run(merge_stop))));

        Ok(Self {
            identity: identity_addr,
            profile: profile_addr,
            verification: verification_addr,
            notification: notification_addr,
            merge: merge_addr,
            bus,
            databases,
            shutdown,
            tasks,
            smtp,
            merge_config,
            notification_config,
            profile_config,
            stops,
            owns_exchanges: options.deployment_bus.is_none(),
        })
    }

    /// The five addresses, by service name.
    pub fn addresses(&self) -> [(&'static str, SocketAddr); 5] {
        [
            ("identity", self.identity),
            ("profile", self.profile),
            ("verification", self.verification),
            ("notification", self.notification),
            ("merge", self.merge),
        ]
    }

    /// A (lazily connected) channel to `addr`.
    pub fn channel(addr: SocketAddr) -> anyhow::Result<Channel> {
        Ok(
            tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
                .timeout(Duration::from_secs(10))
                .connect_lazy(),
        )
    }

    /// A pool on the database of `service`, to check what a service stored.
    pub async fn pool(&self, service: &str) -> anyhow::Result<PgPool> {
        self.pool_of(service, 2).await
    }

    /// A pool of `max_connections` on the database of `service`.
    pub async fn pool_of(&self, service: &str, max_connections: u32) -> anyhow::Result<PgPool> {
        let url = self
            .databases
            .get(service)
            .ok_or_else(|| anyhow::anyhow!("no service {service}"))?;
        Ok(sqlx::postgres::PgPoolOptions::new()
            .max_connections(max_connections)
            .connect(url)
            .await?)
    }

    /// The health status of `addr` (overall, service name "").
    pub async fn health(addr: SocketAddr) -> anyhow::Result<ServingStatus> {
        let mut client = HealthClient::new(Self::channel(addr)?);
        let response = client
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await?;
        Ok(response.into_inner().status())
    }

    /// Waits until every service reports SERVING.
    pub async fn wait_serving(&self) -> anyhow::Result<()> {
        for (name, addr) in self.addresses() {
            eventually(Duration::from_secs(20), || async move {
                matches!(Self::health(addr).await, Ok(ServingStatus::Serving)).then_some(())
            })
            .await
            .map_err(|e| e.context(format!("{name} never became SERVING")))?;
        }
        Ok(())
    }

    /// Only stops the merge service (a crash), leaving the others running.
    pub async fn stop_merge(&mut self) -> anyhow::Result<()> {
        self.stop_one("merge").await
    }

    /// Starts the merge service again after [`Suite::stop_merge`].
    pub async fn start_merge(&mut self) -> anyhow::Result<()> {
        let merge = partnerhub_merge::build(self.merge_config.clone()).await?;
        self.merge = merge.local_addr();
        let stop = self.shutdown.child_token();
        self.stops.insert("merge", stop.clone());
        self.tasks.push(("merge", tokio::spawn(merge.run(stop))));
        Ok(())
    }

    /// Only stops the notification service (its consumers finish the
    /// message in hand), leaving the others running.
    pub async fn stop_notification(&mut self) -> anyhow::Result<()> {
        self.stop_one("notification").await
    }

    /// Starts the notification service again after
    /// [`Suite::stop_notification`], on the same database and queues.
    pub async fn start_notification(&mut self) -> anyhow::Result<()> {
        let notification = partnerhub_notification::build(self.notification_config.clone()).await?;
        self.notification = notification.local_addr();
        let stop = self.shutdown.child_token();
        self.stops.insert("notification", stop.clone());
        self.tasks
            .push(("notification", tokio::spawn(notification.run(stop))));
        Ok(())
    }

    /// Starts another profile replica on the same database and queues,
    /// sealing with `encryption_keys` (`id:base64[,id:base64…]`, the first
    /// active), beside the running one; the caller stops it.
    pub async fn start_profile_replica(&self, encryption_keys: &str) -> anyhow::Result<Replica> {
        let mut config = self.profile_config.clone();
        config.sealer = Some(
            partnerhub_platform::crypto::Sealer::parse(encryption_keys)
                .map_err(|e| anyhow::anyhow!(e))?,
        );
        let profile = partnerhub_profile::build(config).await?;
        let addr = profile.local_addr();
        let stop = self.shutdown.child_token();
        let task = tokio::spawn(profile.run(stop.clone()));
        Ok(Replica { addr, stop, task })
    }

    /// Starts another notification replica on the same database, queues
    /// and SMTP server, sealing queued mail with `encryption_keys`, beside
    /// the running one (if any); the caller stops it.
    pub async fn start_notification_replica(
        &self,
        encryption_keys: &str,
    ) -> anyhow::Result<Replica> {
        let mut config = self.notification_config.clone();
        config.sealer = partnerhub_platform::crypto::Sealer::parse(encryption_keys)
            .map_err(|e| anyhow::anyhow!(e))?;
        let notification = partnerhub_notification::build(config).await?;
        let addr = notification.local_addr();
        let stop = self.shutdown.child_token();
        let task = tokio::spawn(notification.run(stop.clone()));
        Ok(Replica { addr, stop, task })
    }

    /// Stops one service (graceful drain), leaving the others running; it
    /// does not come back (merge and notification have `start_*`).
    pub async fn stop_service(&mut self, name: &str) -> anyhow::Result<()> {
        self.stop_one(name).await
    }

    async fn stop_one(&mut self, name: &str) -> anyhow::Result<()> {
        if let Some(stop) = self.stops.get(name) {
            stop.cancel();
        }
        if let Some(i) = self.tasks.iter().position(|(n, _)| *n == name) {
            let (_, task) = self.tasks.remove(i);
            task.await??;
        }
        Ok(())
    }

    /// Stops every service (graceful drain) and checks each stopped cleanly.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        for (name, task) in std::mem::take(&mut self.tasks) {
            match tokio::time::timeout(Duration::from_secs(15), task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => anyhow::bail!("{name} failed: {e:#}"),
                Ok(Err(e)) => anyhow::bail!("{name} panicked: {e}"),
                Err(_) => anyhow::bail!("{name} did not stop within 15 s"),
            }
        }
        Ok(())
    }
}

impl Drop for Suite {
    fn drop(&mut self) {
        self.shutdown.cancel();
        for (_, task) in &self.tasks {
            task.abort();
        }
        if self.owns_exchanges {
            crate::delete_exchanges(self.bus.clone());
        }
    }
}

impl std::fmt::Debug for SmtpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSink")
            .field("addr", &self.addr())
            .finish()
    }
}
