//! [`KeyringWatcher`]: a keyring that follows its file while the server
//! runs, for any framework.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::file::{read_text, LoadOptions};
use super::{Keyring, SharedKeyring};
use crate::error::KeyringError;
use crate::{Clock, SystemClock};

/// What the watcher did with a new version of the keyring file.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum WatchEvent {
    /// The new version is valid and now in use.
    Reloaded {
        /// How many keys it holds.
        keys: usize,
    },
    /// The new version was refused (it does not parse, breaks a rule, has
    /// unsafe permissions or cannot be read); the last good keyring stays
    /// in use. Reported once per version, not on every check.
    Refused {
        /// Why.
        error: Arc<KeyringError>,
    },
}

type EventSink = Arc<dyn Fn(&WatchEvent) + Send + Sync>;

/// Builds a [`KeyringWatcher`]; see [`KeyringWatcher::builder`].
#[must_use]
pub struct KeyringWatcherBuilder {
    path: PathBuf,
    options: LoadOptions,
    poll: Duration,
    settle: Duration,
    notify: bool,
    on_event: Option<EventSink>,
    clock: Arc<dyn Clock>,
    leeway: Duration,
}

impl fmt::Debug for KeyringWatcherBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyringWatcherBuilder")
            .field("path", &self.path)
            .field("options", &self.options)
            .field("poll", &self.poll)
            .field("notify", &self.notify)
            .field("leeway", &self.leeway)
            .finish_non_exhaustive()
    }
}

impl KeyringWatcherBuilder {
    /// How the file is read: see [`LoadOptions`].
    pub fn load_options(mut self, options: LoadOptions) -> Self {
        self.options = options;
        self
    }

    /// How often the file is read when no change notification arrives
    /// (default 5 seconds). Without notifications (see
    /// [`KeyringWatcherBuilder::notifications`]) this is how late a change
    /// can be picked up.
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll = every.max(Duration::from_millis(10));
        self
    }

    /// Whether to ask the OS to report changes (inotify on Linux), falling
    /// back to polling if it cannot (default on). Off: polling only.
    pub fn notifications(mut self, on: bool) -> Self {
        self.notify = on;
        self
    }

    /// The clock that says which keys the keyring in use already refuses,
    /// which no new version may let open again (default: the system's).
    /// Give it the sealer's.
    pub fn clock(self, clock: impl Clock + 'static) -> Self {
        Self { clock: Arc::new(clock), ..self }
    }

    /// The clock leeway of the sealers that use this keyring (default
    /// [`DEFAULT_LEEWAY`](crate::DEFAULT_LEEWAY), the sealer's default): a
    /// key opens tokens from its `activate_at` less the leeway, and a new
    /// version that would start a key in use later than that is refused
    /// ([`KeyringError::KeyActivationPostponed`]). Give it the sealers'
    /// [`leeway`](crate::SealerBuilder::leeway) if you set one; with
    /// several, the smallest.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Called with each [`WatchEvent`], on the watcher's thread: for
    /// metrics, or tests. Events are also logged (`tracing`). A panic in it
    /// is caught and logged, and the watcher carries on.
    pub fn on_event(mut self, f: impl Fn(&WatchEvent) + Send + Sync + 'static) -> Self {
        self.on_event = Some(Arc::new(f));
        self
    }

    /// Loads the file now and starts following it.
    ///
    /// # Errors
    /// Any error of [`Keyring::load_with`]: a server does not start without
    /// a valid keyring; [`KeyringError::Io`] if the thread cannot start.
    pub fn start(self) -> Result<KeyringWatcher, KeyringError> {
        // Absolute: a later change of the working directory changes nothing.
        let path = std::path::absolute(&self.path)
            .map_err(|source| KeyringError::Io { path: self.path.clone(), source })?;
        let text = read_text(&path, self.options)?;
        let keyring = SharedKeyring::new(Keyring::from_toml_str(&text)?);
        crate::metrics::keyring_file_refused(false);
        let (tx, rx) = mpsc::channel();
        let notifier = if self.notify { notifier(&path, tx.clone()) } else { None };
        let mut follow = Follow {
            path,
            options: self.options,
            keyring: keyring.clone(),
            last: Some(fingerprint(&text)),
            on_event: self.on_event,
            clock: self.clock,
            leeway: self.leeway.as_secs(),
            highest: highest_id(&keyring.current()),
            judged: keyring.current(),
        };
        let (poll, settle) = (self.poll, self.settle);
        let thread = std::thread::Builder::new()
            .name("sealed-session keyring watcher".into())
            .spawn(move || follow.run(&rx, poll, settle))
            .map_err(|source| KeyringError::Io { path: "keyring watcher thread".into(), source })?;
        Ok(KeyringWatcher { keyring, stop: tx, thread: Some(thread), _notifier: notifier })
    }
}

