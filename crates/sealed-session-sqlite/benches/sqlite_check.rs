//! The SQLite revocation check on top of `open` (answered from the read
//! cache), a check that misses the cache (a new session ID each time: a
//! read of the file), and a revocation (a committed, fsynced write).
//!
//! ```text
//! cargo bench -p sealed-session-sqlite
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use sealed_session::{Keyring, RevocationStore, Sealer, Session, Verifier};
use sealed_session_sqlite::SqliteStore;

fn check(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let sealer = Sealer::builder(Keyring::generate().unwrap()).build().unwrap();
    let store = rt.block_on(SqliteStore::open_or_create(dir.path().join("bench.sqlite3"))).unwrap();
    rt.block_on(async {
        for i in 0..10_000 {
            store.revoke_user(&format!("other-{i}")).await.unwrap();
        }
    });
    let verifier = Verifier::new(sealer.clone(), store);
    std::thread::sleep(Duration::from_secs(1)); // sessions must be issued after the store's generation second
    let token = sealer.seal(&rt.block_on(verifier.login("alice", ())).unwrap()).unwrap();

    let mut g = c.benchmark_group("revocation/sqlite");
    g.bench_function("open", |b| b.iter(|| sealer.open::<()>(black_box(&token))));
    g.bench_function("open_and_check", |b| {
        b.iter(|| rt.block_on(verifier.open::<()>(black_box(&token))).unwrap())
    });
    g.bench_function("state_cache_miss", |b| {
        b.iter(|| rt.block_on(verifier.store().state(Some("alice"), Session::new(()).id())).unwrap())
    });
    g.bench_function("revoke_user", |b| b.iter(|| rt.block_on(verifier.logout_everywhere("bob")).unwrap()));
    g.bench_function("executor_overhead_block_on", |b| b.iter(|| rt.block_on(async { black_box(1) })));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = check
}
criterion_main!(benches);
