//! [`RedisStore`]: the revocation store itself.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use futures_util::future::{FutureExt as _, Shared};
use futures_util::TryFutureExt as _;
use redis::{FromRedisValue, Value};
use sealed_session::registry::{sort_records, MAX_RECORDS_PER_USER};
use sealed_session::{
    BoxFuture, Clock, CorruptKind, Feed, Invalidation, LoginState, RevocationState, RevocationStore,
    SessionId, SessionRecord, SessionRegistry, StoreError, SystemClock,
};

use crate::config::{parse_url, ConnectError, RedisConfig};
use crate::keys::{Keys, Scripts, MAX_SCRIPT_TIME};
use crate::link::{Link, PolicyFault, SafeReading};
use crate::pubsub;

pub(crate) struct Inner {
    pub(crate) link: Arc<Link>,
    pub(crate) config: RedisConfig,
    pub(crate) keys: Keys,
    scripts: Scripts,
    clock: Arc<dyn Clock>,
    /// The invalidation subscription's state and the cache it keeps fresh.
    feed: Arc<Feed>,
    /// Replicas each revocation waits for.
    wait_replicas: u64,
    /// The check of Redis's settings under way, if one is: one at a time,
    /// in a task of its own, whose outcome every request that finds the
    /// link untrusted meanwhile waits for (refused as it was) instead of
    /// reading the settings itself. A request that gives up does not end
    /// it: a check longer than a request's timeout (five round trips to a
    /// distant Redis) still ends and trusts the link, and a recovery's new
    /// cutoff is not raised twice because a request was dropped between
    /// the two steps.
    check: std::sync::Mutex<Option<(u64, SettingsCheck)>>,
    /// How many checks were started: each one's number in `check`.
    checks_started: std::sync::atomic::AtomicU64,
    /// The runtime the store was made on, whose tasks keep its connections:
    /// checks run there, not on the runtime of the call that found the
    /// link untrusted (a short-lived one would end them halfway).
    runtime: tokio::runtime::Handle,
}

/// A check of Redis's settings, as the requests waiting for it share it.
type SettingsCheck = Shared<BoxFuture<'static, Result<(), Refused>>>;

/// Empties the slot of the check numbered `.1`, if it still holds it, when
/// its task ends however it ends (a panic, its runtime shutting down): the
/// next request to find the link untrusted starts another.
struct EndOfCheck<'a>(&'a Inner, u64);

impl Drop for EndOfCheck<'_> {
    fn drop(&mut self) {
        self.0.end_check(self.1);
    }
}

/// How a check of Redis's settings failed, for the requests that waited
/// for it: the same refusal, without asking Redis again.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
struct Refused {
    /// The check's error was `Untrusted` or `Corrupt`, not an outage
    /// (`None`): no stale answer stands in for either.
    kind: Option<Result<(), CorruptKind>>,
    message: String,
}

impl Refused {
    fn of(err: &StoreError) -> Self {
        let kind = match err {
            StoreError::Untrusted(_) => Some(Ok(())),
            StoreError::Corrupt(kind) => Some(Err(*kind)),
            _ => None,
        };
        Self { kind, message: err.to_string() }
    }

    fn into_store_error(self) -> StoreError {
        match self.kind {
            Some(Ok(())) => StoreError::untrusted(self),
            Some(Err(kind)) => StoreError::Corrupt(kind),
            None => StoreError::unavailable(self),
        }
    }
}

/// A revocation store in Redis. Clones share one connection, cache and
/// subscription; the background tasks end soon after the last clone is
/// dropped.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("config", &self.inner.config)
            .field("subscribed", &self.inner.feed.is_live())
            .field("trusted", &self.inner.link.is_trusted())
            .finish_non_exhaustive()
    }
}

/// The store was used outside a tokio runtime.
#[derive(Debug, thiserror::Error)]
#[error("the Redis store must be used inside a tokio runtime with the time and I/O drivers enabled")]
struct NoRuntime;

/// A Redis error as a store error: data Redis holds but that is not what
/// the store wrote (a key of another type, a value that is no number) is
/// corrupt, not an outage: no stale answer stands in for it, and it does
/// not make the store read Redis's settings again on every check.
fn redis_error(err: redis::RedisError) -> StoreError {
    // WRONGTYPE, which the redis crate knows by no kind, alone or in a
    // pipeline (a revocation's).
    let wrong_type = err
        .clone()
        .into_server_errors()
        .is_some_and(|errors| errors.iter().any(|(_, error)| error.code() == "WRONGTYPE"));
    if err.kind() == redis::ErrorKind::Parse || wrong_type {
        return StoreError::Corrupt(CorruptKind::UnreadableValue);
    }
    StoreError::unavailable(err)
}

