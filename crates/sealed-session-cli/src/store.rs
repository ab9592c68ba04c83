//! A revocation store chosen by URL: `sqlite:PATH` or `redis://HOST:PORT/DB`,
//! the `--store` argument of the command-line tool and the demo app.

use sealed_session::{LoginState, RevocationState, RevocationStore, SessionId, StoreError};
use sealed_session_redis::RedisStore;
use sealed_session_sqlite::SqliteStore;

/// The SQLite or the Redis store.
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyStore {
    /// `sqlite:PATH` (`?create=true` to create it).
    Sqlite(SqliteStore),
    /// `redis://…`, `rediss://…` or `redis+sentinel://…`.
    Redis(RedisStore),
}

/// A store URL did not give a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreUrlError {
    /// The URL is neither `sqlite:` nor a Redis URL.
    #[error(
        "unknown store URL {0:?}: use sqlite:PATH, redis://HOST:PORT/DB, rediss://… or redis+sentinel://…"
    )]
    UnknownScheme(String),
    /// The SQLite file could not be opened.
    #[error(transparent)]
    Sqlite(#[from] sealed_session_sqlite::SqliteOpenError),
    /// Redis could not be reached or is not configured for revocations.
    #[error(transparent)]
    Redis(#[from] sealed_session_redis::ConnectError),
}

impl AnyStore {
    /// Opens the store `url` names. Needs a tokio runtime.
    ///
    /// # Errors
    /// [`StoreUrlError`].
    pub async fn open(url: &str) -> Result<Self, StoreUrlError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite(SqliteStore::open_url(url).await?))
        } else if ["redis://", "rediss://", "redis+sentinel://", "rediss+sentinel://"]
            .iter()
            .any(|s| url.starts_with(s))
        {
            Ok(Self::Redis(RedisStore::connect(url).await?))
        } else {
            Err(StoreUrlError::UnknownScheme(url.chars().take(200).collect()))
        }
    }
}

impl RevocationStore for AnyStore {
    async fn state(&self, user_id: Option<&str>, session: SessionId) -> Result<RevocationState, StoreError> {
        match self {
            Self::Sqlite(store) => store.state(user_id, session).await,
            Self::Redis(store) => store.state(user_id, session).await,
        }
    }

    async fn login_state(&self, user_id: &str) -> Result<LoginState, StoreError> {
        match self {
            Self::Sqlite(store) => store.login_state(user_id).await,
            Self::Redis(store) => store.login_state(user_id).await,
        }
    }

    async fn revoke_user(&self, user_id: &str) -> Result<u64, StoreError> {
        match self {
            Self::Sqlite(store) => store.revoke_user(user_id).await,
            Self::Redis(store) => store.revoke_user(user_id).await,
        }
    }

    async fn revoke_session(&self, session: SessionId, expires_at: u64) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(store) => store.revoke_session(session, expires_at).await,
            Self::Redis(store) => store.revoke_session(session, expires_at).await,
        }
    }

    async fn revoke_all(&self, issued_through: u64) -> Result<u64, StoreError> {
        match self {
            Self::Sqlite(store) => store.revoke_all(issued_through).await,
            Self::Redis(store) => store.revoke_all(issued_through).await,
        }
    }
}
