//! Row 3's ceiling: one-row INSERT and COMMIT through sqlx, with the pool size
//! the suite's services have and the server's default durability
//! (`synchronous_commit = on`, as the services run).

use anyhow::Context;
use sqlx::PgPool;

use crate::load::{FnWorker, LoadSettings, Stats, closed_loop};

/// Connections per service pool in the suite (`Suite` gives each service 3).
pub const SERVICE_POOL_SIZE: u32 = 3;

/// A fresh database with one table to insert into.
pub async fn fresh_pool() -> anyhow::Result<PgPool> {
    let url = partnerhub_testkit::database_url("bench");
    partnerhub_platform::db::create_if_missing(&url).await?;
    let pool = partnerhub_platform::db::connect(&url, SERVICE_POOL_SIZE).await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_rows (
             id BIGSERIAL PRIMARY KEY,
             payload TEXT NOT NULL,
             created_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .execute(&pool)
    .await
    .context("cannot create the bench table")?;
    Ok(pool)
}

/// Single-row insert + commit, `settings.in_flight` at a time.
pub async fn insert_ceiling(settings: &LoadSettings, pool: &PgPool) -> anyhow::Result<Stats> {
    let workers = (0..settings.in_flight)
        .map(|i| {
            let pool = pool.clone();
            FnWorker(move || {
                let pool = pool.clone();
                async move {
                    let mut tx = pool.begin().await?;
                    sqlx::query("INSERT INTO bench_rows (payload) VALUES ($1)")
                        .bind(format!("worker {i}"))
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await.context("commit failed")?;
                    Ok(())
                }
            })
        })
        .collect();
    closed_loop(settings, workers).await
}
