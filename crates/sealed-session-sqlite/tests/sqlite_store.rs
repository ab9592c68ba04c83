//! The SQLite store on real files: conformance, durability (the settings
//! read back, `kill -9`), data loss, a file deleted or replaced under a
//! running store, opening by URL, and an application's own sqlx pool.
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use sealed_session::SessionRegistry;
use sealed_session::{ManualClock, Revocation, RevocationStore, Session, StoreError, Verifier, VerifyError};
use sealed_session_sqlite::{SqliteOpenError, SqliteOptions, SqliteStore};
use sealed_session_testkit::{sealer, within};

/// Stores in these tests run on a manual clock: nothing real expires.
const T0: i64 = 1_800_000_000;

/// A server on a store at `path` (created if missing). The clock moves a
/// second on, past the generation the store may have begun: logins on a
/// clock that does not move cannot wait for it.
async fn server(path: &Path, clock: &ManualClock) -> Verifier<SqliteStore> {
    let store = SqliteOptions::new(path).create_if_missing(true).clock(clock.clone()).open().await.unwrap();
    clock.advance(Duration::from_secs(1));
    Verifier::new(sealer(3, clock), store)
}

async fn login(verifier: &Verifier<SqliteStore>, user: &str) -> String {
    verifier.sealer().seal(&verifier.login(user, ()).await.unwrap()).unwrap()
}

/// A server on a new store at `dir/r.sqlite3`, and alice's token, which it
/// opens (so that the store's cache holds her state too).
async fn signed_in(dir: &Path) -> (PathBuf, ManualClock, Verifier<SqliteStore>, String) {
    let path = dir.join("r.sqlite3");
    let clock = ManualClock::at_unix(T0);
    let verifier = server(&path, &clock).await;
    let token = login(&verifier, "alice").await;
    assert!(verifier.open::<()>(&token).await.is_ok());
    (path, clock, verifier, token)
}

fn remove_database(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// What an application's own pool of the file at `path` must be for the
/// store to share it: write-ahead log, `synchronous = FULL`.
fn durable_options(path: impl AsRef<Path>) -> sqlx::sqlite::SqliteConnectOptions {
    sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
}

#[tokio::test]
async fn passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_or_create(dir.path().join("r.sqlite3")).await.unwrap();
    sealed_session::conformance::run(&store).await;
}

/// The conformance suite's check that began its read before a revocation,
/// with the read sent at the check's first poll: through a pool that tests
/// a connection before handing it out (sqlx's default, and the store's
/// own) the read goes only after the revocation, and the answer it caches
/// is already the new one.
#[tokio::test]
async fn a_read_sent_before_a_revocation_is_never_cached() {
    use sqlx::sqlite::SqlitePoolOptions;
    let dir = tempfile::tempdir().unwrap();
    let options = durable_options(dir.path().join("r.sqlite3"));
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .unwrap();
    let store = SqliteStore::with_pool(pool).await.unwrap();
    sealed_session_testkit::assert_reads_before_revocations_are_never_cached(&store).await;
}

#[tokio::test]
async fn passes_the_registry_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_or_create(dir.path().join("r.sqlite3")).await.unwrap();
    sealed_session::conformance::run_registry(&store).await;
    // The records are in the file: another store on it lists them.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let record = sealed_session::SessionRecord {
        id: sealed_session::Session::new(()).id(),
        user_id: "alice".to_owned(),
        epoch: 2,
        created_at: now - 5,
        last_seen: now,
        expires_at: now + 60,
        user_agent: "Chrome on Linux".to_owned(),
        remembered: true,
        device_bound: true,
    };
    SessionRegistry::record(&store, &record).await.unwrap();
    let other = SqliteStore::open(dir.path().join("r.sqlite3")).await.unwrap();
    assert_eq!(SessionRegistry::list(&other, "alice", now).await.unwrap(), [record]);
}

#[tokio::test]
async fn expired_records_of_a_user_who_never_comes_back_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let start = 2_000_000_000;
    let clock = ManualClock::at_unix(start);
    let path = dir.path().join("r.sqlite3");
    let store = SqliteOptions::new(&path).create_if_missing(true).clock(clock.clone()).open().await.unwrap();
    let start = start as u64;
    let record = |user: &str, expires_at: u64| sealed_session::SessionRecord {
        id: Session::new(()).id(),
        user_id: user.to_owned(),
        epoch: 0,
        created_at: start,
        last_seen: start,
        expires_at,
        user_agent: "Firefox on Linux".to_owned(),
        remembered: false,
        device_bound: false,
    };
    SessionRegistry::record(&store, &record("gone", start + 10)).await.unwrap();
    SessionRegistry::record(&store, &record("kept", start + 2 * 86_400)).await.unwrap();
    // Read with a time before everything: what the file holds.
    let held = async |user: &str| SessionRegistry::list(&store, user, 0).await.unwrap().len();
    // Expired by this server's clock, which may have jumped ahead: kept a
    // day, since the other servers' may be right.
    clock.advance(std::time::Duration::from_secs(11));
    SessionRegistry::record(&store, &record("other", start + 3 * 86_400)).await.unwrap();
    assert_eq!(held("gone").await, 1, "a record expired less than a day ago was deleted");
    clock.advance(std::time::Duration::from_secs(86_400));
    SessionRegistry::record(&store, &record("other", start + 3 * 86_400)).await.unwrap();
    assert_eq!(held("gone").await, 0, "a record expired a day ago was kept");
    assert_eq!(held("kept").await, 1, "a live one is kept");
}

