//! The service: the core's driver over `http` types, and the body read for
//! a form's CSRF token.

use std::sync::Arc;
use std::task::{Context, Poll};

use axum_core::body::Body;
use axum_core::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use sealed_session::web::{Begin, FinishOnDrop, Nesting, Refusal, SessionHandle, WebConfig};
use sealed_session::{BoxFuture, RevocationStore};
use tower_service::Service;

/// The service [`SessionLayer`](crate::SessionLayer) wraps around an inner service.
pub struct SessionService<I, S> {
    inner: I,
    config: Arc<WebConfig<S>>,
}

impl<I, S> SessionService<I, S> {
    pub(crate) fn new(inner: I, config: Arc<WebConfig<S>>) -> Self {
        Self { inner, config }
    }
}

impl<I: Clone, S> Clone for SessionService<I, S> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), config: Arc::clone(&self.config) }
    }
}

impl<I, S> std::fmt::Debug for SessionService<I, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionService").field("cookie", &self.config.cookie().name()).finish_non_exhaustive()
    }
}

impl<I, S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<I, S>
where
    I: Service<Request<Body>, Response = Response<ResBody>> + Clone + Send + 'static,
    I::Future: Send,
    S: RevocationStore + 'static,
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
        let (mut parts, body) = request.into_parts();
        Box::pin(async move {
            if let Some(outer) = parts.extensions.get::<SessionHandle>() {
                match config.nested_in(outer, &parts) {
                    // An outer layer began this request, and finishes it.
                    Ok(Nesting::PassThrough) => {
                        return Ok(inner
                            .call(Request::from_parts(parts, Body::new(body)))
                            .await?
                            .map(Body::new));
                    }
                    Ok(Nesting::Resume(handle)) => {
                        parts.extensions.insert(handle);
                        return Ok(inner
                            .call(Request::from_parts(parts, Body::new(body)))
                            .await?
                            .map(Body::new));
                    }
                    Err(refusal) => return Ok(refuse(&refusal)),
                    Ok(_) => {}
                }
            }
            let (handle, body) = match config.begin(&parts).await {
                Begin::Ready(handle) => (handle, Body::new(body)),
                // Boxed: the body-reading future is large, and most requests never need it.
                Begin::ReadForm(form) => match Box::pin(read_form(form, body)).await {
                    Ok(read) => read,
                    Err(refusal) => return Ok(refuse(&refusal)),
                },
                Begin::Refuse(refusal) => return Ok(refuse(&refusal)),
                Begin::Answer(answer) => return Ok(answer.into_http().map(Body::from)),
            };
            let handle = FinishOnDrop::new(match parts.extensions.remove::<SessionHandle>() {
                Some(outer) => handle.inside(outer),
                None => handle,
            });
            parts.extensions.insert((*handle).clone());
            let mut response = match inner.call(Request::from_parts(parts, body)).await {
                Ok(response) => response.map(Body::new),
                Err(err) => {
                    // No response to carry the cookies: the handle is
                    // finished all the same, so nothing changes it unseen.
                    let lost = handle.finish();
                    if !lost.set_cookies.is_empty() || lost.session_token.is_some() {
                        tracing::warn!(
                            "the service inside the session layer failed: the session cookies its response \
                             would have set are lost (after a login or logout, its change took effect in the \
                             store without reaching the browser); turn the service's errors into responses \
                             inside the layer"
                        );
                    }
                    return Err(err);
                }
            };
            handle.finish().write_to(response.headers_mut());
            Ok(response)
        })
    }
}

/// Reads the form body for its CSRF token, up to the driver's limit, and
/// gives it back whole for the handler.
async fn read_form<B>(
    form: sealed_session::web::FormRead,
    body: B,
) -> Result<(sealed_session::web::SessionHandle, Body), Refusal>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<axum_core::BoxError>,
{
    let collected = match Limited::new(Body::new(body), form.limit()).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => {
            // Ours, or one of an outer middleware's (tower-http's body
            // limit), wrapped in the body's own error.
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&*err);
            while let Some(err) = cause {
                if err.is::<LengthLimitError>() {
                    return Err(form.too_large());
                }
                cause = err.source();
            }
            return Err(form.unreadable(&err));
        }
    };
    Ok((form.check(&collected)?, Body::from(collected)))
}

/// The answer to a request refused before its handler.
pub(crate) fn refuse(refusal: &Refusal) -> Response {
    let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::FORBIDDEN);
    (status, refusal.body()).into_response()
}
