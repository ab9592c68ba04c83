//! The per-request session handle: log in, change, renew and log out.

use std::any::Any;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::de::DeserializeOwned;
use serde::Serialize;
use time::OffsetDateTime;

use super::audit::{AuditEvent, AuditKind};
use super::flash::{Flash, FlashState, Level};
use super::ops::Ops;
use crate::cookie::CookieChange;
use crate::redirect::RouteRefusal;
use crate::sealer::Issued;
use crate::{LoginError, LoginTicket, SealError, Sealer, Session, StoreError, Verified};

/// What a session's data must be to travel in a web session: serializable,
/// cloneable and shareable between threads. Every such type is one; the
/// trait only names the bound.
pub trait SessionValue: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}

impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> SessionValue for T {}

/// The session state of one request, shared by the integration and the
/// handler.
pub(crate) struct State {
    /// The session, as opened from the request or as last sealed here, with
    /// its data still encoded: each handler decodes it as its own type.
    pub(crate) current: Option<Arc<Verified<Vec<u8>>>>,
    /// The last decoding of `current`, for the type that asked.
    decoded: Option<Arc<dyn Any + Send + Sync>>,
    /// Set when the handler changed the session: for a bearer-token request
    /// [`CookieChange::Set`] holds the bare token.
    pub(crate) session_cookie: Option<CookieChange>,
    /// Whether the session came as `Authorization: Bearer` (no cookies).
    pub(crate) bearer: bool,
    /// Whether the request's session cookie is sealed under a key this
    /// server does not have: kept, so no other session may replace it.
    pub(crate) kept_unreadable: bool,
    /// The request's session, if its data did not decode as the type a
    /// handler asked for: no session to the handler, and its cookie goes,
    /// but a logout or login still ends it on every server (a copy of the
    /// cookie opens wherever another type or only the user is asked for).
    undecodable: Option<Arc<Verified<Vec<u8>>>>,
    /// The sessions of a `__Host-` session cookie that arrived more than
    /// once (one value was injected): none is the request's session, but
    /// logout and login end them all, the user's real one among them.
    pub(crate) injected: Vec<Session<Vec<u8>>>,
    /// The pre-session that carries the CSRF token before login.
    pub(crate) pre: PreSession,
    /// Set when the pre-session cookie must be sent or removed.
    pub(crate) pre_cookie: Option<CookieChange>,
    /// The request's flash messages.
    pub(crate) flash: FlashState,
    /// With device-bound sessions: the values of the companion cookie the
    /// request sent, opened only if a bound session changes.
    pub(crate) companion: Vec<Box<str>>,
    /// Whether the response offers to bind the session (after a login).
    pub(crate) offer_binding: bool,
    /// Whether the handler ended the request's session (logout, a login
    /// that replaced it): a companion cookie goes with it.
    pub(crate) ended: bool,
    /// What of the site's data the response asks the browser to clear
    /// (with `clear_site_data_on_logout`): set by a logout.
    pub(crate) clearing: Clearing,
    /// With a session registry: the request's `User-Agent`, made into a
    /// label only when a record is written (at login and re-issue, not on
    /// every request).
    pub(crate) user_agent: Option<Box<str>>,
    /// With a session registry, when the request began: the last activity
    /// its re-seals record, the time its registry record was judged by.
    pub(crate) began_at: Option<u64>,
    /// Whether the handler asked for a CSRF token: a response that shows
    /// one is kept out of shared caches, as one that sets a cookie is.
    pub(crate) token_shown: bool,
    /// Whether the response's headers were made
    /// ([`SessionHandle::finish`]): nothing may change after that.
    pub(crate) finished: bool,
    /// Whether the handler looked at the session (its data, its user, its
    /// flash messages, whether there is one): the response depends on the
    /// session cookie or bearer token, and says so in `Vary`.
    pub(crate) read: bool,
}

/// The request's pre-session: opened only when something needs it (a CSRF
/// check or a token before login).
pub(crate) enum PreSession {
    /// The values of its cookie the request sent, not yet opened.
    Unopened(Vec<Box<str>>),
    /// Opened (or none of the values opened), and whether a cookie came.
    Opened(Option<Session<u64>>, bool),
}

impl State {
    pub(crate) fn new(
        current: Option<Verified<Vec<u8>>>,
        bearer: bool,
        pre: Vec<Box<str>>,
        flash: FlashState,
    ) -> Self {
        Self {
            current: current.map(Arc::new),
            decoded: None,
            session_cookie: None,
            bearer,
            kept_unreadable: false,
            undecodable: None,
            injected: Vec::new(),
            pre: PreSession::Unopened(pre),
            pre_cookie: None,
            flash,
            companion: Vec::new(),
            offer_binding: false,
            ended: false,
            clearing: Clearing::Nothing,
            user_agent: None,
            began_at: None,
            token_shown: false,
            finished: false,
            read: false,
        }
    }

    /// The pre-session, opened now if it was not yet: its data is when its
    /// ID was first issued (Unix seconds).
    pub(crate) fn pre(&mut self, sealer: &Sealer) -> Option<&Session<u64>> {
        if let PreSession::Unopened(values) = &self.pre {
            let sent = !values.is_empty();
            let opened = values.iter().find_map(|value| {
                let raw = sealer
                    .open_raw(value)
                    .inspect_err(|err| tracing::info!(reason = %err, "pre-session cookie refused"))
                    .ok()?;
                match raw.decode::<u64>() {
                    Ok(opened) => Some(opened.into_session()),
                    // Sealed with no data by an earlier release: first
                    // issued when it was sealed.
                    Err(_) if raw.session().data().is_empty() => {
                        let issued = raw.session().times().map_or(0, |times| times.issued_at);
                        Some(raw.session().with_data(issued))
                    }
                    Err(err) => {
                        tracing::info!(reason = %err, "pre-session cookie refused");
                        None
                    }
                }
            });
            self.pre = PreSession::Opened(opened, sent);
        }
        match &self.pre {
            PreSession::Opened(opened, _) => opened.as_ref(),
            PreSession::Unopened(_) => None,
        }
    }

    /// Whether the request carried a pre-session cookie.
    fn pre_sent(&self) -> bool {
        match &self.pre {
            PreSession::Unopened(values) => !values.is_empty(),
            PreSession::Opened(_, sent) => *sent,
        }
    }

    /// Makes `session` the request's session, as this server just sealed it.
    fn set_current<T: SessionValue>(&mut self, issued: Issued<T>) -> Arc<Verified<T>> {
        let typed = Arc::new(Verified::new(issued.typed));
        self.current = Some(Arc::new(Verified::new(issued.raw)));
        self.decoded = Some(Arc::clone(&typed) as Arc<dyn Any + Send + Sync>);
        self.session_cookie = Some(CookieChange::Set(issued.text));
        self.undecodable = None;
        typed
    }

    /// The session ended elsewhere while this request ran: no session any
    /// more, but its cookie is left as it is. That cookie no longer opens,
    /// and another request of the same browser (a double submit) may have
    /// replaced it with a good one, which a removal here could overwrite.
    pub(super) fn lose(&mut self) {
        self.current = None;
        self.undecodable = None;
        self.decoded = None;
        // A cookie this handler already sealed (an update before the new
        // ID) carries the ended session's ID: it is not sent either.
        if matches!(self.session_cookie, Some(CookieChange::Set(_))) {
            self.session_cookie = None;
        }
    }

