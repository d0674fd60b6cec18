//! The bus envelope: CloudEvents binary-mode headers in AMQP basic
//! properties. The first byte picks the mode:
//!
//! - 0: the rest is the properties as they arrive on the wire (AMQP 0-9-1
//!   encoding, as lapin parses them), read as a consumer does. Property: a
//!   message that is read has an id and a type (the inbox key and the
//!   handler's choice), and its attempt counter survives a redelivery.
//! - 1: the rest makes an outgoing message — 16 bytes of id, 8 of time
//!   (seconds), 1 of attempts, then lines: type, source, subject,
//!   traceparent, tracestate, last error, and the payload after them.
//!   Property: what the outbox sends, encoded and parsed as on the wire, is
//!   read back unchanged, and so is a redelivered copy's attempt counter.

use chrono::{DateTime, Utc};
use lapin::BasicProperties;
use lapin::message::Delivery;
use lapin::protocol::basic::{gen_properties, parse_properties};
use lapin::types::AMQPValue;
use partnerhub_platform::bus::{
    ERROR_HEADER, IncomingMessage, OutgoingMessage, redelivery_properties,
};
use uuid::Uuid;

use crate::selector;

/// Reads the envelope made from `data`.
pub fn run(data: &[u8]) {
    let (mode, rest) = selector(data);
    match mode % 2 {
        0 => from_wire(rest),
        _ => round_trip(rest),
    }
}

/// The properties as AMQP encodes them in a content header frame.
fn encode(properties: &BasicProperties) -> Vec<u8> {
    match gen_properties::<Vec<u8>>(properties)(Vec::new().into()) {
        Ok(context) => context.into_inner().0,
        Err(e) => panic!("properties that cannot be encoded ({e}): {properties:?}"),
    }
}

/// A delivery whose properties went through the AMQP encoding.
fn delivery(properties: &BasicProperties, payload: &[u8]) -> Delivery {
    let wire = encode(properties);
    let parsed = match parse_properties(wire.as_slice()) {
        Ok((_, parsed)) => parsed,
        Err(e) => panic!("encoded properties that do not parse ({e}): {properties:?}"),
    };
    let mut delivery = Delivery::mock(1, "".into(), "".into(), false, payload.to_vec());
    delivery.properties = parsed;
    delivery
}

fn from_wire(data: &[u8]) {
    let Ok((payload, properties)) = parse_properties(data) else {
        return;
    };
    let mut received = Delivery::mock(1, "".into(), "".into(), false, payload.to_vec());
    received.properties = properties;
    let Ok(message) = IncomingMessage::from_delivery(&received) else {
        return;
    };
    assert!(!message.id.is_empty(), "a message without an id was read");
    assert!(
        !message.message_type.is_empty(),
        "a message without a type was read"
    );
    assert_eq!(message.payload, payload);
    redelivered(
        &received,
        message.attempt.saturating_add(1),
        "handler failed",
    );
}

/// A copy for the retry queue counts `attempt` and keeps the rest.
fn redelivered(original: &Delivery, attempt: u32, error: &str) {
    let properties = redelivery_properties(original, attempt, error);
    let copy = delivery(&properties, &original.data);
    let before = IncomingMessage::from_delivery(original);
    let after = IncomingMessage::from_delivery(&copy);
    let (Ok(before), Ok(after)) = (before, after) else {
        panic!("a redelivered copy is not read like the original");
    };
    assert_eq!(after.attempt, attempt);
    assert_eq!(
        (
            &after.id,
            &after.message_type,
            &after.subject,
            &after.payload
        ),
        (
            &before.id,
            &before.message_type,
            &before.subject,
            &before.payload
        )
    );
    let last_error = copy
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(ERROR_HEADER).cloned());
    let Some(AMQPValue::LongString(last_error)) = last_error else {
        panic!("a redelivered copy without its last error");
    };
    let last_error = String::from_utf8_lossy(last_error.as_bytes()).into_owned();
    assert!(last_error.chars().count() <= 512);
    assert!(
        error.starts_with(&last_error),
        "{last_error:?} is not from {error:?}"
    );
}

/// Reads a fixed-size array from the front of `data`, zero-padded.
fn take<const N: usize>(data: &mut &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let n = data.len().min(N);
    out[..n].copy_from_slice(&data[..n]);
    *data = &data[n..];
    out
}

/// The next line of `data` as text (`None` when empty).
fn line(data: &mut &[u8]) -> Option<String> {
    let (line, rest) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (*data, &[][..]),
    };
    *data = rest;
    (!line.is_empty()).then(|| String::from_utf8_lossy(line).into_owned())
}

fn round_trip(mut data: &[u8]) {
    let id = Uuid::from_bytes(take::<16>(&mut data));
    let seconds = i64::from_le_bytes(take::<8>(&mut data));
    let attempt = u32::from(take::<1>(&mut data)[0]);
    let message_type = line(&mut data).unwrap_or_default();
    // A protobuf full name: the outbox sends nothing else, and AMQP's
    // `type` property is a short string (at most 255 bytes).
    if message_type.is_empty() || message_type.len() > 255 {
        return;
    }
    let sent = OutgoingMessage {
        id,
        message_type,
        source: line(&mut data).unwrap_or_default(),
        subject: line(&mut data).unwrap_or_default(),
        time: DateTime::<Utc>::from_timestamp(seconds, 0).unwrap_or_default(),
        traceparent: line(&mut data),
        tracestate: line(&mut data),
        payload: Vec::new(),
    };
    let error = line(&mut data).unwrap_or_default();
    let sent = OutgoingMessage {
        payload: data.to_vec(),
        ..sent
    };
    let received = delivery(&sent.properties(), &sent.payload);
    let message = IncomingMessage::from_delivery(&received)
        .unwrap_or_else(|e| panic!("an outgoing message is refused ({e}): {sent:?}"));
    assert_eq!(message.id, sent.id.to_string());
    assert_eq!(message.message_type, sent.message_type);
    assert_eq!(message.source, sent.source);
    assert_eq!(message.subject, sent.subject);
    assert_eq!(message.payload, sent.payload);
    assert_eq!(message.traceparent, sent.traceparent);
    assert_eq!(message.tracestate, sent.tracestate);
    assert_eq!(message.attempt, 0);
    redelivered(&received, attempt, &error);
}
