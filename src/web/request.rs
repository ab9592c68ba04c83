//! Reading a request's session, the CSRF checks of unsafe requests, and the
//! cookies the response must carry.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::config::WebConfig;
use super::flash::FlashState;
use super::handle::{CookieChange, Ops, SessionHandle, State};
use crate::csrf::CsrfError;
use crate::{CookieSpec, OpenError, Opened, RevocationStore, StoreError, Verified, VerifyError};

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

/// A header value's bytes (a function, not a closure: a closure's type
/// would make the request's future lose `Send` in some callers).
fn bytes_of<V: AsRef<[u8]> + ?Sized>(value: &V) -> &[u8] {
    value.as_ref()
}

/// What became of the session tokens a request sent that did not open.
#[derive(Debug, Clone, Copy, Default)]
struct Refused {
    /// One was refused for good: its cookie is removed.
    removed: bool,
    /// One was sealed under a key this server does not have: its cookie is
    /// kept, and nothing may replace it.
    kept: bool,
}

impl<S: RevocationStore + 'static> WebConfig<S> {
    /// Opens a request's session and makes its handle.
    ///
    /// `cookie_headers` are the request's `Cookie` headers as the bytes that
    /// arrived (anything that gives bytes, such as `&[u8]` or a header value
    /// type), all of them, in order ([`CookieSpec::values_in`]): the
    /// first session cookie that opens and passes the revocation check is
    /// the session. Expired, revoked and tampered cookies are "no session"
    /// and are removed by the response; one sealed under a key this server
    /// does not have is "no session" but kept (a key rollout in progress).
    /// Each reason is logged with `tracing`. With
    /// [`bearer_tokens`](super::WebConfigBuilder::bearer_tokens), a request
    /// whose `authorization` uses the `Bearer` scheme uses that token
    /// instead, and no cookie at all.
    ///
    /// # Errors
    /// The [`StoreError`] if the revocation store could not be reached:
    /// answer `503` and change no cookie.
    pub async fn open_request<'h, T, I, V>(
        self: &Arc<Self>,
        cookie_headers: I,
        authorization: Option<&'h [u8]>,
    ) -> Result<SessionHandle<T>, StoreError>
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        I: IntoIterator<Item = &'h V> + Clone,
        V: AsRef<[u8]> + ?Sized + 'h,
    {
        let bearer = authorization.filter(|_| self.bearer).and_then(bearer_token);
        let state = match bearer {
            Some(token) => {
                // Nothing ambient: no cookies are read, no CSRF token is needed.
                let (current, _) = self.open_session::<T>(token.into_iter()).await?;
                State::new(current, None, false, true, FlashState::default())
            }
            None => {
                let (current, refused) = self
                    .open_session::<T>(
                        self.cookie.values_in(cookie_headers.clone().into_iter().map(bytes_of)),
                    )
                    .await?;
                let (pre, pre_sent) = if current.is_some() {
                    (None, false)
                } else {
                    open_pre_session(
                        &self.pre_sealer,
                        self.pre_cookie.values_in(cookie_headers.clone().into_iter().map(bytes_of)),
                    )
                };
                let flash = FlashState::open(
                    &self.flash,
                    self.flash.cookie.values_in(cookie_headers.into_iter().map(bytes_of)),
                );
                let mut state = State::new(current, pre, pre_sent, false, flash);
                if state.current.is_none() {
                    state.kept_unreadable = refused.kept;
                    if refused.removed && !refused.kept {
                        state.session_cookie = Some(CookieChange::Remove);
                    }
                }
                state
            }
        };
        let ops: Arc<dyn Ops<T>> = Arc::<Self>::clone(self);
        Ok(SessionHandle::new(state, ops))
    }

    /// The first of `values` that opens and passes the revocation check,
    /// and what became of the others.
    async fn open_session<'v, T: DeserializeOwned>(
        &self,
        values: impl Iterator<Item = &'v str>,
    ) -> Result<(Option<Verified<T>>, Refused), StoreError> {
        let mut refused = Refused::default();
        for value in values {
            match self.verifier.open::<T>(value).await {
                Ok(opened) => return Ok((Some(opened), refused)),
                Err(VerifyError::Store(err)) => {
                    tracing::warn!(error = %err, "cannot check the session against the revocation store");
                    return Err(err);
                }
                // Kept, not removed: while a new key is being rolled out, a
                // server that does not have it yet must not log users out.
                Err(err @ VerifyError::Open(OpenError::UnknownKey(_))) => {
                    tracing::warn!(reason = %err, "session cookie refused; deploy the same keyring to every server");
                    refused.kept = true;
                }
                Err(err @ VerifyError::StoreFault { .. }) => {
                    tracing::error!(reason = %err, "session cookie refused");
                    refused.removed = true;
                }
                Err(err) => {
                    tracing::info!(reason = %err, "session cookie refused");
                    refused.removed = true;
                }
            }
        }
        Ok((None, refused))
    }
}

