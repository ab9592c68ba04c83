//! What handlers see: the [`Sessions`] handle and the [`Session`] extractor.

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;
use sealed_session::{
    CookieSpec, LoginError, Opened, SealError, Sealer, Session as CoreSession, StoreError, Verified,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use time::OffsetDateTime;

use crate::error::SessionError;
use crate::flash::{Flash, FlashConfig, FlashHost, FlashState, Level};

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The store operations a handle needs, with the store's type erased so that
/// handlers name only the session data type.
pub(crate) trait Ops<T>: Send + Sync {
    fn sealer(&self) -> &Sealer;
    fn pre_sealer(&self) -> &Sealer;
    fn pre_cookie(&self) -> &CookieSpec;
    fn flash(&self) -> &FlashConfig;
    /// Seals `session` as the request's session: the token carries it now.
    /// Returns the `Set-Cookie` value, or the bare token if `bearer`.
    fn issue(&self, session: &CoreSession<T>, bearer: bool) -> Result<(Verified<T>, String), SessionError>
    where
        T: Serialize + DeserializeOwned;
    fn start(&self, data: T) -> BoxFuture<'_, Result<CoreSession<T>, LoginError>>;
    fn login<'a>(&'a self, user_id: &'a str, data: T) -> BoxFuture<'a, Result<CoreSession<T>, LoginError>>;
    fn logout<'a>(&'a self, session: &'a CoreSession<T>) -> BoxFuture<'a, Result<(), StoreError>>;
    fn logout_everywhere<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<u64, StoreError>>;
    fn renew_id<'a>(&'a self, session: &'a mut CoreSession<T>) -> BoxFuture<'a, Result<(), LoginError>>;
}

/// What the response must do with one cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CookieChange {
    /// Send this `Set-Cookie` value.
    Set(String),
    /// Remove the cookie.
    Remove,
}

/// The session state of one request, shared by the layer and the handler.
pub(crate) struct State<T> {
    /// The session, as opened from the request or as last sealed here.
    pub(crate) current: Option<Arc<Verified<T>>>,
    /// The pre-session that carries the CSRF token before login.
    pub(crate) pre: Option<Opened<()>>,
    /// Set when the handler changed the session: for a bearer-token request
    /// [`CookieChange::Set`] holds the bare token.
    pub(crate) session_cookie: Option<CookieChange>,
    /// Whether the session came as `Authorization: Bearer` (no cookies).
    pub(crate) bearer: bool,
    /// Whether the request's session cookie is sealed under a key this
    /// server does not have: kept, so no anonymous session may replace it.
    pub(crate) kept_unreadable: bool,
    /// Set when the pre-session cookie must be sent or removed.
    pub(crate) pre_cookie: Option<CookieChange>,
    /// Whether the request carried a pre-session cookie.
    pub(crate) pre_sent: bool,
    /// The request's flash messages.
    pub(crate) flash: FlashState,
}

impl<T> State<T> {
    pub(crate) fn new(
        current: Option<Verified<T>>,
        pre: Option<Opened<()>>,
        pre_sent: bool,
        bearer: bool,
        flash: FlashState,
    ) -> Self {
        Self {
            current: current.map(Arc::new),
            pre,
            session_cookie: None,
            pre_cookie: None,
            pre_sent,
            bearer,
            kept_unreadable: false,
            flash,
        }
    }
}

/// One request's session state and the layer's settings: the one
/// allocation per request that the handle, the flash extractor and the
/// layer share.
pub(crate) struct Shared<T> {
    pub(crate) state: Mutex<State<T>>,
    pub(crate) ops: Arc<dyn Ops<T>>,
}

impl<T: Send + Sync> FlashHost for Shared<T> {
    fn take_flashes(&self) -> Vec<Flash> {
        self.lock().flash.take()
    }
}

