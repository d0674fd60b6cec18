//! Valid requests built from the descriptor set and nothing else: every
//! resource-name field (`name`, `parent`, `account`, `check`, and any field
//! whose comment gives a pattern such as `accounts/{account}/locations/{l}`)
//! carries one owner's real resource names; other fields get plausible
//! values by their name, `request_id` is fresh, `update_mask` names one
//! field that is then filled. A field the builder does not know is reported,
//! never guessed, so a new RPC cannot slip through unfilled.

use std::collections::{BTreeMap, HashMap};

use prost_types::field_descriptor_proto::Type;
use prost_types::{DescriptorProto, FieldDescriptorProto};

use crate::rpcs::{Descriptors, Rpc, string_field, varint_field};

/// Whose resources the requests name.
#[derive(Debug, Clone, Default)]
pub struct Owner {
    /// Collection → id of one real resource of the owner (`accounts` → the
    /// account id, `locations` → a location id, `users` → a user id, ...).
    pub ids: HashMap<&'static str, String>,
    /// Values of non-resource fields that must be the owner's or another
    /// company's to be meaningful (`refresh_token`, `partner_id`).
    pub values: HashMap<&'static str, String>,
}

/// A request message for an RPC, and the resource-name fields it filled.
#[derive(Debug)]
pub struct Built {
    /// The encoded request.
    pub body: Vec<u8>,
    /// Paths of the fields that carry the owner's names, with their values.
    pub names: BTreeMap<String, String>,
}

/// Values of ordinary string fields, by field name (empty: left unset).
const TEXT: &[(&str, &str)] = &[
    ("display_name", "Probe"),
    ("email", "probe@example.com"),
    ("paypal_email", "probe@example.com"),
    ("alternate_email", "probe@example.com"),
    ("given_name", "Grace"),
    ("middle_name", ""),
    ("family_name", "Hopper"),
    ("legal_name", "Probe SAS"),
    ("business_name", "Probe Lyon"),
    ("line1", "2 Place Bellecour"),
    ("line2", ""),
    ("city", "Lyon"),
    ("state", ""),
    ("postal_code", "69002"),
    ("country", "FR"),
    ("bank_country", "FR"),
    ("phone", "+33123456789"),
    ("website", "https://example.com"),
    ("registration_id", ""),
    ("duns_number", ""),
    ("currency", "EUR"),
    ("po_number", "PO-1"),
    ("tax_id", ""),
    ("vat_id", ""),
    ("tax_identifier", "FR40303265045"),
    ("account_holder_name", "Probe SAS"),
    ("iban", "FR7630006000011234567890189"),
    ("account_number", ""),
    ("swift_bic", "BNPAFRPP"),
    ("domain", "probe.example.com"),
    ("role", "account_admin"),
    (
        "csv",
        "email,given_name,family_name,roles\nprobe@example.com,Grace,Hopper,account_admin\n",
    ),
    ("reason", "isolation probe"),
    ("comment", "isolation probe"),
    ("job_title", "Engineer"),
    ("email_language", "fr-FR"),
    ("locale", "fr-FR"),
    ("agreement", "microsoft_partner_agreement"),
    ("version", "1"),
    ("token", "isolation-probe-token"),
    ("operating_regions", "FR"),
    ("expansion_regions", "FR"),
    ("confirm_partner_id", "1234567"),
    ("tenant_id", "6f1c1a52-9a53-4c1e-8d8e-0d4f5f3b2a10"),
    ("publisher_id", "isolation-probe"),
];

/// Bool fields a valid request sets.
const TRUE: &[&str] = &["accept_agreement", "acknowledge_irreversible"];

/// The first backticked resource pattern in a comment
/// (`accounts/{account}/locations/{location}`).
fn pattern_in(comment: &str) -> Option<&str> {
    comment
        .split('`')
        .skip(1)
        .step_by(2)
        .find(|s| s.contains('/') && s.contains('{'))
}

