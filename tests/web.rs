//! The web driver every integration runs (`sealed_session::web`), driven as
//! an integration drives it: a request's view in, a handle or a refusal
//! out, cookies on the response.
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

#[path = "support/logs.rs"]
mod logs;
#[path = "support/recorder.rs"]
mod recorder;
#[path = "support/unheard.rs"]
mod unheard;

use recorder::Recorder;

use std::sync::Arc;

use sealed_session::csrf::CsrfError;
use sealed_session::web::testing::{TestRequest, TestResponse, UnreachableStore};
use sealed_session::web::{
    bearer_token, AuditEvent, AuditKind, Begin, CsrfRefusal, HandleError, Level, LimitPolicy, LoginOptions,
    Refusal, SessionHandle, SessionRef, WebConfig, WebConfigBuilder, WebConfigError,
};
use sealed_session::{Keyring, ManualClock, MemoryStore, RevocationStore, Sealer, SessionId, StoreError};

type Config = Arc<WebConfig<MemoryStore>>;

fn config_with(
    keyring: Keyring,
    change: impl FnOnce(WebConfigBuilder<MemoryStore>) -> WebConfigBuilder<MemoryStore>,
) -> Config {
    Arc::new(change(WebConfig::builder(Sealer::builder(keyring), MemoryStore::new())).build().unwrap())
}

fn config() -> Config {
    config_with(Keyring::generate().unwrap(), |b| b)
}

/// `name=value` of a `Set-Cookie` value.
fn pair(set_cookie: &str) -> &str {
    set_cookie.split(';').next().unwrap()
}

async fn signed_in<S: RevocationStore>(config: &WebConfig<S>, user: &str) -> String {
    let session = config.verifier().login(user, user.to_uppercase()).await.unwrap();
    let (_, set_cookie) = config.verifier().issue_cookie(session, config.cookie()).unwrap();
    pair(&set_cookie).to_owned()
}

/// `request` with the `Cookie` header `cookie`, unless it is empty.
fn with_cookie(request: TestRequest, cookie: &str) -> TestRequest {
    if cookie.is_empty() {
        request
    } else {
        request.header("cookie", cookie)
    }
}

/// The handle of a request the driver lets through.
async fn ready<S: RevocationStore + 'static>(
    config: &Arc<WebConfig<S>>,
    request: &TestRequest,
) -> SessionHandle {
    match config.begin(request).await {
        Begin::Ready(handle) => handle,
        other => panic!("{request:?} was not let through: {other:?}"),
    }
}

/// The refusal of a request the driver stops.
async fn refused<S: RevocationStore + 'static>(config: &Arc<WebConfig<S>>, request: &TestRequest) -> Refusal {
    match config.begin(request).await {
        Begin::Refuse(refusal) => refusal,
        other => panic!("{request:?} was not refused: {other:?}"),
    }
}

/// Alice's session cookie and its CSRF token.
async fn alice_with_token(config: &Config) -> (String, String) {
    let cookie = signed_in(config, "alice").await;
    let token = open(config, &cookie).await.csrf_token().unwrap();
    (cookie, token)
}

/// A `GET /` with `cookie`.
async fn open(config: &Config, cookie: &str) -> SessionHandle {
    ready(config, &with_cookie(TestRequest::new("GET", "/"), cookie)).await
}

/// The user and data of the handle's session, as a `String` session.
fn who(handle: &SessionHandle) -> Option<(Option<String>, String)> {
    handle.current::<String>().map(|c| (c.user_id().map(str::to_owned), c.data().clone()))
}

/// A `POST /cart` from the app's own page (`Sec-Fetch-Site: same-origin`)
/// with `cookie` and, if given, the CSRF header.
fn post(cookie: &str, token: Option<&str>) -> TestRequest {
    let request =
        with_cookie(TestRequest::new("POST", "/cart"), cookie).header("sec-fetch-site", "same-origin");
    match token {
        Some(token) => request.header("x-csrf-token", token),
        None => request,
    }
}

/// The cookies a handle's response carries.
fn set_cookies(handle: &SessionHandle) -> Vec<String> {
    handle.finish().set_cookies
}

/// `finish` answers once: a second call (an adapter that finished a
/// request dropped before its answer, then its own call) sets nothing more,
/// and the handle refuses changes after the first.
#[test]
fn a_handle_is_finished_once() {
    pollster::block_on(async {
        let config = config();
        let handle = ready(&config, &TestRequest::new("GET", "/")).await;
        handle.typed::<String>().login("alice", "A".into()).await.unwrap();
        let first = handle.finish();
        assert_eq!(first.set_cookies.len(), 1, "{:?}", first.set_cookies);
        let again = handle.finish();
        assert!(again.set_cookies.is_empty() && again.session_token.is_none(), "{:?}", again.set_cookies);
        let late = handle.typed::<String>().update(|data| data.push('!'));
        assert!(matches!(late, Err(HandleError::Finished)), "{late:?}");

        // A session due for renewal is re-issued by the first call alone.
        let (config, _, clock) = listed(|b| b);
        let cookie = sign_in_from(&config, "alice", CHROME).await;
        clock.advance(std::time::Duration::from_secs(301));
        let handle = on(&config, &cookie).await;
        assert_eq!(handle.finish().set_cookies.len(), 1, "renewed");
        assert!(handle.finish().set_cookies.is_empty(), "renewed twice");
    })
}

#[test]
fn a_valid_cookie_opens_and_an_unchanged_session_sets_no_cookie() {
    pollster::block_on(async {
        let config = config();
        let cookie = signed_in(&config, "alice").await;
        // A neighbour cookie with UTF-8 in it changes nothing.
        let request = TestRequest::new("GET", "/").header("cookie", "tracker=café").header("cookie", &cookie);
        let handle = ready(&config, &request).await;
        assert_eq!(who(&handle), Some((Some("alice".into()), "ALICE".into())));
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
        assert!(!handle.has_session());
        let response = handle.finish();
        assert_eq!(response.set_cookies.len(), 1);
        assert!(response.set_cookies[0].starts_with("__Host-session=;"), "{:?}", response.set_cookies);
        assert!(response.set_cookies[0].contains("Max-Age=0"));
        assert!(response.no_store());
    })
}

/// The driver opens the token's bytes; each handler decodes them as its own
/// type. A session whose data is not that type is no session to it, and
/// its cookie goes.
#[test]
fn a_session_of_another_data_type_is_no_session_and_is_removed() {
    pollster::block_on(async {
        let config = config();
        let cookie = signed_in(&config, "alice").await;
        let handle = open(&config, &cookie).await;
        assert!(handle.has_session(), "opened and checked, whatever its type");
        assert!(handle.current::<(u64, u64, u64)>().is_none(), "not a (u64, u64, u64)");
        assert!(handle.current::<String>().is_none(), "gone for this request");
        assert!(set_cookies(&handle)[0].starts_with("__Host-session=;"));
        // The same session, read as what it holds, twice (decoded once).
        let handle = open(&config, &cookie).await;
        assert_eq!(handle.current::<String>().unwrap().data(), "ALICE");
        assert_eq!(handle.typed::<String>().current().unwrap().data(), "ALICE");
        assert!(set_cookies(&handle).is_empty());
    })
}

/// A session that is no session to a handler because its data is another
/// type is still ended by that handler's logout or login, or by a new
/// session from `update_or_insert` after another handler's look: its cookie
/// is gone from the browser, but a copy would open wherever its own type,
/// or only its user, is asked for.
#[test]
fn a_session_of_another_type_is_still_ended_by_logout_and_login() {
    pollster::block_on(async {
        let config = config();
        let ends = |name: &'static str, end: fn(&SessionHandle) -> sealed_session::BoxFuture<'_, ()>| {
            let config = Arc::clone(&config);
            async move {
                let cookie = signed_in(&config, "alice").await;
                let handle = open(&config, &cookie).await;
                assert!(handle.current::<(u64, u64, u64)>().is_none(), "{name}: not a (u64, u64, u64)");
                end(&handle).await;
                assert!(!open(&config, &cookie).await.has_session(), "{name}: the session still opens");
            }
        };
        ends("logout", |h| Box::pin(async { h.logout().await.unwrap() })).await;
        ends("login", |h| {
            Box::pin(async { _ = h.typed::<(u64, u64, u64)>().login("alice", (1, 2, 3)).await.unwrap() })
        })
        .await;
        ends("a new session", |h| {
            Box::pin(async {
                h.typed::<(u64, u64, u64)>().update_or_insert(|| (0, 0, 0), |t| t.0 += 1).await.unwrap()
            })
        })
        .await;
    })
}

/// `update_or_insert` over a session whose data is another type replaces
/// it with a new session, and ends it first: a copy of the old cookie no
/// longer opens, and the registry no longer holds it.
#[test]
fn a_session_of_another_type_replaced_by_update_or_insert_is_ended() {
    pollster::block_on(async {
        let (config, recorder, _) = listed(|b| b);
        let cookie = sign_in_from(&config, "alice", CHROME).await;
        let handle = on(&config, &cookie).await;
        let old = handle.current::<String>().unwrap().session().id();
        recorder.take();
        let counter = handle.typed::<(u64, u64, u64)>();
        let count = counter.update_or_insert(|| (0, 0, 0), |t| std::mem::replace(&mut t.0, 1)).await;
        assert_eq!(count.unwrap(), 0, "a new session, from the default");
        let replaced = set_cookies(&handle);
        assert!(replaced
            .iter()
            .any(|c| c.starts_with("__Host-session=") && !c.starts_with("__Host-session=;")));
        // Ended on every server, and audited as a logout of alice's session.
        let ended = only(&recorder);
        assert_eq!(
            (ended.0, ended.1.as_deref(), ended.2),
            (AuditKind::Logout, Some("alice"), Some(SessionRef::of(old)))
        );
        assert!(!on(&config, &cookie).await.has_session(), "the replaced session still opens");
        assert_eq!(recorded(&config, "alice").await, 0, "the replaced session is still recorded");
    })
}

/// A layer for another cookie inside the users' one (administrators'
/// sessions): both check an unsafe request's CSRF token, each in its own
/// header. A page inside gets both tokens, the outer one's through
/// `SessionHandle::outer`, and a request with both passes both layers.
#[test]
fn a_layer_inside_another_cookies_layer_gets_both_tokens_through_outer() {
    use sealed_session::web::Nesting;
    pollster::block_on(async {
        let users = config();
        let admin = config_with(Keyring::generate().unwrap(), |b| {
            b.cookie(sealed_session::CookieSpec::named("__Host-admin").unwrap())
                .csrf_header("x-admin-csrf")
                .csrf_field("admin_csrf")
        });
        // Both layers' drivers, the inner one's handle inside the outer's.
        let both = |request: TestRequest| {
            let (users, admin) = (Arc::clone(&users), Arc::clone(&admin));
            async move {
                let outer = match users.begin(&request).await {
                    Begin::Ready(outer) => outer,
                    Begin::Refuse(refusal) => return Err(refusal),
                    other => panic!("{other:?}"),
                };
                assert!(matches!(admin.nested_in(&outer, &request), Ok(Nesting::Separate)));
                match admin.begin(&request).await {
                    Begin::Ready(inner) => Ok(inner.inside(outer)),
                    Begin::Refuse(refusal) => Err(refusal),
                    other => panic!("{other:?}"),
                }
            }
        };
        let page = both(TestRequest::new("GET", "/admin")).await.unwrap();
        assert!(page.outer().is_some());
        let (outer_token, inner_token) =
            (page.outer().unwrap().csrf_token().unwrap(), page.csrf_token().unwrap());
        let mut cookies = set_cookies(&page);
        cookies.extend(set_cookies(page.outer().unwrap()));
        let cookie = cookies.iter().map(|c| pair(c)).collect::<Vec<_>>().join("; ");
        let post = || {
            with_cookie(TestRequest::new("POST", "/admin"), &cookie).header("sec-fetch-site", "same-origin")
        };
        both(post().header("x-csrf-token", &outer_token).header("x-admin-csrf", &inner_token)).await.unwrap();
        let err = both(post().header("x-csrf-token", &outer_token)).await.unwrap_err();
        assert!(matches!(err, Refusal::Csrf(CsrfRefusal::Csrf(CsrfError::Missing))), "{err:?}");
        let err = both(post().header("x-admin-csrf", &inner_token)).await.unwrap_err();
        assert!(matches!(err, Refusal::Csrf(CsrfRefusal::Csrf(CsrfError::Missing))), "{err:?}");
        assert!(ready(&users, &TestRequest::new("GET", "/")).await.outer().is_none(), "no layer outside");
    })
}

/// Once the response's headers are made (`finish`), the handle changes
/// nothing: a change then (in a streamed body, an upgraded connection, a
/// spawned task) could not reach the browser, and a login or logout would
/// end the session in the store while the browser kept its cookie.
#[test]
fn after_finish_the_handle_changes_nothing() {
    pollster::block_on(async {
        let config = config();
        let cookie = signed_in(&config, "alice").await;
        let flashing = open(&config, &cookie).await;
        flashing.flash(Level::Info, "waiting").unwrap();
        let flash = pair(&set_cookies(&flashing)[0]).to_owned();
        let handle = open(&config, &format!("{cookie}; {flash}")).await;
        let _ = handle.finish();
        let typed = handle.typed::<String>();
        let finished = |result: Result<(), HandleError>| matches!(result, Err(HandleError::Finished));
        assert!(finished(typed.update(|data| data.push('!'))));
        assert!(finished(typed.update_or_insert(String::new, |data| data.push('!')).await));
        assert!(finished(typed.login("bob", "BOB".to_owned()).await.map(drop)));
        assert!(finished(typed.reauthenticate().await.map(drop)));
        assert!(finished(handle.renew_id().await));
        assert!(finished(handle.logout().await));
        assert!(finished(handle.logout_everywhere().await.map(drop)));
        assert!(finished(handle.logout_others().await.map(drop)));
        assert!(finished(handle.flash(Level::Info, "late")));
        assert!(finished(handle.csrf_token().map(drop)));
        assert!(handle.take_flashes().is_empty(), "none taken that would show again");
        assert_eq!((HandleError::Finished.status(), HandleError::Finished.body()), (500, "internal error"));
        // Nothing changed in the store either.
        let again = open(&config, &cookie).await;
        assert_eq!(who(&again), Some((Some("alice".to_owned()), "ALICE".to_owned())));
    })
}

/// What a layer makes of a handle an outer layer put in the request: its
/// own configuration's (pass it on), its own past another cookie's layer
/// (resume it), another cookie's (a session of its own), and another
/// configuration's for the same cookie, directly or past another cookie's
/// layer (refused: the cookie would be opened and set twice).
#[test]
fn nesting_is_told_apart_by_configuration_and_cookie() {
    use sealed_session::web::Nesting;
    pollster::block_on(async {
        let admin = sealed_session::CookieSpec::named("__Host-admin").unwrap();
        let (ours, same_cookie) = (config(), config());
        let other_cookie = config_with(Keyring::generate().unwrap(), |b| b.cookie(admin));
        let outer = open(&ours, "").await;
        assert!(matches!(ours.nested_in(&outer, &TestRequest::new("GET", "/")), Ok(Nesting::PassThrough)));
        assert!(matches!(
            other_cookie.nested_in(&outer, &TestRequest::new("GET", "/")),
            Ok(Nesting::Separate)
        ));
        assert!(matches!(same_cookie.nested_in(&outer, &TestRequest::new("GET", "/")), Err(Refusal::Nested)));
        let between = open(&other_cookie, "").await.inside(outer.clone());
        assert!(matches!(ours.nested_in(&between, &TestRequest::new("GET", "/")), Ok(Nesting::Resume(_))));
        assert!(matches!(
            same_cookie.nested_in(&between, &TestRequest::new("GET", "/")),
            Err(Refusal::Nested)
        ));
        assert!(matches!(
            other_cookie.nested_in(&between, &TestRequest::new("GET", "/")),
            Ok(Nesting::PassThrough)
        ));
    })
}

/// A cookie without a `__Host-` prefix can be planted beside ours (by a
/// sibling subdomain, for a parent domain or another path), and the browser
/// may send it first: the driver tries the values in order and the first
/// that opens is the session, which is neither shadowed nor removed.
#[test]
fn a_planted_value_before_ours_neither_shadows_nor_removes_the_session() {
    pollster::block_on(async {
        let spec = sealed_session::CookieSpec::named("sid").unwrap();
        let config = config_with(Keyring::generate().unwrap(), |b| b.cookie(spec));
        let ours = signed_in(&config, "alice").await;
        let value = ours.strip_prefix("sid=").unwrap();
        for planted in ["garbage", &value[..value.len() - 2]] {
            let handle = open(&config, &format!("sid={planted}; {ours}")).await;
            assert_eq!(who(&handle).unwrap().0.as_deref(), Some("alice"), "{planted:?} shadowed ours");
            assert!(set_cookies(&handle).is_empty(), "{:?}", set_cookies(&handle));
        }
    })
}

/// At most four values of our cookie are opened, each once: fifty
/// sessions of a user logged out everywhere, in one header, cost four
/// decryptions (and four revocation checks), and a login over them opens
/// none again.
#[test]
fn at_most_four_values_are_opened_and_each_once() {
    pollster::block_on(async {
        let keyring = sealed_session::SharedKeyring::new(Keyring::generate().unwrap());
        let spec = sealed_session::CookieSpec::named("sid").unwrap();
        let builder = WebConfig::builder(Sealer::builder(keyring.clone()), MemoryStore::new()).cookie(spec);
        let config = Arc::new(builder.build().unwrap());
        let mut values = Vec::new();
        for _ in 0..50 {
            values.push(signed_in(&config, "alice").await);
        }
        config.verifier().logout_everywhere("alice").await.unwrap();
        let opened = || keyring.current().usage().iter().map(|key| key.opened).sum::<u64>();
        let before = opened();
        let handle = open(&config, &values.join("; ")).await;
        assert!(!handle.has_session());
        assert_eq!(opened() - before, 4, "values opened");
        handle.typed::<String>().login("bob", "B".into()).await.unwrap();
        assert_eq!(opened() - before, 4, "the login opened some again");
    })
}

/// A `__Host-` cookie sent twice was injected, and is no session; but
/// logout, login and a new session from `update_or_insert` end every
/// session its values carry, so that an injected duplicate cannot keep the
/// user's real session alive once its cookie is gone from the browser (it
/// would still open wherever the duplicate is not sent).
#[test]
fn logout_and_login_end_every_session_an_injected_duplicate_cookie_carries() {
    pollster::block_on(async {
        let config = config();
        for action in ["logout", "login", "update_or_insert"] {
            let (real, planted) = (signed_in(&config, "alice").await, signed_in(&config, "mallory").await);
            let request = TestRequest::new("GET", "/").header("cookie", format!("{real}; {planted}"));
            let handle = ready(&config, &request).await;
            assert!(!handle.has_session(), "{action}: a duplicate is no session");
            let sessions = handle.typed::<String>();
            match action {
                "logout" => handle.logout().await.unwrap(),
                "login" => drop(sessions.login("alice", String::new()).await.unwrap()),
                _ => sessions.update_or_insert(String::new, |cart| cart.push('x')).await.unwrap(),
            }
            for cookie in [&real, &planted] {
                assert!(!open(&config, cookie).await.has_session(), "{action}: {cookie} still opens");
            }
        }
        // Anonymous ones carry no one's sign-in, and anyone can make them:
        // ending them would be a store write a request any client sends
        // could make four times over. They are left as they are.
        for action in ["logout", "login", "update_or_insert"] {
            let (first, second) = (with_cart(&config).await, with_cart(&config).await);
            let cookies = [&first, &second].map(|handle| pair(&set_cookies(handle)[0]).to_owned());
            let request = TestRequest::new("GET", "/").header("cookie", cookies.join("; "));
            let handle = ready(&config, &request).await;
            let sessions = handle.typed::<String>();
            match action {
                "logout" => handle.logout().await.unwrap(),
                "login" => drop(sessions.login("alice", String::new()).await.unwrap()),
                _ => sessions.update_or_insert(String::new, |cart| cart.push('x')).await.unwrap(),
            }
            for cookie in &cookies {
                assert!(open(&config, cookie).await.has_session(), "{action}: {cookie} was ended");
            }
        }
    })
}

/// A `Current` taken before the session got a new ID gives the new ID's
/// CSRF token: the form the handler shows next must pass.
#[test]
fn a_csrf_token_asked_for_after_a_new_id_is_the_new_ids() {
    pollster::block_on(async {
        let config = config();
        let handle = open(&config, &signed_in(&config, "alice").await).await;
        let current = handle.current::<String>().unwrap();
        let old = current.csrf_token();
        handle.renew_id().await.unwrap();
        let token = current.csrf_token();
        let set = set_cookies(&handle);
        let cookie = pair(set.iter().find(|c| c.starts_with("__Host-session=")).unwrap()).to_owned();
        ready(&config, &post(&cookie, Some(&token))).await;
        assert!(matches!(config.begin(&post(&cookie, Some(&old))).await, Begin::Refuse(_)));
    })
}

/// A login that fails before it ends anything (here the new session does
/// not fit in a cookie) leaves the request's session as it was, even one
/// whose data is another type than the login's: its cookie stays.
#[test]
fn a_failed_login_keeps_the_session_it_would_have_replaced_even_of_another_type() {
    pollster::block_on(async {
        let config = config();
        let handle = with_cart(&config).await;
        let set = set_cookies(&handle);
        let cookie = pair(set.iter().find(|c| c.starts_with("__Host-session=")).unwrap()).to_owned();

        let handle = open(&config, &cookie).await;
        let too_large = (true, "x".repeat(8_000));
        let err = handle.typed::<(bool, String)>().login("alice", too_large).await.unwrap_err();
        assert!(matches!(err, HandleError::Seal(_)), "{err:?}");
        let changed = set_cookies(&handle);
        assert!(changed.is_empty(), "the cookie was changed: {changed:?}");
        let cart = open(&config, &cookie).await.current::<String>().unwrap();
        assert_eq!(cart.session().data(), "tea", "the session still opens");
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
        assert!(!handle.has_session());
        let err =
            handle.typed::<String>().update_or_insert(String::new, |cart| cart.push('x')).await.unwrap_err();
        assert!(matches!(err, HandleError::UnreadableSession), "{err:?}");
        assert!(set_cookies(&handle).is_empty(), "the cookie is kept: no removal, no replacement");
    })
}

/// A login whose credential was checked while the user was logged out
/// everywhere (a password change, say), or everyone was, starts no session:
/// the ticket read before the check no longer matches the store (found by
/// review: the epoch read after the check let an attacker who keeps signing
/// in with the old password keep a session). A ticket of another user is
/// refused too; one with nothing since signs in.
#[test]
fn a_login_checked_across_a_logout_starts_no_session() {
    async fn login(
        handle: &SessionHandle,
        user: &str,
        ticket: sealed_session::LoginTicket,
    ) -> Result<(), HandleError> {
        let checked = LoginOptions::default().checked_since(ticket);
        handle.typed::<String>().login_with_options(user, checked, |_| String::new()).await.map(drop)
    }
    pollster::block_on(async {
        let config = config();
        let refused = |result: Result<(), HandleError>| {
            let err = result.unwrap_err();
            assert!(
                matches!(err, HandleError::Login(sealed_session::LoginError::RevokedSinceCheck)),
                "{err:?}"
            );
            assert_eq!(err.status(), 401);
        };
        let handle = open(&config, "").await;
        let ticket = handle.login_ticket("alice").await.unwrap();
        config.verifier().logout_everywhere("alice").await.unwrap();
        refused(login(&handle, "alice", ticket).await);
        assert!(!handle.has_session());
        assert!(set_cookies(&handle).iter().all(|c| !c.starts_with("__Host-session=")), "no session cookie");

        let handle = open(&config, "").await;
        let ticket = handle.login_ticket("alice").await.unwrap();
        config.verifier().logout_all().await.unwrap();
        refused(login(&handle, "alice", ticket).await);

        // A ticket of another user is a mistake of the application's,
        // though the store says the same of both (never logged out).
        let handle = open(&config, "").await;
        let err = login(&handle, "carol", handle.login_ticket("bob").await.unwrap()).await.unwrap_err();
        assert!(
            matches!(err, HandleError::Login(sealed_session::LoginError::TicketOfAnotherUser)),
            "{err:?}"
        );
        assert_eq!(err.status(), 500);

        let handle = open(&config, "").await;
        login(&handle, "alice", handle.login_ticket("alice").await.unwrap()).await.unwrap();
        let cookie = pair(&set_cookies(&handle)[0]).to_owned();
        assert_eq!(who(&open(&config, &cookie).await).unwrap().0.as_deref(), Some("alice"));
    })
}

