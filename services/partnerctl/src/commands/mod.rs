//! One module per command group, and the dispatch.

pub mod accounts;
pub mod args;
pub mod auth;
pub mod locations;
pub mod me;
pub mod merge;
pub mod notifications;
pub mod profile;
pub mod programs;
pub mod roles;
pub mod users;
pub mod verification;

use crate::cli::Command;
use crate::client::Context;
use crate::error::CliResult;

/// Runs `command`.
pub async fn run(ctx: &mut Context, command: Command) -> CliResult {
    match command {
        Command::Signup(args) => auth::signup(ctx, args).await,
        Command::Login(args) => auth::login(ctx, args).await,
        Command::Logout => auth::logout(ctx).await,
        Command::Password(args) => auth::change_password(ctx, args).await,
        Command::Whoami => auth::whoami(ctx),
        Command::Accounts(c) => accounts::run(ctx, c).await,
        Command::Users(c) => users::run(ctx, c).await,
        Command::Roles(c) => roles::run(ctx, c).await,
        Command::Me(c) => me::run(ctx, c).await,
        Command::Profile(c) => profile::run(ctx, c).await,
        Command::Locations(c) => locations::run(ctx, c).await,
        Command::Programs(c) => programs::run(ctx, c).await,
        Command::Verification(c) => verification::run(ctx, c).await,
        Command::Notifications(c) => notifications::run(ctx, c).await,
        Command::Merge(c) => merge::run(ctx, c).await,
        // Printed before a runtime is started.
        Command::Completions { .. } => Ok(()),
    }
}
