//! The keyring schedule (`activate_at`, `retire_at`) through the public API,
//! with an injected clock: which key seals, which keys open, which refuse,
//! what the validation refuses, and the rolling rotation a cron job runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::time::Duration;

use sealed_session::{
    KeySpec, KeyState, Keyring, KeyringError, ManualClock, MasterKey, OpenError, Reissue, RotationPolicy,
    Sealer, SealingPeriod, Session,
};
use time::OffsetDateTime;

const T0: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

fn spec(id: u32, state: KeyState) -> KeySpec {
    KeySpec::new(id, state, MasterKey::from_slice(&[id as u8; 32]).unwrap())
}

fn sealer(keyring: Keyring, clock: &ManualClock) -> Sealer {
    Sealer::builder(keyring)
        .absolute_timeout(Duration::from_secs(30 * 86_400))
        .idle_timeout(Duration::from_secs(30 * 86_400))
        .renew_after(Duration::from_secs(30 * 86_400))
        .leeway(Duration::from_secs(120))
        .clock(clock.clone())
        .build()
        .unwrap()
}

/// Key 1 primary; key 2 activates at T0 + 100; key 1 retires at T0 + 1000.
fn scheduled() -> Keyring {
    Keyring::new([
        spec(1, KeyState::Primary).retire_at(at(T0 + 1000)),
        spec(2, KeyState::Active).activate_at(at(T0 + 100)),
    ])
    .unwrap()
}

/// A key every 30 days, kept 90 days after it stops sealing.
fn monthly() -> RotationPolicy {
    RotationPolicy::new(Duration::from_secs(30 * DAY as u64), Duration::from_secs(90 * DAY as u64))
}

fn key_id_of(sealer: &Sealer) -> u32 {
    let token = sealer.seal(&Session::new(())).unwrap();
    sealer.open::<()>(&token).unwrap().key_id()
}

/// The key ID a masked CSRF token names: its first four bytes XORed with
/// the pad's (docs/FORMAT.md).
fn csrf_key_id(token: &str) -> u32 {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).unwrap();
    u32::from_be_bytes(std::array::from_fn(|i| bytes[i] ^ bytes[36 + i]))
}

#[test]
fn the_sealing_key_switches_at_its_activation_second() {
    let clock = ManualClock::at_unix(T0 + 99);
    let sealer = sealer(scheduled(), &clock);
    assert_eq!(key_id_of(&sealer), 1);
    assert_eq!(csrf_key_id(&sealer.csrf_token(&Session::new(()))), 1);
    clock.set_unix(T0 + 100);
    assert_eq!(key_id_of(&sealer), 2);
    // The CSRF token follows the same key.
    assert_eq!(csrf_key_id(&sealer.csrf_token(&Session::new(()))), 2);
}

#[test]
fn a_key_not_yet_active_opens_tokens_from_hosts_whose_clocks_run_ahead() {
    let ahead = ManualClock::at_unix(T0 + 150);
    let behind = ManualClock::at_unix(T0 + 50);
    let token = sealer(scheduled(), &ahead).seal(&Session::new(())).unwrap();
    let opened = sealer(scheduled(), &behind).open::<()>(&token).unwrap();
    assert_eq!(opened.key_id(), 2);
    // Key 2 does not seal here yet, but is the next key: the token is kept
    // as it is, not sealed back under key 1 (the cookie would move to and
    // fro between hosts until the switch).
    assert_eq!(opened.reissue(), None);
    // A token under key 1 is not re-issued here either: key 1 still seals.
    let older = sealer(scheduled(), &behind).seal(&Session::new(())).unwrap();
    assert_eq!(sealer(scheduled(), &behind).open::<()>(&older).unwrap().reissue(), None);
}

/// A key scheduled to seal later opens no token before its time, less the
/// leeway, whatever times the token says: a copy of the keyring file
/// (which holds the key days ahead) forges nothing meanwhile. Tokens a
/// host whose clock runs ahead sealed under it are refused as not yet
/// valid anyway past the leeway.
#[test]
fn a_scheduled_key_opens_nothing_before_its_time_less_the_leeway() {
    let forger = ManualClock::at_unix(T0 - 300);
    let forged =
        sealer(Keyring::new([spec(2, KeyState::Primary)]).unwrap(), &forger).seal(&Session::new(())).unwrap();
    // Key 2 activates at T0 + 100; the leeway is 120 s.
    let clock = ManualClock::at_unix(T0 - 21);
    assert!(matches!(sealer(scheduled(), &clock).open::<()>(&forged), Err(OpenError::NotYetValid)));
    clock.set_unix(T0 - 20);
    assert_eq!(sealer(scheduled(), &clock).open::<()>(&forged).unwrap().key_id(), 2);
    // An operator still reads it (no times are checked there).
    clock.set_unix(T0 - 3 * DAY);
    assert_eq!(sealer(scheduled(), &clock).inspect(&forged).unwrap().key_id, 2);
}

