//! `KeyringWatcher` on real files: new versions are picked up (through
//! inotify, and by polling alone), broken ones are refused once and the last
//! good keyring stays in use; keys from the environment or a `*_FILE` path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use sealed_session::{
    KeySpec, KeyState, Keyring, KeyringError, KeyringWatcher, LoadOptions, MasterKey, Sealer, Session,
    WatchEvent,
};

/// Far longer than any reload takes; only a broken watcher waits this long.
const PATIENCE: Duration = Duration::from_secs(20);

fn keyring(primary: u32) -> Keyring {
    Keyring::new((1..=primary).map(|id| {
        let state = if id == primary { KeyState::Primary } else { KeyState::Active };
        KeySpec::new(id, state, MasterKey::from_slice(&[id as u8; 32]).unwrap())
    }))
    .unwrap()
}

/// Writes `text` as a deployment tool does: a new file renamed over the old.
fn replace(path: &Path, text: &str) {
    let temp = path.with_extension("tmp");
    std::fs::write(&temp, text).unwrap();
    std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

/// A keyring file with key 1 primary, and a watcher that sends its events.
fn watched(
    dir: &Path,
    build: impl FnOnce(sealed_session::KeyringWatcherBuilder) -> sealed_session::KeyringWatcherBuilder,
) -> (KeyringWatcher, mpsc::Receiver<WatchEvent>) {
    let path = dir.join("keyring.toml");
    replace(&path, &keyring(1).to_toml_string());
    let (tx, rx) = mpsc::channel();
    let watcher = build(KeyringWatcher::builder(&path))
        .on_event(move |event| {
            let _ = tx.send(event.clone());
        })
        .start()
        .unwrap();
    (watcher, rx)
}

/// [`watched`] by polling alone, every 50 ms, with the file's path.
fn polled(dir: &Path) -> (KeyringWatcher, mpsc::Receiver<WatchEvent>, std::path::PathBuf) {
    let (watcher, events) = watched(dir, |b| b.notifications(false).poll_interval(Duration::from_millis(50)));
    (watcher, events, dir.join("keyring.toml"))
}

fn next(events: &mpsc::Receiver<WatchEvent>) -> WatchEvent {
    events.recv_timeout(PATIENCE).expect("the watcher reported nothing")
}

/// The time of the tests on a manual clock.
const T: i64 = 1_900_000_000;

/// Key `id`, in `state`, whose secret is 32 bytes of `id`.
fn key(id: u32, state: KeyState) -> KeySpec {
    KeySpec::new(id, state, MasterKey::from_slice(&[u8::try_from(id).unwrap(); 32]).unwrap())
}

/// The time `unix` seconds after the epoch, for a key's schedule.
fn at(unix: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

/// [`watched`] by polling alone, every 50 ms, on a manual clock at [`T`];
/// the clock, and the directory (removed when dropped).
fn polled_at_t(
) -> (KeyringWatcher, mpsc::Receiver<WatchEvent>, sealed_session::ManualClock, tempfile::TempDir) {
    polled_at_t_with(Duration::from_secs(60))
}

/// [`polled_at_t`], for sealers whose clock leeway is `leeway`.
fn polled_at_t_with(
    leeway: Duration,
) -> (KeyringWatcher, mpsc::Receiver<WatchEvent>, sealed_session::ManualClock, tempfile::TempDir) {
    let clock = sealed_session::ManualClock::at_unix(T);
    let dir = tempfile::tempdir().unwrap();
    let on = clock.clone();
    let (watcher, events) = watched(dir.path(), |b| {
        b.notifications(false).poll_interval(Duration::from_millis(50)).clock(on).leeway(leeway)
    });
    (watcher, events, clock, dir)
}

/// The error of the next event, which must be a refusal.
fn refused(events: &mpsc::Receiver<WatchEvent>) -> std::sync::Arc<KeyringError> {
    match next(events) {
        WatchEvent::Refused { error } => error,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_new_version_is_used_at_once_through_notifications() {
    let dir = tempfile::tempdir().unwrap();
    // A poll far longer than the test: only a notification can wake it.
    let (watcher, events) = watched(dir.path(), |b| b.poll_interval(Duration::from_secs(3600)));
    let sealer = Sealer::builder(watcher.keyring().clone()).build().unwrap();
    let before = sealer.seal(&Session::new(())).unwrap();
    assert_eq!(watcher.keyring().current().primary_id(), 1);

    replace(&dir.path().join("keyring.toml"), &keyring(2).to_toml_string());
    assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 2 }));
    assert_eq!(watcher.keyring().current().primary_id(), 2);
    // The sealer holds the same shared keyring: it seals under key 2 now
    // and still opens what key 1 sealed.
    let after = sealer.seal(&Session::new(())).unwrap();
    assert_eq!(sealer.open::<()>(&after).unwrap().key_id(), 2);
    assert_eq!(sealer.open::<()>(&before).unwrap().key_id(), 1);
}

#[test]
fn polling_alone_finds_a_file_rewritten_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let (watcher, events, path) = polled(dir.path());
    std::fs::write(&path, keyring(3).to_toml_string().as_bytes()).unwrap();
    // A poll may catch the file between truncation and write (an empty
    // keyring, refused); the next one finds the whole new version.
    loop {
        match next(&events) {
            WatchEvent::Reloaded { keys } => break assert_eq!(keys, 3),
            WatchEvent::Refused { error } => assert!(matches!(*error, KeyringError::Empty), "{error:?}"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(watcher.keyring().current().primary_id(), 3);
    // Unchanged text is not reloaded again: the next event is the next change.
    std::thread::sleep(Duration::from_millis(300));
    assert!(events.try_recv().is_err());
}

#[test]
fn a_broken_file_is_refused_once_and_the_last_good_keyring_stays() {
    let dir = tempfile::tempdir().unwrap();
    let (watcher, events, path) = polled(dir.path());
    let sealer = Sealer::builder(watcher.keyring().clone()).build().unwrap();
    let token = sealer.seal(&Session::new(())).unwrap();

    replace(&path, "[[key]]\nid = 1\nstate = \"primary\"\nsecret = \"garbage\"\n");
    match next(&events) {
        WatchEvent::Refused { error } => {
            assert!(matches!(*error, KeyringError::Key { .. }), "{error:?}");
            assert!(!error.to_string().contains("garbage"), "the message never quotes the secret: {error}");
        }
        other => panic!("{other:?}"),
    }
    // Reported once, not on every poll; nobody is signed out.
    std::thread::sleep(Duration::from_millis(300));
    assert!(events.try_recv().is_err());
    assert!(sealer.open::<()>(&token).is_ok());
    // Another broken version with the same fault is a new version: reported too.
    replace(&path, "[[key]]\nid = 1\nstate = \"primary\"\nsecret = \"rubbish\"\n");
    assert!(
        matches!(next(&events), WatchEvent::Refused { error } if matches!(*error, KeyringError::Key { .. }))
    );

    // A schedule that breaks the rules is refused the same way.
    let mut bad = keyring(1).to_toml_string().to_string();
    bad.push_str("retire_at = 2027-01-01T00:00:00Z\n");
    replace(&path, &bad);
    assert!(
        matches!(next(&events), WatchEvent::Refused { error } if matches!(*error, KeyringError::NoSealingKey { .. }))
    );

    // Readable by others: refused, then accepted once fixed, though the
    // text never changed.
    replace(&path, &keyring(2).to_toml_string());
    assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 2 }));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&path, keyring(4).to_toml_string().as_bytes()).unwrap();
    assert!(
        matches!(next(&events), WatchEvent::Refused { error } if matches!(*error, KeyringError::InsecurePermissions { .. }))
    );
    assert_eq!(watcher.keyring().current().primary_id(), 2);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 4 }));

    // Given to another user (this suite runs as root), the text it holds
    // unchanged: refused, then read again once given back.
    replace(&path, &keyring(5).to_toml_string());
    assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 5 }));
    std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
    assert!(
        matches!(next(&events), WatchEvent::Refused { error } if matches!(*error, KeyringError::OtherOwner { .. }))
    );
    std::os::unix::fs::chown(&path, Some(0), None).unwrap();
    assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 5 }));

    // Gone: refused, the keyring stays.
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(
        matches!(next(&events), WatchEvent::Refused { error } if matches!(*error, KeyringError::Io { .. }))
    );
    assert_eq!(watcher.keyring().current().primary_id(), 5);
    assert!(sealer.open::<()>(&token).is_ok());
    // Back with the same text: reported as reloaded, so that the same
    // problem later is reported again.
    replace(&path, &text);
    assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 5 }));
    std::fs::remove_file(&path).unwrap();
    assert!(
        matches!(next(&events), WatchEvent::Refused { error } if matches!(*error, KeyringError::Io { .. }))
    );
}

