//! The five services, by name: build, run and migrate each the same way.

use partnerhub_platform::config::Env;
use tokio_util::sync::CancellationToken;

/// A service the binary can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name {
    /// Accounts, users, roles, tokens.
    Identity,
    /// Organization profile.
    Profile,
    /// Company verification.
    Verification,
    /// Notifications.
    Notification,
    /// Account merge.
    Merge,
}

impl Name {
    /// All five, in start order (identity first: it serves the JWKS).
    pub const ALL: [Name; 5] = [
        Name::Identity,
        Name::Profile,
        Name::Verification,
        Name::Notification,
        Name::Merge,
    ];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Name::Identity => "identity",
            Name::Profile => "profile",
            Name::Verification => "verification",
            Name::Notification => "notification",
            Name::Merge => "merge",
        }
    }

    /// Parses `all` or a list of names (duplicates ignored).
    pub fn parse_list(items: &[String]) -> anyhow::Result<Vec<Name>> {
        let mut out = Vec::new();
        for item in items {
            let names: Vec<Name> = if item == "all" {
                Name::ALL.to_vec()
            } else {
                let name = Name::ALL
                    .into_iter()
                    .find(|n| n.as_str() == item)
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "unknown service {item:?}: use all, identity, profile, verification, notification or merge"
                        )
                    })?;
                vec![name]
            };
            for n in names {
                if !out.contains(&n) {
                    out.push(n);
                }
            }
        }
        out.sort_by_key(|n| Name::ALL.iter().position(|m| m == n));
        Ok(out)
    }
}

/// A built service of any kind (built once per process, so the size of the
/// variants does not matter).
#[allow(clippy::large_enum_variant)]
pub enum Built {
    Identity(partnerhub_identity::Service),
    Profile(partnerhub_profile::Service),
    Verification(partnerhub_verification::Service),
    Notification(partnerhub_notification::Service),
    Merge(partnerhub_merge::Service),
}

impl Built {
    /// Which service.
    pub fn name(&self) -> Name {
        match self {
            Built::Identity(_) => Name::Identity,
            Built::Profile(_) => Name::Profile,
            Built::Verification(_) => Name::Verification,
            Built::Notification(_) => Name::Notification,
            Built::Merge(_) => Name::Merge,
        }
    }

    /// Serves until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        match self {
            Built::Identity(s) => s.run(shutdown).await,
            Built::Profile(s) => s.run(shutdown).await,
            Built::Verification(s) => s.run(shutdown).await,
            Built::Notification(s) => s.run(shutdown).await,
            Built::Merge(s) => s.run(shutdown).await,
        }
    }
}

/// Reads the service's configuration, binds and migrates.
pub async fn build(name: Name, env: &dyn Env) -> anyhow::Result<Built> {
    Ok(match name {
        Name::Identity => {
            let mut config = partnerhub_identity::Config::from_env(env)?;
            know_producers(&mut config.service.bus);
            Built::Identity(partnerhub_identity::build(config).await?)
        }
        Name::Profile => {
            let mut config = partnerhub_profile::config_from_env(env)?;
            know_producers(&mut config.service.bus);
            Built::Profile(partnerhub_profile::build(config).await?)
        }
        Name::Verification => {
            let mut config = partnerhub_verification::config_from_env(env)?;
            know_producers(&mut config.service.bus);
            Built::Verification(partnerhub_verification::build(config).await?)
        }
        Name::Notification => {
            let mut config = partnerhub_notification::config_from_env(env)?;
            know_producers(&mut config.service.bus);
            Built::Notification(partnerhub_notification::build(config).await?)
        }
        Name::Merge => {
            let mut config = partnerhub_merge::config_from_env(env)?;
            know_producers(&mut config.service.bus);
            Built::Merge(partnerhub_merge::build(config).await?)
        }
    })
}

/// Tells `bus` who produces each message type, from the same topology as
/// the RabbitMQ definitions.
pub fn know_producers(bus: &mut partnerhub_platform::bus::BusConfig) {
    let (services, external) = bus_topologies();
    bus.producers = partnerhub_platform::bus::Producers::from_topology(&services, &external);
}

/// Creates and migrates the service's database only.
pub async fn migrate(name: Name, env: &dyn Env) -> anyhow::Result<()> {
    let (settings, migrations) = match name {
        Name::Identity => (
            partnerhub_identity::Config::from_env(env)?.service,
            &partnerhub_identity::MIGRATIONS,
        ),
        Name::Profile => (
            partnerhub_profile::config_from_env(env)?.service,
            &partnerhub_profile::MIGRATIONS,
        ),
        Name::Verification => (
            partnerhub_verification::config_from_env(env)?.service,
            &partnerhub_verification::MIGRATIONS,
        ),
        Name::Notification => (
            partnerhub_notification::config_from_env(env)?.service,
            &partnerhub_notification::MIGRATIONS,
        ),
        Name::Merge => (
            partnerhub_merge::config_from_env(env)?.service,
            &partnerhub_merge::MIGRATIONS,
        ),
    };
    let pool = partnerhub_platform::db::prepare(&settings.database_url, 2, migrations).await?;
    pool.close().await;
    Ok(())
}

/// What each of the five services does on the bus, and the publishers
/// outside the suite (the billing system).
pub fn bus_topologies() -> (
    Vec<partnerhub_platform::bus::definitions::ServiceTopology>,
    Vec<partnerhub_platform::bus::definitions::ExternalPublisher>,
) {
    use partnerhub_platform::bus::definitions::ExternalPublisher;
    (
        vec![
            partnerhub_identity::topology(),
            partnerhub_profile::topology(),
            partnerhub_verification::topology(),
            partnerhub_notification::topology(),
            partnerhub_merge::topology(),
        ],
        vec![ExternalPublisher {
            user: "partnerhub-billing",
            events_prefix: "partnerhub.billing.v1.",
        }],
    )
}

/// The RabbitMQ definitions of the five services (and the billing system,
/// which publishes its events from outside the suite).
pub fn rabbitmq_definitions(
    bus: &partnerhub_platform::bus::BusConfig,
    vhost: &str,
) -> serde_json::Value {
    let (services, external) = bus_topologies();
    partnerhub_platform::bus::definitions::definitions(bus, vhost, &services, &external)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_shipped_rabbitmq_definitions_match_the_code() {
        let bus = partnerhub_platform::bus::BusConfig::new("amqp://unused");
        let generated = super::rabbitmq_definitions(&bus, "partnerhub");
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/rabbitmq/definitions.json"
        );
        let shipped: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(
            shipped, generated,
            "regenerate: cargo run -q -p partnerhub -- rabbitmq-definitions > deploy/rabbitmq/definitions.json"
        );
    }

    use super::*;

    #[test]
    fn the_testkit_knows_the_same_producers_as_the_binary() {
        let mut bus = partnerhub_platform::bus::BusConfig::new("amqp://unused");
        know_producers(&mut bus);
        assert_eq!(bus.producers, partnerhub_testkit::producers());
    }

    #[test]
    fn all_expands_and_unknown_names_are_refused() {
        let all = Name::parse_list(&["all".into()]).ok();
        assert_eq!(all.map(|v| v.len()), Some(5));
        let some = Name::parse_list(&["merge".into(), "identity".into(), "merge".into()]).ok();
        assert_eq!(some, Some(vec![Name::Identity, Name::Merge]));
        assert!(Name::parse_list(&["billing".into()]).is_err());
    }
}
