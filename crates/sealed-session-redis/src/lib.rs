//! A [`RevocationStore`](sealed_session::RevocationStore) in Redis, shared
//! by many servers, with a local cache that Redis pub/sub keeps fresh.
//!
//! * **Atomic, and dated by Redis.** Epochs are bumped with `INCR`;
//!   denylist entries expire on their own (`EXAT`) and are never shortened,
//!   and a single-use entry (`revoke_session_once`) is one `SET NX`;
//!   "log everyone out" raises a floor that never moves back. Generations
//!   and global logouts are dated by Redis's clock (`TIME`), not the
//!   application server's; a denylist entry lasts until its expiry by the
//!   clock of the server that wrote it, even when Redis's runs ahead.
//! * **Fast.** Each server caches what it read. Every revocation is
//!   published on a channel, and every server drops the entries it names,
//!   so most checks cost no round trip while a revocation reaches every
//!   server within milliseconds. The server that revokes drops its own
//!   entries before the call returns.
//! * **Bounded staleness.** The cache is used only while the subscription is
//!   up and has delivered its own ping (a proxy between could confirm the
//!   `SUBSCRIBE` and pass on nothing), and is emptied when it comes back; it is also emptied when the
//!   subscription is lost, unless stale answers were opted in to. One that
//!   stays quiet for 5 s is pinged (a message for no session on its own
//!   channel), and taken for lost if the ping does not come back within
//!   3 s: a connection a firewall forgot never closes by itself. An answer
//!   is never used more than [`RedisConfig::cache_ttl`] (default 1 s) after
//!   the read that produced it *began*: a lost message cannot keep a revoked
//!   session alive longer than that.
//! * **Fail closed.** If Redis does not answer within
//!   [`RedisConfig::timeout`] (twice that, at most, when the call first
//!   waits for a check of Redis's settings after a failure), the check fails with
//!   [`StoreError::Timeout`](sealed_session::StoreError::Timeout) or
//!   [`StoreError::Unavailable`](sealed_session::StoreError::Unavailable) and
//!   the session is refused, unless [`RedisConfig::accept_stale_for`] opts in
//!   to answering from older cached data for a bounded time.
//! * **No eviction.** An evicted key would silently undo a revocation.
//!   Connecting fails unless Redis's `maxmemory-policy` reads as
//!   `noeviction` (by `CONFIG GET`, or where that is hidden, as managed
//!   services do, in `INFO memory`), or cannot be read either way and the
//!   operator asserts it ([`RedisConfig::assume_noeviction`],
//!   `?assume_noeviction=true`). The policy is read again every
//!   [`RedisConfig::policy_check_interval`] (at most 60 s) and after every
//!   failed command (a reconnection may reach another server); while it is
//!   anything else, every call fails with
//!   [`StoreError::Untrusted`](sealed_session::StoreError::Untrusted), and
//!   once it is fixed everyone is logged out. The fault is recorded in Redis
//!   (`PREFIX:untrusted`), so that a server that did not see it (started
//!   after the fix, or followed a failover) logs everyone out too. Each
//!   server that saw the fault sets its own new cutoff when it finds the
//!   settings safe again (it cannot know that another's came after the
//!   fault ended): a user who signs in between two servers' recoveries,
//!   seconds apart, signs in once more.
//! * **Data loss never resurrects.** A generation key is written when the
//!   keyspace is first used. After a `FLUSHALL` or a restart without
//!   persistence it is missing: the store writes a new one, and every session
//!   issued at or before it is refused (everyone signs in again). The event is
//!   logged at `warn` and published so every server drops its cache.
//! * **No rollback by configuration.** A restart that loads an older
//!   snapshot keeps the generation key and loses the revocations made
//!   since. Connecting fails unless Redis writes every change to disk
//!   before answering (`appendonly yes`, `appendfsync always`,
//!   `no-appendfsync-on-rewrite no`) or is set to
//!   persist nothing (`appendonly no`, `save ""`, `rdb-del-sync-files
//!   yes`), or the settings cannot be read and the operator asserts it
//!   ([`RedisConfig::assume_durable`], `?assume_durable=true`). They are
//!   read with the eviction policy, and a change to anything else is
//!   treated like eviction: every call fails, and once it is fixed everyone
//!   is logged out. Settings are read, not files: a snapshot taken by hand
//!   (`SAVE`, `BGSAVE`) from a Redis that persists nothing is loaded by its
//!   next restart; after such a restart, log everyone out.
//! * **TLS and ACL users.** `rediss://` connects over TLS (rustls, with the
//!   system's roots or [`RedisConfig::ca_file`]); `USER:PASSWORD@` in the URL
//!   logs in as an ACL user. Credentials never appear in `Debug` or logs.
//! * **Sentinel and replicas.** `redis+sentinel://HOST:PORT[,HOST:PORT…]/SERVICE[/DB]`
//!   (`rediss+sentinel://` for TLS) asks the sentinels for the primary,
//!   and again every second and after any failure, so the store follows a
//!   failover (one that left the old primary up too). Each revocation
//!   then waits (`WAIT`) for [`RedisConfig::wait_replicas`]
//!   replicas (default 1 through Sentinel, 0 for one server) and fails with
//!   [`StoreError::Replication`](sealed_session::StoreError::Replication)
//!   if fewer acknowledge it in time: a revocation is reported as done only
//!   once that many replicas hold it (a failover to a replica that does not,
//!   when more replicas can be promoted than revocations wait for, can still
//!   lose it: SECURITY.md, "Failover").
//!
//! URL query parameters: `assume_noeviction=true`, `assume_durable=true`, `wait_replicas=N`,
//! `wait_timeout_ms=N`, `timeout_ms=N`, `ca_file=PATH` (TLS only),
//! `sentinel_username=…` and `sentinel_password=…` (Sentinel only). Anything
//! else is refused.
//!
//! It runs on tokio: create it, and poll its futures, inside a tokio runtime
//! with the time and I/O drivers enabled. Needs Redis 6.2 or later, a
//! standalone server (with replicas and Sentinel for failover): a Redis
//! Cluster node is refused at connect ([`ConnectError::Cluster`]; it says
//! so in `INFO cluster`, which services that hide `CONFIG` still answer).
//!
//! ```no_run
//! use sealed_session::{Keyring, Sealer, Verifier};
//! use sealed_session_redis::RedisStore;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let store = RedisStore::connect("rediss://app:secret@redis.internal:6380/0").await?;
//! let verifier = Verifier::new(Sealer::builder(Keyring::load("keyring.toml")?).build()?, store);
//! verifier.logout_everywhere("alice").await?; // every server refuses alice's sessions
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod keys;
mod link;
mod pubsub;
mod store;

pub use config::{ConnectError, RedisConfig, MAX_POLICY_CHECK_INTERVAL};
pub use store::RedisStore;