/// `keyring promote` clears every `activate_at`, so servers that have the
/// new file seal under a key that servers still on the old one hold as due
/// later (refused as not yet valid there). Those keep the cookie, as for a
/// key they lack, and a logout or login there answers `503`: removing it
/// logged users out, and a logout there ended nothing, leaving a copy of
/// the cookie valid on the servers that read it.
#[test]
fn a_cookie_under_a_key_promoted_ahead_of_its_schedule_is_kept_where_it_is_still_due() {
    pollster::block_on(async {
        let (next, id) = Keyring::generate().unwrap().with_new_key().unwrap();
        let due = time::OffsetDateTime::now_utc() + std::time::Duration::from_secs(2 * 86_400);
        let behind =
            Keyring::new(
                next.keys().map(|k| if k.id == id { k.clone().activate_at(due) } else { k.clone() }),
            )
            .unwrap();
        let cookie = signed_in(&config_with(behind.with_primary(id).unwrap(), |b| b), "alice").await;
        let config = config_with(behind, |b| b);
        let handle = open(&config, &cookie).await;
        assert!(!handle.has_session());
        assert!(matches!(handle.logout().await.unwrap_err(), HandleError::UnreadableSession));
        let err = handle.typed::<String>().login("alice", String::new()).await.unwrap_err();
        assert!(matches!(err, HandleError::UnreadableSession), "{err:?}");
        assert!(set_cookies(&handle).is_empty(), "the cookie is kept: no removal, no replacement");
        // A token refused as not yet valid by its own times, under a key
        // that seals here, is still removed.
        let clock_ahead = ManualClock::at_unix(time::OffsetDateTime::now_utc().unix_timestamp() + 3600);
        let same_keys = Keyring::new(config.verifier().sealer().keyring().current().keys().cloned()).unwrap();
        let skewed = WebConfig::builder(Sealer::builder(same_keys).clock(clock_ahead), MemoryStore::new())
            .build()
            .unwrap();
        let handle = open(&config, &signed_in(&skewed, "bob").await).await;
        assert!(!handle.has_session());
        let removal = set_cookies(&handle);
        assert!(removal.first().is_some_and(|c| c.starts_with("__Host-session=;")), "kept: {removal:?}");
    })
}

/// A key removed from the keyring (below its newest key, so no rollout
/// this server lags behind in) is gone for good: its cookie is removed, as
/// a retired key's is, and a login on that browser works. Kept, it made
/// every login there a `503` until the cookie expired.
#[test]
fn a_cookie_under_a_removed_key_is_removed_and_never_blocks_a_login() {
    pollster::block_on(async {
        let old = Keyring::generate().unwrap();
        let old_id = old.keys().next().unwrap().id;
        let (next, id) = old.with_new_key().unwrap();
        let cookie = signed_in(&config_with(old, |b| b), "alice").await;
        let promoted = next.with_primary(id).unwrap();
        let removed = Keyring::new(promoted.keys().filter(|k| k.id != old_id).cloned()).unwrap();
        let config = config_with(removed, |b| b);

        let handle = open(&config, &cookie).await;
        assert!(!handle.has_session());
        let removal = set_cookies(&handle);
        assert!(removal.first().is_some_and(|c| c.starts_with("__Host-session=;")), "kept: {removal:?}");
        let handle = open(&config, &cookie).await;
        handle.typed::<String>().login("alice", "ALICE".to_owned()).await.unwrap();
        let fresh = pair(&set_cookies(&handle)[0]).to_owned();
        assert_eq!(who(&open(&config, &fresh).await).unwrap().0.as_deref(), Some("alice"));
    })
}

/// The key ID is read before a cookie is authenticated, so anyone can
/// write one that names a key this server lacks. Only the next two IDs are
/// taken for a rollout in progress (kept, as above); a cookie under a key
/// further up is removed, and a login on that browser works: kept, a
/// made-up value naming a far-off key ID refused every login there until
/// it expired.
#[test]
fn a_cookie_under_a_key_id_no_rollout_reaches_is_removed() {
    pollster::block_on(async {
        let keyring = Keyring::generate().unwrap();
        let copy = |keyring: &Keyring| Keyring::new(keyring.keys().cloned()).unwrap();
        let config = config_with(copy(&keyring), |b| b);
        let mut ahead = keyring;
        for steps in 1..=3 {
            let (next, id) = ahead.with_new_key().unwrap();
            ahead = next.with_primary(id).unwrap();
            let cookie = signed_in(&config_with(copy(&ahead), |b| b), "mallory").await;
            let handle = open(&config, &cookie).await;
            assert!(!handle.has_session());
            let removal = set_cookies(&handle);
            if steps <= 2 {
                assert!(removal.is_empty(), "{steps} keys ahead: a rollout, kept: {removal:?}");
                continue;
            }
            assert!(removal.first().is_some_and(|c| c.starts_with("__Host-session=;")), "kept: {removal:?}");
            let handle = open(&config, &cookie).await;
            handle.typed::<String>().login("alice", "ALICE".to_owned()).await.unwrap();
            let fresh = pair(&set_cookies(&handle)[0]).to_owned();
            assert_eq!(who(&open(&config, &fresh).await).unwrap().0.as_deref(), Some("alice"));
        }
    })
}

/// A server on a store it shares with another.
type SharingServer = Arc<WebConfig<Arc<MemoryStore>>>;

/// Two servers on one store, as in a deployment, one a key rollout ahead
/// of the other: `ahead` seals under a key `behind` does not have yet.
fn ahead_and_behind(bearer_tokens: bool) -> (SharingServer, SharingServer) {
    let keyring = Keyring::generate().unwrap();
    let (next, id) = keyring.with_new_key().unwrap();
    let store = Arc::new(MemoryStore::new());
    let server = |keyring: Keyring| {
        let builder = WebConfig::builder(Sealer::builder(keyring), Arc::clone(&store));
        Arc::new(if bearer_tokens { builder.bearer_tokens() } else { builder }.build().unwrap())
    };
    (server(next.with_primary(id).unwrap()), server(keyring))
}

/// Login and logout on a server that lags behind in a key rollout: neither
/// can end the session it would replace or remove (the cookie does not
/// open here), so both refuse and change nothing, and the session is ended
/// properly once the request reaches a server with the key.
#[test]
fn login_and_logout_never_leave_a_session_this_server_cannot_read_alive() {
    pollster::block_on(async {
        let (ahead, behind) = ahead_and_behind(false);
        let cookie = signed_in(&ahead, "alice").await;
        let request = TestRequest::new("GET", "/").header("cookie", &cookie);

        let handle = ready(&behind, &request).await;
        // A route that requires a session answers 503, not "no session".
        assert!(handle.session_unreadable());
        let refusal = handle.required_route_refusal(None);
        assert_eq!(refusal, Some(sealed_session::redirect::RouteRefusal::SessionUnreadable));
        assert_eq!(refusal.map(sealed_session::redirect::RouteRefusal::status), Some(503));
        assert!(!ready(&ahead, &request).await.session_unreadable());
        assert!(!ready(&behind, &TestRequest::new("GET", "/")).await.session_unreadable(), "no cookie");
        let err = handle.typed::<String>().login("mallory", String::new()).await.unwrap_err();
        assert!(matches!(err, HandleError::UnreadableSession), "{err:?}");
        let err = handle.logout().await.unwrap_err();
        assert!(matches!(err, HandleError::UnreadableSession), "{err:?}");
        assert!(!handle.has_session());
        assert!(set_cookies(&handle).is_empty(), "no new cookie, no removal");
        let still = ready(&ahead, &request).await;
        assert_eq!(who(&still).unwrap().0.as_deref(), Some("alice"), "the session is still alive");

        // Retried where the key is known, login ends it.
        still.typed::<String>().login("alice", String::new()).await.unwrap();
        assert!(!ready(&ahead, &request).await.has_session(), "the session the login replaced is logged out");
    })
}

/// Any client can send a cookie naming a key this server lacks, with every
/// request: the refusal is logged at `warn` once a minute at most (at
/// `info` otherwise), not once a request.
#[test]
fn cookies_under_a_key_this_server_lacks_are_warned_of_once_a_minute() {
    use tracing_subscriber::fmt::MakeWriter as _;
    let (ahead, behind) = ahead_and_behind(false);
    let cookie = pollster::block_on(signed_in(&ahead, "alice"));
    let logs: &'static std::sync::Mutex<Vec<u8>> = Box::leak(Box::default());
    tracing::subscriber::with_default(
        tracing_subscriber::fmt().with_writer(move || logs.make_writer()).with_ansi(false).finish(),
        || {
            for _ in 0..5 {
                let request = TestRequest::new("GET", "/").header("cookie", &cookie);
                assert!(!pollster::block_on(ready(&behind, &request)).has_session());
            }
        },
    );
    let logged = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    let refused =
        |level: &str| logs::lines_with(&logged, level, &["its key is not in this server's keyring"]);
    assert_eq!((refused(" WARN "), refused(" INFO ")), (1, 4), "{logged}");
}

/// The same for a bearer token: a logout that lands on the lagging server
/// must not answer success while the token still opens everywhere else.
#[test]
fn a_bearer_token_this_server_cannot_read_is_neither_logged_out_nor_replaced() {
    pollster::block_on(async {
        let (ahead, behind) = ahead_and_behind(true);
        let session = ahead.verifier().login("alice", String::new()).await.unwrap();
        let (token, _) = ahead.verifier().issue(session).unwrap();
        let request = TestRequest::new("POST", "/logout").header("authorization", format!("Bearer {token}"));

        let handle = ready(&behind, &request).await;
        let err = handle.logout().await.unwrap_err();
        assert!(matches!(err, HandleError::UnreadableSession), "{err:?}");
        let err = handle.typed::<String>().login("mallory", String::new()).await.unwrap_err();
        assert!(matches!(err, HandleError::UnreadableSession), "{err:?}");
        assert!(handle.finish().session_token.is_none(), "no token replaces it");
        assert!(ready(&ahead, &request).await.has_session(), "still open where the key is known");
        // Where the key is known, the logout ends it.
        ready(&ahead, &request).await.logout().await.unwrap();
        assert!(!ready(&ahead, &request).await.has_session());
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
        let first = handle.current::<String>().unwrap();
        assert_ne!(first.key_id(), id);
        let cookies = set_cookies(&handle);
        assert_eq!(cookies.len(), 1);
        let reissued = open(&after, pair(&cookies[0])).await.current::<String>().unwrap();
        assert_eq!(reissued.key_id(), id);
        assert_eq!(reissued.id(), first.id());
        assert_eq!(reissued.data(), "ALICE", "the data, byte for byte");
    })
}

/// A WebSocket handshake is a `GET` (or, over HTTP/2, a `CONNECT`) that a
/// page on any site may open with the user's cookies: it must come from
/// this site (Fetch Metadata, else `Origin`), and cannot carry a token.
#[test]
fn upgrade_requests_must_come_from_this_site_and_need_no_token() {
    pollster::block_on(async {
        let config = config_with(Keyring::generate().unwrap(), |b| b.csrf_exempt("/public-ws"));
        let cookie = signed_in(&config, "alice").await;
        let upgrade = |method: &str, path: &str, site: Option<&str>, origin: Option<&str>| {
            let mut request = with_cookie(TestRequest::new(method, path), &cookie);
            if method == "GET" {
                request = request.header("upgrade", "websocket");
            }
            if let Some(site) = site {
                request = request.header("sec-fetch-site", site);
            }
            if let Some(origin) = origin {
                request = request.header("origin", origin);
            }
            request
        };
        for (site, origin) in
            [(Some("same-origin"), Some("https://app.example")), (None, Some("https://app.example"))]
        {
            ready(&config, &upgrade("GET", "/ws", site, origin)).await;
            ready(&config, &upgrade("CONNECT", "/ws", site, origin)).await;
        }
        for (site, origin) in [
            (Some("cross-site"), Some("https://evil.example")),
            (Some("same-site"), Some("https://sub.app.example")),
            (None, Some("https://evil.example")),
        ] {
            assert_eq!(
                refused(&config, &upgrade("GET", "/ws", site, origin)).await.status(),
                403,
                "{site:?}"
            );
            assert_eq!(refused(&config, &upgrade("CONNECT", "/ws", site, origin)).await.status(), 403);
        }
        // The same cross-site GET without `Upgrade` is a navigation; an exempt path stays exempt.
        let navigation =
            with_cookie(TestRequest::new("GET", "/ws"), &cookie).header("sec-fetch-site", "cross-site");
        ready(&config, &navigation).await;
        ready(&config, &upgrade("GET", "/public-ws", Some("cross-site"), None)).await;
        // Without a session or pre-session too: the site rule needs none.
        let anonymous = |site: &str| {
            TestRequest::new("GET", "/ws").header("upgrade", "websocket").header("sec-fetch-site", site)
        };
        ready(&config, &anonymous("same-origin")).await;
        refused(&config, &anonymous("cross-site")).await;
        // Only a GET switches protocols over HTTP/1.1 (RFC 6455): any other
        // method with `Upgrade` is an unsafe request like any other, and
        // needs the token.
        for method in ["POST", "PUT", "DELETE"] {
            let request = with_cookie(TestRequest::new(method, "/ws"), &cookie)
                .header("upgrade", "websocket")
                .header("sec-fetch-site", "same-origin");
            assert_eq!(refused(&config, &request).await.status(), 403, "{method}");
        }
    })
}

/// `allow_same_site` lets a sibling subdomain's requests through to the
/// token check; a WebSocket handshake has no token, so a sibling cannot
/// open one as the user.
#[test]
fn allowing_same_site_requests_never_lets_a_sibling_open_a_websocket() {
    pollster::block_on(async {
        let config = config_with(Keyring::generate().unwrap(), |b| b.allow_same_site());
        let (cookie, token) = alice_with_token(&config).await;
        let sibling = |request: TestRequest| {
            with_cookie(request, &cookie)
                .header("sec-fetch-site", "same-site")
                .header("origin", "https://evil.app.example")
        };
        ready(&config, &sibling(TestRequest::new("POST", "/cart")).header("x-csrf-token", &token)).await;
        let handshake = sibling(TestRequest::new("GET", "/ws")).header("upgrade", "websocket");
        assert_eq!(refused(&config, &handshake).await.status(), 403);
    })
}

/// A trusted origin is named by the application: its pages may open a
/// WebSocket (no token), while another sibling's handshake is refused.
#[test]
fn a_trusted_origin_may_open_a_websocket_and_no_other_sibling_may() {
    pollster::block_on(async {
        let config = config_with(Keyring::generate().unwrap(), |b| b.trust_origin("https://www.app.example"));
        let cookie = signed_in(&config, "alice").await;
        let handshake = |origin: &str| {
            with_cookie(TestRequest::new("GET", "/ws"), &cookie)
                .header("upgrade", "websocket")
                .header("sec-fetch-site", "same-site")
                .header("origin", origin)
        };
        assert!(ready(&config, &handshake("https://www.app.example")).await.has_session());
        assert_eq!(refused(&config, &handshake("https://evil.app.example")).await.status(), 403);
    })
}

#[test]
fn unsafe_requests_need_the_sessions_token_from_a_header_or_a_form() {
    pollster::block_on(async {
        let config = config();
        let (cookie, token) = alice_with_token(&config).await;

        ready(&config, &post(&cookie, Some(&token))).await;
        ready(&config, &with_cookie(TestRequest::new("GET", "/cart"), &cookie)).await;
        let wrong = refused(&config, &post(&cookie, Some("nope"))).await;
        assert!(matches!(wrong, Refusal::Csrf(CsrfRefusal::Csrf(CsrfError::Invalid))), "{wrong:?}");
        assert_eq!((wrong.status(), wrong.body()), (403, "CSRF check failed"));
        let missing = refused(&config, &post(&cookie, None)).await;
        assert!(matches!(missing, Refusal::Csrf(CsrfRefusal::Csrf(CsrfError::Missing))), "{missing:?}");
        // Another session's valid token (bob's, signed in on this server)
        // is no token of alice's: in the header or in the form.
        let bobs = open(&config, &signed_in(&config, "bob").await).await.csrf_token().unwrap();
        let other = refused(&config, &post(&cookie, Some(&bobs))).await;
        assert!(matches!(other, Refusal::Csrf(CsrfRefusal::Csrf(CsrfError::Invalid))), "{other:?}");

        let form = post(&cookie, None).header("content-type", "application/x-www-form-urlencoded");
        let read = |body: String| {
            let config = Arc::clone(&config);
            let form = form.clone();
            async move {
                match config.begin(&form).await {
                    Begin::ReadForm(read) => read.check(body.as_bytes()),
                    other => panic!("the token is in the form: {other:?}"),
                }
            }
        };
        read(format!("item=tea&csrf_token={token}")).await.unwrap();
        // A token header that is not text is a wrong token, not a missing
        // one: the form is not read for another.
        let garbled = refused(&config, &form.clone().header("x-csrf-token", b"tok\xff")).await;
        assert!(matches!(garbled, Refusal::Csrf(CsrfRefusal::Csrf(CsrfError::Invalid))), "{garbled:?}");
        // A wrong header token is not made good by a right one in the form.
        let wrong = refused(&config, &form.clone().header("x-csrf-token", "nope")).await;
        assert!(matches!(wrong, Refusal::Csrf(CsrfRefusal::Csrf(CsrfError::Invalid))), "{wrong:?}");
        let err = read("item=tea&csrf_token=nope".into()).await.unwrap_err();
        assert!(matches!(err, Refusal::Csrf(CsrfRefusal::Csrf(CsrfError::Invalid))), "{err:?}");
        let err = read(format!("item=tea&csrf_token={bobs}")).await.unwrap_err();
        assert!(matches!(err, Refusal::Csrf(CsrfRefusal::Csrf(CsrfError::Invalid))), "{err:?}");
        let err = read("item=tea".into()).await.unwrap_err();
        assert!(matches!(err, Refusal::Csrf(CsrfRefusal::Csrf(CsrfError::Missing))), "{err:?}");
    })
}

#[test]
fn a_cross_site_request_is_refused_before_its_token_is_looked_at() {
    pollster::block_on(async {
        let config = config();
        let (cookie, token) = alice_with_token(&config).await;
        let from = |origin: &str| {
            with_cookie(TestRequest::new("POST", "/cart"), &cookie)
                .header("x-csrf-token", &token)
                .header("origin", origin)
        };
        let cross_site = with_cookie(TestRequest::new("POST", "/cart"), &cookie)
            .header("sec-fetch-site", "cross-site")
            .header("x-csrf-token", &token);
        let err = refused(&config, &cross_site).await;
        assert!(matches!(err, Refusal::Csrf(CsrfRefusal::Csrf(CsrfError::CrossSite(_)))), "{err:?}");
        let err = refused(&config, &from("https://evil.example")).await;
        assert!(matches!(err, Refusal::Csrf(CsrfRefusal::Csrf(CsrfError::WrongOrigin))), "{err:?}");
        // Refused as cross-site, not for its token: a wrong one, or none in
        // a form (refused before its body is asked for: `refused` takes no
        // `ReadForm`).
        let wrong_token = with_cookie(TestRequest::new("POST", "/cart"), &cookie)
            .header("sec-fetch-site", "cross-site")
            .header("x-csrf-token", "nope");
        let err = refused(&config, &wrong_token).await;
        assert!(matches!(err, Refusal::Csrf(CsrfRefusal::Csrf(CsrfError::CrossSite(_)))), "{err:?}");
        let form = with_cookie(TestRequest::new("POST", "/cart"), &cookie)
            .header("origin", "https://evil.example")
            .header("content-type", "application/x-www-form-urlencoded");
        let err = refused(&config, &form).await;
        assert!(matches!(err, Refusal::Csrf(CsrfRefusal::Csrf(CsrfError::WrongOrigin))), "{err:?}");
        ready(&config, &from("https://app.example")).await;
        // Plain http is expected only on loopback.
        ready(&config, &from("http://127.0.0.1:3000").with_authority(Some("127.0.0.1:3000"))).await;
        refused(&config, &from("http://app.example")).await;
        // Either header present but not UTF-8 is no header that passes:
        // read as absent, it would skip its check.
        let unreadable = with_cookie(TestRequest::new("POST", "/cart"), &cookie)
            .header("sec-fetch-site", b"same-origin\xff")
            .header("x-csrf-token", &token);
        let err = refused(&config, &unreadable).await;
        assert!(matches!(err, Refusal::Csrf(CsrfRefusal::Csrf(CsrfError::CrossSite(_)))), "{err:?}");
        let unreadable = with_cookie(TestRequest::new("POST", "/cart"), &cookie)
            .header("origin", b"https://app.example\xff")
            .header("x-csrf-token", &token);
        let err = refused(&config, &unreadable).await;
        assert!(matches!(err, Refusal::Csrf(CsrfRefusal::Csrf(CsrfError::WrongOrigin))), "{err:?}");
    })
}

#[test]
fn without_a_session_or_pre_session_there_is_nothing_to_bind_a_token_to() {
    pollster::block_on(async {
        let config = config();
        let form = post("", None).header("content-type", "application/x-www-form-urlencoded");
        let err = refused(&config, &form).await;
        assert!(matches!(err, Refusal::Csrf(CsrfRefusal::NoBinding)), "{err:?}");
    })
}

#[test]
fn exempt_paths_and_disabled_enforcement_skip_the_checks() {
    pollster::block_on(async {
        let config = config_with(Keyring::generate().unwrap(), |b| b.csrf_exempt("/webhook"));
        let cross_site = |path: &str| TestRequest::new("POST", path).header("sec-fetch-site", "cross-site");
        refused(&config, &cross_site("/cart")).await;
        ready(&config, &cross_site("/webhook")).await;
        refused(&config, &cross_site("/webhook/")).await; // exempt paths match exactly
        let config = config_with(Keyring::generate().unwrap(), |b| b.without_csrf());
        ready(&config, &cross_site("/cart")).await;
    })
}

/// The pre-session and flash cookies carry the session cookie's `Secure`,
/// `SameSite` and `Domain`: a plain-HTTP development cookie's (a `Secure`
/// pre-session cookie would be dropped there, and every login form
/// refused), a `SameSite=Strict` one's. They keep `Path=/` (a login form or
/// a logout's flash message may be outside the session cookie's path), and
/// stay `HttpOnly` and for the browser session.
#[test]
fn the_pre_session_and_flash_cookies_carry_the_session_cookies_attributes() {
    use sealed_session::{CookieSpec, SameSite};
    pollster::block_on(async {
        let spec = CookieSpec::named("sid").unwrap().secure(false).unwrap().path("/app").unwrap();
        let spec = spec.same_site(SameSite::Strict).unwrap().http_only(false).unwrap();
        let config = config_with(Keyring::generate().unwrap(), |b| b.cookie(spec));
        let handle = open(&config, "").await;
        handle.csrf_token().unwrap();
        handle.flash(Level::Info, "hello").unwrap();
        let cookies = set_cookies(&handle);
        for name in ["sid-csrf=", "sid-flash="] {
            let cookie =
                cookies.iter().find(|c| c.starts_with(name)).unwrap_or_else(|| panic!("{cookies:?}"));
            let attributes: Vec<&str> = cookie.split("; ").skip(1).collect();
            assert_eq!(attributes, ["Path=/", "HttpOnly", "SameSite=Strict"], "{name}");
        }
    })
}

/// A configuration that seals token version 1 (a rolling upgrade with
/// servers of a release that opens nothing else) seals its pre-session and
/// flash cookies in version 1 too, or those servers would refuse them.
#[test]
fn the_pre_session_and_flash_cookies_follow_the_token_version() {
    pollster::block_on(async {
        let sealer = Sealer::builder(Keyring::generate().unwrap()).token_version(1);
        let config = Arc::new(WebConfig::builder(sealer, MemoryStore::new()).build().unwrap());
        let handle = open(&config, "").await;
        handle.csrf_token().unwrap();
        handle.flash(Level::Info, "hello").unwrap();
        let cookies = handle.finish().set_cookies.clone();
        let versions: Vec<_> = cookies
            .iter()
            .map(|c| {
                let (name, value) = pair(c).split_once('=').unwrap();
                let bytes =
                    base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, value).unwrap();
                (name.to_owned(), bytes[0])
            })
            .collect();
        assert_eq!(versions.len(), 2, "{cookies:?}");
        assert!(versions.iter().all(|(_, version)| *version == 1), "{versions:?}");
    });
}

