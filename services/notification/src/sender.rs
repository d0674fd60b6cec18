//! The delivery worker: takes due deliveries, sends them through the
//! [`Mailer`], and records the outcome with its event.
//!
//! A delivery is leased (its next attempt pushed past the lease) before it
//! is sent, so replicas share the work without holding a transaction open
//! during SMTP. A transient failure is retried with exponential backoff and
//! full jitter; a permanent one, or running out of attempts, fails it. A
//! process killed between the relay's answer and the record resends that
//! one mail after the lease: SMTP has no idempotency, so this is the
//! smallest possible window, not none.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use partnerhub_platform::crypto::Sealer;
use partnerhub_platform::outbox;
use partnerhub_platform::time::timestamp;
use partnerhub_proto::notification::v1::{NotificationDelivered, NotificationFailed};
use rand::Rng;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::mailer::{ContentLanguage, MailError, Mailer};
use crate::outbound::{SOURCE, WAKE_CHANNEL, delivery_name};
use crate::templates::Rendered;

/// How the worker sends.
#[derive(Debug, Clone)]
pub struct SenderSettings {
    /// `From` of every mail.
    pub from: Mailbox,
    /// Attempts before a delivery fails.
    pub max_attempts: i32,
    /// First retry delay; doubles each attempt, with full jitter.
    pub retry_base: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// Mails per recipient address per hour; more wait for the window.
    pub rate_limit_per_hour: i64,
    /// How often due deliveries are looked for without a wake-up.
    pub poll: Duration,
    /// How long a taken delivery is reserved for its sender.
    pub lease: Duration,
    /// Deliveries sent at once.
    pub concurrency: usize,
}

impl SenderSettings {
    /// Production defaults sending as `from`.
    pub fn new(from: Mailbox) -> Self {
        Self {
            from,
            max_attempts: 8,
            retry_base: Duration::from_secs(30),
            retry_max: Duration::from_secs(3600),
            rate_limit_per_hour: 30,
            poll: Duration::from_secs(1),
            lease: Duration::from_secs(300),
            concurrency: 4,
        }
    }
}

