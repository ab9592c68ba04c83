//! sealed-session with plain hyper and no framework: one function that
//! opens the cookie, checks revocation and CSRF, and answers.
//!
//! ```text
//! cargo run -p sealed-session-examples --example hyper
//! curl -i -X POST -H 'Sec-Fetch-Site: same-origin' http://127.0.0.1:3002/login
//! curl -i -H 'Cookie: __Host-session=…' http://127.0.0.1:3002/whoami
//! ```

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, COOKIE, SET_COOKIE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sealed_session::{csrf, CookieSpec, Keyring, MemoryStore, Sealer, Verified, Verifier};

struct App {
    verifier: Verifier<MemoryStore>,
    cookie: CookieSpec,
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.into())));
    *response.status_mut() = status;
    response
}

fn with_cookie(mut response: Response<Full<Bytes>>, cookie: String) -> Response<Full<Bytes>> {
    match HeaderValue::try_from(cookie) {
        Ok(value) => {
            response.headers_mut().insert(SET_COOKIE, value);
            response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    }
}

impl App {
    /// The first of the request's session cookies that opens and passes the
    /// revocation check; the reason for each refusal goes to the log only.
    async fn session(&self, request: &Request<Incoming>) -> Option<Verified<()>> {
        for value in self
            .cookie
            .values_in(request.headers().get_all(COOKIE).iter().map(hyper::header::HeaderValue::as_bytes))
        {
            match self.verifier.open::<()>(value).await {
                Ok(opened) => return Some(opened),
                Err(err) => eprintln!("session cookie refused: {err}"),
            }
        }
        None
    }

    async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let session = self.session(&request).await;
        let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
        let expected = format!("http://{}", header("host").unwrap_or_default());
        if let Err(err) = csrf::check_origin(
            request.method().as_str(),
            header("sec-fetch-site"),
            header("origin"),
            &expected,
        ) {
            eprintln!("refused: {err}");
            return text(StatusCode::FORBIDDEN, "CSRF check failed");
        }
        match (request.method(), request.uri().path(), session) {
            (&Method::POST, "/login", _) => {
                // A real app checks the password (and a pre-session CSRF
                // token) here.
                let session = match self.verifier.login("alice", ()).await {
                    Ok(session) => session,
                    Err(err) => return text(StatusCode::SERVICE_UNAVAILABLE, format!("try again ({err})")),
                };
                let token = self.verifier.sealer().csrf_token(&session);
                match self.verifier.sealer().seal_cookie(&session, &self.cookie) {
                    Ok(cookie) => {
                        with_cookie(text(StatusCode::OK, format!("signed in; CSRF token: {token}\n")), cookie)
                    }
                    Err(err) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot seal: {err}")),
                }
            }
            (&Method::GET, "/whoami", Some(opened)) => {
                text(StatusCode::OK, format!("{}\n", opened.session().user_id().unwrap_or("anonymous")))
            }
            (&Method::POST, "/logout", Some(opened)) => {
                let token = header("x-csrf-token").unwrap_or_default();
                if self.verifier.sealer().verify_csrf(opened.session(), token).is_err() {
                    return text(StatusCode::FORBIDDEN, "CSRF check failed");
                }
                match self.verifier.logout(opened.session()).await {
                    Ok(()) => with_cookie(text(StatusCode::OK, "logged out\n"), self.cookie.removal()),
                    Err(err) => text(StatusCode::SERVICE_UNAVAILABLE, format!("try again ({err})")),
                }
            }
            (_, "/whoami" | "/logout", None) => text(StatusCode::UNAUTHORIZED, "no session"),
            _ => text(StatusCode::NOT_FOUND, "not found"),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A fresh keyring per start: see the actix example on real deployments.
    let sealer = Sealer::builder(Keyring::generate()?).build()?;
    let app =
        Arc::new(App { verifier: Verifier::new(sealer, MemoryStore::new()), cookie: CookieSpec::default() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3002").await?;
    println!("listening on http://127.0.0.1:3002");
    loop {
        let (stream, _) = listener.accept().await?;
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let app = Arc::clone(&app);
                async move { Ok::<_, Infallible>(app.handle(request).await) }
            });
            if let Err(err) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                eprintln!("connection error: {err}");
            }
        });
    }
}
