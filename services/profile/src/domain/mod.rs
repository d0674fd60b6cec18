//! Profile's rules, without I/O: what a valid address, contact and legal
//! name are, which countries need which registration id, and how programs
//! are shown.

pub mod bank;
pub mod names;
pub mod programs;
pub mod registration;

use partnerhub_platform::validate::{self, Violations};
use partnerhub_proto::profile::v1::{Address, Contact, DataSource, LegalProfile};
use serde::{Deserialize, Serialize};

/// An address as stored (JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressDoc {
    /// Street line.
    pub line1: String,
    /// Second line.
    #[serde(default)]
    pub line2: String,
    /// City.
    pub city: String,
    /// State or region.
    #[serde(default)]
    pub state: String,
    /// Postal code.
    #[serde(default)]
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
}

/// A contact as stored (JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactDoc {
    /// First name.
    pub given_name: String,
    /// Middle name.
    #[serde(default)]
    pub middle_name: String,
    /// Last name.
    pub family_name: String,
    /// Email.
    pub email: String,
    /// E.164 phone.
    #[serde(default)]
    pub phone: String,
}

impl From<&Address> for AddressDoc {
    fn from(a: &Address) -> Self {
        Self {
            line1: a.line1.trim().to_owned(),
            line2: a.line2.trim().to_owned(),
            city: a.city.trim().to_owned(),
            state: a.state.trim().to_owned(),
            postal_code: a.postal_code.trim().to_owned(),
            country: a.country.trim().to_uppercase(),
        }
    }
}

impl From<&AddressDoc> for Address {
    fn from(a: &AddressDoc) -> Self {
        Self {
            line1: a.line1.clone(),
            line2: a.line2.clone(),
            city: a.city.clone(),
            state: a.state.clone(),
            postal_code: a.postal_code.clone(),
            country: a.country.clone(),
        }
    }
}

impl From<&Contact> for ContactDoc {
    fn from(c: &Contact) -> Self {
        Self {
            given_name: c.given_name.trim().to_owned(),
            middle_name: c.middle_name.trim().to_owned(),
            family_name: c.family_name.trim().to_owned(),
            email: c.email.trim().to_owned(),
            phone: c.phone.trim().to_owned(),
        }
    }
}

impl From<&ContactDoc> for Contact {
    fn from(c: &ContactDoc) -> Self {
        Self {
            given_name: c.given_name.clone(),
            middle_name: c.middle_name.clone(),
            family_name: c.family_name.clone(),
            email: c.email.clone(),
            phone: c.phone.clone(),
        }
    }
}

/// Whether `code` is an ISO 3166-1 alpha-2 country.
pub fn is_country(code: &str) -> bool {
    code.len() == 2 && isocountry::CountryCode::for_alpha2(code).is_ok()
}

/// Checks an address under `field`.
pub fn check_address(field: &str, address: Option<&Address>, v: &mut Violations) {
    let Some(a) = address else {
        v.add(field, "is required");
        return;
    };
    let mut text = |name: &str, value: &str, min: usize, max: usize| {
        let at = format!("{field}.{name}");
        let value = value.trim();
        match validate::text(value, min, max) {
            Err(e) => v.add(at, e),
            Ok(()) if !value.is_empty() => v.check(&at, validate::latin_text(value)),
            Ok(()) => {}
        }
    };
    text("line1", &a.line1, 1, 200);
    text("line2", &a.line2, 0, 200);
    text("city", &a.city, 1, 100);
    text("state", &a.state, 0, 100);
    text("postal_code", &a.postal_code, 0, 20);
    if !is_country(&a.country.trim().to_uppercase()) {
        v.add(
            format!("{field}.country"),
            "must be an ISO 3166-1 alpha-2 country code such as FR",
        );
    }
}

/// Checks a contact under `field`.
pub fn check_contact(field: &str, contact: Option<&Contact>, v: &mut Violations) {
    let Some(c) = contact else {
        v.add(field, "is required");
        return;
    };
    let mut name = |part: &str, value: &str, min: usize| {
        let at = format!("{field}.{part}");
        let value = value.trim();
        match validate::text(value, min, 50) {
            Err(e) => v.add(at, e),
            Ok(()) if !value.is_empty() => v.check(&at, validate::latin_text(value)),
            Ok(()) => {}
        }
    };
    name("given_name", &c.given_name, 1);
    name("middle_name", &c.middle_name, 0);
    name("family_name", &c.family_name, 1);
    v.check(&format!("{field}.email"), validate::email(c.email.trim()));
    if !c.phone.trim().is_empty() {
        v.check(
            &format!("{field}.phone"),
            validate::e164_phone(c.phone.trim()),
        );
    }
}

