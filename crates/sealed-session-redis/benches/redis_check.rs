//! The Redis revocation check with and without the local cache, a
//! revocation, and how fast a revocation reaches a second server. Starts
//! its own redis-server (as the tests do).
//!
//! ```text
//! cargo bench -p sealed-session-redis
//! ```
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use sealed_session::{Keyring, Sealer, SystemClock, Verifier};
use sealed_session_redis::{RedisConfig, RedisStore};
use sealed_session_testkit::{bench, redis::RedisServer};

fn check(c: &mut Criterion) {
    let redis = RedisServer::start();
    let rt = bench::runtime();
    let sealer = Sealer::builder(Keyring::generate().unwrap()).build().unwrap();
    let server = |config: RedisConfig| {
        let (url, sealer) = (redis.url(), sealer.clone());
        rt.block_on(async move {
            let store = RedisStore::connect_with(&url, config, SystemClock).await.unwrap();
            assert!(store.wait_until_subscribed(Duration::from_secs(5)).await);
            Verifier::new(sealer, store)
        })
    };
    let (a, b) = (server(RedisConfig::default()), server(RedisConfig::default()));
    // Sessions issued in the second the keyspace's generation began are refused.
    std::thread::sleep(Duration::from_secs(1));
    bench::propagation(&rt, &a, &b, 300, "from the revoking call's start: the INCR and PUBLISH round trips");
    let uncached = server(RedisConfig::default().with_cache_ttl(Duration::ZERO));
    bench::check(c, "redis", &rt, &a, Some(&uncached));
}

criterion_group! {
    name = benches;
    config = bench::criterion();
    targets = check
}
criterion_main!(benches);
