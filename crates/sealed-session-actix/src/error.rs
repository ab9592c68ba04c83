//! What can go wrong in a handler's session calls.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use sealed_session::web::HandleError;
use sealed_session::{LoginError, SealError, StoreError};

/// A session call from a handler failed.
///
/// As a response it is `401` for [`SessionError::NoSession`], `503` when the
/// revocation store could not be reached or the session cookie is sealed
/// under a key this server does not have, and `500` otherwise; the body
/// never says more than that, and the cause is logged with `tracing`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The request has no session (none was sent, or the one sent was
    /// expired, revoked, tampered with or sealed under an unknown key: the
    /// reason is in the server's log, never in the response).
    #[error("no session: sign in first")]
    NoSession,
    /// The handler asked for a session, but no
    /// [`SessionMiddleware`](crate::SessionMiddleware) with this session
    /// data type wraps the route.
    #[error(
        "no session middleware for this data type: wrap the app in SessionMiddleware<_, T> with the same T as \
         the handler's extractor"
    )]
    MissingMiddleware,
    /// The request's session cookie is sealed under a key this server does
    /// not have yet (a key rollout in progress): it is kept, and not
    /// replaced with a new session. Answered with `503`, so that the client
    /// retries (on a server that has the key).
    #[error(
        "the session cookie is sealed under a key this server does not have; it is kept and not replaced: \
         deploy the same keyring to every server"
    )]
    UnreadableSession,
    /// The revocation store did not record a logout; nothing changed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A session could not be started or given a new ID (the store could not
    /// be reached, the clocks disagree, or no random ID could be drawn).
    #[error(transparent)]
    Login(#[from] LoginError),
    /// The session could not be sealed: [`SealError::TooLarge`] when it does
    /// not fit in a cookie.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// Another failure of the core's session handle.
    #[error(transparent)]
    Handle(HandleError),
}

impl From<HandleError> for SessionError {
    fn from(err: HandleError) -> Self {
        match err {
            HandleError::NoSession => SessionError::NoSession,
            HandleError::UnreadableSession => SessionError::UnreadableSession,
            HandleError::Store(err) => SessionError::Store(err),
            HandleError::Login(err) => SessionError::Login(err),
            HandleError::Seal(err) => SessionError::Seal(err),
            // A variant added to the core later: a server-side failure.
            other => SessionError::Handle(other),
        }
    }
}

impl ResponseError for SessionError {
    fn status_code(&self) -> StatusCode {
        match self {
            SessionError::NoSession => StatusCode::UNAUTHORIZED,
            SessionError::Store(_)
            | SessionError::Login(LoginError::Store(_))
            | SessionError::UnreadableSession => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let body = match status {
            StatusCode::UNAUTHORIZED => "no session",
            StatusCode::SERVICE_UNAVAILABLE if matches!(self, SessionError::UnreadableSession) => {
                tracing::warn!(error = %self, "session cookie kept, not replaced");
                "session unavailable on this server, try again"
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                tracing::warn!(error = %self, "session store unavailable");
                "session store unavailable, try again"
            }
            _ => {
                tracing::error!(error = %self, "session call failed");
                "internal error"
            }
        };
        HttpResponse::build(status).content_type("text/plain; charset=utf-8").body(body)
    }
}
