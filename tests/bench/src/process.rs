//! Row 6: the real binary. `partnerhub serve all` on free ports, fresh
//! databases and its own bus namespace: started once to create and migrate
//! the databases, stopped, then started again and timed until all five
//! report SERVING; its RSS idle and under load (ListMembers from the
//! closed-loop driver).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use partnerhub_platform::bus::BusConfig;
use partnerhub_proto::identity::v1::auth_service_client::AuthServiceClient;
use partnerhub_proto::identity::v1::member_service_client::MemberServiceClient;
use partnerhub_proto::identity::v1::{ListMembersRequest, SignUpRequest};
use partnerhub_testkit::bearer;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::load::{FnWorker, LoadSettings, Stats, closed_loop};

const SERVICES: [&str; 5] = [
    "identity",
    "profile",
    "verification",
    "notification",
    "merge",
];

/// What row 6 found.
#[derive(Debug, Clone, Copy)]
pub struct ProcessFigures {
    /// Start of the process to all five SERVING, existing databases.
    pub start_to_serving: Duration,
    /// VmRSS two seconds after SERVING, MiB.
    pub idle_rss_mib: f64,
    /// Highest VmRSS during the load, MiB.
    pub load_rss_mib: f64,
    /// The load itself.
    pub load: Stats,
}

/// The binary next to this one (`target/release/partnerhub`).
pub fn binary() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let dir = me.parent().context("no directory of the bench binary")?;
    let path = dir.join("partnerhub");
    anyhow::ensure!(
        path.exists(),
        "{} is missing: build it first with `cargo build --release --bin partnerhub`",
        path.display()
    );
    Ok(path)
}

/// One configuration of `serve all`: ports, databases, namespace.
struct Deployment {
    ports: Vec<(&'static str, u16)>,
    env: Vec<(String, String)>,
    bus: BusConfig,
    mail_dir: PathBuf,
}

impl Deployment {
    fn new() -> anyhow::Result<Self> {
        let mut ports = Vec::new();
        for name in SERVICES {
            // A free port: bound, read, released.
            let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            ports.push((name, listener.local_addr()?.port()));
        }
        let mut bus = BusConfig::new(partnerhub_testkit::AMQP_URL);
        bus.namespace = format!("benchproc{}", partnerhub_testkit::unique());
        let mail_dir = std::env::temp_dir().join(format!("{}-mail", bus.namespace));
        let mut env = vec![
            ("PARTNERHUB_AMQP_URL".to_owned(), bus.url.clone()),
            (
                "PARTNERHUB_AMQP_NAMESPACE".to_owned(),
                bus.namespace.clone(),
            ),
            (
                "PARTNERHUB_NOTIFICATION_MAIL_DIR".to_owned(),
                mail_dir.display().to_string(),
            ),
            ("RUST_LOG".to_owned(), "warn".to_owned()),
        ];
        for (name, port) in &ports {
            let upper = name.to_uppercase();
            env.push((
                format!("PARTNERHUB_{upper}_LISTEN"),
                format!("127.0.0.1:{port}"),
            ));
            env.push((
                format!("PARTNERHUB_{upper}_DATABASE_URL"),
                partnerhub_testkit::database_url(&format!("proc{name}")),
            ));
            if *name == "identity" || *name == "profile" {
                env.push((
                    format!("PARTNERHUB_{upper}_URL"),
                    format!("http://127.0.0.1:{port}"),
                ));
            }
        }
        Ok(Self {
            ports,
            env,
            bus,
            mail_dir,
        })
    }

