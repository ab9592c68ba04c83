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

    /// The current time in milliseconds since the Unix epoch, for caches
    /// with sub-second lifetimes. It must agree with [`Clock::now`].
    fn unix_millis(&self) -> i64 {
        i64::try_from(self.now().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
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
        self.unix_millis().div_euclid(1000)
    }

    fn unix_millis(&self) -> i64 {
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(since) => i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
            Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms - 1),
        }
    }
}

/// A shared clock is a clock, so that one clock (a [`Sealer::clock`](crate::Sealer::clock),
/// say) can drive several sealers and stores.
impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> OffsetDateTime {
        (**self).now()
    }

    fn unix_now(&self) -> i64 {
        (**self).unix_now()
    }

    fn unix_millis(&self) -> i64 {
        (**self).unix_millis()
    }
}

/// A clock that moves only when told to, for tests. Clones share one time,
/// kept in milliseconds.
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
        Self(Arc::new(AtomicI64::new(unix_seconds.saturating_mul(1000))))
    }

    /// Sets the time, in whole seconds since the Unix epoch.
    pub fn set_unix(&self, unix_seconds: i64) {
        self.0.store(unix_seconds.saturating_mul(1000), Ordering::SeqCst);
    }

    /// Moves the time forward, to the millisecond (saturating at the largest
    /// time it can hold).
    pub fn advance(&self, by: std::time::Duration) {
        let millis = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        let _ = self.0.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| Some(t.saturating_add(millis)));
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.unix_millis()) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    fn unix_now(&self) -> i64 {
        self.unix_millis().div_euclid(1000)
    }

    fn unix_millis(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_readings_agree_with_now() {
        let before = SystemClock.now().unix_timestamp();
        let unix = SystemClock.unix_now();
        let millis = SystemClock.unix_millis();
        let after = SystemClock.now().unix_timestamp();
        assert!(before <= unix && unix <= after);
        assert!(before * 1000 <= millis && millis < (after + 1) * 1000);
    }

    #[test]
    fn manual_clock_counts_milliseconds() {
        let clock = ManualClock::at_unix(10);
        clock.advance(std::time::Duration::from_millis(1500));
        assert_eq!((clock.unix_now(), clock.unix_millis()), (11, 11_500));
        assert_eq!(clock.now().unix_timestamp(), 11);
        assert_eq!(clock.now().millisecond(), 500);
        clock.set_unix(-1);
        assert_eq!(clock.unix_now(), -1);
    }
}
