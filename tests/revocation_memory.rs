//! Revocation with the in-memory store: the conformance suite, every refusal
//! reason of the verifier, and revocation racing with checks on other threads.
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pollster::block_on;
use sealed_session::{
    KeySpec, KeyState, Keyring, LoginError, ManualClock, MasterKey, MemoryStore, OpenError, Revocation,
    RevocationStore, SealError, Sealer, Session, StoreError, Verifier, VerifyError,
};
use tracing_subscriber::fmt::MakeWriter as _;

#[path = "support/unheard.rs"]
mod unheard;
use unheard::Unheard;

const T0: i64 = 1_800_000_000;

fn verifier_with(store: impl FnOnce(&ManualClock) -> MemoryStore) -> (Verifier<MemoryStore>, ManualClock) {
    let clock = ManualClock::at_unix(T0);
    let store = store(&clock);
    let keyring =
        Keyring::new([KeySpec::new(1, KeyState::Primary, MasterKey::from_slice(&[9; 32]).unwrap())]).unwrap();
    let sealer = Sealer::builder(keyring).clock(clock.clone()).build().unwrap();
    (Verifier::new(sealer, store), clock)
}

fn verifier() -> (Verifier<MemoryStore>, ManualClock) {
    verifier_with(|clock| MemoryStore::with_clock(clock.clone()))
}

fn login(verifier: &Verifier<MemoryStore>, user: &str) -> String {
    let session = block_on(verifier.login(user, ())).unwrap();
    verifier.sealer().seal(&session).unwrap()
}

fn refusal(verifier: &Verifier<MemoryStore>, token: &str) -> Option<Revocation> {
    match block_on(verifier.open::<()>(token)) {
        Ok(_) => None,
        Err(VerifyError::Revoked(reason)) => Some(reason),
        Err(other) => panic!("unexpected error: {other}"),
    }
}

#[test]
fn memory_store_passes_the_conformance_suite() {
    block_on(sealed_session::conformance::run(&MemoryStore::new()));
}

/// Of threads denylisting one ID at the same moment, exactly one writes
/// it: the check and the write are one step under one lock, so a DBSC
/// proof or challenge works once however many threads serve its copies
/// (the conformance suite runs its calls on one task, which cannot see a
/// check and a write split between two locks).
#[test]
fn of_threads_denylisting_one_session_at_once_exactly_one_writes() {
    let store = Arc::new(MemoryStore::with_clock(ManualClock::at_unix(T0)));
    for _ in 0..200 {
        let id = Session::new(()).id();
        let start = Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (store, start) = (Arc::clone(&store), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    block_on(store.revoke_session_once(id, T0 as u64 + 600)).unwrap()
                })
            })
            .collect();
        let wrote = threads.into_iter().map(|t| t.join().unwrap()).filter(|&wrote| wrote).count();
        assert_eq!(wrote, 1, "one ID denylisted by {wrote} threads at once");
    }
}

/// A cutoff ahead of the store's time (its clock stepped back after a
/// global logout) is never lowered by a later one.
#[test]
fn a_cutoff_ahead_of_the_stores_time_is_never_lowered() {
    let clock = ManualClock::at_unix(T0 + 3600);
    let store = MemoryStore::with_clock(clock.clone());
    let ahead = block_on(store.revoke_all(0)).unwrap();
    assert_eq!(ahead, (T0 + 3600) as u64);
    clock.set_unix(T0);
    assert_eq!(block_on(store.revoke_all(0)).unwrap(), ahead);
    assert_eq!(block_on(store.revoke_all(T0 as u64)).unwrap(), ahead);
    assert_eq!(block_on(store.login_state("alice")).unwrap().revoked_through, ahead);
}

#[test]
fn memory_store_passes_the_registry_conformance_suite() {
    block_on(sealed_session::conformance::run_registry(&MemoryStore::new()));
}

#[test]
fn a_store_behind_a_trait_object_passes_the_conformance_suite() {
    let store: sealed_session::SharedStore = Arc::new(MemoryStore::new());
    block_on(sealed_session::conformance::run(&store));
}

