//! Oracle: the web driver never panics on any request, and never lets one
//! through that it must refuse. A request opens a session only with the
//! real session cookie or bearer token; an unsafe request (not GET, HEAD, OPTIONS or TRACE)
//! reaches the handler only with the session's CSRF token, in its header or
//! its form; and whatever the handler gets, finishing it works.
#![no_main]

use std::sync::{Arc, LazyLock};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sealed_session::web::testing::TestRequest;
use sealed_session::web::{bearer_token, Begin, DeviceBinding, RequestView, WebConfig};
use sealed_session::{Keyring, MemoryStore, Sealer};

/// A driver with bearer tokens and a CSRF-exempt path, and a signed-in
/// session's cookie (`name=value`) and CSRF token.
static SETUP: LazyLock<(Arc<WebConfig<MemoryStore>>, String, String)> = LazyLock::new(|| setup(false));

/// The same with device-bound sessions (DBSC), whose endpoints take the
/// draft's headers, and a path that requires a bound session; no bearer
/// tokens.
static BOUND: LazyLock<(Arc<WebConfig<MemoryStore>>, String, String)> = LazyLock::new(|| setup(true));

fn setup(bound: bool) -> (Arc<WebConfig<MemoryStore>>, String, String) {
    let builder = WebConfig::builder(Sealer::builder(Keyring::generate().unwrap()), MemoryStore::new());
    let builder = builder.csrf_exempt("/hook");
    // Bearer tokens have no device binding: one or the other.
    let builder = if bound {
        builder.device_bound_sessions(DeviceBinding::default().require_for("/admin"))
    } else {
        builder.bearer_tokens()
    };
    let config = Arc::new(builder.build().unwrap());
    pollster::block_on(async {
        let session = config.verifier().login("alice", String::from("data")).await.unwrap();
        let (opened, set_cookie) = config.verifier().issue_cookie(session, config.cookie()).unwrap();
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        let token = config.verifier().sealer().csrf_token(opened.session());
        (config, cookie, token)
    })
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
    /// (name index, value, whether to put the real cookie or token in it)
    headers: Vec<(u8, Vec<u8>, u8)>,
    /// Whether the form starts with the session's CSRF token.
    token_in_form: bool,
    /// Whether the request says it carries a form
    /// (`application/x-www-form-urlencoded`), so that its body is read.
    form: bool,
    /// A `Sec-Fetch-Site` a browser sends, if any.
    site: Option<u8>,
    body: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let (config, cookie, token) = if input.bound { &*BOUND } else { &*SETUP };
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
    // Where the real cookie, bearer token and CSRF token went: only the
    // Cookie, Authorization and CSRF headers may count them.
    let (mut real_cookie, mut real_token) = (false, false);
    for (name, value, real) in input.headers.iter().take(16) {
        let name = NAMES[usize::from(*name) % NAMES.len()];
        let value = match real % 4 {
            1 => {
                real_cookie |= name == "cookie";
                [cookie.as_bytes(), value].concat()
            }
            2 => {
                real_token |= name == "x-csrf-token";
                [token.as_bytes(), value].concat()
            }
            3 => {
                real_cookie |= name == "authorization";
                let session = cookie.split_once('=').map_or("", |(_, value)| value);
                [format!("Bearer {session}").as_bytes(), value].concat()
            }
            _ => value.clone(),
        };
        request = request.header(name, value);
    }
    let body = if input.token_in_form {
        [format!("csrf_token={token}&").as_bytes(), &input.body].concat()
    } else {
        input.body.clone()
    };
    let body_has_token = body.windows(token.len()).any(|w| w == token.as_bytes());
    // A bearer request carries no ambient credential: no CSRF token needed.
    let bearer =
        !input.bound && RequestView::header(&request, "authorization").and_then(bearer_token).is_some();
    let safe = matches!(method, "GET" | "HEAD" | "OPTIONS" | "TRACE");
    let exempt = path == "/hook";
    pollster::block_on(async {
        let handle = match config.begin(&request).await {
            Begin::Ready(handle) => handle,
            Begin::ReadForm(read) => match read.check(&body) {
                Ok(handle) => {
                    assert!(body_has_token || real_token, "a form without the token passed: {input:?}");
                    handle
                }
                Err(_) => return,
            },
            Begin::Refuse(_) => return,
            _ => return,
        };
        if handle.has_session() {
            assert!(real_cookie, "a session opened without its cookie: {input:?}");
        }
        if !safe && !exempt && !bearer {
            assert!(real_token || body_has_token, "an unsafe request passed without its token: {input:?}");
        }
        let _ = handle.finish();
    });
});
