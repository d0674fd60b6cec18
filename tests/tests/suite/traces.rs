//! One trace follows a request across services: the gRPC call, the outbox,
//! RabbitMQ and each consumer. An OTLP receiver in the test process collects
//! the spans the suite exports.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
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
async fn one_trace_follows_an_enrollment_through_three_services() -> anyhow::Result<()> {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
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
    suite.stop().await
}
