//! [`PostgresStore`] and its options.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sealed_session::registry::MAX_RECORDS_PER_USER;
use sealed_session::sql::{self, from_sql, to_sql};
use sealed_session::{
    BoxFuture, Clock, Feed, Invalidation, LoginState, RevocationState, RevocationStore, SessionId,
    SessionRecord, SessionRegistry, StoreError, SystemClock,
};
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::error::PostgresSetupError;
use crate::listener;
use crate::schema::{self, Statements};

/// Settings of a [`PostgresStore`]; every one has a safe default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PostgresOptions {
    /// Prefix of the tables (`PREFIX_meta`, `PREFIX_user_epochs`,
    /// `PREFIX_denied`, `PREFIX_sessions`) and of the channel (`PREFIX_revocations`); default
    /// `sealed_session`. Lowercase letters, digits and `_`.
    pub prefix: String,
    /// How long a statement may take before the check fails closed; default
    /// 250 ms. On the store's own connections ([`PostgresStore::connect`])
    /// the server ends a statement, or a wait for a lock, after this or 5 s,
    /// whichever is longer (`statement_timeout`, `lock_timeout`, set on
    /// each connection unless the URL's `options` set them); on an
    /// application's pool, set those on the pool.
    pub timeout: Duration,
    /// The longest a cached answer is used, counted from before the read
    /// that produced it; default 1 s, which is also the most
    /// ([`MAX_CACHE_TTL`](sealed_session::MAX_CACHE_TTL)). Zero turns the
    /// cache off.
    pub cache_ttl: Duration,
    /// Create the tables if they are missing, at connect and whenever one
    /// is found dropped; default true. Turn it off if your migrations
    /// create them ([`PostgresStore::migration_sql`]).
    pub create_tables: bool,
    /// Open only a store a server has set up (its tables hold a
    /// generation), and create or write nothing in one that is not
    /// ([`PostgresSetupError::NotInUse`]): for tools that act on the
    /// servers' store, where a new empty one means a wrong URL. Default
    /// false.
    pub existing_only: bool,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            prefix: "sealed_session".into(),
            timeout: Duration::from_millis(250),
            cache_ttl: Duration::from_secs(1),
            create_tables: true,
            existing_only: false,
        }
    }
}

sealed_session::option_setters! {
    PostgresOptions {
        with_prefix(prefix: impl Into<String>),
        with_timeout(timeout: Duration),
        with_cache_ttl(cache_ttl: Duration),
        with_create_tables(create_tables: bool),
        with_existing_only(existing_only: bool),
    }
}

pub(crate) struct Inner {
    pub(crate) pool: PgPool,
    pub(crate) options: PostgresOptions,
    pub(crate) sql: Statements,
    /// The `LISTEN` connection's state and the cache it keeps fresh.
    pub(crate) feed: Arc<Feed>,
    pub(crate) clock: Arc<dyn Clock>,
    /// What the checks' reads said of `fsync`.
    fsync: Mutex<FsyncWatch>,
    /// Whether the last check read a standby ([`OnStandby`]).
    on_standby: AtomicBool,
    /// When a lost table was last said (Unix seconds), with the tables the
    /// application's: once a minute at most.
    table_loss_said: AtomicI64,
}

/// A revocation store in PostgreSQL. Clones share one pool, cache and
/// listener; the listener ends soon after the last clone is dropped.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("options", &self.inner.options)
            .field("listening", &self.inner.feed.is_live())
            .finish_non_exhaustive()
    }
}

/// The store was used outside a tokio runtime.
#[derive(Debug, thiserror::Error)]
#[error("the PostgreSQL store must be used inside a tokio runtime with the time and I/O drivers enabled")]
struct NoRuntime;

/// The database was found, after the store started, running with `fsync`
/// off, or with a table of the store's `UNLOGGED`: a crash could lose
/// acknowledged revocations.
#[derive(Debug, thiserror::Error)]
#[error(
    "PostgreSQL runs with fsync = off, or a revocation table was made UNLOGGED: a crash could lose \
     acknowledged revocations and bring revoked sessions back, so every session is refused; set fsync = on \
     and reload the configuration, or ALTER TABLE ... SET LOGGED"
)]
struct FsyncOff;

/// A check read a standby (a failover, or an address that moved, sent the
/// pool's new connections to one): its data may lag the primary's.
#[derive(Debug, thiserror::Error)]
#[error(
    "the PostgreSQL store reads a standby or a read-only server (pg_is_in_recovery, transaction_read_only): its \
     data may lag the primary's revocations, so every session is refused; point the store's address at the \
     primary"
)]
struct OnStandby;

/// How long after a check last read `fsync` off one that reads `on` is
/// believed (a connection may not have applied the reload yet).
const FSYNC_SETTLE: Duration = Duration::from_secs(1);

/// What the checks' reads of `fsync` said. Each connection applies a
/// reload between statements, so one may still answer with the setting it
/// had before: `on` is believed only once `off` has not been read for
/// [`FSYNC_SETTLE`].
#[derive(Debug, Default)]
struct FsyncWatch {
    /// When a read last said `off`, until `on` is believed again.
    off_last_read: Option<Instant>,
}

/// What one read of `fsync` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fsync {
    /// On, as before.
    On,
    /// On, believed after it was off.
    OnAgain,
    /// Off, read for the first time (or again after it was on).
    TurnedOff,
    /// Off, or on too soon after a read of off to be believed.
    Off,
}

