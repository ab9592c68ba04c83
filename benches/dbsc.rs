//! What device-bound sessions cost the server, against opening a session
//! cookie in the same run: verifying one ES256 proof, and a whole refresh
//! through the web driver (identifier and companion opened, proof verified,
//! challenge checked and marked used in the memory store, revocation
//! checked, bound and companion cookies sealed). docs/BENCHMARKS.md records
//! the figures as ratios.
//!
//! ```text
//! cargo bench --bench dbsc
//! ```
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use sealed_session::dbsc::parse_proof;
use sealed_session::web::testing::{DeviceKey, TestRequest, TestResponse};
use sealed_session::web::{Begin, DeviceBinding, WebConfig};
use sealed_session::{Keyring, MemoryStore, Sealer, Session};

/// The string parameter `key` of a structured field.
fn sf_param<'f>(field: &'f str, key: &str) -> &'f str {
    let start = field.find(&format!(";{key}=\"")).unwrap() + key.len() + 3;
    let rest = &field[start..];
    &rest[..rest.find('"').unwrap()]
}

fn answer(
    config: &Arc<WebConfig<MemoryStore>>,
    request: &TestRequest,
) -> (u16, Vec<(String, String)>, String) {
    match pollster::block_on(config.begin(request)) {
        Begin::Answer(answer) => {
            let (status, headers, body) = answer.into_parts();
            (status, headers.into_iter().map(|(n, v)| (n.to_owned(), v)).collect(), body)
        }
        other => panic!("not a DBSC answer: {other:?}"),
    }
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> &'h str {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).unwrap()
}

fn cookie(headers: &[(String, String)], name: &str) -> String {
    let prefix = format!("{name}=");
    let set = headers.iter().find(|(n, v)| n == "set-cookie" && v.starts_with(&prefix)).unwrap();
    set.1.split(';').next().unwrap().to_owned()
}

fn bench(c: &mut Criterion) {
    let keyring = Keyring::generate().unwrap();
    let config = Arc::new(
        WebConfig::builder(Sealer::builder(keyring), MemoryStore::new())
            .device_bound_sessions(DeviceBinding::default())
            .build()
            .unwrap(),
    );
    let sealer = config.verifier().sealer();
    let baseline = sealer.seal(&Session::new("a session".to_owned()).with_user("alice", 0)).unwrap();

    // Sign in, register, and keep what a refresh needs.
    let Begin::Ready(handle) = pollster::block_on(config.begin(&TestRequest::new("GET", "/login"))) else {
        panic!()
    };
    pollster::block_on(handle.typed::<String>().login("alice", "a session".to_owned())).unwrap();
    let mut response = TestResponse::default();
    handle.finish().write_to(&mut response);
    let offer = response.get_all("secure-session-registration")[0].to_owned();
    let session = response.get_all("set-cookie")[0].split(';').next().unwrap().to_owned();
    let key = DeviceKey::generate().unwrap();
    let register = TestRequest::new("POST", "/dbsc/register")
        .header("cookie", &session)
        .header("secure-session-response", format!("\"{}\"", key.proof(sf_param(&offer, "challenge"), true)));
    let (status, headers, body) = answer(&config, &register);
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id = format!("\"{}\"", json["session_identifier"].as_str().unwrap());
    let companion = cookie(&headers, "__Host-session-dbsc");
    let refresh = TestRequest::new("POST", "/dbsc/refresh")
        .header("sec-secure-session-id", &id)
        .header("cookie", &companion);

    // One proof, verified again and again (a proof's verification does not
    // depend on whether its challenge was used).
    let (_, headers, _) = answer(&config, &refresh);
    let challenge = header(&headers, "secure-session-challenge");
    let challenge = &challenge[1..challenge.find("\";id=").unwrap()];
    let bound_key = {
        let proof = parse_proof(&key.proof(challenge, true)).unwrap();
        proof.verify_registration(&[sealed_session::dbsc::Algorithm::Es256], None).unwrap().key
    };
    let proof = key.proof(challenge, false);

    let mut group = c.benchmark_group("dbsc");
    group.bench_function("open_session_baseline", |b| {
        b.iter(|| sealer.open_raw(black_box(&baseline)).unwrap())
    });
    group.bench_function("verify_es256_proof", |b| {
        b.iter(|| parse_proof(black_box(&proof)).unwrap().verify_refresh(&bound_key).unwrap())
    });
    group.bench_function("refresh_asks_for_a_proof", |b| {
        b.iter(|| assert_eq!(answer(&config, black_box(&refresh)).0, 403))
    });
    // A whole refresh; each needs a fresh challenge and proof, made (and
    // signed, which is the browser's work) outside the timing.
    group.bench_function("refresh_with_a_proof", |b| {
        b.iter_batched(
            || {
                let (_, headers, _) = answer(&config, &refresh);
                let challenge = header(&headers, "secure-session-challenge");
                let challenge = &challenge[1..challenge.find("\";id=").unwrap()];
                refresh
                    .clone()
                    .header("secure-session-response", format!("\"{}\"", key.proof(challenge, false)))
            },
            |request| assert_eq!(answer(&config, &request).0, 200),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
