//! A durable [`RevocationStore`] in one SQLite file: the embedded default
//! for a single server.
//!
//! * Every revocation is committed (WAL mode, `synchronous = FULL`) before
//!   its future resolves, so a revocation that returned `Ok` survives a
//!   crash or `kill -9` of the process.
//! * The file keeps a *generation*: the time it was initialised. A missing
//!   or new, empty file starts a new generation, and every session issued at or
//!   before it is refused, so losing the file never brings a revoked session
//!   back. The event is logged with `tracing` at `warn`.
//! * Checks are answered from a read cache when they can. A revocation
//!   through this store clears it before the call returns. Several
//!   processes may share the file (a server and an operator's tool, say):
//!   the store asks SQLite every [`CACHE_POLL_INTERVAL`] (25 ms) whether
//!   another connection changed the file (`PRAGMA data_version`) and clears
//!   the cache if so, so a revocation made elsewhere is enforced here within
//!   about 25 ms. The cache is used only while those polls (on a thread of
//!   the store's own) succeed and keep up; otherwise every check reads the
//!   file.
//! * Database work runs on tokio's blocking pool, never on the async threads;
//!   outside a tokio runtime every call fails (closed) instead of panicking.
//! * Restoring an *older copy* of the file (a backup, a VM snapshot) rolls
//!   revocations back without changing the generation: after such a restore,
//!   also log everyone out (`Verifier::logout_all`).
//!
//! ```no_run
//! use sealed_session::{Keyring, Sealer, Verifier};
//! use sealed_session_sqlite::SqliteStore;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let store = SqliteStore::open("/var/lib/myapp/revocations.sqlite3").await?;
//! let verifier = Verifier::new(Sealer::builder(Keyring::load("keyring.toml")?).build()?, store);
//! verifier.logout_everywhere("alice").await?;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use sealed_session::{Clock, RevocationState, RevocationStore, SessionId, StoreError, SystemClock};

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS meta (
        key   TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS user_epochs (
        user_id TEXT PRIMARY KEY,
        epoch   INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS denied_sessions (
        session_id BLOB PRIMARY KEY,
        expires_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS denied_sessions_expiry ON denied_sessions (expires_at);
";

/// How long a statement waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the store asks SQLite whether another connection changed the
/// file, and clears its read cache if so.
pub const CACHE_POLL_INTERVAL: Duration = Duration::from_millis(25);
/// Cached answers are used only while the last successful poll is younger
/// than this (milliseconds of the store's clock).
const POLL_FRESH_MS: i64 = 250;
/// No cached answer is older than this (milliseconds).
const CACHE_TTL_MS: i64 = 1_000;
/// The cache is emptied when it reaches this many sessions.
const CACHE_MAX: usize = 100_000;

/// One cached answer: the state of `session` for `user`.
struct Cached {
    user: Option<Box<str>>,
    state: RevocationState,
    fetched_ms: i64,
}

/// Answers read from the file, keyed by session ID.
struct Cache {
    entries: HashMap<[u8; 16], Cached>,
    /// Counts clears, so that an answer read before one is never cached after it.
    version: u64,
    /// The `revoked_through` the cached answers were read with.
    floor: u64,
    /// When the last poll confirmed the file unchanged by others.
    polled_ms: i64,
}

impl Cache {
    fn clear(&mut self) {
        self.entries.clear();
        self.version = self.version.wrapping_add(1);
    }
}

/// The SQLite file could not be opened or initialised.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// SQLite refused to open or set up the file.
    #[error("cannot open SQLite revocation store {path}: {source}")]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The store's generation could not be read or written.
    #[error("cannot read or start the generation of SQLite revocation store {path}: {source}")]
    Generation {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: StoreError,
    },
    /// The URL is not `sqlite:PATH`.
    #[error(
        "not a SQLite store URL: expected sqlite:PATH, for example sqlite:/var/lib/app/revocations.sqlite3"
    )]
    Url,
    /// The store's background task could not run.
    #[error("the SQLite store needs a tokio runtime with a blocking pool: {0}")]
    Runtime(String),
}

