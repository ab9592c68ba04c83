//! The session cookie: secure attributes by default, `Set-Cookie` values that
//! fit a browser's limits, and reading the cookie back from a request.
//!
//! ```
//! use sealed_session::CookieSpec;
//!
//! let spec = CookieSpec::default(); // __Host-session; Path=/; Secure; HttpOnly; SameSite=Lax
//! let header = spec.set_cookie("TOKEN", Some(3600))?;
//! assert_eq!(header, "__Host-session=TOKEN; Path=/; Max-Age=3600; Secure; HttpOnly; SameSite=Lax");
//! let values: Vec<&str> = spec.values("theme=dark; __Host-session=TOKEN").collect();
//! assert_eq!(values, ["TOKEN"]);
//! # Ok::<(), sealed_session::CookieError>(())
//! ```

use std::fmt;

/// Browsers store cookies whose name, value and attributes together stay
/// within this many bytes (RFC 6265 section 6.1 asks for at least 4096).
pub const MAX_COOKIE_LEN: usize = 4096;

/// The most values of our cookie read from one request (over all its
/// `Cookie` headers): more is an attack.
pub const MAX_SAME_NAME: usize = 4;

/// The `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SameSite {
    /// Sent only on requests from the same site.
    Strict,
    /// Also sent on top-level navigations from other sites (the default).
    Lax,
    /// Sent on every request; requires `Secure`.
    None,
}

impl SameSite {
    fn as_str(self) -> &'static str {
        match self {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        }
    }
}

/// A cookie specification is invalid, or a cookie would be too large.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CookieError {
    /// The name is empty or has characters a cookie name cannot have.
    #[error("cookie name {0:?} is not a valid token (letters, digits and !#$%&'*+-.^_`|~ only)")]
    InvalidName(String),
    /// A `__Host-` cookie must be `Secure`, have `Path=/` and no `Domain`.
    #[error("a __Host- cookie must be Secure, with Path=/ and no Domain")]
    HostPrefix,
    /// A `__Secure-` cookie must be `Secure`.
    #[error("a __Secure- cookie must be Secure")]
    SecurePrefix,
    /// The name starts with `__Host-` or `__Secure-` in another case
    /// (`__host-id`). RFC 6265bis has browsers match the prefixes in any
    /// case, but browsers that predate it enforce only that spelling: there
    /// a sibling subdomain could set such a cookie.
    #[error(
        "cookie name {0:?} spells its prefix in another case than __Host- or __Secure-: browsers that predate \
         RFC 6265bis enforce the prefix's rules only for that spelling; write it so"
    )]
    PrefixCase(String),
    /// An `__Http-` or `__Host-Http-` cookie must be `Secure` and
    /// `HttpOnly` (RFC 6265bis): browsers drop it otherwise.
    #[error("an __Http- or __Host-Http- cookie must be Secure and HttpOnly; keep HttpOnly on, or choose another name")]
    HttpPrefix,
    /// `SameSite=None` requires `Secure`.
    #[error("SameSite=None requires Secure")]
    SameSiteNoneInsecure,
    /// The path or domain has characters an attribute cannot have.
    #[error("cookie {0} {1:?} has characters a cookie attribute cannot have")]
    InvalidAttribute(&'static str, String),
    /// The value has characters a cookie value cannot have.
    #[error("the cookie value has characters a cookie value cannot have")]
    InvalidValue,
    /// The whole cookie would be more than browsers keep.
    #[error("the cookie would be {len} bytes with its attributes, more than the {max} browsers keep; store less in the session")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit, [`MAX_COOKIE_LEN`].
        max: usize,
    },
}

/// How the session cookie is named and which attributes it carries.
///
/// The default is the safest choice: `__Host-session; Path=/; Secure;
/// HttpOnly; SameSite=Lax`, no `Domain`, and a `Max-Age`. Combinations that
/// browsers would reject or that weaken the cookie without saying so are
/// errors, not silent fixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieSpec {
    name: String,
    path: String,
    domain: Option<String>,
    secure: bool,
    http_only: bool,
    same_site: SameSite,
    persistent: bool,
}

impl Default for CookieSpec {
    fn default() -> Self {
        Self {
            name: crate::DEFAULT_PURPOSE.to_owned(),
            path: "/".to_owned(),
            domain: None,
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            persistent: true,
        }
    }
}

/// RFC 6265 `token`: visible ASCII except separators.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// An attribute value: visible ASCII except `;`.
fn is_attribute_value(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..0x7f).contains(&b) && b != b';')
}

