//! The walking skeleton: every service serves, reflects, and one event
//! travels from identity's outbox through RabbitMQ into notification.

use std::time::Duration;

use partnerhub_testkit::{Suite, eventually};
use tokio_stream::StreamExt;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::common::sign_up;

#[tokio::test]
async fn all_five_serve_and_reflect_their_own_package() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    suite.wait_serving().await?;
    for (name, addr) in suite.addresses() {
        let mut client = ServerReflectionClient::new(Suite::channel(addr)?);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut stream = client
            .server_reflection_info(tokio_stream::iter([request]))
            .await?
            .into_inner();
        let Some(Ok(response)) = stream.next().await else {
            anyhow::bail!("{name}: no reflection answer");
        };
        let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
            anyhow::bail!("{name}: unexpected reflection answer");
        };
        let services: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
        let own = format!("partnerhub.{name}.v1.");
        assert!(
            services.iter().any(|s| s.starts_with(&own)),
            "{name} lists {services:?}"
        );
        assert!(
            services
                .iter()
                .all(|s| s.starts_with(&own) || s.starts_with("grpc.")),
            "{name} advertises another service's API: {services:?}"
        );
    }
    suite.stop().await
}

#[tokio::test]
async fn sign_up_reaches_the_notification_recipients_through_the_broker() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    suite.wait_serving().await?;
    let founder = sign_up(&suite).await?;
    let notification_db = suite.pool("notification").await?;
    let user: uuid::Uuid = founder.user_id().parse()?;
    let (email, roles): (String, Vec<String>) = eventually(Duration::from_secs(20), || {
        let db = notification_db.clone();
        async move {
            sqlx::query_as(
                "SELECT r.email, rr.roles FROM recipients r
                 JOIN recipient_roles rr ON rr.user_id = r.user_id WHERE r.user_id = $1",
            )
            .bind(user)
            .fetch_optional(&db)
            .await
            .ok()
            .flatten()
        }
    })
    .await?;
    assert!(email.starts_with("founder."));
    assert_eq!(roles, ["global_admin", "admin_agent", "owner"]);
    let identity_db = suite.pool("identity").await?;
    let left = eventually(Duration::from_secs(10), || {
        let db = identity_db.clone();
        async move {
            let n = partnerhub_platform::outbox::pending(&db).await.ok()?;
            (n == 0).then_some(n)
        }
    })
    .await?;
    assert_eq!(
        left, 0,
        "the outbox keeps nothing once the broker confirmed"
    );
    suite.stop().await
}
