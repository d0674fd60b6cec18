//! The AsyncAPI catalog (`docs/asyncapi/*.asyncapi.yaml`) against the proto
//! files and the services' real bus topology: every message of an
//! `events.proto` is sent by its producer on the events exchange with its
//! full name as routing key, every command by the services that send it on
//! the commands exchange, each queue receives exactly what it is bound to,
//! and every message of the catalog exists in proto/ with all its fields and
//! an example that decodes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, ensure};
use partnerhub_platform::bus::definitions::ServiceTopology;
use partnerhub_platform::bus::{BusConfig, QueueKind};
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use serde_json::Value;

/// What one application's document says it sends or receives: message full
/// name → the channel's address, exchange (or queue) and binding keys.
#[derive(Debug, Default)]
struct Declared {
    sends: BTreeMap<String, Vec<Channel>>,
    receives: BTreeMap<String, Vec<Channel>>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Channel {
    address: String,
    /// `topic:<exchange>`, `direct:<exchange>` or `queue:<queue>`.
    binding: String,
    /// A queue's binding keys as `<exchange> <key>`.
    bound_to: BTreeSet<String>,
}

fn topologies() -> Vec<ServiceTopology> {
    vec![
        partnerhub_identity::topology(),
        partnerhub_profile::topology(),
        partnerhub_verification::topology(),
        partnerhub_notification::topology(),
        partnerhub_merge::topology(),
    ]
}

fn pool() -> anyhow::Result<DescriptorPool> {
    DescriptorPool::decode(partnerhub_proto::FILE_DESCRIPTOR_SET).context("the descriptor set")
}

/// Messages of every `<file_name>` in the descriptor set.
fn messages_in(pool: &DescriptorPool, file_name: &str) -> Vec<MessageDescriptor> {
    pool.files()
        .filter(|f| f.name().ends_with(&format!("/{file_name}")))
        .flat_map(|f| f.messages().collect::<Vec<_>>())
        .collect()
}

/// Every committed document, by application (file name without the suffix).
fn documents() -> anyhow::Result<BTreeMap<String, Value>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/asyncapi");
    let mut docs = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let Some(app) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".asyncapi.yaml"))
        else {
            continue;
        };
        let text = std::fs::read_to_string(&path)?;
        let doc: Value =
            serde_norway::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        ensure!(
            doc["asyncapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.")),
            "{} is not AsyncAPI 3",
            path.display()
        );
        docs.insert(app.to_owned(), doc);
    }
    ensure!(!docs.is_empty(), "no document in {}", dir.display());
    Ok(docs)
}

/// Follows `$ref`s inside `doc`.
fn resolve<'a>(doc: &'a Value, mut value: &'a Value) -> anyhow::Result<&'a Value> {
    for _ in 0..8 {
        let Some(target) = value.get("$ref").and_then(Value::as_str) else {
            return Ok(value);
        };
        let pointer = target
            .strip_prefix('#')
            .with_context(|| format!("{target} is not a local reference"))?;
        value = doc
            .pointer(pointer)
            .with_context(|| format!("{target} points nowhere"))?;
    }
    anyhow::bail!("a reference chain is too long")
}

fn channel_of(doc: &Value, operation: &Value) -> anyhow::Result<Channel> {
    let channel = resolve(doc, &operation["channel"])?;
    let amqp = &channel["bindings"]["amqp"];
    let binding = match amqp["is"].as_str() {
        Some("queue") => format!("queue:{}", amqp["queue"]["name"].as_str().unwrap_or("")),
        _ => format!(
            "{}:{}",
            amqp["exchange"]["type"].as_str().unwrap_or(""),
            amqp["exchange"]["name"].as_str().unwrap_or("")
        ),
    };
    let bound_to = amqp["x-bindings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            format!(
                "{} {}",
                b["exchange"].as_str().unwrap_or(""),
                b["routingKey"].as_str().unwrap_or("")
            )
        })
        .collect();
    Ok(Channel {
        address: channel["address"].as_str().unwrap_or("").to_owned(),
        binding,
        bound_to,
    })
}

