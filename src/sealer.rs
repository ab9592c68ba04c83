//! Sealing sessions into tokens and opening them again.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::Serialize;
use time::OffsetDateTime;

use crate::aead::{NONCE_LEN, TAG_LEN};
use crate::clock::{Clock, SystemClock};
use crate::cookie::CookieSpec;
use crate::error::{ClockError, ConfigError, Expiry, OpenError, SealError};
use crate::keyring::{Entry, Keyring, SharedKeyring};
use crate::random;
use crate::session::{to_datetime, Session, SessionId, Times};
use crate::token::{self, AssociatedData, EnvelopeError, Head, UntrustedToken, BASE64};

/// The default purpose, which is also the default cookie name.
pub const DEFAULT_PURPOSE: &str = "__Host-session";
/// Default absolute timeout: 12 hours.
pub const DEFAULT_ABSOLUTE_TIMEOUT: Duration = Duration::from_secs(12 * 60 * 60);
/// Default idle timeout: 30 minutes.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Default clock leeway for issued-at times in the future: 60 seconds.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// Default maximum token length: 4096 bytes of text (base64url is ASCII).
pub const DEFAULT_MAX_TOKEN_LEN: usize = 4096;

/// Why an opened token should be sealed again and sent back to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reissue {
    /// It was sealed under a key that is no longer primary.
    KeyRotation,
    /// Its last recorded activity is older than the renewal interval; sealing
    /// it again records this activity and slides the idle deadline.
    IdleRenewal,
    /// It is in an earlier token format than the sealer writes (version 1);
    /// sealing it again moves it to the current one.
    FormatUpgrade,
}

/// A session that authenticated and is within its timeouts: the only way to
/// get a [`Session`] back from a token.
#[derive(Clone)]
pub struct Opened<T> {
    session: Session<T>,
    key_id: u32,
    idle_expires_at: u64,
    reissue: Option<Reissue>,
    versioned: bool,
}

impl<T> Opened<T> {
    /// The session.
    #[must_use]
    pub fn session(&self) -> &Session<T> {
        &self.session
    }

    /// The session, to change it or seal it again.
    #[must_use]
    pub fn into_session(self) -> Session<T> {
        self.session
    }

    /// The ID of the key that sealed the token.
    #[must_use]
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// When the session ends if it sees no further activity.
    #[must_use]
    pub fn idle_expires_at(&self) -> OffsetDateTime {
        to_datetime(self.idle_expires_at)
    }

    /// Whether, and why, to seal the session again and send the new token.
    /// Sealing it again keeps its ID, issued-at time and absolute expiry.
    #[must_use]
    pub fn reissue(&self) -> Option<Reissue> {
        self.reissue
    }

    /// Marks it due for an idle renewal, unless a re-issue is due already.
    pub(crate) fn renew(&mut self) {
        self.reissue.get_or_insert(Reissue::IdleRenewal);
    }

    /// Whether the token's data was sealed as
    /// [`Versioned`](crate::versioned::Versioned): for code that opens
    /// tokens with [`Sealer::open_raw`], which does not know the data's
    /// type.
    #[must_use]
    pub fn is_versioned_data(&self) -> bool {
        self.versioned
    }
}

impl Opened<Vec<u8>> {
    /// The session of a token opened with [`Sealer::open_raw`], with its
    /// data decoded as `T`: what [`Sealer::open`] would have given. Opening
    /// the bytes once and decoding them where the type is known is how a web
    /// layer serves handlers of any data type.
    ///
    /// ```
    /// use sealed_session::{Keyring, Sealer, Session};
    ///
    /// let sealer = Sealer::builder(Keyring::generate()?).build()?;
    /// let token = sealer.seal(&Session::new(("alice".to_owned(), 7u32)))?;
    /// let raw = sealer.open_raw(&token)?;
    /// assert_eq!(raw.decode::<(String, u32)>()?.session().data().1, 7);
    /// assert!(raw.decode::<u64>().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`OpenError::DataMismatch`] if the bytes are not a `T` (nothing may
    /// be left over), or the token's data is
    /// [`Versioned`](crate::versioned::Versioned) and `T` is not, or the
    /// reverse.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<Opened<T>, OpenError> {
        if self.versioned != crate::versioned::expects_versioned::<T>() {
            return Err(OpenError::DataMismatch);
        }
        let data = match postcard::take_from_bytes::<T>(self.session.data()) {
            Ok((data, [])) => data,
            _ => return Err(OpenError::DataMismatch),
        };
        Ok(Opened {
            session: self.session.with_data(data),
            key_id: self.key_id,
            idle_expires_at: self.idle_expires_at,
            reissue: self.reissue,
            versioned: self.versioned,
        })
    }
}

/// What sealing one session produced besides its token: what the token
/// now says, so that the caller need not open it again.
struct Sealed {
    times: Times,
    key_id: u32,
    sealed_as: SealedAs,
    /// The data's own bytes (field 7 of the envelope), when asked for.
    data: Option<Vec<u8>>,
}

/// Data to seal, which encodes itself after the envelope's head.
trait SealData {
    /// Appends field 7 of the envelope to `out`.
    fn encode(&self, out: Vec<u8>) -> Result<Vec<u8>, postcard::Error>;
    /// Whether it is [`Versioned`](crate::versioned::Versioned) data.
    fn versioned(&self) -> bool;
}

/// A session's data of an application type.
struct Typed<'a, T: ?Sized>(&'a T);

impl<T: Serialize + ?Sized> SealData for Typed<'_, T> {
    fn encode(&self, out: Vec<u8>) -> Result<Vec<u8>, postcard::Error> {
        postcard::to_extend(self.0, out)
    }

    fn versioned(&self) -> bool {
        crate::versioned::is_versioned(self.0)
    }
}

/// A session's data as a token carried it ([`Sealer::open_raw`]): sealed
/// again byte for byte.
struct Encoded<'a> {
    bytes: &'a [u8],
    versioned: bool,
}

impl SealData for Encoded<'_> {
    fn encode(&self, mut out: Vec<u8>) -> Result<Vec<u8>, postcard::Error> {
        out.extend_from_slice(self.bytes);
        Ok(out)
    }

    fn versioned(&self) -> bool {
        self.versioned
    }
}

/// A session sealed for a request: the text to send (a `Set-Cookie` value
/// or a bare token), and the session as it now stands, typed and as bytes.
pub(crate) struct Issued<T> {
    pub(crate) text: String,
    pub(crate) typed: Opened<T>,
    pub(crate) raw: Opened<Vec<u8>>,
}

impl<T> fmt::Debug for Opened<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened")
            .field("session", &self.session)
            .field("key_id", &self.key_id)
            .field("reissue", &self.reissue)
            .finish()
    }
}

/// Seals sessions into tokens and opens them, with one keyring, one purpose
/// and one set of timeouts.
///
/// ```
/// use sealed_session::{Keyring, Sealer, Session};
///
/// let sealer = Sealer::builder(Keyring::generate()?).build()?;
/// let token = sealer.seal(&Session::new(("alice".to_string(), 42u32)))?;
/// let opened = sealer.open::<(String, u32)>(&token)?;
/// assert_eq!(opened.session().data().1, 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Sealer {
    keyring: SharedKeyring,
    purposes: Arc<Purposes>,
    absolute: u64,
    idle: u64,
    renew_after: u64,
    leeway: u64,
    max_len: usize,
    clock: Arc<dyn Clock>,
    /// The timeouts of remembered sessions.
    remember: Option<Timeouts>,
    /// How long a device-bound session opens after its last proof of
    /// possession, in seconds; `None`: device-bound tokens are refused.
    device_bound: Option<u64>,
    /// The token format version it seals (docs/FORMAT.md).
    version: u8,
    /// The keyring's replacement count when this sealer (or a clone) last
    /// checked its key handovers.
    handovers_checked: Arc<AtomicU64>,
}

/// The timeouts of one profile (standard or remember-me), in seconds.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    absolute: u64,
    idle: u64,
    renew_after: u64,
}