/// Stored form of a data source (unset means manual entry).
pub fn data_source_text(source: i32) -> &'static str {
    match DataSource::try_from(source) {
        Ok(DataSource::Duns) => "DUNS",
        _ => "MANUAL",
    }
}

/// Checks a whole legal profile (as at enrollment) under `field`; returns
/// the warnings of accepted values.
pub fn check_legal_profile(field: &str, p: &LegalProfile, v: &mut Violations) -> Vec<String> {
    let warnings = check_legal_name(&format!("{field}.legal_name"), &p.legal_name, v);
    check_address(&format!("{field}.address"), p.address.as_ref(), v);
    let country = p
        .address
        .as_ref()
        .map(|a| a.country.trim().to_uppercase())
        .unwrap_or_default();
    check_registration(
        &format!("{field}.registration_id"),
        &country,
        &p.registration_id,
        v,
    );
    check_contact(
        &format!("{field}.primary_contact"),
        p.primary_contact.as_ref(),
        v,
    );
    for (name, contact) in [
        ("legal_contact", &p.legal_contact),
        ("security_contact", &p.security_contact),
        ("company_approver", &p.company_approver),
    ] {
        if contact.is_some() {
            check_contact(&format!("{field}.{name}"), contact.as_ref(), v);
        }
    }
    check_source(field, p.data_source, &p.duns_number, v);
    warnings
}

/// Checks a legal name; returns its warnings.
pub fn check_legal_name(field: &str, name: &str, v: &mut Violations) -> Vec<String> {
    match names::check_company_name(name) {
        Ok(w) => w,
        Err(e) => {
            v.add(field, e);
            Vec::new()
        }
    }
}

/// Checks a registration id against the country's requirement.
pub fn check_registration(field: &str, country: &str, id: &str, v: &mut Violations) {
    if is_country(country) {
        v.check(field, registration::check(country, id));
    }
}

/// Checks the data source and its DUNS number.
pub fn check_source(field: &str, source: i32, duns: &str, v: &mut Violations) {
    let duns = duns.trim();
    match DataSource::try_from(source) {
        Ok(DataSource::Duns) => {
            if duns.len() != 9 || !duns.bytes().all(|b| b.is_ascii_digit()) {
                v.add(
                    format!("{field}.duns_number"),
                    "must be the 9-digit DUNS number when data_source is DUNS",
                );
            }
        }
        Ok(_) => {
            if !duns.is_empty() {
                v.add(format!("{field}.duns_number"), "only with data_source DUNS");
            }
        }
        Err(_) => v.add(format!("{field}.data_source"), "is not a data source"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address() -> Address {
        Address {
            line1: "1 Rue de Rivoli".into(),
            line2: String::new(),
            city: "Paris".into(),
            state: String::new(),
            postal_code: "75001".into(),
            country: "fr".into(),
        }
    }

    #[test]
    fn addresses_are_checked_field_by_field() {
        let mut v = Violations::new();
        check_address("address", Some(&address()), &mut v);
        assert!(v.is_empty(), "{:?}", v.into_vec());
        let bad = Address {
            line1: String::new(),
            city: "Ἀθῆναι".into(),
            country: "XX".into(),
            line2: "x".repeat(201),
            ..address()
        };
        let mut v = Violations::new();
        check_address("address", Some(&bad), &mut v);
        let fields: Vec<_> = v.into_vec().into_iter().map(|f| f.field).collect();
        assert_eq!(
            fields,
            [
                "address.line1",
                "address.line2",
                "address.city",
                "address.country"
            ]
        );
        assert_eq!(AddressDoc::from(&address()).country, "FR");
    }

    #[test]
    fn contacts_need_names_and_an_email() {
        let mut v = Violations::new();
        let c = Contact {
            given_name: "Ada".into(),
            middle_name: String::new(),
            family_name: String::new(),
            email: "ada@".into(),
            phone: "0612".into(),
        };
        check_contact("primary_contact", Some(&c), &mut v);
        let fields: Vec<_> = v.into_vec().into_iter().map(|f| f.field).collect();
        assert_eq!(
            fields,
            [
                "primary_contact.family_name",
                "primary_contact.email",
                "primary_contact.phone"
            ]
        );
    }
}
