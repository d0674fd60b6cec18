//! Counting effects in the consumers' databases: every `LegalProfileChanged`
//! profile wrote must have been applied by verification and notification
//! exactly once (one inbox row each, written in the same transaction as the
//! handler's effect), their projections of each company must end on
//! profile's legal name, verification must have opened at most one case per
//! event (an event older than facts already known opens none), and nothing
//! may be left in profile's outbox or in a dead-letter queue.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use partnerhub_platform::bus::{QueueKind, dead};
use uuid::Uuid;

use crate::Deployment;
use crate::load::Company;

const EVENT: &str = "partnerhub.profile.v1.LegalProfileChanged";

/// The version of each company's legal profile: it moves by one per
/// accepted legal-profile change, so its growth is the number of events
/// profile wrote, acknowledged to the client or not.
pub async fn versions(
    deployment: &Deployment,
    companies: &[Company],
) -> anyhow::Result<HashMap<Uuid, i64>> {
    let pool = deployment.pool("profile").await?;
    let ids: Vec<Uuid> = companies.iter().map(|c| c.account_id).collect();
    let rows: Vec<(Uuid, i64)> =
        sqlx::query_as("SELECT account_id, version FROM profiles WHERE account_id = ANY($1)")
            .bind(&ids)
            .fetch_all(&pool)
            .await?;
    pool.close().await;
    Ok(rows.into_iter().collect())
}

/// Events profile wrote for `companies` since `before` was read (the growth
/// of their versions).
pub async fn events_since(
    deployment: &Deployment,
    companies: &[Company],
    before: &HashMap<Uuid, i64>,
) -> anyhow::Result<i64> {
    let now = versions(deployment, companies).await?;
    Ok(now.iter().map(|(id, v)| v - before[id]).sum())
}

/// The legal name profile stores for each company.
pub async fn legal_names(
    deployment: &Deployment,
    companies: &[Company],
) -> anyhow::Result<HashMap<Uuid, String>> {
    let pool = deployment.pool("profile").await?;
    let ids: Vec<Uuid> = companies.iter().map(|c| c.account_id).collect();
    let rows: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT account_id, legal_name FROM profiles WHERE account_id = ANY($1)")
            .bind(&ids)
            .fetch_all(&pool)
            .await?;
    pool.close().await;
    Ok(rows.into_iter().collect())
}

/// What the consumers applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Applied {
    /// Legal-profile cases verification opened.
    pub verification_cases: i64,
    /// `LegalProfileChanged` messages in verification's inbox.
    pub verification_inbox: i64,
    /// `LegalProfileChanged` messages in notification's inbox.
    pub notification_inbox: i64,
    /// Rows still in profile's outbox.
    pub profile_outbox: i64,
}

impl Applied {
    /// Whether every consumer applied `events` and the outbox is empty.
    pub fn complete(&self, events: i64) -> bool {
        self.verification_inbox == events
            && self.notification_inbox == events
            && self.profile_outbox == 0
    }
}

/// Counts what the consumers applied so far.
pub async fn applied(deployment: &Deployment) -> anyhow::Result<Applied> {
    let verification = deployment.pool("verification").await?;
    let notification = deployment.pool("notification").await?;
    let profile = deployment.pool("profile").await?;
    let count = |pool: sqlx::PgPool, sql: &'static str| async move {
        let n: i64 = sqlx::query_scalar(sql).bind(EVENT).fetch_one(&pool).await?;
        anyhow::Ok(n)
    };
    // Cases and inbox rows in one statement (one snapshot): a consumer
    // commits a whole batch of both at once, between two statements.
    let (verification_cases, verification_inbox): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM cases WHERE trigger = 'LEGAL_PROFILE'),
                (SELECT count(*) FROM inbox WHERE consumer = 'verification.events' AND message_type = $1)",
    )
    .bind(EVENT)
    .fetch_one(&verification)
    .await?;
    let applied = Applied {
        verification_cases,
        verification_inbox,
        notification_inbox: count(
            notification.clone(),
            "SELECT count(*) FROM inbox WHERE consumer = 'notification.events' AND message_type = $1",
        )
        .await?,
        profile_outbox: count(profile.clone(), "SELECT count(*) FROM outbox WHERE $1 <> ''")
            .await?,
    };
    for pool in [verification, notification, profile] {
        pool.close().await;
    }
    Ok(applied)
}

