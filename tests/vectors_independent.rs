//! Checks tests/vectors/v1.json with the construction of docs/FORMAT.md built
//! from other crates (`hkdf`, `chacha20poly1305`, a hand-written postcard
//! reader), not from this crate's code.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::XChaCha20Poly1305;
use hkdf::Hkdf;
use serde_json::Value;
use sha2::Sha256;

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

fn vectors() -> Value {
    serde_json::from_str(include_str!("vectors/v1.json")).unwrap()
}

fn token_key(vectors: &Value, id: u64) -> [u8; 32] {
    let key = vectors["keys"].as_array().unwrap().iter().find(|k| k["id"].as_u64() == Some(id)).unwrap();
    let ikm = unhex(key["secret"].as_str().unwrap());
    let mut okm = [0u8; 32];
    Hkdf::<Sha256>::new(None, &ikm).expand(b"sealed-session v1 token xchacha20poly1305", &mut okm).unwrap();
    okm
}

/// Decrypts a token as FORMAT.md sections 2 and 3 say; `None` if it does not authenticate.
fn decrypt(vectors: &Value, token: &[u8], purpose: &str) -> Option<Vec<u8>> {
    let id = u32::from_be_bytes(token[1..5].try_into().unwrap());
    let aead = XChaCha20Poly1305::new(&token_key(vectors, u64::from(id)).into());
    let aad = [&token[..5], purpose.as_bytes()].concat();
    let nonce: [u8; 24] = token[5..29].try_into().unwrap();
    aead.decrypt(&nonce.into(), Payload { msg: &token[29..], aad: &aad }).ok()
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn varint(&mut self) -> u64 {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let byte = self.0[0];
            self.0 = &self.0[1..];
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return value;
            }
        }
        panic!("varint too long")
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head.to_vec()
    }

    fn string(&mut self) -> String {
        let len = self.varint() as usize;
        String::from_utf8(self.bytes(len)).unwrap()
    }
}

#[test]
fn valid_vectors_decrypt_to_the_documented_envelope() {
    let vectors = vectors();
    let purpose = vectors["purpose"].as_str().unwrap();
    let valid = vectors["valid"].as_array().unwrap();
    assert!(valid.len() >= 4);
    for v in valid {
        let token = URL_SAFE_NO_PAD.decode(v["token"].as_str().unwrap()).unwrap();
        assert_eq!(token[0], 1, "version");
        assert_eq!(
            u64::from(u32::from_be_bytes(token[1..5].try_into().unwrap())),
            v["key_id"].as_u64().unwrap()
        );
        assert_eq!(token[5..29], unhex(v["nonce"].as_str().unwrap())[..]);
        let plaintext = decrypt(&vectors, &token, purpose).expect("vector authenticates");
        assert_eq!(plaintext, unhex(v["plaintext"].as_str().unwrap()));

        let mut r = Reader(&plaintext);
        assert_eq!(r.varint(), v["issued_at"].as_u64().unwrap());
        assert_eq!(r.varint(), v["expires_at"].as_u64().unwrap());
        assert_eq!(r.varint(), v["last_seen"].as_u64().unwrap());
        assert_eq!(r.bytes(16), unhex(v["session_id"].as_str().unwrap()));
        let user = match r.varint() {
            0 => None,
            1 => Some(r.string()),
            other => panic!("bad option tag {other}"),
        };
        assert_eq!(user.as_deref(), v["user_id"].as_str());
        assert_eq!(r.varint(), v["epoch"].as_u64().unwrap());
        assert_eq!(r.string(), v["data"]["name"].as_str().unwrap());
        assert_eq!(r.varint(), v["data"]["visits"].as_u64().unwrap());
        assert!(r.0.is_empty(), "no bytes after the envelope");
    }
}

#[test]
fn invalid_vectors_that_claim_a_forgery_do_not_authenticate() {
    let vectors = vectors();
    let mut checked = 0;
    for v in vectors["invalid"].as_array().unwrap() {
        if v["error"] != "Invalid" {
            continue;
        }
        let purpose =
            v.get("purpose").and_then(Value::as_str).unwrap_or(vectors["purpose"].as_str().unwrap());
        let token = URL_SAFE_NO_PAD.decode(v["token"].as_str().unwrap()).unwrap();
        assert!(decrypt(&vectors, &token, purpose).is_none(), "{}", v["name"]);
        checked += 1;
    }
    assert!(checked >= 7);
}
