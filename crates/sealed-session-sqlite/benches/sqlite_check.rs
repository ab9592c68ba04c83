//! The SQLite revocation check on top of `open` (answered from the read
//! cache), a check that misses the cache (a new session ID each time: a
//! read of the file), and a revocation (a committed, fsynced write), on a
//! file that holds 10,000 revoked users.
//!
//! ```text
//! cargo bench -p sealed-session-sqlite
//! ```
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use sealed_session::{Keyring, RevocationStore, Sealer, Verifier};
use sealed_session_sqlite::SqliteStore;
use sealed_session_testkit::bench;

fn check(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let rt = bench::runtime();
    let sealer = Sealer::builder(Keyring::generate().unwrap()).build().unwrap();
    let store = rt.block_on(SqliteStore::open_or_create(dir.path().join("bench.sqlite3"))).unwrap();
    rt.block_on(async {
        for i in 0..10_000 {
            store.revoke_user(&format!("other-{i}")).await.unwrap();
        }
    });
    std::thread::sleep(Duration::from_secs(1)); // sessions must be issued after the store's generation second
    bench::check(c, "sqlite", &rt, &Verifier::new(sealer, store), None);
}

criterion_group! {
    name = benches;
    config = bench::criterion();
    targets = check
}
criterion_main!(benches);
