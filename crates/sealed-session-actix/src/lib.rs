//! [`sealed_session`] for actix-web: the same rules as `sealed-session-axum`,
//! from the same core code ([`sealed_session::web`]).
//!
//! [`SessionMiddleware`] reads the session cookie, opens it and checks it
//! against the revocation store, enforces CSRF on unsafe methods, and
//! writes `Set-Cookie` only when the session changed or is due for
//! re-issue. Handlers take [`Session<T>`] (requests without a valid session
//! get `401`), `Option<Session<T>>`, [`SignedIn<T>`], [`Flashes`], or the
//! [`Sessions<T>`] handle to log in, change the session, and log out here
//! or everywhere; [`RequireSession`] guards routes that need a signed-in
//! user, and [`testing`] helps an application's own tests. The middleware
//! does not know `T`: each extractor decodes the session as its own type.
//! On a route the middleware does not wrap, the extractors answer `500`,
//! except behind `Option`: actix-web makes that `None`, so the handler
//! runs as for a request without a session; the missing middleware is
//! logged at `error` either way.
//!
//! ```
//! use actix_web::{test, web, App, HttpResponse};
//! use sealed_session::web::WebConfig;
//! use sealed_session::{Keyring, MemoryStore, Sealer};
//! use sealed_session_actix::{Session, SessionError, SessionMiddleware, Sessions};
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
//! async fn cart(session: Session<Cart>) -> HttpResponse {
//!     HttpResponse::Ok().json(&session.data().items)
//! }
//!
//! # actix_web::rt::System::new().block_on(async {
//! let config = WebConfig::builder(Sealer::builder(Keyring::generate()?), MemoryStore::new()).build()?;
//! let app = test::init_service(
//!     App::new()
//!         .route("/login", web::post().to(login))
//!         .route("/cart", web::get().to(cart))
//!         .wrap(SessionMiddleware::new(config)),
//! )
//! .await;
//!
//! // Without a session, /cart is refused.
//! let response = test::call_service(&app, test::TestRequest::get().uri("/cart").to_request()).await;
//! assert_eq!(response.status(), 401);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Logging
//! Why a cookie was refused (expired, revoked, tampered, unknown key) and
//! why a request failed the CSRF checks is logged with `tracing` at `info`;
//! store failures at `warn`. Tokens and keys are never logged.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod extractors;
mod middleware;
mod require;
pub mod testing;

pub use middleware::{Flashes, Session, SessionError, SessionMiddleware, SessionService, Sessions, SignedIn};
pub use require::{RequireSession, RequireSessionService};
pub use sealed_session::web::{Flash, Level, LoginOptions, WebConfig, WebConfigBuilder};
