//! Users (members) of the active account.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use partnerhub_proto::identity::v1::{
    BulkCreateUsersRequest, CreateUserRequest, GetMemberRequest, Invitation, InviteUsersRequest,
    ListInvitationsRequest, ListMembersRequest, MemberState, RemovalScope, RemoveMemberRequest,
    ResendInvitationRequest, ResetPasswordRequest, RevokeInvitationRequest, RoleAssignment,
    UpdateMemberRequest, invitation_service_client::InvitationServiceClient,
    member_service_client::MemberServiceClient,
};

use crate::client::{Context, rpc};
use crate::commands::args::{Idempotency, Paging, enum_value, name_under, role};
use crate::error::{CliError, CliResult};
use crate::output::Column;

/// `partnerctl users …`.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List the members, optionally by role and state.
    List {
        /// Only members holding this role.
        #[arg(long, default_value = "")]
        role: String,
        /// Only members in this state (active, invited, deleted).
        #[arg(long, value_parser = member_state)]
        state: Option<MemberState>,
        /// Paging.
        #[command(flatten)]
        paging: Paging,
    },
    /// Show one member.
    Get {
        /// User id or `accounts/{a}/members/{u}`.
        member: String,
    },
    /// Create a user with roles; prints the temporary password once.
    Create(CreateArgs),
    /// Invite outside emails (they get a token by mail).
    Invite {
        /// Emails to invite (1–10).
        #[arg(long = "email", required = true)]
        emails: Vec<String>,
        /// Roles, `role` or `role:location,…` (repeatable).
        #[arg(long = "role", required = true, value_parser = role)]
        roles: Vec<RoleAssignment>,
        /// Idempotency.
        #[command(flatten)]
        idempotency: Idempotency,
    },
    /// Create up to 100 users from a CSV file (`email,given_name,family_name,roles`,
    /// roles separated by `;`), all or nothing; `-` reads stdin.
    Import {
        /// The CSV file.
        csv: PathBuf,
        /// Idempotency.
        #[command(flatten)]
        idempotency: Idempotency,
    },
    /// Replace a member's roles.
    Update {
        /// User id or `accounts/{a}/members/{u}`.
        member: String,
        /// The new roles, `role` or `role:location,…` (repeatable).
        #[arg(long = "role", required = true, value_parser = role)]
        roles: Vec<RoleAssignment>,
        /// The etag read before (default: the current one).
        #[arg(long)]
        etag: Option<String>,
    },
    /// Remove a member from the account, the directory, or both.
    Remove {
        /// User id or `accounts/{a}/members/{u}`.
        member: String,
        /// From where.
        #[arg(long, value_parser = removal_scope, default_value = "account")]
        scope: RemovalScope,
        /// If given, must be the member's current etag.
        #[arg(long, default_value = "")]
        etag: String,
    },
    /// Give a member a new temporary password (printed once).
    ResetPassword {
        /// User id or `accounts/{a}/members/{u}`.
        member: String,
    },
    /// List the pending invitations (no user or member exists until an
    /// invitee accepts).
    Invitations {
        #[command(flatten)]
        paging: Paging,
    },
    /// Mail an invitation again with a new token (the old one dies).
    ResendInvitation {
        /// Invitation id or `accounts/{a}/invitations/{id}`.
        invitation: String,
    },
    /// Revoke a pending invitation (its token dies).
    RevokeInvitation {
        /// Invitation id or `accounts/{a}/invitations/{id}`.
        invitation: String,
    },
}

/// `partnerctl users create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Sign-in email.
    #[arg(long)]
    pub email: String,
    /// First name.
    #[arg(long)]
    pub given_name: String,
    /// Last name.
    #[arg(long)]
    pub family_name: String,
    /// Roles, `role` or `role:location,…` (repeatable).
    #[arg(long = "role", required = true, value_parser = role)]
    pub roles: Vec<RoleAssignment>,
    /// Idempotency.
    #[command(flatten)]
    pub idempotency: Idempotency,
}

fn member_state(text: &str) -> Result<MemberState, String> {
    enum_value(text, "MEMBER_STATE_", MemberState::from_str_name)
}

fn removal_scope(text: &str) -> Result<RemovalScope, String> {
    enum_value(text, "REMOVAL_SCOPE_", RemovalScope::from_str_name)
}

const MEMBERS: &[Column] = &[
    ("ID", "name|id"),
    ("EMAIL", "user.email"),
    ("GIVEN NAME", "user.given_name"),
    ("FAMILY NAME", "user.family_name"),
    ("ROLES", "roles[].role"),
    ("STATE", "state|MEMBER_STATE_"),
];

const INVITATIONS: &[Column] = &[
    ("ID", "name|id"),
    ("EMAIL", "email"),
    ("ROLES", "roles[].role"),
    ("STATE", "state|INVITATION_STATE_"),
    ("EXPIRES", "expire_time"),
];

const CREATED: &[Column] = &[
    ("ID", "member.name|id"),
    ("EMAIL", "member.user.email"),
    ("ROLES", "member.roles[].role"),
    ("TEMPORARY PASSWORD", "temporary_password"),
];

