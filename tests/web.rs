//! The per-request logic web integrations share (`sealed_session::web`),
//! driven as an integration drives it: headers in, cookies out.

use std::sync::Arc;

use sealed_session::csrf::CsrfError;
use sealed_session::web::{
    bearer_token, CsrfCheck, CsrfRefusal, CsrfRequest, HandleError, Level, WebConfig, WebConfigError,
};
use sealed_session::{
    Keyring, LoginState, MemoryStore, RevocationState, RevocationStore, Sealer, SessionId, StoreError,
    Verifier,
};

type Config = Arc<WebConfig<MemoryStore>>;

fn config_with(
    keyring: Keyring,
    change: impl FnOnce(
        sealed_session::web::WebConfigBuilder<MemoryStore>,
    ) -> sealed_session::web::WebConfigBuilder<MemoryStore>,
) -> Config {
    let verifier = Verifier::new(Sealer::builder(keyring).build().unwrap(), MemoryStore::new());
    Arc::new(change(WebConfig::builder(verifier)).build().unwrap())
}

fn config() -> Config {
    config_with(Keyring::generate().unwrap(), |b| b)
}

/// `name=value` of a `Set-Cookie` value.
fn pair(set_cookie: &str) -> &str {
    set_cookie.split(';').next().unwrap()
}

async fn signed_in(config: &Config, user: &str) -> String {
    let session = config.verifier().login(user, user.to_uppercase()).await.unwrap();
    let (_, set_cookie) = config.verifier().issue_cookie(&session, config.cookie()).unwrap();
    pair(&set_cookie).to_owned()
}

async fn open(config: &Config, cookie: &str) -> sealed_session::web::SessionHandle<String> {
    config.open_request::<String, _, _>([cookie.as_bytes()], None).await.unwrap()
}

fn post<'r>(token: Option<&'r str>) -> CsrfRequest<'r> {
    CsrfRequest { method: "POST", path: "/cart", host: Some("app.example"), token, ..CsrfRequest::default() }
}

#[test]
fn a_valid_cookie_opens_and_an_unchanged_session_sets_no_cookie() {
    pollster::block_on(async {
        let config = config();
        let cookie = signed_in(&config, "alice").await;
        // A neighbour cookie with UTF-8 in it changes nothing.
        let headers: [&[u8]; 2] = ["tracker=café".as_bytes(), cookie.as_bytes()];
        let handle = config.open_request::<String, _, _>(headers, None).await.unwrap();
        let current = handle.current().expect("a session");
        assert_eq!(current.session().user_id(), Some("alice"));
        assert_eq!(current.session().data(), "ALICE");
        let response = handle.finish();
        assert!(response.set_cookies.is_empty() && response.session_token.is_none());
        assert!(!response.no_store());
    })
}

#[test]
fn a_tampered_cookie_is_no_session_and_removed() {
    pollster::block_on(async {
        let config = config();
        let mut cookie = signed_in(&config, "alice").await;
        let last = cookie.pop().unwrap();
        cookie.push(if last == 'A' { 'B' } else { 'A' });
        let handle = open(&config, &cookie).await;
        assert!(handle.current().is_none());
        let response = handle.finish();
        assert_eq!(response.set_cookies.len(), 1);
        assert!(response.set_cookies[0].starts_with("__Host-session=;"), "{:?}", response.set_cookies);
        assert!(response.set_cookies[0].contains("Max-Age=0"));
        assert!(response.no_store());
    })
}

#[test]
fn a_cookie_under_a_key_this_server_lacks_is_kept_and_never_replaced() {
    pollster::block_on(async {
        // A server that has the keyring's next key already, and one that does not yet.
        let keyring = Keyring::generate().unwrap();
        let (next, id) = keyring.with_new_key().unwrap();
        let ahead = config_with(next.with_primary(id).unwrap(), |b| b);
        let cookie = signed_in(&ahead, "alice").await;
        let config = config_with(keyring, |b| b);
        let handle = open(&config, &cookie).await;
        assert!(handle.current().is_none());
        let err = handle.update_or_insert(String::new, |cart| cart.push('x')).await.unwrap_err();
        assert!(matches!(err, HandleError::UnreadableSession), "{err:?}");
        assert!(handle.finish().set_cookies.is_empty(), "the cookie is kept: no removal, no replacement");
    })
}