impl<T> Shared<T> {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State<T>> {
        // The state is plain data that every writer leaves consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How [`Sessions::login_with_options`] starts a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoginOptions {
    remember: bool,
}

impl LoginOptions {
    /// "Remember me": the session lives by the sealer's remember-me
    /// timeouts ([`SealerBuilder::remember_me`](sealed_session::SealerBuilder::remember_me)),
    /// and its cookie persists when the browser closes (it has `Max-Age`,
    /// even if the layer's cookie is a browser-session one). Without it
    /// (the default), the sealer's standard timeouts and the layer's cookie
    /// apply.
    #[must_use]
    pub fn remember(mut self, remember: bool) -> Self {
        self.remember = remember;
        self
    }
}

/// The session handle of one request: log in, change, renew and log out.
///
/// Extract it in any handler behind a [`SessionLayer`](crate::SessionLayer)
/// with the same data type `T`; the layer writes the cookies the calls
/// decide on when the response leaves. Each call that changes the session
/// seals it at once, so an error (a session too large for a cookie, a store
/// that cannot be reached) reaches the handler, not the client.
pub struct Sessions<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for Sessions<T> {
    fn clone(&self) -> Self {
        Self { shared: Arc::clone(&self.shared) }
    }
}

impl<T> std::fmt::Debug for Sessions<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("Sessions")
            .field("current", &state.current)
            .field("changed", &state.session_cookie.is_some())
            .finish_non_exhaustive()
    }
}

