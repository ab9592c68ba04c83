//! The hyper example, driven without a socket: with no framework, it keeps
//! the rules the axum and actix adapters keep, because it runs the same
//! driver. A store outage is `503` and changes no cookie; the login form
//! needs the CSRF token of its pre-session.
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

#[allow(dead_code)]
#[path = "../examples/hyper.rs"]
mod example;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, StatusCode};
use sealed_session::web::testing::UnreachableStore;
use sealed_session::web::WebConfig;
use sealed_session::{Keyring, MemoryStore, RevocationStore, Sealer, Session, SharedKeyring};

struct Answer {
    status: StatusCode,
    set_cookies: Vec<String>,
    body: String,
}

async fn send<S: RevocationStore + 'static>(
    config: &Arc<WebConfig<S>>,
    request: hyper::http::request::Builder,
) -> Answer {
    send_body(config, request, String::new()).await
}

/// [`send`] with a body.
async fn send_body<S: RevocationStore + 'static>(
    config: &Arc<WebConfig<S>>,
    request: hyper::http::request::Builder,
    body: String,
) -> Answer {
    let response =
        example::handle(Arc::clone(config), request.body(Full::new(Bytes::from(body))).unwrap()).await;
    let status = response.status();
    // Every answer is plain text that no browser sniffs into a page: some
    // echo what the client sent.
    assert_eq!(response.headers().get("content-type").unwrap(), "text/plain; charset=utf-8");
    assert_eq!(response.headers().get("x-content-type-options").unwrap(), "nosniff");
    let set_cookies =
        response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    let body = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    Answer { status, set_cookies, body }
}

/// The `name=value` of a `Set-Cookie` header.
fn pair(set_cookie: &str) -> &str {
    set_cookie.split(';').next().unwrap()
}

#[tokio::test]
async fn a_store_that_cannot_answer_is_503_and_changes_no_cookie() {
    let keyring = SharedKeyring::new(Keyring::generate().unwrap());
    let token = Sealer::builder(keyring.clone())
        .build()
        .unwrap()
        .seal(&Session::new(0u32).with_user("alice", 0))
        .unwrap();
    let config = Arc::new(WebConfig::builder(Sealer::builder(keyring), UnreachableStore).build().unwrap());
    let answer =
        send(&config, Request::get("/whoami").header("cookie", format!("__Host-session={token}"))).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{}", answer.body);
    assert!(answer.set_cookies.is_empty(), "{:?}", answer.set_cookies);
}

