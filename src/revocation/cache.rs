//! [`StateCache`]: the bounded-staleness cache that shared stores put in
//! front of their database, with the rules that keep it from ever serving
//! a revocation's "before".

use std::collections::HashMap;
use std::fmt;
use std::sync::{PoisonError, RwLock, RwLockWriteGuard};
use std::time::Duration;

use super::prehashed::PreHashed;
use super::RevocationState;
use crate::session::SessionId;

/// The longest a [`StateCache`] trusts an answer: 1 s. It bounds how long a
/// revocation whose invalidation message was lost can be missed, which
/// SECURITY.md states; stores refuse a longer TTL, and the cache caps one.
pub const MAX_CACHE_TTL: Duration = Duration::from_secs(1);

/// When a cache reaches this many entries, stale ones are swept; if it is
/// still this full, it is emptied.
const MAX_ENTRIES: usize = 100_000;

/// How far (ms) a lookup's time may be behind the newest stamp in the cache
/// before the clock is taken to have stepped back and the cache is emptied:
/// the time a thread that read the clock may wait before its lookup while
/// another reads and caches. A step back by less keeps an entry trusted at
/// most this much longer than the TTL.
const STEP_BACK_SLACK_MS: i64 = 100;

/// A local cache of revocation state, for store implementations: the
/// SQLite and Redis stores keep one in front of their database.
///
/// It keeps each user's epoch, each session's denylist flag and the
/// store's cutoff separately, each stamped with the time its read
/// *began*, and answers only when every part is younger than the TTL. Its
/// rules:
///
/// * **A read that raced an invalidation is never cached.** Take a
///   [`CacheTicket`] before reading the store and pass it to
///   [`StateCache::insert`]: if anything was invalidated in between, the
///   answer may predate it and is dropped.
/// * **Staleness is counted from before the read**, so a slow read cannot
///   extend how long an answer is trusted: an answer is never used more
///   than the TTL after the read that produced it began.
/// * **A clock that steps back makes every entry stale, for good**: the
///   cache is emptied once a lookup's time is behind the newest stamp by
///   more than 100 ms, or the entries would be trusted again, as young,
///   when the clock caught up with their stamps.
/// * **A new cutoff empties the cache**: a global logout or a new store
///   generation (lost data) makes every cached epoch suspect.
/// * **An answer behind a cached one is not cached**: under one ticket,
///   two reads may answer out of order, and the earlier (a lower cutoff or
///   epoch, a session not yet denylisted) must not replace the later.
///
/// ```
/// use std::time::Duration;
/// use sealed_session::{RevocationState, Session, StateCache};
///
/// let cache = StateCache::new(Duration::from_secs(1));
/// let session = Session::new(()).id();
/// let ticket = cache.ticket(1_000);
/// // ...read the state from the store...
/// let state = RevocationState { user_epoch: 2, session_revoked: false, revoked_through: 0 };
/// assert!(cache.insert(ticket, Some("alice"), &session, &state));
/// assert_eq!(cache.get(Some("alice"), &session, 1_999), Some(state));
/// assert_eq!(cache.get(Some("alice"), &session, 2_000), None, "read began at 1000: too old");
/// ```
pub struct StateCache {
    inner: RwLock<Entries>,
    ttl_ms: i64,
}

/// Proof of when a store read began and what the cache had seen by then;
/// see [`StateCache::ticket`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheTicket {
    version: u64,
    started_ms: i64,
}

#[derive(Clone, Copy)]
struct Stamped<T> {
    value: T,
    read_ms: i64,
}

struct Entries {
    users: HashMap<Box<str>, Stamped<u64>>,
    sessions: HashMap<[u8; 16], Stamped<bool>, PreHashed>,
    floor: Option<Stamped<u64>>,
    /// Counts invalidations: an answer read before one is never cached after it.
    version: u64,
    swept_ms: i64,
    /// The newest stamp cached: a lookup far behind it saw the clock step
    /// back.
    newest_ms: i64,
}

impl Default for Entries {
    fn default() -> Self {
        Self {
            users: HashMap::new(),
            sessions: HashMap::default(),
            floor: None,
            version: 0,
            swept_ms: i64::MIN,
            newest_ms: i64::MIN,
        }
    }
}

