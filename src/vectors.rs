//! Known-answer vectors for token format v1 (tests/vectors/v1.json).
//!
//! The vectors are produced here, through the crate-private fixed-nonce
//! entry point, and compared with the committed file: any drift of the
//! format fails `vectors_file_is_current`. Write the file anew (only for a
//! deliberate format change, which needs a new version byte) with
//! `SEALED_SESSION_WRITE_VECTORS=1 cargo test vectors`.
//!
//! The file is checked independently of this crate by
//! `tests/vectors_independent.rs` (the `chacha20poly1305` and `hkdf` crates)
//! and by `tests/vectors/verify_libsodium.py` (libsodium).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::{KeySpec, KeyState, Keyring, MasterKey, OpenError, Sealer, Session, SessionId};

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/v1.json");
const PURPOSE: &str = "__Host-session";
const NOW: i64 = 1_800_000_000;
const ABSOLUTE: u64 = 12 * 3600;
const IDLE: u64 = 1800;

/// The application data type of every vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Data {
    name: String,
    visits: u32,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

fn secret(id: u32) -> [u8; 32] {
    std::array::from_fn(|i| (i as u8).wrapping_mul(7).wrapping_add(id as u8 * 16))
}

fn keyring(states: &[(u32, KeyState)]) -> Keyring {
    Keyring::new(
        states
            .iter()
            .map(|&(id, state)| KeySpec::new(id, state, MasterKey::from_slice(&secret(id)).unwrap())),
    )
    .unwrap()
}

/// The keyring every vector is opened with.
const KEYS: [(u32, KeyState); 3] = [(1, KeyState::Primary), (2, KeyState::Active), (3, KeyState::Retired)];

fn sealer(keyring: Keyring, purpose: &str) -> Sealer {
    Sealer::builder(keyring)
        .purpose(purpose)
        .absolute_timeout(std::time::Duration::from_secs(ABSOLUTE))
        .idle_timeout(std::time::Duration::from_secs(IDLE))
        .build()
        .unwrap()
}

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

