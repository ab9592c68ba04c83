//! The per-request session handle: log in, change, renew and log out.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::config::CsrfSettings;
use super::flash::{Flash, FlashConfig, FlashHandle, FlashHost, FlashState, Level};
use crate::{CookieSpec, LoginError, Opened, SealError, Sealer, Session, StoreError, Verified};

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The store operations a handle needs, with the store's type erased so that
/// handlers name only the session data type.
pub(crate) trait Ops<T>: Send + Sync {
    fn sealer(&self) -> &Sealer;
    fn cookie(&self) -> &CookieSpec;
    fn pre_sealer(&self) -> &Sealer;
    fn pre_cookie(&self) -> &CookieSpec;
    fn flash(&self) -> &FlashConfig;
    /// The origin unsafe requests must come from, if set.
    fn origin(&self) -> Option<&str>;
    fn csrf(&self) -> &CsrfSettings;
    fn form_limit(&self) -> usize;
    /// Seals `session` as the request's session: the token carries it now.
    /// Returns the `Set-Cookie` value, or the bare token if `bearer`.
    fn issue(&self, session: &Session<T>, bearer: bool) -> Result<(Verified<T>, String), SealError>
    where
        T: Serialize + DeserializeOwned;
    fn start(&self, data: T) -> BoxFuture<'_, Result<Session<T>, LoginError>>;
    fn login<'a>(&'a self, user_id: &'a str, data: T) -> BoxFuture<'a, Result<Session<T>, LoginError>>;
    fn logout<'a>(&'a self, session: &'a Session<T>) -> BoxFuture<'a, Result<(), StoreError>>;
    fn logout_everywhere<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<u64, StoreError>>;
    fn renew_id<'a>(&'a self, session: &'a mut Session<T>) -> BoxFuture<'a, Result<(), LoginError>>;
}

/// What the response must do with one cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CookieChange {
    /// Send this `Set-Cookie` value.
    Set(String),
    /// Remove the cookie.
    Remove,
}

/// The session state of one request, shared by the integration and the
/// handler.
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

/// One request's session state and the settings: the one allocation per
/// request that the handle, the flash handle and the integration share.
pub(crate) struct Shared<T> {
    state: Mutex<State<T>>,
    pub(crate) ops: Arc<dyn Ops<T>>,
}

impl<T> Shared<T> {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State<T>> {
        // The state is plain data that every writer leaves consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: Send + Sync> FlashHost for Shared<T> {
    fn take_flashes(&self) -> Vec<Flash> {
        self.lock().flash.take()
    }
}

/// How [`SessionHandle::login_with_options`] starts a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoginOptions {
    remember: bool,
}

impl LoginOptions {
    /// "Remember me": the session lives by the sealer's remember-me
    /// timeouts ([`SealerBuilder::remember_me`](crate::SealerBuilder::remember_me)),
    /// and its cookie persists when the browser closes (it has `Max-Age`,
    /// even if the session cookie is a browser-session one). Without it
    /// (the default), the sealer's standard timeouts and the cookie's own
    /// attributes apply.
    #[must_use]
    pub fn remember(mut self, remember: bool) -> Self {
        self.remember = remember;
        self
    }
}

/// A session call of a [`SessionHandle`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandleError {
    /// The request has no session (none was sent, or the one sent was
    /// expired, revoked, tampered with or sealed under an unknown key).
    #[error("no session: sign in first")]
    NoSession,
    /// The request's session cookie is sealed under a key this server does
    /// not have yet (a key rollout in progress): it is kept, and neither
    /// [`SessionHandle::login`], [`SessionHandle::update_or_insert`] nor
    /// [`SessionHandle::logout`] replaces or removes it, since none can end
    /// that session on the servers that read it. Answer `503`, so that the
    /// client retries.
    #[error(
        "the session cookie is sealed under a key this server does not have; it is kept and not replaced: \
         deploy the same keyring to every server"
    )]
    UnreadableSession,
    /// The revocation store did not record a logout; nothing changed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A session could not be started or given a new ID (the store could not
    /// be reached, the clocks disagree, or no random ID could be drawn).
    #[error(transparent)]
    Login(#[from] LoginError),
    /// The session could not be sealed: [`SealError::TooLarge`] when it does
    /// not fit in a cookie.
    #[error(transparent)]
    Seal(#[from] SealError),
}

/// The session handle of one request: log in, change, renew and log out.
///
/// A web integration makes one per request
/// ([`WebConfig::open_request`](super::WebConfig::open_request)) and hands
/// it to the handler; each call that changes the session seals it at once,
/// so that an error (a session too large for a cookie, a store that cannot
/// be reached) reaches the handler, not the client, and the integration
/// writes the cookies the calls decided on when the response leaves
/// ([`SessionHandle::finish`]).
pub struct SessionHandle<T> {
    pub(crate) shared: Arc<Shared<T>>,
}

impl<T> Clone for SessionHandle<T> {
    fn clone(&self) -> Self {
        Self { shared: Arc::clone(&self.shared) }
    }
}

impl<T> std::fmt::Debug for SessionHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("SessionHandle")
            .field("current", &state.current)
            .field("changed", &state.session_cookie.is_some())
            .finish_non_exhaustive()
    }
}

