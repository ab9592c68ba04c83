//! A conformance suite for [`RevocationStore`] implementations (feature
//! `conformance`).
//!
//! Call [`run`] from a test of your store, created on the system clock. It
//! uses fresh random user and session IDs and needs no particular async
//! runtime. It takes a few seconds (one check waits for a denylist entry
//! that must not have been shortened, logins wait for a cutoff's second to
//! pass) and logs everyone out of the store, so run it on a store of its
//! own.
//!
//! ```
//! # pollster::block_on(async {
//! sealed_session::conformance::run(&sealed_session::MemoryStore::new()).await;
//! # });
//! ```

// Test support: failing loudly is the point.
#![allow(clippy::expect_used, clippy::panic)]

use std::future::Future as _;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::keyring::Keyring;
use crate::revocation::{Revocation, RevocationStore, StoreError, Verifier, VerifyError};
use crate::sealer::Sealer;
use crate::session::{Session, SessionId};
use crate::timer::sleep;

fn fresh_user() -> String {
    format!("conformance-{}", Session::new(()).id().to_hex())
}

/// Fresh user IDs that differ only by a separator, accents, case or a
/// trailing space, and one of 1 KiB.
fn user_id_shapes() -> [String; 7] {
    let tag = fresh_user();
    [
        format!("{tag}:{{x}}"),
        format!("{tag}-ÄÖ✓"),
        format!("{tag}-ä"),
        format!("{tag}-A"),
        format!("{tag}-a"),
        format!("{tag} "),
        format!("{tag}{}", "x".repeat(1000)),
    ]
}

fn fresh_session() -> SessionId {
    Session::new(()).id()
}

fn unix_now() -> u64 {
    u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).expect("a clock after 1970")
}

/// Runs every check; panics with a message naming the first that fails.
pub async fn run<S: RevocationStore>(store: &S) {
    unknown_users_and_sessions_are_not_revoked(store).await;
    user_epochs_count_up_by_one(store).await;
    concurrent_user_revocations_each_count(store).await;
    users_are_independent(store).await;
    user_ids_of_every_shape_are_kept_apart(store).await;
    sessions_are_denylisted_individually(store).await;
    the_latest_expiries_are_kept(store).await;
    denylist_entries_in_the_past_are_refused(store).await;
    denylist_entries_are_never_shortened(store).await;
    a_session_is_denylisted_once(store).await;
    of_concurrent_denials_of_one_session_exactly_one_writes(store).await;
    a_read_that_began_before_a_revocation_is_never_cached(store).await;
    logout_all_refuses_every_earlier_session_and_no_later_login(store).await;
    revoke_all_moves_the_cutoff_forward_only(store).await;
    a_caller_ahead_of_the_store_cannot_push_the_cutoff(store).await;
}

/// A user never revoked has epoch 0; a new session is not on the denylist.
pub async fn unknown_users_and_sessions_are_not_revoked<S: RevocationStore>(store: &S) {
    let user = fresh_user();
    let session = fresh_session();
    let login = store.login_state(&user).await.expect("login_state of a new user");
    assert_eq!(login.user_epoch, 0, "a new user's epoch must be 0");
    let state = store.state(Some(&user), session).await.expect("state of a new user");
    assert_eq!(state.user_epoch, 0, "state: a new user's epoch must be 0");
    assert!(!state.session_revoked, "a new session must not be denylisted");
    assert_eq!(
        state.revoked_through, login.revoked_through,
        "state and login_state must agree on the cutoff"
    );
    let anonymous = store.state(None, session).await.expect("state without a user");
    assert!(!anonymous.session_revoked);
    assert_eq!(anonymous.user_epoch, 0, "a session without a user has epoch 0");
}

/// `revoke_user` returns 1, 2, 3… and `state` and `login_state` agree at once.
pub async fn user_epochs_count_up_by_one<S: RevocationStore>(store: &S) {
    let user = fresh_user();
    // Cache the user's epoch 0 first, where the store caches.
    let session = fresh_session();
    assert_eq!(store.state(Some(&user), session).await.expect("state").user_epoch, 0);
    for expected in 1..=3 {
        assert_eq!(store.revoke_user(&user).await.ok(), Some(expected), "revoke_user must count up by one");
        assert_eq!(store.login_state(&user).await.expect("login_state").user_epoch, expected);
        let state = store.state(Some(&user), session).await.expect("state");
        assert_eq!(state.user_epoch, expected, "state must show the new epoch at once");
    }
}

