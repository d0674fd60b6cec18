//! A read cache kept coherent by PostgreSQL itself: a trigger on the cached
//! table sends `pg_notify(channel, key)` for every row written, which
//! PostgreSQL delivers at commit to every replica's listener; each replica
//! then drops that key.
//!
//! What a reader may see: its own replica's writes at once (the writer calls
//! [`NotifiedCache::invalidate`] after its commit), other replicas' writes as
//! soon as their notification arrives (a millisecond or so on a LAN; an etag
//! check still refuses an update based on a stale read). The cache never
//! serves while its listener is not listening: after a lost connection it is
//! emptied and bypassed until `LISTEN` is back, since notifications sent
//! meanwhile are lost.
//!
//! A notification lost without the connection failing visibly (a silent
//! network partition) would leave a row stale: no entry is served longer
//! than the cache's `max_age`, whatever happened.
//!
//! A read that raced a write must not put the old row back after the write's
//! notification removed it: a reader takes [`NotifiedCache::generation`]
//! before its `SELECT` and [`NotifiedCache::fill`] keeps the row only if no
//! invalidation happened since.

use std::collections::HashMap;
use std::hash::Hash;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// A bounded map from `K` to `V`, emptied of a key when the database says
/// the key's row changed.
pub struct NotifiedCache<K, V> {
    inner: Arc<Inner<K, V>>,
}

impl<K, V> Clone for NotifiedCache<K, V> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<K, V> std::fmt::Debug for NotifiedCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.inner.lock();
        f.debug_struct("NotifiedCache")
            .field("channel", &self.inner.channel)
            .field("entries", &state.entries.len())
            .field("listening", &state.listening)
            .finish()
    }
}

struct Inner<K, V> {
    channel: &'static str,
    capacity: usize,
    max_age: Duration,
    state: Mutex<State<K, V>>,
}

struct State<K, V> {
    /// Values with the time they were read from the database.
    entries: HashMap<K, (V, Instant)>,
    /// Bumped by every invalidation (and by going live or dark).
    generation: u64,
    /// Whether the listener is listening: only then is the cache used.
    listening: bool,
}

impl<K, V> Inner<K, V> {
    fn lock(&self) -> MutexGuard<'_, State<K, V>> {
        // A panic while holding the lock cannot leave the map half-written
        // (every change is one map call): keep using it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<K, V> NotifiedCache<K, V>
where
    K: Eq + Hash + Clone + FromStr + Send + 'static,
    V: Clone + Send + 'static,
{
    /// A cache of at most `capacity` entries, each served for at most
    /// `max_age`, invalidated by notifications on `channel` whose payload is
    /// a key. It serves nothing until [`NotifiedCache::spawn_listener`]
    /// listens.
    pub fn new(channel: &'static str, capacity: usize, max_age: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                channel,
                capacity: capacity.max(1),
                max_age,
                state: Mutex::new(State {
                    entries: HashMap::new(),
                    generation: 0,
                    listening: false,
                }),
            }),
        }
    }

    /// The cached value of `key`, if the cache is live and holds one read
    /// less than `max_age` ago.
    pub fn get(&self, key: &K) -> Option<V> {
        let state = self.inner.lock();
        if !state.listening {
            return None;
        }
        let (value, read_at) = state.entries.get(key)?;
        (read_at.elapsed() < self.inner.max_age).then(|| value.clone())
    }

    /// The generation to pass to [`NotifiedCache::fill`]; take it before
    /// reading the row.
    pub fn generation(&self) -> u64 {
        self.inner.lock().generation
    }

    /// Keeps `value` for `key` if nothing was invalidated since `generation`
    /// was taken and the cache is live. When full, an arbitrary entry makes
    /// room.
    pub fn fill(&self, key: K, value: V, generation: u64) {
        let mut state = self.inner.lock();
        if !state.listening || state.generation != generation {
            return;
        }
        if state.entries.len() >= self.inner.capacity && !state.entries.contains_key(&key) {
            let victim = state.entries.keys().next().cloned();
            if let Some(victim) = victim {
                state.entries.remove(&victim);
            }
        }
        state.entries.insert(key, (value, Instant::now()));
    }

    /// Forgets `key` (a write of this replica, after its commit; or a
    /// notification).
    pub fn invalidate(&self, key: &K) {
        let mut state = self.inner.lock();
        state.generation = state.generation.wrapping_add(1);
        state.entries.remove(key);
    }

    /// Forgets everything and serves again only if `listening`.
    fn reset(&self, listening: bool) {
        let mut state = self.inner.lock();
        state.generation = state.generation.wrapping_add(1);
        state.entries.clear();
        state.listening = listening;
    }

    /// How many entries are held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Listens on the cache's channel on a connection of its own (outside
    /// `pool`, with `pool`'s options) until `shutdown`, reconnecting with
    /// backoff; the cache serves only while it listens.
    pub fn spawn_listener(
        &self,
        pool: &PgPool,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let cache = self.clone();
        let pool = pool.clone();
        tokio::spawn(async move { cache.listen(pool, shutdown).await })
    }

    async fn listen(self, pool: PgPool, shutdown: CancellationToken) {
        let channel = self.inner.channel;
        let mut delay = Duration::from_millis(100);
        while !shutdown.is_cancelled() {
            let Some(mut listener) = crate::outbox::listen(&pool, channel).await else {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(5));
                continue;
            };
            delay = Duration::from_millis(100);
            // Notifications sent before LISTEN took effect are lost: start
            // empty.
            self.reset(true);
            tracing::debug!(channel, "Read cache listening.");
            loop {
                let next = tokio::select! {
                    () = shutdown.cancelled() => break,
                    next = listener.try_recv() => next,
                };
                match next {
                    Ok(Some(notification)) => match notification.payload().parse::<K>() {
                        Ok(key) => self.invalidate(&key),
                        // Not a key: drop everything rather than guess.
                        Err(_) => self.reset(true),
                    },
                    // The connection was lost: whatever was sent meanwhile
                    // is lost with it.
                    Ok(None) | Err(_) => {
                        tracing::warn!(
                            channel,
                            "Read cache lost its listener; bypassed until it is back."
                        );
                        break;
                    }
                }
            }
            self.reset(false);
        }
        self.reset(false);
    }
}

