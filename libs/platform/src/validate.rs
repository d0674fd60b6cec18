//! Request validation that collects every violation before answering, so the
//! caller fixes a request in one round trip.

use crate::error::{FieldViolation, invalid_argument};
use tonic::Status;

/// Collects field violations; `finish` turns them into INVALID_ARGUMENT.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    /// No violation yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a violation.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    /// Records a violation when `check` returns one.
    pub fn check(&mut self, field: &str, check: Result<(), String>) {
        if let Err(description) = check {
            self.add(field, description);
        }
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when nothing was recorded, else INVALID_ARGUMENT with all of them.
    pub fn finish(self) -> Result<(), Status> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(invalid_argument(self.0))
        }
    }

    /// The violations recorded so far.
    pub fn into_vec(self) -> Vec<FieldViolation> {
        self.0
    }
}

/// Required text of `min..=max` characters (not bytes), without control
/// characters.
pub fn text(value: &str, min: usize, max: usize) -> Result<(), String> {
    let len = value.chars().count();
    if len == 0 && min > 0 {
        return Err("is required".into());
    }
    if len < min || len > max {
        return Err(format!("must be {min} to {max} characters (got {len})"));
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    if value.trim() != value {
        return Err("must not start or end with spaces".into());
    }
    Ok(())
}

/// An email address (RFC 5322 addr-spec, at most 254 characters, with a
/// domain that has a dot).
pub fn email(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("is required".into());
    }
    if value.len() > 254 {
        return Err("must be at most 254 characters".into());
    }
    // RFC 5322 allows a tab inside a quoted local part; an address ends up in
    // mail headers and logs, so no control character is accepted.
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    let parsed = email_address::EmailAddress::parse_with_options(
        value,
        email_address::Options::default().without_display_text(),
    )
    .map_err(|e| format!("must be an email address ({e})"))?;
    if !parsed.domain().contains('.') {
        return Err("must be an email address with a full domain".into());
    }
    Ok(())
}

/// An `https` URL with a host, written as it is meant: `https://` first, no
/// space or control character anywhere. The value is kept as given, so it
/// must not rely on what the URL parser repairs (it drops tabs, newlines and
/// surrounding spaces, and reads `https:host` as `https://host`).
pub fn https_url(value: &str) -> Result<(), String> {
    if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must be a URL without spaces or control characters".into());
    }
    if !value
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
    {
        return Err("must be an https:// URL with a host".into());
    }
    let url = url::Url::parse(value).map_err(|e| format!("must be a URL ({e})"))?;
    if url.scheme() != "https" || url.host_str().is_none() {
        return Err("must be an https:// URL with a host".into());
    }
    Ok(())
}

/// An E.164 phone number: `+` then 8 to 15 digits, no leading zero.
pub fn e164_phone(value: &str) -> Result<(), String> {
    let digits = value.strip_prefix('+').unwrap_or("");
    let ok = (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if ok {
        Ok(())
    } else {
        Err("must be an E.164 phone number such as +33123456789".into())
    }
}

/// Text in Western European (Latin) script: Latin letters with their accents,
/// digits, spaces and common punctuation.
pub fn latin_text(value: &str) -> Result<(), String> {
    let ok = value.chars().all(|c| {
        c.is_ascii_graphic()
            || c == ' '
            || ('\u{00C0}'..='\u{024F}').contains(&c) && c != '\u{00D7}' && c != '\u{00F7}'
    });
    if ok {
        Ok(())
    } else {
        Err("must use Western European (Latin) characters only".into())
    }
}

/// The id part of a resource name `prefix/{id}`: a UUID-shaped id, or an
/// error that says what was expected.
pub fn resource_id<'a>(name: &'a str, prefix: &str) -> Result<&'a str, String> {
    let expected = || format!("must be a resource name `{prefix}/{{id}}`");
    let id = name
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('/'))
        .ok_or_else(expected)?;
    if uuid::Uuid::try_parse(id).is_err() {
        return Err(expected());
    }
    Ok(id)
}

/// Splits `accounts/{a}/<suffix>` and returns `{a}`.
pub fn account_of<'a>(name: &'a str, suffix: &str) -> Result<&'a str, String> {
    let expected = || format!("must be a resource name `accounts/{{account}}/{suffix}`");
    let rest = name.strip_prefix("accounts/").ok_or_else(expected)?;
    let (id, tail) = rest.split_once('/').ok_or_else(expected)?;
    if tail != suffix || uuid::Uuid::try_parse(id).is_err() {
        return Err(expected());
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_counts_characters_and_refuses_controls() {
        assert!(text("Zoë", 1, 3).is_ok());
        assert!(text("", 1, 3).is_err());
        assert!(text("a\u{0}b", 1, 10).is_err());
        assert!(text(" padded", 1, 10).is_err());
        assert!(text(&"x".repeat(51), 1, 50).is_err());
    }

    #[test]
    fn email_needs_a_full_domain() {
        assert!(email("ada@contoso.com").is_ok());
        assert!(email("ada@localhost").is_err());
        assert!(email("Ada <ada@contoso.com>").is_err());
        assert!(email("not an email").is_err());
        // Found by fuzzing: a tab inside a quoted local part.
        assert!(email("\"\t\"@c.m").is_err());
        assert!(email("\"ada lovelace\"@contoso.com").is_ok());
    }

    #[test]
    fn latin_text_refuses_other_scripts() {
        assert!(latin_text("Société Générale S.A.").is_ok());
        assert!(latin_text("Яндекс").is_err());
        assert!(latin_text("株式会社").is_err());
    }

    #[test]
    fn phone_and_url() {
        assert!(e164_phone("+33123456789").is_ok());
        assert!(e164_phone("0123456789").is_err());
        assert!(https_url("https://contoso.com").is_ok());
        assert!(https_url("http://contoso.com").is_err());
        // Found by fuzzing: what the URL parser would repair is refused.
        assert!(https_url("https:1").is_err());
        assert!(https_url("https://contoso.com/\0").is_err());
        assert!(https_url(" https://contoso.com").is_err());
        assert!(https_url("https://contoso.com/a\tb").is_err());
        assert!(https_url("HTTPS://contoso.com").is_ok());
    }

    #[test]
    fn resource_names() {
        let id = uuid::Uuid::now_v7().to_string();
        assert_eq!(
            resource_id(&format!("users/{id}"), "users"),
            Ok(id.as_str())
        );
        assert!(resource_id("users/x' OR 1=1", "users").is_err());
        let name = format!("accounts/{id}/legalProfile");
        assert_eq!(account_of(&name, "legalProfile"), Ok(id.as_str()));
        assert!(account_of(&name, "other").is_err());
    }
}