/// Of concurrent `revoke_user` calls for one user, each counts: they answer
/// the epochs after the current one, each once, and the last is stored. (A
/// store that reads the epoch and then writes it plus one lets two calls
/// answer the same epoch: "sign out the others" from two sessions would
/// each keep theirs.)
pub async fn concurrent_user_revocations_each_count<S: RevocationStore>(store: &S) {
    let user = fresh_user();
    store.revoke_user(&user).await.expect("revoke_user");
    let results = all((0..8).map(|_| store.revoke_user(&user))).await;
    let mut epochs: Vec<u64> = results.into_iter().map(|r| r.expect("concurrent revoke_user")).collect();
    epochs.sort_unstable();
    assert_eq!(epochs, (2..=9).collect::<Vec<_>>(), "8 concurrent revoke_user calls after epoch 1");
    assert_eq!(store.login_state(&user).await.expect("login_state").user_epoch, 9);
}

/// Revoking one user leaves another untouched.
pub async fn users_are_independent<S: RevocationStore>(store: &S) {
    let (a, b) = (fresh_user(), fresh_user());
    store.revoke_user(&a).await.expect("revoke a");
    let epoch = store.login_state(&b).await.expect("login_state").user_epoch;
    assert_eq!(epoch, 0, "revoking one user must not touch another");
}

/// User IDs of any shape are kept apart, byte for byte: empty, long,
/// non-ASCII, with separators a store might key by, and differing in case
/// only.
pub async fn user_ids_of_every_shape_are_kept_apart<S: RevocationStore>(store: &S) {
    let shapes: Vec<String> = std::iter::once(String::new()).chain(user_id_shapes()).collect();
    let before: Vec<u64> = {
        let mut epochs = Vec::new();
        for user in &shapes {
            epochs.push(store.login_state(user).await.expect("login_state").user_epoch);
        }
        epochs
    };
    for (i, (user, &was)) in shapes.iter().zip(&before).enumerate() {
        let epoch = store.revoke_user(user).await.expect("revoke_user");
        assert_eq!(epoch, was + 1, "revoke_user of user {i}");
        for (j, (other, &other_was)) in shapes.iter().zip(&before).enumerate() {
            let state = store.state(Some(other), fresh_session()).await.expect("state");
            assert_eq!(state.user_epoch, other_was + u64::from(j <= i), "user {j} after revoking user {i}");
        }
    }
}

/// The latest expiries there are (a session that never expires is
/// denylisted until `u64::MAX`) are kept, not wrapped into the past.
pub async fn the_latest_expiries_are_kept<S: RevocationStore>(store: &S) {
    for until in [u64::MAX, i64::MAX as u64, i64::MAX as u64 + 1, (1 << 53) + 1] {
        let session = fresh_session();
        store.revoke_session(session, until).await.expect("revoke_session until a far future");
        assert!(store.state(None, session).await.expect("state").session_revoked, "until {until}");
        let once = fresh_session();
        assert_eq!(store.revoke_session_once(once, until).await.ok(), Some(true), "once, until {until}");
        assert!(store.state(None, once).await.expect("state").session_revoked, "once, until {until}");
    }
}

/// A denylisted session is revoked at once; its neighbours are not.
pub async fn sessions_are_denylisted_individually<S: RevocationStore>(store: &S) {
    let (revoked, other) = (fresh_session(), fresh_session());
    assert!(!store.state(None, revoked).await.expect("state").session_revoked);
    store.revoke_session(revoked, unix_now() + 3600).await.expect("revoke_session");
    let state = store.state(None, revoked).await.expect("state");
    assert!(state.session_revoked, "a revoked session must be on the denylist at once");
    let user = fresh_user();
    assert!(store.state(Some(&user), revoked).await.expect("state").session_revoked);
    assert!(!store.state(None, other).await.expect("state").session_revoked, "other sessions stay valid");
}

