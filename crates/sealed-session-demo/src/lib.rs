//! The sealed-session demo app, as a library: its routes, its session data
//! and its start-up (data directory, keyring, revocation store). The binary
//! `sealed-session-demo` serves it; tests and the load benchmark build it
//! here.

#![forbid(unsafe_code)]

pub mod actix_app;
pub mod axum_app;
mod logic;
pub mod page;
pub mod users;

use std::io::Write as _;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

use sealed_session::web::{
    AuditEvent, AuditKind, AuditSink, ClearSiteData, DeviceBinding, LimitPolicy, WebConfig, WebConfigBuilder,
    WebConfigError,
};
use sealed_session::{
    CookieSpec, Keyring, KeyringError, KeyringWatcher, RevocationStore, Sealer, SealerBuilder, SharedStore,
};
use sealed_session_stores::StoreUrlError;
use serde::{Deserialize, Serialize};

pub use axum_app::{app, security_headers};

/// What the demo keeps in each session.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Profile {
    /// Shown on the page; the signed-in user changes it with `POST /profile`.
    pub display_name: String,
    /// Filled with `POST /cart`, before or after signing in.
    pub cart: Vec<String>,
}

/// How long a "remember me" session lives: 30 days.
pub const REMEMBER_FOR: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);
/// How long a "remember me" session survives without a visit: 7 days.
pub const REMEMBER_IDLE: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// How recent a sign-in or password check must be for `GET /settings`
/// (the demo's `--sudo-window`): 10 minutes.
pub const SUDO_WINDOW: std::time::Duration = std::time::Duration::from_secs(600);

/// The most sessions a user has at once (the demo's `--max-sessions`): a
/// login beyond it ends the user's oldest session.
pub const MAX_SESSIONS: usize = 10;

/// The most items a cart holds.
pub const MAX_CART_ITEMS: usize = 20;

/// The headers every response of the demo carries, on either framework:
/// a strict content security policy, no MIME sniffing, no referrer, no
/// framing (also for browsers without CSP's `frame-ancestors`), a browsing
/// context of its own, and no reading of its answers by other origins'
/// pages (its JSON included). Serve it over HTTPS with
/// `Strict-Transport-Security` in production (the demo runs on plain
/// HTTP on loopback, where browsers treat it as secure).
pub const SECURITY_HEADERS: [(&str, &str); 6] = [
    (
        "content-security-policy",
        "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
];

/// How `GET /style.css` may be cached: by anyone, for ten minutes. The
/// route runs behind the session layer like every other, so a response of
/// it that carries a cookie (a re-issued session, a removal) gets
/// `no-store` instead.
pub const STYLE_CACHE_CONTROL: &str = "public, max-age=600";

/// The `Content-Type` of `GET /metrics`: Prometheus's text format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The Prometheus exporter, once [`install_metrics`] ran.
static METRICS: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
    std::sync::OnceLock::new();

/// Makes the library's metrics (`sealed_session_*`) collectable at
/// `GET /metrics`, in Prometheus's text format. Call it once, before
/// [`Setup::open`], so that the keyring's series are there from the start.
/// A demo: a production server serves metrics on an internal port only.
///
/// # Errors
/// If another metrics recorder is already installed.
pub fn install_metrics() -> Result<(), String> {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(|err| format!("cannot install the metrics recorder: {err}"))?;
    let _ = METRICS.set(handle);
    Ok(())
}

/// The metrics as Prometheus text; empty if [`install_metrics`] never ran.
pub(crate) fn metrics_text() -> String {
    METRICS.get().map(metrics_exporter_prometheus::PrometheusHandle::render).unwrap_or_default()
}

/// The body of `GET /api/session`: the current session as JSON.
#[derive(Serialize)]
pub struct SessionJson {
    session_id: String,
    user: Option<String>,
    display_name: String,
    cart: Vec<String>,
    issued_at: Option<String>,
    expires_at: Option<String>,
    idle_expires_at: String,
    key_id: u32,
    epoch: u64,
    csrf_token: String,
    device_bound: bool,
}

impl SessionJson {
    /// The JSON of `session` as opened under the key `key_id`, with its idle
    /// deadline and CSRF token (the load benchmark's baseline route builds
    /// the same body without the session layer).
    #[must_use]
    pub fn new(
        session: &sealed_session::Session<Profile>,
        key_id: u32,
        idle_expires_at: time::OffsetDateTime,
        csrf_token: String,
    ) -> Self {
        Self {
            session_id: session.id().to_hex(),
            user: session.user_id().map(str::to_owned),
            display_name: session.data().display_name.clone(),
            cart: session.data().cart.clone(),
            issued_at: session.issued_at().map(page::timestamp),
            expires_at: session.expires_at().map(page::timestamp),
            idle_expires_at: page::timestamp(idle_expires_at),
            key_id,
            epoch: session.epoch(),
            csrf_token,
            device_bound: session.is_device_bound(),
        }
    }
}

/// Where the demo keeps its keyring and revocations.
#[derive(Clone)]
pub struct Setup {
    /// The data directory, created (mode 0700) if missing; one that other
    /// users may enter is warned of.
    pub data_dir: PathBuf,
    /// The keyring file; by default `keyring.toml` in the data directory.
    pub keyring: Option<PathBuf>,
    /// The revocation store URL; by default `sqlite:` a file in the data
    /// directory. The store is the session registry too.
    pub store: Option<String>,
    /// The most sessions a user may have; a login beyond it ends their
    /// oldest. By default [`MAX_SESSIONS`].
    pub max_sessions: Option<usize>,
    /// How long a device-bound session cookie lives after each proof of the
    /// browser's key; by default
    /// [`DEFAULT_BOUND_LIFETIME`](sealed_session::web::DEFAULT_BOUND_LIFETIME).
    pub bound_lifetime: Option<std::time::Duration>,
}

/// The store's URL as [`Setup::store_url_for_display`] shows it: without
/// credentials.
impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setup")
            .field("data_dir", &self.data_dir)
            .field("keyring", &self.keyring)
            .field("store", &self.store.as_ref().map(|_| self.store_url_for_display()))
            .field("max_sessions", &self.max_sessions)
            .field("bound_lifetime", &self.bound_lifetime)
            .finish()
    }
}

