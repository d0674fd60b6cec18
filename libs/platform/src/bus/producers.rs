//! Who may produce what. Producers are authenticated on the bus: every
//! message carries the AMQP `user_id` of the broker user that published it
//! (RabbitMQ refuses a publish whose `user_id` is not the connection's
//! user), and a consumer accepts a message type only from the user of its
//! producer. The table is built from the same topology as the RabbitMQ
//! definitions ([`super::definitions`]): events `<prefix>*` come from the
//! service (or external publisher) with that prefix; commands to a service
//! come from the services whose `commands_to` names it.

use super::definitions::{ExternalPublisher, ServiceTopology};
use super::{BusConfig, QueueKind};

/// Which broker users the services connect as.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BrokerUsers {
    /// All services share one user (a laptop's `guest`, `serve all`, the
    /// tests): a message must carry that user's id, the consumer's own.
    #[default]
    Shared,
    /// Each service connects as its own user, `<prefix><service>`
    /// (`partnerhub-identity`), as in `deploy/rabbitmq/definitions.json`;
    /// external publishers as the user their definition names.
    PerService {
        /// Prefix of the service users (`<namespace>-` by default).
        prefix: String,
    },
}

/// A producer of messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Producer {
    /// One of the services (`identity`).
    Service(String),
    /// A publisher outside the suite, by its broker user.
    External(String),
}

/// Who produces each message type, for every consumer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Producers {
    /// Event type prefixes and their producer.
    events: Vec<(String, Producer)>,
    /// Target service and the services that send it commands.
    commands: Vec<(String, Vec<Producer>)>,
}

impl Producers {
    /// The table of `services` and `external` publishers.
    pub fn from_topology(services: &[ServiceTopology], external: &[ExternalPublisher]) -> Self {
        let mut events: Vec<(String, Producer)> = services
            .iter()
            .map(|s| {
                (
                    s.events_prefix.to_owned(),
                    Producer::Service(s.service.to_owned()),
                )
            })
            .chain(external.iter().map(|p| {
                (
                    p.events_prefix.to_owned(),
                    Producer::External(p.user.to_owned()),
                )
            }))
            .collect();
        // Longest prefix first: the most specific producer wins.
        events.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        let mut commands: Vec<(String, Vec<Producer>)> = Vec::new();
        for sender in services {
            for target in sender.commands_to {
                let producer = Producer::Service(sender.service.to_owned());
                match commands.iter_mut().find(|(t, _)| t == target) {
                    Some((_, senders)) => senders.push(producer),
                    None => commands.push(((*target).to_owned(), vec![producer])),
                }
            }
        }
        Self { events, commands }
    }

    /// The producers of `message_type` on `service`'s queue of `kind`
    /// (empty: nobody may send it there).
    pub fn of(&self, service: &str, kind: QueueKind, message_type: &str) -> Vec<&Producer> {
        match kind {
            QueueKind::Events => self
                .events
                .iter()
                .find(|(prefix, _)| message_type.starts_with(prefix.as_str()))
                .map(|(_, p)| vec![p])
                .unwrap_or_default(),
            QueueKind::Commands => self
                .commands
                .iter()
                .filter(|(target, _)| target == service)
                .flat_map(|(_, senders)| senders.iter())
                .collect(),
        }
    }
}

impl BusConfig {
    /// The broker user this process connects as (from the URL; `guest`
    /// when it names none).
    pub fn user(&self) -> String {
        self.url
            .parse::<lapin::uri::AMQPUri>()
            .map(|uri| uri.authority.userinfo.username)
            .unwrap_or_else(|_| "guest".to_owned())
    }

    /// The broker user of `producer`.
    pub fn user_of(&self, producer: &Producer) -> String {
        match (&self.users, producer) {
            (BrokerUsers::Shared, _) => self.user(),
            (BrokerUsers::PerService { prefix }, Producer::Service(s)) => format!("{prefix}{s}"),
            (BrokerUsers::PerService { .. }, Producer::External(user)) => user.clone(),
        }
    }

