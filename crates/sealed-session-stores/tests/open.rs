//! Every URL form opens its store, which then passes the conformance suite;
//! bad URLs are errors that repeat no secret.
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use sealed_session::RevocationStore as _;
use sealed_session_stores::{open, StoreUrlError};
use sealed_session_testkit::redis::RedisServer;

#[tokio::test]
async fn memory_urls_open_a_store_that_refuses_older_sessions() {
    let store = open("memory:").await.unwrap();
    let cutoff = store.login_state("alice").await.unwrap().revoked_through;
    assert!(
        cutoff >= sealed_session_testkit::unix_now() as u64 - 1,
        "refuses sessions from before it started"
    );
    sealed_session::conformance::run(&store).await;
}

#[tokio::test]
async fn sqlite_urls_open_a_store_and_create_it_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.sqlite3");
    assert!(matches!(open(&format!("sqlite:{}", path.display())).await, Err(StoreUrlError::Sqlite(_))));
    let store = open(&format!("sqlite:{}?create=true", path.display())).await.unwrap();
    sealed_session::conformance::run(&store).await;
}

#[tokio::test]
async fn redis_urls_open_a_store() {
    let redis = RedisServer::start();
    let store = open(&redis.url()).await.unwrap();
    sealed_session::conformance::run(&store).await;
}

#[tokio::test]
async fn postgres_urls_open_a_store() {
    let postgres = sealed_session_testkit::postgres::PostgresServer::start();
    let store = open(&postgres.url()).await.unwrap();
    sealed_session::conformance::run(&store).await;
}

#[tokio::test]
async fn unknown_schemes_are_named_without_the_rest_of_the_url() {
    for url in ["mysql://root:hunter2@db/x", "", "postgres-ish", "postgre://x"] {
        let err = open(url).await.err().expect("an error");
        let text = err.to_string();
        assert!(matches!(err, StoreUrlError::UnknownScheme(_)), "{url}: {text}");
        assert!(!text.contains("hunter2") && !format!("{err:?}").contains("hunter2"), "{text}");
    }
    for url in ["memory:extra", "memory://hunter2"] {
        let err = open(url).await.err().expect("an error");
        assert!(matches!(err, StoreUrlError::MemoryWithExtra), "{url}: {err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
    // Nor does the store's own error, shown or debugged (what `main`
    // returning it prints).
    for url in ["redis://app:hunter2@127.0.0.1:1/0", "postgres://app:hunter2@127.0.0.1:1/db"] {
        let err = open(url).await.err().expect("an error");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
    }
}

/// `open_existing` writes nothing to a store no server set up: a missing
/// SQLite file stays missing even with `?create=true`, and `memory:` is
/// refused.
#[tokio::test]
async fn open_existing_never_creates_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.sqlite3");
    let refused =
        sealed_session_stores::open_existing(&format!("sqlite:{}?create=true", path.display())).await;
    assert!(
        matches!(refused, Err(StoreUrlError::Sqlite(sealed_session_sqlite::SqliteOpenError::Missing { .. }))),
        "{:?}",
        refused.err()
    );
    assert!(!path.exists(), "a store was created");
    let refused = sealed_session_stores::open_existing("memory:").await;
    assert!(matches!(refused, Err(StoreUrlError::InProcess)), "{:?}", refused.err());
}
