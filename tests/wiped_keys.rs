//! No copy of a master key is left in memory the program gives back: every
//! block freed while keyrings are parsed, built, grown and dropped is
//! searched for the keys' bytes before the allocator gets it.
// Tests may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
#![allow(unsafe_code)] // the searching allocator below; the library has none.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use base64::Engine as _;
use sealed_session::{KeySpec, KeyState, Keyring, MasterKey};

/// The byte every key of the test is made of: key `i` is 32 bytes of
/// `MARK + i`. No other data of the test repeats such a byte 16 times.
const MARK: u8 = 0xA0;
const KEYS: u8 = 9;

/// Searches each block freed, while `SEARCHING`, for 16 bytes in a row of
/// one key's byte; counts those found.
struct Searching;

static SEARCHING: AtomicBool = AtomicBool::new(false);
static FOUND: AtomicUsize = AtomicUsize::new(0);

fn search(block: &[u8]) {
    let mut run = (0u8, 0usize);
    for &byte in block {
        run = if byte == run.0 { (byte, run.1 + 1) } else { (byte, 1) };
        if run.1 == 16 && (MARK..MARK + KEYS).contains(&byte) {
            FOUND.fetch_add(1, Ordering::Relaxed);
            return;
        }
    }
}

// SAFETY: forwards to the system allocator; reads a block only before it
// is given back, within its layout.
unsafe impl GlobalAlloc for Searching {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same layout as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if SEARCHING.load(Ordering::Relaxed) {
            // SAFETY: `ptr` is a live block of `layout.size()` bytes until
            // the call below.
            search(unsafe { std::slice::from_raw_parts(ptr, layout.size()) });
        }
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A block that moves is freed: allocate, copy and free it here, so
        // that the old one is searched too.
        // SAFETY: a valid layout (the caller's size rules hold).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as `alloc`.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks hold at least the smaller size.
            unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
            // SAFETY: as `dealloc`.
            unsafe { self.dealloc(ptr, layout) };
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Searching = Searching;

/// One test at a time: the allocator's state is the whole binary's.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn key_text(i: u8) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([MARK + i; 32])
}

/// The blocks `work` frees that hold a key's bytes.
fn copies_left_by(work: impl FnOnce()) -> usize {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    FOUND.store(0, Ordering::Relaxed);
    SEARCHING.store(true, Ordering::Relaxed);
    work();
    SEARCHING.store(false, Ordering::Relaxed);
    FOUND.load(Ordering::Relaxed)
}

#[test]
fn keys_from_the_environment_leave_no_copy_behind() {
    // More keys than the first allocation of a vector holds: it grows.
    let value: Vec<String> = (0..KEYS)
        .map(|i| {
            let state = if i == 0 { "primary" } else { "active" };
            format!("{}:{state}:{}", u32::from(i) + 1, key_text(i))
        })
        .collect();
    let value = value.join(",");
    let copies = copies_left_by(|| {
        let keyring = Keyring::from_env_value(&value).unwrap();
        assert_eq!(keyring.keys().count(), usize::from(KEYS));
        drop(keyring);
    });
    assert_eq!(copies, 0, "blocks freed with a key's bytes in them");
}

#[test]
fn keys_built_one_by_one_and_sorted_leave_no_copy_behind() {
    let copies = copies_left_by(|| {
        let keys = (0..KEYS).rev().map(|i| {
            let state = if i == 0 { KeyState::Primary } else { KeyState::Active };
            KeySpec::new(u32::from(i) + 1, state, MasterKey::from_base64(&key_text(i)).unwrap())
        });
        // A filter hides the count: the vector grows as it goes.
        let keyring = Keyring::new(keys.filter(|_| true)).unwrap();
        drop(keyring);
    });
    assert_eq!(copies, 0, "blocks freed with a key's bytes in them");
}

#[test]
fn a_keyring_file_read_and_written_leaves_no_copy_behind() {
    let keys = (0..KEYS).map(|i| {
        let state = if i == 0 { KeyState::Primary } else { KeyState::Active };
        KeySpec::new(u32::from(i) + 1, state, MasterKey::from_base64(&key_text(i)).unwrap())
    });
    let text = Keyring::new(keys).unwrap().to_toml_string();
    let copies = copies_left_by(|| {
        let keyring = Keyring::from_toml_str(&text).unwrap();
        drop(keyring.to_toml_string());
        drop(keyring);
    });
    assert_eq!(copies, 0, "blocks freed with a key's bytes in them");
}

#[test]
fn a_key_that_does_not_decode_leaves_no_copy_behind() {
    // A bad last character: the rest decodes to the key's bytes first.
    let mut text = key_text(3);
    text.pop();
    text.push('!');
    let copies = copies_left_by(|| assert!(MasterKey::from_base64(&text).is_err()));
    assert_eq!(copies, 0, "blocks freed with a key's bytes in them");
}

/// The search finds what it looks for (else the tests above prove nothing).
#[test]
fn the_search_finds_a_copy_left_behind() {
    let copies = copies_left_by(|| drop(vec![MARK + 2; 32]));
    assert_eq!(copies, 1);
}
