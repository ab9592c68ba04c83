//! Token formats v1 and v2: framing and envelope (docs/FORMAT.md).

use std::sync::LazyLock;

use base64::engine::general_purpose::NO_PAD;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
use base64::engine::Simd;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::aead::{NONCE_LEN, TAG_LEN};
use crate::error::OpenError;

/// The format version this release seals by default.
pub const VERSION: u8 = 2;
/// The first format version, still opened (and sealed on request, for a
/// rolling upgrade: [`SealerBuilder::token_version`](crate::SealerBuilder::token_version)).
pub const VERSION_1: u8 = 1;

/// Version 2 flag: sealed under the remember-me profile.
pub(crate) const FLAG_REMEMBERED: u8 = 0x01;
/// Version 2 flag: the data is `Versioned`.
pub(crate) const FLAG_VERSIONED: u8 = 0x02;
/// Version 2 flag: the session is device-bound (DBSC): it opens only until
/// its last proof of possession plus the sealer's device-bound lifetime.
pub(crate) const FLAG_DEVICE_BOUND: u8 = 0x04;
/// Every flag version 2 defines; a token with any other bit set is malformed.
const KNOWN_FLAGS: u8 = FLAG_REMEMBERED | FLAG_VERSIONED | FLAG_DEVICE_BOUND;

/// The bytes before the nonce: version ‖ key ID (v1), version ‖ flags ‖
/// key ID (v2).
pub(crate) const fn prefix_len(version: u8) -> usize {
    if version == VERSION_1 {
        1 + 4
    } else {
        1 + 1 + 4
    }
}

/// The longest prefix.
const MAX_PREFIX_LEN: usize = prefix_len(VERSION);
/// The longest purpose, so that associated data always fits on the stack.
pub const MAX_PURPOSE_LEN: usize = 123;

/// Unpadded base64url with canonical decoding (no padding, no unused bits
/// set, no characters outside the alphabet), using AVX2 or NEON where the CPU
/// has it. Its strictness is tested against the portable engine.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) static BASE64: LazyLock<Simd> = LazyLock::new(|| Simd::url_safe(NO_PAD));
/// Unpadded base64url with canonical decoding (the portable engine).
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub(crate) static BASE64: LazyLock<base64::engine::GeneralPurpose> =
    LazyLock::new(|| base64::engine::GeneralPurpose::new(&base64::alphabet::URL_SAFE, NO_PAD));

/// A token's text, decoded but not authenticated: nothing in it is trusted
/// except its length. Only [`Sealer::open`](crate::Sealer::open) turns it
/// into a session.
///
/// ```
/// use sealed_session::{OpenError, UntrustedToken};
///
/// assert_eq!(UntrustedToken::decode("not a token!", 4096).unwrap_err(), OpenError::Malformed);
/// ```
#[derive(Clone)]
pub struct UntrustedToken {
    bytes: Vec<u8>,
}

impl UntrustedToken {
    /// Decodes a token's text, checking steps 1 to 4 of the validation order:
    /// length, canonical base64url, minimum size, version (and for version 2
    /// its flags).
    ///
    /// # Errors
    /// [`OpenError::TooLarge`], [`OpenError::Malformed`] or
    /// [`OpenError::UnsupportedVersion`].
    pub fn decode(text: &str, max_len: usize) -> Result<Self, OpenError> {
        if text.len() > max_len {
            return Err(OpenError::TooLarge { len: text.len(), max: max_len });
        }
        let bytes = BASE64.decode(text).map_err(|_| OpenError::Malformed)?;
        // Shorter than the shortest header and tag of any version.
        if bytes.len() < prefix_len(VERSION_1) + NONCE_LEN + TAG_LEN {
            return Err(OpenError::Malformed);
        }
        let version = bytes.first().copied().unwrap_or_default();
        if version != VERSION && version != VERSION_1 {
            return Err(OpenError::UnsupportedVersion(version));
        }
        if bytes.len() < prefix_len(version) + NONCE_LEN + TAG_LEN {
            return Err(OpenError::Malformed);
        }
        let token = Self { bytes };
        if token.flags().is_some_and(|flags| flags & !KNOWN_FLAGS != 0) {
            return Err(OpenError::Malformed);
        }
        Ok(token)
    }