/// The delay before retry number `attempt` (1-based): a random duration
/// up to `base × 2^(attempt-1)`, capped (full jitter, so that mails failing
/// together do not retry together).
pub fn retry_delay(settings: &SenderSettings, attempt: i32) -> Duration {
    let exponent = u32::try_from(attempt.clamp(1, 20) - 1).unwrap_or(0);
    let ceiling = settings
        .retry_base
        .saturating_mul(2_u32.saturating_pow(exponent))
        .min(settings.retry_max);
    let millis = u64::try_from(ceiling.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    // At least a tenth of the ceiling, so a retry is never immediate.
    Duration::from_millis(rand::thread_rng().gen_range(millis / 10..=millis))
}

#[derive(sqlx::FromRow)]
struct Due {
    id: Uuid,
    template: String,
    recipient: String,
    user_id: Option<Uuid>,
    account_id: Option<Uuid>,
    attempts: i32,
    sealed_kid: Option<String>,
    sealed: Option<Vec<u8>>,
}

/// The worker.
#[derive(Debug, Clone)]
pub struct Sender {
    pool: PgPool,
    mailer: Arc<dyn Mailer>,
    sealer: Arc<Sealer>,
    settings: SenderSettings,
}

impl Sender {
    /// A worker over `pool`.
    pub fn new(
        pool: PgPool,
        mailer: Arc<dyn Mailer>,
        sealer: Arc<Sealer>,
        settings: SenderSettings,
    ) -> Self {
        Self {
            pool,
            mailer,
            sealer,
            settings,
        }
    }

    /// Sends until `shutdown` (finishing the mails in hand).
    pub async fn run(self, shutdown: CancellationToken) {
        let mut listener = outbox::listen(&self.pool, WAKE_CHANNEL).await;
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.round().await {
                Ok(taken) => {
                    backoff = Duration::from_millis(100);
                    if shutdown.is_cancelled() {
                        return;
                    }
                    if taken > 0 {
                        continue;
                    }
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = outbox::wait_for_notify(&mut listener) => {}
                        () = tokio::time::sleep(self.settings.poll) => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Delivery round failed; will retry.");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Takes the due deliveries and sends them; returns how many it took.
    /// At most one mail per recipient is in flight in a round, so the hourly
    /// limit is checked against every mail sent before it.
    pub async fn round(&self) -> Result<usize, sqlx::Error> {
        let batch = self.settings.concurrency.max(1) * 4;
        let mut tx = self.pool.begin().await?;
        let candidates: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT id, lower(recipient) FROM deliveries
             WHERE status = 'QUEUED' AND next_attempt_at <= now()
             ORDER BY next_attempt_at LIMIT $1
             FOR UPDATE SKIP LOCKED",
        )
        .bind(i64::try_from(batch * 4).unwrap_or(64))
        .fetch_all(&mut *tx)
        .await?;
        let mut recipients = std::collections::HashSet::new();
        let chosen: Vec<Uuid> = candidates
            .into_iter()
            .filter(|(_, recipient)| recipients.insert(recipient.clone()))
            .map(|(id, _)| id)
            .take(batch)
            .collect();
        let due: Vec<Due> = sqlx::query_as(
            "UPDATE deliveries SET next_attempt_at = now() + make_interval(secs => $2)
             WHERE id = ANY($1)
             RETURNING id, template, recipient, user_id, account_id, attempts, sealed_kid, sealed",
        )
        .bind(&chosen)
        .bind(self.settings.lease.as_secs_f64())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let taken = due.len();
        let results: Vec<Result<(), sqlx::Error>> = futures::stream::iter(due)
            .map(|d| self.deliver(d))
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        for r in results {
            r?;
        }
        Ok(taken)
    }

    async fn deliver(&self, due: Due) -> Result<(), sqlx::Error> {
        if let Some(until) = self.rate_limited(&due.recipient).await? {
            tracing::info!(delivery = %due.id, until = %until, "Recipient over the hourly limit; mail waits.");
            sqlx::query(
                "UPDATE deliveries SET next_attempt_at = $2, updated_at = now() WHERE id = $1",
            )
            .bind(due.id)
            .bind(until)
            .execute(&self.pool)
            .await?;
            return Ok(());
        }
        let rendered = due
            .sealed_kid
            .as_deref()
            .zip(due.sealed.as_deref())
            .and_then(|(kid, sealed)| self.sealer.open(kid, sealed, due.id.as_bytes()))
            .and_then(|plain| serde_json::from_slice::<Rendered>(&plain).ok());
        let Some(rendered) = rendered else {
            return self
                .finish_failed(
                    &due,
                    due.attempts,
                    "UNREADABLE: sealed with a key that is no longer configured",
                )
                .await;
        };
        let message = match self.build(&due, &rendered) {
            Ok(m) => m,
            Err(e) => {
                return self
                    .finish_failed(&due, due.attempts, &format!("BAD_MESSAGE: {e}"))
                    .await;
            }
        };
        let attempts = due.attempts + 1;
        match self.mailer.send(message).await {
            Ok(()) => self.finish_sent(&due, attempts).await,
            Err(MailError::Permanent(e)) => self.finish_failed(&due, attempts, &e).await,
            Err(MailError::Transient(e)) if attempts >= self.settings.max_attempts => {
                self.finish_failed(
                    &due,
                    attempts,
                    &format!("gave up after {attempts} attempts: {e}"),
                )
                .await
            }
            Err(MailError::Transient(e)) => {
                let delay = retry_delay(&self.settings, attempts);
                tracing::warn!(delivery = %due.id, attempts, retry_in_ms = delay.as_millis() as u64, error = %e, "Mail not accepted; will retry.");
                sqlx::query(
                    "UPDATE deliveries SET attempts = $2, last_error = $3, updated_at = now(),
                         next_attempt_at = now() + make_interval(secs => $4)
                     WHERE id = $1 AND status = 'QUEUED'",
                )
                .bind(due.id)
                .bind(attempts)
                .bind(&e)
                .bind(delay.as_secs_f64())
                .execute(&self.pool)
                .await?;
                Ok(())
            }
        }
    }

    /// When a mail to `recipient` may go, if the hourly limit holds it.
    async fn rate_limited(&self, recipient: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        let (count, oldest): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
            "SELECT count(*), min(sent_at) FROM deliveries
             WHERE lower(recipient) = lower($1) AND status = 'SENT'
               AND sent_at > now() - interval '1 hour'",
        )
        .bind(recipient)
        .fetch_one(&self.pool)
        .await?;
        Ok(match oldest {
            Some(oldest) if count >= self.settings.rate_limit_per_hour => {
                Some(oldest + chrono::Duration::hours(1))
            }
            _ => None,
        })
    }

    fn build(&self, due: &Due, rendered: &Rendered) -> Result<Message, String> {
        let to: Mailbox = due
            .recipient
            .parse()
            .map_err(|e| format!("recipient: {e}"))?;
        Message::builder()
            .from(self.settings.from.clone())
            .to(to)
            .subject(rendered.subject.clone())
            .header(ContentLanguage(rendered.locale.clone()))
            .multipart(MultiPart::alternative_plain_html(
                rendered.text.clone(),
                rendered.html.clone(),
            ))
            .map_err(|e| e.to_string())
    }

    async fn finish_sent(&self, due: &Due, attempts: i32) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE deliveries SET status = 'SENT', attempts = $2, sent_at = now(), updated_at = now(),
                 last_error = '', sealed = NULL, sealed_kid = NULL
             WHERE id = $1 AND status = 'QUEUED'",
        )
        .bind(due.id)
        .bind(attempts)
        .execute(&mut *tx)
        .await?;
        if recorded(updated, due) {
            return Ok(());
        }
        let name = delivery_name(due.account_id, due.id);
        outbox::publish_event(
            &mut tx,
            SOURCE,
            &name,
            &NotificationDelivered {
                delivery: name.clone(),
                template: due.template.clone(),
                user: due
                    .user_id
                    .map(|u| format!("users/{u}"))
                    .unwrap_or_default(),
                attempts,
                deliver_time: Some(timestamp(Utc::now())),
            },
        )
        .await?;
        tx.commit().await?;
        tracing::info!(delivery = %name, template = %due.template, attempts, "Mail sent.");
        Ok(())
    }

    async fn finish_failed(
        &self,
        due: &Due,
        attempts: i32,
        error: &str,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE deliveries SET status = 'FAILED', attempts = $2, last_error = $3, updated_at = now(),
                 sealed = NULL, sealed_kid = NULL
             WHERE id = $1 AND status = 'QUEUED'",
        )
        .bind(due.id)
        .bind(attempts)
        .bind(error)
        .execute(&mut *tx)
        .await?;
        if recorded(updated, due) {
            return Ok(());
        }
        let name = delivery_name(due.account_id, due.id);
        outbox::publish_event(
            &mut tx,
            SOURCE,
            &name,
            &NotificationFailed {
                delivery: name.clone(),
                template: due.template.clone(),
                user: due
                    .user_id
                    .map(|u| format!("users/{u}"))
                    .unwrap_or_default(),
                attempts,
                error: error.to_owned(),
                fail_time: Some(timestamp(Utc::now())),
            },
        )
        .await?;
        tx.commit().await?;
        tracing::warn!(delivery = %name, template = %due.template, attempts, error, "Mail failed for good.");
        Ok(())
    }
}

/// Whether another sender already recorded this delivery (its lease ran
/// out while this one was sending): then its outcome and event stand.
fn recorded(updated: sqlx::postgres::PgQueryResult, due: &Due) -> bool {
    if updated.rows_affected() == 0 {
        tracing::warn!(delivery = %due.id, "Delivery already recorded by another sender; leaving it.");
        true
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_stay_jittered_and_capped() {
        let mut settings = SenderSettings::new("a@b.c".parse().unwrap());
        settings.retry_base = Duration::from_secs(10);
        settings.retry_max = Duration::from_secs(60);
        for _ in 0..200 {
            let first = retry_delay(&settings, 1);
            assert!(first >= Duration::from_secs(1) && first <= Duration::from_secs(10));
            let third = retry_delay(&settings, 3);
            assert!(third >= Duration::from_secs(4) && third <= Duration::from_secs(40));
            let late = retry_delay(&settings, 30);
            assert!(late <= Duration::from_secs(60));
        }
        let spread: std::collections::BTreeSet<_> =
            (0..50).map(|_| retry_delay(&settings, 3)).collect();
        assert!(spread.len() > 10, "jitter spreads retries");
    }
}
