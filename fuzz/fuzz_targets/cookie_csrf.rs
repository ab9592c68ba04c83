//! Oracle: cookie header parsing and CSRF checks never panic; a cookie value
//! read back is exactly a piece of the header; no guessed CSRF token verifies.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use sealed_session::{csrf, CookieSpec, Keyring, Sealer, Session};

static SEALER: LazyLock<Sealer> = LazyLock::new(|| Sealer::builder(Keyring::generate().unwrap()).build().unwrap());
static SESSION: LazyLock<Session<()>> = LazyLock::new(|| Session::new(()));

fuzz_target!(|input: (String, String, Option<String>, Option<String>)| {
    let (header, token, fetch_site, origin) = input;
    let spec = CookieSpec::default();
    let values: Vec<&str> = spec.values(&header).collect();
    assert!(values.len() <= 4);
    for value in values {
        assert!(header.contains(value), "a value that is not in the header");
        if let Ok(set) = spec.set_cookie(value, Some(60)) {
            assert!(set.starts_with(&format!("__Host-session={value}; ")));
        }
    }
    assert!(SEALER.verify_csrf(&SESSION, &token).is_err(), "a guessed CSRF token verified");
    let _ = csrf::check_origin(&token, fetch_site.as_deref(), origin.as_deref(), "https://app.example");
});
