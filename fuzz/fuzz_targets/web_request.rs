//! Oracle: the web driver never panics on any request, and never lets one
//! through that it must refuse. A request opens a session only with that
//! session's cookie or bearer token, whole; an unsafe request (not GET,
//! HEAD, OPTIONS or TRACE) reaches the handler only with the CSRF token of
//! the session it opened, exactly, in its header or as the form's
//! `csrf_token` (decoded here, independently); a path that requires a
//! device-bound session is never reached with one that is not; and
//! whatever the handler gets, finishing it works. Two users are signed
//! in, alice and bob, so that one's token with the other's cookie is
//! tried.
#![no_main]

use std::sync::{Arc, LazyLock};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sealed_session::web::testing::TestRequest;
use sealed_session::web::{bearer_token, Begin, DeviceBinding, RequestView, WebConfig};
use sealed_session::{Keyring, MemoryStore, Sealer};

/// A signed-in session: its user, its cookie (`name=value`) and its CSRF
/// token.
struct Signed {
    user: &'static str,
    cookie: String,
    token: String,
}

/// A driver with bearer tokens and a CSRF-exempt path, and two signed-in
/// sessions.
static SETUP: LazyLock<(Arc<WebConfig<MemoryStore>>, [Signed; 2])> = LazyLock::new(|| setup(false));

/// The same with device-bound sessions (DBSC), whose endpoints take the
/// draft's headers, and a path that requires a bound session (neither
/// session is bound); no bearer tokens.
static BOUND: LazyLock<(Arc<WebConfig<MemoryStore>>, [Signed; 2])> = LazyLock::new(|| setup(true));

fn setup(bound: bool) -> (Arc<WebConfig<MemoryStore>>, [Signed; 2]) {
    let builder = WebConfig::builder(Sealer::builder(Keyring::generate().unwrap()), MemoryStore::new());
    let builder = builder.csrf_exempt("/hook");
    // Bearer tokens have no device binding: one or the other.
    let builder = if bound {
        builder.device_bound_sessions(DeviceBinding::default().require_for("/admin"))
    } else {
        builder.bearer_tokens()
    };
    let config = Arc::new(builder.build().unwrap());
    let sessions = ["alice", "bob"].map(|user| {
        pollster::block_on(async {
            let session = config.verifier().login(user, String::from("data")).await.unwrap();
            let (opened, set_cookie) = config.verifier().issue_cookie(session, config.cookie()).unwrap();
            let cookie = set_cookie.split(';').next().unwrap().to_owned();
            let token = config.verifier().sealer().csrf_token(opened.session());
            Signed { user, cookie, token }
        })
    });
    (config, sessions)
}

/// `text` with `%XX` escapes and `+` decoded, as a form's names and values
/// are (a bad escape stays as it is).
fn form_decoded(text: &[u8]) -> Vec<u8> {
    let hex = |c: Option<&u8>| c.and_then(|&c| (c as char).to_digit(16)).map(|d| d as u8);
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while let Some(&c) = text.get(i) {
        match (c, hex(text.get(i + 1)), hex(text.get(i + 2))) {
            (b'+', _, _) => out.push(b' '),
            (b'%', Some(high), Some(low)) => {
                out.push(high << 4 | low);
                i += 2;
            }
            (c, _, _) => out.push(c),
        }
        i += 1;
    }
    out
}

/// Whether the form `body` has a `csrf_token` field whose value is `token`.
fn form_has(body: &[u8], token: &str) -> bool {
    body.split(|&b| b == b'&').any(|pair| {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &[][..]),
        };
        form_decoded(name) == b"csrf_token" && form_decoded(value) == token.as_bytes()
    })
}

/// Whether `rest`, after a credential, leaves it whole: nothing, or
/// blanks (which a header's value may end with).
fn blank(rest: &[u8]) -> bool {
    rest.iter().all(|&b| b == b' ' || b == b'\t')
}

/// The names the driver reads, and one it does not.
const NAMES: [&str; 12] = [
    "cookie",
    "secure-session-response",
    "sec-secure-session-id",
    "secure-session-skipped",
    "origin",
    "sec-fetch-site",
    "x-csrf-token",
    "authorization",
    "content-type",
    "upgrade",
    "user-agent",
    "x-other",
];

