//! One application's AsyncAPI document: a channel per routing key it
//! publishes on and per queue it reads, a `send` or `receive` operation per
//! message, and each message with its CloudEvents headers, its protobuf
//! definition and an example.

use std::collections::BTreeMap;

use partnerhub_platform::bus::BusConfig;
use prost_reflect::MessageDescriptor;
use serde_json::json;

use super::catalog::{Application, Catalog, ConsumedQueue, ExchangeKind, Route, Sent};
use super::example::{self, EXAMPLE_ID};
use super::model::{
    AMQP_BINDING_VERSION, ASYNCAPI_VERSION, AmqpChannel, AmqpMessage, AmqpOperation, Channel,
    ChannelBindings, Components, Document, Example, Exchange, Info, Message, MessageBindings,
    Operation, OperationBindings, Payload, Queue, QueueBinding, Reference, RetryQueue, Server,
};
use super::proto_text::{self, detached_comments, message_comment};

/// What the documents are generated for.
pub struct Context<'a> {
    /// Names and pacing.
    pub bus: &'a BusConfig,
    /// Virtual host of the deployment.
    pub vhost: &'a str,
    /// Who sends and receives what.
    pub catalog: &'a Catalog,
}

/// The document of `app`.
pub fn build(context: &Context<'_>, app: &Application) -> anyhow::Result<Document> {
    let mut channels = BTreeMap::new();
    let mut operations = BTreeMap::new();
    let mut messages = BTreeMap::new();
    for sent in &app.sends {
        let name = sent.message.full_name().to_owned();
        let channel_id = route_channel_id(context, &sent.route);
        let channel = channels
            .entry(channel_id.clone())
            .or_insert_with(|| route_channel(context, &sent.route));
        channel.messages.insert(
            name.clone(),
            Reference::to(&["components", "messages", &name]),
        );
        operations.insert(
            format!("send.{name}"),
            send_operation(app, sent, &channel_id),
        );
        messages.insert(name.clone(), message(&sent.message, &source_uri(app))?);
    }
    for queue in &app.receives {
        channels.insert(queue.name.clone(), queue_channel(context, queue));
        for received in &queue.messages {
            let name = received.full_name().to_owned();
            let senders = context.catalog.senders_of(&Route {
                exchange: queue.exchange.clone(),
                kind: exchange_kind(context, &queue.exchange),
                routing_key: routing_key(context, queue, received),
            });
            operations.insert(
                format!("receive.{name}"),
                receive_operation(queue, received, &senders),
            );
            let source = senders
                .first()
                .and_then(|s| context.catalog.applications.iter().find(|a| a.name == *s))
                .map_or_else(|| "unknown".to_owned(), source_uri);
            messages.insert(name.clone(), message(received, &source)?);
        }
    }
    Ok(Document {
        asyncapi: ASYNCAPI_VERSION,
        id: format!("urn:partnerhub:{}", app.name),
        info: info(app),
        servers: BTreeMap::from([(
            "broker".to_owned(),
            Server {
                host: "rabbitmq:5672".into(),
                protocol: "amqp",
                protocol_version: "0.9.1",
                pathname: format!("/{}", context.vhost),
                description: "The RabbitMQ of a deployment, loaded with \
                    `deploy/rabbitmq/definitions.json` (the host is the local compose's; \
                    `PARTNERHUB_AMQP_URL` names the real one)."
                    .into(),
            },
        )]),
        default_content_type: "application/protobuf",
        channels,
        operations,
        components: Components { messages },
    })
}

/// The `cloudEvents_source` of `app`: `//partnerhub/<service>`, or
/// `//<system>` outside the suite.
fn source_uri(app: &Application) -> String {
    if app.external {
        format!("//{}", app.name)
    } else {
        format!("//partnerhub/{}", app.name)
    }
}

fn info(app: &Application) -> Info {
    let preamble: Vec<String> = app
        .sends
        .first()
        .map(|s| {
            let file = s.message.parent_file();
            detached_comments(&file, s.message.path())
        })
        .unwrap_or_default();
    let mut description = if app.external {
        format!(
            "The events **{}** (a system outside partnerhub) publishes for partnerhub's \
             services to consume.",
            app.name
        )
    } else {
        format!(
            "What the partnerhub **{}** service publishes and consumes on RabbitMQ.",
            app.name
        )
    };
    for paragraph in preamble {
        description.push_str("\n\n");
        description.push_str(&paragraph);
    }
    description.push_str(
        "\n\nEvents are facts on the topic exchange, routed by their protobuf full name; \
         commands go on the direct exchange, routed by the name of the one service that may \
         read them. Each message is a protobuf payload in CloudEvents binary mode. \
         Generated by `partnerhub asyncapi` from the proto files and the services' bus \
         topology: do not edit by hand.",
    );
    Info {
        title: format!("partnerhub {}", app.name),
        version: env!("CARGO_PKG_VERSION").into(),
        description,
    }
}