/// Login and logout on a server that lags behind in a key rollout: neither
/// can end the session it would replace or remove (the cookie does not
/// open here), so both refuse and change nothing, and the session is ended
/// properly once the request reaches a server with the key.
#[test]
fn login_and_logout_never_leave_a_session_this_server_cannot_read_alive() {
    pollster::block_on(async {
        let keyring = Keyring::generate().unwrap();
        let (next, id) = keyring.with_new_key().unwrap();
        // Both servers share one store, as in a deployment.
        let store = Arc::new(MemoryStore::new());
        let server = |keyring: Keyring| {
            let verifier = Verifier::new(Sealer::builder(keyring).build().unwrap(), Arc::clone(&store));
            Arc::new(WebConfig::builder(verifier).build().unwrap())
        };
        let (ahead, behind) = (server(next.with_primary(id).unwrap()), server(keyring));
        let session = ahead.verifier().login("alice", "ALICE".to_owned()).await.unwrap();
        let (_, set_cookie) = ahead.verifier().issue_cookie(&session, ahead.cookie()).unwrap();
        let cookie = pair(&set_cookie).to_owned();

        let handle = behind.open_request::<String, _, _>([cookie.as_bytes()], None).await.unwrap();
        let err = handle.login("mallory", String::new()).await.unwrap_err();
        assert!(matches!(err, HandleError::UnreadableSession), "{err:?}");
        let err = handle.logout().await.unwrap_err();
        assert!(matches!(err, HandleError::UnreadableSession), "{err:?}");
        assert!(handle.current().is_none());
        assert!(handle.finish().set_cookies.is_empty(), "no new cookie, no removal");
        let still = ahead.open_request::<String, _, _>([cookie.as_bytes()], None).await.unwrap();
        assert_eq!(still.current().unwrap().session().id(), session.id(), "the session is still alive");

        // Retried where the key is known, login ends it.
        still.login("alice", String::new()).await.unwrap();
        let old = ahead.open_request::<String, _, _>([cookie.as_bytes()], None).await.unwrap();
        assert!(old.current().is_none(), "the session the login replaced is logged out");
    })
}

#[test]
fn a_session_sealed_under_an_older_key_is_reissued_under_the_primary() {
    pollster::block_on(async {
        let old = Keyring::generate().unwrap();
        let (with_new, id) = old.with_new_key().unwrap();
        let before = config_with(old, |b| b);
        let cookie = signed_in(&before, "alice").await;
        let after = config_with(with_new.with_primary(id).unwrap(), |b| b);
        // The same store would be shared in a real deployment; the session is
        // not revoked in this new one either.
        let handle = open(&after, &cookie).await;
        assert_ne!(handle.current().unwrap().key_id(), id);
        let response = handle.finish();
        assert_eq!(response.set_cookies.len(), 1);
        let reissued = open(&after, pair(&response.set_cookies[0])).await;
        assert_eq!(reissued.current().unwrap().key_id(), id);
        assert_eq!(reissued.current().unwrap().session().id(), handle.current().unwrap().session().id());
    })
}

