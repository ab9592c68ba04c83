//! Sealing and opening through the public API, with an injected clock.
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::HashSet;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sealed_session::{
    ConfigError, Expiry, KeySpec, KeyState, Keyring, ManualClock, MasterKey, OpenError, Reissue, SealError,
    Sealer, Session, SharedKeyring, UntrustedToken,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

const T0: i64 = 1_800_000_000;

fn key(byte: u8) -> MasterKey {
    MasterKey::from_slice(&[byte; 32]).unwrap()
}

fn spec(id: u32, state: KeyState) -> KeySpec {
    KeySpec::new(id, state, key(id as u8))
}

fn keyring(specs: &[(u32, KeyState)]) -> Keyring {
    Keyring::new(specs.iter().map(|&(id, state)| spec(id, state))).unwrap()
}

fn sealer_with(keyring: impl Into<SharedKeyring>, clock: &ManualClock) -> Sealer {
    Sealer::builder(keyring)
        .absolute_timeout(Duration::from_secs(3600))
        .idle_timeout(Duration::from_secs(600))
        .renew_after(Duration::from_secs(150))
        .leeway(Duration::from_secs(60))
        .clock(clock.clone())
        .build()
        .unwrap()
}

fn setup() -> (Sealer, ManualClock) {
    let clock = ManualClock::at_unix(T0);
    (sealer_with(keyring(&[(1, KeyState::Primary)]), &clock), clock)
}

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    name: String,
    admin: bool,
    visits: u64,
}

#[test]
fn round_trips_payloads_from_0_bytes_to_3_kib() {
    // 3 KiB of data needs about 4.2 KB of base64: above the default maximum.
    let sealer = Sealer::builder(keyring(&[(1, KeyState::Primary)]))
        .absolute_timeout(Duration::from_secs(3600))
        .idle_timeout(Duration::from_secs(600))
        .max_token_len(8192)
        .clock(ManualClock::at_unix(T0))
        .build()
        .unwrap();
    for len in (0..=3072).step_by(97).chain([3072]) {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let session = Session::new(data.clone()).with_user("u", 4);
        let token = sealer.seal(&session).unwrap();
        let opened = sealer.open::<Vec<u8>>(&token).unwrap();
        assert_eq!(opened.session().data(), &data);
        assert_eq!(opened.session().id(), session.id());
        assert_eq!((opened.session().user_id(), opened.session().epoch()), (Some("u"), 4));
        assert_eq!(opened.session().issued_at(), Some(at(T0)));
        assert_eq!(opened.session().expires_at(), Some(at(T0 + 3600)));
        assert_eq!(opened.idle_expires_at(), at(T0 + 600));
        assert_eq!(opened.reissue(), None);
    }
    let token = sealer.seal(&Session::new(())).unwrap();
    sealer.open::<()>(&token).unwrap();
}

#[test]
fn structured_data_round_trips() {
    let (sealer, _) = setup();
    let profile = Profile { name: "Zoë".into(), admin: true, visits: u64::MAX };
    let token = sealer.seal(&Session::new(profile.clone())).unwrap();
    assert_eq!(sealer.open::<Profile>(&token).unwrap().into_session().into_data(), profile);
}

fn token_bytes(sealer: &Sealer) -> Vec<u8> {
    let token = sealer.seal(&Session::new(Profile { name: "n".into(), admin: false, visits: 1 })).unwrap();
    URL_SAFE_NO_PAD.decode(token).unwrap()
}

#[test]
fn every_single_bit_flip_is_refused() {
    let (sealer, _) = setup();
    let bytes = token_bytes(&sealer);
    for i in 0..bytes.len() * 8 {
        let mut changed = bytes.clone();
        changed[i / 8] ^= 1 << (i % 8);
        let err = sealer.open::<Profile>(&URL_SAFE_NO_PAD.encode(&changed)).unwrap_err();
        let expected = match i / 8 {
            0 => OpenError::UnsupportedVersion(changed[0]),
            // The flags: a profile, kind of data or binding this sealer
            // does not open, or a flag no version defines.
            1 if i % 8 < 3 => OpenError::Invalid,
            1 => OpenError::Malformed,
            2..=5 => OpenError::UnknownKey(u32::from_be_bytes(changed[2..6].try_into().unwrap())),
            _ => OpenError::Invalid,
        };
        assert_eq!(err, expected, "bit {i}");
    }
}

#[test]
fn every_truncation_and_extension_is_refused() {
    let (sealer, _) = setup();
    let bytes = token_bytes(&sealer);
    for len in 0..bytes.len() {
        let err = sealer.open::<Profile>(&URL_SAFE_NO_PAD.encode(&bytes[..len])).unwrap_err();
        let expected = if len < 46 { OpenError::Malformed } else { OpenError::Invalid };
        assert_eq!(err, expected, "truncated to {len}");
    }
    for extra in [&[0u8][..], &[0xff; 7], &[1; 64]] {
        let longer = [bytes.as_slice(), extra].concat();
        assert_eq!(sealer.open::<Profile>(&URL_SAFE_NO_PAD.encode(longer)).unwrap_err(), OpenError::Invalid);
    }
}

