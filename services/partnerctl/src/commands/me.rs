//! About the signed-in user.

use clap::Subcommand;
use partnerhub_proto::identity::v1::{
    GetMyPermissionsRequest, self_service_client::SelfServiceClient,
};

use crate::client::{Context, rpc};
use crate::error::CliResult;
use crate::output::{Column, Format, emit};

/// `partnerctl me …`.
#[derive(Debug, Subcommand)]
pub enum MeCommand {
    /// Your roles in the active account and the permissions each gives.
    Permissions,
}

const GRANTED: &[Column] = &[
    ("ROLE", "assignment.role"),
    ("DISPLAY NAME", "display_name"),
    ("LOCATIONS", "assignment.locations"),
    ("PERMISSIONS", "permissions|count"),
];

/// Runs a me command.
pub async fn run(ctx: &mut Context, command: MeCommand) -> CliResult {
    match command {
        MeCommand::Permissions => {
            let request = GetMyPermissionsRequest {};
            let granted = rpc!(
                ctx,
                Identity,
                SelfServiceClient::get_my_permissions,
                request
            )
            .await?;
            if ctx.printer.format() == Format::Table {
                emit(format!("Account: {}", granted.account))?;
            }
            ctx.printer.list(&granted, "roles", GRANTED)
        }
    }
}
