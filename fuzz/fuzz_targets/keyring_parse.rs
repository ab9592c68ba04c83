//! Oracle: keyring text never panics the parsers; what parses writes back
//! to text that parses to the same keys; and an error never repeats a run
//! of 17 or more base64url characters of the text (a secret, or a piece of
//! one: the errors echo at most a 16-letter field or state name).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealed_session::Keyring;

/// Every 17-character window of each run of base64url characters in `text`.
fn secret_like(text: &str) -> Vec<&str> {
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    text.split(|c: char| !is_b64(c))
        .filter(|run| run.len() >= 17)
        .flat_map(|run| (0..=run.len() - 17).map(move |at| &run[at..at + 17]))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for parsed in [Keyring::from_toml_str(text), Keyring::from_env_value(text)] {
        match parsed {
            Ok(keyring) => {
                let again =
                    Keyring::from_toml_str(&keyring.to_toml_string()).expect("our own output must parse");
                assert!(again.keys().eq(keyring.keys()), "keys changed through a write and a read");
                assert_eq!(again.primary_id(), keyring.primary_id());
            }
            Err(err) => {
                let shown = format!("{err} {err:?}");
                for piece in secret_like(text) {
                    assert!(!shown.contains(piece), "the error repeats {piece:?}: {shown}");
                }
            }
        }
    }
});
