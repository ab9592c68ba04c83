//! Test support for sealed-session's own tests (not published): harnesses
//! that start real servers on free loopback ports and stop them on drop,
//! fixed keyrings, and clocks.
//!
//! Every harness fails the test (never skips it) when its server is not
//! installed: `scripts/test.sh` installs them.

// Test support: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod browser;
pub mod demo;
pub mod redis;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sealed_session::{Clock, Keyring, ManualClock, MasterKey, Sealer};

/// A port on loopback that was free a moment ago.
#[must_use]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The real time now, in whole Unix seconds.
#[must_use]
pub fn unix_now() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

/// A manual clock set one second past the real time now: anything a real
/// server expires (Redis `EXAT`, say) agrees with it whatever today's date,
/// and sessions it dates come after a store generation begun now (a login
/// on a clock that does not move cannot wait for that second to pass).
#[must_use]
pub fn clock_at_now() -> ManualClock {
    ManualClock::at_unix(unix_now() + 1)
}

/// The one-key keyring (ID 1) whose key is 32 bytes of `seed`.
#[must_use]
pub fn keyring(seed: u8) -> Keyring {
    Keyring::single(1, MasterKey::from_slice(&[seed; 32]).unwrap())
}

/// A sealer on `keyring(seed)` reading `clock`.
#[must_use]
pub fn sealer(seed: u8, clock: &(impl Clock + Clone + 'static)) -> Sealer {
    Sealer::builder(keyring(seed)).clock(clock.clone()).build().unwrap()
}

/// Polls `check` until it holds, for at most `limit`; returns how long it
/// took, or `None`. Needs a tokio runtime with timers.
pub async fn within(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> Option<Duration> {
    let start = std::time::Instant::now();
    loop {
        if check().await {
            return Some(start.elapsed());
        }
        if start.elapsed() >= limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
