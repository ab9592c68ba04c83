//! The layer and extractors, driven through an axum router with a real
//! memory store and a manual clock.
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Form;
use axum::routing::{get, post};
use axum::{Json, Router};
use http::header::{CACHE_CONTROL, COOKIE, SET_COOKIE, VARY};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use sealed_session::web::testing::UnreachableStore;
use sealed_session::web::{HandleError, SessionHandle, WebConfig, WebConfigBuilder, MAX_FLASHES};
use sealed_session::{
    CookieSpec, Keyring, ManualClock, MemoryStore, RevocationStore, SealError, Sealer, SharedKeyring,
};
use sealed_session_axum::{Flashes, Level, Session, SessionError, SessionLayer, Sessions};
use sealed_session_testkit::adapter::{self as shared, CookieJar, Data};
use tower::ServiceExt as _;

const START: i64 = 1_800_000_000;

/// A change on a route whose answer the application marks cacheable.
async fn cached_increment(
    sessions: Sessions<Data>,
) -> Result<([(http::HeaderName, &'static str); 1], String), SessionError> {
    let count = shared::increment::<_, SessionError>(sessions).await?;
    Ok(([(CACHE_CONTROL, "public, max-age=60")], count))
}

/// Tries to store more than a cookie holds, though within the sealer's
/// 4096-byte maximum; says which error came back.
async fn grow(sessions: Sessions<Data>) -> (StatusCode, String) {
    match sessions.update(|data| data.note = "x".repeat(2980)) {
        Err(HandleError::Seal(SealError::TooLarge { len, max })) => {
            (StatusCode::PAYLOAD_TOO_LARGE, format!("{len} {max}"))
        }
        other => (StatusCode::OK, format!("{other:?}")),
    }
}

async fn login_keeping(sessions: Sessions<Data>) -> Result<String, SessionError> {
    let keep = |before: Option<sealed_session::Session<Data>>| {
        before.filter(|s| s.user_id().is_none()).map(sealed_session::Session::into_data).unwrap_or_default()
    };
    Ok(sessions.login_with("alice", keep).await?.id().to_hex())
}

async fn flash(sessions: Sessions<Data>, body: String) -> Result<(), SessionError> {
    for message in body.split(',') {
        sessions.flash(Level::Success, message)?;
    }
    Ok(())
}

async fn logout_with_flash(sessions: Sessions<Data>) -> Result<(), SessionError> {
    sessions.logout().await?;
    Ok(sessions.flash(Level::Info, "Signed out")?)
}

async fn login_remembered(sessions: Sessions<Data>) -> Result<String, SessionError> {
    let options = sealed_session_axum::LoginOptions::default().remember(true);
    Ok(sessions.login_with_options("alice", options, |_| Data::default()).await?.id().to_hex())
}

async fn session_id(session: Session<Data>) -> String {
    session.id().to_hex()
}

async fn logout(sessions: Sessions<Data>) -> Result<(), SessionError> {
    Ok(sessions.logout().await?)
}

/// Logs in, and says how the response may be cached.
async fn login_cached(
    sessions: Sessions<Data>,
) -> Result<([(http::HeaderName, &'static str); 1], String), SessionError> {
    let session = sessions.login("alice", Data::default()).await?;
    Ok(([(CACHE_CONTROL, "private, max-age=5")], session.id().to_hex()))
}

async fn form(
    _: Session<Data>,
    Form(fields): Form<BTreeMap<String, String>>,
) -> Json<BTreeMap<String, String>> {
    Json(fields)
}

type Builder = WebConfigBuilder<Arc<MemoryStore>>;
/// The handle and the error of the shared handlers, as this adapter names them.
type H = Sessions<Data>;
type E = SessionError;

/// A layer for `sealer` and `store` with the default settings.
fn layer_for<S: RevocationStore>(sealer: sealed_session::SealerBuilder, store: S) -> SessionLayer<S> {
    SessionLayer::new(WebConfig::builder(sealer, store).build().unwrap())
}

struct Harness {
    app: Router,
    clock: ManualClock,
    keyring: SharedKeyring,
    store: Arc<MemoryStore>,
}

impl Harness {
    fn new() -> Self {
        Self::with(|builder| builder)
    }

    /// A harness whose layer is configured by `configure`.
    fn with(configure: impl FnOnce(Builder) -> Builder) -> Self {
        let clock = ManualClock::at_unix(START);
        let store = Arc::new(MemoryStore::with_clock(clock.clone()));
        let keyring = SharedKeyring::new(Keyring::generate().unwrap());
        let sealer = Sealer::builder(keyring.clone()).clock(clock.clone());
        let layer =
            SessionLayer::new(configure(WebConfig::builder(sealer, Arc::clone(&store))).build().unwrap());
        Self { app: router().layer(layer), clock, keyring, store }
    }

    fn client(&self) -> Client {
        Client { app: self.app.clone(), jar: CookieJar::default() }
    }
}

fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/whoami", get(shared::whoami::<Session<Data>>))
        .route("/required", get(shared::required::<Session<Data>>))
        .route("/signed-in", get(shared::signed_in::<sealed_session_axum::SignedIn<Data>>))
        .route("/login", post(shared::login::<H, E>))
        .route("/increment", post(shared::increment::<H, E>))
        .route("/cached-increment", post(cached_increment))
        .route("/renew", post(shared::renew::<H, E>))
        .route("/anonymous-increment", post(shared::anonymous_increment::<H, E>))
        .route("/login-keeping", post(login_keeping))
        .route("/id", get(session_id))
        .route("/login-remembered", post(login_remembered))
        .route("/flash", post(flash))
        .route("/logout-with-flash", post(logout_with_flash))
        .route("/flashes", get(shared::flashes::<Flashes>))
        .route("/take-flashes", get(shared::take_flashes::<H>))
        .route("/exempt", post(shared::whoami::<Session<Data>>))
        .route("/grow", post(grow))
        .route("/logout", post(logout))
        .route("/logout-everywhere", post(shared::logout_everywhere::<H, E>))
        .route("/csrf", get(shared::csrf::<H, E>))
        .route("/login-cached", post(login_cached))
        .route("/form", post(form))
}

/// A client with a cookie jar.
struct Client {
    app: Router,
    jar: CookieJar,
}

struct Reply {
    status: StatusCode,
    set_cookies: Vec<String>,
    cache_control: Option<String>,
    vary: Vec<String>,
    body: String,
}

impl Client {
    async fn send(&mut self, request: http::request::Builder, body: Body) -> Reply {
        let request = match self.jar.header() {
            Some(cookies) => request.header(COOKIE, cookies),
            None => request,
        };
        let response: Response<Body> = self.app.clone().oneshot(request.body(body).unwrap()).await.unwrap();
        let status = response.status();
        let set_cookies: Vec<String> =
            response.headers().get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect();
        let cache_control = response.headers().get(CACHE_CONTROL).map(|v| v.to_str().unwrap().to_owned());
        let vary = response.headers().get_all(VARY).iter().map(|v| v.to_str().unwrap().to_owned()).collect();
        self.jar.apply(&set_cookies);
        let body =
            String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
        Reply { status, set_cookies, cache_control, vary, body }
    }

    async fn get(&mut self, path: &str) -> Reply {
        self.send(Request::get(path), Body::empty()).await
    }

    async fn post(&mut self, path: &str, token: &str) -> Reply {
        self.send(
            Request::post(path).header("x-csrf-token", token).header("sec-fetch-site", "same-origin"),
            Body::empty(),
        )
        .await
    }

    async fn csrf(&mut self) -> String {
        let reply = self.get("/csrf").await;
        assert_eq!(reply.status, StatusCode::OK);
        reply.body
    }

    async fn login(&mut self) -> Reply {
        let token = self.csrf().await;
        let reply = self.post("/login", &token).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply
    }

    fn session_cookie(&self) -> Option<String> {
        self.jar.get("__Host-session").cloned()
    }
}

#[tokio::test]
async fn login_sets_a_host_cookie_with_secure_attributes_and_later_requests_do_not_set_it_again() {
    let harness = Harness::new();
    let mut client = harness.client();

    let pre = client.get("/csrf").await;
    shared::assert_a_login_page(&pre.set_cookies);
    let reply = client.post("/login", &pre.body).await;
    assert_eq!(reply.status, StatusCode::OK);
    shared::assert_a_login_answer(&reply.set_cookies, reply.cache_control.as_deref());

    let again = client.get("/required").await;
    assert_eq!((again.status, again.body.as_str()), (StatusCode::OK, "alice"));
    assert!(again.set_cookies.is_empty(), "an unchanged session is not sent again: {:?}", again.set_cookies);
    assert_eq!(again.cache_control, None);
}

#[tokio::test]
async fn unsafe_requests_without_the_right_csrf_token_are_refused_and_change_nothing() {
    let harness = Harness::new();
    let mut client = harness.client();
    let mut other = harness.client();
    let others_token = other.csrf().await;

    for token in ["", "not-a-token", others_token.as_str()] {
        let reply = client.post("/login", token).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "token {token:?}");
        assert!(reply.set_cookies.is_empty());
    }
    // Even with a pre-session of its own, the token must be its own.
    client.csrf().await;
    assert_eq!(client.post("/login", &others_token).await.status, StatusCode::FORBIDDEN);
    assert_eq!(client.get("/whoami").await.body, "anonymous");

    client.login().await;
    let session_token = client.csrf().await;
    assert_eq!(client.post("/increment", &others_token).await.status, StatusCode::FORBIDDEN);
    assert_eq!(client.get("/whoami").await.body, "alice 0");
    assert_eq!(client.post("/increment", &session_token).await.body, "1");
    let reply = client.get("/whoami").await;
    assert_eq!(reply.body, "alice 1");
    assert_eq!(reply.vary, ["cookie"], "the page shows the session: caches must key it by the cookie");
}

#[tokio::test]
async fn a_session_too_large_for_its_cookie_is_one_seal_error_and_changes_nothing() {
    let harness = Harness::new();
    let mut client = harness.client();
    client.login().await;
    let token = client.csrf().await;
    let before = client.session_cookie();
    let reply = client.post("/grow", &token).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", reply.body);
    let (len, max) = reply.body.split_once(' ').unwrap();
    assert_eq!(max.parse::<usize>().unwrap(), CookieSpec::default().max_token_len());
    let len = len.parse::<usize>().unwrap();
    assert!(
        len > max.parse().unwrap() && len <= 4096,
        "within the sealer's maximum, not the cookie's: {len}"
    );
    assert!(reply.set_cookies.is_empty(), "nothing is sent: {:?}", reply.set_cookies);
    assert_eq!(client.session_cookie(), before);
    assert_eq!(client.post("/increment", &token).await.body, "1", "the session is unchanged and usable");
}

#[tokio::test]
async fn a_neighbour_cookie_holding_utf8_does_not_sign_the_user_out() {
    let harness = Harness::new();
    let mut client = harness.client();
    client.jar.insert("tracker".into(), "café".into()); // set by a parent domain, say
    client.login().await;
    assert_eq!(client.get("/whoami").await.body, "alice 0");
    let token = client.csrf().await;
    assert_eq!(client.post("/increment", &token).await.body, "1");
}

#[tokio::test]
async fn a_fresh_login_invalidates_the_old_csrf_token() {
    let harness = Harness::new();
    let mut client = harness.client();
    client.login().await;
    let old = client.csrf().await;
    client.login().await;
    assert_eq!(client.post("/increment", &old).await.status, StatusCode::FORBIDDEN);
    let new = client.csrf().await;
    assert_eq!(client.post("/increment", &new).await.status, StatusCode::OK);
}

#[tokio::test]
async fn cross_site_requests_are_refused_even_with_a_valid_token() {
    let harness = Harness::new();
    let mut client = harness.client();
    client.login().await;
    let token = client.csrf().await;

    let cross = |site: &str| {
        Request::post("/increment").header("x-csrf-token", &token).header("sec-fetch-site", site)
    };
    for site in ["cross-site", "same-site"] {
        let reply = client.send(cross(site), Body::empty()).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{site}");
    }
    // Older browsers: Origin only. HTTPS is expected, whatever the Origin says.
    let with_origin = |origin: &str, host: &str| {
        Request::post("/increment")
            .header("x-csrf-token", &token)
            .header("host", host)
            .header("origin", origin)
    };
    for origin in ["https://evil.test", "http://app.test", "null"] {
        let reply = client.send(with_origin(origin, "app.test"), Body::empty()).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{origin}");
    }
    assert_eq!(client.get("/whoami").await.body, "alice 0");
    let reply = client.send(with_origin("https://app.test", "app.test"), Body::empty()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(client.get("/whoami").await.body, "alice 1");
    // Plain http only on loopback, where browsers treat it as secure.
    let reply = client.send(with_origin("http://127.0.0.1:3000", "127.0.0.1:3000"), Body::empty()).await;
    assert_eq!(reply.status, StatusCode::OK);

    // Methods are case-sensitive: a lowercase `get` is not GET, and is checked.
    let lowercase = Request::builder().method("get").uri("/increment");
    assert_eq!(client.send(lowercase, Body::empty()).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_token_is_read_from_a_form_field_and_the_handler_still_gets_the_whole_form() {
    let harness = Harness::new();
    let mut client = harness.client();
    client.login().await;
    let token = client.csrf().await;
    let form = |body: String| {
        (
            Request::post("/form")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("sec-fetch-site", "same-origin"),
            Body::from(body),
        )
    };

    let (request, body) = form(format!("name=value&csrf_token={token}"));
    let reply = client.send(request, body).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, format!(r#"{{"csrf_token":"{token}","name":"value"}}"#));

    let (request, body) = form("name=value&csrf_token=wrong".to_owned());
    assert_eq!(client.send(request, body).await.status, StatusCode::FORBIDDEN);
    let (request, body) = form(format!("csrf_token={token}&pad={}", "x".repeat(70_000)));
    assert_eq!(
        client.send(request, body).await.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "a form over the limit is refused"
    );
}

/// Writes `tracing` output where the test can read it.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    fn take(&self) -> String {
        String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
    }
}

#[tokio::test]
async fn every_bad_cookie_gets_the_same_no_session_answer_and_the_log_says_why() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    // Every level: a value logged at `debug` or `trace` leaks as well.
    let every_level = tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE);
    let subscriber = every_level.with_writer(move || writer.clone()).with_ansi(false).finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let harness = Harness::new();
    let mut nobody = harness.client();
    let baseline = nobody.get("/required").await;
    assert_eq!((baseline.status, baseline.body.as_str()), (StatusCode::UNAUTHORIZED, "no session"));
    assert!(baseline.set_cookies.is_empty());

    let mut client = harness.client();
    client.login().await;
    let valid = client.session_cookie().unwrap();
    let mut tampered = valid.clone().into_bytes();
    // A character in the middle: every value there decodes, so only the
    // authentication tag can catch the change (the last one may not decode).
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let unknown_key = {
        // Key 2: the server's keyring has only key 1.
        let (other, id) = Keyring::generate().unwrap().with_new_key().unwrap();
        let other =
            Sealer::builder(other.with_primary(id).unwrap()).clock(harness.clock.clone()).build().unwrap();
        other.seal(&sealed_session::Session::new(Data::default()).with_user("alice", 0)).unwrap()
    };

    let check = async |value: &str, reason: &str| {
        let mut probe = harness.client();
        probe.jar.insert("__Host-session".into(), value.to_owned());
        let reply = probe.get("/required").await;
        if reason == "not in this server's keyring" {
            // Kept, and `503`, not "no session": during a key rollout this
            // server may only lag behind, and a client told `401` would
            // drop a session that lives.
            assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reason}");
            assert_eq!(reply.body, "session unavailable on this server, try again", "{reason}");
            assert!(reply.set_cookies.is_empty(), "{reason}: {:?}", reply.set_cookies);
        } else {
            assert_eq!(reply.status, baseline.status, "{reason}");
            assert_eq!(reply.body, baseline.body, "{reason}");
            assert_eq!(reply.set_cookies.len(), 1, "{reason}: the bad cookie is removed");
            assert!(
                reply.set_cookies[0].starts_with("__Host-session=;")
                    && reply.set_cookies[0].contains("Max-Age=0")
            );
        }
        let log = logs.take();
        assert!(log.contains(reason), "log should say {reason:?}: {log}");
        // Nor any 16 characters of it.
        let pieces = value.as_bytes().windows(16.min(value.len())).map(|w| std::str::from_utf8(w).unwrap());
        for piece in pieces {
            assert!(!log.contains(piece), "the log holds {piece:?} of the cookie value");
        }
    };
    check(&tampered, "failed authentication").await;
    check(&unknown_key, "not in this server's keyring").await;
    check("garbage", "malformed").await;

    harness.clock.advance(Duration::from_secs(31 * 60));
    check(&valid, "session expired (idle timeout)").await;
    harness.clock.set_unix(START);

    harness.store.revoke_user("alice").await.unwrap();
    check(&valid, "the user logged out everywhere").await;
}

#[tokio::test]
async fn logout_removes_the_cookie_and_the_old_value_is_refused_afterwards() {
    let harness = Harness::new();
    let mut client = harness.client();
    client.login().await;
    let old = client.session_cookie().unwrap();
    let token = client.csrf().await;

    let reply = client.post("/logout", &token).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.set_cookies.iter().any(|c| c.starts_with("__Host-session=;") && c.contains("Max-Age=0")));
    assert_eq!(client.session_cookie(), None);

    let mut replay = harness.client();
    replay.jar.insert("__Host-session".into(), old);
    assert_eq!(replay.get("/required").await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn logout_everywhere_ends_the_users_other_sessions() {
    let harness = Harness::new();
    let (mut laptop, mut phone) = (harness.client(), harness.client());
    laptop.login().await;
    phone.login().await;
    assert_eq!(phone.get("/required").await.status, StatusCode::OK);

    let token = laptop.csrf().await;
    let reply = laptop.post("/logout-everywhere", &token).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "1"));
    assert_eq!(laptop.session_cookie(), None);
    assert_eq!(phone.get("/required").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(phone.session_cookie(), None, "the refused cookie was removed");
}

#[tokio::test]
async fn login_gives_a_new_session_id_and_logs_out_the_one_the_request_had() {
    let harness = Harness::new();
    let mut client = harness.client();
    let first_id = client.login().await.body;
    let first = client.session_cookie().unwrap();
    let token = client.csrf().await;
    let second_id = client.post("/login", &token).await.body;
    assert_ne!(first_id, second_id);

    let mut fixated = harness.client();
    fixated.jar.insert("__Host-session".into(), first);
    assert_eq!(fixated.get("/required").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(client.get("/required").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_session_is_sent_again_after_key_rotation_and_idle_renewal_only() {
    let harness = Harness::new();
    let mut client = harness.client();
    client.login().await;
    assert!(client.get("/required").await.set_cookies.is_empty());

    let (rotated, new_id) = harness.keyring.current().with_new_key().unwrap();
    harness.keyring.replace(rotated.with_primary(new_id).unwrap());
    let old = client.session_cookie().unwrap();
    let reply = client.get("/required").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.set_cookies.len(), 1, "re-issued under the new primary key");
    assert_ne!(client.session_cookie().unwrap(), old);
    assert!(client.get("/required").await.set_cookies.is_empty());

    // Idle renewal: after a quarter of the idle timeout the cookie slides.
    harness.clock.advance(Duration::from_secs(8 * 60));
    assert_eq!(client.get("/required").await.set_cookies.len(), 1);
    harness.clock.advance(Duration::from_secs(25 * 60));
    assert_eq!(
        client.get("/required").await.status,
        StatusCode::OK,
        "the renewed cookie outlives the first idle deadline"
    );
}

#[tokio::test]
async fn an_unreachable_store_gives_503_and_keeps_the_cookie() {
    let keyring = SharedKeyring::new(Keyring::generate().unwrap());
    let sealer = Sealer::builder(keyring.clone()).build().unwrap();
    let valid = sealer.seal(&sealed_session::Session::new(Data::default()).with_user("alice", 0)).unwrap();
    let layer = layer_for(Sealer::builder(keyring), UnreachableStore);
    let mut client = Client { app: router().layer(layer), jar: CookieJar::default() };

    client.jar.insert("__Host-session".into(), valid.clone());
    let reply = client.get("/required").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.set_cookies.is_empty(), "a store outage must not log anyone out");
    assert_eq!(client.session_cookie(), Some(valid));

    // Login fails visibly rather than issuing a session without an epoch.
    client.jar.clear();
    let token = client.csrf().await;
    let reply = client.post("/login", &token).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "session store unavailable, try again")
    );
    assert!(!reply.set_cookies.iter().any(|c| c.starts_with("__Host-session=")));
}

