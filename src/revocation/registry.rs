//! [`SessionRegistry`]: an opt-in list of each user's sessions, so that a
//! user can see where they are signed in and end one device.

use super::dynamic::BoxFuture;
use super::{RevocationState, StoreError};
use crate::session::{Session, SessionId};

/// The most records a registry keeps per user: recording one more drops
/// the oldest. A bound on what one user can make a store hold, far above
/// any session limit an application sets.
pub const MAX_RECORDS_PER_USER: usize = 100;

/// The longest user-agent label a record keeps, in bytes.
pub const MAX_LABEL_LEN: usize = 64;

/// What a registry keeps of one session: when it began, when it was last
/// seen, when it ends, and a label of the browser. No session data, token,
/// key or address. A registry builds them from what it stored, so every
/// field is public.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The session's ID.
    pub id: SessionId,
    /// Its user.
    pub user_id: String,
    /// The user's epoch the session was sealed at.
    pub epoch: u64,
    /// When it began (Unix seconds): its login.
    pub created_at: u64,
    /// Its last recorded activity (Unix seconds), updated when its cookie
    /// is re-issued, not on every request.
    pub last_seen: u64,
    /// Its absolute expiry (Unix seconds): the record is dropped after it.
    pub expires_at: u64,
    /// A short label of its browser ("Chrome on Linux"), at most
    /// [`MAX_LABEL_LEN`] bytes of printable ASCII.
    pub user_agent: String,
    /// Whether it is a "remember me" session.
    pub remembered: bool,
    /// Whether it is device-bound (DBSC).
    pub device_bound: bool,
}

impl SessionRecord {
    /// The record of `session` (which must have a user and times), last
    /// seen at `now`, from a browser that sent `user_agent`.
    pub(crate) fn of<T>(session: &Session<T>, user_agent: &str, now: u64) -> Option<Self> {
        let times = session.times()?;
        Some(Self {
            id: session.id(),
            user_id: session.user_id()?.to_owned(),
            epoch: session.epoch(),
            created_at: times.issued_at,
            last_seen: now.max(times.last_seen),
            expires_at: times.expires_at,
            user_agent: user_agent.to_owned(),
            remembered: session.is_remembered(),
            device_bound: session.is_device_bound(),
        })
    }

    /// Whether the revocation store's `state` for this record's session
    /// says it was logged out (the rules of [`check_revocation`](crate::check_revocation)): a record
    /// never outlives its revocation. A user epoch behind the record's
    /// alone is no logout but a store that lost data
    /// ([`VerifyError::StoreFault`](crate::VerifyError::StoreFault)); see
    /// [`SessionRecord::is_ahead_of`].
    #[must_use]
    pub fn is_revoked(&self, state: &RevocationState) -> bool {
        state.session_revoked || self.created_at <= state.revoked_through || self.epoch < state.user_epoch
    }

    /// Whether the record's epoch is ahead of the store's: the store lost
    /// data, and the session is refused while that lasts
    /// ([`VerifyError::StoreFault`](crate::VerifyError::StoreFault)).
    #[must_use]
    pub fn is_ahead_of(&self, state: &RevocationState) -> bool {
        self.epoch > state.user_epoch
    }
}

/// An opt-in registry of each user's sessions, written by the web driver
/// ([`WebConfigBuilder::session_registry`](crate::web::WebConfigBuilder::session_registry))
/// at login and removed at logout. It is a list, never a source of truth:
/// whether a session opens is decided by its token and the revocation
/// store alone, and ending a session from the list goes through the
/// revocation store's denylist.
///
/// `MemoryStore`, `SqliteStore`, `PostgresStore` and `RedisStore` are
/// registries too, in the same database as their revocations;
/// `sealed_session::conformance::run_registry` (feature `conformance`)
/// checks an implementation.
pub trait SessionRegistry: Send + Sync {
    /// Inserts `record`, or replaces the record of its session; drops the
    /// user's records that have expired, and the oldest beyond
    /// [`MAX_RECORDS_PER_USER`].
    fn record<'a>(&'a self, record: &'a SessionRecord) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Removes the record of the user's session `id`, if there is one.
    fn remove<'a>(&'a self, user_id: &'a str, id: SessionId) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Removes every record of the user.
    fn remove_user<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The user's records that have not expired at `now`, oldest first (by
    /// `created_at`, then ID).
    fn list<'a>(
        &'a self,
        user_id: &'a str,
        now: u64,
    ) -> BoxFuture<'a, Result<Vec<SessionRecord>, StoreError>>;
}

