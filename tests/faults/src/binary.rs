//! The `partnerhub` binary the fault suite runs as real processes. Cargo
//! gives `CARGO_BIN_EXE_*` only to tests of the binary's own package, so the
//! suite builds it (`cargo build --bin partnerhub`, same profile as the test)
//! once per test process and runs it from the target directory.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use anyhow::Context;

/// The path of an up-to-date `partnerhub` binary (`PARTNERHUB_BIN`
/// overrides it).
pub fn partnerhub() -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| build().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow::anyhow!(e))
}

fn build() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("PARTNERHUB_BIN") {
        return Ok(PathBuf::from(path));
    }
    // The test runs as target/<profile>/deps/<test>-<hash>.
    let exe = std::env::current_exe().context("no path of the test executable")?;
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .context("the test executable is not under target/<profile>/deps")?
        .to_path_buf();
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(&workspace).args([
        "build",
        "--quiet",
        "-p",
        "partnerhub",
        "--bin",
        "partnerhub",
    ]);
    if release {
        command.arg("--release");
    }
    let status = command.status().context("cannot run cargo build")?;
    anyhow::ensure!(status.success(), "cargo build --bin partnerhub failed");
    let binary = profile_dir.join("partnerhub");
    anyhow::ensure!(binary.exists(), "{binary:?} was not built");
    Ok(binary)
}
