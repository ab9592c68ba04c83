//! Device-bound sessions end to end, through the web driver, with a client
//! that follows the W3C draft (`w3c/webappsec-dbsc`, spec.bs) as a browser
//! would: it reads `Secure-Session-Registration`, signs `dbsc+jwt` proofs
//! with a software P-256 key (ring; RSA keys from fixtures for RS256),
//! registers, keeps the session's instructions, and refreshes whenever the
//! bound cookie is missing (on `403` it answers the
//! `Secure-Session-Challenge`; on `{"continue": false}` or another 4xx it
//! ends the session). Time is a manual clock.

// Tests may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

#[path = "support/logs.rs"]
mod logs;
#[path = "support/recorder.rs"]
mod recorder;
#[path = "support/unheard.rs"]
mod unheard;

use recorder::Recorder;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sealed_session::web::testing::{DeviceKey, TestRequest, TestResponse};
use sealed_session::web::{
    AuditKind, Begin, DeviceBinding, LimitPolicy, SessionRef, WebConfig, WebConfigBuilder,
};
use sealed_session::{
    KeySpec, KeyState, Keyring, LoginState, ManualClock, MasterKey, MemoryStore, RevocationState,
    RevocationStore, Sealer, SessionId, SharedKeyring, SharedStore, StoreError,
};

/// A fixed start, far from today's date: nothing here reads the system clock.
const START: i64 = 2_000_000_000;
const LIFETIME: u64 = 600;
const IDLE: u64 = 1800;
const DAY: u64 = 86_400;
/// SECURITY.md: "challenges live 5 minutes".
const CHALLENGE_LIFETIME: Duration = Duration::from_secs(300);

type Config = Arc<WebConfig<SharedStore>>;

/// A memory store that answers as one across a network would: every call
/// lets other requests run once before it answers, so that concurrent
/// requests interleave their reads and writes.
struct Remote(MemoryStore);

/// Returns `Pending` once (waking itself), then `Ready`.
async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if std::mem::replace(&mut yielded, true) {
            std::task::Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}

thread_local! {
    /// While set, [`Remote`] reads every user's epoch one lower (for the
    /// test on this thread only): a bump the store lost.
    static LOST_BUMP: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// While set, [`Remote`] fails every one-time denial (for the test on
    /// this thread only): what ends a session to make room.
    static ONCE_FAILS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl RevocationStore for Remote {
    async fn state(&self, user_id: Option<&str>, session: SessionId) -> Result<RevocationState, StoreError> {
        yield_once().await;
        let mut state = self.0.state(user_id, session).await?;
        if LOST_BUMP.with(std::cell::Cell::get) {
            state.user_epoch = state.user_epoch.saturating_sub(1);
        }
        Ok(state)
    }

    async fn login_state(&self, user_id: &str) -> Result<LoginState, StoreError> {
        yield_once().await;
        self.0.login_state(user_id).await
    }

    async fn revoke_user(&self, user_id: &str) -> Result<u64, StoreError> {
        yield_once().await;
        self.0.revoke_user(user_id).await
    }

    async fn revoke_session(&self, session: SessionId, expires_at: u64) -> Result<(), StoreError> {
        yield_once().await;
        self.0.revoke_session(session, expires_at).await
    }

    async fn revoke_session_once(&self, session: SessionId, expires_at: u64) -> Result<bool, StoreError> {
        yield_once().await;
        if ONCE_FAILS.with(std::cell::Cell::get) {
            return Err(StoreError::unavailable(std::io::Error::from(std::io::ErrorKind::TimedOut)));
        }
        self.0.revoke_session_once(session, expires_at).await
    }

    async fn revoke_all(&self, issued_through: u64) -> Result<u64, StoreError> {
        yield_once().await;
        self.0.revoke_all(issued_through).await
    }
}

/// The call `call` makes, made after a turn of the executor, as across a
/// network.
fn after_a_turn<'a, T: 'a>(
    call: impl FnOnce() -> sealed_session::BoxFuture<'a, T> + Send + 'a,
) -> sealed_session::BoxFuture<'a, T> {
    Box::pin(async move {
        yield_once().await;
        call().await
    })
}

impl sealed_session::SessionRegistry for Remote {
    fn record<'a>(
        &'a self,
        record: &'a sealed_session::SessionRecord,
    ) -> sealed_session::BoxFuture<'a, Result<(), StoreError>> {
        after_a_turn(move || sealed_session::SessionRegistry::record(&self.0, record))
    }

    fn remove<'a>(
        &'a self,
        user: &'a str,
        id: SessionId,
    ) -> sealed_session::BoxFuture<'a, Result<(), StoreError>> {
        after_a_turn(move || sealed_session::SessionRegistry::remove(&self.0, user, id))
    }

    fn remove_user<'a>(&'a self, user: &'a str) -> sealed_session::BoxFuture<'a, Result<(), StoreError>> {
        after_a_turn(move || sealed_session::SessionRegistry::remove_user(&self.0, user))
    }

    fn list<'a>(
        &'a self,
        user: &'a str,
        now: u64,
    ) -> sealed_session::BoxFuture<'a, Result<Vec<sealed_session::SessionRecord>, StoreError>> {
        after_a_turn(move || sealed_session::SessionRegistry::list(&self.0, user, now))
    }
}

fn config(clock: &ManualClock, binding: DeviceBinding) -> Config {
    config_with(clock, binding, |builder| builder)
}

fn config_with(
    clock: &ManualClock,
    binding: DeviceBinding,
    change: impl FnOnce(WebConfigBuilder<SharedStore>) -> WebConfigBuilder<SharedStore>,
) -> Config {
    config_on(Keyring::generate().unwrap(), clock, binding, change)
}

/// [`config_with`] on `keyring`.
fn config_on(
    keyring: impl Into<SharedKeyring>,
    clock: &ManualClock,
    binding: DeviceBinding,
    change: impl FnOnce(WebConfigBuilder<SharedStore>) -> WebConfigBuilder<SharedStore>,
) -> Config {
    let store: SharedStore = Arc::new(Remote(MemoryStore::with_clock(clock.clone())));
    config_on_store(keyring, clock, binding, store, change)
}

/// [`config_on`] with `store`.
fn config_on_store(
    keyring: impl Into<SharedKeyring>,
    clock: &ManualClock,
    binding: DeviceBinding,
    store: SharedStore,
    change: impl FnOnce(WebConfigBuilder<SharedStore>) -> WebConfigBuilder<SharedStore>,
) -> Config {
    let sealer = Sealer::builder(keyring)
        .clock(clock.clone())
        .idle_timeout(Duration::from_secs(IDLE))
        .absolute_timeout(Duration::from_secs(4 * 3600))
        .remember_me(Duration::from_secs(30 * DAY), Duration::from_secs(7 * DAY));
    Arc::new(
        change(WebConfig::builder(sealer, store))
            .device_bound_sessions(binding.bound_lifetime(Duration::from_secs(LIFETIME)))
            .build()
            .unwrap(),
    )
}

/// What a server answered.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }
}

/// The application behind the driver: a few routes.
async fn serve(config: &Config, request: TestRequest) -> Reply {
    let handle = match config.begin(&request).await {
        Begin::Ready(handle) => handle,
        Begin::Answer(answer) => {
            let headers: Vec<(String, String)> =
                answer.headers().map(|(n, v)| (n.to_owned(), v.to_owned())).collect();
            // Every DBSC answer, whatever its status, in every test here:
            // never stored, framed or readable cross-origin.
            let guards = [
                ("cache-control", "no-store"),
                ("x-frame-options", "DENY"),
                ("cross-origin-resource-policy", "same-origin"),
            ];
            for (name, value) in guards {
                let found =
                    headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
                assert_eq!(found, [value], "{} answer: {headers:?}", answer.status());
            }
            assert!(!headers.iter().any(|(n, _)| n.starts_with("access-control-")), "{headers:?}");
            return Reply { status: answer.status(), headers, body: answer.body().to_owned() };
        }
        Begin::Refuse(refusal) => {
            return Reply { status: refusal.status(), headers: Vec::new(), body: refusal.body().to_owned() }
        }
        Begin::ReadForm(_) => panic!("no form in these tests"),
    };
    let sessions = handle.typed::<String>();
    let path = sealed_session::web::RequestView::path(&request).to_owned();
    let (status, body) = match path.as_str() {
        "/login" => match sessions.login("alice", "first".to_owned()).await {
            Ok(_) => (200, "signed in".to_owned()),
            Err(err) => (err.status(), err.body().to_owned()),
        },
        "/login-remembered" => {
            let remember = sealed_session::web::LoginOptions::default().remember(true);
            sessions.login_with_options("alice", remember, |_| "first".to_owned()).await.unwrap();
            (200, "signed in".to_owned())
        }
        "/whoami" => match sessions.current() {
            Some(current) => (
                200,
                format!(
                    "{} {} bound={}",
                    current.user_id().unwrap(),
                    current.data(),
                    handle.is_device_bound()
                ),
            ),
            None => (401, "no session".to_owned()),
        },
        "/update" => match sessions.update(|data| *data = "second".to_owned()) {
            Ok(()) => (200, "updated".to_owned()),
            Err(err) => (err.status(), err.body().to_owned()),
        },
        grow if grow.starts_with("/grow/") => {
            let len: usize = grow["/grow/".len()..].parse().unwrap();
            match sessions.update(|data| *data = "x".repeat(len)) {
                Ok(()) => (200, "updated".to_owned()),
                Err(err) => (err.status(), err.body().to_owned()),
            }
        }
        "/reauth" => match sessions.reauthenticate().await {
            Ok(_) => (200, "reauthenticated".to_owned()),
            Err(err) => (err.status(), err.body().to_owned()),
        },
        "/renew" => match handle.renew_id().await {
            Ok(()) => (200, "renewed".to_owned()),
            Err(err) => (err.status(), err.body().to_owned()),
        },
        "/logout" => {
            handle.logout().await.unwrap();
            (200, "logged out".to_owned())
        }
        "/logout-everywhere" => {
            handle.logout_everywhere().await.unwrap();
            (200, "logged out everywhere".to_owned())
        }
        _ => (200, "a page".to_owned()),
    };
    let mut response = TestResponse::default();
    handle.finish().write_to(&mut response);
    let headers = ["set-cookie", "cache-control", "secure-session-registration"]
        .iter()
        .flat_map(|name| response.get_all(name).into_iter().map(|v| ((*name).to_owned(), v.to_owned())))
        .collect();
    Reply { status, headers, body }
}

/// An RFC 9651 sf-string, as the client sends one.
fn sf_string(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Asserts that `body` ends the browser's session `identifier`
/// (`continue: false`, naming the session, as Chrome reads it first).
fn assert_ends(body: &str, identifier: &str) {
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json, serde_json::json!({ "session_identifier": identifier, "continue": false }), "{body}");
}

/// The parameters of the first member of a structured list whose item (or
/// inner list) is followed by `;key="value"` parameters: enough for the
/// draft's two response headers, whose strings hold no `"` or `;`.
fn sf_params(field: &str) -> (String, BTreeMap<String, String>) {
    let mut parts = field.split(';');
    let item = parts.next().unwrap().trim().to_owned();
    let params = parts
        .map(|param| {
            let (key, value) = param.split_once('=').unwrap();
            (key.trim().to_owned(), value.trim().trim_matches('"').to_owned())
        })
        .collect();
    (item, params)
}

/// A browser's view of one device-bound session (spec.bs, "device bound
/// session"): its identifier, refresh URL, the cookie it guards, and the
/// cached challenge.
#[derive(Debug, Clone)]
struct BoundSession {
    identifier: String,
    refresh_url: String,
    credential: String,
    cached_challenge: Option<String>,
}

/// A cookie in the jar: its value and when it goes (Unix seconds).
#[derive(Debug, Clone)]
struct Cookie {
    value: String,
    expires: Option<i64>,
}

/// A browser's device key: the testing module's P-256 key (ES256), or an
/// RSA key (RS256) from a fixture, as ring cannot generate RSA keys. The
/// fixtures were made with `openssl genpkey -algorithm RSA -pkeyopt
/// rsa_keygen_bits:BITS -outform DER`, then
/// `openssl pkcs8 -topk8 -nocrypt -inform DER -outform DER`; they sign
/// nothing but these tests.
enum TestKey {
    Ec(DeviceKey),
    Rsa(ring::signature::RsaKeyPair),
}

impl TestKey {
    fn rsa(pkcs8: &[u8]) -> Self {
        Self::Rsa(ring::signature::RsaKeyPair::from_pkcs8(pkcs8).unwrap())
    }

    /// As `DeviceKey::proof`: a compact `dbsc+jwt` answering `challenge`,
    /// with the public key in its header for a registration.
    fn proof(&self, challenge: &str, with_key: bool) -> String {
        match self {
            Self::Ec(key) => key.proof(challenge, with_key),
            Self::Rsa(pair) => rs256_proof(pair, challenge, with_key),
        }
    }
}

