//! [`SqliteStore`] and how to open it.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::Duration;

use sealed_session::{
    BoxFuture, Clock, CorruptKind, LoginState, RevocationState, RevocationStore, SessionId, SessionRecord,
    SessionRegistry, StateCache, StoreError, SystemClock,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::ConnectOptions as _;

use crate::error::SqliteOpenError;
use crate::schema::{self, Durability};
use crate::watch::{self, FileId, StoreFiles, Watch};

/// No cached answer is used longer than this after its read began.
const CACHE_TTL: Duration = Duration::from_secs(1);

/// How long a statement waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a call waits for its answer by default
/// ([`SqliteStore::with_timeout`]).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long (ms) a revocation's checkpoint waits for readers of an older
/// snapshot ([`SqliteStore::checkpoint`]): the store's own reads take
/// microseconds.
const CHECKPOINT_WAIT_MS: u64 = 200;

/// How long (ms) after a checkpoint that waited in vain for a reader no
/// checkpoint waits again ([`SqliteStore::checkpoint`]).
const CHECKPOINT_WAIT_AGAIN_MS: i64 = 1000;

/// How to open a [`SqliteStore`] on a file of its own: the file, whether to
/// create it, the clock. (With the application's pool, use
/// [`SqliteStore::with_pool`].)
///
/// ```no_run
/// use sealed_session_sqlite::SqliteOptions;
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let store = SqliteOptions::new("/var/lib/myapp/revocations.sqlite3").create_if_missing(true).open().await?;
/// # Ok(())
/// # }
/// ```
#[must_use = "call open() to get a store"]
pub struct SqliteOptions {
    path: PathBuf,
    create: bool,
    existing_only: bool,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for SqliteOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteOptions")
            .field("path", &self.path)
            .field("create", &self.create)
            .field("existing_only", &self.existing_only)
            .finish()
    }
}

impl SqliteOptions {
    /// Options for the file at `path`: open it only if it exists, on the
    /// system clock.
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            create: false,
            existing_only: false,
            clock: Arc::new(SystemClock),
        }
    }

    /// Options from a URL: `sqlite:PATH`, or `sqlite:PATH?create=true` to
    /// create the file if it is missing. `sqlite:///ABSOLUTE` names the
    /// absolute path; `sqlite://` before anything else is refused, as it
    /// is read two ways (sqlx takes `sqlite://data/r.sqlite3` for the
    /// relative `data/r.sqlite3`, a path for `//data/r.sqlite3`, which is
    /// `/data/r.sqlite3`): write `sqlite:data/r.sqlite3` or
    /// `sqlite:/data/r.sqlite3`.
    ///
    /// # Errors
    /// [`SqliteOpenError::UrlTwoSlashes`] for `sqlite://` before a relative
    /// path; [`SqliteOpenError::Url`] for anything else, and for a path
    /// that SQLite would not take for a file (`:memory:`, which keeps
    /// nothing).
    pub fn from_url(url: &str) -> Result<Self, SqliteOpenError> {
        let rest = url.strip_prefix("sqlite:").ok_or(SqliteOpenError::Url)?;
        let rest = match rest.strip_prefix("//") {
            Some(absolute) if absolute.starts_with('/') => absolute,
            Some(_) => return Err(SqliteOpenError::UrlTwoSlashes),
            None => rest,
        };
        let (path, create) = match rest.split_once('?') {
            None => (rest, false),
            Some((path, "create=true")) => (path, true),
            Some((path, "create=false")) => (path, false),
            Some(_) => return Err(SqliteOpenError::Url),
        };
        if path.is_empty() || path.starts_with(':') {
            return Err(SqliteOpenError::Url);
        }
        Ok(Self::new(path).create_if_missing(create))
    }

    /// Whether to create the file (and a new generation) if it does not
    /// exist; by default a missing file is an error, so that a mistyped path
    /// never starts an empty store.
    pub fn create_if_missing(mut self, create: bool) -> Self {
        self.create = create;
        self
    }

    /// Open only a store a server has set up (the file holds a
    /// generation), and write nothing to a file that does not
    /// ([`SqliteOpenError::NotInUse`]; a missing file stays missing): for
    /// tools that act on the servers' store, where a new empty one means a
    /// wrong path. By default false.
    pub fn existing_only(mut self, existing_only: bool) -> Self {
        self.existing_only = existing_only;
        self
    }

    /// The clock that dates generations, expires denylist entries and ages
    /// cache entries; by default the system clock.
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Opens the store. Needs a tokio runtime.
    ///
    /// # Errors
    /// [`SqliteOpenError`]: the file is missing (and not to be created),
    /// every local user may write it or its directory
    /// ([`SqliteOpenError::OthersMayWrite`]), it cannot be opened, cannot be
    /// made durable, or has no readable generation.
    pub async fn open(self) -> Result<SqliteStore, SqliteOpenError> {
        let Self { path, create, existing_only, clock } = self;
        tokio::runtime::Handle::try_current().map_err(|_| SqliteOpenError::Runtime)?;
        // A path is a path: a `file:` URI could carry immutable=1, which
        // would hide other processes' revocations.
        if path.to_str().is_some_and(|p| p.starts_with("file:")) {
            return Err(SqliteOpenError::Url);
        }
        if (!create || existing_only) && !path.exists() {
            return Err(SqliteOpenError::Missing { path });
        }
        if existing_only {
            match has_generation(&path).await {
                Ok(true) => {}
                Ok(false) => return Err(SqliteOpenError::NotInUse { path }),
                Err(source) => return Err(SqliteOpenError::Sqlite { path, source }),
            }
        }
        if create {
            create_private(&path).map_err(|source| SqliteOpenError::Io { path: path.clone(), source })?;
        }
        // Which file the store opens: one moved over the path before the
        // store watches it (below) would leave the pool on the old one.
        let opened = FileId::of(&path).ok();
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|source| SqliteOpenError::Sqlite { path: path.clone(), source })?;
        SqliteStore::start(pool, Arc::new(clock), opened).await
    }
}