fn route_channel_id(context: &Context<'_>, route: &Route) -> String {
    match route.kind {
        ExchangeKind::Topic => route.routing_key.clone(),
        ExchangeKind::Direct => {
            format!("{}.{}", context.bus.commands_exchange(), route.routing_key)
        }
    }
}

fn exchange_kind(context: &Context<'_>, exchange: &str) -> ExchangeKind {
    if exchange == context.bus.commands_exchange() {
        ExchangeKind::Direct
    } else {
        ExchangeKind::Topic
    }
}

/// The key `received` was published with on `queue`'s exchange.
fn routing_key(
    context: &Context<'_>,
    queue: &ConsumedQueue,
    received: &MessageDescriptor,
) -> String {
    match exchange_kind(context, &queue.exchange) {
        ExchangeKind::Topic => received.full_name().to_owned(),
        ExchangeKind::Direct => queue.routing_keys.first().cloned().unwrap_or_default(),
    }
}

fn route_channel(context: &Context<'_>, route: &Route) -> Channel {
    let consumers = context.catalog.consumers_of(route);
    let read_by = if consumers.is_empty() {
        "No partnerhub service consumes it yet.".to_owned()
    } else {
        let list: Vec<String> = consumers
            .iter()
            .map(|(app, queue)| format!("**{app}** (queue `{}`)", queue.name))
            .collect();
        format!("Consumed by {}.", list.join(", "))
    };
    let (kind, what) = match route.kind {
        ExchangeKind::Topic => ("topic", "Routing key"),
        ExchangeKind::Direct => (
            "direct",
            "Commands for the service named by the routing key",
        ),
    };
    Channel {
        address: route.routing_key.clone(),
        title: route.routing_key.clone(),
        description: format!(
            "{what} `{}` on the {kind} exchange `{}`. {read_by}",
            route.routing_key, route.exchange
        ),
        messages: BTreeMap::new(),
        bindings: ChannelBindings {
            amqp: AmqpChannel {
                is: "routingKey",
                exchange: Some(Exchange {
                    name: route.exchange.clone(),
                    kind,
                    durable: true,
                    auto_delete: false,
                    vhost: context.vhost.to_owned(),
                }),
                queue: None,
                queue_type: None,
                queue_bindings: Vec::new(),
                retry_queue: None,
                dead_letter_queue: None,
                max_attempts: None,
                binding_version: AMQP_BINDING_VERSION,
            },
        },
    }
}

fn queue_channel(context: &Context<'_>, queue: &ConsumedQueue) -> Channel {
    let bus = context.bus;
    let queue_type = if bus.quorum_queues {
        "quorum"
    } else {
        "classic"
    };
    Channel {
        address: queue.name.clone(),
        title: queue.name.clone(),
        description: format!(
            "Durable {queue_type} queue bound to `{}` with {} key(s). A message is acknowledged \
             only after the handler's transaction committed (an inbox row makes a redelivery \
             harmless); a failed one waits {} ms in `{}.retry` and comes back, and after {} \
             deliveries it goes to `{}.dead` (`partnerhub dead-letters`).",
            queue.exchange,
            queue.routing_keys.len(),
            bus.retry_delay.as_millis(),
            queue.name,
            bus.max_attempts,
            queue.name
        ),
        messages: queue
            .messages
            .iter()
            .map(|m| {
                let name = m.full_name().to_owned();
                let reference = Reference::to(&["components", "messages", &name]);
                (name, reference)
            })
            .collect(),
        bindings: ChannelBindings {
            amqp: AmqpChannel {
                is: "queue",
                exchange: None,
                queue: Some(Queue {
                    name: queue.name.clone(),
                    durable: true,
                    exclusive: false,
                    auto_delete: false,
                    vhost: context.vhost.to_owned(),
                }),
                queue_type: Some(queue_type),
                queue_bindings: queue
                    .routing_keys
                    .iter()
                    .map(|key| QueueBinding {
                        exchange: queue.exchange.clone(),
                        routing_key: key.clone(),
                    })
                    .collect(),
                retry_queue: Some(RetryQueue {
                    name: format!("{}.retry", queue.name),
                    message_ttl_ms: u64::try_from(bus.retry_delay.as_millis()).unwrap_or(u64::MAX),
                }),
                dead_letter_queue: Some(format!("{}.dead", queue.name)),
                max_attempts: Some(bus.max_attempts),
                binding_version: AMQP_BINDING_VERSION,
            },
        },
    }
}

fn send_operation(app: &Application, sent: &Sent, channel_id: &str) -> Operation {
    let name = sent.message.full_name();
    let (exchange, key) = (&sent.route.exchange, &sent.route.routing_key);
    let description = if app.external {
        format!(
            "Published by the {} system to `{exchange}` with routing key `{key}`; its broker \
             user may publish nothing else (`deploy/rabbitmq/definitions.json`).",
            app.name
        )
    } else {
        format!(
            "Written to the outbox in the transaction of the change, then published to \
             `{exchange}` with routing key `{key}` and publisher confirms (at least once)."
        )
    };
    Operation {
        action: "send",
        channel: Reference::to(&["channels", channel_id]),
        title: format!("Publish {}", sent.message.name()),
        description,
        messages: vec![Reference::to(&["channels", channel_id, "messages", name])],
        bindings: OperationBindings {
            amqp: AmqpOperation {
                delivery_mode: Some(2),
                timestamp: Some(true),
                ack: None,
                binding_version: AMQP_BINDING_VERSION,
            },
        },
    }
}

