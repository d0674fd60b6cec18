//! `partnerhub`: the one binary. `serve all` runs the five services in one
//! process, each on its own port with its own database; `serve identity
//! profile` runs only those (one per Kubernetes Deployment). SIGTERM or
//! Ctrl-C drains in-flight calls and consumers and exits 0.

mod api_reference;
mod asyncapi;
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
    /// Read or replay a service's dead-letter queue (PARTNERHUB_AMQP_URL and
    /// PARTNERHUB_AMQP_NAMESPACE say which broker and names).
    DeadLetters {
        #[command(subcommand)]
        action: DeadLetterAction,
    },
    /// Print the RabbitMQ definitions of a deployment (exchanges, quorum
    /// queues, bindings, one user per service with least privileges) for
    /// `rabbitmqctl import_definitions`; PARTNERHUB_AMQP_NAMESPACE and
    /// PARTNERHUB_AMQP_RETRY_DELAY_MS shape it.
    RabbitmqDefinitions {
        /// The virtual host.
        #[arg(long, default_value = "partnerhub")]
        vhost: String,
    },
    /// Print the API reference (Markdown) generated from the proto
    /// comments: `partnerhub api-reference > docs/api-reference.md`.
    ApiReference,
    /// Write the AsyncAPI 3 documents of every event and command crossing
    /// RabbitMQ, one per application, generated from proto/ and the
    /// services' bus topology (PARTNERHUB_AMQP_NAMESPACE names the exchanges
    /// and queues).
    Asyncapi {
        /// Directory to write `<application>.asyncapi.yaml` into.
        #[arg(long, default_value = "docs/asyncapi")]
        out_dir: std::path::PathBuf,
        /// The virtual host.
        #[arg(long, default_value = "partnerhub")]
        vhost: String,
    },
    /// Print the version.
    Version,
}

#[derive(Debug, Subcommand)]
enum DeadLetterAction {
    /// List dead-lettered messages without taking them away.
    List {
        /// The consuming service (identity, profile, verification,
        /// notification, merge).
        service: String,
        /// The commands queue instead of the events queue.
        #[arg(long)]
        commands: bool,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Move dead-lettered messages back to the service's queue, attempts
    /// reset (fix the cause first: the inbox makes a replay of an applied
    /// message harmless).
    Replay {
        /// The consuming service.
        service: String,
        /// The commands queue instead of the events queue.
        #[arg(long)]
        commands: bool,
        /// At most this many.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
}

/// Makes glibc serve every allocation of 1 MiB or more with its own mapping,
/// returned to the system when freed. By default glibc raises that
/// threshold to the size of the largest block freed so far, so after the
/// first password hash (argon2id takes 19 MiB) every later one came from the
/// heap and stayed there: identity grew by about 270 MiB per burst of 16
/// sign-ups (28 → 304 → 577 MiB); with a fixed threshold it stays at 32 MiB
/// (docs/reliability.md). Must run before other threads start.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn return_large_blocks_to_the_system() {
    // SAFETY: mallopt only sets an allocator parameter; it is called before
    // any other thread exists, and a refusal (return 0) leaves the default.
    let _ = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_large_blocks_to_the_system() {}

fn main() -> ExitCode {
    return_large_blocks_to_the_system();
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
        Command::Version | Command::ApiReference | Command::Asyncapi { .. } => None,
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
        Command::ApiReference => {
            print!("{}", api_reference::builtin()?);
            for missing in api_reference::undocumented(partnerhub_proto::FILE_DESCRIPTOR_SET)? {
                eprintln!("partnerhub: no comment on {missing}");
            }
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
        Command::DeadLetters { action } => dead_letters(action).await,
        Command::Asyncapi { out_dir, vhost } => {
            let bus =
                partnerhub_platform::ServiceSettings::from_env("identity", 0, &ProcessEnv)?.bus;
            for path in asyncapi::write(&out_dir, &bus, &vhost)? {
                eprintln!("wrote {}", path.display());
            }
            Ok(())
        }
        Command::RabbitmqDefinitions { vhost } => {
            let bus =
                partnerhub_platform::ServiceSettings::from_env("identity", 0, &ProcessEnv)?.bus;
            println!(
                "{}",
                serde_json::to_string_pretty(&services::rabbitmq_definitions(&bus, &vhost))?
            );
            Ok(())
        }
    }
}

async fn dead_letters(action: DeadLetterAction) -> anyhow::Result<()> {
    use partnerhub_platform::bus::{QueueKind, dead};
    let (service, commands) = match &action {
        DeadLetterAction::List {
            service, commands, ..
        }
        | DeadLetterAction::Replay {
            service, commands, ..
        } => (service.clone(), *commands),
    };
    let name = *Name::parse_list(std::slice::from_ref(&service))?
        .first()
        .ok_or_else(|| anyhow::anyhow!("name one service"))?;
    let kind = if commands {
        QueueKind::Commands
    } else {
        QueueKind::Events
    };
    let bus = partnerhub_platform::ServiceSettings::from_env(name.as_str(), 0, &ProcessEnv)?.bus;
    match action {
        DeadLetterAction::List { limit, .. } => {
            let found = dead::list(&bus, name.as_str(), kind, limit).await?;
            for letter in &found {
                println!(
                    "{}\t{}\t{}\tattempts={}\tproducer={}\t{}",
                    letter.message_id,
                    letter.message_type,
                    letter.subject,
                    letter.attempts,
                    letter.producer,
                    letter.last_error
                );
            }
            eprintln!("{} dead-lettered message(s) listed", found.len());
        }
        DeadLetterAction::Replay { limit, .. } => {
            let moved = dead::replay(&bus, name.as_str(), kind, limit).await?;
            println!("{moved} message(s) replayed");
        }
    }
    Ok(())
}

async fn serve(names: Vec<Name>) -> anyhow::Result<()> {
    let env = ProcessEnv;
    let drain = Duration::from_secs(parse(
        &env as &dyn Env,
        "PARTNERHUB_DRAIN_TIMEOUT_SECS",
        25u64,
    )?);
    let shutdown = CancellationToken::new();
    // Build every service first (bind, migrate), all at once: a
    // configuration or database problem stops the process before anything
    // serves.
    let built =
        futures::future::try_join_all(names.into_iter().map(|name| services::build(name, &env)))
            .await?;
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
