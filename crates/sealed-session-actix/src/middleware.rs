//! The middleware: the core's driver over actix-web's request and
//! response, and the body read for a form's CSRF token.

use std::future::{ready, Ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue, HOST};
use actix_web::http::StatusCode;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{Error, HttpMessage as _, HttpResponse};
use futures_core::future::LocalBoxFuture;
use sealed_session::web::{
    Answer, Begin, FinishOnDrop, FormRead, Nesting, Refusal, RequestView, ResponseHeaders, SessionHandle,
    WebConfig,
};
use sealed_session::RevocationStore;

sealed_session::adapter_types! {
    /// An actix-web middleware with the axum layer's rules, because both
    /// are the core's driver: before the handler,
    /// [`WebConfig::begin`](sealed_session::web::WebConfig::begin) (whose
    /// documentation has the rules) finds the session, checks CSRF and may
    /// ask for the form body, which the middleware reads and puts back;
    /// after it, the response gets what
    /// [`SessionHandle::finish`](sealed_session::web::SessionHandle::finish)
    /// returns.
    ///
    /// Build it once and give a clone to each worker's `App`. Any data type
    /// goes: each extractor ([`Session<T>`], [`Sessions<T>`]) decodes the
    /// session as its own `T`. Wrapped twice around a route, it runs once;
    /// inside a middleware for another cookie it runs its own session;
    /// inside another configuration's middleware for the same cookie it
    /// answers `500` ([`WebConfig::nested_in`](sealed_session::web::WebConfig::nested_in)).
    pub struct SessionMiddleware;
}

impl<Svc, S> Transform<Svc, ServiceRequest> for SessionMiddleware<S>
where
    SessionService<Svc, S>: Service<ServiceRequest, Error = Error>,
{
    type Response = <SessionService<Svc, S> as Service<ServiceRequest>>::Response;
    type Error = Error;
    type Transform = SessionService<Svc, S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: Svc) -> Self::Future {
        ready(Ok(SessionService { service: Rc::new(service), config: Arc::clone(&self.config) }))
    }
}

/// The service [`SessionMiddleware`] wraps around the app's.
pub struct SessionService<Svc, S> {
    service: Rc<Svc>,
    config: Arc<WebConfig<S>>,
}

impl<Svc, S> std::fmt::Debug for SessionService<Svc, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionService").field("cookie", &self.config.cookie().name()).finish_non_exhaustive()
    }
}

impl<Svc, B, S> Service<ServiceRequest> for SessionService<Svc, S>
where
    Svc: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
    S: RevocationStore + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, mut request: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let config = Arc::clone(&self.config);
        Box::pin(async move {
            let outer = request
                .extensions()
                .get::<SessionHandle>()
                .map(|outer| config.nested_in(outer, &View(&request)));
            match outer {
                // An outer middleware began this request, and finishes it.
                Some(Ok(Nesting::PassThrough)) => {
                    return Ok(service.call(request).await?.map_into_left_body())
                }
                Some(Ok(Nesting::Resume(handle))) => {
                    request.extensions_mut().insert(handle);
                    return Ok(service.call(request).await?.map_into_left_body());
                }
                Some(Err(refusal)) => {
                    return Ok(request.into_response(refuse(&refusal)).map_into_right_body());
                }
                _ => {}
            }
            let begun = config.begin(&View(&request)).await;
            let handle = match begun {
                Begin::Ready(handle) => handle,
                Begin::ReadForm(form) => match read_form(form, &mut request).await {
                    Ok(handle) => handle,
                    Err(refusal) => return Ok(request.into_response(refuse(&refusal)).map_into_right_body()),
                },
                Begin::Refuse(refusal) => {
                    return Ok(request.into_response(refuse(&refusal)).map_into_right_body());
                }
                Begin::Answer(answer) => {
                    return Ok(request.into_response(answered(answer)).map_into_right_body())
                }
            };
            let handle = FinishOnDrop::new(match request.extensions_mut().remove::<SessionHandle>() {
                Some(outer) => handle.inside(outer),
                None => handle,
            });
            request.extensions_mut().insert((*handle).clone());
            let mut response = match service.call(request).await {
                Ok(response) => response,
                // An inner middleware's error (a handler's is a response by
                // now): its response is made here, so that it carries the
                // session's changes (a login the handler made) and headers.
                // (Wrapped: an outer middleware's `as_error` no longer finds
                // the inner error's type. A `ServiceResponse` of our own would
                // need a clone of the request, on which actix-web's routing
                // panics.)
                Err(err) => {
                    let mut answer = err.error_response();
                    handle.finish().write_to(&mut Headers(answer.headers_mut()));
                    return Err(actix_web::error::InternalError::from_response(err, answer).into());
                }
            };
            handle.finish().write_to(&mut Headers(response.headers_mut()));
            Ok(response.map_into_left_body())
        })
    }
}

