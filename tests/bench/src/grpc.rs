//! gRPC rows: the echo ceiling (a bare tonic server answering
//! `grpc.health.v1.Health/Check`), and the read and write paths of profile
//! through the whole stack. All use the same channels and driver.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use partnerhub_proto::profile::v1::legal_profile_service_client::LegalProfileServiceClient;
use partnerhub_proto::profile::v1::{
    GetLegalProfileRequest, LegalProfile, UpdateLegalProfileRequest,
};
use partnerhub_testkit::{Company, bearer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::load::{FnWorker, LoadSettings, Stats, closed_loop};

/// `connections` separate HTTP/2 connections to `addr`.
pub async fn channels(addr: SocketAddr, connections: usize) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::with_capacity(connections);
    for _ in 0..connections.max(1) {
        let channel = Endpoint::from_shared(format!("http://{addr}"))?
            .connect()
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        channels.push(channel);
    }
    Ok(channels)
}

/// The channel worker `i` uses.
fn channel_for(channels: &[Channel], i: usize) -> Channel {
    channels[i % channels.len()].clone()
}

/// Starts the bare echo server (health only, no layers); stops on `stop`.
pub async fn start_echo(stop: CancellationToken) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    tokio::spawn(async move {
        // The services' own accept settings (TCP_NODELAY).
        let incoming = partnerhub_platform::server::incoming(listener);
        let served = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
            .await;
        if let Err(e) = served {
            eprintln!("echo server failed: {e}");
        }
        drop(reporter);
    });
    Ok(addr)
}

/// Row 1: unary health checks against the echo server.
pub async fn echo_ceiling(settings: &LoadSettings, addr: SocketAddr) -> anyhow::Result<Stats> {
    let channels = channels(addr, settings.connections).await?;
    let workers = (0..settings.in_flight)
        .map(|i| {
            let client = HealthClient::new(channel_for(&channels, i));
            FnWorker(move || {
                let mut client = client.clone();
                async move {
                    client
                        .check(HealthCheckRequest::default())
                        .await
                        .context("echo call failed")?;
                    Ok(())
                }
            })
        })
        .collect();
    closed_loop(settings, workers).await
}

/// Row 2: GetLegalProfile with a real token; worker `i` reads company
/// `i % companies.len()`.
pub async fn read_path(
    settings: &LoadSettings,
    profile: SocketAddr,
    companies: &[Company],
) -> anyhow::Result<Stats> {
    let channels = channels(profile, settings.connections).await?;
    let workers = (0..settings.in_flight)
        .map(|i| {
            let client = LegalProfileServiceClient::new(channel_for(&channels, i));
            let company = Arc::new(companies[i % companies.len()].clone());
            FnWorker(move || {
                let mut client = client.clone();
                let company = company.clone();
                async move {
                    let request = bearer(
                        &company.token,
                        GetLegalProfileRequest {
                            name: format!("{}/legalProfile", company.account),
                        },
                    )?;
                    client
                        .get_legal_profile(request)
                        .await
                        .context("GetLegalProfile failed")?;
                    Ok(())
                }
            })
        })
        .collect();
    closed_loop(settings, workers).await
}

/// Row 3: UpdateLegalProfile renaming the company each call (so each call
/// writes its `LegalProfileChanged` outbox row); worker `i` owns company `i`
/// (no row-lock waits between workers).
pub async fn write_path(
    settings: &LoadSettings,
    profile: SocketAddr,
    companies: &[Company],
) -> anyhow::Result<Stats> {
    anyhow::ensure!(
        companies.len() >= settings.in_flight,
        "the write path needs one company per worker"
    );
    let channels = channels(profile, settings.connections).await?;
    let workers = (0..settings.in_flight)
        .map(|i| {
            let client = LegalProfileServiceClient::new(channel_for(&channels, i));
            let company = Arc::new(companies[i].clone());
            let mut n = 0u64;
            FnWorker(move || {
                let mut client = client.clone();
                let company = company.clone();
                n += 1;
                async move {
                    let request = bearer(
                        &company.token,
                        UpdateLegalProfileRequest {
                            legal_profile: Some(LegalProfile {
                                name: format!("{}/legalProfile", company.account),
                                legal_name: format!("Bench {i} SAS {n}"),
                                ..LegalProfile::default()
                            }),
                            update_mask: Some(prost_types::FieldMask {
                                paths: vec!["legal_name".into()],
                            }),
                        },
                    )?;
                    client
                        .update_legal_profile(request)
                        .await
                        .context("UpdateLegalProfile failed")?;
                    Ok(())
                }
            })
        })
        .collect();
    closed_loop(settings, workers).await
}