/// An entry that would end at or before now revokes nothing: it is refused
/// with [`StoreError::ExpiryNotInFuture`], and an existing entry is kept.
pub async fn denylist_entries_in_the_past_are_refused<S: RevocationStore>(store: &S) {
    let session = fresh_session();
    for expires_at in [0, 1, unix_now() - 10, unix_now()] {
        match store.revoke_session(session, expires_at).await {
            Err(StoreError::ExpiryNotInFuture { expires_at: refused, .. }) => assert_eq!(refused, expires_at),
            other => panic!("revoke_session until {expires_at} (not in the future) gave {other:?}"),
        }
    }
    assert!(!store.state(None, session).await.expect("state").session_revoked);
    store.revoke_session(session, unix_now() + 3600).await.expect("revoke_session");
    assert!(store.revoke_session(session, 1).await.is_err());
    assert!(
        store.state(None, session).await.expect("state").session_revoked,
        "a refused call undid an entry"
    );
}

/// A second revocation with an earlier expiry keeps the later one: waits
/// until the earlier expiry has passed and checks that the session is still
/// denylisted (after another revocation, which lets stores purge), and that
/// its entry has not expired: `revoke_session_once`, which takes an expired
/// entry for none, finds it. (A store may keep expired entries a while, so
/// `state` alone would not tell.)
pub async fn denylist_entries_are_never_shortened<S: RevocationStore>(store: &S) {
    let session = fresh_session();
    let start = unix_now();
    store.revoke_session(session, start + 3600).await.expect("revoke_session");
    store.revoke_session(session, start + 1).await.expect("revoke_session with an earlier expiry");
    sleep_until_unix(start + 2).await;
    store.revoke_session(fresh_session(), unix_now() + 3600).await.expect("revoke_session");
    let state = store.state(None, session).await.expect("state");
    assert!(
        state.session_revoked,
        "a denylist entry was shortened by a later revocation with an earlier expiry"
    );
    let expired = store.revoke_session_once(session, unix_now() + 3600).await.expect("revoke_session_once");
    assert!(
        !expired,
        "a denylist entry was shortened by a later revocation with an earlier expiry (it expired)"
    );
}

/// `revoke_session_once` writes an entry only where there is none: the
/// first call says `true`, later ones `false` (also for a session that
/// [`RevocationStore::revoke_session`] denylisted), and an expiry that is
/// not in the future is refused without writing anything. An entry that has
/// expired is no entry: waits for one to pass and writes it again.
pub async fn a_session_is_denylisted_once<S: RevocationStore>(store: &S) {
    let (session, revoked, refused) = (fresh_session(), fresh_session(), fresh_session());
    let start = unix_now();
    let first = store.revoke_session_once(session, start + 2).await;
    assert_eq!(first.ok(), Some(true), "revoke_session_once of a new session must write its entry");
    assert!(store.state(None, session).await.expect("state").session_revoked, "and deny it at once");
    let again = store.revoke_session_once(session, start + 3600).await;
    assert_eq!(again.ok(), Some(false), "revoke_session_once of a denylisted session must say false");
    store.revoke_session(revoked, start + 3600).await.expect("revoke_session");
    let after_revoke = store.revoke_session_once(revoked, start + 3600).await;
    assert_eq!(after_revoke.ok(), Some(false), "a session revoke_session denylisted is denylisted already");
    for past in [start.saturating_sub(10), unix_now()] {
        match store.revoke_session_once(refused, past).await {
            Err(StoreError::ExpiryNotInFuture { expires_at, .. }) => assert_eq!(expires_at, past),
            other => panic!("revoke_session_once until {past} (not in the future) gave {other:?}"),
        }
    }
    assert!(
        !store.state(None, refused).await.expect("state").session_revoked,
        "a refused call wrote an entry"
    );
    // The first entry ends at `start + 2`; the `false` above did not extend it.
    sleep_until_unix(start + 3).await;
    let expired = store.revoke_session_once(session, unix_now() + 3600).await;
    assert_eq!(expired.ok(), Some(true), "an expired entry must not make revoke_session_once say false");
}

/// Of concurrent `revoke_session_once` calls for one session, exactly one
/// says `true`: the check and the write are one step in the store. (A store
/// that reads and then writes across the network lets every call of a
/// round read before any writes, and they all say `true`.) The calls run on
/// one task, so this cannot catch a store whose read and write never wait
/// (local, under two separate locks) but race between threads.
/// [`MemoryStore`](crate::MemoryStore) does both under one lock.
pub async fn of_concurrent_denials_of_one_session_exactly_one_writes<S: RevocationStore>(store: &S) {
    for _ in 0..5 {
        let session = fresh_session();
        let until = unix_now() + 3600;
        let results = all((0..8).map(|_| store.revoke_session_once(session, until))).await;
        let written = results.iter().filter(|result| matches!(result, Ok(true))).count();
        assert!(results.iter().all(Result::is_ok), "concurrent revoke_session_once failed: {results:?}");
        assert_eq!(written, 1, "of 8 concurrent revoke_session_once calls, {written} said they wrote");
    }
}

