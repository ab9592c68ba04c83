//! Oracle: DBSC proofs really signed (ES256, by one of two fixed P-256
//! keys) over header and payload members the fuzzer chooses, so that the
//! parser's JSON and JWK handling and the verifiers' checks past the
//! signature are reached. A proof never verifies under a key that did not
//! sign it, nor after one character of it changed; an accepted
//! registration names the signer's key, the challenge its payload claims
//! and the authorization the server sent, if it sent one; and a well-formed proof (the draft's members, signed by the key
//! its header names, or by the bound key for a refresh) is accepted.
#![no_main]

use std::sync::LazyLock;

use arbitrary::Arbitrary;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use sealed_session::dbsc::{parse_proof, Algorithm, DbscProofError, DevicePublicKey, MAX_PROOF_LEN};
use serde_json::{json, Value};

/// Two P-256 keys made for this target (private scalar, public point):
/// the same keys in every run. ECDSA signs with a random nonce, so a crash
/// that depends on the signature's own bytes may not reproduce.
const SIGNERS: [(&str, &str); 2] = [
    (
        "186d2b6030bd7946c43d5180789913de7bd670aa8bfb1b5939a5b4acde303401",
        "04b518e0cd42adcef4a1bb9b26d33b5eeeccf01711e60819e3f08b653f97760d2d\
         02f04a6cfc7bfb521aee48368f757bf343df3933148ce80376a1bdfe6fb52aae",
    ),
    (
        "9e9bbbfc58e17c9d8fdcda9061a3966f80935af5ae6ede6bd7d1fb7e234ac0f8",
        "0470cbe1c04fa30ae6f7073ee34eac4ce67bf47edc4cfbe6ae81151260f61273df\
         d455e7591f90a99c17d1c7720dca96b74486a03944c29c76b34ee99b19c9aa10",
    ),
];

struct Signer {
    pair: EcdsaKeyPair,
    key: DevicePublicKey,
    x: [u8; 32],
    y: [u8; 32],
}