#[cfg(test)]
mod tests {
    use super::NotifiedCache;

    use std::time::Duration;

    fn live() -> NotifiedCache<u32, &'static str> {
        let cache = NotifiedCache::new("test", 2, Duration::from_secs(60));
        cache.reset(true);
        cache
    }

    #[test]
    fn nothing_is_served_or_kept_while_not_listening() {
        let cache: NotifiedCache<u32, &str> =
            NotifiedCache::new("test", 2, Duration::from_secs(60));
        let generation = cache.generation();
        cache.fill(1, "one", generation);
        assert_eq!(cache.get(&1), None);
        let cache = live();
        cache.fill(1, "one", cache.generation());
        assert_eq!(cache.get(&1), Some("one"));
        cache.reset(false);
        assert_eq!((cache.get(&1), cache.len()), (None, 0));
    }

    #[test]
    fn a_read_that_raced_an_invalidation_is_not_kept() {
        let cache = live();
        let before_the_select = cache.generation();
        // The write's notification arrives while the reader waits for its row.
        cache.invalidate(&1);
        cache.fill(1, "old row", before_the_select);
        assert_eq!(cache.get(&1), None);
        cache.fill(1, "new row", cache.generation());
        assert_eq!(cache.get(&1), Some("new row"));
        cache.invalidate(&1);
        assert_eq!(cache.get(&1), None);
    }

    #[test]
    fn a_full_cache_makes_room_and_never_grows_past_its_capacity() {
        let cache = live();
        for key in 0..10 {
            cache.fill(key, "row", cache.generation());
            assert!(cache.len() <= 2);
            assert_eq!(cache.get(&key), Some("row"));
        }
        // Refilling a held key evicts nothing.
        cache.fill(9, "newer", cache.generation());
        assert_eq!((cache.len(), cache.get(&9)), (2, Some("newer")));
    }

    #[test]
    fn no_entry_is_served_past_its_age() {
        let cache = NotifiedCache::new("test", 2, Duration::from_millis(20));
        cache.reset(true);
        cache.fill(1, "row", cache.generation());
        assert_eq!(cache.get(&1), Some("row"));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(cache.get(&1), None);
    }
}
