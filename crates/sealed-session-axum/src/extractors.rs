//! The extractors: the [`Sessions`], [`Session`], [`SignedIn`] and
//! [`Flashes`] the core's [`adapter_types!`](sealed_session::adapter_types)
//! defines, taken from the request's parts; and [`SessionError`] as a
//! response.

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use http::StatusCode;
use sealed_session::web::{SessionHandle, SessionValue};

use crate::layer::{self, Flashes, Session, SessionError, Sessions, SignedIn};

fn handle(parts: &Parts) -> Option<&SessionHandle> {
    parts.extensions.get::<SessionHandle>()
}

impl<T: SessionValue, S: Send + Sync> FromRequestParts<S> for Sessions<T> {
    type Rejection = SessionError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        layer::sessions(handle(parts))
    }
}

impl<T: SessionValue, S: Send + Sync> FromRequestParts<S> for Session<T> {
    type Rejection = SessionError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        layer::required(handle(parts))
    }
}

impl<T: SessionValue, S: Send + Sync> OptionalFromRequestParts<S> for Session<T> {
    type Rejection = SessionError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        layer::session(handle(parts))
    }
}

impl<T: SessionValue, S: Send + Sync> FromRequestParts<S> for SignedIn<T> {
    type Rejection = SessionError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        layer::signed_in(handle(parts))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Flashes {
    type Rejection = SessionError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        layer::flashes(handle(parts))
    }
}

impl SessionError {
    /// The status code the response carries.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for SessionError {
    fn into_response(self) -> Response {
        (self.status(), self.0.body()).into_response()
    }
}
