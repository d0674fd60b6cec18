//! CloudEvents binary mode over AMQP 0-9-1: the attributes travel as
//! `cloudEvents_*` headers, the payload is the protobuf message
//! (`application/protobuf`), `message_id` is the event id, and W3C trace
//! context rides in `traceparent`/`tracestate`.

use chrono::{DateTime, Utc};
use lapin::BasicProperties;
use lapin::message::Delivery;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use uuid::Uuid;

/// Header counting how many times a message was delivered before.
pub const ATTEMPT_HEADER: &str = "x-partnerhub-attempt";
/// Header carrying the last handler error (dead-letter diagnostics).
pub const ERROR_HEADER: &str = "x-partnerhub-last-error";
/// Header of a dead-lettered copy naming the broker user that produced the
/// original (its `user_id`, which the copy cannot keep: the consumer
/// publishes it). A replay vouches for it (see the consumer).
pub const PRODUCER_HEADER: &str = "x-partnerhub-producer";
/// RabbitMQ's record of a message's dead-letterings.
const DEATH_HEADER: &str = "x-death";
const CONTENT_TYPE: &str = "application/protobuf";

/// A message on its way out (built from an outbox row).
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    /// Event id (`cloudEvents_id`, AMQP `message_id`).
    pub id: Uuid,
    /// Fully-qualified protobuf name (`cloudEvents_type`).
    pub message_type: String,
    /// Emitting service (`cloudEvents_source`), `//partnerhub/<service>`.
    pub source: String,
    /// Resource the message is about (`cloudEvents_subject`).
    pub subject: String,
    /// When the fact happened (`cloudEvents_time`).
    pub time: DateTime<Utc>,
    /// Encoded protobuf.
    pub payload: Vec<u8>,
    /// W3C `traceparent` of the request that wrote it.
    pub traceparent: Option<String>,
    /// W3C `tracestate`.
    pub tracestate: Option<String>,
}

impl OutgoingMessage {
    /// AMQP properties and headers of the message.
    pub fn properties(&self) -> BasicProperties {
        let mut headers = FieldTable::default();
        let mut put = |k: &str, v: &str| {
            headers.insert(
                ShortString::from(k),
                AMQPValue::LongString(LongString::from(v)),
            );
        };
        put("cloudEvents_specversion", "1.0");
        put("cloudEvents_id", &self.id.to_string());
        put("cloudEvents_type", &self.message_type);
        put("cloudEvents_source", &self.source);
        put("cloudEvents_subject", &self.subject);
        put("cloudEvents_time", &self.time.to_rfc3339());
        if let Some(tp) = &self.traceparent {
            put("traceparent", tp);
        }
        if let Some(ts) = &self.tracestate {
            put("tracestate", ts);
        }
        BasicProperties::default()
            .with_message_id(ShortString::from(self.id.to_string()))
            .with_content_type(CONTENT_TYPE.into())
            .with_type(ShortString::from(self.message_type.as_str()))
            .with_delivery_mode(2)
            .with_timestamp(u64::try_from(self.time.timestamp()).unwrap_or_default())
            .with_headers(headers)
    }
}

/// A received message, decoded from its envelope.
#[derive(Debug, Clone)]
pub struct IncomingMessage {
    /// Message id; the inbox key.
    pub id: String,
    /// Fully-qualified protobuf name.
    pub message_type: String,
    /// Emitting service.
    pub source: String,
    /// Resource the message is about.
    pub subject: String,
    /// Encoded protobuf.
    pub payload: Vec<u8>,
    /// Deliveries before this one (0 on the first).
    pub attempt: u32,
    /// W3C `traceparent`, if any.
    pub traceparent: Option<String>,
    /// W3C `tracestate`, if any.
    pub tracestate: Option<String>,
}

