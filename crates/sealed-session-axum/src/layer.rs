//! The layer and its builder: the settings every request shares.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use sealed_session::csrf::OriginPolicy;
use sealed_session::{
    ConfigError, CookieError, CookieSpec, LoginError, RevocationStore, SealError, Sealer,
    Session as CoreSession, StoreError, Verified, Verifier,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tower_layer::Layer;

use crate::error::SessionError;
use crate::flash::{FlashConfig, FLASH_TIMEOUT};
use crate::service::SessionService;
use crate::sessions::{BoxFuture, Ops};

/// The header a script sends the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The form field an HTML form sends the CSRF token in.
pub const CSRF_FIELD: &str = "csrf_token";
/// How large a form body the layer reads to find the CSRF field: 64 KiB.
pub const DEFAULT_FORM_LIMIT: usize = 64 * 1024;
/// The response header that carries a new or renewed session token to a
/// client that sent its token as `Authorization: Bearer` (see
/// [`SessionLayerBuilder::bearer_tokens`]).
pub const SESSION_TOKEN_HEADER: &str = "x-session-token";
/// How long a pre-session (the login form's CSRF binding) lives: 2 hours.
pub const PRE_SESSION_TIMEOUT: Duration = Duration::from_secs(2 * 60 * 60);

/// Everything the layer and the handles share.
pub(crate) struct Config<S> {
    pub(crate) verifier: Verifier<S>,
    pub(crate) cookie: CookieSpec,
    pub(crate) pre_sealer: Sealer,
    pub(crate) pre_cookie: CookieSpec,
    pub(crate) flash: FlashConfig,
    pub(crate) origin: Option<String>,
    pub(crate) csrf: Csrf,
    pub(crate) form_limit: usize,
    pub(crate) bearer: bool,
}

impl<S: RevocationStore> Config<S> {
    /// Seals `session` for the request's transport: the `Set-Cookie` value,
    /// or for a bearer-token request the bare token.
    pub(crate) fn seal<T: Serialize + DeserializeOwned>(
        &self,
        session: &CoreSession<T>,
        bearer: bool,
    ) -> Result<(Verified<T>, String), SealError> {
        if bearer {
            let (token, verified) = self.verifier.issue(session)?;
            Ok((verified, token))
        } else {
            self.verifier.issue_cookie(session, &self.cookie)
        }
    }
}

/// The CSRF settings.
#[derive(Debug, Clone)]
pub(crate) struct Csrf {
    pub(crate) enforced: bool,
    pub(crate) policy: OriginPolicy,
    pub(crate) exempt: Vec<String>,
    pub(crate) header: HeaderName,
    pub(crate) field: String,
}

impl Csrf {
    /// Whether a request to `path` with `method` must pass the checks.
    pub(crate) fn applies(&self, method: &str, path: &str) -> bool {
        self.enforced
            && sealed_session::csrf::is_unsafe_method(method)
            && !self.exempt.iter().any(|e| e == path)
    }
}

impl<S: RevocationStore, T: Send + Sync + 'static> Ops<T> for Config<S> {
    fn sealer(&self) -> &Sealer {
        self.verifier.sealer()
    }

    fn pre_sealer(&self) -> &Sealer {
        &self.pre_sealer
    }

    fn pre_cookie(&self) -> &CookieSpec {
        &self.pre_cookie
    }

    fn flash(&self) -> &FlashConfig {
        &self.flash
    }

    fn issue(&self, session: &CoreSession<T>, bearer: bool) -> Result<(Verified<T>, String), SessionError>
    where
        T: Serialize + DeserializeOwned,
    {
        Ok(self.seal(session, bearer)?)
    }

    fn start(&self, data: T) -> BoxFuture<'_, Result<CoreSession<T>, LoginError>> {
        Box::pin(self.verifier.start(data))
    }

    fn login<'a>(&'a self, user_id: &'a str, data: T) -> BoxFuture<'a, Result<CoreSession<T>, LoginError>> {
        Box::pin(self.verifier.login(user_id, data))
    }

    fn logout<'a>(&'a self, session: &'a CoreSession<T>) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.verifier.logout(session))
    }

    fn logout_everywhere<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(self.verifier.logout_everywhere(user_id))
    }

    fn renew_id<'a>(&'a self, session: &'a mut CoreSession<T>) -> BoxFuture<'a, Result<(), LoginError>> {
        Box::pin(self.verifier.renew_id(session))
    }
}

