//! Mixed load for the soak: one legal-name change for every
//! [`WRITE_EVERY`] calls, the others legal-profile reads; first as fast as
//! it goes (the peak), then paced at a fraction of that peak.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tonic::transport::Channel;

use crate::load::{Company, read, rename};

/// One call in this many changes a legal name. Each change is an event for
/// two consumers, which apply them far slower than profile accepts calls
/// (a case with a directory match per event): with more writes the soak
/// would only measure a growing queue.
pub const WRITE_EVERY: u64 = 20;

/// Calls in flight beyond which the paced load counts a call as not made
/// (the service fell behind): an error of the soak.
const MAX_IN_FLIGHT: u64 = 512;

/// What a run of mixed load did.
#[derive(Debug, Default, Clone)]
pub struct MixStats {
    /// Calls that succeeded.
    pub ok: u64,
    /// Of which legal-name changes.
    pub writes: u64,
    /// Calls that failed, or were not made because too many were in flight.
    pub errors: u64,
    /// The first few failures.
    pub first_errors: Vec<String>,
    /// How long the run lasted.
    pub elapsed: Duration,
}

impl MixStats {
    /// Successful calls per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(0.001)
    }

    fn merge(&mut self, other: MixStats) {
        self.ok += other.ok;
        self.writes += other.writes;
        self.errors += other.errors;
        for e in other.first_errors {
            if self.first_errors.len() < 5 {
                self.first_errors.push(e);
            }
        }
    }

    fn record(&mut self, write: bool, outcome: Result<(), tonic::Status>) {
        match outcome {
            Ok(()) => {
                self.ok += 1;
                self.writes += u64::from(write);
            }
            Err(status) => {
                self.errors += 1;
                if self.first_errors.len() < 5 {
                    self.first_errors
                        .push(format!("{:?}: {}", status.code(), status.message()));
                }
            }
        }
    }
}

/// Call number `n` of the mix: every [`WRITE_EVERY`]th a legal-name change.
async fn call(channel: Channel, company: &Company, n: u64) -> (bool, Result<(), tonic::Status>) {
    if n.is_multiple_of(WRITE_EVERY) {
        let name = format!("Faultline {} soak {n}", company.index);
        (true, rename(channel, company, name).await)
    } else {
        (false, read(channel, company).await)
    }
}

/// `workers` callers, each calling as soon as its last call returned, for
/// `duration`: the peak the deployment sustains.
pub async fn closed_loop(
    channel: Channel,
    companies: &[Company],
    workers: usize,
    duration: Duration,
) -> anyhow::Result<MixStats> {
    let started = Instant::now();
    let counter = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for w in 0..workers {
        let company = companies[w % companies.len()].clone();
        let (channel, counter) = (channel.clone(), counter.clone());
        tasks.spawn(async move {
            let mut stats = MixStats::default();
            while started.elapsed() < duration {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let (write, outcome) = call(channel.clone(), &company, n).await;
                stats.record(write, outcome);
            }
            stats
        });
    }
    let mut total = MixStats::default();
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
    let mut total = MixStats::default();
    let mut n = 0u64;
    while started.elapsed() < duration {
        tick.tick().await;
        while let Some(joined) = tasks.try_join_next() {
            let (write, outcome) = joined?;
            total.record(write, outcome);
        }
        if in_flight.load(Ordering::SeqCst) >= MAX_IN_FLIGHT {
            total.record(
                false,
                Err(tonic::Status::resource_exhausted(
                    "fell behind: too many calls in flight",
                )),
            );
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
        let (write, outcome) = joined?;
        total.record(write, outcome);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}
