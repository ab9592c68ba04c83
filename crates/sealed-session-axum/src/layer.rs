//! The layer and its builder: the settings every request shares.

use std::marker::PhantomData;
use std::sync::Arc;

use http::HeaderName;
use sealed_session::web::{WebConfig, WebConfigBuilder};
use sealed_session::{CookieSpec, RevocationStore, Verifier};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tower_layer::Layer;

use crate::service::SessionService;

pub use sealed_session::web::{
    WebConfigError as LayerError, CSRF_FIELD, CSRF_HEADER, DEFAULT_FORM_LIMIT, PRE_SESSION_TIMEOUT,
    SESSION_TOKEN_HEADER,
};

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
    config: Arc<WebConfig<S>>,
    data: PhantomData<fn() -> T>,
}

impl<S, T> Clone for SessionLayer<S, T> {
    fn clone(&self) -> Self {
        Self { config: Arc::clone(&self.config), data: PhantomData }
    }
}

impl<S, T> std::fmt::Debug for SessionLayer<S, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLayer").field("config", &self.config).finish_non_exhaustive()
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

    pub(crate) fn config(&self) -> &WebConfig<S> {
        &self.config
    }

    /// A builder, to choose the cookie, the origin and the CSRF settings.
    pub fn builder(verifier: Verifier<S>) -> SessionLayerBuilder<S, T> {
        SessionLayerBuilder { config: WebConfig::builder(verifier), data: PhantomData }
    }
}

/// Configures a [`SessionLayer`].
pub struct SessionLayerBuilder<S, T> {
    config: WebConfigBuilder<S>,
    data: PhantomData<fn() -> T>,
}

impl<S, T> std::fmt::Debug for SessionLayerBuilder<S, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLayerBuilder").field("config", &self.config).finish_non_exhaustive()
    }
}

impl<S, T> SessionLayerBuilder<S, T>
where
    S: RevocationStore + 'static,
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// The session cookie, whose name must be the sealer's purpose; see
    /// [`WebConfigBuilder::cookie`].
    #[must_use]
    pub fn cookie(self, cookie: CookieSpec) -> Self {
        self.map(|c| c.cookie(cookie))
    }

    /// The origin unsafe requests must come from; see
    /// [`WebConfigBuilder::origin`].
    #[must_use]
    pub fn origin(self, origin: impl Into<String>) -> Self {
        self.map(|c| c.origin(origin))
    }

    /// Turns CSRF enforcement off; see [`WebConfigBuilder::without_csrf`].
    #[must_use]
    pub fn without_csrf(self) -> Self {
        self.map(WebConfigBuilder::without_csrf)
    }

    /// Exempts requests to `path` from the CSRF checks (webhooks, OpenID
    /// Connect `form_post`); see [`WebConfigBuilder::csrf_exempt`] for what
    /// an exempt route must then do itself.
    #[must_use]
    pub fn csrf_exempt(self, path: impl Into<String>) -> Self {
        self.map(|c| c.csrf_exempt(path))
    }

    /// Also accepts unsafe requests from `origin`, still with the CSRF
    /// token; see [`WebConfigBuilder::trust_origin`].
    #[must_use]
    pub fn trust_origin(self, origin: impl Into<String>) -> Self {
        self.map(|c| c.trust_origin(origin))
    }

    /// Also accepts unsafe requests marked `Sec-Fetch-Site: same-site`,
    /// still with the CSRF token; see [`WebConfigBuilder::allow_same_site`].
    #[must_use]
    pub fn allow_same_site(self) -> Self {
        self.map(WebConfigBuilder::allow_same_site)
    }

    /// The header scripts send the CSRF token in; default [`CSRF_HEADER`]
    /// (`X-CSRF-Token`).
    #[must_use]
    pub fn csrf_header(self, name: HeaderName) -> Self {
        self.map(|c| c.csrf_header(name.as_str()))
    }

    /// The form field HTML forms send the CSRF token in; default
    /// [`CSRF_FIELD`] (`csrf_token`).
    #[must_use]
    pub fn csrf_field(self, name: impl Into<String>) -> Self {
        self.map(|c| c.csrf_field(name))
    }

    /// Also reads the session token from `Authorization: Bearer <token>`,
    /// for clients that are not browsers, with no cookies and no CSRF
    /// token; new tokens go out in [`SESSION_TOKEN_HEADER`]. See
    /// [`WebConfigBuilder::bearer_tokens`].
    #[must_use]
    pub fn bearer_tokens(self) -> Self {
        self.map(WebConfigBuilder::bearer_tokens)
    }

    /// The largest URL-encoded form body read to find the CSRF field;
    /// larger forms get `413`. Default [`DEFAULT_FORM_LIMIT`].
    #[must_use]
    pub fn form_limit(self, bytes: usize) -> Self {
        self.map(|c| c.form_limit(bytes))
    }

    /// The layer.
    ///
    /// # Errors
    /// [`LayerError`], as [`WebConfigBuilder::build`].
    pub fn build(self) -> Result<SessionLayer<S, T>, LayerError> {
        Ok(SessionLayer { config: Arc::new(self.config.build()?), data: PhantomData })
    }

    fn map(self, change: impl FnOnce(WebConfigBuilder<S>) -> WebConfigBuilder<S>) -> Self {
        Self { config: change(self.config), data: PhantomData }
    }
}

impl<I, S, T> Layer<I> for SessionLayer<S, T> {
    type Service = SessionService<I, S, T>;

    fn layer(&self, inner: I) -> Self::Service {
        SessionService::new(inner, Arc::clone(&self.config))
    }
}
