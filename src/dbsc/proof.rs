//! The DBSC proof: a compact JWS (`typ` `dbsc+jwt`) signed with the
//! session's device key, parsed strictly and verified with `ring`.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

/// The longest proof accepted, in bytes of its compact form: an RSA key of
/// [`MAX_RSA_BITS`] and its signature fit with room to spare.
pub const MAX_PROOF_LEN: usize = 8192;

/// The smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// The largest RSA modulus accepted, in bits. `ring` verifies up to 8192,
/// but a signature check grows with the square of the modulus: a client
/// that registered an 8192-bit key could make every refresh (and every
/// replay of one) cost 16 times a 2048-bit check. Browsers use P-256, or
/// RSA-2048 where they cannot.
pub const MAX_RSA_BITS: usize = 4096;

/// The signature algorithms a server may offer and a proof may use. The
/// draft's `none` is never accepted: a proof without a signature binds
/// nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    /// ECDSA over P-256 with SHA-256 (the JWS signature is `r ‖ s`).
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, keys of 2048 to 4096 bits.
    Rs256,
}

impl Algorithm {
    /// The JOSE name, as the `alg` header and the registration header's
    /// tokens spell it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(Self::Es256),
            "RS256" => Some(Self::Rs256),
            _ => None,
        }
    }
}

/// A device's public key, from the JWK of its registration proof. Kept in
/// the sealed session identifier; its `Debug` shows the algorithm and the
/// key's RFC 7638 thumbprint only. Deserializing checks an RSA key as a
/// registration does (a modulus of 2048 to 4096 bits, minimal encodings,
/// an odd exponent from 3 to 2^33 - 1): a key kept elsewhere, and read
/// back, cannot make refreshes cost more than one registered.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StoredKey")]
pub enum DevicePublicKey {
    /// A P-256 point, its coordinates big-endian.
    Ec {
        /// The x coordinate.
        x: [u8; 32],
        /// The y coordinate.
        y: [u8; 32],
    },
    /// An RSA key: modulus and public exponent, big-endian, minimal.
    Rsa {
        /// The modulus.
        n: Vec<u8>,
        /// The public exponent.
        e: Vec<u8>,
    },
}

/// [`DevicePublicKey`] as serialized, before its checks.
#[derive(Deserialize)]
enum StoredKey {
    Ec { x: [u8; 32], y: [u8; 32] },
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

impl TryFrom<StoredKey> for DevicePublicKey {
    type Error = DbscProofError;

    fn try_from(stored: StoredKey) -> Result<Self, DbscProofError> {
        match stored {
            StoredKey::Ec { x, y } => Ok(Self::Ec { x, y }),
            StoredKey::Rsa { n, e } => Self::rsa(n, e),
        }
    }
}

impl DevicePublicKey {
    /// An RSA key from its modulus and exponent (big-endian), if they are
    /// minimal, the modulus 2048 to 4096 bits and the exponent odd, from 3
    /// to 2^33 - 1 (what `ring` takes).
    fn rsa(n: Vec<u8>, e: Vec<u8>) -> Result<Self, DbscProofError> {
        let n = minimal(n, "n is not minimal")?;
        let e = minimal(e, "e is not minimal")?;
        let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
        if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
            return Err(DbscProofError::InvalidKey("the modulus is not 2048 to 4096 bits"));
        }
        let odd = e.last().is_some_and(|b| b & 1 == 1);
        let below_2_33 = e.len() < 5 || (e.len() == 5 && e.first().is_some_and(|b| *b <= 1));
        if !odd || !below_2_33 || e == [1] {
            return Err(DbscProofError::InvalidKey("the exponent is not an odd number from 3 to 2^33 - 1"));
        }
        Ok(Self::Rsa { n, e })
    }