fn rs256_proof(pair: &ring::signature::RsaKeyPair, challenge: &str, with_key: bool) -> String {
    let public = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(pair.public());
    let mut header = serde_json::json!({ "alg": "RS256", "typ": "dbsc+jwt" });
    if with_key {
        header["jwk"] = serde_json::json!({
            "kty": "RSA",
            "n": URL_SAFE_NO_PAD.encode(&public.n),
            "e": URL_SAFE_NO_PAD.encode(&public.e),
        });
    }
    let payload = serde_json::json!({ "jti": challenge });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let mut signature = vec![0; pair.public().modulus_len()];
    let rng = ring::rand::SystemRandom::new();
    pair.sign(&ring::signature::RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut signature).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// A browser with DBSC: a cookie jar on the manual clock, a device key,
/// and its device-bound sessions.
struct Browser {
    config: Config,
    clock: ManualClock,
    jar: BTreeMap<String, Cookie>,
    key: TestKey,
    session: Option<BoundSession>,
    /// Use the draft's earlier header names for proofs and session IDs.
    legacy_header: bool,
    /// Send the session ID and the proofs as sf-strings, as spec.bs writes
    /// them; Chrome sends both bare (`registration_fetcher.cc`), and so does
    /// this browser by default.
    quoted: bool,
    /// Registration and refresh requests made, for the tests' counts.
    refreshes: usize,
}

impl Browser {
    fn new(config: &Config, clock: &ManualClock) -> Self {
        Self {
            config: Arc::clone(config),
            clock: clock.clone(),
            jar: BTreeMap::new(),
            key: TestKey::Ec(DeviceKey::generate().unwrap()),
            session: None,
            legacy_header: false,
            quoted: false,
            refreshes: 0,
        }
    }

    fn now(&self) -> i64 {
        sealed_session::Clock::unix_now(&self.clock)
    }

    fn cookie_header(&mut self) -> String {
        let now = self.now();
        self.jar.retain(|_, cookie| cookie.expires.is_none_or(|expires| expires > now));
        self.jar
            .iter()
            .map(|(name, cookie)| format!("{name}={}", cookie.value))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn store_cookies(&mut self, reply: &Reply) {
        for set_cookie in reply.all("set-cookie") {
            let mut parts = set_cookie.split(';');
            let (name, value) = parts.next().unwrap().split_once('=').unwrap();
            let max_age = parts
                .find_map(|attr| attr.trim().strip_prefix("Max-Age=").map(|v| v.parse::<i64>().unwrap()));
            if max_age == Some(0) {
                self.jar.remove(name);
            } else {
                let expires = max_age.map(|age| self.now() + age);
                self.jar.insert(name.to_owned(), Cookie { value: value.to_owned(), expires });
            }
        }
    }

    async fn send(&mut self, request: TestRequest) -> Reply {
        let cookies = self.cookie_header();
        let request = if cookies.is_empty() { request } else { request.header("cookie", cookies) };
        let reply = serve(&self.config, request).await;
        self.store_cookies(&reply);
        self.cache_challenge(&reply);
        reply
    }

    /// spec.bs, "Cache challenge", run on every response: a
    /// `Secure-Session-Challenge` for this browser's session is kept for
    /// its next proof.
    fn cache_challenge(&mut self, reply: &Reply) {
        let Some(header) = reply.header("secure-session-challenge") else { return };
        let (challenge, params) = sf_params(header);
        if let Some(session) = self.session.as_mut().filter(|s| params["id"] == s.identifier) {
            session.cached_challenge = Some(challenge.trim_matches('"').to_owned());
        }
    }

    /// Signs in (`GET /login`) without registering, and returns the offer
    /// of binding the login made.
    async fn login_offer(&mut self) -> String {
        let login = self.send(TestRequest::new("GET", "/login")).await;
        login.header("secure-session-registration").expect("a login offers binding").to_owned()
    }

    /// A navigation: first a refresh if the bound cookie is missing (the
    /// request is deferred until it is done), then the request, then a
    /// registration if the response offered one.
    async fn get(&mut self, path: &str) -> Reply {
        self.refresh_if_missing().await;
        let reply = self.send(TestRequest::new("GET", path)).await;
        if let Some(offer) = reply.header("secure-session-registration") {
            self.register(offer).await;
        }
        reply
    }

    async fn refresh_if_missing(&mut self) {
        let Some(session) = self.session.clone() else { return };
        self.cookie_header(); // drops expired cookies
        if !self.jar.contains_key(&session.credential) {
            self.refresh().await;
        }
    }

    /// A session ID or proof as this browser sends it.
    fn value(&self, text: &str) -> String {
        if self.quoted {
            sf_string(text)
        } else {
            text.to_owned()
        }
    }

    fn proof_header(&self) -> &'static str {
        if self.legacy_header {
            "sec-session-response"
        } else {
            "secure-session-response"
        }
    }

    /// spec.bs, "Send request" for a registration.
    async fn register(&mut self, offer: &str) {
        let (algorithms, params) = sf_params(offer);
        assert_eq!(algorithms, "(ES256 RS256)");
        let reply = self.send_registration(&params["path"], &params["challenge"]).await;
        self.refreshes += 1;
        assert_eq!(reply.status, 200, "registration: {}", reply.body);
        self.create_session(&reply);
    }

    /// A registration request to `path` with a proof of `challenge`, its
    /// key in the header.
    async fn send_registration(&mut self, path: &str, challenge: &str) -> Reply {
        let proof = self.key.proof(challenge, true);
        self.send(TestRequest::new("POST", path).header(self.proof_header(), self.value(&proof))).await
    }

    /// spec.bs, "Create session": the JSON session instructions.
    fn create_session(&mut self, reply: &Reply) {
        let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        if json["continue"] == serde_json::json!(false) {
            self.session = None;
            return;
        }
        let credentials = json["credentials"].as_array().unwrap();
        assert_eq!(credentials.len(), 1);
        assert_eq!(credentials[0]["type"], "cookie");
        assert_eq!(credentials[0]["attributes"], "Path=/; Secure; HttpOnly; SameSite=Lax");
        assert!(json["scope"]["include_site"].is_boolean(), "include_site must be present");
        self.session = Some(BoundSession {
            identifier: json["session_identifier"].as_str().unwrap().to_owned(),
            refresh_url: json["refresh_url"].as_str().unwrap().to_owned(),
            credential: credentials[0]["name"].as_str().unwrap().to_owned(),
            cached_challenge: None,
        });
        self.cache_challenge(reply);
    }

    /// spec.bs, "Send request" for a refresh: with the cached challenge if
    /// there is one; on 403, cache the challenge and try again.
    async fn refresh(&mut self) -> Reply {
        let mut last = None;
        // The draft restarts on every `403` (Chrome, on up to five
        // challenges a refresh); three tries here: one without a challenge,
        // one whose companion's session had ended, and its retry.
        for _ in 0..3 {
            let Some(session) = self.session.clone() else { break };
            let id_header = if self.legacy_header { "sec-session-id" } else { "sec-secure-session-id" };
            let mut request = TestRequest::new("POST", &session.refresh_url)
                .header(id_header, self.value(&session.identifier));
            if let Some(challenge) = &session.cached_challenge {
                request = request.header(self.proof_header(), self.value(&self.key.proof(challenge, false)));
            }
            let reply = self.send(request).await;
            self.refreshes += 1;
            match reply.status {
                403 => {
                    // `send` cached the challenge; a 403 without one for
                    // this session would make the browser retry in vain.
                    let (_, params) = sf_params(reply.header("secure-session-challenge").unwrap());
                    assert_eq!(params["id"], session.identifier);
                }
                200 if reply.body.is_empty() => return reply,
                200 => {
                    self.create_session(&reply);
                    return reply;
                }
                400..=499 => {
                    self.session = None;
                    return reply;
                }
                _ => return reply,
            }
            last = Some(reply);
        }
        last.unwrap()
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.jar.get(name).map(|c| c.value.clone())
    }

    /// A refresh request made by hand as this browser would make it: its
    /// session's identifier and companion cookie, and a proof of
    /// `challenge` (an sf-string or its content) signed with its key, if
    /// given.
    fn refresh_request(&self, challenge: Option<&str>) -> TestRequest {
        let session = self.session.as_ref().unwrap();
        let companion = self.cookie("__Host-session-dbsc").unwrap();
        let request = TestRequest::new("POST", "/dbsc/refresh")
            .header("sec-secure-session-id", self.value(&session.identifier))
            .header("cookie", format!("__Host-session-dbsc={companion}"));
        match challenge {
            Some(challenge) => request.header(
                "secure-session-response",
                self.value(&self.key.proof(challenge.trim_matches('"'), false)),
            ),
            None => request,
        }
    }
}

/// A browser with a new key, on a new configuration with `binding`, on a
/// clock at `START`.
fn browser_for(binding: DeviceBinding) -> (ManualClock, Config, Browser) {
    let clock = ManualClock::at_unix(START);
    let config = config(&clock, binding);
    let browser = Browser::new(&config, &clock);
    (clock, config, browser)
}

/// A clock at the start, the default configuration, and a browser that
/// signed in and bound its session.
async fn bound_browser() -> (ManualClock, Config, Browser) {
    let (clock, config, mut browser) = browser_for(DeviceBinding::default());
    browser.get("/login").await;
    (clock, config, browser)
}

async fn whoami(config: &Config, cookie: &str) -> Reply {
    serve(config, TestRequest::new("GET", "/whoami").header("cookie", format!("__Host-session={cookie}")))
        .await
}

fn run<F: std::future::Future>(future: F) -> F::Output {
    pollster::block_on(future)
}

#[test]
fn a_login_offers_binding_and_registration_binds_the_session() {
    run(async {
        let (clock, config, mut browser) = browser_for(DeviceBinding::default());
        let offer = browser.login_offer().await;
        let unbound = browser.cookie("__Host-session").unwrap();
        assert_eq!(whoami(&config, &unbound).await.body, "alice first bound=false");
        let sealer = config.verifier().sealer();
        assert_eq!(sealer.device_bound_lifetime(), Some(Duration::from_secs(LIFETIME)));

        browser.register(&offer).await;
        let bound = browser.cookie("__Host-session").unwrap();
        assert_ne!(bound, unbound);
        assert_eq!(whoami(&config, &bound).await.body, "alice first bound=true");
        // Registration upgrades the session: the unbound cookie is dead.
        assert_eq!(whoami(&config, &unbound).await.status, 401);
        // The instructions name the session cookie with its attributes.
        let session = browser.session.clone().unwrap();
        assert_eq!(session.credential, "__Host-session");
        assert_eq!(session.refresh_url, "/dbsc/refresh");
        // The bound cookie is short-lived in its Max-Age (which ends a tenth
        // early, so that the browser refreshes in time)...
        let set = browser.jar.get("__Host-session").unwrap();
        assert_eq!(set.expires, Some(START + (LIFETIME - LIFETIME / 10) as i64));
        // ...and in its sealed expiry: a copy kept past it stops opening.
        clock.advance(Duration::from_secs(LIFETIME - 1));
        assert_eq!(whoami(&config, &bound).await.status, 200);
        clock.advance(Duration::from_secs(1));
        assert_eq!(
            whoami(&config, &bound).await.status,
            401,
            "a copied bound cookie is dead after its lifetime"
        );
    });
}

#[test]
fn the_device_refreshes_its_cookie_with_a_proof_and_a_stolen_copy_does_not() {
    run(async {
        let (clock, config, mut browser) = bound_browser().await;
        let stolen = browser.cookie("__Host-session").unwrap();
        let stolen_companion = browser.cookie("__Host-session-dbsc").unwrap();
        for _ in 0..5 {
            clock.advance(Duration::from_secs(LIFETIME + 1));
            let reply = browser.get("/whoami").await;
            assert_eq!(reply.body, "alice first bound=true", "the device keeps its session by refreshing");
        }
        // 1 registration, then one request per refresh: each response
        // brought the challenge of the next one.
        assert_eq!(browser.refreshes, 1 + 5);
        // The thief's copies: the bound cookie is dead, and the companion
        // cookie alone opens no session.
        assert_eq!(whoami(&config, &stolen).await.status, 401);
        let companion_as_session = whoami(&config, &stolen_companion).await;
        assert_eq!(companion_as_session.status, 401);
        // Not even as bytes: the companion and the identifier are sealed
        // under purposes of their own.
        let sealer = config.verifier().sealer();
        assert_eq!(sealer.open_raw(&stolen_companion).unwrap_err(), sealed_session::OpenError::Invalid);
        let identifier = browser.session.clone().unwrap().identifier;
        assert_eq!(sealer.open_raw(&identifier).unwrap_err(), sealed_session::OpenError::Invalid);
        // A refresh with the thief's own key is refused for good.
        let mut thief = Browser::new(&config, &clock);
        thief.session = browser.session.clone();
        thief.jar.insert("__Host-session-dbsc".into(), Cookie { value: stolen_companion, expires: None });
        let reply = thief.refresh().await;
        assert_ends(&reply.body, &identifier);
        assert!(thief.cookie("__Host-session").is_none());
    });
}

/// A browser keeps its earlier DBSC sessions after a new login binds a new
/// one, and refreshes each in turn (spec.bs, "Identify session needing
/// refresh"). The ended binding's refresh ends that binding only: the
/// companion cookie it finds is the new binding's, which stays, or the new
/// binding's next refresh would end it too, and sign the user out.
#[test]
fn an_ended_bindings_refresh_keeps_the_next_bindings_companion() {
    run(async {
        let (clock, _config, mut browser) = bound_browser().await;
        let first = browser.session.clone().unwrap();
        browser.get("/login").await;
        let second = browser.session.clone().unwrap();
        assert_ne!(first.identifier, second.identifier, "the new login is bound anew");
        let companion = browser.cookie("__Host-session-dbsc").unwrap();

        clock.advance(Duration::from_secs(LIFETIME + 1));
        let old =
            TestRequest::new("POST", &first.refresh_url).header("sec-secure-session-id", &first.identifier);
        let reply = browser.send(old).await;
        assert_ends(&reply.body, &first.identifier);
        assert!(reply.all("set-cookie").is_empty(), "{:?}", reply.headers);
        // A tampered identifier (of no binding) leaves it too.
        let mut tampered = first.identifier.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        let reply = browser
            .send(TestRequest::new("POST", "/dbsc/refresh").header("sec-secure-session-id", &tampered))
            .await;
        assert_ends(&reply.body, &tampered);
        assert!(reply.all("set-cookie").is_empty(), "{:?}", reply.headers);
        assert_eq!(browser.cookie("__Host-session-dbsc"), Some(companion));

        // The new binding refreshes as before.
        let reply = browser.get("/whoami").await;
        assert_eq!(reply.body, "alice first bound=true");
        assert_eq!(browser.session.as_ref().map(|s| &s.identifier), Some(&second.identifier));
    });
}

/// A refresh that brings the binding's identifier and a companion cookie
/// that opens, but a proof of a current challenge signed by another key,
/// comes from copies of the cookies: the session is logged out on every
/// server, the device's cookie with it.
#[test]
fn a_refresh_with_copied_cookies_and_another_keys_proof_logs_the_session_out() {
    run(async {
        // The thief's proof as a refresh's, or with its key in the header
        // (which only the device's own proof is forgiven).
        for with_key in [false, true] {
            let (clock, config, mut browser) = bound_browser().await;
            let identifier = browser.session.clone().unwrap().identifier;
            let device_cookie = browser.cookie("__Host-session").unwrap();
            let mut thief = Browser::new(&config, &clock);
            thief.session = browser.session.clone();
            let companion = browser.cookie("__Host-session-dbsc").unwrap();
            thief.jar.insert("__Host-session-dbsc".into(), Cookie { value: companion, expires: None });
            let reply = if with_key {
                let ahead = browser.session.clone().unwrap().cached_challenge.unwrap();
                let proof = thief.value(&thief.key.proof(ahead.trim_matches('"'), true));
                serve(&config, thief.refresh_request(None).header("secure-session-response", &proof)).await
            } else {
                thief.refresh().await
            };
            assert_ends(&reply.body, &identifier);
            assert_eq!(whoami(&config, &device_cookie).await.status, 401, "the session still opens");
            clock.advance(Duration::from_secs(LIFETIME + 1));
            assert_ends(&browser.refresh().await.body, &identifier);
        }
    });
}

/// A proof the parser refuses (garbage, or a format or algorithm this
/// server does not take, even one that names the current challenge), and
/// the device's own proof with a `jwk` header (which the draft forbids in
/// a refresh), is asked for again, as a missing one is, and logs no one
/// out. The device's own proof then refreshes.
#[test]
fn an_unreadable_refresh_proof_is_asked_for_again_and_logs_no_one_out() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    run(async {
        let (clock, config, mut browser) = bound_browser().await;
        let identifier = browser.session.clone().unwrap().identifier;
        let device_cookie = browser.cookie("__Host-session").unwrap();
        let ahead = browser.session.clone().unwrap().cached_challenge.unwrap();
        let part = |json: serde_json::Value| URL_SAFE_NO_PAD.encode(json.to_string());
        let unsigned = format!(
            "{}.{}.",
            part(serde_json::json!({ "alg": "none", "typ": "dbsc+jwt" })),
            part(serde_json::json!({ "jti": ahead.trim_matches('"') }))
        );
        let with_key = browser.value(&browser.key.proof(ahead.trim_matches('"'), true));
        for unreadable in ["not.a.proof", "\"e30.e30.\"", "a.b.c;x=1", &unsigned, &with_key] {
            let request = browser.refresh_request(None).header("secure-session-response", unreadable);
            let reply = serve(&config, request).await;
            assert_eq!(reply.status, 403, "{unreadable:?}: {}", reply.body);
            assert!(reply.all("set-cookie").is_empty(), "{unreadable:?}: {:?}", reply.headers);
            let challenge = reply.header("secure-session-challenge").unwrap();
            let (_, params) = sf_params(challenge);
            assert_eq!(params.get("id"), Some(&identifier), "{unreadable:?}: {challenge}");
            assert_eq!(
                whoami(&config, &device_cookie).await.status,
                200,
                "{unreadable:?} logged the session out"
            );
        }
        clock.advance(Duration::from_secs(LIFETIME + 1));
        browser.refresh().await;
        assert_eq!(browser.get("/whoami").await.body, "alice first bound=true");
    });
}