/// A version that would undo the keyring in use is refused: one that gives
/// a key ID another secret, and one that lets a retired key open again (an
/// older copy of the file put back), whether the key was retired by its
/// state or by a `retire_at` that has passed on the watcher's clock. A
/// retire date still ahead may move.
#[test]
fn a_version_that_undoes_the_keyring_in_use_is_refused() {
    let (watcher, events, clock, dir) = polled_at_t();
    let path = dir.path().join("keyring.toml");
    let spec =
        |id: u32, state, byte: u8| KeySpec::new(id, state, MasterKey::from_slice(&[byte; 32]).unwrap());

    // Key 1 under another secret.
    replace(&path, &Keyring::new([spec(1, KeyState::Primary, 9)]).unwrap().to_toml_string());
    assert!(matches!(*refused(&events), KeyringError::KeyReplaced { id: 1 }));
    let sealer = Sealer::builder(watcher.keyring().clone()).build().unwrap();
    let under_1 = sealer.seal(&Session::new(())).unwrap();

    // Key 1 retired for key 2; the older file put back is refused.
    let retired = Keyring::new([spec(1, KeyState::Retired, 1), spec(2, KeyState::Primary, 2)]).unwrap();
    replace(&path, &retired.to_toml_string());
    assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 2 }));
    replace(&path, &keyring(2).to_toml_string());
    assert!(matches!(*refused(&events), KeyringError::RetiredKeyRestored { id: 1 }));
    assert!(sealer.open::<()>(&under_1).is_err(), "key 1 stays retired");
    // Dropping the retired key undoes nothing; putting it back does, even
    // with its old secret and as the primary, as a backup would.
    let dropped = Keyring::new([spec(2, KeyState::Primary, 2), spec(3, KeyState::Active, 3)]).unwrap();
    replace(&path, &dropped.to_toml_string());
    assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 2 }));
    let backup = Keyring::new([spec(1, KeyState::Primary, 1), spec(2, KeyState::Active, 2)]).unwrap();
    replace(&path, &backup.to_toml_string());
    assert!(matches!(*refused(&events), KeyringError::OldKeyId { id: 1, highest: 3 }));
    // So does a new key under an ID seen before: IDs are never reused.
    let reused = Keyring::new([
        spec(2, KeyState::Primary, 2),
        spec(3, KeyState::Active, 3),
        spec(1, KeyState::Active, 7),
    ]);
    replace(&path, &reused.unwrap().to_toml_string());
    assert!(matches!(*refused(&events), KeyringError::OldKeyId { id: 1, highest: 3 }));
    assert!(sealer.open::<()>(&under_1).is_err(), "key 1 stays out");

    // Key 3 retires at T + 10: until then its date may move or go.
    let scheduled = |retire: Option<i64>| {
        let three = spec(3, KeyState::Active, 3);
        let three = match retire {
            Some(unix) => three.retire_at(at(unix)),
            None => three,
        };
        Keyring::new([spec(2, KeyState::Primary, 2), three]).unwrap().to_toml_string()
    };
    replace(&path, &scheduled(Some(T + 10)));
    assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 2 }));
    clock.advance(Duration::from_secs(9));
    replace(&path, &scheduled(Some(T + 20)));
    assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 2 }), "a date ahead may move");
    // Once the date has passed, the key stays retired.
    clock.advance(Duration::from_secs(11));
    replace(&path, &scheduled(None));
    let error = refused(&events);
    assert!(matches!(*error, KeyringError::RetiredKeyRestored { id: 3 }));
    assert!(error.to_string().contains("restart the server"), "{error}");
    // A later date (from a host whose clock runs behind, say) in a version
    // that also brings key 4: refused while it would let key 3 open (the
    // same refusal, not reported again), and applied, key 4 with it, once
    // that date has passed too, though the file did not change.
    let later = Keyring::new([
        spec(2, KeyState::Primary, 2),
        spec(3, KeyState::Active, 3).retire_at(at(T + 40)),
        spec(4, KeyState::Active, 4),
    ]);
    replace(&path, &later.unwrap().to_toml_string());
    std::thread::sleep(Duration::from_millis(300)); // six polls
    assert_eq!(watcher.keyring().current().keys().count(), 2, "refused meanwhile");
    clock.advance(Duration::from_secs(20));
    assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 3 }));
}

