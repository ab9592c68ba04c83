//! The middleware and extractors, driven through an actix-web app with a
//! real memory store and a manual clock: the same rules as the axum layer.
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::{CACHE_CONTROL, COOKIE, LOCATION, SET_COOKIE, VARY};
use actix_web::http::StatusCode;
use actix_web::{test, web, App, HttpResponse};
use sealed_session::web::testing::UnreachableStore;
use sealed_session::web::{DeviceBinding, HandleError, WebConfig, WebConfigBuilder, SESSION_TOKEN_HEADER};
use sealed_session::{Keyring, ManualClock, MemoryStore, Sealer, StoreError};
use sealed_session_actix::{
    Flashes, Level, RequireSession, Session, SessionError, SessionMiddleware, Sessions, SignedIn,
};
use sealed_session_testkit::adapter::{self as shared, CookieJar, Data};
use serde::Deserialize;

const START: i64 = 1_800_000_000;

/// A change on a route whose answer the application marks cacheable.
async fn cached_increment(sessions: Sessions<Data>) -> Result<HttpResponse, SessionError> {
    let count = shared::increment::<_, SessionError>(sessions).await?;
    Ok(HttpResponse::Ok().insert_header((CACHE_CONTROL, "public, max-age=60")).body(count))
}

/// A change on a route whose answer the application keeps from shared
/// caches itself.
async fn private_increment(sessions: Sessions<Data>) -> Result<HttpResponse, SessionError> {
    let count = shared::increment::<_, SessionError>(sessions).await?;
    Ok(HttpResponse::Ok().insert_header((CACHE_CONTROL, "private, max-age=60")).body(count))
}

async fn info(session: Session<Data>) -> String {
    format!("{} {} {}", session.id().to_hex(), session.key_id(), session.csrf_token())
}

