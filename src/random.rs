//! Randomness: keys from the OS, nonces and session IDs from a per-thread
//! ChaCha20 generator seeded from the OS.
//!
//! One `getrandom` system call costs about 20 times more than sealing a small
//! session, so nonces and session IDs come from a ChaCha20 keystream kept per
//! thread and seeded with 32 bytes from the operating system:
//!
//! * **Threads** never share a generator: each seeds its own from the OS.
//! * **`fork`** copies a process's memory, generator state included. Each
//!   generator remembers the process ID it was seeded in and reseeds from the
//!   OS when the current process ID differs, so a child never repeats its
//!   parent's stream. The cost is one `getpid` call per draw (tens of
//!   nanoseconds; see docs/BENCHMARKS.md).
//! * It also reseeds after every [`RESEED_AFTER`] bytes.
//!
//! Collisions are then as unlikely as for independent random values: 2^-96
//! per pair for 192-bit nonces, 2^-128 per pair for session IDs.

use std::cell::RefCell;

use chacha20::rand_core::{Rng, SeedableRng};
use chacha20::ChaCha20Rng;
use zeroize::Zeroizing;

use crate::error::RandomError;

/// Bytes drawn from one seed before the generator reseeds from the OS.
pub(crate) const RESEED_AFTER: u64 = 1 << 20;

/// Fills `dest` from the operating system's random source.
pub(crate) fn os_fill(dest: &mut [u8]) -> Result<(), RandomError> {
    getrandom::fill(dest).map_err(RandomError)
}

struct ThreadRng {
    rng: ChaCha20Rng,
    pid: u32,
    drawn: u64,
}

thread_local! {
    static THREAD_RNG: RefCell<Option<ThreadRng>> = const { RefCell::new(None) };
}

fn seeded(pid: u32) -> Result<ThreadRng, RandomError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    os_fill(seed.as_mut())?;
    Ok(ThreadRng { rng: ChaCha20Rng::from_seed(*seed), pid, drawn: 0 })
}

/// Fills `dest` with bytes for nonces and session IDs.
pub(crate) fn fill(dest: &mut [u8]) -> Result<(), RandomError> {
    let pid = std::process::id();
    THREAD_RNG.with(|cell| {
        let mut slot = cell.borrow_mut();
        let fresh = match slot.as_ref() {
            Some(state) => state.pid != pid || state.drawn >= RESEED_AFTER,
            None => true,
        };
        if fresh {
            *slot = Some(seeded(pid)?);
        }
        match slot.as_mut() {
            Some(state) => {
                state.rng.fill_bytes(dest);
                state.drawn = state.drawn.saturating_add(dest.len() as u64);
                Ok(())
            }
            // Unreachable: the slot was filled just above.
            None => os_fill(dest),
        }
    })
}

/// Returns an array of random bytes from [`fill`].
pub(crate) fn array<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut out = [0u8; N];
    fill(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reseeds_after_the_budget() {
        let _ = array::<16>().unwrap();
        THREAD_RNG.with(|cell| cell.borrow_mut().as_mut().unwrap().drawn = RESEED_AFTER);
        let _ = array::<16>().unwrap();
        THREAD_RNG.with(|cell| assert_eq!(cell.borrow().as_ref().unwrap().drawn, 16));
    }

    #[test]
    fn reseeds_when_the_process_id_changes() {
        let _ = array::<16>().unwrap();
        // Pretend this state was inherited from a parent process.
        let inherited = THREAD_RNG.with(|cell| {
            let mut slot = cell.borrow_mut();
            let state = slot.as_mut().unwrap();
            state.pid = state.pid.wrapping_add(1);
            ChaCha20Rng::deserialize_state(&state.rng.serialize_state())
        });
        let drawn = array::<32>().unwrap();
        let mut parent = inherited;
        let mut parent_next = [0u8; 32];
        parent.fill_bytes(&mut parent_next);
        assert_ne!(drawn, parent_next, "a child must not continue its parent's stream");
        THREAD_RNG.with(|cell| assert_eq!(cell.borrow().as_ref().unwrap().pid, std::process::id()));
    }

    #[test]
    fn threads_draw_different_streams() {
        let a = std::thread::spawn(|| array::<32>().unwrap()).join().unwrap();
        let b = std::thread::spawn(|| array::<32>().unwrap()).join().unwrap();
        assert_ne!(a, b);
    }
}