#[test]
fn a_token_relabelled_to_another_valid_key_is_refused() {
    let clock = ManualClock::at_unix(T0);
    let sealer = sealer_with(keyring(&[(1, KeyState::Primary), (2, KeyState::Active)]), &clock);
    let mut bytes = token_bytes(&sealer);
    bytes[2..6].copy_from_slice(&2u32.to_be_bytes());
    assert_eq!(sealer.open::<Profile>(&URL_SAFE_NO_PAD.encode(bytes)).unwrap_err(), OpenError::Invalid);
    // Under two IDs with one secret (a key added twice by mistake), only the
    // key ID in the associated data tells them apart: a token of key 2,
    // retired, relabelled to key 1 is still refused.
    let twice = |state_of_1, state_of_2| {
        let specs = [KeySpec::new(1, state_of_1, key(9)), KeySpec::new(2, state_of_2, key(9))];
        sealer_with(Keyring::new(specs).unwrap(), &clock)
    };
    let mut bytes = token_bytes(&twice(KeyState::Active, KeyState::Primary));
    assert_eq!(bytes[2..6], 2u32.to_be_bytes());
    bytes[2..6].copy_from_slice(&1u32.to_be_bytes());
    let relabelled = URL_SAFE_NO_PAD.encode(bytes);
    let retired = twice(KeyState::Primary, KeyState::Retired);
    assert_eq!(retired.open::<Profile>(&relabelled).unwrap_err(), OpenError::Invalid);
}

#[test]
fn a_token_of_another_purpose_is_refused() {
    let clock = ManualClock::at_unix(T0);
    let shared = SharedKeyring::new(keyring(&[(1, KeyState::Primary)]));
    let session_sealer = sealer_with(shared.clone(), &clock);
    let other = Sealer::builder(shared).purpose("__Host-remember-me").clock(clock.clone()).build().unwrap();
    let token = session_sealer.seal(&Session::new(1u8)).unwrap();
    assert_eq!(other.open::<u8>(&token).unwrap_err(), OpenError::Invalid);
    assert_eq!(session_sealer.open::<u8>(&token).unwrap().session().data(), &1);
}

#[test]
fn rotation_opens_old_tokens_and_asks_for_reissue() {
    let clock = ManualClock::at_unix(T0);
    let shared = SharedKeyring::new(keyring(&[(1, KeyState::Primary)]));
    let sealer = sealer_with(shared.clone(), &clock);
    let old = sealer.seal(&Session::new("old".to_string())).unwrap();

    // Phase 1: the new key is added as active; nothing changes for tokens.
    shared.replace(keyring(&[(1, KeyState::Primary), (2, KeyState::Active)]));
    assert_eq!(sealer.open::<String>(&old).unwrap().reissue(), None);
    assert_eq!(URL_SAFE_NO_PAD.decode(sealer.seal(&Session::new(0u8)).unwrap()).unwrap()[2..6], [0, 0, 0, 1]);

    // Phase 2: promote. Old tokens open and ask to be sealed again.
    shared.replace(keyring(&[(1, KeyState::Active), (2, KeyState::Primary)]));
    clock.advance(Duration::from_secs(10));
    let opened = sealer.open::<String>(&old).unwrap();
    assert_eq!((opened.key_id(), opened.reissue()), (1, Some(Reissue::KeyRotation)));
    let reissued = sealer.seal(opened.session()).unwrap();
    assert_eq!(UntrustedToken::decode(&reissued, 4096).unwrap().key_id(), 2);
    let again = sealer.open::<String>(&reissued).unwrap();
    assert_eq!(again.reissue(), None);
    assert_eq!(again.session().id(), opened.session().id());
    assert_eq!(again.session().issued_at(), Some(at(T0)));
    assert_eq!(again.session().expires_at(), Some(at(T0 + 3600)));

    // Phase 3: retire. The old token is refused by name.
    shared.replace(keyring(&[(1, KeyState::Retired), (2, KeyState::Primary)]));
    assert_eq!(sealer.open::<String>(&old).unwrap_err(), OpenError::RetiredKey(1));
    // And a key removed entirely is unknown.
    shared.replace(keyring(&[(2, KeyState::Primary)]));
    assert_eq!(sealer.open::<String>(&old).unwrap_err(), OpenError::UnknownKey(1));

    let usage = shared.current().usage();
    let key2 = usage.iter().find(|u| u.id == 2).unwrap();
    assert_eq!((key2.sealed, key2.opened), (1, 1));
}

#[test]
fn usage_counts_which_key_opened_tokens() {
    let clock = ManualClock::at_unix(T0);
    let shared = SharedKeyring::new(keyring(&[(1, KeyState::Primary), (2, KeyState::Active)]));
    let sealer = sealer_with(shared.clone(), &clock);
    let token = sealer.seal(&Session::new(())).unwrap();
    for _ in 0..3 {
        sealer.open::<()>(&token).unwrap();
    }
    assert!(sealer.open::<()>("garbage").is_err());
    let usage = shared.current().usage();
    assert_eq!(usage.iter().map(|u| (u.id, u.sealed, u.opened)).collect::<Vec<_>>(), [(1, 1, 3), (2, 0, 0)]);
    // Counters survive a keyring swap that keeps the key.
    shared.replace(keyring(&[(1, KeyState::Active), (2, KeyState::Primary)]));
    sealer.open::<()>(&token).unwrap();
    assert_eq!(shared.current().usage()[0].opened, 4);
}

