//! The keyring: one primary key that seals, older keys that still open, and
//! retired keys that are refused by name.
//!
//! # Rotation
//!
//! Keys rotate in three steps (two deployments, then a wait) so that no
//! server ever meets a token sealed with a key it does not know:
//!
//! 1. **Add** the new key as `active` on every server. Servers open tokens
//!    sealed with it but do not yet seal with it.
//! 2. **Promote** it to `primary` (and the old primary to `active`) on every
//!    server. New tokens use the new key; tokens under the old key still open
//!    and [`Opened::reissue`](crate::Opened::reissue) asks for them to be
//!    sealed again under the new one.
//! 3. **Retire** the old key once the maximum session lifetime (the absolute
//!    timeout) has passed since step 2. [`Keyring::usage`] shows how many
//!    tokens each key still opens, so an operator can see it drain.
//!
//! Each step is a new keyring swapped into a [`SharedKeyring`] while the
//! server runs.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use hkdf::Hkdf;
use sha2::Sha256;
use time::OffsetDateTime;
use zeroize::{Zeroize as _, Zeroizing};

mod file;
mod schedule;
mod shared;
mod text;
#[cfg(feature = "watch")]
mod watch;

pub use file::{LoadOptions, MAX_KEYRING_FILE_LEN};
pub use schedule::{RotationPolicy, SealingPeriod};
pub use shared::SharedKeyring;
#[cfg(feature = "watch")]
pub use watch::{KeyringWatcher, KeyringWatcherBuilder, WatchEvent};

use crate::aead::XChaCha20Poly1305;
use crate::error::KeyringError;
use crate::key::MasterKey;

/// HKDF `info` for the token AEAD key (docs/FORMAT.md, section 1).
pub(crate) const TOKEN_KEY_INFO: &[u8] = b"sealed-session v1 token xchacha20poly1305";
/// HKDF `info` for the CSRF HMAC key (docs/FORMAT.md, section 1).
pub(crate) const CSRF_KEY_INFO: &[u8] = b"sealed-session v1 csrf hmac-sha256";

/// What a key in the keyring may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum KeyState {
    /// Seals new tokens and opens old ones. Exactly one key is primary.
    Primary,
    /// Opens tokens but does not seal: a key being rolled out or drained.
    Active,
    /// Known but refused: tokens under it fail with
    /// [`OpenError::RetiredKey`](crate::OpenError::RetiredKey).
    Retired,
}

impl KeyState {
    /// The state's name in keyring files: `primary`, `active` or `retired`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Primary => "primary",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
        }
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not `primary`, `active` or `retired`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown key state; use \"primary\", \"active\" or \"retired\"")]
pub struct UnknownKeyState;

impl FromStr for KeyState {
    type Err = UnknownKeyState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "primary" => Ok(KeyState::Primary),
            "active" => Ok(KeyState::Active),
            "retired" => Ok(KeyState::Retired),
            _ => Err(UnknownKeyState),
        }
    }
}

/// One key of a keyring, as an operator describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeySpec {
    /// The key ID written into every token this key seals.
    pub id: u32,
    /// What the key may do.
    pub state: KeyState,
    /// The secret.
    pub key: MasterKey,
    /// When the key was made, for operators; not used by sealing.
    pub created: Option<OffsetDateTime>,
    /// For an `active` key: when it starts sealing (see
    /// [`Keyring`]'s schedule). Ignored for the primary key, which seals
    /// until a scheduled key activates; to the second (a keyring drops
    /// any fraction).
    pub activate_at: Option<OffsetDateTime>,
    /// When the key stops opening tokens, as if retired then; to the second
    /// (a keyring drops any fraction).
    pub retire_at: Option<OffsetDateTime>,
}

impl KeySpec {
    /// Key `id` in `state`, with no creation time.
    #[must_use]
    pub fn new(id: u32, state: KeyState, key: MasterKey) -> Self {
        Self { id, state, key, created: None, activate_at: None, retire_at: None }
    }

    /// The same key, noting when it was made.
    #[must_use]
    pub fn created(mut self, created: OffsetDateTime) -> Self {
        self.created = Some(created);
        self
    }

    /// The same key, starting to seal at `at` (for an `active` key).
    #[must_use]
    pub fn activate_at(mut self, at: OffsetDateTime) -> Self {
        self.activate_at = Some(at);
        self
    }

