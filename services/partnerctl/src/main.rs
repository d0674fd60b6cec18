//! partnerctl: drive partnerhub from a terminal or a script.

mod cli;
mod client;
mod commands;
mod config;
mod error;
mod json;
mod output;
mod report;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command, GlobalArgs};
use crate::client::Context;
use crate::config::{Endpoints, Store};
use crate::error::{CliError, CliResult};
use crate::output::Printer;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let printer = Printer::new(cli.global.output);
    if let Command::Completions { shell } = cli.command {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "partnerctl", &mut script);
        // A closed pipe (`| head`) is not an error worth a message.
        let _ = std::io::Write::write_all(&mut std::io::stdout(), &script);
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            printer.error(&CliError::Other(e.into()));
            return ExitCode::from(error::exit::UNEXPECTED);
        }
    };
    match runtime.block_on(run(cli, printer)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            printer.error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

async fn run(cli: Cli, printer: Printer) -> CliResult {
    let store = Store::locate()?;
    let stored = store.load()?;
    let endpoints = endpoints(&cli.global, stored.endpoints.unwrap_or_default());
    let mut ctx = Context::new(printer, endpoints, store, stored.session);
    commands::run(&mut ctx, cli.command).await
}

/// Each endpoint from the flag (or its environment variable), else the one
/// saved at login, else the default port on localhost.
fn endpoints(global: &GlobalArgs, saved: Endpoints) -> Endpoints {
    let pick = |flag: &Option<String>, saved: String, port: u16| {
        flag.clone()
            .filter(|u| !u.is_empty())
            .or(Some(saved).filter(|u| !u.is_empty()))
            .unwrap_or_else(|| format!("http://127.0.0.1:{port}"))
    };
    Endpoints {
        identity: pick(&global.identity_url, saved.identity, 50051),
        profile: pick(&global.profile_url, saved.profile, 50052),
        verification: pick(&global.verification_url, saved.verification, 50053),
        notification: pick(&global.notification_url, saved.notification, 50054),
        merge: pick(&global.merge_url, saved.merge, 50055),
    }
}