/// After a long stop, many records and denylist entries may have expired:
/// one write deletes at most 1,000 of them, the next writes the rest.
#[tokio::test]
async fn expired_records_and_denylist_entries_are_deleted_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.sqlite3");
    let clock = ManualClock::at_unix(2_000_000_000);
    let store = SqliteOptions::new(&path).create_if_missing(true).clock(clock.clone()).open().await.unwrap();
    let pool = sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(&path))
        .await
        .unwrap();
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500)
         INSERT INTO sealed_session_sessions
           (user_id, session_id, epoch, created_at, last_seen, expires_at, user_agent, remembered, device_bound)
         SELECT 'user' || i, randomblob(16), 0, 1, 1, 2, 'Firefox on Linux', 0, 0 FROM n",
    )
    .execute(&pool)
    .await
    .unwrap();
    let count = async |table: &str| -> i64 {
        let query = format!("SELECT count(*) FROM {table} WHERE expires_at = 2");
        sqlx::query_scalar(sqlx::AssertSqlSafe(query)).fetch_one(&pool).await.unwrap()
    };
    let left = async || count("sealed_session_sessions").await;
    let record = sealed_session::SessionRecord {
        id: Session::new(()).id(),
        user_id: "alice".to_owned(),
        epoch: 0,
        created_at: 2_000_000_000,
        last_seen: 2_000_000_000,
        expires_at: 2_000_003_600,
        user_agent: "Firefox on Linux".to_owned(),
        remembered: false,
        device_bound: false,
    };
    SessionRegistry::record(&store, &record).await.unwrap();
    assert_eq!(left().await, 500);
    SessionRegistry::record(&store, &record).await.unwrap();
    assert_eq!(left().await, 0);

    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500)
         INSERT INTO sealed_session_denied (session_id, expires_at) SELECT randomblob(16), 2 FROM n",
    )
    .execute(&pool)
    .await
    .unwrap();
    let denied_left = async || count("sealed_session_denied").await;
    store.revoke_session(Session::new(()).id(), 2_000_003_600).await.unwrap();
    assert_eq!(denied_left().await, 500);
    assert!(store.revoke_session_once(Session::new(()).id(), 2_000_003_600).await.unwrap());
    assert_eq!(denied_left().await, 0);
}

#[tokio::test]
async fn the_store_runs_with_wal_and_synchronous_full() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_or_create(dir.path().join("r.sqlite3")).await.unwrap();
    // Read back from the store's own connection: what SECURITY.md's
    // durability claim rests on.
    let durability = store.durability().await.unwrap();
    assert_eq!((durability.journal_mode.as_str(), durability.synchronous.as_str()), ("wal", "FULL"));
    // Each call waits its answer 1 s by default, as SECURITY.md says.
    assert!(format!("{store:?}").contains("timeout: 1s"), "{store:?}");
}

/// A store every local user may write (the file world-writable, or in a
/// world-writable directory without the sticky bit, where a file can be
/// moved over it) is refused: any of them could delete revocations. The
/// group may write it (a CLI run as another user of the group), and a
/// sticky directory such as `/tmp` is no one's to replace files in.
#[tokio::test]
async fn a_store_every_local_user_may_write_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.sqlite3");
    let open = || SqliteOptions::new(&path).create_if_missing(true).open();
    drop(open().await.unwrap());
    let chmod = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    chmod(&path, 0o666);
    match open().await {
        Err(err @ SqliteOpenError::OthersMayWrite { .. }) => {
            assert!(err.to_string().contains("chmod o-w"), "{err}")
        }
        other => panic!("a world-writable store was opened: {:?}", other.map(drop)),
    }
    let link = dir.path().join("link.sqlite3");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let through_link = SqliteOptions::new(&link).open().await;
    assert!(
        matches!(through_link, Err(SqliteOpenError::OthersMayWrite { .. })),
        "{:?}",
        through_link.map(drop)
    );
    chmod(&path, 0o660);
    // The log beside it, as SQLite makes it with the file's mode (another
    // server holds it open meanwhile).
    let running = open().await.unwrap();
    let wal = dir.path().join("r.sqlite3-wal");
    chmod(&wal, 0o666);
    match open().await {
        Err(SqliteOpenError::OthersMayWrite { path: open_to_all, .. }) => {
            assert_eq!(open_to_all, std::fs::canonicalize(&wal).unwrap())
        }
        other => panic!("a world-writable log was used: {:?}", other.map(drop)),
    }
    // A pool of the application's own is judged the same.
    let pool = sqlx::SqlitePool::connect_with(durable_options(&path)).await.unwrap();
    let own = SqliteStore::with_pool(pool).await;
    assert!(matches!(own, Err(SqliteOpenError::OthersMayWrite { .. })), "{:?}", own.map(drop));
    chmod(&wal, 0o660);
    drop(running);
    chmod(dir.path(), 0o777);
    match open().await {
        Err(SqliteOpenError::OthersMayWrite { path: open_to_all, .. }) => {
            assert_eq!(open_to_all, std::fs::canonicalize(dir.path()).unwrap())
        }
        other => panic!("a store in a world-writable directory was opened: {:?}", other.map(drop)),
    }
    chmod(dir.path(), 0o1777);
    drop(open().await.unwrap());
}

#[tokio::test]
async fn revocations_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.sqlite3");
    let clock = ManualClock::at_unix(T0);
    let store = SqliteOptions::new(&path).create_if_missing(true).clock(clock.clone()).open().await.unwrap();
    let session = Session::new(()).id();
    assert_eq!(store.revoke_user("alice").await.unwrap(), 1);
    store.revoke_session(session, T0 as u64 + 3600).await.unwrap();
    let generation = store.generation().await.unwrap();
    assert_eq!(generation, T0 as u64, "the generation is the store clock's time at creation");
    drop(store);

    let again = SqliteOptions::from_url(&format!("sqlite:{}", path.display())).unwrap();
    let again = again.clock(clock).open().await.unwrap();
    let state = again.state(Some("alice"), session).await.unwrap();
    assert_eq!((state.user_epoch, state.session_revoked), (1, true));
    assert_eq!(again.generation().await.unwrap(), generation, "reopening keeps the generation");
}

