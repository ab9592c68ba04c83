//! Cookie attributes and size, reading cookies from a request, CSRF tokens
//! and the Fetch Metadata / Origin check.
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use sealed_session::csrf::{self, CsrfError};
use sealed_session::{
    CookieError, CookieSpec, KeySpec, KeyState, Keyring, ManualClock, MasterKey, SameSite, SealError, Sealer,
    Session, SharedKeyring, MAX_COOKIE_LEN,
};

fn keyring(specs: &[(u32, KeyState)]) -> Keyring {
    Keyring::new(
        specs
            .iter()
            .map(|&(id, state)| KeySpec::new(id, state, MasterKey::from_slice(&[id as u8; 32]).unwrap())),
    )
    .unwrap()
}

#[test]
fn the_default_cookie_is_host_prefixed_secure_httponly_lax() {
    let spec = CookieSpec::default();
    assert_eq!(spec.name(), "__Host-session");
    assert_eq!(
        spec.set_cookie("abc", Some(42)).unwrap(),
        "__Host-session=abc; Path=/; Max-Age=42; Secure; HttpOnly; SameSite=Lax"
    );
    assert_eq!(spec.removal(), "__Host-session=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax");
    let browser_session = spec.clone().browser_session();
    assert_eq!(
        browser_session.set_cookie("abc", Some(42)).unwrap(),
        "__Host-session=abc; Path=/; Secure; HttpOnly; SameSite=Lax"
    );
    // A browser-session spec still removes a persistent cookie (a
    // remembered session's) at once.
    assert_eq!(browser_session.removal(), spec.removal());
}

#[test]
fn http_only_can_be_turned_off_for_a_cookie_scripts_must_read() {
    let spec = CookieSpec::default().http_only(false).unwrap();
    assert_eq!(spec.set_cookie("abc", None).unwrap(), "__Host-session=abc; Path=/; Secure; SameSite=Lax");
    assert_eq!(
        spec.http_only(true).unwrap().set_cookie("abc", None).unwrap(),
        "__Host-session=abc; Path=/; Secure; HttpOnly; SameSite=Lax"
    );
}

#[test]
fn invalid_combinations_are_errors_not_silent_fixes() {
    let host = CookieSpec::default();
    assert_eq!(host.clone().domain("example.com").unwrap_err(), CookieError::HostPrefix);
    assert_eq!(host.clone().path("/app").unwrap_err(), CookieError::HostPrefix);
    assert_eq!(host.clone().secure(false).unwrap_err(), CookieError::HostPrefix);
    let secure = CookieSpec::named("__Secure-id").unwrap();
    assert_eq!(secure.clone().secure(false).unwrap_err(), CookieError::SecurePrefix);
    // RFC 6265bis browsers match the prefixes in any case; older ones only
    // `__Host-` and `__Secure-` as spelled, so no other spelling is taken.
    for name in ["__SECURE-id", "__secure-id", "__host-id", "__HOST-sid", "__HoSt-Http-id"] {
        assert_eq!(CookieSpec::named(name).unwrap_err(), CookieError::PrefixCase(name.into()), "{name}");
    }
    assert!(CookieSpec::named("__Hosting").is_ok(), "no prefix: no rule");
    // `__Http-` and `__Host-Http-` cookies must be HttpOnly and Secure, in
    // any case: browsers drop them otherwise.
    for name in ["__Http-id", "__HTTP-id", "__Host-Http-id", "__Host-http-id"] {
        let spec = CookieSpec::named(name).unwrap();
        assert_eq!(spec.clone().http_only(false).unwrap_err(), CookieError::HttpPrefix, "{name}");
        assert!(spec.clone().http_only(true).is_ok(), "{name}");
    }
    let http = CookieSpec::named("__Http-id").unwrap();
    assert_eq!(http.clone().secure(false).unwrap_err(), CookieError::HttpPrefix);
    assert!(http.path("/app").unwrap().domain("example.com").is_ok(), "no host rules");
    let host_http = CookieSpec::named("__Host-Http-id").unwrap();
    assert_eq!(host_http.clone().secure(false).unwrap_err(), CookieError::HostPrefix);
    assert_eq!(host_http.path("/app").unwrap_err(), CookieError::HostPrefix);
    // Other names that merely contain the word are not prefixed.
    assert!(CookieSpec::named("__Httpx").unwrap().http_only(false).is_ok());
    let plain = CookieSpec::named("sid").unwrap();
    assert_eq!(
        plain.clone().secure(false).unwrap().same_site(SameSite::None).unwrap_err(),
        CookieError::SameSiteNoneInsecure
    );
    assert!(plain.clone().same_site(SameSite::None).is_ok(), "None with Secure is allowed");
    for bad in ["", "a b", "a;b", "é", "a=b"] {
        assert!(matches!(CookieSpec::named(bad), Err(CookieError::InvalidName(_))), "{bad:?}");
    }
    assert!(matches!(plain.clone().path("no-slash"), Err(CookieError::InvalidAttribute("path", _))));
    assert!(matches!(plain.clone().path("/a;b"), Err(CookieError::InvalidAttribute("path", _))));
    assert!(matches!(plain.domain("a;b"), Err(CookieError::InvalidAttribute("domain", _))));
    // A spec that is allowed says everything it does.
    let dev = CookieSpec::named("sid").unwrap().secure(false).unwrap().path("/app").unwrap();
    assert_eq!(dev.set_cookie("v", None).unwrap(), "sid=v; Path=/app; HttpOnly; SameSite=Lax");
}