/// Creates the file at `path`, empty, for its owner and group (less the
/// umask) and never for other users, unless it exists: the registry keeps
/// user IDs and browsers in it, and SQLite gives its `-wal` and `-shm`
/// files the database's mode. Left to SQLite, it would be readable by every
/// local user (0644 under the usual umask); the group keeps what the umask
/// gives it, for a CLI run as another user of the group. A symbolic link
/// to a file that does not exist is refused: SQLite would create the file
/// it names with the umask's mode. Any other failure is SQLite's to report
/// when it opens the file.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let _ = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o660).open(path);
    if path.is_symlink() && !path.exists() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "a symbolic link to a file that does not exist: create the store where the link points, or \
             remove the link (created through it, the file would be readable by every local user)",
        ));
    }
    Ok(())
}

/// The file, its `-wal` or `-shm` file (whoever writes those writes
/// commits, or hides them from readers), or the directory it is in (where
/// a file can be moved over it), if every local user may write it: world-
/// writable, or the directory without the sticky bit. Links are followed,
/// as SQLite follows them.
fn writable_by_others(path: &Path) -> std::io::Result<Option<std::path::PathBuf>> {
    use std::os::unix::fs::PermissionsExt as _;
    let file = std::fs::canonicalize(path)?;
    let beside = |suffix: &str| {
        let mut name = file.clone().into_os_string();
        name.push(suffix);
        std::path::PathBuf::from(name)
    };
    for part in [file.clone(), beside("-wal"), beside("-shm")] {
        match std::fs::metadata(&part) {
            Ok(meta) if meta.permissions().mode() & 0o002 != 0 => return Ok(Some(part)),
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && part != file => {}
            Err(err) => return Err(err),
        }
    }
    let Some(dir) = file.parent() else { return Ok(None) };
    let mode = std::fs::metadata(dir)?.permissions().mode();
    Ok((mode & 0o002 != 0 && mode & 0o1000 == 0).then(|| dir.to_owned()))
}

/// Whether the file at `path` is a store a server has set up: it holds a
/// generation. Read through a read-only connection, which changes nothing
/// (the store's own would set WAL mode); a file that cannot be read as a
/// database is an error, one without the table or row is no.
async fn has_generation(path: &Path) -> Result<bool, sqlx::Error> {
    let options = SqliteConnectOptions::new().filename(path).read_only(true).busy_timeout(BUSY_TIMEOUT);
    let mut conn = sqlx::ConnectOptions::connect(&options).await?;
    let generation: Result<Option<i64>, _> =
        sqlx::query_scalar(schema::GENERATION).fetch_optional(&mut conn).await;
    let _ = sqlx::Connection::close(conn).await;
    match generation {
        Ok(found) => Ok(found.is_some()),
        Err(err) if err.as_database_error().is_some_and(|db| db.message().starts_with("no such table")) => {
            Ok(false)
        }
        Err(err) => Err(err),
    }
}

