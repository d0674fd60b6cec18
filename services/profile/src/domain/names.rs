//! Legal and business names: Latin script, refused when they cannot be a
//! company's name, accepted with a warning when they look like a mistake.

/// Legal-form abbreviations that are not a name on their own.
const LEGAL_FORMS: &[&str] = &[
    "llc",
    "inc",
    "ltd",
    "limited",
    "corp",
    "corporation",
    "co",
    "company",
    "plc",
    "gmbh",
    "ag",
    "sa",
    "sas",
    "sarl",
    "sasu",
    "eurl",
    "srl",
    "spa",
    "bv",
    "nv",
    "ab",
    "as",
    "oy",
    "kk",
    "pty",
    "llp",
    "lp",
    "pc",
    "kg",
    "ohg",
    "se",
    "sl",
    "sal",
];

/// Top-level domains that make a name look like a web address.
const DOMAIN_ENDINGS: &[&str] = &[
    ".com", ".net", ".org", ".io", ".co", ".biz", ".info", ".fr", ".de", ".uk", ".eu", ".us",
    ".app", ".dev", ".ai", ".es", ".it", ".nl", ".ca",
];

/// Refuses names that cannot be a company's (with the reason), and returns
/// warnings for names that are accepted but look wrong.
pub fn check_company_name(name: &str) -> Result<Vec<String>, String> {
    let name = name.trim();
    partnerhub_platform::validate::text(name, 1, 200)?;
    partnerhub_platform::validate::latin_text(name)?;
    let meaningful: Vec<char> = name.chars().filter(|c| c.is_alphanumeric()).collect();
    if meaningful.is_empty() {
        return Err("must contain letters or digits, not only punctuation or spaces".into());
    }
    if name.chars().count() == 1 {
        return Err("must be more than one character".into());
    }
    let bare = name
        .trim_matches(|c: char| !c.is_alphanumeric())
        .replace('.', "")
        .to_lowercase();
    if LEGAL_FORMS.contains(&bare.as_str()) {
        return Err(format!("{name:?} is a legal form, not a company name"));
    }
    let mut warnings = Vec::new();
    let lower = name.to_lowercase();
    if DOMAIN_ENDINGS.iter().any(|d| lower.ends_with(d)) {
        warnings.push(format!(
            "{name:?} ends like a web domain: make sure it is the registered company name, which is used to approve the account"
        ));
    }
    let chars: Vec<char> = lower.chars().collect();
    if chars
        .windows(3)
        .any(|w| w[0] == w[1] && w[1] == w[2] && !w[0].is_whitespace())
    {
        warnings.push(format!(
            "{name:?} repeats a character three times: make sure the company name is correct"
        ));
    }
    let words: Vec<&str> = name.split_whitespace().collect();
    if words.len() >= 3 && words.iter().all(|w| w.chars().count() == 1) {
        warnings.push(format!(
            "{name:?} is spaced single characters: make sure the company name is correct"
        ));
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impossible_names_are_refused() {
        for name in ["A", "--", "   ", "LLC", "Inc.", "g.m.b.h", "Ἀθηνᾶ"] {
            assert!(check_company_name(name).is_err(), "{name}");
        }
    }

    #[test]
    fn doubtful_names_are_accepted_with_a_warning() {
        assert_eq!(check_company_name("Contoso Ltd").map(|w| w.len()), Ok(0));
        assert_eq!(check_company_name("contoso.com").map(|w| w.len()), Ok(1));
        assert_eq!(check_company_name("Studio 999").map(|w| w.len()), Ok(1));
        assert_eq!(check_company_name("A B C").map(|w| w.len()), Ok(1));
        assert_eq!(
            check_company_name("Société Générale").map(|w| w.len()),
            Ok(0)
        );
    }
}
