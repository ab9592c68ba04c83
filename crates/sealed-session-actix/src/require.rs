//! Routes that require a signed-in session.

use std::future::{ready, Ready};
use std::rc::Rc;
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{ACCEPT, LOCATION};
use actix_web::{Error, HttpMessage as _, HttpResponse, ResponseError as _};
use sealed_session::redirect::{LoginPage, NoSessionAnswer, RouteRefusal};
use sealed_session::web::{HandleError, SessionHandle};

use crate::SessionError;
use futures_core::future::LocalBoxFuture;

/// An actix-web middleware for routes that need a signed-in session (one
/// with a user; an anonymous session does not count), the counterpart of
/// the axum crate's `RequireSessionLayer`. Wrap the resources or scopes
/// with it, inside a [`SessionMiddleware`](crate::SessionMiddleware) (in
/// actix-web, the middleware wrapped last runs first: wrap the app in
/// `SessionMiddleware`). Requests without one never reach the
/// handler:
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
/// use actix_web::{web, App};
/// use sealed_session_actix::{RequireSession, Session};
///
/// # #[derive(Clone, serde::Serialize, serde::Deserialize)] struct Profile;
/// async fn account(session: Session<Profile>) -> String {
///     format!("hello {}", session.user_id().unwrap_or_default())
/// }
///
/// let app = App::new().service(
///     web::resource("/account")
///         .wrap(RequireSession::redirect_to("/login"))
///         .route(web::get().to(account)),
/// );
/// // ... .wrap(SessionMiddleware::new(config)) around it all.
/// ```
#[derive(Clone)]
pub struct RequireSession {
    login: LoginPage,
    within: Option<Duration>,
}

impl RequireSession {
    /// Sends browsers without a session to `login` (a path such as `/login`
    /// or `/`), which gets `next` added to its query.
    ///
    /// # Panics
    /// If [`LoginPage::new`] refuses `login`, as the route is built.
    #[track_caller]
    pub fn redirect_to(login: impl Into<String>) -> Self {
        Self { login: LoginPage::of_route(login, "RequireSession::redirect_to"), within: None }
    }

    /// Lets through only sessions whose user proved a credential (logged
    /// in, or re-authenticated) less than `window` ago
    /// ([`SessionHandle::authenticated_within`]); the others go to the
    /// page given to [`redirect_to`](Self::redirect_to), which asks for the
    /// password again.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sealed_session_actix::RequireSession;
    ///
    /// let sudo = RequireSession::redirect_to("/reauth").authenticated_within(Duration::from_secs(600));
    /// # let _ = sudo;
    /// ```
    #[must_use]
    pub fn authenticated_within(mut self, window: Duration) -> Self {
        self.within = Some(window);
        self
    }
}

impl std::fmt::Debug for RequireSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequireSession").field("login", &self.login.as_str()).finish()
    }
}

impl<Svc, B> Transform<Svc, ServiceRequest> for RequireSession
where
    Svc: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = RequireSessionService<Svc>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: Svc) -> Self::Future {
        ready(Ok(RequireSessionService { service: Rc::new(service), route: self.clone() }))
    }
}

/// The service [`RequireSession`] wraps around a route.
pub struct RequireSessionService<Svc> {
    service: Rc<Svc>,
    route: RequireSession,
}

impl<Svc> std::fmt::Debug for RequireSessionService<Svc> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RequireSessionService").field(&self.route).finish()
    }
}

impl<Svc, B> Service<ServiceRequest> for RequireSessionService<Svc>
where
    Svc: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let admitted =
            request.extensions().get::<SessionHandle>().map(|h| h.required_route_refusal(self.route.within));
        let refusal = match admitted {
            Some(None) => None,
            None => Some(SessionError(HandleError::NoLayer).error_response()),
            Some(Some(refusal @ RouteRefusal::SessionUnreadable)) => Some(
                HttpResponse::ServiceUnavailable().content_type("application/json").body(refusal.json_body()),
            ),
            Some(Some(refusal)) => Some(refuse(&request, &self.route.login, refusal.json_body())),
        };
        match refusal {
            Some(response) => Box::pin(ready(Ok(request.into_response(response).map_into_right_body()))),
            None => {
                let service = Rc::clone(&self.service);
                Box::pin(async move { Ok(service.call(request).await?.map_into_left_body()) })
            }
        }
    }
}

/// The answer to a request without a signed-in (or recently
/// authenticated) session; `json` is an API client's.
fn refuse(request: &ServiceRequest, login: &LoginPage, json: &'static str) -> HttpResponse {
    let accept = request.headers().get_all(ACCEPT).filter_map(|value| value.to_str().ok());
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    match NoSessionAnswer::for_request(accept, path, login, "") {
        NoSessionAnswer::Redirect(url) => HttpResponse::SeeOther().insert_header((LOCATION, url)).finish(),
        _ => HttpResponse::Unauthorized().content_type("application/json").body(json),
    }
}
