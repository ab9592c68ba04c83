//! Oracle: no input that we did not seal ever opens, and nothing panics.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use sealed_session::{KeySpec, KeyState, Keyring, ManualClock, MasterKey, Sealer, UntrustedToken};

/// The keys of tests/vectors/v1.json, so that the seed corpus (its tokens)
/// reaches past the key lookup. The clock reads 2001: the vector tokens were
/// sealed in 2027, so even they never open, and any input that does is a
/// forgery.
static SEALER: LazyLock<Sealer> = LazyLock::new(|| {
    let key = |id: u32, state| {
        let bytes: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(7).wrapping_add(id as u8 * 16));
        KeySpec { id, state, key: MasterKey::from_slice(&bytes).unwrap(), created: None }
    };
    let keyring =
        Keyring::new([key(1, KeyState::Primary), key(2, KeyState::Active), key(3, KeyState::Retired)]);
    Sealer::builder(keyring.unwrap()).clock(ManualClock::at_unix(1_000_000_000)).build().unwrap()
});

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = UntrustedToken::decode(&text, 4096);
    assert!(SEALER.open::<Vec<u8>>(&text).is_err(), "an input we did not seal opened");
    assert!(SEALER.open_raw_at(&text, SEALER.clock().now()).is_err(), "an input we did not seal opened");
});
