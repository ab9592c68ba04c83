//! chromedriver and headless Chromium, and what a user does in them on the
//! demo's pages.

use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::demo::Demo;

/// chromedriver, in its own process group so that the Chromium instances it
/// starts die with it.
pub struct Driver {
    child: Child,
    port: u16,
    profiles: tempfile::TempDir,
}

impl Driver {
    /// Starts chromedriver on a free port. Fails (never skips) if it is not
    /// installed: `scripts/test.sh` installs chromium and chromium-driver.
    pub fn start() -> Self {
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

    /// The one chromedriver of this test binary, started on first use and
    /// killed with every Chromium it started when the binary exits (its
    /// process group, and the helpers that left the group but name their
    /// profile): each [`Driver::browser`] has a profile of its own, so tests
    /// share it safely.
    pub fn shared() -> &'static Self {
        static SHARED: OnceLock<Driver> = OnceLock::new();
        SHARED.get_or_init(|| {
            let driver = Self::start();
            crate::clean_up_at_exit(driver.profiles.path(), Some(driver.child.id()));
            driver
        })
    }

    /// A new headless Chromium with an empty profile of its own: a separate
    /// browser context, sharing no cookies with any other.
    pub async fn browser(&self) -> Client {
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
pub async fn sign_in(browser: &Client, demo: &Demo, user: &str) {
    browser.goto(&format!("{}/", demo.origin)).await.unwrap();
    fill_login(browser, user, &format!("{user}-pass")).await;
    submit(browser, demo, "login", &format!("Signed in as {user}.")).await;
    assert_eq!(signed_in_user(browser).await.as_deref(), Some(user));
}

/// Types `user` and `password` into the page's login form (not submitted).
pub async fn fill_login(browser: &Client, user: &str, password: &str) {
    for (name, value) in [("username", user), ("password", password)] {
        let field = browser.find(Locator::Css(&format!("#login input[name={name}]"))).await.unwrap();
        field.send_keys(value).await.unwrap();
    }
}

/// Submits the page's form `form` and waits until the browser has followed
/// the redirect to the demo's page and that page shows a flash message
/// containing `notice`, so that nothing after it can read the page it left
/// (which is marked before the click).
pub async fn submit(browser: &Client, demo: &Demo, form: &str, notice: &str) {
    browser.execute("document.documentElement.dataset.left = 'yes'", vec![]).await.unwrap();
    browser.find(Locator::Css(&format!("#{form} button"))).await.unwrap().click().await.unwrap();
    let url = format!("{}/", demo.origin).parse().unwrap();
    browser.wait().at_most(Duration::from_secs(20)).for_url(&url).await.unwrap();
    let shown = format!("//html[not(@data-left)]//p[contains(@class, 'notice') and contains(., '{notice}')]");
    let found = browser.wait().at_most(Duration::from_secs(20)).for_element(Locator::XPath(&shown)).await;
    assert!(found.is_ok(), "no notice {notice:?} after {form}: {}", browser.source().await.unwrap());
}

/// The user the page shows as signed in, or `None` on the login page.
pub async fn signed_in_user(browser: &Client) -> Option<String> {
    let found =
        browser.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("#user, #login")).await;
    let element = found.expect("the demo's page, signed in or out");
    match element.attr("id").await.unwrap().as_deref() {
        Some("user") => Some(element.text().await.unwrap()),
        _ => None,
    }
}

/// The value of the session cookie the browser holds, if any.
pub async fn session_cookie(browser: &Client) -> Option<String> {
    let cookies = browser.get_all_cookies().await.unwrap();
    cookies.iter().find(|c| c.name() == "__Host-session").map(|c| c.value().to_owned())
}
