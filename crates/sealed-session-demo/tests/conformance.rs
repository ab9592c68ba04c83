//! One black-box HTTP suite for the demo on both frameworks: every route and
//! rule is checked, with a plain HTTP client and no framework types, against
//! the demo served by axum and by actix-web. Where a request's answer holds
//! nothing random, the two frameworks' answers are also compared: a
//! difference between them is a failure.
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use sealed_session::Keyring;
use sealed_session_demo::MAX_CART_ITEMS;
use sealed_session_testkit::demo::{csrf_token, http, Demo, Reply};

const DEMO: &str = env!("CARGO_BIN_EXE_sealed-session-demo");
const FRAMEWORKS: [&str; 2] = ["axum", "actix"];

/// Runs `check` against a fresh demo on each framework.
fn on_each_framework(check: impl Fn(&Demo)) {
    for framework in FRAMEWORKS {
        let dir = tempfile::tempdir().unwrap();
        let demo = Demo::start_on(framework, DEMO, dir.path(), None);
        eprintln!("on {framework}");
        check(&demo);
    }
}

/// A browser on the demo: a cookie jar that applies `Set-Cookie` by name
/// (`Max-Age=0` deletes), and requests from the demo's own origin.
struct Browser<'d> {
    demo: &'d Demo,
    jar: Vec<(String, String)>,
}

impl<'d> Browser<'d> {
    fn new(demo: &'d Demo) -> Self {
        Self { demo, jar: Vec::new() }
    }