    /// The algorithm this key signs with.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::Ec { .. } => Algorithm::Es256,
            Self::Rsa { .. } => Algorithm::Rs256,
        }
    }

    /// The RFC 7638 JWK thumbprint (SHA-256 of the key's required members
    /// in lexicographic order), base64url without padding.
    #[must_use]
    pub fn thumbprint(&self) -> String {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let canonical = match self {
            Self::Ec { x, y } => format!(r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#, b64(x), b64(y)),
            Self::Rsa { n, e } => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b64(e), b64(n)),
        };
        b64(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref())
    }

    /// Whether `signature` is this key's over `message`.
    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Self::Ec { x, y } => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, uncompressed(x, y))
                    .verify(message, signature)
                    .is_ok()
            }
            Self::Rsa { n, e } => RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, signature)
                .is_ok(),
        }
    }
}

impl fmt::Debug for DevicePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevicePublicKey")
            .field("algorithm", &self.algorithm())
            .field("thumbprint", &self.thumbprint())
            .finish()
    }
}

/// Why a DBSC proof was refused. Every variant means "no proof" to the
/// client; the variant is for logs and metrics, and holds nothing secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DbscProofError {
    /// Longer than [`MAX_PROOF_LEN`].
    #[error("the proof is longer than {MAX_PROOF_LEN} bytes")]
    TooLong,
    /// Not three base64url parts (no padding) of JSON header and payload.
    #[error("the proof is not a compact JWS: {0}")]
    Malformed(&'static str),
    /// `typ` is not `dbsc+jwt`.
    #[error("the proof's typ is not dbsc+jwt")]
    WrongType,
    /// `alg` is not ES256 or RS256 (`none` included).
    #[error("the proof's alg is not ES256 or RS256")]
    UnsupportedAlgorithm,
    /// `alg` is one the server did not offer.
    #[error("the proof uses an algorithm the server did not offer")]
    AlgorithmNotOffered,
    /// A registration proof without a `jwk` header, or one for another
    /// algorithm than `alg`.
    #[error("the registration proof carries no key for its algorithm")]
    MissingKey,
    /// A refresh proof with a `jwk` header, which the draft forbids,
    /// though signed by the key bound at registration (a refresh is never
    /// verified with a key the request brings; one another key signed is
    /// [`DbscProofError::BadSignature`]).
    #[error("a refresh proof must not carry a key")]
    UnexpectedKey,
    /// The `jwk` is not a valid key: coordinates not 32 bytes or not a
    /// point of P-256, an RSA modulus outside 2048 to 4096 bits, a bad
    /// exponent, or encodings that are not minimal.
    #[error("the proof's key is not valid: {0}")]
    InvalidKey(&'static str),
    /// The signature is not the key's over the proof.
    #[error("the proof's signature does not verify")]
    BadSignature,
    /// The `authorization` claim differs from the one the server sent, or
    /// is missing though the server sent one.
    #[error("the proof's authorization claim is not the one sent")]
    AuthorizationMismatch,
}

/// A proof read from its compact form, not yet verified: what it claims.
pub struct UnverifiedProof {
    algorithm: Algorithm,
    key: Option<DevicePublicKey>,
    jti: String,
    authorization: Option<String>,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
}

impl fmt::Debug for UnverifiedProof {
    /// The algorithm and the key's thumbprint; not the signature.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UnverifiedProof {{ algorithm: {:?}, key: {:?}, .. }}", self.algorithm, self.key)
    }
}

/// A verified proof: the key that signed it and the challenge it answers.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    /// The key that signed it (the registration's `jwk`, or the bound key).
    pub key: DevicePublicKey,
    /// Its `jti` claim: the challenge it answers. The caller checks that
    /// this server issued it, for this session, and that it is unused.
    pub jti: String,
}

impl fmt::Debug for VerifiedProof {
    /// The key's thumbprint and the challenge's length; not the challenge
    /// (a sealed token of this server's).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifiedProof {{ key: {:?}, jti_len: {} }}", self.key, self.jti.len())
    }
}

