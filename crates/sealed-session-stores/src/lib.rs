//! Opens a revocation store from a URL, as a [`SharedStore`]
//! (`Arc<dyn DynRevocationStore>`), so that a program can let its operator
//! choose the store:
//!
//! | URL | store |
//! | --- | --- |
//! | `memory:` | [`MemoryStore`], refusing every session issued before it started |
//! | `sqlite:PATH`, `sqlite:PATH?create=true` | `sealed_session_sqlite::SqliteStore` (feature `sqlite`) |
//! | `postgres://…`, `postgresql://…` | `sealed_session_postgres::PostgresStore` (feature `postgres`) |
//! | `redis://…`, `rediss://…`, `redis+sentinel://…`, `rediss+sentinel://…` | `sealed_session_redis::RedisStore` (feature `redis`) |
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use sealed_session::{Keyring, Sealer, Verifier};
//!
//! let store = sealed_session_stores::open("sqlite:/var/lib/app/revocations.sqlite3?create=true").await?;
//! let verifier = Verifier::new(Sealer::builder(Keyring::load("keyring.toml")?).build()?, store);
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! * `sqlite` (default): `sqlite:` URLs.
//! * `redis` (default): Redis URLs, with TLS and Sentinel.
//! * `postgres` (default): PostgreSQL URLs.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::sync::Arc;

use sealed_session::{MemoryStore, RevocationStore, SessionRegistry, SharedStore};

