//! The sealed-session demo app, as a library: its routes, its session data
//! and its start-up (data directory, keyring, revocation store). The binary
//! `sealed-session-demo` serves it; tests and the load benchmark build it
//! here.

#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

pub mod page;
pub mod users;

use std::io::Write as _;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

use axum::extract::{Form, Query};
use axum::http::header::{self, HeaderValue};
use axum::response::{Html, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use sealed_session::redirect::local_path;
use sealed_session::SharedStore;
use sealed_session::{ConfigError, CookieSpec, Keyring, KeyringError, RevocationStore, Sealer, Verifier};
use sealed_session_axum::{
    Flashes, LayerError, Level, LoginOptions, RequireSessionLayer, Session, SessionError, SessionLayer,
    Sessions,
};
use sealed_session_stores::StoreUrlError;
use serde::{Deserialize, Serialize};

/// What the demo keeps in each session.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Profile {
    /// Shown on the page; the signed-in user changes it with `POST /profile`.
    pub display_name: String,
    /// Filled with `POST /cart`, before or after signing in.
    pub cart: Vec<String>,
}

/// How long a "remember me" session lives: 30 days.
pub const REMEMBER_FOR: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);
/// How long a "remember me" session survives without a visit: 7 days.
pub const REMEMBER_IDLE: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// The most items a cart holds.
pub const MAX_CART_ITEMS: usize = 20;

/// The app: its routes behind the session layer, plus security headers.
///
/// # Errors
/// [`LayerError`] if the session layer cannot be built.
pub fn app<S: RevocationStore + 'static>(verifier: Verifier<S>) -> Result<Router, LayerError> {
    Ok(routes()
        .layer(
            SessionLayer::<S, Profile>::builder(verifier)
                // Kept when the browser closes only with "remember me".
                .cookie(CookieSpec::default().browser_session())
                .csrf_exempt("/webhook")
                .build()?,
        )
        .layer(axum::middleware::map_response(security_headers)))
}

fn routes() -> Router {
    let signed_in_only = Router::new()
        .route("/account", get(account))
        .route_layer(RequireSessionLayer::<Profile>::redirect_to("/"));
    Router::new()
        .merge(signed_in_only)
        .route("/", get(index))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/logout-everywhere", post(logout_everywhere))
        .route("/profile", post(profile))
        .route("/cart", post(add_to_cart))
        .route("/webhook", post(webhook))
        .route("/api/session", get(api_session))
}

/// Adds the demo's security headers (CSP, nosniff, no referrer) to a
/// response; the load benchmark's baseline route gets them too.
pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // Pages and JSON carry the session's details and CSRF token.
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The query of `GET /`: where to go after signing in.
#[derive(Deserialize)]
struct Next {
    next: Option<String>,
}

async fn index(
    sessions: Sessions<Profile>,
    flashes: Flashes,
    Query(next): Query<Next>,
) -> Result<Html<String>, SessionError> {
    let session = sessions.current();
    Ok(Html(match session.as_ref().filter(|s| s.user_id().is_some()) {
        Some(session) => page::signed_in(session, &flashes.0),
        None => {
            let cart = session.as_ref().map(|s| &s.data().cart[..]);
            let next = next.next.as_deref().and_then(local_path);
            page::signed_out(&sessions.csrf_token()?, cart, next, &flashes.0)
        }
    }))
}

/// A page only a signed-in user sees; others are sent to `/?next=/account`.
async fn account(session: Session<Profile>) -> Html<String> {
    Html(page::account(&session))
}

/// Password checks running at once; the others wait their turn.
static PASSWORD_CHECKS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

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