/// A WebSocket handshake is a `GET` (or, over HTTP/2, a `CONNECT`) that a
/// page on any site may open with the user's cookies: it must come from
/// this site (Fetch Metadata, else `Origin`), and cannot carry a token.
#[test]
fn upgrade_requests_must_come_from_this_site_and_need_no_token() {
    pollster::block_on(async {
        let config = config_with(Keyring::generate().unwrap(), |b| b.csrf_exempt("/public-ws"));
        let handle = open(&config, &signed_in(&config, "alice").await).await;
        assert!(handle.csrf_applies("GET", "/ws", true));
        assert!(handle.csrf_applies("CONNECT", "/ws", sealed_session::web::is_upgrade("CONNECT", false)));
        assert!(!handle.csrf_applies("GET", "/ws", false));
        assert!(!handle.csrf_applies("GET", "/public-ws", true), "exempt paths stay exempt");
        let upgrade = |sec_fetch_site: Option<&'static str>, origin: Option<&'static str>| CsrfRequest {
            method: "GET",
            path: "/ws",
            host: Some("app.example"),
            sec_fetch_site,
            origin,
            upgrade: true,
            ..CsrfRequest::default()
        };
        for (site, origin) in
            [(Some("same-origin"), Some("https://app.example")), (None, Some("https://app.example"))]
        {
            assert_eq!(handle.check_csrf(&upgrade(site, origin)).unwrap(), CsrfCheck::Passed, "{site:?}");
        }
        for (site, origin) in [
            (Some("cross-site"), Some("https://evil.example")),
            (Some("same-site"), Some("https://sub.app.example")),
            (None, Some("https://evil.example")),
        ] {
            let refused = handle.check_csrf(&upgrade(site, origin)).unwrap_err();
            assert_eq!(refused.status(), 403, "{site:?} {origin:?}");
        }
        // Without a session or pre-session too: the site rule needs none.
        let anonymous = open(&config, "").await;
        assert_eq!(anonymous.check_csrf(&upgrade(Some("same-origin"), None)).unwrap(), CsrfCheck::Passed);
        assert!(anonymous.check_csrf(&upgrade(Some("cross-site"), None)).is_err());
    })
}

#[test]
fn unsafe_requests_need_the_sessions_token_from_a_header_or_a_form() {
    pollster::block_on(async {
        let config = config();
        let handle = open(&config, &signed_in(&config, "alice").await).await;
        let token = handle.csrf_token().unwrap();
        assert!(handle.csrf_applies("POST", "/cart", false));
        assert!(!handle.csrf_applies("GET", "/cart", false));

        assert_eq!(handle.check_csrf(&post(Some(&token))).unwrap(), CsrfCheck::Passed);
        let wrong = handle.check_csrf(&post(Some("nope"))).unwrap_err();
        assert!(matches!(wrong, CsrfRefusal::Csrf(CsrfError::Invalid)), "{wrong:?}");
        assert_eq!(wrong.status(), 403);
        let missing = handle.check_csrf(&post(None)).unwrap_err();
        assert!(matches!(missing, CsrfRefusal::Csrf(CsrfError::Missing)), "{missing:?}");

        let form = CsrfRequest { form: true, ..post(None) };
        assert_eq!(handle.check_csrf(&form).unwrap(), CsrfCheck::ReadForm);
        handle.check_csrf_form(format!("item=tea&csrf_token={token}").as_bytes()).unwrap();
        let err = handle.check_csrf_form(b"item=tea&csrf_token=nope").unwrap_err();
        assert!(matches!(err, CsrfRefusal::Csrf(CsrfError::Invalid)), "{err:?}");
        let err = handle.check_csrf_form(b"item=tea").unwrap_err();
        assert!(matches!(err, CsrfRefusal::Csrf(CsrfError::Missing)), "{err:?}");
    })
}

#[test]
fn a_cross_site_request_is_refused_before_its_token_is_looked_at() {
    pollster::block_on(async {
        let config = config();
        let handle = open(&config, &signed_in(&config, "alice").await).await;
        let token = handle.csrf_token().unwrap();
        let cross_site = CsrfRequest { sec_fetch_site: Some("cross-site"), ..post(Some(&token)) };
        let err = handle.check_csrf(&cross_site).unwrap_err();
        assert!(matches!(err, CsrfRefusal::Csrf(CsrfError::CrossSite(_))), "{err:?}");
        let wrong_origin = CsrfRequest { origin: Some("https://evil.example"), ..post(Some(&token)) };
        let err = handle.check_csrf(&wrong_origin).unwrap_err();
        assert!(matches!(err, CsrfRefusal::Csrf(CsrfError::WrongOrigin)), "{err:?}");
        let own = CsrfRequest { origin: Some("https://app.example"), ..post(Some(&token)) };
        assert_eq!(handle.check_csrf(&own).unwrap(), CsrfCheck::Passed);
        // Plain http is expected only on loopback.
        let local = CsrfRequest {
            origin: Some("http://127.0.0.1:3000"),
            host: Some("127.0.0.1:3000"),
            ..post(Some(&token))
        };
        assert_eq!(handle.check_csrf(&local).unwrap(), CsrfCheck::Passed);
        let plain = CsrfRequest { origin: Some("http://app.example"), ..post(Some(&token)) };
        assert!(handle.check_csrf(&plain).is_err());
    })
}

