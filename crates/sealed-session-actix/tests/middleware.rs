//! The middleware and extractors, driven through an actix-web app with a
//! real memory store and a manual clock: the same rules as the axum layer.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::{CACHE_CONTROL, COOKIE, LOCATION, SET_COOKIE};
use actix_web::http::StatusCode;
use actix_web::{test, web, App, HttpResponse};
use sealed_session::{
    Keyring, ManualClock, MemoryStore, RevocationState, RevocationStore, Sealer, SessionId, StoreError,
    Verifier,
};
use sealed_session_actix::{
    Flashes, Level, RequireSession, Session, SessionError, SessionMiddleware, SessionMiddlewareBuilder,
    Sessions, SignedIn, SESSION_TOKEN_HEADER,
};
use serde::{Deserialize, Serialize};

const START: i64 = 1_800_000_000;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Data {
    count: u32,
}

async fn whoami(session: Option<Session<Data>>) -> String {
    session.map_or_else(
        || "anonymous".to_owned(),
        |s| format!("{} {}", s.user_id().unwrap_or("-"), s.data().count),
    )
}

async fn required(session: Session<Data>) -> String {
    session.user_id().unwrap_or("-").to_owned()
}

async fn signed_in(session: SignedIn<Data>) -> String {
    session.user_id().to_owned()
}

async fn csrf(sessions: Sessions<Data>) -> Result<String, SessionError> {
    sessions.csrf_token()
}

async fn login(sessions: Sessions<Data>) -> Result<String, SessionError> {
    let session = sessions.login("alice", Data::default()).await?;
    Ok(session.id().to_hex())
}

async fn increment(sessions: Sessions<Data>) -> Result<String, SessionError> {
    sessions.update(|data| {
        data.count += 1;
        data.count.to_string()
    })
}

/// A change on a route whose answer the application marks cacheable.
async fn cached_increment(sessions: Sessions<Data>) -> Result<HttpResponse, SessionError> {
    let count = increment(sessions).await?;
    Ok(HttpResponse::Ok().insert_header((CACHE_CONTROL, "public, max-age=60")).body(count))
}

async fn renew(sessions: Sessions<Data>) -> Result<String, SessionError> {
    sessions.renew_id().await?;
    Ok(sessions.current().unwrap().id().to_hex())
}

async fn logout_everywhere(sessions: Sessions<Data>) -> Result<String, SessionError> {
    Ok(sessions.logout_everywhere().await?.to_string())
}

async fn take_flashes(sessions: Sessions<Data>) -> String {
    sessions.take_flashes().into_iter().map(|f| f.message).collect::<Vec<_>>().join(",")
}

async fn info(session: Session<Data>) -> String {
    format!("{} {} {}", session.id().to_hex(), session.key_id(), session.csrf_token())
}

