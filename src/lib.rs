//! Secure web sessions that need no session database.
//!
//! A session is sealed into a token — XChaCha20-Poly1305 under a key derived
//! with HKDF-SHA256, postcard inside, base64url outside — that carries its
//! own expiry and the ID of the key that sealed it. Put the token in a
//! cookie; nothing is stored on the server.
//!
//! * [`Sealer`] seals and opens sessions, with absolute and idle timeouts, a
//!   purpose bound into every token, and an injectable [`Clock`].
//! * [`Keyring`] holds one primary key and older keys that still open, so keys
//!   rotate without logging anyone out; [`SharedKeyring`] swaps keyrings
//!   while the server runs.
//! * [`Session`] always starts with a fresh random [`SessionId`].
//!
//! ```
//! use sealed_session::{Keyring, OpenError, Sealer, Session};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Cart {
//!     items: Vec<String>,
//! }
//!
//! // Load the keyring with Keyring::load("keyring.toml") in a real server.
//! let sealer = Sealer::builder(Keyring::generate()?).purpose("__Host-session").build()?;
//!
//! // At login: always a new session.
//! let session = Session::new(Cart { items: vec![] }).with_user("alice", 0);
//! let cookie_value = sealer.seal(&session)?;
//!
//! // On each request:
//! match sealer.open::<Cart>(&cookie_value) {
//!     Ok(opened) => {
//!         assert_eq!(opened.session().user_id(), Some("alice"));
//!         if opened.reissue().is_some() {
//!             let _fresh_cookie = sealer.seal(opened.session())?;
//!         }
//!     }
//!     // Log why, but tell the client only "no session".
//!     Err(reason @ (OpenError::Expired(_) | OpenError::Invalid)) => eprintln!("no session: {reason}"),
//!     Err(other) => eprintln!("no session: {other}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! * [`Verifier`] opens a token and checks it against a [`RevocationStore`]
//!   in one call: log a user out everywhere by bumping one counter.
//!   [`MemoryStore`] is here; the SQLite, PostgreSQL and Redis stores are
//!   separate crates.
//!
//! # Features
//!
//! * `hazmat` — the `aead` module (XChaCha20-Poly1305 with a caller-chosen
//!   nonce) and the `envelope` codec, for benchmarks, fuzzing and independent
//!   verification. Never needed to seal sessions.
//! * `conformance` — the `conformance` module, a test suite for [`RevocationStore`]
//!   implementations.
//! * `watch` — `KeyringWatcher`, a keyring that follows its file while the
//!   server runs (OS notifications through the `notify` crate, and polling).
//! * `http` — the web driver's request and response views over the `http`
//!   crate's types.
//! * `metrics` — counters and histograms through the `metrics` facade, for
//!   any exporter.
//!
//! The crate depends on no async runtime, web framework or database client.
//!
//! # Security
//!
//! See [`docs::security`] (SECURITY.md) for the threat model and
//! [`docs::format`] (docs/FORMAT.md) for the exact construction. In short: a
//! stolen token is valid until it expires, and the size of the session data
//! is visible in the token's length.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "hazmat")]
pub mod aead;
#[cfg(not(feature = "hazmat"))]
#[allow(unreachable_pub, dead_code)]
mod aead;
mod clock;
#[cfg(feature = "conformance")]
pub mod conformance;
mod cookie;
pub mod csrf;
pub mod dbsc;
mod error;
mod key;
mod keyring;
mod metrics;
mod random;
pub mod redirect;
mod revocation;
mod sealer;
mod session;
mod timer;
mod token;
pub mod versioned;
pub mod web;
mod wipe;

#[cfg(test)]
mod vectors;

/// The project's documents, here so that they read on docs.rs too.
pub mod docs {
    #[doc = include_str!("../SECURITY.md")]
    pub mod security {}
    #[doc = include_str!("../docs/FORMAT.md")]
    pub mod format {}
}

pub use clock::{Clock, ManualClock, SystemClock};
pub use cookie::{CookieError, CookieSpec, SameSite, MAX_COOKIE_LEN, MAX_SAME_NAME};
pub use error::{
    ClockError, ConfigError, EntryRef, Expiry, KeyError, KeyringError, OpenError, RandomError, SealError,
};
pub use key::{MasterKey, KEY_LEN};
pub use keyring::{
    KeySpec, KeyState, KeyUsage, Keyring, LoadOptions, RotationPolicy, SealingPeriod, SharedKeyring,
    UnknownKeyState, MAX_KEYRING_FILE_LEN,
};
#[cfg(feature = "watch")]
pub use keyring::{KeyringWatcher, KeyringWatcherBuilder, WatchEvent};
pub use revocation::registry;
pub use revocation::registry::{SessionRecord, SessionRegistry};
pub use revocation::sql;
pub use revocation::{
    check_revocation, next_cutoff, Backoff, BoxFuture, CacheTicket, CorruptKind, DynRevocationStore, Feed,
    FeedConnection, Heartbeat, Invalidation, LoginError, LoginState, LoginTicket, MemoryStore, Quiet,
    Revocation, RevocationState, RevocationStore, SharedStore, StateCache, StoreError, Verified, Verifier,
    VerifyError, MAX_CACHE_TTL, MAX_LOGIN_WAIT, MAX_USER_ID_LEN,
};
pub use sealer::{
    Inspection, Opened, Reissue, Sealer, SealerBuilder, DEFAULT_ABSOLUTE_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_LEN, DEFAULT_PURPOSE,
};
pub use session::{Session, SessionId};
#[cfg(feature = "hazmat")]
pub use token::envelope;
pub use token::{UntrustedToken, MAX_PURPOSE_LEN, VERSION, VERSION_1};

// The README's examples run as doctests of `sealed-session-demo` (its
// `lib.rs`), whose dependencies cover all of them, both frameworks included.
