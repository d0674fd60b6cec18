//! The part of the AsyncAPI 3.0 object model the catalog uses, serialized in
//! the order a reader expects (maps are sorted by key, so the output is
//! stable).

use std::collections::BTreeMap;

use serde::Serialize;

/// The AsyncAPI version of every document.
pub const ASYNCAPI_VERSION: &str = "3.0.0";
/// Version of the AMQP bindings used.
pub const AMQP_BINDING_VERSION: &str = "0.3.0";

/// One application's document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    /// `3.0.0`.
    pub asyncapi: &'static str,
    /// `urn:partnerhub:<application>`.
    pub id: String,
    /// Title, version, description.
    pub info: Info,
    /// The broker.
    pub servers: BTreeMap<String, Server>,
    /// `application/protobuf`.
    pub default_content_type: &'static str,
    /// Routing keys it sends to and queues it reads.
    pub channels: BTreeMap<String, Channel>,
    /// What it sends and receives.
    pub operations: BTreeMap<String, Operation>,
    /// The messages.
    pub components: Components,
}

/// Info object.
#[derive(Debug, Serialize)]
pub struct Info {
    /// Title.
    pub title: String,
    /// The suite's version.
    pub version: String,
    /// Markdown.
    pub description: String,
}

/// Server object.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Server {
    /// `host:port`.
    pub host: String,
    /// `amqp`.
    pub protocol: &'static str,
    /// `0.9.1`.
    pub protocol_version: &'static str,
    /// The virtual host, `/<vhost>`.
    pub pathname: String,
    /// Markdown.
    pub description: String,
}

/// A `$ref`.
#[derive(Debug, Clone, Serialize)]
pub struct Reference {
    /// JSON pointer in the same document.
    #[serde(rename = "$ref")]
    pub target: String,
}

impl Reference {
    /// `#/<parts joined by />`, each part escaped as a JSON pointer token.
    pub fn to(parts: &[&str]) -> Self {
        let mut target = String::from("#");
        for part in parts {
            target.push('/');
            target.push_str(&part.replace('~', "~0").replace('/', "~1"));
        }
        Self { target }
    }
}

/// Channel object: a routing key on an exchange, or a queue.
#[derive(Debug, Serialize)]
pub struct Channel {
    /// The routing key or the queue name.
    pub address: String,
    /// Short title.
    pub title: String,
    /// Markdown.
    pub description: String,
    /// The messages that travel on it.
    pub messages: BTreeMap<String, Reference>,
    /// AMQP binding.
    pub bindings: ChannelBindings,
}

/// Channel bindings.
#[derive(Debug, Serialize)]
pub struct ChannelBindings {
    /// AMQP 0-9-1.
    pub amqp: AmqpChannel,
}

/// AMQP channel binding (0.3.0) with the queue details the binding has no
/// field for as `x-` extensions.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AmqpChannel {
    /// `routingKey` or `queue`.
    pub is: &'static str,
    /// For a routing key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exchange: Option<Exchange>,
    /// For a queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<Queue>,
    /// `quorum` or `classic`.
    #[serde(rename = "x-queue-type", skip_serializing_if = "Option::is_none")]
    pub queue_type: Option<&'static str>,
    /// What the queue is bound to.
    #[serde(rename = "x-bindings", skip_serializing_if = "Vec::is_empty")]
    pub queue_bindings: Vec<QueueBinding>,
    /// Where a failed message waits before it is delivered again.
    #[serde(rename = "x-retry-queue", skip_serializing_if = "Option::is_none")]
    pub retry_queue: Option<RetryQueue>,
    /// Where a message goes after the last attempt.
    #[serde(
        rename = "x-dead-letter-queue",
        skip_serializing_if = "Option::is_none"
    )]
    pub dead_letter_queue: Option<String>,
    /// Deliveries before dead-lettering.
    #[serde(rename = "x-max-attempts", skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// `0.3.0`.
    pub binding_version: &'static str,
}

/// An exchange.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Exchange {
    /// Name.
    pub name: String,
    /// `topic` or `direct`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Survives a broker restart.
    pub durable: bool,
    /// Deleted with its last binding.
    pub auto_delete: bool,
    /// Virtual host.
    pub vhost: String,
}

/// A queue.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Queue {
    /// Name.
    pub name: String,
    /// Survives a broker restart.
    pub durable: bool,
    /// One connection only.
    pub exclusive: bool,
    /// Deleted with its last consumer.
    pub auto_delete: bool,
    /// Virtual host.
    pub vhost: String,
}

/// One binding of a queue.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueBinding {
    /// Source exchange.
    pub exchange: String,
    /// Binding key.
    pub routing_key: String,
}

/// The retry queue of a queue.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryQueue {
    /// Name.
    pub name: String,
    /// Delay before the message returns to the queue.
    pub message_ttl_ms: u64,
}

/// Operation object.
#[derive(Debug, Serialize)]
pub struct Operation {
    /// `send` or `receive`.
    pub action: &'static str,
    /// The channel.
    pub channel: Reference,
    /// Short title.
    pub title: String,
    /// Markdown.
    pub description: String,
    /// Messages of the channel it sends or receives.
    pub messages: Vec<Reference>,
    /// AMQP binding.
    pub bindings: OperationBindings,
}

/// Operation bindings.
#[derive(Debug, Serialize)]
pub struct OperationBindings {
    /// AMQP 0-9-1.
    pub amqp: AmqpOperation,
}

/// AMQP operation binding (0.3.0).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AmqpOperation {
    /// 2: persistent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_mode: Option<u8>,
    /// Whether the message carries a timestamp.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<bool>,
    /// Whether the consumer acknowledges (after its transaction committed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack: Option<bool>,
    /// `0.3.0`.
    pub binding_version: &'static str,
}

/// Components object.
#[derive(Debug, Serialize)]
pub struct Components {
    /// Messages by protobuf full name.
    pub messages: BTreeMap<String, Message>,
}

/// Message object.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// The protobuf full name (also `cloudEvents_type`).
    pub name: String,
    /// The short name.
    pub title: String,
    /// The proto comment's first sentence.
    pub summary: String,
    /// The proto comment and the envelope.
    pub description: String,
    /// `application/protobuf`.
    pub content_type: &'static str,
    /// CloudEvents binary-mode headers and trace context.
    pub headers: serde_json::Value,
    /// The protobuf definition.
    pub payload: Payload,
    /// AMQP binding.
    pub bindings: MessageBindings,
    /// An example.
    pub examples: Vec<Example>,
    /// AMQP basic properties set on every message.
    #[serde(rename = "x-amqp-properties")]
    pub amqp_properties: serde_json::Value,
}

/// Multi-format schema object: the payload as protobuf text.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    /// `application/vnd.google.protobuf;version=3`.
    pub schema_format: &'static str,
    /// Self-contained proto text, the message first.
    pub schema: String,
}

/// Message bindings.
#[derive(Debug, Serialize)]
pub struct MessageBindings {
    /// AMQP 0-9-1.
    pub amqp: AmqpMessage,
}

/// AMQP message binding (0.3.0).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AmqpMessage {
    /// The AMQP `type` property: the protobuf full name.
    pub message_type: String,
    /// `0.3.0`.
    pub binding_version: &'static str,
}

/// Message example object.
#[derive(Debug, Serialize)]
pub struct Example {
    /// Name.
    pub name: String,
    /// What it shows.
    pub summary: String,
    /// Header values.
    pub headers: serde_json::Value,
    /// The payload in the proto3 JSON mapping (proto field names).
    pub payload: serde_json::Value,
}
