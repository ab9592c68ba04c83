//! The connection to the current Redis primary: one server, or the one a
//! set of sentinels names (followed across failovers), over TLS if asked,
//! and the check of its eviction policy and persistence that must pass
//! before its answers are trusted.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{ConnectionAddr, TlsCertificates, TlsMode};
use sealed_session::StoreError;

use crate::config::{ConnectError, RedisConfig, SentinelTarget, Target};

/// The clients of one primary.
pub(crate) struct Conns {
    /// For new connections (the subscription).
    pub(crate) client: redis::Client,
    /// Checks: short timeouts, never blocked by `WAIT`.
    pub(crate) reader: ConnectionManager,
    /// Revocations, each followed by `WAIT` on the same connection.
    pub(crate) writer: ConnectionManager,
    /// `host:port`, to notice a failover and to say in the logs which
    /// Redis a fault is about.
    pub(crate) address: String,
}

/// What is known of the primary's `maxmemory-policy` and persistence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Policy {
    /// Not read since the last (re)connection: read it before trusting an answer.
    Unchecked = 0,
    /// `noeviction` and durable, or unreadable and asserted by the operator.
    Safe = 1,
    /// An eviction policy or persistence that can lose revocations: every
    /// call fails until it is fixed.
    Unsafe = 2,
    /// Fixed after `Unsafe`: revocations may have been lost meanwhile, so
    /// the store must start a new cutoff before it answers again.
    Recovering = 3,
}

impl Policy {
    fn from_bits(bits: u64) -> Self {
        match bits & 0xff {
            1 => Policy::Safe,
            2 => Policy::Unsafe,
            3 => Policy::Recovering,
            _ => Policy::Unchecked,
        }
    }
}

/// The [`Policy`] and a count of the link's failures and primary changes,
/// in one atomic: a safe reading is trusted only if nothing failed between
/// the reading and the store's handling of it.
struct PolicyState(AtomicU64);

impl PolicyState {
    fn new() -> Self {
        Self(AtomicU64::new(Policy::Unchecked as u64))
    }

    fn load(&self) -> (Policy, u64) {
        let bits = self.0.load(Ordering::SeqCst);
        (Policy::from_bits(bits), bits >> 8)
    }

    /// Sets the policy, keeping the count.
    fn set(&self, policy: Policy) {
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |bits| Some((bits & !0xff) | policy as u64));
    }

    /// A failure or a new primary: the count goes up, and a safe policy
    /// must be read again (an unsafe one stays to be recovered from).
    fn fail(&self) {
        let _ = self.0.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |bits| {
            let policy = match Policy::from_bits(bits) {
                Policy::Safe => Policy::Unchecked,
                other => other,
            };
            Some(((bits >> 8).wrapping_add(1) << 8) | policy as u64)
        });
    }

    /// `from` becomes `Safe`, if the policy is still `from` and the count
    /// still `count`.
    fn trust(&self, from: Policy, count: u64) {
        let expected = (count << 8) | from as u64;
        let trusted = (count << 8) | Policy::Safe as u64;
        let _ = self.0.compare_exchange(expected, trusted, Ordering::SeqCst, Ordering::SeqCst);
    }
}

/// A reading of the settings that found them safe, to hand to
/// [`Link::trust`].
pub(crate) struct SafeReading {
    /// The clients of the primary that was read.
    conns: Arc<Conns>,
    /// The settings had been seen unsafe: revocations may have been lost,
    /// and the store must start a new cutoff first.
    pub(crate) after_fault: bool,
    /// The link's failure count when the reading began.
    count: u64,
}

impl std::fmt::Debug for SafeReading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafeReading")
            .field("primary", &self.conns.address)
            .field("after_fault", &self.after_fault)
            .finish()
    }
}

impl SafeReading {
    /// The reader of the primary that was read: never waiting behind a
    /// revocation's `WAIT`, as the writer may be.
    pub(crate) fn reader(&self) -> ConnectionManager {
        self.conns.reader.clone()
    }

    /// `host:port` of the primary that was read.
    pub(crate) fn address(&self) -> &str {
        &self.conns.address
    }
}

/// Why the store does not trust Redis's answers.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PolicyFault {
    #[error("Redis maxmemory-policy is {0}: an evicted key would undo a revocation; set it to noeviction")]
    Evicting(String),
    #[error(
        "cannot read Redis maxmemory-policy ({0}); set ?assume_noeviction=true only if the provider \
         guarantees noeviction"
    )]
    Unknown(String),
    /// Persistence that a restart could undo revocations through.
    #[error("{0}")]
    NotDurable(String),
    #[error(
        "cannot read Redis persistence settings ({0}); set ?assume_durable=true only if Redis never \
         restarts from an older copy of its data"
    )]
    DurabilityUnknown(String),
    /// Redis could not be asked at all, or refused for now.
    #[error("cannot ask Redis for its eviction policy and persistence settings: {0}")]
    Unreachable(#[source] redis::RedisError),
    #[error("Redis did not answer the check of its settings and role within {0:?}")]
    Timeout(Duration),
    /// The server is not a primary (`ROLE`): a replica's answers may lag
    /// its primary's without end, and it refuses revocations.
    #[error(
        "the Redis server is a {0}, not a primary: its answers may miss revocations made on the primary; \
         give the primary's address (or use Sentinel)"
    )]
    NotPrimary(String),
    /// Sentinel names another primary, which this server cannot connect
    /// to: the one it still reads may miss revocations made there.
    #[error(
        "Sentinel names {0} as the Redis primary, which this server cannot connect to: the server it still \
         reads may miss revocations made there; check the network (and TLS) from this server to it"
    )]
    PrimaryNotFollowed(String),
    /// A Redis Cluster node: the scripts read keys of several hash slots in
    /// one step, which a cluster refuses.
    #[error("{}", ConnectError::Cluster)]
    Cluster,
}

