//! Logs and traces: `tracing` with an env filter (`RUST_LOG`), text or JSON
//! lines (`PARTNERHUB_LOG_FORMAT=json`), and OpenTelemetry traces exported
//! over OTLP/gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. W3C trace
//! context crosses gRPC calls, the outbox and RabbitMQ.

use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Keeps the trace and metric exporters alive; `shutdown` flushes them.
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    meters: Option<opentelemetry_sdk::metrics::SdkMeterProvider>,
}

impl Telemetry {
    /// Exports the spans ended so far. Blocking: call it off the async
    /// runtime's worker threads.
    pub fn flush(&self) {
        if let Some(provider) = &self.provider
            && let Err(e) = provider.force_flush()
        {
            eprintln!("telemetry flush: {e}");
        }
        if let Some(meters) = &self.meters
            && let Err(e) = meters.force_flush()
        {
            eprintln!("metrics flush: {e}");
        }
    }

    /// Flushes and stops the exporter. Blocking: call it off the async
    /// runtime's worker threads.
    pub fn shutdown(self) {
        if let Some(meters) = self.meters
            && let Err(e) = meters.shutdown()
        {
            eprintln!("metrics shutdown: {e}");
        }
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            eprintln!("telemetry shutdown: {e}");
        }
    }
}

/// Installs the global subscriber. Must run inside the Tokio runtime (the
/// OTLP exporter is built on it).
pub fn init(service_name: &str) -> anyhow::Result<Telemetry> {
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty());
    init_with(service_name, endpoint)
}

/// [`init`] with the OTLP endpoint given (`None`: no export).
pub fn init_with(service_name: &str, otlp_endpoint: Option<String>) -> anyhow::Result<Telemetry> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,lapin=warn,h2=warn,tower=warn"));
    let json = std::env::var("PARTNERHUB_LOG_FORMAT").is_ok_and(|v| v == "json");
    let fmt = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer().with_target(false).boxed()
    };
    let (otel, provider, meters) = match otlp_endpoint {
        Some(endpoint) => {
            use opentelemetry_otlp::WithExportConfig as _;
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .build()?;
            // OTEL_SERVICE_NAME (one per Deployment) wins over the default.
            let name = std::env::var("OTEL_SERVICE_NAME")
                .ok()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| service_name.to_owned());
            let resource = opentelemetry_sdk::Resource::builder()
                .with_service_name(name)
                .build();
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(resource.clone())
                .build();
            let tracer = provider.tracer("partnerhub");
            opentelemetry::global::set_tracer_provider(provider.clone());
            let metric_exporter = opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()?;
            let reader = opentelemetry_sdk::metrics::PeriodicReader::builder(metric_exporter)
                .with_interval(std::time::Duration::from_secs(15))
                .build();
            let meters = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
                .with_reader(reader)
                .with_resource(resource)
                .build();
            opentelemetry::global::set_meter_provider(meters.clone());
            (
                Some(tracing_opentelemetry::layer().with_tracer(tracer)),
                Some(provider),
                Some(meters),
            )
        }
        None => (None, None, None),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()?;
    Ok(Telemetry { provider, meters })
}

/// The W3C trace context of the current span, for an outbox row.
pub fn current_trace_context() -> (Option<String>, Option<String>) {
    let context = tracing::Span::current().context();
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    (
        carrier.remove("traceparent"),
        carrier.remove("tracestate").filter(|s| !s.is_empty()),
    )
}

/// Makes `span` a child of the remote context in `traceparent`/`tracestate`.
pub fn set_parent_from(span: &tracing::Span, traceparent: Option<&str>, tracestate: Option<&str>) {
    let Some(traceparent) = traceparent else {
        return;
    };
    let mut carrier = HashMap::new();
    carrier.insert("traceparent".to_owned(), traceparent.to_owned());
    if let Some(ts) = tracestate {
        carrier.insert("tracestate".to_owned(), ts.to_owned());
    }
    let parent = TraceContextPropagator::new().extract(&carrier);
    let _ = span.set_parent(parent);
}

/// Reads trace context from HTTP/2 (gRPC) request headers.
pub(crate) struct HeaderExtractor<'a>(pub &'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Makes `span` a child of the trace context in gRPC request headers.
pub(crate) fn set_parent_from_headers(span: &tracing::Span, headers: &http::HeaderMap) {
    if headers.contains_key("traceparent") {
        let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
        let _ = span.set_parent(parent);
    }
}
