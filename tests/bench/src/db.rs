//! Row 3's ceiling: one-row INSERT and COMMIT through sqlx, with the pool size
//! the suite's services have and the server's default durability
//! (`synchronous_commit = on`, as the services run).

use anyhow::Context;
use sqlx::PgPool;

use crate::load::{FnWorker, LoadSettings, Stats, closed_loop};

/// A fresh database with one table to insert into, and a pool of
/// `pool_size` connections (as each service has).
pub async fn fresh_pool(pool_size: u32) -> anyhow::Result<PgPool> {
    let url = partnerhub_testkit::database_url("bench");
    partnerhub_platform::db::create_if_missing(&url).await?;
    let pool = partnerhub_platform::db::connect(&url, pool_size).await?;
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

/// The read path's own query alone: profile's `SELECT … FROM profiles WHERE
/// account_id = $1` (every column, rows decoded by sqlx), `settings.in_flight`
/// at a time over the companies, on profile's database with the services'
/// pool size: what any read that goes to PostgreSQL can reach at most.
pub async fn select_ceiling(
    settings: &LoadSettings,
    pool: &PgPool,
    accounts: &[uuid::Uuid],
) -> anyhow::Result<Stats> {
    anyhow::ensure!(!accounts.is_empty(), "no account to read");
    let workers = (0..settings.in_flight)
        .map(|i| {
            let (pool, account) = (pool.clone(), accounts[i % accounts.len()]);
            FnWorker(move || {
                let pool = pool.clone();
                async move {
                    let row = sqlx::query("SELECT * FROM profiles WHERE account_id = $1")
                        .bind(account)
                        .fetch_optional(&pool)
                        .await?;
                    anyhow::ensure!(row.is_some(), "no profile for {account}");
                    Ok(())
                }
            })
        })
        .collect();
    closed_loop(settings, workers).await
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
