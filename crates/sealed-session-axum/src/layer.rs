//! The tower layer: cookies in, session checks, CSRF, cookies out.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum_core::body::Body;
use axum_core::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, HOST, ORIGIN, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use sealed_session::csrf::{self, CsrfError};
use sealed_session::{
    ConfigError, CookieError, CookieSpec, OpenError, Opened, RevocationStore, Sealer, Session as CoreSession,
    Verified, Verifier, VerifyError, MAX_SAME_NAME,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::SessionError;
use crate::sessions::{issue_cookie, BoxFuture, CookieChange, Ops, Shared, State};
use crate::Sessions;

/// The header a script sends the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The form field an HTML form sends the CSRF token in.
pub const CSRF_FIELD: &str = "csrf_token";
/// How large a form body the layer reads to find the CSRF field: 64 KiB.
pub const DEFAULT_FORM_LIMIT: usize = 64 * 1024;
/// How long a pre-session (the login form's CSRF binding) lives: 2 hours.
pub const PRE_SESSION_TIMEOUT: Duration = Duration::from_secs(2 * 60 * 60);

/// Everything the layer and the handles share.
struct Config<S> {
    verifier: Verifier<S>,
    cookie: CookieSpec,
    pre_sealer: Sealer,
    pre_cookie: CookieSpec,
    origin: Option<String>,
    csrf: bool,
    form_limit: usize,
}

impl<S: RevocationStore, T: Send + Sync + 'static> Ops<T> for Config<S> {
    fn sealer(&self) -> &Sealer {
        self.verifier.sealer()
    }

    fn pre_sealer(&self) -> &Sealer {
        &self.pre_sealer
    }

    fn pre_cookie(&self) -> &CookieSpec {
        &self.pre_cookie
    }

    fn issue(&self, session: &CoreSession<T>) -> Result<(Verified<T>, String), SessionError>
    where
        T: Serialize + DeserializeOwned,
    {
        issue_cookie(&self.verifier, &self.cookie, session)
    }

    fn login<'a>(&'a self, user_id: &'a str, data: T) -> BoxFuture<'a, Result<CoreSession<T>, VerifyError>> {
        Box::pin(self.verifier.login(user_id, data))
    }

    fn logout<'a>(&'a self, session: &'a CoreSession<T>) -> BoxFuture<'a, Result<(), VerifyError>> {
        Box::pin(self.verifier.logout(session))
    }

    fn logout_everywhere<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<u64, VerifyError>> {
        Box::pin(self.verifier.logout_everywhere(user_id))
    }

    fn renew_id<'a>(&'a self, session: &'a mut CoreSession<T>) -> BoxFuture<'a, Result<(), VerifyError>> {
        Box::pin(self.verifier.renew_id(session))
    }
}

/// A [`tower_layer::Layer`] that gives every request its session.
///
/// For each request it:
/// 1. reads the session cookie (the first value that opens, of at most
///    four; see [`CookieSpec::values`]) and checks it against the revocation
///    store. Expired, revoked, tampered and unknown-key cookies all become
///    "no session" (and a cookie removal); the reason is logged with
///    `tracing` at `info`. A store that cannot be reached gives `503`
///    and changes no cookie.
/// 2. on unsafe methods (anything but GET, HEAD, OPTIONS, TRACE), refuses
///    with `403` a request that the browser marks as cross-site
///    ([`csrf::check_origin`]) or that lacks the session's CSRF token, in
///    the `X-CSRF-Token` header or the `csrf_token` field of a URL-encoded
///    form. Without a session the token must match the pre-session (see
///    [`Sessions::csrf_token`]).
/// 3. runs the inner service with a [`Sessions`] handle in the request's
///    extensions, and then writes `Set-Cookie` only if the handler changed
///    the session, or the session is due for re-issue (key rotation, idle
///    renewal). Responses that set a cookie get `Cache-Control: no-store`
///    unless they have a `Cache-Control` already.
///
/// `T` is the session's data type; handlers extract [`Sessions<T>`] and
/// [`Session<T>`](crate::Session) with the same `T`.
pub struct SessionLayer<S, T> {
    config: Arc<Config<S>>,
    data: PhantomData<fn() -> T>,
}

