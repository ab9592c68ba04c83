//! Checks tests/vectors/v1.json and v2.json with the construction of
//! docs/FORMAT.md built from other crates (`hkdf`, `chacha20poly1305`, a
//! hand-written postcard reader), not from this crate's code.
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

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

/// Both files of vectors.
fn files() -> [Value; 2] {
    [include_str!("vectors/v1.json"), include_str!("vectors/v2.json")]
        .map(|f| serde_json::from_str(f).unwrap())
}

/// The bytes before the nonce: version ‖ key ID (1), version ‖ flags ‖ key ID (2).
fn prefix_len(token: &[u8]) -> usize {
    if token[0] == 1 {
        5
    } else {
        6
    }
}

fn token_key(vectors: &Value, id: u64) -> [u8; 32] {
    let key = vectors["keys"].as_array().unwrap().iter().find(|k| k["id"].as_u64() == Some(id)).unwrap();
    let ikm = unhex(key["secret"].as_str().unwrap());
    let mut okm = [0u8; 32];
    Hkdf::<Sha256>::new(None, &ikm).expand(b"sealed-session v1 token xchacha20poly1305", &mut okm).unwrap();
    okm
}

/// Decrypts a token as FORMAT.md sections 2 and 3 say; `None` if it does
/// not authenticate, or if its purpose, suffixes included, is longer than
/// the associated data may hold (123 bytes).
fn decrypt(vectors: &Value, token: &[u8], purpose: &str) -> Option<Vec<u8>> {
    if purpose.len() > 123 {
        return None;
    }
    let p = prefix_len(token);
    let id = u32::from_be_bytes(token[p - 4..p].try_into().unwrap());
    let aead = XChaCha20Poly1305::new(&token_key(vectors, u64::from(id)).into());
    let aad = [&token[..p], purpose.as_bytes()].concat();
    let nonce: [u8; 24] = token[p..p + 24].try_into().unwrap();
    aead.decrypt(&nonce.into(), Payload { msg: &token[p + 24..], aad: &aad }).ok()
}

/// Opens a token as FORMAT.md section 3 says an opener of data `versioned`
/// or not, with a remember-me profile if `remember`, does: version 2 under
/// the purpose alone (its flags say the rest); version 1 under each
/// purpose the opener accepts in turn, the standard profile's first. The
/// plaintext, and whether the token is of the remember-me profile.
fn open(
    vectors: &Value,
    token: &[u8],
    purpose: &str,
    versioned: bool,
    remember: bool,
) -> Option<(Vec<u8>, bool)> {
    if token[0] != 1 {
        return decrypt(vectors, token, purpose).map(|plaintext| (plaintext, token[1] & 1 == 1));
    }
    let suffix = if versioned { "+versioned" } else { "" };
    let standard = decrypt(vectors, token, &format!("{purpose}{suffix}")).map(|plaintext| (plaintext, false));
    let remembered =
        || decrypt(vectors, token, &format!("{purpose}+remember{suffix}")).map(|plaintext| (plaintext, true));
    standard.or_else(|| remember.then(remembered).flatten())
}

/// A strict postcard reader, written from FORMAT.md section 4.
struct Reader<'a>(&'a [u8]);

type Step<T> = Result<T, &'static str>;

impl Reader<'_> {
    fn byte(&mut self) -> Step<u8> {
        let (&first, rest) = self.0.split_first().ok_or("envelope too short")?;
        self.0 = rest;
        Ok(first)
    }

    /// A minimal LEB128 varint, at most 10 bytes, whose value fits in `bits` bits.
    fn varint(&mut self, bits: u32) -> Step<u64> {
        let mut value = 0u128;
        for index in 0..10 {
            let byte = self.byte()?;
            value |= u128::from(byte & 0x7f) << (7 * index);
            if byte & 0x80 == 0 {
                if index > 0 && byte == 0 {
                    return Err("varint not minimal");
                }
                return u64::try_from(value)
                    .ok()
                    .filter(|v| bits == 64 || v >> bits == 0)
                    .ok_or("varint overflows its type");
            }
        }
        Err("varint too long")
    }

    fn bytes(&mut self, n: u64) -> Step<Vec<u8>> {
        let n = usize::try_from(n).map_err(|_| "length too large")?;
        if n > self.0.len() {
            return Err("envelope too short");
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head.to_vec())
    }

    fn string(&mut self) -> Step<String> {
        let len = self.varint(64)?;
        String::from_utf8(self.bytes(len)?).map_err(|_| "not UTF-8")
    }
}

