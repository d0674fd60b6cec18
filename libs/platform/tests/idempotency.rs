//! `request_id` idempotency against real PostgreSQL: a retry replays the
//! stored response, and the same id with another request is refused.

use partnerhub_platform::idempotency::{self, Outcome};
use partnerhub_testkit::database_url;

#[tokio::test]
async fn a_retry_replays_the_first_response_and_a_reused_id_is_refused() -> anyhow::Result<()> {
    let url = database_url("idem");
    let pool = partnerhub_platform::db::prepare(
        &url,
        2,
        &sqlx::migrate::Migrator::with_migrations(vec![]),
    )
    .await?;
    let hash = idempotency::request_hash(b"create user ada");

    let mut tx = pool.begin().await?;
    let first = idempotency::begin(&mut tx, "accounts/a:CreateUser", "r-1", &hash).await?;
    assert!(matches!(first, Outcome::Proceed));
    idempotency::complete(&mut tx, "accounts/a:CreateUser", "r-1", b"response-1").await?;
    tx.commit().await?;

    let mut tx = pool.begin().await?;
    let again = idempotency::begin(&mut tx, "accounts/a:CreateUser", "r-1", &hash).await?;
    assert!(matches!(again, Outcome::Replay(ref r) if r == b"response-1"));
    tx.rollback().await?;

    let mut tx = pool.begin().await?;
    let other = idempotency::request_hash(b"create user bob");
    let reused = idempotency::begin(&mut tx, "accounts/a:CreateUser", "r-1", &other).await;
    assert_eq!(
        reused.err().map(|s| s.code()),
        Some(tonic::Code::InvalidArgument)
    );
    tx.rollback().await?;

    // The same id in another scope is another request.
    let mut tx = pool.begin().await?;
    let elsewhere = idempotency::begin(&mut tx, "accounts/b:CreateUser", "r-1", &hash).await?;
    assert!(matches!(elsewhere, Outcome::Proceed));
    tx.rollback().await?;

    pool.close().await;
    Ok(())
}