/// A bound session started after a logout everywhere on another server,
/// refreshed on a server whose cache (one that keeps the user's epoch
/// across session IDs: `Unheard`) has not heard of that logout yet: the
/// cached epoch, behind the session's, is read again from the store, and
/// the binding lives (taken for lost data, the refresh ended it).
#[test]
fn a_refresh_on_a_cache_that_has_not_heard_of_a_logout_elsewhere_keeps_the_binding() {
    run(async {
        let clock = ManualClock::at_unix(START);
        let store = MemoryStore::with_clock(clock.clone());
        store.revoke_user("alice").await.unwrap();
        let lagging: SharedStore = Arc::new(unheard::Unheard { store, behind: 1, lost: false });
        let keyring = Keyring::generate().unwrap();
        let config = config_on_store(keyring, &clock, DeviceBinding::default(), lagging, |builder| builder);
        let mut browser = Browser::new(&config, &clock);
        browser.get("/login").await;
        clock.advance(Duration::from_secs(LIFETIME + 1));
        assert_eq!(browser.get("/whoami").await.body, "alice first bound=true");
        assert_eq!(browser.refreshes, 2, "registered, then refreshed");
    });
}

#[test]
fn a_captured_proof_cannot_be_replayed() {
    run(async {
        let (clock, config, mut browser) = bound_browser().await;
        clock.advance(Duration::from_secs(LIFETIME + 1));
        let challenge = browser.session.clone().unwrap().cached_challenge;
        browser.refresh().await;
        assert!(browser.cookie("__Host-session").is_some());
        // Replay the very request the device just made.
        let reply = serve(&config, browser.refresh_request(challenge.as_deref())).await;
        assert_eq!(reply.status, 403, "a used challenge asks for a new proof");
        assert!(reply.all("set-cookie").is_empty());
        assert!(reply.header("secure-session-challenge").is_some());
    });
}

#[test]
fn of_concurrent_refreshes_with_one_proof_only_one_gets_a_cookie() {
    run(async {
        let (clock, config, browser) = bound_browser().await;
        clock.advance(Duration::from_secs(LIFETIME + 1));
        // A new challenge, and two copies of one proof of it sent at once
        // (the device's own refresh and a replay racing it).
        let reply = serve(&config, browser.refresh_request(None)).await;
        assert_eq!(reply.status, 403, "a refresh without a proof gets a challenge");
        let (challenge, _) = sf_params(reply.header("secure-session-challenge").unwrap());
        let request = browser.refresh_request(Some(&challenge));
        let replies = both(serve(&config, request.clone()), serve(&config, request)).await;
        one_passed(&replies, "a proof used twice at once: one cookie, and the other asked for a new proof");
    });
}

#[test]
fn of_concurrent_registrations_of_one_session_only_one_binds() {
    run(async {
        // With binding offered on every response, whoever holds a copy of
        // the unbound cookie gets challenges too: the owner and a thief
        // register at the same moment, with their own keys and challenges.
        let (clock, config, mut owner) = browser_for(DeviceBinding::default().offer_to_unbound_sessions());
        let first = owner.login_offer().await;
        let second = owner.send(TestRequest::new("GET", "/whoami")).await;
        let second = second.header("secure-session-registration").unwrap().to_owned();
        let mut thief = Browser::new(&config, &clock);
        thief.jar = owner.jar.clone();
        let registration = |browser: &mut Browser, offer: &str| {
            let (_, params) = sf_params(offer);
            let proof = browser.key.proof(&params["challenge"], true);
            TestRequest::new("POST", &params["path"])
                .header("secure-session-response", sf_string(&proof))
                .header("cookie", browser.cookie_header())
        };
        let (by_owner, by_thief) = (registration(&mut owner, &first), registration(&mut thief, &second));
        let replies = both(serve(&config, by_owner), serve(&config, by_thief)).await;
        one_passed(
            &replies,
            "one unbound session becomes one bound session, and the other registration is refused",
        );
    });
}

/// Of two replies to requests sent at once, one is `200` with cookies, the
/// other `403` with none.
fn one_passed((a, b): &(Reply, Reply), what: &str) {
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 403], "{what}");
    let with_cookies = [a, b].iter().filter(|reply| !reply.all("set-cookie").is_empty()).count();
    assert_eq!(with_cookies, 1, "{what}");
}

#[test]
fn a_bound_session_whose_device_stopped_refreshing_stops_counting_against_the_limit() {
    use sealed_session::web::{HandleError, LimitPolicy};
    run(async {
        let clock = ManualClock::at_unix(START);
        let registry = MemoryStore::with_clock(clock.clone());
        let config = config_with(&clock, DeviceBinding::default(), |builder| {
            builder.session_registry(registry).session_limit(1, LimitPolicy::RefuseLogin)
        });
        let mut device = Browser::new(&config, &clock);
        device.get("/login").await;
        assert!(device.session.is_some(), "bound");
        let login = async || {
            let Begin::Ready(handle) = config.begin(&TestRequest::new("GET", "/")).await else { panic!() };
            handle.typed::<String>().login("alice", "elsewhere".to_owned()).await.map(drop)
        };
        // The device is gone (no more proofs) after one last change of its
        // data, halfway through its bound cookie's life. That change sealed
        // the companion cookie again (the record did not move), which can
        // bring the session back with a refresh until the session's idle
        // timeout has passed since then: the session counts (and is listed)
        // until one bound lifetime and one idle timeout after the last
        // proof, and one clock leeway (60 s) more.
        clock.advance(Duration::from_secs(LIFETIME / 2));
        assert_eq!(device.get("/update").await.body, "updated");
        clock.advance(Duration::from_secs(IDLE + 60 - LIFETIME / 2)); // the last proof's idle timeout and leeway
        assert!(matches!(login().await, Err(HandleError::SessionLimit { max: 1 })), "it can still refresh");
        clock.advance(Duration::from_secs(LIFETIME - 1));
        assert!(matches!(login().await, Err(HandleError::SessionLimit { max: 1 })), "at the leeway's end");
        clock.advance(Duration::from_secs(1));
        assert!(login().await.is_ok(), "a bound session past its idle timeout must not lock the user out");
        assert_eq!(device.get("/whoami").await.body, "no session", "and it cannot come back");
    });
}

/// A change of a bound session's data by a request that began just before
/// its bound cookie's end, and took a while, seals the companion cookie as
/// last active one bound lifetime after the proof at most: the registry
/// stops counting the session by that bound, and the companion must not
/// outlive it.
#[test]
fn a_slow_request_seals_the_companion_no_later_than_the_bound_cookies_end() {
    run(async {
        let (clock, config, browser) = bound_browser().await;
        clock.advance(Duration::from_secs(LIFETIME - 1));
        // Sent as the request left (the browser drops the bound cookie a
        // tenth of its life early; the server opens it to the end).
        let (bound, companion) = (browser.cookie("__Host-session"), browser.cookie("__Host-session-dbsc"));
        let cookies =
            format!("__Host-session={}; __Host-session-dbsc={}", bound.unwrap(), companion.unwrap());
        let request = TestRequest::new("GET", "/update").header("cookie", cookies);
        let Begin::Ready(handle) = config.begin(&request).await else {
            panic!("the bound cookie still opens")
        };
        clock.advance(Duration::from_secs(120)); // a slow handler
        handle.typed::<String>().update(|data| *data = "second".to_owned()).unwrap();
        let mut response = TestResponse::default();
        handle.finish().write_to(&mut response);
        let companion = response
            .get_all("set-cookie")
            .into_iter()
            .find_map(|c| c.split(';').next().unwrap().strip_prefix("__Host-session-dbsc="))
            .expect("the companion is sealed again")
            .to_owned();
        let keyring = config.verifier().sealer().keyring().clone();
        let inspector = Sealer::builder(keyring).purpose("__Host-session-dbsc").build().unwrap();
        let last_seen = inspector.inspect(&companion).unwrap().last_seen.unix_timestamp();
        assert_eq!(last_seen, START + LIFETIME as i64, "the bound cookie's end, not the request's");
    });
}

/// With device binding on too, an unsafe request with neither a session,
/// a pre-session nor a companion cookie has nothing to bind a CSRF token
/// to: refused before its body is read, as without binding.
#[test]
fn with_binding_on_a_request_with_nothing_to_bind_a_token_to_is_refused() {
    use sealed_session::web::{CsrfRefusal, Refusal};
    let clock = ManualClock::at_unix(START);
    let config = config(&clock, DeviceBinding::default());
    run(async {
        let form = TestRequest::new("POST", "/update")
            .header("sec-fetch-site", "same-origin")
            .header("content-type", "application/x-www-form-urlencoded");
        match config.begin(&form).await {
            Begin::Refuse(Refusal::Csrf(CsrfRefusal::NoBinding)) => {}
            other => panic!("{other:?}"),
        }
        // A companion cookie that opens no bound session binds nothing
        // either: still refused before the body is read.
        let junk = form.header("cookie", "__Host-session-dbsc=x");
        match config.begin(&junk).await {
            Begin::Refuse(Refusal::Csrf(CsrfRefusal::NoBinding)) => {}
            other => panic!("{other:?}"),
        }
    });
}

/// A login from `browser` whose bound cookie has lapsed: it comes with the
/// companion cookie alone, and the CSRF token of the bound session. Also
/// that bound cookie and its session.
fn login_with_the_companion_alone(
    config: &Config,
    browser: &Browser,
) -> (String, sealed_session::Session<String>, TestRequest) {
    let bound = browser.cookie("__Host-session").unwrap();
    let session = config.verifier().sealer().open::<String>(&bound).unwrap().into_session();
    let token = config.verifier().sealer().csrf_token(&session);
    let companion = format!("__Host-session-dbsc={}", browser.cookie("__Host-session-dbsc").unwrap());
    let login = TestRequest::new("POST", "/login")
        .header("cookie", &companion)
        .header("sec-fetch-site", "same-origin")
        .header("x-csrf-token", &token);
    (bound, session, login)
}

/// A request whose bound cookie lapsed comes with the companion cookie
/// alone: it passes the CSRF check with the token of the bound session the
/// companion names (the page's), as a pre-session's would, and has no
/// session of its own; another session's token is refused.
#[test]
fn the_companion_alone_passes_the_csrf_check_only_with_its_sessions_token() {
    run(async {
        let (clock, config, browser) = bound_browser().await;
        let sealer = config.verifier().sealer();
        let bound = sealer.open::<String>(&browser.cookie("__Host-session").unwrap()).unwrap().into_session();
        let companion = format!("__Host-session-dbsc={}", browser.cookie("__Host-session-dbsc").unwrap());
        clock.advance(Duration::from_secs(LIFETIME + 1));
        let post = |token: &str| {
            TestRequest::new("POST", "/whoami")
                .header("cookie", &companion)
                .header("sec-fetch-site", "same-origin")
                .header("x-csrf-token", token)
        };
        // Let through (not `403`), to a route that finds no session.
        let own = serve(&config, post(&sealer.csrf_token(&bound))).await;
        assert_eq!((own.status, own.body.as_str()), (401, "no session"));
        let another = sealer.csrf_token(&sealed_session::Session::new(String::new()).with_user("alice", 0));
        let refused = serve(&config, post(&another)).await;
        assert_eq!(refused.status, 403, "{}", refused.body);
    });
}

/// A login from a browser whose bound cookie has lapsed ends that session
/// (it comes with the companion cookie only): the session does not count
/// against the limit, as the request's own would not. It used to: with a
/// limit of one, the user was refused (`409`) in the only browser they
/// had, and with `EndOldest` another device was ended besides.
#[test]
fn a_login_does_not_count_the_lapsed_bound_session_it_ends() {
    use sealed_session::web::LimitPolicy;
    run(async {
        for (max, policy) in [(1, LimitPolicy::RefuseLogin), (2, LimitPolicy::EndOldest)] {
            let clock = ManualClock::at_unix(START);
            let registry = MemoryStore::with_clock(clock.clone());
            let config = config_with(&clock, DeviceBinding::default(), |builder| {
                builder.session_registry(registry).session_limit(max, policy)
            });
            let mut phone = Browser::new(&config, &clock);
            if max == 2 {
                phone.get("/login").await;
            }
            clock.advance(Duration::from_secs(1));
            let mut laptop = Browser::new(&config, &clock);
            laptop.get("/login").await;
            let (bound, _, login) = login_with_the_companion_alone(&config, &laptop);
            let reply = serve(&config, login).await;
            assert_eq!((reply.status, reply.body.as_str()), (200, "signed in"), "{policy:?}");
            assert_eq!(whoami(&config, &bound).await.status, 401, "{policy:?}: the lapsed session ended");
            if max == 2 {
                assert_eq!(phone.get("/whoami").await.status, 200, "the other device keeps its session");
            }
        }
    });
}

/// A login from a browser whose bound cookie has lapsed ends that session,
/// then fails (the store cannot end the oldest session to make room under
/// the limit): that end is audited, as the request's own session's is. The
/// session is gone on every server, and no login names it.
#[test]
fn a_login_that_fails_after_ending_a_lapsed_bound_session_audits_that_end() {
    use sealed_session::web::LimitPolicy;
    use sealed_session::SessionRegistry as _;
    run(async {
        let clock = ManualClock::at_unix(START);
        let registry = Arc::new(MemoryStore::with_clock(clock.clone()));
        let events = Recorder::default();
        let record = events.clone();
        let config = config_with(&clock, DeviceBinding::default(), |builder| {
            builder
                .session_registry(Arc::clone(&registry))
                .session_limit(1, LimitPolicy::EndOldest)
                .audit(record)
        });
        let mut laptop = Browser::new(&config, &clock);
        laptop.get("/login").await;
        let (bound, session, login) = login_with_the_companion_alone(&config, &laptop);
        // Another of alice's sessions, the oldest, that a login at the
        // limit of one must end.
        let start = u64::try_from(START).unwrap();
        let phone = sealed_session::SessionRecord {
            id: sealed_session::Session::new(()).id(),
            user_id: "alice".to_owned(),
            epoch: session.epoch(),
            created_at: start - 60,
            last_seen: start - 60,
            expires_at: start + 3600,
            user_agent: "Firefox on Android".to_owned(),
            remembered: false,
            device_bound: false,
        };
        registry.record(&phone).await.unwrap();
        events.take();

        ONCE_FAILS.with(|fails| fails.set(true));
        let reply = serve(&config, login).await;
        ONCE_FAILS.with(|fails| fails.set(false));
        assert_eq!(reply.status, 503, "{}", reply.body);
        let events = events.take();
        assert_eq!(whoami(&config, &bound).await.status, 401, "the lapsed session ended");
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].kind, AuditKind::Logout);
        let ended = (events[0].user_id.as_deref(), events[0].session);
        assert_eq!(ended, (Some("alice"), Some(SessionRef::of(session.id()))));
    });
}

