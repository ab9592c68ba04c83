//! Revocation: ending sessions before they expire, with a few bytes of
//! server state per revoked user instead of a session store.
//!
//! * Each user has a **revocation epoch**, a counter that starts at 0. A
//!   session carries the epoch that was current when it began. Bumping the
//!   epoch ([`Verifier::logout_everywhere`]) ends every session of the user,
//!   on every server that shares the store.
//! * A single session can be put on a **denylist** until its absolute expiry
//!   ([`Verifier::logout`]); entries disappear on their own after that.
//! * **Everyone** can be logged out at once ([`Verifier::logout_all`]): every
//!   session issued at or before that second (by the store's clock, where it
//!   has one) is refused. A login in that same second waits for the next one
//!   (under a second) instead of being handed a session the cutoff refuses;
//!   the same holds after a new store generation.
//!
//! A [`Verifier`] opens a token and checks it against a [`RevocationStore`]
//! in one call, so an integration cannot forget the check.
//!
//! # Data loss never resurrects a session
//!
//! A store that loses its data (a deleted file, a flushed Redis) would forget
//! revocations. Stores therefore keep a *generation*: the time they were
//! initialised. A store that finds no generation starts a new one, and every
//! session issued at or before it is refused: everyone signs in again. A
//! token whose epoch is *ahead* of the store's is also refused, as
//! [`VerifyError::StoreFault`]: only lost data can produce it (a cached
//! epoch behind the token's is read again from the store first).

mod cache;
mod dynamic;
mod feed;
mod memory;
mod prehashed;
pub mod registry;
mod setters;
pub mod sql;
mod verified;
mod verifier;

use std::fmt;
use std::future::Future;

use crate::error::{OpenError, RandomError};
use crate::session::{Session, SessionId};

pub use cache::{CacheTicket, Invalidation, StateCache, MAX_CACHE_TTL};
pub use dynamic::{BoxFuture, DynRevocationStore, SharedStore};
pub use feed::{Backoff, Feed, FeedConnection, Heartbeat, Quiet};
pub use memory::{next_cutoff, MemoryStore};
pub use verified::Verified;
pub use verifier::{LoginTicket, Verifier, MAX_LOGIN_WAIT, MAX_USER_ID_LEN};

/// What a store knows that bears on one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RevocationState {
    /// The user's current epoch; 0 if the user was never revoked or the
    /// session has no user.
    pub user_epoch: u64,
    /// Whether this session ID is on the denylist.
    pub session_revoked: bool,
    /// Sessions issued at or before this Unix time are revoked: the later of
    /// the last [`RevocationStore::revoke_all`] and the store's generation.
    /// 0 revokes nothing.
    pub revoked_through: u64,
}

/// A revocation store could not answer, could not be trusted, or refused a
/// request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store did not answer in time.
    #[error("revocation store did not answer within {0:?}; check that it is running and reachable")]
    Timeout(std::time::Duration),
    /// The store could not be reached or refused the request.
    #[error("revocation store is unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store answers, but its answers cannot be trusted (a Redis that
    /// may evict keys, a database file replaced under the server): every
    /// session is refused until the operator fixes the cause.
    #[error("revocation store cannot be trusted, refusing sessions: {0}")]
    Untrusted(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store holds data this release cannot read, or data that
    /// vanishes as it is written.
    #[error("revocation store holds unreadable data: {0}")]
    Corrupt(CorruptKind),
    /// A denylist entry was asked to end at or before the store's current
    /// time: it would revoke nothing, so it is refused rather than reported
    /// as a revocation.
    #[error(
        "denylist entry would end at {expires_at}, not after the store's time {now}: nothing would be \
         revoked; pass the session's absolute expiry"
    )]
    ExpiryNotInFuture {
        /// The requested end of the entry (Unix seconds).
        expires_at: u64,
        /// The store's time (Unix seconds; the earlier of its own clock and
        /// the one it was given, where it has a clock of its own).
        now: u64,
    },
    /// A user ID longer than [`MAX_USER_ID_LEN`] bytes, given to log out:
    /// no session of it can exist (a login refuses one), so the store is
    /// not asked (such an ID would be a key or a row of that size).
    #[error(
        "a user ID of {len} bytes is longer than the {MAX_USER_ID_LEN} a session may carry: no session of it \
         exists to log out; pass the user ID the sessions were started with"
    )]
    UserIdTooLong {
        /// The ID's length in bytes.
        len: usize,
    },
    /// The write reached the primary but too few replicas acknowledged it
    /// in time: a failover could lose it, so it is not reported as done.
    /// Retry once the replicas are back.
    #[error(
        "only {acknowledged} of the {required} required replicas acknowledged the revocation in time; \
         it may be lost on failover: retry, and check the replicas"
    )]
    Replication {
        /// Replicas that acknowledged the write.
        acknowledged: u64,
        /// Replicas required.
        required: u64,
    },
}