/// The purposes one sealer opens version 1 tokens under (and seals them, on
/// request), each bound into the associated data: the purpose itself, and
/// with `+remember` (remembered sessions, so that a token of one profile
/// never opens under the other's timeouts), `+versioned` (data sealed as
/// `Versioned`, so that it is never read as unversioned data or the other
/// way round), or both. Version 2 says both in its flags, which the
/// associated data binds, and uses the purpose alone.
#[derive(Debug)]
struct Purposes {
    /// Indexed by `[remembered][versioned]`.
    names: [[Box<str>; 2]; 2],
}

impl Purposes {
    fn new(purpose: &str) -> Self {
        let name = |remembered: bool, versioned: bool| {
            let remember = if remembered { REMEMBER_SUFFIX } else { "" };
            let version = if versioned { VERSIONED_SUFFIX } else { "" };
            format!("{purpose}{remember}{version}").into_boxed_str()
        };
        Self { names: [[name(false, false), name(false, true)], [name(true, false), name(true, true)]] }
    }

    fn get(&self, remembered: bool, versioned: bool) -> &str {
        let [[plain, plain_versioned], [remembered_plain, remembered_versioned]] = &self.names;
        match (remembered, versioned) {
            (false, false) => plain,
            (false, true) => plain_versioned,
            (true, false) => remembered_plain,
            (true, true) => remembered_versioned,
        }
    }
}

/// What a token's data is expected to be, which decides the purposes tried.
#[derive(Debug, Clone, Copy)]
enum DataKind {
    /// `Versioned<T>` (`true`) or another type.
    Typed { versioned: bool },
    /// Not known (raw bytes, inspection): either.
    Any,
}

/// How a token was sealed: under the remember-me profile, and with
/// `Versioned` data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SealedAs {
    remembered: bool,
    versioned: bool,
    /// Device-bound (version 2 only).
    device_bound: bool,
}

impl SealedAs {
    /// From a version 2 token's flags.
    fn from_flags(flags: u8) -> Self {
        Self {
            remembered: flags & token::FLAG_REMEMBERED != 0,
            versioned: flags & token::FLAG_VERSIONED != 0,
            device_bound: flags & token::FLAG_DEVICE_BOUND != 0,
        }
    }

    /// A version 2 token's flags.
    fn flags(self) -> u8 {
        let bit = |set: bool, flag: u8| if set { flag } else { 0 };
        bit(self.remembered, token::FLAG_REMEMBERED)
            | bit(self.versioned, token::FLAG_VERSIONED)
            | bit(self.device_bound, token::FLAG_DEVICE_BOUND)
    }
}

impl Sealer {
    /// Starts configuring a sealer that uses `keyring`.
    pub fn builder(keyring: impl Into<SharedKeyring>) -> SealerBuilder {
        SealerBuilder {
            keyring: keyring.into(),
            purpose: DEFAULT_PURPOSE.into(),
            absolute: DEFAULT_ABSOLUTE_TIMEOUT,
            idle: DEFAULT_IDLE_TIMEOUT,
            renew_after: None,
            leeway: DEFAULT_LEEWAY,
            max_len: DEFAULT_MAX_TOKEN_LEN,
            clock: Arc::new(SystemClock),
            remember: None,
            device_bound: None,
            version: token::VERSION,
        }
    }

    /// The purpose and timeouts of standard or remembered sessions; `None`
    /// for remembered ones if the sealer has no remember-me timeouts.
    /// A device-bound session keeps its profile's absolute timeout; its
    /// idle deadline is its last proof plus the device-bound lifetime, and
    /// it is never renewed for idleness (only a new proof renews it).
    fn profile(&self, sealed_as: SealedAs) -> Option<Timeouts> {
        let base = if sealed_as.remembered {
            self.remember?
        } else {
            Timeouts { absolute: self.absolute, idle: self.idle, renew_after: self.renew_after }
        };
        if sealed_as.device_bound {
            let lifetime = self.device_bound?;
            return Some(Timeouts { absolute: base.absolute, idle: lifetime, renew_after: u64::MAX });
        }
        Some(base)
    }

    /// The idle timeout and renewal interval of the session's own profile,
    /// standard or remembered (a device-bound session's companion cookie
    /// lives by it too); `None` if the sealer has no such profile.
    pub(crate) fn idle_profile(&self, remembered: bool) -> Option<(u64, u64)> {
        let sealed_as = SealedAs { remembered, versioned: false, device_bound: false };
        self.profile(sealed_as).map(|timeouts| (timeouts.idle, timeouts.renew_after))
    }

    /// The absolute timeout of the session's own profile, standard or
    /// remembered, in seconds; `None` if the sealer has no such profile.
    pub(crate) fn absolute_of(&self, remembered: bool) -> Option<u64> {
        let sealed_as = SealedAs { remembered, versioned: false, device_bound: false };
        self.profile(sealed_as).map(|timeouts| timeouts.absolute)
    }

