//! What the stores' benchmarks share (feature `bench`): criterion's
//! settings, a runtime, the revocation check's benchmarks over any store,
//! and the measurement of how fast a revocation reaches a second server.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use sealed_session::{RevocationStore, Sealer, Session, Verifier};

/// The settings every store benchmark runs with: short, since the machines
/// are shared and the figures go into docs/BENCHMARKS.md as ratios.
#[must_use]
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

/// A runtime with one worker thread, as the stores' tests use.
#[must_use]
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
}

/// Benchmarks the check of a session through `verifier` in the group
/// `revocation/NAME`: opening alone (the baseline), opening and checking,
/// the store's `state` for a session it never saw, a revocation, and the
/// executor's own overhead. `uncached`, if given, is a second verifier on
/// the same store with its cache off.
pub fn check<S: RevocationStore>(
    c: &mut Criterion,
    name: &str,
    rt: &tokio::runtime::Runtime,
    verifier: &Verifier<S>,
    uncached: Option<&Verifier<S>>,
) {
    let sealer = verifier.sealer();
    let session = rt.block_on(verifier.login("alice", ())).unwrap();
    let token = sealer.seal(&session).unwrap();
    // Cache misses talk to the store and need the runtime's context.
    let _context = rt.enter();
    let mut g = c.benchmark_group(format!("revocation/{name}"));
    g.bench_function("open", |b| b.iter(|| sealer.open::<()>(black_box(&token))));
    // A cached answer needs no I/O: the future is ready at its first poll.
    g.bench_function("open_and_check", |b| {
        b.iter(|| rt.block_on(verifier.open::<()>(black_box(&token))).unwrap())
    });
    g.bench_function("state_of_a_new_session", |b| {
        b.iter(|| rt.block_on(verifier.store().state(Some("alice"), Session::new(()).id())).unwrap())
    });
    if let Some(uncached) = uncached {
        g.bench_function("open_and_check_uncached", |b| {
            b.iter(|| rt.block_on(uncached.open::<()>(black_box(&token))).unwrap())
        });
    }
    g.bench_function("revoke_user", |b| b.iter(|| rt.block_on(verifier.logout_everywhere("bob")).unwrap()));
    g.bench_function("executor_overhead_block_on", |b| b.iter(|| rt.block_on(async { black_box(1) })));
    g.finish();
}

/// Measures, over `rounds` users, how long after `a` logs a user out
/// everywhere `b` (another server on the same store, with a warm cache)
/// refuses the user's session, and prints the percentiles. `how` says what
/// the time includes.
pub fn propagation<S: RevocationStore>(
    rt: &tokio::runtime::Runtime,
    a: &Verifier<S>,
    b: &Verifier<S>,
    rounds: usize,
    how: &str,
) {
    let sealer: &Sealer = b.sealer();
    let mut delays: Vec<Duration> = rt.block_on(async {
        let mut delays = Vec::with_capacity(rounds);
        for round in 0..rounds {
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
        "revocation propagation to a second server over loopback, {rounds} rounds: p50 {:?}, p99 {:?}, max {:?} \
         ({how})",
        at(0.50),
        at(0.99),
        delays[delays.len() - 1]
    );
}