#[test]
fn tokens_of_the_old_key_open_and_are_reissued_until_it_retires() {
    let clock = ManualClock::at_unix(T0);
    let sealer = sealer(scheduled(), &clock);
    let old = sealer.seal(&Session::new(())).unwrap();
    assert_eq!(sealer.open::<()>(&old).unwrap().reissue(), None);
    clock.set_unix(T0 + 100);
    assert_eq!(sealer.open::<()>(&old).unwrap().reissue(), Some(Reissue::KeyRotation));
    clock.set_unix(T0 + 999);
    assert!(sealer.open::<()>(&old).is_ok());
    clock.set_unix(T0 + 1000);
    assert!(matches!(sealer.open::<()>(&old), Err(OpenError::RetiredKey(1))));
}

#[test]
fn a_csrf_token_under_a_key_past_its_retire_date_is_refused() {
    let clock = ManualClock::at_unix(T0);
    let sealer = sealer(scheduled(), &clock);
    let session = Session::new(());
    let token = sealer.csrf_token(&session);
    assert!(sealer.verify_csrf(&session, &token).is_ok());
    clock.set_unix(T0 + 999);
    assert!(sealer.verify_csrf(&session, &token).is_ok());
    clock.set_unix(T0 + 1000);
    assert!(sealer.verify_csrf(&session, &token).is_err());
}

/// Like a token, a CSRF token under a key scheduled to seal later is
/// refused before the key's time less the leeway: a copy of the keyring
/// file taken early forges none.
#[test]
fn a_csrf_token_under_a_key_ahead_of_its_time_is_refused() {
    let session = Session::new(());
    let forger = ManualClock::at_unix(T0 - 3 * DAY);
    let forged = sealer(Keyring::new([spec(2, KeyState::Primary)]).unwrap(), &forger).csrf_token(&session);
    // Key 2 activates at T0 + 100; the leeway is 120 s.
    let clock = ManualClock::at_unix(T0 - 21);
    assert!(sealer(scheduled(), &clock).verify_csrf(&session, &forged).is_err());
    clock.set_unix(T0 - 20);
    assert!(sealer(scheduled(), &clock).verify_csrf(&session, &forged).is_ok());
}

#[test]
fn state_at_and_the_periods_describe_the_schedule() {
    let keyring = scheduled();
    let state = |id, t| keyring.state_at(id, at(t)).unwrap();
    assert_eq!((state(1, T0 + 99), state(2, T0 + 99)), (KeyState::Primary, KeyState::Active));
    assert_eq!((state(1, T0 + 100), state(2, T0 + 100)), (KeyState::Active, KeyState::Primary));
    assert_eq!((state(1, T0 + 1000), state(2, T0 + 1000)), (KeyState::Retired, KeyState::Primary));
    assert_eq!(keyring.state_at(3, at(T0)), None);
    let periods = keyring.sealing_periods();
    assert_eq!(
        periods.iter().map(|p| (p.from, p.key_id)).collect::<Vec<_>>(),
        [(None, 1), (Some(at(T0 + 100)), 2)]
    );
    let _: &SealingPeriod = &periods[0];
    assert_eq!(keyring.primary_id(), 1);
}

#[test]
fn the_most_recently_activated_key_seals() {
    let keyring = Keyring::new([
        spec(1, KeyState::Primary),
        spec(3, KeyState::Active).activate_at(at(T0 + 200)),
        spec(2, KeyState::Active).activate_at(at(T0 + 100)),
    ])
    .unwrap();
    let ids: Vec<u32> = [T0, T0 + 100, T0 + 199, T0 + 200, T0 + 10 * DAY]
        .into_iter()
        .map(|t| keyring.sealing_id_at(at(t)))
        .collect();
    assert_eq!(ids, [1, 2, 2, 3, 3]);
}