/// The demo could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A file or directory could not be created or read.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The keyring file is not valid, or no key could be generated.
    #[error("keyring: {0}")]
    Keyring(#[from] KeyringError),
    /// The revocation store could not be opened.
    #[error("revocation store: {0}")]
    Store(#[from] StoreUrlError),
    /// The session settings could not be built.
    #[error(transparent)]
    Config(#[from] WebConfigError),
}

/// Creates the data directory (mode 0700) if it is missing; the mode of
/// one that other users may enter, which the caller warns of: the session
/// records in its SQLite store (user IDs, browsers) are to be as private
/// as the audit log beside them. (Not made private in passing:
/// `--data-dir /tmp` would lock every other user out of `/tmp`.)
fn private_dir(dir: &Path) -> Result<Option<u32>, StartError> {
    use std::os::unix::fs::PermissionsExt as _;
    let io = |action| move |source| StartError::Io { action, path: dir.to_owned(), source };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io("cannot create the data directory"))?;
    let mode = std::fs::metadata(dir).map_err(io("cannot read the data directory"))?.permissions().mode();
    Ok((mode & 0o077 != 0).then_some(mode & 0o7777))
}

impl Setup {
    /// The store URL in use.
    #[must_use]
    pub fn store_url(&self) -> String {
        self.store.clone().unwrap_or_else(|| {
            format!("sqlite:{}?create=true", self.data_dir.join("revocations.sqlite").display())
        })
    }

    /// The store URL without its credentials (`user:password@` and the
    /// query, which may hold a Sentinel password), for logs.
    #[must_use]
    pub fn store_url_for_display(&self) -> String {
        let url = self.store_url();
        let url = url.split_once('?').map_or(url.as_str(), |(base, _)| base).to_owned();
        match url.split_once("://") {
            // Credentials end at the last `@`: a password may hold a `/`
            // (the store's parsers take it so).
            Some((scheme, rest)) => match rest.rsplit_once('@') {
                Some((_, host_and_path)) => format!("{scheme}://***@{host_and_path}"),
                None => url,
            },
            None => url,
        }
    }

    /// The keyring file in use.
    #[must_use]
    pub fn keyring_path(&self) -> PathBuf {
        self.keyring.clone().unwrap_or_else(|| self.data_dir.join("keyring.toml"))
    }

    /// Creates what is missing (saying so on stdout) and opens the store.
    /// The keyring follows its file for as long as the returned watcher
    /// lives. Needs a tokio runtime.
    ///
    /// # Errors
    /// [`StartError`].
    pub async fn open(&self) -> Result<(WebConfig<SharedStore>, KeyringWatcher), StartError> {
        if let Some(mode) = private_dir(&self.data_dir)? {
            tracing::warn!(
                "the data directory {} is open to other users (mode {mode:o}): its session records (user IDs, \
                 browsers) are readable by them; use a directory of your own (mode 0700)",
                self.data_dir.display()
            );
        }
        let keyring_path = self.keyring_path();
        load_or_create_keyring(&keyring_path)?;
        let watcher = KeyringWatcher::builder(&keyring_path).start()?;
        let (store, registry) = sealed_session_stores::open_with_registry(&self.store_url()).await?;
        let mut binding = DeviceBinding::default();
        if let Some(lifetime) = self.bound_lifetime {
            binding = binding.bound_lifetime(lifetime);
        }
        let sealer = Sealer::builder(watcher.keyring().clone()).remember_me(REMEMBER_FOR, REMEMBER_IDLE);
        let audit = AuditFile::open(&self.audit_log_path())?;
        let max_sessions = self.max_sessions.unwrap_or(MAX_SESSIONS);
        let config = builder(sealer, store, binding)
            .audit(audit)
            .session_registry(registry)
            .session_limit(max_sessions, LimitPolicy::EndOldest)
            .build()?;
        Ok((config, watcher))
    }

    /// The audit log: one JSON line per event, appended to
    /// `DATA_DIR/audit.jsonl` (mode 0600).
    #[must_use]
    pub fn audit_log_path(&self) -> PathBuf {
        self.data_dir.join("audit.jsonl")
    }
}

/// The demo's audit log: each event as one line of JSON, appended to a
/// file, written at once (a demo; a busy server would queue them), up to
/// [`MAX_AUDIT_LOG_LEN`]: any client can have refusals recorded (a forged
/// cookie, a cross-site post, a made-up device binding), so the file must
/// not fill the disk, and those stop [`REFUSAL_HEADROOM`] short of it
/// ([`audit_limit`]), so that logins, logouts and revocations still are.
/// A file rotated by truncation (`copytruncate`) takes events again; after
/// one rotated by renaming, events go to a new file at the path.
struct AuditFile(std::sync::Mutex<AuditLog>);

/// The file, how long it is, and whether it was said to be full.
struct AuditLog {
    path: std::path::PathBuf,
    file: std::fs::File,
    /// The device and inode of `file`: once `path` names another file, or
    /// none (a rotation by renaming), the log is opened again there.
    id: (u64, u64),
    len: u64,
    said_full: bool,
    /// When the path was last looked at for a rotation (at most once a
    /// second: any client can have events recorded), and whether opening
    /// it again failed since it was last opened (said once).
    looked: Option<std::time::Instant>,
    reopen_failed: bool,
}

/// The size past which the demo's audit log takes no more events (64 MiB;
/// a server would rotate it).
const MAX_AUDIT_LOG_LEN: u64 = 64 << 20;

/// How far short of [`MAX_AUDIT_LOG_LEN`] refusals stop (8 MiB).
const REFUSAL_HEADROOM: u64 = 8 << 20;

impl AuditFile {
    fn open(path: &Path) -> Result<Self, StartError> {
        use std::os::unix::fs::MetadataExt as _;
        let (file, meta) = open_audit_log(path)?;
        let log = AuditLog {
            path: path.to_owned(),
            file,
            id: (meta.dev(), meta.ino()),
            len: meta.len(),
            said_full: false,
            looked: None,
            reopen_failed: false,
        };
        Ok(Self(std::sync::Mutex::new(log)))
    }
}

/// Opens the audit log at `path` to append to it, made if missing, mode
/// 0600: a regular file, never one a symbolic link names, and never a FIFO
/// (whose open would wait for a reader, every request's event behind it).
fn open_audit_log(path: &Path) -> Result<(std::fs::File, std::fs::Metadata), StartError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let cannot =
        |source| StartError::Io { action: "cannot open the audit log", path: path.to_owned(), source };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    if !meta.is_file() {
        return Err(cannot(std::io::Error::other("not a regular file")));
    }
    // It names users: one made readable to others (a log rotation's
    // `create 0644`, say) is closed again.
    if std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o077 != 0 {
        let closed = file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600));
        closed.map_err(|source| StartError::Io {
            action: "cannot close to other users (chmod 600 it, or remove it) the audit log",
            path: path.to_owned(),
            source,
        })?;
        tracing::warn!(path = %path.display(), "the audit log was open to other users: it is mode 0600 again");
    }
    Ok((file, meta))
}

