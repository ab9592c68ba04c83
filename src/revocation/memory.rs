//! [`MemoryStore`]: revocations in this process's memory.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::BuildHasher as _;
use std::sync::{Arc, RwLock};

use super::dynamic::BoxFuture;
use super::prehashed::PreHashed;
use super::registry::{merge_record, SessionRecord, SessionRegistry};
use super::{LoginState, RevocationState, RevocationStore, StoreError};
use crate::clock::{Clock, SystemClock};
use crate::session::SessionId;

/// A revocation store in this process's memory, for tests and single-process
/// applications.
///
/// **Revocations are lost when the process exits.** Start it with
/// [`MemoryStore::refusing_sessions_before`] and the time of start-up to
/// refuse every session issued before then: the safe choice, since a restart
/// forgets who was logged out. Users are kept as 64-bit keyed hashes of their
/// IDs (a collision can only log someone out, never keep a revoked session
/// alive), so a revoked user costs about 40 bytes.
pub struct MemoryStore {
    inner: RwLock<Memory>,
    /// The session registry, by user: empty unless the web driver records
    /// sessions ([`SessionRegistry`]).
    registry: std::sync::Mutex<HashMap<String, Vec<SessionRecord>>>,
    /// When the registry last dropped the expired records of every user.
    registry_purged: std::sync::atomic::AtomicU64,
    hash_key: std::hash::RandomState,
    clock: Arc<dyn Clock>,
}

#[derive(Default)]
struct Memory {
    epochs: HashMap<u64, u64, PreHashed>,
    denied: HashMap<[u8; 16], u64>,
    revoked_through: u64,
    /// When the earliest entry in `denied` may be purged (0 when empty),
    /// to know when a purge is worth it.
    next_purge: u64,
    /// When `denied` was last purged.
    last_purge: u64,
}

/// The least time between two purges of expired denylist entries (Unix
/// seconds). Each purge scans every entry; under steady revocations the
/// earliest entry expires every moment, and a purge on each revocation
/// would make every one cost a scan under the lock every check waits on.
const PURGE_INTERVAL: u64 = 60;

impl MemoryStore {
    /// An empty store on the system clock that refuses nothing until
    /// something is revoked.
    #[must_use]
    pub fn new() -> Self {
        Self::with_clock(SystemClock)
    }

    /// An empty store whose time (for denylist expiries and global logouts)
    /// comes from `clock`: give it the sealer's clock in tests.
    #[must_use]
    pub fn with_clock(clock: impl Clock + 'static) -> Self {
        Self {
            inner: RwLock::new(Memory::default()),
            registry: std::sync::Mutex::default(),
            registry_purged: std::sync::atomic::AtomicU64::new(0),
            hash_key: std::hash::RandomState::new(),
            clock: Arc::new(clock),
        }
    }

    /// An empty store that refuses every session issued at or before
    /// `start` (Unix seconds): pass the time of start-up.
    #[must_use]
    pub fn refusing_sessions_before(start: u64) -> Self {
        let store = Self::new();
        store.write().revoked_through = start;
        store
    }

    /// Number of users with an epoch above 0.
    #[must_use]
    pub fn revoked_users(&self) -> usize {
        self.read().epochs.len()
    }

    /// Number of sessions on the denylist, expired entries included until the next purge.
    #[must_use]
    pub fn revoked_sessions(&self) -> usize {
        self.read().denied.len()
    }

    fn user_key(&self, user_id: &str) -> u64 {
        self.hash_key.hash_one(user_id)
    }

    fn now(&self) -> u64 {
        u64::try_from(self.clock.unix_now()).unwrap_or(0)
    }