struct Case {
    name: &'static str,
    key_id: u32,
    user: Option<(&'static str, u64)>,
    data: Data,
    seed: u8,
}

/// Seals one case with the key `case.key_id` as primary; returns the
/// vector's JSON and the token's bytes.
fn seal_case(case: &Case) -> (Value, Vec<u8>) {
    let nonce: [u8; 24] = std::array::from_fn(|i| case.seed.wrapping_add(i as u8));
    let id: [u8; 16] = std::array::from_fn(|i| case.seed.wrapping_mul(3).wrapping_add(i as u8));
    let mut session = Session::new(case.data.clone()).with_id(SessionId::from_bytes(id));
    if let Some((user, epoch)) = case.user {
        session = session.with_user(user, epoch);
    }
    let sealing = sealer(keyring(&[(case.key_id, KeyState::Primary)]), PURPOSE);
    let token = sealing.seal_with_nonce(&session, NOW as u64, nonce).unwrap();
    let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();

    let head = crate::token::Head {
        issued_at: NOW as u64,
        expires_at: NOW as u64 + ABSOLUTE,
        last_seen: NOW as u64,
        session_id: id,
        user_id: case.user.map(|u| u.0),
        epoch: case.user.map_or(0, |u| u.1),
    };
    let plaintext = crate::token::encode_envelope(&head, &case.data, Vec::new()).unwrap();
    let vector = json!({
        "name": case.name,
        "key_id": case.key_id,
        "nonce": hex(&nonce),
        "session_id": hex(&id),
        "user_id": case.user.map(|u| u.0),
        "epoch": case.user.map_or(0, |u| u.1),
        "issued_at": NOW,
        "expires_at": NOW as u64 + ABSOLUTE,
        "last_seen": NOW,
        "data": { "name": case.data.name, "visits": case.data.visits },
        "plaintext": hex(&plaintext),
        "token": token,
    });
    (vector, bytes)
}

fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Seals `plaintext`, whatever it holds, under key 1 with a fixed nonce: a
/// token that authenticates, for the vectors whose envelope is wrong.
fn seal_plaintext(plaintext: &[u8], seed: u8) -> String {
    let nonce: [u8; 24] = std::array::from_fn(|i| seed.wrapping_add(i as u8));
    let keyring = keyring(&[(1, KeyState::Primary)]);
    let entry = keyring.entry(1).unwrap();
    let aad = crate::token::AssociatedData::new(1, PURPOSE.as_bytes()).unwrap();
    let mut bytes = vec![crate::token::VERSION];
    bytes.extend_from_slice(&1u32.to_be_bytes());
    bytes.extend_from_slice(&nonce);
    let mut body = plaintext.to_vec();
    let tag = entry.token_aead.encrypt_in_place_detached(&nonce, aad.as_bytes(), &mut body).unwrap();
    bytes.extend_from_slice(&body);
    bytes.extend_from_slice(&tag);
    encode(&bytes)
}

fn flip(bytes: &[u8], index: usize) -> String {
    let mut changed = bytes.to_vec();
    changed[index] ^= 0x01;
    encode(&changed)
}

fn build() -> Value {
    let cases = [
        Case {
            name: "anonymous, empty name",
            key_id: 1,
            user: None,
            data: Data { name: String::new(), visits: 0 },
            seed: 0,
        },
        Case {
            name: "user with epoch",
            key_id: 1,
            user: Some(("alice", 3)),
            data: Data { name: "Alice".into(), visits: 300 },
            seed: 40,
        },
        Case {
            name: "sealed by the active key",
            key_id: 2,
            user: Some(("bob", 0)),
            data: Data { name: "ünïcödé ✓".into(), visits: u32::MAX },
            seed: 80,
        },
        Case {
            name: "long data",
            key_id: 1,
            user: Some(("carol", 1 << 40)),
            data: Data { name: "x".repeat(300), visits: 128 },
            seed: 120,
        },
    ];
    let sealed: Vec<(Value, Vec<u8>)> = cases.iter().map(seal_case).collect();
    let (_, base) = &sealed[1];
    let base_text = encode(base);
    let n = base.len();

    let (_, retired) = seal_case(&Case {
        name: "",
        key_id: 3,
        user: None,
        data: Data { name: "r".into(), visits: 1 },
        seed: 9,
    });
    let (_, unknown) = seal_case(&Case {
        name: "",
        key_id: 9,
        user: None,
        data: Data { name: "u".into(), visits: 1 },
        seed: 19,
    });
    let mut relabelled = base.clone();
    relabelled[1..5].copy_from_slice(&2u32.to_be_bytes());
    let mut version2 = base.clone();
    version2[0] = 2;
    // A token whose length leaves unused bits in its last base64 character.
    let (_, odd) = sealed.iter().find(|(_, b)| b.len() % 3 != 0).expect("a token with unused bits");
    let odd_text = encode(odd);
    let mut trailing_bits = odd_text.clone();
    let last = trailing_bits.pop().unwrap();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let pos = alphabet.iter().position(|&c| c == last as u8).unwrap();
    trailing_bits.push(alphabet[pos | 1] as char);
    let plus = base_text.replacen(['-', '_', 'A'], "+", 1);

    let invalid =
        |name: &str, token: String, error: &str| json!({ "name": name, "token": token, "error": error });
    let mut negatives = vec![
        invalid("wrong version", encode(&version2), "UnsupportedVersion(2)"),
        invalid("key ID relabelled to another valid key", encode(&relabelled), "Invalid"),
        invalid("modified nonce", flip(base, 5), "Invalid"),
        invalid("modified ciphertext", flip(base, 29), "Invalid"),
        invalid("modified tag", flip(base, n - 1), "Invalid"),
        invalid("truncated by one byte", encode(&base[..n - 1]), "Invalid"),
        invalid("truncated below the minimum", encode(&base[..44]), "Malformed"),
        invalid("extended by one byte", encode(&[base.as_slice(), &[0]].concat()), "Invalid"),
        invalid("padded base64", format!("{odd_text}="), "Malformed"),
        invalid("non-zero unused bits in the last character", trailing_bits, "Malformed"),
        invalid("standard base64 alphabet", plus, "Malformed"),
        invalid("whitespace", format!("{} {}", &base_text[..10], &base_text[10..]), "Malformed"),
        invalid("empty", String::new(), "Malformed"),
        invalid("retired key", encode(&retired), "RetiredKey(3)"),
        invalid("unknown key", encode(&unknown), "UnknownKey(9)"),
        invalid("too large", "A".repeat(4097), "TooLarge"),
    ];
    // Tokens that authenticate but whose envelope is not canonical, or whose
    // data is not of the application's type: a verifier must decode strictly.
    let plaintext = unhex(sealed[1].0["plaintext"].as_str().unwrap());
    let data_len = postcard::to_allocvec(&cases[1].data).unwrap().len();
    let head = &plaintext[..plaintext.len() - data_len];
    let first_varint = head.iter().position(|b| b & 0x80 == 0).unwrap() + 1;
    let mut non_minimal = plaintext[..first_varint].to_vec();
    *non_minimal.last_mut().unwrap() |= 0x80;
    non_minimal.push(0);
    non_minimal.extend_from_slice(&plaintext[first_varint..]);
    let mut bad_tag = plaintext.clone();
    assert_eq!(bad_tag[31], 1, "the user's option tag");
    bad_tag[31] = 2;
    let mut not_the_type = head.to_vec();
    not_the_type.extend_from_slice(&[0xff; 9]);
    not_the_type.push(0x01);
    negatives.extend([
        invalid("non-minimal varint in the envelope head", seal_plaintext(&non_minimal, 200), "Malformed"),
        invalid("option tag other than 0 or 1", seal_plaintext(&bad_tag, 201), "Malformed"),
        invalid("envelope head cut short", seal_plaintext(&plaintext[..20], 202), "Malformed"),
        invalid("data not of the application's type", seal_plaintext(&not_the_type, 203), "DataMismatch"),
        invalid(
            "bytes left over after the data",
            seal_plaintext(&[plaintext.as_slice(), &[0]].concat(), 204),
            "DataMismatch",
        ),
    ]);
    let mut wrong_purpose = invalid("wrong purpose", base_text.clone(), "Invalid");
    wrong_purpose["purpose"] = json!("__Host-other");
    let mut expired = invalid("absolute expiry reached", base_text.clone(), "Expired(Absolute)");
    expired["now"] = json!(NOW as u64 + ABSOLUTE);
    let mut idle = invalid("idle timeout reached", base_text.clone(), "Expired(Idle)");
    idle["now"] = json!(NOW as u64 + IDLE);
    let mut future = invalid("issued beyond the leeway", base_text, "NotYetValid");
    future["now"] = json!(NOW - 61);
    negatives.extend([wrong_purpose, expired, idle, future]);

    json!({
        "format": "sealed-session token v1 (docs/FORMAT.md)",
        "hkdf_info": std::str::from_utf8(crate::keyring::TOKEN_KEY_INFO).unwrap(),
        "purpose": PURPOSE,
        "now": NOW,
        "absolute_timeout": ABSOLUTE,
        "idle_timeout": IDLE,
        "leeway": 60,
        "max_token_len": 4096,
        "keys": KEYS.iter().map(|&(id, state)| json!({
            "id": id, "state": state.as_str(), "secret": hex(&secret(id)),
        })).collect::<Vec<_>>(),
        "valid": sealed.into_iter().map(|(v, _)| v).collect::<Vec<_>>(),
        "invalid": negatives,
    })
}

fn error_name(err: &OpenError) -> String {
    match err {
        OpenError::TooLarge { .. } => "TooLarge".into(),
        other => format!("{other:?}"),
    }
}

fn file() -> Value {
    serde_json::from_str(&std::fs::read_to_string(PATH).unwrap()).unwrap()
}

#[test]
fn vectors_file_is_current() {
    let built = build();
    if std::env::var_os("SEALED_SESSION_WRITE_VECTORS").is_some() {
        let before = file();
        std::fs::write(PATH, serde_json::to_string_pretty(&built).unwrap() + "\n").unwrap();
        // Never a pass against the file just written: review the diff, then
        // run again without the variable.
        assert_eq!(before, built, "tests/vectors/v1.json rewritten: review the diff and run again without SEALED_SESSION_WRITE_VECTORS");
        panic!(
            "SEALED_SESSION_WRITE_VECTORS is set: the file was rewritten (unchanged); run again without it"
        );
    }
    assert_eq!(file(), built, "the token format drifted from tests/vectors/v1.json");
}

#[test]
fn valid_vectors_open_to_their_data() {
    let vectors = file();
    let sealer = sealer(keyring(&KEYS), PURPOSE);
    for v in vectors["valid"].as_array().unwrap() {
        let opened = sealer.open_at::<Data>(v["token"].as_str().unwrap(), at(NOW)).unwrap();
        let session = opened.session();
        assert_eq!(opened.key_id() as u64, v["key_id"].as_u64().unwrap());
        assert_eq!(session.id().to_hex(), v["session_id"].as_str().unwrap());
        assert_eq!(session.user_id(), v["user_id"].as_str());
        assert_eq!(session.epoch(), v["epoch"].as_u64().unwrap());
        assert_eq!(session.data().name, v["data"]["name"].as_str().unwrap());
        assert_eq!(u64::from(session.data().visits), v["data"]["visits"].as_u64().unwrap());
        assert_eq!(session.expires_at().unwrap().unix_timestamp() as u64, v["expires_at"].as_u64().unwrap());
        let token = URL_SAFE_NO_PAD.decode(v["token"].as_str().unwrap()).unwrap();
        assert_eq!(hex(&token[5..29]), v["nonce"].as_str().unwrap());
        assert_eq!(unhex(v["plaintext"].as_str().unwrap()).len() + 45, token.len());
    }
}

#[test]
fn invalid_vectors_fail_with_their_error() {
    let vectors = file();
    let invalid = vectors["invalid"].as_array().unwrap();
    assert!(invalid.len() >= 20);
    for v in invalid {
        let purpose = v.get("purpose").and_then(Value::as_str).unwrap_or(PURPOSE);
        let now = v.get("now").and_then(Value::as_i64).unwrap_or(NOW);
        let err = sealer(keyring(&KEYS), purpose)
            .open_at::<Data>(v["token"].as_str().unwrap(), at(now))
            .expect_err(v["name"].as_str().unwrap());
        assert_eq!(error_name(&err), v["error"].as_str().unwrap(), "{}", v["name"]);
    }
}

/// The hazmat envelope codec reads each vector's plaintext to its fields and
/// writes the same bytes back.
#[cfg(feature = "hazmat")]
#[test]
fn the_envelope_codec_reads_and_writes_the_vectors_plaintexts() {
    use crate::token::envelope;
    for v in file()["valid"].as_array().unwrap() {
        let plaintext = unhex(v["plaintext"].as_str().unwrap());
        let (fields, data) = envelope::decode(&plaintext).expect("a vector's envelope decodes");
        assert_eq!(fields.issued_at, v["issued_at"].as_u64().unwrap());
        assert_eq!(fields.expires_at, v["expires_at"].as_u64().unwrap());
        assert_eq!(fields.last_seen, v["last_seen"].as_u64().unwrap());
        assert_eq!(hex(&fields.session_id), v["session_id"].as_str().unwrap());
        assert_eq!(fields.user_id.as_deref(), v["user_id"].as_str());
        assert_eq!(fields.epoch, v["epoch"].as_u64().unwrap());
        assert!(!data.is_empty(), "field 7, the data, follows");
        assert_eq!(envelope::encode(&fields, &data), plaintext, "{}", v["name"]);
    }
    assert_eq!(envelope::decode(&[]), None);
}
