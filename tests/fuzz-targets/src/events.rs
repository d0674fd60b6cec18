//! Event and command payloads from the bus: the first byte picks a message
//! type of [`TYPES`] (every event and command partnerhub sends or consumes),
//! the rest is the payload, decoded as a consumer does
//! (`IncomingMessage::decode`). One more choice decodes a protobuf
//! `Timestamp`, as every consumer reads the time of an event.
//!
//! Properties: decoding never panics; a decoded message encodes to
//! `encoded_len` bytes and decodes back to itself; a timestamp read as a
//! time converts back to the same timestamp, with nanoseconds in range.

use partnerhub_platform::bus::IncomingMessage;
use partnerhub_platform::time;
use partnerhub_proto::{billing, identity, merge, notification, profile, verification};
use prost::{Message, Name};

use crate::selector;

/// One message type: its protobuf full name and its check.
#[derive(Debug, Clone, Copy)]
pub struct MessageType {
    /// The protobuf full name (the CloudEvents type and routing key).
    pub full_name: fn() -> String,
    /// Decodes a payload as this type and checks the round trip.
    pub check: fn(&[u8]),
}

macro_rules! message_types {
    ($($t:ty),* $(,)?) => {
        &[$(MessageType { full_name: <$t as Name>::full_name, check: round_trip::<$t> }),*]
    };
}

/// Every event and command type on the bus.
pub const TYPES: &[MessageType] = message_types![
    billing::v1::InvoiceOverdue,
    billing::v1::PaymentLate,
    identity::v1::AccountCreated,
    identity::v1::UserCreated,
    identity::v1::UserInvited,
    identity::v1::UserUpdated,
    identity::v1::MemberRolesChanged,
    identity::v1::MemberRemoved,
    identity::v1::PasswordChanged,
    identity::v1::AccountStateChanged,
    identity::v1::AccountMerged,
    identity::v1::SessionsEnded,
    merge::v1::MergeInvitationCreated,
    merge::v1::MergeInvitationAccepted,
    merge::v1::MergeInvitationRejected,
    merge::v1::MergeInvitationCancelled,
    merge::v1::MergeInvitationExpired,
    merge::v1::MergeConfirmed,
    merge::v1::MergeCompleted,
    merge::v1::MergeFailed,
    notification::v1::NotificationDelivered,
    notification::v1::NotificationFailed,
    notification::v1::NotificationSuppressed,
    notification::v1::SendMail,
    profile::v1::EnrollmentSubmitted,
    profile::v1::LegalProfileChanged,
    profile::v1::ContactsChanged,
    profile::v1::LocationAdded,
    profile::v1::ProgramStatusChanged,
    profile::v1::ProfileMerged,
    verification::v1::VerificationStatusChanged,
    verification::v1::DocumentsRequested,
    verification::v1::CheckStatusChanged,
    verification::v1::AccountSuspensionRequested,
];

/// Decodes the payload in `data` as the type its first byte picks.
pub fn run(data: &[u8]) {
    let (which, payload) = selector(data);
    match TYPES.get(usize::from(which) % (TYPES.len() + 1)) {
        Some(t) => (t.check)(payload),
        None => timestamp(payload),
    }
}

fn incoming(payload: &[u8]) -> IncomingMessage {
    IncomingMessage {
        id: "fuzz".into(),
        message_type: String::new(),
        source: String::new(),
        subject: String::new(),
        payload: payload.to_vec(),
        attempt: 0,
        traceparent: None,
        tracestate: None,
    }
}

fn round_trip<M: Message + Default + PartialEq + Name + std::fmt::Debug>(payload: &[u8]) {
    let Ok(message) = incoming(payload).decode::<M>() else {
        return;
    };
    let encoded = message.encode_to_vec();
    assert_eq!(encoded.len(), message.encoded_len(), "{}", M::full_name());
    let again = M::decode(encoded.as_slice());
    assert!(
        again.as_ref() == Ok(&message),
        "{} does not survive re-encoding: {message:?} became {again:?}",
        M::full_name()
    );
}

fn timestamp(payload: &[u8]) {
    let Ok(t) = prost_types::Timestamp::decode(payload) else {
        return;
    };
    if let Some(time) = time::from_timestamp(&t) {
        let back = time::timestamp(time);
        assert_eq!(back, t, "{t:?} read as {time:?}");
        assert!(
            (0..1_000_000_000).contains(&back.nanos),
            "{t:?} read as {time:?}, an out-of-range timestamp"
        );
    }
}