#[test]
fn absolute_expiry_boundary() {
    let (sealer, _) = setup();
    let token = sealer.seal_at(&Session::new(()), at(T0)).unwrap();
    // Keep the session active so that only the absolute timeout applies.
    let mut session = sealer.open_at::<()>(&token, at(T0)).unwrap().into_session();
    let mut last = token;
    for t in (T0 + 500..T0 + 3600).step_by(500) {
        last = sealer.seal_at(&session, at(t)).unwrap();
        session = sealer.open_at::<()>(&last, at(t)).unwrap().into_session();
    }
    assert!(sealer.open_at::<()>(&last, at(T0 + 3599)).is_ok());
    assert_eq!(sealer.open_at::<()>(&last, at(T0 + 3600)).unwrap_err(), OpenError::Expired(Expiry::Absolute));
    assert!(matches!(sealer.seal_at(&session, at(T0 + 3600)), Err(SealError::Expired)));
}

/// A session kept after it was opened is sealed again only until its idle
/// timeout and the clock leeway (60 s here) have passed: sealing it later
/// would give a session that ended by itself a new token. (The leeway lets
/// a request that opened it just in time finish.)
#[test]
fn a_session_past_its_idle_timeout_is_not_sealed_again() {
    let (sealer, _) = setup();
    let token = sealer.seal_at(&Session::new(()), at(T0)).unwrap();
    let session = sealer.open_at::<()>(&token, at(T0 + 599)).unwrap().into_session();
    let renewed = sealer.seal_at(&session, at(T0 + 659)).unwrap();
    assert!(sealer.open_at::<()>(&renewed, at(T0 + 1258)).is_ok(), "renewed from its last activity");
    assert!(matches!(sealer.seal_at(&session, at(T0 + 660)), Err(SealError::Expired)));
    assert!(matches!(sealer.seal_at(&session, at(T0 + 1200)), Err(SealError::Expired)));
}

#[test]
fn idle_expiry_boundary_and_sliding_renewal() {
    let (sealer, _) = setup();
    let token = sealer.seal_at(&Session::new(()), at(T0)).unwrap();
    assert!(sealer.open_at::<()>(&token, at(T0 + 599)).is_ok());
    assert_eq!(sealer.open_at::<()>(&token, at(T0 + 600)).unwrap_err(), OpenError::Expired(Expiry::Idle));

    // Before the renewal interval: no reissue. From it on: reissue.
    assert_eq!(sealer.open_at::<()>(&token, at(T0 + 149)).unwrap().reissue(), None);
    let opened = sealer.open_at::<()>(&token, at(T0 + 150)).unwrap();
    assert_eq!(opened.reissue(), Some(Reissue::IdleRenewal));
    let renewed = sealer.seal_at(opened.session(), at(T0 + 150)).unwrap();
    let reopened = sealer.open_at::<()>(&renewed, at(T0 + 749)).unwrap();
    assert_eq!(reopened.idle_expires_at(), at(T0 + 750));
    assert_eq!(reopened.session().last_seen(), Some(at(T0 + 150)));
    assert_eq!(
        reopened.session().expires_at(),
        Some(at(T0 + 3600)),
        "renewal never extends the absolute expiry"
    );
    assert_eq!(sealer.open_at::<()>(&renewed, at(T0 + 750)).unwrap_err(), OpenError::Expired(Expiry::Idle));
}

#[test]
fn a_last_activity_beyond_the_leeway_is_refused_too() {
    let (sealer, _) = setup();
    let opened = sealer.open_at::<()>(&sealer.seal_at(&Session::new(()), at(T0)).unwrap(), at(T0)).unwrap();
    // Re-sealed by a server whose clock ran 100 s ahead: issued in the past,
    // last seen in the future.
    let resealed = sealer.seal_at(opened.session(), at(T0 + 100)).unwrap();
    assert_eq!(sealer.open_at::<()>(&resealed, at(T0 + 39)).unwrap_err(), OpenError::NotYetValid);
    assert!(sealer.open_at::<()>(&resealed, at(T0 + 40)).is_ok(), "within the leeway of 60 s");
}

#[test]
fn by_default_a_session_asks_to_be_sealed_again_after_a_quarter_of_the_idle_timeout() {
    let clock = ManualClock::at_unix(T0);
    let sealer = Sealer::builder(keyring(&[(1, KeyState::Primary)])).clock(clock).build().unwrap();
    let token = sealer.seal_at(&Session::new(()), at(T0)).unwrap();
    // 30 minutes idle: renewal after 450 s.
    assert_eq!(sealer.open_at::<()>(&token, at(T0 + 449)).unwrap().reissue(), None);
    assert_eq!(sealer.open_at::<()>(&token, at(T0 + 450)).unwrap().reissue(), Some(Reissue::IdleRenewal));
}

#[test]
fn a_token_too_short_for_a_header_and_a_tag_is_malformed_before_its_key_is_looked_up() {
    let (sealer, _) = setup();
    // Version 1, an unknown key 9, a nonce and 15 bytes: 44 in all, one
    // short of a header (29) and a tag (16).
    let mut bytes = vec![1, 0, 0, 0, 9];
    bytes.resize(44, 0);
    assert_eq!(sealer.open::<()>(&URL_SAFE_NO_PAD.encode(&bytes)).unwrap_err(), OpenError::Malformed);
    bytes.push(0);
    assert_eq!(sealer.open::<()>(&URL_SAFE_NO_PAD.encode(&bytes)).unwrap_err(), OpenError::UnknownKey(9));
}

