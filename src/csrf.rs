//! Cross-site request forgery: a token bound to the session, and a check of
//! the browser's Fetch Metadata and `Origin` headers.
//!
//! Use both on every request that changes state (anything but `GET`,
//! `HEAD`, `OPTIONS` and `TRACE`):
//!
//! ```
//! use sealed_session::{csrf, Keyring, Sealer, Session};
//!
//! let sealer = Sealer::builder(Keyring::generate()?).build()?;
//! let opened = sealer.open::<()>(&sealer.seal(&Session::new(()))?)?;
//!
//! // Render this into forms (field `csrf_token`) or send it as `X-CSRF-Token`.
//! let token = sealer.csrf_token(opened.session());
//! // On the unsafe request:
//! csrf::check_origin("POST", Some("same-origin"), None, "https://app.example")?;
//! sealer.verify_csrf(opened.session(), &token)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The token is `base64url(key ID ‖ HMAC-SHA256(csrf key, "sealed-session csrf v1" ‖ session ID))`,
//! where the CSRF key is derived from the keyring key with its own HKDF
//! label (docs/FORMAT.md, section 1). A new session ID (every login, every
//! [`Session::renew_id`](crate::Session::renew_id)) makes every earlier
//! token invalid.
//!
//! [`Sealer::csrf_token`](crate::Sealer::csrf_token) hands it out *masked*:
//! `base64url(pad ‖ (pad XOR token bytes))` with a fresh random 36-byte pad
//! each time, so no two pages carry the same text and a compression side
//! channel (BREACH) has nothing stable to recover. Both forms verify.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{KeyInit as _, Mac as _};
use subtle::ConstantTimeEq as _;

use crate::keyring::{Entry, Keyring};
use crate::session::SessionId;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Length of an unmasked CSRF token in characters: 4 + 32 bytes in base64url.
pub const TOKEN_LEN: usize = 48;

/// Length of a masked CSRF token in characters, as
/// [`Sealer::csrf_token`](crate::Sealer::csrf_token) makes them: a 36-byte
/// pad and the 36 bytes of the token XORed with it, in base64url.
pub const MASKED_TOKEN_LEN: usize = 96;

/// Bytes of an unmasked token: the key ID and the MAC.
const RAW_LEN: usize = 36;

/// A request failed the CSRF checks. Answer it with 403 and change nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CsrfError {
    /// No token was sent with an unsafe request.
    #[error("the request has no CSRF token")]
    Missing,
    /// The token is not one this server made for this session.
    #[error("the CSRF token does not match the session")]
    Invalid,
    /// The browser says the request comes from another site.
    #[error("cross-site request refused (Sec-Fetch-Site: {0})")]
    CrossSite(String),
    /// The `Origin` header names another origin.
    #[error("request from another origin refused")]
    WrongOrigin,
}

impl CsrfError {
    /// A short stable name for the refusal (`missing`, `invalid`,
    /// `cross_site`, `wrong_origin`), for audit logs and metrics.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            CsrfError::Missing => "missing",
            CsrfError::Invalid => "invalid",
            CsrfError::CrossSite(_) => "cross_site",
            CsrfError::WrongOrigin => "wrong_origin",
        }
    }
}

/// Whether `method` may change state, and so needs the CSRF checks: every
/// method but `GET`, `HEAD`, `OPTIONS` and `TRACE`. Methods are
/// case-sensitive (RFC 9110): `get` is not `GET`, and is checked.
#[must_use]
pub fn is_unsafe_method(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS" | "TRACE")
}