/// What the clones of a store share: the pool, and what watches the file.
struct Shared {
    pool: SqlitePool,
    watch: Arc<Watch>,
    /// When (Unix ms) the last `FULL` checkpoint that could not finish, or
    /// the one waiting now, began; `i64::MIN` if none.
    full_checkpoint_waited_ms: std::sync::atomic::AtomicI64,
}

/// A revocation store in a SQLite file. Clones share one pool, one read
/// cache and one poller.
#[derive(Clone)]
pub struct SqliteStore {
    shared: Arc<Shared>,
    timeout: Duration,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.shared.watch.path())
            .field("fault", &self.shared.watch.fault())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The store was used outside a tokio runtime.
#[derive(Debug, thiserror::Error)]
#[error("the SQLite store must be used inside a tokio runtime")]
struct NoRuntime;

impl SqliteStore {
    /// Opens the existing store at `path`, on the system clock.
    ///
    /// # Errors
    /// [`SqliteOpenError`]; [`SqliteOpenError::Missing`] if there is no file.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, SqliteOpenError> {
        SqliteOptions::new(path).open().await
    }

    /// Opens the store at `path`, creating it if it is missing.
    ///
    /// # Errors
    /// As [`SqliteStore::open`], except for the missing file.
    pub async fn open_or_create(path: impl AsRef<Path>) -> Result<Self, SqliteOpenError> {
        SqliteOptions::new(path).create_if_missing(true).open().await
    }

    /// Opens the store a URL names: `sqlite:PATH` (which must exist) or
    /// `sqlite:PATH?create=true`.
    ///
    /// # Errors
    /// [`SqliteOpenError::Url`] for another form, or as [`SqliteOptions::open`].
    pub async fn open_url(url: &str) -> Result<Self, SqliteOpenError> {
        SqliteOptions::from_url(url)?.open().await
    }

    /// Uses the application's own pool: the store's tables
    /// (`sealed_session_*`) go into its database file. The pool's
    /// connections must use WAL and `synchronous = FULL`
    /// (`SqliteConnectOptions::journal_mode(SqliteJournalMode::Wal)` and
    /// `.synchronous(SqliteSynchronous::Full)`); the store checks, and opens
    /// one connection of its own (with the pool's options) to watch for other
    /// processes' changes. Keep every connection at `FULL` while the store
    /// runs: it reads again the setting of each connection it writes a
    /// revocation on, but SQLite's own checkpoints run on whichever
    /// connection commits, and one below `FULL` does not sync what it copies
    /// into the file. The store watches the file the pool's path names from
    /// the time it opens: a connection the pool opened earlier on a file
    /// since replaced goes unnoticed, so open the pool right before the
    /// store ([`SqliteOptions::open`] checks this for its own pool).
    ///
    /// # Errors
    /// [`SqliteOpenError::NotDurable`], or as [`SqliteOptions::open`].
    pub async fn with_pool(pool: SqlitePool) -> Result<Self, SqliteOpenError> {
        Self::with_pool_and_clock(pool, SystemClock).await
    }

    /// [`SqliteStore::with_pool`] with a clock (which dates generations,
    /// expires denylist entries and ages cache entries).
    ///
    /// # Errors
    /// As [`SqliteStore::with_pool`].
    pub async fn with_pool_and_clock(
        pool: SqlitePool,
        clock: impl Clock + 'static,
    ) -> Result<Self, SqliteOpenError> {
        Self::start(pool, Arc::new(clock), None).await
    }

    /// Sets the store up on `pool`, and watches the files at the pool's
    /// path from then on; if the pool was opened on the file `opened`, the
    /// path must still name it.
    async fn start(
        pool: SqlitePool,
        clock: Arc<dyn Clock>,
        opened: Option<FileId>,
    ) -> Result<Self, SqliteOpenError> {
        tokio::runtime::Handle::try_current().map_err(|_| SqliteOpenError::Runtime)?;
        let options = pool.connect_options();
        let path = options.get_filename().to_path_buf();
        let sqlite = |source| SqliteOpenError::Sqlite { path: path.clone(), source };
        let durability = Durability::read(&pool).await.map_err(sqlite)?;
        if !durability.is_durable() {
            return Err(SqliteOpenError::NotDurable {
                path,
                journal_mode: durability.journal_mode,
                synchronous: durability.synchronous,
            });
        }
        match writable_by_others(&path) {
            Ok(None) => {}
            Ok(Some(open_to_all)) => {
                return Err(SqliteOpenError::OthersMayWrite { store: path, path: open_to_all })
            }
            Err(source) => return Err(SqliteOpenError::Io { path, source }),
        }
        let generation = |source| SqliteOpenError::Generation { path: path.clone(), source };
        if let Some(cutoff) = schema::create_tables(&pool, &*clock).await.map_err(generation)? {
            tracing::warn!(
                cutoff,
                "a revocation table of the SQLite store was gone (dropped: lost revocations) and is created \
                 again; every session issued until now is refused"
            );
        }
        schema::start_generation(&pool, &*clock).await.map_err(generation)?;
        // The watcher's connection stays open as long as the store: the
        // `-wal` and `-shm` files exist (and keep their identity) until then.
        let mut watcher = (*options).clone().connect().await.map_err(sqlite)?;
        sqlx::query("SELECT count(*) FROM sealed_session_meta")
            .execute(&mut watcher)
            .await
            .map_err(sqlite)?;
        let files =
            StoreFiles::of(&path).map_err(|source| SqliteOpenError::Io { path: path.clone(), source })?;
        if opened.is_some_and(|opened| opened != files.database()) {
            return Err(SqliteOpenError::Replaced { path });
        }
        let watch = Arc::new(Watch::new(path, files, clock, StateCache::new(CACHE_TTL)));
        tokio::spawn(watch::poll(Arc::downgrade(&watch), watcher));
        Ok(Self {
            shared: Arc::new(Shared { pool, watch, full_checkpoint_waited_ms: i64::MIN.into() }),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// How long each call waits for its answer before it fails closed with
    /// [`StoreError::Timeout`]; by default 1 s. Without it a check could wait
    /// for a free connection of the pool for sqlx's acquire timeout (30 s),
    /// and a revocation for another process's write lock for the busy timeout
    /// (5 s). A revocation whose caller timed out still runs to its end on a
    /// task of its own, so it may take effect after the error: a timeout
    /// does not say it did not happen. Retrying is safe (a user's epoch
    /// counts once more, a denylist entry is kept, a cutoff stays), but
    /// `revoke_session_once` then answers `false`, as for a session ended
    /// meanwhile. The timeout covers the revocation's checkpoint, which
    /// waits for a connection and up to 200 ms for readers of an older
    /// snapshot. A zero timeout fails every call (revocations still run to
    /// their end).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use sealed_session_sqlite::SqliteStore;
    ///
    /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = SqliteStore::open("/var/lib/myapp/revocations.sqlite3").await?.with_timeout(Duration::from_millis(500));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The file this store uses.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.shared.watch.path()
    }

    /// The generation: when this file was initialised (Unix seconds).
    ///
    /// # Errors
    /// [`StoreError`] if the file cannot be read or has no generation.
    pub async fn generation(&self) -> Result<u64, StoreError> {
        self.bounded(schema::generation(&self.shared.pool))
            .await?
            .ok_or_else(|| StoreError::Corrupt(CorruptKind::NoGeneration))
    }

    /// The journal mode and synchronous setting of the store's own
    /// connections, as SQLite reports them (`wal` and `FULL`).
    ///
    /// # Errors
    /// [`StoreError`] if SQLite cannot be asked.
    pub async fn durability(&self) -> Result<Durability, StoreError> {
        self.bounded(async { Durability::read(&self.shared.pool).await.map_err(schema::sqlite_error) }).await
    }

    /// Runs `work` between two checks that the path still names the file:
    /// an answer or a write that may have gone to a deleted or replaced file
    /// is an error. Outside a tokio runtime it fails instead of letting sqlx
    /// panic.
    async fn run<R>(&self, work: impl Future<Output = Result<R, StoreError>>) -> Result<R, StoreError> {
        tokio::runtime::Handle::try_current().map_err(|_| StoreError::unavailable(NoRuntime))?;
        self.shared.watch.check_file()?;
        let result = work.await;
        self.shared.watch.check_file()?;
        result
    }

    /// [`SqliteStore::run`] within the call's timeout.
    async fn bounded<R>(&self, work: impl Future<Output = Result<R, StoreError>>) -> Result<R, StoreError> {
        self.within_timeout(self.run(work)).await
    }

    /// Waits for `call` up to the timeout. Outside a tokio runtime it fails
    /// instead of letting tokio's timer panic.
    async fn within_timeout<R>(
        &self,
        call: impl Future<Output = Result<R, StoreError>>,
    ) -> Result<R, StoreError> {
        tokio::runtime::Handle::try_current().map_err(|_| StoreError::unavailable(NoRuntime))?;
        tokio::time::timeout(self.timeout, call).await.unwrap_or(Err(StoreError::Timeout(self.timeout)))
    }

    /// Runs a revocation to completion on a task of its own (a caller who
    /// stops waiting cannot leave it half done), copies it from the
    /// write-ahead log into the database file ([`SqliteStore::checkpoint`]),
    /// then empties the cache, also on failure (the write may have
    /// committed). The caller waits up to the timeout; the task runs on.
    async fn write<R: Send + 'static>(
        self,
        work: impl Future<Output = Result<R, StoreError>> + Send + 'static,
    ) -> Result<R, StoreError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| StoreError::unavailable(NoRuntime))?;
        let store = self.clone();
        let task = runtime.spawn(async move {
            let result = store.run(work).await;
            store.shared.watch.cache.clear();
            if result.is_ok() {
                // Checked like the write: a file replaced meanwhile is found.
                let checked = store.run(async {
                    store.checkpoint().await;
                    Ok(())
                });
                let _found_later = checked.await;
            }
            result
        });
        self.within_timeout(async { task.await.map_err(StoreError::unavailable)? }).await
    }

    /// Copies the write-ahead log into the database file (and syncs it), so
    /// that a revocation lives in the file itself, not only in its `-wal`:
    /// a copy of the file alone, or a `-wal` lost while no server runs,
    /// keeps it. A `PASSIVE` checkpoint first, which neither waits nor
    /// holds writers back; if a reader of an older snapshot held frames
    /// back, a `FULL` one waits at most [`CHECKPOINT_WAIT_MS`] for it, while
    /// writers wait too, but not while another waits, nor within
    /// [`CHECKPOINT_WAIT_AGAIN_MS`] of one that waited in vain: a reader
    /// that stays (a backup tool may hold a snapshot for long) held every
    /// revocation's write lock for as long, and a burst of them queued
    /// behind each other until checks found no free connection and timed
    /// out. The revocation is durable in the log already
    /// (`synchronous = FULL`), so a checkpoint that cannot finish is only
    /// logged; the next revocation's, or SQLite's own, finishes it. Not on
    /// a connection whose `synchronous` an application sharing the pool
    /// lowered: the copy would not be synced, and the log it empties could
    /// be written over.
    async fn checkpoint(&self) {
        let done = async {
            let mut connection = self.shared.pool.acquire().await?;
            if let Some(lowered) = schema::lowered_synchronous(&mut connection).await? {
                tracing::warn!(
                    "SQLite checkpoint skipped: a connection of the store's pool has synchronous = {}, which \
                     would copy the log into the file without syncing it (the revocation is durable in the \
                     log); keep synchronous = FULL on every connection of a pool the store shares",
                    lowered.synchronous
                );
                return Ok((0, 0, 0));
            }
            let passive: (i64, i64, i64) =
                sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&mut *connection).await?;
            let (_, log, copied) = passive;
            let (waiting, now_ms) =
                (&self.shared.full_checkpoint_waited_ms, self.shared.watch.clock.unix_millis());
            let last = waiting.load(SeqCst);
            let waited_lately = (0..CHECKPOINT_WAIT_AGAIN_MS).contains(&now_ms.saturating_sub(last));
            // Claimed before it waits: revocations at the same time do not
            // wait too.
            if log == copied
                || waited_lately
                || waiting.compare_exchange(last, now_ms, SeqCst, SeqCst).is_err()
            {
                return Ok((i64::from(log != copied), log, copied));
            }
            let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout").fetch_one(&mut *connection).await?;
            let wait = format!("PRAGMA busy_timeout = {CHECKPOINT_WAIT_MS}");
            sqlx::query(sqlx::AssertSqlSafe(wait)).execute(&mut *connection).await?;
            let done: Result<(i64, i64, i64), sqlx::Error> =
                sqlx::query_as("PRAGMA wal_checkpoint(FULL)").fetch_one(&mut *connection).await;
            let restore = format!("PRAGMA busy_timeout = {busy}");
            if sqlx::query(sqlx::AssertSqlSafe(restore)).execute(&mut *connection).await.is_err() {
                connection.close_on_drop();
            }
            if matches!(done, Ok((0, _, _))) {
                // Not in vain: the next one may wait too.
                let _ = waiting.compare_exchange(now_ms, i64::MIN, SeqCst, SeqCst);
            }
            done
        };
        match done.await {
            Ok((0, _, _)) => {}
            Ok((_, log, copied)) => tracing::warn!(
                log,
                copied,
                path = %self.shared.watch.path().display(),
                "SQLite could not copy the whole write-ahead log into the database file (a reader is busy); \
                 the revocation is durable in the log"
            ),
            Err(err) => {
                tracing::warn!(%err, "SQLite checkpoint failed; the revocation is durable in the log")
            }
        }
    }

    /// Denylists `session` (with `once`, only if it is not denylisted yet).
    fn deny(
        &self,
        session: SessionId,
        expires_at: u64,
        once: bool,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send + 'static {
        let store = self.clone();
        self.clone().write(async move {
            let clock = &*store.shared.watch.clock;
            schema::revoke_session(&store.shared.pool, clock, session.as_bytes(), expires_at, once).await
        })
    }
}