impl AuditLog {
    /// Appends `line` if the file stays within `limit`; whether it did.
    fn append(&mut self, line: &str, limit: u64) -> bool {
        self.follow_rotation();
        let size = line.len() as u64;
        if self.len.saturating_add(size) > limit {
            // Rotated meanwhile? Its length on disk says.
            let on_disk = self.file.metadata().map_or(self.len, |meta| meta.len());
            if on_disk < self.len {
                self.said_full = false;
            }
            self.len = on_disk;
            if self.len.saturating_add(size) > limit {
                if !self.said_full {
                    tracing::error!(
                        "the audit log is full ({} bytes): later refusals are not recorded, nor, {} bytes on, \
                         any event; rotate it",
                        MAX_AUDIT_LOG_LEN - REFUSAL_HEADROOM,
                        REFUSAL_HEADROOM
                    );
                    self.said_full = true;
                }
                return false;
            }
        }
        match self.file.write_all(line.as_bytes()) {
            Ok(()) => {
                self.len = self.len.saturating_add(size);
                true
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot write to the audit log");
                false
            }
        }
    }

    /// After a rotation by renaming (logrotate's default), the path names
    /// a new file, or none: events go there, not to the renamed one (which
    /// a compressing rotation deletes). Looked at once a second at most.
    fn follow_rotation(&mut self) {
        use std::os::unix::fs::MetadataExt as _;
        let now = std::time::Instant::now();
        if self.looked.is_some_and(|looked| now.duration_since(looked) < std::time::Duration::from_secs(1)) {
            return;
        }
        self.looked = Some(now);
        let at_path = std::fs::symlink_metadata(&self.path).ok().map(|meta| (meta.dev(), meta.ino()));
        if at_path == Some(self.id) {
            return;
        }
        match open_audit_log(&self.path) {
            Ok((file, meta)) => {
                tracing::info!(path = %self.path.display(), "the audit log was rotated: events go to the new file");
                self.file = file;
                self.id = (meta.dev(), meta.ino());
                self.len = meta.len();
                self.said_full = false;
                self.reopen_failed = false;
            }
            Err(err) if !std::mem::replace(&mut self.reopen_failed, true) => {
                tracing::warn!(error = %err, "the audit log was rotated, and cannot be opened again: events go to the old file");
            }
            Err(_) => {}
        }
    }
}