/// Refuses an unsafe request that a browser says comes from another site.
///
/// * `Sec-Fetch-Site` (sent by current browsers): `same-origin` and `none`
///   (typed in, bookmarks) pass; `same-site` and `cross-site` are refused.
/// * Without it, `Origin`, when present, must equal `expected_origin`
///   (scheme, host and port, such as `https://app.example`; written with
///   its default port, a trailing slash or in capitals, it means the same).
/// * Without either the request is not from a browser that could be forged
///   into sending it; the CSRF token still applies.
///
/// Safe methods always pass. Pass a header that is present but not text
/// (not UTF-8) as `Some("?")`, never `None`: taken for absent, it would
/// skip its check.
///
/// ```
/// use sealed_session::csrf::check_origin;
/// let expected = "https://app.example";
/// assert!(check_origin("POST", Some("same-origin"), None, expected).is_ok());
/// assert!(check_origin("POST", Some("?"), None, expected).is_err(), "unreadable");
/// assert!(check_origin("POST", None, Some("?"), expected).is_err(), "unreadable");
/// ```
///
/// # Errors
/// [`CsrfError::CrossSite`] or [`CsrfError::WrongOrigin`].
pub fn check_origin(
    method: &str,
    sec_fetch_site: Option<&str>,
    origin: Option<&str>,
    expected_origin: &str,
) -> Result<(), CsrfError> {
    OriginPolicy::default().check(method, sec_fetch_site, origin, expected_origin)
}

/// A string given as a trusted origin is not an origin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an origin: give scheme, host and optional port, such as https://admin.example")]
pub struct InvalidOrigin(String);

/// `origin` without case, surrounding space, a trailing `/` or its
/// scheme's default port (browsers send none), if it has the form
/// `scheme://host[:port]`.
pub(crate) fn normalized_origin(origin: &str) -> Result<String, InvalidOrigin> {
    let mut normalized = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    let default_port = [("https://", ":443"), ("http://", ":80")]
        .into_iter()
        .find_map(|(scheme, port)| normalized.starts_with(scheme).then_some(port));
    if let Some(kept) = default_port.and_then(|port| normalized.strip_suffix(port)) {
        normalized = kept.to_owned();
    }
    let valid = normalized.split_once("://").is_some_and(|(scheme, host)| {
        !scheme.is_empty()
            && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
            && !host.is_empty()
            && host.bytes().all(|b| b.is_ascii_graphic() && !b"/?#@\\*".contains(&b))
    });
    if valid {
        Ok(normalized)
    } else {
        Err(InvalidOrigin(origin.chars().take(64).collect()))
    }
}

/// Which browsers' requests [`OriginPolicy::check`] lets through: by
/// default only the application's own origin ([`check_origin`]).
///
/// Widen it only as far as needed, and only for origins you control: a
/// trusted origin, or every site under the same registrable domain with
/// [`OriginPolicy::allow_same_site`], can make the browser send requests
/// that carry the user's cookies. The CSRF token is still required.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginPolicy {
    trusted: Vec<String>,
    same_site: bool,
}

impl OriginPolicy {
    /// Also accepts requests whose `Origin` is `origin` (scheme, host and
    /// port, such as `https://admin.example`; compared without case and
    /// without a trailing `/`), whatever `Sec-Fetch-Site` says: a front end
    /// on another origin of yours. The web driver lets it open WebSockets
    /// too, which carry no token.
    ///
    /// # Errors
    /// [`InvalidOrigin`] for anything but `scheme://host[:port]`: `null`
    /// (which sandboxed frames and `data:` pages send), `*`, an empty
    /// string, a path or a query.
    pub fn trust_origin(mut self, origin: impl Into<String>) -> Result<Self, InvalidOrigin> {
        self.trusted.push(normalized_origin(&origin.into())?);
        Ok(self)
    }

    /// Also accepts `Sec-Fetch-Site: same-site`: requests from any origin of
    /// the same site (sibling subdomains, other ports of the same host, a
    /// development server). Off by default: a subdomain that serves user
    /// content, or one taken over, could then forge requests.
    #[must_use]
    pub fn allow_same_site(mut self) -> Self {
        self.same_site = true;
        self
    }

    /// The origins trusted with [`OriginPolicy::trust_origin`], normalized.
    #[must_use]
    pub fn trusted_origins(&self) -> &[String] {
        &self.trusted
    }

    /// [`check_origin`] under this policy: a trusted `Origin` passes, then
    /// `Sec-Fetch-Site` (`same-origin` and `none`, and `same-site` if
    /// allowed), then without it an `Origin` equal to `expected_origin`.
    ///
    /// # Errors
    /// [`CsrfError::CrossSite`] or [`CsrfError::WrongOrigin`].
    pub fn check(
        &self,
        method: &str,
        sec_fetch_site: Option<&str>,
        origin: Option<&str>,
        expected_origin: &str,
    ) -> Result<(), CsrfError> {
        if !is_unsafe_method(method) {
            return Ok(());
        }
        self.check_site(sec_fetch_site, origin, expected_origin)
    }

