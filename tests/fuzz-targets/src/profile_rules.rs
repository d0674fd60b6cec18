//! Profile's legal-profile rules (legal name, address, registration id,
//! contacts, data source) on a whole profile. Input: one field a line —
//! legal name, line1, line2, city, state, postal code, country, registration
//! id, given name, middle name, family name, email, phone, data source
//! (`MANUAL`, `DUNS` or a number), DUNS number; missing lines are empty.
//!
//! Property: when the rules accept a profile, the form profile stores
//! (trimmed, country upper case) satisfies every field rule again, contains
//! no control character, and is accepted as it is.

use partnerhub_platform::validate::{self, Violations};
use partnerhub_profile::domain::{self, AddressDoc, ContactDoc};
use partnerhub_proto::profile::v1::{Address, Contact, DataSource, LegalProfile};

use crate::text;

/// Checks the profile read from `data`.
pub fn run(data: &[u8]) {
    let input = text(data);
    let mut lines = input.split('\n');
    let mut next = || lines.next().unwrap_or_default().to_owned();
    let legal_name = next();
    let address = Address {
        line1: next(),
        line2: next(),
        city: next(),
        state: next(),
        postal_code: next(),
        country: next(),
    };
    let registration_id = next();
    let contact = Contact {
        given_name: next(),
        middle_name: next(),
        family_name: next(),
        email: next(),
        phone: next(),
    };
    let data_source = match next().as_str() {
        "MANUAL" => DataSource::Manual as i32,
        "DUNS" => DataSource::Duns as i32,
        other => other.trim().parse().unwrap_or_default(),
    };
    let profile = LegalProfile {
        legal_name,
        address: Some(address),
        registration_id,
        primary_contact: Some(contact.clone()),
        legal_contact: Some(contact),
        data_source,
        duns_number: next(),
        ..LegalProfile::default()
    };
    let mut violations = Violations::new();
    domain::check_legal_profile("legal_profile", &profile, &mut violations);
    if violations.is_empty() {
        accepted(&profile);
    }
}

/// What must hold for a profile the rules accepted.
fn accepted(profile: &LegalProfile) {
    let name = profile.legal_name.trim();
    assert!(validate::text(name, 2, 200).is_ok(), "legal name {name:?}");
    assert!(validate::latin_text(name).is_ok(), "legal name {name:?}");

    let stored = AddressDoc::from(profile.address.as_ref().unwrap_or(&Address::default()));
    for (field, value, max) in [
        ("line1", &stored.line1, 200),
        ("line2", &stored.line2, 200),
        ("city", &stored.city, 100),
        ("state", &stored.state, 100),
        ("postal_code", &stored.postal_code, 20),
    ] {
        assert!(
            validate::text(value, 0, max).is_ok() && validate::latin_text(value).is_ok(),
            "stored address {field} {value:?}"
        );
    }
    assert!(
        domain::is_country(&stored.country),
        "country {:?}",
        stored.country
    );
    let mut again = Violations::new();
    domain::check_address("address", Some(&Address::from(&stored)), &mut again);
    assert!(
        again.is_empty(),
        "the stored address is refused: {stored:?}"
    );

    let contact = ContactDoc::from(
        profile
            .primary_contact
            .as_ref()
            .unwrap_or(&Contact::default()),
    );
    for (field, value) in [
        ("given_name", &contact.given_name),
        ("middle_name", &contact.middle_name),
        ("family_name", &contact.family_name),
    ] {
        assert!(
            validate::text(value, 0, 50).is_ok() && validate::latin_text(value).is_ok(),
            "stored contact {field} {value:?}"
        );
    }
    assert!(
        validate::email(&contact.email).is_ok(),
        "{:?}",
        contact.email
    );
    assert!(
        !contact.email.chars().any(char::is_control),
        "email with a control character {:?}",
        contact.email
    );
    assert!(contact.phone.is_empty() || validate::e164_phone(&contact.phone).is_ok());
    let mut again = Violations::new();
    domain::check_contact("contact", Some(&Contact::from(&contact)), &mut again);
    assert!(
        again.is_empty(),
        "the stored contact is refused: {contact:?}"
    );

    let duns = profile.duns_number.trim();
    if profile.data_source == DataSource::Duns as i32 {
        assert!(duns.len() == 9 && duns.bytes().all(|b| b.is_ascii_digit()));
    } else {
        assert!(duns.is_empty(), "a DUNS number without data source DUNS");
    }
}