/// Awaits every future of `futures` at once (each polled in turn, as a
/// server's concurrent requests progress); their outputs in order.
async fn all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut running: Vec<_> = futures.into_iter().map(|future| (Box::pin(future), None)).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in &mut running {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(done) => *output = Some(done),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(running.drain(..).filter_map(|(_, output)| output).collect())
        }
    })
    .await
}

/// A check whose store read began before a revocation returned may answer
/// with the state from before it, but must never cache that answer: the
/// next check sees the revocation. The check is polled once (its read
/// starts), the revocation runs to completion, then the check finishes.
///
/// Returns, for each of its three rounds (a user's logout everywhere, a
/// session's logout, everyone's), whether the check answered with the
/// state from before the revocation: only those rounds test the cache. A
/// store whose first poll does not send its read (a pool that pings a
/// connection before handing it out, as sqlx's do by default) reads after
/// the revocation, and passes whatever its cache does; a store's own test
/// can build it so that the read goes at once and expect every round to.
///
/// # Panics
/// As every check here, on a store that fails it; and if the store's
/// cutoff stays ahead of this host's clock for three seconds.
pub async fn a_read_that_began_before_a_revocation_is_never_cached<S: RevocationStore>(
    store: &S,
) -> [bool; 3] {
    // As in a server in use, a pool has its connections open, with the
    // check's statement prepared on each: opening or preparing takes the
    // first poll, and the read would go only at the next.
    for state in all((0..8).map(|_| store.state(Some("conformance-warm"), fresh_session()))).await {
        state.expect("state");
    }
    let mut read_before = [false; 3];
    for (round, read_before) in read_before.iter_mut().enumerate() {
        let (user, session) = (fresh_user(), fresh_session());
        let before = store.state(None, fresh_session()).await.expect("state").revoked_through;
        // A store's cutoff is its time at most: within the second of the
        // current one (a store just made) no cutoff would move it.
        for _ in 0..60 {
            if round != 2 || unix_now() > before {
                break;
            }
            sleep(Duration::from_millis(50)).await;
        }
        assert!(
            round != 2 || unix_now() > before,
            "the store's cutoff {before} stays ahead of this host's clock"
        );
        let mut check = Box::pin(store.state(Some(&user), session));
        let first = check.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        // Let the read reach the store and its answer come back.
        sleep(Duration::from_millis(50)).await;
        match round {
            0 => assert_eq!(store.revoke_user(&user).await.ok(), Some(1), "revoke_user"),
            1 => store.revoke_session(session, unix_now() + 3600).await.expect("revoke_session"),
            // A cutoff past the current one (one second ahead at most).
            _ => drop(store.revoke_all(before + 1).await.expect("revoke_all")),
        }
        let answer = match first {
            Poll::Ready(answer) => answer.expect("state"),
            Poll::Pending => check.await.expect("state"),
        };
        let shows = |state: &crate::RevocationState| match round {
            0 => state.user_epoch == 1,
            1 => state.session_revoked,
            _ => state.revoked_through > before,
        };
        *read_before = !shows(&answer);
        let after = store.state(Some(&user), session).await.expect("state");
        assert!(
            shows(&after),
            "round {round}: a check after the revocation got the answer read before it: {after:?}"
        );
    }
    read_before
}

/// `revoke_all` returns the new cutoff, which `state` and `login_state`
/// show at once: at least the store's time, never earlier than before.
/// (Through this API a cutoff is never ahead of the store's time, where
/// "never earlier" matters most: each store's own tests write one ahead by
/// other means, `a_cutoff_ahead_of_the_stores_time_is_never_lowered`.)
pub async fn revoke_all_moves_the_cutoff_forward_only<S: RevocationStore>(store: &S) {
    let before = store.state(None, fresh_session()).await.expect("state").revoked_through;
    let first = store.revoke_all(0).await.expect("revoke_all");
    assert!(first >= before, "revoke_all moved the cutoff back ({first} < {before})");
    assert!(first >= unix_now().saturating_sub(1), "revoke_all must revoke at least up to the store's time");
    let shown = store.state(None, fresh_session()).await.expect("state").revoked_through;
    assert_eq!(shown, first, "state must show the cutoff revoke_all returned");
    let second = store.revoke_all(unix_now()).await.expect("revoke_all");
    assert!(second >= first);
    let third = store.revoke_all(first).await.expect("revoke_all");
    // Later than `second` only if the store's second moved on meanwhile.
    assert!(third >= second, "revoke_all must never move the cutoff back ({third} < {second})");
    let login = store.login_state(&fresh_user()).await.expect("login_state");
    assert_eq!(login.revoked_through, third, "login_state must show the cutoff");
}

