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
//! bytes, [`Session::try_new`] (16 bytes from the per-thread generator) and
//! `std::process::id`, the fork check that generator makes on every draw.
//!
//! Token sizes are printed to stderr once per payload size. Results and
//! their reading are in docs/BENCHMARKS.md.

use std::error::Error;
use std::hint::black_box;
use std::time::Duration;

use aes_gcm::aead::{Aead as _, AeadCore as _, KeyInit as _, OsRng};
use aes_gcm::Aes256Gcm;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead as _, Generate as _, KeyInit as _};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use cookie::{Cookie, CookieJar};
use criterion::{BatchSize, Criterion, Throughput};
use sealed_session::{Keyring, Sealer, Session, DEFAULT_PURPOSE};
use serde::{Deserialize, Serialize};

type BoxResult<T> = Result<T, Box<dyn Error>>;

/// Postcard sizes of the payload, with their labels.
const SIZES: [(&str, usize); 4] = [("64B", 64), ("256B", 256), ("1KiB", 1024), ("3KiB", 3072)];

/// Cookie name for the PrivateJar variants: the same as our default purpose,
/// so that both bind the same associated data length.
const COOKIE_NAME: &str = DEFAULT_PURPOSE;

/// Version, key ID, nonce and tag around our envelope.
const OUR_FRAMING: usize = 1 + 4 + 24 + 16;

/// A typical session payload; `blob` is sized to hit the target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Payload {
    user: String,
    roles: Vec<String>,
    blob: String,
}

impl Payload {
    /// A payload whose postcard encoding is `target` bytes (or one less, where
    /// the length prefix of `blob` grows by a byte).
    fn with_postcard_len(target: usize) -> BoxResult<Self> {
        let mut payload = Payload {
            user: "alice@example.com".to_owned(),
            roles: vec!["admin".to_owned(), "editor".to_owned()],
            blob: String::new(),
        };
        let empty = postcard::to_stdvec(&payload)?.len();
        let mut n = target.saturating_sub(empty);
        loop {
            payload.blob = "abcdefghijklmnopqrstuvwxyz0123456789".chars().cycle().take(n).collect();
            if postcard::to_stdvec(&payload)?.len() <= target || n == 0 {
                return Ok(payload);
            }
            n -= 1;
        }
    }
}

fn floor_seal(cipher: &XChaCha20Poly1305, payload: &Payload) -> BoxResult<String> {
    let plaintext = postcard::to_stdvec(payload)?;
    let nonce = XNonce::generate();
    let ciphertext = cipher.encrypt(&nonce, plaintext.as_slice())?;
    let mut bytes = Vec::with_capacity(nonce.len() + ciphertext.len());
    bytes.extend_from_slice(&nonce);
    bytes.extend_from_slice(&ciphertext);
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn floor_open(cipher: &XChaCha20Poly1305, token: &str) -> BoxResult<Payload> {
    let bytes = URL_SAFE_NO_PAD.decode(token)?;
    let (nonce, ciphertext) = bytes.split_at_checked(24).ok_or("short token")?;
    let nonce = XNonce::try_from(nonce)?;
    let plaintext = cipher.decrypt(&nonce, ciphertext)?;
    Ok(postcard::from_bytes(&plaintext)?)
}

fn aes_seal(cipher: &Aes256Gcm, payload: &Payload) -> BoxResult<Vec<u8>> {
    let plaintext = postcard::to_stdvec(payload)?;
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let ciphertext = cipher.encrypt(&nonce, plaintext.as_slice()).map_err(|_| "encrypt")?;
    let mut bytes = Vec::with_capacity(nonce.len() + ciphertext.len());
    bytes.extend_from_slice(&nonce);
    bytes.extend_from_slice(&ciphertext);
    Ok(bytes)
}

fn aes_open(cipher: &Aes256Gcm, token: &[u8]) -> BoxResult<Payload> {
    let (nonce, ciphertext) = token.split_at_checked(12).ok_or("short token")?;
    let plaintext = cipher.decrypt(aes_gcm::Nonce::from_slice(nonce), ciphertext).map_err(|_| "decrypt")?;
    Ok(postcard::from_bytes(&plaintext)?)
}

/// How the PrivateJar variants turn the payload into a cookie value and back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CookieValue {
    Json,
    Postcard,
}

impl CookieValue {
    fn encode(self, payload: &Payload) -> BoxResult<String> {
        Ok(match self {
            CookieValue::Json => serde_json::to_string(payload)?,
            CookieValue::Postcard => URL_SAFE_NO_PAD.encode(postcard::to_stdvec(payload)?),
        })
    }

    fn decode(self, value: &str) -> BoxResult<Payload> {
        Ok(match self {
            CookieValue::Json => serde_json::from_str(value)?,
            CookieValue::Postcard => postcard::from_bytes(&URL_SAFE_NO_PAD.decode(value)?)?,
        })
    }

