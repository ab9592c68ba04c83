//! Helpers for an application's own tests: requests with a signed-in
//! session and a valid CSRF token, sent through `actix_web::test` and no
//! browser.
//!
//! Build the app's sealer with a [`ManualClock`](sealed_session::ManualClock)
//! to control time, sign in with [`TestSession::sign_in`] through the same
//! configuration the app's middleware uses, and add the session to any
//! request with [`Apply::apply`]:
//!
//! ```
//! use actix_web::{test, web, App};
//! use sealed_session::web::WebConfig;
//! use sealed_session::{Keyring, ManualClock, MemoryStore, Sealer};
//! use sealed_session_actix::testing::{Apply as _, TestSession};
//! use sealed_session_actix::{Session, SessionMiddleware};
//!
//! async fn whoami(session: Session<u32>) -> String {
//!     session.user_id().unwrap_or_default().to_owned()
//! }
//!
//! # actix_web::rt::System::new().block_on(async {
//! let clock = ManualClock::at_unix(1_800_000_000);
//! let sealer = Sealer::builder(Keyring::generate()?).clock(clock.clone());
//! let sessions = SessionMiddleware::new(WebConfig::builder(sealer, MemoryStore::with_clock(clock)).build()?);
//! let app = test::init_service(App::new().route("/whoami", web::post().to(whoami)).wrap(sessions.clone())).await;
//!
//! let alice = TestSession::sign_in(sessions.config(), "alice", 0u32).await?;
//! let request = alice.apply(test::TestRequest::post().uri("/whoami")).to_request();
//! let response = test::call_service(&app, request).await;
//! assert_eq!(response.status(), 200);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use actix_web::test::TestRequest;

pub use sealed_session::web::testing::TestSession;

/// Adds a [`TestSession`] to an actix-web test request: its cookie, its
/// CSRF token (in the configured header, `X-CSRF-Token` by default) and
/// `Sec-Fetch-Site: same-origin`, as a browser on the app's own page sends.
/// The headers are appended, as the axum adapter's `Apply` does: a `Cookie`
/// header the request has already is kept beside the session's. (With
/// actix-web's `cookies` feature, `TestRequest::cookie` replaces every
/// `Cookie` header, the session's too: add other cookies with
/// `append_header`.)
pub trait Apply {
    /// `request` with the session's headers.
    #[must_use]
    fn apply(&self, request: TestRequest) -> TestRequest;
}

impl Apply for TestSession {
    fn apply(&self, request: TestRequest) -> TestRequest {
        self.headers().into_iter().fold(request, |request, (name, value)| {
            request.append_header((name.to_owned(), value.to_owned()))
        })
    }
}
