//! An application that already uses sqlx with SQLite shares its pool, and
//! its database file, with the revocation store: one file, one pool, one
//! build (the store is on the same sqlx, so no second libsqlite3).
//!
//! ```text
//! cargo run -p sealed-session-examples --example sqlx_sqlite
//! ```
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use sealed_session::{Keyring, Sealer, Verifier, VerifyError};
use sealed_session_sqlite::SqliteStore;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};

#[derive(sqlx::FromRow)]
struct Order {
    id: i64,
    customer: String,
}

#[tokio::main]
pub(crate) async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    // The application's pool. WAL and synchronous = FULL: the store insists,
    // since an acknowledged logout must survive a crash.
    let options = SqliteConnectOptions::new()
        .filename(dir.path().join("app.sqlite3"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    let pool = SqlitePool::connect_with(options).await?;
    sqlx::query("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT NOT NULL)")
        .execute(&pool)
        .await?;
    sqlx::query("INSERT INTO orders (customer) VALUES ('alice')").execute(&pool).await?;

    // The store's tables (sealed_session_*) go into the same file.
    let store = SqliteStore::with_pool(pool.clone()).await?;
    let verifier = Verifier::new(Sealer::builder(Keyring::generate()?).build()?, store);

    let token = verifier.sealer().seal(&verifier.login("alice", ()).await?)?;
    let session = verifier.open::<()>(&token).await?;
    let user = session.session().user_id().unwrap_or_default().to_owned();
    let orders: Vec<Order> = sqlx::query_as("SELECT id, customer FROM orders WHERE customer = ?1")
        .bind(&user)
        .fetch_all(&pool)
        .await?;
    println!("{user} is signed in and has {} order(s), the first #{}", orders.len(), orders[0].id);
    assert_eq!(orders[0].customer, "alice");

    verifier.logout_everywhere("alice").await?;
    match verifier.open::<()>(&token).await {
        Err(VerifyError::Revoked(reason)) => println!("after logging out everywhere: refused ({reason})"),
        other => return Err(format!("expected a revoked session, got {other:?}").into()),
    }
    Ok(())
}
