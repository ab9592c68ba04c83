//! When a session's registry record moves: once per renewal interval,
//! counted from its login.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::{Sealer, Session};

/// Whether a request at `now` with `session` must renew its cookie, and so
/// move its registry record (the driver records every re-issue): when `now`
/// falls in a later renewal interval, counted from the login, than the
/// cookie's last activity. A renewal alone does not ensure that: a session
/// whose data changes on every request is sealed again each time, with a
/// new last activity but no record, and never falls due for one. With
/// this, and re-seals dating the last activity to when their request began
/// (the driver's `began_at`), a record's last activity is never a whole
/// interval older than its cookie's (the device list relies on it).
/// Device-bound sessions move their record with each proof.
pub(crate) fn record_due<T>(sealer: &Sealer, session: &Session<T>, now: u64) -> bool {
    let Some(times) = session.times() else { return false };
    // `>`: a server whose clock runs behind the one that sealed does not
    // renew on every request until it catches up.
    match (renewal_interval(sealer, session, now), renewal_interval(sealer, session, times.last_seen)) {
        (Some(now), Some(last)) => now > last,
        _ => false,
    }
}

/// The renewal interval, counted from the login, that `at` falls in for
/// `session`; `None` for a session with no record to move (an anonymous
/// one, or a device-bound one, which proofs move) or no profile.
fn renewal_interval<T>(sealer: &Sealer, session: &Session<T>, at: u64) -> Option<u64> {
    if session.is_device_bound() || session.user_id().is_none() {
        return None;
    }
    let times = session.times()?;
    let (_, renew_after) = sealer.idle_profile(session.is_remembered())?;
    Some(at.saturating_sub(times.issued_at) / renew_after.max(1))
}

/// The sessions whose record this process moved lately, with the renewal
/// interval it did so in. A client that keeps sending an older cookie (one
/// that drops `Set-Cookie`) falls due on every request; it is recorded
/// once an interval. Bounded: emptied when full, which costs at most one
/// more write for each session it held.
#[derive(Default)]
pub(crate) struct RecentRecords(Mutex<HashMap<[u8; 16], u64>>);

impl RecentRecords {
    /// Sessions remembered at most.
    const MAX: usize = 4096;

    /// Whether the record of `session`, re-issued at `now`, is to be moved:
    /// it has one that re-issues move (not anonymous, not device-bound,
    /// whose proofs move it) and this process has not moved it yet in the
    /// renewal interval of `now`; notes it.
    pub(crate) fn first_in_interval<T>(&self, sealer: &Sealer, session: &Session<T>, now: u64) -> bool {
        let Some(interval) = renewal_interval(sealer, session, now) else { return false };
        let id = *session.id().as_bytes();
        let mut recent = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if recent.get(&id) == Some(&interval) {
            return false;
        }
        if recent.len() >= Self::MAX {
            recent.clear();
        }
        recent.insert(id, interval);
        true
    }

    /// Forgets `session`, whose record could not be written: the next
    /// request that re-issues it tries again.
    pub(crate) fn forget<T>(&self, session: &Session<T>) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(session.id().as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Times;
    use crate::Keyring;

    #[test]
    fn recent_records_hold_one_interval_per_session_and_are_emptied_when_full() {
        const T0: u64 = 1_800_000_000;
        let sealer = Sealer::builder(Keyring::generate().unwrap())
            .renew_after(std::time::Duration::from_secs(300))
            .build()
            .unwrap();
        let session = || {
            let times = Times { issued_at: T0, expires_at: T0 + 3600, last_seen: T0 };
            Session::new(()).with_user("alice", 0).with_times(times)
        };
        let recent = RecentRecords::default();
        let (first, second) = (session(), session());
        assert!(recent.first_in_interval(&sealer, &first, T0 + 301));
        assert!(recent.first_in_interval(&sealer, &second, T0 + 301));
        assert!(!recent.first_in_interval(&sealer, &first, T0 + 599), "the same interval");
        assert!(recent.first_in_interval(&sealer, &first, T0 + 600), "the next one");
        recent.forget(&first);
        assert!(
            recent.first_in_interval(&sealer, &first, T0 + 600),
            "forgotten: a failed write is tried again"
        );
        // An anonymous session has no record, a device-bound one's is
        // moved by its proofs: neither is moved by a re-issue.
        let anonymous =
            Session::new(()).with_times(Times { issued_at: T0, expires_at: T0 + 3600, last_seen: T0 });
        assert!(!recent.first_in_interval(&sealer, &anonymous, T0 + 301));
        let mut bound = session();
        bound.set_device_bound(true);
        assert!(!recent.first_in_interval(&sealer, &bound, T0 + 301));
        // Full: the next new session empties it.
        while recent.0.lock().unwrap().len() < RecentRecords::MAX {
            assert!(recent.first_in_interval(&sealer, &session(), T0 + 600));
        }
        assert!(!recent.first_in_interval(&sealer, &first, T0 + 600), "still held at the bound");
        assert!(recent.first_in_interval(&sealer, &session(), T0 + 600));
        assert!(recent.first_in_interval(&sealer, &first, T0 + 600), "emptied");
    }
}
