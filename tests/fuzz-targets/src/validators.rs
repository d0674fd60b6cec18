//! The field validators of the platform and the services: the first byte
//! picks one, the rest is its input. Each accepted value is checked for the
//! shape the validator promises, so a validator that lets through what it
//! should refuse (a control character in an email, a phone without `+`, a
//! resource name with a foreign prefix) is a finding.

use partnerhub_identity::domain as identity;
use partnerhub_platform::{page, validate};
use partnerhub_profile::domain::{bank, names, registration};
use partnerhub_proto::identity::v1::SignUpRequest;
use partnerhub_verification::directory;
use prost::Message;

use crate::{selector, split_once, text};

/// Runs one validator on `data`.
pub fn run(data: &[u8]) {
    let (which, rest) = selector(data);
    match which % 17 {
        0 => text_limits(rest),
        1 => email(&text(rest)),
        2 => https_url(&text(rest)),
        3 => phone(&text(rest)),
        4 => latin(&text(rest)),
        5 => resource_id(&text(rest)),
        6 => account_of(&text(rest)),
        7 => page_size(rest),
        8 => password(&text(rest)),
        9 => sign_up(rest),
        10 => company_name(&text(rest)),
        11 => registration_id(&text(rest)),
        12 => iban(&text(rest)),
        13 => swift_bic(&text(rest)),
        14 => account_number(&text(rest)),
        15 => mask(&text(rest)),
        _ => duns(&text(rest)),
    }
}

/// No control character (CR and LF included): accepted text ends up in mail
/// headers, logs and CSV exports.
fn assert_no_controls(what: &str, value: &str) {
    assert!(
        !value.chars().any(char::is_control),
        "{what} accepted a control character: {value:?}"
    );
}

fn text_limits(data: &[u8]) {
    let (min, max, value) = match data {
        [min, max, value @ ..] => (usize::from(*min), usize::from(*max), text(value)),
        _ => return,
    };
    if validate::text(&value, min, max).is_ok() {
        let len = value.chars().count();
        assert!(
            (min..=max).contains(&len),
            "text length {len} outside {min}..={max}"
        );
        assert_no_controls("text", &value);
        assert_eq!(value.trim(), value, "text accepted surrounding spaces");
    }
}

fn email(value: &str) {
    if validate::email(value).is_ok() {
        assert!(value.len() <= 254, "email longer than 254 bytes");
        assert_no_controls("email", value);
        let (_, domain) = value
            .rsplit_once('@')
            .unwrap_or_else(|| panic!("email without @ accepted: {value:?}"));
        assert!(
            domain.contains('.'),
            "email without a full domain: {value:?}"
        );
    }
}

fn https_url(value: &str) {
    if validate::https_url(value).is_ok() {
        assert_no_controls("https_url", value);
        assert!(
            !value.chars().any(char::is_whitespace),
            "https_url accepted a space: {value:?}"
        );
        assert!(
            value
                .get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://")),
            "https_url accepted {value:?}"
        );
    }
}

fn phone(value: &str) {
    if validate::e164_phone(value).is_ok() {
        let digits = value
            .strip_prefix('+')
            .unwrap_or_else(|| panic!("phone without + accepted: {value:?}"));
        assert!((8..=15).contains(&digits.len()) && !digits.starts_with('0'));
        assert!(digits.bytes().all(|b| b.is_ascii_digit()), "{value:?}");
    }
}

fn latin(value: &str) {
    if validate::latin_text(value).is_ok() {
        assert_no_controls("latin_text", value);
        assert!(
            value.chars().all(|c| c.is_ascii() || c.is_alphabetic()),
            "latin_text accepted a non-ASCII sign that is not a letter: {value:?}"
        );
    }
}

/// Input: `prefix\nname`.
fn resource_id(input: &str) {
    let (prefix, name) = split_once(input, '\n');
    if let Ok(id) = validate::resource_id(name, prefix) {
        assert_eq!(format!("{prefix}/{id}"), name);
        assert!(uuid::Uuid::try_parse(id).is_ok(), "{id:?} is not a UUID");
    }
}