#[test]
fn a_bearer_token_replaces_cookies_and_renewals_go_out_in_a_header() {
    pollster::block_on(async {
        let config = config_with(Keyring::generate().unwrap(), |b| b.bearer_tokens());
        let cookie = signed_in(&config, "alice").await;
        let bob = config.verifier().login("bob", "BOB".to_owned()).await.unwrap();
        let (token, _) = config.verifier().issue(bob).unwrap();
        let authorization = format!("Bearer {token}");
        // An unsafe request with no CSRF token: nothing ambient, none needed.
        let request = with_cookie(TestRequest::new("POST", "/cart"), &cookie)
            .header("authorization", &authorization)
            .header("sec-fetch-site", "cross-site");
        let handle = ready(&config, &request).await;
        assert_eq!(who(&handle).unwrap().0.as_deref(), Some("bob"), "the cookie is ignored");
        handle.typed::<String>().update(|data| data.push('!')).unwrap();
        let response = handle.finish();
        assert!(response.set_cookies.is_empty(), "never a cookie");
        let renewed = response.session_token.clone().expect("the new token");
        assert!(response.no_store());
        assert!(!format!("{response:?}").contains(&renewed), "Debug shows no token");
        let reopened = config.verifier().open::<String>(&renewed).await.unwrap();
        assert_eq!(reopened.session().data(), "BOB!");

        // Without bearer tokens turned on, the header is not read.
        let plain = config_with(Keyring::generate().unwrap(), |b| b);
        let request =
            with_cookie(TestRequest::new("GET", "/"), &cookie).header("authorization", &authorization);
        assert!(
            !ready(&plain, &request).await.has_session(),
            "another keyring's cookie, and no bearer token"
        );
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
        let cookies = set_cookies(&handle);
        assert_eq!(cookies.len(), 1);
        assert!(cookies[0].starts_with("__Host-session-csrf="));
        let pre = pair(&cookies[0]).to_owned();

        let again = open(&config, &pre).await;
        let other = again.csrf_token().unwrap();
        assert!(set_cookies(&again).is_empty(), "the same pre-session");
        assert_ne!(other, token, "masked afresh on every page");
        ready(&config, &post(&pre, Some(&other))).await;
        let handle = ready(&config, &post(&pre, Some(&token))).await;
        handle.typed::<String>().login("alice", "ALICE".to_owned()).await.unwrap();
        let cookies = set_cookies(&handle);
        assert_eq!(cookies.len(), 2);
        assert!(cookies[0].starts_with("__Host-session="));
        assert!(cookies[1].starts_with("__Host-session-csrf=;"), "{:?}", cookies[1]);
        // The session is not the pre-session under a new name (fixation):
        // the login form's token, bound to the pre-session, is no token of
        // the session's, whether the old pre-session cookie comes along or not.
        let session = pair(&cookies[0]).to_owned();
        refused(&config, &post(&session, Some(&token))).await;
        refused(&config, &post(&format!("{session}; {pre}"), Some(&token))).await;
        let theirs = open(&config, &session).await.csrf_token().unwrap();
        ready(&config, &post(&session, Some(&theirs))).await;
        // A forged pre-session binds nothing.
        refused(&config, &post("__Host-session-csrf=forged", Some(&token))).await;
    })
}

/// A login form shown in its pre-session's last hour gets the same
/// pre-session sealed again for a whole lifetime: the form would otherwise
/// expire minutes after it is shown. Forms shown earlier keep working (the
/// same ID), and a pre-session with more time left is not sealed again.
#[test]
fn a_pre_session_near_its_end_is_sealed_again_with_the_same_id() {
    use sealed_session::web::PRE_SESSION_TIMEOUT;
    use std::time::Duration;
    pollster::block_on(async {
        let clock = ManualClock::at_unix(1_700_000_000);
        let sealer = Sealer::builder(Keyring::generate().unwrap()).clock(clock.clone());
        let config: Config = Arc::new(WebConfig::builder(sealer, MemoryStore::new()).build().unwrap());
        let first = open(&config, "").await;
        let early_token = first.csrf_token().unwrap();
        let pre = pair(&set_cookies(&first)[0]).to_owned();

        // Half its lifetime on: an hour is time enough for a form.
        clock.advance(PRE_SESSION_TIMEOUT / 2);
        let handle = open(&config, &pre).await;
        handle.csrf_token().unwrap();
        assert!(set_cookies(&handle).is_empty(), "not sealed again with an hour left");

        // A second later, less than half its lifetime is left.
        clock.advance(Duration::from_secs(1));
        let handle = open(&config, &pre).await;
        let late_token = handle.csrf_token().unwrap();
        let cookies = set_cookies(&handle);
        assert_eq!(cookies.len(), 1, "{cookies:?}");
        assert!(cookies[0].starts_with("__Host-session-csrf="), "{cookies:?}");
        let renewed = pair(&cookies[0]).to_owned();
        assert_ne!(renewed, pre);
        // The same ID: the form shown first still passes with either cookie.
        ready(&config, &post(&renewed, Some(&early_token))).await;
        ready(&config, &post(&pre, Some(&late_token))).await;

        // Past the first cookie's end, the renewed one still binds forms.
        clock.advance(PRE_SESSION_TIMEOUT / 2 + Duration::from_secs(120));
        let err = refused(&config, &post(&pre, Some(&late_token))).await;
        assert!(matches!(err, Refusal::Csrf(CsrfRefusal::NoBinding)), "{err:?}");
        ready(&config, &post(&renewed, Some(&late_token))).await;
        ready(&config, &post(&renewed, Some(&early_token))).await;

        // Shown a form every 59 minutes, it keeps its ID while a cookie
        // sealed again ends within a day of its first issue: then a new
        // one, and the first forms' tokens are no longer good.
        let mut pre = renewed;
        let mut last_of_first_id = pre.clone();
        let mut ids = 1;
        for _ in 0..30 {
            let handle = open(&config, &pre).await;
            let token = handle.csrf_token().unwrap();
            if let Some(cookie) = set_cookies(&handle).first() {
                pre = pair(cookie).to_owned();
            }
            ready(&config, &post(&pre, Some(&token))).await;
            if let Begin::Refuse(_) = config.begin(&post(&pre, Some(&early_token))).await {
                ids += 1;
                break;
            }
            last_of_first_id = pre.clone();
            clock.advance(Duration::from_secs(59 * 60));
        }
        assert_eq!(ids, 2, "a new ID within 30 forms");
        let elapsed = sealed_session::Clock::unix_now(&clock) - 1_700_000_000;
        assert!(elapsed >= 22 * 3600, "a new ID long before a day: {elapsed} s");
        // No cookie of the first ID outlives its day (its leeway aside).
        clock.set_unix(1_700_000_000 + 24 * 3600 + 300);
        let err = refused(&config, &post(&last_of_first_id, Some(&early_token))).await;
        assert!(matches!(err, Refusal::Csrf(CsrfRefusal::NoBinding)), "{err:?}");
    })
}

/// A pre-session sealed by an earlier release (no data) still binds the
/// forms shown with it.
#[test]
fn a_pre_session_of_an_earlier_release_still_binds_its_forms() {
    pollster::block_on(async {
        let keyring = sealed_session::SharedKeyring::new(Keyring::generate().unwrap());
        let sealer = Sealer::builder(keyring.clone());
        let config: Config = Arc::new(WebConfig::builder(sealer, MemoryStore::new()).build().unwrap());
        let earlier = Sealer::builder(keyring)
            .purpose("__Host-session-csrf")
            .absolute_timeout(sealed_session::web::PRE_SESSION_TIMEOUT)
            .idle_timeout(sealed_session::web::PRE_SESSION_TIMEOUT)
            .build()
            .unwrap();
        let session = sealed_session::Session::new(());
        let cookie = format!("__Host-session-csrf={}", earlier.seal(&session).unwrap());
        let token = earlier.csrf_token(&session);
        ready(&config, &post(&cookie, Some(&token))).await;
        let handle = open(&config, &cookie).await;
        handle.csrf_token().unwrap();
        assert!(set_cookies(&handle).is_empty(), "kept as it is");
    })
}

/// The flash cookie (`name=value`) of a request without one that added
/// `message`, the one cookie its response sets.
async fn flash_cookie(config: &Config, level: Level, message: &str) -> String {
    let handle = open(config, "").await;
    handle.flash(level, message).unwrap();
    let cookies = set_cookies(&handle);
    assert_eq!(cookies.len(), 1);
    assert!(cookies[0].starts_with("__Host-session-flash="));
    pair(&cookies[0]).to_owned()
}

#[test]
fn flash_messages_survive_one_request_and_are_then_removed() {
    pollster::block_on(async {
        let config = config();
        let flash = flash_cookie(&config, Level::Success, "Signed out").await;
        // A request that never reads its messages leaves them for the next.
        assert!(set_cookies(&open(&config, &flash).await).is_empty());
        let handle = open(&config, &flash).await;
        let flashes = handle.take_flashes();
        assert_eq!(flashes.len(), 1);
        assert_eq!((flashes[0].level, flashes[0].message.as_str()), (Level::Success, "Signed out"));
        assert!(handle.take_flashes().is_empty(), "read once");
        let cookies = set_cookies(&handle);
        assert_eq!(cookies.len(), 1);
        assert!(cookies[0].starts_with("__Host-session-flash=;"));
    })
}

/// The limits README.md and SECURITY.md give, written out: a change here
/// is a change there.
#[test]
fn the_documented_limits() {
    assert_eq!(sealed_session::web::MAX_FLASHES, 8);
    assert_eq!(sealed_session::registry::MAX_RECORDS_PER_USER, 100);
}

/// A `HEAD` request (a link checker's, a prefetch's) that reads the flash
/// messages removes none, even when it then adds one: the page the user
/// opens next shows them all.
#[test]
fn a_head_request_that_reads_the_flash_messages_keeps_them() {
    pollster::block_on(async {
        let config = config();
        let flash = flash_cookie(&config, Level::Info, "Payment sent").await;
        let head = ready(&config, &TestRequest::new("HEAD", "/").header("cookie", flash.clone())).await;
        let messages =
            |handle: &SessionHandle| handle.take_flashes().into_iter().map(|f| f.message).collect::<Vec<_>>();
        assert_eq!(messages(&head), ["Payment sent"]);
        assert_eq!(messages(&head), ["Payment sent"], "not taken");
        assert!(set_cookies(&head).is_empty(), "nothing removed");

        let head = ready(&config, &TestRequest::new("HEAD", "/").header("cookie", flash.clone())).await;
        assert_eq!(messages(&head), ["Payment sent"]);
        head.flash(Level::Info, "Seen").unwrap();
        let cookies = set_cookies(&head);
        assert_eq!(cookies.len(), 1, "{cookies:?}");
        let next = open(&config, pair(&cookies[0])).await;
        assert_eq!(messages(&next), ["Payment sent", "Seen"]);
    })
}

/// A logout (or a login) takes the unread flash messages its request
/// brought with the session (the next user of the browser is not to see
/// them) and keeps those the request adds, before the logout or after it.
#[test]
fn a_logout_or_login_forgets_the_unread_flash_messages_its_request_brought() {
    pollster::block_on(async {
        let config = config();
        let brought = flash_cookie(&config, Level::Info, "Payment sent").await;
        // The messages the next request of the browser reads.
        let next_page = |cookies: Vec<String>| {
            let config = Arc::clone(&config);
            async move {
                let flash = cookies
                    .iter()
                    .find(|c| c.starts_with("__Host-session-flash=") && !c.contains("Max-Age=0"));
                let handle = open(&config, flash.map_or("", |c| pair(c))).await;
                handle.take_flashes().into_iter().map(|f| f.message).collect::<Vec<_>>()
            }
        };
        for (everywhere, before, after) in [
            (false, None, None),
            (false, Some("Bye"), None),
            (false, None, Some("Signed out")),
            (true, Some("Bye"), Some("Signed out everywhere")),
        ] {
            let alice = signed_in(&config, "alice").await;
            let handle = open(&config, &format!("{alice}; {brought}")).await;
            if let Some(message) = before {
                handle.flash(Level::Info, message).unwrap();
            }
            if everywhere {
                handle.logout_everywhere().await.unwrap();
            } else {
                handle.logout().await.unwrap();
            }
            if let Some(message) = after {
                handle.flash(Level::Success, message).unwrap();
            }
            let cookies = set_cookies(&handle);
            let added: Vec<String> = before.into_iter().chain(after).map(str::to_owned).collect();
            if added.is_empty() {
                assert!(
                    cookies
                        .iter()
                        .any(|c| c.starts_with("__Host-session-flash=;") && c.contains("Max-Age=0")),
                    "{cookies:?}"
                );
            }
            assert_eq!(next_page(cookies).await, added, "{before:?} {after:?}");
        }
        // A logout on a `HEAD` request (which reads messages without
        // removing them) removes them too.
        let alice = signed_in(&config, "alice").await;
        let handle =
            ready(&config, &TestRequest::new("HEAD", "/").header("cookie", format!("{alice}; {brought}")))
                .await;
        handle.logout().await.unwrap();
        let cookies = set_cookies(&handle);
        assert!(
            cookies.iter().any(|c| c.starts_with("__Host-session-flash=;") && c.contains("Max-Age=0")),
            "{cookies:?}"
        );
        // A logout everywhere answered as a logout (the session was ended
        // elsewhere meanwhile) takes them too.
        let alice = signed_in(&config, "alice").await;
        let handle = open(&config, &format!("{alice}; {brought}")).await;
        open(&config, &alice).await.logout_everywhere().await.unwrap();
        assert!(handle.logout_everywhere().await.is_err(), "ended meanwhile");
        let cookies = set_cookies(&handle);
        assert!(
            cookies.iter().any(|c| c.starts_with("__Host-session-flash=;") && c.contains("Max-Age=0")),
            "{cookies:?}"
        );
        // A message too large to add (so the request's were opened, and
        // none added) changes nothing of that.
        let alice = signed_in(&config, "alice").await;
        let handle = open(&config, &format!("{alice}; {brought}")).await;
        assert!(handle.flash(Level::Info, "x".repeat(5000)).is_err());
        handle.logout().await.unwrap();
        assert!(handle.take_flashes().is_empty(), "read after the logout");
        handle.flash(Level::Success, "Signed out").unwrap();
        assert_eq!(next_page(set_cookies(&handle)).await, ["Signed out"]);
        // A login takes them too (a previous visitor's, whose session may
        // have expired without a logout), and keeps those added after it;
        // a reauthentication, the same user's, leaves them.
        let handle = open(&config, &brought).await;
        handle.typed::<String>().login("bob", "BOB".into()).await.unwrap();
        let cookies = set_cookies(&handle);
        assert!(
            cookies.iter().any(|c| c.starts_with("__Host-session-flash=;") && c.contains("Max-Age=0")),
            "the login removes the flash cookie it took: {cookies:?}"
        );
        assert_eq!(next_page(cookies).await, Vec::<String>::new());
        let handle = open(&config, &brought).await;
        handle.typed::<String>().login("bob", "BOB".into()).await.unwrap();
        handle.flash(Level::Success, "Signed in").unwrap();
        assert_eq!(next_page(set_cookies(&handle)).await, ["Signed in"]);
        let alice = signed_in(&config, "alice").await;
        let handle = open(&config, &format!("{alice}; {brought}")).await;
        handle.typed::<String>().reauthenticate().await.unwrap();
        assert!(
            !set_cookies(&handle).iter().any(|c| c.starts_with("__Host-session-flash=")),
            "left as it is"
        );
        // Without a logout the message waits, as before.
        let handle = open(&config, &brought).await;
        assert!(set_cookies(&handle).is_empty());
        assert_eq!(next_page(vec![format!("{brought}; Path=/")]).await, ["Payment sent"]);
    })
}

#[test]
fn a_store_that_cannot_answer_refuses_the_request() {
    pollster::block_on(async {
        let keyring = sealed_session::SharedKeyring::new(Keyring::generate().unwrap());
        let config =
            Arc::new(WebConfig::builder(Sealer::builder(keyring.clone()), UnreachableStore).build().unwrap());
        let token = Sealer::builder(keyring)
            .build()
            .unwrap()
            .seal(&sealed_session::Session::new("x".to_owned()).with_user("alice", 0))
            .unwrap();
        let request = TestRequest::new("GET", "/").header("cookie", format!("__Host-session={token}"));
        let refusal = refused(&config, &request).await;
        assert!(matches!(refusal, Refusal::Store(_)), "no session would be a lie: the store was not asked");
        assert_eq!((refusal.status(), refusal.body()), (503, "session store unavailable, try again"));
        // Without a cookie there is nothing to check.
        ready(&config, &TestRequest::new("GET", "/")).await;
    })
}

#[test]
fn the_builder_refuses_names_that_could_confuse_tokens() {
    let builder = || WebConfig::builder(Sealer::builder(Keyring::generate().unwrap()), MemoryStore::new());
    let admin = sealed_session::CookieSpec::named("__Host-admin").unwrap();
    // The purpose is the cookie's name: set both alike, or neither.
    let mismatch = WebConfig::builder(
        Sealer::builder(Keyring::generate().unwrap()).purpose("__Host-other"),
        MemoryStore::new(),
    )
    .cookie(admin.clone())
    .build();
    assert!(matches!(mismatch, Err(WebConfigError::PurposeMismatch { .. })), "{mismatch:?}");
    let agreed = WebConfig::builder(
        Sealer::builder(Keyring::generate().unwrap()).purpose("__Host-admin"),
        MemoryStore::new(),
    )
    .cookie(admin.clone())
    .build()
    .unwrap();
    assert_eq!(agreed.verifier().sealer().purpose(), "__Host-admin");
    let derived = builder().cookie(admin).build().unwrap();
    assert_eq!(derived.verifier().sealer().purpose(), "__Host-admin", "from the cookie's name");
    for name in [
        "__Host-admin-csrf",
        "__Host-admin-flash",
        "__Host-admin+remember",
        "__Host-admin+versioned",
        "__Host-admin-dbsc",
        "__Host-admin-dbsc-id",
        "__Host-admin-dbsc-challenge",
    ] {
        let cookie = sealed_session::CookieSpec::named(name).unwrap();
        assert!(
            matches!(builder().cookie(cookie).build(), Err(WebConfigError::ReservedCookieName { .. })),
            "{name}"
        );
    }
    assert!(matches!(builder().csrf_header("x csrf").build(), Err(WebConfigError::CsrfHeader(_))));
    assert!(matches!(builder().trust_origin("null").build(), Err(WebConfigError::Origin(_))));
    // The application's own origin too: `null` would let sandboxed frames
    // and `data:` pages through the origin check.
    for origin in ["null", "*", "", "https://app.example/login"] {
        assert!(matches!(builder().origin(origin).build(), Err(WebConfigError::Origin(_))), "{origin:?}");
    }
    assert!(builder().origin("https://App.example/").build().is_ok());
    let bad_sealer = WebConfig::builder(
        Sealer::builder(Keyring::generate().unwrap()).max_token_len(10),
        MemoryStore::new(),
    )
    .build();
    assert!(matches!(bad_sealer, Err(WebConfigError::Sealer(_))), "{bad_sealer:?}");
    // In token version 1 a derived cookie's purpose (`<name>-csrf`) gets
    // `+versioned` appended too: it must fit, though the name alone does.
    let longest = format!("__Host-{}", "n".repeat(sealed_session::MAX_PURPOSE_LEN - 10 - 7));
    let v1 = |name: &str| {
        WebConfig::builder(Sealer::builder(Keyring::generate().unwrap()).token_version(1), MemoryStore::new())
            .cookie(sealed_session::CookieSpec::named(name).unwrap())
            .build()
    };
    let too_long = v1(&longest);
    assert!(
        matches!(too_long, Err(WebConfigError::Sealer(sealed_session::ConfigError::PurposeTooLong(128)))),
        "{too_long:?}"
    );
    let shorter = v1(&longest[..longest.len() - 6]);
    assert!(shorter.is_ok(), "a name 6 shorter fits with `-flash`: {shorter:?}");
    let config = builder().csrf_header("X-Token").build().unwrap();
    assert_eq!(config.csrf_header(), "x-token", "header names are compared in lower case");
}

/// A response from a handler that looked at the session names the
/// session's field in `Vary`: else a cache (a CDN, or the
/// browser's own) answers one user's request with the page it kept for
/// another, or the browser's signed-in page after its logout.
#[test]
fn a_response_that_looked_at_the_session_varies_by_its_cookie() {
    pollster::block_on(async {
        let config = config();
        let cookie = signed_in(&config, "alice").await;
        let written = |handle: SessionHandle, cache_control: &[&str], vary: &[&str]| {
            let mut response = TestResponse::default();
            for value in cache_control {
                response = response.with_header("cache-control", value);
            }
            for value in vary {
                response = response.with_header("vary", value);
            }
            handle.finish().write_to(&mut response);
            response.get_all("vary").into_iter().map(str::to_owned).collect::<Vec<_>>()
        };
        // Every way of looking: the data, the user, whether there is a
        // session, its binding, its age, its flash messages, a CSRF token
        // (the session's, or the pre-session's).
        let looks: [fn(&SessionHandle); 9] = [
            |h| _ = h.current::<String>(),
            |h| _ = h.user_id(),
            |h| _ = h.has_session(),
            |h| _ = h.is_device_bound(),
            |h| _ = h.authenticated_at(),
            |h| _ = h.typed::<String>().signed_in(),
            |h| _ = h.take_flashes(),
            |h| _ = h.csrf_token(),
            |h| _ = h.sealer(),
        ];
        for (i, look) in looks.iter().enumerate() {
            let handle = open(&config, &cookie).await;
            look(&handle);
            assert_eq!(written(handle, &["public, max-age=600"], &[]), ["cookie"], "look {i}");
        }
        // Without a session too: the anonymous page is not the signed-in one.
        let handle = open(&config, "").await;
        assert!(!handle.has_session());
        assert_eq!(written(handle, &[], &["Accept-Encoding"]), ["Accept-Encoding", "cookie"]);
        // A private page still varies (the browser's cache keeps it), and a
        // no-store one too (a CDN may obey a field of its own over it).
        for cache_control in ["private, max-age=60", "no-store"] {
            let handle = open(&config, &cookie).await;
            _ = handle.user_id();
            assert_eq!(written(handle, &[cache_control], &[]), ["cookie"], "{cache_control}");
        }
        // Not when `Vary` names the cookie already or every field, or when
        // the handler never looked.
        for vary in ["accept, COOKIE", "*"] {
            let handle = open(&config, &cookie).await;
            _ = handle.user_id();
            assert_eq!(written(handle, &[], &[vary]), [vary]);
        }
        let handle = open(&config, &cookie).await;
        assert!(written(handle, &["public, max-age=600"], &[]).is_empty(), "never looked");
        // Where bearer tokens are taken, by `Authorization` too, with a token
        // or without (the cookie then counts): a page kept for a request
        // without one must not answer one with a token, nor the reverse.
        let config = config_with(Keyring::generate().unwrap(), |b| b.bearer_tokens());
        let bob = config.verifier().login("bob", "BOB".to_owned()).await.unwrap();
        let (token, _) = config.verifier().issue(bob).unwrap();
        let request = TestRequest::new("GET", "/").header("authorization", format!("Bearer {token}"));
        let handle = ready(&config, &request).await;
        assert_eq!(who(&handle).unwrap().0.as_deref(), Some("bob"));
        assert_eq!(written(handle, &["public"], &[]), ["cookie", "authorization"]);
        let handle = open(&config, "").await;
        assert!(!handle.has_session());
        assert_eq!(written(handle, &["public"], &["Cookie"]), ["Cookie", "authorization"]);
    })
}

