//! A real redis-server on a free loopback port, stopped when dropped.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct RedisServer {
    port: u16,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl RedisServer {
    /// Starts redis-server with no persistence. Fails the test (never skips
    /// it) if redis-server is not installed: `scripts/test.sh` installs it.
    pub(crate) fn start() -> Self {
        let mut server = Self { port: free_port(), child: None };
        server.restart();
        server
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Starts the server again on the same port, with empty memory.
    pub(crate) fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        for _ in 0..20 {
            if self.spawn() {
                return;
            }
            // The port was taken between choosing and binding it: choose again.
            self.port = free_port();
        }
        panic!("redis-server could not bind a free port");
    }

    /// Starts redis-server; false if it exited at once (its port was taken).
    fn spawn(&mut self) -> bool {
        let mut child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| {
                panic!("cannot start redis-server ({err}); run scripts/test.sh, which installs it")
            });
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // Only our own child answering counts: another server may own the port.
            if child.try_wait().ok().flatten().is_some() {
                return false;
            }
            if self.cli(&["PING"]) == "PONG" && child.try_wait().ok().flatten().is_none() {
                self.child = Some(child);
                return true;
            }
            assert!(Instant::now() < deadline, "redis-server did not start on port {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server (SIGKILL: like a crash, nothing is saved).
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs redis-cli against this server and returns its trimmed output.
    pub(crate) fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .stderr(Stdio::null())
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
