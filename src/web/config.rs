//! The settings every request of a web integration shares, and their builder.

use std::sync::Arc;
use std::time::Duration;

use super::audit::{AuditEvent, AuditKind, AuditSink};
use super::binding::{DbscSettings, DeviceBinding, CHALLENGE_LIFETIME};
use super::flash::{FlashConfig, FLASH_TIMEOUT};
use crate::csrf::{InvalidOrigin, OriginPolicy};
use crate::{
    ConfigError, CookieError, CookieSpec, RevocationStore, Sealer, SealerBuilder, SessionRegistry, Verifier,
};

/// The header a script sends the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The form field an HTML form sends the CSRF token in.
pub const CSRF_FIELD: &str = "csrf_token";
/// How large a form body is read to find the CSRF field: 64 KiB.
pub const DEFAULT_FORM_LIMIT: usize = 64 * 1024;
/// The response header that carries a new or renewed session token to a
/// client that sent its token as `Authorization: Bearer` (see
/// [`WebConfigBuilder::bearer_tokens`]).
pub const SESSION_TOKEN_HEADER: &str = "x-session-token";
/// How long a pre-session (the login form's CSRF binding) lives: 2 hours.
pub const PRE_SESSION_TIMEOUT: Duration = Duration::from_secs(2 * 60 * 60);

/// The endings of the purposes derived from the session cookie's name
/// (pre-session, flash, version 1's remember-me and versioned data, and the
/// DBSC cookies and identifier): no
/// session cookie may end so, or its purpose would be another
/// configuration's derived one.
const RESERVED_SUFFIXES: [&str; 7] =
    ["-csrf", "-flash", "+remember", "+versioned", "-dbsc", "-dbsc-id", "-dbsc-challenge"];

/// What a logout asks the browser to clear of the site's data, with the
/// `Clear-Site-Data` response header (W3C Clear Site Data): see
/// [`WebConfigBuilder::clear_site_data_on_logout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClearSiteData {
    /// `"cache"`: the browser's HTTP cache for the origin (pages a shared
    /// computer's next user could go back to), and what browsers keep
    /// with it (the back-forward cache, say).
    Cache,
    /// `"cookies"`: every cookie of the *registrable domain*
    /// (`example.com` and all of its subdomains, not only this origin),
    /// HTTP authentication credentials too. Use it only where the
    /// application owns the whole domain.
    Cookies,
    /// `"storage"`: the origin's `localStorage`, `sessionStorage`,
    /// IndexedDB, service workers and the like.
    Storage,
}

impl ClearSiteData {
    /// The directive, as it appears in the header (a quoted string).
    #[must_use]
    pub const fn directive(self) -> &'static str {
        match self {
            Self::Cache => "\"cache\"",
            Self::Cookies => "\"cookies\"",
            Self::Storage => "\"storage\"",
        }
    }
}

/// The CSRF settings.
#[derive(Debug, Clone)]
pub(crate) struct CsrfSettings {
    pub(crate) enforced: bool,
    pub(crate) policy: OriginPolicy,
    pub(crate) exempt: Vec<String>,
    /// Lower case.
    pub(crate) header: String,
    pub(crate) field: String,
}

impl CsrfSettings {
    /// Whether a request to `path` with `method` (an upgrade request if
    /// `upgrade`) must pass the checks.
    pub(crate) fn applies(&self, method: &str, path: &str, upgrade: bool) -> bool {
        self.enforced
            && (upgrade || crate::csrf::is_unsafe_method(method))
            && !self.exempt.iter().any(|e| e == path)
    }
}

/// What every request shares, whatever the store: the session cookie and
/// the cookies derived from it (pre-session, flash messages), CSRF and
/// bearer tokens.
pub(crate) struct Settings {
    pub(crate) sealer: Sealer,
    pub(crate) cookie: CookieSpec,
    pub(crate) pre_sealer: Sealer,
    pub(crate) pre_cookie: CookieSpec,
    pub(crate) flash: FlashConfig,
    pub(crate) origin: Option<String>,
    pub(crate) csrf: CsrfSettings,
    pub(crate) form_limit: usize,
    pub(crate) bearer: bool,
    /// Device-bound sessions, if on.
    pub(crate) dbsc: Option<DbscSettings>,
    /// Where audit events go, if anywhere.
    pub(crate) audit: Option<Arc<dyn AuditSink>>,
    /// The session registry, if sessions are listed.
    pub(crate) registry: Option<RegistrySettings>,
    /// When a cookie under a key this server lacks was last logged at
    /// `warn`: any client can send one, every request.
    pub(crate) unknown_key_warned: Throttle,
    /// When a `Secure-Session-Skipped` header was last logged at `info`:
    /// any client can send one, every request.
    pub(crate) skipped_said: Throttle,
    /// What a logout's response asks the browser to clear: each kind
    /// once, in the order of [`ClearSiteData`].
    pub(crate) clear_site_data: Vec<ClearSiteData>,
}