/// A [`tower_layer::Layer`] that gives every request its session.
///
/// For each request it:
/// 1. reads the session cookie (the first value that opens, of at most
///    four; see [`CookieSpec::values`]) and checks it against the revocation
///    store. Expired, revoked and tampered cookies become "no session" (and
///    a cookie removal); one sealed under a key this server does not have
///    is "no session" but kept (a key rollout in progress). The reason is
///    logged with `tracing`. A store that cannot be reached gives `503` and
///    changes no cookie. With [`bearer_tokens`](SessionLayerBuilder::bearer_tokens),
///    a request with `Authorization: Bearer` uses that token instead, and no
///    cookie at all.
/// 2. on unsafe methods (anything but GET, HEAD, OPTIONS, TRACE) to paths
///    not [exempt](SessionLayerBuilder::csrf_exempt), and not carried by a
///    bearer token, refuses with `403` a request that the browser marks as
///    cross-site ([`OriginPolicy`](sealed_session::csrf::OriginPolicy), as
///    the builder sets it) or that lacks the session's CSRF token, in the
///    CSRF header (`X-CSRF-Token` by default) or field (`csrf_token`) of a
///    URL-encoded form. Without a session the token must match the
///    pre-session (see [`Sessions::csrf_token`](crate::Sessions::csrf_token)).
/// 3. runs the inner service with a [`Sessions`](crate::Sessions) handle in the request's
///    extensions, and then writes `Set-Cookie` only if the handler changed
///    the session or its flash messages, or the session is due for
///    re-issue (key rotation, idle renewal). Responses that set a cookie
///    get `Cache-Control: no-store` unless they have a `Cache-Control`
///    already.
///
/// `T` is the session's data type; handlers extract [`Sessions<T>`](crate::Sessions) and
/// [`Session<T>`](crate::Session) with the same `T`.
pub struct SessionLayer<S, T> {
    config: Arc<Config<S>>,
    data: PhantomData<fn() -> T>,
}

impl<S, T> Clone for SessionLayer<S, T> {
    fn clone(&self) -> Self {
        Self { config: Arc::clone(&self.config), data: PhantomData }
    }
}

impl<S, T> std::fmt::Debug for SessionLayer<S, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLayer")
            .field("cookie", &self.config.cookie.name())
            .field("origin", &self.config.origin)
            .field("csrf", &self.config.csrf)
            .finish_non_exhaustive()
    }
}

impl<S, T> SessionLayer<S, T>
where
    S: RevocationStore + 'static,
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// A layer with the defaults: the cookie `__Host-session` (Secure,
    /// HttpOnly, SameSite=Lax, Path=/), CSRF enforcement on, and the
    /// expected origin taken from each request's `Host`.
    ///
    /// # Errors
    /// [`LayerError`] as [`SessionLayerBuilder::build`].
    pub fn new(verifier: Verifier<S>) -> Result<Self, LayerError> {
        Self::builder(verifier).build()
    }

    pub(crate) fn config(&self) -> &Config<S> {
        &self.config
    }

    /// A builder, to choose the cookie, the origin and the CSRF settings.
    pub fn builder(verifier: Verifier<S>) -> SessionLayerBuilder<S, T> {
        SessionLayerBuilder {
            verifier,
            cookie: CookieSpec::default(),
            origin: None,
            csrf: Csrf {
                enforced: true,
                policy: OriginPolicy::default(),
                exempt: Vec::new(),
                header: HeaderName::from_static(CSRF_HEADER),
                field: CSRF_FIELD.to_owned(),
            },
            trusted: Vec::new(),
            form_limit: DEFAULT_FORM_LIMIT,
            bearer: false,
            data: PhantomData,
        }
    }
}