#[test]
fn a_cookie_larger_than_browsers_keep_is_refused_with_its_size() {
    let spec = CookieSpec::default();
    let fits = "a".repeat(MAX_COOKIE_LEN - spec.overhead());
    // The longest header a value can make (the longest Max-Age) is exactly
    // the limit: measured on the header itself, not on `overhead()`.
    assert_eq!(spec.set_cookie(&fits, Some(u64::MAX)).unwrap().len(), MAX_COOKIE_LEN);
    let header = spec.set_cookie(&fits, Some(43_200)).unwrap();
    assert!(header.len() <= MAX_COOKIE_LEN);
    let too_long = format!("{fits}a");
    let len = spec.overhead() + too_long.len();
    assert_eq!(
        spec.set_cookie(&too_long, Some(u64::MAX)).unwrap_err(),
        CookieError::TooLarge { len, max: MAX_COOKIE_LEN }
    );
    assert_eq!(spec.set_cookie("a b", None).unwrap_err(), CookieError::InvalidValue);
    assert_eq!(spec.set_cookie("a;b", None).unwrap_err(), CookieError::InvalidValue);
}

#[test]
fn a_cookie_value_is_exactly_rfc_6265s_cookie_octets() {
    // RFC 6265, section 4.1.1: %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E.
    let octets = |b: u8| matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E);
    let spec = CookieSpec::default();
    for b in 0..=u8::MAX {
        // Alone, and in the middle of a long value (checked many bytes at once).
        for value in [vec![b], [b"a".repeat(40), vec![b], b"z".repeat(40)].concat()] {
            let text = String::from_utf8_lossy(&value).into_owned();
            let header = [b"__Host-session=".as_slice(), &value].concat();
            let read: Vec<&str> = spec.values_in([header.as_slice()]).collect();
            if octets(b) {
                assert!(spec.set_cookie(&text, None).is_ok(), "{b:#04x}");
                assert_eq!(read, [text.as_str()], "{b:#04x}");
            } else {
                assert_eq!(spec.set_cookie(&text, None).unwrap_err(), CookieError::InvalidValue, "{b:#04x}");
                // (`;` ends the pair: what comes before it is a value.)
                assert!(read.is_empty() || b == b';', "{b:#04x} was read");
            }
        }
    }
}

