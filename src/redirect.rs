//! Where to send the browser after login, without an open redirect.
//!
//! A page that requires a session sends the browser to the login page with
//! the path it wanted (`/login?next=/account`); after login the application
//! sends it back there. `next` comes from the request, so an attacker can
//! set it: [`local_path`] accepts only a path on this site, never another
//! origin.
//!
//! ```
//! use sealed_session::redirect::local_path;
//!
//! assert_eq!(local_path("/account?tab=keys"), Some("/account?tab=keys"));
//! assert_eq!(local_path("//evil.example/"), None); // another host
//! assert_eq!(local_path("https://evil.example/"), None);
//! ```

/// The longest `next` accepted: 2 048 bytes.
pub const MAX_NEXT_LEN: usize = 2048;

/// `next` if it is a path on this site (`/…`, with an optional query and no
/// fragment), at most [`MAX_NEXT_LEN`] bytes of visible ASCII; `None`
/// otherwise. Refused: absolute URLs (`https://…`), protocol-relative ones
/// (`//host`), a backslash anywhere (browsers read `/\host` as `//host`),
/// control characters, spaces and non-ASCII (which browsers may strip or
/// rewrite before resolving), and a path that a later step decoding or
/// normalizing it (a proxy, a trailing-slash redirect) could turn into
/// `//host`, though browsers resolve it on this site: one with a `.` or
/// `..` segment (also before a `;` parameter, `/..;/`), raw or once
/// percent-decoded, or whose decoded form starts with `//` or holds a `%`
/// (encoded twice), a backslash, a control character or anything but ASCII
/// (Unicode normalization reads `%EF%BC%8F`, a fullwidth solidus, as `/`).
/// Such a `next` is dropped: the user lands on the default page.
#[must_use]
pub fn local_path(next: &str) -> Option<&str> {
    let bytes = next.as_bytes();
    let local = next.len() <= MAX_NEXT_LEN
        && bytes.first() == Some(&b'/')
        && bytes.get(1).is_none_or(|second| *second != b'/')
        && bytes.iter().all(|b| b.is_ascii_graphic() && *b != b'\\' && *b != b'#')
        && path_reads_the_same(next.split('?').next().unwrap_or_default());
    local.then_some(next)
}

/// Whether `path` (visible ASCII, starting with one `/`) names a path on
/// this site however a later step reads it: no dot segment raw or decoded,
/// and nothing its decoding brings in that could move it elsewhere.
fn path_reads_the_same(path: &str) -> bool {
    // Each segment as a server that cuts `;` parameters off reads it: no
    // dot segment, and no empty first segment (`/;x/host` is `//host`).
    fn cut(segment: &str) -> &str {
        segment.split(';').next().unwrap_or_default()
    }
    let plain = |path: &str| {
        let first_empty = path != "/" && path.split('/').nth(1).is_some_and(|first| cut(first).is_empty());
        !first_empty && !path.split('/').any(|segment| matches!(cut(segment), "." | ".."))
    };
    let Ok(decoded) = percent_encoding::percent_decode_str(path).decode_utf8() else { return false };
    plain(path) && plain(&decoded) && decoded.bytes().all(|b| b.is_ascii_graphic() && b != b'%' && b != b'\\')
}

/// The login URL `login` with `next` set to the local path `path`
/// (percent-encoded as a query value), or `login` alone when `path` is not
/// local or is `/`.
#[must_use]
pub fn login_url(login: &str, path: &str) -> String {
    match local_path(path).filter(|path| *path != "/") {
        Some(path) => {
            let separator = if login.contains('?') { '&' } else { '?' };
            let mut url = String::with_capacity(login.len() + path.len() + 6);
            url.push_str(login);
            url.push(separator);
            url.push_str("next=");
            for byte in path.bytes() {
                if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
                    url.push(char::from(byte));
                } else {
                    url.push_str(&format!("%{byte:02X}"));
                }
            }
            url
        }
        None => login.to_owned(),
    }
}

/// Why a page cannot be a login page ([`LoginPage::new`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoginPageError {
    /// The login page is `""`.
    #[error("the login page is empty: give its URL, such as \"/login\"")]
    Empty,
    /// The login page holds a byte that is not visible ASCII (a space, a
    /// line break, a control character, anything beyond ASCII), which no
    /// `Location` header can carry.
    #[error("the login page {0:?} holds a character no Location header can carry: percent-encode all but visible ASCII")]
    NotVisibleAscii(String),
    /// The login page has a fragment (`#…`), behind which the `next` added
    /// to its query would be lost.
    #[error(
        "the login page {0:?} has a fragment (#), which would hide the next added to its query: remove it"
    )]
    Fragment(String),
}

