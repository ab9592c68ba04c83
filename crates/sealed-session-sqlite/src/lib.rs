//! A durable [`RevocationStore`](sealed_session::RevocationStore) in one SQLite file: the embedded default
//! for a single server.
//!
//! * Every revocation is committed (WAL mode, `synchronous = FULL`) before
//!   its future resolves, so a revocation that returned `Ok` survives a
//!   crash or `kill -9` of the process.
//! * The file keeps a *generation*: the time it was initialised. A missing
//!   or new, empty file starts a new generation, and every session issued at or
//!   before it is refused, so losing the file never brings a revoked session
//!   back. The event is logged with `tracing` at `warn`. A table of
//!   revocations dropped from the file fails every check, and every write
//!   to it (closed), while the store runs; the next store to open the file
//!   creates it again and logs everyone out.
//! * Checks are answered from a read cache when they can. A revocation
//!   through this store clears it before the call returns. Several
//!   processes may share the file (a server and an operator's tool, say):
//!   the store asks SQLite every [`CACHE_POLL_INTERVAL`] (25 ms) whether
//!   another connection changed the file (`PRAGMA data_version`) and clears
//!   the cache if so, so a revocation made elsewhere is enforced here within
//!   about 25 ms. The cache is used only while those polls (on a thread of
//!   the store's own) succeed and keep up, the last one begun less than
//!   250 ms ago (the bound on a machine too busy to run them on time);
//!   otherwise every check reads the file.
//! * Every call waits for its answer up to a timeout (1 s by default,
//!   [`SqliteStore::with_timeout`]), then fails closed with
//!   [`StoreError::Timeout`](sealed_session::StoreError::Timeout): a pool
//!   whose connections are all busy, or another process holding the write
//!   lock, delays a request by no more than that.
//! * Unix only: the file's identity is its device and inode.
//! * It runs on sqlx: each connection works on a thread of its own, never on
//!   the async threads. Give it a file of its own ([`SqliteOptions`]), or the
//!   application's own `SqlitePool` ([`SqliteStore::with_pool`]: its tables
//!   are named `sealed_session_*`); either way the connections must use WAL
//!   and `synchronous = FULL`, which the store reads back and insists on,
//!   at start and on the connection of every revocation (a connection of a
//!   shared pool lowered later refuses revocations with
//!   [`StoreError::Untrusted`](sealed_session::StoreError::Untrusted)).
//!   Outside a tokio runtime every call fails (closed) instead of panicking.
//! * The store notices when its path no longer names the file it opened
//!   (deleted, or replaced by another file), or the `-wal` or `-shm` file
//!   beside it is no longer the one SQLite opened (the log holds commits not
//!   yet in the database): from then on every call fails
//!   with [`StoreError::Untrusted`](sealed_session::StoreError::Untrusted)
//!   until the store is reopened, since revocations written through the path
//!   would not be seen here. It checks before and after every read or write
//!   that goes to the file, and every [`CACHE_POLL_INTERVAL`].
//! * A missing file is an error unless creating it is asked for
//!   ([`SqliteOptions::create_if_missing`], `sqlite:PATH?create=true`), so a
//!   mistyped path never starts an empty store.
//! * Restoring an *older copy* of the file (a backup, a VM snapshot) rolls
//!   revocations back without changing the generation: after such a restore,
//!   also log everyone out (`Verifier::logout_all`).
//!
//! ```no_run
//! use sealed_session::{Keyring, Sealer, Verifier};
//! use sealed_session_sqlite::SqliteStore;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let store = SqliteStore::open_or_create("/var/lib/myapp/revocations.sqlite3").await?;
//! let verifier = Verifier::new(Sealer::builder(Keyring::load("keyring.toml")?).build()?, store);
//! verifier.logout_everywhere("alice").await?;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod schema;
mod store;
mod watch;

pub use error::SqliteOpenError;
pub use schema::Durability;
pub use store::{SqliteOptions, SqliteStore};
pub use watch::CACHE_POLL_INTERVAL;