#[test]
fn schedules_that_cannot_work_are_refused() {
    let primary_retires_alone = Keyring::new([spec(1, KeyState::Primary).retire_at(at(T0))]);
    assert!(
        matches!(primary_retires_alone, Err(KeyringError::NoSealingKey { at: when }) if when == at(T0)),
        "{primary_retires_alone:?}"
    );
    let successor_too_late = Keyring::new([
        spec(1, KeyState::Primary).retire_at(at(T0)),
        spec(2, KeyState::Active).activate_at(at(T0 + 1)),
    ]);
    assert!(matches!(successor_too_late, Err(KeyringError::NoSealingKey { .. })), "{successor_too_late:?}");
    // Key 2 seals from T0 and retires at T0 + 10 while key 3 waits until
    // T0 + 20: the primary would seal again in between.
    let fallback = Keyring::new([
        spec(1, KeyState::Primary),
        spec(2, KeyState::Active).activate_at(at(T0)).retire_at(at(T0 + 10)),
        spec(3, KeyState::Active).activate_at(at(T0 + 20)),
    ]);
    assert!(
        matches!(fallback, Err(KeyringError::RetiredBeforeSuccessor { id: 2, at: when }) if when == at(T0 + 10)),
        "{fallback:?}"
    );
    let same = Keyring::new([
        spec(1, KeyState::Primary),
        spec(2, KeyState::Active).activate_at(at(T0)),
        spec(3, KeyState::Active).activate_at(at(T0)),
    ]);
    assert!(matches!(same, Err(KeyringError::SameActivation { first: 2, second: 3 })), "{same:?}");
    let backwards = Keyring::new([
        spec(1, KeyState::Primary),
        spec(2, KeyState::Active).activate_at(at(T0)).retire_at(at(T0)),
    ]);
    assert!(matches!(backwards, Err(KeyringError::RetiresBeforeActive(2))), "{backwards:?}");
    // The message says what to do and names the time.
    let message = Keyring::new([spec(1, KeyState::Primary).retire_at(at(T0))]).unwrap_err().to_string();
    assert!(message.contains("2027-01-15T08:00:00Z") && message.contains("successor"), "{message}");
}

#[test]
fn a_schedule_handing_over_cleanly_is_accepted() {
    // The primary retires the second its successor activates.
    let keyring = Keyring::new([
        spec(1, KeyState::Primary).retire_at(at(T0)),
        spec(2, KeyState::Active).activate_at(at(T0)),
    ])
    .unwrap();
    assert_eq!(keyring.sealing_id_at(at(T0 - 1)), 1);
    assert_eq!(keyring.sealing_id_at(at(T0)), 2);
    // A retired key and an active key without a schedule change nothing.
    let keyring = Keyring::new([
        spec(1, KeyState::Retired).retire_at(at(T0)).activate_at(at(T0 - 5)),
        spec(2, KeyState::Primary),
        spec(3, KeyState::Active),
    ])
    .unwrap();
    assert_eq!(keyring.sealing_periods().len(), 1);
}

/// Times are kept to the second, as sealing counts them and FORMAT.md
/// writes them: a fraction (from the file, or a time given as "now plus
/// an hour") is dropped, so that no opener comparing instants retires a
/// key later than this crate does.
#[test]
fn schedule_times_are_kept_to_the_second() {
    let fraction = time::Duration::milliseconds(900);
    let keyring = Keyring::new([
        spec(1, KeyState::Primary).created(at(T0) + fraction).retire_at(at(T0 + DAY) + fraction),
        spec(2, KeyState::Active).activate_at(at(T0 + 100) + fraction),
    ])
    .unwrap();
    let times: Vec<_> = keyring.keys().map(|k| (k.created, k.activate_at, k.retire_at)).collect();
    assert_eq!(times, [(Some(at(T0)), None, Some(at(T0 + DAY))), (None, Some(at(T0 + 100)), None)]);
    let text = keyring.to_toml_string();
    assert!(text.contains("retire_at = 2027-01-16T08:00:00Z\n"), "{}", &*text);
    let read = Keyring::from_toml_str(&text.replace("08:00:00Z\n", "08:00:00.999Z\n")).unwrap();
    assert_eq!(read.keys().next().unwrap().retire_at, Some(at(T0 + DAY)));
}

