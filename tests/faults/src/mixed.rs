//! Mixed load for the soak: one legal-name change for every
//! [`WRITE_EVERY`] calls, the others legal-profile reads; first as fast as
//! it goes (the peak), then paced at a fraction of that peak.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::task::JoinSet;
use tonic::transport::Channel;

use crate::load::{Company, read, rename};

/// One call in this many changes a legal name. Each change is an event for
/// two consumers, which apply them far slower than profile accepts calls
/// (a case with a directory match per event): with more writes the soak
/// would only measure a growing queue.
pub const WRITE_EVERY: u64 = 20;

/// Calls in flight beyond which the paced load does not start a call (the
/// service fell behind): counted apart from RPC errors, and a failure of the
/// soak too.
const MAX_IN_FLIGHT: u64 = 512;

/// What a run of mixed load did.
#[derive(Debug, Clone)]
pub struct MixStats {
    /// Calls that succeeded.
    pub ok: u64,
    /// Of which legal-name changes.
    pub writes: u64,
    /// Calls that failed, per status code.
    pub errors: BTreeMap<String, u64>,
    /// Calls not started because [`MAX_IN_FLIGHT`] were in flight.
    pub not_started: u64,
    /// The first few failures.
    pub first_errors: Vec<String>,
    /// How long the run lasted.
    pub elapsed: Duration,
    /// Latency of the calls that succeeded, in microseconds.
    pub latency: Histogram<u64>,
}

impl MixStats {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            ok: 0,
            writes: 0,
            errors: BTreeMap::new(),
            not_started: 0,
            first_errors: Vec::new(),
            elapsed: Duration::ZERO,
            // 1 µs to 10 min, 3 significant digits.
            latency: Histogram::new_with_bounds(1, 600_000_000, 3)?,
        })
    }
}

impl MixStats {
    /// Successful calls per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(0.001)
    }

    /// Calls that failed, all codes together.
    pub fn failed(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Latency quantile `q` of the successful calls, in milliseconds.
    pub fn latency_ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }

    fn merge(&mut self, other: MixStats) {
        self.ok += other.ok;
        self.writes += other.writes;
        self.not_started += other.not_started;
        for (code, n) in other.errors {
            *self.errors.entry(code).or_default() += n;
        }
        for e in other.first_errors {
            if self.first_errors.len() < 5 {
                self.first_errors.push(e);
            }
        }
        // Both have the same bounds: adding cannot fail.
        let _ = self.latency.add(&other.latency);
    }

    fn record(&mut self, write: bool, took: Duration, outcome: Result<(), tonic::Status>) {
        match outcome {
            Ok(()) => {
                self.ok += 1;
                self.writes += u64::from(write);
                self.latency.saturating_record(took.as_micros() as u64);
            }
            Err(status) => {
                *self
                    .errors
                    .entry(format!("{:?}", status.code()))
                    .or_default() += 1;
                if self.first_errors.len() < 5 {
                    self.first_errors
                        .push(format!("{:?}: {}", status.code(), status.message()));
                }
            }
        }
    }
}

/// Call number `n` of the mix: every [`WRITE_EVERY`]th a legal-name change.
async fn call(
    channel: Channel,
    company: &Company,
    n: u64,
) -> (bool, Duration, Result<(), tonic::Status>) {
    let started = Instant::now();
    if n.is_multiple_of(WRITE_EVERY) {
        let name = format!("Faultline {} soak {n}", company.index);
        let outcome = rename(channel, company, name).await;
        (true, started.elapsed(), outcome)
    } else {
        let outcome = read(channel, company).await;
        (false, started.elapsed(), outcome)
    }
}

/// `workers` callers, each calling as soon as its last call returned, for
/// `warm_up` and then `duration`: the peak the deployment sustains, counted
/// over `duration` only, once the event consumers' work on the writes of the
/// warm-up competes for the same cores (as it does in the soak).
pub async fn closed_loop(
    channel: Channel,
    companies: &[Company],
    workers: usize,
    warm_up: Duration,
    duration: Duration,
) -> anyhow::Result<MixStats> {
    let warm_until = Instant::now() + warm_up;
    let started = warm_until;
    let counter = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for w in 0..workers {
        let company = companies[w % companies.len()].clone();
        let (channel, counter) = (channel.clone(), counter.clone());
        let mut stats = MixStats::new()?;
        tasks.spawn(async move {
            loop {
                let now = Instant::now();
                if now >= started && now - started >= duration {
                    break;
                }
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let (write, took, outcome) = call(channel.clone(), &company, n).await;
                if now >= warm_until {
                    stats.record(write, took, outcome);
                } else if let Err(status) = outcome {
                    // A failure during the warm-up still counts.
                    stats.record(write, took, Err(status));
                }
            }
            stats
        });
    }
    let mut total = MixStats::new()?;
    while let Some(joined) = tasks.join_next().await {
        total.merge(joined?);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

/// Calls started at `rate` per second for `duration`, whatever their
/// latency (open loop), over all `companies`.
pub async fn open_loop(
    channel: Channel,
    companies: Vec<Company>,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<MixStats> {
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1.0)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let in_flight = Arc::new(AtomicU64::new(0));
    let companies = Arc::new(companies);
    let mut tasks = JoinSet::new();
    let mut total = MixStats::new()?;
    let mut n = 0u64;
    while started.elapsed() < duration {
        tick.tick().await;
        while let Some(joined) = tasks.try_join_next() {
            let (write, took, outcome) = joined?;
            total.record(write, took, outcome);
        }
        if in_flight.load(Ordering::SeqCst) >= MAX_IN_FLIGHT {
            total.not_started += 1;
            continue;
        }
        in_flight.fetch_add(1, Ordering::SeqCst);
        let (channel, companies, in_flight) =
            (channel.clone(), companies.clone(), in_flight.clone());
        let i = n as usize % companies.len();
        tasks.spawn(async move {
            let result = call(channel, &companies[i], n).await;
            in_flight.fetch_sub(1, Ordering::SeqCst);
            result
        });
        n += 1;
    }
    while let Some(joined) = tasks.join_next().await {
        let (write, took, outcome) = joined?;
        total.record(write, took, outcome);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}