impl PolicyFault {
    /// The store error a check reports: Redis unreachable is an outage;
    /// anything else is a Redis whose answers cannot be trusted.
    pub(crate) fn into_store_error(self) -> StoreError {
        match self {
            PolicyFault::Unreachable(err) => StoreError::unavailable(err),
            PolicyFault::Timeout(limit) => StoreError::Timeout(limit),
            fault => StoreError::untrusted(fault),
        }
    }

    /// The error connecting reports.
    pub(crate) fn into_connect_error(self) -> ConnectError {
        match self {
            PolicyFault::Evicting(policy) => ConnectError::EvictionPolicy(policy),
            PolicyFault::Unknown(why) => ConnectError::EvictionPolicyUnknown(why),
            PolicyFault::NotDurable(why) => ConnectError::NotDurable(why),
            PolicyFault::DurabilityUnknown(why) => ConnectError::DurabilityUnknown(why),
            PolicyFault::Unreachable(err) => ConnectError::Redis(err),
            PolicyFault::NotPrimary(role) => ConnectError::NotPrimary(role),
            PolicyFault::Cluster => ConnectError::Cluster,
            // An outage, not a hidden setting: no advice to assume one.
            fault @ PolicyFault::Timeout(_) => ConnectError::Redis(
                std::io::Error::new(std::io::ErrorKind::TimedOut, fault.to_string()).into(),
            ),
            fault @ PolicyFault::PrimaryNotFollowed(_) => ConnectError::Redis(
                std::io::Error::new(std::io::ErrorKind::ConnectionRefused, fault.to_string()).into(),
            ),
        }
    }

    /// Whether Redis showed settings that can lose revocations (not merely
    /// hid them, or failed to answer).
    pub(crate) fn is_unsafe(&self) -> bool {
        matches!(self, PolicyFault::Evicting(_) | PolicyFault::NotDurable(_))
    }
}

pub(crate) struct Link {
    target: Target,
    certificates: Option<TlsCertificates>,
    timeout: Duration,
    write_timeout: Duration,
    assume_noeviction: bool,
    assume_durable: bool,
    current: RwLock<Arc<Conns>>,
    /// Shared with the connections, which fail it when they drop (RESP3).
    policy: Arc<PolicyState>,
    /// Serialises failover lookups.
    refreshing: tokio::sync::Mutex<()>,
    /// When the last failover lookup ran (ms since the link was made).
    refreshed_ms: AtomicI64,
    /// The primary Sentinel last named, if this server could not connect
    /// to it: until it can, its settings are not trusted.
    unfollowed: Mutex<Option<String>>,
    started: std::time::Instant,
}

fn manager_config(timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500))
}