/// A [`SharedKeyring`] that follows its keyring file: when a new valid
/// version appears (written by `sealed-session keyring …`, a deployment,
/// or a Kubernetes secret update), it replaces the keyring in use at once,
/// on every clone of [`KeyringWatcher::keyring`]. A version that does not
/// load is refused and logged, and the last good keyring stays in use, so a
/// broken file signs nobody out. So is a version that would undo the one in
/// use: one that gives a key ID another secret
/// ([`KeyringError::KeyReplaced`]), lets a key the keyring in use already
/// refuses open again ([`KeyringError::RetiredKeyRestored`]: read again at
/// each poll, and applied once its own dates refuse the key too), or brings
/// back a key it dropped, or any key with an ID no higher than one it has
/// seen ([`KeyringError::OldKeyId`]): an older copy of the file, from a
/// backup or a configuration tool. So is one that moves the start of a key
/// the keyring in use seals with (its primary, or a key whose date has
/// come) into the future
/// ([`KeyringError::KeyActivationPostponed`], judged with the sealers'
/// [`leeway`](KeyringWatcherBuilder::leeway)): an older copy put back after
/// `keyring promote`; it is read again at each poll, and applied once that
/// date less the leeway has come. A restart loads such a file, when that
/// is meant; so does [`SharedKeyring::replace`], which checks nothing. A
/// version that drops a key the keyring in use still opens sessions with,
/// or will seal with, is refused too ([`KeyringError::KeyInUseDropped`]):
/// a file written in place and read before its end, or an older copy
/// without the newest key. It is read again at each poll, and applied once
/// the key has retired. Retire a key (`state = "retired"`, or a
/// `retire_at` that has passed) in one version before dropping it in the
/// next, as `sealed-session keyring rotate` does.
///
/// It runs on a thread of its own (no async runtime needed), woken by the
/// OS's file notifications where it can have them (it watches the file's
/// directory, so replacing the file by a rename is seen) and by a poll in
/// any case. Dropping the watcher stops it; the keyring stays usable.
///
/// ```
/// use sealed_session::{Keyring, KeyringWatcher, Sealer};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("keyring.toml");
/// # std::fs::write(&path, Keyring::generate()?.to_toml_string().as_bytes())?;
/// # std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
///
/// let watcher = KeyringWatcher::builder(&path).start()?;
/// let sealer = Sealer::builder(watcher.keyring().clone()).build()?;
/// // Keep `watcher` alive as long as the server runs.
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct KeyringWatcher {
    keyring: SharedKeyring,
    stop: mpsc::Sender<Wake>,
    thread: Option<JoinHandle<()>>,
    _notifier: Option<notify::RecommendedWatcher>,
}

impl KeyringWatcher {
    /// A watcher for the keyring file at `path`.
    pub fn builder(path: impl AsRef<Path>) -> KeyringWatcherBuilder {
        KeyringWatcherBuilder {
            path: path.as_ref().to_path_buf(),
            options: LoadOptions::default(),
            poll: Duration::from_secs(5),
            settle: Duration::from_millis(100),
            notify: true,
            on_event: None,
            clock: Arc::new(SystemClock),
            leeway: crate::DEFAULT_LEEWAY,
        }
    }

    /// The keyring, kept up to date with the file. Give it to the
    /// [`Sealer`](crate::Sealer).
    ///
    /// Change it through the file. A keyring the application puts in place
    /// itself ([`SharedKeyring::replace`], an emergency retirement) stays
    /// until the file is judged against it, at the next poll: the file is
    /// applied if it undoes nothing of it, and refused (and said) until
    /// then otherwise, as when the file lets a key it retired open again.
    #[must_use]
    pub fn keyring(&self) -> &SharedKeyring {
        &self.keyring
    }

    /// Reads the file again now, without waiting for a notification or the
    /// next poll: for a SIGHUP handler. Returns at once; the outcome is
    /// logged and reported to [`KeyringWatcherBuilder::on_event`].
    pub fn check_now(&self) {
        let _ = self.stop.send(Wake::Changed);
    }
}

