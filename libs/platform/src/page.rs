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

/// One keyset page of a list request: its size, where it starts, and how
/// to make the next page's token.
#[derive(Debug, Clone)]
pub struct Keyset<K> {
    /// Rows on the page.
    pub size: i64,
    /// The key after which the page starts (`None`: the first page).
    pub after: Option<K>,
    fingerprint: String,
}

impl<K: Serialize + DeserializeOwned> Keyset<K> {
    /// Reads `page_size` and `page_token` of a request whose filter is
    /// `filter`; problems are added to `violations` (fields `page_size` and
    /// `page_token`).
    pub fn read(
        violations: &mut crate::validate::Violations,
        page_size: i32,
        page_token: &str,
        filter: &[&str],
    ) -> Self {
        let size = self::page_size(page_size)
            .map_err(|e| violations.add("page_size", e))
            .unwrap_or(DEFAULT_PAGE_SIZE);
        let fingerprint = fingerprint(filter);
        let after = decode::<K>(page_token, &fingerprint)
            .map_err(|e| violations.add("page_token", e))
            .ok()
            .flatten();
        Self {
            size,
            after,
            fingerprint,
        }
    }

    /// Rows to fetch: one more than the page, to know whether another
    /// follows.
    pub fn limit(&self) -> i64 {
        self.size + 1
    }

    /// Cuts `rows` (fetched with [`Keyset::limit`]) to the page and returns
    /// the next page's token (empty on the last page).
    pub fn finish<T>(&self, rows: &mut Vec<T>, key: impl Fn(&T) -> K) -> String {
        let size = usize::try_from(self.size).unwrap_or(0);
        let more = rows.len() > size;
        rows.truncate(size);
        match (more, rows.last()) {
            (true, Some(last)) => encode(&key(last), &self.fingerprint),
            _ => String::new(),
        }
    }
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
    fn a_keyset_pages_and_refuses_foreign_tokens() {
        let mut v = crate::validate::Violations::new();
        let first = Keyset::<i64>::read(&mut v, 2, "", &["a"]);
        assert!(v.is_empty() && first.after.is_none());
        let mut rows = vec![1, 2, 3];
        let token = first.finish(&mut rows, |r| *r);
        assert_eq!(rows, vec![1, 2]);
        let second = Keyset::<i64>::read(&mut v, 2, &token, &["a"]);
        assert_eq!(second.after, Some(2));
        let mut last = vec![3];
        assert_eq!(second.finish(&mut last, |r| *r), "");
        let foreign = Keyset::<i64>::read(&mut v, -1, &token, &["b"]);
        assert!(foreign.after.is_none());
        assert_eq!(v.into_vec().len(), 2, "page_size and page_token");
    }

    #[test]
    fn page_size_defaults_and_clamps() {
        assert_eq!(page_size(0), Ok(DEFAULT_PAGE_SIZE));
        assert_eq!(page_size(1000), Ok(MAX_PAGE_SIZE));
        assert!(page_size(-1).is_err());
    }
}