/// What was wrong with a store's data ([`StoreError::Corrupt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CorruptKind {
    /// A time, epoch or cutoff read back negative (the store's columns are
    /// signed): written by something other than this library.
    #[error("negative value {0} where a time or counter belongs; was the store written by hand?")]
    NegativeValue(i64),
    /// The store's generation was written and then could not be read back:
    /// something deletes the store's rows as they are written.
    #[error("the store's generation disappears as soon as it is written; is something deleting its rows?")]
    GenerationVanishes,
    /// The store has no generation yet; it starts one at its next check.
    #[error("the store has no generation yet; it starts one at its next check")]
    NoGeneration,
    /// A key holds a value of another type, or one that does not read as
    /// the number it should be (a Redis key written by something else).
    #[error("a key of the store holds a value of the wrong type or one that is no number; was the store written by hand?")]
    UnreadableValue,
    /// A session registry record does not read back as one (a session ID
    /// that is not 16 bytes, a field that does not parse).
    #[error("a session registry record is not one this library wrote; was the store written by hand?")]
    BadRecord,
}

impl StoreError {
    /// Wraps any error as [`StoreError::Unavailable`], keeping it as the source.
    pub fn unavailable(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable(Box::new(err))
    }

    /// Wraps any error as [`StoreError::Untrusted`], keeping it as the source.
    pub fn untrusted(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Untrusted(Box::new(err))
    }
}

/// What a login needs from the store, read from the store itself (never
/// from a cache).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoginState {
    /// The user's current epoch, sealed into the new session.
    pub user_epoch: u64,
    /// The store's cutoff: sessions issued at or before it are refused
    /// (see [`RevocationState::revoked_through`]).
    pub revoked_through: u64,
}

/// Where revocations are kept: in memory, SQLite, Redis, or your own backend.
///
/// Implementations must make every method atomic and durable by the time
/// its future resolves with `Ok`, must never report a revocation as absent
/// because of lost data (see the module docs on generations), and must fail
/// (closed) rather than answer from data they cannot trust. Run the
/// `conformance` module (feature `conformance`) against yours.
pub trait RevocationStore: Send + Sync {
    /// Everything the check of one session needs, in one call. May be
    /// answered from a cache, within the store's documented staleness bound.
    fn state(
        &self,
        user_id: Option<&str>,
        session: SessionId,
    ) -> impl Future<Output = Result<RevocationState, StoreError>> + Send;

    /// The user's current epoch and the store's cutoff, to start a session
    /// at login. Read from the store itself, never from a cache.
    fn login_state(&self, user_id: &str) -> impl Future<Output = Result<LoginState, StoreError>> + Send;