#[test]
fn the_schedule_round_trips_through_the_keyring_file() {
    let text = scheduled().to_toml_string();
    assert!(text.contains("activate_at = 2027-01-15T08:01:40Z"), "{}", &*text);
    assert!(text.contains("retire_at = 2027-01-15T08:16:40Z"), "{}", &*text);
    let again = Keyring::from_toml_str(&text).unwrap();
    assert_eq!(again.keys().cloned().collect::<Vec<_>>(), scheduled().keys().cloned().collect::<Vec<_>>());

    let secret = MasterKey::from_slice(&[1; 32]).unwrap().to_base64();
    let bad =
        format!("[[key]]\nid = 1\nstate = \"primary\"\nsecret = \"{}\"\nretire_at = \"soon\"\n", &*secret);
    let err = Keyring::from_toml_str(&bad).unwrap_err();
    assert!(matches!(err, KeyringError::InvalidField { field: "retire_at", .. }), "{err:?}");
    let local = format!(
        "[[key]]\nid = 1\nstate = \"primary\"\nsecret = \"{}\"\nactivate_at = 2027-01-01T00:00:00\n",
        &*secret
    );
    let err = Keyring::from_toml_str(&local).unwrap_err();
    assert!(matches!(err, KeyringError::InvalidField { field: "activate_at", .. }), "{err:?}");
}

#[test]
fn immediate_and_scheduled_steps_build_on_each_other() {
    let keyring = Keyring::new([spec(1, KeyState::Primary)]).unwrap();
    let (keyring, id) = keyring.with_new_key_activating_at(at(T0 + 100)).unwrap();
    assert_eq!((id, keyring.sealing_id_at(at(T0 + 100))), (2, 2));
    let keyring = keyring.with_retire_at_as_of(1, at(T0 + 500), at(T0)).unwrap();
    assert_eq!(keyring.state_at(1, at(T0 + 500)), Some(KeyState::Retired));
    assert!(matches!(keyring.with_retire_at_as_of(9, at(T0), at(T0)), Err(KeyringError::NoSuchKey(9))));
    // Retiring key 1 before key 2 activates leaves no sealing key.
    let early = keyring.with_retire_at_as_of(1, at(T0 + 50), at(T0));
    assert!(matches!(early, Err(KeyringError::NoSealingKey { .. })));
    // Its retire date may move while it has not come; once it has, the key
    // stays retired: a later date would make it open again.
    let later = keyring.with_retire_at_as_of(1, at(T0 + 900), at(T0 + 499)).unwrap();
    assert_eq!(later.state_at(1, at(T0 + 800)), Some(KeyState::Active));
    let undone = keyring.with_retire_at_as_of(1, at(T0 + 900), at(T0 + 500));
    assert!(matches!(undone, Err(KeyringError::AlreadyRetired(1))), "{undone:?}");
    assert!(matches!(
        keyring.with_new_key_activating_at(at(T0 + 100)),
        Err(KeyringError::SameActivation { first: 2, second: 3 })
    ));
}

/// `with_retired` takes effect now, so it refuses the key that seals now
/// by its schedule as it refuses the primary (a key activated in 2001 seals
/// on any machine running this test); a key activated before it retires.
#[test]
fn the_key_that_seals_now_by_its_schedule_cannot_be_retired() {
    let keyring = Keyring::new([
        spec(1, KeyState::Primary),
        spec(2, KeyState::Active).activate_at(at(978_307_200)),
        spec(3, KeyState::Active).activate_at(at(978_307_100)),
    ])
    .unwrap();
    let err = keyring.with_retired(2).unwrap_err();
    assert!(matches!(err, KeyringError::PrimaryRetired(2)) && err.to_string().contains("seals now"), "{err}");
    let retired = keyring.with_retired(3).unwrap();
    assert_eq!(retired.state_at(3, at(978_307_200)), Some(KeyState::Retired));
}

/// As of a given time: a key that seals then, or will within the clock
/// leeway (a server whose clock runs ahead seals with it already), is not
/// retired; one that activates later may be.
#[test]
fn a_key_that_seals_within_the_leeway_cannot_be_retired() {
    let keyring =
        Keyring::new([spec(1, KeyState::Primary), spec(2, KeyState::Active).activate_at(at(T0))]).unwrap();
    for now in [T0 - 60, T0 - 1, T0, T0 + 3600] {
        let err = keyring.with_retired_as_of(2, at(now)).unwrap_err();
        assert!(matches!(err, KeyringError::PrimaryRetired(2)), "at T0{:+}: {err:?}", now - T0);
    }
    let retired = keyring.with_retired_as_of(2, at(T0 - 61)).unwrap();
    assert_eq!(retired.state_at(2, at(T0)), Some(KeyState::Retired));
    assert_eq!(retired.sealing_id_at(at(T0)), 1, "the older key seals on");
    // The key in state `primary` never is, whatever the schedule says.
    assert!(matches!(keyring.with_retired_as_of(1, at(T0 + 3600)), Err(KeyringError::PrimaryRetired(1))));
    // A key that seals only for a moment inside the leeway is not either.
    let brief = Keyring::new([
        spec(1, KeyState::Primary),
        spec(2, KeyState::Active).activate_at(at(T0 + 10)),
        spec(3, KeyState::Active).activate_at(at(T0 + 30)),
    ])
    .unwrap();
    assert!(matches!(brief.with_retired_as_of(2, at(T0)), Err(KeyringError::PrimaryRetired(2))));
    assert!(brief.with_retired_as_of(2, at(T0 + 30)).is_ok(), "its moment has passed");
}