impl RevocationStore for SqliteStore {
    fn state(
        &self,
        user_id: Option<&str>,
        session: SessionId,
    ) -> impl Future<Output = Result<RevocationState, StoreError>> + Send {
        // The cache is consulted before the future is built, so that a hit
        // allocates nothing and moves no query future around.
        let lookup = self
            .shared
            .watch
            .lookup(user_id, &session)
            .map_err(|ticket| (self.clone(), user_id.map(str::to_owned), ticket));
        async move {
            let (store, user_id, ticket) = match lookup {
                Ok(state) => return Ok(state),
                Err(miss) => miss,
            };
            let shared = &store.shared;
            let user = user_id.as_deref();
            let read = schema::read_state(&shared.pool, &*shared.watch.clock, user, session.as_bytes());
            let state = Box::pin(store.bounded(read)).await?;
            shared.watch.cache.insert(ticket, user, &session, &state);
            Ok(state)
        }
    }

    fn login_state(&self, user_id: &str) -> impl Future<Output = Result<LoginState, StoreError>> + Send {
        let store = self.clone();
        let user_id = user_id.to_owned();
        async move {
            store.bounded(schema::login_state(&store.shared.pool, &*store.shared.watch.clock, &user_id)).await
        }
    }

    fn revoke_user(&self, user_id: &str) -> impl Future<Output = Result<u64, StoreError>> + Send {
        let (store, user_id) = (self.clone(), user_id.to_owned());
        self.clone().write(async move { schema::revoke_user(&store.shared.pool, &user_id).await })
    }