#[test]
fn without_a_session_or_pre_session_there_is_nothing_to_bind_a_token_to() {
    pollster::block_on(async {
        let config = config();
        let handle = config.open_request::<String, _, _>(std::iter::empty::<&[u8]>(), None).await.unwrap();
        let err = handle.check_csrf(&CsrfRequest { form: true, ..post(None) }).unwrap_err();
        assert!(matches!(err, CsrfRefusal::NoBinding), "{err:?}");
    })
}

#[test]
fn exempt_paths_and_disabled_enforcement_skip_the_checks() {
    pollster::block_on(async {
        let config = config_with(Keyring::generate().unwrap(), |b| b.csrf_exempt("/webhook"));
        let handle = open(&config, "").await;
        assert!(handle.csrf_applies("POST", "/cart", false));
        assert!(!handle.csrf_applies("POST", "/webhook", false));
        assert!(handle.csrf_applies("POST", "/webhook/", false), "exempt paths match exactly");
        let config = config_with(Keyring::generate().unwrap(), |b| b.without_csrf());
        assert!(!open(&config, "").await.csrf_applies("POST", "/cart", false));
    })
}

#[test]
fn a_bearer_token_replaces_cookies_and_renewals_go_out_in_a_header() {
    pollster::block_on(async {
        let config = config_with(Keyring::generate().unwrap(), |b| b.bearer_tokens());
        let cookie = signed_in(&config, "alice").await;
        let bob = config.verifier().login("bob", "BOB".to_owned()).await.unwrap();
        let (token, _) = config.verifier().issue(&bob).unwrap();
        let authorization = format!("Bearer {token}");
        let handle = config
            .open_request::<String, _, _>([cookie.as_bytes()], Some(authorization.as_bytes()))
            .await
            .unwrap();
        assert_eq!(handle.current().unwrap().session().user_id(), Some("bob"), "the cookie is ignored");
        assert!(!handle.csrf_applies("POST", "/cart", false), "nothing ambient: no CSRF token needed");
        handle.update(|data| data.push('!')).unwrap();
        let response = handle.finish();
        assert!(response.set_cookies.is_empty(), "never a cookie");
        let renewed = response.session_token.clone().expect("the new token");
        assert!(response.no_store());
        assert!(!format!("{response:?}").contains(&renewed), "Debug shows no token");
        let reopened = config.verifier().open::<String>(&renewed).await.unwrap();
        assert_eq!(reopened.session().data(), "BOB!");

        // Without bearer tokens turned on, the header is not read.
        let plain = config_with(Keyring::generate().unwrap(), |b| b);
        let handle =
            plain.open_request::<String, _, _>([cookie.as_bytes()], Some(authorization.as_bytes())).await;
        assert!(handle.unwrap().current().is_none(), "another keyring's cookie, and no bearer token");
    })
}

#[test]
fn bearer_tokens_are_read_only_from_the_bearer_scheme() {
    assert_eq!(bearer_token(b"Bearer abc"), Some(Some("abc")));
    assert_eq!(bearer_token(b"bearer   abc "), Some(Some("abc")));
    assert_eq!(bearer_token(b"Bearer"), Some(None));
    assert_eq!(bearer_token(b"Bearer  "), Some(None));
    assert_eq!(bearer_token(b"Bearerabc"), None);
    assert_eq!(bearer_token(b"Basic abc"), None);
    assert_eq!(bearer_token(b"Bear"), None);
    assert_eq!(bearer_token(b"Bearer \xff"), Some(None), "not text: no token");
}