/// A key waiting to take over (leaked before its day, say), in a rolling
/// schedule where the key that seals now retires some time after the
/// waiting one takes over: retired alone, it would leave no key to seal
/// then, and the refusal says to replace it. Replaced, it is retired and a
/// new key takes over at its time; no other date changes (a leaked key
/// that seals now must not seal on).
#[test]
fn a_waiting_key_is_replaced_not_retired_alone() {
    let policy = monthly();
    let start = Keyring::new([spec(1, KeyState::Primary).created(at(T0))]).unwrap();
    let (ring, _) = start.rotated_at(at(T0), &policy).unwrap();
    let retire_at = |ring: &Keyring, id: u32| ring.keys().find(|k| k.id == id).unwrap().retire_at;
    assert_eq!(retire_at(&ring, 1), Some(at(T0 + 120 * DAY)));

    let err = ring.with_retired_as_of(2, at(T0 + DAY)).unwrap_err();
    assert!(
        matches!(err, KeyringError::WaitingKeyRetired { id: 2, predecessor: 1, at: when } if when == at(T0 + 120 * DAY)),
        "{err:?}"
    );
    assert!(err.to_string().contains("--replace"), "{err}");

    let (replaced, new) = ring.with_waiting_key_replaced_as_of(2, at(T0 + DAY)).unwrap();
    assert_eq!(new, 3);
    assert_eq!(replaced.state_at(2, at(T0 + DAY)), Some(KeyState::Retired));
    assert_eq!(replaced.sealing_id_at(at(T0 + 30 * DAY - 1)), 1);
    assert_eq!(replaced.sealing_id_at(at(T0 + 30 * DAY)), 3, "at key 2's time");
    assert_eq!(retire_at(&replaced, 1), Some(at(T0 + 120 * DAY)), "key 1 retires when it was to");
    // Only a key waiting to take over is replaced: not one that seals now,
    // or within the leeway, nor one with no activation time.
    for id in [1, 2] {
        let err = replaced.with_waiting_key_replaced_as_of(id, at(T0 + DAY)).unwrap_err();
        assert!(matches!(err, KeyringError::NotWaiting(i) if i == id), "{err:?}");
    }
    let err = replaced.with_waiting_key_replaced_as_of(3, at(T0 + 30 * DAY - 60)).unwrap_err();
    assert!(matches!(err, KeyringError::NotWaiting(3)), "{err:?}");
    assert!(matches!(ring.with_waiting_key_replaced_as_of(9, at(T0)), Err(KeyringError::NoSuchKey(9))));

    // Where the keyring is valid without it, a waiting key is retired
    // alone: key 3 takes over from key 1 before key 1's date.
    let three = Keyring::new([
        spec(1, KeyState::Primary).retire_at(at(T0 + 100 * DAY)),
        spec(2, KeyState::Active).activate_at(at(T0 + 30 * DAY)).retire_at(at(T0 + 150 * DAY)),
        spec(3, KeyState::Active).activate_at(at(T0 + 60 * DAY)),
    ])
    .unwrap();
    let retired = three.with_retired_as_of(2, at(T0)).unwrap();
    assert_eq!(retire_at(&retired, 1), Some(at(T0 + 100 * DAY)));
    assert_eq!(retired.sealing_id_at(at(T0 + 59 * DAY)), 1);
    assert_eq!(retired.sealing_id_at(at(T0 + 60 * DAY)), 3);
}

/// A key whose retire date has passed is retired, though its state says
/// active: it cannot be promoted (the refusal says so, rather than that no
/// key would seal).
#[test]
fn a_key_past_its_retire_date_cannot_be_promoted() {
    let past = at(978_307_200); // 2001-01-01
    let keyring =
        Keyring::new([spec(1, KeyState::Primary), spec(2, KeyState::Active).retire_at(past)]).unwrap();
    let err = keyring.with_primary(2).unwrap_err();
    assert!(matches!(err, KeyringError::RetiredKeyPromoted(2)), "{err:?}");
    let retired = Keyring::new([spec(1, KeyState::Primary), spec(2, KeyState::Retired)]).unwrap();
    assert!(matches!(retired.with_primary(2), Err(KeyringError::RetiredKeyPromoted(2))));
}