/// Fields 1-6 of the envelope, as FORMAT.md section 4 lays them out.
struct Head {
    issued_at: u64,
    expires_at: u64,
    last_seen: u64,
    session_id: Vec<u8>,
    user_id: Option<String>,
    epoch: u64,
}

fn head(r: &mut Reader<'_>) -> Step<Head> {
    Ok(Head {
        issued_at: r.varint(64)?,
        expires_at: r.varint(64)?,
        last_seen: r.varint(64)?,
        session_id: r.bytes(16)?,
        user_id: match r.byte()? {
            0 => None,
            1 => Some(r.string()?),
            _ => return Err("option tag other than 0 or 1"),
        },
        epoch: r.varint(64)?,
    })
}

/// Field 7 for the vectors' data type `{ name: String, visits: u32 }`, then
/// nothing left over.
fn data(r: &mut Reader<'_>) -> Step<(String, u64)> {
    let data = (r.string()?, r.varint(32)?);
    if r.0.is_empty() {
        Ok(data)
    } else {
        Err("bytes left over")
    }
}

/// Field 7 as `Versioned` data: the version, then the data's own bytes as
/// a byte string, then nothing left over.
fn versioned_data(r: &mut Reader<'_>) -> Step<(u64, (String, u64))> {
    let version = r.varint(32)?;
    let len = r.varint(64)?;
    let inner = r.bytes(len)?;
    if !r.0.is_empty() {
        return Err("bytes left over");
    }
    Ok((version, data(&mut Reader(&inner))?))
}

#[test]
fn valid_vectors_decrypt_to_the_documented_envelope() {
    for vectors in files() {
        let version = vectors["version"].as_u64().unwrap();
        let valid = vectors["valid"].as_array().unwrap();
        assert!(valid.len() >= 4);
        for v in valid {
            // A vector's own purpose, where it names one.
            let purpose =
                v.get("purpose").and_then(Value::as_str).unwrap_or(vectors["purpose"].as_str().unwrap());
            let token = URL_SAFE_NO_PAD.decode(v["token"].as_str().unwrap()).unwrap();
            assert_eq!(u64::from(token[0]), version, "version");
            let p = prefix_len(&token);
            if version == 2 {
                let flags = u64::from(token[1]);
                assert_eq!(flags, v["flags"].as_u64().unwrap());
                assert_eq!(flags & 1 == 1, v["remembered"].as_bool().unwrap(), "flag 0x01: remember-me");
                assert_eq!(flags & 2 == 2, v.get("data_version").is_some(), "flag 0x02: versioned data");
                assert_eq!(flags & 4 == 4, v["device_bound"].as_bool().unwrap(), "flag 0x04: device-bound");
            }
            assert_eq!(
                u64::from(u32::from_be_bytes(token[p - 4..p].try_into().unwrap())),
                v["key_id"].as_u64().unwrap()
            );
            assert_eq!(token[p..p + 24], unhex(v["nonce"].as_str().unwrap())[..]);
            let (plaintext, remembered) =
                open(&vectors, &token, purpose, v.get("data_version").is_some(), true)
                    .expect("vector authenticates");
            assert_eq!(remembered, v["remembered"].as_bool().unwrap(), "the remember-me profile");
            assert_eq!(plaintext, unhex(v["plaintext"].as_str().unwrap()));

            let mut r = Reader(&plaintext);
            let head = head(&mut r).expect("envelope head decodes");
            assert_eq!(head.issued_at, v["issued_at"].as_u64().unwrap());
            assert_eq!(head.expires_at, v["expires_at"].as_u64().unwrap());
            assert_eq!(head.last_seen, v["last_seen"].as_u64().unwrap());
            assert_eq!(head.session_id, unhex(v["session_id"].as_str().unwrap()));
            assert_eq!(head.user_id.as_deref(), v["user_id"].as_str());
            assert_eq!(head.epoch, v["epoch"].as_u64().unwrap());
            let (name, visits) = match v.get("data_version") {
                Some(expected) => {
                    let (data_version, data) = versioned_data(&mut r).expect("versioned data decodes");
                    assert_eq!(data_version, expected.as_u64().unwrap());
                    data
                }
                None => data(&mut r).expect("data decodes with nothing left over"),
            };
            assert_eq!(name, v["data"]["name"].as_str().unwrap());
            assert_eq!(visits, v["data"]["visits"].as_u64().unwrap());
        }
    }
}