fn declared(doc: &Value) -> anyhow::Result<Declared> {
    let mut out = Declared::default();
    let operations = doc["operations"]
        .as_object()
        .context("a document has operations")?;
    for (id, operation) in operations {
        let channel = channel_of(doc, operation).with_context(|| format!("operation {id}"))?;
        for message in operation["messages"].as_array().into_iter().flatten() {
            let name = resolve(doc, message)?["name"]
                .as_str()
                .with_context(|| format!("a message of {id} has no name"))?
                .to_owned();
            let side = match operation["action"].as_str() {
                Some("send") => &mut out.sends,
                Some("receive") => &mut out.receives,
                other => anyhow::bail!("{id}: action {other:?}"),
            };
            side.entry(name).or_default().push(channel.clone());
        }
    }
    Ok(out)
}

#[test]
fn every_event_and_command_is_sent_where_the_topology_sends_it() -> anyhow::Result<()> {
    let pool = pool()?;
    let bus = BusConfig::new("amqp://unused");
    let docs = documents()?;
    let services = topologies();
    // application → message → the channel it must be sent on.
    let mut expected: BTreeMap<String, BTreeMap<String, Channel>> = BTreeMap::new();
    let event_channel = |m: &MessageDescriptor| Channel {
        address: m.full_name().to_owned(),
        binding: format!("topic:{}", bus.events_exchange()),
        bound_to: BTreeSet::new(),
    };
    let events = messages_in(&pool, "events.proto");
    ensure!(events.len() > 20, "only {} events found", events.len());
    for event in &events {
        // A suite service publishes its package's events; any other package
        // is an outside publisher named by its package (billing).
        let producer = services
            .iter()
            .find(|s| event.full_name().starts_with(s.events_prefix))
            .map(|s| s.service.to_owned())
            .or_else(|| event.package_name().split('.').nth(1).map(str::to_owned))
            .context("an event's package names its producer")?;
        expected
            .entry(producer)
            .or_default()
            .insert(event.full_name().to_owned(), event_channel(event));
    }
    let commands = messages_in(&pool, "commands.proto");
    ensure!(!commands.is_empty(), "no command message found");
    for sender in &services {
        for target in sender.commands_to {
            let prefix = services
                .iter()
                .find(|s| s.service == *target)
                .map(|s| s.events_prefix)
                .context("commands go to a service")?;
            for command in commands
                .iter()
                .filter(|c| c.full_name().starts_with(prefix))
            {
                expected
                    .entry(sender.service.to_owned())
                    .or_default()
                    .insert(
                        command.full_name().to_owned(),
                        Channel {
                            address: (*target).to_owned(),
                            binding: format!("direct:{}", bus.commands_exchange()),
                            bound_to: BTreeSet::new(),
                        },
                    );
            }
        }
    }
    for command in &commands {
        ensure!(
            expected
                .values()
                .any(|sends| sends.contains_key(command.full_name())),
            "no service sends the command {}",
            command.full_name()
        );
    }
    let apps: BTreeSet<&String> = expected.keys().collect();
    let documented: BTreeSet<&String> = docs.keys().collect();
    ensure!(
        apps == documented,
        "documents {documented:?}, applications {apps:?}"
    );
    for (app, sends) in &expected {
        let found = declared(&docs[app])?;
        let found: BTreeMap<String, Channel> = found
            .sends
            .into_iter()
            .map(|(name, channels)| (name, channels[0].clone()))
            .collect();
        ensure!(
            &found == sends,
            "{app} sends\n{found:#?}\nbut the code sends\n{sends:#?}"
        );
    }
    Ok(())
}