    /// The user logged out: no session any more, and its cookie goes, with
    /// the unread flash messages the request brought.
    fn log_out(&mut self, flash: &super::flash::FlashConfig) {
        self.forget();
        self.flash.forget_brought(flash);
        self.clearing = Clearing::Everything;
    }

    /// No session any more: its cookie goes.
    fn forget(&mut self) {
        self.current = None;
        self.undecodable = None;
        self.decoded = None;
        self.session_cookie = Some(CookieChange::Remove);
        self.ended = true;
    }
}

/// What of the site's data a response asks the browser to clear, after a
/// logout ([`WebConfigBuilder::clear_site_data_on_logout`](super::WebConfigBuilder::clear_site_data_on_logout)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Clearing {
    /// Nothing: no logout.
    Nothing,
    /// Whatever the configuration names.
    Everything,
    /// The same but the cookies: the response leaves the session cookie as
    /// it is.
    KeepingCookies,
}

/// One request's session state and the settings: the one allocation per
/// request that the handle, its typed views and the integration share.
pub(crate) struct Shared {
    state: Mutex<State>,
    pub(crate) ops: Arc<dyn Ops>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // The state is plain data that every writer leaves consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The state, for an answer about the session that the handler's
    /// response may depend on ([`State::read`]).
    pub(crate) fn read(&self) -> MutexGuard<'_, State> {
        let mut state = self.lock();
        state.read = true;
        state
    }
}

/// How [`Sessions::login_with_options`] starts a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoginOptions {
    remember: bool,
    ticket: Option<LoginTicket>,
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

    /// For a credential checked since `ticket` was read
    /// ([`SessionHandle::login_ticket`], before the check): the login is
    /// refused with [`LoginError::RevokedSinceCheck`] (`401`) if the user was
    /// logged out everywhere, or everyone was, meanwhile, so that a
    /// password checked as it changed starts no session that outlives the
    /// change's logout.
    #[must_use]
    pub fn checked_since(mut self, ticket: LoginTicket) -> Self {
        self.ticket = Some(ticket);
        self
    }
}

/// A session call of a [`SessionHandle`] failed. [`HandleError::status`]
/// and [`HandleError::body`] are the answer every adapter gives.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandleError {
    /// The request has no session (none was sent, or the one sent was
    /// expired, revoked, tampered with, sealed under an unknown key, or
    /// holds data of another type).
    #[error("no session: sign in first")]
    NoSession,
    /// The request's session cookie is sealed under a key this server does
    /// not have yet, or holds as due to seal later (a key rollout in
    /// progress, or a key promoted ahead of its schedule): it is kept, and
    /// neither [`Sessions::login`], [`Sessions::update_or_insert`] nor
    /// [`SessionHandle::logout`] replaces or removes it, since none can end
    /// that session on the servers that read it. Answer `503`, so that the
    /// client retries.
    #[error(
        "the session cookie is sealed under a key this server does not have or holds as not due yet; it is \
         kept and not replaced: deploy the same keyring to every server"
    )]
    UnreadableSession,
    /// The handler asked for the session, but no session layer or
    /// middleware wraps its route.
    #[error(
        "no session layer wraps this route: add the framework's session layer or middleware (SessionLayer, \
         SessionMiddleware) around it"
    )]
    NoLayer,
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
    /// The user has as many sessions as the limit allows
    /// ([`LimitPolicy::RefuseLogin`](super::LimitPolicy::RefuseLogin)): no
    /// session was started, and nothing changed (a login that lost the last
    /// place to logins at the same moment included). Sign out another
    /// device first.
    #[error("the user has {max} sessions already, the most allowed: sign out another device first")]
    SessionLimit {
        /// The limit.
        max: usize,
    },
    /// The call needs a session registry
    /// ([`WebConfigBuilder::session_registry`](super::WebConfigBuilder::session_registry)),
    /// and the configuration has none.
    #[error("no session registry is configured: add one with WebConfigBuilder::session_registry")]
    NoRegistry,
    /// The response's headers were already made
    /// ([`SessionHandle::finish`]): a change now (in a streamed body, an
    /// upgraded connection or a spawned task) could not reach the browser,
    /// and nothing changed.
    #[error(
        "the response's headers were already sent, and the session can no longer change: change it in the \
         handler, before it returns its response (not in a streamed body, an upgraded connection or a spawned \
         task), or use the Verifier for changes outside a request"
    )]
    Finished,
}

impl HandleError {
    /// [`HandleError::NoLayer`], logged at `error`: a route without the
    /// session layer is a deployment mistake (it has no CSRF checks
    /// either), and a framework may turn the extractor's error into
    /// something quieter (actix-web's `Option<T>` extractor makes it
    /// `None`, logged at `debug`). The adapters' extractors use this.
    #[must_use]
    pub fn no_layer() -> Self {
        tracing::error!("a handler asked for the session on a route that no session layer wraps");
        Self::NoLayer
    }

    /// The status code to answer with: `401` without a session (or one
    /// logged out, or expired, while the request ran, or a login whose
    /// credential was checked as the user was logged out), `400` for a
    /// user ID too long to sign in with, `409` at the session limit, `503`
    /// when the store could not be reached or the session cookie cannot be
    /// read on this server (the client should retry), `500` otherwise.
    #[must_use]
    pub fn status(&self) -> u16 {
        match self {
            HandleError::NoSession
            | HandleError::Login(LoginError::Ended | LoginError::RevokedSinceCheck)
            | HandleError::Seal(SealError::Expired) => 401,
            HandleError::Login(LoginError::UserIdTooLong { .. }) => 400,
            HandleError::SessionLimit { .. } => 409,
            HandleError::Store(_)
            | HandleError::Login(LoginError::Store(_))
            | HandleError::UnreadableSession => 503,
            _ => 500,
        }
    }

    /// A body for the answer that says no more than the status. The cause
    /// is logged with `tracing` (at `info` for `400`, `warn` for `503`,
    /// `error` for `500`).
    #[must_use]
    pub fn body(&self) -> &'static str {
        match self.status() {
            401 => "no session",
            400 => {
                // The user ID may come from the request: not an error of the server's.
                tracing::info!(error = %self, "login refused");
                "user ID too long"
            }
            409 => "too many sessions: sign out another device first",
            503 if matches!(self, HandleError::UnreadableSession) => {
                // Said where the cookie was refused, at `warn` once a minute
                // at most: any client can name a key this server lacks.
                tracing::debug!(error = %self, "session cookie kept, not replaced");
                "session unavailable on this server, try again"
            }
            503 => {
                tracing::warn!(error = %self, "session store unavailable");
                "session store unavailable, try again"
            }
            _ => {
                tracing::error!(error = %self, "session call failed");
                "internal error"
            }
        }
    }
}

/// The session handle of one request, whatever the session's data type:
/// log out, renew the ID, flash messages, the CSRF token, and the typed
/// views ([`SessionHandle::typed`], [`SessionHandle::current`]) that log in
/// and change the data.
///
/// A web integration gets one per request from [`WebConfig::begin`](super::WebConfig::begin)
/// and hands it to the handler; each call that changes the session seals it
/// at once, so that an error (a session too large for a cookie, a store that
/// cannot be reached) reaches the handler, not the client, and the
/// integration writes the cookies the calls decided on when the response
/// leaves ([`SessionHandle::finish`]).
#[derive(Clone)]
pub struct SessionHandle {
    pub(crate) shared: Arc<Shared>,
    /// The handle this one took the place of in the request: the layer
    /// this one runs inside ([`SessionHandle::inside`]).
    pub(crate) outer: Option<Arc<SessionHandle>>,
}