/// A bound session whose cookie has expired, but whose device can still
/// refresh it, is listed, and ending it from the list ends its refreshes.
#[test]
fn a_bound_session_between_refreshes_is_listed_and_can_be_ended() {
    run(async {
        let clock = ManualClock::at_unix(START);
        let registry = MemoryStore::with_clock(clock.clone());
        let config =
            config_with(&clock, DeviceBinding::default(), |builder| builder.session_registry(registry));
        let mut laptop = Browser::new(&config, &clock);
        laptop.get("/login").await;
        clock.advance(Duration::from_secs(LIFETIME + 61));
        let Begin::Ready(phone) = config.begin(&TestRequest::new("GET", "/")).await else { panic!() };
        phone.typed::<String>().login("alice", "phone".to_owned()).await.unwrap();
        let devices = phone.devices().await.unwrap();
        let bound: Vec<_> = devices.iter().filter(|d| d.device_bound).collect();
        assert_eq!(bound.len(), 1, "the laptop is listed: {devices:?}");
        assert!(phone.end_device(bound[0].reference).await.unwrap());
        assert_eq!(laptop.get("/whoami").await.body, "no session", "its refresh is refused");
    });
}

/// Runs `a` and `b` at once, polling each in turn (as a server runs two
/// requests); both outputs.
async fn both<A: std::future::Future, B: std::future::Future>(a: A, b: B) -> (A::Output, B::Output) {
    use std::task::Poll;
    let (mut a, mut b) = (Box::pin(a), Box::pin(b));
    let (mut first, mut second) = (None, None);
    std::future::poll_fn(|cx| {
        if first.is_none() {
            if let Poll::Ready(output) = a.as_mut().poll(cx) {
                first = Some(output);
            }
        }
        if second.is_none() {
            if let Poll::Ready(output) = b.as_mut().poll(cx) {
                second = Some(output);
            }
        }
        match (first.take(), second.take()) {
            (Some(a), Some(b)) => Poll::Ready((a, b)),
            (a, b) => {
                (first, second) = (a, b);
                Poll::Pending
            }
        }
    })
    .await
}

/// Logins of one user at the same moment under a limit that refuses
/// (`max` 1, the registry and the store answering as across a network):
/// each counted the others' sessions missing, and all got in. Each now
/// records its session first and counts again; one over the limit is
/// refused (`409`) with nothing changed: no session cookie set or
/// removed, its record gone, and the session the request had still open.
/// At most the limit get in (both may be refused), in a double submit from
/// a signed-in browser too.
#[test]
fn logins_at_the_same_moment_never_pass_a_refusing_limit() {
    // In lockstep both record before either counts again, and both are
    // refused; one a step behind finds the first in, and only it is refused.
    for (staggered, expected) in [(false, 0), (true, 1)] {
        run(logins_racing_for_the_last_place(staggered, expected));
    }
}

/// A configuration whose session registry, answering as across a network,
/// holds a limit of one session that refuses logins; on a clock at
/// [`START`]. The clock and the registry too.
fn limited_to_one() -> (ManualClock, Arc<Remote>, Config) {
    let clock = ManualClock::at_unix(START);
    let registry = Arc::new(Remote(MemoryStore::with_clock(clock.clone())));
    let config = config_with(&clock, DeviceBinding::default(), |builder| {
        builder.session_registry(Arc::clone(&registry)).session_limit(1, LimitPolicy::RefuseLogin)
    });
    (clock, registry, config)
}

/// How many records of alice's sessions `registry` lists as of `now`.
async fn records_of_alice(registry: &Remote, now: i64) -> usize {
    let now = u64::try_from(now).unwrap();
    sealed_session::SessionRegistry::list(&registry.0, "alice", now).await.unwrap().len()
}

/// A re-authentication under a limit that refuses, while a logout of the
/// same session runs in another tab (the store and registry answering as
/// across a network): it has claimed the user's place when it finds the
/// session ended, and fails (the session is not carried on). Its claim
/// goes with it: left, it would hold the only place for five minutes.
#[test]
fn a_reauthentication_that_finds_its_session_ended_leaves_no_claim() {
    run(async {
        let (_clock, registry, config) = limited_to_one();
        let records = || records_of_alice(&registry, START);
        let Begin::Ready(tab) = config.begin(&TestRequest::new("GET", "/")).await else { panic!() };
        tab.typed::<String>().login("alice", "A".to_owned()).await.unwrap();
        let cookie = tab.finish().set_cookies[0].split(';').next().unwrap().to_owned();
        let request = || TestRequest::new("GET", "/").header("cookie", &cookie);
        let (Begin::Ready(reauthenticating), Begin::Ready(logging_out)) =
            (config.begin(&request()).await, config.begin(&request()).await)
        else {
            panic!()
        };
        let (reauthenticated, logged_out) =
            both(reauthenticating.typed::<String>().reauthenticate(), logging_out.logout()).await;
        logged_out.unwrap();
        let ended = reauthenticated.unwrap_err();
        assert!(
            matches!(ended, sealed_session::web::HandleError::Login(sealed_session::LoginError::Ended)),
            "{ended:?}"
        );
        assert_eq!(records().await, 0, "no claim is left");
        let Begin::Ready(other) = config.begin(&TestRequest::new("GET", "/")).await else { panic!() };
        other.typed::<String>().login("alice", "B".to_owned()).await.unwrap();
    });
}

/// A session that takes a new ID while another browser logs in, under a
/// limit of one that refuses (the registry answering as across a
/// network), holds its place at every step of the change: the login is
/// refused (in the moment between the old ID's end and the new ID's
/// record, the login's count after its own claim finds the new record),
/// and one record is left, the new ID's.
#[test]
fn a_session_taking_a_new_id_keeps_its_place_from_a_login_meanwhile() {
    run(async {
        for delay in 0..12 {
            let (_clock, registry, config) = limited_to_one();
            let Begin::Ready(tab) = config.begin(&TestRequest::new("GET", "/")).await else { panic!() };
            tab.typed::<String>().login("alice", "A".to_owned()).await.unwrap();
            let cookie = tab.finish().set_cookies[0].split(';').next().unwrap().to_owned();
            let (Begin::Ready(renewing), Begin::Ready(other)) = (
                config.begin(&TestRequest::new("GET", "/").header("cookie", &cookie)).await,
                config.begin(&TestRequest::new("GET", "/")).await,
            ) else {
                panic!()
            };
            let login = async {
                for _ in 0..delay {
                    yield_once().await;
                }
                other.typed::<String>().login("alice", "B".to_owned()).await
            };
            let (renewed, login) = both(renewing.renew_id(), login).await;
            renewed.unwrap();
            assert!(
                matches!(login, Err(sealed_session::web::HandleError::SessionLimit { .. })),
                "a step {delay} behind: {login:?}"
            );
            let listed =
                sealed_session::SessionRegistry::list(&registry.0, "alice", START as u64).await.unwrap();
            let ids: Vec<_> = listed.iter().map(|record| record.id).collect();
            let renewed_id = renewing.typed::<String>().current().unwrap().session().id();
            assert_eq!(ids, [renewed_id], "a step {delay} behind");
        }
    });
}

/// Two logins at once, the second `staggered` a step behind, from two
/// browsers and then from one signed-in browser: `expected` of each pair
/// get in.
async fn logins_racing_for_the_last_place(staggered: bool, expected: usize) {
    let (_clock, registry, config) = limited_to_one();
    let records = || records_of_alice(&registry, START);
    let session_of = |reply: &Reply| {
        let cookie = reply.all("set-cookie").into_iter().find(|c| c.starts_with("__Host-session="));
        cookie.map(|c| c.split(';').next().unwrap().trim_start_matches("__Host-session=").to_owned())
    };
    let login = |cookie: Option<String>| {
        let request = TestRequest::new("GET", "/login");
        let request = match cookie {
            Some(cookie) => request.header("cookie", format!("__Host-session={cookie}")),
            None => request,
        };
        serve(&config, request)
    };
    let later = |cookie: Option<String>| {
        let login = login(cookie);
        async move {
            if staggered {
                yield_once().await;
            }
            login.await
        }
    };
    // Two browsers at once.
    let first = both(login(None), later(None)).await;
    let mut kept = Vec::new();
    for reply in [&first.0, &first.1] {
        match reply.status {
            200 => kept.push(session_of(reply).unwrap()),
            409 => assert_eq!(session_of(reply), None, "a refused login changes no cookie: {reply:?}"),
            other => panic!("{other}: {reply:?}"),
        }
    }
    assert_eq!(kept.len(), expected, "{first:?}");
    assert_eq!(records().await, kept.len(), "a refused login leaves no record");
    for cookie in &kept {
        assert_eq!(whoami(&config, cookie).await.status, 200);
    }
    // One signed-in browser twice at once (a double submit).
    let signed_in = match kept.pop() {
        Some(cookie) => cookie,
        None => session_of(&login(None).await).unwrap(),
    };
    let again = both(login(Some(signed_in.clone())), later(Some(signed_in.clone()))).await;
    let passed: Vec<&Reply> = [&again.0, &again.1].into_iter().filter(|r| r.status == 200).collect();
    assert_eq!(passed.len(), expected, "{again:?}");
    for reply in [&again.0, &again.1].into_iter().filter(|r| r.status != 200) {
        assert_eq!((reply.status, session_of(reply)), (409, None), "{reply:?}");
    }
    let current = match passed.first() {
        // The winner ended the session both came with.
        Some(winner) => {
            assert_eq!(whoami(&config, &signed_in).await.status, 401);
            session_of(winner).unwrap()
        }
        // Both refused: nothing changed.
        None => signed_in,
    };
    assert_eq!(whoami(&config, &current).await.status, 200);
    assert_eq!(records().await, 1, "one live session, one record");
    // Alone, a login that replaces the browser's own session is no session
    // more: it passes.
    let relogin = login(Some(current)).await;
    assert_eq!(relogin.status, 200, "{relogin:?}");
    assert_eq!(records().await, 1);
}

/// A login under a refusing limit dropped after it claimed its place
/// (its request timed out, say): the claim counts for five minutes, not for
/// the never-sent session's idle timeout, which would lock the user out.
#[test]
fn a_login_dropped_after_claiming_its_place_holds_it_five_minutes() {
    use std::future::Future as _;
    run(async {
        let (clock, registry, config) = limited_to_one();
        let claims = || records_of_alice(&registry, sealed_session::Clock::unix_now(&clock));
        let mut dropped = Box::pin(serve(&config, TestRequest::new("GET", "/login")));
        for polls in 0.. {
            let pending =
                std::future::poll_fn(|cx| std::task::Poll::Ready(dropped.as_mut().poll(cx).is_pending()));
            assert!(pending.await, "the login ended before its claim was seen");
            if claims().await == 1 {
                break;
            }
            assert!(polls < 100, "no claim");
        }
        drop(dropped);
        let login = || serve(&config, TestRequest::new("GET", "/login"));
        assert_eq!(login().await.status, 409, "the claim holds the place");
        clock.advance(Duration::from_secs(301));
        assert_eq!(claims().await, 0);
        assert_eq!(login().await.status, 200, "and lapses");
    });
}

/// spec.bs, "Cache challenge": the challenge of the next refresh comes
/// with each new bound cookie, so a refresh is one request while that
/// challenge lasts (the bound lifetime plus `CHALLENGE_LIFETIME`); after
/// that, the refresh takes a `403` with a new challenge first.
#[test]
fn a_challenge_sent_ahead_serves_the_next_refresh_until_it_expires() {
    run(async {
        let (clock, _config, mut browser) = bound_browser().await;
        assert!(browser.session.as_ref().unwrap().cached_challenge.is_some(), "the registration sends one");
        let lasts = LIFETIME + CHALLENGE_LIFETIME.as_secs();
        for (wait, requests) in [(lasts - 1, 1), (lasts, 2)] {
            clock.advance(Duration::from_secs(wait));
            let before = browser.refreshes;
            assert_eq!(browser.get("/whoami").await.body, "alice first bound=true");
            assert_eq!(browser.refreshes - before, requests, "{wait} s after the last refresh");
        }
    });
}

#[test]
fn challenges_expire_after_their_lifetime() {
    run(async {
        assert_eq!(sealed_session::web::CHALLENGE_LIFETIME, CHALLENGE_LIFETIME);
        // Registration: two sessions offered binding at the same moment;
        // one registers a second before its challenge expires, the other at
        // the moment it does.
        let (clock, config, mut early) = browser_for(DeviceBinding::default());
        let mut late = Browser::new(&config, &clock);
        let early_offer = early.login_offer().await;
        let late_offer = late.login_offer().await;
        clock.advance(CHALLENGE_LIFETIME - Duration::from_secs(1));
        early.register(&early_offer).await;
        clock.advance(Duration::from_secs(1));
        let (_, params) = sf_params(&late_offer);
        let reply = late.send_registration("/dbsc/register", &params["challenge"]).await;
        assert_eq!(reply.status, 403, "an expired registration challenge: {}", reply.body);
        assert!(reply.all("set-cookie").is_empty());
        assert_eq!(late.get("/whoami").await.body, "alice first bound=false");

        // Refresh: a challenge answered a second before it expires gets a
        // bound cookie; one answered once it has expired gets a new
        // challenge and no cookie.
        let asked = serve(&config, early.refresh_request(None)).await;
        let (challenge, _) = sf_params(asked.header("secure-session-challenge").unwrap());
        clock.advance(CHALLENGE_LIFETIME - Duration::from_secs(1));
        let reply = serve(&config, early.refresh_request(Some(&challenge))).await;
        early.store_cookies(&reply);
        assert_eq!(reply.status, 200, "a refresh challenge a second before it expires: {}", reply.body);
        let set = reply.all("set-cookie");
        assert!(set.iter().any(|c| c.starts_with("__Host-session=") && !c.contains("Max-Age=0")), "{set:?}");
        clock.advance(Duration::from_secs(LIFETIME + 1));
        let asked = serve(&config, early.refresh_request(None)).await;
        let (challenge, _) = sf_params(asked.header("secure-session-challenge").unwrap());
        clock.advance(CHALLENGE_LIFETIME);
        let reply = serve(&config, early.refresh_request(Some(&challenge))).await;
        assert_eq!(reply.status, 403, "an expired refresh challenge: {}", reply.body);
        assert!(reply.all("set-cookie").is_empty());
        assert!(reply.header("secure-session-challenge").is_some());
    });
}

#[test]
fn a_refresh_without_the_session_header_changes_nothing() {
    run(async {
        // What a form on another site can send: a POST to the refresh URL
        // with no `Sec-` header (a page cannot set one), with the
        // companion cookie or, under `SameSite=Lax`, without it.
        let (clock, config, mut browser) = bound_browser().await;
        let companion = format!("__Host-session-dbsc={}", browser.cookie("__Host-session-dbsc").unwrap());
        for request in [
            TestRequest::new("POST", "/dbsc/refresh"),
            TestRequest::new("POST", "/dbsc/refresh").header("cookie", companion.clone()),
            TestRequest::new("POST", "/dbsc/refresh").header("sec-secure-session-id", "not a string"),
            // Two lines: RFC 9651 makes them one list, not the one string.
            TestRequest::new("POST", "/dbsc/refresh")
                .header("sec-secure-session-id", sf_string(&browser.session.clone().unwrap().identifier))
                .header("sec-secure-session-id", sf_string("other"))
                .header("cookie", companion.clone()),
        ] {
            let reply = serve(&config, request).await;
            assert_eq!(reply.status, 400, "{}", reply.body);
            assert!(reply.all("set-cookie").is_empty(), "{:?}", reply.headers);
            assert_eq!(reply.header("cache-control"), Some("no-store"));
        }
        // The device still refreshes.
        clock.advance(Duration::from_secs(LIFETIME + 1));
        assert_eq!(browser.get("/whoami").await.body, "alice first bound=true");
    });
}

