//! Time, passed in rather than read in the middle of the code.
//!
//! A [`Sealer`](crate::Sealer) reads the time from its [`Clock`] once per
//! call; the `*_at` methods take it as an argument instead. Tests use a
//! [`ManualClock`] and never sleep.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use time::OffsetDateTime;

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> OffsetDateTime;

    /// The current time in whole seconds since the Unix epoch. Override it
    /// only to make it cheaper; it must agree with [`Clock::now`].
    fn unix_now(&self) -> i64 {
        self.now().unix_timestamp()
    }
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    /// Skips the calendar arithmetic of [`OffsetDateTime`]: this is read on
    /// every seal and open.
    fn unix_now(&self) -> i64 {
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
            Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s - 1),
        }
    }
}

/// A clock that moves only when told to, for tests. Clones share one time.
///
/// ```
/// use sealed_session::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::at_unix(1_800_000_000);
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(clock.now().unix_timestamp(), 1_800_000_090);
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock that reads `unix_seconds` until moved.
    #[must_use]
    pub fn at_unix(unix_seconds: i64) -> Self {
        Self(Arc::new(AtomicI64::new(unix_seconds)))
    }

    /// Sets the time, in whole seconds since the Unix epoch.
    pub fn set_unix(&self, unix_seconds: i64) {
        self.0.store(unix_seconds, Ordering::SeqCst);
    }

    /// Moves the time forward (saturating at the largest time it can hold).
    pub fn advance(&self, by: std::time::Duration) {
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        let _ = self.0.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| Some(t.saturating_add(secs)));
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.0.load(Ordering::SeqCst))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}