/// A keyring the application replaces while the watcher judges a new
/// version of the file (an emergency retirement through
/// `SharedKeyring::replace`) is not overwritten by that version, judged
/// against the keyring before: the version is judged again, against the
/// application's keyring, and refused since it would let key 1 open again.
#[test]
fn a_replacement_made_while_a_version_is_judged_is_not_undone() {
    /// A clock at [`T`] that, once armed, makes its replacement the next
    /// time it is read: the watcher reads it as it judges a version.
    #[derive(Clone, Default)]
    struct Meddling(std::sync::Arc<std::sync::Mutex<Option<(sealed_session::SharedKeyring, Keyring)>>>);
    impl sealed_session::Clock for Meddling {
        fn now(&self) -> time::OffsetDateTime {
            if let Some((shared, keyring)) = self.0.lock().unwrap().take() {
                shared.replace(keyring);
            }
            at(T)
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.toml");
    let meddling = Meddling::default();
    let clock = meddling.clone();
    let (watcher, events) =
        watched(dir.path(), |b| b.notifications(false).poll_interval(Duration::from_millis(50)).clock(clock));
    replace(&path, &keyring(2).to_toml_string());
    assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 2 }));
    let sealer = Sealer::builder(Keyring::new([key(1, KeyState::Primary)]).unwrap()).build().unwrap();
    let under_1 = sealer.seal(&Session::new(())).unwrap();

    let emergency = Keyring::new([key(1, KeyState::Retired), key(2, KeyState::Primary)]).unwrap();
    *meddling.0.lock().unwrap() = Some((watcher.keyring().clone(), emergency));
    replace(&path, &keyring(3).to_toml_string());
    assert!(matches!(*refused(&events), KeyringError::RetiredKeyRestored { id: 1 }));
    assert!(meddling.0.lock().unwrap().is_none(), "the replacement was made");
    let watched = Sealer::builder(watcher.keyring().clone()).build().unwrap();
    assert!(watched.open::<()>(&under_1).is_err(), "key 1 stays retired");
    assert_eq!(watcher.keyring().current().keys().count(), 2);
}

