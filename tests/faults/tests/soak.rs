//! Soak: the peak of a mixed load (one legal-name change in
//! [`mixed::WRITE_EVERY`] calls, the rest reads) is measured first (closed
//! loop, counted over its second minute, once the event consumers' work
//! competes for the cores); once the consumers caught up with it, the load
//! runs at 70 % of it (open loop) for 10 minutes (30 s
//! in the quick run) with zero errors; every event is applied exactly once,
//! and each service's resident memory, sampled every 10 s (2 s quick) after
//! a warm-up, stays flat: the mean of the last third of the samples is
//! within 10 % of the mean of the first third (checked in the full run; the
//! quick run is too short for a trend and only prints it).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use partnerhub_faults::deployment::SERVICES;
use partnerhub_faults::{Deployment, Size, counts, cpu, figure, load, mixed};

const TEST: &str = "soak";

/// Means of the first and last thirds of `samples`.
fn thirds(samples: &[u64]) -> (f64, f64) {
    let third = (samples.len() / 3).max(1);
    let mean = |s: &[u64]| s.iter().sum::<u64>() as f64 / s.len().max(1) as f64;
    (
        mean(&samples[..third.min(samples.len())]),
        mean(&samples[samples.len().saturating_sub(third)..]),
    )
}

/// CPU counters of the soak's processes, in seconds.
fn cpu_seconds(deployment: &Deployment) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for name in SERVICES {
        if let Ok(pid) = deployment.pid(name) {
            out.insert(name.to_string(), cpu::seconds(pid));
        }
    }
    if let Some(pid) = deployment.postgres.pid() {
        out.insert("postgres".into(), cpu::seconds_with_children(pid));
    }
    if let Some(pid) = deployment.rabbit.pid() {
        out.insert("rabbitmq".into(), cpu::seconds_with_children(pid));
    }
    out.insert("load".into(), cpu::seconds(std::process::id()));
    let (busy, _) = cpu::machine();
    out.insert("machine".into(), busy);
    out
}

/// One line per window of the soak: the load's own figures, who used the
/// cores (percent of one core), PostgreSQL's checkpoints and autovacuum
/// workers, and the events each consumer has still to apply. It shows
/// when the service falls behind and what ran then.
struct Timeline {
    at: Instant,
    cpu: HashMap<String, f64>,
    checkpoints: i64,
    before: HashMap<uuid::Uuid, i64>,
    pool: sqlx::PgPool,
    started: Instant,
}

impl Timeline {
    async fn start(
        deployment: &Deployment,
        before: &HashMap<uuid::Uuid, i64>,
    ) -> anyhow::Result<Self> {
        let pool = deployment.pool("profile").await?;
        let checkpoints = Self::checkpoints(&pool).await?;
        println!(
            "faults: {TEST}: window | s | answered/s | waited for a slot | in flight end, peak | p50, p99 ms \
             | CPU % of a core | checkpoints | autovacuum | backlog verification, notification"
        );
        Ok(Self {
            at: Instant::now(),
            cpu: cpu_seconds(deployment),
            checkpoints,
            before: before.clone(),
            pool,
            started: Instant::now(),
        })
    }