    /// The format version (1 or 2).
    #[must_use]
    pub fn version(&self) -> u8 {
        self.bytes.first().copied().unwrap_or_default()
    }

    /// A version 2 token's flags (not yet authenticated); `None` for
    /// version 1, which has none.
    pub(crate) fn flags(&self) -> Option<u8> {
        (self.version() == VERSION).then(|| self.bytes.get(1).copied().unwrap_or_default())
    }

    /// The key ID the token names (not yet authenticated).
    #[must_use]
    pub fn key_id(&self) -> u32 {
        let mut id = [0u8; 4];
        let end = prefix_len(self.version());
        if let Some(bytes) = self.bytes.get(end - 4..end) {
            id.copy_from_slice(bytes);
        }
        u32::from_be_bytes(id)
    }

    /// Splits into prefix, nonce, ciphertext (mutable, for decryption in
    /// place) and tag.
    #[allow(clippy::type_complexity)]
    pub(crate) fn parts_mut(&mut self) -> Option<(&[u8], &[u8; NONCE_LEN], &mut [u8], &[u8; TAG_LEN])> {
        let prefix_len = prefix_len(self.version());
        let (header, rest) = self.bytes.split_at_mut_checked(prefix_len + NONCE_LEN)?;
        let tag_at = rest.len().checked_sub(TAG_LEN)?;
        let (ciphertext, tag) = rest.split_at_mut(tag_at);
        let (prefix, nonce) = header.split_at_checked(prefix_len)?;
        Some((prefix, nonce.try_into().ok()?, ciphertext, (&*tag).try_into().ok()?))
    }
}

impl std::fmt::Debug for UntrustedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UntrustedToken")
            .field("version", &self.version())
            .field("key_id", &self.key_id())
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// Associated data: the token's prefix (version, flags, key ID) ‖ purpose,
/// on the stack.
pub(crate) struct AssociatedData {
    bytes: [u8; MAX_PREFIX_LEN + MAX_PURPOSE_LEN],
    len: usize,
}

impl AssociatedData {
    /// `None` if the prefix or the purpose is too long: a purpose longer
    /// than [`MAX_PURPOSE_LEN`] is refused when a sealer is built, and never
    /// opens (a version 1 purpose with its suffixes included: a version 2
    /// sealer's 114-byte purpose with `+versioned` is 124 bytes).
    pub(crate) fn new(prefix: &[u8], purpose: &[u8]) -> Option<Self> {
        if purpose.len() > MAX_PURPOSE_LEN {
            return None;
        }
        let mut bytes = [0u8; MAX_PREFIX_LEN + MAX_PURPOSE_LEN];
        let len = prefix.len().checked_add(purpose.len())?;
        bytes.get_mut(..prefix.len())?.copy_from_slice(prefix);
        bytes.get_mut(prefix.len()..len)?.copy_from_slice(purpose);
        Some(Self { bytes, len })
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

/// The envelope's fixed fields (docs/FORMAT.md, section 4, fields 1–6).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Head<U> {
    pub(crate) issued_at: u64,
    pub(crate) expires_at: u64,
    pub(crate) last_seen: u64,
    pub(crate) session_id: [u8; 16],
    pub(crate) user_id: Option<U>,
    pub(crate) epoch: u64,
}

/// The session ID as [`SessionId`](crate::SessionId) shows it (its first
/// four hex digits), and no user ID: the head is inside the sealed token.
impl<U> std::fmt::Debug for Head<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Head")
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .field("last_seen", &self.last_seen)
            .field("session_id", &crate::SessionId::from_bytes(self.session_id))
            .field("user_id", &self.user_id.as_ref().map(|_| "…"))
            .field("epoch", &self.epoch)
            .finish()
    }
}