/// Configures a [`SessionLayer`].
pub struct SessionLayerBuilder<S, T> {
    verifier: Verifier<S>,
    cookie: CookieSpec,
    origin: Option<String>,
    csrf: Csrf,
    /// Checked by `build`.
    trusted: Vec<String>,
    form_limit: usize,
    bearer: bool,
    data: PhantomData<fn() -> T>,
}

impl<S, T> std::fmt::Debug for SessionLayerBuilder<S, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLayerBuilder")
            .field("cookie", &self.cookie.name())
            .field("origin", &self.origin)
            .field("csrf", &self.csrf)
            .finish_non_exhaustive()
    }
}

impl<S, T> SessionLayerBuilder<S, T>
where
    S: RevocationStore + 'static,
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// The session cookie. The pre-session cookie is named after it with
    /// `-csrf` appended, lives as long as the browser session and has the
    /// default attributes. Its name must equal the sealer's purpose (the
    /// default for both is `__Host-session`), so that a token sealed for
    /// another cookie on the same keyring never opens as this one:
    /// [`build`](Self::build) refuses a mismatch.
    #[must_use]
    pub fn cookie(mut self, cookie: CookieSpec) -> Self {
        self.cookie = cookie;
        self
    }

    /// The origin unsafe requests must come from, such as
    /// `https://app.example`, when the browser sends no `Sec-Fetch-Site`
    /// but an `Origin`. By default `https://` and the request's own host
    /// (right unless a proxy rewrites `Host`), or `http://` for a loopback
    /// host (`127.0.0.1`, `localhost`, `[::1]`), where browsers treat plain
    /// http as secure.
    #[must_use]
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Turns CSRF enforcement off, for APIs that no browser calls with
    /// cookies (tokens in `Authorization` headers, say). On by default:
    /// keep it on for anything a browser uses, and exempt single routes
    /// with [`csrf_exempt`](Self::csrf_exempt) instead.
    #[must_use]
    pub fn without_csrf(mut self) -> Self {
        self.csrf.enforced = false;
        self
    }

    /// Exempts requests to `path` (compared exactly with the request's
    /// path, so `/webhook` does not exempt `/webhook/` or `/webhooks`) from
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
    /// still need the CSRF token. See
    /// [`OriginPolicy::trust_origin`](sealed_session::csrf::OriginPolicy::trust_origin).
    #[must_use]
    pub fn trust_origin(mut self, origin: impl Into<String>) -> Self {
        self.trusted.push(origin.into());
        self
    }

    /// Also accepts unsafe requests the browser marks `Sec-Fetch-Site:
    /// same-site` (sibling subdomains, a development server on another
    /// port); they still need the CSRF token. Off by default. See
    /// [`OriginPolicy::allow_same_site`](sealed_session::csrf::OriginPolicy::allow_same_site).
    #[must_use]
    pub fn allow_same_site(mut self) -> Self {
        self.csrf.policy = self.csrf.policy.allow_same_site();
        self
    }

    /// The header scripts send the CSRF token in; default [`CSRF_HEADER`]
    /// (`X-CSRF-Token`).
    #[must_use]
    pub fn csrf_header(mut self, name: HeaderName) -> Self {
        self.csrf.header = name;
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

    /// The largest URL-encoded form body read to find the `csrf_token`
    /// field; larger forms get `413`. Default [`DEFAULT_FORM_LIMIT`].
    #[must_use]
    pub fn form_limit(mut self, bytes: usize) -> Self {
        self.form_limit = bytes;
        self
    }

    /// The layer.
    ///
    /// # Errors
    /// [`LayerError::ReservedCookieName`] or [`LayerError::PurposeMismatch`]
    /// if the cookie's name ends like a derived one or is not the sealer's
    /// purpose, [`LayerError::Origin`] for a trusted origin that is not one, [`LayerError::PreSession`] if the pre-session or
    /// flash sealer cannot be built from the verifier's keyring, or
    /// [`LayerError::Cookie`] if their cookie names are not valid.
    pub fn build(self) -> Result<SessionLayer<S, T>, LayerError> {
        let sealer = self.verifier.sealer();
        let name = self.cookie.name();
        if let Some(suffix) = RESERVED_SUFFIXES.iter().find(|suffix| name.ends_with(*suffix)) {
            return Err(LayerError::ReservedCookieName { cookie: name.to_owned(), suffix });
        }
        if sealer.purpose() != self.cookie.name() {
            return Err(LayerError::PurposeMismatch {
                purpose: sealer.purpose().to_owned(),
                cookie: self.cookie.name().to_owned(),
            });
        }
        let pre_sealer = Sealer::builder(sealer.keyring().clone())
            .purpose(format!("{}-csrf", sealer.purpose()))
            .absolute_timeout(PRE_SESSION_TIMEOUT)
            .idle_timeout(PRE_SESSION_TIMEOUT)
            .clock(Arc::clone(sealer.clock()))
            .build()?;
        let pre_cookie = CookieSpec::named(format!("{}-csrf", self.cookie.name()))?.browser_session();
        let flash = FlashConfig {
            sealer: Sealer::builder(sealer.keyring().clone())
                .purpose(format!("{}-flash", sealer.purpose()))
                .absolute_timeout(FLASH_TIMEOUT)
                .idle_timeout(FLASH_TIMEOUT)
                .clock(Arc::clone(sealer.clock()))
                .build()?,
            cookie: CookieSpec::named(format!("{}-flash", self.cookie.name()))?.browser_session(),
        };
        let mut csrf = self.csrf;
        for origin in self.trusted {
            csrf.policy = csrf.policy.trust_origin(origin)?;
        }
        let config = Config {
            verifier: self.verifier,
            cookie: self.cookie,
            pre_sealer,
            pre_cookie,
            flash,
            origin: self.origin.map(|o| o.trim_end_matches('/').to_owned()),
            csrf,
            form_limit: self.form_limit,
            bearer: self.bearer,
        };
        Ok(SessionLayer { config: Arc::new(config), data: PhantomData })
    }
}