/// The answer to a request refused before its handler.
fn refuse(refusal: &Refusal) -> HttpResponse {
    let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::FORBIDDEN);
    HttpResponse::build(status).content_type("text/plain; charset=utf-8").body(refusal.body())
}

/// An answer the driver gave by itself (a DBSC endpoint).
fn answered(answer: Answer) -> HttpResponse {
    let (status, headers, body) = answer.into_parts();
    let mut response = HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN));
    for (name, value) in headers {
        response.append_header((name, value));
    }
    response.body(body)
}

/// Reads the form body for its CSRF token, up to the driver's limit, and
/// puts it back for the handler.
async fn read_form(form: FormRead, request: &mut ServiceRequest) -> Result<SessionHandle, Refusal> {
    let limit = form.limit();
    let mut payload = request.take_payload();
    let mut body = BytesMut::new();
    while let Some(chunk) =
        std::future::poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut payload), cx)).await
    {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            // An outer middleware's limit, as axum's layer answers it.
            Err(actix_web::error::PayloadError::Overflow) => return Err(form.too_large()),
            Err(err) => return Err(form.unreadable(&err)),
        };
        if body.len().saturating_add(chunk.len()) > limit {
            return Err(form.too_large());
        }
        body.extend_from_slice(&chunk);
    }
    let body: Bytes = body.freeze();
    let handle = form.check(&body)?;
    request.set_payload(Payload::from(body));
    Ok(handle)
}

/// A request's method, path and headers, as the driver reads them.
struct View<'a>(&'a ServiceRequest);

impl RequestView for View<'_> {
    fn method(&self) -> &str {
        self.0.method().as_str()
    }

    fn path(&self) -> &str {
        // The path the router matches: percent-decoded but for `%`, `/`
        // and `+`, so that rules by path see what the routes see.
        self.0.match_info().as_str()
    }

    fn authority(&self) -> Option<&str> {
        self.0.uri().authority().map(|a| a.as_str()).or_else(|| self.header_text(HOST.as_str()))
    }

    fn header(&self, name: &str) -> Option<&[u8]> {
        self.0.headers().get(name).map(HeaderValue::as_bytes)
    }

    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.0.headers().get_all(name).map(HeaderValue::as_bytes)
    }
}

/// A response's headers, as the driver writes them.
struct Headers<'a>(&'a mut HeaderMap);

/// The header the driver names and the value it hands over; one that is
/// not a header (never, from the driver) is logged and dropped.
fn header(name: &str, value: String) -> Option<(HeaderName, HeaderValue)> {
    let name = HeaderName::from_bytes(name.as_bytes())
        .inspect_err(|err| tracing::error!(error = %err, header = name, "not a header name"))
        .ok()?;
    let value = HeaderValue::try_from(value)
        .inspect_err(|err| tracing::error!(error = %err, header = %name, "not a header value"))
        .ok()?;
    Some((name, value))
}

impl ResponseHeaders for Headers<'_> {
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.0.get_all(name).map(HeaderValue::as_bytes)
    }

    fn append(&mut self, name: &'static str, value: String) {
        if let Some((name, value)) = header(name, value) {
            self.0.append(name, value);
        }
    }

    fn replace(&mut self, name: &'static str, value: String) {
        if let Some((name, value)) = header(name, value) {
            self.0.insert(name, value);
        }
    }
}
