//! The extractors: the [`Sessions`], [`Session`], [`SignedIn`] and
//! [`Flashes`] the core's [`adapter_types!`](sealed_session::adapter_types)
//! defines, taken from the request's extensions; and [`SessionError`] as a
//! response.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, HttpResponse, ResponseError};
use sealed_session::web::{SessionHandle, SessionValue};

use crate::middleware::{self, Flashes, Session, SessionError, Sessions, SignedIn};

/// What `extract` makes of the request's session handle, ready.
fn from<R>(request: &HttpRequest, extract: impl FnOnce(Option<&SessionHandle>) -> R) -> Ready<R> {
    ready(extract(request.extensions().get::<SessionHandle>()))
}

impl<T: SessionValue> FromRequest for Sessions<T> {
    type Error = SessionError;
    type Future = Ready<Result<Self, SessionError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        from(request, middleware::sessions)
    }
}

impl<T: SessionValue> FromRequest for Session<T> {
    type Error = SessionError;
    type Future = Ready<Result<Self, SessionError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        from(request, middleware::required)
    }
}

impl<T: SessionValue> FromRequest for SignedIn<T> {
    type Error = SessionError;
    type Future = Ready<Result<Self, SessionError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        from(request, middleware::signed_in)
    }
}

impl FromRequest for Flashes {
    type Error = SessionError;
    type Future = Ready<Result<Self, SessionError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        from(request, middleware::flashes)
    }
}

impl ResponseError for SessionError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).content_type("text/plain; charset=utf-8").body(self.0.body())
    }
}