impl Settings {
    /// The `Clear-Site-Data` value a logout's response carries, if any
    /// (without `"cookies"` when `keep_cookies`).
    pub(crate) fn clear_site_data(&self, keep_cookies: bool) -> Option<String> {
        let asked =
            self.clear_site_data.iter().filter(|kind| !(keep_cookies && **kind == ClearSiteData::Cookies));
        let value = asked.map(|kind| kind.directive()).collect::<Vec<_>>().join(", ");
        (!value.is_empty()).then_some(value)
    }

    /// Logs that a token under key `key_id`, which this server lacks or
    /// holds as scheduled for later, was refused (and kept, for a keyring
    /// rollout): at `warn` once a minute at most, since any client can
    /// name a key ID with every request, else at `info`. The key ID is
    /// read before anything authenticates, so the line says the cookie may
    /// be made up.
    pub(crate) fn unknown_key_refused(&self, what: &str, key_id: u32) {
        if self.unknown_key_warned.due(self.sealer.clock().unix_now()) {
            tracing::warn!(
                key_id,
                "{what} refused: its key is not in this server's keyring or not due to seal yet; if keys are \
                 being rolled out, deploy the same keyring to every server, else it may be made up (said once a \
                 minute at most)"
            );
        } else {
            tracing::info!(
                key_id,
                "{what} refused: its key is not in this server's keyring or not due to seal yet; if keys are \
                 being rolled out, deploy the same keyring to every server, else it may be made up"
            );
        }
    }
}

/// At most one event a minute: the first, then one a minute or more after
/// the last that went through.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    /// The Unix second of the last event that went through, plus one (0:
    /// none yet).
    last: std::sync::atomic::AtomicI64,
}

impl Throttle {
    /// Whether an event at `now` (Unix seconds) goes through; if so, it is
    /// the last from now on.
    pub(crate) fn due(&self, now: i64) -> bool {
        let mark = now.saturating_add(1);
        self.last
            .fetch_update(std::sync::atomic::Ordering::SeqCst, std::sync::atomic::Ordering::SeqCst, |last| {
                (last == 0 || mark.saturating_sub(last) >= 60).then_some(mark)
            })
            .is_ok()
    }
}

/// The sessions a user may have without a
/// [`session_limit`](super::WebConfigBuilder::session_limit): the
/// registry's bound, less room for logins at the same moment (each may
/// find the same count and add one).
pub(crate) const BUILT_IN_LIMIT: usize = crate::registry::MAX_RECORDS_PER_USER - 10;

/// The session registry and the per-user limit it enforces.
pub(crate) struct RegistrySettings {
    pub(crate) registry: Arc<dyn SessionRegistry>,
    pub(crate) limit: Option<(usize, LimitPolicy)>,
    /// The records re-issues moved lately, to move each once an interval.
    pub(crate) recent: super::renewal::RecentRecords,
}

/// What a login does when the user already has as many sessions as
/// [`WebConfigBuilder::session_limit`] allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitPolicy {
    /// The new session starts, and the user's oldest sessions end (on
    /// every server, through the denylist) to make room.
    EndOldest,
    /// The login is refused ([`HandleError::SessionLimit`](super::HandleError::SessionLimit),
    /// `409`): the user must sign out another device first.
    RefuseLogin,
}

impl Settings {
    /// Records an event of `kind`, which `fill` completes, if there is an
    /// audit sink: without one, nothing is built.
    pub(crate) fn audit(&self, kind: AuditKind, fill: impl FnOnce(AuditEvent) -> AuditEvent) {
        crate::metrics::event(kind.name());
        if let Some(sink) = &self.audit {
            let event = fill(AuditEvent::new(kind, self.sealer.clock().unix_now()));
            // The change it reports is made: a sink that panics (writing
            // to a closed stdout, say) loses the event, not the request's
            // answer and cookies.
            let recorded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink.record(&event)));
            if recorded.is_err() {
                tracing::error!(kind = kind.name(), "the audit sink panicked: the event is lost");
            }
        }
    }
}

