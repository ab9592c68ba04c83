//! A [`RevocationStore`](sealed_session::RevocationStore) in PostgreSQL, on
//! the application's own sqlx pool, with a local cache that `LISTEN` /
//! `NOTIFY` keeps fresh.
//!
//! * **Tables of its own.** `PREFIX_user_epochs`, `PREFIX_denied`,
//!   `PREFIX_meta` and the session registry's `PREFIX_sessions` (prefix
//!   `sealed_session` by default), created at connect
//!   (under an advisory lock) unless [`PostgresOptions::create_tables`] is
//!   off, in which case run [`PostgresStore::migration_sql`] in your
//!   migrations.
//! * **Atomic, and dated by the database.** Epochs are bumped with an
//!   upsert; a denylist entry is never shortened and an expiry at or before
//!   the earlier of the database's time (`clock_timestamp()`) and the
//!   store's clock is refused; a single-use
//!   entry (`revoke_session_once`) is one `INSERT … ON CONFLICT`, so that
//!   of concurrent writers exactly one is told it wrote it; "log everyone
//!   out" raises a cutoff that never moves back, dated by the database.
//! * **Fast.** Each server caches what it read. Every revocation notifies
//!   the channel `PREFIX_revocations` in the same statement (so the message
//!   goes out when the write commits), and every server drops what it names.
//!   The server that revokes drops its own entries before the call returns.
//! * **Bounded staleness.** The cache is used only while the `LISTEN`
//!   connection is up, and is emptied whenever it (re)connects; one that
//!   stays quiet for 5 s is pinged through its own channel, and taken for
//!   lost if the ping does not come back within 3 s (a connection a
//!   firewall forgot never closes by itself). No answer is
//!   used more than [`PostgresOptions::cache_ttl`] (1 s) after the read that
//!   produced it began, so a lost notification keeps a revoked session
//!   alive at most that long.
//! * **Durable.** The store refuses to start on a connection that runs with
//!   `fsync` or `synchronous_commit` off, under which a crash of the
//!   database can lose acknowledged revocations
//!   ([`PostgresSetupError::NotDurable`]), or with a table of its own
//!   `UNLOGGED`, which a crash empties ([`PostgresSetupError::Unlogged`]). Every revocation also raises
//!   `synchronous_commit` from `off` to `on` for its own transaction, so a
//!   connection the application turns `off` later stays durable for it.
//!   `fsync` and whether the tables are logged are read
//!   with every check that reads the database and by every
//!   revocation: turned off while the store runs, every check and login
//!   fails closed
//!   ([`StoreError::Untrusted`](sealed_session::StoreError::Untrusted)) until
//!   it is on again, and so does every revocation (it is written, but a
//!   crash could lose it); both for one more second once it reads `on`
//!   again (a connection may not have applied the reload yet).
//! * **Fail closed.** A statement that fails or takes longer than
//!   [`PostgresOptions::timeout`] (250 ms) fails the check; outside a tokio
//!   runtime every call fails instead of panicking.
//! * **Data loss never resurrects.** A generation row is written when the
//!   tables are first used. If it is lost (the meta table emptied or
//!   dropped, a fresh database), the store writes a new one, and every
//!   session issued at or before it is refused. A dropped table of
//!   revocations, found by a running store or by the next one to start, is
//!   created again with a new cutoff: everyone signs in again. What the
//!   store cannot tell from no revocations at all: rows deleted from those
//!   tables alone (a `TRUNCATE` of one of them), a table that the
//!   application's own migrations (with [`PostgresOptions::create_tables`]
//!   off) create again before a store starts, and an *older backup*
//!   restored. After any of these, log everyone out.
//!
//! ```no_run
//! use sealed_session::{Keyring, Sealer, SystemClock, Verifier};
//! use sealed_session_postgres::{PostgresOptions, PostgresStore};
//!
//! # async fn example(pool: sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
//! // The application's pool; the store opens one more connection, with its settings, for LISTEN.
//! let store = PostgresStore::with_pool(pool, PostgresOptions::default(), SystemClock).await?;
//! let verifier = Verifier::new(Sealer::builder(Keyring::load("keyring.toml")?).build()?, store);
//! verifier.logout_everywhere("alice").await?;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod listener;
mod schema;
mod store;

pub use error::PostgresSetupError;
pub use store::{PostgresOptions, PostgresStore};