#[test]
fn leeway_applies_to_future_issue_times_only() {
    let (sealer, _) = setup();
    let token = sealer.seal_at(&Session::new(()), at(T0)).unwrap();
    assert!(sealer.open_at::<()>(&token, at(T0 - 60)).is_ok());
    assert_eq!(sealer.open_at::<()>(&token, at(T0 - 61)).unwrap_err(), OpenError::NotYetValid);
    // No leeway past expiry.
    assert_eq!(sealer.open_at::<()>(&token, at(T0 + 600)).unwrap_err(), OpenError::Expired(Expiry::Idle));
}

#[test]
fn shortening_the_absolute_timeout_applies_to_issued_tokens() {
    let clock = ManualClock::at_unix(T0);
    let shared = SharedKeyring::new(keyring(&[(1, KeyState::Primary)]));
    let long = sealer_with(shared.clone(), &clock);
    let short = Sealer::builder(shared)
        .absolute_timeout(Duration::from_secs(300))
        .idle_timeout(Duration::from_secs(300))
        .clock(clock.clone())
        .build()
        .unwrap();
    let token = long.seal(&Session::new(())).unwrap();
    clock.advance(Duration::from_secs(300));
    assert_eq!(short.open::<()>(&token).unwrap_err(), OpenError::Expired(Expiry::Absolute));
    // Resealing an opened session under the shorter policy moves its expiry earlier.
    clock.set_unix(T0 + 10);
    let opened = long.open::<()>(&token).unwrap();
    let resealed = short.seal(opened.session()).unwrap();
    assert_eq!(short.open::<()>(&resealed).unwrap().session().expires_at(), Some(at(T0 + 300)));
}

/// Raising the absolute timeout never lengthens a session already issued:
/// re-sealed under the longer policy, it keeps the expiry it was given.
#[test]
fn raising_the_absolute_timeout_never_extends_issued_tokens() {
    let clock = ManualClock::at_unix(T0);
    let shared = SharedKeyring::new(keyring(&[(1, KeyState::Primary)]));
    let short = Sealer::builder(shared.clone())
        .absolute_timeout(Duration::from_secs(300))
        .idle_timeout(Duration::from_secs(300))
        .clock(clock.clone())
        .build()
        .unwrap();
    let long = sealer_with(shared, &clock);
    let token = short.seal(&Session::new(())).unwrap();
    clock.advance(Duration::from_secs(200));
    let resealed = long.seal(long.open::<()>(&token).unwrap().session()).unwrap();
    assert_eq!(long.open::<()>(&resealed).unwrap().session().expires_at(), Some(at(T0 + 300)));
    clock.advance(Duration::from_secs(100));
    assert_eq!(long.open::<()>(&resealed).unwrap_err(), OpenError::Expired(Expiry::Absolute));
}

#[test]
fn hundred_thousand_seals_give_distinct_ids_and_tokens() {
    let (sealer, _) = setup();
    let mut ids = HashSet::new();
    let mut tokens = HashSet::new();
    for _ in 0..100_000 {
        let session = Session::new(());
        assert!(ids.insert(*session.id().as_bytes()));
        assert!(tokens.insert(sealer.seal(&session).unwrap()));
    }
    // The same session sealed twice still gives two different tokens (fresh nonce).
    let session = Session::new(());
    assert_ne!(sealer.seal(&session).unwrap(), sealer.seal(&session).unwrap());
}

#[test]
fn non_canonical_base64_is_refused() {
    let (sealer, _) = setup();
    let token = sealer.seal(&Session::new(7u32)).unwrap();
    let standard = token.replace('-', "+").replace('_', "/");
    let cases = [
        format!("{token}="),
        format!("{token}=="),
        format!(" {token}"),
        format!("{token}\n"),
        format!("{}\t{}", &token[..8], &token[8..]),
        format!("{token}A"), // length 1 mod 4 or a changed length
        "é".repeat(40),
    ];
    for case in cases.iter().chain(std::iter::once(&standard).filter(|s| **s != token)) {
        assert!(
            matches!(sealer.open::<u32>(case), Err(OpenError::Malformed | OpenError::Invalid)),
            "{case:?}"
        );
    }
    for case in &cases[..5] {
        assert_eq!(sealer.open::<u32>(case).unwrap_err(), OpenError::Malformed, "{case:?}");
    }
}

#[test]
fn oversized_input_is_refused_before_decoding() {
    let (sealer, _) = setup();
    let huge = "!".repeat(4097);
    assert_eq!(sealer.open::<()>(&huge).unwrap_err(), OpenError::TooLarge { len: 4097, max: 4096 });
}

#[test]
fn a_token_of_exactly_the_maximum_length_seals_and_one_more_byte_does_not() {
    let (sealer, _) = setup();
    // Grow the data until the token is 4096 characters exactly.
    let exact = (2900..3100)
        .find(|&n| sealer.seal(&Session::new(vec![7u8; n])).is_ok_and(|token| token.len() == 4096))
        .expect("a data size whose token is 4096 characters");
    let session = Session::new(vec![7u8; exact]);
    let token = sealer.seal(&session).unwrap();
    let estimate = sealer.sealed_len(&session).unwrap();
    assert!((4096..=4096 + 24).contains(&estimate), "sealed_len {estimate} for a token of 4096");
    assert!(sealer.open::<Vec<u8>>(&token).is_ok(), "the longest token opens");
    match sealer.seal(&Session::new(vec![7u8; exact + 1])) {
        Err(SealError::TooLarge { len: 4098, max: 4096 }) => {}
        other => panic!("one byte more must not seal: {other:?}"),
    }
}

