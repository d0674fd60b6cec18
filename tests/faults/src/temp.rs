//! A temporary directory owned by a system user (PostgreSQL and RabbitMQ
//! refuse to run as root), removed on drop.

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
