//! [`sealed_session`] for axum and any other tower-based framework.
//!
//! [`SessionLayer`] reads the session cookie, opens it and checks it against
//! the revocation store, enforces CSRF on unsafe methods, and writes
//! `Set-Cookie` only when the session changed or is due for re-issue.
//! Handlers take [`Session<T>`] (requests without a valid session get
//! `401`), `Option<Session<T>>`, or the [`Sessions<T>`] handle to log in,
//! change the session, and log out here or everywhere.
//!
//! Beyond that: anonymous sessions before sign-in
//! ([`Sessions::update_or_insert`], carried over by [`Sessions::login_with`]),
//! "remember me" ([`LoginOptions`]), flash messages ([`Sessions::flash`],
//! [`Flashes`]), routes that require a signed-in session
//! ([`RequireSessionLayer`]), tunable CSRF ([`SessionLayerBuilder`]), bearer
//! tokens for non-browser clients ([`SessionLayerBuilder::bearer_tokens`]),
//! and [`testing`] helpers for the application's own tests.
//!
//! ```
//! use axum::{routing::{get, post}, Router, Json};
//! use sealed_session::{Keyring, MemoryStore, Sealer, Verifier};
//! use sealed_session_axum::{Session, SessionError, SessionLayer, Sessions};
//! use tower::ServiceExt as _;
//!
//! #[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
//! struct Cart { items: Vec<String> }
//!
//! async fn login(sessions: Sessions<Cart>) -> Result<&'static str, SessionError> {
//!     // Check the user's credentials first.
//!     sessions.login("alice", Cart::default()).await?;
//!     Ok("signed in")
//! }
//!
//! async fn cart(session: Session<Cart>) -> Json<Vec<String>> {
//!     Json(session.data().items.clone())
//! }
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let verifier = Verifier::new(Sealer::builder(Keyring::generate()?).build()?, MemoryStore::new());
//! let app = Router::new()
//!     .route("/login", post(login))
//!     .route("/cart", get(cart))
//!     .layer(SessionLayer::<_, Cart>::new(verifier)?);
//!
//! // Without a session, /cart is refused.
//! let request = http::Request::get("/cart").body(axum::body::Body::empty())?;
//! let response = app.oneshot(request).await?;
//! assert_eq!(response.status(), http::StatusCode::UNAUTHORIZED);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # CSRF
//! Every request with an unsafe method (not GET, HEAD, OPTIONS or TRACE)
//! must carry the CSRF token of its session, in the `X-CSRF-Token` header or
//! in the `csrf_token` field of a URL-encoded form, and must not be marked
//! cross-site by the browser (`Sec-Fetch-Site`, else `Origin`). Get the
//! token from [`Sessions::csrf_token`] or [`Session::csrf_token`]. Before
//! login, the token is bound to a *pre-session* cookie, so that the login
//! form itself is protected against login CSRF.
//!
//! [`SessionLayerBuilder`] tunes this: `csrf_exempt(path)` for routes other
//! sites post to by design (webhooks, OpenID Connect `form_post`),
//! `trust_origin` for a front end of yours on another origin,
//! `allow_same_site` for sibling subdomains or a development server, and
//! `csrf_header` / `csrf_field` for other names. Nothing is exempt or
//! trusted by default.
//!
//! # Other frameworks
//! The layer works with any tower-based framework: its inner service takes
//! `http::Request<axum_core::body::Body>`, and a service that is not an
//! axum handler finds the [`Sessions<T>`] handle in the request's
//! extensions (`request.extensions().get::<Sessions<T>>()`). Frameworks
//! outside tower use
//! the core crate directly: [`sealed_session::CookieSpec`] to read and write
//! the cookie, [`sealed_session::Verifier`] to open and check it, and
//! [`sealed_session::csrf`] for the CSRF checks; the repository's
//! `examples/` shows actix-web and plain hyper.
//!
//! # Logging
//! Why a cookie was refused (expired, revoked, tampered, unknown key) and
//! why a request failed the CSRF checks is logged with `tracing` at `info`;
//! store failures at `warn`. Tokens and keys are never logged.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// Headers and bodies are untrusted: nothing may panic on them. Tests may unwrap (.clippy.toml).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod csrf;
mod error;
mod flash;
mod layer;
mod require;
mod service;
mod sessions;
pub mod testing;

pub use error::SessionError;
pub use flash::Flashes;
pub use layer::{
    LayerError, SessionLayer, SessionLayerBuilder, CSRF_FIELD, CSRF_HEADER, DEFAULT_FORM_LIMIT,
    PRE_SESSION_TIMEOUT, SESSION_TOKEN_HEADER,
};
pub use require::{RequireSession, RequireSessionLayer};
pub use sealed_session::web::{Flash, Level, LoginOptions, FLASH_TIMEOUT, MAX_FLASHES};
pub use service::SessionService;
pub use sessions::{Session, Sessions, SignedIn};
