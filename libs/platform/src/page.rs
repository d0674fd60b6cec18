//! Opaque keyset page tokens. A token carries the last key of the previous
//! page and a fingerprint of the filter it was made for, so it cannot be
//! replayed against another query; a malformed or foreign token is
//! INVALID_ARGUMENT, never an internal error.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

/// Default page size when the request says 0.
pub const DEFAULT_PAGE_SIZE: i64 = 25;
/// Largest page size; larger requests are clamped.
pub const MAX_PAGE_SIZE: i64 = 100;

#[derive(Serialize, Deserialize)]
struct Envelope<K> {
    /// Last key of the previous page.
    k: K,
    /// Filter fingerprint.
    f: String,
}

/// The page size to use: 0 means the default, larger than the maximum is
/// clamped, negative is refused.
pub fn page_size(requested: i32) -> Result<i64, String> {
    match requested {
        n if n < 0 => Err("must not be negative".into()),
        0 => Ok(DEFAULT_PAGE_SIZE),
        n => Ok(i64::from(n).min(MAX_PAGE_SIZE)),
    }
}

/// Fingerprint of the parts of a request that must not change between pages.
pub fn fingerprint(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    URL_SAFE_NO_PAD.encode(&hash.finalize()[..12])
}

/// Encodes the key after which the next page starts.
pub fn encode<K: Serialize>(last_key: &K, fingerprint: &str) -> String {
    let envelope = Envelope {
        k: last_key,
        f: fingerprint.to_owned(),
    };
    // Serialising plain keys (strings, numbers, tuples of them) cannot fail.
    let json = serde_json::to_vec(&envelope).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// Decodes a page token: `None` for the first page (empty token).
pub fn decode<K: DeserializeOwned>(token: &str, fingerprint: &str) -> Result<Option<K>, String> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || "is not a page token of this request; start again from the first page";
    if token.len() > 1024 {
        return Err(invalid().into());
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let envelope: Envelope<K> = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if envelope.f != fingerprint {
        return Err(invalid().into());
    }
    Ok(Some(envelope.k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_foreign_tokens() {
        let f = fingerprint(&["accounts/a", "role=admin"]);
        let token = encode(&("2026-01-01T00:00:00Z", "id-7"), &f);
        let key: Option<(String, String)> = decode(&token, &f).ok().flatten();
        assert_eq!(key, Some(("2026-01-01T00:00:00Z".into(), "id-7".into())));
        let other = fingerprint(&["accounts/b", "role=admin"]);
        assert!(decode::<(String, String)>(&token, &other).is_err());
        assert!(decode::<(String, String)>("%%%", &f).is_err());
        assert!(decode::<(String, String)>("", &f).ok().flatten().is_none());
    }

    #[test]
    fn page_size_defaults_and_clamps() {
        assert_eq!(page_size(0), Ok(DEFAULT_PAGE_SIZE));
        assert_eq!(page_size(1000), Ok(MAX_PAGE_SIZE));
        assert!(page_size(-1).is_err());
    }
}