#[test]
fn each_queue_receives_exactly_what_the_topology_binds() -> anyhow::Result<()> {
    let pool = pool()?;
    let bus = BusConfig::new("amqp://unused");
    let docs = documents()?;
    let commands = messages_in(&pool, "commands.proto");
    let mut expected_receives = 0;
    for service in topologies() {
        let doc = docs
            .get(service.service)
            .with_context(|| format!("no document for {}", service.service))?;
        let found = declared(doc)?;
        for (kind, keys) in &service.consumes {
            let queue = bus.queue(service.service, *kind);
            let (exchange, keys, messages): (String, Vec<String>, BTreeSet<String>) = match kind {
                QueueKind::Events => (
                    bus.events_exchange(),
                    keys.clone(),
                    keys.iter().cloned().collect(),
                ),
                QueueKind::Commands => (
                    bus.commands_exchange(),
                    vec![service.service.to_owned()],
                    commands
                        .iter()
                        .filter(|c| c.full_name().starts_with(service.events_prefix))
                        .map(|c| c.full_name().to_owned())
                        .collect(),
                ),
            };
            ensure!(!messages.is_empty(), "{queue} receives nothing");
            let channel = Channel {
                address: queue.clone(),
                binding: format!("queue:{queue}"),
                bound_to: keys.iter().map(|k| format!("{exchange} {k}")).collect(),
            };
            let received: BTreeSet<String> = found
                .receives
                .iter()
                .filter(|(_, channels)| channels.contains(&channel))
                .map(|(name, _)| name.clone())
                .collect();
            ensure!(
                received == messages,
                "{queue} (bound {keys:?}) receives {received:?}, expected {messages:?}"
            );
            expected_receives += messages.len();
        }
    }
    let documented: usize = docs
        .values()
        .map(|doc| declared(doc).map(|d| d.receives.values().map(Vec::len).sum::<usize>()))
        .sum::<anyhow::Result<usize>>()?;
    ensure!(
        documented == expected_receives,
        "{documented} receive operations documented, {expected_receives} bound"
    );
    Ok(())
}

#[test]
fn every_catalog_message_is_a_proto_message_with_its_fields_and_a_decodable_example()
-> anyhow::Result<()> {
    let pool = pool()?;
    let docs = documents()?;
    let mut checked = 0;
    for (app, doc) in &docs {
        let messages = doc["components"]["messages"]
            .as_object()
            .with_context(|| format!("{app} has no messages"))?;
        for message in messages.values() {
            let name = message["name"].as_str().context("a message has a name")?;
            let descriptor = pool
                .get_message_by_name(name)
                .with_context(|| format!("{app}: {name} is not in proto/"))?;
            let file = descriptor.parent_file();
            ensure!(
                file.name().ends_with("/events.proto") || file.name().ends_with("/commands.proto"),
                "{name} is in {}, neither an events nor a commands file",
                file.name()
            );
            ensure!(message["contentType"] == "application/protobuf", "{name}");
            let payload = &message["payload"];
            ensure!(
                payload["schemaFormat"]
                    .as_str()
                    .is_some_and(|f| f.starts_with("application/vnd.google.protobuf")),
                "{name}: payload is not protobuf"
            );
            let text = payload["schema"].as_str().unwrap_or("");
            ensure!(
                text.contains(&format!("message {} {{", descriptor.name())),
                "{name}: the schema lacks the message"
            );
            for field in descriptor.fields() {
                let declaration = format!(" {} = {};", field.name(), field.number());
                ensure!(
                    text.contains(&declaration),
                    "{name}: the schema lacks `{declaration}`"
                );
            }
            let headers = &message["headers"]["properties"];
            for header in [
                "cloudEvents_specversion",
                "cloudEvents_id",
                "cloudEvents_type",
                "cloudEvents_source",
                "cloudEvents_time",
                "cloudEvents_subject",
                "traceparent",
                "tracestate",
            ] {
                ensure!(headers.get(header).is_some(), "{name}: no {header} header");
            }
            ensure!(headers["cloudEvents_type"]["const"] == name, "{name}: type");
            let example = &message["examples"][0];
            ensure!(
                example["headers"]["cloudEvents_type"] == name,
                "{name}: example type"
            );
            let decoded =
                DynamicMessage::deserialize(descriptor.clone(), example["payload"].clone())
                    .with_context(|| format!("{name}: the example payload does not decode"))?;
            ensure!(
                descriptor.fields().all(|f| decoded.has_field(&f)),
                "{name}: the example leaves a field out"
            );
            checked += 1;
        }
    }
    ensure!(checked > 20, "only {checked} messages checked");
    Ok(())
}
