//! A temporary directory owned by a system user (PostgreSQL and RabbitMQ
//! refuse to run as root), removed on drop; and the reaping of the
//! instances a test process killed by a signal left behind.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

/// A directory under the system temp dir, owned by `owner`.
#[derive(Debug)]
pub struct OwnedDir {
    path: PathBuf,
}

impl OwnedDir {
    /// Creates `<tmp>/partnerhub-faults-<label>-<unique>` owned by `owner`.
    pub fn create(label: &str, owner: &str) -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!(
            "partnerhub-faults-{label}-{}",
            partnerhub_testkit::unique()
        ));
        std::fs::create_dir_all(&path).with_context(|| format!("cannot create {path:?}"))?;
        let status = Command::new("chown")
            .arg(format!("{owner}:"))
            .arg(&path)
            .status()
            .context("cannot run chown")?;
        anyhow::ensure!(status.success(), "chown {owner} {path:?} failed");
        std::fs::write(
            path.join(OWNER),
            identity(std::process::id()).unwrap_or_default(),
        )
        .with_context(|| format!("cannot write the owner of {path:?}"))?;
        Ok(Self { path })
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for OwnedDir {
    fn drop(&mut self) {
        if std::env::var_os("PARTNERHUB_FAULTS_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The file naming the test process that made a directory.
const OWNER: &str = "owner";

/// `<pid> <start time>` of a living process (the start time tells a reused
/// pid apart).
fn identity(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let start = stat.rsplit_once(')')?.1.split_whitespace().nth(19)?;
    Some(format!("{pid} {start}"))
}

/// Whether `pid`'s command line holds every one of `words`.
fn runs(pid: &str, words: &[&str]) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        words.iter().all(|w| cmdline.contains(w))
    })
}

fn signal(signal: &str, pid: &str) {
    let _ = Command::new("kill").args(["-s", signal, pid]).status();
}

/// Stops what test processes that no longer run left behind (a test
/// killed by a signal runs no `Drop`): their services, PostgreSQL clusters
/// and RabbitMQ nodes, and removes their directories. Directories of
/// living test processes are left alone.
pub fn reap_orphans() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_ours = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with("partnerhub-faults-"));
        let Ok(owner) = std::fs::read_to_string(path.join(OWNER)) else {
            continue;
        };
        let alive = owner
            .split_whitespace()
            .next()
            .and_then(|pid| pid.parse().ok())
            .and_then(identity)
            .is_some_and(|now| now == owner);
        if !is_ours || alive {
            continue;
        }
        let pid_in = |file: &Path| {
            std::fs::read_to_string(file)
                .ok()
                .and_then(|f| f.lines().next().map(|l| l.trim().to_owned()))
        };
        // Services: one `<name>.pid` each.
        for file in std::fs::read_dir(&path).into_iter().flatten().flatten() {
            let file = file.path();
            if file.extension().is_some_and(|e| e == "pid")
                && let Some(pid) = pid_in(&file)
                && runs(&pid, &["partnerhub", "serve"])
            {
                signal("KILL", &pid);
            }
        }
        // PostgreSQL: SIGQUIT is its immediate shutdown.
        if let Some(pid) = pid_in(&path.join("data/postmaster.pid"))
            && runs(&pid, &["postgres", &path.display().to_string()])
        {
            signal("QUIT", &pid);
        }
        // RabbitMQ: the node's pid file.
        if let Some(pid) = pid_in(&path.join("pid"))
            && runs(&pid, &["beam"])
        {
            signal("KILL", &pid);
        }
        eprintln!("faults: reaped {}", path.display());
        let _ = std::fs::remove_dir_all(&path);
    }
}