/// A keyring the application puts in place after the watcher applied a
/// version (`SharedKeyring::replace`, built from the keyring before, say)
/// has the file judged again against it: a file that would let key 1,
/// which the application retired, open again is refused (said, and the
/// application's keyring stays), and applied once it retires key 1 too.
/// It used to go unnoticed: the server differed from its file in silence.
#[test]
fn a_keyring_the_application_puts_in_place_has_the_file_judged_again() {
    let dir = tempfile::tempdir().unwrap();
    let (watcher, events, path) = polled(dir.path());
    replace(&path, &keyring(3).to_toml_string());
    assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 3 }));

    let emergency = || {
        Keyring::new([key(1, KeyState::Retired), key(2, KeyState::Active), key(3, KeyState::Primary)])
            .unwrap()
    };
    watcher.keyring().replace(emergency());
    assert!(matches!(*refused(&events), KeyringError::RetiredKeyRestored { id: 1 }));
    let retired = |keyring: &Keyring| keyring.keys().filter(|k| k.state == KeyState::Retired).count();
    assert_eq!(retired(&watcher.keyring().current()), 1, "the application's keyring stays");
    replace(&path, &emergency().to_toml_string());
    assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 3 }));
    assert_eq!(retired(&watcher.keyring().current()), 1);
}