#[test]
fn a_request_shows_no_header_value_in_debug() {
    let request = post("__Host-session=secret-cookie-value", Some("secret-token-value"));
    let shown = format!("{request:?}");
    assert!(!shown.contains("secret-token-value") && !shown.contains("secret-cookie-value"), "{shown}");
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
        // (A backslash escapes only inside a quoted argument: the comma
        // after `x\` splits.)
        for kept in [
            "private, max-age=0",
            "no-store",
            "max-age=60, NO-STORE",
            " Private ",
            "no-cache, private",
            "x\\, no-store",
        ] {
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
            // An escaped quote does not end the quoted argument.
            "no-cache=\"a\\\", no-store, b\"",
            "",
        ] {
            assert_eq!(cache_control(&[replaced]), Some("no-store"), "{replaced}");
        }
        // Every value counts, not only the first.
        assert_eq!(cache_control(&["max-age=600", "no-store"]), None);
        assert_eq!(cache_control(&["private", "public"]), Some("no-store"));
        // Written to a response: the route's header is replaced.
        let mut written = TestResponse::default().with_header("cache-control", "public, max-age=600");
        response.write_to(&mut written);
        assert_eq!(written.get_all("cache-control"), ["no-store"]);
        assert_eq!(written.get_all("set-cookie").len(), 1);
        assert!(written.get_all("cdn-cache-control").is_empty(), "no targeted field is added");
        // A field that a CDN obeys instead of `Cache-Control` is judged by
        // the same rule (RFC 9213).
        let targeted = || {
            TestResponse::default()
                .with_header("CDN-Cache-Control", "public, max-age=600")
                .with_header("surrogate-control", "max-age=60, no-store")
                .with_header("cloudflare-cdn-cache-control", "private, max-age=60")
                .with_header("vercel-cdn-cache-control", "s-maxage=300")
                .with_header("netlify-cdn-cache-control", "public, durable, max-age=60")
        };
        let handle = open(&config, "").await;
        handle.csrf_token().unwrap();
        let mut written = targeted();
        handle.finish().write_to(&mut written);
        assert_eq!(written.get_all("cdn-cache-control"), ["no-store"]);
        assert_eq!(written.get_all("surrogate-control"), ["max-age=60, no-store"], "already kept");
        assert_eq!(written.get_all("cloudflare-cdn-cache-control"), ["no-store"], "only no-store keeps");
        for vendor in ["vercel-cdn-cache-control", "netlify-cdn-cache-control"] {
            assert_eq!(written.get_all(vendor), ["no-store"], "{vendor}");
        }
        let handle = open(&config, "").await;
        handle.csrf_token().unwrap();
        let mut written = TestResponse::default().with_header("Surrogate-Control", "max-age=600");
        handle.finish().write_to(&mut written);
        assert_eq!(written.get_all("surrogate-control"), ["no-store"], "Fastly's and Akamai's field too");
        let mut untouched = targeted();
        open(&config, "").await.finish().write_to(&mut untouched);
        assert_eq!(untouched.get_all("cdn-cache-control"), ["public, max-age=600"], "no token, no change");
        // Nothing set: nothing to add.
        assert_eq!(open(&config, "").await.finish().cache_control([&b"public, max-age=600"[..]]), None);
        // A page that shows a CSRF token sets no cookie once the pre-session
        // came with the request: kept out of shared caches all the same, or
        // a CDN would serve one visitor's token to every other.
        let first = open(&config, "").await;
        first.csrf_token().unwrap();
        let pre = pair(&first.finish().set_cookies[0]).to_owned();
        let again = open(&config, &pre).await;
        again.csrf_token().unwrap();
        let shown = again.finish();
        assert!(shown.set_cookies.is_empty());
        assert_eq!(shown.cache_control([&b"public, max-age=300"[..]]), Some("no-store"));
        assert_eq!(shown.cache_control([&b"private"[..]]), None);
        let cookie = signed_in(&config, "alice").await;
        let handle = open(&config, &cookie).await;
        let _ = handle.current::<String>().unwrap().csrf_token();
        assert_eq!(handle.finish().cache_control([&b"public"[..]]), Some("no-store"), "a session's token");
        let handle = open(&config, &cookie).await;
        let _ = handle.sealer().csrf_token(handle.current::<String>().unwrap().session());
        assert_eq!(handle.finish().cache_control([&b"public"[..]]), Some("no-store"), "through the sealer");

        // A bearer token in a header: no-store over whatever the app set,
        // since a shared cache may keep a `public` answer to a request with
        // `Authorization`.
        let config = config_with(Keyring::generate().unwrap(), |b| b.bearer_tokens());
        let handle = ready(&config, &TestRequest::new("GET", "/").header("authorization", "Bearer")).await;
        handle.typed::<String>().login("alice", String::new()).await.unwrap();
        let response = handle.finish();
        assert!(response.session_token.is_some());
        assert_eq!(response.cache_control([&b"public, max-age=60"[..]]), Some("no-store"));
        assert_eq!(response.cache_control([&b"private"[..]]), Some("no-store"));
        assert_eq!(response.cache_control([]), Some("no-store"));
        assert_eq!(response.cache_control([&b"no-store, private"[..]]), None);
        let mut written = TestResponse::default().with_header("cache-control", "private");
        response.write_to(&mut written);
        assert_eq!(written.get_all("x-session-token").len(), 1);
        assert!(written.get_all("set-cookie").is_empty());
        assert_eq!(written.get_all("cache-control"), ["no-store"]);
    });
}