impl std::fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("SessionHandle")
            .field("current", &state.current.as_ref().map(|v| v.session()))
            .field("changed", &state.session_cookie.is_some())
            .finish_non_exhaustive()
    }
}

impl SessionHandle {
    pub(crate) fn new(state: State, ops: Arc<dyn Ops>) -> Self {
        Self { shared: Arc::new(Shared { state: Mutex::new(state), ops }), outer: None }
    }

    /// This handle, recorded as running inside the layer whose handle is
    /// `outer` (one for another cookie, [`Nesting::Separate`](super::Nesting::Separate)).
    /// An adapter puts what this returns in the request in `outer`'s place:
    /// a layer further in then finds every layer out
    /// ([`WebConfig::nested_in`](super::WebConfig::nested_in)), so that one
    /// added twice around another runs once.
    #[must_use]
    pub fn inside(self, outer: SessionHandle) -> SessionHandle {
        Self { outer: Some(Arc::new(outer)), ..self }
    }

    /// The handle of the layer this one runs inside, for another cookie
    /// ([`Nesting::Separate`](super::Nesting::Separate)), if any. Both
    /// layers check the CSRF token of an unsafe request, each in its own
    /// header or form field (give the inner configuration other names,
    /// [`csrf_header`](super::WebConfigBuilder::csrf_header) and
    /// [`csrf_field`](super::WebConfigBuilder::csrf_field)): a form inside
    /// carries both tokens, the outer one's from this handle.
    #[must_use]
    pub fn outer(&self) -> Option<&SessionHandle> {
        self.outer.as_deref()
    }

    /// The typed view of the session: what logs in and changes the data.
    #[must_use]
    pub fn typed<T>(&self) -> Sessions<T> {
        Sessions { handle: self.clone(), data: std::marker::PhantomData }
    }

    /// The request's session as `T`, if it has one (as changed by this
    /// handler). A session whose data is not a `T` (a type changed without
    /// [`Versioned`](crate::versioned::Versioned)) is no session: it is
    /// logged, and its cookie removed; a logout or login in the same
    /// request still ends it on every server.
    #[must_use]
    pub fn current<T: SessionValue>(&self) -> Option<Current<T>> {
        self.verified::<T>().map(|verified| Current { verified, handle: self.clone() })
    }

    fn verified<T: SessionValue>(&self) -> Option<Arc<Verified<T>>> {
        let mut state = self.shared.read();
        let raw = state.current.clone()?;
        // The last decoding, if it was as `T`.
        if let Some(Ok(typed)) = state.decoded.clone().map(|decoded| decoded.downcast::<Verified<T>>()) {
            return Some(typed);
        }
        match raw.decode::<T>() {
            Ok(typed) => {
                let typed = Arc::new(typed);
                state.decoded = Some(Arc::clone(&typed) as Arc<dyn Any + Send + Sync>);
                Some(typed)
            }
            Err(err) => {
                tracing::info!(reason = %err, "session cookie refused");
                state.forget();
                state.undecodable = Some(raw);
                None
            }
        }
    }

    /// The request's session's user, if it has a signed-in session.
    #[must_use]
    pub fn user_id(&self) -> Option<String> {
        self.shared.read().current.as_ref().and_then(|v| v.session().user_id().map(str::to_owned))
    }

    /// Whether the request's session is device-bound (DBSC): its browser
    /// proved, at most the bound lifetime ago, that it holds the key the
    /// session was bound to ([`WebConfigBuilder::device_bound_sessions`](super::WebConfigBuilder::device_bound_sessions)).
    #[must_use]
    pub fn is_device_bound(&self) -> bool {
        self.shared.read().current.as_ref().is_some_and(|v| v.session().is_device_bound())
    }

    /// When the request's signed-in session's user last proved a
    /// credential: at login, or at [`Sessions::reauthenticate`] since. `None`
    /// without a signed-in session. (It is the session's issue time, which
    /// neither re-issue nor remember-me moves.)
    #[must_use]
    pub fn authenticated_at(&self) -> Option<OffsetDateTime> {
        let state = self.shared.read();
        let session = state.current.as_ref()?.session();
        session.user_id().and(session.issued_at())
    }

    /// Whether the request has a signed-in session whose user proved a
    /// credential less than `window` ago, on the sealer's clock: the check
    /// before a sensitive action (changing an e-mail address, a password,
    /// payment details). When it fails, ask for the password again and call
    /// [`Sessions::reauthenticate`]; the adapters' `RequireSession`
    /// routes do this with `authenticated_within`.
    #[must_use]
    pub fn authenticated_within(&self, window: std::time::Duration) -> bool {
        let Some(at) = self.authenticated_at() else {
            return false;
        };
        let now = self.shared.ops.settings().sealer.clock().unix_now();
        // Issued ahead of this server's clock (within the leeway): just now.
        let age = u64::try_from(now.saturating_sub(at.unix_timestamp())).unwrap_or(0);
        age < window.as_secs()
    }

    /// What a route that requires a signed-in session (and, with `within`,
    /// an authentication less than `within` ago) makes of this request:
    /// `None` lets it through. The adapters' `RequireSession` routes answer
    /// a refusal with [`NoSessionAnswer::for_request`] (a redirect for a
    /// browser) or `401` and [`RouteRefusal::json_body`]; but
    /// [`RouteRefusal::SessionUnreadable`] with `503`
    /// ([`HandleError::UnreadableSession`]): the client keeps its session.
    ///
    /// [`NoSessionAnswer::for_request`]: crate::redirect::NoSessionAnswer::for_request
    #[must_use]
    pub fn required_route_refusal(&self, within: Option<std::time::Duration>) -> Option<RouteRefusal> {
        if self.session_unreadable() {
            Some(RouteRefusal::SessionUnreadable)
        } else if self.user_id().is_none() {
            Some(RouteRefusal::NoSession)
        } else if within.is_some_and(|window| !self.authenticated_within(window)) {
            Some(RouteRefusal::Reauthenticate)
        } else {
            None
        }
    }

    /// Whether the request's session cookie (or bearer token) is sealed
    /// under a key this server does not have, or holds as due later (a
    /// keyring rollout under way): the request has no session here, yet
    /// another server can read it, and it is kept. A route that requires a
    /// session answers `503` then ([`HandleError::UnreadableSession`]), not
    /// "no session": a client told `401` would drop a session that lives.
    #[must_use]
    pub fn session_unreadable(&self) -> bool {
        self.current_or_unreadable().1
    }

    /// Whether the request has a session, signed in or anonymous (of any
    /// data type: [`SessionHandle::current`] decodes it).
    #[must_use]
    pub fn has_session(&self) -> bool {
        self.shared.read().current.is_some()
    }

    /// The sealer of the request's sessions: for their CSRF tokens
    /// ([`Sealer::csrf_token`]). The response is then taken to show one, and
    /// is kept out of shared caches ([`ResponseCookies::no_store`](crate::web::ResponseCookies::no_store)),
    /// if its headers are not made yet: a token taken later (in a streamed
    /// body) does not mark it. Take tokens in the handler.
    #[must_use]
    pub fn sealer(&self) -> &Sealer {
        self.shared.lock().token_shown = true;
        &self.shared.ops.settings().sealer
    }

