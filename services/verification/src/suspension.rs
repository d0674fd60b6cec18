//! The scheduled job that asks identity to suspend accounts REJECTED for
//! longer than allowed. Its state is in the database (`rejected_at`,
//! `suspension_requested_at`), so it survives restarts, and each account is
//! claimed with `FOR UPDATE SKIP LOCKED` and marked in the same transaction
//! as its event, so no replica acts twice.

use std::time::Duration;

use chrono::{DateTime, Utc};
use partnerhub_platform::outbox;
use partnerhub_platform::time::timestamp;
use partnerhub_proto::verification::v1::AccountSuspensionRequested;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::cases::SOURCE;

/// When and how often the job runs.
#[derive(Debug, Clone, Copy)]
pub struct SuspensionSettings {
    /// How long an account may stay REJECTED.
    pub after: Duration,
    /// How often the job looks.
    pub every: Duration,
}

/// Requests the suspensions that are due; returns how many.
pub async fn run_once(pool: &PgPool, after: Duration) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let due: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(
        "SELECT account_id, rejected_at FROM account_status
         WHERE status = 'REJECTED' AND suspension_requested_at IS NULL
           AND rejected_at <= now() - make_interval(secs => $1)
         ORDER BY rejected_at LIMIT 100
         FOR UPDATE SKIP LOCKED",
    )
    .bind(after.as_secs_f64())
    .fetch_all(&mut *tx)
    .await?;
    for (account, since) in &due {
        sqlx::query(
            "UPDATE account_status SET suspension_requested_at = now() WHERE account_id = $1",
        )
        .bind(account)
        .execute(&mut *tx)
        .await?;
        let name = format!("accounts/{account}");
        outbox::publish_event(
            &mut tx,
            SOURCE,
            &name,
            &AccountSuspensionRequested {
                account: name.clone(),
                reason: format!(
                    "verification rejected since {} (more than {} days)",
                    since.format("%Y-%m-%d"),
                    after.as_secs() / 86_400
                ),
                rejected_since: Some(timestamp(*since)),
                request_time: Some(timestamp(Utc::now())),
            },
        )
        .await?;
        tracing::warn!(%account, rejected_since = %since, "Asked identity to suspend an account rejected too long.");
    }
    tx.commit().await?;
    Ok(due.len())
}

/// Runs the job until `shutdown`.
pub async fn run(pool: PgPool, settings: SuspensionSettings, shutdown: CancellationToken) {
    loop {
        if let Err(e) = run_once(&pool, settings.after).await {
            tracing::warn!(error = %e, "Suspension job failed; will retry.");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(settings.every) => {}
        }
    }
}