    /// The ways a token of `kind` may have been sealed, in the order tried:
    /// the standard profile first (the common case costs one decryption).
    /// `all_profiles` tries the remember-me purposes even without
    /// remember-me timeouts (inspection only).
    fn candidates(&self, kind: DataKind, all_profiles: bool) -> impl Iterator<Item = SealedAs> + use<> {
        let remember = all_profiles || self.remember.is_some();
        let versions: &'static [bool] = match kind {
            DataKind::Typed { versioned: false } => &[false],
            DataKind::Typed { versioned: true } => &[true],
            DataKind::Any => &[false, true],
        };
        let profiles: &'static [bool] = if remember { &[false, true] } else { &[false] };
        // Bound tokens (version 2 only) are taken by a sealer with a
        // device-bound lifetime, and inspected by any.
        let bindings: &'static [bool] =
            if all_profiles || self.device_bound.is_some() { &[false, true] } else { &[false] };
        profiles.iter().flat_map(move |&remembered| {
            versions.iter().flat_map(move |&versioned| {
                bindings.iter().map(move |&device_bound| SealedAs { remembered, versioned, device_bound })
            })
        })
    }

    /// The key of `token`, refused with `err`, if a host with a newer
    /// keyring may open it, so that a keyring rollout must not cost the
    /// session: a key just above every key here, not one that was removed
    /// ([`OpenError::UnknownKey`]), or one this keyring schedules to seal
    /// later and a newer keyring may have promoted already
    /// ([`OpenError::NotYetValid`] at step 5 of docs/FORMAT.md). Nothing
    /// is authenticated: the key ID is read before anything is.
    pub(crate) fn newer_keyring_may_open(&self, token: &str, err: &OpenError) -> Option<u32> {
        match err {
            OpenError::UnknownKey(id) => self.keyring.load().may_add_later(*id).then_some(*id),
            OpenError::NotYetValid => {
                let now = opening_time(self.clock.unix_now()).saturating_add(self.leeway);
                let id = UntrustedToken::decode(token, self.max_len).ok()?.key_id();
                self.keyring.load().entry(id)?.activates_after(now).then_some(id)
            }
            _ => None,
        }
    }

    /// The keyring this sealer uses; replace its contents to rotate keys.
    #[must_use]
    pub fn keyring(&self) -> &SharedKeyring {
        &self.keyring
    }

    /// The purpose bound into every token. Remembered sessions and
    /// `Versioned` data are told apart by flags that the tag covers too (in
    /// token version 1, by `+remember` and `+versioned` appended to the
    /// purpose; docs/FORMAT.md).
    #[must_use]
    pub fn purpose(&self) -> &str {
        self.purposes.get(false, false)
    }

    /// Whether this sealer has remember-me timeouts
    /// ([`SealerBuilder::remember_me`]), and so can seal a
    /// [remembered](Session::remembered) session.
    #[must_use]
    pub fn has_remember_me(&self) -> bool {
        self.remember.is_some()
    }

    /// How long a device-bound session opens after its last proof of
    /// possession ([`SealerBuilder::device_bound_lifetime`]), if this
    /// sealer takes device-bound sessions.
    #[must_use]
    pub fn device_bound_lifetime(&self) -> Option<Duration> {
        self.device_bound.map(Duration::from_secs)
    }

    /// This sealer's keyring, clock, leeway, length limit and token version
    /// under another purpose, with one timeout (absolute and idle alike), no
    /// remember-me profile and no device-bound lifetime: for the short-lived
    /// tokens a web driver derives from its sessions (pre-session, flash).
    pub(crate) fn derived(&self, purpose: &str, timeout: Duration) -> Result<Self, ConfigError> {
        let longest =
            purpose.len() + if self.version == token::VERSION_1 { VERSIONED_SUFFIX.len() } else { 0 };
        if longest > token::MAX_PURPOSE_LEN {
            return Err(ConfigError::PurposeTooLong(longest));
        }
        let timeout = timeout.as_secs().max(1);
        Ok(Self {
            purposes: Arc::new(Purposes::new(purpose)),
            absolute: timeout,
            idle: timeout,
            // Their tokens are never sealed again for being due (only
            // sessions are): no earlier renewal.
            renew_after: timeout,
            remember: None,
            device_bound: None,
            ..self.clone()
        })
    }

    /// This sealer's keyring, clock and timeouts under another purpose: for
    /// the tokens a web driver derives from its sessions.
    pub(crate) fn with_purpose(&self, purpose: &str) -> Self {
        Self { purposes: Arc::new(Purposes::new(purpose)), ..self.clone() }
    }

    /// [`Sealer::with_purpose`] with no idle timeout (each profile's idle
    /// timeout is its absolute one): for tokens fixed once and kept for the
    /// session's whole life.
    pub(crate) fn with_purpose_without_idle(&self, purpose: &str) -> Self {
        let no_idle = |t: Timeouts| Timeouts { idle: t.absolute, ..t };
        Self { idle: self.absolute, remember: self.remember.map(no_idle), ..self.with_purpose(purpose) }
    }

    /// The CSRF token for `session`, made with the primary key: put it in
    /// forms (field `csrf_token`) or let scripts send it as `X-CSRF-Token`.
    ///
    /// Each call masks it with a fresh random pad
    /// ([`MASKED_TOKEN_LEN`](crate::csrf::MASKED_TOKEN_LEN) characters), so
    /// the text differs on every page while every copy verifies for the
    /// session's life. See [`csrf`](crate::csrf).
    ///
    /// In a web handler, ask the request's handle instead
    /// ([`SessionHandle::csrf_token`](crate::web::SessionHandle::csrf_token),
    /// or its [`sealer`](crate::web::SessionHandle::sealer)): it also keeps
    /// the response that shows the token out of shared caches, which a
    /// token made here, through a [`Verifier`](crate::Verifier), does not.
    #[must_use]
    pub fn csrf_token<T>(&self, session: &Session<T>) -> String {
        let now = opening_time(self.clock.unix_now());
        crate::csrf::token(self.keyring.load().sealing_entry(now), &session.id())
    }

    /// Checks a CSRF token sent with an unsafe request against the session:
    /// masked (as [`Sealer::csrf_token`] makes them) or unmasked.
    ///
    /// # Errors
    /// [`CsrfError::Missing`](crate::csrf::CsrfError::Missing) for an empty
    /// token, [`CsrfError::Invalid`](crate::csrf::CsrfError::Invalid) for any
    /// other mismatch.
    pub fn verify_csrf<T>(&self, session: &Session<T>, token: &str) -> Result<(), crate::csrf::CsrfError> {
        self.verify_csrf_id(session.id(), token)
    }

    /// [`Sealer::verify_csrf`] for the session `id`.
    pub(crate) fn verify_csrf_id(
        &self,
        id: crate::SessionId,
        token: &str,
    ) -> Result<(), crate::csrf::CsrfError> {
        let now = opening_time(self.clock.unix_now());
        crate::csrf::verify(&self.keyring.load(), &id, token, now, self.leeway)
    }

    /// The clock leeway, in seconds.
    pub(crate) fn leeway_secs(&self) -> u64 {
        self.leeway
    }

    /// Until when a logout of `session` must denylist it: its absolute
    /// expiry plus the clock leeway.
    pub(crate) fn denylist_until<T>(&self, session: &Session<T>) -> u64 {
        session.times().map_or(u64::MAX, |t| t.expires_at.saturating_add(self.leeway))
    }

    /// The clock this sealer reads.
    #[must_use]
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Seals `session` with the primary key, at the clock's current time.
    ///
    /// A new session gets its issued-at time and absolute expiry now. A
    /// session that came from [`Sealer::open`] keeps both, so sealing it again
    /// never extends its life; only its last-activity time moves, and only
    /// until its idle timeout and the clock leeway have passed.
    ///
    /// # Errors
    /// [`SealError::TooLarge`] if the token would exceed the maximum length,
    /// [`SealError::Expired`] for a session past its absolute expiry, or
    /// past its idle timeout by the clock leeway, or a
    /// serialization, clock or random-source failure.
    pub fn seal<T: Serialize>(&self, session: &Session<T>) -> Result<String, SealError> {
        self.seal_with_nonce(session, unix(self.clock.unix_now())?, random::array()?)
    }

    /// [`Sealer::seal`] at a given time.
    ///
    /// # Errors
    /// As [`Sealer::seal`].
    pub fn seal_at<T: Serialize>(
        &self,
        session: &Session<T>,
        now: OffsetDateTime,
    ) -> Result<String, SealError> {
        self.seal_with_nonce(session, unix(now.unix_timestamp())?, random::array()?)
    }

    /// Seals `session` into the `Set-Cookie` value that sends it as
    /// `cookie`, with `Max-Age` running to the session's absolute expiry
    /// (unless `cookie` is a browser-session cookie).
    ///
    /// ```
    /// use sealed_session::{CookieSpec, Keyring, Sealer, Session};
    ///
    /// let sealer = Sealer::builder(Keyring::generate()?).build()?;
    /// let header = sealer.seal_cookie(&Session::new(()).with_user("alice", 0), &CookieSpec::default())?;
    /// assert!(header.starts_with("__Host-session="));
    /// assert!(header.ends_with("; Path=/; Max-Age=43200; Secure; HttpOnly; SameSite=Lax"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Sealer::seal`]; [`SealError::TooLarge`] also when the token would
    /// not fit in the cookie ([`CookieSpec::max_token_len`]); nothing is sent
    /// then. [`SealError::CookiePurpose`] when the cookie is not named as
    /// this sealer's purpose.
    pub fn seal_cookie<T: Serialize>(
        &self,
        session: &Session<T>,
        cookie: &CookieSpec,
    ) -> Result<String, SealError> {
        Ok(self.seal_now(session, &Typed(session.data()), Some(cookie), false, None)?.0)
    }

    /// Seals `session` and returns the token with the session as the token
    /// now carries it (its times set), so that what the caller holds is
    /// exactly what the client will send back: nothing is opened again.
    ///
    /// # Errors
    /// As [`Sealer::seal`].
    pub fn issue<T: Serialize>(&self, session: Session<T>) -> Result<(String, Opened<T>), SealError> {
        let (token, sealed) = self.seal_now(&session, &Typed(session.data()), None, false, None)?;
        Ok((token, self.opened(session, &sealed)))
    }

    /// [`Sealer::issue`] for `cookie`: the session as the cookie now carries
    /// it, and the `Set-Cookie` value ([`Sealer::seal_cookie`]).
    ///
    /// # Errors
    /// As [`Sealer::seal_cookie`].
    pub fn issue_cookie<T: Serialize>(
        &self,
        session: Session<T>,
        cookie: &CookieSpec,
    ) -> Result<(Opened<T>, String), SealError> {
        let (header, sealed) = self.seal_now(&session, &Typed(session.data()), Some(cookie), false, None)?;
        Ok((self.opened(session, &sealed), header))
    }

    /// [`Sealer::issue_cookie`] (or [`Sealer::issue`] without a cookie),
    /// with the session as bytes too, for a web layer that keeps sessions
    /// undecoded; last active at `active_at` (see [`Self::times_at`]).
    pub(crate) fn issue_for<T: Serialize>(
        &self,
        session: Session<T>,
        cookie: Option<&CookieSpec>,
        active_at: Option<u64>,
    ) -> Result<Issued<T>, SealError> {
        let (text, mut sealed) = self.seal_now(&session, &Typed(session.data()), cookie, true, active_at)?;
        let data = sealed.data.take().unwrap_or_default();
        let raw = Opened {
            session: session.with_data(data).with_times(sealed.times),
            key_id: sealed.key_id,
            idle_expires_at: self.idle_expires_at(&sealed),
            reissue: None,
            versioned: sealed.sealed_as.versioned,
        };
        Ok(Issued { text, typed: self.opened(session, &sealed), raw })
    }

    /// Seals again a session opened with [`Sealer::open_raw`] (its data
    /// still encoded, `versioned` as it was): the text, and the session as
    /// it now stands.
    pub(crate) fn issue_raw(
        &self,
        session: Session<Vec<u8>>,
        versioned: bool,
        cookie: Option<&CookieSpec>,
        active_at: Option<u64>,
    ) -> Result<(String, Opened<Vec<u8>>), SealError> {
        let data = Encoded { bytes: session.data(), versioned };
        let (text, sealed) = self.seal_now(&session, &data, cookie, false, active_at)?;
        Ok((text, self.opened(session, &sealed)))
    }

    /// `session` as the token just sealed carries it.
    fn opened<T>(&self, session: Session<T>, sealed: &Sealed) -> Opened<T> {
        Opened {
            idle_expires_at: self.idle_expires_at(sealed),
            session: session.with_times(sealed.times),
            key_id: sealed.key_id,
            reissue: None,
            versioned: sealed.sealed_as.versioned,
        }
    }

    fn idle_expires_at(&self, sealed: &Sealed) -> u64 {
        let idle = self.profile(sealed.sealed_as).map_or(0, |timeouts| timeouts.idle);
        sealed.times.last_seen.saturating_add(idle)
    }

    /// Seals `session` now: the token, or with `cookie` the `Set-Cookie`
    /// value that carries it. Every "too large" is [`SealError::TooLarge`]:
    /// the token against the sealer's maximum, then against what the cookie
    /// leaves room for.
    fn seal_now<T>(
        &self,
        session: &Session<T>,
        data: &impl SealData,
        cookie: Option<&CookieSpec>,
        keep_data: bool,
        active_at: Option<u64>,
    ) -> Result<(String, Sealed), SealError> {
        if let Some(cookie) = cookie.filter(|cookie| cookie.name() != self.purpose()) {
            let (cookie, purpose) = (cookie.name().to_owned(), self.purpose().to_owned());
            return Err(SealError::CookiePurpose { cookie, purpose });
        }
        let now = unix(self.clock.unix_now())?;
        let (token, sealed) =
            self.seal_parts(session, data, (now, active_at), random::array()?, keep_data)?;
        let Some(cookie) = cookie else { return Ok((token, sealed)) };
        let persistent;
        let cookie = if session.is_remembered() || session.is_device_bound() {
            persistent = cookie.persistent();
            &persistent
        } else {
            cookie
        };
        let max = cookie.max_token_len();
        if token.len() > max {
            return Err(SealError::TooLarge { len: token.len(), max });
        }
        // A bound cookie goes a tenth of its lifetime before its proof runs
        // out, so that the browser asks for a new one before a request could
        // arrive with a cookie the server has just stopped opening.
        let mut until = sealed.times.expires_at;
        if let (true, Some(lifetime)) = (sealed.sealed_as.device_bound, self.device_bound) {
            until = until.min(self.idle_expires_at(&sealed).saturating_sub(lifetime / 10));
        }
        let header = cookie.header(&token, Some(until.saturating_sub(now)));
        Ok((header, sealed))
    }

    /// The times `session` is sealed with at `now`: a new session starts
    /// now; an opened one keeps its start and expiry, and was last active
    /// now, or at `active_at` if that is earlier (when the request that
    /// seals it began).
    fn times_at<T>(
        &self,
        session: &Session<T>,
        now: u64,
        active_at: Option<u64>,
    ) -> Result<Times, SealError> {
        let sealed_as =
            SealedAs { remembered: session.is_remembered(), versioned: false, device_bound: false };
        let profile = self.profile(sealed_as).ok_or(SealError::NoRememberMe)?;
        let absolute = profile.absolute;
        Ok(match session.times() {
            None => Times { issued_at: now, expires_at: now.saturating_add(absolute), last_seen: now },
            Some(t) => {
                let expires_at = t.expires_at.min(t.issued_at.saturating_add(absolute));
                if now >= expires_at {
                    return Err(SealError::Expired);
                }
                let active = active_at.map_or(now, |at| at.min(now));
                // Nor does an idle one come back to life: a session kept
                // past its idle timeout and the clock leeway (since it was
                // opened, or since the request that seals it began) is as
                // ended as the token it came from. The leeway lets a request
                // that opened it just in time finish, however slow its store
                // or its body. A bound one's idle time runs from its last
                // proof, which its own refresh moves (not checked here).
                let idle_ended = t.last_seen.saturating_add(profile.idle).saturating_add(self.leeway);
                if !session.is_device_bound() && active >= idle_ended {
                    return Err(SealError::Expired);
                }
                // A bound session's last activity is its last proof of
                // possession, which only a new proof moves.
                let last_seen = if session.is_device_bound() { t.last_seen } else { active.max(t.last_seen) };
                Times { issued_at: t.issued_at, expires_at, last_seen }
            }
        })
    }

    /// Seals with a given nonce. Crate-private: a nonce must never repeat,
    /// and only the test vectors need to choose one.
    pub(crate) fn seal_with_nonce<T: Serialize>(
        &self,
        session: &Session<T>,
        now: u64,
        nonce: [u8; 24],
    ) -> Result<String, SealError> {
        Ok(self.seal_parts(session, &Typed(session.data()), (now, None), nonce, false)?.0)
    }

    /// Seals the session's ID, user, epoch, times and profile with `data`
    /// at `now` (last active at `active_at`, see [`Self::times_at`]) with
    /// `nonce`; with `keep_data`, keeps a copy of the data's encoded bytes.
    fn seal_parts<T>(
        &self,
        session: &Session<T>,
        data: &impl SealData,
        (now, active_at): (u64, Option<u64>),
        nonce: [u8; 24],
        keep_data: bool,
    ) -> Result<(String, Sealed), SealError> {
        self.check_handovers_if_replaced();
        let times = self.times_at(session, now, active_at)?;
        let head = Head {
            issued_at: times.issued_at,
            expires_at: times.expires_at,
            last_seen: times.last_seen,
            session_id: *session.id().as_bytes(),
            user_id: session.user_id(),
            epoch: session.epoch(),
        };

        let keyring = self.keyring.load();
        let entry = keyring.sealing_entry(now);
        let key_id = entry.spec.id;
        let sealed_as = SealedAs {
            remembered: session.is_remembered(),
            versioned: data.versioned(),
            device_bound: session.is_device_bound(),
        };
        if sealed_as.device_bound && (self.device_bound.is_none() || self.version == token::VERSION_1) {
            return Err(SealError::NoDeviceBinding);
        }
        // Most sessions fit; an allocation of this size costs no more than a smaller one.
        let mut bytes = Vec::with_capacity(1024);
        bytes.push(self.version);
        if self.version != token::VERSION_1 {
            bytes.push(sealed_as.flags());
        }
        bytes.extend_from_slice(&key_id.to_be_bytes());
        let prefix_len = bytes.len();
        bytes.extend_from_slice(&nonce);
        let header_len = bytes.len();
        let bytes = postcard::to_extend(&head, bytes).map_err(SealError::Serialize)?;
        let data_at = bytes.len();
        let mut bytes = data.encode(bytes).map_err(SealError::Serialize)?;
        let data = if keep_data { Some(bytes.get(data_at..).unwrap_or_default().to_vec()) } else { None };

        // Refuse before encrypting what could not be sent.
        let len = base64_len(bytes.len() + TAG_LEN);
        if len > self.max_len {
            return Err(SealError::TooLarge { len, max: self.max_len });
        }
        let purpose = self.sealing_purpose(sealed_as);
        let (header, plaintext) = bytes.split_at_mut_checked(header_len).ok_or(SealError::Encrypt)?;
        let prefix = header.get(..prefix_len).ok_or(SealError::Encrypt)?;
        let aad = AssociatedData::new(prefix, purpose.as_bytes()).ok_or(SealError::Encrypt)?;
        let tag = entry
            .token_aead
            .encrypt_in_place_detached(&nonce, aad.as_bytes(), plaintext)
            .map_err(|_| SealError::Encrypt)?;
        bytes.extend_from_slice(&tag);
        entry.count_sealed();
        crate::metrics::sealed(key_id);
        Ok((BASE64.encode(&bytes), Sealed { times, key_id, sealed_as, data }))
    }

    /// The purpose the associated data of a token sealed `sealed_as` ends
    /// with: the purpose alone in version 2 (its flags say the rest), the
    /// derived purpose in version 1.
    fn sealing_purpose(&self, sealed_as: SealedAs) -> &str {
        if self.version == token::VERSION_1 {
            self.purposes.get(sealed_as.remembered, sealed_as.versioned)
        } else {
            self.purpose()
        }
    }

    /// The length of the token that [`Sealer::seal`] would produce for
    /// `session`, without encrypting anything: check it before adding data.
    ///
    /// # Errors
    /// [`SealError::Serialize`] if the data cannot be serialized.
    pub fn sealed_len<T: Serialize>(&self, session: &Session<T>) -> Result<usize, SealError> {
        // Times are varints: measure with the widest value any of them can take.
        let head = Head {
            issued_at: u64::MAX,
            expires_at: u64::MAX,
            last_seen: u64::MAX,
            session_id: [0; 16],
            user_id: session.user_id(),
            epoch: session.epoch(),
        };
        let envelope =
            token::encode_envelope(&head, session.data(), Vec::new()).map_err(SealError::Serialize)?;
        Ok(base64_len(token::prefix_len(self.version) + NONCE_LEN + envelope.len() + TAG_LEN))
    }

    /// Whether `session` sealed into `cookie` would fit, measured as
    /// [`Sealer::sealed_len`] does (no encryption; the times at their
    /// widest, so a session a few bytes short of the limit may be refused).
    ///
    /// # Errors
    /// [`SealError::TooLarge`] if it would not fit, or
    /// [`SealError::Serialize`].
    pub(crate) fn check_fits<T: Serialize>(
        &self,
        session: &Session<T>,
        cookie: &CookieSpec,
    ) -> Result<(), SealError> {
        let (len, max) = (self.sealed_len(session)?, self.max_len.min(cookie.max_token_len()));
        if len > max {
            return Err(SealError::TooLarge { len, max });
        }
        Ok(())
    }

    /// Opens a token at the clock's current time.
    ///
    /// # Errors
    /// An [`OpenError`] saying why the token was refused. Tell the client
    /// only "no session"; log the reason.
    pub fn open<T: DeserializeOwned>(&self, token: &str) -> Result<Opened<T>, OpenError> {
        self.open_text(token, opening_time(self.clock.unix_now()), typed::<T>(), token::decode_envelope::<T>)
    }

    /// [`Sealer::open`] at a given time.
    ///
    /// # Errors
    /// As [`Sealer::open`].
    pub fn open_at<T: DeserializeOwned>(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Opened<T>, OpenError> {
        self.open_text(token, opening_time(now.unix_timestamp()), typed::<T>(), token::decode_envelope::<T>)
    }

    /// Opens a token already decoded with [`UntrustedToken::decode`].
    ///
    /// # Errors
    /// As [`Sealer::open`], from step 5 of the validation order on.
    pub fn open_untrusted<T: DeserializeOwned>(
        &self,
        token: UntrustedToken,
        now: OffsetDateTime,
    ) -> Result<Opened<T>, OpenError> {
        // With remember-me, a failed first attempt needs the token again.
        let mut again = self.remember.is_some().then(|| token.clone());
        self.open_unix_with(
            token,
            move || again.take(),
            opening_time(now.unix_timestamp()),
            typed::<T>(),
            token::decode_envelope::<T>,
        )
    }

    /// Opens a token without knowing the application's data type: the data
    /// comes back still encoded (its postcard bytes, field 7 of
    /// docs/FORMAT.md), and [`Opened::is_versioned_data`] says whether it
    /// is [`Versioned`](crate::versioned::Versioned);
    /// [`Opened::decode`] reads it as the application's type. For web
    /// layers that serve handlers of any data type, and for tools.
    ///
    /// # Errors
    /// As [`Sealer::open`], except that [`OpenError::DataMismatch`] cannot occur.
    pub fn open_raw(&self, token: &str) -> Result<Opened<Vec<u8>>, OpenError> {
        self.open_raw_at_unix(token, opening_time(self.clock.unix_now()))
    }

    /// [`Sealer::open_raw`] at a given time.
    ///
    /// # Errors
    /// As [`Sealer::open_raw`].
    pub fn open_raw_at(&self, token: &str, now: OffsetDateTime) -> Result<Opened<Vec<u8>>, OpenError> {
        self.open_raw_at_unix(token, opening_time(now.unix_timestamp()))
    }

    fn open_raw_at_unix(&self, token: &str, now: u64) -> Result<Opened<Vec<u8>>, OpenError> {
        self.open_text(token, now, DataKind::Any, |rest| {
            token::decode_envelope_with(rest, |data| Ok(data.to_vec()))
        })
    }

    /// What a token that this keyring sealed under this sealer's purpose
    /// says about its session, whatever its profile (standard or
    /// remember-me, even if this sealer has no remember-me timeouts) and
    /// **whether or not it has expired**: for an operator ending a session
    /// from its token (`sealed-session revoke --session-token`), where
    /// expiry does not matter and the server's timeouts are not known.
    /// Never use it to admit a request: it checks steps 1 to 7 of
    /// docs/FORMAT.md's validation order and none of the times.
    ///
    /// # Errors
    /// As [`Sealer::open`], without [`OpenError::NotYetValid`],
    /// [`OpenError::Expired`] and [`OpenError::DataMismatch`].
    pub fn inspect(&self, token: &str) -> Result<Inspection, OpenError> {
        let mut untrusted = UntrustedToken::decode(token, self.max_len)?;
        let keyring = self.keyring.load();
        let again = || UntrustedToken::decode(token, self.max_len).ok();
        let now = opening_time(self.clock.unix_now());
        let sealed_as =
            self.authenticate(&keyring, &mut untrusted, again, self.candidates(DataKind::Any, true), now)?;
        let (_, _, plaintext, _) = untrusted.parts_mut().ok_or(OpenError::Malformed)?;
        let (head, ()) =
            token::decode_envelope_with(plaintext, |_| Ok(())).map_err(|_| OpenError::Malformed)?;
        Ok(Inspection {
            session_id: SessionId::from_bytes(head.session_id),
            user_id: head.user_id,
            epoch: head.epoch,
            issued_at: to_datetime(head.issued_at),
            expires_at: to_datetime(head.expires_at),
            last_seen: to_datetime(head.last_seen),
            key_id: untrusted.key_id(),
            remembered: sealed_as.remembered,
            versioned: sealed_as.versioned,
            device_bound: sealed_as.device_bound,
        })
    }

    /// Decodes `text` and opens it; decodes it again only for a further
    /// attempt under another purpose.
    fn open_text<T>(
        &self,
        text: &str,
        now: u64,
        kind: DataKind,
        decode: impl FnOnce(&[u8]) -> Result<(Head<String>, T), EnvelopeError>,
    ) -> Result<Opened<T>, OpenError> {
        let token = UntrustedToken::decode(text, self.max_len)?;
        self.open_unix_with(token, || UntrustedToken::decode(text, self.max_len).ok(), now, kind, decode)
    }

    /// Finds the way `token` was sealed among `candidates`, in order: the
    /// key its ID names (never another, and not one retired at `now`), and
    /// the first purpose under which it authenticates. `again()` gives the token as it arrived for each
    /// further attempt (a failed one leaves the buffer unusable); on success
    /// `token` holds the plaintext.
    fn authenticate(
        &self,
        keyring: &Keyring,
        token: &mut UntrustedToken,
        mut again: impl FnMut() -> Option<UntrustedToken>,
        mut candidates: impl Iterator<Item = SealedAs>,
        now: u64,
    ) -> Result<SealedAs, OpenError> {
        let key_id = token.key_id();
        let entry = keyring.entry(key_id).ok_or(OpenError::UnknownKey(key_id))?;
        if entry.refuses_at(now) {
            return Err(OpenError::RetiredKey(key_id));
        }
        if let Some(flags) = token.flags() {
            // Version 2 says how it was sealed: one decryption, if this
            // opener takes that kind of token at all.
            let sealed_as = SealedAs::from_flags(flags);
            if !candidates.any(|candidate| candidate == sealed_as) || !decrypt(entry, self.purpose(), token)?
            {
                return Err(OpenError::Invalid);
            }
            entry.count_opened();
            return Ok(sealed_as);
        }
        // Version 1 has no flags, and so no bound tokens.
        for (attempt, sealed_as) in candidates.filter(|candidate| !candidate.device_bound).enumerate() {
            if attempt > 0 {
                *token = again().ok_or(OpenError::Invalid)?;
            }
            if decrypt(entry, self.purposes.get(sealed_as.remembered, sealed_as.versioned), token)? {
                entry.count_opened();
                return Ok(sealed_as);
            }
        }
        Err(OpenError::Invalid)
    }

    /// Opens `token`, sealed in one of the ways `kind` allows (see
    /// [`Sealer::authenticate`]), and checks its times.
    fn open_unix_with<T>(
        &self,
        mut token: UntrustedToken,
        again: impl FnMut() -> Option<UntrustedToken>,
        now: u64,
        kind: DataKind,
        decode: impl FnOnce(&[u8]) -> Result<(Head<String>, T), EnvelopeError>,
    ) -> Result<Opened<T>, OpenError> {
        let key_id = token.key_id();
        let version = token.version();
        let keyring = self.keyring.load();
        // A key scheduled to seal later opens nothing before its time, less
        // the leeway (a host whose clock runs further ahead seals tokens
        // that are not yet valid here anyway): a copy of the keyring file,
        // which holds it days ahead, forges no session meanwhile.
        if keyring.entry(key_id).is_some_and(|entry| entry.activates_after(now.saturating_add(self.leeway))) {
            return Err(OpenError::NotYetValid);
        }
        let sealed_as = self.authenticate(&keyring, &mut token, again, self.candidates(kind, false), now)?;
        let profile = self.profile(sealed_as).ok_or(OpenError::Invalid)?;

        let (_, _, plaintext, _) = token.parts_mut().ok_or(OpenError::Malformed)?;
        let (head, data) = decode(plaintext).map_err(|err| match err {
            EnvelopeError::Head => OpenError::Malformed,
            EnvelopeError::Data => OpenError::DataMismatch,
        })?;
        let times =
            Times { issued_at: head.issued_at, expires_at: head.expires_at, last_seen: head.last_seen };
        let latest_allowed = now.saturating_add(self.leeway);
        if times.issued_at > latest_allowed || times.last_seen > latest_allowed {
            return Err(OpenError::NotYetValid);
        }
        if now >= times.expires_at || now >= times.issued_at.saturating_add(profile.absolute) {
            return Err(OpenError::Expired(Expiry::Absolute));
        }
        let idle_expires_at = times.last_seen.saturating_add(profile.idle);
        if now >= idle_expires_at {
            return Err(OpenError::Expired(Expiry::Idle));
        }

        // A token under a key scheduled to start sealing later is kept: it
        // came from a host whose clock runs ahead, and sealing it back under
        // the older key would move the cookie to and fro at every handover.
        let rotated = key_id != keyring.sealing_entry(now).spec.id
            && !keyring.entry(key_id).is_some_and(|entry| entry.activates_after(now));
        let reissue = if rotated {
            Some(Reissue::KeyRotation)
        } else if version < self.version {
            Some(Reissue::FormatUpgrade)
        } else if now.saturating_sub(times.last_seen) >= profile.renew_after {
            Some(Reissue::IdleRenewal)
        } else {
            None
        };
        let session = Session::from_parts(
            SessionId::from_bytes(head.session_id),
            head.user_id,
            head.epoch,
            data,
            times,
            sealed_as.remembered,
            sealed_as.device_bound,
        );
        Ok(Opened { session, key_id, idle_expires_at, reissue, versioned: sealed_as.versioned })
    }
}

