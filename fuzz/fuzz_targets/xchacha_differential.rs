//! Oracle: our XChaCha20-Poly1305 (HChaCha20 + ring) agrees byte for byte
//! with the chacha20poly1305 crate, and decrypts what it encrypts.
#![no_main]

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use libfuzzer_sys::fuzz_target;
use sealed_session::aead::XChaCha20Poly1305;

fuzz_target!(|input: ([u8; 32], [u8; 24], Vec<u8>, Vec<u8>)| {
    let (key, nonce, aad, message) = input;
    let ours = XChaCha20Poly1305::new(&key);
    let reference = chacha20poly1305::XChaCha20Poly1305::new(&key.into());

    let mut our_buf = message.clone();
    let our_tag = ours.encrypt_in_place_detached(&nonce, &aad, &mut our_buf).unwrap();
    let mut ref_buf = message.clone();
    let ref_tag =
        reference.encrypt_inout_detached(&nonce.into(), &aad, ref_buf.as_mut_slice().into()).unwrap();
    assert_eq!(our_buf, ref_buf, "ciphertexts differ");
    assert_eq!(our_tag.as_slice(), ref_tag.as_slice(), "tags differ");

    ours.decrypt_in_place_detached(&nonce, &aad, &mut our_buf, &our_tag).unwrap();
    assert_eq!(our_buf, message);
    // The reference refuses what ours refuses, and the reverse.
    let mut wrong = our_tag;
    wrong[message.len() % 16] ^= 1;
    let mut again = ref_buf.clone();
    assert!(ours.decrypt_in_place_detached(&nonce, &aad, &mut again, &wrong).is_err());
    assert!(reference
        .decrypt_inout_detached(&nonce.into(), &aad, ref_buf.as_mut_slice().into(), &wrong.into())
        .is_err());
});
