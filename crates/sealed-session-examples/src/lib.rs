//! Nothing to use here: this package holds the examples in `examples/`,
//! which show sealed-session in actix-web (through its middleware), with no
//! framework at all (hyper, through the core API), and in an application
//! that already uses sqlx with SQLite and shares its pool with the
//! revocation store.
//!
//! ```text
//! cargo run -p sealed-session-examples --example actix
//! cargo run -p sealed-session-examples --example hyper
//! cargo run -p sealed-session-examples --example sqlx_sqlite
//! ```
#![forbid(unsafe_code)]
