//! A private PostgreSQL 15 cluster: `initdb` into a temporary directory
//! (as the `postgres` user), trust authentication, its own port; stopped
//! with `pg_ctl` (also when the test panics).

use std::path::PathBuf;
use std::process::Command;

use anyhow::Context;

use crate::temp::OwnedDir;

const BIN: &str = "/usr/lib/postgresql/15/bin";

/// A running private cluster.
#[derive(Debug)]
pub struct PrivatePostgres {
    port: u16,
    data: PathBuf,
    dir: OwnedDir,
}

fn as_postgres(program: &str) -> Command {
    let mut command = Command::new("runuser");
    command
        .args(["-u", "postgres", "--"])
        .arg(format!("{BIN}/{program}"));
    command
}

fn run(mut command: Command, what: &str) -> anyhow::Result<()> {
    let output = command
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    anyhow::ensure!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

impl PrivatePostgres {
    /// Creates and starts a cluster on a free port.
    pub fn start() -> anyhow::Result<Self> {
        let dir = OwnedDir::create("pg", "postgres")?;
        let data = dir.path().join("data");
        let mut initdb = as_postgres("initdb");
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "--no-sync"]);
        run(initdb, "initdb")?;
        let cluster = Self {
            port: crate::free_port()?,
            data,
            dir,
        };
        cluster.pg_ctl_start()?;
        Ok(cluster)
    }

    /// The postmaster's process id (first line of `postmaster.pid`).
    pub fn pid(&self) -> Option<u32> {
        let file = std::fs::read_to_string(self.data.join("postmaster.pid")).ok()?;
        file.lines().next()?.trim().parse().ok()
    }

    /// The server URL without a database (`postgres://postgres@127.0.0.1:<port>`).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// The URL of database `name`.
    pub fn database_url(&self, name: &str) -> String {
        format!("{}/{name}", self.url())
    }

    fn pg_ctl_start(&self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on",
            self.port,
            self.dir.path().display()
        );
        let mut start = as_postgres("pg_ctl");
        start
            .arg("-D")
            .arg(&self.data)
            .args(["-o", &options, "-l"])
            .arg(self.dir.path().join("postgres.log"))
            .args(["-w", "-t", "60", "start"]);
        run(start, "pg_ctl start")
    }

    /// Stops the server at once, as a crash would (`-m immediate`: no
    /// checkpoint; committed work must come back from the WAL).
    pub fn crash(&self) -> anyhow::Result<()> {
        self.stop_with("immediate")
    }

    /// Starts the server again after [`PrivatePostgres::crash`].
    pub fn start_again(&self) -> anyhow::Result<()> {
        self.pg_ctl_start()
    }

    fn stop_with(&self, mode: &str) -> anyhow::Result<()> {
        let mut stop = as_postgres("pg_ctl");
        stop.arg("-D")
            .arg(&self.data)
            .args(["-m", mode, "-w", "-t", "60", "stop"]);
        run(stop, "pg_ctl stop")
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // It may already be stopped (a test that crashed it and failed).
        let _ = self.stop_with("immediate");
    }
}