impl Entries {
    fn clear(&mut self) {
        self.users.clear();
        self.sessions.clear();
        self.floor = None;
        self.version = self.version.wrapping_add(1);
        self.newest_ms = i64::MIN;
    }
}

/// Whether something read at `read_ms` is younger than `max_age_ms` at
/// `now_ms`; a negative age (the clock stepped back) is not.
fn fresh(read_ms: i64, now_ms: i64, max_age_ms: i64) -> bool {
    (0..max_age_ms).contains(&now_ms.saturating_sub(read_ms))
}

/// Whether `cached` was read after `read_ms`.
fn read_after<T>(cached: Option<&Stamped<T>>, read_ms: i64) -> bool {
    cached.is_some_and(|c| c.read_ms > read_ms)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl StateCache {
    /// An empty cache whose answers live at most `ttl`, and never longer
    /// than [`MAX_CACHE_TTL`]. A zero TTL caches nothing.
    #[must_use]
    pub fn new(ttl: Duration) -> Self {
        Self { inner: RwLock::new(Entries::default()), ttl_ms: millis(ttl.min(MAX_CACHE_TTL)) }
    }

    /// The longest an answer is used.
    #[must_use]
    pub fn ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_ms.unsigned_abs())
    }

    // Every writer leaves the maps consistent: a poisoned lock is usable.
    fn write(&self) -> RwLockWriteGuard<'_, Entries> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached state of `session` for `user_id` at `now_ms` (Unix
    /// milliseconds), if every part of it was read less than the TTL ago.
    #[must_use]
    pub fn get(&self, user_id: Option<&str>, session: &SessionId, now_ms: i64) -> Option<RevocationState> {
        let hit = self.get_within(user_id, session, now_ms, self.ttl_ms);
        crate::metrics::cache_lookup(if hit.is_some() { "hit" } else { "miss" }, hit.map(|(_, age)| age));
        hit.map(|(state, _)| state)
    }

    /// As [`StateCache::get`], with another age limit: for a store that
    /// answers from older data, by explicit opt-in, while its database is
    /// unreachable.
    #[must_use]
    pub fn get_stale(
        &self,
        user_id: Option<&str>,
        session: &SessionId,
        now_ms: i64,
        max_age: Duration,
    ) -> Option<RevocationState> {
        let stale = self.get_within(user_id, session, now_ms, millis(max_age));
        if let Some((_, age)) = stale {
            crate::metrics::cache_lookup("stale", Some(age));
        }
        stale.map(|(state, _)| state)
    }

    fn get_within(
        &self,
        user_id: Option<&str>,
        session: &SessionId,
        now_ms: i64,
        max_age_ms: i64,
    ) -> Option<(RevocationState, i64)> {
        let stepped_back = |entries: &Entries| now_ms < entries.newest_ms.saturating_sub(STEP_BACK_SLACK_MS);
        let entries = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        if stepped_back(&entries) {
            drop(entries);
            let mut entries = self.write();
            if stepped_back(&entries) {
                tracing::warn!("the clock stepped back: the revocation cache is emptied");
                entries.clear();
            }
            return None;
        }
        let usable = |read_ms| fresh(read_ms, now_ms, max_age_ms);
        let floor = entries.floor.filter(|c| usable(c.read_ms))?;
        let session_revoked = entries.sessions.get(session.as_bytes()).filter(|c| usable(c.read_ms))?;
        let mut oldest = floor.read_ms.min(session_revoked.read_ms);
        let user_epoch = match user_id {
            Some(user) => {
                let cached = entries.users.get(user).filter(|c| usable(c.read_ms))?;
                oldest = oldest.min(cached.read_ms);
                cached.value
            }
            None => 0,
        };
        let state = RevocationState {
            user_epoch,
            session_revoked: session_revoked.value,
            revoked_through: floor.value,
        };
        Some((state, now_ms.saturating_sub(oldest)))
    }

    /// Call just before reading the store: records the time (Unix
    /// milliseconds) and the invalidations seen so far.
    #[must_use]
    pub fn ticket(&self, now_ms: i64) -> CacheTicket {
        let entries = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        CacheTicket { version: entries.version, started_ms: now_ms }
    }

    /// Caches what a store read that began with `ticket` returned. Returns
    /// false, caching nothing, if anything was invalidated since the ticket
    /// was taken (the answer may predate that revocation), if the answer is
    /// older than one cached (a later cutoff or epoch, or a denylisting, is
    /// cached already: two reads under one ticket answered out of order), or
    /// if the TTL is zero.
    pub fn insert(
        &self,
        ticket: CacheTicket,
        user_id: Option<&str>,
        session: &SessionId,
        state: &RevocationState,
    ) -> bool {
        self.insert_with(ticket, user_id, session, state, false)
    }

    /// [`StateCache::insert`]; with `in_order` (an answer read while no
    /// invalidation arrives, kept for stale answers only) refused also if a
    /// read that began later was cached for its user or session, or cached
    /// another cutoff, however long after: no invalidation marks an earlier
    /// read as out of date then. What is cached for its user and session
    /// from before it is dropped all the same, as older than this answer.
    /// (A clock that steps back only makes fewer answers kept.)
    pub(crate) fn insert_with(
        &self,
        ticket: CacheTicket,
        user_id: Option<&str>,
        session: &SessionId,
        state: &RevocationState,
        in_order: bool,
    ) -> bool {
        if self.ttl_ms <= 0 {
            return false;
        }
        let mut entries = self.write();
        if entries.version != ticket.version {
            return false;
        }
        if in_order {
            let read_ms = ticket.started_ms;
            let other_cutoff =
                entries.floor.is_some_and(|c| c.read_ms > read_ms && c.value != state.revoked_through);
            if other_cutoff
                || read_after(entries.sessions.get(session.as_bytes()), read_ms)
                || user_id.is_some_and(|user| read_after(entries.users.get(user), read_ms))
            {
                if !read_after(entries.sessions.get(session.as_bytes()), read_ms) {
                    entries.sessions.remove(session.as_bytes());
                }
                if let Some(user) = user_id.filter(|user| !read_after(entries.users.get(*user), read_ms)) {
                    entries.users.remove(user);
                }
                return false;
            }
        }
        // (A read that began before others and ended after them is no step
        // back: the next lookup, on a fresh reading of the clock, tells.)
        let read_ms = ticket.started_ms;
        // Revocations only move forward: an answer behind a cached one is
        // from an earlier read. (A later cutoff clears what is cached,
        // below: epochs and the denylist may start again under it, after a
        // store lost its data.) A cached entry stamped more than a TTL from
        // this read holds nothing back (a clock that stepped).
        let ttl = self.ttl_ms;
        let current = |cached_ms: i64| (-ttl + 1..ttl).contains(&read_ms.saturating_sub(cached_ms));
        let cached_floor = entries.floor.filter(|c| current(c.read_ms)).map(|c| c.value);
        let behind = match cached_floor {
            Some(floor) if floor > state.revoked_through => true,
            Some(floor) if floor < state.revoked_through => false,
            _ => {
                user_id
                    .and_then(|user| entries.users.get(user))
                    .is_some_and(|c| current(c.read_ms) && c.value > state.user_epoch)
                    || (entries.sessions.get(session.as_bytes()))
                        .is_some_and(|c| current(c.read_ms) && c.value && !state.session_revoked)
            }
        };
        if behind {
            return false;
        }
        if entries.floor.is_some_and(|floor| floor.value != state.revoked_through) {
            // Everyone was logged out, or a new generation began: every
            // cached epoch is suspect. Later reads are cached again.
            entries.clear();
            entries.version = ticket.version;
        }
        if entries.users.len() + entries.sessions.len() >= MAX_ENTRIES {
            self.sweep(&mut entries, read_ms);
        }
        entries.newest_ms = entries.newest_ms.max(read_ms);
        entries.floor = Some(Stamped { value: state.revoked_through, read_ms });
        entries.sessions.insert(*session.as_bytes(), Stamped { value: state.session_revoked, read_ms });
        if let Some(user) = user_id {
            entries.users.insert(user.into(), Stamped { value: state.user_epoch, read_ms });
        }
        true
    }

    /// Drops stale entries, at most once a TTL; empties a cache still full.
    fn sweep(&self, entries: &mut Entries, now_ms: i64) {
        if fresh(entries.swept_ms, now_ms, self.ttl_ms) {
            let version = entries.version;
            entries.clear();
            entries.version = version;
            return;
        }
        let ttl = self.ttl_ms;
        entries.users.retain(|_, c| fresh(c.read_ms, now_ms, ttl));
        entries.sessions.retain(|_, c| fresh(c.read_ms, now_ms, ttl));
        entries.swept_ms = now_ms;
    }

    /// Forgets `user_id`'s epoch: call it when the user is revoked, here or
    /// (by message) on another server.
    pub fn invalidate_user(&self, user_id: &str) {
        let mut entries = self.write();
        entries.version = entries.version.wrapping_add(1);
        entries.users.remove(user_id);
    }

    /// Forgets whether `session` is denylisted.
    pub fn invalidate_session(&self, session: &SessionId) {
        let mut entries = self.write();
        entries.version = entries.version.wrapping_add(1);
        entries.sessions.remove(session.as_bytes());
    }

    /// Forgets everything: after a global logout, a lost subscription or a
    /// change the store cannot name.
    pub fn clear(&self) {
        self.write().clear();
    }

    /// Number of cached users and sessions.
    #[must_use]
    pub fn len(&self) -> usize {
        let entries = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        entries.users.len() + entries.sessions.len()
    }

    /// Whether nothing is cached.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a revocation invalidates in every server's cache: the message a