/// A store URL did not give a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreUrlError {
    /// The URL names no store this build knows.
    #[error(
        "unknown store URL scheme {0:?}: use memory:, sqlite:PATH, postgres://USER@HOST/DB, \
         redis://HOST:PORT/DB, rediss://… or redis+sentinel://HOSTS/SERVICE"
    )]
    UnknownScheme(String),
    /// [`open_existing`] of `memory:`: a store of this process alone.
    #[error("memory: is a new store of this process alone, which no server reads: give the URL of the store the servers use")]
    InProcess,
    /// `memory:` with something after the colon, which it does not take.
    #[error("memory: takes nothing after the colon: give exactly memory:")]
    MemoryWithExtra,
    /// The URL names a store whose feature this build leaves out.
    #[error("this build has no {0} store: enable the `{0}` feature of sealed-session-stores")]
    NotBuilt(&'static str),
    /// The SQLite store could not be opened.
    #[cfg(feature = "sqlite")]
    #[error(transparent)]
    Sqlite(#[from] sealed_session_sqlite::SqliteOpenError),
    /// Redis could not be reached or is not fit for revocations.
    #[cfg(feature = "redis")]
    #[error(transparent)]
    Redis(#[from] sealed_session_redis::ConnectError),
    /// PostgreSQL could not be reached or set up.
    #[cfg(feature = "postgres")]
    #[error(transparent)]
    Postgres(#[from] sealed_session_postgres::PostgresSetupError),
}

/// The scheme of a store URL, without anything that could be a secret:
/// empty unless what comes before the first `:` has a scheme's form (a
/// letter, then letters, digits, `+`, `-` and `.`) and `//` or nothing
/// follows it, so that a string that is no URL (`password=… host=…`,
/// `user:password@host`) is never repeated.
fn scheme(url: &str) -> String {
    let (scheme, rest) = url.split_once(':').unwrap_or(("", ""));
    let formed = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && (rest.is_empty() || rest.starts_with("//") || matches!(scheme, "memory" | "sqlite"));
    if formed {
        scheme.chars().take(32).collect()
    } else {
        String::new()
    }
}

/// Opens the store `url` names. SQLite, PostgreSQL and Redis need a tokio
/// runtime.
///
/// # Errors
/// [`StoreUrlError`]: an unknown scheme, a backend this build leaves out, or
/// the store's own error (which never repeats a password).
pub async fn open(url: &str) -> Result<SharedStore, StoreUrlError> {
    Ok(open_with_registry(url).await?.0)
}

/// Opens the store `url` names only if a server has set it up, and writes
/// nothing to one that no server has (a wrong database number, path or
/// prefix), which is refused: for tools that act on the servers' store,
/// such as the CLI's `revoke`, where a new empty store would take a
/// revocation that reaches no server. `memory:` is refused too
/// ([`StoreUrlError::InProcess`]).
///
/// # Errors
/// As [`open`]; the store's own "not in use" error
/// (`SqliteOpenError::NotInUse`, `ConnectError::NotInUse`,
/// `PostgresSetupError::NotInUse`), or `SqliteOpenError::Missing` for a
/// missing file even with `?create=true`.
pub async fn open_existing(url: &str) -> Result<SharedStore, StoreUrlError> {
    Ok(open_as(url, true).await?.0)
}

/// As [`open`], with the same store as a session registry as well
/// ([`WebConfigBuilder::session_registry`](sealed_session::web::WebConfigBuilder::session_registry)):
/// every store of this crate is one, keeping its records beside its
/// revocations.
///
/// # Errors
/// As [`open`].
pub async fn open_with_registry(url: &str) -> Result<(SharedStore, Arc<dyn SessionRegistry>), StoreUrlError> {
    open_as(url, false).await
}

/// Opens the store `url` names; with `existing_only`, only one a server has
/// set up ([`open_existing`]).
async fn open_as(url: &str, existing_only: bool) -> Result<Both, StoreUrlError> {
    let scheme = scheme(url);
    match scheme.as_str() {
        "memory" if existing_only => Err(StoreUrlError::InProcess),
        "memory" if url == "memory:" => {
            let now =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            Ok(both(MemoryStore::refusing_sessions_before(now)))
        }
        "memory" => Err(StoreUrlError::MemoryWithExtra),
        #[cfg(feature = "sqlite")]
        "sqlite" => {
            let options = sealed_session_sqlite::SqliteOptions::from_url(url)?.existing_only(existing_only);
            Ok(both(options.open().await?))
        }
        #[cfg(feature = "redis")]
        "redis" | "rediss" | "redis+sentinel" | "rediss+sentinel" => {
            let config = sealed_session_redis::RedisConfig::default().with_existing_only(existing_only);
            let store =
                sealed_session_redis::RedisStore::connect_with(url, config, sealed_session::SystemClock);
            Ok(both(store.await?))
        }
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => {
            let options =
                sealed_session_postgres::PostgresOptions::default().with_existing_only(existing_only);
            Ok(both(sealed_session_postgres::PostgresStore::connect_with(url, options).await?))
        }
        _ => Err(not_opened(scheme)),
    }
}

/// Why no arm of [`open_with_registry`] took a URL of `scheme`: a backend
/// this build leaves out, or a scheme no build knows. Lists the same
/// schemes as the arms there: add a new one to both.
fn not_opened(scheme: String) -> StoreUrlError {
    match scheme.as_str() {
        "sqlite" => StoreUrlError::NotBuilt("sqlite"),
        "redis" | "rediss" | "redis+sentinel" | "rediss+sentinel" => StoreUrlError::NotBuilt("redis"),
        "postgres" | "postgresql" => StoreUrlError::NotBuilt("postgres"),
        _ => StoreUrlError::UnknownScheme(scheme),
    }
}

/// A store as both a revocation store and a registry.
type Both = (SharedStore, Arc<dyn SessionRegistry>);

fn both<S: RevocationStore + SessionRegistry + 'static>(store: S) -> Both {
    let store = Arc::new(store);
    (Arc::clone(&store) as SharedStore, store)
}

#[cfg(test)]
mod tests {
    use super::{not_opened, StoreUrlError};

    #[test]
    fn a_known_scheme_this_build_leaves_out_names_its_feature() {
        for (scheme, feature) in [
            ("sqlite", "sqlite"),
            ("rediss+sentinel", "redis"),
            ("redis", "redis"),
            ("postgresql", "postgres"),
        ] {
            let err = not_opened(scheme.to_owned());
            assert!(matches!(err, StoreUrlError::NotBuilt(f) if f == feature), "{scheme}: {err}");
        }
        assert!(matches!(not_opened("mysql".to_owned()), StoreUrlError::UnknownScheme(s) if s == "mysql"));
    }

    /// Only a scheme's form is repeated: never what a string that is no
    /// URL holds before its first `:`.
    #[test]
    fn only_a_scheme_is_repeated() {
        assert_eq!(super::scheme("rediss+sentinel://u:p@h/s"), "rediss+sentinel");
        assert_eq!(super::scheme("mysql://root:pw@db/x"), "mysql");
        assert_eq!(super::scheme("sqlite:/var/lib/r.sqlite3"), "sqlite");
        for not_a_scheme in [
            "password=hunter2 hostaddr=::1",
            "postgres//app:pw@db",
            "app:s3cret@db/x",
            "1abc:",
            ":x",
            "no colon",
        ] {
            assert_eq!(super::scheme(not_a_scheme), "", "{not_a_scheme}");
        }
    }
}