/// The request's pre-session, and whether it sent a pre-session cookie.
fn open_pre_session<'h>(
    sealer: &crate::Sealer,
    values: impl Iterator<Item = &'h str>,
) -> (Option<Opened<()>>, bool) {
    let mut sent = false;
    for value in values {
        sent = true;
        match sealer.open::<()>(value) {
            Ok(opened) => return (Some(opened), true),
            Err(err) => tracing::info!(reason = %err, "pre-session cookie refused"),
        }
    }
    (None, sent)
}

/// What the CSRF checks read from an unsafe request: give the headers'
/// values as they arrived (those that are not text as `None`).
#[derive(Clone, Copy, Default)]
pub struct CsrfRequest<'r> {
    /// The method, such as `POST`.
    pub method: &'r str,
    /// The path, without the query.
    pub path: &'r str,
    /// The `Origin` header.
    pub origin: Option<&'r str>,
    /// The `Sec-Fetch-Site` header.
    pub sec_fetch_site: Option<&'r str>,
    /// The request's authority (`host[:port]`, from the URI or the `Host`
    /// header), from which the expected origin is made unless the
    /// configuration names one.
    pub host: Option<&'r str>,
    /// The CSRF header ([`WebConfig::csrf_header`]).
    pub token: Option<&'r str>,
    /// Whether the body is a URL-encoded form
    /// (`Content-Type: application/x-www-form-urlencoded`).
    pub form: bool,
    /// Whether it asks to switch protocols ([`is_upgrade`]): a WebSocket
    /// handshake, which must come from this site but carries no token.
    pub upgrade: bool,
}

/// Whether a request asks to switch protocols: it has an `Upgrade` header
/// (a WebSocket handshake over HTTP/1.1) or its method is `CONNECT` (over
/// HTTP/2, RFC 8441; browsers never send a plain `CONNECT`). A page on any
/// site can open a WebSocket with the user's cookies, and none can add a
/// CSRF header to it, so such a request passes the Fetch Metadata /
/// `Origin` check of unsafe requests, and needs no token.
///
/// ```
/// use sealed_session::web::is_upgrade;
///
/// assert!(is_upgrade("GET", true));
/// assert!(is_upgrade("CONNECT", false));
/// assert!(!is_upgrade("GET", false));
/// ```
#[must_use]
pub fn is_upgrade(method: &str, has_upgrade_header: bool) -> bool {
    has_upgrade_header || method == "CONNECT"
}

impl std::fmt::Debug for CsrfRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsrfRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("origin", &self.origin)
            .field("sec_fetch_site", &self.sec_fetch_site)
            .field("host", &self.host)
            .field("token", &self.token.map(|_| "<redacted>"))
            .field("form", &self.form)
            .field("upgrade", &self.upgrade)
            .finish()
    }
}

