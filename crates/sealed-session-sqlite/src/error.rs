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
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
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
    /// The file could not be made durable the way revocations need
    /// (`journal_mode = WAL`, `synchronous = FULL`).
    #[error(
        "SQLite revocation store {path} runs with journal_mode {journal_mode} and synchronous \
         {synchronous}; it needs WAL and FULL (is the file on a network or read-only file system?)"
    )]
    NotDurable {
        /// The file.
        path: PathBuf,
        /// The journal mode SQLite reported.
        journal_mode: String,
        /// The synchronous setting SQLite reported.
        synchronous: String,
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
    /// The URL is not `sqlite:PATH` or `sqlite:PATH?create=true`.
    #[error(
        "not a SQLite store URL: expected sqlite:PATH or sqlite:PATH?create=true, for example \
         sqlite:/var/lib/app/revocations.sqlite3"
    )]
    Url,
    /// The store's background work could not run.
    #[error("the SQLite store needs a tokio runtime with a blocking pool: {0}")]
    Runtime(String),
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