impl IncomingMessage {
    /// Reads the envelope; `Err` names what is missing (a message that can
    /// never be handled, so it is dead-lettered at once).
    pub fn from_delivery(delivery: &Delivery) -> Result<Self, String> {
        let props = &delivery.properties;
        let headers = props.headers().clone().unwrap_or_default();
        let text = |k: &str| -> Option<String> {
            match headers.inner().get(k)? {
                AMQPValue::LongString(s) => {
                    Some(String::from_utf8_lossy(s.as_bytes()).into_owned())
                }
                AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
                _ => None,
            }
        };
        // An empty id or type is as good as none: every message without an
        // id would share one inbox key, and no handler has an empty type.
        let id = props
            .message_id()
            .as_ref()
            .map(|s| s.as_str().to_owned())
            .filter(|id| !id.is_empty())
            .or_else(|| text("cloudEvents_id").filter(|id| !id.is_empty()))
            .ok_or("message has no id")?;
        let message_type = text("cloudEvents_type")
            .filter(|t| !t.is_empty())
            .ok_or("message has no cloudEvents_type")?;
        // Attempts before this delivery: the rejections RabbitMQ counted
        // while the message went round the retry queue, plus those a
        // dead-lettered copy carries.
        let attempt = integer(headers.inner().get(ATTEMPT_HEADER))
            .saturating_add(rejections(headers.inner().get(DEATH_HEADER)));
        Ok(Self {
            id,
            message_type,
            source: text("cloudEvents_source").unwrap_or_default(),
            subject: text("cloudEvents_subject").unwrap_or_default(),
            payload: delivery.data.clone(),
            attempt,
            traceparent: text("traceparent"),
            tracestate: text("tracestate"),
        })
    }

    /// Decodes the payload as `M`.
    pub fn decode<M: prost::Message + Default>(&self) -> Result<M, prost::DecodeError> {
        M::decode(self.payload.as_slice())
    }
}

fn integer(value: Option<&AMQPValue>) -> u32 {
    let n = match value {
        Some(AMQPValue::LongLongInt(n)) => *n,
        Some(AMQPValue::LongInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortShortInt(n)) => i64::from(*n),
        Some(AMQPValue::LongUInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortUInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortShortUInt(n)) => i64::from(*n),
        Some(AMQPValue::Timestamp(n)) => i64::try_from(*n).unwrap_or(0),
        _ => 0,
    };
    u32::try_from(n).unwrap_or(0)
}

/// How many times the message was rejected by a consumer (`x-death`
/// entries with reason `rejected`); expiries in the retry queue do not count.
fn rejections(death: Option<&AMQPValue>) -> u32 {
    let Some(AMQPValue::FieldArray(entries)) = death else {
        return 0;
    };
    entries
        .as_slice()
        .iter()
        .filter_map(|entry| match entry {
            AMQPValue::FieldTable(t) => Some(t),
            _ => None,
        })
        .filter(|t| {
            matches!(t.inner().get("reason"), Some(AMQPValue::LongString(r)) if r.as_bytes() == b"rejected")
        })
        .map(|t| integer(t.inner().get("count")))
        .fold(0, u32::saturating_add)
}

/// The properties of `delivery` with the attempt counter and last error set,
/// for a copy sent to the dead-letter queue (the error is cut to 512
/// characters), recording the original `user_id` as the producer.
pub fn redelivery_properties(delivery: &Delivery, attempt: u32, error: &str) -> BasicProperties {
    let producer = delivery
        .properties
        .user_id()
        .as_ref()
        .map(|u| u.as_str().to_owned());
    dead_letter_properties(delivery, attempt, error, producer.as_deref())
}

