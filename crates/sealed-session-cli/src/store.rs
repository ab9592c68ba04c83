//! A revocation store chosen by URL: `sqlite:PATH` or `redis://HOST:PORT/DB`.

use sealed_session::{RevocationState, RevocationStore, SessionId, StoreError};
use sealed_session_redis::RedisStore;
use sealed_session_sqlite::SqliteStore;

use crate::Failure;

/// The SQLite or the Redis store.
pub(crate) enum AnyStore {
    Sqlite(SqliteStore),
    Redis(RedisStore),
}

impl AnyStore {
    pub(crate) async fn open(url: &str) -> Result<Self, Failure> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite(SqliteStore::open_url(url).await?))
        } else if url.starts_with("redis://") || url.starts_with("rediss://") {
            Ok(Self::Redis(RedisStore::connect(url).await?))
        } else {
            Err(Failure::Config(format!(
                "unknown store URL {url:?}: use sqlite:PATH or redis://HOST:PORT/DB"
            )))
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

    async fn user_epoch(&self, user_id: &str) -> Result<u64, StoreError> {
        match self {
            Self::Sqlite(store) => store.user_epoch(user_id).await,
            Self::Redis(store) => store.user_epoch(user_id).await,
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

    async fn revoke_all(&self, issued_through: u64) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(store) => store.revoke_all(issued_through).await,
            Self::Redis(store) => store.revoke_all(issued_through).await,
        }
    }
}
