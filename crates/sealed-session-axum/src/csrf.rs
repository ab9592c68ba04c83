//! Reading a URL-encoded body for the CSRF token, and putting it back.

use axum_core::body::Body;
use http::Request;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use sealed_session::web::{CsrfRefusal, SessionHandle};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The rest of the CSRF checks of a request whose token is in its form:
/// reads up to the handle's form limit, checks the token, and gives the
/// request back with its whole body.
pub(crate) async fn check_form<T>(
    handle: &SessionHandle<T>,
    request: Request<Body>,
) -> Result<Request<Body>, CsrfRefusal>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    let (parts, body) = request.into_parts();
    let collected = Limited::new(body, handle.form_limit()).collect().await.map_err(|err| {
        // Ours, or one of an outer middleware's (tower-http's body limit),
        // wrapped in the body's own error.
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&*err);
        while let Some(err) = cause {
            if err.is::<LengthLimitError>() {
                tracing::info!("CSRF check refused the request: the form body is larger than the limit");
                return CsrfRefusal::TooLarge;
            }
            cause = err.source();
        }
        tracing::info!(error = %err, "the form body could not be read");
        CsrfRefusal::Unreadable
    })?;
    let bytes = collected.to_bytes();
    handle.check_csrf_form(&bytes)?;
    Ok(Request::from_parts(parts, Body::from(bytes)))
}