/// The longest `WAIT` timeout sent, in milliseconds: a century.
const MAX_WAIT_MS: u64 = 100 * 365 * 86_400 * 1000;

/// The `WAIT` timeout for `wait_timeout`: at least 1 ms (0 waits for
/// ever), at most a century (Redis refuses a timeout whose deadline, now
/// plus it, would pass a signed 64-bit number).
fn wait_ms(wait_timeout: Duration) -> u64 {
    u64::try_from(wait_timeout.as_millis()).unwrap_or(u64::MAX).clamp(1, MAX_WAIT_MS)
}

impl RedisStore {
    /// Connects to the store `url` names with the default settings (and
    /// those its query parameters set): `redis://[USER:PASSWORD@]HOST:PORT/DB`,
    /// `rediss://…` for TLS, or `redis+sentinel://…` (see the crate docs).
    ///
    /// # Errors
    /// [`ConnectError`] if the URL is wrong, Redis cannot be reached now,
    /// Redis may evict keys or roll its data back in a restart
    /// ([`ConnectError::EvictionPolicy`], [`ConnectError::NotDurable`]), or
    /// hides those settings and the operator has not asserted them.
    pub async fn connect(url: &str) -> Result<Self, ConnectError> {
        Self::connect_with(url, RedisConfig::default(), SystemClock).await
    }

    /// Connects with explicit settings (URL query parameters override them)
    /// and clock (which ages cache entries and dates denylist expiries with
    /// Redis's; generations and global logouts are dated by Redis's own
    /// clock).
    ///
    /// # Errors
    /// As [`RedisStore::connect`].
    pub async fn connect_with(
        url: &str,
        config: RedisConfig,
        clock: impl Clock + 'static,
    ) -> Result<Self, ConnectError> {
        let (target, config) = parse_url(url, config)?;
        Self::start(target, config, clock).await
    }

    /// Uses the application's own client (one server; TLS and credentials
    /// as the client was built). The store opens its own connections from it:
    /// two for commands and one for the subscription.
    ///
    /// # Errors
    /// As [`RedisStore::connect`], but for the URL;
    /// [`ConnectError::CaFileWithClient`] if `config` names a CA file, which
    /// the client's own TLS settings would override.
    pub async fn with_client(
        client: redis::Client,
        config: RedisConfig,
        clock: impl Clock + 'static,
    ) -> Result<Self, ConnectError> {
        Self::start(crate::config::Target::Client(client), config, clock).await
    }

    async fn start(
        target: crate::config::Target,
        config: RedisConfig,
        clock: impl Clock + 'static,
    ) -> Result<Self, ConnectError> {
        if !crate::keys::valid_prefix(&config.prefix) {
            return Err(ConnectError::Prefix(config.prefix.chars().take(64).collect()));
        }
        if config.cache_ttl > sealed_session::MAX_CACHE_TTL {
            return Err(ConnectError::CacheTtl(config.cache_ttl));
        }
        // The field is public: the builder's cap alone does not hold it.
        let interval = config.policy_check_interval;
        if interval.is_zero() || interval > crate::MAX_POLICY_CHECK_INTERVAL {
            return Err(ConnectError::PolicyCheckInterval(interval));
        }
        if config.timeout < Duration::from_millis(1) {
            return Err(ConnectError::TimeoutTooShort("timeout (URL: timeout_ms)"));
        }
        if matches!(target, crate::config::Target::Client(_)) && config.ca_file.is_some() {
            // It would be read and ignored: the system's roots would decide.
            return Err(ConnectError::CaFileWithClient);
        }
        let link = Arc::new(Link::connect(target, &config).await?);
        let wait_replicas = config.wait_replicas.unwrap_or(u64::from(link.is_sentinel()));
        if wait_replicas > 0 && config.wait_timeout < Duration::from_millis(1) {
            return Err(ConnectError::TimeoutTooShort("wait_timeout (URL: wait_timeout_ms)"));
        }
        let inner = Arc::new(Inner {
            link,
            keys: Keys::new(&config.prefix),
            feed: Arc::new(Feed::new(config.cache_ttl)),
            config,
            scripts: Scripts::new(),
            clock: Arc::new(clock),
            wait_replicas,
            check: std::sync::Mutex::new(None),
            checks_started: std::sync::atomic::AtomicU64::new(0),
            runtime: tokio::runtime::Handle::current(),
        });
        // Before anything that may write (the settings check marks a store
        // untrusted, the channel check publishes).
        if inner.config.existing_only {
            inner.check_in_use().await?;
        }
        inner.check_settings_at_start().await?;
        inner.check_channel_at_start().await?;
        inner.warn_of_unawaited_replicas().await;
        inner.ensure_generation().await?;
        tokio::spawn(pubsub::subscribe_forever(pubsub::Subscription {
            feed: Arc::downgrade(&inner.feed),
            link: Arc::downgrade(&inner.link),
            channel: inner.keys.channel.clone(),
            timeout: inner.config.timeout,
            keep_stale: inner.config.accept_stale_for.is_some(),
        }));
        tokio::spawn(watch_policy(Arc::downgrade(&inner), inner.config.policy_check_interval));
        Ok(Self { inner })
    }