/// The backticked words of a comment.
fn quoted(comment: &str) -> impl Iterator<Item = &str> {
    comment.split('`').skip(1).step_by(2)
}

/// Builds requests for one RPC at a time.
pub struct Builder<'a> {
    descriptors: &'a Descriptors,
    owner: &'a Owner,
    rpc: &'a Rpc,
    names: BTreeMap<String, String>,
    problems: Vec<String>,
}

impl<'a> Builder<'a> {
    /// A builder of `rpc`'s request naming `owner`'s resources.
    pub fn new(descriptors: &'a Descriptors, owner: &'a Owner, rpc: &'a Rpc) -> Self {
        Self {
            descriptors,
            owner,
            rpc,
            names: BTreeMap::new(),
            problems: Vec::new(),
        }
    }

    /// The request, or every field it could not fill.
    pub fn build(mut self) -> Result<Built, Vec<String>> {
        let body = self.message(&self.rpc.input.clone(), "", None);
        if self.problems.is_empty() {
            Ok(Built {
                body,
                names: self.names,
            })
        } else {
            Err(self.problems)
        }
    }

    /// Encodes `full` (at field path `at`), only its `name`, `etag` and
    /// `only` field when `only` is set (the resource of an update).
    fn message(&mut self, full: &str, at: &str, only: Option<&str>) -> Vec<u8> {
        let Ok(message) = self.descriptors.message(full).cloned() else {
            self.problems
                .push(format!("{at}: no descriptor for {full}"));
            return Vec::new();
        };
        let mask = self.update_mask(full, &message);
        let mut out = Vec::new();
        for field in &message.field {
            if only.is_some_and(|o| field.name() != o && field.name() != "name") {
                continue;
            }
            let path = if at.is_empty() {
                field.name().to_owned()
            } else {
                format!("{at}.{}", field.name())
            };
            let only_here = mask
                .as_ref()
                .filter(|(resource, _)| resource == field.name())
                .map(|(_, p)| p.clone());
            if field.type_name() == ".google.protobuf.FieldMask" {
                match &mask {
                    Some((_, p)) => {
                        let inner = string_field(1, p.as_bytes());
                        out.extend(string_field(field.number(), &inner));
                    }
                    None => self.problems.push(format!("{path}: no field to mask")),
                }
                continue;
            }
            out.extend(self.field(full, field, &path, only_here.as_deref()));
        }
        out
    }

    /// The (resource field, masked path) of a message with an update mask.
    fn update_mask(&mut self, full: &str, message: &DescriptorProto) -> Option<(String, String)> {
        let mask = message
            .field
            .iter()
            .find(|f| f.type_name() == ".google.protobuf.FieldMask")?;
        let resource = message.field.iter().find(|f| {
            f.r#type() == Type::Message && f.type_name() != ".google.protobuf.FieldMask"
        })?;
        let inner = self.descriptors.message(resource.type_name()).ok()?;
        let fields: Vec<&str> = inner.field.iter().map(FieldDescriptorProto::name).collect();
        let named = quoted(self.descriptors.comment(full, mask)).find(|w| fields.contains(w));
        let path = named.or_else(|| {
            fields
                .iter()
                .copied()
                .find(|f| !["name", "etag"].contains(f))
        })?;
        Some((resource.name().to_owned(), path.to_owned()))
    }