#[test]
fn sealing_too_much_data_fails_with_the_size() {
    let (sealer, _) = setup();
    let session = Session::new(vec![0u8; 4000]);
    let estimate = sealer.sealed_len(&session).unwrap();
    match sealer.seal(&session) {
        Err(SealError::TooLarge { len, max: 4096 }) => assert!(len > 4096 && len <= estimate),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    let fits = Session::new(vec![0u8; 2000]).with_user("someone", 9);
    let token = sealer.seal(&fits).unwrap();
    assert!(sealer.sealed_len(&fits).unwrap() >= token.len());
    assert!(sealer.sealed_len(&fits).unwrap() <= token.len() + 24, "the estimate is close");
}

#[test]
fn a_changed_session_type_is_reported_as_such() {
    let (sealer, _) = setup();
    let token = sealer.seal(&Session::new(Profile { name: "a".into(), admin: false, visits: 1 })).unwrap();
    assert_eq!(sealer.open::<(String, bool, u64, u64)>(&token).unwrap_err(), OpenError::DataMismatch);
    assert_eq!(sealer.open::<u8>(&token).unwrap_err(), OpenError::DataMismatch);
}

#[test]
fn renewed_ids_are_fresh_and_sessions_never_take_a_caller_id() {
    let (sealer, _) = setup();
    let mut session = Session::new(()).with_user("alice", 0);
    let mut seen = std::collections::HashSet::from([session.id()]);
    for _ in 0..10_000 {
        session.renew_id().unwrap();
        assert!(seen.insert(session.id()), "an ID came back");
    }
    let opened = sealer.open::<()>(&sealer.seal(&session).unwrap()).unwrap();
    assert_eq!(opened.session().id(), session.id());
}

#[test]
fn errors_and_debug_output_hold_no_secrets_or_token_bytes() {
    let secret = [0x42u8; 32];
    let keyring =
        Keyring::new([KeySpec::new(1, KeyState::Primary, MasterKey::from_slice(&secret).unwrap())]).unwrap();
    let b64 = keyring.keys().next().unwrap().key.to_base64().to_string();
    let clock = ManualClock::at_unix(T0);
    let sealer = sealer_with(keyring, &clock);
    let token = sealer.seal(&Session::new("payload-secret")).unwrap();
    let shown = format!(
        "{sealer:?} {:?} {:?} {:?}",
        sealer.keyring(),
        sealer.keyring().current(),
        sealer.keyring().current().keys().collect::<Vec<_>>()
    );
    for needle in [b64.as_str(), "4242", "66, 66", &token[..20]] {
        assert!(!shown.contains(needle), "{needle} in {shown}");
    }
    let opened = sealer.open::<String>(&token).unwrap();
    assert!(!format!("{opened:?}").contains("payload-secret"));
    let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
    bytes[40] ^= 1;
    let tampered = URL_SAFE_NO_PAD.encode(&bytes);
    for input in [tampered.as_str(), &token[..50], "AAAA"] {
        let err = sealer.open::<String>(input).unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains(&input[..4]), "{text}");
        // No run of 8 of its characters anywhere, not only its start.
        for window in input.as_bytes().windows(8) {
            let window = std::str::from_utf8(window).unwrap();
            assert!(!text.contains(window), "{window} in {text}");
        }
    }
}

#[test]
fn bad_sealer_configurations_are_refused() {
    let build = |absolute: u64, idle: u64| {
        Sealer::builder(keyring(&[(1, KeyState::Primary)]))
            .absolute_timeout(Duration::from_secs(absolute))
            .idle_timeout(Duration::from_secs(idle))
            .build()
    };
    assert_eq!(build(60, 61).unwrap_err(), ConfigError::IdleExceedsAbsolute { idle: 61, absolute: 60 });
    assert_eq!(build(0, 0).unwrap_err(), ConfigError::ZeroTimeout(Expiry::Absolute));
    assert_eq!(build(10, 0).unwrap_err(), ConfigError::ZeroTimeout(Expiry::Idle));
    assert!(build(60, 60).is_ok());
    let base = || Sealer::builder(keyring(&[(1, KeyState::Primary)]));
    assert_eq!(base().renew_after(Duration::ZERO).build().unwrap_err(), ConfigError::RenewalInterval);
    assert_eq!(
        base().renew_after(Duration::from_secs(1801)).build().unwrap_err(),
        ConfigError::RenewalInterval
    );
    assert_eq!(base().leeway(Duration::from_secs(86_401)).build().unwrap_err(), ConfigError::Leeway);
    assert_eq!(base().max_token_len(100).build().unwrap_err(), ConfigError::MaxTokenLen(100));
    assert_eq!(base().purpose("").build().unwrap_err(), ConfigError::EmptyPurpose);
    // Token version 1 appends these to say a token's profile and data: a
    // sealer of such a purpose would share another's remember-me tokens.
    for purpose in ["p+remember", "p+versioned", "p+remember+versioned"] {
        assert_eq!(base().purpose(purpose).build().unwrap_err(), ConfigError::ReservedPurpose, "{purpose}");
    }
    assert!(base().purpose("p+rememberer").build().is_ok(), "only the endings are reserved");
    for version in [0, 3, 255] {
        assert_eq!(base().token_version(version).build().unwrap_err(), ConfigError::TokenVersion(version));
    }
    assert!(base().token_version(1).build().is_ok() && base().token_version(2).build().is_ok());
    // Each limit is inclusive.
    assert!(base().renew_after(Duration::from_secs(1800)).build().is_ok(), "renewal at the idle timeout");
    assert!(base().leeway(Duration::from_secs(86_400)).build().is_ok());
    assert!(base().max_token_len(128).build().is_ok());
    assert!(base().purpose("p".repeat(123)).build().is_ok());
    assert_eq!(base().purpose("p".repeat(124)).build().unwrap_err(), ConfigError::PurposeTooLong(124));
    let default = base().build().unwrap();
    assert_eq!(default.purpose(), "__Host-session");
}

