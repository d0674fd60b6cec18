//! One trace follows a request across services: the gRPC call, the outbox,
//! RabbitMQ and each consumer; and the metrics say how calls, consumers,
//! outboxes and dead-letter queues fare. An OTLP receiver in the test process
//! collects what the suite exports.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::trace::v1::Span;
use partnerhub_proto::profile::v1::ProgramKind;
use partnerhub_testkit::{Suite, clients, eventually};
use tokio_stream::wrappers::TcpListenerStream;

use crate::common::mail_about;

/// An OTLP/gRPC trace receiver keeping every span.
#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<Span>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans);
        self.0
            .lock()
            .map_err(|_| tonic::Status::internal("poisoned"))?
            .extend(spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// A metric's name and one data point's attributes.
type Point = (String, Vec<KeyValue>);

/// An OTLP/gRPC metrics receiver keeping every data point.
#[derive(Clone, Default)]
struct MetricsReceiver(Arc<Mutex<Vec<Point>>>);

#[tonic::async_trait]
impl MetricsService for MetricsReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let mut points = Vec::new();
        for metric in request
            .into_inner()
            .resource_metrics
            .into_iter()
            .flat_map(|r| r.scope_metrics)
            .flat_map(|s| s.metrics)
        {
            let attributes: Vec<Vec<KeyValue>> = match metric.data {
                Some(Data::Histogram(h)) => {
                    h.data_points.into_iter().map(|p| p.attributes).collect()
                }
                Some(Data::Gauge(g)) => g.data_points.into_iter().map(|p| p.attributes).collect(),
                Some(Data::Sum(s)) => s.data_points.into_iter().map(|p| p.attributes).collect(),
                _ => Vec::new(),
            };
            points.extend(attributes.into_iter().map(|a| (metric.name.clone(), a)));
        }
        self.0
            .lock()
            .map_err(|_| tonic::Status::internal("poisoned"))?
            .extend(points);
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

fn value<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| match &v.value {
            Some(Value::StringValue(s)) => Some(s.as_str()),
            _ => None,
        })
}

fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| match &v.value {
            Some(Value::StringValue(s)) => Some(s.as_str()),
            _ => None,
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_follows_an_enrollment_through_three_services_and_metrics_say_how_it_went()
-> anyhow::Result<()> {
    let receiver = Receiver::default();
    let metrics = MetricsReceiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .add_service(MetricsServiceServer::new(metrics.clone()))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let telemetry = Arc::new(partnerhub_platform::telemetry::init_with(
        "partnerhub-suite",
        Some(format!("http://{addr}")),
    )?);

    let suite = Suite::start().await?;
    suite.wait_serving().await?;
    let contoso = clients::enrolled(&suite, "Contoso", ProgramKind::Partner).await?;
    // Profile's event reached verification, whose mail command reached
    // notification, which sent the mail.
    mail_about(&suite, &contoso.email, "Confirm the primary contact email").await?;

    let trace = eventually(Duration::from_secs(20), || {
        let receiver = receiver.clone();
        let telemetry = telemetry.clone();
        async move {
            tokio::task::spawn_blocking(move || telemetry.flush())
                .await
                .ok()?;
            let spans = receiver.0.lock().ok()?.clone();
            let enroll = spans.iter().find(|s| {
                attribute(s, "rpc.method").is_some_and(|m| m.ends_with("EnrollmentService/Enroll"))
            })?;
            let same: Vec<&Span> = spans
                .iter()
                .filter(|s| s.trace_id == enroll.trace_id)
                .collect();
            let consumed = |consumer: &str| {
                same.iter()
                    .any(|s| attribute(s, "consumer") == Some(consumer))
            };
            (consumed("verification.events") && consumed("notification.commands"))
                .then(|| same.into_iter().cloned().collect::<Vec<Span>>())
        }
    })
    .await?;
    // Three services in one trace: profile's call, verification's and
    // notification's consumers (and the message types they handled).
    let types: Vec<&str> = trace
        .iter()
        .filter_map(|s| attribute(s, "message_type"))
        .collect();
    assert!(
        types.contains(&"partnerhub.profile.v1.EnrollmentSubmitted"),
        "{types:?}"
    );
    assert!(
        types.contains(&"partnerhub.notification.v1.SendMail"),
        "{types:?}"
    );

    // RED metrics of calls and consumers, the outbox, the dead letters.
    eventually(Duration::from_secs(20), || {
        let metrics = metrics.clone();
        let telemetry = telemetry.clone();
        async move {
            tokio::task::spawn_blocking(move || telemetry.flush())
                .await
                .ok()?;
            let points = metrics.0.lock().ok()?.clone();
            let has = |name: &str, key: &str, wanted: &dyn Fn(&str) -> bool| {
                points
                    .iter()
                    .any(|(n, a)| n == name && value(a, key).is_some_and(wanted))
            };
            (has("rpc.server.call.duration", "rpc.method", &|m| {
                m.ends_with("EnrollmentService/Enroll")
            }) && has(
                "messaging.process.duration",
                "messaging.consumer.group.name",
                &|c| c == "verification.events",
            ) && has("partnerhub.outbox.depth", "service", &|s| s == "profile")
                && has("partnerhub.outbox.lag", "service", &|s| s == "profile")
                && has(
                    "partnerhub.queue.dead_letters",
                    "messaging.destination.name",
                    &|q| q.ends_with(".notification.commands.dead"),
                ))
            .then_some(())
        }
    })
    .await?;
    suite.stop().await
}
