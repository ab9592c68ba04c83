//! Hot rotation: a keyring replaced while other threads seal and open.
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use sealed_session::{KeySpec, KeyState, Keyring, MasterKey, Sealer, Session, SharedKeyring};

fn keyring(primary: u32, active: u32) -> Keyring {
    let spec = |id: u32, state| KeySpec::new(id, state, MasterKey::from_slice(&[id as u8; 32]).unwrap());
    Keyring::new([spec(primary, KeyState::Primary), spec(active, KeyState::Active)]).unwrap()
}

#[test]
fn sealing_and_opening_never_fail_while_the_keyring_is_swapped() {
    let shared = SharedKeyring::new(keyring(1, 2));
    let sealer = Sealer::builder(shared.clone()).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let seen_keys = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);

    let workers: Vec<_> = (0..2)
        .map(|n| {
            let (sealer, stop, done, seen_keys) =
                (sealer.clone(), stop.clone(), done.clone(), seen_keys.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) || i < 2_000 {
                    let session = Session::new((n, i));
                    let token = sealer.seal(&session).unwrap();
                    // Every keyring in the rotation knows keys 1 and 2, so every
                    // token opens whichever keyring is current.
                    let opened = sealer.open::<(i32, u64)>(&token).unwrap();
                    assert_eq!(*opened.session().data(), (n, i));
                    seen_keys[opened.key_id() as usize].fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
                done.fetch_add(i, Ordering::Relaxed);
            })
        })
        .collect();

    for round in 0..2_000u32 {
        let (primary, active) = if round % 2 == 0 { (2, 1) } else { (1, 2) };
        shared.replace(keyring(primary, active));
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().unwrap();
    }
    assert!(done.load(Ordering::Relaxed) >= 4_000);
    // Both keys sealed tokens during the run: the swaps were seen by the workers.
    assert!(seen_keys[1].load(Ordering::Relaxed) > 0 && seen_keys[2].load(Ordering::Relaxed) > 0);
}
