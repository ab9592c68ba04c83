//! The driver every web integration runs: a request view goes in; the
//! answer is "go on with this handle", "read the form body first" or
//! "refuse with this"; after the handler, the response's headers come out.
//! It does no I/O of its own.

use std::sync::Arc;

use super::audit::AuditKind;
use super::binding::DbscSettings;
use super::config::{Settings, WebConfig, SESSION_TOKEN_HEADER};
use super::flash::FlashState;
use super::handle::{Clearing, SessionHandle, State};
use super::ops::Ops;
use crate::cookie::{self, CookieChange};
use crate::csrf::CsrfError;
use crate::{CookieSpec, Opened, RevocationStore, Session, StoreError, Verified, VerifyError};

/// What the driver reads of a request: implement it over a framework's
/// request type (its method, path and headers), without copying anything.
pub trait RequestView {
    /// The method, such as `POST`, as sent (methods are case-sensitive).
    fn method(&self) -> &str;
    /// The path, without the query, as the application's routes see it
    /// (inside an axum `Router::nest`, the path under the mount point; on
    /// actix-web, percent-decoded as its router decodes it).
    fn path(&self) -> &str;
    /// The request's authority: the URI's, else the `Host` header.
    fn authority(&self) -> Option<&str>;
    /// The first value of the header `name` (given in lower case), as bytes.
    fn header(&self, name: &str) -> Option<&[u8]>;
    /// Every value of the header `name` (given in lower case), in order: the
    /// driver reads every `Cookie` header.
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a;

    /// The first value of the header `name`, if it is text.
    fn header_text(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|value| std::str::from_utf8(value).ok())
    }
}

/// What the driver does to a response: implement it over a framework's
/// response headers.
pub trait ResponseHeaders {
    /// Every value of the header `name` (given in lower case) the response
    /// has.
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a;
    /// Adds a value of the header `name` (`Set-Cookie`), after any it has.
    fn append(&mut self, name: &'static str, value: String);
    /// Sets the header `name`, replacing every value it had.
    fn replace(&mut self, name: &'static str, value: String);
}

/// What to do with a request, from [`WebConfig::begin`].
#[derive(Debug)]
#[must_use]
pub enum Begin {
    /// Run the handler with this handle (in the request's extensions, say),
    /// then [`SessionHandle::finish`] on its response.
    Ready(SessionHandle),
    /// The CSRF token must come from the URL-encoded form body: read at
    /// most [`FormRead::limit`] bytes of it and give them to
    /// [`FormRead::check`], then hand the body to the handler whole.
    ReadForm(FormRead),
    /// Do not run the handler: answer with this.
    Refuse(Refusal),
    /// The request was for an endpoint the driver serves itself (DBSC
    /// registration and refresh): do not run the handler, answer with this
    /// status, headers and body.
    Answer(Answer),
}

/// A whole answer the driver gives by itself ([`Begin::Answer`]): a status,
/// headers (in order; `set-cookie` may repeat) and a body. Its `Debug`
/// shows header names only: cookies hold session tokens.
#[must_use]
pub struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Answer {
    pub(crate) fn new(status: u16, body: String) -> Self {
        Self { status, headers: Vec::new(), body }
    }

    pub(crate) fn push(&mut self, name: &'static str, value: String) {
        self.headers.push((name, value));
    }

    /// The status code.
    #[must_use]
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The headers, names in lower case, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.headers.iter().map(|(name, value)| (*name, value.as_str()))
    }

    /// The body (JSON or plain text, as its `content-type` says).
    #[must_use]
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The status, headers and body, to move into a framework's response.
    #[must_use]
    pub fn into_parts(self) -> (u16, Vec<(&'static str, String)>, String) {
        (self.status, self.headers, self.body)
    }
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("status", &self.status)
            .field("headers", &self.headers.iter().map(|(name, _)| *name).collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// A request whose CSRF token is in its form body, which must be read
/// before the request may go on ([`Begin::ReadForm`]).
#[derive(Debug)]
#[must_use]
pub struct FormRead {
    handle: SessionHandle,
}

impl FormRead {
    /// The most bytes of the body to read; beyond it, answer
    /// [`FormRead::too_large`].
    #[must_use]
    pub fn limit(&self) -> usize {
        self.handle.shared.ops.settings().form_limit
    }

    /// Checks the token in the form `body` (all of it, at most
    /// [`FormRead::limit`] bytes).
    ///
    /// # Errors
    /// A [`Refusal`] to answer with: the token is missing or wrong.
    pub fn check(self, body: &[u8]) -> Result<SessionHandle, Refusal> {
        let settings = self.handle.shared.ops.settings();
        let field = &settings.csrf.field;
        let token = form_urlencoded::parse(body).find(|(name, _)| name == field).map(|(_, value)| value);
        verify_token(&self.handle, token.as_deref().unwrap_or_default()).map_err(|refusal| {
            tracing::info!(reason = %refusal, "CSRF check refused the request");
            audit_csrf(&self.handle, &refusal);
            Refusal::Csrf(refusal)
        })?;
        Ok(self.handle)
    }

    /// The refusal of a body larger than [`FormRead::limit`].
    #[must_use]
    pub fn too_large(self) -> Refusal {
        tracing::info!(
            limit = self.limit(),
            "CSRF check refused the request: the form body is larger than the limit"
        );
        Refusal::Csrf(CsrfRefusal::TooLarge)
    }

    /// The refusal of a body that could not be read; `err` is logged.
    #[must_use]
    pub fn unreadable(self, err: &dyn std::fmt::Display) -> Refusal {
        tracing::info!(error = %err, "the form body could not be read");
        Refusal::Csrf(CsrfRefusal::Unreadable)
    }
}

/// What a layer does with a request an outer layer already began: see
/// [`WebConfig::nested_in`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Nesting {
    /// The outer layer runs the same configuration: pass the request on as
    /// it is, and let the outer layer finish it.
    PassThrough,
    /// A layer further out, past layers for other cookies, runs the same
    /// configuration: put this handle in the request in place of the one
    /// there (so that handlers inside see this configuration's session, as
    /// without the layers between), pass the request on, and let that
    /// layer finish it.
    Resume(SessionHandle),
    /// The outer layer runs another cookie's session: begin and finish this
    /// one's as usual, and put its handle in the request as
    /// [`SessionHandle::inside`] the outer one. An unsafe request passes
    /// both layers' CSRF checks only with both tokens, in headers or fields
    /// of different names ([`SessionHandle::outer`]).
    Separate,
}

/// Why a request is refused before its handler runs. [`Refusal::status`]
/// and [`Refusal::body`] are the answer (plain text); the reason was logged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The CSRF checks refused it.
    #[error(transparent)]
    Csrf(#[from] CsrfRefusal),
    /// The revocation store could not be asked: no session can be trusted
    /// or refused for good, so no cookie changes.
    #[error("the session cannot be checked: {0}")]
    Store(#[source] StoreError),
    /// The path requires a device-bound session
    /// ([`DeviceBinding::require_for`](super::DeviceBinding::require_for))
    /// and the request's session is not bound.
    #[error("this path requires a device-bound session, and the request's session is not bound")]
    NotDeviceBound,
    /// The request already went through another configuration's driver
    /// for the same cookie (a second session layer or middleware around the
    /// same route): see [`WebConfig::nested_in`].
    #[error("the request went through two session layers for the same cookie with different configurations; a cookie must have one: remove the inner layer, share one layer, or give the inner one a cookie of its own")]
    Nested,
}

impl Refusal {
    /// The status code: `503` when the store could not be asked, `500` for
    /// two session layers, `403` for a session that is not device-bound,
    /// else as [`CsrfRefusal::status`].
    #[must_use]
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Csrf(refusal) => refusal.status(),
            Refusal::Store(_) => 503,
            Refusal::NotDeviceBound => 403,
            Refusal::Nested => 500,
        }
    }

    /// A body that says no more than the status.
    #[must_use]
    pub fn body(&self) -> &'static str {
        match self {
            Refusal::Csrf(refusal) => refusal.body(),
            Refusal::Store(_) => "session store unavailable, try again",
            Refusal::NotDeviceBound => "this page needs a device-bound session",
            Refusal::Nested => "session middleware misconfigured",
        }
    }
}

/// Why an unsafe request was refused. [`CsrfRefusal::status`] is the answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CsrfRefusal {
    /// The browser marked it cross-site, or the token was missing or wrong.
    #[error(transparent)]
    Csrf(#[from] CsrfError),
    /// There is neither a session nor a pre-session to bind a token to.
    #[error("there is neither a session nor a pre-session to bind a CSRF token to (cookies blocked, or a form from before the pre-session)")]
    NoBinding,
    /// The form body is larger than [`FormRead::limit`].
    #[error("the form body is larger than the limit")]
    TooLarge,
    /// The form body could not be read.
    #[error("the form body could not be read")]
    Unreadable,
}

impl CsrfRefusal {
    /// The status code to answer with: `413` for a form too large, `400`
    /// for one that could not be read, `403` otherwise.
    #[must_use]
    pub fn status(&self) -> u16 {
        match self {
            CsrfRefusal::TooLarge => 413,
            CsrfRefusal::Unreadable => 400,
            _ => 403,
        }
    }

