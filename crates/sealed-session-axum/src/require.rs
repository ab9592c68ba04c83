//! Routes that require a signed-in session.

use std::future::{ready, Ready};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum_core::body::Body;
use axum_core::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::future::{Either, MapOk};
use futures_util::TryFutureExt as _;
use http::header::{ACCEPT, CONTENT_TYPE, LOCATION};
use http::{HeaderValue, Request, StatusCode};
use sealed_session::redirect::{LoginPage, NoSessionAnswer, RouteRefusal};
use sealed_session::web::{HandleError, SessionHandle};
use tower_layer::Layer;
use tower_service::Service;

use crate::SessionError;

/// A [`tower_layer::Layer`] for routes that need a signed-in session (one
/// with a user; an anonymous session does not count). Put it on the routes
/// with `route_layer`, inside a [`SessionLayer`](crate::SessionLayer).
/// Requests without one never reach the handler:
///
/// * a browser (a request whose `Accept` names `text/html`) is redirected
///   (`303`) to the login page, with the path it asked for as `next`
///   (only a path on this site: see [`sealed_session::redirect`]);
/// * any other client gets `401` with `{"error":"no session"}`;
/// * a session sealed under a key this server lacks yet (a keyring rollout
///   it lags behind in) gets `503` with
///   [`NoSessionAnswer::UNREADABLE_JSON_BODY`](sealed_session::redirect::NoSessionAnswer::UNREADABLE_JSON_BODY),
///   browser or not: the session lives on the servers that have the key.
///
/// With [`authenticated_within`](Self::authenticated_within), the route
/// also needs a recent authentication (GitHub's "sudo mode"): a session
/// whose user last proved a credential longer ago is sent to the given
/// page, a re-authentication form that calls
/// [`Sessions::reauthenticate`](sealed_session::web::Sessions::reauthenticate) and then
/// follows `next` (an API client gets `401` with
/// `{"error":"re-authentication required"}`).
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
///     .route_layer(RequireSessionLayer::redirect_to("/login"));
/// // ... .layer(SessionLayer::new(config)) around it all.
/// ```
#[derive(Clone, Debug)]
pub struct RequireSessionLayer {
    login: LoginPage,
    prefix: Arc<str>,
    within: Option<Duration>,
}

impl RequireSessionLayer {
    /// Sends browsers without a session to `login` (a path such as `/login`
    /// or `/`), which gets `next` added to its query.
    ///
    /// # Panics
    /// If `login` is not a [`LoginPage`]: the mistake shows when the
    /// route is built.
    #[track_caller]
    pub fn redirect_to(login: impl Into<String>) -> Self {
        let login = LoginPage::of_route(login, "RequireSessionLayer::redirect_to");
        Self { login, prefix: Arc::from(""), within: None }
    }

    /// Lets through only sessions whose user proved a credential (logged
    /// in, or re-authenticated) less than `window` ago
    /// ([`SessionHandle::authenticated_within`]); the others go to the
    /// page given to [`redirect_to`](Self::redirect_to), which asks for the
    /// password again.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sealed_session_axum::RequireSessionLayer;
    ///
    /// let sudo = RequireSessionLayer::redirect_to("/reauth").authenticated_within(Duration::from_secs(600));
    /// # let _ = sudo;
    /// ```
    #[must_use]
    pub fn authenticated_within(mut self, window: Duration) -> Self {
        self.within = Some(window);
        self
    }

    /// For routes inside `Router::nest(prefix, …)`, which see their path
    /// without the prefix: `next` gets it back (`/admin` + `/account`).
    #[must_use]
    pub fn nested_under(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Arc::from(prefix.into().trim_end_matches('/'));
        self
    }
}

impl<I> Layer<I> for RequireSessionLayer {
    type Service = RequireSession<I>;

    fn layer(&self, inner: I) -> Self::Service {
        RequireSession { inner, route: self.clone() }
    }
}

/// The service [`RequireSessionLayer`] wraps around a route.
#[derive(Clone)]
pub struct RequireSession<I> {
    inner: I,
    route: RequireSessionLayer,
}

impl<I> std::fmt::Debug for RequireSession<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RequireSession").field(&self.route).finish()
    }
}

/// The route's answer with axum's body.
type RouteAnswer<F, ResBody> = MapOk<F, fn(http::Response<ResBody>) -> Response>;

/// Any inner service of the `http` crate's types; the answer's body is
/// axum's. Nothing is boxed: a refusal is ready at once, and the route's
/// own future runs as it is.
impl<I, B, ResBody> Service<Request<B>> for RequireSession<I>
where
    I: Service<Request<B>, Response = http::Response<ResBody>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<axum_core::BoxError>,
{
    type Response = Response;
    type Error = I::Error;
    type Future = Either<Ready<Result<Response, I::Error>>, RouteAnswer<I::Future, ResBody>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let handle = request.extensions().get::<SessionHandle>();
        let answer = match handle.map(|handle| handle.required_route_refusal(self.route.within)) {
            None => SessionError(HandleError::no_layer()).into_response(),
            Some(Some(refusal @ RouteRefusal::SessionUnreadable)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
                refusal.json_body(),
            )
                .into_response(),
            Some(Some(refusal)) => {
                refuse(&request, &self.route.login, &self.route.prefix, refusal.json_body())
            }
            Some(None) => {
                let to_axum: fn(http::Response<ResBody>) -> Response = |response| response.map(Body::new);
                return Either::Right(self.inner.call(request).map_ok(to_axum));
            }
        };
        Either::Left(ready(Ok(answer)))
    }
}

/// The answer to a request without a signed-in (or recently
/// authenticated) session; `json` is an API client's.
fn refuse<B>(request: &Request<B>, login: &LoginPage, prefix: &str, json: &'static str) -> Response {
    let accept = request.headers().get_all(ACCEPT).iter().filter_map(|value| value.to_str().ok());
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    if let NoSessionAnswer::Redirect(url) = NoSessionAnswer::for_request(accept, path, login, prefix) {
        match HeaderValue::try_from(url) {
            Ok(location) => return (StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response(),
            Err(err) => tracing::error!(error = %err, "the login URL is not a header value"),
        }
    }
    (StatusCode::UNAUTHORIZED, [(CONTENT_TYPE, HeaderValue::from_static("application/json"))], json)
        .into_response()
}