/// shared store publishes to the others (Redis pub/sub, PostgreSQL
/// `NOTIFY`), and applies to its own cache with [`StateCache::apply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Invalidation<'a> {
    /// A user's epoch changed.
    User(&'a str),
    /// A session was denylisted.
    Session(SessionId),
    /// Everything: a global logout, a new generation, or anything unknown.
    All,
}

impl<'a> Invalidation<'a> {
    /// A message that names a fresh random session no one has: it goes
    /// through the channel like any other, and every server that receives
    /// it (this library's older versions too) drops nothing. For a store to
    /// probe its channel, or to learn that its subscription still delivers.
    /// `None` if the operating system gives no random ID.
    #[must_use]
    pub fn of_no_session() -> Option<String> {
        crate::Session::try_new(()).ok().map(|nobody| Invalidation::Session(nobody.id()).message())
    }

    /// The message text: `user:ID`, `session:HEX` or `all`.
    #[must_use]
    pub fn message(&self) -> String {
        match self {
            Invalidation::User(user) => format!("user:{user}"),
            Invalidation::Session(session) => format!("session:{}", session.to_hex()),
            Invalidation::All => "all".to_owned(),
        }
    }

    /// Reads a message; anything it does not recognise invalidates
    /// everything.
    #[must_use]
    pub fn parse(message: &'a str) -> Self {
        if let Some(user) = message.strip_prefix("user:") {
            Invalidation::User(user)
        } else if let Some(session) = message.strip_prefix("session:").and_then(SessionId::from_hex) {
            Invalidation::Session(session)
        } else {
            Invalidation::All
        }
    }
}

