//! The account picker: list your accounts, switch the active one, open
//! another.

use clap::Subcommand;
use partnerhub_proto::identity::v1::{
    CreateAccountRequest, ListMyAccountsRequest, SwitchAccountRequest,
    account_service_client::AccountServiceClient, auth_service_client::AuthServiceClient,
};

use crate::client::{Context, rpc};
use crate::commands::args::{Idempotency, Paging};
use crate::commands::auth::store;
use crate::error::{CliError, CliResult};
use crate::output::Column;

/// `partnerctl accounts …`.
#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Every account you are an active member of, with your roles there.
    List {
        /// Paging.
        #[command(flatten)]
        paging: Paging,
    },
    /// Make another account active: the session is re-issued for it.
    Switch {
        /// `accounts/{id}`, its id, or its display name.
        account: String,
    },
    /// Open another account, in which you are Global admin and Owner.
    Create {
        /// Display name.
        display_name: String,
        /// Idempotency.
        #[command(flatten)]
        idempotency: Idempotency,
    },
}

const COLUMNS: &[Column] = &[
    ("ID", "account.name|id"),
    ("DISPLAY NAME", "account.display_name"),
    ("STATE", "account.state|ACCOUNT_STATE_"),
    ("YOUR ROLES", "roles[].role"),
];

/// Runs an accounts command.
pub async fn run(ctx: &mut Context, command: AccountsCommand) -> CliResult {
    match command {
        AccountsCommand::List { paging } => {
            let request = ListMyAccountsRequest {
                page_size: paging.size(),
                page_token: paging.page_token,
            };
            let response = rpc!(
                ctx,
                Identity,
                AccountServiceClient::list_my_accounts,
                request
            )
            .await?;
            ctx.printer.list(&response, "accounts", COLUMNS)
        }
        AccountsCommand::Switch { account } => {
            let account = resolve(ctx, &account).await?;
            let request = SwitchAccountRequest { account };
            let session = rpc!(ctx, Identity, AuthServiceClient::switch_account, request).await?;
            store(ctx, session, "Switched; logged in")
        }
        AccountsCommand::Create {
            display_name,
            idempotency,
        } => {
            let request = CreateAccountRequest {
                display_name,
                request_id: idempotency.key(),
            };
            let account =
                rpc!(ctx, Identity, AccountServiceClient::create_account, request).await?;
            ctx.printer.item(&account)
        }
    }
}

/// The account name that `wanted` means: a full name, an id, or a display
/// name of one of the caller's accounts.
async fn resolve(ctx: &mut Context, wanted: &str) -> CliResult<String> {
    if wanted.starts_with("accounts/") {
        return Ok(wanted.to_owned());
    }
    let mut matches = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = ListMyAccountsRequest {
            page_size: 100,
            page_token,
        };
        let page = rpc!(
            ctx,
            Identity,
            AccountServiceClient::list_my_accounts,
            request
        )
        .await?;
        for account in page.accounts.into_iter().filter_map(|m| m.account) {
            let id = account.name.rsplit('/').next().unwrap_or_default();
            if id == wanted || account.display_name.eq_ignore_ascii_case(wanted) {
                matches.push(account.name);
            }
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    match matches.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(CliError::usage(format!(
            "no account of yours is called {wanted:?} (see `partnerctl accounts list`)"
        ))),
        _ => Err(CliError::usage(format!(
            "several of your accounts are called {wanted:?}: give its accounts/… name"
        ))),
    }
}