    /// A short stable name for the refusal: [`CsrfError::code`], or
    /// `no_binding`, `too_large`, `unreadable`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            CsrfRefusal::Csrf(err) => err.code(),
            CsrfRefusal::NoBinding => "no_binding",
            CsrfRefusal::TooLarge => "too_large",
            CsrfRefusal::Unreadable => "unreadable",
        }
    }

    /// A body for the answer that says no more than the status.
    #[must_use]
    pub fn body(&self) -> &'static str {
        match self {
            CsrfRefusal::TooLarge => "form too large",
            CsrfRefusal::Unreadable => "unreadable request body",
            _ => "CSRF check failed",
        }
    }
}

/// The token of an `Authorization` header that uses the `Bearer` scheme
/// (`Some(None)` for `Bearer` with no token: a client about to sign in);
/// `None` for any other scheme.
///
/// ```
/// use sealed_session::web::bearer_token;
///
/// assert_eq!(bearer_token(b"Bearer abc"), Some(Some("abc")));
/// assert_eq!(bearer_token(b"bearer"), Some(None));
/// assert_eq!(bearer_token(b"Bearerabc"), None);
/// assert_eq!(bearer_token(b"Basic YWxpY2U6"), None);
/// ```
#[must_use]
pub fn bearer_token(authorization: &[u8]) -> Option<Option<&str>> {
    let scheme = authorization.get(..6).filter(|scheme| scheme.eq_ignore_ascii_case(b"bearer"))?;
    let rest = authorization.get(scheme.len()..).unwrap_or_default();
    if !rest.is_empty() && !rest.starts_with(b" ") {
        return None; // `Bearerx`: another scheme
    }
    let token = std::str::from_utf8(rest).ok().map(|t| t.trim_matches(' ')).filter(|t| !t.is_empty());
    Some(token)
}