/// Each kind of session error, as a handler returns it.
async fn fail(kind: web::Path<String>) -> Result<String, SessionError> {
    let refused = || StoreError::unavailable(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
    Err(SessionError(match kind.as_str() {
        "store" => HandleError::Store(refused()),
        "login-store" => HandleError::Login(sealed_session::LoginError::Store(refused())),
        "unreadable" => HandleError::UnreadableSession,
        "no-session" => HandleError::NoSession,
        _ => HandleError::Seal(sealed_session::SealError::NoRememberMe),
    }))
}

async fn reauthenticate(sessions: Sessions<Data>) -> Result<String, SessionError> {
    Ok(sessions.reauthenticate().await?.id().to_hex())
}

const HOUR: Duration = Duration::from_secs(3600);

async fn logout(sessions: Sessions<Data>) -> Result<HttpResponse, SessionError> {
    sessions.logout().await?;
    sessions.flash(Level::Success, "Signed out")?;
    Ok(HttpResponse::Ok().finish())
}

#[derive(Deserialize)]
struct Item {
    item: String,
}

async fn form(form: web::Form<Item>) -> String {
    form.item.clone()
}

type Builder = WebConfigBuilder<Arc<MemoryStore>>;
/// The handle and the error of the shared handlers, as this adapter names them.
type H = Sessions<Data>;
type E = SessionError;

/// The middleware over a real memory store and a manual clock, configured
/// by `configure`.
fn middleware(configure: impl FnOnce(Builder) -> Builder) -> SessionMiddleware<Arc<MemoryStore>> {
    middleware_on(ManualClock::at_unix(START), configure)
}

/// [`middleware`] on `clock`.
fn middleware_on(
    clock: ManualClock,
    configure: impl FnOnce(Builder) -> Builder,
) -> SessionMiddleware<Arc<MemoryStore>> {
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    let sealer = Sealer::builder(Keyring::generate().unwrap()).clock(clock);
    SessionMiddleware::new(configure(WebConfig::builder(sealer, store)).build().unwrap())
}

/// A client of the test app, its middleware configured by `$configure`
/// (on `$clock`, a `ManualClock`, if given).
macro_rules! client {
    ($configure:expr) => {
        client!($configure, ManualClock::at_unix(START))
    };
    ($configure:expr, $clock:expr) => {
        Client {
            app: test::init_service(
                App::new()
                    .route("/whoami", web::get().to(shared::whoami::<Session<Data>>))
                    .route("/required", web::get().to(shared::required::<Session<Data>>))
                    .route("/signed-in", web::get().to(shared::signed_in::<SignedIn<Data>>))
                    .route("/csrf", web::get().to(shared::csrf::<H, E>))
                    .route("/login", web::post().to(shared::login::<H, E>))
                    .route("/increment", web::post().to(shared::increment::<H, E>))
                    .route("/renew", web::post().to(shared::renew::<H, E>))
                    .route("/logout-everywhere", web::post().to(shared::logout_everywhere::<H, E>))
                    .route("/take-flashes", web::get().to(shared::take_flashes::<H>))
                    .route("/info", web::get().to(info))
                    .route("/fail/{kind}", web::get().to(fail))
                    .route("/cached-increment", web::post().to(cached_increment))
                    .route("/private-increment", web::post().to(private_increment))
                    .route("/anonymous-increment", web::post().to(shared::anonymous_increment::<H, E>))
                    .route("/logout", web::post().to(logout))
                    .route("/flashes", web::get().to(shared::flashes::<Flashes>))
                    .route("/form", web::post().to(form))
                    .route("/webhook", web::post().to(shared::whoami::<Session<Data>>))
                    .service(
                        web::resource("/account")
                            .wrap(RequireSession::redirect_to("/"))
                            .route(web::get().to(shared::required::<Session<Data>>)),
                    )
                    .route("/reauth", web::post().to(reauthenticate))
                    .service(
                        web::resource("/sudo")
                            .wrap(RequireSession::redirect_to("/reauth").authenticated_within(HOUR))
                            .route(web::get().to(shared::signed_in::<SignedIn<Data>>)),
                    )
                    .service(
                        web::resource("/sudo-now")
                            .wrap(RequireSession::redirect_to("/reauth").authenticated_within(Duration::ZERO))
                            .route(web::get().to(shared::signed_in::<SignedIn<Data>>)),
                    )
                    .wrap(middleware_on($clock, $configure)),
            )
            .await,
            jar: CookieJar::default(),
        }
    };
}

/// A client with a cookie jar.
struct Client<A> {
    app: A,
    jar: CookieJar,
}

#[derive(Debug)]
struct Reply {
    status: StatusCode,
    set_cookies: Vec<String>,
    cache_control: Option<String>,
    vary: Vec<String>,
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
        let request = match self.jar.header() {
            Some(cookies) => request.insert_header((COOKIE, cookies)),
            None => request,
        };
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
        let vary = response.headers().get_all(VARY).map(|v| v.to_str().unwrap().to_owned()).collect();
        self.jar.apply(&set_cookies);
        let body = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
        Reply { status, set_cookies, cache_control, vary, token_header, location, body }
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

/// A login form, its CSRF token in the body: the middleware reads the form
/// for it before the handler runs.
/// A request dropped before its answer (a timeout outside the middleware,
/// a client that hung up) leaves no handle that takes changes: a task the
/// handler spawned gets `Finished`, not an `Ok` that no response carries.
#[actix_web::test]
async fn a_request_dropped_before_its_answer_finishes_its_handle() {
    type Kept = Arc<std::sync::Mutex<Option<Sessions<Data>>>>;
    async fn hang(sessions: Sessions<Data>, kept: web::Data<Kept>) -> HttpResponse {
        *kept.lock().unwrap() = Some(sessions);
        std::future::pending().await
    }
    let kept: Kept = Arc::default();
    let config =
        WebConfig::builder(Sealer::builder(Keyring::generate().unwrap()), MemoryStore::new()).build();
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(Arc::clone(&kept)))
            .route("/hang", web::get().to(hang))
            .wrap(SessionMiddleware::new(config.unwrap())),
    )
    .await;
    let request = test::TestRequest::get().uri("/hang").to_request();
    let dropped =
        actix_web::rt::time::timeout(Duration::from_millis(50), test::call_service(&app, request)).await;
    assert!(dropped.is_err(), "the request was answered");
    let sessions = kept.lock().unwrap().take().expect("the handler ran");
    let late = sessions.update_or_insert(Data::default, |data| data.count += 1).await;
    assert!(matches!(late, Err(HandleError::Finished)), "{late:?}");
}

