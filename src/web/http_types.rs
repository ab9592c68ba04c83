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

/// The header the driver names and the value it hands over; one that is
/// not a header (it never happens from the driver: its names are lower-case
/// constants, and cookies and tokens are checked when made; a caller of the
/// trait may pass anything) is logged and dropped, never a panic.
fn header(name: &str, value: String) -> Option<(http::HeaderName, http::HeaderValue)> {
    let name = http::HeaderName::from_bytes(name.as_bytes())
        .inspect_err(|err| tracing::error!(error = %err, header = name, "not a header name"))
        .ok()?;
    let value = http::HeaderValue::try_from(value)
        .inspect_err(|err| tracing::error!(error = %err, header = %name, "not a header value"))
        .ok()?;
    Some((name, value))
}

impl ResponseHeaders for http::HeaderMap {
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.get_all(name).into_iter().map(http::HeaderValue::as_bytes)
    }

    fn append(&mut self, name: &'static str, value: String) {
        if let Some((name, value)) = header(name, value) {
            self.append(name, value);
        }
    }

    fn replace(&mut self, name: &'static str, value: String) {
        if let Some((name, value)) = header(name, value) {
            self.insert(name, value);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_read_as_the_driver_expects() {
        let (parts, ()) = http::Request::post("https://app.example:8443/cart?x=1")
            .header("cookie", "a=1")
            .header("cookie", "b=2")
            .header("x-csrf-token", "t")
            .body(())
            .unwrap()
            .into_parts();
        assert_eq!(RequestView::method(&parts), "POST");
        assert_eq!(RequestView::path(&parts), "/cart");
        assert_eq!(parts.authority(), Some("app.example:8443"));
        assert_eq!(RequestView::header(&parts, "x-csrf-token"), Some(&b"t"[..]));
        assert_eq!(RequestView::header_values(&parts, "cookie").collect::<Vec<_>>(), [&b"a=1"[..], b"b=2"]);
        // Without an absolute URI, the authority is the Host header's.
        let (parts, ()) = http::Request::get("/").header("host", "h.example").body(()).unwrap().into_parts();
        assert_eq!(parts.authority(), Some("h.example"));
    }

    #[test]
    fn a_header_map_takes_appended_and_replaced_values() {
        let mut headers = http::HeaderMap::new();
        ResponseHeaders::append(&mut headers, "set-cookie", "a=1".to_owned());
        ResponseHeaders::append(&mut headers, "set-cookie", "b=2".to_owned());
        ResponseHeaders::append(&mut headers, "cache-control", "public".to_owned());
        ResponseHeaders::replace(&mut headers, "cache-control", "no-store".to_owned());
        // A value that is no header value is dropped, never sent; so is a
        // name that is none (the trait is public: no panic, as
        // `HeaderName::from_static` would, and any case is written).
        ResponseHeaders::append(&mut headers, "x-bad", "a\nb".to_owned());
        ResponseHeaders::append(&mut headers, "bad name", "3".to_owned());
        ResponseHeaders::append(&mut headers, "X-Any-Case", "4".to_owned());
        assert_eq!(headers.get("x-any-case").unwrap(), "4");
        assert_eq!(headers.len(), 4, "two cookies, cache-control and x-any-case: {headers:?}");
        assert_eq!(ResponseHeaders::header_values(&headers, "set-cookie").count(), 2);
        assert_eq!(
            ResponseHeaders::header_values(&headers, "cache-control").collect::<Vec<_>>(),
            [&b"no-store"[..]]
        );
        assert!(headers.get("x-bad").is_none());
    }

    #[test]
    fn an_answer_becomes_an_http_response() {
        let mut answer = super::super::driver::Answer::new(403, "no".to_owned());
        answer.push("set-cookie", "a=1".to_owned());
        answer.push("set-cookie", "b=2".to_owned());
        let response = answer.into_http();
        assert_eq!(response.status(), 403);
        assert_eq!(response.headers().get_all("set-cookie").iter().count(), 2);
        assert_eq!(response.body(), "no");
    }
}
