//! The demo on axum: the routes of the crate's `logic` module behind
//! `sealed-session-axum`'s layer.

use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use sealed_session::web::{HandleError, WebConfig};
use sealed_session::RevocationStore;
use sealed_session_axum::{RequireSessionLayer, SessionError, SessionLayer, Sessions};

use crate::logic::{self, Guard, Input, Method, Reply};
use crate::page::STYLE;
use crate::{Profile, METRICS_CONTENT_TYPE, SECURITY_HEADERS, STYLE_CACHE_CONTROL};
use std::time::Duration;

/// The app: its routes behind the session layer for `config` (the demo's
/// is [`config`](crate::config)), plus security headers; `/settings` is
/// reached only within `sudo_window` of a sign-in or password check
/// ([`SUDO_WINDOW`](crate::SUDO_WINDOW) in the demo).
pub fn app<S: RevocationStore + 'static>(config: WebConfig<S>, sudo_window: Duration) -> Router {
    routes(sudo_window)
        .layer(SessionLayer::new(config))
        .layer(axum::middleware::map_response(security_headers))
}

fn routes(sudo_window: Duration) -> Router {
    let (mut open, mut guarded, mut sudo) = (Router::new(), Router::new(), Router::new());
    for (route, method, path) in logic::ROUTES {
        let handler = move |sessions: Sessions<Profile>,
                            RawQuery(query): RawQuery,
                            headers: HeaderMap,
                            body: Bytes| async move {
            let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
            let input = Input { query: query.as_deref(), content_type, body: &body };
            respond(logic::answer(route, &sessions, input).await)
        };
        let handler = match method {
            Method::Get => get(handler),
            Method::Post => post(handler),
        };
        match route.guard() {
            Guard::SignedIn => guarded = guarded.route(path, handler),
            Guard::RecentLogin => sudo = sudo.route(path, handler),
            Guard::Open => open = open.route(path, handler),
        }
    }
    let reauth = RequireSessionLayer::redirect_to("/reauth").authenticated_within(sudo_window);
    open.merge(guarded.route_layer(RequireSessionLayer::redirect_to("/"))).merge(sudo.route_layer(reauth))
}

/// Adds the demo's security headers ([`SECURITY_HEADERS`], and
/// `Cache-Control: no-store` unless set) to a response; the load
/// benchmark's baseline route gets them too.
pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    // Pages and JSON carry the session's details and CSRF token.
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

/// A [`Reply`] or a session error as an axum response.
fn respond(reply: Result<Reply, HandleError>) -> Response {
    match reply {
        Ok(Reply::Page(html)) => Html(html).into_response(),
        Ok(Reply::Redirect(location)) => Redirect::to(&location).into_response(),
        Ok(Reply::Json(json)) => Json(json).into_response(),
        Ok(Reply::Value(json)) => Json(json).into_response(),
        Ok(Reply::Text(text)) => text.into_response(),
        Ok(Reply::Refused(status, text)) => {
            (StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), text).into_response()
        }
        Ok(Reply::Stylesheet) => {
            let headers = [
                (header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8")),
                (header::CACHE_CONTROL, HeaderValue::from_static(STYLE_CACHE_CONTROL)),
            ];
            (headers, STYLE).into_response()
        }
        Ok(Reply::Metrics(text)) => {
            ([(header::CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE))], text).into_response()
        }
        Err(err) => SessionError(err).into_response(),
    }
}