    pub(super) fn ops(&self) -> Arc<dyn Ops> {
        Arc::clone(&self.shared.ops)
    }

    /// The session a logout or login ends (the request's, or one whose
    /// data did not decode), and whether there is none because its cookie
    /// is sealed under a key this server does not have or holds as due
    /// later (kept).
    fn current_or_unreadable(&self) -> (Option<Arc<Verified<Vec<u8>>>>, bool) {
        let state = self.shared.lock();
        let ending = state.current.clone().or_else(|| state.undecodable.clone());
        (ending, state.current.is_none() && state.kept_unreadable)
    }

    /// Whether the request came with a bearer token, and when it began
    /// (with a registry): what sealing its session again needs.
    fn sealing_state(&self) -> (bool, Option<u64>) {
        let state = self.shared.lock();
        (state.bearer, state.began_at)
    }

    /// Seals `session` as the request's session, whose cookie (or bearer
    /// token) goes out with the response.
    fn replace<T: SessionValue>(&self, session: Session<T>) -> Result<Arc<Verified<T>>, HandleError> {
        let issued = self.issue(session)?;
        Ok(self.shared.lock().set_current(issued))
    }

    /// Seals `session` as this request's session, without making it so.
    /// A bound session's data must fit its companion cookie too.
    fn issue<T: SessionValue>(&self, session: Session<T>) -> Result<Issued<T>, HandleError> {
        let settings = self.shared.ops.settings();
        let (bearer, began_at) = self.sealing_state();
        let cookie = (!bearer).then_some(&settings.cookie);
        let issued = settings.sealer.issue_for(session, cookie, began_at)?;
        if let Some(dbsc) = settings.dbsc.as_ref().filter(|_| issued.raw.session().is_device_bound()) {
            dbsc.check_companion(issued.raw.session(), issued.raw.is_versioned_data())?;
        }
        Ok(issued)
    }

    /// The pre-session served its purpose (CSRF before there is a session):
    /// the session's token replaces it.
    fn end_pre_session(&self) {
        let mut state = self.shared.lock();
        state.pre_cookie = state.pre_sent().then_some(CookieChange::Remove);
        state.pre = PreSession::Opened(None, false);
    }

    /// Ends the signed-in sessions of an injected duplicate session cookie
    /// ([`State::injected`]), as logout and login end the request's own.
    /// Anonymous ones are left: anyone can make them, up to four a request,
    /// and ending them is a store write each, which would let any client
    /// fill the store; they carry no one's sign-in.
    async fn end_injected(&self) -> Result<(), StoreError> {
        let injected = std::mem::take(&mut self.shared.lock().injected);
        for session in injected.iter().filter(|session| session.user_id().is_some()) {
            self.revoke(session).await?;
            self.audit(AuditKind::InjectedCookieEnded, |event| {
                event.user(session.user_id()).session(session.id())
            });
            self.unregister(session).await;
        }
        Ok(())
    }

    /// Logs `session` out on every server: denylisted until its absolute
    /// expiry plus the clock leeway.
    async fn revoke(&self, session: &Session<Vec<u8>>) -> Result<(), StoreError> {
        self.ops()
            .revoke_session(session.id(), self.shared.ops.settings().sealer.denylist_until(session))
            .await
    }

    /// [`HandleError::Finished`] once the response's headers were made:
    /// every call that changes the session or its cookies checks it before
    /// it changes anything (a login again before it ends the old session).
    /// A call from another task that is past that point when the response
    /// is made still loses its cookie: make session calls in the handler.
    pub(crate) fn unfinished(&self) -> Result<(), HandleError> {
        if self.shared.lock().finished {
            tracing::error!("{}", HandleError::Finished);
            return Err(HandleError::Finished);
        }
        Ok(())
    }

    /// Gives the session a new ID, logging the old one out on every server:
    /// call it when the session's privileges change.
    ///
    /// # Errors
    /// [`HandleError::NoSession`], [`HandleError::Store`] if the store
    /// cannot be reached (the session is then unchanged, unless the store
    /// timed out after taking the write: SQLite's runs to its end, and the
    /// old ID may be logged out all the same, as after a logout),
    /// [`LoginError::Ended`] if the session was logged out since the
    /// request opened it (a new ID would bring it back; the request then has
    /// no session, and its cookie is left as it is: it no longer opens, and
    /// a double submit's other request may have replaced it), or a sealing
    /// error.
    pub async fn renew_id(&self) -> Result<(), HandleError> {
        self.unfinished()?;
        let current = self.shared.lock().current.clone().ok_or(HandleError::NoSession)?;
        let mut session = current.session().clone();
        session.renew_id().map_err(LoginError::from)?;
        let old = current.session();
        let until = self.shared.ops.settings().sealer.denylist_until(old);
        if !self.ops().revoke_session_once(old.id(), until).await? {
            self.shared.lock().lose();
            return Err(LoginError::Ended.into());
        }
        let (old, new) = (current.session().id(), session.id());
        if let Err(err) = self.reseal(&current, session) {
            // The old ID has ended on every server: a logout.
            let ended = current.session();
            self.audit(AuditKind::Logout, |event| event.user(ended.user_id()).session(old));
            self.unregister(ended).await;
            return Err(err);
        }
        self.audit(AuditKind::IdRenewed, |event| {
            event.user(current.session().user_id()).session(new).previous(Some(old))
        });
        self.unregister(current.session()).await;
        self.register_current().await;
        Ok(())
    }

    /// Records the request's session as it now is in the registry, if any.
    async fn register_current(&self) {
        let current = self.shared.lock().current.clone();
        if let Some(current) = current {
            self.register(current.session()).await;
        }
    }

    pub(crate) fn audit(&self, kind: AuditKind, fill: impl FnOnce(AuditEvent) -> AuditEvent) {
        self.shared.ops.settings().audit(kind, fill);
    }

    /// Seals `session`, the request's session `current` with a new ID or
    /// epoch, as the request's session. The old one has ended by now: if
    /// the new one cannot be sealed, the request has no session any more.
    fn reseal(&self, current: &Verified<Vec<u8>>, session: Session<Vec<u8>>) -> Result<(), HandleError> {
        let (bearer, began_at) = self.sealing_state();
        let settings = self.shared.ops.settings();
        let versioned = current.opened().is_versioned_data();
        let cookie = (!bearer).then_some(&settings.cookie);
        let issued = settings.sealer.issue_raw(session, versioned, cookie, began_at);
        let mut state = self.shared.lock();
        match issued {
            Ok((text, raw)) => {
                state.current = Some(Arc::new(Verified::new(raw)));
                state.decoded = None;
                state.session_cookie = Some(CookieChange::Set(text));
                Ok(())
            }
            Err(err) => {
                state.forget();
                Err(err.into())
            }
        }
    }

    /// What the store says of `user_id` now: read it **before** checking
    /// the user's credential, and start the login with it
    /// ([`LoginOptions::checked_since`]), so that a password checked while
    /// the user changed it and logged out everywhere starts no session that
    /// outlives that logout (see
    /// [`Verifier::login_ticket`](crate::Verifier::login_ticket)).
    ///
    /// # Errors
    /// [`LoginError::Store`] if the store cannot be read (`503`), or
    /// [`LoginError::UserIdTooLong`] (`400`).
    pub async fn login_ticket(&self, user_id: &str) -> Result<LoginTicket, HandleError> {
        Ok(self.ops().login_ticket(user_id).await?)
    }