/// Logs written on this thread while `run` runs.
async fn logged_while<F: std::future::Future>(run: F) -> (F::Output, String) {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // Another thread, with no subscriber, may have found the callsite
    // disabled first: ask again.
    tracing::callsite::rebuild_interest_cache();
    let output = run.await;
    (output, logs.take())
}

#[tokio::test]
async fn handlers_without_the_layer_get_a_500_that_names_the_problem() {
    let app: Router = router();
    let mut client = Client { app, jar: CookieJar::default() };
    let (reply, logged) = logged_while(client.get("/required")).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    let named =
        logged.lines().filter(|l| l.contains("ERROR") && l.contains("a route that no session layer wraps"));
    assert_eq!(named.count(), 1, "{logged}");
}

/// A browser never sends a `__Host-` cookie twice: a second value (an
/// injected one, valid or not, in any `Cookie` header) makes the request
/// have no session at all, and nothing is removed (which value is ours is
/// not known). (The limit of four values for other names is the core's:
/// `tests/cookie_csrf.rs`.)
#[tokio::test]
async fn a_host_cookie_sent_twice_over_all_cookie_headers_is_no_session() {
    let harness = Harness::new();
    let mut client = harness.client();
    client.login().await;
    let valid = client.session_cookie().unwrap();
    let mut other = harness.client();
    other.login().await;
    let attacker = other.session_cookie().unwrap();
    let send = |headers: Vec<String>| {
        let mut request = Request::get("/required");
        for header in headers {
            request = request.header(COOKIE, header);
        }
        harness.app.clone().oneshot(request.body(Body::empty()).unwrap())
    };
    let ok = send(vec![format!("a=1; __Host-session={valid}"), "b=2".to_owned()]).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    for headers in [
        vec![format!("__Host-session=garbage; __Host-session={valid}")],
        vec![format!("__Host-session={attacker}"), format!("__Host-session={valid}")],
        vec![format!("__Host-session={valid}; x=1"), format!("__Host-session={attacker}")],
    ] {
        let response = send(headers.clone()).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{headers:?}");
        assert!(response.headers().get(SET_COOKIE).is_none(), "{headers:?}: nothing is removed");
    }
}