/// At one time: the key that seals, and what keys 1 to 6 do.
type Moment = (u32, Vec<(u32, Option<KeyState>)>);

#[test]
fn a_promotion_overrides_the_schedule() {
    let keyring = Keyring::new([
        spec(1, KeyState::Primary),
        spec(2, KeyState::Active).activate_at(at(T0)),
        spec(3, KeyState::Active).activate_at(at(T0 + DAY)),
        spec(4, KeyState::Active),
    ])
    .unwrap();
    assert_eq!(keyring.sealing_id_at(at(T0 + 1)), 2);
    let promoted = keyring.with_primary(4).unwrap();
    for t in [T0 - 1, T0 + 1, T0 + 2 * DAY] {
        assert_eq!(promoted.sealing_id_at(at(t)), 4, "at {t}");
    }
    assert_eq!(promoted.state_at(3, at(T0 + 2 * DAY)), Some(KeyState::Active));
    // A scheduled key promoted before its time keeps no date: a primary
    // key's counts for nothing, and would mislead a reader of the file.
    let early = keyring.with_primary(3).unwrap();
    assert!(early.keys().all(|k| k.activate_at.is_none()), "{:?}", early.keys().collect::<Vec<_>>());
}

/// Which key seals and what each key does at each of `times`.
fn behaviour(keyring: &Keyring, times: &[i64]) -> Vec<Moment> {
    times
        .iter()
        .map(|&t| {
            let states = (1..=6).map(|id| (id, keyring.state_at(id, at(t)))).collect();
            (keyring.sealing_id_at(at(t)), states)
        })
        .collect()
}

#[test]
fn normalizing_changes_nothing_from_then_on() {
    let keyring = Keyring::new([
        spec(1, KeyState::Primary).retire_at(at(T0 + 300)),
        spec(2, KeyState::Active).activate_at(at(T0 + 100)).retire_at(at(T0 + 600)),
        spec(3, KeyState::Active).activate_at(at(T0 + 500)),
        spec(4, KeyState::Active),
        spec(5, KeyState::Retired),
    ])
    .unwrap();
    for now in [T0, T0 + 100, T0 + 350, T0 + 500, T0 + 700] {
        let normal = keyring.normalized_at(at(now)).unwrap();
        let later: Vec<i64> = (0..80).map(|i| now + i * 10).collect();
        assert_eq!(behaviour(&normal, &later), behaviour(&keyring, &later), "normalized at {now}");
        assert_eq!(normal.primary_id(), keyring.sealing_id_at(at(now)));
    }
    let normal = keyring.normalized_at(at(T0 + 350)).unwrap();
    let states: Vec<(u32, KeyState, bool)> =
        normal.keys().map(|k| (k.id, k.state, k.activate_at.is_some())).collect();
    assert_eq!(
        states,
        [
            (1, KeyState::Retired, false),
            (2, KeyState::Primary, true),
            (3, KeyState::Active, true),
            (4, KeyState::Active, false),
            (5, KeyState::Retired, false),
        ]
    );
}

