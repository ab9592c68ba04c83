//! The service: cookies in, session checks and CSRF, cookies out.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum_core::body::Body;
use axum_core::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{AUTHORIZATION, CACHE_CONTROL, COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use sealed_session::{CookieSpec, OpenError, Opened, RevocationStore, Verified, VerifyError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tower_service::Service;

use crate::csrf::check_csrf;
use crate::flash::{FlashHandle, FlashState};
use crate::layer::{Config, SESSION_TOKEN_HEADER};
use crate::sessions::{BoxFuture, CookieChange, Ops, Shared, State};
use crate::Sessions;

/// The service [`SessionLayer`](crate::SessionLayer) wraps around an inner service.
pub struct SessionService<I, S, T> {
    inner: I,
    config: Arc<Config<S>>,
    data: PhantomData<fn() -> T>,
}

impl<I, S, T> SessionService<I, S, T> {
    pub(crate) fn new(inner: I, config: Arc<Config<S>>) -> Self {
        Self { inner, config, data: PhantomData }
    }
}

impl<I: Clone, S, T> Clone for SessionService<I, S, T> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), config: Arc::clone(&self.config), data: PhantomData }
    }
}

impl<I, S, T> std::fmt::Debug for SessionService<I, S, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionService").field("cookie", &self.config.cookie.name()).finish_non_exhaustive()
    }
}

impl<I, S, T, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<I, S, T>
where
    I: Service<Request<Body>, Response = Response<ResBody>> + Clone + Send + 'static,
    I::Future: Send,
    S: RevocationStore + 'static,
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    ReqBody: http_body::Body<Data = Bytes> + Send + 'static,
    ReqBody::Error: Into<axum_core::BoxError>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<axum_core::BoxError>,
{
    type Response = Response;
    type Error = I::Error;
    type Future = BoxFuture<'static, Result<Response, I::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The clone is ready (poll_ready was called on it); leave a fresh one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = Arc::clone(&self.config);
        let mut request = request.map(Body::new);
        // One async block, with the request changed in place: an async fn
        // called from here would hold a second copy of it, and this future
        // is allocated and moved on every request.
        Box::pin(async move {
            let state = match bearer_token(&config, request.headers()) {
                Some(token) => {
                    // Nothing ambient: no cookies are read, no CSRF token is needed.
                    let current = match open_session::<S, T>(&config, token.as_deref().into_iter()).await {
                        Ok((current, _)) => current,
                        Err(refusal) => return Ok(refusal),
                    };
                    State::new(current, None, false, true, FlashState::default())
                }
                None => {
                    let values = cookie_values(&config.cookie, request.headers());
                    match open_session::<S, T>(&config, values).await {
                        Ok((current, refused)) => cookie_state(&config, request.headers(), current, refused),
                        Err(refusal) => return Ok(refusal),
                    }
                }
            };
            let bearer = state.bearer;
            let ops: Arc<dyn Ops<T>> = Arc::<Config<S>>::clone(&config);
            let shared = Arc::new(Shared { state: Mutex::new(state), ops });
            if !bearer && config.csrf.applies(request.method().as_str(), request.uri().path()) {
                // Boxed: the body-reading future is large, and safe methods never need it.
                let taken = std::mem::take(&mut request);
                match Box::pin(check_csrf_of(&config, taken, &shared)).await {
                    Ok(checked) => request = checked,
                    Err(refusal) => return Ok(refusal),
                }
            }
            // One allocation for the handle and the flash messages, in two
            // extensions: `Sessions<T>` for whoever names the data type, and
            // the flash handle for `Flashes`, which does not.
            request.extensions_mut().insert(FlashHandle(Arc::<Shared<T>>::clone(&shared)));
            request.extensions_mut().insert(Sessions::new(Arc::clone(&shared)));
            let response = inner.call(request).await?.map(Body::new);
            Ok(finish(&config, &shared, response))
        })
    }
}

/// The state of a request whose session came in cookies: the session that
/// opened (if any) and what became of the others, its pre-session and its
/// flash messages.
fn cookie_state<S, T>(
    config: &Config<S>,
    headers: &HeaderMap,
    current: Option<Verified<T>>,
    refused: Refused,
) -> State<T> {
    let (pre, pre_sent) = if current.is_some() { (None, false) } else { open_pre_session(config, headers) };
    let flash = FlashState::open(&config.flash, cookie_values(&config.flash.cookie, headers));
    let mut state = State::new(current, pre, pre_sent, false, flash);
    if state.current.is_none() {
        state.kept_unreadable = refused.kept;
        if refused.removed && !refused.kept {
            state.session_cookie = Some(CookieChange::Remove);
        }
    }
    state
}