impl StateCache {
    /// Applies an invalidation, ours or another server's.
    pub fn apply(&self, invalidation: &Invalidation<'_>) {
        match invalidation {
            Invalidation::User(user) => self.invalidate_user(user),
            Invalidation::Session(session) => self.invalidate_session(session),
            Invalidation::All => self.clear(),
        }
    }
}

impl fmt::Debug for StateCache {
    /// Counts only: cached user IDs are personal data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateCache").field("ttl_ms", &self.ttl_ms).field("entries", &self.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Session;

    const TTL: Duration = Duration::from_secs(1);

    fn state(epoch: u64, revoked: bool, floor: u64) -> RevocationState {
        RevocationState { user_epoch: epoch, session_revoked: revoked, revoked_through: floor }
    }

    #[test]
    fn an_answer_read_across_an_invalidation_is_never_cached() {
        let (cache, id) = (StateCache::new(TTL), Session::new(()).id());
        for invalidate in [
            &|c: &StateCache, _: &SessionId| c.invalidate_user("alice") as _,
            &|c: &StateCache, id: &SessionId| c.invalidate_session(id),
            &|c: &StateCache, _: &SessionId| c.clear(),
            // Another user's or session's revocation counts too: the
            // message that names ours may come next.
            &|c: &StateCache, _: &SessionId| c.invalidate_user("bob"),
        ] as [&dyn Fn(&StateCache, &SessionId); 4]
        {
            let ticket = cache.ticket(0); // the check begins its read
            invalidate(&cache, &id); // a revocation lands meanwhile
            assert!(!cache.insert(ticket, Some("alice"), &id, &state(0, false, 0)), "stale answer cached");
            assert_eq!(cache.get(Some("alice"), &id, 1), None);
        }
        // Without an invalidation in between, the answer is cached.
        let ticket = cache.ticket(0);
        assert!(cache.insert(ticket, Some("alice"), &id, &state(0, false, 0)));
        assert_eq!(cache.get(Some("alice"), &id, 1), Some(state(0, false, 0)));
    }

