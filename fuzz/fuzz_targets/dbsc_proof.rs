//! Oracle: no input panics the DBSC proof parser, its verifiers or the
//! structured-field reader; a string the server writes reads back as itself
//! and holds printable ASCII only.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealed_session::dbsc::{parse_proof, parse_string_item, serialize_string, Algorithm, DevicePublicKey};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(proof) = parse_proof(text) {
        let _ = proof.claimed_challenge();
        let _ = proof.verify_registration(&[Algorithm::Es256, Algorithm::Rs256], Some("ac"));
    }
    if let Ok(proof) = parse_proof(text) {
        let _ = proof.verify_refresh(&DevicePublicKey::Ec { x: [1; 32], y: [2; 32] });
    }
    let _ = parse_string_item(text);
    if let Some(field) = serialize_string(text) {
        assert_eq!(parse_string_item(&field).as_deref(), Ok(text), "a string we write must read back");
        // Checked here, not by the parser that reads it back: a header we
        // write holds printable ASCII only (RFC 9651 §3.3.3), never a CR,
        // LF or DEL.
        assert!(field.bytes().all(|b| (0x20..=0x7e).contains(&b)), "{field:?}");
    }
});