#[test]
fn the_defaults_are_the_documented_ones() {
    use sealed_session::web::{DEFAULT_FORM_LIMIT, FLASH_TIMEOUT, PRE_SESSION_TIMEOUT};
    assert_eq!(DEFAULT_FORM_LIMIT, 65_536);
    assert_eq!(PRE_SESSION_TIMEOUT.as_secs(), 7_200);
    assert_eq!(FLASH_TIMEOUT.as_secs(), 600);
    pollster::block_on(async {
        let limit = |config: Config| async move {
            let cookie = signed_in(&config, "alice").await;
            let form = post(&cookie, None).header("content-type", "application/x-www-form-urlencoded");
            match config.begin(&form).await {
                Begin::ReadForm(read) => read.limit(),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(limit(config()).await, 65_536);
        assert_eq!(limit(config_with(Keyring::generate().unwrap(), |b| b.form_limit(100))).await, 100);
    });
}

#[test]
fn a_cookie_of_another_name_is_read_written_and_removed_under_that_name() {
    pollster::block_on(async {
        let spec = sealed_session::CookieSpec::named("__Host-app").unwrap();
        let config = config_with(Keyring::generate().unwrap(), |b| b.cookie(spec));
        assert_eq!(config.cookie().name(), "__Host-app");
        let cookie = signed_in(&config, "alice").await;
        assert!(cookie.starts_with("__Host-app="), "{cookie}");
        assert_eq!(who(&open(&config, &cookie).await).unwrap().0.as_deref(), Some("alice"));
        let cookies = set_cookies(&open(&config, &format!("{cookie}x")).await);
        assert!(cookies[0].starts_with("__Host-app=;"), "{cookies:?}");
    });
}

#[test]
fn a_configured_origin_is_the_one_expected_whatever_the_host() {
    pollster::block_on(async {
        let config = config_with(Keyring::generate().unwrap(), |b| b.origin("https://app.example/"));
        let cookie = signed_in(&config, "alice").await;
        let token = open(&config, &cookie).await.csrf_token().unwrap();
        let from = |origin: &str| {
            with_cookie(TestRequest::new("POST", "/cart"), &cookie)
                .with_authority(Some("10.0.0.7:8080"))
                .header("x-csrf-token", &token)
                .header("origin", origin)
        };
        ready(&config, &from("https://app.example")).await;
        refused(&config, &from("https://10.0.0.7:8080")).await;
    });
}

/// Without a configured origin, the expected one is the request's host,
/// compared as browsers write an `Origin`: a `Host` with the default port
/// (as some proxies pass it) names the same origin as one without.
#[test]
fn the_host_s_default_port_names_the_same_origin() {
    pollster::block_on(async {
        let config = config_with(Keyring::generate().unwrap(), |b| b);
        let cookie = signed_in(&config, "alice").await;
        let token = open(&config, &cookie).await.csrf_token().unwrap();
        let from = |host: &str, origin: &str| {
            with_cookie(TestRequest::new("POST", "/cart"), &cookie)
                .with_authority(Some(host))
                .header("x-csrf-token", &token)
                .header("origin", origin)
        };
        ready(&config, &from("app.example:443", "https://app.example")).await;
        refused(&config, &from("app.example:443", "https://evil.example")).await;
        refused(&config, &from("app.example:8443", "https://app.example")).await;
        refused(&config, &from("app.example:80", "https://app.example")).await;
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
    use std::time::Duration;
    pollster::block_on(async {
        let remember = LoginOptions::default().remember(true);
        // A browser-session cookie, but for a remembered session.
        let spec = || sealed_session::CookieSpec::default().browser_session();
        let config = config_with(Keyring::generate().unwrap(), |b| b.cookie(spec()));
        let handle = open(&config, "").await;
        let err = handle
            .typed::<String>()
            .login_with_options("alice", remember, |_| String::new())
            .await
            .unwrap_err();
        assert!(matches!(err, HandleError::Seal(sealed_session::SealError::NoRememberMe)), "{err:?}");
        assert!(set_cookies(&handle).is_empty(), "nothing changed");

        let sealer = Sealer::builder(Keyring::generate().unwrap())
            .remember_me(Duration::from_secs(30 * 86_400), Duration::from_secs(7 * 86_400));
        let config = Arc::new(WebConfig::builder(sealer, MemoryStore::new()).cookie(spec()).build().unwrap());
        let handle = open(&config, "").await;
        handle.typed::<String>().login_with_options("alice", remember, |_| String::new()).await.unwrap();
        let cookie = set_cookies(&handle).remove(0);
        assert!(cookie.contains("Max-Age=2592000"), "{cookie}");
        let remembered = open(&config, pair(&cookie)).await.current::<String>().unwrap();
        assert!(remembered.is_remembered());
        let handle = open(&config, "").await;
        handle
            .typed::<String>()
            .login_with_options("alice", LoginOptions::default(), |_| String::new())
            .await
            .unwrap();
        let cookie = set_cookies(&handle).remove(0);
        assert!(!cookie.contains("Max-Age"), "{cookie}");
    });
}

#[test]
fn an_anonymous_session_starts_on_the_first_change_and_login_replaces_it() {
    pollster::block_on(async {
        let config = config();
        let handle = with_cart(&config).await;
        let anonymous = handle.current::<String>().unwrap();
        assert_eq!((anonymous.user_id(), anonymous.data().as_str()), (None, "tea"));
        let cookie = pair(&set_cookies(&handle)[0]).to_owned();

        let handle = open(&config, &cookie).await;
        let signed_in =
            handle.typed::<String>().login_with("alice", |before| before.unwrap().into_data()).await.unwrap();
        assert_eq!(signed_in.data(), "tea", "carried over");
        assert_ne!(signed_in.id(), anonymous.id(), "a new session ID");
        assert!(!open(&config, &cookie).await.has_session(), "the anonymous session is logged out");
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
        let old_id = handle.current::<String>().unwrap().id();
        handle.renew_id().await.unwrap();
        let renewed_session = handle.current::<String>().unwrap();
        assert_ne!(renewed_session.id(), old_id);
        assert_eq!(renewed_session.data(), "ALICE");
        let renewed = pair(&set_cookies(&handle)[0]).to_owned();
        assert!(!open(&config, &cookie).await.has_session(), "the old ID is revoked");
        assert_eq!(who(&open(&config, &renewed).await).unwrap().1, "ALICE");

        // Logout: revoked, and the cookie removed.
        let handle = open(&config, &renewed).await;
        handle.logout().await.unwrap();
        assert!(!handle.has_session());
        assert!(set_cookies(&handle)[0].starts_with("__Host-session=;"));
        assert!(!open(&config, &renewed).await.has_session());

        // Everywhere: the user's other session dies too.
        let third = signed_in(&config, "alice").await;
        let handle = open(&config, &third).await;
        assert_eq!(handle.logout_everywhere().await.unwrap(), 1, "the user's new epoch");
        assert!(set_cookies(&handle)[0].starts_with("__Host-session=;"));
        assert!(!open(&config, &other).await.has_session());
        assert!(!open(&config, &third).await.has_session());
        assert!(matches!(open(&config, "").await.logout_everywhere().await, Err(HandleError::NoSession)));
    });
}

/// With `clear_site_data_on_logout`, a logout's response (and a logout
/// everywhere's) asks the browser to clear what was configured, each kind
/// once, beside any `Clear-Site-Data` of the application's; no other
/// response does: not without the setting, not a request that only reads
/// or ends the user's other sessions, not a bearer-token client. A cookie
/// the response sets after the logout (a new session, a login form's
/// pre-session) is kept: all but `"cookies"` is still cleared; and so is
/// the cookie of a logout everywhere answered as a logout (its session had
/// ended, or there was none), but for one this server cannot read.
#[test]
fn a_logout_asks_the_browser_to_clear_what_was_configured() {
    use sealed_session::web::ClearSiteData::{Cache, Cookies, Storage};
    /// The `Clear-Site-Data` values of the handle's response, written over
    /// one the application set, and its `Cache-Control`.
    fn cleared(handle: &SessionHandle) -> (Vec<String>, Vec<String>) {
        let mut written = TestResponse::default().with_header("clear-site-data", "\"executionContexts\"");
        handle.finish().write_to(&mut written);
        let values = |name| written.get_all(name).into_iter().map(str::to_owned).collect::<Vec<_>>();
        (values("clear-site-data").split_off(1), values("cache-control"))
    }
    let none = (vec![], vec![]);
    let all = || vec!["\"cache\", \"cookies\", \"storage\"".to_owned()];
    let keeping_cookies = || vec!["\"cache\", \"storage\"".to_owned()];
    pollster::block_on(async {
        let plain = config();
        let handle = open(&plain, &signed_in(&plain, "alice").await).await;
        handle.logout().await.unwrap();
        assert!(cleared(&handle).0.is_empty(), "not asked for");

        let config = config_with(Keyring::generate().unwrap(), |b| {
            b.clear_site_data_on_logout([Storage, Cookies, Cache, Storage]).bearer_tokens()
        });
        let cookie = signed_in(&config, "alice").await;
        assert_eq!(cleared(&open(&config, &cookie).await), none, "a request that only reads");
        let handle = open(&config, "").await;
        handle.typed::<String>().login("carol", "CAROL".into()).await.unwrap();
        assert!(cleared(&handle).0.is_empty(), "a login");
        let handle = open(&config, &cookie).await;
        handle.logout().await.unwrap();
        assert_eq!(cleared(&handle).0, all(), "the application's value kept, this one beside it");
        // A logout without a session (it lapsed) still clears the browser.
        let handle = open(&config, "").await;
        handle.logout().await.unwrap();
        assert_eq!(cleared(&handle).0, all());
        let handle = open(&config, &signed_in(&config, "alice").await).await;
        handle.logout_everywhere().await.unwrap();
        assert_eq!(cleared(&handle).0, all());
        let handle = open(&config, &signed_in(&config, "alice").await).await;
        handle.logout_others().await.unwrap();
        assert!(cleared(&handle).0.is_empty(), "this browser stays signed in");

        // Signed out, then in as another user, or into an anonymous session:
        // the new session's cookie stays.
        let handle = open(&config, &signed_in(&config, "alice").await).await;
        handle.logout().await.unwrap();
        handle.typed::<String>().login("bob", "BOB".into()).await.unwrap();
        assert_eq!(cleared(&handle).0, keeping_cookies(), "a login after the logout");
        let handle = open(&config, &signed_in(&config, "alice").await).await;
        handle.logout().await.unwrap();
        handle.typed::<String>().update_or_insert(String::new, |cart| cart.push('x')).await.unwrap();
        assert_eq!(cleared(&handle).0, keeping_cookies(), "an anonymous session after the logout");
        let handle = open(&config, &signed_in(&config, "alice").await).await;
        handle.logout().await.unwrap();
        handle.csrf_token().unwrap();
        assert_eq!(cleared(&handle).0, keeping_cookies(), "a login form after the logout");
        let handle = open(&config, &signed_in(&config, "alice").await).await;
        handle.logout().await.unwrap();
        handle.flash(Level::Success, "Signed out").unwrap();
        assert_eq!(cleared(&handle).0, keeping_cookies(), "a flash message after the logout");
        let handle = open(&config, &signed_in(&config, "alice").await).await;
        handle.flash(Level::Success, "Signed out").unwrap();
        handle.logout().await.unwrap();
        assert_eq!(cleared(&handle).0, keeping_cookies(), "a flash message before the logout");

        // "Log out everywhere" answered as a logout: the session ended
        // meanwhile (a double submit's second request), or there was none.
        let cookie = signed_in(&config, "alice").await;
        let (first, second) = (open(&config, &cookie).await, open(&config, &cookie).await);
        first.logout_everywhere().await.unwrap();
        let ended = second.logout_everywhere().await.unwrap_err();
        assert!(matches!(ended, HandleError::Login(sealed_session::LoginError::Ended)), "{ended:?}");
        assert_eq!(cleared(&second).0, keeping_cookies());
        let handle = open(&config, "").await;
        assert!(matches!(handle.logout_everywhere().await, Err(HandleError::NoSession)));
        // No cookie changes: kept from shared caches all the same.
        assert_eq!(cleared(&handle), (keeping_cookies(), vec!["no-store".to_owned()]));
        // After a logout (which removes the cookie), all of it still.
        let handle = open(&config, &signed_in(&config, "alice").await).await;
        handle.logout().await.unwrap();
        assert!(matches!(handle.logout_everywhere().await, Err(HandleError::NoSession)));
        assert_eq!(cleared(&handle).0, all());
        // A cookie under a key this server lacks: its session may be alive
        // on the servers that have it, so nothing is cleared here.
        let keyring = Keyring::generate().unwrap();
        let (next, id) = keyring.with_new_key().unwrap();
        let server = |keyring: Keyring| {
            config_with(keyring, |b| b.clear_site_data_on_logout([Storage, Cookies, Cache]))
        };
        let (ahead, behind) = (server(next.with_primary(id).unwrap()), server(keyring));
        let handle = open(&behind, &signed_in(&ahead, "alice").await).await;
        assert!(matches!(handle.logout_everywhere().await, Err(HandleError::NoSession)));
        assert_eq!(cleared(&handle), none, "a session this server cannot read");

        let bob = config.verifier().login("bob", "BOB".to_owned()).await.unwrap();
        let (token, _) = config.verifier().issue(bob).unwrap();
        let request = TestRequest::new("GET", "/").header("authorization", format!("Bearer {token}"));
        let handle = ready(&config, &request).await;
        handle.logout().await.unwrap();
        assert!(cleared(&handle).0.is_empty(), "a bearer-token client has no browser to clear");
        assert!(!ready(&config, &request).await.has_session(), "but its session ended");
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
fn refusals_and_handle_errors_answer_with_their_status_and_a_body_that_says_no_more() {
    let cases = [
        (CsrfRefusal::TooLarge, 413, "form too large"),
        (CsrfRefusal::Unreadable, 400, "unreadable request body"),
        (CsrfRefusal::NoBinding, 403, "CSRF check failed"),
        (CsrfRefusal::Csrf(CsrfError::Invalid), 403, "CSRF check failed"),
    ];
    for (refusal, status, body) in cases {
        assert_eq!((refusal.status(), refusal.body()), (status, body), "{refusal:?}");
    }
    let store = || StoreError::unavailable(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
    let errors = [
        (HandleError::NoSession, 401, "no session"),
        (HandleError::UnreadableSession, 503, "session unavailable on this server, try again"),
        (HandleError::Store(store()), 503, "session store unavailable, try again"),
        (
            HandleError::Login(sealed_session::LoginError::Store(store())),
            503,
            "session store unavailable, try again",
        ),
        (HandleError::Seal(sealed_session::SealError::NoRememberMe), 500, "internal error"),
        (HandleError::NoLayer, 500, "internal error"),
    ];
    for (err, status, body) in errors {
        assert_eq!((err.status(), err.body()), (status, body), "{err:?}");
    }
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
        let request =
            alice.headers().iter().fold(TestRequest::new("POST", "/cart"), |r, (n, v)| r.header(n, v));
        assert_eq!(who(&ready(&config, &request).await).unwrap().0.as_deref(), Some("alice"));
    });
}

#[test]
fn signing_out_the_other_sessions_keeps_this_one_under_a_new_id_and_epoch() {
    pollster::block_on(async {
        let config = config();
        let here = signed_in(&config, "alice").await;
        let phone = signed_in(&config, "alice").await;
        let bob = signed_in(&config, "bob").await;

        let handle = open(&config, &here).await;
        let before = handle.current::<String>().unwrap().session().clone();
        let epoch = handle.logout_others().await.unwrap();
        assert_eq!(epoch, before.epoch() + 1);
        let now = handle.current::<String>().unwrap().session().clone();
        assert_ne!(now.id(), before.id(), "a new ID, as after any privilege change");
        assert_eq!((now.epoch(), now.data().as_str()), (epoch, "ALICE"));
        let cookies = set_cookies(&handle);
        assert_eq!(cookies.len(), 1);
        let kept = pair(&cookies[0]).to_owned();

        assert_eq!(who(&open(&config, &kept).await), Some((Some("alice".into()), "ALICE".into())));
        assert!(!open(&config, &phone).await.has_session(), "the other session ended");
        assert!(!open(&config, &here).await.has_session(), "so did every copy of this one's old cookie");
        assert!(open(&config, &bob).await.has_session(), "another user's sessions stay");

        // Without a signed-in session there is nothing to keep.
        let anonymous = open(&config, "").await;
        assert!(matches!(anonymous.logout_others().await, Err(HandleError::NoSession)));
    });
}

/// A request that opened its session before another request logged it out
/// (a slow upload, a body sent a byte at a time) cannot carry it on under a
/// new ID or epoch: that would bring back a session the user ended, after
/// "log out everywhere" too.
#[test]
fn a_session_logged_out_while_a_request_ran_is_not_carried_on() {
    pollster::block_on(async {
        let (config, recorder, clock) = audited();
        let ended = |result: Result<_, HandleError>| {
            let err = result.expect_err("refused");
            assert!(matches!(err, HandleError::Login(sealed_session::LoginError::Ended)), "{err:?}");
            assert_eq!((err.status(), err.body()), (401, "no session"));
        };
        // A logout, then a new ID.
        let cookie = signed_in(&config, "alice").await;
        let slow = open(&config, &cookie).await;
        open(&config, &cookie).await.logout().await.unwrap();
        recorder.take();
        ended(slow.renew_id().await);
        assert!(!slow.has_session());
        // No cookie: the old one no longer opens, and one another request
        // of the browser set (a double submit's winner) is left alone.
        assert_eq!(set_cookies(&slow), Vec::<String>::new());
        assert!(recorder.take().is_empty(), "the logout was audited already");
        assert!(!open(&config, &cookie).await.has_session());
        // Nor one this handler sealed before the new ID (a change, then a
        // new ID for the new privileges): it carries the ended ID.
        let cookie = signed_in(&config, "alice").await;
        let slow = open(&config, &cookie).await;
        slow.typed::<String>().update(|data| data.push('!')).unwrap();
        open(&config, &cookie).await.logout().await.unwrap();
        ended(slow.renew_id().await);
        assert_eq!(set_cookies(&slow), Vec::<String>::new());
        recorder.take();

        // A logout everywhere, or of this session alone ("end this
        // device"), then signing out the others: no new ID and epoch bring
        // it back, and the ended session signs no one out (the session
        // signed in since carries on, the epoch stays).
        for everywhere in [true, false] {
            let cookie = signed_in(&config, "alice").await;
            let slow = open(&config, &cookie).await;
            if everywhere {
                open(&config, &cookie).await.logout_everywhere().await.unwrap();
            } else {
                open(&config, &cookie).await.logout().await.unwrap();
            }
            let again = signed_in(&config, "alice").await;
            let epoch = config.verifier().store().login_state("alice").await.unwrap().user_epoch;
            recorder.take();
            ended(slow.logout_others().await.map(drop));
            assert!(!slow.has_session());
            assert_eq!(set_cookies(&slow), Vec::<String>::new());
            assert!(recorder.take().is_empty(), "nothing changed, nothing audited");
            assert!(open(&config, &again).await.has_session(), "everywhere: {everywhere}");
            let after = config.verifier().store().login_state("alice").await.unwrap().user_epoch;
            assert_eq!(after, epoch, "everywhere: {everywhere}");
        }

        // Nor does a password confirmed meanwhile (reauthentication), after
        // a logout of this session, of every session of the user, or of
        // everyone.
        for ending in ["this", "everywhere", "everyone"] {
            let cookie = signed_in(&config, "alice").await;
            let slow = open(&config, &cookie).await;
            let other = open(&config, &cookie).await;
            match ending {
                "this" => other.logout().await.unwrap(),
                "everywhere" => drop(other.logout_everywhere().await.unwrap()),
                _ => {
                    config.verifier().logout_all().await.unwrap();
                    clock.advance(std::time::Duration::from_secs(2));
                }
            }
            recorder.take();
            ended(slow.typed::<String>().reauthenticate().await.map(drop));
            assert!(!slow.has_session());
            assert_eq!(set_cookies(&slow), Vec::<String>::new(), "{ending}");
            assert!(recorder.take().is_empty(), "no reauthentication is audited");
        }

        // The verifier's own calls refuse the same way.
        let verifier = config.verifier();
        let sealed = verifier.sealer().seal(&verifier.login("bob", ()).await.unwrap()).unwrap();
        let mut session = verifier.open::<()>(&sealed).await.unwrap().into_session();
        verifier.logout_everywhere("bob").await.unwrap();
        let since = verifier.sealer().seal(&verifier.login("bob", ()).await.unwrap()).unwrap();
        let before = (session.id(), session.epoch());
        let refused = verifier.logout_others(&mut session).await;
        assert!(matches!(refused, Err(sealed_session::LoginError::Ended)), "{refused:?}");
        assert_eq!((session.id(), session.epoch()), before, "the session is unchanged");
        assert!(verifier.open::<()>(&since).await.is_ok(), "an ended session signs no one out");
        let sealed = verifier.sealer().seal(&verifier.login("bob", ()).await.unwrap()).unwrap();
        let mut session = verifier.open::<()>(&sealed).await.unwrap().into_session();
        verifier.logout(&session).await.unwrap();
        let before = (session.id(), session.epoch());
        let refused = verifier.logout_others(&mut session).await;
        assert!(matches!(refused, Err(sealed_session::LoginError::Ended)), "{refused:?}");
        assert_eq!((session.id(), session.epoch()), before, "a session logged out is unchanged");
        assert!(verifier.open::<()>(&since).await.is_ok(), "a session logged out signs no one out");
        // A session held as `login` returned it (sealed, but with no times
        // of its own) is refused whatever happened since: nothing tells
        // whether a logout of everyone ended it, and its new seal would be
        // dated after it (found by review).
        let mut session = verifier.login("bob", ()).await.unwrap();
        let sealed = verifier.sealer().seal(&session).unwrap();
        verifier.logout_all().await.unwrap();
        let epoch = verifier.store().login_state("bob").await.unwrap().user_epoch;
        let refused = verifier.logout_others(&mut session).await;
        assert!(matches!(refused, Err(sealed_session::LoginError::Unsealed)), "{refused:?}");
        let refused = verifier.renew_id(&mut session).await;
        assert!(matches!(refused, Err(sealed_session::LoginError::Unsealed)), "{refused:?}");
        assert_eq!(verifier.store().login_state("bob").await.unwrap().user_epoch, epoch, "nothing changed");
        assert!(verifier.open::<()>(&sealed).await.is_err());
        clock.advance(std::time::Duration::from_secs(2));
        // A new ID for a session whose ID was ended meanwhile is refused.
        let (sealed, opened) = verifier.issue(verifier.login("bob", ()).await.unwrap()).unwrap();
        let mut session = opened.into_session();
        let mut other = session.clone();
        verifier.renew_id(&mut other).await.unwrap();
        let refused = verifier.renew_id(&mut session).await;
        assert!(matches!(refused, Err(sealed_session::LoginError::Ended)), "{refused:?}");
        assert!(verifier.open::<()>(&sealed).await.is_err());
    });
}

/// A new ID and signing the other sessions out keep the session's issue
/// time and absolute expiry: neither gives a thief a fresh session, nor a
/// recent sign-in for `authenticated_within`.
#[test]
fn a_new_id_and_signing_out_the_others_keep_the_issue_time_and_expiry() {
    use std::time::Duration;
    pollster::block_on(async {
        let (config, _, clock) = listed(|b| b);
        let cookie = sign_in_from(&config, "alice", CHROME).await;
        let times = |handle: &SessionHandle| {
            let session = handle.current::<String>().unwrap().session().clone();
            (session.issued_at().unwrap().unix_timestamp(), session.expires_at().unwrap().unix_timestamp())
        };
        let first = times(&on(&config, &cookie).await);
        assert_eq!(first.0, AUDIT_START);

        clock.advance(Duration::from_secs(600));
        let handle = on(&config, &cookie).await;
        handle.renew_id().await.unwrap();
        assert_eq!(times(&handle), first, "a new ID");
        assert!(!handle.authenticated_within(Duration::from_secs(300)), "no recent sign-in");
        let renewed = pair(&set_cookies(&handle)[0]).to_owned();
        assert_eq!(times(&on(&config, &renewed).await), first, "as sealed");

        clock.advance(Duration::from_secs(600));
        let handle = on(&config, &renewed).await;
        handle.logout_others().await.unwrap();
        assert_eq!(times(&handle), first, "signing out the others");
        assert!(!handle.authenticated_within(Duration::from_secs(300)));
        let kept = pair(&set_cookies(&handle)[0]).to_owned();
        assert_eq!(times(&on(&config, &kept).await), first, "as sealed");
    });
}

#[test]
fn a_verifier_signs_out_the_other_sessions_and_keeps_the_one_it_is_given() {
    pollster::block_on(async {
        let verifier = sealed_session::Verifier::new(
            Sealer::builder(Keyring::generate().unwrap()).build().unwrap(),
            MemoryStore::new(),
        );
        let laptop = verifier.sealer().seal(&verifier.login("alice", ()).await.unwrap()).unwrap();
        let (old_phone, phone) = verifier.issue(verifier.login("alice", ()).await.unwrap()).unwrap();
        let mut phone = phone.into_session();
        let old_id = phone.id();

        let epoch = verifier.logout_others(&mut phone).await.unwrap();
        assert_eq!((epoch, phone.epoch()), (1, 1));
        assert_ne!(phone.id(), old_id);
        let phone = verifier.sealer().seal(&phone).unwrap();
        assert!(verifier.open::<()>(&phone).await.is_ok());
        assert!(verifier.open::<()>(&laptop).await.is_err());
        assert!(verifier.open::<()>(&old_phone).await.is_err());

        let mut anonymous = verifier.start(()).await.unwrap();
        assert!(matches!(
            verifier.logout_others(&mut anonymous).await,
            Err(sealed_session::LoginError::NoUser)
        ));
    });
}

/// The handle of a request with no cookie whose handler started an
/// anonymous session holding the cart "tea".
async fn with_cart(config: &Config) -> SessionHandle {
    let handle = open(config, "").await;
    handle.typed::<String>().update_or_insert(String::new, |cart| cart.push_str("tea")).await.unwrap();
    handle
}

/// An audit sink that panics (one writing to a closed stdout with
/// `println!`) loses its event, not the request: the login it reports
/// is made and its cookie set.
#[test]
fn a_panicking_audit_sink_loses_its_event_not_the_request() {
    pollster::block_on(async {
        let down = |_: &AuditEvent| panic!("the audit log is down");
        let config = config_with(Keyring::generate().unwrap(), |b| b.audit(down));
        let handle = ready(&config, &TestRequest::new("GET", "/")).await;
        handle.typed::<String>().login("alice", "A".into()).await.unwrap();
        let cookie = pair(&set_cookies(&handle)[0]).to_owned();
        assert!(on(&config, &cookie).await.has_session());
    });
}

/// 2027-01-15T08:00:00Z.
const AUDIT_START: i64 = 1_800_000_000;

fn audited() -> (Config, Recorder, ManualClock) {
    let (recorder, clock) = (Recorder::default(), ManualClock::at_unix(AUDIT_START));
    let sealer = Sealer::builder(Keyring::generate().unwrap())
        .clock(clock.clone())
        .idle_timeout(std::time::Duration::from_secs(600));
    let store = MemoryStore::with_clock(clock.clone());
    let config = WebConfig::builder(sealer, store).audit(recorder.clone()).build().unwrap();
    (Arc::new(config), recorder, clock)
}

/// A request that opened its session just before its idle timeout still
/// changes it, however slow it runs, within the clock leeway (60 s); past
/// that the session ended while it ran: `401`, not a server error.
#[test]
fn a_session_that_idles_out_while_its_request_runs_is_sealed_within_the_leeway_then_refused() {
    use std::time::Duration;
    pollster::block_on(async {
        let (config, _, clock) = audited();
        let cookie = signed_in(&config, "alice").await;
        clock.advance(Duration::from_secs(599));
        let (quick, slow) = (open(&config, &cookie).await, open(&config, &cookie).await);
        clock.advance(Duration::from_secs(60));
        quick.typed::<String>().update(|data| data.push('!')).unwrap();
        assert_eq!(set_cookies(&quick).len(), 1, "sealed anew");
        clock.advance(Duration::from_secs(1));
        let err = slow.typed::<String>().update(|data| data.push('!')).unwrap_err();
        assert!(matches!(err, HandleError::Seal(sealed_session::SealError::Expired)), "{err:?}");
        assert_eq!(err.status(), 401);
    });
}

/// The ID of the handle's session.
fn id_of(handle: &SessionHandle) -> SessionId {
    handle.current::<String>().unwrap().session().id()
}

/// The one event recorded since the last call, its kind, user, session and
/// the session it replaced.
fn only(recorder: &Recorder) -> (AuditKind, Option<String>, Option<SessionRef>, Option<SessionRef>) {
    let events = recorder.take();
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    (event.kind, event.user_id.clone(), event.session, event.previous)
}

#[test]
fn logins_logouts_and_new_ids_are_audited_with_the_user_and_session_references() {
    pollster::block_on(async {
        let (config, recorder, _clock) = audited();
        let alice = Some("alice".to_owned());
        let handle = open(&config, "").await;
        handle.typed::<String>().login("alice", "A".into()).await.unwrap();
        let first = id_of(&handle);
        assert_eq!(
            only(&recorder),
            (AuditKind::Login { remembered: false }, alice.clone(), Some(SessionRef::of(first)), None)
        );
        assert_eq!(recorder.0.lock().unwrap().len(), 0);

        handle.renew_id().await.unwrap();
        let second = id_of(&handle);
        let renewed =
            (AuditKind::IdRenewed, alice.clone(), Some(SessionRef::of(second)), Some(SessionRef::of(first)));
        assert_eq!(only(&recorder), renewed);

        handle.logout_others().await.unwrap();
        let third = id_of(&handle);
        let others = (SessionRef::of(third), SessionRef::of(second));
        assert_eq!(
            only(&recorder),
            (AuditKind::LogoutOthers { epoch: 1 }, alice.clone(), Some(others.0), Some(others.1))
        );

        // A login over a session names the one it replaced.
        handle.typed::<String>().login("alice", "A".into()).await.unwrap();
        let fourth = id_of(&handle);
        let login = (
            AuditKind::Login { remembered: false },
            alice.clone(),
            Some(SessionRef::of(fourth)),
            Some(SessionRef::of(third)),
        );
        assert_eq!(only(&recorder), login);

        handle.logout().await.unwrap();
        assert_eq!(only(&recorder), (AuditKind::Logout, alice.clone(), Some(SessionRef::of(fourth)), None));
        // Logging out without a session ends nothing: no event.
        handle.logout().await.unwrap();
        assert!(recorder.take().is_empty());

        let handle = open(&config, &signed_in(&config, "alice").await).await;
        let fifth = id_of(&handle);
        handle.logout_everywhere().await.unwrap();
        assert_eq!(
            only(&recorder),
            (AuditKind::LogoutEverywhere { epoch: 2 }, alice, Some(SessionRef::of(fifth)), None)
        );
    });
}

#[test]
fn a_change_the_store_did_not_record_is_not_audited() {
    pollster::block_on(async {
        let recorder = Recorder::default();
        let sealer = Sealer::builder(Keyring::generate().unwrap());
        let config =
            Arc::new(WebConfig::builder(sealer, UnreachableStore).audit(recorder.clone()).build().unwrap());
        let session = sealed_session::Session::new("A".to_owned()).with_user("alice", 0);
        let (_, set_cookie) = config.verifier().sealer().issue_cookie(session, config.cookie()).unwrap();
        // The store cannot be asked: the request is refused, and no
        // session was refused for a reason the audit log should record.
        let request = with_cookie(TestRequest::new("GET", "/"), pair(&set_cookie));
        assert_eq!(refused(&config, &request).await.status(), 503);
        let handle = ready(&config, &TestRequest::new("GET", "/")).await;
        assert!(handle.typed::<String>().login("alice", "A".into()).await.is_err());
        assert!(recorder.take().is_empty());
    });
}

/// A login, or `update_or_insert` over a session whose data is another
/// type, that the store cannot record the old session's end for stops
/// with `503` and starts no session: the login changes no cookie, and
/// `update_or_insert` only removes the cookie it cannot read as its type
/// (as reading it as that type does). The old session was not ended, and
/// still opens.
#[test]
fn a_replacement_whose_logout_the_store_refused_starts_no_session() {
    pollster::block_on(async {
        let config = interfered(|b| b);
        let cookie = signed_in(&config, "alice").await;
        let writes_fail = |fail: bool| {
            config.verifier().store().writes_fail.store(fail, std::sync::atomic::Ordering::Relaxed);
        };
        writes_fail(true);
        let request = with_cookie(TestRequest::new("GET", "/"), &cookie);
        let handle = ready(&config, &request).await;
        let failed = handle.typed::<String>().login("bob", "B".into()).await.unwrap_err();
        assert_eq!(failed.status(), 503, "{failed:?}");
        assert_eq!(set_cookies(&handle), Vec::<String>::new(), "a failed login changes no cookie");

        let handle = ready(&config, &request).await;
        let counter = handle.typed::<(u64, u64, u64)>();
        let failed = counter.update_or_insert(|| (0, 0, 0), |t| t.0 += 1).await.unwrap_err();
        assert_eq!(failed.status(), 503, "{failed:?}");
        let sent = set_cookies(&handle);
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert!(sent[0].starts_with("__Host-session=;"), "no new session, its cookie removed: {sent:?}");
        writes_fail(false);
        let after = ready(&config, &request).await;
        assert_eq!(
            after.current::<String>().unwrap().user_id(),
            Some("alice"),
            "the old session still opens"
        );
    });
}

/// A logout, a logout everywhere or a new ID whose write the store refused
/// (its reads working) is not audited: the log records what took effect.
#[test]
fn a_change_whose_write_failed_is_not_audited() {
    pollster::block_on(async {
        let recorder = Recorder::default();
        let config = interfered(|b| b.audit(recorder.clone()));
        let cookie = signed_in(&config, "alice").await;
        recorder.take();
        config.verifier().store().writes_fail.store(true, std::sync::atomic::Ordering::Relaxed);
        let request = with_cookie(TestRequest::new("GET", "/"), &cookie);
        assert!(ready(&config, &request).await.logout().await.is_err());
        assert!(ready(&config, &request).await.logout_everywhere().await.is_err());
        assert!(ready(&config, &request).await.renew_id().await.is_err());
        assert_eq!(recorder.take(), []);
        // The same calls with the writes working are audited.
        config.verifier().store().writes_fail.store(false, std::sync::atomic::Ordering::Relaxed);
        ready(&config, &request).await.renew_id().await.unwrap();
        assert_eq!(recorder.take().len(), 1);
    });
}

#[test]
fn refused_cookies_are_audited_by_reason_and_only_an_authenticated_one_names_its_user() {
    pollster::block_on(async {
        let (config, recorder, clock) = audited();
        let cookie = signed_in(&config, "alice").await;
        let handle = open(&config, &cookie).await;
        let id = id_of(&handle);
        handle.logout().await.unwrap();
        recorder.take();

        assert!(!open(&config, &cookie).await.has_session());
        let refusal = (
            AuditKind::SessionRefused { reason: "revoked_session" },
            Some("alice".to_owned()),
            Some(SessionRef::of(id)),
            None,
        );
        assert_eq!(only(&recorder), refusal);

        let (name, value) = cookie.split_once('=').unwrap();
        let mut tampered = value.to_owned().into_bytes();
        // A character in the middle: every bit of it counts, so the text
        // stays canonical base64url and only authentication can refuse it.
        let middle = tampered.len() / 2;
        tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
        let tampered = format!("{name}={}", String::from_utf8(tampered).unwrap());
        assert!(!open(&config, &tampered).await.has_session());
        assert_eq!(only(&recorder), (AuditKind::SessionRefused { reason: "invalid" }, None, None, None));

        assert!(!open(&config, &format!("{name}=not-a-token")).await.has_session());
        assert_eq!(only(&recorder), (AuditKind::SessionRefused { reason: "malformed" }, None, None, None));

        let idle = signed_in(&config, "bob").await;
        clock.advance(std::time::Duration::from_secs(601));
        assert!(!open(&config, &idle).await.has_session());
        assert_eq!(only(&recorder), (AuditKind::SessionRefused { reason: "expired_idle" }, None, None, None));
    });
}

#[test]
fn csrf_refusals_are_audited_by_reason_with_the_requests_user_and_session() {
    pollster::block_on(async {
        let (config, recorder, _clock) = audited();
        let cookie = signed_in(&config, "alice").await;
        let handle = open(&config, &cookie).await;
        let (id, token) = (id_of(&handle), handle.csrf_token().unwrap());
        recorder.take();
        let alice = (Some("alice".to_owned()), Some(SessionRef::of(id)), None);
        let refused_for = |reason| (AuditKind::CsrfRefused { reason }, alice.0.clone(), alice.1, alice.2);

        refused(&config, &post(&cookie, Some("nope"))).await;
        assert_eq!(only(&recorder), refused_for("invalid"));
        refused(&config, &post(&cookie, None)).await;
        assert_eq!(only(&recorder), refused_for("missing"));
        let cross_site = with_cookie(TestRequest::new("POST", "/cart"), &cookie)
            .header("sec-fetch-site", "cross-site")
            .header("x-csrf-token", &token);
        refused(&config, &cross_site).await;
        assert_eq!(only(&recorder), refused_for("cross_site"));
        let other_origin = with_cookie(TestRequest::new("POST", "/cart"), &cookie)
            .header("origin", "https://evil.example")
            .header("x-csrf-token", &token);
        refused(&config, &other_origin).await;
        assert_eq!(only(&recorder), refused_for("wrong_origin"));

        // The token in a form body, read after `begin`.
        let form = post(&cookie, None).header("content-type", "application/x-www-form-urlencoded");
        let read = |body: &'static str| {
            let (config, form) = (Arc::clone(&config), form.clone());
            async move {
                match config.begin(&form).await {
                    Begin::ReadForm(read) => read.check(body.as_bytes()),
                    other => panic!("the token is in the form: {other:?}"),
                }
            }
        };
        read("item=tea&csrf_token=nope").await.unwrap_err();
        assert_eq!(only(&recorder), refused_for("invalid"));
        // A body too large is not an attack sign: not recorded.
        match config.begin(&form).await {
            Begin::ReadForm(read) => drop(read.too_large()),
            other => panic!("the token is in the form: {other:?}"),
        }
        assert!(recorder.take().is_empty());

        // Without a session: no user, no session.
        let anonymous = post("", None).header("content-type", "application/x-www-form-urlencoded");
        refused(&config, &anonymous).await;
        assert_eq!(only(&recorder), (AuditKind::CsrfRefused { reason: "no_binding" }, None, None, None));
        // A request that passes records nothing.
        ready(&config, &post(&cookie, Some(&token))).await;
        assert!(recorder.take().is_empty());
        let json: serde_json::Value = serde_json::from_str(&{
            refused(&config, &post(&cookie, None)).await;
            recorder.take()[0].to_json()
        })
        .unwrap();
        assert_eq!((&json["event"], &json["reason"]), (&"csrf_refused".into(), &"missing".into()));
    });
}

#[test]
fn an_audit_event_is_one_json_line_with_no_secret_in_it() {
    pollster::block_on(async {
        let (config, recorder, _clock) = audited();
        let handle = open(&config, "").await;
        handle
            .typed::<String>()
            .login_with_options("alice", LoginOptions::default(), |_| "S3CRET".into())
            .await
            .unwrap();
        let id = id_of(&handle);
        let cookie = set_cookies(&handle).remove(0);
        let events = recorder.take();
        let line = events[0].to_json();
        assert!(!line.contains('\n'));
        let json: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "event": "login",
                "at": "2027-01-15T08:00:00Z",
                "user": "alice",
                "session": SessionRef::of(id).to_string(),
                "previous": null,
                "remembered": false,
            })
        );
        let token = pair(&cookie).split_once('=').unwrap().1;
        for secret in [token, &id.to_hex(), "S3CRET"] {
            assert!(!line.contains(secret) && !format!("{:?}", events[0]).contains(secret));
        }

        // A user ID holding what some reader takes for a line's end: one
        // line still, escaped, and read back as it was.
        let user = "a\nb\rc\u{85}d\u{2028}e\u{2029}f";
        let handle = open(&config, "").await;
        handle.typed::<String>().login(user, String::new()).await.unwrap();
        let line = recorder.take()[0].to_json();
        for end in ['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}'] {
            assert!(!line.contains(end), "{end:?} in {line:?}");
        }
        assert_eq!(serde_json::from_str::<serde_json::Value>(&line).unwrap()["user"], user);
    });
}

#[test]
fn a_session_reference_is_the_documented_one_way_hash_of_its_id() {
    // From Python: hashlib.sha256(b"sealed-session audit reference v1\0" + bytes(range(16))).hexdigest()[:16]
    let id = SessionId::from_hex("000102030405060708090a0b0c0d0e0f").unwrap();
    assert_eq!(SessionRef::of(id).to_string(), "fde1f30763925017");
    assert_eq!(format!("{:?}", SessionRef::of(id)), "SessionRef(fde1f30763925017)");
}

#[test]
fn the_last_authentication_is_the_login_or_a_reauthentication_and_activity_never_moves_it() {
    use sealed_session::redirect::RouteRefusal;
    use std::time::Duration;
    pollster::block_on(async {
        let (config, recorder, clock) = audited();
        let handle = open(&config, "").await;
        assert!(
            !handle.authenticated_within(Duration::from_secs(600)) && handle.authenticated_at().is_none()
        );
        let no_session = Some(RouteRefusal::NoSession);
        assert_eq!(handle.required_route_refusal(None), no_session);
        assert_eq!(handle.required_route_refusal(Some(Duration::from_secs(600))), no_session);
        assert_eq!(RouteRefusal::NoSession.json_body(), r#"{"error":"no session"}"#);
        assert!(matches!(handle.typed::<String>().reauthenticate().await, Err(HandleError::NoSession)));
        handle.typed::<String>().login("alice", "A".into()).await.unwrap();
        let cookie = pair(&set_cookies(&handle)[0]).to_owned();
        recorder.take();

        // Activity re-issues the cookie; the authentication stays as old.
        clock.advance(Duration::from_secs(599));
        let handle = open(&config, &cookie).await;
        handle.typed::<String>().update(|data| data.push('B')).unwrap();
        let cookie = pair(&set_cookies(&handle)[0]).to_owned();
        assert_eq!(handle.authenticated_at().unwrap().unix_timestamp(), AUDIT_START);
        assert!(handle.authenticated_within(Duration::from_secs(600)));
        clock.advance(Duration::from_secs(1));
        let handle = open(&config, &cookie).await;
        assert!(!handle.authenticated_within(Duration::from_secs(600)), "600 s is not less than 600 s");
        assert!(handle.authenticated_within(Duration::from_secs(601)));
        // What a route that requires a session, or a recent sign-in, answers.
        assert_eq!(handle.required_route_refusal(None), None);
        assert_eq!(handle.required_route_refusal(Some(Duration::from_secs(601))), None);
        assert_eq!(
            handle.required_route_refusal(Some(Duration::from_secs(600))),
            Some(RouteRefusal::Reauthenticate)
        );
        assert_eq!(RouteRefusal::Reauthenticate.json_body(), r#"{"error":"re-authentication required"}"#);

        let old = id_of(&handle);
        let current = handle.typed::<String>().reauthenticate().await.unwrap();
        assert_ne!(current.id(), old, "a new ID, as at a login");
        assert_eq!((current.user_id(), current.data().as_str(), current.epoch()), (Some("alice"), "AB", 0));
        assert_eq!(handle.authenticated_at().unwrap().unix_timestamp(), AUDIT_START + 600);
        assert!(handle.authenticated_within(Duration::from_secs(1)));
        let (kind, user, session, previous) = only(&recorder);
        assert_eq!((kind, user.as_deref()), (AuditKind::Reauthenticated, Some("alice")));
        assert_eq!((session, previous), (Some(SessionRef::of(current.id())), Some(SessionRef::of(old))));
        assert!(!open(&config, &cookie).await.has_session(), "the old cookie is logged out");
        let renewed = pair(&set_cookies(&handle)[0]).to_owned();
        assert_eq!(who(&open(&config, &renewed).await), Some((Some("alice".into()), "AB".into())));
        // On a server whose clock is 30 s behind (within the leeway) the
        // authentication is just now, never less than zero seconds old.
        clock.set_unix(AUDIT_START + 570);
        let behind = open(&config, &renewed).await;
        assert!(behind.authenticated_within(Duration::from_secs(1)));
        assert!(!behind.authenticated_within(Duration::ZERO), "no authentication is less than 0 s old");
    });
}

#[test]
fn a_remembered_session_stays_remembered_through_reauthentication() {
    use std::time::Duration;
    pollster::block_on(async {
        let sealer = Sealer::builder(Keyring::generate().unwrap())
            .remember_me(Duration::from_secs(30 * 86_400), Duration::from_secs(7 * 86_400));
        let cookie = sealed_session::CookieSpec::default().browser_session();
        let config = Arc::new(WebConfig::builder(sealer, MemoryStore::new()).cookie(cookie).build().unwrap());
        let handle = open(&config, "").await;
        let remember = LoginOptions::default().remember(true);
        handle.typed::<String>().login_with_options("alice", remember, |_| "A".into()).await.unwrap();
        let current = handle.typed::<String>().reauthenticate().await.unwrap();
        assert!(current.is_remembered());
        assert!(set_cookies(&handle)[0].contains("Max-Age="), "still a persistent cookie");
    });
}

/// A configuration whose memory store is also its session registry, on a
/// manual clock, with `change` applied.
fn listed(
    change: impl FnOnce(WebConfigBuilder<Arc<MemoryStore>>) -> WebConfigBuilder<Arc<MemoryStore>>,
) -> (Arc<WebConfig<Arc<MemoryStore>>>, Recorder, ManualClock) {
    let (recorder, clock) = (Recorder::default(), ManualClock::at_unix(AUDIT_START));
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    let sealer = Sealer::builder(Keyring::generate().unwrap())
        .clock(clock.clone())
        .renew_after(std::time::Duration::from_secs(300))
        .remember_me(std::time::Duration::from_secs(30 * 86_400), std::time::Duration::from_secs(7 * 86_400));
    let builder =
        WebConfig::builder(sealer, Arc::clone(&store)).session_registry(store).audit(recorder.clone());
    (Arc::new(change(builder).build().unwrap()), recorder, clock)
}

/// How many of `user`'s sessions the registry of a [`listed`]
/// configuration holds, revoked ones included (the device list drops
/// those).
async fn recorded(config: &WebConfig<Arc<MemoryStore>>, user: &str) -> usize {
    let store: &MemoryStore = config.verifier().store();
    sealed_session::SessionRegistry::list(store, user, AUDIT_START as u64).await.unwrap().len()
}

/// Signs `user` in from a browser that sends `agent`; its cookie.
async fn sign_in_from<S: RevocationStore + 'static>(
    config: &Arc<WebConfig<S>>,
    user: &str,
    agent: &str,
) -> String {
    let handle = ready(config, &TestRequest::new("GET", "/").header("user-agent", agent)).await;
    handle.typed::<String>().login(user, user.to_uppercase()).await.unwrap();
    pair(&set_cookies(&handle)[0]).to_owned()
}

async fn on<S: RevocationStore + 'static>(config: &Arc<WebConfig<S>>, cookie: &str) -> SessionHandle {
    ready(config, &with_cookie(TestRequest::new("GET", "/"), cookie)).await
}

const CHROME: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";
const FIREFOX: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0";

#[test]
fn a_user_sees_their_sessions_and_ends_another_device_through_the_denylist() {
    use std::time::Duration;
    pollster::block_on(async {
        let (config, recorder, clock) = listed(|b| b);
        let laptop = sign_in_from(&config, "alice", CHROME).await;
        clock.advance(Duration::from_secs(10));
        let phone = sign_in_from(&config, "alice", FIREFOX).await;
        let bob = sign_in_from(&config, "bob", CHROME).await;
        recorder.take();

        let here = on(&config, &laptop).await;
        let devices = here.devices().await.unwrap();
        let shown: Vec<_> = devices.iter().map(|d| (d.current, d.user_agent.as_str())).collect();
        assert_eq!(
            shown,
            [(true, "Chrome on Linux"), (false, "Firefox on Windows")],
            "oldest first, this one marked"
        );
        assert_eq!(devices[0].created_at.unix_timestamp(), AUDIT_START);
        assert_eq!(devices[1].created_at.unix_timestamp(), AUDIT_START + 10);
        assert!(!devices[0].remembered && !devices[0].device_bound);
        assert_eq!(devices[0].reference, SessionRef::of(id_of(&here)));

        // Neither this session nor another user's can be ended from here.
        assert!(!here.end_device(devices[0].reference).await.unwrap(), "log out ends this one");
        let bobs = on(&config, &bob).await.devices().await.unwrap()[0].reference;
        assert!(!here.end_device(bobs).await.unwrap(), "another user's session");
        assert!(on(&config, &bob).await.has_session());

        assert!(here.end_device(devices[1].reference).await.unwrap());
        let events = recorder.take();
        let json: serde_json::Value = serde_json::from_str(&events[0].to_json()).unwrap();
        assert_eq!(json["by"], devices[0].reference.to_string());
        recorder.0.lock().unwrap().extend(events);
        let (kind, user, session, _) = only(&recorder);
        assert_eq!(
            (kind, user.as_deref(), session),
            (AuditKind::DeviceEnded { by: devices[0].reference }, Some("alice"), Some(devices[1].reference))
        );
        assert!(!on(&config, &phone).await.has_session(), "the phone is logged out on every server");
        assert_eq!(here.devices().await.unwrap().len(), 1);
        assert!(!here.end_device(devices[1].reference).await.unwrap(), "an ended session ends once");
    });
}

/// A session logged out while one of its requests still runs (reading a
/// slow body, say) neither lists nor ends the user's sessions from that
/// request: it could end the very session that ended it.
#[test]
fn a_session_ended_during_its_request_neither_lists_nor_ends_devices() {
    pollster::block_on(async {
        let (config, _, _) = listed(|b| b);
        let laptop = sign_in_from(&config, "alice", CHROME).await;
        let here = on(&config, &laptop).await;
        // The intruder's request, opened before the owner acts.
        let slow = on(&config, &sign_in_from(&config, "alice", FIREFOX).await).await;
        let devices = here.devices().await.unwrap();
        let mine = devices.iter().find(|d| d.current).unwrap().reference;
        let theirs = devices.iter().find(|d| !d.current).unwrap().reference;
        assert!(here.end_device(theirs).await.unwrap(), "the owner ends the intruder's");
        let err = slow.end_device(mine).await.unwrap_err();
        assert!(matches!(err, HandleError::Login(sealed_session::LoginError::Ended)), "{err:?}");
        assert!(on(&config, &laptop).await.has_session(), "the owner's session carries on");
        assert!(!slow.has_session(), "the ended request has no session any more");

        // Listing, and after a logout everywhere the same.
        let slow = on(&config, &laptop).await;
        let other = sign_in_from(&config, "alice", FIREFOX).await;
        on(&config, &other).await.logout_everywhere().await.unwrap();
        assert!(matches!(slow.devices().await, Err(HandleError::Login(sealed_session::LoginError::Ended))));
        let fresh = sign_in_from(&config, "alice", CHROME).await;
        let slow = on(&config, &fresh).await;
        on(&config, &fresh).await.logout().await.unwrap();
        assert!(matches!(slow.devices().await, Err(HandleError::Login(sealed_session::LoginError::Ended))));
    });
}

/// The library logs no user ID and no whole session ID, at any level:
/// across sign-ins, the devices list, ending a device, a refused cookie,
/// a logout and a logout everywhere.
#[test]
fn the_library_logs_no_user_id_and_no_whole_session_id() {
    use tracing_subscriber::fmt::MakeWriter as _;
    const USER: &str = "user-7f3a9c";
    let logs: &'static std::sync::Mutex<Vec<u8>> = Box::leak(Box::default());
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || logs.make_writer())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let ids = pollster::block_on(async {
        let (config, _, _) = listed(|b| b);
        let laptop = sign_in_from(&config, USER, CHROME).await;
        let phone = sign_in_from(&config, USER, FIREFOX).await;
        let (here, there) = (on(&config, &laptop).await, on(&config, &phone).await);
        let ids = [id_of(&here), id_of(&there)];
        let devices = here.devices().await.unwrap();
        assert!(here.end_device(devices.iter().find(|d| !d.current).unwrap().reference).await.unwrap());
        assert!(!on(&config, &phone).await.has_session(), "a refused cookie");
        let again = sign_in_from(&config, USER, FIREFOX).await;
        on(&config, &again).await.logout().await.unwrap();
        here.logout_everywhere().await.unwrap();
        ids
    });
    let logged = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(!logged.is_empty(), "nothing was logged: the capture tests nothing");
    assert!(!logged.contains(USER), "{logged}");
    for id in ids {
        use base64::Engine as _;
        let base64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes());
        assert!(!logged.contains(&id.to_hex()[..8]) && !logged.contains(&base64[..12]), "{logged}");
        assert!(!logged.contains(&format!("{:?}", id.as_bytes())[..16]), "{logged}");
    }
}

