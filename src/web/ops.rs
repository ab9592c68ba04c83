//! What a request's session handle needs from the store, with the store's
//! type erased: the handle names no store type, and no data type either.

use super::config::{Settings, WebConfig};
use crate::revocation::{BoxFuture, RevocationStore};
use crate::{LoginError, LoginState, LoginTicket, RevocationState, SessionId, StoreError};

/// The store operations of one configuration, and its settings.
pub(crate) trait Ops: Send + Sync {
    fn settings(&self) -> &Settings;
    /// The user's current epoch for a new session and the store's
    /// cutoff, once the cutoff has passed (see
    /// [`Verifier::login`](crate::Verifier::login)); with a ticket, as the
    /// store said then (see
    /// [`Verifier::login_checked`](crate::Verifier::login_checked)).
    fn login_state<'a>(
        &'a self,
        user_id: &'a str,
        ticket: Option<LoginTicket>,
    ) -> BoxFuture<'a, Result<LoginState, LoginError>>;
    /// What the store says of the user now (see
    /// [`Verifier::login_ticket`](crate::Verifier::login_ticket)).
    fn login_ticket<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<LoginTicket, LoginError>>;
    /// Waits until a new anonymous session `id` would not be refused by the
    /// store's cutoff (see [`Verifier::start`](crate::Verifier::start)).
    fn admit(&self, id: SessionId) -> BoxFuture<'_, Result<(), LoginError>>;
    /// Denylists `id` until `until`.
    fn revoke_session(&self, id: SessionId, until: u64) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Denylists `id` until `until` unless it is there already; whether
    /// this call put it there.
    fn revoke_session_once(&self, id: SessionId, until: u64) -> BoxFuture<'_, Result<bool, StoreError>>;
    /// Bumps the user's epoch; returns the new one.
    fn revoke_user<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<u64, StoreError>>;
    /// Whether session `id` carries on after its user's epoch was raised
    /// from `session_epoch` to `new_epoch` (see `Verifier::carries_on`).
    fn carries_on(
        &self,
        id: SessionId,
        session_epoch: u64,
        new_epoch: u64,
        until: u64,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;
    /// The revocation state of the user's session `id`, sealed at `epoch`
    /// (see `revocation::state_at_epoch`).
    fn state<'a>(
        &'a self,
        user_id: &'a str,
        id: SessionId,
        epoch: u64,
    ) -> BoxFuture<'a, Result<RevocationState, StoreError>>;
}

impl<S: RevocationStore> Ops for WebConfig<S> {
    fn settings(&self) -> &Settings {
        &self.settings
    }

    fn login_state<'a>(
        &'a self,
        user_id: &'a str,
        ticket: Option<LoginTicket>,
    ) -> BoxFuture<'a, Result<LoginState, LoginError>> {
        Box::pin(async move { self.verifier.login_state(user_id, ticket.as_ref()).await })
    }

    fn login_ticket<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<LoginTicket, LoginError>> {
        Box::pin(self.verifier.login_ticket(user_id))
    }

    fn admit(&self, id: SessionId) -> BoxFuture<'_, Result<(), LoginError>> {
        Box::pin(self.verifier.admit(id))
    }

    fn revoke_session(&self, id: SessionId, until: u64) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.verifier.deny(id, until))
    }

    fn revoke_session_once(&self, id: SessionId, until: u64) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(self.verifier.deny_once(id, until))
    }

    fn revoke_user<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(self.verifier.logout_everywhere(user_id))
    }

    fn carries_on(
        &self,
        id: SessionId,
        session_epoch: u64,
        new_epoch: u64,
        until: u64,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(self.verifier.carries_on(id, session_epoch, new_epoch, until))
    }

    fn state<'a>(
        &'a self,
        user_id: &'a str,
        id: SessionId,
        epoch: u64,
    ) -> BoxFuture<'a, Result<RevocationState, StoreError>> {
        Box::pin(crate::revocation::state_at_epoch(self.verifier.store(), Some(user_id), id, epoch))
    }
}