#[test]
fn logout_everywhere_ends_every_session_of_the_user_only() {
    let (verifier, _) = verifier();
    let (a1, a2, b) = (login(&verifier, "alice"), login(&verifier, "alice"), login(&verifier, "bob"));
    assert_eq!(block_on(verifier.logout_everywhere("alice")).unwrap(), 1);
    assert_eq!(refusal(&verifier, &a1), Some(Revocation::User));
    assert_eq!(refusal(&verifier, &a2), Some(Revocation::User));
    assert_eq!(refusal(&verifier, &b), None);
    // A new login carries the new epoch and works.
    let a3 = login(&verifier, "alice");
    let opened = block_on(verifier.open::<()>(&a3)).unwrap();
    assert_eq!(opened.session().epoch(), 1);
}

#[test]
fn a_refreshed_session_keeps_its_epoch_and_stays_revoked() {
    let (verifier, clock) = verifier();
    let token = login(&verifier, "alice");
    clock.advance(Duration::from_secs(600));
    let opened = block_on(verifier.open::<()>(&token)).unwrap();
    let refreshed = verifier.sealer().seal(opened.session()).unwrap();
    block_on(verifier.logout_everywhere("alice")).unwrap();
    assert_eq!(refusal(&verifier, &refreshed), Some(Revocation::User));
}

#[test]
fn logout_ends_one_session_only() {
    let (verifier, _) = verifier();
    let (one, two) = (login(&verifier, "alice"), login(&verifier, "alice"));
    let session = block_on(verifier.open::<()>(&one)).unwrap().into_session();
    block_on(verifier.logout(&session)).unwrap();
    assert_eq!(refusal(&verifier, &one), Some(Revocation::Session));
    assert_eq!(refusal(&verifier, &two), None);
    // Anonymous sessions can be logged out too.
    let anonymous = verifier.sealer().seal(&Session::new(())).unwrap();
    let session = block_on(verifier.open::<()>(&anonymous)).unwrap().into_session();
    block_on(verifier.logout(&session)).unwrap();
    assert_eq!(refusal(&verifier, &anonymous), Some(Revocation::Session));
}

#[test]
fn renewing_the_id_logs_out_the_old_one() {
    let (verifier, _) = verifier();
    let before = login(&verifier, "alice");
    let mut session = block_on(verifier.open::<()>(&before)).unwrap().into_session();
    let old_id = session.id();
    block_on(verifier.renew_id(&mut session)).unwrap();
    assert_ne!(session.id(), old_id);
    let after = verifier.sealer().seal(&session).unwrap();
    assert_eq!(refusal(&verifier, &before), Some(Revocation::Session), "a token stolen before the change");
    assert_eq!(refusal(&verifier, &after), None);
}

#[test]
fn logout_all_refuses_everything_issued_until_now() {
    let (verifier, clock) = verifier();
    let (a, b) = (login(&verifier, "alice"), verifier.sealer().seal(&Session::new(())).unwrap());
    assert_eq!(block_on(verifier.logout_all()).unwrap(), T0 as u64);
    assert_eq!(refusal(&verifier, &a), Some(Revocation::All));
    assert_eq!(refusal(&verifier, &b), Some(Revocation::All));
    // A login cannot be issued in the cutoff's second: on a clock that does
    // not move, it gives up rather than hand out a doomed session.
    assert!(matches!(block_on(verifier.login("carol", ())), Err(LoginError::CutoffAhead { .. })));
    clock.advance(Duration::from_secs(1));
    let carol = login(&verifier, "carol");
    assert_eq!(refusal(&verifier, &carol), None);
    assert_eq!(block_on(verifier.logout_all()).unwrap(), T0 as u64 + 1);
    assert_eq!(refusal(&verifier, &carol), Some(Revocation::All));
}