#[test]
fn outside_a_tokio_runtime_calls_fail_closed_instead_of_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.sqlite3");
    let opened = pollster::block_on(SqliteStore::open_or_create(&path));
    assert!(matches!(opened, Err(SqliteOpenError::Runtime)), "{opened:?}");
    let store = tokio::runtime::Runtime::new().unwrap().block_on(SqliteStore::open_or_create(&path)).unwrap();
    let state = pollster::block_on(store.state(Some("alice"), Session::new(()).id()));
    assert!(matches!(state, Err(StoreError::Unavailable(_))), "{state:?}");
}

/// A store the server creates is closed to other users, with its `-wal`
/// and `-shm` files: the session registry in it names users and their
/// browsers. The group keeps what the umask gives it. An existing file
/// keeps the mode its operator gave it.
#[tokio::test]
async fn a_new_store_file_is_closed_to_other_users() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let path = dir.path().join("new.sqlite3");
    let store = SqliteStore::open_or_create(&path).await.unwrap();
    store.revoke_user("alice").await.unwrap();
    for file in ["new.sqlite3", "new.sqlite3-wal", "new.sqlite3-shm"] {
        let mode = mode(&dir.path().join(file));
        assert_eq!(mode & 0o607, 0o600, "{file}: {mode:o}");
    }
    let shared = dir.path().join("shared.sqlite3");
    drop(SqliteStore::open_or_create(&shared).await.unwrap());
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o640)).unwrap();
    drop(SqliteStore::open_or_create(&shared).await.unwrap());
    assert_eq!(mode(&shared), 0o640);
}

/// A symbolic link to a file that does not exist yet (a volume not filled
/// yet) is refused: created through it by SQLite, the file and its `-wal`
/// and `-shm` took the umask's mode, readable by every local user.
#[tokio::test]
async fn a_new_store_is_not_created_through_a_dangling_symbolic_link() {
    let dir = tempfile::tempdir().unwrap();
    let (link, target) = (dir.path().join("r.sqlite3"), dir.path().join("volume.sqlite3"));
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let err = SqliteStore::open_or_create(&link).await.unwrap_err();
    assert!(matches!(&err, SqliteOpenError::Io { path, .. } if path == &link), "{err:?}");
    assert!(err.to_string().contains("symbolic link to a file that does not exist"), "{err}");
    assert!(!target.exists(), "created through the link");
    // A link to a store that exists is followed.
    drop(SqliteStore::open_or_create(&target).await.unwrap());
    SqliteStore::open_or_create(&link).await.unwrap().revoke_user("alice").await.unwrap();
}

/// A new store, closed again, at `dir/name`.
async fn a_store_at(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    drop(SqliteStore::open_or_create(&path).await.unwrap());
    path
}

/// A file moved over the path while the store is opening (a restore, a
/// deploy), after its pool's first connection opened the old file and
/// before the store watches the path: that connection would go on writing
/// revocations to a file no other process reads. Held up here by another
/// process's write lock, which the store's setup waits for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_replaced_while_the_store_is_opening_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (path, other) =
        (a_store_at(dir.path(), "r.sqlite3").await, a_store_at(dir.path(), "other.sqlite3").await);
    let writer = another_process_on(&path).await.begin_with("BEGIN IMMEDIATE").await.unwrap();
    let opening = tokio::spawn(SqliteStore::open(path.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::rename(&other, &path).unwrap();
    writer.rollback().await.unwrap();
    let opened = opening.await.unwrap();
    assert!(matches!(&opened, Err(SqliteOpenError::Replaced { path: p }) if p == &path), "{opened:?}");
    // Opened again, it is the new file's store.
    SqliteStore::open(&path).await.unwrap().revoke_user("alice").await.unwrap();
}

#[tokio::test]
async fn a_url_never_creates_a_database_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("revocatoins.sqlite3");
    let opened = SqliteStore::open_url(&format!("sqlite:{}", typo.display())).await;
    assert!(matches!(&opened, Err(SqliteOpenError::Missing { path }) if path == &typo), "{opened:?}");
    assert!(!typo.exists(), "opening a missing store created a file");
    let err = SqliteStore::open(&typo).await.unwrap_err();
    assert!(err.to_string().contains("create=true"), "the error says how to create it: {err}");
    assert!(!typo.exists());

    let url = format!("sqlite:{}?create=true", typo.display());
    SqliteStore::open_url(&url).await.unwrap();
    assert!(typo.exists(), "create=true creates the file");
    SqliteStore::open_url(&format!("sqlite:{}", typo.display())).await.unwrap();
}

#[tokio::test]
async fn bad_urls_are_refused() {
    for url in [
        "sqlite:",
        "sqlite:?create=true",
        "redis://127.0.0.1/0",
        "/tmp/x.sqlite3",
        "sqlite:/tmp/x?mode=rwc",
        "sqlite::memory:",
        "sqlite::memory:?create=true",
    ] {
        assert!(matches!(SqliteStore::open_url(url).await, Err(SqliteOpenError::Url)), "{url}");
    }
    assert!(!Path::new(":memory:").exists(), "no file named :memory: was made");
    let err = SqliteStore::open_or_create("/nonexistent/dir/r.sqlite3").await.unwrap_err();
    assert!(err.to_string().contains("/nonexistent/dir/r.sqlite3"), "{err}");
}

