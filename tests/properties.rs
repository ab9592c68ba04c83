//! Property tests: round trips for arbitrary data, no mutation ever opens,
//! and our XChaCha20-Poly1305 agrees byte for byte with the
//! `chacha20poly1305` crate.
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use proptest::prelude::*;
use sealed_session::aead::XChaCha20Poly1305;
use sealed_session::{KeySpec, KeyState, Keyring, ManualClock, MasterKey, Sealer, Session};

fn sealer() -> Sealer {
    let keys = [(1, KeyState::Primary), (2, KeyState::Active)]
        .map(|(id, state)| KeySpec::new(id, state, MasterKey::from_slice(&[id as u8; 32]).unwrap()));
    Sealer::builder(Keyring::new(keys).unwrap())
        .max_token_len(16 * 1024)
        .clock(ManualClock::at_unix(1_800_000_000))
        .build()
        .unwrap()
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Data {
    text: String,
    numbers: Vec<i64>,
    flag: Option<bool>,
    bytes: Vec<u8>,
}

fn data() -> impl Strategy<Value = Data> {
    (
        ".{0,200}",
        prop::collection::vec(any::<i64>(), 0..50),
        any::<Option<bool>>(),
        prop::collection::vec(any::<u8>(), 0..3000),
    )
        .prop_map(|(text, numbers, flag, bytes)| Data { text, numbers, flag, bytes })
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: prop::sample::Index, mask: u8 },
    Truncate(prop::sample::Index),
    Extend(Vec<u8>),
    Splice { at: prop::sample::Index, bytes: Vec<u8> },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<prop::sample::Index>(), 1..=255u8).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        prop::collection::vec(any::<u8>(), 1..32).prop_map(Mutation::Extend),
        (any::<prop::sample::Index>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, bytes)| Mutation::Splice { at, bytes }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn round_trip_holds_for_arbitrary_data(data in data(), user in proptest::option::of((".{0,40}", any::<u64>()))) {
        let sealer = sealer();
        let mut session = Session::new(data.clone());
        if let Some((user, epoch)) = user.clone() {
            session = session.with_user(user, epoch);
        }
        let opened = sealer.open::<Data>(&sealer.seal(&session).unwrap()).unwrap();
        prop_assert_eq!(opened.session().data(), &data);
        prop_assert_eq!(opened.session().id(), session.id());
        prop_assert_eq!(opened.session().user_id(), user.as_ref().map(|u| u.0.as_str()));
        prop_assert_eq!(opened.session().epoch(), user.as_ref().map_or(0, |u| u.1));
    }

    #[test]
    fn no_mutation_of_a_valid_token_ever_opens(text in ".{0,64}", m in mutation()) {
        let sealer = sealer();
        let token = sealer.seal(&Session::new(text)).unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        // Version 2: version, flags and key ID (6 bytes) before the nonce;
        // 46 bytes at the least.
        prop_assert_eq!(bytes[0], 2);
        let first_changed = match &m {
            Mutation::Flip { at, mask } => { let i = at.index(bytes.len()); bytes[i] ^= mask; i }
            Mutation::Truncate(at) => { let i = at.index(bytes.len()); bytes.truncate(i); i }
            Mutation::Extend(extra) => { let i = bytes.len(); bytes.extend_from_slice(extra); i }
            Mutation::Splice { at, bytes: insert } => {
                let i = at.index(bytes.len());
                bytes.splice(i..i, insert.iter().copied());
                i
            }
        };
        let err = sealer.open::<String>(&URL_SAFE_NO_PAD.encode(&bytes)).err();
        prop_assert!(err.is_some(), "{:?} opened", m);
        // Past the header, of a length a token may have, nothing is
        // refused for anything but its tag (not for its times or data,
        // which a tag that passed would reach).
        if first_changed >= 6 && bytes.len() >= 46 {
            prop_assert_eq!(err, Some(sealed_session::OpenError::Invalid), "{:?}", m);
        }
    }

    /// Any text, and (past the base64 check) any base64url text.
    #[test]
    fn arbitrary_strings_never_open(text in ".{0,300}|[A-Za-z0-9_-]{0,300}") {
        prop_assert!(sealer().open::<String>(&text).is_err());
    }

    /// Random bytes behind a header this keyring takes (version 1, or 2 with
    /// no flags, and a key it has) reach authentication, and fail there.
    #[test]
    fn random_bytes_under_a_valid_header_fail_authentication(
        version in 1u8..=2,
        key_id in 1u32..=2,
        body in prop::collection::vec(any::<u8>(), 40..400),
    ) {
        let mut bytes = vec![version];
        if version == 2 {
            bytes.push(0);
        }
        bytes.extend_from_slice(&key_id.to_be_bytes());
        bytes.extend_from_slice(&body);
        let opened = sealer().open::<String>(&URL_SAFE_NO_PAD.encode(&bytes));
        prop_assert!(matches!(opened, Err(sealed_session::OpenError::Invalid)), "{:?}", opened.map(drop));
    }

    #[test]
    fn xchacha_matches_the_reference_crate(
        key in any::<[u8; 32]>(),
        nonce in any::<[u8; 24]>(),
        aad in prop::collection::vec(any::<u8>(), 0..64),
        len in 0usize..=4096,
        seed in any::<u8>(),
    ) {
        let message: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
        let ours = XChaCha20Poly1305::new(&key);
        let reference = chacha20poly1305::XChaCha20Poly1305::new(&key.into());

        let mut our_buf = message.clone();
        let our_tag = ours.encrypt_in_place_detached(&nonce, &aad, &mut our_buf).unwrap();
        let mut ref_buf = message.clone();
        let ref_tag = reference.encrypt_inout_detached(&nonce.into(), &aad, ref_buf.as_mut_slice().into()).unwrap();
        prop_assert_eq!(&our_buf, &ref_buf);
        prop_assert_eq!(our_tag.as_slice(), ref_tag.as_slice());

        ours.decrypt_in_place_detached(&nonce, &aad, &mut our_buf, &our_tag).unwrap();
        prop_assert_eq!(&our_buf, &message);
        let mut bad_tag = our_tag;
        bad_tag[usize::from(seed) % 16] ^= 1;
        let mut again = ref_buf.clone();
        prop_assert!(ours.decrypt_in_place_detached(&nonce, &aad, &mut again, &bad_tag).is_err());
    }
}