impl<T> SessionHandle<T>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    pub(crate) fn new(state: State<T>, ops: Arc<dyn Ops<T>>) -> Self {
        Self { shared: Arc::new(Shared { state: Mutex::new(state), ops }) }
    }

    /// The request's session, if it has one (as changed by this handler).
    #[must_use]
    pub fn current(&self) -> Option<Arc<Verified<T>>> {
        self.shared.lock().current.clone()
    }

    /// The sealer of the request's sessions: for their CSRF tokens
    /// ([`Sealer::csrf_token`]).
    #[must_use]
    pub fn sealer(&self) -> &Sealer {
        self.shared.ops.sealer()
    }

    /// The request's flash messages, for an extractor that does not name
    /// the session's data type.
    #[must_use]
    pub fn flashes(&self) -> FlashHandle {
        FlashHandle(Arc::<Shared<T>>::clone(&self.shared))
    }

    /// Starts a session for `user_id`: always a new session ID, bound to
    /// the user's current revocation epoch. A session the request already
    /// had (signed in or anonymous) is logged out on every server first, so
    /// that a cookie planted or stolen before login dies with it (session
    /// fixation). To keep what an anonymous session held, use
    /// [`login_with`](Self::login_with).
    ///
    /// # Errors
    /// [`HandleError::Store`] or [`HandleError::Login`] if the store cannot
    /// be reached, [`HandleError::Seal`] if the session does not fit in a
    /// cookie. A previous session that was already logged out stays logged
    /// out, and its cookie is removed. [`HandleError::UnreadableSession`]
    /// if the request's session cookie is sealed under a key this server
    /// does not have yet (a key rollout in progress): that session cannot
    /// be logged out here, and replacing its cookie would leave it valid on
    /// the servers that have the key, so nothing changes; answer `503` and
    /// let the client retry.
    pub async fn login(&self, user_id: &str, data: T) -> Result<Arc<Verified<T>>, HandleError> {
        self.login_with(user_id, |_| data).await
    }

    /// [`login`](Self::login), with the new session's data made from the
    /// session the request had, if any: `carry` receives it (anonymous, or
    /// another user's: check [`user_id`](Session::user_id) before keeping
    /// anything) and returns the data to sign in with. The new session has
    /// a new ID all the same; the old one is logged out.
    ///
    /// # Errors
    /// As [`login`](Self::login).
    pub async fn login_with(
        &self,
        user_id: &str,
        carry: impl FnOnce(Option<Session<T>>) -> T,
    ) -> Result<Arc<Verified<T>>, HandleError> {
        self.login_with_options(user_id, LoginOptions::default(), carry).await
    }

    /// [`login_with`](Self::login_with), with [`LoginOptions`]: "remember
    /// me", say.
    ///
    /// # Errors
    /// As [`login`](Self::login); [`HandleError::Seal`] with
    /// [`SealError::NoRememberMe`], before anything changes, if the session
    /// is to be remembered and the sealer has no remember-me timeouts.
    pub async fn login_with_options(
        &self,
        user_id: &str,
        options: LoginOptions,
        carry: impl FnOnce(Option<Session<T>>) -> T,
    ) -> Result<Arc<Verified<T>>, HandleError> {
        let ops = Arc::clone(&self.shared.ops);
        if options.remember && !ops.sealer().has_remember_me() {
            // Before anything changes: the request keeps its session.
            return Err(SealError::NoRememberMe.into());
        }
        let (previous, kept_unreadable) = self.current_or_unreadable();
        if kept_unreadable {
            // It cannot be logged out here, and a new cookie would leave it
            // alive on the servers that can read it.
            return Err(HandleError::UnreadableSession);
        }
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
        Ok(opened)
    }

    /// Changes the session's data like [`update`](Self::update), first
    /// starting a session with no user from `default()` if the request has
    /// none: a cart, a language choice or an OAuth `state` before sign-in.
    /// An anonymous session is a session like any other: a new ID, the
    /// sealer's timeouts, a CSRF token of its own (which replaces the
    /// pre-session's), and [`login`](Self::login) replaces it with a new ID.
    ///
    /// # Errors
    /// [`HandleError::Login`] if a new session cannot be started (the
    /// store cannot be read), [`HandleError::UnreadableSession`] if the
    /// request's session cookie is sealed under a key this server does not
    /// have yet (a new session would replace it), or [`HandleError::Seal`]
    /// if the changed session does not fit in a cookie. Nothing is changed
    /// then.
    pub async fn update_or_insert<R>(
        &self,
        default: impl FnOnce() -> T,
        change: impl FnOnce(&mut T) -> R,
    ) -> Result<R, HandleError> {
        let (current, kept_unreadable) = self.current_or_unreadable();
        let mut session = match &current {
            Some(current) => current.session().clone(),
            None if kept_unreadable => return Err(HandleError::UnreadableSession),
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

    /// The request's session, and whether there is none because its
    /// cookie is sealed under a key this server does not have (kept).
    fn current_or_unreadable(&self) -> (Option<Arc<Verified<T>>>, bool) {
        let state = self.shared.lock();
        (state.current.clone(), state.current.is_none() && state.kept_unreadable)
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
    fn replace(&self, session: &Session<T>) -> Result<Arc<Verified<T>>, HandleError> {
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
    /// [`HandleError::NoSession`], or [`HandleError::Seal`] if the changed
    /// session no longer fits in a cookie (the session is then unchanged).
    pub fn update<R>(&self, change: impl FnOnce(&mut T) -> R) -> Result<R, HandleError> {
        let current = self.current().ok_or(HandleError::NoSession)?;
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
    /// [`HandleError::NoSession`], [`HandleError::Login`] if the store
    /// cannot be reached (the session is then unchanged), or a sealing error.
    pub async fn renew_id(&self) -> Result<(), HandleError> {
        let ops = Arc::clone(&self.shared.ops);
        let current = self.current().ok_or(HandleError::NoSession)?;
        let mut session = current.session().clone();
        ops.renew_id(&mut session).await?;
        // The old ID is revoked now: if the new one cannot be sealed, the
        // request has no session any more.
        if let Err(err) = self.replace(&session) {
            self.forget();
            return Err(err);
        }
        Ok(())
    }

    /// Logs this session out on every server and removes its cookie. Without
    /// a session it only removes the cookie.
    ///
    /// # Errors
    /// [`HandleError::Store`] if the store did not record the logout: the
    /// session is then kept, so that the user can try again.
    /// [`HandleError::UnreadableSession`] if the request's session cookie is
    /// sealed under a key this server does not have yet: removing the
    /// cookie would not end the session on the servers that can read it, so
    /// nothing changes and the client should retry (`503`).
    pub async fn logout(&self) -> Result<(), HandleError> {
        let ops = Arc::clone(&self.shared.ops);
        let (current, kept_unreadable) = self.current_or_unreadable();
        if kept_unreadable {
            return Err(HandleError::UnreadableSession);
        }
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
    /// [`HandleError::NoSession`] without a signed-in session, or
    /// [`HandleError::Store`] if the store did not record it (nothing is
    /// then changed).
    pub async fn logout_everywhere(&self) -> Result<u64, HandleError> {
        let ops = Arc::clone(&self.shared.ops);
        let current = self.current();
        let user_id =
            current.as_ref().and_then(|opened| opened.session().user_id()).ok_or(HandleError::NoSession)?;
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
    /// redirect, say). Flash messages travel in a sealed cookie of their
    /// own: they need no session, and survive logout. At most
    /// [`MAX_FLASHES`](super::MAX_FLASHES) wait at once (the oldest are
    /// dropped), each for at most [`FLASH_TIMEOUT`](super::FLASH_TIMEOUT).
    ///
    /// # Errors
    /// [`HandleError::Seal`] if the messages do not fit in a cookie (none
    /// is then added).
    pub fn flash(&self, level: Level, message: impl Into<String>) -> Result<(), HandleError> {
        let flash = Flash { level, message: message.into() };
        Ok(self.shared.lock().flash.push(self.shared.ops.flash(), flash)?)
    }

    /// The flash messages the request brought (and any added since), which
    /// are then gone: the response removes their cookie.
    #[must_use]
    pub fn take_flashes(&self) -> Vec<Flash> {
        self.shared.lock().flash.take()
    }

    /// The CSRF token to put in this page's forms or scripts.
    ///
    /// With a session, the token is bound to it. Without one (a login
    /// form), it is bound to a *pre-session*: a small sealed cookie with a
    /// random ID and no user, created here if the request had none, so that
    /// the login form is protected too (login CSRF). Login replaces it.
    ///
    /// # Errors
    /// [`HandleError::Seal`] if no random pre-session ID can be drawn or the
    /// pre-session cannot be sealed.
    pub fn csrf_token(&self) -> Result<String, HandleError> {
        let ops = Arc::clone(&self.shared.ops);
        let mut state = self.shared.lock();
        if let Some(current) = &state.current {
            return Ok(ops.sealer().csrf_token(current.session()));
        }
        if let Some(pre) = &state.pre {
            return Ok(ops.pre_sealer().csrf_token(pre.session()));
        }
        let pre = Session::try_new(()).map_err(SealError::from)?;
        let (opened, header) = ops.pre_sealer().issue_cookie(&pre, ops.pre_cookie())?;
        let token = ops.pre_sealer().csrf_token(opened.session());
        state.pre = Some(opened);
        state.pre_cookie = Some(CookieChange::Set(header));
        Ok(token)
    }
}
