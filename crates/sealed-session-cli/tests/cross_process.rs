//! The server's side of a revocation the CLI makes: a running server on the
//! same SQLite file enforces it within about the poll interval.
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use assert_cmd::Command;

fn ok(args: &[&str]) {
    let output = Command::cargo_bin("sealed-session").unwrap().args(args).output().unwrap();
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

/// SECURITY.md: a revocation made by another process (this CLI) is
/// enforced by a running server within about the poll interval (25 ms).
/// Measured from the CLI's exit to the server's first refusal, over 20
/// rounds with the server's cache warm: at most one round (a scheduling
/// hiccup on a loaded machine) may exceed 100 ms, and none 250 ms, the age
/// beyond which the cache is never used. The server's store runs on a clock
/// that does not move, so only the poll can end a cached answer (a 750 ms
/// poll exceeds 100 ms in most rounds). In a test binary of its own, so
/// that other tests do not compete for the CPU.
#[test]
fn a_revocation_by_another_process_is_enforced_within_the_poll_interval() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("revocations.sqlite3");
    let store_url = format!("sqlite:{}", path.display());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let started = time::OffsetDateTime::now_utc().unix_timestamp() - 10;
    let options = sealed_session_sqlite::SqliteOptions::new(&path)
        .create_if_missing(true)
        .clock(sealed_session::ManualClock::at_unix(started));
    let store = runtime.block_on(options.open()).unwrap();
    let sealer = sealed_session::Sealer::builder(sealed_session_testkit::keyring(4)).build().unwrap();
    let server = sealed_session::Verifier::new(sealer, store);
    let mut delays = Vec::new();
    for round in 0..20 {
        let user = format!("user-{round}");
        let token = runtime.block_on(async {
            let token = server.sealer().seal(&server.login(&user, ()).await.unwrap()).unwrap();
            // Warm: answered from the cache, across several polls.
            let warm = std::time::Instant::now();
            while warm.elapsed() < std::time::Duration::from_millis(60) {
                assert!(server.open::<()>(&token).await.is_ok());
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            token
        });
        ok(&["revoke", "--store", &store_url, "--user", &user]);
        let revoked = std::time::Instant::now();
        runtime.block_on(async {
            loop {
                match server.open::<()>(&token).await {
                    Err(sealed_session::VerifyError::Revoked(_)) => break,
                    Ok(_) => assert!(revoked.elapsed() < std::time::Duration::from_secs(2), "never enforced"),
                    Err(other) => panic!("unexpected error: {other}"),
                }
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        });
        delays.push(revoked.elapsed());
    }
    delays.sort();
    println!("enforced after the CLI exited: median {:?}, max {:?}", delays[10], delays[19]);
    assert!(delays[18] < std::time::Duration::from_millis(100), "two rounds over 100 ms: {delays:?}");
    assert!(delays[19] < std::time::Duration::from_millis(250), "slowest enforcement {:?}", delays[19]);
}
