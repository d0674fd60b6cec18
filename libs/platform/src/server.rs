//! The gRPC server every service runs: grpc.health.v1, reflection, and one
//! tower stack — request id, trace context, rate limits on public methods,
//! load shedding over a concurrency limit, authentication and authorization — with a per-call timeout and a
//! graceful drain on shutdown.

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tonic::Code;
use tower::{BoxError, Layer, Service, ServiceBuilder};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tracing::Instrument;

use crate::auth::{AccessRules, AuthLayer};
use crate::error::refused;
use crate::rate_limit::{RateLimitLayer, RateLimitSettings};

/// Limits of the server.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Longest a call may run (a shorter `grpc-timeout` wins).
    pub request_timeout: Duration,
    /// Calls in flight at once; more are refused at once with UNAVAILABLE
    /// (load shedding) so clients back off instead of queueing.
    pub max_concurrent_requests: usize,
    /// Rate limits of the public methods.
    pub rate_limits: RateLimitSettings,
    /// After a shutdown signal, how long the server goes on accepting calls
    /// while it reports NOT_SERVING, so that load balancers and clients that
    /// have not seen the change yet are still answered; then it stops
    /// accepting and drains.
    pub shutdown_delay: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            max_concurrent_requests: 512,
            rate_limits: RateLimitSettings::default(),
            shutdown_delay: Duration::ZERO,
        }
    }
}

/// The reflection services (v1 and v1alpha) advertising `service_names`.
pub fn reflection(
    service_names: &[&str],
) -> anyhow::Result<(
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    tonic_reflection::server::v1alpha::ServerReflectionServer<
        impl tonic_reflection::server::v1alpha::ServerReflection,
    >,
)> {
    let mut v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(partnerhub_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
    let mut v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(partnerhub_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
    for name in service_names.iter().chain(["grpc.health.v1.Health"].iter()) {
        v1 = v1.with_service_name(*name);
        v1alpha = v1alpha.with_service_name(*name);
    }
    Ok((v1.build_v1()?, v1alpha.build_v1alpha()?))
}

/// Serves `routes` on `listener` behind the platform's layers until
/// `shutdown` resolves, then drains in-flight calls.
pub async fn serve(
    listener: TcpListener,
    routes: tonic::service::Routes,
    auth: AuthLayer,
    limits: &ServerLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let stack = ServiceBuilder::new()
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer)
        .layer(RateLimitLayer::new(
            &limits.rate_limits,
            &AccessRules::builtin(),
        ))
        .layer(admission(limits.max_concurrent_requests))
        .layer(auth)
        .into_inner();
    tonic::transport::Server::builder()
        .timeout(limits.request_timeout)
        .layer(stack)
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming(listener), shutdown)
        .await?;
    Ok(())
}

/// Accepted connections with `TCP_NODELAY`: without it a response larger
/// than one segment waits for the client's delayed ACK (40 ms on Linux), as
/// every list page did. Keep-alive probes find dead peers.
pub fn incoming(listener: TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(Duration::from_secs(60)))
}

/// Admission control: at most `max` calls in flight; one more is refused at
/// once with UNAVAILABLE instead of waiting in a queue.
fn admission<S>(
    max: usize,
) -> impl Layer<S, Service = Overload<tower::load_shed::LoadShed<tower::limit::ConcurrencyLimit<S>>>>
+ Clone {
    ServiceBuilder::new()
        .layer(OverloadLayer)
        .load_shed()
        .concurrency_limit(max)
        .into_inner()
}

/// Opens a span per call (method, request id) that continues the caller's
/// trace, and logs the outcome at DEBUG.
#[derive(Debug, Clone, Copy)]
struct TraceLayer;

impl<S> Layer<S> for TraceLayer {
    type Service = Trace<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Trace { inner }
    }
}

#[derive(Debug, Clone)]
struct Trace<S> {
    inner: S,
}

impl<S, B, R> Service<http::Request<B>> for Trace<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let request_id = request
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let span = tracing::info_span!(
            "grpc",
            otel.kind = "server",
            rpc.method = %request.uri().path(),
            request_id = %request_id,
        );
        crate::telemetry::set_parent_from_headers(&span, request.headers());
        let started = Instant::now();
        let method = request.uri().path().to_owned();
        let future = self.inner.call(request);
        Box::pin(
            async move {
                let mut result = future.await;
                if let Ok(response) = &mut result {
                    undecodable_is_invalid_argument(response.headers_mut());
                }
                let status = match &result {
                    Ok(r) => r
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("0")
                        .to_owned(),
                    Err(e) => format!("error: {e}"),
                };
                tracing::debug!(%status, elapsed_ms = started.elapsed().as_millis() as u64, "Call finished.");
                crate::metrics::rpc(&method, &status, started.elapsed().as_secs_f64());
                result
            }
            .instrument(span),
        )
    }
}

