//! A [`RevocationStore`] in Redis, shared by many servers, with a local
//! cache that Redis pub/sub keeps fresh.
//!
//! * **Atomic.** Epochs are bumped with `INCR`; denylist entries expire on
//!   their own at the session's absolute expiry (`EXPIREAT`); "log everyone
//!   out" raises a floor that never moves back.
//! * **Fast.** Each server caches what it read. Every revocation is
//!   published on a channel, and every server drops the entries it names,
//!   so most checks cost no round trip while a revocation reaches every
//!   server within milliseconds. The server that revokes updates its own
//!   cache before the call returns.
//! * **Bounded staleness.** The cache is used only while the subscription is
//!   up and is emptied when it comes back; it is also emptied when the
//!   subscription is lost, unless stale answers were opted in to. An entry is
//!   never used after [`RedisConfig::cache_ttl`] (default 1 s): a lost message
//!   cannot keep a revoked session alive longer than that.
//! * **Fail closed.** If Redis does not answer within
//!   [`RedisConfig::timeout`], the check fails with
//!   [`StoreError::Timeout`] or [`StoreError::Unavailable`] and the session
//!   is refused, unless [`RedisConfig::accept_stale_for`] opts in to answering
//!   from older cached data for a bounded time.
//! * **No eviction.** Connecting fails unless Redis's `maxmemory-policy` is
//!   `noeviction` (or cannot be read, which is logged): an evicted key would
//!   silently undo a revocation.
//! * **Data loss never resurrects.** A generation key is written when the
//!   keyspace is first used. After a `FLUSHALL` or a restart without
//!   persistence it is missing: the store writes a new one, and every session
//!   issued at or before it is refused (everyone signs in again). The event is
//!   logged at `warn` and published so every server drops its cache.
//! * Reconnects on its own after Redis restarts, for commands and for the
//!   subscription.
//!
//! It runs on tokio: create it, and poll its futures, inside a tokio runtime
//! with the time and I/O drivers enabled.
//!
//! ```no_run
//! use sealed_session::{Keyring, Sealer, Verifier};
//! use sealed_session_redis::RedisStore;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let store = RedisStore::connect("redis://127.0.0.1:6379/0").await?;
//! let verifier = Verifier::new(Sealer::builder(Keyring::load("keyring.toml")?).build()?, store);
//! verifier.logout_everywhere("alice").await?; // every server refuses alice's sessions
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use futures_util::StreamExt as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands as _, Script};
use sealed_session::{Clock, RevocationState, RevocationStore, SessionId, StoreError, SystemClock};

/// Reads everything one check needs in one round trip, and starts a new
/// generation if the keyspace has none.
///
/// KEYS: generation, floor, user epoch (or the generation again when there
/// is no user), session denylist entry. ARGV: the time now.
/// Returns: generation, floor, epoch, denied, whether a generation began.
const STATE_SCRIPT: &str = r"
local generation = redis.call('GET', KEYS[1])
local started = 0
if not generation then
  redis.call('SET', KEYS[1], ARGV[1])
  generation = ARGV[1]
  started = 1
end
local floor = redis.call('GET', KEYS[2]) or '0'
local epoch = '0'
if KEYS[3] ~= KEYS[1] then epoch = redis.call('GET', KEYS[3]) or '0' end
local denied = redis.call('EXISTS', KEYS[4])
return {generation, floor, epoch, denied, started}
";

/// Raises the floor, never lowers it. KEYS: floor. ARGV: the new floor.
const FLOOR_SCRIPT: &str = r"
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
";

/// Settings of a [`RedisStore`]; every one has a safe default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedisConfig {
    /// Prefix of every key and of the channel; default `sealed-session`.
    pub prefix: String,
    /// How long a command may take before the check fails closed; default 250 ms.
    pub timeout: Duration,
    /// The longest a cached answer is used, even while the subscription is
    /// up; default 1 s. Zero turns the cache off.
    pub cache_ttl: Duration,
    /// When Redis cannot be reached, answer from cached data at most this
    /// old instead of refusing. Default `None`: refuse (fail closed).
    pub accept_stale_for: Option<Duration>,
}

