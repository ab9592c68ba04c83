//! The examples run, not only compile: `cargo test` drives each one's
//! `main`, which checks what it shows (the old token opens after the
//! rotation, a tampered one is refused).
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

#[path = "../examples/quickstart.rs"]
mod quickstart;

#[test]
fn the_quickstart_example_runs() {
    quickstart::main().unwrap();
}
