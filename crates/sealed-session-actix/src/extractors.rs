//! What handlers see: the [`Sessions`] handle and the [`Session`],
//! [`SignedIn`] and [`Flashes`] extractors.

use std::future::{ready, Ready};
use std::ops::Deref;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest};
use sealed_session::web::{Flash, FlashHandle, Level, LoginOptions, SessionHandle};
use sealed_session::{Session as CoreSession, Verified};
use serde::de::DeserializeOwned;
use serde::Serialize;
use time::OffsetDateTime;

use crate::error::SessionError;

/// The session handle of one request: log in, change, renew and log out.
///
/// Extract it in any handler behind a
/// [`SessionMiddleware`](crate::SessionMiddleware) with the same data type
/// `T`; the middleware writes the cookies the calls decide on when the
/// response leaves. Each call that changes the session seals it at once, so
/// an error (a session too large for a cookie, a store that cannot be
/// reached) reaches the handler, not the client. The calls are those of the
/// core's [`SessionHandle`], which every integration shares.
pub struct Sessions<T> {
    handle: SessionHandle<T>,
}

impl<T> Clone for Sessions<T> {
    fn clone(&self) -> Self {
        Self { handle: self.handle.clone() }
    }
}

impl<T> std::fmt::Debug for Sessions<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Sessions").field(&self.handle).finish()
    }
}

impl<T> Sessions<T>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    pub(crate) fn new(handle: SessionHandle<T>) -> Self {
        Self { handle }
    }

    /// The core handle, shared by every integration.
    #[must_use]
    pub fn handle(&self) -> &SessionHandle<T> {
        &self.handle
    }

    fn session(&self, opened: Arc<Verified<T>>) -> Session<T> {
        Session { opened, sessions: self.clone() }
    }

    /// The request's session, if it has one (as changed by this handler).
    #[must_use]
    pub fn current(&self) -> Option<Session<T>> {
        self.handle.current().map(|opened| self.session(opened))
    }

    /// The request's session if it is signed in (has a user).
    #[must_use]
    pub fn signed_in(&self) -> Option<SignedIn<T>> {
        self.current().filter(|session| session.user_id().is_some()).map(SignedIn)
    }

    /// Starts a session for `user_id`, always with a new session ID; see
    /// [`SessionHandle::login`].
    ///
    /// # Errors
    /// As [`SessionHandle::login`].
    pub async fn login(&self, user_id: &str, data: T) -> Result<Session<T>, SessionError> {
        Ok(self.session(self.handle.login(user_id, data).await?))
    }

    /// [`login`](Self::login), with the new session's data made from the
    /// session the request had, if any; see [`SessionHandle::login_with`].
    ///
    /// # Errors
    /// As [`SessionHandle::login_with`].
    pub async fn login_with(
        &self,
        user_id: &str,
        carry: impl FnOnce(Option<CoreSession<T>>) -> T,
    ) -> Result<Session<T>, SessionError> {
        Ok(self.session(self.handle.login_with(user_id, carry).await?))
    }

    /// [`login_with`](Self::login_with), with [`LoginOptions`]: "remember
    /// me", say; see [`SessionHandle::login_with_options`].
    ///
    /// # Errors
    /// As [`SessionHandle::login_with_options`].
    pub async fn login_with_options(
        &self,
        user_id: &str,
        options: LoginOptions,
        carry: impl FnOnce(Option<CoreSession<T>>) -> T,
    ) -> Result<Session<T>, SessionError> {
        Ok(self.session(self.handle.login_with_options(user_id, options, carry).await?))
    }

    /// Changes the session's data, first starting a session with no user
    /// from `default()` if the request has none; see
    /// [`SessionHandle::update_or_insert`].
    ///
    /// # Errors
    /// As [`SessionHandle::update_or_insert`].
    pub async fn update_or_insert<R>(
        &self,
        default: impl FnOnce() -> T,
        change: impl FnOnce(&mut T) -> R,
    ) -> Result<R, SessionError> {
        Ok(self.handle.update_or_insert(default, change).await?)
    }

    /// Changes the session's data and seals it again; see
    /// [`SessionHandle::update`].
    ///
    /// # Errors
    /// As [`SessionHandle::update`].
    pub fn update<R>(&self, change: impl FnOnce(&mut T) -> R) -> Result<R, SessionError> {
        Ok(self.handle.update(change)?)
    }

    /// Gives the session a new ID, logging the old one out on every server;
    /// see [`SessionHandle::renew_id`].
    ///
    /// # Errors
    /// As [`SessionHandle::renew_id`].
    pub async fn renew_id(&self) -> Result<(), SessionError> {
        Ok(self.handle.renew_id().await?)
    }

    /// Logs this session out on every server and removes its cookie; see
    /// [`SessionHandle::logout`].
    ///
    /// # Errors
    /// As [`SessionHandle::logout`].
    pub async fn logout(&self) -> Result<(), SessionError> {
        Ok(self.handle.logout().await?)
    }

    /// Logs the session's user out of every session they have; see
    /// [`SessionHandle::logout_everywhere`].
    ///
    /// # Errors
    /// As [`SessionHandle::logout_everywhere`].
    pub async fn logout_everywhere(&self) -> Result<u64, SessionError> {
        Ok(self.handle.logout_everywhere().await?)
    }

    /// Adds a flash message for the next page this browser loads, which
    /// reads it with the [`Flashes`] extractor or
    /// [`take_flashes`](Self::take_flashes); see [`SessionHandle::flash`].
    ///
    /// # Errors
    /// As [`SessionHandle::flash`].
    pub fn flash(&self, level: Level, message: impl Into<String>) -> Result<(), SessionError> {
        Ok(self.handle.flash(level, message)?)
    }

    /// The flash messages the request brought (and any added since), which
    /// are then gone: the response removes their cookie.
    #[must_use]
    pub fn take_flashes(&self) -> Vec<Flash> {
        self.handle.take_flashes()
    }

    /// The CSRF token to put in this page's forms (field `csrf_token`) or
    /// scripts (header `X-CSRF-Token`), bound to the session or, without
    /// one, to a pre-session; see [`SessionHandle::csrf_token`].
    ///
    /// # Errors
    /// As [`SessionHandle::csrf_token`].
    pub fn csrf_token(&self) -> Result<String, SessionError> {
        Ok(self.handle.csrf_token()?)
    }
}