/// `records` with `record` in place of its session's old one, without the
/// expired and the oldest beyond [`MAX_RECORDS_PER_USER`]: what every
/// registry keeps after [`SessionRegistry::record`].
pub fn merge_record(records: &mut Vec<SessionRecord>, record: &SessionRecord, now: u64) {
    records.retain(|r| r.id != record.id && r.expires_at > now);
    // One expired already is not kept: it would count against the bound.
    if record.expires_at > now {
        records.push(record.clone());
    }
    sort_records(records);
    let excess = records.len().saturating_sub(MAX_RECORDS_PER_USER);
    records.drain(..excess);
}

/// Sorts records oldest first, by `created_at` and then ID.
pub fn sort_records(records: &mut [SessionRecord]) {
    records
        .sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.as_bytes().cmp(b.id.as_bytes())));
}

/// A short label of a browser from its `User-Agent`: the browser's family
/// and its operating system ("Firefox on Windows"), or `"Unknown browser"`.
/// It never holds more of the header than those names.
#[must_use]
pub fn user_agent_label(user_agent: Option<&str>) -> String {
    let Some(agent) = user_agent else {
        return "Unknown browser".to_owned();
    };
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Chromium/", "Chromium"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .into_iter()
    .find(|(marker, _)| agent.contains(marker))
    .map_or("Unknown browser", |(_, name)| name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .into_iter()
    .find(|(marker, _)| agent.contains(marker))
    .map(|(_, name)| name);
    match system {
        Some(system) => format!("{browser} on {system}"),
        None => browser.to_owned(),
    }
}

impl<R: SessionRegistry + ?Sized> SessionRegistry for std::sync::Arc<R> {
    fn record<'a>(&'a self, record: &'a SessionRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        (**self).record(record)
    }

    fn remove<'a>(&'a self, user_id: &'a str, id: SessionId) -> BoxFuture<'a, Result<(), StoreError>> {
        (**self).remove(user_id, id)
    }

    fn remove_user<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        (**self).remove_user(user_id)
    }

    fn list<'a>(
        &'a self,
        user_id: &'a str,
        now: u64,
    ) -> BoxFuture<'a, Result<Vec<SessionRecord>, StoreError>> {
        (**self).list(user_id, now)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn record(created_at: u64, expires_at: u64) -> SessionRecord {
        SessionRecord {
            id: Session::new(()).id(),
            user_id: "alice".to_owned(),
            epoch: 0,
            created_at,
            last_seen: created_at,
            expires_at,
            user_agent: String::new(),
            remembered: false,
            device_bound: false,
        }
    }

    #[test]
    fn a_store_that_lost_data_revokes_no_record() {
        let mut recorded = record(10, 100);
        recorded.epoch = 3;
        let state = |user_epoch, session_revoked, revoked_through| RevocationState {
            user_epoch,
            session_revoked,
            revoked_through,
        };
        assert!(!recorded.is_revoked(&state(3, false, 0)), "live");
        assert!(!recorded.is_revoked(&state(2, false, 0)), "an epoch behind the record's is a fault");
        assert!(recorded.is_ahead_of(&state(2, false, 0)) && !recorded.is_ahead_of(&state(3, false, 0)));
        assert!(recorded.is_revoked(&state(4, false, 0)), "logged out everywhere");
        assert!(recorded.is_revoked(&state(3, true, 0)), "denylisted");
        assert!(recorded.is_revoked(&state(2, true, 0)), "denylisted, though the epoch was lost");
        assert!(recorded.is_revoked(&state(3, false, 10)), "issued before a global cutoff");
        assert!(recorded.is_revoked(&state(2, false, 10)), "cut off, though the epoch was lost");
        assert!(!recorded.is_revoked(&state(3, false, 9)), "issued after the cutoff");
    }

    #[test]
    fn merging_drops_records_that_expire_by_now_and_replaces_the_same_session() {
        let (ending, live) = (record(1, 100), record(2, 101));
        let mut records = vec![ending, live.clone()];
        let mut again = live.clone();
        again.last_seen = 50;
        merge_record(&mut records, &again, 100);
        assert_eq!(records, [again], "a record whose expiry is now is gone; the other replaced");
    }
}
