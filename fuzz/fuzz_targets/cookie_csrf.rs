//! Oracle: cookie header parsing and CSRF checks never panic; a cookie value
//! read back is exactly a piece of the header; no guessed CSRF token verifies.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use sealed_session::{csrf, CookieSpec, Keyring, Sealer, Session};

static SEALER: LazyLock<Sealer> =
    LazyLock::new(|| Sealer::builder(Keyring::generate().unwrap()).build().unwrap());
static SESSION: LazyLock<Session<()>> = LazyLock::new(|| Session::new(()));

fuzz_target!(|input: (String, String, Option<String>, Option<String>)| {
    let (header, token, fetch_site, origin) = input;
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
    if !csrf::is_unsafe_method(&token) {
        assert!(result.is_ok(), "a safe method was refused");
    }
});
