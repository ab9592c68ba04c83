//! The metrics (feature `metrics`), captured with a debugging recorder:
//! each series counts what it names, and no label carries a user ID, a
//! session ID, a token or a secret.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use sealed_session::web::testing::{TestRequest, TestResponse, TestSession, UnreachableStore};
use sealed_session::web::{Begin, WebConfig};
use sealed_session::{
    Feed, KeySpec, KeyState, Keyring, ManualClock, MasterKey, MemoryStore, RevocationState, Sealer, Session,
    SharedKeyring, Verifier,
};

/// One captured series: name, labels, value.
type Series = (String, Vec<(String, String)>, DebugValue);

/// Runs `f` with a recorder of its own and returns what it recorded.
fn capture(f: impl FnOnce()) -> Vec<Series> {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, f);
    series(&snapshotter)
}

/// What `snapshotter`'s recorder holds.
fn series(snapshotter: &metrics_util::debugging::Snapshotter) -> Vec<Series> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let labels = key.key().labels().map(|l| (l.key().to_owned(), l.value().to_owned())).collect();
            (key.key().name().to_owned(), labels, value)
        })
        .collect()
}

/// The series `name` with exactly `labels`.
fn find<'a>(series: &'a [Series], name: &str, labels: &[(&str, &str)]) -> Option<&'a DebugValue> {
    series.iter().find_map(|(n, l, value)| {
        let same = l.len() == labels.len()
            && labels.iter().all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v));
        (n == name && same).then_some(value)
    })
}

fn counter(series: &[Series], name: &str, labels: &[(&str, &str)]) -> u64 {
    match find(series, name, labels) {
        Some(DebugValue::Counter(n)) => *n,
        None => 0,
        other => panic!("{name} is not a counter: {other:?}"),
    }
}

fn samples(series: &[Series], name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    match find(series, name, labels) {
        Some(DebugValue::Histogram(values)) => values.iter().map(|v| v.into_inner()).collect(),
        None => Vec::new(),
        other => panic!("{name} is not a histogram: {other:?}"),
    }
}

fn key(id: u32) -> MasterKey {
    MasterKey::from_slice(&[id as u8; 32]).unwrap()
}

#[test]
fn opens_seals_revocations_and_store_calls_are_counted_without_identities() {
    let verifier =
        Verifier::new(Sealer::builder(Keyring::single(7, key(7))).build().unwrap(), MemoryStore::new());
    let down = Verifier::new(Sealer::builder(Keyring::single(7, key(7))).build().unwrap(), UnreachableStore);
    let mut secrets = Vec::new();
    let series = capture(|| {
        pollster::block_on(async {
            let session = verifier.login("alice@example.com", ()).await.unwrap();
            let token = verifier.sealer().seal(&session).unwrap();
            secrets.push(token.clone());
            secrets.push(session.id().to_hex());
            assert!(verifier.open::<()>(&token).await.is_ok());
            assert!(verifier.open::<()>(&token).await.is_ok());
            let mut tampered = token.clone().into_bytes();
            let middle = tampered.len() / 2;
            tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
            assert!(verifier.open::<()>(std::str::from_utf8(&tampered).unwrap()).await.is_err());
            verifier.logout_everywhere("alice@example.com").await.unwrap();
            assert!(verifier.open_raw(&token).await.is_err());
            verifier.logout(&session).await.unwrap();
            assert!(down.open::<()>(&token).await.is_err());
        });
    });
    assert_eq!(counter(&series, "sealed_session_seals_total", &[("key_id", "7")]), 1);
    assert_eq!(counter(&series, "sealed_session_opens_total", &[("result", "ok")]), 2);
    assert_eq!(counter(&series, "sealed_session_opens_total", &[("result", "invalid")]), 1);
    assert_eq!(counter(&series, "sealed_session_opens_total", &[("result", "revoked_user")]), 1);
    assert_eq!(counter(&series, "sealed_session_opens_total", &[("result", "store_unavailable")]), 1);
    assert_eq!(counter(&series, "sealed_session_revocations_total", &[("kind", "user")]), 1);
    assert_eq!(counter(&series, "sealed_session_revocations_total", &[("kind", "session")]), 1);
    // Four state reads here (two opens, the revoked open, the unreachable
    // store's), one login read; one failed.
    assert_eq!(samples(&series, "sealed_session_store_seconds", &[("op", "state")]).len(), 4);
    assert_eq!(samples(&series, "sealed_session_store_seconds", &[("op", "login_state")]).len(), 1);
    assert_eq!(counter(&series, "sealed_session_store_errors_total", &[("op", "state")]), 1);
    assert_eq!(counter(&series, "sealed_session_store_errors_total", &[("op", "login_state")]), 0);

    for (name, labels, _) in &series {
        assert!(name.starts_with("sealed_session_"), "{name}");
        for (key, value) in labels {
            // A fixed word of the code's (lower case and `_`), or a key
            // ID: no token or session ID fits (a user ID might: the next
            // check looks for this test's user).
            let word = value.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
            let key_id = key == "key_id" && value.bytes().all(|b| b.is_ascii_digit());
            assert!(word || key_id, "{name}{{{key}={value}}} is neither a fixed word nor a key ID");
            assert!(!value.contains("alice"), "{name}{{{key}={value}}} names the user");
            for secret in &secrets {
                assert!(
                    !value.contains(secret.as_str()),
                    "{name}{{{key}={value}}} holds a token or session ID"
                );
            }
        }
    }
}