/// An intruder's request still running when the owner ends its session
/// does not log the owner out everywhere: an ended session acts for no one.
#[test]
fn a_session_ended_during_its_request_does_not_log_the_user_out_everywhere() {
    pollster::block_on(async {
        let (config, _, _) = listed(|b| b);
        let laptop = sign_in_from(&config, "alice", CHROME).await;
        let slow = on(&config, &sign_in_from(&config, "alice", FIREFOX).await).await;
        let here = on(&config, &laptop).await;
        let theirs = here.devices().await.unwrap().into_iter().find(|d| !d.current).unwrap().reference;
        assert!(here.end_device(theirs).await.unwrap());
        let err = slow.logout_everywhere().await.unwrap_err();
        assert!(matches!(err, HandleError::Login(sealed_session::LoginError::Ended)), "{err:?}");
        assert!(!slow.has_session(), "the ended request has no session any more");
        assert!(on(&config, &laptop).await.has_session(), "the owner's session carries on");
        // A live session still logs its user out everywhere.
        assert!(here.logout_everywhere().await.is_ok());
        assert!(!on(&config, &laptop).await.has_session());
    });
}

/// A memory store that interferes: the check of the session `target` is
/// followed at once by that session taking a new ID elsewhere (its old ID
/// denylisted once, as `renew_id` and device binding do: the race between
/// listing a device and ending it); with `once_fails` every one-time
/// denylist write fails, and with `writes_fail` every write (before it is
/// made; reads work).
struct Interfering {
    store: Arc<MemoryStore>,
    target: std::sync::Mutex<Option<SessionId>>,
    once_fails: std::sync::atomic::AtomicBool,
    writes_fail: std::sync::atomic::AtomicBool,
    /// The next read of a user's login state is preceded by a logout of
    /// everyone (the store's system clock's now).
    everyone_out_at_login: std::sync::atomic::AtomicBool,
}

/// A configuration on an [`Interfering`] memory store, with `change` made.
fn interfered(
    change: impl FnOnce(WebConfigBuilder<Interfering>) -> WebConfigBuilder<Interfering>,
) -> Arc<WebConfig<Interfering>> {
    let store = Interfering::on(&Arc::new(MemoryStore::new()));
    Arc::new(
        change(WebConfig::builder(Sealer::builder(Keyring::generate().unwrap()), store)).build().unwrap(),
    )
}

impl Interfering {
    fn on(store: &Arc<MemoryStore>) -> Self {
        Self {
            store: Arc::clone(store),
            target: std::sync::Mutex::new(None),
            once_fails: Default::default(),
            writes_fail: Default::default(),
            everyone_out_at_login: Default::default(),
        }
    }

    /// An error if `failing` or writes fail.
    fn refused(&self, failing: bool) -> Result<(), StoreError> {
        if failing || self.writes_fail.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(StoreError::unavailable(std::io::Error::from(std::io::ErrorKind::TimedOut)));
        }
        Ok(())
    }
}

impl RevocationStore for Interfering {
    async fn state(
        &self,
        user_id: Option<&str>,
        session: SessionId,
    ) -> Result<sealed_session::RevocationState, StoreError> {
        let state = self.store.state(user_id, session).await;
        if self.target.lock().unwrap().take_if(|target| *target == session).is_some() {
            assert!(self.store.revoke_session_once(session, AUDIT_START as u64 + 86_400).await.unwrap());
        }
        state
    }

    async fn login_state(&self, user_id: &str) -> Result<sealed_session::LoginState, StoreError> {
        if self.everyone_out_at_login.swap(false, std::sync::atomic::Ordering::Relaxed) {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
            self.store.revoke_all(now).await?;
        }
        self.store.login_state(user_id).await
    }

    async fn revoke_user(&self, user_id: &str) -> Result<u64, StoreError> {
        self.refused(false)?;
        self.store.revoke_user(user_id).await
    }

    async fn revoke_session(&self, session: SessionId, expires_at: u64) -> Result<(), StoreError> {
        self.refused(false)?;
        self.store.revoke_session(session, expires_at).await
    }

    async fn revoke_session_once(&self, session: SessionId, expires_at: u64) -> Result<bool, StoreError> {
        self.refused(self.once_fails.load(std::sync::atomic::Ordering::Relaxed))?;
        self.store.revoke_session_once(session, expires_at).await
    }

    async fn revoke_all(&self, issued_through: u64) -> Result<u64, StoreError> {
        self.refused(false)?;
        self.store.revoke_all(issued_through).await
    }
}

/// A logout of everyone that lands after a reauthentication found its
/// session still signed in, and before it reads the user's epoch, moves
/// only the store's cutoff: the session is not carried on under a new ID
/// (found by review: only a moved epoch or an ended ID were caught there).
#[test]
fn a_logout_of_everyone_as_a_reauthentication_runs_is_not_carried_on() {
    pollster::block_on(async {
        let config = interfered(|b| b);
        let cookie = signed_in(&config, "alice").await;
        let slow = on(&config, &cookie).await;
        config.verifier().store().everyone_out_at_login.store(true, std::sync::atomic::Ordering::Relaxed);
        let err = slow.typed::<String>().reauthenticate().await.map(drop).unwrap_err();
        assert!(matches!(err, HandleError::Login(sealed_session::LoginError::Ended)), "{err:?}");
        assert!(!slow.has_session());
        assert_eq!(set_cookies(&slow), Vec::<String>::new());
    })
}

/// Signing out the other sessions raised the epoch, then could not end
/// this session's old ID: the store failed, or another request (or a copy
/// of the cookie) ended it right after the store answered that it was
/// live. The request has no session, every session of the user has ended,
/// and it is audited as a logout everywhere.
#[test]
fn signing_out_the_others_when_the_old_id_cannot_be_ended_ends_every_session() {
    use std::sync::atomic::Ordering::Relaxed;
    pollster::block_on(async {
        for ended_meanwhile in [false, true] {
            let (recorder, clock) = (Recorder::default(), ManualClock::at_unix(AUDIT_START));
            let memory = Arc::new(MemoryStore::with_clock(clock.clone()));
            let sealer = Sealer::builder(Keyring::generate().unwrap()).clock(clock.clone());
            let builder = WebConfig::builder(sealer, Interfering::on(&memory)).audit(recorder.clone());
            let config = Arc::new(builder.build().unwrap());
            let laptop = sign_in_from(&config, "alice", CHROME).await;
            let phone = sign_in_from(&config, "alice", FIREFOX).await;
            let here = on(&config, &laptop).await;
            recorder.take();

            let store = config.verifier().store();
            if ended_meanwhile {
                *store.target.lock().unwrap() = Some(id_of(&here));
            } else {
                store.once_fails.store(true, Relaxed);
            }
            let err = here.logout_others().await.unwrap_err();
            store.once_fails.store(false, Relaxed);
            if ended_meanwhile {
                assert!(matches!(err, HandleError::Login(sealed_session::LoginError::Ended)), "{err:?}");
                assert!(store.target.lock().unwrap().is_none(), "the check came first");
            } else {
                assert!(matches!(err, HandleError::Store(_)), "{err:?}");
            }
            assert!(!here.has_session());
            assert_eq!(set_cookies(&here), Vec::<String>::new());
            assert_eq!(only(&recorder).0, AuditKind::LogoutEverywhere { epoch: 1 });
            assert!(!on(&config, &phone).await.has_session());
            assert!(!on(&config, &laptop).await.has_session());
        }
    });
}

/// A login that ended the request's own session and then failed (the
/// store could not end another session to make room under the limit)
/// audits that end: the session is gone on every server, and no login
/// event names it.
#[test]
fn a_login_that_fails_after_ending_the_requests_session_audits_that_end() {
    pollster::block_on(async {
        let (recorder, clock) = (Recorder::default(), ManualClock::at_unix(AUDIT_START));
        let memory = Arc::new(MemoryStore::with_clock(clock.clone()));
        let sealer = Sealer::builder(Keyring::generate().unwrap()).clock(clock.clone());
        let builder = WebConfig::builder(sealer, Interfering::on(&memory))
            .session_registry(Arc::clone(&memory))
            .session_limit(2, LimitPolicy::EndOldest)
            .audit(recorder.clone());
        let config = Arc::new(builder.build().unwrap());
        let oldest = sign_in_from(&config, "alice", CHROME).await;
        clock.advance(std::time::Duration::from_secs(1));
        sign_in_from(&config, "alice", FIREFOX).await;
        let bob = sign_in_from(&config, "bob", CHROME).await;
        let bob_id = id_of(&on(&config, &bob).await);
        recorder.take();

        // Bob's browser signs in as alice, whose oldest session cannot end.
        config.verifier().store().once_fails.store(true, std::sync::atomic::Ordering::Relaxed);
        let here = on(&config, &bob).await;
        let err = here.typed::<String>().login("alice", "A".into()).await.unwrap_err();
        assert!(matches!(err, HandleError::Store(_)), "{err:?}");
        let (kind, user, session, _) = only(&recorder);
        assert_eq!(
            (kind, user.as_deref(), session),
            (AuditKind::Logout, Some("bob"), Some(SessionRef::of(bob_id)))
        );
        config.verifier().store().once_fails.store(false, std::sync::atomic::Ordering::Relaxed);
        assert!(!on(&config, &bob).await.has_session(), "bob's session ended on every server");
        assert!(on(&config, &oldest).await.has_session());
    });
}

/// A device that took a new ID between the listing and its end carries on
/// under it: the end says it ended nothing (and audits nothing), rather
/// than tell the user a session ended that did not.
#[test]
fn a_device_that_took_a_new_id_meanwhile_is_not_reported_ended() {
    pollster::block_on(async {
        let (recorder, clock) = (Recorder::default(), ManualClock::at_unix(AUDIT_START));
        let memory = Arc::new(MemoryStore::with_clock(clock.clone()));
        let store = Interfering::on(&memory);
        let sealer = Sealer::builder(Keyring::generate().unwrap()).clock(clock.clone());
        let builder = WebConfig::builder(sealer, store).session_registry(memory).audit(recorder.clone());
        let config = Arc::new(builder.build().unwrap());
        let laptop = sign_in_from(&config, "alice", CHROME).await;
        let phone = sign_in_from(&config, "alice", FIREFOX).await;
        let phone_id = id_of(&on(&config, &phone).await);
        recorder.take();

        let here = on(&config, &laptop).await;
        *config.verifier().store().target.lock().unwrap() = Some(phone_id);
        assert!(!here.end_device(SessionRef::of(phone_id)).await.unwrap());
        assert!(recorder.take().is_empty(), "no device was ended");
    });
}

/// A remembered session ended from the device list stays ended for its
/// whole remembered life, well past the default absolute timeout and the
/// denylist's purge of entries a day past their expiry, while one that was
/// not ended still opens.
#[test]
fn a_remembered_session_ended_from_the_list_stays_ended_for_its_whole_life() {
    use std::time::Duration;
    pollster::block_on(async {
        let (config, _, clock) = listed(|b| b);
        let laptop = sign_in_from(&config, "alice", CHROME).await;
        let remembered = |agent| {
            let config = Arc::clone(&config);
            async move {
                let handle = ready(&config, &TestRequest::new("GET", "/").header("user-agent", agent)).await;
                let remember = LoginOptions::default().remember(true);
                handle.typed::<String>().login_with_options("alice", remember, |_| "A".into()).await.unwrap();
                pair(&set_cookies(&handle)[0]).to_owned()
            }
        };
        let phone = remembered(FIREFOX).await;
        let tablet = remembered(FIREFOX).await;

        let here = on(&config, &laptop).await;
        let devices = here.devices().await.unwrap();
        let phone_ref = SessionRef::of(id_of(&on(&config, &phone).await));
        let phones = devices.iter().find(|d| d.reference == phone_ref).unwrap();
        assert!(phones.remembered);
        assert!(here.end_device(phones.reference).await.unwrap());

        // Two days on: past the default twelve-hour lifetime and the day of
        // grace after it; another logout purges the denylist's due entries.
        clock.advance(Duration::from_secs(2 * 86_400));
        let other = sign_in_from(&config, "bob", CHROME).await;
        on(&config, &other).await.logout().await.unwrap();
        assert!(on(&config, &tablet).await.has_session(), "a remembered session lives on");
        assert!(!on(&config, &phone).await.has_session(), "the ended one stays ended");
    });
}

/// A session signed in with a bearer token is listed and can be ended
/// from another device like a cookie's.
#[test]
fn a_bearer_session_is_listed_and_ended_from_another_device() {
    pollster::block_on(async {
        let (config, _, _) = listed(|b| b.bearer_tokens());
        let laptop = sign_in_from(&config, "alice", CHROME).await;
        let client =
            |token: &str| TestRequest::new("GET", "/").header("authorization", format!("Bearer {token}"));
        let handle = ready(&config, &client("")).await;
        handle.typed::<String>().login("alice", "A".into()).await.unwrap();
        let token = handle.finish().session_token.clone().unwrap();
        assert!(ready(&config, &client(&token)).await.has_session());

        let here = on(&config, &laptop).await;
        let devices = here.devices().await.unwrap();
        assert_eq!(devices.len(), 2, "{devices:?}");
        let api = devices.iter().find(|d| !d.current).unwrap();
        assert!(here.end_device(api.reference).await.unwrap());
        assert!(!ready(&config, &client(&token)).await.has_session(), "the token is refused");
        assert!(on(&config, &laptop).await.has_session());
    });
}

/// The sessions of an injected duplicate cookie that a logout ends leave
/// the registry too: no ended session stays recorded.
#[test]
fn the_sessions_an_injected_duplicate_carries_leave_the_registry_when_ended() {
    pollster::block_on(async {
        let (config, recorder, _) = listed(|b| b);
        let real = sign_in_from(&config, "alice", CHROME).await;
        let planted = sign_in_from(&config, "alice", FIREFOX).await;
        let ids = [id_of(&on(&config, &real).await), id_of(&on(&config, &planted).await)];
        assert_eq!(recorded(&config, "alice").await, 2);
        recorder.take();
        let request = TestRequest::new("GET", "/").header("cookie", format!("{real}; {planted}"));
        ready(&config, &request).await.logout().await.unwrap();
        assert_eq!(recorded(&config, "alice").await, 0, "an ended session is still recorded");
        // Each ended session is audited, with its user.
        let ended: Vec<_> = recorder
            .take()
            .into_iter()
            .filter(|event| event.kind == AuditKind::InjectedCookieEnded)
            .map(|event| (event.user_id.clone(), event.session))
            .collect();
        let expected = ids.map(|id| (Some("alice".to_owned()), Some(SessionRef::of(id))));
        assert_eq!(ended, expected);
    });
}

#[test]
fn the_list_follows_logouts_and_never_shows_a_revoked_session() {
    pollster::block_on(async {
        let (config, _, _) = listed(|b| b);
        let count = |cookie: String| {
            let config = Arc::clone(&config);
            async move { on(&config, &cookie).await.devices().await.unwrap().len() }
        };
        let a = sign_in_from(&config, "alice", CHROME).await;
        let b = sign_in_from(&config, "alice", FIREFOX).await;
        let c = sign_in_from(&config, "alice", FIREFOX).await;
        assert_eq!(count(a.clone()).await, 3);
        on(&config, &c).await.logout().await.unwrap();
        assert_eq!(recorded(&config, "alice").await, 2, "a logout removes its record");
        assert_eq!(count(a.clone()).await, 2);

        // Revoked behind the registry's back (an operator's `revoke
        // --session`): still recorded, never listed, never opened.
        let b_id = id_of(&on(&config, &b).await);
        config.verifier().store().revoke_session(b_id, u64::MAX / 2).await.unwrap();
        assert_eq!(count(a.clone()).await, 1);
        assert!(!on(&config, &b).await.has_session());

        let d = sign_in_from(&config, "alice", CHROME).await;
        let handle = on(&config, &d).await;
        handle.logout_others().await.unwrap();
        let kept = pair(&set_cookies(&handle)[0]).to_owned();
        let devices = on(&config, &kept).await.devices().await.unwrap();
        assert_eq!(devices.len(), 1, "signing out the others leaves this one");
        assert!(devices[0].current, "under its new ID");
        on(&config, &kept).await.logout_everywhere().await.unwrap();
        assert_eq!(recorded(&config, "alice").await, 0, "logout everywhere removes every record");
        let fresh = sign_in_from(&config, "alice", CHROME).await;
        assert_eq!(count(fresh).await, 1, "logout everywhere removed every record");
    });
}

#[test]
fn a_record_is_updated_when_its_cookie_is_reissued_not_on_every_request() {
    use std::time::Duration;
    pollster::block_on(async {
        let (config, _, clock) = listed(|b| b);
        let cookie = sign_in_from(&config, "alice", CHROME).await;
        let last_seen = |cookie: String| {
            let config = Arc::clone(&config);
            async move { on(&config, &cookie).await.devices().await.unwrap()[0].last_seen.unix_timestamp() }
        };
        clock.advance(Duration::from_secs(100));
        assert_eq!(last_seen(cookie.clone()).await, AUDIT_START, "no re-issue yet");
        clock.advance(Duration::from_secs(250));
        let handle = on(&config, &cookie).await;
        let renewed = pair(&set_cookies(&handle)[0]).to_owned();
        assert_eq!(last_seen(renewed).await, AUDIT_START + 350, "moved with the re-issue");
    });
}

#[test]
fn a_client_that_keeps_sending_an_old_cookie_moves_its_record_once_an_interval() {
    use std::time::Duration;
    pollster::block_on(async {
        let (config, _, clock) = listed(|b| b);
        let old = sign_in_from(&config, "alice", CHROME).await;
        let id = id_of(&on(&config, &old).await);
        let store: &MemoryStore = config.verifier().store();
        // A client that drops `Set-Cookie` sends the login's cookie again
        // and again: due for a re-issue on every request.
        clock.advance(Duration::from_secs(301));
        assert!(!set_cookies(&on(&config, &old).await).is_empty(), "re-issued");
        sealed_session::SessionRegistry::remove(store, "alice", id).await.unwrap();
        assert!(!set_cookies(&on(&config, &old).await).is_empty(), "re-issued again");
        assert_eq!(recorded(&config, "alice").await, 0, "the record moved once this interval, and not again");
        clock.advance(Duration::from_secs(300));
        on(&config, &old).await;
        assert_eq!(recorded(&config, "alice").await, 1, "and again in the next interval");
    });
}