impl Signer {
    fn jwk(&self) -> Value {
        json!({ "kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(self.x), "y": URL_SAFE_NO_PAD.encode(self.y) })
    }
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

static KEYS: LazyLock<([Signer; 2], SystemRandom)> = LazyLock::new(|| {
    let rng = SystemRandom::new();
    let signer = |(private, public): (&str, &str)| {
        let point = hex(public);
        let pair = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &hex(private),
            &point,
            &rng,
        )
        .unwrap();
        let (x, y): ([u8; 32], [u8; 32]) =
            (point[1..33].try_into().unwrap(), point[33..65].try_into().unwrap());
        Signer { pair, key: DevicePublicKey::Ec { x, y }, x, y }
    };
    ([signer(SIGNERS[0]), signer(SIGNERS[1])], rng)
});

/// A member's name: those the draft and RFC 7515 give meaning, or any.
#[derive(Arbitrary, Debug)]
enum Name {
    Alg,
    Typ,
    Jwk,
    Crit,
    Jti,
    Authorization,
    Other(String),
}

/// A member's value.
#[derive(Arbitrary, Debug)]
enum Member {
    Text(String),
    Es256,
    Rs256,
    DbscJwt,
    Null,
    Bool(bool),
    Number(i64),
    List(Vec<String>),
    /// One of the two signers' JWK.
    SignerJwk(bool),
    /// The first signer's x with the second's y (no point of the curve).
    MixedJwk,
    /// A JWK of the fuzzer's members (base64url of its bytes).
    Jwk {
        kty: Option<String>,
        crv: Option<String>,
        x: Option<Vec<u8>>,
        y: Option<Vec<u8>>,
        n: Option<Vec<u8>>,
        e: Option<Vec<u8>>,
    },
}

impl Member {
    fn json(&self, keys: &[Signer; 2]) -> Value {
        let b64 = |bytes: &Option<Vec<u8>>| bytes.as_ref().map(|b| Value::from(URL_SAFE_NO_PAD.encode(b)));
        match self {
            Self::Text(text) => Value::from(text.as_str()),
            Self::Es256 => Value::from("ES256"),
            Self::Rs256 => Value::from("RS256"),
            Self::DbscJwt => Value::from("dbsc+jwt"),
            Self::Null => Value::Null,
            Self::Bool(b) => Value::from(*b),
            Self::Number(n) => Value::from(*n),
            Self::List(items) => Value::from(items.clone()),
            Self::SignerJwk(second) => keys[usize::from(*second)].jwk(),
            Self::MixedJwk => {
                let mut jwk = keys[0].jwk();
                jwk["y"] = Value::from(URL_SAFE_NO_PAD.encode(keys[1].y));
                jwk
            }
            Self::Jwk { kty, crv, x, y, n, e } => {
                let fields = [
                    ("kty", kty.clone().map(Value::from)),
                    ("crv", crv.clone().map(Value::from)),
                    ("x", b64(x)),
                    ("y", b64(y)),
                    ("n", b64(n)),
                    ("e", b64(e)),
                ];
                Value::Object(fields.into_iter().filter_map(|(k, v)| Some((k.to_owned(), v?))).collect())
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// The draft's members only (and then `jti`, `authorization` and
    /// `with_key` say which), or only the fuzzer's `header` and `payload`.
    well_formed: bool,
    header: Vec<(Name, Member)>,
    payload: Vec<(Name, Member)>,
    /// Signed by the second key rather than the first.
    second_signer: bool,
    /// A registration (the signer's JWK in the header) or a refresh.
    with_key: bool,
    jti: String,
    authorization: Option<String>,
    /// The `authorization` the server sent with its registration offer.
    sent: Option<String>,
    /// One character changed: at this index (modulo the length), XORed
    /// with this (never 0, kept ASCII).
    changed: Option<(u16, u8)>,
}

/// A JSON object's text with `members` in order, duplicates kept.
fn object(members: &[(String, Value)]) -> String {
    let members: Vec<String> =
        members.iter().map(|(name, value)| format!("{}:{value}", Value::from(name.as_str()))).collect();
    format!("{{{}}}", members.join(","))
}

fn named(members: &[(Name, Member)], keys: &[Signer; 2]) -> Vec<(String, Value)> {
    let name = |name: &Name| match name {
        Name::Alg => "alg".to_owned(),
        Name::Typ => "typ".to_owned(),
        Name::Jwk => "jwk".to_owned(),
        Name::Crit => "crit".to_owned(),
        Name::Jti => "jti".to_owned(),
        Name::Authorization => "authorization".to_owned(),
        Name::Other(other) => other.clone(),
    };
    members.iter().map(|(n, m)| (name(n), m.json(keys))).collect()
}

fuzz_target!(|input: Input| {
    let (keys, rng) = &*KEYS;
    let (signer, other) = if input.second_signer { (&keys[1], &keys[0]) } else { (&keys[0], &keys[1]) };
    let (header, payload) = if input.well_formed {
        let mut header = vec![("alg".to_owned(), json!("ES256")), ("typ".to_owned(), json!("dbsc+jwt"))];
        if input.with_key {
            header.push(("jwk".to_owned(), signer.jwk()));
        }
        let mut payload = vec![("jti".to_owned(), Value::from(input.jti.as_str()))];
        if let Some(authorization) = &input.authorization {
            payload.push(("authorization".to_owned(), Value::from(authorization.as_str())));
        }
        (header, payload)
    } else {
        (named(&input.header, keys), named(&input.payload, keys))
    };
    let signing_input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(object(&header)), URL_SAFE_NO_PAD.encode(object(&payload)));
    let signature = signer.pair.sign(rng, signing_input.as_bytes()).unwrap();
    let mut compact = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref())).into_bytes();
    let changed = match input.changed {
        Some((at, by)) if by & 0x7f != 0 => {
            let at = usize::from(at) % compact.len();
            compact[at] ^= by & 0x7f;
            true
        }
        _ => false,
    };
    // ASCII XORed with a byte below 0x80 stays ASCII.
    let compact = String::from_utf8(compact).expect("the proof's text stays ASCII");
    // What the draft's members promise, unchanged and within the size limit.
    let sound = input.well_formed && !changed && compact.len() <= MAX_PROOF_LEN;
    let offered = [Algorithm::Es256, Algorithm::Rs256];

    match parse_proof(&compact) {
        Ok(proof) => {
            let claimed = proof.claimed_challenge().to_owned();
            if sound {
                assert_eq!(claimed, input.jti, "the claimed challenge is the payload's jti");
            }
            match proof.verify_registration(&offered, input.sent.as_deref()) {
                Ok(verified) => {
                    assert!(!changed, "a proof with a character changed verified");
                    assert!(
                        verified.key == signer.key,
                        "a registration verified under a key that did not sign it"
                    );
                    assert_eq!(verified.jti, claimed);
                    if let Some(sent) = &input.sent {
                        let claim = payload.iter().find(|(name, _)| name == "authorization");
                        assert!(
                            claim.is_some_and(|(_, value)| value == sent.as_str()),
                            "a registration verified without the authorization the server sent"
                        );
                    }
                }
                Err(err) => {
                    let authorized = input.sent.is_none() || input.sent == input.authorization;
                    assert!(
                        !(sound && input.with_key && authorized),
                        "a well-formed registration refused: {err}"
                    );
                }
            }
        }
        Err(err) => assert!(!sound, "a well-formed proof did not parse: {err}"),
    }
    // A refresh: verified against the bound key only; a key in the header
    // is told apart (and forgiven by the web driver) only when the bound
    // key signed.
    if let Ok(proof) = parse_proof(&compact) {
        let refused = proof.verify_refresh(&other.key);
        assert!(
            refused.as_ref().is_err_and(|err| !matches!(err, DbscProofError::UnexpectedKey)),
            "a refresh under a key that did not sign it: {refused:?}"
        );
    }
    if let Ok(proof) = parse_proof(&compact) {
        let with_jwk = header.iter().any(|(name, _)| name == "jwk");
        match proof.verify_refresh(&signer.key) {
            Ok(verified) => {
                assert!(!changed, "a refresh with a character changed verified: {verified:?}");
                assert!(!with_jwk, "a refresh with a key in its header verified: {verified:?}");
            }
            // The bound key's signature, with a key in the header.
            Err(DbscProofError::UnexpectedKey) => {
                assert!(
                    !changed && with_jwk,
                    "UnexpectedKey for a proof not signed as sent, or without a key"
                )
            }
            Err(err) => assert!(!sound, "a well-formed refresh refused: {err}"),
        }
    }
});