/// The settings every request shares: the verifier (the sealer and the
/// revocation store), the session cookie and the cookies derived from it
/// (pre-session, flash messages), CSRF and bearer tokens. Build it once
/// with [`WebConfig::builder`]; the framework adapters take it whole
/// (`SessionLayer::new(config)`, `SessionMiddleware::new(config)`), and
/// [`WebConfig::begin`] drives each request.
pub struct WebConfig<S> {
    pub(crate) verifier: Verifier<S>,
    pub(crate) settings: Settings,
}

impl<S> std::fmt::Debug for WebConfig<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("cookie", &self.settings.cookie.name())
            .field("origin", &self.settings.origin)
            .field("csrf", &self.settings.csrf)
            .field("bearer", &self.settings.bearer)
            .field("clear_site_data_on_logout", &self.settings.clear_site_data)
            .finish_non_exhaustive()
    }
}

impl<S> WebConfig<S> {
    /// The verifier: the sealer and the store, for what an application does
    /// outside a request (log everyone out, seal a session for a test).
    pub fn verifier(&self) -> &Verifier<S> {
        &self.verifier
    }

    /// The session cookie.
    pub fn cookie(&self) -> &CookieSpec {
        &self.settings.cookie
    }

    /// The header scripts send the CSRF token in (lower case).
    pub fn csrf_header(&self) -> &str {
        &self.settings.csrf.header
    }

    /// The largest form body the driver reads for a CSRF token
    /// ([`WebConfigBuilder::form_limit`]): a route that reads a form
    /// itself (its token came in a header) can take the same limit, so that
    /// a form is accepted or refused wherever its token is.
    #[must_use]
    pub fn form_limit(&self) -> usize {
        self.settings.form_limit
    }
}

impl<S: RevocationStore> WebConfig<S> {
    /// A builder with the defaults: the cookie `__Host-session` (Secure,
    /// HttpOnly, SameSite=Lax, Path=/), CSRF enforcement on, the expected
    /// origin taken from each request's `Host`, no bearer tokens. `sealer`
    /// holds the keyring, timeouts, remember-me and clock; its purpose is
    /// the cookie's name, which this builder sets (a purpose set on `sealer`
    /// must be that name, or [`build`](WebConfigBuilder::build) refuses it),
    /// so that the two can never disagree.
    pub fn builder(sealer: SealerBuilder, store: S) -> WebConfigBuilder<S> {
        WebConfigBuilder {
            sealer,
            store,
            cookie: CookieSpec::default(),
            origin: None,
            csrf: CsrfSettings {
                enforced: true,
                policy: OriginPolicy::default(),
                exempt: Vec::new(),
                header: CSRF_HEADER.to_owned(),
                field: CSRF_FIELD.to_owned(),
            },
            trusted: Vec::new(),
            form_limit: DEFAULT_FORM_LIMIT,
            bearer: false,
            dbsc: None,
            audit: None,
            registry: None,
            limit: None,
            clear_site_data: Vec::new(),
        }
    }
}

/// Configures a [`WebConfig`].
pub struct WebConfigBuilder<S> {
    sealer: SealerBuilder,
    store: S,
    cookie: CookieSpec,
    origin: Option<String>,
    csrf: CsrfSettings,
    /// Checked by `build`.
    trusted: Vec<String>,
    form_limit: usize,
    bearer: bool,
    dbsc: Option<DeviceBinding>,
    audit: Option<Arc<dyn AuditSink>>,
    registry: Option<Arc<dyn SessionRegistry>>,
    limit: Option<(usize, LimitPolicy)>,
    clear_site_data: Vec<ClearSiteData>,
}

impl<S> std::fmt::Debug for WebConfigBuilder<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfigBuilder")
            .field("cookie", &self.cookie.name())
            .field("origin", &self.origin)
            .field("csrf", &self.csrf)
            .field("audit", &self.audit.is_some())
            .field("clear_site_data_on_logout", &self.clear_site_data)
            .finish_non_exhaustive()
    }
}

impl<S: RevocationStore> WebConfigBuilder<S> {
    /// The session cookie; its name is the sealer's purpose. The
    /// pre-session and flash cookies are named after it with `-csrf` and
    /// `-flash` appended, live as long as the browser session and have the
    /// default attributes.
    #[must_use]
    pub fn cookie(mut self, cookie: CookieSpec) -> Self {
        self.cookie = cookie;
        self
    }