#[test]
fn an_anonymous_session_opens_has_no_user_and_honours_logout_and_the_cutoff() {
    let (verifier, clock) = verifier();
    let session = block_on(verifier.start(vec![1u8, 2])).unwrap();
    assert_eq!((session.user_id(), session.epoch()), (None, 0));
    let token = verifier.sealer().seal(&session).unwrap();
    let opened = block_on(verifier.open::<Vec<u8>>(&token)).unwrap();
    assert_eq!((opened.session().id(), opened.session().data()), (session.id(), &vec![1, 2]));
    let session = block_on(verifier.start(())).unwrap();
    assert_ne!(session.id(), opened.session().id(), "a fresh ID every time");
    let token = verifier.sealer().seal(&session).unwrap();
    assert_eq!(refusal(&verifier, &token), None);

    block_on(verifier.logout(&session)).unwrap();
    assert_eq!(refusal(&verifier, &token), Some(Revocation::Session));
    // In the cutoff's second, on a clock that does not move, it gives up
    // rather than hand out a doomed session, as a login does.
    block_on(verifier.logout_all()).unwrap();
    assert!(matches!(block_on(verifier.start(())), Err(LoginError::CutoffAhead { .. })));
    clock.advance(Duration::from_secs(1));
    let later = verifier.sealer().seal(&block_on(verifier.start(())).unwrap()).unwrap();
    assert_eq!(refusal(&verifier, &later), None);
}

#[test]
fn a_clock_before_1970_refuses_every_session_and_says_to_check_the_clocks() {
    let (verifier, clock) = verifier();
    let token = login(&verifier, "alice");
    clock.set_unix(-5);
    // Opening reads the broken clock as 1970: the token is from the future.
    match block_on(verifier.open::<()>(&token)) {
        Err(err @ VerifyError::Open(OpenError::NotYetValid)) => {
            assert!(err.to_string().contains("check the clocks"), "{err}");
        }
        other => panic!("expected NotYetValid, got {other:?}"),
    }
    // A login cannot pass the store's cutoff on such a clock.
    match block_on(verifier.login("bob", ())) {
        Err(LoginError::CutoffAhead { now, .. }) => assert_eq!(now, 0),
        other => panic!("expected CutoffAhead, got {other:?}"),
    }
    // Sealing refuses outright: a token dated 1970 would be refused everywhere.
    assert!(matches!(verifier.sealer().seal(&Session::new(())), Err(SealError::Clock(_))));
    // The store's own clock alike: a logout of everyone dated 1970 would
    // leave the cutoff where it is, and log no one out.
    let store = MemoryStore::with_clock(ManualClock::at_unix(0));
    let result = block_on(store.revoke_all(T0 as u64));
    assert!(matches!(result, Err(StoreError::Untrusted(_))), "{result:?}");
}

/// A clock that reads a given millisecond first and from then on runs in
/// real time: a login's wait moves it, and whether the login waited shows
/// in whether it got past the cutoff, not in a measured time. (It starts
/// at its first read, so that no setup before it counts.)
struct Running {
    start_millis: i64,
    started: std::sync::OnceLock<std::time::Instant>,
}

impl sealed_session::Clock for Running {
    fn now(&self) -> time::OffsetDateTime {
        let elapsed = self.started.get_or_init(std::time::Instant::now).elapsed();
        let millis = self.start_millis + elapsed.as_millis() as i64;
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000).unwrap()
    }
}