impl RedisConfig {
    /// Sets [`RedisConfig::prefix`].
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets [`RedisConfig::timeout`].
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`RedisConfig::cache_ttl`].
    #[must_use]
    pub fn with_cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// Sets [`RedisConfig::accept_stale_for`].
    #[must_use]
    pub fn with_stale_answers_for(mut self, limit: Option<Duration>) -> Self {
        self.accept_stale_for = limit;
        self
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            prefix: "sealed-session".into(),
            timeout: Duration::from_millis(250),
            cache_ttl: Duration::from_secs(1),
            accept_stale_for: None,
        }
    }
}

/// The store could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL is not a Redis URL.
    #[error("not a Redis store URL: expected redis://HOST:PORT/DB")]
    Url,
    /// Redis could not be reached.
    #[error("cannot connect to Redis: {0}")]
    Redis(#[source] redis::RedisError),
    /// Redis may evict keys, which would silently undo revocations.
    #[error(
        "Redis maxmemory-policy is {0}; revocations need noeviction (CONFIG SET maxmemory-policy noeviction)"
    )]
    EvictionPolicy(String),
}

#[derive(Clone, Copy)]
struct Cached<T> {
    value: T,
    fetched_ms: i64,
}

#[derive(Default)]
struct Cache {
    users: HashMap<String, Cached<u64>>,
    sessions: HashMap<[u8; 16], Cached<bool>, SessionIdHash>,
    floor: Option<Cached<u64>>,
    swept_ms: i64,
}

/// Session IDs are 128 random bits drawn by the server (only IDs of
/// authenticated sessions reach the cache), so their first 64 bits are
/// already a uniform hash: no need to pay for SipHash on every check.
#[derive(Default, Clone, Copy)]
struct SessionIdHash;

impl std::hash::BuildHasher for SessionIdHash {
    type Hasher = SessionIdHasher;
    fn build_hasher(&self) -> SessionIdHasher {
        SessionIdHasher(0)
    }
}

struct SessionIdHasher(u64);

impl std::hash::Hasher for SessionIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // [u8; 16] hashes as its length (write_usize) then its bytes.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word.get_mut(..chunk.len()).unwrap_or_default().copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(word);
        }
    }

    fn write_usize(&mut self, _: usize) {}
}

/// Entries beyond this many are swept of stale ones before another is added.
const CACHE_SWEEP_AT: usize = 100_000;

struct Inner {
    conn: ConnectionManager,
    config: RedisConfig,
    keys: Keys,
    clock: Arc<dyn Clock>,
    cache: RwLock<Cache>,
    /// True while the invalidation subscription is up.
    subscribed: AtomicBool,
    /// Counts invalidations, so that an answer read before one is never cached after it.
    invalidations: AtomicU64,
    state_script: Script,
    floor_script: Script,
}

struct Keys {
    generation: String,
    floor: String,
    channel: String,
    prefix: String,
}

impl Keys {
    fn new(prefix: &str) -> Self {
        Self {
            generation: format!("{prefix}:generation"),
            floor: format!("{prefix}:floor"),
            channel: format!("{prefix}:revocations"),
            prefix: prefix.to_owned(),
        }
    }

    fn user(&self, user_id: &str) -> String {
        format!("{}:user:{user_id}", self.prefix)
    }

    fn session(&self, session: &SessionId) -> String {
        format!("{}:session:{}", self.prefix, session.to_hex())
    }
}

