//! RED metrics and queue health, exported over OTLP with the traces
//! (`OTEL_EXPORTER_OTLP_ENDPOINT`): the duration and outcome of every RPC
//! and every consumed message, each service's outbox depth and lag, and
//! the depth of each dead-letter queue. Without an endpoint the instruments
//! are no-ops.

use std::sync::OnceLock;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Gauge, Histogram};

struct Instruments {
    rpc: Histogram<f64>,
    consume: Histogram<f64>,
    outbox_depth: Gauge<u64>,
    outbox_lag: Gauge<f64>,
    dead_letters: Gauge<u64>,
}

fn instruments() -> &'static Instruments {
    // Created on first use, after telemetry installed the meter provider.
    static INSTRUMENTS: OnceLock<Instruments> = OnceLock::new();
    INSTRUMENTS.get_or_init(|| {
        let meter = opentelemetry::global::meter("partnerhub");
        Instruments {
            rpc: meter
                .f64_histogram("rpc.server.call.duration")
                .with_unit("s")
                .with_description("Duration of gRPC calls served, by method and status code.")
                .build(),
            consume: meter
                .f64_histogram("messaging.process.duration")
                .with_unit("s")
                .with_description(
                    "Duration of handling one message, by consumer, type and outcome (ack, retry, dead).",
                )
                .build(),
            outbox_depth: meter
                .u64_gauge("partnerhub.outbox.depth")
                .with_unit("{message}")
                .with_description("Messages written but not yet published, by service.")
                .build(),
            outbox_lag: meter
                .f64_gauge("partnerhub.outbox.lag")
                .with_unit("s")
                .with_description("Age of the oldest unpublished message, by service.")
                .build(),
            dead_letters: meter
                .u64_gauge("partnerhub.queue.dead_letters")
                .with_unit("{message}")
                .with_description("Messages in a dead-letter queue.")
                .build(),
        }
    })
}

/// Records one served call.
pub fn rpc(method: &str, status_code: &str, seconds: f64) {
    instruments().rpc.record(
        seconds,
        &[
            KeyValue::new("rpc.system", "grpc"),
            KeyValue::new("rpc.method", method.to_owned()),
            KeyValue::new("rpc.grpc.status_code", status_code.to_owned()),
        ],
    );
}

/// Records one handled message.
pub fn consumed(consumer: &str, message_type: &str, outcome: &'static str, seconds: f64) {
    instruments().consume.record(
        seconds,
        &[
            KeyValue::new("messaging.consumer.group.name", consumer.to_owned()),
            KeyValue::new("messaging.message.type", message_type.to_owned()),
            KeyValue::new("outcome", outcome),
        ],
    );
}

/// Records a service's outbox depth and the age of its oldest row.
pub fn outbox(service: &str, depth: u64, lag_seconds: f64) {
    let attributes = [KeyValue::new("service", service.to_owned())];
    instruments().outbox_depth.record(depth, &attributes);
    instruments().outbox_lag.record(lag_seconds, &attributes);
}

/// Records the depth of a dead-letter queue.
pub fn dead_letters(queue: &str, depth: u64) {
    instruments().dead_letters.record(
        depth,
        &[KeyValue::new(
            "messaging.destination.name",
            queue.to_owned(),
        )],
    );
}