#[test]
fn a_login_in_the_second_of_a_cutoff_waits_for_the_next_one_and_no_longer_than_the_limit() {
    assert_eq!(sealed_session::MAX_LOGIN_WAIT, Duration::from_millis(1500), "as SECURITY.md says");
    const CUTOFF: u64 = T0 as u64;
    // The login may seal from the second after the cutoff on: `ahead` ms
    // from the clock's start.
    let login = |ahead: i64| {
        let clock =
            Running { start_millis: (CUTOFF as i64 + 1) * 1000 - ahead, started: std::sync::OnceLock::new() };
        let sealer = Sealer::builder(Keyring::generate().unwrap()).clock(clock).build().unwrap();
        let verifier = Verifier::new(sealer, MemoryStore::refusing_sessions_before(CUTOFF));
        let session = block_on(verifier.login("alice", ()));
        session.map(|session| {
            block_on(verifier.open::<()>(&verifier.sealer().seal(&session).unwrap())).map(drop)
        })
    };
    // Within the limit it waits, and the session opens (the store refuses
    // what is sealed in the cutoff's second). A stalled test only shortens
    // the wait.
    for ahead in [1, 999, 1300] {
        assert!(matches!(login(ahead), Ok(Ok(()))), "{ahead} ms ahead");
    }
    // Beyond it, an error at once: had it waited, the running clock would
    // have passed the cutoff and the login gone through.
    match login(1700) {
        Err(LoginError::CutoffAhead { cutoff, now }) => assert_eq!((cutoff, now), (CUTOFF, CUTOFF - 1)),
        other => panic!("expected CutoffAhead, got {other:?}"),
    }
    // A cutoff further ahead is the same error, naming this server's time.
    let ahead = MemoryStore::refusing_sessions_before(CUTOFF + 3600);
    let verifier = Verifier::new(
        Sealer::builder(Keyring::generate().unwrap()).clock(ManualClock::at_unix(T0)).build().unwrap(),
        ahead,
    );
    match block_on(verifier.login("alice", ())) {
        Err(LoginError::CutoffAhead { cutoff, now }) => assert_eq!((cutoff, now), (CUTOFF + 3600, CUTOFF)),
        other => panic!("expected CutoffAhead, got {other:?}"),
    }
}

#[test]
fn a_store_started_with_a_floor_refuses_older_sessions() {
    // A token sealed before a restart...
    let (before, clock) = verifier();
    let old = login(&before, "alice");
    // ...meets a fresh store that knows nothing of past revocations.
    clock.advance(Duration::from_secs(5));
    let (after, after_clock) = verifier_with(|_| MemoryStore::refusing_sessions_before((T0 + 5) as u64));
    after_clock.set_unix(T0 + 5);
    assert_eq!(refusal(&after, &old), Some(Revocation::All));
    after_clock.advance(Duration::from_secs(1));
    assert_eq!(refusal(&after, &login(&after, "alice")), None);
}

/// Asserts that `verifier` refuses a session of alice's sealed at `epoch`
/// as a store fault, the store's epoch for her being `store`.
fn assert_store_fault<S: RevocationStore>(verifier: &Verifier<S>, epoch: u64, store: u64) {
    let token = verifier.sealer().seal(&Session::new(()).with_user("alice", epoch)).unwrap();
    match block_on(verifier.open::<()>(&token)) {
        Err(VerifyError::StoreFault { token, store: found }) if (token, found) == (epoch, store) => {}
        other => panic!("expected a store fault, got {other:?}"),
    }
}

#[test]
fn an_epoch_ahead_of_the_store_is_a_store_fault() {
    // Sealed as if the store had counted alice's epoch to 5 and then lost it.
    assert_store_fault(&verifier().0, 5, 0);
}

/// A session started after a logout everywhere on another server, checked
/// here before the logout's message emptied a cache that keeps the user's
/// epoch across session IDs ([`Unheard`]): the cached epoch is
/// behind the session's, which is read again from the store, not taken for
/// lost data (which would log the user out with an alarm). Only a store
/// whose own epoch is behind is a fault.
#[test]
fn a_cached_epoch_behind_the_sessions_is_read_again_not_taken_for_lost_data() {
    let on = |lost: bool| {
        let (verifier, clock) = verifier();
        let store = MemoryStore::with_clock(clock.clone());
        block_on(store.revoke_user("alice")).unwrap();
        let verifier = Verifier::new(verifier.sealer().clone(), Unheard { store, behind: 1, lost });
        (verifier, clock)
    };
    let (verifier, clock) = on(false);
    let mut session = block_on(verifier.login("alice", ())).unwrap();
    assert_eq!(session.epoch(), 1);
    let token = verifier.sealer().seal(&session).unwrap();
    block_on(verifier.open::<()>(&token)).unwrap();
    // "Log out my other sessions" reads the session's state first too.
    clock.advance(Duration::from_secs(1));
    let sealed = verifier.sealer().seal(&session).unwrap();
    session = block_on(verifier.open::<()>(&sealed)).unwrap().into_session();
    assert_eq!(block_on(verifier.logout_others(&mut session)).unwrap(), 2);

    assert_store_fault(&on(true).0, 1, 0);
}