    fn cookie(&self, name: &str) -> Option<&str> {
        self.jar.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn send(&mut self, method: &str, path: &str, extra: &[&str], body: &str) -> Reply {
        let mut headers: Vec<String> = extra.iter().map(|h| (*h).to_owned()).collect();
        if !self.jar.is_empty() {
            let pairs: Vec<String> = self.jar.iter().map(|(n, v)| format!("{n}={v}")).collect();
            headers.push(format!("Cookie: {}", pairs.join("; ")));
        }
        if method != "GET" {
            headers.push(format!("Origin: {}", self.demo.origin));
        }
        let reply = http(self.demo.addr(), method, path, &headers, body);
        self.absorb(&reply);
        reply
    }

    /// Applies the cookies `reply` sets.
    fn absorb(&mut self, reply: &Reply) {
        for set in reply.set_cookies() {
            let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            self.jar.retain(|(n, _)| n != name);
            if !attributes.contains("Max-Age=0") {
                self.jar.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    fn get(&mut self, path: &str) -> Reply {
        self.send("GET", path, &[], "")
    }

    /// Posts `form` with the CSRF token of the page at `/`.
    fn post_form(&mut self, path: &str, form: &str) -> Reply {
        let page = self.get("/");
        assert_eq!(page.status, 200);
        let token = csrf_token(&page.body);
        let body = if form.is_empty() {
            format!("csrf_token={token}")
        } else {
            format!("{form}&csrf_token={token}")
        };
        self.send("POST", path, &[], &body)
    }

    fn sign_in(&mut self, user: &str, extra: &str) -> Reply {
        let reply = self.post_form("/login", &format!("username={user}&password={user}-pass{extra}"));
        assert_eq!((reply.status, reply.header("location")), (303, Some("/")), "{}", reply.body);
        reply
    }

    fn session_json(&mut self) -> serde_json::Value {
        let reply = self.get("/api/session");
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        serde_json::from_str(&reply.body).unwrap()
    }
}

/// What of an answer must be the same on both frameworks: the status, the
/// headers that are not per-response (date, length; of a cookie set, its
/// name and attributes but not its value) and the body.
fn shape(reply: &Reply) -> (u16, Vec<String>, String) {
    let mut headers: Vec<String> = reply
        .headers
        .iter()
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        // `allow`: axum adds it to any answer for a method a path lacks,
        // the guard's redirect too; actix-web only to its own `405`.
        .filter(|(name, _)| !matches!(name.as_str(), "date" | "content-length" | "connection" | "allow"))
        .map(|(name, value)| match value.split_once('=') {
            // A value set (not a removal's empty one) is random.
            Some((cookie, rest)) if name == "set-cookie" && !rest.starts_with(';') => {
                let attributes = rest.split_once(';').map_or("", |(_, attributes)| attributes);
                format!("{name}: {cookie}=(value);{attributes}")
            }
            _ => format!("{name}: {value}"),
        })
        .collect();
    headers.sort();
    (reply.status, headers, reply.body.clone())
}

#[test]
fn the_same_requests_get_the_same_answers_on_both_frameworks() {
    let big_event = format!("event={}", "x".repeat(300 * 1024));
    let requests: [(&str, &str, &[&str], &str); 16] = [
        ("GET", "/api/session", &[], ""),
        ("HEAD", "/api/session", &[], ""),
        ("HEAD", "/account", &["Accept: text/html"], ""),
        ("POST", "/webhook", &["Sec-Fetch-Site: cross-site"], &big_event),
        ("GET", "/account", &["Accept: text/html"], ""),
        ("GET", "/account?tab=keys", &["Accept: application/json"], ""),
        ("POST", "/webhook", &["Sec-Fetch-Site: cross-site"], "event=paid"),
        ("POST", "/cart", &["Sec-Fetch-Site: cross-site"], "item=tea"),
        ("POST", "/cart", &["Sec-Fetch-Site: same-origin"], "item=tea"),
        ("POST", "/logout", &["Cookie: __Host-session=forged"], ""),
        ("GET", "/api/session", &["Cookie: __Host-session=AQAAAAE"], ""),
        ("GET", "/style.css", &[], ""),
        ("GET", "/style.css", &["Cookie: __Host-session=AQAAAAE"], ""),
        (
            "GET",
            "/api/session",
            &["Upgrade: websocket", "Connection: Upgrade", "Sec-Fetch-Site: cross-site"],
            "",
        ),
        (
            "GET",
            "/api/session",
            &["Upgrade: websocket", "Connection: Upgrade", "Origin: https://evil.example"],
            "",
        ),
        // A method a guarded path does not have: guarded all the same.
        ("OPTIONS", "/settings", &["Accept: text/html"], ""),
    ];
    let mut answers: Vec<Vec<(u16, Vec<String>, String)>> = Vec::new();
    for framework in FRAMEWORKS {
        let dir = tempfile::tempdir().unwrap();
        let demo = Demo::start_on(framework, DEMO, dir.path(), None);
        answers.push(
            requests
                .iter()
                .map(|(method, path, headers, body)| {
                    let headers: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
                    shape(&http(demo.addr(), method, path, &headers, body))
                })
                .collect(),
        );
    }
    for (i, request) in requests.iter().enumerate() {
        assert_eq!(answers[0][i], answers[1][i], "{request:?}: axum, then actix-web");
    }
    // And what those answers are.
    let answer = |i: usize| (answers[0][i].0, answers[0][i].2.as_str());
    assert_eq!(answer(0), (401, "no session"));
    assert_eq!(answer(1), (401, ""), "HEAD: the same answer without a body");
    assert_eq!(answer(2).0, 303);
    assert_eq!(answer(3), (200, "received"), "a large webhook body is taken on both");
    assert_eq!(answer(4).0, 303);
    assert!(answers[0][4].1.contains(&"location: /?next=/account".to_owned()));
    assert_eq!(answer(5), (401, r#"{"error":"no session"}"#));
    assert_eq!(answer(6), (200, "received"));
    assert_eq!(answer(7), (403, "CSRF check failed"));
    assert_eq!(answer(8), (403, "CSRF check failed"), "no pre-session, nothing to bind a token to");
    assert_eq!(answer(9), (403, "CSRF check failed"), "a forged cookie is no session to log out");
    assert_eq!(answer(10).0, 401);
    assert!(answers[0][11].1.contains(&"cache-control: public, max-age=600".to_owned()));
    assert!(answers[0][12].1.contains(&"cache-control: no-store".to_owned()), "a cookie removal");
    assert_eq!(answer(13), (403, "CSRF check failed"), "a cross-site WebSocket handshake");
    assert_eq!(answer(14), (403, "CSRF check failed"), "a WebSocket handshake from another origin");
    assert_eq!(answer(15).0, 303, "guarded whatever the method");
}

/// Each step of a visit sets the same cookies, by name and attributes, on
/// both frameworks: the login form's pre-session, a remembered login, a
/// session reused as it is, a logout.
#[test]
fn the_same_visit_sets_the_same_cookies_on_both_frameworks() {
    let mut visits: Vec<Vec<Vec<String>>> = Vec::new();
    for framework in FRAMEWORKS {
        let dir = tempfile::tempdir().unwrap();
        let demo = Demo::start_on(framework, DEMO, dir.path(), None);
        let mut browser = Browser::new(&demo);
        let steps = [
            browser.get("/"),
            browser.sign_in("alice", "&remember=on"),
            browser.get("/api/session"),
            browser.post_form("/logout", ""),
        ];
        let cookies =
            |reply: &Reply| shape(reply).1.into_iter().filter(|h| h.starts_with("set-cookie:")).collect();
        visits.push(steps.iter().map(cookies).collect());
    }
    assert_eq!(visits[0], visits[1], "axum, then actix-web");
    // Sorted by header line; `(value)` stands for a value set.
    let set = |name: &str| format!("set-cookie: {name}=(value); Path=/; Secure; HttpOnly; SameSite=Lax");
    let removed =
        |name: &str| format!("set-cookie: {name}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax");
    let remembered =
        "set-cookie: __Host-session=(value); Path=/; Max-Age=2592000; Secure; HttpOnly; SameSite=Lax";
    let expected = [
        vec![set("__Host-session-csrf")],
        vec![
            removed("__Host-session-csrf"),
            removed("__Host-session-dbsc"),
            set("__Host-session-flash"),
            remembered.to_owned(),
        ],
        vec![],
        vec![removed("__Host-session-dbsc"), set("__Host-session-flash"), removed("__Host-session")],
    ];
    assert_eq!(visits[0], expected);
}

/// The stylesheet is cacheable, by shared caches too; the one response of
/// it that carries a cookie (a removal, a session re-issued under a new
/// key) is not, or a CDN would hand it to everyone.
#[test]
fn a_cacheable_route_never_lets_a_shared_cache_keep_a_cookie() {
    use sealed_session::Keyring;
    for framework in FRAMEWORKS {
        let dir = tempfile::tempdir().unwrap();
        let demo = Demo::start_on(framework, DEMO, dir.path(), None);
        eprintln!("on {framework}");
        let plain = http(demo.addr(), "GET", "/style.css", &[], "");
        assert_eq!(plain.status, 200);
        assert_eq!(plain.header("content-type"), Some("text/css; charset=utf-8"));
        assert_eq!(plain.header("cache-control"), Some("public, max-age=600"));
        assert!(plain.set_cookies().is_empty());

        let mut browser = Browser::new(&demo);
        browser.sign_in("alice", "");
        let unchanged = browser.get("/style.css");
        assert!(unchanged.set_cookies().is_empty(), "nothing to re-issue yet");
        assert_eq!(unchanged.header("cache-control"), Some("public, max-age=600"));

        // A new primary key: the next response re-issues the session cookie.
        let path = dir.path().join("keyring.toml");
        let (rotated, id) = Keyring::load(&path).unwrap().with_new_key().unwrap();
        std::fs::write(&path, rotated.with_primary(id).unwrap().to_toml_string()).unwrap();
        demo.hang_up();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let reissued = loop {
            let reply = browser.get("/style.css");
            if !reply.set_cookies().is_empty() {
                break reply;
            }
            assert!(std::time::Instant::now() < deadline, "the session was never re-issued");
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        assert!(reissued.set_cookies().iter().any(|c| c.starts_with("__Host-session=")));
        assert_eq!(reissued.header("cache-control"), Some("no-store"), "{:?}", reissued.headers);
        assert_eq!(browser.session_json()["key_id"], id, "the re-issued cookie is under the new key");
    }
}

#[test]
fn every_answer_carries_the_security_headers_and_is_not_cached() {
    on_each_framework(|demo| {
        for (path, status) in [("/", 200), ("/api/session", 401), ("/account", 401)] {
            let reply = http(demo.addr(), "GET", path, &[], "");
            assert_eq!(reply.status, status, "{path}");
            let csp = reply.header("content-security-policy").unwrap();
            assert!(
                csp.starts_with("default-src 'none';") && csp.contains("frame-ancestors 'none'"),
                "{csp}"
            );
            assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
            assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
            assert_eq!(reply.header("x-frame-options"), Some("DENY"));
            assert_eq!(reply.header("cross-origin-opener-policy"), Some("same-origin"));
            assert_eq!(reply.header("cross-origin-resource-policy"), Some("same-origin"));
            assert_eq!(reply.header("cache-control"), Some("no-store"), "{path}");
        }
    });
}

/// The cart and the display name are bounded in bytes, not characters: a
/// cart full of the longest items outside ASCII, then the longest such
/// display name, still fits in the cookie, before sign-in and after.
#[test]
fn the_fullest_cart_and_longest_name_fit_in_the_cookie_on_both_frameworks() {
    for framework in FRAMEWORKS {
        let dir = tempfile::tempdir().unwrap();
        let demo = Demo::start_on(framework, DEMO, dir.path(), None);
        let mut browser = Browser::new(&demo);
        // 16 emoji, 64 bytes, as a form sends them.
        let (widest, sent) = ("\u{1F600}".repeat(16), "%F0%9F%98%80".repeat(16));
        assert_eq!(browser.post_form("/cart", &format!("item={sent}%F0%9F%98%80")).status, 303);
        assert!(browser.get("/").body.contains("An item has 1 to 64 bytes"), "too long: refused");
        for _ in 0..MAX_CART_ITEMS {
            let reply = browser.post_form("/cart", &format!("item={sent}"));
            assert_eq!(reply.status, 303, "{framework}: {}", reply.body);
        }
        assert_eq!(browser.session_json()["cart"].as_array().map(Vec::len), Some(MAX_CART_ITEMS));
        browser.sign_in("alice", "");
        let reply = browser.post_form("/profile", &format!("display_name={sent}"));
        assert_eq!(reply.status, 303, "{framework}: {}", reply.body);
        let json = browser.session_json();
        assert_eq!((json["user"].as_str(), json["display_name"].as_str()), (Some("alice"), Some(&*widest)));
    }
}

/// A client that opens a connection and sends no request, or only part
/// of one's head, is cut off (after 5 s on both frameworks; the axum
/// variant's `axum::serve` never did): else each such connection holds a
/// descriptor and a task for good.
#[test]
fn a_client_that_never_finishes_a_request_head_is_cut_off() {
    use std::io::{Read as _, Write as _};
    on_each_framework(|demo| {
        let connected = std::time::Instant::now();
        let held: Vec<_> = ["", "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: "]
            .into_iter()
            .map(|sent| {
                let mut slow = std::net::TcpStream::connect(demo.addr()).unwrap();
                slow.write_all(sent.as_bytes()).unwrap();
                slow.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
                (sent, slow)
            })
            .collect();
        for (sent, mut slow) in held {
            // Closed (an answer such as `408`, then the end; or a reset), not
            // held until the read gives up.
            let mut answer = Vec::new();
            match slow.read_to_end(&mut answer) {
                Ok(_) => {
                    assert!(answer.is_empty() || answer.starts_with(b"HTTP/1.1 408"), "{sent:?}: {answer:?}")
                }
                Err(err) => {
                    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{sent:?} held open: {err}")
                }
            }
            // After about 5 s, with room for a busy machine: not held for
            // most of the 30 s the read would wait.
            let held_for = connected.elapsed();
            assert!(held_for < std::time::Duration::from_secs(15), "{sent:?} cut off after {held_for:?}");
        }
    });
}

#[test]
fn a_cart_filled_before_login_is_an_anonymous_session_kept_under_a_new_id_at_login() {
    on_each_framework(|demo| {
        let mut browser = Browser::new(demo);
        let added = browser.post_form("/cart", "item=tea");
        assert_eq!((added.status, added.header("location")), (303, Some("/")));
        let session = added.set_cookie("__Host-session").to_owned();
        assert!(!session.contains("Max-Age"), "a browser-session cookie: {session}");
        assert!(
            browser.cookie("__Host-session-csrf").is_none(),
            "the session's token replaces the pre-session"
        );
        let json = browser.session_json();
        assert_eq!(json["user"], serde_json::Value::Null);
        assert_eq!(json["cart"], serde_json::json!(["tea"]));
        let anonymous_id = json["session_id"].clone();
        assert!(browser.get("/").body.contains("Added tea to the cart."), "a flash message");
        // There is no signing out of an anonymous session: a logout would
        // let any client write denylist entries to the store. The cart
        // stays, and a copy of its cookie still opens.
        let mut copy = Browser { demo, jar: browser.jar.clone() };
        let logout = browser.post_form("/logout", "");
        assert_eq!((logout.status, logout.header("location")), (303, Some("/")));
        assert!(logout.set_cookies().iter().all(|c| !c.starts_with("__Host-session=")), "kept");
        assert_eq!(copy.session_json()["cart"], serde_json::json!(["tea"]), "not revoked");
        // Nor by sending carts as duplicate cookies, which open as no
        // session: their anonymous sessions are left as they are.
        let mut other = Browser::new(demo);
        assert_eq!(other.post_form("/cart", "item=jam").status, 303);
        let mut both = Browser { demo, jar: copy.jar.clone() };
        both.jar.extend(other.jar.iter().filter(|(name, _)| name == "__Host-session").cloned());
        assert_eq!(both.post_form("/logout", "").status, 303);
        assert_eq!(copy.session_json()["cart"], serde_json::json!(["tea"]), "not revoked");
        assert_eq!(other.session_json()["cart"], serde_json::json!(["jam"]), "not revoked");

        browser.sign_in("alice", "");
        let json = browser.session_json();
        assert_eq!(json["user"], "alice");
        assert_eq!(json["cart"], serde_json::json!(["tea"]), "the cart came along");
        assert_ne!(json["session_id"], anonymous_id, "a new session ID at login");
        assert!(browser.get("/").body.contains("Signed in as alice"));
    });
}

#[test]
fn remember_me_gives_a_thirty_day_cookie_and_otherwise_a_browser_session_one() {
    on_each_framework(|demo| {
        // Exactly these attributes: no `Domain` either, so the cookie is
        // host-only (a browser on an IP address cannot show the difference).
        let attributes = |cookie: &str| cookie.split("; ").skip(1).map(str::to_owned).collect::<Vec<_>>();
        let remembered = Browser::new(demo).sign_in("alice", "&remember=on");
        let cookie = remembered.set_cookie("__Host-session");
        assert_eq!(attributes(cookie), ["Path=/", "Max-Age=2592000", "Secure", "HttpOnly", "SameSite=Lax"]);
        let plain = Browser::new(demo).sign_in("alice", "");
        let cookie = plain.set_cookie("__Host-session");
        assert_eq!(attributes(cookie), ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"]);
    });
}

#[test]
fn a_wrong_password_is_a_flash_message_and_no_session() {
    on_each_framework(|demo| {
        let mut browser = Browser::new(demo);
        let reply = browser.post_form("/login", "username=alice&password=nope&next=/account");
        assert_eq!((reply.status, reply.header("location")), (303, Some("/?next=/account")));
        assert!(browser.cookie("__Host-session").is_none());
        let page = browser.get("/?next=/account");
        assert!(page.body.contains("Wrong user name or password."));
        assert!(page.body.contains(r#"name="next" value="/account""#));
        assert!(!browser.get("/").body.contains("Wrong user name"), "shown once");
        // A `next` that leaves the site is dropped, signed in or not.
        let reply = browser.post_form("/login", "username=alice&password=nope&next=//evil.example/");
        assert_eq!((reply.status, reply.header("location")), (303, Some("/")));
        // Signing in from there goes back to the page that asked.
        let reply = browser.post_form("/login", "username=alice&password=alice-pass&next=/account");
        assert_eq!(reply.header("location"), Some("/account"));
        assert!(browser.send("GET", "/account", &["Accept: text/html"], "").body.contains("Account of"));
        let reply = browser.post_form("/login", "username=bob&password=bob-pass&next=//evil.example/");
        assert_eq!((reply.status, reply.header("location")), (303, Some("/")));
        assert_eq!(browser.session_json()["user"], "bob");
    });
}

#[test]
fn unsafe_requests_need_the_token_and_a_same_origin_browser() {
    on_each_framework(|demo| {
        let mut browser = Browser::new(demo);
        browser.sign_in("alice", "");
        let token = csrf_token(&browser.get("/").body);
        let no_token = browser.send("POST", "/profile", &[], "display_name=Mallory");
        assert_eq!((no_token.status, no_token.body.as_str()), (403, "CSRF check failed"));
        let other_site = browser.send(
            "POST",
            "/profile",
            &["Sec-Fetch-Site: cross-site"],
            &format!("display_name=Mallory&csrf_token={token}"),
        );
        assert_eq!(other_site.status, 403);
        assert_eq!(browser.session_json()["display_name"], "Alice", "nothing changed");
        let big = format!("display_name={}&csrf_token={token}", "x".repeat(70 * 1024));
        assert_eq!(browser.send("POST", "/profile", &[], &big).status, 413);
        let saved = browser.post_form("/profile", "display_name=Al");
        assert_eq!(saved.status, 303);
        assert_eq!(browser.session_json()["display_name"], "Al");
    });
}

#[test]
fn logout_revokes_the_session_and_logout_everywhere_ends_the_others() {
    on_each_framework(|demo| {
        let mut first = Browser::new(demo);
        first.sign_in("alice", "");
        let copy = first.cookie("__Host-session").unwrap().to_owned();
        let reply = first.post_form("/logout", "");
        assert_eq!(reply.status, 303);
        assert!(first.cookie("__Host-session").is_none(), "the cookie is removed");
        assert!(first.get("/").body.contains("Signed out."));
        let stolen =
            http(demo.addr(), "GET", "/api/session", &[format!("Cookie: __Host-session={copy}")], "");
        assert_eq!(stolen.status, 401, "a copy of the cookie is refused");

        let (mut one, mut two) = (Browser::new(demo), Browser::new(demo));
        one.sign_in("bob", "");
        two.sign_in("bob", "");
        assert_eq!(one.post_form("/logout-everywhere", "").status, 303);
        let refused = two.get("/api/session");
        assert_eq!(refused.status, 401);
        assert!(
            refused
                .set_cookies()
                .iter()
                .any(|c| c.starts_with("__Host-session=;") && c.contains("Max-Age=0")),
            "a revoked cookie is removed: {:?}",
            refused.headers
        );
    });
}

/// The string parameter `key` of a structured field such as the draft's
/// `Secure-Session-Registration` and `Secure-Session-Challenge`.
fn sf_param<'f>(field: &'f str, key: &str) -> &'f str {
    let start = field.find(&format!(";{key}=\"")).unwrap() + key.len() + 3;
    let rest = &field[start..];
    &rest[..rest.find('"').unwrap()]
}

/// Device-bound sessions (DBSC) through the core's driver on both
/// frameworks, as a browser with the draft does them: the login offers
/// binding, registration binds the session, a refresh asks for a proof and
/// then renews the bound cookie, and logout ends refreshes. (The cookie's
/// expiry, replay and every refusal are proven with a manual clock in the
/// core's `tests/dbsc_flow.rs`.)
#[test]
fn device_bound_sessions_register_refresh_and_end_on_both_frameworks() {
    use sealed_session::web::testing::DeviceKey;
    on_each_framework(|demo| {
        let mut browser = Browser::new(demo);
        let login = browser.sign_in("alice", "");
        let offer = login.header("secure-session-registration").expect("a login offers binding").to_owned();
        assert!(offer.starts_with("(ES256 RS256);path=\"/dbsc/register\";challenge=\""), "{offer}");
        assert_eq!(browser.session_json()["device_bound"], false);
        let unbound = browser.cookie("__Host-session").unwrap().to_owned();

        let key = DeviceKey::generate().unwrap();
        let proof =
            format!("Secure-Session-Response: \"{}\"", key.proof(sf_param(&offer, "challenge"), true));
        let registered = browser.send("POST", "/dbsc/register", &[proof.as_str()], "");
        assert_eq!(registered.status, 200, "{}", registered.body);
        assert_eq!(registered.header("content-type"), Some("application/json"));
        assert_eq!(registered.header("cache-control"), Some("no-store"));
        let instructions: serde_json::Value = serde_json::from_str(&registered.body).unwrap();
        assert_eq!(instructions["refresh_url"], "/dbsc/refresh");
        assert_eq!(instructions["credentials"][0]["name"], "__Host-session");
        assert_eq!(instructions["scope"]["include_site"], false);
        let bound_cookie = registered.set_cookie("__Host-session");
        assert!(bound_cookie.contains("Max-Age=540"), "{bound_cookie}");
        assert_eq!(browser.session_json()["device_bound"], true);
        let stale =
            http(demo.addr(), "GET", "/api/session", &[format!("Cookie: __Host-session={unbound}")], "");
        assert_eq!(stale.status, 401, "registration ends the unbound session");

        // Bare, as Chrome sends it (the draft writes a structured string).
        let identifier = instructions["session_identifier"].as_str().unwrap();
        let id = format!("Sec-Secure-Session-Id: {identifier}");
        // The challenge of the first refresh came with the registration
        // (the draft's "Cache challenge"): the refresh is one request.
        let ahead = registered.header("secure-session-challenge").expect("a challenge sent ahead").to_owned();
        assert_eq!(sf_param(&ahead, "id"), identifier);
        let challenge = &ahead[1..ahead.find("\";id=").unwrap()];
        let proof = format!("Secure-Session-Response: \"{}\"", key.proof(challenge, false));
        let before = browser.cookie("__Host-session").unwrap().to_owned();
        let refreshed = browser.send("POST", "/dbsc/refresh", &[id.as_str(), proof.as_str()], "");
        assert_eq!((refreshed.status, refreshed.body.as_str()), (200, ""));
        let next = refreshed.header("secure-session-challenge").expect("the next refresh's challenge");
        assert_ne!(next, ahead, "a new challenge for the next refresh");
        assert_ne!(browser.cookie("__Host-session").unwrap(), before, "a new bound cookie");
        assert_eq!(browser.session_json()["device_bound"], true);
        let replayed = browser.send("POST", "/dbsc/refresh", &[id.as_str(), proof.as_str()], "");
        assert_eq!(replayed.status, 403, "a proof is used once");

        let companion = browser.cookie("__Host-session-dbsc").unwrap().to_owned();
        assert_eq!(browser.post_form("/logout", "").status, 303);
        // The device (or a thief with its key) kept the companion cookie:
        // its proof is checked, then the logout is, which is asked once
        // more (the browser may have sent it as the session's ID changed),
        // and the retry with the same companion ends the binding.
        let cookie = format!("Cookie: __Host-session-dbsc={companion}");
        let asked = http(demo.addr(), "POST", "/dbsc/refresh", &[id.clone(), cookie.clone()], "");
        assert_eq!(asked.status, 403);
        let proof_of = |asked: &Reply| {
            let challenge = asked.header("secure-session-challenge").unwrap().to_owned();
            let challenge = &challenge[1..challenge.find("\";id=").unwrap()];
            format!("Secure-Session-Response: \"{}\"", key.proof(challenge, false))
        };
        let again =
            http(demo.addr(), "POST", "/dbsc/refresh", &[id.clone(), cookie.clone(), proof_of(&asked)], "");
        assert_eq!(again.status, 403, "{}", again.body);
        let ended = http(demo.addr(), "POST", "/dbsc/refresh", &[id.clone(), cookie, proof_of(&again)], "");
        assert_eq!(ended.status, 200);
        let ended_json: serde_json::Value = serde_json::from_str(&ended.body).unwrap();
        assert_eq!(ended_json, serde_json::json!({ "session_identifier": identifier, "continue": false }));
        assert!(
            ended.set_cookies().iter().any(|c| c.starts_with("__Host-session-dbsc=;")),
            "the companion goes"
        );
    });
}

/// A DBSC refresh that brings the binding's cookies with another key's
/// proof (copies, not the device) logs the session out on every server; when the
/// store cannot record that (here a Redis user whose write permission was
/// taken away, reads still answered), the refresh still ends for that
/// client, the device's session stays alive, and the audit log says so
/// (`invalid_proof_not_logged_out`) instead of claiming a logout. Given
/// the permission back, the same copies log the session out. (The driver
/// is the core's: one framework shows it.)
#[test]
fn copies_refused_while_the_store_cannot_write_are_audited_as_not_logged_out() {
    use sealed_session::web::testing::DeviceKey;
    use sealed_session_testkit::redis::{acl_file, RedisOptions, RedisServer};
    let dir = tempfile::tempdir().unwrap();
    let users = acl_file(dir.path(), &[("app", "pw", "~* &* +@all")]);
    let redis =
        RedisServer::start_with(RedisOptions::default().args(&["--aclfile", users.to_str().unwrap()]));
    let url = format!("redis://app:pw@127.0.0.1:{}/0", redis.port());
    let data = tempfile::tempdir().unwrap();
    let demo = Demo::start_on("axum", DEMO, data.path(), Some(&url));

    let mut browser = Browser::new(&demo);
    let offer = browser.sign_in("alice", "").header("secure-session-registration").unwrap().to_owned();
    let key = DeviceKey::generate().unwrap();
    let proof = format!("Secure-Session-Response: \"{}\"", key.proof(sf_param(&offer, "challenge"), true));
    let registered = browser.send("POST", "/dbsc/register", &[proof.as_str()], "");
    assert_eq!(registered.status, 200, "{}", registered.body);
    let instructions: serde_json::Value = serde_json::from_str(&registered.body).unwrap();
    let identifier = instructions["session_identifier"].as_str().unwrap().to_owned();
    let companion = browser.cookie("__Host-session-dbsc").unwrap().to_owned();
    // The thief's refresh: the identifier and the companion cookie, and a
    // proof of the challenge sent ahead signed by the thief's own key.
    let ahead = registered.header("secure-session-challenge").unwrap();
    let challenge = ahead.split(';').next().unwrap().trim_matches('"');
    let forged = DeviceKey::generate().unwrap().proof(challenge, false);
    let copies = || {
        let headers = [
            format!("Sec-Secure-Session-Id: {identifier}"),
            format!("Cookie: __Host-session-dbsc={companion}"),
            format!("Secure-Session-Response: \"{forged}\""),
        ];
        let ended = http(demo.addr(), "POST", "/dbsc/refresh", &headers, "");
        assert_eq!(ended.status, 200, "{}", ended.body);
        let ended: serde_json::Value = serde_json::from_str(&ended.body).unwrap();
        assert_eq!(ended, serde_json::json!({ "session_identifier": identifier, "continue": false }));
    };
    let last_audited = || {
        let log = std::fs::read_to_string(data.path().join("audit.jsonl")).unwrap();
        let last: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
        (last["event"].as_str().unwrap().to_owned(), last["reason"].as_str().unwrap_or("").to_owned())
    };

    assert_eq!(redis.cli(&["ACL", "SETUSER", "app", "-@write"]), "OK");
    copies();
    let audited = ("device_binding_ended".to_owned(), "invalid_proof_not_logged_out".to_owned());
    assert_eq!(last_audited(), audited);
    assert_eq!(browser.get("/api/session").status, 200, "the store did not record the logout");

    assert_eq!(redis.cli(&["ACL", "SETUSER", "app", "+@write"]), "OK");
    copies();
    assert_eq!(last_audited(), ("device_binding_ended".to_owned(), "invalid_proof".to_owned()));
    assert_eq!(browser.get("/api/session").status, 401, "logged out on every server");
}

/// A session ended while one of its requests still ran (a "log out
/// everywhere" whose body comes after another tab logged the session out,
/// as the second request of a double submit does): the demo answers as
/// after a logout, the sign-in page with a notice, not a bare `401`.
#[test]
fn a_session_ended_while_its_request_ran_is_told_so_on_the_sign_in_page() {
    use std::io::{Read as _, Write as _};
    on_each_framework(|demo| {
        let mut phone = Browser::new(demo);
        phone.sign_in("alice", "");
        let mut browser = Browser::new(demo);
        browser.sign_in("alice", "");
        let body = format!("csrf_token={}", csrf_token(&browser.get("/").body));
        let cookies: Vec<String> = browser.jar.iter().map(|(n, v)| format!("{n}={v}")).collect();
        let opened = || counter(demo, r#"sealed_session_opens_total{result="ok"}"#);
        let before = opened();
        let mut slow = std::net::TcpStream::connect(demo.addr()).unwrap();
        slow.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        let head = format!(
            "POST /logout-everywhere HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nOrigin: {}\r\nCookie: {}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
            demo.addr(),
            demo.origin,
            cookies.join("; "),
            body.len()
        );
        slow.write_all(head.as_bytes()).unwrap();
        // Its session opened (the store vouched for it) before its body came.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while opened() == before {
            assert!(std::time::Instant::now() < deadline, "the request did not open its session");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let mut other_tab = Browser { demo, jar: browser.jar.clone() };
        assert_eq!(other_tab.post_form("/logout", "").status, 303);

        slow.write_all(body.as_bytes()).unwrap();
        let mut response = String::new();
        slow.read_to_string(&mut response).unwrap();
        let reply = Reply::parse(&response).unwrap();
        assert_eq!((reply.status, reply.header("location")), (303, Some("/")), "{response}");
        browser.absorb(&reply);
        let page = browser.get("/");
        assert!(page.body.contains("This session had already ended. Sign in again."), "{}", page.body);
        assert!(page.body.contains(r#"name="password""#), "the sign-in form");
        // An ended session logs no one out everywhere.
        assert_eq!(phone.session_json()["user"], "alice");
    });
}

/// "Sign out other sessions" on both frameworks: the other browser's
/// session ends, this one stays signed in under a new cookie, and this
/// one's old cookie ends too.
#[test]
fn signing_out_other_sessions_keeps_this_one_on_both_frameworks() {
    on_each_framework(|demo| {
        let mut laptop = Browser::new(demo);
        laptop.sign_in("alice", "");
        let mut phone = Browser::new(demo);
        phone.sign_in("alice", "");
        let old_phone = phone.cookie("__Host-session").unwrap().to_owned();

        let reply = phone.post_form("/logout-others", "");
        assert_eq!((reply.status, reply.header("location")), (303, Some("/")), "{}", reply.body);
        assert_ne!(phone.cookie("__Host-session").unwrap(), old_phone);
        assert_eq!(phone.session_json()["user"], "alice", "this session stays signed in");
        assert_eq!(laptop.get("/api/session").status, 401, "the other one ended");
        let old =
            http(demo.addr(), "GET", "/api/session", &[format!("Cookie: __Host-session={old_phone}")], "");
        assert_eq!(old.status, 401, "and so did this one's old cookie");

        // The audit log has one JSON line per event, and no secret.
        let log = std::fs::read_to_string(demo.data_dir.join("audit.jsonl")).unwrap();
        let events: Vec<serde_json::Value> =
            log.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
        let names: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
        let expected = ["login", "login", "logout_others", "session_refused", "session_refused"];
        assert_eq!(names, expected, "{log}");
        assert!(events.iter().all(|e| e["user"] == "alice"), "{log}");
        assert_eq!(events[2]["previous"], events[1]["session"], "the phone's session went on under a new ID");
        assert_eq!(events[2]["epoch"], 1);
        assert_eq!(
            (&events[3]["reason"], &events[4]["reason"]),
            (&"revoked_user".into(), &"revoked_user".into())
        );
        for secret in [phone.session_json()["session_id"].as_str().unwrap(), &old_phone] {
            assert!(!log.contains(secret), "{log}");
        }
    });
}

/// `/settings` needs a sign-in or password check within `--sudo-window`
/// seconds: after that, a browser is sent to confirm its password (and
/// comes back), an API client gets `401`, and confirming gives the session
/// a new ID.
#[test]
fn settings_need_a_recent_password_and_confirming_it_renews_the_session_on_both_frameworks() {
    const HTML: &[&str] = &["Accept: text/html"];
    for framework in FRAMEWORKS {
        eprintln!("on {framework}");
        let dir = tempfile::tempdir().unwrap();
        let demo = Demo::start_with(framework, DEMO, dir.path(), &["--sudo-window", "3"]);
        let mut browser = Browser::new(&demo);
        let reply = browser.send("GET", "/reauth", HTML, "");
        assert_eq!(
            (reply.status, reply.header("location")),
            (303, Some("/?next=/settings")),
            "sign in first"
        );
        browser.sign_in("alice", "");
        let reply = browser.send("GET", "/settings", HTML, "");
        assert_eq!(reply.status, 200, "a fresh login opens it");
        assert!(reply.body.contains("Settings of <span id=\"user\">alice</span>"), "{}", reply.body);

        std::thread::sleep(std::time::Duration::from_secs(4));
        let reply = browser.send("GET", "/settings", HTML, "");
        assert_eq!((reply.status, reply.header("location")), (303, Some("/reauth?next=/settings")));
        let reply = browser.get("/settings");
        assert_eq!((reply.status, reply.body.as_str()), (401, r#"{"error":"re-authentication required"}"#));
        assert_eq!(browser.session_json()["user"], "alice", "the session itself goes on");

        let page = browser.send("GET", "/reauth?next=/settings", HTML, "");
        assert!(page.body.contains(r#"name="next" value="/settings""#), "{}", page.body);
        let token = csrf_token(&page.body);
        // The change the page submits needs it too: a copied cookie cannot
        // post it past the page.
        let change = format!("display_name=Mallory&csrf_token={token}");
        let reply = browser.send("POST", "/settings", HTML, &change);
        assert_eq!((reply.status, reply.header("location")), (303, Some("/reauth?next=/settings")));
        let reply = browser.send("POST", "/profile", HTML, &change);
        assert_eq!((reply.status, reply.header("location")), (303, Some("/reauth?next=/profile")));
        assert_ne!(browser.session_json()["display_name"], "Mallory");
        // Nor sign the owner's other sessions out (and stay signed in).
        let mut other = Browser::new(&demo);
        other.sign_in("alice", "");
        for (path, body) in [("/logout-others", String::new()), ("/devices/revoke", "session=00".to_owned())]
        {
            let reply = browser.send("POST", path, HTML, &format!("{body}&csrf_token={token}"));
            assert_eq!(
                (reply.status, reply.header("location")),
                (303, Some(&*format!("/reauth?next={path}")))
            );
        }
        assert_eq!(other.session_json()["user"], "alice", "another session was ended with a stale password");
        let before = browser.session_json()["session_id"].clone();
        let wrong = format!("password=nope&next=/settings&csrf_token={token}");
        let reply = browser.send("POST", "/reauth", &[], &wrong);
        assert_eq!((reply.status, reply.header("location")), (303, Some("/reauth?next=/settings")));
        assert_eq!(browser.session_json()["session_id"], before, "a wrong password changes nothing");
        assert_eq!(browser.send("GET", "/settings", HTML, "").status, 303);

        let right = format!("password=alice-pass&next=/logout-others&csrf_token={token}");
        let reply = browser.send("POST", "/reauth", &[], &right);
        assert_eq!((reply.status, reply.header("location")), (303, Some("/logout-others")), "{}", reply.body);
        let reply = browser.send("GET", "/logout-others", HTML, "");
        assert_eq!((reply.status, reply.header("location")), (303, Some("/")), "back to the button");
        // The new session ID needs a new token.
        let token = csrf_token(&browser.send("GET", "/reauth?next=/settings", HTML, "").body);
        let before = browser.session_json()["session_id"].clone();
        let right = format!("password=alice-pass&next=/settings&csrf_token={token}");
        let reply = browser.send("POST", "/reauth", &[], &right);
        assert_eq!((reply.status, reply.header("location")), (303, Some("/settings")), "{}", reply.body);
        assert_ne!(browser.session_json()["session_id"], before, "a new session ID");
        let reply = browser.send("GET", "/settings", HTML, "");
        assert_eq!(reply.status, 200);
        assert!(reply.body.contains("Password confirmed"), "{}", reply.body);
        let change = format!("display_name=Al&csrf_token={}", csrf_token(&reply.body));
        let reply = browser.send("POST", "/settings", HTML, &change);
        assert_eq!((reply.status, reply.header("location")), (303, Some("/settings")), "{}", reply.body);
        assert_eq!(browser.session_json()["display_name"], "Al");

        let log = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
        assert!(log.lines().any(|line| line.contains(r#""event":"reauthenticated""#)), "{log}");
    }
}

/// The device list: each session of the user, this one marked; another
/// device signed out from it ends on the spot; `--max-sessions` ends the
/// oldest session at the login beyond it.
#[test]
fn a_user_lists_their_devices_signs_one_out_and_the_limit_ends_the_oldest_on_both_frameworks() {
    for framework in FRAMEWORKS {
        eprintln!("on {framework}");
        let dir = tempfile::tempdir().unwrap();
        let demo = Demo::start_with(framework, DEMO, dir.path(), &["--max-sessions", "2"]);
        let mut laptop = Browser::new(&demo);
        laptop.sign_in("alice", "");
        let mut phone = Browser::new(&demo);
        phone.send(
            "GET",
            "/",
            &["User-Agent: Mozilla/5.0 (Linux; Android 14) Chrome/131.0 Mobile Safari/537.36"],
            "",
        );
        let token = csrf_token(&phone.get("/").body);
        let login = format!("username=alice&password=alice-pass&csrf_token={token}");
        let agent = "User-Agent: Mozilla/5.0 (Linux; Android 14) Chrome/131.0 Mobile Safari/537.36";
        assert_eq!(phone.send("POST", "/login", &[agent], &login).status, 303);

        let reply = laptop.get("/api/devices");
        assert_eq!(reply.status, 200, "{}", reply.body);
        let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        let sessions = json["sessions"].as_array().unwrap();
        assert_eq!(sessions.len(), 2, "{json}");
        let keys: Vec<&str> = sessions[0].as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected =
            ["created_at", "current", "device_bound", "id", "last_seen", "remembered", "user_agent"];
        expected.sort_unstable();
        assert_eq!(keys, expected);
        let current: Vec<_> = sessions.iter().filter(|s| s["current"] == true).collect();
        let other: Vec<_> = sessions.iter().filter(|s| s["current"] == false).collect();
        assert_eq!((current.len(), other.len()), (1, 1), "this one marked");
        assert_eq!(other[0]["user_agent"], "Chrome on Android");
        assert!(current[0]["created_at"].as_str().unwrap().ends_with('Z'), "RFC 3339 in UTC");
        let phone_id = other[0]["id"].as_str().unwrap().to_owned();
        assert!(!reply.body.contains(phone.session_json()["session_id"].as_str().unwrap()), "no session ID");

        let page = laptop.get("/devices");
        assert_eq!(page.status, 200);
        assert!(page.body.contains(&format!(r#"name="session" value="{phone_id}""#)), "{}", page.body);
        assert_eq!(http(demo.addr(), "GET", "/api/devices", &[], "").status, 401, "no session, no list");

        let reply = laptop.post_form("/devices/revoke", &format!("session={phone_id}"));
        assert_eq!((reply.status, reply.header("location")), (303, Some("/devices")));
        assert_eq!(phone.get("/api/session").status, 401, "the phone is signed out");
        let reply = laptop.post_form("/devices/revoke", &format!("session={phone_id}"));
        assert_eq!(reply.status, 303, "twice is no error");
        assert!(laptop.get("/devices").body.contains("That session was not signed out"));
        assert_eq!(laptop.session_json()["user"], "alice", "this one stays");

        // The limit: two sessions; a third login ends the oldest. (Sessions
        // begun in the same second are ordered by ID: the core's tests prove
        // the order on a manual clock.)
        let mut tablet = Browser::new(&demo);
        tablet.sign_in("alice", "");
        let mut desktop = Browser::new(&demo);
        desktop.sign_in("alice", "");
        let signed_in = [laptop.get("/api/session").status, tablet.get("/api/session").status];
        assert!(
            signed_in == [401, 200] || signed_in == [200, 401],
            "one earlier session ended: {signed_in:?}"
        );
        assert_eq!(desktop.session_json()["user"], "alice", "the new login stays");
        let listed: serde_json::Value = serde_json::from_str(&desktop.get("/api/devices").body).unwrap();
        assert_eq!(listed["sessions"].as_array().unwrap().len(), 2);

        let log = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
        for event in ["device_ended", "limit_enforced"] {
            assert!(log.contains(&format!(r#""event":"{event}""#)), "{event}: {log}");
        }
    }
}

/// Writes `keyring` over the file at `path` as the CLI does: a new file of
/// mode 0600, renamed into place.
fn replace_keyring_file(path: &std::path::Path, text: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    let temp = path.with_extension("new");
    std::fs::write(&temp, text).unwrap();
    std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

/// Now plus `seconds`, to the second.
fn seconds_from_now(seconds: i64) -> time::OffsetDateTime {
    let now = time::OffsetDateTime::now_utc() + time::Duration::seconds(seconds);
    now.replace_nanosecond(0).unwrap()
}

/// Sleeps until `at` has passed by the wall clock.
fn sleep_until(at: time::OffsetDateTime) {
    let left = at - time::OffsetDateTime::now_utc();
    if left.is_positive() {
        std::thread::sleep(left.unsigned_abs() + std::time::Duration::from_millis(50));
    }
}

/// How many times the demo's keyring reload ended with `result` ("ok",
/// "refused"), from `/metrics`.
fn reloads(demo: &Demo, result: &str) -> u64 {
    counter(demo, &format!(r#"sealed_session_keyring_reloads_total{{result="{result}"}}"#))
}

/// The value of the counter `series` (name and labels) in `/metrics`.
fn counter(demo: &Demo, series: &str) -> u64 {
    let metrics = http(demo.addr(), "GET", "/metrics", &[], "").body;
    let line = metrics.lines().find(|l| l.starts_with(series));
    line.and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok()).unwrap_or(0)
}

/// Waits (10 s at most) until the demo has counted one more reload ending
/// with `result` than `before`.
fn wait_for_reload(demo: &Demo, result: &str, before: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while reloads(demo, result) == before {
        assert!(std::time::Instant::now() < deadline, "the demo did not read the file ({result})");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A key scheduled a few seconds ahead seals from that instant on with no
/// signal and no restart; older cookies still open and move to it; a key
/// retired on schedule is refused from then on; a broken keyring file signs
/// nobody out.
#[test]
fn a_scheduled_rotation_takes_effect_on_time_in_a_running_demo() {
    on_each_framework(|demo| {
        let path = demo.data_dir.join("keyring.toml");
        let mut alice = Browser::new(demo);
        alice.sign_in("alice", "");
        assert_eq!(alice.session_json()["key_id"], 1);
        // Alice's key-1 cookie as it is now, sent later as it is.
        let stale = format!("__Host-session={}", alice.cookie("__Host-session").unwrap());
        let stale_status =
            || http(demo.addr(), "GET", "/api/session", &[format!("Cookie: {stale}")], "").status;

        // Far enough ahead for a reload and a login on a loaded machine.
        let activate = seconds_from_now(8);
        let (scheduled, id) = Keyring::load(&path).unwrap().with_new_key_activating_at(activate).unwrap();
        let read = reloads(demo, "ok");
        replace_keyring_file(&path, &scheduled.to_toml_string());
        wait_for_reload(demo, "ok", read);
        // Read long before the instant (a notification), and followed only
        // from it: a login until then seals under key 1.
        let mut early = Browser::new(demo);
        early.sign_in("alice", "");
        assert!(time::OffsetDateTime::now_utc() < activate, "the machine is too slow for this test");
        assert_eq!(early.session_json()["key_id"], 1, "a login before the activation");
        sleep_until(activate);
        // New logins seal under key 2 from the instant on.
        let mut bob = Browser::new(demo);
        bob.sign_in("bob", "");
        assert_eq!(bob.session_json()["key_id"], id, "a login after the activation");
        // Alice's key-1 cookie still opens, and is re-issued under key 2.
        let reply = alice.get("/api/session");
        assert_eq!(reply.status, 200);
        assert!(reply.set_cookies().iter().any(|c| c.starts_with("__Host-session=")), "{:?}", reply.headers);
        assert_eq!(alice.session_json()["key_id"], id);

        // Seconds after the handover: `with_retire_at` refuses that (less
        // than the clock leeway), so the file is written by hand.
        // As far ahead as the activation, for the same reason.
        let retire = seconds_from_now(8);
        let loaded = Keyring::load(&path).unwrap();
        let retiring =
            Keyring::new(
                loaded.keys().map(|k| if k.id == 1 { k.clone().retire_at(retire) } else { k.clone() }),
            )
            .unwrap();
        let read = reloads(demo, "ok");
        replace_keyring_file(&path, &retiring.to_toml_string());
        wait_for_reload(demo, "ok", read);
        assert!(time::OffsetDateTime::now_utc() < retire, "the machine is too slow for this test");
        assert_eq!(stale_status(), 200, "key 1 opens until its retire time");
        sleep_until(retire);
        assert_eq!(stale_status(), 401, "a cookie under the retired key is refused");

        // Garbage in the file: read and refused, and no one is signed out.
        let before = reloads(demo, "refused");
        replace_keyring_file(&path, "this is not a keyring");
        wait_for_reload(demo, "refused", before);
        assert_eq!(bob.session_json()["user"], "bob");
        assert_eq!(alice.session_json()["key_id"], id);
    });
}

/// `GET /metrics`: Prometheus text with the library's series, counting what
/// happened, and naming no user, session or cookie.
#[test]
fn metrics_count_logins_opens_and_refusals_without_naming_anyone() {
    on_each_framework(|demo| {
        let mut alice = Browser::new(demo);
        alice.sign_in("alice", "");
        assert_eq!(alice.session_json()["user"], "alice");
        let cookie = alice.cookie("__Host-session").unwrap().to_owned();
        let mut tampered = cookie.clone().into_bytes();
        let middle = tampered.len() / 2;
        tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        let refused =
            http(demo.addr(), "GET", "/api/session", &[format!("Cookie: __Host-session={tampered}")], "");
        assert_eq!(refused.status, 401);

        let reply = http(demo.addr(), "GET", "/metrics", &[], "");
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
        let body = &reply.body;
        for series in [
            "sealed_session_events_total{event=\"login\"} 1",
            "sealed_session_opens_total{result=\"invalid\"} 1",
            "sealed_session_seals_total{key_id=\"1\"}",
            "sealed_session_opens_total{result=\"ok\"}",
            "sealed_session_store_seconds",
        ] {
            assert!(body.contains(series), "no {series} in:\n{body}");
        }
        assert!(!body.contains("alice") && !body.contains(&cookie) && !body.contains(&tampered), "{body}");
    });
}

/// `--help` never shows the store URL from the environment, whose password
/// it would print.
#[test]
fn help_does_not_show_the_store_url_from_the_environment() {
    let output = std::process::Command::new(DEMO)
        .arg("--help")
        .env("DEMO_STORE", "redis://app:s3cret-pass@127.0.0.1:6379/0")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success() && help.contains("DEMO_STORE"), "{help}");
    assert!(!help.contains("s3cret-pass"), "{help}");
}

/// The demo logs no user (SECURITY.md): with the library's, the adapters'
/// and the demo's own logs at every level, a wrong password, a sign-in, a
/// wrong and a right re-authentication, signing out the other sessions,
/// logging out everywhere and a logout name neither user, on both
/// frameworks; nor does any line hold a password, a cookie value, a
/// session ID or a CSRF token.
#[test]
fn the_demo_logs_no_user() {
    const LOG: &str = "info,sealed_session=trace,sealed_session_axum=trace,sealed_session_actix=trace,\
                       sealed_session_demo=trace";
    for framework in FRAMEWORKS {
        eprintln!("on {framework}");
        let dir = tempfile::tempdir().unwrap();
        let demo = Demo::start_logging(framework, DEMO, dir.path(), LOG);
        // What no log line may hold either: every cookie value, session ID
        // and CSRF token the two browsers were given, and the passwords.
        let mut secrets: Vec<String> =
            ["alice-pass", "bob-pass", "password=nope"].map(str::to_owned).to_vec();
        let mut keep = |browser: &mut Browser| {
            let session = browser.session_json();
            for field in ["session_id", "csrf_token"] {
                secrets.push(session[field].as_str().unwrap().to_owned());
            }
            secrets.extend(browser.jar.iter().map(|(_, value)| value.clone()));
        };
        let mut browser = Browser::new(&demo);
        let reply = browser.post_form("/login", "username=alice&password=nope");
        assert_eq!(reply.status, 303);
        browser.sign_in("alice", "");
        keep(&mut browser);
        let mut other = Browser::new(&demo);
        other.sign_in("bob", "");
        keep(&mut other);
        for password in ["nope", "alice-pass"] {
            let reply = browser.post_form("/reauth", &format!("password={password}&next=/settings"));
            assert_eq!(reply.status, 303, "{}", reply.body);
        }
        keep(&mut browser);
        for path in ["/logout-others", "/logout-everywhere"] {
            assert_eq!(browser.post_form(path, "").status, 303, "{path}");
            browser.sign_in("alice", "");
            keep(&mut browser);
        }
        assert_eq!(browser.post_form("/logout", "").status, 303);
        assert_eq!(other.post_form("/logout", "").status, 303);
        // A last request whose line says the log has caught up (it arrives
        // through a pipe): a second failed login.
        assert_eq!(other.post_form("/login", "username=alice&password=nope").status, 303);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while demo.log().iter().filter(|line| line.contains("failed login")).count() < 2 {
            assert!(std::time::Instant::now() < deadline, "{:#?}", demo.log());
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let log = demo.log();
        for said in
            ["failed login", "signed in", "logged out everywhere", "signed out of every other session"]
        {
            assert!(log.iter().any(|line| line.contains(said)), "{said:?} was logged: {log:#?}");
        }
        // The banner's hint of the demo's users aside.
        let log: Vec<_> = log
            .iter()
            .filter(|line| !line.starts_with("sign in as alice / alice-pass or bob / bob-pass"))
            .collect();
        let named: Vec<_> =
            log.iter().filter(|line| line.contains("alice") || line.contains("bob")).collect();
        assert!(named.is_empty(), "{named:#?}");
        assert!(secrets.len() > 10 && secrets.iter().all(|secret| secret.len() >= 8), "{secrets:?}");
        for secret in &secrets {
            let leaked: Vec<_> = log.iter().filter(|line| line.contains(secret.as_str())).collect();
            assert!(leaked.is_empty(), "{secret:?} was logged: {leaked:#?}");
        }
        // Plain text in a pipe: no terminal colour codes in a log file.
        assert!(!demo.log().iter().any(|line| line.contains('\u{1b}')), "{:#?}", demo.log());
    }
}

/// A store that dies (Redis killed, as in a crash) logs nobody out: once the
/// cache stops answering, a signed-in browser's requests are `503` and
/// change no cookie, on each framework, so that the session is there when
/// the store is back. (The adapters' own tests show the same against a
/// store that cannot be reached at all.)
#[test]
fn a_store_that_dies_logs_nobody_out() {
    use sealed_session_testkit::redis::RedisServer;
    use std::time::{Duration, Instant};
    for framework in FRAMEWORKS {
        let mut redis = RedisServer::start();
        let data = tempfile::tempdir().unwrap();
        let demo = Demo::start_on(framework, DEMO, data.path(), Some(&redis.url()));
        let mut browser = Browser::new(&demo);
        browser.sign_in("alice", "");
        assert_eq!(browser.get("/api/session").status, 200, "{framework}");
        let jar = browser.jar.clone();
        redis.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let reply = browser.get("/api/session");
            assert!(reply.set_cookies().is_empty(), "{framework}: {:?}", reply.set_cookies());
            if reply.status == 503 {
                break;
            }
            assert_eq!(reply.status, 200, "{framework}: {}", reply.body);
            assert!(Instant::now() < deadline, "{framework}: still answered 10 s after the store died");
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(browser.jar, jar, "{framework}: the cookies are as they were");
    }
}