/// The data kind of `T`: `Versioned` or not.
fn typed<T: DeserializeOwned>() -> DataKind {
    DataKind::Typed { versioned: crate::versioned::expects_versioned::<T>() }
}

/// What [`Sealer::inspect`] read from an authenticated token, whether or not
/// it has expired. It holds no session data and cannot become a session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Inspection {
    /// The session's ID.
    pub session_id: SessionId,
    /// The user, if the session is signed in.
    pub user_id: Option<String>,
    /// The user's revocation epoch when the session began.
    pub epoch: u64,
    /// When the session began.
    pub issued_at: OffsetDateTime,
    /// The session's absolute expiry.
    pub expires_at: OffsetDateTime,
    /// Its last recorded activity.
    pub last_seen: OffsetDateTime,
    /// The key that sealed it.
    pub key_id: u32,
    /// Whether it was sealed as a remember-me session.
    pub remembered: bool,
    /// Whether its data was sealed as
    /// [`Versioned`](crate::versioned::Versioned).
    pub versioned: bool,
    /// Whether it is device-bound (DBSC): its `last_seen` is its last proof
    /// of possession.
    pub device_bound: bool,
}

/// Decrypts `token` in place under `purpose` with `entry`'s key; `false`
/// if it does not authenticate (the buffer is then unusable).
fn decrypt(entry: &Entry, purpose: &str, token: &mut UntrustedToken) -> Result<bool, OpenError> {
    let (prefix, nonce, ciphertext, tag) = token.parts_mut().ok_or(OpenError::Malformed)?;
    // A purpose too long for the associated data seals nothing: no token
    // authenticates under it.
    let Some(aad) = AssociatedData::new(prefix, purpose.as_bytes()) else { return Ok(false) };
    Ok(entry.token_aead.decrypt_in_place_detached(nonce, aad.as_bytes(), ciphertext, tag).is_ok())
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("keyring", &self.keyring)
            .field("purpose", &self.purpose())
            .field("absolute_secs", &self.absolute)
            .field("idle_secs", &self.idle)
            .field("renew_after_secs", &self.renew_after)
            .field("remember", &self.remember)
            .field("device_bound_secs", &self.device_bound)
            .field("leeway_secs", &self.leeway)
            .field("max_token_len", &self.max_len)
            .finish_non_exhaustive()
    }
}