    /// Logs this session out on every server and removes its cookie. Without
    /// a signed-in session (none, or an anonymous one) it also logs out a
    /// device-bound session whose bound cookie lapsed before the browser
    /// refreshed it: the session its companion cookie names.
    ///
    /// # Errors
    /// [`HandleError::Store`] if the store did not record the logout: the
    /// session is then kept, so that the user can try again.
    /// [`HandleError::UnreadableSession`] if the request's session cookie is
    /// sealed under a key this server does not have yet (or holds as due
    /// later): removing the cookie would not end the session on the servers
    /// that can read it, so nothing changes and the client should retry
    /// (`503`).
    pub async fn logout(&self) -> Result<(), HandleError> {
        self.unfinished()?;
        let (current, kept_unreadable) = self.current_or_unreadable();
        if kept_unreadable {
            return Err(HandleError::UnreadableSession);
        }
        let mut ending: Vec<Session<Vec<u8>>> =
            current.iter().map(|current| current.session().clone()).collect();
        if ending.iter().all(|session| session.user_id().is_none()) {
            // No one is signed in: a bound cookie that lapsed left only its
            // companion (beside an anonymous session, perhaps), and the
            // session it names is logged out all the same.
            ending.extend(self.lapsed_bound_sessions().await?);
        }
        // Each is audited as soon as it has ended, whatever fails next.
        for session in &ending {
            self.revoke(session).await?;
            self.audit(AuditKind::Logout, |event| event.user(session.user_id()).session(session.id()));
        }
        self.end_injected().await?;
        self.shared.lock().log_out(&self.shared.ops.settings().flash);
        for session in &ending {
            self.unregister(session).await;
        }
        Ok(())
    }

    /// For a request without a signed-in session (none, or an anonymous
    /// one): the device-bound sessions its companion cookies name that the
    /// store has not ended. A bound cookie that lapsed before the browser
    /// refreshed it leaves the companion alone; a logout or login must end
    /// that session too, or a copy of the bound cookie would open until its
    /// sealed deadline. One already ended (a companion can outlive its
    /// session: after a logout everywhere, say) is left out, so that none
    /// is ended, and audited, twice; one the store's answer is wrong for (an
    /// epoch behind the session's) is not ended, and so is kept in.
    async fn lapsed_bound_sessions(&self) -> Result<Vec<Session<Vec<u8>>>, StoreError> {
        let Some(dbsc) = &self.shared.ops.settings().dbsc else { return Ok(Vec::new()) };
        let sent = dbsc.companion_sessions(self.shared.lock().companion.iter().map(|value| &**value));
        let mut alive: Vec<Session<Vec<u8>>> = Vec::with_capacity(sent.len());
        for session in sent {
            // Each once: a companion cookie sent twice names one session.
            if alive.iter().any(|other| other.id() == session.id()) {
                continue;
            }
            let live = match session.user_id() {
                Some(user) => {
                    let checked = crate::check_revocation(
                        &session,
                        &self.ops().state(user, session.id(), session.epoch()).await?,
                    );
                    !matches!(checked, Err(crate::VerifyError::Revoked(_)))
                }
                None => true,
            };
            if live {
                alive.push(session);
            }
        }
        Ok(alive)
    }

    /// Logs the session's user out of every session they have, on every
    /// server, and removes this cookie. Returns the user's new epoch.
    ///
    /// # Errors
    /// [`HandleError::NoSession`] without a signed-in session,
    /// [`LoginError::Ended`] if the session was logged out since the request
    /// opened it (the request then has no session, and nothing is changed:
    /// an ended session, an intruder's the owner has just ended say, does
    /// not sign the owner out of the sessions it did not end; the second
    /// request of a double submit ends this way too: answer it as a
    /// logout), or [`HandleError::Store`] if the store could not answer or
    /// did not record it (nothing is then changed).
    pub async fn logout_everywhere(&self) -> Result<u64, HandleError> {
        self.unfinished()?;
        let current = self.still_signed_in().await.inspect_err(|err| {
            // Answered as a logout: the browser is cleared as by one, and
            // the unread flash messages the request brought go, but its
            // cookie is left as it is (another request may have replaced
            // it with a good one). Not for a cookie under a key this
            // server lacks: that session may be alive elsewhere.
            let mut state = self.shared.lock();
            let answered_as_logout =
                matches!(err, HandleError::NoSession | HandleError::Login(LoginError::Ended));
            if answered_as_logout && !state.kept_unreadable {
                if state.clearing == Clearing::Nothing {
                    state.clearing = Clearing::KeepingCookies;
                }
                state.flash.forget_brought(&self.shared.ops.settings().flash);
            }
        })?;
        let session = current.session();
        let user_id = session.user_id().ok_or(HandleError::NoSession)?;
        let epoch = self.ops().revoke_user(user_id).await?;
        self.shared.lock().log_out(&self.shared.ops.settings().flash);
        self.audit(AuditKind::LogoutEverywhere { epoch }, |event| {
            event.user(Some(user_id)).session(session.id())
        });
        self.unregister_user(user_id, epoch).await;
        Ok(epoch)
    }

    /// Signs the user out of every other session they have, on every
    /// server, and keeps this one signed in: after a password change, say.
    /// The user's epoch moves on, which ends every session sealed at the
    /// old one (copies of this session's cookie too), and this session is
    /// sealed again at the new epoch, with a new ID. Returns the new epoch.
    ///
    /// # Errors
    /// [`HandleError::NoSession`] without a signed-in session,
    /// [`HandleError::Store`] if the store could not say whether this
    /// session is still live, or did not record the new epoch (then nothing
    /// changed, unless the store failed after writing it, as a timeout can:
    /// then every session of the user has ended), or did not answer whether
    /// this session had ended after it (every session of the user, this one
    /// too, has then ended), [`LoginError::Ended`] if the session ended
    /// while the request ran: the user was logged out everywhere, or this
    /// session by its ID (a logout, "end this device"), since the request
    /// opened it. The store is asked first, and a session it has ended
    /// changes nothing (an intruder's request, its session just ended by
    /// the owner, does not sign the owner out). One that ends between that
    /// check and the new epoch is not carried on either (that would bring
    /// it back): the call then ended every session of the user, this one
    /// too, and is audited as a logout everywhere; two calls at once, a
    /// double submit, can end this way: the server cannot tell them from a
    /// thief's copy of the cookie racing the user's. Or a sealing error
    /// (every session of the user, this one too, has then ended).
    pub async fn logout_others(&self) -> Result<u64, HandleError> {
        self.unfinished()?;
        let current = self.still_signed_in().await?;
        let user_id = current.session().user_id().ok_or(HandleError::NoSession)?.to_owned();
        let epoch = self.ops().revoke_user(&user_id).await?;
        let old = current.session();
        let until = self.shared.ops.settings().sealer.denylist_until(old);
        let kept = self.ops().carries_on(old.id(), old.epoch(), epoch, until).await;
        if !matches!(kept, Ok(true)) {
            // A new epoch would bring it back: every session of the user
            // has ended, this one too.
            self.shared.lock().lose();
            self.audit(AuditKind::LogoutEverywhere { epoch }, |event| {
                event.user(Some(&user_id)).session(old.id())
            });
            self.unregister_user(&user_id, epoch).await;
            return Err(match kept {
                Err(err) => err.into(),
                Ok(_) => LoginError::Ended.into(),
            });
        }
        let mut session = current.session().clone().with_user(user_id.clone(), epoch);
        // The old epoch has ended: only a new cookie carries on. Without
        // one, every session of the user has ended, this one too.
        let resealed = match session.renew_id() {
            Ok(()) => {
                let new = session.id();
                self.reseal(&current, session).map(|()| new)
            }
            Err(err) => {
                self.shared.lock().forget();
                Err(SealError::from(err).into())
            }
        };
        let old = current.session().id();
        let new = match resealed {
            Ok(new) => new,
            Err(err) => {
                self.audit(AuditKind::LogoutEverywhere { epoch }, |event| {
                    event.user(Some(&user_id)).session(old)
                });
                self.unregister_user(&user_id, epoch).await;
                return Err(err);
            }
        };
        self.audit(AuditKind::LogoutOthers { epoch }, |event| {
            event.user(current.session().user_id()).session(new).previous(Some(old))
        });
        if let Some(user_id) = current.session().user_id() {
            self.unregister_user(user_id, epoch).await;
        }
        self.register_current().await;
        Ok(epoch)
    }