/// `sqlite:///DIR/r.sqlite3` is absolute; `sqlite://DIR/r.sqlite3`, which
/// sqlx reads as relative and a path as `//DIR` (that is, `/DIR`), is
/// refused rather than read one way.
#[test]
fn a_url_with_two_slashes_is_absolute_or_refused() {
    for (url, path) in [
        ("sqlite:///var/lib/r.sqlite3?create=true", "/var/lib/r.sqlite3"),
        ("sqlite:data/r.sqlite3", "data/r.sqlite3"),
        ("sqlite:/var/lib/r.sqlite3", "/var/lib/r.sqlite3"),
    ] {
        let options = format!("{:?}", SqliteOptions::from_url(url).unwrap());
        assert!(options.contains(&format!("path: {path:?}")), "{url}: {options}");
    }
    for url in [
        "sqlite://data/r.sqlite3",
        "sqlite://data/r.sqlite3?create=true",
        "sqlite://localhost/x",
        "sqlite://",
        "sqlite://:memory:",
    ] {
        let refused = SqliteOptions::from_url(url);
        assert!(matches!(refused, Err(SqliteOpenError::UrlTwoSlashes)), "{url}: {refused:?}");
    }
}

/// A store at `dir/r.sqlite3` on a clock that stands still, and a read
/// transaction another process holds on it: an older snapshot once the
/// store writes.
async fn store_and_a_reader(dir: &Path) -> (PathBuf, SqliteStore, sqlx::Transaction<'static, sqlx::Sqlite>) {
    let path = dir.join("r.sqlite3");
    let clock = ManualClock::at_unix(T0);
    let store = SqliteOptions::new(&path).create_if_missing(true).clock(clock).open().await.unwrap();
    let reader = a_reader_of(&path).await;
    (path, store, reader)
}

/// A connection of another process to the store at `path`.
async fn another_process_on(path: &Path) -> sqlx::SqlitePool {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
    sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap()
}

/// A read transaction another process holds on the store at `path`.
async fn a_reader_of(path: &Path) -> sqlx::Transaction<'static, sqlx::Sqlite> {
    let mut reader = another_process_on(path).await.begin().await.unwrap();
    let tables: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sqlite_master").fetch_one(&mut *reader).await.unwrap();
    assert!(tables > 0);
    reader
}

/// Alice's epoch in a copy of the database file at `path` alone, without
/// its log: what the checkpoints copied into it.
async fn alices_epoch_in_a_copy_of(path: &Path) -> Option<i64> {
    let copy = path.with_extension("copy");
    std::fs::copy(path, &copy).unwrap();
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&copy).read_only(true);
    let mut alone = sqlx::ConnectOptions::connect(&options).await.unwrap();
    sqlx::query_scalar("SELECT epoch FROM sealed_session_user_epochs WHERE user_id = 'alice'")
        .fetch_optional(&mut alone)
        .await
        .unwrap()
}

/// A reader that holds an older snapshot (a backup tool, another process)
/// holds back the checkpoint, never the revocation: it is acknowledged and
/// durable in the log, and the next checkpoint copies it.
#[tokio::test]
async fn a_reader_holding_a_snapshot_fails_no_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let (path, store, reader) = store_and_a_reader(dir.path()).await;
    assert_eq!(store.revoke_user("alice").await.unwrap(), 1);
    assert_eq!(store.login_state("alice").await.unwrap().user_epoch, 1);
    reader.rollback().await.unwrap();
    assert_eq!(store.revoke_user("alice").await.unwrap(), 2);
    // The reader gone, that revocation's checkpoint copies both into the
    // database file itself: a copy of the file alone has them.
    let copied = alices_epoch_in_a_copy_of(&path).await;
    assert_eq!(copied, Some(2), "the checkpoint after the reader left did not copy the revocations");
}

/// A reader that stays (a backup tool holding a snapshot) holds back the
/// checkpoint for good. A checkpoint that waits for readers (200 ms) holds
/// back writers while it waits: after one waited in vain, the next ones do
/// not wait again. Each revocation held the write lock that long, so five
/// at once took a second, and calls behind them timed out (found by
/// review). Here a timeout shorter than that wait shows it; the clock
/// stands still, so no second passes after the wait in vain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stays_holds_no_revocation_back_for_the_checkpoints_wait() {
    let logs = sealed_session_testkit::Logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let (path, store, reader) = store_and_a_reader(dir.path()).await;
    let path = path.display().to_string();
    let unfinished = || logs.lines_with(&["WARN", "could not copy the whole write-ahead log", &path]).len();
    // Its checkpoint waits for the reader, in vain.
    assert_eq!(store.revoke_user("alice").await.unwrap(), 1);
    let store = store.with_timeout(Duration::from_millis(150));
    for i in 0..10u8 {
        let id = sealed_session::SessionId::from_hex(&format!("{i:032x}")).unwrap();
        let revoked = store.revoke_session(id, u64::MAX).await;
        assert!(revoked.is_ok(), "revocation {i}: {revoked:?}");
        assert!(store.state(Some("bob"), id).await.is_ok());
    }
    // Each checkpoint the reader held back, waited for or not, says so.
    let said = unfinished();
    assert!(said >= 11, "{said} of 11 checkpoints held back were said");
    reader.rollback().await.unwrap();
    // The reader gone, the checkpoint copies the whole log, and says nothing.
    assert_eq!(store.revoke_user("alice").await.unwrap(), 2);
    assert_eq!(unfinished(), said, "a whole checkpoint was said to be held back");
}

