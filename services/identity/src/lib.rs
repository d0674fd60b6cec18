//! The identity service: accounts, users, memberships and roles, sign-up and
//! sign-in, and the keys that sign every access token of partnerhub.

pub mod api;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod keys;
pub mod password;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use partnerhub_platform::{Prepared, Serve};
use partnerhub_proto::identity::v1::{
    account_service_server::AccountServiceServer, activity_service_server::ActivityServiceServer,
    auth_service_server::AuthServiceServer, invitation_service_server::InvitationServiceServer,
    member_service_server::MemberServiceServer, role_service_server::RoleServiceServer,
    self_service_server::SelfServiceServer,
};
use tokio_util::sync::CancellationToken;

pub use config::Config;

/// Migrations of identity's database.
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Identity, bound and migrated, ready to run.
#[derive(Debug)]
pub struct Service {
    prepared: Prepared,
    identity: api::Identity,
    keys: Arc<keys::Keys>,
}

/// Binds, prepares the database and loads the signing keys.
pub async fn build(config: Config) -> anyhow::Result<Service> {
    let prepared = partnerhub_platform::prepare(config.service.clone(), &MIGRATIONS).await?;
    let kek = config.key_encryption_key.unwrap_or_else(|| {
        tracing::warn!(
            "PARTNERHUB_IDENTITY_KEY_ENCRYPTION_KEY is not set: signing keys are sealed with a \
             per-process key, so each restart starts a new signing key. Set it in any shared deployment."
        );
        keys::Keys::ephemeral_kek()
    });
    let keys = keys::Keys::new(
        prepared.pool().clone(),
        kek,
        config.key_rotation,
        config.access_token_ttl,
    );
    let identity = api::Identity::new(prepared.pool().clone(), keys.clone(), Arc::new(config));
    Ok(Service {
        prepared,
        identity,
        keys,
    })
}

impl Service {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.prepared.local_addr()
    }

    /// Serves until `shutdown`, then drains.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let identity = self.identity;
        let sessions = Arc::new(api::LocalSessions(self.prepared.pool().clone()));
        let routes = tonic::service::Routes::new(AuthServiceServer::new(identity.clone()))
            .add_service(AccountServiceServer::new(identity.clone()))
            .add_service(MemberServiceServer::new(identity.clone()))
            .add_service(InvitationServiceServer::new(identity.clone()))
            .add_service(SelfServiceServer::new(identity.clone()))
            .add_service(RoleServiceServer::new(identity.clone()))
            .add_service(ActivityServiceServer::new(identity));
        let names = vec![
            "partnerhub.identity.v1.AuthService",
            "partnerhub.identity.v1.AccountService",
            "partnerhub.identity.v1.MemberService",
            "partnerhub.identity.v1.SelfService",
            "partnerhub.identity.v1.RoleService",
            "partnerhub.identity.v1.ActivityService",
        ];
        let serve = Serve::new(routes, names)
            .keys(Arc::new(keys::LocalKeys(self.keys)))
            .sessions(sessions)
            .consumers(vec![partnerhub_platform::bus::Consumer {
                service: "identity",
                kind: partnerhub_platform::bus::QueueKind::Events,
                routing_keys: events::subscribed(),
                handler: Arc::new(events::Suspensions),
            }]);
        self.prepared.run(serve, shutdown).await
    }
}

/// What this service does on the bus (for the RabbitMQ definitions).
pub fn topology() -> partnerhub_platform::bus::definitions::ServiceTopology {
    partnerhub_platform::bus::definitions::ServiceTopology {
        service: "identity",
        events_prefix: "partnerhub.identity.v1.",
        commands_to: &["notification"],
        consumes: vec![(
            partnerhub_platform::bus::QueueKind::Events,
            events::subscribed(),
        )],
    }
}
