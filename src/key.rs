//! Master keys: 32 secret bytes that never leak through `Debug`, equality or drop.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{KeyError, RandomError};
use crate::random;

/// Length of a master key in bytes.
pub const KEY_LEN: usize = 32;

/// A 256-bit master key.
///
/// The bytes are private, wiped from memory when the key is dropped, compared
/// in constant time, and never printed: `Debug` shows `MasterKey(<redacted>)`.
/// New keys come only from the operating system's random source.
///
/// ```
/// use sealed_session::MasterKey;
///
/// let key = MasterKey::generate()?;
/// let text = key.to_base64();
/// assert_eq!(MasterKey::from_base64(&text)?, key);
/// assert_eq!(format!("{key:?}"), "MasterKey(<redacted>)");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
// On the heap, so that moving a key (into a `Vec` that grows, a sort)
// moves a pointer and leaves no copy of the bytes behind.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey(Box<[u8; KEY_LEN]>);

impl MasterKey {
    /// Generates a new key from the operating system's random source.
    ///
    /// # Errors
    /// [`RandomError`] if the operating system cannot provide randomness.
    pub fn generate() -> Result<Self, RandomError> {
        let mut key = Self(Box::new([0u8; KEY_LEN]));
        random::os_fill(key.0.as_mut_slice())?;
        Ok(key)
    }

    /// Decodes a key from unpadded base64url text, the form keyring files use.
    ///
    /// # Errors
    /// [`KeyError::Encoding`] for text that is not canonical unpadded
    /// base64url, [`KeyError::Length`] if it does not decode to 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        // A 32-byte key is 43 characters; refuse anything far off before decoding.
        if text.len() > 4 * KEY_LEN {
            return Err(KeyError::Length(text.len() * 3 / 4));
        }
        // Decoded into a buffer of its own, wiped whatever the outcome (a
        // decoding `Vec` is freed unwiped on an error).
        let mut buffer = Zeroizing::new([0u8; 3 * KEY_LEN]);
        let len =
            URL_SAFE_NO_PAD.decode_slice(text, buffer.as_mut_slice()).map_err(|_| KeyError::Encoding)?;
        Self::from_slice(buffer.get(..len).ok_or(KeyError::Encoding)?)
    }

    /// Builds a key from raw bytes.
    ///
    /// # Errors
    /// [`KeyError::Length`] unless `bytes` has exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        let mut key = Self(Box::new([0u8; KEY_LEN]));
        if bytes.len() != KEY_LEN {
            return Err(KeyError::Length(bytes.len()));
        }
        key.0.copy_from_slice(bytes);
        Ok(key)
    }

    /// Encodes the key as unpadded base64url. The text is a secret: it is
    /// wiped when dropped.
    #[must_use]
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(URL_SAFE_NO_PAD.encode(self.0.as_slice()))
    }

    pub(crate) fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl ConstantTimeEq for MasterKey {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.0.as_slice().ct_eq(other.0.as_slice())
    }
}

impl PartialEq for MasterKey {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for MasterKey {}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_does_not_leak_key() {
        let key = MasterKey::from_slice(&[0xab; 32]).unwrap();
        let shown = format!("{key:?} {key:#?}");
        assert!(!shown.contains("ab") && !shown.contains("171"), "{shown}");
        assert!(!shown.contains(key.to_base64().as_str()));
    }

    #[test]
    fn generated_keys_differ() {
        assert_ne!(MasterKey::generate().unwrap(), MasterKey::generate().unwrap());
    }

    #[test]
    fn base64_is_strict() {
        let text = MasterKey::from_slice(&[7; 32]).unwrap().to_base64();
        assert!(MasterKey::from_base64(&text).is_ok());
        assert_eq!(MasterKey::from_base64(&format!("{}=", *text)), Err(KeyError::Encoding));
        assert_eq!(MasterKey::from_base64(&format!(" {}", *text)), Err(KeyError::Encoding));
        assert_eq!(MasterKey::from_base64("AAAA"), Err(KeyError::Length(3)));
        // Non-zero trailing bits in the last character.
        let mut bad = text.to_string();
        bad.pop();
        bad.push('F');
        assert_eq!(MasterKey::from_base64(&bad), Err(KeyError::Encoding));
    }

    #[test]
    fn equality_compares_every_byte() {
        let a = MasterKey::from_slice(&[1; 32]).unwrap();
        for index in 0..32 {
            let mut other = [1; 32];
            other[index] = 2;
            assert_ne!(a, MasterKey::from_slice(&other).unwrap(), "byte {index}");
        }
        assert_eq!(a, a.clone());
    }
}