    /// The origin unsafe requests must come from, such as
    /// `https://app.example`, when the browser sends no `Sec-Fetch-Site`
    /// but an `Origin`. By default `https://` and the request's own host
    /// (right unless a proxy rewrites `Host`; its default port, `:443`, or
    /// `:80` for http, is dropped, as browsers do in `Origin`), or `http://` for a loopback
    /// host (`127.0.0.1`, `localhost`, `[::1]`), where browsers treat plain
    /// http as secure. [`build`](Self::build) refuses anything but
    /// `scheme://host[:port]` (`null`, `*`, a path).
    #[must_use]
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Turns CSRF enforcement off, for APIs that no browser calls with
    /// cookies. On by default: keep it on for anything a browser uses, and
    /// exempt single routes with [`csrf_exempt`](Self::csrf_exempt) instead.
    #[must_use]
    pub fn without_csrf(mut self) -> Self {
        self.csrf.enforced = false;
        self
    }

    /// Exempts requests to `path` (compared exactly with the request's
    /// path as the integration sees it, so `/webhook` does not exempt
    /// `/webhook/` or `/webhooks`; inside an axum `Router::nest` that is the
    /// path under the mount point, in actix-web always the full path) from
    /// the CSRF checks: a payment webhook, an OpenID Connect `form_post` or
    /// SAML callback, which other sites post to by design. Nothing is
    /// exempt by default.
    ///
    /// The handler still sees the request's session, if the browser sent
    /// its cookie: an exempt route must authenticate its caller by other
    /// means (a webhook signature, the OIDC `state`) and must not act on
    /// the session for a request it did not authenticate.
    ///
    /// A cross-site `POST` (an OpenID Connect `form_post` response) carries
    /// no `SameSite=Lax` cookie: keep the OIDC `state` and PKCE verifier
    /// somewhere the callback can read without it, or use the `query`
    /// response mode, whose top-level `GET` does carry the cookie.
    #[must_use]
    pub fn csrf_exempt(mut self, path: impl Into<String>) -> Self {
        self.csrf.exempt.push(path.into());
        self
    }

    /// Also accepts unsafe requests whose `Origin` is `origin` (a front end
    /// of yours on another origin, such as `https://admin.example`); they
    /// still need the CSRF token. Its pages may also open WebSockets with
    /// the user's cookies, and a handshake carries no token: trust only an
    /// origin whose every page you control. See [`OriginPolicy::trust_origin`].
    #[must_use]
    pub fn trust_origin(mut self, origin: impl Into<String>) -> Self {
        self.trusted.push(origin.into());
        self
    }

    /// Also accepts unsafe requests the browser marks `Sec-Fetch-Site:
    /// same-site` (sibling subdomains, a development server on another
    /// port); they still need the CSRF token. A WebSocket handshake, which
    /// carries none, is still refused from them. Off by default. See
    /// [`OriginPolicy::allow_same_site`].
    #[must_use]
    pub fn allow_same_site(mut self) -> Self {
        self.csrf.policy = self.csrf.policy.allow_same_site();
        self
    }

    /// The header scripts send the CSRF token in; default [`CSRF_HEADER`]
    /// (`X-CSRF-Token`). Header names are case-insensitive.
    #[must_use]
    pub fn csrf_header(mut self, name: impl Into<String>) -> Self {
        self.csrf.header = name.into().to_ascii_lowercase();
        self
    }

    /// The form field HTML forms send the CSRF token in; default
    /// [`CSRF_FIELD`] (`csrf_token`).
    #[must_use]
    pub fn csrf_field(mut self, name: impl Into<String>) -> Self {
        self.csrf.field = name.into();
        self
    }

    /// Also reads the session token from `Authorization: Bearer <token>`,
    /// for clients that are not browsers (mobile apps, scripts). Off by
    /// default.
    ///
    /// A request with a bearer `Authorization` header uses that token only:
    /// its cookies are ignored, it needs no CSRF token (a browser never adds
    /// a bearer header by itself, so nothing is ambient), and it never gets
    /// `Set-Cookie`. A new or renewed token (login, a change, key rotation,
    /// idle renewal) comes back in the [`SESSION_TOKEN_HEADER`] response
    /// header, which the client must store and send from then on. To sign
    /// in, a client sends `Authorization: Bearer` with no token. Keep bearer
    /// tokens out of logs and URLs: whoever holds one holds the session
    /// until it is revoked or expires.
    #[must_use]
    pub fn bearer_tokens(mut self) -> Self {
        self.bearer = true;
        self
    }

