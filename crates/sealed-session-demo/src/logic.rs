//! The demo's routes with no web framework: each takes the request's
//! session handle (the core's, which both frameworks' extractors wrap) and
//! what it needs of the request, and says what to answer. The axum and
//! actix-web apps are thin adapters over these, so that both serve the same
//! pages, JSON and cookies.

use sealed_session::redirect::{local_path, login_url};
use sealed_session::web::{is_form, HandleError, Level, LoginOptions, Sessions};
use sealed_session::LoginError;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::{page, users, Profile, SessionJson, MAX_CART_ITEMS};

/// The handle of a demo request.
pub(crate) type Handle = Sessions<Profile>;

/// What a route answers.
pub(crate) enum Reply {
    /// `200` with an HTML page.
    Page(String),
    /// `303 See Other` to this local URL.
    Redirect(String),
    /// `200` with this JSON.
    Json(Box<SessionJson>),
    /// `200` with this JSON.
    Value(serde_json::Value),
    /// `200` with this text.
    Text(&'static str),
    /// An error status with a text body.
    Refused(u16, &'static str),
    /// `200` with the stylesheet, which shared caches may keep.
    Stylesheet,
    /// `200` with the metrics in Prometheus's text format.
    Metrics(String),
}

/// The demo's routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Index,
    Account,
    Login,
    Logout,
    LogoutEverywhere,
    LogoutOthers,
    Settings,
    SaveSettings,
    Devices,
    ApiDevices,
    RevokeDevice,
    ReauthPage,
    Reauth,
    Profile,
    ProfilePage,
    LogoutOthersPage,
    RevokeDevicePage,
    Cart,
    Webhook,
    ApiSession,
    Style,
    Metrics,
}

/// How a route is reached: `GET` (and `HEAD`) or `POST`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
}

/// Which guard a route needs; each app puts its framework's on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Guard {
    /// None.
    Open,
    /// A signed-in session.
    SignedIn,
    /// A session whose user signed in or confirmed their password within
    /// the sudo window.
    RecentLogin,
}

impl Route {
    /// The guard of this route: the settings page, and the changes posted
    /// to it or from the home page (guarding the page alone would let a
    /// copied cookie post the change), need a recent login; so does ending
    /// the user's other sessions, which would let a copied cookie that
    /// stays signed in sign the owner out, again and again. Logging out
    /// everywhere ends the copy too, and stays open.
    pub(crate) fn guard(self) -> Guard {
        match self {
            Route::Account | Route::Devices => Guard::SignedIn,
            Route::Settings
            | Route::SaveSettings
            | Route::Profile
            | Route::ProfilePage
            | Route::LogoutOthers
            | Route::LogoutOthersPage
            | Route::RevokeDevice
            | Route::RevokeDevicePage => Guard::RecentLogin,
            _ => Guard::Open,
        }
    }
}

/// Every route, its method and path; [`Route::guard`] says which need a
/// session.
pub(crate) const ROUTES: [(Route, Method, &str); 22] = [
    (Route::Index, Method::Get, "/"),
    (Route::Account, Method::Get, "/account"),
    (Route::Login, Method::Post, "/login"),
    (Route::Logout, Method::Post, "/logout"),
    (Route::LogoutEverywhere, Method::Post, "/logout-everywhere"),
    (Route::LogoutOthers, Method::Post, "/logout-others"),
    (Route::Settings, Method::Get, "/settings"),
    (Route::SaveSettings, Method::Post, "/settings"),
    (Route::Devices, Method::Get, "/devices"),
    (Route::ApiDevices, Method::Get, "/api/devices"),
    (Route::RevokeDevice, Method::Post, "/devices/revoke"),
    (Route::ReauthPage, Method::Get, "/reauth"),
    (Route::Reauth, Method::Post, "/reauth"),
    (Route::Profile, Method::Post, "/profile"),
    (Route::ProfilePage, Method::Get, "/profile"),
    (Route::LogoutOthersPage, Method::Get, "/logout-others"),
    (Route::RevokeDevicePage, Method::Get, "/devices/revoke"),
    (Route::Cart, Method::Post, "/cart"),
    (Route::Webhook, Method::Post, "/webhook"),
    (Route::ApiSession, Method::Get, "/api/session"),
    (Route::Style, Method::Get, "/style.css"),
    (Route::Metrics, Method::Get, "/metrics"),
];