impl FsyncWatch {
    fn read(&mut self, on: bool, now: Instant) -> Fsync {
        if !on {
            return match self.off_last_read.replace(now) {
                None => Fsync::TurnedOff,
                Some(_) => Fsync::Off,
            };
        }
        match self.off_last_read {
            None => Fsync::On,
            Some(seen) if now.saturating_duration_since(seen) < FSYNC_SETTLE => Fsync::Off,
            Some(_) => {
                self.off_last_read = None;
                Fsync::OnAgain
            }
        }
    }
}

/// SQLSTATE 42P01: a table of ours is gone.
fn undefined_table(err: &sqlx::Error) -> bool {
    err.as_database_error().and_then(|db| db.code()).as_deref() == Some("42P01")
}

/// Refuses a URL whose query sqlx would not use as meant: a parameter
/// neither it nor libpq knows, or a secret one it does not use
/// (`sslpassword`; sqlx logs what it ignores, value and all), one given
/// twice (but `options`, which adds up), a fragment, anything that needs
/// the TLS this build leaves out (an `sslmode` of `require`, `verify-ca` or
/// `verify-full`, a certificate or key file; `prefer` and `allow` fall back
/// to plain text), or a libpq setting that demands a protection sqlx does
/// not give and would silently go without (`gssencmode=require`,
/// `channel_binding=require`, `requirepeer`).
fn check_parameters(url: &str) -> Result<(), PostgresSetupError> {
    /// What sqlx reads (`options[` opens `options[NAME]`).
    const READ: &[&str] = &[
        "sslmode",
        "ssl-mode",
        "sslrootcert",
        "ssl-root-cert",
        "ssl-ca",
        "sslcert",
        "ssl-cert",
        "sslkey",
        "ssl-key",
        "statement-cache-capacity",
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "password",
        "application_name",
        "options",
        "options[",
    ];
    /// libpq's settings that sqlx ignores (and logs): none a secret.
    const IGNORED: &[&str] = &[
        "connect_timeout",
        "target_session_attrs",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "gssencmode",
        "channel_binding",
        "fallback_application_name",
        "client_encoding",
        "load_balance_hosts",
        "sslcompression",
        "sslsni",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "krbsrvname",
        "requirepeer",
    ];
    if url.contains('#') {
        return Err(PostgresSetupError::UrlParameter);
    }
    let query = url.split_once('?').map_or("", |(_, query)| query);
    let mut seen = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let read =
            READ.iter().any(|k| key == *k || (k.ends_with('[') && key.starts_with(k) && key.ends_with(']')));
        if !(read || IGNORED.contains(&key)) || (seen.contains(&key) && key != "options") {
            return Err(PostgresSetupError::UrlParameter);
        }
        seen.push(key);
        let value = value.to_ascii_lowercase();
        let tls = match key {
            "sslmode" | "ssl-mode" => !matches!(value.as_str(), "disable" | "allow" | "prefer"),
            // Files that only TLS reads: whoever names one expects it used.
            "sslrootcert" | "ssl-root-cert" | "ssl-ca" | "sslcert" | "ssl-cert" | "sslkey" | "ssl-key" => {
                true
            }
            _ => false,
        };
        if tls {
            return Err(PostgresSetupError::TlsUnavailable);
        }
        let unenforced = match key {
            "gssencmode" if value != "disable" && value != "prefer" => Some("gssencmode"),
            "channel_binding" if value != "disable" && value != "prefer" => Some("channel_binding"),
            "requirepeer" => Some("requirepeer"),
            _ => None,
        };
        if let Some(setting) = unenforced {
            return Err(PostgresSetupError::Unenforced { setting });
        }
    }
    Ok(())
}

