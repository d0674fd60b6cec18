//! Conversions between chrono times and protobuf timestamps.

use chrono::{DateTime, Utc};

/// A protobuf timestamp of `time`.
pub fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}
