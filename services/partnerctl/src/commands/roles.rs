//! The roles of partnerhub.

use clap::Subcommand;
use partnerhub_proto::identity::v1::{
    GetRoleRequest, ListRolesRequest, role_service_client::RoleServiceClient,
};

use crate::client::{Context, rpc};
use crate::error::CliResult;
use crate::output::Column;

/// `partnerctl roles …`.
#[derive(Debug, Subcommand)]
pub enum RolesCommand {
    /// Every role with its family.
    List,
    /// One role and the permissions it grants.
    Show {
        /// Role id (`global_admin`) or `roles/{id}`.
        role: String,
    },
}

const ROLES: &[Column] = &[
    ("ROLE", "id"),
    ("DISPLAY NAME", "display_name"),
    ("FAMILY", "family|ROLE_FAMILY_"),
    ("LOCATION SCOPABLE", "location_scopable"),
];

/// Runs a roles command.
pub async fn run(ctx: &mut Context, command: RolesCommand) -> CliResult {
    match command {
        RolesCommand::List => {
            let roles = rpc!(
                ctx,
                Identity,
                RoleServiceClient::list_roles,
                ListRolesRequest {}
            )
            .await?;
            ctx.printer.list(&roles, "roles", ROLES)
        }
        RolesCommand::Show { role } => {
            let name = if role.contains('/') {
                role
            } else {
                format!("roles/{role}")
            };
            let role = rpc!(
                ctx,
                Identity,
                RoleServiceClient::get_role,
                GetRoleRequest { name }
            )
            .await?;
            ctx.printer.item(&role)
        }
    }
}
