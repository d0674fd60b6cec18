//! Page tokens, with the key types the services page by: `Uuid`,
//! `(DateTime<Utc>, Uuid)` and `(bool, DateTime<Utc>, Uuid)`. The first byte
//! picks the mode:
//!
//! - 0: the rest is a token from a client; what decodes re-encodes to a
//!   token that decodes to the same key, and never matches another filter;
//! - 1: the rest makes a key (16 bytes of UUID, 8 of seconds, 4 of
//!   nanoseconds, 1 of flag); decode(encode(key)) == key, and the token is
//!   short enough to be accepted back;
//! - 2: page size (4 bytes), then `token\nfilter`, through `Keyset::read`.

use chrono::{DateTime, Utc};
use partnerhub_platform::page::{self, Keyset};
use partnerhub_platform::validate::Violations;
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::{selector, split_once, text};

type Timed = (DateTime<Utc>, Uuid);
type Flagged = (bool, DateTime<Utc>, Uuid);

/// Runs one mode on `data`.
pub fn run(data: &[u8]) {
    let (mode, rest) = selector(data);
    match mode % 3 {
        0 => {
            let token = text(rest);
            from_client::<Uuid>(&token);
            from_client::<Timed>(&token);
            from_client::<Flagged>(&token);
        }
        1 => from_key(rest),
        _ => keyset(rest),
    }
}

/// The filter fingerprint that client tokens (mode 0) must carry.
pub fn fingerprint() -> String {
    page::fingerprint(&[
        "accounts/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        "state=ACTIVE",
    ])
}

fn from_client<K: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(token: &str) {
    let f = fingerprint();
    let Ok(Some(key)) = page::decode::<K>(token, &f) else {
        return;
    };
    assert!(
        token.len() <= 1024,
        "a token of {} bytes was accepted",
        token.len()
    );
    let again = page::encode(&key, &f);
    assert_eq!(
        page::decode::<K>(&again, &f).ok().flatten().as_ref(),
        Some(&key),
        "the key of {token:?} does not survive re-encoding"
    );
    let other = page::fingerprint(&["accounts/other"]);
    assert!(
        page::decode::<K>(token, &other).is_err(),
        "{token:?} was accepted for another filter"
    );
}

/// Reads a fixed-size array from the front of `data`, zero-padded.
fn take<const N: usize>(data: &mut &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let n = data.len().min(N);
    out[..n].copy_from_slice(&data[..n]);
    *data = &data[n..];
    out
}

fn from_key(mut data: &[u8]) {
    let id = Uuid::from_bytes(take::<16>(&mut data));
    let secs = i64::from_le_bytes(take::<8>(&mut data));
    let nanos = u32::from_le_bytes(take::<4>(&mut data));
    let flag = take::<1>(&mut data)[0] & 1 == 1;
    round_trip(&id);
    if let Some(time) = DateTime::<Utc>::from_timestamp(secs, nanos) {
        round_trip(&(time, id));
        round_trip(&(flag, time, id));
    }
}

fn round_trip<K: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(key: &K) {
    let f = fingerprint();
    let token = page::encode(key, &f);
    assert!(!token.is_empty(), "{key:?} encodes to the first page");
    let decoded = page::decode::<K>(&token, &f);
    assert_eq!(
        decoded.as_ref().ok().and_then(Option::as_ref),
        Some(key),
        "{key:?} does not survive its token {token:?}: {decoded:?}"
    );
}

fn keyset(mut data: &[u8]) {
    let size = i32::from_le_bytes(take::<4>(&mut data));
    let input = text(data);
    let (token, filter) = split_once(&input, '\n');
    let mut violations = Violations::new();
    let page = Keyset::<Timed>::read(&mut violations, size, token, &[filter]);
    assert!((1..=page::MAX_PAGE_SIZE).contains(&page.size));
    assert_eq!(page.limit(), page.size + 1);
    assert!(
        page.after.is_none() || !token.is_empty(),
        "a key without a token"
    );
    if violations.is_empty() {
        assert_eq!(page.after.is_some(), !token.is_empty(), "token {token:?}");
    }
}