impl Link {
    /// Connects to the primary `target` names. Its settings are unchecked
    /// until [`Link::read_policy`] has read them.
    pub(crate) async fn connect(target: Target, config: &RedisConfig) -> Result<Self, ConnectError> {
        // rustls needs one process-wide crypto provider; ours is ring. An
        // application that installed another keeps it.
        if target.is_tls() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let certificates = match &config.ca_file {
            None => None,
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|source| ConnectError::CaFile { path: path.clone(), source })?;
                Some(TlsCertificates { client_tls: None, root_cert: Some(pem) })
            }
        };
        let write_timeout = config.timeout.saturating_add(config.wait_timeout);
        let client = resolve(&target, certificates.as_ref()).await?;
        let policy = Arc::new(PolicyState::new());
        let conns =
            Conns::new(client, config.timeout, write_timeout, &policy).await.map_err(ConnectError::Redis)?;
        Ok(Self {
            target,
            certificates,
            timeout: config.timeout,
            write_timeout,
            assume_noeviction: config.assume_noeviction,
            assume_durable: config.assume_durable,
            current: RwLock::new(Arc::new(conns)),
            policy,
            refreshing: tokio::sync::Mutex::new(()),
            refreshed_ms: AtomicI64::new(0),
            unfollowed: Mutex::new(None),
            started: std::time::Instant::now(),
        })
    }

    pub(crate) fn is_sentinel(&self) -> bool {
        matches!(self.target, Target::Sentinel(_))
    }

    /// The clients of the current primary.
    pub(crate) fn conns(&self) -> Arc<Conns> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Whether Redis's settings were read as safe, and the reading handled
    /// by the store ([`Link::trust`]), since the last failure.
    pub(crate) fn is_trusted(&self) -> bool {
        self.policy.load().0 == Policy::Safe
    }

    /// Whether Redis's settings were last found unsafe, or not yet dealt
    /// with since: what was cached meanwhile may be wrong, so no stale
    /// answer stands in for it.
    pub(crate) fn was_found_unsafe(&self) -> bool {
        matches!(self.policy.load().0, Policy::Unsafe | Policy::Recovering)
    }

    /// Trusts Redis's answers after `reading` found its settings safe and
    /// the store has dealt with what may have been lost (a new cutoff after
    /// a fault). Not if the primary changed since the reading, nor if a
    /// later reading found the settings unsafe, nor, for a reading that
    /// came before a fault was seen, while that fault is being recovered.
    pub(crate) fn trust(&self, reading: SafeReading) {
        if !Arc::ptr_eq(&reading.conns, &self.conns()) {
            return;
        }
        let from = if reading.after_fault { Policy::Recovering } else { Policy::Unchecked };
        self.policy.trust(from, reading.count);
    }

    /// Reads `maxmemory-policy` and the persistence settings, and records
    /// what they say. A safe reading does not make answers trusted: the
    /// store hands it back to [`Link::trust`] once it has dealt with what
    /// may have been lost, a new cutoff if the settings were seen unsafe
    /// before ([`SafeReading::after_fault`]).
    pub(crate) async fn read_policy(&self) -> Result<SafeReading, PolicyFault> {
        let (_, count) = self.policy.load();
        let conns = self.conns();
        let mut conn = conns.reader.clone();
        let mut pipe = redis::pipe();
        for name in SETTINGS {
            pipe.cmd("CONFIG").arg("GET").arg(name);
        }
        let command = pipe.query_async::<Vec<redis::Value>>(&mut conn);
        let read = match tokio::time::timeout(self.timeout, command).await {
            Err(_) => Err(PolicyFault::Timeout(self.timeout)),
            Ok(Err(err)) if is_transport(&err) || is_temporary(&err) => Err(PolicyFault::Unreachable(err)),
            Ok(Err(err)) => Ok(Err(err.to_string())),
            Ok(Ok(replies)) => Ok(Ok(replies.into_iter().map(config_value).collect::<Vec<_>>())),
        };
        let mut verdict = match read {
            Err(fault) => Err(fault),
            Ok(settings) => {
                let hidden = !matches!(settings.as_deref().map(<[_]>::first), Ok(Some(Ok(_))));
                let shown = if hidden { self.policy_in_info(&mut conn).await } else { Ok(None) };
                shown.and_then(|shown| {
                    let settings = settings.as_deref().map_err(String::as_str);
                    judge(settings, shown.as_deref(), self.assume_noeviction, self.assume_durable)
                })
            }
        };
        if verdict.is_ok() {
            verdict = match self.read_role(&mut conn).await {
                Ok(Some(role)) if role != "master" => Err(PolicyFault::NotPrimary(role)),
                Ok(_) => Ok(()),
                Err(fault) => Err(fault),
            };
        }
        if verdict.is_ok() {
            verdict = match self.is_cluster_node(&mut conn).await {
                Ok(true) => Err(PolicyFault::Cluster),
                Ok(false) => Ok(()),
                Err(fault) => Err(fault),
            };
        }
        if let (Ok(()), Some(named)) = (&verdict, self.unfollowed().clone()) {
            verdict = Err(PolicyFault::PrimaryNotFollowed(named));
        }
        let (was, _) = self.policy.load();
        let recovering = matches!(was, Policy::Unsafe | Policy::Recovering);
        let now = match &verdict {
            Ok(()) if recovering => Some(Policy::Recovering),
            // Trusted once the store has handled the reading.
            Ok(()) => None,
            Err(fault) if fault.is_unsafe() => Some(Policy::Unsafe),
            // Unreadable for now: keep an unsafe verdict, else read again next time.
            Err(_) if recovering => Some(Policy::Unsafe),
            Err(_) => Some(Policy::Unchecked),
        };
        if let Some(now) = now {
            self.policy.set(now);
        }
        // An unsafe reading is logged once; an unreadable one, a replica or a cluster node, each time.
        if let Err(fault) = &verdict {
            let unreadable = matches!(
                fault,
                PolicyFault::Unknown(_)
                    | PolicyFault::DurabilityUnknown(_)
                    | PolicyFault::NotPrimary(_)
                    | PolicyFault::Cluster
            );
            if unreadable || (fault.is_unsafe() && was != Policy::Unsafe) {
                tracing::error!(
                    error = %fault,
                    redis = %conns.address,
                    "Redis revocation store refuses every session until this is fixed"
                );
            }
        }
        verdict.map(|()| SafeReading { conns, after_fault: recovering, count })
    }

    /// The server's role: `ROLE`, or where an ACL refuses it (it is an
    /// `@admin` command) the `role:` line of `INFO replication`; `None` if
    /// neither says, which is logged. Apart from the settings' pipeline, so
    /// that a refused command does not make them unreadable.
    async fn read_role(&self, conn: &mut ConnectionManager) -> Result<Option<String>, PolicyFault> {
        let role = redis::cmd("ROLE");
        // A reply of another shape (a Redis-compatible server, a renamed
        // command) says nothing: INFO is asked then too.
        let refused = match tokio::time::timeout(self.timeout, role.query_async::<redis::Value>(conn)).await {
            Err(_) => return Err(PolicyFault::Timeout(self.timeout)),
            Ok(Ok(reply)) => match role_of(&reply) {
                Some(role) => return Ok(Some(role)),
                None => "a reply that names no role".to_owned(),
            },
            Ok(Err(err)) => refusal_or_fault(err)?.to_string(),
        };
        let mut info = redis::cmd("INFO");
        info.arg("replication");
        let (role, info_said) =
            match tokio::time::timeout(self.timeout, info.query_async::<String>(conn)).await {
                Err(_) => return Err(PolicyFault::Timeout(self.timeout)),
                Ok(Ok(text)) => (role_in_info(&text), "no role line".to_owned()),
                Ok(Err(err)) => (None, refusal_or_fault(err)?.to_string()),
            };
        if role.is_none() {
            tracing::warn!(
                role = %refused,
                info = %info_said,
                "Redis says neither ROLE nor INFO replication: whether it is the primary is not checked"
            );
        }
        Ok(role)
    }

    /// The eviction policy as `INFO memory` shows it (`maxmemory_policy`),
    /// which managed services that hide `CONFIG` still answer; `None` if
    /// it does not say.
    async fn policy_in_info(&self, conn: &mut ConnectionManager) -> Result<Option<String>, PolicyFault> {
        let mut info = redis::cmd("INFO");
        info.arg("memory");
        match tokio::time::timeout(self.timeout, info.query_async::<String>(conn)).await {
            Err(_) => Err(PolicyFault::Timeout(self.timeout)),
            Ok(Ok(text)) => Ok(policy_in(&text)),
            Ok(Err(err)) => refusal_or_fault(err).map(|_| None),
        }
    }

    /// Whether the server says it is a Redis Cluster node (`INFO cluster`,
    /// which managed services that hide `CONFIG` still answer); `false`
    /// when it does not say (a cluster's first multi-key script fails then).
    async fn is_cluster_node(&self, conn: &mut ConnectionManager) -> Result<bool, PolicyFault> {
        let mut info = redis::cmd("INFO");
        info.arg("cluster");
        match tokio::time::timeout(self.timeout, info.query_async::<String>(conn)).await {
            Err(_) => Err(PolicyFault::Timeout(self.timeout)),
            Ok(Ok(text)) => Ok(text.lines().any(|line| line.trim() == "cluster_enabled:1")),
            Ok(Err(err)) => refusal_or_fault(err).map(|_| false),
        }
    }

    /// After a failed command: the connection may come back to another
    /// server (a restart, a failover), so the policy must be read again;
    /// through Sentinel, look the primary up again.
    pub(crate) fn note_failure(self: &Arc<Self>) {
        self.policy.fail();
        self.look_for_failover();
    }

    /// Through Sentinel: asks who the primary is, in the background.
    pub(crate) fn look_for_failover(self: &Arc<Self>) {
        if self.is_sentinel() {
            let link = Arc::clone(self);
            tokio::spawn(async move { link.follow_failover().await });
        }
    }

    /// Through Sentinel: asks for the current primary and switches to it if
    /// it moved. At most one lookup at a time, and one per 100 ms.
    pub(crate) async fn follow_failover(&self) {
        if !self.is_sentinel() {
            return;
        }
        let Ok(_guard) = self.refreshing.try_lock() else { return };
        let now_ms = i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX);
        if now_ms.saturating_sub(self.refreshed_ms.load(Ordering::SeqCst)) < 100 {
            return;
        }
        self.refreshed_ms.store(now_ms, Ordering::SeqCst);
        let looked_up =
            tokio::time::timeout(self.sentinel_timeout(), resolve(&self.target, self.certificates.as_ref()));
        let client = match looked_up.await {
            Ok(Ok(client)) => client,
            Ok(Err(err)) => {
                // Perhaps the primary the sentinels name cannot be
                // reached from here: then the one this server reads is
                // not to be trusted.
                self.check_named_primary().await;
                return tracing::warn!(error = %err, "cannot find the Redis primary through Sentinel");
            }
            Err(_) => {
                self.check_named_primary().await;
                return tracing::warn!("Sentinel did not name a primary in time");
            }
        };
        let named = address(&client);
        if named == self.conns().address {
            if self.unfollowed().take().is_some() {
                tracing::warn!(primary = %named, "Sentinel names the Redis primary this server reads again");
                self.policy.fail();
            }
            return;
        }
        match Conns::new(client, self.timeout, self.write_timeout, &self.policy).await {
            Ok(conns) => {
                tracing::warn!(primary = %conns.address, "Redis primary changed (failover); following it");
                // Read the new primary's settings before trusting it (a
                // fault seen on the old one stays to be recovered from):
                // distrusted first, so that no check finds the new primary
                // in place and the old one's trust still standing.
                self.policy.fail();
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(conns);
                *self.unfollowed() = None;
            }
            // The old primary may still answer as one (a partition): its
            // answers are not trusted until the new one is followed.
            Err(err) => self.not_followed(named, &err),
        }
    }

    /// How long a question to the sentinels may take: the store's write
    /// timeout, but at least [`SENTINEL_TIMEOUT`]. The sentinels are asked
    /// in the order of the URL, and one that does not answer (a host powered
    /// off, a partition) holds back the next one's answer for a connection
    /// timeout and a reply timeout, twice: with less, every lookup would end
    /// before the sentinels that can answer are heard, and a failover would
    /// never be followed.
    fn sentinel_timeout(&self) -> Duration {
        self.write_timeout.max(SENTINEL_TIMEOUT)
    }

    /// After the sentinels named no primary this server can reach: asks
    /// one which primary it names, and if that is not the one this server
    /// reads, distrusts the latter until it can follow.
    async fn check_named_primary(&self) {
        let Target::Sentinel(target) = &self.target else { return };
        let asked = sentinel_named_primary(target, self.certificates.as_ref());
        let Ok(Ok(named)) = tokio::time::timeout(self.sentinel_timeout(), asked).await else { return };
        if named != self.conns().address {
            self.not_followed(named, &"it does not answer as a primary");
        }
    }

    /// The sentinels name `named` as the primary, which this server cannot
    /// connect to (`why`): its settings are not trusted until it can.
    fn not_followed(&self, named: String, why: &dyn std::fmt::Display) {
        let fault = PolicyFault::PrimaryNotFollowed(named.clone());
        if self.unfollowed().replace(named).is_none() {
            tracing::error!(error = %why, "{fault}; every session is refused until it can");
        }
        self.policy.fail();
    }

    /// The primary Sentinel named that this server could not connect to.
    fn unfollowed(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.unfollowed.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The value of the one setting a `CONFIG GET` answered: `[name, value]`
/// over RESP2, `{name: value}` over RESP3.
fn config_value(reply: redis::Value) -> Result<String, String> {
    use redis::FromRedisValue as _;
    let mut pairs = reply.as_map_iter().ok_or("CONFIG GET answered neither a map nor pairs")?;
    match (pairs.next(), pairs.next()) {
        (Some((_, value)), None) => String::from_redis_value(value.clone()).map_err(|err| err.to_string()),
        (None, _) => Err("CONFIG GET knows no such setting".to_owned()),
        (Some(_), Some(_)) => Err("CONFIG GET answered more than one setting".to_owned()),
    }
}

/// The role a `ROLE` reply names first (`master`, `slave`, `sentinel`), if
/// it has that shape; at most 32 characters of it.
fn role_of(reply: &redis::Value) -> Option<String> {
    let redis::Value::Array(items) = reply else { return None };
    match items.first()? {
        redis::Value::BulkString(bytes) => {
            std::str::from_utf8(bytes).ok().map(|s| s.chars().take(32).collect())
        }
        redis::Value::SimpleString(text) => Some(text.chars().take(32).collect()),
        _ => None,
    }
}

/// The role `INFO replication` names (`role:master`), at most 32 characters.
fn role_in_info(info: &str) -> Option<String> {
    let role = info.lines().find_map(|line| line.trim_end().strip_prefix("role:"))?;
    Some(role.chars().take(32).collect())
}

/// The eviction policy `INFO memory` names (`maxmemory_policy:noeviction`),
/// at most 32 characters.
fn policy_in(info: &str) -> Option<String> {
    let policy = info.lines().find_map(|line| line.trim_end().strip_prefix("maxmemory_policy:"))?;
    Some(policy.chars().take(32).collect())
}

/// A command's error as an answer (`Ok`: the server refused the command),
/// or, if the server could not be asked, the fault.
fn refusal_or_fault(err: redis::RedisError) -> Result<redis::RedisError, PolicyFault> {
    if is_transport(&err) || is_temporary(&err) {
        Err(PolicyFault::Unreachable(err))
    } else {
        Ok(err)
    }
}

/// The settings [`Link::read_policy`] reads, in the order [`judge`] takes them.
const SETTINGS: [&str; 6] = [
    "maxmemory-policy",
    "appendonly",
    "appendfsync",
    "save",
    "rdb-del-sync-files",
    "no-appendfsync-on-rewrite",
];

/// Whether answers from a Redis with these settings (the replies to
/// `CONFIG GET` of each of [`SETTINGS`], or why they could not be read) can
/// be trusted. Revocations survive a restart only with every write on disk
/// before it is acknowledged (`appendonly yes`, `appendfsync always`, and
/// `no-appendfsync-on-rewrite no`: with `yes` Redis skips the fsync while
/// it rewrites the file or saves a snapshot), or
/// with no persistence at all (no `save`, and the copy a replica receives
/// in a full resynchronisation deleted once loaded: `rdb-del-sync-files
/// yes`): the restart then comes back empty, and the missing generation
/// marker logs everyone out. A snapshot without the append-only file comes
/// back *older*, with the marker and without the revocations made since.
fn judge(
    settings: Result<&[Result<String, String>], &str>,
    policy_in_info: Option<&str>,
    assume_noeviction: bool,
    assume_durable: bool,
) -> Result<(), PolicyFault> {
    let value = |index: usize| -> Result<&str, String> {
        let replies = settings.map_err(str::to_owned)?;
        match replies.get(index) {
            Some(Ok(value)) => Ok(value),
            Some(Err(why)) => Err(why.clone()),
            None => Err(format!("CONFIG GET answered {} replies", replies.len())),
        }
    };
    // Where CONFIG is hidden, the policy INFO shows decides as one CONFIG
    // shows: only an unreadable policy is taken on the operator's word.
    match value(0).or_else(|why| policy_in_info.ok_or(why)) {
        Ok("noeviction") => {}
        Ok(policy) => return Err(PolicyFault::Evicting(policy.to_owned())),
        Err(why) if assume_noeviction => {
            tracing::debug!(%why, "Redis maxmemory-policy unreadable; noeviction asserted by configuration");
        }
        Err(why) => return Err(PolicyFault::Unknown(why)),
    }
    // Each setting is read only where it decides: `rdb-del-sync-files`
    // matters only without the append-only file.
    let persistence = (|| -> Result<Result<(), String>, String> {
        Ok(match (value(1)?, value(2)?) {
            ("yes", "always") => match value(5)? {
                "no" => Ok(()),
                skip => Err(format!(
                    "Redis no-appendfsync-on-rewrite is {skip}: while it rewrites its append-only file or \
                     saves a snapshot it acknowledges writes it has not put on disk, and a crash then can \
                     lose revocations and bring revoked sessions back; set no-appendfsync-on-rewrite no"
                )),
            },
            ("yes", fsync) => Err(format!(
                "Redis appendfsync is {fsync}: a crash can lose acknowledged revocations and bring revoked \
                 sessions back; set appendfsync always"
            )),
            _ => match (value(3)?, value(4)?) {
                (save, "yes") if save.trim().is_empty() => Ok(()),
                (save, _) if save.trim().is_empty() => {
                    Err("Redis keeps no snapshots but keeps the copy a replica receives in a full \
                     resynchronisation (rdb-del-sync-files no): a restart would load that older copy, and \
                     the revocations made since would come back to life; set rdb-del-sync-files yes, or \
                     appendonly yes with appendfsync always"
                        .to_owned())
                }
                (save, _) => Err(format!(
                    "Redis saves snapshots (save \"{save}\") without an append-only file: after a restart \
                     it loads the last snapshot, and the revocations made since come back to life; set \
                     appendonly yes with appendfsync always, or save \"\" with rdb-del-sync-files yes (a \
                     restart then empties the store and everyone signs in again)"
                )),
            },
        })
    })();
    match persistence {
        Ok(verdict) => verdict.map_err(PolicyFault::NotDurable),
        Err(why) if assume_durable => {
            tracing::debug!(%why, "Redis persistence unreadable; durability asserted by configuration");
            Ok(())
        }
        Err(why) => Err(PolicyFault::DurabilityUnknown(why)),
    }
}

impl Conns {
    async fn new(
        client: redis::Client,
        timeout: Duration,
        write_timeout: Duration,
        policy: &Arc<PolicyState>,
    ) -> redis::RedisResult<Self> {
        let config = |timeout| {
            let config = manager_config(timeout);
            // Over RESP2 a dropped connection is seen by the next command,
            // which fails (`Link::note_failure`). Over RESP3 the manager
            // hears of the drop and reconnects by itself, with no command
            // failing: the server it reaches again (restarted, another one)
            // must have its settings read before it is trusted.
            if !client.get_connection_info().redis_settings().protocol().supports_resp3() {
                return config;
            }
            let policy = Arc::downgrade(policy);
            config.set_push_sender(move |push: redis::PushInfo| {
                if push.kind == redis::PushKind::Disconnection {
                    if let Some(policy) = policy.upgrade() {
                        policy.fail();
                    }
                }
                Ok::<(), std::convert::Infallible>(())
            })
        };
        let reader = ConnectionManager::new_with_config(client.clone(), config(timeout)).await?;
        let writer = ConnectionManager::new_with_config(client.clone(), config(write_timeout)).await?;
        Ok(Self { address: address(&client), client, reader, writer })
    }
}

/// Whether an error is about the connection, not Redis's answer. The redis
/// crate gives every error it makes from an I/O error (timeouts, dropped and
/// refused connections included) the kind `Io`.
pub(crate) fn is_transport(err: &redis::RedisError) -> bool {
    err.is_io_error()
}

/// Whether Redis refused for now (loading its data, a primary down, try
/// again), not for good: an outage, not a reason to distrust its settings.
fn is_temporary(err: &redis::RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    matches!(
        err.kind(),
        ErrorKind::Server(
            ServerErrorKind::BusyLoading | ServerErrorKind::TryAgain | ServerErrorKind::MasterDown
        )
    )
}

fn address(client: &redis::Client) -> String {
    match client.get_connection_info().addr() {
        ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
            format!("{host}:{port}")
        }
        other => format!("{other}"),
    }
}

