//! The life of a service process: bind, prepare the database, then run the
//! gRPC server, the bus supervisor with its consumers, the outbox relay and
//! the readiness watcher until shutdown, and drain them in order.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::auth::{
    AccessRules, AuthLayer, GrpcSessionCheck, KeySource, Revocations, SessionCheck, TokenVerifier,
};
use crate::bus::{Bus, Consumer, DeclaredQueue};
use crate::config::ServiceSettings;

/// A service with its port bound and its database ready, not yet serving.
#[derive(Debug)]
pub struct Prepared {
    settings: ServiceSettings,
    listener: TcpListener,
    pool: PgPool,
    bus: Bus,
}

/// What a service serves and consumes.
pub struct Serve {
    routes: tonic::service::Routes,
    service_names: Vec<&'static str>,
    consumers: Vec<Consumer>,
    declared_queues: Vec<DeclaredQueue>,
    keys: Option<Arc<dyn KeySource>>,
    sessions: Option<Arc<dyn SessionCheck>>,
}

impl Serve {
    /// The service's own gRPC services (health and reflection are added)
    /// and their fully-qualified names.
    pub fn new(routes: tonic::service::Routes, service_names: Vec<&'static str>) -> Self {
        Self {
            routes,
            service_names,
            consumers: Vec::new(),
            declared_queues: Vec::new(),
            keys: None,
            sessions: None,
        }
    }

    /// Its queues and their handlers.
    pub fn consumers(mut self, consumers: Vec<Consumer>) -> Self {
        self.consumers = consumers;
        self
    }

    /// Its queues that nothing consumes yet (messages wait in them).
    pub fn declared_queues(mut self, queues: Vec<DeclaredQueue>) -> Self {
        self.declared_queues = queues;
        self
    }

    /// Where token verification keys come from; by default identity's
    /// `GetJwks` at `PARTNERHUB_IDENTITY_URL`.
    pub fn keys(mut self, keys: Arc<dyn KeySource>) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Who says whether a token's session is live when the revocation feed
    /// cannot; by default identity's `CheckSession` at
    /// `PARTNERHUB_IDENTITY_URL`.
    pub fn sessions(mut self, sessions: Arc<dyn SessionCheck>) -> Self {
        self.sessions = Some(sessions);
        self
    }
}

/// Binds the listen address, creates the database if missing and migrates it.
pub async fn prepare(
    settings: ServiceSettings,
    migrations: &sqlx::migrate::Migrator,
) -> anyhow::Result<Prepared> {
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("{}: cannot listen on {}", settings.name, settings.listen))?;
    let pool = crate::db::prepare(
        &settings.database_url,
        settings.database_max_connections,
        migrations,
    )
    .await
    .with_context(|| format!("{}: database not ready", settings.name))?;
    let bus = Bus::new(settings.bus.clone());
    Ok(Prepared {
        settings,
        listener,
        pool,
        bus,
    })
}

impl Prepared {
    /// The bound address (tests bind port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.settings.listen)
    }

    /// The database pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The bus (for publishing through the outbox relay).
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// The settings.
    pub fn settings(&self) -> &ServiceSettings {
        &self.settings
    }

    /// Serves until `shutdown`; then reports NOT_SERVING, goes on accepting
    /// calls for the shutdown delay, drains in-flight calls, lets consumers
    /// finish their current message, and stops the relay.
    pub async fn run(self, serve: Serve, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Prepared {
            settings,
            listener,
            pool,
            bus,
        } = self;
        let (reporter, health_service) = tonic_health::server::health_reporter();
        let mut names = serve.service_names.clone();
        names.push("");
        set_all(&reporter, &names, ServingStatus::NotServing).await;
        let (reflection_v1, reflection_v1alpha) = crate::server::reflection(&serve.service_names)?;
        let routes = serve
            .routes
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha);

        let background = CancellationToken::new();
        let dead_queues: Vec<_> = serve
            .consumers
            .iter()
            .map(|c| (c.service, c.kind))
            .collect();
        let depth_task = tokio::spawn(crate::bus::dead::watch_depths(
            bus.config().clone(),
            dead_queues,
            std::time::Duration::from_secs(30),
            background.clone(),
        ));
        let bus_task = bus.spawn_with(
            serve.consumers,
            serve.declared_queues,
            pool.clone(),
            background.clone(),
        );
        let relay_task = tokio::spawn(crate::outbox::relay(
            settings.name,
            pool.clone(),
            bus.clone(),
            background.clone(),
        ));
        let ready_task = tokio::spawn(watch_readiness(
            reporter.clone(),
            names.clone(),
            pool.clone(),
            bus.clone(),
            background.clone(),
        ));

        let keys = match serve.keys {
            Some(keys) => keys,
            None => Arc::new(crate::auth::GrpcKeySource::new(&settings.identity_url)?),
        };
        let sessions = match serve.sessions {
            Some(sessions) => sessions,
            None => Arc::new(GrpcSessionCheck::new(&settings.identity_url)?),
        };
        // Every process binds its own revocation feed (see auth::revocation).
        let revocations = Arc::new(Revocations::new(sessions));
        let feed_task = tokio::spawn(crate::auth::revocation::feed(
            bus.config().clone(),
            settings.name,
            revocations.clone(),
            background.clone(),
        ));
        let verifier = Arc::new(TokenVerifier::new(keys).with_revocations(revocations));
        let auth = AuthLayer::new(Arc::new(AccessRules::builtin()), verifier);
        tracing::info!(service = settings.name, address = %listener.local_addr()?, "Serving.");
        let drain = {
            let shutdown = shutdown.clone();
            let background = background.clone();
            let reporter = reporter.clone();
            let names = names.clone();
            let (service, delay) = (settings.name, settings.limits.shutdown_delay);
            async move {
                shutdown.cancelled().await;
                set_all(&reporter, &names, ServingStatus::NotServing).await;
                if !delay.is_zero() {
                    tracing::info!(
                        service,
                        delay_ms = delay.as_millis() as u64,
                        "NOT_SERVING; still accepting calls until the delay ends."
                    );
                    tokio::time::sleep(delay).await;
                }
                background.cancel();
            }
        };
        let served = crate::server::serve(listener, routes, auth, &settings.limits, drain).await;
        background.cancel();
        let _ = tokio::join!(bus_task, relay_task, ready_task, depth_task, feed_task);
        pool.close().await;
        tracing::info!(service = settings.name, "Stopped.");
        served
    }
}

async fn set_all(reporter: &HealthReporter, names: &[&str], status: ServingStatus) {
    for name in names {
        reporter.set_service_status(*name, status).await;
    }
}

/// SERVING while the database answers and the bus is connected.
async fn watch_readiness(
    reporter: HealthReporter,
    names: Vec<&'static str>,
    pool: PgPool,
    bus: Bus,
    stop: CancellationToken,
) {
    let mut connected = bus.watch_connected();
    let mut last = None;
    loop {
        let db_ok = tokio::time::timeout(
            Duration::from_secs(2),
            sqlx::query("SELECT 1").execute(&pool),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        let status = if db_ok && bus.is_connected() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        if last != Some(status) {
            tracing::info!(
                service = names.first().copied().unwrap_or_default(),
                ?status,
                database = db_ok,
                bus = bus.is_connected(),
                "Readiness changed."
            );
            set_all(&reporter, &names, status).await;
            last = Some(status);
        }
        tokio::select! {
            () = stop.cancelled() => return,
            _ = connected.changed() => {}
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}
