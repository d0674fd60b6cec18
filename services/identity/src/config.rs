//! Identity's settings.

use std::time::Duration;

use base64::Engine;
use partnerhub_platform::ServiceSettings;
use partnerhub_platform::config::{ConfigError, Env, parse};

/// Identity's default port.
pub const DEFAULT_PORT: u16 = 50051;

/// Everything identity needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address, database, bus, limits.
    pub service: ServiceSettings,
    /// Lifetime of access tokens (`PARTNERHUB_IDENTITY_ACCESS_TOKEN_TTL_SECS`).
    pub access_token_ttl: Duration,
    /// How long a signing key signs before a new one replaces it
    /// (`PARTNERHUB_IDENTITY_KEY_ROTATION_DAYS`).
    pub key_rotation: Duration,
    /// Key that seals signing keys at rest
    /// (`PARTNERHUB_IDENTITY_KEY_ENCRYPTION_KEY`, base64 of 32 bytes). When
    /// unset, a random one is made per process: fine for one laptop process,
    /// not for replicas, which could not use each other's keys.
    pub key_encryption_key: Option<[u8; 32]>,
}

impl Config {
    /// Reads the settings.
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let service = ServiceSettings::from_env("identity", DEFAULT_PORT, env)?;
        let ttl = parse(env, "PARTNERHUB_IDENTITY_ACCESS_TOKEN_TTL_SECS", 900u64)?;
        let rotation_days = parse(env, "PARTNERHUB_IDENTITY_KEY_ROTATION_DAYS", 30u64)?;
        let key_encryption_key = match env.get("PARTNERHUB_IDENTITY_KEY_ENCRYPTION_KEY") {
            None => None,
            Some(b64) => Some(decode_key(&b64).ok_or_else(|| ConfigError {
                variable: "PARTNERHUB_IDENTITY_KEY_ENCRYPTION_KEY".into(),
                problem: "must be the base64 encoding of exactly 32 bytes".into(),
            })?),
        };
        Ok(Self {
            service,
            access_token_ttl: Duration::from_secs(ttl.clamp(60, 3600)),
            key_rotation: Duration::from_secs(rotation_days.max(1) * 86_400),
            key_encryption_key,
        })
    }
}

fn decode_key(b64: &str) -> Option<[u8; 32]> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    bytes.try_into().ok()
}
