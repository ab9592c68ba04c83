//! Helpers for tests of applications and integrations: a signed-in session
//! ([`TestSession`]), a request and a response that the driver reads and
//! writes without any framework ([`TestRequest`], [`TestResponse`]), a
//! store that is down ([`UnreachableStore`]), and the key of a browser that
//! binds its sessions ([`DeviceKey`]).

use super::config::WebConfig;
use super::driver::{RequestView, ResponseHeaders};
use super::handle::HandleError;
use crate::{LoginState, RevocationState, RevocationStore, SessionId, StoreError};
use serde::Serialize;

/// A revocation store whose server is down: every call fails with
/// [`StoreError::Unavailable`] (a refused connection), as a real store's
/// does during an outage. For tests of what an application answers then
/// (the web driver: `503`, and no cookie changed).
///
/// ```
/// use sealed_session::web::testing::{TestRequest, UnreachableStore};
/// use sealed_session::web::{Begin, WebConfig};
/// use sealed_session::{Keyring, Sealer};
/// use std::sync::Arc;
///
/// # pollster::block_on(async {
/// let config = Arc::new(WebConfig::builder(Sealer::builder(Keyring::generate()?), UnreachableStore).build()?);
/// // A login form needs no store; a login does.
/// let Begin::Ready(handle) = config.begin(&TestRequest::new("GET", "/login")).await else { panic!() };
/// let err = handle.typed::<()>().login("alice", ()).await.unwrap_err();
/// assert_eq!(err.status(), 503);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct UnreachableStore;

impl UnreachableStore {
    fn refused() -> StoreError {
        StoreError::unavailable(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
    }
}

impl RevocationStore for UnreachableStore {
    async fn state(&self, _: Option<&str>, _: SessionId) -> Result<RevocationState, StoreError> {
        Err(Self::refused())
    }

    async fn login_state(&self, _: &str) -> Result<LoginState, StoreError> {
        Err(Self::refused())
    }

    async fn revoke_user(&self, _: &str) -> Result<u64, StoreError> {
        Err(Self::refused())
    }

    async fn revoke_session(&self, _: SessionId, _: u64) -> Result<(), StoreError> {
        Err(Self::refused())
    }

    async fn revoke_session_once(&self, _: SessionId, _: u64) -> Result<bool, StoreError> {
        Err(Self::refused())
    }

    async fn revoke_all(&self, _: u64) -> Result<u64, StoreError> {
        Err(Self::refused())
    }
}

/// A signed-in session for tests: the headers a browser on the app's own
/// page sends with it (its cookie, its CSRF token, `Sec-Fetch-Site:
/// same-origin`). Its `Debug` shows neither the cookie nor the token.
pub struct TestSession {
    cookie: String,
    csrf_token: String,
    csrf_header: String,
}

impl std::fmt::Debug for TestSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestSession").finish_non_exhaustive()
    }
}

impl TestSession {
    /// Signs `user_id` in with `data`, as a login through `config` would: a
    /// new session ID and the user's current epoch, read from the store.
    ///
    /// # Errors
    /// [`HandleError::Login`] or [`HandleError::Seal`], as a login.
    pub async fn sign_in<S, T>(config: &WebConfig<S>, user_id: &str, data: T) -> Result<Self, HandleError>
    where
        S: RevocationStore,
        T: Serialize,
    {
        let session = config.verifier().login(user_id, data).await?;
        let (verified, set_cookie) = config.verifier().issue_cookie(session, config.cookie())?;
        let cookie = set_cookie.split(';').next().unwrap_or_default().to_owned();
        let csrf_token = config.verifier().sealer().csrf_token(verified.session());
        Ok(Self { cookie, csrf_token, csrf_header: config.csrf_header().to_owned() })
    }

    /// The `Cookie` header value: `name=token`.
    #[must_use]
    pub fn cookie(&self) -> &str {
        &self.cookie
    }

    /// The session's CSRF token.
    #[must_use]
    pub fn csrf_token(&self) -> &str {
        &self.csrf_token
    }