impl<S, T> Clone for SessionLayer<S, T> {
    fn clone(&self) -> Self {
        Self { config: Arc::clone(&self.config), data: PhantomData }
    }
}

impl<S, T> std::fmt::Debug for SessionLayer<S, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLayer")
            .field("cookie", &self.config.cookie.name())
            .field("origin", &self.config.origin)
            .field("csrf", &self.config.csrf)
            .finish_non_exhaustive()
    }
}

impl<S, T> SessionLayer<S, T>
where
    S: RevocationStore + 'static,
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// A layer with the defaults: the cookie `__Host-session` (Secure,
    /// HttpOnly, SameSite=Lax, Path=/), CSRF enforcement on, and the
    /// expected origin taken from each request's `Host`.
    ///
    /// # Errors
    /// [`LayerError`] as [`SessionLayerBuilder::build`].
    pub fn new(verifier: Verifier<S>) -> Result<Self, LayerError> {
        Self::builder(verifier).build()
    }

    /// A builder, to choose the cookie, the origin and the CSRF settings.
    pub fn builder(verifier: Verifier<S>) -> SessionLayerBuilder<S, T> {
        SessionLayerBuilder {
            verifier,
            cookie: CookieSpec::default(),
            origin: None,
            csrf: true,
            form_limit: DEFAULT_FORM_LIMIT,
            data: PhantomData,
        }
    }
}

/// Configures a [`SessionLayer`].
pub struct SessionLayerBuilder<S, T> {
    verifier: Verifier<S>,
    cookie: CookieSpec,
    origin: Option<String>,
    csrf: bool,
    form_limit: usize,
    data: PhantomData<fn() -> T>,
}

impl<S, T> std::fmt::Debug for SessionLayerBuilder<S, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLayerBuilder")
            .field("cookie", &self.cookie.name())
            .field("origin", &self.origin)
            .field("csrf", &self.csrf)
            .finish_non_exhaustive()
    }
}

impl<S, T> SessionLayerBuilder<S, T>
where
    S: RevocationStore + 'static,
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// The session cookie. The pre-session cookie is named after it with
    /// `-csrf` appended, lives as long as the browser session and has the
    /// default attributes. Keep the sealer's purpose equal to the cookie
    /// name (the default for both is `__Host-session`).
    #[must_use]
    pub fn cookie(mut self, cookie: CookieSpec) -> Self {
        self.cookie = cookie;
        self
    }

    /// The origin unsafe requests must come from, such as
    /// `https://app.example`, when the browser sends no `Sec-Fetch-Site`
    /// but an `Origin`. By default `https://` and the request's own host
    /// (right unless a proxy rewrites `Host`), or `http://` for a loopback
    /// host (`127.0.0.1`, `localhost`, `[::1]`), where browsers treat plain
    /// http as secure.
    #[must_use]
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Turns CSRF enforcement off, for APIs that no browser calls with
    /// cookies (tokens in `Authorization` headers, say). On by default:
    /// keep it on for anything a browser uses.
    #[must_use]
    pub fn without_csrf(mut self) -> Self {
        self.csrf = false;
        self
    }

    /// The largest URL-encoded form body read to find the `csrf_token`
    /// field; larger forms get `413`. Default [`DEFAULT_FORM_LIMIT`].
    #[must_use]
    pub fn form_limit(mut self, bytes: usize) -> Self {
        self.form_limit = bytes;
        self
    }

    /// The layer.
    ///
    /// # Errors
    /// [`LayerError::PreSession`] if the pre-session sealer cannot be built
    /// from the verifier's keyring, or [`LayerError::Cookie`] if the
    /// pre-session cookie name is not valid.
    pub fn build(self) -> Result<SessionLayer<S, T>, LayerError> {
        let sealer = self.verifier.sealer();
        let pre_sealer = Sealer::builder(sealer.keyring().clone())
            .purpose(format!("{}-csrf", sealer.purpose()))
            .absolute_timeout(PRE_SESSION_TIMEOUT)
            .idle_timeout(PRE_SESSION_TIMEOUT)
            .clock(Arc::clone(sealer.clock()))
            .build()?;
        let pre_cookie = CookieSpec::named(format!("{}-csrf", self.cookie.name()))?.browser_session();
        let config = Config {
            verifier: self.verifier,
            cookie: self.cookie,
            pre_sealer,
            pre_cookie,
            origin: self.origin.map(|o| o.trim_end_matches('/').to_owned()),
            csrf: self.csrf,
            form_limit: self.form_limit,
        };
        Ok(SessionLayer { config: Arc::new(config), data: PhantomData })
    }
}