/// Whether `content_type` (a `Content-Type` header) is a URL-encoded form.
#[must_use]
pub fn is_form(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// Whether a request asks to switch protocols: a `GET` with an `Upgrade`
/// header (a WebSocket handshake over HTTP/1.1, RFC 6455) or a `CONNECT`
/// (over HTTP/2, RFC 8441; browsers never send a plain `CONNECT`). A page on
/// any site can open a WebSocket with the user's cookies, and none can add a
/// CSRF header to it, so such a request passes the Fetch Metadata /
/// `Origin` check of unsafe requests, and needs no token. Any other method
/// with `Upgrade` is an ordinary request, and needs the token if unsafe.
///
/// ```
/// use sealed_session::web::is_upgrade;
///
/// assert!(is_upgrade("GET", true));
/// assert!(is_upgrade("CONNECT", false));
/// assert!(!is_upgrade("GET", false));
/// assert!(!is_upgrade("POST", true));
/// ```
#[must_use]
pub fn is_upgrade(method: &str, has_upgrade_header: bool) -> bool {
    (has_upgrade_header && method == "GET") || method == "CONNECT"
}

/// The values of the session cookie in a request's `Cookie` headers, and
/// those of the pre-session, flash and (with device-bound sessions)
/// companion cookies, kept for later (they are opened only when needed),
/// all in one pass over the headers. Not inline in [`WebConfig::begin`]: what it
/// holds across the store's answer is kept in every request's future.
fn scan_cookies<'r, R: RequestView + ?Sized>(
    settings: &Settings,
    request: &'r R,
) -> (cookie::Values<'r>, [Vec<Box<str>>; 3]) {
    let owned =
        |values: cookie::Values<'_>| values.as_slice().iter().copied().map(Box::from).collect::<Vec<_>>();
    let headers = request.header_values("cookie");
    let (pre_cookie, flash_cookie) = (&settings.pre_cookie, &settings.flash.cookie);
    match &settings.dbsc {
        Some(dbsc) => {
            let specs = [&settings.cookie, pre_cookie, flash_cookie, &dbsc.companion_cookie];
            let [session, pre, flash, companion] = cookie::scan(specs, headers);
            (session, [owned(pre), owned(flash), owned(companion)])
        }
        None => {
            let [session, pre, flash] = cookie::scan([&settings.cookie, pre_cookie, flash_cookie], headers);
            (session, [owned(pre), owned(flash), Vec::new()])
        }
    }
}

/// What became of the session tokens a request sent that did not open.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Refused {
    /// One was refused for good: its cookie is removed.
    removed: bool,
    /// One was sealed under a key this server does not have, or holds as
    /// due later: its cookie is kept, and nothing may replace it.
    kept: bool,
}

