//! Account merges: the initiator previews and invites another company by
//! its global partner id, the invitee accepts or rejects, the initiator
//! confirms, and the merge runs.

use clap::Subcommand;
use partnerhub_proto::merge::v1::{
    AcceptMergeInvitationRequest, CancelMergeInvitationRequest, ConfirmMergeRequest,
    CreateMergeInvitationRequest, GetMergeInvitationRequest, ListMergeInvitationsRequest,
    PreviewMergeRequest, RejectMergeInvitationRequest, RetryMergeRequest,
    merge_service_client::MergeServiceClient,
};

use crate::client::{Context, rpc};
use crate::commands::args::{Idempotency, Paging};
use crate::error::{CliError, CliResult};
use crate::output::Column;

/// `partnerctl merge …`.
#[derive(Debug, Subcommand)]
pub enum MergeCommand {
    /// What merging the company with this global partner id would bring in.
    Preview {
        /// The other company's global partner id.
        partner_id: String,
    },
    /// Invite the company with this global partner id to merge into the
    /// active account.
    Invite {
        /// The other company's global partner id.
        partner_id: String,
        /// Idempotency.
        #[command(flatten)]
        idempotency: Idempotency,
    },
    /// Invitations sent or received: open ones, or the history.
    List {
        /// Completed, rejected, cancelled and expired ones instead.
        #[arg(long)]
        history: bool,
        /// Paging.
        #[command(flatten)]
        paging: Paging,
    },
    /// Show one invitation and its state.
    Get {
        /// Invitation name, or its id (looked up among yours).
        invitation: String,
    },
    /// Accept an invitation (as the invitee).
    Accept {
        /// Invitation name, or its id.
        invitation: String,
    },
    /// Reject an invitation (as the invitee), with a reason.
    Reject {
        /// Invitation name, or its id.
        invitation: String,
        /// Why (shown to the initiator).
        #[arg(long)]
        reason: String,
    },
    /// Withdraw an invitation (as the initiator, before confirming).
    Cancel {
        /// Invitation name, or its id.
        invitation: String,
    },
    /// Confirm an accepted invitation (as the initiator): the merge runs
    /// and cannot be undone.
    Confirm {
        /// Invitation name, or its id.
        invitation: String,
        /// Acknowledge that the merge is irreversible.
        #[arg(long)]
        yes: bool,
    },
    /// Retry a FAILED merge (as the initiator).
    Retry {
        /// Invitation name, or its id.
        invitation: String,
    },
}

const INVITATIONS: &[Column] = &[
    ("ID", "name|id"),
    ("INITIATOR", "initiator"),
    ("INVITEE", "invitee"),
    ("INVITEE NAME", "invitee_legal_name"),
    ("STATE", "state|MERGE_STATE_"),
    ("UPDATED", "update_time"),
];

/// Runs a merge command.
pub async fn run(ctx: &mut Context, command: MergeCommand) -> CliResult {
    let account = ctx.account()?;
    let invitation = match command {
        MergeCommand::Preview { partner_id } => {
            let request = PreviewMergeRequest {
                parent: account,
                partner_id,
            };
            let preview = rpc!(ctx, Merge, MergeServiceClient::preview_merge, request).await?;
            return ctx.printer.item(&preview);
        }
        MergeCommand::List { history, paging } => {
            let request = ListMergeInvitationsRequest {
                parent: account,
                page_size: paging.size(),
                page_token: paging.page_token,
                history,
            };
            let response = rpc!(
                ctx,
                Merge,
                MergeServiceClient::list_merge_invitations,
                request
            )
            .await?;
            return ctx
                .printer
                .list(&response, "merge_invitations", INVITATIONS);
        }
        MergeCommand::Invite {
            partner_id,
            idempotency,
        } => {
            let request = CreateMergeInvitationRequest {
                parent: account,
                partner_id,
                request_id: idempotency.key(),
            };
            rpc!(
                ctx,
                Merge,
                MergeServiceClient::create_merge_invitation,
                request
            )
            .await?
        }
        MergeCommand::Get { invitation } => {
            let name = resolve(ctx, &account, &invitation).await?;
            let request = GetMergeInvitationRequest { name };
            rpc!(
                ctx,
                Merge,
                MergeServiceClient::get_merge_invitation,
                request
            )
            .await?
        }
        MergeCommand::Accept { invitation } => {
            let name = resolve(ctx, &account, &invitation).await?;
            let request = AcceptMergeInvitationRequest { name };
            rpc!(
                ctx,
                Merge,
                MergeServiceClient::accept_merge_invitation,
                request
            )
            .await?
        }
        MergeCommand::Reject { invitation, reason } => {
            let name = resolve(ctx, &account, &invitation).await?;
            let request = RejectMergeInvitationRequest { name, reason };
            rpc!(
                ctx,
                Merge,
                MergeServiceClient::reject_merge_invitation,
                request
            )
            .await?
        }
        MergeCommand::Cancel { invitation } => {
            let name = resolve(ctx, &account, &invitation).await?;
            let request = CancelMergeInvitationRequest { name };
            rpc!(
                ctx,
                Merge,
                MergeServiceClient::cancel_merge_invitation,
                request
            )
            .await?
        }
        MergeCommand::Confirm { invitation, yes } => {
            let name = resolve(ctx, &account, &invitation).await?;
            let request = ConfirmMergeRequest {
                name,
                acknowledge_irreversible: yes,
            };
            rpc!(ctx, Merge, MergeServiceClient::confirm_merge, request).await?
        }
        MergeCommand::Retry { invitation } => {
            let name = resolve(ctx, &account, &invitation).await?;
            let request = RetryMergeRequest { name };
            rpc!(ctx, Merge, MergeServiceClient::retry_merge, request).await?
        }
    };
    ctx.printer.item(&invitation)
}

/// The invitation name `wanted` means: a full name, or the id of an
/// invitation the account sent or received (open ones, then the history).
async fn resolve(ctx: &mut Context, account: &str, wanted: &str) -> CliResult<String> {
    if wanted.contains('/') {
        return Ok(wanted.to_owned());
    }
    for history in [false, true] {
        let mut page_token = String::new();
        loop {
            let request = ListMergeInvitationsRequest {
                parent: account.to_owned(),
                page_size: 100,
                page_token,
                history,
            };
            let page = rpc!(
                ctx,
                Merge,
                MergeServiceClient::list_merge_invitations,
                request
            )
            .await?;
            let suffix = format!("/{wanted}");
            if let Some(found) = page
                .merge_invitations
                .into_iter()
                .find(|i| i.name.ends_with(&suffix))
            {
                return Ok(found.name);
            }
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
    }
    Err(CliError::usage(format!(
        "no merge invitation {wanted:?} among the account's (see `partnerctl merge list`)"
    )))
}
