//! The web driver every framework adapter runs, with no web framework in
//! sight, as rustls is for TLS: its settings ([`WebConfig`]), one call that
//! takes a request's view and says what to do ([`WebConfig::begin`]: go
//! on, read the form first, or refuse), the handle a handler uses to log
//! in, change the session, add flash messages and log out
//! ([`SessionHandle`] and its typed view [`Sessions`]), and the headers the
//! response must carry ([`SessionHandle::finish`]). Every rule (cookies and
//! bearer tokens, CSRF, pre-session, flash, `503` on store errors, cache
//! control) lives here once.
//!
//! `sealed-session-axum` and `sealed-session-actix` are thin adapters over
//! this module, and an integration for another framework should be one
//! too: a [`RequestView`] over its request, a body read for
//! [`Begin::ReadForm`], [`ResponseHeaders`] over its response, and its
//! extractors ([`adapter_types!`](crate::adapter_types) defines the types
//! they wrap). With the feature `http`, `http::request::Parts` is a
//! [`RequestView`] and `http::HeaderMap` is [`ResponseHeaders`], for
//! frameworks built on the `http` crate. The session's data type is the
//! handler's business: the
//! driver opens the token's bytes once, and [`SessionHandle::current`]
//! decodes them as the type the handler asks for.
//!
//! ```
//! use sealed_session::web::testing::{TestRequest, TestResponse};
//! use sealed_session::web::{Begin, WebConfig};
//! use sealed_session::{Keyring, MemoryStore, Sealer};
//! use std::sync::Arc;
//!
//! # pollster::block_on(async {
//! let config = Arc::new(WebConfig::builder(Sealer::builder(Keyring::generate()?), MemoryStore::new()).build()?);
//!
//! // A login page: no session, but its form gets a CSRF token bound to a
//! // pre-session.
//! let Begin::Ready(handle) = config.begin(&TestRequest::new("GET", "/login")).await else { panic!() };
//! assert!(!handle.has_session());
//! let token = handle.csrf_token()?;
//! let mut response = TestResponse::default();
//! handle.finish().write_to(&mut response);
//! let pre_session = response.get_all("set-cookie")[0].split(';').next().unwrap_or_default().to_owned();
//!
//! // The form comes back with that cookie and token, in its body.
//! let login = TestRequest::new("POST", "/login")
//!     .header("cookie", &pre_session)
//!     .header("sec-fetch-site", "same-origin")
//!     .header("content-type", "application/x-www-form-urlencoded");
//! let Begin::ReadForm(form) = config.begin(&login).await else { panic!("the token is in the form") };
//! let handle = form.check(format!("user=alice&csrf_token={token}").as_bytes())?;
//! handle.typed::<String>().login("alice", "Alice".to_owned()).await?;
//! let mut response = TestResponse::default();
//! handle.finish().write_to(&mut response);
//! assert_eq!(response.get_all("set-cookie").len(), 2); // the session, and the pre-session's removal
//! assert_eq!(response.get_all("cache-control"), ["no-store"]);
//!
//! // Without the token, the form is refused before its handler runs.
//! let Begin::ReadForm(form) = config.begin(&login).await else { panic!() };
//! let refusal = form.check(b"user=mallory").unwrap_err();
//! assert_eq!((refusal.status(), refusal.body()), (403, "CSRF check failed"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod adapter;
mod audit;
mod binding;
mod config;
mod dbsc;
mod devices;
mod driver;
mod flash;
mod handle;
#[cfg(feature = "http")]
mod http_types;
mod ops;
mod renewal;
pub mod testing;

pub use audit::{AuditEvent, AuditKind, AuditSink, InvalidSessionRef, SessionRef};
pub use binding::{
    DeviceBinding, CHALLENGE_LIFETIME, DEFAULT_BOUND_LIFETIME, DEFAULT_REFRESH_PATH,
    DEFAULT_REGISTRATION_PATH,
};
pub use config::{
    ClearSiteData, LimitPolicy, WebConfig, WebConfigBuilder, WebConfigError, CSRF_FIELD, CSRF_HEADER,
    DEFAULT_FORM_LIMIT, PRE_SESSION_TIMEOUT, SESSION_TOKEN_HEADER,
};
pub use devices::Device;
pub use driver::{
    bearer_token, is_form, is_upgrade, Answer, Begin, CsrfRefusal, FinishOnDrop, FormRead, Nesting, Refusal,
    RequestView, ResponseCookies, ResponseHeaders, TARGETED_CACHE_FIELDS,
};
pub use flash::{Flash, Level, FLASH_TIMEOUT, MAX_FLASHES};
pub use handle::{Current, HandleError, LoginOptions, SessionHandle, SessionValue, Sessions};
