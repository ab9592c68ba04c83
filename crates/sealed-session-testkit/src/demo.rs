//! The demo as a real process, and a plain HTTP/1.1 client to talk to it
//! outside any browser.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A running `sealed-session-demo`.
pub struct Demo {
    child: Child,
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub origin: String,
    /// Its data directory (keyring, store, audit log).
    pub data_dir: std::path::PathBuf,
    /// What it logged on stdout since it began to listen.
    log: Arc<Mutex<Vec<String>>>,
}

impl Demo {
    /// Starts the demo binary `binary` (`env!("CARGO_BIN_EXE_sealed-session-demo")`)
    /// on a free loopback port with `data_dir`, and `--store store` if given.
    #[must_use]
    pub fn start(binary: &str, data_dir: &Path, store: Option<&str>) -> Self {
        Self::try_start(binary, data_dir, store).expect("the demo exited before listening")
    }

    /// As [`Demo::start`], or `None` if the demo exits instead (its store
    /// cannot be reached, say).
    #[must_use]
    pub fn try_start(binary: &str, data_dir: &Path, store: Option<&str>) -> Option<Self> {
        Self::try_start_on("axum", binary, data_dir, store)
    }

    /// As [`Demo::start`], served by `framework` (`axum` or `actix`).
    #[must_use]
    pub fn start_on(framework: &str, binary: &str, data_dir: &Path, store: Option<&str>) -> Self {
        Self::try_start_on(framework, binary, data_dir, store).expect("the demo exited before listening")
    }

    /// As [`Demo::try_start`], served by `framework` (`axum` or `actix`).
    #[must_use]
    pub fn try_start_on(framework: &str, binary: &str, data_dir: &Path, store: Option<&str>) -> Option<Self> {
        Self::launch(framework, binary, data_dir, store, &[], None)
    }

    /// As [`Demo::start_on`], with more command-line arguments.
    #[must_use]
    pub fn start_with(framework: &str, binary: &str, data_dir: &Path, args: &[&str]) -> Self {
        Self::launch(framework, binary, data_dir, None, args, None).expect("the demo exited before listening")
    }

    /// As [`Demo::start_on`], logging as `rust_log` (an `EnvFilter`, as
    /// `RUST_LOG` takes it) says; [`Demo::log`] has what it logged.
    #[must_use]
    pub fn start_logging(framework: &str, binary: &str, data_dir: &Path, rust_log: &str) -> Self {
        Self::launch(framework, binary, data_dir, None, &[], Some(rust_log))
            .expect("the demo exited before listening")
    }

