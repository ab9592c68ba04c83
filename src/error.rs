//! Error types, one enum per concern.
//!
//! None of these errors ever carries key material or token bytes: their
//! `Display` text is safe to log.

use std::fmt;
use std::path::PathBuf;

/// Why a token could not be opened.
///
/// The variants exist so that a server can log and count *why* a cookie was
/// refused. A client must only ever be told "no session": do not send these
/// messages to the browser.
///
/// Every authentication failure — a changed bit, a token of another purpose,
/// a key ID relabelled to another valid key — is the single opaque variant
/// [`OpenError::Invalid`]. Expiry is reported only for tokens that
/// authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The text is longer than the sealer's configured maximum; it was not decoded.
    #[error("token is {len} bytes, more than the maximum of {max}; it was not decoded")]
    TooLarge {
        /// Length of the text that was offered.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The text is not a token: not canonical unpadded base64url, too short,
    /// or its authenticated contents do not decode as an envelope.
    #[error("token is malformed (not a sealed-session v1 token)")]
    Malformed,
    /// The version byte names a format this release does not know.
    #[error("token has unsupported format version {0}")]
    UnsupportedVersion(u8),
    /// The key ID is not in the keyring. No decryption was attempted.
    #[error("token names key {0}, which is not in the keyring; if it was removed too early, add it back as `retired` or `active`")]
    UnknownKey(u32),
    /// The key ID names a key in state `retired`. No decryption was attempted.
    #[error("token was sealed with key {0}, which is retired")]
    RetiredKey(u32),
    /// Authentication failed: the token was changed, was sealed for another
    /// purpose, or was not sealed with the key its ID names.
    #[error("token failed authentication")]
    Invalid,
    /// The token authenticated, but its data is not of the requested type
    /// (the application's session type changed since it was sealed).
    #[error("token authenticated but its session data does not decode as the requested type")]
    DataMismatch,
    /// The token's issued-at or last-activity time is later than now plus the
    /// clock leeway. A clock that reads before 1970 reads as 1970 when
    /// opening, so it ends here too: opening has no clock error of its own.
    #[error("token was issued in the future; check the clocks of your servers")]
    NotYetValid,
    /// The session is past its absolute or idle timeout.
    #[error("session expired ({0} timeout)")]
    Expired(Expiry),
}

impl OpenError {
    /// A short, stable name for the refusal (`"invalid"`, `"expired_idle"`,
    /// …), for audit logs and metrics labels: it never carries anything
    /// from the token.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            OpenError::TooLarge { .. } => "too_large",
            OpenError::Malformed => "malformed",
            OpenError::UnsupportedVersion(_) => "unsupported_version",
            OpenError::UnknownKey(_) => "unknown_key",
            OpenError::RetiredKey(_) => "retired_key",
            OpenError::Invalid => "invalid",
            OpenError::DataMismatch => "data_mismatch",
            OpenError::NotYetValid => "not_yet_valid",
            OpenError::Expired(Expiry::Absolute) => "expired_absolute",
            OpenError::Expired(Expiry::Idle) => "expired_idle",
        }
    }
}

/// Which timeout ended a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Expiry {
    /// The session reached its absolute lifetime, counted from login.
    Absolute,
    /// The session saw no activity for longer than the idle timeout.
    Idle,
}

impl fmt::Display for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Expiry::Absolute => "absolute",
            Expiry::Idle => "idle",
        })
    }
}

