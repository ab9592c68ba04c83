//! The Redis revocation check, with and without the local cache, and how
//! fast a revocation reaches a second server. Starts its own redis-server.
//!
//! ```text
//! cargo bench -p sealed-session-redis
//! ```

use sealed_session_testkit::redis::RedisServer;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use sealed_session::{Keyring, RevocationStore, Sealer, SystemClock, Verifier};
use sealed_session_redis::{RedisConfig, RedisStore};

fn propagation(rt: &tokio::runtime::Runtime, url: &str, sealer: &Sealer) {
    const ROUNDS: usize = 300;
    let mut delays: Vec<Duration> = rt.block_on(async {
        let connect = || RedisStore::connect_with(url, RedisConfig::default(), SystemClock);
        let (a, b) = (connect().await.unwrap(), connect().await.unwrap());
        assert!(b.wait_until_subscribed(Duration::from_secs(5)).await);
        // Sessions issued in the second the keyspace's generation began are refused.
        tokio::time::sleep(Duration::from_secs(1)).await;
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
         (from the revoking call's start, so it includes the INCR and PUBLISH round trips)",
        at(0.50),
        at(0.99),
        delays[delays.len() - 1]
    );
}

fn check(c: &mut Criterion) {
    let redis = RedisServer::start();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let sealer = Sealer::builder(Keyring::generate().unwrap()).build().unwrap();
    propagation(&rt, &redis.url(), &sealer);

    let (cached, uncached) = rt.block_on(async {
        let cached = RedisStore::connect(&redis.url()).await.unwrap();
        assert!(cached.wait_until_subscribed(Duration::from_secs(5)).await);
        let config = RedisConfig::default().with_cache_ttl(Duration::ZERO);
        let uncached = RedisStore::connect_with(&redis.url(), config, SystemClock).await.unwrap();
        (Verifier::new(sealer.clone(), cached), Verifier::new(sealer.clone(), uncached))
    });
    let session = rt.block_on(cached.login("alice", ())).unwrap();
    let token = sealer.seal(&session).unwrap();

    // Cache misses (once a TTL) talk to Redis and need the runtime's context.
    let _context = rt.enter();
    let mut g = c.benchmark_group("revocation/redis");
    g.bench_function("open", |b| b.iter(|| sealer.open::<()>(black_box(&token))));
    // A cached answer needs no I/O: the future is ready at its first poll.
    g.bench_function("open_and_check_cached", |b| {
        b.iter(|| pollster::block_on(cached.open::<()>(black_box(&token))).unwrap())
    });
    g.bench_function("state_cached", |b| {
        b.iter(|| pollster::block_on(cached.store().state(Some("alice"), black_box(session.id()))).unwrap())
    });
    g.bench_function("open_and_check_uncached", |b| {
        b.iter(|| rt.block_on(uncached.open::<()>(black_box(&token))).unwrap())
    });
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