    /// Two reads under one ticket (no invalidation message between them
    /// yet) may answer out of order: the earlier answer never replaces a
    /// later one, for the cutoff, the user's epoch or the denylist.
    #[test]
    fn an_earlier_answer_never_replaces_a_later_one() {
        for (later, earlier) in [
            (state(1, false, 200), state(1, false, 100)),
            (state(2, false, 100), state(1, false, 100)),
            (state(1, true, 100), state(1, false, 100)),
        ] {
            let (cache, id) = (StateCache::new(TTL), Session::new(()).id());
            let ticket = cache.ticket(0);
            assert!(cache.insert(ticket, Some("alice"), &id, &later));
            assert!(!cache.insert(ticket, Some("alice"), &id, &earlier), "{earlier:?} after {later:?}");
            assert_eq!(cache.get(Some("alice"), &id, 1), Some(later));
            // Once the later answer is a TTL old, it no longer holds back
            // what is read (a store restored from a backup).
            assert!(cache.insert(cache.ticket(1_000), Some("alice"), &id, &earlier));
            assert_eq!(cache.get(Some("alice"), &id, 1_001), Some(earlier));
        }
        // A later cutoff with a lower epoch (a store that lost its data and
        // started a new generation) replaces what is cached at once.
        let (cache, id) = (StateCache::new(TTL), Session::new(()).id());
        let ticket = cache.ticket(0);
        assert!(cache.insert(ticket, Some("alice"), &id, &state(5, true, 100)));
        assert!(cache.insert(ticket, Some("alice"), &id, &state(0, false, 300)));
        assert_eq!(cache.get(Some("alice"), &id, 1), Some(state(0, false, 300)));
        // An entry stamped more than a TTL after the read (the clock stepped
        // back) holds nothing back; the next lookup sees the step and
        // empties the cache.
        let (cache, id) = (StateCache::new(TTL), Session::new(()).id());
        assert!(cache.insert(cache.ticket(5_000), Some("alice"), &id, &state(2, false, 100)));
        assert!(cache.insert(cache.ticket(3_000), Some("alice"), &id, &state(1, false, 100)));
        assert_eq!(cache.get(Some("alice"), &id, 3_001), None);
        assert!(cache.insert(cache.ticket(3_002), Some("alice"), &id, &state(1, false, 100)));
        assert_eq!(cache.get(Some("alice"), &id, 3_003), Some(state(1, false, 100)));
    }

    /// Kept for stale answers (in order): of two reads begun in the same
    /// millisecond, whose order is unknown, the one that saw more is kept,
    /// whichever answered first (revocations only move forward).
    #[test]
    fn in_order_reads_begun_in_one_millisecond_keep_the_later_state() {
        for (first, second, kept) in [
            (state(1, false, 0), state(1, true, 0), state(1, true, 0)),
            (state(1, true, 0), state(1, false, 0), state(1, true, 0)),
            (state(1, false, 0), state(2, false, 0), state(2, false, 0)),
        ] {
            let (cache, id) = (StateCache::new(TTL), Session::new(()).id());
            assert!(cache.insert_with(cache.ticket(10), Some("alice"), &id, &first, true));
            let _ = cache.insert_with(cache.ticket(10), Some("alice"), &id, &second, true);
            assert_eq!(cache.get(Some("alice"), &id, 11), Some(kept), "{first:?} then {second:?}");
        }
    }