/// Why a session could not be sealed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The sealed token would be longer than the sealer's maximum, or (when
    /// sealing for a cookie) than the cookie leaves room for: store less in
    /// the session. The only error for a session too large.
    #[error(
        "sealed token would be {len} bytes, more than the {max} allowed (the sealer's maximum, or what fits \
         in the cookie); store less data in the session"
    )]
    TooLarge {
        /// Length the token would have had.
        len: usize,
        /// The limit it exceeds.
        max: usize,
    },
    /// The session data could not be serialized.
    #[error("session data could not be serialized: {0}")]
    Serialize(#[source] postcard::Error),
    /// A cookie was to be sealed by a sealer of another purpose: a token is
    /// bound to its cookie by the purpose, so a sealer seals only the cookie
    /// named as its purpose (else one cookie's value would open as
    /// another's).
    #[error(
        "cannot seal cookie {cookie} with a sealer whose purpose is {purpose}: the purpose must be the \
         cookie's name (SealerBuilder::purpose, or WebConfig, which derives it)"
    )]
    CookiePurpose {
        /// The cookie's name.
        cookie: String,
        /// The sealer's purpose.
        purpose: String,
    },
    /// The session has already passed its absolute expiry, or its idle
    /// timeout by more than the clock leeway; start a new one.
    #[error(
        "session is past its absolute expiry or idle timeout and cannot be sealed again; start a new session"
    )]
    Expired,
    /// The operating system's random source failed.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// The system clock reads a time before 1970.
    #[error(transparent)]
    Clock(#[from] ClockError),
    /// The AEAD refused the input (only possible for messages of many gigabytes).
    #[error("encryption failed")]
    Encrypt,
    /// A remembered session ([`Session::remembered`](crate::Session::remembered))
    /// was sealed by a sealer without remember-me timeouts.
    #[error(
        "the session is to be remembered but the sealer has no remember-me timeouts: build it with \
         SealerBuilder::remember_me"
    )]
    NoRememberMe,
    /// A device-bound session ([`Session::is_device_bound`](crate::Session::is_device_bound))
    /// was sealed by a sealer without a device-bound lifetime.
    #[error(
        "the session is device-bound but the sealer has no device-bound lifetime: build it with \
         SealerBuilder::device_bound_lifetime"
    )]
    NoDeviceBinding,
}

/// The operating system's random source could not be read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the operating system's random source failed ({0}); no key, nonce or session ID can be made")]
pub struct RandomError(pub(crate) getrandom::Error);

/// The clock reads a time that cannot be represented (before 1970).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the clock reads a time before 1970-01-01; fix the system clock")]
pub struct ClockError;

/// A sealer's configuration is inconsistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The idle timeout is longer than the absolute timeout.
    #[error("idle timeout ({idle} s) must not exceed the absolute timeout ({absolute} s)")]
    IdleExceedsAbsolute {
        /// Idle timeout in seconds.
        idle: u64,
        /// Absolute timeout in seconds.
        absolute: u64,
    },
    /// A timeout of zero or a negative duration.
    #[error("the {0} timeout must be at least one second")]
    ZeroTimeout(Expiry),
    /// The renewal interval is zero or longer than the idle timeout.
    #[error("the renewal interval must be at least one second and no longer than the idle timeout")]
    RenewalInterval,
    /// The clock leeway is negative or longer than a day.
    #[error("clock leeway must be between 0 and 86400 seconds")]
    Leeway,
    /// The maximum token length is too small to hold any token.
    #[error("maximum token length {0} is too small; it must be at least 128 bytes")]
    MaxTokenLen(usize),
    /// The purpose string is empty.
    #[error("purpose must not be empty; use the cookie name")]
    EmptyPurpose,
    /// The purpose ends in `+remember` or `+versioned`, which token
    /// version 1 appends to a purpose to say a token's profile or kind of
    /// data: under it, another sealer's tokens could open.
    #[error("purpose must not end in +remember or +versioned (token version 1 appends those); use the cookie name")]
    ReservedPurpose,
    /// The purpose string is longer than 123 bytes.
    #[error("purpose is {0} bytes long; it must be at most 123 (use the cookie name)")]
    PurposeTooLong(usize),
    /// The token format version asked to seal is not one this release
    /// writes.
    #[error("token format version {0} cannot be sealed: use 2 (the default), or 1 during a rolling upgrade")]
    TokenVersion(u8),
    /// The device-bound lifetime is zero or longer than the idle timeout,
    /// or than the remember-me idle timeout (a copy of a bound cookie would
    /// outlive the idle timeout, and the companion cookie, renewed only at
    /// each refresh, would lapse between two and end the binding), or
    /// device-bound sessions were asked of a sealer that seals token
    /// version 1 (whose prefix has no flags to say so).
    #[error(
        "the device-bound lifetime must be at least one second and no longer than the idle timeout (nor the \
         remember-me idle timeout), and needs token version 2 (the default)"
    )]
    DeviceBoundLifetime,
}

