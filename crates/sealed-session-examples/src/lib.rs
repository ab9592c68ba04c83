//! Nothing to use here: this package holds the examples in `examples/`,
//! which show sealed-session in frameworks outside tower (actix-web) and
//! with no framework at all (hyper), through the core crate's API.
//!
//! ```text
//! cargo run -p sealed-session-examples --example actix
//! cargo run -p sealed-session-examples --example hyper
//! ```
#![forbid(unsafe_code)]
