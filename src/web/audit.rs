//! Audit events: what happened to whose session, for an application's
//! audit log ([`WebConfigBuilder::audit`](super::WebConfigBuilder::audit)).

use std::fmt;

use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use crate::SessionId;

/// A non-secret name for a session in an audit log: the first 8 bytes of
/// SHA-256 of a fixed label and the session ID, as 16 hex digits.
///
/// It tells one session's events from another's, and nothing more: the
/// session ID cannot be recovered from it, so an audit log can be read by
/// people who must not end sessions (`sealed-session revoke --session`
/// takes the ID, not this). Only a signed-in user can end a session by its
/// reference, and only one of their own
/// ([`SessionHandle::end_device`](super::SessionHandle::end_device)).
///
/// ```
/// use sealed_session::web::SessionRef;
/// use sealed_session::SessionId;
///
/// let id = SessionId::from_hex("000102030405060708090a0b0c0d0e0f").unwrap();
/// let reference = SessionRef::of(id);
/// assert_eq!(reference.to_string().len(), 16);
/// assert!(!id.to_hex().contains(&reference.to_string()));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionRef([u8; 8]);

/// What the reference hashes before the ID: no other hash of an ID in this
/// crate starts the same way.
const REFERENCE_LABEL: &[u8] = b"sealed-session audit reference v1\0";

impl SessionRef {
    /// The reference of the session `id`.
    #[must_use]
    pub fn of(id: SessionId) -> Self {
        let digest = Sha256::new().chain_update(REFERENCE_LABEL).chain_update(id.as_bytes()).finalize();
        let mut reference = [0; 8];
        for (byte, digest_byte) in reference.iter_mut().zip(digest) {
            *byte = digest_byte;
        }
        Self(reference)
    }
}

impl std::str::FromStr for SessionRef {
    type Err = InvalidSessionRef;

    /// Reads the 16 hex digits [`SessionRef`]'s `Display` writes (either
    /// case).
    fn from_str(text: &str) -> Result<Self, InvalidSessionRef> {
        // Digits only: `from_str_radix` would take a sign.
        if text.len() != 16 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(InvalidSessionRef);
        }
        let mut reference = [0; 8];
        for (byte, pair) in reference.iter_mut().zip(text.as_bytes().chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| InvalidSessionRef)?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| InvalidSessionRef)?;
        }
        Ok(Self(reference))
    }
}

/// A text that is not a [`SessionRef`] (16 hex digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a session reference: expected 16 hex digits")]
pub struct InvalidSessionRef;