/// Refuses what sqlx takes from libpq's environment variables and this
/// build cannot honour, as [`check_parameters`] refuses it in the URL, unless
/// the URL (already checked) sets it otherwise, which sqlx and libpq put
/// first: a `PGSSLMODE` other than `disable`, `allow` or `prefer` (sqlx
/// takes one it does not know, a typo say, as `prefer`: plain text), and,
/// unless the URL names its own plain-text `sslmode`, a file only TLS reads
/// (`PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`, `PGSSLCRL`, `PGSSLCRLDIR`) or
/// `PGSSLCERTMODE=require`; libpq's `PGGSSENCMODE`/`PGCHANNELBINDING` of
/// `require`, a `PGREQUIREPEER`, and a service (`PGSERVICE`,
/// `PGSERVICEFILE`: its file may demand TLS), which sqlx ignores. An empty
/// variable is unset. `var` reads a variable.
fn check_environment(
    url: &str,
    var: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Result<(), PostgresSetupError> {
    let query = url.split_once('?').map_or("", |(_, query)| query);
    let in_url = |keys: &[&str]| {
        query.split('&').any(|pair| keys.contains(&pair.split_once('=').map_or(pair, |(key, _)| key)))
    };
    let var = |name: &str| var(name).filter(|value| !value.is_empty());
    let is_one_of = |value: std::ffi::OsString, allowed: &[&str]| {
        value.to_str().is_some_and(|value| allowed.contains(&value.to_ascii_lowercase().as_str()))
    };
    let tls = |variable: &'static str| Err(PostgresSetupError::TlsFromEnvironment { variable });
    let mode_in_url = in_url(&["sslmode", "ssl-mode"]);
    if !mode_in_url {
        if var("PGSSLMODE").is_some_and(|mode| !is_one_of(mode, &["disable", "allow", "prefer"])) {
            return tls("PGSSLMODE");
        }
        let files = ["PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY", "PGSSLCRL", "PGSSLCRLDIR"];
        if let Some(file) = files.into_iter().find(|name| var(name).is_some()) {
            return tls(file);
        }
        if var("PGSSLCERTMODE").is_some_and(|mode| is_one_of(mode, &["require"])) {
            return tls("PGSSLCERTMODE");
        }
    }
    for (variable, setting) in [("PGGSSENCMODE", "gssencmode"), ("PGCHANNELBINDING", "channel_binding")] {
        if !in_url(&[setting]) && var(variable).is_some_and(|value| !is_one_of(value, &["disable", "prefer"]))
        {
            return Err(PostgresSetupError::Unenforced { setting: variable });
        }
    }
    for variable in ["PGREQUIREPEER", "PGSERVICE", "PGSERVICEFILE"] {
        if var(variable).is_some() {
            return Err(PostgresSetupError::Unenforced { setting: variable });
        }
    }
    Ok(())
}

/// The `statement_timeout` and `lock_timeout` of the store's own
/// connections, in milliseconds: its timeout, but at least 5 s (a start's
/// migrations wait for no one's timeout); 0 (none) for one PostgreSQL
/// cannot take.
fn server_side_bound(timeout: Duration) -> u128 {
    let ms = timeout.max(Duration::from_secs(5)).as_millis();
    if ms > u128::from(i32::MAX.unsigned_abs()) {
        0
    } else {
        ms
    }
}

impl PostgresStore {
    /// Connects to the database `url` names (`postgres://…`), with the
    /// default options, creating the tables if they are missing.
    ///
    /// # Errors
    /// [`PostgresSetupError`] if the URL is wrong, the database cannot be
    /// reached, or the tables cannot be created or read.
    pub async fn connect(url: &str) -> Result<Self, PostgresSetupError> {
        Self::connect_with(url, PostgresOptions::default()).await
    }

    /// Connects to the database `url` names with `options`.
    ///
    /// # Errors
    /// As [`PostgresStore::connect`] and [`PostgresStore::with_pool`].
    pub async fn connect_with(url: &str, options: PostgresOptions) -> Result<Self, PostgresSetupError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(PostgresSetupError::Url);
        }
        check_parameters(url)?;
        check_environment(url, |name| std::env::var_os(name))?;
        // The timeout stops the store's wait, not the statement: the server
        // ends it too, so that one waiting for a lock held elsewhere does
        // not keep a connection of the pool as long as the lock is held.
        // Set on each new connection (a pooler may refuse startup options),
        // unless the URL's `options` set it.
        let connect = url.parse::<sqlx::postgres::PgConnectOptions>().map_err(PostgresSetupError::Connect)?;
        let own = connect.get_options().unwrap_or_default();
        let bound = server_side_bound(options.timeout);
        let settings: Vec<String> = ["statement_timeout", "lock_timeout"]
            .into_iter()
            .filter(|name| !own.contains(name))
            .map(|name| format!("set_config('{name}', '{bound}', false)"))
            .collect();
        let setup: Option<Arc<str>> =
            (!settings.is_empty()).then(|| format!("SELECT {}", settings.join(", ")).into());
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |connection, _| {
                let setup = setup.clone();
                Box::pin(async move {
                    if let Some(setup) = setup {
                        sqlx::query(sqlx::AssertSqlSafe(setup.to_string())).execute(connection).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(connect)
            .await
            .map_err(PostgresSetupError::Connect)?;
        Self::with_pool(pool, options, SystemClock).await
    }

    /// Uses the application's own pool, and one more connection with the
    /// pool's settings for `LISTEN` (outside the pool: one that stops
    /// delivering is given up without holding a connection of the pool).
    /// The clock ages cache entries (a clock that does not move, as tests
    /// use, keeps them until a notification or a reconnection: give
    /// servers the system clock); every time the store keeps is the
    /// database's. The pool's connection settings are used as they were
    /// built: the URL and environment checks of [`PostgresStore::connect`]
    /// are not made here (a plain-text connection is the application's to
    /// prevent), and the server does not end a statement the store gave
    /// up on unless the pool's `statement_timeout` or `lock_timeout` does
    /// (else one waiting for a lock keeps its connection until the lock
    /// is let go).
    ///
    /// # Errors
    /// As [`PostgresStore::connect`], and [`PostgresSetupError::Prefix`] or
    /// [`PostgresSetupError::CacheTtl`] for options out of bounds.
    pub async fn with_pool(
        pool: PgPool,
        options: PostgresOptions,
        clock: impl Clock + 'static,
    ) -> Result<Self, PostgresSetupError> {
        if !schema::valid_prefix(&options.prefix) {
            return Err(PostgresSetupError::Prefix(options.prefix.chars().take(64).collect()));
        }
        if options.cache_ttl > sealed_session::MAX_CACHE_TTL {
            return Err(PostgresSetupError::CacheTtl(options.cache_ttl));
        }
        tokio::runtime::Handle::try_current().map_err(|_| PostgresSetupError::Runtime)?;
        let (fsync, synchronous_commit, standby): (String, String, bool) =
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT current_setting('fsync'), current_setting('synchronous_commit'), {}",
                schema::NOT_PRIMARY
            )))
            .fetch_one(&pool)
            .await
            .map_err(PostgresSetupError::Connect)?;
        if standby {
            return Err(PostgresSetupError::Standby);
        }
        if !schema::is_durable(&fsync, &synchronous_commit) {
            return Err(PostgresSetupError::NotDurable { fsync, synchronous_commit });
        }
        let inner = Arc::new(Inner {
            sql: Statements::new(&options.prefix),
            feed: Arc::new(Feed::new(options.cache_ttl)),
            pool,
            options,
            clock: Arc::new(clock),
            fsync: Mutex::new(FsyncWatch::default()),
            on_standby: AtomicBool::new(false),
            table_loss_said: AtomicI64::new(i64::MIN),
        });
        if inner.options.existing_only {
            // Before anything is written: the tables and their generation.
            let in_use: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(inner.sql.generation.clone()))
                .fetch_optional(&inner.pool)
                .await
                .or_else(|err| if undefined_table(&err) { Ok(None) } else { Err(err) })
                .map_err(PostgresSetupError::Connect)?;
            if in_use.is_none() {
                return Err(PostgresSetupError::NotInUse { prefix: inner.options.prefix.clone() });
            }
        } else if inner.options.create_tables {
            // `CREATE TABLE IF NOT EXISTS` looks in the first schema of the
            // path only, while every statement finds tables on the whole path.
            let other: Option<(String, String)> =
                sqlx::query_as(sqlx::AssertSqlSafe(inner.sql.other_schema.clone()))
                    .fetch_optional(&inner.pool)
                    .await
                    .map_err(PostgresSetupError::Connect)?;
            if let Some((tables, current)) = other {
                return Err(PostgresSetupError::SchemaMismatch { tables, current });
            }
            inner.migrate().await.map_err(PostgresSetupError::Migrate)?;
        }
        inner.start_generation().await.map_err(PostgresSetupError::Generation)?;
        let unlogged: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(inner.sql.unlogged.clone()))
            .fetch_optional(&inner.pool)
            .await
            .map_err(PostgresSetupError::Connect)?;
        if let Some(table) = unlogged {
            return Err(PostgresSetupError::Unlogged { table });
        }
        let (pool, channel) = (inner.pool.clone(), inner.sql.channel.clone());
        tokio::spawn(listener::listen_forever(
            Arc::downgrade(&inner.feed),
            pool,
            channel,
            inner.options.timeout,
        ));
        Ok(Self { inner })
    }

    /// The SQL that creates the tables under `prefix`, for applications
    /// that run their own migrations (with [`PostgresOptions::create_tables`]
    /// off). `None` if `prefix` is not a plain identifier.
    #[must_use]
    pub fn migration_sql(prefix: &str) -> Option<String> {
        schema::valid_prefix(prefix).then(|| schema::migration(prefix))
    }

    /// Whether the `LISTEN` connection is up (the cache is in use).
    #[must_use]
    pub fn is_listening(&self) -> bool {
        self.inner.feed.is_live()
    }

    /// Waits until the `LISTEN` connection is up, for at most `limit`.
    /// Returns whether it is.
    pub async fn wait_until_listening(&self, limit: Duration) -> bool {
        self.inner.feed.wait_until_live(limit).await
    }

    /// The pool the store uses.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }
}

