//! Programs and their agreements.

use clap::Subcommand;
use partnerhub_proto::profile::v1::{
    AcceptAgreementRequest, EnrollProgramRequest, ListAgreementsRequest, ListProgramsRequest,
    ProgramKind, program_service_client::ProgramServiceClient,
};

use crate::client::{Context, rpc};
use crate::commands::args::enum_value;
use crate::error::CliResult;
use crate::output::Column;

/// `partnerctl programs …`.
#[derive(Debug, Subcommand)]
pub enum ProgramsCommand {
    /// The account's programs with their status.
    List,
    /// Enroll in another program, accepting its agreement.
    Enroll {
        /// Program (referrals, csp_direct_bill, commercial_marketplace, …).
        #[arg(value_parser = program_kind)]
        program: ProgramKind,
        /// Accept the program's agreement (required by the server).
        #[arg(long)]
        accept_agreement: bool,
    },
    /// Accepted agreements, newest first.
    Agreements,
    /// Accept an agreement version.
    AcceptAgreement {
        /// Agreement id (`microsoft_partner_agreement`).
        agreement: String,
        /// Its current version.
        #[arg(long)]
        version: String,
    },
}

fn program_kind(text: &str) -> Result<ProgramKind, String> {
    enum_value(text, "PROGRAM_KIND_", ProgramKind::from_str_name)
}

const PROGRAMS: &[Column] = &[
    ("PROGRAM", "kind|PROGRAM_KIND_"),
    ("STATUS", "status|PROGRAM_STATUS_"),
    ("TAB", "tab|PROGRAM_TAB_"),
    ("AGREEMENT", "agreement"),
];

const AGREEMENTS: &[Column] = &[
    ("AGREEMENT", "agreement"),
    ("VERSION", "version"),
    ("ACCEPTED BY", "accepted_by"),
    ("ACCEPTED", "accept_time"),
];

/// Runs a programs command.
pub async fn run(ctx: &mut Context, command: ProgramsCommand) -> CliResult {
    let parent = ctx.account()?;
    match command {
        ProgramsCommand::List => {
            let request = ListProgramsRequest { parent };
            let response = rpc!(ctx, Profile, ProgramServiceClient::list_programs, request).await?;
            ctx.printer.list(&response, "programs", PROGRAMS)
        }
        ProgramsCommand::Enroll {
            program,
            accept_agreement,
        } => {
            let request = EnrollProgramRequest {
                parent,
                program: program.into(),
                accept_agreement,
            };
            let program = rpc!(ctx, Profile, ProgramServiceClient::enroll_program, request).await?;
            ctx.printer.item(&program)
        }
        ProgramsCommand::Agreements => {
            let request = ListAgreementsRequest { parent };
            let response =
                rpc!(ctx, Profile, ProgramServiceClient::list_agreements, request).await?;
            ctx.printer.list(&response, "agreements", AGREEMENTS)
        }
        ProgramsCommand::AcceptAgreement { agreement, version } => {
            let request = AcceptAgreementRequest {
                parent,
                agreement,
                version,
            };
            let accepted = rpc!(
                ctx,
                Profile,
                ProgramServiceClient::accept_agreement,
                request
            )
            .await?;
            ctx.printer.item(&accepted)
        }
    }
}