impl<S: RevocationStore + 'static> WebConfig<S> {
    /// For a request whose extensions already hold a [`SessionHandle`]: an
    /// outer layer began it. [`Nesting::PassThrough`] when that layer runs
    /// this same configuration (one layer added at two levels of a router):
    /// the request goes on to the inner service as it is, with the outer
    /// handle, and the outer layer finishes it; [`Nesting::Resume`] when a
    /// layer further out, past layers for other cookies
    /// ([`SessionHandle::inside`]), runs it: the same, with that layer's
    /// session in the request again. [`Nesting::Separate`] when
    /// it runs a configuration for another cookie (an administrators'
    /// session inside the users' one): this layer begins and finishes its
    /// own session, whose handle the inner service sees. Otherwise
    /// [`Refusal::Nested`], logged as an error: two drivers for one cookie
    /// would open it twice, check CSRF by different rules and set it over
    /// each other.
    ///
    /// The outer layer's path rules saw the path as it saw it: inside an
    /// axum `Router::nest`, this layer sees another. A path of `request`
    /// that [`DeviceBinding::require_for`](super::DeviceBinding::require_for)
    /// names is refused here too, for a session that is not device-bound.
    /// The rest were applied by the outer layer to its path: a
    /// [`csrf_exempt`](super::WebConfigBuilder::csrf_exempt) path named as
    /// the nested router sees it is not exempt there (it fails closed);
    /// name such paths as the outermost layer sees them.
    ///
    /// # Errors
    /// [`Refusal::Nested`] for another configuration's handle for the same
    /// cookie; [`Refusal::NotDeviceBound`] as above.
    pub fn nested_in<R: RequestView + ?Sized>(
        &self,
        outer: &SessionHandle,
        request: &R,
    ) -> Result<Nesting, Refusal> {
        // Every layer further out, through those for other cookies
        // ([`SessionHandle::inside`]).
        let name = self.settings.cookie.name();
        let mut next = Some(outer);
        while let Some(handle) = next {
            if std::ptr::addr_eq(Arc::as_ptr(&handle.shared.ops), std::ptr::from_ref(self)) {
                let current = handle.shared.lock().current.clone();
                self.refuse_unbound(current.as_deref(), request)?;
                if std::ptr::eq(handle, outer) {
                    return Ok(Nesting::PassThrough);
                }
                // The same session, recorded inside the layers between.
                let resumed = SessionHandle { shared: Arc::clone(&handle.shared), outer: None };
                return Ok(Nesting::Resume(resumed.inside(outer.clone())));
            }
            if handle.shared.ops.settings().cookie.name() == name {
                tracing::error!(cookie = name, "{}", Refusal::Nested);
                return Err(Refusal::Nested);
            }
            next = handle.outer.as_deref();
        }
        Ok(Nesting::Separate)
    }

    /// Drives one request up to its handler: opens its session (the first
    /// session cookie that opens and passes the revocation check, or with
    /// [`bearer_tokens`](super::WebConfigBuilder::bearer_tokens) the bearer
    /// token of its `Authorization` header and no cookie at all), and runs
    /// the CSRF checks of unsafe and upgrade requests. Expired, revoked and
    /// tampered cookies are "no session" and are removed by the response;
    /// one sealed under a key this server does not have, or holds as due
    /// later, is "no session" but kept (a key rollout in progress). Each
    /// reason is logged with `tracing`; tokens never are.
    ///
    /// CSRF: a request with a method other than GET, HEAD, OPTIONS and
    /// TRACE (compared case-sensitively), or an upgrade request, to a path
    /// that is not exempt and not carried by a bearer token, is refused
    /// with `403` if the browser marks it as cross-site (`Sec-Fetch-Site`,
    /// else `Origin`). An unsafe request must then carry the CSRF token of
    /// its session, or without one of its pre-session, in the CSRF header or
    /// the CSRF field of a URL-encoded form: [`Begin::ReadForm`] asks for
    /// that body (`413` beyond its limit).
    ///
    /// The pre-session and flash cookies are only found here, and opened
    /// when something needs them (a CSRF check without a session, a token
    /// for a login form, a handler reading messages). A store that cannot
    /// answer is [`Begin::Refuse`] with `503`.
    pub async fn begin<R: RequestView + ?Sized>(self: &Arc<Self>, request: &R) -> Begin {
        let settings = &self.settings;
        if settings.dbsc.is_some() {
            // Boxed: the endpoints' state does not weigh on every request's.
            if let Some(answer) = Box::pin(self.dbsc_endpoint(request)).await {
                return answer;
            }
        }
        let bearer =
            if settings.bearer { request.header("authorization").and_then(bearer_token) } else { None };
        // In a block: the state is moved into the handle, and must not
        // keep a place in the request's future across the registry's answer.
        let handle = {
            let mut state = match bearer {
                Some(token) => {
                    // Nothing ambient: no cookies are read, no CSRF token is needed.
                    match self.open_session(token.as_slice()).await {
                        Ok((current, refused)) => {
                            let mut state = State::new(current, true, Vec::new(), FlashState::default());
                            // As for a cookie: a token under a key this server
                            // lacks yet cannot be logged out or replaced here.
                            state.kept_unreadable = state.current.is_none() && refused.kept;
                            state
                        }
                        Err(err) => return Begin::Refuse(Refusal::Store(err)),
                    }
                }
                None => {
                    let (session, [pre, flash, companion]) = scan_cookies(settings, request);
                    let (current, refused) = match self.open_session(session.as_slice()).await {
                        Ok(opened) => opened,
                        Err(err) => return Begin::Refuse(Refusal::Store(err)),
                    };
                    let flash = FlashState::new(flash, request.method() == "HEAD");
                    let mut state = State::new(current, false, pre, flash);
                    state.companion = companion;
                    // Only logout and login use them; rarely any.
                    state.injected = (session.injected().iter())
                        .filter_map(|value| settings.sealer.open_raw(value).ok())
                        .map(Opened::into_session)
                        .collect();
                    if state.current.is_none() {
                        state.kept_unreadable = refused.kept;
                        if refused.removed && !refused.kept {
                            state.session_cookie = Some(CookieChange::Remove);
                        }
                    }
                    state
                }
            };
            if let Err(refusal) = self.refuse_unbound(state.current.as_deref(), request) {
                return Begin::Refuse(refusal);
            }
            if settings.registry.is_some() {
                state.user_agent = request.header_text("user-agent").map(Box::from);
                let now = crate::sealer::opening_time(settings.sealer.clock().unix_now());
                state.began_at = Some(now);
                if let Some(current) = state.current.as_mut().and_then(Arc::get_mut) {
                    if super::renewal::record_due(&settings.sealer, current.session(), now) {
                        current.renew();
                    }
                }
            }
            let ops: Arc<dyn Ops> = Arc::<Self>::clone(self);
            SessionHandle::new(state, ops)
        };
        if let Some(registry) = &settings.registry {
            // The record's last activity moves when the cookie does: at
            // most once per renewal interval, not on every request, even
            // for a client that keeps sending an older cookie; a
            // device-bound session's moves with its proofs only.
            let (current, now) = {
                let state = handle.shared.lock();
                (state.current.clone(), state.began_at)
            };
            if let (Some(current), Some(now)) = (current.filter(|c| c.reissue().is_some()), now) {
                if registry.recent.first_in_interval(&settings.sealer, current.session(), now)
                    && !handle.register(current.session()).await
                {
                    registry.recent.forget(current.session());
                }
            }
        }
        let upgrade = is_upgrade(request.method(), request.header("upgrade").is_some());
        if handle.shared.lock().bearer || !settings.csrf.applies(request.method(), request.path(), upgrade) {
            return Begin::Ready(handle);
        }
        match check_csrf(&handle, settings, request, upgrade) {
            Ok(CsrfCheck::Passed) => Begin::Ready(handle),
            Ok(CsrfCheck::ReadForm) => Begin::ReadForm(FormRead { handle }),
            Err(refusal) => {
                tracing::info!(
                    reason = %refusal,
                    method = %loggable(request.method(), 16),
                    path = %loggable_path(request.path()),
                    "CSRF check refused the request"
                );
                audit_csrf(&handle, &refusal);
                Begin::Refuse(Refusal::Csrf(refusal))
            }
        }
    }

    /// [`Refusal::NotDeviceBound`] for a `current` session that is not
    /// device-bound, on a path that requires one.
    fn refuse_unbound<R: RequestView + ?Sized>(
        &self,
        current: Option<&Verified<Vec<u8>>>,
        request: &R,
    ) -> Result<(), Refusal> {
        let Some(dbsc) = &self.settings.dbsc else {
            return Ok(());
        };
        let unbound = current.is_some_and(|c| !c.session().is_device_bound());
        if unbound && dbsc.binding.requires(request.path()) {
            tracing::info!(
                method = %loggable(request.method(), 16),
                path = %loggable_path(request.path()),
                "refused: the path requires a device-bound session"
            );
            return Err(Refusal::NotDeviceBound);
        }
        Ok(())
    }

    /// The first of `values` that opens and passes the revocation check,
    /// and what became of the others.
    pub(crate) async fn open_session(
        &self,
        values: &[&str],
    ) -> Result<(Option<Verified<Vec<u8>>>, Refused), StoreError> {
        let mut refused = Refused::default();
        for value in values {
            // A refused session that authenticated comes back with the
            // error, so that the audit log names its user.
            let (err, opened) = match self.verifier.open_raw_keeping_refused(value).await {
                Ok(verified) => return Ok((Some(verified), refused)),
                Err(refusal) => refusal,
            };
            let err = match err {
                VerifyError::Store(store) => {
                    tracing::warn!(error = %store, "cannot check the session against the revocation store");
                    return Err(store);
                }
                err => err,
            };
            // Kept, not removed: while a new key is being rolled out (added,
            // or promoted ahead of its schedule), a server that does not
            // have it yet, or holds it as due later, must not log users
            // out. A key removed from the keyring (below its newest) is not
            // coming back: that cookie goes, as a retired key's does, or it
            // would refuse every login on this browser for good.
            let rollout = match &err {
                VerifyError::Open(open) => self.verifier.sealer().newer_keyring_may_open(value, open),
                _ => None,
            };
            if let Some(id) = rollout {
                self.settings.unknown_key_refused("session cookie", id);
                refused.kept = true;
            } else {
                if matches!(err, VerifyError::StoreFault { .. }) {
                    tracing::error!(reason = %err, "session cookie refused");
                } else {
                    tracing::info!(reason = %err, "session cookie refused");
                }
                refused.removed = true;
            }
            let session = opened.as_ref().map(Opened::session);
            self.settings.audit(AuditKind::SessionRefused { reason: err.code() }, |event| {
                let event = event.user(session.and_then(Session::user_id));
                match session {
                    Some(session) => event.session(session.id()),
                    None => event,
                }
            });
        }
        Ok((None, refused))
    }
}