impl Inner {
    /// Creates the tables (one server at a time: an advisory lock). If
    /// revocations were lost (the tables had been set up, and a table of
    /// revocations is gone: dropped), raises the cutoff (dated by the
    /// database) in the same transaction, so that no session they revoked
    /// opens again.
    async fn migrate(&self) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))::text")
            .bind(&self.options.prefix)
            .fetch_one(&mut *tx)
            .await?;
        let lost: bool =
            sqlx::query_scalar(sqlx::AssertSqlSafe(self.sql.lost_tables.clone())).fetch_one(&mut *tx).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(self.sql.migrate.clone())).execute(&mut *tx).await?;
        let cutoff: Option<i64> = if lost {
            Some(
                sqlx::query_scalar(sqlx::AssertSqlSafe(self.sql.revoke_all.clone()))
                    .bind(0i64)
                    .fetch_one(&mut *tx)
                    .await?,
            )
        } else {
            None
        };
        tx.commit().await?;
        if let Some(cutoff) = cutoff {
            tracing::warn!(
                cutoff,
                "a revocation table of the PostgreSQL store was gone (dropped: lost revocations) and is created \
                 again; every session issued until now is refused"
            );
            self.feed.cache().clear();
        }
        Ok(())
    }

    /// Denylists `session` until `expires_at` (with `once`, only if it is
    /// not denylisted yet); returns whether the entry is this call's.
    async fn deny(
        self: Arc<Self>,
        session: SessionId,
        expires_at: u64,
        once: bool,
    ) -> Result<bool, StoreError> {
        let sql = if once { &self.sql.revoke_session_once } else { &self.sql.revoke_session };
        let message = Invalidation::Session(session).message();
        let caller_now = u64::try_from(self.clock.unix_now()).unwrap_or(0);
        let result: Result<(i64, bool, i64, bool), StoreError> = self
            .run(|| {
                sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(session.as_bytes().as_slice())
                    .bind(to_sql(expires_at))
                    .bind(&message)
                    .bind(to_sql(caller_now))
                    .fetch_one(&self.pool)
            })
            .await;
        self.feed.cache().apply(&Invalidation::Session(session));
        let (now, denied, _purged, fsync_on) = result?;
        let now = from_sql(now)?;
        if expires_at <= now {
            return Err(StoreError::ExpiryNotInFuture { expires_at, now });
        }
        self.fsync_seen(fsync_on)?;
        Ok(denied)
    }

    /// Runs `sql`, which deletes the registry's records of `user_id` (`$1`),
    /// or only the record `id` (`$2`) if given.
    async fn remove_records(
        &self,
        sql: &str,
        user_id: &str,
        id: Option<SessionId>,
    ) -> Result<(), StoreError> {
        self.run(|| {
            let query = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).bind(user_id);
            match &id {
                Some(id) => query.bind(id.as_bytes().as_slice()),
                None => query,
            }
            .execute(&self.pool)
        })
        .await
        .map(drop)
    }

    /// Writes a generation if there is none; returns whether one began.
    async fn start_generation(&self) -> Result<bool, StoreError> {
        let started: Option<i64> = self
            .bounded(async {
                sqlx::query_scalar(sqlx::AssertSqlSafe(self.sql.start_generation.clone()))
                    .fetch_optional(&self.pool)
                    .await
            })
            .await?;
        if let Some(generation) = started {
            tracing::warn!(
                generation,
                "PostgreSQL revocation store has no generation (new, emptied or dropped tables): starting one; \
                 every session issued until now is refused"
            );
            self.feed.cache().clear();
            self.notify_all().await;
        }
        Ok(started.is_some())
    }

    /// Runs one statement within the timeout, outside of which it fails
    /// closed. Outside a tokio runtime it fails instead of letting sqlx panic.
    pub(crate) async fn bounded<T>(
        &self,
        statement: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, StoreError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StoreError::unavailable(NoRuntime));
        }
        match tokio::time::timeout(self.options.timeout, statement).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(self.failed(err)),
            Err(_) => Err(StoreError::Timeout(self.options.timeout)),
        }
    }

    /// What a statement's error means: one refused as read-only (SQLSTATE
    /// 25006: a write that reached a standby, or a primary fenced
    /// read-only, on a connection the pool still holds) is logged as such
    /// and fails as the store on a standby does; any other, the database
    /// unavailable. The checks' standby state is left to the checks, which
    /// read it with their data.
    fn failed(&self, err: sqlx::Error) -> StoreError {
        if err.as_database_error().and_then(|db| db.code()).as_deref() == Some("25006") {
            tracing::error!(
                prefix = &self.options.prefix,
                "a write was refused: a connection of the PostgreSQL store's pool is on a standby or a read-only \
                 server; point the store's address at the primary"
            );
            return StoreError::untrusted(OnStandby);
        }
        StoreError::unavailable(err)
    }

    /// Runs `statement`; if a table of ours is gone (dropped: lost data),
    /// creates the tables again with a new generation, and runs it once more.
    async fn run<T, F, Fut>(&self, statement: F) -> Result<T, StoreError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StoreError::unavailable(NoRuntime));
        }
        match tokio::time::timeout(self.options.timeout, statement()).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) if undefined_table(&err) && self.options.create_tables => {
                self.recreate_tables().await?;
                self.bounded(statement()).await
            }
            Ok(Err(err)) if undefined_table(&err) => {
                self.table_lost().await;
                Err(self.failed(err))
            }
            Ok(Err(err)) => Err(self.failed(err)),
            Err(_) => Err(StoreError::Timeout(self.options.timeout)),
        }
    }

    /// A table was dropped, and the application creates the tables
    /// ([`PostgresOptions::create_tables`] off): the revocations it held are
    /// lost, so every session issued until now is refused, once the
    /// application's migrations bring the table back. The cutoff goes in
    /// the meta table; if that is the one gone, the generation starts
    /// again when it is back. Only for a table of revocations, in the meta
    /// table's schema: a registry table missing loses none. Said at
    /// `error` once a minute at most.
    async fn table_lost(&self) {
        let raised = self
            .bounded(
                sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(self.sql.cutoff_now.clone()))
                    .fetch_optional(&self.pool),
            )
            .await;
        if matches!(raised, Ok(None)) {
            // A registry table, or tables of another schema's: no
            // revocation is lost.
            return;
        }
        self.feed.cache().clear();
        let now = self.clock.unix_now();
        let said = self.table_loss_said.load(Ordering::Relaxed);
        if now.saturating_sub(said) < 60 || self.table_loss_said.swap(now, Ordering::Relaxed) != said {
            return;
        }
        let prefix = &self.options.prefix;
        match raised {
            Ok(_) => tracing::error!(
                prefix,
                "a table of the PostgreSQL revocation store is gone (lost data), and the store does not create \
                 its tables: every call fails until the application's migrations bring it back, and every \
                 session issued until now is refused then (everyone signs in again)"
            ),
            Err(err) => tracing::error!(
                prefix,
                error = %err,
                "a table of the PostgreSQL revocation store is gone (lost data), and the store does not create \
                 its tables: every call fails until the application's migrations bring the tables back"
            ),
        }
    }

    /// A table was dropped: creates the tables again, with a new cutoff if
    /// revocations were in it ([`Inner::migrate`]) and a new generation if
    /// the meta table went, so that no session they revoked comes back.
    async fn recreate_tables(&self) -> Result<(), StoreError> {
        tracing::warn!("a table of the PostgreSQL revocation store is gone (lost data): creating it again");
        self.bounded(self.migrate()).await?;
        self.start_generation().await.map(drop)
    }

    /// Reads one check's state from the database (never the cache), by the
    /// rules of [`sql::read_state`] (a lost generation is started again).
    /// Refused while the database runs with `fsync` off ([`FsyncOff`]), or
    /// from a standby ([`OnStandby`]).
    async fn fetch(
        &self,
        user_id: Option<&str>,
        session: Option<&SessionId>,
    ) -> Result<RevocationState, StoreError> {
        let read = || async move {
            let (epoch, denied, revoked_through, generation, fsync_on, standby) = self
                .run(|| async {
                    let mut connection = self.pool.acquire().await?;
                    let row: (Option<i64>, bool, Option<i64>, Option<i64>, bool, bool) =
                        sqlx::query_as(sqlx::AssertSqlSafe(self.sql.state.clone()))
                            .bind(user_id)
                            .bind(session.map(|session| session.as_bytes().as_slice()))
                            .fetch_one(&mut *connection)
                            .await?;
                    if row.5 {
                        // A standby: the pool connects again rather than
                        // hand this connection to the next check.
                        connection.close_on_drop();
                    }
                    Ok(row)
                })
                .await?;
            self.standby_seen(standby)?;
            self.fsync_seen(fsync_on)?;
            Ok((epoch, denied, revoked_through, generation))
        };
        sql::read_state(read, || async { self.start_generation().await.map(drop) }).await
    }

    /// Whether a read came from a standby: one fails the read closed (its
    /// connection is closed), and the first empties the cache, so that
    /// every check reads again (the `LISTEN` connection may still be on a
    /// primary that no longer hears every revocation). Each change is
    /// logged once, with the store's table prefix.
    fn standby_seen(&self, standby: bool) -> Result<(), StoreError> {
        let was = self.on_standby.swap(standby, Ordering::Relaxed);
        let prefix = &self.options.prefix;
        if !standby {
            if was {
                tracing::warn!(
                    prefix,
                    "the PostgreSQL store reads the primary again: sessions are checked again"
                );
            }
            return Ok(());
        }
        if !was {
            self.feed.cache().clear();
            tracing::error!(prefix, "{OnStandby}");
        }
        Err(StoreError::untrusted(OnStandby))
    }

    /// What a read said of `fsync` (and whether the tables are logged, see
    /// `schema::durable`): off fails the read closed (and empties
    /// the cache, so that every check reads and is refused), and a
    /// revocation that read it fails, though it was written (a crash could
    /// lose it); see [`FsyncWatch`]. Each change is logged once.
    fn fsync_seen(&self, on: bool) -> Result<(), StoreError> {
        let verdict = self.fsync.lock().unwrap_or_else(PoisonError::into_inner).read(on, Instant::now());
        match verdict {
            Fsync::On => return Ok(()),
            Fsync::OnAgain => {
                tracing::warn!(
                    "PostgreSQL keeps commits through a crash again (fsync on, the revocation tables logged): \
                     sessions are checked again; if the database crashed meanwhile, revocations may be lost: log \
                     everyone out (sealed-session revoke --all --yes)"
                );
                return Ok(());
            }
            Fsync::TurnedOff => {
                tracing::error!("{FsyncOff}");
                self.feed.cache().clear();
            }
            Fsync::Off => {}
        }
        Err(StoreError::untrusted(FsyncOff))
    }

    /// Tells every server to empty its cache. A lost message is covered by
    /// the cache TTL, so failure here is only logged.
    async fn notify_all(&self) {
        let sent = self
            .bounded(async {
                sqlx::query("SELECT pg_notify($1, 'all')::text")
                    .bind(&self.sql.channel)
                    .fetch_one(&self.pool)
                    .await
            })
            .await;
        if let Err(err) = sent {
            tracing::warn!(%err, "could not notify other servers; they see it within the cache TTL");
        }
    }
}

