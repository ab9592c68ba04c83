//! sealed-session with plain hyper and no framework: the core's web driver
//! (`sealed_session::web`, whose feature `http` reads hyper's request parts
//! and writes its response headers), a body read and a few routes. It
//! keeps the rules the axum and actix adapters keep: `503` when the store
//! cannot be reached, CSRF on unsafe requests with a pre-session for the
//! login form, re-issue, cache control, `HEAD` answered as `GET`, and the
//! body handed to the route whether the token came in it or in a header.
//!
//! ```text
//! cargo run -p sealed-session-examples --example hyper
//! curl -i -c jar -b jar http://127.0.0.1:3002/login-form        # a pre-session and its CSRF token
//! curl -i -c jar -b jar -X POST -H 'Sec-Fetch-Site: same-origin' -H 'X-CSRF-Token: …' http://127.0.0.1:3002/login
//! curl -i -b jar http://127.0.0.1:3002/whoami
//! curl -i -b jar http://127.0.0.1:3002/settings                 # only within 10 minutes of signing in
//! ```
//!
//! (`__Host-` cookies need HTTPS in a browser; curl keeps them on plain
//! http.)
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use sealed_session::redirect::RouteRefusal;
use sealed_session::web::{Begin, FinishOnDrop, HandleError, SessionHandle, WebConfig};
use sealed_session::{Keyring, MemoryStore, RevocationStore, Sealer};

/// A plain-text answer that no browser takes for anything else (it echoes
/// what the client sent, a user name).
fn text(status: StatusCode, body: impl Into<String>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.into())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(hyper::header::X_CONTENT_TYPE_OPTIONS, hyper::header::HeaderValue::from_static("nosniff"));
    response
}

fn refuse(refusal: &sealed_session::web::Refusal) -> Response<Full<Bytes>> {
    text(StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::FORBIDDEN), refusal.body())
}

/// One request: the driver, then the route, then the cookies. (Any body
/// type, so that `tests/hyper.rs` can drive it without a socket.)
pub(crate) async fn handle<S, B>(config: Arc<WebConfig<S>>, request: Request<B>) -> Response<Full<Bytes>>
where
    S: RevocationStore + 'static,
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let (parts, body) = request.into_parts();
    // The form body, when the driver asked for it (its CSRF token is in
    // it): read once, checked, and handed to the route whole. (A route that
    // needs the body of another request reads it itself.)
    let (session, form) = match config.begin(&parts).await {
        // The token came in a header (or none was needed): a route that
        // takes a form still gets its body, up to the driver's limit, so
        // that a form is refused or not whatever carries its token.
        Begin::Ready(session) if parts.method == Method::POST => {
            match Limited::new(body, config.form_limit()).collect().await {
                Ok(body) => (session, Some(body.to_bytes())),
                Err(err) if err.is::<http_body_util::LengthLimitError>() => {
                    return text(StatusCode::PAYLOAD_TOO_LARGE, "body too large")
                }
                Err(_) => return text(StatusCode::BAD_REQUEST, "unreadable body"),
            }
        }
        Begin::Ready(session) => (session, None),
        Begin::ReadForm(form) => match Limited::new(body, form.limit()).collect().await {
            Ok(body) => {
                let body = body.to_bytes();
                match form.check(&body) {
                    Ok(session) => (session, Some(body)),
                    Err(refusal) => return refuse(&refusal),
                }
            }
            Err(err) if err.is::<http_body_util::LengthLimitError>() => return refuse(&form.too_large()),
            Err(err) => return refuse(&form.unreadable(&err)),
        },
        Begin::Refuse(refusal) => return refuse(&refusal),
        Begin::Answer(answer) => return answer.into_http().map(Full::from),
    };
    // Finished if this request is dropped before its answer (the client
    // hung up), so that nothing the route started changes it unseen.
    let session = FinishOnDrop::new(session);
    // `HEAD` runs the `GET` route; hyper sends no body with its answer.
    let method = if parts.method == Method::HEAD { &Method::GET } else { &parts.method };
    let mut response = route(method, parts.uri.path(), &session, form.as_deref()).await;
    session.finish().write_to(response.headers_mut());
    response
}

/// How recent a sign-in `/settings` needs.
const SUDO_WINDOW: std::time::Duration = std::time::Duration::from_secs(600);

/// The login form's fields (the CSRF token's among them, checked already).
#[derive(serde::Deserialize)]
struct LoginForm {
    user: String,
}

async fn route(
    method: &Method,
    path: &str,
    session: &SessionHandle,
    form: Option<&[u8]>,
) -> Response<Full<Bytes>> {
    let sessions = session.typed::<u32>();
    let answer = match (method, path) {
        // The login form's page: its CSRF token is bound to a pre-session.
        (&Method::GET, "/login-form") => session.csrf_token().map(|token| format!("csrf_token={token}\n")),
        (&Method::POST, "/login") => {
            // A real app checks the password here; the CSRF token of the
            // pre-session was checked before this route ran. A script that
            // sent the token in its header and no body signs in as alice.
            let user =
                match form.filter(|form| !form.is_empty()).map(serde_urlencoded::from_bytes::<LoginForm>) {
                    Some(Ok(form)) => form.user,
                    Some(Err(_)) => return text(StatusCode::BAD_REQUEST, "the form needs a user"),
                    None => "alice".to_owned(),
                };
            sessions.login(&user, 0).await.map(|_| "signed in\n".to_owned())
        }
        (&Method::GET, "/whoami") => match sessions.current() {
            Some(current) => Ok(format!("{}\n", current.user_id().unwrap_or("anonymous"))),
            // Sealed under a key this server lacks yet: it lives elsewhere.
            None if session.session_unreadable() => Err(HandleError::UnreadableSession),
            None => return text(StatusCode::UNAUTHORIZED, "no session"),
        },
        (&Method::POST, "/logout") => session.logout().await.map(|()| "logged out\n".to_owned()),
        // Sudo mode: the decision the axum and actix guards take, asked of
        // the handle directly. A real app sends the user to a password
        // prompt, then calls `Sessions::reauthenticate`.
        (&Method::GET, "/settings") => match session.required_route_refusal(Some(SUDO_WINDOW)) {
            None => Ok("settings\n".to_owned()),
            Some(RouteRefusal::Reauthenticate) => {
                return text(StatusCode::UNAUTHORIZED, "re-authentication required")
            }
            Some(RouteRefusal::SessionUnreadable) => {
                return text(StatusCode::SERVICE_UNAVAILABLE, "session unavailable on this server, try again")
            }
            Some(_) => return text(StatusCode::UNAUTHORIZED, "no session"),
        },
        _ => return text(StatusCode::NOT_FOUND, "not found"),
    };
    match answer {
        Ok(body) => text(StatusCode::OK, body),
        Err(err) => {
            text(StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), err.body())
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A fresh keyring per start: see the actix example on real deployments.
    let config =
        Arc::new(WebConfig::builder(Sealer::builder(Keyring::generate()?), MemoryStore::new()).build()?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3002").await?;
    println!("listening on http://127.0.0.1:3002");
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of file descriptors, say: the server carries on (a real
            // one also caps its connections, as the demo does).
            Err(err) => {
                eprintln!("cannot accept a connection: {err}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let config = Arc::clone(&config);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let config = Arc::clone(&config);
                async move { Ok::<_, Infallible>(handle(config, request).await) }
            });
            // Without a timer hyper never times out a client that sends no
            // request: idle connections would pile up until `accept` fails.
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            if let Err(err) = connection.await {
                eprintln!("connection error: {err}");
            }
        });
    }
}