/// RFC 6265 `cookie-octet`s: visible ASCII except `"`, `,`, `;` and `\`.
///
/// Every byte is looked at (no early return), so that the compiler checks
/// many at once: this runs on every session cookie a request sends.
fn is_cookie_value(bytes: &[u8]) -> bool {
    bytes.iter().fold(true, |ok, &b| {
        ok & (b'!'..=b'~').contains(&b) & (b != b'"') & (b != b',') & (b != b';') & (b != b'\\')
    })
}

impl CookieSpec {
    /// Starts from the defaults with another name. Use the name as the
    /// sealer's purpose too.
    ///
    /// # Errors
    /// As [`CookieSpec::validated`].
    pub fn named(name: impl Into<String>) -> Result<Self, CookieError> {
        Self { name: name.into(), ..Self::default() }.validated()
    }

    /// Sets `Path`.
    ///
    /// # Errors
    /// As [`CookieSpec::validated`]: a `__Host-` cookie must keep `Path=/`.
    pub fn path(self, path: impl Into<String>) -> Result<Self, CookieError> {
        Self { path: path.into(), ..self }.validated()
    }

    /// Sets `Domain`, which shares the cookie with subdomains.
    ///
    /// # Errors
    /// As [`CookieSpec::validated`]: a `__Host-` cookie cannot have one.
    pub fn domain(self, domain: impl Into<String>) -> Result<Self, CookieError> {
        Self { domain: Some(domain.into()), ..self }.validated()
    }

    /// Sets `Secure`. Turning it off is for plain-HTTP development only.
    ///
    /// # Errors
    /// As [`CookieSpec::validated`]: `__Host-`, `__Secure-`, `__Http-`
    /// and `SameSite=None` cookies need it.
    pub fn secure(self, secure: bool) -> Result<Self, CookieError> {
        Self { secure, ..self }.validated()
    }

    /// Sets `HttpOnly` (on by default: scripts cannot read the cookie).
    ///
    /// # Errors
    /// As [`CookieSpec::validated`]: `__Http-` and `__Host-Http-` cookies
    /// need it.
    pub fn http_only(self, http_only: bool) -> Result<Self, CookieError> {
        Self { http_only, ..self }.validated()
    }

    /// Sets `SameSite`.
    ///
    /// # Errors
    /// As [`CookieSpec::validated`]: `SameSite=None` needs `Secure`.
    pub fn same_site(self, same_site: SameSite) -> Result<Self, CookieError> {
        Self { same_site, ..self }.validated()
    }

    /// Makes it a browser-session cookie (no `Max-Age`), which the browser
    /// drops when it closes, instead of one that lives until the session's
    /// absolute expiry. Remembered and device-bound sessions still go out
    /// in a persistent cookie: a bound one for the bound lifetime, so that
    /// the browser asks for a new one in time (SECURITY.md).
    #[must_use]
    pub fn browser_session(self) -> Self {
        Self { persistent: false, ..self }
    }

    /// Checks the specification.
    ///
    /// # Errors
    /// [`CookieError::InvalidName`], [`CookieError::InvalidAttribute`],
    /// [`CookieError::PrefixCase`],
    /// [`CookieError::HostPrefix`], [`CookieError::SecurePrefix`],
    /// [`CookieError::HttpPrefix`] or
    /// [`CookieError::SameSiteNoneInsecure`].
    pub fn validated(self) -> Result<Self, CookieError> {
        if !is_token(&self.name) {
            return Err(CookieError::InvalidName(self.name.chars().take(64).collect()));
        }
        if !is_attribute_value(&self.path) || !self.path.starts_with('/') {
            return Err(CookieError::InvalidAttribute("path", self.path));
        }
        if let Some(domain) = &self.domain {
            if !is_attribute_value(domain) {
                return Err(CookieError::InvalidAttribute("domain", domain.clone()));
            }
        }
        let lower = self.name.to_ascii_lowercase();
        let miscased =
            |prefix: &str| lower.starts_with(&prefix.to_ascii_lowercase()) && !self.name.starts_with(prefix);
        if miscased("__Host-") || miscased("__Secure-") {
            return Err(CookieError::PrefixCase(self.name.chars().take(64).collect()));
        }
        if self.is_host_prefixed() && (!self.secure || self.path != "/" || self.domain.is_some()) {
            return Err(CookieError::HostPrefix);
        }
        if lower.starts_with("__secure-") && !self.secure {
            return Err(CookieError::SecurePrefix);
        }
        let http_prefixed = lower.starts_with("__http-") || lower.starts_with("__host-http-");
        if http_prefixed && !(self.secure && self.http_only) {
            return Err(CookieError::HttpPrefix);
        }
        if self.same_site == SameSite::None && !self.secure {
            return Err(CookieError::SameSiteNoneInsecure);
        }
        Ok(self)
    }