    /// The headers to add to a request, as (name, value): the cookie, the
    /// CSRF token in the configured header, and `Sec-Fetch-Site:
    /// same-origin`.
    #[must_use]
    pub fn headers(&self) -> [(&str, &str); 3] {
        [("cookie", &self.cookie), (&self.csrf_header, &self.csrf_token), ("sec-fetch-site", "same-origin")]
    }
}

/// A request as the driver sees it ([`RequestView`]), built by hand: for
/// tests, and as an example of the trait. Its `Debug` shows header names,
/// never values.
///
/// ```
/// use sealed_session::web::testing::TestRequest;
/// use sealed_session::web::RequestView as _;
///
/// let request = TestRequest::new("POST", "/cart").header("cookie", "a=1").header("Cookie", "b=2");
/// assert_eq!(request.header_values("cookie").count(), 2);
/// assert_eq!(request.authority(), Some("app.example"));
/// ```
#[derive(Clone)]
pub struct TestRequest {
    method: String,
    path: String,
    authority: Option<String>,
    headers: Vec<(String, Vec<u8>)>,
}

impl TestRequest {
    /// A request with `method` to `path` at `app.example`, with no headers.
    #[must_use]
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            authority: Some("app.example".to_owned()),
            headers: Vec::new(),
        }
    }

    /// The request's authority (`host[:port]`), or none.
    #[must_use]
    pub fn with_authority(mut self, authority: Option<&str>) -> Self {
        self.authority = authority.map(str::to_owned);
        self
    }

    /// Adds a header (names are compared without regard to case).
    #[must_use]
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.as_ref().to_vec()));
        self
    }
}

impl std::fmt::Debug for TestRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("headers", &self.headers.iter().map(|(name, _)| name).collect::<Vec<_>>())
            .finish()
    }
}

impl RequestView for TestRequest {
    fn method(&self) -> &str {
        &self.method
    }

    fn path(&self) -> &str {
        &self.path
    }

    fn authority(&self) -> Option<&str> {
        self.authority.as_deref()
    }

    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }

    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }
}

/// Response headers as the driver writes them ([`ResponseHeaders`]), kept
/// in a list: for tests. A header the framework adapters would drop (a
/// value with a line break, say) is dropped here too. Its `Debug` shows
/// header names, never values.
#[derive(Clone, Default)]
pub struct TestResponse {
    headers: Vec<(String, String)>,
}

impl TestResponse {
    /// A response with these headers already (a route's own
    /// `Cache-Control`, say).
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// Every value of the header `name`.
    #[must_use]
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }
}

impl std::fmt::Debug for TestResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestResponse")
            .field("headers", &self.headers.iter().map(|(name, _)| name).collect::<Vec<_>>())
            .finish()
    }
}

impl ResponseHeaders for TestResponse {
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_bytes())
    }

    fn append(&mut self, name: &'static str, value: String) {
        if kept_by_adapters(name, &value) {
            self.headers.push((name.to_owned(), value));
        }
    }

    fn replace(&mut self, name: &'static str, value: String) {
        if kept_by_adapters(name, &value) {
            self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            self.headers.push((name.to_owned(), value));
        }
    }
}

/// Whether the framework adapters would set this header: a name of
/// RFC 9110 token characters, and a value without control characters but
/// tab (what the `http` crate's header types take). One they would not is
/// logged and dropped there, and so here: a test sees what a real
/// response would carry.
fn kept_by_adapters(name: &str, value: &str) -> bool {
    let kept =
        super::config::is_header_name(name) && value.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f));
    if !kept {
        tracing::error!(header = name, "not a header: dropped, as the framework adapters drop it");
    }
    kept
}

/// A device key as a browser with DBSC keeps one per session (a software
/// P-256 key): it signs the proofs (`dbsc+jwt`, ES256) that the
/// registration and refresh endpoints check, for tests of an application's
/// device-bound sessions.
///
/// ```
/// use sealed_session::dbsc::parse_proof;
/// use sealed_session::web::testing::DeviceKey;
///
/// let key = DeviceKey::generate()?;
/// let proof = parse_proof(&key.proof("challenge", true))?;
/// assert_eq!(proof.claimed_challenge(), "challenge");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct DeviceKey {
    pair: ring::signature::EcdsaKeyPair,
    rng: ring::rand::SystemRandom,
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceKey").finish_non_exhaustive()
    }
}