impl RevocationStore for PostgresStore {
    fn state(
        &self,
        user_id: Option<&str>,
        session: SessionId,
    ) -> impl Future<Output = Result<RevocationState, StoreError>> + Send {
        let inner = &self.inner;
        let now_ms = inner.clock.unix_millis();
        let lookup = inner
            .feed
            .lookup(user_id, &session, now_ms)
            .map_err(|ticket| (Arc::clone(inner), user_id.map(str::to_owned), ticket));
        async move {
            let (inner, user_id, ticket) = match lookup {
                Ok(state) => return Ok(state),
                Err(miss) => miss,
            };
            // Boxed: the query's future is large, and a cache hit should not
            // move it around.
            let state = Box::pin(inner.fetch(user_id.as_deref(), Some(&session))).await?;
            inner.feed.remember(ticket, user_id.as_deref(), &session, &state);
            Ok(state)
        }
    }

    fn login_state(&self, user_id: &str) -> impl Future<Output = Result<LoginState, StoreError>> + Send {
        let inner = Arc::clone(&self.inner);
        let user_id = user_id.to_owned();
        async move { Ok(inner.fetch(Some(&user_id), None).await?.into()) }
    }

    fn revoke_user(&self, user_id: &str) -> impl Future<Output = Result<u64, StoreError>> + Send {
        let inner = Arc::clone(&self.inner);
        let user_id = user_id.to_owned();
        async move {
            let message = Invalidation::User(&user_id).message();
            let result: Result<(i64, bool), StoreError> = inner
                .run(|| {
                    sqlx::query_as(sqlx::AssertSqlSafe(inner.sql.revoke_user.clone()))
                        .bind(&user_id)
                        .bind(&message)
                        .fetch_one(&inner.pool)
                })
                .await;
            inner.feed.cache().apply(&Invalidation::User(&user_id));
            let (epoch, fsync_on) = result?;
            inner.fsync_seen(fsync_on)?;
            from_sql(epoch)
        }
    }