fn unix(now: i64) -> Result<u64, ClockError> {
    u64::try_from(now).map_err(|_| ClockError)
}

/// The time a token is opened at. A clock before 1970 reads as 1970: every
/// token is then [`OpenError::NotYetValid`], whose message says to check
/// the clocks. Opening fails closed without a clock error of its own.
pub(crate) fn opening_time(now: i64) -> u64 {
    u64::try_from(now).unwrap_or(0)
}

/// Length of unpadded base64 for `n` bytes.
fn base64_len(n: usize) -> usize {
    n / 3 * 4 + [0, 2, 3].get(n % 3).copied().unwrap_or(0)
}

/// Configures a [`Sealer`]; every setting has a safe default.
#[must_use = "call build() to get a Sealer"]
pub struct SealerBuilder {
    keyring: SharedKeyring,
    pub(crate) purpose: String,
    absolute: Duration,
    idle: Duration,
    renew_after: Option<Duration>,
    leeway: Duration,
    max_len: usize,
    clock: Arc<dyn Clock>,
    remember: Option<(Duration, Duration)>,
    device_bound: Option<Duration>,
    version: u8,
}

impl SealerBuilder {
    /// The purpose bound into every token's associated data; by default
    /// [`DEFAULT_PURPOSE`]. Use the cookie's name, so that a token cannot be
    /// replayed as another cookie.
    pub fn purpose(mut self, purpose: impl Into<String>) -> Self {
        self.purpose = purpose.into();
        self
    }