    /// Device-bound sessions (DBSC, the W3C draft `webappsec-dbsc`): after
    /// each login the response offers the browser to bind the session to a
    /// key it keeps on the device (`Secure-Session-Registration`); a browser
    /// that does registers at the registration endpoint, and from then on
    /// its session cookie lives [`DeviceBinding::bound_lifetime`] past each
    /// proof of that key, which it gives at the refresh endpoint. A copied
    /// cookie stops working when that lifetime runs out. The driver serves
    /// both endpoints itself ([`Begin::Answer`](super::Begin::Answer));
    /// browsers without DBSC keep ordinary sessions. Not with
    /// [`bearer_tokens`](Self::bearer_tokens), which have no browser.
    #[must_use]
    pub fn device_bound_sessions(mut self, binding: DeviceBinding) -> Self {
        self.dbsc = Some(binding);
        self
    }

    /// Asks the browser to clear the site's data (`kinds`) when the user
    /// logs out: the response of a [`logout`](super::SessionHandle::logout)
    /// or [`logout_everywhere`](super::SessionHandle::logout_everywhere)
    /// carries `Clear-Site-Data` (OWASP's advice for a logout, so that a
    /// shared computer's next user finds nothing of the last one's in the
    /// cache or in scripts' storage). None by default, and never for a
    /// request with a bearer token, which has no browser to clear. All but
    /// [`ClearSiteData::Cookies`] is asked for when the response sets a
    /// cookie after the logout (a login as someone else, an anonymous
    /// session, a login form's pre-session, a flash message: it must
    /// stay), and when a logout everywhere is answered as a logout
    /// (`NoSession`, or `LoginError::Ended`: its cookie is left as it is;
    /// nothing for a cookie under a key this server lacks, whose session
    /// may be alive on the servers that have it). Ending this browser's
    /// session otherwise (`logout_others` that had to end every session, a
    /// new ID that could not be sealed) asks for nothing.
    ///
    /// Browsers act on it only from a secure origin (HTTPS, or a loopback
    /// address), and differ in which directives, and on which responses (a
    /// redirect, say), they act on: only Chromium is tested here. Treat it
    /// as defence in depth:
    /// the session is ended on every server, and its cookie removed,
    /// whether or not the browser clears anything.
    ///
    /// ```
    /// use sealed_session::web::{ClearSiteData, WebConfig};
    /// use sealed_session::{Keyring, MemoryStore, Sealer};
    ///
    /// let config = WebConfig::builder(Sealer::builder(Keyring::generate()?), MemoryStore::new())
    ///     .clear_site_data_on_logout([ClearSiteData::Cache, ClearSiteData::Storage])
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn clear_site_data_on_logout(mut self, kinds: impl IntoIterator<Item = ClearSiteData>) -> Self {
        self.clear_site_data = kinds.into_iter().collect();
        self
    }

    /// Where the driver reports what happens to sessions, for an audit
    /// log: logins, logouts, new IDs, refused cookies, device binding (see
    /// [`AuditKind`]). No sink by default.
    ///
    /// ```
    /// use std::io::Write as _;
    ///
    /// use sealed_session::web::{AuditEvent, WebConfig};
    /// use sealed_session::{Keyring, MemoryStore, Sealer};
    ///
    /// let config = WebConfig::builder(Sealer::builder(Keyring::generate()?), MemoryStore::new())
    ///     .audit(|event: &AuditEvent| {
    ///         // Not `println!`, which panics when stdout is closed.
    ///         let _ = writeln!(std::io::stdout().lock(), "{}", event.to_json());
    ///     })
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn audit(mut self, sink: impl AuditSink) -> Self {
        self.audit = Some(Arc::new(sink));
        self
    }

    /// Lists each user's sessions in `registry` (opt-in; usually the
    /// revocation store itself, which is one), so that users can see where
    /// they are signed in ([`SessionHandle::devices`](super::SessionHandle::devices))
    /// and end one device ([`SessionHandle::end_device`](super::SessionHandle::end_device)).
    /// A record is written at login, updated when the cookie is re-issued,
    /// and removed at logout; it holds no session data or secret
    /// ([`SessionRecord`](crate::SessionRecord)). Without a registry,
    /// nothing per session is stored. A registry keeps at most
    /// [`MAX_RECORDS_PER_USER`](crate::registry::MAX_RECORDS_PER_USER)
    /// records per user: without a [`session_limit`](Self::session_limit),
    /// users are kept to 10 fewer sessions than that (room for logins at
    /// the same moment), with [`LimitPolicy::EndOldest`].
    ///
    /// One registry per configuration: records do not say which cookie
    /// they belong to, so two configurations (two cookie names) sharing a
    /// registry list, count and judge each other's sessions by their own
    /// timeouts. Give each its own registry (another store prefix, schema
    /// or file).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sealed_session::web::{LimitPolicy, WebConfig};
    /// use sealed_session::{Keyring, MemoryStore, Sealer};
    ///
    /// let store = Arc::new(MemoryStore::new());
    /// let config = WebConfig::builder(Sealer::builder(Keyring::generate()?), Arc::clone(&store))
    ///     .session_registry(store)
    ///     .session_limit(10, LimitPolicy::EndOldest)
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn session_registry(mut self, registry: impl SessionRegistry + 'static) -> Self {
        self.registry = Some(Arc::new(registry));
        self
    }