/// A caller whose clock runs hours ahead (a misconfigured server or
/// operator host) cannot push the cutoff past the store's own time: that
/// would refuse every login, everywhere, until then, and nothing could
/// lower it again. Stores with a clock date the cutoff by it.
pub async fn a_caller_ahead_of_the_store_cannot_push_the_cutoff<S: RevocationStore>(store: &S) {
    let six_hours_ahead = unix_now() + 6 * 3600;
    let cutoff = store.revoke_all(six_hours_ahead).await.expect("revoke_all");
    assert!(
        cutoff <= unix_now() + 1,
        "revoke_all({six_hours_ahead}) set the cutoff {cutoff}, ahead of the store's time {}",
        unix_now()
    );
    let login = store.login_state(&fresh_user()).await.expect("login_state");
    assert_eq!(login.revoked_through, cutoff, "login_state must show the cutoff revoke_all returned");
    // And a login on a correct clock still opens.
    let sealer = Sealer::builder(Keyring::generate().expect("keyring")).build().expect("sealer");
    let verifier = Verifier::new(sealer, store);
    let session = verifier.login(&fresh_user(), ()).await.expect("a login after a caller far ahead");
    let token = verifier.sealer().seal(&session).expect("seal");
    assert!(verifier.open::<()>(&token).await.is_ok(), "a login after a caller far ahead must open");
}

/// Through a [`Verifier`], on the system clock: a global logout refuses
/// every session issued before it, and a login just after it (in the same
/// second) opens. Run it on a store whose cutoff is not ahead of the clock.
pub async fn logout_all_refuses_every_earlier_session_and_no_later_login<S: RevocationStore>(store: &S) {
    let sealer = Sealer::builder(Keyring::generate().expect("keyring")).build().expect("sealer");
    let verifier = Verifier::new(sealer, store);
    let login = async || {
        let session = verifier.login(&fresh_user(), ()).await.expect("login");
        verifier.sealer().seal(&session).expect("seal")
    };
    let first = login().await;
    assert!(verifier.open::<()>(&first).await.is_ok(), "a login must open at once");
    verifier.logout_all().await.expect("logout_all");
    let refused = verifier.open::<()>(&first).await;
    assert!(matches!(refused, Err(VerifyError::Revoked(Revocation::All))), "after logout_all: {refused:?}");
    // A login right after it opens (it waits for the cutoff's second to pass)...
    let second = login().await;
    assert!(verifier.open::<()>(&second).await.is_ok(), "a login right after logout_all must open");
    // ...and the next global logout refuses it.
    verifier.logout_all().await.expect("logout_all");
    let refused = verifier.open::<()>(&second).await;
    assert!(matches!(refused, Err(VerifyError::Revoked(Revocation::All))), "after logout_all: {refused:?}");
}

async fn sleep_until_unix(deadline: u64) {
    let now = time::OffsetDateTime::now_utc();
    let target = time::OffsetDateTime::from_unix_timestamp(i64::try_from(deadline).expect("deadline"))
        .expect("deadline");
    if target > now {
        sleep((target - now).unsigned_abs() + Duration::from_millis(50)).await;
    }
}

/// Runs every check of a [`SessionRegistry`](crate::SessionRegistry) that
/// is also the revocation store (as the crate's stores are); panics with a
/// message naming the first that fails.
///
/// ```
/// # pollster::block_on(async {
/// sealed_session::conformance::run_registry(&sealed_session::MemoryStore::new()).await;
/// # });
/// ```
pub async fn run_registry<S: RevocationStore + crate::SessionRegistry>(store: &S) {
    records_are_listed_per_user_oldest_first_as_recorded(store).await;
    recording_a_session_again_replaces_its_record(store).await;
    records_are_removed_one_by_one_or_all_of_a_user(store).await;
    expired_records_are_not_listed(store).await;
    a_user_keeps_at_most_the_bounded_number_of_records(store).await;
    expired_records_never_push_a_live_one_out(store).await;
    a_record_expired_when_written_never_pushes_a_live_one_out(store).await;
    a_record_never_makes_a_revoked_session_open(store).await;
    user_ids_of_every_shape_are_kept_apart_in_the_registry(store).await;
}