/// What the routes read of a request besides its session. Not `Debug`: the
/// body of a sign-in holds a password.
#[derive(Clone, Copy)]
pub(crate) struct Input<'a> {
    /// The query string, if there is one.
    pub(crate) query: Option<&'a str>,
    /// The `Content-Type` header, if it is text.
    pub(crate) content_type: Option<&'a str>,
    /// The body.
    pub(crate) body: &'a [u8],
}

/// The answer of `route` to a request.
pub(crate) async fn answer(route: Route, handle: &Handle, input: Input<'_>) -> Result<Reply, HandleError> {
    let Input { query, content_type, body } = input;
    let answered = match route {
        Route::Index => index(handle, query),
        Route::Account => account(handle),
        Route::Login => login(handle, content_type, body).await,
        Route::Logout => logout(handle).await,
        Route::LogoutEverywhere => logout_everywhere(handle).await,
        Route::LogoutOthers => logout_others(handle).await,
        Route::Settings => settings(handle),
        Route::SaveSettings => profile(handle, content_type, body, "/settings"),
        Route::Devices => devices(handle).await,
        Route::ApiDevices => api_devices(handle).await,
        Route::RevokeDevice => revoke_device(handle, content_type, body).await,
        Route::ReauthPage => reauth_page(handle, query),
        Route::Reauth => reauth(handle, content_type, body).await,
        Route::Profile => profile(handle, content_type, body, "/"),
        // Where the password check sends a browser back after a stale
        // `POST /profile`: the home page, whose form posts there.
        Route::ProfilePage => Ok(Reply::Redirect("/".to_owned())),
        // The same after a stale `POST /logout-others` or
        // `POST /devices/revoke`: the pages whose buttons post there.
        Route::LogoutOthersPage => Ok(Reply::Redirect("/".to_owned())),
        Route::RevokeDevicePage => Ok(Reply::Redirect("/devices".to_owned())),
        Route::Cart => add_to_cart(handle, content_type, body).await,
        Route::Webhook => Ok(webhook(body)),
        Route::ApiSession => api_session(handle),
        Route::Style => Ok(Reply::Stylesheet),
        Route::Metrics => Ok(Reply::Metrics(crate::metrics_text())),
    };
    match answered {
        Ok(reply) | Err(Stop::Early(reply)) => Ok(reply),
        // The session ended while this request ran (from another tab or
        // device, or by the first request of a double submit): a browser
        // is told so on the sign-in page, as after a logout; the JSON
        // routes keep the `401`.
        Err(Stop::Failed(HandleError::Login(sealed_session::LoginError::Ended)))
            if !matches!(route, Route::ApiDevices | Route::ApiSession) =>
        {
            // The notice is a courtesy: the sign-in page comes without it
            // if it cannot be kept.
            let _shown = handle.flash(Level::Warning, "This session had already ended. Sign in again.");
            Ok(Reply::Redirect("/".to_owned()))
        }
        Err(Stop::Failed(err)) => Err(err),
    }
}

/// Why a route stopped before its last line: an answer found early (a bad
/// form), or the session could not be used.
enum Stop {
    Early(Reply),
    Failed(HandleError),
}

impl From<HandleError> for Stop {
    fn from(err: HandleError) -> Self {
        Stop::Failed(err)
    }
}

/// A URL-encoded form body, or the answer to a request that sent none:
/// `415` for another content type, `422` for a form without the fields.
fn form<T: DeserializeOwned>(content_type: Option<&str>, body: &[u8]) -> Result<T, Stop> {
    if !is_form(content_type) {
        return Err(Stop::Early(Reply::Refused(415, "expected a URL-encoded form")));
    }
    serde_urlencoded::from_bytes(body).map_err(|_| Stop::Early(Reply::Refused(422, "invalid form")))
}

/// `GET /`: the login form (and the anonymous cart) or the session. `query`
/// is the request's query string; its `next` is where to go after signing
/// in.
fn index(handle: &Handle, query: Option<&str>) -> Result<Reply, Stop> {
    let flashes = handle.take_flashes();
    let current = handle.current();
    Ok(Reply::Page(match current.as_ref().filter(|s| s.session().user_id().is_some()) {
        Some(opened) => {
            page::signed_in(opened.verified(), &handle.sealer().csrf_token(opened.session()), &flashes)
        }
        None => {
            let cart = current.as_ref().map(|s| &s.session().data().cart[..]);
            let next = next_in(query);
            page::signed_out(&handle.csrf_token()?, cart, next.as_deref().and_then(local_path), &flashes)
        }
    }))
}