    /// Increments the user's epoch atomically and returns the new value:
    /// every session the user has now is revoked.
    fn revoke_user(&self, user_id: &str) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Puts one session on the denylist until `expires_at` (Unix seconds;
    /// pass the session's absolute expiry plus the clock leeway), after which
    /// the entry may be dropped.
    ///
    /// An existing entry is never shortened: the later of the two expiries
    /// is kept, atomically. An `expires_at` at or before the store's current
    /// time is refused with [`StoreError::ExpiryNotInFuture`]. A store with a
    /// clock of its own (Redis, PostgreSQL) counts by the earlier of that
    /// clock and the one it was given, and keeps the entry until
    /// `expires_at` by the latter: a store clock that runs ahead of the
    /// servers' must not end an entry whose session still opens for them.
    fn revoke_session(
        &self,
        session: SessionId,
        expires_at: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Puts one session on the denylist until `expires_at` only if no
    /// unexpired entry for it is there yet, and says whether this call put it
    /// there: `Ok(true)` the first time, `Ok(false)` when the session was
    /// already denylisted (the entry is then left as it was). This is what
    /// makes a one-time token (a DBSC challenge) single-use: of any number of
    /// concurrent calls for one ID, exactly one gets `true`, so the check and
    /// the write must be one atomic step in the store, never a read followed
    /// by [`revoke_session`](Self::revoke_session).
    ///
    /// An `expires_at` at or before the store's current time is refused with
    /// [`StoreError::ExpiryNotInFuture`], as by `revoke_session`. A call that
    /// fails (a timeout, a replica that did not acknowledge) may still have
    /// written the entry, and a retry then says `false`: callers refuse what
    /// the entry guards rather than retry into a `true`.
    fn revoke_session_once(
        &self,
        session: SessionId,
        expires_at: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Revokes every session issued at or before the new cutoff and returns
    /// it: the later of the current cutoff and the store's own time
    /// ([`next_cutoff`]). `issued_through` (Unix seconds, the caller's time)
    /// dates the cutoff only for a store with no clock of its own; a store
    /// with one never lets it push the cutoff past its time. Never moves the
    /// cutoff earlier.
    fn revoke_all(&self, issued_through: u64) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// Implements [`RevocationStore`] for a pointer to a store by forwarding
/// every call to the store it points to.
macro_rules! forward_store {
    ($(#[$doc:meta])* $pointer:ty) => {
        $(#[$doc])*
        impl<S: RevocationStore + ?Sized> RevocationStore for $pointer {
            fn state(
                &self,
                user_id: Option<&str>,
                session: SessionId,
            ) -> impl Future<Output = Result<RevocationState, StoreError>> + Send {
                (**self).state(user_id, session)
            }

            fn login_state(&self, user_id: &str) -> impl Future<Output = Result<LoginState, StoreError>> + Send {
                (**self).login_state(user_id)
            }

            fn revoke_user(&self, user_id: &str) -> impl Future<Output = Result<u64, StoreError>> + Send {
                (**self).revoke_user(user_id)
            }

            fn revoke_session(
                &self,
                session: SessionId,
                expires_at: u64,
            ) -> impl Future<Output = Result<(), StoreError>> + Send {
                (**self).revoke_session(session, expires_at)
            }

            fn revoke_session_once(
                &self,
                session: SessionId,
                expires_at: u64,
            ) -> impl Future<Output = Result<bool, StoreError>> + Send {
                (**self).revoke_session_once(session, expires_at)
            }

            fn revoke_all(&self, issued_through: u64) -> impl Future<Output = Result<u64, StoreError>> + Send {
                (**self).revoke_all(issued_through)
            }
        }
    };
}

forward_store! {
    /// A shared store is a store, so that one store can serve a verifier and
    /// an administration task (or several verifiers) at once.
    std::sync::Arc<S>
}

forward_store! {
    /// A store behind a reference is a store, so that one can be lent to a
    /// [`Verifier`].
    &S
}

/// Why a session that authenticated was refused by the revocation check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Revocation {
    /// The user logged out everywhere (their epoch moved past the session's).
    User,
    /// This session was logged out.
    Session,
    /// Everyone was logged out, or the store started a new generation.
    All,
}

impl fmt::Display for Revocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Revocation::User => "the user logged out everywhere",
            Revocation::Session => "the session was logged out",
            Revocation::All => "all sessions issued before it were revoked",
        })
    }
}

/// Why [`Verifier::open`] refused a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The token did not open (see [`OpenError`]).
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The token is valid but its session was revoked.
    #[error("session revoked: {0}")]
    Revoked(Revocation),
    /// The token carries an epoch later than the store's: the store lost
    /// data. Refused; investigate the store.
    #[error(
        "session epoch {token} is ahead of the store's {store}: the revocation store lost data; refusing"
    )]
    StoreFault {
        /// The epoch in the token.
        token: u64,
        /// The epoch the store reported.
        store: u64,
    },
    /// The store could not be asked; the token is refused (fail closed).
    #[error("cannot check revocation, refusing the session: {0}")]
    Store(#[from] StoreError),
}

impl VerifyError {
    /// A short, stable name for the refusal, for audit logs and metrics
    /// labels: [`OpenError::code`] for a token that did not open, else
    /// `"revoked_user"`, `"revoked_session"`, `"revoked_all"`,
    /// `"store_fault"` or `"store_unavailable"`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::Open(err) => err.code(),
            VerifyError::Revoked(Revocation::User) => "revoked_user",
            VerifyError::Revoked(Revocation::Session) => "revoked_session",
            VerifyError::Revoked(Revocation::All) => "revoked_all",
            VerifyError::StoreFault { .. } => "store_fault",
            VerifyError::Store(_) => "store_unavailable",
        }
    }
}