/// A registry whose server is down.
struct DownRegistry;

impl sealed_session::SessionRegistry for DownRegistry {
    fn record<'a>(
        &'a self,
        _: &'a sealed_session::SessionRecord,
    ) -> sealed_session::BoxFuture<'a, Result<(), sealed_session::StoreError>> {
        Box::pin(async { Err(down()) })
    }

    fn remove<'a>(
        &'a self,
        _: &'a str,
        _: sealed_session::SessionId,
    ) -> sealed_session::BoxFuture<'a, Result<(), sealed_session::StoreError>> {
        Box::pin(async { Err(down()) })
    }

    fn remove_user<'a>(
        &'a self,
        _: &'a str,
    ) -> sealed_session::BoxFuture<'a, Result<(), sealed_session::StoreError>> {
        Box::pin(async { Err(down()) })
    }

    fn list<'a>(
        &'a self,
        _: &'a str,
        _: u64,
    ) -> sealed_session::BoxFuture<'a, Result<Vec<sealed_session::SessionRecord>, sealed_session::StoreError>>
    {
        Box::pin(async { Err(down()) })
    }
}

fn down() -> sealed_session::StoreError {
    sealed_session::StoreError::unavailable(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
}

/// The session registry's calls are timed and counted as the store's are,
/// so that a registry outage (which lets requests through) shows.
#[test]
fn session_registry_calls_are_timed_and_counted() {
    let store = Arc::new(MemoryStore::new());
    let config = Arc::new(
        WebConfig::builder(Sealer::builder(Keyring::single(1, key(1))), Arc::clone(&store))
            .session_registry(Arc::clone(&store))
            .build()
            .unwrap(),
    );
    let down = Arc::new(
        WebConfig::builder(Sealer::builder(Keyring::single(1, key(1))), MemoryStore::new())
            .session_registry(DownRegistry)
            .build()
            .unwrap(),
    );
    let series = capture(|| {
        pollster::block_on(async {
            let Begin::Ready(handle) = config.begin(&TestRequest::new("GET", "/")).await else { panic!() };
            handle.typed::<()>().login("alice", ()).await.unwrap();
            assert_eq!(handle.devices().await.unwrap().len(), 1);
            handle.logout().await.unwrap();
            let Begin::Ready(handle) = down.begin(&TestRequest::new("GET", "/")).await else { panic!() };
            handle.typed::<()>().login("alice", ()).await.unwrap();
        });
    });
    let calls = |op: &str| samples(&series, "sealed_session_store_seconds", &[("op", op)]).len();
    let errors = |op: &str| counter(&series, "sealed_session_store_errors_total", &[("op", op)]);
    assert_eq!((calls("registry_record"), errors("registry_record")), (2, 1));
    // Each login counts the user's records; so does the device list.
    assert_eq!((calls("registry_list"), errors("registry_list")), (3, 1));
    assert_eq!((calls("registry_remove"), errors("registry_remove")), (1, 0));
}

#[test]
fn driver_events_and_reissues_are_counted_by_kind() {
    let keyring = SharedKeyring::new(Keyring::single(1, key(1)));
    let config =
        Arc::new(WebConfig::builder(Sealer::builder(keyring.clone()), MemoryStore::new()).build().unwrap());
    let series = capture(|| {
        pollster::block_on(async {
            let Begin::Ready(handle) = config.begin(&TestRequest::new("GET", "/")).await else { panic!() };
            handle.typed::<()>().login("alice", ()).await.unwrap();
            let _ = handle.finish();
            let signed_in = TestSession::sign_in(&config, "bob", ()).await.unwrap();
            // A new sealing key: the next request re-issues the cookie.
            keyring.replace(
                Keyring::new([
                    KeySpec::new(1, KeyState::Active, key(1)),
                    KeySpec::new(2, KeyState::Primary, key(2)),
                ])
                .unwrap(),
            );
            let request = TestRequest::new("GET", "/").header("cookie", signed_in.cookie());
            let Begin::Ready(handle) = config.begin(&request).await else { panic!() };
            let mut response = TestResponse::default();
            handle.finish().write_to(&mut response);
            assert_eq!(response.get_all("set-cookie").len(), 1);
            // A logout through the handle is a revocation like the verifier's.
            let cookie = response.get_all("set-cookie")[0].split(';').next().unwrap().to_owned();
            let request = TestRequest::new("GET", "/").header("cookie", &cookie);
            let Begin::Ready(handle) = config.begin(&request).await else { panic!() };
            handle.logout().await.unwrap();
            // A forgery: no CSRF token.
            let forged = TestRequest::new("POST", "/").header("cookie", signed_in.cookie());
            assert!(matches!(config.begin(&forged).await, Begin::Refuse(_)));
        });
    });
    assert_eq!(counter(&series, "sealed_session_revocations_total", &[("kind", "session")]), 1);
    assert_eq!(samples(&series, "sealed_session_store_seconds", &[("op", "revoke_session")]).len(), 1);
    assert_eq!(counter(&series, "sealed_session_events_total", &[("event", "login")]), 1);
    assert_eq!(counter(&series, "sealed_session_events_total", &[("event", "csrf_refused")]), 1);
    assert_eq!(counter(&series, "sealed_session_reissues_total", &[("reason", "key_rotation")]), 1);
    assert_eq!(counter(&series, "sealed_session_reissues_total", &[("reason", "idle_renewal")]), 0);
    assert_eq!(counter(&series, "sealed_session_seals_total", &[("key_id", "2")]), 1);
}

#[test]
fn the_invalidation_feed_and_its_cache_report_hits_staleness_and_reconnects() {
    let feed = Feed::new(Duration::from_secs(1));
    let session = Session::new(()).id();
    let state = RevocationState::default();
    // The first connection is no reconnection, but it makes the series.
    let first = capture(|| feed.connected());
    assert!(matches!(
        find(&first, "sealed_session_feed_reconnects_total", &[]),
        Some(DebugValue::Counter(0))
    ));
    feed.lost(false);

    let series = capture(|| {
        assert!(feed.lookup(None, &session, 0).is_err()); // not live: bypass
        feed.connected();
        let ticket = feed.lookup(None, &session, 1_000).unwrap_err(); // miss
        feed.remember(ticket, None, &session, &state);
        assert!(feed.lookup(None, &session, 1_250).is_ok()); // hit, 250 ms old

        // Past its TTL: no answer, except an older one asked for on purpose
        // (a store that cannot be reached, with `accept_stale_for`).
        assert!(feed.lookup(None, &session, 5_000).is_err()); // miss
        assert!(feed.cache().get_stale(None, &session, 5_000, Duration::from_secs(10)).is_some());
        feed.lost(false);
        feed.connected();
    });
    assert_eq!(counter(&series, "sealed_session_cache_lookups_total", &[("result", "bypass")]), 1);
    assert_eq!(counter(&series, "sealed_session_cache_lookups_total", &[("result", "miss")]), 2);
    assert_eq!(counter(&series, "sealed_session_cache_lookups_total", &[("result", "hit")]), 1);
    assert_eq!(counter(&series, "sealed_session_cache_lookups_total", &[("result", "stale")]), 1);
    assert_eq!(samples(&series, "sealed_session_cache_staleness_seconds", &[]), [0.25, 4.0]);
    assert_eq!(counter(&series, "sealed_session_feed_reconnects_total", &[]), 2);
    assert!(
        matches!(find(&series, "sealed_session_feed_live", &[]), Some(DebugValue::Gauge(v)) if v.into_inner() == 1.0)
    );
    // Lost: the gauge says so (an alert on it is the operator's only sign
    // that every check now reads the store).
    let lost = capture(|| feed.lost(false));
    assert!(
        matches!(find(&lost, "sealed_session_feed_live", &[]), Some(DebugValue::Gauge(v)) if v.into_inner() == 0.0),
        "{lost:?}"
    );
}

/// The retire-timestamp gauge of key `id` in `series`.
fn retire_gauge(series: &[Series], id: &str) -> Option<f64> {
    match find(series, "sealed_session_keyring_retire_timestamp_seconds", &[("key_id", id)]) {
        Some(DebugValue::Gauge(v)) => Some(v.into_inner()),
        _ => None,
    }
}

#[test]
fn each_key_exports_its_retire_date() {
    let retire = time::OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap();
    let clock = ManualClock::at_unix(1_800_000_000);
    let series = capture(|| {
        let keyring = SharedKeyring::new(
            Keyring::new([
                KeySpec::new(1, KeyState::Primary, key(1)).retire_at(retire),
                KeySpec::new(2, KeyState::Active, key(2)).activate_at(retire - time::Duration::days(1)),
                KeySpec::new(3, KeyState::Retired, key(3)),
            ])
            .unwrap(),
        );
        let _ = Sealer::builder(keyring).clock(clock).build().unwrap();
    });
    let gauge = |id: &str| retire_gauge(&series, id);
    assert_eq!((gauge("1"), gauge("2"), gauge("3")), (Some(1_900_000_000.0), Some(f64::INFINITY), Some(0.0)));
}

/// A replaced keyring leaves no stale retire date: the alert on a key that
/// seals after its date must not fire for a key whose date was removed.
#[test]
fn a_replaced_keyring_leaves_no_stale_retire_date() {
    let retire = time::OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap();
    let series = capture(|| {
        let shared = SharedKeyring::new(
            Keyring::new([
                KeySpec::new(1, KeyState::Active, key(1)).retire_at(retire),
                KeySpec::new(2, KeyState::Primary, key(2)),
                KeySpec::new(3, KeyState::Active, key(3)).retire_at(retire),
            ])
            .unwrap(),
        );
        // Key 1 kept without its date; key 3 removed from the file.
        shared.replace(
            Keyring::new([
                KeySpec::new(1, KeyState::Active, key(1)),
                KeySpec::new(2, KeyState::Primary, key(2)),
            ])
            .unwrap(),
        );
        // Key 4 dated, then gone, then back without a date (a reverted file).
        let with = |extra: Option<KeySpec>| {
            let base =
                [KeySpec::new(1, KeyState::Active, key(1)), KeySpec::new(2, KeyState::Primary, key(2))];
            Keyring::new(base.into_iter().chain(extra)).unwrap()
        };
        shared.replace(with(Some(KeySpec::new(4, KeyState::Active, key(4)).retire_at(retire))));
        shared.replace(with(None));
        shared.replace(with(Some(KeySpec::new(4, KeyState::Active, key(4)))));
    });
    let gauge = |id: &str| retire_gauge(&series, id);
    assert_eq!(gauge("1"), Some(f64::INFINITY), "no longer retires");
    assert_eq!(gauge("2"), Some(f64::INFINITY), "never had a date");
    assert_eq!(gauge("3"), Some(0.0), "gone from the keyring: retired");
    assert_eq!(gauge("4"), Some(f64::INFINITY), "back without a date");
}

/// The watcher runs on a thread of its own, which a local recorder does not
/// reach: this test installs the binary's one global recorder.
#[cfg(feature = "watch")]
#[test]
fn the_watcher_counts_reloads_and_refusals() {
    use std::os::unix::fs::PermissionsExt as _;

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.toml");
    let write = |text: &str| {
        let temp = dir.path().join("new.toml");
        std::fs::write(&temp, text).unwrap();
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::rename(&temp, &path).unwrap();
    };
    write(&Keyring::single(1, key(1)).to_toml_string());
    let (tx, events) = std::sync::mpsc::channel();
    let _watcher = sealed_session::KeyringWatcher::builder(&path)
        .notifications(false)
        .poll_interval(Duration::from_millis(20))
        .on_event(move |event| {
            let _ = tx.send(matches!(event, sealed_session::WatchEvent::Reloaded { .. }));
        })
        .start()
        .unwrap();
    // A snapshot takes the counts and values it reports (they read 0 after
    // it): counts are added up here, and no snapshot is taken between the
    // second refusal and the reload, so that the reload must set the gauge.
    let counted = std::cell::RefCell::new((0, 0));
    let refused = |snapshotter: &metrics_util::debugging::Snapshotter| {
        let series = series(snapshotter);
        let mut counted = counted.borrow_mut();
        counted.0 += counter(&series, "sealed_session_keyring_reloads_total", &[("result", "refused")]);
        counted.1 += counter(&series, "sealed_session_keyring_reloads_total", &[("result", "ok")]);
        match find(&series, "sealed_session_keyring_file_refused", &[]) {
            Some(DebugValue::Gauge(v)) => v.into_inner(),
            other => panic!("sealed_session_keyring_file_refused: {other:?}"),
        }
    };
    assert_eq!(refused(&snapshotter), 0.0, "the file in use");
    write("not a keyring");
    assert!(!events.recv_timeout(Duration::from_secs(20)).unwrap(), "refused");
    assert_eq!(refused(&snapshotter), 1.0);
    write("still not a keyring");
    assert!(!events.recv_timeout(Duration::from_secs(20)).unwrap(), "refused");
    let rotated =
        Keyring::new([KeySpec::new(1, KeyState::Active, key(1)), KeySpec::new(2, KeyState::Primary, key(2))]);
    write(&rotated.unwrap().to_toml_string());
    assert!(events.recv_timeout(Duration::from_secs(20)).unwrap(), "reloaded");
    assert_eq!(refused(&snapshotter), 0.0, "the file in use again");
    assert_eq!(*counted.borrow(), (2, 1), "versions refused, reloaded");
}