/// Dead-lettered messages of the consuming services' queues, by queue.
pub async fn dead_letters(deployment: &Deployment) -> anyhow::Result<Vec<(String, u32)>> {
    let bus = deployment.bus();
    let mut out = Vec::new();
    for service in ["identity", "profile", "verification", "notification"] {
        for kind in [QueueKind::Events, QueueKind::Commands] {
            // A queue that was never declared has nothing in it.
            if let Ok(n) = dead::depth(&bus, service, kind).await {
                out.push((format!("{}.dead", bus.queue(service, kind)), n));
            }
        }
    }
    Ok(out)
}

/// Companies whose legal name in verification's or notification's
/// projection differs from profile's.
pub async fn diverged(
    deployment: &Deployment,
    companies: &[Company],
) -> anyhow::Result<Vec<String>> {
    let truth = legal_names(deployment, companies).await?;
    let ids: Vec<Uuid> = companies.iter().map(|c| c.account_id).collect();
    let mut out = Vec::new();
    for service in ["verification", "notification"] {
        let pool = deployment.pool(service).await?;
        let rows: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT account_id, legal_name FROM accounts WHERE account_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&pool)
        .await?;
        pool.close().await;
        let seen: HashMap<Uuid, String> = rows.into_iter().collect();
        for (id, name) in &truth {
            if seen.get(id) != Some(name) {
                out.push(format!(
                    "{service}: {id} has {:?}, profile {name:?}",
                    seen.get(id)
                ));
            }
        }
    }
    Ok(out)
}

/// [`expect_exactly_once`], then prints what was checked: the events, the
/// counts, and how long delivery took (under `delivered`).
pub async fn report_exactly_once(
    test: &str,
    deployment: &Deployment,
    companies: &[Company],
    events: i64,
    timeout: Duration,
    delivered: &str,
) -> anyhow::Result<Applied> {
    let (applied, took) = expect_exactly_once(deployment, companies, events, timeout).await?;
    crate::figure(test, "events checked per consumer", events);
    crate::figure(test, "applied", format!("{applied:?}"));
    crate::figure(test, delivered, format!("{:.1}", took.as_secs_f64()));
    Ok(applied)
}

/// Waits until every consumer applied `events` legal-profile events (and
/// no more: it looks again after a pause), then checks that no dead-letter
/// queue holds anything. Returns the counts and how long delivery took.
pub async fn expect_exactly_once(
    deployment: &Deployment,
    companies: &[Company],
    events: i64,
    timeout: Duration,
) -> anyhow::Result<(Applied, Duration)> {
    let started = Instant::now();
    let mut last = Applied::default();
    while started.elapsed() < timeout {
        last = applied(deployment).await?;
        if last.complete(events) {
            break;
        }
        anyhow::ensure!(
            last.verification_cases <= events
                && last.verification_inbox <= events
                && last.notification_inbox <= events,
            "more effects than events ({events}): {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let took = started.elapsed();
    anyhow::ensure!(
        last.complete(events),
        "after {timeout:?}, {events} events but {last:?}"
    );
    // Redeliveries still on their way would show up now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let settled = applied(deployment).await?;
    anyhow::ensure!(
        settled == last,
        "effects moved on after completion: {last:?} then {settled:?}"
    );
    anyhow::ensure!(
        last.verification_cases <= events,
        "more cases than events ({events}): {last:?}"
    );
    let diverged = diverged(deployment, companies).await?;
    anyhow::ensure!(diverged.is_empty(), "projections diverged: {diverged:?}");
    let dead = dead_letters(deployment).await?;
    anyhow::ensure!(
        dead.iter().all(|(_, n)| *n == 0),
        "dead-lettered messages: {dead:?}"
    );
    Ok((last, took))
}