    fn name(self) -> &'static str {
        match self {
            CookieValue::Json => "private_jar_json",
            CookieValue::Postcard => "private_jar_postcard",
        }
    }
}

fn jar_seal(key: &cookie::Key, how: CookieValue, payload: &Payload) -> BoxResult<String> {
    let mut jar = CookieJar::new();
    jar.private_mut(key).add(Cookie::new(COOKIE_NAME, how.encode(payload)?));
    Ok(jar.get(COOKIE_NAME).ok_or("no cookie")?.value().to_owned())
}

fn jar_open(key: &cookie::Key, how: CookieValue, cookie: Cookie<'static>) -> BoxResult<Payload> {
    let jar = CookieJar::new();
    let plain = jar.private(key).decrypt(cookie).ok_or("cookie did not decrypt")?;
    how.decode(plain.value())
}

fn check(what: &str, opened: &Payload, payload: &Payload) -> BoxResult<()> {
    if opened == payload {
        Ok(())
    } else {
        Err(format!("{what}: round trip changed the payload").into())
    }
}

fn bench_size(c: &mut Criterion, label: &str, size: usize) -> BoxResult<()> {
    let payload = Payload::with_postcard_len(size)?;
    let postcard_len = postcard::to_stdvec(&payload)?.len();

    // Ours. A 3 KiB payload seals to 4200 characters, over the default
    // 4096-character limit, so the limit is raised for every size.
    let sealer = Sealer::builder(Keyring::generate()?).max_token_len(8192).build()?;
    let session = Session::try_new(payload.clone())?;
    let ours_token = sealer.seal(&session)?;
    check("ours", sealer.open::<Payload>(&ours_token)?.session().data(), &payload)?;

    // The floor.
    let floor_cipher = XChaCha20Poly1305::new(&chacha20poly1305::Key::generate());
    let floor_token = floor_seal(&floor_cipher, &payload)?;
    check("floor", &floor_open(&floor_cipher, &floor_token)?, &payload)?;

    // Raw AES-256-GCM.
    let aes_cipher = Aes256Gcm::new(&Aes256Gcm::generate_key(&mut OsRng));
    let aes_token = aes_seal(&aes_cipher, &payload)?;
    check("aes", &aes_open(&aes_cipher, &aes_token)?, &payload)?;

    // PrivateJar.
    let jar_key = cookie::Key::generate();
    let jar_ways = [CookieValue::Json, CookieValue::Postcard];
    let mut jar_tokens = Vec::new();
    for how in jar_ways {
        let token = jar_seal(&jar_key, how, &payload)?;
        check(how.name(), &jar_open(&jar_key, how, Cookie::new(COOKIE_NAME, token.clone()))?, &payload)?;
        jar_tokens.push((how, token));
    }

    // Bare AEAD over a buffer as long as our envelope, same associated data.
    let envelope_len =
        URL_SAFE_NO_PAD.decode(&ours_token)?.len().checked_sub(OUR_FRAMING).ok_or("short token")?;
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
        serde_json::to_string(&payload)?.len(),
        jar_len(CookieValue::Postcard),
        envelope_len + 16,
    );

    let mut g = c.benchmark_group(format!("seal/{label}"));
    g.throughput(Throughput::Bytes(postcard_len as u64));
    g.bench_function("ours", |b| b.iter(|| sealer.seal(black_box(&session))));
    g.bench_function("floor", |b| b.iter(|| floor_seal(&floor_cipher, black_box(&payload))));
    g.bench_function("aes_gcm_raw", |b| b.iter(|| aes_seal(&aes_cipher, black_box(&payload))));
    for how in jar_ways {
        g.bench_function(how.name(), |b| b.iter(|| jar_seal(&jar_key, how, black_box(&payload))));
    }
    g.bench_function("bare_aead", |b| {
        b.iter(|| bare.encrypt_in_place_detached(&bare_nonce, &bare_aad, black_box(&mut bare_buf)))
    });
    g.finish();

    let mut g = c.benchmark_group(format!("open/{label}"));
    g.throughput(Throughput::Bytes(postcard_len as u64));
    g.bench_function("ours", |b| b.iter(|| sealer.open::<Payload>(black_box(&ours_token))));
    g.bench_function("floor", |b| b.iter(|| floor_open(&floor_cipher, black_box(&floor_token))));
    g.bench_function("aes_gcm_raw", |b| b.iter(|| aes_open(&aes_cipher, black_box(&aes_token))));
    for (how, token) in &jar_tokens {
        // The owned cookie that `decrypt` takes is built outside the timing.
        g.bench_function(how.name(), |b| {
            b.iter_batched(
                || Cookie::new(COOKIE_NAME, token.clone()),
                |cookie| jar_open(&jar_key, *how, cookie),
                BatchSize::SmallInput,
            )
        });
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
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args();
    for (label, size) in SIZES {
        bench_size(&mut c, label, size)?;
    }
    bench_nonce(&mut c);
    c.final_summary();
    Ok(())
}