    /// The same key, retired from `at` on.
    #[must_use]
    pub fn retire_at(mut self, at: OffsetDateTime) -> Self {
        self.retire_at = Some(at);
        self
    }
}

/// Public facts about one key: no secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyUsage {
    /// The key ID.
    pub id: u32,
    /// Its state.
    pub state: KeyState,
    /// When it was made, if known.
    pub created: Option<OffsetDateTime>,
    /// Tokens sealed with it since the process started.
    pub sealed: u64,
    /// Tokens opened with it since the process started.
    pub opened: u64,
}

/// A key with its derived subkeys and counters.
pub(crate) struct Entry {
    pub(crate) spec: KeySpec,
    pub(crate) token_aead: XChaCha20Poly1305,
    pub(crate) csrf_key: Zeroizing<[u8; 32]>,
    /// For a scheduled `active` key: when it starts sealing, in Unix seconds.
    activate: Option<i64>,
    /// From this Unix second on the key refuses: `i64::MIN` for a retired
    /// key, `i64::MAX` for one with no retire date.
    retire: i64,
    sealed: AtomicU64,
    opened: AtomicU64,
}

impl Entry {
    fn new(spec: KeySpec) -> Self {
        let (mut prk, hkdf) = Hkdf::<Sha256>::extract(None, spec.key.expose());
        // The HMAC state inside the HKDF wipes itself on drop (the zeroize
        // features of hmac and sha2); the PRK it hands back is wiped here.
        crate::wipe::type_wiped_on_drop::<<Sha256 as hmac::digest::block_api::CoreProxy>::Core>();
        prk.as_mut_slice().zeroize();
        let mut token_key = Zeroizing::new([0u8; 32]);
        let mut csrf_key = Zeroizing::new([0u8; 32]);
        // 32 bytes is far below HKDF-SHA256's limit of 8160, so expand cannot fail.
        let _ = hkdf.expand(TOKEN_KEY_INFO, token_key.as_mut());
        let _ = hkdf.expand(CSRF_KEY_INFO, csrf_key.as_mut());
        let activate = match spec.state {
            KeyState::Active => spec.activate_at.map(OffsetDateTime::unix_timestamp),
            KeyState::Primary | KeyState::Retired => None,
        };
        let retire = match spec.state {
            KeyState::Retired => i64::MIN,
            KeyState::Primary | KeyState::Active => {
                spec.retire_at.map_or(i64::MAX, OffsetDateTime::unix_timestamp)
            }
        };
        Self {
            token_aead: XChaCha20Poly1305::new(&token_key),
            csrf_key,
            activate,
            retire,
            spec,
            sealed: AtomicU64::new(0),
            opened: AtomicU64::new(0),
        }
    }

    /// Names each secret field: a field that stops wiping itself on drop
    /// fails to compile here. Never called.
    #[allow(dead_code)]
    fn secrets_wipe_themselves(&self) {
        crate::wipe::wiped_on_drop(&self.spec.key);
        crate::wipe::wiped_on_drop(&self.token_aead);
        crate::wipe::wiped_on_drop(&self.csrf_key);
    }

    /// Whether the key refuses tokens at `now` (Unix seconds): it is
    /// retired, or its retire date has come.
    pub(crate) fn refuses_at(&self, now: u64) -> bool {
        i64::try_from(now).unwrap_or(i64::MAX) >= self.retire
    }

    /// Whether this key's retirement, dated and still ahead at `now` (Unix
    /// seconds), comes later in `newer`, or not at all.
    #[cfg(feature = "watch")]
    pub(crate) fn retirement_put_off_in(&self, newer: &Entry, now: u64) -> bool {
        // No date is `i64::MAX`, which nothing comes after.
        !self.refuses_at(now) && newer.retire > self.retire
    }

    /// Whether the key is scheduled to start sealing after `now` (Unix
    /// seconds): a key that is not this host's yet, though it opens tokens
    /// sealed by hosts whose clocks run ahead.
    pub(crate) fn activates_after(&self, now: u64) -> bool {
        self.activate.is_some_and(|at| at > i64::try_from(now).unwrap_or(i64::MAX))
    }

    /// Whether the key seals by `time` (Unix seconds): the primary, or a
    /// key whose activation has come. A key that only opens (an `active`
    /// one with no `activate_at`: a file read before its date was written,
    /// say) has sealed nothing that a later start would refuse.
    #[cfg(feature = "watch")]
    pub(crate) fn seals_by(&self, time: u64) -> bool {
        self.spec.state == KeyState::Primary || self.activate.is_some() && !self.activates_after(time)
    }