fn record(user: &str, created_at: u64, label: &str) -> crate::SessionRecord {
    crate::SessionRecord {
        id: fresh_session(),
        user_id: user.to_owned(),
        epoch: 0,
        created_at,
        last_seen: created_at,
        expires_at: unix_now() + 3600,
        user_agent: label.to_owned(),
        remembered: false,
        device_bound: false,
    }
}

/// A user's records come back as recorded, oldest first; another user's
/// never.
pub async fn records_are_listed_per_user_oldest_first_as_recorded<S: crate::SessionRegistry>(store: &S) {
    let (user, other) = (fresh_user(), fresh_user());
    let now = unix_now();
    let mut newer = record(&user, now - 10, "Firefox on Windows");
    newer.remembered = true;
    newer.epoch = 3;
    let mut older = record(&user, now - 20, "Chrome on Linux");
    older.device_bound = true;
    older.last_seen = now - 5;
    for r in [&newer, &older, &record(&other, now - 30, "Safari on macOS")] {
        store.record(r).await.expect("record a session");
    }
    let listed = store.list(&user, now).await.expect("list a user's sessions");
    assert_eq!(listed, [older, newer], "the user's records, oldest first, every field as recorded");
    assert!(store.list(&fresh_user(), now).await.expect("list").is_empty(), "a user with none");
}

/// The records of users whose IDs differ only by case, an accent, a
/// trailing space or a separator, or are long, are kept apart: each user
/// lists their own alone.
pub async fn user_ids_of_every_shape_are_kept_apart_in_the_registry<S: crate::SessionRegistry>(store: &S) {
    let shapes = user_id_shapes();
    let now = unix_now();
    let records: Vec<_> = shapes.iter().map(|user| record(user, now - 10, "Chrome on Linux")).collect();
    for r in &records {
        store.record(r).await.expect("record a session");
    }
    for (i, (user, r)) in shapes.iter().zip(&records).enumerate() {
        let listed = store.list(user, now).await.expect("list a user's sessions");
        assert_eq!(listed, std::slice::from_ref(r), "user {i} lists its own record alone");
    }
}

/// Recording a session again replaces its record: its last activity moves,
/// and it is listed once.
pub async fn recording_a_session_again_replaces_its_record<S: crate::SessionRegistry>(store: &S) {
    let user = fresh_user();
    let now = unix_now();
    let mut first = record(&user, now - 100, "Chrome on Linux");
    store.record(&first).await.expect("record");
    first.last_seen = now;
    first.device_bound = true;
    store.record(&first).await.expect("record again");
    assert_eq!(store.list(&user, now).await.expect("list"), [first]);
}

/// `remove` removes one record, `remove_user` all of a user's; removing
/// what is not there is no error.
pub async fn records_are_removed_one_by_one_or_all_of_a_user<S: crate::SessionRegistry>(store: &S) {
    let (user, other) = (fresh_user(), fresh_user());
    let now = unix_now();
    let (a, b, c) = (record(&user, now - 3, "a"), record(&user, now - 2, "b"), record(&other, now - 1, "c"));
    for r in [&a, &b, &c] {
        store.record(r).await.expect("record");
    }
    store.remove(&user, a.id).await.expect("remove one");
    store.remove(&user, c.id).await.expect("removing another user's session removes nothing");
    store.remove(&user, fresh_session()).await.expect("removing an unknown session is no error");
    assert_eq!(store.list(&user, now).await.expect("list"), [b]);
    store.remove_user(&user).await.expect("remove a user's records");
    assert!(store.list(&user, now).await.expect("list").is_empty());
    assert_eq!(store.list(&other, now).await.expect("list"), [c], "another user's records stay");
    store.remove_user(&fresh_user()).await.expect("removing an unknown user is no error");
}