/// Encodes head and data after the bytes already in `out`.
pub(crate) fn encode_envelope<U: Serialize, T: Serialize>(
    head: &Head<U>,
    data: &T,
    out: Vec<u8>,
) -> Result<Vec<u8>, postcard::Error> {
    let out = postcard::to_extend(head, out)?;
    postcard::to_extend(data, out)
}

/// Why an envelope did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EnvelopeError {
    /// Fields 1–6 did not decode.
    Head,
    /// Field 7 is not of the requested type, or bytes are left over.
    Data,
}

/// Decodes an envelope, requiring that every byte is used.
pub(crate) fn decode_envelope<T: serde::de::DeserializeOwned>(
    plaintext: &[u8],
) -> Result<(Head<String>, T), EnvelopeError> {
    decode_envelope_with(plaintext, |rest| match postcard::take_from_bytes::<T>(rest) {
        Ok((data, [])) => Ok(data),
        _ => Err(EnvelopeError::Data),
    })
}

/// Decodes fields 1–6 and hands the bytes of field 7 to `data`. Only the
/// canonical encoding is accepted (postcard alone also takes non-minimal
/// varints), so that decoding then encoding gives back the same bytes.
pub(crate) fn decode_envelope_with<T>(
    plaintext: &[u8],
    data: impl FnOnce(&[u8]) -> Result<T, EnvelopeError>,
) -> Result<(Head<String>, T), EnvelopeError> {
    let (head, rest) =
        postcard::take_from_bytes::<Head<String>>(plaintext).map_err(|_| EnvelopeError::Head)?;
    // A non-minimal varint is longer than the minimal one: comparing lengths
    // finds it without encoding again.
    if plaintext.len() - rest.len() != head.encoded_len() {
        return Err(EnvelopeError::Head);
    }
    Ok((head, data(rest)?))
}

/// Bytes in the minimal varint encoding of `n`.
fn varint_len(n: u64) -> usize {
    (64 - n.max(1).leading_zeros() as usize).div_ceil(7)
}

impl Head<String> {
    /// Length of the canonical encoding of fields 1–6.
    fn encoded_len(&self) -> usize {
        let user = self.user_id.as_ref().map_or(0, |u| varint_len(u.len() as u64) + u.len());
        varint_len(self.issued_at)
            + varint_len(self.expires_at)
            + varint_len(self.last_seen)
            + 16
            + 1
            + user
            + varint_len(self.epoch)
    }
}

/// The envelope codec of docs/FORMAT.md, section 4 (feature `hazmat`): for
/// fuzzing and for checking other implementations. Applications never need it.
#[cfg(feature = "hazmat")]
pub mod envelope {
    /// Fields 1–6 of an envelope. Its `Debug` shows the session ID as
    /// [`SessionId`](crate::SessionId)'s does, cut short, and no user ID.
    #[derive(Clone, PartialEq, Eq)]
    pub struct Fields {
        /// Unix seconds.
        pub issued_at: u64,
        /// Unix seconds.
        pub expires_at: u64,
        /// Unix seconds.
        pub last_seen: u64,
        /// The session ID.
        pub session_id: [u8; 16],
        /// The user, if any.
        pub user_id: Option<String>,
        /// The revocation epoch.
        pub epoch: u64,
    }

    impl Fields {
        fn head(&self) -> super::Head<&str> {
            super::Head {
                issued_at: self.issued_at,
                expires_at: self.expires_at,
                last_seen: self.last_seen,
                session_id: self.session_id,
                user_id: self.user_id.as_deref(),
                epoch: self.epoch,
            }
        }
    }

