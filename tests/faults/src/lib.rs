//! The fault suite's helpers: a private PostgreSQL and RabbitMQ node (same
//! binaries as the machine's, on their own ports and directories, so faults
//! never touch what other tests use), the `partnerhub` binary run as one
//! process per service, a load generator of profile writes, and the counts
//! of their effects in the consumers' databases.
//!
//! Two sizes: quick by default (CI), full with `PARTNERHUB_FAULTS=full`.

pub mod binary;
pub mod counts;
pub mod cpu;
pub mod deployment;
pub mod load;
pub mod mixed;
pub mod postgres;
pub mod rabbitmq;
mod temp;

use std::time::Duration;

pub use deployment::Deployment;

/// How big a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// The CI variant: hundreds of writes, each fault once, a short soak.
    Quick,
    /// `PARTNERHUB_FAULTS=full`: 10 000 writes per fault, a 10-minute soak.
    Full,
}

impl Size {
    /// From `PARTNERHUB_FAULTS` (`full`, anything else is quick).
    pub fn from_env() -> Self {
        match std::env::var("PARTNERHUB_FAULTS").as_deref() {
            Ok("full") => Size::Full,
            _ => Size::Quick,
        }
    }

    /// Picks the value of this size.
    pub fn pick<T>(self, quick: T, full: T) -> T {
        match self {
            Size::Quick => quick,
            Size::Full => full,
        }
    }
}

/// Prints a figure of a test (`faults: <test>: <name> = <value>`) so runs
/// with `--no-capture` can be copied into docs/reliability.md.
pub fn figure(test: &str, name: &str, value: impl std::fmt::Display) {
    println!("faults: {test}: {name} = {value}");
}

/// A free TCP port on 127.0.0.1 (the listener is closed again, so another
/// process may take it: good enough for a private test instance).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// Polls `check` every 100 ms until it is `Some` or `timeout` passes.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    partnerhub_testkit::eventually(timeout, check)
        .await
        .map_err(|e| e.context(what.to_owned()))
}
