//! Who sends and who receives each message crossing RabbitMQ, read from the
//! services' own bus topology (the one `rabbitmq-definitions` ships) and the
//! protobuf descriptor set: a service publishes every message of its
//! package's `events.proto`, a command is a message of the target's
//! `commands.proto`.

use anyhow::Context;
use partnerhub_platform::bus::QueueKind;
use partnerhub_platform::bus::definitions::{ExternalPublisher, ServiceTopology};
use prost_reflect::{DescriptorPool, MessageDescriptor};

/// An exchange kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeKind {
    /// The events exchange.
    Topic,
    /// The commands exchange.
    Direct,
}

/// Where a message is published: an exchange and a routing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Exchange name.
    pub exchange: String,
    /// Topic (events) or direct (commands).
    pub kind: ExchangeKind,
    /// Routing key.
    pub routing_key: String,
}

/// A message an application publishes.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The protobuf message.
    pub message: MessageDescriptor,
    /// Where it goes.
    pub route: Route,
}

/// A queue an application consumes.
#[derive(Debug, Clone)]
pub struct ConsumedQueue {
    /// Queue name.
    pub name: String,
    /// The exchange it is bound to.
    pub exchange: String,
    /// Its binding keys.
    pub routing_keys: Vec<String>,
    /// The messages that arrive on it.
    pub messages: Vec<MessageDescriptor>,
}

/// One application on the bus.
#[derive(Debug, Clone)]
pub struct Application {
    /// `identity`, ..., or `billing` (outside the suite).
    pub name: String,
    /// Whether it runs outside the suite.
    pub external: bool,
    /// What it publishes.
    pub sends: Vec<Sent>,
    /// What it consumes.
    pub receives: Vec<ConsumedQueue>,
}

/// Every application of one deployment.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Suite services first, then the external publishers.
    pub applications: Vec<Application>,
}

impl Catalog {
    /// The queues (with their application) a message published on `route`
    /// lands in.
    pub fn consumers_of(&self, route: &Route) -> Vec<(&str, &ConsumedQueue)> {
        let mut found = Vec::new();
        for app in &self.applications {
            for queue in &app.receives {
                if queue.exchange == route.exchange
                    && queue.routing_keys.contains(&route.routing_key)
                {
                    found.push((app.name.as_str(), queue));
                }
            }
        }
        found
    }

    /// The applications that publish on `route`.
    pub fn senders_of(&self, route: &Route) -> Vec<&str> {
        self.applications
            .iter()
            .filter(|app| app.sends.iter().any(|s| &s.route == route))
            .map(|app| app.name.as_str())
            .collect()
    }
}

/// The messages of files named `file_name` whose full name starts with
/// `prefix` (`partnerhub.identity.v1.`), in file order.
fn messages_in(pool: &DescriptorPool, file_name: &str, prefix: &str) -> Vec<MessageDescriptor> {
    pool.files()
        .filter(|f| f.name().rsplit('/').next() == Some(file_name))
        .flat_map(|f| f.messages().collect::<Vec<_>>())
        .filter(|m| m.full_name().starts_with(prefix))
        .collect()
}

/// Builds the catalog of `services` and `external` publishers under
/// `config`'s names.
pub fn build(
    pool: &DescriptorPool,
    config: &partnerhub_platform::bus::BusConfig,
    services: &[ServiceTopology],
    external: &[ExternalPublisher],
) -> anyhow::Result<Catalog> {
    let events = config.events_exchange();
    let commands = config.commands_exchange();
    let event_route = |m: &MessageDescriptor| Route {
        exchange: events.clone(),
        kind: ExchangeKind::Topic,
        routing_key: m.full_name().to_owned(),
    };
    let commands_of = |target: &str| -> anyhow::Result<Vec<MessageDescriptor>> {
        let topology = services
            .iter()
            .find(|s| s.service == target)
            .with_context(|| format!("commands go to {target:?}, which is not a service"))?;
        Ok(messages_in(pool, "commands.proto", topology.events_prefix))
    };
    let mut applications = Vec::new();
    for service in services {
        let mut sends: Vec<Sent> = messages_in(pool, "events.proto", service.events_prefix)
            .into_iter()
            .map(|message| Sent {
                route: event_route(&message),
                message,
            })
            .collect();
        for target in service.commands_to {
            for message in commands_of(target)? {
                sends.push(Sent {
                    message,
                    route: Route {
                        exchange: commands.clone(),
                        kind: ExchangeKind::Direct,
                        routing_key: (*target).to_owned(),
                    },
                });
            }
        }
        let mut receives = Vec::new();
        for (kind, keys) in &service.consumes {
            let queue = config.queue(service.service, *kind);
            receives.push(match kind {
                QueueKind::Events => ConsumedQueue {
                    name: queue,
                    exchange: events.clone(),
                    routing_keys: keys.clone(),
                    messages: keys
                        .iter()
                        .map(|key| {
                            pool.get_message_by_name(key).with_context(|| {
                                format!(
                                    "{} binds {key:?}, which is no proto message",
                                    service.service
                                )
                            })
                        })
                        .collect::<anyhow::Result<_>>()?,
                },
                QueueKind::Commands => ConsumedQueue {
                    name: queue,
                    exchange: commands.clone(),
                    routing_keys: vec![service.service.to_owned()],
                    messages: commands_of(service.service)?,
                },
            });
        }
        applications.push(Application {
            name: service.service.to_owned(),
            external: false,
            sends,
            receives,
        });
    }
    for publisher in external {
        let name = publisher
            .events_prefix
            .split('.')
            .nth(1)
            .context("an external publisher's prefix names its package")?;
        applications.push(Application {
            name: name.to_owned(),
            external: true,
            sends: messages_in(pool, "events.proto", publisher.events_prefix)
                .into_iter()
                .map(|message| Sent {
                    route: event_route(&message),
                    message,
                })
                .collect(),
            receives: Vec::new(),
        });
    }
    Ok(Catalog { applications })
}