/// A revocation store in Redis. Clones share one connection, cache and
/// subscription; the subscription task ends within a second of the last
/// clone being dropped.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("config", &self.inner.config)
            .field("subscribed", &self.inner.subscribed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn redis_error(err: redis::RedisError) -> StoreError {
    StoreError::unavailable(err)
}

impl RedisStore {
    /// Connects to the Redis at `url` (`redis://HOST:PORT/DB`) with the default settings.
    ///
    /// # Errors
    /// [`ConnectError`] if the URL is wrong or Redis cannot be reached now.
    pub async fn connect(url: &str) -> Result<Self, ConnectError> {
        Self::connect_with(url, RedisConfig::default(), SystemClock).await
    }

    /// Connects with explicit settings and clock (which dates generations and
    /// ages cache entries).
    ///
    /// # Errors
    /// As [`RedisStore::connect`].
    pub async fn connect_with(
        url: &str,
        config: RedisConfig,
        clock: impl Clock + 'static,
    ) -> Result<Self, ConnectError> {
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(ConnectError::Url);
        }
        let client = redis::Client::open(url).map_err(ConnectError::Redis)?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_with_config(client.clone(), manager_config)
            .await
            .map_err(ConnectError::Redis)?;
        let inner = Arc::new(Inner {
            conn,
            keys: Keys::new(&config.prefix),
            config,
            clock: Arc::new(clock),
            cache: RwLock::new(Cache::default()),
            subscribed: AtomicBool::new(false),
            invalidations: AtomicU64::new(0),
            state_script: Script::new(STATE_SCRIPT),
            floor_script: Script::new(FLOOR_SCRIPT),
        });
        inner.check_eviction_policy().await?;
        inner.ensure_generation().await.map_err(ConnectError::Redis)?;
        tokio::spawn(subscribe_forever(client, Arc::downgrade(&inner)));
        Ok(Self { inner })
    }

    /// Whether the invalidation subscription is up (the cache is in use).
    #[must_use]
    pub fn is_subscribed(&self) -> bool {
        self.inner.subscribed.load(Ordering::SeqCst)
    }

    /// Waits until the subscription is up, for at most `limit`. Returns
    /// whether it is.
    pub async fn wait_until_subscribed(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while !self.is_subscribed() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}

impl Inner {
    fn now_ms(&self) -> i64 {
        self.clock.unix_millis()
    }

    fn ttl_ms(&self) -> i64 {
        i64::try_from(self.config.cache_ttl.as_millis()).unwrap_or(i64::MAX)
    }

    fn read_cache(&self) -> std::sync::RwLockReadGuard<'_, Cache> {
        self.cache.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_cache(&self) -> std::sync::RwLockWriteGuard<'_, Cache> {
        self.cache.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The state from the cache, if every part of it is younger than `max_age_ms`.
    fn cached(&self, user_id: Option<&str>, session: &SessionId, max_age_ms: i64) -> Option<RevocationState> {
        let now = self.now_ms();
        // A negative age means the clock stepped back: not fresh.
        let fresh = |fetched_ms: i64| (0..max_age_ms).contains(&now.saturating_sub(fetched_ms));
        let cache = self.read_cache();
        let floor = cache.floor.filter(|c| fresh(c.fetched_ms))?.value;
        let session_revoked = cache.sessions.get(session.as_bytes()).filter(|c| fresh(c.fetched_ms))?.value;
        let user_epoch = match user_id {
            Some(user) => cache.users.get(user).filter(|c| fresh(c.fetched_ms))?.value,
            None => 0,
        };
        Some(RevocationState { user_epoch, session_revoked, revoked_through: floor })
    }

    fn remember(&self, user_id: Option<&str>, session: &SessionId, state: &RevocationState, seen: u64) {
        if self.config.cache_ttl.is_zero() || !self.subscribed.load(Ordering::SeqCst) {
            return;
        }
        let fetched_ms = self.now_ms();
        let mut cache = self.write_cache();
        // An invalidation arrived while we were reading: our answer may predate it.
        if self.invalidations.load(Ordering::SeqCst) != seen {
            return;
        }
        // Sweep stale entries once the cache is large, at most once a TTL.
        let ttl = self.ttl_ms();
        if cache.users.len() + cache.sessions.len() > CACHE_SWEEP_AT
            && fetched_ms.saturating_sub(cache.swept_ms) >= ttl
        {
            cache.users.retain(|_, c| (0..ttl).contains(&fetched_ms.saturating_sub(c.fetched_ms)));
            cache.sessions.retain(|_, c| (0..ttl).contains(&fetched_ms.saturating_sub(c.fetched_ms)));
            cache.swept_ms = fetched_ms;
        }
        cache.floor = Some(Cached { value: state.revoked_through, fetched_ms });
        cache.sessions.insert(*session.as_bytes(), Cached { value: state.session_revoked, fetched_ms });
        if let Some(user) = user_id {
            cache.users.insert(user.to_owned(), Cached { value: state.user_epoch, fetched_ms });
        }
    }

    /// Applies an invalidation message (ours or another server's).
    fn invalidate(&self, message: &str) {
        let mut cache = self.write_cache();
        self.invalidations.fetch_add(1, Ordering::SeqCst);
        if let Some(user) = message.strip_prefix("user:") {
            cache.users.remove(user);
        } else if let Some(session) = message.strip_prefix("session:").and_then(SessionId::from_hex) {
            cache.sessions.remove(session.as_bytes());
        } else {
            *cache = Cache::default();
        }
    }

    fn clear(&self) {
        self.invalidate("all");
    }

    async fn fetch(&self, user_id: Option<&str>, session: &SessionId) -> Result<RevocationState, StoreError> {
        let now = u64::try_from(self.clock.unix_now()).unwrap_or(0);
        let user_key = user_id.map_or_else(|| self.keys.generation.clone(), |u| self.keys.user(u));
        let mut invocation = self.state_script.prepare_invoke();
        invocation
            .key(&self.keys.generation)
            .key(&self.keys.floor)
            .key(user_key)
            .key(self.keys.session(session))
            .arg(now);
        let mut conn = self.conn.clone();
        let (generation, floor, epoch, denied, started): (u64, u64, u64, bool, bool) =
            self.bounded(invocation.invoke_async(&mut conn)).await?;
        if started {
            tracing::warn!(
                generation,
                "Redis revocation keyspace has no generation (new, flushed or restarted without persistence): \
                 starting one; every session issued until now is refused"
            );
            self.clear();
            self.publish("all").await;
        }
        Ok(RevocationState {
            user_epoch: epoch,
            session_revoked: denied,
            revoked_through: floor.max(generation),
        })
    }

    /// Refuses a Redis that may evict keys: an evicted epoch or denylist
    /// entry would bring a revoked session back with no trace.
    async fn check_eviction_policy(&self) -> Result<(), ConnectError> {
        let mut conn = self.conn.clone();
        let reply: redis::RedisResult<Vec<String>> =
            redis::cmd("CONFIG").arg("GET").arg("maxmemory-policy").query_async(&mut conn).await;
        match reply.as_deref() {
            Ok([_, policy]) if policy == "noeviction" => Ok(()),
            Ok([_, policy]) => Err(ConnectError::EvictionPolicy(policy.clone())),
            Ok(_) => {
                tracing::warn!("Redis did not report its maxmemory-policy; make sure it is noeviction");
                Ok(())
            }
            Err(err) => {
                tracing::warn!(%err, "cannot read Redis maxmemory-policy; make sure it is noeviction");
                Ok(())
            }
        }
    }

    /// Writes a generation if the keyspace has none, so that sessions issued
    /// from now on are not refused by one started at their first check.
    async fn ensure_generation(&self) -> redis::RedisResult<()> {
        let now = u64::try_from(self.clock.unix_now()).unwrap_or(0);
        let mut conn = self.conn.clone();
        let started: bool =
            redis::cmd("SET").arg(&self.keys.generation).arg(now).arg("NX").query_async(&mut conn).await?;
        if started {
            tracing::info!(generation = now, "started a new Redis revocation generation");
        }
        Ok(())
    }

    /// Runs a Redis command within the configured timeout.
    async fn bounded<T>(
        &self,
        command: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StoreError::unavailable(NoRuntime));
        }
        match tokio::time::timeout(self.config.timeout, command).await {
            Ok(result) => result.map_err(redis_error),
            Err(_) => Err(StoreError::Timeout(self.config.timeout)),
        }
    }

    /// Tells every server to drop what `message` names. A lost message is
    /// covered by the cache TTL, so failure here is only logged.
    async fn publish(&self, message: &str) {
        let mut conn = self.conn.clone();
        let sent: Result<i64, _> = self.bounded(conn.publish(&self.keys.channel, message)).await;
        if let Err(err) = sent {
            tracing::warn!(%err, "could not publish a revocation; other servers see it within the cache TTL");
        }
    }

    /// After a revocation: drop our own entry at once, then tell the others.
    async fn announce(&self, message: &str) {
        self.invalidate(message);
        self.publish(message).await;
    }
}

