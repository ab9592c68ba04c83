//! The demo app in a real headless Chromium (through chromedriver), with
//! the real binary and real stores: what a browser does with our cookies,
//! logout, logout everywhere, cross-origin forms, and two instances sharing
//! Redis. Every test runs twice: on the demo served by axum and by
//! actix-web. One chromedriver serves the whole binary (each browser with a
//! profile of its own), and one demo per framework serves the tests that
//! cannot disturb each other.
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use fantoccini::Locator;
use sealed_session::Keyring;
use sealed_session_testkit::browser::{fill_login, session_cookie, sign_in, signed_in_user, submit, Driver};
use sealed_session_testkit::clean_up_at_exit;
use sealed_session_testkit::demo::{csrf_token, http_get, http_post_form, http_sign_in, Demo};

const DEMO: &str = env!("CARGO_BIN_EXE_sealed-session-demo");

/// Two tests for each `async fn name(framework: &str)` listed, `name::axum`
/// and `name::actix`: the demo served by each framework.
macro_rules! on_each_framework {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[tokio::test(flavor = "multi_thread")]
            async fn axum() {
                super::$test("axum").await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn actix() {
                super::$test("actix").await;
            }
        }
    )*};
}

on_each_framework!(
    a_login_right_after_start_and_right_after_a_global_logout_is_served,
    login_sets_a_host_cookie_that_scripts_cannot_read_and_a_reload_keeps_the_user_signed_in,
    logout_removes_the_cookie_and_its_old_value_is_refused_by_a_plain_client,
    logout_everywhere_in_one_browser_signs_the_other_out_on_its_next_request,
    a_form_from_another_origin_is_refused_and_changes_nothing,
    two_instances_sharing_redis_refuse_a_cookie_after_logout_everywhere_on_either,
    a_key_rotated_while_signed_in_logs_no_one_out_and_the_cookie_moves_to_the_new_key,
    a_cart_filled_before_sign_in_is_kept_under_a_new_session_id,
    a_failed_sign_in_shows_its_message_once_with_no_code_in_the_url,
    a_utf8_cookie_set_by_page_script_does_not_sign_the_user_out,
    a_cross_site_post_to_the_exempt_webhook_is_answered_with_no_cookie,
    a_page_that_requires_a_session_sends_the_browser_to_sign_in_and_back,
    remember_me_keeps_the_cookie_for_30_days_and_without_it_the_cookie_ends_with_the_browser,
    settings_ask_for_the_password_again_after_the_sudo_window_and_then_open,
    one_browser_signs_another_out_from_its_device_list,
    signing_out_all_other_devices_and_the_session_limit_work_in_a_browser,
);

/// A demo of its own, with `args`, on a new, empty data directory (where it
/// creates its keyring and store): for a test that changes something
/// server-wide, counts a user's sessions or needs flags of its own. Every
/// such test signs in within
/// a second or so of that store's generation (no login may be handed a
/// session the generation refuses).
fn own_demo(framework: &str, args: &[&str]) -> (tempfile::TempDir, Demo) {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start_with(framework, DEMO, dir.path(), args);
    (dir, demo)
}

/// A new browser on the one demo that `framework` serves for every test
/// here that touches only the sessions it signs in itself (no "log out
/// everywhere", no device list, no server-wide change), started on first
/// use and stopped when this binary exits. Its session limit is out of the
/// way of the logins those tests make at once.
async fn on_the_shared_demo(framework: &str) -> (&'static Demo, fantoccini::Client) {
    static AXUM: OnceLock<Demo> = OnceLock::new();
    static ACTIX: OnceLock<Demo> = OnceLock::new();
    let slot = match framework {
        "axum" => &AXUM,
        "actix" => &ACTIX,
        other => panic!("no demo is served by {other:?}"),
    };
    let demo = slot.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let demo = Demo::start_with(framework, DEMO, &dir, &["--max-sessions", "90"]);
        // Its command line names `dir` (`--data-dir`).
        clean_up_at_exit(&dir, None);
        demo
    });
    (demo, Driver::shared().browser().await)
}