    fn revoke_session(
        &self,
        session: SessionId,
        expires_at: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let denied = self.deny(session, expires_at, false);
        async move { denied.await.map(drop) }
    }

    fn revoke_session_once(
        &self,
        session: SessionId,
        expires_at: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.deny(session, expires_at, true)
    }

    fn revoke_all(&self, issued_through: u64) -> impl Future<Output = Result<u64, StoreError>> + Send {
        let store = self.clone();
        self.clone().write(async move {
            schema::revoke_all(&store.shared.pool, &*store.shared.watch.clock, issued_through).await
        })
    }
}

/// The registry is a table beside the revocations
/// (`sealed_session_sessions`), in the same file.
impl SessionRegistry for SqliteStore {
    fn record<'a>(&'a self, record: &'a SessionRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        let now = schema::now(&*self.shared.watch.clock);
        Box::pin(self.bounded(schema::record_session(&self.shared.pool, record, now)))
    }

    fn remove<'a>(&'a self, user_id: &'a str, id: SessionId) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.bounded(schema::remove_sessions(&self.shared.pool, user_id, Some(&id.as_bytes()[..]))).await
        })
    }

    fn remove_user<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.bounded(schema::remove_sessions(&self.shared.pool, user_id, None)))
    }

    fn list<'a>(
        &'a self,
        user_id: &'a str,
        now: u64,
    ) -> BoxFuture<'a, Result<Vec<SessionRecord>, StoreError>> {
        Box::pin(self.bounded(schema::list_sessions(&self.shared.pool, user_id, now)))
    }
}
