//! The signed-in user's in-portal notifications.

use clap::Subcommand;
use partnerhub_proto::notification::v1::{
    ArchiveNotificationRequest, GetUnreadCountRequest, Kind, ListNotificationsRequest,
    MarkNotificationReadRequest, Workspace, notification_service_client::NotificationServiceClient,
};

use crate::client::{Context, rpc};
use crate::commands::args::{Paging, enum_value, name_under};
use crate::error::CliResult;
use crate::output::Column;

/// `partnerctl notifications …`.
#[derive(Debug, Subcommand)]
pub enum NotificationsCommand {
    /// Your notifications and actions, newest first.
    List {
        /// Only unread ones.
        #[arg(long)]
        unread: bool,
        /// Also archived ones.
        #[arg(long)]
        archived: bool,
        /// Only this kind (mandatory_action, recommended_action,
        /// transactional, promotional).
        #[arg(long, value_parser = kind)]
        kind: Option<Kind>,
        /// Only this workspace (account_settings, membership, billing, security).
        #[arg(long, value_parser = workspace)]
        workspace: Option<Workspace>,
        /// Paging.
        #[command(flatten)]
        paging: Paging,
    },
    /// How many are unread (the bell).
    Count,
    /// Mark one read.
    Read {
        /// Notification id or `users/{u}/notifications/{n}`.
        notification: String,
    },
    /// Archive one (a mandatory action only once resolved).
    Archive {
        /// Notification id or `users/{u}/notifications/{n}`.
        notification: String,
    },
}

fn kind(text: &str) -> Result<Kind, String> {
    enum_value(text, "KIND_", Kind::from_str_name)
}

fn workspace(text: &str) -> Result<Workspace, String> {
    enum_value(text, "WORKSPACE_", Workspace::from_str_name)
}

const NOTIFICATIONS: &[Column] = &[
    ("ID", "name|id"),
    ("KIND", "kind|KIND_"),
    ("TITLE", "title"),
    ("CREATED", "create_time"),
    ("READ", "read_time"),
];

/// Runs a notifications command.
pub async fn run(ctx: &mut Context, command: NotificationsCommand) -> CliResult {
    let user = ctx.session()?.user.clone();
    let name = |id: &str| name_under(&user, "notifications", id);
    match command {
        NotificationsCommand::List {
            unread,
            archived,
            kind,
            workspace,
            paging,
        } => {
            let request = ListNotificationsRequest {
                parent: user.clone(),
                page_size: paging.size(),
                page_token: paging.page_token,
                unread_only: unread,
                kind: kind.unwrap_or_default().into(),
                workspace: workspace.unwrap_or_default().into(),
                show_archived: archived,
            };
            let response = rpc!(
                ctx,
                Notification,
                NotificationServiceClient::list_notifications,
                request
            )
            .await?;
            ctx.printer.list(&response, "notifications", NOTIFICATIONS)
        }
        NotificationsCommand::Count => {
            let request = GetUnreadCountRequest {
                parent: user.clone(),
            };
            let count = rpc!(
                ctx,
                Notification,
                NotificationServiceClient::get_unread_count,
                request
            )
            .await?;
            ctx.printer.item(&count)
        }
        NotificationsCommand::Read { notification } => {
            let request = MarkNotificationReadRequest {
                name: name(&notification),
            };
            let read = rpc!(
                ctx,
                Notification,
                NotificationServiceClient::mark_notification_read,
                request
            )
            .await?;
            ctx.printer.item(&read)
        }
        NotificationsCommand::Archive { notification } => {
            let request = ArchiveNotificationRequest {
                name: name(&notification),
            };
            let archived = rpc!(
                ctx,
                Notification,
                NotificationServiceClient::archive_notification,
                request
            )
            .await?;
            ctx.printer.item(&archived)
        }
    }
}