impl AuditSink for AuditFile {
    fn record(&self, event: &AuditEvent) {
        let line = format!("{}\n", event.to_json());
        let limit = audit_limit(&event.kind, event.user_id.as_deref());
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).append(&line, limit);
    }
}

/// How long the audit log may be for an event of `kind` about `user`'s
/// session: what any client can have recorded without signing in (a
/// refused cookie or cross-site post, and any event of no user, such as a
/// device binding refused for an unreadable identifier) stops
/// [`REFUSAL_HEADROOM`] short of [`MAX_AUDIT_LOG_LEN`].
fn audit_limit(kind: &AuditKind, user: Option<&str>) -> u64 {
    let anyone =
        user.is_none() || matches!(kind, AuditKind::SessionRefused { .. } | AuditKind::CsrfRefused { .. });
    if anyone {
        MAX_AUDIT_LOG_LEN - REFUSAL_HEADROOM
    } else {
        MAX_AUDIT_LOG_LEN
    }
}

/// The demo's session settings, which both frameworks serve: the session
/// cookie kept when the browser closes only with "remember me", the webhook
/// open to other sites' posts, device-bound sessions offered at every
/// login ([`DeviceBinding::default`]), and a logout that asks the browser
/// to clear the site's cache and storage.
///
/// # Errors
/// [`WebConfigError`] if `sealer`'s settings are inconsistent.
pub fn config<S: RevocationStore>(sealer: SealerBuilder, store: S) -> Result<WebConfig<S>, WebConfigError> {
    config_with(sealer, store, DeviceBinding::default())
}

