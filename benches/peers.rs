//! This crate against other ways to seal a session, in one criterion run:
//! seal and open the same serde struct at 64 B, 256 B, 1 KiB and 3 KiB
//! (its postcard size) with
//!
//! * `ours`: [`Sealer`];
//! * `floor`: the `chacha20poly1305` crate by hand (postcard, XChaCha20-Poly1305, base64url);
//! * `aes_gcm_raw`: postcard and AES-256-GCM, raw bytes (the fastest primitive here, for reference);
//! * `private_jar`: the `cookie` crate's `PrivateJar`, value as serde_json;
//! * `branca`: the `branca` crate, postcard payload (XChaCha20-Poly1305, base62);
//! * `paseto_v4_local`: the `pasetors` crate, v4.local, JSON payload (XChaCha20 + BLAKE2b);
//! * `fernet`: the `fernet` crate (RustCrypto backend), postcard payload (AES-128-CBC + HMAC-SHA256).
//!
//! ```text
//! cargo bench --bench peers
//! ```
//!
//! Token sizes are printed to stderr once per size; results in docs/BENCHMARKS.md.
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::*;
use cookie::Cookie;
use criterion::Criterion;
use pasetors::keys::{Generate as _, SymmetricKey};
use pasetors::token::UntrustedToken;
use pasetors::version4::{LocalToken, V4};
use pasetors::Local;

fn branca_open(branca: &branca::Branca, token: &str) -> BoxResult<Payload> {
    Ok(postcard::from_bytes(&branca.decode(token, 0)?)?)
}

fn paseto_seal(key: &SymmetricKey<V4>, payload: &Payload) -> BoxResult<String> {
    Ok(LocalToken::encrypt(key, serde_json::to_string(payload)?.as_bytes(), None, None)?)
}

fn paseto_open(key: &SymmetricKey<V4>, token: &str) -> BoxResult<Payload> {
    let untrusted = UntrustedToken::<Local, V4>::try_from(token)?;
    let trusted = LocalToken::decrypt(key, &untrusted, None, None)?;
    Ok(serde_json::from_str(trusted.payload())?)
}

fn fernet_seal(fernet: &fernet::Fernet, payload: &Payload) -> BoxResult<String> {
    Ok(fernet.encrypt(&postcard::to_stdvec(payload)?))
}

fn fernet_open(fernet: &fernet::Fernet, token: &str) -> BoxResult<Payload> {
    Ok(postcard::from_bytes(&fernet.decrypt(token).map_err(|_| "fernet decrypt")?)?)
}

fn bench_size(c: &mut Criterion, label: &str, size: usize) -> BoxResult<()> {
    let Baselines { payload, session, sealer, ours, floor_cipher, floor, aes_cipher, aes, jar_key } =
        Baselines::new(size)?;
    let jar = jar_seal(&jar_key, CookieValue::Json, &payload)?;
    check("jar", &jar_open(&jar_key, CookieValue::Json, Cookie::new(COOKIE_NAME, jar.clone()))?, &payload)?;

    let mut branca = branca::Branca::new(&[0x42; 32])?;
    let branca_token = branca.encode(&postcard::to_stdvec(&payload)?)?;
    check("branca", &branca_open(&branca, &branca_token)?, &payload)?;

    let paseto_key = SymmetricKey::<V4>::generate()?;
    let paseto = paseto_seal(&paseto_key, &payload)?;
    check("paseto", &paseto_open(&paseto_key, &paseto)?, &payload)?;

    let fernet = fernet::Fernet::new(&fernet::Fernet::generate_key()).ok_or("fernet key")?;
    let fernet_token = fernet_seal(&fernet, &payload)?;
    check("fernet", &fernet_open(&fernet, &fernet_token)?, &payload)?;

    eprintln!(
        "token sizes at {label}: ours {}, floor {}, aes_gcm_raw {} (bytes), private_jar {}, branca {}, \
         paseto_v4_local {}, fernet {}",
        ours.len(),
        floor.len(),
        aes.len(),
        jar.len(),
        branca_token.len(),
        paseto.len(),
        fernet_token.len()
    );

    let mut g = c.benchmark_group(format!("peers/seal/{label}"));
    g.bench_function("ours", |b| b.iter(|| sealer.seal(black_box(&session))));
    g.bench_function("floor", |b| b.iter(|| floor_seal(&floor_cipher, black_box(&payload))));
    g.bench_function("aes_gcm_raw", |b| b.iter(|| aes_seal(&aes_cipher, black_box(&payload))));
    g.bench_function("private_jar", |b| {
        b.iter(|| jar_seal(&jar_key, CookieValue::Json, black_box(&payload)))
    });
    g.bench_function("branca", |b| {
        b.iter(|| postcard::to_stdvec(black_box(&payload)).map(|bytes| branca.encode(&bytes)))
    });
    g.bench_function("paseto_v4_local", |b| b.iter(|| paseto_seal(&paseto_key, black_box(&payload))));
    g.bench_function("fernet", |b| b.iter(|| fernet_seal(&fernet, black_box(&payload))));
    g.finish();

    let mut g = c.benchmark_group(format!("peers/open/{label}"));
    g.bench_function("ours", |b| b.iter(|| sealer.open::<Payload>(black_box(&ours))));
    g.bench_function("floor", |b| b.iter(|| floor_open(&floor_cipher, black_box(&floor))));
    g.bench_function("aes_gcm_raw", |b| b.iter(|| aes_open(&aes_cipher, black_box(&aes))));
    bench_jar_open(&mut g, "private_jar", &jar_key, CookieValue::Json, &jar);
    g.bench_function("branca", |b| b.iter(|| branca_open(&branca, black_box(&branca_token))));
    g.bench_function("paseto_v4_local", |b| b.iter(|| paseto_open(&paseto_key, black_box(&paseto))));
    g.bench_function("fernet", |b| b.iter(|| fernet_open(&fernet, black_box(&fernet_token))));
    g.finish();
    Ok(())
}

fn main() -> BoxResult<()> {
    let mut c = criterion(Duration::from_millis(500), Duration::from_secs(1), 20);
    for (label, size) in SIZES {
        bench_size(&mut c, label, size)?;
    }
    c.final_summary();
    Ok(())
}