/// Runs a users command.
pub async fn run(ctx: &mut Context, command: UsersCommand) -> CliResult {
    let account = ctx.account()?;
    let member_name = |id: &str| name_under(&account, "members", id);
    match command {
        UsersCommand::List {
            role,
            state,
            paging,
        } => {
            let request = ListMembersRequest {
                parent: account.clone(),
                role,
                state: state.unwrap_or_default().into(),
                page_size: paging.size(),
                page_token: paging.page_token,
            };
            let response = rpc!(ctx, Identity, MemberServiceClient::list_members, request).await?;
            ctx.printer.list(&response, "members", MEMBERS)
        }
        UsersCommand::Get { member } => {
            let request = GetMemberRequest {
                name: member_name(&member),
            };
            let member = rpc!(ctx, Identity, MemberServiceClient::get_member, request).await?;
            ctx.printer.item(&member)
        }
        UsersCommand::Create(args) => {
            let request = CreateUserRequest {
                parent: account.clone(),
                email: args.email,
                given_name: args.given_name,
                family_name: args.family_name,
                roles: args.roles,
                request_id: args.idempotency.key(),
            };
            let created = rpc!(ctx, Identity, MemberServiceClient::create_user, request).await?;
            ctx.printer.item(&created)
        }
        UsersCommand::Invite {
            emails,
            roles,
            idempotency,
        } => {
            let request = InviteUsersRequest {
                parent: account.clone(),
                invitations: emails
                    .into_iter()
                    .map(|email| Invitation {
                        email,
                        roles: roles.clone(),
                        ..Invitation::default()
                    })
                    .collect(),
                request_id: idempotency.key(),
            };
            let response = rpc!(ctx, Identity, MemberServiceClient::invite_users, request).await?;
            ctx.printer.list(&response, "invitations", INVITATIONS)
        }
        UsersCommand::Invitations { paging } => {
            let request = ListInvitationsRequest {
                parent: account.clone(),
                page_size: paging.size(),
                page_token: paging.page_token,
            };
            let response = rpc!(
                ctx,
                Identity,
                InvitationServiceClient::list_invitations,
                request
            )
            .await?;
            ctx.printer.list(&response, "invitations", INVITATIONS)
        }
        UsersCommand::ResendInvitation { invitation } => {
            let request = ResendInvitationRequest {
                name: name_under(&account, "invitations", &invitation),
            };
            let invitation = rpc!(
                ctx,
                Identity,
                InvitationServiceClient::resend_invitation,
                request
            )
            .await?;
            ctx.printer.item(&invitation)
        }
        UsersCommand::RevokeInvitation { invitation } => {
            let request = RevokeInvitationRequest {
                name: name_under(&account, "invitations", &invitation),
            };
            let invitation = rpc!(
                ctx,
                Identity,
                InvitationServiceClient::revoke_invitation,
                request
            )
            .await?;
            ctx.printer.item(&invitation)
        }
        UsersCommand::Import { csv, idempotency } => {
            let request = BulkCreateUsersRequest {
                parent: account.clone(),
                csv: read_text(&csv)?,
                request_id: idempotency.key(),
            };
            let response = rpc!(
                ctx,
                Identity,
                MemberServiceClient::bulk_create_users,
                request
            )
            .await?;
            ctx.printer.list(&response, "users", CREATED)
        }
        UsersCommand::Update {
            member,
            roles,
            etag,
        } => {
            let name = member_name(&member);
            let request = GetMemberRequest { name };
            let mut current = rpc!(ctx, Identity, MemberServiceClient::get_member, request).await?;
            current.roles = roles;
            if let Some(etag) = etag {
                current.etag = etag;
            }
            let request = UpdateMemberRequest {
                member: Some(current),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["roles".into()],
                }),
            };
            let updated = rpc!(ctx, Identity, MemberServiceClient::update_member, request).await?;
            ctx.printer.item(&updated)
        }
        UsersCommand::Remove {
            member,
            scope,
            etag,
        } => {
            let request = RemoveMemberRequest {
                name: member_name(&member),
                scope: scope.into(),
                etag,
            };
            let done = rpc!(ctx, Identity, MemberServiceClient::remove_member, request).await?;
            ctx.printer.done(&done, &format!("Removed {member}."))
        }
        UsersCommand::ResetPassword { member } => {
            let request = ResetPasswordRequest {
                name: member_name(&member),
            };
            let reset = rpc!(ctx, Identity, MemberServiceClient::reset_password, request).await?;
            ctx.printer.item(&reset)
        }
    }
}

/// The text of `path`, or of stdin for `-`.
fn read_text(path: &PathBuf) -> CliResult<String> {
    if path.as_os_str() == "-" {
        return Ok(std::io::read_to_string(std::io::stdin())?);
    }
    std::fs::read_to_string(path)
        .map_err(|e| CliError::usage(format!("cannot read {}: {e}", path.display())))
}
