//! The middleware and its builder: cookies in, session checks and CSRF,
//! cookies out.

use std::future::{ready, Future, Ready};
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{
    HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, COOKIE, HOST, ORIGIN,
    SET_COOKIE, UPGRADE,
};
use actix_web::http::StatusCode;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{Error, HttpMessage as _, HttpResponse};
use sealed_session::web::{
    is_form, is_upgrade, CsrfCheck, CsrfRefusal, CsrfRequest, SessionHandle, WebConfig, WebConfigBuilder,
    SESSION_TOKEN_HEADER,
};
use sealed_session::{CookieSpec, RevocationStore, Verifier};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::extractors::Sessions;

pub use sealed_session::web::WebConfigError as MiddlewareError;

pub(crate) type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// An actix-web middleware that gives every request its session, with the
/// rules of the core's [`sealed_session::web`] (the same as the axum
/// layer's):
///
/// 1. reads the session cookie (the first value that opens, of at most
///    four, over all `Cookie` headers) and checks it against the revocation
///    store. Expired, revoked and tampered cookies become "no session" (and
///    a cookie removal); one sealed under a key this server does not have
///    is "no session" but kept. The reason is logged with `tracing`. A store
///    that cannot be reached gives `503` and changes no cookie. With
///    [`bearer_tokens`](SessionMiddlewareBuilder::bearer_tokens), a request
///    with `Authorization: Bearer` uses that token instead, and no cookie.
/// 2. on unsafe methods to paths not exempt, and not carried by a bearer
///    token, refuses with `403` a request that the browser marks as
///    cross-site or that lacks the session's CSRF token (in the
///    `X-CSRF-Token` header or the `csrf_token` field of a URL-encoded
///    form, read up to 64 KiB: `413` beyond). Without a session the token
///    must match the pre-session ([`Sessions::csrf_token`]).
/// 3. runs the handler with a [`Sessions`] handle in the request's
///    extensions, and then writes `Set-Cookie` only if the handler changed
///    the session or its flash messages, or the session is due for
///    re-issue. Responses that set a cookie get `Cache-Control: no-store`
///    unless they have a `Cache-Control` already.
///
/// `T` is the session's data type; handlers extract [`Sessions<T>`] and
/// [`Session<T>`](crate::Session) with the same `T`.
pub struct SessionMiddleware<S, T> {
    config: Arc<WebConfig<S>>,
    data: PhantomData<fn() -> T>,
}

impl<S, T> Clone for SessionMiddleware<S, T> {
    fn clone(&self) -> Self {
        Self { config: Arc::clone(&self.config), data: PhantomData }
    }
}

impl<S, T> std::fmt::Debug for SessionMiddleware<S, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionMiddleware").field("config", &self.config).finish_non_exhaustive()
    }
}

impl<S, T> SessionMiddleware<S, T>
where
    S: RevocationStore + 'static,
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// A middleware with the defaults: the cookie `__Host-session` (Secure,
    /// HttpOnly, SameSite=Lax, Path=/), CSRF enforcement on, and the
    /// expected origin taken from each request's `Host`.
    ///
    /// # Errors
    /// [`MiddlewareError`] as [`SessionMiddlewareBuilder::build`].
    pub fn new(verifier: Verifier<S>) -> Result<Self, MiddlewareError> {
        Self::builder(verifier).build()
    }

    /// A builder, to choose the cookie, the origin and the CSRF settings.
    pub fn builder(verifier: Verifier<S>) -> SessionMiddlewareBuilder<S, T> {
        SessionMiddlewareBuilder { config: WebConfig::builder(verifier), data: PhantomData }
    }

    /// The settings, shared by every request.
    #[must_use]
    pub fn config(&self) -> &WebConfig<S> {
        &self.config
    }
}

/// Configures a [`SessionMiddleware`]: the settings of
/// [`WebConfigBuilder`], which the axum layer shares.
pub struct SessionMiddlewareBuilder<S, T> {
    config: WebConfigBuilder<S>,
    data: PhantomData<fn() -> T>,
}

impl<S, T> std::fmt::Debug for SessionMiddlewareBuilder<S, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionMiddlewareBuilder").field("config", &self.config).finish_non_exhaustive()
    }
}