#[test]
fn login_from_a_pre_session_form_replaces_the_pre_session() {
    pollster::block_on(async {
        let config = config();
        let handle = open(&config, "").await;
        let token = handle.csrf_token().unwrap();
        let response = handle.finish();
        assert_eq!(response.set_cookies.len(), 1);
        assert!(response.set_cookies[0].starts_with("__Host-session-csrf="));
        let pre = pair(&response.set_cookies[0]).to_owned();

        let handle = open(&config, &pre).await;
        assert_eq!(handle.csrf_token().unwrap(), token, "the same pre-session, the same token");
        assert_eq!(handle.check_csrf(&post(Some(&token))).unwrap(), CsrfCheck::Passed);
        handle.login("alice", "ALICE".to_owned()).await.unwrap();
        let response = handle.finish();
        assert_eq!(response.set_cookies.len(), 2);
        assert!(response.set_cookies[0].starts_with("__Host-session="));
        assert!(
            response.set_cookies[1].starts_with("__Host-session-csrf=;"),
            "{:?}",
            response.set_cookies[1]
        );
    })
}

#[test]
fn flash_messages_survive_one_request_and_are_then_removed() {
    pollster::block_on(async {
        let config = config();
        let handle = open(&config, "").await;
        handle.flash(Level::Success, "Signed out").unwrap();
        let response = handle.finish();
        assert_eq!(response.set_cookies.len(), 1);
        assert!(response.set_cookies[0].starts_with("__Host-session-flash="));

        let handle = open(&config, pair(&response.set_cookies[0])).await;
        let flashes = handle.flashes().take();
        assert_eq!(flashes.len(), 1);
        assert_eq!((flashes[0].level, flashes[0].message.as_str()), (Level::Success, "Signed out"));
        assert!(handle.take_flashes().is_empty(), "read once");
        let response = handle.finish();
        assert_eq!(response.set_cookies.len(), 1);
        assert!(response.set_cookies[0].starts_with("__Host-session-flash=;"));
    })
}

/// A store that cannot be reached: the fault a real store reports when its
/// server is down, made on demand.
struct Unreachable;

#[derive(Debug, thiserror::Error)]
#[error("connection refused")]
struct Refused;

impl RevocationStore for Unreachable {
    async fn state(&self, _: Option<&str>, _: SessionId) -> Result<RevocationState, StoreError> {
        Err(StoreError::unavailable(Refused))
    }
    async fn login_state(&self, _: &str) -> Result<LoginState, StoreError> {
        Err(StoreError::unavailable(Refused))
    }
    async fn revoke_user(&self, _: &str) -> Result<u64, StoreError> {
        Err(StoreError::unavailable(Refused))
    }
    async fn revoke_session(&self, _: SessionId, _: u64) -> Result<(), StoreError> {
        Err(StoreError::unavailable(Refused))
    }
    async fn revoke_all(&self, _: u64) -> Result<u64, StoreError> {
        Err(StoreError::unavailable(Refused))
    }
}

#[test]
fn a_store_that_cannot_answer_refuses_the_request() {
    pollster::block_on(async {
        let sealer = Sealer::builder(Keyring::generate().unwrap()).build().unwrap();
        let token = sealer.seal(&sealed_session::Session::new("x".to_owned()).with_user("alice", 0)).unwrap();
        let config = Arc::new(WebConfig::builder(Verifier::new(sealer, Unreachable)).build().unwrap());
        let cookie = format!("__Host-session={token}");
        let result = config.open_request::<String, _, _>([cookie.as_bytes()], None).await;
        assert!(result.is_err(), "no session would be a lie: the store was not asked");
        // Without a cookie there is nothing to check.
        assert!(config.open_request::<String, _, _>(std::iter::empty::<&[u8]>(), None).await.is_ok());
    })
}

#[test]
fn the_builder_refuses_names_that_could_confuse_tokens() {
    let verifier =
        || Verifier::new(Sealer::builder(Keyring::generate().unwrap()).build().unwrap(), MemoryStore::new());
    let admin = sealed_session::CookieSpec::named("__Host-admin").unwrap();
    assert!(matches!(
        WebConfig::builder(verifier()).cookie(admin).build(),
        Err(WebConfigError::PurposeMismatch { .. })
    ));
    assert!(matches!(
        WebConfig::builder(verifier()).csrf_header("x csrf").build(),
        Err(WebConfigError::CsrfHeader(_))
    ));
    assert!(matches!(
        WebConfig::builder(verifier()).trust_origin("null").build(),
        Err(WebConfigError::Origin(_))
    ));
    let config = WebConfig::builder(verifier()).csrf_header("X-Token").build().unwrap();
    assert_eq!(config.csrf_header(), "x-token", "header names are compared in lower case");
}