/// The properties of a copy of `delivery` that its consumer publishes to
/// the dead-letter queue: attempts and last error set, `x-death` dropped
/// (the copy's attempts are in the header), and the `user_id` replaced by a
/// [`PRODUCER_HEADER`] naming `producer` (none: no header) — a publish by
/// the consumer may carry no other user's id.
pub fn dead_letter_properties(
    delivery: &Delivery,
    attempt: u32,
    error: &str,
    producer: Option<&str>,
) -> BasicProperties {
    let original = delivery.properties.headers().clone().unwrap_or_default();
    let mut headers = FieldTable::default();
    for (name, value) in original.inner() {
        if ![DEATH_HEADER, PRODUCER_HEADER].contains(&name.as_str()) {
            headers.insert(name.clone(), value.clone());
        }
    }
    headers.insert(
        ATTEMPT_HEADER.into(),
        AMQPValue::LongLongInt(i64::from(attempt)),
    );
    let error: String = error.chars().take(512).collect();
    headers.insert(
        ERROR_HEADER.into(),
        AMQPValue::LongString(LongString::from(error)),
    );
    if let Some(producer) = producer {
        headers.insert(
            PRODUCER_HEADER.into(),
            AMQPValue::LongString(LongString::from(producer)),
        );
    }
    without_user_id(&delivery.properties).with_headers(headers)
}

/// `properties` without a `user_id` (lapin has no setter to clear one).
pub(crate) fn without_user_id(p: &BasicProperties) -> BasicProperties {
    let mut out = BasicProperties::default();
    if let Some(v) = p.content_type() {
        out = out.with_content_type(v.clone());
    }
    if let Some(v) = p.content_encoding() {
        out = out.with_content_encoding(v.clone());
    }
    if let Some(v) = p.headers() {
        out = out.with_headers(v.clone());
    }
    if let Some(v) = p.delivery_mode() {
        out = out.with_delivery_mode(*v);
    }
    if let Some(v) = p.priority() {
        out = out.with_priority(*v);
    }
    if let Some(v) = p.correlation_id() {
        out = out.with_correlation_id(v.clone());
    }
    if let Some(v) = p.reply_to() {
        out = out.with_reply_to(v.clone());
    }
    if let Some(v) = p.expiration() {
        out = out.with_expiration(v.clone());
    }
    if let Some(v) = p.message_id() {
        out = out.with_message_id(v.clone());
    }
    if let Some(v) = p.timestamp() {
        out = out.with_timestamp(*v);
    }
    if let Some(v) = p.kind() {
        out = out.with_type(v.clone());
    }
    if let Some(v) = p.app_id() {
        out = out.with_app_id(v.clone());
    }
    if let Some(v) = p.cluster_id() {
        out = out.with_cluster_id(v.clone());
    }
    out
}