#[test]
fn logout_and_logout_everywhere_end_refreshes() {
    run(async {
        for route in ["/logout", "/logout-everywhere"] {
            let (clock, _config, mut browser) = browser_for(DeviceBinding::default());
            browser.get("/login").await;
            let session = browser.session.clone().unwrap();
            let companion = browser.cookie("__Host-session-dbsc").unwrap();
            let reply = browser.get(route).await;
            assert_eq!(reply.status, 200);
            assert!(browser.cookie("__Host-session-dbsc").is_none(), "{route} removes the companion cookie");
            // A device (or thief) that kept the companion cookie cannot refresh.
            browser.jar.insert("__Host-session-dbsc".into(), Cookie { value: companion, expires: None });
            browser.session = Some(session.clone());
            clock.advance(Duration::from_secs(LIFETIME + 1));
            let reply = browser.refresh().await;
            assert_ends(&reply.body, &session.identifier);
            assert!(browser.session.is_none());
        }
        // Logging everyone out: no request of this browser's, its cookies
        // kept; its next refresh ends.
        let (clock, config, mut browser) = browser_for(DeviceBinding::default());
        browser.get("/login").await;
        let session = browser.session.clone().unwrap();
        clock.advance(Duration::from_secs(1));
        config.verifier().logout_all().await.unwrap();
        clock.advance(Duration::from_secs(LIFETIME));
        let reply = browser.refresh().await;
        assert_ends(&reply.body, &session.identifier);
        assert!(browser.session.is_none());
    });
}

/// Re-authentication of a device-bound session starts it anew unbound, as
/// a login does: the reply offers binding again and removes the companion
/// cookie, and the old binding can no longer refresh (a device or thief
/// that kept its companion cookie included).
#[test]
fn reauthentication_unbinds_the_session_and_offers_binding_again() {
    run(async {
        let (clock, _config, mut browser) = bound_browser().await;
        assert!(browser.get("/whoami").await.body.ends_with("bound=true"));
        let session = browser.session.clone().unwrap();
        let companion = browser.cookie("__Host-session-dbsc").unwrap();
        let reply = browser.send(TestRequest::new("GET", "/reauth")).await;
        assert_eq!((reply.status, reply.body.as_str()), (200, "reauthenticated"));
        assert!(reply.header("secure-session-registration").is_some(), "binding is offered again");
        assert!(browser.cookie("__Host-session-dbsc").is_none(), "the companion cookie is removed");
        assert_eq!(browser.send(TestRequest::new("GET", "/whoami")).await.body, "alice first bound=false");
        // The old binding, its companion cookie kept, cannot refresh.
        browser.jar.insert("__Host-session-dbsc".into(), Cookie { value: companion, expires: None });
        browser.jar.remove("__Host-session");
        clock.advance(Duration::from_secs(1));
        let reply = browser.refresh().await;
        assert_ends(&reply.body, &session.identifier);
    });
}

/// A logout sent with the session's cookie from before its binding (the
/// browser sent it while the registration ran) finds no session: the
/// registration ended that ID. It still removes the companion cookie, or
/// the browser, its bound cookie removed by that logout, would refresh
/// the binding with it and be signed in again.
#[test]
fn a_logout_that_raced_the_registration_still_removes_the_companion() {
    run(async {
        let (_clock, config, mut browser) = browser_for(DeviceBinding::default());
        let offer = browser.login_offer().await;
        let unbound = browser.cookie("__Host-session").unwrap();
        browser.register(&offer).await;
        assert!(browser.cookie("__Host-session-dbsc").is_some());
        let request =
            TestRequest::new("GET", "/logout").header("cookie", format!("__Host-session={unbound}"));
        let reply = serve(&config, request).await;
        assert_eq!(reply.status, 200);
        browser.store_cookies(&reply);
        assert_eq!(browser.cookie("__Host-session"), None);
        assert_eq!(browser.cookie("__Host-session-dbsc"), None, "{:?}", reply.headers);
        assert_eq!(browser.get("/whoami").await.status, 401, "signed in again after the logout");
        assert!(browser.session.is_none());
    });
}

/// A bound session re-issued on an ordinary request because the key
/// rotated gets a companion under the new key too, and stays bound: its
/// next refresh carries on.
#[test]
fn a_bound_session_reissued_for_a_rotated_key_keeps_its_binding() {
    run(async {
        let clock = ManualClock::at_unix(START);
        let keys = SharedKeyring::new(Keyring::generate().unwrap());
        let config = config_on(keys.clone(), &clock, DeviceBinding::default(), |builder| builder);
        let mut browser = Browser::new(&config, &clock);
        browser.get("/login").await;
        let (cookie, companion) = (browser.cookie("__Host-session"), browser.cookie("__Host-session-dbsc"));
        let (rotated, id) = keys.current().with_new_key().unwrap();
        keys.replace(rotated.with_primary(id).unwrap());

        let reply = browser.get("/whoami").await;
        assert_eq!(reply.body, "alice first bound=true");
        let set = reply.all("set-cookie");
        for name in ["__Host-session=", "__Host-session-dbsc="] {
            assert!(set.iter().any(|c| c.starts_with(name) && !c.contains("Max-Age=0")), "{name} {set:?}");
        }
        assert_ne!(browser.cookie("__Host-session"), cookie);
        assert_ne!(browser.cookie("__Host-session-dbsc"), companion);
        clock.advance(Duration::from_secs(LIFETIME + 1));
        assert_eq!(browser.get("/whoami").await.body, "alice first bound=true");
        assert!(browser.session.is_some(), "the binding carries on");
    });
}

/// A bound session's registry record moves with its proofs only: a client
/// that drops `Set-Cookie` and keeps sending a bound cookie due for
/// re-issue (the key rotated) writes no record on each request, which
/// would also date the record's last activity past the last proof.
#[test]
fn a_bound_cookie_due_for_reissue_moves_no_registry_record() {
    use sealed_session::SessionRegistry as _;
    run(async {
        let clock = ManualClock::at_unix(START);
        let keys = SharedKeyring::new(Keyring::generate().unwrap());
        let registry = Arc::new(MemoryStore::with_clock(clock.clone()));
        let config = config_on(keys.clone(), &clock, DeviceBinding::default(), |builder| {
            builder.session_registry(Arc::clone(&registry))
        });
        let mut browser = Browser::new(&config, &clock);
        browser.get("/login").await;
        assert!(browser.session.is_some(), "bound");
        let (rotated, id) = keys.current().with_new_key().unwrap();
        keys.replace(rotated.with_primary(id).unwrap());
        let last_seen = || async {
            let now = u64::try_from(sealed_session::Clock::unix_now(&clock)).unwrap();
            let records = registry.list("alice", now).await.unwrap();
            assert_eq!(records.len(), 1, "{records:?}");
            (records[0].device_bound, records[0].last_seen)
        };
        let proved = last_seen().await;
        assert_eq!(proved, (true, START as u64));

        let dropping_set_cookie = browser.jar.clone();
        for _ in 0..3 {
            clock.advance(Duration::from_secs(LIFETIME / 4));
            browser.jar = dropping_set_cookie.clone();
            let reply = browser.get("/whoami").await;
            assert_eq!(reply.body, "alice first bound=true");
            assert!(reply.all("set-cookie").iter().any(|c| c.starts_with("__Host-session=")), "re-issued");
        }
        assert_eq!(last_seen().await, proved);
    });
}

const RSA_2048: &[u8] = include_bytes!("vectors/dbsc_rsa2048.pk8");
const RSA_4096: &[u8] = include_bytes!("vectors/dbsc_rsa4096.pk8");

/// SECURITY.md: registration takes "ES256 or RS256 with a 2048- to
/// 4096-bit key". A device with an RSA key of either size registers
/// through the endpoint, its key travels in the companion cookie (which
/// stays within a browser's 4096 bytes), it refreshes with proofs that
/// carry no key, and another RSA key's proof ends the binding.
#[test]
fn an_rs256_device_of_2048_or_4096_bits_binds_and_refreshes() {
    run(async {
        for (fixture, other) in [(RSA_2048, RSA_4096), (RSA_4096, RSA_2048)] {
            let (clock, config, mut browser) = browser_for(DeviceBinding::default());
            browser.key = TestKey::rsa(fixture);
            let offer = browser.login_offer().await;
            let (_, params) = sf_params(&offer);
            let reply = browser.send_registration(&params["path"], &params["challenge"]).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            let companion =
                reply.all("set-cookie").into_iter().find(|c| c.starts_with("__Host-session-dbsc="));
            let companion = companion.expect("the registration sets the companion cookie");
            assert!(companion.len() <= 4096, "{} bytes", companion.len());
            browser.create_session(&reply);
            assert_eq!(browser.get("/whoami").await.body, "alice first bound=true");
            for _ in 0..3 {
                clock.advance(Duration::from_secs(LIFETIME + 1));
                assert_eq!(browser.get("/whoami").await.body, "alice first bound=true");
            }
            assert_eq!(browser.refreshes, 3);

            let identifier = browser.session.clone().unwrap().identifier;
            let mut thief = Browser::new(&config, &clock);
            thief.key = TestKey::rsa(other);
            thief.session = browser.session.clone();
            let stolen = browser.cookie("__Host-session-dbsc").unwrap();
            thief.jar.insert("__Host-session-dbsc".into(), Cookie { value: stolen, expires: None });
            clock.advance(Duration::from_secs(LIFETIME + 1));
            assert_ends(&thief.refresh().await.body, &identifier);
            assert!(thief.cookie("__Host-session").is_none());
        }
    });
}

/// A login removes the companion cookie even when its request sent none:
/// a binding the browser still holds (its registration's response came
/// after the request left) cannot sign the previous session in again.
#[test]
fn a_login_removes_the_companion_even_when_the_request_sent_none() {
    run(async {
        let (_clock, config, _browser) = browser_for(DeviceBinding::default());
        let reply = serve(&config, TestRequest::new("GET", "/login")).await;
        let removed = reply
            .all("set-cookie")
            .into_iter()
            .any(|c| c.starts_with("__Host-session-dbsc=;") && c.contains("Max-Age=0"));
        assert!(removed, "{:?}", reply.headers);
    });
}

/// A lapsed bound session whose check the store answers wrongly (its user's
/// epoch reads lower than the session's: a lost write) is ended at logout
/// all the same: only a revocation leaves one out, not a store fault, or a
/// copy of the bound cookie would open once the epoch caught up.
#[test]
fn a_logout_ends_a_lapsed_bound_session_whose_check_the_store_got_wrong() {
    run(async {
        let clock = ManualClock::at_unix(START);
        let config = config(&clock, DeviceBinding::default());
        assert_eq!(config.verifier().store().revoke_user("alice").await.unwrap(), 1);
        let mut browser = Browser::new(&config, &clock);
        browser.get("/login").await;
        let bound = browser.cookie("__Host-session").unwrap();
        let companion = format!("__Host-session-dbsc={}", browser.cookie("__Host-session-dbsc").unwrap());
        let session = config.verifier().sealer().open::<String>(&bound).unwrap().into_session();
        assert_eq!(session.epoch(), 1);
        let request = TestRequest::new("POST", "/logout")
            .header("cookie", &companion)
            .header("sec-fetch-site", "same-origin")
            .header("x-csrf-token", config.verifier().sealer().csrf_token(&session));
        LOST_BUMP.with(|lost| lost.set(true));
        let status = serve(&config, request).await.status;
        LOST_BUMP.with(|lost| lost.set(false));
        assert_eq!(status, 200);
        let state = config.verifier().store().state(None, session.id()).await.unwrap();
        assert!(state.session_revoked, "the lapsed bound session was left on a store fault");
    });
}

/// A lapsed bound cookie's companion beside an anonymous session (a cart
/// filled after the bound cookie lapsed, say): a logout or login ends the
/// bound session too, not only the anonymous one.
#[test]
fn a_logout_or_login_beside_an_anonymous_session_ends_the_lapsed_bound_session() {
    run(async {
        for route in ["/logout", "/login"] {
            let clock = ManualClock::at_unix(START);
            let config = config(&clock, DeviceBinding::default());
            let mut browser = Browser::new(&config, &clock);
            browser.get("/login").await;
            let bound = browser.cookie("__Host-session").unwrap();
            let companion = browser.cookie("__Host-session-dbsc").unwrap();
            let sealer = config.verifier().sealer();
            let anonymous = sealed_session::Session::new("cart".to_owned());
            let cookie = format!(
                "__Host-session={}; __Host-session-dbsc={companion}",
                sealer.seal(&anonymous).unwrap()
            );
            let request = TestRequest::new("POST", route)
                .header("cookie", &cookie)
                .header("sec-fetch-site", "same-origin")
                .header("x-csrf-token", sealer.csrf_token(&anonymous));
            assert_eq!(serve(&config, request).await.status, 200, "{route}");
            assert_eq!(
                whoami(&config, &bound).await.status,
                401,
                "{route}: a copy of the bound cookie opens"
            );
        }
    });
}

/// A logout or login from a browser whose bound cookie has lapsed (it had
/// not refreshed it yet: the cookie's `Max-Age` ends before its sealed
/// deadline) comes with the companion cookie only: that session is ended on
/// every server all the same, as the request's own session would be, so
/// that a copy of the bound cookie stops opening now, not at its deadline,
/// and the audit log has it. The page's CSRF token is that session's.
#[test]
fn a_logout_or_login_without_the_lapsed_bound_cookie_ends_the_bound_session() {
    run(async {
        for route in ["/logout", "/login"] {
            let events = Recorder::default();
            let record = events.clone();
            let clock = ManualClock::at_unix(START);
            let config = config_with(&clock, DeviceBinding::default(), |builder| builder.audit(record));
            let mut browser = Browser::new(&config, &clock);
            browser.get("/login").await;
            let bound = browser.cookie("__Host-session").unwrap();
            let companion = format!("__Host-session-dbsc={}", browser.cookie("__Host-session-dbsc").unwrap());
            let session = config.verifier().sealer().open::<String>(&bound).unwrap().into_session();
            let token = config.verifier().sealer().csrf_token(&session);
            assert_eq!(whoami(&config, &bound).await.status, 200);
            // The page's form, sent as is: the browser skipped the refresh
            // of the lapsed bound cookie (no network to it, or
            // `Secure-Session-Skipped`), so only the companion cookie goes.
            let post = |token: Option<&str>| {
                let request = TestRequest::new("POST", route)
                    .header("cookie", &companion)
                    .header("sec-fetch-site", "same-origin");
                match token {
                    Some(token) => request.header("x-csrf-token", token),
                    None => request,
                }
            };
            assert_eq!(serve(&config, post(None)).await.status, 403, "{route}: no CSRF token");
            assert_eq!(serve(&config, post(Some("nope"))).await.status, 403, "{route}: a wrong token");
            events.take();
            assert_eq!(serve(&config, post(Some(&token))).await.status, 200, "{route}");
            let ended = events.take();
            assert_eq!(
                whoami(&config, &bound).await.status,
                401,
                "{route}: a copy of the bound cookie opens"
            );
            let bound_ref = Some(SessionRef::of(session.id()));
            assert_eq!(ended.len(), 1, "{route}: {ended:?}");
            assert_eq!(ended[0].user_id.as_deref(), Some("alice"));
            match route {
                "/logout" => assert_eq!((ended[0].kind, ended[0].session), (AuditKind::Logout, bound_ref)),
                _ => assert_eq!(ended[0].previous, bound_ref, "the login names the session it replaced"),
            }
            // Ended once: the same companion ends nothing again.
            events.take();
            assert_eq!(serve(&config, post(Some(&token))).await.status, 200);
            let again = events.take();
            assert!(
                again.iter().all(|event| event.previous.is_none() && event.kind != AuditKind::Logout),
                "{again:?}"
            );
        }
    });
}