    /// Whether the invalidation subscription is up (the cache is in use).
    #[must_use]
    pub fn is_subscribed(&self) -> bool {
        self.inner.feed.is_live()
    }

    /// Waits until the subscription is up, for at most `limit`. Returns
    /// whether it is.
    pub async fn wait_until_subscribed(&self, limit: Duration) -> bool {
        self.inner.feed.wait_until_live(limit).await
    }

    /// How many replicas each revocation waits for.
    #[must_use]
    pub fn wait_replicas(&self) -> u64 {
        self.inner.wait_replicas
    }
}

impl Inner {
    /// Runs `command` within `limit`, outside of which it fails closed; a
    /// failure may mean a reconnection, so the link re-checks the server.
    async fn bounded<T>(
        &self,
        limit: Duration,
        command: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StoreError::unavailable(NoRuntime));
        }
        let result = tokio::time::timeout(limit, command).await.unwrap_or(Err(StoreError::Timeout(limit)));
        self.note_outcome(&result);
        result
    }

    /// Runs `command` on the primary's connections within `limit`, as
    /// [`Inner::bounded`], once Redis's settings are trusted, waiting at
    /// most the timeout for a check of them first. That wait is no failure
    /// of Redis's (the check records its own), and it takes nothing from
    /// the command's time: a request that gave up there, or whose command
    /// ran out of the time the wait had left, would make the link read the
    /// settings again and void the check, for ever under steady traffic
    /// where a check takes longer than the timeout.
    async fn on_primary<T, F>(
        self: &Arc<Self>,
        limit: Duration,
        command: impl FnOnce(Arc<crate::link::Conns>) -> F,
    ) -> Result<T, StoreError>
    where
        F: Future<Output = Result<T, StoreError>>,
    {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StoreError::unavailable(NoRuntime));
        }
        let waited = tokio::time::timeout(self.config.timeout, self.trusted_conns()).await;
        let conns = waited.unwrap_or(Err(StoreError::Timeout(self.config.timeout)))?;
        self.bounded(limit, command(conns)).await
    }

    /// After a command's failure: a timeout or a lost connection may mean
    /// a reconnection, so the settings are read again.
    fn note_outcome<T>(&self, result: &Result<T, StoreError>) {
        match result {
            Err(StoreError::Timeout(_) | StoreError::Unavailable(_)) => self.link.note_failure(),
            // Too few replicas acknowledged: through Sentinel it is what a
            // primary cut off from its replicas (a partition, a failover
            // this server missed) answers, so ask who the primary is. The
            // server itself answered: its settings are not read again (that
            // would wait on the writer behind the next revocation's `WAIT`,
            // and fail every check while a replica is down).
            Err(StoreError::Replication { .. }) => self.link.look_for_failover(),
            _ => {}
        }
    }

    /// Fails unless Redis's eviction policy is known to be safe, waiting
    /// for a check of the settings if they have not been read since the
    /// last failure.
    async fn ensure_trusted(self: &Arc<Self>) -> Result<(), StoreError> {
        if self.link.is_trusted() {
            return Ok(());
        }
        self.settings_check().await.map_err(Refused::into_store_error)
    }

    /// The primary's connections, once its settings are trusted: taken
    /// after the check, which must still stand then (a failover withdraws
    /// trust before it swaps the connections), so that no command goes to
    /// a primary whose settings were not read.
    async fn trusted_conns(self: &Arc<Self>) -> Result<Arc<crate::link::Conns>, StoreError> {
        loop {
            self.ensure_trusted().await?;
            let conns = self.link.conns();
            if self.link.is_trusted() {
                return Ok(conns);
            }
        }
    }

    /// The check of Redis's settings under way, or a new one
    /// ([`Inner::read_settings`]) in a task of its own. Its outage ends in
    /// a failure noted on the link, as a command's would.
    fn settings_check(self: &Arc<Self>) -> SettingsCheck {
        let mut slot = self.check.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, check)) = slot.as_ref() {
            return check.clone();
        }
        let number = self.checks_started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let inner = Arc::clone(self);
        let task = self.runtime.spawn(async move {
            let _ended = EndOfCheck(&inner, number);
            let result = inner.read_settings().await;
            if matches!(result, Err(StoreError::Timeout(_) | StoreError::Unavailable(_))) {
                inner.link.note_failure();
            }
            result.map_err(|err| Refused::of(&err))
        });
        // A task its runtime dropped before it ever ran has no guard.
        let inner = Arc::downgrade(self);
        let check = async move {
            task.await.unwrap_or_else(|err| {
                if let Some(inner) = inner.upgrade() {
                    inner.end_check(number);
                }
                Err(Refused::of(&StoreError::unavailable(err)))
            })
        }
        .boxed()
        .shared();
        *slot = Some((number, check.clone()));
        check
    }

    /// Empties the check's slot if it holds the check numbered `number`.
    fn end_check(&self, number: u64) {
        let mut slot = self.check.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_some_and(|(running, _)| *running == number) {
            *slot = None;
        }
    }

    /// Reads the eviction policy and persistence settings; after they were
    /// seen unsafe, revocations may have been lost (evicted, or rolled back
    /// by a restart), so everyone is logged out before answers are trusted
    /// again.
    ///
    /// Any server that finds them unsafe leaves a marker in Redis, so that
    /// the one that finds them safe again logs everyone out even if it did
    /// not see the fault itself (it started, or followed a failover, after).
    async fn read_settings(self: &Arc<Self>) -> Result<(), StoreError> {
        let reading = self.read_and_record().await.map_err(PolicyFault::into_store_error)?;
        let recovered = match tokio::time::timeout(self.config.timeout, self.recover(&reading)).await {
            Ok(result) => result.map_err(redis_error)?,
            Err(_) => return Err(StoreError::Timeout(self.config.timeout)),
        };
        self.trust(reading, recovered);
        Ok(())
    }

    /// Trusts Redis's answers after `reading`; after a recovery that set a
    /// new cutoff, then tells every server (a failed message, a failure
    /// noted, no longer finds the link recovering: the cutoff is not
    /// raised again for it).
    fn trust(self: &Arc<Self>, reading: SafeReading, recovered: bool) {
        self.link.trust(reading);
        if recovered {
            // On its own: the calls waiting for the check go on meanwhile.
            let inner = Arc::clone(self);
            self.runtime.spawn(async move { inner.publish(&Invalidation::All).await });
        }
    }

    /// [`Inner::read_settings`] as the store starts: its errors are those of
    /// connecting.
    async fn check_settings_at_start(self: &Arc<Self>) -> Result<(), ConnectError> {
        let reading = self.read_and_record().await.map_err(PolicyFault::into_connect_error)?;
        let recovered = self.recover(&reading).await.map_err(ConnectError::Redis)?;
        self.trust(reading, recovered);
        Ok(())
    }

    /// Warns if the server has more replicas than revocations wait for (a
    /// plain `redis://` URL to a managed Redis with replicas, or Sentinel's
    /// default of one with two replicas): a failover to a replica that did
    /// not acknowledge can then lose acknowledged revocations. Best effort:
    /// a server that does not answer `INFO replication` is not asked again.
    async fn warn_of_unawaited_replicas(&self) {
        let mut conn = self.link.conns().reader.clone();
        let mut command = redis::cmd("INFO");
        command.arg("replication");
        let info = command.query_async::<String>(&mut conn);
        if let Ok(Ok(info)) = tokio::time::timeout(self.config.timeout, info).await {
            if let Some(replicas) = unawaited_replicas(&info, self.wait_replicas) {
                tracing::warn!(
                    replicas,
                    awaited = self.wait_replicas,
                    "Redis has more replicas than revocations wait for: a failover to one that did not \
                     acknowledge can lose revocations that were; set wait_replicas (URL: ?wait_replicas=N) \
                     to the number of replicas that may be promoted"
                );
            }
        }
    }

    /// Reads the settings. Unsafe ones are recorded in Redis (best effort:
    /// the fault is logged anyway, and this server refuses until it
    /// recovers).
    async fn read_and_record(&self) -> Result<SafeReading, PolicyFault> {
        let reading = self.link.read_policy().await;
        let Err(fault) = &reading else { return reading };
        if !fault.is_unsafe() {
            return reading;
        }
        // On the reader, as the cutoff that removes it: the writer may be
        // held in a revocation's `WAIT`, and a marker sent there would land
        // after a recovery had removed it (everyone logged out again).
        let mut conn = self.link.conns().reader.clone();
        let mut set = redis::cmd("SET");
        set.arg(&self.keys.untrusted).arg(fault.to_string());
        match tokio::time::timeout(self.config.timeout, set.query_async::<()>(&mut conn)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "cannot record in Redis that its settings are unsafe")
            }
            Err(_) => tracing::warn!("cannot record in Redis that its settings are unsafe in time"),
        }
        reading
    }

    /// After revocations may have been lost (the reading came after a
    /// fault, or a marker some server left is there): a new cutoff and the
    /// marker's removal, in one step, on the primary that was read. On its
    /// reader: the writer may be held by a revocation's `WAIT` for as long
    /// as a replica is down, and every check waits for this. Returns
    /// whether it set a new cutoff, which the other servers are told of
    /// once the link is trusted ([`Inner::trust`]).
    async fn recover(&self, reading: &SafeReading) -> Result<bool, redis::RedisError> {
        let keys = [self.keys.floor.as_str(), self.keys.generation.as_str(), self.keys.untrusted.as_str()];
        let floor = self.eval(crate::keys::FLOOR, &keys, &[0, u64::from(reading.after_fault)]);
        let mut conn = reading.reader();
        let Some(cutoff) = floor.query_async::<Option<u64>>(&mut conn).await? else {
            return Ok(false);
        };
        tracing::warn!(
            cutoff,
            redis = %reading.address(),
            "Redis settings are safe again (noeviction, durable persistence), but revocations may have been \
             lost meanwhile (keys may have been evicted, or a restart may have loaded an older copy): every \
             session issued until now is refused (everyone signs in again)"
        );
        self.feed.cache().clear();
        Ok(true)
    }

    /// Reads one check's state from Redis (never the cache).
    async fn fetch(
        self: &Arc<Self>,
        user_id: Option<&str>,
        session: Option<&SessionId>,
    ) -> Result<RevocationState, StoreError> {
        let user_key = user_id.map_or_else(|| self.keys.generation.clone(), |u| self.keys.user(u));
        let session_key = session.map_or_else(|| self.keys.generation.clone(), |s| self.keys.session(s));
        let (generation, floor, epoch, denied, started): (u64, u64, u64, bool, bool) = self
            .on_primary(self.config.timeout, |conns| async move {
                let mut invocation = self.scripts.state.prepare_invoke();
                invocation.key(&self.keys.generation).key(&self.keys.floor).key(user_key).key(session_key);
                let mut conn = conns.reader.clone();
                invocation.invoke_async(&mut conn).await.map_err(redis_error)
            })
            .await?;
        if started {
            tracing::warn!(
                generation,
                redis = %self.link.conns().address,
                "Redis revocation keyspace has no generation (new, flushed or restarted without persistence): \
                 starting one; every session issued until now is refused"
            );
            self.feed.cache().clear();
            self.publish(&Invalidation::All).await;
        }
        Ok(RevocationState {
            user_epoch: epoch,
            session_revoked: denied && session.is_some(),
            revoked_through: floor.max(generation),
        })
    }

    /// Refuses a store no server has set up: one with no generation.
    async fn check_in_use(&self) -> Result<(), ConnectError> {
        let mut conn = self.link.conns().reader.clone();
        let exists: bool = redis::cmd("EXISTS")
            .arg(&self.keys.generation)
            .query_async(&mut conn)
            .await
            .map_err(ConnectError::Redis)?;
        if exists {
            Ok(())
        } else {
            Err(ConnectError::NotInUse { prefix: self.config.prefix.clone() })
        }
    }

    /// Writes a generation if the keyspace has none, so that sessions issued
    /// from now on are not refused by one started at their first check.
    async fn ensure_generation(&self) -> Result<(), ConnectError> {
        let mut conn = self.link.conns().reader.clone();
        let mut invocation = self.scripts.generation.prepare_invoke();
        invocation.key(&self.keys.generation);
        let (generation, started): (u64, bool) =
            invocation.invoke_async(&mut conn).await.map_err(ConnectError::Redis)?;
        if started {
            tracing::info!(generation, "started a new Redis revocation generation");
        }
        Ok(())
    }

    /// Runs one write, publishes its invalidation and, if configured, waits
    /// for replicas: all in one pipeline on the writer connection, so that
    /// `WAIT` counts this write. The local cache is invalidated whatever the
    /// outcome (the write may have been applied); too few replicas is an
    /// error.
    async fn write<T: FromRedisValue>(
        self: &Arc<Self>,
        command: redis::Cmd,
        invalidation: Invalidation<'_>,
    ) -> Result<T, StoreError> {
        let limit = self.config.timeout.saturating_add(self.config.wait_timeout);
        let result = self
            .on_primary(limit, |conns| async move {
                let mut pipe = redis::pipe();
                pipe.add_command(command)
                    .cmd("PUBLISH")
                    .arg(&self.keys.channel)
                    .arg(invalidation.message())
                    .ignore();
                // Without replicas to wait for, no WAIT: a provider may not offer it.
                if self.wait_replicas > 0 {
                    pipe.cmd("WAIT").arg(self.wait_replicas).arg(wait_ms(self.config.wait_timeout));
                }
                let mut conn = conns.writer.clone();
                // An error (a demoted primary's READONLY included) makes
                // `on_primary` re-check the server and, through Sentinel, look
                // the primary up again.
                let replies: Vec<Value> = pipe.query_async(&mut conn).await.map_err(redis_error)?;
                let mut replies = replies.into_iter();
                let value = T::from_redis_value(replies.next().unwrap_or(Value::Nil))
                    .map_err(StoreError::unavailable)?;
                let acknowledged = match replies.next() {
                    Some(reply) => u64::from_redis_value(reply).map_err(StoreError::unavailable)?,
                    None => 0,
                };
                if acknowledged < self.wait_replicas {
                    return Err(StoreError::Replication { acknowledged, required: self.wait_replicas });
                }
                Ok(value)
            })
            .await;
        self.feed.cache().apply(&invalidation);
        result
    }

    /// Refuses a user that may not publish on the revocation channel (an
    /// ACL without `&PREFIX:revocations`, or Redis 7's default of no
    /// channels): every revocation's pipeline would fail after its write,
    /// and the subscription would never start. The message sent names a
    /// session no one has (a fresh ID): every server drops nothing.
    async fn check_channel_at_start(&self) -> Result<(), ConnectError> {
        let mut conn = self.link.conns().writer.clone();
        // Without a random ID, no probe: an empty message would make every
        // server drop its whole cache.
        let Some(nobody) = Invalidation::of_no_session() else { return Ok(()) };
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(&self.keys.channel).arg(nobody);
        let sent = tokio::time::timeout(self.config.timeout, publish.query_async::<i64>(&mut conn)).await;
        match sent {
            Ok(Err(err)) if err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoPerm) => {
                Err(ConnectError::ChannelDenied(self.keys.channel.clone()))
            }
            // Anything else shows at the first call.
            _ => Ok(()),
        }
    }

    /// Tells every server to drop what `invalidation` names. A lost message
    /// is covered by the cache TTL, so failure here is only logged.
    async fn publish(&self, invalidation: &Invalidation<'_>) {
        let mut conn = self.link.conns().reader.clone();
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(&self.keys.channel).arg(invalidation.message());
        let sent: Result<i64, _> = self
            .bounded(self.config.timeout, async { publish.query_async(&mut conn).await.map_err(redis_error) })
            .await;
        if let Err(err) = sent {
            tracing::warn!(%err, "could not publish a revocation; other servers see it within the cache TTL");
        }
    }

    fn eval(&self, script: &str, keys: &[&str], args: &[u64]) -> redis::Cmd {
        let mut eval = redis::cmd("EVAL");
        eval.arg(script).arg(keys.len()).arg(keys).arg(args);
        eval
    }

    /// Runs `script` (`DENY` or `DENY_ONCE`) for `session`, with this
    /// server's time (the entry lasts until `expires_at` by it, whatever
    /// Redis's clock says); returns whether it wrote the entry.
    async fn deny(
        self: Arc<Self>,
        script: &str,
        session: SessionId,
        expires_at: u64,
    ) -> Result<bool, StoreError> {
        let key = self.keys.session(&session);
        let now = u64::try_from(self.clock.unix_now()).unwrap_or(0);
        let deny = self.eval(script, &[&key], &[expires_at.min(MAX_SCRIPT_TIME), now.min(MAX_SCRIPT_TIME)]);
        let (written, now): (bool, u64) = self.write(deny, Invalidation::Session(session)).await?;
        if expires_at <= now {
            Err(StoreError::ExpiryNotInFuture { expires_at, now })
        } else {
            Ok(written)
        }
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
        let now_ms = inner.clock.unix_millis();
        let lookup = if inner.link.is_trusted() {
            inner.feed.lookup(user_id, &session, now_ms)
        } else {
            Err(inner.feed.cache().ticket(now_ms))
        };
        let lookup = lookup.map_err(|ticket| (inner.clone(), user_id.map(str::to_owned), ticket));
        async move {
            let (inner, user_id, ticket) = match lookup {
                Ok(state) => return Ok(state),
                Err(miss) => miss,
            };
            let user_id = user_id.as_deref();
            // Boxed: the query's future is large, and a cache hit should not
            // move it around.
            match Box::pin(inner.fetch(user_id, Some(&session))).await {
                Ok(state) => {
                    inner.feed.remember(ticket, user_id, &session, &state);
                    Ok(state)
                }
                // Stale answers stand in for a Redis that cannot be
                // reached, never for one found unsafe (the cache may hold
                // what was read while keys were being evicted).
                Err(err @ (StoreError::Timeout(_) | StoreError::Unavailable(_)))
                    if !inner.link.was_found_unsafe() =>
                {
                    let stale = inner.config.accept_stale_for.and_then(|limit| {
                        inner.feed.cache().get_stale(user_id, &session, inner.clock.unix_millis(), limit)
                    });
                    match stale {
                        Some(state) => {
                            tracing::warn!(
                                %err,
                                redis = %inner.link.conns().address,
                                "Redis unavailable; answering from cached revocation data"
                            );
                            Ok(state)
                        }
                        None => Err(err),
                    }
                }
                Err(err) => Err(err),
            }
        }
    }

    fn login_state(&self, user_id: &str) -> impl Future<Output = Result<LoginState, StoreError>> + Send {
        let inner = Arc::clone(&self.inner);
        let user_id = user_id.to_owned();
        async move {
            let state = inner.fetch(Some(&user_id), None).await?;
            Ok(LoginState { user_epoch: state.user_epoch, revoked_through: state.revoked_through })
        }
    }

    fn revoke_user(&self, user_id: &str) -> impl Future<Output = Result<u64, StoreError>> + Send {
        let inner = Arc::clone(&self.inner);
        let user_id = user_id.to_owned();
        async move {
            let mut incr = redis::cmd("INCR");
            incr.arg(inner.keys.user(&user_id));
            inner.write(incr, Invalidation::User(&user_id)).await
        }
    }

    fn revoke_session(
        &self,
        session: SessionId,
        expires_at: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let denied = Arc::clone(&self.inner).deny(crate::keys::DENY, session, expires_at);
        async move { denied.await.map(drop) }
    }

    fn revoke_session_once(
        &self,
        session: SessionId,
        expires_at: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        Arc::clone(&self.inner).deny(crate::keys::DENY_ONCE, session, expires_at)
    }

    fn revoke_all(&self, issued_through: u64) -> impl Future<Output = Result<u64, StoreError>> + Send {
        let inner = Arc::clone(&self.inner);
        async move {
            let keys = [inner.keys.floor.as_str(), inner.keys.generation.as_str()];
            let floor = inner.eval(crate::keys::FLOOR, &keys, &[issued_through.min(MAX_SCRIPT_TIME)]);
            inner.write(floor, Invalidation::All).await
        }
    }
}

