//! CSRF enforcement for unsafe requests: the browser's Fetch Metadata or
//! `Origin`, then the session-bound token from a header or a form.

use axum_core::body::Body;
use axum_core::response::{IntoResponse, Response};
use http::header::{CONTENT_TYPE, HOST, ORIGIN};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use sealed_session::csrf::CsrfError;
use sealed_session::{Opened, RevocationStore, Verified};

use crate::layer::Config;

/// Whether `host` (a `Host` header or URI authority) names the loopback
/// interface, where browsers treat plain `http` as a secure context.
fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next(),
        None => host.split(':').next(),
    };
    matches!(name, Some("127.0.0.1" | "localhost" | "::1"))
}

/// The CSRF checks of an unsafe request. Reading the token from a form
/// consumes the body, so the request comes back rebuilt.
pub(crate) async fn check_csrf<S: RevocationStore, T>(
    config: &Config<S>,
    request: Request<Body>,
    current: Option<&Verified<T>>,
    pre: Option<&Opened<()>>,
) -> Result<Request<Body>, RefusedRequest> {
    let headers = request.headers();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let origin = header(ORIGIN.as_str());
    let expected = match &config.origin {
        Some(origin) => origin.clone(),
        None => {
            let host =
                request.uri().authority().map(|a| a.as_str()).or_else(|| header(HOST.as_str())).unwrap_or("");
            // HTTPS, but for plain http on loopback (development).
            let http = is_loopback(host) && origin.is_some_and(|o| o.starts_with("http://"));
            format!("{}://{host}", if http { "http" } else { "https" })
        }
    };
    config.csrf.policy.check(request.method().as_str(), header("sec-fetch-site"), origin, &expected)?;
    // Nothing to bind a token to: refuse before reading any body.
    if current.is_none() && pre.is_none() {
        return Err(RefusedRequest::NoBinding);
    }
    let (token, request) = match header(config.csrf.header.as_str()) {
        Some(token) => (Some(token.to_owned()), request),
        None if is_form(request.headers()) => {
            form_token(request, &config.csrf.field, config.form_limit).await?
        }
        None => (None, request),
    };
    let token = token.unwrap_or_default();
    match (current, pre) {
        (Some(current), _) => config.verifier.sealer().verify_csrf(current.session(), &token)?,
        (None, Some(pre)) => config.pre_sealer.verify_csrf(pre.session(), &token)?,
        (None, None) => return Err(RefusedRequest::NoBinding),
    }
    Ok(request)
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// Reads a URL-encoded body (up to `limit` bytes) for its `field`, and
/// puts the body back.
async fn form_token(
    request: Request<Body>,
    field: &str,
    limit: usize,
) -> Result<(Option<String>, Request<Body>), RefusedRequest> {
    let (parts, body) = request.into_parts();
    let collected = Limited::new(body, limit).collect().await.map_err(|err| {
        // Ours, or one of an outer middleware's (tower-http's body limit),
        // wrapped in the body's own error.
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&*err);
        while let Some(err) = cause {
            if err.is::<LengthLimitError>() {
                return RefusedRequest::TooLarge;
            }
            cause = err.source();
        }
        RefusedRequest::Unreadable
    })?;
    let bytes = collected.to_bytes();
    let token =
        form_urlencoded::parse(&bytes).find(|(name, _)| name == field).map(|(_, value)| value.into_owned());
    Ok((token, Request::from_parts(parts, Body::from(bytes))))
}

/// Why the layer refused an unsafe request.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RefusedRequest {
    #[error(transparent)]
    Csrf(#[from] CsrfError),
    #[error("there is neither a session nor a pre-session to bind a CSRF token to (cookies blocked, or a form from before the pre-session)")]
    NoBinding,
    #[error("the form body is larger than the limit")]
    TooLarge,
    #[error("the form body could not be read")]
    Unreadable,
}

impl RefusedRequest {
    pub(crate) fn into_response(self) -> Response {
        match self {
            RefusedRequest::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response(),
            RefusedRequest::Unreadable => {
                (StatusCode::BAD_REQUEST, "unreadable request body").into_response()
            }
            _ => (StatusCode::FORBIDDEN, "CSRF check failed").into_response(),
        }
    }
}
