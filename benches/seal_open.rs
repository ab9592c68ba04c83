//! Seal and open benchmarks, all in one process so that ratios hold on a
//! noisy machine.
//!
//! For payloads whose postcard encoding is 64 B, 256 B, 1 KiB and 3 KiB it
//! measures:
//!
//! * `ours`: [`Sealer::seal`] and [`Sealer::open`];
//! * `floor`: what a user would write by hand with the `chacha20poly1305`
//!   crate: postcard, XChaCha20-Poly1305 with a nonce from
//!   `XNonce::generate()` (the OS random source), nonce prepended,
//!   base64url without padding;
//! * `aes_gcm_raw`: postcard and AES-256-GCM (`aes-gcm`), nonce from
//!   `OsRng`, raw bytes, no text encoding;
//! * `private_jar_json` and `private_jar_postcard`: the `cookie` crate's
//!   `PrivateJar`, with the value as serde_json text or as base64url of
//!   postcard;
//! * `bare_aead`: this crate's XChaCha20-Poly1305 alone, on a buffer as long
//!   as our envelope, with a fixed nonce.
//!
//! A last group measures where a nonce comes from: `getrandom::fill` of 24
//! bytes, [`Session::try_new`] (16 bytes from the per-thread generator, fork
//! check included) and `std::process::id` (a `getpid` call, what a
//! process-ID fork check would cost per draw).
//!
//! `benches/peers.rs` compares with other session-token libraries.
//!
//! Token sizes are printed to stderr once per payload size. Results and
//! their reading are in docs/BENCHMARKS.md.
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use std::hint::black_box;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::*;
use cookie::Cookie;
use criterion::{BatchSize, Criterion, Throughput};
use sealed_session::Session;

/// Version, key ID, nonce and tag around our envelope.
const OUR_FRAMING: usize = 1 + 4 + 24 + 16;

fn bench_size(c: &mut Criterion, label: &str, size: usize) -> BoxResult<()> {
    let baselines = Baselines::new(size)?;
    let Baselines {
        payload,
        session,
        sealer,
        ours: ours_token,
        floor_cipher,
        floor: floor_token,
        aes_cipher,
        aes: aes_token,
        jar_key,
    } = &baselines;
    let postcard_len = postcard::to_stdvec(payload)?.len();

    // PrivateJar, as JSON text and as postcard.
    let jar_ways = [CookieValue::Json, CookieValue::Postcard];
    let mut jar_tokens = Vec::new();
    for how in jar_ways {
        let token = jar_seal(jar_key, how, payload)?;
        check(how.name(), &jar_open(jar_key, how, Cookie::new(COOKIE_NAME, token.clone()))?, payload)?;
        jar_tokens.push((how, token));
    }

    // Bare AEAD over a buffer as long as our envelope, same associated data.
    let envelope_len =
        URL_SAFE_NO_PAD.decode(ours_token)?.len().checked_sub(OUR_FRAMING).ok_or("short token")?;
    let bare = sealed_session::aead::XChaCha20Poly1305::new(&[7; 32]);
    let bare_nonce = [9; 24];
    let mut bare_aad = vec![sealed_session::VERSION];
    bare_aad.extend_from_slice(&sealer.keyring().current().primary_id().to_be_bytes());
    bare_aad.extend_from_slice(sealer.purpose().as_bytes());
    let mut bare_buf = vec![0x5a; envelope_len];
    let mut bare_ciphertext = bare_buf.clone();
    let bare_tag = bare.encrypt_in_place_detached(&bare_nonce, &bare_aad, &mut bare_ciphertext)?;

    let jar_len = |how: CookieValue| jar_tokens.iter().find(|(h, _)| *h == how).map_or(0, |(_, t)| t.len());
    eprintln!(
        "token sizes at {label} (postcard {postcard_len} B): ours {} chars, floor {} chars, \
         aes_gcm_raw {} bytes, private_jar_json {} chars (value {} B), private_jar_postcard {} chars, \
         bare_aead {} bytes (envelope {envelope_len} + tag 16)",
        ours_token.len(),
        floor_token.len(),
        aes_token.len(),
        jar_len(CookieValue::Json),
        serde_json::to_string(payload)?.len(),
        jar_len(CookieValue::Postcard),
        envelope_len + 16,
    );

    let mut g = c.benchmark_group(format!("seal/{label}"));
    g.throughput(Throughput::Bytes(postcard_len as u64));
    g.bench_function("ours", |b| b.iter(|| sealer.seal(black_box(session))));
    g.bench_function("floor", |b| b.iter(|| floor_seal(floor_cipher, black_box(payload))));
    g.bench_function("aes_gcm_raw", |b| b.iter(|| aes_seal(aes_cipher, black_box(payload))));
    for how in jar_ways {
        g.bench_function(how.name(), |b| b.iter(|| jar_seal(jar_key, how, black_box(payload))));
    }
    g.bench_function("bare_aead", |b| {
        b.iter(|| bare.encrypt_in_place_detached(&bare_nonce, &bare_aad, black_box(&mut bare_buf)))
    });
    g.finish();

    let mut g = c.benchmark_group(format!("open/{label}"));
    g.throughput(Throughput::Bytes(postcard_len as u64));
    g.bench_function("ours", |b| b.iter(|| sealer.open::<Payload>(black_box(ours_token))));
    g.bench_function("floor", |b| b.iter(|| floor_open(floor_cipher, black_box(floor_token))));
    g.bench_function("aes_gcm_raw", |b| b.iter(|| aes_open(aes_cipher, black_box(aes_token))));
    for (how, token) in &jar_tokens {
        bench_jar_open(&mut g, how.name(), jar_key, *how, token);
    }
    g.bench_function("bare_aead", |b| {
        b.iter_batched_ref(
            || bare_ciphertext.clone(),
            |buf| bare.decrypt_in_place_detached(&bare_nonce, &bare_aad, buf, &bare_tag),
            BatchSize::SmallInput,
        )
    });
    g.finish();
    Ok(())
}

fn bench_nonce(c: &mut Criterion) {
    let mut g = c.benchmark_group("nonce");
    g.bench_function("getrandom_fill_24", |b| {
        b.iter(|| {
            let mut nonce = [0u8; 24];
            let result = getrandom::fill(&mut nonce);
            (result, nonce)
        })
    });
    g.bench_function("session_try_new", |b| b.iter(|| Session::<()>::try_new(())));
    g.bench_function("process_id", |b| b.iter(std::process::id));
    g.finish();
}

fn main() -> BoxResult<()> {
    let mut c = criterion(Duration::from_secs(1), Duration::from_secs(2), 30);
    for (label, size) in SIZES {
        bench_size(&mut c, label, size)?;
    }
    bench_nonce(&mut c);
    c.final_summary();
    Ok(())
}
