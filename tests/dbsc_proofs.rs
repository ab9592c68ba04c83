//! DBSC proofs made by an independent implementation (Python's
//! `cryptography`, tests/vectors/make_dbsc_proofs.py, written from the
//! draft and the JOSE RFCs): every valid one verifies, with the key and
//! challenge it carries, and every invalid one is refused for its reason.
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sealed_session::dbsc::{parse_proof, Algorithm, DbscProofError, DevicePublicKey, VerifiedProof};
use serde_json::Value;

fn bytes(value: &Value) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(value.as_str().unwrap()).unwrap()
}

fn key(jwk: &Value) -> DevicePublicKey {
    match jwk["kty"].as_str().unwrap() {
        "EC" => DevicePublicKey::Ec {
            x: bytes(&jwk["x"]).try_into().unwrap(),
            y: bytes(&jwk["y"]).try_into().unwrap(),
        },
        _ => DevicePublicKey::Rsa { n: bytes(&jwk["n"]), e: bytes(&jwk["e"]) },
    }
}

fn check(vector: &Value, keys: &Value) -> Result<VerifiedProof, DbscProofError> {
    let proof = parse_proof(vector["proof"].as_str().unwrap())?;
    if vector["check"] == "refresh" {
        return proof.verify_refresh(&key(&keys[vector["bound_key"].as_str().unwrap()]));
    }
    let offered: Vec<Algorithm> = vector["offered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| if name == "ES256" { Algorithm::Es256 } else { Algorithm::Rs256 })
        .collect();
    proof.verify_registration(&offered, vector["authorization"].as_str())
}

#[test]
fn every_vector_verifies_or_is_refused_for_its_reason() {
    let file: Value = serde_json::from_str(include_str!("vectors/dbsc_proofs.json")).unwrap();
    let vectors = file["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 30);
    for vector in vectors {
        let name = vector["name"].as_str().unwrap();
        match (check(vector, &file["keys"]), vector["expect"].as_str().unwrap()) {
            (Ok(verified), "ok") => {
                assert_eq!(verified.jti, vector["jti"].as_str().unwrap(), "{name}");
                assert_eq!(verified.key.thumbprint(), vector["thumbprint"].as_str().unwrap(), "{name}");
            }
            (Err(err), expected) => {
                let variant = format!("{err:?}");
                let variant = variant.split('(').next().unwrap();
                assert_eq!(variant, expected, "{name}: {err}");
            }
            (Ok(_), expected) => panic!("{name}: verified, expected {expected}"),
        }
    }
}

/// A proof is bound to its exact bytes: any one character changed in any
/// part, and it no longer verifies (or no longer parses).
#[test]
fn no_character_of_a_valid_proof_can_change() {
    let file: Value = serde_json::from_str(include_str!("vectors/dbsc_proofs.json")).unwrap();
    for name in ["es256_registration", "rs256_registration", "es256_refresh", "rs256_refresh"] {
        let vector = file["vectors"].as_array().unwrap().iter().find(|v| v["name"] == name).unwrap();
        let proof = vector["proof"].as_str().unwrap();
        assert!(check(vector, &file["keys"]).is_ok(), "{name}");
        for i in 0..proof.len() {
            let mut changed = proof.to_owned();
            let c = if &proof[i..=i] == "A" { "B" } else { "A" };
            changed.replace_range(i..=i, c);
            let mut altered = vector.clone();
            altered["proof"] = Value::from(changed);
            assert!(
                check(&altered, &file["keys"]).is_err(),
                "{name}: character {i} changed and the proof still verified"
            );
        }
    }
}

#[test]
fn a_key_shows_only_its_algorithm_and_thumbprint() {
    let file: Value = serde_json::from_str(include_str!("vectors/dbsc_proofs.json")).unwrap();
    let key = key(&file["keys"]["es256"]);
    let shown = format!("{key:?}");
    assert!(shown.contains("Es256") && shown.contains(&key.thumbprint()), "{shown}");
    assert!(!shown.contains(file["keys"]["es256"]["x"].as_str().unwrap()), "{shown}");
    // A verified proof shows its key, and not the challenge it answers (a
    // sealed token of the server's).
    let vector =
        file["vectors"].as_array().unwrap().iter().find(|v| v["name"] == "es256_registration").unwrap();
    let verified = check(vector, &file["keys"]).unwrap();
    let shown = format!("{verified:?}");
    assert!(shown.contains(&key.thumbprint()) && !shown.contains(&verified.jti), "{shown}");
}

/// Reading a proof costs no key agreement: an EC key off the curve is
/// read, so that the server can check the challenge it claims first, and
/// only verification refuses the key.
#[test]
fn a_key_off_the_curve_is_refused_by_verification_not_by_reading() {
    let file: Value = serde_json::from_str(include_str!("vectors/dbsc_proofs.json")).unwrap();
    let vector =
        file["vectors"].as_array().unwrap().iter().find(|v| v["name"] == "point_off_the_curve").unwrap();
    let proof = parse_proof(vector["proof"].as_str().unwrap()).unwrap();
    assert!(!proof.claimed_challenge().is_empty());
    let refused = proof.verify_registration(&[Algorithm::Es256], Some("ac")).unwrap_err();
    assert!(matches!(refused, DbscProofError::InvalidKey("not a point of P-256")), "{refused:?}");
}