#[tokio::test]
async fn the_login_form_needs_the_csrf_token_of_its_pre_session() {
    let config = Arc::new(
        WebConfig::builder(Sealer::builder(Keyring::generate().unwrap()), MemoryStore::new())
            .build()
            .unwrap(),
    );
    let login = |cookie: &str, token: &str| {
        Request::post("/login")
            .header("sec-fetch-site", "same-origin")
            .header("cookie", cookie)
            .header("x-csrf-token", token)
    };

    // No pre-session: refused before the route runs.
    let refused = send(&config, login("", "forged")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(refused.set_cookies.is_empty());

    let page = send(&config, Request::get("/login-form")).await;
    assert_eq!(page.status, StatusCode::OK);
    let token = page.body.trim().strip_prefix("csrf_token=").unwrap().to_owned();
    let pre_session = pair(&page.set_cookies[0]).to_owned();
    assert!(pre_session.starts_with("__Host-session-csrf="), "{pre_session}");

    // The pre-session with another token: refused too.
    let other = send(&config, Request::get("/login-form")).await;
    let others_token = other.body.trim().strip_prefix("csrf_token=").unwrap();
    assert_eq!(send(&config, login(&pre_session, others_token)).await.status, StatusCode::FORBIDDEN);

    let signed_in = send(&config, login(&pre_session, &token)).await;
    assert_eq!((signed_in.status, signed_in.body.as_str()), (StatusCode::OK, "signed in\n"));
    let session =
        signed_in.set_cookies.iter().map(|c| pair(c)).find(|c| c.starts_with("__Host-session=")).unwrap();
    let whoami = send(&config, Request::get("/whoami").header("cookie", session)).await;
    assert_eq!(whoami.body, "alice\n");

    // A form posts its token among its fields: the route gets the body
    // the token was read from, whole.
    let page = send(&config, Request::get("/login-form")).await;
    let token = page.body.trim().strip_prefix("csrf_token=").unwrap().to_owned();
    let pre_session = pair(&page.set_cookies[0]).to_owned();
    let form = Request::post("/login")
        .header("sec-fetch-site", "same-origin")
        .header("cookie", &pre_session)
        .header("content-type", "application/x-www-form-urlencoded");
    let signed_in = send_body(&config, form, format!("csrf_token={token}&user=bob")).await;
    assert_eq!((signed_in.status, signed_in.body.as_str()), (StatusCode::OK, "signed in\n"));
    let session =
        signed_in.set_cookies.iter().map(|c| pair(c)).find(|c| c.starts_with("__Host-session=")).unwrap();
    assert_eq!(send(&config, Request::get("/whoami").header("cookie", session)).await.body, "bob\n");

    // The token in its header, the fields in the body: the route reads
    // the body, and signs in the user the form names.
    let page = send(&config, Request::get("/login-form")).await;
    let token = page.body.trim().strip_prefix("csrf_token=").unwrap().to_owned();
    let pre_session = pair(&page.set_cookies[0]).to_owned();
    let form = login(&pre_session, &token).header("content-type", "application/x-www-form-urlencoded");
    let signed_in = send_body(&config, form, "user=carol".to_owned()).await;
    let session =
        signed_in.set_cookies.iter().map(|c| pair(c)).find(|c| c.starts_with("__Host-session=")).unwrap();
    let whoami = || Request::get("/whoami").header("cookie", session);
    assert_eq!(send(&config, whoami()).await.body, "carol\n");
    // `HEAD` is answered as `GET` (hyper leaves the body out), not `404`.
    let head = send(&config, whoami().method("HEAD")).await;
    assert_eq!(head.status, StatusCode::OK);

    // Logging out needs the session's token, and ends the session: its
    // cookie no longer opens.
    let logout = |token: &str| {
        Request::post("/logout")
            .header("sec-fetch-site", "same-origin")
            .header("cookie", session)
            .header("x-csrf-token", token)
    };
    assert_eq!(send(&config, logout("forged")).await.status, StatusCode::FORBIDDEN);
    let page = send(&config, Request::get("/login-form").header("cookie", session)).await;
    let token = page.body.trim().strip_prefix("csrf_token=").unwrap().to_owned();
    let out = send(&config, logout(&token)).await;
    assert_eq!((out.status, out.body.as_str()), (StatusCode::OK, "logged out\n"));
    assert_eq!(send(&config, whoami()).await.status, StatusCode::UNAUTHORIZED);
}

/// A form is read up to one limit wherever its token is: the driver's
/// (`form_limit`), which the route takes too when the token came in a
/// header.
#[tokio::test]
async fn a_form_is_accepted_or_refused_by_its_size_wherever_its_token_is() {
    let config = Arc::new(
        WebConfig::builder(Sealer::builder(Keyring::generate().unwrap()), MemoryStore::new())
            .form_limit(1024)
            .build()
            .unwrap(),
    );
    for (fields, status) in [(1000, StatusCode::OK), (1025, StatusCode::PAYLOAD_TOO_LARGE)] {
        for token_in_header in [false, true] {
            let page = send(&config, Request::get("/login-form")).await;
            let token = page.body.trim().strip_prefix("csrf_token=").unwrap().to_owned();
            let mut form = Request::post("/login")
                .header("sec-fetch-site", "same-origin")
                .header("cookie", pair(&page.set_cookies[0]))
                .header("content-type", "application/x-www-form-urlencoded");
            let mut body = String::new();
            if token_in_header {
                form = form.header("x-csrf-token", &token);
            } else {
                body = format!("csrf_token={token}&");
            }
            body.push_str("user=");
            body.push_str(&"d".repeat(fields - body.len()));
            assert_eq!(body.len(), fields);
            let answer = send_body(&config, form, body).await;
            assert_eq!(answer.status, status, "{fields} bytes, token in a header: {token_in_header}");
        }
    }
}

#[tokio::test]
async fn settings_need_a_sign_in_of_the_last_ten_minutes() {
    let clock = sealed_session::ManualClock::at_unix(1_800_000_000);
    let sealer = Sealer::builder(Keyring::generate().unwrap()).clock(clock.clone());
    let config = Arc::new(WebConfig::builder(sealer, MemoryStore::new()).build().unwrap());
    let anonymous = send(&config, Request::get("/settings")).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let signed_in = sealed_session::web::testing::TestSession::sign_in(&config, "alice", 0u32).await.unwrap();
    let settings = || Request::get("/settings").header("cookie", signed_in.cookie());
    assert_eq!(send(&config, settings()).await.body, "settings\n");
    clock.advance(std::time::Duration::from_secs(601));
    let stale = send(&config, settings()).await;
    assert_eq!((stale.status, stale.body.as_str()), (StatusCode::UNAUTHORIZED, "re-authentication required"));
    // Still signed in: only the sensitive page asks again.
    assert_eq!(
        send(&config, Request::get("/whoami").header("cookie", signed_in.cookie())).await.body,
        "alice\n"
    );
}