fn sessions_from<T: 'static>(request: &HttpRequest) -> Result<Sessions<T>, SessionError> {
    request.extensions().get::<Sessions<T>>().cloned().ok_or(SessionError::MissingMiddleware)
}

impl<T: 'static> FromRequest for Sessions<T> {
    type Error = SessionError;
    type Future = Ready<Result<Self, SessionError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(sessions_from(request))
    }
}

/// A request's session, as an extractor: handlers that take it run only for
/// requests with a valid session; the others get `401` ("no session"),
/// whatever was wrong with their cookie. Take `Option<Session<T>>` to run
/// either way (actix-web's `Option` extractor turns every refusal into
/// `None`, a missing middleware included).
///
/// The session may be anonymous (no user) once the application starts
/// anonymous sessions ([`Sessions::update_or_insert`]): take [`SignedIn<T>`]
/// in handlers that need a signed-in user.
///
/// It is a snapshot of the session when extracted, and dereferences to the
/// core [`sealed_session::Session`]: its ID, user, epoch, times and data.
/// Change it through [`Sessions`].
pub struct Session<T> {
    opened: Arc<Verified<T>>,
    sessions: Sessions<T>,
}

impl<T> Clone for Session<T> {
    fn clone(&self) -> Self {
        Self { opened: Arc::clone(&self.opened), sessions: self.sessions.clone() }
    }
}

impl<T> std::fmt::Debug for Session<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Session").field(&self.opened).finish()
    }
}

impl<T> Deref for Session<T> {
    type Target = CoreSession<T>;

    fn deref(&self) -> &CoreSession<T> {
        self.opened.session()
    }
}

impl<T> Session<T>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// The ID of the key the session's cookie is sealed under.
    #[must_use]
    pub fn key_id(&self) -> u32 {
        self.opened.key_id()
    }

    /// When the session ends unless the user is active before then.
    #[must_use]
    pub fn idle_expires_at(&self) -> OffsetDateTime {
        self.opened.idle_expires_at()
    }

    /// The session's CSRF token.
    #[must_use]
    pub fn csrf_token(&self) -> String {
        self.sessions.handle.sealer().csrf_token(self.opened.session())
    }

    /// The handle, to change or end the session.
    #[must_use]
    pub fn sessions(&self) -> &Sessions<T> {
        &self.sessions
    }
}

impl<T> FromRequest for Session<T>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    type Error = SessionError;
    type Future = Ready<Result<Self, SessionError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(sessions_from::<T>(request).and_then(|s| s.current().ok_or(SessionError::NoSession)))
    }
}

/// A request's signed-in session, as an extractor: like [`Session<T>`], but
/// an anonymous session (one with no user) is refused too, with `401`.
/// [`SignedIn::user_id`] is the user.
pub struct SignedIn<T>(Session<T>);

impl<T> SignedIn<T> {
    /// The signed-in user.
    #[must_use]
    pub fn user_id(&self) -> &str {
        // Only a session with a user is ever wrapped.
        self.0.user_id().unwrap_or_default()
    }

    /// The session.
    #[must_use]
    pub fn into_session(self) -> Session<T> {
        self.0
    }
}

impl<T> Deref for SignedIn<T> {
    type Target = Session<T>;

    fn deref(&self) -> &Session<T> {
        &self.0
    }
}

impl<T> std::fmt::Debug for SignedIn<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SignedIn").field(&self.0).finish()
    }
}

impl<T> FromRequest for SignedIn<T>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    type Error = SessionError;
    type Future = Ready<Result<Self, SessionError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(sessions_from::<T>(request).and_then(|s| s.signed_in().ok_or(SessionError::NoSession)))
    }
}

/// The flash messages the request brought, as an extractor: taking them
/// marks them read, so that the response removes them and the next page
/// does not show them again. Messages the handler adds with
/// [`Sessions::flash`] go out with the response.
///
/// Empty when there were none, or when their cookie did not open (tampered,
/// expired after [`FLASH_TIMEOUT`](crate::FLASH_TIMEOUT), or sealed under
/// another purpose).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flashes(pub Vec<Flash>);

impl FromRequest for Flashes {
    type Error = SessionError;
    type Future = Ready<Result<Self, SessionError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let handle = request.extensions().get::<FlashHandle>().cloned();
        ready(handle.map(|h| Flashes(h.take())).ok_or(SessionError::MissingMiddleware))
    }
}

impl IntoIterator for Flashes {
    type Item = Flash;
    type IntoIter = std::vec::IntoIter<Flash>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}