#[derive(Deserialize)]
struct Header {
    typ: Option<String>,
    alg: Option<String>,
    /// Absent, or a key: `null` is refused, as the draft's "MUST not be
    /// present" of a refresh proof's `jwk` would otherwise pass it.
    #[serde(default, deserialize_with = "not_null")]
    jwk: Option<Object<Jwk>>,
    /// Extensions the proof says must be understood: none are. Present
    /// at all, even as `null` (RFC 7515 allows only a non-empty array), is
    /// refused.
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

/// A `T` read from a JSON object only: serde's derived structs also take an
/// array of their members in order, which no JWS has.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visitor<T> {
            type Value = Object<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Object<T>, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Object)
            }
        }
        deserializer.deserialize_map(Visitor(std::marker::PhantomData))
    }
}

/// A member that is there: its value, which may not be `null`.
fn not_null<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(member: D) -> Result<Option<T>, D::Error> {
    T::deserialize(member).map(Some)
}

/// Whether a member is there, whatever its value (`null` included, which
/// an `Option` would take for absent).
fn present<'de, D: serde::Deserializer<'de>>(member: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(member).map(|_| true)
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
    /// A private key's members (EC `d`; RSA `d`, `p`, `q`, `dp`, `dq`,
    /// `qi`, `oth`; a symmetric `k`): a key sent with them has leaked, in a
    /// request header, and is refused (RFC 9449 section 4.3 does the same).
    #[serde(default, deserialize_with = "present")]
    d: bool,
    #[serde(default, deserialize_with = "present")]
    p: bool,
    #[serde(default, deserialize_with = "present")]
    q: bool,
    #[serde(default, deserialize_with = "present")]
    dp: bool,
    #[serde(default, deserialize_with = "present")]
    dq: bool,
    #[serde(default, deserialize_with = "present")]
    qi: bool,
    #[serde(default, deserialize_with = "present")]
    oth: bool,
    #[serde(default, deserialize_with = "present")]
    k: bool,
}

#[derive(Deserialize)]
struct Claims {
    jti: Option<String>,
    authorization: Option<String>,
}

/// base64url without padding, canonical (the decoder refuses padding and
/// non-zero trailing bits).
fn b64(part: &str, what: &'static str) -> Result<Vec<u8>, DbscProofError> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| DbscProofError::Malformed(what))
}

/// A big-endian integer's bytes without leading zeros, refused if it had
/// any (JWA: minimal encoding).
fn minimal(bytes: Vec<u8>, what: &'static str) -> Result<Vec<u8>, DbscProofError> {
    match bytes.first() {
        None | Some(0) => Err(DbscProofError::InvalidKey(what)),
        Some(_) => Ok(bytes),
    }
}

impl Jwk {
    fn into_key(self) -> Result<DevicePublicKey, DbscProofError> {
        if self.d || self.p || self.q || self.dp || self.dq || self.qi || self.oth || self.k {
            return Err(DbscProofError::InvalidKey("the jwk holds private key members"));
        }
        match self.kty.as_str() {
            "EC" => {
                if self.crv.as_deref() != Some("P-256") || self.n.is_some() || self.e.is_some() {
                    return Err(DbscProofError::InvalidKey(
                        "an EC key must name crv P-256 and no RSA members",
                    ));
                }
                let coordinate = |value: Option<String>| -> Result<[u8; 32], DbscProofError> {
                    let bytes = b64(value.as_deref().unwrap_or_default(), "a coordinate is not base64url")?;
                    bytes.try_into().map_err(|_| DbscProofError::InvalidKey("a coordinate is not 32 bytes"))
                };
                // Whether it is a point of the curve is asked when the proof
                // is verified, after the cheap checks of its challenge: the
                // question costs a key agreement.
                Ok(DevicePublicKey::Ec { x: coordinate(self.x)?, y: coordinate(self.y)? })
            }
            "RSA" => {
                if self.crv.is_some() || self.x.is_some() || self.y.is_some() {
                    return Err(DbscProofError::InvalidKey("an RSA key must have no EC members"));
                }
                let n = b64(self.n.as_deref().unwrap_or_default(), "n is not base64url")?;
                let e = b64(self.e.as_deref().unwrap_or_default(), "e is not base64url")?;
                DevicePublicKey::rsa(n, e)
            }
            _ => Err(DbscProofError::InvalidKey("kty is not EC or RSA")),
        }
    }
}