impl Drop for KeyringWatcher {
    fn drop(&mut self) {
        let _ = self.stop.send(Wake::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl fmt::Debug for KeyringWatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyringWatcher")
            .field("keyring", &self.keyring)
            .field("notifications", &self._notifier.is_some())
            .finish_non_exhaustive()
    }
}

/// Why the watcher's thread woke.
enum Wake {
    Changed,
    Stop,
}

/// A digest of a version of the file, to tell a new version from one
/// already seen.
fn fingerprint(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// OS notifications for the directory of `path`, or `None` (then polling
/// alone finds changes).
fn notifier(path: &Path, wake: mpsc::Sender<Wake>) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher as _;
    // `path` is absolute: only the root has no parent.
    let dir = path.parent().unwrap_or(path);
    let name = path.file_name().map(std::ffi::OsStr::to_owned).unwrap_or_default();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // The directory holds other files (a SQLite store, logs) that change
        // far more often than the keyring: only events that may concern the
        // keyring wake the watcher. An error might: it does. A read changes
        // nothing (and the watcher's own reads would wake it for ever).
        if event.map_or(true, |event| changes(&event.kind) && concerns(&event.paths, &name)) {
            let _ = wake.send(Wake::Changed);
        }
    });
    match watcher.and_then(|mut w| w.watch(dir, notify::RecursiveMode::NonRecursive).map(|()| w)) {
        Ok(watcher) => Some(watcher),
        Err(err) => {
            tracing::warn!(dir = %dir.display(), error = %err, "no file notifications for the keyring; polling only");
            None
        }
    }
}

/// Whether an event of `kind` may change a file: not an open, a read, or
/// the close of a file opened for reading.
fn changes(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    !matches!(
        kind,
        EventKind::Access(AccessKind::Open(_) | AccessKind::Read | AccessKind::Close(AccessMode::Read))
    )
}

/// Whether a notification about `paths` may concern the keyring file named
/// `name`: one about that name (written, or renamed into place), about a
/// name starting with `..` (the links a Kubernetes secret volume swaps), or
/// about no file at all (an overflowed queue, say).
fn concerns(paths: &[PathBuf], name: &std::ffi::OsStr) -> bool {
    paths.is_empty()
        || paths.iter().any(|path| {
            path.file_name().is_none_or(|file| file == name || file.as_encoded_bytes().starts_with(b".."))
        })
}

/// The watcher thread's state.
struct Follow {
    path: PathBuf,
    options: LoadOptions,
    keyring: SharedKeyring,
    /// The version last applied or refused: `None` after a read error, so
    /// that the same error is reported once.
    last: Option<[u8; 32]>,
    on_event: Option<EventSink>,
    clock: Arc<dyn Clock>,
    /// The sealers' clock leeway, in seconds.
    leeway: u64,
    /// The highest key ID of every version applied: a key the keyring in
    /// use lacks must come above it.
    highest: u32,
    /// The keyring in use that the version `last` was judged against, or
    /// that it became: one the application put in place since
    /// (`SharedKeyring::replace`) has the file judged again.
    judged: Arc<Keyring>,
}

