//! The secrets a story used, in every form they could leak in, and the
//! search for them.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};

/// One secret and the byte strings that would reveal it.
#[derive(Clone)]
pub struct Secret {
    /// What kind of secret (`password`, `access token`, …).
    pub kind: &'static str,
    /// Which one, for the report (never the value).
    pub label: String,
    forms: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the value, not even in a failing test.
        write!(f, "{} {}", self.kind, self.label)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Secret {
    /// A secret typed or sent as text (password, token, bank number): the
    /// text itself and its bytes in hex (how PostgreSQL prints `bytea`).
    pub fn text(kind: &'static str, label: impl Into<String>, value: &str) -> Self {
        Self {
            kind,
            label: label.into(),
            forms: vec![
                value.as_bytes().to_vec(),
                hex(value.as_bytes()).into_bytes(),
            ],
        }
    }

    /// A JWT: the whole token and its signature (header and claims are not
    /// secret on their own).
    pub fn jwt(kind: &'static str, label: impl Into<String>, token: &str) -> Self {
        let mut secret = Self::text(kind, label, token);
        if let Some((_, signature)) = token.rsplit_once('.') {
            secret.forms.push(signature.as_bytes().to_vec());
        }
        secret
    }

    /// Key material: the raw bytes, base64 (padded or not, standard or URL
    /// alphabet) and hex.
    pub fn key(kind: &'static str, label: impl Into<String>, raw: &[u8]) -> Self {
        let forms = [
            raw.to_vec(),
            STANDARD.encode(raw).into_bytes(),
            STANDARD_NO_PAD.encode(raw).into_bytes(),
            URL_SAFE_NO_PAD.encode(raw).into_bytes(),
            hex(raw).into_bytes(),
            hex(raw).to_uppercase().into_bytes(),
        ];
        Self {
            kind,
            label: label.into(),
            forms: forms.into_iter().collect(),
        }
    }

    /// The shortest form, so a test can refuse trivial needles.
    pub fn shortest_form(&self) -> usize {
        self.forms.iter().map(Vec::len).min().unwrap_or(0)
    }

    /// Whether `haystack` reveals this secret.
    pub fn found_in(&self, haystack: &[u8]) -> bool {
        self.forms.iter().any(|form| contains(haystack, form))
    }
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Where each secret was found: `(secret label, place)`.
pub fn hits<'a>(
    secrets: &[Secret],
    places: impl IntoIterator<Item = (String, &'a [u8])>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (place, haystack) in places {
        for secret in secrets.iter().filter(|s| s.found_in(haystack)) {
            out.push((format!("{} {}", secret.kind, secret.label), place.clone()));
        }
    }
    out
}

/// Every run of `width` digits inside the digits of `value` (for a bank
/// number: no stored text may hold any of them).
pub fn digit_windows(value: &str, width: usize) -> Vec<String> {
    let digits: Vec<char> = value.chars().filter(char::is_ascii_digit).collect();
    digits.windows(width).map(|w| w.iter().collect()).collect()
}