/// A client for the primary `target` names.
async fn resolve(
    target: &Target,
    certificates: Option<&TlsCertificates>,
) -> Result<redis::Client, ConnectError> {
    match target {
        Target::Client(client) => Ok(client.clone()),
        Target::Direct { url } => match certificates {
            Some(certificates) => redis::Client::build_with_tls(url.as_str(), certificates.clone()),
            None => redis::Client::open(url.as_str()),
        }
        .map_err(ConnectError::Redis),
        Target::Sentinel(target) => sentinel_primary(target, certificates).await,
    }
}

/// The least time a question to the sentinels is given (see
/// [`Link::sentinel_timeout`]): redis-rs gives each sentinel a 1 s
/// connection timeout and a 0.5 s reply timeout, and connects once more
/// after a failed reply.
const SENTINEL_TIMEOUT: Duration = Duration::from_secs(4);

/// A client for the primary the sentinels of `target` name now (one that
/// answers as a primary).
async fn sentinel_primary(
    target: &SentinelTarget,
    certificates: Option<&TlsCertificates>,
) -> Result<redis::Client, ConnectError> {
    let mut sentinel = sentinel_client(target, certificates).map_err(ConnectError::Sentinel)?;
    sentinel.async_get_client().await.map_err(ConnectError::Sentinel)
}

