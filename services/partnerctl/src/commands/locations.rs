//! Business locations of the active account.

use clap::{Args, Subcommand};
use partnerhub_proto::profile::v1::{
    AddLocationRequest, DeleteLocationRequest, GetLocationRequest, ListLocationsRequest, Location,
    UpdateLocationRequest, location_service_client::LocationServiceClient,
};

use crate::client::{Context, rpc};
use crate::commands::args::{AddressArgs, Idempotency, Paging, apply_contact, name_under};
use crate::error::{CliError, CliResult};
use crate::output::Column;

/// `partnerctl locations …`.
#[derive(Debug, Subcommand)]
pub enum LocationsCommand {
    /// List the locations, headquarters first.
    List {
        /// Paging.
        #[command(flatten)]
        paging: Paging,
    },
    /// Show one location.
    Get {
        /// Location id or `accounts/{a}/locations/{l}`.
        location: String,
    },
    /// Add a location (it gets its own partner id).
    Add {
        /// Business name, address and contact.
        #[command(flatten)]
        fields: LocationFields,
        /// Idempotency.
        #[command(flatten)]
        idempotency: Idempotency,
    },
    /// Change the fields given.
    Update {
        /// Location id or `accounts/{a}/locations/{l}`.
        location: String,
        /// New values.
        #[command(flatten)]
        fields: LocationFields,
        /// The etag read before (default: the one read now).
        #[arg(long)]
        etag: Option<String>,
    },
    /// Delete a location (never the last one).
    Delete {
        /// Location id or `accounts/{a}/locations/{l}`.
        location: String,
        /// The location's partner id, typed to confirm.
        #[arg(long)]
        confirm_partner_id: String,
        /// If given, must be the current etag.
        #[arg(long, default_value = "")]
        etag: String,
    },
}

/// The editable fields of a location.
#[derive(Debug, Args)]
pub struct LocationFields {
    /// Business name.
    #[arg(long)]
    pub business_name: Option<String>,
    /// Address fields.
    #[command(flatten)]
    pub address: AddressArgs,
    /// Contact field, `KEY=VALUE` (given_name, middle_name, family_name,
    /// email, phone; repeatable).
    #[arg(long = "contact", value_name = "KEY=VALUE")]
    pub contact: Vec<String>,
}

impl LocationFields {
    /// `location` with these values, and the mask naming them.
    fn apply(self, mut location: Location) -> CliResult<(Location, Vec<String>)> {
        let mut paths = Vec::new();
        if let Some(name) = self.business_name {
            location.business_name = name;
            paths.push("business_name".to_owned());
        }
        if self.address.any() {
            location.address = Some(self.address.apply(location.address.unwrap_or_default()));
            paths.push("address".to_owned());
        }
        if !self.contact.is_empty() {
            let contact = location.contact.take().unwrap_or_default();
            location.contact = Some(apply_contact(contact, &self.contact, "--contact")?);
            paths.push("contact".to_owned());
        }
        Ok((location, paths))
    }
}

const LOCATIONS: &[Column] = &[
    ("ID", "name|id"),
    ("PARTNER ID", "partner_id"),
    ("BUSINESS NAME", "business_name"),
    ("CITY", "address.city"),
    ("COUNTRY", "address.country"),
    ("HQ", "headquarters"),
];

/// Runs a locations command.
pub async fn run(ctx: &mut Context, command: LocationsCommand) -> CliResult {
    let account = ctx.account()?;
    let name = |id: &str| name_under(&account, "locations", id);
    match command {
        LocationsCommand::List { paging } => {
            let request = ListLocationsRequest {
                parent: account.clone(),
                page_size: paging.size(),
                page_token: paging.page_token,
            };
            let response =
                rpc!(ctx, Profile, LocationServiceClient::list_locations, request).await?;
            ctx.printer.list(&response, "locations", LOCATIONS)
        }
        LocationsCommand::Get { location } => {
            let request = GetLocationRequest {
                name: name(&location),
            };
            let location = rpc!(ctx, Profile, LocationServiceClient::get_location, request).await?;
            ctx.printer.item(&location)
        }
        LocationsCommand::Add {
            fields,
            idempotency,
        } => {
            let (location, _) = fields.apply(Location::default())?;
            let request = AddLocationRequest {
                parent: account.clone(),
                location: Some(location),
                request_id: idempotency.key(),
            };
            let added = rpc!(ctx, Profile, LocationServiceClient::add_location, request).await?;
            ctx.printer.item(&added)
        }
        LocationsCommand::Update {
            location,
            fields,
            etag,
        } => {
            let request = GetLocationRequest {
                name: name(&location),
            };
            let current = rpc!(ctx, Profile, LocationServiceClient::get_location, request).await?;
            let (mut location, paths) = fields.apply(current)?;
            if paths.is_empty() {
                return Err(CliError::usage(
                    "nothing to change: give at least one field flag",
                ));
            }
            if let Some(etag) = etag {
                location.etag = etag;
            }
            let request = UpdateLocationRequest {
                location: Some(location),
                update_mask: Some(prost_types::FieldMask { paths }),
            };
            let updated = rpc!(
                ctx,
                Profile,
                LocationServiceClient::update_location,
                request
            )
            .await?;
            ctx.printer.item(&updated)
        }
        LocationsCommand::Delete {
            location,
            confirm_partner_id,
            etag,
        } => {
            let request = DeleteLocationRequest {
                name: name(&location),
                confirm_partner_id,
                etag,
            };
            let done = rpc!(
                ctx,
                Profile,
                LocationServiceClient::delete_location,
                request
            )
            .await?;
            ctx.printer.done(&done, &format!("Deleted {location}."))
        }
    }
}