    fn addr(&self, name: &str) -> SocketAddr {
        let port = self
            .ports
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, p)| *p);
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn spawn(&self, binary: &Path) -> anyhow::Result<Child> {
        Command::new(binary)
            .args(["serve", "all"])
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))
    }

    /// Waits (polling every 5 ms) until all five are SERVING.
    async fn wait_serving(&self, child: &mut Child, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        for name in SERVICES {
            let addr = self.addr(name);
            loop {
                if let Some(status) = child.try_wait()? {
                    anyhow::bail!("partnerhub exited early: {status}");
                }
                let check = tokio::time::timeout(
                    Duration::from_millis(200),
                    partnerhub_testkit::Suite::health(addr),
                );
                if matches!(check.await, Ok(Ok(ServingStatus::Serving))) {
                    break;
                }
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "{name} not SERVING within {timeout:?}"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        Ok(())
    }
}

/// SIGTERM, then waits for the exit (SIGKILL after 20 s).
fn stop(child: &mut Child) -> anyhow::Result<()> {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            child.kill()?;
            child.wait()?;
            anyhow::bail!("partnerhub did not stop within 20 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// VmRSS of `pid`, MiB.
fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")?;
    Ok(kib / 1024.0)
}

/// Runs row 6 with `binary`.
pub async fn measure(settings: &LoadSettings, binary: &Path) -> anyhow::Result<ProcessFigures> {
    let deployment = Deployment::new()?;
    let figures = run(settings, binary, &deployment).await;
    let cleaned = crate::cleanup::delete_namespace(&deployment.bus, &SERVICES).await;
    let _ = std::fs::remove_dir_all(&deployment.mail_dir);
    let figures = figures?;
    cleaned?;
    Ok(figures)
}

async fn run(
    settings: &LoadSettings,
    binary: &Path,
    deployment: &Deployment,
) -> anyhow::Result<ProcessFigures> {
    // First start: creates and migrates the databases.
    let mut child = deployment.spawn(binary)?;
    let first = deployment
        .wait_serving(&mut child, Duration::from_secs(60))
        .await;
    stop(&mut child)?;
    first?;

    let started = Instant::now();
    let mut child = deployment.spawn(binary)?;
    let figures = async {
        deployment
            .wait_serving(&mut child, Duration::from_secs(30))
            .await?;
        let start_to_serving = started.elapsed();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let idle_rss_mib = rss_mib(child.id())?;
        let (load, load_rss_mib) = under_load(settings, deployment, child.id()).await?;
        anyhow::Ok(ProcessFigures {
            start_to_serving,
            idle_rss_mib,
            load_rss_mib: load_rss_mib.max(idle_rss_mib),
            load,
        })
    }
    .await;
    let stopped = stop(&mut child);
    let figures = figures?;
    stopped?;
    Ok(figures)
}

/// ListMembers of a fresh founder in a closed loop; the highest RSS seen.
async fn under_load(
    settings: &LoadSettings,
    deployment: &Deployment,
    pid: u32,
) -> anyhow::Result<(Stats, f64)> {
    let identity = deployment.addr("identity");
    let session = AuthServiceClient::new(partnerhub_testkit::Suite::channel(identity)?)
        .sign_up(SignUpRequest {
            email: format!("founder.{}@bench.com", partnerhub_testkit::unique()),
            given_name: "Ada".into(),
            family_name: "Lovelace".into(),
            password: partnerhub_testkit::clients::FOUNDER_PASSWORD.into(),
            account_display_name: "Bench".into(),
            locale: "en-US".into(),
        })
        .await
        .context("sign-up at the spawned identity failed")?
        .into_inner();
    let token = Arc::new(session.access_token.unwrap_or_default().token);
    let account = Arc::new(session.account.unwrap_or_default().name);
    let channels = crate::grpc::channels(identity, settings.connections).await?;
    let workers = (0..settings.in_flight)
        .map(|i| {
            let client = MemberServiceClient::new(channels[i % channels.len()].clone());
            let (token, account) = (token.clone(), account.clone());
            FnWorker(move || {
                let mut client = client.clone();
                let request = bearer(
                    &token,
                    ListMembersRequest {
                        parent: account.to_string(),
                        ..ListMembersRequest::default()
                    },
                );
                async move {
                    client
                        .list_members(request?)
                        .await
                        .context("ListMembers failed")?;
                    Ok(())
                }
            })
        })
        .collect();
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = tokio::spawn({
        let peak = peak.clone();
        async move {
            while let Ok(mib) = rss_mib(pid) {
                peak.fetch_max((mib * 1024.0) as u64, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    let stats = closed_loop(settings, workers).await;
    sampler.abort();
    Ok((stats?, peak.load(Ordering::Relaxed) as f64 / 1024.0))
}
