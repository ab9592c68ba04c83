//! The [`Flashes`] extractor: the flash messages a request brought.
//!
//! Flash messages travel in a small sealed cookie of their own (the session
//! cookie's name with `-flash` appended, sealed under a purpose of its own),
//! so that they work before login and survive logout ("Signed out"); see
//! [`sealed_session::web::Flash`].

use axum_core::extract::FromRequestParts;
use http::request::Parts;
use sealed_session::web::{Flash, FlashHandle};

use crate::error::SessionError;

/// The flash messages the request brought, as an extractor: taking them
/// marks them read, so that the response removes them and the next page
/// does not show them again. Messages the handler adds with
/// [`Sessions::flash`](crate::Sessions::flash) go out with the response.
///
/// Empty when there were none, or when their cookie did not open (tampered,
/// expired after [`FLASH_TIMEOUT`](crate::FLASH_TIMEOUT), or sealed under
/// another purpose).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flashes(pub Vec<Flash>);

impl<S: Send + Sync> FromRequestParts<S> for Flashes {
    type Rejection = SessionError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let handle = parts.extensions.get::<FlashHandle>().ok_or(SessionError::MissingLayer)?;
        Ok(Flashes(handle.take()))
    }
}

impl IntoIterator for Flashes {
    type Item = Flash;
    type IntoIter = std::vec::IntoIter<Flash>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}
