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
        let attempt = match headers.inner().get(ATTEMPT_HEADER) {
            Some(AMQPValue::LongLongInt(n)) => u32::try_from(*n).unwrap_or(0),
            Some(AMQPValue::LongInt(n)) => u32::try_from(*n).unwrap_or(0),
            _ => 0,
        };
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

/// The properties of `delivery` with the attempt counter and last error set,
/// for a copy sent to the retry or dead-letter queue (the error is cut to 512
/// characters).
pub fn redelivery_properties(delivery: &Delivery, attempt: u32, error: &str) -> BasicProperties {
    let mut headers = delivery.properties.headers().clone().unwrap_or_default();
    headers.insert(
        ATTEMPT_HEADER.into(),
        AMQPValue::LongLongInt(i64::from(attempt)),
    );
    let error: String = error.chars().take(512).collect();
    headers.insert(
        ERROR_HEADER.into(),
        AMQPValue::LongString(LongString::from(error)),
    );
    delivery.properties.clone().with_headers(headers)
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
