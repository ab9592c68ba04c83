//! Known-answer vectors for token formats v1 and v2 (tests/vectors/v1.json,
//! tests/vectors/v2.json).
//!
//! The vectors are produced here, through the crate-private fixed-nonce
//! entry point (sealing version 1 through `SealerBuilder::token_version`),
//! and compared with the committed files: any drift of either format fails
//! `vectors_files_are_current`. Write the files anew (only for a deliberate
//! format change, which needs a new version byte) with
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

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");
const PURPOSE: &str = "__Host-session";
const NOW: i64 = 1_800_000_000;
const ABSOLUTE: u64 = 12 * 3600;
const IDLE: u64 = 1800;
/// The remember-me timeouts of the remembered vectors.
const REMEMBER_ABSOLUTE: u64 = 30 * 86_400;
const REMEMBER_IDLE: u64 = 7 * 86_400;
/// Version 2's device-bound lifetime: a bound session opens this long after
/// its last proof of possession (its `last_seen`).
const DEVICE_BOUND: u64 = 600;
/// The format versions with vectors.
const VERSIONS: [u8; 2] = [1, 2];

fn path(version: u8) -> String {
    format!("{DIR}/v{version}.json")
}

/// The application data type of every vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Data {
    name: String,
    visits: u32,
}

impl crate::versioned::SessionData for Data {
    const VERSION: u32 = 3;
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

/// The keyring every vector is opened with: ID, state, and the scheduled
/// `activate_at` and `retire_at` (Unix seconds) of keys 1, 4 and 5.
const KEYS: [(u32, KeyState, Option<i64>, Option<i64>); 5] = [
    (1, KeyState::Primary, Some(PRIMARY_ACTIVATES), None),
    (2, KeyState::Active, None, None),
    (3, KeyState::Retired, None, None),
    (4, KeyState::Active, Some(ACTIVATES), None),
    (5, KeyState::Active, None, Some(RETIRES)),
];
/// When key 4 is scheduled to start sealing: it opens nothing before this,
/// less the leeway.
const ACTIVATES: i64 = NOW + 1000;
/// The `activate_at` key 1 carries, in the future, which counts for nothing:
/// a primary key seals and opens whatever it says (FORMAT.md, section 5,
/// step 5). Every valid vector under key 1 says so.
const PRIMARY_ACTIVATES: i64 = NOW + 2000;
/// When key 5 is scheduled to retire: it opens nothing from this on.
const RETIRES: i64 = NOW + 500;
/// The leeway of every sealer and opener (the default).
const LEEWAY: i64 = 60;

/// The keyring of [`KEYS`], schedules included.
fn opening_keyring() -> Keyring {
    Keyring::new(KEYS.iter().map(|&(id, state, activate, retire)| {
        let mut spec = KeySpec::new(id, state, MasterKey::from_slice(&secret(id)).unwrap());
        spec.activate_at = activate.map(at);
        spec.retire_at = retire.map(at);
        spec
    }))
    .unwrap()
}

/// The sealer every vector is sealed and opened with: with remember-me
/// timeouts, and in version 2 (which alone can say so) a device-bound
/// lifetime.
fn sealer(keyring: Keyring, purpose: &str, version: u8) -> Sealer {
    opener(keyring, purpose, version, true, version != 1)
}

/// A sealer of the vectors' settings, with the remember-me profile and the
/// device-bound lifetime only if `remember` and `bound` say so.
fn opener(keyring: Keyring, purpose: &str, version: u8, remember: bool, bound: bool) -> Sealer {
    let mut builder = Sealer::builder(keyring)
        .purpose(purpose)
        .absolute_timeout(std::time::Duration::from_secs(ABSOLUTE))
        .idle_timeout(std::time::Duration::from_secs(IDLE))
        .token_version(version);
    if remember {
        builder = builder.remember_me(
            std::time::Duration::from_secs(REMEMBER_ABSOLUTE),
            std::time::Duration::from_secs(REMEMBER_IDLE),
        );
    }
    if bound {
        builder = builder.device_bound_lifetime(std::time::Duration::from_secs(DEVICE_BOUND));
    }
    builder.build().unwrap()
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
    /// Sealed as a remember-me session.
    remembered: bool,
    /// The data sealed as `Versioned<Data>`.
    versioned: bool,
    /// Sealed as a device-bound session, proven at `NOW` (version 2 only).
    device_bound: bool,
}

impl Case {
    fn plain(
        name: &'static str,
        key_id: u32,
        user: Option<(&'static str, u64)>,
        data: Data,
        seed: u8,
    ) -> Self {
        Self { name, key_id, user, data, seed, remembered: false, versioned: false, device_bound: false }
    }
}

/// Seals one case in format `version` with the key `case.key_id` as
/// primary; returns the vector's JSON and the token's bytes.
fn seal_case(case: &Case, version: u8) -> (Value, Vec<u8>) {
    let nonce: [u8; 24] = std::array::from_fn(|i| case.seed.wrapping_add(i as u8));
    let id: [u8; 16] = std::array::from_fn(|i| case.seed.wrapping_mul(3).wrapping_add(i as u8));
    let sealing = sealer(keyring(&[(case.key_id, KeyState::Primary)]), PURPOSE, version);
    fn user<T>(case: &Case, mut session: Session<T>) -> Session<T> {
        if let Some((user, epoch)) = case.user {
            session = session.with_user(user, epoch);
        }
        if case.remembered {
            session = session.remembered();
        }
        if case.device_bound {
            let absolute = if case.remembered { REMEMBER_ABSOLUTE } else { ABSOLUTE };
            let times = crate::session::Times {
                issued_at: NOW as u64,
                expires_at: NOW as u64 + absolute,
                last_seen: NOW as u64,
            };
            session = session.with_times(times);
            session.set_device_bound(true);
        }
        session
    }
    let (token, data) = if case.versioned {
        let versioned = crate::versioned::Versioned(case.data.clone());
        let session = user(case, Session::new(versioned.clone()).with_id(SessionId::from_bytes(id)));
        let token = sealing.seal_with_nonce(&session, NOW as u64, nonce).unwrap();
        (token, postcard::to_allocvec(&versioned).unwrap())
    } else {
        let session = user(case, Session::new(case.data.clone()).with_id(SessionId::from_bytes(id)));
        let token = sealing.seal_with_nonce(&session, NOW as u64, nonce).unwrap();
        (token, postcard::to_allocvec(&case.data).unwrap())
    };
    let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
    let absolute = if case.remembered { REMEMBER_ABSOLUTE } else { ABSOLUTE };

    let head = crate::token::Head {
        issued_at: NOW as u64,
        expires_at: NOW as u64 + absolute,
        last_seen: NOW as u64,
        session_id: id,
        user_id: case.user.map(|u| u.0),
        epoch: case.user.map_or(0, |u| u.1),
    };
    let mut plaintext = postcard::to_allocvec(&head).unwrap();
    plaintext.extend_from_slice(&data);
    let mut vector = json!({
        "name": case.name,
        "key_id": case.key_id,
        "nonce": hex(&nonce),
        "session_id": hex(&id),
        "user_id": case.user.map(|u| u.0),
        "epoch": case.user.map_or(0, |u| u.1),
        "issued_at": NOW,
        "expires_at": NOW as u64 + absolute,
        "last_seen": NOW,
        "data": { "name": case.data.name, "visits": case.data.visits },
        "plaintext": hex(&plaintext),
        "token": token,
    });
    // Version 1 says the profile and the kind of data in the purpose,
    // version 2 in its flags.
    if version != 1 {
        vector["flags"] = json!(bytes[1]);
        vector["device_bound"] = json!(case.device_bound);
    }
    vector["remembered"] = json!(case.remembered);
    if case.versioned {
        vector["data_version"] = json!(<Data as crate::versioned::SessionData>::VERSION);
    }
    (vector, bytes)
}

fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Seals `plaintext`, whatever it holds, in format `version` (with no
/// flags) under key 1 with a fixed nonce: a token that authenticates, for
/// the vectors whose envelope is wrong.
fn seal_plaintext(plaintext: &[u8], seed: u8, version: u8) -> String {
    seal_plaintext_as(plaintext, seed, version, false)
}

/// [`seal_plaintext`], as versioned data if `versioned` (flag `0x02` in
/// version 2, the `+versioned` purpose in version 1).
fn seal_plaintext_as(plaintext: &[u8], seed: u8, version: u8, versioned: bool) -> String {
    seal_plaintext_under(plaintext, seed, version, if versioned { 0x02 } else { 0 }, PURPOSE)
}

/// [`seal_plaintext`] with the flags byte `flags` (version 2; in version 1,
/// only the versioned flag `0x02` counts, as the `+versioned` suffix) under
/// `purpose`, of any length.
fn seal_plaintext_under(plaintext: &[u8], seed: u8, version: u8, flags: u8, purpose: &str) -> String {
    let nonce: [u8; 24] = std::array::from_fn(|i| seed.wrapping_add(i as u8));
    let keyring = keyring(&[(1, KeyState::Primary)]);
    let entry = keyring.entry(1).unwrap();
    let mut bytes = vec![version];
    if version != 1 {
        bytes.push(flags);
    }
    bytes.extend_from_slice(&1u32.to_be_bytes());
    let versioned = flags & 0x02 != 0;
    let purpose = if versioned && version == 1 { format!("{purpose}+versioned") } else { purpose.to_owned() };
    let aad = [bytes.as_slice(), purpose.as_bytes()].concat();
    bytes.extend_from_slice(&nonce);
    let mut body = plaintext.to_vec();
    let tag = entry.token_aead.encrypt_in_place_detached(&nonce, &aad, &mut body).unwrap();
    bytes.extend_from_slice(&body);
    bytes.extend_from_slice(&tag);
    encode(&bytes)
}

/// The envelope head of `plaintext`, whose data takes its last `data_len` bytes.
fn head_of(plaintext: &[u8], data_len: usize) -> crate::token::Head<String> {
    let head = &plaintext[..plaintext.len() - data_len];
    postcard::from_bytes::<crate::token::Head<String>>(head).unwrap()
}

fn flip(bytes: &[u8], index: usize) -> String {
    let mut changed = bytes.to_vec();
    changed[index] ^= 0x01;
    encode(&changed)
}

fn build(version: u8) -> Value {
    let mut cases = vec![
        Case::plain("anonymous, empty name", 1, None, Data { name: String::new(), visits: 0 }, 0),
        Case::plain("user with epoch", 1, Some(("alice", 3)), Data { name: "Alice".into(), visits: 300 }, 40),
        Case::plain(
            "sealed by the active key",
            2,
            Some(("bob", 0)),
            Data { name: "ünïcödé ✓".into(), visits: u32::MAX },
            80,
        ),
        Case::plain(
            "long data",
            1,
            Some(("carol", 1 << 40)),
            Data { name: "x".repeat(300), visits: 128 },
            120,
        ),
    ];
    // Each profile and kind of data (device binding only version 2 can say).
    let kinds = [
        ("remember-me profile", 1, Some(("dan", 1)), ("Dan", 7), 160, (true, false, false)),
        ("versioned data", 2, None, ("Eve", 2), 170, (false, true, false)),
        ("device-bound session", 1, Some(("frank", 2)), ("Frank", 9), 180, (false, false, true)),
        // Binding replaces the idle timeout of the profile that applies.
        ("remember-me profile, device-bound", 1, Some(("ivan", 3)), ("Ivan", 4), 200, (true, false, true)),
        (
            "remember-me profile, versioned data",
            1,
            Some(("grace", 4)),
            ("Grace", 11),
            190,
            (true, true, false),
        ),
    ];
    for (name, key_id, user, (data_name, visits), seed, (remembered, versioned, device_bound)) in kinds {
        if device_bound && version == 1 {
            continue;
        }
        let data = Data { name: data_name.into(), visits };
        cases.push(Case {
            remembered,
            versioned,
            device_bound,
            ..Case::plain(name, key_id, user, data, seed)
        });
    }
    let sealed: Vec<(Value, Vec<u8>)> = cases.iter().map(|case| seal_case(case, version)).collect();
    let (_, base) = &sealed[1];
    let base_text = encode(base);
    let n = base.len();
    // Where the key ID ends and the nonce begins.
    let prefix = crate::token::prefix_len(version);

    let (_, retired) = seal_case(&Case::plain("", 3, None, Data { name: "r".into(), visits: 1 }, 9), version);
    let (_, unknown) =
        seal_case(&Case::plain("", 9, None, Data { name: "u".into(), visits: 1 }, 19), version);
    let mut relabelled = base.clone();
    relabelled[prefix - 4..prefix].copy_from_slice(&2u32.to_be_bytes());
    let mut version3 = base.clone();
    version3[0] = 3;
    // A token whose length leaves unused bits in its last base64 character.
    let (_, odd) = sealed.iter().find(|(_, b)| b.len() % 3 != 0).expect("a token with unused bits");
    let odd_text = encode(odd);
    let mut trailing_bits = odd_text.clone();
    let last = trailing_bits.pop().unwrap();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let pos = alphabet.iter().position(|&c| c == last as u8).unwrap();
    trailing_bits.push(alphabet[pos | 1] as char);
    let plus = base_text.replacen(['-', '_', 'A'], "+", 1);
    let slash = base_text.replacen(['-', '_', 'A'], "/", 1);

    let invalid =
        |name: &str, token: String, error: &str| json!({ "name": name, "token": token, "error": error });
    let mut negatives = vec![
        invalid("unknown version", encode(&version3), "UnsupportedVersion(3)"),
        invalid("key ID relabelled to another valid key", encode(&relabelled), "Invalid"),
        invalid("modified nonce", flip(base, prefix), "Invalid"),
        invalid("modified ciphertext", flip(base, prefix + 24), "Invalid"),
        invalid("modified tag", flip(base, n - 1), "Invalid"),
        invalid("truncated by one byte", encode(&base[..n - 1]), "Invalid"),
        invalid("truncated below the minimum", encode(&base[..44]), "Malformed"),
        // Step 3 comes before step 4: too short is malformed whatever the version.
        invalid("unknown version, below the minimum", encode(&version3[..44]), "Malformed"),
        invalid("extended by one byte", encode(&[base.as_slice(), &[0]].concat()), "Invalid"),
        invalid("padded base64", format!("{odd_text}="), "Malformed"),
        invalid("non-zero unused bits in the last character", trailing_bits, "Malformed"),
        invalid("standard base64 alphabet", plus, "Malformed"),
        invalid("standard base64 alphabet's slash", slash, "Malformed"),
        invalid("whitespace", format!("{} {}", &base_text[..10], &base_text[10..]), "Malformed"),
        invalid("empty", String::new(), "Malformed"),
        invalid("retired key", encode(&retired), "RetiredKey(3)"),
        invalid("unknown key", encode(&unknown), "UnknownKey(9)"),
        invalid("too large", "A".repeat(4097), "TooLarge"),
        // Step 1 counts bytes: 4096 characters, 4097 bytes.
        invalid("too large in bytes, not in characters", format!("{}\u{e9}", "A".repeat(4095)), "TooLarge"),
        // A length of 1 modulo 4 is no base64 (some decoders drop the last
        // character instead).
        invalid(
            "a character too many (a length of 1 modulo 4)",
            format!("{base_text}{}", "A".repeat((5 - base_text.len() % 4) % 4)),
            "Malformed",
        ),
        // At the limit the text is read: 3072 zero bytes, version 0.
        invalid("as large as allowed", "A".repeat(4096), "UnsupportedVersion(0)"),
        // Long enough to hold a header and a tag: refused by authentication.
        invalid("header and tag without a byte of ciphertext", encode(&base[..prefix + 40]), "Invalid"),
    ];
    if version != 1 {
        let with_flags = |flags: u8| {
            let mut changed = base.clone();
            changed[1] = flags;
            encode(&changed)
        };
        negatives.extend([
            invalid("one byte short of a version 2 header and tag", encode(&base[..45]), "Malformed"),
            invalid("a flag no version defines", with_flags(0x08), "Malformed"),
            invalid("remember-me flag set on a standard token", with_flags(0x01), "Invalid"),
            invalid("device-bound flag set on an unbound token", with_flags(0x04), "Invalid"),
            invalid(
                "versioned-data flag where the application's type is not versioned",
                with_flags(0x02),
                "Invalid",
            ),
            invalid(
                "remember-me and device-bound flags set on a standard token",
                with_flags(0x05),
                "Invalid",
            ),
            invalid("every defined flag set on a standard token", with_flags(0x07), "Invalid"),
            invalid("an undefined flag beside a defined one", with_flags(0x0c), "Malformed"),
            // Step 4 before step 5: the flags are read before the key ID.
            invalid(
                "an undefined flag on a token under an unknown key",
                {
                    let mut changed = unknown.clone();
                    changed[1] = 0x08;
                    encode(&changed)
                },
                "Malformed",
            ),
        ]);
    }
    // Tokens that authenticate but whose envelope is not canonical, or whose
    // data is not of the application's type: a verifier must decode strictly.
    let plaintext = unhex(sealed[1].0["plaintext"].as_str().unwrap());
    let data_len = postcard::to_allocvec(&cases[1].data).unwrap().len();
    let head = &plaintext[..plaintext.len() - data_len];
    // `varint_end(i)` is where the varint that starts at `i` ends;
    // `non_minimal_at(end)` spells the one that ends there a byte longer.
    let varint_end = |i: usize| i + plaintext[i..].iter().position(|b| b & 0x80 == 0).unwrap() + 1;
    let non_minimal_at = |end: usize| {
        let mut bytes = plaintext[..end].to_vec();
        *bytes.last_mut().unwrap() |= 0x80;
        bytes.push(0);
        bytes.extend_from_slice(&plaintext[end..]);
        bytes
    };
    let first_varint = varint_end(0);
    let mut bad_tag = plaintext.clone();
    assert_eq!(bad_tag[31], 1, "the user's option tag");
    bad_tag[31] = 2;
    let mut not_the_type = head.to_vec();
    not_the_type.extend_from_slice(&[0xff; 9]);
    not_the_type.push(0x01);
    // A ten-byte varint in field 1: one whose tenth byte is above 0x01
    // overflows u64; at 0x01 it is u64::MAX, which decodes (and is an issue
    // time far ahead).
    let with_issued_at = |tenth: u8| {
        let mut envelope = vec![0xff; 9];
        envelope.push(tenth);
        envelope.extend_from_slice(&plaintext[first_varint..]);
        envelope
    };
    let mut at_max = invalid(
        "ten-byte varint of u64::MAX as the issue time",
        seal_plaintext(&with_issued_at(0x01), 212, version),
        "NotYetValid",
    );
    at_max["now"] = json!(NOW);
    // Versioned data of a version the application does not read, given as
    // its varint's bytes: one past u32 (2^32 + 3, whose low 32 bits are the
    // application's version: a verifier that cut it to a u32 would take
    // it), and another u32 than the application's (which migrates none).
    let data_bytes = &plaintext[head.len()..];
    let versioned_as = |name: &str, version_varint: &[u8], seed: u8| {
        let mut envelope = head.to_vec();
        envelope.extend_from_slice(version_varint);
        envelope.push(u8::try_from(data_bytes.len()).unwrap());
        envelope.extend_from_slice(data_bytes);
        let mut vector = invalid(name, seal_plaintext_as(&envelope, seed, version, true), "DataMismatch");
        vector["opener"] = json!({ "versioned": true });
        vector
    };
    let version_past_u32 = versioned_as(
        "versioned data whose version does not fit in a u32",
        &[0x83, 0x80, 0x80, 0x80, 0x10],
        213,
    );
    let version_unknown =
        versioned_as("versioned data of a version the application does not read", &[2], 214);
    // The application's version, and a byte left inside the byte string
    // after the data: refused as field 7 with a byte left after it is.
    let left_inside = {
        let mut envelope = head.to_vec();
        envelope.push(u8::try_from(<Data as crate::versioned::SessionData>::VERSION).unwrap());
        envelope.push(u8::try_from(data_bytes.len() + 1).unwrap());
        envelope.extend_from_slice(data_bytes);
        envelope.push(0);
        let name = "a byte left inside versioned data, after the data";
        let mut vector = invalid(name, seal_plaintext_as(&envelope, 223, version, true), "DataMismatch");
        vector["opener"] = json!({ "versioned": true });
        vector
    };
    // Step 7 comes before steps 8 to 10: an expired token whose envelope
    // or data does not decode says so, not that it expired.
    let expired_now = json!(NOW as u64 + ABSOLUTE);
    let mut expired_mismatch = invalid(
        "data not of the application's type, in a token expired by now",
        seal_plaintext(&not_the_type, 215, version),
        "DataMismatch",
    );
    expired_mismatch["now"] = expired_now.clone();
    let mut expired_malformed = invalid(
        "option tag other than 0 or 1, in a token expired by now",
        seal_plaintext(&bad_tag, 216, version),
        "Malformed",
    );
    expired_malformed["now"] = expired_now;
    // Fields 2 to 6 are decoded as strictly as field 1.
    let expires_end = varint_end(first_varint);
    let user_len_at = 32;
    assert_eq!(plaintext[user_len_at], 5, "the length of \"alice\"");
    let epoch_end = varint_end(user_len_at + 1 + 5);
    let mut not_utf8 = plaintext.clone();
    not_utf8[user_len_at + 1] = 0xff;
    negatives.extend([
        invalid(
            "ten-byte varint that overflows u64 in the envelope head",
            seal_plaintext(&with_issued_at(0x02), 211, version),
            "Malformed",
        ),
        at_max,
        version_past_u32,
        version_unknown,
        left_inside,
        expired_mismatch,
        expired_malformed,
        invalid(
            "non-minimal varint in the envelope head",
            seal_plaintext(&non_minimal_at(first_varint), 200, version),
            "Malformed",
        ),
        invalid(
            "non-minimal varint as the expiry",
            seal_plaintext(&non_minimal_at(expires_end), 217, version),
            "Malformed",
        ),
        invalid(
            "non-minimal varint as the last activity",
            seal_plaintext(&non_minimal_at(varint_end(expires_end)), 222, version),
            "Malformed",
        ),
        invalid(
            "non-minimal varint as the user ID's length",
            seal_plaintext(&non_minimal_at(user_len_at + 1), 218, version),
            "Malformed",
        ),
        invalid(
            "non-minimal varint as the epoch",
            seal_plaintext(&non_minimal_at(epoch_end), 219, version),
            "Malformed",
        ),
        invalid("user ID that is not UTF-8", seal_plaintext(&not_utf8, 220, version), "Malformed"),
        invalid("option tag other than 0 or 1", seal_plaintext(&bad_tag, 201, version), "Malformed"),
        invalid("envelope head cut short", seal_plaintext(&plaintext[..20], 202, version), "Malformed"),
        invalid(
            "data not of the application's type",
            seal_plaintext(&not_the_type, 203, version),
            "DataMismatch",
        ),
        invalid(
            "bytes left over after the data",
            seal_plaintext(&[plaintext.as_slice(), &[0]].concat(), 204, version),
            "DataMismatch",
        ),
    ]);
    // Tokens with times of their own (sealed as `seal_plaintext` does), for
    // the rules a verifier that checks one time field alone would miss.
    // The case `of` (key 1, data not versioned) with these times instead.
    let timed_case = |of: usize, name: &str, issued_at: u64, expires_at: u64, last_seen: u64, seed: u8| {
        let (vector, _) = &sealed[of];
        assert_eq!((cases[of].key_id, cases[of].versioned), (1, false));
        let plaintext = unhex(vector["plaintext"].as_str().unwrap());
        let data_len = postcard::to_allocvec(&cases[of].data).unwrap().len();
        let envelope =
            crate::token::Head { issued_at, expires_at, last_seen, ..head_of(&plaintext, data_len) };
        let mut bytes = postcard::to_allocvec(&envelope).unwrap();
        bytes.extend_from_slice(&plaintext[plaintext.len() - data_len..]);
        let mut vector = vector.clone();
        let nonce: [u8; 24] = std::array::from_fn(|i| seed.wrapping_add(i as u8));
        let flags = vector.get("flags").map_or(0, |flags| flags.as_u64().unwrap() as u8);
        vector["name"] = json!(name);
        vector["nonce"] = json!(hex(&nonce));
        vector["issued_at"] = json!(issued_at);
        vector["expires_at"] = json!(expires_at);
        vector["last_seen"] = json!(last_seen);
        vector["plaintext"] = json!(hex(&bytes));
        vector["token"] = json!(seal_plaintext_under(&bytes, seed, version, flags, PURPOSE));
        vector
    };
    let timed = |name: &str, issued_at: u64, expires_at: u64, last_seen: u64, seed: u8| {
        timed_case(1, name, issued_at, expires_at, last_seen, seed)
    };
    let now = NOW as u64;
    let mut shortened = invalid(
        "absolute timeout reached by the issue time, before the sealed expiry",
        timed("", now - ABSOLUTE, now + ABSOLUTE, now, 205)["token"].as_str().unwrap().to_owned(),
        "Expired(Absolute)",
    );
    shortened["now"] = json!(now);
    let mut ahead = invalid(
        "last activity beyond the leeway",
        timed("", now, now + ABSOLUTE, now + 61, 206)["token"].as_str().unwrap().to_owned(),
        "NotYetValid",
    );
    ahead["now"] = json!(now);
    // The sealed expiry alone: the absolute timeout from the issue time is
    // far off.
    let mut sealed_expiry = invalid(
        "sealed expiry passed, the absolute timeout from the issue time not",
        timed("", now - 100, now - 1, now - 10, 208)["token"].as_str().unwrap().to_owned(),
        "Expired(Absolute)",
    );
    sealed_expiry["now"] = json!(now);
    // The issue time alone beyond the leeway: the last activity is now.
    let mut issued_ahead = invalid(
        "issue time beyond the leeway, last activity now",
        timed("", now + 61, now + ABSOLUTE, now, 209)["token"].as_str().unwrap().to_owned(),
        "NotYetValid",
    );
    issued_ahead["now"] = json!(now);
    // The sealed expiry reached to the second (`>=`), the absolute timeout
    // from the issue time far off.
    let mut at_expiry = invalid(
        "sealed expiry reached this second, the absolute timeout from the issue time not",
        timed("", now - 100, now, now - 10, 221)["token"].as_str().unwrap().to_owned(),
        "Expired(Absolute)",
    );
    at_expiry["now"] = json!(now);
    negatives.extend([shortened, ahead, sealed_expiry, issued_ahead, at_expiry]);
    let mut wrong_purpose = invalid("wrong purpose", base_text.clone(), "Invalid");
    wrong_purpose["purpose"] = json!("__Host-other");
    let mut expired = invalid("absolute expiry reached", base_text.clone(), "Expired(Absolute)");
    expired["now"] = json!(NOW as u64 + ABSOLUTE);
    let mut idle = invalid("idle timeout reached", base_text.clone(), "Expired(Idle)");
    idle["now"] = json!(NOW as u64 + IDLE);
    let base_text_for_openers = base_text.clone();
    let mut future = invalid("issued beyond the leeway", base_text, "NotYetValid");
    future["now"] = json!(NOW - 61);
    negatives.extend([wrong_purpose, expired, idle, future]);
    // The longest purpose the associated data may hold, and one byte more
    // (FORMAT.md, section 3): sealed by another implementation, never opened.
    let purpose_of = |len: usize| format!("{PURPOSE}-{}", "p".repeat(len - PURPOSE.len() - 1));
    let longest = purpose_of(crate::token::MAX_PURPOSE_LEN);
    let too_long = purpose_of(crate::token::MAX_PURPOSE_LEN + 1);
    let mut over = invalid(
        "sealed under a purpose one byte longer than the associated data may hold",
        seal_plaintext_under(&plaintext, 224, version, 0, &too_long),
        "Invalid",
    );
    over["purpose"] = json!(too_long);
    negatives.push(over);
    let token_of = |flagged: fn(&Value) -> bool| {
        let (vector, _) = sealed.iter().find(|(v, _)| flagged(v)).unwrap();
        vector["token"].as_str().unwrap().to_owned()
    };
    let bound = |v: &Value| v["device_bound"] == json!(true);
    let remembered = |v: &Value| v["remembered"] == json!(true);
    // The remember-me profile's own idle timeout.
    let mut remembered_idle =
        invalid("remember-me idle timeout reached", token_of(remembered), "Expired(Idle)");
    remembered_idle["now"] = json!(NOW as u64 + REMEMBER_IDLE);
    negatives.push(remembered_idle);
    // Genuine tokens, each opened by an opener that lacks what its flags
    // (in version 1, its purpose) name: refused (FORMAT.md, step 5; in
    // version 1, no purpose the opener tries authenticates).
    let with_opener = |name: &str, token: String, opener: Value| {
        let mut vector = invalid(name, token, "Invalid");
        if opener != json!({}) {
            vector["opener"] = opener;
        }
        vector
    };
    negatives.extend([
        with_opener(
            "versioned-data token, opened for a type that is not versioned",
            token_of(|v| v.get("data_version").is_some()),
            json!({}),
        ),
        with_opener(
            "unversioned token, opened for a versioned type",
            base_text_for_openers,
            json!({ "versioned": true }),
        ),
        with_opener(
            "remember-me token, opened without a remember-me profile",
            token_of(remembered),
            json!({ "remember_me": false }),
        ),
    ]);
    if version != 1 {
        let mut lapsed =
            invalid("device-bound lifetime passed since the last proof", token_of(bound), "Expired(Idle)");
        lapsed["now"] = json!(NOW as u64 + DEVICE_BOUND);
        negatives.extend([
            lapsed,
            with_opener(
                "device-bound token, opened without a device-bound lifetime",
                token_of(bound),
                json!({ "device_bound": false }),
            ),
        ]);
    }

    // Valid vectors opened at a time of their own (`now`): where a verifier
    // that mixed up the time rules would refuse them.
    let at_time = |index: usize, name: &str, now: u64| {
        let mut vector = sealed[index].0.clone();
        vector["name"] = json!(name);
        vector["now"] = json!(now);
        vector
    };
    let mut valid: Vec<Value> = sealed.iter().map(|(v, _)| v.clone()).collect();
    valid.push(at_time(1, "one second before the idle timeout", NOW as u64 + IDLE - 1));
    valid.push(at_time(1, "issued at the edge of the leeway", NOW as u64 - 60));
    let mut recent = timed(
        "active a moment ago, issued long ago: idle counts from the last activity",
        NOW as u64 - ABSOLUTE + 100,
        NOW as u64 + 100,
        NOW as u64,
        207,
    );
    recent["now"] = json!(NOW as u64 + 50);
    valid.push(recent);
    if version != 1 {
        // (Version 1's suffixes would take this purpose past the limit.)
        let mut longest_purpose = sealed[1].0.clone();
        longest_purpose["name"] = json!("sealed under the longest purpose the associated data may hold");
        longest_purpose["purpose"] = json!(longest);
        longest_purpose["nonce"] =
            json!(hex(&std::array::from_fn::<u8, 24, _>(|i| 225u8.wrapping_add(i as u8))));
        longest_purpose["token"] = json!(seal_plaintext_under(&plaintext, 225, version, 0, &longest));
        valid.push(longest_purpose);
    }
    // Keys with a schedule (FORMAT.md, step 5), each token opened on both
    // sides of its key's edge: key 4 opens from its time less the leeway,
    // key 5 until its retire date.
    let edges = [
        (4, "a key scheduled to seal later, at its time less the leeway", ACTIVATES - LEEWAY),
        (5, "a key with a retire date, one second before it", RETIRES - 1),
    ];
    let refusals = [
        (
            "a key scheduled to seal later, a second before its time less the leeway",
            ACTIVATES - LEEWAY - 1,
            "NotYetValid",
        ),
        ("a key at its retire date", RETIRES, "RetiredKey(5)"),
    ];
    for (seed, ((key_id, name, opens_at), (refusal, refused_at, error))) in
        (210..).zip(edges.into_iter().zip(refusals))
    {
        let data = Data { name: "Heidi".into(), visits: 5 };
        let (mut vector, _) = seal_case(&Case::plain(name, key_id, Some(("heidi", 5)), data, seed), version);
        let mut refused = invalid(refusal, vector["token"].as_str().unwrap().to_owned(), error);
        refused["now"] = json!(refused_at);
        negatives.push(refused);
        vector["now"] = json!(opens_at);
        valid.push(vector);
    }
    let index = |flag: &str| sealed.iter().position(|(v, _)| v[flag] == json!(true)).unwrap();
    valid.push(at_time(
        index("remembered"),
        "remember-me profile, past the standard idle timeout",
        NOW as u64 + IDLE,
    ));
    valid.push(at_time(
        index("remembered"),
        "remember-me profile, past the standard absolute timeout",
        NOW as u64 + ABSOLUTE,
    ));
    if version != 1 {
        valid.push(at_time(
            index("device_bound"),
            "device-bound, one second before its lifetime since the last proof",
            NOW as u64 + DEVICE_BOUND - 1,
        ));
        // Remembered and bound: the device-bound lifetime is its idle
        // timeout, not the remember-me one.
        let both = sealed
            .iter()
            .position(|(v, _)| v["remembered"] == json!(true) && v["device_bound"] == json!(true))
            .unwrap();
        valid.push(at_time(
            both,
            "remember-me and device-bound, one second before its lifetime since the last proof",
            NOW as u64 + DEVICE_BOUND - 1,
        ));
        let mut lapsed = invalid(
            "remember-me and device-bound, its lifetime since the last proof passed (not the remember-me idle timeout)",
            sealed[both].0["token"].as_str().unwrap().to_owned(),
            "Expired(Idle)",
        );
        lapsed["now"] = json!(NOW as u64 + DEVICE_BOUND);
        negatives.push(lapsed);
        // Remembered and bound, issued 13 hours ago and proven a minute
        // ago: the remember-me absolute timeout holds, not the standard one.
        let issued_at = NOW as u64 - ABSOLUTE - 3600;
        let mut long_lived = timed_case(
            both,
            "remember-me and device-bound, proven a minute ago, issued before the standard absolute timeout",
            issued_at,
            issued_at + REMEMBER_ABSOLUTE,
            NOW as u64 - 60,
            223,
        );
        long_lived["now"] = json!(NOW);
        valid.push(long_lived);
    }

    let mut file = json!({
        "format": format!("sealed-session token v{version} (docs/FORMAT.md)"),
        "version": version,
        "hkdf_info": std::str::from_utf8(crate::keyring::TOKEN_KEY_INFO).unwrap(),
        "purpose": PURPOSE,
        "now": NOW,
        "absolute_timeout": ABSOLUTE,
        "idle_timeout": IDLE,
        "leeway": LEEWAY,
        "max_token_len": 4096,
        "keys": keys_json(),
        "valid": valid,
        "invalid": negatives,
    });
    // The application's type, `{ name: String, visits: u32 }`, is
    // versioned at this version and migrates no other.
    file["data_version"] = json!(<Data as crate::versioned::SessionData>::VERSION);
    file["remember_absolute_timeout"] = json!(REMEMBER_ABSOLUTE);
    file["remember_idle_timeout"] = json!(REMEMBER_IDLE);
    if version != 1 {
        file["device_bound_lifetime"] = json!(DEVICE_BOUND);
    }
    file
}

/// [`KEYS`] as the files give them.
fn keys_json() -> Vec<Value> {
    KEYS.iter()
        .map(|&(id, state, activate, retire)| {
            let mut key = json!({ "id": id, "state": state.as_str(), "secret": hex(&secret(id)) });
            if let Some(activate) = activate {
                key["activate_at"] = json!(activate);
            }
            if let Some(retire) = retire {
                key["retire_at"] = json!(retire);
            }
            key
        })
        .collect()
}

const CSRF_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/csrf.json");

/// The CSRF token vectors (FORMAT.md, section 1): tokens of one session
/// under each key that makes or takes them, masked with a pad of their own,
/// and what a verifier refuses.
fn build_csrf() -> Value {
    let keyring = opening_keyring();
    let session = SessionId::from_bytes(std::array::from_fn(|i| 0xa0 + i as u8));
    let other = SessionId::from_bytes(std::array::from_fn(|i| 0x50 + i as u8));
    let raw = |id: u32, session: &SessionId| crate::csrf::raw(keyring.entry(id).unwrap(), session).unwrap();
    let masked = |raw: &[u8], seed: u8| {
        let pad: Vec<u8> = (0..raw.len()).map(|i| seed.wrapping_add(i as u8 * 3)).collect();
        let tail: Vec<u8> = pad.iter().zip(raw).map(|(p, r)| p ^ r).collect();
        (hex(&pad), encode(&[pad, tail].concat()))
    };
    let mut valid = Vec::new();
    for (id, name, now, seed) in [
        (1, "the primary key", NOW, 1),
        (2, "an active key", NOW, 2),
        (5, "a key with a retire date, one second before it", RETIRES - 1, 3),
        (4, "a key scheduled to seal later, at its time less the leeway", ACTIVATES - LEEWAY, 4),
    ] {
        let bytes = raw(id, &session);
        let (pad, masked) = masked(&bytes, seed);
        valid.push(json!({ "name": name, "key_id": id, "now": now, "token": encode(&bytes), "pad": pad, "masked": masked }));
    }
    let primary = raw(1, &session);
    let token = encode(&primary);
    let (_, masked_token) = masked(&primary, 9);
    let invalid =
        |name: &str, token: String, error: &str| json!({ "name": name, "token": token, "error": error });
    let mut flipped = primary;
    flipped[20] ^= 1;
    let mut unknown = primary;
    unknown[..4].copy_from_slice(&9u32.to_be_bytes());
    let mut bad_pad = URL_SAFE_NO_PAD.decode(&masked_token).unwrap();
    bad_pad[0] ^= 1;
    let at = |mut vector: Value, now: i64| {
        vector["now"] = json!(now);
        vector
    };
    let negatives = vec![
        invalid("empty", String::new(), "Missing"),
        invalid("one character short", token[..47].to_owned(), "Invalid"),
        invalid("one character more", format!("{token}A"), "Invalid"),
        invalid("masked, one character short", masked_token[..95].to_owned(), "Invalid"),
        invalid("padded base64", format!("{}=", &token[..47]), "Invalid"),
        invalid("standard base64 alphabet", token.replacen(['-', '_', 'A'], "+", 1), "Invalid"),
        invalid("a bit of the MAC changed", encode(&flipped), "Invalid"),
        invalid("masked, a bit of the pad changed", encode(&bad_pad), "Invalid"),
        invalid("another session's token", encode(&raw(1, &other)), "Invalid"),
        invalid("an unknown key", encode(&unknown), "Invalid"),
        invalid("a retired key", encode(&raw(3, &session)), "Invalid"),
        at(invalid("a key at its retire date", encode(&raw(5, &session)), "Invalid"), RETIRES),
        at(
            invalid(
                "a key scheduled to seal later, a second before its time less the leeway",
                encode(&raw(4, &session)),
                "Invalid",
            ),
            ACTIVATES - LEEWAY - 1,
        ),
    ];
    json!({
        "format": "sealed-session CSRF token (docs/FORMAT.md, section 1)",
        "hkdf_info": std::str::from_utf8(crate::keyring::CSRF_KEY_INFO).unwrap(),
        "mac_prefix": "sealed-session csrf v1",
        "now": NOW,
        "leeway": LEEWAY,
        "keys": keys_json(),
        "session_id": hex(session.as_bytes()),
        "other_session_id": hex(other.as_bytes()),
        "valid": valid,
        "invalid": negatives,
    })
}

/// Every CSRF vector verifies, or fails, as it says, masked or not.
#[test]
fn csrf_vectors_verify_as_they_say() {
    let file = read(CSRF_PATH);
    let keyring = opening_keyring();
    let session = SessionId::from_bytes(unhex(file["session_id"].as_str().unwrap()).try_into().unwrap());
    let leeway = file["leeway"].as_u64().unwrap();
    let verify = |token: &str, now: u64| crate::csrf::verify(&keyring, &session, token, now, leeway);
    for v in file["valid"].as_array().unwrap() {
        let now = v["now"].as_u64().unwrap();
        for form in ["token", "masked"] {
            assert_eq!(verify(v[form].as_str().unwrap(), now), Ok(()), "{} ({form})", v["name"]);
        }
    }
    for v in file["invalid"].as_array().unwrap() {
        let now = v.get("now").map_or(NOW as u64, |now| now.as_u64().unwrap());
        let err = verify(v["token"].as_str().unwrap(), now).unwrap_err();
        assert_eq!(format!("{err:?}"), v["error"].as_str().unwrap(), "{}", v["name"]);
    }
    // A sealer makes its tokens with the key that seals at the time: the
    // primary, and from its `activate_at` on the scheduled key 4.
    let session = Session::new(()).with_id(session);
    for (now, key_id) in [(NOW, 1), (ACTIVATES, 4)] {
        let clock = crate::ManualClock::at_unix(now);
        let sealer = Sealer::builder(opening_keyring()).clock(clock).build().unwrap();
        let masked = URL_SAFE_NO_PAD.decode(sealer.csrf_token(&session)).unwrap();
        let (pad, tail) = masked.split_at(masked.len() / 2);
        let unmasked: Vec<u8> = pad.iter().zip(tail).map(|(p, m)| p ^ m).collect();
        let vector = file["valid"].as_array().unwrap().iter().find(|v| v["key_id"] == key_id).unwrap();
        assert_eq!(encode(&unmasked), vector["token"].as_str().unwrap(), "at {now}");
    }
}

fn error_name(err: &OpenError) -> String {
    match err {
        OpenError::TooLarge { .. } => "TooLarge".into(),
        other => format!("{other:?}"),
    }
}

fn read(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn file(version: u8) -> Value {
    read(&path(version))
}

/// The token vectors of each version and the CSRF vectors.
#[test]
fn vectors_files_are_current() {
    let files = VERSIONS.map(|version| (path(version), build(version)));
    for (path, built) in files.into_iter().chain([(CSRF_PATH.to_owned(), build_csrf())]) {
        if std::env::var_os("SEALED_SESSION_WRITE_VECTORS").is_some() {
            std::fs::write(&path, serde_json::to_string_pretty(&built).unwrap() + "\n").unwrap();
            continue;
        }
        assert_eq!(read(&path), built, "the format drifted from {path}");
    }
    // Never a pass against files just written: review the diff, then run
    // again without the variable.
    assert!(
        std::env::var_os("SEALED_SESSION_WRITE_VECTORS").is_none(),
        "SEALED_SESSION_WRITE_VECTORS is set: the files were rewritten; review the diff and run again without it"
    );
}

#[test]
fn valid_vectors_open_to_their_data() {
    for version in VERSIONS {
        let vectors = file(version);
        for v in vectors["valid"].as_array().unwrap() {
            let sealer = sealer(
                opening_keyring(),
                v.get("purpose").and_then(Value::as_str).unwrap_or(PURPOSE),
                version,
            );
            let token = v["token"].as_str().unwrap();
            // What the vector says, read from the opened session.
            fn facts<T>(opened: &crate::Opened<T>, data: impl Fn(&T) -> &Data) -> Value {
                let session = opened.session();
                json!({
                    "key_id": opened.key_id(),
                    "session_id": session.id().to_hex(),
                    "user_id": session.user_id(),
                    "epoch": session.epoch(),
                    "remembered": session.is_remembered(),
                    "device_bound": session.is_device_bound(),
                    "data": { "name": data(session.data()).name, "visits": data(session.data()).visits },
                    "expires_at": session.expires_at().unwrap().unix_timestamp(),
                })
            }
            let now = at(v.get("now").map_or(NOW, |now| now.as_i64().unwrap()));
            let facts = if v.get("data_version").is_some() {
                let opened = sealer.open_at::<crate::versioned::Versioned<Data>>(token, now).unwrap();
                assert!(opened.is_versioned_data());
                facts(&opened, |d| &d.0)
            } else {
                let opened = sealer.open_at::<Data>(token, now);
                facts(&opened.unwrap_or_else(|err| panic!("v{version} {}: {err:?}", v["name"])), |d| d)
            };
            for field in ["key_id", "session_id", "user_id", "epoch", "data", "expires_at"] {
                assert_eq!(facts[field], v[field], "v{version} {}: {field}", v["name"]);
            }
            assert_eq!(facts["remembered"], v.get("remembered").cloned().unwrap_or(json!(false)));
            assert_eq!(facts["device_bound"], v.get("device_bound").cloned().unwrap_or(json!(false)));
            let token = URL_SAFE_NO_PAD.decode(token).unwrap();
            let prefix = crate::token::prefix_len(version);
            assert_eq!(token[0], version);
            assert_eq!(hex(&token[prefix..prefix + 24]), v["nonce"].as_str().unwrap());
            assert_eq!(unhex(v["plaintext"].as_str().unwrap()).len() + prefix + 24 + 16, token.len());
        }
    }
}

#[test]
fn invalid_vectors_fail_with_their_error() {
    for version in VERSIONS {
        let vectors = file(version);
        let invalid = vectors["invalid"].as_array().unwrap();
        assert!(invalid.len() >= 20);
        for v in invalid {
            let purpose = v.get("purpose").and_then(Value::as_str).unwrap_or(PURPOSE);
            if purpose.len() > crate::token::MAX_PURPOSE_LEN {
                // No sealer here takes such a purpose, so none opens the token.
                let refused = Sealer::builder(opening_keyring()).purpose(purpose).build().map(drop);
                assert_eq!(refused, Err(crate::ConfigError::PurposeTooLong(purpose.len())));
                assert_eq!(v["error"], "Invalid", "v{version}: {}", v["name"]);
                continue;
            }
            let now = at(v.get("now").and_then(Value::as_i64).unwrap_or(NOW));
            // The opener's own settings, where the vector names them.
            let setting = |name: &str| v.get("opener").and_then(|o| o.get(name)).and_then(Value::as_bool);
            let (remember, bound) = (setting("remember_me"), setting("device_bound"));
            let sealer = opener(
                opening_keyring(),
                purpose,
                version,
                remember != Some(false),
                bound != Some(false) && version != 1,
            );
            let token = v["token"].as_str().unwrap();
            let opened = if setting("versioned") == Some(true) {
                sealer.open_at::<crate::versioned::Versioned<Data>>(token, now).map(drop)
            } else {
                sealer.open_at::<Data>(token, now).map(drop)
            };
            let err = opened.expect_err(v["name"].as_str().unwrap());
            assert_eq!(error_name(&err), v["error"].as_str().unwrap(), "v{version}: {}", v["name"]);
        }
    }
}

/// A sealer of either version opens the other's tokens: the default (2)
/// opens version 1 and asks to re-issue it; one sealing version 1 opens
/// version 2.
#[test]
fn each_version_opens_the_others_tokens() {
    let v1 = file(1)["valid"][1]["token"].as_str().unwrap().to_owned();
    let v2 = file(2)["valid"][1]["token"].as_str().unwrap().to_owned();
    let current = sealer(opening_keyring(), PURPOSE, 2).open_at::<Data>(&v1, at(NOW)).unwrap();
    assert_eq!(current.reissue(), Some(crate::Reissue::FormatUpgrade));
    let rolling = sealer(opening_keyring(), PURPOSE, 1).open_at::<Data>(&v2, at(NOW)).unwrap();
    assert_eq!(rolling.reissue(), None, "a version 1 sealer never asks to go back");
    assert_eq!(rolling.session().data().name, "Alice");
}

/// The hazmat envelope codec reads each vector's plaintext to its fields and
/// writes the same bytes back.
#[cfg(feature = "hazmat")]
#[test]
fn the_envelope_codec_reads_and_writes_the_vectors_plaintexts() {
    use crate::token::envelope;
    for v in VERSIONS.iter().flat_map(|&version| file(version)["valid"].as_array().unwrap().clone()) {
        let plaintext = unhex(v["plaintext"].as_str().unwrap());
        let (fields, data) = envelope::decode(&plaintext).expect("a vector's envelope decodes");
        assert_eq!(fields.issued_at, v["issued_at"].as_u64().unwrap());
        assert_eq!(fields.expires_at, v["expires_at"].as_u64().unwrap());
        assert_eq!(fields.last_seen, v["last_seen"].as_u64().unwrap());
        assert_eq!(hex(&fields.session_id), v["session_id"].as_str().unwrap());
        let shown = format!("{fields:?}");
        assert!(shown.contains("SessionId(") && !shown.contains(&hex(&fields.session_id)), "{shown}");
        assert_eq!(fields.user_id.as_deref(), v["user_id"].as_str());
        assert_eq!(fields.epoch, v["epoch"].as_u64().unwrap());
        assert!(!data.is_empty(), "field 7, the data, follows");
        assert_eq!(envelope::encode(&fields, &data), plaintext, "{}", v["name"]);
    }
    assert_eq!(envelope::decode(&[]), None);
}