#[actix_web::test]
async fn login_sets_a_host_cookie_with_secure_attributes_from_a_form_and_later_requests_do_not_set_it_again()
{
    let mut client = client!(|b| b);
    {
        let page = client.get("/csrf").await;
        shared::assert_a_login_page(&page.set_cookies);
        let form = test::TestRequest::post()
            .uri("/login")
            .insert_header(("content-type", "application/x-www-form-urlencoded"))
            .insert_header(("sec-fetch-site", "same-origin"))
            .set_payload(format!("user=alice&csrf_token={}", page.body));
        let login = client.send(form).await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.body);
        shared::assert_a_login_answer(&login.set_cookies, login.cache_control.as_deref());

        let next = client.get("/signed-in").await;
        assert_eq!((next.status, next.body.as_str(), next.cache_control), (StatusCode::OK, "alice", None));
        assert!(
            next.set_cookies.is_empty(),
            "an unchanged session is not sent again: {:?}",
            next.set_cookies
        );
    }
}

/// actix-web routes a percent-encoded path to the route it spells: a path
/// that needs a device-bound session does in every spelling, and so on.
#[actix_web::test]
async fn path_rules_apply_to_every_spelling_the_router_accepts() {
    let mut plain = client!(|b| b);
    plain.login().await;
    assert_eq!(plain.get("/%73igned-in").await.body, "alice", "the router decodes the path");

    let bound_only = DeviceBinding::default().require_for("/signed-in");
    let mut client = client!(|b: Builder| b.device_bound_sessions(bound_only));
    client.login().await;
    for path in ["/signed-in", "/%73igned-in", "/%73%69gned-in"] {
        assert_eq!(client.get(path).await.status, StatusCode::FORBIDDEN, "{path}");
    }

    // The driver sees the path the router matches: a route exempt from
    // CSRF is exempt in every spelling that reaches it (the raw path would
    // not match the exemption, and the request would be refused).
    let mut client = client!(|b| b.csrf_exempt("/webhook"));
    client.login().await;
    for path in ["/webhook", "/%77ebhook"] {
        let request = test::TestRequest::post().uri(path).insert_header(("sec-fetch-site", "cross-site"));
        assert_eq!(client.send(request).await.status, StatusCode::OK, "{path}");
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
        let reply = client.get("/whoami").await;
        assert_eq!(reply.body, "- 1");
        assert_eq!(reply.vary, ["cookie"], "the page shows the session: caches must key it by the cookie");
        assert_eq!(client.get("/signed-in").await.status, StatusCode::UNAUTHORIZED);
        client.login().await;
        assert_eq!(client.get("/signed-in").await.body, "alice");
    }
}

