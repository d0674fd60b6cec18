//! Company registration ids: required in some countries, each with the id
//! types accepted there (named in the error so the caller knows what to
//! enter).

/// Countries where a registration id is required, with the accepted types.
const REQUIRED: &[(&str, &str)] = &[
    ("AM", "INN, VAT number or public service number"),
    ("AZ", "TIN or INN"),
    ("BY", "UNP (9 characters)"),
    ("BR", "CNPJ"),
    ("HU", "TIN"),
    ("IN", "tax ID or PAN"),
    ("IQ", "TIN"),
    ("KZ", "BIN or IIN"),
    ("KG", "INN"),
    ("MD", "IDNO (fiscal code) or IDNP"),
    ("MM", "TIN"),
    ("PL", "TIN or PESEL"),
    ("RU", "INN"),
    ("SA", "TIN"),
    ("ZA", "TRN"),
    ("SS", "TIN"),
    ("TJ", "INN, EIN or KPP"),
    ("TH", "TIN"),
    ("TR", "TIN or NIN"),
    ("UA", "EDRPOU"),
    ("AE", "tax ID or VAT number"),
    ("UZ", "INN"),
    ("VE", "RIF"),
    ("VN", "TIN"),
];

/// The accepted id types when `country` requires a registration id.
pub fn required_type(country: &str) -> Option<&'static str> {
    REQUIRED
        .iter()
        .find(|(c, _)| *c == country)
        .map(|(_, t)| *t)
}

/// Checks a registration id for `country`.
pub fn check(country: &str, id: &str) -> Result<(), String> {
    let id = id.trim();
    if id.is_empty() {
        return match required_type(country) {
            Some(kind) => Err(format!(
                "is required in {country}: enter the company's {kind}"
            )),
            None => Ok(()),
        };
    }
    let ok = (2..=30).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '/' | ' '));
    if ok {
        Ok(())
    } else {
        Err("must be 2 to 30 letters, digits, spaces, dots, dashes or slashes".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_countries_name_the_accepted_id() {
        let err = check("RU", "").err().unwrap_or_default();
        assert!(err.contains("INN"), "{err}");
        assert!(check("UA", "").err().unwrap_or_default().contains("EDRPOU"));
        assert!(check("BR", "").err().unwrap_or_default().contains("CNPJ"));
        assert!(check("MD", "").err().unwrap_or_default().contains("IDNO"));
        assert!(check("FR", "").is_ok());
        assert!(check("RU", "7707083893").is_ok());
        assert!(check("FR", "<script>").is_err());
    }
}