/// A [`DeviceKey`] could not be made or could not sign (the operating
/// system's random source failed).
#[derive(Debug, thiserror::Error)]
#[error("the device key could not be generated or could not sign: the random source failed")]
pub struct DeviceKeyError;

impl DeviceKey {
    /// A new random key.
    ///
    /// # Errors
    /// [`DeviceKeyError`] if the random source fails.
    pub fn generate() -> Result<Self, DeviceKeyError> {
        use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| DeviceKeyError)?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| DeviceKeyError)?;
        Ok(Self { pair, rng })
    }

    /// The public key as a JWK (RFC 7517: `kty`, `crv`, `x`, `y`).
    #[must_use]
    pub fn jwk(&self) -> serde_json::Value {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine as _;
        use ring::signature::KeyPair as _;
        let point = self.pair.public_key().as_ref();
        let coordinate =
            |range: std::ops::Range<usize>| URL_SAFE_NO_PAD.encode(point.get(range).unwrap_or_default());
        serde_json::json!({ "kty": "EC", "crv": "P-256", "x": coordinate(1..33), "y": coordinate(33..65) })
    }

    /// A compact proof that answers `challenge` (its `jti`), with the
    /// public key in its header (`with_key`, for a registration) or without
    /// it (a refresh). An empty string if the random source fails.
    #[must_use]
    pub fn proof(&self, challenge: &str, with_key: bool) -> String {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine as _;
        let header = if with_key {
            serde_json::json!({ "alg": "ES256", "typ": "dbsc+jwt", "jwk": self.jwk() })
        } else {
            serde_json::json!({ "alg": "ES256", "typ": "dbsc+jwt" })
        };
        let payload = serde_json::json!({ "jti": challenge });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload.to_string())
        );
        match self.pair.sign(&self.rng, input.as_bytes()) {
            Ok(signature) => format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref())),
            Err(_) => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As the adapters (through the `http` crate's types) do: a header
    /// name or value they would refuse is dropped, and `replace` with one
    /// leaves the header as it was; a tab or a byte past ASCII is kept.
    #[test]
    fn a_header_the_adapters_would_drop_is_dropped() {
        let mut response = TestResponse::default().with_header("x-kept", "1");
        for bad in ["a\r\nset-cookie: x=1", "a\0b", "a\u{7f}"] {
            ResponseHeaders::append(&mut response, "x-new", bad.to_owned());
            ResponseHeaders::replace(&mut response, "x-kept", bad.to_owned());
        }
        ResponseHeaders::append(&mut response, "bad name", "1".to_owned());
        assert_eq!(response.get_all("x-kept"), ["1"]);
        assert!(response.get_all("x-new").is_empty() && response.get_all("bad name").is_empty());
        ResponseHeaders::append(&mut response, "x-new", "a\tcafé".to_owned());
        assert_eq!(response.get_all("x-new"), ["a\tcafé"]);
    }

    #[test]
    fn every_call_of_the_unreachable_store_fails_as_unavailable() {
        let store = UnreachableStore;
        let id = SessionId::from_bytes([7; 16]);
        let unavailable = |err: StoreError| matches!(err, StoreError::Unavailable(_));
        pollster::block_on(async {
            assert!(store.state(Some("alice"), id).await.is_err_and(unavailable));
            assert!(store.login_state("alice").await.is_err_and(unavailable));
            assert!(store.revoke_user("alice").await.is_err_and(unavailable));
            assert!(store.revoke_session(id, 1).await.is_err_and(unavailable));
            assert!(store.revoke_session_once(id, 1).await.is_err_and(unavailable));
            assert!(store.revoke_all(1).await.is_err_and(unavailable));
        });
    }
}
