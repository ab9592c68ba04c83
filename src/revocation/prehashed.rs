//! A hasher for keys that are already uniform hashes, so that the maps of
//! the memory store and the read cache do not pay for SipHash again on
//! every check.

use std::hash::{BuildHasher, Hasher};

/// Builds [`PreHashedHasher`]s. Only for keys an attacker cannot choose:
/// keyed SipHash outputs (the memory store's users) and session IDs, 128
/// random bits drawn by the server (only IDs of authenticated sessions
/// reach a cache).
#[derive(Default, Clone, Copy)]
pub(super) struct PreHashed;

impl BuildHasher for PreHashed {
    type Hasher = PreHashedHasher;
    fn build_hasher(&self) -> PreHashedHasher {
        PreHashedHasher(0)
    }
}

/// Takes a `u64` key as its hash, and folds the bytes of any other key
/// into one `u64` (a `[u8; 16]` session ID's halves); lengths are ignored.
pub(super) struct PreHashedHasher(u64);

impl Hasher for PreHashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word.get_mut(..chunk.len()).unwrap_or_default().copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(word);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn write_usize(&mut self, _: usize) {}
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher as _;

    use super::PreHashed;

    #[test]
    fn a_u64_key_is_its_own_hash_and_an_id_folds_its_halves() {
        assert_eq!(PreHashed.hash_one(0x0123_4567_89ab_cdef_u64), 0x0123_4567_89ab_cdef);
        let mut id = [0u8; 16];
        id[0] = 1;
        id[8] = 3;
        assert_eq!(PreHashed.hash_one(id), 2);
    }
}