#[test]
fn a_header_is_split_at_every_semicolon_wherever_it_stands() {
    let spec = CookieSpec::named("s").unwrap();
    // Longer than the blocks a byte search checks at once.
    let filler = format!("x={}", "y".repeat(100));
    let cases = [
        (format!(";{filler};;s=A;{filler}; s=B;"), vec!["A", "B"]),
        ("s=A".to_owned(), vec!["A"]),
        (format!("{filler};s=C"), vec!["C"]),
        (format!("{filler}s=D;"), vec![]),
        (format!("s=E;{filler}"), vec!["E"]),
        (";;;".to_owned(), vec![]),
        (String::new(), vec![]),
    ];
    for (header, expected) in cases {
        let read: Vec<&str> = spec.values_in([header.as_bytes()]).collect();
        assert_eq!(read, expected, "{header}");
    }
}

#[test]
fn sealed_tokens_are_valid_cookie_values_and_a_too_large_session_is_caught_before_sending() {
    let sealer = Sealer::builder(keyring(&[(1, KeyState::Primary)])).max_token_len(8192).build().unwrap();
    let spec = CookieSpec::default();
    let token = sealer.seal(&Session::new("x".repeat(100))).unwrap();
    assert!(spec.set_cookie(&token, Some(3600)).is_ok());
    let big = Session::new("x".repeat(3100));
    // Known ahead, without sealing:
    assert!(sealer.sealed_len(&big).unwrap() + spec.overhead() > MAX_COOKIE_LEN);
    let token = sealer.seal(&big).unwrap();
    assert!(matches!(spec.set_cookie(&token, Some(3600)), Err(CookieError::TooLarge { .. })));
}