/// [`config`] with device binding as `binding` says.
///
/// # Errors
/// As [`config`].
pub fn config_with<S: RevocationStore>(
    sealer: SealerBuilder,
    store: S,
    binding: DeviceBinding,
) -> Result<WebConfig<S>, WebConfigError> {
    builder(sealer, store, binding).build()
}

fn builder<S: RevocationStore>(
    sealer: SealerBuilder,
    store: S,
    binding: DeviceBinding,
) -> WebConfigBuilder<S> {
    WebConfig::builder(sealer, store)
        .cookie(CookieSpec::default().browser_session())
        .csrf_exempt("/webhook")
        .device_bound_sessions(binding)
        .clear_site_data_on_logout([ClearSiteData::Cache, ClearSiteData::Storage])
}

/// Loads the keyring at `path`, or creates one there (mode 0600) if there is
/// none. It is written to a temporary file and linked into place, so that
/// two instances starting at once never read a half-written keyring, and an
/// existing one is never overwritten.
fn load_or_create_keyring(path: &Path) -> Result<Keyring, StartError> {
    let io = |action, source| StartError::Io { action, path: path.to_owned(), source };
    if path.exists() {
        return Ok(Keyring::load(path)?);
    }
    let keyring = Keyring::generate()?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    // Mode 0600, a fresh random name, removed if anything below fails.
    let mut temp = tempfile::Builder::new()
        .prefix(".keyring-")
        .tempfile_in(dir)
        .map_err(|err| io("cannot write a new keyring next to", err))?;
    temp.write_all(keyring.to_toml_string().as_bytes())
        .and_then(|()| temp.as_file().sync_all())
        .map_err(|err| io("cannot write a new keyring next to", err))?;
    match temp.persist_noclobber(path) {
        Ok(_) => {
            println!(
                "created a new keyring at {} (mode 0600): keep it secret and back it up",
                path.display()
            );
            Ok(keyring)
        }
        // Another instance created it first: use theirs.
        Err(err) if err.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(Keyring::load(path)?),
        Err(err) => Err(io("cannot create the keyring", err.error)),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use axum::body::Body;
    use axum::http::{header, Request, StatusCode};
    use sealed_session::{Keyring, MemoryStore, Sealer};
    use tower::ServiceExt as _;

    use super::{
        app, audit_limit, config, load_or_create_keyring, AuditFile, MAX_AUDIT_LOG_LEN, REFUSAL_HEADROOM,
        SUDO_WINDOW,
    };

    fn demo() -> axum::Router {
        app(config(Sealer::builder(Keyring::generate().unwrap()), MemoryStore::new()).unwrap(), SUDO_WINDOW)
    }

    /// Any client can have refusals recorded: they stop short of the
    /// limit, other events at it, and both start again once the file is
    /// rotated by truncation.
    #[test]
    fn the_audit_log_stops_at_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let line = "{\"event\":\"csrf_refused\"}\n";
        let refusals = MAX_AUDIT_LOG_LEN - REFUSAL_HEADROOM;
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(refusals - line.len() as u64).unwrap();
        let audit = AuditFile::open(&path).unwrap();
        let mut log = audit.0.lock().unwrap();
        assert!(log.append(line, refusals), "room for one refusal");
        assert!(!log.append(line, refusals), "not two");
        assert!(log.append(line, MAX_AUDIT_LOG_LEN), "room for other events");
        drop(log);
        file.set_len(MAX_AUDIT_LOG_LEN - 1).unwrap();
        let audit = AuditFile::open(&path).unwrap();
        let mut log = audit.0.lock().unwrap();
        assert!(!log.append(line, MAX_AUDIT_LOG_LEN), "none past the limit");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), MAX_AUDIT_LOG_LEN - 1);
        // Rotated by truncation: written again.
        file.set_len(0).unwrap();
        assert!(log.append(line, refusals));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), line.len() as u64);
    }

    /// An audit log in a new directory that took the line `one`, then was
    /// renamed to `audit.jsonl.1` (rotated as logrotate does by default).
    fn rotated_log() -> (tempfile::TempDir, AuditFile) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let audit = AuditFile::open(&path).unwrap();
        assert!(audit.0.lock().unwrap().append("one\n", MAX_AUDIT_LOG_LEN));
        std::fs::rename(&path, dir.path().join("audit.jsonl.1")).unwrap();
        (dir, audit)
    }

    /// A log rotated by renaming (logrotate's default): the next event goes
    /// to a new file at the path, mode 0600, not to the renamed one.
    #[test]
    fn after_a_rotation_by_renaming_events_go_to_the_new_file() {
        let (dir, audit) = rotated_log();
        let (path, rotated) = (dir.path().join("audit.jsonl"), dir.path().join("audit.jsonl.1"));
        let mut log = audit.0.lock().unwrap();
        assert!(log.append("two\n", MAX_AUDIT_LOG_LEN), "looked at once a second: not yet");
        log.looked = None; // a second later
        assert!(log.append("three\n", MAX_AUDIT_LOG_LEN));
        assert!(log.append("four\n", MAX_AUDIT_LOG_LEN));
        assert_eq!(std::fs::read_to_string(&rotated).unwrap(), "one\ntwo\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\nfour\n");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    /// A FIFO or a symbolic link put at the path after a rotation is not
    /// opened (a FIFO's open would wait for a reader, every event behind
    /// it; a link could aim the log anywhere): events go on into the file
    /// in use.
    #[test]
    fn a_fifo_or_a_link_at_the_path_is_not_opened() {
        let (dir, audit) = rotated_log();
        let (path, rotated) = (dir.path().join("audit.jsonl"), dir.path().join("audit.jsonl.1"));
        let mut log = audit.0.lock().unwrap();
        let made = std::process::Command::new("mkfifo").arg(&path).status().unwrap();
        assert!(made.success());
        log.looked = None;
        assert!(log.append("two\n", MAX_AUDIT_LOG_LEN));
        std::fs::remove_file(&path).unwrap();
        let target = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        log.looked = None;
        assert!(log.append("three\n", MAX_AUDIT_LOG_LEN));
        assert_eq!(std::fs::read_to_string(&rotated).unwrap(), "one\ntwo\nthree\n");
        assert!(!target.exists(), "the link's target was made");
    }

    /// The audit log names users: an existing one open to other users is
    /// closed again (mode 0600) when the demo starts.
    #[test]
    fn an_audit_log_open_to_others_is_closed_again() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let _audit = AuditFile::open(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    /// What any client can have recorded without signing in stops at the
    /// refusals' limit: refused cookies and cross-site posts, and every
    /// event of no user (a `POST /dbsc/refresh` with a made-up identifier
    /// ends no one's binding); what only a signed-in user can cause goes on.
    #[test]
    fn what_anyone_can_cause_stops_at_the_refusals_limit() {
        use sealed_session::web::AuditKind;
        let refusals = MAX_AUDIT_LOG_LEN - REFUSAL_HEADROOM;
        let unreadable = AuditKind::DeviceBindingEnded { reason: "invalid_identifier" };
        assert_eq!(audit_limit(&unreadable, None), refusals);
        assert_eq!(audit_limit(&AuditKind::Logout, None), refusals, "an anonymous session's");
        assert_eq!(audit_limit(&AuditKind::SessionRefused { reason: "expired" }, Some("alice")), refusals);
        assert_eq!(audit_limit(&AuditKind::CsrfRefused { reason: "cross_site" }, Some("alice")), refusals);
        assert_eq!(audit_limit(&AuditKind::Login { remembered: false }, Some("alice")), MAX_AUDIT_LOG_LEN);
        assert_eq!(audit_limit(&unreadable, Some("alice")), MAX_AUDIT_LOG_LEN);
    }

    /// The data directory is created private, and one open to others is
    /// warned of, not changed.
    #[test]
    fn the_data_directory_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let parent = tempfile::tempdir().unwrap();
        let mode = |dir: &std::path::Path| std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
        let missing = parent.path().join("new/data");
        assert_eq!(super::private_dir(&missing).unwrap(), None);
        assert_eq!(mode(&missing), 0o700);
        let open = parent.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(super::private_dir(&open).unwrap(), Some(0o755), "warned of");
        assert_eq!(mode(&open), 0o755, "left as it was");
    }

    #[tokio::test]
    async fn every_response_carries_the_security_headers_and_is_not_cached() {
        let app = demo();
        for (path, status) in [("/", StatusCode::OK), ("/api/session", StatusCode::UNAUTHORIZED)] {
            let response =
                app.clone().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
            assert_eq!(response.status(), status, "{path}");
            let headers = response.headers();
            let csp = headers.get(header::CONTENT_SECURITY_POLICY).unwrap().to_str().unwrap();
            assert!(
                csp.starts_with("default-src 'none';") && csp.contains("frame-ancestors 'none'"),
                "{csp}"
            );
            assert_eq!(headers.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(), "nosniff");
            assert_eq!(headers.get(header::CACHE_CONTROL).unwrap(), "no-store", "{path}");
        }
    }

    #[tokio::test]
    async fn only_the_webhook_takes_a_cross_site_post() {
        let app = demo();
        for (path, status) in [("/webhook", StatusCode::OK), ("/cart", StatusCode::FORBIDDEN)] {
            let request = Request::post(path)
                .header("sec-fetch-site", "cross-site")
                .header("origin", "https://psp.example")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from("item=x"))
                .unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), status, "{path}");
            assert!(response.headers().get(header::SET_COOKIE).is_none(), "{path}: no cookie");
        }
    }

    #[test]
    fn the_store_url_is_shown_without_credentials() {
        let shown = |store: &str| {
            super::Setup {
                data_dir: "d".into(),
                keyring: None,
                store: Some(store.into()),
                bound_lifetime: None,
                max_sessions: None,
            }
            .store_url_for_display()
        };
        assert_eq!(shown("rediss://app:s3cret@redis:6380/0"), "rediss://***@redis:6380/0");
        assert_eq!(
            shown("redis+sentinel://:pw@h1:26379,h2/svc?sentinel_password=x"),
            "redis+sentinel://***@h1:26379,h2/svc"
        );
        assert_eq!(shown("redis://127.0.0.1:6379/0"), "redis://127.0.0.1:6379/0");
        assert_eq!(shown("redis+sentinel://:pa/ss@h:26379/svc"), "redis+sentinel://***@h:26379/svc");
        // Debug keeps the URL's credentials out too.
        let setup = super::Setup {
            data_dir: "d".into(),
            keyring: None,
            store: Some("rediss://app:s3cret@redis:6380/0".into()),
            bound_lifetime: None,
            max_sessions: None,
        };
        assert!(!format!("{setup:?}").contains("s3cret"), "{setup:?}");
        assert_eq!(shown("sqlite:/var/x.sqlite?create=true"), "sqlite:/var/x.sqlite");
    }

    #[test]
    fn the_keyring_is_created_once_private_and_then_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.toml");
        // Leftovers of a crashed start do not get in the way.
        std::fs::write(dir.path().join(".keyring-leftover"), "junk").unwrap();

        let created = load_or_create_keyring(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let loaded = load_or_create_keyring(&path).unwrap();
        assert_eq!(
            *created.to_toml_string(),
            *loaded.to_toml_string(),
            "the second start reuses the keyring"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "no temporary file is left: {names:?}");
    }
}

/// The repository README's examples (core, axum and actix-web) run as
/// doctests here, in the one crate that depends on everything they use.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
