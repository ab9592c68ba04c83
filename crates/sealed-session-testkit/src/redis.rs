//! Real redis-server, replica and redis-sentinel processes on free loopback
//! ports, with optional TLS from a throwaway CA; each is killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// A throwaway certificate authority and a server certificate it signed for
/// `127.0.0.1` and `localhost`, made with the `openssl` command.
pub struct TestCa {
    dir: tempfile::TempDir,
}

impl TestCa {
    /// Makes the CA and the server certificate in a new temporary directory.
    #[must_use]
    pub fn new() -> Self {
        Self::for_names("IP:127.0.0.1,DNS:localhost")
    }

    /// [`TestCa::new`], with a server certificate for `names` (a
    /// `subjectAltName`, such as `DNS:other.test`) instead.
    #[must_use]
    pub fn for_names(names: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let status = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap_or_else(|err| panic!("cannot run openssl ({err}); scripts/test.sh installs it"));
            assert!(status.success(), "openssl {args:?} failed");
        };
        std::fs::write(
            dir.path().join("server.ext"),
            format!(
                "subjectAltName={names}\nbasicConstraints=CA:FALSE\n\
                 keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
            ),
        )
        .unwrap();
        // A new P-256 key, unencrypted, in `key`; a certificate (or request) in `out`.
        let new_key = |key: &'static str, out: &'static str| {
            ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", out]
        };
        run(&[
            &["req", "-x509"][..],
            &new_key("ca.key", "ca.pem"),
            &["-days", "2", "-subj", "/CN=sealed-session test CA"],
        ]
        .concat());
        run(&[&["req"][..], &new_key("server.key", "server.csr"), &["-subj", "/CN=localhost"]].concat());
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ]);
        Self { dir }
    }

    /// The CA certificate (PEM), for clients.
    #[must_use]
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn file(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

/// How a [`RedisServer`] is started.
#[derive(Default, Clone)]
pub struct RedisOptions {
    /// Extra `--name value` arguments, e.g. `["--maxmemory-policy", "allkeys-lru"]`.
    pub args: Vec<String>,
    /// Serve TLS only (no plaintext port), with this CA's server certificate.
    pub tls: Option<(String, String, String)>,
}

impl RedisOptions {
    /// Adds extra arguments.
    #[must_use]
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    /// Serves TLS only, with `ca`'s server certificate.
    #[must_use]
    pub fn tls(mut self, ca: &TestCa) -> Self {
        self.tls = Some((ca.file("server.pem"), ca.file("server.key"), ca.file("ca.pem")));
        self
    }
}

/// A redis-server with no persistence, killed (SIGKILL) on drop.
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    options: RedisOptions,
    /// Its working directory (a replica's copy of the data lands there), in
    /// the command line so that a server left running can be found.
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts a plain redis-server.
    #[must_use]
    pub fn start() -> Self {
        Self::start_with(RedisOptions::default())
    }

    /// Starts a redis-server with `options`.
    #[must_use]
    pub fn start_with(options: RedisOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Self { port: free_port(), child: None, options, dir };
        for _ in 0..20 {
            if server.spawn() {
                return server;
            }
            // The port was taken between choosing and binding it: choose again.
            server.port = free_port();
        }
        panic!("redis-server could not bind a free port");
    }

    /// Starts a replica of `primary`, and waits until it is in sync.
    #[must_use]
    pub fn replica_of(primary: &RedisServer) -> Self {
        Self::replica_with(primary, &[])
    }

    /// As [`RedisServer::replica_of`], with more arguments (`args`).
    #[must_use]
    pub fn replica_with(primary: &RedisServer, args: &[&str]) -> Self {
        let options = RedisOptions::default().args(&["--replicaof", "127.0.0.1", &primary.port.to_string()]);
        let replica = Self::start_with(options.args(args));
        replica.wait_for_sync();
        replica
    }

    /// Waits (at most 10 s) until this replica's link to its primary is up.
    pub fn wait_for_sync(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.cli(&["INFO", "replication"]).contains("master_link_status:up") {
            assert!(Instant::now() < deadline, "replica on port {} did not sync", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis=HOST:PORT`, as the Redis store's log lines name the server
    /// they are about: what tests look for, so that another test's server
    /// logging the same fault in this process does not count.
    #[must_use]
    pub fn log_label(&self) -> String {
        let host = if self.options.tls.is_some() { "localhost" } else { "127.0.0.1" };
        format!("redis={host}:{}", self.port)
    }

    /// `redis://127.0.0.1:PORT/0`, or `rediss://localhost:PORT/0` with TLS.
    #[must_use]
    pub fn url(&self) -> String {
        if self.options.tls.is_some() {
            format!("rediss://localhost:{}/0", self.port)
        } else {
            format!("redis://127.0.0.1:{}/0", self.port)
        }
    }

    /// Starts the server again on the same port, with empty memory (what
    /// uses it knows no other); waits up to 10 s for the port to be free.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.spawn() {
            assert!(Instant::now() < deadline, "redis-server could not start again on port {}", self.port);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts redis-server; false if it exited at once or another server
    /// answers on its port (the port was taken).
    fn spawn(&mut self) -> bool {
        let port = self.port.to_string();
        // No persistence, as the store accepts it: no snapshots, and a
        // replica's copy from a full resynchronisation deleted once loaded.
        let mut args: Vec<String> =
            ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--rdb-del-sync-files", "yes"]
                .iter()
                .map(|a| (*a).to_owned())
                .collect();
        args.extend(["--dir".to_owned(), self.dir.path().display().to_string()]);
        match &self.options.tls {
            None => args.extend(["--port".to_owned(), port]),
            Some((cert, key, ca)) => args.extend([
                "--port".to_owned(),
                "0".to_owned(),
                "--tls-port".to_owned(),
                port,
                "--tls-cert-file".to_owned(),
                cert.clone(),
                "--tls-key-file".to_owned(),
                key.clone(),
                "--tls-ca-cert-file".to_owned(),
                ca.clone(),
                "--tls-auth-clients".to_owned(),
                "no".to_owned(),
            ]),
        }
        args.extend(self.options.args.iter().cloned());
        let mut child = spawn_quiet("redis-server", &args);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // Only our own child answering counts: another server may own the port.
            if child.try_wait().ok().flatten().is_some() {
                return false;
            }
            if self.cli(&["PING"]) == "PONG" {
                if is_process(&self.cli(&["INFO", "server"]), &child) {
                    self.child = Some(child);
                    return true;
                }
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            assert!(Instant::now() < deadline, "redis-server did not start on port {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (SIGKILL: like a crash, nothing is saved).
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Runs redis-cli against this server as the default user and returns
    /// its trimmed output.
    #[must_use]
    pub fn cli(&self, args: &[&str]) -> String {
        let mut command = Command::new("redis-cli");
        command.args(["-p", &self.port.to_string()]);
        if let Some((_, _, ca)) = &self.options.tls {
            command.args(["--tls", "--cacert", ca]);
        }
        cli(command, args)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn kill(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Starts `program` with `args` and no output, or panics saying how to
/// install it.
fn spawn_quiet(program: &str, args: &[impl AsRef<std::ffi::OsStr>]) -> Child {
    Command::new(program).args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap_or_else(
        |err| panic!("cannot start {program} ({err}); run scripts/test.sh, which installs it"),
    )
}

/// Whether `INFO server` (its text `info`) came from `child`'s process.
fn is_process(info: &str, child: &Child) -> bool {
    info.lines().any(|line| line.trim() == format!("process_id:{}", child.id()))
}

fn cli(mut command: Command, args: &[&str]) -> String {
    let output = command.args(args).stderr(Stdio::null()).output().expect("redis-cli");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A redis-sentinel monitoring one primary as service `name`, with a
/// quorum of 1 and fast failure detection (`down_after`), killed on drop.
pub struct Sentinel {
    port: u16,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Sentinel {
    /// Starts a sentinel for `primary` as service `name`, and waits until it
    /// knows the primary's replicas (if any are connected).
    #[must_use]
    pub fn start(name: &str, primary: &RedisServer, down_after: Duration) -> Self {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            let config = dir.path().join("sentinel.conf");
            std::fs::write(
                &config,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                     sentinel monitor {name} 127.0.0.1 {primary} 1\n\
                     sentinel down-after-milliseconds {name} {down}\n\
                     sentinel failover-timeout {name} 4000\n\
                     sentinel parallel-syncs {name} 1\n",
                    dir = dir.path().display(),
                    primary = primary.port(),
                    down = down_after.as_millis(),
                ),
            )
            .unwrap();
            let child = spawn_quiet("redis-sentinel", &[config]);
            let mut sentinel = Self { port, child: Some(child), _dir: dir };
            if sentinel.wait_until_up() {
                return sentinel;
            }
            kill(&mut sentinel.child);
        }
        panic!("redis-sentinel could not bind a free port");
    }

    fn wait_until_up(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_some()) {
                return false;
            }
            if self.cli(&["PING"]) == "PONG" {
                // Ours, not another server that owns the port.
                let info = self.cli(&["INFO", "server"]);
                return self.child.as_ref().is_some_and(|child| is_process(&info, child));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The sentinel's port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the primary the sentinel currently names for `name`.
    #[must_use]
    pub fn primary_port(&self, name: &str) -> Option<u16> {
        let reply = self.cli(&["SENTINEL", "get-master-addr-by-name", name]);
        reply.lines().nth(1)?.trim().parse().ok()
    }

    /// Waits (at most `limit`) until the sentinel names a primary other
    /// than `old_port`; returns its port.
    #[must_use]
    pub fn wait_for_failover(&self, name: &str, old_port: u16, limit: Duration) -> Option<u16> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            match self.primary_port(name) {
                Some(port) if port != old_port => return Some(port),
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        None
    }

    /// Waits (at most 10 s) until the sentinel lists `count` replicas for `name`.
    pub fn wait_for_replicas(&self, name: &str, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let replicas = self.cli(&["SENTINEL", "replicas", name]);
            if replicas.matches("slave,").count() + replicas.lines().filter(|l| *l == "slave").count()
                >= count
            {
                return;
            }
            assert!(Instant::now() < deadline, "sentinel does not see {count} replicas: {replicas}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs redis-cli against the sentinel.
    #[must_use]
    pub fn cli(&self, args: &[&str]) -> String {
        let mut command = Command::new("redis-cli");
        command.args(["-p", &self.port.to_string()]);
        cli(command, args)
    }

    /// Kills the sentinel.
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Writes a Redis ACL file line for `user` with `password` and `rules`
/// (for example `~* &* +@all -config`), for `--aclfile`.
#[must_use]
pub fn acl_file(dir: &Path, users: &[(&str, &str, &str)]) -> PathBuf {
    let path = dir.join("users.acl");
    let mut text = String::from("user default on nopass ~* &* +@all\n");
    for (user, password, rules) in users {
        text.push_str(&format!("user {user} on >{password} {rules}\n"));
    }
    std::fs::write(&path, text).unwrap();
    path
}