    /// Adds a flash message for the next page this browser loads (after a
    /// redirect, say). Flash messages travel in a sealed cookie of their
    /// own: they need no session, and one added by a logout's or login's
    /// request survives it (the unread ones the request brought do not). At most
    /// [`MAX_FLASHES`](super::MAX_FLASHES) wait at once (the oldest are
    /// dropped), each for at most [`FLASH_TIMEOUT`](super::FLASH_TIMEOUT).
    ///
    /// # Errors
    /// [`HandleError::Seal`] if the messages do not fit in a cookie (none
    /// is then added).
    pub fn flash(&self, level: Level, message: impl Into<String>) -> Result<(), HandleError> {
        self.unfinished()?;
        let flash = Flash { level, message: message.into() };
        Ok(self.shared.lock().flash.push(&self.shared.ops.settings().flash, flash)?)
    }

    /// The flash messages the request brought (and any added since), which
    /// are then gone: the response removes their cookie. None once the
    /// response's headers were made ([`HandleError::Finished`], logged):
    /// their cookie could no longer be removed, and they would show again.
    #[must_use]
    pub fn take_flashes(&self) -> Vec<Flash> {
        if self.unfinished().is_err() {
            return Vec::new();
        }
        self.shared.read().flash.take(&self.shared.ops.settings().flash)
    }

    /// The CSRF token to put in this page's forms or scripts.
    ///
    /// With a session, the token is bound to it. Without one (a login
    /// form), it is bound to a *pre-session*: a small sealed cookie with a
    /// random ID and no user, created here if the request had none, so that
    /// the login form is protected too (login CSRF). Login replaces it. A
    /// pre-session with less than half its lifetime
    /// ([`PRE_SESSION_TIMEOUT`](super::PRE_SESSION_TIMEOUT)) left is sealed
    /// again here with the same ID, so that a form shown now does not expire
    /// minutes later and the forms shown before keep working, as long as
    /// the new cookie ends within 24 hours of the ID's first issue; then
    /// with a new ID.
    ///
    /// # Errors
    /// [`HandleError::Seal`] if no random pre-session ID can be drawn or the
    /// pre-session cannot be sealed.
    pub fn csrf_token(&self) -> Result<String, HandleError> {
        self.unfinished()?;
        let settings = self.shared.ops.settings();
        let mut state = self.shared.lock();
        state.token_shown = true;
        if let Some(current) = &state.current {
            return Ok(settings.sealer.csrf_token(current.session()));
        }
        let now = crate::sealer::opening_time(settings.pre_sealer.clock().unix_now());
        let kept = match state.pre(&settings.pre_sealer) {
            Some(sent) if !pre_session_ending(sent, now) => {
                return Ok(settings.pre_sealer.csrf_token(sent));
            }
            // Near its end, a form shown now could expire before it is sent:
            // the same ID (so that the forms already shown keep working)
            // sealed again for a whole lifetime, ending a day after the
            // ID's first issue at most.
            Some(sent)
                if now.saturating_add(super::PRE_SESSION_TIMEOUT.as_secs()).saturating_sub(*sent.data())
                    <= PRE_SESSION_ID_LIFETIME =>
            {
                Some((sent.id(), *sent.data()))
            }
            _ => None,
        };
        let mut pre = Session::try_new(kept.map_or(now, |(_, first)| first)).map_err(SealError::from)?;
        if let Some((id, _)) = kept {
            pre.set_id(id);
        }
        let (opened, header) = settings.pre_sealer.issue_cookie(pre, &settings.pre_cookie)?;
        let token = settings.pre_sealer.csrf_token(opened.session());
        let sent = state.pre_sent();
        state.pre = PreSession::Opened(Some(opened.into_session()), sent);
        state.pre_cookie = Some(CookieChange::Set(header));
        Ok(token)
    }
}

/// How long one pre-session ID may be good for, from its first issue (24
/// hours): it is sealed again near its end only while the new cookie ends
/// within that, then a new ID, so that a CSRF token bound to it does not
/// stay good for as long as the browser keeps showing login forms.
const PRE_SESSION_ID_LIFETIME: u64 = 24 * 60 * 60;

/// Whether a pre-session sealed with its end less than half its lifetime
/// ([`PRE_SESSION_TIMEOUT`](super::PRE_SESSION_TIMEOUT)) after `now` (Unix
/// seconds): a login form shown now could outlive it.
fn pre_session_ending(pre: &Session<u64>, now: u64) -> bool {
    let half = super::PRE_SESSION_TIMEOUT.as_secs() / 2;
    pre.times().is_none_or(|times| times.expires_at < now.saturating_add(half))
}

/// The session handle of one request, for sessions whose data is a `T`: it
/// logs in and changes the data, and (through [`Deref`]) does all that
/// [`SessionHandle`] does. Get one with [`SessionHandle::typed`]; a
/// framework's `Sessions<T>` extractor wraps it.
pub struct Sessions<T> {
    handle: SessionHandle,
    data: std::marker::PhantomData<fn() -> T>,
}

impl<T> Clone for Sessions<T> {
    fn clone(&self) -> Self {
        Self { handle: self.handle.clone(), data: std::marker::PhantomData }
    }
}

impl<T> std::fmt::Debug for Sessions<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Sessions").field(&self.handle).finish()
    }
}

impl<T> Deref for Sessions<T> {
    type Target = SessionHandle;

    fn deref(&self) -> &SessionHandle {
        &self.handle
    }
}

impl<T: SessionValue> Sessions<T> {
    /// The untyped handle.
    #[must_use]
    pub fn handle(&self) -> &SessionHandle {
        &self.handle
    }

    /// The request's session, if it has one (as changed by this handler);
    /// see [`SessionHandle::current`].
    #[must_use]
    pub fn current(&self) -> Option<Current<T>> {
        self.handle.current()
    }

    /// The request's session if it is signed in (has a user).
    #[must_use]
    pub fn signed_in(&self) -> Option<Current<T>> {
        self.current().filter(|current| current.user_id().is_some())
    }