#[test]
fn tokens_that_do_not_open_are_refused_before_the_store_is_asked() {
    let (verifier, _) = verifier();
    assert!(matches!(block_on(verifier.open::<()>("garbage")), Err(VerifyError::Open(_))));
}

/// How long past its expiry a denylist entry stays.
const GRACE: u64 = sealed_session::sql::DENYLIST_PURGE_GRACE_SECS;

#[test]
fn expired_denylist_entries_are_purged_a_day_later_and_live_ones_kept() {
    let clock = ManualClock::at_unix(T0);
    let store = MemoryStore::with_clock(clock.clone());
    let (t0, until) = (T0 as u64, T0 as u64 + 2 * GRACE);
    let deny = |expires_at| block_on(store.revoke_session(Session::new(()).id(), expires_at)).unwrap();
    let kept = Session::new(()).id();
    block_on(store.revoke_session(kept, until)).unwrap();
    for _ in 0..10 {
        deny(t0 + 10);
    }
    deny(t0 + 20);
    // A day past their expiry, less a second, the ten are still there: a
    // clock that jumps ahead by up to a day purges nothing that counts.
    clock.set_unix(T0 + 10 + GRACE as i64 - 1);
    deny(until);
    assert_eq!(store.revoked_sessions(), 13, "purged before a day past their expiry");
    clock.advance(Duration::from_secs(1));
    let live = Session::new(()).id();
    block_on(store.revoke_session(live, until)).unwrap();
    assert_eq!(store.revoked_sessions(), 4, "a day past their expiry, dropped on the next revocation");
    assert!(block_on(store.state(None, live)).unwrap().session_revoked);
    assert!(block_on(store.state(None, kept)).unwrap().session_revoked, "a purge keeps live entries");

    // Each purge scans every entry: at most one a minute, however many
    // fall due in between.
    clock.advance(Duration::from_secs(10)); // the entry of T0 + 20 is due
    deny(until);
    assert_eq!(store.revoked_sessions(), 5, "not purged again 10 s after the last purge");
    clock.advance(Duration::from_secs(50)); // a minute since the last purge
    deny(until);
    assert_eq!(store.revoked_sessions(), 5, "one due out, one new in");
}

#[test]
fn expired_records_of_a_user_who_never_comes_back_are_deleted() {
    use sealed_session::{SessionRecord, SessionRegistry};
    let clock = ManualClock::at_unix(T0);
    let store = MemoryStore::with_clock(clock.clone());
    let record = |user: &str, expires_at: u64| SessionRecord {
        id: Session::new(()).id(),
        user_id: user.to_owned(),
        epoch: 0,
        created_at: T0 as u64,
        last_seen: T0 as u64,
        expires_at,
        user_agent: "Firefox on Linux".to_owned(),
        remembered: false,
        device_bound: false,
    };
    block_on(store.record(&record("gone", T0 as u64 + 10))).unwrap();
    block_on(store.record(&record("kept", T0 as u64 + 3600))).unwrap();
    // Every user's expired records go with another user's write, at most
    // once a minute.
    clock.advance(Duration::from_secs(30));
    block_on(store.record(&record("other", T0 as u64 + 3600))).unwrap();
    assert_eq!(
        block_on(store.list("gone", 0)).unwrap().len(),
        1,
        "no scan of every user 30 s after the last"
    );
    clock.advance(Duration::from_secs(31));
    block_on(store.record(&record("other", T0 as u64 + 3600))).unwrap();
    assert!(block_on(store.list("gone", 0)).unwrap().is_empty(), "an expired record is kept forever");
    assert_eq!(block_on(store.list("kept", 0)).unwrap().len(), 1, "a live one is kept");
}