#[test]
fn a_csrf_request_shows_no_token_in_debug() {
    let request = post(Some("secret-token-value"));
    let shown = format!("{request:?}");
    assert!(!shown.contains("secret-token-value"), "{shown}");
    assert!(shown.contains("/cart"));
}

#[test]
fn a_response_with_a_token_is_never_left_cacheable() {
    pollster::block_on(async {
        // A cookie (here a new pre-session): no-store, unless the route
        // already keeps shared caches away from the response.
        let config = config();
        let handle = open(&config, "").await;
        handle.csrf_token().unwrap();
        let response = handle.finish();
        let cache_control = |values: &[&str]| response.cache_control(values.iter().map(|v| v.as_bytes()));
        assert_eq!(cache_control(&[]), Some("no-store"));
        for kept in
            ["private, max-age=0", "no-store", "max-age=60, NO-STORE", " Private ", "no-cache, private"]
        {
            assert_eq!(cache_control(&[kept]), None, "{kept}");
        }
        // A cacheable route (a stylesheet, a public page) that happens to
        // carry a re-issued or new cookie must not be stored by a CDN.
        for replaced in [
            "public, max-age=600",
            "max-age=600",
            "s-maxage=600",
            "no-cache",
            "private=\"set-cookie\"",
            "public, private",
            "no-cache=\"a, no-store\"",
            "",
        ] {
            assert_eq!(cache_control(&[replaced]), Some("no-store"), "{replaced}");
        }
        // Every value counts, not only the first.
        assert_eq!(cache_control(&["max-age=600", "no-store"]), None);
        assert_eq!(cache_control(&["private", "public"]), Some("no-store"));
        // Nothing set: nothing to add.
        assert_eq!(open(&config, "").await.finish().cache_control([&b"public, max-age=600"[..]]), None);

        // A bearer token in a header: no-store over whatever the app set,
        // since a shared cache may keep a `public` answer to a request with
        // `Authorization`.
        let config = config_with(Keyring::generate().unwrap(), |b| b.bearer_tokens());
        let handle =
            config.open_request::<String, _, _>(std::iter::empty::<&[u8]>(), Some(b"Bearer")).await.unwrap();
        handle.login("alice", String::new()).await.unwrap();
        let response = handle.finish();
        assert!(response.session_token.is_some());
        assert_eq!(response.cache_control([&b"public, max-age=60"[..]]), Some("no-store"));
        assert_eq!(response.cache_control([&b"private"[..]]), Some("no-store"));
        assert_eq!(response.cache_control([]), Some("no-store"));
        assert_eq!(response.cache_control([&b"no-store, private"[..]]), None);
    });
}

#[test]
fn the_defaults_are_the_documented_ones() {
    use sealed_session::web::{DEFAULT_FORM_LIMIT, FLASH_TIMEOUT, PRE_SESSION_TIMEOUT};
    assert_eq!(DEFAULT_FORM_LIMIT, 65_536);
    assert_eq!(PRE_SESSION_TIMEOUT.as_secs(), 7_200);
    assert_eq!(FLASH_TIMEOUT.as_secs(), 600);
    pollster::block_on(async {
        assert_eq!(open(&config(), "").await.form_limit(), 65_536);
        let small = config_with(Keyring::generate().unwrap(), |b| b.form_limit(100));
        assert_eq!(open(&small, "").await.form_limit(), 100);
    });
}

#[test]
fn a_cookie_of_another_name_is_read_written_and_removed_under_that_name() {
    pollster::block_on(async {
        let sealer = Sealer::builder(Keyring::generate().unwrap()).purpose("__Host-app").build().unwrap();
        let verifier = Verifier::new(sealer, MemoryStore::new());
        let spec = sealed_session::CookieSpec::named("__Host-app").unwrap();
        let config = Arc::new(WebConfig::builder(verifier).cookie(spec).build().unwrap());
        assert_eq!(config.cookie().name(), "__Host-app");
        let cookie = signed_in(&config, "alice").await;
        assert!(cookie.starts_with("__Host-app="), "{cookie}");
        assert_eq!(open(&config, &cookie).await.current().unwrap().session().user_id(), Some("alice"));
        let handle = open(&config, &format!("{cookie}x")).await;
        let response = handle.finish();
        assert!(response.set_cookies[0].starts_with("__Host-app=;"), "{:?}", response.set_cookies);
    });
}

