//! Sessions and their IDs.

use std::fmt;

use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::error::RandomError;
use crate::random;

/// A 128-bit random session ID.
///
/// IDs come only from the crate's random source: no API turns a caller's
/// value into the ID of a new session, which rules out session fixation
/// through this library. [`SessionId::from_hex`] only names an existing
/// session (to revoke it); it cannot be given to a session:
///
/// ```compile_fail,E0624
/// # use sealed_session::{Session, SessionId};
/// let chosen = SessionId::from_hex("000102030405060708090a0b0c0d0e0f").unwrap();
/// let mut session = Session::new(());
/// session.set_id(chosen); // private: does not compile
/// ```
///
/// ```compile_fail,E0599
/// # use sealed_session::{Session, SessionId};
/// let chosen = SessionId::from_hex("000102030405060708090a0b0c0d0e0f").unwrap();
/// let session = Session::new(()).with_id(chosen); // test-only: does not compile
/// ```
///
/// The same lines without that call compile, so the two above fail for it
/// alone:
///
/// ```
/// # use sealed_session::{Session, SessionId};
/// let chosen = SessionId::from_hex("000102030405060708090a0b0c0d0e0f").unwrap();
/// let mut session = Session::new(());
/// assert_ne!(session.id(), chosen);
/// session.renew_id()?;
/// assert_ne!(session.id(), chosen);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Equality is constant-time. `Debug` shows only the first four hex digits;
/// [`SessionId::to_hex`] gives the whole ID, for a server-side denylist.
#[derive(Clone, Copy, Eq)]
pub struct SessionId([u8; 16]);

impl SessionId {
    /// A new random ID.
    ///
    /// # Errors
    /// [`RandomError`] if the random source fails.
    pub(crate) fn random() -> Result<Self, RandomError> {
        random::array().map(Self)
    }

    pub(crate) fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The 16 bytes of the ID.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The ID as 32 lowercase hex digits.
    #[must_use]
    pub fn to_hex(&self) -> String {
        use fmt::Write as _;
        self.0.iter().fold(String::with_capacity(32), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    /// Parses 32 hex digits, as [`SessionId::to_hex`] writes them, to name an
    /// existing session (for example to revoke it). Returns `None` for
    /// anything else.
    #[must_use]
    pub fn from_hex(text: &str) -> Option<Self> {
        // Hex digits only: `from_str_radix` also takes a sign (`+0`).
        if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut out = [0u8; 16];
        for (byte, pair) in out.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).ok()?;
            *byte = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(Self(out))
    }
}

impl PartialEq for SessionId {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl std::hash::Hash for SessionId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self.to_hex();
        write!(f, "SessionId({}…)", hex.get(..4).unwrap_or_default())
    }
}

/// Times a sealed session carries, in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Times {
    pub(crate) issued_at: u64,
    pub(crate) expires_at: u64,
    pub(crate) last_seen: u64,
}

/// A session: a random ID, an optional user and revocation epoch, and the
/// application's data.
///
/// Start a new session with [`Session::new`] at every login: a fresh ID for
/// every authentication is what defeats session fixation. For a privilege
/// change inside a session, call [`Session::renew_id`].
///
/// ```
/// use sealed_session::Session;
///
/// let mut session = Session::new(vec!["cart item"]).with_user("alice", 0);
/// session.data_mut().push("another item");
/// assert_eq!(session.user_id(), Some("alice"));
/// assert!(session.issued_at().is_none()); // set when it is first sealed
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Session<T> {
    id: SessionId,
    user_id: Option<String>,
    epoch: u64,
    data: T,
    times: Option<Times>,
    /// Sealed under the sealer's remember-me timeouts (and purpose).
    remembered: bool,
    /// Device-bound (DBSC): its `last_seen` is its last proof of possession.
    device_bound: bool,
}

impl<T> Session<T> {
    /// A new session with a fresh random ID, no user and epoch 0.
    ///
    /// # Panics
    /// If the operating system's random source fails; [`Session::try_new`]
    /// returns that as an error instead.
    #[must_use]
    pub fn new(data: T) -> Self {
        match Self::try_new(data) {
            Ok(session) => session,
            #[allow(clippy::panic)]
            Err(err) => panic!("{err}"),
        }
    }

    /// A new session with a fresh random ID, no user and epoch 0.
    ///
    /// # Errors
    /// [`RandomError`] if the random source fails.
    pub fn try_new(data: T) -> Result<Self, RandomError> {
        Ok(Self {
            id: SessionId::random()?,
            user_id: None,
            epoch: 0,
            data,
            times: None,
            remembered: false,
            device_bound: false,
        })
    }

    /// A new session with a chosen ID, for the test vectors only.
    #[cfg(test)]
    pub(crate) fn with_id(mut self, id: SessionId) -> Self {
        self.id = id;
        self
    }

    pub(crate) fn from_parts(
        id: SessionId,
        user_id: Option<String>,
        epoch: u64,
        data: T,
        times: Times,
        remembered: bool,
        device_bound: bool,
    ) -> Self {
        Self { id, user_id, epoch, data, times: Some(times), remembered, device_bound }
    }

    /// The session with `times`, as a token sealed now carries it.
    pub(crate) fn with_times(mut self, times: Times) -> Self {
        self.times = Some(times);
        self
    }

    /// The same session (ID, user, epoch, times, profile) with other data.
    pub(crate) fn with_data<U>(&self, data: U) -> Session<U> {
        Session {
            id: self.id,
            user_id: self.user_id.clone(),
            epoch: self.epoch,
            data,
            times: self.times,
            remembered: self.remembered,
            device_bound: self.device_bound,
        }
    }