async fn a_login_right_after_start_and_right_after_a_global_logout_is_served(framework: &str) {
    let started = Instant::now();
    let (dir, demo) = own_demo(framework, &[]);
    // Signed in within moments of the store's creation...
    let cookie = http_sign_in(&demo, "alice");
    println!("signed in {:?} after the demo started", started.elapsed());
    let (status, body) = http_get(demo.addr(), "/api/session", Some(&cookie));
    assert_eq!(status, 200, "a login in the store's first second was refused: {body}");

    // ...and right after an operator logs everyone out (from this process,
    // on the same file).
    let store =
        sealed_session_sqlite::SqliteStore::open(dir.path().join("revocations.sqlite")).await.unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
    sealed_session::RevocationStore::revoke_all(&store, now).await.unwrap();
    let revoked = Instant::now();
    let fresh = http_sign_in(&demo, "alice");
    println!("signed in again {:?} after the global logout", revoked.elapsed());
    assert_eq!(
        http_get(demo.addr(), "/api/session", Some(&fresh)).0,
        200,
        "a login just after the global logout"
    );
    assert_eq!(
        http_get(demo.addr(), "/api/session", Some(&cookie)).0,
        401,
        "the earlier session is logged out"
    );
}

async fn login_sets_a_host_cookie_that_scripts_cannot_read_and_a_reload_keeps_the_user_signed_in(
    framework: &str,
) {
    let (demo, browser) = on_the_shared_demo(framework).await;

    sign_in(&browser, demo, "alice").await;
    let cookies = browser.get_all_cookies().await.unwrap();
    let session = cookies.iter().find(|c| c.name() == "__Host-session").expect("the session cookie");
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(session.secure(), Some(true));
    assert_eq!(format!("{:?}", session.same_site()), "Some(Lax)");
    assert_eq!(session.path(), Some("/"));
    // Host-only (no `Domain`): a browser on an IP address stores both kinds
    // alike, so the conformance suite checks the `Set-Cookie` header itself.
    assert!(session.value().len() > 100, "a sealed token");
    assert!(!cookies.iter().any(|c| c.name() == "__Host-session-csrf"), "login removed the pre-session");

    let visible = browser.execute("return document.cookie", vec![]).await.unwrap();
    assert_eq!(visible, serde_json::json!(""), "HttpOnly: scripts see no cookie at all");

    browser.refresh().await.unwrap();
    assert_eq!(signed_in_user(&browser).await.as_deref(), Some("alice"));
    let shown = browser.find(Locator::Css("#key-id")).await.unwrap().text().await.unwrap();
    assert_eq!(shown, "1");
    browser.close().await.unwrap();
}

