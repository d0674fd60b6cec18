//! `partnerhub`: the one binary. `serve all` runs the five services in one
//! process, each on its own port with its own database; `serve identity
//! profile` runs only those (one per Kubernetes Deployment). SIGTERM or
//! Ctrl-C drains in-flight calls and consumers and exits 0.

mod services;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use partnerhub_platform::ProcessEnv;
use partnerhub_platform::config::{Env, parse};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use services::Name;

#[derive(Debug, Parser)]
#[command(
    name = "partnerhub",
    version,
    about = "Partner-account management back end"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run services until SIGTERM/Ctrl-C: `all`, or any of identity,
    /// profile, verification, notification, merge.
    Serve {
        /// Services to run.
        #[arg(required = true, value_name = "SERVICE")]
        services: Vec<String>,
    },
    /// Create (if missing) and migrate the databases of services, then exit.
    Migrate {
        /// Services whose databases to migrate (default: all).
        #[arg(value_name = "SERVICE")]
        services: Vec<String>,
    },
    /// Print the version.
    Version,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("partnerhub: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let telemetry = match &cli.command {
        Command::Version => None,
        _ => match runtime.block_on(async { partnerhub_platform::telemetry::init("partnerhub") }) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("partnerhub: cannot start telemetry: {e:#}");
                return ExitCode::FAILURE;
            }
        },
    };
    let result = runtime.block_on(run(cli.command));
    runtime.shutdown_timeout(Duration::from_secs(5));
    // The exporter's shutdown blocks: run it after the runtime is gone.
    if let Some(t) = telemetry {
        t.shutdown();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("partnerhub: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Version => {
            println!("partnerhub {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Migrate { services } => {
            let names = if services.is_empty() {
                Name::ALL.to_vec()
            } else {
                Name::parse_list(&services)?
            };
            for name in names {
                services::migrate(name, &ProcessEnv).await?;
                tracing::info!(service = name.as_str(), "Migrated.");
            }
            Ok(())
        }
        Command::Serve { services } => serve(Name::parse_list(&services)?).await,
    }
}

async fn serve(names: Vec<Name>) -> anyhow::Result<()> {
    let env = ProcessEnv;
    let drain = Duration::from_secs(parse(
        &env as &dyn Env,
        "PARTNERHUB_DRAIN_TIMEOUT_SECS",
        25u64,
    )?);
    let shutdown = CancellationToken::new();
    // Build every service first (bind, migrate): a configuration or database
    // problem stops the process before anything serves.
    let mut built = Vec::new();
    for name in names {
        built.push(services::build(name, &env).await?);
    }
    let mut tasks = JoinSet::new();
    for service in built {
        let token = shutdown.clone();
        tasks.spawn(async move { (service.name(), service.run(token).await) });
    }
    let signal = wait_for_signal();
    tokio::pin!(signal);
    let mut failure = None;
    tokio::select! {
        () = &mut signal => tracing::info!("Shutting down: draining calls and consumers."),
        Some(Ok((name, result))) = tasks.join_next() => {
            // A service stopped on its own: stop the others too.
            failure = Some(match result {
                Ok(()) => anyhow::anyhow!("{} stopped unexpectedly", name.as_str()),
                Err(e) => e.context(format!("{} failed", name.as_str())),
            });
        }
    }
    shutdown.cancel();
    let drained = tokio::time::timeout(drain, async {
        while let Some(joined) = tasks.join_next().await {
            if let Ok((name, Err(e))) = joined {
                tracing::error!(service = name.as_str(), error = %format!("{e:#}"), "Service failed while stopping.");
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            seconds = drain.as_secs(),
            "Drain deadline passed; exiting anyway."
        );
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
