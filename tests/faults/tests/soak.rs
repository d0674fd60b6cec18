//! Soak: the peak of a mixed load (one legal-name change in
//! [`mixed::WRITE_EVERY`] calls, the rest reads) is measured first (closed
//! loop, counted over its second minute, once the event consumers' work
//! competes for the cores), then the load runs at 70 % of it (open loop) for 10 minutes (30 s
//! in the quick run) with zero errors; every event is applied exactly once,
//! and each service's resident memory, sampled every 10 s (2 s quick) after
//! a warm-up, stays flat: the mean of the last third of the samples is
//! within 10 % of the mean of the first third (checked in the full run; the
//! quick run is too short for a trend and only prints it).

use std::time::{Duration, Instant};

use partnerhub_faults::deployment::SERVICES;
use partnerhub_faults::{Deployment, Size, counts, figure, load, mixed};

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

    let load = tokio::spawn(mixed::open_loop(profile, companies.clone(), rate, soak_for));
    let started = Instant::now();
    let mut samples: Vec<Vec<u64>> = vec![Vec::new(); SERVICES.len()];
    while !load.is_finished() {
        tokio::time::sleep(sample_every).await;
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
    figure(TEST, "calls not started (512 in flight)", soak.not_started);

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
    anyhow::ensure!(
        soak.not_started == 0,
        "the service fell behind: {} calls not started",
        soak.not_started
    );
    if size == Size::Full {
        anyhow::ensure!(growth.is_empty(), "memory grew: {growth:?}");
    }

    let after = counts::versions(&deployment, &companies).await?;
    let events: i64 = after.iter().map(|(id, v)| v - before[id]).sum();
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