impl<T> Sessions<T>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    pub(crate) fn new(shared: Arc<Shared<T>>) -> Self {
        Self { shared }
    }

    /// The request's session, if it has one (as changed by this handler).
    #[must_use]
    pub fn current(&self) -> Option<Session<T>> {
        let opened = self.shared.lock().current.clone()?;
        Some(Session { opened, sessions: self.clone() })
    }

    /// The request's session if it is signed in (has a user).
    #[must_use]
    pub fn signed_in(&self) -> Option<SignedIn<T>> {
        self.current().filter(|session| session.user_id().is_some()).map(SignedIn)
    }

    /// Starts a session for `user_id`: always a new session ID, bound to
    /// the user's current revocation epoch. A session the request already
    /// had (signed in or anonymous) is logged out on every server first, so
    /// that a cookie planted or stolen before login dies with it (session
    /// fixation). To keep what an anonymous session held, use
    /// [`login_with`](Self::login_with).
    ///
    /// # Errors
    /// [`SessionError::Store`] or [`SessionError::Login`] if the store cannot
    /// be reached, [`SessionError::Seal`] if the session does not fit in a
    /// cookie. A previous session that was already logged out
    /// stays logged out, and its cookie is removed.
    pub async fn login(&self, user_id: &str, data: T) -> Result<Session<T>, SessionError> {
        self.login_with(user_id, |_| data).await
    }

    /// [`login`](Self::login), with the new session's data made from the
    /// session the request had, if any: `carry` receives it (anonymous, or
    /// another user's: check [`user_id`](CoreSession::user_id) before
    /// keeping anything) and returns the data to sign in with. The new
    /// session has a new ID all the same; the old one is logged out.
    ///
    /// ```no_run
    /// # async fn handler(sessions: sealed_session_axum::Sessions<Vec<String>>) -> Result<(), sealed_session_axum::SessionError> {
    /// // Keep the cart the user filled before signing in.
    /// sessions
    ///     .login_with("alice", |before| {
    ///         before.filter(|s| s.user_id().is_none()).map(|s| s.into_data()).unwrap_or_default()
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`login`](Self::login).
    pub async fn login_with(
        &self,
        user_id: &str,
        carry: impl FnOnce(Option<CoreSession<T>>) -> T,
    ) -> Result<Session<T>, SessionError> {
        self.login_with_options(user_id, LoginOptions::default(), carry).await
    }

    /// [`login_with`](Self::login_with), with [`LoginOptions`]: "remember
    /// me", say.
    ///
    /// # Errors
    /// As [`login`](Self::login); [`SessionError::Seal`] with
    /// [`SealError::NoRememberMe`], before anything changes, if the session
    /// is to be remembered and the sealer has no remember-me timeouts.
    pub async fn login_with_options(
        &self,
        user_id: &str,
        options: LoginOptions,
        carry: impl FnOnce(Option<CoreSession<T>>) -> T,
    ) -> Result<Session<T>, SessionError> {
        let ops = Arc::clone(&self.shared.ops);
        if options.remember && !ops.sealer().has_remember_me() {
            // Before anything changes: the request keeps its session.
            return Err(SealError::NoRememberMe.into());
        }
        let previous = self.shared.lock().current.clone();
        if let Some(previous) = &previous {
            ops.logout(previous.session()).await?;
            self.forget();
        }
        let data = carry(previous.map(|previous| previous.session().clone()));
        let mut session = ops.login(user_id, data).await?;
        if options.remember {
            session = session.remembered();
        }
        let opened = self.replace(&session)?;
        self.end_pre_session();
        Ok(Session { opened, sessions: self.clone() })
    }

    /// Changes the session's data like [`update`](Self::update), first
    /// starting a session with no user from `default()` if the request has
    /// none: a cart, a language choice or an OAuth `state` before sign-in.
    /// An anonymous session is a session like any other: a new ID, the
    /// sealer's timeouts, a CSRF token of its own (which replaces the
    /// pre-session's), and [`login`](Self::login) replaces it with a new ID.
    ///
    /// # Errors
    /// [`SessionError::Login`] if a new session cannot be started (the
    /// store cannot be read), [`SessionError::UnreadableSession`] if the
    /// request's session cookie is sealed under a key this server does not
    /// have yet (a new session would replace it), or [`SessionError::Seal`]
    /// if the changed session does not fit in a cookie. Nothing is changed
    /// then.
    pub async fn update_or_insert<R>(
        &self,
        default: impl FnOnce() -> T,
        change: impl FnOnce(&mut T) -> R,
    ) -> Result<R, SessionError> {
        let (current, kept_unreadable) = {
            let state = self.shared.lock();
            (state.current.clone(), state.kept_unreadable)
        };
        let mut session = match &current {
            Some(current) => current.session().clone(),
            None if kept_unreadable => return Err(SessionError::UnreadableSession),
            None => {
                let ops = Arc::clone(&self.shared.ops);
                ops.start(default()).await?
            }
        };
        // The lock is not held while `change` runs: it may use this handle.
        let result = change(session.data_mut());
        self.replace(&session)?;
        if current.is_none() {
            self.end_pre_session();
        }
        Ok(result)
    }

    /// The pre-session served its purpose (CSRF before there is a session):
    /// the session's token replaces it.
    fn end_pre_session(&self) {
        let mut state = self.shared.lock();
        state.pre = None;
        state.pre_cookie = state.pre_sent.then_some(CookieChange::Remove);
    }

    /// Seals `session` as the request's session, whose cookie goes out with
    /// the response.
    fn replace(&self, session: &CoreSession<T>) -> Result<Arc<Verified<T>>, SessionError> {
        let bearer = self.shared.lock().bearer;
        let (opened, header) = self.shared.ops.issue(session, bearer)?;
        let opened = Arc::new(opened);
        let mut state = self.shared.lock();
        state.current = Some(Arc::clone(&opened));
        state.session_cookie = Some(CookieChange::Set(header));
        Ok(opened)
    }

    /// Changes the session's data and seals it again; the new cookie goes
    /// out with the response.
    ///
    /// # Errors
    /// [`SessionError::NoSession`], or [`SessionError::Seal`] if the changed
    /// session no longer fits in a cookie (the session is then unchanged).
    pub fn update<R>(&self, change: impl FnOnce(&mut T) -> R) -> Result<R, SessionError> {
        let current = self.shared.lock().current.clone().ok_or(SessionError::NoSession)?;
        // The lock is not held while `change` runs: it may use this handle.
        let mut session = current.session().clone();
        let result = change(session.data_mut());
        self.replace(&session)?;
        Ok(result)
    }

    /// Gives the session a new ID, logging the old one out on every server:
    /// call it when the session's privileges change.
    ///
    /// # Errors
    /// [`SessionError::NoSession`], [`SessionError::Login`] if the store
    /// cannot be reached (the session is then unchanged), or a sealing error.
    pub async fn renew_id(&self) -> Result<(), SessionError> {
        let ops = Arc::clone(&self.shared.ops);
        let current = self.shared.lock().current.clone().ok_or(SessionError::NoSession)?;
        let mut session = current.session().clone();
        ops.renew_id(&mut session).await?;
        self.replace(&session)?;
        Ok(())
    }

    /// Logs this session out on every server and removes its cookie. Without
    /// a session it only removes the cookie.
    ///
    /// # Errors
    /// [`SessionError::Store`] if the store did not record the logout: the
    /// session is then kept, so that the user can try again.
    pub async fn logout(&self) -> Result<(), SessionError> {
        let ops = Arc::clone(&self.shared.ops);
        let current = self.shared.lock().current.clone();
        if let Some(current) = current {
            ops.logout(current.session()).await?;
        }
        self.forget();
        Ok(())
    }

    /// Logs the session's user out of every session they have, on every
    /// server, and removes this cookie. Returns the user's new epoch.
    ///
    /// # Errors
    /// [`SessionError::NoSession`] without a signed-in session, or
    /// [`SessionError::Store`] if the store did not record it (nothing is
    /// then changed).
    pub async fn logout_everywhere(&self) -> Result<u64, SessionError> {
        let ops = Arc::clone(&self.shared.ops);
        let current = self.shared.lock().current.clone();
        let user_id =
            current.as_ref().and_then(|opened| opened.session().user_id()).ok_or(SessionError::NoSession)?;
        let epoch = ops.logout_everywhere(user_id).await?;
        self.forget();
        Ok(epoch)
    }

    fn forget(&self) {
        let mut state = self.shared.lock();
        state.current = None;
        state.session_cookie = Some(CookieChange::Remove);
    }

    /// Adds a flash message for the next page this browser loads (after a
    /// redirect, say), which reads it with the [`Flashes`](crate::Flashes)
    /// extractor or [`take_flashes`](Self::take_flashes). Flash messages
    /// travel in a sealed cookie of their own: they need no session, and
    /// survive logout. At most [`MAX_FLASHES`](crate::MAX_FLASHES) wait at
    /// once (the oldest are dropped), each for at most
    /// [`FLASH_TIMEOUT`](crate::FLASH_TIMEOUT).
    ///
    /// # Errors
    /// [`SessionError::Seal`] if the messages do not fit in a cookie (none
    /// is then added).
    pub fn flash(&self, level: Level, message: impl Into<String>) -> Result<(), SessionError> {
        let flash = Flash { level, message: message.into() };
        Ok(self.shared.lock().flash.push(self.shared.ops.flash(), flash)?)
    }

    /// The flash messages the request brought (and any added since), which
    /// are then gone: the response removes their cookie.
    #[must_use]
    pub fn take_flashes(&self) -> Vec<Flash> {
        self.shared.lock().flash.take()
    }

    /// The CSRF token to put in this page's forms (field `csrf_token`) or
    /// scripts (header `X-CSRF-Token`).
    ///
    /// With a session, the token is bound to it. Without one (a login
    /// form), it is bound to a *pre-session*: a small sealed cookie with a
    /// random ID and no user, created here if the request had none, so that
    /// the login form is protected too (login CSRF). Login replaces it.
    ///
    /// # Errors
    /// [`SessionError::Seal`] if no random pre-session ID can be drawn or the
    /// pre-session cannot be sealed.
    pub fn csrf_token(&self) -> Result<String, SessionError> {
        let ops = Arc::clone(&self.shared.ops);
        let mut state = self.shared.lock();
        if let Some(current) = &state.current {
            return Ok(ops.sealer().csrf_token(current.session()));
        }
        if let Some(pre) = &state.pre {
            return Ok(ops.pre_sealer().csrf_token(pre.session()));
        }
        let pre = CoreSession::try_new(()).map_err(SealError::from)?;
        let (opened, header) = ops.pre_sealer().issue_cookie(&pre, ops.pre_cookie())?;
        let token = ops.pre_sealer().csrf_token(opened.session());
        state.pre = Some(opened);
        state.pre_cookie = Some(CookieChange::Set(header));
        Ok(token)
    }
}