#[derive(Arbitrary, Debug)]
struct Input {
    /// With device-bound sessions.
    bound: bool,
    method: u8,
    /// The path, or one the driver knows (DBSC's endpoints, a path that
    /// requires a bound session, the exempt one).
    known_path: Option<u8>,
    path: String,
    /// (name index, value, whether to put a real cookie or token in front
    /// of it, and whose)
    headers: Vec<(u8, Vec<u8>, u8)>,
    /// Whether the form starts with a session's CSRF token, and whose.
    token_in_form: Option<bool>,
    /// Whether the request says it carries a form
    /// (`application/x-www-form-urlencoded`), so that its body is read.
    form: bool,
    /// A `Sec-Fetch-Site` a browser sends, if any.
    site: Option<u8>,
    body: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let (config, sessions) = if input.bound { &*BOUND } else { &*SETUP };
    let known = ["/dbsc/register", "/dbsc/refresh", "/admin/x", "/hook"];
    let path = input.known_path.map_or(input.path.as_str(), |i| known[usize::from(i) % known.len()]);
    let method = ["GET", "HEAD", "OPTIONS", "TRACE", "POST", "PUT", "DELETE", "PATCH", "post"]
        .get(usize::from(input.method) % 9)
        .copied()
        .unwrap_or("GET");
    let mut request = TestRequest::new(method, path);
    if input.form {
        request = request.header("content-type", "application/x-www-form-urlencoded");
    }
    if let Some(site) = input.site {
        let sites = ["same-origin", "same-site", "cross-site", "none"];
        request = request.header("sec-fetch-site", sites[usize::from(site) % sites.len()]);
    }
    // Whose cookie or bearer token, and whose CSRF token, went whole into
    // the headers that count them: Cookie, Authorization, X-CSRF-Token.
    let (mut cookie_of, mut header_token_of) = ([false; 2], [false; 2]);
    for (name, value, real) in input.headers.iter().take(16) {
        let name = NAMES[usize::from(*name) % NAMES.len()];
        let who = usize::from(real / 4 % 2);
        let session = &sessions[who];
        let value = match real % 4 {
            1 => {
                let whole = value.first().is_none_or(|&b| matches!(b, b';' | b' ' | b'\t'));
                cookie_of[who] |= name == "cookie" && whole;
                [session.cookie.as_bytes(), value].concat()
            }
            2 => {
                header_token_of[who] |= name == "x-csrf-token" && blank(value);
                [session.token.as_bytes(), value].concat()
            }
            3 => {
                cookie_of[who] |= name == "authorization" && blank(value);
                let token = session.cookie.split_once('=').map_or("", |(_, value)| value);
                [format!("Bearer {token}").as_bytes(), value].concat()
            }
            _ => value.clone(),
        };
        request = request.header(name, value);
    }
    let body = match input.token_in_form {
        Some(bob) => {
            [format!("csrf_token={}&", sessions[usize::from(bob)].token).as_bytes(), &input.body].concat()
        }
        None => input.body.clone(),
    };
    let token_of = |who: usize| header_token_of[who] || form_has(&body, &sessions[who].token);
    // A bearer request carries no ambient credential: no CSRF token needed.
    let bearer =
        !input.bound && RequestView::header(&request, "authorization").and_then(bearer_token).is_some();
    let safe = matches!(method, "GET" | "HEAD" | "OPTIONS" | "TRACE");
    let exempt = path == "/hook";
    pollster::block_on(async {
        let (handle, form_read) = match config.begin(&request).await {
            Begin::Ready(handle) => (handle, false),
            Begin::ReadForm(read) => match read.check(&body) {
                Ok(handle) => (handle, true),
                Err(_) => return,
            },
            Begin::Refuse(_) => return,
            _ => return,
        };
        let who = handle.user_id().map(|user| sessions.iter().position(|s| s.user == user));
        if let Some(who) = who {
            let who = who.unwrap_or_else(|| panic!("a session of no one signed in opened: {input:?}"));
            assert!(cookie_of[who], "{}'s session opened without its cookie: {input:?}", sessions[who].user);
            if !safe && !exempt && !bearer {
                assert!(token_of(who), "an unsafe request passed without its session's token: {input:?}");
            }
            assert!(!(input.bound && path == "/admin/x"), "an unbound session reached /admin: {input:?}");
        } else if handle.has_session() {
            panic!("a session with no user opened: {input:?}");
        }
        // No session: a CSRF token needs the pre-session's (or a bound
        // session's companion), which no input here has.
        assert!(
            who.is_some() || safe || exempt || bearer,
            "an unsafe request passed with no session{}: {input:?}",
            if form_read { " (its form read)" } else { "" }
        );
        let _ = handle.finish();
    });
});