#[test]
fn an_expired_entry_not_yet_purged_does_not_stop_a_denial_once() {
    let clock = ManualClock::at_unix(T0);
    let store = MemoryStore::with_clock(clock.clone());
    // A purge now, so that none runs in the next minute.
    block_on(store.revoke_session(Session::new(()).id(), T0 as u64 + 1)).unwrap();
    clock.advance(Duration::from_secs(GRACE + 2));
    let now = T0 as u64 + GRACE + 2;
    block_on(store.revoke_session(Session::new(()).id(), now + 3600)).unwrap();
    assert_eq!(store.revoked_sessions(), 1, "the purge ran");
    let challenge = Session::new(()).id();
    assert!(block_on(store.revoke_session_once(challenge, now + 8)).unwrap());
    assert!(!block_on(store.revoke_session_once(challenge, now + 3600)).unwrap(), "used once");
    clock.advance(Duration::from_secs(8)); // expired (the last second), still in the map
    assert_eq!(store.revoked_sessions(), 2);
    assert!(block_on(store.revoke_session_once(challenge, now + 3600)).unwrap());
}

#[test]
fn a_logged_out_session_stays_denylisted_until_its_expiry_plus_the_leeway() {
    let (verifier, clock) = verifier();
    let token = login(&verifier, "alice");
    let session = block_on(verifier.open::<()>(&token)).unwrap().into_session();
    block_on(verifier.logout(&session)).unwrap();
    let expires_at = session.expires_at().unwrap().unix_timestamp();
    let purge = || block_on(verifier.store().revoke_session(Session::new(()).id(), u64::MAX)).unwrap();
    // A server whose clock lags by up to the leeway (60 s) still sees the
    // session as unexpired: the entry must still be there.
    clock.set_unix(expires_at + 59);
    purge();
    assert!(block_on(verifier.store().state(None, session.id())).unwrap().session_revoked);
    // Past that, the entry protects nothing while clocks agree; it is kept
    // a day more for a clock that jumped ahead and will be put back.
    clock.set_unix(expires_at + 60 + GRACE as i64 - 1);
    purge();
    assert!(block_on(verifier.store().state(None, session.id())).unwrap().session_revoked);
    clock.set_unix(expires_at + 60 + GRACE as i64);
    purge();
    assert!(!block_on(verifier.store().state(None, session.id())).unwrap().session_revoked, "then it goes");
}