    pub(crate) fn count_sealed(&self) {
        self.sealed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_opened(&self) {
        self.opened.fetch_add(1, Ordering::Relaxed);
    }
}

/// How many key IDs above its newest a server takes for keys it may not
/// have yet: a keyring file or two behind (a key scheduled ahead, and one
/// that replaced it after a leak). A token under a key further up is
/// refused as a removed key's is, so that a made-up one cannot pass for a
/// rollout in progress for long.
pub(crate) const LATER_KEY_IDS: u32 = 2;

/// A set of keys: exactly one primary, any number of active and retired,
/// and an optional schedule.
///
/// # Schedule
///
/// A key may carry `activate_at` and `retire_at` times. The key that seals
/// at a given time is the most recently activated `active` key whose
/// `activate_at` has come, or the primary key if none has; a key whose
/// `retire_at` has come refuses tokens as a retired key does. A key opens
/// tokens from its `activate_at` less the sealer's leeway, so hosts whose
/// clocks run ahead within the leeway do no harm. Every host that reads the
/// same keyring switches at the same instant of its own clock, with no
/// coordination. [`Keyring::new`] refuses a
/// schedule that would leave a time with no sealing key, or that retires a
/// sealing key before a newer one is active.
///
/// Subkeys are derived with HKDF-SHA256 once, when the keyring is built, and
/// never per token. `Debug` shows IDs and states, never key material.
///
/// ```
/// use sealed_session::{KeySpec, KeyState, Keyring, MasterKey};
///
/// let keyring = Keyring::new([
///     KeySpec::new(2, KeyState::Primary, MasterKey::generate()?),
///     KeySpec::new(1, KeyState::Active, MasterKey::generate()?),
/// ])?;
/// assert_eq!(keyring.primary_id(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Keyring {
    entries: Vec<Entry>,
    primary: usize,
    /// The schedule: from each Unix second on, the entry (an index) that
    /// seals. Sorted; the first period starts at `i64::MIN`.
    periods: Vec<(i64, usize)>,
}

impl Keyring {
    /// Builds a keyring from its keys.
    ///
    /// # Errors
    /// [`KeyringError::Empty`], [`KeyringError::DuplicateId`],
    /// [`KeyringError::NoPrimary`], [`KeyringError::MultiplePrimaries`], or
    /// for a schedule that cannot work [`KeyringError::RetiresBeforeActive`],
    /// [`KeyringError::SameActivation`], [`KeyringError::NoSealingKey`] or
    /// [`KeyringError::RetiredBeforeSuccessor`].
    pub fn new(keys: impl IntoIterator<Item = KeySpec>) -> Result<Self, KeyringError> {
        let mut specs: Vec<KeySpec> = keys.into_iter().collect();
        if specs.is_empty() {
            return Err(KeyringError::Empty);
        }
        specs.sort_by_key(|spec| spec.id);
        for pair in specs.windows(2) {
            if let [a, b] = pair {
                if a.id == b.id {
                    return Err(KeyringError::DuplicateId(a.id));
                }
            }
        }
        for spec in &mut specs {
            // To the second, as sealing counts them and files and other
            // implementations read them (FORMAT.md: Unix seconds): a
            // fraction the file kept would retire the key up to a second
            // later for an opener that compares instants.
            for time in [&mut spec.created, &mut spec.activate_at, &mut spec.retire_at].into_iter().flatten()
            {
                *time = time.replace_nanosecond(0).unwrap_or(*time);
            }
        }
        for spec in &specs {
            // A time the file cannot hold would be left out of it: a
            // `retire_at` lost that way is a key that never retires.
            if [spec.created, spec.activate_at, spec.retire_at]
                .into_iter()
                .flatten()
                .any(|t| text::rfc3339(t).is_none())
            {
                return Err(KeyringError::UnwritableTime(spec.id));
            }
        }
        let mut primaries = specs.iter().filter(|s| s.state == KeyState::Primary).map(|s| s.id);
        let first = primaries.next().ok_or(KeyringError::NoPrimary)?;
        if let Some(second) = primaries.next() {
            return Err(KeyringError::MultiplePrimaries { first, second });
        }
        let primary = specs.iter().position(|s| s.id == first).ok_or(KeyringError::NoPrimary)?;
        let entries: Vec<Entry> = specs.into_iter().map(Entry::new).collect();
        let periods = schedule::periods(&entries, primary)?;
        Ok(Self { entries, primary, periods })
    }