/// A session sealed under the next key, which this server lacks yet (a
/// rollout it lags behind in), lives on the servers that have it: where a
/// session is required the answer is `503`, not `401` or a redirect to the
/// login page (a client would drop the session, or sign in beside it), and
/// the cookie is kept; an optional session runs anonymous.
#[actix_web::test]
async fn a_session_under_a_key_this_server_lacks_yet_is_503_where_one_is_required() {
    let mut client = client!(|b| b);
    let (ahead, id) = Keyring::generate().unwrap().with_new_key().unwrap();
    let sealer =
        Sealer::builder(ahead.with_primary(id).unwrap()).clock(ManualClock::at_unix(START)).build().unwrap();
    let cookie = sealer.seal(&sealed_session::Session::new(Data::default()).with_user("alice", 0)).unwrap();
    client.jar.insert("__Host-session".into(), cookie);
    let said = "session unavailable on this server, try again";
    let json = format!(r#"{{"error":"{said}"}}"#);
    for (path, body) in [("/required", said), ("/signed-in", said), ("/account", &json), ("/sudo", &json)] {
        let request = test::TestRequest::get().uri(path).insert_header(("accept", "text/html"));
        let reply = client.send(request).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {reply:?}");
        assert_eq!(reply.body, body, "{path}");
        assert!(reply.set_cookies.is_empty(), "{path}: kept: {:?}", reply.set_cookies);
    }
    assert_eq!(client.get("/whoami").await.body, "anonymous");
}

#[test]
#[should_panic(
    expected = "RequireSession::redirect_to: the login page \"/login\\r\\nSet-Cookie: a=b\" holds a character"
)]
async fn a_login_page_no_location_header_can_carry_is_refused_when_the_route_is_built() {
    let _ = RequireSession::redirect_to("/login\r\nSet-Cookie: a=b");
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
        // A character in the middle, of the base64url alphabet: the value
        // still decodes (only the last character has unused bits), so only
        // the authentication can refuse it.
        let middle = cookie.len() / 2;
        let changed = if &cookie[middle..=middle] == "A" { "B" } else { "A" };
        cookie.replace_range(middle..=middle, changed);
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

/// A response that sets a cookie is kept from shared caches: `no-store`,
/// unless the route's own `Cache-Control` already keeps it `private`, or
/// says `no-store`; a `public` one is replaced.
#[actix_web::test]
async fn a_route_that_keeps_its_answer_private_keeps_its_cache_control() {
    let mut client = client!(|b| b);
    client.login().await;
    let token = client.get("/csrf").await.body;
    let reply = client.post("/private-increment", &token).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "1"));
    assert!(!reply.set_cookies.is_empty(), "the change re-sealed the cookie");
    assert_eq!(reply.cache_control.as_deref(), Some("private, max-age=60"));
    let reply = client.post("/cached-increment", &token).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "2"));
    assert_eq!(reply.cache_control.as_deref(), Some("no-store"));
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

#[actix_web::test]
async fn a_store_that_cannot_answer_gives_503_and_changes_no_cookie() {
    let keyring = sealed_session::SharedKeyring::new(Keyring::generate().unwrap());
    let sealer = Sealer::builder(keyring.clone()).build().unwrap();
    let token = sealer.seal(&sealed_session::Session::new(Data::default()).with_user("alice", 0)).unwrap();
    let middleware = SessionMiddleware::new(
        WebConfig::builder(Sealer::builder(keyring), UnreachableStore).build().unwrap(),
    );
    let app = test::init_service(
        App::new().route("/required", web::get().to(shared::required::<Session<Data>>)).wrap(middleware),
    )
    .await;
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
    let anonymous = client.post("/anonymous-increment", &token).await;
    assert_eq!((anonymous.status, anonymous.body.as_str()), (StatusCode::OK, "1"));
    assert!(client.jar.contains_key("__Host-session"), "an anonymous session");
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
    assert_ne!(parts[2], token, "masked afresh on every call");
    assert_eq!(parts[1], "1", "the key that sealed it: a generated keyring's only key");
    // The extractor's token is the session's: it passes the CSRF check.
    assert_eq!(client.post("/logout", parts[2]).await.status, StatusCode::OK);
    assert_eq!(client.get("/take-flashes").await.body, "Signed out");
    assert_eq!(client.get("/take-flashes").await.body, "", "read once");
}