#[test]
fn a_configured_origin_is_the_one_expected_whatever_the_host() {
    pollster::block_on(async {
        let config = config_with(Keyring::generate().unwrap(), |b| b.origin("https://app.example/"));
        let handle = open(&config, &signed_in(&config, "alice").await).await;
        let token = handle.csrf_token().unwrap();
        let behind_proxy = CsrfRequest {
            origin: Some("https://app.example"),
            host: Some("10.0.0.7:8080"),
            ..post(Some(&token))
        };
        assert_eq!(handle.check_csrf(&behind_proxy).unwrap(), CsrfCheck::Passed);
        let from_host = CsrfRequest {
            origin: Some("https://10.0.0.7:8080"),
            host: Some("10.0.0.7:8080"),
            ..post(Some(&token))
        };
        assert!(handle.check_csrf(&from_host).is_err());
    });
}

#[test]
fn levels_read_as_lower_case_words() {
    let words: Vec<&str> =
        [Level::Info, Level::Success, Level::Warning, Level::Error].map(Level::as_str).to_vec();
    assert_eq!(words, ["info", "success", "warning", "error"]);
}

#[test]
fn remember_me_needs_the_sealers_timeouts_and_gives_a_persistent_cookie() {
    use sealed_session::web::LoginOptions;
    use std::time::Duration;
    pollster::block_on(async {
        let remember = LoginOptions::default().remember(true);
        // A browser-session cookie, but for a remembered session.
        let spec = || sealed_session::CookieSpec::default().browser_session();
        let config = config_with(Keyring::generate().unwrap(), |b| b.cookie(spec()));
        let handle = open(&config, "").await;
        let err = handle.login_with_options("alice", remember, |_| String::new()).await.unwrap_err();
        assert!(matches!(err, HandleError::Seal(sealed_session::SealError::NoRememberMe)), "{err:?}");
        assert!(handle.finish().set_cookies.is_empty(), "nothing changed");

        let sealer = Sealer::builder(Keyring::generate().unwrap())
            .remember_me(Duration::from_secs(30 * 86_400), Duration::from_secs(7 * 86_400))
            .build()
            .unwrap();
        let config = Arc::new(
            WebConfig::builder(Verifier::new(sealer, MemoryStore::new())).cookie(spec()).build().unwrap(),
        );
        let handle = open(&config, "").await;
        handle.login_with_options("alice", remember, |_| String::new()).await.unwrap();
        let cookie = handle.finish().set_cookies.remove(0);
        assert!(cookie.contains("Max-Age=2592000"), "{cookie}");
        let handle = open(&config, "").await;
        handle.login_with_options("alice", LoginOptions::default(), |_| String::new()).await.unwrap();
        let cookie = handle.finish().set_cookies.remove(0);
        assert!(!cookie.contains("Max-Age"), "{cookie}");
    });
}

#[test]
fn an_anonymous_session_starts_on_the_first_change_and_login_replaces_it() {
    pollster::block_on(async {
        let config = config();
        let handle = open(&config, "").await;
        handle.update_or_insert(String::new, |cart| cart.push_str("tea")).await.unwrap();
        let anonymous = handle.current().unwrap();
        assert_eq!((anonymous.session().user_id(), anonymous.session().data().as_str()), (None, "tea"));
        let cookie = pair(&handle.finish().set_cookies[0]).to_owned();

        let handle = open(&config, &cookie).await;
        let signed_in = handle.login_with("alice", |before| before.unwrap().into_data()).await.unwrap();
        assert_eq!(signed_in.session().data(), "tea", "carried over");
        assert_ne!(signed_in.session().id(), anonymous.session().id(), "a new session ID");
        assert!(open(&config, &cookie).await.current().is_none(), "the anonymous session is logged out");
    });
}