/// The SEC 1 uncompressed encoding of a P-256 point.
fn uncompressed(x: &[u8; 32], y: &[u8; 32]) -> Vec<u8> {
    let mut point = Vec::with_capacity(65);
    point.push(4);
    point.extend_from_slice(x);
    point.extend_from_slice(y);
    point
}

/// Whether an EC key is a point of P-256, by asking `ring` to agree on a
/// secret with it (which it refuses for a point off the curve).
fn on_curve(key: &DevicePublicKey) -> bool {
    let DevicePublicKey::Ec { x, y } = key else { return false };
    let point = uncompressed(x, y);
    let rng = ring::rand::SystemRandom::new();
    let Ok(ours) = ring::agreement::EphemeralPrivateKey::generate(&ring::agreement::ECDH_P256, &rng) else {
        return false;
    };
    let theirs = ring::agreement::UnparsedPublicKey::new(&ring::agreement::ECDH_P256, point);
    ring::agreement::agree_ephemeral(ours, &theirs, |_| ()).is_ok()
}

/// Reads a proof from its compact JWS form (the value of the
/// `Secure-Session-Response` header, after its structured-field string is
/// read): three base64url parts without padding, a JSON header with `typ`
/// `dbsc+jwt`, `alg` ES256 or RS256 and optionally `jwk`, and a JSON payload
/// with `jti` and optionally `authorization`. A member read here that is
/// named twice is refused; members not read here are ignored, however often.
///
/// Nothing here costs more than decoding: whether an EC key is a point of
/// P-256 is checked by [`UnverifiedProof::verify_registration`], so that a
/// caller can look at [`UnverifiedProof::claimed_challenge`] first.
///
/// # Errors
/// [`DbscProofError`]: too long, malformed, wrong `typ`, an algorithm other
/// than ES256 and RS256, or an invalid key.
pub fn parse_proof(compact: &str) -> Result<UnverifiedProof, DbscProofError> {
    if compact.len() > MAX_PROOF_LEN {
        return Err(DbscProofError::TooLong);
    }
    let mut parts = compact.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(DbscProofError::Malformed("not three parts"));
    };
    let Object(header): Object<Header> =
        serde_json::from_slice(&b64(header_b64, "the header is not base64url")?).map_err(|_| {
            DbscProofError::Malformed("the header is not a JSON object of the expected members")
        })?;
    let Object(claims): Object<Claims> =
        serde_json::from_slice(&b64(payload_b64, "the payload is not base64url")?).map_err(|_| {
            DbscProofError::Malformed("the payload is not a JSON object of the expected members")
        })?;
    let signature = b64(signature_b64, "the signature is not base64url")?;
    if header.crit {
        return Err(DbscProofError::Malformed("crit names extensions this server does not understand"));
    }
    if header.typ.as_deref() != Some("dbsc+jwt") {
        return Err(DbscProofError::WrongType);
    }
    let algorithm =
        header.alg.as_deref().and_then(Algorithm::from_name).ok_or(DbscProofError::UnsupportedAlgorithm)?;
    let key = header.jwk.map(|Object(jwk)| jwk.into_key()).transpose()?;
    let jti = claims.jti.ok_or(DbscProofError::Malformed("the payload has no jti"))?;
    let signing_input =
        compact.as_bytes().get(..header_b64.len() + 1 + payload_b64.len()).unwrap_or_default().to_vec();
    Ok(UnverifiedProof { algorithm, key, jti, authorization: claims.authorization, signing_input, signature })
}

impl UnverifiedProof {
    /// The challenge the proof claims to answer (its `jti`), before it is
    /// verified: to find which session's challenge to check it against.
    #[must_use]
    pub fn claimed_challenge(&self) -> &str {
        &self.jti
    }