/// The `next` parameter of a query string, decoded.
fn next_in(query: Option<&str>) -> Option<String> {
    let query = query?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "next")
        .map(|(_, value)| value.into_owned())
}

/// Why a route that needs a session has none: `NoSession`, or, for a
/// session sealed under a key this server lacks yet (a keyring rollout it
/// lags behind in), `UnreadableSession` (`503`: it lives elsewhere).
fn no_session(handle: &Handle) -> HandleError {
    if handle.session_unreadable() {
        HandleError::UnreadableSession
    } else {
        HandleError::NoSession
    }
}

/// `GET /settings`: only a user who signed in or confirmed their password
/// within the sudo window gets here (the route requires it).
fn settings(handle: &Handle) -> Result<Reply, Stop> {
    let current = handle.signed_in().ok_or_else(|| no_session(handle))?;
    let confirmed = handle.authenticated_at().ok_or_else(|| no_session(handle))?;
    let token = handle.sealer().csrf_token(current.session());
    Ok(Reply::Page(page::settings(current.session(), confirmed, &token, &handle.take_flashes())))
}

/// `GET /devices`: where the user is signed in, with a button to sign
/// each other device out (the route requires a session).
async fn devices(handle: &Handle) -> Result<Reply, Stop> {
    let current = handle.signed_in().ok_or_else(|| no_session(handle))?;
    let devices = handle.devices().await?;
    let token = handle.sealer().csrf_token(current.session());
    Ok(Reply::Page(page::devices(&devices, &token, &handle.take_flashes())))
}

/// `GET /api/devices`: the user's sessions as JSON.
async fn api_devices(handle: &Handle) -> Result<Reply, Stop> {
    let sessions: Vec<_> = handle
        .devices()
        .await?
        .into_iter()
        .map(|device| {
            serde_json::json!({
                "id": device.reference.to_string(),
                "current": device.current,
                "created_at": page::timestamp(device.created_at),
                "last_seen": page::timestamp(device.last_seen),
                "user_agent": device.user_agent,
                "remembered": device.remembered,
                "device_bound": device.device_bound,
            })
        })
        .collect();
    Ok(Reply::Value(serde_json::json!({ "sessions": sessions })))
}

#[derive(Deserialize)]
struct RevokeForm {
    /// The device's reference, as `/devices` shows it.
    session: String,
}

/// `POST /devices/revoke`: signs another of the user's devices out.
async fn revoke_device(handle: &Handle, content_type: Option<&str>, body: &[u8]) -> Result<Reply, Stop> {
    let form: RevokeForm = form(content_type, body)?;
    let ended = match form.session.parse() {
        Ok(reference) => handle.end_device(reference).await?,
        Err(_) => false,
    };
    if ended {
        handle.flash(Level::Success, "Signed that device out. Its session is revoked on every server.")?;
    } else {
        handle.flash(
            Level::Error,
            "That session was not signed out: it is not one of yours, or it ended or changed meanwhile. \
             See the list as it is now.",
        )?;
    }
    Ok(Reply::Redirect("/devices".to_owned()))
}

/// `GET /reauth`: the form that asks a signed-in user for their password
/// again; without a session, the login form (which comes back to `next`).
fn reauth_page(handle: &Handle, query: Option<&str>) -> Result<Reply, Stop> {
    let next = next_in(query);
    let next = next.as_deref().and_then(local_path).unwrap_or("/settings");
    let Some(current) = handle.signed_in() else {
        return Ok(Reply::Redirect(login_url("/", next)));
    };
    let token = handle.sealer().csrf_token(current.session());
    let user = current.user_id().unwrap_or_default();
    Ok(Reply::Page(page::reauth(user, &token, next, &handle.take_flashes())))
}

#[derive(Deserialize)]
struct ReauthForm {
    password: String,
    /// Where to go once confirmed: only a path on this site is followed.
    #[serde(default)]
    next: String,
}