/// The registry is one hash per user (`<prefix>:registry:<user>`), in the
/// same Redis, which expires with its last record.
impl SessionRegistry for RedisStore {
    fn record<'a>(&'a self, record: &'a SessionRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        let inner = &self.inner;
        let now = u64::try_from(inner.clock.unix_now()).unwrap_or(0);
        let mut eval = redis::cmd("EVAL");
        eval.arg(crate::keys::RECORD)
            .arg(1)
            .arg(inner.keys.registry(&record.user_id))
            .arg(record.id.to_hex())
            .arg(crate::keys::encode_record(record))
            .arg(now)
            .arg(MAX_RECORDS_PER_USER);
        Box::pin(inner.registry_call::<i64>(eval).map_ok(drop))
    }

    fn remove<'a>(&'a self, user_id: &'a str, id: SessionId) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut hdel = redis::cmd("HDEL");
        hdel.arg(self.inner.keys.registry(user_id)).arg(id.to_hex());
        Box::pin(self.inner.registry_call::<i64>(hdel).map_ok(drop))
    }

    fn remove_user<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut del = redis::cmd("DEL");
        del.arg(self.inner.keys.registry(user_id));
        Box::pin(self.inner.registry_call::<i64>(del).map_ok(drop))
    }

    fn list<'a>(
        &'a self,
        user_id: &'a str,
        now: u64,
    ) -> BoxFuture<'a, Result<Vec<SessionRecord>, StoreError>> {
        let mut hgetall = redis::cmd("HGETALL");
        hgetall.arg(self.inner.keys.registry(user_id));
        Box::pin(async move {
            let fields: Vec<(String, String)> = self.inner.registry_call(hgetall).await?;
            let mut records = Vec::with_capacity(fields.len());
            for (field, value) in fields {
                let record = crate::keys::decode_record(user_id, &field, &value)
                    .ok_or(StoreError::Corrupt(CorruptKind::BadRecord))?;
                if record.expires_at > now {
                    records.push(record);
                }
            }
            sort_records(&mut records);
            Ok(records)
        })
    }
}