    fn revoke_session(
        &self,
        session: SessionId,
        expires_at: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let denied = Arc::clone(&self.inner).deny(session, expires_at, false);
        async move { denied.await.map(drop) }
    }

    fn revoke_session_once(
        &self,
        session: SessionId,
        expires_at: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        Arc::clone(&self.inner).deny(session, expires_at, true)
    }

    fn revoke_all(&self, issued_through: u64) -> impl Future<Output = Result<u64, StoreError>> + Send {
        let inner = Arc::clone(&self.inner);
        async move {
            let result: Result<(i64, bool), StoreError> = inner
                .run(|| {
                    sqlx::query_as(sqlx::AssertSqlSafe(inner.sql.revoke_all.clone()))
                        .bind(to_sql(issued_through))
                        .fetch_one(&inner.pool)
                })
                .await;
            inner.feed.cache().clear();
            let (cutoff, fsync_on) = result?;
            inner.fsync_seen(fsync_on)?;
            from_sql(cutoff)
        }
    }
}

/// The registry is a table beside the revocations (`<prefix>_sessions`),
/// created with them.
impl SessionRegistry for PostgresStore {
    fn record<'a>(&'a self, record: &'a SessionRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        let inner = &self.inner;
        let now = u64::try_from(inner.clock.unix_now()).unwrap_or(0);
        Box::pin(inner.run(move || async move {
            let mut tx = inner.pool.begin().await?;
            sqlx::query(sqlx::AssertSqlSafe(inner.sql.record_session.clone()))
                .bind(&record.user_id)
                .bind(record.id.as_bytes().as_slice())
                .bind(to_sql(record.epoch))
                .bind(to_sql(record.created_at))
                .bind(to_sql(record.last_seen))
                .bind(to_sql(record.expires_at))
                .bind(&record.user_agent)
                .bind(record.remembered)
                .bind(record.device_bound)
                .execute(&mut *tx)
                .await?;
            sqlx::query(sqlx::AssertSqlSafe(inner.sql.trim_sessions.clone()))
                .bind(&record.user_id)
                .bind(to_sql(now))
                .bind(i64::try_from(MAX_RECORDS_PER_USER).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await?;
            // Other users' records go a day after they expire by this
            // server's clock: one that jumped ahead must not drop the live
            // records of every user (as for the denylist).
            sqlx::query(sqlx::AssertSqlSafe(inner.sql.purge_sessions.clone()))
                .bind(&record.user_id)
                .bind(to_sql(now.saturating_sub(sealed_session::sql::DENYLIST_PURGE_GRACE_SECS)))
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        }))
    }