/// A record is not listed once its session's absolute expiry has passed.
pub async fn expired_records_are_not_listed<S: crate::SessionRegistry>(store: &S) {
    let user = fresh_user();
    let now = unix_now();
    let live = record(&user, now - 10, "live");
    let mut ending = record(&user, now - 20, "ending");
    ending.expires_at = now + 2;
    store.record(&live).await.expect("record");
    store.record(&ending).await.expect("record");
    assert_eq!(store.list(&user, now).await.expect("list").len(), 2);
    assert_eq!(store.list(&user, now + 2).await.expect("list"), [live], "expired at its expiry");
}

/// Recording more than [`MAX_RECORDS_PER_USER`](crate::registry::MAX_RECORDS_PER_USER)
/// sessions of one user drops the oldest.
pub async fn a_user_keeps_at_most_the_bounded_number_of_records<S: crate::SessionRegistry>(store: &S) {
    let user = fresh_user();
    let now = unix_now();
    let max = crate::registry::MAX_RECORDS_PER_USER as u64;
    let records: Vec<_> = (0..=max).map(|i| record(&user, now - 1000 + i, "many")).collect();
    for r in &records {
        store.record(r).await.expect("record");
    }
    let listed = store.list(&user, now).await.expect("list");
    assert_eq!(listed.len() as u64, max, "bounded");
    assert_eq!(listed.first().map(|r| r.id), records.get(1).map(|r| r.id), "the oldest was dropped");
}

/// The bound counts records that have not expired: however many newer
/// ones have expired since they were written, a live record is not
/// dropped for them. (Sleeps two seconds, for the store's own clock.)
pub async fn expired_records_never_push_a_live_one_out<S: crate::SessionRegistry>(store: &S) {
    let user = fresh_user();
    let now = unix_now();
    let max = crate::registry::MAX_RECORDS_PER_USER as u64;
    let oldest = record(&user, now - 2000, "oldest");
    store.record(&oldest).await.expect("record");
    for i in 0..max - 1 {
        let mut ending = record(&user, now - 1000 + i, "ending");
        ending.expires_at = now + 1;
        store.record(&ending).await.expect("record");
    }
    sleep_until_unix(now + 2).await;
    let newest = record(&user, now, "newest");
    store.record(&newest).await.expect("record");
    let listed = store.list(&user, now + 2).await.expect("list");
    assert_eq!(listed, [oldest, newest], "a live record was dropped for records that had expired");
}

/// A record written already expired (the newest by its creation) is not
/// kept, and pushes none of the bounded number of live records out.
pub async fn a_record_expired_when_written_never_pushes_a_live_one_out<S: crate::SessionRegistry>(store: &S) {
    let user = fresh_user();
    let now = unix_now();
    let max = crate::registry::MAX_RECORDS_PER_USER as u64;
    let live: Vec<_> = (0..max).map(|i| record(&user, now - 1000 + i, "live")).collect();
    for r in &live {
        store.record(r).await.expect("record");
    }
    let mut expired = record(&user, now, "expired");
    expired.expires_at = now - 10;
    store.record(&expired).await.expect("record an expired session");
    let listed = store.list(&user, now).await.expect("list");
    assert_eq!(listed, live, "a live record was dropped for one written expired");
}

/// A session that is recorded and then revoked does not open, and its
/// record says so against the store's state.
pub async fn a_record_never_makes_a_revoked_session_open<S: RevocationStore + crate::SessionRegistry>(
    store: &S,
) {
    let keyring = Keyring::generate().expect("a keyring");
    let verifier = Verifier::new(Sealer::builder(keyring).build().expect("a sealer"), store);
    let user = fresh_user();
    let session = verifier.login(&user, ()).await.expect("login");
    let token = verifier.sealer().seal(&session).expect("seal");
    let opened = verifier.open::<()>(&token).await.expect("a fresh session opens");
    let recorded =
        crate::SessionRecord::of(opened.session(), "Chrome on Linux", unix_now()).expect("a record");
    store.record(&recorded).await.expect("record");
    let expiry = recorded.expires_at + 60;
    store.revoke_session(session.id(), expiry).await.expect("revoke the session");
    let refused = verifier.open::<()>(&token).await;
    assert!(
        matches!(refused, Err(VerifyError::Revoked(Revocation::Session))),
        "a recorded session is refused once revoked: {refused:?}"
    );
    let state = store.state(Some(&user), session.id()).await.expect("state");
    assert!(recorded.is_revoked(&state), "its record reads as revoked");
    assert_eq!(store.list(&user, unix_now()).await.expect("list").len(), 1, "the list is no source of truth");
}