#[test]
fn seal_cookie_refuses_a_cookie_over_the_limit_and_counts_max_age_down_to_the_absolute_expiry() {
    let clock = ManualClock::at_unix(1_800_000_000);
    let sealer = Sealer::builder(keyring(&[(1, KeyState::Primary)])).clock(clock.clone()).build().unwrap();
    let spec = CookieSpec::default();

    // The token alone fits the sealer's 4096 bytes; with the cookie's name
    // and attributes it does not.
    let mut size = 2900;
    while sealer.sealed_len(&Session::new("x".repeat(size + 1))).unwrap() <= 4096 {
        size += 1;
    }
    let big = Session::new("x".repeat(size));
    let token_len = sealer.seal(&big).unwrap().len();
    match sealer.seal_cookie(&big, &spec) {
        Err(SealError::TooLarge { len, max }) => {
            assert_eq!(len, token_len);
            // Room left by the name, `=` and the attributes with the longest
            // Max-Age there is, so that a cookie that fits never stops fitting.
            let attributes = "; Path=/; Max-Age=18446744073709551615; Secure; HttpOnly; SameSite=Lax";
            assert_eq!(max, MAX_COOKIE_LEN - "__Host-session=".len() - attributes.len());
            assert_eq!(max, spec.max_token_len());
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }

    let header = sealer.seal_cookie(&Session::new(1u8), &spec).unwrap();
    assert!(header.contains("; Max-Age=43200;"), "{header}");
    let token = header.strip_prefix("__Host-session=").unwrap().split(';').next().unwrap();
    let opened = sealer.open::<u8>(token).unwrap();
    clock.advance(std::time::Duration::from_secs(600));
    let again = sealer.seal_cookie(opened.session(), &spec).unwrap();
    assert!(again.contains("; Max-Age=42600;"), "sealing again never extends the cookie: {again}");
    let session_only = sealer.seal_cookie(opened.session(), &spec.clone().browser_session()).unwrap();
    assert!(!session_only.contains("Max-Age"), "{session_only}");
}

/// A token is bound to its cookie by the sealer's purpose: a sealer seals
/// only the cookie named as its purpose, else one cookie's value (sealed
/// by the same sealer into another cookie) would open as this one's.
#[test]
fn a_sealer_seals_only_the_cookie_named_as_its_purpose() {
    let sealer = Sealer::builder(keyring(&[(1, KeyState::Primary)])).build().unwrap();
    let admin = CookieSpec::named("__Host-admin").unwrap();
    let refused = sealer.seal_cookie(&Session::new(()), &admin);
    assert!(
        matches!(&refused, Err(SealError::CookiePurpose { cookie, purpose }) if cookie == "__Host-admin" && purpose == "__Host-session"),
        "{refused:?}"
    );
    assert!(matches!(sealer.issue_cookie(Session::new(()), &admin), Err(SealError::CookiePurpose { .. })));
    let own = Sealer::builder(keyring(&[(1, KeyState::Primary)])).purpose("__Host-admin").build().unwrap();
    assert!(own.seal_cookie(&Session::new(()), &admin).unwrap().starts_with("__Host-admin="));
}

#[test]
fn reading_the_cookie_from_a_request_header() {
    let spec = CookieSpec::default();
    let sid = CookieSpec::named("sid").unwrap();
    let values: Vec<&str> = sid.values("a=1; sid=first;b=2;  sid=second").collect();
    assert_eq!(values, ["first", "second"], "every value, in header order");
    assert_eq!(spec.values("a=1; __Host-session=first; b=2").collect::<Vec<_>>(), ["first"]);
    assert_eq!(spec.values("a=1; b=2").count(), 0);
    assert_eq!(spec.values("").count(), 0);
    assert_eq!(
        spec.values("__host-session=x; __Host-session2=y; x__Host-session=z").count(),
        0,
        "exact name"
    );
    assert_eq!(spec.values("__Host-session=\"quoted\"").collect::<Vec<_>>(), ["quoted"]);
    let many = vec!["sid=v"; 50].join("; ");
    assert_eq!(sid.values(&many).count(), 4, "at most four are tried");
}

/// No browser sends a `__Host-` cookie twice (it exists once per host), so
/// two values mean an injected one: neither is used, whichever would open.
#[test]
fn a_host_cookie_that_arrives_twice_is_no_cookie_at_all() {
    let sealer = Sealer::builder(keyring(&[(1, KeyState::Primary)])).build().unwrap();
    let (victim, attacker) =
        (sealer.seal(&Session::new(1u8)).unwrap(), sealer.seal(&Session::new(2u8)).unwrap());
    let spec = CookieSpec::default();
    for header in [
        format!("__Host-session={attacker}; __Host-session={victim}"),
        format!("__Host-session={victim}; x=1; __Host-session={attacker}"),
        format!("__Host-session={victim}; __Host-session={victim}"),
    ] {
        assert_eq!(spec.values(&header).count(), 0, "{header}");
    }
    // Over several headers too.
    let headers = [format!("__Host-session={attacker}"), format!("__Host-session={victim}")];
    assert_eq!(spec.values_in(headers.iter().map(|h| h.as_bytes())).count(), 0);
    // One value, with neighbours and empty or malformed ones of the same name, is read.
    let one = format!("__Host-session=; __Host-session=\"{victim}\"; __Host-session=a b");
    assert_eq!(spec.values(&one).collect::<Vec<_>>(), [victim.as_str()]);
    // Other names keep "the first that opens".
    let sid = CookieSpec::named("sid").unwrap();
    assert_eq!(sid.values(&format!("sid={attacker}; sid={victim}")).count(), 2);
}

#[test]
fn cookies_are_read_as_bytes_as_browsers_send_them() {
    let spec = CookieSpec::default();
    fn values<'h>(spec: &CookieSpec, headers: &[&'h [u8]]) -> Vec<&'h str> {
        spec.values_in(headers.iter().copied()).collect()
    }
    let read = |headers: &[&'static [u8]]| values(&spec, headers);
    // Neighbours holding UTF-8 or Latin-1 bytes do not hide ours.
    assert_eq!(read(&["tracker=café; __Host-session=A".as_bytes()]), ["A"]);
    assert_eq!(read(&[b"pref=caf\xe9; __Host-session=A; x=\xff\xfe"]), ["A"]);
    // Only ASCII space and tab are trimmed: a Unicode space is part of the name.
    assert_eq!(read(&[" \t__Host-session=A\t ".as_bytes()]), ["A"]);
    assert!(read(&["\u{2000}__Host-session=A; \u{a0}__Host-session=B".as_bytes()]).is_empty());
    // Empty values and values that are not cookie values are skipped;
    // one pair of quotes is removed.
    assert_eq!(read(&[b"__Host-session=; __Host-session=\"\"; __Host-session=\"Q\""]), ["Q"]);
    assert!(
        read(&["__Host-session=é".as_bytes(), b"__Host-session=a b", b"__Host-session=\"\"\"x"]).is_empty()
    );
    // At most four over all the request's headers, in order (for a name
    // without the `__Host-` prefix, which may arrive several times).
    let sid = CookieSpec::named("session").unwrap();
    let four = values(&sid, &[b"session=1; session=2", b"session=3", b"session=4; session=5"]);
    assert_eq!(four, ["1", "2", "3", "4"]);
    assert!(read(&[]).is_empty());
}