/// What the CSRF checks found.
enum CsrfCheck {
    /// The request passed.
    Passed,
    /// The token must come from the URL-encoded form body.
    ReadForm,
}

/// A header the CSRF checks read: one present but not UTF-8 reads as `?`,
/// which no check accepts. (Browsers send none of them so; read as absent,
/// it would skip the check it feeds, or look for the token elsewhere.)
fn checked_header<'a, R: RequestView + ?Sized>(request: &'a R, name: &str) -> Option<&'a str> {
    request.header(name).map(|value| std::str::from_utf8(value).unwrap_or("?"))
}

/// A request's path or method as logged: at most `max` characters,
/// printable ASCII only (anything else is `?`), so that a client cannot
/// write a line of any length, or one that control or bidirectional
/// characters disguise (a framework may hand over the path percent-decoded;
/// a method is any token the client likes).
fn loggable(text: &str, max: usize) -> String {
    text.chars().take(max).map(|c| if c.is_ascii_graphic() { c } else { '?' }).collect()
}

/// A request's path as logged: its first segment only, as [`loggable`]
/// shows it (at most 128 characters), and `/...` for the rest, which may
/// hold a secret (`/reset/<token>`, `/invite/<token>`).
fn loggable_path(path: &str) -> String {
    match path.strip_prefix('/').unwrap_or(path).split_once('/') {
        Some((first, _)) => format!("/{}/...", loggable(first, 127)),
        None => loggable(path, 128),
    }
}

/// The CSRF checks of an unsafe or upgrade request: the browser must not
/// mark it cross-site ([`OriginPolicy`](crate::csrf::OriginPolicy)), and an
/// unsafe one must carry the CSRF token of its session (or, before login, of
/// its pre-session) in the CSRF header, or else in the form field of a
/// URL-encoded body.
fn check_csrf<R: RequestView + ?Sized>(
    handle: &SessionHandle,
    settings: &Settings,
    request: &R,
    upgrade: bool,
) -> Result<CsrfCheck, CsrfRefusal> {
    let origin = checked_header(request, "origin");
    let expected = match &settings.origin {
        Some(origin) => origin.clone(),
        None => {
            let host = request.authority().unwrap_or("");
            // HTTPS, but for plain http on loopback (development).
            let http = is_loopback(host) && origin.is_some_and(|o| o.starts_with("http://"));
            let expected = format!("{}://{host}", if http { "http" } else { "https" });
            // Without the default port, as browsers send it: a proxy may
            // pass `Host: app.example:443`.
            crate::csrf::normalized_origin(&expected).unwrap_or(expected)
        }
    };
    let sec_fetch_site = checked_header(request, "sec-fetch-site");
    if upgrade {
        // A WebSocket handshake: from this origin or one the application
        // named trusted, or not at all. It has no body and cannot carry a
        // header of the page's, so no token: a sibling subdomain is refused
        // even where `allow_same_site` lets its token-carrying requests
        // through.
        settings.csrf.policy.check_site_without_token(sec_fetch_site, origin, &expected)?;
        return Ok(CsrfCheck::Passed);
    }
    settings.csrf.policy.check(request.method(), sec_fetch_site, origin, &expected)?;
    // Nothing to bind a token to: refuse before reading any body.
    let mut state = handle.shared.lock();
    // A companion cookie binds a token only if it opens (a bound session
    // whose bound cookie lapsed): any client can send a made-up one.
    let companion = |companion: &[Box<str>]| {
        settings
            .dbsc
            .as_ref()
            .is_some_and(|dbsc| !dbsc.companion_sessions(companion.iter().map(|value| &**value)).is_empty())
    };
    if state.current.is_none() && state.pre(&settings.pre_sealer).is_none() && !companion(&state.companion) {
        return Err(CsrfRefusal::NoBinding);
    }
    drop(state);
    // A token header present but not UTF-8 is a wrong token, not none (the
    // form's field would then be read instead).
    match checked_header(request, &settings.csrf.header) {
        Some(token) => verify_token(handle, token).map(|()| CsrfCheck::Passed),
        None if is_form(request.header_text("content-type")) => Ok(CsrfCheck::ReadForm),
        None => verify_token(handle, "").map(|()| CsrfCheck::Passed),
    }
}

