//! sealed-session in actix-web, through `sealed-session-actix`: the same
//! middleware and extractors as the axum layer's (cookies, revocation,
//! CSRF with a login-form pre-session, re-issue, flash messages).
//!
//! ```text
//! cargo run -p sealed-session-examples --example actix
//! curl -i -c jar -b jar http://127.0.0.1:3001/csrf                  # a pre-session and its token
//! curl -i -c jar -b jar -X POST -H 'Sec-Fetch-Site: same-origin' -H 'X-CSRF-Token: …' http://127.0.0.1:3001/login
//! curl -i -c jar -b jar http://127.0.0.1:3001/csrf                  # the session's token
//! curl -i -c jar -b jar -X POST -H 'Sec-Fetch-Site: same-origin' -H 'X-CSRF-Token: …' http://127.0.0.1:3001/visits
//! curl -i -b jar http://127.0.0.1:3001/visits
//! curl -i -c jar -b jar -X POST -H 'Sec-Fetch-Site: same-origin' -H 'X-CSRF-Token: …' http://127.0.0.1:3001/logout
//! ```
//!
//! (`__Host-` cookies need HTTPS in a browser; curl keeps them on plain
//! http.)
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use actix_web::{web, App, HttpServer};
use sealed_session::web::WebConfig;
use sealed_session::{Keyring, MemoryStore, Sealer};
use sealed_session_actix::{Session, SessionError, SessionMiddleware, Sessions};

/// The CSRF token of the session, or of a pre-session for the login form.
async fn csrf(sessions: Sessions<u32>) -> Result<String, SessionError> {
    Ok(sessions.csrf_token()?)
}

async fn login(sessions: Sessions<u32>) -> Result<&'static str, SessionError> {
    // A real app checks a password first.
    sessions.login("alice", 0).await?;
    Ok("signed in\n")
}

/// Reading changes nothing: safe methods are never CSRF-checked, so they
/// must not change anything. Without a session: `401`.
async fn visits(session: Session<u32>) -> String {
    format!("{} visits\n", session.data())
}

/// A change, so a `POST` (CSRF-checked).
async fn visit(sessions: Sessions<u32>) -> Result<String, SessionError> {
    Ok(sessions.update(|count| {
        *count += 1;
        format!("visit {count}\n")
    })?)
}

/// Ends the session on every server (a copy of its cookie no longer
/// opens), not only in this browser.
async fn logout(sessions: Sessions<u32>) -> Result<&'static str, SessionError> {
    sessions.logout().await?;
    Ok("signed out\n")
}

/// The routes, for `main` and the example's test.
pub(crate) fn routes(app: &mut web::ServiceConfig) {
    app.route("/csrf", web::get().to(csrf))
        .route("/login", web::post().to(login))
        .route("/visits", web::get().to(visits))
        .route("/visits", web::post().to(visit))
        .route("/logout", web::post().to(logout));
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A fresh keyring per start; a real app loads its keyring from a file
    // (`Keyring::load`) and uses a durable store.
    let config = WebConfig::builder(Sealer::builder(Keyring::generate()?), MemoryStore::new()).build()?;
    let sessions = SessionMiddleware::new(config);
    println!("listening on http://127.0.0.1:3001");
    HttpServer::new(move || App::new().configure(routes).wrap(sessions.clone()))
        .bind(("127.0.0.1", 3001))?
        .run()
        .await?;
    Ok(())
}
