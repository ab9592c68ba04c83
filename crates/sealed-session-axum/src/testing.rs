//! Helpers for an application's own tests: requests with a signed-in
//! session and a valid CSRF token, sent with `tower::ServiceExt::oneshot`
//! and no browser.
//!
//! Build the app's sealer with a [`ManualClock`](sealed_session::ManualClock)
//! to control time, sign in with [`TestSession::sign_in`] through the same
//! layer the app uses, and add the session to any request:
//!
//! ```
//! use axum::{routing::post, Router};
//! use sealed_session::{Keyring, ManualClock, MemoryStore, Sealer, Verifier};
//! use sealed_session_axum::testing::TestSession;
//! use sealed_session_axum::{Session, SessionLayer};
//! use tower::ServiceExt as _;
//!
//! async fn whoami(session: Session<u32>) -> String {
//!     session.user_id().unwrap_or_default().to_owned()
//! }
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let clock = ManualClock::at_unix(1_800_000_000);
//! let sealer = Sealer::builder(Keyring::generate()?).clock(clock.clone()).build()?;
//! let layer = SessionLayer::<_, u32>::new(Verifier::new(sealer, MemoryStore::with_clock(clock)))?;
//! let app = Router::new().route("/whoami", post(whoami)).layer(layer.clone());
//!
//! let alice = TestSession::sign_in(&layer, "alice", 0).await?;
//! let request = alice.apply(http::Request::post("/whoami")).body(axum::body::Body::empty())?;
//! let response = app.oneshot(request).await?;
//! assert_eq!(response.status(), http::StatusCode::OK);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use sealed_session::RevocationStore;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::SessionError;
use crate::SessionLayer;

/// A signed-in session for tests: its cookie and its CSRF token (the core's
/// [`sealed_session::web::testing::TestSession`], for axum requests).
#[derive(Debug)]
pub struct TestSession(sealed_session::web::testing::TestSession);

impl TestSession {
    /// Signs `user_id` in with `data`, as [`Sessions::login`](crate::Sessions::login)
    /// would: a new session ID and the user's current epoch, read from the
    /// layer's store.
    ///
    /// # Errors
    /// [`SessionError::Login`] or [`SessionError::Seal`], as a login.
    pub async fn sign_in<S, T>(
        layer: &SessionLayer<S, T>,
        user_id: &str,
        data: T,
    ) -> Result<Self, SessionError>
    where
        S: RevocationStore + 'static,
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let session =
            sealed_session::web::testing::TestSession::sign_in(layer.config(), user_id, data).await?;
        Ok(Self(session))
    }

    /// The `Cookie` header value: `name=token`.
    #[must_use]
    pub fn cookie(&self) -> &str {
        self.0.cookie()
    }

    /// The session's CSRF token.
    #[must_use]
    pub fn csrf_token(&self) -> &str {
        self.0.csrf_token()
    }

    /// Adds the session cookie, the CSRF token (in the layer's CSRF header,
    /// `X-CSRF-Token` by default) and `Sec-Fetch-Site: same-origin` to
    /// `request`: what a browser on the app's own page sends.
    #[must_use]
    pub fn apply(&self, request: http::request::Builder) -> http::request::Builder {
        self.0.headers().into_iter().fold(request, |request, (name, value)| request.header(name, value))
    }
}
