//! The organization profile: enrollment and the legal profile.

use clap::{Args, Subcommand};
use partnerhub_proto::profile::v1::{
    Contact, DataSource, EnrollRequest, GetLegalProfileRequest, LegalProfile, ProgramKind,
    UpdateLegalProfileRequest, enrollment_service_client::EnrollmentServiceClient,
    legal_profile_service_client::LegalProfileServiceClient,
};

use crate::client::{Context, rpc};
use crate::commands::args::{AddressArgs, Idempotency, apply_contact, enum_value};
use crate::error::{CliError, CliResult};

/// `partnerctl profile …`.
#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// The legal business profile.
    #[command(subcommand)]
    Legal(LegalCommand),
    /// Enroll the active account as a partner: legal profile, primary
    /// contact, program and its agreement in one call.
    Enroll(Box<EnrollArgs>),
}

/// `partnerctl profile legal …`.
#[derive(Debug, Subcommand)]
pub enum LegalCommand {
    /// Show the legal profile.
    Get,
    /// Change the fields given (the update mask is built from the flags).
    Update(Box<LegalUpdateArgs>),
}

/// `partnerctl profile enroll`.
#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// Registered legal name.
    #[arg(long)]
    pub legal_name: String,
    /// Registered address.
    #[command(flatten)]
    pub address: AddressArgs,
    /// Company registration id (required in some countries).
    #[arg(long, default_value = "")]
    pub registration_id: String,
    /// Primary contact field, `KEY=VALUE` (given_name, middle_name,
    /// family_name, email, phone; repeatable); default: you.
    #[arg(long = "contact", value_name = "KEY=VALUE")]
    pub contact: Vec<String>,
    /// Program (partner, referrals, csp_direct_bill, …).
    #[arg(long, value_parser = program_kind, default_value = "partner")]
    pub program: ProgramKind,
    /// Accept the program's agreement (required by the server).
    #[arg(long)]
    pub accept_agreement: bool,
    /// DUNS number, when the data comes from the directory.
    #[arg(long, default_value = "")]
    pub duns_number: String,
    /// Idempotency.
    #[command(flatten)]
    pub idempotency: Idempotency,
}

/// `partnerctl profile legal update`.
#[derive(Debug, Args)]
pub struct LegalUpdateArgs {
    /// Registered legal name.
    #[arg(long)]
    pub legal_name: Option<String>,
    /// Address fields (the address is sent whole: the others are kept).
    #[command(flatten)]
    pub address: AddressArgs,
    /// Company registration id.
    #[arg(long)]
    pub registration_id: Option<String>,
    /// Primary contact field, `KEY=VALUE` (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub primary_contact: Vec<String>,
    /// Legal contact field, `KEY=VALUE` (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub legal_contact: Vec<String>,
    /// Security contact field, `KEY=VALUE` (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub security_contact: Vec<String>,
    /// Company approver field, `KEY=VALUE` (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub company_approver: Vec<String>,
    /// Where the data came from (manual, duns).
    #[arg(long, value_parser = data_source)]
    pub data_source: Option<DataSource>,
    /// DUNS number.
    #[arg(long)]
    pub duns_number: Option<String>,
    /// The etag read before (default: the one read now).
    #[arg(long)]
    pub etag: Option<String>,
}

fn program_kind(text: &str) -> Result<ProgramKind, String> {
    enum_value(text, "PROGRAM_KIND_", ProgramKind::from_str_name)
}

fn data_source(text: &str) -> Result<DataSource, String> {
    enum_value(text, "DATA_SOURCE_", DataSource::from_str_name)
}

