//! The PostgreSQL revocation check with and without the local cache, a
//! revocation, and how fast a revocation reaches a second server. Starts
//! its own PostgreSQL (as the tests do).
//!
//! ```text
//! cargo bench -p sealed-session-postgres
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use sealed_session::{Keyring, RevocationStore, Sealer, SystemClock, Verifier};
use sealed_session_postgres::{PostgresOptions, PostgresStore};
use sealed_session_testkit::postgres::PostgresServer;

async fn connect(url: &str, options: PostgresOptions) -> PostgresStore {
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(4).connect(url).await.unwrap();
    let store = PostgresStore::with_pool(pool, options, SystemClock).await.unwrap();
    assert!(store.wait_until_listening(Duration::from_secs(5)).await);
    store
}

fn propagation(rt: &tokio::runtime::Runtime, url: &str, sealer: &Sealer) {
    const ROUNDS: usize = 300;
    let mut delays: Vec<Duration> = rt.block_on(async {
        let options = PostgresOptions::default().with_prefix("propagation");
        let (a, b) = (connect(url, options.clone()).await, connect(url, options).await);
        let (a, b) = (Verifier::new(sealer.clone(), a), Verifier::new(sealer.clone(), b));
        let mut delays = Vec::with_capacity(ROUNDS);
        for round in 0..ROUNDS {
            let user = format!("propagation-{round}");
            let token = sealer.seal(&b.login(&user, ()).await.unwrap()).unwrap();
            b.open::<()>(&token).await.unwrap(); // cached on B
            let start = Instant::now();
            a.logout_everywhere(&user).await.unwrap();
            while b.open::<()>(&token).await.is_ok() {
                tokio::task::yield_now().await;
            }
            delays.push(start.elapsed());
        }
        delays
    });
    delays.sort();
    let at = |q: f64| delays[((delays.len() as f64 * q) as usize).min(delays.len() - 1)];
    eprintln!(
        "revocation propagation to a second server over loopback, {ROUNDS} rounds: p50 {:?}, p99 {:?}, max {:?} \
         (from the revoking call's start: the upsert, its commit and the NOTIFY)",
        at(0.50),
        at(0.99),
        delays[delays.len() - 1]
    );
}

fn check(c: &mut Criterion) {
    let postgres = PostgresServer::start();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let sealer = Sealer::builder(Keyring::generate().unwrap()).build().unwrap();
    propagation(&rt, &postgres.url(), &sealer);

    let (cached, uncached) = rt.block_on(async {
        let cached = connect(&postgres.url(), PostgresOptions::default()).await;
        let options = PostgresOptions::default().with_cache_ttl(Duration::ZERO);
        let uncached = connect(&postgres.url(), options).await;
        (Verifier::new(sealer.clone(), cached), Verifier::new(sealer.clone(), uncached))
    });
    let session = rt.block_on(cached.login("alice", ())).unwrap();
    let token = sealer.seal(&session).unwrap();

    let _context = rt.enter();
    let mut g = c.benchmark_group("revocation/postgres");
    g.bench_function("open", |b| b.iter(|| sealer.open::<()>(black_box(&token))));
    g.bench_function("open_and_check_cached", |b| {
        b.iter(|| pollster::block_on(cached.open::<()>(black_box(&token))).unwrap())
    });
    g.bench_function("state_cached", |b| {
        b.iter(|| pollster::block_on(cached.store().state(Some("alice"), black_box(session.id()))).unwrap())
    });
    g.bench_function("open_and_check_uncached", |b| {
        b.iter(|| rt.block_on(uncached.open::<()>(black_box(&token))).unwrap())
    });
    g.bench_function("revoke_user", |b| b.iter(|| rt.block_on(cached.logout_everywhere("bob")).unwrap()));
    g.bench_function("executor_overhead_block_on", |b| b.iter(|| rt.block_on(async { black_box(1) })));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = check
}
criterion_main!(benches);