#[test]
fn logout_renewal_and_logout_everywhere_reach_the_store_and_the_cookie() {
    pollster::block_on(async {
        let config = config();
        let cookie = signed_in(&config, "alice").await;
        let other = signed_in(&config, "alice").await;

        // A new ID: the old cookie dies, the new one works.
        let handle = open(&config, &cookie).await;
        let old_id = handle.current().unwrap().session().id();
        handle.renew_id().await.unwrap();
        assert_ne!(handle.current().unwrap().session().id(), old_id);
        let renewed = pair(&handle.finish().set_cookies[0]).to_owned();
        assert!(open(&config, &cookie).await.current().is_none(), "the old ID is revoked");
        assert!(open(&config, &renewed).await.current().is_some());

        // Logout: revoked, and the cookie removed.
        let handle = open(&config, &renewed).await;
        handle.logout().await.unwrap();
        assert!(handle.current().is_none());
        assert!(handle.finish().set_cookies[0].starts_with("__Host-session=;"));
        assert!(open(&config, &renewed).await.current().is_none());

        // Everywhere: the user's other session dies too.
        let third = signed_in(&config, "alice").await;
        let handle = open(&config, &third).await;
        assert_eq!(handle.logout_everywhere().await.unwrap(), 1, "the user's new epoch");
        assert!(handle.finish().set_cookies[0].starts_with("__Host-session=;"));
        assert!(open(&config, &other).await.current().is_none());
        assert!(open(&config, &third).await.current().is_none());
        assert!(matches!(open(&config, "").await.logout_everywhere().await, Err(HandleError::NoSession)));
    });
}

#[test]
fn a_url_encoded_form_is_recognised_by_its_content_type_alone() {
    use sealed_session::web::is_form;
    assert!(is_form(Some("application/x-www-form-urlencoded")));
    assert!(is_form(Some("Application/X-WWW-Form-Urlencoded ; charset=utf-8")));
    assert!(!is_form(Some("multipart/form-data; boundary=x")));
    assert!(!is_form(Some("text/plain")));
    assert!(!is_form(None));
}

#[test]
fn refusals_answer_with_their_status_and_a_body_that_says_no_more() {
    let cases = [
        (CsrfRefusal::TooLarge, 413, "form too large"),
        (CsrfRefusal::Unreadable, 400, "unreadable request body"),
        (CsrfRefusal::NoBinding, 403, "CSRF check failed"),
        (CsrfRefusal::Csrf(CsrfError::Invalid), 403, "CSRF check failed"),
    ];
    for (refusal, status, body) in cases {
        assert_eq!((refusal.status(), refusal.body()), (status, body), "{refusal:?}");
    }
}

#[test]
fn flash_messages_are_read_through_the_handle_too() {
    pollster::block_on(async {
        let config = config();
        let handle = open(&config, "").await;
        handle.flash(Level::Info, "hello").unwrap();
        let cookie = pair(&handle.finish().set_cookies[0]).to_owned();
        let handle = open(&config, &cookie).await;
        let flashes = handle.take_flashes();
        assert_eq!(flashes.len(), 1);
        assert_eq!(flashes[0].message, "hello");
        assert!(handle.flashes().take().is_empty(), "read once, through either");
    });
}

#[test]
fn a_test_session_is_a_signed_in_browser_on_the_apps_own_page() {
    use sealed_session::web::testing::TestSession;
    pollster::block_on(async {
        let config = config_with(Keyring::generate().unwrap(), |b| b.csrf_header("X-Token"));
        let alice = TestSession::sign_in(&config, "alice", "ALICE".to_owned()).await.unwrap();
        assert!(!format!("{alice:?}").contains(alice.csrf_token()));
        let [cookie, token, site] = alice.headers();
        assert_eq!(cookie, ("cookie", alice.cookie()));
        assert_eq!(token, ("x-token", alice.csrf_token()));
        assert_eq!(site, ("sec-fetch-site", "same-origin"));
        let handle = open(&config, alice.cookie()).await;
        assert_eq!(handle.current().unwrap().session().user_id(), Some("alice"));
        let request = CsrfRequest { sec_fetch_site: Some(site.1), ..post(Some(token.1)) };
        assert_eq!(handle.check_csrf(&request).unwrap(), CsrfCheck::Passed);
    });
}