/// Each kind of session error, as a handler returns it.
async fn fail(kind: web::Path<String>) -> Result<String, SessionError> {
    let refused = || StoreError::unavailable(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
    Err(match kind.as_str() {
        "store" => SessionError::Store(refused()),
        "login-store" => SessionError::Login(sealed_session::LoginError::Store(refused())),
        "unreadable" => SessionError::UnreadableSession,
        "no-session" => SessionError::NoSession,
        _ => SessionError::Seal(sealed_session::SealError::NoRememberMe),
    })
}

async fn anonymous_increment(sessions: Sessions<Data>) -> Result<String, SessionError> {
    sessions
        .update_or_insert(Data::default, |data| {
            data.count += 1;
            data.count.to_string()
        })
        .await
}

async fn logout(sessions: Sessions<Data>) -> Result<HttpResponse, SessionError> {
    sessions.logout().await?;
    sessions.flash(Level::Success, "Signed out")?;
    Ok(HttpResponse::Ok().finish())
}

async fn flashes(flashes: Flashes) -> String {
    flashes.into_iter().map(|f| format!("{}: {}", f.level.as_str(), f.message)).collect::<Vec<_>>().join("\n")
}

#[derive(Deserialize)]
struct Item {
    item: String,
}

async fn form(form: web::Form<Item>) -> String {
    form.item.clone()
}

type Builder = SessionMiddlewareBuilder<Arc<MemoryStore>, Data>;

/// The middleware over a real memory store and a manual clock, configured
/// by `configure`.
fn middleware(configure: impl FnOnce(Builder) -> Builder) -> SessionMiddleware<Arc<MemoryStore>, Data> {
    let clock = ManualClock::at_unix(START);
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    let sealer = Sealer::builder(Keyring::generate().unwrap()).clock(clock).build().unwrap();
    configure(SessionMiddleware::builder(Verifier::new(sealer, store))).build().unwrap()
}

/// A client of the test app, its middleware configured by `$configure`.
macro_rules! client {
    ($configure:expr) => {
        Client {
            app: test::init_service(
                App::new()
                    .route("/whoami", web::get().to(whoami))
                    .route("/required", web::get().to(required))
                    .route("/signed-in", web::get().to(signed_in))
                    .route("/csrf", web::get().to(csrf))
                    .route("/login", web::post().to(login))
                    .route("/increment", web::post().to(increment))
                    .route("/renew", web::post().to(renew))
                    .route("/logout-everywhere", web::post().to(logout_everywhere))
                    .route("/take-flashes", web::get().to(take_flashes))
                    .route("/info", web::get().to(info))
                    .route("/fail/{kind}", web::get().to(fail))
                    .route("/cached-increment", web::post().to(cached_increment))
                    .route("/anonymous-increment", web::post().to(anonymous_increment))
                    .route("/logout", web::post().to(logout))
                    .route("/flashes", web::get().to(flashes))
                    .route("/form", web::post().to(form))
                    .route("/webhook", web::post().to(whoami))
                    .service(
                        web::resource("/account")
                            .wrap(RequireSession::<Data>::redirect_to("/"))
                            .route(web::get().to(required)),
                    )
                    .wrap(middleware($configure)),
            )
            .await,
            jar: BTreeMap::new(),
        }
    };
}

/// A client with a cookie jar that applies `Set-Cookie` as a browser would
/// (by name; `Max-Age=0` deletes).
struct Client<A> {
    app: A,
    jar: BTreeMap<String, String>,
}

#[derive(Debug)]
struct Reply {
    status: StatusCode,
    set_cookies: Vec<String>,
    cache_control: Option<String>,
    token_header: Option<String>,
    location: Option<String>,
    body: String,
}

impl<A, B> Client<A>
where
    A: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    async fn send(&mut self, request: test::TestRequest) -> Reply {
        let cookies: Vec<String> = self.jar.iter().map(|(name, value)| format!("{name}={value}")).collect();
        let request =
            if cookies.is_empty() { request } else { request.insert_header((COOKIE, cookies.join("; "))) };
        let response = test::call_service(&self.app, request.to_request()).await;
        let status = response.status();
        let header = |name| {
            response
                .headers()
                .get(name)
                .map(|v: &actix_web::http::header::HeaderValue| v.to_str().unwrap().to_owned())
        };
        let cache_control = header(CACHE_CONTROL);
        let location = header(LOCATION);
        let token_header = header(actix_web::http::header::HeaderName::from_static(SESSION_TOKEN_HEADER));
        let set_cookies: Vec<String> =
            response.headers().get_all(SET_COOKIE).map(|v| v.to_str().unwrap().to_owned()).collect();
        for set in &set_cookies {
            let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
        let body = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
        Reply { status, set_cookies, cache_control, token_header, location, body }
    }

    async fn get(&mut self, path: &str) -> Reply {
        self.send(test::TestRequest::get().uri(path)).await
    }

    async fn post(&mut self, path: &str, token: &str) -> Reply {
        self.send(
            test::TestRequest::post()
                .uri(path)
                .insert_header(("x-csrf-token", token))
                .insert_header(("sec-fetch-site", "same-origin")),
        )
        .await
    }

    async fn login(&mut self) -> Reply {
        let token = self.get("/csrf").await.body;
        let reply = self.post("/login", &token).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply
    }
}

#[actix_web::test]
async fn login_sets_a_host_cookie_with_secure_attributes_and_later_requests_do_not_set_it_again() {
    let mut client = client!(|b| b);
    {
        let pre = client.get("/csrf").await;
        assert_eq!(pre.set_cookies.len(), 1);
        assert!(pre.set_cookies[0].starts_with("__Host-session-csrf="), "{}", pre.set_cookies[0]);

        let reply = client.post("/login", &pre.body).await;
        assert_eq!(reply.status, StatusCode::OK);
        let session = reply.set_cookies.iter().find(|c| c.starts_with("__Host-session=")).unwrap();
        let attributes: Vec<&str> = session.split("; ").skip(1).collect();
        assert_eq!(attributes, ["Path=/", "Max-Age=43200", "Secure", "HttpOnly", "SameSite=Lax"]);
        assert!(reply
            .set_cookies
            .iter()
            .any(|c| c.starts_with("__Host-session-csrf=;") && c.contains("Max-Age=0")));
        assert_eq!(reply.cache_control.as_deref(), Some("no-store"));

        let again = client.get("/required").await;
        assert_eq!((again.status, again.body.as_str()), (StatusCode::OK, "alice"));
        assert!(again.set_cookies.is_empty(), "{:?}", again.set_cookies);
        assert_eq!(again.cache_control, None);
    }
}

#[actix_web::test]
async fn without_a_session_required_routes_answer_401_and_optional_ones_run() {
    let mut client = client!(|b| b);
    {
        let reply = client.get("/required").await;
        assert_eq!((reply.status, reply.body.as_str()), (StatusCode::UNAUTHORIZED, "no session"));
        assert_eq!(client.get("/whoami").await.body, "anonymous");
        // An anonymous session passes Session<T> but not SignedIn<T>.
        let token = client.get("/csrf").await.body;
        assert_eq!(client.post("/anonymous-increment", &token).await.body, "1");
        assert_eq!(client.get("/whoami").await.body, "- 1");
        assert_eq!(client.get("/signed-in").await.status, StatusCode::UNAUTHORIZED);
        client.login().await;
        assert_eq!(client.get("/signed-in").await.body, "alice");
    }
}

#[actix_web::test]
async fn unsafe_requests_without_the_right_token_or_from_another_site_are_refused() {
    let mut client = client!(|b| b.csrf_exempt("/webhook"));
    {
        client.login().await;
        let token = client.get("/csrf").await.body;
        assert_eq!(client.post("/increment", "wrong").await.status, StatusCode::FORBIDDEN);
        let cross_site = client
            .send(
                test::TestRequest::post()
                    .uri("/increment")
                    .insert_header(("x-csrf-token", token.as_str()))
                    .insert_header(("sec-fetch-site", "cross-site")),
            )
            .await;
        assert_eq!(
            (cross_site.status, cross_site.body.as_str()),
            (StatusCode::FORBIDDEN, "CSRF check failed")
        );
        assert_eq!(client.get("/whoami").await.body, "alice 0", "nothing changed");
        assert_eq!(client.post("/increment", &token).await.body, "1");
        // An exempt route takes a cross-site POST with no token.
        let webhook = client
            .send(test::TestRequest::post().uri("/webhook").insert_header(("sec-fetch-site", "cross-site")))
            .await;
        assert_eq!(webhook.status, StatusCode::OK);
    }
}

#[actix_web::test]
async fn the_token_is_read_from_a_form_and_the_handler_still_gets_the_whole_form() {
    let mut client = client!(|b| b.form_limit(1024));
    {
        let token = client.get("/csrf").await.body;
        let form = |body: String| {
            test::TestRequest::post()
                .uri("/form")
                .insert_header(("content-type", "application/x-www-form-urlencoded"))
                .insert_header(("sec-fetch-site", "same-origin"))
                .set_payload(body)
        };
        let reply = client.send(form(format!("item=tea&csrf_token={token}"))).await;
        assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "tea"));
        let reply = client.send(form("item=tea&csrf_token=wrong".to_owned())).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        let reply = client.send(form(format!("item={}&csrf_token={token}", "x".repeat(2000)))).await;
        assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    }
}