    /// The broker users that may send `message_type` to `service`'s queue
    /// of `kind`; `Err` says why none may.
    pub fn expected_producers(
        &self,
        service: &str,
        kind: QueueKind,
        message_type: &str,
    ) -> Result<Vec<String>, String> {
        if self.users == BrokerUsers::Shared {
            return Ok(vec![self.user()]);
        }
        let users: Vec<String> = self
            .producers
            .of(service, kind, message_type)
            .into_iter()
            .map(|p| self.user_of(p))
            .collect();
        if users.is_empty() {
            return Err(format!(
                "no producer of {message_type} may send it to {}",
                self.queue(service, kind)
            ));
        }
        Ok(users)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology() -> (Vec<ServiceTopology>, Vec<ExternalPublisher>) {
        let service = |name: &'static str, prefix: &'static str, to: &'static [&'static str]| {
            ServiceTopology {
                service: name,
                events_prefix: prefix,
                commands_to: to,
                consumes: Vec::new(),
            }
        };
        (
            vec![
                service("identity", "partnerhub.identity.v1.", &["notification"]),
                service("profile", "partnerhub.profile.v1.", &[]),
                service(
                    "verification",
                    "partnerhub.verification.v1.",
                    &["notification"],
                ),
                service("notification", "partnerhub.notification.v1.", &[]),
            ],
            vec![ExternalPublisher {
                user: "partnerhub-billing",
                events_prefix: "partnerhub.billing.v1.",
            }],
        )
    }

    fn per_service() -> BusConfig {
        let (services, external) = topology();
        let mut config = BusConfig::new("amqp://partnerhub-identity:secret@broker:5672/partnerhub");
        config.users = BrokerUsers::PerService {
            prefix: "partnerhub-".into(),
        };
        config.producers = Producers::from_topology(&services, &external);
        config
    }

    #[test]
    fn an_event_is_expected_from_the_user_of_the_service_with_its_prefix() {
        let config = per_service();
        assert_eq!(
            config.expected_producers(
                "identity",
                QueueKind::Events,
                "partnerhub.verification.v1.AccountSuspensionRequested"
            ),
            Ok(vec!["partnerhub-verification".to_owned()])
        );
        assert_eq!(
            config.expected_producers(
                "notification",
                QueueKind::Events,
                "partnerhub.billing.v1.PaymentLate"
            ),
            Ok(vec!["partnerhub-billing".to_owned()])
        );
        assert!(
            config
                .expected_producers("identity", QueueKind::Events, "partnerhub.unknown.v1.X")
                .is_err()
        );
    }

    #[test]
    fn a_command_is_expected_only_from_the_services_that_send_it() {
        let config = per_service();
        assert_eq!(
            config.expected_producers(
                "notification",
                QueueKind::Commands,
                "partnerhub.notification.v1.SendMail"
            ),
            Ok(vec![
                "partnerhub-identity".to_owned(),
                "partnerhub-verification".to_owned()
            ])
        );
        // Nobody sends commands to profile.
        assert!(
            config
                .expected_producers("profile", QueueKind::Commands, "partnerhub.profile.v1.X")
                .is_err()
        );
    }

    #[test]
    fn a_shared_user_is_expected_for_everything_and_comes_from_the_url() {
        let mut config = per_service();
        config.users = BrokerUsers::Shared;
        config.url = "amqp://guest:guest@127.0.0.1:5672/%2f".into();
        assert_eq!(config.user(), "guest");
        assert_eq!(
            config.expected_producers(
                "identity",
                QueueKind::Events,
                "partnerhub.verification.v1.AccountSuspensionRequested"
            ),
            Ok(vec!["guest".to_owned()])
        );
        config.url = "amqp://127.0.0.1:5672".into();
        assert_eq!(config.user(), "guest", "RabbitMQ's default user");
        config.url = "amqp://partnerhub%2Dmerge:x@h/v".into();
        assert_eq!(config.user(), "partnerhub-merge");
    }

    #[test]
    fn the_longest_prefix_names_the_producer() {
        let (mut services, external) = topology();
        services.push(ServiceTopology {
            service: "special",
            events_prefix: "partnerhub.identity.v1.special.",
            commands_to: &[],
            consumes: Vec::new(),
        });
        let producers = Producers::from_topology(&services, &external);
        assert_eq!(
            producers.of(
                "x",
                QueueKind::Events,
                "partnerhub.identity.v1.special.Thing"
            ),
            vec![&Producer::Service("special".into())]
        );
        assert_eq!(
            producers.of("x", QueueKind::Events, "partnerhub.identity.v1.UserCreated"),
            vec![&Producer::Service("identity".into())]
        );
    }
}