/// Records a refusal by the CSRF checks themselves (a cross-site request,
/// a missing or wrong token, nothing to bind one to) in the audit log, with
/// the request's user and session if it has one. A form body too large or
/// unreadable is no attack sign, and only logged.
fn audit_csrf(handle: &SessionHandle, refusal: &CsrfRefusal) {
    let session = handle.shared.lock().current.as_ref().map(|current| {
        let session = current.session();
        (session.user_id().map(str::to_owned), session.id())
    });
    handle.audit(AuditKind::CsrfRefused { reason: refusal.code() }, |event| match &session {
        Some((user, id)) => event.user(user.as_deref()).session(*id),
        None => event,
    });
}

/// Checks `token` against the request's session, or else its pre-session.
/// Without either, a device-bound session whose bound cookie lapsed before
/// the browser refreshed it (the request came with its companion cookie
/// alone): the page's token is that session's, and the companion names it.
fn verify_token(handle: &SessionHandle, token: &str) -> Result<(), CsrfRefusal> {
    let settings = handle.shared.ops.settings();
    let mut state = handle.shared.lock();
    if let Some(current) = &state.current {
        let session = current.session();
        let checked = settings.sealer.verify_csrf(session, token);
        // A page shown before the session's registration holds a token
        // for the unbound session it replaced.
        let previous = || {
            let dbsc = settings.dbsc.as_ref().filter(|_| session.is_device_bound())?;
            dbsc.previous_id(session, state.companion.iter().map(|value| &**value))
        };
        if checked.is_err() && previous().is_some_and(|id| settings.sealer.verify_csrf_id(id, token).is_ok())
        {
            return Ok(());
        }
        return Ok(checked?);
    }
    let pre = state.pre(&settings.pre_sealer).map(|pre| settings.pre_sealer.verify_csrf(pre, token));
    if let Some(Ok(())) = pre {
        return Ok(());
    }
    let companions = match &settings.dbsc {
        Some(dbsc) => dbsc.companion_sessions(state.companion.iter().map(|value| &**value)),
        None => Vec::new(),
    };
    let bound = companions.iter().map(|session| settings.sealer.verify_csrf(session, token));
    let mut refused = None;
    for checked in pre.into_iter().chain(bound) {
        match checked {
            Ok(()) => return Ok(()),
            Err(err) => _ = refused.get_or_insert(err),
        }
    }
    Err(refused.map_or(CsrfRefusal::NoBinding, CsrfRefusal::from))
}

/// Whether `host` (a `Host` header or URI authority) names the loopback
/// interface, where browsers treat plain `http` as a secure context.
fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next(),
        None => host.split(':').next(),
    };
    matches!(name, Some("127.0.0.1" | "localhost" | "::1"))
}

/// The cookies and header a response must carry, from
/// [`SessionHandle::finish`]. Its `Debug` shows how many, never their
/// values (they hold session tokens).
#[derive(Default)]
#[non_exhaustive]
pub struct ResponseCookies {
    /// `Set-Cookie` values, in order: the session, the pre-session, the
    /// flash messages (each only if it changed).
    pub set_cookies: Vec<String>,
    /// For a request that came with a bearer token: the new token, for the
    /// [`SESSION_TOKEN_HEADER`] header (never a cookie).
    pub session_token: Option<String>,
    /// With device-bound sessions, after a login: the
    /// `Secure-Session-Registration` header that offers the browser to bind
    /// the new session to a key of its own.
    pub registration: Option<String>,
    /// After a logout, with
    /// [`clear_site_data_on_logout`](super::WebConfigBuilder::clear_site_data_on_logout):
    /// the `Clear-Site-Data` header that asks the browser to clear the
    /// site's data.
    pub clear_site_data: Option<String>,
    /// Whether the handler asked for a CSRF token, which the response
    /// presumably shows.
    csrf_token_shown: bool,
    /// The request fields the response depends on because the handler
    /// looked at the session: `cookie`, and `authorization` where bearer
    /// tokens are taken ([`ResponseCookies::write_to`] names them in
    /// `Vary`).
    vary: &'static [&'static str],
}

impl ResponseCookies {
    /// Whether the response carries a token (a cookie, a bearer token, or
    /// a CSRF token the handler asked for) or asks the browser to clear
    /// the site's data after a logout, and so must not be stored by shared
    /// caches ([`ResponseCookies::cache_control`]).
    #[must_use]
    pub fn no_store(&self) -> bool {
        !self.set_cookies.is_empty()
            || self.session_token.is_some()
            || self.registration.is_some()
            || self.clear_site_data.is_some()
            || self.csrf_token_shown
    }