impl Inner {
    /// Runs a registry command on the reader connection, within the
    /// timeout. The registry is no revocation: nothing to publish or
    /// replicate before answering, and no reason to wait behind a
    /// revocation's `WAIT` on the writer (a timeout there would make every
    /// check read the settings again).
    async fn registry_call<T: FromRedisValue>(
        self: &Arc<Self>,
        command: redis::Cmd,
    ) -> Result<T, StoreError> {
        self.on_primary(self.config.timeout, |conns| async move {
            let mut conn = conns.reader.clone();
            command.query_async(&mut conn).await.map_err(redis_error)
        })
        .await
    }
}

/// Reads the eviction policy again every `policy_check_interval`, and
/// through Sentinel asks who the primary is every second, for as long as
/// the store lives. A failover that left the old primary up (a partition)
/// fails no command of a server that only reads: without asking, it would
/// go on reading the old primary's revocations, which miss every one made
/// since on the new primary. The two run on timers of their own: a
/// Sentinel lookup may take seconds (a sentinel that does not answer), and
/// counted against the policy's timer it put the next read off by as much
/// each second, several times the interval in all.
async fn watch_policy(store: std::sync::Weak<Inner>, interval: Duration) {
    let Some(sentinel) = store.upgrade().map(|inner| inner.link.is_sentinel()) else { return };
    let policy = std::pin::pin!(async {
        loop {
            tokio::time::sleep(interval).await;
            let Some(inner) = store.upgrade() else { return };
            // A failure is logged and recorded: checks refuse until it passes.
            let _ = inner.settings_check().await;
        }
    });
    let failover = std::pin::pin!(async {
        if !sentinel {
            return std::future::pending().await;
        }
        loop {
            tokio::time::sleep(interval.min(sealed_session::MAX_CACHE_TTL)).await;
            let Some(inner) = store.upgrade() else { return };
            inner.link.follow_failover().await;
        }
    });
    // Either ends only when the store is dropped.
    futures_util::future::select(policy, failover).await;
}