#[tokio::test]
async fn an_update_may_use_the_handle_inside_its_closure() {
    async fn nested(sessions: Sessions<Data>) -> Result<String, SessionError> {
        let inner = sessions.clone();
        Ok(sessions.update(|data| {
            data.count = 7;
            // Reads through the same handle while the update runs.
            format!("{} {}", inner.current().map(|s| s.data().count).unwrap_or(0), inner.csrf_token().is_ok())
        })?)
    }
    let harness = Harness::new();
    let mut client = harness.client();
    client.login().await;
    let token = client.csrf().await;
    let sealer = Sealer::builder(harness.keyring.clone()).clock(harness.clock.clone());
    let layer = layer_for(sealer, Arc::clone(&harness.store));
    client.app = Router::new().route("/nested", post(nested)).layer(layer);
    let reply = client.post("/nested", &token).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "0 true"));
    client.app = harness.app.clone();
    assert_eq!(client.get("/whoami").await.body, "alice 7");
}

/// Any tower service works behind the layer, not only an axum router: the
/// handle is in the request's extensions.
#[tokio::test]
async fn a_plain_tower_service_gets_the_handle_from_the_request_extensions() {
    use tower::{Layer as _, ServiceExt as _};

    let clock = ManualClock::at_unix(START);
    let sealer = Sealer::builder(Keyring::generate().unwrap()).clock(clock.clone());
    let layer = SessionLayer::new(
        WebConfig::builder(sealer, MemoryStore::with_clock(clock)).without_csrf().build().unwrap(),
    );
    let service = layer.layer(tower::service_fn(|request: Request<Body>| async move {
        let handle = request.extensions().get::<SessionHandle>().cloned().expect("the layer's handle");
        let sessions = handle.typed::<Data>();
        let body = match sessions.current() {
            Some(session) => session.user_id().unwrap_or("-").to_owned(),
            None => {
                sessions.login("carol", Data::default()).await.map_err(|err| err.to_string())?;
                "signed in".to_owned()
            }
        };
        Ok::<_, String>(Response::new(Body::from(body)))
    }));

    let response = service.clone().oneshot(Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
    let cookie =
        response.headers().get(SET_COOKIE).unwrap().to_str().unwrap().split(';').next().unwrap().to_owned();
    let request = Request::get("/").header(COOKIE, cookie).body(Body::empty()).unwrap();
    let response = service.oneshot(request).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"carol");
}