impl fmt::Display for SessionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for SessionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionRef({self})")
    }
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditKind {
    /// A user signed in: a new session (`session`), which replaced the
    /// request's earlier one (`previous`), if any. Without one, `previous`
    /// is the first device-bound session whose bound cookie had lapsed that
    /// the login ended; each other such session gets a [`Logout`](Self::Logout).
    Login {
        /// Whether the session is remembered ("remember me").
        remembered: bool,
    },
    /// A session was logged out ([`SessionHandle::logout`](super::SessionHandle::logout)),
    /// or ended because [`Sessions::update_or_insert`](super::Sessions::update_or_insert)
    /// replaced it (its data was another type).
    Logout,
    /// A user logged out of every session they had
    /// ([`SessionHandle::logout_everywhere`](super::SessionHandle::logout_everywhere)).
    LogoutEverywhere {
        /// The user's new epoch.
        epoch: u64,
    },
    /// A user signed out of every other session and kept this one, under a
    /// new ID ([`SessionHandle::logout_others`](super::SessionHandle::logout_others)).
    LogoutOthers {
        /// The user's new epoch.
        epoch: u64,
    },
    /// A session got a new ID ([`SessionHandle::renew_id`](super::SessionHandle::renew_id)).
    IdRenewed,
    /// A signed-in user proved a credential again: the session started
    /// anew under a new ID ([`Sessions::reauthenticate`](super::Sessions::reauthenticate)).
    Reauthenticated,
    /// A request's session cookie or bearer token was refused. `user_id`
    /// and `session` are known only for a token that authenticated (a
    /// revoked session, say): nothing is read from one that did not.
    SessionRefused {
        /// Why: [`VerifyError::code`](crate::VerifyError::code).
        reason: &'static str,
    },
    /// The user ended another of their sessions (`session`) from the
    /// device list ([`SessionHandle::end_device`](super::SessionHandle::end_device)).
    DeviceEnded {
        /// The session whose request ended it: after a takeover, whether
        /// the owner or the intruder did.
        by: SessionRef,
    },
    /// A login passed the session limit, and this (the user's oldest)
    /// session was ended to make room
    /// ([`LimitPolicy::EndOldest`](super::LimitPolicy::EndOldest)). A login
    /// the limit refuses records nothing.
    LimitEnforced,
    /// A session was bound to its browser's key (device-bound sessions),
    /// under a new ID.
    DeviceBound,
    /// A session carried by an injected duplicate of the session cookie (a
    /// `__Host-` cookie sent twice: one planted by a sibling subdomain, say)
    /// was ended on every server by the request's login or logout.
    InjectedCookieEnded,
    /// A device-bound session's refresh was refused for good: the browser
    /// ends its session. With `"invalid_proof"` (the session's cookies
    /// came with a proof of a current challenge that the device's key did
    /// not sign: copies) the session
    /// is also logged out on every server; with
    /// `"invalid_proof_not_logged_out"` the store failed to record that
    /// (logged at `error`), and the copies may still open it.
    DeviceBindingEnded {
        /// Why, as a short stable name (`"invalid_proof"`,
        /// `"invalid_proof_not_logged_out"`, `"no_companion"`,
        /// `"revoked_session"`, …).
        reason: &'static str,
    },
    /// The CSRF checks refused an unsafe or upgrade request: a cross-site
    /// one, or one without the right token. `user_id` and `session` are the
    /// request's session's, if it had one (an attack on that user, or a
    /// page of the application's that sends no token). A form body too
    /// large or unreadable is not recorded.
    CsrfRefused {
        /// Why: [`CsrfRefusal::code`](super::CsrfRefusal::code)
        /// (`"cross_site"`, `"wrong_origin"`, `"missing"`, `"invalid"`,
        /// `"no_binding"`).
        reason: &'static str,
    },
}

impl AuditKind {
    /// The event's name in snake case (`"login"`, `"logout_others"`, …),
    /// for a log line.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            AuditKind::Login { .. } => "login",
            AuditKind::Logout => "logout",
            AuditKind::LogoutEverywhere { .. } => "logout_everywhere",
            AuditKind::LogoutOthers { .. } => "logout_others",
            AuditKind::IdRenewed => "id_renewed",
            AuditKind::Reauthenticated => "reauthenticated",
            AuditKind::SessionRefused { .. } => "session_refused",
            AuditKind::DeviceEnded { .. } => "device_ended",
            AuditKind::LimitEnforced => "limit_enforced",
            AuditKind::DeviceBound => "device_bound",
            AuditKind::InjectedCookieEnded => "injected_cookie_ended",
            AuditKind::DeviceBindingEnded { .. } => "device_binding_ended",
            AuditKind::CsrfRefused { .. } => "csrf_refused",
        }
    }
}

/// One audit event: what happened, when, to whose session.
///
/// It holds no secret: no token, cookie, key or session data, and the
/// session only by its [`SessionRef`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditEvent {
    /// What happened.
    pub kind: AuditKind,
    /// When, on the sealer's clock.
    pub at: OffsetDateTime,
    /// The user, if the session had one.
    pub user_id: Option<String>,
    /// The session the event is about: the new one after a login, a new
    /// ID or signing out the others; the one that ended after a logout.
    pub session: Option<SessionRef>,
    /// The session it replaced, if any (a login over an earlier session, a
    /// new ID).
    pub previous: Option<SessionRef>,
}