/// The page a route that requires a session sends browsers to (the
/// adapters' `RequireSession…::redirect_to`): a non-empty URL of visible
/// ASCII without a fragment, so that [`login_url`] always makes a valid
/// `Location` header of it.
///
/// ```
/// use sealed_session::redirect::{LoginPage, LoginPageError};
///
/// assert_eq!(LoginPage::new("/login?lang=en").unwrap().as_str(), "/login?lang=en");
/// assert!(matches!(LoginPage::new("/log in"), Err(LoginPageError::NotVisibleAscii(_))));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginPage(std::sync::Arc<str>);

impl LoginPage {
    /// `login` if it is a login page.
    ///
    /// # Errors
    /// [`LoginPageError`] says what is wrong with `login`.
    pub fn new(login: impl Into<String>) -> Result<Self, LoginPageError> {
        let login = login.into();
        if login.is_empty() {
            Err(LoginPageError::Empty)
        } else if !login.bytes().all(|b| b.is_ascii_graphic()) {
            Err(LoginPageError::NotVisibleAscii(login))
        } else if login.contains('#') {
            Err(LoginPageError::Fragment(login))
        } else {
            Ok(Self(login.into()))
        }
    }

    /// [`LoginPage::new`] for the login page of `route`, which the program
    /// itself names: a mistake in it shows when the route is built, not on
    /// a user's first visit (where it would be a `401` or a `500`).
    ///
    /// # Panics
    /// If [`LoginPage::new`] refuses `login`, naming `route` and what is
    /// wrong.
    #[track_caller]
    #[allow(clippy::panic, reason = "a wrong login page is the program's mistake, shown at start")]
    pub fn of_route(login: impl Into<String>, route: &str) -> Self {
        Self::new(login).unwrap_or_else(|err| panic!("{route}: {err}"))
    }

    /// The login page's URL.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::{local_path, login_url, LoginPage, LoginPageError, MAX_NEXT_LEN};

    #[test]
    fn only_paths_on_this_site_are_local() {
        for good in [
            "/",
            "/account",
            "/a/b?c=d&e=%2F",
            "/~x",
            "/a/.b/..c/b.",
            "/a?next=/../x",
            "/files/a%2Fb",
            "/report%2Epdf",
            "/a%7Eb",
            "/a;v=1/b",
        ] {
            assert_eq!(local_path(good), Some(good), "{good:?}");
        }
        let long = format!("/{}", "a".repeat(MAX_NEXT_LEN));
        for bad in [
            "",
            "account",
            "//evil.example",
            "//evil.example/path",
            "/\\evil.example",
            "/\\/evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "/\tevil",
            "/ evil",
            "/a\r\nLocation: x",
            "/caf\u{e9}",
            "/a#fragment",
            long.as_str(),
            // Same-origin as browsers resolve them, but `//evil.example`
            // once a later step normalizes or decodes the path.
            "/.//evil.example",
            "/..//evil.example",
            "/a/../..//evil.example",
            "/a/.",
            "/a/..",
            "/..;//evil.example",
            "/.;x//evil.example",
            "/%2F%2Fevil.example",
            "/%2fevil.example",
            "/%2f%5cevil.example",
            "/a%5C",
            "/%2E%2E//evil.example",
            "/a/%2e",
            "/a/%2e%2e;p/x",
            "/%09/evil.example",
            "/%0a/evil.example",
            "/%7F",
            "/%252F%252Fevil.example",
            "/%C0%AF%C0%AFevil.example",
            "/%ff",
            "/;x/evil.example",
            "/%3Bx/evil.example",
            // Fullwidth solidus and full stops: `//` and `..` once normalized.
            "/%EF%BC%8F%EF%BC%8Fevil.example",
            "/%EF%BC%8E%EF%BC%8E/%EF%BC%8E%EF%BC%8E//evil.example",
            "/caf%C3%A9",
            "/a%20b",
        ] {
            assert_eq!(local_path(bad), None, "{bad:?}");
        }
        assert!(local_path(&long[..MAX_NEXT_LEN]).is_some(), "the limit is inclusive");
    }

    #[test]
    fn a_login_page_is_visible_ascii_without_a_fragment() {
        for good in ["/", "/login", "/login?lang=en&x=%20", "https://auth.example/login", "relative"] {
            assert_eq!(LoginPage::new(good).map(|page| page.as_str().to_owned()), Ok(good.to_owned()));
        }
        assert_eq!(LoginPage::new(""), Err(LoginPageError::Empty));
        for bad in ["/log in", "/login\r\nSet-Cookie: x=1", "/\tlogin", "/connexi\u{f3}n", "/login\u{7f}"] {
            assert_eq!(LoginPage::new(bad), Err(LoginPageError::NotVisibleAscii(bad.to_owned())), "{bad:?}");
        }
        assert_eq!(LoginPage::new("/login#form"), Err(LoginPageError::Fragment("/login#form".to_owned())));
    }

    #[test]
    #[should_panic(expected = "Route::redirect_to: the login page is empty")]
    fn a_route_s_login_page_is_checked_when_the_route_is_built() {
        let _ = LoginPage::of_route("", "Route::redirect_to");
    }