fn sessions_from<T: Send + Sync + 'static>(parts: &Parts) -> Result<Sessions<T>, SessionError> {
    parts.extensions.get::<Sessions<T>>().cloned().ok_or(SessionError::MissingLayer)
}

impl<T, S> FromRequestParts<S> for Sessions<T>
where
    T: Send + Sync + 'static,
    S: Send + Sync,
{
    type Rejection = SessionError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        sessions_from(parts)
    }
}

/// A request's session, as an extractor: handlers that take it run only for
/// requests with a valid session; the others get `401` ("no session"),
/// whatever was wrong with their cookie. Take `Option<Session<T>>` to run
/// either way.
///
/// The session may be anonymous (no user) once the application starts
/// anonymous sessions ([`Sessions::update_or_insert`]): take [`SignedIn<T>`]
/// in handlers that need a signed-in user.
///
/// It is a snapshot of the session when extracted, and dereferences to the
/// core [`sealed_session::Session`]: its ID, user, epoch, times and data.
/// Change it through [`Sessions`].
pub struct Session<T> {
    opened: Arc<Verified<T>>,
    sessions: Sessions<T>,
}

impl<T> Clone for Session<T> {
    fn clone(&self) -> Self {
        Self { opened: Arc::clone(&self.opened), sessions: self.sessions.clone() }
    }
}