#[test]
fn a_bound_session_keeps_its_idle_and_absolute_timeouts() {
    run(async {
        // Idle: no request for longer than the idle timeout.
        let (clock, _config, mut browser) = bound_browser().await;
        clock.advance(Duration::from_secs(IDLE + 1));
        browser.refresh().await;
        assert!(browser.session.is_none(), "an idle bound session ends at its refresh");

        // Absolute: active all along, but past four hours.
        let (clock, _config, mut browser) = browser_for(DeviceBinding::default());
        browser.get("/login").await;
        for step in 1..=(4 * 3600 / 300) {
            clock.advance(Duration::from_secs(300));
            let reply = browser.get("/whoami").await;
            if step < 4 * 3600 / 300 {
                assert_eq!(reply.body, "alice first bound=true", "after {} s", step * 300);
            }
        }
        assert!(browser.session.is_none(), "the session ended at its absolute expiry");
        assert_eq!(browser.get("/whoami").await.status, 401);
    });
}

/// Registration gives the session a new ID, and a page shown between the
/// login and the registration (the browser registers in the background)
/// holds a CSRF token for the unbound session: with the bound cookie, that
/// token keeps working until the bound session is sealed again (its first
/// refresh), and no other session's does.
#[test]
fn a_page_shown_before_registration_keeps_its_csrf_token_until_the_first_refresh() {
    run(async {
        let (clock, config, mut browser) = browser_for(DeviceBinding::default());
        let offer = browser.login_offer().await;
        let sealer = config.verifier().sealer();
        let opened = |cookie: String| sealer.open::<String>(&cookie).unwrap().into_session();
        let unbound = opened(browser.cookie("__Host-session").unwrap());
        let shown = sealer.csrf_token(&unbound);
        browser.register(&offer).await;
        let post = |token: &str| {
            TestRequest::new("POST", "/whoami")
                .header("sec-fetch-site", "same-origin")
                .header("x-csrf-token", token)
        };
        assert_eq!(browser.send(post(&shown)).await.body, "alice first bound=true");
        let another = sealer.csrf_token(&sealed_session::Session::new(String::new()).with_user("alice", 0));
        assert_eq!(browser.send(post(&another)).await.status, 403);
        // Without the companion cookie, which names the unbound session:
        // refused.
        let bound_only = format!("__Host-session={}", browser.cookie("__Host-session").unwrap());
        assert_eq!(serve(&config, post(&shown).header("cookie", &bound_only)).await.status, 403);
        // Nor with the companion of another of alice's bound sessions,
        // registered at the same moment: it names that session's page.
        let mut other = Browser::new(&config, &clock);
        let other_offer = other.login_offer().await;
        let other_shown = sealer.csrf_token(&opened(other.cookie("__Host-session").unwrap()));
        other.register(&other_offer).await;
        let mixed =
            format!("{bound_only}; __Host-session-dbsc={}", other.cookie("__Host-session-dbsc").unwrap());
        let request = post(&other_shown).header("cookie", &mixed);
        assert_eq!(serve(&config, request).await.status, 403, "another session's companion");

        let registered = format!("__Host-session-dbsc={}", browser.cookie("__Host-session-dbsc").unwrap());
        clock.advance(Duration::from_secs(LIFETIME + 1));
        browser.refresh_if_missing().await;
        assert_eq!(browser.send(post(&shown)).await.status, 403, "after the first refresh");
        // Nor with the companion of the registration sent again.
        let refreshed = format!("__Host-session={}", browser.cookie("__Host-session").unwrap());
        let replayed = post(&shown).header("cookie", format!("{refreshed}; {registered}"));
        assert_eq!(serve(&config, replayed).await.status, 403, "the registration's companion again");
        let bound = opened(browser.cookie("__Host-session").unwrap());
        assert_eq!(browser.send(post(&sealer.csrf_token(&bound))).await.status, 200);
    });
}

/// A refresh the browser sends as the session's ID changes (`renew_id`
/// on another request at that moment) carries the companion of the ended
/// ID: it is asked once more (`403`, a new challenge), not ended, and the
/// browser's retry, with the companion it has by then, refreshes. A retry
/// that still brings an ended session's companion ends the binding.
#[test]
fn a_refresh_that_crosses_an_id_renewal_is_asked_again_and_the_binding_lives() {
    run(async {
        let (clock, config, mut browser) = bound_browser().await;
        let challenge = browser.session.as_ref().unwrap().cached_challenge.clone();
        let held = browser.refresh_request(challenge.as_deref());
        let old_companion = browser.cookie("__Host-session-dbsc").unwrap();
        assert_eq!(browser.get("/renew").await.status, 200);
        let reply = serve(&config, held).await;
        assert_eq!(reply.status, 403, "{}", reply.body);
        assert!(
            reply.all("set-cookie").is_empty(),
            "the companion is not removed: {:?}",
            reply.all("set-cookie")
        );
        browser.cache_challenge(&reply);
        assert_eq!(browser.refresh().await.status, 200);
        clock.advance(Duration::from_secs(LIFETIME + 1));
        assert_eq!(browser.get("/whoami").await.body, "alice first bound=true");

        // The ended ID's companion, asked once more, brings it again: the
        // binding ends.
        let identifier = browser.session.as_ref().unwrap().identifier.clone();
        let with_old_companion = |challenge: &str| {
            TestRequest::new("POST", "/dbsc/refresh")
                .header("sec-secure-session-id", browser.value(&identifier))
                .header("cookie", format!("__Host-session-dbsc={old_companion}"))
                .header("secure-session-response", browser.value(&browser.key.proof(challenge, false)))
        };
        let cached = browser.session.as_ref().unwrap().cached_challenge.clone().unwrap();
        let reply = serve(&config, with_old_companion(&cached)).await;
        assert_eq!(reply.status, 403, "{}", reply.body);
        let (again, _) = sf_params(reply.header("secure-session-challenge").unwrap());
        assert_ends(&serve(&config, with_old_companion(again.trim_matches('"'))).await.body, &identifier);
    });
}

#[test]
fn a_changed_bound_session_keeps_its_binding_and_its_data_survives_refresh() {
    run(async {
        let (clock, _config, mut browser) = bound_browser().await;
        assert_eq!(browser.get("/update").await.status, 200);
        assert_eq!(browser.get("/renew").await.status, 200);
        clock.advance(Duration::from_secs(LIFETIME + 1));
        assert_eq!(browser.get("/whoami").await.body, "alice second bound=true");
    });
}

/// A bound session's data travels in its companion cookie too, which is
/// longer: data that fits the session cookie but not the companion is
/// refused, or the next refresh would bring back the old data from the
/// browser's old companion.
#[test]
fn a_change_too_large_for_the_companion_cookie_is_refused_not_undone_by_refresh() {
    run(async {
        let (clock, _config, mut browser) = bound_browser().await;
        let mut len = 4096;
        while browser.get(&format!("/grow/{len}")).await.status != 200 {
            len -= 1;
        }
        let before_refresh = browser.get("/whoami").await.body;
        assert_eq!(before_refresh, format!("alice {} bound=true", "x".repeat(len)));
        clock.advance(Duration::from_secs(LIFETIME + 1));
        assert_eq!(browser.get("/whoami").await.body, before_refresh, "the refresh kept the new data");
    });
}

/// A re-seal never moves a bound cookie's deadline: a thief holding only
/// the bound cookie, changing the session's data and renewing its ID every
/// few minutes without the device's key, still loses it one bound lifetime
/// after the last proof.
#[test]
fn a_bound_cookie_resealed_without_a_proof_still_dies_one_lifetime_after_the_last_proof() {
    run(async {
        let (clock, config, browser) = bound_browser().await;
        let mut stolen = browser.cookie("__Host-session").unwrap();
        let with = |path: &str, cookie: &str| {
            TestRequest::new("GET", path).header("cookie", format!("__Host-session={cookie}"))
        };
        for path in ["/update", "/renew", "/update"] {
            clock.advance(Duration::from_secs(LIFETIME / 4));
            let reply = serve(&config, with(path, &stolen)).await;
            assert_eq!(reply.status, 200, "{path}: {}", reply.body);
            let set = reply.all("set-cookie").into_iter().find_map(|c| c.strip_prefix("__Host-session="));
            let resealed = set.and_then(|c| c.split(';').next()).expect("a new bound cookie").to_owned();
            assert_ne!(resealed, stolen, "{path}");
            stolen = resealed;
        }
        clock.advance(Duration::from_secs(LIFETIME - 3 * (LIFETIME / 4) - 1));
        assert_eq!(whoami(&config, &stolen).await.body, "alice second bound=true");
        clock.advance(Duration::from_secs(1));
        assert_eq!(whoami(&config, &stolen).await.status, 401, "dead one lifetime after the last proof");
    });
}

#[test]
fn registration_refuses_what_it_must() {
    run(async {
        let (clock, config, mut alice) = browser_for(DeviceBinding::default());
        let offer = alice.login_offer().await;
        let (_, params) = sf_params(&offer);
        let challenge = params["challenge"].clone();
        let register = |cookie: String, proof: String| {
            TestRequest::new("POST", "/dbsc/register")
                .header("cookie", format!("__Host-session={cookie}"))
                .header("secure-session-response", sf_string(&proof))
        };
        let cookie = alice.cookie("__Host-session").unwrap();

        // Another session's challenge.
        let mut bob = Browser::new(&config, &clock);
        bob.send(TestRequest::new("GET", "/login")).await;
        let bob_cookie = bob.cookie("__Host-session").unwrap();
        refused(serve(&config, register(bob_cookie, alice.key.proof(&challenge, true))).await);

        // `alg: none` (with the key in its header and the right payload, so
        // that only the algorithm can refuse it), and a proof without its key.
        let real = alice.key.proof(&challenge, true);
        let mut parts = real.split('.');
        let (header, payload) = (parts.next().unwrap(), parts.next().unwrap());
        let mut header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        assert!(header.get("jwk").is_some());
        header["alg"] = serde_json::json!("none");
        let none = format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(header.to_string()));
        refused(serve(&config, register(cookie.clone(), none)).await);
        refused(serve(&config, register(cookie.clone(), alice.key.proof(&challenge, false))).await);
        // No session at all.
        let anonymous = TestRequest::new("POST", "/dbsc/register")
            .header("secure-session-response", sf_string(&alice.key.proof(&challenge, true)));
        refused(serve(&config, anonymous).await);

        // The right one works once; the same proof again does not.
        let good = alice.key.proof(&challenge, true);
        let reply = serve(&config, register(cookie.clone(), good.clone())).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        assert_eq!(reply.header("x-frame-options"), Some("DENY"));
        assert!(reply.header("access-control-allow-origin").is_none());
        refused(serve(&config, register(cookie, good)).await);
    });
}

/// A refused registration: `403`, with no cookie and no new offer (the
/// browser gives up; the session stays as it was).
fn refused(reply: Reply) {
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert!(reply.all("set-cookie").is_empty());
    assert!(reply.header("secure-session-registration").is_none(), "no new offer");
}

#[test]
fn refresh_refuses_tampered_identifiers_and_foreign_challenges() {
    run(async {
        let (clock, config, browser) = bound_browser().await;
        let session = browser.session.clone().unwrap();
        let companion = format!("__Host-session-dbsc={}", browser.cookie("__Host-session-dbsc").unwrap());

        // A tampered identifier: the binding ends, no cookie.
        let mut tampered = session.identifier.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let request = TestRequest::new("POST", "/dbsc/refresh")
            .header("sec-secure-session-id", sf_string(std::str::from_utf8(&tampered).unwrap()))
            .header("cookie", companion.clone());
        let reply = serve(&config, request).await;
        assert_ends(&reply.body, std::str::from_utf8(&tampered).unwrap());
        assert!(!reply.all("set-cookie").iter().any(|c| c.starts_with("__Host-session=")));

        // A registration challenge is no refresh challenge.
        let mut other = Browser::new(&config, &clock);
        let offer = other.login_offer().await;
        let (_, params) = sf_params(&offer);
        let request = browser.refresh_request(Some(&params["challenge"]));
        assert_eq!(serve(&config, request).await.status, 403);

        // Nor is a refresh challenge of another binding, even signed with
        // this binding's key.
        other.register(&offer).await;
        let reply = serve(&config, other.refresh_request(None)).await;
        let (foreign, _) = sf_params(reply.header("secure-session-challenge").unwrap());
        let reply = serve(&config, browser.refresh_request(Some(&foreign))).await;
        assert_eq!(reply.status, 403, "{}", reply.body);
        assert!(reply.all("set-cookie").is_empty());
    });
}

#[test]
fn the_legacy_header_names_are_accepted() {
    run(async {
        let (clock, _config, mut browser) = browser_for(DeviceBinding::default());
        browser.legacy_header = true;
        browser.get("/login").await;
        clock.advance(Duration::from_secs(LIFETIME + 1));
        assert_eq!(browser.get("/whoami").await.body, "alice first bound=true");
    });
}

#[test]
fn session_ids_and_proofs_are_taken_bare_as_chrome_sends_them_or_as_sf_strings() {
    run(async {
        for quoted in [false, true] {
            let (clock, _config, mut browser) = browser_for(DeviceBinding::default());
            browser.quoted = quoted;
            browser.get("/login").await;
            clock.advance(Duration::from_secs(LIFETIME + 1));
            assert_eq!(browser.get("/whoami").await.body, "alice first bound=true", "quoted: {quoted}");
            assert_eq!(browser.refreshes, 2, "registration, refresh with the proof: {quoted}");
        }
    });
}

#[test]
fn required_paths_refuse_unbound_sessions() {
    run(async {
        let (_clock, _config, mut browser) = browser_for(DeviceBinding::default().require_for("/admin"));
        let offer = browser.login_offer().await;
        assert_eq!(browser.send(TestRequest::new("GET", "/admin/users")).await.status, 403);
        assert_eq!(browser.send(TestRequest::new("GET", "/administrator")).await.status, 200);
        // What a router that decodes paths sends to `/admin`.
        for encoded in ["/%61dmin", "/%61dmin/users", "/%61%64%6D%69%6E"] {
            assert_eq!(browser.send(TestRequest::new("GET", encoded)).await.status, 403, "{encoded}");
        }
        // What a router that merges slashes (actix-web's and tower-http's
        // `NormalizePath`) or resolves dot segments sends there, and axum's
        // `/admin/{rest}` with a literal `..`.
        for spelled in [
            "//admin/users",
            "/admin//",
            "/./admin",
            "/x/../admin",
            "/%2Fadmin",
            "/admin/..",
            // Dots decoded, `%2F` kept: a WHATWG-style normalizer.
            "/q%2Fw/%2E%2E/admin",
        ] {
            assert_eq!(browser.send(TestRequest::new("GET", spelled)).await.status, 403, "{spelled}");
        }
        for elsewhere in ["//administrator", "/x/admin", "/"] {
            assert_eq!(browser.send(TestRequest::new("GET", elsewhere)).await.status, 200, "{elsewhere}");
        }
        browser.register(&offer).await;
        assert_eq!(browser.send(TestRequest::new("GET", "/admin/users")).await.status, 200);
        assert_eq!(browser.send(TestRequest::new("GET", "/admin")).await.status, 200);
    });
}

