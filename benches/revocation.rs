//! The revocation check with the in-memory store, on top of `open`, and
//! the memory a revoked user costs.
//!
//! ```text
//! cargo bench --bench revocation
//! ```
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
#![allow(unsafe_code)] // the counting allocator below; the library has none.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};

use criterion::{criterion_group, criterion_main, Criterion};
use sealed_session::{Keyring, MemoryStore, RevocationStore, Sealer, Verifier};

/// Counts live heap bytes, to measure the store's memory.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same layout as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded as received.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn memory_per_revoked_user() {
    const USERS: usize = 1_000_000;
    let before = LIVE.load(Ordering::Relaxed);
    let store = MemoryStore::new();
    for i in 0..USERS {
        let _ = pollster::block_on(store.revoke_user(&format!("user-{i:07}@example.com")));
    }
    let bytes = LIVE.load(Ordering::Relaxed) - before;
    eprintln!(
        "memory store: {} revoked users take {bytes} bytes of heap: {:.1} bytes per revoked user",
        store.revoked_users(),
        bytes as f64 / USERS as f64
    );
}

fn check(c: &mut Criterion) {
    memory_per_revoked_user();

    let sealer = Sealer::builder(Keyring::generate().unwrap()).build().unwrap();
    let store = MemoryStore::new();
    for i in 0..100_000 {
        let _ = pollster::block_on(store.revoke_user(&format!("other-{i}")));
    }
    let verifier = Verifier::new(sealer.clone(), store);
    let session = pollster::block_on(verifier.login("alice", ())).unwrap();
    let token = sealer.seal(&session).unwrap();

    let mut g = c.benchmark_group("revocation/memory");
    g.bench_function("open", |b| b.iter(|| sealer.open::<()>(black_box(&token))));
    g.bench_function("open_and_check", |b| {
        b.iter(|| pollster::block_on(verifier.open::<()>(black_box(&token))))
    });
    g.bench_function("state_only", |b| {
        b.iter(|| {
            pollster::block_on(verifier.store().state(Some(black_box("alice")), black_box(session.id())))
        })
    });
    g.bench_function("executor_overhead", |b| {
        b.iter(|| pollster::block_on(std::future::ready(black_box(1))))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(2))
        .sample_size(30);
    targets = check
}
criterion_main!(benches);
