//! Code shared by the benchmarks: the payload, and the hand-written
//! alternatives a user could write instead of this crate.

#![allow(dead_code, unreachable_pub)] // each bench uses part of it

use std::error::Error;
use std::time::Duration;

use aes_gcm::aead::{Aead as _, AeadCore as _, KeyInit as _, OsRng};
use aes_gcm::Aes256Gcm;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead as _, Generate as _, KeyInit as _};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use cookie::{Cookie, CookieJar};
use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, Criterion};
use sealed_session::{Keyring, Sealer, Session, DEFAULT_PURPOSE};
use serde::{Deserialize, Serialize};

pub type BoxResult<T> = Result<T, Box<dyn Error>>;

/// Criterion with these timings, unless the command line says otherwise.
pub fn criterion(warm_up: Duration, measurement: Duration, samples: usize) -> Criterion {
    Criterion::default()
        .warm_up_time(warm_up)
        .measurement_time(measurement)
        .sample_size(samples)
        .configure_from_args()
}

/// Postcard sizes of the payload, with their labels.
pub const SIZES: [(&str, usize); 4] = [("64B", 64), ("256B", 256), ("1KiB", 1024), ("3KiB", 3072)];

/// Cookie name for the PrivateJar variants: the same as our default purpose,
/// so that both bind the same associated data length.
pub const COOKIE_NAME: &str = DEFAULT_PURPOSE;

/// A typical session payload; `blob` is sized to hit the target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payload {
    pub user: String,
    pub roles: Vec<String>,
    pub blob: String,
}