/// `POST /reauth`: checks the signed-in user's password again; the session
/// then starts anew under a new ID, authenticated now.
async fn reauth(handle: &Handle, content_type: Option<&str>, body: &[u8]) -> Result<Reply, Stop> {
    let form: ReauthForm = form(content_type, body)?;
    let next = local_path(&form.next).unwrap_or("/settings").to_owned();
    let Some(user) = handle.user_id() else {
        return Ok(Reply::Redirect(login_url("/", &next)));
    };
    if !password_is(&user, form.password).await? {
        tracing::info!("failed re-authentication");
        handle.flash(Level::Error, "Wrong password.")?;
        return Ok(Reply::Redirect(login_url("/reauth", &next)));
    }
    handle.reauthenticate().await?;
    handle.flash(Level::Success, "Password confirmed. A new session ID was issued.")?;
    Ok(Reply::Redirect(next))
}

/// Whether `password` is `user`'s: a few checks at a time, off the
/// executor, and a bounded queue of attempts waiting for their turn (the
/// others get `503` at once), so that a flood of attempts cannot exhaust
/// memory (Argon2 takes tens of milliseconds and 19 MiB; each waiting
/// request holds its body).
async fn password_is(user: &str, password: String) -> Result<bool, Stop> {
    check_password(admitted(&PASSWORD_QUEUE)?, user, password).await
}

/// Checks `password` for `user` in the place `place` holds in the queue.
async fn check_password(place: SemaphorePermit<'static>, user: &str, password: String) -> Result<bool, Stop> {
    let user = user.to_owned();
    Ok(in_turn(place, &PASSWORD_CHECKS, move || users::check_password(&user, &password)).await)
}

/// A place in `queue` (the attempts waiting or running), if it has room
/// now; `503` if it has not.
fn admitted(queue: &'static Semaphore) -> Result<SemaphorePermit<'static>, Stop> {
    queue.try_acquire().map_err(|_| {
        tracing::warn!("password checks: the queue is full, an attempt is refused");
        Stop::Early(Reply::Refused(503, "too many sign-ins at once: try again in a moment"))
    })
}

/// [`in_turn`] with a place in `queue`, if it has room now.
#[cfg(test)]
async fn queued(
    queue: &'static Semaphore,
    running: &'static Semaphore,
    check: impl FnOnce() -> bool + Send + 'static,
) -> Result<bool, Stop> {
    Ok(in_turn(admitted(queue)?, running, check).await)
}

/// Runs `check` on a blocking thread once `running` has room, holding
/// `place` in the queue. The check keeps its places until it ends, even if
/// the request that started it is dropped (its client hung up): a check
/// once started runs to its end, and must count until then.
async fn in_turn(
    place: SemaphorePermit<'static>,
    running: &'static Semaphore,
    check: impl FnOnce() -> bool + Send + 'static,
) -> bool {
    let Ok(permit) = running.acquire().await else {
        return false;
    };
    let checked = tokio::task::spawn_blocking(move || {
        let _held = (place, permit);
        check()
    });
    checked.await.unwrap_or(false)
}

/// `GET /account`: only signed-in users get here (the route requires it).
fn account(handle: &Handle) -> Result<Reply, Stop> {
    let current = handle.current().ok_or_else(|| no_session(handle))?;
    Ok(Reply::Page(page::account(current.session())))
}

/// Password checks running at once; the others wait their turn.
static PASSWORD_CHECKS: Semaphore = Semaphore::const_new(4);

/// Password checks running or waiting; more are refused.
static PASSWORD_QUEUE: Semaphore = Semaphore::const_new(64);

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    /// Where to go once signed in: only a path on this site is followed.
    #[serde(default)]
    next: String,
    /// `on` when "remember me" is ticked.
    #[serde(default)]
    remember: Option<String>,
}