/// Whether `content_type` (a `Content-Type` header) is a URL-encoded form.
#[must_use]
pub fn is_form(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// What [`SessionHandle::check_csrf`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum CsrfCheck {
    /// The request passed: its CSRF header held the right token.
    Passed,
    /// The token must come from the URL-encoded form body: read at most
    /// [`SessionHandle::form_limit`] bytes of it ([`CsrfRefusal::TooLarge`]
    /// beyond) and pass them to [`SessionHandle::check_csrf_form`], then
    /// give the body to the handler.
    ReadForm,
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
    /// The form body is larger than [`SessionHandle::form_limit`].
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
    /// [`SESSION_TOKEN_HEADER`](super::SESSION_TOKEN_HEADER) header (never
    /// a cookie).
    pub session_token: Option<String>,
}

impl ResponseCookies {
    /// Whether the response carries a token, and so must not be stored by
    /// caches ([`ResponseCookies::cache_control`]).
    #[must_use]
    pub fn no_store(&self) -> bool {
        !self.set_cookies.is_empty() || self.session_token.is_some()
    }

    /// The `Cache-Control` value the response must be given, replacing
    /// every `Cache-Control` it has (`existing`, all of its values), if
    /// any: `no-store` on a response that carries a token (a cookie, or a
    /// bearer token in its header) unless the response already keeps
    /// shared caches away from it.
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
    /// ```
    #[must_use]
    pub fn cache_control<'v>(&self, existing: impl IntoIterator<Item = &'v [u8]>) -> Option<&'static str> {
        if !self.no_store() {
            return None;
        }
        let (mut no_store, mut private, mut public) = (false, false, false);
        for (name, argument) in existing.into_iter().flat_map(directives) {
            if name.eq_ignore_ascii_case(b"no-store") {
                no_store = true;
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

impl std::fmt::Debug for ResponseCookies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCookies")
            .field("set_cookies", &self.set_cookies.len())
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl<T> SessionHandle<T>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// Whether a request with `method` to `path` must pass the CSRF checks:
    /// an unsafe method (anything but GET, HEAD, OPTIONS, TRACE) or an
    /// upgrade request ([`is_upgrade`]), CSRF enforcement on, a path not
    /// exempt, and a session that did not come as a bearer token.
    #[must_use]
    pub fn csrf_applies(&self, method: &str, path: &str, upgrade: bool) -> bool {
        !self.shared.lock().bearer && self.shared.ops.csrf().applies(method, path, upgrade)
    }

    /// The largest form body to read for the CSRF token.
    #[must_use]
    pub fn form_limit(&self) -> usize {
        self.shared.ops.form_limit()
    }

    /// The CSRF checks of an unsafe request: the browser must not mark it
    /// cross-site ([`OriginPolicy`](crate::csrf::OriginPolicy)), and it must
    /// carry the CSRF token of its session (or, before login, of its
    /// pre-session) in the CSRF header, or else in the form field of a
    /// URL-encoded body ([`CsrfCheck::ReadForm`]).
    ///
    /// [`CsrfCheck::ReadForm`] means the checks have **not** passed yet:
    /// the request passes only once [`check_csrf_form`](Self::check_csrf_form)
    /// accepts its body.
    ///
    /// # Errors
    /// [`CsrfRefusal`]: answer with its status and change nothing. The
    /// reason is logged with `tracing`.
    pub fn check_csrf(&self, request: &CsrfRequest<'_>) -> Result<CsrfCheck, CsrfRefusal> {
        self.checked(request, || {
            let ops = &self.shared.ops;
            let expected = match ops.origin() {
                Some(origin) => origin.to_owned(),
                None => {
                    let host = request.host.unwrap_or("");
                    // HTTPS, but for plain http on loopback (development).
                    let http = is_loopback(host) && request.origin.is_some_and(|o| o.starts_with("http://"));
                    format!("{}://{host}", if http { "http" } else { "https" })
                }
            };
            if request.upgrade {
                // A WebSocket handshake: from this site, or not at all. It
                // has no body and cannot carry a header of the page's.
                ops.csrf().policy.check_site(request.sec_fetch_site, request.origin, &expected)?;
                return Ok(CsrfCheck::Passed);
            }
            ops.csrf().policy.check(request.method, request.sec_fetch_site, request.origin, &expected)?;
            // Nothing to bind a token to: refuse before reading any body.
            let state = self.shared.lock();
            if state.current.is_none() && state.pre.is_none() {
                return Err(CsrfRefusal::NoBinding);
            }
            drop(state);
            match request.token {
                Some(token) => self.verify_csrf(token).map(|()| CsrfCheck::Passed),
                None if request.form => Ok(CsrfCheck::ReadForm),
                None => self.verify_csrf("").map(|()| CsrfCheck::Passed),
            }
        })
    }

    /// The rest of [`check_csrf`](Self::check_csrf) for
    /// [`CsrfCheck::ReadForm`]: the token from the URL-encoded `body`.
    ///
    /// # Errors
    /// As [`check_csrf`](Self::check_csrf).
    pub fn check_csrf_form(&self, body: &[u8]) -> Result<(), CsrfRefusal> {
        let field = &self.shared.ops.csrf().field;
        let token = form_urlencoded::parse(body).find(|(name, _)| name == field).map(|(_, value)| value);
        self.verify_csrf(token.as_deref().unwrap_or_default())
            .inspect_err(|err| tracing::info!(reason = %err, "CSRF check refused the request"))
    }

    fn checked(
        &self,
        request: &CsrfRequest<'_>,
        check: impl FnOnce() -> Result<CsrfCheck, CsrfRefusal>,
    ) -> Result<CsrfCheck, CsrfRefusal> {
        check().inspect_err(|err| {
            tracing::info!(reason = %err, method = request.method, path = request.path, "CSRF check refused the request");
        })
    }

    fn verify_csrf(&self, token: &str) -> Result<(), CsrfRefusal> {
        let ops = &self.shared.ops;
        let state = self.shared.lock();
        match (&state.current, &state.pre) {
            (Some(current), _) => Ok(ops.sealer().verify_csrf(current.session(), token)?),
            (None, Some(pre)) => Ok(ops.pre_sealer().verify_csrf(pre.session(), token)?),
            (None, None) => Err(CsrfRefusal::NoBinding),
        }
    }

    /// The cookies (or, for a bearer-token request, the token header) the
    /// response must carry: what the handler's calls decided, and a
    /// re-issue of an unchanged session that is due for one (key rotation,
    /// idle renewal). Call it once, after the handler ran.
    #[must_use]
    pub fn finish(&self) -> ResponseCookies {
        let ops = &self.shared.ops;
        let mut state = self.shared.lock();
        if state.session_cookie.is_none() {
            if let Some(current) = state.current.as_ref().filter(|c| c.reissue().is_some()) {
                match ops.issue(current.session(), state.bearer) {
                    Ok((_, header)) => state.session_cookie = Some(CookieChange::Set(header)),
                    Err(err) => tracing::error!(error = %err, "cannot re-issue the session"),
                }
            }
        }
        let mut response = ResponseCookies::default();
        if state.bearer {
            // Never a cookie; a new token in its header, which a logout omits.
            if let Some(CookieChange::Set(token)) = state.session_cookie.take() {
                response.session_token = Some(token);
            }
            return response;
        }
        let changes: [(&CookieSpec, Option<CookieChange>); 3] = [
            (ops.cookie(), state.session_cookie.take()),
            (ops.pre_cookie(), state.pre_cookie.take()),
            (&ops.flash().cookie, state.flash.finish()),
        ];
        for (cookie, change) in changes {
            match change {
                Some(CookieChange::Set(header)) => response.set_cookies.push(header),
                Some(CookieChange::Remove) => response.set_cookies.push(cookie.removal()),
                None => {}
            }
        }
        response
    }
}
