//! Oracle: keyring text never panics the parsers, and what parses writes
//! back to text that parses to the same keys.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealed_session::Keyring;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for keyring in [Keyring::from_toml_str(text), Keyring::from_env_value(text)].into_iter().flatten() {
        let again = Keyring::from_toml_str(&keyring.to_toml_string()).expect("our own output must parse");
        assert!(again.keys().eq(keyring.keys()), "keys changed through a write and a read");
        assert_eq!(again.primary_id(), keyring.primary_id());
    }
});
