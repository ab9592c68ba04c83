//! [`SqliteStore`] and how to open it.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use rusqlite::Connection;
use sealed_session::{
    Clock, LoginState, RevocationState, RevocationStore, SessionId, StateCache, StoreError, SystemClock,
};

use crate::error::{FileReplaced, SqliteOpenError};
use crate::schema::{self, Durability};
use crate::watch::{self, FileId};

/// No cached answer is older than this.
const CACHE_TTL: Duration = Duration::from_secs(1);

/// How to open a [`SqliteStore`]: the file, whether to create it, the clock.
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
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for SqliteOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteOptions").field("path", &self.path).field("create", &self.create).finish()
    }
}

impl SqliteOptions {
    /// Options for the file at `path`: open it only if it exists, on the
    /// system clock.
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self { path: path.as_ref().to_path_buf(), create: false, clock: Arc::new(SystemClock) }
    }

    /// Options from a URL: `sqlite:PATH`, or `sqlite:PATH?create=true` to
    /// create the file if it is missing.
    ///
    /// # Errors
    /// [`SqliteOpenError::Url`] for anything else.
    pub fn from_url(url: &str) -> Result<Self, SqliteOpenError> {
        let rest = url.strip_prefix("sqlite:").ok_or(SqliteOpenError::Url)?;
        let (path, create) = match rest.split_once('?') {
            None => (rest, false),
            Some((path, "create=true")) => (path, true),
            Some((path, "create=false")) => (path, false),
            Some(_) => return Err(SqliteOpenError::Url),
        };
        if path.is_empty() {
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

    /// The clock that dates generations, expires denylist entries and ages
    /// cache entries; by default the system clock.
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Opens the store. Needs a tokio runtime with a blocking pool.
    ///
    /// # Errors
    /// [`SqliteOpenError`]: the file is missing (and not to be created),
    /// cannot be opened, cannot be made durable, or has no readable generation.
    pub async fn open(self) -> Result<SqliteStore, SqliteOpenError> {
        let Self { path, create, clock } = self;
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|err| SqliteOpenError::Runtime(err.to_string()))?;
        let (task_path, task_clock) = (path.clone(), clock.clone());
        let (conn, file) = runtime
            .spawn_blocking(move || {
                let conn = schema::initialise(&task_path, &*task_clock, create)?;
                let file = FileId::of(&task_path)
                    .map_err(|source| SqliteOpenError::Io { path: task_path.clone(), source })?;
                Ok::<_, SqliteOpenError>((conn, file))
            })
            .await
            .map_err(|err| SqliteOpenError::Runtime(err.to_string()))??;
        let shared = Arc::new(Shared {
            conn: Mutex::new(conn),
            cache: StateCache::new(CACHE_TTL),
            path,
            file,
            clock,
            polled_ms: AtomicI64::new(i64::MIN),
            fault: OnceLock::new(),
        });
        let watched = Arc::downgrade(&shared);
        // A thread, not a task: it needs no timer in the caller's runtime.
        let poller = std::thread::Builder::new()
            .name("sqlite-revocation-poll".into())
            .spawn(move || watch::poll(&watched));
        if let Err(err) = poller {
            tracing::warn!(error = %err, "cannot start the SQLite change poller; every check reads the file");
        }
        Ok(SqliteStore { shared })
    }
}

/// What the clones of a store share.
pub(crate) struct Shared {
    pub(crate) conn: Mutex<Connection>,
    pub(crate) cache: StateCache,
    path: PathBuf,
    /// The file opened, to notice it being deleted or replaced.
    file: FileId,
    pub(crate) clock: Arc<dyn Clock>,
    /// When the last successful poll began (store clock, ms).
    pub(crate) polled_ms: AtomicI64,
    /// Set once the file is found deleted or replaced: every call fails.
    fault: OnceLock<FileReplaced>,
}

impl Shared {
    /// Fails, for good, once the path no longer names the file opened.
    pub(crate) fn check_file(&self) -> Result<(), StoreError> {
        if let Some(fault) = self.fault.get() {
            return Err(fault.to_store_error());
        }
        let what = match FileId::of(&self.path) {
            Ok(id) if id == self.file => return Ok(()),
            Ok(_) => "replaced",
            // Deleted, or no longer reachable: either way not the file opened.
            Err(_) => "deleted or made unreadable",
        };
        let fault = self.fault.get_or_init(|| {
            let fault = FileReplaced { path: self.path.clone(), what };
            tracing::error!(error = %fault, "SQLite revocation store refuses every session until reopened");
            fault
        });
        self.polled_ms.store(i64::MIN, Ordering::SeqCst);
        self.cache.clear();
        Err(fault.to_store_error())
    }
}

