//! A real PostgreSQL server: `initdb` in a temporary directory, run as the
//! `postgres` user on a free loopback port, killed (SIGKILL) on drop.

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// A PostgreSQL cluster of its own, with trust authentication for the
/// `postgres` user on loopback.
pub struct PostgresServer {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    bin: PathBuf,
    user: (u32, u32),
}

/// The uid and gid of the `postgres` user (PostgreSQL refuses to run as root).
fn postgres_user() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let line = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .unwrap_or_else(|| panic!("no postgres user; run scripts/test.sh, which installs postgresql"));
    let fields: Vec<&str> = line.split(':').collect();
    (fields[2].parse().unwrap(), fields[3].parse().unwrap())
}

/// The directory of Debian's PostgreSQL programs (initdb is not on PATH there).
fn bindir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap_or_else(|err| {
            panic!("no /usr/lib/postgresql ({err}); run scripts/test.sh, which installs postgresql")
        })
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("an installed PostgreSQL with initdb")
}

impl PostgresServer {
    /// Creates a cluster and starts it.
    #[must_use]
    pub fn start() -> Self {
        Self::made_by(
            "initdb",
            &["-D", "data", "-U", "postgres", "--auth=trust", "--no-instructions", "-E", "UTF8"],
        )
    }

    /// A standby of `primary`: a base backup of it, streaming its changes
    /// (`pg_basebackup -R`), started on a port of its own.
    #[must_use]
    pub fn standby_of(primary: &PostgresServer) -> Self {
        let port = primary.port.to_string();
        Self::made_by(
            "pg_basebackup",
            &["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-D", "data", "-R"],
        )
    }

    /// A server on the data directory `data` that `program` makes with
    /// `args` in a new directory of the `postgres` user's, started.
    fn made_by(program: &str, args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let user = postgres_user();
        std::os::unix::fs::chown(dir.path(), Some(user.0), Some(user.1)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let bin = bindir();
        let status = Command::new(bin.join(program))
            .args(args)
            .current_dir(dir.path())
            .uid(user.0)
            .gid(user.1)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|err| panic!("run {program}: {err}"));
        assert!(status.success(), "{program} failed");
        // Its server is in no group of its own; its command line names `dir`.
        crate::clean_up_at_exit(dir.path(), None);
        let mut server = Self { dir, port: 0, child: None, bin, user };
        server.restart();
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (again, on the same port if it is still free),
    /// keeping its data.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let deadline = Instant::now() + Duration::from_secs(30);
        let first = self.port == 0;
        if first {
            self.port = free_port();
        }
        loop {
            if self.spawn() {
                return;
            }
            // The port was taken (a first start chooses another), or the
            // killed server's backends still hold its shared memory: try
            // again shortly.
            if first {
                self.port = free_port();
            }
            assert!(Instant::now() < deadline, "PostgreSQL would not start on port {}", self.port);
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn spawn(&mut self) -> bool {
        let socket_dir = self.dir.path().display().to_string();
        let mut child = Command::new(self.bin.join("postgres"))
            .arg("-D")
            .arg(self.data())
            .args(["-p", &self.port.to_string(), "-k", &socket_dir, "-c", "listen_addresses=127.0.0.1"])
            .uid(self.user.0)
            .gid(self.user.1)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postgres");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if child.try_wait().ok().flatten().is_some() {
                return false;
            }
            // Only our own server answering counts: another may own the port.
            if let Some(directory) = self.psql_status("SELECT current_setting('data_directory')") {
                let ours = std::fs::canonicalize(&directory).ok() == std::fs::canonicalize(self.data()).ok();
                if ours {
                    self.child = Some(child);
                    return true;
                }
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the server (SIGKILL: like a crash).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn psql_status(&self, sql: &str) -> Option<String> {
        let output = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", "-d", "postgres"])
            .args(["-Atq", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// Runs `sql` with psql as `postgres`; its output, trimmed.
    ///
    /// # Panics
    /// If psql fails.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_status(sql).unwrap_or_else(|| panic!("psql failed: {sql}"))
    }

    /// The data directory's path, for tests that break it.
    #[must_use]
    pub fn data_dir(&self) -> PathBuf {
        self.data()
    }

    /// The directory holding the server's socket and data.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.kill();
    }
}