    /// Maximum session lifetime from login, whatever the activity; by
    /// default 12 hours.
    pub fn absolute_timeout(mut self, timeout: Duration) -> Self {
        self.absolute = timeout;
        self
    }

    /// Maximum time without activity; by default 30 minutes. Must not
    /// exceed the absolute timeout.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle = timeout;
        self
    }

    /// Remember-me timeouts: a session marked
    /// [`Session::remembered`] before it is first sealed lives up to
    /// `absolute` from login and `idle` without activity, instead of the
    /// standard timeouts, and goes out in a persistent cookie (with
    /// `Max-Age`) even when the cookie is otherwise a browser-session one.
    /// Remembered tokens say so in a flag the tag covers (in token version
    /// 1, the purpose with `+remember` appended), so that a standard token
    /// never opens under these longer timeouts. Off by default (remembered
    /// sessions cannot be sealed).
    pub fn remember_me(mut self, absolute: Duration, idle: Duration) -> Self {
        self.remember = Some((absolute, idle));
        self
    }

    /// Device-bound sessions (DBSC, see [`dbsc`](crate::dbsc)): a session
    /// the browser bound to a key it keeps opens for at most `lifetime`
    /// after its last proof of possession, and goes out in a cookie with
    /// that `Max-Age`, so that a copy of it stops working soon; the browser
    /// proves possession again for a new one. Bound tokens say so in their
    /// flags (token version 2 only). Off by default: a sealer without it
    /// refuses bound tokens. [`WebConfigBuilder::device_bound_sessions`](crate::web::WebConfigBuilder::device_bound_sessions)
    /// sets it.
    pub fn device_bound_lifetime(mut self, lifetime: Duration) -> Self {
        self.device_bound = Some(lifetime);
        self
    }

    /// How long after its last recorded activity an opened session asks to
    /// be sealed again ([`Reissue::IdleRenewal`]); by default a quarter of
    /// the idle timeout. (Remembered sessions renew at a quarter of the
    /// remember-me idle timeout, whatever this says.) A session is then
    /// ended by inactivity after between `idle - renew_after` and `idle`.
    /// An interval as long as the idle timeout turns the sealer's idle
    /// renewal off (a token is refused for idleness at the age it would be
    /// due): a session used unchanged is then ended `idle` after it was
    /// last sealed, unless something else seals it again (a web driver with
    /// a session registry re-issues a session once per interval counted
    /// from its login).
    pub fn renew_after(mut self, interval: Duration) -> Self {
        self.renew_after = Some(interval);
        self
    }

    /// How far in the future an issued-at time may lie, for clock skew
    /// between servers; by default 60 seconds. Never extends the absolute
    /// expiry (a request that opened a session just before its idle
    /// deadline may seal it up to one leeway after: docs/FORMAT.md, §6).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Longest token text accepted or produced; by default 4096 bytes (ASCII characters).
    /// Longer input is refused before it is decoded.
    pub fn max_token_len(mut self, max: usize) -> Self {
        self.max_len = max;
        self
    }

    /// The clock to read; by default the system clock.
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The token format version to seal: 2 (the default, [`token::VERSION`])
    /// or 1. Both are always opened. Seal version 1 only while a rolling
    /// upgrade still has servers of a release that opens version 1 alone;
    /// a server sealing version 2 asks to re-issue version 1 tokens
    /// ([`Reissue::FormatUpgrade`]).
    pub fn token_version(mut self, version: u8) -> Self {
        self.version = version;
        self
    }

    /// Checks the configuration and builds the sealer.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the inconsistent setting.
    pub fn build(self) -> Result<Sealer, ConfigError> {
        let (absolute, idle) = timeouts(self.absolute, self.idle)?;
        let renew_after = self.renew_after.map_or((idle / 4).max(1), |d| d.as_secs());
        if renew_after == 0 || renew_after > idle {
            return Err(ConfigError::RenewalInterval);
        }
        let leeway = self.leeway.as_secs();
        if leeway > 86_400 {
            return Err(ConfigError::Leeway);
        }
        if self.max_len < 128 {
            return Err(ConfigError::MaxTokenLen(self.max_len));
        }
        if self.purpose.is_empty() {
            return Err(ConfigError::EmptyPurpose);
        }
        // In version 1, "p+remember" would be the purpose of p's remembered
        // tokens, and its tokens would open as those (and theirs as its).
        if [REMEMBER_SUFFIX, VERSIONED_SUFFIX].iter().any(|suffix| self.purpose.ends_with(suffix)) {
            return Err(ConfigError::ReservedPurpose);
        }
        if self.version != token::VERSION && self.version != token::VERSION_1 {
            return Err(ConfigError::TokenVersion(self.version));
        }
        let remember = match self.remember {
            Some((absolute, idle)) => {
                let (absolute, idle) = timeouts(absolute, idle)?;
                Some(Timeouts { absolute, idle, renew_after: (idle / 4).max(1) })
            }
            None => None,
        };
        // A bound session's idle deadline is its last proof plus the
        // lifetime, in either profile: no longer than either idle timeout.
        let shortest_idle = remember.map_or(idle, |remember| remember.idle.min(idle));
        let device_bound = match self.device_bound {
            Some(lifetime)
                if lifetime.as_secs() == 0
                    || lifetime.as_secs() > shortest_idle
                    || self.version == token::VERSION_1 =>
            {
                return Err(ConfigError::DeviceBoundLifetime)
            }
            lifetime => lifetime.map(|l| l.as_secs()),
        };
        // The longest purpose this sealer seals under: in version 1, with
        // the suffixes that say the profile and the kind of data.
        let suffix = if self.version == token::VERSION_1 {
            (if remember.is_some() { REMEMBER_SUFFIX.len() } else { 0 }) + VERSIONED_SUFFIX.len()
        } else {
            0
        };
        let longest = self.purpose.len() + suffix;
        if longest > token::MAX_PURPOSE_LEN {
            return Err(ConfigError::PurposeTooLong(longest));
        }
        // Read before the keyring that is checked below.
        let replacements = self.keyring.replacements();
        let sealer = Sealer {
            keyring: self.keyring,
            purposes: Arc::new(Purposes::new(&self.purpose)),
            absolute,
            idle,
            renew_after,
            leeway,
            max_len: self.max_len,
            clock: self.clock,
            remember,
            device_bound,
            version: self.version,
            handovers_checked: Arc::new(AtomicU64::new(replacements)),
        };
        sealer.warn_of_short_handovers();
        Ok(sealer)
    }
}

