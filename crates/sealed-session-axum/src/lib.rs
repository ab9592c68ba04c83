//! [`sealed_session`] for axum and any other tower-based framework.
//!
//! [`SessionLayer`] runs the core's web driver
//! ([`sealed_session::web`]) on every request: it reads the session cookie,
//! opens it and checks it against the revocation store, enforces CSRF on
//! unsafe methods, and writes `Set-Cookie` only when the session changed or
//! is due for re-issue. Handlers take [`Session<T>`] (requests without a
//! valid session get `401`), `Option<Session<T>>`, [`SignedIn<T>`], or the
//! [`Sessions<T>`] handle to log in, change the session, and log out here
//! or everywhere. The layer does not know `T`: each extractor decodes the
//! session as its own type.
//!
//! Beyond that: anonymous sessions before sign-in
//! ([`update_or_insert`](sealed_session::web::Sessions::update_or_insert),
//! carried over by [`login_with`](sealed_session::web::Sessions::login_with)),
//! "remember me" ([`LoginOptions`]), flash messages
//! ([`flash`](sealed_session::web::SessionHandle::flash), [`Flashes`]),
//! routes that require a signed-in session ([`RequireSessionLayer`]),
//! tunable CSRF and bearer tokens for non-browser clients (on
//! [`WebConfigBuilder`]), and [`testing`] helpers for the application's own
//! tests.
//!
//! ```
//! use axum::{routing::{get, post}, Router, Json};
//! use sealed_session::web::WebConfig;
//! use sealed_session::{Keyring, MemoryStore, Sealer};
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
//! let config = WebConfig::builder(Sealer::builder(Keyring::generate()?), MemoryStore::new()).build()?;
//! let app = Router::new()
//!     .route("/login", post(login))
//!     .route("/cart", get(cart))
//!     .layer(SessionLayer::new(config));
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
//! cross-site by the browser (`Sec-Fetch-Site`, else `Origin`); a WebSocket
//! handshake must come from the site too. Get the token from
//! [`csrf_token`](sealed_session::web::SessionHandle::csrf_token) on the
//! handle or the session. Before login, the token is bound to a
//! *pre-session* cookie, so that the login form itself is protected against
//! login CSRF.
//!
//! [`WebConfigBuilder`] tunes this: `csrf_exempt(path)` for routes other
//! sites post to by design (webhooks, OpenID Connect `form_post`),
//! `trust_origin` for a front end of yours on another origin,
//! `allow_same_site` for sibling subdomains or a development server, and
//! `csrf_header` / `csrf_field` for other names. Nothing is exempt or
//! trusted by default.
//!
//! # Other frameworks
//! The layer works with any tower-based framework: its inner service takes
//! `http::Request<axum_core::body::Body>`, and a service that is not an
//! axum handler finds the [`SessionHandle`](sealed_session::web::SessionHandle)
//! in the request's extensions. Frameworks outside tower run the core's
//! driver themselves ([`sealed_session::web`]); the repository's
//! `examples/` shows plain hyper.
//!
//! # Logging
//! Why a cookie was refused (expired, revoked, tampered, unknown key) and
//! why a request failed the CSRF checks is logged with `tracing` at `info`;
//! store failures at `warn`. Tokens and keys are never logged.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod extractors;
mod layer;
mod require;
mod service;
pub mod testing;

pub use layer::{Flashes, Session, SessionError, SessionLayer, Sessions, SignedIn};
pub use require::{RequireSession, RequireSessionLayer};
pub use sealed_session::web::{Flash, Level, LoginOptions, WebConfig, WebConfigBuilder};
pub use service::SessionService;