    /// Verifies a registration proof: signed with an algorithm of
    /// `offered` by the key in its own `jwk` header, with the
    /// `authorization` claim equal to `authorization` when the server sent
    /// one (any, or none, when it did not).
    ///
    /// # Errors
    /// [`DbscProofError::InvalidKey`] for an EC key that is not a point of
    /// P-256, [`DbscProofError::AlgorithmNotOffered`],
    /// [`DbscProofError::MissingKey`],
    /// [`DbscProofError::AuthorizationMismatch`] or
    /// [`DbscProofError::BadSignature`].
    pub fn verify_registration(
        self,
        offered: &[Algorithm],
        authorization: Option<&str>,
    ) -> Result<VerifiedProof, DbscProofError> {
        if self.key.as_ref().is_some_and(|key| matches!(key, DevicePublicKey::Ec { .. }) && !on_curve(key)) {
            return Err(DbscProofError::InvalidKey("not a point of P-256"));
        }
        if !offered.contains(&self.algorithm) {
            return Err(DbscProofError::AlgorithmNotOffered);
        }
        let key = self
            .key
            .clone()
            .filter(|key| key.algorithm() == self.algorithm)
            .ok_or(DbscProofError::MissingKey)?;
        // Required only when the server sent one; a claim it did not ask
        // for is allowed (the payload "MUST contain at least" `jti`).
        if authorization.is_some_and(|sent| self.authorization.as_deref() != Some(sent)) {
            return Err(DbscProofError::AuthorizationMismatch);
        }
        self.verify_with(key)
    }

    /// Verifies a refresh proof: signed by `bound` (the key bound at
    /// registration) with its algorithm, and no `jwk` header.
    ///
    /// # Errors
    /// [`DbscProofError::AlgorithmNotOffered`] (another algorithm than the
    /// bound key's), [`DbscProofError::BadSignature`], or, for the bound
    /// key's own signature with a `jwk` header,
    /// [`DbscProofError::UnexpectedKey`]: the device's proof, but not one
    /// the draft allows.
    pub fn verify_refresh(self, bound: &DevicePublicKey) -> Result<VerifiedProof, DbscProofError> {
        if self.algorithm != bound.algorithm() {
            return Err(DbscProofError::AlgorithmNotOffered);
        }
        let with_key = self.key.is_some();
        let verified = self.verify_with(bound.clone())?;
        if with_key {
            return Err(DbscProofError::UnexpectedKey);
        }
        Ok(verified)
    }

