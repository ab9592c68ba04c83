//! Routes that require a signed-in session.

use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum_core::body::Body;
use axum_core::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, LOCATION};
use http::{HeaderValue, Request, StatusCode};
use sealed_session::redirect::NoSessionAnswer;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::SessionError;
use crate::service::BoxFuture;
use crate::Sessions;

/// A [`tower_layer::Layer`] for routes that need a signed-in session (one
/// with a user; an anonymous session does not count). Put it on the routes
/// with `route_layer`, inside a [`SessionLayer`](crate::SessionLayer) with
/// the same `T`. Requests without one never reach the handler:
///
/// * a browser (a request whose `Accept` names `text/html`) is redirected
///   (`303`) to the login page, with the path it asked for as `next`
///   (only a path on this site: see [`sealed_session::redirect`]);
/// * any other client gets `401` with `{"error":"no session"}`.
///
/// ```
/// use axum::{routing::get, Router};
/// use sealed_session_axum::{RequireSessionLayer, Session};
///
/// # #[derive(Clone, serde::Serialize, serde::Deserialize)] struct Profile;
/// async fn account(session: Session<Profile>) -> String {
///     format!("hello {}", session.user_id().unwrap_or_default())
/// }
///
/// let app: Router = Router::new()
///     .route("/account", get(account))
///     .route_layer(RequireSessionLayer::<Profile>::redirect_to("/login"));
/// // ... .layer(SessionLayer::<_, Profile>::new(verifier)?) around it all.
/// ```
pub struct RequireSessionLayer<T> {
    login: Arc<str>,
    prefix: Arc<str>,
    data: PhantomData<fn() -> T>,
}

impl<T> RequireSessionLayer<T> {
    /// Sends browsers without a session to `login` (a path such as `/login`
    /// or `/`), which gets `next` added to its query.
    pub fn redirect_to(login: impl Into<String>) -> Self {
        Self { login: Arc::from(login.into()), prefix: Arc::from(""), data: PhantomData }
    }

    /// For routes inside `Router::nest(prefix, …)`, which see their path
    /// without the prefix: `next` gets it back (`/admin` + `/account`).
    #[must_use]
    pub fn nested_under(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Arc::from(prefix.into().trim_end_matches('/'));
        self
    }
}

impl<T> Clone for RequireSessionLayer<T> {
    fn clone(&self) -> Self {
        Self { login: Arc::clone(&self.login), prefix: Arc::clone(&self.prefix), data: PhantomData }
    }
}

impl<T> std::fmt::Debug for RequireSessionLayer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequireSessionLayer")
            .field("login", &self.login)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl<I, T> Layer<I> for RequireSessionLayer<T> {
    type Service = RequireSession<I, T>;

    fn layer(&self, inner: I) -> Self::Service {
        RequireSession {
            inner,
            login: Arc::clone(&self.login),
            prefix: Arc::clone(&self.prefix),
            data: PhantomData,
        }
    }
}

/// The service [`RequireSessionLayer`] wraps around a route.
pub struct RequireSession<I, T> {
    inner: I,
    login: Arc<str>,
    prefix: Arc<str>,
    data: PhantomData<fn() -> T>,
}

impl<I: Clone, T> Clone for RequireSession<I, T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            login: Arc::clone(&self.login),
            prefix: Arc::clone(&self.prefix),
            data: PhantomData,
        }
    }
}

impl<I, T> std::fmt::Debug for RequireSession<I, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequireSession").field("login", &self.login).finish_non_exhaustive()
    }
}

impl<I, T, ReqBody, ResBody> Service<Request<ReqBody>> for RequireSession<I, T>
where
    I: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    I::Future: Send,
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    ReqBody: Send + 'static,
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
        let signed_in = match request.extensions().get::<Sessions<T>>() {
            Some(sessions) => sessions.signed_in().is_some(),
            None => return Box::pin(async { Ok(SessionError::MissingLayer.into_response()) }),
        };
        if !signed_in {
            let refusal = refuse(&request, &self.login, &self.prefix);
            return Box::pin(async { Ok(refusal) });
        }
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move { Ok(inner.call(request).await?.map(Body::new)) })
    }
}

/// The answer to a request without a signed-in session.
fn refuse<B>(request: &Request<B>, login: &str, prefix: &str) -> Response {
    let accept = request.headers().get_all(ACCEPT).iter().filter_map(|value| value.to_str().ok());
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    if let NoSessionAnswer::Redirect(url) = NoSessionAnswer::for_request(accept, path, login, prefix) {
        match HeaderValue::try_from(url) {
            Ok(location) => return (StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response(),
            Err(err) => tracing::error!(error = %err, "the login URL is not a header value"),
        }
    }
    let json = HeaderValue::from_static("application/json");
    (StatusCode::UNAUTHORIZED, [(CONTENT_TYPE, json)], NoSessionAnswer::JSON_BODY).into_response()
}
