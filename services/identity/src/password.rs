//! Password hashing with argon2id (the crate's defaults: 19 MiB, 2 passes),
//! run on the blocking pool so it never stalls the async workers, at most
//! one per core at a time: each takes 19 MiB, and a burst of sign-ins on an
//! unbounded pool would take a thread and 19 MiB per call at once for no
//! more throughput, since the work is CPU-bound. (That the 19 MiB go back to
//! the system after each hash is the binary's doing: it fixes glibc's mmap
//! threshold at start, see `partnerhub`'s main and docs/reliability.md.)
//!
//! Two lanes share those slots: the interactive one (sign-in, sign-up,
//! password change and reset, one hash per call) and the bulk one (users an
//! admin creates with temporary passwords), which holds at most one slot at
//! a time, so bulk creation never takes more than one core from sign-ins.
//! [`stats`] counts what ran, so tests can see which calls spent argon2
//! work and how many bulk hashes ran at once.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use tokio::sync::Semaphore;

/// Hashings running now, and the most seen at once (for the test).
static RUNNING: AtomicUsize = AtomicUsize::new(0);
static MOST_RUNNING: AtomicUsize = AtomicUsize::new(0);
/// Bulk hashings running now, and the most seen at once.
static BULK_RUNNING: AtomicUsize = AtomicUsize::new(0);
static MOST_BULK_RUNNING: AtomicUsize = AtomicUsize::new(0);
/// Hashes of new passwords and verifications started, per lane.
static HASHES: AtomicU64 = AtomicU64::new(0);
static BULK_HASHES: AtomicU64 = AtomicU64::new(0);
static VERIFICATIONS: AtomicU64 = AtomicU64::new(0);

/// What argon2 did in this process so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Passwords hashed in the interactive lane (sign-up, change, reset).
    pub hashes: u64,
    /// Passwords hashed in the bulk lane (users created by an admin).
    pub bulk_hashes: u64,
    /// Passwords verified (sign-in, password change, service tokens).
    pub verifications: u64,
    /// The most bulk hashes that ever ran at once (at most 1).
    pub most_bulk_running: usize,
}

/// The counters of this process.
pub fn stats() -> Stats {
    Stats {
        hashes: HASHES.load(Ordering::SeqCst),
        bulk_hashes: BULK_HASHES.load(Ordering::SeqCst),
        verifications: VERIFICATIONS.load(Ordering::SeqCst),
        most_bulk_running: MOST_BULK_RUNNING.load(Ordering::SeqCst),
    }
}

/// Hashings allowed at once: the cores this process may use.
fn slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| {
        Semaphore::new(std::thread::available_parallelism().map_or(1, std::num::NonZero::get))
    })
}

/// The bulk lane: one hash at a time, whatever the number of callers.
fn bulk_lane() -> &'static Semaphore {
    static LANE: OnceLock<Semaphore> = OnceLock::new();
    LANE.get_or_init(|| Semaphore::new(1))
}

/// Runs `work` on the blocking pool once a slot is free.
async fn limited<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let _slot = slots().acquire().await?;
    tokio::task::spawn_blocking(move || {
        let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
        MOST_RUNNING.fetch_max(now, Ordering::SeqCst);
        let result = work();
        RUNNING.fetch_sub(1, Ordering::SeqCst);
        result
    })
    .await?
}

fn phc(password: &str) -> anyhow::Result<String> {
    let hash: PasswordHash = Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    Ok(hash.to_string())
}

/// Hashes a password into a PHC string (the interactive lane).
pub async fn hash(password: String) -> anyhow::Result<String> {
    HASHES.fetch_add(1, Ordering::SeqCst);
    limited(move || phc(&password)).await
}

/// Hashes a password in the bulk lane: waits for the lane (one hash at a
/// time in the process), then for a slot like any other hash.
pub async fn hash_bulk(password: String) -> anyhow::Result<String> {
    let _lane = bulk_lane().acquire().await?;
    BULK_HASHES.fetch_add(1, Ordering::SeqCst);
    limited(move || {
        let now = BULK_RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
        MOST_BULK_RUNNING.fetch_max(now, Ordering::SeqCst);
        let result = phc(&password);
        BULK_RUNNING.fetch_sub(1, Ordering::SeqCst);
        result
    })
    .await
}

/// Whether `password` matches `phc`. With `phc = None` (unknown user) it
/// still spends the time of a verification, so both cases look alike.
pub async fn verify(password: String, phc: Option<String>) -> anyhow::Result<bool> {
    VERIFICATIONS.fetch_add(1, Ordering::SeqCst);
    limited(move || {
        let argon2 = Argon2::default();
        match phc {
            Some(phc) => {
                let parsed =
                    PasswordHash::new(&phc).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
                Ok(argon2.verify_password(password.as_bytes(), &parsed).is_ok())
            }
            None => {
                let _ = argon2.hash_password(password.as_bytes());
                Ok(false)
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_hashes_at_most_one_per_core_at_a_time() -> anyhow::Result<()> {
        let burst = (0..12).map(|i| super::hash(format!("burst password {i}")));
        let hashes = futures::future::try_join_all(burst).await?;
        assert_eq!(hashes.len(), 12);
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let most = super::MOST_RUNNING.load(Ordering::SeqCst);
        assert!(
            (1..=cores).contains(&most),
            "{most} hashings ran at once on {cores} cores"
        );
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bulk_hashes_run_one_at_a_time_and_let_interactive_ones_through() -> anyhow::Result<()>
    {
        let before = super::stats();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let bulk: Vec<_> = (0..8)
            .map(|i| {
                let done = done.clone();
                tokio::spawn(async move {
                    let hash = super::hash_bulk(format!("bulk password {i}")).await;
                    done.fetch_add(1, Ordering::SeqCst);
                    hash
                })
            })
            .collect();
        tokio::task::yield_now().await;
        // An interactive hash queued behind eight bulk ones waits for at
        // most one of them per slot, never for the whole burst.
        super::hash("a sign-in meanwhile".into()).await?;
        let bulk_done_first = done.load(Ordering::SeqCst);
        for task in bulk {
            task.await??;
        }
        assert!(
            bulk_done_first < 8,
            "the interactive hash waited for the whole burst"
        );
        let after = super::stats();
        assert_eq!(after.bulk_hashes - before.bulk_hashes, 8);
        assert_eq!(after.most_bulk_running, 1);
        Ok(())
    }

    #[tokio::test]
    async fn hashes_verify_and_differ_per_salt() -> anyhow::Result<()> {
        let a = super::hash("correct horse battery".into()).await?;
        let b = super::hash("correct horse battery".into()).await?;
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$"));
        assert!(super::verify("correct horse battery".into(), Some(a.clone())).await?);
        assert!(!super::verify("wrong horse".into(), Some(a)).await?);
        assert!(!super::verify("anything".into(), None).await?);
        Ok(())
    }
}
