//! Bank details: IBAN and SWIFT/BIC checks, account numbers, masking.

use iban::{Iban, IbanLike};

/// Parses an IBAN (spaces allowed) into its electronic form and country.
pub fn iban(value: &str) -> Result<(String, String), String> {
    let parsed: Iban = value
        .trim()
        .parse()
        .map_err(|_| "must be a valid IBAN (check digits and length of its country)".to_owned())?;
    Ok((
        parsed.electronic_str().to_owned(),
        parsed.country_code().to_owned(),
    ))
}

/// Checks a SWIFT/BIC code: 4 letters (bank), 2 letters (country), 2
/// letters or digits (location), optionally 3 more (branch). Returns its
/// country.
pub fn swift_bic(value: &str) -> Result<String, String> {
    let v = value.trim().to_uppercase();
    // ASCII first: the slices below are byte offsets.
    let ok = v.is_ascii()
        && (v.len() == 8 || v.len() == 11)
        && v[..6].bytes().all(|b| b.is_ascii_uppercase())
        && v[6..].bytes().all(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(v[4..6].to_owned())
    } else {
        Err("must be an 8 or 11 character SWIFT/BIC code such as BNPAFRPP".into())
    }
}

/// Checks a domestic account number: 4 to 34 letters and digits.
pub fn account_number(value: &str) -> Result<String, String> {
    let v: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    if (4..=34).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(v.to_uppercase())
    } else {
        Err("must be 4 to 34 letters and digits".into())
    }
}

/// Hides all but the last four characters.
pub fn mask(value: &str) -> String {
    let n = value.chars().count();
    let shown: String = value.chars().skip(n.saturating_sub(4)).collect();
    format!("{}{shown}", "*".repeat(n.saturating_sub(4).max(4)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ibans_are_checked_and_give_their_country() {
        assert_eq!(
            iban("FR76 3000 6000 0112 3456 7890 189"),
            Ok(("FR7630006000011234567890189".to_owned(), "FR".to_owned()))
        );
        assert!(iban("FR76 3000 6000 0112 3456 7890 188").is_err());
        assert!(iban("not an iban").is_err());
    }

    #[test]
    fn swift_codes_and_masks() {
        assert_eq!(swift_bic("bnpafrpp"), Ok("FR".to_owned()));
        assert_eq!(swift_bic("BNPAFRPPXXX"), Ok("FR".to_owned()));
        assert!(swift_bic("BNP1FRPP").is_err());
        // Multi-byte characters must be refused, not sliced through.
        assert!(swift_bic("AAAAAéA").is_err());
        assert!(swift_bic("BNPAFRéP").is_err());
        assert_eq!(
            mask("FR7630006000011234567890189"),
            "***********************0189"
        );
        assert_eq!(mask("12"), "****12");
        assert_eq!(
            account_number("0012 3456 789"),
            Ok("00123456789".to_owned())
        );
    }
}