#[actix_web::test]
async fn a_tampered_cookie_is_no_session_and_is_removed() {
    let mut client = client!(|b| b);
    {
        client.login().await;
        let cookie = client.jar.get_mut("__Host-session").unwrap();
        let last = cookie.pop().unwrap();
        cookie.push(if last == 'A' { 'B' } else { 'A' });
        let reply = client.get("/required").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert!(reply
            .set_cookies
            .iter()
            .any(|c| c.starts_with("__Host-session=;") && c.contains("Max-Age=0")));
        assert!(!client.jar.contains_key("__Host-session"));
    }
}

#[actix_web::test]
async fn logout_removes_the_cookie_kills_the_old_value_and_leaves_a_flash_message() {
    let mut client = client!(|b| b);
    {
        client.login().await;
        let old = client.jar.get("__Host-session").unwrap().clone();
        let token = client.get("/csrf").await.body;
        let reply = client.post("/logout", &token).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(!client.jar.contains_key("__Host-session"));
        assert_eq!(client.get("/flashes").await.body, "success: Signed out");
        assert_eq!(client.get("/flashes").await.body, "", "shown once");
        client.jar.insert("__Host-session".to_owned(), old);
        assert_eq!(client.get("/required").await.status, StatusCode::UNAUTHORIZED, "revoked");
    }
}