    /// The encoded occurrences of one field (none when it stays unset).
    fn field(
        &mut self,
        full: &str,
        field: &FieldDescriptorProto,
        path: &str,
        only: Option<&str>,
    ) -> Vec<u8> {
        let number = field.number();
        let comment = self.descriptors.comment(full, field).to_owned();
        let lower = comment.to_lowercase();
        if ["read-only", "output only", "output-only"]
            .iter()
            .any(|m| lower.contains(m))
        {
            return Vec::new();
        }
        match field.r#type() {
            Type::Message if field.type_name().starts_with(".google.protobuf.") => Vec::new(),
            Type::Message => {
                let inner = self.message(field.type_name(), path, only);
                string_field(number, &inner)
            }
            Type::String => match self.text(full, field, &comment, path) {
                Some(value) => string_field(number, value.as_bytes()),
                None => Vec::new(),
            },
            Type::Bytes if field.name() == "content" => string_field(number, b"%PDF-1.4\n%%EOF\n"),
            Type::Enum => varint_field(number, 1),
            Type::Bool if TRUE.contains(&field.name()) => varint_field(number, 1),
            Type::Int32 if field.name() == "page_size" => varint_field(number, 10),
            Type::Bool | Type::Int32 | Type::Int64 | Type::Double => Vec::new(),
            other => {
                self.problems
                    .push(format!("{path}: no value for a {other:?} field"));
                Vec::new()
            }
        }
    }

    /// The value of a string field; `None` leaves it unset.
    fn text(
        &mut self,
        full: &str,
        field: &FieldDescriptorProto,
        comment: &str,
        path: &str,
    ) -> Option<String> {
        let name = field.name();
        match name {
            "request_id" => return Some(uuid::Uuid::new_v4().to_string()),
            // Optional, and a company-wide role is limited to no location.
            "etag" | "page_token" | "locations" => return None,
            _ => {}
        }
        if let Some(value) = self.owner.values.get(name) {
            self.names.insert(path.to_owned(), value.clone());
            return Some(value.clone());
        }
        let pattern = pattern_in(comment)
            .map(str::to_owned)
            .or_else(|| self.implied_pattern(full, field, comment));
        if let Some(pattern) = pattern {
            let value = self.resource(&pattern, path)?;
            self.names.insert(path.to_owned(), value.clone());
            return Some(value);
        }
        match TEXT.iter().find(|(n, _)| *n == name) {
            Some((_, "")) => None,
            Some((_, value)) => Some((*value).to_owned()),
            None => {
                self.problems
                    .push(format!("{path}: no value for the string field `{name}`"));
                None
            }
        }
    }

    /// The pattern of a resource field whose comment gives none: `name` is
    /// the name of what the RPC returns; `check` is a `Check`'s name (but a
    /// field its comment calls an id, like a role id, is no name).
    fn implied_pattern(
        &self,
        full: &str,
        field: &FieldDescriptorProto,
        comment: &str,
    ) -> Option<String> {
        let package = full.rsplit_once('.').map(|(p, _)| p)?;
        let an_id = comment
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| w.eq_ignore_ascii_case("id"));
        if an_id && field.name() != "name" {
            return None;
        }
        let holder = match field.name() {
            "name" => self.rpc.output.clone(),
            other => {
                let mut camel = String::new();
                for part in other.split('_') {
                    let mut chars = part.chars();
                    if let Some(first) = chars.next() {
                        camel.extend(first.to_uppercase());
                        camel.push_str(chars.as_str());
                    }
                }
                format!("{package}.{camel}")
            }
        };
        if !self.descriptors.has_message(&holder) || holder == full {
            return None;
        }
        let message = self.descriptors.message(&holder).ok()?;
        let name = message.field.iter().find(|f| f.name() == "name")?;
        pattern_in(self.descriptors.comment(&holder, name)).map(str::to_owned)
    }

    /// `pattern` with each `{id}` replaced by the owner's id for the
    /// collection before it.
    fn resource(&mut self, pattern: &str, path: &str) -> Option<String> {
        let mut out = Vec::new();
        let mut collection = "";
        for segment in pattern.split('/') {
            if segment.starts_with('{') {
                let Some(id) = self.owner.ids.get(collection) else {
                    self.problems.push(format!(
                        "{path}: the owner has no `{collection}` for `{pattern}`"
                    ));
                    return None;
                };
                out.push(id.clone());
            } else {
                collection = segment;
                out.push(segment.to_owned());
            }
        }
        Some(out.join("/"))
    }
}