/// `POST /login`.
async fn login(handle: &Handle, content_type: Option<&str>, body: &[u8]) -> Result<Reply, Stop> {
    let form: LoginForm = form(content_type, body)?;
    let username = form.username.trim().to_owned();
    let next = form.next;
    let remember = form.remember.as_deref() == Some("on");
    // Read before the password is checked (once the attempt has its place
    // in the queue, so that a refused one costs the store nothing): a
    // logout everywhere while it is (a password change, say) refuses this
    // login, rather than letting a check that began before it start a
    // session that outlives it.
    let place = admitted(&PASSWORD_QUEUE)?;
    let ticket = match handle.login_ticket(&username).await {
        Err(HandleError::Login(LoginError::UserIdTooLong { .. })) => return bad_login(handle, &next),
        ticket => ticket?,
    };
    if !check_password(place, &username, form.password).await? {
        // Not the name as typed: it may be a password typed in the wrong field.
        tracing::info!("failed login");
        return bad_login(handle, &next);
    }
    let mut display_name = username.clone();
    if let Some(first) = display_name.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    // The cart of an anonymous session comes along; the session ID does not.
    let carry = |before: Option<sealed_session::Session<Profile>>| {
        let cart = before.filter(|s| s.user_id().is_none()).map(|s| s.into_data().cart).unwrap_or_default();
        Profile { display_name, cart }
    };
    let options = LoginOptions::default().remember(remember).checked_since(ticket);
    match handle.login_with_options(&username, options, carry).await {
        Err(HandleError::Login(LoginError::RevokedSinceCheck)) => {
            handle.flash(Level::Error, "You were signed out everywhere as you signed in. Sign in again.")?;
            return Ok(Reply::Redirect(login_url("/", &next)));
        }
        signed_in => signed_in?,
    };
    // Who signed in goes to the audit log, where user IDs are documented,
    // not to the application log.
    tracing::info!("signed in");
    handle.flash(
        Level::Success,
        format!("Signed in as {username}. A new session ID was issued for this login."),
    )?;
    Ok(Reply::Redirect(local_path(&next).unwrap_or("/").to_owned()))
}

fn bad_login(handle: &Handle, next: &str) -> Result<Reply, Stop> {
    handle.flash(Level::Error, "Wrong user name or password.")?;
    Ok(Reply::Redirect(login_url("/", next)))
}

/// `POST /logout`. An anonymous session (a cart) has no one to sign out,
/// and anyone can make one: its logout would let any client write a
/// denylist entry to the store with each request, so it is left as it is.
async fn logout(handle: &Handle) -> Result<Reply, Stop> {
    if handle.has_session() && handle.user_id().is_none() {
        return Ok(Reply::Redirect("/".to_owned()));
    }
    handle.logout().await?;
    handle.flash(Level::Success, "Signed out. This session is revoked on every server.")?;
    Ok(Reply::Redirect("/".to_owned()))
}

/// `POST /logout-everywhere`.
async fn logout_everywhere(handle: &Handle) -> Result<Reply, Stop> {
    let epoch = handle.logout_everywhere().await?;
    tracing::info!(epoch, "logged out everywhere");
    handle.flash(Level::Success, "Signed out everywhere. Every session of that user is revoked.")?;
    Ok(Reply::Redirect("/".to_owned()))
}

/// `POST /logout-others`: every other session of the user ends; this one
/// stays signed in, under a new ID.
async fn logout_others(handle: &Handle) -> Result<Reply, Stop> {
    let epoch = handle.logout_others().await?;
    tracing::info!(epoch, "signed out of every other session");
    handle.flash(Level::Success, "Signed out of every other session. This one stays signed in.")?;
    Ok(Reply::Redirect("/".to_owned()))
}

/// `text` trimmed, if that leaves 1 to 64 bytes (as many ASCII characters,
/// fewer others) and no control characters. Counted in bytes, so that a
/// full cart and a display name always fit in the session cookie, a
/// sign-in's additions included: 64 emoji are 256 bytes.
fn short_text(text: &str) -> Option<&str> {
    let text = text.trim();
    ((1..=64).contains(&text.len()) && !text.chars().any(char::is_control)).then_some(text)
}

#[derive(Deserialize)]
struct ProfileForm {
    display_name: String,
}

/// `POST /profile` (and `POST /settings`, within the sudo window): changes
/// the display name, then goes `back`.
fn profile(handle: &Handle, content_type: Option<&str>, body: &[u8], back: &str) -> Result<Reply, Stop> {
    let form: ProfileForm = form(content_type, body)?;
    let Some(name) = short_text(&form.display_name) else {
        handle.flash(Level::Error, "A display name has 1 to 64 bytes (64 letters a to z, fewer others).")?;
        return Ok(Reply::Redirect(back.to_owned()));
    };
    handle.update(|profile| profile.display_name = name.to_owned())?;
    handle.flash(Level::Success, "Saved. The session was sealed again with the new value.")?;
    Ok(Reply::Redirect(back.to_owned()))
}

