//! The PostgreSQL revocation check with and without the local cache, a
//! revocation, and how fast a revocation reaches a second server. Starts
//! its own PostgreSQL (as the tests do).
//!
//! ```text
//! cargo bench -p sealed-session-postgres
//! ```
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use sealed_session::{Keyring, Sealer, SystemClock, Verifier};
use sealed_session_postgres::{PostgresOptions, PostgresStore};
use sealed_session_testkit::{bench, postgres::PostgresServer};

fn check(c: &mut Criterion) {
    let postgres = PostgresServer::start();
    let rt = bench::runtime();
    let sealer = Sealer::builder(Keyring::generate().unwrap()).build().unwrap();
    let server = |options: PostgresOptions| {
        let (url, sealer) = (postgres.url(), sealer.clone());
        rt.block_on(async move {
            let pool = sqlx::postgres::PgPoolOptions::new().max_connections(4).connect(&url).await.unwrap();
            let store = PostgresStore::with_pool(pool, options, SystemClock).await.unwrap();
            assert!(store.wait_until_listening(Duration::from_secs(5)).await);
            Verifier::new(sealer, store)
        })
    };
    let propagation = PostgresOptions::default().with_prefix("propagation");
    let (a, b) = (server(propagation.clone()), server(propagation));
    bench::propagation(
        &rt,
        &a,
        &b,
        300,
        "from the revoking call's start: the upsert, its commit and the NOTIFY",
    );
    let cached = server(PostgresOptions::default());
    let uncached = server(PostgresOptions::default().with_cache_ttl(Duration::ZERO));
    bench::check(c, "postgres", &rt, &cached, Some(&uncached));
}

criterion_group! {
    name = benches;
    config = bench::criterion();
    targets = check
}
criterion_main!(benches);