    /// Starts the demo; `kept_log`, if given, is its `RUST_LOG`, and what it
    /// logs is kept for [`Demo::log`].
    fn launch(
        framework: &str,
        binary: &str,
        data_dir: &Path,
        store: Option<&str>,
        args: &[&str],
        kept_log: Option<&str>,
    ) -> Option<Self> {
        let mut command = Command::new(binary);
        command.args(["--framework", framework, "--addr", "127.0.0.1:0", "--data-dir"]).arg(data_dir);
        command.args(args);
        if let Some(store) = store {
            command.args(["--store", store]);
        }
        let mut child = command
            .env("RUST_LOG", kept_log.unwrap_or("warn"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start sealed-session-demo");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let origin = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.wait();
                return None;
            };
            if let Some(rest) = line.strip_prefix("sealed-session demo listening on ") {
                break rest.split_whitespace().next().expect("an address").trim_end_matches('/').to_owned();
            }
        };
        // Keep draining stdout (its log) so that the demo never blocks on a
        // full pipe; what it says is kept only when asked for (a load or
        // chaos test's warnings would pile up).
        let log = Arc::new(Mutex::new(Vec::new()));
        let kept = kept_log.is_some().then(|| Arc::clone(&log));
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Some(kept) = &kept {
                    kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(line);
                }
            }
        });
        Some(Self { child, origin, data_dir: data_dir.to_owned(), log })
    }

    /// Sends it SIGHUP: reload the keyring file.
    pub fn hang_up(&self) {
        let status = Command::new("kill").args(["-HUP", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// The lines it has logged so far (on stdout) after it began to listen,
    /// if started by [`Demo::start_logging`] (else none).
    #[must_use]
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The port it listens on.
    #[must_use]
    pub fn addr(&self) -> &str {
        self.origin.trim_start_matches("http://")
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response read by [`http`].
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Header lines as sent, `name: value`.
    pub headers: Vec<String>,
    /// The body, as text.
    pub body: String,
}

impl Reply {
    /// An HTTP/1.1 response as read from the connection, if it has a
    /// status line.
    pub fn parse(response: &str) -> Option<Self> {
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((response, ""));
        let mut lines = head.lines();
        let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok())?;
        Some(Self { status, headers: lines.map(str::to_owned).collect(), body: body.to_owned() })
    }

    /// The value of the first header `name` (compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    /// Every `Set-Cookie` header whole, attributes included.
    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter_map(|line| line.split_once(':'))
            .filter(|(key, _)| key.trim().eq_ignore_ascii_case("set-cookie"))
            .map(|(_, value)| value.trim())
            .collect()
    }

    /// The first `Set-Cookie` header of the cookie `name`, whole; panics if
    /// there is none.
    pub fn set_cookie(&self, name: &str) -> &str {
        let prefix = format!("{name}=");
        let found = self.set_cookies().into_iter().find(|c| c.starts_with(&prefix));
        found.unwrap_or_else(|| panic!("no Set-Cookie for {name}: {:?}", self.headers))
    }

    /// The `name=value` of every `Set-Cookie`, without attributes.
    pub fn cookies(&self) -> Vec<String> {
        self.headers
            .iter()
            .filter_map(|h| h.strip_prefix("set-cookie: ").or_else(|| h.strip_prefix("Set-Cookie: ")))
            .map(|c| c.split(';').next().unwrap_or_default().to_owned())
            .collect()
    }
}

/// A plain HTTP/1.1 request outside any browser, with extra header lines
/// and a form body.
pub fn http(addr: &str, method: &str, path: &str, headers: &[String], body: &str) -> Reply {
    try_http(addr, method, path, headers, body).expect("a response from the demo")
}

/// As [`http`], or `None` if the server cannot be reached or does not answer.
pub fn try_http(addr: &str, method: &str, path: &str, headers: &[String], body: &str) -> Option<Reply> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    if !body.is_empty() {
        request.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Reply::parse(&response)
}

/// A plain HTTP/1.1 GET with an optional `Cookie` header, outside any
/// browser: returns the status code and the body.
pub fn http_get(addr: &str, path: &str, cookie: Option<&str>) -> (u16, String) {
    let headers: Vec<String> = cookie.map(|c| format!("Cookie: {c}")).into_iter().collect();
    let reply = http(addr, "GET", path, &headers, "");
    (reply.status, reply.body)
}

/// The CSRF token in a page's forms.
pub fn csrf_token(page: &str) -> String {
    let (_, rest) = page.split_once(r#"name="csrf_token" value=""#).expect("a CSRF token in the page");
    rest.split('"').next().unwrap().to_owned()
}

/// Signs in as `user` with plain HTTP, as a browser's form would (the
/// pre-session cookie and its CSRF token first); returns the session cookie
/// (`__Host-session=…`).
pub fn http_sign_in(demo: &Demo, user: &str) -> String {
    let page = http(demo.addr(), "GET", "/", &[], "");
    let pre =
        page.cookies().into_iter().find(|c| c.starts_with("__Host-session-csrf=")).expect("a pre-session");
    let form = format!("username={user}&password={user}-pass&csrf_token={}", csrf_token(&page.body));
    let headers = [format!("Cookie: {pre}"), format!("Origin: {}", demo.origin)];
    let reply = http(demo.addr(), "POST", "/login", &headers, &form);
    assert_eq!(reply.status, 303, "login: {}", reply.body);
    reply.cookies().into_iter().find(|c| c.starts_with("__Host-session=")).expect("a session cookie")
}

/// Posts one of the page's forms (`/logout`, `/logout-everywhere`) with
/// plain HTTP, signed in with `cookie`; returns the status.
pub fn http_post_form(demo: &Demo, path: &str, cookie: &str) -> u16 {
    let (status, page) = http_get(demo.addr(), "/", Some(cookie));
    assert_eq!(status, 200);
    let headers = [format!("Cookie: {cookie}"), format!("Origin: {}", demo.origin)];
    http(demo.addr(), "POST", path, &headers, &format!("csrf_token={}", csrf_token(&page))).status
}