#[test]
fn a_session_limit_ends_the_oldest_or_refuses_the_login() {
    pollster::block_on(async {
        let (config, recorder, clock) = listed(|b| b.session_limit(2, LimitPolicy::EndOldest));
        let first = sign_in_from(&config, "alice", CHROME).await;
        let first_id = id_of(&on(&config, &first).await);
        clock.advance(std::time::Duration::from_secs(1));
        let second = sign_in_from(&config, "alice", FIREFOX).await;
        let _bob = sign_in_from(&config, "bob", CHROME).await;
        recorder.take();
        let third = sign_in_from(&config, "alice", FIREFOX).await;
        let events: Vec<_> = recorder.take().into_iter().map(|e| (e.kind, e.session)).collect();
        assert_eq!(events[0], (AuditKind::LimitEnforced, Some(SessionRef::of(first_id))));
        assert!(!on(&config, &first).await.has_session(), "the oldest ended");
        assert!(on(&config, &second).await.has_session() && on(&config, &third).await.has_session());
        assert_eq!(on(&config, &third).await.devices().await.unwrap().len(), 2);
        // A login that replaces the request's own session does not count it.
        let handle = on(&config, &third).await;
        handle.typed::<String>().login("alice", "A".into()).await.unwrap();
        assert!(on(&config, &second).await.has_session(), "room made by the replaced session");

        let (config, _, _) = listed(|b| b.session_limit(1, LimitPolicy::RefuseLogin));
        let only_one = sign_in_from(&config, "alice", CHROME).await;
        let handle = ready(&config, &TestRequest::new("GET", "/")).await;
        let refused = handle.typed::<String>().login("alice", "A".into()).await.unwrap_err();
        assert!(matches!(refused, HandleError::SessionLimit { max: 1 }));
        assert_eq!(
            (refused.status(), refused.body()),
            (409, "too many sessions: sign out another device first")
        );
        assert!(set_cookies(&handle).is_empty(), "no session was started");
        assert!(on(&config, &only_one).await.has_session());
    });
}

/// Limit: the registry keeps no key ID, so a session whose key was retired
/// since (its cookie no longer opens) is listed and counted until it idles
/// out, and with `RefuseLogin` its user cannot sign in meanwhile. Logging
/// everyone out, as SECURITY.md's incident path does after retiring a key
/// ahead of its schedule, ends those records too.
#[test]
fn sessions_under_a_retired_key_count_until_everyone_is_logged_out() {
    pollster::block_on(async {
        let (config, _, clock) = listed(|b| b.session_limit(1, LimitPolicy::RefuseLogin));
        let keyring = config.verifier().sealer().keyring();
        let first = keyring.current().primary_id();
        let old = sign_in_from(&config, "alice", CHROME).await;

        let (with_next, next) = keyring.current().with_new_key().unwrap();
        let now = time::OffsetDateTime::from_unix_timestamp(AUDIT_START).unwrap();
        keyring.replace(with_next.with_primary(next).unwrap().with_retired_as_of(first, now).unwrap());
        assert!(!on(&config, &old).await.has_session(), "its key is retired");
        let handle = ready(&config, &TestRequest::new("GET", "/")).await;
        let refused = handle.typed::<String>().login("alice", "A".into()).await.unwrap_err();
        assert!(matches!(refused, HandleError::SessionLimit { max: 1 }), "{refused:?}");

        config.verifier().logout_all().await.unwrap();
        clock.advance(std::time::Duration::from_secs(1));
        let handle = ready(&config, &TestRequest::new("GET", "/")).await;
        handle.typed::<String>().login("alice", "A".into()).await.unwrap();
        assert_eq!(handle.devices().await.unwrap().len(), 1, "the old session is gone from the list");
    });
}

/// A session past its absolute timeout as the sealer now counts it (the
/// timeout shortened since it was sealed) no longer opens, and is neither
/// listed nor counted: with a limit of one, the user can sign in again
/// rather than wait a week for it to idle out.
#[test]
fn a_session_past_a_shortened_absolute_timeout_stops_counting() {
    use std::time::Duration;
    pollster::block_on(async {
        let clock = ManualClock::at_unix(AUDIT_START);
        let store = Arc::new(MemoryStore::with_clock(clock.clone()));
        let keyring = sealed_session::SharedKeyring::new(Keyring::generate().unwrap());
        // Idle for a week, or as long as the session lasts if shorter.
        let remembering_for = |days: u64| {
            let (absolute, idle) = (days * 86_400, days.min(7) * 86_400);
            let sealer = Sealer::builder(keyring.clone())
                .clock(clock.clone())
                .remember_me(Duration::from_secs(absolute), Duration::from_secs(idle));
            let builder = WebConfig::builder(sealer, Arc::clone(&store))
                .session_registry(Arc::clone(&store))
                .session_limit(1, LimitPolicy::RefuseLogin);
            Arc::new(builder.build().unwrap())
        };
        let before = remembering_for(30);
        let handle = ready(&before, &TestRequest::new("GET", "/")).await;
        let remember = sealed_session::web::LoginOptions::default().remember(true);
        handle.typed::<String>().login_with_options("alice", remember, |_| "A".to_owned()).await.unwrap();
        let cookie = pair(&set_cookies(&handle)[0]).to_owned();

        // Two days, idle for two: it would idle out half a day later (one
        // renewal interval, a quarter of the idle timeout, after its end).
        let after = remembering_for(2);
        clock.advance(Duration::from_secs(2 * 86_400 + 120));
        assert!(!on(&after, &cookie).await.has_session(), "refused under the shorter timeout");
        let again = ready(&after, &TestRequest::new("GET", "/")).await;
        again.typed::<String>().login("alice", "B".to_owned()).await.unwrap();
        assert_eq!(again.devices().await.unwrap().len(), 1, "the dead session is not listed");
    });
}

/// A store that lost data (its epoch for the user is behind a record's) is
/// no logout: the record is kept, but neither listed nor counted, so that a
/// session limit cannot lock the user out while the session is refused.
#[test]
fn records_the_store_cannot_vouch_for_are_kept_but_not_counted() {
    pollster::block_on(async {
        let clock = ManualClock::at_unix(AUDIT_START);
        let registry = Arc::new(MemoryStore::with_clock(clock.clone()));
        let config_on = |store: Arc<MemoryStore>| {
            let sealer = Sealer::builder(Keyring::generate().unwrap()).clock(clock.clone());
            let builder = WebConfig::builder(sealer, store)
                .session_registry(Arc::clone(&registry))
                .session_limit(1, LimitPolicy::RefuseLogin);
            Arc::new(builder.build().unwrap())
        };
        let intact = Arc::new(MemoryStore::with_clock(clock.clone()));
        assert_eq!(intact.revoke_user("alice").await.unwrap(), 1);
        sign_in_from(&config_on(intact), "alice", CHROME).await;
        // The store after it lost its data: alice's epoch is 0 again.
        let after = config_on(Arc::new(MemoryStore::with_clock(clock.clone())));
        let cookie = sign_in_from(&after, "alice", FIREFOX).await;
        let devices = on(&after, &cookie).await.devices().await.unwrap();
        assert_eq!(devices.len(), 1, "the session the store cannot vouch for is not listed");
        let recorded = sealed_session::SessionRegistry::list(&*registry, "alice", AUDIT_START as u64);
        assert_eq!(recorded.await.unwrap().len(), 2, "but its record is kept");
    });
}

/// A session started after a logout everywhere on another server, checked
/// on a server whose cache (one that keeps the user's epoch across session
/// IDs: `Unheard`) has not heard of that logout yet: the cached
/// epoch, behind the session's, is read again from the store, so the cookie
/// opens and the device list shows the session (taken for lost data, it
/// was refused and left out of the list, with an alarm).
#[test]
fn a_cache_that_has_not_heard_of_a_logout_elsewhere_is_read_again() {
    pollster::block_on(async {
        let clock = ManualClock::at_unix(AUDIT_START);
        let store = MemoryStore::with_clock(clock.clone());
        store.revoke_user("alice").await.unwrap();
        let sealer = Sealer::builder(Keyring::generate().unwrap()).clock(clock.clone());
        let lagging = unheard::Unheard { store, behind: 1, lost: false };
        let registry = Arc::new(MemoryStore::with_clock(clock.clone()));
        let config =
            Arc::new(WebConfig::builder(sealer, lagging).session_registry(registry).build().unwrap());
        let cookie = sign_in_from(&config, "alice", CHROME).await;
        let handle = on(&config, &cookie).await;
        assert!(handle.has_session());
        assert_eq!(handle.devices().await.unwrap().len(), 1);
    });
}

/// A remembered session does not open while remember-me is off: it is not
/// listed or counted (a limit of one would refuse every login for weeks),
/// and its record is kept for when remember-me is back.
#[test]
fn a_remembered_session_is_not_counted_while_remember_me_is_off() {
    use sealed_session::web::LoginOptions;
    use std::time::Duration;
    pollster::block_on(async {
        let clock = ManualClock::at_unix(AUDIT_START);
        let store = Arc::new(MemoryStore::with_clock(clock.clone()));
        let keyring = sealed_session::SharedKeyring::new(Keyring::generate().unwrap());
        let config = |remember: bool| {
            let mut sealer = Sealer::builder(keyring.clone()).clock(clock.clone());
            if remember {
                sealer =
                    sealer.remember_me(Duration::from_secs(30 * 86_400), Duration::from_secs(7 * 86_400));
            }
            let builder = WebConfig::builder(sealer, Arc::clone(&store))
                .session_registry(Arc::clone(&store))
                .session_limit(1, LimitPolicy::RefuseLogin);
            Arc::new(builder.build().unwrap())
        };
        let with = config(true);
        let handle = ready(&with, &TestRequest::new("GET", "/").header("user-agent", CHROME)).await;
        let remember = LoginOptions::default().remember(true);
        handle.typed::<String>().login_with_options("alice", remember, |_| "A".into()).await.unwrap();
        let remembered = pair(&set_cookies(&handle)[0]).to_owned();
        assert!(on(&with, &remembered).await.has_session());

        let without = config(false);
        assert!(!on(&without, &remembered).await.has_session(), "it does not open without remember-me");
        let cookie = sign_in_from(&without, "alice", FIREFOX).await;
        assert_eq!(on(&without, &cookie).await.devices().await.unwrap().len(), 1, "only this one is listed");
        let recorded = sealed_session::SessionRegistry::list(&*store, "alice", AUDIT_START as u64);
        assert_eq!(recorded.await.unwrap().len(), 2, "its record is kept");
    });
}

#[test]
fn without_a_limit_the_registrys_bound_ends_the_oldest_session_rather_than_hiding_it() {
    use std::time::Duration;
    pollster::block_on(async {
        let (config, recorder, clock) = listed(|b| b);
        // The registry's bound, less room for ten logins at one moment.
        let bound = sealed_session::registry::MAX_RECORDS_PER_USER - 10;
        let first = sign_in_from(&config, "alice", CHROME).await;
        let mut last = first.clone();
        for _ in 1..bound {
            clock.advance(Duration::from_secs(1));
            last = sign_in_from(&config, "alice", FIREFOX).await;
        }
        assert!(on(&config, &first).await.has_session(), "at the bound, every session lives");
        assert!(recorder.take().iter().all(|event| !matches!(event.kind, AuditKind::LimitEnforced)));
        clock.advance(Duration::from_secs(1));
        sign_in_from(&config, "alice", FIREFOX).await;
        assert!(!on(&config, &first).await.has_session(), "the oldest session was ended");
        assert_eq!(on(&config, &last).await.devices().await.unwrap().len(), bound);
        assert!(recorder.take().iter().any(|event| matches!(event.kind, AuditKind::LimitEnforced)));
    });
}

#[test]
fn a_login_that_replaces_its_own_session_at_the_limit_leaves_every_session_listed() {
    use std::time::Duration;
    pollster::block_on(async {
        // The largest limit: the login replaces its own session there, and
        // ends no other.
        let max = 90;
        let (config, _, clock) = listed(|b| b.session_limit(max, LimitPolicy::EndOldest));
        let first = sign_in_from(&config, "alice", CHROME).await;
        let mut last = first.clone();
        for _ in 1..max {
            clock.advance(Duration::from_secs(1));
            last = sign_in_from(&config, "alice", FIREFOX).await;
        }
        // Signing in again from the last browser replaces its session.
        clock.advance(Duration::from_secs(1));
        let handle = on(&config, &last).await;
        handle.typed::<String>().login("alice", "again".to_owned()).await.unwrap();
        let again = pair(&set_cookies(&handle)[0]).to_owned();
        assert!(on(&config, &first).await.has_session());
        assert_eq!(on(&config, &again).await.devices().await.unwrap().len(), max, "the first one too");
    });
}

#[test]
fn logging_out_everywhere_keeps_the_record_of_a_login_made_meanwhile() {
    pollster::block_on(async {
        let (config, _, _) = listed(|b| b);
        let cookie = sign_in_from(&config, "alice", CHROME).await;
        let handle = on(&config, &cookie).await;
        // Another server's login read the epoch the logout is about to
        // write, and recorded its session.
        let store: &MemoryStore = config.verifier().store();
        let meanwhile = sealed_session::SessionRecord {
            id: sealed_session::Session::new(()).id(),
            user_id: "alice".to_owned(),
            epoch: 1,
            created_at: AUDIT_START as u64,
            last_seen: AUDIT_START as u64,
            expires_at: AUDIT_START as u64 + 1800,
            user_agent: "Firefox on Linux".to_owned(),
            remembered: false,
            device_bound: false,
        };
        sealed_session::SessionRegistry::record(store, &meanwhile).await.unwrap();
        assert_eq!(handle.logout_everywhere().await.unwrap(), 1);
        let left = sealed_session::SessionRegistry::list(store, "alice", AUDIT_START as u64).await.unwrap();
        assert_eq!(left.iter().map(|r| r.id).collect::<Vec<_>>(), [meanwhile.id], "only the ended ones went");
    });
}

#[test]
fn a_login_that_fails_ends_no_session_to_make_room() {
    pollster::block_on(async {
        let (config, recorder, _) = listed(|b| b.session_limit(1, LimitPolicy::EndOldest));
        let first = sign_in_from(&config, "alice", CHROME).await;
        recorder.take();
        let handle = ready(&config, &TestRequest::new("GET", "/")).await;
        let too_large = "x".repeat(8 * 1024);
        let failed = handle.typed::<String>().login("alice", too_large).await.unwrap_err();
        assert!(matches!(failed, HandleError::Seal(_)), "{failed:?}");
        assert!(on(&config, &first).await.has_session(), "the other session was not ended for it");
        assert!(recorder.take().is_empty(), "nothing was ended, nothing audited");
        assert!(set_cookies(&handle).is_empty(), "no session was started");
    });
}

#[test]
fn a_session_left_idle_stops_counting_against_the_limit() {
    use std::time::Duration;
    pollster::block_on(async {
        // Idle timeout 30 minutes, renewal every 5, leeway 60 s: a session
        // left alone is surely ended 36 minutes after its record last moved.
        let (config, _, clock) = listed(|b| b.session_limit(1, LimitPolicy::RefuseLogin));
        let abandoned = sign_in_from(&config, "alice", CHROME).await;
        clock.advance(Duration::from_secs(1800 + 300 + 60 - 1));
        let handle = ready(&config, &TestRequest::new("GET", "/")).await;
        let early = handle.typed::<String>().login("alice", "A".into()).await;
        assert!(matches!(early, Err(HandleError::SessionLimit { .. })), "not yet: {early:?}");
        clock.advance(Duration::from_secs(1));
        assert!(!on(&config, &abandoned).await.has_session(), "the first session has idled out");
        let handle = ready(&config, &TestRequest::new("GET", "/").header("user-agent", FIREFOX)).await;
        handle
            .typed::<String>()
            .login("alice", "A".into())
            .await
            .expect("an idle session must not lock the user out");
        let devices = handle.devices().await.unwrap();
        assert_eq!(devices.len(), 1, "the idle session is not listed: {devices:?}");
        assert!(devices[0].current);
    });
}

#[test]
fn with_a_registry_a_session_in_use_renews_once_per_interval_and_no_more() {
    use std::time::Duration;
    pollster::block_on(async {
        // Renewal every 5 minutes, counted from the login.
        let (config, _, clock) = listed(|b| b);
        let cookie = sign_in_from(&config, "alice", CHROME).await;
        clock.advance(Duration::from_secs(10));
        assert!(set_cookies(&on(&config, &cookie).await).is_empty(), "nothing to renew within the interval");
        // A change 290 s in: sealed again, last active then.
        clock.advance(Duration::from_secs(280));
        let handle = on(&config, &cookie).await;
        handle.typed::<String>().update(|data| data.push('!')).unwrap();
        let cookie = pair(&set_cookies(&handle)[0]).to_owned();
        // 20 s later, not due for an idle renewal, but in the next interval.
        clock.advance(Duration::from_secs(20));
        let renewed = set_cookies(&on(&config, &cookie).await);
        assert_eq!(renewed.len(), 1, "a request in a new interval renews the cookie");
        let devices = on(&config, pair(&renewed[0])).await.devices().await.unwrap();
        assert_eq!(devices[0].last_seen.unix_timestamp(), AUDIT_START + 310, "and moves the record");
    });
}

#[test]
fn a_change_sealed_across_a_renewal_boundary_never_hides_a_session_that_opens() {
    use std::time::Duration;
    pollster::block_on(async {
        // Idle 30 minutes, renewal every 5, leeway 60 s.
        let (config, _, clock) = listed(|b| b.session_limit(1, LimitPolicy::RefuseLogin));
        let cookie = sign_in_from(&config, "alice", CHROME).await;
        // A request that begins 290 s in and changes the session 310 s in,
        // across the first interval's end (a slow handler).
        clock.advance(Duration::from_secs(290));
        let handle = on(&config, &cookie).await;
        clock.advance(Duration::from_secs(20));
        handle.typed::<String>().update(|data| data.push('!')).unwrap();
        let cookie = pair(&set_cookies(&handle)[0]).to_owned();
        // Another change in the next interval, then the browser is closed.
        clock.advance(Duration::from_secs(280));
        let handle = on(&config, &cookie).await;
        handle.typed::<String>().update(|data| data.push('!')).unwrap();
        let cookie = pair(&set_cookies(&handle)[0]).to_owned();
        // 27 minutes on, the session still opens: it must still count.
        clock.advance(Duration::from_secs(1620));
        let other = ready(&config, &TestRequest::new("GET", "/")).await;
        let refused = other.typed::<String>().login("alice", "A".into()).await;
        assert!(
            matches!(refused, Err(HandleError::SessionLimit { max: 1 })),
            "a session that opens was not counted"
        );
        assert!(on(&config, &cookie).await.has_session(), "the premise: it opens");
    });
}

#[test]
fn a_session_whose_data_changes_on_every_request_keeps_counting() {
    use std::time::Duration;
    pollster::block_on(async {
        let (config, _, clock) = listed(|b| b.session_limit(1, LimitPolicy::RefuseLogin));
        let mut cookie = sign_in_from(&config, "alice", CHROME).await;
        // A request every 4 minutes for over an hour, each changing the
        // session: sealed again every time, never due for an idle renewal.
        for _ in 0..20 {
            clock.advance(Duration::from_secs(240));
            let handle = on(&config, &cookie).await;
            handle.typed::<String>().update(|data| data.push('!')).unwrap();
            cookie = pair(&set_cookies(&handle)[0]).to_owned();
        }
        assert!(on(&config, &cookie).await.has_session());
        let handle = ready(&config, &TestRequest::new("GET", "/")).await;
        let refused = handle.typed::<String>().login("alice", "A".into()).await;
        assert!(
            matches!(refused, Err(HandleError::SessionLimit { max: 1 })),
            "a session in use counts: {refused:?}"
        );
        let devices = on(&config, &cookie).await.devices().await.unwrap();
        assert_eq!(devices.len(), 1, "and is listed");
    });
}

/// A registry over a memory store whose faults a test switches through its
/// shared fields, taken before the registry is handed over: nothing fails
/// until it is told to.
struct ForgetfulRegistry {
    store: Arc<MemoryStore>,
    /// While set, every write of a record fails (best effort, so sessions go on).
    down: Arc<std::sync::atomic::AtomicBool>,
    /// Lists answered before every list fails.
    lists_left: Arc<std::sync::atomic::AtomicUsize>,
    /// Writes made before the next `failures` writes fail (then it writes again).
    writes_left: Arc<std::sync::atomic::AtomicUsize>,
    failures: Arc<std::sync::atomic::AtomicUsize>,
}

impl ForgetfulRegistry {
    fn over(store: &Arc<MemoryStore>) -> Self {
        let unlimited = || Arc::new(std::sync::atomic::AtomicUsize::new(usize::MAX));
        Self {
            store: Arc::clone(store),
            down: Arc::default(),
            lists_left: unlimited(),
            writes_left: unlimited(),
            failures: unlimited(),
        }
    }

    /// A clock at `AUDIT_START`, a memory store on it, a registry over that
    /// store and a sealer on the clock.
    fn with_clock() -> (ManualClock, Arc<MemoryStore>, Self, sealed_session::SealerBuilder) {
        let clock = ManualClock::at_unix(AUDIT_START);
        let store = Arc::new(MemoryStore::with_clock(clock.clone()));
        let sealer = Sealer::builder(Keyring::generate().unwrap()).clock(clock.clone());
        (clock, Arc::clone(&store), Self::over(&store), sealer)
    }
}

/// Takes one from `left`; false if it was 0.
fn take_one(left: &std::sync::atomic::AtomicUsize) -> bool {
    use std::sync::atomic::Ordering::SeqCst;
    left.fetch_update(SeqCst, SeqCst, |left| left.checked_sub(1)).is_ok()
}

impl sealed_session::SessionRegistry for ForgetfulRegistry {
    fn record<'a>(
        &'a self,
        record: &'a sealed_session::SessionRecord,
    ) -> sealed_session::BoxFuture<'a, Result<(), StoreError>> {
        let down = self.down.load(std::sync::atomic::Ordering::SeqCst);
        if down || (!take_one(&self.writes_left) && take_one(&self.failures)) {
            let down = StoreError::unavailable(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
            return Box::pin(async { Err(down) });
        }
        sealed_session::SessionRegistry::record(&*self.store, record)
    }

    fn remove<'a>(
        &'a self,
        user: &'a str,
        id: SessionId,
    ) -> sealed_session::BoxFuture<'a, Result<(), StoreError>> {
        sealed_session::SessionRegistry::remove(&*self.store, user, id)
    }

    fn remove_user<'a>(&'a self, user: &'a str) -> sealed_session::BoxFuture<'a, Result<(), StoreError>> {
        sealed_session::SessionRegistry::remove_user(&*self.store, user)
    }

    fn list<'a>(
        &'a self,
        user: &'a str,
        now: u64,
    ) -> sealed_session::BoxFuture<'a, Result<Vec<sealed_session::SessionRecord>, StoreError>> {
        if !take_one(&self.lists_left) {
            let down = StoreError::unavailable(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
            return Box::pin(async { Err(down) });
        }
        sealed_session::SessionRegistry::list(&*self.store, user, now)
    }
}

/// A session whose record lags (its renewals could not be written) is
/// still listed, as current, on its own device list: the request proves
/// it opens. The record's timing-out is for sessions no request shows.
#[test]
fn the_current_session_is_listed_however_far_its_record_lags() {
    use std::time::Duration;
    pollster::block_on(async {
        let (clock, store, registry, sealer) = ForgetfulRegistry::with_clock();
        let down = Arc::clone(&registry.down);
        let sealer = sealer.renew_after(Duration::from_secs(300));
        let config = Arc::new(
            WebConfig::builder(sealer, Arc::clone(&store)).session_registry(registry).build().unwrap(),
        );
        let mut cookie = sign_in_from(&config, "alice", CHROME).await;
        down.store(true, std::sync::atomic::Ordering::SeqCst);
        // Forty minutes of requests every four: renewed, never recorded.
        for _ in 0..10 {
            clock.advance(Duration::from_secs(240));
            let handle = on(&config, &cookie).await;
            assert!(handle.has_session());
            if let Some(renewed) = set_cookies(&handle).first() {
                cookie = pair(renewed).to_owned();
            }
        }
        down.store(false, std::sync::atomic::Ordering::SeqCst);
        // The premise: the record still says the sign-in, forty minutes ago.
        let now = u64::try_from(AUDIT_START + 2400).unwrap();
        let stored = sealed_session::SessionRegistry::list(&*store, "alice", now).await.unwrap();
        assert_eq!(stored.iter().map(|r| r.last_seen).collect::<Vec<_>>(), [AUDIT_START as u64]);
        let devices = on(&config, &cookie).await.devices().await.unwrap();
        assert_eq!(devices.iter().map(|d| d.current).collect::<Vec<_>>(), [true], "{devices:?}");
        // Its activity is the cookie's (renewed at most one interval ago),
        // not the record's forty minutes.
        let seen = devices[0].last_seen.unix_timestamp();
        assert!(seen >= AUDIT_START + 2400 - 300, "last seen {} s in", seen - AUDIT_START);
    });
}

