//! Settings read from the environment, validated at start with messages that
//! name the variable. The environment sits behind a trait so tests pass a map.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use crate::bus::BusConfig;
use crate::server::ServerLimits;

/// Where settings come from.
pub trait Env {
    /// The value of `key`, if set and not empty.
    fn get(&self, key: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.is_empty())
    }
}

impl Env for HashMap<String, String> {
    fn get(&self, key: &str) -> Option<String> {
        HashMap::get(self, key).filter(|v| !v.is_empty()).cloned()
    }
}

/// A setting that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    /// The environment variable.
    pub variable: String,
    /// What is wrong with it.
    pub problem: String,
}

/// Reads `key` as `T`, or `default` when unset.
pub fn parse<T: FromStr>(env: &dyn Env, key: &str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match env.get(key) {
        None => Ok(default),
        Some(raw) => raw.parse().map_err(|e: T::Err| ConfigError {
            variable: key.to_owned(),
            problem: format!("cannot parse {raw:?}: {e}"),
        }),
    }
}

/// Each service's pool size unless `PARTNERHUB_DATABASE_MAX_CONNECTIONS`
/// says otherwise.
pub const DEFAULT_DATABASE_MAX_CONNECTIONS: u32 = 10;

/// What every service needs: where to listen, its database, the bus, how to
/// reach identity, and limits.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// Service name (`identity`).
    pub name: &'static str,
    /// Listen address (`PARTNERHUB_<SVC>_LISTEN`); port 0 picks a free port.
    pub listen: SocketAddr,
    /// `PARTNERHUB_<SVC>_DATABASE_URL`.
    pub database_url: String,
    /// `PARTNERHUB_DATABASE_MAX_CONNECTIONS` (per service).
    pub database_max_connections: u32,
    /// RabbitMQ.
    pub bus: BusConfig,
    /// `PARTNERHUB_IDENTITY_URL`: identity's gRPC endpoint (for the JWKS).
    pub identity_url: String,
    /// Server limits.
    pub limits: ServerLimits,
}

impl ServiceSettings {
    /// Reads the settings of service `name` whose default port is
    /// `default_port`.
    pub fn from_env(
        name: &'static str,
        default_port: u16,
        env: &dyn Env,
    ) -> Result<Self, ConfigError> {
        let upper = name.to_uppercase();
        let listen = parse(
            env,
            &format!("PARTNERHUB_{upper}_LISTEN"),
            SocketAddr::from(([0, 0, 0, 0], default_port)),
        )?;
        let database_url = env
            .get(&format!("PARTNERHUB_{upper}_DATABASE_URL"))
            .unwrap_or_else(|| format!("postgres://postgres@127.0.0.1:5432/partnerhub_{name}"));
        let mut bus = BusConfig::new(
            env.get("PARTNERHUB_AMQP_URL")
                .unwrap_or_else(|| "amqp://guest:guest@127.0.0.1:5672/%2f".into()),
        );
        bus.namespace = env
            .get("PARTNERHUB_AMQP_NAMESPACE")
            .unwrap_or_else(|| "partnerhub".into());
        bus.prefetch = parse(env, "PARTNERHUB_AMQP_PREFETCH", bus.prefetch)?;
        bus.batch = parse(env, "PARTNERHUB_AMQP_BATCH", bus.batch)?;
        bus.consumers = parse(env, "PARTNERHUB_AMQP_CONSUMERS", bus.consumers)?;
        bus.max_attempts = parse(env, "PARTNERHUB_AMQP_MAX_ATTEMPTS", bus.max_attempts)?;
        bus.retry_delay = Duration::from_millis(parse(
            env,
            "PARTNERHUB_AMQP_RETRY_DELAY_MS",
            bus.retry_delay.as_millis() as u64,
        )?);
        if let Some(users) = env.get("PARTNERHUB_AMQP_USERS") {
            bus.users = bus.parse_users(&users).ok_or_else(|| ConfigError {
                variable: "PARTNERHUB_AMQP_USERS".into(),
                problem: format!("{users:?}: use shared or per-service"),
            })?;
        }
        if bus.consumers == 0 {
            return Err(ConfigError {
                variable: "PARTNERHUB_AMQP_CONSUMERS".into(),
                problem: "must be at least 1".into(),
            });
        }
        if bus.max_attempts == 0 {
            return Err(ConfigError {
                variable: "PARTNERHUB_AMQP_MAX_ATTEMPTS".into(),
                problem: "must be at least 1".into(),
            });
        }
        let defaults = ServerLimits::default();
        let limits = ServerLimits {
            request_timeout: Duration::from_millis(parse(
                env,
                "PARTNERHUB_REQUEST_TIMEOUT_MS",
                defaults.request_timeout.as_millis() as u64,
            )?),
            max_concurrent_requests: parse(
                env,
                "PARTNERHUB_MAX_CONCURRENT_REQUESTS",
                defaults.max_concurrent_requests,
            )?,
            rate_limits: crate::rate_limit::RateLimitSettings::from_env(env)?,
            shutdown_delay: Duration::from_millis(parse(
                env,
                "PARTNERHUB_SHUTDOWN_DELAY_MS",
                defaults.shutdown_delay.as_millis() as u64,
            )?),
        };
        Ok(Self {
            name,
            listen,
            database_url,
            database_max_connections: parse(
                env,
                "PARTNERHUB_DATABASE_MAX_CONNECTIONS",
                DEFAULT_DATABASE_MAX_CONNECTIONS,
            )?,
            bus,
            identity_url: env
                .get("PARTNERHUB_IDENTITY_URL")
                .unwrap_or_else(|| "http://127.0.0.1:50051".into()),
            limits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fit_a_laptop() {
        let env = HashMap::new();
        let s = ServiceSettings::from_env("profile", 50052, &env).ok();
        let s = s.as_ref();
        assert_eq!(s.map(|s| s.listen.port()), Some(50052));
        assert_eq!(
            s.map(|s| s.database_url.as_str()),
            Some("postgres://postgres@127.0.0.1:5432/partnerhub_profile")
        );
        assert_eq!(
            s.map(|s| s.bus.events_exchange()),
            Some("partnerhub.events".into())
        );
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let env = HashMap::from([("PARTNERHUB_PROFILE_LISTEN".to_owned(), "nowhere".to_owned())]);
        let err = ServiceSettings::from_env("profile", 50052, &env).err();
        assert_eq!(
            err.map(|e| e.variable),
            Some("PARTNERHUB_PROFILE_LISTEN".into())
        );
    }
}