/// A reader that leaves soon (another process's read) is waited for: when
/// the revocation returns, it is in the database file itself, not only in
/// the log, and a copy of the file alone has it. The reader leaves 100 ms
/// on, well within the 200 ms the checkpoint waits, and after the
/// revocation's commit and first checkpoint on any but a stalled machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_waits_for_a_reader_that_leaves_soon() {
    let dir = tempfile::tempdir().unwrap();
    let (path, store, reader) = store_and_a_reader(dir.path()).await;
    // Twice: a wait that was not in vain keeps none from waiting next.
    let mut reader = Some(reader);
    for epoch in 1..=2 {
        let reader = match reader.take() {
            Some(reader) => reader,
            None => a_reader_of(&path).await,
        };
        let leaves = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            reader.rollback().await.unwrap();
        });
        assert_eq!(store.revoke_user("alice").await.unwrap(), epoch);
        leaves.await.unwrap();
        let copied = alices_epoch_in_a_copy_of(&path).await;
        assert_eq!(copied, Some(i64::try_from(epoch).unwrap()), "the checkpoint did not wait for the reader");
    }
}

/// Run by `an_acknowledged_revocation_survives_kill_9` in a child process:
/// revokes, reports, then waits to be killed. Not a test on its own.
#[tokio::test]
#[ignore = "child process of an_acknowledged_revocation_survives_kill_9"]
async fn child_revokes_and_waits_to_be_killed() {
    let path = std::env::var("SEALED_SESSION_SQLITE_CHILD").expect(
        "run only by an_acknowledged_revocation_survives_kill_9, which sets SEALED_SESSION_SQLITE_CHILD",
    );
    let store = SqliteStore::open_or_create(&path).await.unwrap();
    let epoch = store.revoke_user("alice").await.unwrap();
    println!("REVOKED {epoch}");
    loop {
        std::thread::park();
    }
}

#[tokio::test]
async fn an_acknowledged_revocation_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.sqlite3");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_revokes_and_waits_to_be_killed",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SEALED_SESSION_SQLITE_CHILD", &path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // libtest may print "test NAME ... " on the same line first.
    let acknowledged = lines.find_map(|line| Some(line.ok()?.rsplit_once("REVOKED ")?.1.to_owned()));
    assert_eq!(acknowledged.as_deref(), Some("1"), "the child did not acknowledge the revocation");
    child.kill().unwrap(); // SIGKILL: no destructor, no checkpoint, no clean close.
    let status = child.wait().unwrap();
    assert!(!status.success());

    // In the database file itself, not only in its write-ahead log: a copy
    // of the file alone (a backup, or a `-wal` lost while nothing ran)
    // keeps it.
    let copy = dir.path().join("copy.sqlite3");
    std::fs::copy(&path, &copy).unwrap();
    let store = SqliteStore::open(&copy).await.unwrap();
    assert_eq!(
        store.login_state("alice").await.unwrap().user_epoch,
        1,
        "the revocation was only in the -wal"
    );

    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        store.login_state("alice").await.unwrap().user_epoch,
        1,
        "the acknowledged revocation was lost"
    );
}

#[tokio::test]
async fn a_login_right_after_the_store_started_opens() {
    let dir = tempfile::tempdir().unwrap();
    // On the system clock: the generation is dated now, and a login in that
    // same second waits for the next one instead of being refused by it.
    let store = SqliteStore::open_or_create(dir.path().join("r.sqlite3")).await.unwrap();
    let verifier = Verifier::new(
        sealed_session::Sealer::builder(sealed_session_testkit::keyring(3)).build().unwrap(),
        store,
    );
    let started = std::time::Instant::now();
    let token = verifier.sealer().seal(&verifier.login("alice", ()).await.unwrap()).unwrap();
    assert!(started.elapsed() < Duration::from_millis(1100), "login took {:?}", started.elapsed());
    assert!(verifier.open::<()>(&token).await.is_ok());
}

#[tokio::test]
async fn a_deleted_file_never_brings_a_revoked_session_back() {
    let dir = tempfile::tempdir().unwrap();
    let (path, clock, verifier, token) = signed_in(dir.path()).await;
    verifier.logout_everywhere("alice").await.unwrap();
    assert!(matches!(verifier.open::<()>(&token).await, Err(VerifyError::Revoked(Revocation::User))));
    drop(verifier);

    // The file and its WAL are lost; the server restarts on an empty file.
    remove_database(&path);
    clock.advance(Duration::from_secs(10));
    let verifier = server(&path, &clock).await;
    assert!(
        matches!(verifier.open::<()>(&token).await, Err(VerifyError::Revoked(Revocation::All))),
        "a revoked token came back after data loss"
    );
    // Everyone signs in again.
    let fresh = login(&verifier, "alice").await;
    assert!(verifier.open::<()>(&fresh).await.is_ok());
}

/// A dropped table of revocations fails the running store closed; the
/// restarted store creates it again and logs everyone out, rather than
/// answer from an empty table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_table_never_brings_a_revoked_session_back_after_a_restart() {
    for table in ["sealed_session_denied", "sealed_session_user_epochs"] {
        let dir = tempfile::tempdir().unwrap();
        let (path, clock, verifier, token) = signed_in(dir.path()).await;
        let session = verifier.open::<()>(&token).await.unwrap().into_session();
        let other = login(&verifier, "alice").await;
        let live = login(&verifier, "bob").await;
        let bob = verifier.open::<()>(&live).await.unwrap().into_session();
        verifier.logout(&session).await.unwrap();
        verifier.logout_everywhere("alice").await.unwrap();
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
        let pool = sqlx::sqlite::SqlitePool::connect_with(options).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP TABLE {table}"))).execute(&pool).await.unwrap();
        pool.close().await;
        // Under the running store: every check fails, closed, and so does
        // every write to the dropped table.
        let failed = async || matches!(verifier.open::<()>(&live).await, Err(VerifyError::Store(_)));
        assert!(
            within(Duration::from_secs(1), failed).await.is_some(),
            "{table}: a live session still opened"
        );
        let write = if table == "sealed_session_denied" {
            verifier.logout(&bob).await.map(drop)
        } else {
            verifier.logout_everywhere("bob").await.map(drop)
        };
        assert!(write.is_err(), "{table}");
        drop(verifier);

        clock.advance(Duration::from_secs(10));
        let verifier = server(&path, &clock).await;
        for revoked in [&token, &other] {
            let result = verifier.open::<()>(revoked).await;
            assert!(matches!(result, Err(VerifyError::Revoked(Revocation::All))), "{table}: {result:?}");
        }
        let fresh = login(&verifier, "alice").await;
        assert!(verifier.open::<()>(&fresh).await.is_ok(), "{table}");
    }
}