impl<I, S, T> Layer<I> for SessionLayer<S, T> {
    type Service = SessionService<I, S, T>;

    fn layer(&self, inner: I) -> Self::Service {
        SessionService { inner, config: Arc::clone(&self.config), data: PhantomData }
    }
}

/// The service [`SessionLayer`] wraps around an inner service.
pub struct SessionService<I, S, T> {
    inner: I,
    config: Arc<Config<S>>,
    data: PhantomData<fn() -> T>,
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
        Box::pin(async move {
            let (request, shared) = match prepare::<S, T>(&config, request.map(Body::new)).await {
                Ok(prepared) => prepared,
                Err(refusal) => return Ok(refusal),
            };
            let response = inner.call(request).await?.map(Body::new);
            Ok(finish(&config, &shared, response))
        })
    }
}

/// Opens the request's cookies, enforces CSRF and attaches the handle; or
/// the response that refuses the request.
async fn prepare<S, T>(
    config: &Arc<Config<S>>,
    mut request: Request<Body>,
) -> Result<(Request<Body>, Arc<Shared<T>>), Response>
where
    S: RevocationStore + 'static,
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    let (current, refused) = open_session::<S, T>(config, request.headers()).await?;
    let (pre, pre_sent) =
        if current.is_some() { (None, false) } else { open_pre_session(config, request.headers()) };
    if config.csrf && csrf::is_unsafe_method(request.method().as_str()) {
        let (method, path) = (request.method().clone(), request.uri().path().to_owned());
        // Boxed: the body-reading future is large, and safe methods never need it.
        match Box::pin(check_csrf(config, request, current.as_ref(), pre.as_ref())).await {
            Ok(checked) => request = checked,
            Err(err) => {
                tracing::info!(reason = %err, %method, path, "CSRF check refused the request");
                return Err(err.into_response());
            }
        }
    }
    let mut state = State::new(current, pre, pre_sent);
    if refused && state.current.is_none() {
        state.session_cookie = Some(CookieChange::Remove);
    }
    let ops: Arc<dyn Ops<T>> = Arc::<Config<S>>::clone(config);
    let shared = Arc::new(Shared { state: Mutex::new(state), ops });
    request.extensions_mut().insert(Sessions::new(Arc::clone(&shared)));
    Ok((request, shared))
}

/// Every value of `cookie` in the request, over all its `Cookie` headers,
/// at most [`MAX_SAME_NAME`] in all: a request cannot make us try more.
fn cookie_values<'h>(cookie: &'h CookieSpec, headers: &'h HeaderMap) -> impl Iterator<Item = &'h str> + 'h {
    headers
        .get_all(COOKIE)
        .into_iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(move |h| cookie.values(h))
        .take(MAX_SAME_NAME)
}

/// The first of the request's session cookies that opens and passes the
/// revocation check, and whether one was refused (and should be removed).
async fn open_session<S, T>(
    config: &Config<S>,
    headers: &HeaderMap,
) -> Result<(Option<Verified<T>>, bool), Response>
where
    S: RevocationStore,
    T: DeserializeOwned,
{
    let mut refused = false;
    for value in cookie_values(&config.cookie, headers) {
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
            }
            Err(err @ VerifyError::StoreFault { .. }) => {
                tracing::error!(reason = %err, "session cookie refused");
                refused = true;
            }
            Err(err) => {
                tracing::info!(reason = %err, "session cookie refused");
                refused = true;
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

/// Whether `host` (a `Host` header or URI authority) names the loopback
/// interface, where browsers treat plain `http` as a secure context.
fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next(),
        None => host.split(':').next(),
    };
    matches!(name, Some("127.0.0.1" | "localhost" | "::1"))
}