    /// The cookie's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether a browser sends this cookie with a request for `path`: its
    /// `Path` path-matches it (RFC 6265, section 5.1.4).
    pub(crate) fn is_sent_to(&self, path: &str) -> bool {
        let own = self.path.as_str();
        match path.strip_prefix(own) {
            Some(rest) => rest.is_empty() || own.ends_with('/') || rest.starts_with('/'),
            None => false,
        }
    }

    fn attributes(&self, out: &mut String, max_age: Option<u64>) {
        use fmt::Write as _;
        let _ = write!(out, "; Path={}", self.path);
        if let Some(domain) = &self.domain {
            let _ = write!(out, "; Domain={domain}");
        }
        if let Some(max_age) = max_age {
            let _ = write!(out, "; Max-Age={max_age}");
        }
        if self.secure {
            out.push_str("; Secure");
        }
        if self.http_only {
            out.push_str("; HttpOnly");
        }
        let _ = write!(out, "; SameSite={}", self.same_site.as_str());
    }

    /// The `Set-Cookie` value that stores `token`, living `max_age` more
    /// seconds (pass the seconds until the session's absolute expiry; `None`
    /// or a browser-session spec leaves `Max-Age` out).
    ///
    /// # Errors
    /// [`CookieError::InvalidValue`] if `token` is not a cookie value (sealed
    /// tokens always are), or [`CookieError::TooLarge`] if the token is
    /// longer than [`CookieSpec::max_token_len`] (the cookie could exceed
    /// [`MAX_COOKIE_LEN`]). [`Sealer::seal_cookie`](crate::Sealer::seal_cookie)
    /// checks this while sealing and reports it as
    /// [`SealError::TooLarge`](crate::SealError::TooLarge), the one error
    /// for a session too large.
    pub fn set_cookie(&self, token: &str, max_age: Option<u64>) -> Result<String, CookieError> {
        if !is_cookie_value(token.as_bytes()) {
            return Err(CookieError::InvalidValue);
        }
        if token.len() > self.max_token_len() {
            return Err(CookieError::TooLarge { len: self.overhead() + token.len(), max: MAX_COOKIE_LEN });
        }
        Ok(self.header(token, max_age))
    }

    /// This cookie's attributes under another name (a cookie derived from
    /// it).
    pub(crate) fn renamed(&self, name: String) -> Result<Self, CookieError> {
        Self { name, ..self.clone() }.validated()
    }

    /// The attributes as a DBSC credential names them: `Path=/; Secure;
    /// HttpOnly; SameSite=Lax` (no `Max-Age`, which the draft ignores).
    pub(crate) fn credential_attributes(&self) -> String {
        let mut out = String::new();
        self.attributes(&mut out, None);
        out.strip_prefix("; ").unwrap_or(&out).to_owned()
    }

    /// This cookie, persistent (with `Max-Age`) even if it is a
    /// browser-session cookie: for a remembered session.
    pub(crate) fn persistent(&self) -> Self {
        Self { persistent: true, ..self.clone() }
    }

    /// The `Set-Cookie` value for a token already known to be a cookie value
    /// of at most [`CookieSpec::max_token_len`] characters.
    pub(crate) fn header(&self, token: &str, max_age: Option<u64>) -> String {
        let mut out = String::with_capacity(self.name.len() + token.len() + 96);
        out.push_str(&self.name);
        out.push('=');
        out.push_str(token);
        self.attributes(&mut out, max_age.filter(|_| self.persistent));
        out
    }

    /// Bytes the cookie adds to a token of `token_len` characters: the
    /// longest token that fits is `MAX_COOKIE_LEN - overhead`.
    #[must_use]
    pub fn overhead(&self) -> usize {
        let mut out = String::new();
        self.attributes(&mut out, Some(u64::MAX).filter(|_| self.persistent));
        self.name.len() + 1 + out.len()
    }