async fn login(sessions: Sessions<Profile>, Form(form): Form<LoginForm>) -> Result<Redirect, SessionError> {
    let username = form.username.trim().to_owned();
    let next = form.next;
    let remember = form.remember.as_deref() == Some("on");
    let checked = username.clone();
    // Argon2 takes tens of milliseconds and 19 MiB: a few at a time, off
    // the executor, so that a flood of logins cannot exhaust memory.
    let Ok(_permit) = PASSWORD_CHECKS.acquire().await else {
        return bad_login(&sessions, &next);
    };
    let valid = tokio::task::spawn_blocking(move || users::check_password(&checked, &form.password))
        .await
        .unwrap_or(false);
    if !valid {
        // Not the name as typed: it may be a password typed in the wrong field.
        tracing::info!("failed login");
        return bad_login(&sessions, &next);
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
    let options = LoginOptions::default().remember(remember);
    sessions.login_with_options(&username, options, carry).await?;
    tracing::info!(user = %username, "signed in");
    sessions.flash(
        Level::Success,
        format!("Signed in as {username}. A new session ID was issued for this login."),
    )?;
    Ok(Redirect::to(local_path(&next).unwrap_or("/")))
}

fn bad_login(sessions: &Sessions<Profile>, next: &str) -> Result<Redirect, SessionError> {
    sessions.flash(Level::Error, "Wrong user name or password.")?;
    Ok(Redirect::to(&sealed_session::redirect::login_url("/", next)))
}

async fn logout(sessions: Sessions<Profile>) -> Result<Redirect, SessionError> {
    sessions.logout().await?;
    sessions.flash(Level::Success, "Signed out. This session is revoked on every server.")?;
    Ok(Redirect::to("/"))
}

async fn logout_everywhere(sessions: Sessions<Profile>) -> Result<Redirect, SessionError> {
    let epoch = sessions.logout_everywhere().await?;
    tracing::info!(epoch, "logged out everywhere");
    sessions.flash(Level::Success, "Signed out everywhere. Every session of that user is revoked.")?;
    Ok(Redirect::to("/"))
}

/// `text` trimmed, if that leaves 1 to 64 characters and no control
/// characters.
fn short_text(text: &str) -> Option<&str> {
    let text = text.trim();
    ((1..=64).contains(&text.chars().count()) && !text.chars().any(char::is_control)).then_some(text)
}

#[derive(Deserialize)]
struct ProfileForm {
    display_name: String,
}

async fn profile(
    sessions: Sessions<Profile>,
    Form(form): Form<ProfileForm>,
) -> Result<Redirect, SessionError> {
    let Some(name) = short_text(&form.display_name) else {
        sessions.flash(Level::Error, "A display name has 1 to 64 characters.")?;
        return Ok(Redirect::to("/"));
    };
    sessions.update(|profile| profile.display_name = name.to_owned())?;
    sessions.flash(Level::Success, "Saved. The session was sealed again with the new value.")?;
    Ok(Redirect::to("/"))
}

#[derive(Deserialize)]
struct CartForm {
    item: String,
}

/// Adds an item to the cart, signed in or not: without a session, this
/// starts an anonymous one.
async fn add_to_cart(
    sessions: Sessions<Profile>,
    Form(form): Form<CartForm>,
) -> Result<Redirect, SessionError> {
    let Some(item) = short_text(&form.item) else {
        sessions.flash(Level::Error, "An item has 1 to 64 characters.")?;
        return Ok(Redirect::to("/"));
    };
    let added = sessions
        .update_or_insert(Profile::default, |profile| {
            let room = profile.cart.len() < MAX_CART_ITEMS;
            if room {
                profile.cart.push(item.to_owned());
            }
            room
        })
        .await?;
    if added {
        sessions.flash(Level::Success, format!("Added {item} to the cart."))?;
    } else {
        sessions.flash(Level::Error, format!("The cart holds at most {MAX_CART_ITEMS} items."))?;
    }
    Ok(Redirect::to("/"))
}

/// A payment provider's notification, say: other sites post here by design,
/// so the route is exempt from CSRF checks, and it neither reads nor
/// changes the session (a real one would check the provider's signature).
async fn webhook(body: String) -> String {
    tracing::info!(bytes = body.len(), "webhook received");
    "received".to_owned()
}

/// The body of `GET /api/session`: the current session as JSON.
#[derive(Debug, Serialize)]
pub struct SessionJson {
    session_id: String,
    user: Option<String>,
    display_name: String,
    cart: Vec<String>,
    issued_at: Option<String>,
    expires_at: Option<String>,
    idle_expires_at: String,
    key_id: u32,
    epoch: u64,
    csrf_token: String,
}

impl SessionJson {
    /// The JSON of `session` as opened under the key `key_id`, with its idle
    /// deadline and CSRF token (the load benchmark's baseline route builds
    /// the same body without the session layer).
    #[must_use]
    pub fn new(
        session: &sealed_session::Session<Profile>,
        key_id: u32,
        idle_expires_at: time::OffsetDateTime,
        csrf_token: String,
    ) -> Self {
        Self {
            session_id: session.id().to_hex(),
            user: session.user_id().map(str::to_owned),
            display_name: session.data().display_name.clone(),
            cart: session.data().cart.clone(),
            issued_at: session.issued_at().map(page::timestamp),
            expires_at: session.expires_at().map(page::timestamp),
            idle_expires_at: page::timestamp(idle_expires_at),
            key_id,
            epoch: session.epoch(),
            csrf_token,
        }
    }
}

async fn api_session(session: Session<Profile>) -> Json<SessionJson> {
    Json(SessionJson::new(&session, session.key_id(), session.idle_expires_at(), session.csrf_token()))
}

/// Where the demo keeps its keyring and revocations.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The data directory, created (mode 0700) if missing.
    pub data_dir: PathBuf,
    /// The keyring file; by default `keyring.toml` in the data directory.
    pub keyring: Option<PathBuf>,
    /// The revocation store URL; by default `sqlite:` a file in the data
    /// directory.
    pub store: Option<String>,
}