fn untrusted<T: std::fmt::Debug>(result: Result<T, VerifyError>) -> bool {
    matches!(result, Err(VerifyError::Store(StoreError::Untrusted(_))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_deleted_under_a_running_store_fails_closed_until_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _clock, verifier, token) = signed_in(dir.path()).await;

    remove_database(&path);
    // The poller notices within its interval; a check that reads sees it at once.
    let refused = within(Duration::from_secs(1), async || untrusted(verifier.open::<()>(&token).await)).await;
    assert!(refused.is_some(), "a store whose file was deleted still answered");
    // Writes fail too, and the store stays failed when a new file appears at the path.
    SqliteStore::open_or_create(&path).await.unwrap();
    let err = verifier.logout_everywhere("alice").await.unwrap_err();
    assert!(matches!(err, StoreError::Untrusted(_)), "{err:?}");
    assert!(err.to_string().contains("reopen the store"), "{err}");
    assert!(untrusted(verifier.open::<()>(&token).await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_replaced_under_a_running_store_fails_closed() {
    let logs = sealed_session_testkit::Logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let (path, _clock, verifier, token) = signed_in(dir.path()).await;

    // Another file is moved over the path (a restore, a deploy script):
    // revocations written to it must not be ignored here.
    assert!(format!("{:?}", verifier.store()).contains("fault: None"));
    let unchecked = login(&verifier, "carol").await;
    let other = dir.path().join("other.sqlite3");
    let replacement = SqliteStore::open_or_create(&other).await.unwrap();
    replacement.revoke_user("alice").await.unwrap();
    drop(replacement);
    std::fs::rename(&other, &path).unwrap();

    // A check that reads (nothing cached for this session) looks at the
    // file first: refused at once, before the poller's next look.
    assert!(untrusted(verifier.open::<()>(&unchecked).await), "a read answered from a replaced file");
    let refused = within(Duration::from_secs(1), async || untrusted(verifier.open::<()>(&token).await)).await;
    assert!(refused.is_some(), "a store whose file was replaced still answered");
    let write = verifier.logout_everywhere("alice").await;
    assert!(
        matches!(write, Err(StoreError::Untrusted(_))),
        "a write to the old file reported success: {write:?}"
    );
    // And the store says why, to whoever inspects it.
    let shown = format!("{:?}", verifier.store());
    assert!(shown.contains("fault: Some(FileReplaced"), "{shown}");
    // And to the log, at `error`, naming the file, once.
    let said =
        logs.lines_with(&["ERROR", "refuses every session until reopened", &path.display().to_string()]);
    assert_eq!(said.len(), 1, "{said:?}");
}

/// The write-ahead log holds commits (revocations) not yet copied into the
/// database: another process that finds a fresh `-wal` (or `-shm`) after one
/// was deleted or replaced under the running store would not see them. The
/// store fails closed, as for the database file itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wal_or_shm_file_deleted_or_replaced_under_a_running_store_fails_closed() {
    for (suffix, replace) in [("-wal", false), ("-wal", true), ("-shm", false)] {
        let dir = tempfile::tempdir().unwrap();
        let (_path, _clock, verifier, token) = signed_in(dir.path()).await;
        let sidecar = dir.path().join(format!("r.sqlite3{suffix}"));
        assert!(sidecar.exists(), "{suffix} exists while the store is open");
        if replace {
            let other = dir.path().join("other");
            std::fs::write(&other, b"").unwrap();
            std::fs::rename(&other, &sidecar).unwrap();
        } else {
            std::fs::remove_file(&sidecar).unwrap();
        }
        let refused =
            within(Duration::from_secs(1), async || untrusted(verifier.open::<()>(&token).await)).await;
        assert!(refused.is_some(), "{suffix} (replaced: {replace}): the store still answered");
        let err = verifier.logout_everywhere("alice").await.unwrap_err();
        assert!(err.to_string().contains(&format!("r.sqlite3{suffix}")), "{err}");
    }
}

/// SQLite keeps the `-wal` and `-shm` beside the file a symbolic link leads
/// to, not beside the link: the store watches those, so a log deleted under
/// a store opened through a link is found as for any path, whatever files
/// lie beside the link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_opened_through_a_symbolic_link_watches_the_files_sqlite_uses() {
    let dir = tempfile::tempdir().unwrap();
    let real = a_store_at(dir.path(), "r.sqlite3").await;
    let link = dir.path().join("link.sqlite3");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    // Left over beside the link, and never used by SQLite.
    for suffix in ["-wal", "-shm"] {
        std::fs::write(format!("{}{suffix}", link.display()), b"").unwrap();
    }
    let clock = ManualClock::at_unix(T0);
    let verifier = server(&link, &clock).await;
    let token = login(&verifier, "alice").await;
    assert!(verifier.open::<()>(&token).await.is_ok());
    std::fs::remove_file(dir.path().join("r.sqlite3-wal")).unwrap();
    let refused = within(Duration::from_secs(1), async || untrusted(verifier.open::<()>(&token).await)).await;
    assert!(refused.is_some(), "the log SQLite uses was deleted, and the store still answered");
}

#[tokio::test]
async fn the_store_shares_an_applications_pool_and_refuses_one_that_is_not_durable() {
    use sqlx::sqlite::{SqlitePool, SqliteSynchronous};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.sqlite3");
    let durable = durable_options(&path);
    let pool = SqlitePool::connect_with(durable.clone()).await.unwrap();
    // The application's own table, beside the store's.
    sqlx::query("CREATE TABLE orders (id INTEGER PRIMARY KEY)").execute(&pool).await.unwrap();
    let store = SqliteStore::with_pool(pool.clone()).await.unwrap();
    assert_eq!(store.path(), path.as_path());
    sealed_session::conformance::run(&store).await;
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        tables,
        [
            "orders",
            "sealed_session_denied",
            "sealed_session_meta",
            "sealed_session_sessions",
            "sealed_session_user_epochs"
        ]
    );

    // A pool whose connections may lose an acknowledged revocation is refused.
    let fast = durable.synchronous(SqliteSynchronous::Normal);
    let err = SqliteStore::with_pool(SqlitePool::connect_with(fast).await.unwrap()).await.unwrap_err();
    assert!(
        matches!(&err, SqliteOpenError::NotDurable { synchronous, .. } if synchronous == "NORMAL"),
        "{err:?}"
    );
    assert!(err.to_string().contains("synchronous(Full)"), "the error says what to set: {err}");
}

/// `synchronous` is a setting of each connection: one the application
/// lowers after the store started (on a pool they share) is refused for
/// revocations, which could be lost on it, until it is set back.
#[tokio::test]
async fn a_shared_connection_lowered_below_full_after_the_start_refuses_revocations() {
    use sqlx::sqlite::SqlitePoolOptions;
    let dir = tempfile::tempdir().unwrap();
    let options = durable_options(dir.path().join("app.sqlite3"));
    // One connection, so that the application's setting is the store's.
    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
    let store = SqliteStore::with_pool(pool.clone()).await.unwrap();
    let until = u64::try_from(sealed_session::Clock::unix_now(&sealed_session::SystemClock)).unwrap() + 3600;
    for lowered in ["OFF", "NORMAL"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA synchronous = {lowered}")))
            .execute(&pool)
            .await
            .unwrap();
        let refused = [
            store.revoke_user("alice").await.map(drop),
            store.revoke_session(Session::new(()).id(), until).await,
            store.revoke_all(0).await.map(drop),
        ];
        for result in refused {
            assert!(matches!(&result, Err(StoreError::Untrusted(_))), "{lowered}: {result:?}");
            let message = result.unwrap_err().to_string();
            assert!(message.contains(&format!("synchronous = {lowered}")), "{message}");
        }
    }
    sqlx::query("PRAGMA synchronous = FULL").execute(&pool).await.unwrap();
    assert_eq!(store.revoke_user("alice").await.unwrap(), 1, "and work again once it is FULL");
}

/// A revocation's checkpoint (the copy of the write-ahead log into the
/// database file) does not run on a shared connection the application
/// lowered below `FULL`: the copy would not be synced, and the log it
/// empties could be written over. It is skipped, and the log says why.
#[tokio::test]
async fn a_checkpoint_is_skipped_on_a_shared_connection_lowered_below_full() {
    use sqlx::sqlite::SqlitePoolOptions;
    let logs = sealed_session_testkit::Logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let options = durable_options(dir.path().join("app.sqlite3"));
    let pool = SqlitePoolOptions::new().max_connections(2).connect_with(options).await.unwrap();
    let store = SqliteStore::with_pool(pool.clone()).await.unwrap();
    // Both connections open; the application lowers one.
    let (kept, mut lowered) = (pool.acquire().await.unwrap(), pool.acquire().await.unwrap());
    sqlx::query("PRAGMA synchronous = OFF").execute(&mut *lowered).await.unwrap();
    drop((kept, lowered));
    let skipped = || logs.lines_with(&["WARN", "checkpoint skipped", "synchronous = OFF"]);
    for _ in 0..50 {
        // Refused when it gets the lowered connection itself.
        let _ = store.revoke_user("alice").await;
        if !skipped().is_empty() {
            break;
        }
    }
    assert!(!skipped().is_empty(), "no checkpoint was skipped on the lowered connection");
    // Skipped, not run: the database file alone (without its log) lacks
    // the last revocation, which the log holds.
    let live = store.login_state("alice").await.unwrap().user_epoch;
    let copy = dir.path().join("copy.sqlite3");
    std::fs::copy(dir.path().join("app.sqlite3"), &copy).unwrap();
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&copy).read_only(true);
    let mut alone = sqlx::ConnectOptions::connect(&options).await.unwrap();
    // No table at all if no checkpoint ever ran.
    let copied: Option<i64> =
        match sqlx::query_scalar("SELECT epoch FROM sealed_session_user_epochs WHERE user_id = 'alice'")
            .fetch_optional(&mut alone)
            .await
        {
            Ok(epoch) => epoch,
            Err(err) if err.to_string().contains("no such table") => None,
            Err(err) => panic!("the copy could not be read: {err}"),
        };
    assert!(copied.unwrap_or(0) < i64::try_from(live).unwrap(), "{copied:?} against {live}");
}