    /// The longest token this cookie can carry within [`MAX_COOKIE_LEN`],
    /// whatever its `Max-Age`.
    #[must_use]
    pub fn max_token_len(&self) -> usize {
        MAX_COOKIE_LEN.saturating_sub(self.overhead())
    }

    /// The `Set-Cookie` value that removes the cookie (empty, `Max-Age=0`,
    /// the same attributes).
    #[must_use]
    pub fn removal(&self) -> String {
        let mut out = format!("{}=", self.name);
        self.attributes(&mut out, Some(0));
        out
    }

    /// The values of our cookie in one `Cookie` request header: as
    /// [`CookieSpec::values_in`] over that header alone.
    pub fn values<'h>(&'h self, header: &'h str) -> impl Iterator<Item = &'h str> + 'h {
        self.values_in([header.as_bytes()])
    }

    /// The values of our cookie in a request's `Cookie` headers, given as
    /// the bytes that arrived, in header order: at most four in all.
    ///
    /// Headers are read as bytes, so that a neighbour cookie holding UTF-8
    /// or Latin-1 (an analytics cookie on the parent domain, say) never
    /// hides ours. Only ASCII space and tab are trimmed around a pair (a
    /// Unicode space before a name does not make it ours), the name must
    /// match exactly, one pair of double quotes around the value is
    /// removed, and a value that is empty or not a cookie value is skipped.
    ///
    /// Several cookies of one name can arrive (different paths, or one
    /// planted by a sibling domain for names without the `__Host-` prefix).
    /// The rule: try them in order and take the **first that opens**, so that
    /// a planted value that is not a valid token cannot hide ours. A fifth
    /// and later are ignored, so that a request cannot make the server try
    /// many: for names without the `__Host-` prefix, four values planted
    /// ahead of ours do hide it (the victim seems signed out; no one is
    /// signed in as anyone else).
    ///
    /// Without the `__Host-` prefix, a sibling domain can plant a *valid*
    /// token of the attacker's own session, with a longer path so that it
    /// comes first: the victim is then signed in as the attacker (login
    /// CSRF). Only `__Host-` names (the default) rule that out, because
    /// browsers refuse to let anyone but the exact host set them.
    ///
    /// A `__Host-` cookie can exist only once per host (it has `Path=/` and
    /// no `Domain`), so a browser never sends two of one name: two values
    /// mean one was injected (older browsers accepted a nameless cookie
    /// such as `=__Host-session=…`, sent as a second `__Host-session`), and
    /// "first that opens" would let the attacker's valid session displace
    /// the victim's. For a `__Host-` name, more than one value yields
    /// **none** (logged at `info`): the request has no such cookie. (The
    /// web layer still ends the sessions those values carry at logout and
    /// login.) On such older browsers, a victim with no session of their
    /// own has only the injected value, which opens: SECURITY.md names this
    /// limit.
    ///
    /// ```
    /// use sealed_session::CookieSpec;
    ///
    /// let spec = CookieSpec::named("session")?;
    /// let headers: [&[u8]; 2] = [b"tracker=caf\xc3\xa9; session=A", b"session=\"B\""];
    /// assert_eq!(spec.values_in(headers).collect::<Vec<_>>(), ["A", "B"]);
    ///
    /// let host = CookieSpec::default();
    /// let one: [&[u8]; 2] = [b"tracker=caf\xc3\xa9; __Host-session=A", b"other=B"];
    /// assert_eq!(host.values_in(one).collect::<Vec<_>>(), ["A"]);
    /// let injected: [&[u8]; 2] = [b"__Host-session=A", b"__Host-session=B"];
    /// assert_eq!(host.values_in(injected).count(), 0);
    /// # Ok::<(), sealed_session::CookieError>(())
    /// ```
    pub fn values_in<'s, 'h, I>(&'s self, headers: I) -> impl Iterator<Item = &'h str> + use<'s, 'h, I>
    where
        I: IntoIterator<Item = &'h [u8]>,
    {
        let [values] = scan([self], headers);
        let len = values.as_slice().len();
        values.found.into_iter().take(len)
    }

    /// Whether the name has the `__Host-` prefix (spelled so: `validated`
    /// refuses another case).
    fn is_host_prefixed(&self) -> bool {
        self.name.starts_with("__Host-")
    }
}

/// The values of one cookie found in a request, at most
/// [`MAX_SAME_NAME`], by the rules of [`CookieSpec::values_in`].
#[derive(Clone, Copy, Default)]
pub(crate) struct Values<'h> {
    found: [&'h str; MAX_SAME_NAME],
    len: usize,
    /// A `__Host-` cookie that arrived more than once: one was injected.
    injected: bool,
}