    /// Makes a new session a "remember me" session: sealed under the
    /// sealer's remember-me timeouts (see
    /// [`SealerBuilder::remember_me`](crate::SealerBuilder::remember_me)) and
    /// sent in a persistent cookie. Only a session not yet sealed can be
    /// remembered: a session's lifetime is fixed when it is first sealed.
    #[must_use]
    pub fn remembered(mut self) -> Self {
        if self.times.is_none() {
            self.remembered = true;
        }
        self
    }

    /// Whether the session is sealed under the remember-me timeouts.
    #[must_use]
    pub fn is_remembered(&self) -> bool {
        self.remembered
    }

    /// Whether the session is device-bound (DBSC, see
    /// [`dbsc`](crate::dbsc)): the browser proved that it holds the
    /// session's private key at most the sealer's device-bound lifetime ago,
    /// and a copy of its cookie stops opening after that.
    #[must_use]
    pub fn is_device_bound(&self) -> bool {
        self.device_bound
    }

    /// Marks the session device-bound (or not). A sealer keeps a bound
    /// session's `last_seen` (the time of its last proof) when it seals it
    /// again.
    pub(crate) fn set_device_bound(&mut self, device_bound: bool) {
        self.device_bound = device_bound;
    }

    /// Binds the session to a user and the user's current revocation epoch.
    ///
    /// It keeps the session's ID. At a login, give the signed-in session a
    /// new one ([`Verifier::login`](crate::Verifier::login) starts a new
    /// session, and the web driver's login does too): an anonymous
    /// session's ID, and any CSRF token made for it, may be an attacker's
    /// (session fixation).
    #[must_use]
    pub fn with_user(mut self, user_id: impl Into<String>, epoch: u64) -> Self {
        self.user_id = Some(user_id.into());
        self.epoch = epoch;
        self
    }

    /// Gives the session a new random ID, keeping its data, user and
    /// lifetime. Call it when the session's privileges change; with a
    /// revocation store, call [`Verifier::renew_id`](crate::Verifier::renew_id)
    /// instead, which also logs out the old ID.
    ///
    /// # Errors
    /// [`RandomError`] if the random source fails; the ID is then unchanged.
    pub fn renew_id(&mut self) -> Result<(), RandomError> {
        self.id = SessionId::random()?;
        Ok(())
    }

    /// Moves a signed-in session to the user's new epoch (sign out the
    /// others, keep this one).
    pub(crate) fn set_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
    }

    pub(crate) fn set_id(&mut self, id: SessionId) {
        self.id = id;
    }

    /// The session ID.
    #[must_use]
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The user the session belongs to, if any.
    #[must_use]
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// The user's revocation epoch when the session began.
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The application's data.
    #[must_use]
    pub fn data(&self) -> &T {
        &self.data
    }

    /// The application's data, to change it. Seal the session again to keep
    /// the change.
    pub fn data_mut(&mut self) -> &mut T {
        &mut self.data
    }

    /// Takes the application's data out of the session.
    #[must_use]
    pub fn into_data(self) -> T {
        self.data
    }

    /// When the session was first sealed; `None` until then.
    #[must_use]
    pub fn issued_at(&self) -> Option<OffsetDateTime> {
        self.times.map(|t| to_datetime(t.issued_at))
    }

    /// When the session ends whatever its activity; `None` until first sealed.
    #[must_use]
    pub fn expires_at(&self) -> Option<OffsetDateTime> {
        self.times.map(|t| to_datetime(t.expires_at))
    }

    /// When the session was last sealed (its last recorded activity); `None`
    /// until first sealed.
    #[must_use]
    pub fn last_seen(&self) -> Option<OffsetDateTime> {
        self.times.map(|t| to_datetime(t.last_seen))
    }

    pub(crate) fn times(&self) -> Option<Times> {
        self.times
    }
}

/// The date of `unix` seconds; a time past the calendar (a lifetime of
/// `Duration::MAX`) is its last moment, never 1970, which would read as
/// long past.
pub(crate) fn to_datetime(unix: u64) -> OffsetDateTime {
    i64::try_from(unix)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::PrimitiveDateTime::MAX.assume_utc())
}

impl<T> fmt::Debug for Session<T> {
    /// Shows the ID (abbreviated), user, epoch and times; never the data,
    /// which may hold secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("epoch", &self.epoch)
            .field("times", &self.times)
            .field("remembered", &self.remembered)
            .field("device_bound", &self.device_bound)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_is_strict() {
        let id = SessionId::random().unwrap();
        assert_eq!(SessionId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(id.to_hex().len(), 32);
        assert_eq!(SessionId::from_hex("zz"), None);
        assert_eq!(SessionId::from_hex(&"g".repeat(32)), None);
        assert_eq!(SessionId::from_hex(&"é".repeat(16)), None);
        assert_eq!(SessionId::from_hex(&"+0".repeat(16)), None, "a sign is no hex digit");
    }

    #[test]
    fn debug_shows_neither_full_id_nor_data() {
        let session = Session::new("password=hunter2");
        let shown = format!("{session:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains(&session.id().to_hex()), "{shown}");
        // The ID only as its first 4 hex digits.
        let hex = session.id().to_hex();
        assert_eq!(format!("{:?}", session.id()), format!("SessionId({}…)", &hex[..4]));
        assert!(shown.contains(&format!("SessionId({}…)", &hex[..4])), "{shown}");
    }

    #[test]
    fn renew_id_changes_only_the_id() {
        let mut session = Session::new(5u8).with_user("u", 3);
        let before = session.id();
        session.renew_id().unwrap();
        assert_ne!(session.id(), before);
        assert_eq!((session.user_id(), session.epoch(), *session.data()), (Some("u"), 3, 5));
    }
}