    /// A keyring of one primary key, `key`, with ID `id`: for a single
    /// server that never rotates, and for tests.
    ///
    /// ```
    /// use sealed_session::{Keyring, MasterKey};
    ///
    /// let keyring = Keyring::single(1, MasterKey::from_slice(&[7; 32])?);
    /// assert_eq!(keyring.primary_id(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn single(id: u32, key: MasterKey) -> Self {
        let spec = KeySpec::new(id, KeyState::Primary, key);
        Self { entries: vec![Entry::new(spec)], primary: 0, periods: vec![(i64::MIN, 0)] }
    }

    /// A keyring with one new primary key, ID 1, made now from the OS random source.
    ///
    /// # Errors
    /// [`KeyringError::Random`] if the OS random source fails.
    pub fn generate() -> Result<Self, KeyringError> {
        Self::new([KeySpec::new(1, KeyState::Primary, MasterKey::generate()?).created(now())])
    }

    /// Rotation, phase 1: this keyring plus a new `active` key, made now from
    /// the OS random source, with the next free ID. Returns the new keyring and
    /// the new key's ID.
    ///
    /// # Errors
    /// [`KeyringError::Random`] if the OS random source fails, or
    /// [`KeyringError::NoFreeId`] if no ID above the highest is left.
    pub fn with_new_key(&self) -> Result<(Self, u32), KeyringError> {
        self.with_new_spec(|key| key)
    }

    /// This keyring plus a new `active` key with the next free ID, made now
    /// and passed through `schedule` (which may set its times).
    fn with_new_spec(&self, schedule: impl FnOnce(KeySpec) -> KeySpec) -> Result<(Self, u32), KeyringError> {
        let highest = self.keys().map(|k| k.id).max().unwrap_or(0);
        let id = highest.checked_add(1).ok_or(KeyringError::NoFreeId(highest))?;
        let new = schedule(KeySpec::new(id, KeyState::Active, MasterKey::generate()?).created(now()));
        Ok((Self::new(self.keys().cloned().chain([new]))?, id))
    }

    /// Rotation, phase 2: key `id` becomes primary and the old primary
    /// becomes `active` (it still opens tokens). A promotion overrides the
    /// schedule: no key keeps an `activate_at`, so key `id` seals from now
    /// on, and keys that were waiting to activate only open tokens until
    /// scheduled again.
    ///
    /// # Errors
    /// [`KeyringError::NoSuchKey`] if there is no key `id`, or
    /// [`KeyringError::RetiredKeyPromoted`] if it is retired, by its state
    /// or by a retire date that has come.
    pub fn with_primary(&self, id: u32) -> Result<Self, KeyringError> {
        let spec = self.entry(id).map(|e| &e.spec);
        let retired_by_date = spec.is_some_and(|spec| spec.retire_at.is_some_and(|at| at <= now()));
        match spec.map(|spec| spec.state) {
            None => Err(KeyringError::NoSuchKey(id)),
            Some(KeyState::Retired) => Err(KeyringError::RetiredKeyPromoted(id)),
            Some(_) if retired_by_date => Err(KeyringError::RetiredKeyPromoted(id)),
            Some(_) => Self::new(self.keys().map(|k| {
                let state = if k.id == id {
                    KeyState::Primary
                } else if k.state == KeyState::Primary {
                    KeyState::Active
                } else {
                    k.state
                };
                // A primary key seals whatever its `activate_at` says:
                // none is written, for readers of the file.
                KeySpec { state, activate_at: None, ..k.clone() }
            })),
        }
    }

    /// Rotation, phase 3: key `id` is retired (tokens under it are refused).
    /// As [`Keyring::with_retired_as_of`] the system clock's now.
    ///
    /// # Errors
    /// As [`Keyring::with_retired_as_of`].
    pub fn with_retired(&self, id: u32) -> Result<Self, KeyringError> {
        self.with_retired_as_of(id, now())
    }

    /// Key `id` is retired (tokens under it are refused), as of `now`.
    ///
    /// # Errors
    /// [`KeyringError::NoSuchKey`] if there is no key `id`,
    /// [`KeyringError::WaitingKeyRetired`] (see below), or
    /// [`KeyringError::PrimaryRetired`] if it is the primary key or, by its
    /// schedule, seals at `now` or within the clock leeway after it
    /// ([`DEFAULT_LEEWAY`](crate::DEFAULT_LEEWAY), for servers whose clocks
    /// run ahead of this one's): retiring it would end every session it
    /// sealed and fall back to an older key.
    ///
    /// A key scheduled to take over later may be retired, unless the key
    /// that seals before it retires after it takes over (as
    /// [`Keyring::rotated_at`] dates keys): no key would seal then, and
    /// [`Keyring::with_waiting_key_replaced`] is the way to retire it.
    pub fn with_retired_as_of(&self, id: u32, now: OffsetDateTime) -> Result<Self, KeyringError> {
        match self.entry(id).map(|e| e.spec.state) {
            None => Err(KeyringError::NoSuchKey(id)),
            Some(KeyState::Primary) => Err(KeyringError::PrimaryRetired(id)),
            Some(_) if self.seals_within_leeway(id, now) => Err(KeyringError::PrimaryRetired(id)),
            Some(_) => Self::new(self.keys().map(|k| retired_if(k, id))).map_err(|err| {
                match (err, self.predecessor(id)) {
                    // Key `id` was to take over from a key that retires after
                    // that (a rolling schedule's): say how to replace it.
                    (KeyringError::NoSealingKey { at }, Some(predecessor)) => {
                        KeyringError::WaitingKeyRetired { id, predecessor, at }
                    }
                    (err, _) => err,
                }
            }),
        }
    }

    /// Key `id`, waiting to take over by its schedule (one that leaked
    /// before its day, say), is retired, and a new `active` key, made now,
    /// takes over at the same time in its place: the schedule is otherwise
    /// unchanged (the key that seals until then retires when it was to).
    /// Returns the new keyring and the new key's ID. As of the system clock.
    ///
    /// # Errors
    /// [`KeyringError::NoSuchKey`], [`KeyringError::NotWaiting`] if key
    /// `id` is not waiting to take over (it has no activation time, or it
    /// seals now or within the clock leeway: retire another way), or as
    /// [`Keyring::with_new_key`].
    pub fn with_waiting_key_replaced(&self, id: u32) -> Result<(Self, u32), KeyringError> {
        self.with_waiting_key_replaced_as_of(id, now())
    }

    /// [`Keyring::with_waiting_key_replaced`] as of `now`.
    ///
    /// # Errors
    /// As [`Keyring::with_waiting_key_replaced`].
    pub fn with_waiting_key_replaced_as_of(
        &self,
        id: u32,
        now: OffsetDateTime,
    ) -> Result<(Self, u32), KeyringError> {
        let spec = self.entry(id).map(|e| &e.spec).ok_or(KeyringError::NoSuchKey(id))?;
        let at = match spec.activate_at {
            Some(at) if spec.state == KeyState::Active && !self.seals_within_leeway(id, now) => at,
            _ => return Err(KeyringError::NotWaiting(id)),
        };
        let highest = self.keys().map(|k| k.id).max().unwrap_or(0);
        let new_id = highest.checked_add(1).ok_or(KeyringError::NoFreeId(highest))?;
        let new = KeySpec::new(new_id, KeyState::Active, MasterKey::generate()?).created(now).activate_at(at);
        let keys = self.keys().map(|k| retired_if(k, id));
        Ok((Self::new(keys.chain([new]))?, new_id))
    }

    /// Whether key `id` seals, by the schedule, at any time from `now` to
    /// the clock leeway after it (a server whose clock runs ahead seals
    /// with it already).
    fn seals_within_leeway(&self, id: u32, now: OffsetDateTime) -> bool {
        let leeway = time::Duration::try_from(crate::DEFAULT_LEEWAY).unwrap_or_default();
        let ahead = now.checked_add(leeway).unwrap_or(now);
        let periods = self.sealing_periods();
        periods.iter().enumerate().any(|(i, period)| {
            period.key_id == id
                && period.from.is_none_or(|from| from <= ahead)
                && periods.get(i + 1).and_then(|next| next.from).is_none_or(|end| end > now)
        })
    }

    /// The key that seals just before key `id` takes over, by the schedule.
    fn predecessor(&self, id: u32) -> Option<u32> {
        let periods = self.sealing_periods();
        let position = periods.iter().position(|period| period.key_id == id)?;
        periods.get(position.checked_sub(1)?).map(|period| period.key_id)
    }

    /// The ID of the key in state `primary`. With a schedule, the key that
    /// seals depends on the time: see [`Keyring::sealing_id_at`].
    #[must_use]
    pub fn primary_id(&self) -> u32 {
        self.primary_entry().spec.id
    }

    pub(crate) fn primary_entry(&self) -> &Entry {
        // `primary` is an index into `entries`, checked in `new`.
        match self.entries.get(self.primary) {
            Some(entry) => entry,
            None => unreachable_primary(),
        }
    }

    /// The entry for `id`, if the keyring has one. Keys are few: a binary
    /// search over the sorted entries is cheaper than hashing.
    pub(crate) fn entry(&self, id: u32) -> Option<&Entry> {
        self.entries.binary_search_by_key(&id, |e| e.spec.id).ok().and_then(|i| self.entries.get(i))
    }

    /// Whether a key this keyring lacks may be one added later: its ID is
    /// one of the next [`LATER_KEY_IDS`] above every key's here (a rollout
    /// this host has not caught up with, as new keys take the next ID up).
    /// A lower ID names a key that was removed; a far higher one no
    /// rollout, but a value made up to look like one (the key ID is read
    /// before the token is authenticated).
    pub(crate) fn may_add_later(&self, id: u32) -> bool {
        self.entries.last().is_none_or(|last| id > last.spec.id && id - last.spec.id <= LATER_KEY_IDS)
    }

    /// Each key whose ID is more than two above the one before it, as
    /// `(before, id)`. A server takes a cookie under a key it lacks for a
    /// rollout in progress only if the key's ID is one of the next two above
    /// its newest: while such a key is rolled out, servers that do not have
    /// it yet remove its cookies (logging those users out there). Give new
    /// keys the next ID up.
    #[must_use]
    pub fn id_gaps(&self) -> Vec<(u32, u32)> {
        let ids: Vec<u32> = self.keys().map(|key| key.id).collect();
        ids.windows(2)
            .filter_map(|pair| match pair {
                [before, id] if id.saturating_sub(*before) > LATER_KEY_IDS => Some((*before, *id)),
                _ => None,
            })
            .collect()
    }

    /// The keys, sorted by ID, as operators describe them (secrets included:
    /// `Debug` of a [`KeySpec`] still redacts them).
    pub fn keys(&self) -> impl Iterator<Item = &KeySpec> {
        self.entries.iter().map(|e| &e.spec)
    }

    /// Per key: state, creation time, and how many tokens it sealed and
    /// opened in this process. Use it to see an old key drain before retiring it.
    #[must_use]
    pub fn usage(&self) -> Vec<KeyUsage> {
        self.entries
            .iter()
            .map(|e| KeyUsage {
                id: e.spec.id,
                state: e.spec.state,
                created: e.spec.created,
                sealed: e.sealed.load(Ordering::Relaxed),
                opened: e.opened.load(Ordering::Relaxed),
            })
            .collect()
    }
}

