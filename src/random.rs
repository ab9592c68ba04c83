//! Randomness: keys from the OS, nonces and session IDs from a per-thread
//! ChaCha20 generator seeded from the OS.
//!
//! One `getrandom` system call costs about as much as sealing a small
//! session, so nonces and session IDs come from a ChaCha20 keystream kept per
//! thread and seeded with 32 bytes from the operating system:
//!
//! * **Threads** never share a generator: each seeds its own from the OS.
//! * **`fork`** copies a process's memory, generator state included. A
//!   `pthread_atfork` child handler (from the `forkguard` crate) counts forks;
//!   a generator that sees the count change since it was seeded reseeds from
//!   the OS before drawing, so a child never repeats its parent's stream. The
//!   check is one relaxed atomic load per draw. Where the handler cannot be
//!   registered, the generator compares process IDs instead (one `getpid`
//!   system call per draw).
//! * It also reseeds after every [`RESEED_AFTER`] bytes.
//!
//! Collisions are then as unlikely as for independent random values: 2^-192
//! per pair of nonces, 2^-128 per pair of session IDs.

use std::cell::RefCell;

use chacha20::rand_core::{Rng, SeedableRng};
use chacha20::ChaCha20Rng;
use zeroize::Zeroizing;

use crate::error::RandomError;

/// Bytes drawn from one seed before the generator reseeds from the OS.
pub(crate) const RESEED_AFTER: u64 = 1 << 20;

/// Fills `dest` from the operating system's random source.
pub(crate) fn os_fill(dest: &mut [u8]) -> Result<(), RandomError> {
    #[cfg(test)]
    if tests::FAIL_NEXT_OS_FILL.with(|fail| fail.replace(false)) {
        return Err(RandomError(getrandom::Error::UNSUPPORTED));
    }
    getrandom::fill(dest).map_err(RandomError)
}

/// Tells whether the process forked since the detector was made.
enum ForkDetector {
    #[cfg(unix)]
    Atfork(forkguard::atfork::Guard),
    Pid(forkguard::pid::Guard),
}

impl ForkDetector {
    fn new() -> Self {
        #[cfg(unix)]
        if let Ok(guard) = forkguard::atfork::Guard::try_new() {
            return Self::Atfork(guard);
        }
        match forkguard::pid::Guard::try_new() {
            Ok(guard) => Self::Pid(guard),
            Err(never) => match never {},
        }
    }

    fn forked(&mut self) -> bool {
        match self {
            #[cfg(unix)]
            Self::Atfork(guard) => guard.detected_fork(),
            Self::Pid(guard) => guard.detected_fork(),
        }
    }
}

struct ThreadRng {
    rng: ChaCha20Rng,
    fork: ForkDetector,
    drawn: u64,
}

thread_local! {
    static THREAD_RNG: RefCell<Option<ThreadRng>> = const { RefCell::new(None) };
}

impl ThreadRng {
    /// Names the generator's state: it must wipe itself on drop (a thread's
    /// exit) or this fails to compile. Never called.
    #[allow(dead_code)]
    fn secrets_wipe_themselves(&self) {
        crate::wipe::wiped_on_drop(&self.rng);
    }
}

fn seeded() -> Result<ThreadRng, RandomError> {
    // The detector first: a fork after this point is seen, whenever it happens.
    let fork = ForkDetector::new();
    let mut seed = Zeroizing::new([0u8; 32]);
    os_fill(seed.as_mut())?;
    Ok(ThreadRng { rng: ChaCha20Rng::from_seed(*seed), fork, drawn: 0 })
}

/// Fills `dest` with bytes for nonces and session IDs.
pub(crate) fn fill(dest: &mut [u8]) -> Result<(), RandomError> {
    THREAD_RNG.with(|cell| {
        let mut slot = cell.borrow_mut();
        let fresh = match slot.as_mut() {
            Some(state) => state.fork.forked() || state.drawn >= RESEED_AFTER,
            None => true,
        };
        if fresh {
            // The old state goes first (wiped): if the OS source fails now,
            // the next call must not draw from it. After a fork it is the
            // parent's stream, and the detector reports a fork only once.
            *slot = None;
            *slot = Some(seeded()?);
        }
        // Always `Some` here; the OS fallback only keeps this free of panics.
        let Some(state) = slot.as_mut() else { return os_fill(dest) };
        state.rng.fill_bytes(dest);
        state.drawn = state.drawn.saturating_add(dest.len() as u64);
        Ok(())
    })
}

/// Returns an array of random bytes from [`fill`].
pub(crate) fn array<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut out = [0u8; N];
    fill(&mut out)?;
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    thread_local! {
        /// Makes this thread's next read of the OS source fail.
        pub(crate) static FAIL_NEXT_OS_FILL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    /// A reseed (after a fork, or the budget) that fails leaves nothing to
    /// draw from: the next call seeds again instead of continuing the old
    /// stream (after a fork, the parent's).
    #[test]
    fn a_failed_reseed_never_continues_the_old_stream() {
        let _ = array::<16>().unwrap();
        THREAD_RNG.with(|cell| cell.borrow_mut().as_mut().unwrap().drawn = RESEED_AFTER);
        FAIL_NEXT_OS_FILL.with(|fail| fail.set(true));
        assert!(array::<16>().is_err(), "the reseed failed");
        THREAD_RNG.with(|cell| assert!(cell.borrow().is_none(), "the old state is kept"));
        let _ = array::<16>().unwrap();
        THREAD_RNG.with(|cell| assert_eq!(cell.borrow().as_ref().unwrap().drawn, 16, "seeded anew"));
    }

    #[test]
    fn reseeds_after_the_budget() {
        let _ = array::<16>().unwrap();
        THREAD_RNG.with(|cell| cell.borrow_mut().as_mut().unwrap().drawn = RESEED_AFTER);
        let _ = array::<16>().unwrap();
        THREAD_RNG.with(|cell| assert_eq!(cell.borrow().as_ref().unwrap().drawn, 16));
    }

    #[test]
    fn threads_draw_different_streams() {
        let a = std::thread::spawn(|| array::<32>().unwrap()).join().unwrap();
        let b = std::thread::spawn(|| array::<32>().unwrap()).join().unwrap();
        assert_ne!(a, b);
    }
}
