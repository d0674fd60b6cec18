//! Mixed load for the soak: one legal-name change for every
//! [`WRITE_EVERY`] calls, the others legal-profile reads; first as fast as
//! it goes (the peak), then paced at a fraction of that peak.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tonic::transport::Channel;

use crate::load::{Company, read, rename};

/// One call in this many changes a legal name. Each change is an event for
/// two consumers, which apply them far slower than profile accepts calls
/// (a case with a directory match per event): with more writes the soak
/// would only measure a growing queue.
pub const WRITE_EVERY: u64 = 20;

/// Calls in flight at most (the server's own limit): a call due while this
/// many are in flight waits for one to finish, as behind a client's
/// connection pool, and its latency counts from when it was due.
const MAX_IN_FLIGHT: usize = 512;

/// What a run of mixed load did.
#[derive(Debug, Clone)]
pub struct MixStats {
    /// Calls that succeeded.
    pub ok: u64,
    /// Of which legal-name changes.
    pub writes: u64,
    /// Calls that failed, per status code.
    pub errors: BTreeMap<String, u64>,
    /// Calls that had to wait for a slot because [`MAX_IN_FLIGHT`] were in
    /// flight when they were due.
    pub waited: u64,
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
            waited: 0,
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
        self.waited += other.waited;
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

/// What the paced load is doing, read by a sampler while it runs: the
/// soak prints it per window to show when and how the service falls behind.
pub struct Progress {
    answered: AtomicU64,
    failed: AtomicU64,
    waited: AtomicU64,
    waited_in_all: AtomicU64,
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
    latency: Mutex<Histogram<u64>>,
}

/// One window of [`Progress`].
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Calls answered (either way) in the window.
    pub answered: u64,
    /// Of which failed.
    pub failed: u64,
    /// Calls due in the window that waited for a slot.
    pub waited: u64,
    /// Calls in flight at the end of the window.
    pub in_flight: u64,
    /// Most calls in flight at once in the window.
    pub peak_in_flight: u64,
    /// Latency p50 and p99 of the window's answers, in milliseconds.
    pub p50_ms: f64,
    /// See `p50_ms`.
    pub p99_ms: f64,
}

impl Progress {
    /// Nothing counted yet.
    pub fn new() -> anyhow::Result<Arc<Self>> {
        Ok(Arc::new(Self {
            answered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            waited: AtomicU64::new(0),
            waited_in_all: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            peak_in_flight: AtomicU64::new(0),
            latency: Mutex::new(Histogram::new_with_bounds(1, 600_000_000, 3)?),
        }))
    }

    /// What happened since the last call, and starts a new window.
    pub fn take(&self) -> Window {
        let in_flight = self.in_flight.load(Ordering::SeqCst);
        let (p50_ms, p99_ms) = {
            let mut latency = self.latency.lock().unwrap_or_else(|e| e.into_inner());
            let q = |q| latency.value_at_quantile(q) as f64 / 1000.0;
            let quantiles = (q(0.5), q(0.99));
            latency.reset();
            quantiles
        };
        Window {
            answered: self.answered.swap(0, Ordering::SeqCst),
            failed: self.failed.swap(0, Ordering::SeqCst),
            waited: self.waited.swap(0, Ordering::SeqCst),
            in_flight,
            peak_in_flight: self.peak_in_flight.swap(in_flight, Ordering::SeqCst),
            p50_ms,
            p99_ms,
        }
    }

    fn started(&self) {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak_in_flight.fetch_max(now, Ordering::SeqCst);
    }

    fn answered(&self, took: Duration, ok: bool) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.answered.fetch_add(1, Ordering::SeqCst);
        if !ok {
            self.failed.fetch_add(1, Ordering::SeqCst);
        }
        self.latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .saturating_record(took.as_micros() as u64);
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

/// Calls due at `rate` per second for `duration`, whatever their latency
/// (open loop), over all `companies`; `progress` follows it. Latency counts
/// from when a call was due, so a stall shows as the latency of every call
/// it delayed (no coordinated omission).
pub async fn open_loop(
    channel: Channel,
    companies: Vec<Company>,
    rate: f64,
    duration: Duration,
    progress: Arc<Progress>,
) -> anyhow::Result<MixStats> {
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1.0)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let companies = Arc::new(companies);
    let mut tasks = JoinSet::new();
    let mut total = MixStats::new()?;
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut n = 0u64;
    while started.elapsed() < duration {
        let due = tick.tick().await.into_std();
        while let Some(joined) = tasks.try_join_next() {
            let (write, took, outcome) = joined?;
            total.record(write, took, outcome);
        }
        let (channel, companies, progress, slots) = (
            channel.clone(),
            companies.clone(),
            progress.clone(),
            slots.clone(),
        );
        let i = n as usize % companies.len();
        tasks.spawn(async move {
            let _slot = match slots.clone().try_acquire_owned() {
                Ok(slot) => Some(slot),
                Err(_) => {
                    progress.waited.fetch_add(1, Ordering::SeqCst);
                    progress.waited_in_all.fetch_add(1, Ordering::SeqCst);
                    // The semaphore is never closed.
                    slots.acquire_owned().await.ok()
                }
            };
            progress.started();
            let (write, _, outcome) = call(channel, &companies[i], n).await;
            let took = due.elapsed();
            progress.answered(took, outcome.is_ok());
            (write, took, outcome)
        });
        n += 1;
    }
    while let Some(joined) = tasks.join_next().await {
        let (write, took, outcome) = joined?;
        total.record(write, took, outcome);
    }
    total.elapsed = started.elapsed();
    total.waited = progress.waited_in_all.load(Ordering::SeqCst);
    Ok(total)
}