#[actix_web::test]
async fn bearer_tokens_need_no_csrf_token_and_never_get_cookies() {
    let mut client = client!(|b| b.bearer_tokens());
    {
        let bearer = |path: &str, token: &str| {
            test::TestRequest::post().uri(path).insert_header(("authorization", format!("Bearer {token}")))
        };
        let reply = client.send(bearer("/login", "")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert!(reply.set_cookies.is_empty());
        let token = reply.token_header.expect("a token in its header");
        assert_eq!(reply.cache_control.as_deref(), Some("no-store"));
        let reply = client.send(bearer("/increment", &token)).await;
        assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "1"));
        assert!(reply.set_cookies.is_empty() && reply.token_header.is_some());
        // A new token is never left cacheable, whatever the route says.
        let reply = client.send(bearer("/cached-increment", &reply.token_header.unwrap())).await;
        assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "2"));
        assert_eq!(reply.cache_control.as_deref(), Some("no-store"));
    }
}

/// A store that cannot be reached, made on demand.
struct Unreachable;

impl RevocationStore for Unreachable {
    async fn state(&self, _: Option<&str>, _: SessionId) -> Result<RevocationState, StoreError> {
        Err(StoreError::unavailable(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)))
    }
    async fn login_state(&self, _: &str) -> Result<sealed_session::LoginState, StoreError> {
        Err(StoreError::unavailable(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)))
    }
    async fn revoke_user(&self, _: &str) -> Result<u64, StoreError> {
        Err(StoreError::unavailable(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)))
    }
    async fn revoke_session(&self, _: SessionId, _: u64) -> Result<(), StoreError> {
        Err(StoreError::unavailable(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)))
    }
    async fn revoke_all(&self, _: u64) -> Result<u64, StoreError> {
        Err(StoreError::unavailable(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)))
    }
}