impl Follow {
    fn run(&mut self, wake: &mpsc::Receiver<Wake>, poll: Duration, settle: Duration) {
        let mut last_error: Option<String> = None;
        loop {
            match wake.recv_timeout(poll) {
                Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(Wake::Changed) => {
                    // A burst of events for one write: let it finish, then read once.
                    std::thread::sleep(settle);
                    while let Ok(next) = wake.try_recv() {
                        if let Wake::Stop = next {
                            return;
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.check(&mut last_error);
        }
    }

    /// Reads the file; applies a new valid version, reports a new problem.
    fn check(&mut self, last_error: &mut Option<String>) {
        let current = self.keyring.current();
        if !Arc::ptr_eq(&current, &self.judged) {
            // The application put another keyring in place: whether the
            // file undoes it is judged anew, and a refusal said.
            self.last = None;
            *last_error = None;
        }
        let outcome = read_text(&self.path, self.options).and_then(|text| {
            let print = fingerprint(&text);
            if self.last == Some(print) {
                return Ok(None);
            }
            self.last = Some(print);
            self.judged = Arc::clone(&current);
            let keyring = Keyring::from_toml_str(&text)?;
            let now = u64::try_from(self.clock.unix_now()).unwrap_or(0);
            match undoes(&current, &keyring, now, self.leeway, self.highest) {
                Some(error) => Err(error),
                None => {
                    let put_off = retirements_put_off(&current, &keyring, now);
                    Ok(Some((Arc::new(keyring), put_off)))
                }
            }
        });
        let event = match outcome {
            Ok(None) => return,
            Ok(Some((keyring, put_off))) => {
                let keys = keyring.keys().count();
                // The application replaced the keyring meanwhile (an
                // emergency retirement, say): judged against the keyring
                // it replaced, the version is read again at the next poll.
                if !self.keyring.replace_if(&current, Arc::clone(&keyring)) {
                    self.last = None;
                    return;
                }
                self.highest = self.highest.max(highest_id(&keyring));
                self.judged = keyring;
                *last_error = None;
                tracing::info!(path = %self.path.display(), keys, "keyring reloaded from its file");
                for key in put_off {
                    // Allowed, as a date still ahead may move; but an older
                    // copy of the file put back does it too.
                    tracing::warn!(
                        path = %self.path.display(),
                        key,
                        "the keyring file no longer retires key {key} when it said it would (later, or never): \
                         if the key leaked, retire it again"
                    );
                }
                crate::metrics::keyring_reload(true);
                crate::metrics::keyring_file_refused(false);
                WatchEvent::Reloaded { keys }
            }
            Err(error) => {
                crate::metrics::keyring_file_refused(true);
                let message = error.to_string();
                if matches!(
                    error,
                    KeyringError::Io { .. }
                        | KeyringError::InsecurePermissions { .. }
                        | KeyringError::InsecureDirectory { .. }
                        | KeyringError::OtherOwner { .. }
                        | KeyringError::KeyInUseDropped { .. }
                        | KeyringError::RetiredKeyRestored { .. }
                        | KeyringError::KeyActivationPostponed { .. }
                ) {
                    // Read again once it is fixed, or the key it drops (or
                    // lets open again) has retired by its own dates too, even
                    // if the text is the same; meanwhile every read fails
                    // alike, reported once.
                    self.last = None;
                    if last_error.as_deref() == Some(message.as_str()) {
                        return;
                    }
                }
                tracing::warn!(
                    path = %self.path.display(),
                    error = %message,
                    "keyring file refused; the last good keyring stays in use"
                );
                *last_error = Some(message);
                crate::metrics::keyring_reload(false);
                WatchEvent::Refused { error: Arc::new(error) }
            }
        };
        if let Some(on_event) = &self.on_event {
            // A panic in the application's callback must not end the thread:
            // the keyring would stop following its file.
            let called = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| on_event(&event)));
            if called.is_err() {
                tracing::error!("the keyring watcher's event callback panicked; the watcher carries on");
            }
        }
    }
}

/// The highest key ID of `keyring`.
fn highest_id(keyring: &Keyring) -> u32 {
    keyring.keys().map(|key| key.id).max().unwrap_or(0)
}

/// Why `new` would undo `current` at `now` (Unix seconds, for sealers
/// whose clock leeway is `leeway` seconds), if it would: a
/// key `current` still opens with (or will seal with) that `new` lacks, a
/// key ID with another secret, a key `current` refuses that `new` lets
/// open, a key `current` seals with that `new` schedules to start later,
/// or a key `current` lacks at or below `highest` (the highest ID
/// seen: dropped earlier, or an ID used again) that `new` lets open. Keys
/// that `new` drops once `current` refuses them, keys it brings back that
/// refuse (a file read cut short before its retired keys, then whole), and
/// new ones above `highest`, undo nothing.
fn undoes(current: &Keyring, new: &Keyring, now: u64, leeway: u64, highest: u32) -> Option<KeyringError> {
    // A key opens tokens from its activation less the clock leeway.
    let opens_from = now.saturating_add(leeway);
    let undone = new.entries.iter().find_map(|entry| {
        let id = entry.spec.id;
        let Some(old) = current.entry(id) else {
            // Back, it opens nothing; once here, `RetiredKeyRestored`
            // keeps it so.
            return (id <= highest && !entry.refuses_at(now))
                .then_some(KeyringError::OldKeyId { id, highest });
        };
        if !bool::from(old.spec.key.ct_eq(&entry.spec.key)) {
            Some(KeyringError::KeyReplaced { id })
        } else if old.refuses_at(now) && !entry.refuses_at(now) {
            Some(KeyringError::RetiredKeyRestored { id })
        } else if old.seals_by(opens_from) && entry.activates_after(opens_from) {
            Some(KeyringError::KeyActivationPostponed { id })
        } else {
            None
        }
    });
    // A key in use dropped could not come back: its ID would be an old one.
    undone.or_else(|| {
        let dropped =
            current.entries.iter().find(|entry| !entry.refuses_at(now) && new.entry(entry.spec.id).is_none());
        dropped.map(|entry| KeyringError::KeyInUseDropped { id: entry.spec.id })
    })
}

/// The keys of `current` whose retirement, dated and still ahead at `now`,
/// `new` puts off or removes.
fn retirements_put_off(current: &Keyring, new: &Keyring, now: u64) -> Vec<u32> {
    let put_off = |entry: &&super::Entry| {
        current.entry(entry.spec.id).is_some_and(|old| old.retirement_put_off_in(entry, now))
    };
    new.entries.iter().filter(put_off).map(|entry| entry.spec.id).collect()
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::path::PathBuf;

    use super::{changes, concerns, retirements_put_off};
    use crate::{KeySpec, KeyState, Keyring, MasterKey};

    /// A dated retirement still ahead that a version moves later, or
    /// drops, is named (the watcher says it); one moved earlier, one that
    /// has passed, and a key that never had one are not.
    #[test]
    fn retirements_put_off_are_named() {
        const T: i64 = 1_900_000_000;
        let at = |unix: i64| time::OffsetDateTime::from_unix_timestamp(unix).unwrap();
        let keyring = |retire: [Option<i64>; 3]| {
            let key = |id: u32, retire: Option<i64>| {
                let spec = KeySpec::new(id, KeyState::Active, MasterKey::from_slice(&[7; 32]).unwrap());
                retire.map_or(spec.clone(), |unix| spec.retire_at(at(unix)))
            };
            let primary = KeySpec::new(9, KeyState::Primary, MasterKey::from_slice(&[9; 32]).unwrap());
            Keyring::new([primary, key(1, retire[0]), key(2, retire[1]), key(3, retire[2])]).unwrap()
        };
        let now = u64::try_from(T).unwrap();
        let current = keyring([Some(T + 100), Some(T + 100), Some(T - 1)]);
        assert_eq!(retirements_put_off(&current, &keyring([Some(T + 200), None, None]), now), [1, 2]);
        assert_eq!(
            retirements_put_off(&current, &keyring([Some(T + 50), Some(T + 100), None]), now),
            [0u32; 0]
        );
        assert_eq!(retirements_put_off(&keyring([None; 3]), &keyring([None; 3]), now), [0u32; 0]);
    }

    #[test]
    fn only_events_that_may_concern_the_keyring_wake_the_watcher() {
        let name = OsStr::new("keyring.toml");
        let paths =
            |names: &[&str]| names.iter().map(|n| PathBuf::from("/etc/app").join(n)).collect::<Vec<_>>();
        assert!(concerns(&paths(&["keyring.toml"]), name));
        // A rename into place names the temporary file and the keyring.
        assert!(concerns(&paths(&[".keyring.toml.42.tmp", "keyring.toml"]), name));
        assert!(concerns(&paths(&["..data"]), name));
        assert!(concerns(&[], name));
        assert!(concerns(&[PathBuf::from("/")], name));
        assert!(!concerns(&paths(&["revocations.sqlite-wal", "audit.jsonl"]), name));
        assert!(!concerns(&paths(&[".keyring.toml.42.tmp"]), name));
        assert!(!concerns(&paths(&["keyring.toml.bak"]), name));
    }

    /// Opening and reading the file change nothing: the watcher's own
    /// reads, and any other reader's, must not wake it (they did, and it
    /// read the file every 100 ms for ever).
    #[test]
    fn reads_do_not_wake_the_watcher() {
        use notify::event::{
            AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RemoveKind, RenameMode,
        };
        for read in [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Read),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
        ] {
            assert!(!changes(&read), "{read:?}");
        }
        for change in [
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Create(CreateKind::Any),
            EventKind::Modify(ModifyKind::Any),
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
            EventKind::Remove(RemoveKind::Any),
            EventKind::Any,
        ] {
            assert!(changes(&change), "{change:?}");
        }
    }
}