/// A tower service behind the layer that fails after its handler logged in
/// has no response to carry the cookie: the layer finishes the handle all
/// the same (a clone kept by a task changes nothing unseen) and logs that
/// the cookies were lost.
#[tokio::test]
async fn a_service_that_fails_after_a_login_finishes_the_handle_and_says_the_cookie_is_lost() {
    use tower::{Layer as _, ServiceExt as _};

    let logs = sealed_session_testkit::Logs::capture();
    let clock = ManualClock::at_unix(START);
    let sealer = Sealer::builder(Keyring::generate().unwrap()).clock(clock.clone());
    let layer = SessionLayer::new(
        WebConfig::builder(sealer, MemoryStore::with_clock(clock)).without_csrf().build().unwrap(),
    );
    let kept = Arc::new(Mutex::new(None::<SessionHandle>));
    // `/hang` never answers; anything else fails after a login.
    let service = layer.layer(tower::service_fn({
        let kept = Arc::clone(&kept);
        move |request: Request<Body>| {
            let kept = Arc::clone(&kept);
            async move {
                let handle =
                    request.extensions().get::<SessionHandle>().cloned().expect("the layer's handle");
                *kept.lock().unwrap() = Some(handle.clone());
                if request.uri().path() == "/hang" {
                    return std::future::pending().await;
                }
                handle
                    .typed::<Data>()
                    .login("carol", Data::default())
                    .await
                    .map_err(|err| err.to_string())?;
                Err::<Response<Body>, _>("failed after the login".to_owned())
            }
        }
    }));
    let failed = service.clone().oneshot(Request::get("/").body(Body::empty()).unwrap()).await;
    assert_eq!(failed.unwrap_err(), "failed after the login");
    let late = kept.lock().unwrap().take().unwrap().typed::<Data>().flash(Level::Info, "too late");
    assert!(matches!(late, Err(HandleError::Finished)), "{late:?}");
    assert_eq!(logs.lines_with(&["WARN", "cookies its response would have set are lost"]).len(), 1);

    // A request dropped before its answer (a timeout outside the layer, a
    // client that hung up) leaves no handle that takes changes either: a
    // task the handler spawned gets `Finished`, not an `Ok` that no
    // response carries.
    let hang = service.oneshot(Request::get("/hang").body(Body::empty()).unwrap());
    assert!(tokio::time::timeout(Duration::from_millis(50), hang).await.is_err(), "the request was answered");
    let late = kept.lock().unwrap().take().unwrap().typed::<Data>().flash(Level::Info, "unseen");
    assert!(matches!(late, Err(HandleError::Finished)), "{late:?}");
}

#[tokio::test]
async fn renewing_the_id_keeps_the_data_and_kills_the_old_cookie() {
    let harness = Harness::new();
    let mut client = harness.client();
    let first_id = client.login().await.body;
    let token = client.csrf().await;
    assert_eq!(client.post("/increment", &token).await.body, "1");
    let old = client.session_cookie().unwrap();

    let renewed = client.post("/renew", &token).await;
    assert_eq!(renewed.status, StatusCode::OK);
    assert_ne!(renewed.body, first_id);
    assert_eq!(client.get("/whoami").await.body, "alice 1", "same user and data under the new ID");
    let mut stolen = harness.client();
    stolen.jar.insert("__Host-session".into(), old);
    assert_eq!(stolen.get("/required").await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_multipart_form_without_the_csrf_header_is_refused() {
    let harness = Harness::new();
    let mut client = harness.client();
    client.login().await;
    let token = client.csrf().await;
    // The token is in a multipart field, which the layer does not read.
    let body =
        format!("--b\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n--b--\r\n");
    let request = || {
        Request::post("/increment")
            .header("content-type", "multipart/form-data; boundary=b")
            .header("sec-fetch-site", "same-origin")
    };
    let reply = client.send(request(), Body::from(body.clone())).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    // Nor a text/plain body that looks like a URL-encoded one (what a
    // `<form enctype="text/plain">` sends).
    let plain = Request::post("/increment")
        .header("content-type", "text/plain")
        .header("sec-fetch-site", "same-origin");
    let reply = client.send(plain, Body::from(format!("csrf_token={token}"))).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    // With the header, the same form goes through.
    let reply = client.send(request().header("x-csrf-token", &token), Body::from(body)).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "1"));
}

/// A request body that records whether anyone read it.
struct WatchedBody(Arc<std::sync::atomic::AtomicBool>);

impl http_body::Body for WatchedBody {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(bytes::Bytes::from_static(b"csrf_token=x")))))
    }
}

#[tokio::test]
async fn no_body_is_read_without_a_session_or_a_pre_session() {
    let harness = Harness::new();
    let mut client = harness.client();
    let read = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let request = Request::post("/increment")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin");
    let reply = client.send(request, Body::new(WatchedBody(Arc::clone(&read)))).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(
        !read.load(std::sync::atomic::Ordering::SeqCst),
        "the body of a request with nothing to check was read"
    );
    // With a pre-session, the same request's body is read for the token.
    client.csrf().await;
    let request = Request::post("/increment")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin");
    let reply = client.send(request, Body::new(WatchedBody(Arc::clone(&read)))).await;
    // The body never ends: read up to the form limit, and refused.
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        read.load(std::sync::atomic::Ordering::SeqCst),
        "the check reads the form when there is something to check"
    );
}

#[tokio::test]
async fn the_pre_session_has_a_purpose_of_its_own_and_lasts_at_most_two_hours() {
    let harness = Harness::new();
    let mut client = harness.client();
    let reply = client.get("/csrf").await;
    let set =
        reply.set_cookies.iter().find(|c| c.starts_with("__Host-session-csrf=")).expect("a pre-session");
    assert!(!set.contains("Max-Age"), "a browser-session cookie: {set}");
    // Its value is no session: sealed under another purpose.
    let pre = client.jar.get("__Host-session-csrf").cloned().unwrap();
    let mut other = harness.client();
    other.jar.insert("__Host-session".into(), pre);
    assert_eq!(other.get("/required").await.status, StatusCode::UNAUTHORIZED);

    // Within two hours it carries the login form's token...
    let token = client.csrf().await;
    harness.clock.advance(Duration::from_secs(2 * 60 * 60 - 60));
    assert_eq!(client.post("/login", &token).await.status, StatusCode::OK);
    // ...and not after.
    let mut late = harness.client();
    let token = late.csrf().await;
    harness.clock.advance(Duration::from_secs(2 * 60 * 60));
    assert_eq!(late.post("/login", &token).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn no_store_is_added_only_where_the_app_set_no_cache_control() {
    let harness = Harness::new();
    let mut client = harness.client();
    let reply = client.login().await;
    assert_eq!(reply.cache_control.as_deref(), Some("no-store"), "a response that sets the cookie");
    let token = client.csrf().await;
    let reply = client.post("/login-cached", &token).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.set_cookies.iter().any(|c| c.starts_with("__Host-session=")));
    assert_eq!(reply.cache_control.as_deref(), Some("private, max-age=5"), "the app's own header is kept");
}

/// A real Redis whose ACL user may read but not write: checks work,
/// revocations fail (a store that is half down).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_login_or_new_id_the_store_did_not_record_changes_no_cookie() {
    use sealed_session_testkit::redis::{acl_file, RedisOptions, RedisServer};
    let dir = tempfile::tempdir().unwrap();
    let users = acl_file(dir.path(), &[("reader", "pw", "~* &* +@all -@write")]);
    let redis =
        RedisServer::start_with(RedisOptions::default().args(&["--aclfile", users.to_str().unwrap()]));
    assert_eq!(
        redis.cli(&[
            "SET",
            "sealed-session:generation",
            &(sealed_session_testkit::unix_now() - 10).to_string()
        ]),
        "OK"
    );
    let url = format!("redis://reader:pw@127.0.0.1:{}/0", redis.port());
    let store = sealed_session_redis::RedisStore::connect(&url).await.unwrap();
    let layer = layer_for(Sealer::builder(Keyring::generate().unwrap()), store);
    let mut client = Client { app: router().layer(layer), jar: CookieJar::default() };
    client.login().await;
    let cookie = client.session_cookie().expect("signed in");

    let token = client.csrf().await;
    let reply = client.post("/logout", &token).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.body);
    assert!(reply.set_cookies.is_empty(), "the cookie was removed though the session was not revoked");
    assert_eq!(client.session_cookie(), Some(cookie.clone()));
    assert_eq!(client.get("/required").await.body, "alice", "still signed in, as the store says");

    // A login over the session, a new ID and a logout everywhere must end
    // the old session (or all of them) first: none goes ahead, and the
    // cookie stays, when the store cannot record that. A login that went
    // ahead would leave a planted session ID alive.
    for path in ["/login", "/renew", "/logout-everywhere"] {
        let token = client.csrf().await;
        let reply = client.post(path, &token).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {}", reply.body);
        assert!(reply.set_cookies.is_empty(), "{path}: {:?}", reply.set_cookies);
        assert_eq!(client.session_cookie(), Some(cookie.clone()), "{path}");
    }
}