#[test]
fn a_rolling_rotation_keeps_one_key_waiting_and_retires_replaced_ones() {
    let policy = monthly();
    let start = Keyring::new([spec(1, KeyState::Primary).created(at(T0))]).unwrap();

    // Day 0: key 2 is added to seal from day 30.
    let (day0, added) = start.rotated_at(at(T0), &policy).unwrap();
    assert_eq!(added, Some(2));
    assert_eq!(day0.sealing_id_at(at(T0 + 30 * DAY - 1)), 1);
    assert_eq!(day0.sealing_id_at(at(T0 + 30 * DAY)), 2);
    // Key 1 opens for 90 days after key 2 took over.
    assert_eq!(day0.state_at(1, at(T0 + 120 * DAY - 1)), Some(KeyState::Active));
    assert_eq!(day0.state_at(1, at(T0 + 120 * DAY)), Some(KeyState::Retired));
    // Run again the same day: nothing changes.
    let (again, added) = day0.rotated_at(at(T0 + 3600), &policy).unwrap();
    assert_eq!(added, None);
    assert_eq!(again.keys().cloned().collect::<Vec<_>>(), day0.keys().cloned().collect::<Vec<_>>());

    // Day 31: key 2 seals and is written as primary; key 3 waits for day 60.
    let (day31, added) = day0.rotated_at(at(T0 + 31 * DAY), &policy).unwrap();
    assert_eq!(added, Some(3));
    assert_eq!(day31.primary_id(), 2);
    assert_eq!(day31.sealing_id_at(at(T0 + 60 * DAY)), 3);
    assert_eq!(day31.state_at(1, at(T0 + 119 * DAY)), Some(KeyState::Active));
    assert_eq!(day31.state_at(2, at(T0 + 150 * DAY)), Some(KeyState::Retired));

    // A daily job for a year: never more than eight keys (the sealing one,
    // the waiting one, three that still open and three kept as retired for
    // 90 more days, then dropped), never a gap, and
    // a token sealed on any day opens for 90 days (its key is kept 90 days
    // after it stopped sealing).
    let mut ring = day31;
    let mut sealers = Vec::new();
    for day in 32..400 {
        let now = T0 + day * DAY;
        ring = ring.rotated_at(at(now), &policy).unwrap().0;
        assert!(ring.keys().count() <= 8, "day {day}: {:?}", ring);
        let sealing = ring.sealing_id_at(at(now));
        if sealers.last() != Some(&sealing) {
            sealers.push(sealing);
        }
        assert_ne!(ring.state_at(sealing, at(now + 90 * DAY - 1)), Some(KeyState::Retired), "day {day}");
    }
    // A new key every 30 days: days 60, 90, … 390.
    assert_eq!(sealers, (2..=14).collect::<Vec<u32>>());
    // A lead longer than the period pushes the activation out.
    let eager = RotationPolicy::new(Duration::from_secs(DAY as u64), Duration::from_secs(DAY as u64))
        .lead(Duration::from_secs(5 * DAY as u64));
    let (ring, _) = start.rotated_at(at(T0), &eager).unwrap();
    assert_eq!(ring.sealing_periods()[1].from, Some(at(T0 + 5 * DAY)));
    // A zero period, keep or lead is refused: a new key at every run, every
    // session ended at every rotation, or a key written late that seals at
    // once, before the file reached the other servers.
    let second = Duration::from_secs(1);
    for (every, keep, lead) in
        [(Duration::ZERO, second, second), (second, Duration::ZERO, second), (second, second, Duration::ZERO)]
    {
        let err = start.rotated_at(at(T0), &RotationPolicy::new(every, keep).lead(lead)).unwrap_err();
        assert!(matches!(err, KeyringError::ZeroRotationPolicy { .. }), "{err:?}");
    }
    assert!(start.rotated_at(at(T0), &RotationPolicy::new(second, second)).is_ok());
}

#[test]
fn a_rotation_keeps_the_dates_an_operator_set_and_dates_keys_added_by_hand() {
    let policy = monthly();
    let keyring = Keyring::new([
        spec(1, KeyState::Primary).created(at(T0)).retire_at(at(T0 + 100 * DAY)),
        spec(2, KeyState::Active).activate_at(at(T0 + 30 * DAY)),
        spec(3, KeyState::Retired),
        spec(4, KeyState::Active),
        spec(5, KeyState::Retired).retire_at(at(T0 - 10 * DAY)),
        spec(6, KeyState::Retired).retire_at(at(T0 - 90 * DAY)),
    ])
    .unwrap();
    let (rotated, added) = keyring.rotated_at(at(T0), &policy).unwrap();
    assert_eq!(added, None, "key 2 is already waiting");
    let retire = |id: u32| rotated.keys().find(|k| k.id == id).unwrap().retire_at;
    assert_eq!(retire(1), Some(at(T0 + 100 * DAY)), "the operator's date stays");
    assert_eq!(retire(2), None, "the newest key is not retired");
    assert_eq!(retire(3), Some(at(T0)), "a key retired by hand is dated now");
    assert_eq!(retire(4), Some(at(T0 + 90 * DAY)), "a key added by hand opens for `keep` from now");
    // Retired for less than `keep`: kept, refused by name; longer: dropped,
    // but for the highest ID (key 6), whose key stays so that no new key
    // takes its ID (`a_dropped_key_never_gives_its_id_to_a_new_one`).
    let ids: Vec<u32> = rotated.keys().map(|k| k.id).collect();
    assert_eq!(ids, [1, 2, 3, 4, 5, 6]);
    let long_retired = spec(7, KeyState::Retired).retire_at(at(T0 - 90 * DAY));
    let with_7 = Keyring::new(rotated.keys().cloned().chain([long_retired])).unwrap();
    let ids: Vec<u32> = with_7.rotated_at(at(T0), &policy).unwrap().0.keys().map(|k| k.id).collect();
    assert_eq!(ids, [1, 2, 3, 4, 5, 7]);
    // The key retired by hand leaves `keep` after the rotation dated it,
    // as every retired key does: its secret is not kept for ever.
    let later = |ring: &Keyring, days: i64| ring.rotated_at(at(T0 + days * DAY), &policy).unwrap().0;
    assert!(later(&rotated, 89).keys().any(|k| k.id == 3), "kept until `keep` has passed");
    assert!(later(&rotated, 90).keys().all(|k| k.id != 3), "dropped once it has");
}

