//! The library half of the `sealed-session` command-line tool: what the
//! tool shares with other programs, such as the demo app.

#![forbid(unsafe_code)]

pub mod store;
