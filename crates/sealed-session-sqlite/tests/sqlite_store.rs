//! The SQLite store on real files: conformance, durability across `kill -9`,
//! data loss, and concurrent checks during revocation.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use sealed_session::{
    KeySpec, KeyState, Keyring, ManualClock, MasterKey, Revocation, RevocationStore, Sealer, Session,
    Verifier, VerifyError,
};
use sealed_session_sqlite::{OpenError, SqliteStore, CACHE_POLL_INTERVAL};

#[path = "../../../tests/support/revocation_race.rs"]
mod revocation_race;

const T0: i64 = 1_800_000_000;

fn sealer(clock: &ManualClock) -> Sealer {
    let key = KeySpec {
        id: 1,
        state: KeyState::Primary,
        key: MasterKey::from_slice(&[3; 32]).unwrap(),
        created: None,
    };
    Sealer::builder(Keyring::new([key]).unwrap()).clock(clock.clone()).build().unwrap()
}

#[tokio::test]
async fn passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("r.sqlite3")).await.unwrap();
    sealed_session::conformance::run(&store).await;
}

#[tokio::test]
async fn revocations_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.sqlite3");
    let store = SqliteStore::open(&path).await.unwrap();
    let session = Session::new(()).id();
    assert_eq!(store.revoke_user("alice").await.unwrap(), 1);
    store.revoke_session(session, u64::MAX / 4).await.unwrap();
    let generation = store.generation().await.unwrap();
    drop(store);

    let again = SqliteStore::open_url(&format!("sqlite:{}", path.display())).await.unwrap();
    let state = again.state(Some("alice"), session).await.unwrap();
    assert_eq!((state.user_epoch, state.session_revoked), (1, true));
    assert_eq!(again.generation().await.unwrap(), generation, "reopening keeps the generation");
}

#[test]
fn outside_a_tokio_runtime_calls_fail_closed_instead_of_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.sqlite3");
    let opened = pollster::block_on(SqliteStore::open(&path));
    assert!(matches!(opened, Err(OpenError::Runtime(_))), "{opened:?}");
    let store = tokio::runtime::Runtime::new().unwrap().block_on(SqliteStore::open(&path)).unwrap();
    let state = pollster::block_on(store.state(Some("alice"), Session::new(()).id()));
    assert!(matches!(state, Err(sealed_session::StoreError::Unavailable(_))), "{state:?}");
}

#[tokio::test]
async fn bad_urls_are_refused() {
    for url in ["sqlite:", "redis://127.0.0.1/0", "/tmp/x.sqlite3"] {
        assert!(matches!(SqliteStore::open_url(url).await, Err(OpenError::Url)), "{url}");
    }
    let err = SqliteStore::open("/nonexistent/dir/r.sqlite3").await.unwrap_err();
    assert!(err.to_string().contains("/nonexistent/dir/r.sqlite3"), "{err}");
}

/// Run by `an_acknowledged_revocation_survives_kill_9` in a child process:
/// revokes, reports, then waits to be killed. Not a test on its own.
#[tokio::test]
#[ignore = "child process of an_acknowledged_revocation_survives_kill_9"]
async fn child_revokes_and_waits_to_be_killed() {
    let Ok(path) = std::env::var("SEALED_SESSION_SQLITE_CHILD") else { return };
    let store = SqliteStore::open(&path).await.unwrap();
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

    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.user_epoch("alice").await.unwrap(), 1, "the acknowledged revocation was lost");
}

#[tokio::test]
async fn a_deleted_file_never_brings_a_revoked_session_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.sqlite3");
    let clock = ManualClock::at_unix(T0);
    let verifier =
        Verifier::new(sealer(&clock), SqliteStore::open_with_clock(&path, clock.clone()).await.unwrap());
    clock.advance(Duration::from_secs(10));
    let token = verifier.sealer().seal(&verifier.login("alice", ()).await.unwrap()).unwrap();
    verifier.logout_everywhere("alice").await.unwrap();
    assert!(matches!(verifier.open::<()>(&token).await, Err(VerifyError::Revoked(Revocation::User))));
    drop(verifier);

    // The file and its WAL are lost; the server restarts on an empty file.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    clock.advance(Duration::from_secs(10));
    let verifier =
        Verifier::new(sealer(&clock), SqliteStore::open_with_clock(&path, clock.clone()).await.unwrap());
    assert!(
        matches!(verifier.open::<()>(&token).await, Err(VerifyError::Revoked(Revocation::All))),
        "a revoked token came back after data loss"
    );
    // Everyone signs in again, from the next second on.
    clock.advance(Duration::from_secs(1));
    let fresh = verifier.sealer().seal(&verifier.login("alice", ()).await.unwrap()).unwrap();
    assert!(verifier.open::<()>(&fresh).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_revoked_token_is_accepted_after_the_revocation_returned() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at_unix(T0);
    let store = SqliteStore::open_with_clock(dir.path().join("r.sqlite3"), clock.clone()).await.unwrap();
    clock.advance(Duration::from_secs(1));
    let verifier = Verifier::new(sealer(&clock), store);
    let token = verifier.sealer().seal(&verifier.login("alice", ()).await.unwrap()).unwrap();
    revocation_race::no_revoked_token_is_accepted_after_the_revocation_returned(verifier, "alice", token)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_through_another_connection_is_enforced_within_the_poll_interval() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.sqlite3");
    let clock = ManualClock::at_unix(T0);
    let server =
        Verifier::new(sealer(&clock), SqliteStore::open_with_clock(&path, clock.clone()).await.unwrap());
    // Another process's connection, such as the CLI's.
    let operator = SqliteStore::open_with_clock(&path, clock.clone()).await.unwrap();
    clock.advance(Duration::from_secs(1));
    let token = server.sealer().seal(&server.login("alice", ()).await.unwrap()).unwrap();

    // Answers are cached once the first poll has run.
    let warm = std::time::Instant::now();
    while warm.elapsed() < CACHE_POLL_INTERVAL * 4 {
        assert!(server.open::<()>(&token).await.is_ok());
        tokio::task::yield_now().await;
    }

    operator.revoke_user("alice").await.unwrap();
    let revoked = std::time::Instant::now();
    loop {
        match server.open::<()>(&token).await {
            Err(VerifyError::Revoked(Revocation::User)) => break,
            Ok(_) => assert!(revoked.elapsed() < Duration::from_secs(1), "still accepted after 1 s"),
            Err(other) => panic!("unexpected error: {other}"),
        }
        tokio::task::yield_now().await;
    }
    println!("enforced {:?} after the other connection's revocation", revoked.elapsed());
}
