//! Device Bound Session Credentials (the W3C WebAppSec draft
//! `w3c/webappsec-dbsc`): the pieces a server needs to bind a session to a
//! key the browser keeps on the device, so that a copied cookie stops
//! working once its short lifetime ends.
//!
//! This module holds the parts that need no session state: reading and
//! verifying the browser's proofs ([`parse_proof`], a compact JWS with
//! `typ` `dbsc+jwt`, ES256 or RS256, never `none`), and writing and reading
//! the structured header fields the draft defines ([`registration_header`],
//! [`challenge_header`], [`parse_string_item`]). The web driver puts them
//! to work: [`WebConfigBuilder::device_bound_sessions`](crate::web::WebConfigBuilder::device_bound_sessions)
//! serves registration and refresh for every framework adapter.
//!
//! ```
//! use sealed_session::dbsc::{challenge_header, registration_header, Algorithm};
//!
//! let offer = registration_header(&[Algorithm::Es256, Algorithm::Rs256], "/dbsc/register", "c1", None);
//! assert_eq!(offer.as_deref(), Some(r#"(ES256 RS256);path="/dbsc/register";challenge="c1""#));
//! assert_eq!(challenge_header("c2", "s 1").as_deref(), Some(r#""c2";id="s 1""#));
//! ```

mod proof;
mod sf;

pub use proof::{
    parse_proof, Algorithm, DbscProofError, DevicePublicKey, UnverifiedProof, VerifiedProof, MAX_PROOF_LEN,
    MAX_RSA_BITS, MIN_RSA_BITS,
};
pub use sf::{parse_string_item, serialize_string, SfError};

/// The `Secure-Session-Registration` value that offers `algorithms` (in
/// order of preference) for a registration at `path`, answering
/// `challenge`, with an `authorization` value the proof must repeat.
/// `None` if a string holds a character outside printable ASCII, which the
/// header cannot carry, or if no algorithm is offered.
#[must_use]
pub fn registration_header(
    algorithms: &[Algorithm],
    path: &str,
    challenge: &str,
    authorization: Option<&str>,
) -> Option<String> {
    if algorithms.is_empty() {
        return None;
    }
    let names: Vec<&str> = algorithms.iter().map(|a| a.name()).collect();
    let mut value = format!(
        "({});path={};challenge={}",
        names.join(" "),
        serialize_string(path)?,
        serialize_string(challenge)?
    );
    if let Some(authorization) = authorization {
        value.push_str(";authorization=");
        value.push_str(&serialize_string(authorization)?);
    }
    Some(value)
}

/// The `Secure-Session-Challenge` value that gives `challenge` to the
/// session `session_id` (with a `403` on a refresh, or on any response).
/// `None` if either holds a character outside printable ASCII.
#[must_use]
pub fn challenge_header(challenge: &str, session_id: &str) -> Option<String> {
    Some(format!("{};id={}", serialize_string(challenge)?, serialize_string(session_id)?))
}
