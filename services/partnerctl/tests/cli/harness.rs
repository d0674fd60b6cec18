//! Running the real `partnerctl` binary with its own config directory.

use std::process::{Output, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use partnerhub_testkit::Suite;
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;

/// The password every user in these tests signs up with.
pub const PASSWORD: &str = "analytical engine 1843";

/// One person's partnerctl: a config directory of their own.
#[derive(Debug)]
pub struct Ctl {
    /// `$PARTNERCTL_CONFIG_DIR`.
    pub dir: TempDir,
    endpoints: Vec<(&'static str, String)>,
}

/// What one run printed and how it ended.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Standard output as JSON.
    pub fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_str(&self.stdout)
            .with_context(|| format!("stdout is not JSON: {}", self.stdout))
    }

    /// Standard error as JSON (the error report of `--output json`).
    pub fn error_json(&self) -> anyhow::Result<Value> {
        serde_json::from_str(&self.stderr)
            .with_context(|| format!("stderr is not JSON: {}", self.stderr))
    }
}

impl Ctl {
    /// A partnerctl whose endpoints are the suite's (given to signup and
    /// login; later commands use the saved ones).
    pub fn new(suite: &Suite) -> anyhow::Result<Self> {
        let url = |addr| format!("http://{addr}");
        Ok(Self {
            dir: tempfile::tempdir()?,
            endpoints: vec![
                ("PARTNERCTL_IDENTITY_URL", url(suite.identity)),
                ("PARTNERCTL_PROFILE_URL", url(suite.profile)),
                ("PARTNERCTL_VERIFICATION_URL", url(suite.verification)),
                ("PARTNERCTL_NOTIFICATION_URL", url(suite.notification)),
                ("PARTNERCTL_MERGE_URL", url(suite.merge)),
            ],
        })
    }

    /// The session file.
    pub fn session_file(&self) -> std::path::PathBuf {
        self.dir.path().join("session.json")
    }

    /// The session file as JSON.
    pub fn session(&self) -> anyhow::Result<Value> {
        Ok(serde_json::from_slice(&std::fs::read(
            self.session_file(),
        )?)?)
    }

    /// Runs partnerctl with `args` and `stdin`, with the endpoints in the
    /// environment when `with_endpoints`.
    pub async fn run_with(
        &self,
        args: &[&str],
        stdin: &str,
        with_endpoints: bool,
    ) -> anyhow::Result<Run> {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_partnerctl"));
        command
            .args(args)
            .env("PARTNERCTL_CONFIG_DIR", self.dir.path())
            .env_remove("PARTNERCTL_PASSWORD")
            .env_remove("PARTNERCTL_OUTPUT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (name, value) in &self.endpoints {
            if with_endpoints {
                command.env(name, value);
            } else {
                command.env_remove(name);
            }
        }
        let mut child = command.spawn().context("cannot start partnerctl")?;
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.as_bytes()).await?;
        }
        let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .with_context(|| format!("partnerctl {args:?} did not finish within 60 s"))??;
        Ok(Run::from(output))
    }

    /// Runs partnerctl with the saved endpoints.
    pub async fn run(&self, args: &[&str]) -> anyhow::Result<Run> {
        self.run_with(args, "", false).await
    }

    /// Runs partnerctl and requires exit code 0.
    pub async fn ok(&self, args: &[&str]) -> anyhow::Result<Run> {
        let run = self.run(args).await?;
        if run.code != 0 {
            bail!(
                "partnerctl {args:?} exited {}: {}{}",
                run.code,
                run.stdout,
                run.stderr
            );
        }
        Ok(run)
    }

    /// Runs partnerctl with `--output json`, requires success, and parses stdout.
    pub async fn json(&self, args: &[&str]) -> anyhow::Result<Value> {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        self.ok(&all).await?.json()
    }

    /// Signs a new founder up (account `company`) and returns the email.
    pub async fn sign_up(&self, company: &str) -> anyhow::Result<String> {
        let email = format!(
            "founder.{}@{}.com",
            partnerhub_testkit::unique(),
            company.to_lowercase()
        );
        let args = [
            "signup",
            "--email",
            &email,
            "--given-name",
            "Ada",
            "--family-name",
            "Lovelace",
            "--account-name",
            company,
            "--password-stdin",
        ];
        let run = self.run_with(&args, &format!("{PASSWORD}\n"), true).await?;
        if run.code != 0 {
            bail!("signup exited {}: {}", run.code, run.stderr);
        }
        Ok(email)
    }

    /// Enrolls the active account (legal name `<company> SAS`, Paris) and
    /// returns the enrollment response.
    pub async fn enroll(&self, company: &str) -> anyhow::Result<Value> {
        let legal_name = format!("{company} SAS");
        self.json(&[
            "profile",
            "enroll",
            "--legal-name",
            &legal_name,
            "--line1",
            "1 Rue de Rivoli",
            "--city",
            "Paris",
            "--postal-code",
            "75001",
            "--country",
            "FR",
            "--accept-agreement",
        ])
        .await
    }
}

/// A started suite, serving.
pub async fn suite() -> anyhow::Result<Suite> {
    let suite = Suite::start().await?;
    suite.wait_serving().await?;
    Ok(suite)
}

/// The string at `pointer` in `value`.
pub fn text(value: &Value, pointer: &str) -> anyhow::Result<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("no string at {pointer} in {value}"))
}