    /// The `Cache-Control` value the response must be given, replacing
    /// every `Cache-Control` it has (`existing`, all of its values), if
    /// any: `no-store` on a response that carries a token (a cookie, a
    /// bearer token in its header, or a CSRF token the handler asked for),
    /// or `Clear-Site-Data` after a logout ([`ResponseCookies::no_store`]),
    /// unless the response already keeps shared caches away from it.
    ///
    /// RFC 9111 lets a shared cache (a CDN, a corporate proxy) store a
    /// response with `Set-Cookie`, and a `public` one even to a request with
    /// `Authorization`; it would then hand one user's session to others. So
    /// a route's own directive stands only where it forbids that: `no-store`,
    /// or for cookies a plain `private` (without `public` beside it). A
    /// stylesheet served `public, max-age=600` gets `no-store` on the one
    /// response that re-issues a session cookie, and keeps its own header on
    /// every other.
    ///
    /// ```
    /// # use sealed_session::web::ResponseCookies;
    /// # let mut cookies = ResponseCookies::default();
    /// # cookies.set_cookies.push("__Host-session=…".into());
    /// // A response that sets a cookie:
    /// assert_eq!(cookies.cache_control([]), Some("no-store"));
    /// assert_eq!(cookies.cache_control([&b"public, max-age=600"[..]]), Some("no-store"));
    /// assert_eq!(cookies.cache_control([&b"private, max-age=60"[..]]), None);
    /// assert_eq!(cookies.cache_control([&b"No-Store"[..]]), None);
    /// assert_eq!(cookies.cache_control([&b"no-store=1"[..]]), Some("no-store"));
    /// ```
    #[must_use]
    pub fn cache_control<'v>(&self, existing: impl IntoIterator<Item = &'v [u8]>) -> Option<&'static str> {
        if !self.no_store() {
            return None;
        }
        let (mut no_store, mut private, mut public) = (false, false, false);
        for (name, argument) in existing.into_iter().flat_map(directives) {
            if name.eq_ignore_ascii_case(b"no-store") {
                // `no-store` takes no argument: a cache may ignore one that has.
                no_store |= !argument;
            } else if name.eq_ignore_ascii_case(b"private") {
                // `private="set-cookie"` keeps only the named fields out of
                // shared caches: not enough for a bearer token's header.
                private |= !argument;
            } else if name.eq_ignore_ascii_case(b"public") {
                public = true;
            }
        }
        let kept_from_shared_caches = no_store || (self.session_token.is_none() && private && !public);
        (!kept_from_shared_caches).then_some("no-store")
    }

    /// Writes these cookies (or the bearer token's header) to `response`,
    /// with the `Cache-Control` that [`ResponseCookies::cache_control`]
    /// asks for. A CDN obeys a field targeted at it instead of
    /// `Cache-Control` (RFC 9213's `CDN-Cache-Control`, and the vendors'
    /// fields in [`TARGETED_CACHE_FIELDS`]): on a response that carries a
    /// token, one the route set is replaced with `no-store` unless it says
    /// `no-store` already (the other directives' meanings differ between
    /// CDNs).
    ///
    /// A response from a handler that looked at the session (its data, its
    /// user, whether there is one) gets `Vary: Cookie` (and `Authorization`
    /// where bearer tokens are taken), so that no cache that honours
    /// `Vary`, shared or the browser's, answers one user's request with
    /// what it kept for another, or for the same browser before its login
    /// or logout; `no-store` responses too, as a CDN may obey a field of its
    /// own over it.
    pub fn write_to(self, response: &mut impl ResponseHeaders) {
        if self.no_store() {
            for &name in TARGETED_CACHE_FIELDS {
                let (mut present, mut no_store) = (false, false);
                for value in response.header_values(name) {
                    present = true;
                    no_store |= directives(value).any(|(directive, argument)| {
                        !argument && directive.eq_ignore_ascii_case(b"no-store")
                    });
                }
                if present && !no_store {
                    response.replace(name, "no-store".to_owned());
                }
            }
        }
        let cache_control = self.cache_control(response.header_values("cache-control"));
        if let Some(token) = self.session_token {
            response.replace(SESSION_TOKEN_HEADER, token);
        }
        for value in self.set_cookies {
            response.append("set-cookie", value);
        }
        if let Some(value) = self.clear_site_data {
            // Beside any the application sends (a list): never narrowing it.
            response.append("clear-site-data", value);
        }
        if let Some(offer) = self.registration {
            // Beside any the application offers (a list: one response may
            // offer several registrations).
            response.append("secure-session-registration", offer);
        }
        if let Some(value) = cache_control {
            response.replace("cache-control", value.to_owned());
        }
        for &field in self.vary {
            let named = response
                .header_values("vary")
                .flat_map(directives)
                .any(|(name, _)| name == b"*" || name.eq_ignore_ascii_case(field.as_bytes()));
            if !named {
                response.append("vary", field.to_owned());
            }
        }
    }
}

/// Response fields that a CDN obeys instead of `Cache-Control` when they
/// are present: RFC 9213's `CDN-Cache-Control`, Cloudflare's, Vercel's and
/// Netlify's, and `Surrogate-Control` (Fastly, Akamai and others). On a
/// response that carries a token, [`ResponseCookies::write_to`] replaces
/// each one that would let the CDN store it.
pub const TARGETED_CACHE_FIELDS: &[&str] = &[
    "cdn-cache-control",
    "cloudflare-cdn-cache-control",
    "vercel-cdn-cache-control",
    "netlify-cdn-cache-control",
    "surrogate-control",
];

impl std::fmt::Debug for ResponseCookies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCookies")
            .field("set_cookies", &self.set_cookies.len())
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .field("registration", &self.registration.is_some())
            .field("clear_site_data", &self.clear_site_data)
            .field("csrf_token_shown", &self.csrf_token_shown)
            .field("vary", &self.vary)
            .finish()
    }
}

/// The directives of one `Cache-Control` value (RFC 9111, section 5.2):
/// each name, and whether it has an argument. Commas inside a quoted
/// argument do not split.
fn directives(value: &[u8]) -> impl Iterator<Item = (&[u8], bool)> {
    let mut rest = value;
    std::iter::from_fn(move || loop {
        if rest.is_empty() {
            return None;
        }
        let (mut quoted, mut escaped, mut end) = (false, false, rest.len());
        for (i, &b) in rest.iter().enumerate() {
            match b {
                _ if escaped => escaped = false,
                b'\\' if quoted => escaped = true,
                b'"' => quoted = !quoted,
                b',' if !quoted => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let (item, tail) = rest.split_at_checked(end).unwrap_or((rest, &[]));
        rest = tail.get(1..).unwrap_or_default();
        let (name, argument) = match item.iter().position(|&b| b == b'=') {
            Some(eq) => (item.get(..eq).unwrap_or_default(), true),
            None => (item, false),
        };
        let name = trim_ows(name);
        if !name.is_empty() {
            return Some((name, argument));
        }
    })
}

/// `bytes` without the spaces and tabs around it.
fn trim_ows(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !matches!(b, b' ' | b'\t')).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !matches!(b, b' ' | b'\t')).map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or_default()
}