impl Sealer {
    /// Checks the key handovers of a keyring replaced since this sealer
    /// (or a clone) last checked them, as [`SealerBuilder::build`] does: at
    /// the first seal after each replacement (a watcher's reload). Returns
    /// whether it checked.
    fn check_handovers_if_replaced(&self) -> bool {
        let seen = self.keyring.replacements();
        // Every seal reads; only the first after a change writes.
        if self.handovers_checked.load(Ordering::Relaxed) == seen {
            return false;
        }
        if self.handovers_checked.swap(seen, Ordering::Relaxed) == seen {
            return false; // another thread's seal checked it
        }
        self.warn_of_short_handovers();
        true
    }

    /// Logs a warning for each key that retires sooner after its successor
    /// takes over than this sealer's longest session lasts: the sessions it
    /// sealed just before the handover would end early, at its retirement.
    /// (Accepted, not refused: a keyring is shared by sealers of different
    /// lifetimes, and an operator may mean it.)
    fn warn_of_short_handovers(&self) {
        let longest = self.longest_session();
        for (key, successor, overlap) in
            short_handovers(&self.keyring.current(), longest, self.clock.unix_now())
        {
            tracing::warn!(
                key,
                successor,
                overlap_secs = overlap,
                longest_session_secs = longest,
                "a key retires sooner after its successor takes over than the longest session lasts: \
                 sessions it sealed just before the handover will end early; retire it later"
            );
        }
    }

    /// The longest absolute timeout of its sessions (remember-me included),
    /// in seconds.
    fn longest_session(&self) -> i64 {
        let longest = self.remember.map_or(self.absolute, |r| r.absolute.max(self.absolute));
        i64::try_from(longest).unwrap_or(i64::MAX)
    }
}

