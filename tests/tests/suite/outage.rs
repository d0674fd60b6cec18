//! With RabbitMQ unreachable, writes still succeed; their events wait in the
//! outbox and all reach the consumer once the broker is back.

use std::time::Duration;

use partnerhub_testkit::{Proxy, Suite, SuiteOptions, eventually};
use tonic_health::pb::health_check_response::ServingStatus;

use crate::common::sign_up;

#[tokio::test]
async fn writes_succeed_while_the_broker_is_unreachable_and_no_event_is_lost() -> anyhow::Result<()>
{
    let proxy = Proxy::start("127.0.0.1:5672".parse()?).await?;
    let suite = Suite::start_with(SuiteOptions {
        identity_amqp_url: Some(format!("amqp://guest:guest@{}/%2f", proxy.addr())),
        ..SuiteOptions::default()
    })
    .await?;
    suite.wait_serving().await?;

    proxy.disable();
    let identity = suite.identity;
    eventually(Duration::from_secs(10), || async move {
        matches!(Suite::health(identity).await, Ok(ServingStatus::NotServing)).then_some(())
    })
    .await?;
    let mut users = Vec::new();
    for _ in 0..5 {
        users.push(sign_up(&suite).await?.user_id().parse::<uuid::Uuid>()?);
    }
    let identity_db = suite.pool("identity").await?;
    let waiting = partnerhub_platform::outbox::pending(&identity_db).await?;
    assert_eq!(waiting, 10, "two events per sign-up wait in the outbox");

    proxy.enable();
    let notification_db = suite.pool("notification").await?;
    let recorded = eventually(Duration::from_secs(30), || {
        let db = notification_db.clone();
        let users = users.clone();
        async move {
            let n: i64 =
                sqlx::query_scalar("SELECT count(*) FROM recipients WHERE user_id = ANY($1)")
                    .bind(&users)
                    .fetch_one(&db)
                    .await
                    .ok()?;
            (n == 5).then_some(n)
        }
    })
    .await?;
    assert_eq!(recorded, 5);
    eventually(Duration::from_secs(10), || {
        let db = identity_db.clone();
        async move { (partnerhub_platform::outbox::pending(&db).await.ok()? == 0).then_some(()) }
    })
    .await?;
    eventually(Duration::from_secs(10), || async move {
        matches!(Suite::health(identity).await, Ok(ServingStatus::Serving)).then_some(())
    })
    .await?;
    suite.stop().await
}
