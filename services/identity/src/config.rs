//! Identity's settings.

use std::num::NonZeroU32;
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
    /// Lifetime of a refresh token (`PARTNERHUB_IDENTITY_REFRESH_TOKEN_TTL_DAYS`).
    pub refresh_token_ttl: Duration,
    /// Lifetime of password-reset tokens.
    pub reset_token_ttl: Duration,
    /// Lifetime of invitation tokens.
    pub invitation_ttl: Duration,
    /// Service accounts (`PARTNERHUB_IDENTITY_SERVICE_ACCOUNTS`, a JSON array,
    /// or `PARTNERHUB_IDENTITY_SERVICE_ACCOUNTS_FILE`, a path to one).
    pub service_accounts: Vec<ServiceAccount>,
    /// Users an account may create with temporary passwords per hour
    /// (CreateUser and BulkCreateUsers rows; each costs an argon2 hash),
    /// all of them at once if it likes
    /// (`PARTNERHUB_IDENTITY_CREATED_USERS_PER_HOUR`).
    pub created_users_per_hour: NonZeroU32,
}

/// Default of [`Config::created_users_per_hour`]: two full CSV imports.
pub const DEFAULT_CREATED_USERS_PER_HOUR: u32 = 200;

/// A service account provisioned by configuration.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ServiceAccount {
    /// Client id.
    pub client_id: String,
    /// argon2id PHC string of the client secret (never the secret itself).
    pub secret_hash: String,
    /// Platform permissions (`platform.*`).
    pub permissions: Vec<String>,
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
        let refresh_days = parse(env, "PARTNERHUB_IDENTITY_REFRESH_TOKEN_TTL_DAYS", 30u64)?;
        let created_users_per_hour = NonZeroU32::new(parse(
            env,
            "PARTNERHUB_IDENTITY_CREATED_USERS_PER_HOUR",
            DEFAULT_CREATED_USERS_PER_HOUR,
        )?)
        .ok_or_else(|| ConfigError {
            variable: "PARTNERHUB_IDENTITY_CREATED_USERS_PER_HOUR".into(),
            problem: "must be at least 1".into(),
        })?;
        Ok(Self {
            service,
            access_token_ttl: Duration::from_secs(ttl.clamp(60, 3600)),
            key_rotation: Duration::from_secs(rotation_days.max(1) * 86_400),
            key_encryption_key,
            refresh_token_ttl: Duration::from_secs(refresh_days.clamp(1, 365) * 86_400),
            reset_token_ttl: Duration::from_secs(3600),
            invitation_ttl: Duration::from_secs(7 * 86_400),
            service_accounts: service_accounts(env)?,
            created_users_per_hour,
        })
    }
}

fn service_accounts(env: &dyn Env) -> Result<Vec<ServiceAccount>, ConfigError> {
    let (variable, json) = if let Some(json) = env.get("PARTNERHUB_IDENTITY_SERVICE_ACCOUNTS") {
        ("PARTNERHUB_IDENTITY_SERVICE_ACCOUNTS", json)
    } else if let Some(path) = env.get("PARTNERHUB_IDENTITY_SERVICE_ACCOUNTS_FILE") {
        let text = std::fs::read_to_string(&path).map_err(|e| ConfigError {
            variable: "PARTNERHUB_IDENTITY_SERVICE_ACCOUNTS_FILE".into(),
            problem: format!("cannot read {path}: {e}"),
        })?;
        ("PARTNERHUB_IDENTITY_SERVICE_ACCOUNTS_FILE", text)
    } else {
        return Ok(Vec::new());
    };
    let problem = |problem: String| ConfigError {
        variable: variable.into(),
        problem,
    };
    let accounts: Vec<ServiceAccount> =
        serde_json::from_str(&json).map_err(|e| problem(format!("invalid JSON: {e}")))?;
    for account in &accounts {
        if account.client_id.is_empty() || account.secret_hash.is_empty() {
            return Err(problem(
                "every service account needs client_id and secret_hash".into(),
            ));
        }
        if let Some(p) = account
            .permissions
            .iter()
            .find(|p| !p.starts_with("platform."))
        {
            return Err(problem(format!(
                "{}: {p} is not a platform permission",
                account.client_id
            )));
        }
    }
    Ok(accounts)
}

fn decode_key(b64: &str) -> Option<[u8; 32]> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    bytes.try_into().ok()
}