    /// Starts a session for `user_id`: always a new session ID, bound to
    /// the user's current revocation epoch. A session the request already
    /// had (signed in or anonymous, or device-bound with only its companion
    /// cookie left) is logged out on every server first, so that a cookie
    /// planted or stolen before login dies with it (session fixation). To
    /// keep what an anonymous session held, use
    /// [`login_with`](Self::login_with).
    ///
    /// `user_id` is compared byte for byte wherever it is used (logout
    /// everywhere, session limits, the device list, login tickets): pass
    /// one stable ID per account (a database key, or the name as it was
    /// normalized at sign-up), never the text the user typed, or `Alice`
    /// and `alice` are two users to all of them.
    ///
    /// # Errors
    /// [`HandleError::Store`] or [`HandleError::Login`] if the store cannot
    /// be reached, [`HandleError::Seal`] if the session does not fit in a
    /// cookie: the request's session is then as it was, unless the store
    /// failed after logging it out (while ending the user's oldest session
    /// under a session limit), when it stays logged out and its cookie is
    /// removed. [`HandleError::UnreadableSession`]
    /// if the request's session cookie is sealed under a key this server
    /// does not have yet (a key rollout in progress): that session cannot
    /// be logged out here, and replacing its cookie would leave it valid on
    /// the servers that have the key, so nothing changes; answer `503` and
    /// let the client retry. [`HandleError::SessionLimit`] under a session
    /// limit that refuses logins; under such a limit, also
    /// [`HandleError::Store`] if the registry cannot record or count the
    /// new session: nothing has changed then either.
    pub async fn login(&self, user_id: &str, data: T) -> Result<Current<T>, HandleError> {
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
    ) -> Result<Current<T>, HandleError> {
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
    ) -> Result<Current<T>, HandleError> {
        self.start(user_id, options, carry, AuditKind::Login { remembered: options.remember }).await
    }

    /// Re-authentication: call it once the signed-in user has proven a
    /// credential again (their password, say), before a sensitive action
    /// that [`SessionHandle::authenticated_within`] guards. The session
    /// starts anew as at a login, with the same user, data and remember-me
    /// choice: a new ID (the old one is logged out on every server), and
    /// its issue time, which is the time of the last authentication, is
    /// now. Its absolute timeout counts from now too, as after any login.
    ///
    /// # Errors
    /// [`HandleError::NoSession`] without a signed-in session (of data
    /// type `T`); [`LoginError::Ended`] if the session ended since the
    /// request opened it (logged out by its ID, everywhere, or with
    /// everyone): the request then has no session; otherwise as
    /// [`login`](Self::login).
    pub async fn reauthenticate(&self) -> Result<Current<T>, HandleError> {
        // Ended meanwhile (a logout of everyone, too, which the check after
        // the new epoch below cannot see): not carried on.
        self.handle.still_signed_in().await?;
        let current = self.signed_in().ok_or(HandleError::NoSession)?;
        let user_id = current.user_id().ok_or(HandleError::NoSession)?.to_owned();
        let options = LoginOptions::default().remember(current.is_remembered());
        let data = current.data().clone();
        self.start(&user_id, options, |_| data, AuditKind::Reauthenticated).await
    }

    /// Starts a new session for `user_id` as [`login_with_options`](Self::login_with_options)
    /// says, and audits it as `kind`.
    async fn start(
        &self,
        user_id: &str,
        options: LoginOptions,
        carry: impl FnOnce(Option<Session<T>>) -> T,
        kind: AuditKind,
    ) -> Result<Current<T>, HandleError> {
        self.handle.unfinished()?;
        let ops = self.handle.ops();
        if options.remember && !ops.settings().sealer.has_remember_me() {
            // Before anything changes: the request keeps its session.
            return Err(SealError::NoRememberMe.into());
        }
        let (raw, kept_unreadable) = self.handle.current_or_unreadable();
        if kept_unreadable {
            // It cannot be logged out here, and a new cookie would leave it
            // alive on the servers that can read it.
            return Err(HandleError::UnreadableSession);
        }
        // What can refuse or fail runs before any session is ended: the
        // limit's choice, the epoch, the sealing. Then the request's own
        // session is logged out, and only then others for room, so that a
        // store failing in between costs this request its session, never
        // another device's for a login that did not happen. (Two logins at
        // once may choose the same oldest session and leave one over the
        // limit: ending it twice is harmless, and the next login counts.)
        // Replaced as the request's own session is.
        // As at logout: while no one is signed in (an anonymous session at
        // most), the session a lapsed bound cookie's companion names ends.
        let lapsed = if raw.as_ref().is_none_or(|raw| raw.session().user_id().is_none()) {
            self.handle.lapsed_bound_sessions().await?
        } else {
            Vec::new()
        };
        // Every session this login ends anyway makes room of its own: the
        // request's, a lapsed bound one, an injected duplicate's.
        let ending: Vec<crate::SessionId> = {
            let state = self.handle.shared.lock();
            let injected = state.injected.iter().map(Session::id);
            raw.iter()
                .map(|raw| raw.session().id())
                .chain(lapsed.iter().map(Session::id))
                .chain(injected)
                .collect()
        };
        let room = self.handle.room_for(user_id, &ending).await?;
        // The data it held, if it is a `T` at all. Decoded here, not through
        // the handle: a session of another type must keep its cookie until
        // it is logged out below, in case the login fails before that.
        let previous = raw.as_ref().and_then(|raw| raw.decode::<T>().ok());
        let data = carry(previous.map(Verified::into_session));
        let store_said = ops.login_state(user_id, options.ticket).await?;
        let epoch = store_said.user_epoch;
        let mut session = Session::try_new(data).map_err(LoginError::from)?.with_user(user_id, epoch);
        if options.remember {
            session = session.remembered();
        }
        let issued = self.handle.issue(session)?;
        // Again, past the store's answers: a response made meanwhile would
        // never carry the new cookie, and the old session is about to end.
        self.handle.unfinished()?;
        // Under a limit that refuses, the new session is recorded and the
        // user's sessions counted again before anything ends.
        let recorded = self.handle.claim_place(user_id, issued.raw.session(), &ending).await?;
        let ended: Result<(), HandleError> = async {
            if let Some(raw) = &raw {
                if matches!(kind, AuditKind::Reauthenticated) {
                    // A session logged out while this request ran (this ID,
                    // or everywhere) is not carried on, as by a new ID: its
                    // end comes first, and of concurrent calls only one goes
                    // on.
                    let until = ops.settings().sealer.denylist_until(raw.session());
                    // A logout of everyone since the request checked it
                    // moved the cutoff past its issue time (a session with
                    // no times, which never comes here, counts as ended).
                    let everyone =
                        raw.session().times().is_none_or(|t| t.issued_at <= store_said.revoked_through);
                    if epoch != raw.session().epoch()
                        || everyone
                        || !self.handle.ops().revoke_session_once(raw.session().id(), until).await?
                    {
                        self.handle.shared.lock().lose();
                        return Err(LoginError::Ended.into());
                    }
                } else {
                    self.handle.revoke(raw.session()).await?;
                }
                self.handle.shared.lock().forget();
            }
            if let Err((lapsed_ended, err)) = self.end_after_login(&lapsed, &room).await {
                // These have ended on every server, and no login names them:
                // the request's session, and the lapsed bound ones ended
                // before the failure.
                let ended = raw.iter().map(|raw| raw.session()).chain(lapsed.iter().take(lapsed_ended));
                for session in ended {
                    self.handle.audit(AuditKind::Logout, |event| {
                        event.user(session.user_id()).session(session.id())
                    });
                }
                return Err(err);
            }
            Ok(())
        }
        .await;
        if let Err(err) = ended {
            if recorded {
                self.handle.discard(issued.raw.session()).await;
            }
            return Err(err);
        }
        let verified = {
            let mut state = self.handle.shared.lock();
            // The unread flash messages the request brought were the
            // previous visitor's (whose session may have expired without a
            // logout); a reauthentication is the same user's.
            if !matches!(kind, AuditKind::Reauthenticated) {
                state.flash.forget_brought(&ops.settings().flash);
            }
            state.set_current(issued)
        };
        self.handle.end_pre_session();
        self.handle.shared.lock().offer_binding = true;
        // The login names the session it replaced: the request's, or else
        // the first lapsed bound one; any other that ended is a logout.
        let (previous, others) = match (&raw, lapsed.split_first()) {
            (None, Some((first, others))) => (Some(first.id()), others),
            _ => (raw.as_ref().map(|raw| raw.session().id()), lapsed.as_slice()),
        };
        for session in others {
            self.handle.audit(AuditKind::Logout, |event| event.user(session.user_id()).session(session.id()));
        }
        self.handle.audit(kind, |event| {
            event.user(Some(user_id)).session(verified.session().id()).previous(previous)
        });
        // The replaced session's record goes first: written after the new
        // one, it could push the user's records past the registry's bound,
        // which drops the oldest (a live session, unlisted from then on).
        if let Some(raw) = &raw {
            self.handle.unregister(raw.session()).await;
        }
        for session in &lapsed {
            self.handle.unregister(session).await;
        }
        // For good (a claim lasts five minutes): the session is sent. A
        // claim not written again would leave it uncounted until its next
        // re-issue: one more try.
        if !self.handle.register(verified.session()).await && recorded {
            self.handle.register(verified.session()).await;
        }
        Ok(Current { verified, handle: self.handle.clone() })
    }