/// [`check_csrf`] against the request's session or pre-session, logging a
/// refusal.
async fn check_csrf_of<S, T>(
    config: &Config<S>,
    request: Request<Body>,
    shared: &Shared<T>,
) -> Result<Request<Body>, Response>
where
    S: RevocationStore,
{
    let (current, pre) = {
        let state = shared.lock();
        (state.current.clone(), state.pre.clone())
    };
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    check_csrf(config, request, current.as_deref(), pre.as_ref()).await.map_err(|err| {
        tracing::info!(reason = %err, %method, path, "CSRF check refused the request");
        err.into_response()
    })
}

/// With bearer tokens on, the token of a request whose `Authorization`
/// header uses the `Bearer` scheme (`Some(None)` for `Bearer` with no
/// token: a client about to sign in); `None` for any other request.
fn bearer_token<S>(config: &Config<S>, headers: &HeaderMap) -> Option<Option<String>> {
    if !config.bearer {
        return None;
    }
    let value = headers.get(AUTHORIZATION)?.as_bytes();
    let scheme = value.get(..6).filter(|scheme| scheme.eq_ignore_ascii_case(b"bearer"))?;
    let rest = value.get(scheme.len()..).unwrap_or_default();
    if !rest.is_empty() && !rest.starts_with(b" ") {
        return None; // `Bearerx`: another scheme
    }
    let token = std::str::from_utf8(rest).ok().map(|t| t.trim_matches(' ')).filter(|t| !t.is_empty());
    Some(token.map(str::to_owned))
}

/// Every value of `cookie` in the request, over all its `Cookie` headers,
/// at most [`sealed_session::MAX_SAME_NAME`] in all: a request cannot make us try more.
fn cookie_values<'h>(cookie: &'h CookieSpec, headers: &'h HeaderMap) -> impl Iterator<Item = &'h str> + 'h {
    cookie.values_in(headers.get_all(COOKIE).into_iter().map(HeaderValue::as_bytes))
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

/// The first of the request's session tokens (cookies, or a bearer token)
/// that opens and passes the revocation check, and what became of the
/// others.
async fn open_session<'v, S, T>(
    config: &Config<S>,
    values: impl Iterator<Item = &'v str>,
) -> Result<(Option<Verified<T>>, Refused), Response>
where
    S: RevocationStore,
    T: DeserializeOwned,
{
    let mut refused = Refused::default();
    for value in values {
        match config.verifier.open::<T>(value).await {
            Ok(opened) => return Ok((Some(opened), refused)),
            Err(VerifyError::Store(err)) => {
                tracing::warn!(error = %err, "cannot check the session against the revocation store");
                return Err(
                    (StatusCode::SERVICE_UNAVAILABLE, "session store unavailable, try again").into_response()
                );
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

/// The request's pre-session, and whether it sent a pre-session cookie.
fn open_pre_session<S>(config: &Config<S>, headers: &HeaderMap) -> (Option<Opened<()>>, bool) {
    let mut sent = false;
    for value in cookie_values(&config.pre_cookie, headers) {
        sent = true;
        match config.pre_sealer.open::<()>(value) {
            Ok(opened) => return (Some(opened), true),
            Err(err) => tracing::info!(reason = %err, "pre-session cookie refused"),
        }
    }
    (None, sent)
}

/// Adds the `Set-Cookie` headers the request's session calls decided on.
fn finish<S, T>(config: &Config<S>, shared: &Shared<T>, mut response: Response) -> Response
where
    S: RevocationStore,
    T: Serialize + DeserializeOwned,
{
    let mut state = shared.lock();
    if state.session_cookie.is_none() {
        if let Some(current) = state.current.as_ref().filter(|c| c.reissue().is_some()) {
            match config.seal(current.session(), state.bearer) {
                Ok((_, header)) => state.session_cookie = Some(CookieChange::Set(header)),
                Err(err) => tracing::error!(error = %err, "cannot re-issue the session"),
            }
        }
    }
    if state.bearer {
        // Never a cookie; a new token in its header, which a logout omits.
        if let Some(CookieChange::Set(token)) = state.session_cookie.take() {
            match HeaderValue::try_from(token) {
                Ok(value) => {
                    response.headers_mut().insert(SESSION_TOKEN_HEADER, value);
                    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                }
                Err(err) => tracing::error!(error = %err, "a session token is not a header value"),
            }
        }
        return response;
    }
    let changes = [
        (&config.cookie, state.session_cookie.take()),
        (&config.pre_cookie, state.pre_cookie.take()),
        (&config.flash.cookie, state.flash.finish()),
    ];
    let mut set_any = false;
    for (cookie, change) in changes {
        let value = match change {
            Some(CookieChange::Set(header)) => header,
            Some(CookieChange::Remove) => cookie.removal(),
            None => continue,
        };
        match HeaderValue::try_from(value) {
            Ok(value) => {
                response.headers_mut().append(SET_COOKIE, value);
                set_any = true;
            }
            Err(err) => tracing::error!(error = %err, "a Set-Cookie value is not a header value"),
        }
    }
    if set_any && !response.headers().contains_key(CACHE_CONTROL) {
        response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
