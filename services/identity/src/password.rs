//! Password hashing with argon2id (the crate's defaults: 19 MiB, 2 passes),
//! run on the blocking pool so it never stalls the async workers, at most
//! one per core at a time: each takes 19 MiB, and a burst of sign-ins on an
//! unbounded pool would take a thread and 19 MiB per call at once for no
//! more throughput, since the work is CPU-bound. (That the 19 MiB go back to
//! the system after each hash is the binary's doing: it fixes glibc's mmap
//! threshold at start, see `partnerhub`'s main and docs/reliability.md.)

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use tokio::sync::Semaphore;

/// Hashings running now, and the most seen at once (for the test).
static RUNNING: AtomicUsize = AtomicUsize::new(0);
static MOST_RUNNING: AtomicUsize = AtomicUsize::new(0);

/// Hashings allowed at once: the cores this process may use.
fn slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| {
        Semaphore::new(std::thread::available_parallelism().map_or(1, std::num::NonZero::get))
    })
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

/// Hashes a password into a PHC string.
pub async fn hash(password: String) -> anyhow::Result<String> {
    limited(move || {
        let hash: PasswordHash = Argon2::default()
            .hash_password(password.as_bytes())
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
        Ok(hash.to_string())
    })
    .await
}

/// Whether `password` matches `phc`. With `phc = None` (unknown user) it
/// still spends the time of a verification, so both cases look alike.
pub async fn verify(password: String, phc: Option<String>) -> anyhow::Result<bool> {
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