#[test]
fn invalid_vectors_that_claim_a_forgery_do_not_authenticate() {
    let mut checked = 0;
    for vectors in files() {
        for v in vectors["invalid"].as_array().unwrap() {
            if v["error"] != "Invalid" {
                continue;
            }
            let purpose =
                v.get("purpose").and_then(Value::as_str).unwrap_or(vectors["purpose"].as_str().unwrap());
            let token = URL_SAFE_NO_PAD.decode(v["token"].as_str().unwrap()).unwrap();
            // A version 2 token whose flags say versioned data is refused
            // unopened by an application whose type is not versioned, and
            // one whose flags name what the vector's opener lacks, by that
            // opener (FORMAT.md, step 5); the others fail authentication,
            // in version 1 under every purpose the opener tries.
            if let Some(opener) = v.get("opener") {
                // Genuine, for all its refusal.
                assert!(open(&vectors, &token, purpose, false, true).is_some(), "{}", v["name"]);
                if token[0] == 1 {
                    let versioned = opener.get("versioned") == Some(&Value::Bool(true));
                    let remember = opener.get("remember_me") != Some(&Value::Bool(false));
                    assert!(open(&vectors, &token, purpose, versioned, remember).is_none(), "{}", v["name"]);
                }
                continue;
            }
            if token[0] == 2 && token[1] & 2 == 2 {
                continue;
            }
            assert!(open(&vectors, &token, purpose, false, true).is_none(), "{}", v["name"]);
            checked += 1;
        }
    }
    assert!(checked >= 15);
}

#[test]
fn invalid_vectors_that_authenticate_fail_where_format_md_says() {
    let mut checked = 0;
    for vectors in files() {
        let purpose = vectors["purpose"].as_str().unwrap();
        for v in vectors["invalid"].as_array().unwrap() {
            let expected = v["error"].as_str().unwrap();
            if expected != "Malformed" && expected != "DataMismatch" {
                continue;
            }
            let Ok(token) = URL_SAFE_NO_PAD.decode(v["token"].as_str().unwrap()) else { continue };
            if token.len() < 45
                || token.len() < prefix_len(&token) + 24 + 16
                || (token[0] == 2 && token[1] & !7 != 0)
            {
                continue;
            }
            let versioned = v.get("opener").and_then(|o| o.get("versioned")) == Some(&Value::Bool(true));
            let (plaintext, _) = open(&vectors, &token, purpose, versioned, true).expect("authenticates");
            let mut r = Reader(&plaintext);
            // The application's type is versioned at the file's
            // `data_version` and migrates no other (FORMAT.md, its introduction).
            let application_version = vectors["data_version"].as_u64().unwrap();
            let field_7 = |r: &mut Reader<'_>| {
                if versioned {
                    match versioned_data(r)? {
                        (version, _) if version == application_version => Ok(()),
                        _ => Err("a data version the application does not read"),
                    }
                } else {
                    data(r).map(drop)
                }
            };
            let got = match head(&mut r) {
                Err(_) => "Malformed",
                Ok(_) => match field_7(&mut r) {
                    Err(_) => "DataMismatch",
                    Ok(()) => "opened",
                },
            };
            assert_eq!(got, expected, "{}", v["name"]);
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked} authenticated malformed vectors");
}