/// The values are tokens: only how many there are is shown.
impl std::fmt::Debug for Values<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Values").field("len", &self.len).field("injected", &self.injected).finish()
    }
}

impl<'h> Values<'h> {
    /// The values, in order: none for an injected `__Host-` cookie.
    pub(crate) fn as_slice(&self) -> &[&'h str] {
        if self.injected {
            &[]
        } else {
            self.all()
        }
    }

    /// The values of a `__Host-` cookie that arrived more than once, which
    /// are not the request's cookie (none if it arrived once).
    pub(crate) fn injected(&self) -> &[&'h str] {
        if self.injected {
            self.all()
        } else {
            &[]
        }
    }

    fn all(&self) -> &[&'h str] {
        self.found.get(..self.len).unwrap_or_default()
    }
}

/// The values of each of `specs` in a request's `Cookie` headers, read in
/// one pass, each by the rules of [`CookieSpec::values_in`].
pub(crate) fn scan<'h, const N: usize>(
    specs: [&CookieSpec; N],
    headers: impl IntoIterator<Item = &'h [u8]>,
) -> [Values<'h>; N] {
    let mut values = [Values::default(); N];
    let mut counts = [0usize; N];
    let pairs = headers.into_iter().flat_map(split_pairs);
    for pair in pairs {
        let mut parts = trim_space_and_tab(pair).splitn(2, |&b| b == b'=');
        let (Some(name), Some(value)) = (parts.next(), parts.next()) else { continue };
        let Some(i) = specs.iter().position(|spec| name == spec.name.as_bytes()) else { continue };
        let value = value.strip_prefix(b"\"").and_then(|v| v.strip_suffix(b"\"")).unwrap_or(value);
        if value.is_empty() || !is_cookie_value(value) {
            continue;
        }
        let Ok(value) = std::str::from_utf8(value) else { continue };
        let (Some(count), Some(found)) = (counts.get_mut(i), values.get_mut(i)) else { continue };
        if let Some(slot) = found.found.get_mut(found.len) {
            *slot = value;
            found.len += 1;
        }
        *count += 1;
    }
    for ((spec, found), count) in specs.iter().zip(&mut values).zip(counts) {
        if count > 1 && spec.is_host_prefixed() {
            tracing::info!(
                cookie = %spec.name,
                count,
                "a __Host- cookie arrived more than once, which no browser sends of itself (an injected \
                 cookie): treated as no cookie"
            );
            found.injected = true;
        }
    }
    values
}

/// A `Cookie` header's `name=value` pairs: the header split at each `;`
/// (found with `memchr`, many bytes at a time: a header runs to a few
/// kilobytes, and every request has one).
fn split_pairs(header: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(header);
    std::iter::from_fn(move || {
        let left = rest?;
        match memchr::memchr(b';', left) {
            Some(at) => {
                rest = left.get(at + 1..);
                left.get(..at)
            }
            None => {
                rest = None;
                Some(left)
            }
        }
    })
}

/// What a response must do with one cookie.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum CookieChange {
    /// Send this `Set-Cookie` value.
    Set(String),
    /// Remove the cookie.
    Remove,
}

/// The `Set-Cookie` value carries a token: only its length is shown.
impl std::fmt::Debug for CookieChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Set(value) => write!(f, "Set(<{} bytes>)", value.len()),
            Self::Remove => f.write_str("Remove"),
        }
    }
}

/// `bytes` without ASCII spaces and tabs at either end (nothing else: a
/// Unicode space is not whitespace in a `Cookie` header).
fn trim_space_and_tab(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

#[cfg(test)]
mod tests {
    /// What carries a token shows none in `Debug`: one `?` in a log line
    /// must not leak a session.
    #[test]
    fn cookie_values_never_show_in_debug() {
        let change = super::CookieChange::Set("__Host-session=SECRETTOKEN; Path=/".into());
        assert!(!format!("{change:?}").contains("SECRETTOKEN"), "{change:?}");
        let spec = super::CookieSpec::default();
        let [values] = super::scan([&spec], [&b"__Host-session=SECRETTOKEN"[..]]);
        assert_eq!(values.as_slice().len(), 1);
        assert!(!format!("{values:?}").contains("SECRETTOKEN"), "{values:?}");
    }
}