/// How many replicas `INFO replication` says the server has
/// (`connected_slaves`), if more than the `awaited` that revocations wait for.
fn unawaited_replicas(info: &str, awaited: u64) -> Option<u64> {
    info.lines()
        .find_map(|line| line.trim_end().strip_prefix("connected_slaves:"))
        .and_then(|count| count.parse().ok())
        .filter(|&count| count > awaited)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    /// The requests that waited for a failed check of the settings get its
    /// refusal as it was: corrupt data stays corrupt (no stale answer
    /// stands in for it), an untrusted Redis untrusted.
    #[test]
    fn a_shared_refusal_keeps_its_kind() {
        use sealed_session::{CorruptKind, StoreError};
        let shared = |err: StoreError| super::Refused::of(&err).into_store_error();
        let corrupt = shared(StoreError::Corrupt(CorruptKind::UnreadableValue));
        assert!(matches!(corrupt, StoreError::Corrupt(CorruptKind::UnreadableValue)), "{corrupt:?}");
        assert!(matches!(shared(StoreError::untrusted(std::fmt::Error)), StoreError::Untrusted(_)));
        assert!(matches!(shared(StoreError::Timeout(Duration::from_millis(5))), StoreError::Unavailable(_)));
    }

    #[test]
    fn the_wait_timeout_is_one_millisecond_to_a_century() {
        assert_eq!(super::wait_ms(Duration::ZERO), 1, "0 would wait for ever");
        assert_eq!(super::wait_ms(Duration::from_millis(500)), 500);
        assert_eq!(super::wait_ms(Duration::MAX), 3_153_600_000_000);
    }

    #[test]
    fn the_replicas_of_info_replication_are_counted() {
        let primary =
            "# Replication\r\nrole:master\r\nconnected_slaves:2\r\nslave0:ip=10.0.0.2,port=6379\r\n";
        assert_eq!(super::unawaited_replicas(primary, 0), Some(2));
        assert_eq!(super::unawaited_replicas(primary, 1), Some(2), "Sentinel's default, two replicas");
        assert_eq!(super::unawaited_replicas(primary, 2), None, "each may be promoted, each acknowledged");
        for none in [
            "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n",
            "role:slave\r\n",
            "",
            "connected_slaves:x",
        ] {
            assert_eq!(super::unawaited_replicas(none, 0), None, "{none:?}");
        }
    }
}