/// A master key could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The text is not canonical unpadded base64url.
    #[error("key is not valid unpadded base64url")]
    Encoding,
    /// The key does not have 32 bytes.
    #[error("key has {0} bytes; a key must have exactly 32 (generate one with MasterKey::generate)")]
    Length(usize),
}

/// Which keyring entry an error is about: its position (from 1) and, when it
/// could be read, its ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef {
    /// Position of the entry in the file or variable, counting from 1.
    pub index: usize,
    /// The entry's key ID, if it could be read.
    pub id: Option<u32>,
}

impl fmt::Display for EntryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.id {
            Some(id) => write!(f, "key entry {} (id {id})", self.index),
            None => write!(f, "key entry {}", self.index),
        }
    }
}

/// A keyring could not be built or loaded. Messages name the entry, never
/// the secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// The keyring has no keys.
    #[error("keyring has no keys; add one with state = \"primary\"")]
    Empty,
    /// No key is in state `primary`.
    #[error("keyring has no primary key; exactly one key must have state = \"primary\"")]
    NoPrimary,
    /// More than one key is in state `primary`.
    #[error("keys {first} and {second} are both primary; exactly one key may be primary")]
    MultiplePrimaries {
        /// ID of the first primary key.
        first: u32,
        /// ID of the second primary key.
        second: u32,
    },
    /// No key has this ID.
    #[error("the keyring has no key {0}")]
    NoSuchKey(u32),
    /// A key's time has no RFC 3339 form in UTC (a year past 9999), so a
    /// keyring file could not hold it.
    #[error("a time of key {0} is beyond what a keyring file can hold (RFC 3339, year 9999 in UTC)")]
    UnwritableTime(u32),
    /// The key that seals (the primary, or a key whose scheduled
    /// activation has come) cannot be retired.
    #[error(
        "key {0} is the key that seals now, or in state primary, and cannot be retired; promote or add another \
         key first"
    )]
    PrimaryRetired(u32),
    /// A key that is retired (by its state, or a retire date that has
    /// come) cannot be given a retire date: a later one would bring it back.
    #[error(
        "key {0} is retired already and refuses its tokens; a retired key never opens again (running \
         servers refuse a keyring that brings one back): add a new key instead"
    )]
    AlreadyRetired(u32),
    /// Key `id` is waiting to take over from key `predecessor`, which
    /// retires after that: retired, it would leave no key to seal from
    /// `at` on. Replace it instead
    /// ([`Keyring::with_waiting_key_replaced`](crate::Keyring::with_waiting_key_replaced)).
    #[error(
        "key {id} is waiting to take over from key {predecessor}, which retires at {}: retired, it would leave no \
         key to seal then; replace it instead (`sealed-session keyring retire FILE {id} --replace` schedules a new \
         key for the same time)",
        rfc3339(.at)
    )]
    WaitingKeyRetired {
        /// The key to retire.
        id: u32,
        /// The key that seals until key `id` takes over.
        predecessor: u32,
        /// When no key would seal.
        at: time::OffsetDateTime,
    },
    /// The key is not waiting to take over (it has no activation time, or
    /// it seals now or within the clock leeway): it cannot be replaced.
    #[error("key {0} is not waiting to take over by the schedule; retire it, or promote another key first")]
    NotWaiting(u32),
    /// A retired key (by its state, or a retire date that has come) cannot
    /// become primary.
    #[error("key {0} is retired and cannot become primary; add a new key instead")]
    RetiredKeyPromoted(u32),
    /// Two entries have the same key ID.
    #[error("key ID {0} appears more than once; key IDs must be unique")]
    DuplicateId(u32),
    /// No key ID above the highest one (4294967295) is left for a new key.
    #[error(
        "no key ID is left above {0}, and IDs are never reused: make a new keyring (`sealed-session keyring \
         init`) and move the servers to it (everyone signs in again)"
    )]
    NoFreeId(u32),
    /// A [`RotationPolicy`](crate::RotationPolicy) with a zero period (a new
    /// key at every run), a zero `keep` (each key refused the moment its
    /// successor seals, ending every session at every rotation) or a zero
    /// `lead` (a key written late would seal at once, before the file
    /// reached the other servers, which then refuse its cookies).
    #[error(
        "rotation policy with every = {every:?}, keep = {keep:?} and lead = {lead:?}: each must be above \
         zero, keep at least the longest session lifetime, and lead the time the keyring file takes to \
         reach every server"
    )]
    ZeroRotationPolicy {
        /// How long each key seals.
        every: std::time::Duration,
        /// How long a key still opens tokens after its successor took over.
        keep: std::time::Duration,
        /// How long before its activation a new key is written.
        lead: std::time::Duration,
    },
    /// An entry lacks a required field.
    #[error("{entry}: missing field `{field}`")]
    MissingField {
        /// The entry.
        entry: EntryRef,
        /// The field's name.
        field: &'static str,
    },
    /// An entry has a field this release does not know.
    #[error("{entry}: unknown field `{field}` (known: id, state, secret, created, activate_at, retire_at)")]
    UnknownField {
        /// The entry.
        entry: EntryRef,
        /// The field's name as written, or `(not shown)` if it does not
        /// look like a field name (a secret pasted as one).
        field: String,
    },
    /// A field has the wrong type or an impossible value.
    #[error("{entry}: field `{field}` must be {expected}")]
    InvalidField {
        /// The entry.
        entry: EntryRef,
        /// The field's name.
        field: &'static str,
        /// What the field must hold.
        expected: &'static str,
    },
    /// The state is not `primary`, `active` or `retired`.
    #[error("{entry}: unknown state {state:?}; use \"primary\", \"active\" or \"retired\"")]
    UnknownState {
        /// The entry.
        entry: EntryRef,
        /// The state as written.
        state: String,
    },
    /// The secret could not be decoded.
    #[error("{entry}: secret is unusable: {source}")]
    Key {
        /// The entry.
        entry: EntryRef,
        /// What is wrong with it.
        #[source]
        source: KeyError,
    },
    /// The file is not valid TOML, or its top level is not `[[key]]` tables.
    #[error(
        "keyring file is not valid: {what} (line {line}); expected [[key]] tables with id, state and secret"
    )]
    Syntax {
        /// What is wrong, without quoting the file.
        what: &'static str,
        /// Line number, from 1.
        line: usize,
    },
    /// A key's `retire_at` is not later than its `activate_at`.
    #[error("key {0} retires before it activates; its retire_at must be later than its activate_at")]
    RetiresBeforeActive(u32),
    /// Two keys activate at the same second.
    #[error(
        "keys {first} and {second} activate at the same second; give each scheduled key its own activate_at"
    )]
    SameActivation {
        /// One key.
        first: u32,
        /// The other.
        second: u32,
    },
    /// From `at` on, no key would seal.
    #[error(
        "from {} on no key would seal (all are retired or not yet active); schedule a successor that activates before the sealing key retires",
        rfc3339(.at)
    )]
    NoSealingKey {
        /// The first second with no sealing key.
        at: time::OffsetDateTime,
    },
    /// A sealing key retires before a newer key is active, so an older key
    /// would seal again.
    #[error(
        "key {id} retires at {} while it seals, before any newer key is active; activate its successor first",
        rfc3339(.at)
    )]
    RetiredBeforeSuccessor {
        /// The key that retires.
        id: u32,
        /// When.
        at: time::OffsetDateTime,
    },
    /// A retire date less than the clock leeway after the key stops
    /// sealing: servers whose clocks run behind still seal sessions under
    /// it until then, which the others would refuse at once.
    #[error(
        "key {id} would retire at {}, less than the clock leeway after it stops sealing: servers whose clocks \
         run behind seal new sessions under it until then, which the others would refuse at once; retire it \
         at {} or later",
        rfc3339(.at),
        rfc3339(.earliest)
    )]
    RetiredAtHandover {
        /// The key.
        id: u32,
        /// The retire date asked for.
        at: time::OffsetDateTime,
        /// The earliest retire date that leaves the leeway.
        earliest: time::OffsetDateTime,
    },
    /// The file can be read by its group or by others.
    #[error("keyring file {path} has mode {mode:o}, readable by group or others; run `chmod 600` on it (or allow it explicitly)")]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A directory above the file (on its path as given, or on its real
    /// path through a symbolic link) can be written by its group or by
    /// others without the sticky bit: they could replace the keyring, or a
    /// directory on its way, with keys of their own.
    #[error(
        "keyring directory {path} has mode {mode:o}: its group or others can replace the keyring file, or a \
         directory on its way, in it; run `chmod go-w` on it, or keep the keyring where only its owner writes \
         to every directory on the way (or allow it explicitly)"
    )]
    InsecureDirectory {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file, a directory on the way to it or a symbolic link followed
    /// belongs to a user other than root and the one this process runs as:
    /// that user could make it readable, replace the keys, or point the
    /// link elsewhere at any time.
    #[error(
        "keyring file, directory or link {path} belongs to uid {owner}, neither root nor the user this process \
         runs as (uid {process}), who could replace the keys in it; `chown` it to root or to uid {process} (or \
         allow other owners explicitly)"
    )]
    OtherOwner {
        /// The file or directory.
        path: PathBuf,
        /// Its owner's user ID.
        owner: u32,
        /// The effective user ID of this process.
        process: u32,
    },
    /// A new version of a followed keyring file gives a key ID another
    /// secret ([`KeyringWatcher`](crate::KeyringWatcher)).
    #[error(
        "the new keyring file gives key {id} another secret; it was refused, since every session under \
         key {id} would stop opening: a key ID is never reused, so give the new key a new ID (or restart \
         the server to load this file on purpose)"
    )]
    KeyReplaced {
        /// The key's ID.
        id: u32,
    },
    /// A new version of a followed keyring file would let a key the one in
    /// use refuses open sessions again: an older copy of the file, put back
    /// ([`KeyringWatcher`](crate::KeyringWatcher)).
    #[error(
        "the new keyring file would let retired key {id} open sessions again (an older copy of the file?); \
         it was refused, and is read again at each poll (it loads once its own dates retire the key too): \
         restart the server to load it now on purpose"
    )]
    RetiredKeyRestored {
        /// The key's ID.
        id: u32,
    },
    /// A new version of a followed keyring file gives a key already sealing
    /// sessions an `activate_at` in the future: typically an older copy put
    /// back after `keyring promote` cleared it
    /// ([`KeyringWatcher`](crate::KeyringWatcher)).
    #[error(
        "the new keyring file schedules key {id}, which already seals sessions, to start later (an older \
         copy of the file?); it was refused, since every session under key {id} would stop opening until \
         then, and is read again at each poll (it loads once that time, less the clock leeway, has come): \
         restart the server to load it now on purpose"
    )]
    KeyActivationPostponed {
        /// The key's ID.
        id: u32,
    },
    /// A new version of a followed keyring file lacks a key the one in use
    /// still opens sessions with (or will seal with): a file read before its
    /// end, or an older copy without the newest key
    /// ([`KeyringWatcher`](crate::KeyringWatcher)). Dropped, the key could
    /// not come back (its ID would be an old one).
    #[error(
        "the new keyring file drops key {id}, which is still in use (a file read before its end, or an older \
         copy?); it was refused: retire the key first (state = \"retired\", or a retire_at that has passed), \
         then drop it, or restart the server to load this file on purpose"
    )]
    KeyInUseDropped {
        /// The key's ID.
        id: u32,
    },
    /// A new version of a followed keyring file has a key the one in use
    /// lacks, with an ID no higher than one the watcher has seen: a key
    /// dropped earlier put back (an older copy of the file), or an ID used
    /// again ([`KeyringWatcher`](crate::KeyringWatcher)).
    #[error(
        "the new keyring file has key {id}, which the keyring in use lacks, though keys up to {highest} were \
         seen: an older copy of the file, or a key ID used again; it was refused: a new key takes an ID above \
         {highest} (or restart the server to load this file on purpose)"
    )]
    OldKeyId {
        /// The key's ID.
        id: u32,
        /// The highest key ID the watcher has seen.
        highest: u32,
    },
    /// The file or variable could not be read.
    #[error("cannot read keyring {path}: {source}")]
    Io {
        /// The file, or the environment variable's name.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A key could not be generated.
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// `at` as RFC 3339, for messages.
fn rfc3339(at: &time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| at.to_string())
}