/// A version that moves the start of a key already in use into the future
/// is refused: an older copy of the file put back after `keyring promote`
/// (which drops the waiting key's `activate_at`), say. Applied, every
/// session under that key would stop opening until then (refused as not
/// yet valid, its cookie removed). It is read again at each poll, and
/// applied once that date has come, though the file did not change. A
/// date still ahead may move.
#[test]
fn a_version_that_postpones_a_key_in_use_is_refused_until_its_date() {
    let (watcher, events, clock, dir) = polled_at_t();
    let path = dir.path().join("keyring.toml");
    let waiting = |from: i64| {
        let keys = [key(1, KeyState::Primary), key(2, KeyState::Active).activate_at(at(from))];
        Keyring::new(keys).unwrap().to_toml_string()
    };
    replace(&path, &waiting(T + 1000));
    assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 2 }));
    replace(&path, &waiting(T + 1200));
    assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 2 }), "a date ahead may move");
    // Promoted: key 2 seals now.
    let promoted = Keyring::new([key(1, KeyState::Active), key(2, KeyState::Primary)]).unwrap();
    replace(&path, &promoted.to_toml_string());
    assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 2 }));
    let sealer = Sealer::builder(watcher.keyring().clone()).clock(clock.clone()).build().unwrap();
    let under_2 = sealer.seal(&Session::new(())).unwrap();

    replace(&path, &waiting(T + 1200));
    let error = refused(&events);
    assert!(matches!(*error, KeyringError::KeyActivationPostponed { id: 2 }), "{error}");
    assert!(error.to_string().contains("restart the server"), "{error}");
    assert!(sealer.open::<()>(&under_2).is_ok(), "key 2 still opens");
    std::thread::sleep(Duration::from_millis(300)); // six polls
    assert_eq!(watcher.keyring().current().primary_id(), 2, "refused meanwhile");
    clock.advance(Duration::from_secs(1200));
    assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 2 }));
    assert!(sealer.open::<()>(&under_2).is_ok());
    // A key the new version retires is not held to its date.
    let retired = [key(1, KeyState::Retired).activate_at(at(T + 5000)), key(2, KeyState::Primary)];
    replace(&path, &Keyring::new(retired).unwrap().to_toml_string());
    assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 2 }));
}

/// A version read before a waiting key's date was written (a file written
/// in place: the key with no `activate_at`) lets the key open but not seal:
/// the whole file then gives it its date back, which postpones nothing that
/// sealed, and is applied, as is every later version (a retirement).
#[test]
fn a_version_cut_before_a_waiting_keys_date_does_not_hold_back_the_whole_file() {
    let (watcher, events, _clock, dir) = polled_at_t();
    let path = dir.path().join("keyring.toml");
    let whole = [key(1, KeyState::Primary), key(2, KeyState::Active).activate_at(at(T + 2 * 86_400))];
    replace(&path, &Keyring::new(whole.clone()).unwrap().to_toml_string());
    assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 2 }));
    let cut = [key(1, KeyState::Primary), key(2, KeyState::Active)];
    replace(&path, &Keyring::new(cut).unwrap().to_toml_string());
    assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 2 }));
    replace(&path, &Keyring::new(whole).unwrap().to_toml_string());
    assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 2 }), "the whole file");
    let retired = [
        key(1, KeyState::Primary),
        key(2, KeyState::Active).activate_at(at(T + 2 * 86_400)),
        key(3, KeyState::Retired),
    ];
    replace(&path, &Keyring::new(retired).unwrap().to_toml_string());
    assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 3 }), "a later version");
    assert_eq!(watcher.keyring().current().primary_id(), 1);
}

/// A postponement is judged with the sealers' leeway: one of 10 s opens
/// nothing under a key that starts 30 s from now, so a watcher told so
/// refuses that version (until 10 s before the date), where one on the
/// default 60 s applies it: right for sealers on 60 s (they open those
/// tokens all along), but sealers on 10 s then refuse them for 20 s.
#[test]
fn a_postponement_is_judged_with_the_sealers_leeway() {
    for (watcher_leeway, sealer_leeway) in [(10, 10), (60, 60), (60, 10)] {
        let case = format!("watcher {watcher_leeway} s, sealer {sealer_leeway} s");
        let (watcher, events, clock, dir) = polled_at_t_with(Duration::from_secs(watcher_leeway));
        let path = dir.path().join("keyring.toml");
        let promoted = Keyring::new([key(1, KeyState::Active), key(2, KeyState::Primary)]).unwrap();
        replace(&path, &promoted.to_toml_string());
        assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 2 }));
        let sealer = Sealer::builder(watcher.keyring().clone())
            .clock(clock.clone())
            .leeway(Duration::from_secs(sealer_leeway))
            .build()
            .unwrap();
        let under_2 = sealer.seal(&Session::new(())).unwrap();
        let later = [key(1, KeyState::Primary), key(2, KeyState::Active).activate_at(at(T + 30))];
        replace(&path, &Keyring::new(later).unwrap().to_toml_string());
        if watcher_leeway == 10 {
            assert!(matches!(*refused(&events), KeyringError::KeyActivationPostponed { id: 2 }), "{case}");
            assert!(sealer.open::<()>(&under_2).is_ok(), "{case}: still opens meanwhile");
            clock.advance(Duration::from_secs(20));
        }
        assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 2 }), "{case}");
        if sealer_leeway == 10 && watcher_leeway == 60 {
            assert!(sealer.open::<()>(&under_2).is_err(), "{case}: refused as not yet valid");
            clock.advance(Duration::from_secs(20));
        }
        assert!(sealer.open::<()>(&under_2).is_ok(), "{case}: applied, key 2 opens");
    }
}