/// A revocation store in a SQLite file. Clones share one connection and
/// one read cache.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    cache: Arc<RwLock<Cache>>,
    path: PathBuf,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`, with the system clock.
    ///
    /// # Errors
    /// [`OpenError`] if SQLite cannot open or initialise the file.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        Self::open_with_clock(path, SystemClock).await
    }

    /// Opens the store named by a URL of the form `sqlite:PATH`.
    ///
    /// # Errors
    /// [`OpenError::Url`] for another form, or as [`SqliteStore::open`].
    pub async fn open_url(url: &str) -> Result<Self, OpenError> {
        match url.strip_prefix("sqlite:") {
            Some(path) if !path.is_empty() => Self::open(path).await,
            _ => Err(OpenError::Url),
        }
    }

    /// Opens the store with a given clock (which dates a new generation).
    ///
    /// # Errors
    /// As [`SqliteStore::open`].
    pub async fn open_with_clock(
        path: impl AsRef<Path>,
        clock: impl Clock + 'static,
    ) -> Result<Self, OpenError> {
        let path = path.as_ref().to_path_buf();
        let clock: Arc<dyn Clock> = Arc::new(clock);
        let (task_path, task_clock) = (path.clone(), clock.clone());
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|err| OpenError::Runtime(err.to_string()))?;
        let conn = runtime
            .spawn_blocking(move || initialise(&task_path, &*task_clock))
            .await
            .map_err(|err| OpenError::Runtime(err.to_string()))??;
        let cache = Cache { entries: HashMap::new(), version: 0, floor: 0, polled_ms: i64::MIN };
        let store =
            Self { conn: Arc::new(Mutex::new(conn)), cache: Arc::new(RwLock::new(cache)), path, clock };
        let (conn, cache, clock) =
            (Arc::downgrade(&store.conn), Arc::downgrade(&store.cache), store.clock.clone());
        // A thread, not a task: it needs no timer in the caller's runtime.
        let poller = std::thread::Builder::new()
            .name("sqlite-revocation-poll".into())
            .spawn(move || poll(&conn, &cache, &*clock));
        if let Err(err) = poller {
            tracing::warn!(error = %err, "cannot start the SQLite change poller; every check reads the file");
        }
        Ok(store)
    }

    /// The file this store uses.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The generation: when this file was initialised (Unix seconds).
    ///
    /// # Errors
    /// [`StoreError`] if the file cannot be read.
    pub async fn generation(&self) -> Result<u64, StoreError> {
        self.run(|conn, clock| ensure_generation(conn, clock)).await
    }

    fn read_cache(&self) -> std::sync::RwLockReadGuard<'_, Cache> {
        self.cache.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_cache(&self) -> std::sync::RwLockWriteGuard<'_, Cache> {
        self.cache.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached state of `session` for `user_id` if it may be used, and
    /// the cache version to store a fresh answer under otherwise.
    fn cached(&self, user_id: Option<&str>, session: &SessionId) -> Result<RevocationState, u64> {
        let now = self.clock.unix_millis();
        let cache = self.read_cache();
        if (0..POLL_FRESH_MS).contains(&now.saturating_sub(cache.polled_ms)) {
            if let Some(hit) = cache.entries.get(session.as_bytes()) {
                if hit.user.as_deref() == user_id
                    && (0..CACHE_TTL_MS).contains(&now.saturating_sub(hit.fetched_ms))
                {
                    return Ok(hit.state);
                }
            }
        }
        Err(cache.version)
    }

    /// Caches an answer read at cache version `version`, unless the cache
    /// was cleared since.
    fn remember(&self, user_id: Option<&str>, session: &SessionId, state: RevocationState, version: u64) {
        let fetched_ms = self.clock.unix_millis();
        let mut cache = self.write_cache();
        if cache.version != version {
            return;
        }
        if cache.floor != state.revoked_through || cache.entries.len() >= CACHE_MAX {
            // Everyone was logged out, or a new generation began (written by
            // this connection, which data_version does not report).
            cache.clear();
            cache.floor = state.revoked_through;
        }
        cache.entries.insert(*session.as_bytes(), Cached { user: user_id.map(Box::from), state, fetched_ms });
    }

    /// Runs a revocation, then clears the cache (also on failure: the write
    /// may have committed).
    fn write<R: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection, &dyn Clock) -> Result<R, StoreError> + Send + 'static,
    ) -> impl Future<Output = Result<R, StoreError>> + Send {
        let cache = Arc::clone(&self.cache);
        // Cleared on the blocking thread, once the write is done, so that a
        // caller who stops waiting cannot leave the cache stale.
        self.run(move |conn, clock| {
            let result = work(conn, clock);
            cache.write().unwrap_or_else(PoisonError::into_inner).clear();
            result
        })
    }

    /// Runs `work` on the blocking pool with the connection.
    fn run<R: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection, &dyn Clock) -> Result<R, StoreError> + Send + 'static,
    ) -> impl Future<Output = Result<R, StoreError>> + Send {
        let (conn, clock) = (self.conn.clone(), self.clock.clone());
        async move {
            let runtime = tokio::runtime::Handle::try_current().map_err(StoreError::unavailable)?;
            runtime
                .spawn_blocking(move || {
                    // A panic elsewhere while holding the lock leaves the
                    // connection usable: SQLite rolls back unfinished transactions.
                    let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
                    work(&mut conn, &*clock)
                })
                .await
                .map_err(StoreError::unavailable)?
        }
    }
}

/// Clears the cache whenever another connection changed the file, and
/// records when each successful poll began; returns when the store is
/// dropped. A failed poll leaves the cache unused until one succeeds.
fn poll(conn: &Weak<Mutex<Connection>>, cache: &Weak<RwLock<Cache>>, clock: &dyn Clock) {
    let mut seen: Option<i64> = None;
    loop {
        std::thread::sleep(CACHE_POLL_INTERVAL);
        let started_ms = clock.unix_millis();
        let Some(conn) = conn.upgrade() else { return };
        let version = {
            let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            conn.query_row("PRAGMA data_version", [], |row| row.get::<_, i64>(0))
        };
        drop(conn);
        let Some(cache) = cache.upgrade() else { return };
        let mut cache = cache.write().unwrap_or_else(PoisonError::into_inner);
        match version {
            Ok(version) => {
                if seen != Some(version) {
                    cache.clear();
                    seen = Some(version);
                }
                // From when the poll began: a slow poll must not extend
                // how long older answers are trusted.
                cache.polled_ms = started_ms;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot poll the SQLite revocation store for changes; not caching");
                cache.clear();
                cache.polled_ms = i64::MIN;
            }
        }
    }
}

fn sqlite_error(err: rusqlite::Error) -> StoreError {
    StoreError::unavailable(err)
}

fn to_db(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value)
        .map_err(|_| StoreError::Corrupt(format!("value {value} does not fit SQLite's INTEGER")))
}

fn from_db(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("negative value {value} in the store")))
}

fn now(clock: &dyn Clock) -> u64 {
    u64::try_from(clock.unix_now()).unwrap_or(0)
}

fn initialise(path: &Path, clock: &dyn Clock) -> Result<Connection, OpenError> {
    let sqlite = |source| OpenError::Sqlite { path: path.to_path_buf(), source };
    let mut conn = Connection::open(path).map_err(sqlite)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sqlite)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(sqlite)?;
    conn.pragma_update(None, "synchronous", "FULL").map_err(sqlite)?;
    conn.execute_batch(SCHEMA).map_err(sqlite)?;
    ensure_generation(&mut conn, clock)
        .map_err(|source| OpenError::Generation { path: path.to_path_buf(), source })?;
    Ok(conn)
}

/// Reads the generation, starting a new one if the file has none.
fn ensure_generation(conn: &mut Connection, clock: &dyn Clock) -> Result<u64, StoreError> {
    let tx = conn.transaction().map_err(sqlite_error)?;
    let existing: Option<i64> = tx
        .query_row("SELECT value FROM meta WHERE key = 'generation'", [], |row| row.get(0))
        .optional()
        .map_err(sqlite_error)?;
    let generation = match existing {
        Some(value) => from_db(value)?,
        None => {
            let started = now(clock);
            tx.execute("INSERT INTO meta (key, value) VALUES ('generation', ?1)", params![to_db(started)?])
                .map_err(sqlite_error)?;
            tracing::warn!(
                generation = started,
                "revocation store has no generation (new or lost file): starting one; every session issued until now is refused"
            );
            started
        }
    };
    tx.commit().map_err(sqlite_error)?;
    Ok(generation)
}

fn read_state(
    conn: &mut Connection,
    clock: &dyn Clock,
    user_id: Option<&str>,
    session: &[u8; 16],
) -> Result<RevocationState, StoreError> {
    let row: (Option<i64>, bool, Option<i64>, Option<i64>) = conn
        .prepare_cached(
            "SELECT
                (SELECT epoch FROM user_epochs WHERE user_id = ?1),
                EXISTS (SELECT 1 FROM denied_sessions WHERE session_id = ?2),
                (SELECT value FROM meta WHERE key = 'revoked_through'),
                (SELECT value FROM meta WHERE key = 'generation')",
        )
        .and_then(|mut statement| {
            statement.query_row(params![user_id, session.as_slice()], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
        })
        .map_err(sqlite_error)?;
    let (epoch, session_revoked, revoked_through, generation) = row;
    let generation = match generation {
        Some(generation) => from_db(generation)?,
        // The rows were deleted under us: treat it as lost data.
        None => ensure_generation(conn, clock)?,
    };
    let revoked_through = revoked_through.map(from_db).transpose()?.unwrap_or(0);
    Ok(RevocationState {
        user_epoch: if user_id.is_some() { epoch.map(from_db).transpose()?.unwrap_or(0) } else { 0 },
        session_revoked,
        revoked_through: revoked_through.max(generation),
    })
}

impl RevocationStore for SqliteStore {
    fn state(
        &self,
        user_id: Option<&str>,
        session: SessionId,
    ) -> impl Future<Output = Result<RevocationState, StoreError>> + Send {
        let store = self.clone();
        let user_id = user_id.map(str::to_owned);
        async move {
            let version = match store.cached(user_id.as_deref(), &session) {
                Ok(state) => return Ok(state),
                Err(version) => version,
            };
            let task_user = user_id.clone();
            let state = store
                .run(move |conn, clock| read_state(conn, clock, task_user.as_deref(), session.as_bytes()))
                .await?;
            store.remember(user_id.as_deref(), &session, state, version);
            Ok(state)
        }
    }

    fn user_epoch(&self, user_id: &str) -> impl Future<Output = Result<u64, StoreError>> + Send {
        let user_id = user_id.to_owned();
        self.run(move |conn, _| {
            let epoch: Option<i64> = conn
                .query_row("SELECT epoch FROM user_epochs WHERE user_id = ?1", [&user_id], |row| row.get(0))
                .optional()
                .map_err(sqlite_error)?;
            epoch.map(from_db).transpose().map(|e| e.unwrap_or(0))
        })
    }

    fn revoke_user(&self, user_id: &str) -> impl Future<Output = Result<u64, StoreError>> + Send {
        let user_id = user_id.to_owned();
        self.write(move |conn, _| {
            let epoch: i64 = conn
                .query_row(
                    "INSERT INTO user_epochs (user_id, epoch) VALUES (?1, 1)
                     ON CONFLICT (user_id) DO UPDATE SET epoch = epoch + 1
                     RETURNING epoch",
                    [&user_id],
                    |row| row.get(0),
                )
                .map_err(sqlite_error)?;
            from_db(epoch)
        })
    }

    fn revoke_session(
        &self,
        session: SessionId,
        expires_at: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.write(move |conn, clock| {
            let tx = conn.transaction().map_err(sqlite_error)?;
            // Entries past their expiry protect nothing: the token is refused as expired.
            tx.execute("DELETE FROM denied_sessions WHERE expires_at <= ?1", [to_db(now(clock))?])
                .map_err(sqlite_error)?;
            tx.execute(
                "INSERT INTO denied_sessions (session_id, expires_at) VALUES (?1, ?2)
                 ON CONFLICT (session_id) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)",
                params![session.as_bytes().as_slice(), to_db(expires_at.min(i64::MAX as u64))?],
            )
            .map_err(sqlite_error)?;
            tx.commit().map_err(sqlite_error)
        })
    }

    fn revoke_all(&self, issued_through: u64) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.write(move |conn, _| {
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('revoked_through', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
                [to_db(issued_through)?],
            )
            .map(|_| ())
            .map_err(sqlite_error)
        })
    }
}
