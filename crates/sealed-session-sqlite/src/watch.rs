//! Watching the file: other processes' changes (which empty the read
//! cache) and the file itself being deleted or replaced (which makes the
//! store refuse every call).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use sealed_session::{CacheTicket, Clock, RevocationState, SessionId, StateCache, StoreError};
use sqlx::SqliteConnection;

use crate::error::FileReplaced;

/// How often the store asks SQLite whether another connection changed the
/// file, and clears its read cache if so.
pub const CACHE_POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Cached answers are used only while the last successful poll began less
/// than this long ago (milliseconds of the store's clock): if polling stalls,
/// every check reads the file.
pub(crate) const POLL_FRESH_MS: i64 = 250;

/// Whether the cache may answer at `now_ms`, given when the last successful
/// poll began. A poll "in the future" (the clock stepped back) does not count.
pub(crate) fn poll_is_fresh(now_ms: i64, polled_ms: i64) -> bool {
    (0..POLL_FRESH_MS).contains(&now_ms.saturating_sub(polled_ms))
}

/// The files of one store: the database, and the write-ahead log and its
/// shared-memory index, which hold commits not yet copied into the
/// database. Each must stay the file the store opened: another process
/// that finds a new `-wal` or `-shm` (one deleted or replaced under a
/// running store) would not see the revocations in the old one, and would
/// split the store in two as surely as a replaced database file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoreFiles {
    files: [(std::path::PathBuf, FileId); 3],
}

impl StoreFiles {
    /// The identities of the database at `path` and its `-wal` and `-shm`
    /// files, which exist while a connection in WAL mode is open. SQLite
    /// keeps those beside the file a symbolic link leads to; the database
    /// is watched by `path` itself, so that a link pointed elsewhere (where
    /// other processes would open another file) is found too.
    pub(crate) fn of(path: &Path) -> io::Result<Self> {
        let real = std::fs::canonicalize(path)?;
        let with_suffix = |suffix: &str| {
            let mut name = real.as_os_str().to_owned();
            name.push(suffix);
            std::path::PathBuf::from(name)
        };
        let file = |path: std::path::PathBuf| FileId::of(&path).map(|id| (path, id));
        Ok(Self {
            files: [file(path.to_path_buf())?, file(with_suffix("-wal"))?, file(with_suffix("-shm"))?],
        })
    }

    /// Which file the database is.
    pub(crate) fn database(&self) -> FileId {
        let [(_, database), ..] = &self.files;
        *database
    }

    /// The first file that is no longer the one opened, and what became of
    /// it; `None` if every one still is.
    pub(crate) fn changed(&self) -> Option<(&Path, &'static str)> {
        self.files.iter().find_map(|(path, id)| match FileId::of(path) {
            Ok(now) if now == *id => None,
            Ok(_) => Some((path.as_path(), "replaced")),
            // Deleted, or no longer reachable: either way not the file opened.
            Err(_) => Some((path.as_path(), "deleted or made unreadable")),
        })
    }
}

/// Which file a path names: device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId {
    device: u64,
    inode: u64,
}

impl FileId {
    pub(crate) fn of(path: &Path) -> io::Result<Self> {
        use std::os::unix::fs::MetadataExt as _;
        let metadata = std::fs::metadata(path)?;
        Ok(Self { device: metadata.dev(), inode: metadata.ino() })
    }
}

/// What watches the store's file: its identity (and that of its `-wal`
/// and `-shm`), the read cache and when the last poll that keeps it fresh
/// began. The store's checks and its poller share it.
pub(crate) struct Watch {
    /// Answers of checks, used only while polls keep up.
    pub(crate) cache: StateCache,
    /// Ages cache entries and dates the store's writes.
    pub(crate) clock: Arc<dyn Clock>,
    path: PathBuf,
    /// The files opened, to notice one being deleted or replaced.
    files: StoreFiles,
    /// When the last successful poll began (store clock, ms).
    polled_ms: AtomicI64,
    /// Set once a file is found deleted or replaced: every call fails.
    fault: OnceLock<FileReplaced>,
}