#[test]
fn no_revoked_token_is_accepted_after_the_revocation_returned() {
    let (verifier, _) = verifier();
    let verifier = Arc::new(verifier);
    let token = Arc::new(login(&verifier, "alice"));
    let revoked = Arc::new(AtomicBool::new(false));
    let accepted_after = Arc::new(AtomicU64::new(0));
    let checks = Arc::new(AtomicU64::new(0));

    let checkers: Vec<_> = (0..2)
        .map(|_| {
            let (verifier, token, revoked, accepted_after, checks) =
                (verifier.clone(), token.clone(), revoked.clone(), accepted_after.clone(), checks.clone());
            std::thread::spawn(move || {
                // Until this thread has made 20 000 checks that began after
                // the revocation returned (none may pass), or a minute has
                // gone by without one (the main thread failed).
                let (mut after, started) = (0, std::time::Instant::now());
                while after < 20_000 && (after > 0 || started.elapsed() < Duration::from_secs(60)) {
                    let revoked_before = revoked.load(Ordering::SeqCst);
                    let result = block_on(verifier.open::<()>(&token));
                    if revoked_before {
                        after += 1;
                        if result.is_ok() {
                            accepted_after.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    if let Err(err) = &result {
                        assert!(matches!(err, VerifyError::Revoked(Revocation::User)), "{err}");
                    }
                    checks.fetch_add(1, Ordering::Relaxed);
                }
                after
            })
        })
        .collect();
    // Revoke once the checkers are well under way.
    while checks.load(Ordering::Relaxed) < 20_000 {
        std::thread::yield_now();
    }
    block_on(verifier.logout_everywhere("alice")).unwrap();
    revoked.store(true, Ordering::SeqCst);
    for checker in checkers {
        assert_eq!(checker.join().unwrap(), 20_000, "a checker saw no revocation");
    }
    assert_eq!(accepted_after.load(Ordering::SeqCst), 0, "a revoked token was accepted");
    assert_eq!(refusal(&verifier, &token), Some(Revocation::User));
}

#[test]
fn debug_of_the_store_shows_counts_not_users() {
    let store = MemoryStore::new();
    assert_eq!((store.revoked_users(), store.revoked_sessions()), (0, 0));
    block_on(store.revoke_user("secret-user@example.com")).unwrap();
    block_on(store.revoke_user("other@example.com")).unwrap();
    block_on(store.revoke_user("other@example.com")).unwrap();
    let until = time::OffsetDateTime::now_utc().unix_timestamp() as u64 + 60;
    for _ in 0..3 {
        block_on(store.revoke_session(Session::new(()).id(), until)).unwrap();
    }
    let shown = format!("{store:?}");
    assert!(!shown.contains("secret-user"), "{shown}");
    assert_eq!((store.revoked_users(), store.revoked_sessions()), (2, 3));
}

#[test]
fn a_verified_session_tells_its_key_and_whether_to_send_it_again() {
    let clock = ManualClock::at_unix(T0);
    let keyring = sealed_session::SharedKeyring::new(
        Keyring::new([
            KeySpec::new(7, KeyState::Primary, MasterKey::from_slice(&[7; 32]).unwrap()),
            KeySpec::new(9, KeyState::Active, MasterKey::from_slice(&[9; 32]).unwrap()),
        ])
        .unwrap(),
    );
    let sealer = Sealer::builder(keyring.clone()).clock(clock.clone()).build().unwrap();
    let verifier = Verifier::new(sealer, MemoryStore::with_clock(clock.clone()));
    let token = verifier.sealer().seal(&block_on(verifier.login("alice", ())).unwrap()).unwrap();
    let verified = block_on(verifier.open::<()>(&token)).unwrap();
    assert_eq!((verified.key_id(), verified.reissue()), (7, None));
    assert_eq!(verified.idle_expires_at().unix_timestamp(), T0 + 30 * 60);
    // Key 9 becomes primary: the token opens, and asks to be sealed again.
    keyring.replace(keyring.current().with_primary(9).unwrap());
    let verified = block_on(verifier.open::<()>(&token)).unwrap();
    assert_eq!((verified.key_id(), verified.reissue()), (7, Some(sealed_session::Reissue::KeyRotation)));
}

#[test]
fn a_remembered_session_is_logged_out_like_any_other() {
    let clock = ManualClock::at_unix(T0);
    let sealer = Sealer::builder(Keyring::generate().unwrap())
        .remember_me(Duration::from_secs(30 * 86_400), Duration::from_secs(7 * 86_400))
        .clock(clock.clone())
        .build()
        .unwrap();
    let verifier = Verifier::new(sealer, MemoryStore::with_clock(clock.clone()));
    let session = block_on(verifier.login("alice", ())).unwrap().remembered();
    let token = verifier.sealer().seal(&session).unwrap();
    let opened = block_on(verifier.open::<()>(&token)).unwrap();
    // The denylist entry lasts as long as the remembered session can.
    clock.advance(Duration::from_secs(5 * 86_400));
    block_on(verifier.logout(opened.session())).unwrap();
    clock.advance(Duration::from_secs(86_400));
    assert_eq!(refusal(&verifier, &token), Some(Revocation::Session));
    // Denylisted to the end of its 30 days and the clock leeway, past
    // which no copy of it, however renewed, opens: not for a day only. (A
    // one-time denial finds an entry in force, or makes its own.)
    let in_force = |verifier: &Verifier<MemoryStore>| {
        let far = u64::try_from(T0).unwrap() + 40 * 86_400;
        !block_on(verifier.store().revoke_session_once(opened.session().id(), far)).unwrap()
    };
    clock.advance(Duration::from_secs(24 * 86_400 + 59));
    assert!(in_force(&verifier), "at its absolute expiry, within the leeway");
    clock.advance(Duration::from_secs(2));
    assert!(!in_force(&verifier), "kept past its expiry and the leeway");
    let other = verifier.sealer().seal(&block_on(verifier.login("alice", ())).unwrap().remembered()).unwrap();
    block_on(verifier.logout_everywhere("alice")).unwrap();
    assert_eq!(refusal(&verifier, &other), Some(Revocation::User));
}

/// A cache never trusts an answer longer than `MAX_CACHE_TTL`, whatever it
/// is asked: the staleness bound SECURITY.md states.
#[test]
fn a_state_cache_never_trusts_an_answer_beyond_the_bound() {
    use sealed_session::{RevocationState, StateCache, MAX_CACHE_TTL};
    assert_eq!(MAX_CACHE_TTL, Duration::from_secs(1));
    let cache = StateCache::new(Duration::from_secs(3600));
    assert_eq!(cache.ttl(), MAX_CACHE_TTL);
    let session = Session::new(()).id();
    let state = RevocationState::default();
    assert!(cache.insert(cache.ticket(10_000), Some("alice"), &session, &state));
    assert_eq!(cache.get(Some("alice"), &session, 10_999), Some(state));
    assert_eq!(cache.get(Some("alice"), &session, 11_000), None, "a second after the read began");
}

#[test]
fn logging_everyone_out_warns_when_this_servers_clock_leads_the_stores_by_more_than_a_second() {
    // What is logged, kept for the test's whole run.
    let logs: &'static std::sync::Mutex<Vec<u8>> = Box::leak(Box::default());
    let subscriber =
        tracing_subscriber::fmt().with_writer(move || logs.make_writer()).with_ansi(false).finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    for (lead, warned) in [(0, false), (1, false), (2, true)] {
        let store_clock = ManualClock::at_unix(T0);
        let (verifier, clock) = verifier_with(|_| MemoryStore::with_clock(store_clock.clone()));
        clock.advance(Duration::from_secs(lead));
        logs.lock().unwrap().clear();
        assert_eq!(block_on(verifier.logout_all()).unwrap(), T0 as u64, "dated by the store's clock");
        let logged = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
        assert_eq!(
            logged.contains("clock is ahead of the revocation store"),
            warned,
            "{lead} s ahead: {logged}"
        );
    }
}

/// A user ID longer than every store can key by is refused at login (and
/// at a logout everywhere), with the limit named; the longest one signs in,
/// is sealed and opened, and is logged out (a longer one in PostgreSQL
/// could sign in and never be logged out).
#[test]
fn a_user_id_longer_than_the_limit_is_refused_at_login() {
    let (verifier, _clock) = verifier();
    let longest = "u".repeat(sealed_session::MAX_USER_ID_LEN);
    let token = login(&verifier, &longest);
    assert!(block_on(verifier.open::<()>(&token)).is_ok());
    block_on(verifier.logout_everywhere(&longest)).unwrap();
    assert_eq!(refusal(&verifier, &token), Some(Revocation::User));

    let longer = format!("{longest}u");
    let refused = block_on(verifier.login(&longer, ())).unwrap_err();
    assert!(matches!(refused, LoginError::UserIdTooLong { len: 1025 }), "{refused:?}");
    assert!(refused.to_string().contains("1025 bytes is longer than the 1024 allowed"), "{refused}");
    // The web answer: the request's fault, not the server's.
    let refused = sealed_session::web::HandleError::Login(refused);
    assert_eq!((refused.status(), refused.body()), (400, "user ID too long"));
    // No session of it exists to log out: the store is not asked.
    let refused = block_on(verifier.logout_everywhere(&longer)).unwrap_err();
    assert!(matches!(refused, StoreError::UserIdTooLong { len: 1025 }), "{refused:?}");
    assert!(refused.to_string().contains("1025 bytes is longer than the 1024"), "{refused}");
}
