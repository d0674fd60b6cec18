//! Company verification: status, cases and their checks, documents.

use std::path::PathBuf;

use clap::Subcommand;
use partnerhub_proto::verification::v1::{
    CheckStatus, ConfirmEmailOwnershipRequest, DocumentType, GetVerificationStatusRequest,
    ListDocumentsRequest, ListVerificationsRequest, UploadDocumentRequest,
    verification_service_client::VerificationServiceClient,
};

use crate::client::{Context, rpc};
use crate::commands::args::{Idempotency, Paging, enum_value};
use crate::error::{CliError, CliResult};
use crate::output::Column;

/// `partnerctl verification …`.
#[derive(Debug, Subcommand)]
pub enum VerificationCommand {
    /// The account's verification status.
    Status,
    /// The verification cases and their checks, newest first.
    List {
        /// Also every transition of every check.
        #[arg(long)]
        history: bool,
        /// Paging.
        #[command(flatten)]
        paging: Paging,
    },
    /// The uploaded documents (without content).
    Documents {
        /// Paging.
        #[command(flatten)]
        paging: Paging,
    },
    /// Pass the email-ownership check with the token mailed to the primary
    /// contact.
    ConfirmEmail {
        /// The token from the mail.
        token: String,
    },
    /// Upload a document (PDF, PNG or JPEG, at most 3 MiB) for a check.
    Upload {
        /// The file.
        file: PathBuf,
        /// Document type (business_registration, tax_certificate,
        /// utility_receipt, domain_ownership_proof, employment_letter,
        /// questionnaire).
        #[arg(long = "type", value_parser = document_type)]
        document_type: DocumentType,
        /// The check, `accounts/{a}/verifications/{v}/checks/{c}`; default:
        /// the one check waiting for documents.
        #[arg(long)]
        check: Option<String>,
        /// A comment for the reviewer.
        #[arg(long, default_value = "")]
        comment: String,
        /// Idempotency.
        #[command(flatten)]
        idempotency: Idempotency,
    },
}

fn document_type(text: &str) -> Result<DocumentType, String> {
    enum_value(text, "DOCUMENT_TYPE_", DocumentType::from_str_name)
}

const CASES: &[Column] = &[
    ("ID", "name|id"),
    ("TRIGGER", "trigger"),
    ("STATE", "state"),
    ("CHECKS", "checks[].kind|CHECK_KIND_"),
    ("CHECK STATUS", "checks[].status|CHECK_STATUS_"),
];

const DOCUMENTS: &[Column] = &[
    ("ID", "name|id"),
    ("TYPE", "type|DOCUMENT_TYPE_"),
    ("CONTENT TYPE", "content_type"),
    ("SIZE", "size_bytes"),
    ("CHECK", "check"),
];

/// Runs a verification command.
pub async fn run(ctx: &mut Context, command: VerificationCommand) -> CliResult {
    let account = ctx.account()?;
    match command {
        VerificationCommand::Status => {
            let request = GetVerificationStatusRequest {
                name: format!("{account}/verificationStatus"),
            };
            let status = rpc!(
                ctx,
                Verification,
                VerificationServiceClient::get_verification_status,
                request
            )
            .await?;
            ctx.printer.item(&status)
        }
        VerificationCommand::List { history, paging } => {
            let request = ListVerificationsRequest {
                parent: account,
                page_size: paging.size(),
                page_token: paging.page_token,
                show_history: history,
            };
            let response = rpc!(
                ctx,
                Verification,
                VerificationServiceClient::list_verifications,
                request
            )
            .await?;
            ctx.printer.list(&response, "verifications", CASES)
        }
        VerificationCommand::Documents { paging } => {
            let request = ListDocumentsRequest {
                parent: account,
                page_size: paging.size(),
                page_token: paging.page_token,
            };
            let response = rpc!(
                ctx,
                Verification,
                VerificationServiceClient::list_documents,
                request
            )
            .await?;
            ctx.printer.list(&response, "documents", DOCUMENTS)
        }
        VerificationCommand::ConfirmEmail { token } => {
            let request = ConfirmEmailOwnershipRequest { token, account };
            let confirmed = rpc!(
                ctx,
                Verification,
                VerificationServiceClient::confirm_email_ownership,
                request
            )
            .await?;
            ctx.printer.item(&confirmed)
        }
        VerificationCommand::Upload {
            file,
            document_type,
            check,
            comment,
            idempotency,
        } => {
            let content = std::fs::read(&file)
                .map_err(|e| CliError::usage(format!("cannot read {}: {e}", file.display())))?;
            let check = match check {
                Some(check) => check,
                None => waiting_check(ctx, &account).await?,
            };
            let request = UploadDocumentRequest {
                check,
                r#type: document_type.into(),
                content,
                comment,
                request_id: idempotency.key(),
            };
            let document = rpc!(
                ctx,
                Verification,
                VerificationServiceClient::upload_document,
                request
            )
            .await?;
            ctx.printer.item(&document)
        }
    }
}

/// The one check of an open case that waits for documents (ACTION_REQUIRED
/// or REJECTED).
async fn waiting_check(ctx: &mut Context, account: &str) -> CliResult<String> {
    let request = ListVerificationsRequest {
        parent: account.to_owned(),
        page_size: 100,
        ..ListVerificationsRequest::default()
    };
    let cases = rpc!(
        ctx,
        Verification,
        VerificationServiceClient::list_verifications,
        request
    )
    .await?;
    let waiting: Vec<String> = cases
        .verifications
        .iter()
        .filter(|case| case.state == "OPEN")
        .flat_map(|case| &case.checks)
        .filter(|check| {
            matches!(
                check.status(),
                CheckStatus::ActionRequired | CheckStatus::Rejected
            )
        })
        .map(|check| check.name.clone())
        .collect();
    match waiting.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(CliError::usage(
            "no check waits for documents: give --check (see `partnerctl verification list`)",
        )),
        several => Err(CliError::usage(format!(
            "several checks wait for documents, give --check: {}",
            several.join(", ")
        ))),
    }
}