impl Payload {
    /// A payload whose postcard encoding is `target` bytes (or one less, where
    /// the length prefix of `blob` grows by a byte).
    pub fn with_postcard_len(target: usize) -> BoxResult<Self> {
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

pub fn floor_seal(cipher: &XChaCha20Poly1305, payload: &Payload) -> BoxResult<String> {
    let plaintext = postcard::to_stdvec(payload)?;
    let nonce = XNonce::generate();
    let ciphertext = cipher.encrypt(&nonce, plaintext.as_slice())?;
    let mut bytes = Vec::with_capacity(nonce.len() + ciphertext.len());
    bytes.extend_from_slice(&nonce);
    bytes.extend_from_slice(&ciphertext);
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

pub fn floor_open(cipher: &XChaCha20Poly1305, token: &str) -> BoxResult<Payload> {
    let bytes = URL_SAFE_NO_PAD.decode(token)?;
    let (nonce, ciphertext) = bytes.split_at_checked(24).ok_or("short token")?;
    let nonce = XNonce::try_from(nonce)?;
    let plaintext = cipher.decrypt(&nonce, ciphertext)?;
    Ok(postcard::from_bytes(&plaintext)?)
}

pub fn aes_seal(cipher: &Aes256Gcm, payload: &Payload) -> BoxResult<Vec<u8>> {
    let plaintext = postcard::to_stdvec(payload)?;
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let ciphertext = cipher.encrypt(&nonce, plaintext.as_slice()).map_err(|_| "encrypt")?;
    let mut bytes = Vec::with_capacity(nonce.len() + ciphertext.len());
    bytes.extend_from_slice(&nonce);
    bytes.extend_from_slice(&ciphertext);
    Ok(bytes)
}

pub fn aes_open(cipher: &Aes256Gcm, token: &[u8]) -> BoxResult<Payload> {
    let (nonce, ciphertext) = token.split_at_checked(12).ok_or("short token")?;
    let plaintext = cipher.decrypt(aes_gcm::Nonce::from_slice(nonce), ciphertext).map_err(|_| "decrypt")?;
    Ok(postcard::from_bytes(&plaintext)?)
}

/// How the PrivateJar variants turn the payload into a cookie value and back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum CookieValue {
    Json,
    Postcard,
}

impl CookieValue {
    pub fn encode(self, payload: &Payload) -> BoxResult<String> {
        Ok(match self {
            CookieValue::Json => serde_json::to_string(payload)?,
            CookieValue::Postcard => URL_SAFE_NO_PAD.encode(postcard::to_stdvec(payload)?),
        })
    }

    pub fn decode(self, value: &str) -> BoxResult<Payload> {
        Ok(match self {
            CookieValue::Json => serde_json::from_str(value)?,
            CookieValue::Postcard => postcard::from_bytes(&URL_SAFE_NO_PAD.decode(value)?)?,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            CookieValue::Json => "private_jar_json",
            CookieValue::Postcard => "private_jar_postcard",
        }
    }
}

pub fn jar_seal(key: &cookie::Key, how: CookieValue, payload: &Payload) -> BoxResult<String> {
    let mut jar = CookieJar::new();
    jar.private_mut(key).add(Cookie::new(COOKIE_NAME, how.encode(payload)?));
    Ok(jar.get(COOKIE_NAME).ok_or("no cookie")?.value().to_owned())
}

pub fn jar_open(key: &cookie::Key, how: CookieValue, cookie: Cookie<'static>) -> BoxResult<Payload> {
    let jar = CookieJar::new();
    let plain = jar.private(key).decrypt(cookie).ok_or("cookie did not decrypt")?;
    how.decode(plain.value())
}

/// Benchmarks opening the PrivateJar cookie `value` as `name`; the owned
/// cookie that `decrypt` takes is built outside the timing.
pub fn bench_jar_open(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    key: &cookie::Key,
    how: CookieValue,
    value: &str,
) {
    g.bench_function(name, |b| {
        b.iter_batched(
            || Cookie::new(COOKIE_NAME, value.to_owned()),
            |cookie| jar_open(key, how, cookie),
            BatchSize::SmallInput,
        )
    });
}

pub fn check(what: &str, opened: &Payload, payload: &Payload) -> BoxResult<()> {
    if opened == payload {
        Ok(())
    } else {
        Err(format!("{what}: round trip changed the payload").into())
    }
}

/// One payload size sealed, and opened again to check it, by this crate
/// and by the hand-written ways every benchmark compares it with, each
/// under a key of its own.
pub struct Baselines {
    pub payload: Payload,
    pub session: Session<Payload>,
    /// A 3 KiB payload seals to 4200 characters, over the default
    /// 4096-character limit, so the limit is raised for every size.
    pub sealer: Sealer,
    pub ours: String,
    pub floor_cipher: XChaCha20Poly1305,
    pub floor: String,
    pub aes_cipher: Aes256Gcm,
    pub aes: Vec<u8>,
    /// The PrivateJar's key; each benchmark seals with it as it needs.
    pub jar_key: cookie::Key,
}

impl Baselines {
    /// The payload whose postcard encoding is `size` bytes, sealed.
    pub fn new(size: usize) -> BoxResult<Self> {
        let payload = Payload::with_postcard_len(size)?;
        let sealer = Sealer::builder(Keyring::generate()?).max_token_len(8192).build()?;
        let session = Session::try_new(payload.clone())?;
        let ours = sealer.seal(&session)?;
        check("ours", sealer.open::<Payload>(&ours)?.session().data(), &payload)?;
        let floor_cipher = XChaCha20Poly1305::new(&chacha20poly1305::Key::generate());
        let floor = floor_seal(&floor_cipher, &payload)?;
        check("floor", &floor_open(&floor_cipher, &floor)?, &payload)?;
        let aes_cipher = Aes256Gcm::new(&Aes256Gcm::generate_key(&mut OsRng));
        let aes = aes_seal(&aes_cipher, &payload)?;
        check("aes", &aes_open(&aes_cipher, &aes)?, &payload)?;
        let jar_key = cookie::Key::generate();
        Ok(Self { payload, session, sealer, ours, floor_cipher, floor, aes_cipher, aes, jar_key })
    }
}