    /// What a login ends after the request's own session: lapsed bound
    /// sessions, an injected duplicate cookie's, others for room. On
    /// failure, with how many of the lapsed ones it ended.
    async fn end_after_login(
        &self,
        lapsed: &[Session<Vec<u8>>],
        room: &[crate::SessionRecord],
    ) -> Result<(), (usize, HandleError)> {
        for (ended, session) in lapsed.iter().enumerate() {
            self.handle.revoke(session).await.map_err(|err| (ended, err.into()))?;
        }
        self.handle.end_injected().await.map_err(|err| (lapsed.len(), err.into()))?;
        self.handle.end_for_room(room).await.map_err(|err| (lapsed.len(), err.into()))
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
    /// have yet (a new session would replace it), [`HandleError::Store`] if
    /// the request's session, whose data is not a `T`, or those of an
    /// injected duplicate session cookie cannot be ended (a session of
    /// another type still loses its cookie: it is no session to this
    /// handler), or
    /// [`HandleError::Seal`] if the changed session does not fit in a
    /// cookie. Otherwise nothing is changed then.
    pub async fn update_or_insert<R>(
        &self,
        default: impl FnOnce() -> T,
        change: impl FnOnce(&mut T) -> R,
    ) -> Result<R, HandleError> {
        self.handle.unfinished()?;
        let (raw, kept_unreadable) = self.handle.current_or_unreadable();
        let current = self.handle.verified::<T>();
        let mut session = match &current {
            Some(current) => current.session().clone(),
            None if kept_unreadable => return Err(HandleError::UnreadableSession),
            None => {
                let session = Session::try_new(default()).map_err(LoginError::from)?;
                self.handle.ops().admit(session.id()).await?;
                // A session whose data is another type is replaced: ended
                // first, as a login ends the one it replaces, or a copy of
                // its cookie would open (and it would be listed) until it
                // expires.
                if let Some(other) = &raw {
                    let other = other.session();
                    self.handle.revoke(other).await?;
                    self.handle
                        .audit(AuditKind::Logout, |event| event.user(other.user_id()).session(other.id()));
                    self.handle.unregister(other).await;
                }
                // So are the sessions of an injected duplicate cookie: the
                // new cookie replaces the user's own in the browser.
                self.handle.end_injected().await?;
                session
            }
        };
        // The lock is not held while `change` runs: it may use this handle.
        let result = change(session.data_mut());
        self.handle.replace(session)?;
        if current.is_none() {
            self.handle.end_pre_session();
        }
        Ok(result)
    }

    /// Changes the session's data and seals it again; the new cookie goes
    /// out with the response.
    ///
    /// # Errors
    /// [`HandleError::NoSession`], or [`HandleError::Seal`] if the changed
    /// session no longer fits in a cookie (the session is then unchanged).
    pub fn update<R>(&self, change: impl FnOnce(&mut T) -> R) -> Result<R, HandleError> {
        self.handle.unfinished()?;
        let current = self.handle.verified::<T>().ok_or(HandleError::NoSession)?;
        // The lock is not held while `change` runs: it may use this handle.
        let mut session = current.session().clone();
        let result = change(session.data_mut());
        self.handle.replace(session)?;
        Ok(result)
    }
}

/// A request's session, decoded as `T`: a snapshot taken when it was asked
/// for, which dereferences to the core [`Session`] (its ID, user, epoch,
/// times and data). Change it through [`Current::sessions`].
pub struct Current<T> {
    verified: Arc<Verified<T>>,
    handle: SessionHandle,
}

impl<T> Clone for Current<T> {
    fn clone(&self) -> Self {
        Self { verified: Arc::clone(&self.verified), handle: self.handle.clone() }
    }
}

impl<T> std::fmt::Debug for Current<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Current").field(&self.verified).finish()
    }
}

impl<T> Deref for Current<T> {
    type Target = Session<T>;

    fn deref(&self) -> &Session<T> {
        self.verified.session()
    }
}

impl<T> Current<T> {
    /// The session: its ID, user, epoch, times and data (what `Current`
    /// dereferences to).
    #[must_use]
    pub fn session(&self) -> &Session<T> {
        self.verified.session()
    }

    /// The session as opened and checked.
    #[must_use]
    pub fn verified(&self) -> &Verified<T> {
        &self.verified
    }

    /// The ID of the key the session's cookie is sealed under.
    #[must_use]
    pub fn key_id(&self) -> u32 {
        self.verified.key_id()
    }

    /// When the session ends unless the user is active before then.
    #[must_use]
    pub fn idle_expires_at(&self) -> OffsetDateTime {
        self.verified.idle_expires_at()
    }

    /// The CSRF token of the request's session as it is now: after
    /// [`renew_id`](SessionHandle::renew_id), `logout_others` or
    /// `reauthenticate` in the same handler, the new ID's (the one this
    /// `Current` was taken with no longer verifies). After a logout, that
    /// ended session's, which verifies nowhere. Like
    /// [`SessionHandle::sealer`], it marks the response as showing a token
    /// (`no-store`) only before its headers are made.
    #[must_use]
    pub fn csrf_token(&self) -> String {
        let now = self.handle.shared.lock().current.clone();
        let sealer = self.handle.sealer();
        match &now {
            Some(now) => sealer.csrf_token(now.session()),
            None => sealer.csrf_token(self.verified.session()),
        }
    }

    /// The handle, to change or end the session.
    #[must_use]
    pub fn sessions(&self) -> Sessions<T> {
        self.handle.typed()
    }
}