/// A header's text, if it is one.
pub(crate) fn header_text(properties: &BasicProperties, name: &str) -> Option<String> {
    match properties.headers().as_ref()?.inner().get(name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudevents_headers_and_trace_context_survive_the_trip() {
        let sent = OutgoingMessage {
            id: Uuid::now_v7(),
            message_type: "partnerhub.identity.v1.UserCreated".into(),
            source: "//partnerhub/identity".into(),
            subject: "users/u1".into(),
            time: chrono::Utc::now(),
            payload: vec![1, 2, 3],
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            tracestate: None,
        };
        let mut delivery = Delivery::mock(
            1,
            "x".into(),
            sent.message_type.as_str().into(),
            false,
            sent.payload.clone(),
        );
        delivery.properties = sent.properties();
        let headers = delivery.properties.headers().clone().unwrap_or_default();
        for key in [
            "cloudEvents_specversion",
            "cloudEvents_id",
            "cloudEvents_type",
            "cloudEvents_source",
            "cloudEvents_subject",
            "cloudEvents_time",
            "traceparent",
        ] {
            assert!(headers.inner().contains_key(key), "missing {key}");
        }
        assert_eq!(
            delivery
                .properties
                .content_type()
                .as_ref()
                .map(|c| c.as_str()),
            Some("application/protobuf")
        );
        let received = IncomingMessage::from_delivery(&delivery);
        let received = received.as_ref().ok();
        assert_eq!(received.map(|m| m.id.clone()), Some(sent.id.to_string()));
        assert_eq!(
            received.map(|m| m.message_type.as_str()),
            Some("partnerhub.identity.v1.UserCreated")
        );
        assert_eq!(
            received.and_then(|m| m.traceparent.clone()),
            sent.traceparent
        );
        assert_eq!(received.map(|m| m.attempt), Some(0));
        // A redelivered copy counts its attempts.
        delivery.properties = redelivery_properties(&delivery, 2, "boom");
        let again = IncomingMessage::from_delivery(&delivery).ok();
        assert_eq!(again.map(|m| m.attempt), Some(2));
    }

    #[test]
    fn attempts_count_the_rejections_rabbitmq_recorded_and_a_copy_names_its_producer() {
        use lapin::types::FieldArray;
        let death = |queue: &str, reason: &str, count: i64| {
            let mut t = FieldTable::default();
            t.insert("queue".into(), AMQPValue::LongString(queue.into()));
            t.insert("reason".into(), AMQPValue::LongString(reason.into()));
            t.insert("count".into(), AMQPValue::LongLongInt(count));
            AMQPValue::FieldTable(t)
        };
        let mut headers = FieldTable::default();
        headers.insert("cloudEvents_type".into(), AMQPValue::LongString("t".into()));
        headers.insert(
            DEATH_HEADER.into(),
            AMQPValue::FieldArray(FieldArray::from(vec![
                death("q", "rejected", 2),
                death("q.retry", "expired", 2),
            ])),
        );
        headers.insert(PRODUCER_HEADER.into(), AMQPValue::LongString("liar".into()));
        let mut delivery = Delivery::mock(1, "x".into(), "k".into(), false, vec![]);
        delivery.properties = BasicProperties::default()
            .with_message_id("m1".into())
            .with_user_id("partnerhub-profile".into())
            .with_headers(headers);
        let message = IncomingMessage::from_delivery(&delivery).ok();
        assert_eq!(message.map(|m| m.attempt), Some(2));
        let copy = redelivery_properties(&delivery, 3, "boom");
        assert_eq!(
            copy.user_id(),
            &None,
            "a consumer cannot publish another user's id"
        );
        assert_eq!(
            header_text(&copy, PRODUCER_HEADER).as_deref(),
            Some("partnerhub-profile")
        );
        assert_eq!(copy.message_id().as_ref().map(|m| m.as_str()), Some("m1"));
        delivery.properties = copy;
        let again = IncomingMessage::from_delivery(&delivery).ok();
        assert_eq!(
            again.map(|m| m.attempt),
            Some(3),
            "x-death is not counted twice"
        );
    }

    #[test]
    fn a_message_without_type_is_refused() {
        let delivery = Delivery::mock(1, "x".into(), "k".into(), false, vec![]);
        assert!(IncomingMessage::from_delivery(&delivery).is_err());
    }

    #[test]
    fn an_empty_id_or_type_is_refused() {
        let mut headers = FieldTable::default();
        headers.insert("cloudEvents_type".into(), AMQPValue::LongString("".into()));
        let mut delivery = Delivery::mock(1, "x".into(), "k".into(), false, vec![]);
        delivery.properties = BasicProperties::default()
            .with_message_id("".into())
            .with_headers(headers.clone());
        assert!(IncomingMessage::from_delivery(&delivery).is_err());
        headers.insert("cloudEvents_type".into(), AMQPValue::LongString("t".into()));
        delivery.properties = BasicProperties::default()
            .with_message_id("".into())
            .with_headers(headers.clone());
        assert!(
            IncomingMessage::from_delivery(&delivery).is_err(),
            "empty id"
        );
        delivery.properties = BasicProperties::default()
            .with_message_id("m1".into())
            .with_headers(headers);
        assert!(IncomingMessage::from_delivery(&delivery).is_ok());
    }
}