/// The store was used outside a tokio runtime.
#[derive(Debug, thiserror::Error)]
#[error("the Redis store must be used inside a tokio runtime with the time and I/O drivers enabled")]
struct NoRuntime;

/// Keeps the invalidation subscription up for as long as the store lives.
async fn subscribe_forever(client: redis::Client, store: Weak<Inner>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(inner) = store.upgrade() else { return };
        let channel = inner.keys.channel.clone();
        let timeout = inner.config.timeout;
        drop(inner);
        let subscription = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match tokio::time::timeout(timeout, subscription).await {
            Ok(Ok(pubsub)) => {
                backoff = Duration::from_millis(50);
                let Some(inner) = store.upgrade() else { return };
                // Whatever was cached may have missed messages: start empty.
                inner.clear();
                inner.subscribed.store(true, Ordering::SeqCst);
                drop(inner);
                let mut messages = pubsub.into_on_message();
                loop {
                    // Wake up now and then to notice that the store was dropped.
                    let next = tokio::time::timeout(Duration::from_secs(1), messages.next()).await;
                    let Some(inner) = store.upgrade() else { return };
                    match next {
                        Ok(Some(message)) => match message.get_payload::<String>() {
                            Ok(text) => inner.invalidate(&text),
                            Err(_) => inner.clear(),
                        },
                        Ok(None) => break,
                        Err(_) => {}
                    }
                }
                let Some(inner) = store.upgrade() else { return };
                inner.subscribed.store(false, Ordering::SeqCst);
                if inner.config.accept_stale_for.is_none() {
                    inner.clear();
                }
                tracing::warn!("lost the Redis revocation subscription; checks go to Redis until it is back");
            }
            Ok(Err(err)) => tracing::debug!(%err, "cannot subscribe to Redis revocations yet"),
            Err(_) => tracing::debug!("subscribing to Redis revocations timed out"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

impl RevocationStore for RedisStore {
    fn state(
        &self,
        user_id: Option<&str>,
        session: SessionId,
    ) -> impl Future<Output = Result<RevocationState, StoreError>> + Send {
        // The cache is consulted before the future is built, so that a hit
        // allocates nothing.
        let inner = &self.inner;
        let hit = if inner.subscribed.load(Ordering::SeqCst) {
            inner.cached(user_id, &session, inner.ttl_ms())
        } else {
            None
        };
        let lookup = match hit {
            Some(state) => Ok(state),
            None => Err((inner.clone(), user_id.map(str::to_owned))),
        };
        async move {
            let (inner, user_id) = match lookup {
                Ok(state) => return Ok(state),
                Err(miss) => miss,
            };
            let user_id = user_id.as_deref();
            let seen = inner.invalidations.load(Ordering::SeqCst);
            match inner.fetch(user_id, &session).await {
                Ok(state) => {
                    inner.remember(user_id, &session, &state, seen);
                    Ok(state)
                }
                Err(err) => {
                    let stale = inner.config.accept_stale_for.and_then(|limit| {
                        let limit = i64::try_from(limit.as_millis()).unwrap_or(i64::MAX);
                        inner.cached(user_id, &session, limit)
                    });
                    match stale {
                        Some(state) => {
                            tracing::warn!(%err, "Redis unavailable; answering from cached revocation data");
                            Ok(state)
                        }
                        None => Err(err),
                    }
                }
            }
        }
    }

    fn user_epoch(&self, user_id: &str) -> impl Future<Output = Result<u64, StoreError>> + Send {
        let inner = self.inner.clone();
        let key = inner.keys.user(user_id);
        async move {
            let mut conn = inner.conn.clone();
            let epoch: Option<u64> = inner.bounded(conn.get(key)).await?;
            Ok(epoch.unwrap_or(0))
        }
    }

    fn revoke_user(&self, user_id: &str) -> impl Future<Output = Result<u64, StoreError>> + Send {
        let inner = self.inner.clone();
        let (key, message) = (inner.keys.user(user_id), format!("user:{user_id}"));
        async move {
            let mut conn = inner.conn.clone();
            let epoch: u64 = inner.bounded(conn.incr(key, 1u64)).await?;
            inner.announce(&message).await;
            Ok(epoch)
        }
    }

    fn revoke_session(
        &self,
        session: SessionId,
        expires_at: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let inner = self.inner.clone();
        let (key, message) = (inner.keys.session(&session), format!("session:{}", session.to_hex()));
        async move {
            let mut conn = inner.conn.clone();
            // One command: the entry is written with its expiry, or not at all.
            let mut set = redis::cmd("SET");
            set.arg(&key).arg(1).arg("EXAT").arg(expires_at.clamp(1, i64::MAX as u64 / 1000));
            let _: () = inner.bounded(set.query_async(&mut conn)).await?;
            inner.announce(&message).await;
            Ok(())
        }
    }

    fn revoke_all(&self, issued_through: u64) -> impl Future<Output = Result<(), StoreError>> + Send {
        let inner = self.inner.clone();
        async move {
            let mut conn = inner.conn.clone();
            let mut invocation = inner.floor_script.prepare_invoke();
            invocation.key(&inner.keys.floor).arg(issued_through);
            let _: i64 = inner.bounded(invocation.invoke_async(&mut conn)).await?;
            inner.announce("all").await;
            Ok(())
        }
    }
}