impl Watch {
    pub(crate) fn new(path: PathBuf, files: StoreFiles, clock: Arc<dyn Clock>, cache: StateCache) -> Self {
        Self { cache, clock, path, files, polled_ms: AtomicI64::new(i64::MIN), fault: OnceLock::new() }
    }

    /// The database file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// What was found replaced or deleted, if anything was.
    pub(crate) fn fault(&self) -> Option<&FileReplaced> {
        self.fault.get()
    }

    /// Fails, for good, once the path no longer names the file opened (or
    /// its `-wal` or `-shm` changed).
    pub(crate) fn check_file(&self) -> Result<(), StoreError> {
        if let Some(fault) = self.fault.get() {
            return Err(fault.to_store_error());
        }
        let Some((path, what)) = self.files.changed() else { return Ok(()) };
        let fault = self.fault.get_or_init(|| {
            let fault = FileReplaced { path: path.to_path_buf(), what };
            tracing::error!(error = %fault, "SQLite revocation store refuses every session until reopened");
            fault
        });
        self.polled_ms.store(i64::MIN, Ordering::SeqCst);
        self.cache.clear();
        Err(fault.to_store_error())
    }

    /// The cached answer for a check now, while polls keep up; otherwise
    /// the ticket to cache the file's answer with, taken before the read.
    pub(crate) fn lookup(
        &self,
        user_id: Option<&str>,
        session: &SessionId,
    ) -> Result<RevocationState, CacheTicket> {
        let now_ms = self.clock.unix_millis();
        let hit = if poll_is_fresh(now_ms, self.polled_ms.load(Ordering::SeqCst)) {
            self.cache.get(user_id, session, now_ms)
        } else {
            None
        };
        hit.ok_or_else(|| self.cache.ticket(now_ms))
    }
}

/// Polls, on a connection of its own, until the store is dropped or its
/// file is gone. A failed poll leaves the cache unused until one succeeds.
pub(crate) async fn poll(watch: Weak<Watch>, mut conn: SqliteConnection) {
    let mut seen: Option<i64> = None;
    loop {
        tokio::time::sleep(CACHE_POLL_INTERVAL).await;
        let Some(watch) = watch.upgrade() else { return };
        let started_ms = watch.clock.unix_millis();
        if watch.check_file().is_err() {
            // The store refuses every call from now on: nothing left to watch.
            return;
        }
        let version = sqlx::query_scalar::<_, i64>("PRAGMA data_version").fetch_one(&mut conn).await;
        match version {
            Ok(version) => {
                if seen != Some(version) {
                    watch.cache.clear();
                    seen = Some(version);
                }
                // From when the poll began: a slow poll must not extend how
                // long older answers are trusted.
                watch.polled_ms.store(started_ms, Ordering::SeqCst);
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot poll the SQLite revocation store for changes; not caching");
                watch.polled_ms.store(i64::MIN, Ordering::SeqCst);
                watch.cache.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_answers_only_while_the_last_poll_is_recent() {
        assert!(poll_is_fresh(1_000, 1_000));
        assert!(poll_is_fresh(1_249, 1_000));
        assert!(!poll_is_fresh(1_250, 1_000), "a poll 250 ms old is too old");
        assert!(!poll_is_fresh(999, 1_000), "the clock stepped back");
        assert!(!poll_is_fresh(1_000, i64::MIN), "never polled, or the last poll failed");
    }

    #[test]
    fn a_replaced_file_has_another_identity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"a").unwrap();
        let first = FileId::of(&path).unwrap();
        assert_eq!(FileId::of(&path).unwrap(), first);
        let other = dir.path().join("g");
        std::fs::write(&other, b"b").unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert_ne!(FileId::of(&path).unwrap(), first);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(FileId::of(&path).unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}