/// A request's handle that is finished when dropped, if its adapter did
/// not finish it: a request dropped before its answer (a timeout or a
/// panic caught outside the session layer, a client that hung up) leaves
/// no handle that takes changes (a task the handler spawned gets
/// [`HandleError::Finished`](super::HandleError::Finished)) which no
/// response will carry. Adapters hold the handle in one for the request's
/// life; it derefs to the handle.
#[derive(Debug)]
pub struct FinishOnDrop(SessionHandle);

impl FinishOnDrop {
    /// Guards `handle`.
    #[must_use]
    pub fn new(handle: SessionHandle) -> Self {
        Self(handle)
    }
}

impl std::ops::Deref for FinishOnDrop {
    type Target = SessionHandle;

    fn deref(&self) -> &SessionHandle {
        &self.0
    }
}

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        // Nothing if the adapter finished it (a second call answers
        // nothing); else what it would have set is dropped with the request.
        let _unanswered = self.0.finish();
    }
}

impl SessionHandle {
    /// The cookies (or, for a bearer-token request, the token header) the
    /// response must carry: what the handler's calls decided, and a
    /// re-issue of an unchanged session that is due for one (key rotation,
    /// idle renewal, an older token format). Call it once, after the
    /// handler ran; [`ResponseCookies::write_to`] puts them on the response.
    ///
    /// A second call answers nothing more (an adapter that finishes a
    /// request dropped before its answer, then the layer's own call).
    #[must_use]
    pub fn finish(&self) -> ResponseCookies {
        let settings = self.shared.ops.settings();
        let mut state = self.shared.lock();
        if std::mem::replace(&mut state.finished, true) {
            return ResponseCookies::default();
        }
        if state.session_cookie.is_none() {
            if let Some((current, reason)) = state.current.clone().and_then(|c| c.reissue().map(|r| (c, r))) {
                let cookie = (!state.bearer).then_some(&settings.cookie);
                let versioned = current.opened().is_versioned_data();
                match settings.sealer.issue_raw(current.session().clone(), versioned, cookie, state.began_at)
                {
                    Ok((text, _)) => {
                        crate::metrics::reissued(reason);
                        state.session_cookie = Some(CookieChange::Set(text));
                    }
                    Err(err) => tracing::error!(error = %err, "cannot re-issue the session"),
                }
            }
        }
        let mut response = ResponseCookies {
            csrf_token_shown: state.token_shown,
            // A CSRF token (or the sealer to make one) is the session's too.
            vary: match (state.read || state.token_shown, settings.bearer) {
                (false, _) => &[],
                (true, false) => &["cookie"],
                // A request without a token falls back to the cookie.
                (true, true) => &["cookie", "authorization"],
            },
            ..ResponseCookies::default()
        };
        if state.bearer {
            // Never a cookie; a new token in its header, which a logout omits.
            if let Some(CookieChange::Set(token)) = state.session_cookie.take() {
                response.session_token = Some(token);
            }
            return response;
        }
        let clearing = state.clearing;
        let session_cookie = state.session_cookie.take();
        let companion = match &settings.dbsc {
            Some(dbsc) => dbsc_changes(dbsc, &mut state, session_cookie.as_ref(), &mut response),
            None => None,
        };
        let changes: [(&CookieSpec, Option<CookieChange>); 3] = [
            (&settings.cookie, session_cookie),
            (&settings.pre_cookie, state.pre_cookie.take()),
            (&settings.flash.cookie, state.flash.finish()),
        ];
        let mut sets_a_cookie = false;
        for (cookie, change) in changes {
            match change {
                Some(CookieChange::Set(header)) => {
                    sets_a_cookie = true;
                    response.set_cookies.push(header);
                }
                Some(CookieChange::Remove) => response.set_cookies.push(cookie.removal()),
                None => {}
            }
        }
        // Never `"cookies"` beside a cookie this response sets (a session
        // begun after the logout, a login form's pre-session, a flash
        // message): a browser may clear it with the rest.
        response.clear_site_data = match clearing {
            Clearing::Nothing => None,
            Clearing::Everything => settings.clear_site_data(sets_a_cookie),
            Clearing::KeepingCookies => settings.clear_site_data(true),
        };
        if let Some(companion) = companion {
            response.set_cookies.push(companion);
        }
        response
    }
}

/// What device binding adds to a response: the companion cookie sealed
/// again with a bound session that changed (or removed with a session that
/// is no longer bound), and the offer to bind a new session.
fn dbsc_changes(
    dbsc: &DbscSettings,
    state: &mut State,
    session_cookie: Option<&CookieChange>,
    response: &mut ResponseCookies,
) -> Option<String> {
    let current = state.current.clone();
    let bound = current.as_ref().filter(|c| c.session().is_device_bound());
    let unbound =
        current.as_ref().filter(|c| !c.session().is_device_bound() && c.session().user_id().is_some());
    if let Some(unbound) = unbound {
        if state.offer_binding || dbsc.binding.offer_to_unbound {
            response.registration = dbsc.offer(unbound.session().id());
        }
    }
    match (session_cookie, bound) {
        (Some(CookieChange::Set(_)), Some(bound)) => dbsc.reissue_companion(
            bound.session(),
            bound.opened().is_versioned_data(),
            state.companion.iter().map(|value| &**value),
        ),
        // Only when the handler ended the session or replaced it: a bound
        // cookie refused as expired a moment early (clock skew) must not
        // take the binding with it. Then even if the request sent none: it
        // may have left before a registration's response set one (its
        // session cookie, from before the binding, no longer opens), and
        // the browser would refresh that binding with it.
        _ if state.ended || state.offer_binding => Some(dbsc.companion_cookie.removal()),
        _ => None,
    }
}