#[actix_web::test]
async fn the_key_id_is_the_one_that_sealed_the_cookie() {
    let (keyring, id) = Keyring::generate().unwrap().with_new_key().unwrap();
    let sealer = Sealer::builder(keyring.with_primary(id).unwrap());
    let middleware = SessionMiddleware::new(WebConfig::builder(sealer, MemoryStore::new()).build().unwrap());
    let alice =
        sealed_session_actix::testing::TestSession::sign_in(middleware.config(), "alice", Data::default())
            .await
            .unwrap();
    let sealer = middleware.config().verifier().sealer().clone();
    let app = test::init_service(App::new().route("/info", web::get().to(info)).wrap(middleware)).await;
    let request = test::TestRequest::get().uri("/info").insert_header((COOKIE, alice.cookie()));
    let body = test::read_body(test::call_service(&app, request.to_request()).await).await;
    let body = String::from_utf8(body.to_vec()).unwrap();
    let parts: Vec<&str> = body.split(' ').collect();
    assert_eq!(parts[1], id.to_string());
    let value = alice.cookie().split_once('=').unwrap().1;
    let session = sealer.open::<Data>(value).unwrap().into_session();
    // Each token is masked afresh; both are the session's.
    assert_ne!(parts[2], alice.csrf_token());
    assert_eq!(sealer.verify_csrf(&session, parts[2]), Ok(()));
    assert_eq!(sealer.verify_csrf(&session, alice.csrf_token()), Ok(()));
}