impl AuditEvent {
    pub(crate) fn new(kind: AuditKind, at: i64) -> Self {
        let at = OffsetDateTime::from_unix_timestamp(at).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        Self { kind, at, user_id: None, session: None, previous: None }
    }

    pub(crate) fn user(mut self, user_id: Option<&str>) -> Self {
        self.user_id = user_id.map(str::to_owned);
        self
    }

    pub(crate) fn session(mut self, id: SessionId) -> Self {
        self.session = Some(SessionRef::of(id));
        self
    }

    pub(crate) fn previous(mut self, id: Option<SessionId>) -> Self {
        self.previous = id.map(SessionRef::of);
        self
    }

    /// The event as one line of JSON: `event`, `at` (RFC 3339), `user`,
    /// `session`, `previous`, and the kind's own fields (`remembered`,
    /// `epoch`, `reason`, `by`); absent values are `null`. No character
    /// any reader takes for a line's end stands in it unescaped (U+0085,
    /// U+2028 and U+2029 included).
    #[must_use]
    pub fn to_json(&self) -> String {
        let at = self.at.format(&time::format_description::well_known::Rfc3339).ok();
        let mut line = serde_json::json!({
            "event": self.kind.name(),
            "at": at,
            "user": self.user_id,
            "session": self.session.map(|s| s.to_string()),
            "previous": self.previous.map(|s| s.to_string()),
        });
        let extra = match self.kind {
            AuditKind::Login { remembered } => Some(("remembered", serde_json::json!(remembered))),
            AuditKind::LogoutEverywhere { epoch } | AuditKind::LogoutOthers { epoch } => {
                Some(("epoch", serde_json::json!(epoch)))
            }
            AuditKind::SessionRefused { reason }
            | AuditKind::DeviceBindingEnded { reason }
            | AuditKind::CsrfRefused { reason } => Some(("reason", serde_json::json!(reason))),
            AuditKind::DeviceEnded { by } => Some(("by", serde_json::json!(by.to_string()))),
            AuditKind::Logout
            | AuditKind::IdRenewed
            | AuditKind::Reauthenticated
            | AuditKind::LimitEnforced
            | AuditKind::DeviceBound
            | AuditKind::InjectedCookieEnded => None,
        };
        if let (Some((name, value)), Some(object)) = (extra, line.as_object_mut()) {
            object.insert(name.to_owned(), value);
        }
        // serde_json leaves these as they are; readers that split lines on
        // them (Python's `splitlines`, some log viewers) would take a user
        // ID holding one for the end of the event. In JSON they can stand
        // only in a string, where the escape means the same.
        line.to_string()
            .replace('\u{85}', "\\u0085")
            .replace('\u{2028}', "\\u2028")
            .replace('\u{2029}', "\\u2029")
    }
}

/// Receives the audit events of a [`WebConfig`](super::WebConfig): give one
/// to [`WebConfigBuilder::audit`](super::WebConfigBuilder::audit). Any
/// `Fn(&AuditEvent) + Send + Sync` is one.
///
/// `record` runs on the request's task, after the change it reports has
/// been made (a logout is recorded once the store has it): keep it quick
/// (queue the event, or write one line to a buffered log) and never block.
/// An event is recorded at most once; one whose request fails before it
/// (a store outage) is not recorded. A sink that panics loses that event
/// (said at `error`), and the request goes on where panics unwind; with
/// `panic = "abort"` the process ends. A sink must not panic.
pub trait AuditSink: Send + Sync + 'static {
    /// Records `event`.
    fn record(&self, event: &AuditEvent);
}

impl<F: Fn(&AuditEvent) + Send + Sync + 'static> AuditSink for F {
    fn record(&self, event: &AuditEvent) {
        self(event);
    }
}