/// A request an outer layer of the same configuration passes on (one
/// layer added at two levels of a router) is refused on a path that
/// requires a bound session, as the inner layer sees the path: inside an
/// axum `Router::nest`, the outer layer saw another.
#[test]
fn a_request_passed_on_is_refused_on_a_path_that_requires_binding() {
    use sealed_session::web::{Nesting, Refusal};
    run(async {
        let (_clock, config, mut browser) = browser_for(DeviceBinding::default().require_for("/admin"));
        let offer = browser.login_offer().await;
        let outer = |browser: &mut Browser| {
            let cookie = browser.cookie_header();
            let config = Arc::clone(&config);
            async move {
                match config.begin(&TestRequest::new("GET", "/x/admin").header("cookie", cookie)).await {
                    Begin::Ready(handle) => handle,
                    other => panic!("{other:?}"),
                }
            }
        };
        let unbound = outer(&mut browser).await;
        let err = config.nested_in(&unbound, &TestRequest::new("GET", "/admin")).unwrap_err();
        assert!(matches!(err, Refusal::NotDeviceBound), "{err:?}");
        let elsewhere = config.nested_in(&unbound, &TestRequest::new("GET", "/x/admin"));
        assert!(matches!(elsewhere, Ok(Nesting::PassThrough)), "{elsewhere:?}");
        browser.register(&offer).await;
        let bound = outer(&mut browser).await;
        let passed = config.nested_in(&bound, &TestRequest::new("GET", "/admin"));
        assert!(matches!(passed, Ok(Nesting::PassThrough)), "{passed:?}");
    });
}

/// A login whose response is made while it waits on the store (a task
/// that raced the response) stops before it ends the request's session:
/// the new cookie could never reach the browser, and the user would be
/// signed out.
#[test]
fn a_login_the_response_overtook_ends_no_session() {
    use std::future::Future as _;
    let clock = ManualClock::at_unix(START);
    let config = config(&clock, DeviceBinding::default());
    run(async {
        let session = config.verifier().login("alice", "first".to_owned()).await.unwrap();
        let (_, set_cookie) = config.verifier().issue_cookie(session, config.cookie()).unwrap();
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        let Begin::Ready(handle) =
            config.begin(&TestRequest::new("GET", "/").header("cookie", &cookie)).await
        else {
            panic!("alice's request is let through")
        };
        let typed = handle.typed::<String>();
        let mut login = std::pin::pin!(typed.login("bob", "BOB".to_owned()));
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(login.as_mut().poll(&mut context).is_pending(), "waits on the store");
        let _ = handle.finish();
        let err = login.await.map(drop).unwrap_err();
        assert!(matches!(err, sealed_session::web::HandleError::Finished), "{err:?}");
        let value = cookie.strip_prefix("__Host-session=").unwrap();
        let reply = whoami(&config, value).await;
        assert_eq!(reply.body, "alice first bound=false", "alice's session is not ended");
    });
}

/// The offer to bind goes beside a registration the application offers
/// itself on the same response (the header is a list, and a response may
/// offer several), not over it.
#[test]
fn the_offer_goes_beside_the_applications_own_registration() {
    let clock = ManualClock::at_unix(START);
    let config = config(&clock, DeviceBinding::default());
    run(async {
        let Begin::Ready(handle) = config.begin(&TestRequest::new("GET", "/login")).await else {
            panic!("a login page is let through")
        };
        handle.typed::<String>().login("alice", "first".to_owned()).await.unwrap();
        let own = r#"(RS256);path="/sso/register";challenge="d""#;
        let mut response = TestResponse::default().with_header("secure-session-registration", own);
        handle.finish().write_to(&mut response);
        let offers = response.get_all("secure-session-registration");
        assert_eq!(offers.len(), 2, "{offers:?}");
        assert_eq!(offers[0], own);
        assert!(offers[1].starts_with("(ES256 RS256);path="), "{offers:?}");
    });
}

#[test]
fn a_bound_cookie_refused_a_moment_late_does_not_end_the_binding() {
    run(async {
        let (clock, config, mut browser) = bound_browser().await;
        let bound = browser.cookie("__Host-session").unwrap();
        let companion = browser.cookie("__Host-session-dbsc").unwrap();
        // A request that left before the cookie's Max-Age ran out, and
        // arrives after its sealed deadline.
        clock.advance(Duration::from_secs(LIFETIME));
        let late = TestRequest::new("GET", "/whoami")
            .header("cookie", format!("__Host-session={bound}; __Host-session-dbsc={companion}"));
        let reply = serve(&config, late).await;
        assert_eq!(reply.status, 401);
        assert!(
            !reply.all("set-cookie").iter().any(|c| c.starts_with("__Host-session-dbsc=")),
            "the companion cookie stays"
        );
        assert_eq!(browser.get("/whoami").await.body, "alice first bound=true", "the device refreshes");
    });
}

#[test]
fn binding_can_be_offered_to_every_signed_in_unbound_session() {
    run(async {
        let (clock, _offering, mut browser) =
            browser_for(DeviceBinding::default().offer_to_unbound_sessions());
        browser.send(TestRequest::new("GET", "/login")).await;
        // A later page, not the login, offers binding again...
        let page = browser.send(TestRequest::new("GET", "/whoami")).await;
        let offer = page
            .header("secure-session-registration")
            .expect("an unbound session is offered binding")
            .to_owned();
        browser.register(&offer).await;
        // ...until the session is bound.
        let page = browser.send(TestRequest::new("GET", "/whoami")).await;
        assert_eq!(page.body, "alice first bound=true");
        assert!(page.header("secure-session-registration").is_none());

        // By default only a login offers it.
        let config = config(&clock, DeviceBinding::default());
        let mut browser = Browser::new(&config, &clock);
        browser.send(TestRequest::new("GET", "/login")).await;
        assert!(browser
            .send(TestRequest::new("GET", "/whoami"))
            .await
            .header("secure-session-registration")
            .is_none());
    });
}

#[test]
fn the_endpoints_and_algorithms_are_what_the_configuration_names() {
    use sealed_session::dbsc::Algorithm;
    run(async {
        let (clock, config, mut browser) = browser_for(
            DeviceBinding::default()
                .registration_path("/auth/dbsc/start")
                .refresh_path("/auth/dbsc/refresh")
                .algorithms(&[Algorithm::Es256]),
        );
        let offer = browser.login_offer().await;
        let (algorithms, params) = sf_params(&offer);
        assert_eq!((algorithms.as_str(), params["path"].as_str()), ("(ES256)", "/auth/dbsc/start"));
        // The default paths are not endpoints here.
        let stray = TestRequest::new("POST", "/dbsc/register");
        assert!(matches!(config.begin(&stray).await, Begin::Ready(_) | Begin::Refuse(_)));
        let reply = browser.send_registration("/auth/dbsc/start", &params["challenge"]).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        browser.create_session(&reply);
        assert_eq!(browser.session.as_ref().unwrap().refresh_url, "/auth/dbsc/refresh");
        clock.advance(Duration::from_secs(LIFETIME + 1));
        assert_eq!(browser.get("/whoami").await.body, "alice first bound=true");

        // An empty list offers both.
        let config = self::config(&clock, DeviceBinding::default().algorithms(&[]));
        let mut browser = Browser::new(&config, &clock);
        assert!(browser.login_offer().await.starts_with("(ES256 RS256);"));
    });
}

#[test]
fn a_stolen_companion_cookie_does_not_refresh_under_another_binding() {
    run(async {
        let (clock, config, mut alice) = browser_for(DeviceBinding::default());
        alice.get("/login").await;
        let stolen = alice.cookie("__Host-session-dbsc").unwrap();
        // Mallory binds a session of her own, then presents Alice's
        // companion cookie with her own identifier and key.
        let mut mallory = Browser::new(&config, &clock);
        mallory.get("/login").await;
        mallory.jar.insert("__Host-session-dbsc".into(), Cookie { value: stolen, expires: None });
        mallory.jar.remove("__Host-session");
        clock.advance(Duration::from_secs(LIFETIME + 1));
        let identifier = mallory.session.clone().unwrap().identifier;
        let reply = mallory.refresh().await;
        assert_ends(&reply.body, &identifier);
        assert!(mallory.cookie("__Host-session").is_none(), "no cookie for Alice's session");
    });
}

#[test]
fn an_operator_can_inspect_a_bound_token_that_only_a_binding_sealer_opens() {
    run(async {
        let (clock, config, browser) = bound_browser().await;
        let bound = browser.cookie("__Host-session").unwrap();
        // The CLI's sealer: same keyring and cookie name, no binding.
        let plain = Sealer::builder(config.verifier().sealer().keyring().clone())
            .purpose("__Host-session")
            .clock(clock.clone())
            .build()
            .unwrap();
        assert_eq!(plain.device_bound_lifetime(), None);
        let inspection = plain.inspect(&bound).unwrap();
        assert!(inspection.device_bound);
        assert_eq!(inspection.user_id.as_deref(), Some("alice"));
        assert_eq!(plain.open_raw(&bound).unwrap_err(), sealed_session::OpenError::Invalid);
    });
}

#[test]
fn a_remembered_bound_session_lives_by_the_remember_me_timeouts() {
    run(async {
        let (clock, _config, mut browser) = browser_for(DeviceBinding::default());
        browser.get("/login-remembered").await;
        // A visit a day for three weeks: far past the standard timeouts and
        // the remember-me idle timeout, within its absolute one.
        for day in 1..=21 {
            clock.advance(Duration::from_secs(DAY));
            assert_eq!(browser.get("/whoami").await.body, "alice first bound=true", "day {day}");
        }
        // A week without a visit ends it, as for any remembered session.
        clock.advance(Duration::from_secs(7 * DAY));
        browser.refresh().await;
        assert!(browser.session.is_none());
    });
}

#[test]
fn an_unknown_identifier_is_refused_without_asking_the_store() {
    run(async {
        let (_clock, config, browser) = bound_browser().await;
        let session = browser.session.clone().unwrap();
        // The same keyring, and a store that is down: a refusal that needed
        // the store would be a 503.
        let down = Arc::new(
            WebConfig::builder(
                Sealer::builder(config.verifier().sealer().keyring().clone()),
                sealed_session::web::testing::UnreachableStore,
            )
            .device_bound_sessions(DeviceBinding::default())
            .build()
            .unwrap(),
        );
        let mut forged = session.identifier.into_bytes();
        let middle = forged.len() / 2;
        forged[middle] = if forged[middle] == b'A' { b'B' } else { b'A' };
        let request = TestRequest::new("POST", "/dbsc/refresh")
            .header("sec-secure-session-id", sf_string(std::str::from_utf8(&forged).unwrap()));
        let Begin::Answer(answer) = down.begin(&request).await else { panic!("not an answer") };
        assert_eq!(answer.status(), 200);
        assert_ends(answer.body(), std::str::from_utf8(&forged).unwrap());
    });
}

/// What this thread logs, at every level up to `debug`, from
/// [`ThreadLogs::start`] to [`ThreadLogs::stop`].
struct ThreadLogs {
    logs: &'static std::sync::Mutex<Vec<u8>>,
    guard: tracing::subscriber::DefaultGuard,
}

impl ThreadLogs {
    fn start() -> Self {
        use tracing_subscriber::fmt::MakeWriter as _;
        let logs: &'static std::sync::Mutex<Vec<u8>> = Box::leak(Box::default());
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || logs.make_writer())
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .finish();
        Self { logs, guard: tracing::subscriber::set_default(subscriber) }
    }

    fn stop(self) -> String {
        drop(self.guard);
        String::from_utf8(self.logs.lock().unwrap().clone()).unwrap()
    }
}

/// The browser's `Secure-Session-Skipped` is logged by its reason alone (no
/// session identifier), at `info` once a minute at most, since any client
/// can send it with every request, else at `debug`.
#[test]
fn a_skipped_refresh_is_said_once_a_minute_at_most() {
    run(async {
        let (clock, config, _browser) = bound_browser().await;
        let skipped = TestRequest::new("GET", "/whoami")
            .header("secure-session-skipped", "quota_exceeded;session_identifier=\"AgAAsecret\"");
        let logs = ThreadLogs::start();
        for _ in 0..3 {
            assert!(matches!(config.begin(&skipped).await, Begin::Ready(_)));
        }
        clock.advance(Duration::from_secs(60));
        assert!(matches!(config.begin(&skipped).await, Begin::Ready(_)));
        let logged = logs.stop();
        let said = |level: &str| {
            logged
                .lines()
                .filter(|l| {
                    l.contains(level)
                        && l.contains("skipped a DBSC refresh")
                        && l.ends_with(" skipped=quota_exceeded")
                })
                .count()
        };
        assert_eq!((said("INFO"), said("DEBUG")), (2, 2), "{logged}");
        assert!(!logged.contains("AgAAsecret"), "{logged}");
    });
}

/// An identifier under a key this server does not have yet (a rollout it
/// lags behind in) gets `503`, and the browser tries again later; one under
/// a key removed from the keyring (below its newest) ends the session, as
/// an unknown identifier does, instead of `503` until the binding expires.
#[test]
fn an_identifier_under_a_newer_key_waits_and_one_under_a_removed_key_ends() {
    run(async {
        let (_clock, config, browser) = bound_browser().await;
        let identifier = browser.session.clone().unwrap().identifier;
        let server = |keyring: Keyring| {
            Arc::new(
                WebConfig::builder(Sealer::builder(keyring), sealed_session::web::testing::UnreachableStore)
                    .device_bound_sessions(DeviceBinding::default())
                    .build()
                    .unwrap(),
            )
        };
        let refresh =
            TestRequest::new("POST", "/dbsc/refresh").header("sec-secure-session-id", sf_string(&identifier));

        let sealed_under = config.verifier().sealer().keyring().current();
        let key = sealed_under.keys().next().unwrap().id;
        let behind = Keyring::new([KeySpec::new(key - 1, KeyState::Primary, MasterKey::generate().unwrap())]);
        let behind = server(behind.unwrap());
        // Any client can name a key ID: `warn` once a minute at most, as
        // for session cookies.
        let logs = ThreadLogs::start();
        for _ in 0..3 {
            let Begin::Answer(answer) = behind.begin(&refresh).await else { panic!("no answer") };
            assert_eq!(answer.status(), 503, "{}", answer.body());
        }
        let logged = logs.stop();
        let lines = |level: &str| logs::lines_with(&logged, level, &["DBSC session identifier refused"]);
        assert_eq!((lines("WARN"), lines("INFO")), (1, 2), "{logged}");

        let (next, id) = sealed_under.with_new_key().unwrap();
        let moved = next.with_primary(id).unwrap();
        let removed = Keyring::new(moved.keys().filter(|k| k.id != key).cloned()).unwrap();
        let Begin::Answer(answer) = server(removed).begin(&refresh).await else { panic!("no answer") };
        assert_eq!(answer.status(), 200);
        assert_ends(answer.body(), &identifier);
    });
}