    fn remove<'a>(&'a self, user_id: &'a str, id: SessionId) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.inner.remove_records(&self.inner.sql.remove_session, user_id, Some(id)))
    }

    fn remove_user<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.inner.remove_records(&self.inner.sql.remove_user_sessions, user_id, None))
    }

    fn list<'a>(
        &'a self,
        user_id: &'a str,
        now: u64,
    ) -> BoxFuture<'a, Result<Vec<SessionRecord>, StoreError>> {
        let inner = &self.inner;
        Box::pin(async move {
            let rows: Vec<sql::RecordRow> = inner
                .run(|| {
                    sqlx::query_as(sqlx::AssertSqlSafe(inner.sql.list_sessions.clone()))
                        .bind(user_id)
                        .bind(to_sql(now))
                        .fetch_all(&inner.pool)
                })
                .await?;
            rows.into_iter().map(sql::record_from_row).collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What sqlx would take from libpq's environment variables and this
    /// build cannot honour is refused, as in the URL.
    #[test]
    fn environment_variables_that_need_tls_or_an_unenforced_protection_are_refused() {
        let base = "postgres://app:pw@db:5432/app";
        let with = |query: &str, vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> =
                vars.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
            check_environment(&format!("{base}{query}"), move |name| {
                vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.into())
            })
            .map_err(|err| err.to_string())
        };
        for (query, ok) in [
            ("", &[][..]),
            ("", &[("PGSSLMODE", "disable")]),
            ("", &[("PGSSLMODE", "Prefer"), ("PGGSSENCMODE", "prefer"), ("PGCHANNELBINDING", "disable")]),
            ("", &[("PGHOST", "db"), ("PGAPPNAME", "web"), ("PGSSLCERT", "")]),
            // The URL's own setting comes first, and is plain text.
            ("?sslmode=disable", &[("PGSSLMODE", "verify-full"), ("PGSSLROOTCERT", "/etc/ssl/db-ca.pem")]),
            (
                "?gssencmode=disable&channel_binding=prefer",
                &[("PGGSSENCMODE", "require"), ("PGCHANNELBINDING", "require")],
            ),
        ] {
            assert_eq!(with(query, ok), Ok(()), "{query} {ok:?}");
        }
        for (bad, error) in [
            (("PGSSLMODE", "verify-full"), "PGSSLMODE"),
            (("PGSSLMODE", "verify_full"), "PGSSLMODE"),
            (("PGSSLMODE", "require"), "PGSSLMODE"),
            (("PGSSLROOTCERT", "/etc/ssl/db-ca.pem"), "PGSSLROOTCERT"),
            (("PGSSLCERT", "/etc/ssl/client.pem"), "PGSSLCERT"),
            (("PGSSLKEY", "/etc/ssl/client.key"), "PGSSLKEY"),
            (("PGSSLCRL", "/etc/ssl/crl.pem"), "PGSSLCRL"),
            (("PGSSLCERTMODE", "require"), "PGSSLCERTMODE"),
            (("PGGSSENCMODE", "require"), "PGGSSENCMODE"),
            (("PGCHANNELBINDING", "require"), "PGCHANNELBINDING"),
            (("PGREQUIREPEER", "postgres"), "PGREQUIREPEER"),
            (("PGSERVICE", "sessions"), "PGSERVICE"),
        ] {
            let err = with("?application_name=web", &[bad]).unwrap_err();
            assert!(err.contains(error) && err.contains("environment"), "{bad:?}: {err}");
        }
        // Through `connect`, before any connection is tried (nothing listens
        // on port 1). No other test of this binary reads the variable.
        std::env::set_var("PGSSLROOTCERT", "/etc/ssl/db-ca.pem");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let connected = runtime.block_on(PostgresStore::connect("postgres://app@127.0.0.1:1/app"));
        std::env::remove_var("PGSSLROOTCERT");
        let refused =
            matches!(connected, Err(PostgresSetupError::TlsFromEnvironment { variable: "PGSSLROOTCERT" }));
        assert!(refused, "{:?}", connected.err());
    }

    /// What sqlx would log and ignore, or use otherwise than meant, is
    /// refused, and the message repeats no parameter.
    #[test]
    fn only_parameters_sqlx_uses_as_meant_pass() {
        let base = "postgres://app:pw@db:5432/app";
        for ok in [
            "",
            "?sslmode=disable",
            "?application_name=web&port=5433",
            "?options[search_path]=x",
            "?connect_timeout=10&target_session_attrs=read-write",
            "?options=-c%20a&options=-c%20b",
            "?sslmode=prefer&gssencmode=prefer&channel_binding=prefer",
            "?sslmode=ALLOW&gssencmode=disable&channel_binding=disable",
        ] {
            assert!(check_parameters(&format!("{base}{ok}")).is_ok(), "{ok}");
        }
        for (bad, error) in [
            ("?sslpassword=hunter2", "parameter"),
            ("?pasword=hunter2", "parameter"),
            ("?port=1&port=2", "parameter"),
            // Only `options[NAME]` is read in brackets.
            ("?sslpassword[x]=hunter2", "parameter"),
            ("?x]=hunter2", "parameter"),
            ("?options[x=hunter2", "parameter"),
            ("#frag", "parameter"),
            ("?sslmode=verify-full", "TLS"),
            ("?ssl-mode=require", "TLS"),
            ("?sslmode=REQUIRE", "TLS"),
            // An sslmode libpq does not know is no plain text either.
            ("?sslmode=verify", "TLS"),
            ("?sslrootcert=system", "TLS"),
            ("?sslrootcert=%2Fetc%2Fca.pem", "TLS"),
            ("?sslkey=%2Fetc%2Fkey.pem", "TLS"),
            ("?gssencmode=require", "gssencmode"),
            ("?channel_binding=require", "channel_binding"),
            ("?requirepeer=postgres", "requirepeer"),
        ] {
            let err = check_parameters(&format!("{base}{bad}")).unwrap_err().to_string();
            assert!(err.contains(error) && !err.contains("hunter2"), "{bad}: {err}");
        }
    }

    #[test]
    fn fsync_on_is_believed_only_a_second_after_the_last_read_of_off() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut watch = FsyncWatch::default();
        assert_eq!(watch.read(true, at(0)), Fsync::On);
        assert_eq!(watch.read(false, at(10)), Fsync::TurnedOff);
        // A connection that has not applied the reload yet still says on.
        assert_eq!(watch.read(true, at(20)), Fsync::Off);
        assert_eq!(watch.read(false, at(600)), Fsync::Off, "off again: the second counts from here");
        assert_eq!(watch.read(true, at(1_500)), Fsync::Off, "0.9 s after the last off");
        assert_eq!(watch.read(true, at(1_600)), Fsync::OnAgain);
        assert_eq!(watch.read(true, at(1_610)), Fsync::On);
        assert_eq!(watch.read(false, at(1_620)), Fsync::TurnedOff, "a new change, logged again");
    }

    #[test]
    fn each_option_is_set_by_its_builder() {
        let options = PostgresOptions::default()
            .with_prefix("app")
            .with_timeout(Duration::from_millis(7))
            .with_cache_ttl(Duration::from_millis(8))
            .with_create_tables(false)
            .with_existing_only(true);
        assert!(options.existing_only && !PostgresOptions::default().existing_only);
        assert_eq!(options.prefix, "app");
        assert_eq!(
            (options.timeout, options.cache_ttl),
            (Duration::from_millis(7), Duration::from_millis(8))
        );
        assert!(!options.create_tables);
        let default = PostgresOptions::default();
        assert_eq!((default.prefix.as_str(), default.create_tables), ("sealed_session", true));
    }
}