/// A key added by hand between two rotations, retired and dropped by the
/// job before the next key was added, does not give its ID to that key:
/// servers that saw it would refuse the file (the same ID, another secret)
/// and never follow it again.
#[test]
fn a_dropped_key_never_gives_its_id_to_a_new_one() {
    let policy = RotationPolicy::new(Duration::from_secs(30 * DAY as u64), Duration::from_secs(DAY as u64));
    let start = Keyring::new([spec(1, KeyState::Primary).created(at(T0))]).unwrap();
    let (day0, added) = start.rotated_at(at(T0), &policy).unwrap();
    assert_eq!(added, Some(2));
    let (by_hand, id) = day0.with_new_key().unwrap();
    assert_eq!(id, 3);
    let day1 = by_hand.rotated_at(at(T0 + DAY), &policy).unwrap().0;
    let day3 = day1.rotated_at(at(T0 + 3 * DAY), &policy).unwrap().0;
    assert_eq!(day3.state_at(3, at(T0 + 3 * DAY)), Some(KeyState::Retired), "kept, retired");
    let (day31, added) = day3.rotated_at(at(T0 + 31 * DAY), &policy).unwrap();
    assert_eq!(added, Some(4), "a new ID, not the dropped key's");
    // Once a higher ID exists, the old key goes.
    let day33 = day31.rotated_at(at(T0 + 33 * DAY), &policy).unwrap().0;
    assert!(day33.keys().all(|k| k.id != 3), "{day33:?}");
}

/// A retire date less than the clock leeway after the key stops sealing is
/// refused: a server whose clock runs behind still seals under it until
/// then, and the others would refuse those sessions at once.
#[test]
fn a_retire_date_within_the_leeway_of_the_handover_is_refused() {
    let keyring = scheduled(); // key 2 takes over from key 1 at T0 + 100
    let retire = |at_| keyring.with_retire_at_as_of(1, at(at_), at(T0));
    for early in [T0 + 100, T0 + 159] {
        match retire(early) {
            Err(KeyringError::RetiredAtHandover { id: 1, earliest, .. }) => {
                assert_eq!(earliest, at(T0 + 160))
            }
            other => panic!("retire at {early}: {other:?}"),
        }
    }
    assert!(retire(T0 + 160).is_ok());
    // Before the handover: no key would seal, as before.
    assert!(matches!(
        retire(T0 + 99),
        Err(KeyringError::RetiredBeforeSuccessor { .. } | KeyringError::NoSealingKey { .. })
    ));
}

#[test]
fn every_time_of_a_keyring_survives_its_file() {
    // An offset with seconds has no RFC 3339 form: the file holds the same
    // instant in UTC, and the key still retires.
    let odd = time::UtcOffset::from_hms(1, 0, 30).unwrap();
    let retire = at(T0 + DAY).to_offset(odd);
    let keyring =
        Keyring::new([spec(1, KeyState::Primary), spec(2, KeyState::Active).retire_at(retire)]).unwrap();
    let text = keyring.to_toml_string();
    let read = Keyring::from_toml_str(&text).unwrap();
    let retired = read.keys().find(|k| k.id == 2).and_then(|k| k.retire_at);
    assert_eq!(retired, Some(retire), "the retire time was lost or moved: {}", text.as_str());
    // A time that is past year 9999 in UTC has no form at all: refused,
    // never left out of the file.
    let last = time::Date::from_calendar_date(9999, time::Month::December, 31).unwrap();
    let beyond = last.with_hms(23, 0, 0).unwrap().assume_offset(time::UtcOffset::from_hms(-5, 0, 0).unwrap());
    let refused = Keyring::new([spec(1, KeyState::Primary), spec(2, KeyState::Active).retire_at(beyond)]);
    assert!(matches!(refused, Err(KeyringError::UnwritableTime(2))), "{refused:?}");
}
