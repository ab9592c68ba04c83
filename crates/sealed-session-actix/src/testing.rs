//! Helpers for an application's own tests: requests with a signed-in
//! session and a valid CSRF token, sent through `actix_web::test` and no
//! browser.
//!
//! Build the app's sealer with a [`ManualClock`](sealed_session::ManualClock)
//! to control time, sign in with [`TestSession::sign_in`] through the same
//! middleware the app uses, and add the session to any request:
//!
//! ```
//! use actix_web::{test, web, App};
//! use sealed_session::{Keyring, ManualClock, MemoryStore, Sealer, Verifier};
//! use sealed_session_actix::testing::TestSession;
//! use sealed_session_actix::{Session, SessionMiddleware};
//!
//! async fn whoami(session: Session<u32>) -> String {
//!     session.user_id().unwrap_or_default().to_owned()
//! }
//!
//! # actix_web::rt::System::new().block_on(async {
//! let clock = ManualClock::at_unix(1_800_000_000);
//! let sealer = Sealer::builder(Keyring::generate()?).clock(clock.clone()).build()?;
//! let sessions = SessionMiddleware::<_, u32>::new(Verifier::new(sealer, MemoryStore::with_clock(clock)))?;
//! let app = test::init_service(App::new().route("/whoami", web::post().to(whoami)).wrap(sessions.clone())).await;
//!
//! let alice = TestSession::sign_in(&sessions, "alice", 0).await?;
//! let request = alice.apply(test::TestRequest::post().uri("/whoami")).to_request();
//! let response = test::call_service(&app, request).await;
//! assert_eq!(response.status(), 200);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use actix_web::test::TestRequest;
use sealed_session::RevocationStore;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::SessionError;
use crate::SessionMiddleware;

/// A signed-in session for tests: its cookie and its CSRF token (the core's
/// [`sealed_session::web::testing::TestSession`], for actix-web requests).
#[derive(Debug)]
pub struct TestSession(sealed_session::web::testing::TestSession);

impl TestSession {
    /// Signs `user_id` in with `data`, as [`Sessions::login`](crate::Sessions::login)
    /// would: a new session ID and the user's current epoch, read from the
    /// middleware's store.
    ///
    /// # Errors
    /// [`SessionError::Login`] or [`SessionError::Seal`], as a login.
    pub async fn sign_in<S, T>(
        middleware: &SessionMiddleware<S, T>,
        user_id: &str,
        data: T,
    ) -> Result<Self, SessionError>
    where
        S: RevocationStore + 'static,
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let session =
            sealed_session::web::testing::TestSession::sign_in(middleware.config(), user_id, data).await?;
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

    /// Adds the session cookie, the CSRF token (in the middleware's CSRF
    /// header, `X-CSRF-Token` by default) and `Sec-Fetch-Site: same-origin`
    /// to `request`: what a browser on the app's own page sends.
    #[must_use]
    pub fn apply(&self, request: TestRequest) -> TestRequest {
        self.0.headers().into_iter().fold(request, |request, (name, value)| {
            request.insert_header((name.to_owned(), value.to_owned()))
        })
    }
}