/// The CSRF checks of an unsafe request. Reading the token from a form
/// consumes the body, so the request comes back rebuilt.
async fn check_csrf<S: RevocationStore, T>(
    config: &Config<S>,
    request: Request<Body>,
    current: Option<&Verified<T>>,
    pre: Option<&Opened<()>>,
) -> Result<Request<Body>, RefusedRequest> {
    let headers = request.headers();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let origin = header(ORIGIN.as_str());
    let expected = match &config.origin {
        Some(origin) => origin.clone(),
        None => {
            let host =
                request.uri().authority().map(|a| a.as_str()).or_else(|| header(HOST.as_str())).unwrap_or("");
            // HTTPS, but for plain http on loopback (development).
            let http = is_loopback(host) && origin.is_some_and(|o| o.starts_with("http://"));
            format!("{}://{host}", if http { "http" } else { "https" })
        }
    };
    csrf::check_origin(request.method().as_str(), header("sec-fetch-site"), origin, &expected)?;
    // Nothing to bind a token to: refuse before reading any body.
    if current.is_none() && pre.is_none() {
        return Err(RefusedRequest::NoBinding);
    }
    let (token, request) = match header(CSRF_HEADER) {
        Some(token) => (Some(token.to_owned()), request),
        None if is_form(request.headers()) => form_token(request, config.form_limit).await?,
        None => (None, request),
    };
    let token = token.unwrap_or_default();
    match (current, pre) {
        (Some(current), _) => config.verifier.sealer().verify_csrf(current.session(), &token)?,
        (None, Some(pre)) => config.pre_sealer.verify_csrf(pre.session(), &token)?,
        (None, None) => return Err(RefusedRequest::NoBinding),
    }
    Ok(request)
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// Reads a URL-encoded body (up to `limit` bytes) for its `csrf_token`
/// field, and puts the body back.
async fn form_token(
    request: Request<Body>,
    limit: usize,
) -> Result<(Option<String>, Request<Body>), RefusedRequest> {
    let (parts, body) = request.into_parts();
    let collected = Limited::new(body, limit).collect().await.map_err(|err| {
        if err.downcast_ref::<LengthLimitError>().is_some() {
            RefusedRequest::TooLarge
        } else {
            RefusedRequest::Unreadable
        }
    })?;
    let bytes = collected.to_bytes();
    let token = form_urlencoded::parse(&bytes)
        .find(|(name, _)| name == CSRF_FIELD)
        .map(|(_, value)| value.into_owned());
    Ok((token, Request::from_parts(parts, Body::from(bytes))))
}

/// Why the layer refused an unsafe request.
#[derive(Debug, thiserror::Error)]
enum RefusedRequest {
    #[error(transparent)]
    Csrf(#[from] CsrfError),
    #[error("there is neither a session nor a pre-session to bind a CSRF token to (cookies blocked, or a form from before the pre-session)")]
    NoBinding,
    #[error("the form body is larger than the limit")]
    TooLarge,
    #[error("the form body could not be read")]
    Unreadable,
}

impl RefusedRequest {
    fn into_response(self) -> Response {
        match self {
            RefusedRequest::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response(),
            RefusedRequest::Unreadable => {
                (StatusCode::BAD_REQUEST, "unreadable request body").into_response()
            }
            _ => (StatusCode::FORBIDDEN, "CSRF check failed").into_response(),
        }
    }
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
            match issue_cookie(&config.verifier, &config.cookie, current.session()) {
                Ok((_, header)) => state.session_cookie = Some(CookieChange::Set(header)),
                Err(err) => tracing::error!(error = %err, "cannot re-issue the session cookie"),
            }
        }
    }
    let changes =
        [(&config.cookie, state.session_cookie.take()), (&config.pre_cookie, state.pre_cookie.take())];
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

/// A [`SessionLayer`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayerError {
    /// The pre-session sealer could not be built from the verifier's keyring.
    #[error("cannot build the pre-session sealer: {0}")]
    PreSession(#[from] ConfigError),
    /// The pre-session cookie (the session cookie's name with `-csrf`
    /// appended) is not a valid cookie.
    #[error("invalid pre-session cookie: {0}")]
    Cookie(#[from] CookieError),
}