fn remembering(clock: &ManualClock) -> Sealer {
    Sealer::builder(keyring(&[(1, KeyState::Primary)]))
        .absolute_timeout(Duration::from_secs(3600))
        .idle_timeout(Duration::from_secs(600))
        .remember_me(Duration::from_secs(30 * 86_400), Duration::from_secs(7 * 86_400))
        .clock(clock.clone())
        .build()
        .unwrap()
}

#[test]
fn a_remembered_session_lives_by_the_remember_me_timeouts_and_a_standard_one_does_not() {
    let clock = ManualClock::at_unix(T0);
    let sealer = remembering(&clock);
    let remembered = sealer.seal(&Session::new(1u8).remembered()).unwrap();
    let standard = sealer.seal(&Session::new(2u8)).unwrap();
    let opened = sealer.open::<u8>(&remembered).unwrap();
    assert!(opened.session().is_remembered());
    // Every way in opens it: from text, at a time, already decoded, raw.
    let decoded = UntrustedToken::decode(&remembered, 4096).unwrap();
    assert!(sealer.open_untrusted::<u8>(decoded, at(T0)).unwrap().session().is_remembered());
    assert!(sealer.open_at::<u8>(&remembered, at(T0)).unwrap().session().is_remembered());
    assert!(sealer.open_raw_at(&remembered, at(T0)).unwrap().session().is_remembered());
    assert_eq!(opened.session().expires_at().unwrap().unix_timestamp(), T0 + 30 * 86_400);
    assert!(!sealer.open::<u8>(&standard).unwrap().session().is_remembered());

    // Two hours on: past the standard idle and absolute timeouts.
    clock.advance(Duration::from_secs(2 * 3600));
    assert_eq!(sealer.open::<u8>(&standard).unwrap_err(), OpenError::Expired(Expiry::Absolute));
    let opened = sealer.open::<u8>(&remembered).unwrap();
    assert_eq!(opened.reissue(), None, "its renewal interval is a quarter of its own idle timeout");
    // Its own idle timeout applies: 7 days without activity end it...
    clock.advance(Duration::from_secs(7 * 86_400));
    assert_eq!(sealer.open::<u8>(&remembered).unwrap_err(), OpenError::Expired(Expiry::Idle));
    // ...and activity keeps it until its absolute expiry, never beyond.
    let mut token = remembered;
    clock.set_unix(T0);
    for _ in 0..5 {
        clock.advance(Duration::from_secs(5 * 86_400));
        let opened = sealer.open::<u8>(&token).unwrap();
        assert_eq!(opened.reissue(), Some(Reissue::IdleRenewal));
        token = sealer.seal(opened.session()).unwrap();
    }
    clock.advance(Duration::from_secs(5 * 86_400));
    assert_eq!(sealer.open::<u8>(&token).unwrap_err(), OpenError::Expired(Expiry::Absolute));
}

/// The remember-me cap is the opening sealer's, not the token's: with the
/// remembered lifetime shortened from 30 days to 3, a session sealed under
/// 30 is refused at its third day however active it was (in use every
/// day: no idle timeout ran out), while the longer cap would still take it.
#[test]
fn a_shortened_remember_me_cap_ends_the_sessions_sealed_under_the_longer_one() {
    let clock = ManualClock::at_unix(T0);
    let thirty_days = remembering(&clock);
    let three_days = Sealer::builder(keyring(&[(1, KeyState::Primary)]))
        .absolute_timeout(Duration::from_secs(3600))
        .idle_timeout(Duration::from_secs(600))
        .remember_me(Duration::from_secs(3 * 86_400), Duration::from_secs(3 * 86_400))
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut token = thirty_days.seal(&Session::new(1u8).remembered()).unwrap();
    for _ in 0..2 {
        clock.advance(Duration::from_secs(86_400));
        let opened = three_days.open::<u8>(&token).unwrap();
        token = thirty_days.seal(opened.session()).unwrap();
    }
    // Past the third day and the default leeway (a minute).
    clock.set_unix(T0 + 3 * 86_400 + 61);
    assert_eq!(three_days.open::<u8>(&token).unwrap_err(), OpenError::Expired(Expiry::Absolute));
    assert!(thirty_days.open::<u8>(&token).is_ok(), "the longer cap still takes it");
}

