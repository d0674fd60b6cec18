//! Tokens already verified, by SHA-256 of the token, until they expire: a
//! client sends the same access token with every call for up to its
//! lifetime, so the signature needs checking once, not per call.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::caller::Caller;
use super::token::Claims;

/// A verified token's claims and the caller they describe (built once).
#[derive(Debug)]
struct Entry {
    claims: Claims,
    caller: Caller,
    /// The key that verified it.
    kid: String,
}

/// Verified claims by token hash, bounded in size.
#[derive(Debug)]
pub(crate) struct VerifiedTokens {
    entries: Mutex<HashMap<[u8; 32], Entry>>,
    capacity: usize,
    /// Seconds a token stays acceptable after its `exp` (the verifier's
    /// leeway).
    leeway: i64,
}

impl VerifiedTokens {
    /// A cache of at most `capacity` tokens.
    pub(crate) fn new(capacity: usize, leeway: u64) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity,
            leeway: i64::try_from(leeway).unwrap_or(0),
        }
    }

    /// `read` of the entry of `token` if it was verified and has not
    /// expired.
    fn live<T>(&self, token: &str, read: impl FnOnce(&Entry) -> T) -> Option<T> {
        let key = digest(token);
        let now = now();
        let mut entries = self.entries.lock().ok()?;
        let entry = entries.get(&key)?;
        if entry.claims.exp + self.leeway < now {
            entries.remove(&key);
            return None;
        }
        Some(read(entry))
    }

    /// The claims of `token` if it was verified and has not expired.
    pub(crate) fn get(&self, token: &str) -> Option<Claims> {
        self.live(token, |e| e.claims.clone())
    }

    /// The caller of `token` if it was verified and has not expired (shared,
    /// not rebuilt).
    pub(crate) fn caller(&self, token: &str) -> Option<Caller> {
        self.live(token, |e| e.caller.clone())
    }

    /// Remembers the verified `claims` of `token` and returns their caller.
    /// When full, drops the expired entries, and everything if none had
    /// expired.
    pub(crate) fn insert(&self, token: &str, claims: &Claims, kid: String) -> Caller {
        let caller = Caller::from_claims(claims.clone());
        let Ok(mut entries) = self.entries.lock() else {
            return caller;
        };
        if entries.len() >= self.capacity {
            let now = now();
            entries.retain(|_, e| e.claims.exp + self.leeway >= now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(
            digest(token),
            Entry {
                claims: claims.clone(),
                caller: caller.clone(),
                kid,
            },
        );
        caller
    }

    /// Keeps only the tokens verified with a key `keep` accepts (the key
    /// set was reloaded: a key that is gone takes its tokens with it, the
    /// others stay verified).
    pub(crate) fn retain_keys(&self, keep: impl Fn(&str) -> bool) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, e| keep(&e.kid));
        }
    }

    /// Whether `token` is remembered (tests).
    #[cfg(test)]
    pub(crate) fn holds(&self, token: &str) -> bool {
        self.entries
            .lock()
            .map(|e| e.contains_key(&digest(token)))
            .unwrap_or(false)
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::PrincipalKind;

    fn claims(exp: i64) -> Claims {
        Claims {
            iss: "i".into(),
            aud: "a".into(),
            sub: "s".into(),
            kind: PrincipalKind::User,
            acc: None,
            roles: vec![],
            scopes: Default::default(),
            dom: String::new(),
            pcr: false,
            sid: String::new(),
            perms: vec![],
            pv: 0,
            iat: 0,
            exp,
            jti: "j".into(),
        }
    }

    #[test]
    fn a_verified_token_is_remembered_until_it_expires() {
        let cache = VerifiedTokens::new(10, 30);
        let live = claims(now() + 60);
        cache.insert("live", &live, "k1".into());
        cache.insert("expired", &claims(now() - 31), "k1".into());
        assert_eq!(cache.get("live"), Some(live));
        let caller = cache.caller("live").map(|c| c.subject.clone());
        assert_eq!(caller.as_deref(), Some("s"));
        assert!(cache.caller("expired").is_none());
        assert_eq!(cache.get("expired"), None);
        assert_eq!(cache.get("never seen"), None);
        cache.retain_keys(|kid| kid == "k1");
        assert!(cache.get("live").is_some());
        cache.retain_keys(|kid| kid == "k2");
        assert_eq!(cache.get("live"), None);
    }

    #[test]
    fn the_cache_stays_within_its_capacity() {
        let cache = VerifiedTokens::new(3, 0);
        for i in 0..10 {
            cache.insert(&format!("t{i}"), &claims(now() + 60), "k".into());
        }
        let held = cache.entries.lock().map(|e| e.len()).unwrap_or(usize::MAX);
        assert!(held <= 3, "{held} entries");
        assert!(cache.get("t9").is_some());
    }
}
