//! Oracle: decoding an envelope then encoding it gives back the same bytes
//! (the encoding is canonical), and encoding then decoding gives back the
//! same fields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealed_session::envelope;

fuzz_target!(|data: &[u8]| {
    if let Some((fields, rest)) = envelope::decode(data) {
        assert_eq!(envelope::encode(&fields, &rest), data, "decode then encode changed the bytes");
        let (again, again_rest) = envelope::decode(&envelope::encode(&fields, &rest)).unwrap();
        assert_eq!((again, again_rest), (fields, rest));
    }
});