/// A check that cannot get a connection (the application holds the only one
/// of a pool the store shares) fails closed within the store's timeout,
/// not after sqlx's acquire timeout (30 s); so do the registry's calls.
#[tokio::test]
async fn a_check_that_gets_no_connection_fails_within_the_timeout() {
    use sqlx::sqlite::SqlitePoolOptions;
    let dir = tempfile::tempdir().unwrap();
    let options = durable_options(dir.path().join("app.sqlite3"));
    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
    let limit = Duration::from_millis(200);
    let store = SqliteStore::with_pool(pool.clone()).await.unwrap().with_timeout(limit);
    let held = pool.acquire().await.unwrap();
    let id = Session::new(()).id();
    let state = bounded(store.state(Some("alice"), id)).await;
    assert!(matches!(state, Err(StoreError::Timeout(t)) if t == limit), "{state:?}");
    let login = bounded(store.login_state("alice")).await;
    assert!(matches!(login, Err(StoreError::Timeout(_))), "{login:?}");
    let list = bounded(store.list("alice", 0)).await;
    assert!(matches!(list, Err(StoreError::Timeout(_))), "{list:?}");
    drop(held);
    // Read with a longer timeout: this machine may be busy.
    let store = store.with_timeout(Duration::from_secs(10));
    let answered = store.state(Some("alice"), id).await;
    assert!(answered.is_ok_and(|state| !state.session_revoked), "and answers once it has a connection");
}

