//! Arguments several commands share: paging, idempotency keys, addresses,
//! contacts, role assignments, resource names, passwords.

use std::io::{BufRead, IsTerminal};

use clap::Args;
use partnerhub_proto::identity::v1::RoleAssignment;
use partnerhub_proto::profile::v1::{Address, Contact};

use crate::error::{CliError, CliResult};

/// Holds the password when `--password-stdin` is not given.
pub const PASSWORD_ENV: &str = "PARTNERCTL_PASSWORD";

/// Paging of a list.
#[derive(Debug, Clone, Args)]
pub struct Paging {
    /// At most this many entries.
    #[arg(long)]
    pub page_size: Option<i32>,
    /// The page after the one that printed this token.
    #[arg(long, default_value = "")]
    pub page_token: String,
}

impl Paging {
    /// The page size (0: the server's default).
    pub fn size(&self) -> i32 {
        self.page_size.unwrap_or(0)
    }
}

/// The idempotency key of a create or custom verb.
#[derive(Debug, Clone, Args)]
pub struct Idempotency {
    /// Idempotency key; a fresh UUID when not given. Repeating a call with
    /// the same key returns the first answer.
    #[arg(long)]
    pub request_id: Option<String>,
}

impl Idempotency {
    /// The key to send.
    pub fn key(&self) -> String {
        self.request_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
    }
}

/// Address fields; only those given change.
#[derive(Debug, Clone, Default, Args)]
pub struct AddressArgs {
    /// Street line.
    #[arg(long)]
    pub line1: Option<String>,
    /// Second address line.
    #[arg(long)]
    pub line2: Option<String>,
    /// City.
    #[arg(long)]
    pub city: Option<String>,
    /// State or region.
    #[arg(long)]
    pub state: Option<String>,
    /// Postal code.
    #[arg(long)]
    pub postal_code: Option<String>,
    /// Country, ISO 3166-1 alpha-2 (`FR`).
    #[arg(long)]
    pub country: Option<String>,
}

impl AddressArgs {
    /// Whether any field is given.
    pub fn any(&self) -> bool {
        [
            &self.line1,
            &self.line2,
            &self.city,
            &self.state,
            &self.postal_code,
            &self.country,
        ]
        .iter()
        .any(|f| f.is_some())
    }

    /// `address` with the given fields replaced.
    pub fn apply(&self, mut address: Address) -> Address {
        let set = |field: &mut String, value: &Option<String>| {
            if let Some(v) = value {
                field.clone_from(v);
            }
        };
        set(&mut address.line1, &self.line1);
        set(&mut address.line2, &self.line2);
        set(&mut address.city, &self.city);
        set(&mut address.state, &self.state);
        set(&mut address.postal_code, &self.postal_code);
        set(&mut address.country, &self.country);
        address
    }
}

/// `contact` with `KEY=VALUE` pairs applied (keys `given_name`,
/// `middle_name`, `family_name`, `email`, `phone`).
pub fn apply_contact(mut contact: Contact, pairs: &[String], flag: &str) -> CliResult<Contact> {
    for pair in pairs {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| CliError::usage(format!("{flag} takes KEY=VALUE, got {pair:?}")))?;
        let field = match key.trim() {
            "given_name" => &mut contact.given_name,
            "middle_name" => &mut contact.middle_name,
            "family_name" => &mut contact.family_name,
            "email" => &mut contact.email,
            "phone" => &mut contact.phone,
            other => {
                return Err(CliError::usage(format!(
                    "{flag}: unknown key {other:?} (given_name, middle_name, family_name, email, phone)"
                )));
            }
        };
        *field = value.to_owned();
    }
    Ok(contact)
}

/// Parses `role` or `role:location,location` into a role assignment.
pub fn role(spec: &str) -> Result<RoleAssignment, String> {
    let (role, locations) = match spec.split_once(':') {
        Some((role, locations)) => (
            role,
            locations
                .split(',')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        None => (spec, Vec::new()),
    };
    if role.trim().is_empty() {
        return Err("a role id is needed (see `partnerctl roles list`)".into());
    }
    Ok(RoleAssignment {
        role: role.trim().to_owned(),
        locations,
    })
}

/// Parses a protobuf enum value given without its prefix and in any case
/// (`active` for `MEMBER_STATE_ACTIVE`).
pub fn enum_value<E>(
    text: &str,
    prefix: &str,
    from_str_name: fn(&str) -> Option<E>,
) -> Result<E, String> {
    let upper = text.trim().to_uppercase().replace('-', "_");
    from_str_name(&format!("{prefix}{upper}"))
        .or_else(|| from_str_name(&upper))
        .ok_or_else(|| format!("unknown value {text:?}"))
}

/// `id` as a resource name under `parent/collection`, unless it already is
/// a full name (has a `/`).
pub fn name_under(parent: &str, collection: &str, id: &str) -> String {
    if id.contains('/') {
        id.to_owned()
    } else {
        format!("{parent}/{collection}/{id}")
    }
}

/// The password: the first line of stdin with `--password-stdin`, else
/// `$PARTNERCTL_PASSWORD`, else a prompt on the terminal.
pub fn password(from_stdin: bool, prompt: &str) -> CliResult<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let password = line.trim_end_matches(['\r', '\n']).to_owned();
        if password.is_empty() {
            return Err(CliError::usage("--password-stdin: stdin had no password"));
        }
        return Ok(password);
    }
    if let Ok(password) = std::env::var(PASSWORD_ENV)
        && !password.is_empty()
    {
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::usage(format!(
            "no password: use --password-stdin or {PASSWORD_ENV}"
        )));
    }
    Ok(rpassword::prompt_password(prompt)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_may_name_its_locations() -> Result<(), String> {
        assert_eq!(role("owner")?.role, "owner");
        let scoped = role("referrals_user:l1,l2")?;
        assert_eq!(scoped.role, "referrals_user");
        assert_eq!(scoped.locations, ["l1", "l2"]);
        assert!(role(":l1").is_err());
        Ok(())
    }

    #[test]
    fn contact_pairs_change_only_their_fields() -> CliResult {
        let contact = Contact {
            given_name: "Ada".into(),
            email: "ada@contoso.com".into(),
            ..Contact::default()
        };
        let changed = apply_contact(contact, &["email=ada@fabrikam.com".into()], "--contact")?;
        assert_eq!(changed.given_name, "Ada");
        assert_eq!(changed.email, "ada@fabrikam.com");
        assert!(apply_contact(Contact::default(), &["nope".into()], "--contact").is_err());
        Ok(())
    }
}
