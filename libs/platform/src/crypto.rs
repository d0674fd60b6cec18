//! Encryption of sensitive values at rest: AES-256-GCM under keys from
//! configuration, each with an id stored beside the ciphertext so keys can
//! rotate (new writes use the active key; old rows stay readable while their
//! key is configured).

use std::collections::HashMap;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;

/// Seals and opens values with a keyring.
#[derive(Clone)]
pub struct Sealer {
    active: String,
    keys: HashMap<String, Aes256Gcm>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("Sealer")
            .field("active", &self.active)
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl Sealer {
    /// Parses `kid:base64key[,kid:base64key…]`; the first key is the active
    /// one. Each key is 32 bytes.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut keys = HashMap::new();
        let mut active = None;
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (kid, b64) = part.split_once(':').ok_or("each key is `id:base64`")?;
            let kid = kid.trim();
            if kid.is_empty() || kid.len() > 32 {
                return Err("key ids are 1 to 32 characters".into());
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| format!("key {kid} is not base64"))?;
            let key: [u8; 32] = bytes
                .try_into()
                .map_err(|_| format!("key {kid} must be 32 bytes"))?;
            keys.insert(kid.to_owned(), Aes256Gcm::new(&Key::<Aes256Gcm>::from(key)));
            active.get_or_insert_with(|| kid.to_owned());
        }
        let active = active.ok_or("no key given")?;
        Ok(Self { active, keys })
    }

    /// A keyring of one key.
    pub fn single(id: &str, key: [u8; 32]) -> Self {
        Self {
            active: id.to_owned(),
            keys: HashMap::from([(id.to_owned(), Aes256Gcm::new(&Key::<Aes256Gcm>::from(key)))]),
        }
    }

    /// A fresh random 256-bit key.
    pub fn random_key() -> [u8; 32] {
        Aes256Gcm::generate_key(&mut OsRng).into()
    }

    /// Seals `plain`, bound to `context` (for example the row's id, so a
    /// ciphertext cannot be moved to another row); returns the key id and
    /// `nonce || ciphertext`.
    pub fn seal(&self, plain: &[u8], context: &[u8]) -> Result<(String, Vec<u8>), String> {
        let cipher = self.keys.get(&self.active).ok_or("active key missing")?;
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain,
                    aad: context,
                },
            )
            .map_err(|_| "encryption failed")?;
        let mut out = nonce.to_vec();
        out.extend(sealed);
        Ok((self.active.clone(), out))
    }

    /// Opens what [`Sealer::seal`] made; `None` when the key is unknown or
    /// the data or context were altered.
    pub fn open(&self, kid: &str, sealed: &[u8], context: &[u8]) -> Option<Vec<u8>> {
        let cipher = self.keys.get(kid)?;
        if sealed.len() < 12 {
            return None;
        }
        let (nonce, data) = sealed.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().ok()?;
        cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: data,
                    aad: context,
                },
            )
            .ok()
    }
}

/// A 256-bit random token (base64url): reset, invitation and email tokens.
pub fn token() -> String {
    use aes_gcm::aead::rand_core::RngCore;
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The stored form of a token: SHA-256. Tokens are high-entropy, so a fast
/// hash is enough (passwords use argon2id).
pub fn token_hash(token: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "k2:HxwdHhscGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=";

    #[test]
    fn values_round_trip_and_are_bound_to_their_context() -> Result<(), String> {
        let sealer = Sealer::parse(K1)?;
        let (kid, sealed) = sealer.seal(b"FR7630006000011234567890189", b"row-1")?;
        assert_eq!(kid, "k1");
        assert!(!sealed.windows(5).any(|w| w == b"FR763"));
        assert_eq!(
            sealer.open(&kid, &sealed, b"row-1").as_deref(),
            Some(&b"FR7630006000011234567890189"[..])
        );
        assert_eq!(sealer.open(&kid, &sealed, b"row-2"), None);
        Ok(())
    }

    #[test]
    fn rotation_keeps_old_rows_readable() -> Result<(), String> {
        let (kid, bytes) = Sealer::parse(K1)?.seal(b"secret", b"c")?;
        let rotated = Sealer::parse(&format!("{K2},{K1}"))?;
        assert_eq!(
            rotated.open(&kid, &bytes, b"c").as_deref(),
            Some(&b"secret"[..])
        );
        assert_eq!(rotated.seal(b"x", b"c")?.0, "k2");
        assert!(Sealer::parse("k1:c2hvcnQ=").is_err());
        assert!(Sealer::parse("").is_err());
        Ok(())
    }
}
