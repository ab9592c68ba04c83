//! What every web integration does per request, with no web framework in
//! sight: its settings ([`WebConfig`]), reading a request's session
//! ([`WebConfig::open_request`]), the CSRF checks of unsafe requests, the
//! handle a handler uses to log in, change the session, add flash messages
//! and log out ([`SessionHandle`]), and the cookies the response must carry
//! ([`SessionHandle::finish`]).
//!
//! `sealed-session-axum` and `sealed-session-actix` are thin adapters over
//! this module, so that both follow the same rules; an integration for
//! another framework should be one too. An adapter:
//!
//! 1. calls [`WebConfig::open_request`] with the request's `Cookie` headers
//!    (as bytes, all of them) and its `Authorization` header, and answers
//!    `503` if the revocation store cannot be reached;
//! 2. if [`SessionHandle::csrf_applies`], runs [`SessionHandle::check_csrf`]
//!    and, when the token must come from a URL-encoded form, reads at most
//!    [`SessionHandle::form_limit`] bytes of the body (`413` beyond) for
//!    [`SessionHandle::check_csrf_form`]; a refusal is `403`;
//! 3. gives the handler the handle, and after it ran adds what
//!    [`SessionHandle::finish`] returns to the response.
//!
//! ```
//! use sealed_session::web::{CsrfCheck, CsrfRequest, WebConfig};
//! use sealed_session::{Keyring, MemoryStore, Sealer, Verifier};
//! use std::sync::Arc;
//!
//! # pollster::block_on(async {
//! let verifier = Verifier::new(Sealer::builder(Keyring::generate()?).build()?, MemoryStore::new());
//! let config = Arc::new(WebConfig::builder(verifier).build()?);
//!
//! // A request with no cookies: no session, but a login form can get a
//! // CSRF token bound to a pre-session.
//! let handle = config.open_request::<String, _, _>(std::iter::empty::<&[u8]>(), None).await?;
//! assert!(handle.current().is_none());
//! let token = handle.csrf_token()?;
//! let response = handle.finish();
//! assert_eq!(response.set_cookies.len(), 1); // the pre-session cookie
//!
//! // The login form comes back with that cookie and token.
//! let cookie = response.set_cookies[0].split(';').next().unwrap_or_default().to_owned();
//! let handle = config.open_request::<String, _, _>([cookie.as_bytes()], None).await?;
//! let form = format!("user=alice&csrf_token={token}");
//! let request = CsrfRequest { method: "POST", path: "/login", form: true, ..CsrfRequest::default() };
//! assert!(handle.csrf_applies(request.method, request.path, request.upgrade));
//! // Fetch Metadata and Origin pass; the token is in the form, which must
//! // be read and checked before the request may go on.
//! assert_eq!(handle.check_csrf(&request)?, CsrfCheck::ReadForm);
//! handle.check_csrf_form(form.as_bytes())?;
//! handle.login("alice", "Alice".to_owned()).await?;
//! assert_eq!(handle.finish().set_cookies.len(), 2); // the session, and the pre-session's removal
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod flash;
mod handle;
mod request;
pub mod testing;

pub use config::{
    WebConfig, WebConfigBuilder, WebConfigError, CSRF_FIELD, CSRF_HEADER, DEFAULT_FORM_LIMIT,
    PRE_SESSION_TIMEOUT, SESSION_TOKEN_HEADER,
};
pub use flash::{Flash, FlashHandle, Level, FLASH_TIMEOUT, MAX_FLASHES};
pub use handle::{HandleError, LoginOptions, SessionHandle};
pub use request::{bearer_token, is_form, is_upgrade, CsrfCheck, CsrfRefusal, CsrfRequest, ResponseCookies};