/// The cookie's name and the sealer's purpose are one setting: a layer
/// whose cookie is named otherwise is not built, and a layer for another
/// cookie on the same keyring does not accept this layer's tokens.
#[tokio::test]
async fn the_cookie_name_must_be_the_sealers_purpose_and_tokens_do_not_cross_cookies() {
    use sealed_session::web::WebConfigError as LayerError;

    let harness = Harness::new();
    let admin = CookieSpec::named("__Host-admin").unwrap();
    let config = |purpose: &str| {
        let sealer = Sealer::builder(harness.keyring.clone()).purpose(purpose).clock(harness.clock.clone());
        WebConfig::builder(sealer, Arc::clone(&harness.store))
    };
    let mismatch = config("__Host-other").cookie(admin.clone()).build();
    match mismatch {
        Err(err @ LayerError::PurposeMismatch { .. }) => {
            let message = err.to_string();
            assert!(message.contains("__Host-admin") && message.contains("__Host-other"), "{message}");
        }
        other => panic!("a cookie named otherwise than the purpose was accepted: {other:?}"),
    }

    // Names that end like derived ones are refused, even when purpose and name agree.
    for name in ["__Host-admin-csrf", "__Host-admin-flash", "__Host-admin+remember", "__Host-admin+versioned"]
    {
        let cookie = CookieSpec::named(name).unwrap();
        let refused = config(name).cookie(cookie).build();
        assert!(matches!(refused, Err(LayerError::ReservedCookieName { .. })), "{name}: {refused:?}");
    }
    let bad_origin = config("__Host-session").trust_origin("null").build();
    assert!(matches!(bad_origin, Err(LayerError::Origin(_))), "{bad_origin:?}");

    let layer = SessionLayer::new(config("__Host-admin").cookie(admin).build().unwrap());
    let mut admin_client = Client { app: router().layer(layer), jar: CookieJar::default() };
    let mut client = harness.client();
    client.login().await;
    let token = client.session_cookie().unwrap();
    admin_client.jar.insert("__Host-admin".into(), token);
    let reply = admin_client.get("/whoami").await;
    assert_eq!(reply.body, "anonymous", "a token sealed for __Host-session opened as __Host-admin");
    admin_client.login().await;
    assert!(admin_client.jar.contains_key("__Host-admin"), "{:?}", admin_client.jar);
    assert_eq!(admin_client.get("/whoami").await.body, "alice 0", "the admin layer works on its own cookie");
}

#[tokio::test]
async fn an_anonymous_session_keeps_data_needs_its_own_csrf_token_and_login_carries_it_to_a_new_id() {
    let harness = Harness::new();
    let mut client = harness.client();
    let pre_token = client.csrf().await;
    assert!(client.jar.contains_key("__Host-session-csrf"));
    let reply = client.post("/anonymous-increment", &pre_token).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "1"));
    assert!(!client.jar.contains_key("__Host-session-csrf"), "the session's token replaces the pre-session");
    let anonymous = client.session_cookie().expect("an anonymous session cookie");
    assert_eq!(client.get("/whoami").await.body, "- 1");
    // Session<T> takes it; SignedIn<T> does not.
    assert_eq!(client.get("/required").await.body, "-");
    let reply = client.get("/signed-in").await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::UNAUTHORIZED, "no session"));

    // Unsafe requests on an anonymous session need its token.
    assert_eq!(client.post("/anonymous-increment", &pre_token).await.status, StatusCode::FORBIDDEN);
    let token = client.csrf().await;
    assert_eq!(client.post("/anonymous-increment", &token).await.body, "2", "the same session goes on");
    assert_eq!(client.session_cookie().map(|c| c != anonymous), Some(true), "sealed again");
    let anonymous = client.session_cookie().unwrap();

    // Login keeps the data under a new session ID; the anonymous one is over.
    let before = client.get("/id").await.body;
    let after = client.post("/login-keeping", &token).await.body;
    assert_eq!((before.len(), after.len()), (32, 32), "{before} {after}");
    assert_ne!(before, after, "a new session ID at login");
    assert_eq!(client.get("/whoami").await.body, "alice 2");
    assert_eq!(client.get("/signed-in").await.body, "alice");
    client.jar.insert("__Host-session".into(), anonymous);
    assert_eq!(client.get("/whoami").await.body, "anonymous", "the anonymous session was logged out");
}

