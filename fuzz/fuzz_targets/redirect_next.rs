//! Oracle: a `next` that `local_path` accepts stays on this site however a
//! later step reads it (percent-decoded once or twice, tabs and newlines
//! dropped as browsers do, `;` parameters cut off and dot segments resolved,
//! slashes and backslashes alike), and `login_url` carries it so that
//! decoding the query value gives it back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealed_session::redirect::{local_path, login_url};

/// `text` with every `%XX` decoded (bytes that are not UTF-8 kept as `?`).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let (mut out, mut i) = (Vec::new(), 0);
    while let Some(&byte) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok());
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()).filter(|_| byte == b'%') {
            Some(decoded) => {
                out.push(decoded);
                i += 3;
            }
            None => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).replace('\u{fffd}', "?")
}

/// The path with `\` read as `/`, tabs and newlines dropped, and its dot
/// segments resolved (RFC 3986 5.2.4) after cutting `;` parameters off each
/// segment, as a server that normalizes paths would.
fn normalize(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let path = path.replace('\\', "/").replace(['\t', '\n', '\r'], "");
    let mut parts = path.split('/').skip(1).peekable();
    while let Some(segment) = parts.next() {
        match segment.split(';').next().unwrap_or_default() {
            "." => {
                if parts.peek().is_none() {
                    segments.push("");
                }
            }
            ".." => {
                segments.pop();
                if parts.peek().is_none() {
                    segments.push("");
                }
            }
            other => segments.push(other),
        }
    }
    format!("/{}", segments.join("/"))
}

fuzz_target!(|next: &str| {
    let Some(path) = local_path(next) else {
        assert_eq!(login_url("/login", next), "/login");
        return;
    };
    assert_eq!(path, next);
    let on_path = path.split('?').next().unwrap_or_default();
    let twice = decode(&decode(on_path));
    for read in [
        on_path.to_owned(),
        decode(on_path),
        normalize(on_path),
        normalize(&decode(on_path)),
        normalize(&twice),
    ] {
        assert!(read.starts_with('/'), "{next:?} read as {read:?}");
        assert!(
            !read.starts_with("//") && !read.starts_with("/\\"),
            "{next:?} read as {read:?}: another host"
        );
    }
    let url = login_url("/login", next);
    if next == "/" {
        assert_eq!(url, "/login");
    } else {
        let value = url.strip_prefix("/login?next=").unwrap_or_else(|| panic!("{url:?}"));
        assert!(!value.contains(['&', '#', '?']), "{url:?}: not one query value");
        assert_eq!(decode(value), next, "{url:?}");
    }
});
