//! [`DynRevocationStore`]: any store behind `Arc<dyn …>`, for code that
//! chooses its store at run time (from a URL, say) or must not be generic.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::{LoginState, RevocationState, RevocationStore, StoreError};
use crate::session::SessionId;

/// A boxed, sendable future, as [`DynRevocationStore`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A store chosen at run time: `Arc<dyn DynRevocationStore>`.
pub type SharedStore = Arc<dyn DynRevocationStore>;

/// [`RevocationStore`] in a form that can be a trait object. Every store is
/// one (a blanket implementation boxes its futures), and
/// `Arc<dyn DynRevocationStore>` ([`SharedStore`]) is a [`RevocationStore`]
/// again, so a [`Verifier`](crate::Verifier) or an integration can hold any
/// store without naming its type.
///
/// ```
/// use std::sync::Arc;
/// use sealed_session::{Keyring, MemoryStore, Sealer, SharedStore, Verifier};
///
/// let store: SharedStore = Arc::new(MemoryStore::new());
/// let verifier = Verifier::new(Sealer::builder(Keyring::generate()?).build()?, store);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Each call allocates its future; generic code that knows its store pays
/// nothing.
pub trait DynRevocationStore: Send + Sync {
    /// [`RevocationStore::state`].
    fn state_boxed<'a>(
        &'a self,
        user_id: Option<&'a str>,
        session: SessionId,
    ) -> BoxFuture<'a, Result<RevocationState, StoreError>>;

    /// [`RevocationStore::login_state`].
    fn login_state_boxed<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<LoginState, StoreError>>;

    /// [`RevocationStore::revoke_user`].
    fn revoke_user_boxed<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// [`RevocationStore::revoke_session`].
    fn revoke_session_boxed(
        &self,
        session: SessionId,
        expires_at: u64,
    ) -> BoxFuture<'_, Result<(), StoreError>>;

    /// [`RevocationStore::revoke_session_once`].
    fn revoke_session_once_boxed(
        &self,
        session: SessionId,
        expires_at: u64,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// [`RevocationStore::revoke_all`].
    fn revoke_all_boxed(&self, issued_through: u64) -> BoxFuture<'_, Result<u64, StoreError>>;
}

impl<S: RevocationStore> DynRevocationStore for S {
    fn state_boxed<'a>(
        &'a self,
        user_id: Option<&'a str>,
        session: SessionId,
    ) -> BoxFuture<'a, Result<RevocationState, StoreError>> {
        Box::pin(self.state(user_id, session))
    }

    fn login_state_boxed<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<LoginState, StoreError>> {
        Box::pin(self.login_state(user_id))
    }

    fn revoke_user_boxed<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(self.revoke_user(user_id))
    }

    fn revoke_session_boxed(
        &self,
        session: SessionId,
        expires_at: u64,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.revoke_session(session, expires_at))
    }

    fn revoke_session_once_boxed(
        &self,
        session: SessionId,
        expires_at: u64,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(self.revoke_session_once(session, expires_at))
    }

    fn revoke_all_boxed(&self, issued_through: u64) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(self.revoke_all(issued_through))
    }
}

/// A store behind a trait object is a store (and so is `Arc` of one). The
/// user ID is copied into the future, which then borrows only the store.
impl RevocationStore for dyn DynRevocationStore {
    fn state(
        &self,
        user_id: Option<&str>,
        session: SessionId,
    ) -> impl Future<Output = Result<RevocationState, StoreError>> + Send {
        let user_id = user_id.map(str::to_owned);
        async move { self.state_boxed(user_id.as_deref(), session).await }
    }

    fn login_state(&self, user_id: &str) -> impl Future<Output = Result<LoginState, StoreError>> + Send {
        let user_id = user_id.to_owned();
        async move { self.login_state_boxed(&user_id).await }
    }

    fn revoke_user(&self, user_id: &str) -> impl Future<Output = Result<u64, StoreError>> + Send {
        let user_id = user_id.to_owned();
        async move { self.revoke_user_boxed(&user_id).await }
    }

    fn revoke_session(
        &self,
        session: SessionId,
        expires_at: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.revoke_session_boxed(session, expires_at)
    }

    fn revoke_session_once(
        &self,
        session: SessionId,
        expires_at: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.revoke_session_once_boxed(session, expires_at)
    }

    fn revoke_all(&self, issued_through: u64) -> impl Future<Output = Result<u64, StoreError>> + Send {
        self.revoke_all_boxed(issued_through)
    }
}