fn receive_operation(
    queue: &ConsumedQueue,
    received: &MessageDescriptor,
    senders: &[&str],
) -> Operation {
    let name = received.full_name();
    let from = if senders.is_empty() {
        "no known sender".to_owned()
    } else {
        senders.join(", ")
    };
    Operation {
        action: "receive",
        channel: Reference::to(&["channels", &queue.name]),
        title: format!("Consume {}", received.name()),
        description: format!(
            "Read from `{}` (sent by {from}); applied once per message id.",
            queue.name
        ),
        messages: vec![Reference::to(&["channels", &queue.name, "messages", name])],
        bindings: OperationBindings {
            amqp: AmqpOperation {
                delivery_mode: None,
                timestamp: None,
                ack: Some(true),
                binding_version: AMQP_BINDING_VERSION,
            },
        },
    }
}

fn message(descriptor: &MessageDescriptor, source: &str) -> anyhow::Result<Message> {
    let name = descriptor.full_name().to_owned();
    let comment = message_comment(descriptor).unwrap_or_default();
    let summary = comment
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .replace('\n', " ");
    let payload = example::payload(descriptor)?;
    let subject = payload
        .as_object()
        .and_then(|o| {
            o.values()
                .find_map(|v| v.as_str().filter(|s| s.contains('/')))
        })
        .unwrap_or_default()
        .to_owned();
    Ok(Message {
        name: name.clone(),
        title: descriptor.name().to_owned(),
        summary: if summary.is_empty() {
            name.clone()
        } else {
            summary
        },
        description: format!(
            "{comment}\n\nProtobuf `{name}` (`{}`), sent as `application/protobuf` in \
             CloudEvents binary mode: the attributes are `cloudEvents_*` headers, \
             `cloudEvents_type` and the AMQP `type` are `{name}`, the AMQP `message_id` is the \
             event id (the consumers' inbox key).",
            descriptor.parent_file().name()
        )
        .trim_start()
        .to_owned(),
        content_type: "application/protobuf",
        headers: headers_schema(&name),
        payload: Payload {
            schema_format: "application/vnd.google.protobuf;version=3",
            schema: proto_text::self_contained(descriptor)?,
        },
        bindings: MessageBindings {
            amqp: AmqpMessage {
                message_type: name.clone(),
                binding_version: AMQP_BINDING_VERSION,
            },
        },
        examples: vec![Example {
            name: "example".into(),
            summary: "Headers as sent; the payload in the proto3 JSON mapping (on the wire it is \
                      the binary protobuf encoding)."
                .into(),
            headers: json!({
                "cloudEvents_specversion": "1.0",
                "cloudEvents_id": EXAMPLE_ID,
                "cloudEvents_type": name,
                "cloudEvents_source": source,
                "cloudEvents_subject": subject,
                "cloudEvents_time": "2026-01-15T09:30:00+00:00",
                "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            }),
            payload,
        }],
        amqp_properties: json!({
            "message_id": "the event id (= cloudEvents_id)",
            "content_type": "application/protobuf",
            "type": name,
            "delivery_mode": 2,
            "timestamp": "cloudEvents_time, in seconds",
        }),
    })
}

fn headers_schema(name: &str) -> serde_json::Value {
    let text = |description: &str| json!({ "type": "string", "description": description });
    json!({
        "type": "object",
        "required": [
            "cloudEvents_specversion", "cloudEvents_id", "cloudEvents_type",
            "cloudEvents_source", "cloudEvents_time", "cloudEvents_subject"
        ],
        "properties": {
            "cloudEvents_specversion": { "type": "string", "const": "1.0", "description": "CloudEvents version." },
            "cloudEvents_id": { "type": "string", "format": "uuid", "description": "Event id (UUIDv7), also the AMQP message_id; consumers apply each id once." },
            "cloudEvents_type": { "type": "string", "const": name, "description": "The protobuf full name, also the routing key of an event." },
            "cloudEvents_source": text("The emitter: `//partnerhub/<service>`, or `//<system>` outside the suite."),
            "cloudEvents_time": { "type": "string", "format": "date-time", "description": "When the fact happened (RFC 3339)." },
            "cloudEvents_subject": text("The resource the message is about (`accounts/{account}`, `users/{user}`)."),
            "traceparent": text("W3C trace context of the request that wrote the message, when traced."),
            "tracestate": text("W3C trace state, when any."),
            "x-partnerhub-attempt": { "type": "integer", "description": "Deliveries before this one; set on a retried or dead-lettered copy." },
            "x-partnerhub-last-error": text("The last handler error (at most 512 characters); set on a retried or dead-lettered copy."),
        }
    })
}
