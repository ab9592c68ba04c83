//! Real processes for the browser tests: the demo binary, chromedriver and
//! headless Chromium. Every process is killed when its guard drops, even
//! when a test fails.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// A running `sealed-session-demo`.
pub(crate) struct Demo {
    child: Child,
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub(crate) origin: String,
}

impl Demo {
    /// Starts the demo on a free loopback port with `data_dir`, and
    /// `--store store` if given.
    pub(crate) fn start(data_dir: &Path, store: Option<&str>) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sealed-session-demo"));
        command.args(["--addr", "127.0.0.1:0", "--data-dir"]).arg(data_dir);
        if let Some(store) = store {
            command.args(["--store", store]);
        }
        let mut child = command
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start sealed-session-demo");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let origin = loop {
            let line =
                lines.next().expect("the demo exited before listening").expect("read the demo's stdout");
            if let Some(rest) = line.strip_prefix("sealed-session demo listening on ") {
                break rest.split_whitespace().next().expect("an address").trim_end_matches('/').to_owned();
            }
        };
        // Keep draining stdout so that the demo never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, origin }
    }

    /// Sends it SIGHUP: reload the keyring file.
    pub(crate) fn hang_up(&self) {
        let status = Command::new("kill").args(["-HUP", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// The port it listens on.
    pub(crate) fn addr(&self) -> &str {
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
pub(crate) struct Reply {
    pub(crate) status: u16,
    /// Header lines as sent, `name: value`.
    pub(crate) headers: Vec<String>,
    pub(crate) body: String,
}

impl Reply {
    /// The `name=value` of every `Set-Cookie`, without attributes.
    pub(crate) fn cookies(&self) -> Vec<String> {
        self.headers
            .iter()
            .filter_map(|h| h.strip_prefix("set-cookie: ").or_else(|| h.strip_prefix("Set-Cookie: ")))
            .map(|c| c.split(';').next().unwrap_or_default().to_owned())
            .collect()
    }
}

/// A plain HTTP/1.1 request outside any browser, with extra header lines
/// and a form body.
pub(crate) fn http(addr: &str, method: &str, path: &str, headers: &[String], body: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("connect to the demo");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
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
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read the response");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok());
    Reply {
        status: status.expect("a status line"),
        headers: lines.map(str::to_owned).collect(),
        body: body.to_owned(),
    }
}

/// A plain HTTP/1.1 GET with an optional `Cookie` header, outside any
/// browser: returns the status code and the body.
pub(crate) fn http_get(addr: &str, path: &str, cookie: Option<&str>) -> (u16, String) {
    let headers: Vec<String> = cookie.map(|c| format!("Cookie: {c}")).into_iter().collect();
    let reply = http(addr, "GET", path, &headers, "");
    (reply.status, reply.body)
}

/// The CSRF token in a page's forms.
pub(crate) fn csrf_token(page: &str) -> String {
    let (_, rest) = page.split_once(r#"name="csrf_token" value=""#).expect("a CSRF token in the page");
    rest.split('"').next().unwrap().to_owned()
}

/// Signs in as `user` with plain HTTP, as a browser's form would (the
/// pre-session cookie and its CSRF token first); returns the session cookie
/// (`__Host-session=…`).
pub(crate) fn http_sign_in(demo: &Demo, user: &str) -> String {
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
pub(crate) fn http_post_form(demo: &Demo, path: &str, cookie: &str) -> u16 {
    let (status, page) = http_get(demo.addr(), "/", Some(cookie));
    assert_eq!(status, 200);
    let headers = [format!("Cookie: {cookie}"), format!("Origin: {}", demo.origin)];
    http(demo.addr(), "POST", path, &headers, &format!("csrf_token={}", csrf_token(&page))).status
}

/// chromedriver, in its own process group so that the Chromium instances it
/// starts die with it.
pub(crate) struct Driver {
    child: Child,
    port: u16,
    profiles: tempfile::TempDir,
}

impl Driver {
    /// Starts chromedriver on a free port. Fails (never skips) if it is not
    /// installed: `scripts/test.sh` installs chromium and chromium-driver.
    pub(crate) fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|err| {
                panic!("cannot start chromedriver ({err}); run scripts/test.sh, which installs it")
            });
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port, profiles: tempfile::tempdir().unwrap() }
    }

    /// A new headless Chromium with an empty profile of its own: a separate
    /// browser context, sharing no cookies with any other.
    pub(crate) async fn browser(&self) -> Client {
        let profile = tempfile::tempdir_in(self.profiles.path()).unwrap().keep();
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        });
        let serde_json::Value::Object(capabilities) = capabilities else { unreachable!() };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("start headless Chromium through chromedriver")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and every Chromium it started.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
        // Chromium helpers that left the group still name their profile.
        let _ =
            Command::new("pkill").args(["-KILL", "-f", &self.profiles.path().display().to_string()]).status();
    }
}

/// Signs in on the demo's page as `user`, and waits for the signed-in page.
pub(crate) async fn sign_in(browser: &Client, demo: &Demo, user: &str) {
    browser.goto(&format!("{}/", demo.origin)).await.unwrap();
    browser.find(Locator::Css("#login input[name=username]")).await.unwrap().send_keys(user).await.unwrap();
    let password = format!("{user}-pass");
    browser
        .find(Locator::Css("#login input[name=password]"))
        .await
        .unwrap()
        .send_keys(&password)
        .await
        .unwrap();
    submit(browser, demo, "login", "signed-in").await;
    assert_eq!(signed_in_user(browser).await.as_deref(), Some(user));
}

/// Submits the page's form `form` and waits until the browser has followed
/// the redirect to the page with the notice `notice`, so that nothing after
/// it can read the page it left.
pub(crate) async fn submit(browser: &Client, demo: &Demo, form: &str, notice: &str) {
    browser.find(Locator::Css(&format!("#{form} button"))).await.unwrap().click().await.unwrap();
    let url = format!("{}/?m={notice}", demo.origin).parse().unwrap();
    browser.wait().at_most(Duration::from_secs(20)).for_url(&url).await.unwrap();
}

/// The user the page shows as signed in, or `None` on the login page.
pub(crate) async fn signed_in_user(browser: &Client) -> Option<String> {
    let found =
        browser.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("#user, #login")).await;
    let element = found.expect("the demo's page, signed in or out");
    match element.attr("id").await.unwrap().as_deref() {
        Some("user") => Some(element.text().await.unwrap()),
        _ => None,
    }
}

/// The value of the session cookie the browser holds, if any.
pub(crate) async fn session_cookie(browser: &Client) -> Option<String> {
    let cookies = browser.get_all_cookies().await.unwrap();
    cookies.iter().find(|c| c.name() == "__Host-session").map(|c| c.value().to_owned())
}
