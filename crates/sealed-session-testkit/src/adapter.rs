//! What the framework adapters' tests share: the session data, the handlers
//! (written once over the core's types; each test names them with its own
//! framework's extractors, which dereference to those types), and a cookie
//! jar that keeps cookies as a browser does.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};

use sealed_session::web::{Current, Flash, HandleError, Sessions};
use serde::{Deserialize, Serialize};

/// The session data of the adapters' tests.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Data {
    /// What `increment` counts.
    pub count: u32,
    /// Free text, to make a session large.
    #[serde(default)]
    pub note: String,
}

/// `anonymous` without a session; else its user (`-` for none) and count.
pub async fn whoami<S: Deref<Target = Current<Data>>>(session: Option<S>) -> String {
    session.map_or_else(
        || "anonymous".to_owned(),
        |s| format!("{} {}", s.user_id().unwrap_or("-"), s.data().count),
    )
}

/// The session's user (`-` for none); only with a session.
pub async fn required<S: Deref<Target = Current<Data>>>(session: S) -> String {
    session.user_id().unwrap_or("-").to_owned()
}

/// The signed-in user; only with a signed-in session.
pub async fn signed_in<S>(session: S) -> String
where
    S: Deref,
    S::Target: Deref<Target = Current<Data>>,
{
    session.user_id().unwrap_or_default().to_owned()
}

/// Signs alice in; the new session's ID.
pub async fn login<S: Deref<Target = Sessions<Data>>, E: From<HandleError>>(
    sessions: S,
) -> Result<String, E> {
    Ok(sessions.login("alice", Data::default()).await?.id().to_hex())
}

/// Counts one more in the session; the count.
pub async fn increment<S: Deref<Target = Sessions<Data>>, E: From<HandleError>>(
    sessions: S,
) -> Result<String, E> {
    Ok(sessions.update(|data| {
        data.count += 1;
        data.count.to_string()
    })?)
}

/// Counts one more, in a new anonymous session if there is none.
pub async fn anonymous_increment<S, E>(sessions: S) -> Result<String, E>
where
    S: Deref<Target = Sessions<Data>>,
    E: From<HandleError>,
{
    let count = sessions.update_or_insert(Data::default, |data| {
        data.count += 1;
        data.count
    });
    Ok(count.await?.to_string())
}

/// A new ID for the session; the new ID.
pub async fn renew<S: Deref<Target = Sessions<Data>>, E: From<HandleError>>(
    sessions: S,
) -> Result<String, E> {
    sessions.renew_id().await?;
    Ok(sessions.current().ok_or(HandleError::NoSession)?.id().to_hex())
}

/// Ends every session of the user; the new epoch.
pub async fn logout_everywhere<S, E>(sessions: S) -> Result<String, E>
where
    S: Deref<Target = Sessions<Data>>,
    E: From<HandleError>,
{
    Ok(sessions.logout_everywhere().await?.to_string())
}

/// The CSRF token of the session, or of a new pre-session.
pub async fn csrf<S: Deref<Target = Sessions<Data>>, E: From<HandleError>>(sessions: S) -> Result<String, E> {
    Ok(sessions.csrf_token()?)
}

/// The flash messages, taken through the handle, joined by `|`.
pub async fn take_flashes<S: Deref<Target = Sessions<Data>>>(sessions: S) -> String {
    sessions.take_flashes().into_iter().map(|f| f.message).collect::<Vec<_>>().join("|")
}

/// The flash messages of the extractor, as `level: message`, joined by `|`.
pub async fn flashes<F: IntoIterator<Item = Flash>>(flashes: F) -> String {
    flashes.into_iter().map(|f| format!("{}: {}", f.level.as_str(), f.message)).collect::<Vec<_>>().join("|")
}

/// The cookies of a login form's page: only the pre-session cookie, for
/// the browser session.
pub fn assert_a_login_page(set_cookies: &[String]) {
    assert_eq!(set_cookies.len(), 1, "{set_cookies:?}");
    assert!(set_cookies[0].starts_with("__Host-session-csrf="), "{}", set_cookies[0]);
    assert!(!set_cookies[0].contains("Max-Age"), "the pre-session cookie is a browser-session cookie");
}

/// The answer to a login: the session cookie with its secure attributes
/// and the absolute timeout as `Max-Age`, the pre-session cookie removed,
/// and `Cache-Control: no-store`.
pub fn assert_a_login_answer(set_cookies: &[String], cache_control: Option<&str>) {
    let session = set_cookies.iter().find(|c| c.starts_with("__Host-session=")).unwrap();
    let attributes: Vec<&str> = session.split("; ").skip(1).collect();
    assert_eq!(attributes, ["Path=/", "Max-Age=43200", "Secure", "HttpOnly", "SameSite=Lax"]);
    assert!(
        set_cookies.iter().any(|c| c.starts_with("__Host-session-csrf=;") && c.contains("Max-Age=0")),
        "login removes the pre-session cookie: {set_cookies:?}"
    );
    assert_eq!(cache_control, Some("no-store"));
}

/// The answer to a logout: one `Set-Cookie` for the session cookie, and it
/// removes it (a second layer would add one of its own).
pub fn assert_one_removal_of_the_session(set_cookies: &[String]) {
    let sessions: Vec<&String> = set_cookies.iter().filter(|c| c.starts_with("__Host-session=")).collect();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert!(sessions.iter().all(|c| c.contains("Max-Age=0")), "{sessions:?}");
}

/// The default configuration (cookie `__Host-session`) on `store` and
/// `clock`, with a keyring of its own.
#[must_use]
pub fn users_config(
    store: std::sync::Arc<sealed_session::MemoryStore>,
    clock: &sealed_session::ManualClock,
) -> sealed_session::web::WebConfig<std::sync::Arc<sealed_session::MemoryStore>> {
    let sealer =
        sealed_session::Sealer::builder(sealed_session::Keyring::generate().unwrap()).clock(clock.clone());
    sealed_session::web::WebConfig::builder(sealer, store).build().unwrap()
}

/// The configuration of an administrators' session beside the users' one
/// (cookie `__Host-admin`), on `store` and `clock`.
#[must_use]
pub fn admin_config(
    store: std::sync::Arc<sealed_session::MemoryStore>,
    clock: &sealed_session::ManualClock,
) -> sealed_session::web::WebConfig<std::sync::Arc<sealed_session::MemoryStore>> {
    let keyring = sealed_session::Keyring::generate().unwrap();
    let sealer = sealed_session::Sealer::builder(keyring).clock(clock.clone()).purpose("__Host-admin");
    let cookie = sealed_session::CookieSpec::named("__Host-admin").unwrap();
    sealed_session::web::WebConfig::builder(sealer, store).cookie(cookie).build().unwrap()
}

/// Cookies by name, as a browser keeps them for one site: `Set-Cookie`
/// adds or replaces, `Max-Age=0` removes.
#[derive(Debug, Clone, Default)]
pub struct CookieJar(BTreeMap<String, String>);

impl CookieJar {
    /// Applies a response's `Set-Cookie` headers.
    pub fn apply<'a>(&mut self, set_cookies: impl IntoIterator<Item = &'a String>) {
        for set in set_cookies {
            let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    /// The `Cookie` header a request carries, if there are cookies.
    #[must_use]
    pub fn header(&self) -> Option<String> {
        let pairs: Vec<String> = self.0.iter().map(|(name, value)| format!("{name}={value}")).collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }
}

impl Deref for CookieJar {
    type Target = BTreeMap<String, String>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for CookieJar {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}
