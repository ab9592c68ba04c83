//! A stand-in for a shared store whose cache lags behind (tests of the
//! core and of the web driver).

use sealed_session::{LoginState, MemoryStore, RevocationState, RevocationStore, SessionId, StoreError};

/// A store whose cache keeps a user's epoch for any session ID (as a
/// third-party store may; the built-in caches read the epoch again with
/// each new session ID, so no built-in store can be made to answer so) and
/// has not heard yet of logouts on another server: `state` answers the
/// user's epoch as it was `behind` logouts ago. `login_state`, which every
/// store reads from the store itself, answers it as it is, unless the
/// store `lost` those logouts itself.
pub(crate) struct Unheard {
    pub(crate) store: MemoryStore,
    pub(crate) behind: u64,
    pub(crate) lost: bool,
}

impl RevocationStore for Unheard {
    async fn state(&self, user_id: Option<&str>, session: SessionId) -> Result<RevocationState, StoreError> {
        let mut state = self.store.state(user_id, session).await?;
        state.user_epoch = state.user_epoch.saturating_sub(self.behind);
        Ok(state)
    }

    async fn login_state(&self, user_id: &str) -> Result<LoginState, StoreError> {
        let mut state = self.store.login_state(user_id).await?;
        if self.lost {
            state.user_epoch = state.user_epoch.saturating_sub(self.behind);
        }
        Ok(state)
    }

    async fn revoke_user(&self, user_id: &str) -> Result<u64, StoreError> {
        self.store.revoke_user(user_id).await
    }

    async fn revoke_session(&self, session: SessionId, until: u64) -> Result<(), StoreError> {
        self.store.revoke_session(session, until).await
    }

    async fn revoke_session_once(&self, session: SessionId, until: u64) -> Result<bool, StoreError> {
        self.store.revoke_session_once(session, until).await
    }

    async fn revoke_all(&self, issued_through: u64) -> Result<u64, StoreError> {
        self.store.revoke_all(issued_through).await
    }
}
