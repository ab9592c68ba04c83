//! Helpers for an application's own tests: requests with a signed-in
//! session and a valid CSRF token, sent with `tower::ServiceExt::oneshot`
//! and no browser.
//!
//! Build the app's sealer with a [`ManualClock`](sealed_session::ManualClock)
//! to control time, sign in with [`TestSession::sign_in`] through the same
//! configuration the app's layer uses, and add the session to any request
//! with [`Apply::apply`]:
//!
//! ```
//! use axum::{routing::post, Router};
//! use sealed_session::web::WebConfig;
//! use sealed_session::{Keyring, ManualClock, MemoryStore, Sealer};
//! use sealed_session_axum::testing::{Apply as _, TestSession};
//! use sealed_session_axum::{Session, SessionLayer};
//! use tower::ServiceExt as _;
//!
//! async fn whoami(session: Session<u32>) -> String {
//!     session.user_id().unwrap_or_default().to_owned()
//! }
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let clock = ManualClock::at_unix(1_800_000_000);
//! let sealer = Sealer::builder(Keyring::generate()?).clock(clock.clone());
//! let layer = SessionLayer::new(WebConfig::builder(sealer, MemoryStore::with_clock(clock)).build()?);
//! let app = Router::new().route("/whoami", post(whoami)).layer(layer.clone());
//!
//! let alice = TestSession::sign_in(layer.config(), "alice", 0u32).await?;
//! let request = alice.apply(http::Request::post("/whoami")).body(axum::body::Body::empty())?;
//! let response = app.oneshot(request).await?;
//! assert_eq!(response.status(), http::StatusCode::OK);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use sealed_session::web::testing::TestSession;

/// Adds a [`TestSession`] to an `http` request: its cookie, its CSRF token
/// (in the configured header, `X-CSRF-Token` by default) and
/// `Sec-Fetch-Site: same-origin`, as a browser on the app's own page sends.
pub trait Apply {
    /// `request` with the session's headers.
    #[must_use]
    fn apply(&self, request: http::request::Builder) -> http::request::Builder;
}

impl Apply for TestSession {
    fn apply(&self, request: http::request::Builder) -> http::request::Builder {
        self.headers().into_iter().fold(request, |request, (name, value)| request.header(name, value))
    }
}