    /// At most `max` sessions per user, counted in the
    /// [`session_registry`](Self::session_registry) (which it needs); a
    /// login beyond it does what `policy` says. `max` is at most 90, ten
    /// below [`MAX_RECORDS_PER_USER`](crate::registry::MAX_RECORDS_PER_USER):
    /// a registry keeps no more records than that, and each login records
    /// its session before the one it replaces goes, so that logins at the
    /// same moment count each other (past the registry's bound, the oldest
    /// record would go while its session stays open, unlisted and
    /// uncounted).
    #[must_use]
    pub fn session_limit(mut self, max: usize, policy: LimitPolicy) -> Self {
        self.limit = Some((max, policy));
        self
    }

    /// The largest URL-encoded form body read to find the CSRF field;
    /// larger forms get `413`. Default [`DEFAULT_FORM_LIMIT`].
    #[must_use]
    pub fn form_limit(mut self, bytes: usize) -> Self {
        self.form_limit = bytes;
        self
    }

    /// The settings.
    ///
    /// # Errors
    /// [`WebConfigError::ReservedCookieName`] if the cookie's name ends like
    /// a derived one, [`WebConfigError::PurposeMismatch`] if the sealer was
    /// given a purpose other than the cookie's name,
    /// [`WebConfigError::Sealer`] if the sealer's settings are inconsistent,
    /// [`WebConfigError::CsrfHeader`] for a CSRF header name that is not
    /// one, [`WebConfigError::Origin`] for an origin or trusted origin that
    /// is not one (`scheme://host[:port]`),
    /// or [`WebConfigError::Cookie`] if the derived cookie names are not
    /// valid.
    pub fn build(self) -> Result<WebConfig<S>, WebConfigError> {
        let name = self.cookie.name();
        if let Some(suffix) = RESERVED_SUFFIXES.iter().find(|suffix| name.ends_with(*suffix)) {
            return Err(WebConfigError::ReservedCookieName { cookie: name.to_owned(), suffix });
        }
        if self.sealer.purpose != crate::DEFAULT_PURPOSE && self.sealer.purpose != name {
            return Err(WebConfigError::PurposeMismatch {
                purpose: self.sealer.purpose.clone(),
                cookie: name.to_owned(),
            });
        }
        if !is_header_name(&self.csrf.header) {
            return Err(WebConfigError::CsrfHeader(self.csrf.header));
        }
        let mut sealer = self.sealer.purpose(name);
        if let Some(binding) = &self.dbsc {
            if self.bearer {
                return Err(WebConfigError::DeviceBindingWithBearer);
            }
            // The registration path goes out in an sf-string, which holds
            // printable ASCII only; a refresh at the registration path
            // would be taken for a registration; and the browser must send
            // the session cookie (and its companion, of the same `Path`)
            // to both, or there is no session to bind or refresh.
            let path = |path: &str| {
                path.starts_with('/')
                    && path.bytes().all(|b| b.is_ascii_graphic())
                    && self.cookie.is_sent_to(path)
            };
            let (registration, refresh) = (&binding.registration_path, &binding.refresh_path);
            if !path(registration) || !path(refresh) || registration == refresh {
                return Err(WebConfigError::DeviceBindingPaths);
            }
            if let Some(bad) =
                binding.refresh_initiators.iter().find(|p| !super::binding::is_initiator_pattern(p))
            {
                return Err(WebConfigError::DeviceBindingInitiator(bad.clone()));
            }
            sealer = sealer.device_bound_lifetime(binding.lifetime);
        }
        let sealer = sealer.build().map_err(WebConfigError::Sealer)?;
        // With the session sealer's leeway, length limit and token version
        // (during a rolling upgrade that seals version 1, older servers must
        // open these cookies too).
        let derived = |suffix: &str, timeout: Duration| {
            sealer.derived(&format!("{name}{suffix}"), timeout).map_err(WebConfigError::Sealer)
        };
        // With the session cookie's `Secure`, `SameSite` and `Domain` (a
        // plain-HTTP development cookie's go where it goes, a
        // `SameSite=Strict` one's are not weakened), but `Path=/` (a login
        // form, or a logout's flash message, may be outside the session
        // cookie's path), always `HttpOnly`, for the browser session.
        let cookie = |suffix: &str| -> Result<CookieSpec, CookieError> {
            Ok(self.cookie.renamed(format!("{name}{suffix}"))?.path("/")?.http_only(true)?.browser_session())
        };
        let pre_sealer = derived("-csrf", PRE_SESSION_TIMEOUT)?;
        let pre_cookie = cookie("-csrf")?;
        let flash = FlashConfig { sealer: derived("-flash", FLASH_TIMEOUT)?, cookie: cookie("-flash")? };
        let dbsc = match self.dbsc {
            Some(binding) => Some(DbscSettings {
                companion_sealer: sealer.with_purpose(&format!("{name}-dbsc")),
                companion_cookie: self.cookie.renamed(format!("{name}-dbsc"))?,
                identifier_sealer: sealer.with_purpose_without_idle(&format!("{name}-dbsc-id")),
                challenge_sealer: derived(
                    "-dbsc-challenge",
                    binding.lifetime.saturating_add(CHALLENGE_LIFETIME),
                )?,
                binding,
            }),
            None => None,
        };
        let registry = match (self.registry, self.limit) {
            (_, Some((0, _))) => {
                return Err(WebConfigError::SessionLimit("a session limit must allow 1 session or more"))
            }
            (None, Some(_)) => {
                return Err(WebConfigError::SessionLimit(
                    "a session limit counts sessions in a session registry: add one",
                ))
            }
            (_, Some((max, _))) if max > BUILT_IN_LIMIT => {
                return Err(WebConfigError::SessionLimit(
                    "a session limit may be at most 90: a registry keeps at most 100 records per user, and \
                     logins at the same moment each record their session before the one they end is removed; \
                     past 100, the oldest record goes and its session, still open, is no longer listed or counted",
                ))
            }
            (Some(registry), limit) => Some(RegistrySettings { registry, limit, recent: Default::default() }),
            (None, None) => None,
        };
        let mut csrf = self.csrf;
        for origin in self.trusted {
            csrf.policy = csrf.policy.trust_origin(origin)?;
        }
        Ok(WebConfig {
            verifier: Verifier::new(sealer.clone(), self.store),
            settings: Settings {
                sealer,
                cookie: self.cookie,
                pre_sealer,
                pre_cookie,
                flash,
                origin: self.origin.as_deref().map(crate::csrf::normalized_origin).transpose()?,
                csrf,
                form_limit: self.form_limit,
                bearer: self.bearer,
                dbsc,
                audit: self.audit,
                registry,
                unknown_key_warned: Throttle::default(),
                skipped_said: Throttle::default(),
                clear_site_data: [ClearSiteData::Cache, ClearSiteData::Cookies, ClearSiteData::Storage]
                    .into_iter()
                    .filter(|kind| self.clear_site_data.contains(kind))
                    .collect(),
            },
        })
    }
}