    /// [`OriginPolicy::check`] whatever the method: for a request that
    /// changes state although its method is safe, such as a WebSocket
    /// handshake (a `GET` with `Upgrade`), which a page on any site may
    /// open with the user's cookies (cross-site WebSocket hijacking).
    ///
    /// ```
    /// use sealed_session::csrf::OriginPolicy;
    ///
    /// let policy = OriginPolicy::default();
    /// let expected = "https://app.example";
    /// assert!(policy.check_site(Some("same-origin"), None, expected).is_ok());
    /// assert!(policy.check_site(Some("cross-site"), Some("https://evil.example"), expected).is_err());
    /// assert!(policy.check_site(None, Some("https://evil.example"), expected).is_err());
    /// ```
    ///
    /// # Errors
    /// [`CsrfError::CrossSite`] or [`CsrfError::WrongOrigin`].
    pub fn check_site(
        &self,
        sec_fetch_site: Option<&str>,
        origin: Option<&str>,
        expected_origin: &str,
    ) -> Result<(), CsrfError> {
        self.check_site_with(self.same_site, sec_fetch_site, origin, expected_origin)
    }

    /// [`check_site`](Self::check_site) for a request that carries no
    /// token (a WebSocket handshake): `same-site` is refused even where
    /// [`allow_same_site`](Self::allow_same_site) lets it through for
    /// requests that still need the token, or a sibling subdomain could
    /// open the socket as the user.
    pub(crate) fn check_site_without_token(
        &self,
        sec_fetch_site: Option<&str>,
        origin: Option<&str>,
        expected_origin: &str,
    ) -> Result<(), CsrfError> {
        self.check_site_with(false, sec_fetch_site, origin, expected_origin)
    }

    fn check_site_with(
        &self,
        same_site: bool,
        sec_fetch_site: Option<&str>,
        origin: Option<&str>,
        expected_origin: &str,
    ) -> Result<(), CsrfError> {
        let origin = origin.map(str::trim);
        if origin.is_some_and(|origin| self.trusted.iter().any(|t| t.eq_ignore_ascii_case(origin))) {
            return Ok(());
        }
        match (sec_fetch_site.map(str::trim), origin) {
            (Some("same-origin" | "none"), _) => Ok(()),
            (Some("same-site"), _) if same_site => Ok(()),
            // Into messages and logs: printable ASCII only (no control or
            // bidirectional characters), and at most 32 of them.
            (Some(other), _) => Err(CsrfError::CrossSite(
                other.chars().take(32).map(|c| if c.is_ascii_graphic() { c } else { '?' }).collect(),
            )),
            // The expected origin as the driver's are written (no default
            // port, no trailing slash); one that is no origin matches none.
            (None, Some(origin))
                if !normalized_origin(expected_origin)
                    .is_ok_and(|expected| origin.eq_ignore_ascii_case(&expected)) =>
            {
                Err(CsrfError::WrongOrigin)
            }
            (None, _) => Ok(()),
        }
    }
}

/// The MAC of `session`; `None` only if HMAC refused the 32-byte key, which
/// it never does (HMAC takes keys of any length). No other key is ever used.
fn mac(entry: &Entry, session: &SessionId) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(entry.csrf_key.as_ref()).ok()?;
    // The keyed state is two SHA-256 states and a block buffer, which wipe
    // themselves on drop (the zeroize features of hmac and sha2).
    crate::wipe::type_wiped_on_drop::<<sha2::Sha256 as hmac::digest::block_api::CoreProxy>::Core>();
    mac.update(b"sealed-session csrf v1");
    mac.update(session.as_bytes());
    Some(mac)
}

/// The token's bytes for `session` under the keyring entry `entry`: the
/// key ID and the MAC (`None` in the impossible case that HMAC refused the key).
pub(crate) fn raw(entry: &Entry, session: &SessionId) -> Option<[u8; RAW_LEN]> {
    let mac = mac(entry, session)?.finalize().into_bytes();
    let mut bytes = [0u8; RAW_LEN];
    let (id, tag) = bytes.split_at_mut(4);
    id.copy_from_slice(&entry.spec.id.to_be_bytes());
    tag.copy_from_slice(&mac);
    Some(bytes)
}

