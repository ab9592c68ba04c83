//! [`Verifier`]: open a token and check it against a store in one call.

use std::future::Future;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use time::OffsetDateTime;

use super::{check_revocation, LoginError, RevocationStore, StoreError, Verified, VerifyError};
use crate::cookie::CookieSpec;
use crate::error::{OpenError, SealError};
use crate::sealer::{opening_time, Opened, Sealer};
use crate::session::Session;
use crate::{metrics, timer};

/// The longest [`Verifier::login`] waits for a revocation cutoff's second
/// to pass (a login in the same second as a global logout or a new store
/// generation waits under a second).
pub const MAX_LOGIN_WAIT: Duration = Duration::from_millis(1500);

/// The longest user ID a login accepts, in bytes: every store can key its
/// epoch by it (PostgreSQL's index entries hold at most about 2.7 KB, and
/// an ID longer could sign in but never be logged out), and a session
/// holding it fits in a cookie.
pub const MAX_USER_ID_LEN: usize = 1024;

/// What the store said of a user before their credential was checked
/// ([`Verifier::login_ticket`], or `SessionHandle::login_ticket` in the
/// web layer): a login that presents it is refused
/// ([`LoginError::RevokedSinceCheck`]) if the user was logged out
/// everywhere, or everyone was, since. It names the user by a hash of
/// their ID, never the ID itself.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct LoginTicket {
    /// A hash of the user ID, so that a ticket read for another user is
    /// refused rather than compared.
    user: u64,
    state: super::LoginState,
}

impl LoginTicket {
    fn user_key(user_id: &str) -> u64 {
        use std::hash::{Hash as _, Hasher as _};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        user_id.hash(&mut hasher);
        hasher.finish()
    }
}

impl std::fmt::Debug for LoginTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginTicket").field("state", &self.state).finish_non_exhaustive()
    }
}

/// Opens tokens and checks them against a revocation store in one call.
///
/// ```
/// use sealed_session::{Keyring, MemoryStore, Sealer, Verifier, VerifyError, Revocation};
///
/// # pollster::block_on(async {
/// let verifier = Verifier::new(Sealer::builder(Keyring::generate()?).build()?, MemoryStore::new());
/// let session = verifier.login("alice", ()).await?;
/// let token = verifier.sealer().seal(&session)?;
/// assert!(verifier.open::<()>(&token).await.is_ok());
///
/// verifier.logout_everywhere("alice").await?;
/// assert!(matches!(verifier.open::<()>(&token).await, Err(VerifyError::Revoked(Revocation::User))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Verifier<S> {
    sealer: Sealer,
    store: S,
}

/// A checked session, or why not with the session if it authenticated.
type Checked<T> = Result<Verified<T>, (VerifyError, Option<Opened<T>>)>;

impl<S: RevocationStore> Verifier<S> {
    /// Pairs a sealer with a store.
    pub fn new(sealer: Sealer, store: S) -> Self {
        Self { sealer, store }
    }

    /// The sealer, to seal sessions.
    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Opens `token` and checks it against the store.
    ///
    /// # Errors
    /// [`VerifyError`]: the token did not open, was revoked, or could not be
    /// checked. Every error means "no session" to the client.
    pub async fn open<T: DeserializeOwned>(&self, token: &str) -> Result<Verified<T>, VerifyError> {
        self.check(self.sealer.open::<T>(token)).await
    }

    /// [`Verifier::open`] at a given time.
    ///
    /// # Errors
    /// As [`Verifier::open`].
    pub async fn open_at<T: DeserializeOwned>(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Verified<T>, VerifyError> {
        self.check(self.sealer.open_at::<T>(token, now)).await
    }

    /// [`Verifier::open`] without knowing the application's data type (see
    /// [`Sealer::open_raw`]); [`Verified::decode`] reads the data.
    ///
    /// # Errors
    /// As [`Verifier::open`].
    pub async fn open_raw(&self, token: &str) -> Result<Verified<Vec<u8>>, VerifyError> {
        self.open_raw_keeping_refused(token).await.map_err(|(err, _)| err)
    }

    /// [`Verifier::open_raw`], handing back with a refusal the session if
    /// it authenticated (a revoked one, say): for the audit log, which names
    /// its user.
    pub(crate) fn open_raw_keeping_refused(
        &self,
        token: &str,
    ) -> impl Future<Output = Checked<Vec<u8>>> + Send + '_ {
        self.check_keeping_refused(self.sealer.open_raw(token))
    }