/// Input: `suffix\nname`.
fn account_of(input: &str) {
    let (suffix, name) = split_once(input, '\n');
    if let Ok(id) = validate::account_of(name, suffix) {
        assert_eq!(format!("accounts/{id}/{suffix}"), name);
        assert!(uuid::Uuid::try_parse(id).is_ok(), "{id:?} is not a UUID");
    }
}

fn page_size(data: &[u8]) {
    let mut bytes = [0u8; 4];
    for (b, d) in bytes.iter_mut().zip(data) {
        *b = *d;
    }
    let requested = i32::from_le_bytes(bytes);
    match page::page_size(requested) {
        Ok(size) => assert!((1..=page::MAX_PAGE_SIZE).contains(&size) && requested >= 0),
        Err(_) => assert!(requested < 0),
    }
}

fn password(value: &str) {
    if identity::password(value).is_ok() {
        assert!((12..=128).contains(&value.chars().count()));
    }
}

fn sign_up(data: &[u8]) {
    let Ok(request) = SignUpRequest::decode(data) else {
        return;
    };
    if identity::check_sign_up(&request).is_ok() {
        email(&request.email);
        assert!(validate::text(&request.given_name, 1, 50).is_ok());
        assert!(validate::text(&request.family_name, 1, 50).is_ok());
        assert!(identity::password(&request.password).is_ok());
        assert!(request.locale.is_empty() || identity::LOCALES.contains(&request.locale.as_str()));
    }
}

fn company_name(value: &str) {
    if names::check_company_name(value).is_ok() {
        let name = value.trim();
        assert!((2..=200).contains(&name.chars().count()), "{name:?}");
        latin(name);
        assert!(name.chars().any(char::is_alphanumeric), "{name:?}");
    }
}

/// Input: `country\nid`.
fn registration_id(input: &str) {
    let (country, id) = split_once(input, '\n');
    if registration::check(country, id).is_ok() {
        let id = id.trim();
        if id.is_empty() {
            assert!(registration::required_type(country).is_none());
        } else {
            assert!((2..=30).contains(&id.len()), "{id:?}");
            assert_no_controls("registration id", id);
        }
    }
}

fn iban(value: &str) {
    if let Ok((electronic, country)) = bank::iban(value) {
        assert!(
            electronic
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
            "{electronic:?}"
        );
        assert!(
            electronic.starts_with(&country),
            "{electronic:?} {country:?}"
        );
        assert_eq!(
            bank::iban(&electronic).ok(),
            Some((electronic.clone(), country)),
            "the electronic form of an IBAN is not accepted as it is"
        );
    }
}

fn swift_bic(value: &str) {
    if let Ok(country) = bank::swift_bic(value) {
        assert!(
            country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase()),
            "{country:?}"
        );
    }
}

fn account_number(value: &str) {
    if let Ok(number) = bank::account_number(value) {
        assert!((4..=34).contains(&number.len()), "{number:?}");
        assert_eq!(bank::account_number(&number).ok(), Some(number.clone()));
    }
}

fn mask(value: &str) {
    let masked = bank::mask(value);
    let shown: String = masked.trim_start_matches('*').to_owned();
    let n = value.chars().count();
    let tail: String = value.chars().skip(n.saturating_sub(4)).collect();
    assert!(
        masked.ends_with(&tail) && masked.chars().count() >= 4 + tail.chars().count(),
        "mask({value:?}) = {masked:?}"
    );
    assert!(
        shown.chars().count() <= 4,
        "mask({value:?}) shows {shown:?}"
    );
}

fn duns(value: &str) {
    if let Ok(digits) = directory::parse_duns(value) {
        assert!(digits.len() == 9 && digits.bytes().all(|b| b.is_ascii_digit()));
    }
}
