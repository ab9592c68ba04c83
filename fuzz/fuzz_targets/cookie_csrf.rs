//! Oracle: cookie header parsing and CSRF checks never panic; a cookie value
//! read back is exactly a piece of the header; a `__Host-` cookie read from
//! several byte headers is its one valid value there, or none if several
//! arrive; no guessed CSRF token verifies; an unsafe request a browser
//! marks cross-site, or one with no `Sec-Fetch-Site` from an origin that
//! does not name our host, is refused.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use sealed_session::{csrf, CookieSpec, Keyring, Sealer, Session};

static SEALER: LazyLock<Sealer> =
    LazyLock::new(|| Sealer::builder(Keyring::generate().unwrap()).build().unwrap());
static SESSION: LazyLock<Session<()>> = LazyLock::new(|| Session::new(()));

/// Whether `value` is the value (its quotes aside) of a pair named exactly
/// `name` in one of `headers`, split as browsers join cookies.
fn is_value_of(headers: &[Vec<u8>], name: &[u8], value: &str) -> bool {
    headers.iter().flat_map(|header| header.split(|b| *b == b';')).any(|pair| {
        // Only space and tab around a pair, as the parser trims.
        let blank = |b: &u8| *b == b' ' || *b == b'\t';
        let start = pair.iter().position(|b| !blank(b)).unwrap_or(pair.len());
        let end = pair.iter().rposition(|b| !blank(b)).map_or(start, |i| i + 1);
        let pair = pair.get(start..end).unwrap_or_default();
        pair.strip_prefix(name).and_then(|rest| rest.strip_prefix(b"=")).is_some_and(|v| {
            let v = v.strip_prefix(b"\"").and_then(|v| v.strip_suffix(b"\"")).unwrap_or(v);
            v == value.as_bytes()
        })
    })
}

/// The values (quotes aside) of the pairs named exactly `name` in
/// `headers` that are cookie values (RFC 6265's cookie-octets, not empty):
/// the ones a parser must find.
fn valid_values<'h>(headers: &'h [Vec<u8>], name: &[u8]) -> Vec<&'h [u8]> {
    let octet = |b: &u8| matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E);
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    headers
        .iter()
        .flat_map(|header| header.split(|b| *b == b';'))
        .filter_map(|pair| {
            let start = pair.iter().position(|b| !blank(b)).unwrap_or(pair.len());
            let end = pair.iter().rposition(|b| !blank(b)).map_or(start, |i| i + 1);
            let v = pair.get(start..end)?.strip_prefix(name)?.strip_prefix(b"=")?;
            let v = v.strip_prefix(b"\"").and_then(|v| v.strip_suffix(b"\"")).unwrap_or(v);
            (!v.is_empty() && v.iter().all(octet)).then_some(v)
        })
        .collect()
}

/// Names a pair may have: ours, near misses, another.
const NAMES: [&[u8]; 8] = [
    b"__Host-session",
    b"__host-session",
    b"__Host-sessio",
    b" __Host-session",
    b"\t__Host-session",
    b"\n__Host-session",
    b"\x0c__Host-session",
    b"x",
];

type Pairs = Vec<Vec<(u8, Vec<u8>)>>;

fuzz_target!(|input: (String, String, Option<String>, Option<String>, Pairs)| {
    let (header, token, fetch_site, origin, pairs) = input;
    // Headers as bytes, several of them (a neighbour's Latin-1, a second
    // Cookie header): a `__Host-` cookie is one value or none, and what is
    // read is a value of exactly our name.
    let raw_headers: Vec<Vec<u8>> = (pairs.iter().take(4))
        .map(|header| {
            let pairs = header
                .iter()
                .take(8)
                .map(|(name, value)| [NAMES[usize::from(*name) % NAMES.len()], b"=", value].concat());
            pairs.collect::<Vec<_>>().join(&b"; "[..])
        })
        .collect();
    let host = CookieSpec::default().values_in(raw_headers.iter().map(Vec::as_slice)).collect::<Vec<_>>();
    assert!(host.len() <= 1, "{host:?}");
    // And what is there is found: the one valid value, or none when
    // several arrive (an injected duplicate).
    match valid_values(&raw_headers, b"__Host-session").as_slice() {
        [one] => assert_eq!(host.iter().map(|v| v.as_bytes()).collect::<Vec<_>>(), [*one], "{raw_headers:?}"),
        _ => assert!(host.is_empty(), "{host:?} from {raw_headers:?}"),
    }
    for value in &host {
        assert!(is_value_of(&raw_headers, b"__Host-session", value), "{value:?} in {raw_headers:?}");
    }
    let spec = CookieSpec::default();
    let values: Vec<&str> = spec.values(&header).collect();
    assert!(values.len() <= 4);
    // Every value read is the value of a pair with exactly our name.
    let pairs: Vec<&str> = header.split(';').map(str::trim).collect();
    for value in &values {
        assert!(
            pairs.iter().any(|p| p
                .split_once('=')
                .is_some_and(|(n, v)| n == "__Host-session" && v.trim_matches('"') == *value)),
            "{value:?} is not the value of a __Host-session pair"
        );
    }
    assert!(SEALER.verify_csrf(&SESSION, &token).is_err(), "a guessed CSRF token verified");
    // An unsafe request that the browser marks as cross-site is always refused.
    let result = csrf::check_origin(&token, fetch_site.as_deref(), origin.as_deref(), "https://app.example");
    let cross_site = fetch_site.as_deref().is_some_and(|s| !matches!(s.trim(), "same-origin" | "none"));
    if csrf::is_unsafe_method(&token) && cross_site {
        assert!(result.is_err(), "a cross-site unsafe request passed");
    }
    // Without `Sec-Fetch-Site` the `Origin` decides: one that does not even
    // name our host cannot be ours, whatever its case, port or slash.
    let foreign = origin.as_deref().is_some_and(|o| !o.to_ascii_lowercase().contains("app.example"));
    if csrf::is_unsafe_method(&token) && fetch_site.is_none() && foreign {
        assert!(result.is_err(), "an unsafe request from a foreign origin passed: {origin:?}");
    }
    if !csrf::is_unsafe_method(&token) {
        assert!(result.is_ok(), "a safe method was refused");
    }
});