    /// The session `opened`, if it opened and is not revoked.
    fn check<'a, T: 'a>(
        &'a self,
        opened: Result<Opened<T>, OpenError>,
    ) -> impl Future<Output = Result<Verified<T>, VerifyError>> + 'a {
        let checked = self.check_keeping_refused(opened);
        async move { checked.await.map_err(|(err, _)| err) }
    }

    /// [`Verifier::check`], handing back with a refusal the session if it
    /// authenticated. One await, on the store's answer (`state_at_epoch`:
    /// the store's own future, and a second read only for an epoch ahead of
    /// it), and nothing else held across it but the opened session, once:
    /// every request's future holds this one. (An `async fn`, or a `match` that moved
    /// `opened` out before the await, would keep two or three copies of it.)
    #[allow(clippy::manual_async_fn)] // an `async fn` stores its argument twice (128 bytes more)
    fn check_keeping_refused<'a, T: 'a>(
        &'a self,
        opened: Result<Opened<T>, OpenError>,
    ) -> impl Future<Output = Checked<T>> + 'a {
        async move {
            let session = match &opened {
                Ok(opened) => opened.session(),
                Err(err) => {
                    let err = VerifyError::Open(err.clone());
                    metrics::opened(err.code());
                    return Err((err, None));
                }
            };
            let state =
                super::state_at_epoch(&self.store, session.user_id(), session.id(), session.epoch()).await;
            let checked =
                state.map_err(VerifyError::Store).and_then(|state| check_revocation(session, &state));
            match (checked, opened) {
                (Ok(()), Ok(opened)) => {
                    metrics::opened("ok");
                    Ok(Verified::new(opened))
                }
                (Err(err), Ok(opened)) => {
                    metrics::opened(err.code());
                    Err((err, Some(opened)))
                }
                // Returned above.
                (_, Err(err)) => Err((VerifyError::Open(err), None)),
            }
        }
    }

    /// Seals a session this server holds (from [`Verifier::login`], or a
    /// [`Verified`] it changed) and returns the token with the session as
    /// the token now carries it: the way to make a [`Verified`] without a
    /// round trip to the store (see [`Sealer::issue`]).
    ///
    /// # Errors
    /// As [`Sealer::seal`].
    pub fn issue<T: Serialize>(&self, session: Session<T>) -> Result<(String, Verified<T>), SealError> {
        let (token, opened) = self.sealer.issue(session)?;
        Ok((token, Verified::new(opened)))
    }

    /// [`Verifier::issue`] for a cookie: the session as the cookie now
    /// carries it, and the `Set-Cookie` value (see [`Sealer::issue_cookie`]).
    ///
    /// # Errors
    /// As [`Sealer::issue_cookie`]: [`SealError::TooLarge`] if the session
    /// does not fit in the cookie.
    pub fn issue_cookie<T: Serialize>(
        &self,
        session: Session<T>,
        cookie: &CookieSpec,
    ) -> Result<(Verified<T>, String), SealError> {
        let (opened, header) = self.sealer.issue_cookie(session, cookie)?;
        Ok((Verified::new(opened), header))
    }

    /// Starts a session for `user_id` at login: a fresh session ID and the
    /// user's current epoch, read from the store. Seal it and send it as a
    /// new cookie.
    ///
    /// If the store's cutoff (a global logout, a new store generation) is
    /// the current second, the login waits for the next second (at most
    /// [`MAX_LOGIN_WAIT`]), so that the session it hands out opens on every
    /// server instead of being refused by the cutoff.
    ///
    /// # Errors
    /// [`LoginError::Store`] if the store cannot be read,
    /// [`LoginError::CutoffAhead`] if the cutoff does not pass within
    /// [`MAX_LOGIN_WAIT`] (a clock before 1970 ends here too),
    /// [`LoginError::UserIdTooLong`] for a user ID longer than
    /// [`MAX_USER_ID_LEN`], or [`LoginError::Random`] if no session ID can be
    /// drawn.
    pub async fn login<T>(&self, user_id: &str, data: T) -> Result<Session<T>, LoginError> {
        let epoch = self.login_state(user_id, None).await?.user_epoch;
        let session = Session::try_new(data)?;
        Ok(session.with_user(user_id, epoch))
    }

    /// What the store says of `user_id` now, to read **before** checking
    /// their credential and to hand to [`Verifier::login_checked`] after:
    /// a login whose password was checked while the user was logged out
    /// everywhere (a password change, say) is refused instead of starting a
    /// session that outlives that logout. Without it, an attacker who knows
    /// the old password and keeps signing in gets a session from a check
    /// that began before the change. Read it with the user ID the login
    /// will use, and save a new password before logging the user out
    /// everywhere: a ticket read between the two would pass.
    ///
    /// ```
    /// # pollster::block_on(async {
    /// use sealed_session::{Keyring, LoginError, MemoryStore, Sealer, Verifier};
    ///
    /// let verifier = Verifier::new(Sealer::builder(Keyring::generate()?).build()?, MemoryStore::new());
    /// let ticket = verifier.login_ticket("alice").await?;
    /// // ... the password is checked; meanwhile alice changes it and logs out everywhere:
    /// verifier.logout_everywhere("alice").await?;
    /// let refused = verifier.login_checked(&ticket, "alice", ()).await;
    /// assert!(matches!(refused, Err(LoginError::RevokedSinceCheck)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`LoginError::Store`] if the store cannot be read, or
    /// [`LoginError::UserIdTooLong`].
    pub async fn login_ticket(&self, user_id: &str) -> Result<LoginTicket, LoginError> {
        if user_id.len() > MAX_USER_ID_LEN {
            return Err(LoginError::UserIdTooLong { len: user_id.len() });
        }
        let state = metrics::store_call("login_state", self.store.login_state(user_id)).await?;
        Ok(LoginTicket { user: LoginTicket::user_key(user_id), state })
    }

    /// [`Verifier::login`], for a credential checked since `ticket` was
    /// read ([`Verifier::login_ticket`]).
    ///
    /// # Errors
    /// As [`Verifier::login`]; [`LoginError::RevokedSinceCheck`] if the
    /// user was logged out everywhere, or everyone was, since the ticket
    /// was read, or [`LoginError::TicketOfAnotherUser`].
    pub async fn login_checked<T>(
        &self,
        ticket: &LoginTicket,
        user_id: &str,
        data: T,
    ) -> Result<Session<T>, LoginError> {
        let epoch = self.login_state(user_id, Some(ticket)).await?.user_epoch;
        let session = Session::try_new(data)?;
        Ok(session.with_user(user_id, epoch))
    }

    /// What the store says of the user, once the store's cutoff has
    /// passed: the epoch a login seals into the new session, and the
    /// cutoff. With a `ticket`, the store must say what it said then.
    pub(crate) async fn login_state(
        &self,
        user_id: &str,
        ticket: Option<&LoginTicket>,
    ) -> Result<super::LoginState, LoginError> {
        if user_id.len() > MAX_USER_ID_LEN {
            return Err(LoginError::UserIdTooLong { len: user_id.len() });
        }
        let state = metrics::store_call("login_state", self.store.login_state(user_id)).await?;
        if let Some(ticket) = ticket {
            if ticket.user != LoginTicket::user_key(user_id) {
                return Err(LoginError::TicketOfAnotherUser);
            }
            if ticket.state != state {
                return Err(LoginError::RevokedSinceCheck);
            }
        }
        self.wait_past(state.revoked_through).await?;
        Ok(state)
    }

    /// Starts a session with no user (a shopping cart, an OAuth `state`
    /// before sign-in): a fresh session ID. Like [`Verifier::login`] it waits
    /// out a cutoff in the current second, so that the session opens on
    /// every server. Start it only when there is something to keep:
    /// [`Verifier::login`] later replaces it with a new ID.
    ///
    /// # Errors
    /// As [`Verifier::login`].
    pub async fn start<T>(&self, data: T) -> Result<Session<T>, LoginError> {
        let session = Session::try_new(data)?;
        self.admit(session.id()).await?;
        Ok(session)
    }

    /// Waits until the store's cutoff has passed, for a new anonymous
    /// session `id`.
    pub(crate) async fn admit(&self, id: crate::SessionId) -> Result<(), LoginError> {
        let state = metrics::store_call("state", self.store.state(None, id)).await?;
        self.wait_past(state.revoked_through).await
    }

    /// Waits until the clock is past second `cutoff`.
    async fn wait_past(&self, cutoff: u64) -> Result<(), LoginError> {
        let clock = self.sealer.clock();
        let open_from = i64::try_from(cutoff.saturating_add(1)).unwrap_or(i64::MAX).saturating_mul(1000);
        let mut waited = false;
        loop {
            let remaining = open_from.saturating_sub(clock.unix_millis());
            if remaining <= 0 {
                return Ok(());
            }
            let remaining = Duration::from_millis(remaining.unsigned_abs());
            // Once is enough on a clock that moves; a clock that did not move
            // (or runs slow) is not waited for again.
            if waited || remaining > MAX_LOGIN_WAIT {
                return Err(LoginError::CutoffAhead { cutoff, now: self.now() });
            }
            timer::sleep(remaining).await;
            waited = true;
        }
    }

    /// This server's time in Unix seconds; a clock before 1970 reads as 1970.
    fn now(&self) -> u64 {
        opening_time(self.sealer.clock().unix_now())
    }

    /// Logs out one session on every server: it is denylisted until its
    /// absolute expiry (plus the clock leeway, for servers whose clocks lag).
    /// Remove the cookie too.
    ///
    /// # Errors
    /// [`StoreError`] if the store did not record it.
    pub async fn logout<T>(&self, session: &Session<T>) -> Result<(), StoreError> {
        self.revoke_session(session).await
    }

    /// Denylists `session` until its absolute expiry plus the clock leeway.
    async fn revoke_session<T>(&self, session: &Session<T>) -> Result<(), StoreError> {
        self.deny(session.id(), self.sealer.denylist_until(session)).await
    }

    /// Denylists session `id` until `until` (counted in the metrics).
    pub(crate) async fn deny(&self, id: crate::SessionId, until: u64) -> Result<(), StoreError> {
        metrics::store_call("revoke_session", self.store.revoke_session(id, until)).await?;
        metrics::revoked("session");
        Ok(())
    }

    /// Denylists session `id` until `until` unless it is on the denylist
    /// already ([`RevocationStore::revoke_session_once`]): whether this call
    /// ended it. A session ended by someone else since it was opened must
    /// not carry on under a new ID.
    pub(crate) async fn deny_once(&self, id: crate::SessionId, until: u64) -> Result<bool, StoreError> {
        let ended =
            metrics::store_call("revoke_session_once", self.store.revoke_session_once(id, until)).await?;
        if ended {
            metrics::revoked("session");
        }
        Ok(ended)
    }

    /// Whether session `id`, at `session_epoch`, carries on after one call
    /// raised its user's epoch to `new_epoch` ("sign out the others"): no
    /// logout everywhere came between (the epoch moved by exactly one), and
    /// its ID was not ended meanwhile (this call ends it until `until`, and
    /// of concurrent calls only one can). Otherwise it has ended too.
    pub(crate) async fn carries_on(
        &self,
        id: crate::SessionId,
        session_epoch: u64,
        new_epoch: u64,
        until: u64,
    ) -> Result<bool, StoreError> {
        if session_epoch.checked_add(1) != Some(new_epoch) {
            return Ok(false);
        }
        self.deny_once(id, until).await
    }

    /// Raises `user_id`'s epoch; returns the new one.
    async fn revoke_user(&self, user_id: &str) -> Result<u64, StoreError> {
        if user_id.len() > MAX_USER_ID_LEN {
            return Err(StoreError::UserIdTooLong { len: user_id.len() });
        }
        let epoch = metrics::store_call("revoke_user", self.store.revoke_user(user_id)).await?;
        metrics::revoked("user");
        Ok(epoch)
    }

    /// Gives `session` a new ID after a privilege change, and logs out the
    /// old ID on every server, so that a token stolen before the change dies
    /// with it. Seal the session and send the new cookie.
    ///
    /// # Errors
    /// [`LoginError::Store`] if the old ID could not be denylisted (the ID
    /// is then unchanged), [`LoginError::Ended`] if it was on the denylist
    /// already (logged out since it was opened: a new ID would bring it
    /// back), [`LoginError::Unsealed`] for a session never sealed or opened
    /// (whose new seal would escape a logout of everyone), or
    /// [`LoginError::Random`].
    pub async fn renew_id<T>(&self, session: &mut Session<T>) -> Result<(), LoginError> {
        if session.times().is_none() {
            return Err(LoginError::Unsealed);
        }
        let mut renewed = session.id();
        while renewed == session.id() {
            renewed = Session::try_new(())?.id();
        }
        if !self.deny_once(session.id(), self.sealer.denylist_until(session)).await? {
            return Err(LoginError::Ended);
        }
        session.set_id(renewed);
        Ok(())
    }

    /// Logs `user_id` out of every session, on every server. Returns the new epoch.
    ///
    /// # Errors
    /// [`StoreError`] if the store did not record it;
    /// [`StoreError::UserIdTooLong`] for an ID longer than [`MAX_USER_ID_LEN`]
    /// bytes, which no session carries (the store is not asked).
    pub async fn logout_everywhere(&self, user_id: &str) -> Result<u64, StoreError> {
        self.revoke_user(user_id).await
    }

    /// Logs the user of `session` out of every other session they have, on
    /// every server, and keeps `session`: its epoch becomes the new one and
    /// it gets a new ID, so that copies of it sealed before end too. Seal it
    /// and send the new cookie. Returns the new epoch.
    ///
    /// ```
    /// use sealed_session::{Keyring, MemoryStore, Sealer, Verifier};
    ///
    /// # pollster::block_on(async {
    /// let verifier = Verifier::new(Sealer::builder(Keyring::generate()?).build()?, MemoryStore::new());
    /// let laptop = verifier.sealer().seal(&verifier.login("alice", ()).await?)?;
    /// let (old_phone, phone) = verifier.issue(verifier.login("alice", ()).await?)?;
    /// let mut phone = phone.into_session(); // dated by its seal
    ///
    /// verifier.logout_others(&mut phone).await?; // after a password change on the phone
    /// let phone = verifier.sealer().seal(&phone)?;
    /// assert!(verifier.open::<()>(&phone).await.is_ok());
    /// assert!(verifier.open::<()>(&laptop).await.is_err());
    /// assert!(verifier.open::<()>(&old_phone).await.is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`LoginError::Store`] if the store did not record the new epoch (the
    /// session is then unchanged; a store that failed after writing, as a
    /// timeout can, may have ended every session of the user, this one too)
    /// or could not say whether the session's ID had ended (the new epoch
    /// was recorded: every session of the user, this one too, has ended),
    /// or could not be trusted about this session (it lost data: nothing is
    /// changed), [`LoginError::Random`], [`LoginError::NoUser`] for a
    /// session that has no user, [`LoginError::Unsealed`] for one never
    /// sealed or opened, or [`LoginError::Ended`] if the session
    /// had ended since it was opened. The store is asked first: a session
    /// it has ended (logged out, everywhere or by its ID, or cut off by a
    /// logout of everyone) changes nothing, so that an ended session, an
    /// intruder's the owner has just ended say, cannot sign the owner out
    /// of the sessions it did not end. If it ends between that check and
    /// the new epoch (a concurrent call of this one: a double submit, or a
    /// thief's copy racing the user), every session of the user has ended,
    /// this one too.
    pub async fn logout_others<T>(&self, session: &mut Session<T>) -> Result<u64, LoginError> {
        let user_id = session.user_id().ok_or(LoginError::NoUser)?.to_owned();
        if session.times().is_none() {
            return Err(LoginError::Unsealed);
        }
        let mut renewed = session.id();
        while renewed == session.id() {
            renewed = Session::try_new(())?.id();
        }
        let state = super::state_at_epoch(&self.store, Some(&user_id), session.id(), session.epoch()).await?;
        match check_revocation(session, &state) {
            Ok(()) => {}
            Err(err @ VerifyError::StoreFault { .. }) => {
                return Err(StoreError::Untrusted(Box::new(err)).into())
            }
            Err(_) => return Err(LoginError::Ended),
        }
        let epoch = self.revoke_user(&user_id).await?;
        let until = self.sealer.denylist_until(session);
        if !self.carries_on(session.id(), session.epoch(), epoch, until).await? {
            return Err(LoginError::Ended);
        }
        session.set_epoch(epoch);
        session.set_id(renewed);
        Ok(epoch)
    }

    /// Logs everyone out: every session issued up to this second, on any
    /// server, is refused. Returns the new cutoff (Unix seconds; see
    /// [`RevocationStore::revoke_all`]), dated by the store's clock where it
    /// has one: if this server's clock runs ahead of it, the sessions this
    /// server issued in between are not refused, and a warning says so.
    ///
    /// # Errors
    /// [`StoreError`] if the store did not record it.
    pub async fn logout_all(&self) -> Result<u64, StoreError> {
        let now = self.now();
        let cutoff = metrics::store_call("revoke_all", self.store.revoke_all(now)).await?;
        metrics::revoked("all");
        if now > cutoff.saturating_add(1) {
            tracing::warn!(
                cutoff,
                now,
                "this server's clock is ahead of the revocation store's: sessions it issued after the store's \
                 time are not logged out; check the clocks (NTP)"
            );
        }
        Ok(cutoff)
    }
}