/// Runs a profile command.
pub async fn run(ctx: &mut Context, command: ProfileCommand) -> CliResult {
    let account = ctx.account()?;
    match command {
        ProfileCommand::Enroll(args) => enroll(ctx, account, *args).await,
        ProfileCommand::Legal(LegalCommand::Get) => {
            let profile = read(ctx, &account).await?;
            ctx.printer.item(&profile)
        }
        ProfileCommand::Legal(LegalCommand::Update(args)) => {
            let current = read(ctx, &account).await?;
            let (legal_profile, paths) = changed(current, *args)?;
            if paths.is_empty() {
                return Err(CliError::usage(
                    "nothing to change: give at least one field flag",
                ));
            }
            let request = UpdateLegalProfileRequest {
                legal_profile: Some(legal_profile),
                update_mask: Some(prost_types::FieldMask { paths }),
            };
            let updated = rpc!(
                ctx,
                Profile,
                LegalProfileServiceClient::update_legal_profile,
                request
            )
            .await?;
            warn(&updated.warnings);
            ctx.printer.item(&updated)
        }
    }
}

async fn enroll(ctx: &mut Context, account: String, args: EnrollArgs) -> CliResult {
    let session = ctx.session()?;
    let you = Contact {
        given_name: session.given_name.clone(),
        family_name: session.family_name.clone(),
        email: session.email.clone(),
        ..Contact::default()
    };
    let request = EnrollRequest {
        parent: account,
        legal_profile: Some(LegalProfile {
            legal_name: args.legal_name,
            address: Some(args.address.apply(Default::default())),
            registration_id: args.registration_id,
            primary_contact: Some(apply_contact(you, &args.contact, "--contact")?),
            data_source: if args.duns_number.is_empty() {
                DataSource::Manual
            } else {
                DataSource::Duns
            }
            .into(),
            duns_number: args.duns_number,
            ..LegalProfile::default()
        }),
        program: args.program.into(),
        accept_agreement: args.accept_agreement,
        request_id: args.idempotency.key(),
    };
    let enrolled = rpc!(ctx, Profile, EnrollmentServiceClient::enroll, request).await?;
    warn(&enrolled.warnings);
    ctx.printer.item(&enrolled)
}

async fn read(ctx: &mut Context, account: &str) -> CliResult<LegalProfile> {
    let request = GetLegalProfileRequest {
        name: format!("{account}/legalProfile"),
    };
    rpc!(
        ctx,
        Profile,
        LegalProfileServiceClient::get_legal_profile,
        request
    )
    .await
}

/// `profile` with the flags' values, and the mask naming them.
fn changed(
    mut profile: LegalProfile,
    args: LegalUpdateArgs,
) -> CliResult<(LegalProfile, Vec<String>)> {
    let mut paths = Vec::new();
    if let Some(name) = args.legal_name {
        profile.legal_name = name;
        paths.push("legal_name".to_owned());
    }
    if args.address.any() {
        profile.address = Some(args.address.apply(profile.address.unwrap_or_default()));
        paths.push("address".to_owned());
    }
    if let Some(id) = args.registration_id {
        profile.registration_id = id;
        paths.push("registration_id".to_owned());
    }
    let contacts = [
        (
            "primary_contact",
            &args.primary_contact,
            &mut profile.primary_contact,
        ),
        (
            "legal_contact",
            &args.legal_contact,
            &mut profile.legal_contact,
        ),
        (
            "security_contact",
            &args.security_contact,
            &mut profile.security_contact,
        ),
        (
            "company_approver",
            &args.company_approver,
            &mut profile.company_approver,
        ),
    ];
    for (path, pairs, contact) in contacts {
        if !pairs.is_empty() {
            let flag = format!("--{}", path.replace('_', "-"));
            *contact = Some(apply_contact(
                contact.take().unwrap_or_default(),
                pairs,
                &flag,
            )?);
            paths.push(path.to_owned());
        }
    }
    if let Some(source) = args.data_source {
        profile.data_source = source.into();
        paths.push("data_source".to_owned());
    }
    if let Some(duns) = args.duns_number {
        profile.duns_number = duns;
        paths.push("duns_number".to_owned());
    }
    if let Some(etag) = args.etag {
        profile.etag = etag;
    }
    Ok((profile, paths))
}

/// Prints the server's warnings about accepted values on stderr.
pub fn warn(warnings: &[String]) {
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
}