/// A request body that does not decode is the caller's error: tonic answers
/// INTERNAL, which says the server failed; answer INVALID_ARGUMENT instead,
/// with a BadRequest naming the field that did not decode.
fn undecodable_is_invalid_argument(headers: &mut http::HeaderMap) {
    let Some(status) = tonic::Status::from_header_map(headers) else {
        return;
    };
    let Some(detail) = status
        .message()
        .strip_prefix("failed to decode Protobuf message: ")
    else {
        return;
    };
    if status.code() != Code::Internal {
        return;
    }
    let (field, description) = undecodable_field(detail);
    let invalid =
        crate::error::invalid_argument(vec![crate::error::FieldViolation::new(field, description)]);
    if invalid.add_header(headers).is_err() {
        headers.insert("grpc-status", http::HeaderValue::from_static("3"));
    }
}

/// The field path and the cause in prost's decode error detail
/// (`Inner.field: Outer.field: cause`, innermost first); `request` when no
/// field is named.
fn undecodable_field(detail: &str) -> (String, String) {
    let mut fields = Vec::new();
    let mut rest = detail;
    while let Some((head, tail)) = rest.split_once(": ") {
        match head.rsplit_once('.') {
            Some((message, field)) if !head.contains(' ') && !message.is_empty() => {
                fields.push(field);
                rest = tail;
            }
            _ => break,
        }
    }
    fields.reverse();
    let field = if fields.is_empty() {
        "request".to_owned()
    } else {
        fields.join(".")
    };
    (field, rest.to_owned())
}

/// Turns the load shedder's refusal into a gRPC UNAVAILABLE answer instead of
/// a transport error.
#[derive(Debug, Clone, Copy)]
struct OverloadLayer;

impl<S> Layer<S> for OverloadLayer {
    type Service = Overload<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Overload { inner }
    }
}

#[derive(Debug, Clone)]
struct Overload<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for Overload<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The load shedder is always ready; an error here would come from
        // the inner services, which never fail readiness.
        match self.inner.poll_ready(cx) {
            Poll::Ready(_) => Poll::Ready(Ok(())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let future = self.inner.call(request);
        Box::pin(async move {
            Ok(match future.await {
                Ok(response) => response,
                Err(e) => {
                    let e: BoxError = e.into();
                    if e.is::<tower::load_shed::error::Overloaded>() {
                        refused(
                            Code::Unavailable,
                            "OVERLOADED",
                            "server overloaded; retry with backoff",
                        )
                        .into_http()
                    } else {
                        crate::error::internal(e.as_ref()).into_http()
                    }
                }
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[test]
    fn an_undecodable_field_is_named_outermost_first() {
        assert_eq!(
            undecodable_field("User.given_name: UpdateMyProfileRequest.user: invalid string value"),
            (
                "user.given_name".to_owned(),
                "invalid string value".to_owned()
            )
        );
        assert_eq!(
            undecodable_field("invalid wire type: 7"),
            ("request".to_owned(), "invalid wire type: 7".to_owned())
        );
    }

    #[tokio::test]
    async fn calls_beyond_the_limit_are_shed_with_unavailable() -> Result<(), BoxError> {
        let (release, wait) = tokio::sync::watch::channel(false);
        let slow = tower::service_fn(move |_: http::Request<()>| {
            let mut wait = wait.clone();
            async move {
                let _ = wait.wait_for(|go| *go).await;
                Ok::<_, Infallible>(http::Response::new(tonic::body::Body::empty()))
            }
        });
        let service = admission(1).layer(slow);
        let first = tokio::spawn(service.clone().oneshot(http::Request::new(())));
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let shed = service.clone().oneshot(http::Request::new(())).await?;
        let status = tonic::Status::from_header_map(shed.headers()).map(|s| s.code());
        assert_eq!(status, Some(Code::Unavailable));
        release.send_replace(true);
        let ok = first.await??;
        assert!(ok.headers().get("grpc-status").is_none());
        // Capacity is back once the first call finished.
        let again = service.oneshot(http::Request::new(())).await?;
        assert!(again.headers().get("grpc-status").is_none());
        Ok(())
    }
}