impl<S, T> SessionMiddlewareBuilder<S, T>
where
    S: RevocationStore + 'static,
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// The session cookie, whose name must be the sealer's purpose; see
    /// [`WebConfigBuilder::cookie`].
    #[must_use]
    pub fn cookie(self, cookie: CookieSpec) -> Self {
        self.map(|c| c.cookie(cookie))
    }

    /// The origin unsafe requests must come from; see
    /// [`WebConfigBuilder::origin`].
    #[must_use]
    pub fn origin(self, origin: impl Into<String>) -> Self {
        self.map(|c| c.origin(origin))
    }

    /// Turns CSRF enforcement off; see [`WebConfigBuilder::without_csrf`].
    #[must_use]
    pub fn without_csrf(self) -> Self {
        self.map(WebConfigBuilder::without_csrf)
    }

    /// Exempts requests to `path` from the CSRF checks (webhooks, OpenID
    /// Connect `form_post`); see [`WebConfigBuilder::csrf_exempt`] for what
    /// an exempt route must then do itself.
    #[must_use]
    pub fn csrf_exempt(self, path: impl Into<String>) -> Self {
        self.map(|c| c.csrf_exempt(path))
    }

    /// Also accepts unsafe requests from `origin`, still with the CSRF
    /// token; see [`WebConfigBuilder::trust_origin`].
    #[must_use]
    pub fn trust_origin(self, origin: impl Into<String>) -> Self {
        self.map(|c| c.trust_origin(origin))
    }

    /// Also accepts unsafe requests marked `Sec-Fetch-Site: same-site`,
    /// still with the CSRF token; see [`WebConfigBuilder::allow_same_site`].
    #[must_use]
    pub fn allow_same_site(self) -> Self {
        self.map(WebConfigBuilder::allow_same_site)
    }

    /// The header scripts send the CSRF token in; default
    /// [`CSRF_HEADER`](crate::CSRF_HEADER) (`X-CSRF-Token`).
    #[must_use]
    pub fn csrf_header(self, name: HeaderName) -> Self {
        self.map(|c| c.csrf_header(name.as_str()))
    }

    /// The form field HTML forms send the CSRF token in; default
    /// [`CSRF_FIELD`](crate::CSRF_FIELD) (`csrf_token`).
    #[must_use]
    pub fn csrf_field(self, name: impl Into<String>) -> Self {
        self.map(|c| c.csrf_field(name))
    }

    /// Also reads the session token from `Authorization: Bearer <token>`,
    /// for clients that are not browsers, with no cookies and no CSRF
    /// token; new tokens go out in [`SESSION_TOKEN_HEADER`]. See
    /// [`WebConfigBuilder::bearer_tokens`].
    #[must_use]
    pub fn bearer_tokens(self) -> Self {
        self.map(WebConfigBuilder::bearer_tokens)
    }

    /// The largest URL-encoded form body read to find the CSRF field;
    /// larger forms get `413`. Default
    /// [`DEFAULT_FORM_LIMIT`](crate::DEFAULT_FORM_LIMIT).
    #[must_use]
    pub fn form_limit(self, bytes: usize) -> Self {
        self.map(|c| c.form_limit(bytes))
    }

    /// The middleware.
    ///
    /// # Errors
    /// [`MiddlewareError`], as [`WebConfigBuilder::build`].
    pub fn build(self) -> Result<SessionMiddleware<S, T>, MiddlewareError> {
        Ok(SessionMiddleware { config: Arc::new(self.config.build()?), data: PhantomData })
    }

    fn map(self, change: impl FnOnce(WebConfigBuilder<S>) -> WebConfigBuilder<S>) -> Self {
        Self { config: change(self.config), data: PhantomData }
    }
}

impl<Svc, B, S, T> Transform<Svc, ServiceRequest> for SessionMiddleware<S, T>
where
    Svc: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
    S: RevocationStore + 'static,
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = SessionService<Svc, S, T>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: Svc) -> Self::Future {
        ready(Ok(SessionService {
            service: Rc::new(service),
            config: Arc::clone(&self.config),
            data: PhantomData,
        }))
    }
}

/// The service [`SessionMiddleware`] wraps around the app's.
pub struct SessionService<Svc, S, T> {
    service: Rc<Svc>,
    config: Arc<WebConfig<S>>,
    data: PhantomData<fn() -> T>,
}

impl<Svc, S, T> std::fmt::Debug for SessionService<Svc, S, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionService").field("cookie", &self.config.cookie().name()).finish_non_exhaustive()
    }
}