    // A poisoned lock only means another thread panicked while holding it;
    // every write leaves the maps consistent, so keep going.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Memory> {
        self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Memory> {
        self.inner.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn state_now(&self, user_id: Option<&str>, session: SessionId) -> RevocationState {
        let user_key = user_id.map(|u| self.user_key(u));
        let inner = self.read();
        RevocationState {
            user_epoch: user_key.and_then(|k| inner.epochs.get(&k).copied()).unwrap_or(0),
            session_revoked: inner.denied.contains_key(session.as_bytes()),
            revoked_through: inner.revoked_through,
        }
    }

    /// Denylists `session` until `expires_at`, or with `once` only if no
    /// unexpired entry is there; returns whether the entry is this call's.
    fn deny(&self, session: SessionId, expires_at: u64, once: bool) -> Result<bool, StoreError> {
        let now = self.now();
        if expires_at <= now {
            return Err(StoreError::ExpiryNotInFuture { expires_at, now });
        }
        let mut inner = self.write();
        // Entries past their expiry protect nothing: the token itself is
        // refused as expired. Purge them a day later (so that a clock that
        // jumps ahead purges none that still counts,
        // `sql::DENYLIST_PURGE_GRACE_SECS`), when the earliest one is due,
        // at most once a `PURGE_INTERVAL`.
        let grace = super::sql::DENYLIST_PURGE_GRACE_SECS;
        if inner.next_purge != 0
            && inner.next_purge <= now
            && now >= inner.last_purge.saturating_add(PURGE_INTERVAL)
        {
            inner.denied.retain(|_, until| until.saturating_add(grace) > now);
            inner.next_purge =
                inner.denied.values().map(|until| until.saturating_add(grace)).min().unwrap_or(0);
            inner.last_purge = now;
        }
        // A new entry starts at 0, as an expired one: neither denies anything.
        let until = inner.denied.entry(*session.as_bytes()).or_insert(0);
        if once && *until > now {
            return Ok(false);
        }
        // Never shorten an entry: a later revocation can only extend it.
        *until = (*until).max(expires_at);
        let due = until.saturating_add(grace);
        inner.next_purge = if inner.next_purge == 0 { due } else { inner.next_purge.min(due) };
        Ok(true)
    }
}

/// The registry lives beside the revocations, and like them is lost when
/// the process exits.
impl SessionRegistry for MemoryStore {
    fn record<'a>(&'a self, record: &'a SessionRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        let now = self.now();
        let mut registry = self.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        merge_record(registry.entry(record.user_id.clone()).or_default(), record, now);
        // Users who never come back leave no records behind: every user's
        // expired ones go, at most once a `PURGE_INTERVAL` (a scan of all).
        let purged = &self.registry_purged;
        if now >= purged.load(std::sync::atomic::Ordering::Relaxed).saturating_add(PURGE_INTERVAL) {
            registry.retain(|_, records| {
                records.retain(|r| r.expires_at > now);
                !records.is_empty()
            });
            purged.store(now, std::sync::atomic::Ordering::Relaxed);
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn remove<'a>(&'a self, user_id: &'a str, id: SessionId) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut registry = self.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(records) = registry.get_mut(user_id) {
            records.retain(|r| r.id != id);
            if records.is_empty() {
                registry.remove(user_id);
            }
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn remove_user<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(user_id);
        Box::pin(std::future::ready(Ok(())))
    }

    fn list<'a>(
        &'a self,
        user_id: &'a str,
        now: u64,
    ) -> BoxFuture<'a, Result<Vec<SessionRecord>, StoreError>> {
        let registry = self.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let records = registry.get(user_id).map_or_else(Vec::new, |records| {
            records.iter().filter(|r| r.expires_at > now).cloned().collect()
        });
        Box::pin(std::future::ready(Ok(records)))
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.read();
        f.debug_struct("MemoryStore")
            .field("revoked_users", &inner.epochs.len())
            .field("revoked_sessions", &inner.denied.len())
            .field("revoked_through", &inner.revoked_through)
            .finish_non_exhaustive()
    }
}

impl RevocationStore for MemoryStore {
    fn state(
        &self,
        user_id: Option<&str>,
        session: SessionId,
    ) -> impl Future<Output = Result<RevocationState, StoreError>> + Send {
        std::future::ready(Ok(self.state_now(user_id, session)))
    }

    fn login_state(&self, user_id: &str) -> impl Future<Output = Result<LoginState, StoreError>> + Send {
        let key = self.user_key(user_id);
        let inner = self.read();
        std::future::ready(Ok(LoginState {
            user_epoch: inner.epochs.get(&key).copied().unwrap_or(0),
            revoked_through: inner.revoked_through,
        }))
    }

    fn revoke_user(&self, user_id: &str) -> impl Future<Output = Result<u64, StoreError>> + Send {
        let key = self.user_key(user_id);
        let mut inner = self.write();
        let epoch = inner.epochs.entry(key).or_insert(0);
        *epoch = epoch.saturating_add(1);
        std::future::ready(Ok(*epoch))
    }

    fn revoke_session(
        &self,
        session: SessionId,
        expires_at: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        std::future::ready(self.deny(session, expires_at, false).map(drop))
    }

    fn revoke_session_once(
        &self,
        session: SessionId,
        expires_at: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        std::future::ready(self.deny(session, expires_at, true))
    }

    fn revoke_all(&self, issued_through: u64) -> impl Future<Output = Result<u64, StoreError>> + Send {
        let now = self.now();
        if now == 0 {
            // A clock at or before 1970 would leave the cutoff where it is:
            // a logout of everyone that logs no one out must not succeed.
            return std::future::ready(Err(StoreError::untrusted(crate::ClockError)));
        }
        let mut inner = self.write();
        inner.revoked_through = next_cutoff(inner.revoked_through, issued_through, now);
        std::future::ready(Ok(inner.revoked_through))
    }
}

/// The cutoff a global logout sets, for store implementations: the later
/// of the current one and the store's time. `issued_through`, the caller's
/// idea of "now", counts only up to the store's time: a caller whose clock
/// runs ahead must not push the cutoff past it, which would refuse every
/// login everywhere until then with nothing able to lower it again. A store
/// with no clock of its own passes `issued_through` as `store_now`.
///
/// ```
/// use sealed_session::next_cutoff;
///
/// assert_eq!(next_cutoff(0, 1_000, 1_000), 1_000);
/// assert_eq!(next_cutoff(0, 900, 1_000), 1_000, "never before the store's time");
/// assert_eq!(next_cutoff(1_200, 0, 1_000), 1_200, "never earlier than before");
/// assert_eq!(next_cutoff(0, 1_000 + 6 * 3600, 1_000), 1_000, "a caller hours ahead moves nothing");
/// ```
#[must_use]
pub fn next_cutoff(current: u64, issued_through: u64, store_now: u64) -> u64 {
    current.max(issued_through.min(store_now)).max(store_now)
}