impl<T> std::fmt::Debug for Session<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Session").field(&self.opened).finish()
    }
}

impl<T> Deref for Session<T> {
    type Target = CoreSession<T>;

    fn deref(&self) -> &CoreSession<T> {
        self.opened.session()
    }
}

impl<T> Session<T>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// The ID of the key the session's cookie is sealed under.
    #[must_use]
    pub fn key_id(&self) -> u32 {
        self.opened.key_id()
    }

    /// When the session ends unless the user is active before then.
    #[must_use]
    pub fn idle_expires_at(&self) -> OffsetDateTime {
        self.opened.idle_expires_at()
    }

    /// The session's CSRF token.
    #[must_use]
    pub fn csrf_token(&self) -> String {
        self.sessions.shared.ops.sealer().csrf_token(self.opened.session())
    }

    /// The handle, to change or end the session.
    #[must_use]
    pub fn sessions(&self) -> &Sessions<T> {
        &self.sessions
    }
}

impl<T, S> FromRequestParts<S> for Session<T>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    S: Send + Sync,
{
    type Rejection = SessionError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        sessions_from::<T>(parts)?.current().ok_or(SessionError::NoSession)
    }
}

impl<T, S> OptionalFromRequestParts<S> for Session<T>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    S: Send + Sync,
{
    type Rejection = SessionError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(sessions_from::<T>(parts)?.current())
    }
}

/// A request's signed-in session, as an extractor: like [`Session<T>`], but
/// an anonymous session (one with no user) is refused too, with `401`.
/// [`SignedIn::user_id`] is the user.
pub struct SignedIn<T>(Session<T>);

impl<T> SignedIn<T> {
    /// The signed-in user.
    #[must_use]
    pub fn user_id(&self) -> &str {
        // Only a session with a user is ever wrapped.
        self.0.user_id().unwrap_or_default()
    }

    /// The session.
    #[must_use]
    pub fn into_session(self) -> Session<T> {
        self.0
    }
}

impl<T> Deref for SignedIn<T> {
    type Target = Session<T>;

    fn deref(&self) -> &Session<T> {
        &self.0
    }
}

impl<T> std::fmt::Debug for SignedIn<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SignedIn").field(&self.0).finish()
    }
}

impl<T, S> FromRequestParts<S> for SignedIn<T>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    S: Send + Sync,
{
    type Rejection = SessionError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        sessions_from::<T>(parts)?.signed_in().ok_or(SessionError::NoSession)
    }
}
