//! The sqlx example runs, not only compiles: one SQLite file and pool for
//! the application and the store, and a logout everywhere that refuses the
//! session (its `main` checks both).
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

#[path = "../examples/sqlx_sqlite.rs"]
mod example;

#[test]
fn the_sqlx_sqlite_example_runs() {
    example::main().unwrap();
}
