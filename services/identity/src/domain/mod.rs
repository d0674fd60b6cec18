//! Identity's rules, without I/O: what a valid sign-up is, how emails
//! compare, who may assign which role, bulk import, lock-out, secrets.

pub mod authority;
pub mod csv_import;
pub mod lockout;
pub mod secrets;

use partnerhub_platform::error::FieldViolation;
use partnerhub_platform::validate::{self, Violations};
use partnerhub_proto::identity::v1::SignUpRequest;

/// Locales the product speaks.
pub const LOCALES: &[&str] = &["en-US", "fr-FR"];

/// The form of an email used for uniqueness: trimmed and lower-cased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Password policy: 12 to 128 characters, not only letters or only digits.
pub fn password(value: &str) -> Result<(), String> {
    let len = value.chars().count();
    if !(12..=128).contains(&len) {
        return Err(format!("must be 12 to 128 characters (got {len})"));
    }
    if value.chars().all(char::is_alphabetic) || value.chars().all(|c| c.is_ascii_digit()) {
        return Err("must mix letters with digits or symbols".into());
    }
    Ok(())
}

/// Checks a sign-up request; returns every violation.
pub fn check_sign_up(req: &SignUpRequest) -> Result<(), Vec<FieldViolation>> {
    let mut v = Violations::new();
    v.check("email", validate::email(&req.email));
    v.check("given_name", validate::text(&req.given_name, 1, 50));
    v.check("family_name", validate::text(&req.family_name, 1, 50));
    v.check("password", password(&req.password));
    if !req.account_display_name.is_empty() {
        v.check(
            "account_display_name",
            validate::text(&req.account_display_name, 1, 100),
        );
    }
    if !req.locale.is_empty() && !LOCALES.contains(&req.locale.as_str()) {
        v.add("locale", format!("must be one of {}", LOCALES.join(", ")));
    }
    if v.is_empty() {
        Ok(())
    } else {
        Err(v.into_vec())
    }
}

/// The account name used when the request gives none: the email's domain.
pub fn default_display_name(email: &str) -> String {
    email
        .rsplit_once('@')
        .map(|(_, domain)| domain.to_owned())
        .unwrap_or_else(|| email.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_up_reports_every_invalid_field() {
        let req = SignUpRequest {
            email: "nope".into(),
            given_name: String::new(),
            family_name: "x".repeat(51),
            password: "short".into(),
            account_display_name: String::new(),
            locale: "de-DE".into(),
        };
        let fields: Vec<_> = check_sign_up(&req)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(
            fields,
            ["email", "given_name", "family_name", "password", "locale"]
        );
    }

    #[test]
    fn emails_compare_case_insensitively() {
        assert_eq!(normalize_email(" Ada@Contoso.COM "), "ada@contoso.com");
        assert_eq!(default_display_name("ada@contoso.com"), "contoso.com");
    }

    #[test]
    fn weak_passwords_are_refused() {
        assert!(password("onlyletterslong").is_err());
        assert!(password("123456789012").is_err());
        assert!(password("letters and 1 digit").is_ok());
    }
}