/// The companion cookie follows the identifier's rule: under a key this
/// server does not have yet it waits (`503`), under a removed key it is no
/// companion, and the refresh ends the session.
#[test]
fn a_companion_under_a_newer_key_waits_and_one_under_a_removed_key_ends() {
    run(async {
        let (clock, config, mut browser) = bound_browser().await;
        let keyring = config.verifier().sealer().keyring().current();
        let (next, newer) = keyring.with_new_key().unwrap();
        let server = |keyring: Keyring| config_on(keyring, &clock, DeviceBinding::default(), |b| b);
        // A server a key ahead refreshes: the identifier stays under the old
        // key, the companion is sealed again under the newer one.
        browser.config = server(next.with_primary(newer).unwrap());
        assert_eq!(browser.refresh().await.status, 200);
        let refresh = browser.refresh_request(None);

        let behind = Keyring::new(keyring.keys().cloned()).unwrap();
        let answer = serve(&server(behind), refresh.clone()).await;
        assert_eq!(answer.status, 503, "{}", answer.body);
        // So does a server that holds the newer key as due to seal later
        // (the others promoted it ahead of its schedule).
        let due = time::OffsetDateTime::from_unix_timestamp(START + 2 * 86_400).unwrap();
        let scheduled =
            next.keys().map(|k| if k.id == newer { k.clone().activate_at(due) } else { k.clone() });
        let answer = serve(&server(Keyring::new(scheduled).unwrap()), refresh.clone()).await;
        assert_eq!(answer.status, 503, "{}", answer.body);

        let (after, newest) = next.with_new_key().unwrap();
        let removed = after.with_primary(newest).unwrap();
        let removed = Keyring::new(removed.keys().filter(|k| k.id != newer).cloned()).unwrap();
        let answer = serve(&server(removed), refresh).await;
        assert_eq!(answer.status, 200);
        assert_ends(&answer.body, &browser.session.clone().unwrap().identifier);
    });
}

#[test]
fn binding_and_the_end_of_a_binding_are_audited() {
    run(async {
        let clock = ManualClock::at_unix(START);
        let events = Recorder::default();
        let record = events.clone();
        let config = config_with(&clock, DeviceBinding::default(), |builder| builder.audit(record));
        let mut browser = Browser::new(&config, &clock);
        browser.get("/login").await;
        let bound_ref = SessionRef::of(bound_id(&config, &browser));
        let (login, bound) = {
            let events = events.take();
            assert_eq!(events.len(), 2, "{events:?}");
            (events[0].clone(), events[1].clone())
        };
        assert_eq!(login.kind, AuditKind::Login { remembered: false });
        assert_eq!(bound.kind, AuditKind::DeviceBound);
        assert_eq!(bound.user_id.as_deref(), Some("alice"));
        assert_eq!((bound.previous, bound.session), (login.session, Some(bound_ref)), "bound under a new ID");

        // Logged out, a device that kept the companion cookie is refused for
        // good, and the audit log says why and whose session it was.
        let companion = browser.cookie("__Host-session-dbsc").unwrap();
        browser.get("/logout").await;
        browser.jar.insert("__Host-session-dbsc".into(), Cookie { value: companion, expires: None });
        clock.advance(Duration::from_secs(LIFETIME + 1));
        events.take();
        let identifier = browser.session.clone().unwrap().identifier;
        assert_ends(&browser.refresh().await.body, &identifier);
        let ended = events.take();
        assert_eq!(ended.len(), 1, "{ended:?}");
        assert_eq!(ended[0].kind, AuditKind::DeviceBindingEnded { reason: "revoked_session" });
        assert_eq!((ended[0].user_id.as_deref(), ended[0].session), (Some("alice"), Some(bound_ref)));

        // Without the companion cookie, the refusal names the user the
        // identifier names, and why.
        clock.advance(Duration::from_secs(LIFETIME + 1));
        let mut thief = Browser::new(&config, &clock);
        thief.get("/login").await;
        thief.jar.remove("__Host-session-dbsc");
        thief.jar.remove("__Host-session");
        events.take();
        let identifier = thief.session.clone().unwrap().identifier;
        assert_ends(&thief.refresh().await.body, &identifier);
        let ended = events.take();
        assert_eq!(ended.len(), 1, "{ended:?}");
        assert_eq!(ended[0].kind, AuditKind::DeviceBindingEnded { reason: "no_companion" });
        assert_eq!(ended[0].user_id.as_deref(), Some("alice"));
        // The identifier carries the binding's ID, not the session's: no
        // session is named rather than a wrong one.
        assert_eq!(ended[0].session, None);
    });
}

/// The ID of the browser's bound session.
fn bound_id(config: &Config, browser: &Browser) -> sealed_session::SessionId {
    let cookie = browser.cookie("__Host-session").unwrap();
    config.verifier().sealer().inspect(&cookie).unwrap().session_id
}

/// Endpoints at the same path, or at one the offer's structured-field string
/// cannot carry, are refused when the configuration is built.
#[test]
fn endpoint_paths_that_cannot_work_are_refused() {
    // Built for a session cookie at `path` (`/`: the default one).
    let build = |path: &str, registration: &str, refresh: &str| {
        let cookie = match path {
            "/" => sealed_session::CookieSpec::default(),
            _ => sealed_session::CookieSpec::named("__Secure-app").unwrap().path(path).unwrap(),
        };
        let binding = DeviceBinding::default().registration_path(registration).refresh_path(refresh);
        let sealer = Sealer::builder(Keyring::generate().unwrap());
        WebConfig::builder(sealer, MemoryStore::new())
            .cookie(cookie)
            .device_bound_sessions(binding)
            .build()
            .err()
    };
    assert!(build("/", "/auth/bind", "/auth/refresh").is_none());
    assert!(build("/app", "/app/dbsc/register", "/app").is_none());
    for (path, registration, refresh) in [
        ("/", "/dbsc", "/dbsc"),
        ("/", "dbsc/register", "/r"),
        ("/", "/r", ""),
        ("/", "/caf\u{e9}", "/r"),
        ("/", "/a b", "/r"),
        ("/", "/r", "/\t"),
        // Within the session cookie's `Path` (RFC 6265's path-match), or
        // the browser sends no session to bind or refresh.
        ("/app", "/dbsc/register", "/app/dbsc/refresh"),
        ("/app", "/app/dbsc/register", "/application/refresh"),
        ("/app", "/ap", "/app/r"),
    ] {
        let refused = build(path, registration, refresh);
        assert!(
            matches!(refused, Some(sealed_session::web::WebConfigError::DeviceBindingPaths)),
            "{path:?} {registration:?} {refresh:?}: {refused:?}"
        );
    }
}

/// The hosts allowed to start a refresh go out with the registration's
/// instructions (`allowed_refresh_initiators`), and only when some were
/// named; a pattern the draft's matching cannot use is refused when the
/// configuration is built.
#[test]
fn the_hosts_allowed_to_start_a_refresh_are_sent_at_registration() {
    run(async {
        let registered = async |binding: DeviceBinding| {
            let (_clock, _config, mut browser) = browser_for(binding);
            let offer = browser.login_offer().await;
            let (_, params) = sf_params(&offer);
            let reply = browser.send_registration(&params["path"], &params["challenge"]).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            serde_json::from_str::<serde_json::Value>(&reply.body).unwrap()
        };
        let plain = registered(DeviceBinding::default()).await;
        assert!(plain.get("allowed_refresh_initiators").is_none(), "{plain}");
        let named =
            ["app.example.com", "*.example.com", "192.0.2.7", "a_b.xn--bcher-kva.example", "localhost", "*"];
        let binding = named.iter().fold(DeviceBinding::default(), |b, p| b.allow_refresh_from(*p));
        let json = registered(binding).await;
        assert_eq!(json["allowed_refresh_initiators"], serde_json::json!(named), "{json}");
    });
    for bad in [
        "",
        "*example.com",
        "**.example.com",
        "*.",
        "https://app.example.com",
        "app.example.com:443",
        "app.example.com/",
        "App.example.com",
        "a..example.com",
        "-a.example.com",
        "[::1]",
        " app.example.com",
        "example.com.",
        "b\u{fc}cher.example",
        // Addresses a browser writes otherwise, or a wildcard over one.
        "1.2.3",
        "01.2.3.4",
        "256.1.1.1",
        "0x7f.0.0.1",
        "example.123",
        "*.192.0.2.7",
    ] {
        let sealer = Sealer::builder(Keyring::generate().unwrap());
        let refused = WebConfig::builder(sealer, MemoryStore::new())
            .device_bound_sessions(DeviceBinding::default().allow_refresh_from(bad))
            .build()
            .err();
        assert!(
            matches!(&refused, Some(sealed_session::web::WebConfigError::DeviceBindingInitiator(p)) if p == bad),
            "{bad:?}: {refused:?}"
        );
    }
}

/// A bound lifetime longer than the idle timeout is refused (a copied bound
/// cookie would outlive it, and the companion cookie lapse between
/// refreshes); the longest one, under the longest timeouts, is too long for
/// the challenges sent ahead to outlive it by `CHALLENGE_LIFETIME`, and is
/// taken as is: building never panics.
#[test]
fn a_bound_lifetime_longer_than_the_idle_timeout_is_refused_without_a_panic() {
    let build = |lifetime: Duration| {
        let sealer = Sealer::builder(Keyring::generate().unwrap()).idle_timeout(Duration::from_secs(900));
        let binding = DeviceBinding::default().bound_lifetime(lifetime);
        WebConfig::builder(sealer, MemoryStore::new()).device_bound_sessions(binding).build()
    };
    assert!(build(Duration::from_secs(900)).is_ok(), "the idle timeout itself");
    let longest = Sealer::builder(Keyring::generate().unwrap())
        .absolute_timeout(Duration::MAX)
        .idle_timeout(Duration::MAX);
    let binding = DeviceBinding::default().bound_lifetime(Duration::MAX);
    let built = WebConfig::builder(longest, MemoryStore::new()).device_bound_sessions(binding).build();
    assert!(built.is_ok(), "{:?}", built.err());
    for longer in [Duration::from_secs(901), Duration::MAX] {
        let refused = build(longer).err();
        assert!(
            matches!(
                refused,
                Some(sealed_session::web::WebConfigError::Sealer(
                    sealed_session::ConfigError::DeviceBoundLifetime
                ))
            ),
            "{longer:?}: {refused:?}"
        );
    }
}

/// A login from a browser that brings the companion cookies of two bound
/// sessions whose bound cookies have lapsed ends both, and the audit log
/// says so for each: the login names the first as the session it replaced,
/// and the other is logged out (it used to end with no event at all). A
/// `__Host-` companion cookie sent twice counts as none; under a
/// `__Secure-` name a second one can come from a sibling subdomain or
/// another path.
#[test]
fn a_login_that_ends_two_lapsed_bound_sessions_audits_both() {
    run(async {
        let clock = ManualClock::at_unix(START);
        let events = Recorder::default();
        let record = events.clone();
        let config = config_with(&clock, DeviceBinding::default(), |builder| {
            builder.cookie(sealed_session::CookieSpec::named("__Secure-app").unwrap()).audit(record)
        });
        let sealer = config.verifier().sealer();
        let mut laptop = Browser::new(&config, &clock);
        laptop.get("/login").await;
        let mut tablet = Browser::new(&config, &clock);
        tablet.get("/login").await;
        let bound = |browser: &Browser| {
            let cookie = browser.cookie("__Secure-app").unwrap();
            (sealer.open::<String>(&cookie).unwrap().into_session(), cookie)
        };
        let ((laptop_session, laptop_bound), (tablet_session, tablet_bound)) =
            (bound(&laptop), bound(&tablet));
        let both = format!(
            "__Secure-app-dbsc={}; __Secure-app-dbsc={}",
            laptop.cookie("__Secure-app-dbsc").unwrap(),
            tablet.cookie("__Secure-app-dbsc").unwrap()
        );
        let login = TestRequest::new("POST", "/login")
            .header("cookie", &both)
            .header("sec-fetch-site", "same-origin")
            .header("x-csrf-token", sealer.csrf_token(&laptop_session));
        events.take();

        let reply = serve(&config, login).await;
        assert_eq!((reply.status, reply.body.as_str()), (200, "signed in"));
        for (name, cookie) in [("laptop", &laptop_bound), ("tablet", &tablet_bound)] {
            let request =
                TestRequest::new("GET", "/whoami").header("cookie", format!("__Secure-app={cookie}"));
            assert_eq!(serve(&config, request).await.status, 401, "the {name}'s lapsed session ended");
        }
        let taken = events.take();
        let logouts: Vec<_> = taken.iter().filter(|event| event.kind == AuditKind::Logout).collect();
        let logins: Vec<_> =
            taken.iter().filter(|event| event.kind == AuditKind::Login { remembered: false }).collect();
        assert_eq!((logouts.len(), logins.len()), (1, 1), "{taken:?}");
        assert_eq!(logins[0].previous, Some(SessionRef::of(laptop_session.id())), "{taken:?}");
        let ended = (logouts[0].user_id.as_deref(), logouts[0].session);
        assert_eq!(ended, (Some("alice"), Some(SessionRef::of(tablet_session.id()))), "{taken:?}");

        // The same companion twice names one session: audited once.
        let mut phone = Browser::new(&config, &clock);
        phone.get("/login").await;
        let (phone_session, _) = bound(&phone);
        let companion = phone.cookie("__Secure-app-dbsc").unwrap();
        let login = TestRequest::new("POST", "/login")
            .header("cookie", format!("__Secure-app-dbsc={companion}; __Secure-app-dbsc={companion}"))
            .header("sec-fetch-site", "same-origin")
            .header("x-csrf-token", sealer.csrf_token(&phone_session));
        events.take();
        assert_eq!(serve(&config, login).await.status, 200);
        let events = events.take();
        let kinds: Vec<_> = events.iter().map(|event| (event.kind, event.previous)).collect();
        let login = AuditKind::Login { remembered: false };
        assert_eq!(kinds, [(login, Some(SessionRef::of(phone_session.id())))], "{events:?}");
    });
}

/// What a refused request logs, through the `http` crate's request view
/// (axum's, hyper's): its method and the first segment of its path, never
/// its query or the rest of its path, where an application may carry a
/// secret (a reset token): a request the CSRF check refuses and one a
/// device-bound path refuses.
#[cfg(feature = "http")]
#[test]
fn a_refused_requests_log_line_has_its_method_and_path_but_not_its_query() {
    use tracing_subscriber::fmt::MakeWriter as _;
    let (clock, config, mut browser) = browser_for(DeviceBinding::default().require_for("/admin"));
    run(browser.login_offer());
    let cookie = format!("__Host-session={}", browser.cookie("__Host-session").unwrap());
    let parts = |method: &str, uri: &str, site: &str| {
        let request = http::Request::builder().method(method).uri(uri).header("sec-fetch-site", site);
        request.header("cookie", &cookie).body(()).unwrap().into_parts().0
    };
    for (request, message, path) in [
        (parts("POST", "/form?reset=SECRET", "cross-site"), "CSRF check refused", "/form"),
        (
            parts("GET", "/admin/SECRET?reset=SECRET", "same-origin"),
            "requires a device-bound session",
            "/admin/...",
        ),
    ] {
        let logs: &'static std::sync::Mutex<Vec<u8>> = Box::leak(Box::default());
        let begun = tracing::subscriber::with_default(
            tracing_subscriber::fmt().with_writer(move || logs.make_writer()).with_ansi(false).finish(),
            || run(config.begin(&request)),
        );
        assert!(matches!(begun, Begin::Refuse(_)), "{begun:?}");
        let logged = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
        let line = logged.lines().find(|line| line.contains(message)).expect("the refusal is logged");
        let method = request.method.as_str();
        assert!(
            line.contains(&format!("method={method}")) && line.contains(&format!("path={path}")),
            "{line}"
        );
        assert!(line.contains(" INFO "), "logged at info: {line}");
        assert!(!logged.contains("SECRET") && !logged.contains("reset="), "{logged}");
    }
    drop(clock);
}
