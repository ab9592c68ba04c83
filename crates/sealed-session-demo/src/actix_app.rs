//! The demo on actix-web: the routes of the crate's `logic` module behind
//! `sealed-session-actix`'s middleware, answering exactly as the axum app.

use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::DefaultHeaders;
use actix_web::web::{self, Bytes};
use actix_web::{App, Error, HttpRequest, HttpResponse, ResponseError as _};
use sealed_session::web::{HandleError, WebConfig};
use sealed_session::RevocationStore;
use sealed_session_actix::{RequireSession, SessionError, SessionMiddleware, Sessions};

use crate::logic::{self, Guard, Input, Method, Reply, Route};
use crate::page::STYLE;
use crate::{Profile, METRICS_CONTENT_TYPE, SECURITY_HEADERS, STYLE_CACHE_CONTROL};
use std::time::Duration;

/// axum's default limit on request bodies: 2 MiB.
const AXUM_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// The session middleware for `config` (the demo's is
/// [`config`](crate::config)): build it once, and give a clone to each
/// worker's [`app`].
#[must_use]
pub fn middleware<S: RevocationStore + 'static>(config: WebConfig<S>) -> SessionMiddleware<S> {
    SessionMiddleware::new(config)
}

/// The app for one actix-web worker: the routes behind `sessions`, plus
/// security headers; `/settings` is reached only within `sudo_window` of a
/// sign-in or password check ([`SUDO_WINDOW`](crate::SUDO_WINDOW) in the
/// demo).
pub fn app<S: RevocationStore + 'static>(
    sessions: SessionMiddleware<S>,
    sudo_window: Duration,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl actix_web::body::MessageBody>,
        Error = Error,
        InitError = (),
    >,
> {
    let mut headers = DefaultHeaders::new();
    for (name, value) in SECURITY_HEADERS {
        headers = headers.add((HeaderName::from_static(name), HeaderValue::from_static(value)));
    }
    // Pages and JSON carry the session's details and CSRF token; the
    // session middleware adds it only where it sets a cookie.
    headers = headers.add((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    // axum's default body limit, so that both frameworks take the same
    // bodies.
    let mut app = App::new().app_data(web::PayloadConfig::new(AXUM_BODY_LIMIT));
    let handler = |route: Route| {
        move |sessions: Sessions<Profile>, request: HttpRequest, body: Bytes| async move {
            let query = Some(request.query_string()).filter(|q| !q.is_empty());
            let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
            respond(logic::answer(route, &sessions, Input { query, content_type, body: &body }).await)
        }
    };
    for (index, (route, _, path)) in logic::ROUTES.into_iter().enumerate() {
        // One resource per path, with every method it has: actix-web
        // answers `405` from the first resource whose path matches.
        if logic::ROUTES.iter().take(index).any(|(_, _, earlier)| *earlier == path) {
            continue;
        }
        let mut resource = web::resource(path);
        for (route, method, _) in logic::ROUTES.into_iter().filter(|(_, _, p)| *p == path) {
            resource = match method {
                // axum answers HEAD on every GET route; actix-web only where asked.
                Method::Get => {
                    resource.route(web::get().to(handler(route))).route(web::head().to(handler(route)))
                }
                Method::Post => resource.route(web::post().to(handler(route))),
            };
        }
        // Every route at this path shares the guard of the first.
        app = match route.guard() {
            Guard::SignedIn => app.service(resource.wrap(RequireSession::redirect_to("/"))),
            Guard::RecentLogin => app.service(
                resource.wrap(RequireSession::redirect_to("/reauth").authenticated_within(sudo_window)),
            ),
            Guard::Open => app.service(resource),
        };
    }
    app.wrap(sessions).wrap(headers)
}

/// A [`Reply`] or a session error as an actix-web response, byte for byte
/// what the axum app sends.
fn respond(reply: Result<Reply, HandleError>) -> HttpResponse {
    match reply {
        Ok(Reply::Page(html)) => HttpResponse::Ok().content_type("text/html; charset=utf-8").body(html),
        Ok(Reply::Redirect(location)) => {
            HttpResponse::SeeOther().insert_header((header::LOCATION, location)).finish()
        }
        Ok(Reply::Json(json)) => HttpResponse::Ok().json(json),
        Ok(Reply::Value(json)) => HttpResponse::Ok().json(json),
        Ok(Reply::Text(text)) => HttpResponse::Ok().content_type("text/plain; charset=utf-8").body(text),
        Ok(Reply::Refused(status, text)) => {
            HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST))
                .content_type("text/plain; charset=utf-8")
                .body(text)
        }
        Ok(Reply::Stylesheet) => HttpResponse::Ok()
            .content_type("text/css; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, STYLE_CACHE_CONTROL))
            .body(STYLE),
        Ok(Reply::Metrics(text)) => HttpResponse::Ok().content_type(METRICS_CONTENT_TYPE).body(text),
        Err(err) => SessionError(err).error_response(),
    }
}
