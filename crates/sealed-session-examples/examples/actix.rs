//! sealed-session in actix-web, through the core API: read the cookie,
//! open and check it, enforce CSRF, seal changes into `Set-Cookie`.
//!
//! ```text
//! cargo run -p sealed-session-examples --example actix
//! curl -i -X POST -H 'Sec-Fetch-Site: same-origin' 'http://127.0.0.1:3001/login?user=alice'
//! curl -i -H 'Cookie: __Host-session=…' http://127.0.0.1:3001/visits
//! ```
//!
//! The `sealed-session-axum` layer does all of this (and the login-form
//! pre-session) for tower-based frameworks; here it is by hand.

use actix_web::http::header::{self, HeaderMap};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use sealed_session::csrf;
use sealed_session::{CookieSpec, Keyring, MemoryStore, Sealer, Session, Verified, Verifier};
use serde::{Deserialize, Serialize};

/// What this app keeps in a session.
#[derive(Clone, Default, Serialize, Deserialize)]
struct Visits {
    count: u32,
}

struct Sessions {
    verifier: Verifier<MemoryStore>,
    cookie: CookieSpec,
}

impl Sessions {
    /// The request's session: the first of its cookies that opens and
    /// passes the revocation check. Every failure is "no session" to the
    /// client; the reason goes to the log.
    async fn open(&self, headers: &HeaderMap) -> Option<Verified<Visits>> {
        for value in self.cookie.values_in(headers.get_all(header::COOKIE).map(header::HeaderValue::as_bytes))
        {
            match self.verifier.open::<Visits>(value).await {
                Ok(opened) => return Some(opened),
                Err(err) => eprintln!("session cookie refused: {err}"),
            }
        }
        None
    }

    /// A response carrying `session` as its new cookie.
    fn respond(&self, session: &Session<Visits>, body: String) -> HttpResponse {
        match self.verifier.sealer().seal_cookie(session, &self.cookie) {
            Ok(cookie) => HttpResponse::Ok()
                .insert_header((header::SET_COOKIE, cookie))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .body(body),
            Err(err) => {
                eprintln!("cannot seal the session: {err}");
                HttpResponse::InternalServerError().body("internal error")
            }
        }
    }
}

/// Unsafe methods must not come from another site; a request that has a
/// session must also carry its CSRF token in `X-CSRF-Token`.
fn check_csrf(
    request: &HttpRequest,
    sessions: &Sessions,
    session: Option<&Verified<Visits>>,
) -> Result<(), String> {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    let expected = format!("{}://{}", request.connection_info().scheme(), request.connection_info().host());
    csrf::check_origin(request.method().as_str(), header("sec-fetch-site"), header("origin"), &expected)
        .map_err(|err| err.to_string())?;
    if let Some(session) = session {
        let token = header("x-csrf-token").unwrap_or_default();
        sessions.verifier.sealer().verify_csrf(session.session(), token).map_err(|err| err.to_string())?;
    }
    Ok(())
}

#[derive(Deserialize)]
struct Login {
    user: String,
}

/// Signs in (a real app checks a password first): always a new session ID,
/// bound to the user's current revocation epoch.
async fn login(
    request: HttpRequest,
    query: web::Query<Login>,
    sessions: web::Data<Sessions>,
) -> HttpResponse {
    let current = sessions.open(request.headers()).await;
    if let Err(reason) = check_csrf(&request, &sessions, current.as_ref()) {
        eprintln!("CSRF check refused the request: {reason}");
        return HttpResponse::Forbidden().body("CSRF check failed");
    }
    if let Some(previous) = current {
        // The session this browser had before login dies on every server.
        if let Err(err) = sessions.verifier.logout(previous.session()).await {
            eprintln!("cannot revoke the previous session: {err}");
            return HttpResponse::ServiceUnavailable().body("try again");
        }
    }
    match sessions.verifier.login(&query.user, Visits::default()).await {
        Ok(session) => {
            let token = sessions.verifier.sealer().csrf_token(&session);
            sessions.respond(&session, format!("signed in; CSRF token: {token}\n"))
        }
        Err(err) => {
            eprintln!("cannot start a session: {err}");
            HttpResponse::ServiceUnavailable().body("try again")
        }
    }
}

/// Counts visits in the session: a change, so the cookie is sealed again.
async fn visits(request: HttpRequest, sessions: web::Data<Sessions>) -> HttpResponse {
    let Some(opened) = sessions.open(request.headers()).await else {
        return HttpResponse::Unauthorized().body("no session");
    };
    let mut session = opened.into_session();
    session.data_mut().count += 1;
    let count = session.data().count;
    sessions.respond(&session, format!("visit {count}\n"))
}

/// Logs out: revoked on every server, cookie removed.
async fn logout(request: HttpRequest, sessions: web::Data<Sessions>) -> HttpResponse {
    let Some(opened) = sessions.open(request.headers()).await else {
        return HttpResponse::Unauthorized().body("no session");
    };
    if let Err(reason) = check_csrf(&request, &sessions, Some(&opened)) {
        eprintln!("CSRF check refused the request: {reason}");
        return HttpResponse::Forbidden().body("CSRF check failed");
    }
    match sessions.verifier.logout(opened.session()).await {
        Ok(()) => HttpResponse::Ok()
            .insert_header((header::SET_COOKIE, sessions.cookie.removal()))
            .body("logged out\n"),
        Err(err) => {
            eprintln!("cannot revoke the session: {err}");
            HttpResponse::ServiceUnavailable().body("try again")
        }
    }
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A fresh keyring per start, so no earlier cookie opens and the memory
    // store may start empty. A real app loads its keyring from a file
    // (`Keyring::load`) and uses a durable store.
    let sealer = Sealer::builder(Keyring::generate()?).build()?;
    let sessions = web::Data::new(Sessions {
        verifier: Verifier::new(sealer, MemoryStore::new()),
        cookie: CookieSpec::default(),
    });
    println!("listening on http://127.0.0.1:3001");
    HttpServer::new(move || {
        App::new()
            .app_data(sessions.clone())
            .route("/login", web::post().to(login))
            .route("/visits", web::get().to(visits))
            .route("/logout", web::post().to(logout))
    })
    .bind(("127.0.0.1", 3001))?
    .run()
    .await?;
    Ok(())
}
