//! The services as real processes (`partnerhub serve <service>`, one per
//! service, as Kubernetes runs them) on a private PostgreSQL and RabbitMQ,
//! so a test can SIGKILL or SIGTERM one, restart it, crash the database or
//! break the broker without touching anything another test uses.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use partnerhub_platform::bus::BusConfig;
use sqlx::PgPool;
use tokio::process::{Child, Command};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::postgres::PrivatePostgres;
use crate::rabbitmq::PrivateRabbit;
use crate::temp::OwnedDir;

/// The services a fault test runs: identity (tokens), profile (the
/// writes), verification and notification (the consumers). Merge takes no
/// part in the event stream under test.
pub const SERVICES: [&str; 4] = ["identity", "profile", "verification", "notification"];

/// Delay before a failed message is retried (the deployment default is
/// 5 s; shorter keeps the tests short, the attempts stay at 5).
const RETRY_DELAY_MS: &str = "1000";

/// A private PostgreSQL and RabbitMQ and the service processes on them.
#[derive(Debug)]
pub struct Deployment {
    /// The private PostgreSQL.
    pub postgres: PrivatePostgres,
    /// The private RabbitMQ node.
    pub rabbit: PrivateRabbit,
    binary: PathBuf,
    dir: OwnedDir,
    env: Vec<(String, String)>,
    ports: HashMap<&'static str, u16>,
    processes: HashMap<&'static str, Child>,
}

fn key() -> String {
    base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_bytes().repeat(2))
}

impl Deployment {
    /// Starts PostgreSQL, RabbitMQ and [`SERVICES`], and waits until every
    /// service is SERVING.
    pub async fn start() -> anyhow::Result<Self> {
        let binary = crate::binary::partnerhub()?;
        crate::temp::reap_orphans();
        let (postgres, rabbit) = tokio::task::spawn_blocking(|| {
            let postgres = PrivatePostgres::start()?;
            let rabbit = PrivateRabbit::start()?;
            anyhow::Ok((postgres, rabbit))
        })
        .await??;
        let dir = OwnedDir::create("services", "root")?;
        let mut ports = HashMap::new();
        for name in SERVICES {
            ports.insert(name, crate::free_port()?);
        }
        let mut env = vec![
            ("PARTNERHUB_AMQP_URL".to_owned(), rabbit.url()),
            (
                "PARTNERHUB_AMQP_RETRY_DELAY_MS".into(),
                RETRY_DELAY_MS.into(),
            ),
            (
                "PARTNERHUB_IDENTITY_URL".into(),
                format!("http://127.0.0.1:{}", ports["identity"]),
            ),
            ("PARTNERHUB_IDENTITY_KEY_ENCRYPTION_KEY".into(), key()),
            (
                "PARTNERHUB_IDENTITY_ACCESS_TOKEN_TTL_SECS".into(),
                "3600".into(),
            ),
            (
                "PARTNERHUB_PROFILE_ENCRYPTION_KEYS".into(),
                partnerhub_testkit::PROFILE_TEST_KEYS.into(),
            ),
            (
                "PARTNERHUB_VERIFICATION_ENCRYPTION_KEYS".into(),
                format!("k1:{}", key()),
            ),
            (
                "PARTNERHUB_NOTIFICATION_ENCRYPTION_KEYS".into(),
                format!("k1:{}", key()),
            ),
            (
                "PARTNERHUB_NOTIFICATION_MAIL_DIR".into(),
                dir.path().join("mail").display().to_string(),
            ),
            // As deployed: calls that race SIGTERM are still answered.
            ("PARTNERHUB_SHUTDOWN_DELAY_MS".into(), "1000".into()),
            ("PARTNERHUB_LOG_FORMAT".into(), "json".into()),
            ("RUST_LOG".into(), "warn,partnerhub=info".into()),
        ];
        for name in SERVICES {
            let upper = name.to_uppercase();
            env.push((
                format!("PARTNERHUB_{upper}_LISTEN"),
                format!("127.0.0.1:{}", ports[name]),
            ));
            env.push((
                format!("PARTNERHUB_{upper}_DATABASE_URL"),
                postgres.database_url(&format!("partnerhub_{name}")),
            ));
        }
        let mut deployment = Self {
            postgres,
            rabbit,
            binary,
            dir,
            env,
            ports,
            processes: HashMap::new(),
        };
        for name in SERVICES {
            deployment.spawn(name)?;
            deployment
                .wait_serving(name, Duration::from_secs(60))
                .await?;
        }
        Ok(deployment)
    }

