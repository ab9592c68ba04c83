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

use crate::logic::{self, Reply};
use crate::page::STYLE;
use crate::{Profile, SECURITY_HEADERS, STYLE_CACHE_CONTROL};

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
/// security headers.
pub fn app<S: RevocationStore + 'static>(
    sessions: SessionMiddleware<S>,
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
    App::new()
        // axum's default body limit, so that both frameworks take the same
        // bodies.
        .app_data(web::PayloadConfig::new(AXUM_BODY_LIMIT))
        .service(
            web::resource("/account")
                .wrap(RequireSession::redirect_to("/"))
                .route(web::get().to(account))
                .route(web::head().to(account)),
        )
        // axum answers HEAD on every GET route; actix-web only where asked.
        .service(web::resource("/").route(web::get().to(index)).route(web::head().to(index)))
        .service(
            web::resource("/api/session")
                .route(web::get().to(api_session))
                .route(web::head().to(api_session)),
        )
        .service(web::resource("/style.css").route(web::get().to(style)).route(web::head().to(style)))
        .route("/login", web::post().to(login))
        .route("/logout", web::post().to(logout))
        .route("/logout-everywhere", web::post().to(logout_everywhere))
        .route("/profile", web::post().to(profile))
        .route("/cart", web::post().to(add_to_cart))
        .route("/webhook", web::post().to(webhook))
        .wrap(sessions)
        .wrap(headers)
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
        Ok(Reply::Text(text)) => HttpResponse::Ok().content_type("text/plain; charset=utf-8").body(text),
        Ok(Reply::Refused(status, text)) => {
            HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST))
                .content_type("text/plain; charset=utf-8")
                .body(text)
        }
        Err(err) => SessionError(err).error_response(),
    }
}

fn content_type(request: &HttpRequest) -> Option<&str> {
    request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok())
}

async fn index(sessions: Sessions<Profile>, request: HttpRequest) -> HttpResponse {
    let query = Some(request.query_string()).filter(|q| !q.is_empty());
    respond(logic::index(&sessions, query))
}

async fn account(sessions: Sessions<Profile>) -> HttpResponse {
    respond(logic::account(&sessions))
}

async fn login(sessions: Sessions<Profile>, request: HttpRequest, body: Bytes) -> HttpResponse {
    respond(logic::login(&sessions, content_type(&request), &body).await)
}

async fn logout(sessions: Sessions<Profile>) -> HttpResponse {
    respond(logic::logout(&sessions).await)
}

async fn logout_everywhere(sessions: Sessions<Profile>) -> HttpResponse {
    respond(logic::logout_everywhere(&sessions).await)
}

async fn profile(sessions: Sessions<Profile>, request: HttpRequest, body: Bytes) -> HttpResponse {
    respond(logic::profile(&sessions, content_type(&request), &body))
}

async fn add_to_cart(sessions: Sessions<Profile>, request: HttpRequest, body: Bytes) -> HttpResponse {
    respond(logic::add_to_cart(&sessions, content_type(&request), &body).await)
}

async fn webhook(body: Bytes) -> HttpResponse {
    respond(Ok(logic::webhook(&body)))
}

async fn api_session(sessions: Sessions<Profile>) -> HttpResponse {
    respond(logic::api_session(&sessions))
}

async fn style() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, STYLE_CACHE_CONTROL))
        .body(STYLE)
}