/// A test session passes the CSRF check of an unsafe request; its headers
/// are added beside a cookie the test set first, as the axum adapter's
/// `Apply` does (the application's own cookie is kept).
#[actix_web::test]
async fn a_test_session_passes_the_csrf_check_and_keeps_the_requests_own_cookies() {
    use sealed_session_actix::testing::Apply as _;
    let middleware = middleware(|b| b);
    let alice =
        sealed_session_actix::testing::TestSession::sign_in(middleware.config(), "alice", Data::default())
            .await
            .unwrap();
    assert!(alice.cookie().starts_with("__Host-session="));
    let cookies = |request: actix_web::HttpRequest| async move {
        let values = request.headers().get_all(COOKIE).map(|v| v.to_str().unwrap_or("?").to_owned());
        values.collect::<Vec<_>>().join("; ")
    };
    let app = test::init_service(
        App::new()
            .route("/increment", web::post().to(shared::increment::<H, E>))
            .route("/cookies", web::get().to(cookies))
            .wrap(middleware),
    )
    .await;
    let request = alice.apply(test::TestRequest::post().uri("/increment"));
    let response = test::call_service(&app, request.to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(test::read_body(response).await, "1");
    let request = alice.apply(test::TestRequest::get().uri("/cookies").append_header((COOKIE, "lang=en")));
    let response = test::call_service(&app, request.to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
    assert!(body.contains("lang=en") && body.contains("__Host-session="), "{body}");
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

/// A browser that sends no `Sec-Fetch-Site` but an `Origin`: the origin
/// must be this site's, `https://` and the request's own host.
#[actix_web::test]
async fn without_fetch_metadata_the_origin_must_be_the_requests_own_host() {
    let mut client = client!(|b| b);
    let token = client.get("/csrf").await.body;
    let post = |origin: &str| {
        test::TestRequest::post()
            .uri("/login")
            .insert_header(("host", "app.example"))
            .insert_header(("origin", origin))
            .insert_header(("x-csrf-token", token.as_str()))
    };
    for other in ["https://evil.example", "http://app.example", "null"] {
        let refused = client.send(post(other)).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{other}: {}", refused.body);
    }
    let login = client.send(post("https://app.example")).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
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

#[actix_web::test]
async fn a_route_that_needs_a_recent_login_sends_an_older_one_to_reauthenticate() {
    let clock = ManualClock::at_unix(START);
    let mut client = client!(|b| b, clock.clone());
    let html = |path: &str| test::TestRequest::get().uri(path).insert_header(("accept", "text/html"));
    client.login().await;
    assert_eq!(client.get("/sudo").await.body, "alice", "a login within the hour");
    // Activity keeps the session (its idle timeout is 30 minutes) but not
    // its authentication: past the hour, /sudo asks for the password.
    for _ in 0..2 {
        clock.advance(Duration::from_secs(1700));
        assert_eq!(client.get("/whoami").await.status, StatusCode::OK);
    }
    clock.advance(Duration::from_secs(201));
    let browser = client.send(html("/sudo")).await;
    assert_eq!(
        (browser.status, browser.location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/reauth?next=/sudo"))
    );
    // No authentication is ever less than zero seconds old.
    let browser = client.send(html("/sudo-now")).await;
    assert_eq!(
        (browser.status, browser.location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/reauth?next=/sudo-now"))
    );
    let api = client.get("/sudo-now").await;
    assert_eq!(
        (api.status, api.body.as_str()),
        (StatusCode::UNAUTHORIZED, r#"{"error":"re-authentication required"}"#)
    );

    let before = client.get("/info").await.body;
    let token = client.get("/csrf").await.body;
    let reply = client.post("/reauth", &token).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(!before.starts_with(&reply.body), "a new ID");
    assert_eq!(client.get("/sudo").await.body, "alice", "authenticated again just now");
}

/// One middleware wrapped at two levels runs once: the inner one passes the
/// request on with the outer one's handle (two drivers would each finish
/// it, and after a logout the outer one would renew the ended session over
/// its removal). A middleware for another cookie inside runs its own
/// session; another configuration's for the same cookie is refused.
#[actix_web::test]
async fn a_middleware_wrapped_twice_runs_once_and_a_second_configuration_is_refused() {
    let clock = ManualClock::at_unix(START);
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    let middleware = || SessionMiddleware::new(shared::users_config(Arc::clone(&store), &clock));
    let routes = || {
        App::new()
            .route("/whoami", web::get().to(shared::whoami::<Session<Data>>))
            .route("/csrf", web::get().to(shared::csrf::<H, E>))
            .route("/login", web::post().to(shared::login::<H, E>))
            .route("/logout", web::post().to(logout))
    };
    let once = middleware();
    let app = test::init_service(routes().wrap(once.clone()).wrap(once)).await;
    let mut client = Client { app, jar: CookieJar::default() };
    client.login().await;
    let token = client.get("/csrf").await.body;
    clock.advance(Duration::from_secs(600)); // the cookie is due for renewal
    let reply = client.post("/logout", &token).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    shared::assert_one_removal_of_the_session(&reply.set_cookies);
    assert_eq!(client.jar.get("__Host-session"), None, "logged out");

    let app = test::init_service(routes().wrap(middleware()).wrap(middleware())).await;
    let reply = Client { app, jar: CookieJar::default() }.get("/whoami").await;
    assert_eq!((reply.status.as_u16(), reply.body.as_str()), (500, "session middleware misconfigured"));

    let admin = || SessionMiddleware::new(shared::admin_config(Arc::clone(&store), &clock));
    let app = test::init_service(routes().wrap(admin()).wrap(middleware())).await;
    let mut client = Client { app, jar: CookieJar::default() };
    let reply = client.get("/csrf").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(client.jar.get("__Host-admin-csrf").is_some(), "the inner middleware's own: {reply:?}");

    // Wrapped twice with another cookie's middleware between the two, it
    // still runs once: one re-issue of a session due for renewal, not two, and
    // the handlers inside it see its session, not the other cookie's.
    let users = middleware();
    let app = test::init_service(routes().wrap(users.clone())).await;
    let mut client = Client { app, jar: CookieJar::default() };
    client.login().await;
    let app = test::init_service(routes().wrap(users.clone()).wrap(admin()).wrap(users)).await;
    let mut client = Client { app, jar: client.jar };
    clock.advance(Duration::from_secs(600));
    let reply = client.get("/whoami").await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "alice 0"));
    let sessions = reply.set_cookies.iter().filter(|c| c.starts_with("__Host-session=")).count();
    assert_eq!(sessions, 1, "{:?}", reply.set_cookies);
    // And another configuration for the cookie, further out, is refused.
    let app = test::init_service(routes().wrap(middleware()).wrap(admin()).wrap(middleware())).await;
    assert_eq!(Client { app, jar: client.jar }.get("/whoami").await.status.as_u16(), 500);
}

/// actix-web turns an `Option<T>` extractor's error into `None` (logged at
/// `debug`): a route the middleware does not wrap runs as anonymous, with
/// no CSRF checks. The missing middleware is logged at `error`.
#[actix_web::test]
async fn a_route_without_the_middleware_is_logged_even_behind_an_option() {
    let logs = sealed_session_testkit::Logs::capture();
    let maybe = |session: Option<Session<Data>>| async move {
        if session.is_some() {
            "session"
        } else {
            "none"
        }
    };
    let app = test::init_service(App::new().route("/maybe", web::get().to(maybe))).await;
    let reply = test::call_service(&app, test::TestRequest::get().uri("/maybe").to_request()).await;
    assert_eq!(reply.status(), StatusCode::OK, "actix-web's choice");
    assert_eq!(test::read_body(reply).await, "none", "runs as anonymous");
    // No other route of this binary lacks the middleware: the line is this test's.
    let said = logs.lines_with(&["ERROR", "no session layer wraps"]);
    assert!(!said.is_empty(), "the missing middleware went unsaid");
}

/// A request body that fails as an outer middleware's size limit makes it
/// fail.
struct Overflowing;

impl futures_core::Stream for Overflowing {
    type Item = Result<web::Bytes, actix_web::error::PayloadError>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::task::Poll::Ready(Some(Err(actix_web::error::PayloadError::Overflow)))
    }
}

/// A form body an outer middleware's limit cut short is answered `413`, as
/// the axum layer answers tower-http's limit, not `400`.
#[actix_web::test]
async fn a_form_an_outer_limit_cut_short_is_413_as_on_axum() {
    let app = test::init_service(
        App::new()
            .route("/csrf", web::get().to(shared::csrf::<H, E>))
            .route("/form", web::post().to(form))
            .wrap(middleware(|b| b))
            .wrap_fn(|mut request, service| {
                if request.path() == "/form" {
                    request.set_payload(actix_web::dev::Payload::Stream { payload: Box::pin(Overflowing) });
                }
                service.call(request)
            }),
    )
    .await;
    let mut client = Client { app, jar: CookieJar::default() };
    client.get("/csrf").await; // a pre-session to bind the form's token to
    let form = test::TestRequest::post()
        .uri("/form")
        .insert_header(("content-type", "application/x-www-form-urlencoded"))
        .insert_header(("sec-fetch-site", "same-origin"));
    let reply = client.send(form).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "form too large"));
}

/// An inner middleware that fails after the handler ran (an authorization
/// check, say) still sends the session's changes: a login the handler made
/// reaches the browser, or the user would have lost the old session for
/// nothing.
#[actix_web::test]
async fn an_inner_middlewares_error_still_carries_the_sessions_changes() {
    let app = test::init_service(
        App::new()
            .route("/csrf", web::get().to(shared::csrf::<H, E>))
            .route("/login", web::post().to(shared::login::<H, E>))
            .route("/whoami", web::get().to(shared::whoami::<Session<Data>>))
            .wrap_fn(|request, service| {
                let login = request.path() == "/login";
                let response = service.call(request);
                async move {
                    let response = response.await?;
                    if login {
                        return Err(actix_web::error::ErrorForbidden("refused after the handler"));
                    }
                    Ok(response)
                }
            })
            .wrap(middleware(|b| b)),
    )
    .await;
    let mut client = Client { app, jar: CookieJar::default() };
    let token = client.get("/csrf").await.body;
    let login = test::TestRequest::post()
        .uri("/login")
        .insert_header(("x-csrf-token", token))
        .insert_header(("sec-fetch-site", "same-origin"))
        .insert_header((COOKIE, client.jar.header().unwrap()));
    // As actix-web's server does with a service's error: its response.
    let Err(err) = client.app.call(login.to_request()).await else { panic!("the inner middleware fails") };
    let response = err.error_response();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let header = |name| response.headers().get_all(name).map(|v| v.to_str().unwrap().to_owned()).collect();
    let set_cookies: Vec<String> = header(SET_COOKIE);
    assert!(set_cookies.iter().any(|c| c.starts_with("__Host-session=")), "{set_cookies:?}");
    assert_eq!(header(CACHE_CONTROL), ["no-store"]);
    client.jar.apply(&set_cookies);
    assert_eq!(client.get("/whoami").await.body, "alice 0");
}