/// A version that drops a key the keyring in use still opens sessions with,
/// or will seal with, is refused: an older copy without the newest key, or
/// a file written in place and read cut short after a whole entry. Applied,
/// it would drop the key for good, as the complete version would put back
/// an old key ID. A key goes once it has retired, by its state or by its
/// retire date: then the same file is applied though it did not change.
#[test]
fn a_version_that_drops_a_key_in_use_is_refused_until_the_key_retires() {
    let (watcher, events, clock, dir) = polled_at_t();
    let path = dir.path().join("keyring.toml");
    let keys = || watcher.keyring().current().keys().map(|key| key.id).collect::<Vec<_>>();

    // Key 2 seals from T + 100; a copy without it is refused, and the
    // complete version is used when it comes back.
    let complete =
        Keyring::new([key(1, KeyState::Primary), key(2, KeyState::Active).activate_at(at(T + 100))]);
    let complete = complete.unwrap().to_toml_string();
    replace(&path, &complete);
    assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 2 }));
    replace(&path, &keyring(1).to_toml_string());
    let error = refused(&events);
    assert!(matches!(*error, KeyringError::KeyInUseDropped { id: 2 }), "{error:?}");
    assert!(error.to_string().contains("retire the key first"), "{error}");
    assert_eq!(keys(), [1, 2]);
    // Another version that drops key 2 too is read (at every poll), but
    // not reported again: the next report is the broken file's after it.
    let other = Keyring::new([key(1, KeyState::Primary).created(at(T))]).unwrap();
    replace(&path, &other.to_toml_string());
    std::thread::sleep(Duration::from_millis(500)); // ten polls
    replace(&path, "[[key]]\nid = ");
    assert!(matches!(*refused(&events), KeyringError::Syntax { .. }));
    assert_eq!(keys(), [1, 2]);
    replace(&path, &complete);
    assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 2 }));

    // Key 2, a key that opens only, retires at T + 10: dropped before, it
    // is refused; the same file is applied once the date has passed.
    let retiring = Keyring::new([key(1, KeyState::Primary), key(2, KeyState::Active).retire_at(at(T + 10))]);
    replace(&path, &retiring.unwrap().to_toml_string());
    assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 2 }));
    replace(&path, &keyring(1).to_toml_string());
    assert!(matches!(*refused(&events), KeyringError::KeyInUseDropped { id: 2 }));
    clock.advance(Duration::from_secs(10));
    assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 1 }));
    assert_eq!(keys(), [1]);

    // A key retired by its state is dropped at once.
    let with_3 = Keyring::new([key(1, KeyState::Active), key(3, KeyState::Primary)]).unwrap();
    replace(&path, &with_3.to_toml_string());
    assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 2 }));
    let retired = Keyring::new([key(1, KeyState::Retired), key(3, KeyState::Primary)]).unwrap();
    replace(&path, &retired.to_toml_string());
    assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 2 }));
    let dropped = Keyring::new([key(3, KeyState::Primary)]).unwrap();
    replace(&path, &dropped.to_toml_string());
    assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 1 }));
    assert_eq!(keys(), [3]);
    // That may have been a file written in place, read cut short before
    // its retired key: the whole file, key 1 retired, is applied (it was
    // refused as an old key ID, and so was every later version that kept
    // key 1, until a restart). Key 1 opening again is still refused.
    replace(&path, &retired.to_toml_string());
    assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 2 }));
    assert_eq!(keys(), [1, 3]);
    replace(&path, &with_3.to_toml_string());
    assert!(matches!(*refused(&events), KeyringError::RetiredKeyRestored { id: 1 }));
}

/// A callback that panics does not stop the watcher: the next version is
/// still picked up.
#[test]
fn a_panicking_event_callback_does_not_stop_the_watcher() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.toml");
    replace(&path, &keyring(1).to_toml_string());
    let (tx, rx) = mpsc::channel();
    let watcher = KeyringWatcher::builder(&path)
        .notifications(false)
        .poll_interval(Duration::from_millis(50))
        .on_event(move |event| {
            let _ = tx.send(event.clone());
            panic!("the application's callback fails");
        })
        .start()
        .unwrap();
    replace(&path, &keyring(2).to_toml_string());
    assert!(matches!(next(&rx), WatchEvent::Reloaded { keys: 2 }));
    replace(&path, &keyring(3).to_toml_string());
    assert!(matches!(next(&rx), WatchEvent::Reloaded { keys: 3 }), "still watching");
    assert_eq!(watcher.keyring().current().primary_id(), 3);
}

