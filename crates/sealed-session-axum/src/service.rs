//! The service: cookies in, session checks and CSRF, cookies out.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum_core::body::Body;
use axum_core::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, COOKIE, HOST, ORIGIN, SET_COOKIE, UPGRADE};
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use sealed_session::web::{
    is_form, is_upgrade, CsrfCheck, CsrfRefusal, CsrfRequest, SessionHandle, WebConfig,
};
use sealed_session::RevocationStore;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tower_service::Service;

use crate::csrf::check_form;
use crate::layer::SESSION_TOKEN_HEADER;
use crate::Sessions;

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The service [`SessionLayer`](crate::SessionLayer) wraps around an inner service.
pub struct SessionService<I, S, T> {
    inner: I,
    config: Arc<WebConfig<S>>,
    data: PhantomData<fn() -> T>,
}

impl<I, S, T> SessionService<I, S, T> {
    pub(crate) fn new(inner: I, config: Arc<WebConfig<S>>) -> Self {
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
        f.debug_struct("SessionService").field("cookie", &self.config.cookie().name()).finish_non_exhaustive()
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
            let headers = request.headers();
            let authorization = headers.get(AUTHORIZATION).map(HeaderValue::as_bytes);
            let handle = match config.open_request::<T, _, _>(CookieHeaders(headers), authorization).await {
                Ok(handle) => handle,
                Err(_) => {
                    // Logged by the core; the client learns only this.
                    let body = "session store unavailable, try again";
                    return Ok((StatusCode::SERVICE_UNAVAILABLE, body).into_response());
                }
            };
            let upgrade = is_upgrade(request.method().as_str(), request.headers().contains_key(UPGRADE));
            if handle.csrf_applies(request.method().as_str(), request.uri().path(), upgrade) {
                // Boxed: the body-reading future is large, and safe methods never need it.
                let taken = std::mem::take(&mut request);
                match Box::pin(check_csrf(&handle, &config, taken)).await {
                    Ok(checked) => request = checked,
                    Err(refusal) => return Ok(refusal_response(&refusal)),
                }
            }
            // Two extensions, one allocation: `Sessions<T>` for whoever
            // names the data type, and the flash messages for `Flashes`,
            // which does not.
            request.extensions_mut().insert(handle.flashes());
            request.extensions_mut().insert(Sessions::new(handle.clone()));
            let response = inner.call(request).await?.map(Body::new);
            Ok(finish(&handle, response))
        })
    }
}

/// The CSRF checks of an unsafe request, reading its form if the token is
/// there; the request comes back whole.
async fn check_csrf<S, T>(
    handle: &SessionHandle<T>,
    config: &WebConfig<S>,
    request: Request<Body>,
) -> Result<Request<Body>, CsrfRefusal>
where
    S: RevocationStore,
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    let check = {
        let headers = request.headers();
        let host = request.uri().authority().map(|a| a.as_str()).or_else(|| text(headers, HOST.as_str()));
        handle.check_csrf(&CsrfRequest {
            method: request.method().as_str(),
            path: request.uri().path(),
            origin: text(headers, ORIGIN.as_str()),
            sec_fetch_site: text(headers, "sec-fetch-site"),
            host,
            token: text(headers, config.csrf_header()),
            form: is_form(text(headers, CONTENT_TYPE.as_str())),
            upgrade: is_upgrade(request.method().as_str(), headers.contains_key(UPGRADE)),
        })?
    };
    match check {
        CsrfCheck::Passed => Ok(request),
        CsrfCheck::ReadForm => check_form(handle, request).await,
    }
}

/// A request's `Cookie` headers, as often as the core reads them.
#[derive(Clone, Copy)]
struct CookieHeaders<'h>(&'h HeaderMap);

impl<'h> IntoIterator for CookieHeaders<'h> {
    type Item = &'h HeaderValue;
    type IntoIter = http::header::ValueIter<'h, HeaderValue>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.get_all(COOKIE).into_iter()
    }
}

/// The value of the header `name`, if it is text.
fn text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn refusal_response(refusal: &CsrfRefusal) -> Response {
    let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::FORBIDDEN);
    (status, refusal.body()).into_response()
}

/// Adds the cookies, or the bearer token's header, that the handle decided
/// on to the response.
fn finish<T>(handle: &SessionHandle<T>, mut response: Response) -> Response
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    let cookies = handle.finish();
    let headers = response.headers_mut();
    let cache_control =
        cookies.cache_control(headers.get_all(CACHE_CONTROL).iter().map(HeaderValue::as_bytes));
    if let Some(token) = cookies.session_token {
        match HeaderValue::try_from(token) {
            Ok(value) => {
                headers.insert(SESSION_TOKEN_HEADER, value);
            }
            Err(err) => tracing::error!(error = %err, "a session token is not a header value"),
        }
    }
    for value in cookies.set_cookies {
        match HeaderValue::try_from(value) {
            Ok(value) => {
                headers.append(SET_COOKIE, value);
            }
            Err(err) => tracing::error!(error = %err, "a Set-Cookie value is not a header value"),
        }
    }
    if let Some(value) = cache_control {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static(value));
    }
    response
}
