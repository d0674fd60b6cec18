//! The one load driver every row uses: a closed loop of `in_flight` workers
//! (each sends its next call when the last one answered), or an open loop at
//! a fixed rate; latencies go into an HDR histogram.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::Serialize;

/// Client settings shared by every row of one run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LoadSettings {
    /// gRPC connections (HTTP/2 channels) the workers share.
    pub connections: usize,
    /// Calls in flight (closed-loop workers).
    pub in_flight: usize,
    /// Measured time per row.
    pub duration: Duration,
    /// Unmeasured time before it.
    pub warmup: Duration,
    /// Connections of every database pool: the services', the ceiling's
    /// and the event path's.
    pub pool_size: u32,
}

/// One unit of work, called again as soon as it returns.
pub trait Worker: Send + 'static {
    /// Does one call.
    fn call(&mut self) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// What one measurement found.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Stats {
    /// Completed operations in the measured window.
    pub count: u64,
    /// Operations per second.
    pub per_second: f64,
    /// Median latency, µs.
    pub p50_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// 99.9th percentile, µs.
    pub p999_us: f64,
    /// Calls that failed in the measured window (not in the histogram).
    pub errors: u64,
}

impl Stats {
    /// Stats of `histogram` (µs values) over `elapsed`.
    pub fn from_histogram(histogram: &Histogram<u64>, elapsed: Duration) -> Self {
        let count = histogram.len();
        Self {
            count,
            per_second: count as f64 / elapsed.as_secs_f64().max(1e-9),
            p50_us: histogram.value_at_quantile(0.50) as f64,
            p99_us: histogram.value_at_quantile(0.99) as f64,
            p999_us: histogram.value_at_quantile(0.999) as f64,
            errors: 0,
        }
    }
}

/// A histogram of microseconds from 1 µs to 100 s, 3 significant digits.
pub fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 100_000_000, 3).context("cannot create a histogram")
}

/// Records `elapsed` in µs (clamped into the histogram's range).
pub fn record(histogram: &mut Histogram<u64>, elapsed: Duration) {
    let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    histogram.saturating_record(us.max(1));
}

/// Runs `workers` in a closed loop: warm-up, then `settings.duration`
/// measured. Failed calls are counted (the first is printed), not timed.
pub async fn closed_loop<W: Worker>(
    settings: &LoadSettings,
    workers: Vec<W>,
) -> anyhow::Result<Stats> {
    let start = Instant::now() + settings.warmup;
    let end = start + settings.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for mut worker in workers {
        tasks.spawn(async move {
            let mut histogram = histogram()?;
            let mut errors = 0u64;
            loop {
                let began = Instant::now();
                if began >= end {
                    break;
                }
                match worker.call().await {
                    Ok(()) if began >= start => record(&mut histogram, began.elapsed()),
                    Ok(()) => {}
                    Err(e) => {
                        if errors == 0 {
                            eprintln!("bench: a call failed: {e:#}");
                        }
                        errors += u64::from(began >= start);
                    }
                }
            }
            anyhow::Ok((histogram, errors))
        });
    }
    let mut total = histogram()?;
    let mut errors = 0;
    while let Some(joined) = tasks.join_next().await {
        let (histogram, failed) = joined.context("a load worker panicked")??;
        total.add(&histogram).context("cannot merge histograms")?;
        errors += failed;
    }
    Ok(Stats {
        errors,
        ..Stats::from_histogram(&total, settings.duration)
    })
}

/// Calls `start_one` `rate` times per second for `duration`, without waiting
/// for earlier calls (an open loop); returns how many were started.
pub async fn fixed_rate<F, Fut>(
    rate: u32,
    duration: Duration,
    mut start_one: F,
) -> anyhow::Result<u64>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let period = Duration::from_secs(1) / rate.max(1);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let end = Instant::now() + duration;
    let mut tasks = tokio::task::JoinSet::new();
    let mut started = 0u64;
    while Instant::now() < end {
        ticker.tick().await;
        tasks.spawn(start_one());
        started += 1;
        while let Some(done) = tasks.try_join_next() {
            done.context("a call panicked")??;
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.context("a call panicked")??;
    }
    Ok(started)
}

/// A worker made of a closure returning the next call.
pub struct FnWorker<F>(pub F);

impl<F, Fut> Worker for FnWorker<F>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    fn call(&mut self) -> impl Future<Output = anyhow::Result<()>> + Send {
        (self.0)()
    }
}
