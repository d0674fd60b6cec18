//! The partnerhub benchmark: each path of the suite measured against its own
//! ceiling in one run, with the same client settings for every row; prints
//! one table and writes the rows as JSON. See docs/benchmarks.md.
//!
//! `cargo build --release --bin partnerhub && cargo run --release -p partnerhub-bench -- --json target/bench.json`

mod auth;
mod bus;
mod cleanup;
mod db;
mod events;
mod growth;
mod grpc;
mod load;
mod process;
mod report;
mod rows;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use crate::load::LoadSettings;

/// Command line.
#[derive(Debug, Parser)]
#[command(about = "Measures partnerhub's paths against their ceilings in one run.")]
struct Args {
    /// Seconds instead of minutes: short rows, 10 k rows instead of 1 M
    /// (proves the bench runs; its numbers are not results).
    #[arg(long)]
    quick: bool,
    /// Write the rows as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// gRPC connections (HTTP/2 channels) per target.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Calls in flight (closed-loop workers).
    #[arg(long, default_value_t = 32)]
    in_flight: usize,
    /// Connections per database pool (default: the services' production
    /// default, 10; 3 with --quick, which runs beside the test suite).
    #[arg(long)]
    pool_size: Option<u32>,
    /// Rows 1 and 2 only (gRPC ceiling, read path, database read ceiling),
    /// e.g. under `perf record`.
    #[arg(long)]
    read_only: bool,
    /// The `partnerhub` binary for row 6 (default: next to this one).
    #[arg(long)]
    partnerhub: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let settings = LoadSettings {
        connections: args.connections.max(1),
        in_flight: args.in_flight.max(1),
        duration: if args.quick {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(10)
        },
        warmup: if args.quick {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(2)
        },
        pool_size: args.pool_size.unwrap_or(if args.quick {
            3
        } else {
            partnerhub_platform::config::DEFAULT_DATABASE_MAX_CONNECTIONS
        }),
    };
    let plan = rows::Plan {
        settings,
        quick: args.quick,
        large: if args.quick { 10_000 } else { 1_000_000 },
        partnerhub: match args.partnerhub {
            Some(path) => path,
            None => process::binary()?,
        },
        read_only: args.read_only,
    };
    let report = rows::run(&plan).await?;
    print!("{}", report::table(&report));
    if let Some(path) = args.json {
        let json = serde_json::to_vec_pretty(&report)?;
        std::fs::write(&path, json).with_context(|| format!("cannot write {}", path.display()))?;
        println!("JSON: {}", path.display());
    }
    Ok(())
}