/// The address (`host:port`) a sentinel of `target` names as the primary,
/// whether or not this server can reach it.
async fn sentinel_named_primary(
    target: &SentinelTarget,
    certificates: Option<&TlsCertificates>,
) -> Result<String, redis::RedisError> {
    let mut sentinel = sentinel_client(target, certificates)?;
    let client = sentinel.async_get_sentinel_client().await?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut ask = redis::cmd("SENTINEL");
    ask.arg("get-master-addr-by-name").arg(&target.service);
    let (host, port): (String, String) = ask.query_async(&mut conn).await?;
    Ok(format!("{host}:{port}"))
}

/// A client of the sentinels of `target`, with its TLS and credentials.
fn sentinel_client(
    target: &SentinelTarget,
    certificates: Option<&TlsCertificates>,
) -> Result<SentinelClient, redis::RedisError> {
    let addrs = target.sentinels.iter().map(|(host, port)| {
        if target.tls {
            ConnectionAddr::TcpTls { host: host.clone(), port: *port, insecure: false, tls_params: None }
        } else {
            ConnectionAddr::Tcp(host.clone(), *port)
        }
    });
    let mut builder = SentinelClientBuilder::new(addrs, &target.service, SentinelServerType::Master)?
        .set_client_to_redis_db(target.db);
    if let Some(username) = &target.username {
        builder = builder.set_client_to_redis_username(username);
    }
    if let Some(password) = &target.password {
        builder = builder.set_client_to_redis_password(password);
    }
    if let Some(username) = &target.sentinel_username {
        builder = builder.set_client_to_sentinel_username(username);
    }
    if let Some(password) = &target.sentinel_password {
        builder = builder.set_client_to_sentinel_password(password);
    }
    if target.tls {
        builder = builder
            .set_client_to_redis_tls_mode(TlsMode::Secure)
            .set_client_to_sentinel_tls_mode(TlsMode::Secure);
        if let Some(certificates) = certificates {
            builder = builder
                .set_client_to_redis_certificates(certificates.clone())
                .set_client_to_sentinel_certificates(certificates.clone());
        }
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::{is_transport, role_in_info, role_of, Link, PolicyFault};
    use crate::config::{RedisConfig, Target};
    use redis::Value;
    use sealed_session_testkit::redis::RedisServer;
    use sealed_session_testkit::Logs;
    use std::time::Duration;

    /// `ROLE`'s first element, in either RESP type, at most 32 characters;
    /// anything else says nothing (and `INFO replication` is asked).
    #[test]
    fn the_role_is_the_first_element_of_the_reply() {
        let bulk = |text: &str| Value::BulkString(text.as_bytes().to_vec());
        assert_eq!(role_of(&Value::Array(vec![bulk("master"), Value::Int(0)])).as_deref(), Some("master"));
        assert_eq!(
            role_of(&Value::Array(vec![Value::SimpleString("slave".into())])).as_deref(),
            Some("slave")
        );
        assert_eq!(role_of(&Value::Array(vec![bulk(&"x".repeat(100))])).map(|r| r.len()), Some(32));
        for nothing in [Value::Array(vec![]), Value::Nil, bulk("master"), Value::Array(vec![Value::Int(1)])] {
            assert_eq!(role_of(&nothing), None, "{nothing:?}");
        }
        assert_eq!(role_of(&Value::Array(vec![Value::BulkString(vec![0xff])])), None, "not UTF-8");
        let info = "# Replication\r\nrole:slave\r\nmaster_host:10.0.0.1\r\n";
        assert_eq!(role_in_info(info).as_deref(), Some("slave"));
        assert_eq!(role_in_info("# Replication\r\nconnected_slaves:0\r\n"), None);
        let memory = "# Memory\r\nused_memory:1024\r\nmaxmemory_policy:allkeys-lru\r\n";
        assert_eq!(super::policy_in(memory).as_deref(), Some("allkeys-lru"));
        assert_eq!(super::policy_in("# Memory\r\nused_memory:1024\r\n"), None);
        let long = format!("maxmemory_policy:{}\r\n", "x".repeat(100));
        assert_eq!(super::policy_in(&long).map(|p| p.len()), Some(32));
    }

    /// Once the policy was unsafe, keys may be gone: answers stay untrusted
    /// until the store has set a new cutoff, even when the policy could not
    /// be read in between.
    #[tokio::test]
    async fn after_an_unsafe_policy_nothing_is_trusted_until_the_store_has_recovered() {
        let logs = Logs::capture();
        let server = RedisServer::start();
        let config = RedisConfig::default().with_timeout(Duration::from_millis(200));
        let link = Link::connect(Target::Direct { url: server.url() }, &config).await.unwrap();
        assert!(!link.is_trusted(), "trusted before its settings were read");
        let reading = link.read_policy().await.unwrap();
        assert!(!reading.after_fault);
        assert!(!link.is_trusted(), "trusted before the store handled the reading");
        link.trust(reading);
        assert!(link.is_trusted());
        assert_eq!(server.cli(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]), "OK");
        assert!(matches!(link.read_policy().await, Err(PolicyFault::Evicting(_))));
        assert!(!link.is_trusted());
        let said =
            || logs.lines_with(&["ERROR", "allkeys-lru", "refuses every session", &server.log_label()]).len();
        assert_eq!(said(), 1, "the first unsafe reading is logged, with the policy");
        assert!(matches!(link.read_policy().await, Err(PolicyFault::Evicting(_))));
        assert_eq!(said(), 1, "and not again while it stays unsafe");

        assert_eq!(server.cli(&["CLIENT", "PAUSE", "600"]), "OK"); // unreadable for a moment
        let unread = link.read_policy().await;
        assert!(matches!(unread, Err(PolicyFault::Timeout(_) | PolicyFault::Unreachable(_))), "{unread:?}");
        assert!(!link.is_trusted());
        tokio::time::sleep(Duration::from_millis(700)).await;

        assert_eq!(server.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]), "OK");
        let first = link.read_policy().await.unwrap();
        assert!(first.after_fault, "safe again, after having been unsafe: recovering");
        assert!(!link.is_trusted(), "trusted before the store set a new cutoff");
        let reading = link.read_policy().await.unwrap();
        assert!(reading.after_fault, "still recovering until the store says so");
        link.trust(reading);
        assert!(link.is_trusted());
        assert!(!link.read_policy().await.unwrap().after_fault);
        assert!(link.is_trusted(), "a safe reading keeps a trusted link trusted");
    }

    #[test]
    fn a_failure_between_a_reading_and_its_handling_keeps_the_link_untrusted() {
        use super::{Policy, PolicyState};
        let state = PolicyState::new();
        let (_, count) = state.load();
        state.fail();
        state.trust(Policy::Unchecked, count);
        assert_eq!(state.load().0, Policy::Unchecked, "trusted after a failure it did not see");
        let (_, count) = state.load();
        state.trust(Policy::Unchecked, count);
        assert_eq!(state.load().0, Policy::Safe);
        state.fail();
        assert_eq!(state.load(), (Policy::Unchecked, count + 1), "a failure makes a safe link read again");
        state.set(Policy::Unsafe);
        state.fail();
        assert_eq!(state.load().0, Policy::Unsafe, "a fault outlives a failure (or a failover)");
        state.set(Policy::Recovering);
        let (_, count) = state.load();
        state.trust(Policy::Unchecked, count);
        assert_eq!(state.load().0, Policy::Recovering, "a reading from before the fault does not end it");
        state.trust(Policy::Recovering, count);
        assert_eq!(state.load().0, Policy::Safe);
    }

    /// `CONFIG GET` replies for each of [`SETTINGS`](super::SETTINGS), in order.
    fn replies(settings: [&str; 6]) -> Vec<Result<String, String>> {
        settings.iter().map(|value| Ok((*value).to_owned())).collect()
    }

    #[test]
    fn a_setting_is_read_from_a_resp2_or_resp3_reply_and_nothing_else() {
        use redis::Value;
        let text = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let resp2 = Value::Array(vec![text("save"), text("")]);
        let resp3 = Value::Map(vec![(text("save"), text("3600 1"))]);
        assert_eq!(super::config_value(resp2), Ok(String::new()));
        assert_eq!(super::config_value(resp3), Ok("3600 1".to_owned()));
        for unknown in [Value::Array(vec![]), Value::Map(vec![])] {
            assert!(super::config_value(unknown).unwrap_err().contains("no such setting"));
        }
        let two = Value::Array(vec![text("a"), text("1"), text("b"), text("2")]);
        assert!(super::config_value(two).is_err());
        assert!(super::config_value(Value::Int(1)).is_err());
    }

    #[test]
    fn only_persistence_that_no_restart_can_roll_back_is_trusted() {
        let judge = |settings: [&str; 6]| super::judge(Ok(&replies(settings)), None, false, false);
        assert!(
            judge(["noeviction", "yes", "always", "3600 1", "no", "no"]).is_ok(),
            "every write on disk first"
        );
        assert!(
            judge(["noeviction", "no", "everysec", "", "yes", "yes"]).is_ok(),
            "no persistence: a restart is empty"
        );
        assert!(judge(["noeviction", "no", "always", " ", "yes", "no"]).is_ok());
        for (settings, says) in [
            (
                ["noeviction", "no", "everysec", "3600 1 300 100 60 10000", "yes", "no"],
                "save \"3600 1 300 100 60 10000\"",
            ),
            (["noeviction", "no", "everysec", "", "no", "no"], "rdb-del-sync-files no"),
            (["noeviction", "yes", "everysec", "", "yes", "no"], "appendfsync is everysec"),
            (["noeviction", "yes", "no", "", "yes", "no"], "appendfsync is no"),
            (["noeviction", "yes", "always", "", "yes", "yes"], "no-appendfsync-on-rewrite is yes"),
        ] {
            match judge(settings) {
                Err(fault @ PolicyFault::NotDurable(_)) => {
                    assert!(fault.to_string().contains(says), "{fault}")
                }
                other => panic!("{settings:?}: {other:?}"),
            }
        }
        assert!(
            matches!(judge(["allkeys-lru", "yes", "always", "", "yes", "no"]), Err(PolicyFault::Evicting(p)) if p == "allkeys-lru")
        );
    }

    #[test]
    fn unreadable_settings_are_trusted_only_as_far_as_the_operator_asserts() {
        let hidden = Err("ERR unknown command 'CONFIG'");
        assert!(matches!(super::judge(hidden, None, false, false), Err(PolicyFault::Unknown(_))));
        assert!(matches!(super::judge(hidden, None, false, true), Err(PolicyFault::Unknown(_))));
        assert!(matches!(super::judge(hidden, None, true, false), Err(PolicyFault::DurabilityUnknown(_))));
        assert!(super::judge(hidden, None, true, true).is_ok());
        // The policy INFO shows (CONFIG hidden) is judged, asserted or not.
        let shown = super::judge(hidden, Some("volatile-lru"), true, true);
        assert!(matches!(&shown, Err(PolicyFault::Evicting(p)) if p == "volatile-lru"), "{shown:?}");
        let shown = super::judge(hidden, Some("noeviction"), false, false);
        assert!(matches!(shown, Err(PolicyFault::DurabilityUnknown(_))), "{shown:?}");
        assert!(super::judge(hidden, Some("noeviction"), false, true).is_ok());
        // A Redis that knows the eviction policy but not a persistence
        // setting (an older version), or answered fewer replies.
        let partial = vec![Ok("noeviction".to_owned()), Err("CONFIG GET knows no such setting".to_owned())];
        assert!(matches!(
            super::judge(Ok(&partial), None, false, false),
            Err(PolicyFault::DurabilityUnknown(_))
        ));
        assert!(super::judge(Ok(&partial), None, false, true).is_ok());
        // A setting that does not decide need not be known.
        let mut aof = replies(["noeviction", "yes", "always", "3600 1", "no", "no"]);
        aof[4] = Err("CONFIG GET knows no such setting".to_owned());
        assert!(super::judge(Ok(&aof), None, false, false).is_ok());
        // What can be read is judged, asserted or not.
        let snapshots = replies(["noeviction", "no", "everysec", "60 1", "yes", "yes"]);
        assert!(matches!(super::judge(Ok(&snapshots), None, true, true), Err(PolicyFault::NotDurable(_))));
        let fault = PolicyFault::DurabilityUnknown("x".to_owned()).to_string();
        assert!(fault.contains("assume_durable=true"), "the error names the fix: {fault}");
    }

    #[test]
    fn connection_failures_and_temporary_refusals_are_outages_and_other_replies_are_not() {
        for kind in [
            std::io::ErrorKind::ConnectionRefused,
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::TimedOut,
            std::io::ErrorKind::UnexpectedEof,
            std::io::ErrorKind::Other,
        ] {
            assert!(is_transport(&redis::RedisError::from(std::io::Error::new(kind, "x"))), "{kind:?}");
        }
        let refused =
            redis::RedisError::from((redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly), "READONLY"));
        assert!(!is_transport(&refused));
        let parse = redis::RedisError::from((redis::ErrorKind::Parse, "bad reply"));
        assert!(!is_transport(&parse));
        for kind in [redis::ServerErrorKind::BusyLoading, redis::ServerErrorKind::MasterDown] {
            let err = redis::RedisError::from((redis::ErrorKind::Server(kind), "for now"));
            assert!(super::is_temporary(&err) && !is_transport(&err), "{kind:?}");
        }
        assert!(!super::is_temporary(&refused) && !super::is_temporary(&parse));
    }
}
