//! A private RabbitMQ node: the machine's RabbitMQ installation started a
//! second time under its own node name, ports and directories, as the
//! `rabbitmq` user (whose Erlang cookie `rabbitmqctl` then shares). Stopped
//! with `rabbitmqctl stop` at the end, also when the test panics.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::temp::OwnedDir;

const SBIN: &str = "/usr/lib/rabbitmq/bin";

/// A running private node.
#[derive(Debug)]
pub struct PrivateRabbit {
    node: String,
    port: u16,
    dir: OwnedDir,
}

fn as_rabbitmq(program: &str) -> Command {
    let mut command = Command::new("runuser");
    command
        .args(["-u", "rabbitmq", "--"])
        .arg(format!("{SBIN}/{program}"))
        .env("HOME", "/var/lib/rabbitmq");
    command
}

impl PrivateRabbit {
    /// Starts a node on free ports and waits until it is up.
    pub fn start() -> anyhow::Result<Self> {
        let dir = OwnedDir::create("rabbitmq", "rabbitmq")?;
        let plugins = dir.path().join("enabled_plugins");
        std::fs::write(&plugins, "[].\n").context("cannot write enabled_plugins")?;
        let _ = Command::new("chown")
            .arg("rabbitmq:")
            .arg(&plugins)
            .status();
        let node = format!("phfaults{}@localhost", partnerhub_testkit::unique());
        let port = crate::free_port()?;
        let dist = crate::free_port()?;
        let path = |name: &str| dir.path().join(name);
        let mut server = as_rabbitmq("rabbitmq-server");
        server
            .arg("-detached")
            .env("RABBITMQ_NODENAME", &node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", port.to_string())
            .env("RABBITMQ_DIST_PORT", dist.to_string())
            .env("RABBITMQ_MNESIA_BASE", path("mnesia"))
            .env("RABBITMQ_LOG_BASE", path("log"))
            .env("RABBITMQ_PID_FILE", path("pid"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", &plugins)
            .env("RABBITMQ_CONFIG_FILE", path("rabbitmq"));
        let output = server.output().context("cannot run rabbitmq-server")?;
        anyhow::ensure!(
            output.status.success(),
            "rabbitmq-server -detached failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let rabbit = Self { node, port, dir };
        rabbit.await_startup()?;
        Ok(rabbit)
    }

    /// The node's process id (its pid file).
    pub fn pid(&self) -> Option<u32> {
        let file = std::fs::read_to_string(self.dir.path().join("pid")).ok()?;
        file.trim().parse().ok()
    }

    /// `amqp://guest:guest@127.0.0.1:<port>/%2f`.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// The node name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Runs `rabbitmqctl -n <node> <args>`.
    pub fn ctl(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = as_rabbitmq("rabbitmqctl")
            .args(["-q", "-n", &self.node])
            .args(args)
            .output()
            .context("cannot run rabbitmqctl")?;
        anyhow::ensure!(
            output.status.success(),
            "rabbitmqctl {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Waits until the node runs the RabbitMQ application (`-detached`
    /// returns before the node exists, so `await_startup` is retried).
    pub fn await_startup(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            match self.ctl(&["await_startup", "--timeout", "30"]) {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    return Err(e.context(format!("node {} never started", self.node)));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        }
    }

    /// Closes every client connection of the node.
    pub fn close_all_connections(&self) -> anyhow::Result<()> {
        self.ctl(&["close_all_connections", "fault injected by the fault suite"])
            .map(drop)
    }

    /// Stops the RabbitMQ application (the Erlang node stays up).
    pub fn stop_app(&self) -> anyhow::Result<()> {
        self.ctl(&["stop_app"]).map(drop)
    }

    /// Starts the RabbitMQ application again and waits for it.
    pub fn start_app(&self) -> anyhow::Result<()> {
        self.ctl(&["start_app"])?;
        self.await_startup()
    }
}

impl Drop for PrivateRabbit {
    fn drop(&mut self) {
        let _ = self.ctl(&["stop"]);
    }
}