    /// As the envelope's head shows itself: no user ID either.
    impl std::fmt::Debug for Fields {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            self.head().fmt(f)
        }
    }

    /// Decodes fields 1–6 (canonical encoding only) and returns them with the
    /// bytes of field 7; `None` if they do not decode.
    #[must_use]
    pub fn decode(plaintext: &[u8]) -> Option<(Fields, Vec<u8>)> {
        let (head, data) = super::decode_envelope_with(plaintext, |rest| Ok(rest.to_vec())).ok()?;
        let fields = Fields {
            issued_at: head.issued_at,
            expires_at: head.expires_at,
            last_seen: head.last_seen,
            session_id: head.session_id,
            user_id: head.user_id,
            epoch: head.epoch,
        };
        Some((fields, data))
    }

    /// Encodes fields 1–6 followed by `data` (already-encoded field 7).
    #[must_use]
    pub fn encode(fields: &Fields, data: &[u8]) -> Vec<u8> {
        let mut out = postcard::to_extend(&fields.head(), Vec::new()).unwrap_or_default();
        out.extend_from_slice(data);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A head with every field zero, for tests to fill in with `..zero_head()`.
    fn zero_head() -> Head<&'static str> {
        Head { issued_at: 0, expires_at: 0, last_seen: 0, session_id: [0; 16], user_id: None, epoch: 0 }
    }

    /// `UntrustedToken` has no `==`: one would compare a token's bytes (a
    /// bearer token, or after opening its plaintext) in variable time. The
    /// call below names one of two methods only while it has none, and is
    /// ambiguous, so fails to compile, once it has.
    #[test]
    fn an_untrusted_token_cannot_be_compared() {
        trait EqOrNot<Which> {
            fn which() {}
        }
        impl<T: ?Sized> EqOrNot<()> for T {}
        impl<T: ?Sized + PartialEq> EqOrNot<u8> for T {}
        <UntrustedToken as EqOrNot<_>>::which();
    }

    /// A head's `Debug` shows four hex digits of the session ID, as
    /// `SessionId`'s does, and no user ID.
    #[test]
    fn a_heads_debug_shows_neither_the_session_id_nor_the_user() {
        let head = Head { session_id: [0xab; 16], user_id: Some("alice@example.com"), ..zero_head() };
        let shown = format!("{head:?}");
        assert!(shown.contains("SessionId(abab…)") && !shown.contains("ababab"), "{shown}");
        assert!(!shown.contains("alice") && !shown.contains("171"), "{shown}");
    }

    /// Step 3 of the validation order: each version's minimum, its header,
    /// nonce and tag (45 bytes for version 1, 46 for version 2, whose
    /// header has the flags byte too), is checked when the text is decoded.
    #[test]
    fn a_token_shorter_than_its_versions_header_nonce_and_tag_is_malformed() {
        use base64::Engine as _;
        let token = |version: u8, len: usize| {
            let mut bytes = vec![0u8; len];
            bytes[0] = version;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        };
        assert!(UntrustedToken::decode(&token(1, 45), 4096).is_ok());
        assert!(matches!(UntrustedToken::decode(&token(1, 44), 4096), Err(OpenError::Malformed)));
        assert!(UntrustedToken::decode(&token(2, 46), 4096).is_ok());
        assert!(matches!(UntrustedToken::decode(&token(2, 45), 4096), Err(OpenError::Malformed)));
    }

    #[test]
    fn a_purpose_longer_than_the_limit_makes_no_associated_data() {
        // The shortest prefix (version 1): room is left in the buffer, but
        // the purpose is too long all the same.
        let prefix = [1, 0, 0, 0, 1];
        let longest = [b'a'; MAX_PURPOSE_LEN];
        let data = AssociatedData::new(&prefix, &longest).unwrap();
        assert_eq!(data.as_bytes().len(), prefix.len() + MAX_PURPOSE_LEN);
        assert!(AssociatedData::new(&prefix, &[b'a'; MAX_PURPOSE_LEN + 1]).is_none());
    }

    #[test]
    fn envelope_round_trips_and_rejects_trailing_bytes() {
        let head = Head {
            issued_at: 1,
            expires_at: 300,
            last_seen: 2,
            session_id: [9; 16],
            user_id: Some("ü"),
            epoch: 7,
        };
        let bytes = encode_envelope(&head, &("x", 5u16), Vec::new()).unwrap();
        let (decoded, data): (Head<String>, (String, u16)) = decode_envelope(&bytes).unwrap();
        assert_eq!(decoded.user_id.as_deref(), Some("ü"));
        assert_eq!((decoded.issued_at, decoded.expires_at, decoded.epoch), (1, 300, 7));
        assert_eq!(data, ("x".to_string(), 5));

        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode_envelope::<(String, u16)>(&longer).unwrap_err(), EnvelopeError::Data);
        assert_eq!(decode_envelope::<(String, u16)>(&bytes[..3]).unwrap_err(), EnvelopeError::Head);
    }

    #[test]
    fn non_minimal_varints_are_refused() {
        let head = Head { issued_at: 5, expires_at: 6, last_seen: 5, session_id: [1; 16], ..zero_head() };
        let canonical = encode_envelope(&head, &(), Vec::new()).unwrap();
        assert!(decode_envelope::<()>(&canonical).is_ok());
        // issued_at = 5 written as two bytes: 0x85 0x00.
        let mut padded = vec![0x85, 0x00];
        padded.extend_from_slice(&canonical[1..]);
        assert_eq!(decode_envelope::<()>(&padded).unwrap_err(), EnvelopeError::Head);
        for n in [0u64, 1, 127, 128, 16_383, 16_384, u64::MAX] {
            assert_eq!(varint_len(n), postcard::to_stdvec(&n).unwrap().len(), "{n}");
        }
    }

    #[test]
    fn envelope_layout_matches_format_md() {
        // FORMAT.md section 4, written out by hand; last_seen is 0.
        let head = Head {
            issued_at: 300,
            expires_at: 1,
            session_id: [0xaa; 16],
            user_id: Some("bo"),
            epoch: 128,
            ..zero_head()
        };
        let bytes = encode_envelope(&head, &(), Vec::new()).unwrap();
        let mut expected = vec![0xac, 0x02, 0x01, 0x00];
        expected.extend([0xaa; 16]);
        expected.extend([0x01, 0x02, b'b', b'o', 0x80, 0x01]);
        assert_eq!(bytes, expected);
    }
}