/// The handovers of `keyring`'s schedule, not yet past at `now`, where the
/// key handing over retires less than `longest` seconds after its
/// successor takes over: (key, successor, seconds between).
fn short_handovers(keyring: &Keyring, longest: i64, now: i64) -> Vec<(u32, u32, i64)> {
    let mut short = Vec::new();
    for pair in keyring.sealing_periods().windows(2) {
        let [old, new] = pair else { continue };
        let retire = keyring.entry(old.key_id).and_then(|entry| entry.spec.retire_at);
        let (Some(handover), Some(retire)) = (new.from, retire) else { continue };
        let overlap = (retire - handover).whole_seconds();
        if retire.unix_timestamp() > now && overlap < longest {
            short.push((old.key_id, new.key_id, overlap));
        }
    }
    short
}

/// Appended to the purpose for remembered sessions.
const REMEMBER_SUFFIX: &str = "+remember";
/// Appended to the purpose (after [`REMEMBER_SUFFIX`]) for `Versioned` data.
const VERSIONED_SUFFIX: &str = "+versioned";

/// An absolute and an idle timeout in seconds, checked: neither zero, idle
/// not longer than absolute.
fn timeouts(absolute: Duration, idle: Duration) -> Result<(u64, u64), ConfigError> {
    let (absolute, idle) = (absolute.as_secs(), idle.as_secs());
    if absolute == 0 {
        return Err(ConfigError::ZeroTimeout(Expiry::Absolute));
    }
    if idle == 0 {
        return Err(ConfigError::ZeroTimeout(Expiry::Idle));
    }
    if idle > absolute {
        return Err(ConfigError::IdleExceedsAbsolute { idle, absolute });
    }
    Ok((absolute, idle))
}

impl fmt::Debug for SealerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealerBuilder")
            .field("keyring", &self.keyring)
            .field("purpose", &self.purpose)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session measured at the limit exactly fits; a byte over does not.
    #[test]
    fn a_session_at_the_longest_length_fits_and_one_a_byte_over_does_not() {
        let session = Session::new("x".repeat(100));
        let sealer =
            |max: usize| Sealer::builder(Keyring::generate().unwrap()).max_token_len(max).build().unwrap();
        let len = sealer(DEFAULT_MAX_TOKEN_LEN).sealed_len(&session).unwrap();
        let cookie = CookieSpec::default();
        assert!(sealer(len).check_fits(&session, &cookie).is_ok());
        let over = sealer(len - 1).check_fits(&session, &cookie);
        assert!(
            matches!(over, Err(SealError::TooLarge { len: l, max }) if l == len && max == len - 1),
            "{over:?}"
        );
    }

    /// A device-bound session is sealed only by a sealer with a bound
    /// lifetime and a token version that carries the flag (2): version 1
    /// has no place for it, and would seal it as an ordinary session.
    #[test]
    fn a_bound_session_is_sealed_only_with_a_bound_lifetime_and_version_2() {
        let bound = Duration::from_secs(600);
        let sealer = |lifetime: Option<Duration>, version: u8| {
            let mut builder = Sealer::builder(Keyring::generate().unwrap()).token_version(version);
            if let Some(lifetime) = lifetime {
                builder = builder.device_bound_lifetime(lifetime);
            }
            builder.build()
        };
        let mut session = Session::new(());
        session.set_device_bound(true);
        let sealed = |sealer: Result<Sealer, ConfigError>| sealer.map(|s| s.seal(&session).map(drop));
        assert!(matches!(sealed(sealer(Some(bound), 2)), Ok(Ok(()))));
        assert!(matches!(sealed(sealer(None, 2)), Ok(Err(SealError::NoDeviceBinding))));
        assert!(matches!(sealed(sealer(None, 1)), Ok(Err(SealError::NoDeviceBinding))));
        // Such a sealer is not even built.
        assert!(matches!(sealer(Some(bound), 1), Err(ConfigError::DeviceBoundLifetime)));
    }

    /// A bound session is idle from its last proof plus the lifetime, so a
    /// lifetime longer than either profile's idle timeout (the remembered
    /// one's too) is refused: a remembered bound session would otherwise
    /// open past its idle timeout.
    #[test]
    fn the_device_bound_lifetime_fits_both_idle_timeouts() {
        let minutes = |n: u64| Duration::from_secs(n * 60);
        let sealer = |lifetime: u64, idle: u64, remember_idle: Option<u64>| {
            let mut builder = Sealer::builder(Keyring::generate().unwrap())
                .idle_timeout(minutes(idle))
                .device_bound_lifetime(minutes(lifetime));
            if let Some(remember_idle) = remember_idle {
                builder = builder.remember_me(minutes(60 * 24), minutes(remember_idle));
            }
            builder.build().map(drop)
        };
        assert!(sealer(10, 10, None).is_ok());
        assert!(matches!(sealer(11, 10, None), Err(ConfigError::DeviceBoundLifetime)));
        assert!(sealer(5, 30, Some(5)).is_ok());
        assert!(matches!(sealer(10, 30, Some(5)), Err(ConfigError::DeviceBoundLifetime)));
        assert!(matches!(sealer(31, 30, Some(60)), Err(ConfigError::DeviceBoundLifetime)));
    }

    #[test]
    fn a_handover_shorter_than_the_longest_session_is_found() {
        use crate::{KeySpec, KeyState, MasterKey};
        const T0: i64 = 1_800_000_000;
        let at = |unix: i64| time::OffsetDateTime::from_unix_timestamp(unix).unwrap();
        let spec =
            |id: u8, state| KeySpec::new(u32::from(id), state, MasterKey::from_slice(&[id; 32]).unwrap());
        // Key 2 takes over at T0 + 100; key 1 retires at T0 + 1000.
        let keyring = Keyring::new([
            spec(1, KeyState::Primary).retire_at(at(T0 + 1000)),
            spec(2, KeyState::Active).activate_at(at(T0 + 100)),
        ])
        .unwrap();
        assert_eq!(short_handovers(&keyring, 900, T0), [], "as long as the longest session");
        assert_eq!(short_handovers(&keyring, 901, T0), [(1, 2, 900)]);
        assert_eq!(short_handovers(&keyring, 901, T0 + 999), [(1, 2, 900)], "not yet retired");
        assert_eq!(short_handovers(&keyring, 901, T0 + 1000), [], "a key already retired");
        let unscheduled = Keyring::new([spec(1, KeyState::Primary), spec(2, KeyState::Active)]).unwrap();
        assert_eq!(short_handovers(&unscheduled, i64::MAX, T0), []);
    }

    #[test]
    fn the_longest_session_counts_remember_me() {
        let sealer = |remember: Option<u64>| {
            let mut builder = Sealer::builder(Keyring::generate().unwrap())
                .absolute_timeout(std::time::Duration::from_secs(600))
                .idle_timeout(std::time::Duration::from_secs(600));
            if let Some(absolute) = remember {
                builder = builder.remember_me(
                    std::time::Duration::from_secs(absolute),
                    std::time::Duration::from_secs(600),
                );
            }
            builder.build().unwrap()
        };
        assert_eq!(sealer(None).longest_session(), 600);
        assert_eq!(sealer(Some(3600)).longest_session(), 3600);
    }

    #[test]
    fn key_handovers_are_checked_again_after_the_keyring_is_replaced() {
        let shared = crate::SharedKeyring::new(Keyring::generate().unwrap());
        let sealer = Sealer::builder(shared.clone()).build().unwrap();
        let twin = sealer.with_purpose("other");
        assert!(!sealer.check_handovers_if_replaced(), "checked at build");
        let session = crate::Session::new(());
        sealer.seal(&session).unwrap();
        shared.replace(Keyring::generate().unwrap());
        // The first seal after a reload checks it, for the clones too.
        twin.seal(&session).unwrap();
        assert!(!sealer.check_handovers_if_replaced(), "the seal checked the new keyring");
        shared.replace(Keyring::generate().unwrap());
        assert!(sealer.check_handovers_if_replaced());
        assert!(!twin.check_handovers_if_replaced(), "once per keyring");
    }

    #[test]
    fn base64_len_matches_the_encoder() {
        for n in 0..100 {
            assert_eq!(base64_len(n), BASE64.encode(vec![0u8; n]).len());
        }
    }
}