/// A revocation store in a SQLite file. Clones share one connection, one
/// read cache and one poller.
#[derive(Clone)]
pub struct SqliteStore {
    shared: Arc<Shared>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.shared.path)
            .field("fault", &self.shared.fault.get())
            .finish_non_exhaustive()
    }
}

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

    /// The file this store uses.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The generation: when this file was initialised (Unix seconds).
    ///
    /// # Errors
    /// [`StoreError`] if the file cannot be read.
    pub async fn generation(&self) -> Result<u64, StoreError> {
        self.run(|conn, clock| schema::ensure_generation(conn, clock)).await
    }

    /// The journal mode and synchronous setting of the store's own
    /// connection, as SQLite reports them (`wal` and `FULL`).
    ///
    /// # Errors
    /// [`StoreError`] if SQLite cannot be asked.
    pub async fn durability(&self) -> Result<Durability, StoreError> {
        self.run(|conn, _| Durability::read(conn).map_err(schema::sqlite_error)).await
    }

    /// Runs a revocation, then clears the cache (also on failure: the write
    /// may have committed).
    fn write<R: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection, &dyn Clock) -> Result<R, StoreError> + Send + 'static,
    ) -> impl Future<Output = Result<R, StoreError>> + Send {
        let shared = Arc::clone(&self.shared);
        // Cleared on the blocking thread, once the write is done, so that a
        // caller who stops waiting cannot leave the cache stale.
        self.run(move |conn, clock| {
            let result = work(conn, clock);
            shared.cache.clear();
            result
        })
    }

    /// Runs `work` on the blocking pool with the connection, between two
    /// checks that the path still names the file: an answer or a write that
    /// may have gone to a deleted or replaced file is an error.
    fn run<R: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection, &dyn Clock) -> Result<R, StoreError> + Send + 'static,
    ) -> impl Future<Output = Result<R, StoreError>> + Send {
        let shared = Arc::clone(&self.shared);
        async move {
            shared.check_file()?;
            let runtime = tokio::runtime::Handle::try_current().map_err(StoreError::unavailable)?;
            let task = Arc::clone(&shared);
            let result = runtime
                .spawn_blocking(move || {
                    // A panic elsewhere while holding the lock leaves the
                    // connection usable: SQLite rolls back unfinished transactions.
                    let mut conn = task.conn.lock().unwrap_or_else(PoisonError::into_inner);
                    work(&mut conn, &*task.clock)
                })
                .await
                .map_err(StoreError::unavailable)?;
            shared.check_file()?;
            result
        }
    }
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
            let shared = &store.shared;
            let now_ms = shared.clock.unix_millis();
            if watch::poll_is_fresh(now_ms, shared.polled_ms.load(Ordering::SeqCst)) {
                if let Some(state) = shared.cache.get(user_id.as_deref(), &session, now_ms) {
                    return Ok(state);
                }
            }
            let ticket = shared.cache.ticket(now_ms);
            let task_user = user_id.clone();
            let state = store
                .run(move |conn, clock| {
                    schema::read_state(conn, clock, task_user.as_deref(), session.as_bytes())
                })
                .await?;
            shared.cache.insert(ticket, user_id.as_deref(), &session, &state);
            Ok(state)
        }
    }

    fn login_state(&self, user_id: &str) -> impl Future<Output = Result<LoginState, StoreError>> + Send {
        let user_id = user_id.to_owned();
        self.run(move |conn, clock| schema::login_state(conn, clock, &user_id))
    }

    fn revoke_user(&self, user_id: &str) -> impl Future<Output = Result<u64, StoreError>> + Send {
        let user_id = user_id.to_owned();
        self.write(move |conn, _| schema::revoke_user(conn, &user_id))
    }

    fn revoke_session(
        &self,
        session: SessionId,
        expires_at: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.write(move |conn, clock| schema::revoke_session(conn, clock, session.as_bytes(), expires_at))
    }

    fn revoke_all(&self, issued_through: u64) -> impl Future<Output = Result<u64, StoreError>> + Send {
        self.write(move |conn, clock| schema::revoke_all(conn, clock, issued_through))
    }
}