#[cfg(test)]
mod base64_tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The SIMD engine accepts and refuses exactly what the portable one does.
        #[test]
        fn simd_decoding_is_as_strict_as_the_portable_engine(text in "[A-Za-z0-9_=+/ -]{0,200}") {
            prop_assert_eq!(BASE64.decode(&text).ok(), URL_SAFE_NO_PAD.decode(&text).ok());
        }

        #[test]
        fn simd_decoding_of_any_text_matches(text in any::<String>(), tail in ".{0,3}") {
            let valid = URL_SAFE_NO_PAD.encode(text.as_bytes());
            for candidate in [text.clone(), format!("{valid}{tail}"), format!("{tail}{valid}")] {
                prop_assert_eq!(BASE64.decode(&candidate).ok(), URL_SAFE_NO_PAD.decode(&candidate).ok());
            }
        }

        #[test]
        fn simd_decoding_of_encoded_bytes_matches(bytes in prop::collection::vec(any::<u8>(), 0..600), cut in 0usize..4) {
            let text = URL_SAFE_NO_PAD.encode(&bytes);
            prop_assert_eq!(BASE64.encode(&bytes), text.clone());
            let shorter = &text[..text.len().saturating_sub(cut)];
            prop_assert_eq!(BASE64.decode(shorter).ok(), URL_SAFE_NO_PAD.decode(shorter).ok());
        }
    }
}