    async fn checkpoints(pool: &sqlx::PgPool) -> anyhow::Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter")
                .fetch_one(pool)
                .await?,
        )
    }

    async fn sample(
        &mut self,
        deployment: &Deployment,
        progress: &mixed::Progress,
    ) -> anyhow::Result<()> {
        let window = progress.take();
        let seconds = self.at.elapsed().as_secs_f64();
        self.at = Instant::now();
        let cpu = cpu_seconds(deployment);
        let shares = cpu::percent_of_core(&self.cpu, &cpu, seconds)
            .into_iter()
            .map(|(name, p)| format!("{name} {p:.0}"))
            .collect::<Vec<_>>()
            .join(", ");
        self.cpu = cpu;
        let checkpoints = Self::checkpoints(&self.pool).await?;
        let autovacuum: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'",
        )
        .fetch_one(&self.pool)
        .await?;
        let ids: Vec<uuid::Uuid> = self.before.keys().copied().collect();
        let versions: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(version), 0)::bigint FROM profiles WHERE account_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_one(&self.pool)
        .await?;
        let written = versions - self.before.values().sum::<i64>();
        let applied = counts::applied(deployment).await?;
        println!(
            "faults: {TEST}: window | {:.0} | {:.0} | {} | {}, {} | {:.1}, {:.1} | {shares} | {} | {autovacuum} | {}, {}",
            self.started.elapsed().as_secs_f64(),
            window.answered as f64 / seconds.max(0.001),
            window.waited,
            window.in_flight,
            window.peak_in_flight,
            window.p50_ms,
            window.p99_ms,
            checkpoints - self.checkpoints,
            written - applied.verification_inbox,
            written - applied.notification_inbox,
        );
        self.checkpoints = checkpoints;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_load_at_seventy_percent_of_peak_has_no_error_and_flat_memory() -> anyhow::Result<()>
{
    let size = Size::from_env();
    let measure_for = Duration::from_secs(size.pick(5, 60));
    let soak_for = Duration::from_secs(size.pick(30, 600));
    let sample_every = Duration::from_secs(size.pick(2, 10));
    let warm_up = Duration::from_secs(size.pick(6, 60));
    let deployment = Deployment::start().await?;
    let companies = load::companies(&deployment, 16).await?;
    let before = counts::versions(&deployment, &companies).await?;
    let profile = deployment.channel("profile")?;

    let peak =
        mixed::closed_loop(profile.clone(), &companies, 32, measure_for, measure_for).await?;
    anyhow::ensure!(
        peak.errors.is_empty(),
        "errors at peak: {:?} {:?}",
        peak.errors,
        peak.first_errors
    );
    let rate = peak.rate() * 0.7;
    figure(
        TEST,
        &format!("peak (calls per s, 1 write in {})", mixed::WRITE_EVERY),
        format!("{:.0}", peak.rate()),
    );
    figure(
        TEST,
        "peak latency p50, p99 (ms)",
        format!("{:.1}, {:.1}", peak.latency_ms(0.5), peak.latency_ms(0.99)),
    );
    figure(TEST, "soak rate (calls per s)", format!("{rate:.0}"));
    // The consumers fall behind at the peak (it is the peak): the soak
    // starts once they caught up, so that it measures the steady state at
    // 70 % and not the peak's backlog. Every event of the peak is checked
    // applied exactly once on the way.
    let peak_events = counts::events_since(&deployment, &companies, &before).await?;
    let (_, drained) = counts::expect_exactly_once(
        &deployment,
        &companies,
        peak_events,
        Duration::from_secs(size.pick(120, 600)),
    )
    .await?;
    figure(
        TEST,
        "events of the peak, applied once by each consumer after (s)",
        format!("{peak_events}, {:.1}", drained.as_secs_f64()),
    );

    let progress = mixed::Progress::new()?;
    let load = tokio::spawn(mixed::open_loop(
        profile,
        companies.clone(),
        rate,
        soak_for,
        progress.clone(),
    ));
    let started = Instant::now();
    let mut samples: Vec<Vec<u64>> = vec![Vec::new(); SERVICES.len()];
    let mut timeline = Timeline::start(&deployment, &before).await?;
    while !load.is_finished() {
        tokio::time::sleep(sample_every).await;
        timeline.sample(&deployment, &progress).await?;
        if started.elapsed() < warm_up || load.is_finished() {
            continue;
        }
        for (i, name) in SERVICES.iter().enumerate() {
            samples[i].push(deployment.rss_kib(name)?);
        }
    }
    let soak = load.await??;
    figure(
        TEST,
        "soak duration (s)",
        format!("{:.0}", soak.elapsed.as_secs_f64()),
    );
    figure(TEST, "calls", soak.ok + soak.failed());
    figure(
        TEST,
        "achieved rate (calls per s)",
        format!("{:.0}", soak.rate()),
    );
    figure(TEST, "writes", soak.writes);
    figure(
        TEST,
        "latency p50, p99, p99.9 (ms)",
        format!(
            "{:.1}, {:.1}, {:.1}",
            soak.latency_ms(0.5),
            soak.latency_ms(0.99),
            soak.latency_ms(0.999)
        ),
    );
    figure(TEST, "errors", format!("{:?}", soak.errors));
    figure(
        TEST,
        "calls that waited for a slot (512 in flight when due)",
        soak.waited,
    );

    let mut growth = Vec::new();
    for (i, name) in SERVICES.iter().enumerate() {
        let (first, last) = thirds(&samples[i]);
        figure(
            TEST,
            &format!("{name} RSS MiB (first third, last third, samples)"),
            format!(
                "{:.1}, {:.1}, {}",
                first / 1024.0,
                last / 1024.0,
                samples[i].len()
            ),
        );
        if last > first * 1.10 {
            growth.push(format!("{name}: {first:.0} KiB -> {last:.0} KiB"));
        }
    }
    anyhow::ensure!(
        soak.errors.is_empty(),
        "errors in the soak: {:?} {:?}",
        soak.errors,
        soak.first_errors
    );
    // Calls due while 512 were in flight waited (their latency counts from
    // when they were due); a service that could not keep up would end with
    // a queue and a lower rate than offered.
    anyhow::ensure!(
        soak.rate() >= rate * 0.98,
        "the service fell behind: {:.0} calls per s answered of {rate:.0} offered",
        soak.rate()
    );
    if size == Size::Full {
        anyhow::ensure!(growth.is_empty(), "memory grew: {growth:?}");
    }

    let events = counts::events_since(&deployment, &companies, &before).await?;
    counts::report_exactly_once(
        TEST,
        &deployment,
        &companies,
        events,
        Duration::from_secs(size.pick(300, 900)),
        "delivery finished after the soak (s)",
    )
    .await?;
    Ok(())
}