/// The unmasked token under a masked one: its two halves XORed.
fn unmasked(token: &str) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let bytes = b64.decode(token).unwrap();
    let (pad, masked) = bytes.split_at(36);
    b64.encode(pad.iter().zip(masked).map(|(p, m)| p ^ m).collect::<Vec<u8>>())
}

/// `token` with the character at `i` changed.
fn changed_at(token: &str, i: usize) -> String {
    let mut bytes = token.as_bytes().to_vec();
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

#[test]
fn csrf_tokens_are_bound_to_the_session() {
    let sealer = Sealer::builder(keyring(&[(1, KeyState::Primary)])).build().unwrap();
    let session = Session::new(());
    let token = sealer.csrf_token(&session);
    assert_eq!(token.len(), csrf::MASKED_TOKEN_LEN);
    assert_eq!(sealer.verify_csrf(&session, &token), Ok(()));
    // The unmasked form (what independent implementations compute from
    // docs/FORMAT.md) verifies too, and stays the same for the session's life.
    let raw = unmasked(&token);
    assert_eq!(raw.len(), csrf::TOKEN_LEN);
    assert_eq!(sealer.verify_csrf(&session, &raw), Ok(()));
    assert_eq!(unmasked(&sealer.csrf_token(&session)), raw, "stable for the session's life");
    // Another session (every login makes a new one) accepts neither form.
    for token in [&token, &raw] {
        assert_eq!(sealer.verify_csrf(&Session::new(()), token), Err(CsrfError::Invalid));
        let mut renewed = session.clone();
        renewed.renew_id().unwrap();
        assert_eq!(sealer.verify_csrf(&renewed, token), Err(CsrfError::Invalid));
        // Every changed character is refused.
        for i in 0..token.len() {
            assert_eq!(sealer.verify_csrf(&session, &changed_at(token, i)), Err(CsrfError::Invalid), "{i}");
        }
    }
    assert_eq!(sealer.verify_csrf(&session, ""), Err(CsrfError::Missing));
    for junk in [
        "x",
        &"A".repeat(48),
        &"A".repeat(96),
        &format!("{raw}A"),
        &raw[..47],
        &format!("{token}A"),
        &token[..95],
        &format!("{raw}{raw}"),
        "é".repeat(24).as_str(),
        "é".repeat(48).as_str(),
    ] {
        assert_eq!(sealer.verify_csrf(&session, junk), Err(CsrfError::Invalid), "{junk:?}");
    }
}

#[test]
fn csrf_tokens_are_masked_afresh_on_every_call_against_compression_side_channels() {
    let sealer = Sealer::builder(keyring(&[(1, KeyState::Primary)])).build().unwrap();
    let session = Session::new(());
    let tokens: Vec<String> = (0..64).map(|_| sealer.csrf_token(&session)).collect();
    let distinct: std::collections::HashSet<&String> = tokens.iter().collect();
    assert_eq!(distinct.len(), tokens.len(), "a token text repeated");
    // Not one character position stays the same across all of them: nothing
    // of the token is repeated from page to page for BREACH to recover.
    for i in 0..csrf::MASKED_TOKEN_LEN {
        assert!(
            tokens.iter().any(|t| t.as_bytes()[i] != tokens[0].as_bytes()[i]),
            "position {i} never changes"
        );
    }
    for token in &tokens {
        assert_eq!(sealer.verify_csrf(&session, token), Ok(()));
    }
}

#[test]
fn csrf_tokens_follow_key_rotation() {
    let shared = SharedKeyring::new(keyring(&[(1, KeyState::Primary)]));
    let sealer = Sealer::builder(shared.clone()).build().unwrap();
    let session = Session::new(());
    let old = sealer.csrf_token(&session);
    shared.replace(keyring(&[(1, KeyState::Active), (2, KeyState::Primary)]));
    assert_eq!(sealer.verify_csrf(&session, &old), Ok(()), "a page rendered before the rotation still posts");
    let new = sealer.csrf_token(&session);
    assert_ne!(unmasked(&new), unmasked(&old));
    assert_eq!(sealer.verify_csrf(&session, &new), Ok(()));
    shared.replace(keyring(&[(1, KeyState::Retired), (2, KeyState::Primary)]));
    assert_eq!(sealer.verify_csrf(&session, &old), Err(CsrfError::Invalid));
    assert_eq!(sealer.verify_csrf(&session, &unmasked(&old)), Err(CsrfError::Invalid));
    // A token relabelled to another valid key does not verify either, in
    // either form (in the masked one, the key ID is XORed under the pad).
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut bytes = b64.decode(unmasked(&old)).unwrap();
    bytes[..4].copy_from_slice(&2u32.to_be_bytes());
    let relabelled = b64.encode(&bytes);
    assert_ne!(relabelled, unmasked(&old));
    assert_eq!(sealer.verify_csrf(&session, &relabelled), Err(CsrfError::Invalid));
    let mut bytes = b64.decode(&old).unwrap();
    for (b, x) in bytes[36..40].iter_mut().zip((1u32 ^ 2).to_be_bytes()) {
        *b ^= x;
    }
    let relabelled = b64.encode(&bytes);
    assert_eq!(unmasked(&relabelled)[..5], b64.encode(2u32.to_be_bytes())[..5], "names key 2");
    assert_eq!(sealer.verify_csrf(&session, &relabelled), Err(CsrfError::Invalid));
}

#[test]
fn unsafe_requests_from_other_sites_are_refused() {
    let origin = "https://app.example";
    for method in ["GET", "HEAD", "OPTIONS", "TRACE"] {
        assert_eq!(
            csrf::check_origin(method, Some("cross-site"), Some("https://evil.example"), origin),
            Ok(())
        );
    }
    // What the refusal says of the header is printable and short.
    let odd = "cross\u{202e}site\nx".repeat(10);
    match csrf::check_origin("POST", Some(&odd), None, origin) {
        Err(CsrfError::CrossSite(said)) => assert_eq!(said, "cross?site?xcross?site?xcross?si"),
        other => panic!("{other:?}"),
    }
    // Methods are case-sensitive: a lowercase `get` is not the safe GET.
    for method in ["POST", "PUT", "PATCH", "DELETE", "post", "get", "head"] {
        assert!(csrf::is_unsafe_method(method));
        assert_eq!(csrf::check_origin(method, Some("same-origin"), Some(origin), origin), Ok(()));
        assert_eq!(csrf::check_origin(method, Some("none"), None, origin), Ok(()));
        assert!(matches!(
            csrf::check_origin(method, Some("cross-site"), None, origin),
            Err(CsrfError::CrossSite(_))
        ));
        assert!(matches!(
            csrf::check_origin(method, Some("same-site"), None, origin),
            Err(CsrfError::CrossSite(_))
        ));
        // Without Fetch Metadata, the Origin header decides.
        assert_eq!(csrf::check_origin(method, None, Some(origin), origin), Ok(()));
        assert_eq!(csrf::check_origin(method, None, Some("HTTPS://APP.EXAMPLE"), origin), Ok(()));
        assert_eq!(
            csrf::check_origin(method, None, Some("https://app.example:8443"), origin),
            Err(CsrfError::WrongOrigin)
        );
        assert_eq!(csrf::check_origin(method, None, Some("null"), origin), Err(CsrfError::WrongOrigin));
        // The expected origin written with its default port, a trailing
        // slash or capitals is the same origin; another port is not, and
        // an expected origin that is none matches nothing.
        for same in ["https://app.example:443", "https://App.Example/", " https://app.example "] {
            assert_eq!(csrf::check_origin(method, None, Some(origin), same), Ok(()), "{same}");
        }
        for other in ["https://app.example:8443", "http://app.example", "app.example", ""] {
            assert_eq!(
                csrf::check_origin(method, None, Some(origin), other),
                Err(CsrfError::WrongOrigin),
                "{other}"
            );
        }
        // Neither header: not a browser that could be tricked; the token still applies.
        assert_eq!(csrf::check_origin(method, None, None, origin), Ok(()));
    }
}

#[test]
fn an_origin_policy_widens_only_what_it_names() {
    let origin = "https://app.example";
    let policy =
        csrf::OriginPolicy::default().trust_origin("HTTPS://Admin.Example/").unwrap().allow_same_site();
    assert_eq!(policy.trusted_origins(), ["https://admin.example"]);
    // A scheme's default port is dropped, as browsers drop it from `Origin`.
    let ports = csrf::OriginPolicy::default()
        .trust_origin("https://a.example:443")
        .and_then(|p| p.trust_origin("http://b.example:80"))
        .and_then(|p| p.trust_origin("https://c.example:8443"))
        .unwrap();
    assert_eq!(ports.trusted_origins(), ["https://a.example", "http://b.example", "https://c.example:8443"]);
    // A trusted Origin passes even when the browser calls it cross-site.
    assert_eq!(policy.check("POST", Some("cross-site"), Some("https://admin.example"), origin), Ok(()));
    assert_eq!(policy.check("POST", None, Some("https://ADMIN.example"), origin), Ok(()));
    assert_eq!(policy.check("POST", Some("same-site"), Some("https://dev.app.example"), origin), Ok(()));
    // Anything else is refused as before.
    assert!(matches!(
        policy.check("POST", Some("cross-site"), Some("https://evil.example"), origin),
        Err(CsrfError::CrossSite(_))
    ));
    assert!(matches!(policy.check("POST", Some("cross-site"), None, origin), Err(CsrfError::CrossSite(_))));
    assert_eq!(
        policy.check("POST", None, Some("https://admin.example.evil"), origin),
        Err(CsrfError::WrongOrigin)
    );
    // Only origins can be trusted: not `null` (sandboxed frames), `*`, paths or bare hosts.
    for bad in
        ["null", "*", "", "admin.example", "https://", "https://a.example/path", "https://*.example", "://x"]
    {
        let err = csrf::OriginPolicy::default().trust_origin(bad).unwrap_err();
        assert!(err.to_string().contains("is not an origin"), "{bad:?}: {err}");
    }
    assert!(csrf::OriginPolicy::default().trust_origin("http://localhost:5173").is_ok());
    // Same-site is off unless asked for, even with trusted origins.
    let strict = csrf::OriginPolicy::default().trust_origin("https://admin.example").unwrap();
    assert!(matches!(
        strict.check("POST", Some("same-site"), Some("https://dev.app.example"), origin),
        Err(CsrfError::CrossSite(_))
    ));
}