    #[test]
    fn the_login_url_carries_only_a_local_next_encoded() {
        assert_eq!(login_url("/", "/account"), "/?next=/account");
        assert_eq!(login_url("/login", "/a?b=c&d"), "/login?next=/a%3Fb%3Dc%26d");
        assert_eq!(login_url("/login?lang=en", "/a"), "/login?lang=en&next=/a");
        assert_eq!(login_url("/login", "/"), "/login");
        assert_eq!(login_url("/login", "//evil.example"), "/login");
    }
}

/// Why a route that requires a signed-in session refuses a request
/// ([`SessionHandle::required_route_refusal`](crate::web::SessionHandle::required_route_refusal)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteRefusal {
    /// No signed-in session: none, or an anonymous one.
    NoSession,
    /// A signed-in session whose last authentication is older than the
    /// route allows: the user must enter their password again.
    Reauthenticate,
    /// A session sealed under a key this server does not have yet
    /// ([`SessionHandle::session_unreadable`](crate::web::SessionHandle::session_unreadable)):
    /// answered `503` ([`HandleError::UnreadableSession`](crate::web::HandleError::UnreadableSession)),
    /// never with a redirect to the login page or `401`.
    SessionUnreadable,
}

impl RouteRefusal {
    /// The status to answer: `503` for [`RouteRefusal::SessionUnreadable`],
    /// else `401` (or, for a browser, the redirect of
    /// [`NoSessionAnswer::for_request`]).
    #[must_use]
    pub fn status(self) -> u16 {
        match self {
            RouteRefusal::NoSession | RouteRefusal::Reauthenticate => 401,
            RouteRefusal::SessionUnreadable => 503,
        }
    }

    /// The body an API client gets with [`RouteRefusal::status`]:
    /// [`NoSessionAnswer::JSON_BODY`], [`NoSessionAnswer::REAUTH_JSON_BODY`]
    /// or [`NoSessionAnswer::UNREADABLE_JSON_BODY`].
    #[must_use]
    pub fn json_body(self) -> &'static str {
        match self {
            RouteRefusal::NoSession => NoSessionAnswer::JSON_BODY,
            RouteRefusal::Reauthenticate => NoSessionAnswer::REAUTH_JSON_BODY,
            RouteRefusal::SessionUnreadable => NoSessionAnswer::UNREADABLE_JSON_BODY,
        }
    }
}

/// What a route that requires a signed-in session answers a request without
/// one ([`NoSessionAnswer::for_request`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoSessionAnswer {
    /// A browser: `303 See Other` to this login URL, with the path it asked
    /// for as `next`.
    Redirect(String),
    /// Any other client: `401` with [`NoSessionAnswer::JSON_BODY`] as
    /// `application/json`.
    Unauthorized,
}

impl NoSessionAnswer {
    /// The body of [`NoSessionAnswer::Unauthorized`].
    pub const JSON_BODY: &'static str = r#"{"error":"no session"}"#;

    /// The body of [`NoSessionAnswer::Unauthorized`] for a route that needs
    /// a recent authentication, to a session whose last one is too old.
    pub const REAUTH_JSON_BODY: &'static str = r#"{"error":"re-authentication required"}"#;

    /// The body of `503` for [`RouteRefusal::SessionUnreadable`]: the
    /// session lives, on servers that have its key.
    pub const UNREADABLE_JSON_BODY: &'static str =
        r#"{"error":"session unavailable on this server, try again"}"#;

    /// The answer to a request whose `Accept` headers are `accept` (a
    /// browser names `text/html`), for `path_and_query` as the application
    /// sees it under `prefix` (a nested router's mount point, or `""`), with
    /// its login page at `login`. A redirect's URL is always a valid
    /// `Location` header value.
    ///
    /// ```
    /// use sealed_session::redirect::{LoginPage, NoSessionAnswer};
    ///
    /// let login = LoginPage::new("/login")?;
    /// let browser = NoSessionAnswer::for_request(["text/html,*/*;q=0.8"], "/account", &login, "");
    /// assert_eq!(browser, NoSessionAnswer::Redirect("/login?next=/account".to_owned()));
    /// let api = NoSessionAnswer::for_request(["application/json"], "/account", &login, "");
    /// assert_eq!(api, NoSessionAnswer::Unauthorized);
    /// # Ok::<(), sealed_session::redirect::LoginPageError>(())
    /// ```
    #[must_use]
    pub fn for_request<'a>(
        accept: impl IntoIterator<Item = &'a str>,
        path_and_query: &str,
        login: &LoginPage,
        prefix: &str,
    ) -> Self {
        let wants_html = accept.into_iter().any(|accept| accept.to_ascii_lowercase().contains("text/html"));
        if wants_html {
            NoSessionAnswer::Redirect(login_url(login.as_str(), &format!("{prefix}{path_and_query}")))
        } else {
            NoSessionAnswer::Unauthorized
        }
    }
}