#[tokio::test]
async fn a_flash_message_is_shown_once_works_before_login_and_survives_logout() {
    let harness = Harness::new();
    let mut client = harness.client();
    let token = client.csrf().await;
    let reply = client
        .send(
            Request::post("/flash").header("x-csrf-token", token).header("sec-fetch-site", "same-origin"),
            Body::from("Saved"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let set =
        reply.set_cookies.iter().find(|c| c.starts_with("__Host-session-flash=")).expect("a flash cookie");
    assert!(set.contains("Secure") && set.contains("HttpOnly") && !set.contains("Max-Age"), "{set}");
    assert!(client.session_cookie().is_none(), "no session is needed");

    // A HEAD request (a link checker's, a prefetch's) reads them and removes
    // nothing: axum routes it to the GET handler.
    let reply = client.send(Request::head("/flashes"), Body::empty()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        !reply.set_cookies.iter().any(|c| c.starts_with("__Host-session-flash=")),
        "{:?}",
        reply.set_cookies
    );
    let reply = client.get("/flashes").await;
    assert_eq!(reply.body, "success: Saved");
    assert!(reply
        .set_cookies
        .iter()
        .any(|c| c.starts_with("__Host-session-flash=;") && c.contains("Max-Age=0")));
    let reply = client.get("/flashes").await;
    assert_eq!(reply.body, "", "shown once");
    assert!(reply.set_cookies.is_empty(), "no flash cookie, nothing to remove: {:?}", reply.set_cookies);

    // Logout ends the session, not the message that says so.
    client.login().await;
    let token = client.csrf().await;
    assert_eq!(client.post("/logout-with-flash", &token).await.status, StatusCode::OK);
    assert!(client.session_cookie().is_none());
    // The handle reads them as the extractor does.
    assert_eq!(client.get("/take-flashes").await.body, "Signed out");

    // A session token is not a flash cookie, nor the other way round.
    client.login().await;
    let session = client.session_cookie().unwrap();
    client.jar.insert("__Host-session-flash".into(), session);
    let reply = client.get("/flashes").await;
    assert_eq!(reply.body, "");
    assert!(
        reply.set_cookies.iter().any(|c| c.starts_with("__Host-session-flash=;")),
        "the bad one is removed"
    );
}

#[tokio::test]
async fn flash_messages_are_capped_oldest_first_and_expire() {
    let harness = Harness::new();
    let mut client = harness.client();
    let token = client.csrf().await;
    let messages: Vec<String> = (0..MAX_FLASHES + 2).map(|i| format!("m{i}")).collect();
    let reply = client
        .send(
            Request::post("/flash").header("x-csrf-token", token).header("sec-fetch-site", "same-origin"),
            Body::from(messages.join(",")),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let expected: Vec<String> = messages[2..].iter().map(|m| format!("success: {m}")).collect();
    let kept = client.jar.clone();
    assert_eq!(client.get("/flashes").await.body, expected.join("|"));

    // Nine minutes on, an unread message is still there; past the timeout
    // (ten minutes, and the clock leeway) it is gone.
    client.jar = kept.clone();
    harness.clock.advance(Duration::from_secs(9 * 60));
    assert_eq!(client.get("/flashes").await.body, expected.join("|"));
    client.jar = kept;
    harness.clock.advance(sealed_session::web::FLASH_TIMEOUT + Duration::from_secs(61));
    assert_eq!(client.get("/flashes").await.body, "", "a message not read in time is gone");
}

/// Each message waits ten minutes from when it was added: a page that adds
/// one every few minutes never keeps an old one (or the previous user's, on
/// a shared browser) past its time, and a new one is not lost with it.
#[tokio::test]
async fn adding_a_flash_message_never_extends_the_unread_ones() {
    let harness = Harness::new();
    let mut client = harness.client();
    let token = client.csrf().await;
    let mut add = async |message: &str| {
        let request =
            Request::post("/flash").header("x-csrf-token", &token).header("sec-fetch-site", "same-origin");
        assert_eq!(client.send(request, Body::from(message.to_owned())).await.status, StatusCode::OK);
    };
    add("old").await;
    harness.clock.advance(Duration::from_secs(9 * 60));
    add("new").await;
    let kept = client.jar.clone();
    assert_eq!(client.get("/flashes").await.body, "success: old|success: new");
    client.jar = kept;
    harness.clock.advance(Duration::from_secs(60));
    assert_eq!(client.get("/flashes").await.body, "success: new", "ten minutes after the first");
}

#[tokio::test]
async fn a_csrf_exempt_path_takes_cross_site_posts_and_nothing_else_is_exempt() {
    let mut client = Harness::with(|builder| builder.csrf_exempt("/exempt")).client();
    let cross_site = |path: &str| {
        Request::post(path).header("sec-fetch-site", "cross-site").header("origin", "https://psp.example")
    };
    let reply = client.send(cross_site("/exempt"), Body::empty()).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "anonymous"));
    for path in ["/exempt/", "/EXEMPT", "/increment", "/login"] {
        assert_eq!(
            client.send(cross_site(path), Body::empty()).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    // Without the exemption the same request is refused.
    let mut strict = Harness::new().client();
    assert_eq!(strict.send(cross_site("/exempt"), Body::empty()).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn trusted_origins_and_same_site_pass_only_when_configured_and_still_need_the_token() {
    let harness = Harness::with(|builder| builder.trust_origin("https://admin.example").allow_same_site());
    let mut client = harness.client();
    client.login().await;
    let token = client.csrf().await;
    let post = |fetch_site: &str, origin: &str, token: Option<&str>| {
        let request =
            Request::post("/increment").header("sec-fetch-site", fetch_site).header("origin", origin);
        match token {
            Some(token) => request.header("x-csrf-token", token),
            None => request,
        }
    };
    let cases = [
        ("cross-site", "https://admin.example", Some(token.as_str()), StatusCode::OK),
        ("cross-site", "https://admin.example", None, StatusCode::FORBIDDEN),
        ("cross-site", "https://evil.example", Some(token.as_str()), StatusCode::FORBIDDEN),
        ("same-site", "https://dev.app.example", Some(token.as_str()), StatusCode::OK),
        ("same-site", "https://dev.app.example", Some("forged"), StatusCode::FORBIDDEN),
    ];
    for (fetch_site, origin, token, status) in cases {
        let reply = client.send(post(fetch_site, origin, token), Body::empty()).await;
        assert_eq!(reply.status, status, "{fetch_site} {origin} {token:?}");
    }
    assert_eq!(client.get("/whoami").await.body, "alice 2");

    // The defaults refuse both.
    let mut strict = Harness::new().client();
    strict.login().await;
    let token = strict.csrf().await;
    for (fetch_site, origin) in
        [("cross-site", "https://admin.example"), ("same-site", "https://dev.app.example")]
    {
        let reply = strict.send(post(fetch_site, origin, Some(&token)), Body::empty()).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{fetch_site}");
    }
}

#[tokio::test]
async fn the_csrf_header_and_form_field_names_can_be_changed() {
    let harness = Harness::with(|builder| builder.csrf_header("x-xsrf-token").csrf_field("_csrf"));
    let mut client = harness.client();
    let pre = client.csrf().await;
    let login = Request::post("/login").header("sec-fetch-site", "same-origin").header("x-xsrf-token", pre);
    assert_eq!(client.send(login, Body::empty()).await.status, StatusCode::OK);
    let token = client.csrf().await;
    let same_origin = || Request::post("/increment").header("sec-fetch-site", "same-origin");
    let by_header = |name: &str| same_origin().header(name, token.as_str());
    assert_eq!(client.send(by_header("x-csrf-token"), Body::empty()).await.status, StatusCode::FORBIDDEN);
    assert_eq!(client.send(by_header("x-xsrf-token"), Body::empty()).await.status, StatusCode::OK);
    let form = |field: &str| {
        (
            same_origin().header("content-type", "application/x-www-form-urlencoded"),
            Body::from(format!("{field}={token}")),
        )
    };
    let (request, body) = form("csrf_token");
    assert_eq!(client.send(request, body).await.status, StatusCode::FORBIDDEN);
    let (request, body) = form("_csrf");
    assert_eq!(client.send(request, body).await.status, StatusCode::OK);
    assert_eq!(client.get("/whoami").await.body, "alice 2");
}

#[tokio::test]
async fn a_route_that_requires_a_session_redirects_browsers_locally_and_answers_api_clients_401() {
    use sealed_session_axum::RequireSessionLayer;

    let harness = Harness::new();
    let guarded = Router::new()
        .route("/account", get(shared::whoami::<Session<Data>>))
        .route_layer(RequireSessionLayer::redirect_to("/login"));
    let sealer = Sealer::builder(harness.keyring.clone()).clock(harness.clock.clone());
    let layer = layer_for(sealer, Arc::clone(&harness.store));
    let mut client = Client { app: router().merge(guarded).layer(layer), jar: CookieJar::default() };
    let html = |path: &str| Request::get(path).header("accept", "text/html,application/xhtml+xml");

    let response =
        client.app.clone().oneshot(html("/account?tab=keys").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.headers()["location"], "/login?next=/account%3Ftab%3Dkeys");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    // (Paths that would leave the site: sealed_session::redirect's tests.)
    let nested = Router::new().nest(
        "/admin",
        Router::new()
            .route("/account", get(shared::whoami::<Session<Data>>))
            .route_layer(RequireSessionLayer::redirect_to("/login").nested_under("/admin")),
    );
    let sealer = Sealer::builder(harness.keyring.clone()).clock(harness.clock.clone());
    let layer = layer_for(sealer, Arc::clone(&harness.store));
    let response =
        nested.layer(layer).oneshot(html("/admin/account").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.headers()["location"], "/login?next=/admin/account", "the prefix comes back");
    let reply = client.get("/account").await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::UNAUTHORIZED, r#"{"error":"no session"}"#));

    // A session under a key this server lacks yet (a rollout it lags
    // behind in) lives elsewhere: `503`, not a redirect, and it is kept.
    let mut lagging = Client { app: client.app.clone(), jar: CookieJar::default() };
    let (ahead, id) = Keyring::generate().unwrap().with_new_key().unwrap();
    let ahead =
        Sealer::builder(ahead.with_primary(id).unwrap()).clock(harness.clock.clone()).build().unwrap();
    let unreadable =
        ahead.seal(&sealed_session::Session::new(Data::default()).with_user("alice", 0)).unwrap();
    lagging.jar.insert("__Host-session".into(), unreadable);
    let reply = lagging.send(html("/account"), Body::empty()).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.body);
    assert_eq!(reply.body, sealed_session::redirect::NoSessionAnswer::UNREADABLE_JSON_BODY);
    assert!(reply.set_cookies.is_empty(), "kept: {:?}", reply.set_cookies);

    // An anonymous session is not enough; a signed-in one is.
    let token = client.csrf().await;
    let anonymous = client.post("/anonymous-increment", &token).await;
    assert_eq!((anonymous.status, anonymous.body.as_str()), (StatusCode::OK, "1"));
    assert!(client.jar.contains_key("__Host-session"), "an anonymous session");
    assert_eq!(client.get("/account").await.status, StatusCode::UNAUTHORIZED);
    client.login().await;
    let reply = client.send(html("/account"), Body::empty()).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "alice 0"));

    // Without the session layer around it, the route is a 500 that says why.
    let bare = Router::new()
        .route("/account", get(|| async { "open" }))
        .route_layer(RequireSessionLayer::redirect_to("/"));
    let (response, logged) =
        logged_while(bare.oneshot(Request::get("/account").body(Body::empty()).unwrap())).await;
    assert_eq!(response.unwrap().status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(logged.contains("no session layer wraps"), "{logged}");
}

#[test]
#[should_panic(
    expected = "RequireSessionLayer::redirect_to: the login page \"/login\\r\\nSet-Cookie: a=b\" holds a character"
)]
fn a_login_page_no_location_header_can_carry_is_refused_when_the_route_is_built() {
    let _ = sealed_session_axum::RequireSessionLayer::redirect_to("/login\r\nSet-Cookie: a=b");
}

async fn reauthenticate(sessions: Sessions<Data>) -> Result<String, SessionError> {
    Ok(sessions.reauthenticate().await?.id().to_hex())
}

#[tokio::test]
async fn a_route_that_needs_a_recent_login_sends_an_older_one_to_reauthenticate() {
    use sealed_session_axum::RequireSessionLayer;

    let harness = Harness::new();
    let sudo = RequireSessionLayer::redirect_to("/reauth").authenticated_within(Duration::from_secs(600));
    let guarded = Router::new().route("/settings", get(shared::whoami::<Session<Data>>)).route_layer(sudo);
    let sealer = Sealer::builder(harness.keyring.clone()).clock(harness.clock.clone());
    let layer = layer_for(sealer, Arc::clone(&harness.store));
    let app = router().route("/reauth", post(reauthenticate)).merge(guarded).layer(layer);
    let mut client = Client { app, jar: CookieJar::default() };
    let html = || Request::get("/settings").header("accept", "text/html");

    assert_eq!(client.send(html(), Body::empty()).await.status, StatusCode::SEE_OTHER, "no session");
    client.login().await;
    let reply = client.send(html(), Body::empty()).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "alice 0"), "a login is recent");

    // Activity re-issues the session but does not renew the authentication.
    harness.clock.advance(Duration::from_secs(599));
    let reissued = client.get("/settings").await;
    assert_eq!(reissued.status, StatusCode::OK);
    assert!(reissued.set_cookies.iter().any(|c| c.starts_with("__Host-session=")), "re-issued");
    harness.clock.advance(Duration::from_secs(1));
    let cookie = client.jar.header().unwrap();
    let request = html().header(COOKIE, cookie).body(Body::empty()).unwrap();
    let response = client.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/reauth?next=/settings");
    let reply = client.get("/settings").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::UNAUTHORIZED, r#"{"error":"re-authentication required"}"#)
    );

    let before = client.get("/id").await.body;
    let token = client.csrf().await;
    let reply = client.post("/reauth", &token).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_ne!(reply.body, before, "a new ID");
    let reply = client.send(html(), Body::empty()).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "alice 0"), "recent again, same user");
}