impl<I, S, T> Layer<I> for SessionLayer<S, T> {
    type Service = SessionService<I, S, T>;

    fn layer(&self, inner: I) -> Self::Service {
        SessionService::new(inner, Arc::clone(&self.config))
    }
}

/// The endings of the purposes a layer derives from its cookie's name
/// (pre-session, flash, remember-me): no session cookie may end so, or its
/// purpose would be another layer's derived one.
const RESERVED_SUFFIXES: [&str; 3] = ["-csrf", "-flash", "+remember"];

/// A [`SessionLayer`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayerError {
    /// The session cookie's name differs from the sealer's purpose. Both
    /// name the same thing (the purpose is bound into every token), and a
    /// difference would let a token sealed for one cookie open as another.
    #[error(
        "the session cookie is named {cookie:?} but the sealer's purpose is {purpose:?}: \
         build the sealer with .purpose({cookie:?}) or name the cookie {purpose:?}"
    )]
    PurposeMismatch {
        /// The sealer's purpose.
        purpose: String,
        /// The cookie's name.
        cookie: String,
    },
    /// The session cookie's name ends like the cookies and purposes a layer
    /// derives from its own (`-csrf`, `-flash`, `+remember`): another
    /// layer's pre-session or flash tokens could open as its sessions.
    #[error("the session cookie {cookie:?} ends with {suffix:?}, which is reserved for derived cookies: choose another name")]
    ReservedCookieName {
        /// The cookie's name.
        cookie: String,
        /// The reserved ending.
        suffix: &'static str,
    },
    /// An origin given to [`SessionLayerBuilder::trust_origin`] is not a
    /// `scheme://host[:port]` origin.
    #[error(transparent)]
    Origin(#[from] sealed_session::csrf::InvalidOrigin),
    /// The pre-session or flash sealer could not be built from the
    /// verifier's keyring.
    #[error("cannot build the pre-session or flash sealer: {0}")]
    PreSession(#[from] ConfigError),
    /// The pre-session or flash cookie (the session cookie's name with
    /// `-csrf` or `-flash` appended) is not a valid cookie.
    #[error("invalid pre-session or flash cookie: {0}")]
    Cookie(#[from] CookieError),
}