    #[test]
    fn staleness_counts_from_before_the_read() {
        let (cache, id) = (StateCache::new(TTL), Session::new(()).id());
        let ticket = cache.ticket(10_000);
        // The read took 600 ms; the answer is cached at 10 600.
        assert!(cache.insert(ticket, None, &id, &state(0, false, 0)));
        assert!(cache.get(None, &id, 10_999).is_some());
        assert_eq!(cache.get(None, &id, 11_000), None, "used more than the TTL after the read began");
    }

    #[test]
    fn every_part_must_be_fresh() {
        let (cache, id) = (StateCache::new(TTL), Session::new(()).id());
        assert!(cache.insert(cache.ticket(0), Some("alice"), &id, &state(3, false, 0)));
        // Another session of alice's read later refreshes the floor, not this session's entry.
        let other = Session::new(()).id();
        assert!(cache.insert(cache.ticket(900), Some("alice"), &other, &state(3, false, 0)));
        assert_eq!(cache.get(Some("alice"), &id, 1_000), None, "this session's entry is a TTL old");
        assert_eq!(cache.get(Some("alice"), &other, 1_000), Some(state(3, false, 0)));
        assert_eq!(cache.get(Some("bob"), &other, 1_000), None, "bob's epoch was never read");
        assert_eq!(cache.get(None, &other, 1_000), Some(state(0, false, 0)), "no user: epoch 0");
    }

    #[test]
    fn a_clock_that_steps_back_makes_entries_stale() {
        let (cache, id) = (StateCache::new(TTL), Session::new(()).id());
        assert!(cache.insert(cache.ticket(5_000), None, &id, &state(0, false, 0)));
        assert!(cache.get(None, &id, 5_000).is_some());
        assert_eq!(cache.get(None, &id, 4_999), None);
        // Behind by less than the slack (another thread's read began after
        // this lookup read the clock): the entry stays.
        assert_eq!(cache.get(None, &id, 5_000 - STEP_BACK_SLACK_MS), None);
        assert!(cache.get(None, &id, 5_001).is_some());
        // Stepped back further: nothing cached then is trusted again, not
        // even once the clock has caught up with its stamp.
        assert_eq!(cache.get(None, &id, 5_000 - STEP_BACK_SLACK_MS - 1), None);
        assert_eq!(cache.get(None, &id, 5_001), None, "an entry read 'in the future' came back");
        assert_eq!(cache.get_stale(None, &id, 5_001, Duration::from_secs(3600)), None);
        assert!(cache.is_empty());
        // What is read after the step is cached as usual.
        assert!(cache.insert(cache.ticket(3_000), None, &id, &state(0, false, 0)));
        assert!(cache.get(None, &id, 3_500).is_some());
        // A read that began before another and is cached after it is no
        // step back: both answers stay.
        let other = Session::new(()).id();
        let (slow, quick) = (cache.ticket(4_000), cache.ticket(4_300));
        assert!(cache.insert(quick, None, &other, &state(0, false, 0)));
        assert!(cache.insert(slow, None, &id, &state(0, false, 0)));
        assert!(cache.get(None, &other, 4_400).is_some() && cache.get(None, &id, 4_400).is_some());
    }

    #[test]
    fn invalidations_drop_what_they_name() {
        let cache = StateCache::new(TTL);
        let (a, b) = (Session::new(()).id(), Session::new(()).id());
        assert!(cache.insert(cache.ticket(0), Some("alice"), &a, &state(1, false, 0)));
        assert!(cache.insert(cache.ticket(0), Some("bob"), &b, &state(1, false, 0)));
        cache.invalidate_user("alice");
        assert_eq!(cache.get(Some("alice"), &a, 1), None);
        assert!(cache.get(Some("bob"), &b, 1).is_some());
        cache.invalidate_session(&b);
        assert_eq!(cache.get(Some("bob"), &b, 1), None);
        assert!(cache.get(None, &a, 1).is_some(), "a's session entry is untouched");
        cache.clear();
        assert!(cache.is_empty());
    }