async fn logout_removes_the_cookie_and_its_old_value_is_refused_by_a_plain_client(framework: &str) {
    let (demo, browser) = on_the_shared_demo(framework).await;

    sign_in(&browser, demo, "bob").await;
    let old = format!("__Host-session={}", session_cookie(&browser).await.unwrap());
    let (status, body) = http_get(demo.addr(), "/api/session", Some(&old));
    assert_eq!(status, 200, "the copied cookie works outside the browser before logout: {body}");
    assert!(body.contains(r#""user":"bob""#), "{body}");
    // What a page's script kept for bob, which the next user must not find.
    let kept = "localStorage.setItem('draft', 'bob'); return localStorage.getItem('draft')";
    assert_eq!(browser.execute(kept, vec![]).await.unwrap(), "bob");

    submit(&browser, demo, "logout", "Signed out.").await;
    assert_eq!(signed_in_user(&browser).await, None);
    assert_eq!(session_cookie(&browser).await, None, "the browser dropped the cookie");
    let draft = browser.execute("return localStorage.getItem('draft')", vec![]).await.unwrap();
    assert_eq!(draft, serde_json::Value::Null, "the logout's Clear-Site-Data emptied the storage");

    let (status, body) = http_get(demo.addr(), "/api/session", Some(&old));
    assert_eq!((status, body.as_str()), (401, "no session"), "the replayed cookie is refused");
    browser.close().await.unwrap();
}

/// A demo of its own, and alice signed in on two browsers of it: her
/// laptop's and her phone's.
async fn alice_on_a_laptop_and_a_phone(
    framework: &str,
) -> (tempfile::TempDir, Demo, fantoccini::Client, fantoccini::Client) {
    let (dir, demo) = own_demo(framework, &[]);
    let driver = Driver::shared();
    let (laptop, phone) = (driver.browser().await, driver.browser().await);
    sign_in(&laptop, &demo, "alice").await;
    sign_in(&phone, &demo, "alice").await;
    (dir, demo, laptop, phone)
}

async fn logout_everywhere_in_one_browser_signs_the_other_out_on_its_next_request(framework: &str) {
    let (_dir, demo, laptop, phone) = alice_on_a_laptop_and_a_phone(framework).await;
    phone.refresh().await.unwrap();
    assert_eq!(signed_in_user(&phone).await.as_deref(), Some("alice"));

    submit(&laptop, &demo, "logout-everywhere", "Signed out everywhere").await;
    assert_eq!(signed_in_user(&laptop).await, None);
    let epoch_notice = laptop.find(Locator::Css(".notice")).await.unwrap().text().await.unwrap();
    assert!(epoch_notice.contains("Every session of that user is revoked"), "{epoch_notice}");

    phone.refresh().await.unwrap();
    assert_eq!(signed_in_user(&phone).await, None, "the other browser is signed out");
    assert_eq!(session_cookie(&phone).await, None, "and its refused cookie was removed");
    laptop.close().await.unwrap();
    phone.close().await.unwrap();
}

/// Serves one page that submits a form to the demo's `POST /profile` as
/// soon as it loads: the attacker's page.
async fn serve_attack(target: &str, token: &str) -> u16 {
    serve_form(
        &format!("{target}/profile"),
        &format!(r#"<input name="display_name" value="Hacked"><input name="csrf_token" value="{token}">"#),
    )
    .await
}

/// Serves one page that posts a form with `fields` to `action` as soon as
/// it loads.
async fn serve_form(action: &str, fields: &str) -> u16 {
    let page = format!(
        r#"<!doctype html><form id="attack" method="post" action="{action}">{fields}</form>
<script>document.getElementById("attack").submit()</script>"#
    );
    let app =
        axum::Router::new().route("/", axum::routing::get(move || async move { axum::response::Html(page) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

async fn a_form_from_another_origin_is_refused_and_changes_nothing(framework: &str) {
    let (demo, browser) = on_the_shared_demo(framework).await;
    sign_in(&browser, demo, "alice").await;

    // The attacker even knows the victim's real CSRF token (leaked, say):
    // the browser's Sec-Fetch-Site and Origin still give the form away.
    let page = browser.source().await.unwrap();
    let port = serve_attack(&demo.origin, &csrf_token(&page)).await;
    // Another port of the same host (same site: the browser sends the
    // cookie, and only Sec-Fetch-Site, which says same-site, gives the form
    // away) and another host (cross site: `SameSite=Lax` keeps the cookies
    // back, which is refusal enough; the first case is the one that tests
    // the check of the request's site).
    for attacker in [format!("http://127.0.0.1:{port}/"), format!("http://localhost:{port}/")] {
        browser.goto(&attacker).await.unwrap();
        let target = format!("{}/profile", demo.origin);
        browser.wait().at_most(Duration::from_secs(20)).for_url(&target.parse().unwrap()).await.unwrap();
        let refusal = Locator::XPath("//*[contains(text(), 'CSRF check failed')]");
        let found = browser.wait().at_most(Duration::from_secs(20)).for_element(refusal).await;
        assert!(found.is_ok(), "{attacker}: the demo refused the form: {}", browser.source().await.unwrap());

        browser.goto(&format!("{}/", demo.origin)).await.unwrap();
        assert_eq!(signed_in_user(&browser).await.as_deref(), Some("alice"));
        let name = browser.find(Locator::Css("#display-name")).await.unwrap().text().await.unwrap();
        assert_eq!(name, "Alice", "{attacker}: the session is unchanged");
    }

    // The same form from the demo's own page works: the refusal above was
    // the origin and the token, not the form.
    let field = browser.find(Locator::Css("#profile input[name=display_name]")).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys("Alice Liddell").await.unwrap();
    submit(&browser, demo, "profile", "Saved.").await;
    assert_eq!(signed_in_user(&browser).await.as_deref(), Some("alice"));
    let name = browser.find(Locator::Css("#display-name")).await.unwrap().text().await.unwrap();
    assert_eq!(name, "Alice Liddell");
    browser.close().await.unwrap();
}

async fn two_instances_sharing_redis_refuse_a_cookie_after_logout_everywhere_on_either(framework: &str) {
    let redis = sealed_session_testkit::redis::RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let url = redis.url();
    let first = Demo::start_on(framework, DEMO, dir.path(), Some(&url));
    let second = Demo::start_on(framework, DEMO, dir.path(), Some(&url));
    let browser = Driver::shared().browser().await;

    sign_in(&browser, &first, "bob").await;
    let cookie = format!("__Host-session={}", session_cookie(&browser).await.unwrap());
    // Cookies are per host, not per port: the browser is signed in on both.
    browser.goto(&format!("{}/", second.origin)).await.unwrap();
    assert_eq!(signed_in_user(&browser).await.as_deref(), Some("bob"));

    // Each instance in turn logs the user out everywhere while the other
    // has the session cached as valid (checked a moment before). The other
    // must refuse it well before its cache's 1 s TTL: by the published
    // message, not by the entry aging out.
    let mut cookie = cookie;
    for (revoker, other) in [(&first, &second), (&second, &first)] {
        assert_eq!(http_get(other.addr(), "/api/session", Some(&cookie)).0, 200, "cached as valid");
        let started = Instant::now();
        assert_eq!(http_post_form(revoker, "/logout-everywhere", &cookie), 303);
        loop {
            let (status, body) = http_get(other.addr(), "/api/session", Some(&cookie));
            if status == 401 {
                assert_eq!(body, "no session");
                break;
            }
            assert!(
                started.elapsed() < Duration::from_millis(500),
                "the other instance still accepts the cookie"
            );
        }
        println!("refused by the other instance {:?} after the logout began", started.elapsed());
        cookie = http_sign_in(other, "bob");
    }
    browser.refresh().await.unwrap();
    assert_eq!(signed_in_user(&browser).await, None, "the browser's session was logged out too");
    browser.close().await.unwrap();
}

async fn a_key_rotated_while_signed_in_logs_no_one_out_and_the_cookie_moves_to_the_new_key(framework: &str) {
    let (dir, demo) = own_demo(framework, &[]);
    let browser = Driver::shared().browser().await;
    let key_id = async || browser.find(Locator::Css("#key-id")).await.unwrap().text().await.unwrap();
    sign_in(&browser, &demo, "alice").await;
    assert_eq!(key_id().await, "1");

    // One server: add a key and make it primary at once, then reload.
    let path = dir.path().join("keyring.toml");
    let (rotated, new_id) = Keyring::load(&path).unwrap().with_new_key().unwrap();
    std::fs::write(&path, rotated.with_primary(new_id).unwrap().to_toml_string().as_bytes()).unwrap();
    demo.hang_up();

    // Each reload of the page is signed in; once the server has the new
    // keyring, the cookie is re-issued under key 2.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        browser.refresh().await.unwrap();
        assert_eq!(signed_in_user(&browser).await.as_deref(), Some("alice"), "rotation logged the user out");
        if key_id().await == new_id.to_string() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the cookie never moved to key {new_id}");
    }
    browser.close().await.unwrap();
}

/// The demo's `GET /api/session` for the browser's session cookie, outside
/// the browser.
async fn api_session(browser: &fantoccini::Client, demo: &Demo) -> (u16, serde_json::Value) {
    let cookie = format!("__Host-session={}", session_cookie(browser).await.expect("a session cookie"));
    let (status, body) = http_get(demo.addr(), "/api/session", Some(&cookie));
    (status, serde_json::from_str(&body).unwrap_or(serde_json::Value::Null))
}

async fn add_to_cart(browser: &fantoccini::Client, demo: &Demo, item: &str) {
    browser.find(Locator::Css("#add-to-cart input[name=item]")).await.unwrap().send_keys(item).await.unwrap();
    submit(browser, demo, "add-to-cart", &format!("Added {item} to the cart.")).await;
}

async fn a_cart_filled_before_sign_in_is_kept_under_a_new_session_id(framework: &str) {
    let (demo, browser) = on_the_shared_demo(framework).await;
    browser.goto(&format!("{}/", demo.origin)).await.unwrap();
    assert_eq!(session_cookie(&browser).await, None, "no session until there is something to keep");
    add_to_cart(&browser, demo, "apples").await;
    add_to_cart(&browser, demo, "pears").await;
    assert_eq!(signed_in_user(&browser).await, None);
    let items = browser.find(Locator::Css("#cart")).await.unwrap().text().await.unwrap();
    assert_eq!(items.lines().collect::<Vec<_>>(), ["apples", "pears"]);

    let anonymous_cookie = format!("__Host-session={}", session_cookie(&browser).await.unwrap());
    let (status, anonymous) = api_session(&browser, demo).await;
    assert_eq!(status, 200);
    assert_eq!(anonymous["user"], serde_json::Value::Null);
    assert_eq!(anonymous["cart"], serde_json::json!(["apples", "pears"]));

    sign_in(&browser, demo, "alice").await;
    let (status, signed_in) = api_session(&browser, demo).await;
    assert_eq!(status, 200);
    assert_eq!(signed_in["user"], "alice");
    assert_eq!(signed_in["cart"], serde_json::json!(["apples", "pears"]), "the cart came along");
    assert_ne!(signed_in["session_id"], anonymous["session_id"], "a new session ID at sign-in");
    let (status, _) = http_get(demo.addr(), "/api/session", Some(&anonymous_cookie));
    assert_eq!(status, 401, "the anonymous session ended at sign-in");
    browser.close().await.unwrap();
}

async fn a_failed_sign_in_shows_its_message_once_with_no_code_in_the_url(framework: &str) {
    let (demo, browser) = on_the_shared_demo(framework).await;
    browser.goto(&format!("{}/", demo.origin)).await.unwrap();
    fill_login(&browser, "alice", "wrong").await;
    submit(&browser, demo, "login", "Wrong user name or password.").await;
    assert_eq!(browser.current_url().await.unwrap().as_str(), format!("{}/", demo.origin));
    let cookies = browser.get_all_cookies().await.unwrap();
    assert!(cookies.iter().all(|c| c.name() != "__Host-session-flash"), "read, so removed");

    browser.refresh().await.unwrap();
    assert_eq!(signed_in_user(&browser).await, None);
    assert!(browser.find_all(Locator::Css(".notice")).await.unwrap().is_empty(), "shown once");
    browser.close().await.unwrap();
}

async fn a_utf8_cookie_set_by_page_script_does_not_sign_the_user_out(framework: &str) {
    let (demo, browser) = on_the_shared_demo(framework).await;
    sign_in(&browser, demo, "alice").await;
    browser.execute("document.cookie = 'tracker=café; path=/'", vec![]).await.unwrap();
    let visible = browser.execute("return document.cookie", vec![]).await.unwrap();
    assert_eq!(visible, serde_json::json!("tracker=café"), "the browser keeps the UTF-8 cookie");

    browser.refresh().await.unwrap();
    assert_eq!(signed_in_user(&browser).await.as_deref(), Some("alice"), "still signed in");
    // Unsafe requests work too: the form's CSRF check reads the same cookies.
    add_to_cart(&browser, demo, "café au lait").await;
    assert_eq!(signed_in_user(&browser).await.as_deref(), Some("alice"));
    browser.close().await.unwrap();
}

async fn a_cross_site_post_to_the_exempt_webhook_is_answered_with_no_cookie(framework: &str) {
    let (demo, browser) = on_the_shared_demo(framework).await;
    let port = serve_form(&format!("{}/webhook", demo.origin), r#"<input name="event" value="paid">"#).await;
    browser.goto(&format!("http://localhost:{port}/")).await.unwrap();
    let target = format!("{}/webhook", demo.origin);
    browser.wait().at_most(Duration::from_secs(20)).for_url(&target.parse().unwrap()).await.unwrap();
    let answered = Locator::XPath("//*[contains(text(), 'received')]");
    let found = browser.wait().at_most(Duration::from_secs(20)).for_element(answered).await;
    assert!(found.is_ok(), "the webhook answered: {}", browser.source().await.unwrap());
    assert!(browser.get_all_cookies().await.unwrap().is_empty(), "and set no cookie");
    browser.close().await.unwrap();
}

async fn a_page_that_requires_a_session_sends_the_browser_to_sign_in_and_back(framework: &str) {
    let (demo, browser) = on_the_shared_demo(framework).await;
    browser.goto(&format!("{}/account", demo.origin)).await.unwrap();
    let login = format!("{}/?next=/account", demo.origin);
    assert_eq!(browser.current_url().await.unwrap().as_str(), login);
    assert_eq!(signed_in_user(&browser).await, None);

    fill_login(&browser, "bob", "bob-pass").await;
    browser.find(Locator::Css("#login button")).await.unwrap().click().await.unwrap();
    let account = format!("{}/account", demo.origin).parse().unwrap();
    browser.wait().at_most(Duration::from_secs(20)).for_url(&account).await.unwrap();
    assert_eq!(signed_in_user(&browser).await.as_deref(), Some("bob"), "back where the browser wanted to go");

    // An API client is answered, not redirected.
    let (status, body) = http_get(demo.addr(), "/account", None);
    assert_eq!((status, body.as_str()), (401, r#"{"error":"no session"}"#));
    // And a `next` that leaves the site is never followed.
    browser.delete_all_cookies().await.unwrap();
    browser.goto(&format!("{}/?next=//evil.example/", demo.origin)).await.unwrap();
    fill_login(&browser, "bob", "bob-pass").await;
    submit(&browser, demo, "login", "Signed in as bob.").await;
    browser.close().await.unwrap();
}

async fn remember_me_keeps_the_cookie_for_30_days_and_without_it_the_cookie_ends_with_the_browser(
    framework: &str,
) {
    let (demo, browser) = on_the_shared_demo(framework).await;
    let expiry = async || {
        let cookies = browser.get_all_cookies().await.unwrap();
        let session = cookies.into_iter().find(|c| c.name() == "__Host-session").expect("a session cookie");
        session.expires_datetime()
    };

    sign_in(&browser, demo, "alice").await;
    assert_eq!(expiry().await, None, "without remember me: a browser-session cookie");

    submit(&browser, demo, "logout", "Signed out.").await;
    fill_login(&browser, "alice", "alice-pass").await;
    browser.find(Locator::Css("#login input[name=remember]")).await.unwrap().click().await.unwrap();
    submit(&browser, demo, "login", "Signed in as alice.").await;
    let expires = expiry().await.expect("with remember me: a persistent cookie");
    let days = (expires - time::OffsetDateTime::now_utc()).whole_hours() as f64 / 24.0;
    assert!((29.9..=30.0).contains(&days), "expires in {days} days");
    browser.close().await.unwrap();
}

async fn settings_ask_for_the_password_again_after_the_sudo_window_and_then_open(framework: &str) {
    let (_dir, demo) = own_demo(framework, &["--sudo-window", "3"]);
    let browser = Driver::shared().browser().await;
    sign_in(&browser, &demo, "alice").await;
    let settings = format!("{}/settings", demo.origin);
    browser.goto(&settings).await.unwrap();
    assert_eq!(browser.current_url().await.unwrap().as_str(), settings, "a fresh sign-in opens it");
    browser.find(Locator::Css("#authenticated-at")).await.unwrap();

    tokio::time::sleep(Duration::from_secs(4)).await;
    browser.goto(&settings).await.unwrap();
    let reauth = format!("{}/reauth?next=/settings", demo.origin);
    assert_eq!(browser.current_url().await.unwrap().as_str(), reauth, "sent to confirm the password");
    let cookie = session_cookie(&browser).await.expect("a session cookie before the password check");

    let password = browser.find(Locator::Css("#reauth input[name=password]")).await.unwrap();
    password.send_keys("alice-pass").await.unwrap();
    browser.find(Locator::Css("#reauth button")).await.unwrap().click().await.unwrap();
    browser.wait().at_most(Duration::from_secs(20)).for_url(&settings.parse().unwrap()).await.unwrap();
    let shown = "//p[contains(@class, 'notice') and contains(., 'Password confirmed')]";
    browser.wait().at_most(Duration::from_secs(20)).for_element(Locator::XPath(shown)).await.unwrap();
    assert_ne!(session_cookie(&browser).await, Some(cookie.clone()), "a new session cookie");
    let (status, _) = http_get(demo.addr(), "/api/session", Some(&format!("__Host-session={cookie}")));
    assert_eq!(status, 401, "the cookie from before the password check is logged out");
    browser.close().await.unwrap();
}

async fn one_browser_signs_another_out_from_its_device_list(framework: &str) {
    let (_dir, demo, laptop, phone) = alice_on_a_laptop_and_a_phone(framework).await;

    laptop.goto(&format!("{}/devices", demo.origin)).await.unwrap();
    let rows = laptop.find_all(Locator::Css("#devices tr.device")).await.unwrap();
    assert_eq!(rows.len(), 2, "both browsers are listed");
    let current = laptop.find_all(Locator::Css("#devices tr.device.current")).await.unwrap();
    assert_eq!(current.len(), 1, "this one marked");
    assert!(current[0].text().await.unwrap().contains("Chrome on Linux"), "labelled by its User-Agent");
    laptop.find(Locator::Css("#devices form.revoke button")).await.unwrap().click().await.unwrap();
    let shown = "//p[contains(@class, 'notice') and contains(., 'Signed that device out')]";
    laptop.wait().at_most(Duration::from_secs(20)).for_element(Locator::XPath(shown)).await.unwrap();
    assert_eq!(laptop.find_all(Locator::Css("#devices tr.device")).await.unwrap().len(), 1);

    phone.goto(&format!("{}/", demo.origin)).await.unwrap();
    assert_eq!(signed_in_user(&phone).await, None, "the other browser is signed out on its next request");
    laptop.goto(&format!("{}/", demo.origin)).await.unwrap();
    assert_eq!(signed_in_user(&laptop).await.as_deref(), Some("alice"), "this one stays");
    laptop.close().await.unwrap();
    phone.close().await.unwrap();
}

async fn signing_out_all_other_devices_and_the_session_limit_work_in_a_browser(framework: &str) {
    let (_dir, demo) = own_demo(framework, &["--max-sessions", "2"]);
    let driver = Driver::shared();
    let (first, second, third) = (driver.browser().await, driver.browser().await, driver.browser().await);
    sign_in(&first, &demo, "alice").await;
    // Sessions begun in one second are "oldest" in no particular order.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    sign_in(&second, &demo, "alice").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    sign_in(&third, &demo, "alice").await;
    first.goto(&format!("{}/", demo.origin)).await.unwrap();
    assert_eq!(signed_in_user(&first).await, None, "the third login ended the oldest session");
    second.goto(&format!("{}/", demo.origin)).await.unwrap();
    assert_eq!(signed_in_user(&second).await.as_deref(), Some("alice"));

    third.goto(&format!("{}/devices", demo.origin)).await.unwrap();
    assert_eq!(third.find_all(Locator::Css("#devices tr.device")).await.unwrap().len(), 2);
    third.find(Locator::Css("#logout-others button")).await.unwrap().click().await.unwrap();
    submitted(&third, &demo, "Signed out of every other session").await;
    second.goto(&format!("{}/", demo.origin)).await.unwrap();
    assert_eq!(signed_in_user(&second).await, None, "the other device is signed out");
    third.goto(&format!("{}/", demo.origin)).await.unwrap();
    assert_eq!(signed_in_user(&third).await.as_deref(), Some("alice"), "this one stays signed in");
    for browser in [first, second, third] {
        browser.close().await.unwrap();
    }
}

/// Waits for the page at `/` that shows `notice`, after a form was posted.
async fn submitted(browser: &fantoccini::Client, demo: &Demo, notice: &str) {
    let url = format!("{}/", demo.origin).parse().unwrap();
    browser.wait().at_most(Duration::from_secs(20)).for_url(&url).await.unwrap();
    let shown = format!("//p[contains(@class, 'notice') and contains(., '{notice}')]");
    browser.wait().at_most(Duration::from_secs(20)).for_element(Locator::XPath(&shown)).await.unwrap();
}
