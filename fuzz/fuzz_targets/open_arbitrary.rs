//! Oracle: on the test vectors' keys, purpose and clock, the only inputs
//! that open are the vectors' own authentic tokens (the valid ones, and the
//! invalid ones refused only after they authenticate: data that does not
//! decode, times sealed to break one rule), and every other input is
//! refused before it authenticates (malformed, unknown or retired key,
//! invalid tag). An error that only an authenticated token can reach
//! (expired, not yet valid, wrong data type) from any other input would
//! mean a forgery passed the tag check.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use sealed_session::{KeySpec, KeyState, Keyring, ManualClock, MasterKey, OpenError, Sealer, UntrustedToken};

const VECTORS: [&str; 2] =
    [include_str!("../../tests/vectors/v1.json"), include_str!("../../tests/vectors/v2.json")];

struct Oracle {
    sealer: Sealer,
    /// The vectors' authentic tokens: all that may open.
    seeds: Vec<String>,
}

static ORACLE: LazyLock<Oracle> = LazyLock::new(|| {
    let files: Vec<serde_json::Value> = VECTORS.iter().map(|f| serde_json::from_str(f).unwrap()).collect();
    // Both files share keys, purpose, clock and timeouts, the remember-me
    // ones included; version 2's adds the device-bound lifetime.
    let vectors = &files[1];
    let keys = vectors["keys"].as_array().unwrap().iter().map(|key| {
        let hex = key["secret"].as_str().unwrap();
        let bytes: Vec<u8> =
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        let state = match key["state"].as_str().unwrap() {
            "primary" => KeyState::Primary,
            "active" => KeyState::Active,
            _ => KeyState::Retired,
        };
        KeySpec::new(key["id"].as_u64().unwrap() as u32, state, MasterKey::from_slice(&bytes).unwrap())
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
        .map(|v| v["token"].as_str().unwrap().to_owned())
        .collect();
    Oracle { sealer, seeds }
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
    let now = oracle.sealer.clock().now();
    match oracle.sealer.open_raw_at(&text, now) {
        Ok(_) => assert!(seed, "an input that is not a vector token opened: {text:?}"),
        Err(err) => assert!(
            seed || refused_before_authentication(&err),
            "an input was refused after it authenticated ({err}): {text:?}"
        ),
    }
    if let Err(err) = oracle.sealer.open::<Vec<u8>>(&text) {
        assert!(
            seed || refused_before_authentication(&err),
            "refused after authenticating ({err}): {text:?}"
        );
    }
});
