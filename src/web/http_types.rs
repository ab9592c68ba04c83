//! The driver's views over the `http` crate's types (feature `http`), for
//! adapters of frameworks built on it (axum, hyper, tower).

use super::driver::{RequestView, ResponseHeaders};

impl RequestView for http::request::Parts {
    fn method(&self) -> &str {
        self.method.as_str()
    }

    fn path(&self) -> &str {
        self.uri.path()
    }

    fn authority(&self) -> Option<&str> {
        self.uri.authority().map(http::uri::Authority::as_str).or_else(|| self.header_text("host"))
    }

    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.get(name).map(http::HeaderValue::as_bytes)
    }

    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers.get_all(name).into_iter().map(http::HeaderValue::as_bytes)
    }
}

/// A value the driver hands over as a header value; one that is not (it
/// never happens: cookies and tokens are checked when made) is logged and
/// dropped.
fn header_value(name: &str, value: String) -> Option<http::HeaderValue> {
    http::HeaderValue::try_from(value)
        .inspect_err(|err| tracing::error!(error = %err, header = name, "not a header value"))
        .ok()
}

impl ResponseHeaders for http::HeaderMap {
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.get_all(name).into_iter().map(http::HeaderValue::as_bytes)
    }

    fn append(&mut self, name: &'static str, value: String) {
        if let Some(value) = header_value(name, value) {
            self.append(http::HeaderName::from_static(name), value);
        }
    }

    fn replace(&mut self, name: &'static str, value: String) {
        if let Some(value) = header_value(name, value) {
            self.insert(http::HeaderName::from_static(name), value);
        }
    }
}

impl super::driver::Answer {
    /// This answer as an `http` response (feature `http`).
    #[must_use]
    pub fn into_http(self) -> http::Response<String> {
        let (status, headers, body) = self.into_parts();
        let mut response = http::Response::new(body);
        *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::FORBIDDEN);
        for (name, value) in headers {
            ResponseHeaders::append(response.headers_mut(), name, value);
        }
        response
    }
}