/// Why [`Verifier::login`] or [`Verifier::renew_id`] could not start a
/// session or give it a new ID.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// The store could not be read, or the old ID could not be denylisted.
    /// Nothing was started or changed; try again.
    #[error("the revocation store could not be used, no session was started or renewed: {0}")]
    Store(#[from] StoreError),
    /// The store's revocation cutoff is not yet past on this server's
    /// clock, and will not be within [`MAX_LOGIN_WAIT`]: a session issued
    /// now would be refused. Check the clocks (NTP) of the servers and the
    /// store.
    #[error(
        "the revocation store's cutoff {cutoff} is ahead of this server's clock ({now}); a session issued \
         now would be refused: check the clocks of the servers and the store"
    )]
    CutoffAhead {
        /// The store's cutoff (Unix seconds).
        cutoff: u64,
        /// This server's time (Unix seconds).
        now: u64,
    },
    /// A new session ID could not be drawn.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// The session has no user, so there are no other sessions of its user
    /// to end: sign in first.
    #[error("the session has no user: sign in first")]
    NoUser,
    /// The session was logged out (by another request or server, or an
    /// operator) after it was opened and before it could get a new ID or
    /// epoch: it has ended, and is not carried on. Sign in again.
    #[error("the session was logged out while this request ran, and was not renewed: sign in again")]
    Ended,
    /// The user was logged out everywhere, or everyone was, after the
    /// [`LoginTicket`](crate::LoginTicket) was read, that is while their
    /// credential was being checked (a password changed meanwhile, say): no
    /// session was started. Check the credential again.
    #[error(
        "the user was logged out after the credential was checked, and no session was started: sign in again"
    )]
    RevokedSinceCheck,
    /// The [`LoginTicket`](crate::LoginTicket) was read for another user ID
    /// than the login's: a mistake of the application's (read it with the
    /// ID the login will use, looked up before the credential check). No
    /// session was started.
    #[error("the login ticket was read for another user ID than the login's: read it with the same ID")]
    TicketOfAnotherUser,
    /// The session was never sealed or opened, so it has no times (a
    /// `Session` as [`Verifier::login`] returned it, kept after sealing a
    /// copy): nothing tells whether a logout of everyone has ended it, and
    /// sealing it again would date it anew (as [`Verifier::login`] or
    /// [`Verifier::start`] returns one). Use the session that
    /// [`Verifier::issue`] or [`Verifier::open`] returns.
    #[error("the session has no times (never sealed or opened): use the session Verifier::issue or Verifier::open returns")]
    Unsealed,
    /// The user ID is longer than [`MAX_USER_ID_LEN`] bytes: no session
    /// was started. Identify users by a short stable key (a database ID),
    /// not by free text.
    #[error(
        "a user ID of {len} bytes is longer than the {MAX_USER_ID_LEN} allowed: identify users by a short \
         stable key (a database ID)"
    )]
    UserIdTooLong {
        /// The user ID's length in bytes.
        len: usize,
    },
}

/// The store's state for the user's session `id`, sealed at `epoch`, as
/// [`RevocationStore::state`] answers it (perhaps from its cache), with the
/// user's epoch read again from the store itself
/// ([`RevocationStore::login_state`]) when the answer's is behind `epoch`:
/// a cache that keeps a user's epoch across session IDs (a third-party
/// store's may; [`StateCache`] reads it again with each new session ID),
/// filled before a logout on another server whose message has not arrived
/// yet, is behind the sessions that logout started, and that is no lost
/// data. Only a store whose own epoch is behind makes the session a
/// [`VerifyError::StoreFault`].
pub(crate) async fn state_at_epoch<S: RevocationStore + ?Sized>(
    store: &S,
    user_id: Option<&str>,
    id: SessionId,
    epoch: u64,
) -> Result<RevocationState, StoreError> {
    let state = crate::metrics::store_call("state", store.state(user_id, id)).await?;
    match user_id {
        Some(user_id) if epoch > state.user_epoch => {
            let fresh = crate::metrics::store_call("login_state", store.login_state(user_id)).await?;
            Ok(RevocationState { user_epoch: fresh.user_epoch, ..state })
        }
        _ => Ok(state),
    }
}

/// Checks a session that opened against a store's state: the rule every
/// [`Verifier`] applies, for integrations that fetch the state themselves.
/// A session never sealed (fresh from a login) has no issue time yet, so
/// no cutoff of a logout of everyone covers it (its first seal dates it);
/// its epoch and ID are judged as any session's.
///
/// # Errors
/// [`VerifyError::Revoked`] or [`VerifyError::StoreFault`].
pub fn check_revocation<T>(session: &Session<T>, state: &RevocationState) -> Result<(), VerifyError> {
    if session.times().is_some_and(|t| t.issued_at <= state.revoked_through) {
        return Err(VerifyError::Revoked(Revocation::All));
    }
    if session.user_id().is_some() {
        if session.epoch() < state.user_epoch {
            return Err(VerifyError::Revoked(Revocation::User));
        }
        if session.epoch() > state.user_epoch {
            return Err(VerifyError::StoreFault { token: session.epoch(), store: state.user_epoch });
        }
    }
    if state.session_revoked {
        return Err(VerifyError::Revoked(Revocation::Session));
    }
    Ok(())
}
