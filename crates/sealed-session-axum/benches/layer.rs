//! The layer's own cost per request, without a network: an axum router
//! answering `GET /` from the session, through `tower::ServiceExt::oneshot`,
//! against the same router without the layer answering from a session
//! opened once, and the same with axum's `Extension` layer handing that
//! session to the handler (what any layer pays to reach an extractor); the
//! same with a remember-me cookie (one decryption too);
//! and what a write costs: `Sealer::issue` (the token and the session as
//! it carries it) against `Sealer::seal` alone.
//!
//! ```text
//! cargo bench -p sealed-session-axum
//! ```
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::{Extension, Router};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use http::Request;
use sealed_session::web::WebConfig;
use sealed_session::{Keyring, MemoryStore, Opened, Sealer};
use sealed_session_axum::{Session, SessionLayer};
use tower::ServiceExt as _;

fn layer(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let sealer = Sealer::builder(Keyring::generate().unwrap())
        .remember_me(Duration::from_secs(30 * 86_400), Duration::from_secs(7 * 86_400));
    let config = WebConfig::builder(sealer, MemoryStore::new()).build().unwrap();
    let sealer = config.verifier().sealer().clone();
    let session = rt.block_on(config.verifier().login("alice", "Alice".to_owned())).unwrap();
    let cookie = format!("__Host-session={}", sealer.seal(&session).unwrap());
    let opened = sealer.open::<String>(&cookie["__Host-session=".len()..]).unwrap();
    let remembered = format!("__Host-session={}", sealer.seal(&session.clone().remembered()).unwrap());

    let layered = Router::new()
        .route("/", get(|session: Session<String>| async move { session.data().clone() }))
        .layer(SessionLayer::new(config));
    // What any layer pays to hand a value to an extractor: axum's own
    // `Extension` layer, inserting the opened session into every request.
    let floor = Router::new()
        .route(
            "/",
            get(|Extension(opened): Extension<Arc<Opened<String>>>| async move {
                opened.session().data().clone()
            }),
        )
        .layer(Extension(Arc::new(opened.clone())));
    let plain = Router::new().route(
        "/",
        get(move || {
            let opened = opened.clone();
            async move { opened.session().data().clone() }
        }),
    );
    let request = || Request::get("/").header("cookie", cookie.as_str()).body(Body::empty()).unwrap();
    let remembered_request =
        || Request::get("/").header("cookie", remembered.as_str()).body(Body::empty()).unwrap();

    let mut g = c.benchmark_group("layer");
    g.bench_function("without_layer", |b| {
        b.iter(|| rt.block_on(plain.clone().oneshot(black_box(request()))).unwrap())
    });
    g.bench_function("extension_layer_floor", |b| {
        b.iter(|| rt.block_on(floor.clone().oneshot(black_box(request()))).unwrap())
    });
    g.bench_function("with_layer_memory_store", |b| {
        b.iter(|| rt.block_on(layered.clone().oneshot(black_box(request()))).unwrap())
    });
    g.bench_function("with_layer_remembered", |b| {
        b.iter(|| rt.block_on(layered.clone().oneshot(black_box(remembered_request()))).unwrap())
    });
    g.bench_function("open_alone", |b| {
        b.iter(|| sealer.open::<String>(black_box(&cookie["__Host-session=".len()..])))
    });
    g.bench_function("seal_alone", |b| {
        b.iter_batched(|| session.clone(), |session| sealer.seal(&session), BatchSize::SmallInput)
    });
    g.bench_function("issue", |b| {
        b.iter_batched(|| session.clone(), |session| sealer.issue(session), BatchSize::SmallInput)
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = layer
}
criterion_main!(benches);
