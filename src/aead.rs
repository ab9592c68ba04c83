//! XChaCha20-Poly1305, as libsodium and draft-irtf-cfrg-xchacha define it.
//!
//! The construction is the standard one: HChaCha20 of the key and the first
//! 16 nonce bytes gives a per-message subkey, which encrypts with IETF
//! ChaCha20-Poly1305 (RFC 8439) under the nonce `0u32 ‖ nonce[16..24]`.
//! HChaCha20 comes from the `chacha20` crate; ChaCha20-Poly1305 from `ring`,
//! whose assembly implementation costs about a quarter of a portable one in a
//! default build (see docs/BENCHMARKS.md). The output is byte for byte that of
//! the `chacha20poly1305` crate's `XChaCha20Poly1305`; the test suite checks
//! it against the draft's known answer and differentially on random input.
//!
//! This is a low-level building block, exposed for benchmarks, fuzzing and
//! independent verification; applications use [`Sealer`](crate::Sealer).

use std::fmt;

use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, CHACHA20_POLY1305};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Key length in bytes.
pub const KEY_LEN: usize = 32;
/// Nonce length in bytes.
pub const NONCE_LEN: usize = 24;
/// Tag length in bytes.
pub const TAG_LEN: usize = 16;

/// Authentication failed, or the message is longer than the AEAD allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("AEAD operation failed")]
pub struct AeadError;

/// An XChaCha20-Poly1305 key. Wiped on drop; `Debug` prints no key material.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct XChaCha20Poly1305 {
    key: [u8; KEY_LEN],
}

impl XChaCha20Poly1305 {
    /// Uses `key` as an XChaCha20-Poly1305 key.
    #[must_use]
    pub fn new(key: &[u8; KEY_LEN]) -> Self {
        Self { key: *key }
    }

    /// Runs `f` with the per-message ChaCha20-Poly1305 key and nonce for
    /// `nonce`. The key is built in place and lent to `f`, not returned: ring's
    /// key object is several hundred bytes, and moving it costs more than the
    /// key setup itself.
    ///
    /// `ring` keeps its copy of the subkey inside `LessSafeKey`, which offers
    /// no way to wipe it; our copy is wiped here. See SECURITY.md.
    fn with_message_key<R>(
        &self,
        nonce: &[u8; NONCE_LEN],
        f: impl FnOnce(&LessSafeKey, Nonce) -> Result<R, ring::error::Unspecified>,
    ) -> Result<R, AeadError> {
        let (head, tail) = nonce.split_first_chunk::<16>().ok_or(AeadError)?;
        let mut ietf_nonce = [0u8; 12];
        ietf_nonce.get_mut(4..).ok_or(AeadError)?.copy_from_slice(tail);
        let subkey = Zeroizing::new(<[u8; KEY_LEN]>::from(chacha20::hchacha::<chacha20::R20>(
            (&self.key).into(),
            head.into(),
        )));
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, subkey.as_ref()).map_err(|_| AeadError)?;
        f(&LessSafeKey::new(unbound), Nonce::assume_unique_for_key(ietf_nonce)).map_err(|_| AeadError)
    }

    /// Encrypts `buf` in place and returns the tag.
    ///
    /// # Errors
    /// [`AeadError`] only for messages longer than ChaCha20 can encrypt (256 GiB).
    pub fn encrypt_in_place_detached(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], AeadError> {
        let tag = self.with_message_key(nonce, |key, nonce| {
            key.seal_in_place_separate_tag(nonce, Aad::from(aad), buf)
        })?;
        tag.as_ref().try_into().map_err(|_| AeadError)
    }

    /// Checks `tag` and decrypts `buf` in place.
    ///
    /// # Errors
    /// [`AeadError`] if the tag does not authenticate `buf` and `aad` under
    /// this key and nonce; `buf` then holds no plaintext.
    pub fn decrypt_in_place_detached(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadError> {
        self.with_message_key(nonce, |key, nonce| {
            key.open_in_place_separate_tag(nonce, Aad::from(aad), Tag::from(*tag), buf, 0..).map(|_| ())
        })
    }
}

impl fmt::Debug for XChaCha20Poly1305 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("XChaCha20Poly1305(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// draft-irtf-cfrg-xchacha-03, appendix A.3.1.
    #[test]
    fn known_answer_draft_irtf_cfrg_xchacha_a_3_1() {
        let plaintext = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let aad = hex("50515253c0c1c2c3c4c5c6c7");
        let key: [u8; 32] =
            hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f").try_into().unwrap();
        let nonce: [u8; 24] = hex("404142434445464748494a4b4c4d4e4f5051525354555657").try_into().unwrap();
        let expected_ct = hex(concat!(
            "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb",
            "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452",
            "2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9",
            "21f9664c97637da9768812f615c68b13b52e"
        ));
        let expected_tag = hex("c0875924c1c7987947deafd8780acf49");

        let aead = XChaCha20Poly1305::new(&key);
        let mut buf = plaintext.to_vec();
        let tag = aead.encrypt_in_place_detached(&nonce, &aad, &mut buf).unwrap();
        assert_eq!(buf, expected_ct);
        assert_eq!(tag.to_vec(), expected_tag);

        aead.decrypt_in_place_detached(&nonce, &aad, &mut buf, &tag).unwrap();
        assert_eq!(buf, plaintext);
    }

    #[test]
    fn debug_does_not_leak_key() {
        let shown = format!("{:?}", XChaCha20Poly1305::new(&[0x5a; 32]));
        assert!(!shown.contains("5a") && !shown.contains("90"), "{shown}");
    }
}