#[test]
fn check_now_reads_the_file_at_once() {
    let dir = tempfile::tempdir().unwrap();
    // Neither a notification nor a poll will come during the test.
    let (watcher, events) =
        watched(dir.path(), |b| b.notifications(false).poll_interval(Duration::from_secs(3600)));
    replace(&dir.path().join("keyring.toml"), &keyring(2).to_toml_string());
    std::thread::sleep(Duration::from_millis(200));
    assert!(events.try_recv().is_err());
    watcher.check_now();
    assert!(matches!(next(&events), WatchEvent::Reloaded { keys: 2 }));
    assert_eq!(watcher.keyring().current().primary_id(), 2);
}

#[test]
fn a_zero_poll_interval_is_raised_to_ten_milliseconds() {
    // Polling without pause would keep a core busy reading the file.
    let builder = KeyringWatcher::builder("keyring.toml").poll_interval(Duration::ZERO);
    assert!(format!("{builder:?}").contains("poll: 10ms"), "{builder:?}");
}

#[test]
fn a_watcher_does_not_start_without_a_valid_keyring() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.toml");
    assert!(matches!(KeyringWatcher::builder(&path).start(), Err(KeyringError::Io { .. })));
    std::fs::write(&path, "not toml [").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(KeyringWatcher::builder(&path).start(), Err(KeyringError::Syntax { .. })));
}

#[test]
fn dropping_the_watcher_stops_it_and_keeps_the_keyring() {
    let dir = tempfile::tempdir().unwrap();
    let (watcher, events) = watched(dir.path(), |b| b.poll_interval(Duration::from_millis(20)));
    let shared = watcher.keyring().clone();
    drop(watcher);
    // Dropping waits for the thread to end: its event sender is gone at once.
    assert!(matches!(events.try_recv(), Err(mpsc::TryRecvError::Disconnected)));
    replace(&dir.path().join("keyring.toml"), &keyring(2).to_toml_string());
    std::thread::sleep(Duration::from_millis(200));
    // The thread is gone (its event sender with it), and the keyring is unchanged.
    assert!(matches!(events.try_recv(), Err(mpsc::TryRecvError::Disconnected)));
    assert_eq!(shared.current().primary_id(), 1);
}

/// Both forms in one test: the environment is shared by every test thread.
#[test]
fn keys_come_from_the_environment_or_a_file_it_names() {
    const NAME: &str = "SEALED_SESSION_TEST_KEYRING";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret.toml");
    replace(&file, &keyring(2).to_toml_string());
    std::env::remove_var(NAME);
    std::env::remove_var(format!("{NAME}_FILE"));

    let err = Keyring::from_env_or_file(NAME, LoadOptions::default()).unwrap_err();
    assert!(err.to_string().contains(&format!("{NAME} or {NAME}_FILE")), "{err}");

    std::env::set_var(format!("{NAME}_FILE"), &file);
    assert_eq!(Keyring::from_env_or_file(NAME, LoadOptions::default()).unwrap().primary_id(), 2);
    // The same checks as any keyring file.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(matches!(
        Keyring::from_env_or_file(NAME, LoadOptions::default()),
        Err(KeyringError::InsecurePermissions { .. })
    ));
    assert!(Keyring::from_env_or_file(NAME, LoadOptions::allow_insecure_permissions()).is_ok());

    // The variable itself wins over the file.
    let secret = MasterKey::from_slice(&[9; 32]).unwrap().to_base64();
    std::env::set_var(NAME, format!("9:primary:{}", &*secret));
    assert_eq!(Keyring::from_env_or_file(NAME, LoadOptions::default()).unwrap().primary_id(), 9);
    std::env::set_var(NAME, "9:primary:short");
    let err = Keyring::from_env_or_file(NAME, LoadOptions::default()).unwrap_err();
    assert!(matches!(err, KeyringError::Key { .. }), "{err:?}");
    std::env::remove_var(NAME);
    std::env::remove_var(format!("{NAME}_FILE"));
}