    fn verify_with(self, key: DevicePublicKey) -> Result<VerifiedProof, DbscProofError> {
        if !key.verifies(&self.signing_input, &self.signature) {
            return Err(DbscProofError::BadSignature);
        }
        Ok(VerifiedProof { key, jti: self.jti })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registration proof whose header carries an RSA key of 2048 bits
    /// with the exponent `e`; its signature is never checked here.
    fn rsa_proof(e: &[u8]) -> String {
        let mut n = vec![0x80];
        n.resize(256, 0x01);
        let header = serde_json::json!({
            "alg": "RS256",
            "typ": "dbsc+jwt",
            "jwk": { "kty": "RSA", "n": URL_SAFE_NO_PAD.encode(&n), "e": URL_SAFE_NO_PAD.encode(e) },
        });
        let payload = serde_json::json!({ "jti": "c" });
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload.to_string()),
            URL_SAFE_NO_PAD.encode([7u8; 256])
        )
    }

    /// A registration proof whose header carries an RSA key of `bits` bits
    /// (e = 65537); its signature is never checked here.
    fn rsa_proof_of_bits(bits: usize) -> String {
        let mut n = vec![0x80];
        n.resize(bits / 8, 0x01);
        let header = serde_json::json!({
            "alg": "RS256",
            "typ": "dbsc+jwt",
            "jwk": { "kty": "RSA", "n": URL_SAFE_NO_PAD.encode(&n), "e": "AQAB" },
        });
        let payload = serde_json::json!({ "jti": "c" });
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload.to_string()),
            URL_SAFE_NO_PAD.encode(vec![7u8; bits / 8])
        )
    }

    /// Each member of the other key type, alone, makes a key ambiguous.
    #[test]
    fn a_jwk_with_any_member_of_the_other_key_type_is_refused() {
        // P-256's generator: a valid key on its own.
        let (x, y) =
            ("axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY", "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU");
        let mut n = vec![0x80];
        n.resize(256, 0x01);
        let rsa = serde_json::json!({ "kty": "RSA", "n": URL_SAFE_NO_PAD.encode(&n), "e": "AQAB" });
        let ec = serde_json::json!({ "kty": "EC", "crv": "P-256", "x": x, "y": y });
        let cases = [(&rsa, "RS256", ["crv", "x", "y"]), (&ec, "ES256", ["n", "e", "e"])];
        for (jwk, alg, others) in cases {
            let header = serde_json::json!({ "alg": alg, "typ": "dbsc+jwt", "jwk": jwk }).to_string();
            assert!(parse_proof(&proof_of(&header, r#"{"jti":"c"}"#)).is_ok(), "{alg} alone");
            for member in others {
                let mut jwk = jwk.clone();
                jwk[member] = serde_json::json!(if member == "crv" { "P-256" } else { "AQAB" });
                let header = serde_json::json!({ "alg": alg, "typ": "dbsc+jwt", "jwk": jwk }).to_string();
                let refused = parse_proof(&proof_of(&header, r#"{"jti":"c"}"#)).err();
                let members =
                    matches!(&refused, Some(DbscProofError::InvalidKey(why)) if why.contains("members"));
                assert!(members, "{alg} with {member}: {refused:?}");
            }
        }
    }

    #[test]
    fn an_rsa_modulus_must_be_2048_to_4096_bits() {
        for bits in [2048, 3072, 4096] {
            assert!(parse_proof(&rsa_proof_of_bits(bits)).is_ok(), "{bits}");
        }
        for bits in [1024, 4096 + 8, 8192] {
            let refused = parse_proof(&rsa_proof_of_bits(bits)).err();
            assert!(matches!(refused, Some(DbscProofError::InvalidKey(_))), "{bits}: {refused:?}");
        }
    }

    /// A key read back from where it was kept (postcard, as in the sealed
    /// identifier, or JSON) is checked as a registration's: one no
    /// registration takes is refused, whoever wrote it.
    #[test]
    fn a_stored_key_is_checked_as_a_registered_one() {
        let rsa = |n_bytes: usize, e: Vec<u8>| {
            let mut n = vec![0xc5; n_bytes];
            n[n_bytes - 1] = 0x01;
            DevicePublicKey::Rsa { n, e }
        };
        let round_trip = |key: &DevicePublicKey| {
            let bytes = postcard::to_stdvec(key).unwrap();
            let json = serde_json::to_string(key).unwrap();
            (postcard::from_bytes::<DevicePublicKey>(&bytes), serde_json::from_str::<DevicePublicKey>(&json))
        };
        for key in
            [rsa(256, vec![1, 0, 1]), rsa(512, vec![3]), DevicePublicKey::Ec { x: [1; 32], y: [2; 32] }]
        {
            let (postcard, json) = round_trip(&key);
            assert_eq!(postcard.ok().as_ref(), Some(&key));
            assert_eq!(json.ok().as_ref(), Some(&key));
        }
        let mut padded = rsa(256, vec![1, 0, 1]);
        if let DevicePublicKey::Rsa { n, .. } = &mut padded {
            n.insert(0, 0);
        }
        for key in
            [rsa(1024, vec![1, 0, 1]), rsa(128, vec![1, 0, 1]), rsa(256, vec![2]), rsa(256, vec![1]), padded]
        {
            let (postcard, json) = round_trip(&key);
            assert!(postcard.is_err(), "{key:?}");
            let refused = json.expect_err("an unchecked key");
            assert!(refused.to_string().contains("the proof's key is not valid"), "{refused}");
        }
    }

    #[test]
    fn a_crit_member_is_refused_whatever_its_value() {
        for crit in ["null", "[]", r#"["b64"]"#, "0"] {
            let header = format!(r#"{{"alg":"ES256","typ":"dbsc+jwt","crit":{crit}}}"#);
            let proof = format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode(header),
                URL_SAFE_NO_PAD.encode(r#"{"jti":"c"}"#),
                URL_SAFE_NO_PAD.encode([7u8; 64])
            );
            match parse_proof(&proof) {
                Err(DbscProofError::Malformed(why)) => assert!(why.contains("crit"), "{crit}: {why}"),
                Err(other) => panic!("{crit}: {other}"),
                Ok(_) => panic!("{crit}: parsed"),
            }
        }
    }

    /// A proof of `header` and `payload` (JSON texts), never verified here.
    fn proof_of(header: &str, payload: &str) -> String {
        let encode = |text: &str| URL_SAFE_NO_PAD.encode(text);
        format!("{}.{}.{}", encode(header), encode(payload), URL_SAFE_NO_PAD.encode([7u8; 64]))
    }

    /// The parts are JSON objects; serde's derived structs would also
    /// take an array of the members in order.
    #[test]
    fn a_header_payload_or_jwk_that_is_no_object_is_refused() {
        let ec = r#"{"kty":"EC","crv":"P-256","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#;
        let header = format!(r#"{{"alg":"ES256","typ":"dbsc+jwt","jwk":{ec}}}"#);
        let parsed = parse_proof(&proof_of(&header, r#"{"jti":"c"}"#));
        assert!(!matches!(parsed, Err(DbscProofError::Malformed(_))), "the object form: {:?}", parsed.err());
        for (header, payload) in [
            (r#"["dbsc+jwt","ES256"]"#.to_owned(), r#"{"jti":"c"}"#),
            (r#"{"alg":"ES256","typ":"dbsc+jwt"}"#.to_owned(), r#"["c",null]"#),
            (
                r#"{"alg":"ES256","typ":"dbsc+jwt","jwk":["EC","P-256","AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",null,null]}"#.to_owned(),
                r#"{"jti":"c"}"#,
            ),
        ] {
            let refused = parse_proof(&proof_of(&header, payload)).err();
            assert!(matches!(refused, Some(DbscProofError::Malformed(_))), "{header} {payload}: {refused:?}");
        }
    }

    /// A key sent with its private members has leaked.
    #[test]
    fn a_jwk_with_private_members_is_refused() {
        let ec = r#""kty":"EC","crv":"P-256","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA""#;
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            let header = format!(r#"{{"alg":"ES256","typ":"dbsc+jwt","jwk":{{{ec},"{private}":"AQAB"}}}}"#);
            match parse_proof(&proof_of(&header, r#"{"jti":"c"}"#)) {
                Err(DbscProofError::InvalidKey(why)) => assert!(why.contains("private"), "{private}: {why}"),
                other => panic!("{private}: {:?}", other.err()),
            }
        }
    }

    #[test]
    fn a_null_jwk_is_no_absent_jwk() {
        let header = r#"{"alg":"ES256","typ":"dbsc+jwt","jwk":null}"#;
        let proof = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(r#"{"jti":"c"}"#),
            URL_SAFE_NO_PAD.encode([7u8; 64])
        );
        assert!(matches!(parse_proof(&proof).err(), Some(DbscProofError::Malformed(_))));
    }

    #[test]
    fn an_rsa_exponent_must_be_odd_and_from_3_to_2_pow_33() {
        for e in [&[3u8][..], &[1, 0, 1], &[1, 255, 255, 255, 255]] {
            assert!(parse_proof(&rsa_proof(e)).is_ok(), "{e:?}");
        }
        for e in [&[1u8][..], &[4], &[1, 0, 0], &[2, 0, 0, 0, 1]] {
            let refused = parse_proof(&rsa_proof(e)).err();
            assert!(matches!(refused, Some(DbscProofError::InvalidKey(_))), "{e:?}: {refused:?}");
        }
    }
}