#[test]
fn remembered_and_standard_tokens_never_open_as_each_other() {
    let clock = ManualClock::at_unix(T0);
    let sealer = remembering(&clock);
    let plain = sealer_with(keyring(&[(1, KeyState::Primary)]), &clock);
    let remembered = sealer.seal(&Session::new(()).remembered()).unwrap();
    // A sealer without remember-me neither opens nor seals remembered sessions.
    assert!(sealer.has_remember_me() && !plain.has_remember_me());
    assert_eq!(plain.open::<()>(&remembered).unwrap_err(), OpenError::Invalid);
    assert!(matches!(plain.seal(&Session::new(()).remembered()), Err(SealError::NoRememberMe)));
    // Remembering is decided before the first seal: an opened session stays as it was.
    let opened = sealer.open::<()>(&sealer.seal(&Session::new(())).unwrap()).unwrap();
    let session = opened.into_session().remembered();
    assert!(!session.is_remembered());
    let resealed = sealer.seal(&session).unwrap();
    assert!(!sealer.open::<()>(&resealed).unwrap().session().is_remembered());
}

/// Token version 1 keeps them apart by purpose (remembered tokens are
/// sealed under `<purpose>+remember`), as version 2 does by its flag.
#[test]
fn in_token_version_1_remembered_and_standard_tokens_never_open_as_each_other() {
    let clock = ManualClock::at_unix(T0);
    let v1 = |remember: bool| {
        let builder = Sealer::builder(keyring(&[(1, KeyState::Primary)]))
            .absolute_timeout(Duration::from_secs(3600))
            .idle_timeout(Duration::from_secs(600))
            .clock(clock.clone())
            .token_version(1);
        let builder = if remember {
            builder.remember_me(Duration::from_secs(30 * 86_400), Duration::from_secs(7 * 86_400))
        } else {
            builder
        };
        builder.build().unwrap()
    };
    let (sealer, plain) = (v1(true), v1(false));
    let remembered = sealer.seal(&Session::new(()).remembered()).unwrap();
    let standard = sealer.seal(&Session::new(())).unwrap();
    assert_eq!(plain.open::<()>(&remembered).unwrap_err(), OpenError::Invalid);
    assert!(sealer.open::<()>(&remembered).unwrap().session().is_remembered());
    assert!(!sealer.open::<()>(&standard).unwrap().session().is_remembered());
    assert!(plain.open::<()>(&standard).is_ok(), "the purpose alone, as without remember-me");
    // A standard token keeps the standard timeouts under a sealer that remembers.
    assert_eq!(sealer.open_at::<()>(&standard, at(T0 + 600)).unwrap_err(), OpenError::Expired(Expiry::Idle));
    assert!(sealer.open_at::<()>(&remembered, at(T0 + 600)).is_ok());
}

#[test]
fn a_remembered_session_gets_a_persistent_cookie_and_a_standard_one_follows_the_spec() {
    let clock = ManualClock::at_unix(T0);
    let sealer = remembering(&clock);
    let spec = sealed_session::CookieSpec::named(sealer.purpose()).unwrap().browser_session();
    let remembered = sealer.seal_cookie(&Session::new(()).remembered(), &spec).unwrap();
    assert!(remembered.starts_with("__Host-session="), "the same cookie, made persistent: {remembered}");
    assert!(remembered.contains(&format!("; Max-Age={}", 30 * 86_400)), "{remembered}");
    let standard = sealer.seal_cookie(&Session::new(()), &spec).unwrap();
    assert!(!standard.contains("Max-Age"), "{standard}");
}

#[test]
fn remember_me_timeouts_are_checked_like_the_standard_ones() {
    let build = |absolute: u64, idle: u64, purpose: &str| {
        Sealer::builder(keyring(&[(1, KeyState::Primary)]))
            .purpose(purpose)
            .remember_me(Duration::from_secs(absolute), Duration::from_secs(idle))
            .build()
    };
    assert!(matches!(build(60, 120, "p"), Err(ConfigError::IdleExceedsAbsolute { idle: 120, absolute: 60 })));
    assert!(matches!(build(0, 0, "p"), Err(ConfigError::ZeroTimeout(Expiry::Absolute))));
    assert!(matches!(build(60, 0, "p"), Err(ConfigError::ZeroTimeout(Expiry::Idle))));
    let longest = "p".repeat(sealed_session::MAX_PURPOSE_LEN);
    assert!(Sealer::builder(keyring(&[(1, KeyState::Primary)])).purpose(longest.as_str()).build().is_ok());
    assert!(build(60, 60, &longest).is_ok(), "version 2 binds the purpose alone");
    // Version 1 appends `+remember` and `+versioned` to it: those must fit.
    let v1 = Sealer::builder(keyring(&[(1, KeyState::Primary)]))
        .purpose(longest.as_str())
        .remember_me(Duration::from_secs(60), Duration::from_secs(60))
        .token_version(1)
        .build();
    assert!(
        matches!(v1, Err(ConfigError::PurposeTooLong(n)) if n == longest.len() + 19),
        "the longest version 1 purpose must fit: {v1:?}"
    );
}