/// RFC 9110 `token`, the form of a header name.
pub(crate) fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A [`WebConfig`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebConfigError {
    /// The sealer was given a purpose other than the session cookie's
    /// name. Both name the same thing (the purpose is bound into every
    /// token), and the builder sets the purpose from the cookie's name.
    #[error(
        "the session cookie is named {cookie:?} but the sealer's purpose is {purpose:?}: \
         leave the purpose unset (it is the cookie's name) or name the cookie {purpose:?}"
    )]
    PurposeMismatch {
        /// The sealer's purpose.
        purpose: String,
        /// The cookie's name.
        cookie: String,
    },
    /// The session cookie's name ends like the cookies and purposes derived
    /// from it (`-csrf`, `-flash`, `+remember`, `+versioned`): another configuration's
    /// pre-session or flash tokens could open as its sessions.
    #[error("the session cookie {cookie:?} ends with {suffix:?}, which is reserved for derived cookies: choose another name")]
    ReservedCookieName {
        /// The cookie's name.
        cookie: String,
        /// The reserved ending.
        suffix: &'static str,
    },
    /// The name given to [`WebConfigBuilder::csrf_header`] is not a header
    /// name.
    #[error("{0:?} is not a header name: use letters, digits and - only, such as x-csrf-token")]
    CsrfHeader(String),
    /// An origin given to [`WebConfigBuilder::trust_origin`] is not a
    /// `scheme://host[:port]` origin.
    #[error(transparent)]
    Origin(#[from] InvalidOrigin),
    /// Device-bound sessions were asked for with bearer tokens: DBSC binds
    /// browser cookies, and a bearer token has none.
    #[error("device-bound sessions bind browser cookies: they cannot be combined with bearer tokens")]
    DeviceBindingWithBearer,
    /// The DBSC registration and refresh paths are the same, or one is not
    /// an absolute path of printable ASCII (the registration path goes out
    /// in a structured-field string, which holds nothing else), or the
    /// session cookie's `Path` does not cover it (the browser would not
    /// send the session to it).
    #[error(
        "the DBSC registration and refresh paths must differ, and each be an absolute path of printable \
         ASCII without spaces within the session cookie's Path, such as /dbsc/register"
    )]
    DeviceBindingPaths,
    /// A pattern given to
    /// [`DeviceBinding::allow_refresh_from`](super::DeviceBinding::allow_refresh_from)
    /// is not `*`, a lower-case host (or an IPv4 address), or `*.` and a
    /// lower-case domain.
    #[error(
        "{0:?} is not a refresh initiator pattern: give a lower-case host (app.example.com; xn-- for an \
         internationalized name; an IPv4 address in dotted decimal), *.example.com for the hosts below a \
         domain, or * for any, with no scheme, port or path"
    )]
    DeviceBindingInitiator(String),
    /// [`WebConfigBuilder::session_limit`] was given 0, or no session
    /// registry to count sessions in.
    #[error("invalid session limit: {0}")]
    SessionLimit(&'static str),
    /// The sealer's settings are inconsistent (see [`ConfigError`]).
    #[error("invalid sealer settings: {0}")]
    Sealer(#[source] ConfigError),
    /// The pre-session or flash cookie (the session cookie's name with
    /// `-csrf` or `-flash` appended, and its attributes) is not a valid
    /// cookie.
    #[error("invalid pre-session or flash cookie: {0}")]
    Cookie(#[from] CookieError),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

    use super::*;
    use crate::{Keyring, MemoryStore, OpenError, Session};

    /// A cookie under a key this server lacks is logged at `warn` once a
    /// minute at most: any client can send one with every request.
    #[test]
    fn the_throttle_lets_one_event_a_minute_through() {
        let throttle = Throttle::default();
        assert!(throttle.due(1_000));
        assert!(!throttle.due(1_000));
        assert!(!throttle.due(1_059));
        assert!(throttle.due(1_060));
        assert!(!throttle.due(1_100));
        assert!(throttle.due(2_000));
        assert!(Throttle::default().due(0), "the first event, whenever it comes");
    }

    /// Each token a configuration seals has a purpose of its own: none
    /// opens under another's, not even as bytes (a login form's
    /// pre-session as a session, a flash cookie as an anonymous session, a
    /// DBSC companion, identifier or challenge as any of them). Judged by
    /// the sealers themselves: through the cookies, a token of another kind
    /// is also refused when its data is not the session's type.
    #[test]
    fn no_token_a_configuration_seals_opens_under_another_purpose() {
        let config = WebConfig::builder(Sealer::builder(Keyring::generate().unwrap()), MemoryStore::new())
            .device_bound_sessions(DeviceBinding::default())
            .build()
            .unwrap();
        let settings = &config.settings;
        let dbsc = settings.dbsc.as_ref().unwrap();
        let sealers = [
            ("session", &settings.sealer),
            ("pre-session", &settings.pre_sealer),
            ("flash", &settings.flash.sealer),
            ("DBSC companion", &dbsc.companion_sealer),
            ("DBSC identifier", &dbsc.identifier_sealer),
            ("DBSC challenge", &dbsc.challenge_sealer),
        ];
        for (sealed_as, sealer) in sealers {
            let token = sealer.seal(&Session::new(())).unwrap();
            for (opened_as, opener) in sealers {
                let opened = opener.open_raw(&token).map(|_| ());
                let expected = if sealed_as == opened_as { Ok(()) } else { Err(OpenError::Invalid) };
                assert_eq!(opened, expected, "a {sealed_as} token opened as a {opened_as} one");
            }
        }
    }
}