#[derive(Deserialize)]
struct CartForm {
    item: String,
}

/// `POST /cart`: adds an item to the cart, signed in or not: without a
/// session, this starts an anonymous one.
async fn add_to_cart(handle: &Handle, content_type: Option<&str>, body: &[u8]) -> Result<Reply, Stop> {
    let form: CartForm = form(content_type, body)?;
    let Some(item) = short_text(&form.item) else {
        handle.flash(Level::Error, "An item has 1 to 64 bytes (64 letters a to z, fewer others).")?;
        return Ok(Reply::Redirect("/".to_owned()));
    };
    let added = handle
        .update_or_insert(Profile::default, |profile| {
            let room = profile.cart.len() < MAX_CART_ITEMS;
            if room {
                profile.cart.push(item.to_owned());
            }
            room
        })
        .await?;
    if added {
        handle.flash(Level::Success, format!("Added {item} to the cart."))?;
    } else {
        handle.flash(Level::Error, format!("The cart holds at most {MAX_CART_ITEMS} items."))?;
    }
    Ok(Reply::Redirect("/".to_owned()))
}

/// `POST /webhook`: a payment provider's notification, say. Other sites
/// post here by design, so the route is exempt from CSRF checks, and it
/// neither reads nor changes the session (a real one would check the
/// provider's signature).
fn webhook(body: &[u8]) -> Reply {
    tracing::info!(bytes = body.len(), "webhook received");
    Reply::Text("received")
}

/// `GET /api/session`: the session as JSON.
fn api_session(handle: &Handle) -> Result<Reply, Stop> {
    let current = handle.current().ok_or_else(|| no_session(handle))?;
    let csrf = handle.sealer().csrf_token(current.session());
    let json = SessionJson::new(current.session(), current.key_id(), current.idle_expires_at(), csrf);
    Ok(Reply::Json(Box::new(json)))
}

#[cfg(test)]
mod tests {
    use super::{queued, Reply, Stop, ROUTES};
    use tokio::sync::Semaphore;

    /// Password checks beyond the queue's room are refused at once (`503`),
    /// not queued without bound; a place freed is taken again.
    #[tokio::test]
    async fn password_checks_beyond_the_queue_are_refused_at_once() {
        let queue: &'static Semaphore = Box::leak(Box::new(Semaphore::new(2)));
        let running: &'static Semaphore = Box::leak(Box::new(Semaphore::new(1)));
        let held = running.acquire().await.unwrap();
        let waiting = [(); 2].map(|()| tokio::spawn(queued(queue, running, || true)));
        // Both take a place in the queue and wait for the running check.
        while queue.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let refused = queued(queue, running, || true).await;
        assert!(matches!(refused, Err(Stop::Early(Reply::Refused(503, _)))));
        drop(held);
        for attempt in waiting {
            assert!(matches!(attempt.await.unwrap(), Ok(true)));
        }
        assert!(matches!(queued(queue, running, || false).await, Ok(false)));
    }

    /// A check whose request was dropped (its client hung up) keeps its
    /// places until it ends: hanging up does not start more checks.
    #[tokio::test]
    async fn a_check_keeps_its_places_after_its_request_is_dropped() {
        let queue: &'static Semaphore = Box::leak(Box::new(Semaphore::new(1)));
        let running: &'static Semaphore = Box::leak(Box::new(Semaphore::new(1)));
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let request = tokio::spawn(queued(queue, running, move || wait.recv().is_ok()));
        while running.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        request.abort();
        assert!(request.await.is_err_and(|err| err.is_cancelled()));
        let refused = queued(queue, running, || true).await;
        assert!(matches!(refused, Err(Stop::Early(Reply::Refused(503, _)))), "the check still runs");
        release.send(()).unwrap();
        while queue.available_permits() == 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(queued(queue, running, || true).await, Ok(true)));
    }

    /// actix-web guards a path once, with the guard of its first route: the
    /// routes at one path must need the same.
    #[test]
    fn routes_at_one_path_share_their_guard() {
        for (route, _, path) in ROUTES {
            for (other, _, _) in ROUTES.iter().filter(|(_, _, p)| *p == path) {
                assert_eq!(route.guard(), other.guard(), "{route:?} and {other:?} at {path}");
            }
        }
    }
}