/// The masked token for `session` under the keyring entry `entry`: a fresh
/// random pad and the token's bytes XORed with it. Empty, which never
/// verifies, if no pad can be drawn (the OS refused to reseed the
/// generator: a token sent unmasked would repeat from page to page) or in
/// the impossible case that HMAC refused the key.
pub(crate) fn token(entry: &Entry, session: &SessionId) -> String {
    let Some(raw) = raw(entry, session) else { return String::new() };
    let Ok(pad) = crate::random::array::<RAW_LEN>() else {
        tracing::error!(
            "no random bytes to mask a CSRF token; the page gets none, and its form will be refused"
        );
        return String::new();
    };
    let mut masked = [0u8; 2 * RAW_LEN];
    let (head, tail) = masked.split_at_mut(RAW_LEN);
    head.copy_from_slice(&pad);
    for ((out, p), r) in tail.iter_mut().zip(pad).zip(raw) {
        *out = p ^ r;
    }
    URL_SAFE_NO_PAD.encode(masked)
}

/// The token's bytes from `token`, masked or not; `None` for anything that
/// is neither length or not base64url.
fn unmask(token: &str) -> Option<[u8; RAW_LEN]> {
    match token.len() {
        TOKEN_LEN => URL_SAFE_NO_PAD.decode(token).ok()?.try_into().ok(),
        MASKED_TOKEN_LEN => {
            let bytes: [u8; 2 * RAW_LEN] = URL_SAFE_NO_PAD.decode(token).ok()?.try_into().ok()?;
            let (pad, masked) = bytes.split_first_chunk::<RAW_LEN>()?;
            let mut raw = [0u8; RAW_LEN];
            for ((out, p), m) in raw.iter_mut().zip(pad).zip(masked) {
                *out = p ^ m;
            }
            Some(raw)
        }
        _ => None,
    }
}

/// Checks `token` (masked or not) for `session` with the key it names;
/// retired and unknown keys (at `now`, Unix seconds) are refused, and so is
/// a key scheduled to seal after `now` plus `leeway` (as tokens are), the
/// comparison is constant-time.
pub(crate) fn verify(
    keyring: &Keyring,
    session: &SessionId,
    token: &str,
    now: u64,
    leeway: u64,
) -> Result<(), CsrfError> {
    if token.is_empty() {
        return Err(CsrfError::Missing);
    }
    let bytes = unmask(token).ok_or(CsrfError::Invalid)?;
    let (id, tag) = bytes.split_first_chunk::<4>().ok_or(CsrfError::Invalid)?;
    let entry = keyring
        .entry(u32::from_be_bytes(*id))
        .filter(|e| !e.refuses_at(now) && !e.activates_after(now.saturating_add(leeway)))
        .ok_or(CsrfError::Invalid)?;
    let expected = mac(entry, session).ok_or(CsrfError::Invalid)?.finalize().into_bytes();
    if bool::from(expected.as_slice().ct_eq(tag)) {
        Ok(())
    } else {
        Err(CsrfError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    /// With no random pad to mask it (the OS refused to seed the
    /// generator), a page gets no token at all rather than the unmasked
    /// MAC, which would repeat from page to page.
    #[test]
    fn no_pad_gives_no_token_rather_than_an_unmasked_one() {
        let keyring = crate::Keyring::generate().unwrap();
        let session = crate::SessionId::random().unwrap();
        std::thread::spawn(move || {
            // A new thread's generator is seeded at its first draw: that read fails.
            crate::random::tests::FAIL_NEXT_OS_FILL.with(|fail| fail.set(true));
            let entry = keyring.primary_entry();
            assert_eq!(super::token(entry, &session), "");
            let token = super::token(entry, &session);
            assert_eq!(token.len(), 96, "masked: a pad and the XORed bytes, 72 in base64url: {token}");
            assert!(super::verify(&keyring, &session, &token, 0, 0).is_ok());
        })
        .join()
        .unwrap();
    }
}