#[actix_web::test]
async fn a_store_that_cannot_answer_gives_503_and_changes_no_cookie() {
    let sealer = Sealer::builder(Keyring::generate().unwrap()).build().unwrap();
    let token = sealer.seal(&sealed_session::Session::new(Data::default()).with_user("alice", 0)).unwrap();
    let middleware = SessionMiddleware::<_, Data>::new(Verifier::new(sealer, Unreachable)).unwrap();
    let app =
        test::init_service(App::new().route("/required", web::get().to(required)).wrap(middleware)).await;
    let request =
        test::TestRequest::get().uri("/required").insert_header((COOKIE, format!("__Host-session={token}")));
    let response = test::call_service(&app, request.to_request()).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().get(SET_COOKIE).is_none());
    assert_eq!(test::read_body(response).await, "session store unavailable, try again");
}

#[actix_web::test]
async fn a_route_that_requires_sign_in_redirects_browsers_and_answers_401_json_to_others() {
    let mut client = client!(|b| b);
    let browser = client
        .send(test::TestRequest::get().uri("/account?tab=keys").insert_header(("accept", "text/html")))
        .await;
    assert_eq!(browser.status, StatusCode::SEE_OTHER);
    assert_eq!(browser.location.as_deref(), Some("/?next=/account%3Ftab%3Dkeys"));
    let api = client.get("/account").await;
    assert_eq!((api.status, api.body.as_str()), (StatusCode::UNAUTHORIZED, r#"{"error":"no session"}"#));
    // An anonymous session is not signed in.
    let token = client.get("/csrf").await.body;
    client.post("/anonymous-increment", &token).await;
    assert_eq!(client.get("/account").await.status, StatusCode::UNAUTHORIZED);
    client.login().await;
    assert_eq!(client.get("/account").await.body, "alice");
}

#[actix_web::test]
async fn session_errors_answer_with_their_status_and_say_no_more() {
    let mut client = client!(|b| b);
    let cases = [
        ("store", StatusCode::SERVICE_UNAVAILABLE, "session store unavailable, try again"),
        ("login-store", StatusCode::SERVICE_UNAVAILABLE, "session store unavailable, try again"),
        ("unreadable", StatusCode::SERVICE_UNAVAILABLE, "session unavailable on this server, try again"),
        ("no-session", StatusCode::UNAUTHORIZED, "no session"),
        ("seal", StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    ];
    for (kind, status, body) in cases {
        let reply = client.get(&format!("/fail/{kind}")).await;
        assert_eq!((reply.status, reply.body.as_str()), (status, body), "{kind}");
    }
}

#[actix_web::test]
async fn renewing_the_id_and_logging_out_everywhere_go_through_the_handle() {
    let mut client = client!(|b| b);
    client.login().await;
    let old = client.jar.get("__Host-session").unwrap().clone();
    let before = client.get("/info").await.body;
    let token = client.get("/csrf").await.body;
    let renewed = client.post("/renew", &token).await;
    assert_eq!(renewed.status, StatusCode::OK);
    assert_ne!(before.split(' ').next(), Some(renewed.body.as_str()), "a new ID");
    assert_eq!(client.get("/info").await.body.split(' ').next(), Some(renewed.body.as_str()));
    let current = client.jar.insert("__Host-session".to_owned(), old).unwrap();
    assert_eq!(client.get("/required").await.status, StatusCode::UNAUTHORIZED, "the old ID is revoked");
    client.jar.insert("__Host-session".to_owned(), current);

    let token = client.get("/csrf").await.body;
    let reply = client.post("/logout-everywhere", &token).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "1"), "the user's new epoch");
    assert!(!client.jar.contains_key("__Host-session"));
}

#[actix_web::test]
async fn the_session_shows_its_key_and_csrf_token_and_flashes_read_through_the_handle() {
    let mut client = client!(|b| b);
    client.login().await;
    let info = client.get("/info").await.body;
    let token = client.get("/csrf").await.body;
    let parts: Vec<&str> = info.split(' ').collect();
    assert_eq!(parts[2], token, "the session's CSRF token is the handle's");
    assert!(parts[1].parse::<u32>().unwrap() >= 1);
    client.post("/logout", &token).await;
    assert_eq!(client.get("/take-flashes").await.body, "Signed out");
    assert_eq!(client.get("/take-flashes").await.body, "", "read once");
}

#[actix_web::test]
async fn the_key_id_is_the_one_that_sealed_the_cookie() {
    let (keyring, id) = Keyring::generate().unwrap().with_new_key().unwrap();
    let sealer = Sealer::builder(keyring.with_primary(id).unwrap()).build().unwrap();
    let middleware = SessionMiddleware::<_, Data>::new(Verifier::new(sealer, MemoryStore::new())).unwrap();
    let alice = sealed_session_actix::testing::TestSession::sign_in(&middleware, "alice", Data::default())
        .await
        .unwrap();
    let app = test::init_service(App::new().route("/info", web::get().to(info)).wrap(middleware)).await;
    let request = test::TestRequest::get().uri("/info").insert_header((COOKIE, alice.cookie()));
    let body = test::read_body(test::call_service(&app, request.to_request()).await).await;
    let body = String::from_utf8(body.to_vec()).unwrap();
    let parts: Vec<&str> = body.split(' ').collect();
    assert_eq!((parts[1], parts[2]), (id.to_string().as_str(), alice.csrf_token()));
}

#[actix_web::test]
async fn a_test_session_passes_the_csrf_check_of_an_unsafe_request() {
    let middleware = middleware(|b| b);
    let alice = sealed_session_actix::testing::TestSession::sign_in(&middleware, "alice", Data::default())
        .await
        .unwrap();
    assert!(alice.cookie().starts_with("__Host-session="));
    let app =
        test::init_service(App::new().route("/increment", web::post().to(increment)).wrap(middleware)).await;
    let request = alice.apply(test::TestRequest::post().uri("/increment"));
    let response = test::call_service(&app, request.to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(test::read_body(response).await, "1");
}

#[actix_web::test]
async fn a_form_of_exactly_the_limit_is_read_and_one_byte_more_is_not() {
    let mut client = client!(|b| b.form_limit(1024));
    let token = client.get("/csrf").await.body;
    let body = |len: usize| {
        let tail = format!("&csrf_token={token}");
        format!("item={}{tail}", "x".repeat(len - "item=".len() - tail.len()))
    };
    let send = |body: String| {
        test::TestRequest::post()
            .uri("/form")
            .insert_header(("content-type", "application/x-www-form-urlencoded"))
            .insert_header(("sec-fetch-site", "same-origin"))
            .set_payload(body)
    };
    assert_eq!(client.send(send(body(1024))).await.status, StatusCode::OK);
    assert_eq!(client.send(send(body(1025))).await.status, StatusCode::PAYLOAD_TOO_LARGE);
}

/// A WebSocket handshake (a `GET` with `Upgrade`) from another site is
/// refused before the handler runs; from this site it needs no token.
#[actix_web::test]
async fn a_websocket_handshake_from_another_site_is_refused() {
    let mut client = client!(|b| b);
    client.login().await;
    let handshake = |site: &str, origin: &str| {
        test::TestRequest::get()
            .uri("/whoami")
            .insert_header(("upgrade", "websocket"))
            .insert_header(("connection", "Upgrade"))
            .insert_header(("sec-fetch-site", site))
            .insert_header(("origin", origin))
    };
    let refused = client.send(handshake("cross-site", "https://evil.example")).await;
    assert_eq!((refused.status, refused.body.as_str()), (StatusCode::FORBIDDEN, "CSRF check failed"));
    let accepted = client.send(handshake("same-origin", "http://localhost")).await;
    assert_eq!((accepted.status, accepted.body.as_str()), (StatusCode::OK, "alice 0"));
    let request = test::TestRequest::get().uri("/whoami").insert_header(("sec-fetch-site", "cross-site"));
    assert_eq!(client.send(request).await.status, StatusCode::OK);
}