/// Now, to the second: keyring files record times without fractions.
fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

#[cold]
fn unreachable_primary() -> ! {
    // `Keyring::new` guarantees the primary index; this cannot be reached
    // from any input.
    #[allow(clippy::panic)]
    {
        panic!("keyring invariant broken: no primary entry")
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("primary", &self.primary_id())
            .field("keys", &self.entries.iter().map(|e| (e.spec.id, e.spec.state)).collect::<Vec<_>>())
            .finish()
    }
}

/// `key`, retired if it is key `id`.
fn retired_if(key: &KeySpec, id: u32) -> KeySpec {
    let state = if key.id == id { KeyState::Retired } else { key.state };
    KeySpec { state, ..key.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scheduled_key_activates_after_every_second_before_its_own() {
        let key = |byte: u8| MasterKey::from_slice(&[byte; 32]).unwrap();
        let at = OffsetDateTime::from_unix_timestamp(100).unwrap();
        let keyring = Keyring::new([
            KeySpec::new(1, KeyState::Primary, key(1)),
            KeySpec::new(2, KeyState::Active, key(2)).activate_at(at),
        ])
        .unwrap();
        let scheduled = keyring.entry(2).unwrap();
        assert!(scheduled.activates_after(99));
        assert!(!scheduled.activates_after(100), "it seals from its second on");
        assert!(!scheduled.activates_after(u64::MAX));
        assert!(!keyring.entry(1).unwrap().activates_after(0), "no schedule");
    }
}