/// The demo could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A file or directory could not be created or read.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The keyring file is not valid, or no key could be generated.
    #[error("keyring: {0}")]
    Keyring(#[from] KeyringError),
    /// The revocation store could not be opened.
    #[error("revocation store: {0}")]
    Store(#[from] StoreUrlError),
    /// The sealer could not be built.
    #[error(transparent)]
    Sealer(#[from] ConfigError),
    /// The session layer could not be built.
    #[error(transparent)]
    Layer(#[from] LayerError),
}

impl Setup {
    /// The store URL in use.
    #[must_use]
    pub fn store_url(&self) -> String {
        self.store.clone().unwrap_or_else(|| {
            format!("sqlite:{}?create=true", self.data_dir.join("revocations.sqlite").display())
        })
    }

    /// The store URL without its credentials (`user:password@` and the
    /// query, which may hold a Sentinel password), for logs.
    #[must_use]
    pub fn store_url_for_display(&self) -> String {
        let url = self.store_url();
        let url = url.split_once('?').map_or(url.as_str(), |(base, _)| base).to_owned();
        match url.split_once("://") {
            Some((scheme, rest)) => {
                match rest.split_once('/').map_or(rest, |(authority, _)| authority).rsplit_once('@') {
                    Some((_, host)) => {
                        let path = rest.split_once('/').map_or("", |(_, path)| path);
                        format!("{scheme}://***@{host}/{path}")
                    }
                    None => url,
                }
            }
            None => url,
        }
    }

    /// The keyring file in use.
    #[must_use]
    pub fn keyring_path(&self) -> PathBuf {
        self.keyring.clone().unwrap_or_else(|| self.data_dir.join("keyring.toml"))
    }

    /// Creates what is missing (saying so on stdout) and opens the store.
    /// Needs a tokio runtime.
    ///
    /// # Errors
    /// [`StartError`].
    pub async fn open(&self) -> Result<Verifier<SharedStore>, StartError> {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.data_dir).map_err(|source| {
            StartError::Io { action: "cannot create the data directory", path: self.data_dir.clone(), source }
        })?;
        let keyring = load_or_create_keyring(&self.keyring_path())?;
        let store = sealed_session_stores::open(&self.store_url()).await?;
        let sealer = Sealer::builder(keyring).remember_me(REMEMBER_FOR, REMEMBER_IDLE).build()?;
        Ok(Verifier::new(sealer, store))
    }
}

/// Loads the keyring at `path`, or creates one there (mode 0600) if there is
/// none. It is written to a temporary file and linked into place, so that
/// two instances starting at once never read a half-written keyring, and an
/// existing one is never overwritten.
fn load_or_create_keyring(path: &Path) -> Result<Keyring, StartError> {
    let io = |action, source| StartError::Io { action, path: path.to_owned(), source };
    if path.exists() {
        return Ok(Keyring::load(path)?);
    }
    let keyring = Keyring::generate()?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    // Mode 0600, a fresh random name, removed if anything below fails.
    let mut temp = tempfile::Builder::new()
        .prefix(".keyring-")
        .tempfile_in(dir)
        .map_err(|err| io("cannot write a new keyring next to", err))?;
    temp.write_all(keyring.to_toml_string().as_bytes())
        .and_then(|()| temp.as_file().sync_all())
        .map_err(|err| io("cannot write a new keyring next to", err))?;
    match temp.persist_noclobber(path) {
        Ok(_) => {
            println!(
                "created a new keyring at {} (mode 0600): keep it secret and back it up",
                path.display()
            );
            Ok(keyring)
        }
        // Another instance created it first: use theirs.
        Err(err) if err.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(Keyring::load(path)?),
        Err(err) => Err(io("cannot create the keyring", err.error)),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use axum::body::Body;
    use axum::http::{header, Request, StatusCode};
    use sealed_session::{Keyring, MemoryStore, Sealer, Verifier};
    use tower::ServiceExt as _;

    use super::{app, load_or_create_keyring};

    #[tokio::test]
    async fn every_response_carries_the_security_headers_and_is_not_cached() {
        let verifier =
            Verifier::new(Sealer::builder(Keyring::generate().unwrap()).build().unwrap(), MemoryStore::new());
        let app = app(verifier).unwrap();
        for (path, status) in [("/", StatusCode::OK), ("/api/session", StatusCode::UNAUTHORIZED)] {
            let response =
                app.clone().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
            assert_eq!(response.status(), status, "{path}");
            let headers = response.headers();
            let csp = headers.get(header::CONTENT_SECURITY_POLICY).unwrap().to_str().unwrap();
            assert!(
                csp.starts_with("default-src 'none';") && csp.contains("frame-ancestors 'none'"),
                "{csp}"
            );
            assert_eq!(headers.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(), "nosniff");
            assert_eq!(headers.get(header::CACHE_CONTROL).unwrap(), "no-store", "{path}");
        }
    }

    #[tokio::test]
    async fn only_the_webhook_takes_a_cross_site_post() {
        let verifier =
            Verifier::new(Sealer::builder(Keyring::generate().unwrap()).build().unwrap(), MemoryStore::new());
        let app = app(verifier).unwrap();
        for (path, status) in [("/webhook", StatusCode::OK), ("/cart", StatusCode::FORBIDDEN)] {
            let request = Request::post(path)
                .header("sec-fetch-site", "cross-site")
                .header("origin", "https://psp.example")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from("item=x"))
                .unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), status, "{path}");
            assert!(response.headers().get(header::SET_COOKIE).is_none(), "{path}: no cookie");
        }
    }

    #[test]
    fn the_store_url_is_shown_without_credentials() {
        let shown = |store: &str| {
            super::Setup { data_dir: "d".into(), keyring: None, store: Some(store.into()) }
                .store_url_for_display()
        };
        assert_eq!(shown("rediss://app:s3cret@redis:6380/0"), "rediss://***@redis:6380/0");
        assert_eq!(
            shown("redis+sentinel://:pw@h1:26379,h2/svc?sentinel_password=x"),
            "redis+sentinel://***@h1:26379,h2/svc"
        );
        assert_eq!(shown("redis://127.0.0.1:6379/0"), "redis://127.0.0.1:6379/0");
        assert_eq!(shown("sqlite:/var/x.sqlite?create=true"), "sqlite:/var/x.sqlite");
    }

    #[test]
    fn the_keyring_is_created_once_private_and_then_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.toml");
        // Leftovers of a crashed start do not get in the way.
        std::fs::write(dir.path().join(".keyring-leftover"), "junk").unwrap();

        let created = load_or_create_keyring(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let loaded = load_or_create_keyring(&path).unwrap();
        assert_eq!(
            *created.to_toml_string(),
            *loaded.to_toml_string(),
            "the second start reuses the keyring"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "no temporary file is left: {names:?}");
    }
}

/// The repository README's examples (core, axum and actix-web) run as
/// doctests here, in the one crate that depends on everything they use.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