impl<Svc, B, S, T> Service<ServiceRequest> for SessionService<Svc, S, T>
where
    Svc: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
    S: RevocationStore + 'static,
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = LocalBoxFuture<Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, mut request: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let config = Arc::clone(&self.config);
        Box::pin(async move {
            let headers = request.headers();
            let authorization = headers.get(AUTHORIZATION).map(HeaderValue::as_bytes);
            let handle = match config.open_request::<T, _, _>(CookieHeaders(headers), authorization).await {
                Ok(handle) => handle,
                Err(_) => {
                    // Logged by the core; the client learns only this.
                    let refusal =
                        plain(StatusCode::SERVICE_UNAVAILABLE, "session store unavailable, try again");
                    return Ok(request.into_response(refusal).map_into_right_body());
                }
            };
            let upgrade = is_upgrade(request.method().as_str(), request.headers().contains_key(UPGRADE));
            if handle.csrf_applies(request.method().as_str(), request.path(), upgrade) {
                if let Err(refusal) = check_csrf(&handle, &config, &mut request).await {
                    let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::FORBIDDEN);
                    return Ok(request.into_response(plain(status, refusal.body())).map_into_right_body());
                }
            }
            request.extensions_mut().insert(handle.flashes());
            request.extensions_mut().insert(Sessions::new(handle.clone()));
            // An error from the inner service (not a handler's error, which
            // actix-web has made a response by now) passes through with no
            // cookie change: actix-web builds its response later, out of reach.
            let mut response = service.call(request).await?;
            finish(&handle, response.headers_mut());
            Ok(response.map_into_left_body())
        })
    }
}

fn plain(status: StatusCode, body: &'static str) -> HttpResponse {
    HttpResponse::build(status).content_type("text/plain; charset=utf-8").body(body)
}

/// A request's `Cookie` headers, as often as the core reads them.
#[derive(Clone, Copy)]
struct CookieHeaders<'h>(&'h HeaderMap);

impl<'h> IntoIterator for CookieHeaders<'h> {
    type Item = &'h HeaderValue;
    type IntoIter = std::iter::Flatten<std::option::IntoIter<std::slice::Iter<'h, HeaderValue>>>;

    fn into_iter(self) -> Self::IntoIter {
        Some(self.0.get_all(COOKIE)).into_iter().flatten()
    }
}

/// The value of the header `name`, if it is text.
fn text<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The CSRF checks of an unsafe request, reading its form if the token is
/// there and putting the body back for the handler.
async fn check_csrf<S, T>(
    handle: &SessionHandle<T>,
    config: &WebConfig<S>,
    request: &mut ServiceRequest,
) -> Result<(), CsrfRefusal>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    let check = {
        let headers = request.headers();
        let csrf_header = HeaderName::from_bytes(config.csrf_header().as_bytes()).ok();
        let host = request.uri().authority().map(|a| a.as_str()).or_else(|| text(headers, &HOST));
        handle.check_csrf(&CsrfRequest {
            method: request.method().as_str(),
            path: request.path(),
            origin: text(headers, &ORIGIN),
            sec_fetch_site: text(headers, &HeaderName::from_static("sec-fetch-site")),
            host,
            token: csrf_header.as_ref().and_then(|name| text(headers, name)),
            form: is_form(text(headers, &CONTENT_TYPE)),
            upgrade: is_upgrade(request.method().as_str(), headers.contains_key(UPGRADE)),
        })?
    };
    if check == CsrfCheck::Passed {
        return Ok(());
    }
    let body = read_limited(request.take_payload(), handle.form_limit()).await?;
    handle.check_csrf_form(&body)?;
    request.set_payload(Payload::from(body));
    Ok(())
}

/// The whole body, if it is at most `limit` bytes.
async fn read_limited(mut payload: Payload, limit: usize) -> Result<Bytes, CsrfRefusal> {
    let mut body = BytesMut::new();
    while let Some(chunk) =
        std::future::poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut payload), cx)).await
    {
        let chunk = chunk.map_err(|err| {
            tracing::info!(error = %err, "the form body could not be read");
            CsrfRefusal::Unreadable
        })?;
        if body.len().saturating_add(chunk.len()) > limit {
            tracing::info!(limit, "CSRF check refused the request: the form body is larger than the limit");
            return Err(CsrfRefusal::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Adds the cookies, or the bearer token's header, that the handle decided
/// on to the response.
fn finish<T>(handle: &SessionHandle<T>, headers: &mut HeaderMap)
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    let cookies = handle.finish();
    let cache_control = cookies.cache_control(headers.get_all(CACHE_CONTROL).map(HeaderValue::as_bytes));
    if let Some(token) = cookies.session_token {
        match HeaderValue::try_from(token) {
            Ok(value) => {
                headers.insert(HeaderName::from_static(SESSION_TOKEN_HEADER), value);
            }
            Err(err) => tracing::error!(error = %err, "a session token is not a header value"),
        }
    }
    for value in cookies.set_cookies {
        match HeaderValue::try_from(value) {
            Ok(value) => headers.append(SET_COOKIE, value),
            Err(err) => tracing::error!(error = %err, "a Set-Cookie value is not a header value"),
        }
    }
    if let Some(value) = cache_control {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static(value));
    }
}