    fn spawn(&mut self, name: &'static str) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{name}.log")))?;
        let child = Command::new(&self.binary)
            .args(["serve", name])
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {:?} serve {name}", self.binary))?;
        // For the reaping of a deployment whose test was killed.
        if let Some(pid) = child.id() {
            std::fs::write(self.dir.path().join(format!("{name}.pid")), pid.to_string())?;
        }
        self.processes.insert(name, child);
        Ok(())
    }

    /// Where `name` listens.
    pub fn addr(&self, name: &str) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports.get(name).copied().unwrap_or(0)))
    }

    /// A lazily connected channel to `name`.
    pub fn channel(&self, name: &str) -> anyhow::Result<Channel> {
        Ok(
            tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr(name)))?
                .connect_timeout(Duration::from_secs(2))
                .timeout(Duration::from_secs(15))
                .connect_lazy(),
        )
    }

    /// The health of `name` (overall), or an error when it does not answer.
    pub async fn health(&self, name: &str) -> anyhow::Result<ServingStatus> {
        let mut client = HealthClient::new(self.channel(name)?);
        let request = client.check(HealthCheckRequest {
            service: String::new(),
        });
        let response = tokio::time::timeout(Duration::from_secs(3), request)
            .await
            .context("health check timed out")??;
        Ok(response.into_inner().status())
    }

    /// Waits until `name` reports SERVING.
    pub async fn wait_serving(&self, name: &str, timeout: Duration) -> anyhow::Result<()> {
        crate::wait_for(&format!("{name} never became SERVING"), timeout, || async {
            matches!(self.health(name).await, Ok(ServingStatus::Serving)).then_some(())
        })
        .await
    }

    /// Waits until every service reports SERVING.
    pub async fn wait_all_serving(&self, timeout: Duration) -> anyhow::Result<()> {
        for name in SERVICES {
            self.wait_serving(name, timeout).await?;
        }
        Ok(())
    }

    /// The process id of `name`.
    pub fn pid(&self, name: &str) -> anyhow::Result<u32> {
        self.processes
            .get(name)
            .and_then(Child::id)
            .with_context(|| format!("{name} is not running"))
    }

    /// Kills `name` with SIGKILL (no drain at all) and reaps it.
    pub async fn kill(&mut self, name: &str) -> anyhow::Result<()> {
        let mut child = self
            .processes
            .remove(name)
            .with_context(|| format!("{name} is not running"))?;
        child.start_kill()?;
        child.wait().await?;
        Ok(())
    }

    /// Sends SIGTERM to `name` and waits for it to exit; returns whether it
    /// exited with status 0.
    pub async fn terminate(&mut self, name: &str) -> anyhow::Result<bool> {
        self.send_sigterm(name).await?;
        self.wait_exit(name).await
    }

    /// Sends SIGTERM to `name` and returns at once.
    pub async fn send_sigterm(&self, name: &str) -> anyhow::Result<()> {
        let pid = self.pid(name)?;
        let status = Command::new("kill")
            .args(["-s", "TERM", &pid.to_string()])
            .status()
            .await?;
        anyhow::ensure!(status.success(), "kill -TERM {pid} failed");
        Ok(())
    }

    /// Waits for `name` to exit after a signal; true if it exited 0.
    pub async fn wait_exit(&mut self, name: &str) -> anyhow::Result<bool> {
        let mut child = self
            .processes
            .remove(name)
            .with_context(|| format!("{name} is not running"))?;
        let exit = tokio::time::timeout(Duration::from_secs(40), child.wait())
            .await
            .context("did not exit within 40 s of SIGTERM")??;
        Ok(exit.success())
    }

    /// Starts `name` again (same port, database and queues) and waits until
    /// it is SERVING.
    pub async fn restart(&mut self, name: &'static str) -> anyhow::Result<()> {
        self.spawn(name)?;
        self.wait_serving(name, Duration::from_secs(60)).await
    }

    /// Resident memory of `name` in KiB (`VmRSS`).
    pub fn rss_kib(&self, name: &str) -> anyhow::Result<u64> {
        let pid = self.pid(name)?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS")
    }

    /// A small pool on `name`'s database.
    pub async fn pool(&self, name: &str) -> anyhow::Result<PgPool> {
        Ok(sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&self.postgres.database_url(&format!("partnerhub_{name}")))
            .await?)
    }

    /// The bus settings the services use (for the dead-letter queues).
    pub fn bus(&self) -> BusConfig {
        BusConfig::new(self.rabbit.url())
    }

    /// Where the service logs are (kept with `PARTNERHUB_FAULTS_KEEP=1`).
    pub fn log_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        // The services go first, before their database and broker.
        for (_, child) in self.processes.iter_mut() {
            let _ = child.start_kill();
        }
    }
}
