//! RabbitMQ definitions (`rabbitmqctl import_definitions`) for a
//! deployment: the topology the services declare, quorum queues, and one
//! user per service whose permissions allow only what the service does —
//! declare and read its own queues, publish its own events (topic
//! permissions on their routing keys), send commands only where it must,
//! and never write to the default exchange (a service's retries and dead
//! letters go through its queues' own dead-letter exchanges).
//! Generated from the services' own topology, so the file cannot drift from
//! the code.

use serde_json::{Value, json};

use super::{BusConfig, DEAD_KEY, QueueKind, REQUEUE_KEY, RETRY_KEY};

/// What one service does on the bus.
#[derive(Debug, Clone)]
pub struct ServiceTopology {
    /// Service name (`identity`).
    pub service: &'static str,
    /// Routing-key prefix of the events it publishes
    /// (`partnerhub.identity.v1.`).
    pub events_prefix: &'static str,
    /// Services it sends commands to.
    pub commands_to: &'static [&'static str],
    /// The queues it consumes, with their routing keys (a commands queue is
    /// bound by the service's name).
    pub consumes: Vec<(QueueKind, Vec<String>)>,
}

/// A producer outside the suite that may publish events (the billing
/// system): a user that can only publish routing keys under `events_prefix`.
#[derive(Debug, Clone)]
pub struct ExternalPublisher {
    /// User name.
    pub user: &'static str,
    /// Routing-key prefix it may publish.
    pub events_prefix: &'static str,
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.^$|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn arguments(config: &BusConfig) -> Value {
    json!({ "x-queue-type": if config.quorum_queues { "quorum" } else { "classic" } })
}

/// The definitions for `vhost`. Users get no password: set one per user
/// with `rabbitmqctl change_password` (or import hashes of your own).
pub fn definitions(
    config: &BusConfig,
    vhost: &str,
    services: &[ServiceTopology],
    external: &[ExternalPublisher],
) -> Value {
    let ns = escape(&config.namespace);
    let events = config.events_exchange();
    let commands = config.commands_exchange();
    let exchange = |name: &str, kind: &str| {
        json!({
            "name": name, "vhost": vhost, "type": kind, "durable": true,
            "auto_delete": false, "internal": false, "arguments": {}
        })
    };
    let mut users = Vec::new();
    let mut permissions = Vec::new();
    let mut topic_permissions = Vec::new();
    let mut queues = Vec::new();
    let mut bindings = Vec::new();
    let mut dlx_exchanges = Vec::new();
    let retry_ms = u64::try_from(config.retry_delay.as_millis()).unwrap_or(u64::MAX);
    for s in services {
        let user = format!("{}-{}", config.namespace, s.service);
        users.push(json!({
            "name": user, "password_hash": "",
            "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ""
        }));
        let own = format!("{ns}\\.{}\\..*", escape(s.service));
        // Its own exchanges and queues (the dead-letter exchanges), the
        // events exchange, and the commands exchange if it sends commands:
        // never the default exchange.
        let mut write = vec![format!("{ns}\\.events"), own.clone()];
        if !s.commands_to.is_empty() {
            write.push(format!("{ns}\\.commands"));
        }
        // Every process binds its own revocation feed
        // (`<ns>.<service>.revocations.<uuid>`, under `own`) to the events
        // exchange, so every service may read it.
        let mut read = vec![own.clone(), escape(&events)];
        for (kind, keys) in &s.consumes {
            let source = match kind {
                QueueKind::Events => events.clone(),
                QueueKind::Commands => commands.clone(),
            };
            read.push(escape(&source));
            let queue = config.queue(s.service, *kind);
            let dlx = config.dead_letter_exchange(&queue);
            let dead_letter_to = |key: &str| {
                let mut args = arguments(config);
                args["x-dead-letter-exchange"] = json!(dlx);
                args["x-dead-letter-routing-key"] = json!(key);
                if config.quorum_queues {
                    args["x-dead-letter-strategy"] = json!("at-least-once");
                    args["x-overflow"] = json!("reject-publish");
                }
                args
            };
            let mut retry = dead_letter_to(REQUEUE_KEY);
            retry["x-message-ttl"] = json!(retry_ms);
            dlx_exchanges.push(exchange(&dlx, "direct"));
            for (key, target) in [
                (RETRY_KEY, format!("{queue}.retry")),
                (DEAD_KEY, format!("{queue}.dead")),
                (REQUEUE_KEY, queue.clone()),
            ] {
                bindings.push(json!({
                    "source": dlx, "vhost": vhost, "destination": target,
                    "destination_type": "queue", "routing_key": key, "arguments": {}
                }));
            }
            for (name, args) in [
                (queue.clone(), dead_letter_to(RETRY_KEY)),
                (format!("{queue}.retry"), retry),
                (format!("{queue}.dead"), arguments(config)),
            ] {
                queues.push(json!({
                    "name": name, "vhost": vhost, "durable": true,
                    "auto_delete": false, "arguments": args
                }));
            }
            let keys: Vec<String> = match kind {
                QueueKind::Events => keys.clone(),
                QueueKind::Commands => vec![s.service.to_owned()],
            };
            for key in keys {
                bindings.push(json!({
                    "source": source, "vhost": vhost, "destination": queue,
                    "destination_type": "queue", "routing_key": key, "arguments": {}
                }));
            }
        }
        read.sort();
        read.dedup();
        permissions.push(json!({
            "user": user, "vhost": vhost,
            "configure": format!("^({ns}\\.events|{ns}\\.commands|{own})$"),
            "write": format!("^({})$", write.join("|")),
            "read": format!("^({})$", read.join("|")),
        }));
        topic_permissions.push(json!({
            "user": user, "vhost": vhost, "exchange": events,
            "write": format!("^{}.*$", escape(s.events_prefix)),
            "read": ".*",
        }));
    }
    for p in external {
        users.push(json!({
            "name": p.user, "password_hash": "",
            "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ""
        }));
        permissions.push(json!({
            "user": p.user, "vhost": vhost,
            "configure": "^$",
            "write": format!("^{}$", escape(&events)),
            "read": "^$",
        }));
        topic_permissions.push(json!({
            "user": p.user, "vhost": vhost, "exchange": events,
            "write": format!("^{}.*$", escape(p.events_prefix)),
            "read": "^$",
        }));
    }
    let exchanges: Vec<Value> = [exchange(&events, "topic"), exchange(&commands, "direct")]
        .into_iter()
        .chain(dlx_exchanges)
        .collect();
    json!({
        "users": users,
        "vhosts": [{ "name": vhost }],
        "permissions": permissions,
        "topic_permissions": topic_permissions,
        "exchanges": exchanges,
        "queues": queues,
        "bindings": bindings,
        "policies": [],
        "parameters": [],
        "global_parameters": [],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_user_may_publish_only_its_own_events_and_read_only_its_queues() {
        let mut config = BusConfig::new("amqp://x");
        config.namespace = "partnerhub".into();
        config.quorum_queues = true;
        let d = definitions(
            &config,
            "partnerhub",
            &[
                ServiceTopology {
                    service: "identity",
                    events_prefix: "partnerhub.identity.v1.",
                    commands_to: &["notification"],
                    consumes: vec![(
                        QueueKind::Events,
                        vec!["partnerhub.verification.v1.X".into()],
                    )],
                },
                ServiceTopology {
                    service: "notification",
                    events_prefix: "partnerhub.notification.v1.",
                    commands_to: &[],
                    consumes: vec![(QueueKind::Commands, vec![])],
                },
            ],
            &[],
        );
        let perms = d["permissions"].as_array().unwrap();
        let identity = &perms[0];
        let notification = &perms[1];
        let read = identity["read"].as_str().unwrap();
        assert!(!read.contains("notification"), "{read}");
        assert!(
            identity["write"]
                .as_str()
                .unwrap()
                .contains("partnerhub\\.commands")
        );
        assert!(!notification["write"].as_str().unwrap().contains("commands"));
        for p in perms {
            assert!(
                !p["write"].as_str().unwrap().contains("amq"),
                "a service user may write to the default exchange: {p}"
            );
        }
        let exchanges: Vec<&str> = d["exchanges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert!(exchanges.contains(&"partnerhub.notification.commands.dlx"));
        let queue = d["queues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["name"] == "partnerhub.identity.events.retry")
            .unwrap();
        assert_eq!(
            queue["arguments"]["x-dead-letter-exchange"],
            "partnerhub.identity.events.dlx"
        );
        assert!(
            notification["read"]
                .as_str()
                .unwrap()
                .contains("partnerhub\\.notification\\..*")
        );
        let topics = d["topic_permissions"].as_array().unwrap();
        assert_eq!(topics[0]["write"], "^partnerhub\\.identity\\.v1\\..*$");
        let queues: Vec<&str> = d["queues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["name"].as_str().unwrap())
            .collect();
        assert!(queues.contains(&"partnerhub.notification.commands.dead"));
        assert!(d["bindings"].as_array().unwrap().iter().any(|b| {
            b["source"] == "partnerhub.commands"
                && b["destination"] == "partnerhub.notification.commands"
                && b["routing_key"] == "notification"
        }));
    }
}