/// Under a limit that refuses, a login whose session the registry cannot
/// record is refused (`503`), nothing changed: other logins' counts would
/// miss it. Without a limit, recording stays best effort.
#[test]
fn under_a_refusing_limit_a_login_the_registry_cannot_record_is_refused() {
    pollster::block_on(async {
        for limited in [true, false] {
            let store = Arc::new(MemoryStore::new());
            let registry = ForgetfulRegistry::over(&store);
            registry.down.store(true, std::sync::atomic::Ordering::SeqCst);
            let builder =
                WebConfig::builder(Sealer::builder(Keyring::generate().unwrap()), Arc::clone(&store))
                    .session_registry(registry);
            let builder = if limited { builder.session_limit(1, LimitPolicy::RefuseLogin) } else { builder };
            let config = Arc::new(builder.build().unwrap());
            let handle = ready(&config, &TestRequest::new("GET", "/")).await;
            let result = handle.typed::<String>().login("alice", "A".into()).await;
            if limited {
                let err = result.unwrap_err();
                assert!(matches!(err, HandleError::Store(_)), "{err:?}");
                assert_eq!(err.status(), 503);
                assert!(set_cookies(&handle).is_empty(), "nothing changed");
            } else {
                result.unwrap();
                assert_eq!(set_cookies(&handle).len(), 1, "signed in, unrecorded");
            }
        }
    });
}

/// A memory store that keeps the end of every one-time denial it is asked
/// for (the memory store keeps entries past their end, as it may: a store
/// that drops them then, as Redis does, would let the session open again).
struct DenialEnds(Arc<MemoryStore>, std::sync::Mutex<Vec<(SessionId, u64)>>);

impl RevocationStore for DenialEnds {
    async fn state(
        &self,
        user_id: Option<&str>,
        session: SessionId,
    ) -> Result<sealed_session::RevocationState, StoreError> {
        self.0.state(user_id, session).await
    }

    async fn login_state(&self, user_id: &str) -> Result<sealed_session::LoginState, StoreError> {
        self.0.login_state(user_id).await
    }

    async fn revoke_user(&self, user_id: &str) -> Result<u64, StoreError> {
        self.0.revoke_user(user_id).await
    }

    async fn revoke_session(&self, session: SessionId, expires_at: u64) -> Result<(), StoreError> {
        self.0.revoke_session(session, expires_at).await
    }

    async fn revoke_session_once(&self, session: SessionId, expires_at: u64) -> Result<bool, StoreError> {
        self.1.lock().unwrap().push((session, expires_at));
        self.0.revoke_session_once(session, expires_at).await
    }

    async fn revoke_all(&self, issued_through: u64) -> Result<u64, StoreError> {
        self.0.revoke_all(issued_through).await
    }
}

/// A session whose login could not record it for good (the registry
/// took its claim, then failed) is listed with its session's end, and,
/// ended from the device list, denylisted for its whole life, not for the
/// claim's five minutes.
#[test]
fn a_device_ended_while_its_record_is_a_claim_stays_ended() {
    pollster::block_on(async {
        let (_clock, store, registry, sealer) = ForgetfulRegistry::with_clock();
        let writes = Arc::clone(&registry.writes_left);
        let denials = Arc::new(DenialEnds(Arc::clone(&store), std::sync::Mutex::default()));
        let builder = WebConfig::builder(sealer, Arc::clone(&denials))
            .session_registry(registry)
            .session_limit(2, LimitPolicy::RefuseLogin);
        let config = Arc::new(builder.build().unwrap());
        let first = sign_in_from(&config, "alice", CHROME).await;
        // The second login's claim is written, its record for good is not.
        writes.store(1, std::sync::atomic::Ordering::SeqCst);
        let second = sign_in_from(&config, "alice", FIREFOX).await;
        writes.store(usize::MAX, std::sync::atomic::Ordering::SeqCst);
        let handle = on(&config, &first).await;
        let devices = handle.devices().await.unwrap();
        let other = devices.iter().find(|device| !device.current).unwrap();
        let life = other.expires_at.unix_timestamp() - AUDIT_START;
        assert_eq!(life, 12 * 3600, "listed with the session's end, not the claim's");
        denials.1.lock().unwrap().clear();
        assert!(handle.end_device(other.reference).await.unwrap());
        let ends: Vec<i64> =
            denials.1.lock().unwrap().iter().map(|(_, end)| *end as i64 - AUDIT_START).collect();
        assert_eq!(ends, [12 * 3600 + 60], "denied until its end and the leeway, not the claim's");
        assert!(!on(&config, &second).await.has_session());
    });
}

/// Under a limit that refuses, a login records its session twice: a
/// five-minute claim, then for good once it is sent; a final write that
/// fails is tried once more, so that the session keeps counting after the
/// claim lapses. A login that writes both makes no third write.
#[test]
fn a_login_tries_its_final_record_again_once() {
    use std::sync::atomic::Ordering::SeqCst;
    use std::time::Duration;
    pollster::block_on(async {
        let (clock, store, registry, sealer) = ForgetfulRegistry::with_clock();
        let (writes, failures) = (Arc::clone(&registry.writes_left), Arc::clone(&registry.failures));
        let builder = WebConfig::builder(sealer, Arc::clone(&store))
            .session_registry(registry)
            .session_limit(1, LimitPolicy::RefuseLogin);
        let config = Arc::new(builder.build().unwrap());
        writes.store(10, SeqCst);
        sign_in_from(&config, "bob", CHROME).await;
        assert_eq!(writes.load(SeqCst), 8, "the claim and the record for good, no more");
        // The claim is written, the first final write fails, the second not.
        writes.store(1, SeqCst);
        failures.store(1, SeqCst);
        sign_in_from(&config, "alice", CHROME).await;
        assert_eq!(failures.load(SeqCst), 0, "the final write failed once");
        clock.advance(Duration::from_secs(600));
        let now = sealed_session::Clock::unix_now(&clock) as u64;
        let records = sealed_session::SessionRegistry::list(&*store, "alice", now).await.unwrap();
        assert_eq!(records.len(), 1, "still counted once the claim lapsed");
        let elsewhere = ready(&config, &TestRequest::new("GET", "/")).await;
        let refused = elsewhere.typed::<String>().login("alice", "A".into()).await.unwrap_err();
        assert!(matches!(refused, HandleError::SessionLimit { max: 1 }), "{refused:?}");
    });
}

/// Under a limit that refuses, a login whose second count (with its own
/// session recorded) the registry cannot answer is refused (`503`),
/// nothing changed and its record removed.
#[test]
fn under_a_refusing_limit_a_login_whose_second_count_fails_is_refused() {
    pollster::block_on(async {
        let store = Arc::new(MemoryStore::new());
        let registry = ForgetfulRegistry::over(&store);
        let lists = Arc::clone(&registry.lists_left);
        let builder = WebConfig::builder(Sealer::builder(Keyring::generate().unwrap()), Arc::clone(&store))
            .session_registry(registry)
            .session_limit(1, LimitPolicy::RefuseLogin);
        let config = Arc::new(builder.build().unwrap());
        // The first count is answered, the second is not.
        lists.store(1, std::sync::atomic::Ordering::SeqCst);
        let handle = ready(&config, &TestRequest::new("GET", "/")).await;
        let err = handle.typed::<String>().login("alice", "A".into()).await.unwrap_err();
        assert!(matches!(err, HandleError::Store(_)), "{err:?}");
        assert!(set_cookies(&handle).is_empty(), "nothing changed");
        let now = u64::try_from(sealed_session::Clock::unix_now(&sealed_session::SystemClock)).unwrap();
        assert!(sealed_session::SessionRegistry::list(&*store, "alice", now).await.unwrap().is_empty());
    });
}

/// A registry whose server is down for reads: the session limit cannot be
/// counted. (A real store's two halves cannot be broken separately.)
struct UncountableRegistry;

impl sealed_session::SessionRegistry for UncountableRegistry {
    fn record<'a>(
        &'a self,
        _: &'a sealed_session::SessionRecord,
    ) -> sealed_session::BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }

    fn remove<'a>(
        &'a self,
        _: &'a str,
        _: SessionId,
    ) -> sealed_session::BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }

    fn remove_user<'a>(&'a self, _: &'a str) -> sealed_session::BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }

    fn list<'a>(
        &'a self,
        _: &'a str,
        _: u64,
    ) -> sealed_session::BoxFuture<'a, Result<Vec<sealed_session::SessionRecord>, StoreError>> {
        Box::pin(async {
            Err(StoreError::unavailable(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)))
        })
    }
}

/// A registry that matches user IDs without regard to case (a third
/// party's, on a case-insensitive column): it lists and removes `alice`'s
/// records for `ALICE` too.
struct CaseBlindRegistry(Arc<MemoryStore>);

impl sealed_session::SessionRegistry for CaseBlindRegistry {
    fn record<'a>(
        &'a self,
        record: &'a sealed_session::SessionRecord,
    ) -> sealed_session::BoxFuture<'a, Result<(), StoreError>> {
        self.0.record(record)
    }

    fn remove<'a>(
        &'a self,
        user_id: &'a str,
        id: SessionId,
    ) -> sealed_session::BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.0.remove(&user_id.to_lowercase(), id).await?;
            self.0.remove(&user_id.to_uppercase(), id).await
        })
    }

    fn remove_user<'a>(&'a self, user_id: &'a str) -> sealed_session::BoxFuture<'a, Result<(), StoreError>> {
        self.0.remove_user(user_id)
    }

    fn list<'a>(
        &'a self,
        user_id: &'a str,
        now: u64,
    ) -> sealed_session::BoxFuture<'a, Result<Vec<sealed_session::SessionRecord>, StoreError>> {
        Box::pin(async move {
            let mut records = self.0.list(&user_id.to_lowercase(), now).await?;
            records.extend(self.0.list(&user_id.to_uppercase(), now).await?);
            Ok(records)
        })
    }
}

/// The registry conformance check of user IDs can fail: a registry that
/// matches them without case does not pass it.
#[cfg(feature = "conformance")]
#[test]
#[should_panic(expected = "lists its own record alone")]
fn the_registry_conformance_check_catches_a_case_blind_registry() {
    let registry = CaseBlindRegistry(Arc::new(MemoryStore::new()));
    pollster::block_on(sealed_session::conformance::user_ids_of_every_shape_are_kept_apart_in_the_registry(
        &registry,
    ));
}

/// A user sees and ends only their own sessions, even through a registry
/// that lists another user's records under their ID.
#[test]
fn a_registry_that_lists_another_users_records_shows_and_ends_none_of_them() {
    pollster::block_on(async {
        let registry = Arc::new(MemoryStore::new());
        let config = config_with(Keyring::generate().unwrap(), |b| {
            b.session_registry(CaseBlindRegistry(Arc::clone(&registry)))
        });
        let alice = sign_in_from(&config, "alice", CHROME).await;
        let mallory = sign_in_from(&config, "ALICE", FIREFOX).await;
        let devices = on(&config, &mallory).await.devices().await.unwrap();
        assert_eq!(devices.len(), 1, "only ALICE's own session: {devices:?}");
        let alices = on(&config, &alice).await.devices().await.unwrap();
        let ended = on(&config, &mallory).await.end_device(alices[0].reference).await.unwrap();
        assert!(!ended && on(&config, &alice).await.has_session(), "alice's session was ended by ALICE");
        // Nor does logging ALICE out everywhere unlist alice's session.
        on(&config, &mallory).await.logout_everywhere().await.unwrap();
        assert_eq!(
            on(&config, &alice).await.devices().await.unwrap().len(),
            1,
            "alice's session is unlisted"
        );
    });
}

#[test]
fn a_session_limit_that_cannot_be_counted_refuses_the_login() {
    pollster::block_on(async {
        for policy in [LimitPolicy::EndOldest, LimitPolicy::RefuseLogin] {
            let config = config_with(Keyring::generate().unwrap(), |b| {
                b.session_registry(UncountableRegistry).session_limit(3, policy)
            });
            let handle = ready(&config, &TestRequest::new("GET", "/")).await;
            let refused = handle.typed::<String>().login("alice", "A".into()).await.unwrap_err();
            assert_eq!(refused.status(), 503, "{refused:?}");
            assert!(set_cookies(&handle).is_empty(), "no session was started");
        }
        // Without a limit, nothing is counted: the login goes through.
        let config = config_with(Keyring::generate().unwrap(), |b| b.session_registry(UncountableRegistry));
        let handle = ready(&config, &TestRequest::new("GET", "/")).await;
        handle.typed::<String>().login("alice", "A".into()).await.unwrap();
    });
}

#[test]
fn device_lists_and_limits_need_a_registry() {
    pollster::block_on(async {
        let config = config();
        let handle = on(&config, &signed_in(&config, "alice").await).await;
        assert!(matches!(handle.devices().await, Err(HandleError::NoRegistry)));
        let builder =
            || WebConfig::builder(Sealer::builder(Keyring::generate().unwrap()), MemoryStore::new());
        let no_registry = builder().session_limit(3, LimitPolicy::EndOldest).build();
        assert!(matches!(no_registry, Err(WebConfigError::SessionLimit(_))));
        let zero =
            builder().session_registry(MemoryStore::new()).session_limit(0, LimitPolicy::EndOldest).build();
        assert!(matches!(zero, Err(WebConfigError::SessionLimit(_))));
        // Each login records its session before the one it replaces goes:
        // ten records of room under the registry's bound, whatever the
        // policy.
        let most = sealed_session::registry::MAX_RECORDS_PER_USER;
        for policy in [LimitPolicy::EndOldest, LimitPolicy::RefuseLogin] {
            let limited =
                |max| builder().session_registry(MemoryStore::new()).session_limit(max, policy).build();
            assert!(limited(most - 10).is_ok(), "{policy:?}");
            match limited(most - 9) {
                Err(WebConfigError::SessionLimit(why)) => assert!(why.contains("at most 90"), "{why}"),
                other => panic!("{policy:?}: {other:?}"),
            }
        }
    });
}

#[test]
fn a_browser_is_labelled_by_its_family_and_system_only() {
    use sealed_session::registry::user_agent_label;
    let label = |agent| user_agent_label(Some(agent));
    assert_eq!(label(CHROME), "Chrome on Linux");
    assert_eq!(label(FIREFOX), "Firefox on Windows");
    assert_eq!(
        label("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1"),
        "Safari on iOS"
    );
    assert_eq!(
        label(
            "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36 Edg/131.0"
        ),
        "Edge on Android"
    );
    assert_eq!(label("<script>"), "Unknown browser");
    assert_eq!(user_agent_label(None), "Unknown browser");
    // Whatever the header holds, a label is at most MAX_LABEL_LEN bytes of
    // printable ASCII, as `SessionRecord::user_agent` promises.
    let long = format!("{}\u{7f}\n<b>é Edg/ CrOS iPad Chromium/ OPR/", "x".repeat(10_000));
    for agent in [long.as_str(), "Chromium/1 (CrOS x86_64) OPR/1", "curl/8.0", "\u{0}", ""] {
        let label = label(agent);
        assert!(label.len() <= sealed_session::registry::MAX_LABEL_LEN, "{label:?}");
        assert!(label.bytes().all(|b| b.is_ascii_graphic() || b == b' '), "{label:?}");
    }
}

#[test]
fn a_session_reference_reads_back_from_its_text_and_nothing_else_does() {
    let reference = SessionRef::of(SessionId::from_hex("000102030405060708090a0b0c0d0e0f").unwrap());
    assert_eq!("fde1f30763925017".parse::<SessionRef>(), Ok(reference));
    assert_eq!("FDE1F30763925017".parse::<SessionRef>(), Ok(reference));
    for bad in
        ["", "fde1f3076392501", "fde1f307639250177", "fde1f3076392501g", "+de1f30763925017", "fde1f30763925é"]
    {
        assert!(bad.parse::<SessionRef>().is_err(), "{bad}");
    }
}

#[test]
fn a_session_past_its_absolute_expiry_is_not_listed() {
    use std::time::Duration;
    pollster::block_on(async {
        let (recorder, clock) = (Recorder::default(), ManualClock::at_unix(AUDIT_START));
        let store = Arc::new(MemoryStore::with_clock(clock.clone()));
        let sealer = Sealer::builder(Keyring::generate().unwrap())
            .clock(clock.clone())
            .absolute_timeout(Duration::from_secs(7200))
            .idle_timeout(Duration::from_secs(7200))
            // No re-issue, so no record written after the first expires
            // (a write drops expired records): only the list's own time
            // keeps it out.
            .renew_after(Duration::from_secs(7200));
        let builder = WebConfig::builder(sealer, Arc::clone(&store)).session_registry(store).audit(recorder);
        let config = Arc::new(builder.build().unwrap());
        let _early = sign_in_from(&config, "alice", FIREFOX).await;
        clock.advance(Duration::from_secs(3600));
        let late = sign_in_from(&config, "alice", CHROME).await;
        assert_eq!(on(&config, &late).await.devices().await.unwrap().len(), 2);
        clock.advance(Duration::from_secs(3601));
        let devices = on(&config, &late).await.devices().await.unwrap();
        assert_eq!(devices.len(), 1, "the first session has expired");
        assert!(devices[0].current, "the later one stays");
    });
}

/// A refused request's path and method are logged short and printable: a client cannot
/// write a line of any length, nor one that a control or bidirectional
/// character breaks or disguises (a framework may hand over the path
/// percent-decoded). Of the path, only the first segment: the others may
/// hold a secret (`/reset/<token>`).
#[test]
fn a_refused_requests_path_and_method_are_logged_short_and_printable() {
    use tracing_subscriber::fmt::MakeWriter as _;
    // The line logged for a request refused as cross-site, and the value
    // of each of its fields.
    let refused_line = |method: &str, path: &str| {
        let request = TestRequest::new(method, path).header("sec-fetch-site", "cross-site");
        let logs: &'static std::sync::Mutex<Vec<u8>> = Box::leak(Box::default());
        let refusal = tracing::subscriber::with_default(
            tracing_subscriber::fmt().with_writer(move || logs.make_writer()).with_ansi(false).finish(),
            || pollster::block_on(refused(&config(), &request)),
        );
        assert!(matches!(refusal, Refusal::Csrf(_)), "{refusal:?}");
        let logged = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
        assert!(!logged.contains("\ny"), "{logged}");
        let line =
            logged.lines().find(|line| line.contains("CSRF check refused")).expect("the refusal is logged");
        assert!(line.contains(" INFO "), "logged at info: {line}");
        line.to_owned()
    };
    let field = |line: &str, name: &str| {
        let start = line.find(&format!(" {name}=")).expect(name) + name.len() + 2;
        line[start..].split(' ').next().unwrap().to_owned()
    };
    // Any token is a method, and every one but GET, HEAD, OPTIONS and TRACE
    // is checked.
    let line = refused_line(&"M".repeat(100_000), &format!("/x\ny\u{202e}{}", "z".repeat(10_000)));
    // 16 and 128 printable characters, each other one shown as `?`.
    assert_eq!(field(&line, "method"), "M".repeat(16), "{line}");
    assert_eq!(field(&line, "path"), format!("/x?y?{}", "z".repeat(128 - 5)), "{line}");
    let line = refused_line("POST", "/reset/SECRET123/confirm");
    assert_eq!(field(&line, "path"), "/reset/...", "{line}");
    assert!(!line.contains("SECRET123"), "{line}");
}

/// Re-authentication under a limit that refuses logins goes through the
/// same claim as a login: at the limit, the session it replaces makes its
/// room (it is not refused), and the new session is counted from then on.
#[test]
fn reauthentication_under_a_refusing_limit_takes_the_place_of_the_session_it_replaces() {
    pollster::block_on(async {
        let (config, _, _) = listed(|b| b.session_limit(1, LimitPolicy::RefuseLogin));
        let laptop = sign_in_from(&config, "alice", CHROME).await;
        let handle = on(&config, &laptop).await;
        let renewed = handle.typed::<String>().reauthenticate().await.unwrap();
        let renewed_cookie = pair(&set_cookies(&handle)[0]).to_owned();
        assert!(!on(&config, &laptop).await.has_session(), "the old session ended");
        let devices = on(&config, &renewed_cookie).await.devices().await.unwrap();
        assert_eq!(
            devices.iter().map(|d| (d.reference, d.current)).collect::<Vec<_>>(),
            [(SessionRef::of(renewed.id()), true)]
        );
        assert_eq!(recorded(&config, "alice").await, 1, "the old record went");
        let elsewhere = ready(&config, &TestRequest::new("GET", "/")).await;
        let refused = elsewhere.typed::<String>().login("alice", "A".into()).await.unwrap_err();
        assert!(
            matches!(refused, HandleError::SessionLimit { max: 1 }),
            "the new session counts: {refused:?}"
        );
    });
}

/// A new ID, or a new epoch for "log out my other sessions", whose session
/// reaches its absolute timeout while the request runs: the old session
/// (or every session of the user) has ended on every server by the time
/// the new one cannot be sealed. The audit log says so, and the other
/// devices' records go with a new epoch; both used to end with no event,
/// and the records were kept.
#[test]
fn a_new_id_or_epoch_that_cannot_be_sealed_still_audits_what_ended() {
    use sealed_session::SealError;
    use std::time::Duration;
    pollster::block_on(async {
        for logout_others in [false, true] {
            let (recorder, clock) = (Recorder::default(), ManualClock::at_unix(AUDIT_START));
            let store = Arc::new(MemoryStore::with_clock(clock.clone()));
            let sealer = Sealer::builder(Keyring::generate().unwrap())
                .clock(clock.clone())
                .idle_timeout(Duration::from_secs(3600))
                .absolute_timeout(Duration::from_secs(3600));
            let builder = WebConfig::builder(sealer, Arc::clone(&store))
                .session_registry(Arc::clone(&store))
                .audit(recorder.clone());
            let config = Arc::new(builder.build().unwrap());
            let cookie = sign_in_from(&config, "alice", CHROME).await;
            clock.advance(Duration::from_secs(1800));
            sign_in_from(&config, "alice", FIREFOX).await;
            clock.advance(Duration::from_secs(1799));
            let handle = on(&config, &cookie).await;
            let old = id_of(&handle);
            recorder.take();
            clock.advance(Duration::from_secs(2));
            let (failed, expected) = if logout_others {
                let epoch = store.login_state("alice").await.unwrap().user_epoch + 1;
                (handle.logout_others().await.map(drop), AuditKind::LogoutEverywhere { epoch })
            } else {
                (handle.renew_id().await, AuditKind::Logout)
            };
            assert!(matches!(failed, Err(HandleError::Seal(SealError::Expired))), "{failed:?}");
            let (kind, user, session, _) = only(&recorder);
            assert_eq!(
                (kind, user.as_deref(), session),
                (expected, Some("alice"), Some(SessionRef::of(old)))
            );
            let store: &MemoryStore = &store;
            // A new ID: the old session's record went (listed as of its
            // life, when it would show), and the other device's stays. A new
            // epoch: the other device's went too.
            let (at, left) = if logout_others { (AUDIT_START + 3601, 0) } else { (AUDIT_START, 1) };
            let records = sealed_session::SessionRegistry::list(store, "alice", at as u64).await.unwrap();
            assert_eq!(records.len(), left, "logout_others: {logout_others}: {records:?}");
        }
    });
}

/// A cookie the store cannot vouch for (its epoch is ahead of the store's:
/// the store lost data) is no session through the web driver: its cookie
/// is removed, the log says so at `error` (an operator must look at the
/// store), and the audit log's reason is `store_fault`, with its user.
#[test]
fn a_cookie_ahead_of_the_store_is_removed_logged_as_an_error_and_audited() {
    use tracing_subscriber::fmt::MakeWriter as _;
    pollster::block_on(async {
        let (recorder, clock) = (Recorder::default(), ManualClock::at_unix(AUDIT_START));
        let keyring = sealed_session::SharedKeyring::new(Keyring::generate().unwrap());
        let config_on = |store: MemoryStore| {
            let sealer = Sealer::builder(keyring.clone()).clock(clock.clone());
            Arc::new(WebConfig::builder(sealer, store).audit(recorder.clone()).build().unwrap())
        };
        let intact = MemoryStore::with_clock(clock.clone());
        assert_eq!(intact.revoke_user("alice").await.unwrap(), 1);
        let cookie = sign_in_from(&config_on(intact), "alice", CHROME).await;
        // The store after it lost its data: alice's epoch is 0 again.
        let after = config_on(MemoryStore::with_clock(clock.clone()));
        recorder.take();
        let logs: &'static std::sync::Mutex<Vec<u8>> = Box::leak(Box::default());
        let handle = tracing::subscriber::with_default(
            tracing_subscriber::fmt().with_writer(move || logs.make_writer()).with_ansi(false).finish(),
            || pollster::block_on(on(&after, &cookie)),
        );
        assert!(!handle.has_session());
        let response = handle.finish();
        assert_eq!(response.set_cookies.len(), 1, "{:?}", response.set_cookies);
        assert!(
            response.set_cookies[0].starts_with("__Host-session=;")
                && response.set_cookies[0].contains("Max-Age=0")
        );
        let logged = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
        let line = logged.lines().find(|line| line.contains("session cookie refused")).expect("logged");
        assert!(line.contains("ERROR"), "{line}");
        let (kind, user, _, _) = only(&recorder);
        assert_eq!(
            (kind, user.as_deref()),
            (AuditKind::SessionRefused { reason: "store_fault" }, Some("alice"))
        );
    });
}