/// A revocation that another process's write lock holds up fails within the
/// store's timeout (not after SQLite's 5 s busy timeout), and, running on
/// a task of its own, takes effect once the lock is gone: retrying it is
/// safe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_held_up_by_another_writer_fails_within_the_timeout_and_ends_later() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.sqlite3");
    let limit = Duration::from_millis(200);
    let store = SqliteStore::open_or_create(&path).await.unwrap().with_timeout(limit);
    let writer = another_process_on(&path).await.begin_with("BEGIN IMMEDIATE").await.unwrap();
    let revoked = bounded(store.revoke_user("alice")).await;
    assert!(matches!(revoked, Err(StoreError::Timeout(t)) if t == limit), "{revoked:?}");
    writer.rollback().await.unwrap();
    let store = store.with_timeout(Duration::from_secs(10));
    let ran_on =
        within(Duration::from_secs(5), async || store.login_state("alice").await.unwrap().user_epoch == 1);
    assert!(ran_on.await.is_some(), "the revocation ran on once the lock was gone");
}

/// `call`'s result, or a panic if it takes 3 s (far more than the 200 ms
/// the tests set, far less than the waits without a timeout: 5 s, 30 s).
async fn bounded<T>(call: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(3), call).await.expect("the call outlasted its timeout")
}

/// A cutoff ahead of the store's time (the host's clock stepped back after
/// a global logout) is never lowered by a later one.
#[tokio::test]
async fn a_cutoff_ahead_of_the_stores_time_is_never_lowered() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at_unix(T0 + 3600);
    let path = dir.path().join("r.sqlite3");
    let store = SqliteOptions::new(&path).create_if_missing(true).clock(clock.clone()).open().await.unwrap();
    let ahead = store.revoke_all(0).await.unwrap();
    assert_eq!(ahead, (T0 + 3600) as u64);
    clock.set_unix(T0);
    assert_eq!(store.revoke_all(0).await.unwrap(), ahead);
    assert_eq!(store.revoke_all(T0 as u64).await.unwrap(), ahead);
    assert_eq!(store.login_state("alice").await.unwrap().revoked_through, ahead);
}

/// A clock that jumps ahead (by less than a day) past a logout's denylist
/// entry, and revokes meanwhile, purges nothing that still counts: once
/// the clock is put back, the logged-out session is still refused.
#[tokio::test]
async fn a_clock_that_jumps_ahead_and_back_never_brings_a_logged_out_session_back() {
    let dir = tempfile::tempdir().unwrap();
    let (path, clock, verifier, token) = signed_in(dir.path()).await;
    let session = verifier.open::<()>(&token).await.unwrap().into_session();
    verifier.logout(&session).await.unwrap();
    let expires_at = session.expires_at().unwrap().unix_timestamp();
    clock.set_unix(expires_at + 3600);
    let later = u64::try_from(expires_at + 7200).unwrap();
    verifier.store().revoke_session(Session::new(()).id(), later).await.unwrap();
    clock.set_unix(T0 + 10);
    let other = server(&path, &clock).await;
    let result = other.open::<()>(&token).await;
    assert!(matches!(result, Err(VerifyError::Revoked(Revocation::Session))), "{result:?}");
}

/// Revocations dated by a clock that went back before 1970 fail: a global
/// logout would move no cutoff (the store's time counts as 0) yet return as
/// if it had logged everyone out.
#[tokio::test]
async fn a_clock_gone_back_before_1970_fails_revocations_instead_of_doing_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at_unix(T0);
    let store = SqliteOptions::new(dir.path().join("r.sqlite3"))
        .create_if_missing(true)
        .clock(clock.clone())
        .open()
        .await
        .unwrap();
    clock.set_unix(-5);
    let until = u64::try_from(T0).unwrap() + 3600;
    let refused =
        [store.revoke_all(0).await.map(drop), store.revoke_session(Session::new(()).id(), until).await];
    for result in refused {
        assert!(matches!(&result, Err(StoreError::Untrusted(_))), "{result:?}");
    }
    clock.set_unix(T0 + 1);
    assert!(store.revoke_all(0).await.unwrap() > u64::try_from(T0).unwrap(), "once the clock is back");
}

/// A clock before 1970 would date a new generation 0, which refuses
/// nothing (after a lost file, every session it revoked would open
/// again): no generation starts, and the store does not open.
#[tokio::test]
async fn a_clock_at_1970_or_before_starts_no_generation() {
    for at in [-5, 0] {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteOptions::new(dir.path().join("r.sqlite3")).create_if_missing(true);
        let err = options.clock(ManualClock::at_unix(at)).open().await.unwrap_err();
        assert!(
            matches!(&err, SqliteOpenError::Generation { source: StoreError::Untrusted(_), .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("before 1970"), "{err}");
    }
}
