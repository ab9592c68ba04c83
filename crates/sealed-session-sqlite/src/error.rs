//! Errors of opening a SQLite store, and the fault that makes an open
//! store refuse every call.

use std::path::PathBuf;

use sealed_session::StoreError;

/// The SQLite store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqliteOpenError {
    /// SQLite refused to open or set up the file.
    #[error("cannot open SQLite revocation store {path}: {source}")]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// SQLite's error, through sqlx.
        #[source]
        source: sqlx::Error,
    },
    /// The file could not be examined.
    #[error("cannot examine SQLite revocation store {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not exist, and creating it was not asked for.
    #[error(
        "SQLite revocation store {path} does not exist; check the path, or create it \
         (sqlite:PATH?create=true, or SqliteOptions::create_if_missing)"
    )]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// [`SqliteOptions::existing_only`](crate::SqliteOptions::existing_only),
    /// and the file holds no store a server has set up.
    #[error(
        "{path} holds no revocation store a server has used (no generation): check the path the servers use"
    )]
    NotInUse {
        /// The file.
        path: PathBuf,
    },
    /// The connection is not durable the way revocations need
    /// (`journal_mode = WAL`, `synchronous = FULL`), or is in memory.
    #[error(
        "SQLite revocation store {path} runs with journal_mode {journal_mode} and synchronous \
         {synchronous}; it needs WAL and FULL (SqliteConnectOptions::journal_mode(Wal) and \
         synchronous(Full) on a pool of your own; a file, not memory)"
    )]
    NotDurable {
        /// The file.
        path: PathBuf,
        /// The journal mode SQLite reported.
        journal_mode: String,
        /// The synchronous setting SQLite reported.
        synchronous: String,
    },
    /// The store's tables could not be created, or its generation could
    /// not be read or written.
    #[error("cannot set up the tables or generation of SQLite revocation store {path}: {source}")]
    Generation {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: StoreError,
    },
    /// The URL is not `sqlite:PATH` or `sqlite:PATH?create=true`, or the
    /// path is a `file:` URI.
    #[error(
        "not a SQLite store URL: expected sqlite:PATH or sqlite:PATH?create=true, for example \
         sqlite:/var/lib/app/revocations.sqlite3 (a path, not a file: URI)"
    )]
    Url,
    /// `sqlite://` before a path that is not absolute, which is read two
    /// ways (sqlx's relative path, or a path beginning `//`, which is
    /// absolute): refused rather than read either way.
    #[error(
        "a sqlite:// URL is read two ways unless an absolute path follows: write sqlite:///var/lib/app/r.sqlite3 \
         for an absolute path, or sqlite:data/r.sqlite3 for one relative to the working directory"
    )]
    UrlTwoSlashes,
    /// Another file was moved over the path while the store was opening
    /// (a restore or a deploy): its first connection holds the file that
    /// was there before, and would go on writing revocations no other
    /// process reads.
    #[error("SQLite revocation store {path} was replaced while the store was opening; open it again")]
    Replaced {
        /// The file.
        path: PathBuf,
    },
    /// There is no tokio runtime to run on.
    #[error("the SQLite store needs a tokio runtime with the time driver enabled")]
    Runtime,
    /// Every local user may write the file, or replace it: it, or the
    /// directory it is in (without the sticky bit), is writable by others
    /// than its owner and group.
    #[error(
        "every local user may write {path}, part of SQLite revocation store {store}: one could delete \
         revocations and bring revoked sessions back; remove the write permission of others (chmod o-w), \
         and keep the store in a directory only its users can write"
    )]
    OthersMayWrite {
        /// The store's file.
        store: PathBuf,
        /// What others may write: the file, or its directory.
        path: PathBuf,
    },
}

/// The file the store opened is no longer the file at its path: another
/// process writing the path would split the store in two.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the SQLite revocation store {path} was {what} while the store was open; revocations written \
     through the path would not be seen here: reopen the store (restart the server)"
)]
pub(crate) struct FileReplaced {
    pub(crate) path: PathBuf,
    pub(crate) what: &'static str,
}

impl FileReplaced {
    pub(crate) fn to_store_error(&self) -> StoreError {
        StoreError::untrusted(self.clone())
    }
}

/// A connection of the pool runs with `synchronous` below `FULL`: an
/// application that shares its pool lowered it after the store started.
/// A revocation acknowledged on it could be lost in a crash.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "a connection of the SQLite revocation store's pool has synchronous = {synchronous} (below FULL): \
     a revocation on it could be lost in a power failure, so it is refused; keep synchronous = FULL on \
     every connection of a pool the store shares"
)]
pub(crate) struct LoweredSynchronous {
    pub(crate) synchronous: &'static str,
}