#[tokio::test]
async fn bearer_tokens_when_enabled_carry_the_session_with_nothing_ambient() {
    use sealed_session::web::SESSION_TOKEN_HEADER;

    let harness = Harness::with(|builder| builder.bearer_tokens());
    let call = async |app: &Router, method: &str, path: &str, bearer: Option<&str>| {
        let mut request = Request::builder().method(method).uri(path).header("sec-fetch-site", "cross-site");
        if let Some(token) = bearer {
            request = request.header("authorization", format!("Bearer {token}").trim_end().to_owned());
        }
        let response = app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
        assert!(response.headers().get(SET_COOKIE).is_none(), "never a cookie in bearer mode");
        let token = response.headers().get(SESSION_TOKEN_HEADER).map(|v| v.to_str().unwrap().to_owned());
        if token.is_some() {
            assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
        }
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap(), token)
    };
    let app = &harness.app;

    // Signing in: `Bearer` with no token, no CSRF token, and a token back.
    let (status, _, token) = call(app, "POST", "/login", Some("")).await;
    assert_eq!(status, StatusCode::OK);
    let token = token.expect("the new session's token");
    assert_eq!(call(app, "GET", "/whoami", Some(&token)).await.1, "alice 0");
    // Unsafe requests need no CSRF token, and a change sends the new token.
    let (status, body, changed) = call(app, "POST", "/increment", Some(&token)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "1"));
    let token = changed.expect("the changed session's token");
    assert_eq!(call(app, "GET", "/whoami", Some(&token)).await.1, "alice 1");
    // A new token is never left cacheable, whatever the route says (`call`
    // checks for no-store).
    let (_, body, changed) = call(app, "POST", "/cached-increment", Some(&token)).await;
    assert_eq!(body, "2");
    let token = changed.expect("the changed session's token");
    // Nothing changed, nothing sent.
    assert_eq!(call(app, "GET", "/whoami", Some(&token)).await.2, None);
    // A key rotation re-issues the token through the header.
    let (rotated, new_id) = harness.keyring.current().with_new_key().unwrap();
    harness.keyring.replace(rotated.with_primary(new_id).unwrap());
    let (_, body, reissued) = call(app, "GET", "/whoami", Some(&token)).await;
    assert_eq!(body, "alice 2");
    let token = reissued.expect("the token under the new key");
    assert_eq!(call(app, "GET", "/whoami", Some(&token)).await.2, None, "once");
    // A token that does not open is no session, and the request goes on as such.
    assert_eq!(call(app, "GET", "/whoami", Some("AAAA")).await.1, "anonymous");

    // Cookies are not read in bearer mode.
    let mut client = harness.client();
    client.login().await;
    let cookie = format!("__Host-session={}", client.session_cookie().unwrap());
    let request = Request::get("/whoami").header("authorization", "Bearer").header(COOKIE, cookie);
    let response = app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(&response.into_body().collect().await.unwrap().to_bytes()[..], b"anonymous");

    // Logout revokes the token; no new one is sent.
    let (status, _, sent) = call(app, "POST", "/logout", Some(&token)).await;
    assert_eq!((status, sent), (StatusCode::OK, None));
    assert_eq!(call(app, "GET", "/whoami", Some(&token)).await.1, "anonymous");

    // Without the opt-in, a bearer header is just a header: the cookie rules apply.
    let strict = Harness::new();
    let (status, _, _) = call(&strict.app, "POST", "/login", Some("")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "CSRF still applies");
}

#[tokio::test]
async fn the_testing_helper_signs_in_through_the_layer_and_passes_its_csrf_check() {
    use sealed_session_axum::testing::{Apply as _, TestSession};

    let clock = ManualClock::at_unix(START);
    let sealer = Sealer::builder(Keyring::generate().unwrap()).clock(clock.clone());
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    let layer = SessionLayer::new(
        WebConfig::builder(sealer, Arc::clone(&store)).csrf_header("x-xsrf-token").build().unwrap(),
    );
    let app = router().layer(layer.clone());
    let alice =
        TestSession::sign_in(layer.config(), "alice", Data { count: 41, note: String::new() }).await.unwrap();
    assert!(alice.cookie().starts_with("__Host-session="));
    assert_eq!(alice.csrf_token().len(), sealed_session::csrf::MASKED_TOKEN_LEN);
    assert!(!format!("{alice:?}").contains(alice.csrf_token()), "Debug shows no secret");
    let request = alice.apply(Request::post("/increment")).body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(&response.into_body().collect().await.unwrap().to_bytes()[..], b"42");
    // The clock is the app's: past the idle timeout, the session is over.
    clock.advance(Duration::from_secs(31 * 60));
    let request = alice.apply(Request::get("/whoami")).body(Body::empty()).unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(&response.into_body().collect().await.unwrap().to_bytes()[..], b"anonymous");
}

#[tokio::test]
async fn remember_me_gives_a_persistent_cookie_that_outlives_the_standard_timeouts() {
    let clock = ManualClock::at_unix(START);
    let sealer = Sealer::builder(Keyring::generate().unwrap())
        .remember_me(Duration::from_secs(30 * 86_400), Duration::from_secs(7 * 86_400))
        .clock(clock.clone());
    let layer = SessionLayer::new(
        WebConfig::builder(sealer, MemoryStore::with_clock(clock.clone()))
            .cookie(CookieSpec::default().browser_session())
            .build()
            .unwrap(),
    );
    let app = router().layer(layer);
    let (mut remembered, mut standard) =
        (Client { app: app.clone(), jar: CookieJar::default() }, Client { app, jar: CookieJar::default() });

    let token = remembered.csrf().await;
    let reply = remembered.post("/login-remembered", &token).await;
    let cookie = reply.set_cookies.iter().find(|c| c.starts_with("__Host-session=")).unwrap();
    assert!(cookie.contains("; Max-Age=2592000;"), "persistent for 30 days: {cookie}");
    let reply = standard.login().await;
    let cookie = reply.set_cookies.iter().find(|c| c.starts_with("__Host-session=")).unwrap();
    assert!(!cookie.contains("Max-Age"), "a browser-session cookie: {cookie}");

    // Two days later: the standard session is long over, the remembered one
    // is not, and its renewal keeps the cookie persistent.
    clock.advance(Duration::from_secs(2 * 86_400));
    assert_eq!(standard.get("/whoami").await.body, "anonymous");
    let reply = remembered.get("/whoami").await;
    assert_eq!(reply.body, "alice 0");
    let renewed = reply.set_cookies.iter().find(|c| c.starts_with("__Host-session=")).expect("renewed");
    assert!(renewed.contains(&format!("; Max-Age={};", 28 * 86_400)), "{renewed}");

    // A sealer without remember-me refuses the option before anything changes.
    let harness = Harness::new();
    let mut client = harness.client();
    client.login().await;
    let (before, token) = (client.session_cookie(), client.csrf().await);
    let reply = client.post("/login-remembered", &token).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(reply.set_cookies.is_empty(), "{:?}", reply.set_cookies);
    assert_eq!(client.session_cookie(), before);
    assert_eq!(client.get("/whoami").await.body, "alice 0", "still signed in");
}

/// A server that lags behind in a key rollout keeps the cookie it cannot
/// read; starting an anonymous session there would replace (and so lose)
/// the user's session.
#[tokio::test]
async fn an_anonymous_session_never_replaces_a_cookie_sealed_under_a_key_this_server_lacks() {
    let harness = Harness::new();
    let (other, id) = Keyring::generate().unwrap().with_new_key().unwrap();
    let other =
        Sealer::builder(other.with_primary(id).unwrap()).clock(harness.clock.clone()).build().unwrap();
    let unknown_key =
        other.seal(&sealed_session::Session::new(Data::default()).with_user("alice", 0)).unwrap();
    let mut client = harness.client();
    client.jar.insert("__Host-session".into(), unknown_key.clone());
    let token = client.csrf().await;
    let reply = client.post("/anonymous-increment", &token).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.body);
    assert_eq!(reply.body, "session unavailable on this server, try again");
    assert!(reply.set_cookies.iter().all(|c| !c.starts_with("__Host-session=")), "{:?}", reply.set_cookies);
    assert_eq!(client.session_cookie(), Some(unknown_key.clone()), "the cookie is kept");

    // Nor do login and logout: neither could end that session on the
    // servers that read it.
    for path in ["/login", "/logout"] {
        let reply = client.post(path, &token).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {}", reply.body);
        assert!(
            reply.set_cookies.iter().all(|c| !c.starts_with("__Host-session=")),
            "{:?}",
            reply.set_cookies
        );
        assert_eq!(client.session_cookie(), Some(unknown_key.clone()), "{path}: the cookie is kept");
    }
}

