//! Oracle: on the test vectors' keys, purpose and clock, the only inputs
//! that open are the vectors' own authentic tokens (the valid ones, and the
//! invalid ones refused only after they authenticate: data that does not
//! decode, times sealed to break one rule), and every other input is
//! refused before it authenticates (malformed, unknown or retired key,
//! invalid tag). An error that only an authenticated token can reach
//! (expired, not yet valid, wrong data type) from any other input would
//! mean a forgery passed the tag check.
//!
//! The fuzzer cannot forge a tag, so how far an input gets is judged
//! independently too, from docs/FORMAT.md steps 1 to 5 written here: one
//! that passes them and does not decrypt (ring's HKDF, the
//! `chacha20poly1305` crate) must be refused as `Invalid`, exactly: a
//! forgery let past a broken tag check would be `Malformed` or worse.
#![no_main]

use std::sync::LazyLock;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use libfuzzer_sys::fuzz_target;
use sealed_session::{KeySpec, KeyState, Keyring, ManualClock, MasterKey, OpenError, Sealer, UntrustedToken};

const VECTORS: [&str; 2] =
    [include_str!("../../tests/vectors/v1.json"), include_str!("../../tests/vectors/v2.json")];

struct Oracle {
    sealer: Sealer,
    /// The vectors' authentic tokens: all that may open.
    seeds: Vec<String>,
    /// Each key's ID, whether it is retired, and its token subkey, derived
    /// here as FORMAT.md says.
    keys: Vec<(u32, bool, [u8; 32])>,
    purpose: String,
}

/// HKDF-SHA256 with no salt, as FORMAT.md derives the token subkey.
fn token_key(secret: &[u8]) -> [u8; 32] {
    struct Len;
    impl ring::hkdf::KeyType for Len {
        fn len(&self) -> usize {
            32
        }
    }
    let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, &[]).extract(secret);
    let mut okm = [0u8; 32];
    prk.expand(&[b"sealed-session v1 token xchacha20poly1305"], Len).unwrap().fill(&mut okm).unwrap();
    okm
}

/// FORMAT.md steps 1 to 5, judged here: the decoded bytes and the token
/// subkey if `text` reaches decryption, `None` if it is refused before.
fn reaches_decryption<'a>(oracle: &'a Oracle, text: &str) -> Option<(Vec<u8>, &'a [u8; 32])> {
    if text.len() > 4096 {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).ok()?;
    let header = match bytes.first()? {
        1 if bytes.len() >= 45 => 5,
        2 if bytes.len() >= 46 && bytes[1] & !0x07 == 0 => 6,
        _ => return None,
    };
    let id = u32::from_be_bytes(bytes[header - 4..header].try_into().unwrap());
    let (_, retired, key) = oracle.keys.iter().find(|(key_id, _, _)| *key_id == id)?;
    (!retired).then_some((bytes, key))
}

/// Whether `bytes` decrypt under `key` with the purpose, or (version 1)
/// with any of the purposes an opener of any kind of data tries.
fn authentic(oracle: &Oracle, bytes: &[u8], key: &[u8; 32]) -> bool {
    let header = if bytes[0] == 1 { 5 } else { 6 };
    let aead = chacha20poly1305::XChaCha20Poly1305::new(key.into());
    let nonce: [u8; 24] = bytes[header..header + 24].try_into().unwrap();
    let purposes: &[&str] =
        if bytes[0] == 1 { &["", "+remember", "+versioned", "+remember+versioned"] } else { &[""] };
    purposes.iter().any(|suffix| {
        let aad = [&bytes[..header], oracle.purpose.as_bytes(), suffix.as_bytes()].concat();
        aead.decrypt(&nonce.into(), Payload { msg: &bytes[header + 24..], aad: &aad }).is_ok()
    })
}

static ORACLE: LazyLock<Oracle> = LazyLock::new(|| {
    let files: Vec<serde_json::Value> = VECTORS.iter().map(|f| serde_json::from_str(f).unwrap()).collect();
    // Both files share keys, purpose, clock and timeouts, the remember-me
    // ones included; version 2's adds the device-bound lifetime.
    let vectors = &files[1];
    let mut subkeys = Vec::new();
    let keys = vectors["keys"].as_array().unwrap().iter().map(|key| {
        let hex = key["secret"].as_str().unwrap();
        let bytes: Vec<u8> =
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        let state = match key["state"].as_str().unwrap() {
            "primary" => KeyState::Primary,
            "active" => KeyState::Active,
            _ => KeyState::Retired,
        };
        let id = key["id"].as_u64().unwrap() as u32;
        subkeys.push((id, state == KeyState::Retired, token_key(&bytes)));
        KeySpec::new(id, state, MasterKey::from_slice(&bytes).unwrap())
    });
    let sealer = Sealer::builder(Keyring::new(keys).unwrap())
        .purpose(vectors["purpose"].as_str().unwrap())
        .clock(ManualClock::at_unix(vectors["now"].as_i64().unwrap()))
        .remember_me(
            std::time::Duration::from_secs(vectors["remember_absolute_timeout"].as_u64().unwrap()),
            std::time::Duration::from_secs(vectors["remember_idle_timeout"].as_u64().unwrap()),
        )
        .build()
        .unwrap();
    // A vector refused after authenticating carries a valid tag: over an
    // envelope whose data is not of the application's type, or over times
    // that break a rule. It is authentic too.
    let seeds = files
        .iter()
        .flat_map(|vectors| {
            let authentic_invalid = vectors["invalid"].as_array().unwrap().iter().filter(|v| {
                matches!(
                    v["error"].as_str(),
                    Some("DataMismatch" | "Expired(Absolute)" | "Expired(Idle)" | "NotYetValid")
                )
            });
            vectors["valid"].as_array().unwrap().iter().chain(authentic_invalid)
        })
        // (A vector sealed under a purpose of its own is a forgery here.)
        .filter(|v| v.get("purpose").is_none())
        .map(|v| v["token"].as_str().unwrap().to_owned())
        .collect();
    let purpose = vectors["purpose"].as_str().unwrap().to_owned();
    Oracle { sealer, seeds, keys: subkeys, purpose }
});

fn refused_before_authentication(err: &OpenError) -> bool {
    matches!(
        err,
        OpenError::TooLarge { .. }
            | OpenError::Malformed
            | OpenError::UnsupportedVersion(_)
            | OpenError::UnknownKey(_)
            | OpenError::RetiredKey(_)
            | OpenError::Invalid
    )
}

fuzz_target!(|data: &[u8]| {
    let oracle = &*ORACLE;
    let text = String::from_utf8_lossy(data);
    let _ = UntrustedToken::decode(&text, 4096);
    let seed = oracle.seeds.iter().any(|s| *s == text);
    // Refused at decryption, by the judgement made here: a forgery.
    let forged =
        reaches_decryption(oracle, &text).is_some_and(|(bytes, key)| !authentic(oracle, &bytes, key));
    assert!(!(seed && forged), "a vector token does not decrypt here: {text:?}");
    let now = oracle.sealer.clock().now();
    for result in
        [oracle.sealer.open_raw_at(&text, now).map(drop), oracle.sealer.open::<Vec<u8>>(&text).map(drop)]
    {
        match result {
            Ok(()) => assert!(seed, "an input that is not a vector token opened: {text:?}"),
            Err(err) if forged => {
                assert_eq!(err, OpenError::Invalid, "a forgery was refused for something else: {text:?}")
            }
            Err(err) => assert!(
                seed || refused_before_authentication(&err),
                "an input was refused after it authenticated ({err}): {text:?}"
            ),
        }
    }
});