#[test]
fn a_token_that_exactly_fills_its_cookie_is_sealed_and_one_byte_more_is_not() {
    let clock = ManualClock::at_unix(T0);
    // The sealer's own maximum is not what binds here: the cookie's is.
    // Unpadded base64 has no length ≡ 1 (mod 4): try names until one's limit is reachable.
    for name in ["__Host-session", "__Host-sessio", "__Host-sessi", "__Host-sess"] {
        let sealer = Sealer::builder(keyring(&[(1, KeyState::Primary)]))
            .max_token_len(8192)
            .purpose(name)
            .clock(clock.clone())
            .build()
            .unwrap();
        let len_of = |n: usize| sealer.seal(&Session::new(vec![7u8; n])).unwrap().len();
        let spec = sealed_session::CookieSpec::named(name).unwrap();
        let max = spec.max_token_len();
        if let Some(n) = (2500..max).find(|&n| len_of(n) == max) {
            let header = sealer.seal_cookie(&Session::new(vec![7u8; n]), &spec).unwrap();
            assert!(header.len() <= sealed_session::MAX_COOKIE_LEN, "{}", header.len());
            let over = sealer.seal_cookie(&Session::new(vec![7u8; n + 1]), &spec);
            assert!(matches!(over, Err(SealError::TooLarge { max: m, .. }) if m == max), "{over:?}");
            return;
        }
    }
    panic!("no data length fills any of the cookies exactly");
}

/// `inspect`, for an operator ending a session from its token: any profile
/// (even without remember-me timeouts here), expired or not, versioned or
/// not; never a token that does not authenticate.
#[test]
fn inspect_reads_any_authentic_token_whatever_its_times_and_nothing_else() {
    use sealed_session::versioned::{SessionData, Versioned};
    #[derive(Serialize, Deserialize)]
    struct Data(u8);
    impl SessionData for Data {
        const VERSION: u32 = 1;
    }
    let clock = ManualClock::at_unix(T0);
    let keys = SharedKeyring::new(keyring(&[(1, KeyState::Primary)]));
    let server = Sealer::builder(keys.clone())
        .remember_me(Duration::from_secs(30 * 86_400), Duration::from_secs(86_400))
        .clock(clock.clone())
        .build()
        .unwrap();
    let tool = Sealer::builder(keys.clone()).build().unwrap();
    let remembered = server.seal(&Session::new(()).with_user("alice", 3).remembered()).unwrap();
    let versioned = server.seal(&Session::new(Versioned(Data(1)))).unwrap();
    clock.advance(Duration::from_secs(40 * 86_400));

    let inspected = tool.inspect(&remembered).unwrap();
    assert!(inspected.remembered && !inspected.versioned);
    assert_eq!((inspected.user_id.as_deref(), inspected.epoch, inspected.key_id), (Some("alice"), 3, 1));
    assert_eq!(inspected.expires_at.unix_timestamp(), T0 + 30 * 86_400, "expired, and still read");
    assert_eq!(server.open::<()>(&remembered).unwrap_err(), OpenError::Expired(Expiry::Absolute));
    let inspected = tool.inspect(&versioned).unwrap();
    assert!(inspected.versioned && !inspected.remembered && inspected.user_id.is_none());

    // Another purpose, a changed bit, an unknown or retired key: refused as open refuses them.
    let other = Sealer::builder(keys.clone()).purpose("__Host-other").build().unwrap();
    assert_eq!(other.inspect(&remembered).unwrap_err(), OpenError::Invalid);
    let mut forged = remembered.clone();
    let flipped = if &forged[60..61] == "A" { "B" } else { "A" };
    forged.replace_range(60..61, flipped);
    assert_eq!(tool.inspect(&forged).unwrap_err(), OpenError::Invalid);
    let stranger = Sealer::builder(keyring(&[(2, KeyState::Primary)])).build().unwrap();
    assert_eq!(stranger.inspect(&remembered).unwrap_err(), OpenError::UnknownKey(1));
    keys.replace(keyring(&[(1, KeyState::Retired), (2, KeyState::Primary)]));
    assert_eq!(tool.inspect(&remembered).unwrap_err(), OpenError::RetiredKey(1));
}

/// A lifetime too long for a calendar date shows as the latest date there
/// is, never as 1970 (which would read as long expired).
#[test]
fn a_lifetime_past_the_calendar_shows_as_the_latest_date_not_1970() {
    let clock = ManualClock::at_unix(T0);
    let sealer = Sealer::builder(keyring(&[(1, KeyState::Primary)]))
        .absolute_timeout(Duration::MAX)
        .idle_timeout(Duration::MAX)
        .clock(clock.clone())
        .build()
        .unwrap();
    let token = sealer.seal(&Session::new(())).unwrap();
    let opened = sealer.open::<()>(&token).unwrap();
    assert_eq!(opened.session().issued_at(), Some(at(T0)));
    let latest = time::PrimitiveDateTime::MAX.assume_utc();
    assert_eq!(opened.session().expires_at(), Some(latest));
    assert_eq!(opened.idle_expires_at(), latest);
}

/// A version 1 token does not say which profile sealed it: the opener tries
/// each in turn, decoding the token again for every try (a failed
/// decryption leaves its buffer zeroed). A remembered token is the second
/// try.
#[test]
fn a_version_1_remembered_token_opens_on_the_second_try() {
    let clock = ManualClock::at_unix(T0);
    let sealer = Sealer::builder(keyring(&[(1, KeyState::Primary)]))
        .remember_me(Duration::from_secs(30 * 86_400), Duration::from_secs(7 * 86_400))
        .token_version(1)
        .clock(clock)
        .build()
        .unwrap();
    let token = sealer.seal(&Session::new(7u32).remembered()).unwrap();
    let opened = sealer.open::<u32>(&token).unwrap();
    assert!(opened.session().is_remembered());
    assert_eq!(*opened.session().data(), 7);
}