/// tower-http middleware on either side of the layer: outside, its body
/// types reach the layer; inside, the router gets the layer's.
#[tokio::test]
async fn the_layer_composes_with_tower_http_middleware_on_either_side() {
    use tower_http::limit::RequestBodyLimitLayer;
    use tower_http::set_header::SetResponseHeaderLayer;

    let harness = Harness::new();
    let sealer = Sealer::builder(harness.keyring.clone()).clock(harness.clock.clone());
    let layer = layer_for(sealer, Arc::clone(&harness.store));
    let inside = SetResponseHeaderLayer::overriding(
        http::HeaderName::from_static("x-inner"),
        http::HeaderValue::from_static("yes"),
    );
    let app = router().layer(inside).layer(layer).layer(RequestBodyLimitLayer::new(1024));
    let mut client = Client { app: Router::new().fallback_service(app), jar: CookieJar::default() };
    client.login().await;
    let token = client.csrf().await;
    let form = |body: String| {
        (
            Request::post("/form")
                .header("sec-fetch-site", "same-origin")
                .header("content-type", "application/x-www-form-urlencoded"),
            Body::from(body),
        )
    };
    let (request, body) = form(format!("csrf_token={token}&note=hi"));
    let reply = client.send(request, body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // The outer limit applies to the body the layer reads for the token.
    let (request, body) = form(format!("csrf_token={token}&note={}", "x".repeat(2048)));
    assert_eq!(client.send(request, body).await.status, StatusCode::PAYLOAD_TOO_LARGE);
    let response =
        client.app.clone().oneshot(Request::get("/whoami").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.headers()["x-inner"], "yes");
}

/// A WebSocket handshake (a `GET` with `Upgrade`) from another site is
/// refused before the handler runs, as an unsafe request would be
/// (cross-site WebSocket hijacking); from this site it needs no token.
#[tokio::test]
async fn a_websocket_handshake_from_another_site_is_refused() {
    let harness = Harness::new();
    let mut client = harness.client();
    client.login().await;
    let handshake = |site: &str, origin: &str| {
        Request::get("/whoami")
            .header("upgrade", "websocket")
            .header("connection", "Upgrade")
            .header("sec-fetch-site", site)
            .header("origin", origin)
    };
    let refused = client.send(handshake("cross-site", "https://evil.example"), Body::empty()).await;
    assert_eq!((refused.status, refused.body.as_str()), (StatusCode::FORBIDDEN, "CSRF check failed"));
    let accepted = client.send(handshake("same-origin", "http://localhost"), Body::empty()).await;
    assert_eq!((accepted.status, accepted.body.as_str()), (StatusCode::OK, "alice 0"));
    // The same cross-site GET without Upgrade is an ordinary navigation.
    let request = Request::get("/whoami").header("sec-fetch-site", "cross-site");
    assert_eq!(client.send(request, Body::empty()).await.status, StatusCode::OK);
}

/// What every request allocates for the layer's future stays under 1 KiB:
/// glibc's per-thread cache serves blocks up to that size (1,032 bytes with
/// its header), and a larger one comes from its slower bins
/// (docs/BENCHMARKS.md, "The layer's own cost"). It grew past that before,
/// each time by a copy of the request's state or of the opened session
/// kept across an await.
#[test]
fn the_future_every_request_allocates_stays_under_1_kib() {
    use tower::{Layer as _, Service as _};
    let config = WebConfig::builder(Sealer::builder(Keyring::generate().unwrap()), MemoryStore::new())
        .build()
        .unwrap();
    let router: Router = Router::new().route("/", get(|| async { "x" }));
    let mut service = SessionLayer::new(config).layer(router);
    let future = service.call(Request::get("/").body(Body::empty()).unwrap());
    let size = std::mem::size_of_val(&*future);
    assert!(size < 1024, "the layer's future is {size} bytes");
}

/// One layer added at two levels of a router runs once: the inner one
/// passes the request on with the outer one's handle. Two drivers would
/// each finish the request: after a logout the outer one would renew the
/// session the inner one ended, over its removal. A layer for another
/// cookie inside runs its own session; another configuration's layer for
/// the same cookie inside is refused.
#[tokio::test]
async fn a_layer_added_twice_runs_once_and_a_second_configuration_is_refused() {
    let clock = ManualClock::at_unix(START);
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    let layer = || SessionLayer::new(shared::users_config(Arc::clone(&store), &clock));
    let once = layer();
    let mut client = Client { app: router().layer(once.clone()).layer(once), jar: CookieJar::default() };
    client.login().await;
    let token = client.csrf().await;
    clock.advance(Duration::from_secs(600)); // the cookie is due for renewal
    let reply = client.post("/logout", &token).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    shared::assert_one_removal_of_the_session(&reply.set_cookies);
    assert_eq!(client.session_cookie(), None, "logged out");

    let mut client = Client { app: router().layer(layer()).layer(layer()), jar: CookieJar::default() };
    let reply = client.get("/whoami").await;
    assert_eq!((reply.status.as_u16(), reply.body.as_str()), (500, "session middleware misconfigured"));

    let admin = || SessionLayer::new(shared::admin_config(Arc::clone(&store), &clock));
    let mut client = Client { app: router().layer(admin()).layer(layer()), jar: CookieJar::default() };
    let reply = client.get("/csrf").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(client.jar.get("__Host-admin-csrf").is_some(), "the inner layer's own: {:?}", reply.set_cookies);

    // Added twice with another cookie's layer between the two, it still
    // runs once: one re-issue of a session due for renewal, not two, and
    // the handlers inside it see its session, not the other cookie's.
    let users = layer();
    let mut client = Client { app: router().layer(users.clone()), jar: CookieJar::default() };
    client.login().await;
    client.app = router().layer(users.clone()).layer(admin()).layer(users);
    clock.advance(Duration::from_secs(600));
    let reply = client.get("/whoami").await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "alice 0"));
    let sessions = reply.set_cookies.iter().filter(|c| c.starts_with("__Host-session=")).count();
    assert_eq!(sessions, 1, "{:?}", reply.set_cookies);
    // And another configuration for the cookie, further out, is refused.
    client.app = router().layer(layer()).layer(admin()).layer(layer());
    assert_eq!(client.get("/whoami").await.status.as_u16(), 500);
}

/// One layer added both around a router and inside a router it nests:
/// the outer layer runs the request, and saw the whole path, so a path the
/// nested router requires a device-bound session for (named as that router
/// sees it) is refused when the inner layer passes the request on.
#[tokio::test]
async fn a_layer_added_inside_a_nest_too_refuses_unbound_sessions_on_the_nested_paths() {
    use sealed_session::web::DeviceBinding;
    let clock = ManualClock::at_unix(START);
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    let sealer = Sealer::builder(Keyring::generate().unwrap()).clock(clock.clone());
    let binding = DeviceBinding::default().require_for("/admin");
    let config = WebConfig::builder(sealer, store).device_bound_sessions(binding).build().unwrap();
    let layer = SessionLayer::new(config);
    let nested = Router::new().route("/admin", get(shared::whoami::<Session<Data>>)).layer(layer.clone());
    let mut client = Client { app: router().nest("/x", nested).layer(layer), jar: CookieJar::default() };
    client.login().await;
    assert_eq!(client.get("/whoami").await.body, "alice 0");
    let reply = client.get("/x/admin").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::FORBIDDEN, "this page needs a device-bound session")
    );
}

/// A body that changes the session when it is first read: after the layer
/// made the response's headers, as a streamed body or a task does.
struct LateChange(Option<Sessions<Data>>);

impl http_body::Body for LateChange {
    type Data = axum::body::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Ready(self.0.take().map(|sessions| {
            let late = sessions.update(|data| data.count += 1);
            Ok(http_body::Frame::data(
                format!("finished: {}", matches!(late, Err(HandleError::Finished))).into(),
            ))
        }))
    }
}

/// A change made while the body streams, after the response's headers
/// went out, is refused (`HandleError::Finished`) rather than returning
/// `Ok` and being lost: no cookie could carry it.
#[tokio::test]
async fn a_change_after_the_headers_went_out_is_refused_not_lost() {
    async fn late(sessions: Sessions<Data>) -> Body {
        Body::new(LateChange(Some(sessions)))
    }
    let harness = Harness::new();
    let sealer = Sealer::builder(harness.keyring.clone()).clock(harness.clock.clone());
    let layer = layer_for(sealer, Arc::clone(&harness.store));
    let mut client =
        Client { app: router().route("/late", get(late)).layer(layer), jar: CookieJar::default() };
    client.login().await;
    let reply = client.get("/late").await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "finished: true"));
    assert!(reply.set_cookies.is_empty(), "{:?}", reply.set_cookies);
    assert_eq!(client.get("/whoami").await.body, "alice 0", "the session is as it was");
}