    #[test]
    fn a_new_cutoff_empties_the_cache() {
        let cache = StateCache::new(TTL);
        let (a, b) = (Session::new(()).id(), Session::new(()).id());
        assert!(cache.insert(cache.ticket(0), Some("alice"), &a, &state(4, false, 100)));
        // A read of another session shows a new generation: alice's epoch 4 is from lost data.
        assert!(cache.insert(cache.ticket(1), None, &b, &state(0, false, 200)));
        assert_eq!(cache.get(Some("alice"), &a, 2), None);
        assert_eq!(cache.get(None, &b, 2), Some(state(0, false, 200)));
    }

    #[test]
    fn the_cache_reports_its_ttl_and_size() {
        let cache = StateCache::new(Duration::from_millis(500));
        assert_eq!(cache.ttl(), Duration::from_millis(500));
        assert!(cache.is_empty());
        assert!(cache.insert(cache.ticket(0), Some("alice"), &Session::new(()).id(), &state(0, false, 0)));
        assert!(!cache.is_empty());
        assert_eq!(cache.len(), 2, "a user and a session");
    }

    #[test]
    fn messages_round_trip_and_unknown_ones_invalidate_everything() {
        let session = Session::new(()).id();
        for invalidation in
            [Invalidation::User("alice:with:colons"), Invalidation::Session(session), Invalidation::All]
        {
            assert_eq!(Invalidation::parse(&invalidation.message()), invalidation);
        }
        assert_eq!(Invalidation::parse("session:zz"), Invalidation::All);
        assert_eq!(Invalidation::parse("garbage"), Invalidation::All);
        // Applied, each drops what it names.
        let cache = StateCache::new(TTL);
        let (a, b) = (Session::new(()).id(), Session::new(()).id());
        assert!(cache.insert(cache.ticket(0), Some("alice"), &a, &state(1, false, 0)));
        assert!(cache.insert(cache.ticket(0), Some("bob"), &b, &state(1, false, 0)));
        cache.apply(&Invalidation::User("alice"));
        assert_eq!(cache.get(Some("alice"), &a, 1), None);
        cache.apply(&Invalidation::Session(b));
        assert_eq!(cache.get(Some("bob"), &b, 1), None);
        assert!(cache.get(None, &a, 1).is_some());
        // A message for no session drops nothing, and each names another.
        let (first, second) =
            (Invalidation::of_no_session().unwrap(), Invalidation::of_no_session().unwrap());
        assert!(matches!(Invalidation::parse(&first), Invalidation::Session(_)), "{first}");
        assert_ne!(first, second);
        cache.apply(&Invalidation::parse(&first));
        assert!(cache.get(None, &a, 1).is_some());
        cache.apply(&Invalidation::All);
        assert!(cache.is_empty());
    }

    #[test]
    fn a_zero_ttl_caches_nothing() {
        let (cache, id) = (StateCache::new(Duration::ZERO), Session::new(()).id());
        assert!(!cache.insert(cache.ticket(0), None, &id, &state(0, false, 0)));
        assert_eq!(cache.get(None, &id, 0), None);
    }

    #[test]
    fn stale_answers_only_within_their_own_limit() {
        let (cache, id) = (StateCache::new(TTL), Session::new(()).id());
        assert!(cache.insert(cache.ticket(0), None, &id, &state(0, false, 0)));
        let limit = Duration::from_secs(30);
        assert!(cache.get_stale(None, &id, 29_999, limit).is_some());
        assert_eq!(cache.get_stale(None, &id, 30_000, limit), None);
    }

    #[test]
    fn a_full_cache_sweeps_then_empties() {
        let cache = StateCache::new(TTL);
        for i in 0..MAX_ENTRIES / 2 {
            let user = format!("u{i}");
            assert!(cache.insert(cache.ticket(0), Some(&user), &Session::new(()).id(), &state(0, false, 0)));
        }
        assert!(cache.len() >= MAX_ENTRIES);
        // A TTL later, the sweep drops all those stale entries.
        let id = Session::new(()).id();
        assert!(cache.insert(cache.ticket(2_000), None, &id, &state(0, false, 0)));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn debug_shows_no_user() {
        let cache = StateCache::new(TTL);
        assert!(cache.insert(
            cache.ticket(0),
            Some("secret@example.com"),
            &Session::new(()).id(),
            &state(0, false, 0)
        ));
        assert!(!format!("{cache:?}").contains("secret"));
    }
}
